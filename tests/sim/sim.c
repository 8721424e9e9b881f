/*
 * sim.c - dsc-sim's command line and multi-seed runner.
 *
 *	dsc-sim --seed S [--trace] [--steps N] [--nodes 3|5]
 *	dsc-sim --seeds N [--jobs J] [--base B] [--until-violation] [...]
 *	dsc-sim --ci [--jobs J] [--base B]
 *	dsc-sim --demo | --bench
 *
 * A multi-seed run forks J workers. The parent hands out seed numbers one
 * at a time over a pipe and collects fixed-size results over another, then
 * reports them in seed order, so the output is the same for any J. A worker
 * that dies (a crash in the core, or the per-seed alarm) costs its seed a
 * failure and is replaced. This file is the simulator's I/O edge: it alone
 * reads the wall clock, /dev/urandom and CPU time.
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define U(x) ((unsigned long long)(x))

#define USAGE                                                                 \
	"usage: dsc-sim --seed S [--trace] [--steps N] [--nodes 3|5]\n"       \
	"       dsc-sim --seeds N [--jobs J] [--base B] [--until-violation]\n" \
	"               [--steps N] [--nodes 3|5]\n"                          \
	"       dsc-sim --ci [--jobs J] [--base B]\n"                         \
	"       dsc-sim --demo\n"                                             \
	"       dsc-sim --bench\n"

/* Most workers; most seeds ahead of the oldest unreported one. */
#define MAX_JOBS 64
#define RESULT_WINDOW 1024
/* A seed that runs longer than this (wall seconds) is a hang. */
#define SEED_ALARM_S 300
/* --ci: random seeds after the fixed list, and steps per seed. */
#define CI_RANDOM_SEEDS 2000
#define CI_STEPS SIM_DEFAULT_STEPS
/* --bench: proposals, and the CPU-seconds cap. */
#define BENCH_PROPOSALS 1000000
#define BENCH_MAX_CPU 20.0

/*
 * Fixed CI seeds, picked from 200 candidates by greedy coverage of
 * features seen in their traces: both cluster sizes; pre-vote and
 * check-quorum off; every partition kind; crashes (losing unsynced
 * writes, right after a vote or an election); pauses; every kind of
 * configuration change, the leader removing or demoting itself; transfers;
 * snapshots installed; drops, dups, delays; steps-down by check-quorum and
 * by removal; failed reads; clock skew. Most cover 20 or more of those
 * 30 features.
 * A change to the simulator changes what a seed does; re-pick them then
 * with tests/sim/ci-seeds.sh.
 */
static const uint64_t ci_seeds[] = {
	0x000000009e3779b1,	/* 5 nodes */
	0x00000000daa66d18,	/* 5 nodes */
	0x0000000017156084,	/* 3 nodes */
	0x00000000538453eb,	/* 5 nodes */
	0x00000000f1bbcd9c,	/* 3 nodes */
	0x000000002e2ac108,	/* 5 nodes */
	0x0000000011a25c4a,	/* 3 nodes */
	0x00000000035e29eb,	/* 5 nodes */
	0x00000000a195a39c,	/* 3 nodes */
	0x000000003fcd1d52,	/* 3 nodes */
	0x000000001a738a6f,	/* 3 nodes */
	0x0000000056e27dd6,	/* 5 nodes */
	0x00000000cfc064a4,	/* 3 nodes */
	0x00000000c17c3245,	/* 3 nodes */
	0x00000000fdeb25ac,	/* 5 nodes */
	0x000000003a5a1918,	/* 3 nodes */
	0x0000000034e714de,	/* 5 nodes */
	0x000000006be3040b,	/* 3 nodes */
	0x000000000a1a7dc1,	/* 3 nodes */
	0x00000000bf6757f6,	/* 5 nodes */
	0x00000000b1232597,	/* 5 nodes */
	0x000000002a010c6a,	/* 5 nodes */
	0x00000000df4de69f,	/* 5 nodes */
	0x00000000b9f453bc,	/* 5 nodes */
	0x000000000d78a7ac,	/* 5 nodes */
	0x00000000c2c581e1,	/* 3 nodes */
	0x0000000052b8c938,	/* 3 nodes */
	0x00000000bd527da7,	/* 3 nodes */
	0x00000000f9c1710e,	/* 3 nodes */
	0x00000000a0ca18e9,	/* 5 nodes */
	0x000000009285e68a,	/* 3 nodes */
	0x0000000047d2c0c4,	/* 5 nodes */
};

struct cli {
	bool have_seed, have_seeds, have_base, ci, demo, bench, trace;
	bool until_violation;
	uint64_t seed, seeds, base, steps;
	int nodes, jobs;
};

static void
usage(int status)
{
	fputs(USAGE, status == 0 ? stdout : stderr);
	exit(status);
}

static uint64_t
parse_u64(const char *opt, const char *s)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || *s == '\0' || *s == '-' || *end != '\0') {
		fprintf(stderr, "dsc-sim: error: invalid number '%s' for %s\n",
			s, opt);
		usage(2);
	}
	return v;
}

/* "--name value" or "--name=value". */
static const char *
value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "dsc-sim: error: %s needs a value\n", name);
		usage(2);
	}
	return argv[++*i];
}

/* Refuses combinations that make no sense, by name. */
static void
check(const struct cli *c)
{
	if (c->have_seeds + c->ci + c->demo + c->bench > 1 ||
	    (c->have_seed && (c->have_seeds || c->ci)) ||
	    (!c->have_seed && !c->have_seeds && !c->ci && !c->demo &&
	     !c->bench)) {
		fprintf(stderr, "dsc-sim: error: give one of --seed, --seeds, "
				"--ci, --demo, --bench\n");
		usage(2);
	}
	if (c->nodes != 0 && c->nodes != 3 && c->nodes != 5) {
		fprintf(stderr, "dsc-sim: error: --nodes must be 3 or 5\n");
		usage(2);
	}
	if (c->jobs < 0 || c->jobs > MAX_JOBS) {
		fprintf(stderr, "dsc-sim: error: --jobs must be 1..%d\n",
			MAX_JOBS);
		usage(2);
	}
	if (c->until_violation && !c->have_seeds) {
		fprintf(stderr, "dsc-sim: error: --until-violation needs "
				"--seeds\n");
		usage(2);
	}
}

static void
parse(int argc, char **argv, struct cli *c)
{
	const char *v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			usage(0);
		else if ((v = value(argc, argv, &i, "--seeds")) != NULL)
			c->have_seeds = true, c->seeds = parse_u64(a, v);
		else if ((v = value(argc, argv, &i, "--seed")) != NULL)
			c->have_seed = true, c->seed = parse_u64(a, v);
		else if ((v = value(argc, argv, &i, "--base")) != NULL)
			c->have_base = true, c->base = parse_u64(a, v);
		else if ((v = value(argc, argv, &i, "--steps")) != NULL)
			c->steps = parse_u64(a, v);
		else if ((v = value(argc, argv, &i, "--jobs")) != NULL)
			c->jobs = (int)parse_u64(a, v);
		else if ((v = value(argc, argv, &i, "--nodes")) != NULL)
			c->nodes = (int)parse_u64(a, v);
		else if (strcmp(a, "--trace") == 0)
			c->trace = true;
		else if (strcmp(a, "--until-violation") == 0)
			c->until_violation = true;
		else if (strcmp(a, "--ci") == 0)
			c->ci = true;
		else if (strcmp(a, "--demo") == 0)
			c->demo = true;
		else if (strcmp(a, "--bench") == 0)
			c->bench = true;
		else {
			fprintf(stderr, "dsc-sim: error: unknown argument "
					"'%s'\n", a);
			usage(2);
		}
	}
	check(c);
}

/* ---- stats and reports ------------------------------------------------ */

uint64_t
sim_stats_faults(const struct sim_stats *s)
{
	return s->drops + s->dups + s->delays + s->partitions + s->crashes +
	       s->pauses + s->confs + s->transfers;
}

void
sim_stats_add(struct sim_stats *to, const struct sim_stats *from)
{
#define SIM_STATS_ADD(f) to->f += from->f;
	SIM_STATS(SIM_STATS_ADD)
#undef SIM_STATS_ADD
}

static void
print_stats(const struct sim_stats *s)
{
	printf("faults: %llu drops, %llu dups, %llu delays, %llu partitions, "
	       "%llu crashes, %llu restarts, %llu pauses, %llu conf changes, "
	       "%llu snapshots installed, %llu transfers\n",
	       U(s->drops), U(s->dups), U(s->delays), U(s->partitions),
	       U(s->crashes), U(s->restarts), U(s->pauses), U(s->confs),
	       U(s->snaps_installed), U(s->transfers));
	printf("work: %llu elections, %llu proposals, %llu acknowledged, "
	       "%llu reads ok, %llu reads failed, %llu compactions; "
	       "%llu 3-node and %llu 5-node seeds\n",
	       U(s->elections), U(s->proposals), U(s->acks), U(s->reads_ok),
	       U(s->reads_failed), U(s->compactions), U(s->seeds_3),
	       U(s->seeds_5));
}

static void
print_failure(const struct cli *c, const struct sim_result *r)
{
	printf("FAIL seed 0x%016llx (#%llu): step %llu: %s\n", U(r->seed),
	       U(r->idx), U(r->viol_step), r->why);
	printf("SIM_SEED=0x%016llx SIM_STEP=%llu", U(r->seed),
	       U(r->viol_step));
	/* A replay needs the options that shaped the run. */
	if (c->steps != 0 && c->steps != SIM_DEFAULT_STEPS)
		printf(" (replay with --steps %llu)", U(c->steps));
	if (c->nodes != 0)
		printf(" (replay with --nodes %d)", c->nodes);
	printf("\n");
}

static uint64_t
seed_at(const struct cli *c, uint64_t i)
{
	size_t nfixed = sizeof(ci_seeds) / sizeof(ci_seeds[0]);

	if (c->ci) {
		if (i < nfixed)
			return ci_seeds[i];
		i -= nfixed;
	}
	/* The splitmix64 sequence from the base. */
	return sim_mix64(c->base + (i + 1) * 0x9e3779b97f4a7c15ull);
}

static void
run_one(const struct cli *c, uint64_t idx, struct sim_result *r)
{
	struct sim_opts o = { 0 };

	o.seed = seed_at(c, idx);
	o.steps = c->steps;
	o.nodes = c->nodes;
	sim_run(&o, r);
	r->idx = idx;
}

/* ---- workers ------------------------------------------------------------ */

struct worker {
	pid_t pid;
	int to, from;
	bool busy;
	uint64_t idx;
	size_t got;
	union {
		struct sim_result r;
		uint8_t b[sizeof(struct sim_result)];
	} u;
};

static bool
write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = write(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static bool
read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t k = read(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static void
worker_main(const struct cli *c, int in, int out)
{
	struct sim_result r;
	uint64_t idx;

	while (read_all(in, &idx, sizeof(idx))) {
		alarm(SEED_ALARM_S);
		run_one(c, idx, &r);
		alarm(0);
		if (!write_all(out, &r, sizeof(r)))
			break;
	}
	/* exit(), not _exit(): a leak checker runs at exit. */
	exit(0);
}

static void
worker_spawn(const struct cli *c, struct worker *w, struct worker *all,
	     int n)
{
	int down[2], up[2];

	if (pipe(down) != 0 || pipe(up) != 0)
		sim_die("pipe: %s", strerror(errno));
	fflush(stdout);
	w->pid = fork();
	if (w->pid < 0)
		sim_die("fork: %s", strerror(errno));
	if (w->pid == 0) {
		for (int i = 0; i < n; i++)
			if (all[i].pid > 0 && &all[i] != w) {
				close(all[i].to);
				close(all[i].from);
			}
		close(down[1]);
		close(up[0]);
		worker_main(c, down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	w->to = down[1];
	w->from = up[0];
	w->busy = false;
	w->got = 0;
}

/* Ends a worker; false if it failed on its way out (a leak report). */
static bool
worker_stop(struct worker *w, bool kill_it)
{
	int st = 0;

	if (w->pid <= 0)
		return true;
	close(w->to);
	close(w->from);
	if (kill_it)
		kill(w->pid, SIGKILL);
	while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
		;
	w->pid = 0;
	if (kill_it || (WIFEXITED(st) && WEXITSTATUS(st) == 0))
		return true;
	fprintf(stderr, "dsc-sim: a worker failed at exit (status 0x%x); "
			"see its report above\n", st);
	return false;
}

/* The worker died mid-seed: its seed fails with the reason. */
static void
worker_died(const struct cli *c, struct worker *w, struct sim_result *r)
{
	int st = 0;

	close(w->to);
	close(w->from);
	while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
		;
	w->pid = 0;
	memset(r, 0, sizeof(*r));
	r->idx = w->idx;
	r->seed = seed_at(c, w->idx);
	r->violated = true;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
		snprintf(r->why, sizeof(r->why), "seed ran past %d s (hang?)",
			 SEED_ALARM_S);
	else if (WIFSIGNALED(st))
		snprintf(r->why, sizeof(r->why), "worker killed by signal %d "
			 "(crash in the core or the simulator)",
			 WTERMSIG(st));
	else
		snprintf(r->why, sizeof(r->why), "worker exited %d mid-seed",
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* ---- the multi-seed runner ---------------------------------------------- */

struct runner {
	const struct cli *c;
	uint64_t total, next, cursor;
	struct sim_result *ring;
	bool *have;
	struct sim_stats sum;
	uint64_t seeds, failed;
	bool stop;
	struct sim_result first;	/* --until-violation: the catch */
};

static void
report(struct runner *R, const struct sim_result *r)
{
	sim_stats_add(&R->sum, &r->st);
	R->seeds++;
	if (!r->violated)
		return;
	R->failed++;
	print_failure(R->c, r);
	if (R->c->until_violation) {
		R->stop = true;
		R->first = *r;
	}
}

/* Files a result and reports every result now due, in seed order. */
static void
file(struct runner *R, const struct sim_result *r)
{
	R->ring[r->idx % RESULT_WINDOW] = *r;
	R->have[r->idx % RESULT_WINDOW] = true;
	while (!R->stop && R->cursor < R->total &&
	       R->have[R->cursor % RESULT_WINDOW]) {
		R->have[R->cursor % RESULT_WINDOW] = false;
		report(R, &R->ring[R->cursor % RESULT_WINDOW]);
		R->cursor++;
	}
}

static void
assign(struct runner *R, struct worker *w)
{
	if (w->busy || R->stop || R->next >= R->total ||
	    R->next >= R->cursor + RESULT_WINDOW)
		return;
	w->idx = R->next++;
	w->busy = true;
	w->got = 0;
	(void)write_all(w->to, &w->idx, sizeof(w->idx));	/* EOF tells */
}

static void
collect(struct runner *R, struct worker *w, struct worker *all, int n)
{
	ssize_t k = read(w->from, w->u.b + w->got, sizeof(w->u) - w->got);
	struct sim_result r;

	if (k < 0 && errno == EINTR)
		return;
	if (k <= 0) {
		worker_died(R->c, w, &r);
		file(R, &r);
		worker_spawn(R->c, w, all, n);
		return;
	}
	w->got += (size_t)k;
	if (w->got == sizeof(w->u)) {
		w->busy = false;
		file(R, &w->u.r);
	}
}

static void
drive(struct runner *R, struct worker *w, int jobs)
{
	struct pollfd pfd[MAX_JOBS];
	int map[MAX_JOBS];

	while (!R->stop && R->cursor < R->total) {
		int np = 0;

		for (int i = 0; i < jobs; i++) {
			assign(R, &w[i]);
			if (w[i].busy) {
				pfd[np].fd = w[i].from;
				pfd[np].events = POLLIN;
				map[np++] = i;
			}
		}
		if (np == 0)
			break;
		if (poll(pfd, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			sim_die("poll: %s", strerror(errno));
		}
		for (int i = 0; i < np; i++)
			if (pfd[i].revents != 0)
				collect(R, &w[map[i]], w, jobs);
	}
}

static double
wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
run_many(const struct cli *c, uint64_t total)
{
	struct worker w[MAX_JOBS];
	struct runner R = { 0 };
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int jobs = c->jobs != 0 ? c->jobs : (ncpu > 0 ? (int)ncpu : 1);
	double t0 = wall(), dt;
	bool clean = true;

	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	if ((uint64_t)jobs > total)
		jobs = total > 0 ? (int)total : 1;
	R.c = c;
	R.total = total;
	R.ring = xcalloc(RESULT_WINDOW, sizeof(*R.ring));
	R.have = xcalloc(RESULT_WINDOW, sizeof(*R.have));
	memset(w, 0, sizeof(w));
	signal(SIGPIPE, SIG_IGN);
	/* Stdout is the same for any number of jobs; timing goes to stderr. */
	printf("sim: %llu seeds from base 0x%016llx, %llu steps each "
	       "(replay the run with --base 0x%016llx)\n",
	       U(total), U(c->base), U(c->steps != 0 ? c->steps
						     : SIM_DEFAULT_STEPS),
	       U(c->base));
	for (int i = 0; i < jobs; i++)
		worker_spawn(c, &w[i], w, jobs);
	drive(&R, w, jobs);
	for (int i = 0; i < jobs; i++)
		clean &= worker_stop(&w[i], R.stop);
	dt = wall() - t0;
	print_stats(&R.sum);
	if (R.stop)
		printf("sim: first violation: seed 0x%016llx after %llu seeds\n",
		       U(R.first.seed), U(R.seeds));
	if (!c->ci)
		printf("%llu passed, %llu failed\n", U(R.seeds - R.failed),
		       U(R.failed));
	printf("sim: %llu seeds, %llu steps, %llu faults, %llu violations\n",
	       U(R.seeds), U(R.sum.steps), U(sim_stats_faults(&R.sum)),
	       U(R.failed));
	if (c->ci)
		printf("%llu passed, %llu failed\n", U(R.seeds - R.failed),
		       U(R.failed));
	fprintf(stderr, "dsc-sim: %llu seeds in %.1f s on %d jobs (%.1f "
			"seeds/s, %.0f steps/s)\n",
		U(R.seeds), dt, jobs, dt > 0 ? (double)R.seeds / dt : 0.0,
		dt > 0 ? (double)R.sum.steps / dt : 0.0);
	free(R.ring);
	free(R.have);
	return R.failed > 0 || !clean ? 1 : 0;
}

/* ---- single runs -------------------------------------------------------- */

static int
run_single(const struct cli *c, enum sim_mode mode, uint64_t seed)
{
	struct sim_opts o = { 0 };
	struct sim_result r;

	o.seed = seed;
	o.steps = c->steps;
	o.nodes = c->nodes;
	o.trace = c->trace || mode == SIM_MODE_DEMO;
	o.mode = mode;
	o.out = stdout;
	if (mode == SIM_MODE_DEMO)
		printf("dsc-sim demo: 3 real Raft cores, one client, a virtual "
		       "clock (seconds.microseconds, then the step).\n"
		       "Heartbeats are summarized in the status lines; "
		       "F/P/C/L = follower, pre-candidate, candidate, "
		       "leader;\nc = commit index, a = applied index.\n\n");
	sim_run(&o, &r);
	r.idx = 0;
	if (r.violated)
		print_failure(c, &r);
	else
		printf("seed 0x%016llx: ok after %llu steps\n", U(seed),
		       U(r.st.steps));
	print_stats(&r.st);
	printf("%d passed, %d failed\n", !r.violated, r.violated);
	printf("sim: 1 seeds, %llu steps, %llu faults, %d violations\n",
	       U(r.st.steps), U(sim_stats_faults(&r.st)), r.violated);
	return r.violated ? 1 : 0;
}

static int
run_bench(const struct cli *c)
{
	struct sim_opts o = { 0 };
	uint64_t acked = 0;
	double cpu = 0;
	int rv;

	o.seed = c->have_seed ? c->seed : 1;
	o.mode = SIM_MODE_BENCH;
	o.out = stdout;
	rv = sim_bench(&o, BENCH_PROPOSALS, BENCH_MAX_CPU, &acked, &cpu);
	printf("bench: %llu proposals committed in %.2f CPU-seconds: %.0f "
	       "proposals/CPU-second\n",
	       U(acked), cpu, cpu > 0 ? (double)acked / cpu : 0.0);
	return rv;
}

static uint64_t
random_base(void)
{
	uint64_t b = 0;
	int fd = open("/dev/urandom", O_RDONLY);

	if (fd < 0 || !read_all(fd, &b, sizeof(b)))
		b = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	if (fd >= 0)
		close(fd);
	return b;
}

int
main(int argc, char **argv)
{
	struct cli c = { 0 };

	parse(argc, argv, &c);
	if (!c.have_base)
		c.base = random_base();
	if (c.demo)
		return run_single(&c, SIM_MODE_DEMO, c.have_seed ? c.seed : 1);
	if (c.bench)
		return run_bench(&c);
	if (c.have_seeds)
		return run_many(&c, c.seeds);
	if (c.ci) {
		if (c.steps == 0)
			c.steps = CI_STEPS;
		return run_many(&c, sizeof(ci_seeds) / sizeof(ci_seeds[0]) +
					    CI_RANDOM_SEEDS);
	}
	return run_single(&c, SIM_MODE_RANDOM, c.seed);
}

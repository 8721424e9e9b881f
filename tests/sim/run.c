/*
 * run.c - one seed from start to verdict.
 *
 * The seed draws a profile (cluster size, core options, fault rates),
 * boots the cluster and runs the event loop: pop the earliest event, set
 * the virtual clock to it, dispatch it, then run the per-step checks. After
 * the step budget the liveness phase heals everything, proposes once and
 * requires that the proposal commit on a majority and that every voter
 * converge to the same applied index and hash within a bounded number of
 * ticks. The bench reuses the loop with faults off and clients flat out.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"

#define U(x) ((unsigned long long)(x))
#define PICK(rng, arr) ((arr)[prng_below((rng), sizeof(arr) / sizeof((arr)[0]))])

/* Virtual time the demo's fault phase lasts. */
#define DEMO_US 3600000

void
sim_schedule(struct sim *g, uint64_t at, enum sim_ev_kind kind, int node,
	     int64_t arg)
{
	struct sim_event ev = { 0 };

	ev.at = at;
	ev.kind = (uint16_t)kind;
	ev.node = (int16_t)node;
	ev.arg = arg;
	if (node >= 0)
		ev.gen = (uint32_t)arg;
	queue_push(&g->q, &ev);
}

/* Up and not paused: a paused process takes no requests. */
bool
sim_active(const struct sim *g, const struct sim_node *n)
{
	return n->state == NODE_UP && n->paused_until <= g->now;
}

struct sim_node *
sim_leader(struct sim *g)
{
	struct sim_node *best = NULL;

	for (int i = 0; i < g->n_slots; i++) {
		struct sim_node *n = &g->nodes[i];

		if (n->state == NODE_UP && raft_role(n->r) == RAFT_LEADER &&
		    (best == NULL || raft_term(n->r) > raft_term(best->r)))
			best = n;
	}
	return best;
}

/* ---- profiles ------------------------------------------------------------ */

static void
profile_random(struct sim_profile *p, struct prng *r)
{
	static const size_t msg_bytes[] = { 0, 0, 64, 300, 4096 };
	static const unsigned inflight[] = { 0, 0, 1, 4, 16 };
	static const uint64_t lat[] = { 1000, 3000, 8000, 20000 };
	static const uint32_t drop[] = { 0, 2000, 10000, 50000, 150000 };
	static const uint32_t dup[] = { 0, 5000, 20000, 60000 };
	static const uint32_t delay[] = { 0, 5000, 20000, 60000 };
	static const uint64_t delay_max[] = { SIM_TICK_US, SIM_ELECTION_US,
					      3 * SIM_ELECTION_US };
	static const uint64_t nemesis[] = { 5, 15, 40 };
	static const uint32_t weight[] = { 0, 1, 2, 4 };
	static const uint32_t cav[] = { 0, 0, 100000, 400000 };
	static const uint64_t every[] = { 2, 8, 30 };
	static const uint64_t cmin[] = { 3, 10, 40 };
	static const uint64_t trailing[] = { 0, 3, 30 };
	static const uint64_t cmean[] = { 3000, 10000, 30000 };
	static const uint32_t skew[] = { 0, 0, 10000, 50000, 500000 };

	p->pre_vote = prng_below(r, 5) != 0;
	p->check_quorum = prng_below(r, 5) != 0;
	p->max_msg_bytes = PICK(r, msg_bytes);
	p->max_inflight = PICK(r, inflight);
	p->max_uncommitted = prng_below(r, 8) == 0 ? 1024 : 0;
	p->lat_min = 100;
	p->lat_max = PICK(r, lat);
	p->drop_pm = PICK(r, drop);
	p->dup_pm = PICK(r, dup);
	p->delay_pm = PICK(r, delay);
	p->delay_max = PICK(r, delay_max);
	p->nemesis_mean = PICK(r, nemesis) * SIM_TICK_US;
	for (int k = 0; k < FAULT_MAX; k++)
		p->weight[k] = PICK(r, weight);
	if (p->weight[FAULT_PARTITION] + p->weight[FAULT_CRASH] == 0)
		p->weight[FAULT_CRASH] = 1;
	p->crash_after_vote_pm = PICK(r, cav);
	p->crash_new_leader_pm = PICK(r, cav);
	p->lose_unsynced = prng_below(r, 2) == 0;
	p->compact_every = PICK(r, every) * SIM_TICK_US;
	p->compact_min = PICK(r, cmin);
	p->trailing_max = PICK(r, trailing);
	p->n_clients = (int)prng_range(r, 1, SIM_MAX_CLIENTS);
	p->window = (int)prng_range(r, 1, 4);
	p->client_mean = PICK(r, cmean);
	p->read_pm = (uint32_t)prng_range(r, 100000, 500000);
	p->skew_pm = PICK(r, skew);
}

void
sim_profile_draw(struct sim_profile *p, struct prng *r, int nodes,
		 enum sim_mode mode)
{
	int drawn = prng_below(r, 5) < 3 ? 3 : 5;

	memset(p, 0, sizeof(*p));
	p->nodes = nodes != 0 ? nodes : drawn;
	p->pre_vote = p->check_quorum = true;
	p->lat_min = 100;
	p->lat_max = 1000;
	switch (mode) {
	case SIM_MODE_RANDOM:
		profile_random(p, r);
		break;
	case SIM_MODE_DEMO:
		p->nodes = nodes != 0 ? nodes : 3;
		p->compact_every = 50 * SIM_TICK_US;
		p->compact_min = 5;
		p->n_clients = 1;
		p->window = 1;
		p->client_mean = 12 * SIM_TICK_US;
		p->read_pm = 250000;
		break;
	case SIM_MODE_BENCH:
		p->nodes = 3;
		p->lat_max = 300;
		p->compact_every = SIM_TICK_US;
		p->compact_min = 5000;
		p->trailing_max = 100;
		p->n_clients = 1;
		p->client_mean = 200;
		break;
	}
}

/* ---- the loop ----------------------------------------------------------- */

static void
status_line(struct sim *g)
{
	char buf[512];
	size_t k = 0;

	for (int i = 0; i < g->n_slots && k < sizeof(buf) - 64; i++) {
		struct sim_node *n = &g->nodes[i];
		static const char roles[] = "FPCL";

		if (n->state == NODE_UP)
			k += (size_t)snprintf(buf + k, sizeof(buf) - k,
					      " n%d:%c/t%llu c%llu a%llu%s",
					      i + 1, roles[raft_role(n->r)],
					      U(raft_term(n->r)),
					      U(raft_commit_index(n->r)),
					      U(n->sm.applied),
					      n->paused_until > g->now
						      ? "(paused)"
						      : "");
		else if (n->state == NODE_DOWN)
			k += (size_t)snprintf(buf + k, sizeof(buf) - k,
					      " n%d:down", i + 1);
	}
	buf[k] = '\0';
	sim_trace(g, "status%s | %llu heartbeats", buf,
		  U(g->net.heartbeats));
	g->net.heartbeats = 0;
}

static void
dispatch(struct sim *g, struct sim_event *ev)
{
	struct sim_node *n;

	switch (ev->kind) {
	case EV_TICK:
		n = &g->nodes[ev->node];
		if (n->state == NODE_UP && n->gen == ev->gen)
			cluster_tick(g, n);
		break;
	case EV_MSG:
		net_deliver(g, ev);
		break;
	case EV_CLIENT:
		client_event(g, ev);
		break;
	default:
		nemesis_event(g, ev);
		break;
	}
}

/* One event and the checks after it; false when nothing is left. */
static bool
step(struct sim *g)
{
	struct sim_event ev;

	if (!queue_pop(&g->q, &ev))
		return false;
	g->now = ev.at;
	g->step++;
	dispatch(g, &ev);
	if (!g->violated)
		check_step(g);
	if (g->opt.trace && g->now >= g->next_status) {
		status_line(g);
		g->next_status = g->now + SIM_ELECTION_US;
	}
	return true;
}

/* ---- liveness ---------------------------------------------------------- */

/* Voters of the committed configuration: how many, how many applied
 * the liveness entry, and whether all agree on (applied, chain). */
static bool
live_done(struct sim *g, char *why, size_t cap)
{
	const struct raft_conf *c = &g->chk.conf;
	uint32_t voters = 0, have = 0;
	bool same = true;
	const struct sim_sm *first = NULL;

	const struct sim_node *l = sim_leader(g);

	/* Lost to a new leader (overwritten, or never replicated): again. */
	if (!g->live_committed && g->live_index != 0 &&
	    ((check_canon_term(g, g->live_index) != 0 &&
	      check_canon_term(g, g->live_index) != g->live_term) ||
	     (l != NULL && raft_term(l->r) != g->live_term)))
		g->live_index = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		int s = cluster_slot(g, c->servers[i].id);
		const struct sim_node *n;

		if (c->servers[i].suffrage != RAFT_VOTER)
			continue;
		voters++;
		if (s < 0 || g->nodes[s].state != NODE_UP) {
			same = false;
			continue;
		}
		n = &g->nodes[s];
		if (g->live_index != 0 && n->sm.applied >= g->live_index)
			have++;
		if (first == NULL)
			first = &n->sm;
		else if (first->applied != n->sm.applied ||
			 first->chain != n->sm.chain)
			same = false;
	}
	if (!g->live_committed && g->live_index != 0 && 2 * have > voters) {
		g->live_committed = true;
		sim_trace(g, "--- liveness: %llu/t%llu committed",
			  U(g->live_index), U(g->live_term));
	}
	snprintf(why, cap, "%s", !g->live_committed ? "no proposal committed"
				 : "voters did not converge");
	return g->live_committed && same && first != NULL &&
	       first->applied >= g->live_index;
}

static void
live_propose(struct sim *g)
{
	struct sim_node *l = sim_leader(g);

	if (l == NULL || l->paused_until > g->now)
		return;
	if (client_propose_live(g, l, &g->live_index, &g->live_term) == 0)
		sim_trace(g, "--- liveness: proposed at n%llu -> %llu/t%llu",
			  U(l->id), U(g->live_index), U(g->live_term));
}

/* Grows whenever any log grows or any state machine applies. */
static uint64_t
progress(const struct sim *g)
{
	uint64_t p = 0;

	for (int i = 0; i < g->n_slots; i++)
		if (g->nodes[i].state == NODE_UP)
			p += disk_last(&g->nodes[i].disk) +
			     g->nodes[i].sm.applied;
	return p;
}

/* Whether the liveness phase ran out of time; records the violation. */
static bool
stalled(struct sim *g, uint64_t start, const char *why)
{
	uint64_t p = progress(g), cap;
	const struct sim_node *l;

	if (p != g->live_progress) {
		g->live_progress = p;
		g->live_progress_at = g->now;
	}
	cap = start + SIM_LIVENESS_MAX_TICKS * (uint64_t)SIM_TICK_US;
	if (g->now <= g->live_progress_at +
			      SIM_LIVENESS_TICKS * (uint64_t)SIM_TICK_US &&
	    g->now <= cap)
		return false;
	status_line(g);
	l = sim_leader(g);
	if (g->now > cap)
		sim_violation(g, "liveness: %s within %d ticks of healing "
				 "(leader: n%llu)",
			      why, SIM_LIVENESS_MAX_TICKS,
			      U(l != NULL ? l->id : 0));
	else
		sim_violation(g, "liveness: %s, and no progress for %d ticks "
				 "after healing (leader: n%llu)",
			      why, SIM_LIVENESS_TICKS,
			      U(l != NULL ? l->id : 0));
	return true;
}

static void
liveness(struct sim *g)
{
	uint64_t next_try = 0, start = g->now;
	char why[64];

	g->phase = PHASE_LIVENESS;
	nemesis_heal_all(g);
	g->live_progress_at = g->now;
	while (!g->violated && !live_done(g, why, sizeof(why))) {
		if (stalled(g, start, why))
			return;
		if (!g->live_committed && g->live_index == 0 &&
		    g->now >= next_try) {
			live_propose(g);
			next_try = g->now + SIM_TICK_US;
		}
		if (!step(g)) {
			sim_violation(g, "liveness: no events left");
			return;
		}
	}
	if (!g->violated)
		sim_trace(g, "--- liveness: every voter applied %llu, same hash",
			  U(g->live_index));
}

/* ---- a seed ------------------------------------------------------------- */

static void
boot(struct sim *g)
{
	const struct sim_profile *p = &g->prof;

	g->bootstrap.n = (uint32_t)p->nodes;
	for (int i = 0; i < p->nodes; i++) {
		g->bootstrap.servers[i].id = (uint64_t)i + 1;
		g->bootstrap.servers[i].suffrage = RAFT_VOTER;
	}
	sim_trace(g, "seed 0x%llx: %d nodes, pre-vote %s, check-quorum %s, "
		     "drop %u dup %u delay %u per million, lose-unsynced %s, "
		     "clock skew up to %u per million",
		  U(g->opt.seed), p->nodes, p->pre_vote ? "on" : "off",
		  p->check_quorum ? "on" : "off", p->drop_pm, p->dup_pm,
		  p->delay_pm, p->lose_unsynced ? "yes" : "no", p->skew_pm);
	for (int i = 0; i < p->nodes; i++)
		cluster_boot(g, i, true);
	nemesis_start(g);
	client_start(g);
}

static void
teardown(struct sim *g)
{
	cluster_release(g);
	queue_release(&g->q);
	check_release(&g->chk);
	free(g);
}

static struct sim *
setup(const struct sim_opts *o)
{
	struct sim *g = xcalloc(1, sizeof(*g));

	g->opt = *o;
	if (g->opt.out == NULL)
		g->opt.out = stdout;
	prng_seed(&g->rng, o->seed);
	sim_profile_draw(&g->prof, &g->rng, o->nodes, o->mode);
	g->max_steps = o->steps != 0 ? o->steps : SIM_DEFAULT_STEPS;
	boot(g);
	return g;
}

void
sim_run(const struct sim_opts *o, struct sim_result *res)
{
	struct sim *g = setup(o);

	while (!g->violated && g->step < g->max_steps &&
	       (o->mode != SIM_MODE_DEMO || g->now < DEMO_US))
		if (!step(g))
			break;
	if (!g->violated)
		liveness(g);
	g->phase = PHASE_DONE;
	g->st.steps = g->step;
	if (g->prof.nodes == 3)
		g->st.seeds_3 = 1;
	else
		g->st.seeds_5 = 1;
	memset(res, 0, sizeof(*res));
	res->seed = o->seed;
	res->st = g->st;
	res->violated = g->violated;
	res->viol_step = g->viol_step;
	memcpy(res->why, g->why, sizeof(res->why));
	teardown(g);
}

/*
 * The bench: 3 nodes, no faults, a client keeping a window of proposals
 * at the leader, until @target are acknowledged or @max_cpu CPU-seconds
 * pass. The checks stay on. Returns 0, or 1 on a violation (printed).
 */
int
sim_bench(const struct sim_opts *o, uint64_t target, double max_cpu,
	  uint64_t *acked, double *cpu)
{
	struct sim *g = setup(o);
	clock_t t0 = clock();
	int rv = 0;

	while (!g->violated && g->st.acks < target && step(g))
		if ((g->step & 4095) == 0 &&
		    (double)(clock() - t0) / CLOCKS_PER_SEC > max_cpu)
			break;
	*cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
	*acked = g->st.acks;
	if (g->violated) {
		fprintf(stderr, "bench: violation at step %llu: %s\n",
			U(g->viol_step), g->why);
		rv = 1;
	}
	teardown(g);
	return rv;
}

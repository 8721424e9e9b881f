/*
 * nemesis.c - the faults that are not per-message: partitions, crashes and
 * restarts, pauses, membership changes, leadership transfers, and the
 * simulator's own snapshots (log compaction, which is what makes lagging
 * followers need InstallSnapshot).
 *
 * In random mode an EV_NEMESIS event fires every so often (the seed's
 * profile sets the mean and the weight of each fault kind) and picks one
 * fault. Partitions: isolate the leader, a minority/majority split, a
 * non-transitive bridge (A-B and B-C up, A-C cut), a one-way link, or a
 * single cut link; each heals after a while. Crashes hit the leader or any
 * node and restart it from its disk later; with the crash-after-vote rate
 * a node may also crash right after granting a vote, which is when a
 * forgotten vote hurts. Membership changes follow chapter 4 one step at a
 * time: add a fresh, empty node as a learner, promote it, remove or demote
 * a voter (the leader included), keeping three voters or so.
 */
#include "sim.h"

#include <string.h>

#include "err.h"

#define U(x) ((unsigned long long)(x))

/* Longest partition and pause, in ticks. */
#define PARTITION_MAX_TICKS 40
#define PAUSE_MAX_TICKS (4 * SIM_ELECTION_TICKS)
/* Longest downtime after a crash, in us. */
#define DOWN_MAX_US (6 * SIM_ELECTION_US)

static int
present(struct sim *g, int *out)
{
	int k = 0;

	for (int i = 0; i < g->n_slots; i++)
		if (g->nodes[i].state == NODE_UP ||
		    g->nodes[i].state == NODE_DOWN)
			out[k++] = i;
	return k;
}

static void
shuffle(struct sim *g, int *a, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = (int)prng_below(&g->rng, (uint64_t)i + 1), t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static void
cut_both(struct sim *g, int a, int b)
{
	net_cut(g, a, b);
	net_cut(g, b, a);
}

/* ---- partitions ------------------------------------------------------- */

/* p[0..m) against p[m..k): a clean split. */
static void
split(struct sim *g, const int *p, int k, int m)
{
	for (int i = 0; i < m; i++)
		for (int j = m; j < k; j++)
			cut_both(g, p[i], p[j]);
}

/* One-way faults: a single link, or a leader that cannot send/receive. */
static void
one_way(struct sim *g, const int *p, int k, int ls)
{
	bool out;

	if (prng_below(&g->rng, 2) == 0) {
		net_cut(g, p[0], p[1]);
		sim_trace(g, "PARTITION one-way n%d -> n%d cut", p[0] + 1,
			  p[1] + 1);
		return;
	}
	out = prng_below(&g->rng, 2) == 0;
	for (int i = 0; i < k; i++)
		if (out)
			net_cut(g, ls, p[i]);
		else
			net_cut(g, p[i], ls);
	sim_trace(g, "PARTITION leader n%d cannot %s", ls + 1,
		  out ? "send" : "receive");
}

static void
partition(struct sim *g)
{
	int p[SIM_MAX_NODES], k = present(g, p), m;
	struct sim_node *l = sim_leader(g);
	int ls = l != NULL ? (int)(l->id - 1) : p[0];
	uint64_t ticks = prng_range(&g->rng, 2, PARTITION_MAX_TICKS);

	if (k < 3)
		return;
	net_heal(g);
	shuffle(g, p, k);
	switch (prng_below(&g->rng, 5)) {
	case 0:
		for (int i = 0; i < k; i++)
			cut_both(g, ls, p[i]);
		sim_trace(g, "PARTITION isolate leader n%d", ls + 1);
		break;
	case 1:
		m = 1 + (int)prng_below(&g->rng, (uint64_t)(k - 1) / 2);
		split(g, p, k, m);
		sim_trace(g, "PARTITION split: %d nodes (n%d...) | %d nodes "
			     "(n%d...)",
			  m, p[0] + 1, k - m, p[m] + 1);
		break;
	case 2:
		/* p[0] bridges two groups that cannot reach each other. */
		m = 1 + (int)prng_below(&g->rng, (uint64_t)k - 2);
		split(g, p + 1, k - 1, m);
		sim_trace(g, "PARTITION bridge: n%d reaches both sides, "
			     "n%d... and n%d... cut apart",
			  p[0] + 1, p[1] + 1, p[m + 1] + 1);
		break;
	case 3:
		one_way(g, p, k, ls);
		break;
	default:
		cut_both(g, p[0], p[1]);
		sim_trace(g, "PARTITION link n%d <-> n%d cut", p[0] + 1,
			  p[1] + 1);
		break;
	}
	g->st.partitions++;
	sim_schedule(g, g->now + ticks * SIM_TICK_US, EV_HEAL, -1,
		     (int64_t)g->st.partitions);
}

/* ---- crashes and pauses ------------------------------------------------ */

static struct sim_node *
victim(struct sim *g)
{
	int p[SIM_MAX_NODES], k = 0;
	struct sim_node *l = sim_leader(g);

	if (l != NULL && prng_below(&g->rng, 5) < 2)
		return l;
	for (int i = 0; i < g->n_slots; i++)
		if (g->nodes[i].state == NODE_UP)
			p[k++] = i;
	return k > 0 ? &g->nodes[p[prng_below(&g->rng, (uint64_t)k)]] : NULL;
}

/* Whether one more voter may go down without losing the majority. */
static bool
may_crash(struct sim *g)
{
	const struct raft_conf *c = &g->chk.conf;
	uint32_t voters = 0, down = 0;

	for (uint32_t i = 0; i < c->n; i++) {
		int s = cluster_slot(g, c->servers[i].id);

		if (c->servers[i].suffrage != RAFT_VOTER)
			continue;
		voters++;
		down += s >= 0 && g->nodes[s].state != NODE_UP;
	}
	/* Now and then a majority goes down too. */
	return 2 * (down + 1) < voters || prng_below(&g->rng, 10) == 0;
}

static void
crash(struct sim *g, struct sim_node *n, uint64_t down_us)
{
	cluster_crash(g, n);
	sim_schedule(g, g->now + down_us, EV_RESTART, (int)(n->id - 1),
		     n->gen);
}

static void
pause_node(struct sim *g)
{
	struct sim_node *n = victim(g);
	uint64_t ticks = prng_range(&g->rng, 1, PAUSE_MAX_TICKS);

	if (n == NULL || n->paused_until > g->now)
		return;
	n->paused_until = g->now + ticks * SIM_TICK_US;
	g->st.pauses++;
	sim_trace(g, "PAUSE n%llu for %llu ticks%s", U(n->id), U(ticks),
		  n->role == RAFT_LEADER ? " (leader)" : "");
	sim_schedule(g, n->paused_until, EV_RESUME, (int)(n->id - 1), n->gen);
}

/*
 * A new leader that dies before its no-op commits leaves entries of
 * several terms half-replicated: the ground on which Figure 3.7's
 * "commit only entries of your own term" rule matters.
 */
void
nemesis_on_leader(struct sim *g, struct sim_node *n)
{
	if (g->phase != PHASE_FAULTS ||
	    !prng_chance(&g->rng, g->prof.crash_new_leader_pm))
		return;
	sim_schedule(g, g->now + prng_range(&g->rng, 0, 2 * SIM_TICK_US),
		     EV_CRASH, (int)(n->id - 1), n->gen);
}

void
nemesis_on_vote(struct sim *g, struct sim_node *n)
{
	if (g->phase != PHASE_FAULTS ||
	    !prng_chance(&g->rng, g->prof.crash_after_vote_pm))
		return;
	sim_schedule(g, g->now + prng_range(&g->rng, 0, 2000), EV_CRASH,
		     (int)(n->id - 1), n->gen);
}

/* ---- membership (chapter 4) -------------------------------------------- */

static const char *const conf_op_names[] = { "?", "add learner", "promote",
					     "remove", "demote" };

static void
propose_conf(struct sim *g, struct sim_node *l, enum raft_conf_op op,
	     uint64_t id)
{
	uint64_t index = 0;
	int rv = raft_propose_conf(l->r, op, id, &index);

	if (rv == 0) {
		g->st.confs++;
		sim_trace(g, "CONF n%llu proposes %s n%llu at %llu", U(l->id),
			  conf_op_names[op], U(id), U(index));
		cluster_drain(g, l);
	} else {
		sim_trace(g, "conf: %s n%llu at n%llu: %s", conf_op_names[op],
			  U(id), U(l->id), dsc_strerror(rv));
	}
}

/* A node to add: a spare one already running, or a fresh empty one. */
static uint64_t
spare(struct sim *g, const struct raft_conf *c)
{
	for (int i = 0; i < g->n_slots; i++) {
		struct sim_node *n = &g->nodes[i];

		if ((n->state == NODE_UP || n->state == NODE_DOWN) &&
		    !n->removed && raft_conf_find(c, n->id) < 0)
			return n->id;
	}
	if (g->n_slots == SIM_MAX_NODES)
		return 0;
	cluster_boot(g, g->n_slots, false);
	return (uint64_t)g->n_slots;
}

static uint64_t
pick(struct sim *g, const struct raft_conf *c, enum raft_suffrage want)
{
	uint64_t ids[RAFT_MAX_SERVERS];
	uint32_t k = 0;

	for (uint32_t i = 0; i < c->n; i++)
		if (c->servers[i].suffrage == want)
			ids[k++] = c->servers[i].id;
	return k > 0 ? ids[prng_below(&g->rng, k)] : 0;
}

static void
membership(struct sim *g)
{
	struct sim_node *l = sim_leader(g);
	const struct raft_conf *c;
	uint64_t id;
	uint32_t voters;
	int s;

	if (l == NULL || !sim_active(g, l))
		return;
	c = raft_conf(l->r);
	voters = raft_conf_voters(c);
	if ((id = pick(g, c, RAFT_LEARNER)) != 0) {
		s = cluster_slot(g, id);
		if (s >= 0 && g->nodes[s].state == NODE_UP &&
		    prng_below(&g->rng, 4) != 0)
			propose_conf(g, l, RAFT_CONF_PROMOTE, id);
		else
			propose_conf(g, l, RAFT_CONF_REMOVE, id);
		return;
	}
	if (voters > (uint32_t)g->prof.nodes ||
	    (voters > 3 && prng_below(&g->rng, 3) == 0) ||
	    (voters == 3 && prng_below(&g->rng, 10) == 0)) {
		id = prng_below(&g->rng, 10) < 3 ? l->id
						  : pick(g, c, RAFT_VOTER);
		propose_conf(g, l,
			     prng_below(&g->rng, 3) == 0 ? RAFT_CONF_DEMOTE
							 : RAFT_CONF_REMOVE,
			     id);
		return;
	}
	if ((id = spare(g, c)) != 0)
		propose_conf(g, l, RAFT_CONF_ADD_LEARNER, id);
}

/* A committed configuration dropped @id: decommission it a bit later. */
void
nemesis_on_removed(struct sim *g, uint64_t id)
{
	int s = cluster_slot(g, id);

	if (s < 0 || g->nodes[s].removed)
		return;
	g->nodes[s].removed = true;
	sim_trace(g, "n%llu is out of the committed configuration", U(id));
	sim_schedule(g, g->now + prng_range(&g->rng, 0, 3 * SIM_ELECTION_US),
		     EV_DECOM, s, 0);
}

static void
transfer(struct sim *g)
{
	struct sim_node *l = sim_leader(g);
	uint64_t to;
	int rv;

	if (l == NULL || !sim_active(g, l))
		return;
	to = pick(g, raft_conf(l->r), RAFT_VOTER);
	if (to == 0 || to == l->id)
		return;
	rv = raft_transfer_leader(l->r, to);
	if (rv == 0) {
		g->st.transfers++;
		sim_trace(g, "TRANSFER leadership n%llu -> n%llu", U(l->id),
			  U(to));
		cluster_drain(g, l);
	}
}

/* ---- compaction ------------------------------------------------------ */

static void
compact(struct sim *g)
{
	int p[SIM_MAX_NODES], k = 0;
	struct sim_node *n;

	for (int i = 0; i < g->n_slots; i++)
		if (sim_active(g, &g->nodes[i]))
			p[k++] = i;
	if (k == 0)
		return;
	n = &g->nodes[p[prng_below(&g->rng, (uint64_t)k)]];
	if (n->sm.applied < g->prof.compact_min ||
	    (n->disk.has_snap &&
	     n->sm.applied - n->disk.snap.index < g->prof.compact_min))
		return;
	cluster_compact(g, n, prng_range(&g->rng, 0, g->prof.trailing_max));
}

/* ---- the demo's script -------------------------------------------------- */

enum script_action { SCRIPT_CRASH_LEADER, SCRIPT_ISOLATE_LEADER, SCRIPT_END };

static const struct {
	uint64_t at_ms;
	enum script_action action;
	const char *say;
} script[] = {
	{ 700, SCRIPT_CRASH_LEADER, "crash the leader; the others elect one" },
	{ 2000, SCRIPT_ISOLATE_LEADER,
	  "isolate the new leader; it steps down, the majority moves on" },
	{ 3300, SCRIPT_END, "faults over" },
};

static void
script_step(struct sim *g, size_t i)
{
	struct sim_node *l = sim_leader(g);

	sim_trace(g, "--- demo: %s", script[i].say);
	switch (script[i].action) {
	case SCRIPT_CRASH_LEADER:
		if (l != NULL)
			crash(g, l, 60 * SIM_TICK_US);
		break;
	case SCRIPT_ISOLATE_LEADER:
		if (l != NULL) {
			for (int s = 0; s < g->n_slots; s++)
				cut_both(g, (int)(l->id - 1), s);
			g->st.partitions++;
			sim_trace(g, "PARTITION isolate leader n%llu",
				  U(l->id));
			sim_schedule(g, g->now + 80 * SIM_TICK_US, EV_HEAL, -1,
				     (int64_t)g->st.partitions);
		}
		break;
	case SCRIPT_END:
		break;
	}
	if (i + 1 < sizeof(script) / sizeof(script[0]))
		sim_schedule(g, script[i + 1].at_ms * 1000, EV_SCRIPT, -1,
			     (int64_t)i + 1);
}

/* ---- dispatch ----------------------------------------------------------- */

static void
fault(struct sim *g)
{
	uint32_t total = 0, x;
	int k;

	for (k = 0; k < FAULT_MAX; k++)
		total += g->prof.weight[k];
	if (total == 0)
		return;
	x = (uint32_t)prng_below(&g->rng, total);
	for (k = 0; x >= g->prof.weight[k]; k++)
		x -= g->prof.weight[k];
	switch (k) {
	case FAULT_PARTITION:
		partition(g);
		break;
	case FAULT_CRASH: {
		struct sim_node *n = victim(g);

		if (n != NULL && may_crash(g))
			crash(g, n,
			      prng_below(&g->rng, 4) == 0
				      ? prng_range(&g->rng, 100, 3 * SIM_TICK_US)
				      : prng_range(&g->rng, SIM_TICK_US,
						   DOWN_MAX_US));
		break;
	}
	case FAULT_PAUSE:
		pause_node(g);
		break;
	case FAULT_CONF:
		membership(g);
		break;
	default:
		transfer(g);
		break;
	}
}

void
nemesis_event(struct sim *g, const struct sim_event *ev)
{
	struct sim_node *n = ev->node >= 0 ? &g->nodes[ev->node] : NULL;

	switch (ev->kind) {
	case EV_NEMESIS:
		if (g->phase != PHASE_FAULTS)
			return;
		fault(g);
		sim_schedule(g, g->now + prng_range(&g->rng, 1,
						    2 * g->prof.nemesis_mean),
			     EV_NEMESIS, -1, 0);
		break;
	case EV_HEAL:
		if (ev->arg == (int64_t)g->st.partitions && g->net.partitioned) {
			net_heal(g);
			sim_trace(g, "HEAL network");
		}
		break;
	case EV_RESTART:
		if (n->state == NODE_DOWN && n->gen == ev->gen)
			cluster_restart(g, n);
		break;
	case EV_RESUME:
		if (n->state == NODE_UP && n->gen == ev->gen &&
		    n->paused_until <= g->now)
			sim_trace(g, "RESUME n%llu", U(n->id));
		break;
	case EV_CRASH:
		if (g->phase == PHASE_FAULTS && n->state == NODE_UP &&
		    n->gen == ev->gen) {
			sim_trace(g, "crash right after a vote or election:");
			crash(g, n, prng_range(&g->rng, 100, 3 * SIM_TICK_US));
		}
		break;
	case EV_COMPACT:
		compact(g);
		sim_schedule(g, g->now + prng_range(&g->rng, 1,
						    2 * g->prof.compact_every),
			     EV_COMPACT, -1, 0);
		break;
	case EV_DECOM:
		cluster_decommission(g, n);
		break;
	case EV_SCRIPT:
		script_step(g, (size_t)ev->arg);
		break;
	default:
		break;
	}
}

void
nemesis_start(struct sim *g)
{
	if (g->prof.compact_every > 0)
		sim_schedule(g, g->prof.compact_every, EV_COMPACT, -1, 0);
	switch (g->opt.mode) {
	case SIM_MODE_RANDOM:
		g->net.faulty = true;
		sim_schedule(g, prng_range(&g->rng, 1, 2 * g->prof.nemesis_mean),
			     EV_NEMESIS, -1, 0);
		break;
	case SIM_MODE_DEMO:
		sim_schedule(g, script[0].at_ms * 1000, EV_SCRIPT, -1, 0);
		break;
	case SIM_MODE_BENCH:
		break;
	}
}

/* Ends the faults: heal, resume, restart, and retire removed nodes. */
void
nemesis_heal_all(struct sim *g)
{
	sim_trace(g, "--- heal: network healed, faults off, crashed nodes "
		     "restart");
	net_heal(g);
	g->net.faulty = false;
	for (int i = 0; i < g->n_slots; i++) {
		struct sim_node *n = &g->nodes[i];

		if (n->removed)
			cluster_decommission(g, n);
		else if (n->state == NODE_DOWN)
			cluster_restart(g, n);
		else if (n->state == NODE_UP)
			n->paused_until = 0;
	}
}

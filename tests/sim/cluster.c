/*
 * cluster.c - the nodes: real raft cores driven through the ready contract.
 *
 * A node is a core plus its simulated disk and state machine. Every event
 * that touches a core (tick, message, proposal, read, snapshot, transfer)
 * is followed by cluster_drain(), which handles each ready in the order
 * raft.h prescribes: save the snapshot, hard state and entries; send the
 * messages (net_send copies them); restore the snapshot and apply the
 * committed entries; answer the reads; then raft_advance(). A crash drops
 * the core and keeps the disk; a restart builds a new core with raft_new()
 * from exactly what the disk holds.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int
cluster_slot(const struct sim *g, uint64_t id)
{
	if (id == 0 || id > SIM_MAX_NODES)
		return -1;
	if (g->nodes[id - 1].state == NODE_FREE)
		return -1;
	return (int)(id - 1);
}

/* Whether the disk holds entry (@index, @term) or a snapshot covering it. */
bool
cluster_disk_has(const struct sim_node *n, uint64_t index, uint64_t term)
{
	const struct raft_entry *e;

	if (n->disk.has_snap && n->disk.snap.index >= index)
		return true;
	e = disk_entry(&n->disk, index);
	return e != NULL && e->term == term;
}

static void
core_trace(void *ctx, uint64_t id, const char *event)
{
	sim_trace(ctx, "n%llu: %s", (unsigned long long)id, event);
}

static void
schedule_tick(struct sim *g, struct sim_node *n, uint64_t after)
{
	struct sim_event ev = { 0 };

	ev.at = g->now + after;
	ev.kind = EV_TICK;
	ev.node = (int16_t)(n->id - 1);
	ev.gen = n->gen;
	queue_push(&g->q, &ev);
}

static void
core_config(struct sim *g, const struct sim_node *n, struct raft_config *c)
{
	raft_config_init(c, n->id,
			 sim_mix64(g->opt.seed ^ (n->id << 32 | n->gen)));
	c->election_ticks = SIM_ELECTION_TICKS;
	c->heartbeat_ticks = 1;
	c->pre_vote = g->prof.pre_vote;
	c->check_quorum = g->prof.check_quorum;
	if (g->prof.max_msg_bytes != 0)
		c->max_msg_bytes = g->prof.max_msg_bytes;
	if (g->prof.max_inflight != 0)
		c->max_inflight = g->prof.max_inflight;
	c->max_uncommitted_bytes = g->prof.max_uncommitted;
	if (g->opt.trace) {
		c->trace = core_trace;
		c->trace_ctx = g;
	}
}

/* Builds a core from exactly what the disk holds. */
static void
start_core(struct sim *g, struct sim_node *n)
{
	const struct sim_disk *d = &n->disk;
	struct raft_snapshot snap;
	struct raft_state st = { 0 };
	struct raft_config c;
	uint64_t from = 1;
	int err = 0;

	memset(&n->sm, 0, sizeof(n->sm));
	st.hard = d->hard;
	if (d->has_snap) {
		snap.meta = d->snap;
		snap.len = d->snap_len;
		snap.data = d->snap_data;
		st.snapshot = &snap;
		st.applied = d->snap.index;
		from = d->snap.index + 1;
		if (!sm_decode(d->snap_data, d->snap_len, &n->sm))
			sim_die("n%llu: own saved snapshot does not decode",
				(unsigned long long)n->id);
	}
	if (from >= d->base && from < d->base + d->n) {
		st.entries = &d->log[from - d->base];
		st.n_entries = (size_t)(d->base + d->n - from);
	}
	st.bootstrap = n->original ? &g->bootstrap : NULL;
	core_config(g, n, &c);
	n->r = raft_new(&c, &st, &err);
	if (n->r == NULL) {
		sim_violation(g, "n%llu: raft_new refused the saved state "
				 "(term %llu, snapshot %llu, log [%llu, %llu]): %s",
			      (unsigned long long)n->id,
			      (unsigned long long)d->hard.term,
			      (unsigned long long)(d->has_snap ? d->snap.index
							       : 0),
			      (unsigned long long)d->base,
			      (unsigned long long)disk_last(d),
			      dsc_strerror(err));
		n->state = NODE_DOWN;
		return;
	}
	n->state = NODE_UP;
	n->term = raft_term(n->r);
	n->role = RAFT_FOLLOWER;
	n->leader = 0;
	n->paused_until = 0;
	schedule_tick(g, n, prng_range(&g->rng, 1, n->tick_us));
	cluster_drain(g, n);
}

void
cluster_boot(struct sim *g, int slot, bool original)
{
	struct sim_node *n = &g->nodes[slot];
	uint64_t spread = SIM_TICK_US * (uint64_t)g->prof.skew_pm / 1000000;

	memset(n, 0, sizeof(*n));
	n->id = (uint64_t)slot + 1;
	n->original = original;
	/* Each machine's clock runs at its own rate (no core may rely on
	 * equal rates; only leases would, and there are none). */
	n->tick_us = prng_range(&g->rng, SIM_TICK_US - spread,
				SIM_TICK_US + spread);
	disk_init(&n->disk);
	if (slot >= g->n_slots)
		g->n_slots = slot + 1;
	sim_trace(g, "boot n%llu%s", (unsigned long long)n->id,
		  original ? "" : " (empty, to be added)");
	start_core(g, n);
}

void
cluster_crash(struct sim *g, struct sim_node *n)
{
	raft_free(n->r);
	n->r = NULL;
	n->state = NODE_DOWN;
	n->gen++;
	n->paused_until = 0;
	n->role = RAFT_FOLLOWER;
	n->leader = 0;
	client_node_lost(g, n);
	/* A dead process's connections fail at once: its followers hear of
	 * it from their drivers (raft_leader_lost), partitioned or not. */
	for (size_t i = 0; i < SIM_MAX_NODES; i++)
		if (g->nodes[i].state == NODE_UP && g->nodes[i].r != NULL)
			raft_leader_lost(g->nodes[i].r, n->id);
	g->st.crashes++;
	if (g->prof.lose_unsynced && disk_lose_unsynced(&n->disk))
		sim_trace(g, "CRASH n%llu (losing unsynced writes)",
			  (unsigned long long)n->id);
	else
		sim_trace(g, "CRASH n%llu", (unsigned long long)n->id);
}

void
cluster_restart(struct sim *g, struct sim_node *n)
{
	if (n->state != NODE_DOWN)
		return;
	g->st.restarts++;
	sim_trace(g, "RESTART n%llu from disk: term %llu vote %llu, "
		     "snapshot %llu, log [%llu, %llu]",
		  (unsigned long long)n->id,
		  (unsigned long long)n->disk.hard.term,
		  (unsigned long long)n->disk.hard.vote,
		  (unsigned long long)(n->disk.has_snap ? n->disk.snap.index
							: 0),
		  (unsigned long long)n->disk.base,
		  (unsigned long long)disk_last(&n->disk));
	start_core(g, n);
}

void
cluster_decommission(struct sim *g, struct sim_node *n)
{
	if (n->state == NODE_GONE || n->state == NODE_FREE)
		return;
	sim_trace(g, "decommission n%llu", (unsigned long long)n->id);
	if (n->state == NODE_UP) {
		raft_free(n->r);
		n->r = NULL;
	}
	client_node_lost(g, n);
	free(n->props);
	free(n->reads);
	n->props = NULL;
	n->reads = NULL;
	n->cap_props = n->cap_reads = 0;
	disk_release(&n->disk);
	n->state = NODE_GONE;
	n->gen++;
}

void
cluster_tick(struct sim *g, struct sim_node *n)
{
	if (n->paused_until > g->now) {
		schedule_tick(g, n, n->paused_until - g->now);
		return;
	}
	raft_tick(n->r);
	cluster_drain(g, n);
	if (n->state == NODE_UP)
		schedule_tick(g, n, n->tick_us);
}

/* ---- the ready loop --------------------------------------------------- */

static bool
conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
	if (a->n != b->n)
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->servers[i].id != b->servers[i].id ||
		    a->servers[i].suffrage != b->servers[i].suffrage)
			return false;
	return true;
}

/* Step 1: save. */
static void
save(struct sim *g, struct sim_node *n, const struct raft_ready *rd)
{
	struct sim_disk *d = &n->disk;
	bool sync = rd->must_sync, wrote = false;
	struct sim_sm s;

	if (rd->snapshot != NULL) {
		if (!sm_decode(rd->snapshot->data, rd->snapshot->len, &s)) {
			sim_violation(g, "n%llu: ready snapshot at %llu holds "
					 "no state machine the simulator wrote",
				      (unsigned long long)n->id,
				      (unsigned long long)
					      rd->snapshot->meta.index);
			return;
		}
		if (d->has_snap && rd->snapshot->meta.index < d->snap.index)
			sim_violation(g, "n%llu: ready snapshot at %llu is older "
					 "than the saved one at %llu",
				      (unsigned long long)n->id,
				      (unsigned long long)
					      rd->snapshot->meta.index,
				      (unsigned long long)d->snap.index);
		disk_install_snapshot(d, rd->snapshot, s.chain);
		sync = wrote = true;	/* see disk.c */
	}
	if (rd->hard_changed) {
		if (rd->hard.term < d->hard.term)
			sim_violation(g, "n%llu: saved term goes back from %llu "
					 "to %llu",
				      (unsigned long long)n->id,
				      (unsigned long long)d->hard.term,
				      (unsigned long long)rd->hard.term);
		d->hard = rd->hard;
		wrote = true;
	}
	if (rd->n_entries > 0) {
		if (rd->entries[0].index <= d->synced_last)
			sync = true;	/* see disk.c */
		disk_save_entries(g, n, rd->entries, rd->n_entries);
		wrote = true;
	}
	disk_end_ready(d, wrote, sync);
}

/* Step 2: send. */
static void
send_all(struct sim *g, struct sim_node *n, const struct raft_ready *rd)
{
	bool voted = false;

	for (size_t i = 0; i < rd->n_msgs; i++) {
		const struct raft_msg *m = &rd->msgs[i];

		check_msg_out(g, n, m);
		if (m->type == RAFT_MSG_VOTE_RESP && !m->reject)
			voted = true;
		net_send(g, m);
	}
	if (voted)
		nemesis_on_vote(g, n);
}

static void
restore(struct sim *g, struct sim_node *n, const struct raft_snapshot *snap)
{
	struct sim_sm s;

	if (!sm_decode(snap->data, snap->len, &s))
		return;		/* reported by save() */
	if (s.applied != snap->meta.index || s.term != snap->meta.term)
		sim_violation(g, "n%llu: snapshot meta %llu/t%llu does not "
				 "match its data %llu/t%llu",
			      (unsigned long long)n->id,
			      (unsigned long long)snap->meta.index,
			      (unsigned long long)snap->meta.term,
			      (unsigned long long)s.applied,
			      (unsigned long long)s.term);
	if (!conf_equal(&s.conf, &snap->meta.conf))
		sim_violation(g, "n%llu: snapshot at %llu carries a "
				 "configuration of %u servers, the state "
				 "machine had %u",
			      (unsigned long long)n->id,
			      (unsigned long long)snap->meta.index,
			      snap->meta.conf.n, s.conf.n);
	if (s.applied < n->sm.applied)
		sim_violation(g, "n%llu: snapshot at %llu would take the state "
				 "machine back from %llu",
			      (unsigned long long)n->id,
			      (unsigned long long)s.applied,
			      (unsigned long long)n->sm.applied);
	check_restored(g, n, &s, &snap->meta);
	sim_trace(g, "n%llu: restored snapshot %llu/t%llu",
		  (unsigned long long)n->id, (unsigned long long)s.applied,
		  (unsigned long long)s.term);
	n->sm = s;
	g->st.snaps_installed++;
	client_on_restore(g, n, s.applied);
}

static void
apply(struct sim *g, struct sim_node *n, const struct raft_entry *e)
{
	uint64_t chain;

	if (e->index != n->sm.applied + 1) {
		sim_violation(g, "n%llu: applies index %llu after %llu",
			      (unsigned long long)n->id,
			      (unsigned long long)e->index,
			      (unsigned long long)n->sm.applied);
		return;
	}
	chain = sim_chain(n->sm.chain, sim_hash_entry(e));
	check_applied(g, n, e, chain);
	n->sm.applied = e->index;
	n->sm.term = e->term;
	n->sm.chain = chain;
	if (e->type == RAFT_ENTRY_CONF)
		sm_conf_apply_entry(&n->sm.conf, e);
	else if (e->type == RAFT_ENTRY_NORMAL)
		n->sm.count++;
	client_on_apply(g, n, e);
}

static void
note_role(struct sim *g, struct sim_node *n, const struct raft_ready *rd)
{
	if (!rd->role_changed)
		return;
	/* The core traces its own role changes; add whom a follower
	 * follows, which it does not. */
	if (rd->role == RAFT_FOLLOWER && rd->leader != 0 &&
	    rd->leader != n->leader)
		sim_trace(g, "n%llu: follows n%llu at term %llu",
			  (unsigned long long)n->id,
			  (unsigned long long)rd->leader,
			  (unsigned long long)rd->hard.term);
	if (rd->role == RAFT_LEADER && n->role != RAFT_LEADER) {
		g->st.elections++;
		nemesis_on_leader(g, n);
	}
	n->role = rd->role;
	n->leader = rd->leader;
}

static void
handle(struct sim *g, struct sim_node *n, const struct raft_ready *rd)
{
	save(g, n, rd);
	send_all(g, n, rd);
	if (rd->snapshot != NULL)
		restore(g, n, rd->snapshot);
	for (size_t i = 0; i < rd->n_committed && !g->violated; i++)
		apply(g, n, &rd->committed[i]);
	for (size_t i = 0; i < rd->n_reads; i++)
		client_on_read(g, n, &rd->reads[i]);
	note_role(g, n, rd);
}

void
cluster_drain(struct sim *g, struct sim_node *n)
{
	struct raft_ready rd;
	unsigned k = 0;

	/* Between raft_ready() and raft_advance() nothing may call into
	 * this core, not even its read-only views (raft.h). */
	while (n->state == NODE_UP && raft_ready(n->r, &rd)) {
		handle(g, n, &rd);
		raft_advance(n->r, &rd);
		n->term = raft_term(n->r);
		if (++k == SIM_MAX_READIES) {
			sim_violation(g, "n%llu: still has a ready after %u "
					 "rounds (livelock)",
				      (unsigned long long)n->id, k);
			break;
		}
	}
}

/*
 * The simulator's own snapshot of @n at its applied index: saved to disk
 * first, handed to the core, then the disk releases what the core dropped.
 */
bool
cluster_compact(struct sim *g, struct sim_node *n, uint64_t trailing)
{
	uint8_t buf[SIM_SM_SNAP_MAX];
	struct raft_snapshot_meta meta;
	size_t len;
	int rv;

	if (n->state != NODE_UP || n->sm.applied == 0 ||
	    (n->disk.has_snap && n->disk.snap.index >= n->sm.applied))
		return false;
	len = sm_encode(&n->sm, buf);
	meta.index = n->sm.applied;
	meta.term = n->sm.term;
	meta.conf = n->sm.conf;
	disk_put_snapshot(&n->disk, &meta, buf, len, n->sm.chain);
	rv = raft_snapshot(n->r, meta.index, buf, len, trailing);
	if (rv != 0) {
		sim_violation(g, "n%llu: raft_snapshot at applied index %llu "
				 "failed: %s",
			      (unsigned long long)n->id,
			      (unsigned long long)meta.index,
			      dsc_strerror(rv));
		return false;
	}
	disk_compact(&n->disk, raft_first_index(n->r));
	g->st.compactions++;
	sim_trace(g, "n%llu: snapshot at %llu, log kept from %llu",
		  (unsigned long long)n->id, (unsigned long long)meta.index,
		  (unsigned long long)n->disk.base);
	cluster_drain(g, n);
	return true;
}

void
cluster_release(struct sim *g)
{
	for (int i = 0; i < SIM_MAX_NODES; i++) {
		struct sim_node *n = &g->nodes[i];

		raft_free(n->r);
		n->r = NULL;
		for (size_t k = 0; k < n->n_props; k++)
			free(n->props[k].data);
		free(n->props);
		free(n->reads);
		disk_release(&n->disk);
		memset(n, 0, sizeof(*n));
	}
}

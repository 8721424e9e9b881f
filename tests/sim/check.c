/*
 * check.c - the invariants, checked as events happen and after every step.
 *
 *  1. Election safety: at most one leader per term, over every (term,
 *     leader) ever seen. Also: a voter votes for one candidate per term
 *     (VOTE requests count as a vote for oneself), and a leader of term t
 *     campaigned in t (unless it is its configuration's only voter).
 *  2. Log matching: every entry saved on any disk gets the hash chain of
 *     its prefix; two entries with the same (index, term) anywhere must
 *     have the same chain, i.e. identical logs up to them.
 *  3. Committed entries never change: the first apply of an index fixes
 *     its (term, chain) in a canonical map; every later apply or snapshot
 *     restore of that index must agree, and each node applies indexes in
 *     sequence. Because the chain covers the whole prefix, this is also
 *     check 4: equal applied index means equal state.
 *     Leader completeness rides along: a leader of term t must hold every
 *     applied entry of a term below t.
 *  5. Durability: the highest acknowledged proposal is on the disk (log
 *     entry or covering snapshot) of enough voters of the latest committed
 *     configuration that those without it cannot form a majority (so no
 *     leader can be elected without it): at least half of them. This holds
 *     from its acknowledgement on. The log is a prefix, so that covers
 *     every lower acknowledged entry too.
 *  6. Reads: a read completing ok must have an index at least that of the
 *     highest proposal acknowledged before it was requested.
 * Liveness (7) is judged by run.c at the end of a seed.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define U(x) ((unsigned long long)(x))

/* ---- per-term tables ---------------------------------------------------- */

static uint64_t *
term_slot(uint64_t **arr, size_t *n, uint64_t term)
{
	if (term >= *n) {
		size_t old = *n, cap = *n;

		sim_grow((void **)arr, &cap, (size_t)term + 1, sizeof(**arr));
		memset(*arr + old, 0, (cap - old) * sizeof(**arr));
		*n = cap;
	}
	return &(*arr)[term];
}

static void
record_vote(struct sim *g, struct sim_node *n, uint64_t term, uint64_t cand)
{
	int s = (int)(n->id - 1);
	uint64_t *v = term_slot(&g->chk.vote[s], &g->chk.n_vote[s], term);

	if (*v == 0)
		*v = cand;
	else if (*v != cand)
		sim_violation(g, "n%llu voted twice in term %llu: for n%llu, "
				 "then for n%llu",
			      U(n->id), U(term), U(*v), U(cand));
}

void
check_msg_out(struct sim *g, struct sim_node *n, const struct raft_msg *m)
{
	if (m->type == RAFT_MSG_VOTE)
		record_vote(g, n, m->term, n->id);
	else if (m->type == RAFT_MSG_VOTE_RESP && !m->reject)
		record_vote(g, n, m->term, m->to);
}

/* ---- log matching -------------------------------------------------------- */

static size_t
lm_hash(uint64_t index, uint64_t term, size_t cap)
{
	return (size_t)(sim_mix64(index * 0x9e3779b97f4a7c15ull ^ term) &
			(cap - 1));
}

static void
lm_grow(struct sim_check *c)
{
	struct lm_slot *old = c->lm;
	size_t ocap = c->lm_cap;

	c->lm_cap = ocap != 0 ? 2 * ocap : 1024;
	c->lm = xcalloc(c->lm_cap, sizeof(*c->lm));
	for (size_t i = 0; i < ocap; i++) {
		size_t h;

		if (old[i].term == 0)
			continue;
		h = lm_hash(old[i].index, old[i].term, c->lm_cap);
		while (c->lm[h].term != 0)
			h = (h + 1) & (c->lm_cap - 1);
		c->lm[h] = old[i];
	}
	free(old);
}

void
check_saved(struct sim *g, struct sim_node *n, uint64_t index, uint64_t term,
	    uint64_t chain)
{
	struct sim_check *c = &g->chk;
	size_t h;

	if (2 * (c->lm_n + 1) > c->lm_cap)
		lm_grow(c);
	h = lm_hash(index, term, c->lm_cap);
	while (c->lm[h].term != 0) {
		if (c->lm[h].index == index && c->lm[h].term == term) {
			if (c->lm[h].chain != chain)
				sim_violation(g, "log matching: n%llu saved "
						 "entry %llu/t%llu with a "
						 "different content or prefix "
						 "than another node's %llu/t%llu",
					      U(n->id), U(index), U(term),
					      U(index), U(term));
			return;
		}
		h = (h + 1) & (c->lm_cap - 1);
	}
	c->lm[h] = (struct lm_slot){ index, term, chain };
	c->lm_n++;
}

/* ---- committed entries ---------------------------------------------------- */

static struct canon *
canon_at(struct sim_check *c, uint64_t index)
{
	if (index >= c->n_canon) {
		size_t old = c->n_canon, cap = c->n_canon;

		sim_grow((void **)&c->canon, &cap, (size_t)index + 1,
			 sizeof(*c->canon));
		memset(c->canon + old, 0, (cap - old) * sizeof(*c->canon));
		c->n_canon = cap;
	}
	return &c->canon[index];
}

uint64_t
check_canon_term(const struct sim *g, uint64_t index)
{
	return index < g->chk.n_canon ? g->chk.canon[index].term : 0;
}

/* The committed configuration moves on; retire whoever it dropped. */
static void
conf_set(struct sim *g, const struct raft_conf *next)
{
	struct sim_check *c = &g->chk;
	struct raft_conf old = c->conf;

	c->conf = *next;
	for (uint32_t i = 0; i < old.n; i++)
		if (raft_conf_find(next, old.servers[i].id) < 0)
			nemesis_on_removed(g, old.servers[i].id);
}

/*
 * The highest term any node has reached, running or crashed. Called in
 * the middle of a ready, so it reads the terms cached after each advance,
 * and the disks, which already hold the current ready's hard state.
 */
static uint64_t
max_term(const struct sim *g)
{
	uint64_t t = 0;

	for (int i = 0; i < g->n_slots; i++) {
		const struct sim_node *n = &g->nodes[i];

		if (n->state == NODE_UP && n->term > t)
			t = n->term;
		if (n->disk.hard.term > t)
			t = n->disk.hard.term;
	}
	return t;
}

void
check_applied(struct sim *g, struct sim_node *n, const struct raft_entry *e,
	      uint64_t chain)
{
	struct sim_check *c = &g->chk;
	struct canon *k = canon_at(c, e->index);

	if (k->term == 0) {
		k->term = e->term;
		k->chain = chain;
		k->max_term = max_term(g);
		if (e->index > c->canon_max)
			c->canon_max = e->index;
		if (c->conf_index + 1 == e->index) {
			struct raft_conf next = c->conf;

			if (e->type == RAFT_ENTRY_CONF &&
			    sm_conf_apply_entry(&next, e))
				conf_set(g, &next);
			c->conf_index = e->index;
		}
		return;
	}
	if (k->term != e->term)
		sim_violation(g, "committed entry changed: n%llu applies "
				 "%llu/t%llu, but %llu/t%llu was applied before",
			      U(n->id), U(e->index), U(e->term), U(e->index),
			      U(k->term));
	else if (k->chain != chain)
		sim_violation(g, "state machines diverge: n%llu's hash chain at "
				 "%llu/t%llu differs from the one applied before",
			      U(n->id), U(e->index), U(e->term));
}

void
check_restored(struct sim *g, struct sim_node *n, const struct sim_sm *s,
	       const struct raft_snapshot_meta *meta)
{
	struct sim_check *c = &g->chk;
	struct canon *k = canon_at(c, meta->index);

	if (k->term == 0) {
		k->term = s->term;
		k->chain = s->chain;
		k->max_term = max_term(g);
		if (meta->index > c->canon_max)
			c->canon_max = meta->index;
		if (c->conf_index < meta->index) {
			conf_set(g, &s->conf);
			c->conf_index = meta->index;
		}
		return;
	}
	if (k->term != s->term || k->chain != s->chain)
		sim_violation(g, "committed state changed: n%llu restores a "
				 "snapshot at %llu/t%llu that differs from what "
				 "was applied there (t%llu)",
			      U(n->id), U(meta->index), U(s->term), U(k->term));
}

/* ---- durability and reads ----------------------------------------------- */

/* How many voters of @c hold the acknowledged entry; *@voters: of how many.
 * Safe when 2 * have >= voters: the rest are no majority. */
static uint32_t
holders(struct sim *g, const struct raft_conf *c, uint32_t *voters,
	char *who, size_t cap)
{
	uint32_t have = 0;
	size_t k = 0;

	*voters = 0;
	if (cap > 0)
		who[0] = '\0';
	for (uint32_t i = 0; i < c->n; i++) {
		const struct raft_server *s = &c->servers[i];
		int slot = cluster_slot(g, s->id);

		if (s->suffrage != RAFT_VOTER)
			continue;
		(*voters)++;
		if (slot < 0 || !cluster_disk_has(&g->nodes[slot],
						  g->chk.acked_index,
						  g->chk.acked_term))
			continue;
		have++;
		if (k + 24 < cap)
			k += (size_t)snprintf(who + k, cap - k, " n%llu",
					      U(s->id));
	}
	return have;
}

/*
 * A configuration change takes effect when appended (§4.1), so a leader
 * may commit on a majority of a pending configuration one server away
 * from the committed one; any majority of either meets any majority of
 * the other. Accept a majority of any configuration some node's disk
 * holds past the committed one.
 */
static bool
pending_majority(struct sim *g)
{
	const struct sim_check *c = &g->chk;

	for (int i = 0; i < g->n_slots; i++) {
		const struct sim_node *n = &g->nodes[i];
		struct raft_conf conf = c->conf;
		uint32_t voters, have;
		bool changed = false;

		if (n->state != NODE_UP && n->state != NODE_DOWN)
			continue;
		for (uint64_t x = c->conf_index + 1; x <= disk_last(&n->disk);
		     x++) {
			const struct raft_entry *e = disk_entry(&n->disk, x);

			if (e != NULL && e->type == RAFT_ENTRY_CONF)
				changed |= sm_conf_apply_entry(&conf, e);
		}
		if (!changed)
			continue;
		have = holders(g, &conf, &voters, NULL, 0);
		if (2 * have >= voters)
			return true;
	}
	return false;
}

static void
durable(struct sim *g, const char *when)
{
	const struct sim_check *c = &g->chk;
	uint32_t voters, have;
	char who[128];

	have = holders(g, &c->conf, &voters, who, sizeof(who));
	if (2 * have >= voters || pending_majority(g))
		return;
	sim_violation(g, "durability (%s): acknowledged entry %llu/t%llu is "
			 "saved on %u of %u voters (%s ); the others could "
			 "elect a leader without it",
		      when, U(c->acked_index), U(c->acked_term), have, voters,
		      who);
}

void
check_acked(struct sim *g, uint64_t index, uint64_t term)
{
	struct sim_check *c = &g->chk;

	if (index <= c->acked_index)
		return;
	c->acked_index = index;
	c->acked_term = term;
	durable(g, "at acknowledgement");
}

void
check_read(struct sim *g, struct sim_node *n, uint64_t ctx, uint64_t index,
	   uint64_t required)
{
	if (index < required)
		sim_violation(g, "stale read: read %llu at n%llu returned index "
				 "%llu, but %llu was acknowledged before it "
				 "was requested",
			      U(ctx), U(n->id), U(index), U(required));
}

/* ---- after every step ------------------------------------------------- */

/*
 * Leader completeness (Figure 3.2): an entry committed by the leader of
 * term t is in the log of every leader of a later term. The simulator
 * does not see commits, only first applies, so it uses the highest term
 * any node had at the first apply as an upper bound on t.
 */
static void
complete(struct sim *g, struct sim_node *n, uint64_t term)
{
	const struct sim_check *c = &g->chk;

	for (uint64_t i = c->canon_max; i >= 1; i--) {
		const struct canon *k = &c->canon[i];

		if (k->term == 0 || k->max_term >= term)
			continue;
		if (!cluster_disk_has(n, i, k->term))
			sim_violation(g, "leader completeness: n%llu leads term "
					 "%llu without entry %llu/t%llu, "
					 "committed by term %llu",
				      U(n->id), U(term), U(i), U(k->term),
				      U(k->max_term));
		return;
	}
}

static void
new_leader(struct sim *g, struct sim_node *n, uint64_t term)
{
	const struct sim_check *c = &g->chk;
	int s = (int)(n->id - 1);
	uint64_t voted = term < c->n_vote[s] ? c->vote[s][term] : 0;

	if (voted != n->id && raft_conf_voters(raft_conf(n->r)) > 1)
		sim_violation(g, "n%llu leads term %llu without having "
				 "campaigned in it (its vote: n%llu)",
			      U(n->id), U(term), U(voted));
	complete(g, n, term);
}

void
check_step(struct sim *g)
{
	struct sim_check *c = &g->chk;

	for (int i = 0; i < g->n_slots && !g->violated; i++) {
		struct sim_node *n = &g->nodes[i];
		uint64_t term, *who;

		if (n->state != NODE_UP || raft_role(n->r) != RAFT_LEADER)
			continue;
		term = raft_term(n->r);
		who = term_slot(&c->leader_of, &c->n_leader_of, term);
		if (*who == 0) {
			*who = n->id;
			new_leader(g, n, term);
		} else if (*who != n->id) {
			sim_violation(g, "election safety: term %llu has two "
					 "leaders, n%llu and n%llu",
				      U(term), U(*who), U(n->id));
		}
	}
	if (c->acked_index > 0 && !g->violated)
		durable(g, "later");
}

void
check_release(struct sim_check *c)
{
	free(c->leader_of);
	for (int i = 0; i < SIM_MAX_NODES; i++)
		free(c->vote[i]);
	free(c->canon);
	free(c->lm);
	memset(c, 0, sizeof(*c));
}

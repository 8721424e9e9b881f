/*
 * raft_ready.c - what the core hands its driver: the outbox, raft_ready()
 * and raft_advance(), and the read-only status views.
 *
 * Messages are queued during a batch but their entries are looked up only
 * when the batch ends, so appending to the log never leaves a queued
 * message pointing at moved memory. If entries went away in between
 * (truncation, compaction, a snapshot) the log's epoch tells, and the
 * message is dropped: Raft copes with a lost message, not with a wrong one.
 */
#include "raft.h"

#include <string.h>

#include "err.h"
#include "mem.h"
#include "raft_internal.h"

static bool
grow(void **p, size_t *cap, size_t need, size_t size)
{
	void *np;
	size_t ncap;

	if (need <= *cap)
		return true;
	ncap = *cap != 0 ? *cap : 16;
	while (ncap < need)
		ncap *= 2;
	np = dsc_reallocarray(*p, ncap, size);
	if (np == NULL)
		return false;
	*p = np;
	*cap = ncap;
	return true;
}

void
raft_send_entries(struct raft *r, const struct raft_msg *m, uint64_t lo,
		  size_t n)
{
	struct outmsg *o;

	if (!grow((void **)&r->out, &r->cap_out, r->n_out + 1, sizeof(*o)))
		return;	/* lost, as on the wire */
	o = &r->out[r->n_out++];
	o->m = *m;
	o->m.from = r->id;
	o->m.entries = NULL;
	o->m.n_entries = n;
	o->lo = lo;
	o->epoch = r->log.epoch;
}

void
raft_send(struct raft *r, const struct raft_msg *m)
{
	raft_send_entries(r, m, 0, 0);
}

void
raft_outbox_clear(struct raft *r)
{
	r->n_out = 0;
}

/* Builds the ready's messages; returns how many. */
static size_t
resolve_msgs(struct raft *r)
{
	const struct raft_log *l = &r->log;
	size_t n = 0;

	if (!grow((void **)&r->msgs, &r->cap_msgs, r->n_out, sizeof(*r->msgs)))
		return 0;
	for (size_t i = 0; i < r->n_out; i++) {
		struct outmsg *o = &r->out[i];
		struct raft_msg *m = &r->msgs[n];
		bool borrows = o->m.n_entries > 0 ||
			       o->m.type == RAFT_MSG_SNAPSHOT;

		if (borrows && o->epoch != l->epoch)
			continue;
		if (o->m.n_entries > 0 &&
		    (o->lo <= l->offset ||
		     o->lo + o->m.n_entries - 1 > rlog_last_index(l)))
			continue;
		*m = o->m;
		if (m->n_entries > 0)
			m->entries = rlog_entry(l, o->lo);
		n++;
	}
	return n;
}

bool
raft_ready(struct raft *r, struct raft_ready *rd)
{
	const struct raft_log *l = &r->log;
	uint64_t last = rlog_last_index(l), lo, hi;
	bool term_vote;

	if (r->role == RAFT_LEADER && r->bcast_pending) {
		r->bcast_pending = false;
		raft_bcast_append(r);
	}
	raft_reads_release(r);

	memset(rd, 0, sizeof(*rd));
	rd->snapshot = r->snap_pending ? &r->snap : NULL;
	rd->hard = (struct raft_hard){ r->term, r->vote, l->committed };
	term_vote = rd->hard.term != r->saved_hard.term ||
		    rd->hard.vote != r->saved_hard.vote;
	rd->hard_changed = term_vote || rd->hard.commit != r->saved_hard.commit;
	if (MUTANT(3))
		rd->hard_changed = rd->hard.commit != r->saved_hard.commit;
	if (MUTANT(6) && r->role == RAFT_LEADER)
		r->log.stable = last;
	if (last > l->stable) {
		rd->n_entries = (size_t)(last - l->stable);
		rd->entries = rlog_entry(l, l->stable + 1);
	}
	rd->must_sync = rd->n_entries > 0 || term_vote || rd->snapshot != NULL;
	rd->n_msgs = resolve_msgs(r);
	rd->msgs = r->msgs;

	/* Apply only what is committed; it is all saved before apply. */
	lo = (r->snap_pending ? r->snap.meta.index : l->applied) + 1;
	hi = l->committed < last ? l->committed : last;
	if (MUTANT(5))
		hi = last;
	if (hi >= lo) {
		rd->n_committed = (size_t)(hi - lo + 1);
		rd->committed = rlog_entry(l, lo);
	}
	rd->n_reads = r->n_read_out;
	rd->reads = r->read_out;
	rd->role = r->role;
	rd->leader = r->lead;
	rd->role_changed = r->role != r->reported_role ||
			   r->lead != r->reported_lead;
	return rd->snapshot != NULL || rd->hard_changed || rd->n_entries > 0 ||
	       rd->n_msgs > 0 || rd->n_committed > 0 || rd->n_reads > 0 ||
	       rd->role_changed;
}

void
raft_advance(struct raft *r, const struct raft_ready *rd)
{
	struct raft_progress *pr;

	if (rd->snapshot != NULL) {
		r->snap_pending = false;
		if (r->log.applied < r->snap.meta.index)
			r->log.applied = r->snap.meta.index;
	}
	if (rd->hard_changed)
		r->saved_hard = rd->hard;
	if (rd->n_entries > 0)
		r->log.stable = rd->entries[rd->n_entries - 1].index;
	if (rd->n_committed > 0)
		r->log.applied = rd->committed[rd->n_committed - 1].index;
	r->n_out = 0;
	r->n_read_out = 0;
	r->reported_role = rd->role;
	r->reported_lead = rd->leader;
	if (r->role != RAFT_LEADER)
		return;
	pr = raft_progress_get(r, r->id);
	if (pr != NULL)
		pr->match = r->log.stable;
	if (raft_maybe_commit(r) && r->role == RAFT_LEADER)
		r->bcast_pending = true;
}

/* ---- read-only views ---------------------------------------------------- */

static const char *const pr_state_names[] = { "probe", "replicate",
					      "snapshot" };

void
raft_status(const struct raft *r, struct raft_status *st)
{
	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->lead;
	st->commit = r->log.committed;
	st->applied = r->log.applied;
	st->last_index = rlog_last_index(&r->log);
	st->last_term = rlog_last_term(&r->log);
	st->first_index = rlog_first_index(&r->log);
	st->snapshot_index = r->snap.meta.index;
	st->transferee = r->transferee;
	st->conf = r->conf;
	if (r->role != RAFT_LEADER)
		return;
	for (uint32_t i = 0; i < r->n_prs; i++) {
		const struct raft_progress *pr = &r->prs[i];
		struct raft_progress_view *v = &st->progress[st->n_progress++];
		int at = raft_conf_find(&r->conf, pr->id);

		v->id = pr->id;
		v->suffrage = at >= 0 ? r->conf.servers[at].suffrage
				      : RAFT_LEARNER;
		v->match = pr->match;
		v->next = pr->next;
		v->recent_active = pr->recent_active;
		v->state = pr_state_names[pr->state];
	}
}

uint64_t
raft_id(const struct raft *r)
{
	return r->id;
}

enum raft_role
raft_role(const struct raft *r)
{
	return r->role;
}

uint64_t
raft_term(const struct raft *r)
{
	return r->term;
}

uint64_t
raft_leader(const struct raft *r)
{
	return r->lead;
}

uint64_t
raft_commit_index(const struct raft *r)
{
	return r->log.committed;
}

uint64_t
raft_applied_index(const struct raft *r)
{
	return r->log.applied;
}

uint64_t
raft_last_index(const struct raft *r)
{
	return rlog_last_index(&r->log);
}

uint64_t
raft_first_index(const struct raft *r)
{
	return rlog_first_index(&r->log);
}

const struct raft_conf *
raft_conf(const struct raft *r)
{
	return &r->conf;
}

const struct raft_snapshot *
raft_snapshot_get(const struct raft *r)
{
	return &r->snap;
}

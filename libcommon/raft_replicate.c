/*
 * raft_replicate.c - log replication: the leader's per-peer progress and
 * AppendEntries pipeline, the follower's receiver rules, commit, and
 * snapshots (chapters 3 and 5, §10.2).
 *
 * Each peer's progress is in one of three states (etcd's design): PROBE
 * sends one APPEND at a time until the follower's match is found, using the
 * follower's hint to skip a whole term per round trip; REPLICATE pipelines up
 * to max_inflight APPENDs of at most max_msg_bytes each (flow control);
 * SNAPSHOT waits for an InstallSnapshot to be acknowledged, or gives up
 * after an election timeout and probes again.
 */
#include "raft.h"

#include <string.h>

#include "err.h"
#include "mem.h"
#include "raft_internal.h"
#include "raft_quorum.h"

/* ---- progress ---------------------------------------------------------- */

struct raft_progress *
raft_progress_get(struct raft *r, uint64_t id)
{
	for (uint32_t i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

static void
pr_init(struct raft *r, struct raft_progress *pr, uint64_t id)
{
	memset(pr, 0, sizeof(*pr));
	pr->id = id;
	pr->next = rlog_last_index(&r->log) + 1;
	if (id == r->id)
		pr->match = r->log.stable;
}

void
raft_progress_reset(struct raft *r)
{
	r->n_prs = 0;
	for (uint32_t i = 0; i < r->conf.n; i++)
		pr_init(r, &r->prs[r->n_prs++], r->conf.servers[i].id);
}

/* After a configuration entry: keep known peers, add new ones (§4.1). */
void
raft_progress_sync(struct raft *r)
{
	struct raft_progress old[RAFT_MAX_SERVERS];
	uint32_t n_old = r->n_prs;

	memcpy(old, r->prs, sizeof(old[0]) * n_old);
	r->n_prs = 0;
	for (uint32_t i = 0; i < r->conf.n; i++) {
		uint64_t id = r->conf.servers[i].id;
		struct raft_progress *pr = &r->prs[r->n_prs++];
		uint32_t j;

		for (j = 0; j < n_old && old[j].id != id; j++)
			;
		if (j < n_old) {
			*pr = old[j];
		} else {
			pr_init(r, pr, id);
			pr->recent_active = true;
		}
	}
}

static bool
infl_full(const struct raft *r, const struct raft_progress *pr)
{
	return pr->infl_count >= r->cfg.max_inflight;
}

static void
infl_add(struct raft *r, struct raft_progress *pr, uint64_t last)
{
	pr->infl[(pr->infl_start + pr->infl_count) % r->cfg.max_inflight] =
		last;
	pr->infl_count++;
}

static void
infl_free_to(struct raft *r, struct raft_progress *pr, uint64_t to)
{
	while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= to) {
		pr->infl_start = (pr->infl_start + 1) % r->cfg.max_inflight;
		pr->infl_count--;
	}
}

static void
infl_free_first(struct raft *r, struct raft_progress *pr)
{
	if (pr->infl_count > 0)
		infl_free_to(r, pr, pr->infl[pr->infl_start]);
}

static bool
pr_paused(const struct raft *r, const struct raft_progress *pr)
{
	switch (pr->state) {
	case PR_PROBE:
		return pr->probe_sent;
	case PR_REPLICATE:
		return infl_full(r, pr);
	default:
		return true;
	}
}

static void
pr_set_state(struct raft_progress *pr, enum pr_state state)
{
	pr->state = state;
	pr->probe_sent = false;
	pr->infl_start = pr->infl_count = 0;
	pr->snapshot_ticks = 0;
}

static void
pr_become_probe(struct raft_progress *pr)
{
	/* After a snapshot, probe from just past it: the follower has it or
	 * will say where it stands. */
	if (pr->state == PR_SNAPSHOT && pr->pending_snapshot > pr->match)
		pr->next = pr->pending_snapshot + 1;
	else
		pr->next = pr->match + 1;
	pr->pending_snapshot = 0;
	pr_set_state(pr, PR_PROBE);
}

static void
pr_become_replicate(struct raft_progress *pr)
{
	pr->next = pr->match + 1;
	pr_set_state(pr, PR_REPLICATE);
}

static bool
pr_maybe_update(struct raft_progress *pr, uint64_t n)
{
	bool updated = false;

	if (pr->match < n) {
		pr->match = n;
		pr->probe_sent = false;
		updated = true;
	}
	if (pr->next < n + 1)
		pr->next = n + 1;
	return updated;
}

/* A rejection of the APPEND whose previous index was @rejected. */
static bool
pr_maybe_decr(struct raft_progress *pr, uint64_t rejected, uint64_t hint)
{
	if (pr->state == PR_REPLICATE) {
		if (rejected <= pr->match)
			return false;	/* stale */
		pr->next = pr->match + 1;
		return true;
	}
	if (pr->next - 1 != rejected)
		return false;	/* stale: not the probe we sent last */
	pr->next = hint + 1 < rejected ? hint + 1 : rejected;
	if (pr->next < pr->match + 1)
		pr->next = pr->match + 1;
	pr->probe_sent = false;
	return true;
}

/* ---- appending --------------------------------------------------------- */

/*
 * Replaces the log after @after with @ents and follows configuration
 * entries in them. Nothing changes on DSC_ENOMEM.
 */
static int
append_entries(struct raft *r, uint64_t after, const struct raft_entry *ents,
	       size_t n)
{
	uint64_t old_last = rlog_last_index(&r->log);
	size_t confs = 0;
	int rv;

	for (size_t i = 0; i < n; i++)
		confs += ents[i].type == RAFT_ENTRY_CONF;
	if (confs > 0 && raft_marks_reserve(r, confs) != 0)
		return DSC_ENOMEM;
	rv = rlog_append_after(&r->log, after, ents, n);
	if (rv != 0)
		return rv;
	if (after < old_last)
		raft_marks_truncate(r, after);
	(void)raft_marks_append(r, ents, n);	/* reserved: cannot fail */
	if (confs > 0 && r->role == RAFT_LEADER)
		raft_progress_sync(r);
	return 0;
}

int
raft_append_local(struct raft *r, uint8_t type, const void *data, size_t len)
{
	struct raft_entry e = {
		.term = r->term,
		.index = rlog_last_index(&r->log) + 1,
		.type = type,
		.len = (uint32_t)len,
		.data = (uint8_t *)(uintptr_t)data,
	};

	return append_entries(r, rlog_last_index(&r->log), &e, 1);
}

static void
commit_to(struct raft *r, uint64_t i)
{
	if (i > r->log.committed)
		r->log.committed = i;
}

/* ---- leader: sending --------------------------------------------------- */

static bool
send_snapshot(struct raft *r, struct raft_progress *pr)
{
	struct raft_msg m = {
		.type = RAFT_MSG_SNAPSHOT,
		.to = pr->id,
		.term = r->term,
	};

	if (!pr->recent_active || r->snap.meta.index == 0)
		return false;
	m.snapshot = r->snap;
	pr->pending_snapshot = r->snap.meta.index;
	pr_set_state(pr, PR_SNAPSHOT);
	raft_trace(r, "sending snapshot at %llu to %llu",
		   (unsigned long long)r->snap.meta.index,
		   (unsigned long long)pr->id);
	raft_send(r, &m);
	return true;
}

bool
raft_send_append(struct raft *r, struct raft_progress *pr, bool send_if_empty)
{
	struct raft_msg m = { .type = RAFT_MSG_APPEND, .to = pr->id };
	uint64_t prev = pr->next - 1, prev_term;
	size_t n;

	if (pr->id == r->id || pr_paused(r, pr))
		return false;
	if (!rlog_term(&r->log, prev, &prev_term))
		return send_snapshot(r, pr);
	n = rlog_count_within(&r->log, pr->next, r->cfg.max_msg_bytes);
	if (n == 0 && !send_if_empty)
		return false;
	m.term = r->term;
	m.index = prev;
	m.log_term = prev_term;
	m.commit = r->log.committed;
	raft_send_entries(r, &m, pr->next, n);
	if (pr->state == PR_REPLICATE && n > 0) {
		pr->next += n;
		infl_add(r, pr, pr->next - 1);
	} else if (pr->state == PR_PROBE) {
		pr->probe_sent = true;
	}
	return true;
}

void
raft_bcast_append(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];

		if (!raft_send_append(r, pr, true))
			continue;
		/* §10.2.2: keep the pipeline full while the window allows. */
		while (raft_send_append(r, pr, false))
			;
	}
}

void
raft_bcast_heartbeat(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];
		struct raft_msg m = {
			.type = RAFT_MSG_HEARTBEAT,
			.to = pr->id,
			.term = r->term,
			.context = r->read_round,
		};

		if (pr->id == r->id)
			continue;
		/* Never tell a follower to commit past what it matches. */
		m.commit = pr->match < r->log.committed ? pr->match
							: r->log.committed;
		raft_send(r, &m);
	}
}

void
raft_leader_tick_snapshots(struct raft *r)
{
	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];

		if (pr->state == PR_SNAPSHOT &&
		    ++pr->snapshot_ticks >= r->cfg.election_ticks)
			pr_become_probe(pr);
	}
}

/* ---- leader: commit ---------------------------------------------------- */

/* §10.2.1: the leader counts itself only for what it has saved. */
static uint64_t
self_match(const struct raft *r)
{
	return r->log.stable;
}

static void
release_uncommitted(struct raft *r, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i <= to; i++) {
		const struct raft_entry *e = rlog_entry(&r->log, i);

		if (e->term != r->term || e->type != RAFT_ENTRY_NORMAL)
			continue;
		r->uncommitted_bytes = e->len < r->uncommitted_bytes
					       ? r->uncommitted_bytes - e->len
					       : 0;
	}
}

bool
raft_maybe_commit(struct raft *r)
{
	uint64_t vals[RAFT_MAX_SERVERS], q, old = r->log.committed;
	size_t n = 0;

	for (uint32_t i = 0; i < r->conf.n; i++) {
		const struct raft_server *s = &r->conf.servers[i];
		struct raft_progress *pr;

		if (s->suffrage != RAFT_VOTER)
			continue;
		pr = raft_progress_get(r, s->id);
		vals[n++] = s->id == r->id ? self_match(r)
					   : (pr != NULL ? pr->match : 0);
	}
	q = quorum_index(vals, n);
	if (q > rlog_last_index(&r->log))
		q = rlog_last_index(&r->log);
	if (q <= old)
		return false;
	/* §3.6.2 (Figure 3.7): only an entry of the leader's own term is
	 * committed by counting replicas; earlier ones commit with it. */
	if (!MUTANT(2) && rlog_term_or0(&r->log, q) != r->term)
		return false;
	commit_to(r, q);
	release_uncommitted(r, old + 1, q);
	if (rlog_term_or0(&r->log, old) != r->term)
		raft_reads_own_term_committed(r);
	/* §4.2.2: a leader that removed itself steps down once that
	 * configuration is committed. */
	if (!raft_is_voter(r, r->id) && q >= raft_conf_last_index(r)) {
		raft_trace(r, "stepping down: no longer a voter");
		raft_become_follower(r, r->term, RAFT_NONE);
	}
	return true;
}

bool
raft_quorum_active(struct raft *r)
{
	size_t active = 0;

	for (uint32_t i = 0; i < r->n_prs; i++) {
		struct raft_progress *pr = &r->prs[i];

		if (raft_is_voter(r, pr->id) &&
		    (pr->id == r->id || pr->recent_active))
			active++;
		if (pr->id != r->id)
			pr->recent_active = false;
	}
	return active >= quorum_size(raft_conf_voters(&r->conf));
}

/* ---- leader: responses ------------------------------------------------- */

static void
maybe_finish_transfer(struct raft *r, const struct raft_progress *pr)
{
	struct raft_msg m = {
		.type = RAFT_MSG_TIMEOUT_NOW,
		.to = pr->id,
		.term = r->term,
	};

	if (r->role != RAFT_LEADER || pr->id != r->transferee ||
	    pr->match != rlog_last_index(&r->log))
		return;
	raft_trace(r, "transferee %llu caught up, sending TIMEOUT_NOW",
		   (unsigned long long)pr->id);
	raft_send(r, &m);
}

void
raft_step_leader_append_resp(struct raft *r, const struct raft_msg *m)
{
	struct raft_progress *pr = raft_progress_get(r, m->from);
	uint64_t hint;
	bool was_paused;

	if (pr == NULL || m->index > rlog_last_index(&r->log))
		return;
	pr->recent_active = true;
	if (m->reject) {
		/* Fast backtracking: skip to where the follower's log could
		 * match, a whole term per round trip (etcd). */
		hint = m->hint;
		if (m->log_term > 0)
			hint = rlog_find_conflict_by_term(&r->log, m->hint,
							  m->log_term);
		if (pr_maybe_decr(pr, m->index, hint)) {
			if (pr->state == PR_REPLICATE)
				pr_become_probe(pr);
			raft_send_append(r, pr, true);
		}
		return;
	}
	was_paused = pr_paused(r, pr);
	if (!pr_maybe_update(pr, m->index))
		return;
	if (pr->state == PR_PROBE) {
		pr_become_replicate(pr);
	} else if (pr->state == PR_SNAPSHOT &&
		   pr->match + 1 >= rlog_first_index(&r->log)) {
		pr_become_probe(pr);
		pr_become_replicate(pr);
	} else if (pr->state == PR_REPLICATE) {
		infl_free_to(r, pr, m->index);
	}
	if (raft_maybe_commit(r))
		r->bcast_pending = true;
	else if (was_paused)
		raft_send_append(r, pr, true);
	if (r->role != RAFT_LEADER)
		return;
	while (raft_send_append(r, pr, false))
		;
	maybe_finish_transfer(r, pr);
}

void
raft_step_leader_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
	struct raft_progress *pr = raft_progress_get(r, m->from);

	if (pr == NULL)
		return;
	pr->recent_active = true;
	pr->probe_sent = false;
	if (pr->state == PR_REPLICATE && infl_full(r, pr))
		infl_free_first(r, pr);
	if (pr->match < rlog_last_index(&r->log))
		raft_send_append(r, pr, true);
	if (m->context > pr->read_ack && m->context <= r->read_round) {
		pr->read_ack = m->context;
		raft_reads_check(r);
	}
}

/* ---- follower ---------------------------------------------------------- */

static void
send_append_resp(struct raft *r, const struct raft_msg *m, uint64_t index)
{
	struct raft_msg resp = {
		.type = RAFT_MSG_APPEND_RESP,
		.to = m->from,
		.term = r->term,
		.index = index,
	};

	raft_send(r, &resp);
}

/* Figure 3.1 AppendEntries receiver, steps 2-5. */
int
raft_handle_append(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = {
		.type = RAFT_MSG_APPEND_RESP,
		.to = m->from,
		.term = r->term,
	};
	uint64_t last_new = m->index + m->n_entries, conflict, hint;
	size_t skip;
	int rv;

	if (m->index < r->log.committed) {
		send_append_resp(r, m, r->log.committed);
		return 0;
	}
	if (!rlog_match_term(&r->log, m->index, m->log_term)) {
		/* Step 2: reject, and say where our log could match. */
		hint = m->index < rlog_last_index(&r->log)
			       ? m->index
			       : rlog_last_index(&r->log);
		hint = rlog_find_conflict_by_term(&r->log, hint, m->log_term);
		resp.reject = true;
		resp.index = m->index;
		resp.hint = hint;
		resp.log_term = rlog_term_or0(&r->log, hint);
		raft_send(r, &resp);
		return 0;
	}
	if (MUTANT(7) && m->n_entries > 0) {
		rv = append_entries(r, m->index, m->entries, m->n_entries);
		if (rv != 0)
			return rv;
		if (r->log.committed > rlog_last_index(&r->log))
			r->log.committed = rlog_last_index(&r->log);
	} else if ((conflict = rlog_find_conflict(&r->log, m->entries,
						  m->n_entries)) != 0) {
		/* Step 3: a conflict at or below commit means the sender
		 * is not a correct leader: drop the message, keep our log. */
		if (conflict <= r->log.committed)
			return DSC_EINVAL;
		skip = (size_t)(conflict - m->index - 1);
		/* Step 4: entries that match are kept, so a stale, reordered
		 * APPEND cannot cut off entries that came after it. */
		rv = append_entries(r, conflict - 1, m->entries + skip,
				    m->n_entries - skip);
		if (rv != 0)
			return rv;
	}
	/* Step 5. */
	commit_to(r, m->commit < last_new ? m->commit : last_new);
	send_append_resp(r, m, last_new);
	return 0;
}

void
raft_handle_heartbeat(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = {
		.type = RAFT_MSG_HEARTBEAT_RESP,
		.to = m->from,
		.term = r->term,
		.context = m->context,
	};
	uint64_t last = rlog_last_index(&r->log);

	commit_to(r, m->commit < last ? m->commit : last);
	raft_send(r, &resp);
}

/* §5.3 InstallSnapshot receiver. */
int
raft_handle_snapshot(struct raft *r, const struct raft_msg *m)
{
	const struct raft_snapshot_meta *s = &m->snapshot.meta;
	uint8_t *data = NULL;

	if (s->index <= r->log.committed) {
		send_append_resp(r, m, r->log.committed);
		return 0;
	}
	if (rlog_match_term(&r->log, s->index, s->term)) {
		/* We already have it: learn that it is committed, and vouch
		 * for no more than it: entries after it may be another
		 * leader's, and an ack must never count them. */
		commit_to(r, s->index);
		send_append_resp(r, m, s->index);
		return 0;
	}
	if (m->snapshot.len > 0) {
		data = dsc_malloc(m->snapshot.len);
		if (data == NULL)
			return DSC_ENOMEM;
		memcpy(data, m->snapshot.data, m->snapshot.len);
	}
	dsc_free(r->snap_data);
	r->snap_data = data;
	r->snap.meta = *s;
	r->snap.len = m->snapshot.len;
	r->snap.data = data;
	r->snap_pending = true;
	rlog_restore(&r->log, s->index, s->term);
	r->n_marks = 0;
	r->base_conf = s->conf;
	r->conf = s->conf;
	raft_trace(r, "restored snapshot at %llu term %llu",
		   (unsigned long long)s->index, (unsigned long long)s->term);
	send_append_resp(r, m, s->index);
	return 0;
}

/* ---- application snapshots ---------------------------------------------- */

int
raft_snapshot(struct raft *r, uint64_t index, const void *data, size_t len,
	      uint64_t trailing)
{
	uint64_t term, upto;
	uint8_t *copy = NULL;

	if (index > r->log.applied || index <= r->snap.meta.index ||
	    !rlog_term(&r->log, index, &term))
		return DSC_EINVAL;
	if (len > 0) {
		copy = dsc_malloc(len);
		if (copy == NULL)
			return DSC_ENOMEM;
		memcpy(copy, data, len);
	}
	dsc_free(r->snap_data);
	r->snap_data = copy;
	r->snap.meta.index = index;
	r->snap.meta.term = term;
	raft_conf_at(r, index, &r->snap.meta.conf);
	r->snap.len = len;
	r->snap.data = copy;
	r->log.epoch++;		/* queued SNAPSHOT messages point at the old */
	upto = index > trailing ? index - trailing : 0;
	if (upto > r->log.offset) {
		raft_marks_compact(r, upto);
		rlog_compact(&r->log, upto);
	}
	return 0;
}

/*
 * raft_read.c - linearizable reads by ReadIndex (§6.4).
 *
 * The leader records its commit index as the read index, confirms it is
 * still the leader by a round of heartbeats acknowledged by a majority, and
 * hands the index back; the reader answers once its state machine has
 * applied that far. A leader serves reads only after it has committed an
 * entry of its own term (its no-op), since before that its commit index may
 * lag the true one; reads arriving earlier wait for it.
 *
 * Batching: rounds are numbered. A read joins round read_round + 1; the
 * round starts (heartbeats carrying its number go out) when the batch ends
 * in raft_ready(), so all reads of one batch share one round trip. A peer's
 * answer to round k confirms every round up to k.
 */
#include "raft.h"

#include <string.h>

#include "err.h"
#include "mem.h"
#include "raft_internal.h"
#include "raft_quorum.h"

static int
push_out(struct raft *r, uint64_t context, uint64_t index, bool ok)
{
	struct raft_read *p;
	size_t cap;

	if (r->n_read_out == r->cap_read_out) {
		cap = r->cap_read_out != 0 ? 2 * r->cap_read_out : 8;
		p = dsc_reallocarray(r->read_out, cap, sizeof(*p));
		if (p == NULL)
			return DSC_ENOMEM;
		r->read_out = p;
		r->cap_read_out = cap;
	}
	r->read_out[r->n_read_out++] = (struct raft_read){ context, index, ok };
	return 0;
}

/* A reply from a follower's leader: hand it to the application. */
void
raft_read_done(struct raft *r, uint64_t context, uint64_t index, bool ok)
{
	/* If this cannot be recorded the reader times out and retries, the
	 * same as if the reply had been lost. */
	(void)push_out(r, context, index, ok);
}

static void
respond(struct raft *r, const struct pending_read *p, bool ok)
{
	struct raft_msg m = {
		.type = RAFT_MSG_READ_INDEX_RESP,
		.to = p->from,
		.term = r->term,
		.context = p->context,
		.index = ok ? p->index : 0,
		.reject = !ok,
	};

	if (p->from == r->id)
		raft_read_done(r, p->context, m.index, ok);
	else
		raft_send(r, &m);
}

static bool
own_term_committed(const struct raft *r)
{
	return rlog_term_or0(&r->log, r->log.committed) == r->term;
}

int
raft_leader_read(struct raft *r, uint64_t from, uint64_t context)
{
	struct pending_read *p, pr = { from, context, 0, 0 };
	size_t cap;

	if (MUTANT(8)) {
		pr.index = r->log.committed;
		respond(r, &pr, true);
		return 0;
	}
	if (r->n_reads == r->cap_reads) {
		cap = r->cap_reads != 0 ? 2 * r->cap_reads : 8;
		p = dsc_reallocarray(r->reads, cap, sizeof(*p));
		if (p == NULL)
			return DSC_ENOMEM;
		r->reads = p;
		r->cap_reads = cap;
	}
	if (own_term_committed(r)) {
		pr.index = r->log.committed;
		pr.round = r->read_round + 1;
		r->read_round_needed = true;
	}
	r->reads[r->n_reads++] = pr;
	return 0;
}

int
raft_read_index(struct raft *r, uint64_t context)
{
	struct raft_msg m = {
		.type = RAFT_MSG_READ_INDEX,
		.to = r->lead,
		.context = context,
	};

	if (r->role == RAFT_LEADER)
		return raft_leader_read(r, r->id, context);
	if (r->lead == RAFT_NONE)
		return DSC_ENOLEADER;
	raft_send(r, &m);
	return 0;
}

void
raft_reads_own_term_committed(struct raft *r)
{
	for (size_t i = 0; i < r->n_reads; i++) {
		struct pending_read *p = &r->reads[i];

		if (p->round != 0)
			continue;
		p->index = r->log.committed;
		p->round = r->read_round + 1;
		r->read_round_needed = true;
	}
}

/* Releases every read whose round a majority of voters has confirmed. */
void
raft_reads_check(struct raft *r)
{
	uint64_t vals[RAFT_MAX_SERVERS], acked;
	size_t n = 0, kept = 0;

	for (uint32_t i = 0; i < r->conf.n; i++) {
		const struct raft_server *s = &r->conf.servers[i];
		struct raft_progress *pr;

		if (s->suffrage != RAFT_VOTER)
			continue;
		pr = raft_progress_get(r, s->id);
		vals[n++] = s->id == r->id ? r->read_round
					   : (pr != NULL ? pr->read_ack : 0);
	}
	acked = quorum_index(vals, n);
	for (size_t i = 0; i < r->n_reads; i++) {
		struct pending_read *p = &r->reads[i];

		if (p->round != 0 && p->round <= acked)
			respond(r, p, true);
		else
			r->reads[kept++] = *p;
	}
	r->n_reads = kept;
}

/* Leadership is gone: every waiting read must go elsewhere. */
void
raft_reads_fail_all(struct raft *r)
{
	for (size_t i = 0; i < r->n_reads; i++)
		respond(r, &r->reads[i], false);
	r->n_reads = 0;
	r->read_round_needed = false;
}

/* Called as the batch ends: start the round the batch's reads joined. */
void
raft_reads_release(struct raft *r)
{
	if (r->role != RAFT_LEADER || !r->read_round_needed)
		return;
	r->read_round_needed = false;
	r->read_round++;
	raft_bcast_heartbeat(r);
	raft_reads_check(r);
}

/*
 * raft.c - life cycle, roles, elections and the step dispatcher.
 *
 * The role decides how a message or a tick is handled; the transitions go
 * through raft_become_*() only. The semantics follow the dissertation and,
 * where it leaves a detail open, etcd-io/raft, whose choices have been
 * hardened by years of production and Jepsen testing.
 */
#include "raft.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "raft_internal.h"
#include "raft_quorum.h"


static const char *const role_names[RAFT_ROLE_MAX] = {
	"follower", "pre-candidate", "candidate", "leader",
};

const char *
raft_role_name(enum raft_role role)
{
	return (unsigned)role < RAFT_ROLE_MAX ? role_names[role] : "unknown";
}

static const char *const msg_names[RAFT_MSG_TYPE_MAX] = {
	"APPEND", "APPEND_RESP", "VOTE", "VOTE_RESP", "PREVOTE",
	"PREVOTE_RESP", "HEARTBEAT", "HEARTBEAT_RESP", "SNAPSHOT",
	"TIMEOUT_NOW", "READ_INDEX", "READ_INDEX_RESP",
};

const char *
raft_msg_type_name(enum raft_msg_type type)
{
	return (unsigned)type < RAFT_MSG_TYPE_MAX ? msg_names[type] : "UNKNOWN";
}

void
raft_trace(struct raft *r, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	if (r->cfg.trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->cfg.trace(r->cfg.trace_ctx, r->id, line);
}

void
raft_config_init(struct raft_config *c, uint64_t id, uint64_t seed)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->seed = seed;
	c->election_ticks = 10;
	c->heartbeat_ticks = 1;
	c->pre_vote = true;
	c->check_quorum = true;
	c->max_msg_bytes = 1u << 20;
	c->max_inflight = 64;
}

bool
raft_is_voter(const struct raft *r, uint64_t id)
{
	int i = raft_conf_find(&r->conf, id);

	return i >= 0 && r->conf.servers[i].suffrage == RAFT_VOTER;
}

/*
 * A voter of its latest configuration may campaign, and so may one whose
 * removal is not yet committed (§4.2.2: a leader deposed before its removal
 * commits "might still time out and become leader again"; without that a
 * two-server cluster whose leader removed itself can deadlock). Learners
 * never campaign (§4.2.1). Votes are always counted against the latest
 * configuration, so this changes liveness, not safety.
 */
bool
raft_promotable(const struct raft *r)
{
	struct raft_conf committed;
	int i;

	if (raft_is_voter(r, r->id))
		return true;
	if (raft_conf_last_index(r) <= r->log.committed)
		return false;
	raft_conf_at(r, r->log.committed, &committed);
	i = raft_conf_find(&committed, r->id);
	return i >= 0 && committed.servers[i].suffrage == RAFT_VOTER;
}

/* §3.4: randomized in [election, 2 * election) so split votes are rare. */
static void
reset_randomized_timeout(struct raft *r)
{
	r->randomized_timeout =
		r->cfg.election_ticks +
		(unsigned)prng_below(&r->prng, r->cfg.election_ticks);
}

static void
abort_transfer(struct raft *r)
{
	if (r->transferee != RAFT_NONE)
		raft_trace(r, "leadership transfer to %llu abandoned",
			   (unsigned long long)r->transferee);
	r->transferee = RAFT_NONE;
}

static void
reset(struct raft *r, uint64_t term)
{
	if (r->term != term) {
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->lead = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	reset_randomized_timeout(r);
	abort_transfer(r);
	r->n_voted = 0;
	r->bcast_pending = false;
	r->uncommitted_bytes = 0;
	r->pending_conf_index = 0;
	raft_reads_fail_all(r);
	raft_progress_reset(r);
}

void
raft_become_follower(struct raft *r, uint64_t term, uint64_t lead)
{
	reset(r, term);
	r->lead = lead;
	if (r->role != RAFT_FOLLOWER)
		raft_trace(r, "became follower at term %llu",
			   (unsigned long long)term);
	r->role = RAFT_FOLLOWER;
}

static void
become_pre_candidate(struct raft *r)
{
	/* §9.6: no term change and no vote until a majority would agree. */
	r->n_voted = 0;
	r->lead = RAFT_NONE;
	r->role = RAFT_PRECANDIDATE;
	raft_trace(r, "became pre-candidate at term %llu",
		   (unsigned long long)r->term);
}

static void
become_candidate(struct raft *r)
{
	reset(r, r->term + 1);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
	raft_trace(r, "became candidate at term %llu",
		   (unsigned long long)r->term);
}

static void
become_leader(struct raft *r)
{
	reset(r, r->term);
	r->lead = r->id;
	r->role = RAFT_LEADER;
	/*
	 * Any configuration entry still uncommitted in the log counts as
	 * pending, so no second change starts before it commits (ch. 4).
	 */
	r->pending_conf_index = rlog_last_index(&r->log);
	raft_trace(r, "became leader at term %llu", (unsigned long long)r->term);
	/* §6.4: a no-op entry commits the leader's term and, with it, the
	 * entries before it; until then reads and configuration changes wait.
	 * If it cannot be allocated the leader has nothing to commit, so it
	 * steps down rather than sit there unable to serve. */
	if (raft_append_local(r, RAFT_ENTRY_NOOP, NULL, 0) != 0) {
		raft_become_follower(r, r->term, RAFT_NONE);
		return;
	}
	r->bcast_pending = true;
}

static void
record_vote(struct raft *r, uint64_t from, bool granted)
{
	for (uint32_t i = 0; i < r->n_voted; i++)
		if (r->voted_ids[i] == from)
			return;
	if (r->n_voted == RAFT_MAX_SERVERS)
		return;
	r->voted_ids[r->n_voted] = from;
	r->voted_yes[r->n_voted] = granted;
	r->n_voted++;
}

static enum vote_result
tally(struct raft *r)
{
	size_t yes = 0, no = 0;

	for (uint32_t i = 0; i < r->n_voted; i++) {
		if (!raft_is_voter(r, r->voted_ids[i]))
			continue;
		if (r->voted_yes[i])
			yes++;
		else
			no++;
	}
	return quorum_tally(yes, no, raft_conf_voters(&r->conf));
}

enum campaign_kind { CAMPAIGN_PRE, CAMPAIGN_ELECTION, CAMPAIGN_TRANSFER };

static void campaign(struct raft *r, enum campaign_kind kind);

/* Acts on the votes so far: win, lose, or keep waiting. */
static void
poll(struct raft *r)
{
	switch (tally(r)) {
	case VOTE_WON:
		if (r->role == RAFT_PRECANDIDATE)
			campaign(r, CAMPAIGN_ELECTION);
		else
			become_leader(r);
		break;
	case VOTE_LOST:
		raft_become_follower(r, r->term, RAFT_NONE);
		break;
	case VOTE_PENDING:
		break;
	}
}

static void
campaign(struct raft *r, enum campaign_kind kind)
{
	struct raft_msg m = { 0 };

	if (!raft_promotable(r))
		return;
	if (kind == CAMPAIGN_PRE) {
		become_pre_candidate(r);
		m.type = RAFT_MSG_PREVOTE;
		m.term = r->term + 1;	/* the term it would campaign in */
	} else {
		become_candidate(r);
		m.type = RAFT_MSG_VOTE;
		m.term = r->term;
		m.transfer = kind == CAMPAIGN_TRANSFER;
	}
	record_vote(r, r->id, true);
	m.index = rlog_last_index(&r->log);
	m.log_term = rlog_last_term(&r->log);
	for (uint32_t i = 0; i < r->conf.n; i++) {
		const struct raft_server *s = &r->conf.servers[i];

		if (s->id == r->id || s->suffrage != RAFT_VOTER)
			continue;
		m.to = s->id;
		raft_send(r, &m);
	}
	poll(r);
}

static void
hup(struct raft *r, enum campaign_kind kind)
{
	if (r->role == RAFT_LEADER || !raft_promotable(r))
		return;
	campaign(r, kind);
}

/* Followers and candidates: time out into an election (§3.4). */
static void
tick_election(struct raft *r)
{
	r->election_elapsed++;
	if (raft_promotable(r) &&
	    r->election_elapsed >= r->randomized_timeout) {
		r->election_elapsed = 0;
		hup(r, r->cfg.pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
	}
}

static void
tick_heartbeat(struct raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		/* §6.2: a leader cut off from a majority steps down. */
		if (r->cfg.check_quorum && !raft_quorum_active(r)) {
			raft_trace(r, "stepped down: no quorum heard from");
			raft_become_follower(r, r->term, RAFT_NONE);
			return;
		}
		/* §3.10: a transfer that did not finish in time is dropped. */
		abort_transfer(r);
	}
	raft_leader_tick_snapshots(r);
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		raft_bcast_heartbeat(r);
	}
}

void
raft_tick(struct raft *r)
{
	if (r->role == RAFT_LEADER)
		tick_heartbeat(r);
	else
		tick_election(r);
}

int
raft_campaign(struct raft *r)
{
	if (r->role == RAFT_LEADER)
		return 0;
	if (!raft_promotable(r))
		return DSC_EINVAL;
	hup(r, r->cfg.pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
	return 0;
}

void
raft_leader_lost(struct raft *r, uint64_t id)
{
	unsigned left;

	if (r->role != RAFT_FOLLOWER || r->lead != id || id == RAFT_NONE ||
	    !raft_promotable(r))
		return;
	left = 1 + (unsigned)prng_below(&r->prng, RAFT_LOST_JITTER_TICKS);
	/* Out of the lease at once, into the election after @left ticks. */
	r->randomized_timeout = r->cfg.election_ticks + left;
	if (r->election_elapsed < r->cfg.election_ticks)
		r->election_elapsed = r->cfg.election_ticks;
	raft_trace(r, "lost the link to the leader");
}

/* Peers are hostile until checked: shape errors never reach the rules. */
static int
validate(const struct raft *r, const struct raft_msg *m)
{
	if (m->type >= RAFT_MSG_TYPE_MAX || m->from == RAFT_NONE ||
	    m->from == r->id || (m->to != r->id && m->to != RAFT_NONE))
		return DSC_EINVAL;
	if (m->term == 0 && m->type != RAFT_MSG_READ_INDEX)
		return DSC_EINVAL;
	if (m->n_entries > 0 &&
	    (m->type != RAFT_MSG_APPEND || m->entries == NULL ||
	     m->n_entries > RAFT_MAX_MSG_ENTRIES))
		return DSC_EINVAL;
	for (size_t i = 0; i < m->n_entries; i++) {
		const struct raft_entry *e = &m->entries[i];

		if (e->index != m->index + 1 + i || e->term > m->term ||
		    e->term < (i > 0 ? e[-1].term : m->log_term) ||
		    e->type >= RAFT_ENTRY_TYPE_MAX ||
		    e->len > RAFT_MAX_ENTRY_SIZE ||
		    (e->len > 0 && e->data == NULL))
			return DSC_EINVAL;
	}
	if (m->type == RAFT_MSG_SNAPSHOT &&
	    (m->snapshot.meta.index == 0 || m->snapshot.meta.term == 0 ||
	     m->snapshot.meta.term > m->term ||
	     m->snapshot.meta.conf.n > RAFT_MAX_SERVERS ||
	     (m->snapshot.len > 0 && m->snapshot.data == NULL)))
		return DSC_EINVAL;
	return 0;
}

static void
respond_vote(struct raft *r, const struct raft_msg *m, bool grant)
{
	struct raft_msg resp = {
		.type = m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP
						 : RAFT_MSG_PREVOTE_RESP,
		.to = m->from,
		/* A granted pre-vote answers in the candidate's future term,
		 * a refusal in ours so a stale candidate learns it. */
		.term = grant ? m->term : r->term,
		.reject = !grant,
	};

	raft_send(r, &resp);
}

/* Figure 3.1 RequestVote receiver, with §9.6 pre-votes. */
static void
handle_vote(struct raft *r, const struct raft_msg *m)
{
	bool can_vote = r->vote == m->from ||
			(r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
			(m->type == RAFT_MSG_PREVOTE && m->term > r->term);
	bool up_to_date = rlog_is_up_to_date(&r->log, m->index, m->log_term);

	if (MUTANT(1))
		up_to_date = true;
	if (can_vote && up_to_date) {
		respond_vote(r, m, true);
		if (m->type == RAFT_MSG_VOTE) {
			r->election_elapsed = 0;
			r->vote = m->from;
			raft_trace(r, "voted for %llu at term %llu",
				   (unsigned long long)m->from,
				   (unsigned long long)r->term);
		}
	} else {
		respond_vote(r, m, false);
	}
}

/*
 * Term rules, Figure 3.1 "all servers", with the refinements that make
 * pre-vote and check-quorum safe together (etcd #8334, #8499).
 * Returns false when the message is to be dropped.
 */
static bool
step_term(struct raft *r, const struct raft_msg *m)
{
	bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;

	if (m->term == 0)
		return true;	/* READ_INDEX carries no term */
	if (m->term > r->term) {
		/* §4.2.3: while a leader is heard from, vote requests are
		 * ignored, unless the leader itself asked (transfer). */
		bool in_lease = r->cfg.check_quorum && r->lead != RAFT_NONE &&
				r->election_elapsed < r->cfg.election_ticks;

		if (vote_req && !m->transfer && in_lease)
			return false;
		if (m->type == RAFT_MSG_PREVOTE)
			return true;	/* never change term for a pre-vote */
		if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)
			return true;	/* granted in our future term */
		if (MUTANT(4) && r->role != RAFT_FOLLOWER) {
			r->term = m->term;
			r->vote = RAFT_NONE;
			return true;
		}
		raft_trace(r, "saw term %llu from %llu (%s)",
			   (unsigned long long)m->term,
			   (unsigned long long)m->from,
			   raft_msg_type_name(m->type));
		if (m->type == RAFT_MSG_APPEND ||
		    m->type == RAFT_MSG_HEARTBEAT ||
		    m->type == RAFT_MSG_SNAPSHOT) {
			raft_become_follower(r, m->term, m->from);
		} else if (r->role == RAFT_LEADER) {
			raft_become_follower(r, m->term, RAFT_NONE);
		} else {
			/* Figure 3.1: only a current leader or a granted vote
			 * restarts the election timer, never a newer term
			 * alone. Otherwise a voter that cannot win (stale log)
			 * but times out first (a fast clock) postpones forever
			 * the elections of those that could: without pre-vote
			 * each of its campaigns resets everyone's timer. */
			unsigned elapsed = r->election_elapsed;
			unsigned timeout = r->randomized_timeout;

			raft_become_follower(r, m->term, RAFT_NONE);
			r->election_elapsed = elapsed;
			r->randomized_timeout = timeout;
		}
		return true;
	}
	if (m->term < r->term) {
		/* Figure 3.1: a request from an older term is refused with
		 * our term, so its sender learns it. A deposed leader or a
		 * stale candidate may have no other way to: with pre-vote and
		 * check-quorum our own vote requests may never reach it, and
		 * without an answer a candidate stuck in an old configuration
		 * can hold elections back for good. */
		if (m->type == RAFT_MSG_APPEND ||
		    m->type == RAFT_MSG_HEARTBEAT) {
			struct raft_msg resp = {
				.type = RAFT_MSG_APPEND_RESP,
				.to = m->from,
				.term = r->term,
			};
			raft_send(r, &resp);
		} else if (m->type == RAFT_MSG_PREVOTE ||
			   m->type == RAFT_MSG_VOTE) {
			respond_vote(r, m, false);
		}
		return false;
	}
	return true;
}

static void
reject_read(struct raft *r, const struct raft_msg *m)
{
	struct raft_msg resp = {
		.type = RAFT_MSG_READ_INDEX_RESP,
		.to = m->from,
		.term = r->term,
		.context = m->context,
		.reject = true,
	};

	raft_send(r, &resp);
}

static void
step_leader(struct raft *r, const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_APPEND_RESP:
		raft_step_leader_append_resp(r, m);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		raft_step_leader_heartbeat_resp(r, m);
		break;
	case RAFT_MSG_READ_INDEX:
		if (raft_leader_read(r, m->from, m->context) != 0)
			reject_read(r, m);
		break;
	default:
		/* Another leader in our term cannot exist; stale responses
		 * and TIMEOUT_NOW to a leader are ignored. */
		break;
	}
}

static int
step_candidate(struct raft *r, const struct raft_msg *m)
{
	enum raft_msg_type want = r->role == RAFT_PRECANDIDATE
					  ? RAFT_MSG_PREVOTE_RESP
					  : RAFT_MSG_VOTE_RESP;

	switch (m->type) {
	case RAFT_MSG_APPEND:
		raft_become_follower(r, m->term, m->from);
		return raft_handle_append(r, m);
	case RAFT_MSG_HEARTBEAT:
		raft_become_follower(r, m->term, m->from);
		raft_handle_heartbeat(r, m);
		return 0;
	case RAFT_MSG_SNAPSHOT:
		raft_become_follower(r, m->term, m->from);
		return raft_handle_snapshot(r, m);
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		if (m->type == want) {
			record_vote(r, m->from, !m->reject);
			poll(r);
		}
		return 0;
	case RAFT_MSG_READ_INDEX:
		reject_read(r, m);
		return 0;
	default:
		return 0;
	}
}

static int
step_follower(struct raft *r, const struct raft_msg *m)
{
	switch (m->type) {
	case RAFT_MSG_APPEND:
		r->election_elapsed = 0;
		r->lead = m->from;
		return raft_handle_append(r, m);
	case RAFT_MSG_HEARTBEAT:
		r->election_elapsed = 0;
		r->lead = m->from;
		raft_handle_heartbeat(r, m);
		return 0;
	case RAFT_MSG_SNAPSHOT:
		r->election_elapsed = 0;
		r->lead = m->from;
		return raft_handle_snapshot(r, m);
	case RAFT_MSG_TIMEOUT_NOW:
		/* §3.10: the leader asks us to start an election at once,
		 * without a pre-vote, and voters will not plead a lease. */
		if (raft_promotable(r)) {
			raft_trace(r, "campaigning on leader's request");
			campaign(r, CAMPAIGN_TRANSFER);
		}
		return 0;
	case RAFT_MSG_READ_INDEX:
		reject_read(r, m);
		return 0;
	case RAFT_MSG_READ_INDEX_RESP:
		raft_read_done(r, m->context, m->index, !m->reject);
		return 0;
	default:
		return 0;
	}
}

int
raft_step(struct raft *r, const struct raft_msg *m)
{
	int rv = validate(r, m);

	if (rv != 0)
		return rv;
	if (!step_term(r, m))
		return 0;
	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE) {
		handle_vote(r, m);
		return 0;
	}
	switch (r->role) {
	case RAFT_LEADER:
		step_leader(r, m);
		return 0;
	case RAFT_PRECANDIDATE:
	case RAFT_CANDIDATE:
		return step_candidate(r, m);
	default:
		return step_follower(r, m);
	}
}

int
raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index,
	     uint64_t *term)
{
	int rv;

	if (r->role != RAFT_LEADER)
		return DSC_ENOTLEADER;
	if (r->transferee != RAFT_NONE)
		return DSC_EBUSY;
	if (len > RAFT_MAX_ENTRY_SIZE)
		return DSC_ETOOBIG;
	/* With nothing uncommitted any entry is admitted (etcd), so an entry
	 * above the limit is slow rather than refused forever. */
	if (r->cfg.max_uncommitted_bytes != 0 && r->uncommitted_bytes > 0 &&
	    r->uncommitted_bytes + len > r->cfg.max_uncommitted_bytes)
		return DSC_EBUSY;
	rv = raft_append_local(r, RAFT_ENTRY_NORMAL, data, len);
	if (rv != 0)
		return rv;
	r->uncommitted_bytes += len;
	r->bcast_pending = true;
	if (index != NULL)
		*index = rlog_last_index(&r->log);
	if (term != NULL)
		*term = r->term;
	return 0;
}

int
raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t id,
		  uint64_t *index)
{
	uint8_t data[RAFT_CONF_CHANGE_SIZE];
	struct raft_conf next = r->conf;
	struct raft_progress *pr;
	int rv;

	if (r->role != RAFT_LEADER)
		return DSC_ENOTLEADER;
	if (r->transferee != RAFT_NONE ||
	    r->pending_conf_index > r->log.committed)
		return DSC_EBUSY;
	/* Erratum (raft-dev, 2015): commit an entry of this term first, or
	 * two configurations can form disjoint majorities. */
	if (rlog_term_or0(&r->log, r->log.committed) != r->term)
		return DSC_EBUSY;
	rv = raft_conf_apply(&next, op, id);
	if (rv != 0)
		return rv;
	if (raft_conf_voters(&next) == 0)
		return DSC_EINVAL;
	/* §4.2.1: a learner votes only once it has caught up. */
	if (op == RAFT_CONF_PROMOTE) {
		pr = raft_progress_get(r, id);
		if (pr == NULL || pr->match < r->log.committed)
			return DSC_EBUSY;
	}
	raft_conf_encode(data, op, id);
	rv = raft_append_local(r, RAFT_ENTRY_CONF, data, sizeof(data));
	if (rv != 0)
		return rv;
	r->pending_conf_index = rlog_last_index(&r->log);
	r->bcast_pending = true;
	if (index != NULL)
		*index = r->pending_conf_index;
	raft_trace(r, "proposed configuration change at %llu",
		   (unsigned long long)r->pending_conf_index);
	return 0;
}

int
raft_transfer_leader(struct raft *r, uint64_t target)
{
	struct raft_progress *pr;

	if (r->role != RAFT_LEADER)
		return DSC_ENOTLEADER;
	if (target == r->id || !raft_is_voter(r, target))
		return DSC_EINVAL;
	if (r->transferee != RAFT_NONE)
		return DSC_EBUSY;
	pr = raft_progress_get(r, target);
	if (pr == NULL)
		return DSC_EINVAL;
	r->transferee = target;
	r->election_elapsed = 0;	/* the transfer's deadline */
	raft_trace(r, "transferring leadership to %llu",
		   (unsigned long long)target);
	if (pr->match == rlog_last_index(&r->log)) {
		struct raft_msg m = {
			.type = RAFT_MSG_TIMEOUT_NOW,
			.to = target,
			.term = r->term,
		};
		raft_send(r, &m);
	} else {
		raft_send_append(r, pr, true);
	}
	return 0;
}

static int
load_state(struct raft *r, const struct raft_state *st)
{
	const struct raft_snapshot *s = st->snapshot;
	uint8_t boot[5 + RAFT_MAX_SERVERS * 9];
	struct raft_entry e = { 0 };
	size_t len;
	int rv;

	if (s != NULL && s->meta.index > 0) {
		if (s->len > 0) {
			r->snap_data = dsc_malloc(s->len);
			if (r->snap_data == NULL)
				return DSC_ENOMEM;
			memcpy(r->snap_data, s->data, s->len);
		}
		r->snap.meta = s->meta;
		r->snap.len = s->len;
		r->snap.data = r->snap_data;
		rlog_restore(&r->log, s->meta.index, s->meta.term);
		r->base_conf = s->meta.conf;
		r->conf = s->meta.conf;
	}
	for (size_t i = 0; i < st->n_entries; i++)
		if (st->entries[i].index != rlog_last_index(&r->log) + 1 + i)
			return DSC_EINVAL;
	if (st->n_entries > 0) {
		rv = rlog_append_after(&r->log, rlog_last_index(&r->log),
				       st->entries, st->n_entries);
		if (rv == 0)
			rv = raft_marks_append(r, st->entries, st->n_entries);
		if (rv != 0)
			return rv;
	} else if ((s == NULL || s->meta.index == 0) && st->bootstrap != NULL &&
		   st->bootstrap->n > 0) {
		/* Every bootstrapping server writes the same first entry, so
		 * it is committed by construction (as etcd and canonical/raft
		 * bootstrap). */
		rv = raft_conf_full_encode(st->bootstrap, boot, sizeof(boot),
					   &len);
		if (rv != 0)
			return rv;
		e = (struct raft_entry){ .term = 1, .index = 1,
					 .type = RAFT_ENTRY_CONF,
					 .len = (uint32_t)len, .data = boot };
		rv = rlog_append_after(&r->log, 0, &e, 1);
		if (rv == 0)
			rv = raft_marks_append(r, &e, 1);
		if (rv != 0)
			return rv;
		r->term = 1;
		r->log.committed = 1;
		return 0;
	}
	r->log.stable = rlog_last_index(&r->log);
	return 0;
}

struct raft *
raft_new(const struct raft_config *c, const struct raft_state *st, int *errp)
{
	struct raft *r;
	int rv = DSC_EINVAL;

	if (c->id == RAFT_NONE || c->election_ticks < 2 ||
	    c->heartbeat_ticks == 0 || c->heartbeat_ticks >= c->election_ticks ||
	    c->max_inflight == 0 || c->max_inflight > RAFT_MAX_INFLIGHT)
		goto fail;
	r = dsc_calloc(1, sizeof(*r));
	if (r == NULL) {
		rv = DSC_ENOMEM;
		goto fail;
	}
	r->cfg = *c;
	if (r->cfg.max_msg_bytes == 0)
		r->cfg.max_msg_bytes = 1u << 20;
	r->id = c->id;
	prng_seed(&r->prng, c->seed ^ (c->id * 0x9E3779B97F4A7C15ull));
	rlog_init(&r->log);
	rv = load_state(r, st);
	if (rv == 0 && st->hard.term > 0 &&
	    st->hard.term < rlog_last_term(&r->log))
		rv = DSC_EINVAL;
	if (rv == 0 && st->hard.term > 0) {
		r->term = st->hard.term;
		r->vote = st->hard.vote;
		if (st->hard.commit > r->log.committed)
			r->log.committed = st->hard.commit;
	}
	/* Persisting commit is optional, so a saved one past the log (a
	 * torn write) only means less is known committed. */
	if (rv == 0 && r->log.committed > rlog_last_index(&r->log))
		r->log.committed = rlog_last_index(&r->log);
	if (rv == 0) {
		uint64_t applied = st->applied;

		if (applied < r->log.offset)
			applied = r->log.offset;
		if (applied > r->log.committed)
			rv = DSC_EINVAL;
		r->log.applied = applied;
	}
	if (rv != 0) {
		raft_free(r);
		goto fail;
	}
	/* What was loaded is already saved, except a fresh bootstrap. */
	r->saved_hard = (struct raft_hard){ st->hard.term, st->hard.vote,
					    st->hard.commit };
	r->role = RAFT_FOLLOWER;
	r->reported_role = RAFT_FOLLOWER;
	reset_randomized_timeout(r);
	return r;
fail:
	if (errp != NULL)
		*errp = rv;
	return NULL;
}

void
raft_free(struct raft *r)
{
	if (r == NULL)
		return;
	rlog_release(&r->log);
	raft_marks_release(r);
	dsc_free(r->snap_data);
	dsc_free(r->reads);
	dsc_free(r->read_out);
	dsc_free(r->out);
	dsc_free(r->msgs);
	dsc_free(r);
}

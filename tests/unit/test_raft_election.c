/*
 * test_raft_election.c - leader election, one test per rule.
 *
 * Each test checks one sentence of Figure 3.1 ("Rules for Servers" and the
 * RequestVote receiver) or of the election refinements in raft.h: pre-vote
 * (§9.6), check-quorum (§6.2) and the leader lease that keeps a removed or
 * partitioned server from deposing a healthy leader (§4.2.3). Section
 * numbers are those of Ongaro's dissertation (2014). The scenarios run on
 * real cores in tests/unit/raft_harness.c; a failure prints the transcript.
 * As in etcd's raft_paper_test.go, pre-vote and check-quorum are off unless
 * a test is about them, so each rule shows alone.
 *
 * Terms and indexes are written relative to what the cluster boots with
 * (the bootstrap configuration entry is 1@1), so the tests do not depend on
 * how the core bootstraps.
 */
#include <inttypes.h>

#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10 /* the harness's default election timeout, in ticks */

struct base {
	uint64_t term, index, log_term;
};

/* Term and last entry of @id as it stands. */
static struct base
base_of(struct harness *h, uint64_t id)
{
	struct raft_status st;

	raft_status(h_raft(h, id), &st);
	return (struct base){ st.term, st.last_index, st.last_term };
}

/* ------------------------------------------------------------------------
 * All servers (Figure 3.1, §3.3)
 * ------------------------------------------------------------------------ */

/* "If RPC request or response contains term T > currentTerm: set
 * currentTerm = T, convert to follower" (Figure 3.1, all servers). */
TEST(follower_adopts_higher_term)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	struct raft_msg m = msg(RAFT_MSG_HEARTBEAT, 2, 1, b.term + 5);

	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_TERM(h, 1, b.term + 5);
	EXPECT_LEADER(h, 1, 2);
	process(h);
	H_EQ(h, h_saved_hard(h, 1).term, b.term + 5);
	h_free(h);
}

TEST(candidate_steps_down_on_higher_term)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	struct raft_msg m = msg(RAFT_MSG_HEARTBEAT, 2, 1, b.term + 5);

	campaign(h, 1);
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_TERM(h, 1, b.term + 5);
	h_free(h);
}

/* §3.3: "If a candidate or leader discovers that its term is out of date,
 * it immediately reverts to follower state." Any message will do; here a
 * vote request from a server that timed out. */
TEST(leader_steps_down_on_higher_term)
{
	struct harness *h = h_new(3, NULL);
	struct base b;
	struct raft_msg m;

	elect(h, 1);
	b = base_of(h, 1);
	m = msg(RAFT_MSG_VOTE, 3, 1, b.term + 1);
	m.index = b.index;
	m.log_term = b.log_term;
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_TERM(h, 1, b.term + 1);
	EXPECT_QUEUED(
	    h, pat("1->3 VOTE_RESP term=%" PRIu64 " reject=0", b.term + 1));
	h_free(h);
}

/* §3.3: "If a server receives a request with a stale term number, it
 * rejects the request." A stale heartbeat does not make a leader follow. */
TEST(stale_term_request_rejected)
{
	struct harness *h = h_new(3, NULL);
	struct base b;
	struct raft_msg m;

	elect(h, 1);
	b = base_of(h, 1);
	m = msg(RAFT_MSG_HEARTBEAT, 2, 1, b.term - 1);
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, b.term);
	EXPECT_LEADER(h, 1, 1);
	/* Whatever goes back carries the current term. */
	H_EQ(h, h_count_queued(h, "1->2 APPEND_RESP"),
	    h_count_queued(h, pat("1->2 APPEND_RESP term=%" PRIu64, b.term)));
	h_free(h);
}

/* §3.4: "When servers start up, they begin as followers." */
TEST(servers_start_as_followers)
{
	struct harness *h = h_new(3, NULL);

	for (uint64_t id = 1; id <= 3; id++) {
		EXPECT_ROLE(h, id, RAFT_FOLLOWER);
		EXPECT_LEADER(h, id, RAFT_NONE);
	}
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Followers and candidates (Figure 3.1, §3.4)
 * ------------------------------------------------------------------------ */

/* Followers: "If election timeout elapses without receiving AppendEntries
 * RPC from current leader or granting vote to candidate: convert to
 * candidate." Candidates: "On conversion to candidate, start election:
 * increment currentTerm, vote for self, reset election timer, send
 * RequestVote RPCs to all other servers." */
TEST(follower_starts_election_after_timeout)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	unsigned ticks;

	ticks = tick_until_role(h, 1, RAFT_CANDIDATE, 2 * ET);
	H_ASSERT(h, ticks >= ET && ticks < 2 * ET);
	EXPECT_TERM(h, 1, b.term + 1);
	EXPECT_VOTE(h, 1, 1);
	H_EQ(h, h_saved_hard(h, 1).term, b.term + 1);
	H_EQ(h, h_saved_hard(h, 1).vote, 1);
	deliver_only(h, 1, 0);
	EXPECT_MSGS(h,
	    pat("1->2 VOTE term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64,
	        b.term + 1, b.index, b.log_term),
	    pat("1->3 VOTE term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64,
	        b.term + 1, b.index, b.log_term));
	h_free(h);
}

/* Candidates: "If election timeout elapses: start new election" (§3.4: a
 * split vote ends by timeout, with a new term). */
TEST(candidate_starts_new_election_after_timeout)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);

	isolate(h, 1);
	campaign(h, 1);
	EXPECT_TERM(h, 1, b.term + 1);
	tick_until_term(h, 1, b.term + 2, 2 * ET);
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	EXPECT_VOTE(h, 1, 1);
	drop(h, 0, 0);
	H_EQ(h, h_count(h, pat("1-x2 VOTE term=%" PRIu64, b.term + 2)), 1);
	H_EQ(h, h_count(h, pat("1-x3 VOTE term=%" PRIu64, b.term + 2)), 1);
	h_free(h);
}

/* Followers: an AppendEntries from the current leader resets the election
 * timer, so a follower that hears heartbeats never campaigns. */
TEST(follower_hearing_heartbeats_never_campaigns)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	for (int i = 0; i < 10 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 2, term);
	EXPECT_TERM(h, 3, term);
	h_free(h);
}

/* Followers: granting a vote also resets the election timer. */
TEST(follower_granting_vote_restarts_election_timer)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 2);
	struct raft_msg m = msg(RAFT_MSG_VOTE, 1, 2, b.term + 1);

	tick(h, 2, ET - 1);
	EXPECT_ROLE(h, 2, RAFT_FOLLOWER);
	m.index = b.index;
	m.log_term = b.log_term;
	H_EQ(h, h_step(h, 2, &m), 0);
	EXPECT_VOTE(h, 2, 1);
	/* Without the reset the timeout (< 2 * ET) would fire in here. */
	tick(h, 2, ET - 1);
	EXPECT_ROLE(h, 2, RAFT_FOLLOWER);
	EXPECT_TERM(h, 2, b.term + 1);
	h_free(h);
}

/* Followers: only a current leader or a granted vote restarts the election
 * timer (Figure 3.1); a newer term from a candidate it refuses does not. */
TEST(follower_refusing_vote_keeps_election_timer)
{
	struct harness *h = h_new(3, NULL);
	struct base b;
	struct raft_msg m;

	elect(h, 1);
	crash(h, 1);
	b = base_of(h, 2);
	H_ASSERT(h, b.log_term > 1);
	tick(h, 2, ET - 1);
	EXPECT_ROLE(h, 2, RAFT_FOLLOWER);
	/* 3's log ends in an older term: refused, but the term is adopted. */
	m = msg(RAFT_MSG_VOTE, 3, 2, b.term + 1);
	m.index = b.index;
	m.log_term = b.log_term - 1;
	H_EQ(h, h_step(h, 2, &m), 0);
	EXPECT_QUEUED(
	    h, pat("2->3 VOTE_RESP term=%" PRIu64 " reject=1", b.term + 1));
	EXPECT_VOTE(h, 2, RAFT_NONE);
	/* The randomized timeout (< 2 * ET) runs from the last heartbeat. */
	tick_until_role(h, 2, RAFT_CANDIDATE, ET);
	EXPECT_TERM(h, 2, b.term + 2);
	h_free(h);
}

/*
 * As a whole, without pre-vote: a voter that cannot win (its log is stale)
 * and whose clock runs twice as fast times out before the others every
 * time and bumps their terms. If that restarted their timers, it would
 * keep them from ever campaigning; it must not, and 2 gets elected.
 */
TEST(stale_fast_candidate_does_not_starve_elections)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;
	int i;

	elect(h, 1);
	isolate(h, 3);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	crash(h, 1);
	heal(h);
	term = raft_term(h_raft(h, 2));
	for (i = 0; i < 10 * ET; i++) {
		if (raft_role(h_raft(h, 2)) == RAFT_LEADER)
			break;
		tick(h, 3, 2);
		tick(h, 2, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	/* 3 campaigned and was refused, so the contest was real. */
	H_ASSERT(h, raft_term(h_raft(h, 2)) > term + 1);
	H_ASSERT(h, i <= 2 * ET);
	h_free(h);
}

/*
 * §3.4: "A candidate wins an election if it receives votes from a majority
 * of the servers in the full cluster for the same term"; it returns to
 * follower state when a majority refuses (etcd) and otherwise waits.
 */
TEST(candidate_wins_with_majority_of_votes)
{
	static const struct {
		unsigned size;
		const char *votes; /* per peer 2..size: y, n or - */
		enum raft_role want;
	} cases[] = {
		{ 1, "", RAFT_LEADER },
		{ 3, "yy", RAFT_LEADER },
		{ 3, "y-", RAFT_LEADER },
		{ 5, "yyyy", RAFT_LEADER },
		{ 5, "yyy-", RAFT_LEADER },
		{ 5, "yy--", RAFT_LEADER },
		{ 3, "nn", RAFT_FOLLOWER },
		{ 5, "nnnn", RAFT_FOLLOWER },
		{ 5, "ynnn", RAFT_FOLLOWER },
		{ 3, "--", RAFT_CANDIDATE },
		{ 5, "y---", RAFT_CANDIDATE },
		{ 5, "nn--", RAFT_CANDIDATE },
		{ 5, "----", RAFT_CANDIDATE },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct harness *h = h_new(cases[i].size, NULL);
		uint64_t term;

		h_note(h, "case %zu: %u servers, votes '%s'", i, cases[i].size,
		    cases[i].votes);
		campaign(h, 1);
		process(h);
		drop(h, 0, 0);
		term = raft_term(h_raft(h, 1));
		for (unsigned p = 0; cases[i].votes[p] != '\0'; p++) {
			struct raft_msg m;

			if (cases[i].votes[p] == '-')
				continue;
			m = msg(RAFT_MSG_VOTE_RESP, p + 2, 1, term);
			m.reject = cases[i].votes[p] == 'n';
			H_EQ(h, h_step(h, 1, &m), 0);
		}
		process(h);
		EXPECT_ROLE(h, 1, cases[i].want);
		EXPECT_TERM(h, 1, term);
		h_free(h);
	}
}

/* §3.4: "While waiting for votes, a candidate may receive an AppendEntries
 * RPC from another server claiming to be leader. If the leader's term is
 * at least as large as the candidate's current term, then the candidate
 * recognizes the leader as legitimate and returns to follower state." */
TEST(candidate_becomes_follower_on_append_of_same_term)
{
	for (uint64_t ahead = 0; ahead <= 1; ahead++) {
		struct harness *h = h_new(3, NULL);
		struct base b = base_of(h, 1);
		struct raft_msg m;

		campaign(h, 1);
		EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
		m = msg(RAFT_MSG_APPEND, 2, 1, b.term + 1 + ahead);
		m.index = b.index;
		m.log_term = b.log_term;
		H_EQ(h, h_step(h, 1, &m), 0);
		EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
		EXPECT_TERM(h, 1, b.term + 1 + ahead);
		EXPECT_LEADER(h, 1, 2);
		h_free(h);
	}
}

/* §3.4: the votes counted are those "from a majority of the servers in the
 * full cluster": a repeated answer counts once, and an answer from a
 * server outside the configuration not at all. */
TEST(candidate_counts_each_voter_once)
{
	struct harness *h = h_new(5, NULL);
	struct raft_msg m;
	uint64_t term;

	campaign(h, 1);
	process(h);
	drop(h, 0, 0);
	term = raft_term(h_raft(h, 1));
	for (int i = 0; i < 3; i++) {
		m = msg(RAFT_MSG_VOTE_RESP, 2, 1, term);
		H_EQ(h, h_step(h, 1, &m), 0);
	}
	m = msg(RAFT_MSG_VOTE_RESP, 9, 1, term);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	m = msg(RAFT_MSG_VOTE_RESP, 3, 1, term);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	h_free(h);
}

/* "If the term in the RPC is smaller than the candidate's current term,
 * then the candidate rejects the RPC and continues in candidate state." */
TEST(candidate_ignores_append_of_older_term)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	struct raft_msg m;

	campaign(h, 1);
	campaign(h, 1); /* a second round: term b + 2 */
	EXPECT_TERM(h, 1, b.term + 2);
	m = msg(RAFT_MSG_APPEND, 2, 1, b.term + 1);
	m.index = b.index;
	m.log_term = b.log_term;
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	EXPECT_TERM(h, 1, b.term + 2);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Randomized election timeouts (§3.4)
 * ------------------------------------------------------------------------ */

/* §3.4: "election timeouts are chosen randomly from a fixed interval";
 * here [ET, 2 * ET), every value reachable, for followers and candidates. */
TEST(election_timeout_randomized_within_range)
{
	bool seen_f[2 * ET] = { false }, seen_c[2 * ET] = { false };

	for (uint64_t seed = 1; seed <= 100; seed++) {
		struct harness *h = h_new(3, H_OPTS(.seed = seed));
		unsigned t = tick_until_role(h, 1, RAFT_CANDIDATE, 2 * ET);

		H_ASSERT(h, t >= ET && t < 2 * ET);
		seen_f[t] = true;
		h_free(h);
	}
	/* A candidate that gets no answer: one timeout per new term. */
	struct harness *h = h_new(3, NULL);
	isolate(h, 1);
	campaign(h, 1);
	for (int round = 0; round < 200; round++) {
		uint64_t term = raft_term(h_raft(h, 1));
		unsigned t = tick_until_term(h, 1, term + 1, 2 * ET);

		H_ASSERT(h, t >= ET && t < 2 * ET);
		seen_c[t] = true;
		drop(h, 0, 0);
	}
	for (unsigned d = ET; d < 2 * ET; d++) {
		if (!seen_f[d])
			H_FAIL(h, "no follower timed out after %u ticks", d);
		if (!seen_c[d])
			H_FAIL(h, "no candidate timed out after %u ticks", d);
	}
	h_free(h);
}

/* §3.4: randomization "spreads out the servers so that in most cases only
 * a single server will time out"; with five servers, at most 30% of the
 * elections start with two servers timing out on the same tick. */
TEST(election_timeouts_rarely_collide)
{
	unsigned conflicts = 0, rounds = 200;

	for (uint64_t seed = 1; seed <= rounds; seed++) {
		struct harness *h = h_new(5, H_OPTS(.seed = seed));
		unsigned fired = 0;

		for (unsigned t = 0; t < 2 * ET && fired == 0; t++) {
			tick_all(h, 1);
			for (uint64_t id = 1; id <= 5; id++)
				if (raft_role(h_raft(h, id)) != RAFT_FOLLOWER)
					fired++;
		}
		H_ASSERT(h, fired > 0);
		if (fired > 1)
			conflicts++;
		h_free(h);
	}
	T_ASSERT(conflicts * 10 <= rounds * 3);
}

/* ------------------------------------------------------------------------
 * RequestVote receiver (Figure 3.1, §3.4, §3.6.1)
 * ------------------------------------------------------------------------ */

/* 1. "Reply false if term < currentTerm." */
TEST(vote_rejected_for_stale_term)
{
	struct harness *h = h_new(3, NULL);
	struct raft_msg m = msg(RAFT_MSG_VOTE, 2, 1, 4);

	set_log(h, 1, 5, "1 1");
	m.index = 2;
	m.log_term = 1;
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_TERM(h, 1, 5);
	EXPECT_VOTE(h, 1, RAFT_NONE);
	H_EQ(h, h_count_queued(h, "1->2 VOTE_RESP reject=0"), 0);
	h_free(h);
}

/* 2. "If votedFor is null or candidateId, and candidate's log is at least
 * as up-to-date as receiver's log, grant vote": one vote per term, first
 * come first served; asking again gets the same answer. */
TEST(vote_granted_once_per_term)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	uint64_t t = b.term + 1;
	struct raft_msg m;

	for (uint64_t from = 2; from <= 3; from++) {
		m = msg(RAFT_MSG_VOTE, from, 1, t);
		m.index = b.index;
		m.log_term = b.log_term;
		H_EQ(h, h_step(h, 1, &m), 0);
		process(h);
	}
	m = msg(RAFT_MSG_VOTE, 2, 1, t);
	m.index = b.index;
	m.log_term = b.log_term;
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_QUEUED(h, pat("1->2 VOTE_RESP term=%" PRIu64 " reject=0", t),
	    pat("1->3 VOTE_RESP reject=1"),
	    pat("1->2 VOTE_RESP term=%" PRIu64 " reject=0", t));
	EXPECT_VOTE(h, 1, 2);
	H_EQ(h, h_saved_hard(h, 1).vote, 2);
	h_free(h);
}

/*
 * §3.6.1: "Raft determines which of two logs is more up-to-date by
 * comparing the index and term of the last entries in the logs. If the
 * logs have last entries with different terms, then the log with the later
 * term is more up-to-date. If the logs end with the same term, then
 * whichever log is longer is more up-to-date." The voter denies its vote
 * when its own log is more up-to-date (etcd TestVoter).
 */
TEST(follower_rejects_vote_for_stale_log)
{
	static const struct {
		const char *log;          /* voter's terms from index 1 */
		uint64_t log_term, index; /* candidate's last entry */
		bool reject;
	} cases[] = {
		/* same last term: longer or equal wins */
		{ "1", 1, 1, false },
		{ "1", 1, 2, false },
		{ "1 1", 1, 1, true },
		/* candidate has the later last term */
		{ "1", 2, 1, false },
		{ "1", 2, 2, false },
		{ "1 1", 2, 1, false },
		/* voter has the later last term */
		{ "2", 1, 1, true },
		{ "2", 1, 2, true },
		{ "2 2", 1, 1, true },
		{ "1 1", 1, 1, true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct harness *h = h_new(3, NULL);
		struct raft_msg m = msg(RAFT_MSG_VOTE, 2, 1, 3);

		h_note(h, "case %zu", i);
		set_log(h, 1, 2, cases[i].log);
		m.index = cases[i].index;
		m.log_term = cases[i].log_term;
		H_EQ(h, h_step(h, 1, &m), 0);
		EXPECT_QUEUED(
		    h, pat("1->2 VOTE_RESP term=3 reject=%d", cases[i].reject));
		EXPECT_VOTE(h, 1, cases[i].reject ? RAFT_NONE : 2);
		h_free(h);
	}
}

/* §3.6.1, as a whole: a server whose log lacks a committed entry cannot be
 * elected, because the majority that holds the entry refuses it. */
TEST(candidate_missing_committed_entry_cannot_win)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	isolate(h, 3);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	heal(h);
	isolate(h, 1);
	term = raft_term(h_raft(h, 3));
	campaign(h, 3);
	stabilize(h);
	EXPECT_TERM(h, 3, term + 1);
	H_ASSERT(h, raft_role(h_raft(h, 3)) != RAFT_LEADER);
	/* 2 can: its log has the entry. */
	elect(h, 2);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Leaders (Figure 3.1, §3.4, §6.4)
 * ------------------------------------------------------------------------ */

/* Leaders: "send initial empty AppendEntries RPCs (heartbeat) to each
 * server; repeat during idle periods to prevent election timeouts." */
TEST(leader_sends_heartbeats_when_idle)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	tick(h, 1, 1);
	EXPECT_QUEUED(h, pat("1->2 HEARTBEAT term=%" PRIu64, term),
	    pat("1->3 HEARTBEAT term=%" PRIu64, term));
	deliver(h);
	EXPECT_MSGS(h, pat("1->2 HEARTBEAT term=%" PRIu64, term),
	    pat("1->3 HEARTBEAT term=%" PRIu64, term));
	deliver(h);
	EXPECT_MSGS(h, "2->1 HEARTBEAT_RESP", "3->1 HEARTBEAT_RESP");
	h_free(h);
}

/* §6.4 and §3.6.2: "each leader commit a blank no-op entry into the log at
 * the start of its term"; it is what the new leader's first AppendEntries
 * carries, and its commit brings everything before it along. */
TEST(leader_appends_noop_at_term_start)
{
	struct harness *h = h_new(3, NULL);
	struct base b = base_of(h, 1);
	uint64_t t = b.term + 1, noop = b.index + 1;

	campaign(h, 1);
	deliver(h);
	EXPECT_MSGS(h, pat("1->2 VOTE term=%" PRIu64, t),
	    pat("1->3 VOTE term=%" PRIu64, t));
	deliver(h);
	EXPECT_MSGS(h, pat("2->1 VOTE_RESP term=%" PRIu64 " reject=0", t),
	    pat("3->1 VOTE_RESP term=%" PRIu64 " reject=0", t));
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_LAST_INDEX(h, 1, noop);
	EXPECT_QUEUED(h,
	    pat("1->2 APPEND term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64 " entries=[%" PRIu64 "@%" PRIu64 ":noop]",
	        t, b.index, b.log_term, noop, t),
	    pat("1->3 APPEND term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64 " entries=[%" PRIu64 "@%" PRIu64 ":noop]",
	        t, b.index, b.log_term, noop, t));
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_COMMIT(h, id, noop);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Pre-vote (§9.6)
 * ------------------------------------------------------------------------ */

/* §9.6: "a candidate would first ask other servers whether its log was
 * up-to-date enough to get their vote. Only if the candidate believed it
 * could get votes from a majority of the cluster would it increment its
 * term and start a normal election." The pre-vote asks in the term it
 * would campaign in, and nobody's term moves until the real vote. */
TEST(prevote_then_vote)
{
	struct harness *h = h_new(3, H_OPTS(.pre_vote = true));
	struct base b = base_of(h, 1);
	uint64_t t = b.term + 1;

	campaign(h, 1);
	EXPECT_ROLE(h, 1, RAFT_PRECANDIDATE);
	EXPECT_TERM(h, 1, b.term);
	deliver(h);
	EXPECT_MSGS(h,
	    pat("1->2 PREVOTE term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64,
	        t, b.index, b.log_term),
	    pat("1->3 PREVOTE term=%" PRIu64 " index=%" PRIu64
	        " log_term=%" PRIu64,
	        t, b.index, b.log_term));
	EXPECT_TERM(h, 2, b.term);
	EXPECT_TERM(h, 3, b.term);
	EXPECT_VOTE(h, 2, RAFT_NONE);
	deliver(h);
	EXPECT_MSGS(h, pat("2->1 PREVOTE_RESP term=%" PRIu64 " reject=0", t),
	    pat("3->1 PREVOTE_RESP term=%" PRIu64 " reject=0", t));
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	EXPECT_TERM(h, 1, t);
	deliver(h);
	EXPECT_MSGS(h, pat("1->2 VOTE term=%" PRIu64, t),
	    pat("1->3 VOTE term=%" PRIu64, t));
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 2, t);
	h_free(h);
}

/* §9.6: a server that cannot reach a majority keeps pre-voting and never
 * increments its term, however long it is cut off. */
TEST(prevote_does_not_bump_term)
{
	struct harness *h = h_new(3, H_OPTS(.pre_vote = true));
	struct base b = base_of(h, 1);

	isolate(h, 1);
	for (int i = 0; i < 10; i++) {
		tick(h, 1, 2 * ET);
		drop(h, 0, 0);
	}
	H_ASSERT(h, h_count(h, "1-x2 PREVOTE") >= 5);
	H_EQ(h, h_count(h, "1-x2 VOTE"), 0);
	EXPECT_TERM(h, 1, b.term);
	H_EQ(h, h_saved_hard(h, 1).term, b.term);
	H_ASSERT(h, raft_role(h_raft(h, 1)) != RAFT_CANDIDATE);
	h_free(h);
}

/* §9.6: a pre-vote is refused to a candidate whose log is behind, and the
 * refusal moves no term. */
TEST(prevote_rejected_for_stale_log)
{
	struct harness *h = h_new(3, H_OPTS(.pre_vote = true));

	set_log(h, 1, 2, "1");
	set_log(h, 2, 2, "1 2");
	set_log(h, 3, 2, "1 2");
	campaign(h, 1);
	stabilize(h);
	EXPECT_MSGS(h, "1->2 PREVOTE term=3", "1->3 PREVOTE term=3",
	    "2->1 PREVOTE_RESP reject=1", "3->1 PREVOTE_RESP reject=1");
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_TERM(h, id, 2);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	h_free(h);
}

/*
 * §9.6: "While a server is partitioned, it won't be able to increment its
 * term, since it can't receive permission from a majority of the cluster.
 * Then, when it rejoins the cluster, it still won't be able to increment
 * its term, since the other servers will have been receiving regular
 * heartbeats from the leader." Pre-vote with check-quorum, as TESTING.md
 * asks.
 */
TEST(prevote_rejoining_node_does_not_disrupt)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 3);
	for (int i = 0; i < 5 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	H_ASSERT(h, h_count(h, "3-x* PREVOTE") > 0);
	EXPECT_TERM(h, 3, term);
	heal(h);
	for (int i = 0; i < 5 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	for (uint64_t id = 1; id <= 3; id++) {
		EXPECT_TERM(h, id, term);
		EXPECT_LEADER(h, id, 1);
	}
	h_free(h);
}

/* Pre-vote with check-quorum (etcd #8334, TestPreVoteWithCheckQuorum): the
 * leader is cut off; a follower that pre-votes first is ignored by the
 * other, still in its lease - but having become a pre-candidate it has
 * dropped its own lease, so it grants the other's pre-vote and the
 * cluster gets a leader. */
TEST(prevote_with_checkquorum_elects_after_leader_lost)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 1);
	campaign(h, 3);
	stabilize(h);
	EXPECT_ROLE(h, 3, RAFT_PRECANDIDATE);
	EXPECT_ROLE(h, 2, RAFT_FOLLOWER);
	campaign(h, 2);
	stabilize(h);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	EXPECT_ROLE(h, 3, RAFT_FOLLOWER);
	EXPECT_TERM(h, 2, term + 1);
	EXPECT_TERM(h, 3, term + 1);
	h_free(h);
}

/* The counterpart, and why pre-vote is there: without it the rejoining
 * server's higher term deposes the leader. */
TEST(without_prevote_rejoining_node_disrupts)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 3);
	tick_until_term(h, 3, term + 2, 4 * ET);
	drop(h, 0, 0);
	heal(h);
	/* The leader's heartbeats are stale to 3, which campaigns again. */
	tick(h, 1, 1);
	stabilize(h);
	tick_until_term(h, 3, term + 3, 2 * ET);
	stabilize(h);
	H_ASSERT(h, raft_term(h_raft(h, 1)) > term);
	H_ASSERT(h, h_count(h, "1->3 VOTE_RESP") + h_count(h, "3->1 VOTE") > 0);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Check-quorum (§6.2)
 * ------------------------------------------------------------------------ */

/* §6.2: "a leader steps down if an election timeout elapses without a
 * successful round of heartbeats to a majority of its cluster." The term
 * stays: stepping down is not an election. */
TEST(checkquorum_isolated_leader_steps_down)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	uint64_t term;
	unsigned ticks;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 1);
	ticks = tick_until_role(h, 1, RAFT_FOLLOWER, 2 * ET + 1);
	H_ASSERT(h, ticks >= ET);
	EXPECT_TERM(h, 1, term);
	EXPECT_LEADER(h, 1, RAFT_NONE);
	h_free(h);
}

/* A leader that keeps hearing from a majority stays, one follower down. */
TEST(checkquorum_leader_with_quorum_stays)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	crash(h, 3);
	for (int i = 0; i < 10 * ET; i++) {
		tick(h, 1, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, term);
	h_free(h);
}

/* §6.2 with a partition: the minority leader steps down on its own and the
 * majority elects a new one. (Without pre-vote the minority's servers then
 * run up their terms, so after healing there is again one leader, though
 * not necessarily the same one.) */
TEST(checkquorum_minority_leader_steps_down_majority_elects)
{
	struct harness *h = h_new(5, H_OPTS(.check_quorum = true));
	uint64_t term, leader = 0;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	for (uint64_t a = 1; a <= 2; a++)
		for (uint64_t b = 3; b <= 5; b++)
			cut(h, a, b);
	for (int i = 0; i < 6 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	for (uint64_t id = 3; id <= 5; id++)
		if (raft_role(h_raft(h, id)) == RAFT_LEADER)
			leader = id;
	H_ASSERT(h, leader != 0);
	H_ASSERT(h, raft_term(h_raft(h, leader)) > term);
	heal(h);
	for (int i = 0; i < 10 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	leader = raft_leader(h_raft(h, 1));
	H_ASSERT(h, leader != RAFT_NONE);
	EXPECT_ROLE(h, leader, RAFT_LEADER);
	for (uint64_t id = 1; id <= 5; id++)
		EXPECT_LEADER(h, id, leader);
	h_free(h);
}

/* With check-quorum a server that was cut off and ran its term up has its
 * vote requests ignored (lease) and ignores the leader's older-term
 * heartbeats: it would be stuck for good. It answers those heartbeats in
 * its term instead (etcd TestFreeStuckCandidateWithCheckQuorum), the
 * leader steps down, and the election that follows brings it back. */
TEST(checkquorum_stuck_candidate_rejoins)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	uint64_t term, leader;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 3);
	tick_until_term(h, 3, term + 3, 8 * ET);
	drop(h, 0, 0);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, pat("3->1 APPEND_RESP term=%" PRIu64, term + 3)), 1);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	for (int i = 0; i < 10 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	leader = raft_leader(h_raft(h, 3));
	H_ASSERT(h, leader == 1 || leader == 2);
	EXPECT_ROLE(h, leader, RAFT_LEADER);
	H_ASSERT(h, raft_term(h_raft(h, leader)) > term + 3);
	EXPECT_APPLIED(h, 3, "x");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Leader lease against disruptive servers (§4.2.3)
 * ------------------------------------------------------------------------ */

/* §4.2.3: "if a server receives a RequestVote request within the minimum
 * election timeout of hearing from a current leader, it does not update
 * its term or grant its vote." That holds for the leader too. */
TEST(lease_follower_ignores_vote_while_hearing_from_leader)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	tick(h, 1, 1);
	stabilize(h);
	isolate(h, 3);
	tick_until_term(h, 3, term + 2, 4 * ET);
	drop(h, 0, 0);
	heal(h);
	tick_until_term(h, 3, term + 3, 2 * ET);
	h_mark(h);
	deliver_only(h, 3, 0);
	EXPECT_MSGS(h, pat("3->1 VOTE term=%" PRIu64, term + 3),
	    pat("3->2 VOTE term=%" PRIu64, term + 3));
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, term);
	EXPECT_TERM(h, 2, term);
	EXPECT_VOTE(h, 2, 1);
	H_EQ(h, h_count_queued(h, "*->3 VOTE_RESP reject=0"), 0);
	h_free(h);
}

/* Once the lease has run out (no leader heard for an election timeout), a
 * vote request is considered again. */
TEST(lease_expired_vote_considered)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	struct base b;
	struct raft_msg m;

	elect(h, 1);
	b = base_of(h, 2);
	crash(h, 1);
	/* 2 stops hearing from 1; hand it a vote request once its lease is
	 * over but before it times out itself (randomized >= ET). */
	tick(h, 2, ET);
	EXPECT_ROLE(h, 2, RAFT_FOLLOWER);
	m = msg(RAFT_MSG_VOTE, 3, 2, b.term + 1);
	m.index = b.index;
	m.log_term = b.log_term;
	H_EQ(h, h_step(h, 2, &m), 0);
	EXPECT_TERM(h, 2, b.term + 1);
	EXPECT_QUEUED(
	    h, pat("2->3 VOTE_RESP term=%" PRIu64 " reject=0", b.term + 1));
	h_free(h);
}

/* ------------------------------------------------------------------------
 * A lost link to the leader (raft_leader_lost)
 * ------------------------------------------------------------------------ */

/* The leader dies and both followers see their links fail: one of them
 * leads within a few ticks, not after an election timeout. */
TEST(leader_lost_elects_within_jitter_ticks)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;
	unsigned ticks = 0;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	crash(h, 1);
	raft_leader_lost(h_raft(h, 2), 1);
	raft_leader_lost(h_raft(h, 3), 1);
	while (raft_leader(h_raft(h, 2)) == RAFT_NONE ||
	    raft_leader(h_raft(h, 2)) == 1 ||
	    raft_leader(h_raft(h, 2)) != raft_leader(h_raft(h, 3))) {
		H_ASSERT(h, ticks < 3 * ET);
		tick(h, 2, 1);
		tick(h, 3, 1);
		stabilize(h);
		ticks++;
	}
	H_ASSERT(h, raft_term(h_raft(h, 2)) > term);
	/* Without a split vote it takes at most the jitter. */
	if (raft_term(h_raft(h, 2)) == term + 1)
		H_ASSERT(h, ticks <= RAFT_LOST_JITTER_TICKS);
	h_free(h);
}

/* A link that fails while the leader lives (a flap) disturbs nobody: the
 * other voter, still in its lease, refuses the pre-vote, and the leader's
 * next heartbeat brings the follower back. No term moves. */
TEST(leader_lost_while_leader_lives_changes_no_term)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	raft_leader_lost(h_raft(h, 3), 1);
	for (unsigned i = 0; i < 2 * ET; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_ROLE(h, 3, RAFT_FOLLOWER);
	EXPECT_TERM(h, 1, term);
	EXPECT_TERM(h, 2, term);
	EXPECT_TERM(h, 3, term);
	h_free(h);
}

/* Only a follower of that leader reacts. */
TEST(leader_lost_of_another_server_is_ignored)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	raft_leader_lost(h_raft(h, 3), 2);
	raft_leader_lost(h_raft(h, 1), 1);
	tick(h, 3, RAFT_LOST_JITTER_TICKS);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_ROLE(h, 3, RAFT_FOLLOWER);
	EXPECT_TERM(h, 3, term);
	h_free(h);
}

T_MAIN()

/*
 * test_raft_replication.c - log replication and commitment, one test per
 * rule.
 *
 * Figure 3.1's AppendEntries receiver steps 1-5 and the leader's rules of
 * §3.5-§3.6 (replication, the Log Matching repair, commit by counting only
 * in the leader's own term, Figure 3.7), then the performance machinery of
 * §10.2 that must not bend them: pipelining, batching, flow control, fast
 * backtracking of a follower's divergent log, and the Ready contract that
 * orders saving before sending and applying. Section numbers are those of
 * Ongaro's dissertation (2014); the receiver tests follow etcd's
 * raft_paper_test.go case by case.
 *
 * Logs are set up with set_log(): "1 1 2" is a log whose index 1, 2 and 3
 * have terms 1, 1 and 2 (index 1 stands in a snapshot). A fresh cluster
 * boots with the configuration entry 1@1; its first leader is elected in
 * term 2 and appends its no-op at 2@2.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10

/* An APPEND from @from at @term after @index@@log_term with @n entries. */
static struct raft_msg
append(uint64_t from, uint64_t term, uint64_t index, uint64_t log_term,
    const struct raft_entry *ents, size_t n, uint64_t commit)
{
	struct raft_msg m = msg(RAFT_MSG_APPEND, from, 1, term);

	m.index = index;
	m.log_term = log_term;
	m.entries = ents;
	m.n_entries = n;
	m.commit = commit;
	return m;
}

#define E(i, t, s)                                                             \
	{                                                                      \
		.index = (i), .term = (t), .type = RAFT_ENTRY_NORMAL,          \
		.len = sizeof(s) - 1, .data = (uint8_t *)(s)                   \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* "n times term t" appended to a log string. */
static void
terms(char *buf, size_t size, unsigned n, unsigned term)
{
	size_t len = strlen(buf);

	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(
		    buf + len, size - len, "%s%u", len ? " " : "", term);
}

/* ------------------------------------------------------------------------
 * AppendEntries receiver (Figure 3.1)
 * ------------------------------------------------------------------------ */

/* 1. "Reply false if term < currentTerm": nothing is appended, and an
 * answer, if any, carries the receiver's term so the sender steps down. */
TEST(append_rejects_stale_term)
{
	struct harness *h = h_new(3, NULL);
	static const struct raft_entry ents[] = { E(2, 1, "x") };
	struct raft_msg m = append(2, 4, 1, 1, ents, N(ents), 1);

	set_log(h, 1, 5, "1");
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_TERM(h, 1, 5);
	EXPECT_LAST_INDEX(h, 1, 1);
	EXPECT_LEADER(h, 1, RAFT_NONE);
	H_EQ(h, h_count_queued(h, "1->2 APPEND_RESP"),
	    h_count_queued(h, "1->2 APPEND_RESP term=5"));
	EXPECT_LOG(h, 1, "1");
	h_free(h);
}

/* 2. "Reply false if log doesn't contain an entry at prevLogIndex whose
 * term matches prevLogTerm"; otherwise acknowledge (etcd
 * TestFollowerCheckMsgApp). */
TEST(append_rejects_on_prev_mismatch)
{
	static const struct {
		uint64_t log_term, index;
		bool reject;
		uint64_t ack;
	} cases[] = {
		{ 1, 1, false, 1 }, /* matches the committed entry */
		{ 1, 2, false, 2 }, /* matches an uncommitted one */
		{ 2, 3, false, 3 }, /* matches the last */
		{ 2, 2, true, 2 },  /* 2 is there, with term 1 */
		{ 3, 4, true, 4 },  /* there is no 4 */
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct harness *h = h_new(3, NULL);
		struct raft_msg m =
		    append(2, 2, cases[i].index, cases[i].log_term, NULL, 0, 1);

		h_note(h, "case %zu", i);
		set_log(h, 1, 2, "1 1 2");
		H_EQ(h, h_step(h, 1, &m), 0);
		EXPECT_QUEUED(h,
		    pat("1->2 APPEND_RESP term=2 index=%" PRIu64 " reject=%d",
		        cases[i].ack, cases[i].reject));
		EXPECT_LOG(h, 1, "1 1 2");
		h_free(h);
	}
}

/* 3. "If an existing entry conflicts with a new one (same index but
 * different terms), delete the existing entry and all that follow it";
 * 4. "Append any new entries not already in the log" (etcd
 * TestFollowerAppendEntries). */
TEST(append_deletes_conflicting_suffix)
{
	static const struct raft_entry c0[] = { E(4, 3, "a") };
	static const struct raft_entry c1[] = { E(3, 3, "a"), E(4, 4, "b") };
	static const struct raft_entry c2[] = { E(2, 1, "2@1") };
	static const struct raft_entry c3[] = { E(2, 3, "a") };
	static const struct raft_entry c4[] = { E(2, 1, "2@1"), E(3, 2, "3@2"),
		E(4, 4, "a") };
	static const struct {
		uint64_t index, log_term;
		const struct raft_entry *ents;
		size_t n;
		const char *want;
	} cases[] = {
		{ 3, 2, c0, N(c0), "1 1 2 3" }, /* append after the last */
		{ 2, 1, c1, N(c1), "1 1 3 4" }, /* 3 conflicts: replaced */
		{ 1, 1, c2, N(c2), "1 1 2" },   /* all present: kept */
		{ 1, 1, c3, N(c3), "1 3" },     /* 2 conflicts: 2, 3 go */
		{ 1, 1, c4, N(c4), "1 1 2 4" }, /* present ones, then new */
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct harness *h = h_new(3, NULL);
		struct raft_msg m = append(2, 4, cases[i].index,
		    cases[i].log_term, cases[i].ents, cases[i].n, 1);

		h_note(h, "case %zu", i);
		set_log(h, 1, 2, "1 1 2");
		H_EQ(h, h_step(h, 1, &m), 0);
		process(h);
		EXPECT_LOG(h, 1, cases[i].want);
		EXPECT_QUEUED(h,
		    pat("1->2 APPEND_RESP term=4 index=%" PRIu64 " reject=0",
		        cases[i].index + cases[i].n));
		h_free(h);
	}
}

/* Step 3 deletes only on a conflict: an APPEND delayed in the network and
 * delivered after a later one carries entries the follower already has,
 * and must not cut off the entries that came after them. */
TEST(append_keeps_matching_entries_on_stale_reorder)
{
	struct harness *h = h_new(3, NULL);
	static const struct raft_entry later[] = { E(2, 2, "a"), E(3, 2, "b"),
		E(4, 2, "c") };
	static const struct raft_entry early[] = { E(2, 2, "a") };
	struct raft_msg m;

	set_log(h, 1, 2, "1");
	m = append(2, 2, 1, 1, later, N(later), 1);
	H_EQ(h, h_step(h, 1, &m), 0);
	m = append(2, 2, 1, 1, early, N(early), 1);
	H_EQ(h, h_step(h, 1, &m), 0);
	m = append(2, 2, 1, 1, NULL, 0, 1);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_LOG(h, 1, "1 2 2 2");
	EXPECT_LAST_INDEX(h, 1, 4);
	EXPECT_QUEUED(h, "1->2 APPEND_RESP index=4 reject=0",
	    "1->2 APPEND_RESP index=2 reject=0",
	    "1->2 APPEND_RESP index=1 reject=0");
	h_free(h);
}

/* 5. "If leaderCommit > commitIndex, set commitIndex = min(leaderCommit,
 * index of last new entry)": entries past the ones this APPEND vouches for
 * may be stale and are not committed. */
TEST(append_sets_commit_to_min_of_leader_commit_and_last_new)
{
	struct harness *h = h_new(3, NULL);
	static const struct raft_entry ents[] = { E(2, 1, "2@1") };
	static const struct raft_entry more[] = { E(3, 3, "a"), E(4, 3, "b") };
	struct raft_msg m;

	/* 3@1 and 4@1 come from an old term; the leader vouches for 2 only. */
	set_log(h, 1, 3, "1 1 1 1");
	m = append(2, 3, 1, 1, ents, N(ents), 4);
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_COMMIT(h, 1, 2);
	/* Leader commit below the last new entry: it wins. */
	m = append(2, 3, 2, 1, more, N(more), 3);
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_COMMIT(h, 1, 3);
	/* The commit index never goes back. */
	m = append(2, 3, 1, 1, NULL, 0, 1);
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_COMMIT(h, 1, 3);
	process(h);
	EXPECT_LOG(h, 1, "1 1 3 3");
	EXPECT_APPLIED(h, 1, "2@1,a");
	h_free(h);
}

/* All servers: "If commitIndex > lastApplied: increment lastApplied, apply
 * log[lastApplied] to state machine" (etcd TestFollowerCommitEntry). */
TEST(follower_applies_committed_entries_in_order)
{
	struct harness *h = h_new(3, NULL);
	static const struct raft_entry ents[] = { E(2, 2, "a"), E(3, 2, "b") };
	struct raft_msg m;

	set_log(h, 1, 2, "1");
	m = append(2, 2, 1, 1, ents, N(ents), 2);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_APPLIED(h, 1, "a");
	m = append(2, 2, 3, 2, NULL, 0, 3);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_APPLIED(h, 1, "a,b");
	EXPECT_COMMIT(h, 1, 3);
	h_free(h);
}

/* Committed entries are never deleted (Leader Completeness, §3.6.3): an
 * APPEND that conflicts with a committed entry cannot come from a correct
 * leader, and the follower keeps its log. */
TEST(append_never_truncates_committed_entries)
{
	struct harness *h = h_new(3, NULL);
	static const struct raft_entry ents[] = { E(2, 2, "a"), E(3, 2, "b") };
	static const struct raft_entry bad[] = { E(2, 3, "x") };
	struct raft_msg m;

	set_log(h, 1, 2, "1");
	m = append(2, 2, 1, 1, ents, N(ents), 3);
	H_EQ(h, h_step(h, 1, &m), 0);
	process(h);
	EXPECT_COMMIT(h, 1, 3);
	m = append(3, 3, 1, 1, bad, N(bad), 1);
	(void)h_step(h, 1, &m);
	process(h);
	EXPECT_LOG(h, 1, "1 2 2");
	EXPECT_COMMIT(h, 1, 3);
	EXPECT_APPLIED(h, 1, "a,b");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Leaders: replication and commitment (§3.5, §3.6)
 * ------------------------------------------------------------------------ */

/* §3.5: "The leader appends the command to its log as a new entry, then
 * issues AppendEntries RPCs in parallel to each of the other servers";
 * "the leader includes the index and term of the entry in its log that
 * immediately precedes the new entries." */
TEST(leader_replicates_proposal_with_preceding_entry)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	EXPECT_QUEUED(h,
	    "1->2 APPEND term=2 index=2 log_term=2 commit=2 "
	    "entries=[3@2:x]",
	    "1->3 APPEND term=2 index=2 log_term=2 commit=2 "
	    "entries=[3@2:x]");
	EXPECT_LAST_INDEX(h, 1, 3);
	EXPECT_LOG(h, 1, "1 2 2");
	EXPECT_COMMIT(h, 1, 2);
	h_free(h);
}

/* §3.5: "A log entry is committed once the leader that created the entry
 * has replicated it on a majority of the servers" (etcd
 * TestLeaderAcknowledgeCommit). */
TEST(leader_commits_entry_replicated_on_majority)
{
	static const struct {
		unsigned size;
		const char *acceptors; /* followers that take the entry */
		bool committed;
	} cases[] = {
		{ 1, "", true },
		{ 3, "", false },
		{ 3, "2", true },
		{ 3, "23", true },
		{ 5, "", false },
		{ 5, "2", false },
		{ 5, "23", true },
		{ 5, "234", true },
		{ 5, "2345", true },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct harness *h = h_new(cases[i].size, NULL);

		h_note(h, "case %zu: %u servers, accepted by '%s'", i,
		    cases[i].size, cases[i].acceptors);
		elect(h, 1);
		H_EQ(h, propose(h, 1, "x"), 0);
		process(h);
		for (const char *a = cases[i].acceptors; *a != '\0'; a++)
			deliver_only(h, 1, (uint64_t)(*a - '0'));
		drop(h, 1, 0);
		deliver_only(h, 0, 1);
		EXPECT_COMMIT(h, 1, cases[i].committed ? 3 : 2);
		h_free(h);
	}
}

/* §3.5: "The leader keeps track of the highest index it knows to be
 * committed, and it includes that index in future AppendEntries RPCs ...
 * Once a follower learns that a log entry is committed, it applies the
 * entry to its local state machine (in log order)." */
TEST(leader_tells_followers_the_commit_index)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	deliver(h);
	deliver(h);
	EXPECT_COMMIT(h, 1, 3);
	EXPECT_COMMIT(h, 2, 2);
	deliver(h);
	EXPECT_MSGS(h, "1->2 APPEND term=2 commit=2 entries=[3@2:x]",
	    "1->3 APPEND term=2 commit=2 entries=[3@2:x]",
	    "2->1 APPEND_RESP index=3 reject=0",
	    "3->1 APPEND_RESP index=3 reject=0",
	    "1->2 APPEND commit=3 entries=[]",
	    "1->3 APPEND commit=3 entries=[]");
	for (uint64_t id = 1; id <= 3; id++) {
		EXPECT_COMMIT(h, id, 3);
		EXPECT_APPLIED(h, id, "x");
	}
	h_free(h);
}

/* §3.5: "When the leader commits a log entry it also commits all preceding
 * entries in the leader's log, including entries created by previous
 * leaders" (etcd TestLeaderCommitPrecedingEntries). */
TEST(leader_commits_preceding_entries)
{
	struct harness *h = h_new(3, NULL);

	set_log(h, 1, 2, "1 1 2");
	set_log(h, 2, 2, "1");
	set_log(h, 3, 2, "1");
	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++) {
		EXPECT_LOG(h, id, "1 1 2 3 3");
		EXPECT_COMMIT(h, id, 5);
		EXPECT_APPLIED(h, id, "2@1,3@2,x");
	}
	h_free(h);
}

/*
 * §3.6.2, Figure 3.7: "Raft never commits log entries from previous terms
 * by counting replicas. Only log entries from the leader's current term
 * are committed by counting replicas; once an entry from the current term
 * has been committed in this way, then all prior entries are committed
 * indirectly."
 *
 * Five servers in the figure's state (c): S1 leads term 4 holding 2@2,
 * which S2 has too; S5 (down) holds 2@3 from its short reign in term 3.
 * One entry per APPEND, so S3 gets 2@2 before S1's no-op 3@4: at that point
 * 2@2 is on a majority (S1, S2, S3) yet must not be committed, since S5
 * could still be elected by S2, S3, S4 (d) and overwrite it. Once S1's
 * own-term no-op reaches a majority both commit (e), and S5 can no longer
 * win.
 */
TEST(commit_only_current_term_by_counting)
{
	struct harness *h = h_new(5, H_OPTS(.max_msg_bytes = 1));
	bool majority_has_2 = false;

	set_log(h, 1, 3, "1 2");
	set_log(h, 2, 3, "1 2");
	set_log(h, 3, 3, "1");
	set_log(h, 4, 3, "1");
	set_log(h, 5, 3, "1 3");
	crash(h, 5);
	campaign(h, 1);
	deliver(h);
	deliver(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, 4);
	cut(h, 1, 4);
	h_mark(h);
	for (int round = 0; round < 20 && h_queue_len(h) > 0; round++) {
		deliver(h);
		if (h_count(h, "3->1 APPEND_RESP index=2 reject=0") > 0 &&
		    h_count(h, "3->1 APPEND_RESP index=3 reject=0") == 0) {
			/* (c): 2@2 on S1, S2, S3, and still not committed. */
			majority_has_2 = true;
			EXPECT_COMMIT(h, 1, 1);
		}
	}
	H_ASSERT(h, majority_has_2);
	/* (e): the no-op of term 4 is on a majority: both commit. */
	EXPECT_COMMIT(h, 1, 3);
	EXPECT_LOG(h, 3, "1 2 4");
	/* S5 comes back and campaigns in term 5; S1-S3 refuse a log ending
	 * in term 3, only S4 grants. */
	heal(h);
	restart(h, 5);
	campaign(h, 5);
	campaign(h, 5);
	EXPECT_TERM(h, 5, 5);
	stabilize(h);
	H_ASSERT(h, raft_role(h_raft(h, 5)) != RAFT_LEADER);
	H_EQ(h, h_count(h, "*->5 VOTE_RESP term=5 reject=0"), 1);
	elect(h, 1);
	H_EQ(h, propose(h, 1, "y"), 0);
	tick(h, 1, 1);
	stabilize(h);
	for (uint64_t id = 1; id <= 5; id++)
		EXPECT_APPLIED(h, id, "2@2,y");
	EXPECT_LOGS_MATCH(h, 1, 5);
	h_free(h);
}

/* The same rule at the leader alone (etcd
 * TestLeaderOnlyCommitsLogFromCurrentTerm): an acknowledgement of entries
 * of older terms does not commit them; one covering the leader's no-op
 * does. */
TEST(leader_counts_replicas_only_for_own_term)
{
	static const struct {
		uint64_t ack, commit;
	} cases[] = { { 2, 1 }, { 3, 1 }, { 4, 4 } };

	for (size_t i = 0; i < N(cases); i++) {
		struct harness *h = h_new(3, NULL);
		struct raft_msg m = msg(RAFT_MSG_APPEND_RESP, 2, 1, 3);

		h_note(h, "case %zu: ack %" PRIu64, i, cases[i].ack);
		set_log(h, 1, 2, "1 1 2");
		set_log(h, 2, 2, "1");
		set_log(h, 3, 2, "1");
		crash(h, 3);
		campaign(h, 1);
		deliver(h);
		deliver(h);
		EXPECT_ROLE(h, 1, RAFT_LEADER);
		EXPECT_LAST_INDEX(h, 1, 4); /* the no-op 4@3 */
		drop(h, 0, 0);
		m.index = cases[i].ack;
		H_EQ(h, h_step(h, 1, &m), 0);
		process(h);
		EXPECT_COMMIT(h, 1, cases[i].commit);
		h_free(h);
	}
}

/*
 * §3.5: "the leader handles inconsistencies by forcing the followers' logs
 * to duplicate its own", and a leader never overwrites or deletes entries
 * in its own log (Leader Append-Only, Figure 3.2). The six follower logs
 * of the paper's Figure 7 (etcd TestLeaderSyncFollowerLog): missing
 * entries, extra uncommitted entries, or both.
 */
TEST(leader_repairs_follower_logs)
{
	static const char *const lead = "1 1 1 4 4 5 5 6 6 6";
	static const char *const followers[] = {
		"1 1 1 4 4 5 5 6 6",       /* (a) missing one */
		"1 1 1 4 4",               /* (b) missing many */
		"1 1 1 4 4 5 5 6 6 6 6",   /* (c) one extra */
		"1 1 1 4 4 5 5 6 6 6 7 7", /* (d) extra, later term */
		"1 1 1 4 4 4 4",           /* (e) missing and extra */
		"1 1 1 2 2 2 3 3 3 3 3",   /* (f) long divergent tail */
	};

	for (size_t i = 0; i < N(followers); i++) {
		struct harness *h = h_new(3, NULL);

		h_note(h, "case %zu: follower log %s", i, followers[i]);
		set_log(h, 1, 8, lead);
		set_log(h, 2, 7, followers[i]);
		set_log(h, 3, 7, lead);
		elect(h, 1);
		H_EQ(h, propose(h, 1, "x"), 0);
		stabilize(h);
		EXPECT_LOG(h, 1, "1 1 1 4 4 5 5 6 6 6 9 9");
		EXPECT_LOGS_MATCH(h, 1, 2);
		EXPECT_APPLIED(h, 2, "2@1,3@1,4@4,5@4,6@5,7@5,8@6,9@6,10@6,x");
		h_free(h);
	}
}

/* A rejection that arrives late, for a probe the leader has long since
 * moved past, must not send the leader back: it matches the follower
 * further on already. */
TEST(leader_ignores_stale_append_rejection)
{
	struct harness *h = h_new(3, NULL);
	struct raft_msg m = msg(RAFT_MSG_APPEND_RESP, 2, 1, 2);
	struct raft_status st;

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	m.reject = true;
	m.index = 1;
	m.hint = 0;
	m.log_term = 0;
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_NOTHING_QUEUED(h);
	raft_status(h_raft(h, 1), &st);
	for (uint32_t i = 0; i < st.n_progress; i++) {
		if (st.progress[i].id != 2)
			continue;
		H_EQ(h, st.progress[i].match, 3);
		T_STREQ(st.progress[i].state, "replicate");
	}
	H_EQ(h, propose(h, 1, "b"), 0);
	EXPECT_QUEUED(h, "1->2 APPEND index=3 entries=[4@2:b]",
	    "1->3 APPEND index=3 entries=[4@2:b]");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Pipelining, batching and flow control (§10.2)
 * ------------------------------------------------------------------------ */

/* §10.2.2: "the leader can send many AppendEntries requests without
 * waiting for responses" once it knows where a follower stands. */
TEST(pipeline_sends_appends_before_responses)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	process(h);
	H_EQ(h, propose(h, 1, "b"), 0);
	process(h);
	H_EQ(h, propose(h, 1, "c"), 0);
	EXPECT_QUEUED(h, "1->2 APPEND index=2 entries=[3@2:a]",
	    "1->3 APPEND index=2 entries=[3@2:a]",
	    "1->2 APPEND index=3 entries=[4@2:b]",
	    "1->3 APPEND index=3 entries=[4@2:b]",
	    "1->2 APPEND index=4 entries=[5@2:c]",
	    "1->3 APPEND index=4 entries=[5@2:c]");
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_APPLIED(h, id, "a,b,c");
	h_free(h);
}

/* The pipeline is bounded: at most max_inflight APPENDs per follower are
 * unacknowledged; acknowledgements open the window again. */
TEST(pipeline_bounded_by_max_inflight)
{
	struct harness *h = h_new(3, H_OPTS(.max_inflight = 2));
	const char *data[] = { "a", "b", "c", "d", "e" };

	elect(h, 1);
	for (size_t i = 0; i < N(data); i++) {
		H_EQ(h, propose(h, 1, data[i]), 0);
		process(h);
	}
	H_EQ(h, h_count_queued(h, "1->2 APPEND"), 2);
	H_EQ(h, h_count_queued(h, "1->3 APPEND"), 2);
	for (int i = 0; i < 50 && h_queue_len(h) > 0; i++) {
		H_ASSERT(h,
		    h_count_queued(h, "1->2 APPEND") -
		            h_count_queued(h, "1->2 APPEND entries=[]") <=
		        2);
		deliver(h);
	}
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_APPLIED(h, id, "a,b,c,d,e");
	h_free(h);
}

/* Many more proposals than the window holds, acknowledged a few at a
 * time: the window fills, drains and wraps around without losing or
 * repeating an entry. */
TEST(pipeline_window_wraps_around)
{
	struct harness *h = h_new(3, H_OPTS(.max_inflight = 3));
	char buf[8], want[512] = "";
	size_t len = 0;

	elect(h, 1);
	for (int i = 0; i < 40; i++) {
		snprintf(buf, sizeof(buf), "p%d", i);
		H_EQ(h, propose(h, 1, buf), 0);
		process(h);
		len += (size_t)snprintf(
		    want + len, sizeof(want) - len, "%s%s", i ? "," : "", buf);
		if (i % 4 == 3)
			deliver(h);
		/* Empty APPENDs (commit updates) take no window slot. */
		H_ASSERT(h,
		    h_count_queued(h, "1->2 APPEND") -
		            h_count_queued(h, "1->2 APPEND entries=[]") <=
		        3);
	}
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_APPLIED(h, id, want);
	h_free(h);
}

/* §10.2.1 batching: proposals that reach the leader in one batch leave in
 * one APPEND per follower. */
TEST(batching_proposals_in_one_batch_share_one_append)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	H_EQ(h, propose(h, 1, "b"), 0);
	H_EQ(h, propose(h, 1, "c"), 0);
	EXPECT_QUEUED(h, "1->2 APPEND index=2 entries=[3@2:a,4@2:b,5@2:c]",
	    "1->3 APPEND index=2 entries=[3@2:a,4@2:b,5@2:c]");
	stabilize(h);
	EXPECT_APPLIED(h, 3, "a,b,c");
	h_free(h);
}

/* Proposals that pile up while a follower's window is full go out
 * together when it opens. */
TEST(batching_while_window_full)
{
	struct harness *h = h_new(3, H_OPTS(.max_inflight = 1));

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	process(h);
	H_EQ(h, propose(h, 1, "b"), 0);
	process(h);
	H_EQ(h, propose(h, 1, "c"), 0);
	process(h);
	EXPECT_QUEUED(
	    h, "1->2 APPEND entries=[3@2:a]", "1->3 APPEND entries=[3@2:a]");
	deliver(h);
	deliver(h);
	H_EQ(h, h_count_queued(h, "1->2 APPEND entries=[4@2:b,5@2:c]"), 1);
	H_EQ(h, h_count_queued(h, "1->3 APPEND entries=[4@2:b,5@2:c]"), 1);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "a,b,c");
	h_free(h);
}

/* Until a follower's match is known (after an election), the leader
 * probes: one APPEND at a time, however many proposals arrive. */
TEST(flow_control_probe_sends_one_append_at_a_time)
{
	struct harness *h = h_new(3, NULL);

	campaign(h, 1);
	deliver(h);
	deliver(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	process(h);
	H_EQ(h, propose(h, 1, "a"), 0);
	process(h);
	H_EQ(h, propose(h, 1, "b"), 0);
	process(h);
	H_EQ(h, h_count_queued(h, "1->2 APPEND"), 1);
	H_EQ(h, h_count_queued(h, "1->3 APPEND"), 1);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "a,b");
	h_free(h);
}

/* Flow control by size: an APPEND carries at most max_msg_bytes of
 * payload (a single larger entry still goes, alone). A follower that was
 * away catches up in several bounded APPENDs. */
TEST(flow_control_max_msg_bytes_splits_appends)
{
	struct harness *h = h_new(3, H_OPTS(.max_msg_bytes = 100));
	char payload[41];
	const struct h_moved *mv;
	size_t n, appends = 0;

	elect(h, 1);
	isolate(h, 3);
	for (int i = 0; i < 10; i++) {
		memset(payload, 'a' + i, 40);
		payload[40] = '\0';
		H_EQ(h, propose(h, 1, payload), 0);
		process(h);
	}
	stabilize(h);
	EXPECT_COMMIT(h, 1, 12);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	mv = h_moved(h, &n);
	for (size_t i = 0; i < n; i++) {
		if (mv[i].type != RAFT_MSG_APPEND || mv[i].to != 3 ||
		    mv[i].n_entries == 0)
			continue;
		appends++;
		if (mv[i].n_entries > 1 && mv[i].bytes > 100)
			H_FAIL(h, "APPEND of %zu entries, %zu bytes > 100",
			    mv[i].n_entries, mv[i].bytes);
	}
	H_ASSERT(h, appends >= 5);
	EXPECT_COMMIT(h, 3, 12);
	EXPECT_LOGS_MATCH(h, 1, 3);
	h_free(h);
}

/* Flow control by memory: with max_uncommitted_bytes set, a leader that
 * cannot commit refuses proposals past the limit with DSC_EBUSY, and takes
 * them again once the backlog commits. */
TEST(flow_control_uncommitted_limit_refuses_proposals)
{
	struct harness *h = h_new(3, H_OPTS(.max_uncommitted_bytes = 100));
	char payload[61];

	memset(payload, 'p', 60);
	payload[60] = '\0';
	elect(h, 1);
	isolate(h, 1);
	H_EQ(h, propose(h, 1, payload), 0);
	H_EQ(h, propose(h, 1, payload), DSC_EBUSY);
	process(h);
	drop(h, 0, 0);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 3);
	H_EQ(h, propose(h, 1, payload), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 2, 4);
	h_free(h);
}

/* The limit bounds the backlog, not the entry: with nothing uncommitted
 * one entry larger than the limit is still taken (etcd: "always allow
 * the first entry"), or a client retrying on DSC_EBUSY would wait for
 * ever. */
TEST(flow_control_uncommitted_limit_admits_one_large_entry)
{
	struct harness *h = h_new(3, H_OPTS(.max_uncommitted_bytes = 100));
	char payload[151];

	memset(payload, 'q', 150);
	payload[150] = '\0';
	elect(h, 1);
	H_EQ(h, propose(h, 1, payload), 0);
	H_EQ(h, propose(h, 1, "small"), DSC_EBUSY);
	stabilize(h);
	EXPECT_COMMIT(h, 2, 3);
	H_EQ(h, propose(h, 1, "small"), 0);
	h_free(h);
}

/* An entry of exactly RAFT_MAX_ENTRY_SIZE is taken and replicated, though
 * it is larger than one APPEND's byte budget (it goes alone). */
TEST(proposal_of_max_entry_size_replicates)
{
	struct harness *h = h_new(3, NULL);
	size_t len = RAFT_MAX_ENTRY_SIZE;
	char *big = malloc(len);

	H_ASSERT(h, big != NULL);
	memset(big, 'z', len);
	elect(h, 1);
	H_EQ(h, propose_n(h, 1, big, len, NULL), 0);
	free(big);
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_COMMIT(h, id, 3);
	h_free(h);
}

TEST(proposal_larger_than_max_entry_refused)
{
	struct harness *h = h_new(3, NULL);
	size_t len = RAFT_MAX_ENTRY_SIZE + 1;
	char *big = calloc(1, len);

	H_ASSERT(h, big != NULL);
	elect(h, 1);
	H_EQ(h, propose_n(h, 1, big, len, NULL), DSC_ETOOBIG);
	free(big);
	EXPECT_LAST_INDEX(h, 1, 2);
	h_free(h);
}

/* Only the leader takes proposals (§3.5: "the leader accepts log entries
 * from clients"); the others say so and the client retries elsewhere. */
TEST(proposal_refused_by_non_leader)
{
	struct harness *h = h_new(3, NULL);

	H_EQ(h, propose(h, 1, "x"), DSC_ENOTLEADER);
	campaign(h, 1);
	H_EQ(h, propose(h, 1, "x"), DSC_ENOTLEADER); /* candidate */
	stabilize(h);
	H_EQ(h, propose(h, 2, "x"), DSC_ENOTLEADER); /* follower */
	H_EQ(h, propose(h, 1, "x"), 0);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Fast backtracking (§5.3 footnote, etcd)
 * ------------------------------------------------------------------------ */

/*
 * "If desired, the protocol can be optimized to reduce the number of
 * rejected AppendEntries RPCs": with the conflicting term and the first
 * index it stores for that term, the leader skips a whole term per round
 * trip. A follower with a 60-entry divergent tail in two terms, a leader
 * with five terms after the common prefix: a handful of rejections, not
 * one per entry.
 */
TEST(fast_backtracking_fixes_divergent_tail_in_few_round_trips)
{
	struct harness *h = h_new(3, NULL);
	char lead[512] = "", follower[512] = "";
	size_t rejects;

	terms(lead, sizeof(lead), 5, 1);
	strcpy(follower, lead);
	for (unsigned t = 4; t <= 8; t++)
		terms(lead, sizeof(lead), 10, t); /* 6..55 */
	terms(follower, sizeof(follower), 30, 2); /* 6..35 */
	terms(follower, sizeof(follower), 30, 3); /* 36..65 */
	set_log(h, 1, 8, lead);
	set_log(h, 2, 3, follower);
	set_log(h, 3, 8, lead);
	campaign(h, 1);
	stabilize(h);
	rejects = h_count(h, "2->1 APPEND_RESP reject=1");
	h_note(h, "rejections: %zu", rejects);
	H_ASSERT(h, rejects >= 1 && rejects <= 3);
	EXPECT_LOGS_MATCH(h, 1, 2);
	EXPECT_COMMIT(h, 2, 56);
	h_free(h);
}

/* The same from the other side: a leader whose log has many terms the
 * follower never saw. */
TEST(fast_backtracking_over_many_leader_terms)
{
	struct harness *h = h_new(3, NULL);
	char lead[1024] = "", follower[512] = "";
	size_t rejects;

	terms(lead, sizeof(lead), 5, 1);
	strcpy(follower, lead);
	terms(follower, sizeof(follower), 40, 2);
	for (unsigned t = 3; t <= 20; t++)
		terms(lead, sizeof(lead), 3, t); /* 6..59 */
	set_log(h, 1, 20, lead);
	set_log(h, 2, 2, follower);
	set_log(h, 3, 20, lead);
	campaign(h, 1);
	stabilize(h);
	rejects = h_count(h, "2->1 APPEND_RESP reject=1");
	h_note(h, "rejections: %zu", rejects);
	H_ASSERT(h, rejects >= 1 && rejects <= 3);
	EXPECT_LOGS_MATCH(h, 1, 2);
	h_free(h);
}

/* A follower that is merely behind says where its log ends: one
 * rejection, then the missing entries. */
TEST(lagging_follower_found_in_one_round_trip)
{
	struct harness *h = h_new(3, NULL);
	char buf[8];

	elect(h, 1);
	crash(h, 3);
	for (int i = 0; i < 20; i++) {
		snprintf(buf, sizeof(buf), "v%d", i);
		H_EQ(h, propose(h, 1, buf), 0);
		stabilize(h);
	}
	restart(h, 3);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_ASSERT(h, h_count(h, "3->1 APPEND_RESP reject=1") <= 1);
	EXPECT_LOGS_MATCH(h, 1, 3);
	EXPECT_COMMIT(h, 3, 22);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Single-server clusters and the Ready contract (§10.2.1, raft.h)
 * ------------------------------------------------------------------------ */

/* §10.2.1: the leader counts itself toward a commit only for entries it
 * has saved. Alone in its cluster, its own save is the whole quorum: an
 * entry is never handed out to apply in the ready that saves it, and is
 * in the one after raft_advance. */
TEST(single_node_commits_on_own_save_only_after_advance)
{
	struct raft *r = h_core_new(1, 1, NULL);
	struct raft_ready rd;
	uint64_t index = 0;

	T_EQ(raft_campaign(r), 0);
	T_EQ(raft_role(r), RAFT_LEADER);
	T_ASSERT(raft_ready(r, &rd));
	T_ASSERT(rd.n_entries > 0);
	T_EQ(rd.entries[rd.n_entries - 1].type, RAFT_ENTRY_NOOP);
	for (size_t i = 0; i < rd.n_committed; i++)
		T_ASSERT(
		    rd.committed[i].index < rd.entries[rd.n_entries - 1].index);
	T_ASSERT(rd.hard.commit < rd.entries[rd.n_entries - 1].index);
	raft_advance(r, &rd);
	T_ASSERT(raft_ready(r, &rd));
	T_EQ(rd.n_entries, 0);
	T_ASSERT(rd.n_committed > 0);
	T_EQ(rd.committed[rd.n_committed - 1].type, RAFT_ENTRY_NOOP);
	raft_advance(r, &rd);
	h_core_drain(r);

	T_EQ(raft_propose(r, "x", 1, &index, NULL), 0);
	T_ASSERT(raft_ready(r, &rd));
	T_EQ(rd.n_entries, 1);
	T_EQ(rd.entries[0].index, index);
	T_EQ(rd.n_committed, 0);
	raft_advance(r, &rd);
	T_EQ(raft_commit_index(r), index);
	T_ASSERT(raft_ready(r, &rd));
	T_EQ(rd.n_committed, 1);
	T_EQ(rd.committed[0].index, index);
	T_MEMEQ(rd.committed[0].data, "x", 1);
	raft_advance(r, &rd);
	T_ASSERT(!raft_ready(r, &rd));
	raft_free(r);
}

TEST(single_node_cluster_serves_alone)
{
	struct harness *h = h_new(1, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	H_EQ(h, propose(h, 1, "b"), 0);
	process(h);
	EXPECT_APPLIED(h, 1, "a,b");
	EXPECT_NOTHING_QUEUED(h);
	h_free(h);
}

/* Figure 3.1: votedFor is persistent state, "updated on stable storage
 * before responding to RPCs". A granted vote and the hard state that
 * records it are in the same ready, so the driver saves first. */
TEST(ready_vote_response_comes_with_saved_vote)
{
	struct raft *r = h_core_new(2, 3, NULL);
	struct raft_msg m = msg(RAFT_MSG_VOTE, 1, 2, 2);
	struct raft_ready rd;

	h_core_drain(r);
	m.index = 1;
	m.log_term = 1;
	T_EQ(raft_step(r, &m), 0);
	T_ASSERT(raft_ready(r, &rd));
	T_EQ(rd.n_msgs, 1);
	T_EQ(rd.msgs[0].type, RAFT_MSG_VOTE_RESP);
	T_ASSERT(!rd.msgs[0].reject);
	T_ASSERT(rd.hard_changed);
	T_EQ(rd.hard.term, 2);
	T_EQ(rd.hard.vote, 1);
	T_ASSERT(rd.must_sync);
	raft_advance(r, &rd);
	T_ASSERT(!raft_ready(r, &rd));
	raft_free(r);
}

/* An acknowledgement of entries leaves in the ready that saves them. */
TEST(ready_append_ack_comes_with_saved_entries)
{
	struct raft *r = h_core_new(2, 3, NULL);
	static const struct raft_entry ents[] = { E(2, 2, "a"), E(3, 2, "b") };
	struct raft_msg m = append(1, 2, 1, 1, ents, N(ents), 1);
	struct raft_ready rd;

	m.to = 2;
	h_core_drain(r);
	T_EQ(raft_step(r, &m), 0);
	T_ASSERT(raft_ready(r, &rd));
	T_EQ(rd.n_entries, 2);
	T_EQ(rd.entries[1].index, 3);
	T_ASSERT(rd.must_sync);
	T_EQ(rd.n_msgs, 1);
	T_EQ(rd.msgs[0].type, RAFT_MSG_APPEND_RESP);
	T_EQ(rd.msgs[0].index, 3);
	T_EQ(rd.n_committed, 0);
	raft_advance(r, &rd);
	T_ASSERT(!raft_ready(r, &rd));
	raft_free(r);
}

T_MAIN()

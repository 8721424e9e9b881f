/*
 * test_raft_transfer.c - leadership transfer (§3.10).
 *
 * "1. The prior leader stops accepting new client requests. 2. The prior
 * leader fully updates the target server's log to match its own ... 3. The
 * prior leader sends a TimeoutNow request to the target server. This
 * request has the same effect as the target server's election timer
 * firing." And: "if the transfer does not complete within an election
 * timeout, the prior leader aborts the transfer and resumes accepting
 * client requests." The target's vote requests say they come from a
 * transfer, so voters that still hear from the old leader grant them
 * despite the lease (§4.2.3).
 */
#include <inttypes.h>

#include "err.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10

static uint64_t
transferee(struct harness *h, uint64_t id)
{
	struct raft_status st;

	raft_status(h_raft(h, id), &st);
	return st.transferee;
}

/* Steps 2-3 with an up-to-date target: TimeoutNow goes out at once, the
 * target campaigns in the next term, skipping pre-vote, and its vote
 * requests override the voters' lease. */
TEST(transfer_succeeds)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	H_EQ(h, transfer(h, 1, 2), 0);
	EXPECT_QUEUED(h, pat("1->2 TIMEOUT_NOW term=%" PRIu64, term));
	stabilize(h);
	H_EQ(h, h_count(h, "2->* PREVOTE"), 0);
	H_EQ(h,
	    h_count(h, pat("2->1 VOTE term=%" PRIu64 " transfer=1", term + 1)),
	    1);
	H_EQ(h,
	    h_count(h, pat("2->3 VOTE term=%" PRIu64 " transfer=1", term + 1)),
	    1);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_TERM(h, 2, term + 1);
	H_EQ(h, propose(h, 2, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 1, "x");
	h_free(h);
}

/* Step 2: a target that is behind is brought up to date before it is told
 * to campaign, so it can win (§3.6.1) and loses nothing. */
TEST(transfer_brings_target_up_to_date_first)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	cut(h, 1, 3);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	EXPECT_LAST_INDEX(h, 3, 2);
	heal(h);
	h_mark(h);
	H_EQ(h, transfer(h, 1, 3), 0);
	stabilize(h);
	H_ASSERT(h, h_find(h, "1->3 TIMEOUT_NOW") >= 0);
	H_ASSERT(h,
	    h_find(h, "3->1 APPEND_RESP index=3 reject=0") <
	        h_find(h, "1->3 TIMEOUT_NOW"));
	EXPECT_ROLE(h, 3, RAFT_LEADER);
	H_EQ(h, propose(h, 3, "b"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 3, "a,b");
	EXPECT_APPLIED(h, 1, "a,b");
	h_free(h);
}

/* Step 1: "The prior leader stops accepting new client requests" while the
 * transfer is under way; configuration changes wait too. */
TEST(proposals_refused_during_transfer)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	crash(h, 3);
	H_EQ(h, transfer(h, 1, 3), 0);
	H_EQ(h, transferee(h, 1), 3);
	H_EQ(h, propose(h, 1, "x"), DSC_EBUSY);
	H_EQ(h, add_learner(h, 1, 4), DSC_EBUSY);
	H_EQ(h, transfer(h, 1, 2), DSC_EBUSY);
	EXPECT_LAST_INDEX(h, 1, 2);
	h_free(h);
}

/* "If the transfer does not complete within an election timeout, the prior
 * leader aborts the transfer and resumes accepting client requests." */
TEST(transfer_aborted_after_election_timeout)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	crash(h, 3);
	H_EQ(h, transfer(h, 1, 3), 0);
	tick(h, 1, ET - 1);
	H_EQ(h, transferee(h, 1), 3);
	tick(h, 1, 1);
	H_EQ(h, transferee(h, 1), RAFT_NONE);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, term);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	h_free(h);
}

/* A leader that loses its leadership during a transfer (here: the target
 * won) has no transfer left to finish. */
TEST(transfer_cleared_when_leadership_changes)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, transfer(h, 1, 2), 0);
	stabilize(h);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	H_EQ(h, transferee(h, 2), RAFT_NONE);
	H_EQ(h, transfer(h, 2, 1), 0);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	h_free(h);
}

/* Transfers go from the leader to another voter. */
TEST(transfer_invalid_targets_refused)
{
	struct harness *h = h_new(3, H_OPTS(.learners = 1));

	elect(h, 1);
	H_EQ(h, transfer(h, 1, 1), DSC_EINVAL); /* itself */
	H_EQ(h, transfer(h, 1, 9), DSC_EINVAL); /* unknown */
	H_EQ(h, transfer(h, 1, 4), DSC_EINVAL); /* a learner */
	H_EQ(h, transfer(h, 2, 3), DSC_ENOTLEADER);
	H_EQ(h, transferee(h, 1), RAFT_NONE);
	H_EQ(h, propose(h, 1, "x"), 0);
	h_free(h);
}

/* TimeoutNow reaching a server that is not a voter (a learner, say)
 * starts nothing. */
TEST(timeout_now_ignored_by_learner)
{
	struct harness *h = h_new(3, H_OPTS(.learners = 1));
	struct raft_msg m = { 0 };
	uint64_t term;

	elect(h, 1);
	term = raft_term(h_raft(h, 4));
	m.type = RAFT_MSG_TIMEOUT_NOW;
	m.from = 1;
	m.to = 4;
	m.term = term;
	H_EQ(h, h_step(h, 4, &m), 0);
	EXPECT_ROLE(h, 4, RAFT_FOLLOWER);
	EXPECT_TERM(h, 4, term);
	h_free(h);
}

/* A TimeoutNow from a leader of an older term is stale: nothing starts. */
TEST(timeout_now_from_stale_leader_ignored)
{
	struct harness *h = h_new(3, NULL);
	struct raft_msg m = { 0 };
	uint64_t term;

	elect(h, 1);
	elect(h, 2);
	term = raft_term(h_raft(h, 3));
	m.type = RAFT_MSG_TIMEOUT_NOW;
	m.from = 1;
	m.to = 3;
	m.term = term - 1;
	H_EQ(h, h_step(h, 3, &m), 0);
	EXPECT_ROLE(h, 3, RAFT_FOLLOWER);
	EXPECT_TERM(h, 3, term);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	h_free(h);
}

T_MAIN()

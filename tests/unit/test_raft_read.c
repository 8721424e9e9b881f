/*
 * test_raft_read.c - linearizable reads by ReadIndex (§6.4).
 *
 * The dissertation's four steps: (1) the leader needs an entry of its own
 * term committed, so its commit index is the cluster's; it records the
 * commit index as the read index; (2) it confirms it is still the leader
 * by a round of heartbeats answered by a majority; (3) it waits until the
 * state machine has applied the read index; (4) it answers. Steps 1, 2 and
 * the batching of many reads on one round are the core's; step 3 is the
 * driver's, which the harness records as it goes. Followers read through
 * the leader (§6.4: "followers could also help offload the processing of
 * read-only queries"), and a deposed leader's reads fail rather than return
 * stale data. A fresh cluster's first leader (term 2) has its no-op at 2@2.
 */
#include <inttypes.h>

#include "err.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10

/* ------------------------------------------------------------------------
 * On the leader
 * ------------------------------------------------------------------------ */

/* Step 1: "If the leader has not yet marked an entry from its current term
 * committed, it waits until it has done so." A read asked before the
 * no-op commits is answered after it, with the no-op's index. */
TEST(read_index_waits_for_own_term_commit)
{
	struct harness *h = h_new(3, NULL);

	campaign(h, 1);
	deliver(h);
	deliver(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_COMMIT(h, 1, 1);
	H_EQ(h, read_index(h, 1, 7), 0);
	process(h);
	EXPECT_NO_READ(h, 1, 7);
	H_EQ(h, h_count_queued(h, "1->2 HEARTBEAT"), 0);
	stabilize(h);
	EXPECT_READ_OK(h, 1, 7, 2);
	h_free(h);
}

/* Steps 1-2: the read index is the commit index when the read arrives,
 * whatever is appended after; it is handed out only after a majority has
 * answered the heartbeat round that followed it. */
TEST(read_index_is_commit_index_confirmed_by_heartbeat_round)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 3);
	H_EQ(h, propose(h, 1, "y"), 0); /* 4, not committed yet */
	H_EQ(h, read_index(h, 1, 9), 0);
	process(h);
	EXPECT_NO_READ(h, 1, 9);
	H_EQ(h, h_count_queued(h, "1->2 HEARTBEAT"), 1);
	H_EQ(h, h_count_queued(h, "1->3 HEARTBEAT"), 1);
	deliver(h);
	EXPECT_NO_READ(h, 1, 9);
	deliver(h);
	EXPECT_READ_OK(h, 1, 9, 3);
	h_free(h);
}

/* §6.4: "the leader could batch reads: it could confirm leadership once
 * for many reads" - reads of one batch share one heartbeat per follower. */
TEST(read_index_one_heartbeat_round_confirms_batch)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, read_index(h, 1, 1), 0);
	H_EQ(h, read_index(h, 1, 2), 0);
	H_EQ(h, read_index(h, 1, 3), 0);
	EXPECT_QUEUED(h, "1->2 HEARTBEAT term=2 commit=2",
	    "1->3 HEARTBEAT term=2 commit=2");
	stabilize(h);
	EXPECT_MSGS(h, "1->2 HEARTBEAT", "1->3 HEARTBEAT",
	    "2->1 HEARTBEAT_RESP", "3->1 HEARTBEAT_RESP");
	for (uint64_t ctx = 1; ctx <= 3; ctx++)
		EXPECT_READ_OK(h, 1, ctx, 2);
	h_free(h);
}

/* Step 2 needs a majority, not everyone: one follower down is fine. */
TEST(read_index_confirmed_by_majority_not_all)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	crash(h, 3);
	H_EQ(h, read_index(h, 1, 5), 0);
	stabilize(h);
	EXPECT_READ_OK(h, 1, 5, 2);
	h_free(h);
}

/* An answer to a heartbeat sent before a read arrived says nothing about
 * leadership after it: it confirms the older read only. */
TEST(read_index_old_round_does_not_confirm_new_read)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, read_index(h, 1, 1), 0);
	process(h);
	deliver_only(h, 1, 0);           /* round 1 out; answers queued */
	H_EQ(h, read_index(h, 1, 2), 0); /* the next batch: round 2 */
	process(h);
	deliver_only(h, 2, 1);
	deliver_only(h, 3, 1);
	EXPECT_MSGS(h, "1->2 HEARTBEAT context=1", "1->3 HEARTBEAT context=1",
	    "2->1 HEARTBEAT_RESP context=1", "3->1 HEARTBEAT_RESP context=1");
	EXPECT_READ_OK(h, 1, 1, 2);
	EXPECT_NO_READ(h, 1, 2);
	stabilize(h);
	EXPECT_READ_OK(h, 1, 2, 2);
	h_free(h);
}

/* A leader alone is its own majority: the read is answered at once. */
TEST(read_index_single_node)
{
	struct harness *h = h_new(1, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	process(h);
	H_EQ(h, read_index(h, 1, 4), 0);
	process(h);
	EXPECT_READ_OK(h, 1, 4, 3);
	h_free(h);
}

/* Alone, too, a new leader waits for its no-op before it reads. */
TEST(read_index_single_node_waits_for_noop)
{
	struct harness *h = h_new(1, NULL);

	campaign(h, 1);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	H_EQ(h, read_index(h, 1, 8), 0);
	EXPECT_NO_READ(h, 1, 8);
	process(h);
	EXPECT_READ_OK(h, 1, 8, 2);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Deposed leaders (§6.4, step 2)
 * ------------------------------------------------------------------------ */

/* §6.4 step 2: without the heartbeat round "a leader that has been deposed
 * could serve stale data". A partitioned leader's read is never answered
 * ok while a new leader commits writes; once it learns the newer term the
 * read fails, to be retried elsewhere. */
TEST(read_index_deposed_leader_fails)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	isolate(h, 1);
	H_EQ(h, read_index(h, 1, 4), 0);
	tick(h, 1, 3 * ET);
	drop(h, 0, 0);
	EXPECT_NO_READ(h, 1, 4);
	campaign(h, 2);
	stabilize(h);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	H_EQ(h, propose(h, 2, "new"), 0);
	stabilize(h);
	EXPECT_NO_READ(h, 1, 4);
	EXPECT_ROLE(h, 1, RAFT_LEADER); /* it does not know yet */
	heal(h);
	tick(h, 2, 1);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_READ_FAILED(h, 1, 4);
	EXPECT_APPLIED(h, 1, "new");
	h_free(h);
}

/* With check-quorum the isolated leader steps down by itself (§6.2), and
 * its waiting reads fail with it. */
TEST(read_index_fails_when_leader_steps_down)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));

	elect(h, 1);
	isolate(h, 1);
	H_EQ(h, read_index(h, 1, 4), 0);
	tick_until_role(h, 1, RAFT_FOLLOWER, 2 * ET + 1);
	EXPECT_READ_FAILED(h, 1, 4);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * On followers
 * ------------------------------------------------------------------------ */

/* §6.4: a follower "issues a request to the leader ... to learn the
 * current commit index"; the leader runs steps 1-2 for it and the follower
 * waits until it has applied that index. */
TEST(read_index_on_follower_goes_via_leader)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	h_mark(h);
	H_EQ(h, read_index(h, 2, 5), 0);
	stabilize(h);
	EXPECT_MSGS(h, "2->1 READ_INDEX context=5", "1->2 HEARTBEAT",
	    "1->3 HEARTBEAT", "2->1 HEARTBEAT_RESP", "3->1 HEARTBEAT_RESP",
	    "1->2 READ_INDEX_RESP context=5 index=3 reject=0");
	EXPECT_READ_OK(h, 2, 5, 3);
	EXPECT_APPLIED(h, 2, "x");
	h_free(h);
}

/* A follower that knows no leader cannot read. */
TEST(read_index_follower_without_leader_fails)
{
	struct harness *h = h_new(3, NULL);

	H_EQ(h, read_index(h, 2, 1), DSC_ENOLEADER);
	h_free(h);
}

/* A follower whose idea of the leader is out of date asks a server that is
 * no longer leader; the answer is a refusal, not an index. */
TEST(read_index_via_former_leader_fails)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));

	elect(h, 1);
	isolate(h, 1);
	tick_until_role(h, 1, RAFT_FOLLOWER, 2 * ET + 1);
	drop(h, 0, 0);
	heal(h);
	h_mark(h);
	EXPECT_LEADER(h, 2, 1);
	H_EQ(h, read_index(h, 2, 6), 0);
	stabilize(h);
	EXPECT_MSGS(h, "2->1 READ_INDEX context=6",
	    "1->2 READ_INDEX_RESP context=6 reject=1");
	EXPECT_READ_FAILED(h, 2, 6);
	h_free(h);
}

T_MAIN()

/*
 * test_raft_snapshot.c - log compaction and InstallSnapshot (chapter 5).
 *
 * §5.1: "each server takes snapshots independently, covering just the
 * committed entries in its log"; the log before the snapshot is dropped.
 * §5.3: "the leader must occasionally send snapshots to followers that
 * lag behind" when the entries they need are gone; the follower replaces
 * its log and state machine with it. A restarted server begins from its
 * latest snapshot. The harness's snapshot is its state machine: the
 * applied payloads, restored verbatim on install and on restart.
 */
#include <inttypes.h>

#include "err.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10

/* Leader 1, "a".."e" applied everywhere at 3..7, 3 cut off if @lag. */
static struct harness *
five_entries(bool lag)
{
	struct harness *h = h_new(3, NULL);
	const char *data[] = { "a", "b", "c", "d", "e" };

	elect(h, 1);
	if (lag)
		isolate(h, 3);
	for (int i = 0; i < 5; i++) {
		T_EQ(propose(h, 1, data[i]), 0);
		process(h);
	}
	stabilize(h);
	if (lag)
		drop(h, 0, 0);
	EXPECT_COMMIT(h, 1, 7);
	return h;
}

/* ------------------------------------------------------------------------
 * Compaction (§5.1)
 * ------------------------------------------------------------------------ */

/* §5.1: "Once a server completes writing a snapshot, it may delete all log
 * entries up through the last included index." The cluster goes on. */
TEST(compaction_drops_log_prefix)
{
	struct harness *h = five_entries(false);
	struct raft_status st;

	H_EQ(h, compact(h, 1, 5), 0);
	raft_status(h_raft(h, 1), &st);
	H_EQ(h, st.snapshot_index, 5);
	H_EQ(h, raft_first_index(h_raft(h, 1)), 6);
	EXPECT_LOG(h, 1, "5: 2 2 2");
	H_EQ(h, propose(h, 1, "f"), 0);
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_APPLIED(h, id, "a,b,c,d,e,f");
	h_free(h);
}

/* §5.1: snapshots cover committed, applied entries only; and a snapshot
 * never goes back. */
TEST(snapshot_refused_past_applied_or_before_current)
{
	struct harness *h = five_entries(false);

	H_EQ(h, compact(h, 2, 8), DSC_EINVAL); /* nothing at 8 */
	H_EQ(h, propose(h, 1, "f"), 0);
	process(h);
	deliver_only(h, 1, 2);
	EXPECT_LAST_INDEX(h, 2, 8);
	H_EQ(h, compact(h, 2, 8), DSC_EINVAL); /* 8 is not applied */
	H_EQ(h, compact(h, 2, 6), 0);
	H_EQ(h, compact(h, 2, 4), DSC_EINVAL); /* older than the current */
	stabilize(h);
	EXPECT_APPLIED(h, 2, "a,b,c,d,e,f");
	h_free(h);
}

/* The core may keep entries behind the snapshot (trailing), so a follower
 * slightly behind gets entries rather than a whole snapshot. */
TEST(snapshot_keeps_trailing_entries_for_slow_followers)
{
	struct harness *h = five_entries(true);

	H_EQ(h, raft_snapshot(h_raft(h, 1), 7, "", 0, 5), 0);
	H_EQ(h, raft_first_index(h_raft(h, 1)), 3);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->3 SNAPSHOT"), 0);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * InstallSnapshot (§5.3)
 * ------------------------------------------------------------------------ */

/* §5.3: when "the leader has already discarded the next log entry that it
 * needs to send to a follower", it sends a snapshot; the follower takes
 * it, then catches up by AppendEntries. */
TEST(snapshot_sent_to_lagging_follower)
{
	struct harness *h = five_entries(true);

	H_EQ(h, compact(h, 1, 7), 0);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->3 SNAPSHOT term=2 snapshot=7@2"), 1);
	H_ASSERT(h,
	    h_find(h, "1->3 SNAPSHOT") <
	        h_find(h, "3->1 APPEND_RESP index=7 reject=0"));
	EXPECT_APPLIED(h, 3, "a,b,c,d,e");
	EXPECT_COMMIT(h, 3, 7);
	EXPECT_CONF(h, 3, "voters=1,2,3");
	H_EQ(h, propose(h, 1, "f"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e,f");
	EXPECT_LOGS_MATCH(h, 1, 3);
	h_free(h);
}

/* §5.3: "If the follower has a log that conflicts with the snapshot ...
 * it discards its entire log; it is all superseded by the snapshot." */
TEST(snapshot_replaces_conflicting_log)
{
	struct harness *h = h_new(3, NULL);

	set_log(h, 1, 3, "1 1 3 3");
	set_log(h, 2, 3, "1 1 3 3");
	set_log(h, 3, 2, "1 1 2 2 2 2");
	isolate(h, 3);
	elect(h, 1);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 6);
	H_EQ(h, compact(h, 1, 6), 0);
	drop(h, 0, 0);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->3 SNAPSHOT snapshot=6@4"), 1);
	EXPECT_LOG(h, 3, "6: 4");
	EXPECT_APPLIED(h, 3, "2@1,3@3,4@3,x");
	EXPECT_LOGS_MATCH(h, 1, 3);
	h_free(h);
}

/* A snapshot the follower already covers (a duplicate, or one overtaken by
 * appends) changes nothing. */
TEST(snapshot_older_than_follower_commit_ignored)
{
	struct harness *h = five_entries(false);
	struct raft_msg m = { 0 };

	m.type = RAFT_MSG_SNAPSHOT;
	m.from = 1;
	m.to = 2;
	m.term = 2;
	m.snapshot.meta.index = 4;
	m.snapshot.meta.term = 2;
	m.snapshot.meta.conf = *raft_conf(h_raft(h, 2));
	m.snapshot.data = (const uint8_t *)"stale";
	m.snapshot.len = 5;
	H_EQ(h, h_step(h, 2, &m), 0);
	process(h);
	EXPECT_APPLIED(h, 2, "a,b,c,d,e");
	EXPECT_LAST_INDEX(h, 2, 7);
	EXPECT_COMMIT(h, 2, 7);
	h_free(h);
}

/* A snapshot lost on the way is sent again: the leader gives up waiting
 * for its acknowledgement after an election timeout and probes anew. */
TEST(lost_snapshot_sent_again)
{
	struct harness *h = five_entries(true);

	H_EQ(h, compact(h, 1, 7), 0);
	heal(h);
	tick(h, 1, 1);
	for (int i = 0; i < 10 && h_count_queued(h, "1->3 SNAPSHOT") == 0; i++)
		deliver(h);
	H_EQ(h, h_count_queued(h, "1->3 SNAPSHOT"), 1);
	drop(h, 1, 3);
	stabilize(h);
	EXPECT_COMMIT(h, 3, 2);
	h_mark(h);
	for (int i = 0; i < 2 * ET; i++) {
		tick(h, 1, 1);
		stabilize(h);
	}
	H_EQ(h, h_count(h, "1->3 SNAPSHOT snapshot=7@2"), 1);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Restarts (§5.1)
 * ------------------------------------------------------------------------ */

/* A server restarts from its latest snapshot and the entries saved after
 * it, and applies again what it knew to be committed. */
TEST(restart_from_own_snapshot)
{
	struct harness *h = five_entries(false);

	H_EQ(h, compact(h, 2, 5), 0);
	crash(h, 2);
	restart(h, 2);
	EXPECT_APPLIED(h, 2, "a,b,c"); /* the snapshot alone */
	H_EQ(h, raft_first_index(h_raft(h, 2)), 6);
	EXPECT_TERM(h, 2, 2);
	process(h);
	EXPECT_APPLIED(h, 2, "a,b,c,d,e");
	H_EQ(h, propose(h, 1, "f"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "a,b,c,d,e,f");
	h_free(h);
}

/* A follower that got its state by InstallSnapshot restarts from it. */
TEST(restart_after_installing_snapshot)
{
	struct harness *h = five_entries(true);

	H_EQ(h, compact(h, 1, 7), 0);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	crash(h, 3);
	restart(h, 3);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e");
	EXPECT_COMMIT(h, 3, 7);
	H_EQ(h, propose(h, 1, "f"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e,f");
	h_free(h);
}

/* A server that joined after bootstrap restarts from its own snapshot
 * with the whole configuration, not just the changes it saw in its log. */
TEST(added_server_restarts_from_own_snapshot)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	stabilize(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, promote(h, 1, 4), 0);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 4, 5);
	H_EQ(h, compact(h, 4, 5), 0);
	crash(h, 4);
	restart(h, 4);
	EXPECT_CONF(h, 4, "voters=1,2,3,4");
	EXPECT_APPLIED(h, 4, "x");
	campaign(h, 4);
	EXPECT_ROLE(h, 4, RAFT_CANDIDATE);
	h_free(h);
}

/* The leader itself restarts from a snapshot and can still bring a new
 * follower up to date with it. */
TEST(restarted_leader_sends_its_snapshot)
{
	struct harness *h = five_entries(true);

	H_EQ(h, compact(h, 1, 7), 0);
	H_EQ(h, compact(h, 2, 7), 0);
	crash(h, 1);
	restart(h, 1);
	elect(h, 1);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->3 SNAPSHOT snapshot=7@2"), 1);
	EXPECT_APPLIED(h, 3, "a,b,c,d,e");
	h_free(h);
}

T_MAIN()

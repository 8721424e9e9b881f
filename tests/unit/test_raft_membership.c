/*
 * test_raft_membership.c - cluster membership changes (chapter 4).
 *
 * Single-server changes: one server added or removed at a time (§4.1), so
 * any majority of the old configuration overlaps any majority of the new.
 * A server uses the latest configuration in its log whether or not it is
 * committed (§4.1). New servers join as learners that catch up before they
 * vote (§4.2.1); a leader that removes itself steps down once the change
 * commits (§4.2.2); removed servers must not disrupt the cluster (§4.2.3).
 * The 2015 erratum (Ongaro, raft-dev): a leader appends no configuration
 * entry before it has committed an entry of its own term.
 */
#include <inttypes.h>

#include "err.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET 10

/* Ticks everyone and settles, @n times. */
static void
run(struct harness *h, int n)
{
	for (int i = 0; i < n; i++) {
		tick_all(h, 1);
		stabilize(h);
	}
}

/* ------------------------------------------------------------------------
 * Learners (§4.2.1)
 * ------------------------------------------------------------------------ */

/* §4.2.1: a new server joins "as a non-voting member. The leader
 * replicates log entries to them, but they are not yet counted towards
 * majorities." It learns everything, the configuration included. */
TEST(add_learner_replicates_log)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	H_EQ(h, add_learner(h, 1, 4), 0);
	EXPECT_CONF(h, 1, "voters=1,2,3 learners=4");
	stabilize(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, propose(h, 1, "b"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 4, "a,b");
	EXPECT_CONF(h, 4, "voters=1,2,3 learners=4");
	EXPECT_LOGS_MATCH(h, 1, 4);
	h_free(h);
}

/* A learner's acknowledgement does not count toward a commit. */
TEST(learner_does_not_count_toward_commit)
{
	struct harness *h = h_new(3, H_OPTS(.learners = 1));

	elect(h, 1);
	cut(h, 1, 2);
	cut(h, 1, 3);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_LAST_INDEX(h, 4, 3);
	EXPECT_COMMIT(h, 1, 2);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 3);
	h_free(h);
}

/* A learner neither campaigns nor is asked for its vote; a vote it sends
 * anyway is not counted. */
TEST(learner_does_not_vote)
{
	struct harness *h = h_new(3, H_OPTS(.learners = 1));
	struct raft_msg m = { 0 };
	uint64_t term = raft_term(h_raft(h, 4));

	tick(h, 4, 10 * ET);
	EXPECT_ROLE(h, 4, RAFT_FOLLOWER);
	EXPECT_TERM(h, 4, term);
	H_EQ(h, h_queue_len(h), 0);

	cut(h, 1, 2);
	cut(h, 1, 3);
	campaign(h, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->4 VOTE"), 0);
	m.type = RAFT_MSG_VOTE_RESP;
	m.from = 4;
	m.to = 1;
	m.term = raft_term(h_raft(h, 1));
	H_EQ(h, h_step(h, 1, &m), 0);
	EXPECT_ROLE(h, 1, RAFT_CANDIDATE);
	h_free(h);
}

/* §4.2.1: the leader "should abort the change if the new server is
 * unavailable or is so slow that it will never catch up" - here: a learner
 * is promoted only once it has caught up with the commit index. */
TEST(promote_refused_until_caught_up)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	h_add_node(h, 4);
	cut(h, 1, 4);
	H_EQ(h, add_learner(h, 1, 4), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 4);
	H_EQ(h, promote(h, 1, 4), DSC_EBUSY);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	EXPECT_COMMIT(h, 4, 4);
	H_EQ(h, promote(h, 1, 4), 0);
	stabilize(h);
	for (uint64_t id = 1; id <= 4; id++)
		EXPECT_CONF(h, id, "voters=1,2,3,4");
	/* Four voters: a commit needs three. */
	cut(h, 1, 3);
	cut(h, 1, 4);
	H_EQ(h, propose(h, 1, "b"), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 5);
	h_free(h);
}

/* Demotion turns a voter into a learner: it stops counting and voting. */
TEST(demote_voter_to_learner)
{
	struct harness *h = h_new(3, NULL);
	uint64_t term;

	elect(h, 1);
	H_EQ(h, demote(h, 1, 3), 0);
	stabilize(h);
	EXPECT_CONF(h, 3, "voters=1,2 learners=3");
	term = raft_term(h_raft(h, 3));
	isolate(h, 3);
	tick(h, 3, 10 * ET);
	EXPECT_TERM(h, 3, term);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * One change at a time (§4.1, 2015 erratum)
 * ------------------------------------------------------------------------ */

/* §4.1: "The leader ... does not start a new configuration change until
 * the previous change's entry has committed." */
TEST(one_conf_change_at_a_time)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	H_EQ(h, add_learner(h, 1, 5), DSC_EBUSY);
	H_EQ(h, remove_server(h, 1, 3), DSC_EBUSY);
	stabilize(h);
	H_EQ(h, add_learner(h, 1, 5), 0);
	stabilize(h);
	EXPECT_CONF(h, 2, "voters=1,2,3 learners=4,5");
	h_free(h);
}

/* Erratum (raft-dev, 2015): "the leader may not append a new configuration
 * entry until it has committed an entry from its current term", or a
 * change from a previous term and this one could form disjoint majorities. */
TEST(no_conf_change_before_own_term_commit)
{
	struct harness *h = h_new(3, NULL);

	campaign(h, 1);
	deliver(h);
	deliver(h);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_COMMIT(h, 1, 1);
	H_EQ(h, add_learner(h, 1, 4), DSC_EBUSY);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 2);
	H_EQ(h, add_learner(h, 1, 4), 0);
	h_free(h);
}

/* A new leader that inherits an uncommitted configuration entry treats
 * it as the change in progress: no second change until it commits, which
 * its no-op does. */
TEST(new_leader_waits_for_inherited_conf_change)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	deliver_only(h, 1, 2);
	drop(h, 0, 0);
	EXPECT_COMMIT(h, 1, 2);
	crash(h, 1);
	campaign(h, 2);
	deliver(h);
	deliver(h);
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	EXPECT_CONF(h, 2, "voters=1,2,3 learners=4");
	H_EQ(h, add_learner(h, 2, 5), DSC_EBUSY);
	stabilize(h);
	EXPECT_COMMIT(h, 2, 4);
	H_EQ(h, add_learner(h, 2, 5), 0);
	stabilize(h);
	EXPECT_CONF(h, 3, "voters=1,2,3 learners=4,5");
	h_free(h);
}

/* Changes that make no sense are refused, and only a leader changes the
 * configuration. */
TEST(conf_change_invalid_refused)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, remove_server(h, 1, 9), DSC_EINVAL);
	H_EQ(h, promote(h, 1, 2), DSC_EINVAL);
	H_EQ(h, add_learner(h, 1, 2), DSC_EINVAL);
	H_EQ(h, demote(h, 1, 9), DSC_EINVAL);
	H_EQ(h, add_learner(h, 2, 4), DSC_ENOTLEADER);
	EXPECT_CONF(h, 1, "voters=1,2,3");
	EXPECT_LAST_INDEX(h, 1, 2);
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Configurations in the log (§4.1)
 * ------------------------------------------------------------------------ */

/* §4.1: "a server always uses the latest configuration in its log,
 * regardless of whether the entry is committed." */
TEST(conf_takes_effect_on_append_not_commit)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	deliver_only(h, 1, 2);
	EXPECT_COMMIT(h, 2, 2);
	EXPECT_CONF(h, 2, "voters=1,2,3 learners=4");
	EXPECT_CONF(h, 3, "voters=1,2,3");
	h_free(h);
}

/* §4.1: "a log entry for a configuration change can be removed (if
 * leadership changes); in this case, a server must be prepared to fall back
 * to the previous configuration in its log." */
TEST(uncommitted_conf_rolled_back_on_truncation)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	isolate(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	EXPECT_CONF(h, 1, "voters=1,2,3 learners=4");
	process(h);
	drop(h, 0, 0);
	elect(h, 2);
	H_EQ(h, propose(h, 2, "y"), 0);
	stabilize(h);
	heal(h);
	tick(h, 2, 1);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_CONF(h, 1, "voters=1,2,3");
	EXPECT_LOGS_MATCH(h, 1, 2);
	EXPECT_APPLIED(h, 1, "y");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Removing servers (§4.2.2, §4.2.3)
 * ------------------------------------------------------------------------ */

/* A removed follower no longer counts: the remaining two commit alone. */
TEST(remove_follower_then_commit_without_it)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, remove_server(h, 1, 3), 0);
	stabilize(h);
	EXPECT_CONF(h, 2, "voters=1,2");
	crash(h, 3);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	h_free(h);
}

/* §4.2.2: the leader removed from the configuration "steps down (returns to
 * follower state) once the Cnew entry is committed"; until then it
 * "manages a cluster that does not include itself", replicating without
 * counting itself in majorities. */
TEST(removing_leader_steps_down_after_commit)
{
	struct harness *h = h_new(3, NULL);
	uint64_t leader = RAFT_NONE;
	uint64_t index;

	elect(h, 1);
	H_EQ(h, remove_server(h, 1, 1), 0);
	index = raft_last_index(h_raft(h, 1));
	EXPECT_CONF(h, 1, "voters=2,3");
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	/* 1 and 2 hold the entry: a majority of the old configuration, not
	 * of the new one (2 and 3). */
	cut(h, 1, 3);
	stabilize(h);
	EXPECT_LAST_INDEX(h, 2, index);
	EXPECT_COMMIT(h, 1, index - 1);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	heal(h);
	tick(h, 1, 1);
	stabilize(h);
	EXPECT_COMMIT(h, 1, index);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	run(h, 4 * ET);
	leader = raft_leader(h_raft(h, 2));
	H_ASSERT(h, leader == 2 || leader == 3);
	EXPECT_ROLE(h, leader, RAFT_LEADER);
	H_EQ(h, propose(h, leader, "after"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "after");
	EXPECT_APPLIED(h, 3, "after");
	h_free(h);
}

/* Demoting the leader is removing it from the voters: the same rule, it
 * leads until the change commits, then steps down (§4.2.2). */
TEST(demoting_leader_steps_down_after_commit)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, demote(h, 1, 1), 0);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	EXPECT_CONF(h, 2, "voters=2,3 learners=1");
	run(h, 4 * ET);
	H_ASSERT(h,
	    raft_leader(h_raft(h, 1)) == 2 || raft_leader(h_raft(h, 1)) == 3);
	h_free(h);
}

/* A configuration without voters could never elect or commit again. */
TEST(removing_last_voter_refused)
{
	struct harness *h = h_new(1, NULL);

	elect(h, 1);
	H_EQ(h, remove_server(h, 1, 1), DSC_EINVAL);
	H_EQ(h, demote(h, 1, 1), DSC_EINVAL);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	h_free(h);
}

/*
 * §4.2.2: "a server that is not part of its own latest configuration
 * should still start new elections, as it might still be needed until the
 * Cnew entry is committed." Two voters; the leader removes itself, but the
 * entry reaches nobody before a vote request from the other voter deposes
 * it. Its log is now the more up-to-date one, so the other voter cannot
 * win without its vote, which it refuses: the old leader is still needed,
 * and must campaign (without counting its own vote) to commit its removal.
 */
TEST(removed_leader_still_campaigns_until_removal_commits)
{
	struct harness *h = h_new(2, NULL);
	uint64_t term, leader;

	elect(h, 1);
	term = raft_term(h_raft(h, 1));
	isolate(h, 1);
	H_EQ(h, remove_server(h, 1, 1), 0);
	EXPECT_CONF(h, 1, "voters=2");
	process(h);
	drop(h, 0, 0);
	tick_until_term(h, 2, term + 1, 2 * ET);
	drop(h, 0, 0);
	heal(h);
	tick_until_term(h, 2, term + 2, 2 * ET);
	stabilize(h);
	EXPECT_ROLE(h, 1, RAFT_FOLLOWER);
	H_EQ(h, h_count(h, "1->2 VOTE_RESP reject=1"), 1);
	run(h, 20 * ET);
	leader = raft_leader(h_raft(h, 2));
	H_ASSERT(h, leader != RAFT_NONE);
	EXPECT_ROLE(h, leader, RAFT_LEADER);
	run(h, 4 * ET);
	EXPECT_CONF(h, 2, "voters=2");
	EXPECT_ROLE(h, 2, RAFT_LEADER);
	H_EQ(h, propose(h, 2, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	h_free(h);
}

/* §4.2.3: a server removed without learning it "will not receive
 * heartbeats, so it will time out and start new elections"; with the
 * lease (check-quorum) and pre-vote, servers that hear from their leader
 * ignore it, and the cluster keeps its leader and term. */
TEST(removed_server_does_not_disrupt)
{
	struct harness *h =
	    h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true));
	uint64_t term;

	elect(h, 1);
	isolate(h, 3);
	H_EQ(h, remove_server(h, 1, 3), 0);
	stabilize(h);
	EXPECT_CONF(h, 2, "voters=1,2");
	EXPECT_CONF(h, 3, "voters=1,2,3");
	term = raft_term(h_raft(h, 1));
	heal(h);
	run(h, 10 * ET);
	H_ASSERT(h, h_count(h, "3->* PREVOTE") + h_count(h, "3->* VOTE") > 0);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, term);
	EXPECT_TERM(h, 2, term);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 2, "x");
	h_free(h);
}

/* The lease alone (check-quorum without pre-vote) already keeps the
 * removed server's vote requests from deposing the leader. */
TEST(removed_server_does_not_disrupt_with_lease_only)
{
	struct harness *h = h_new(3, H_OPTS(.check_quorum = true));
	uint64_t term;

	elect(h, 1);
	isolate(h, 3);
	H_EQ(h, remove_server(h, 1, 3), 0);
	stabilize(h);
	term = raft_term(h_raft(h, 1));
	heal(h);
	run(h, 10 * ET);
	H_ASSERT(h, h_count(h, "3->* VOTE") > 0);
	EXPECT_ROLE(h, 1, RAFT_LEADER);
	EXPECT_TERM(h, 1, term);
	EXPECT_TERM(h, 2, term);
	h_free(h);
}

/* raft.h: "A node that is in no configuration starts empty and waits to
 * be added by a leader": it never campaigns, however long it hears
 * nothing. (A removed server usually never learns of its removal - the
 * leader stops replicating to it at once - which is why §4.2.3 matters.) */
TEST(server_outside_configuration_never_campaigns)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	h_add_node(h, 4);
	tick(h, 4, 10 * ET);
	EXPECT_ROLE(h, 4, RAFT_FOLLOWER);
	EXPECT_TERM(h, 4, 0);
	H_EQ(h, h_queue_len(h), 0);
	H_EQ(h, campaign(h, 4), DSC_EINVAL);
	EXPECT_CONF(h, 4, "voters=");
	h_free(h);
}

/* The configuration is in the log, so a restart finds it there. */
TEST(restart_keeps_configuration_from_log)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, add_learner(h, 1, 4), 0);
	stabilize(h);
	H_EQ(h, remove_server(h, 1, 3), 0);
	stabilize(h);
	crash(h, 2);
	restart(h, 2);
	EXPECT_CONF(h, 2, "voters=1,2 learners=4");
	h_free(h);
}

/* A server added after the leader compacted its log starts from the
 * leader's snapshot, then gets the entries after it, its own addition
 * among them. */
TEST(learner_added_after_compaction_starts_from_snapshot)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	H_EQ(h, compact(h, 1, 3), 0);
	H_EQ(h, add_learner(h, 1, 4), 0);
	stabilize(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->4 SNAPSHOT snapshot=3@2"), 1);
	EXPECT_CONF(h, 4, "voters=1,2,3 learners=4");
	H_EQ(h, propose(h, 1, "b"), 0);
	stabilize(h);
	EXPECT_APPLIED(h, 4, "a,b");
	h_free(h);
}

/* §5.1: a snapshot includes "the latest configuration as of the last
 * included index", so a server restored from it knows its cluster, learners
 * included. */
TEST(snapshot_carries_configuration)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	isolate(h, 3);
	H_EQ(h, add_learner(h, 1, 4), 0);
	stabilize(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, propose(h, 1, "x"), 0);
	stabilize(h);
	EXPECT_COMMIT(h, 1, 4);
	H_EQ(h, compact(h, 1, 4), 0);
	drop(h, 0, 0);
	heal(h);
	h_mark(h);
	tick(h, 1, 1);
	stabilize(h);
	H_EQ(h, h_count(h, "1->3 SNAPSHOT snapshot=4@2"), 1);
	EXPECT_CONF(h, 3, "voters=1,2,3 learners=4");
	EXPECT_APPLIED(h, 3, "x");
	crash(h, 3);
	restart(h, 3);
	EXPECT_CONF(h, 3, "voters=1,2,3 learners=4");
	h_free(h);
}

T_MAIN()

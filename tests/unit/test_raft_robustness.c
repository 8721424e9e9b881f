/*
 * test_raft_robustness.c - what the core survives: restarts, hostile
 * messages, inconsistent saved state, and running out of memory.
 *
 * Figure 3.1 makes currentTerm, votedFor and the log persistent: a server
 * that restarts must not vote twice in a term or forget entries it
 * acknowledged. raft.h adds the rest of the contract tested here: a
 * malformed message is refused with DSC_EINVAL and changes nothing;
 * raft_new() refuses an inconsistent state; and every call that allocates
 * either succeeds or returns DSC_ENOMEM without corrupting the core, which
 * keeps working once memory is back (canonical/raft's heap fault injection,
 * through dsc_mem_fail_after()). Run under ASan, a leak on any of those
 * paths fails the binary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "raft.h"
#include "raft_harness.h"
#include "t.h"

#define ET              10
/* Upper bound on injection points tried per scenario. */
#define MAX_FAIL_POINTS 3000

#define E(i, t, s)                                                             \
	{                                                                      \
		.index = (i), .term = (t), .type = RAFT_ENTRY_NORMAL,          \
		.len = sizeof(s) - 1, .data = (uint8_t *)(s)                   \
	}
#define N(a) (sizeof(a) / sizeof((a)[0]))

struct snap {
	enum raft_role role;
	uint64_t term, vote, leader, commit, last, first;
};

static struct snap
snap_of(const struct raft *r)
{
	struct raft_status st;

	raft_status(r, &st);
	return (struct snap){ st.role, st.term, st.vote, st.leader, st.commit,
		st.last_index, st.first_index };
}

static bool
snap_eq(struct snap a, struct snap b)
{
	return a.role == b.role && a.term == b.term && a.vote == b.vote &&
	    a.leader == b.leader && a.commit == b.commit && a.last == b.last &&
	    a.first == b.first;
}

/* Ticks everyone and settles until some server leads; returns it. */
static uint64_t
settle_leader(struct harness *h, unsigned n)
{
	for (unsigned i = 0; i < 40 * ET; i++) {
		for (uint64_t id = 1; id <= n; id++)
			if (h_is_up(h, id) &&
			    raft_role(h_raft(h, id)) == RAFT_LEADER &&
			    raft_commit_index(h_raft(h, id)) > 0)
				return id;
		tick_all(h, 1);
		stabilize(h);
	}
	H_FAIL(h, "no leader after %d ticks", 40 * ET);
}

/* ------------------------------------------------------------------------
 * Restarts (Figure 3.1 persistent state)
 * ------------------------------------------------------------------------ */

/* votedFor survives a crash: a server that voted in a term and restarts
 * does not vote for another candidate in that term. */
TEST(restart_preserves_term_and_vote)
{
	struct harness *h = h_new(3, NULL);
	struct raft_msg m;

	campaign(h, 1);
	deliver(h);
	crash(h, 2);
	restart(h, 2);
	EXPECT_TERM(h, 2, 2);
	EXPECT_VOTE(h, 2, 1);
	m = msg(RAFT_MSG_VOTE, 3, 2, 2);
	m.index = 1;
	m.log_term = 1;
	H_EQ(h, h_step(h, 2, &m), 0);
	H_EQ(h, h_count_queued(h, "2->3 VOTE_RESP term=2 reject=1"), 1);
	H_EQ(h, h_count_queued(h, "2->3 VOTE_RESP reject=0"), 0);
	h_free(h);
}

/* What was not saved was never sent: a vote granted in memory but lost in
 * a crash before the ready was handled left no trace anywhere. */
TEST(crash_before_save_loses_only_unsent_work)
{
	struct harness *h = h_new(3, NULL);
	struct raft_msg m = msg(RAFT_MSG_VOTE, 1, 2, 2);

	m.index = 1;
	m.log_term = 1;
	H_EQ(h, h_step(h, 2, &m), 0);
	EXPECT_VOTE(h, 2, 1);
	crash(h, 2);
	restart(h, 2);
	EXPECT_VOTE(h, 2, RAFT_NONE);
	EXPECT_TERM(h, 2, 1);
	H_EQ(h, h_queue_len(h), 0);
	h_free(h);
}

/* The log survives too, and what was known committed is applied again. */
TEST(restart_preserves_log_and_reapplies_committed)
{
	struct harness *h = h_new(3, NULL);

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	H_EQ(h, propose(h, 1, "b"), 0);
	stabilize(h);
	crash(h, 2);
	restart(h, 2);
	EXPECT_APPLIED(h, 2, "");
	process(h);
	EXPECT_APPLIED(h, 2, "a,b");
	EXPECT_LOGS_MATCH(h, 1, 2);
	h_free(h);
}

/* The whole cluster goes down and comes back: every committed entry is
 * still there, and the cluster elects and serves again. */
TEST(full_cluster_restart_keeps_committed_entries)
{
	struct harness *h = h_new(3, NULL);
	uint64_t leader;

	elect(h, 1);
	H_EQ(h, propose(h, 1, "a"), 0);
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		crash(h, id);
	for (uint64_t id = 1; id <= 3; id++)
		restart(h, id);
	leader = settle_leader(h, 3);
	H_EQ(h, propose(h, leader, "b"), 0);
	stabilize(h);
	for (uint64_t id = 1; id <= 3; id++)
		EXPECT_APPLIED(h, id, "a,b");
	h_free(h);
}

/* ------------------------------------------------------------------------
 * Hostile input (raft.h: raft_step, raft_new)
 * ------------------------------------------------------------------------ */

/* raft_step: "DSC_EINVAL for a malformed message ... the core's state is
 * unchanged." Peers are untrusted; shape errors never reach the rules. */
TEST(step_rejects_malformed_messages)
{
	static const struct raft_entry gap[] = { E(2, 2, "a"), E(4, 2, "b") };
	static const struct raft_entry late[] = { E(3, 2, "a") };
	static const struct raft_entry future[] = { E(2, 3, "a") };
	static const struct raft_entry down[] = { E(2, 2, "a"), E(3, 1, "b") };
	static const struct raft_entry nodata[] = {
		{ .index = 2, .term = 2, .len = 4, .data = NULL }
	};
	static const struct raft_entry badtype[] = {
		{ .index = 2, .term = 2, .type = RAFT_ENTRY_TYPE_MAX }
	};
	struct raft *r = h_core_new(1, 3, NULL);
	struct raft_msg ok = msg(RAFT_MSG_APPEND, 2, 1, 2), m;
	struct snap before;

	ok.index = 1;
	ok.log_term = 1;
	h_core_drain(r);
	before = snap_of(r);

#define BAD(what, ...)                                                         \
	do {                                                                   \
		m = ok;                                                        \
		__VA_ARGS__;                                                   \
		if (raft_step(r, &m) != DSC_EINVAL)                            \
			T_FAIL("%s: not refused", what);                       \
		if (!snap_eq(before, snap_of(r)))                              \
			T_FAIL("%s: state changed", what);                     \
		if (h_core_drain(r) != 0)                                      \
			T_FAIL("%s: ready work left", what);                   \
	} while (0)

	BAD("from none", m.from = RAFT_NONE);
	BAD("from itself", m.from = 1);
	BAD("unknown type", m.type = RAFT_MSG_TYPE_MAX);
	BAD("type far out", m.type = 200);
	BAD("term 0", m.term = 0);
	BAD("entries out of order", m.entries = gap, m.n_entries = N(gap));
	BAD("entries not after index", m.entries = late, m.n_entries = 1);
	BAD("entry term past message", m.entries = future, m.n_entries = 1);
	BAD("entry terms going down", m.entries = down, m.n_entries = 2);
	BAD("entries NULL", m.n_entries = 3);
	BAD("entry data NULL", m.entries = nodata, m.n_entries = 1);
	BAD("entry type unknown", m.entries = badtype, m.n_entries = 1);
	BAD("entries on a vote", m.type = RAFT_MSG_VOTE, m.entries = late,
	    m.n_entries = 1);
	BAD("snapshot at 0", m.type = RAFT_MSG_SNAPSHOT);
	BAD("snapshot data NULL", m.type = RAFT_MSG_SNAPSHOT,
	    m.snapshot.meta.index = 5, m.snapshot.meta.term = 1,
	    m.snapshot.len = 9);
#undef BAD
	/* The well-formed one still goes through. */
	T_EQ(raft_step(r, &ok), 0);
	T_EQ(raft_term(r), 2);
	T_EQ(raft_leader(r), 2);
	raft_free(r);
}

/* raft_new: "DSC_EINVAL for an inconsistent state". */
TEST(new_rejects_inconsistent_state)
{
	static const struct raft_entry ents[] = { E(1, 1, "a"), E(2, 2, "b") };
	static const struct raft_entry gap[] = { E(1, 1, "a"), E(3, 1, "b") };
	static const struct {
		const char *what;
		struct raft_hard hard;
		const struct raft_entry *ents;
		size_t n;
		uint64_t applied;
	} cases[] = {
		{ "entries not consecutive", { 1, 0, 0 }, gap, 2, 0 },
		{ "term behind the log", { 1, 0, 0 }, ents, 2, 0 },
		{ "applied past commit", { 2, 0, 1 }, ents, 2, 2 },
	};
	struct raft_config c;
	struct raft_conf boot = { 0 };

	boot.n = 1;
	boot.servers[0].id = 1;
	raft_config_init(&c, 1, 1);
	for (size_t i = 0; i < N(cases); i++) {
		struct raft_state st = { 0 };
		int err = 0;
		struct raft *r;

		st.hard = cases[i].hard;
		st.entries = cases[i].ents;
		st.n_entries = cases[i].n;
		st.bootstrap = &boot;
		st.applied = cases[i].applied;
		r = raft_new(&c, &st, &err);
		if (r != NULL) {
			raft_free(r);
			T_FAIL("%s: accepted", cases[i].what);
		}
		T_EQ(err, DSC_EINVAL);
	}
	c.id = RAFT_NONE;
	{
		struct raft_state st = { 0 };
		int err = 0;

		st.bootstrap = &boot;
		T_ASSERT(raft_new(&c, &st, &err) == NULL);
		T_EQ(err, DSC_EINVAL);
	}
}

/* Persisting commit is optional (raft.h), so one saved past the log -- a
 * write torn between the hard state and the entries -- is clamped, not
 * refused: it only means less is known to be committed. */
TEST(new_clamps_commit_past_the_log)
{
	static const struct raft_entry ents[] = { E(1, 1, "a"), E(2, 2, "b") };
	struct raft_state st = { 0 };
	struct raft_config c;
	struct raft *r;
	int err = 0;

	raft_config_init(&c, 1, 1);
	st.hard = (struct raft_hard){ 2, 0, 3 };
	st.entries = ents;
	st.n_entries = 2;
	r = raft_new(&c, &st, &err);
	T_ASSERT(r != NULL);
	T_EQ(raft_commit_index(r), 2);
	raft_free(r);
}

/* ------------------------------------------------------------------------
 * Allocation failure (raft.h: DSC_ENOMEM, canonical/raft heap faults)
 * ------------------------------------------------------------------------ */

/* raft_new under every allocation failure: NULL with DSC_ENOMEM, or a
 * working core; never a crash or a leak. */
TEST(alloc_failure_in_new)
{
	static const struct raft_entry ents[] = { E(2, 1, "a"), E(3, 2, "b") };
	struct raft_snapshot snap = { 0 };
	struct raft_config c;
	unsigned long n;

	snap.meta.index = 1;
	snap.meta.term = 1;
	snap.meta.conf.n = 3;
	for (uint32_t i = 0; i < 3; i++)
		snap.meta.conf.servers[i].id = i + 1;
	snap.data = (const uint8_t *)"state";
	snap.len = 5;
	raft_config_init(&c, 1, 1);
	for (n = 0; n < MAX_FAIL_POINTS; n++) {
		struct raft_state st = { 0 };
		unsigned long calls;
		struct raft *r;
		int err = 0;

		st.hard.term = 2;
		st.hard.commit = 3;
		st.snapshot = &snap;
		st.entries = ents;
		st.n_entries = N(ents);
		dsc_mem_reset_count();
		dsc_mem_fail_after((long)n);
		r = raft_new(&c, &st, &err);
		calls = dsc_mem_calls();
		dsc_mem_fail_after(-1);
		if (r == NULL) {
			T_EQ(err, DSC_ENOMEM);
			continue;
		}
		T_EQ(raft_last_index(r), 3);
		T_EQ(raft_commit_index(r), 3);
		h_core_drain(r);
		raft_free(r);
		if (calls <= n)
			break;
	}
	if (getenv("T_VERBOSE") != NULL)
		fprintf(stderr, "  %lu injection points\n", n);
	T_ASSERT(n < MAX_FAIL_POINTS);
}

/* A follower stepping an APPEND under every allocation failure: refused
 * with DSC_ENOMEM and unchanged, or taken whole. The same message after
 * memory is back is taken. */
TEST(alloc_failure_in_step_append)
{
	static const struct raft_entry ents[] = { E(2, 2, "a"), E(3, 2, "b"),
		E(4, 2, "c") };
	unsigned long n;

	for (n = 0; n < MAX_FAIL_POINTS; n++) {
		struct raft *r = h_core_new(2, 3, NULL);
		struct raft_msg m = msg(RAFT_MSG_APPEND, 1, 2, 2);
		struct raft_ready rd;
		struct snap before;
		unsigned long calls;
		int rc;

		m.index = 1;
		m.log_term = 1;
		m.commit = 1;
		/* Same term: the term rule is not what is under test. */
		m.entries = NULL;
		m.n_entries = 0;
		T_EQ(raft_step(r, &m), 0);
		h_core_drain(r);
		before = snap_of(r);
		m.entries = ents;
		m.n_entries = N(ents);
		m.commit = 4;
		dsc_mem_reset_count();
		dsc_mem_fail_after((long)n);
		rc = raft_step(r, &m);
		if (rc == 0)
			h_core_drain(r);
		calls = dsc_mem_calls();
		dsc_mem_fail_after(-1);
		if (rc != 0) {
			T_EQ(rc, DSC_ENOMEM);
			T_ASSERT(snap_eq(before, snap_of(r)));
			T_EQ(raft_step(r, &m), 0);
		}
		T_EQ(raft_last_index(r), 4);
		T_EQ(raft_commit_index(r), 4);
		while (raft_ready(r, &rd))
			raft_advance(r, &rd);
		T_EQ(raft_applied_index(r), 4);
		raft_free(r);
		if (calls <= n)
			break;
	}
	if (getenv("T_VERBOSE") != NULL)
		fprintf(stderr, "  %lu injection points\n", n);
	T_ASSERT(n < MAX_FAIL_POINTS);
}

/*
 * A whole cluster through an election (cold: before any buffer has grown)
 * or from a running leader (warm), then a proposal, reads, a compaction, a
 * configuration change and a round of replication, while the Nth
 * allocation and all after it fail, for every N until the scenario runs
 * without a failure. Calls return 0 or DSC_ENOMEM (or what they would
 * return anyway); the harness checks the safety invariants throughout;
 * then memory comes back and the cluster must elect, commit and agree.
 */
static unsigned long
cluster_scenario(bool cold)
{
	unsigned long n;

	for (n = 0; n < MAX_FAIL_POINTS; n++) {
		struct harness *h = h_new(3, NULL);
		unsigned long calls;
		uint64_t leader;
		int rc;

		h_note(h, "allocations fail after %lu", n);
		h_add_node(h, 4);
		if (!cold) {
			elect(h, 1);
			H_EQ(h, propose(h, 1, "warm"), 0);
			stabilize(h);
		}
		dsc_mem_reset_count();
		dsc_mem_fail_after((long)n);

		if (cold) {
			campaign(h, 1);
			stabilize(h);
		}
		rc = propose(h, 1, "a");
		H_ASSERT(
		    h, rc == 0 || rc == DSC_ENOMEM || rc == DSC_ENOTLEADER);
		rc = read_index(h, 1, 1);
		H_ASSERT(h, rc == 0 || rc == DSC_ENOMEM || rc == DSC_ENOLEADER);
		rc = read_index(h, 2, 2);
		H_ASSERT(h, rc == 0 || rc == DSC_ENOMEM || rc == DSC_ENOLEADER);
		stabilize(h);
		if (raft_applied_index(h_raft(h, 1)) > 1) {
			rc = compact(h, 1, raft_applied_index(h_raft(h, 1)));
			H_ASSERT(h, rc == 0 || rc == DSC_ENOMEM);
		}
		rc = add_learner(h, 1, 4);
		H_ASSERT(h,
		    rc == 0 || rc == DSC_ENOMEM || rc == DSC_ENOTLEADER ||
		        rc == DSC_EBUSY);
		tick_all(h, 1);
		stabilize(h);

		calls = dsc_mem_calls();
		dsc_mem_fail_after(-1);

		leader = settle_leader(h, 3);
		rc = propose(h, leader, "b");
		H_EQ(h, rc, 0);
		tick(h, leader, 1);
		stabilize(h);
		for (uint64_t id = 1; id <= 3; id++) {
			const char *got = h_applied(h, id);
			size_t len = strlen(got);

			H_ASSERT(h, len >= 1 && got[len - 1] == 'b');
			EXPECT_LOGS_MATCH(h, leader, id);
		}
		h_free(h);
		if (calls <= n)
			break;
	}
	if (getenv("T_VERBOSE") != NULL)
		fprintf(stderr, "  %lu injection points\n", n);
	return n;
}

TEST(alloc_failure_in_cluster_from_cold)
{
	T_ASSERT(cluster_scenario(true) < MAX_FAIL_POINTS);
}

TEST(alloc_failure_in_cluster_from_running_leader)
{
	T_ASSERT(cluster_scenario(false) < MAX_FAIL_POINTS);
}

/* A lagging follower brought back by InstallSnapshot and AppendEntries
 * while allocations fail from the Nth on; once memory is back it catches
 * up all the same. */
TEST(alloc_failure_in_snapshot_catch_up)
{
	unsigned long n;

	for (n = 0; n < MAX_FAIL_POINTS; n++) {
		struct harness *h = h_new(3, NULL);
		const char *data[] = { "a", "b", "c", "d" };
		unsigned long calls;
		char want[64];

		h_note(h, "allocations fail after %lu", n);
		elect(h, 1);
		isolate(h, 3);
		for (size_t i = 0; i < N(data); i++) {
			H_EQ(h, propose(h, 1, data[i]), 0);
			process(h);
		}
		stabilize(h);
		drop(h, 0, 0);
		H_EQ(h, compact(h, 1, 5), 0);
		heal(h);
		dsc_mem_reset_count();
		dsc_mem_fail_after((long)n);
		tick(h, 1, 1);
		stabilize(h);
		(void)propose(h, 1, "e");
		tick(h, 1, 1);
		stabilize(h);
		calls = dsc_mem_calls();
		dsc_mem_fail_after(-1);
		for (int i = 0; i < 3 * ET; i++) {
			tick(h, 1, 1);
			stabilize(h);
		}
		EXPECT_ROLE(h, 1, RAFT_LEADER);
		H_EQ(h, propose(h, 1, "f"), 0);
		stabilize(h);
		EXPECT_LOGS_MATCH(h, 1, 3);
		snprintf(want, sizeof(want), "%s", h_applied(h, 1));
		EXPECT_APPLIED(h, 3, want);
		H_EQ(h, raft_applied_index(h_raft(h, 3)),
		    raft_applied_index(h_raft(h, 1)));
		h_free(h);
		if (calls <= n)
			break;
	}
	if (getenv("T_VERBOSE") != NULL)
		fprintf(stderr, "  %lu injection points\n", n);
	T_ASSERT(n < MAX_FAIL_POINTS);
}

T_MAIN()

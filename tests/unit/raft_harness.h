/*
 * raft_harness.h - an in-memory Raft cluster that makes one scenario exact.
 *
 * In the spirit of etcd-io/raft's interaction tests: N real cores (ids 1..N)
 * with in-memory storage, a message queue the test controls, and a
 * transcript of everything the harness moved. Tests read like scripts:
 *
 *	struct harness *h = h_new(3, NULL);
 *	campaign(h, 1);
 *	deliver(h);
 *	EXPECT_MSGS(h, "1->2 VOTE term=2", "1->3 VOTE term=2");
 *	stabilize(h);
 *	EXPECT_ROLE(h, 1, RAFT_LEADER);
 *	h_free(h);
 *
 * This is not the simulator (tests/sim): there is no clock, no randomness
 * besides the cores' own seeded timeouts, no faults but the ones a test
 * asks for.
 *
 * Driving. Inputs (campaign, propose, read_index, transfer, conf changes,
 * h_step) only feed the core; what the core wants done stays in it until
 * the harness processes its ready: save, queue the messages, apply,
 * advance. That happens in process(), at the start and end of every
 * deliver(), after every tick, and in stabilize(). So two propose() calls
 * in a row reach the core in one batch, as they would in a server.
 *
 * Storage. Each node keeps what it saved: hard state, snapshot, entries.
 * crash() drops the core and everything not yet saved; restart() builds a
 * new core from the saved state only, with the state machine restored from
 * the saved snapshot (committed entries are then applied again).
 *
 * State machine. The committed NORMAL entries' payloads, in order;
 * EXPECT_APPLIED(h, 2, "a,b") compares them joined with ",".
 *
 * Transcript. Every message the harness moves is one line:
 *	1->2 VOTE term=2 index=1 log_term=1
 *	2->1 VOTE_RESP term=2 reject=0
 *	1-x3 HEARTBEAT term=2 commit=2 context=0	(dropped: cut or down)
 * Entries render as index@term:payload, "noop", or conf(op,id). Actions,
 * role changes and the cores' trace lines go in between as notes. A check
 * that fails prints the transcript (the last 400 lines; H_FULL=1 for all;
 * H_VERBOSE=1 prints it as it grows).
 *
 * Patterns. EXPECT_MSGS and friends take patterns, one per message: the
 * first two words ("1->2" and the type) must match exactly ("*" matches
 * any id: "*->1 VOTE_RESP"), every further word must be one of the line's
 * words, in any order. So "2->1 APPEND_RESP reject=1" checks the rule and
 * leaves the hint alone.
 *
 * Invariants checked on every ready (a violation fails the test):
 * election safety (one leader per term); terms never go back and a vote is
 * never changed within a term; a granted VOTE_RESP leaves in a ready whose
 * saved hard state holds that term and vote; an APPEND_RESP acknowledges
 * only entries saved by the end of its ready; committed entries are saved,
 * consecutive from the applied index, and equal on every node (state
 * machine safety).
 *
 * Defaults differ from raft_config_init on purpose: pre-vote and
 * check-quorum are off unless asked for, so the paper's rules show alone
 * (as in etcd's raft_paper_test.go). The harness allocates with libc, not
 * dsc_malloc, so allocation-failure injection hits only the cores; a
 * failing check disarms it (dsc_mem_fail_after(-1)) before it returns to
 * the runner.
 */
#ifndef DSC_RAFT_HARNESS_H
#define DSC_RAFT_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

/* Cluster options; zero means the default noted. */
struct h_opts {
	bool pre_vote;                /* default off */
	bool check_quorum;            /* default off */
	unsigned learners;            /* ids n+1..n+learners boot as learners */
	unsigned election_ticks;      /* default 10 */
	unsigned heartbeat_ticks;     /* default 1 */
	unsigned max_inflight;        /* default: the core's */
	size_t max_msg_bytes;         /* default: the core's */
	size_t max_uncommitted_bytes; /* default 0, no limit */
	uint64_t seed;                /* default 1; node i gets seed*1000+i */
};

/* h_new(3, H_OPTS(.pre_vote = true, .check_quorum = true)) */
#define H_OPTS(...) (&(const struct h_opts){ __VA_ARGS__ })

struct harness;

/* ---- Cluster --------------------------------------------------------- */

/* @n voters 1..n (plus o->learners learners), all booted, all followers. */
struct harness *h_new(unsigned n, const struct h_opts *o);
void h_free(struct harness *h);
/* The live core of @id; fails the test when @id is down or unknown. */
struct raft *h_raft(struct harness *h, uint64_t id);
bool h_is_up(const struct harness *h, uint64_t id);
/* Election timeout in ticks that the cores were given. */
unsigned h_election_ticks(const struct harness *h);

/*
 * Replaces @id's saved storage by a synthetic log and restarts it: @terms
 * lists the term of each index from 1 ("1 1 2 3 3"). Index 1 becomes a
 * snapshot (carrying the boot configuration), the others entries with
 * payload "<index>@<term>". hard.term = @term, no vote, commit = 1.
 * For Figure 3.7-style setups; give every node a log.
 */
void set_log(struct harness *h, uint64_t id, uint64_t term, const char *terms);

/* Adds node @id with empty storage and no configuration (not yet member). */
void h_add_node(struct harness *h, uint64_t id);

/* ---- Inputs ---------------------------------------------------------- */

int campaign(struct harness *h, uint64_t id);
/* Ticks @id @n times, processing its ready after each tick. */
void tick(struct harness *h, uint64_t id, unsigned n);
/* Ticks every live node @n times. */
void tick_all(struct harness *h, unsigned n);
/*
 * Ticks @id one tick at a time until its role is @role; returns the ticks it
 * took. Fails the test after @max ticks.
 */
unsigned tick_until_role(
    struct harness *h, uint64_t id, enum raft_role role, unsigned max);
/* Same, until @id's term is at least @term. */
unsigned tick_until_term(
    struct harness *h, uint64_t id, uint64_t term, unsigned max);
/* Returns raft_propose's result; *@index (if not NULL) gets the index. */
int propose(struct harness *h, uint64_t id, const char *data);
int propose_n(struct harness *h, uint64_t id, const void *data, size_t len,
    uint64_t *index);
int read_index(struct harness *h, uint64_t id, uint64_t ctx);
int transfer(struct harness *h, uint64_t from, uint64_t to);
int add_learner(struct harness *h, uint64_t leader, uint64_t id);
int promote(struct harness *h, uint64_t leader, uint64_t id);
int demote(struct harness *h, uint64_t leader, uint64_t id);
int remove_server(struct harness *h, uint64_t leader, uint64_t id);
/*
 * Snapshots @id's state machine at @index, saves it, hands it to the core
 * (trailing 0) and drops the saved log the core no longer needs. Returns
 * raft_snapshot's result.
 */
int compact(struct harness *h, uint64_t id, uint64_t index);
/* Feeds a hand-made message to @to (recorded as a note, not a moved msg). */
int h_step(struct harness *h, uint64_t to, const struct raft_msg *m);

/* ---- Network --------------------------------------------------------- */

/* Handles every pending ready. */
void process(struct harness *h);
/* One round: moves every message queued now, in order. Returns how many. */
size_t deliver(struct harness *h);
/* One round of the queued messages from @from to @to (0: any). */
size_t deliver_only(struct harness *h, uint64_t from, uint64_t to);
/* Drops the queued messages from @from to @to (0: any). */
size_t drop(struct harness *h, uint64_t from, uint64_t to);
/* Rounds until no message is queued and no ready is pending. */
void stabilize(struct harness *h);
/* Campaigns @id, stabilizes, fails unless @id is leader; then h_mark(). */
void elect(struct harness *h, uint64_t id);
void cut(struct harness *h, uint64_t a, uint64_t b);
void isolate(struct harness *h, uint64_t id);
void heal(struct harness *h);
/* Drops the core and unsaved work; queued messages to it will be lost. */
void crash(struct harness *h, uint64_t id);
void restart(struct harness *h, uint64_t id);

/* ---- Transcript and state -------------------------------------------- */

/* Adds a note to the transcript. */
void h_note(struct harness *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Forget moved messages so far (the next EXPECT_MSGS starts here). */
void h_mark(struct harness *h);
/* The shape of one moved message, for checks on sizes and counts. */
struct h_moved {
	uint64_t from, to;
	uint8_t type; /* enum raft_msg_type */
	bool dropped, reject;
	size_t n_entries;
	size_t bytes; /* payload bytes of the entries */
};

/* Moved messages since the mark, in order; *@n gets how many. */
const struct h_moved *h_moved(const struct harness *h, size_t *n);
/* Moved messages since the mark that match @pattern. */
size_t h_count(const struct harness *h, const char *pattern);
/*
 * Position of the first moved message since the mark that matches @pattern
 * (0 for the first message), or -1. For "this before that" checks.
 */
long h_find(const struct harness *h, const char *pattern);
/* Queued messages that match @pattern. */
size_t h_count_queued(struct harness *h, const char *pattern);
size_t h_queue_len(struct harness *h);
void h_dump(const struct harness *h);
/* Renders @m as a transcript line (without the arrow when @m->from is 0). */
void h_render_msg(
    const struct raft_msg *m, bool dropped, char *out, size_t size);
/* The applied payloads of @id joined with ","; valid until the next call. */
const char *h_applied(struct harness *h, uint64_t id);
/* Saved log terms of @id from index 1 ("1 1 2"), "N: ..." if it starts at N. */
const char *h_log(struct harness *h, uint64_t id);
/* "voters=1,2,3 learners=4" for @id's current configuration. */
const char *h_conf(struct harness *h, uint64_t id);
/* The saved hard state of @id. */
struct raft_hard h_saved_hard(const struct harness *h, uint64_t id);
/* @id's vote in its current term (raft_status). */
uint64_t h_vote(struct harness *h, uint64_t id);
/*
 * printf into one of 32 rotating buffers, for patterns with computed values:
 * EXPECT_MSGS(h, pat("1->2 VOTE term=%" PRIu64, t + 1)).
 */
const char *pat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The latest read result for @ctx on @id, or NULL. */
const struct raft_read *h_read(
    const struct harness *h, uint64_t id, uint64_t ctx);

/* ---- Checks (print the transcript and fail the test) ----------------- */

_Noreturn void h_fail_at(struct harness *h, const char *file, int line,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void h_expect_msgs(
    struct harness *h, const char *file, int line, const char *const *want);
void h_expect_queued(
    struct harness *h, const char *file, int line, const char *const *want);
void h_expect_role(struct harness *h, const char *file, int line, uint64_t id,
    enum raft_role role);
void h_expect_u64(struct harness *h, const char *file, int line,
    const char *what, uint64_t got, uint64_t want);
void h_expect_str(struct harness *h, const char *file, int line,
    const char *what, const char *got, const char *want);
void h_expect_read(struct harness *h, const char *file, int line, uint64_t id,
    uint64_t ctx, int ok, uint64_t index);
void h_expect_logs_match(
    struct harness *h, const char *file, int line, uint64_t a, uint64_t b);

#define H_FAIL(h, ...) h_fail_at((h), __FILE__, __LINE__, __VA_ARGS__)
#define H_ASSERT(h, cond)                                                      \
	do {                                                                   \
		if (!(cond))                                                   \
			H_FAIL((h), "assertion failed: %s", #cond);            \
	} while (0)
#define H_EQ(h, a, b)                                                          \
	h_expect_u64((h), __FILE__, __LINE__, #a " == " #b, (a), (b))

/* Exactly these moved messages since the last check (or h_mark). */
#define EXPECT_MSGS(h, ...)                                                    \
	h_expect_msgs((h), __FILE__, __LINE__,                                 \
	    (const char *const[]){ __VA_ARGS__, NULL })
#define EXPECT_NO_MSGS(h)                                                      \
	h_expect_msgs((h), __FILE__, __LINE__, (const char *const[]){ NULL })
/* Exactly these messages in the queue now (processes readies first). */
#define EXPECT_QUEUED(h, ...)                                                  \
	h_expect_queued((h), __FILE__, __LINE__,                               \
	    (const char *const[]){ __VA_ARGS__, NULL })
#define EXPECT_NOTHING_QUEUED(h)                                               \
	h_expect_queued((h), __FILE__, __LINE__, (const char *const[]){ NULL })

#define EXPECT_ROLE(h, id, role)                                               \
	h_expect_role((h), __FILE__, __LINE__, id, role)
#define EXPECT_TERM(h, id, t)                                                  \
	h_expect_u64((h), __FILE__, __LINE__, "term of " #id,                  \
	    raft_term(h_raft((h), (id))), (t))
#define EXPECT_LEADER(h, id, l)                                                \
	h_expect_u64((h), __FILE__, __LINE__, "leader known to " #id,          \
	    raft_leader(h_raft((h), (id))), (l))
#define EXPECT_VOTE(h, id, v)                                                  \
	h_expect_u64(                                                          \
	    (h), __FILE__, __LINE__, "vote of " #id, h_vote((h), (id)), (v))
#define EXPECT_COMMIT(h, id, c)                                                \
	h_expect_u64((h), __FILE__, __LINE__, "commit of " #id,                \
	    raft_commit_index(h_raft((h), (id))), (c))
#define EXPECT_LAST_INDEX(h, id, i)                                            \
	h_expect_u64((h), __FILE__, __LINE__, "last index of " #id,            \
	    raft_last_index(h_raft((h), (id))), (i))
#define EXPECT_APPLIED(h, id, s)                                               \
	h_expect_str((h), __FILE__, __LINE__, "applied by " #id,               \
	    h_applied((h), (id)), (s))
#define EXPECT_LOG(h, id, s)                                                   \
	h_expect_str(                                                          \
	    (h), __FILE__, __LINE__, "log of " #id, h_log((h), (id)), (s))
#define EXPECT_CONF(h, id, s)                                                  \
	h_expect_str((h), __FILE__, __LINE__, "configuration of " #id,         \
	    h_conf((h), (id)), (s))
/* The latest answer to read @ctx on @id: ok with @index (0: any index). */
#define EXPECT_READ_OK(h, id, ctx, index)                                      \
	h_expect_read((h), __FILE__, __LINE__, id, ctx, 1, index)
#define EXPECT_READ_FAILED(h, id, ctx)                                         \
	h_expect_read((h), __FILE__, __LINE__, id, ctx, 0, 0)
#define EXPECT_NO_READ(h, id, ctx)                                             \
	h_expect_read((h), __FILE__, __LINE__, id, ctx, -1, 0)
#define EXPECT_LOGS_MATCH(h, a, b)                                             \
	h_expect_logs_match((h), __FILE__, __LINE__, a, b)

/* ---- Bare cores, for tests that hold a ready by hand ----------------- */

/* A core for node @id in a cluster of voters 1..@n, booted, no harness. */
struct raft *h_core_new(uint64_t id, unsigned n, const struct h_opts *o);
/* Advances @r through every ready, dropping messages; returns how many. */
unsigned h_core_drain(struct raft *r);

/* A message from @from to @to in @term, the rest zero: for h_step(). */
static inline struct raft_msg
msg(enum raft_msg_type type, uint64_t from, uint64_t to, uint64_t term)
{
	struct raft_msg m = { 0 };

	m.type = (uint8_t)type;
	m.from = from;
	m.to = to;
	m.term = term;
	return m;
}

#endif

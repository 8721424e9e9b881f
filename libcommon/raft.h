/*
 * raft.h - the consensus core: a pure state machine.
 *
 * The core has no sockets, clock, files or global randomness. Time arrives
 * only through raft_tick(), peers only through raft_step(), client commands
 * through raft_propose(); everything the core wants done leaves through
 * raft_ready() and goes back through raft_advance() (the etcd Ready contract).
 * The same inputs in the same order give the same outputs, which is what lets
 * tests/sim drive real cores through millions of faulty schedules.
 *
 * Driving loop (after each batch of events):
 *
 *	struct raft_ready rd;
 *	while (raft_ready(r, &rd)) {
 *		save rd.snapshot, rd.hard and rd.entries (fsync if rd.must_sync);
 *		send rd.msgs;
 *		restore rd.snapshot into the state machine, apply rd.committed,
 *		answer rd.reads once the applied index reaches their index;
 *		raft_advance(r, &rd);
 *	}
 *
 * Between raft_ready() returning true and raft_advance() the caller must not
 * call any other raft_* function on the same core: the ready borrows the
 * core's memory and describes exactly one batch.
 *
 * Rules and where they come from (Ongaro, "Consensus: Bridging Theory and
 * Practice", 2014; section numbers are the dissertation's):
 *  - Figure 3.1: terms, votes, log matching, commit; a leader commits only
 *    entries of its own term by counting replicas (§3.6.2), earlier ones
 *    indirectly.
 *  - §6.4: a new leader appends a no-op entry at the start of its term, and
 *    serves ReadIndex reads only after it has committed an entry of its term.
 *  - §9.6: pre-vote; a candidate bumps its term only if a majority would vote.
 *  - §6.2: check-quorum; a leader that has not heard from a majority for an
 *    election timeout steps down.
 *  - §4.2.3: a server that heard from a leader within the minimum election
 *    timeout ignores RequestVote (unless the leader itself asked for it by a
 *    leadership transfer).
 *  - §10.2.1, §10.2.2: pipelined, batched AppendEntries; the leader counts
 *    itself in the commit quorum only for entries it has saved.
 *  - §5.1-§5.3: snapshots, log compaction, InstallSnapshot.
 *  - Ch. 4: one server added or removed at a time; a server uses the latest
 *    configuration in its log whether or not it is committed (§4.1); learners
 *    catch up before they vote (§4.2.1); a leader removed from the
 *    configuration steps down once the change commits (§4.2.2). Erratum to
 *    the dissertation (Ongaro, raft-dev, 2015): a leader may not append a
 *    configuration entry until it has committed an entry of its own term.
 *  - §3.10: leadership transfer.
 */
#ifndef DSC_RAFT_H
#define DSC_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "prng.h"

/* Node ids are non-zero; 0 means "none". */
#define RAFT_NONE 0
/* Upper bound on servers in one configuration (voters and learners). */
#define RAFT_MAX_SERVERS 16
/* Upper bound on one entry's payload; larger proposals get DSC_ETOOBIG. */
#define RAFT_MAX_ENTRY_SIZE (4u << 20)
/* Upper bound on entries in one APPEND, besides max_msg_bytes. */
#define RAFT_MAX_MSG_ENTRIES 65536

enum raft_role {
	RAFT_FOLLOWER = 0,
	RAFT_PRECANDIDATE,
	RAFT_CANDIDATE,
	RAFT_LEADER,
	RAFT_ROLE_MAX
};
const char *raft_role_name(enum raft_role role);

enum raft_entry_type {
	RAFT_ENTRY_NORMAL = 0,	/* application command */
	RAFT_ENTRY_NOOP,	/* appended by a new leader, §6.4; data empty */
	RAFT_ENTRY_CONF,	/* configuration change, see raft_conf_encode */
	RAFT_ENTRY_TYPE_MAX
};

struct raft_entry {
	uint64_t term, index;
	uint8_t type;		/* enum raft_entry_type */
	uint32_t len;
	uint8_t *data;		/* len bytes; NULL when len is 0 */
};

/* A server's role in a configuration. */
enum raft_suffrage {
	RAFT_VOTER = 0,
	RAFT_LEARNER,		/* receives the log, neither votes nor counts */
};

struct raft_server {
	uint64_t id;
	uint8_t suffrage;	/* enum raft_suffrage */
};

/* A configuration: at most RAFT_MAX_SERVERS distinct ids, order kept. */
struct raft_conf {
	uint32_t n;
	struct raft_server servers[RAFT_MAX_SERVERS];
};

/* The single-server changes of chapter 4. */
enum raft_conf_op {
	RAFT_CONF_ADD_LEARNER = 1,	/* add @id as a learner */
	RAFT_CONF_PROMOTE,		/* learner @id becomes a voter */
	RAFT_CONF_REMOVE,		/* remove @id, voter or learner */
	RAFT_CONF_DEMOTE,		/* voter @id becomes a learner */
};

/* Bytes of an encoded RAFT_ENTRY_CONF payload: op (1) + id (8, LE). */
#define RAFT_CONF_CHANGE_SIZE 9

/*
 * Applies @op on @id to @c. Returns 0, or DSC_EINVAL when the change does not
 * make sense (adding a present id, promoting a voter, removing an absent id,
 * a full configuration, id 0); @c is unchanged on error.
 */
int raft_conf_apply(struct raft_conf *c, enum raft_conf_op op, uint64_t id);
/* Index of @id in @c, or -1. */
int raft_conf_find(const struct raft_conf *c, uint64_t id);
uint32_t raft_conf_voters(const struct raft_conf *c);
void raft_conf_encode(uint8_t out[RAFT_CONF_CHANGE_SIZE], enum raft_conf_op op,
		      uint64_t id);
/* Returns 0 or DSC_EINVAL for a payload that is not a valid change. */
int raft_conf_decode(const uint8_t *data, size_t len, enum raft_conf_op *op,
		     uint64_t *id);

/* What must survive a crash besides the log (Figure 3.1 "persistent state"). */
struct raft_hard {
	uint64_t term;
	uint64_t vote;
	uint64_t commit;	/* optional to persist; saves re-learning it */
};

struct raft_snapshot_meta {
	uint64_t index, term;	/* last entry the snapshot covers */
	struct raft_conf conf;	/* configuration as of @index */
};

struct raft_snapshot {
	struct raft_snapshot_meta meta;
	size_t len;
	const uint8_t *data;	/* application state; opaque to the core */
};

enum raft_msg_type {
	RAFT_MSG_APPEND = 0,		/* AppendEntries */
	RAFT_MSG_APPEND_RESP,
	RAFT_MSG_VOTE,			/* RequestVote */
	RAFT_MSG_VOTE_RESP,
	RAFT_MSG_PREVOTE,		/* §9.6 */
	RAFT_MSG_PREVOTE_RESP,
	RAFT_MSG_HEARTBEAT,		/* empty AppendEntries, carries a read round */
	RAFT_MSG_HEARTBEAT_RESP,
	RAFT_MSG_SNAPSHOT,		/* InstallSnapshot; answered by APPEND_RESP */
	RAFT_MSG_TIMEOUT_NOW,		/* §3.10: start an election now */
	RAFT_MSG_READ_INDEX,		/* follower asks the leader for a read index */
	RAFT_MSG_READ_INDEX_RESP,
	RAFT_MSG_TYPE_MAX
};
const char *raft_msg_type_name(enum raft_msg_type type);

/*
 * One message. Which fields mean what, by type:
 *  APPEND:        index/log_term = entry preceding @entries; commit.
 *  APPEND_RESP:   index = last index now matching (or, rejected, the index
 *                 probed); reject; hint/log_term = where the follower's log
 *                 could match (fast backtracking, §5.3 footnote / etcd).
 *  VOTE, PREVOTE: index/log_term = candidate's last entry; transfer = the
 *                 election was started by a leadership transfer.
 *  *_RESP:        reject.
 *  HEARTBEAT:     commit; context = read round. HEARTBEAT_RESP echoes context.
 *  SNAPSHOT:      snapshot.
 *  READ_INDEX:    context = the requester's read id. READ_INDEX_RESP: context,
 *                 index = the read index; reject when the leader could not
 *                 serve it.
 */
struct raft_msg {
	uint8_t type;		/* enum raft_msg_type */
	bool reject;
	bool transfer;
	uint64_t from, to, term;
	uint64_t index, log_term;
	uint64_t commit;
	uint64_t hint;
	uint64_t context;
	size_t n_entries;
	const struct raft_entry *entries;
	struct raft_snapshot snapshot;
};

/*
 * The result of a read request (raft_read_index). When ok, the read may be
 * answered once the state machine has applied @index. When not ok, leadership
 * was lost or could not be confirmed and the read must be retried elsewhere.
 */
struct raft_read {
	uint64_t context;
	uint64_t index;
	bool ok;
};

/*
 * What the core wants done, in this order:
 *  1. snapshot: when not NULL, a snapshot from the leader; save it and drop
 *     the saved log up to its index.
 *  2. hard (when hard_changed) and entries: save. entries[0].index may be at
 *     or below the last saved index: the saved log from there on is replaced.
 *     When must_sync, fsync before going on.
 *  3. msgs: send (any order, any loss; the core copes). A leader's APPEND
 *     and HEARTBEAT messages may go before step 2 when the batch changes
 *     no hard state and carries no snapshot (thesis 10.2.1): the leader
 *     counts its own entries in the quorum only from raft_advance(), so
 *     followers may write them in parallel with its own save.
 *  4. restore the state machine from snapshot if present, then apply
 *     committed in order.
 *  5. reads: answer each once the applied index reaches read.index.
 * Everything here is borrowed from the core until raft_advance().
 */
struct raft_ready {
	const struct raft_snapshot *snapshot;
	bool hard_changed;
	struct raft_hard hard;
	size_t n_entries;
	const struct raft_entry *entries;
	bool must_sync;
	size_t n_msgs;
	const struct raft_msg *msgs;
	size_t n_committed;
	const struct raft_entry *committed;
	size_t n_reads;
	const struct raft_read *reads;
	/* Informational: the role and leader after this batch. */
	enum raft_role role;
	uint64_t leader;
	bool role_changed;
};

/*
 * Optional trace hook: the core never logs; it reports events here. @event is
 * a short line ("became leader at term 2") valid only during the call.
 */
typedef void raft_trace_fn(void *ctx, uint64_t id, const char *event);

struct raft_config {
	uint64_t id;
	uint64_t seed;			/* for randomized election timeouts */
	unsigned election_ticks;	/* base election timeout; default 10 */
	unsigned heartbeat_ticks;	/* default 1; must be < election_ticks */
	bool pre_vote;			/* default on through raft_config_init */
	bool check_quorum;		/* default on through raft_config_init */
	size_t max_msg_bytes;		/* payload per APPEND; default 1 MiB */
	unsigned max_inflight;		/* APPENDs in flight per peer; default 64 */
	size_t max_uncommitted_bytes;	/* leader refuses proposals above; 0 = no limit */
	raft_trace_fn *trace;
	void *trace_ctx;
};

/* Fills @c with the defaults for node @id. */
void raft_config_init(struct raft_config *c, uint64_t id, uint64_t seed);

/*
 * What a node starts from. On first boot: hard all zero, no snapshot, no
 * entries, and bootstrap set to the initial configuration (servers that
 * agree on it form the cluster). On restart: what was saved; bootstrap is
 * ignored when a snapshot or entries exist. A node that is in no
 * configuration starts empty and waits to be added by a leader.
 */
struct raft_state {
	struct raft_hard hard;
	const struct raft_snapshot *snapshot;	/* may be NULL */
	size_t n_entries;
	const struct raft_entry *entries;	/* consecutive after snapshot */
	const struct raft_conf *bootstrap;	/* may be NULL */
	uint64_t applied;	/* state machine's applied index, >= snapshot */
};

struct raft;

/*
 * Creates a core. Copies everything it keeps from @c and @st. Returns NULL
 * and sets *@errp (DSC_EINVAL for an inconsistent state: entries not
 * consecutive, a term behind the log, applied past commit; DSC_ENOMEM) on
 * failure. A saved commit past the last entry is clamped to it (persisting
 * commit is optional). Free with raft_free().
 */
struct raft *raft_new(const struct raft_config *c, const struct raft_state *st,
		      int *errp);
void raft_free(struct raft *r);

/* Advances logical time by one tick. */
void raft_tick(struct raft *r);

/*
 * Feeds a message from a peer. The core copies what it keeps. Returns 0, or
 * DSC_EINVAL for a malformed message, DSC_ENOMEM; on error the message is
 * treated as lost: the log is unchanged, though a higher term and its
 * leader may already have been adopted, as the term rule requires.
 */
int raft_step(struct raft *r, const struct raft_msg *m);

/*
 * Appends a command to the leader's log. On success *@index (if not NULL) is
 * the entry's index: the command is committed when an entry with that index
 * and the returned *@term (if not NULL) is applied. Errors: DSC_ENOTLEADER,
 * DSC_EBUSY (leadership transfer in progress, or too many uncommitted bytes),
 * DSC_ETOOBIG, DSC_ENOMEM.
 */
int raft_propose(struct raft *r, const void *data, size_t len, uint64_t *index,
		 uint64_t *term);

/*
 * Proposes one configuration change (chapter 4). Errors: DSC_ENOTLEADER;
 * DSC_EBUSY when a previous change is not yet committed, when the leader has
 * not yet committed an entry of its own term (the 2015 erratum), when a
 * transfer is in progress, or when a learner to promote has not caught up
 * with the commit index; DSC_EINVAL for a change that makes no sense.
 */
int raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t id,
		      uint64_t *index);

/*
 * Requests a linearizable read (ReadIndex, §6.4). The answer arrives in a
 * later ready's reads with the same @context. Reads requested in one batch
 * share one round of heartbeats. On a follower the request goes to the
 * leader. Errors: DSC_ENOLEADER, DSC_ENOMEM.
 */
int raft_read_index(struct raft *r, uint64_t context);

/*
 * Hands the core a snapshot of the state machine at @index (<= applied).
 * The core copies @data, keeps it to send to lagging followers, and drops its
 * log up to @index - @trailing (entries kept for followers slightly behind).
 * The caller has saved the snapshot before calling and may release its saved
 * log up to raft_first_index() - 1 afterwards. Errors: DSC_EINVAL (index not
 * applied, or older than the current snapshot), DSC_ENOMEM.
 */
int raft_snapshot(struct raft *r, uint64_t index, const void *data, size_t len,
		  uint64_t trailing);

/*
 * Starts a leadership transfer to @target (§3.10). The leader stops taking
 * proposals, brings the target up to date and tells it to campaign; the
 * transfer is abandoned after an election timeout. Errors: DSC_ENOTLEADER,
 * DSC_EINVAL (target unknown, not a voter, or self), DSC_EBUSY.
 */
int raft_transfer_leader(struct raft *r, uint64_t target);

/* Starts an election now (tests, and an operator's "campaign"). */
int raft_campaign(struct raft *r);

/*
 * The driver saw its connection to leader @id fail (reset or closed, as
 * when the leader's process died). Waiting out a full election timeout
 * would only confirm it, so a follower of @id gives up its lease (§4.2.3:
 * it will grant other candidates' votes) and campaigns within
 * RAFT_LOST_JITTER_TICKS ticks, a random number of them, so followers that
 * saw the same failure rarely split the vote. Harmless when the leader is
 * alive after all: with pre-vote, voters still hearing from it refuse, and
 * the leader's next heartbeat restores this follower. A no-op unless this
 * server follows @id.
 */
#define RAFT_LOST_JITTER_TICKS 5
void raft_leader_lost(struct raft *r, uint64_t id);

/* Whether there is anything to do; fills @rd. See struct raft_ready. */
bool raft_ready(struct raft *r, struct raft_ready *rd);
/* Acknowledges that @rd was handled in full. */
void raft_advance(struct raft *r, const struct raft_ready *rd);

/* Read-only views for drivers, tests and status pages. */
struct raft_progress_view {
	uint64_t id;
	uint8_t suffrage;
	uint64_t match, next;
	bool recent_active;
	const char *state;	/* "probe", "replicate" or "snapshot" */
};

struct raft_status {
	uint64_t id;
	enum raft_role role;
	uint64_t term, vote, leader;
	uint64_t commit, applied, last_index, last_term, first_index;
	uint64_t snapshot_index;
	uint64_t transferee;
	struct raft_conf conf;
	uint32_t n_progress;	/* leader only */
	struct raft_progress_view progress[RAFT_MAX_SERVERS];
};

void raft_status(const struct raft *r, struct raft_status *st);
uint64_t raft_id(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_commit_index(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
/* First index still in the in-memory log (snapshot index + 1 when empty). */
uint64_t raft_first_index(const struct raft *r);
const struct raft_conf *raft_conf(const struct raft *r);
/* The latest snapshot (meta.index 0 when none); borrowed until the next
 * raft_snapshot() or raft_advance(). For saving what raft_snapshot() took. */
const struct raft_snapshot *raft_snapshot_get(const struct raft *r);

#endif

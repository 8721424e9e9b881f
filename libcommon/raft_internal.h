/*
 * raft_internal.h - the core's state, shared by raft*.c and nothing else.
 *
 * Files: raft.c (life cycle, roles, elections, the step dispatcher),
 * raft_replicate.c (AppendEntries and InstallSnapshot on both sides, commit),
 * raft_read.c (ReadIndex), raft_membership.c (configurations), raft_ready.c
 * (the outbox, ready/advance, status), raft_log.c, raft_quorum.c.
 *
 * Compile-time mutants. Building with -DRAFT_MUTANT=N plants one deliberate
 * bug so the simulator can show that it catches it (make sim-mutants):
 *   1 vote granted without the up-to-date log check
 *   2 leader commits a previous-term entry by counting replicas
 *   3 a changed term or vote is not reported for saving
 *   4 a leader or candidate adopts a higher term without stepping down
 *   5 ready hands out entries past the commit index to apply
 *   6 the leader skips saving its new entries but counts them as saved
 *   7 a follower truncates after the previous index even when entries match
 *   8 a leader answers ReadIndex without confirming leadership
 */
#ifndef DSC_RAFT_INTERNAL_H
#define DSC_RAFT_INTERNAL_H

#include "raft.h"
#include "raft_log.h"

#ifndef RAFT_MUTANT
#define RAFT_MUTANT 0
#endif
#define MUTANT(n) (RAFT_MUTANT == (n))

/* Bound on max_inflight: the window is a fixed ring inside the progress. */
#define RAFT_MAX_INFLIGHT 256

enum pr_state {
	PR_PROBE = 0,	/* one APPEND at a time until the match is found */
	PR_REPLICATE,	/* pipelined, up to max_inflight in flight */
	PR_SNAPSHOT,	/* a snapshot is on its way; nothing else is sent */
};

/* The leader's view of one peer (Figure 3.1 nextIndex/matchIndex, etcd). */
struct raft_progress {
	uint64_t id;
	uint64_t match, next;
	enum pr_state state;
	bool probe_sent;	/* PROBE: an APPEND is outstanding */
	bool recent_active;	/* heard from since the last quorum check */
	uint64_t pending_snapshot;	/* SNAPSHOT: its index */
	unsigned snapshot_ticks;	/* SNAPSHOT: ticks without an answer */
	uint64_t read_ack;	/* highest read round acknowledged */
	unsigned infl_start, infl_count;
	uint64_t infl[RAFT_MAX_INFLIGHT];	/* last index of each APPEND */
};

/* A read waiting for its heartbeat round (round 0: for an own-term commit). */
struct pending_read {
	uint64_t from, context, index, round;
};

/* A queued message; entries are resolved from the log when the batch ends. */
struct outmsg {
	struct raft_msg m;
	uint64_t lo;		/* index of the first entry, if any */
	uint64_t epoch;		/* the log's epoch when queued */
};

/* A configuration entry in the log, kept to roll back on truncation (§4.1). */
struct conf_mark {
	uint64_t index;
	struct raft_conf conf;
};

struct raft {
	struct raft_config cfg;
	uint64_t id;
	struct prng prng;

	enum raft_role role;
	uint64_t term, vote, lead;
	struct raft_log log;

	/* Configuration: latest in the log (conf), as of log.offset (base). */
	struct raft_conf conf, base_conf;
	struct conf_mark *marks;
	size_t n_marks, cap_marks;
	uint64_t pending_conf_index;

	/* The latest snapshot, owned; snap_pending: received, not yet saved. */
	struct raft_snapshot snap;
	uint8_t *snap_data;
	bool snap_pending;

	unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;

	/* Leader state. */
	struct raft_progress prs[RAFT_MAX_SERVERS];
	uint32_t n_prs;
	uint64_t transferee;
	bool bcast_pending;
	size_t uncommitted_bytes;

	/* Candidate state: who answered and how. */
	uint64_t voted_ids[RAFT_MAX_SERVERS];
	bool voted_yes[RAFT_MAX_SERVERS];
	uint32_t n_voted;

	/* ReadIndex (raft_read.c). */
	uint64_t read_round;
	bool read_round_needed;
	struct pending_read *reads;
	size_t n_reads, cap_reads;
	struct raft_read *read_out;
	size_t n_read_out, cap_read_out;

	/* Outbox and what the last ready handed out. */
	struct outmsg *out;
	size_t n_out, cap_out;
	struct raft_msg *msgs;
	size_t cap_msgs;
	struct raft_hard saved_hard;
	enum raft_role reported_role;
	uint64_t reported_lead;
};

/* raft.c */
void raft_trace(struct raft *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void raft_become_follower(struct raft *r, uint64_t term, uint64_t lead);
bool raft_promotable(const struct raft *r);
bool raft_is_voter(const struct raft *r, uint64_t id);

/* raft_ready.c */
void raft_send(struct raft *r, const struct raft_msg *m);
void raft_send_entries(struct raft *r, const struct raft_msg *m, uint64_t lo,
		       size_t n);
void raft_outbox_clear(struct raft *r);

/* raft_replicate.c */
struct raft_progress *raft_progress_get(struct raft *r, uint64_t id);
void raft_progress_reset(struct raft *r);
void raft_progress_sync(struct raft *r);
bool raft_send_append(struct raft *r, struct raft_progress *pr,
		      bool send_if_empty);
void raft_bcast_append(struct raft *r);
void raft_bcast_heartbeat(struct raft *r);
bool raft_maybe_commit(struct raft *r);
bool raft_quorum_active(struct raft *r);
void raft_step_leader_append_resp(struct raft *r, const struct raft_msg *m);
void raft_step_leader_heartbeat_resp(struct raft *r, const struct raft_msg *m);
int raft_handle_append(struct raft *r, const struct raft_msg *m);
void raft_handle_heartbeat(struct raft *r, const struct raft_msg *m);
int raft_handle_snapshot(struct raft *r, const struct raft_msg *m);
void raft_leader_tick_snapshots(struct raft *r);
int raft_append_local(struct raft *r, uint8_t type, const void *data,
		      size_t len);

/* raft_read.c */
int raft_leader_read(struct raft *r, uint64_t from, uint64_t context);
void raft_reads_check(struct raft *r);
void raft_reads_own_term_committed(struct raft *r);
void raft_reads_fail_all(struct raft *r);
void raft_read_done(struct raft *r, uint64_t context, uint64_t index, bool ok);
void raft_reads_release(struct raft *r);

/* raft_membership.c */
int raft_conf_entry_decode(const struct raft_entry *e, struct raft_conf *c);
int raft_conf_full_encode(const struct raft_conf *c, uint8_t *out,
			  size_t cap, size_t *len);
int raft_marks_reserve(struct raft *r, size_t extra);
int raft_marks_append(struct raft *r, const struct raft_entry *ents, size_t n);
void raft_marks_truncate(struct raft *r, uint64_t after);
void raft_marks_compact(struct raft *r, uint64_t upto);
void raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *c);
uint64_t raft_conf_last_index(const struct raft *r);
void raft_marks_release(struct raft *r);

#endif

/*
 * sim.h - the deterministic Raft simulator's shared state.
 *
 * One struct sim holds everything a seed touches: the nodes (a real raft
 * core each, plus a simulated disk and state machine), the event queue with
 * its virtual clock, the network and its faults, the clients and the
 * invariant checker. Nothing lives in globals, so a seed replays exactly
 * whatever ran before it in the same process, and forked workers need no
 * coordination.
 *
 * Files: sim.c (command line, multi-seed runner), run.c (one seed: setup,
 * event loop, liveness phase, bench), cluster.c (nodes and the ready
 * loop), disk.c (saved state, state machine), net.c (messages, faults,
 * partitions),
 * nemesis.c (crashes, pauses, membership, transfers, compaction),
 * client.c (proposals, reads, acknowledgements), check.c (the invariants),
 * queue.c (the event heap), util.c (allocation, hashing, tracing).
 */
#ifndef DSC_SIM_H
#define DSC_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "prng.h"
#include "raft.h"

/* Node ids 1..SIM_MAX_NODES per seed; an id is never reused. */
#define SIM_MAX_NODES 16
/* Virtual time is in microseconds; one raft tick is this long. */
#define SIM_TICK_US 10000
#define SIM_ELECTION_TICKS 10
#define SIM_ELECTION_US ((uint64_t)SIM_ELECTION_TICKS * SIM_TICK_US)
#define SIM_MAX_CLIENTS 4
/*
 * Liveness: after healing, the cluster may not stall (no log grows, no
 * state machine advances) for this many ticks before a new proposal has
 * committed and every voter converged; nor take longer than the cap in
 * all, however slowly a lagging voter catches up.
 */
#define SIM_LIVENESS_TICKS (20 * SIM_ELECTION_TICKS)
#define SIM_LIVENESS_MAX_TICKS (200 * SIM_ELECTION_TICKS)
/* A drain that keeps producing readies this long is a livelock. */
#define SIM_MAX_READIES 10000
/* Bound on one violation description. */
#define SIM_WHY_MAX 320
/* Default steps (events) per seed before the liveness phase. */
#define SIM_DEFAULT_STEPS 40000

enum sim_mode {
	SIM_MODE_RANDOM = 0,	/* faults chosen by the seed */
	SIM_MODE_DEMO,		/* a scripted, traced run for people */
	SIM_MODE_BENCH,		/* no faults, clients flat out */
};

struct sim_opts {
	uint64_t seed;
	uint64_t steps;		/* 0: SIM_DEFAULT_STEPS */
	int nodes;		/* 0: chosen by the seed */
	bool trace;
	enum sim_mode mode;
	FILE *out;		/* trace and reports */
};

/* What happened in one seed; summed over a multi-seed run. */
#define SIM_STATS(X)                                                           \
	X(steps) X(drops) X(dups) X(delays) X(partitions) X(crashes)           \
	X(restarts) X(pauses) X(confs) X(snaps_installed) X(transfers)         \
	X(compactions) X(proposals) X(acks) X(reads_ok) X(reads_failed)        \
	X(elections) X(seeds_3) X(seeds_5)

struct sim_stats {
#define SIM_STATS_FIELD(f) uint64_t f;
	SIM_STATS(SIM_STATS_FIELD)
#undef SIM_STATS_FIELD
};

/* The sum of the injected faults (consequences such as restarts excluded). */
uint64_t sim_stats_faults(const struct sim_stats *st);
void sim_stats_add(struct sim_stats *to, const struct sim_stats *from);

struct sim_result {
	uint64_t idx, seed;
	struct sim_stats st;
	bool violated;
	uint64_t viol_step;
	char why[SIM_WHY_MAX];
};

/* ---- per-seed behaviour, drawn from the seed ---------------------------- */

enum sim_fault {
	FAULT_PARTITION = 0,
	FAULT_CRASH,
	FAULT_PAUSE,
	FAULT_CONF,
	FAULT_TRANSFER,
	FAULT_MAX
};

struct sim_profile {
	int nodes;
	bool pre_vote, check_quorum;
	size_t max_msg_bytes, max_uncommitted;
	unsigned max_inflight;
	/* network */
	uint64_t lat_min, lat_max;	/* us */
	uint32_t drop_pm, dup_pm, delay_pm;	/* per million messages */
	uint64_t delay_max;		/* us of extra delay */
	/* nemesis */
	uint32_t skew_pm;		/* clock rate spread, per million */
	uint64_t nemesis_mean;		/* us between fault decisions */
	uint32_t weight[FAULT_MAX];
	uint32_t crash_after_vote_pm;
	uint32_t crash_new_leader_pm;
	bool lose_unsynced;
	uint64_t compact_every;		/* us between compaction attempts */
	uint64_t compact_min;		/* entries applied since the snapshot */
	uint64_t trailing_max;
	/* clients */
	int n_clients, window;
	uint64_t client_mean;		/* us between client actions */
	uint32_t read_pm;
};

void sim_profile_draw(struct sim_profile *p, struct prng *rng, int nodes,
		      enum sim_mode mode);

/* ---- disk and state machine -------------------------------------------- */

/*
 * What a node has saved. log[k] has index base + k; chain[k] is the hash
 * chain up to and including it; base_chain the chain at base - 1.
 * Writes of a ready without must_sync stay "unsynced" until the next synced
 * ready; a crash may lose them (synced_hard, synced_last say what stays).
 */
struct sim_disk {
	struct raft_hard hard, synced_hard;
	bool has_snap;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	size_t snap_len;
	uint64_t snap_chain;
	uint64_t base, base_chain;
	struct raft_entry *log;
	uint64_t *chain;
	size_t n, cap;
	uint64_t synced_last;
	bool unsynced;
};

/* The replicated state machine: a hash chain over what was applied. */
struct sim_sm {
	uint64_t applied, term, chain, count;
	struct raft_conf conf;
};

#define SIM_SM_SNAP_MAX (8 * 6 + 4 + RAFT_MAX_SERVERS * 9)

/* A proposal waiting for the node it went to to apply its index. */
struct sim_prop {
	uint64_t index, term, deadline;
	int client;
	uint32_t len;
	uint8_t *data;
};

struct sim_readreq {
	uint64_t ctx, required, deadline;
	int client;
};

enum sim_node_state {
	NODE_FREE = 0,	/* slot never used */
	NODE_UP,
	NODE_DOWN,	/* crashed; the disk survives */
	NODE_GONE,	/* removed from the cluster and decommissioned */
};

struct sim_node {
	uint64_t id;
	enum sim_node_state state;
	struct raft *r;
	struct sim_disk disk;
	struct sim_sm sm;
	uint32_t gen;		/* bumped by every crash: stale events skip */
	bool original;		/* bootstrapped, as opposed to added later */
	bool removed;		/* a committed configuration dropped it */
	uint64_t paused_until;
	uint64_t tick_us;	/* this node's clock: one tick, skewed */
	enum raft_role role;	/* as last reported */
	uint64_t leader;
	uint64_t term;		/* as of the last raft_advance() */
	struct sim_prop *props;	/* sorted by index */
	size_t n_props, cap_props;
	struct sim_readreq *reads;
	size_t n_reads, cap_reads;
};

/* ---- events ----------------------------------------------------------- */

enum sim_ev_kind {
	EV_TICK = 0,
	EV_MSG,
	EV_CLIENT,
	EV_NEMESIS,
	EV_HEAL,
	EV_RESTART,
	EV_RESUME,
	EV_CRASH,
	EV_COMPACT,
	EV_DECOM,
	EV_SCRIPT,
	EV_KIND_MAX
};

struct sim_env;

struct sim_event {
	uint64_t at, seq;
	struct sim_env *env;	/* EV_MSG: owned by the event */
	uint32_t gen;
	uint16_t kind;
	int16_t node;		/* slot, or -1 */
	int64_t arg;
};

struct sim_queue {
	struct sim_event *ev;
	size_t n, cap;
	uint64_t seq;
};

void queue_push(struct sim_queue *q, const struct sim_event *e);
bool queue_pop(struct sim_queue *q, struct sim_event *e);
void queue_release(struct sim_queue *q);

/* ---- network -------------------------------------------------------- */

struct sim_net {
	bool cut[SIM_MAX_NODES][SIM_MAX_NODES];	/* [from][to] */
	bool partitioned;
	bool faulty;		/* drop/dup/delay active */
	uint64_t heartbeats;	/* delivered, for trace summaries */
	uint64_t round_traced[SIM_MAX_NODES];	/* by sender */
};

/* ---- invariants -------------------------------------------------------- */

struct canon {
	uint64_t term, chain;	/* term 0: not known yet */
	uint64_t max_term;	/* highest term any node had at first apply */
};

struct lm_slot {
	uint64_t index, term, chain;
};

struct sim_check {
	uint64_t *leader_of;	/* by term */
	size_t n_leader_of;
	uint64_t *vote[SIM_MAX_NODES];	/* by term: who the node voted for */
	size_t n_vote[SIM_MAX_NODES];
	struct canon *canon;	/* by index: what was applied */
	size_t n_canon;
	uint64_t canon_max;	/* highest index known */
	struct raft_conf conf;	/* committed, as of conf_index */
	uint64_t conf_index;
	struct lm_slot *lm;	/* (index, term) -> chain */
	size_t lm_cap, lm_n;
	uint64_t acked_index, acked_term;
};

/* ---- clients --------------------------------------------------------- */

struct sim_client {
	uint64_t seq;
	uint64_t guess;		/* node id it believes leads */
	int outstanding;
	int reading;
};

enum sim_phase { PHASE_FAULTS = 0, PHASE_LIVENESS, PHASE_DONE };

struct sim {
	struct sim_opts opt;
	struct sim_profile prof;
	struct prng rng;
	uint64_t now, step, max_steps;
	enum sim_phase phase;
	struct sim_queue q;
	struct sim_node nodes[SIM_MAX_NODES];
	int n_slots;		/* slots in use, FREE above */
	struct raft_conf bootstrap;
	struct sim_net net;
	struct sim_check chk;
	struct sim_client clients[SIM_MAX_CLIENTS];
	uint64_t next_ctx;
	struct sim_stats st;
	bool violated;
	uint64_t viol_step;
	char why[SIM_WHY_MAX];
	uint64_t next_status;
	/* liveness phase */
	uint64_t live_index, live_term;
	uint64_t live_progress, live_progress_at;
	bool live_committed;
};

/* run.c */
/* Runs one seed to its verdict; fills *@res (idx left 0). */
void sim_run(const struct sim_opts *o, struct sim_result *res);
int sim_bench(const struct sim_opts *o, uint64_t target, double max_cpu,
	      uint64_t *acked, double *cpu);
/*
 * Queues an event at virtual time @at. For an event aimed at a node
 * (@node >= 0), @arg is the node's generation: the event is dropped if the
 * node crashed in between.
 */
void sim_schedule(struct sim *g, uint64_t at, enum sim_ev_kind kind, int node,
		  int64_t arg);
/* The running leader with the highest term, or NULL. */
struct sim_node *sim_leader(struct sim *g);
bool sim_active(const struct sim *g, const struct sim_node *n);

/* cluster.c */
/* Starts slot @slot as node slot + 1 on an empty disk; @original nodes
 * bootstrap the initial configuration, others wait to be added. */
void cluster_boot(struct sim *g, int slot, bool original);
void cluster_crash(struct sim *g, struct sim_node *n);
void cluster_restart(struct sim *g, struct sim_node *n);
void cluster_decommission(struct sim *g, struct sim_node *n);
/* Handles every ready of @n in contract order, then raft_advance(). */
void cluster_drain(struct sim *g, struct sim_node *n);
void cluster_tick(struct sim *g, struct sim_node *n);
bool cluster_compact(struct sim *g, struct sim_node *n, uint64_t trailing);
bool cluster_disk_has(const struct sim_node *n, uint64_t index, uint64_t term);
void cluster_release(struct sim *g);
int cluster_slot(const struct sim *g, uint64_t id);

/* disk.c */
size_t sm_encode(const struct sim_sm *s, uint8_t out[SIM_SM_SNAP_MAX]);
bool sm_decode(const uint8_t *data, size_t len, struct sim_sm *s);
bool sm_conf_apply_entry(struct raft_conf *c, const struct raft_entry *e);
void disk_init(struct sim_disk *d);
void disk_release(struct sim_disk *d);
uint64_t disk_last(const struct sim_disk *d);
const struct raft_entry *disk_entry(const struct sim_disk *d, uint64_t index);
bool disk_save_entries(struct sim *g, struct sim_node *n,
		       const struct raft_entry *ents, size_t cnt);
void disk_install_snapshot(struct sim_disk *d, const struct raft_snapshot *s,
			   uint64_t chain);
void disk_put_snapshot(struct sim_disk *d,
		       const struct raft_snapshot_meta *meta,
		       const uint8_t *data, size_t len, uint64_t chain);
void disk_compact(struct sim_disk *d, uint64_t first);
void disk_end_ready(struct sim_disk *d, bool wrote, bool sync);
bool disk_lose_unsynced(struct sim_disk *d);

/* net.c */
/* Deep-copies @m (borrowed from a ready) into the network. */
void net_send(struct sim *g, const struct raft_msg *m);
void net_deliver(struct sim *g, struct sim_event *ev);
void net_heal(struct sim *g);
void net_cut(struct sim *g, int from, int to);
void net_env_free(struct sim_env *env);
const char *net_msg_str(const struct raft_msg *m, char *buf, size_t cap);

/* nemesis.c */
void nemesis_start(struct sim *g);
void nemesis_event(struct sim *g, const struct sim_event *ev);
void nemesis_on_vote(struct sim *g, struct sim_node *n);
void nemesis_on_leader(struct sim *g, struct sim_node *n);
void nemesis_heal_all(struct sim *g);
void nemesis_on_removed(struct sim *g, uint64_t id);

/* client.c */
void client_start(struct sim *g);
void client_event(struct sim *g, const struct sim_event *ev);
void client_on_apply(struct sim *g, struct sim_node *n,
		     const struct raft_entry *e);
void client_on_read(struct sim *g, struct sim_node *n,
		    const struct raft_read *rd);
void client_on_restore(struct sim *g, struct sim_node *n, uint64_t index);
void client_node_lost(struct sim *g, struct sim_node *n);
void client_expire(struct sim *g);
int client_propose_live(struct sim *g, struct sim_node *n, uint64_t *index,
			uint64_t *term);

/* check.c: each records a violation through sim_violation(). */
void check_release(struct sim_check *c);
/* After every step: election safety, new leaders, durability. */
void check_step(struct sim *g);
void check_saved(struct sim *g, struct sim_node *n, uint64_t index,
		 uint64_t term, uint64_t chain);
void check_applied(struct sim *g, struct sim_node *n,
		   const struct raft_entry *e, uint64_t chain);
void check_restored(struct sim *g, struct sim_node *n, const struct sim_sm *s,
		    const struct raft_snapshot_meta *meta);
void check_msg_out(struct sim *g, struct sim_node *n,
		   const struct raft_msg *m);
void check_acked(struct sim *g, uint64_t index, uint64_t term);
void check_read(struct sim *g, struct sim_node *n, uint64_t ctx,
		uint64_t index, uint64_t required);
uint64_t check_canon_term(const struct sim *g, uint64_t index);

/* util.c */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
void *xmemdup(const void *p, size_t n);
void sim_grow(void **p, size_t *cap, size_t need, size_t size);
uint64_t sim_mix64(uint64_t x);
uint64_t sim_hash_entry(const struct raft_entry *e);
uint64_t sim_chain(uint64_t prev, uint64_t entry_hash);
void sim_trace(struct sim *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void sim_violation(struct sim *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
__attribute__((noreturn)) void sim_die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif

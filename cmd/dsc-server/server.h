/*
 * server.h - what the parts of dsc-server share: the configuration, the
 * server state, and the calls by which the JSON-RPC layer and the peer links
 * reach the Raft driver (server.c) and the cluster logic (cluster.c).
 *
 * Everything runs on one libevent loop; nothing here is thread-safe and
 * nothing needs to be. Callbacks are never called from inside the call that
 * registers them: results always arrive from the loop, so a caller may
 * register and then finish setting up its own state.
 */
#ifndef DSC_SERVER_H
#define DSC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "catalog.h"
#include "err.h"
#include "raft.h"
#include "wal.h"

#define SERVER_NAME_MAX 64	/* node names, as catalog names */
#define SERVER_ADDR_MAX 64	/* "ADDR:PORT" */
#define SERVER_MAX_JOINS 16
#define SERVER_DEFAULT_PORT 8300
#define SERVER_VERSION "0.1.0"	/* --version, and "Build" in status.members */
#define SERVER_BUILD_MAX 32
/* The one datacenter: the server never renames the catalog's (dc1). */
#define SERVER_DATACENTER "dc1"
/* --node-ttl: how long a node may go without a heartbeat (liveness.h). */
#define SERVER_NODE_TTL_DEFAULT_MS 10000
#define SERVER_NODE_TTL_MIN_MS 1000
#define SERVER_NODE_TTL_MAX_MS 3600000

struct peers;
struct rpc;
struct listener;
struct liveness;

struct server_peer_addr {
	char name[SERVER_NAME_MAX];
	char addr[SERVER_ADDR_MAX];
};

struct server_config {
	char name[SERVER_NAME_MAX];
	char bind[SERVER_ADDR_MAX];		/* ADDR:PORT, default port 8300 */
	char data_dir[4096];
	char key_file[4096];
	unsigned bootstrap_expect;
	char joins[SERVER_MAX_JOINS][SERVER_ADDR_MAX];
	size_t n_joins;
	/* Per-peer address overrides (by name), e.g. a delay proxy. */
	struct server_peer_addr peer_addrs[RAFT_MAX_SERVERS];
	size_t n_peer_addrs;
	unsigned tick_ms;			/* default 100 */
	unsigned election_ticks;		/* default 10 */
	uint64_t snapshot_every;		/* entries between snapshots */
	uint64_t snapshot_trailing;		/* entries kept behind one */
	size_t segment_size;			/* WAL segment bytes; 0: default */
	unsigned node_ttl_ms;			/* --node-ttl */
	int log_level;
	bool log_time;
};

/* What is known about another server (from INTRO frames or the config). */
struct server_member {
	uint64_t id;
	char name[SERVER_NAME_MAX];
	char addr[SERVER_ADDR_MAX];
	unsigned expect;	/* its --bootstrap-expect */
	bool in_cluster;	/* it has a Raft configuration */
	bool link_up;
	char build[SERVER_BUILD_MAX];	/* its version, from its INTRO */
	uint64_t heard_tick;	/* tick of its last Raft message to us */
	bool heard;		/* heard_tick is set */
};

struct server_wait;	/* a waiting proposal, read or watch; see below */

struct server {
	struct event_base *base;
	struct server_config cfg;
	uint64_t id;		/* Raft id, random at first start, kept in the data dir */
	struct raft *raft;
	struct wal *wal;
	struct catalog *catalog;
	uint8_t key[AUTH_KEY_SIZE];
	struct auth_rpc_key rpc_key;
	struct replay_cache replay;
	struct peers *peers;
	struct rpc *rpc;
	struct listener *listener;
	struct liveness *liveness;	/* node heartbeats (liveness.c) */

	struct server_member self;	/* this server, as others see it */
	struct server_member members[RAFT_MAX_SERVERS * 2];
	size_t n_members;

	struct event *tick_ev, *drain_ev;
	struct event *sigterm_ev, *sigint_ev, *sighup_ev;
	bool stopping;		/* SIGTERM seen: transferring, then exit */
	uint64_t stop_deadline;	/* tick by which to exit regardless */
	int exit_code;
	uint64_t last_contact_tick;	/* tick of the last message from a leader */
	uint64_t ticks;

	/* Waiters (server.c), one list per kind; proposals in index order. */
	struct server_wait *waits[4];
	bool disk_stalled;	/* a save failed with ENOSPC: retrying */
	struct event *retry_ev;
	uint64_t next_context;		/* read-index contexts */
	uint64_t next_forward;		/* forwarded proposal ids */
	uint64_t last_snapshot_index;

	struct {
		uint64_t proposals, forwarded, reads, watches;
		uint64_t wal_syncs, wal_errors;
		uint64_t rpc_requests, rpc_auth_failures;
	} stats;		/* status.stats; peers and rpc keep their own too */
	bool wal_failed;	/* after an fsync failure nothing is acked */
};

/* ---- waiting for the cluster (server.c) --------------------------------- */

/*
 * A proposal's outcome: @rv is 0 when the command was committed and applied
 * at @index, with @result the catalog's reply (borrowed for the call); else
 * a DSC_E* code (DSC_ENOLEADER, DSC_ETIMEDOUT, DSC_ENOSPC, ...) and @result
 * NULL. Called exactly once unless the wait is cancelled first.
 */
typedef void server_propose_fn(void *arg, int rv, uint64_t index,
			       json_t *result);

/*
 * Proposes catalog command @cmd (@len bytes; copied). On the leader it goes
 * to the core; on a follower it is forwarded to the leader over the peer
 * link. Fails at once (returns non-zero, no callback) when there is no
 * leader, the WAL has failed, or the command is invalid (@err says why).
 * @timeout_ms bounds the wait (0: default 10 s). The returned handle may be
 * passed to server_wait_cancel() until the callback has run.
 */
struct server_wait *server_propose(struct server *s, const void *cmd,
				   size_t len, unsigned timeout_ms,
				   server_propose_fn *fn, void *arg,
				   struct dsc_err *err);

/* A read barrier's outcome: 0 when the local catalog may now be read
 * linearizably, else a DSC_E* code. */
typedef void server_read_fn(void *arg, int rv);

/* ReadIndex (§6.4): calls @fn once this server has applied an index at
 * least as new as the cluster's commit index at the time of the call. */
struct server_wait *server_read_barrier(struct server *s, unsigned timeout_ms,
					server_read_fn *fn, void *arg,
					struct dsc_err *err);

/* A watch fires (rv 0) when catalog_index(@watch_key) > @index, or with
 * DSC_ETIMEDOUT after @wait_ms, which must be > 0: every wait is bounded
 * (callers turn a client's 0 into the default, as Consul does). */
typedef void server_watch_fn(void *arg, int rv);
struct server_wait *server_watch(struct server *s, const char *watch_key,
				 uint64_t index, unsigned wait_ms,
				 server_watch_fn *fn, void *arg);

/* Proposes a configuration change on the leader; the callback runs once
 * it is applied (DSC_ENOTLEADER elsewhere, DSC_EBUSY while another change
 * or a new term is settling). */
struct server_wait *server_propose_conf(struct server *s, enum raft_conf_op op,
					uint64_t id, server_propose_fn *fn,
					void *arg, struct dsc_err *err);
/* A wait whose outcome is already known ({"ok":..., "note":@note}),
 * delivered from the loop like any other. */
struct server_wait *server_defer_result(struct server *s,
					server_propose_fn *fn, void *arg,
					int rv, const char *note);

/* Forgets a wait whose owner went away; its callback will not run. */
void server_wait_cancel(struct server *s, struct server_wait *w);

/* The leader's advertised address and name, or NULL when none is known. */
const struct server_member *server_leader(const struct server *s);
/* Milliseconds since a leader was last heard from (0 on the leader). */
uint64_t server_last_contact_ms(const struct server *s);

/* Takes a snapshot now (operator.snapshot); returns its index or 0. */
uint64_t server_snapshot_now(struct server *s, struct dsc_err *err);

/* ---- peer traffic into the driver (server.c) ---------------------------- */

void server_on_raft(void *s, const struct raft_msg *m);
void server_on_frame(void *s, uint64_t from, uint8_t kind, const uint8_t *p,
		     size_t len);

/* Builds and runs the server on @base (main.c prepares cfg, key, id). */
int server_start(struct server *s, struct dsc_err *err);
/* Stops: a leader transfers leadership first (SIGTERM, SIGINT). */
void server_stop(struct server *s, int exit_code);
void server_release(struct server *s);
/* Asks for a drain of the core after the current batch of events. */
void server_kick(struct server *s);
/* Recreates the core with an initial configuration (cluster.c bootstrap). */
int server_bootstrap(struct server *s, const struct raft_conf *conf,
		     struct dsc_err *err);

/* ---- the one port (listen.c) -------------------------------------------- */

/* Listens on cfg.bind; DSC_EBUSY when the port is taken. */
int listener_start(struct server *s, struct dsc_err *err);
void listener_free(struct listener *l);

/* ---- cluster membership (cluster.c) -------------------------------------- */

/* Applied configuration changed (or a snapshot restored one). */
void cluster_on_conf(struct server *s);
/* A JOIN frame (PEER_FRAME_JOIN): a server asks to be added. */
void cluster_on_join(struct server *s, uint64_t from, const uint8_t *p,
		     size_t len);
/* Loads and saves the member cache (data dir, members.json). */
void cluster_load(struct server *s);

/* A Raft message arrived from server @id: it is reachable (status). */
void cluster_heard(struct server *s, uint64_t id);
/* An INTRO frame arrived from @from (its id proven by the handshake). */
void cluster_on_intro(void *s, uint64_t from, const char *json, size_t len);
void cluster_on_link(void *s, uint64_t id, bool up);
/* Called every tick: bootstrap when enough servers are known; on the
 * leader, promote caught-up learners and keep the servers' addresses in
 * the catalog. */
void cluster_tick(struct server *s);
/* The INTRO this server sends (JSON text; static buffer). */
const char *cluster_intro(struct server *s);
/* operator.add_server / remove_server. */
struct server_wait *cluster_add_server(struct server *s, const char *name,
				       const char *addr, server_propose_fn *fn,
				       void *arg, struct dsc_err *err);
struct server_wait *cluster_remove_server(struct server *s, const char *name,
					  server_propose_fn *fn, void *arg,
					  struct dsc_err *err);
const struct server_member *cluster_member_by_id(const struct server *s,
						 uint64_t id);
const struct server_member *cluster_member_by_name(const struct server *s,
						   const char *name);

/* Peer frame kinds (README.md, "Peer frames"). */
enum peer_frame_kind {
	PEER_FRAME_RAFT = 1,
	PEER_FRAME_INTRO = 2,
	PEER_FRAME_PROPOSE = 3,
	PEER_FRAME_PROPOSE_RESULT = 4,
	PEER_FRAME_JOIN = 5,		/* an INTRO-shaped request to be added */
};

#endif

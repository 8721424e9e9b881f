/*
 * liveness.h - node liveness: the leader keeps each agent's node-level
 * "serfHealth" check (consul-api.md 2.7) in step with its heartbeats, so a
 * dead agent's services leave ?passing answers with no manual cleanup.
 *
 * An agent calls node.heartbeat on the leader every few seconds. The
 * leader remembers when it last heard from each node (soft state, on a
 * monotonic clock, never replicated). A heartbeat for a node whose
 * serfHealth check is missing or not passing proposes a registration that
 * makes it passing; any other heartbeat is answered at once. Every
 * node_ttl/4 the leader sweeps the catalog: a node whose serfHealth is
 * passing and that has not been heard from within node_ttl -- counted from
 * the later of its last heartbeat and the moment this server became leader,
 * so a new leader gives every node a full TTL of grace -- is marked
 * critical. A node is therefore marked between node_ttl and 1.25 node_ttl
 * after its last heartbeat, plus a commit. Nodes without a serfHealth
 * check (registered through the catalog API by others) are never touched.
 *
 * The leader's writes carry no ClientID: they are its own, like reaping.
 */
#ifndef DSC_LIVENESS_H
#define DSC_LIVENESS_H

#include <stdint.h>

#include "err.h"
#include "server.h"

#define LIVENESS_CHECK_ID   "serfHealth"
#define LIVENESS_CHECK_NAME "Serf Health Status"
#define LIVENESS_ALIVE      "Agent alive and reachable"
#define LIVENESS_DEAD       "Agent not live or unreachable"
/* Nodes the leader remembers heartbeats of; more are refused (DSC_EBUSY). */
#define LIVENESS_NODES_MAX  65536
/* Critical marks proposed by one sweep; the rest wait for the next. */
#define LIVENESS_SWEEP_MAX  256

/* Sets up the sweep timer on s->base; DSC_ENOMEM. */
int liveness_start(struct server *s, struct dsc_err *err);
/* Cancels what liveness waits for and frees it; NULL-safe. */
void liveness_free(struct server *s);
/* The Raft role may have changed: a new leader starts its grace period, a
 * former one forgets every heartbeat. Cheap; call whenever in doubt. */
void liveness_on_role(struct server *s);

/* A heartbeat's params, borrowed for the call; @id may be NULL. */
struct liveness_beat {
	const char *node, *address, *id;
};

/*
 * Records heartbeat @b. Returns 0 with *@wait NULL when the node's
 * serfHealth is already passing (*@index is then the node's index), or 0
 * with *@wait set when a registration was proposed: @fn runs once it is
 * applied, as for server_propose(). Errors: DSC_ENOTLEADER on any server
 * but the leader, DSC_EINVAL for a registration the catalog would refuse,
 * DSC_EBUSY when LIVENESS_NODES_MAX nodes are remembered, and
 * server_propose()'s.
 */
int liveness_heartbeat(struct server *s, const struct liveness_beat *b,
    server_propose_fn *fn, void *arg, struct server_wait **wait,
    uint64_t *index, struct dsc_err *err);

/* ---- the JSON-RPC methods (rpc_status.c) --------------------------------- */

struct rpc_call;

/* node.heartbeat: Node, Address, optional ID. */
void rpc_node_heartbeat(struct rpc_call *call);
/* status.members: servers, then agents' nodes; optional Leader. */
void rpc_status_members(struct rpc_call *call);

#endif

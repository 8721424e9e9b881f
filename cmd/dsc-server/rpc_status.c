/*
 * rpc_status.c - the status.* and operator.* methods: what this server
 * knows of the cluster (no catalog read, no barrier: status answers what
 * this server believes now, which is what an operator debugging a split
 * wants), and membership changes and snapshots, which run on the leader.
 * Also node.heartbeat, the agents' side of liveness.h.
 *
 * Whether a server is reachable is known honestly only on the leader, the
 * one server every other talks to all the time: a peer is reachable there
 * when its last Raft message came within an election timeout. Elsewhere
 * status.members can only say whether the peer link is up, and
 * status.peers says nothing; "Leader": true makes a non-leader refuse
 * (DSC_ENOTLEADER) so a client's failover ends on the leader.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "catalog.h"
#include "httpd.h"
#include "liveness.h"
#include "log.h"
#include "peers.h"
#include "raft.h"
#include "rpc.h"
#include "rpc_internal.h"
#include "server.h"

/* Answers with @res (taken) plus the read metadata at the applied index. */
static void
reply_applied(struct rpc_call *call, json_t *res)
{
	if (res != NULL &&
	    rpc_add_read_meta(
	        call, res, catalog_applied_index(call->s->catalog)) != 0) {
		json_decref(res);
		res = NULL;
	}
	rpc_reply(call, res);
}

void
rpc_status_leader(struct rpc_call *call)
{
	const char *name, *addr;

	rpc_leader(call->s, &name, &addr);
	reply_applied(
	    call, json_pack("{s:s, s:s}", "leader", addr, "leader_name", name));
}

/* False when it answered: a bad "Leader", or "Leader" off the leader. */
static bool
leader_wanted(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;
	json_t *v = json_object_get(call->params, "Leader");

	if (v != NULL && !json_is_boolean(v)) {
		rpc_reply_error(call, RPC_E_INVALID_PARAMS,
		    "param 'Leader' must be true or false", NULL);
		return false;
	}
	if (json_is_true(v) && raft_role(call->s->raft) != RAFT_LEADER) {
		dsc_errorf(&err, DSC_ENOTLEADER,
		    "not the leader: only the leader knows who is reachable");
		rpc_reply_dsc(call, &err, NULL);
		return false;
	}
	return true;
}

/*
 * On the leader: whether server @id spoke within an election timeout;
 * *@ago_ms is how long ago it last did, -1 when never.
 */
static bool
reachable(const struct server *s, uint64_t id, int64_t *ago_ms)
{
	const struct server_member *m = cluster_member_by_id(s, id);
	uint64_t timeout = (uint64_t)s->cfg.election_ticks * s->cfg.tick_ms;

	*ago_ms = id == s->id ? 0 : -1;
	if (id == s->id)
		return true;
	if (m == NULL || !m->heard)
		return false;
	*ago_ms = (int64_t)((s->ticks - m->heard_tick) * s->cfg.tick_ms);
	return (uint64_t)*ago_ms <= timeout;
}

static json_t *
peer_json(const struct server *s, const struct raft_status *st, uint32_t i)
{
	const struct raft_server *sv = &st->conf.servers[i];
	const struct server_member *m = cluster_member_by_id(s, sv->id);
	char id[17];
	json_t *p;
	uint32_t k;

	snprintf(id, sizeof(id), "%016" PRIx64, sv->id);
	p = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "name",
	    sv->id == s->id ? s->cfg.name
	        : m         ? m->name
	                    : "",
	    "addr",
	    sv->id == s->id ? s->cfg.bind
	        : m         ? m->addr
	                    : "",
	    "suffrage", sv->suffrage == RAFT_VOTER ? "voter" : "learner",
	    "leader", sv->id == st->leader);
	/* What the leader knows of each follower's log; nobody else knows. */
	for (k = 0; p != NULL && k < st->n_progress; k++)
		if (st->progress[k].id == sv->id &&
		    json_object_set_new(p, "match",
		        json_integer((json_int_t)st->progress[k].match))) {
			json_decref(p);
			p = NULL;
		}
	if (p != NULL && st->role == RAFT_LEADER) {
		int64_t ago;
		bool up = reachable(s, sv->id, &ago);

		if (json_object_set_new(p, "reachable", json_boolean(up)) ||
		    json_object_set_new(p, "last_contact_ms",
		        ago < 0 ? json_null() : json_integer(ago))) {
			json_decref(p);
			p = NULL;
		}
	}
	return p;
}

void
rpc_status_peers(struct rpc_call *call)
{
	struct raft_status st;
	json_t *res, *peers;
	uint32_t i;

	if (!leader_wanted(call))
		return;
	peers = json_array();
	raft_status(call->s->raft, &st);
	for (i = 0; peers != NULL && i < st.conf.n; i++)
		if (json_array_append_new(peers, peer_json(call->s, &st, i))) {
			json_decref(peers);
			peers = NULL;
		}
	res = peers == NULL
	    ? NULL
	    : json_pack("{s:o, s:I, s:I, s:I, s:I, s:s}", "peers", peers,
	          "term", (json_int_t)st.term, "commit", (json_int_t)st.commit,
	          "applied", (json_int_t)st.applied, "last_index",
	          (json_int_t)st.last_index, "role", raft_role_name(st.role));
	reply_applied(call, res);
}

/* ---- status.members -------------------------------------------------- */

/* "ADDR:PORT" or "[V6]:PORT" into its host and port ("" and 0 if bad). */
static void
split_addr(const char *addr, char *host, size_t cap, int *port)
{
	const char *colon = strrchr(addr, ':');
	size_t n;

	host[0] = '\0';
	*port = 0;
	if (colon == NULL)
		return;
	n = (size_t)(colon - addr);
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		addr++;
		n -= 2;
	}
	if (n >= cap)
		return;
	memcpy(host, addr, n);
	host[n] = '\0';
	*port = atoi(colon + 1);
}

static const char *
server_state(const struct server *s, const struct raft_status *st, uint64_t id)
{
	const struct server_member *m = cluster_member_by_id(s, id);
	int64_t ago;

	if (id == s->id)
		return "alive";
	if (st->role == RAFT_LEADER)
		return reachable(s, id, &ago) ? "alive" : "failed";
	if (m == NULL)
		return "unknown";
	return m->link_up ? "alive" : "failed";
}

static json_t *
server_member_json(const struct server *s, const struct raft_status *st,
    const struct raft_server *sv)
{
	const struct server_member *m =
	    sv->id == s->id ? &s->self : cluster_member_by_id(s, sv->id);
	char id[17], host[SERVER_ADDR_MAX];
	int port;

	snprintf(id, sizeof(id), "%016" PRIx64, sv->id);
	split_addr(m != NULL ? m->addr : "", host, sizeof(host), &port);
	return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "Name", m != NULL ? m->name : "", "Addr", host, "Port", port,
	    "Status", server_state(s, st, sv->id), "Type", "server", "Role",
	    sv->id == st->leader             ? "leader"
	        : sv->suffrage == RAFT_VOTER ? "voter"
	                                     : "learner",
	    "Build",
	    sv->id == s->id ? SERVER_VERSION
	        : m != NULL ? m->build
	                    : "",
	    "DC", SERVER_DATACENTER, "ID", id);
}

static int
cmp_name(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;

	return strcasecmp(json_string_value(json_object_get(x, "Name")),
	    json_string_value(json_object_get(y, "Name")));
}

/* The servers of the configuration as members, sorted by name. */
static json_t *
server_members(const struct server *s, const struct raft_status *st)
{
	json_t *v[RAFT_MAX_SERVERS], *out = json_array();
	uint32_t i, n = 0;

	for (i = 0; i < st->conf.n; i++)
		if ((v[n] = server_member_json(s, st, &st->conf.servers[i])))
			n++;
	qsort(v, n, sizeof(v[0]), cmp_name);
	for (i = 0; i < n; i++) {
		if (out == NULL)
			json_decref(v[i]);
		else if (json_array_append_new(out, v[i]) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return n == st->conf.n ? out : (json_decref(out), NULL);
}

static bool
is_server_name(const json_t *servers, const char *name)
{
	size_t i;
	json_t *m;

	json_array_foreach(servers, i, m) {
		if (strcasecmp(json_string_value(json_object_get(m, "Name")),
		        name) == 0)
			return true;
	}
	return false;
}

/*
 * Appends the agents' nodes -- catalog nodes with a serfHealth check --
 * to @out (sorted: catalog_nodes() is), skipping names of servers.
 */
static int
client_members(const struct server *s, json_t *out, size_t n_servers)
{
	json_t *nodes = catalog_nodes(s->catalog, NULL), *n, *servers, *m;
	size_t i;
	int rv = 0;

	servers = json_array();
	for (i = 0; servers != NULL && i < n_servers; i++)
		json_array_append(servers, json_array_get(out, i));
	json_array_foreach(nodes, i, n) {
		const char *name =
		    json_string_value(json_object_get(n, "Node"));
		const char *addr =
		    json_string_value(json_object_get(n, "Address"));
		const char *id = json_string_value(json_object_get(n, "ID"));
		enum catalog_state st;

		if (name == NULL || is_server_name(servers, name))
			continue;
		st = catalog_check_state(s->catalog, name, LIVENESS_CHECK_ID);
		if (st == CATALOG_STATE_ANY)
			continue;
		m = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s}",
		    "Name", name, "Addr", addr != NULL ? addr : "", "Port", 0,
		    "Status",
		    st == CATALOG_STATE_PASSING        ? "alive"
		        : st == CATALOG_STATE_CRITICAL ? "failed"
		                                       : "unknown",
		    "Type", "client", "Role", "", "Build", "", "DC",
		    SERVER_DATACENTER, "ID", id != NULL ? id : "");
		if (m == NULL || json_array_append_new(out, m) != 0) {
			rv = DSC_ENOMEM;
			break;
		}
	}
	if (nodes == NULL || servers == NULL)
		rv = DSC_ENOMEM;
	json_decref(servers);
	json_decref(nodes);
	return rv;
}

void
rpc_status_members(struct rpc_call *call)
{
	struct raft_status st;
	json_t *members;

	if (!leader_wanted(call))
		return;
	raft_status(call->s->raft, &st);
	members = server_members(call->s, &st);
	if (members != NULL &&
	    client_members(call->s, members, json_array_size(members)) != 0) {
		json_decref(members);
		members = NULL;
	}
	reply_applied(call,
	    members != NULL ? json_pack("{s:o}", "members", members) : NULL);
}

/* ---- node.heartbeat ------------------------------------------------------ */

static json_t *
beat_result(const struct server *s, uint64_t index)
{
	return json_pack("{s:b, s:I, s:I}", "ok", 1, "index", (json_int_t)index,
	    "ttl_ms", (json_int_t)s->cfg.node_ttl_ms);
}

static void
heartbeat_done(void *arg, int rv, uint64_t index, json_t *result)
{
	struct rpc_call *call = arg;

	if (rv != 0 || json_object_get(result, "error") != NULL) {
		rpc_write_done(arg, rv, index, result);
		return;
	}
	call->wait = NULL;
	rpc_reply(call, beat_result(call->s, index));
}

void
rpc_node_heartbeat(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct liveness_beat b;
	uint64_t index = 0;

	if (rpc_str_param(call, "Node", true, false, CATALOG_NAME_MAX, &b.node,
	        &err) != 0 ||
	    rpc_str_param(call, "Address", true, false, CATALOG_ADDR_MAX,
	        &b.address, &err) != 0 ||
	    rpc_str_param(
	        call, "ID", false, true, CATALOG_ID_MAX, &b.id, &err) != 0) {
		rpc_reply_error(
		    call, RPC_E_INVALID_PARAMS, dsc_err_msg(&err), NULL);
		return;
	}
	if (liveness_heartbeat(call->s, &b, heartbeat_done, call, &call->wait,
	        &index, &err) != 0) {
		if (err.code == DSC_EINVAL)
			rpc_reply_error(call, RPC_E_INVALID_PARAMS,
			    dsc_err_msg(&err),
			    json_pack("{s:s, s:i}", "name",
			        dsc_errname(err.code), "exit",
			        dsc_exit_class(err.code)));
		else
			rpc_reply_dsc(call, &err, NULL);
		return;
	}
	if (call->wait == NULL)
		rpc_reply(call, beat_result(call->s, index));
}

/*
 * status.stats: the counters behind "refused, logged and counted" -- peer
 * links that failed authentication, refused requests, failed saves -- so
 * operators and tests can see them.
 */
void
rpc_status_stats(struct rpc_call *call)
{
	const struct server *s = call->s;
	struct peers_stats ps;
	struct rpc_stats rs;
	json_t *res;

	peers_stats(s->peers, &ps);
	rpc_stats(s->rpc, &rs);
	res = json_pack(
	    "{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:b},"
	    " s:{s:I, s:I, s:I, s:I, s:I},"
	    " s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "server", "proposals", (json_int_t)s->stats.proposals, "forwarded",
	    (json_int_t)s->stats.forwarded, "reads", (json_int_t)s->stats.reads,
	    "watches", (json_int_t)s->stats.watches, "wal_syncs",
	    (json_int_t)s->stats.wal_syncs, "wal_errors",
	    (json_int_t)s->stats.wal_errors, "disk_stalled", s->disk_stalled,
	    "wal_failed", s->wal_failed,
	    "rpc", "requests", (json_int_t)rs.requests, "auth_failures",
	    (json_int_t)rs.auth_failures, "errors", (json_int_t)rs.errors,
	    "open_conns", (json_int_t)rs.open_conns, "parked",
	    (json_int_t)rs.parked,
	    "peers", "auth_failures", (json_int_t)ps.auth_failures,
	    "proto_errors", (json_int_t)ps.proto_errors, "frames_in",
	    (json_int_t)ps.frames_in, "frames_out", (json_int_t)ps.frames_out,
	    "connects", (json_int_t)ps.connects, "disconnects",
	    (json_int_t)ps.disconnects, "dropped", (json_int_t)ps.dropped,
	    "bytes_out", (json_int_t)ps.bytes_out);
	reply_applied(call, res);
}

/* operator.add_server (@add) or operator.remove_server. */
static void
operator_server(struct rpc_call *call, bool add)
{
	struct dsc_err err = DSC_ERR_INIT;
	const char *name, *addr = NULL;

	if (rpc_str_param(call, "Name", true, false, SERVER_NAME_MAX - 1, &name,
	        &err) != 0 ||
	    (add &&
	        rpc_str_param(call, "Address", true, false, SERVER_ADDR_MAX - 1,
	            &addr, &err) != 0)) {
		rpc_reply_error(
		    call, RPC_E_INVALID_PARAMS, dsc_err_msg(&err), NULL);
		return;
	}
	log_info("rpc: %s: %s server '%s'", httpd_req_peer(call->req),
	    add ? "adding" : "removing", name);
	if (add)
		call->wait = cluster_add_server(
		    call->s, name, addr, rpc_write_done, call, &err);
	else
		call->wait = cluster_remove_server(
		    call->s, name, rpc_write_done, call, &err);
	if (call->wait == NULL)
		rpc_reply_dsc(call, &err, NULL);
}

void
rpc_operator_add(struct rpc_call *call)
{
	operator_server(call, true);
}

void
rpc_operator_remove(struct rpc_call *call)
{
	operator_server(call, false);
}

void
rpc_operator_snapshot(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;
	uint64_t index = server_snapshot_now(call->s, &err);

	if (index == 0 && err.code != 0) {
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	rpc_reply(call,
	    json_pack("{s:I, s:I}", "snapshot_index", (json_int_t)index,
	        "index", (json_int_t)index));
}

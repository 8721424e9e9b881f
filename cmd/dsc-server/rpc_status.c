/*
 * rpc_status.c - the status.* and operator.* methods: what this server
 * knows of the cluster (no catalog read, no barrier: status answers what
 * this server believes now, which is what an operator debugging a split
 * wants), and membership changes and snapshots, which run on the leader.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "catalog.h"
#include "httpd.h"
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
	return p;
}

void
rpc_status_peers(struct rpc_call *call)
{
	struct raft_status st;
	json_t *res, *peers = json_array();
	uint32_t i;

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

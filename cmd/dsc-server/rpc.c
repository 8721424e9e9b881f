/*
 * rpc.c - JSON-RPC 2.0 over HTTP/1.1 on the server's port (README.md,
 * "JSON-RPC over HTTP"): routing, authentication, the envelope, replies.
 * The methods are in rpc_methods.c (catalog, health, kv) and
 * rpc_status.c (status, operator).
 *
 * A request goes: path and method checked (GET /health needs no
 * authentication), then the four X-Dsc-* headers verified against the
 * MAC over method, target and body (the only place a clock is read), then
 * the body parsed as one JSON-RPC 2.0 request object, then the method
 * started. Nothing reaches a method unauthenticated. Each request becomes
 * a struct rpc_call that ends with exactly one reply; if the client goes
 * away first, the call cancels its server wait and is freed without one.
 *
 * HTTP statuses: 200 for every JSON-RPC response, result or error (the
 * JSON-RPC error says what went wrong); 204 with no body for a
 * notification (a request without "id": JSON-RPC 2.0 §4.1, no response
 * object, even for an error); 401 for a refused authentication; 503 when
 * the replay cache is full; 404, 405 and 415 for the wrong path, method
 * or content type.
 */
#include "rpc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "httpd.h"
#include "log.h"
#include "raft.h"
#include "rpc_internal.h"
#include "rpcs.h"
#include "server.h"

#define JSON_TYPE "application/json"

/* ---- replies ------------------------------------------------------------ */

static void
call_free(struct rpc_call *call)
{
	json_decref(call->id);
	json_decref(call->params);
	free(call);
}

/* The client went away: stop waiting, release everything. */
static void
call_closed(struct httpd_req *req, void *arg)
{
	struct rpc_call *call = arg;

	log_debug("rpc: %s: client went away", httpd_req_peer(req));
	server_wait_cancel(call->s, call->wait);
	call->wait = NULL;
	httpd_req_drop(req);
	call_free(call);
}

static void
respond_plain(struct httpd_req *req, int status, const char *msg,
    const struct httpd_header *extra, size_t n_extra)
{
	httpd_respond(req, status, "text/plain; charset=utf-8", msg,
	    strlen(msg), extra, n_extra);
}

/* Sends the envelope @env (stolen) and releases @call. */
static void
send_envelope(struct rpc_call *call, json_t *env)
{
	rpcs_send(call->req, call->http_status, call->id == NULL, env);
	call_free(call);
}

void
rpc_reply(struct rpc_call *call, json_t *result)
{
	json_t *env;

	if (result == NULL) {
		struct dsc_err err = DSC_ERR_INIT;

		dsc_errorf(&err, DSC_ENOMEM, "out of memory");
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	env = rpcs_result(call->id, result);
	send_envelope(call, env);
}

void
rpc_reply_error(struct rpc_call *call, int code, const char *msg, json_t *data)
{
	json_t *env;

	call->r->errors++;
	log_debug("rpc: %s: %s: error %d: %s", httpd_req_peer(call->req),
	    call->m != NULL ? "call" : "request", code, msg);
	env = rpcs_error(call->id, code, msg, data);
	send_envelope(call, env);
}

void
rpc_reply_dsc(struct rpc_call *call, const struct dsc_err *err, json_t *extra)
{
	int code = err->code > 0 && err->code < DSC_E_MAX ? err->code : DSC_EIO;

	rpc_reply_error(call, rpcs_dsc_code(code), dsc_err_msg(err),
	    rpcs_dsc_data(code, extra));
}

int
rpc_add_read_meta(struct rpc_call *call, json_t *obj, uint64_t index)
{
	struct server *s = call->s;

	if (json_object_set_new(
	        obj, "index", json_integer((json_int_t)index)) ||
	    json_object_set_new(obj, "known_leader",
	        json_boolean(raft_leader(s->raft) != RAFT_NONE)) ||
	    json_object_set_new(obj, "last_contact_ms",
	        json_integer((json_int_t)server_last_contact_ms(s))))
		return DSC_ENOMEM;
	return 0;
}

void
rpc_leader(const struct server *s, const char **name, const char **addr)
{
	const struct server_member *m = server_leader(s);

	*name = *addr = "";
	if (m != NULL) {
		*name = m->name;
		*addr = m->addr;
	}
}

/* ---- GET /health -------------------------------------------------------- */

/*
 * Unauthenticated, for scripts and tests: who this is and whether it
 * leads or knows a leader; nothing from the catalog.
 */
static void
health(struct rpc *r, struct httpd_req *req)
{
	static const struct httpd_header allow[] = { { "Allow", "GET, HEAD" } };
	struct server *s = r->s;
	const char *lname, *laddr;
	char id[17];
	json_t *j;
	char *text;

	if (strcmp(httpd_req_method(req), "GET") != 0 &&
	    strcmp(httpd_req_method(req), "HEAD") != 0) {
		respond_plain(req, 405, "use GET\n", allow, 1);
		return;
	}
	snprintf(id, sizeof(id), "%016" PRIx64, s->id);
	rpc_leader(s, &lname, &laddr);
	j = json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:I, s:I, s:I}", "name",
	    s->cfg.name, "id", id, "leader", raft_role(s->raft) == RAFT_LEADER,
	    "known_leader", raft_leader(s->raft) != RAFT_NONE, "leader_name",
	    lname, "leader_addr", laddr, "term", (json_int_t)raft_term(s->raft),
	    "commit", (json_int_t)raft_commit_index(s->raft), "applied",
	    (json_int_t)raft_applied_index(s->raft));
	text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (text == NULL)
		respond_plain(req, 500, "out of memory\n", NULL, 0);
	else
		httpd_respond(req, 200, JSON_TYPE, text, strlen(text), NULL, 0);
	free(text);
}

/* ---- POST /rpc ---------------------------------------------------------- */

/* Verifies the request's signature; false when it answered already. */
static bool
authenticate(struct rpc_call *call)
{
	struct httpd_req *req = call->req;
	struct rpc *r = call->r;
	struct dsc_err err = DSC_ERR_INIT;
	int rc = rpcs_authenticate(&r->auth, req, &err);

	if (rc == 0)
		return true;
	if (rc == DSC_EBUSY) {
		call->http_status = 503;
		rpc_reply_dsc(call, &err, NULL);
		return false;
	}
	r->s->stats.rpc_auth_failures++;
	call->http_status = 401;
	rpc_reply_error(call, RPC_E_AUTH, dsc_err_msg(&err),
	    rpcs_dsc_data(DSC_EAUTH, NULL));
	return false;
}

/*
 * Checks the JSON-RPC 2.0 request object @root (borrowed) and fills the
 * call's id, params and method; false when it answered already.
 */
static bool
take_envelope(struct rpc_call *call, json_t *root)
{
	json_t *params;
	const char *name = NULL;
	char msg[DSC_ERRMSG_MAX];
	int code;

	json_decref(call->id);
	code = rpcs_take_envelope(
	    root, &call->id, &name, &params, msg, sizeof(msg));
	if (code != 0) {
		rpc_reply_error(call, code, msg, NULL);
		return false;
	}
	if ((call->m = rpc_method_find(name)) == NULL) {
		snprintf(msg, sizeof(msg), "no such method '%.64s'", name);
		rpc_reply_error(call, RPC_E_NO_METHOD, msg, NULL);
		return false;
	}
	call->params = params != NULL ? json_incref(params) : json_object();
	if (call->params == NULL) {
		rpc_reply(call, NULL);
		return false;
	}
	log_debug("rpc: %s: %s", httpd_req_peer(call->req), name);
	return true;
}

static void
post_rpc(struct rpc *r, struct httpd_req *req)
{
	struct rpc_call *call;
	json_error_t jerr;
	const uint8_t *body;
	char msg[DSC_ERRMSG_MAX];
	json_t *root;
	size_t len;

	if ((call = calloc(1, sizeof(*call))) == NULL) {
		respond_plain(req, 503, "out of memory\n", NULL, 0);
		return;
	}
	call->r = r;
	call->s = r->s;
	call->req = req;
	call->http_status = 200;
	call->id = json_null();
	httpd_on_close(req, call_closed, call);
	r->requests++;
	r->s->stats.rpc_requests++;
	if (!authenticate(call))
		return;
	if (!rpcs_json_content_type(httpd_req_header(req, "Content-Type"))) {
		call->http_status = 415;
		rpc_reply_error(call, RPC_E_INVALID_REQUEST,
		    "Content-Type must be " JSON_TYPE, NULL);
		return;
	}
	body = httpd_req_body(req, &len);
	root =
	    json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		snprintf(msg, sizeof(msg), "parse error at line %d: %s",
		    jerr.line, jerr.text);
		rpc_reply_error(call, RPC_E_PARSE, msg, NULL);
		return;
	}
	if (take_envelope(call, root))
		rpc_method_start(call);
	json_decref(root);
}

static void
rpc_handle(struct httpd_req *req, void *arg)
{
	static const struct httpd_header allow[] = { { "Allow", "POST" } };
	struct rpc *r = arg;
	const char *path = httpd_req_path(req);

	if (strcmp(path, RPC_HEALTH_PATH) == 0)
		health(r, req);
	else if (strcmp(path, RPC_PATH) != 0)
		respond_plain(
		    req, 404, "no such path: use POST /rpc\n", NULL, 0);
	else if (strcmp(httpd_req_method(req), "POST") != 0)
		respond_plain(req, 405, "use POST\n", allow, 1);
	else
		post_rpc(r, req);
}

/* ---- life cycle --------------------------------------------------------- */

struct rpc *
rpc_new(struct server *s, struct dsc_err *err)
{
	struct rpc *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "unable to start the RPC layer");
		return NULL;
	}
	r->s = s;
	r->auth.key = &s->rpc_key;
	r->auth.replay = &s->replay;
	r->h = httpd_new(s->base, NULL, rpc_handle, r, err);
	if (r->h == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

void
rpc_free(struct rpc *r)
{
	if (r == NULL)
		return;
	/* Parked calls learn of the close and cancel their waits. */
	httpd_free(r->h);
	free(r);
}

void
rpc_accept(struct rpc *r, evutil_socket_t fd, const uint8_t *first, size_t n)
{
	httpd_adopt(r->h, fd, first, n);
}

void
rpc_stats(const struct rpc *r, struct rpc_stats *st)
{
	struct httpd_stats hs;

	httpd_stats(r->h, &hs);
	st->requests = r->requests;
	st->auth_failures = r->auth.failures;
	st->errors = r->errors;
	st->open_conns = hs.conns_open;
	st->parked = hs.parked;
}

/*
 * api.c - the agent's HTTP listener and what every endpoint shares:
 * routing, replies in Consul's shapes and statuses, and api_forward(),
 * which hands a request to the servers through rpca and answers it when
 * they do.
 *
 * A forwarded request is parked in httpd with no thread: the upstream
 * call carries the blocking query's index and wait, so a watcher costs one
 * parked request here and one parked request on a server. When the client
 * goes away, httpd tells us (httpd_on_close) and the upstream call is
 * cancelled, which closes its connection and so frees the server's side.
 *
 * Last-known answers: every successful read is remembered by method and
 * params (index, wait and consistency left out) in a direct-mapped table
 * of API_CACHE_SLOTS entries, bodies up to API_CACHE_BODY_MAX. When no
 * server answers a read that asked for ?stale, the remembered answer is
 * served with X-Consul-KnownLeader: false and X-Consul-LastContact set to
 * its age in milliseconds, so a client that bounds staleness (consul-
 * template's max_stale) can tell. Reads without ?stale get the error.
 */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/listener.h>
#include <sodium.h>

#include "api_internal.h"
#include "log.h"
#include "rpcc_internal.h"

struct pending {
	struct api *api;
	struct httpd_req *req;
	struct rpca_call *call;
	struct api_fwd f;
	char *cache_key;
};

/* ---- replies ------------------------------------------------------------- */

void
api_reply(struct httpd_req *req, int status, const char *type, const void *body,
    size_t len)
{
	httpd_respond(req, status, type, body, len, NULL, 0);
}

void
api_reply_text(struct httpd_req *req, int status, const char *msg)
{
	char text[DSC_ERRMSG_MAX + 2];

	snprintf(text, sizeof(text), "%s\n", msg);
	api_reply(req, status, API_TEXT, text, strlen(text));
}

void
api_reply_json(struct httpd_req *req, int status, json_t *j)
{
	char *text =
	    j != NULL ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

	json_decref(j);
	if (text == NULL) {
		api_reply_text(req, 500, "out of memory");
		return;
	}
	api_reply(req, status, API_JSON, text, strlen(text));
	free(text);
}

void
api_reply_405(struct httpd_req *req, const char *allow)
{
	struct httpd_header h = { "Allow", allow };
	char msg[64];

	snprintf(
	    msg, sizeof(msg), "method %s not allowed\n", httpd_req_method(req));
	httpd_respond(req, 405, API_TEXT, msg, strlen(msg), &h, 1);
}

/* Consul's statuses: 400 for what the client got wrong, 404 for what is
 * not there, 500 for the rest (Go clients retry 500s). */
static int
err_status(int code)
{
	switch (code) {
	case DSC_EINVAL:
	case DSC_EUSAGE:
		return 400;
	case DSC_ENOTFOUND:
		return 404;
	case DSC_ETOOBIG:
		return 413;
	case DSC_EAUTH:
		return 403;
	default:
		return 500;
	}
}

void
api_reply_err(struct httpd_req *req, const struct dsc_err *err)
{
	const char *msg = dsc_err_msg(err);

	if (err->code == DSC_ENOLEADER)
		msg = "No cluster leader";
	api_reply_text(req, err_status(err->code), msg);
}

/* ---- small parsers ---------------------------------------------------------
 */

bool
api_flag(const char *query, const char *name)
{
	char v[8];
	int rc = httpd_query_get(query, name, v, sizeof(v));

	return rc == 0 || rc == DSC_ETOOBIG;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

bool
api_unescape(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; *in != '\0'; in++) {
		int c = (unsigned char)*in;

		if (c == '%') {
			int hi = hexval((unsigned char)in[1]), lo;

			if (hi < 0 || (lo = hexval((unsigned char)in[2])) < 0)
				return false;
			c = hi * 16 + lo;
			in += 2;
			if (c == 0)
				return false;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return true;
}

bool
api_path_arg(struct httpd_req *req, const char *prefix, char *out, size_t size,
    bool empty_ok)
{
	const char *p = httpd_req_path(req) + strlen(prefix);

	if (!api_unescape(p, out, size)) {
		api_reply_text(req, 400, "Invalid name in path");
		return false;
	}
	if (!empty_ok && out[0] == '\0') {
		api_reply_text(req, 400, "Missing name in path");
		return false;
	}
	return true;
}

json_t *
api_body_json(struct httpd_req *req, bool empty_ok)
{
	json_error_t je;
	const uint8_t *body;
	char msg[DSC_ERRMSG_MAX];
	size_t len;
	json_t *j;

	body = httpd_req_body(req, &len);
	if (len == 0 && empty_ok)
		return json_object();
	j = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		snprintf(
		    msg, sizeof(msg), "Request decode failed: %s", je.text);
		api_reply_text(req, 400, msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		api_reply_text(
		    req, 400, "Request decode failed: not a JSON object");
		return NULL;
	}
	return j;
}

/* Compares key names Consul's way: case and '_' ignored. */
static bool
same_key(const char *a, const char *b)
{
	for (;;) {
		while (*a == '_')
			a++;
		while (*b == '_')
			b++;
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return false;
		if (*a == '\0')
			return true;
		a++;
		b++;
	}
}

json_t *
api_get_ci(json_t *obj, const char *name)
{
	const char *k;
	json_t *v;

	if (!json_is_object(obj))
		return NULL;
	if ((v = json_object_get(obj, name)) != NULL)
		return v;
	json_object_foreach(obj, k, v)
	{
		if (same_key(k, name))
			return v;
	}
	return NULL;
}

/* ---- the last-known-answer cache --------------------------------------------
 */

/* "method {params without index, wait, consistency}" */
static char *
cache_key(const char *method, json_t *params)
{
	json_t *p = json_copy(params);
	char *text, *key = NULL;

	if (p == NULL)
		return NULL;
	json_object_del(p, "index");
	json_object_del(p, "wait");
	json_object_del(p, "consistency");
	text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(p);
	if (text != NULL && asprintf(&key, "%s %s", method, text) < 0)
		key = NULL;
	free(text);
	return key;
}

static struct api_cached *
cache_slot(struct api *api, const char *key)
{
	uint64_t h = 1469598103934665603ULL;

	for (const char *p = key; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return &api->cache[h % API_CACHE_SLOTS];
}

static void
cache_clear(struct api_cached *e)
{
	free(e->key);
	free(e->body);
	memset(e, 0, sizeof(*e));
}

static void
cache_put(struct api *api, const char *key, int status, const char *body,
    size_t len, uint64_t index)
{
	struct api_cached *e;

	if (key == NULL || len > API_CACHE_BODY_MAX)
		return;
	e = cache_slot(api, key);
	cache_clear(e);
	e->key = strdup(key);
	e->body = malloc(len + 1);
	if (e->key == NULL || e->body == NULL) {
		cache_clear(e);
		return;
	}
	memcpy(e->body, body, len);
	e->body[len] = '\0';
	e->len = len;
	e->status = status;
	e->index = index;
	e->at_ms = rpcc_now_ms();
}

/* ---- forwarding ------------------------------------------------------------
 */

static void
pending_free(struct pending *p)
{
	json_decref(p->f.rpc_id);
	free(p->cache_key);
	free(p);
}

static void
pending_gone(struct httpd_req *req, void *arg)
{
	struct pending *p = arg;

	rpca_cancel(p->call);
	httpd_req_drop(req);
	pending_free(p);
}

/* Sends @body with the read headers of @index, leader and contact. */
static void
send_read(struct pending *p, int status, const char *type, const char *body,
    size_t len, uint64_t index, bool known_leader, uint64_t contact_ms)
{
	char ibuf[24], cbuf[24];
	struct httpd_header h[4];
	size_t n = 0;

	if (p->f.read) {
		snprintf(ibuf, sizeof(ibuf), "%" PRIu64, index > 0 ? index : 1);
		snprintf(cbuf, sizeof(cbuf), "%" PRIu64, contact_ms);
		h[n++] = (struct httpd_header){ "X-Consul-Index", ibuf };
		h[n++] = (struct httpd_header){ "X-Consul-KnownLeader",
			known_leader ? "true" : "false" };
		h[n++] = (struct httpd_header){ "X-Consul-LastContact", cbuf };
		h[n++] =
		    (struct httpd_header){ "X-Consul-Effective-Consistency",
			    p->f.consistency != NULL ? p->f.consistency
			                             : "leader" };
	}
	httpd_respond(p->req, status, type, body, len, h, n);
}

static bool
stale_answer(struct pending *p)
{
	struct api_cached *e;

	if (!p->f.stale_ok || p->cache_key == NULL)
		return false;
	e = cache_slot(p->api, p->cache_key);
	if (e->key == NULL || strcmp(e->key, p->cache_key) != 0)
		return false;
	p->api->cache_hits++;
	send_read(p, e->status, API_JSON, e->body, e->len, e->index, false,
	    (uint64_t)(rpcc_now_ms() - e->at_ms));
	return true;
}

/* The voters' addresses of a status.peers answer. */
static json_t *
peers_of(json_t *result)
{
	json_t *out = json_array(), *peer;
	size_t i;

	json_array_foreach(json_object_get(result, "peers"), i, peer)
	{
		const char *s =
		    json_string_value(json_object_get(peer, "suffrage"));

		if (s != NULL && strcmp(s, "voter") == 0)
			json_array_append(out, json_object_get(peer, "addr"));
	}
	return out;
}

/* status.members as Consul's AgentMember list. */
static json_t *
members_of(json_t *result, const char *dc)
{
	json_t *out = json_array(), *m;
	size_t i;

	json_array_foreach(json_object_get(result, "members"), i, m)
	{
		const char *type =
		    json_string_value(json_object_get(m, "Type"));
		const char *st =
		    json_string_value(json_object_get(m, "Status"));
		bool server = type != NULL && strcmp(type, "server") == 0;
		int status = st == NULL         ? 0
		    : strcmp(st, "alive") == 0  ? 1
		    : strcmp(st, "failed") == 0 ? 4
		    : strcmp(st, "left") == 0   ? 3
		                                : 0;
		json_t *v = json_object_get(m, "Name");
		json_t *a = json_object_get(m, "Addr");
		json_t *id = json_object_get(m, "ID");

		json_array_append_new(out,
		    json_pack("{s:O, s:O, s:i, s:{s:s, s:s, s:O}, s:i, s:i, "
		              "s:i, s:i, s:i, s:i, s:i}",
		        "Name", v != NULL ? v : json_null(), "Addr",
		        a != NULL ? a : json_null(), "Port", 8301, "Tags",
		        "role", server ? "consul" : "node", "dc", dc, "id",
		        id != NULL ? id : json_string(""), "Status", status,
		        "ProtocolMin", 1, "ProtocolMax", 5, "ProtocolCur", 2,
		        "DelegateMin", 2, "DelegateMax", 5, "DelegateCur", 4));
	}
	return out;
}

/* The Consul-shaped body of a successful call, or NULL (answered). */
static json_t *
shape_result(struct pending *p, json_t *result, int *status)
{
	json_t *v;

	*status = 200;
	switch (p->f.shape) {
	case SHAPE_MEMBER:
		v = json_object_get(result, p->f.member);
		return v != NULL ? json_incref(v) : json_array();
	case SHAPE_TRUE:
		return json_true();
	case SHAPE_OK:
		return json_boolean(
		    json_is_true(json_object_get(result, "ok")));
	case SHAPE_NODE:
		return json_pack("{s:O, s:O}", "Node",
		    json_object_get(result, "node"), "Services",
		    json_object_get(result, "services"));
	case SHAPE_KV:
	case SHAPE_KV_KEYS:
		v = json_object_get(
		    result, p->f.shape == SHAPE_KV ? "entries" : "keys");
		if (json_array_size(v) == 0)
			*status = 404;
		return json_incref(v != NULL ? v : json_null());
	case SHAPE_LEADER:
		v = json_object_get(result, "leader");
		return json_string(
		    json_is_string(v) ? json_string_value(v) : "");
	case SHAPE_PEERS:
		return peers_of(result);
	case SHAPE_MEMBERS:
		return members_of(result, p->api->a->cfg.datacenter);
	case SHAPE_KV_RAW:
	case SHAPE_RPC:
		break;
	}
	return NULL;
}

/* ?raw: the value bytes of the first entry, text/plain as Consul. */
static void
send_raw(struct pending *p, json_t *result, const struct rpcc_meta *m)
{
	json_t *e = json_array_get(json_object_get(result, "entries"), 0);
	const char *b64 = json_string_value(json_object_get(e, "Value"));
	size_t blen = b64 != NULL ? strlen(b64) : 0, len = 0;
	unsigned char *bin;

	if (e == NULL) {
		send_read(p, 404, NULL, "", 0, m->index, m->known_leader,
		    m->last_contact_ms);
		return;
	}
	bin = malloc(blen + 1);
	if (bin == NULL ||
	    (blen > 0 &&
	        sodium_base642bin(bin, blen + 1, b64, blen, NULL, &len, NULL,
	            sodium_base64_VARIANT_ORIGINAL) != 0)) {
		free(bin);
		api_reply_text(p->req, 500, "undecodable value");
		return;
	}
	send_read(p, 200, "text/plain", (const char *)bin, len, m->index,
	    m->known_leader, m->last_contact_ms);
	free(bin);
}

static void
forward_done(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg)
{
	struct pending *p = arg;
	json_t *body;
	char *text;
	int status;

	httpd_on_close(p->req, NULL, NULL);
	if (p->f.shape == SHAPE_RPC) {
		api_rpc_done(rc, result, meta, err, p->f.rpc_id, p->req);
		pending_free(p);
		return;
	}
	if (rc == DSC_ENOTFOUND && p->f.read) {
		/* A key or node not there yet: still an index to block on. */
		send_read(p, p->f.shape == SHAPE_NODE ? 200 : 404,
		    p->f.shape == SHAPE_NODE ? API_JSON : NULL,
		    p->f.shape == SHAPE_NODE ? "null" : "",
		    p->f.shape == SHAPE_NODE ? 4 : 0, meta->index,
		    meta->known_leader, meta->last_contact_ms);
	} else if (rc != 0) {
		if (!(p->f.read && dsc_exit_class(rc) == DSC_EXIT_TEMP &&
		        stale_answer(p))) {
			log_debug("api: %s: %s", httpd_req_target(p->req),
			    dsc_err_msg(err));
			api_reply_err(p->req, err);
		}
	} else if (p->f.shape == SHAPE_KV_RAW) {
		send_raw(p, result, meta);
	} else if ((body = shape_result(p, result, &status)) == NULL ||
	    (text = json_dumps(body,
	         JSON_ENCODE_ANY |
	             (p->f.pretty ? JSON_INDENT(4) : JSON_COMPACT))) == NULL) {
		json_decref(body);
		api_reply_text(p->req, 500, "out of memory");
	} else {
		json_decref(body);
		if (p->f.read && status == 200)
			cache_put(p->api, p->cache_key, status, text,
			    strlen(text), meta->index);
		if (status == 404)
			send_read(p, 404, NULL, "", 0, meta->index,
			    meta->known_leader, meta->last_contact_ms);
		else
			send_read(p, status, API_JSON, text, strlen(text),
			    meta->index, meta->known_leader,
			    meta->last_contact_ms);
		free(text);
	}
	pending_free(p);
}

void
api_forward(struct api *api, struct httpd_req *req, const char *method,
    json_t *params, unsigned flags, const struct api_fwd *f)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct pending *p;

	if (params == NULL || (p = calloc(1, sizeof(*p))) == NULL) {
		json_decref(params);
		api_reply_text(req, 500, "out of memory");
		return;
	}
	p->api = api;
	p->req = req;
	p->f = *f;
	if (f->rpc_id != NULL)
		json_incref(f->rpc_id);
	if (f->read)
		p->cache_key = cache_key(method, params);
	api->forwarded++;
	p->call =
	    rpca_call(api->a->up, method, params, flags, forward_done, p, &err);
	json_decref(params);
	if (p->call == NULL) {
		if (f->shape == SHAPE_RPC)
			api_rpc_done(
			    err.code, NULL, NULL, &err, f->rpc_id, req);
		else
			api_reply_err(req, &err);
		pending_free(p);
		return;
	}
	httpd_on_close(req, pending_gone, p);
}

/* ---- routing
 * ----------------------------------------------------------------- */

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
handle(struct httpd_req *req, void *arg)
{
	struct api *api = arg;
	const char *path = httpd_req_path(req);

	api->requests++;
	log_debug("api: %s %s", httpd_req_method(req), httpd_req_target(req));
	if (has_prefix(path, "/v1/catalog/"))
		api_v1_catalog(api, req);
	else if (has_prefix(path, "/v1/health/"))
		api_v1_health(api, req);
	else if (has_prefix(path, "/v1/kv/") || strcmp(path, "/v1/kv") == 0)
		api_v1_kv(api, req);
	else if (has_prefix(path, "/v1/status/"))
		api_v1_status(api, req);
	else if (has_prefix(path, "/v1/agent/"))
		api_v1_agent(api, req);
	else if (strcmp(path, RPCC_HTTP_PATH) == 0)
		api_rpc(api, req);
	else
		api_reply_text(req, 404, "no such path");
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct api *api = arg;

	(void)lev;
	(void)sa;
	(void)len;
	httpd_adopt(api->h, fd, NULL, 0);
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	(void)lev;
	(void)arg;
	/* EMFILE and friends: log and keep listening; libevent retries. */
	log_warn("api: accept: %s",
	    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

struct api *
api_new(struct agent *a, struct dsc_err *err)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss), e;
	struct api *api;

	if (evutil_parse_sockaddr_port(
	        a->cfg.http, (struct sockaddr *)&ss, &len) != 0) {
		dsc_errorf(err, DSC_EINVAL, "invalid --http address '%s'",
		    a->cfg.http);
		return NULL;
	}
	if ((api = calloc(1, sizeof(*api))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	api->a = a;
	if (auth_rpc_key_init(&api->rpc_key, a->key, NULL, err) != 0 ||
	    replay_cache_init(&api->replay, API_REPLAY_CAP, err) != 0) {
		auth_rpc_key_release(&api->rpc_key);
		free(api);
		return NULL;
	}
	api->auth.key = &api->rpc_key;
	api->auth.replay = &api->replay;
	if ((api->h = httpd_new(a->base, NULL, handle, api, err)) == NULL) {
		api_free(api);
		return NULL;
	}
	api->lev = evconnlistener_new_bind(a->base, on_accept, api,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    1024, (struct sockaddr *)&ss, len);
	if (api->lev == NULL) {
		char why[128];

		e = errno;
		snprintf(why, sizeof(why), "%s", strerror(e));
		why[0] = (char)tolower((unsigned char)why[0]);
		dsc_errorf(err, e == EADDRINUSE ? DSC_EIO : DSC_EINVAL,
		    "unable to listen on '%s': %s%s", a->cfg.http, why,
		    e == EADDRINUSE ? " (port busy)" : "");
		api_free(api);
		return NULL;
	}
	evconnlistener_set_error_cb(api->lev, on_accept_error);
	return api;
}

void
api_free(struct api *api)
{
	if (api == NULL)
		return;
	if (api->lev != NULL)
		evconnlistener_free(api->lev);
	/* Parked requests learn of the close and cancel their calls. */
	httpd_free(api->h);
	for (size_t i = 0; i < API_CACHE_SLOTS; i++)
		cache_clear(&api->cache[i]);
	replay_cache_release(&api->replay);
	auth_rpc_key_release(&api->rpc_key);
	free(api);
}

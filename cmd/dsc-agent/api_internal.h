/*
 * api_internal.h - what the agent's HTTP files share: api.c (listener,
 * routing, replies, the forwarding of reads and writes to the servers and
 * the last-known-answer cache), api_v1.c (catalog, health, kv, status),
 * api_agent.c (/v1/agent/...) and api_rpc.c (POST /rpc).
 *
 * Every handler ends each request with exactly one api_reply*() or by
 * handing it to api_forward(), which answers it later (or drops it when
 * the client goes away, cancelling the upstream call).
 */
#ifndef DSC_API_INTERNAL_H
#define DSC_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/listener.h>
#include <jansson.h>

#include "agent.h"
#include "api.h"
#include "auth.h"
#include "httpd.h"
#include "rpcs.h"

#define API_JSON            "application/json"
#define API_TEXT            "text/plain; charset=utf-8"
/* Bodies: httpd refuses more than this with 413. */
#define API_BODY_MAX        HTTPD_BODY_MAX
/* KV values, as Consul: more is 413. */
#define API_KV_VALUE_MAX    (512 * 1024)
/* Names and keys taken from a path, decoded. */
#define API_NAME_MAX        512
/* Blocking queries (consul-api.md 2.2): default and cap of ?wait. */
#define API_WAIT_DEFAULT_MS 300000
#define API_WAIT_MAX_MS     600000
/* The last-known-answer cache: slots, and the largest body kept. */
#define API_CACHE_SLOTS     256
#define API_CACHE_BODY_MAX  (256 * 1024)
/* Replay cache of POST /rpc: nonces of a 61 s window; it grows with the
 * load, so the servers' cap costs nothing at rest. */
#define API_REPLAY_CAP      AUTH_REPLAY_DEFAULT_CAP

struct api_cached {
	char *key;  /* method and params, NULL: empty slot */
	char *body; /* the Consul-shaped answer */
	size_t len;
	int status;
	uint64_t index;
	int64_t at_ms; /* when it was the servers' answer */
};

struct api {
	struct agent *a;
	struct httpd *h;
	struct evconnlistener *lev;
	struct auth_rpc_key rpc_key;
	struct replay_cache replay;
	struct rpcs_auth auth; /* POST /rpc */
	struct api_cached cache[API_CACHE_SLOTS];
	uint64_t requests, forwarded, cache_hits, auth_failures;
};

/* How a forwarded answer becomes the HTTP one. */
enum api_shape {
	SHAPE_MEMBER,      /* result[member] as JSON */
	SHAPE_TRUE,        /* true */
	SHAPE_OK,          /* result.ok as true/false */
	SHAPE_NODE,        /* catalog.node: {"Node","Services"}; 404: null */
	SHAPE_KV,          /* entries; none: 404 */
	SHAPE_KV_RAW,      /* the first entry's value bytes */
	SHAPE_KV_KEYS,     /* keys; none: 404 */
	SHAPE_LEADER,      /* "addr" */
	SHAPE_PEERS,       /* ["addr", ...] of the voters */
	SHAPE_MEMBERS,     /* status.members as [AgentMember] */
	SHAPE_RPC,         /* POST /rpc: a JSON-RPC envelope */
};

/* A request handed to the servers. */
struct api_fwd {
	enum api_shape shape;
	const char *member;      /* SHAPE_MEMBER */
	bool read;               /* index headers, cache */
	bool stale_ok;           /* may be answered from the cache */
	bool pretty;             /* ?pretty: indented JSON */
	const char *consistency; /* X-Consul-Effective-Consistency */
	json_t *rpc_id;          /* SHAPE_RPC: the request's id (a reference) */
};

/* ---- api.c ----------------------------------------------------------- */

void api_reply(struct httpd_req *req, int status, const char *type,
    const void *body, size_t len);
/* A short text/plain answer: "@msg\n". */
void api_reply_text(struct httpd_req *req, int status, const char *msg);
/* @j (stolen) as JSON; NULL: a 500. */
void api_reply_json(struct httpd_req *req, int status, json_t *j);
/* 405 with Allow: @allow. */
void api_reply_405(struct httpd_req *req, const char *allow);
/* A DSC_E* error as Consul's status and text. */
void api_reply_err(struct httpd_req *req, const struct dsc_err *err);

/*
 * Calls @method with @params (stolen) for @req and answers it as @f says
 * (copied). Writes pass RPCC_WRITE in @flags.
 */
void api_forward(struct api *api, struct httpd_req *req, const char *method,
    json_t *params, unsigned flags, const struct api_fwd *f);

/* Is the query flag @name present (any value)? */
bool api_flag(const char *query, const char *name);
/* Percent-decodes @in into @out; false when bad or too long. */
bool api_unescape(const char *in, char *out, size_t size);
/* The path after @prefix, decoded; false (and answered 400) if bad. */
bool api_path_arg(struct httpd_req *req, const char *prefix, char *out,
    size_t size, bool empty_ok);
/* Parses the body as a JSON object; NULL (answered 400) when it is not. */
json_t *api_body_json(struct httpd_req *req, bool empty_ok);
/* A copy of @obj whose keys are looked up case-insensitively and without
 * '_' (so "service_id" finds "ServiceID"); borrowed, NULL when absent. */
json_t *api_get_ci(json_t *obj, const char *name);

/* ---- api_v1.c -------------------------------------------------------- */

void api_v1_catalog(struct api *api, struct httpd_req *req);
void api_v1_health(struct api *api, struct httpd_req *req);
void api_v1_kv(struct api *api, struct httpd_req *req);
void api_v1_status(struct api *api, struct httpd_req *req);

/* ---- api_agent.c ----------------------------------------------------- */

void api_v1_agent(struct api *api, struct httpd_req *req);
/* agent.self's object, shared with POST /rpc. */
json_t *api_agent_self(struct api *api);

/* An agent write (HTTP or JSON-RPC) waiting for local.h's done. */
struct agent_write;
/* NULL when out of memory; @rpc_id (borrowed) non-NULL for POST /rpc. */
struct agent_write *api_agent_write_new(
    struct api *api, struct httpd_req *req, json_t *rpc_id);
/* local.h's done callback for @arg, a struct agent_write. */
void api_agent_write_done(int rc, const struct dsc_err *err, void *arg);
/* After the local_* call returned @rc: waits, or answers the error. */
void api_agent_write_started(
    struct agent_write *w, int rc, const struct dsc_err *err);

/* ---- api_rpc.c ------------------------------------------------------- */

void api_rpc(struct api *api, struct httpd_req *req);
/* Answers POST /rpc @req with @result (stolen; NULL: out of memory). */
void api_rpc_result(struct httpd_req *req, json_t *id, json_t *result);
/* Answers POST /rpc @req with the dsc error @err. */
void api_rpc_error(
    struct httpd_req *req, json_t *id, const struct dsc_err *err);
/* A forwarded call's outcome as the JSON-RPC answer (@meta may be NULL). */
void api_rpc_done(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, json_t *id, struct httpd_req *req);

#endif

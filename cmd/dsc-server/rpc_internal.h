/*
 * rpc_internal.h - what rpc.c (HTTP, authentication, JSON-RPC envelopes,
 * replies), rpc_methods.c (the method table, reads, writes) and
 * rpc_status.c (status and operator methods) share.
 *
 * A struct rpc_call lives from the moment an authenticated, well-formed
 * request names a method until exactly one reply (or the client going
 * away) ends it; every reply function releases the call and its HTTP
 * request, so a method's code ends each path with one of them and touches
 * the call no more.
 */
#ifndef DSC_RPC_INTERNAL_H
#define DSC_RPC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "catalog.h"
#include "err.h"
#include "httpd.h"
#include "rpc.h"
#include "rpcs.h"
#include "server.h"

#define RPC_PATH             "/rpc"
#define RPC_HEALTH_PATH      "/health"
/* Blocking queries: "wait" in ms, its default and cap (Consul's 5 and 10
 * minutes); the server adds up to wait/16 of jitter. */
#define RPC_WAIT_DEFAULT_MS  300000
#define RPC_WAIT_MAX_MS      600000
/* Bound on a proposal's commit and on a read barrier. */
#define RPC_TIMEOUT_MS       10000
/* "kvp:" and the longest key, or "service:" and the longest name. */
#define RPC_WATCH_KEY_MAX    (16 + CATALOG_KEY_MAX)

/* JSON-RPC's codes and dsc's (libcommon/rpcs.h). */
#define RPC_E_PARSE           RPCS_E_PARSE
#define RPC_E_INVALID_REQUEST RPCS_E_INVALID_REQUEST
#define RPC_E_NO_METHOD       RPCS_E_NO_METHOD
#define RPC_E_INVALID_PARAMS  RPCS_E_INVALID_PARAMS
#define RPC_E_AUTH            RPCS_E_AUTH
#define RPC_E_DSC_BASE        RPCS_E_DSC_BASE

struct rpc {
	struct server *s;
	struct httpd *h;
	struct rpcs_auth auth; /* key, replay cache, failures and their log */
	uint64_t requests, errors;
};

enum rpc_consistency {
	RPC_CONSISTENCY_DEFAULT,
	RPC_CONSISTENCY_CONSISTENT,
	RPC_CONSISTENCY_STALE,
};

struct rpc_method;

struct rpc_call {
	struct rpc *r;
	struct server *s;
	struct httpd_req *req;
	int http_status; /* of the reply: 200 unless said otherwise */
	json_t *id;      /* the request's id; NULL for a notification */
	json_t *params;  /* an object, never NULL */
	const struct rpc_method *m;
	struct server_wait *wait; /* what the call waits for, or NULL */

	/* Read options and the arguments a method checked (borrowed from
	 * params, which lives as long as the call). */
	enum rpc_consistency consistency;
	uint64_t min_index;
	unsigned wait_ms;
	char watch_key[RPC_WATCH_KEY_MAX]; /* "" for the applied index */
	const char *name, *sep;
	const char *tags[CATALOG_TAGS_MAX];
	size_t n_tags;
	bool flag; /* Passing, Recurse */
	enum catalog_state state;
};

/* ---- rpc_methods.c ------------------------------------------------------ */

/* The method called @name, or NULL. */
const struct rpc_method *rpc_method_find(const char *name);

/* Runs @call->m; the call is answered and released, now or later. */
void rpc_method_start(struct rpc_call *call);

/*
 * The string param @name of 1..@max bytes (0..@max when @empty_ok), with
 * no NUL; *@out NULL when absent and not @required. DSC_EINVAL.
 */
int rpc_str_param(const struct rpc_call *call, const char *name, bool required,
    bool empty_ok, size_t max, const char **out, struct dsc_err *err);

/* A proposal's outcome, answered (writes and membership changes). */
void rpc_write_done(void *arg, int rv, uint64_t index, json_t *result);

/* ---- rpc_status.c -------------------------------------------------------- */

void rpc_status_leader(struct rpc_call *call);
void rpc_status_peers(struct rpc_call *call);
void rpc_status_stats(struct rpc_call *call);
void rpc_operator_add(struct rpc_call *call);
void rpc_operator_remove(struct rpc_call *call);
void rpc_operator_snapshot(struct rpc_call *call);

/* ---- rpc.c: replies; each one releases @call ---------------------------- */

/* A result (an object; stolen). NULL means out of memory. */
void rpc_reply(struct rpc_call *call, json_t *result);

/* A JSON-RPC error with @code and @msg; @data (stolen) may be NULL. */
void rpc_reply_error(
    struct rpc_call *call, int code, const char *msg, json_t *data);

/*
 * A dsc error: code -32000 - err->code, message dsc_err_msg(@err), data
 * {"name", "exit"} plus the members of @extra (stolen, may be NULL).
 */
void rpc_reply_dsc(
    struct rpc_call *call, const struct dsc_err *err, json_t *extra);

/*
 * The leader's name and address ("" when unknown): this server's own when
 * it leads (the member list holds only the others).
 */
void rpc_leader(const struct server *s, const char **name, const char **addr);

/* Sets what a read's answer carries besides its data (also for errors). */
int rpc_add_read_meta(struct rpc_call *call, json_t *obj, uint64_t index);

#endif

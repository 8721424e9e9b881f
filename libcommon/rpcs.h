/*
 * rpcs.h - the server side of dsc's authenticated JSON-RPC 2.0 over HTTP
 * (cmd/dsc-server/README.md, "JSON-RPC over HTTP"), for every program that
 * answers it: dsc-server on its port and dsc-agent on POST /rpc.
 *
 * The pieces, in the order a request meets them: rpcs_authenticate()
 * (the four X-Dsc-* headers against the MAC over method, target and body,
 * the only place a clock is read), rpcs_json_content_type(),
 * rpcs_take_envelope() (the strict check of the request object), and the
 * answer: rpcs_result() or rpcs_error() build the response object and
 * rpcs_send() sends it (HTTP 204 with no body for a notification). What a
 * method does is the caller's.
 */
#ifndef DSC_RPCS_H
#define DSC_RPCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "httpd.h"

/* JSON-RPC 2.0's codes, and dsc's: -32001 refused authentication, and
 * -32000 - DSC_E* for every dsc error (data.name says which). */
#define RPCS_E_PARSE           (-32700)
#define RPCS_E_INVALID_REQUEST (-32600)
#define RPCS_E_NO_METHOD       (-32601)
#define RPCS_E_INVALID_PARAMS  (-32602)
#define RPCS_E_AUTH            (-32001)
#define RPCS_E_DSC_BASE        (-32000)

#define RPCS_JSON_TYPE        "application/json"
/* Authentication failures logged per second; the rest are counted. */
#define RPCS_AUTH_LOG_PER_SEC 5

/* What authentication needs and keeps: the key and replay cache
 * (borrowed), and the rate limit of its warnings. */
struct rpcs_auth {
	const struct auth_rpc_key *key;
	struct replay_cache *replay;
	uint64_t failures;
	time_t log_sec;
	unsigned logged;
	uint64_t unlogged;
};

/*
 * Verifies @req's signature. 0; DSC_EBUSY when the replay cache is full
 * (answer 503, retry); DSC_EAUTH (counted, logged at most
 * RPCS_AUTH_LOG_PER_SEC times a second with the client's address; answer
 * 401 with rpcs_auth_error()).
 */
int rpcs_authenticate(
    struct rpcs_auth *a, struct httpd_req *req, struct dsc_err *err);

/* "application/json", any parameters, any case. */
bool rpcs_json_content_type(const char *v);

/*
 * Checks the request object @root (borrowed): "jsonrpc":"2.0", "method" a
 * string, "params" an object or absent, "id" a string, integer or null, no
 * other members. Sets *@id to a new reference of the id as soon as it is
 * known (NULL for a valid notification; json null when unknown, also on
 * errors), *@method (borrowed from @root) and *@params (borrowed, NULL
 * when absent). On a bad request returns the JSON-RPC code to answer
 * with, @msg saying why; 0 when good.
 */
int rpcs_take_envelope(json_t *root, json_t **id, const char **method,
    json_t **params, char *msg, size_t size);

/* A response object for @id (borrowed; NULL means null) with @result
 * (stolen). NULL when out of memory. */
json_t *rpcs_result(json_t *id, json_t *result);
/* An error response; @data (stolen) may be NULL. */
json_t *rpcs_error(json_t *id, int code, const char *msg, json_t *data);
/* data of a dsc error: {"name", "exit"} plus @extra's members (stolen). */
json_t *rpcs_dsc_data(int code, json_t *extra);
/* The error code of a DSC_E* (RPCS_E_DSC_BASE - code). */
int rpcs_dsc_code(int code);

/*
 * Answers @req with @env (stolen) and HTTP @status (200, 401 with
 * WWW-Authenticate, 503 with Retry-After); a notification gets 204 and
 * no body. NULL @env is a 500.
 */
void rpcs_send(
    struct httpd_req *req, int status, bool notification, json_t *env);

#endif

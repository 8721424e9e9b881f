/*
 * rpcc.h - the JSON-RPC client every dsc tool and the agent use to reach
 * the servers (cmd/dsc-server/README.md, "JSON-RPC over HTTP").
 *
 * One struct rpcc holds a list of servers, the request key and one libcurl
 * easy handle, so consecutive calls reuse one keep-alive connection. A call
 * is blocking and bounded: it builds the JSON-RPC 2.0 envelope once, signs
 * it afresh for every attempt (a new nonce each time, so a retry is never
 * refused as a replay), and sends it to the current server; on a transport
 * failure or a temporary answer (DSC_ENOLEADER and the other errors of exit
 * class DSC_EXIT_TEMP) it moves to the next server, backing off between full
 * passes over the list, until it succeeds, gets a permanent answer, runs out
 * of attempts or reaches its deadline. A pass in which no server could be
 * reached at all ends the call at once (DSC_EUNREACH): nobody is there to
 * wait for. The server that answered becomes the first one tried next time.
 *
 * Writes marked RPCC_WRITE carry "ClientID" (random per struct rpcc) and
 * "Seq" (1, 2, 3, ... per call, the same on every attempt of one call), so
 * a write retried on another server after a failover is applied once
 * (libcommon/catalog.h, "Idempotency"). Calls without the flag are retried
 * as they are: reads are idempotent, and an unmarked write is the caller's
 * choice.
 *
 * Errors (the message names the server, in the shape of STYLE.md 2.4):
 *   DSC_EUNREACH   connection refused or timed out, connection lost
 *                  ("unable to reach server '127.0.0.2:8300': connection
 *                  refused")
 *   DSC_ETIMEDOUT  the request was sent and no answer came in time
 *   DSC_EAUTH      HTTP 401: the server refused our signature
 *   DSC_ETOOBIG    request over RPCC_MAX_REQUEST, answer over the cap
 *   DSC_EPROTO     an answer that is not a JSON-RPC 2.0 response to us
 *   DSC_EINVAL     bad arguments, a bind address that cannot be used, and
 *                  JSON-RPC's own errors (parse, invalid request or params,
 *                  no such method)
 *   DSC_ENOMEM
 *   any DSC_E*     the server's error: taken from data.name when it names a
 *                  code of err.h, else from the code (-32000 - DSC_E*), with
 *                  the server's message
 * When several attempts failed, the error is the last one's.
 *
 * Not thread-safe: one struct rpcc per thread.
 */
#ifndef DSC_RPCC_H
#define DSC_RPCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "err.h"

/* Servers one client may know. */
#define RPCC_MAX_SERVERS        16
/* Bytes of "ADDR:PORT" (an IPv6 address in brackets included). */
#define RPCC_ADDR_MAX           64
/* Bytes of one request body: the server refuses more (README.md). */
#define RPCC_MAX_REQUEST        (1024 * 1024)
/* Bytes of one response body accepted by default. */
#define RPCC_MAX_RESPONSE       (64 * 1024 * 1024)
/* Defaults of struct rpcc_options. */
#define RPCC_TIMEOUT_MS_DEFAULT 5000
#define RPCC_CONNECT_MS_DEFAULT 2000
#define RPCC_RETRIES_DEFAULT    30
/* Backoff between passes over the server list: doubles from min to max. */
#define RPCC_BACKOFF_MIN_MS     50
#define RPCC_BACKOFF_MAX_MS     1000
/* A blocking query's "wait" (ms; the server's default when only "index"
 * is given, capped at its maximum) extends the deadline by wait + wait/16
 * (the server's jitter) + this slack. */
#define RPCC_WAIT_DEFAULT_MS    300000
#define RPCC_WAIT_MAX_MS        600000
#define RPCC_WAIT_SLACK_MS      2000
/* "rpcc-" and 32 hex digits of randomness. */
#define RPCC_CLIENT_ID_LEN      37

/* The HTTP request every call makes. */
#define RPCC_HTTP_METHOD "POST"
#define RPCC_HTTP_PATH   "/rpc"

/*
 * Start from RPCC_OPTIONS_INIT and change what you need; a NULL options
 * pointer means exactly that. Zero in a *_ms field means its default;
 * retries is taken as given (0: one attempt only).
 */
struct rpcc_options {
	/* Whole call, failover and backoff included; every network wait is
	 * bounded by what is left of it. */
	unsigned timeout_ms;
	/* One TCP connect, so a dead server costs at most this much. */
	unsigned connect_ms;
	/* One attempt (connect and exchange); 0: what is left of the call. */
	unsigned attempt_ms;
	/* Attempts after the first, over all servers, per call. */
	unsigned retries;
	/* Local IP address outgoing connections are bound to (copied), NULL
	 * for the kernel's choice; tests use 127.0.0.x (TESTING.md 4). */
	const char *bind_ip;
	/* Key id sent; NULL means auth_key_id() of the key (copied). */
	const char *key_id;
	/* Largest response body, 0 for RPCC_MAX_RESPONSE. */
	size_t max_response;
};

#define RPCC_OPTIONS_INIT                                                      \
	{                                                                      \
		.timeout_ms = RPCC_TIMEOUT_MS_DEFAULT,                         \
		.connect_ms = RPCC_CONNECT_MS_DEFAULT,                         \
		.retries = RPCC_RETRIES_DEFAULT,                               \
	}

/* What a call learned besides its result: from the result, or from the
 * data of an error answer (DSC_ENOTFOUND carries the index to block on). */
struct rpcc_meta {
	uint64_t index;           /* index: the catalog index, or 0 */
	bool known_leader;        /* known_leader; true when absent */
	uint64_t last_contact_ms; /* last_contact_ms; 0 when absent */
	const char *server;       /* who answered; borrowed from the rpcc */
	unsigned attempts;        /* 1 when the first try answered */
	uint64_t seq;             /* the Seq sent (RPCC_WRITE), else 0 */
};

enum rpcc_flags {
	RPCC_WRITE = 1 << 0, /* add ClientID and the next Seq to params */
};

struct rpcc;

/*
 * A client for the @n servers in @servers ("ADDR:PORT" each, copied; 1 to
 * RPCC_MAX_SERVERS of them), authenticating with the cluster key @key
 * (only the derived request key is kept, wiped by rpcc_free). Tries them in
 * the order given. Returns NULL with @err set: DSC_EINVAL for a bad address,
 * count or option, DSC_ENOMEM, DSC_EIO when libsodium or libcurl cannot
 * start.
 */
struct rpcc *rpcc_new(const uint8_t key[AUTH_KEY_SIZE],
    const char *const *servers, size_t n, const struct rpcc_options *opt,
    struct dsc_err *err);
/* Closes the connection and wipes the key. NULL is a no-op. */
void rpcc_free(struct rpcc *c);

/*
 * Calls @method with @params (a JSON object, borrowed; NULL for {}). On
 * success returns 0, sets *@result to the "result" member (a new reference:
 * json_decref it) and fills @meta when not NULL. On error returns the code
 * (see the top of this file) and leaves *@result alone; @meta is filled
 * when the error was a server's answer (meta->server says whose), and left
 * alone otherwise. RPCC_WRITE in @flags adds "ClientID" and "Seq" to a copy
 * of @params; DSC_EINVAL if @params already has either. A blocking query
 * ("index" > 0, optional "wait" in ms) extends the deadline by its wait.
 */
int rpcc_call(struct rpcc *c, const char *method, json_t *params,
    unsigned flags, json_t **result, struct rpcc_meta *meta,
    struct dsc_err *err);

/* rpcc_call(c, method, params, RPCC_WRITE, ...). */
int rpcc_call_write(struct rpcc *c, const char *method, json_t *params,
    json_t **result, struct rpcc_meta *meta, struct dsc_err *err);

/* The ClientID this client's writes carry (borrowed). */
const char *rpcc_client_id(const struct rpcc *c);

/* ---- the pieces of a call, for tests and test tools ------------------- */

/*
 * Appends to @body the request envelope rpcc_call would send: compact
 * JSON {"id":N,"jsonrpc":"2.0","method":@method,"params":...} with the
 * next id, and with ClientID and the next Seq when @flags has RPCC_WRITE.
 * DSC_EINVAL, DSC_ETOOBIG over RPCC_MAX_REQUEST, DSC_ENOMEM; on error
 * @body is unchanged and no id or Seq was used.
 */
int rpcc_build(struct rpcc *c, const char *method, json_t *params,
    unsigned flags, struct buf *body, struct dsc_err *err);

/* Signs @body as sent at @now (unix seconds) with a fresh nonce. */
int rpcc_sign(const struct rpcc *c, int64_t now, const void *body, size_t len,
    struct auth_req_sig *sig, struct dsc_err *err);

/*
 * One attempt, no failover: POSTs @body to server number @server with the
 * headers in @hdrs (NULL: no authentication headers at all, which a server
 * must refuse) and decodes the answer as rpcc_call does. Errors as for
 * rpcc_call.
 */
int rpcc_send(struct rpcc *c, size_t server, const void *body, size_t len,
    const struct auth_req_hdrs *hdrs, json_t **result, struct dsc_err *err);

#endif

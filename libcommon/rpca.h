/*
 * rpca.h - the asynchronous JSON-RPC client: rpcc's protocol on a libevent
 * loop, for the agent, which must hold thousands of forwarded requests
 * (blocking queries above all) at once without a thread each.
 *
 * Same wire behaviour as rpcc.h (read it first): the JSON-RPC 2.0 envelope
 * is built once per call, signed afresh per attempt, sent to the current
 * server; a transport failure or a temporary answer moves the call to the
 * next server with backoff between full passes; RPCC_WRITE adds ClientID
 * and Seq, the same on every attempt of one call; a blocking query ("index"
 * > 0, optional "wait" ms) extends the call's deadline by its wait. The
 * server that answered becomes the first tried by the next call.
 *
 * Unlike rpcc, many writes are in flight at once, and the catalog refuses a
 * Seq lower than one it applied for the same ClientID: so each write in
 * flight writes under a ClientID of its own ("<client id>-<lane>", lanes
 * reused once their write ended, at most RPCA_LANES_MAX at once), whose Seq
 * rises by one per write.
 *
 * Built on libcurl's multi interface driven by the caller's event_base
 * (curlev.h, the hiperfifo pattern), with rpcc's own envelope, signing and
 * decoding (rpcc_internal.h): connections are kept alive and reused across
 * calls, so a busy agent talks to its servers over a small pool of warm
 * connections (up to 64 idle ones are kept). Each call in flight holds one
 * connection of its own: HTTP/1.1 answers one request at a time.
 *
 * Not thread-safe; everything runs on the loop of @base.
 */
#ifndef DSC_RPCA_H
#define DSC_RPCA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "auth.h"
#include "err.h"
#include "rpcc.h"

/* Writes in flight at once; more are refused with DSC_EBUSY. */
#define RPCA_LANES_MAX 4096

struct rpca;
struct rpca_call;

/*
 * The outcome of one call, called exactly once from the loop (never from
 * inside rpca_call) unless the call was cancelled first. @rc is 0 or the
 * DSC_E* code, with @err's message as rpcc_call would give it. @result is
 * the "result" member, borrowed for the duration of the callback (take a
 * json_incref to keep it); NULL on error. @meta is filled as rpcc_call fills
 * it (also for server error answers; for a transport failure meta->server
 * is the last server tried and index is 0).
 */
typedef void rpca_done_fn(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg);

/*
 * A client on @base for the @n servers in @servers, as rpcc_new. @opt's
 * timeout_ms bounds each call (blocking queries get their wait on top).
 * NULL with @err set on failure.
 */
struct rpca *rpca_new(struct event_base *base, const uint8_t key[AUTH_KEY_SIZE],
    const char *const *servers, size_t n, const struct rpcc_options *opt,
    struct dsc_err *err);

/*
 * Cancels every call in flight (their callbacks are not called) and closes
 * all connections. NULL is a no-op. Not from inside a callback.
 */
void rpca_free(struct rpca *c);

/*
 * Starts @method with @params (borrowed; copied as needed; NULL for {}).
 * Returns a handle valid until @fn has been called or rpca_cancel(); NULL
 * when the call could not be started (@err says why: DSC_EINVAL,
 * DSC_ETOOBIG, DSC_ENOMEM), and then @fn is never called.
 */
struct rpca_call *rpca_call(struct rpca *c, const char *method, json_t *params,
    unsigned flags, rpca_done_fn *fn, void *arg, struct dsc_err *err);

/* Abandons @call: its callback will not run. A no-op for NULL. */
void rpca_cancel(struct rpca_call *call);

/* The server tried first by the next call ("ADDR:PORT", borrowed). */
const char *rpca_current_server(const struct rpca *c);

/* Calls in flight now. */
size_t rpca_pending(const struct rpca *c);

/* Replaces the server list (SIGHUP); calls in flight keep their server. */
int rpca_set_servers(struct rpca *c, const char *const *servers, size_t n,
    struct dsc_err *err);

#endif

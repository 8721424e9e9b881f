/*
 * rpcc_internal.h - the pieces of an rpcc call that rpca (the asynchronous
 * client) shares with rpcc, so both speak the protocol from one source:
 * the libcurl handle set-up, one attempt's request and its decoding into a
 * DSC_E* code, and the call-level bookkeeping (deadline extension, meta).
 *
 * A struct rpcc_xfer is one libcurl easy handle with its response buffer.
 * rpcc keeps one and runs it with curl_easy_perform; rpca keeps one per
 * call in flight and runs it on a multi handle. Either way an attempt is
 * rpcc_xfer_prepare, the transfer, then rpcc_xfer_finish.
 */
#ifndef DSC_RPCC_INTERNAL_H
#define DSC_RPCC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "rpcc.h"

struct rpcc_xfer {
	CURL *curl;
	struct curl_slist *hdrs; /* of the attempt in flight */
	struct buf resp;
	size_t max_response;
	bool resp_overflow, resp_nomem;
	char curl_err[CURL_ERROR_SIZE];
};

/* What one attempt brought back besides its code. */
struct rpcc_answer {
	json_t *result;   /* the result, when the code is 0 (a reference) */
	json_t *data;     /* error.data of an error answer, or NULL (a ref.) */
	bool from_server; /* a JSON-RPC answer, result or error */
	bool retry;       /* another server, or later, may do better */
};

/* A new easy handle with every option the calls of @c share. */
int rpcc_xfer_init(
    const struct rpcc *c, struct rpcc_xfer *x, struct dsc_err *err);
/* Frees the handle and the buffers; @x may be zeroed or released. */
void rpcc_xfer_release(struct rpcc_xfer *x);

/*
 * Sets @x up to POST @body (borrowed until finish) to @server with the
 * authentication headers @hdrs (NULL: none), bounded by @timeout_ms.
 */
int rpcc_xfer_prepare(const struct rpcc *c, struct rpcc_xfer *x,
    const char *server, const void *body, size_t len,
    const struct auth_req_hdrs *hdrs, long timeout_ms, struct dsc_err *err);

/*
 * After the transfer ended with @code: decodes the answer to request @id
 * into the cleared @a, or maps the failure; drops the attempt's headers.
 */
int rpcc_xfer_finish(const struct rpcc *c, struct rpcc_xfer *x,
    const char *server, CURLcode code, long timeout_ms, uint64_t id,
    struct rpcc_answer *a, struct dsc_err *err);

void rpcc_answer_clear(struct rpcc_answer *a);

/* What a blocking query in @params adds to a call's deadline (ms). */
int64_t rpcc_wait_extension(json_t *params);

/* Fills @m from a result or error data @res (borrowed). */
void rpcc_fill_meta(struct rpcc_meta *m, json_t *res, const char *server,
    unsigned attempts, uint64_t seq);

/* CLOCK_MONOTONIC in milliseconds. */
int64_t rpcc_now_ms(void);

/* The client's state, for a driver of its own. */
const struct rpcc_options *rpcc_opts(const struct rpcc *c);
size_t rpcc_n_servers(const struct rpcc *c);
const char *rpcc_server(const struct rpcc *c, size_t i);
size_t rpcc_first(const struct rpcc *c);
void rpcc_set_first(struct rpcc *c, size_t i);
/* The JSON-RPC id of the envelope rpcc_build made last. */
uint64_t rpcc_last_id(const struct rpcc *c);
/*
 * rpcc_build for a writer of the caller's: with @client_id not NULL the
 * params get that ClientID and @seq (this rpcc's own Seq is not used);
 * NULL builds a read. Takes the next JSON-RPC id like rpcc_build.
 */
int rpcc_build_as(struct rpcc *c, const char *method, json_t *params,
    const char *client_id, uint64_t seq, struct buf *body,
    struct dsc_err *err);

/* Replaces the server list as rpcc_new checks it; on error nothing
 * changes. */
int rpcc_set_servers(
    struct rpcc *c, const char *const *servers, size_t n, struct dsc_err *err);

#endif

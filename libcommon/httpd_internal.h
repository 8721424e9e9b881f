/*
 * httpd_internal.h - what httpd.c (connections) and httpd_req.c (parsing,
 * accessors) share. Not for other modules: httpd.h is the interface.
 */
#ifndef DSC_HTTPD_INTERNAL_H
#define DSC_HTTPD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>

#include "buf.h"
#include "httpd.h"

/* Room for a refusal's reason, which names the limit it broke. */
#define HTTPD_WHY_MAX 128

/* What the parsing steps return besides an HTTP status to refuse with. */
enum httpd_step {
	HTTPD_STEP_DONE = 0,
	HTTPD_STEP_MORE = 1,  /* need more input */
	HTTPD_STEP_NOMEM = 2, /* out of memory: close */
};

struct httpd_conn;

/* A header field: offsets of its NUL-terminated name and value in head. */
struct httpd_hdr {
	uint32_t name, value;
};

struct httpd_req {
	struct httpd_conn *conn; /* NULL once the connection is gone */
	struct buf head;         /* NUL-terminated strings, by offset */
	uint32_t method, target, path, query;
	struct httpd_hdr hdrs[HTTPD_HEADERS_MAX];
	size_t n_hdrs;
	bool have_line;    /* the request line was read */
	size_t head_bytes; /* of the header section so far */
	struct buf body;
	size_t content_length;
	int version; /* 10 or 11 */
	bool keep_alive, is_head, expect_continue;
	httpd_close_fn *on_close;
	void *close_arg;
	char peer[HTTPD_PEER_MAX];
};

/* A request being read on @c; @peer is copied. NULL when out of memory. */
struct httpd_req *httpd_req_new(struct httpd_conn *c, const char *peer);
void httpd_req_free(struct httpd_req *req);

/*
 * Reads the request line and headers from @in, as far as they arrived.
 * Returns HTTPD_STEP_DONE once the head is in and valid (framing, Host,
 * Expect and persistence decided), HTTPD_STEP_MORE, HTTPD_STEP_NOMEM, or
 * the HTTP status to refuse the request with (@why, HTTPD_WHY_MAX bytes,
 * says why).
 */
int httpd_req_read_head(struct httpd_req *req, struct evbuffer *in,
    const struct httpd_limits *lim, char *why);

/* Moves body bytes from @in: DONE once all are in, MORE or NOMEM. */
int httpd_req_read_body(struct httpd_req *req, struct evbuffer *in);

/* The checks httpd_respond() makes on a handler's response. */
bool httpd_response_ok(int status, const char *ctype,
    const struct httpd_header *extra, size_t n_extra);

bool httpd_is_token(const char *s);
bool httpd_is_value(const char *s);

#endif

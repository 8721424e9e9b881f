/*
 * httpd.h - a small, strict HTTP/1.1 server connection layer on libevent
 * bufferevents.
 *
 * Why not evhttp: dsc-server's one port carries peer links and HTTP, and
 * its listener tells them apart by the first bytes, so HTTP connections
 * arrive as an already-accepted socket plus the bytes already read;
 * evhttp in libevent 2.1 cannot adopt such a socket.
 *
 * What it speaks: HTTP/1.1 and 1.0 requests in origin form ("/path?query"),
 * bodies framed by Content-Length only, keep-alive (1.1 by default, 1.0 when
 * asked), pipelining (requests are answered in order, one at a time). Every
 * response carries Content-Length (except 204) and a Date. Anything else is
 * refused with a plain-text error and the connection is closed:
 *
 *	400 bad syntax: request line, header line, bare LF, obs-fold, a
 *	    missing or repeated Host (1.1), a repeated or bad Content-Length
 *	408 head or body not received within its deadline (slowloris)
 *	411 chunked request body (send Content-Length)
 *	413 body over the body limit
 *	414 request line over its limit
 *	417 an Expect other than 100-continue
 *	431 too many header fields, or header section over its byte limit
 *	501 any other Transfer-Encoding
 *	505 an HTTP version other than 1.0 and 1.1
 *
 * Connection states (one request at a time per connection):
 *
 *	IDLE -> HEAD -> [BODY] -> PARKED -> WRITING -> IDLE (keep-alive)
 *	                                            -> LINGER -> closed
 *
 * IDLE waits for the first byte of a request (idle timeout). HEAD reads the
 * request line and headers against one deadline counted from the first
 * byte, BODY reads Content-Length bytes against another. PARKED: the handler
 * owns the request; nothing more is parsed (bytes of pipelined requests are
 * buffered, at most HTTPD_PARKED_INPUT_MAX, then reading pauses) but the
 * socket is watched, so a client that goes away is noticed and the owner
 * told. WRITING: the response drains (write timeout on lack of progress);
 * then the next buffered request is parsed. A connection that will close
 * first shuts its write side and discards input for a moment (LINGER), so
 * a client still sending is not answered with a reset that destroys the
 * response it has not read yet.
 *
 * Everything runs on the caller's event_base; nothing is thread-safe.
 */
#ifndef DSC_HTTPD_H
#define DSC_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/util.h>

#include "err.h"

/* ---- limits ------------------------------------------------------------- */

#define HTTPD_LINE_MAX          (8 * 1024)    /* request line, CRLF excluded */
#define HTTPD_HEADERS_MAX       64            /* header fields per request */
#define HTTPD_HEADER_BYTES_MAX  (16 * 1024)   /* header lines with CRLFs */
#define HTTPD_BODY_MAX          (1024 * 1024) /* request body */
#define HTTPD_CONNS_MAX         4096  /* open connections; more: closed */
#define HTTPD_IDLE_MS           60000 /* keep-alive connection, no request */
#define HTTPD_HEADER_MS         10000 /* first byte to end of headers */
#define HTTPD_BODY_MS           30000 /* end of headers to end of body */
#define HTTPD_WRITE_MS          30000 /* response output makes no progress */
#define HTTPD_LINGER_MS         2000  /* discarding input before a close */
#define HTTPD_METHOD_MAX        16    /* bytes of a method token */
#define HTTPD_PARKED_INPUT_MAX  (64 * 1024) /* read ahead while parked */
#define HTTPD_PEER_MAX          64          /* "addr:port" text, NUL included */
#define HTTPD_EXTRA_HEADERS_MAX 16          /* extra headers in one response */

/*
 * The limits of one server. Sizes above the compile-time maximum are
 * clamped to it (HTTPD_HEADERS_MAX); a zero field means its default.
 * Tests shrink the timeouts.
 */
struct httpd_limits {
	size_t line_max, headers_max, header_bytes_max, body_max;
	unsigned conns_max;
	unsigned idle_ms, header_ms, body_ms, write_ms, linger_ms;
};

#define HTTPD_LIMITS_DEFAULT                                                   \
	{                                                                      \
		HTTPD_LINE_MAX, HTTPD_HEADERS_MAX, HTTPD_HEADER_BYTES_MAX,     \
		    HTTPD_BODY_MAX, HTTPD_CONNS_MAX, HTTPD_IDLE_MS,            \
		    HTTPD_HEADER_MS, HTTPD_BODY_MS, HTTPD_WRITE_MS,            \
		    HTTPD_LINGER_MS                                            \
	}

/* ---- server ------------------------------------------------------------- */

struct httpd;
struct httpd_req;

/*
 * Called once per well-formed request. The handler now owns @req and must
 * release it exactly once, now or later from the loop, by httpd_respond()
 * or httpd_req_drop(). Until then @req stays valid, even after its client
 * went away (see httpd_on_close); after that @req must not be touched.
 */
typedef void httpd_handler_fn(struct httpd_req *req, void *arg);

/*
 * The client of a parked request went away (or httpd_free() is closing
 * it). @req stays valid; the owner should stop what it was waiting for and
 * release @req (typically with httpd_req_drop(), here or later). The
 * request will never be answered: httpd_respond() only releases it.
 */
typedef void httpd_close_fn(struct httpd_req *req, void *arg);

struct httpd_stats {
	uint64_t conns_open;     /* now */
	uint64_t conns_accepted; /* adopted, ever */
	uint64_t conns_refused;  /* closed at once: too many, no memory */
	uint64_t requests;       /* handed to the handler */
	uint64_t parked;         /* now held by a handler */
	uint64_t refused;        /* answered 4xx/5xx by httpd itself */
	uint64_t timeouts;       /* connections closed by a deadline */
	uint64_t client_gone;    /* parked requests whose client went away */
};

/*
 * A server on @base calling @fn(req, @arg) for each request. @lim NULL
 * means HTTPD_LIMITS_DEFAULT. Returns NULL on DSC_ENOMEM (@err says so).
 */
struct httpd *httpd_new(struct event_base *base, const struct httpd_limits *lim,
    httpd_handler_fn *fn, void *arg, struct dsc_err *err);

/*
 * Closes every connection; each parked request's close callback runs
 * (the owner releases it there or later: requests still held stay valid,
 * detached from the freed server). Not to be called from a handler or a
 * close callback. NULL is a no-op.
 */
void httpd_free(struct httpd *h);

/*
 * Takes over the accepted socket @fd, whose first @n bytes (@first, copied;
 * may be NULL when @n is 0) were already read by the caller. The socket is
 * always the server's from now on: when it cannot be taken (over conns_max,
 * out of memory) it is closed at once and counted. Parsing starts from the
 * loop, never inside this call.
 */
void httpd_adopt(
    struct httpd *h, evutil_socket_t fd, const uint8_t *first, size_t n);

void httpd_stats(const struct httpd *h, struct httpd_stats *st);

/* ---- requests ----------------------------------------------------------- */

/*
 * Accessors. Strings are NUL-terminated and belong to @req (valid until it
 * is released). Nothing is percent-decoded.
 */
const char *httpd_req_method(const struct httpd_req *req); /* "POST" */
const char *httpd_req_target(const struct httpd_req *req); /* "/a?b=c" */
const char *httpd_req_path(const struct httpd_req *req);   /* "/a" */
const char *httpd_req_query(const struct httpd_req *req);  /* "b=c", "" */
/* 10 for HTTP/1.0, 11 for HTTP/1.1. */
int httpd_req_version(const struct httpd_req *req);
/* The client's "addr:port" ("[addr]:port" for IPv6), "" when unknown. */
const char *httpd_req_peer(const struct httpd_req *req);

/* The first value of header @name (ASCII case-insensitive), or NULL. */
const char *httpd_req_header(const struct httpd_req *req, const char *name);
/* How many times header @name was sent. */
size_t httpd_req_header_count(const struct httpd_req *req, const char *name);
/* Headers in the order sent: 0 <= @i < httpd_req_n_headers(). */
size_t httpd_req_n_headers(const struct httpd_req *req);
void httpd_req_header_at(const struct httpd_req *req, size_t i,
    const char **name, const char **value);

/*
 * The body (@len bytes; a NUL follows it, for convenience, but the body
 * itself may contain NULs). Never NULL.
 */
const uint8_t *httpd_req_body(const struct httpd_req *req, size_t *len);

/* True once the client went away; responding then only releases @req. */
bool httpd_req_closed(const struct httpd_req *req);

/*
 * Asks to be told (@fn(req, @arg), from the loop) when the client goes
 * away before @req is released. Replaces any earlier callback; @fn NULL
 * removes it. A handler that parks a request should set one.
 */
void httpd_on_close(struct httpd_req *req, httpd_close_fn *fn, void *arg);

/* An extra response header; name and value are copied. */
struct httpd_header {
	const char *name, *value;
};

/*
 * Answers @req with @status (200..599), @content_type (NULL: none) and the
 * @len bytes of @body (copied; ignored for 204, not sent for HEAD), plus
 * @n_extra headers from @extra. Content-Length, Date and Connection are
 * httpd's; extras may not set them, nor Transfer-Encoding, and names must
 * be tokens and values free of control characters.
 *
 * Always releases @req. Returns 0 when the response was queued;
 * DSC_EIO when the client had gone (nothing sent); DSC_EINVAL for a bad
 * status or header (a 500 went instead); DSC_ENOMEM (the connection was
 * closed).
 */
int httpd_respond(struct httpd_req *req, int status, const char *content_type,
    const void *body, size_t len, const struct httpd_header *extra,
    size_t n_extra);

/*
 * Releases @req without answering: a connection still open is closed (an
 * HTTP request cannot be skipped). Use it in a close callback, or when
 * there is nothing to say.
 */
void httpd_req_drop(struct httpd_req *req);

/* ---- helpers ------------------------------------------------------------ */

/* The reason phrase of @status ("Not Found"), "Unknown" when not known. */
const char *httpd_status_text(int status);

/*
 * Iterates the name=value pairs of query string @*cursor (start it at
 * httpd_req_query()), percent-decoding both and '+' as space; a name
 * without '=' has value "". Empty pairs are skipped. Returns 0 with the
 * next pair, DSC_ENOTFOUND at the end, DSC_EINVAL for a bad escape or an
 * escaped NUL, DSC_ETOOBIG when a decoded name or value does not fit its
 * buffer (@*cursor then points past the bad pair).
 */
int httpd_query_next(const char **cursor, char *name, size_t name_size,
    char *value, size_t value_size);

/*
 * The decoded value of the first pair named @name in @query. Returns 0,
 * DSC_ENOTFOUND, or an error of httpd_query_next().
 */
int httpd_query_get(
    const char *query, const char *name, char *value, size_t value_size);

#endif

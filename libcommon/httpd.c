/*
 * httpd.c - the connections of httpd.h (httpd_req.c parses requests).
 *
 * One bufferevent per connection and one state machine (enum conn_state)
 * that read, write, event and timer callbacks drive; conn_set_state() is
 * the only place a state changes, and it arms that state's deadline.
 *
 * Reentrancy: a handler may respond (or drop its request) before it
 * returns, and a close callback may release its request, so every path
 * that calls out returns at once afterwards without touching the
 * connection again, and conn_close() frees the connection before it calls
 * the owner's close callback.
 */
#include "httpd.h"
#include "httpd_internal.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "dsc_assert.h"
#include "log.h"
#include "mem.h"

/* Room for the status line, Date, Content-Type, Content-Length, Connection. */
#define HTTPD_HEAD_RESERVE 256

enum conn_state {
	CONN_IDLE,   /* no request yet: idle deadline */
	CONN_HEAD,   /* request line and headers: header deadline */
	CONN_BODY,   /* Content-Length bytes: body deadline */
	CONN_PARKED, /* the handler owns the request: no parsing, no deadline */
	CONN_WRITING, /* the response drains: write timeout (bufferevent) */
	CONN_LINGER,  /* write side shut, input discarded until EOF or deadline
	               */
	CONN_STATE_MAX
};

static const char *const conn_state_names[CONN_STATE_MAX] = {
	[CONN_IDLE] = "idle",
	[CONN_HEAD] = "head",
	[CONN_BODY] = "body",
	[CONN_PARKED] = "parked",
	[CONN_WRITING] = "writing",
	[CONN_LINGER] = "linger",
};

struct httpd_conn {
	struct httpd *h;
	struct httpd_conn *prev, *next;
	struct bufferevent *bev;
	struct event *timer; /* the current state's deadline */
	struct event *kick;  /* parses buffered input from the loop */
	enum conn_state state;
	bool close_after; /* close once the response is out */
	struct httpd_req *req;
	size_t lingered;
	char peer[HTTPD_PEER_MAX];
};

struct httpd {
	struct event_base *base;
	struct httpd_limits lim;
	httpd_handler_fn *fn;
	void *arg;
	struct httpd_conn *conns;
	struct httpd_stats st;
	time_t refuse_logged;
};

static void conn_process(struct httpd_conn *c);

static void
peer_name(evutil_socket_t fd, char out[HTTPD_PEER_MAX])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN];

	out[0] = '\0';
	if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip)))
			snprintf(out, HTTPD_PEER_MAX, "%s:%u", ip,
			    (unsigned)ntohs(sin->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip)))
			snprintf(out, HTTPD_PEER_MAX, "[%s]:%u", ip,
			    (unsigned)ntohs(sin6->sin6_port));
	}
}

/* ---- connection state --------------------------------------------------- */

static void
arm(struct httpd_conn *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

/*
 * The one place a connection changes state: arms the state's deadline and
 * bounds how much a client may send ahead while its request is not read.
 */
static void
conn_set_state(struct httpd_conn *c, enum conn_state st)
{
	const struct httpd_limits *lim = &c->h->lim;

	DSC_ASSERT(st < CONN_STATE_MAX);
	log_debug("httpd: %s: %s -> %s", c->peer, conn_state_names[c->state],
	    conn_state_names[st]);
	c->state = st;
	evtimer_del(c->timer);
	switch (st) {
	case CONN_IDLE:
		bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
		arm(c, lim->idle_ms);
		break;
	case CONN_HEAD:
		arm(c, lim->header_ms);
		break;
	case CONN_BODY:
		arm(c, lim->body_ms);
		break;
	case CONN_PARKED:
	case CONN_WRITING:
		bufferevent_setwatermark(
		    c->bev, EV_READ, 0, HTTPD_PARKED_INPUT_MAX);
		break;
	case CONN_LINGER:
		bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
		arm(c, lim->linger_ms);
		break;
	case CONN_STATE_MAX:
		break;
	}
}

/*
 * Closes @c and frees it. A parked request is detached first and its
 * owner told afterwards, when nothing of @c is left to touch; a request
 * still being read is freed.
 */
static void
conn_close(struct httpd_conn *c, const char *why)
{
	struct httpd *h = c->h;
	struct httpd_req *req = c->req;
	bool parked = c->state == CONN_PARKED;

	log_debug("httpd: %s: closed in %s: %s", c->peer,
	    conn_state_names[c->state], why);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	h->st.conns_open--;
	bufferevent_free(c->bev); /* safe inside its own callbacks */
	event_free(c->timer);
	event_free(c->kick);
	dsc_free(c);
	if (req == NULL)
		return;
	if (!parked) {
		httpd_req_free(req);
		return;
	}
	req->conn = NULL;
	h->st.parked--;
	h->st.client_gone++;
	if (req->on_close != NULL)
		req->on_close(req, req->close_arg);
}

/* Shuts the write side and discards input until EOF or the deadline. */
static void
conn_linger(struct httpd_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
		conn_close(c, "shutdown failed");
		return;
	}
	c->lingered = evbuffer_get_length(in);
	evbuffer_drain(in, c->lingered);
	bufferevent_disable(c->bev, EV_WRITE);
	bufferevent_enable(c->bev, EV_READ);
	conn_set_state(c, CONN_LINGER);
}

static int
add_date(struct buf *b)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		return 0;
	return buf_addf(b, "Date: %s\r\n", date);
}

/* The status line and headers of a response, the blank line included. */
static int
response_head(struct buf *b, int status, const char *ctype, size_t len,
    const struct httpd_header *extra, size_t n_extra, int version,
    bool keep_alive)
{
	size_t i;
	int rc;

	if ((rc = buf_grow(b, HTTPD_HEAD_RESERVE)) != 0 ||
	    (rc = buf_addf(b, "HTTP/1.1 %d %s\r\n", status,
	         httpd_status_text(status))) != 0 ||
	    (rc = add_date(b)) != 0)
		return rc;
	if (ctype != NULL &&
	    (rc = buf_addf(b, "Content-Type: %s\r\n", ctype)) != 0)
		return rc;
	/* RFC 9110 8.6: no Content-Length in a 204. */
	if (status != 204 &&
	    (rc = buf_addf(b, "Content-Length: %zu\r\n", len)) != 0)
		return rc;
	if (!keep_alive)
		rc = buf_addstr(b, "Connection: close\r\n");
	else if (version == 10)
		rc = buf_addstr(b, "Connection: keep-alive\r\n");
	for (i = 0; rc == 0 && i < n_extra; i++)
		rc = buf_addf(b, "%s: %s\r\n", extra[i].name, extra[i].value);
	return rc ? rc : buf_addstr(b, "\r\n");
}

/*
 * Queues a response on @c and moves it to WRITING. @keep_alive false
 * closes the connection once the response is out. Returns 0 or
 * DSC_ENOMEM (the caller closes @c).
 */
static int
conn_queue(struct httpd_conn *c, int status, const char *ctype,
    const void *body, size_t len, const struct httpd_header *extra,
    size_t n_extra, int version, bool keep_alive, bool send_body)
{
	struct buf b = BUF_INIT;
	int rc;

	if (status == 204)
		len = 0;
	rc = response_head(
	    &b, status, ctype, len, extra, n_extra, version, keep_alive);
	if (rc == 0 && bufferevent_write(c->bev, b.p, b.len) != 0)
		rc = DSC_ENOMEM;
	if (rc == 0 && send_body && len > 0 &&
	    bufferevent_write(c->bev, body, len) != 0)
		rc = DSC_ENOMEM;
	buf_release(&b);
	if (rc != 0)
		return rc;
	c->close_after = !keep_alive;
	conn_set_state(c, CONN_WRITING);
	return 0;
}

/* Refuses the request being read with @status and closes afterwards. */
static void
conn_fail(struct httpd_conn *c, int status, const char *why)
{
	char body[HTTPD_WHY_MAX + 2];
	int n;

	log_debug("httpd: %s: refused %d: %s", c->peer, status, why);
	c->h->st.refused++;
	if (c->req != NULL) {
		httpd_req_free(c->req);
		c->req = NULL;
	}
	n = snprintf(body, sizeof(body), "%s\n", why);
	if (conn_queue(c, status, "text/plain; charset=utf-8", body, (size_t)n,
	        NULL, 0, 11, false, true) != 0)
		conn_close(c, "out of memory");
}

/* ---- driving a connection ----------------------------------------------- */

static void
conn_dispatch(struct httpd_conn *c)
{
	struct httpd *h = c->h;

	conn_set_state(c, CONN_PARKED);
	h->st.requests++;
	h->st.parked++;
	h->fn(c->req, h->arg);
	/* @c may be gone now. */
}

/* Parses what is buffered as far as the state allows. */
static void
conn_process(struct httpd_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char why[HTTPD_WHY_MAX];
	int rc;

	for (;;) {
		switch (c->state) {
		case CONN_IDLE:
			if (evbuffer_get_length(in) == 0)
				return;
			if ((c->req = httpd_req_new(c, c->peer)) == NULL) {
				conn_close(c, "out of memory");
				return;
			}
			conn_set_state(c, CONN_HEAD);
			break;
		case CONN_HEAD:
			rc = httpd_req_read_head(c->req, in, &c->h->lim, why);
			if (rc == HTTPD_STEP_MORE)
				return;
			if (rc == HTTPD_STEP_NOMEM) {
				conn_close(c, "out of memory");
				return;
			}
			if (rc != HTTPD_STEP_DONE) {
				conn_fail(c, rc, why);
				return;
			}
			if (c->req->content_length == 0) {
				conn_dispatch(c);
				return;
			}
			if (c->req->expect_continue &&
			    evbuffer_get_length(in) == 0 &&
			    bufferevent_write(c->bev,
			        "HTTP/1.1 100 Continue\r\n\r\n", 25) != 0) {
				conn_close(c, "out of memory");
				return;
			}
			conn_set_state(c, CONN_BODY);
			break;
		case CONN_BODY:
			rc = httpd_req_read_body(c->req, in);
			if (rc == HTTPD_STEP_MORE)
				return;
			if (rc != HTTPD_STEP_DONE) {
				conn_close(c, "out of memory");
				return;
			}
			conn_dispatch(c);
			return;
		case CONN_LINGER:
			c->lingered += evbuffer_get_length(in);
			evbuffer_drain(in, evbuffer_get_length(in));
			if (c->lingered > c->h->lim.body_max)
				conn_close(c, "lingering client kept sending");
			return;
		case CONN_PARKED:
		case CONN_WRITING:
		case CONN_STATE_MAX:
			return;
		}
	}
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct httpd_conn *c = arg;

	if (c->state != CONN_WRITING ||
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (c->close_after) {
		conn_linger(c);
		return;
	}
	conn_set_state(c, CONN_IDLE);
	conn_process(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct httpd_conn *c = arg;

	if (what & BEV_EVENT_EOF) {
		/* A client that half-closed still gets the response it is
		 * owed, but nothing after it. */
		if (c->state == CONN_WRITING &&
		    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
			c->close_after = true;
			return;
		}
		conn_close(c, "client closed");
	} else if (what & BEV_EVENT_TIMEOUT) {
		c->h->st.timeouts++;
		conn_close(c, "write timed out");
	} else {
		conn_close(c, "socket error");
	}
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct httpd_conn *c = arg;
	char why[HTTPD_WHY_MAX];

	(void)fd;
	(void)what;
	switch (c->state) {
	case CONN_IDLE:
		c->h->st.timeouts++;
		conn_close(c, "idle");
		break;
	case CONN_HEAD:
	case CONN_BODY:
		c->h->st.timeouts++;
		snprintf(why, sizeof(why), "request %s not received in %u ms",
		    c->state == CONN_HEAD ? "head" : "body",
		    c->state == CONN_HEAD ? c->h->lim.header_ms
		                          : c->h->lim.body_ms);
		conn_fail(c, 408, why);
		break;
	case CONN_LINGER:
		conn_close(c, "linger over");
		break;
	case CONN_PARKED:
	case CONN_WRITING:
	case CONN_STATE_MAX:
		break;
	}
}

static void
conn_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_process(arg);
}

/* ---- server ------------------------------------------------------------- */

struct httpd *
httpd_new(struct event_base *base, const struct httpd_limits *lim,
    httpd_handler_fn *fn, void *arg, struct dsc_err *err)
{
	static const struct httpd_limits def = HTTPD_LIMITS_DEFAULT;
	struct httpd *h;

	if ((h = dsc_calloc(1, sizeof(*h))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "unable to allocate http server");
		return NULL;
	}
	h->base = base;
	h->fn = fn;
	h->arg = arg;
	h->lim = lim ? *lim : def;
#define HTTPD_DEFAULT(f) (h->lim.f = h->lim.f ? h->lim.f : def.f)
	HTTPD_DEFAULT(line_max);
	HTTPD_DEFAULT(headers_max);
	HTTPD_DEFAULT(header_bytes_max);
	HTTPD_DEFAULT(body_max);
	HTTPD_DEFAULT(conns_max);
	HTTPD_DEFAULT(idle_ms);
	HTTPD_DEFAULT(header_ms);
	HTTPD_DEFAULT(body_ms);
	HTTPD_DEFAULT(write_ms);
	HTTPD_DEFAULT(linger_ms);
#undef HTTPD_DEFAULT
	if (h->lim.headers_max > HTTPD_HEADERS_MAX)
		h->lim.headers_max = HTTPD_HEADERS_MAX;
	return h;
}

void
httpd_free(struct httpd *h)
{
	if (h == NULL)
		return;
	while (h->conns != NULL)
		conn_close(h->conns, "server stopping");
	dsc_free(h);
}

static void
refuse(struct httpd *h, evutil_socket_t fd, const char *why)
{
	time_t now = time(NULL);

	h->st.conns_refused++;
	evutil_closesocket(fd);
	if (now != h->refuse_logged) { /* at most one line a second */
		h->refuse_logged = now;
		log_warn("httpd: connection refused: %s (%" PRIu64 " so far)",
		    why, h->st.conns_refused);
	}
}

/*
 * Puts the bytes the caller read before us in front of the input. A socket
 * bufferevent freezes the end of its input buffer so that only it adds
 * there; thawing it for one add keeps its order of bytes intact.
 */
static int
put_first(struct bufferevent *bev, const uint8_t *first, size_t n)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int rc;

	if (n == 0)
		return 0;
	evbuffer_unfreeze(in, 0);
	rc = evbuffer_add(in, first, n);
	evbuffer_freeze(in, 0);
	return rc;
}

void
httpd_adopt(struct httpd *h, evutil_socket_t fd, const uint8_t *first, size_t n)
{
	struct timeval wtv = { h->lim.write_ms / 1000,
		(h->lim.write_ms % 1000) * 1000 };
	struct httpd_conn *c;
	int one = 1;

	if (h->st.conns_open >= h->lim.conns_max) {
		refuse(h, fd, "too many connections");
		return;
	}
	if ((c = dsc_calloc(1, sizeof(*c))) == NULL) {
		refuse(h, fd, "out of memory");
		return;
	}
	c->h = h;
	evutil_make_socket_nonblocking(fd);
	/* Not every socket is TCP (tests use socketpairs): best effort. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	peer_name(fd, c->peer);
	c->bev = bufferevent_socket_new(h->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		dsc_free(c);
		refuse(h, fd, "out of memory");
		return;
	}
	c->timer = evtimer_new(h->base, conn_timer_cb, c);
	c->kick = event_new(h->base, -1, 0, conn_kick_cb, c);
	if (c->timer == NULL || c->kick == NULL ||
	    put_first(c->bev, first, n) != 0) {
		if (c->timer != NULL)
			event_free(c->timer);
		if (c->kick != NULL)
			event_free(c->kick);
		bufferevent_free(c->bev); /* closes @fd */
		dsc_free(c);
		h->st.conns_refused++;
		return;
	}
	bufferevent_setcb(
	    c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
	bufferevent_set_timeouts(c->bev, NULL, &wtv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = h->conns;
	if (h->conns != NULL)
		h->conns->prev = c;
	h->conns = c;
	h->st.conns_open++;
	h->st.conns_accepted++;
	conn_set_state(c, CONN_IDLE);
	if (n > 0)
		event_active(c->kick, EV_TIMEOUT, 0);
}

void
httpd_stats(const struct httpd *h, struct httpd_stats *st)
{
	*st = h->st;
}

/* ---- requests: the handler's side --------------------------------------- */

bool
httpd_req_closed(const struct httpd_req *req)
{
	return req->conn == NULL;
}

void
httpd_on_close(struct httpd_req *req, httpd_close_fn *fn, void *arg)
{
	req->on_close = fn;
	req->close_arg = arg;
}

/* Takes @req back from its connection, which must hold it parked. */
static struct httpd_conn *
req_detach(struct httpd_req *req)
{
	struct httpd_conn *c = req->conn;

	if (c == NULL)
		return NULL;
	DSC_ASSERT(c->req == req && c->state == CONN_PARKED);
	c->req = NULL;
	req->conn = NULL;
	c->h->st.parked--;
	return c;
}

int
httpd_respond(struct httpd_req *req, int status, const char *content_type,
    const void *body, size_t len, const struct httpd_header *extra,
    size_t n_extra)
{
	static const char internal[] = "internal error: bad response\n";
	struct httpd_conn *c = req_detach(req);
	int rc = 0;

	if (c == NULL) {
		httpd_req_free(req);
		return DSC_EIO;
	}
	if (!httpd_response_ok(status, content_type, extra, n_extra)) {
		log_err("httpd: %s: handler made a bad response (status %d)",
		    req->peer, status);
		status = 500;
		content_type = "text/plain; charset=utf-8";
		body = internal;
		len = sizeof(internal) - 1;
		extra = NULL;
		n_extra = 0;
		rc = DSC_EINVAL;
	}
	if (conn_queue(c, status, content_type, body, len, extra, n_extra,
	        req->version, req->keep_alive, !req->is_head) != 0) {
		conn_close(c, "out of memory");
		rc = DSC_ENOMEM;
	}
	httpd_req_free(req);
	return rc;
}

void
httpd_req_drop(struct httpd_req *req)
{
	struct httpd_conn *c = req_detach(req);

	if (c != NULL)
		conn_close(c, "request dropped unanswered");
	httpd_req_free(req);
}

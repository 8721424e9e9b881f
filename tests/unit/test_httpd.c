/*
 * test_httpd.c - the HTTP/1.1 connection layer over real sockets.
 *
 * Each test runs one event_base with a listener on 127.0.0.1 (port chosen
 * by the kernel) that, like dsc-server's, reads the first bytes of each
 * connection itself and hands the socket and those bytes to httpd_adopt().
 * Clients are plain non-blocking sockets written and read by the test;
 * pump() turns the loop and reads whatever arrived, always for a bounded
 * time. The handler answers with what it saw, or parks requests for the
 * test to answer later.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "t.h"

/* Bytes the test listener reads before adopting (the server sniffs 4). */
#define SNIFF_BYTES 4
/* Upper bound of any wait in a test. */
#define PUMP_MAX_MS 5000
#define MAX_PARKED  16
#define MAX_CLIENTS 32

/* ---- fixture ------------------------------------------------------------ */

enum mode {
	MODE_ECHO,   /* answer at once with what was seen */
	MODE_PARK,   /* keep the request for the test */
	MODE_DROP,   /* drop it unanswered */
	MODE_BADHDR, /* answer with a forbidden header */
};

struct sniffer {
	int fd;
	struct event *ev;
	struct sniffer *next;
};

static struct {
	struct event_base *base;
	struct httpd *h;
	int lfd;
	struct event *lev;
	uint16_t port;
	size_t sniff; /* bytes to read before adopting */
	struct sniffer *sniffers;
	enum mode mode;
	struct httpd_req *parked[MAX_PARKED];
	size_t n_parked;
	int closed; /* close callbacks seen */
	bool drop_on_close;
	/* The last request as the handler saw it; libc memory, so that
	 * allocation failures armed for httpd do not hit the test. */
	char *seen;
	size_t seen_len;
} fx = { .lfd = -1 };

struct client {
	int fd;
	struct buf in;
	bool eof;
};

static struct client clients[MAX_CLIENTS];
static size_t n_clients;
/* While set, pump() leaves the clients' input alone (it allocates). */
static bool clients_deaf;

static void
on_close(struct httpd_req *req, void *arg)
{
	size_t i;

	(void)arg;
	T_ASSERT(httpd_req_closed(req));
	fx.closed++;
	if (!fx.drop_on_close)
		return;
	for (i = 0; i < fx.n_parked; i++)
		if (fx.parked[i] == req)
			fx.parked[i] = NULL;
	httpd_req_drop(req);
}

/* Describes @req: "METHOD path query vVER x-test=... body=...". */
static void
describe(struct httpd_req *req)
{
	const char *xt = httpd_req_header(req, "x-TEST");
	const uint8_t *body;
	size_t len, cap = HTTPD_BODY_MAX + 2 * HTTPD_LINE_MAX;
	int n;

	if (fx.seen == NULL)
		T_ASSERT((fx.seen = malloc(cap)) != NULL);
	body = httpd_req_body(req, &len);
	n = snprintf(fx.seen, cap,
	    "%s %s %s v%d x-test=%s body=", httpd_req_method(req),
	    httpd_req_path(req), httpd_req_query(req), httpd_req_version(req),
	    xt ? xt : "-");
	T_ASSERT(n > 0 && (size_t)n + len < cap);
	memcpy(fx.seen + n, body, len);
	fx.seen_len = (size_t)n + len;
}

static void
handler(struct httpd_req *req, void *arg)
{
	static const struct httpd_header xh[] = { { "X-Reply", "yes" } };
	static const struct httpd_header bad[] = { { "Content-Length", "1" } };

	(void)arg;
	describe(req);
	switch (fx.mode) {
	case MODE_ECHO:
		httpd_respond(
		    req, 200, "text/plain", fx.seen, fx.seen_len, xh, 1);
		break;
	case MODE_PARK:
		T_ASSERT(fx.n_parked < MAX_PARKED);
		httpd_on_close(req, on_close, NULL);
		fx.parked[fx.n_parked++] = req;
		break;
	case MODE_DROP:
		httpd_req_drop(req);
		break;
	case MODE_BADHDR:
		T_EQ(httpd_respond(req, 200, NULL, "x", 1, bad, 1), DSC_EINVAL);
		break;
	}
}

static void
sniff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sniffer *s = arg, **pp;
	uint8_t first[SNIFF_BYTES];
	ssize_t n;

	(void)what;
	n = recv(fd, first, fx.sniff, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	for (pp = &fx.sniffers; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	event_free(s->ev);
	free(s);
	if (n <= 0) {
		close(fd);
		return;
	}
	httpd_adopt(fx.h, fd, first, (size_t)n);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct sniffer *s;
	int fd;

	(void)what;
	(void)arg;
	if ((fd = accept(lfd, NULL, NULL)) < 0)
		return;
	if (fx.sniff == 0) {
		httpd_adopt(fx.h, fd, NULL, 0);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	T_ASSERT((s = calloc(1, sizeof(*s))) != NULL);
	s->fd = fd;
	s->ev = event_new(fx.base, fd, EV_READ | EV_PERSIST, sniff_cb, s);
	event_add(s->ev, NULL);
	s->next = fx.sniffers;
	fx.sniffers = s;
}

static void
teardown(void)
{
	size_t i;

	for (i = 0; i < n_clients; i++) {
		if (clients[i].fd >= 0)
			close(clients[i].fd);
		buf_release(&clients[i].in);
	}
	n_clients = 0;
	httpd_free(fx.h);
	fx.h = NULL;
	/* What the handler still holds, as a careful owner would release. */
	for (i = 0; i < fx.n_parked; i++)
		if (fx.parked[i] != NULL)
			httpd_req_drop(fx.parked[i]);
	fx.n_parked = 0;
	while (fx.sniffers != NULL) {
		struct sniffer *s = fx.sniffers;

		fx.sniffers = s->next;
		close(s->fd);
		event_free(s->ev);
		free(s);
	}
	if (fx.lev != NULL)
		event_free(fx.lev);
	fx.lev = NULL;
	if (fx.lfd >= 0)
		close(fx.lfd);
	fx.lfd = -1;
	if (fx.base != NULL)
		event_base_free(fx.base);
	fx.base = NULL;
	free(fx.seen);
	fx.seen = NULL;
}

/* A fresh loop, server and listener; @lim NULL for the defaults. */
static void
setup(const struct httpd_limits *lim)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	struct dsc_err err = DSC_ERR_INIT;

	teardown(); /* whatever a failed test left */
	dsc_mem_fail_after(-1);
	fx.mode = MODE_ECHO;
	fx.closed = 0;
	fx.drop_on_close = false;
	fx.sniff = SNIFF_BYTES;
	T_ASSERT((fx.base = event_base_new()) != NULL);
	fx.h = httpd_new(fx.base, lim, handler, NULL, &err);
	T_ASSERT(fx.h != NULL);
	T_ASSERT((fx.lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(fx.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	T_EQ(listen(fx.lfd, 64), 0);
	T_EQ(getsockname(fx.lfd, (struct sockaddr *)&sin, &len), 0);
	fx.port = ntohs(sin.sin_port);
	evutil_make_socket_nonblocking(fx.lfd);
	fx.lev =
	    event_new(fx.base, fx.lfd, EV_READ | EV_PERSIST, accept_cb, NULL);
	T_ASSERT(fx.lev != NULL);
	event_add(fx.lev, NULL);
}

static struct client *
client_open(void)
{
	struct sockaddr_in sin = { 0 };
	struct client *cl;

	T_ASSERT(n_clients < MAX_CLIENTS);
	cl = &clients[n_clients++];
	memset(cl, 0, sizeof(*cl));
	T_ASSERT((cl->fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(fx.port);
	T_EQ(connect(cl->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	evutil_make_socket_nonblocking(cl->fd);
	return cl;
}

static void
client_close(struct client *cl)
{
	close(cl->fd);
	cl->fd = -1;
}

static long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what the server sent @cl so far. */
static void
client_read(struct client *cl)
{
	char tmp[65536];
	ssize_t n;

	if (cl->fd < 0)
		return;
	while ((n = recv(cl->fd, tmp, sizeof(tmp), 0)) > 0)
		T_EQ(buf_add(&cl->in, tmp, (size_t)n), 0);
	if (n == 0 || (n < 0 && errno == ECONNRESET))
		cl->eof = true;
}

/* Turns the loop for @ms, reading every client. */
static void
pump(long ms)
{
	long end = now_ms() + ms;
	size_t i;

	do {
		event_base_loop(fx.base, EVLOOP_NONBLOCK);
		for (i = 0; !clients_deaf && i < n_clients; i++)
			client_read(&clients[i]);
		poll(NULL, 0, 1);
	} while (now_ms() < end);
}

/* Sends all of @n bytes, turning the loop while the socket is full. */
static void
client_sendn(struct client *cl, const void *p, size_t n)
{
	const char *s = p;
	long end = now_ms() + PUMP_MAX_MS;
	ssize_t w;

	while (n > 0) {
		w = send(cl->fd, s, n, MSG_NOSIGNAL);
		if (w < 0) {
			T_ASSERT(errno == EAGAIN);
			T_ASSERT(now_ms() < end);
			pump(1);
			continue;
		}
		s += w;
		n -= (size_t)w;
	}
}

static void
client_send(struct client *cl, const char *s)
{
	client_sendn(cl, s, strlen(s));
}

struct resp {
	int status;
	char head[4096];
	struct buf body;
};

/*
 * Takes one whole response off @cl's input into @r; false while there is
 * none. Responses must carry Content-Length, except 204.
 */
static bool
take_response(struct client *cl, struct resp *r)
{
	char *end, *cl_hdr;
	size_t hlen, blen = 0;

	if (cl->in.p == NULL)
		return false;
	end = strstr((char *)cl->in.p, "\r\n\r\n");
	if (end == NULL)
		return false;
	hlen = (size_t)(end + 4 - (char *)cl->in.p);
	T_ASSERT(hlen < sizeof(r->head));
	memcpy(r->head, cl->in.p, hlen);
	r->head[hlen] = '\0';
	T_EQ(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	if ((cl_hdr = strstr(r->head, "\r\nContent-Length: ")) != NULL)
		blen = strtoul(cl_hdr + 18, NULL, 10);
	else
		T_ASSERT(r->status == 204 || r->status == 100);
	if (cl->in.len < hlen + blen)
		return false;
	buf_release(&r->body);
	T_EQ(buf_add(&r->body, cl->in.p + hlen, blen), 0);
	memmove(cl->in.p, cl->in.p + hlen + blen, cl->in.len - hlen - blen);
	buf_truncate(&cl->in, cl->in.len - hlen - blen);
	cl->in.p[cl->in.len] = '\0';
	return true;
}

/* Waits for a response to @cl: its status, or 0 when none came. */
static int
wait_response(struct client *cl, struct resp *r)
{
	long end = now_ms() + PUMP_MAX_MS;

	while (!take_response(cl, r)) {
		if (cl->eof || now_ms() > end)
			return 0;
		pump(1);
	}
	return r->status;
}

/* Waits until the server closed @cl's connection. */
static bool
wait_eof(struct client *cl)
{
	long end = now_ms() + PUMP_MAX_MS;

	while (!cl->eof && now_ms() < end)
		pump(1);
	return cl->eof;
}

static bool
has_header(const struct resp *r, const char *line)
{
	char want[256];

	snprintf(want, sizeof(want), "\r\n%s\r\n", line);
	return strstr(r->head, want) != NULL;
}

/* Sends @req on a new connection; the response status, 0 for none. */
static int
one_shot(const char *req, struct resp *r)
{
	struct client *cl = client_open();

	client_send(cl, req);
	return wait_response(cl, r);
}

#define GET_X "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---- parsing ------------------------------------------------------------ */

TEST(parses_a_request)
{
	struct resp r = { 0 };
	struct httpd_stats st;

	setup(NULL);
	T_EQ(one_shot("POST /a/b?x=1&y=%20 HTTP/1.1\r\nHost: t\r\n"
	              "X-Test:  hello world \r\nContent-Length: 3\r\n\r\nabc",
	         &r),
	    200);
	T_STREQ((char *)r.body.p,
	    "POST /a/b x=1&y=%20 v11 x-test=hello world body=abc");
	T_ASSERT(has_header(&r, "Content-Length: 51"));
	T_ASSERT(has_header(&r, "Content-Type: text/plain"));
	T_ASSERT(has_header(&r, "X-Reply: yes"));
	T_ASSERT(strstr(r.head, "\r\nDate: ") != NULL);
	T_ASSERT(strstr(r.head, "Connection:") == NULL);
	httpd_stats(fx.h, &st);
	T_EQ(st.requests, 1);
	T_EQ(st.conns_open, 1);
	T_EQ(st.parked, 0);
	buf_release(&r.body);
	teardown();
}

static struct httpd_req *
park_one(struct client *cl, const char *req)
{
	long end = now_ms() + PUMP_MAX_MS;
	size_t before = fx.n_parked;

	client_send(cl, req);
	while (fx.n_parked == before && now_ms() < end)
		pump(1);
	T_EQ(fx.n_parked, before + 1);
	return fx.parked[before];
}

TEST(request_accessors)
{
	struct client *cl;
	struct httpd_req *req;
	const char *n, *v;
	const uint8_t *body;
	size_t len;
	struct resp r = { 0 };

	setup(NULL);
	fx.mode = MODE_PARK;
	cl = client_open();
	req = park_one(cl,
	    "PUT /k/v?a=1 HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n"
	    "x-a: 2\r\nContent-Length: 0\r\n\r\n");
	T_STREQ(httpd_req_method(req), "PUT");
	T_STREQ(httpd_req_target(req), "/k/v?a=1");
	T_STREQ(httpd_req_path(req), "/k/v");
	T_STREQ(httpd_req_query(req), "a=1");
	T_STREQ(httpd_req_header(req, "X-A"), "1");
	T_EQ(httpd_req_header_count(req, "x-A"), 2);
	T_EQ(httpd_req_n_headers(req), 4);
	httpd_req_header_at(req, 2, &n, &v);
	T_STREQ(n, "x-a");
	T_STREQ(v, "2");
	T_ASSERT(httpd_req_header(req, "X-B") == NULL);
	body = httpd_req_body(req, &len);
	T_ASSERT(body != NULL);
	T_EQ(len, 0);
	T_ASSERT(strncmp(httpd_req_peer(req), "127.0.0.1:", 10) == 0);
	T_ASSERT(!httpd_req_closed(req));
	T_EQ(httpd_respond(req, 404, NULL, NULL, 0, NULL, 0), 0);
	fx.parked[0] = NULL;
	T_EQ(wait_response(cl, &r), 404);
	T_ASSERT(has_header(&r, "Content-Length: 0"));
	buf_release(&r.body);
	teardown();
}

TEST(split_reads_one_byte_at_a_time)
{
	static const char req[] = "POST /split?q HTTP/1.1\r\nHost: t\r\n"
	                          "X-Test: slow\r\nContent-Length: 5\r\n\r\n"
	                          "hello";
	struct client *cl;
	struct resp r = { 0 };
	size_t i;

	setup(NULL);
	cl = client_open();
	for (i = 0; i < sizeof(req) - 1; i++) {
		client_sendn(cl, req + i, 1);
		pump(1);
		T_ASSERT(cl->in.len == 0 || i == sizeof(req) - 2);
	}
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "POST /split q v11 x-test=slow body=hello");
	buf_release(&r.body);
	teardown();
}

TEST(adopts_without_sniffed_bytes)
{
	struct resp r = { 0 };

	setup(NULL);
	fx.sniff = 0;
	T_EQ(one_shot(GET_X, &r), 200);
	T_STREQ((char *)r.body.p, "GET /x  v11 x-test=- body=");
	buf_release(&r.body);
	teardown();
}

TEST(ignores_empty_line_before_request)
{
	struct resp r = { 0 };

	setup(NULL);
	T_EQ(one_shot("\r\n" GET_X, &r), 200);
	buf_release(&r.body);
	teardown();
}

TEST(head_gets_length_but_no_body)
{
	struct client *cl;
	struct resp r = { 0 };

	setup(NULL);
	cl = client_open();
	client_send(cl, "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\n" GET_X);
	T_EQ(wait_response(cl, &r), 200);
	/* The HEAD response's Content-Length describes a body not sent, so
	 * the raw input holds the next response right after the head. */
	T_EQ(r.body.len, strlen("HEAD /h  v11 x-test=- body="));
	T_ASSERT(strncmp((char *)r.body.p, "HTTP/1.1 200", 12) == 0);
	buf_release(&r.body);
	teardown();
}

/* ---- keep-alive and pipelining ------------------------------------------ */

TEST(keep_alive_serves_many_requests)
{
	struct client *cl;
	struct resp r = { 0 };
	struct httpd_stats st;
	char req[128];
	int i;

	setup(NULL);
	cl = client_open();
	for (i = 0; i < 5; i++) {
		snprintf(req, sizeof(req),
		    "GET /n%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
		client_send(cl, req);
		T_EQ(wait_response(cl, &r), 200);
		snprintf(req, sizeof(req), "GET /n%d  v11", i);
		T_ASSERT(strncmp((char *)r.body.p, req, strlen(req)) == 0);
	}
	httpd_stats(fx.h, &st);
	T_EQ(st.conns_accepted, 1);
	T_EQ(st.requests, 5);
	T_ASSERT(!cl->eof);
	buf_release(&r.body);
	teardown();
}

TEST(pipelined_requests_answered_in_order)
{
	struct client *cl;
	struct resp r = { 0 };

	setup(NULL);
	cl = client_open();
	client_send(cl,
	    "GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
	    "POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
	    "GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
	    "GET /4 HTTP/1.1\r\nHost: t\r\n\r\n");
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "GET /1  v11 x-test=- body=");
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "POST /2  v11 x-test=- body=hi");
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "GET /3  v11 x-test=- body=");
	T_ASSERT(has_header(&r, "Connection: close"));
	/* Nothing after a Connection: close request is read. */
	T_ASSERT(wait_eof(cl));
	T_EQ(cl->in.len, 0);
	buf_release(&r.body);
	teardown();
}

/* ---- parked requests ---------------------------------------------------- */

TEST(async_response_holds_the_connection)
{
	struct client *cl;
	struct httpd_req *req;
	struct resp r = { 0 };
	struct httpd_stats st;

	setup(NULL);
	fx.mode = MODE_PARK;
	cl = client_open();
	req = park_one(cl,
	    "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
	    "GET /next HTTP/1.1\r\nHost: t\r\n\r\n");
	pump(50);
	/* One request at a time: the second waits behind the parked one. */
	T_EQ(fx.n_parked, 1);
	T_EQ(cl->in.len, 0);
	httpd_stats(fx.h, &st);
	T_EQ(st.parked, 1);
	T_EQ(httpd_respond(req, 200, "text/plain", "late", 4, NULL, 0), 0);
	fx.parked[0] = NULL;
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "late");
	pump(20);
	T_EQ(fx.n_parked, 2);
	T_STREQ(httpd_req_path(fx.parked[1]), "/next");
	T_EQ(httpd_respond(fx.parked[1], 503, NULL, NULL, 0, NULL, 0), 0);
	fx.parked[1] = NULL;
	T_EQ(wait_response(cl, &r), 503);
	buf_release(&r.body);
	teardown();
}

TEST(client_close_while_parked_tells_owner)
{
	struct client *cl;
	struct httpd_req *req;
	struct httpd_stats st;
	long end;

	setup(NULL);
	fx.mode = MODE_PARK;
	cl = client_open();
	req = park_one(cl, GET_X);
	client_close(cl);
	end = now_ms() + PUMP_MAX_MS;
	while (fx.closed == 0 && now_ms() < end)
		pump(1);
	T_EQ(fx.closed, 1);
	/* Still valid for its owner; answering it only releases it. */
	T_ASSERT(httpd_req_closed(req));
	T_STREQ(httpd_req_path(req), "/x");
	T_EQ(httpd_respond(req, 200, NULL, "x", 1, NULL, 0), DSC_EIO);
	fx.parked[0] = NULL;
	httpd_stats(fx.h, &st);
	T_EQ(st.conns_open, 0);
	T_EQ(st.parked, 0);
	T_EQ(st.client_gone, 1);
	teardown();
}

TEST(close_callback_may_release)
{
	struct client *cl;
	long end;

	setup(NULL);
	fx.mode = MODE_PARK;
	fx.drop_on_close = true;
	cl = client_open();
	park_one(cl, GET_X);
	client_close(cl);
	end = now_ms() + PUMP_MAX_MS;
	while (fx.closed == 0 && now_ms() < end)
		pump(1);
	T_EQ(fx.closed, 1);
	T_ASSERT(fx.parked[0] == NULL);
	teardown();
}

TEST(free_with_parked_requests)
{
	struct client *a, *b;

	setup(NULL);
	fx.mode = MODE_PARK;
	fx.drop_on_close = true;
	a = client_open();
	b = client_open();
	park_one(a, GET_X);
	park_one(b, GET_X);
	httpd_free(fx.h);
	fx.h = NULL;
	T_EQ(fx.closed, 2);
	T_ASSERT(wait_eof(a));
	T_ASSERT(wait_eof(b));
	teardown();
}

TEST(dropped_request_closes_connection)
{
	struct client *cl;

	setup(NULL);
	fx.mode = MODE_DROP;
	cl = client_open();
	client_send(cl, GET_X);
	T_ASSERT(wait_eof(cl));
	T_EQ(cl->in.len, 0);
	teardown();
}

TEST(bad_response_becomes_500)
{
	struct resp r = { 0 };

	setup(NULL);
	fx.mode = MODE_BADHDR;
	T_EQ(one_shot(GET_X, &r), 500);
	buf_release(&r.body);
	teardown();
}

/* ---- persistence and versions ------------------------------------------- */

TEST(http10_closes_unless_keep_alive)
{
	struct client *cl;
	struct resp r = { 0 };

	setup(NULL);
	cl = client_open();
	client_send(cl, "GET /old HTTP/1.0\r\n\r\n");
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "GET /old  v10 x-test=- body=");
	T_ASSERT(has_header(&r, "Connection: close"));
	T_ASSERT(wait_eof(cl));

	cl = client_open();
	client_send(cl, "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	T_EQ(wait_response(cl, &r), 200);
	T_ASSERT(has_header(&r, "Connection: keep-alive"));
	client_send(cl, "GET /b HTTP/1.0\r\n\r\n");
	T_EQ(wait_response(cl, &r), 200);
	T_ASSERT(has_header(&r, "Connection: close"));
	T_ASSERT(wait_eof(cl));
	buf_release(&r.body);
	teardown();
}

TEST(connection_close_honoured)
{
	struct client *cl;
	struct resp r = { 0 };

	setup(NULL);
	cl = client_open();
	client_send(cl,
	    "GET / HTTP/1.1\r\nHost: t\r\n"
	    "Connection: foo, close\r\n\r\n");
	T_EQ(wait_response(cl, &r), 200);
	T_ASSERT(has_header(&r, "Connection: close"));
	T_ASSERT(wait_eof(cl));
	buf_release(&r.body);
	teardown();
}

TEST(expect_100_continue)
{
	struct client *cl;
	struct resp r = { 0 };

	setup(NULL);
	cl = client_open();
	client_send(cl,
	    "POST /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
	    "Expect: 100-continue\r\n\r\n");
	T_EQ(wait_response(cl, &r), 100);
	client_send(cl, "data");
	T_EQ(wait_response(cl, &r), 200);
	T_STREQ((char *)r.body.p, "POST /e  v11 x-test=- body=data");
	buf_release(&r.body);
	teardown();
}

/* ---- limits and refusals ------------------------------------------------ */

/* Sends @n bytes of @req on a fresh connection; expects @status, a close. */
static void
refused_n(const char *req, size_t n, int status)
{
	struct client *cl = client_open();
	struct resp r = { 0 };

	client_sendn(cl, req, n);
	if (wait_response(cl, &r) != status)
		T_FAIL("'%s': status %d, want %d", req, r.status, status);
	T_ASSERT(has_header(&r, "Connection: close"));
	T_ASSERT(wait_eof(cl));
	buf_release(&r.body);
}

static void
refused(const char *req, int status)
{
	refused_n(req, strlen(req), status);
}

/* For a literal holding NULs. */
#define REFUSED_RAW(lit, status) refused_n((lit), sizeof(lit) - 1, (status))

TEST(bad_request_lines)
{
	setup(NULL);
	refused("GET /\r\n\r\n", 400);
	refused("GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	refused("GET / HTTP/1.1 \r\nHost: t\r\n\r\n", 400);
	refused("GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	refused("G@T / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	refused("GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	refused("GET /a\x01 HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	refused("GET / FOO/1.1\r\nHost: t\r\n\r\n", 400);
	refused("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
	refused("GET / HTTP/1.1\nHost: t\r\n\r\n", 400);
	refused("TOOLONGMETHODNAME1 / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	teardown();
}

TEST(bad_headers)
{
	setup(NULL);
	refused("GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: t\r\nBad : x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: t\r\n: x\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: t\r\nA: 1\r\n folded\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: t\r\nA: x\x7fy\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: t\r\nA: x\ry\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\n\r\n", 400);
	refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
	        "Content-Length: 1\r\n\r\nx",
	    400);
	refused(
	    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400);
	refused(
	    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", 400);
	refused("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\n", 400);
	REFUSED_RAW("GET / HTTP/1.1\r\nHost: t\r\nA: x\0y\r\n\r\n", 400);
	REFUSED_RAW("GET\0x / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	teardown();
}

TEST(framing_refusals)
{
	setup(NULL);
	refused("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
	        "\r\n1\r\nx\r\n0\r\n\r\n",
	    411);
	refused("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
	    501);
	refused("POST / HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417);
	teardown();
}

TEST(body_limit)
{
	static const char head[] = "POST /big HTTP/1.1\r\nHost: t\r\n"
	                           "Content-Length: 1048576\r\n\r\n";
	struct client *cl;
	struct resp r = { 0 };
	char *body;

	setup(NULL);
	refused("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n",
	    413);
	refused("POST / HTTP/1.1\r\nHost: t\r\n"
	        "Content-Length: 99999999999999999999999999\r\n\r\n",
	    413);
	/* A client that sends the body anyway still reads the refusal: the
	 * server discards what follows instead of resetting the connection. */
	cl = client_open();
	client_send(cl,
	    "POST / HTTP/1.1\r\nHost: t\r\n"
	    "Content-Length: 2000000\r\n\r\n");
	T_ASSERT((body = calloc(1, 256 * 1024)) != NULL);
	client_sendn(cl, body, 256 * 1024);
	free(body);
	T_EQ(wait_response(cl, &r), 413);
	T_ASSERT(wait_eof(cl));
	/* Exactly the limit is fine. */
	T_ASSERT((body = malloc(HTTPD_BODY_MAX)) != NULL);
	memset(body, 'b', HTTPD_BODY_MAX);
	cl = client_open();
	client_send(cl, head);
	client_sendn(cl, body, HTTPD_BODY_MAX);
	free(body);
	T_EQ(wait_response(cl, &r), 200);
	T_EQ(r.body.len,
	    strlen("POST /big  v11 x-test=- body=") + HTTPD_BODY_MAX);
	buf_release(&r.body);
	teardown();
}

/* A request whose line or headers are padded to the given sizes. */
static char *
padded(size_t target_len, size_t n_headers)
{
	struct buf b = BUF_INIT;
	size_t i;

	T_EQ(buf_addstr(&b, "GET /"), 0);
	for (i = 1; i < target_len; i++)
		T_EQ(buf_addch(&b, 'a'), 0);
	T_EQ(buf_addstr(&b, " HTTP/1.1\r\nHost: t\r\n"), 0);
	for (i = 0; i < n_headers; i++) {
		T_EQ(buf_addf(&b, "H%03zu: v\r\n", i), 0);
	}
	T_EQ(buf_addstr(&b, "\r\n"), 0);
	return (char *)buf_detach(&b, &i);
}

TEST(request_line_limit)
{
	/* "GET " + target + " HTTP/1.1" = HTTPD_LINE_MAX exactly. */
	size_t fits = HTTPD_LINE_MAX - strlen("GET  HTTP/1.1");
	struct resp r = { 0 };
	char *req;

	setup(NULL);
	req = padded(fits, 0);
	T_EQ(one_shot(req, &r), 200);
	dsc_free(req);
	req = padded(fits + 1, 0);
	refused(req, 414);
	dsc_free(req);
	buf_release(&r.body);
	teardown();
}

TEST(header_count_limit)
{
	struct resp r = { 0 };
	char *req;

	setup(NULL);
	req = padded(1, HTTPD_HEADERS_MAX - 1); /* + Host */
	T_EQ(one_shot(req, &r), 200);
	dsc_free(req);
	req = padded(1, HTTPD_HEADERS_MAX);
	refused(req, 431);
	dsc_free(req);
	buf_release(&r.body);
	teardown();
}

TEST(header_bytes_limit)
{
	struct buf b = BUF_INIT;
	struct resp r = { 0 };
	size_t fill;

	setup(NULL);
	/* Host line (9) + X line + final CRLF (2) = the limit exactly. */
	fill = HTTPD_HEADER_BYTES_MAX - 9 - 2 - strlen("X: \r\n");
	T_EQ(buf_addstr(&b, "GET / HTTP/1.1\r\nHost: t\r\nX: "), 0);
	while (fill-- > 0)
		T_EQ(buf_addch(&b, 'v'), 0);
	T_EQ(buf_addstr(&b, "\r\n\r\n"), 0);
	T_EQ(one_shot((char *)b.p, &r), 200);
	/* One byte more. */
	buf_truncate(&b, b.len - 4);
	T_EQ(buf_addstr(&b, "v\r\n\r\n"), 0);
	refused((char *)b.p, 431);
	/* A header line that never ends is cut off at the limit too. */
	buf_truncate(&b, b.len - 4);
	T_EQ(buf_addstr(&b, "vvvvvvvv"), 0);
	refused((char *)b.p, 431);
	buf_release(&b);
	buf_release(&r.body);
	teardown();
}

TEST(slowloris_times_out)
{
	struct httpd_limits lim = HTTPD_LIMITS_DEFAULT;
	struct client *cl;
	struct resp r = { 0 };
	struct httpd_stats st;
	long start, end;

	lim.header_ms = 300;
	setup(&lim);
	cl = client_open();
	start = now_ms();
	client_send(cl, "GET / HTTP/1.1\r\n");
	/* Trickling bytes does not extend the deadline: the refusal comes
	 * while the client still trickles, long before this loop gives up. */
	end = start + 3000;
	while (!cl->eof && cl->in.len == 0 && now_ms() < end) {
		client_send(cl, "X");
		pump(20);
	}
	T_ASSERT(cl->in.len > 0);
	T_ASSERT(now_ms() - start >= 250);
	T_EQ(wait_response(cl, &r), 408);
	T_ASSERT(wait_eof(cl));
	httpd_stats(fx.h, &st);
	T_EQ(st.timeouts, 1);
	buf_release(&r.body);
	teardown();
}

TEST(slow_body_times_out)
{
	struct httpd_limits lim = HTTPD_LIMITS_DEFAULT;
	struct client *cl;
	struct resp r = { 0 };

	lim.body_ms = 200;
	setup(&lim);
	cl = client_open();
	client_send(cl,
	    "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n"
	    "\r\nabc");
	T_EQ(wait_response(cl, &r), 408);
	T_ASSERT(wait_eof(cl));
	buf_release(&r.body);
	teardown();
}

TEST(idle_keep_alive_closes)
{
	struct httpd_limits lim = HTTPD_LIMITS_DEFAULT;
	struct client *cl;
	struct resp r = { 0 };
	long start;

	lim.idle_ms = 200;
	setup(&lim);
	cl = client_open();
	client_send(cl, GET_X);
	T_EQ(wait_response(cl, &r), 200);
	start = now_ms();
	T_ASSERT(wait_eof(cl));
	T_ASSERT(now_ms() - start >= 150);
	T_EQ(cl->in.len, 0); /* closed quietly, no 408 */
	/* A parked request has no deadline. */
	fx.mode = MODE_PARK;
	cl = client_open();
	park_one(cl, GET_X);
	pump(400);
	T_ASSERT(!cl->eof);
	T_EQ(fx.closed, 0);
	buf_release(&r.body);
	teardown();
}

TEST(connection_limit)
{
	struct httpd_limits lim = HTTPD_LIMITS_DEFAULT;
	struct client *a, *b, *c;
	struct resp r = { 0 };
	struct httpd_stats st;

	lim.conns_max = 2;
	setup(&lim);
	fx.sniff = 0;
	a = client_open();
	b = client_open();
	pump(30);
	c = client_open();
	T_ASSERT(wait_eof(c));
	httpd_stats(fx.h, &st);
	T_EQ(st.conns_refused, 1);
	T_EQ(st.conns_open, 2);
	client_send(a, GET_X);
	T_EQ(wait_response(a, &r), 200);
	client_close(b);
	pump(30);
	c = client_open();
	client_send(c, GET_X);
	T_EQ(wait_response(c, &r), 200);
	buf_release(&r.body);
	teardown();
}

TEST(out_of_memory_anywhere)
{
	struct client *cl;
	struct resp r = { 0 };
	long n;
	int st;

	for (n = 0; n < 20; n++) {
		setup(NULL);
		fx.sniff = 0;
		cl = client_open();
		pump(20); /* adopted with memory to spare */
		clients_deaf = true;
		dsc_mem_fail_after(n);
		client_send(cl,
		    "POST /m?x HTTP/1.1\r\nHost: t\r\n"
		    "Content-Length: 3\r\n\r\nabc");
		pump(30);
		dsc_mem_fail_after(-1);
		clients_deaf = false;
		st = wait_response(cl, &r);
		T_ASSERT(st == 200 || st == 0);
		if (st == 0)
			T_ASSERT(wait_eof(cl));
		buf_release(&r.body);
		teardown();
	}
}

/* ---- query helpers ------------------------------------------------------ */

TEST(query_decoding)
{
	const char *q = "a=1&&b=x%20y+z&flag&c=%2F%2f&d=";
	char n[16], v[16];

	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), 0);
	T_STREQ(n, "a");
	T_STREQ(v, "1");
	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), 0);
	T_STREQ(n, "b");
	T_STREQ(v, "x y z");
	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), 0);
	T_STREQ(n, "flag");
	T_STREQ(v, "");
	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), 0);
	T_STREQ(v, "//");
	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), 0);
	T_STREQ(n, "d");
	T_STREQ(v, "");
	T_EQ(httpd_query_next(&q, n, sizeof(n), v, sizeof(v)), DSC_ENOTFOUND);

	T_EQ(httpd_query_get("x=1&wait=10s&x=2", "x", v, sizeof(v)), 0);
	T_STREQ(v, "1");
	T_EQ(httpd_query_get("x=1", "wait", v, sizeof(v)), DSC_ENOTFOUND);
	T_EQ(httpd_query_get("", "x", v, sizeof(v)), DSC_ENOTFOUND);
	T_EQ(httpd_query_get("x=%zz", "x", v, sizeof(v)), DSC_EINVAL);
	T_EQ(httpd_query_get("x=%2", "x", v, sizeof(v)), DSC_EINVAL);
	T_EQ(httpd_query_get("x=%00", "x", v, sizeof(v)), DSC_EINVAL);
	T_EQ(httpd_query_get("x=0123456789abcdef", "x", v, sizeof(v)),
	    DSC_ETOOBIG);
	T_EQ(httpd_query_get("x=0123456789abcde", "x", v, sizeof(v)), 0);
	T_STREQ(httpd_status_text(431), "Request Header Fields Too Large");
	T_STREQ(httpd_status_text(299), "Unknown");
}

T_MAIN()

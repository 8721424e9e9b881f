/*
 * test_peers.c - peer links over real loopback sockets: two peers
 * handshake and trade Raft messages, INTRO comes first, a join learns the
 * id, links come back after a restart, and a wrong key, a tampered,
 * replayed or oversized frame, garbage after "DSCP" and undecodable
 * messages close the link, are counted and reach no callback.
 *
 * Each test drives one event_base. Ports come from the kernel; the test's
 * own listener sniffs four bytes and hands the socket to peers_accept, as
 * dsc-server's listener does. Every wait is bounded (WAIT_MS). Fake peers
 * speak the handshake themselves with auth.h, from the test.
 */
#include "peers.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "auth.h"
#include "buf.h"
#include "log.h"
#include "mem.h"
#include "raft_codec.h"
#include "t.h"

/* ---- fixture ------------------------------------------------------- */

#define WAIT_MS 5000
#define MAX_REC 64

static struct event_base *base;
static struct event *tick;
static uint8_t key[AUTH_KEY_SIZE], key2[AUTH_KEY_SIZE];

/* A frame other than RAFT, as on_frame saw it. */
struct rec_frame {
	uint64_t from;
	uint8_t kind;
	struct buf data;
	unsigned seq;
};

/* One server under test: a peers object and the listener in front. */
struct node {
	uint64_t id;
	const char *ip;
	uint16_t port;
	char addr[64];
	const uint8_t *key;
	struct peers *p;
	evutil_socket_t lfd;
	struct event *lev;
	bool raw; /* accepted sockets go to raw_fd, not peers */
	evutil_socket_t raw_fd;
	struct sockaddr_in last_src; /* where the last accept came from */
	unsigned accepts;
	/* What the callbacks saw; seq orders raft and frames together. */
	unsigned seq;
	struct buf msgs[MAX_REC]; /* raft messages, re-encoded */
	unsigned msg_seq[MAX_REC];
	size_t n_msgs;
	struct rec_frame frames[MAX_REC];
	size_t n_frames;
	unsigned ups, downs;
	uint64_t last_link_id;
	bool link_up;
	bool forget_on_up; /* on_link(up) calls peers_forget */
	unsigned counted;  /* raft messages seen while count_only */
	bool count_only;   /* on_raft only counts (allocations may fail) */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until @cond holds; fails the test after WAIT_MS. */
#define WAIT_UNTIL(cond)                                                       \
	do {                                                                   \
		uint64_t t_end_ = now_ms() + WAIT_MS;                          \
		while (!(cond)) {                                              \
			if (now_ms() > t_end_)                                 \
				T_FAIL("timed out waiting for %s", #cond);     \
			event_base_loop(base, EVLOOP_ONCE);                    \
		}                                                              \
	} while (0)

static void
run_for(unsigned ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
setup(void)
{
	struct timeval tv = { 0, 5000 };
	const char *v = getenv("T_PEERS_LOG");

	signal(SIGPIPE, SIG_IGN);
	log_init("test_peers", v ? LOG_DEBUG : LOG_ERR, false);
	dsc_mem_fail_after(-1);
	T_EQ(auth_init(NULL), 0);
	memset(key, 0x11, sizeof(key));
	memset(key2, 0x22, sizeof(key2));
	T_ASSERT((base = event_base_new()) != NULL);
	T_ASSERT((tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL)));
	event_add(tick, &tv);
}

static void
teardown(void)
{
	event_free(tick);
	event_base_free(base);
	base = NULL;
}

/* ---- callbacks ------------------------------------------------------- */

static void
on_raft(void *ctx, const struct raft_msg *m)
{
	struct node *n = ctx;
	struct buf b = BUF_INIT;

	if (n->count_only) {
		n->counted++;
		return;
	}
	if (n->n_msgs == MAX_REC)
		T_FAIL("node %" PRIu64 ": too many messages", n->id);
	T_EQ(raft_msg_encode(m, &b, NULL), 0);
	n->msg_seq[n->n_msgs] = n->seq++;
	n->msgs[n->n_msgs++] = b;
}

static void
on_frame(void *ctx, uint64_t from, uint8_t kind, const uint8_t *p, size_t len)
{
	struct node *n = ctx;
	struct rec_frame *f;

	if (n->n_frames == MAX_REC)
		T_FAIL("node %" PRIu64 ": too many frames", n->id);
	f = &n->frames[n->n_frames++];
	f->from = from;
	f->kind = kind;
	f->data = (struct buf)BUF_INIT;
	f->seq = n->seq++;
	T_EQ(buf_add(&f->data, p, len), 0);
}

static void
on_link(void *ctx, uint64_t id, bool up)
{
	struct node *n = ctx;

	n->last_link_id = id;
	n->link_up = up;
	if (up)
		n->ups++;
	else
		n->downs++;
	if (up && n->forget_on_up)
		peers_forget(n->p, id);
}

/* ---- the listener ---------------------------------------------------- */

struct sniff {
	struct node *n;
	evutil_socket_t fd;
	struct event *ev;
	uint8_t buf[4];
	size_t len;
};

static void
sniff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sniff *s = arg;
	ssize_t r;

	(void)what;
	r = recv(fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (r > 0 && (s->len += (size_t)r) < sizeof(s->buf))
		return;
	if (r > 0 && memcmp(s->buf, "DSCP", 4) == 0 && s->n->p != NULL)
		peers_accept(s->n->p, fd, s->buf, s->len);
	else
		close(fd);
	event_free(s->ev);
	free(s);
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct node *n = arg;
	socklen_t len = sizeof(n->last_src);
	struct sniff *s;
	int fd;

	(void)what;
	fd = accept(lfd, (struct sockaddr *)&n->last_src, &len);
	if (fd < 0)
		return;
	n->accepts++;
	evutil_make_socket_nonblocking(fd);
	if (n->raw) {
		if (n->raw_fd >= 0)
			close(n->raw_fd);
		n->raw_fd = fd;
		return;
	}
	T_ASSERT((s = calloc(1, sizeof(*s))) != NULL);
	s->n = n;
	s->fd = fd;
	s->ev = event_new(base, fd, EV_READ | EV_PERSIST, sniff_cb, s);
	event_add(s->ev, NULL);
}

static void
listener_open(struct node *n)
{
	struct sockaddr_in sa = { 0 };
	socklen_t len = sizeof(sa);
	int one = 1;

	sa.sin_family = AF_INET;
	sa.sin_port = htons(n->port);
	T_EQ(inet_pton(AF_INET, n->ip, &sa.sin_addr), 1);
	T_ASSERT((n->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	setsockopt(n->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	T_EQ(bind(n->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	T_EQ(listen(n->lfd, 16), 0);
	T_EQ(getsockname(n->lfd, (struct sockaddr *)&sa, &len), 0);
	n->port = ntohs(sa.sin_port);
	snprintf(n->addr, sizeof(n->addr), "%s:%u", n->ip, n->port);
	evutil_make_socket_nonblocking(n->lfd);
	n->lev = event_new(base, n->lfd, EV_READ | EV_PERSIST, accept_cb, n);
	event_add(n->lev, NULL);
}

static void
listener_close(struct node *n)
{
	if (n->lev != NULL)
		event_free(n->lev);
	if (n->lfd >= 0)
		close(n->lfd);
	n->lev = NULL;
	n->lfd = -1;
}

static void
peers_open(struct node *n)
{
	struct peers_config c = { 0 };
	struct dsc_err err = DSC_ERR_INIT;

	c.self_id = n->id;
	c.bind_addr = n->addr;
	c.key = n->key;
	c.cb = (struct peers_callbacks){ n, on_raft, on_frame, on_link };
	n->p = peers_new(base, &c, &err);
	if (n->p == NULL)
		T_FAIL("peers_new: %s", err.msg);
}

/* A node with id @id listening on @ip (port from the kernel). */
static void
node_start(struct node *n, uint64_t id, const char *ip)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->ip = ip;
	n->key = key;
	n->lfd = n->raw_fd = -1;
	listener_open(n);
	peers_open(n);
}

static void
node_clear(struct node *n)
{
	for (size_t i = 0; i < n->n_msgs; i++)
		buf_release(&n->msgs[i]);
	for (size_t i = 0; i < n->n_frames; i++)
		buf_release(&n->frames[i].data);
	n->n_msgs = n->n_frames = 0;
}

static void
node_stop(struct node *n)
{
	peers_free(n->p);
	n->p = NULL;
	listener_close(n);
	if (n->raw_fd >= 0)
		close(n->raw_fd);
	n->raw_fd = -1;
	node_clear(n);
}

static struct peers_stats
stats(const struct node *n)
{
	struct peers_stats st;

	peers_stats(n->p, &st);
	return st;
}

/* Links @a and @b both ways and waits until both are up. */
static void
link_pair(struct node *a, struct node *b)
{
	peers_set_addr(a->p, b->id, b->addr);
	peers_set_addr(b->p, a->id, a->addr);
	WAIT_UNTIL(peers_link_up(a->p, b->id) && peers_link_up(b->p, a->id));
}

static void
decode(const struct node *n, size_t i, struct raft_msg *m,
    struct raft_msg_storage *st)
{
	T_ASSERT(i < n->n_msgs);
	T_EQ(raft_msg_decode(n->msgs[i].p, n->msgs[i].len, m, st, NULL), 0);
}

/* ---- fake peers: raw sockets speaking auth.h from the test ----------- */

static int
fake_connect(const struct node *to)
{
	struct sockaddr_in sa = { 0 };
	int fd;

	sa.sin_family = AF_INET;
	sa.sin_port = htons(to->port);
	inet_pton(AF_INET, to->ip, &sa.sin_addr);
	T_ASSERT((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	/* Loopback: the kernel completes it from the backlog at once. */
	T_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	evutil_make_socket_nonblocking(fd);
	return fd;
}

static void
fake_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t end = now_ms() + WAIT_MS;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w > 0) {
			b += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN) {
			T_FAIL("send: %s", strerror(errno));
		} else if (now_ms() > end) {
			T_FAIL("send timed out");
		} else {
			event_base_loop(base, EVLOOP_ONCE);
		}
	}
}

/* Reads exactly @n bytes, running the loop meanwhile. */
static void
fake_read(int fd, void *p, size_t n)
{
	uint8_t *b = p;
	uint64_t end = now_ms() + WAIT_MS;

	while (n > 0) {
		ssize_t r = recv(fd, b, n, MSG_DONTWAIT);

		if (r > 0) {
			b += r;
			n -= (size_t)r;
		} else if (r == 0 || errno != EAGAIN) {
			T_FAIL("fake peer: connection closed");
		} else if (now_ms() > end) {
			T_FAIL("fake peer: read timed out");
		} else {
			event_base_loop(base, EVLOOP_ONCE);
		}
	}
}

/* True once the other end closed @fd (data before that is discarded). */
static bool
fake_closed(int fd)
{
	uint8_t junk[4096];
	ssize_t r;

	while ((r = recv(fd, junk, sizeof(junk), MSG_DONTWAIT)) > 0)
		;
	return r == 0 || (r < 0 && errno != EAGAIN);
}

static void
fake_handshake(int fd, struct peer_sess *s, enum peer_role role,
    const uint8_t *k, uint64_t id)
{
	uint8_t mine[PEER_HELLO_SIZE], theirs[PEER_HELLO_SIZE];
	uint8_t tag[PEER_AUTH_SIZE];

	T_EQ(peer_sess_init(s, k, role, id, NULL), 0);
	T_EQ(peer_hello_make(s, mine, NULL), 0);
	fake_write(fd, mine, sizeof(mine));
	fake_read(fd, theirs, sizeof(theirs));
	T_EQ(peer_hello_read(s, theirs, sizeof(theirs), NULL), 0);
	T_EQ(peer_auth_make(s, tag, NULL), 0);
	fake_write(fd, tag, sizeof(tag));
	fake_read(fd, tag, sizeof(tag));
	T_EQ(peer_auth_verify(s, tag, sizeof(tag), NULL), 0);
}

/* Seals kind + @len bytes into @out (appended). */
static void
fake_seal(struct peer_sess *s, uint8_t kind, const void *p, size_t len,
    struct buf *out)
{
	struct buf pt = BUF_INIT;

	T_EQ(buf_addch(&pt, kind), 0);
	T_EQ(buf_add(&pt, p, len), 0);
	T_EQ(peer_seal(s, pt.p, pt.len, out, NULL), 0);
	buf_release(&pt);
}

/* Reads and opens one frame into @plain (replaced). */
static void
fake_recv(int fd, struct peer_sess *s, struct buf *plain)
{
	uint8_t hdr[PEER_FRAME_HDR];
	struct buf frame = BUF_INIT;
	size_t need;

	fake_read(fd, hdr, sizeof(hdr));
	T_EQ(peer_frame_size(s, hdr, sizeof(hdr), &need, NULL), 0);
	T_EQ(buf_add(&frame, hdr, sizeof(hdr)), 0);
	T_EQ(buf_grow(&frame, need), 0);
	fake_read(fd, frame.p + sizeof(hdr), need - sizeof(hdr));
	frame.len = need;
	buf_clear(plain);
	T_EQ(peer_open(s, frame.p, frame.len, plain, NULL), 0);
	buf_release(&frame);
}

/* A fake client of @n, past the handshake, and its reading of INTRO. */
static int
fake_client(struct node *n, struct peer_sess *s, uint64_t id)
{
	int fd = fake_connect(n);

	fake_handshake(fd, s, PEER_CLIENT, key, id);
	return fd;
}

static void
raft_bytes(const struct raft_msg *m, struct buf *out)
{
	buf_clear(out);
	T_EQ(raft_msg_encode(m, out, NULL), 0);
}

/* ---- tests ------------------------------------------------------------- */

TEST(handshake_and_raft_both_ways)
{
	struct node a, b;
	struct raft_entry e[3];
	struct raft_msg m = { 0 }, got;
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct peers_stats sa, sb;
	static uint8_t data[3][100];

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	link_pair(&a, &b);
	T_EQ(a.ups, 1);
	T_EQ(a.last_link_id, 2);
	T_EQ(b.ups, 1);
	T_EQ(b.last_link_id, 1);
	/* Each side's connection really came from its own address. */
	T_EQ(ntohl(b.last_src.sin_addr.s_addr), 0x7f000002);
	T_EQ(ntohl(a.last_src.sin_addr.s_addr), 0x7f000003);

	for (int i = 0; i < 3; i++) {
		memset(data[i], 'a' + i, sizeof(data[i]));
		e[i] = (struct raft_entry){ 5, 11 + (uint64_t)i,
			RAFT_ENTRY_NORMAL, 100, data[i] };
	}
	m.type = RAFT_MSG_APPEND;
	m.from = 1;
	m.to = 2;
	m.term = 5;
	m.index = 10;
	m.log_term = 4;
	m.commit = 9;
	m.n_entries = 3;
	m.entries = e;
	peers_send_raft(a.p, &m);
	m = (struct raft_msg){ .type = RAFT_MSG_APPEND_RESP,
		.from = 2,
		.to = 1,
		.term = 5,
		.index = 13,
		.reject = true,
		.hint = 7 };
	peers_send_raft(b.p, &m);
	WAIT_UNTIL(a.n_msgs == 1 && b.n_msgs == 1);

	decode(&b, 0, &got, &st);
	T_EQ(got.type, RAFT_MSG_APPEND);
	T_EQ(got.from, 1);
	T_EQ(got.to, 2);
	T_EQ(got.term, 5);
	T_EQ(got.index, 10);
	T_EQ(got.log_term, 4);
	T_EQ(got.commit, 9);
	T_EQ(got.n_entries, 3);
	for (int i = 0; i < 3; i++) {
		T_EQ(got.entries[i].index, 11 + i);
		T_EQ(got.entries[i].term, 5);
		T_EQ(got.entries[i].len, 100);
		T_MEMEQ(got.entries[i].data, data[i], 100);
	}
	decode(&a, 0, &got, &st);
	T_EQ(got.type, RAFT_MSG_APPEND_RESP);
	T_EQ(got.from, 2);
	T_EQ(got.index, 13);
	T_ASSERT(got.reject);
	T_EQ(got.hint, 7);

	sa = stats(&a);
	sb = stats(&b);
	T_EQ(sa.frames_out, 1);
	T_EQ(sb.frames_in, 1);
	T_EQ(sa.bytes_out, sb.bytes_in);
	T_EQ(sa.connects, 2); /* its outgoing and its incoming link */
	T_EQ(sa.auth_failures + sb.auth_failures, 0);
	T_EQ(sa.dropped + sb.dropped, 0);
	raft_msg_storage_release(&st);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(intro_first_on_every_link_and_resent_when_changed)
{
	struct node a, b;
	struct raft_msg m = {
		.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1
	};

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	peers_set_intro(a.p, "{\"id\":1}");
	peers_set_intro(b.p, "{\"id\":2}");
	link_pair(&a, &b);
	peers_send_raft(a.p, &m);
	/* Each side sends INTRO on its outgoing and its incoming link. */
	WAIT_UNTIL(b.n_msgs == 1 && b.n_frames == 2 && a.n_frames == 2);
	T_EQ(b.frames[0].seq, 0); /* before the heartbeat */
	for (int i = 0; i < 2; i++) {
		T_EQ(b.frames[i].kind, 2);
		T_EQ(b.frames[i].from, 1);
		T_STREQ((char *)b.frames[i].data.p, "{\"id\":1}");
		T_STREQ((char *)a.frames[i].data.p, "{\"id\":2}");
	}
	T_ASSERT(b.msg_seq[0] > 0);

	peers_set_intro(a.p, "{\"id\":1}"); /* unchanged: not resent */
	peers_set_intro(a.p, "{\"id\":1,\"x\":2}");
	WAIT_UNTIL(b.n_frames == 4);
	T_STREQ((char *)b.frames[3].data.p, "{\"id\":1,\"x\":2}");
	run_for(50);
	T_EQ(b.n_frames, 4);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(join_learns_the_id_and_ignores_ourselves)
{
	struct node a, b;
	uint8_t x = 42;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 7, "127.0.0.3");
	peers_join(a.p, a.addr); /* our own address: dropped */
	peers_join(a.p, b.addr);
	peers_join(a.p, b.addr); /* twice: one link */
	WAIT_UNTIL(peers_link_up(a.p, 7));
	T_EQ(a.ups, 1);
	T_EQ(a.last_link_id, 7);
	T_ASSERT(peers_send(a.p, 7, 3, &x, 1));
	WAIT_UNTIL(b.n_frames == 1);
	T_EQ(b.frames[0].from, 1);
	T_EQ(b.frames[0].kind, 3);
	T_EQ(b.frames[0].data.p[0], 42);

	/* The joined link is node 7's link: reconnects go there, the
	 * same address is not dialled again. */
	peers_set_addr(a.p, 7, b.addr);
	run_for(200);
	T_EQ(a.ups, 1);
	T_EQ(a.downs, 0);
	T_EQ(stats(&a).auth_failures, 0);
	/* Our own address was dialled once (plus b's link), then dropped. */
	T_EQ(a.accepts, 1);
	T_EQ(b.accepts, 1);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(join_of_a_linked_node_closes_the_duplicate)
{
	struct node a, b;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	link_pair(&a, &b);
	/* Another address for b: its loopback alias on 127.0.0.4. */
	listener_close(&b);
	b.ip = "127.0.0.4";
	b.port = 0;
	listener_open(&b);
	peers_join(a.p, b.addr);
	WAIT_UNTIL(b.accepts == 2);
	run_for(300);
	T_EQ(b.accepts, 2); /* not retried */
	T_ASSERT(peers_link_up(a.p, 2));
	T_EQ(a.ups, 1);
	T_EQ(a.downs, 0);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(join_takes_over_a_peer_whose_address_fails)
{
	struct node a, b;
	uint16_t port;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	peers_set_addr(a.p, 2, "127.0.0.9:1"); /* refused, retrying */
	run_for(30);
	peers_join(a.p, b.addr);
	WAIT_UNTIL(peers_link_up(a.p, 2));
	T_EQ(a.ups, 1);
	/* Reconnects now go to the address that worked. */
	port = b.port;
	node_stop(&b);
	WAIT_UNTIL(a.downs == 1);
	listener_open(&b);
	T_EQ(b.port, port);
	peers_open(&b);
	WAIT_UNTIL(peers_link_up(a.p, 2));
	T_EQ(b.accepts, 2);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(callbacks_may_call_back_in)
{
	struct node a, b;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	a.forget_on_up = true;
	peers_set_addr(a.p, 2, b.addr);
	WAIT_UNTIL(a.ups == 1);
	WAIT_UNTIL(a.downs == 1); /* from the loop, after the up */
	T_ASSERT(!peers_link_up(a.p, 2));
	run_for(200);
	T_EQ(a.ups, 1);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(wrong_key_reaches_no_callback)
{
	struct node a, b;
	struct peers_stats sa, sb;

	setup();
	node_start(&a, 1, "127.0.0.2");
	memset(&b, 0, sizeof(b));
	b.id = 2;
	b.ip = "127.0.0.3";
	b.key = key2;
	b.lfd = b.raw_fd = -1;
	listener_open(&b);
	peers_open(&b);
	peers_set_intro(a.p, "{}");
	peers_set_intro(b.p, "{}");
	peers_set_addr(a.p, 2, b.addr);
	peers_set_addr(b.p, 1, a.addr);
	/* Per connection, the first side to check a tag counts; the other
	 * may see the close first. Two connections, one each way. */
	WAIT_UNTIL(stats(&a).auth_failures + stats(&b).auth_failures >= 2);
	run_for(300);
	sa = stats(&a);
	sb = stats(&b);
	T_ASSERT(!peers_link_up(a.p, 2));
	T_ASSERT(!peers_link_up(b.p, 1));
	T_EQ(sa.connects + sb.connects, 0);
	T_EQ(a.ups + b.ups + a.n_frames + b.n_frames, 0);
	T_EQ(a.n_msgs + b.n_msgs, 0);
	/* Retried with backoff: more than one attempt, but few. */
	T_ASSERT(b.accepts >= 2 && b.accepts <= 6);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(fake_client_with_the_wrong_key_is_counted)
{
	struct node a;
	struct peer_sess s;
	uint8_t mine[PEER_HELLO_SIZE], theirs[PEER_HELLO_SIZE];
	uint8_t tag[PEER_AUTH_SIZE];
	int fd;

	setup();
	node_start(&a, 1, "127.0.0.2");
	fd = fake_connect(&a);
	T_EQ(peer_sess_init(&s, key2, PEER_CLIENT, 9, NULL), 0);
	T_EQ(peer_hello_make(&s, mine, NULL), 0);
	fake_write(fd, mine, sizeof(mine));
	fake_read(fd, theirs, sizeof(theirs));
	T_EQ(peer_hello_read(&s, theirs, sizeof(theirs), NULL), 0);
	T_EQ(peer_auth_make(&s, tag, NULL), 0);
	fake_write(fd, tag, sizeof(tag));
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).auth_failures, 1);
	T_EQ(stats(&a).connects, 0);
	T_EQ(a.n_frames + a.n_msgs, 0);
	close(fd);
	peer_sess_release(&s);
	node_stop(&a);
	teardown();
}

TEST(tampered_replayed_and_oversized_frames_close_the_link)
{
	struct node a;
	struct peer_sess s;
	struct buf out = BUF_INIT, msg = BUF_INIT, plain = BUF_INIT;
	struct raft_msg m = { .type = RAFT_MSG_VOTE,
		.from = 9,
		.to = 1,
		.term = 3,
		.index = 4,
		.log_term = 2 };
	uint8_t big[PEER_FRAME_HDR] = { 0xff, 0xff, 0xff, 0xff };
	int fd;

	setup();
	node_start(&a, 1, "127.0.0.2");
	peers_set_intro(a.p, "{\"id\":1}");

	/* A good frame passes, its replay closes the link. */
	fd = fake_client(&a, &s, 9);
	fake_recv(fd, &s, &plain); /* INTRO comes first */
	T_EQ(plain.p[0], 2);
	T_STREQ((char *)plain.p + 1, "{\"id\":1}");
	raft_bytes(&m, &msg);
	fake_seal(&s, 1, msg.p, msg.len, &out);
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(a.n_msgs == 1);
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).auth_failures, 1);
	T_EQ(stats(&a).disconnects, 1);
	T_EQ(a.n_msgs, 1);
	close(fd);
	peer_sess_release(&s);

	/* One flipped bit. */
	fd = fake_client(&a, &s, 9);
	buf_clear(&out);
	fake_seal(&s, 1, msg.p, msg.len, &out);
	out.p[out.len / 2] ^= 0x10;
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).auth_failures, 2);
	T_EQ(a.n_msgs, 1);
	close(fd);
	peer_sess_release(&s);

	/* A length over PEER_MAX_FRAME, refused before anything is read. */
	fd = fake_client(&a, &s, 9);
	fake_write(fd, big, sizeof(big));
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).auth_failures, 3);
	close(fd);
	peer_sess_release(&s);

	T_EQ(a.n_msgs, 1);
	T_EQ(a.n_frames, 0);
	T_EQ(stats(&a).proto_errors, 0);
	buf_release(&out);
	buf_release(&msg);
	buf_release(&plain);
	node_stop(&a);
	teardown();
}

TEST(authenticated_garbage_is_a_protocol_error)
{
	struct node a;
	struct peer_sess s;
	struct buf out = BUF_INIT, msg = BUF_INIT;
	struct raft_msg m = {
		.type = RAFT_MSG_VOTE, .from = 9, .to = 1, .term = 3
	};
	const uint8_t junk[] = { 1, 2, 3 };
	int fd;

	setup();
	node_start(&a, 1, "127.0.0.2");

	/* Unknown kinds go to on_frame; an undecodable RAFT closes. */
	fd = fake_client(&a, &s, 9);
	fake_seal(&s, 77, junk, sizeof(junk), &out);
	fake_seal(&s, 1, junk, sizeof(junk), &out);
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(a.n_frames, 1);
	T_EQ(a.frames[0].kind, 77);
	T_EQ(a.frames[0].from, 9);
	T_EQ(a.frames[0].data.len, 3);
	T_EQ(stats(&a).proto_errors, 1);
	T_EQ(stats(&a).auth_failures, 0);
	close(fd);
	peer_sess_release(&s);

	/* A message claiming another sender than the handshake's. */
	fd = fake_client(&a, &s, 9);
	m.from = 8;
	raft_bytes(&m, &msg);
	buf_clear(&out);
	fake_seal(&s, 1, msg.p, msg.len, &out);
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).proto_errors, 2);

	/* An empty frame. */
	close(fd);
	peer_sess_release(&s);
	fd = fake_client(&a, &s, 9);
	buf_clear(&out);
	T_EQ(peer_seal(&s, "", 0, &out, NULL), 0);
	fake_write(fd, out.p, out.len);
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).proto_errors, 3);
	T_EQ(a.n_msgs, 0);
	close(fd);
	peer_sess_release(&s);
	buf_release(&out);
	buf_release(&msg);
	node_stop(&a);
	teardown();
}

TEST(garbage_after_dscp_is_refused)
{
	struct node a;
	uint8_t junk[PEER_HELLO_SIZE], hello[PEER_HELLO_SIZE];
	int fd;

	setup();
	node_start(&a, 1, "127.0.0.2");
	memset(junk, 'x', sizeof(junk));
	memcpy(junk, "DSCP", 4);
	fd = fake_connect(&a);
	fake_write(fd, junk, sizeof(junk));
	WAIT_UNTIL(fake_closed(fd));
	T_EQ(stats(&a).auth_failures, 1);
	close(fd);

	/* A hello claiming our own id is not counted; we still send our
	 * hello, which tells a connecting half of ourselves to stop. */
	junk[4] = 1;
	junk[5] = 0;
	memset(junk + 6, 0, 8);
	junk[6] = 1;
	fd = fake_connect(&a);
	fake_write(fd, junk, sizeof(junk));
	fake_read(fd, hello, sizeof(hello));
	T_EQ(get_u64le(hello + 6), 1);
	close(fd);
	run_for(20);
	T_EQ(stats(&a).auth_failures, 1);

	/* A peer that goes quiet mid-hello holds nothing when freed. */
	fd = fake_connect(&a);
	fake_write(fd, junk, 10);
	run_for(20);
	T_EQ(a.n_frames + a.n_msgs, 0);
	node_stop(&a);
	close(fd);
	teardown();
}

TEST(reconnects_after_the_other_side_restarts)
{
	struct node a, b;
	struct raft_msg m = {
		.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1
	};
	uint16_t port;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	link_pair(&a, &b);
	port = b.port;
	node_stop(&b);
	WAIT_UNTIL(a.downs == 1);
	T_ASSERT(!a.link_up);
	T_ASSERT(!peers_link_up(a.p, 2));
	peers_send_raft(a.p, &m);
	T_EQ(stats(&a).dropped, 1);
	run_for(300); /* a few refused attempts */

	b.port = port;
	listener_open(&b);
	T_EQ(b.port, port);
	peers_open(&b);
	peers_set_addr(b.p, 1, a.addr);
	WAIT_UNTIL(peers_link_up(a.p, 2) && peers_link_up(b.p, 1));
	T_EQ(a.ups, 2);
	peers_send_raft(a.p, &m);
	WAIT_UNTIL(b.n_msgs == 1);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(messages_without_a_link_are_dropped)
{
	struct node a;
	struct raft_msg m = {
		.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 5, .term = 1
	};

	setup();
	node_start(&a, 1, "127.0.0.2");
	peers_send_raft(a.p, &m);
	T_ASSERT(!peers_send(a.p, 5, 3, "x", 1));
	T_ASSERT(!peers_send(a.p, 1, 3, "x", 1)); /* ourselves */
	T_ASSERT(!peers_link_up(a.p, 5));
	/* A known address that refuses connections: still no link. */
	peers_set_addr(a.p, 5, "127.0.0.9:1");
	run_for(50);
	T_ASSERT(!peers_send(a.p, 5, 3, "x", 1));
	T_EQ(stats(&a).dropped, 4);
	T_EQ(stats(&a).frames_out, 0);
	node_stop(&a);
	teardown();
}

TEST(outgoing_source_address_is_the_bind_address)
{
	struct node a, b;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.1");
	peers_set_addr(a.p, 2, b.addr);
	WAIT_UNTIL(peers_link_up(a.p, 2));
	T_EQ(b.accepts, 1);
	T_EQ(ntohl(b.last_src.sin_addr.s_addr), 0x7f000002);
	T_NE(ntohs(b.last_src.sin_port), a.port);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(an_8_mib_snapshot_goes_through)
{
	struct node a, b;
	struct raft_msg m = { .type = RAFT_MSG_SNAPSHOT,
		.from = 1,
		.to = 2,
		.term = 4 },
	                got;
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	size_t len = 8u << 20;
	uint8_t *data;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	link_pair(&a, &b);
	T_ASSERT((data = malloc(len)) != NULL);
	randombytes_buf(data, len);
	m.snapshot.meta.index = 100;
	m.snapshot.meta.term = 3;
	m.snapshot.meta.conf.n = 2;
	m.snapshot.meta.conf.servers[0] = (struct raft_server){ 1, RAFT_VOTER };
	m.snapshot.meta.conf.servers[1] = (struct raft_server){ 2, RAFT_VOTER };
	m.snapshot.len = len;
	m.snapshot.data = data;
	peers_send_raft(a.p, &m);
	m = (struct raft_msg){
		.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 4
	};
	peers_send_raft(a.p, &m);
	WAIT_UNTIL(b.n_msgs == 2);
	decode(&b, 0, &got, &st);
	T_EQ(got.type, RAFT_MSG_SNAPSHOT);
	T_EQ(got.snapshot.meta.index, 100);
	T_EQ(got.snapshot.meta.conf.n, 2);
	T_EQ(got.snapshot.len, len);
	T_MEMEQ(got.snapshot.data, data, len);
	decode(&b, 1, &got, &st);
	T_EQ(got.type, RAFT_MSG_HEARTBEAT);
	free(data);
	raft_msg_storage_release(&st);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(a_stuck_peer_fills_the_queue_then_messages_drop)
{
	struct node a, f;
	struct peer_sess s;
	struct buf plain = BUF_INIT;
	size_t chunk = 1u << 20, sent = 0;
	uint8_t *data;

	setup();
	node_start(&a, 1, "127.0.0.2");
	memset(&f, 0, sizeof(f));
	f.id = 2;
	f.ip = "127.0.0.3";
	f.raw = true;
	f.lfd = f.raw_fd = -1;
	listener_open(&f);
	peers_set_addr(a.p, 2, f.addr);
	WAIT_UNTIL(f.raw_fd >= 0);
	fake_handshake(f.raw_fd, &s, PEER_SERVER, key, 2);
	WAIT_UNTIL(peers_link_up(a.p, 2));

	/* The loop does not run, so nothing leaves the queue. */
	T_ASSERT((data = calloc(1, chunk)) != NULL);
	while (peers_send(a.p, 2, 3, data, chunk))
		sent++;
	T_EQ(sent, 63); /* 64 MiB / (1 MiB + 21 bytes) */
	T_EQ(stats(&a).dropped, 1);
	T_ASSERT(peers_link_up(a.p, 2));

	/* Dropping spent no frame counter: everything opens in order. */
	T_ASSERT(peers_send(a.p, 2, 4, "end", 3));
	for (size_t i = 0; i < sent; i++) {
		fake_recv(f.raw_fd, &s, &plain);
		T_EQ(plain.len, chunk + 1);
		T_EQ(plain.p[0], 3);
	}
	fake_recv(f.raw_fd, &s, &plain);
	T_EQ(plain.p[0], 4);
	T_EQ(plain.len, 4);
	free(data);
	buf_release(&plain);
	peer_sess_release(&s);
	node_stop(&a);
	node_stop(&f);
	teardown();
}

TEST(wrong_node_at_an_address_is_never_up)
{
	struct node a, b;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	peers_set_addr(a.p, 3, b.addr); /* b is node 2 */
	WAIT_UNTIL(b.accepts >= 2);
	T_ASSERT(!peers_link_up(a.p, 3));
	T_EQ(a.ups, 0);
	T_EQ(stats(&a).connects, 0);
	T_EQ(stats(&a).auth_failures, 0);
	/* The address is corrected: the link comes up. */
	peers_set_addr(a.p, 2, b.addr);
	WAIT_UNTIL(peers_link_up(a.p, 2));
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(forget_and_moves_report_the_link_down_from_the_loop)
{
	struct node a, b, c;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	link_pair(&a, &b);
	/* Node 2 moves: the old link goes down, a new one comes up. */
	memset(&c, 0, sizeof(c));
	c.id = 2;
	c.ip = "127.0.0.4";
	c.key = key;
	c.lfd = c.raw_fd = -1;
	listener_open(&c);
	peers_open(&c);
	peers_set_addr(a.p, 2, c.addr);
	T_EQ(a.downs, 0); /* not from inside the call */
	WAIT_UNTIL(a.downs == 1 && a.ups == 2 && peers_link_up(a.p, 2));
	T_EQ(c.accepts, 1);

	peers_forget(a.p, 2);
	T_EQ(a.downs, 1);
	T_ASSERT(!peers_link_up(a.p, 2));
	WAIT_UNTIL(a.downs == 2);
	run_for(300);
	T_EQ(c.accepts, 1); /* no reconnect */
	T_EQ(a.ups, 2);
	node_stop(&a);
	node_stop(&b);
	node_stop(&c);
	teardown();
}

TEST(bad_addresses_are_refused)
{
	static const char *bad[] = {
		"",
		"127.0.0.1",
		"127.0.0.1:",
		":80",
		"127.0.0.1:65536",
		"127.0.0.1:-1",
		"127.0.0.1:8x",
		"localhost:80",
		"1.2.3:80",
		"[::1]80",
		"::1:80",
		"[::1:80",
		"127.0.0.1:123456",
	};
	struct peers_config c = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct node a;

	setup();
	c.self_id = 1;
	c.key = key;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.bind_addr = bad[i];
		T_ASSERT(peers_new(base, &c, &err) == NULL);
		T_EQ(err.code, DSC_EINVAL);
	}
	c.bind_addr = "127.0.0.2:8300";
	c.self_id = 0;
	T_ASSERT(peers_new(base, &c, &err) == NULL);

	node_start(&a, 1, "127.0.0.2");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		peers_set_addr(a.p, 2, bad[i]);
		peers_join(a.p, bad[i]);
	}
	peers_set_addr(a.p, 2, "127.0.0.9:0");
	peers_set_addr(a.p, 2, NULL);
	run_for(50);
	T_EQ(stats(&a).dropped + stats(&a).connects, 0);
	node_stop(&a);
	teardown();
}

TEST(ipv6_loopback_links)
{
	struct node a;
	struct peers_config c = { 0 };
	struct sockaddr_in6 sa = { 0 };
	socklen_t len = sizeof(sa);
	struct peers *p6;
	char addr[64];
	int lfd, fd;

	setup();
	sa.sin6_family = AF_INET6;
	sa.sin6_addr = in6addr_loopback;
	if ((lfd = socket(AF_INET6, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "  (no IPv6 loopback: skipped)\n");
		if (lfd >= 0)
			close(lfd);
		teardown();
		return;
	}
	T_EQ(listen(lfd, 4), 0);
	T_EQ(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	snprintf(addr, sizeof(addr), "[::1]:%u", ntohs(sa.sin6_port));
	node_start(&a, 1, "127.0.0.2");
	c.self_id = 2;
	c.bind_addr = "[::1]:0";
	c.key = key;
	T_ASSERT((p6 = peers_new(base, &c, NULL)) != NULL);
	peers_set_addr(a.p, 2, addr); /* v4 bind, v6 peer: unbound */
	fd = -1;
	{
		uint64_t end = now_ms() + WAIT_MS;
		uint8_t first[4];

		evutil_make_socket_nonblocking(lfd);
		while ((fd = accept(lfd, NULL, NULL)) < 0 && now_ms() < end)
			event_base_loop(base, EVLOOP_ONCE);
		T_ASSERT(fd >= 0);
		fake_read(fd, first, sizeof(first));
		peers_accept(p6, fd, first, sizeof(first));
	}
	WAIT_UNTIL(peers_link_up(a.p, 2));
	peers_free(p6);
	close(lfd);
	node_stop(&a);
	teardown();
}

TEST(allocation_failures_drop_or_close_never_crash)
{
	struct peers_config c = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct node a, b;
	struct raft_entry e = { 1, 1, RAFT_ENTRY_NORMAL, 0, NULL };
	struct raft_msg m = { .type = RAFT_MSG_APPEND,
		.from = 1,
		.to = 2,
		.term = 1,
		.n_entries = 1,
		.entries = &e };
	static uint8_t data[64 * 1024];
	unsigned seen = 0;
	struct peers *p;

	setup();
	c.self_id = 1;
	c.key = key;
	c.bind_addr = "127.0.0.2:0";
	for (long k = 0; k < 4; k++) {
		dsc_mem_fail_after(k);
		p = peers_new(base, &c, &err);
		dsc_mem_fail_after(-1);
		T_ASSERT(p != NULL || err.code == DSC_ENOMEM);
		peers_free(p);
	}

	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	b.count_only = true;
	link_pair(&a, &b);
	/* Each round needs bigger buffers on both sides, so the k-th
	 * allocation fails somewhere new; the loop runs while armed. */
	for (long k = 0; k < 8; k++) {
		struct peers_stats sa = stats(&a), sb = stats(&b);

		e.len = (uint32_t)(4096u << (k % 5));
		e.data = data;
		dsc_mem_fail_after(k % 3);
		peers_send_raft(a.p, &m);
		run_for(30);
		dsc_mem_fail_after(-1);
		if (b.counted > seen)
			seen = b.counted;
		else
			T_ASSERT(stats(&a).dropped > sa.dropped ||
			    stats(&a).disconnects > sa.disconnects ||
			    stats(&b).disconnects > sb.disconnects);
		WAIT_UNTIL(peers_link_up(a.p, 2) && peers_link_up(b.p, 1));
	}
	peers_send_raft(a.p, &m);
	WAIT_UNTIL(b.counted > seen);
	node_stop(&a);
	node_stop(&b);
	teardown();
}

TEST(free_with_links_open_and_traffic_queued)
{
	struct node a, b, c;
	struct raft_msg m = {
		.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1
	};
	int fd;

	setup();
	node_start(&a, 1, "127.0.0.2");
	node_start(&b, 2, "127.0.0.3");
	node_start(&c, 3, "127.0.0.4");
	peers_set_intro(a.p, "{\"id\":1}");
	link_pair(&a, &b);
	peers_set_addr(a.p, 3, c.addr); /* c knows nobody */
	peers_join(a.p, "127.0.0.9:1"); /* refused, retrying */
	fd = fake_connect(&a);          /* mid-handshake */
	fake_write(fd, "DSCP\1\0", 6);
	for (int i = 0; i < MAX_REC; i++)
		peers_send_raft(a.p, &m);
	run_for(5);
	peers_forget(a.p, 2); /* a report queued, never sent */
	node_stop(&a);        /* ASan checks the rest */
	T_EQ(a.downs, 0);
	WAIT_UNTIL(fake_closed(fd));
	close(fd);
	node_stop(&b);
	node_stop(&c);
	teardown();
}

T_MAIN()

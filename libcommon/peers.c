/*
 * peers.c - persistent, authenticated, encrypted links between servers.
 *
 * Two objects. A dialer is a peer we send to: its id (0 while joining), its
 * address, the backoff timer and at most one link, which is the peer's
 * outgoing link. A link is one TCP connection in one of the states below;
 * outgoing links belong to their dialer, incoming ones (peers_accept) to
 * nobody but the list of links, and only ever carry the INTRO we send first.
 * Messages go out on the outgoing link only, so the two ends never have to
 * agree which of two crossing connections wins.
 *
 * on_link reports the outgoing link: up once its handshake completes, down
 * when an up link is lost, forgotten, or replaced on an address change.
 * Every up is followed by one down, except after peers_free, which calls
 * nothing. Incoming links are not reported (nothing is sent on them).
 * Callbacks run from the loop; when a peers_* call itself closes a link
 * (peers_set_addr, peers_forget), the down report is queued and delivered
 * from the loop, so no callback runs inside a call into this module.
 *
 * Hot path: a message is encoded into one reused buffer (kind byte first),
 * sealed into a second reused one and copied into the bufferevent's output;
 * frames are opened straight out of the input buffer when they sit in one
 * chain, else out of a third reused buffer. A link's output is capped at
 * PEERS_QUEUE_MAX bytes; beyond that messages are dropped (Raft resends),
 * checked before sealing so the frame counter never skips.
 */
#include "peers.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sodium.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "prng.h"
#include "raft_codec.h"

/* "[ipv6]:port" fits; longer addresses are refused. */
#define PEERS_ADDR_MAX 64
/* Reconnect delay: doubles from min to max, jittered down to half. */
#define PEERS_BACKOFF_MIN_MS 100
#define PEERS_BACKOFF_MAX_MS 5000
/* From socket() or accept to an authenticated link. */
#define PEERS_HANDSHAKE_MS 5000
/* Output bytes a link may hold before messages are dropped. */
#define PEERS_QUEUE_MAX (64u << 20)
/* Unauthenticated links at once; more are refused at accept. */
#define PEERS_MAX_HANDSHAKING 64
/* Unacknowledged output this old kills an outgoing connection (a peer
 * behind a partition, or gone without a FIN), so it reconnects. */
#define PEERS_USER_TIMEOUT_MS 10000
/* TCP keepalive: first probe, interval, probes before giving up. */
#define PEERS_KEEPIDLE_S 5
#define PEERS_KEEPINTVL_S 2
#define PEERS_KEEPCNT 3
/* Bytes read or written per socket call by a bufferevent. */
#define PEERS_IO_CHUNK (256 * 1024)
/* Reused buffers grown past this are freed after use. */
#define PEERS_SHRINK_CAP (4u << 20)

/* Frame kinds this module looks at (cmd/dsc-server/README.md). */
#define KIND_RAFT 1
#define KIND_INTRO 2

enum link_state {
	LINK_CONNECTING = 0,	/* outgoing: connect() in progress */
	LINK_HELLO,		/* our hello sent, waiting for theirs */
	LINK_AUTH,		/* our tag sent, waiting for theirs */
	LINK_OPEN,		/* authenticated: frames flow */
	LINK_DRAIN,		/* refused; input ignored until the other end
				 * closes or the deadline passes */
	LINK_CLOSED,		/* socket gone; freed when no callback holds it */
	LINK_STATE_MAX
};

static const char *const link_state_names[LINK_STATE_MAX] = {
	"connecting", "hello", "auth", "open", "drain", "closed",
};

struct dialer;

struct link {
	struct peers *p;
	struct link *prev, *next;	/* p->links */
	struct dialer *d;	/* owner of an outgoing link; NULL: incoming */
	struct bufferevent *bev;
	struct event *deadline;	/* handshake timeout */
	struct peer_sess sess;
	enum link_state state;
	bool incoming;
	bool lowmark;		/* read low watermark set for a big frame */
	bool queue_full;	/* dropping: warned once */
	unsigned busy;		/* callbacks on the stack: free deferred */
	uint64_t id;		/* the peer's id, once its hello is read */
	char addr[PEERS_ADDR_MAX];
};

struct dialer {
	struct peers *p;
	struct dialer *prev, *next;	/* p->dialers */
	uint64_t id;		/* 0 while joining */
	char addr[PEERS_ADDR_MAX];
	struct sockaddr_storage sa;
	socklen_t salen;
	struct link *link;	/* the attempt in progress or the live link */
	struct event *retry;
	unsigned backoff_ms;
	bool up;		/* on_link(up) reported */
};

struct note {
	uint64_t id;
	bool up;
};

struct peers {
	struct event_base *base;
	uint64_t self_id;
	uint8_t key[AUTH_KEY_SIZE];
	struct peers_callbacks cb;
	struct sockaddr_storage bind_sa;
	socklen_t bind_len;	/* 0: let the kernel pick the source */
	struct dialer *dialers;
	struct link *links;
	unsigned n_handshaking;
	char *intro;
	size_t intro_len;
	struct prng rng;
	struct buf tx_plain, tx_sealed, rx_frame, rx_plain;
	struct raft_msg_storage rx_msgs;
	struct peers_stats st;
	/* on_link reports waiting for the loop (see the top). */
	struct event *notify_ev;
	struct note *notes;
	size_t n_notes, cap_notes;
	unsigned in_api;
	bool freeing;
};

/* How a link is named in logs: "to '127.0.0.3:8300' (node 3)". */
#define LINK_FMT "%s '%s' (node %" PRIu64 ")"
#define LINK_ARGS(l) ((l)->incoming ? "from" : "to"), (l)->addr, (l)->id

static void link_close(struct link *l, const char *why);
static void dialer_schedule(struct dialer *d, bool now);
static void dialer_free(struct dialer *d, const char *why);

/* ---- addresses and sockets ---------------------------------------------- */

/*
 * Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric only: resolving names
 * would block the loop). Port 0 only when @any_port. 0 or -1.
 */
static int
parse_addr(const char *s, bool any_port, struct sockaddr_storage *ss,
	   socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *port, *end;
	size_t hlen;
	unsigned long v = 0;
	bool v6;

	if (s == NULL || strlen(s) >= PEERS_ADDR_MAX)
		return -1;
	if (s[0] == '[') {
		if ((end = strchr(s, ']')) == NULL || end[1] != ':')
			return -1;
		s++;
		hlen = (size_t)(end - s);
		port = end + 2;
		v6 = true;
	} else {
		if ((end = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', (size_t)(end - s)) != NULL)
			return -1;
		hlen = (size_t)(end - s);
		port = end + 1;
		v6 = false;
	}
	if (hlen == 0 || hlen >= sizeof(host) || port[0] == '\0' ||
	    strlen(port) > 5)
		return -1;
	for (const char *c = port; *c != '\0'; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v > 65535 || (v == 0 && !any_port))
		return -1;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)v);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)v);
		*len = sizeof(*a);
	}
	return 0;
}

/* The other end of @fd as "ADDR:PORT", for logs. */
static void
peer_name(evutil_socket_t fd, char out[PEERS_ADDR_MAX])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;

			evutil_inet_ntop(AF_INET, &a->sin_addr, host,
					 sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			evutil_inet_ntop(AF_INET6, &a->sin6_addr, host,
					 sizeof(host));
			port = ntohs(a->sin6_port);
			snprintf(out, PEERS_ADDR_MAX, "[%s]:%u", host, port);
			return;
		}
	}
	snprintf(out, PEERS_ADDR_MAX, "%s:%u", host, port);
}

static void
set_opt(evutil_socket_t fd, int level, int name, int v, const char *what)
{
	if (setsockopt(fd, level, name, &v, sizeof(v)) != 0)
		log_debug("peer link: setsockopt(%s): %s", what,
			  strerror(errno));
}

/* Low latency, and dead peers noticed in seconds rather than hours. */
static void
tune_socket(evutil_socket_t fd, bool outgoing)
{
	set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	set_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
#ifdef TCP_KEEPIDLE
	set_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE, PEERS_KEEPIDLE_S,
		"TCP_KEEPIDLE");
	set_opt(fd, IPPROTO_TCP, TCP_KEEPINTVL, PEERS_KEEPINTVL_S,
		"TCP_KEEPINTVL");
	set_opt(fd, IPPROTO_TCP, TCP_KEEPCNT, PEERS_KEEPCNT, "TCP_KEEPCNT");
#endif
#ifdef TCP_USER_TIMEOUT
	if (outgoing)
		set_opt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
			PEERS_USER_TIMEOUT_MS, "TCP_USER_TIMEOUT");
#else
	(void)outgoing;
#endif
}

/* ---- on_link reports ---------------------------------------------------- */

static void
notify(struct peers *p, uint64_t id, bool up)
{
	struct note *n;

	if (p->cb.on_link == NULL || p->freeing)
		return;
	if (p->in_api == 0 && p->n_notes == 0) {
		p->cb.on_link(p->cb.ctx, id, up);
		return;
	}
	if (p->n_notes == p->cap_notes) {
		size_t cap = p->cap_notes ? 2 * p->cap_notes : 8;

		n = dsc_reallocarray(p->notes, cap, sizeof(*n));
		if (n == NULL) {
			log_warn("peer link: out of memory; link %s for node "
				 "%" PRIu64 " not reported", up ? "up" : "down",
				 id);
			return;
		}
		p->notes = n;
		p->cap_notes = cap;
	}
	p->notes[p->n_notes++] = (struct note){ id, up };
	event_active(p->notify_ev, EV_TIMEOUT, 0);
}

static void
notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peers *p = arg;

	(void)fd;
	(void)what;
	/* A report may queue more; they are delivered in this same pass. */
	for (size_t i = 0; i < p->n_notes; i++) {
		struct note n = p->notes[i];

		p->cb.on_link(p->cb.ctx, n.id, n.up);
	}
	p->n_notes = 0;
}

/* ---- links: life and death ---------------------------------------------- */

static void
link_set_state(struct link *l, enum link_state state)
{
	log_debug("peer link " LINK_FMT ": %s -> %s", LINK_ARGS(l),
		  link_state_names[l->state], link_state_names[state]);
	l->state = state;
}

/* Ends a callback's hold on @l; frees it if it was closed meanwhile. */
static void
link_release(struct link *l)
{
	if (--l->busy == 0 && l->state == LINK_CLOSED)
		dsc_free(l);
}

static void
link_read_cb(struct bufferevent *bev, void *arg);
static void
link_event_cb(struct bufferevent *bev, short what, void *arg);

static void
link_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	(void)fd;
	(void)what;
	if (l->state == LINK_HELLO || l->state == LINK_AUTH)
		log_warn("peer link " LINK_FMT ": handshake timed out",
			 LINK_ARGS(l));
	link_close(l, "connect or handshake timed out");
}

/*
 * A link in state LINK_CONNECTING over @fd, which it owns from here on
 * (closed on failure). NULL when out of memory.
 */
static struct link *
link_new(struct peers *p, evutil_socket_t fd, bool incoming, const char *addr)
{
	struct timeval tv = { PEERS_HANDSHAKE_MS / 1000,
			      (PEERS_HANDSHAKE_MS % 1000) * 1000 };
	struct dsc_err err = DSC_ERR_INIT;
	struct link *l;

	if ((l = dsc_calloc(1, sizeof(*l))) == NULL) {
		log_warn("peer link %s '%s': out of memory",
			 incoming ? "from" : "to", addr);
		evutil_closesocket(fd);
		return NULL;
	}
	l->p = p;
	l->incoming = incoming;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	if (peer_sess_init(&l->sess, p->key,
			   incoming ? PEER_SERVER : PEER_CLIENT, p->self_id,
			   &err) != 0 ||
	    (l->bev = bufferevent_socket_new(p->base, fd,
					     BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (l->deadline = evtimer_new(p->base, link_deadline_cb, l)) ==
		    NULL) {
		log_warn("peer link " LINK_FMT ": unable to start: %s",
			 LINK_ARGS(l),
			 err.code ? dsc_err_msg(&err) : "out of memory");
		if (l->bev != NULL)
			bufferevent_free(l->bev);
		else
			evutil_closesocket(fd);
		peer_sess_release(&l->sess);
		dsc_free(l);
		return NULL;
	}
	bufferevent_setcb(l->bev, link_read_cb, NULL, link_event_cb, l);
	bufferevent_set_max_single_read(l->bev, PEERS_IO_CHUNK);
	bufferevent_set_max_single_write(l->bev, PEERS_IO_CHUNK);
	evtimer_add(l->deadline, &tv);
	l->next = p->links;
	if (p->links != NULL)
		p->links->prev = l;
	p->links = l;
	p->n_handshaking++;
	return l;
}

/*
 * Closes @l: the socket, its timer and session go now, the struct when no
 * callback holds it. An outgoing link's dialer schedules a retry, and
 * reports the link down if it was up (last, since the report may call back
 * into this module).
 */
static void
link_close(struct link *l, const char *why)
{
	struct peers *p = l->p;
	struct dialer *d = l->d;
	bool was_up = false;
	uint64_t id = 0;

	if (l->state == LINK_CLOSED)
		return;
	if (l->state == LINK_OPEN) {
		p->st.disconnects++;
		log_info("peer link " LINK_FMT " down: %s", LINK_ARGS(l), why);
	} else {
		p->n_handshaking--;
		log_debug("peer link " LINK_FMT " closed: %s", LINK_ARGS(l),
			  why);
	}
	link_set_state(l, LINK_CLOSED);
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		p->links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	l->prev = l->next = NULL;
	bufferevent_free(l->bev);
	l->bev = NULL;
	event_free(l->deadline);
	l->deadline = NULL;
	peer_sess_release(&l->sess);
	if (d != NULL) {
		l->d = NULL;
		d->link = NULL;
		was_up = d->up;
		id = d->id;
		d->up = false;
		dialer_schedule(d, false);
	}
	if (l->busy == 0)
		dsc_free(l);
	if (was_up)
		notify(p, id, false);
}

static void
auth_fail(struct link *l, const struct dsc_err *err)
{
	l->p->st.auth_failures++;
	log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l), dsc_err_msg(err));
	link_close(l, "authentication failed");
}

static void
proto_fail(struct link *l, const char *what)
{
	l->p->st.proto_errors++;
	log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l), what);
	link_close(l, "protocol error");
}

/* ---- sending ------------------------------------------------------------ */

static void
shrink(struct buf *b)
{
	if (b->cap > PEERS_SHRINK_CAP)
		buf_release(b);
}

/* Seals p->tx_plain onto @l's output; false when dropped. */
static bool
link_seal(struct link *l)
{
	struct peers *p = l->p;
	struct evbuffer *out = bufferevent_get_output(l->bev);
	struct dsc_err err = DSC_ERR_INIT;
	size_t wire = PEER_FRAME_HDR + p->tx_plain.len + PEER_TAG_SIZE;
	bool ok = false;

	/* Before sealing: a sealed frame not sent would skip a counter. */
	if (p->tx_plain.len > PEER_MAX_PLAIN) {
		log_warn("peer link " LINK_FMT ": message of %zu bytes over "
			 "the frame limit; dropped", LINK_ARGS(l),
			 p->tx_plain.len);
		goto out;
	}
	if (evbuffer_get_length(out) + wire > PEERS_QUEUE_MAX) {
		if (!l->queue_full)
			log_warn("peer link " LINK_FMT ": %u bytes queued; "
				 "dropping messages", LINK_ARGS(l),
				 PEERS_QUEUE_MAX);
		l->queue_full = true;
		goto out;
	}
	buf_clear(&p->tx_sealed);
	if (peer_seal(&l->sess, p->tx_plain.p, p->tx_plain.len, &p->tx_sealed,
		      &err) != 0) {
		log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l),
			 dsc_err_msg(&err));
		goto out;
	}
	if (evbuffer_add(out, p->tx_sealed.p, p->tx_sealed.len) != 0) {
		p->st.dropped++;
		link_close(l, "out of memory");	/* its counter is spent */
		return false;
	}
	l->queue_full = false;
	p->st.frames_out++;
	p->st.bytes_out += wire;
	ok = true;
out:
	if (!ok)
		p->st.dropped++;
	shrink(&p->tx_plain);
	shrink(&p->tx_sealed);
	return ok;
}

static bool
link_send(struct link *l, uint8_t kind, const void *data, size_t len)
{
	struct peers *p = l->p;

	buf_clear(&p->tx_plain);
	if (buf_addch(&p->tx_plain, kind) != 0 ||
	    buf_add(&p->tx_plain, data, len) != 0) {
		log_warn("peer link " LINK_FMT ": out of memory; message "
			 "dropped", LINK_ARGS(l));
		p->st.dropped++;
		return false;
	}
	return link_seal(l);
}

/* ---- receiving ---------------------------------------------------------- */

static void
link_dispatch(struct link *l, const uint8_t *pt, size_t len)
{
	struct peers *p = l->p;
	struct dsc_err err = DSC_ERR_INIT;
	struct raft_msg m;
	char what[DSC_ERRMSG_MAX + 64];
	int rc;

	if (len == 0) {
		proto_fail(l, "empty frame");
		return;
	}
	if (pt[0] != KIND_RAFT) {
		if (p->cb.on_frame != NULL)
			p->cb.on_frame(p->cb.ctx, l->id, pt[0], pt + 1, len - 1);
		return;
	}
	if ((rc = raft_msg_decode(pt + 1, len - 1, &m, &p->rx_msgs, &err)) !=
	    0) {
		if (rc == DSC_ENOMEM) {
			log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l),
				 dsc_err_msg(&err));
			link_close(l, "out of memory");
			return;
		}
		snprintf(what, sizeof(what), "undecodable raft message: %s",
			 dsc_err_msg(&err));
		proto_fail(l, what);
		return;
	}
	if (m.from != l->id || m.to != p->self_id) {
		snprintf(what, sizeof(what),
			 "raft message from node %" PRIu64 " to node %" PRIu64
			 " on this link",
			 m.from, m.to);
		proto_fail(l, what);
		return;
	}
	if (p->cb.on_raft != NULL)
		p->cb.on_raft(p->cb.ctx, &m);
}

/* Opens and dispatches one frame if a whole one is buffered. */
static bool
link_read_frame(struct link *l, struct evbuffer *in, size_t avail)
{
	struct peers *p = l->p;
	struct dsc_err err = DSC_ERR_INIT;
	struct evbuffer_iovec v;
	uint8_t hdr[PEER_FRAME_HDR];
	const uint8_t *frame;
	size_t need;
	int rc;

	if (avail < PEER_FRAME_HDR)
		return false;
	evbuffer_copyout(in, hdr, sizeof(hdr));
	if (peer_frame_size(&l->sess, hdr, sizeof(hdr), &need, &err) != 0) {
		auth_fail(l, &err);
		return false;
	}
	if (avail < need) {
		/* No callback per chunk of a big frame. */
		bufferevent_setwatermark(l->bev, EV_READ, need, 0);
		l->lowmark = true;
		return false;
	}
	if (l->lowmark) {
		bufferevent_setwatermark(l->bev, EV_READ, 0, 0);
		l->lowmark = false;
	}
	if (evbuffer_peek(in, (ev_ssize_t)need, NULL, &v, 1) >= 1 &&
	    v.iov_len >= need) {
		frame = v.iov_base;
	} else {
		buf_clear(&p->rx_frame);
		if (buf_grow(&p->rx_frame, need) != 0) {
			link_close(l, "out of memory");
			return false;
		}
		evbuffer_copyout(in, p->rx_frame.p, need);
		frame = p->rx_frame.p;
	}
	buf_clear(&p->rx_plain);
	rc = peer_open(&l->sess, frame, need, &p->rx_plain, &err);
	evbuffer_drain(in, need);
	shrink(&p->rx_frame);
	if (rc == DSC_EAUTH) {
		auth_fail(l, &err);
		return false;
	} else if (rc != 0) {
		log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l),
			 dsc_err_msg(&err));
		link_close(l, "unable to open frame");
		return false;
	}
	p->st.frames_in++;
	p->st.bytes_in += need;
	link_dispatch(l, p->rx_plain.p, p->rx_plain.len);
	shrink(&p->rx_plain);
	return true;
}

/* ---- the handshake ------------------------------------------------------ */

static bool link_adopt(struct link *l);

static void
link_start(struct link *l)
{
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t hello[PEER_HELLO_SIZE];

	if (peer_hello_make(&l->sess, hello, &err) != 0 ||
	    bufferevent_write(l->bev, hello, sizeof(hello)) != 0) {
		log_warn("peer link " LINK_FMT ": unable to send hello: %s",
			 LINK_ARGS(l),
			 err.code ? dsc_err_msg(&err) : "out of memory");
		link_close(l, "unable to send hello");
		return;
	}
	link_set_state(l, LINK_HELLO);
}

/* The hello names us: we reached ourselves (a --join of our own address). */
static void
link_self(struct link *l)
{
	struct dialer *d = l->d;

	if (d == NULL) {
		/* Closing now could lose our unsent hello, which is how the
		 * connecting half learns it reached itself and stops. */
		link_set_state(l, LINK_DRAIN);
	} else if (d->id == 0) {
		log_info("peer link to '%s' reached this server; not joining "
			 "it",
			 d->addr);
		dialer_free(d, "reached ourselves");
	} else {
		log_warn("peer link to '%s' reached this server, not node "
			 "%" PRIu64,
			 d->addr, d->id);
		link_close(l, "reached ourselves");
	}
}

static void
link_on_hello(struct link *l, const uint8_t hello[PEER_HELLO_SIZE])
{
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t tag[PEER_AUTH_SIZE];

	if (memcmp(hello, "DSCP", 4) == 0 && get_u64le(hello + 6) ==
	    l->p->self_id) {
		link_self(l);
		return;
	}
	if (peer_hello_read(&l->sess, hello, PEER_HELLO_SIZE, &err) != 0) {
		auth_fail(l, &err);
		return;
	}
	l->id = l->sess.peer_id;
	if (peer_auth_make(&l->sess, tag, &err) != 0 ||
	    bufferevent_write(l->bev, tag, sizeof(tag)) != 0) {
		log_warn("peer link " LINK_FMT ": unable to send tag: %s",
			 LINK_ARGS(l),
			 err.code ? dsc_err_msg(&err) : "out of memory");
		link_close(l, "unable to send tag");
		return;
	}
	link_set_state(l, LINK_AUTH);
}

static void
link_on_auth(struct link *l, const uint8_t tag[PEER_AUTH_SIZE])
{
	struct peers *p = l->p;
	struct dsc_err err = DSC_ERR_INIT;
	struct dialer *d;

	if (peer_auth_verify(&l->sess, tag, PEER_AUTH_SIZE, &err) != 0) {
		auth_fail(l, &err);
		return;
	}
	if (l->d != NULL && !link_adopt(l))
		return;
	evtimer_del(l->deadline);
	p->n_handshaking--;
	link_set_state(l, LINK_OPEN);
	p->st.connects++;
	log_info("peer link " LINK_FMT " up", LINK_ARGS(l));
	/* INTRO first, before anything an on_link(up) may send. */
	if (p->intro != NULL)
		link_send(l, KIND_INTRO, p->intro, p->intro_len);
	if ((d = l->d) != NULL && l->state == LINK_OPEN) {
		d->backoff_ms = PEERS_BACKOFF_MIN_MS;
		d->up = true;
		notify(p, d->id, true);
	}
}

static void
link_read(struct link *l)
{
	uint8_t hs[PEER_HELLO_SIZE];

	while (l->state != LINK_CLOSED) {
		struct evbuffer *in = bufferevent_get_input(l->bev);
		size_t avail = evbuffer_get_length(in);

		switch (l->state) {
		case LINK_HELLO:
			if (avail < PEER_HELLO_SIZE)
				return;
			evbuffer_remove(in, hs, PEER_HELLO_SIZE);
			link_on_hello(l, hs);
			break;
		case LINK_AUTH:
			if (avail < PEER_AUTH_SIZE)
				return;
			evbuffer_remove(in, hs, PEER_AUTH_SIZE);
			link_on_auth(l, hs);
			break;
		case LINK_OPEN:
			if (!link_read_frame(l, in, avail))
				return;
			break;
		case LINK_DRAIN:
			evbuffer_drain(in, avail);
			return;
		default:
			return;
		}
	}
}

static void
link_read_cb(struct bufferevent *bev, void *arg)
{
	struct link *l = arg;

	(void)bev;
	l->busy++;
	link_read(l);
	link_release(l);
}

static void
link_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct link *l = arg;
	char why[128];
	int e;

	(void)bev;
	l->busy++;
	if (what & BEV_EVENT_CONNECTED) {
		link_start(l);
	} else if (what & BEV_EVENT_EOF) {
		link_close(l, "closed by peer");
	} else if (what & BEV_EVENT_ERROR) {
		e = EVUTIL_SOCKET_ERROR();
		snprintf(why, sizeof(why), "%s",
			 e ? evutil_socket_error_to_string(e) : "error");
		link_close(l, why);
	}
	link_release(l);
}

/* ---- dialers ------------------------------------------------------------ */

static struct dialer *
dialer_find(const struct peers *p, uint64_t id)
{
	for (struct dialer *d = p->dialers; d != NULL; d = d->next)
		if (d->id == id)
			return d;
	return NULL;
}

/*
 * An outgoing link just authenticated: checks the node is the one we meant
 * and, for a join, makes the link that node's outgoing link. False when @l
 * was closed instead.
 */
static bool
link_adopt(struct link *l)
{
	struct dialer *d = l->d, *x;

	if (d->id != 0) {
		if (l->id == d->id)
			return true;
		log_warn("peer link to '%s': expected node %" PRIu64
			 ", found node %" PRIu64,
			 d->addr, d->id, l->id);
		link_close(l, "wrong node at the address");
		return false;
	}
	if ((x = dialer_find(l->p, l->id)) == NULL) {
		log_info("peer link to '%s': joined node %" PRIu64, d->addr,
			 l->id);
		d->id = l->id;
		return true;
	}
	if (x->up) {
		log_debug("peer link to '%s': node %" PRIu64 " already "
			  "linked; closing the duplicate",
			  d->addr, l->id);
		dialer_free(d, "duplicate of a live link");
		return false;
	}
	/* Take node x's place, at the address that just worked. */
	if (x->link != NULL) {
		struct link *old = x->link;

		old->d = NULL;
		x->link = NULL;
		link_close(old, "superseded by a joined link");
	}
	evtimer_del(x->retry);
	memcpy(x->addr, d->addr, sizeof(x->addr));
	x->sa = d->sa;
	x->salen = d->salen;
	d->link = NULL;
	l->d = x;
	x->link = l;
	dialer_free(d, "joined");
	return true;
}

static void
dialer_connect(struct dialer *d)
{
	struct peers *p = d->p;
	struct link *l;
	evutil_socket_t fd;

	fd = socket(d->sa.ss_family, SOCK_STREAM, 0);
	if (fd < 0) {
		log_warn("peer link to '%s': socket: %s", d->addr,
			 strerror(errno));
		dialer_schedule(d, false);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) != 0 ||
	    evutil_make_socket_closeonexec(fd) != 0) {
		log_warn("peer link to '%s': fcntl: %s", d->addr,
			 strerror(errno));
		evutil_closesocket(fd);
		dialer_schedule(d, false);
		return;
	}
	tune_socket(fd, true);
	/* From our own address, so faults can be injected per pair. */
	if (p->bind_len != 0 && p->bind_sa.ss_family == d->sa.ss_family) {
#ifdef IP_BIND_ADDRESS_NO_PORT
		set_opt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1,
			"IP_BIND_ADDRESS_NO_PORT");
#endif
		if (bind(fd, (struct sockaddr *)&p->bind_sa, p->bind_len) !=
		    0) {
			log_warn("peer link to '%s': unable to bind the "
				 "source address: %s",
				 d->addr, strerror(errno));
			evutil_closesocket(fd);
			dialer_schedule(d, false);
			return;
		}
	}
	if ((l = link_new(p, fd, false, d->addr)) == NULL) {
		dialer_schedule(d, false);
		return;
	}
	l->id = d->id;
	l->d = d;
	d->link = l;
	if (bufferevent_socket_connect(l->bev, (struct sockaddr *)&d->sa,
				       (int)d->salen) != 0) {
		link_close(l, "connect failed");
		return;
	}
	bufferevent_enable(l->bev, EV_READ | EV_WRITE);
}

static void
dialer_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dialer *d = arg;

	(void)fd;
	(void)what;
	if (d->link == NULL)
		dialer_connect(d);
}

/* Connects from the loop: at once, or after the jittered backoff. */
static void
dialer_schedule(struct dialer *d, bool now)
{
	struct timeval tv = { 0, 0 };
	uint64_t ms;

	if (!now) {
		ms = prng_range(&d->p->rng, d->backoff_ms / 2, d->backoff_ms);
		tv.tv_sec = (time_t)(ms / 1000);
		tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
		d->backoff_ms *= 2;
		if (d->backoff_ms > PEERS_BACKOFF_MAX_MS)
			d->backoff_ms = PEERS_BACKOFF_MAX_MS;
	}
	evtimer_add(d->retry, &tv);
}

static struct dialer *
dialer_new(struct peers *p, uint64_t id, const char *addr,
	   const struct sockaddr_storage *sa, socklen_t salen)
{
	struct dialer *d;

	if ((d = dsc_calloc(1, sizeof(*d))) == NULL)
		return NULL;
	if ((d->retry = evtimer_new(p->base, dialer_retry_cb, d)) == NULL) {
		dsc_free(d);
		return NULL;
	}
	d->p = p;
	d->id = id;
	snprintf(d->addr, sizeof(d->addr), "%s", addr);
	d->sa = *sa;
	d->salen = salen;
	d->backoff_ms = PEERS_BACKOFF_MIN_MS;
	d->next = p->dialers;
	if (p->dialers != NULL)
		p->dialers->prev = d;
	p->dialers = d;
	return d;
}

/* Removes @d and closes its link; reports it down if it was up. */
static void
dialer_free(struct dialer *d, const char *why)
{
	struct peers *p = d->p;
	bool was_up = d->up;
	uint64_t id = d->id;

	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		p->dialers = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	if (d->link != NULL) {
		struct link *l = d->link;

		l->d = NULL;
		d->link = NULL;
		link_close(l, why);
	}
	event_free(d->retry);
	dsc_free(d);
	if (was_up)
		notify(p, id, false);
}

/* ---- the interface ------------------------------------------------------ */

struct peers *
peers_new(struct event_base *base, const struct peers_config *c,
	  struct dsc_err *err)
{
	struct peers *p;
	uint64_t seed;

	if (base == NULL || c == NULL || c->key == NULL || c->self_id == 0) {
		dsc_errorf(err, DSC_EINVAL, "peers: missing base, key or id");
		return NULL;
	}
	if (auth_init(err) != 0)
		return NULL;
	if ((p = dsc_calloc(1, sizeof(*p))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "peers: out of memory");
		return NULL;
	}
	if (c->bind_addr != NULL &&
	    parse_addr(c->bind_addr, true, &p->bind_sa, &p->bind_len) != 0) {
		dsc_errorf(err, DSC_EINVAL, "invalid bind address '%s'",
			   c->bind_addr);
		dsc_free(p);
		return NULL;
	}
	/* Our IP with port 0: the kernel picks a source port per connect. */
	if (p->bind_sa.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&p->bind_sa;

		a->sin_port = 0;
		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			p->bind_len = 0;
	} else if (p->bind_sa.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&p->bind_sa;

		a->sin6_port = 0;
		if (memcmp(&a->sin6_addr, &in6addr_any, sizeof(in6addr_any)) ==
		    0)
			p->bind_len = 0;
	}
	p->notify_ev = event_new(base, -1, 0, notify_cb, p);
	if (p->notify_ev == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "peers: out of memory");
		dsc_free(p);
		return NULL;
	}
	p->base = base;
	p->self_id = c->self_id;
	memcpy(p->key, c->key, AUTH_KEY_SIZE);
	p->cb = c->cb;
	randombytes_buf(&seed, sizeof(seed));
	prng_seed(&p->rng, seed);
	return p;
}

void
peers_free(struct peers *p)
{
	if (p == NULL)
		return;
	p->freeing = true;
	while (p->dialers != NULL)
		dialer_free(p->dialers, "shutting down");
	while (p->links != NULL)
		link_close(p->links, "shutting down");
	event_free(p->notify_ev);
	dsc_free(p->notes);
	dsc_free(p->intro);
	buf_release(&p->tx_plain);
	buf_release(&p->tx_sealed);
	buf_release(&p->rx_frame);
	buf_release(&p->rx_plain);
	raft_msg_storage_release(&p->rx_msgs);
	sodium_memzero(p->key, sizeof(p->key));
	dsc_free(p);
}

void
peers_set_addr(struct peers *p, uint64_t id, const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	struct dialer *d;

	if (id == 0 || id == p->self_id)
		return;
	if (parse_addr(addr, false, &sa, &salen) != 0) {
		log_warn("peer link: invalid address '%s' for node %" PRIu64
			 "; ignored",
			 addr ? addr : "(null)", id);
		return;
	}
	p->in_api++;
	if ((d = dialer_find(p, id)) == NULL) {
		if ((d = dialer_new(p, id, addr, &sa, salen)) == NULL)
			log_warn("peer link to '%s': out of memory", addr);
		else
			dialer_schedule(d, true);
	} else if (strcmp(d->addr, addr) != 0) {
		log_info("peer link: node %" PRIu64 " moved from '%s' to '%s'",
			 id, d->addr, addr);
		snprintf(d->addr, sizeof(d->addr), "%s", addr);
		d->sa = sa;
		d->salen = salen;
		if (d->link != NULL)
			link_close(d->link, "address changed");
		d->backoff_ms = PEERS_BACKOFF_MIN_MS;
		dialer_schedule(d, true);
	}
	p->in_api--;
}

void
peers_forget(struct peers *p, uint64_t id)
{
	struct dialer *d;
	struct link *l, *next;

	p->in_api++;
	if (id != 0 && (d = dialer_find(p, id)) != NULL)
		dialer_free(d, "peer forgotten");
	for (l = p->links; l != NULL; l = next) {
		next = l->next;
		if (l->incoming && id != 0 && l->id == id)
			link_close(l, "peer forgotten");
	}
	p->in_api--;
}

void
peers_join(struct peers *p, const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	struct dialer *d;

	if (parse_addr(addr, false, &sa, &salen) != 0) {
		log_warn("peer link: invalid join address '%s'; ignored",
			 addr ? addr : "(null)");
		return;
	}
	for (d = p->dialers; d != NULL; d = d->next)
		if (strcmp(d->addr, addr) == 0)
			return;		/* already joining or linked there */
	if ((d = dialer_new(p, 0, addr, &sa, salen)) == NULL) {
		log_warn("peer link to '%s': out of memory", addr);
		return;
	}
	dialer_schedule(d, true);
}

void
peers_set_intro(struct peers *p, const char *json)
{
	size_t len = strlen(json);
	struct link *l, *next;
	char *copy;

	if (p->intro != NULL && p->intro_len == len &&
	    memcmp(p->intro, json, len) == 0)
		return;
	if ((copy = dsc_strdup(json)) == NULL) {
		log_warn("peer link: out of memory; intro not changed");
		return;
	}
	dsc_free(p->intro);
	p->intro = copy;
	p->intro_len = len;
	p->in_api++;
	for (l = p->links; l != NULL; l = next) {
		next = l->next;
		if (l->state == LINK_OPEN)
			link_send(l, KIND_INTRO, p->intro, p->intro_len);
	}
	p->in_api--;
}

/* The live outgoing link to @id, or NULL. */
static struct link *
out_link(const struct peers *p, uint64_t id)
{
	struct dialer *d;

	if (id == 0 || (d = dialer_find(p, id)) == NULL || !d->up)
		return NULL;
	return d->link;
}

void
peers_send_raft(struct peers *p, const struct raft_msg *m)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct link *l;

	if ((l = out_link(p, m->to)) == NULL) {
		p->st.dropped++;
		return;
	}
	buf_clear(&p->tx_plain);
	if (buf_addch(&p->tx_plain, KIND_RAFT) != 0 ||
	    raft_msg_encode(m, &p->tx_plain, &err) != 0) {
		log_warn("peer link " LINK_FMT ": unable to encode %s: %s",
			 LINK_ARGS(l), raft_msg_type_name(m->type),
			 err.code ? dsc_err_msg(&err) : "out of memory");
		p->st.dropped++;
		return;
	}
	p->in_api++;
	link_seal(l);
	p->in_api--;
}

bool
peers_send(struct peers *p, uint64_t to, uint8_t kind, const void *data,
	   size_t len)
{
	struct link *l;
	bool ok;

	if ((l = out_link(p, to)) == NULL) {
		p->st.dropped++;
		return false;
	}
	p->in_api++;
	ok = link_send(l, kind, data, len);
	p->in_api--;
	return ok;
}

void
peers_accept(struct peers *p, evutil_socket_t fd, const uint8_t *first,
	     size_t n)
{
	char addr[PEERS_ADDR_MAX];
	struct link *l;

	peer_name(fd, addr);
	if (p->n_handshaking >= PEERS_MAX_HANDSHAKING) {
		log_warn("peer link from '%s': %u handshakes in progress; "
			 "refused",
			 addr, p->n_handshaking);
		evutil_closesocket(fd);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) != 0) {
		log_warn("peer link from '%s': fcntl: %s", addr,
			 strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	tune_socket(fd, false);
	if ((l = link_new(p, fd, true, addr)) == NULL)
		return;
	l->busy++;
	/* The input's end belongs to the socket; its front is ours. */
	if (n > 0 &&
	    evbuffer_prepend(bufferevent_get_input(l->bev), first, n) != 0) {
		link_close(l, "out of memory");
	} else {
		link_start(l);
		if (l->state != LINK_CLOSED)
			bufferevent_enable(l->bev, EV_READ | EV_WRITE);
		/* Only a hello can be complete yet: no callback can run. */
		link_read(l);
	}
	link_release(l);
}

bool
peers_link_up(const struct peers *p, uint64_t id)
{
	return out_link(p, id) != NULL;
}

void
peers_stats(const struct peers *p, struct peers_stats *st)
{
	*st = p->st;
}

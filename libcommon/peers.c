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
 * nothing. Incoming links are not reported (only INTRO is sent on them).
 * Callbacks run from the loop; when a peers_* call itself closes a link
 * (peers_set_addr, peers_forget), the down report is queued and delivered
 * from the loop, so no callback runs inside a call into this module.
 * Callbacks may call any peers_* function except peers_free.
 *
 * Liveness: connect plus handshake must finish in PEERS_HANDSHAKE_MS; an
 * established link needs no traffic (the leader heartbeats), but output
 * left unacknowledged for PEERS_USER_TIMEOUT_MS (TCP_USER_TIMEOUT) or
 * failed keepalives close it, so a link into a partition or to a vanished
 * host is rebuilt rather than stalled in TCP's retransmission backoff.
 *
 * Hot path: a message is encoded into one reused buffer (kind byte first),
 * sealed into a second reused one and copied into the bufferevent's output;
 * frames are opened straight out of the input buffer when they sit in one
 * chain, else out of a third reused buffer. A link's output is capped at
 * PEERS_QUEUE_MAX bytes; beyond that messages are dropped (Raft resends),
 * checked before sealing so the frame counter never skips.
 *
 * Stats: connects and disconnects count handshakes completed and such links
 * closed, in both directions; dropped counts messages not sent for want of
 * a live outgoing link, queue room or memory.
 *
 * The program must ignore SIGPIPE (dsc-server does): bufferevents write
 * with writev, and a peer that just closed would otherwise kill it.
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
#include "peers_internal.h"
#include "prng.h"
#include "raft_codec.h"

/* ---- addresses and sockets ---------------------------------------------- */

/*
 * Parses "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric only: resolving names
 * would block the loop). Port 0 only when @any_port. 0 or -1.
 */
static int
parse_addr(
    const char *s, bool any_port, struct sockaddr_storage *ss, socklen_t *len)
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

			evutil_inet_ntop(
			    AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

			evutil_inet_ntop(
			    AF_INET6, &a->sin6_addr, host, sizeof(host));
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
		log_debug(
		    "peer link: setsockopt(%s): %s", what, strerror(errno));
}

/* Low latency, and dead peers noticed in seconds rather than hours. */
static void
tune_socket(evutil_socket_t fd, bool outgoing)
{
	set_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
	set_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
#ifdef TCP_KEEPIDLE
	set_opt(
	    fd, IPPROTO_TCP, TCP_KEEPIDLE, PEERS_KEEPIDLE_S, "TCP_KEEPIDLE");
	set_opt(
	    fd, IPPROTO_TCP, TCP_KEEPINTVL, PEERS_KEEPINTVL_S, "TCP_KEEPINTVL");
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
bool
peers_link_adopt(struct link *l)
{
	struct dialer *d = l->d, *x;

	if (d->id != 0) {
		if (l->id == d->id)
			return true;
		log_warn("peer link to '%s': expected node %" PRIu64
		         ", found node %" PRIu64,
		    d->addr, d->id, l->id);
		peers_link_close(l, "wrong node at the address");
		return false;
	}
	if ((x = dialer_find(l->p, l->id)) == NULL) {
		log_info(
		    "peer link to '%s': joined node %" PRIu64, d->addr, l->id);
		d->id = l->id;
		return true;
	}
	if (x->up) {
		log_debug("peer link to '%s': node %" PRIu64 " already "
		          "linked; closing the duplicate",
		    d->addr, l->id);
		peers_dialer_free(d, "duplicate of a live link");
		return false;
	}
	/* Take node x's place, at the address that just worked. */
	if (x->link != NULL) {
		struct link *old = x->link;

		old->d = NULL;
		x->link = NULL;
		peers_link_close(old, "superseded by a joined link");
	}
	evtimer_del(x->retry);
	memcpy(x->addr, d->addr, sizeof(x->addr));
	x->sa = d->sa;
	x->salen = d->salen;
	d->link = NULL;
	l->d = x;
	x->link = l;
	peers_dialer_free(d, "joined");
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
		log_warn(
		    "peer link to '%s': socket: %s", d->addr, strerror(errno));
		peers_dialer_schedule(d, false);
		return;
	}
	if (evutil_make_socket_nonblocking(fd) != 0 ||
	    evutil_make_socket_closeonexec(fd) != 0) {
		log_warn(
		    "peer link to '%s': fcntl: %s", d->addr, strerror(errno));
		evutil_closesocket(fd);
		peers_dialer_schedule(d, false);
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
			peers_dialer_schedule(d, false);
			return;
		}
	}
	if ((l = peers_link_new(p, fd, false, d->addr)) == NULL) {
		peers_dialer_schedule(d, false);
		return;
	}
	l->id = d->id;
	l->d = d;
	d->link = l;
	if (bufferevent_socket_connect(
	        l->bev, (struct sockaddr *)&d->sa, (int)d->salen) != 0) {
		peers_link_close(l, "connect failed");
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
void
peers_dialer_schedule(struct dialer *d, bool now)
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
void
peers_dialer_free(struct dialer *d, const char *why)
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
		peers_link_close(l, why);
	}
	event_free(d->retry);
	dsc_free(d);
	if (was_up)
		peers_notify(p, id, false);
}

/* ---- the interface ------------------------------------------------------ */

struct peers *
peers_new(
    struct event_base *base, const struct peers_config *c, struct dsc_err *err)
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
		dsc_errorf(
		    err, DSC_EINVAL, "invalid bind address '%s'", c->bind_addr);
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
	p->notify_ev = event_new(base, -1, 0, peers_notify_cb, p);
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
		peers_dialer_free(p->dialers, "shutting down");
	while (p->links != NULL)
		peers_link_close(p->links, "shutting down");
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
			peers_dialer_schedule(d, true);
	} else if (strcmp(d->addr, addr) != 0) {
		log_info("peer link: node %" PRIu64 " moved from '%s' to '%s'",
		    id, d->addr, addr);
		snprintf(d->addr, sizeof(d->addr), "%s", addr);
		d->sa = sa;
		d->salen = salen;
		if (d->link != NULL)
			peers_link_close(d->link, "address changed");
		d->backoff_ms = PEERS_BACKOFF_MIN_MS;
		peers_dialer_schedule(d, true);
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
		peers_dialer_free(d, "peer forgotten");
	for (l = p->links; l != NULL; l = next) {
		next = l->next;
		if (l->incoming && id != 0 && l->id == id)
			peers_link_close(l, "peer forgotten");
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
			return; /* already joining or linked there */
	if ((d = dialer_new(p, 0, addr, &sa, salen)) == NULL) {
		log_warn("peer link to '%s': out of memory", addr);
		return;
	}
	peers_dialer_schedule(d, true);
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
			peers_link_send(l, KIND_INTRO, p->intro, p->intro_len);
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
		if (err.code == 0)
			dsc_errorf(&err, DSC_ENOMEM, "out of memory");
		log_warn("peer link " LINK_FMT ": message not sent: %s",
		    LINK_ARGS(l), dsc_err_msg(&err));
		p->st.dropped++;
		return;
	}
	p->in_api++;
	peers_link_seal(l);
	p->in_api--;
}

void
peers_flush(struct peers *p)
{
	for (struct link *l = p->links; l != NULL; l = l->next) {
		struct evbuffer *out;

		if (l->state != LINK_OPEN || l->bev == NULL)
			continue;
		out = bufferevent_get_output(l->bev);
		if (evbuffer_get_length(out) == 0)
			continue;
		/* A socket bufferevent keeps the front of its output frozen
		 * so only its write callback drains it; thaw it for one
		 * non-blocking write and freeze it again. An error is left
		 * for that callback to find on its next try. */
		if (evbuffer_unfreeze(out, 1) != 0)
			continue;
		(void)evbuffer_write(out, bufferevent_getfd(l->bev));
		(void)evbuffer_freeze(out, 1);
	}
}

bool
peers_send(
    struct peers *p, uint64_t to, uint8_t kind, const void *data, size_t len)
{
	struct link *l;
	bool ok;

	if ((l = out_link(p, to)) == NULL) {
		p->st.dropped++;
		return false;
	}
	p->in_api++;
	ok = peers_link_send(l, kind, data, len);
	p->in_api--;
	return ok;
}

void
peers_accept(
    struct peers *p, evutil_socket_t fd, const uint8_t *first, size_t n)
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
		log_warn(
		    "peer link from '%s': fcntl: %s", addr, strerror(errno));
		evutil_closesocket(fd);
		return;
	}
	tune_socket(fd, false);
	if ((l = peers_link_new(p, fd, true, addr)) == NULL)
		return;
	l->busy++;
	/* The input's end belongs to the socket; its front is ours. */
	if (n > 0 &&
	    evbuffer_prepend(bufferevent_get_input(l->bev), first, n) != 0) {
		peers_link_close(l, "out of memory");
	} else {
		peers_link_start(l);
		if (l->state != LINK_CLOSED)
			bufferevent_enable(l->bev, EV_READ | EV_WRITE);
		/* Only a hello can be complete yet: no callback can run. */
		peers_link_read(l);
	}
	peers_link_release(l);
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

/*
 * peers_link.c - one peer connection: the handshake, sealed frames both
 * ways, the send queue's limit, and closing (peers.c has the design).
 *
 * A link is driven by its bufferevent's callbacks. Anything a callback
 * calls out to may close the link, so callbacks hold it (busy) and the
 * struct is freed only when the last one returns; every loop over buffered
 * input checks for LINK_CLOSED after each step.
 */
#include "peers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "buf.h"
#include "log.h"
#include "mem.h"
#include "peers_internal.h"
#include "raft_codec.h"

static const char *const link_state_names[LINK_STATE_MAX] = {
	"connecting",
	"hello",
	"auth",
	"open",
	"drain",
	"closed",
};

/* ---- on_link reports ---------------------------------------------------- */

void
peers_notify(struct peers *p, uint64_t id, bool up)
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
			         "%" PRIu64 " not reported",
			    up ? "up" : "down", id);
			return;
		}
		p->notes = n;
		p->cap_notes = cap;
	}
	p->notes[p->n_notes++] = (struct note){ id, up };
	event_active(p->notify_ev, EV_TIMEOUT, 0);
}

void
peers_notify_cb(evutil_socket_t fd, short what, void *arg)
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
void
peers_link_release(struct link *l)
{
	if (--l->busy == 0 && l->state == LINK_CLOSED)
		dsc_free(l);
}

static void link_read_cb(struct bufferevent *bev, void *arg);
static void link_event_cb(struct bufferevent *bev, short what, void *arg);

static void
link_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct link *l = arg;

	(void)fd;
	(void)what;
	if (l->state == LINK_HELLO || l->state == LINK_AUTH)
		log_warn("peer link " LINK_FMT ": handshake timed out",
		    LINK_ARGS(l));
	peers_link_close(l, "connect or handshake timed out");
}

/*
 * A link in state LINK_CONNECTING over @fd, which it owns from here on
 * (closed on failure). NULL when out of memory.
 */
struct link *
peers_link_new(
    struct peers *p, evutil_socket_t fd, bool incoming, const char *addr)
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
	        incoming ? PEER_SERVER : PEER_CLIENT, p->self_id, &err) != 0 ||
	    (l->bev = bufferevent_socket_new(
	         p->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (l->deadline = evtimer_new(p->base, link_deadline_cb, l)) == NULL) {
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
void
peers_link_close(struct link *l, const char *why)
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
		log_debug(
		    "peer link " LINK_FMT " closed: %s", LINK_ARGS(l), why);
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
		peers_dialer_schedule(d, false);
	}
	if (l->busy == 0)
		dsc_free(l);
	if (was_up)
		peers_notify(p, id, false);
}

static void
auth_fail(struct link *l, const struct dsc_err *err)
{
	l->p->st.auth_failures++;
	log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l), dsc_err_msg(err));
	if (l->state == LINK_HELLO || l->state == LINK_AUTH) {
		/* Our own tag was queued before theirs was read: hand it to
		 * the kernel before closing, so the other end verifies it
		 * too and logs and counts the intruder, whichever side found
		 * out first. libevent freezes the start of a bufferevent's
		 * output so only it drains it; the link is closed right
		 * after, so thaw it and write the few bytes, not blocking. */
		struct evbuffer *out = bufferevent_get_output(l->bev);

		if (evbuffer_unfreeze(out, 1) == 0)
			(void)evbuffer_write(out, bufferevent_getfd(l->bev));
	}
	peers_link_close(l, "authentication failed");
}

static void
proto_fail(struct link *l, const char *what)
{
	l->p->st.proto_errors++;
	log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l), what);
	peers_link_close(l, "protocol error");
}

/* ---- sending ------------------------------------------------------------ */

static void
shrink(struct buf *b)
{
	if (b->cap > PEERS_SHRINK_CAP)
		buf_release(b);
}

/* Seals p->tx_plain onto @l's output; false when dropped. */
bool
peers_link_seal(struct link *l)
{
	struct peers *p = l->p;
	struct evbuffer *out = bufferevent_get_output(l->bev);
	struct dsc_err err = DSC_ERR_INIT;
	size_t wire = PEER_FRAME_HDR + p->tx_plain.len + PEER_TAG_SIZE;
	bool ok = false;

	/* Before sealing: a sealed frame not sent would skip a counter. */
	if (p->tx_plain.len > PEER_MAX_PLAIN) {
		log_warn("peer link " LINK_FMT ": message of %zu bytes over "
		         "the frame limit; dropped",
		    LINK_ARGS(l), p->tx_plain.len);
		goto out;
	}
	if (evbuffer_get_length(out) + wire > PEERS_QUEUE_MAX) {
		if (!l->queue_full)
			log_warn("peer link " LINK_FMT ": %u bytes queued; "
			         "dropping messages",
			    LINK_ARGS(l), PEERS_QUEUE_MAX);
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
		peers_link_close(l, "out of memory"); /* its counter is spent */
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

bool
peers_link_send(struct link *l, uint8_t kind, const void *data, size_t len)
{
	struct peers *p = l->p;

	buf_clear(&p->tx_plain);
	if (buf_addch(&p->tx_plain, kind) != 0 ||
	    buf_add(&p->tx_plain, data, len) != 0) {
		log_warn("peer link " LINK_FMT ": out of memory; message "
		         "dropped",
		    LINK_ARGS(l));
		p->st.dropped++;
		return false;
	}
	return peers_link_seal(l);
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
			p->cb.on_frame(
			    p->cb.ctx, l->id, pt[0], pt + 1, len - 1);
		return;
	}
	if ((rc = raft_msg_decode(pt + 1, len - 1, &m, &p->rx_msgs, &err)) !=
	    0) {
		if (rc == DSC_ENOMEM) {
			log_warn("peer link " LINK_FMT ": %s", LINK_ARGS(l),
			    dsc_err_msg(&err));
			peers_link_close(l, "out of memory");
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
			peers_link_close(l, "out of memory");
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
		peers_link_close(l, "unable to open frame");
		return false;
	}
	p->st.frames_in++;
	p->st.bytes_in += need;
	link_dispatch(l, p->rx_plain.p, p->rx_plain.len);
	shrink(&p->rx_plain);
	return true;
}

/* ---- the handshake ------------------------------------------------------ */

void
peers_link_start(struct link *l)
{
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t hello[PEER_HELLO_SIZE];

	if (peer_hello_make(&l->sess, hello, &err) != 0 ||
	    bufferevent_write(l->bev, hello, sizeof(hello)) != 0) {
		log_warn("peer link " LINK_FMT ": unable to send hello: %s",
		    LINK_ARGS(l),
		    err.code ? dsc_err_msg(&err) : "out of memory");
		peers_link_close(l, "unable to send hello");
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
		peers_dialer_free(d, "reached ourselves");
	} else {
		log_warn("peer link to '%s' reached this server, not node "
		         "%" PRIu64,
		    d->addr, d->id);
		peers_link_close(l, "reached ourselves");
	}
}

static void
link_on_hello(struct link *l, const uint8_t hello[PEER_HELLO_SIZE])
{
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t tag[PEER_AUTH_SIZE];

	if (memcmp(hello, "DSCP", 4) == 0 &&
	    get_u64le(hello + 6) == l->p->self_id) {
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
		peers_link_close(l, "unable to send tag");
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
	if (l->d != NULL && !peers_link_adopt(l))
		return;
	evtimer_del(l->deadline);
	p->n_handshaking--;
	link_set_state(l, LINK_OPEN);
	p->st.connects++;
	log_info("peer link " LINK_FMT " up", LINK_ARGS(l));
	/* INTRO first, before anything an on_link(up) may send. */
	if (p->intro != NULL)
		peers_link_send(l, KIND_INTRO, p->intro, p->intro_len);
	if ((d = l->d) != NULL && l->state == LINK_OPEN) {
		d->backoff_ms = PEERS_BACKOFF_MIN_MS;
		d->up = true;
		peers_notify(p, d->id, true);
	}
}

void
peers_link_read(struct link *l)
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
	peers_link_read(l);
	peers_link_release(l);
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
		peers_link_start(l);
	} else if (what & BEV_EVENT_EOF) {
		peers_link_close(l, "closed by peer");
	} else if (what & BEV_EVENT_ERROR) {
		e = EVUTIL_SOCKET_ERROR();
		snprintf(why, sizeof(why), "%s",
		    e ? evutil_socket_error_to_string(e) : "error");
		peers_link_close(l, why);
	}
	peers_link_release(l);
}

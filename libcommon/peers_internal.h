/*
 * peers_internal.h - what peers.c (addresses, dialers, the interface) and
 * peers_link.c (one connection: handshake, frames, closing) share. Not part
 * of the contract: see peers.h, and peers.c's opening comment for the design.
 */
#ifndef DSC_PEERS_INTERNAL_H
#define DSC_PEERS_INTERNAL_H

#include <sys/socket.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "auth.h"
#include "buf.h"
#include "peers.h"
#include "prng.h"
#include "raft_codec.h"

/* "[ipv6]:port" fits; longer addresses are refused. */
#define PEERS_ADDR_MAX        64
/* Reconnect delay: doubles from min to max, jittered down to half. */
#define PEERS_BACKOFF_MIN_MS  100
#define PEERS_BACKOFF_MAX_MS  5000
/* From socket() or accept to an authenticated link. */
#define PEERS_HANDSHAKE_MS    5000
/* Output bytes a link may hold before messages are dropped. */
#define PEERS_QUEUE_MAX       (64u << 20)
/* Unauthenticated links at once; more are refused at accept. */
#define PEERS_MAX_HANDSHAKING 64
/* Unacknowledged output this old kills an outgoing connection (a peer
 * behind a partition, or gone without a FIN), so it reconnects. */
#define PEERS_USER_TIMEOUT_MS 10000
/* TCP keepalive: first probe, interval, probes before giving up. */
#define PEERS_KEEPIDLE_S      5
#define PEERS_KEEPINTVL_S     2
#define PEERS_KEEPCNT         3
/* Bytes read or written per socket call by a bufferevent. */
#define PEERS_IO_CHUNK        (256 * 1024)
/* Reused buffers grown past this are freed after use. */
#define PEERS_SHRINK_CAP      (4u << 20)

/* Frame kinds this module looks at (cmd/dsc-server/README.md). */
#define KIND_RAFT  1
#define KIND_INTRO 2

enum link_state {
	LINK_CONNECTING = 0, /* outgoing: connect() in progress */
	LINK_HELLO,          /* our hello sent, waiting for theirs */
	LINK_AUTH,           /* our tag sent, waiting for theirs */
	LINK_OPEN,           /* authenticated: frames flow */
	LINK_DRAIN,          /* refused; input ignored until the other end
	                      * closes or the deadline passes */
	LINK_CLOSED,         /* socket gone; freed when no callback holds it */
	LINK_STATE_MAX
};

struct dialer;

struct link {
	struct peers *p;
	struct link *prev, *next; /* p->links */
	struct dialer *d; /* owner of an outgoing link; NULL: incoming */
	struct bufferevent *bev;
	struct event *deadline; /* handshake timeout */
	struct peer_sess sess;
	enum link_state state;
	bool incoming;
	bool lowmark;    /* read low watermark set for a big frame */
	bool queue_full; /* dropping: warned once */
	unsigned busy;   /* callbacks on the stack: free deferred */
	uint64_t id;     /* the peer's id, once its hello is read */
	char addr[PEERS_ADDR_MAX];
};

struct dialer {
	struct peers *p;
	struct dialer *prev, *next; /* p->dialers */
	uint64_t id;                /* 0 while joining */
	char addr[PEERS_ADDR_MAX];
	struct sockaddr_storage sa;
	socklen_t salen;
	struct link *link; /* the attempt in progress or the live link */
	struct event *retry;
	unsigned backoff_ms;
	bool up; /* on_link(up) reported */
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
	socklen_t bind_len; /* 0: let the kernel pick the source */
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
#define LINK_FMT     "%s '%s' (node %" PRIu64 ")"
#define LINK_ARGS(l) ((l)->incoming ? "from" : "to"), (l)->addr, (l)->id

/* ---- peers_link.c -------------------------------------------------------- */

/*
 * A link in LINK_CONNECTING over @fd, which it owns from here on (closed on
 * failure), with its handshake deadline running. NULL when out of memory.
 */
struct link *peers_link_new(
    struct peers *p, evutil_socket_t fd, bool incoming, const char *addr);
/* Sends our hello: LINK_HELLO, or closed. */
void peers_link_start(struct link *l);
/* Handles whatever whole hellos, tags and frames are buffered. */
void peers_link_read(struct link *l);
/* Callers that may close @l hold it with l->busy++ and end with this. */
void peers_link_release(struct link *l);
/*
 * Closes @l: the socket, its timer and session go now, the struct when no
 * callback holds it. An outgoing link's dialer schedules a retry and
 * reports the link down if it was up.
 */
void peers_link_close(struct link *l, const char *why);
/* Sends frame @kind + @data; false when dropped (and counted). */
bool peers_link_send(
    struct link *l, uint8_t kind, const void *data, size_t len);
/* Seals p->tx_plain (kind byte included) onto @l; false when dropped. */
bool peers_link_seal(struct link *l);
/* Reports a link up or down now, or from the loop (see peers.c). */
void peers_notify(struct peers *p, uint64_t id, bool up);
void peers_notify_cb(evutil_socket_t fd, short what, void *arg);

/* ---- peers.c ------------------------------------------------------------- */

/* Connects from the loop: at once, or after the jittered backoff. */
void peers_dialer_schedule(struct dialer *d, bool now);
/* Removes @d and closes its link; reports it down if it was up. */
void peers_dialer_free(struct dialer *d, const char *why);
/*
 * An outgoing link just authenticated: checks the node is the one we meant
 * and, for a join, makes the link that node's outgoing link. False when @l
 * was closed instead.
 */
bool peers_link_adopt(struct link *l);

#endif

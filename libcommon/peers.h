/*
 * peers.h - persistent, mutually authenticated, encrypted links between
 * servers (libcommon/auth.h peer_* over TCP, on the server's libevent loop).
 *
 * Each server keeps one outgoing link to every peer whose address it knows
 * and accepts incoming links; a message to a peer goes out on the outgoing
 * link, messages arrive on either. That avoids deciding which of two
 * crossing connections wins. A link that fails authentication, or any frame
 * that fails to open, closes the link, is counted and logged, and nothing of
 * it reaches the callbacks. Outgoing links reconnect with exponential backoff
 * and jitter (100 ms doubling to 5 s). Every outgoing socket is bound to the
 * server's own bind address before connect, so tests can cut links between
 * 127.0.0.x addresses.
 */
#ifndef DSC_PEERS_H
#define DSC_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/util.h>

#include "auth.h"
#include "err.h"
#include "raft.h"

struct peers;

struct peers_callbacks {
	void *ctx;
	/* A Raft message from an authenticated peer (borrowed for the call). */
	void (*on_raft)(void *ctx, const struct raft_msg *m);
	/* Any other frame: kind (byte 0) and the rest. */
	void (*on_frame)(void *ctx, uint64_t from, uint8_t kind,
			 const uint8_t *p, size_t len);
	/* The outgoing link to @id came up or went down (messages to @id
	 * go out on it; incoming links are not reported). Never called from
	 * inside a peers_* call, nor after peers_free. */
	void (*on_link)(void *ctx, uint64_t id, bool up);
};

struct peers_config {
	uint64_t self_id;
	const char *bind_addr;	/* "ADDR:PORT": source address for connects */
	const uint8_t *key;	/* AUTH_KEY_SIZE bytes, copied */
	struct peers_callbacks cb;
};

struct peers_stats {
	uint64_t auth_failures, frames_in, frames_out, bytes_in, bytes_out;
	uint64_t connects, disconnects, dropped;	/* dropped: no link */
	uint64_t proto_errors;	/* authenticated but malformed: link closed */
};

struct peers *peers_new(struct event_base *base, const struct peers_config *c,
			struct dsc_err *err);
void peers_free(struct peers *p);

/* Where peer @id is reached; (re)connects when the address changes. */
void peers_set_addr(struct peers *p, uint64_t id, const char *addr);
/* Forgets peer @id and closes its links (removed from the cluster). */
void peers_forget(struct peers *p, uint64_t id);
/* Connects to @addr whose id is not known yet (--join); once the handshake
 * names the id, the link becomes that peer's outgoing link. Retries with
 * backoff until the id is learned. */
void peers_join(struct peers *p, const char *addr);

/* The INTRO text (PEER_FRAME_INTRO payload) sent first on every new link
 * and, when changed, on every live link. Copied. */
void peers_set_intro(struct peers *p, const char *json);

/* Encodes and sends a Raft message to m->to; dropped (and counted) when
 * there is no live link or the queue to that peer is over its limit. */
void peers_send_raft(struct peers *p, const struct raft_msg *m);
/*
 * Hands what is queued on every open link to the kernel now, without
 * blocking (what the socket does not take stays queued for the loop).
 * For a caller about to block the loop, e.g. on fsync, that wants the
 * messages on their way meanwhile.
 */
void peers_flush(struct peers *p);
/* Sends frame @kind + @len bytes to @to; false when dropped. */
bool peers_send(struct peers *p, uint64_t to, uint8_t kind, const void *data,
		size_t len);

/* Takes over an accepted socket whose first @n bytes (the start of a
 * "DSCP" hello) were already read by the listener. */
void peers_accept(struct peers *p, evutil_socket_t fd, const uint8_t *first,
		  size_t n);

bool peers_link_up(const struct peers *p, uint64_t id);
void peers_stats(const struct peers *p, struct peers_stats *st);

#endif

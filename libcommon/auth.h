/*
 * auth.h - the cluster key, encrypted peer links and signed JSON-RPC
 * requests (libsodium).
 *
 * One 32-byte cluster key, shared by servers and agents, is never used
 * directly: each use gets its own subkey through crypto_kdf with a distinct
 * context ("dscpeer1" for peer links, "dscrpc01" for request MACs,
 * "dsckeyid" for the public key id), so material from one use is never
 * reused in another. Everything here is a pure function over bytes except
 * the two key-file calls: sockets, clocks and files belong to the caller,
 * which is what makes the tests below deterministic.
 *
 * Call auth_init() once at start; the other functions call it too, so a
 * forgotten call costs nothing but an early, clear error.
 *
 * Errors: DSC_EAUTH for anything a peer or client got wrong (the message
 * says what, never a secret), DSC_EINVAL for misuse or bad local files,
 * DSC_ENOMEM, DSC_EIO, as documented per function. @err may be NULL.
 */
#ifndef DSC_AUTH_H
#define DSC_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* ---- keys --------------------------------------------------------------- */

/* Bytes of the cluster key and of every subkey. */
#define AUTH_KEY_SIZE 32
/* Characters of its base64 form (standard alphabet, with padding). */
#define AUTH_KEY_B64_LEN 44
/* Bytes a key file may hold: the key, a newline, a little slack. */
#define AUTH_KEY_FILE_MAX 128
/* Characters of a key id on the wire, and of the derived one ("k-" + hex). */
#define AUTH_KEY_ID_MAX 64
#define AUTH_KEY_ID_LEN 18

/* Initialises libsodium (idempotent, thread-safe). DSC_EIO on failure. */
int auth_init(struct dsc_err *err);

/*
 * Creates @path holding a fresh random key as base64 and a newline: created
 * O_EXCL with mode 0600 (whatever the umask), written, fsynced, and its
 * directory fsynced. Errors: DSC_EEXIST when @path exists (never
 * overwritten), DSC_EIO for a failed system call (a partly written file is
 * removed).
 */
int auth_keygen(const char *path, struct dsc_err *err);

/*
 * Reads the key in @path into @key. Refuses, with DSC_EINVAL and a message
 * naming the file: a file group or others may read, write or execute
 * ("chmod 600 it"), anything but a regular file, more than
 * AUTH_KEY_FILE_MAX bytes, and content other than exactly 32 bytes of
 * canonical base64 (trailing whitespace allowed). DSC_EIO for a failed read.
 * Every copy of the key but @key is wiped; @key is written only on success.
 */
int auth_key_load(const char *path, uint8_t key[AUTH_KEY_SIZE],
		  struct dsc_err *err);

/* The parser behind auth_key_load, for keys from elsewhere. DSC_EINVAL. */
int auth_key_parse(const char *text, size_t len, uint8_t key[AUTH_KEY_SIZE],
		   struct dsc_err *err);

/*
 * The public id of @key: "k-" and 16 hex digits of a one-way subkey. Safe to
 * log and to send; tells "wrong key" from "tampered request" and lets a
 * cluster accept two keys during a rotation.
 */
void auth_key_id(const uint8_t key[AUTH_KEY_SIZE],
		 char out[AUTH_KEY_ID_LEN + 1]);

/* ---- peer links --------------------------------------------------------- */

/*
 * A peer link between two servers, over one TCP connection. The side that
 * connected is the client. Bytes on the wire, in order:
 *
 *   1. each side sends a hello, PEER_HELLO_SIZE bytes:
 *	"DSCP", u8 version (1), u8 role (0 client, 1 server),
 *	u64le node id, 32 random bytes (a fresh nonce per connection)
 *   2. each side sends an auth tag, PEER_AUTH_SIZE bytes:
 *	BLAKE2b-256 keyed with the link key over
 *	"dsc-peer-auth-v1" || role || BLAKE2b-256(hello_c || hello_s),
 *	proving it holds the cluster key and saw both hellos; checked in
 *	constant time
 *   3. frames, each way: u32le n, then n bytes of ChaCha20-Poly1305 (IETF)
 *	ciphertext and tag; nonce = u64le counter || 4 zero bytes, the
 *	counter starting at 0 per direction; associated data = the 4 length
 *	bytes; PEER_TAG_SIZE <= n <= PEER_MAX_FRAME.
 *
 * Session keys, one per direction and connection: BLAKE2b-256 keyed with
 * the link key over "dsc-peer-key-v1\0" || ('c' or 's') ||
 * BLAKE2b-256(hello_c || hello_s). Fresh nonces make them new on every
 * connection; the receiver accepts only the exact next counter, so a
 * replayed, reordered, dropped, truncated or altered frame fails to open.
 *
 * What this proves: the other side holds the cluster key. Node ids in the
 * hellos are claims by a key holder (bound into the keys, so they cannot be
 * changed in flight); a hello claiming our own id is refused, which stops
 * reflecting our own handshake back at us.
 *
 * Any handshake failure moves the session to PEER_FAILED, where every call
 * fails; a frame that fails to open is counted and changes nothing (the
 * caller closes the link either way).
 */
#define PEER_HELLO_SIZE (4 + 1 + 1 + 8 + 32)
#define PEER_AUTH_SIZE 32
#define PEER_NONCE_SIZE 32
#define PEER_FRAME_HDR 4
#define PEER_TAG_SIZE 16
/* Largest length prefix accepted: checked before anything is allocated. */
#define PEER_MAX_FRAME (64u << 20)
#define PEER_MAX_PLAIN (PEER_MAX_FRAME - PEER_TAG_SIZE)

enum peer_role {
	PEER_CLIENT = 0,	/* connected */
	PEER_SERVER = 1,	/* accepted */
};

enum peer_state {
	PEER_HANDSHAKE = 0,	/* hellos and tags still to go */
	PEER_OPEN,		/* both tags sent and checked: frames flow */
	PEER_FAILED,		/* handshake failed: close the link */
	PEER_STATE_MAX
};

const char *peer_state_name(enum peer_state state);

/* Embedded; all of it secret or about secrets. peer_sess_release wipes it. */
struct peer_sess {
	enum peer_role role;
	enum peer_state state;
	unsigned steps;		/* PEER_STEP_* done, internal */
	uint64_t self_id, peer_id;
	uint8_t link_key[AUTH_KEY_SIZE];
	uint8_t hello[2][PEER_HELLO_SIZE];	/* [role]: client's, server's */
	uint8_t tx_key[AUTH_KEY_SIZE], rx_key[AUTH_KEY_SIZE];
	uint64_t tx_seq, rx_seq;	/* next counter to send / accept */
	uint64_t failures;	/* rejected hellos, tags and frames */
};

/*
 * Starts a session as @role for node @self_id (non-zero) with the cluster
 * key @key (copied: only a subkey is kept). DSC_EINVAL for id 0, DSC_EIO
 * when libsodium cannot start.
 */
int peer_sess_init(struct peer_sess *s, const uint8_t key[AUTH_KEY_SIZE],
		   enum peer_role role, uint64_t self_id, struct dsc_err *err);
/* Wipes every key and nonce; the session must be initialised again. */
void peer_sess_release(struct peer_sess *s);

/* Writes our hello. Once per session; DSC_EINVAL when called again. */
int peer_hello_make(struct peer_sess *s, uint8_t out[PEER_HELLO_SIZE],
		    struct dsc_err *err);
/*
 * Checks the peer's hello (@len must be PEER_HELLO_SIZE): magic, version,
 * the opposite role, a non-zero id that is not ours. DSC_EAUTH otherwise.
 * Once per session.
 */
int peer_hello_read(struct peer_sess *s, const uint8_t *in, size_t len,
		    struct dsc_err *err);
/* Writes our auth tag; needs both hellos (DSC_EINVAL before). */
int peer_auth_make(struct peer_sess *s, uint8_t out[PEER_AUTH_SIZE],
		   struct dsc_err *err);
/* Checks the peer's tag in constant time; DSC_EAUTH when wrong. */
int peer_auth_verify(struct peer_sess *s, const uint8_t *in, size_t len,
		     struct dsc_err *err);

/*
 * For the reader: given the first @avail bytes buffered, sets *@need to the
 * size of the whole frame (PEER_FRAME_HDR while the length is incomplete).
 * DSC_EAUTH for a length outside [PEER_TAG_SIZE, PEER_MAX_FRAME], so a
 * hostile length is refused before anything is allocated or read.
 */
int peer_frame_size(struct peer_sess *s, const uint8_t *p, size_t avail,
		    size_t *need, struct dsc_err *err);

/*
 * Appends one frame carrying the @len bytes at @pt to @out. DSC_EINVAL
 * unless PEER_OPEN, DSC_ETOOBIG over PEER_MAX_PLAIN, DSC_ENOMEM; on error
 * @out is unchanged and no counter was used.
 */
int peer_seal(struct peer_sess *s, const void *pt, size_t len,
	      struct buf *out, struct dsc_err *err);

/*
 * Opens the one whole frame in @frame (@len = PEER_FRAME_HDR + its length)
 * and appends the plaintext to @plain. DSC_EAUTH for a frame that is
 * truncated, too long, out of range, replayed, out of order or altered;
 * counted, @plain unchanged, the expected counter unchanged. DSC_EINVAL
 * unless PEER_OPEN, DSC_ENOMEM.
 */
int peer_open(struct peer_sess *s, const uint8_t *frame, size_t len,
	      struct buf *plain, struct dsc_err *err);

/* ---- signed JSON-RPC requests ------------------------------------------- */

/*
 * Each request carries four headers; the MAC is BLAKE2b-256 keyed with the
 * "dscrpc01" subkey over "dsc-rpc-mac-v1\0\0" and then, each as u64le
 * length || bytes so no field can borrow from its neighbour: key id,
 * timestamp (as sent), nonce (as sent), HTTP method, path, body.
 *
 *	X-Dsc-Key-Id:    [A-Za-z0-9._-]{1,64}, by default auth_key_id()
 *	X-Dsc-Timestamp: unix seconds, decimal, no sign or leading zero
 *	X-Dsc-Nonce:     16 random bytes, 32 lowercase hex digits
 *	X-Dsc-Mac:       32 bytes, 64 lowercase hex digits
 *
 * A request is accepted when every header is present and well formed, the
 * key id is the key's, the MAC matches (constant time), the timestamp is
 * within AUTH_REQ_SKEW seconds of the verifier's clock either way, and the
 * nonce was not seen before (struct replay_cache).
 */
#define AUTH_HDR_KEY_ID "X-Dsc-Key-Id"
#define AUTH_HDR_TIMESTAMP "X-Dsc-Timestamp"
#define AUTH_HDR_NONCE "X-Dsc-Nonce"
#define AUTH_HDR_MAC "X-Dsc-Mac"

#define AUTH_REQ_SKEW 30
#define AUTH_REQ_NONCE_SIZE 16
#define AUTH_REQ_MAC_SIZE 32
/* Digits of a timestamp: INT64_MAX has 19. */
#define AUTH_REQ_TS_MAX 19
/* Bytes of the method and of the path covered by the MAC. */
#define AUTH_REQ_METHOD_MAX 16
#define AUTH_REQ_PATH_MAX 2048

/* A request key: the MAC subkey and its id. Release wipes it. */
struct auth_rpc_key {
	uint8_t mac_key[AUTH_KEY_SIZE];
	char id[AUTH_KEY_ID_MAX + 1];
};

/*
 * Derives the request key from the cluster key @key. @id NULL means
 * auth_key_id(@key); otherwise it must match the key id syntax (DSC_EINVAL).
 */
int auth_rpc_key_init(struct auth_rpc_key *k, const uint8_t key[AUTH_KEY_SIZE],
		      const char *id, struct dsc_err *err);
void auth_rpc_key_release(struct auth_rpc_key *k);

/* Header values made by auth_req_sign: NUL-terminated, owned. */
struct auth_req_sig {
	char key_id[AUTH_KEY_ID_MAX + 1];
	char timestamp[AUTH_REQ_TS_MAX + 1];
	char nonce[2 * AUTH_REQ_NONCE_SIZE + 1];
	char mac[2 * AUTH_REQ_MAC_SIZE + 1];
};

/* Header values as received: borrowed, each NULL when the header is absent. */
struct auth_req_hdrs {
	const char *key_id, *timestamp, *nonce, *mac;
};

/*
 * Signs a request made at @now (unix seconds, >= 0) with a fresh nonce.
 * DSC_EINVAL for a negative @now or a method or path over its limit.
 */
int auth_req_sign(const struct auth_rpc_key *k, int64_t now,
		  const char *method, const char *path, const void *body,
		  size_t len, struct auth_req_sig *sig, struct dsc_err *err);

/* Points @h at @sig's values. */
void auth_req_sig_hdrs(const struct auth_req_sig *sig,
		       struct auth_req_hdrs *h);

struct replay_cache;

/*
 * Checks a request received at @now against @k (see above) and records its
 * nonce in @rc. Returns 0, DSC_EAUTH with the reason (missing or malformed
 * header, unknown key id, bad MAC, stale or future timestamp, replayed
 * nonce), or DSC_EBUSY when @rc is full (see struct replay_cache). Nothing
 * is recorded unless the MAC and timestamp are good, so unauthenticated
 * requests cannot fill the cache.
 */
int auth_req_verify(const struct auth_rpc_key *k,
		    const struct auth_req_hdrs *h, const char *method,
		    const char *path, const void *body, size_t len,
		    int64_t now, struct replay_cache *rc, struct dsc_err *err);

/*
 * The nonces of accepted requests, kept while their timestamp could still
 * be accepted: a timestamp ts is acceptable while ts >= hwm - AUTH_REQ_SKEW,
 * hwm being the highest @now seen, so a nonce is kept until hwm passes
 * ts + AUTH_REQ_SKEW (a 61-second span of timestamps). Using the highest
 * @now rather than the latest means a clock stepped back can neither revive
 * a forgotten nonce nor make the cache forget early; requests older than
 * the high-water mark allows are refused as stale instead.
 *
 * Memory grows with the load: the pool starts at AUTH_REPLAY_INIT_CAP
 * entries (or @cap, if smaller) and doubles, with its hash table, whenever
 * it fills, up to @cap; an idle server keeps a few kilobytes, a busy one
 * what its request rate needs, and never more than @cap entries. The hash
 * table is SipHash-keyed with a random key (so chosen nonces cannot make
 * long chains), with one list per second of timestamp for expiry. Check,
 * insert and expiry are O(1) amortized. When @cap nonces are live, new
 * requests get DSC_EBUSY: refusing service for a moment is recoverable
 * (clients retry), forgetting a live nonce would let a captured request be
 * replayed. @cap bounds memory (40 bytes a nonce, plus the table); it
 * admits cap / 61 requests a second, sustained.
 */
#define AUTH_REPLAY_SLOTS 64	/* power of two > 2 * AUTH_REQ_SKEW + 1 */
/* 4M nonces: ~68,000 signed requests a second per server, ~180 MB at most. */
#define AUTH_REPLAY_DEFAULT_CAP (1u << 22)
#define AUTH_REPLAY_INIT_CAP 1024u
#define AUTH_REPLAY_MAX_CAP (1u << 24)

struct replay_entry;

struct replay_cache {
	struct replay_entry *pool;
	uint32_t *heads;
	uint32_t cap, alloc, n, hmask, free_head;
	uint32_t ring[AUTH_REPLAY_SLOTS];
	int64_t hwm;
	bool started;
	uint8_t hkey[16];
};

/* @cap (the most live nonces) in [1, AUTH_REPLAY_MAX_CAP]: DSC_EINVAL;
 * DSC_ENOMEM. */
int replay_cache_init(struct replay_cache *rc, uint32_t cap,
		      struct dsc_err *err);
void replay_cache_release(struct replay_cache *rc);

/*
 * Advances the cache to @now, then records @nonce of a request stamped @ts.
 * Returns 0 when new, DSC_EAUTH when already seen or when @ts is outside
 * [hwm - AUTH_REQ_SKEW, now + AUTH_REQ_SKEW], DSC_EBUSY when full.
 */
int replay_cache_add(struct replay_cache *rc,
		     const uint8_t nonce[AUTH_REQ_NONCE_SIZE], int64_t ts,
		     int64_t now, struct dsc_err *err);
/* Live nonces as of the last call. */
uint32_t replay_cache_count(const struct replay_cache *rc);

#endif

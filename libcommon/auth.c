/*
 * auth.c - cluster key files, peer-link handshake and frames, request MACs
 * and the replay cache of auth.h, on libsodium.
 *
 * Secrets live in fixed arrays that are wiped (sodium_memzero) on every way
 * out, and every comparison of a secret-derived value is constant time
 * (crypto_verify_32). Hostile lengths are checked against named limits
 * before anything is allocated. Only auth_keygen and auth_key_load touch
 * the file system.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "dsc_assert.h"
#include "fileio.h"
#include "mem.h"
#include "raft_codec.h"

_Static_assert(AUTH_KEY_SIZE == crypto_kdf_KEYBYTES, "kdf key size");
_Static_assert(AUTH_KEY_SIZE == crypto_aead_chacha20poly1305_ietf_KEYBYTES,
    "aead key size");
_Static_assert(PEER_TAG_SIZE == crypto_aead_chacha20poly1305_ietf_ABYTES,
    "aead tag size");
_Static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == 12,
    "nonce is a 64-bit counter and 4 zero bytes");
_Static_assert(AUTH_KEY_B64_LEN + 1 ==
	sodium_base64_ENCODED_LEN(AUTH_KEY_SIZE,
	    sodium_base64_VARIANT_ORIGINAL), "base64 length");
_Static_assert(RAFT_CODEC_MAX_MSG <= PEER_MAX_PLAIN,
    "a raft message must fit one peer frame");
_Static_assert((AUTH_REPLAY_SLOTS & (AUTH_REPLAY_SLOTS - 1)) == 0 &&
	AUTH_REPLAY_SLOTS > 2 * AUTH_REQ_SKEW + 1, "replay ring size");
_Static_assert(sizeof(((struct replay_cache *)0)->hkey) ==
	crypto_shorthash_KEYBYTES, "siphash key size");

/* crypto_kdf contexts: exactly 8 characters, one per use of the key. */
#define CTX_PEER "dscpeer1"
#define CTX_RPC "dscrpc01"
#define CTX_KEYID "dsckeyid"

int
auth_init(struct dsc_err *err)
{
	if (sodium_init() < 0)
		return dsc_errorf(err, DSC_EIO,
		    "unable to initialise libsodium");
	return 0;
}

/* ---- key files ---------------------------------------------------------- */

int
auth_key_parse(const char *text, size_t len, uint8_t key[AUTH_KEY_SIZE],
	       struct dsc_err *err)
{
	uint8_t tmp[AUTH_KEY_SIZE];
	char canon[AUTH_KEY_B64_LEN + 1];
	size_t n = len, bin_len = 0;
	int bad;

	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' ||
			 text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--;
	if (n == 0)
		return dsc_errorf(err, DSC_EINVAL, "key is empty");
	if (n != AUTH_KEY_B64_LEN)
		return dsc_errorf(err, DSC_EINVAL,
		    "key is %zu characters, expected %d (base64 of %d bytes)",
		    n, AUTH_KEY_B64_LEN, AUTH_KEY_SIZE);
	bad = sodium_base642bin(tmp, sizeof(tmp), text, n, NULL, &bin_len,
	    NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    bin_len != AUTH_KEY_SIZE;
	/* One spelling per key: re-encode and compare, so stray bits in the
	 * last character cannot make two files that look different agree. */
	if (!bad) {
		sodium_bin2base64(canon, sizeof(canon), tmp, sizeof(tmp),
		    sodium_base64_VARIANT_ORIGINAL);
		bad = sodium_memcmp(canon, text, AUTH_KEY_B64_LEN) != 0;
	}
	if (!bad)
		memcpy(key, tmp, AUTH_KEY_SIZE);
	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(canon, sizeof(canon));
	if (bad)
		return dsc_errorf(err, DSC_EINVAL,
		    "key is not valid base64 of %d bytes", AUTH_KEY_SIZE);
	return 0;
}

/* Reads up to @max bytes of @fd into @p; the count, or -1 with errno. */
static ssize_t
read_all(int fd, char *p, size_t max)
{
	size_t n = 0;

	while (n < max) {
		ssize_t r = read(fd, p + n, max - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	return (ssize_t)n;
}

/* Checks the opened key file: regular, ours alone, small. */
static int
check_key_file(const char *path, const struct stat *st, struct dsc_err *err)
{
	mode_t others = st->st_mode & (S_IRWXG | S_IRWXO);

	if (!S_ISREG(st->st_mode))
		return dsc_errorf(err, DSC_EINVAL,
		    "key file '%s' is not a regular file", path);
	if (others != 0)
		return dsc_errorf(err, DSC_EINVAL,
		    "key file '%s' is %s by others (mode %04o); chmod 600 it",
		    path,
		    (others & (S_IRGRP | S_IROTH)) ? "readable" :
		    (others & (S_IWGRP | S_IWOTH)) ? "writable" : "executable",
		    (unsigned)(st->st_mode & 07777));
	if (st->st_size > AUTH_KEY_FILE_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "key file '%s' is %jd bytes, limit %d", path,
		    (intmax_t)st->st_size, AUTH_KEY_FILE_MAX);
	return 0;
}

int
auth_key_load(const char *path, uint8_t key[AUTH_KEY_SIZE],
	      struct dsc_err *err)
{
	char text[AUTH_KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	int fd, rc;

	if ((rc = auth_init(err)) != 0)
		return rc;
	/* O_NONBLOCK: opening a FIFO must not hang; fstat refuses it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dsc_errorf(err, errno == EIO ? DSC_EIO : DSC_EINVAL,
		    "unable to open key file '%s': %s", path, strerror(errno));
	/* Checked on the open descriptor: the file read is the file checked. */
	if (fstat(fd, &st) != 0) {
		rc = dsc_errorf(err, DSC_EIO,
		    "unable to stat key file '%s': %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = check_key_file(path, &st, err)) != 0) {
		close(fd);
		return rc;
	}
	n = read_all(fd, text, sizeof(text));
	if (n < 0)
		rc = dsc_errorf(err, DSC_EIO,
		    "unable to read key file '%s': %s", path, strerror(errno));
	else if ((size_t)n > AUTH_KEY_FILE_MAX)
		rc = dsc_errorf(err, DSC_EINVAL,
		    "key file '%s' is more than %d bytes", path,
		    AUTH_KEY_FILE_MAX);
	else if ((rc = auth_key_parse(text, (size_t)n, key, err)) != 0)
		dsc_err_wrap(err, "key file '%s'", path);
	close(fd);
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* Fsyncs the directory holding @path, so the new name survives a crash. */
static int
sync_parent(const char *path, struct dsc_err *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd, rc = 0;

	if (slash == NULL) {
		strcpy(dir, ".");
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		if (n >= sizeof(dir))
			return dsc_errorf(err, DSC_EINVAL,
			    "key file path '%s' is too long", path);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return dsc_errorf(err, DSC_EIO, "unable to open '%s': %s", dir,
		    strerror(errno));
	/* Some file systems cannot sync a directory; that is not an error. */
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = dsc_errorf(err, DSC_EIO, "unable to fsync '%s': %s", dir,
		    strerror(errno));
	close(fd);
	return rc;
}

int
auth_keygen(const char *path, struct dsc_err *err)
{
	uint8_t key[AUTH_KEY_SIZE];
	char line[AUTH_KEY_B64_LEN + 2];
	const char *what = NULL;
	int fd, rc, e = 0;

	if ((rc = auth_init(err)) != 0)
		return rc;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW |
			    O_NOCTTY, 0600);
	if (fd < 0 && errno == EEXIST)
		return dsc_errorf(err, DSC_EEXIST,
		    "key file '%s' already exists; not overwriting it", path);
	if (fd < 0)
		return dsc_errorf(err, DSC_EIO,
		    "unable to create key file '%s': %s", path,
		    strerror(errno));
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(line, sizeof(line), key, sizeof(key),
	    sodium_base64_VARIANT_ORIGINAL);
	line[AUTH_KEY_B64_LEN] = '\n';
	/* The umask may have taken owner bits; the mode is ours to set. */
	if (fchmod(fd, 0600) != 0)
		what = "fchmod";
	else if (fileio_write_all(fd, line, AUTH_KEY_B64_LEN + 1) != 0)
		what = "write";
	else if (fsync(fd) != 0)
		what = "fsync";
	if (what != NULL)
		e = errno;
	if (close(fd) != 0 && what == NULL) {
		what = "close";
		e = errno;
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(line, sizeof(line));
	if (what != NULL) {
		unlink(path);	/* ours: O_EXCL created it */
		return dsc_errorf(err, DSC_EIO,
		    "unable to write key file '%s': %s: %s", path, what,
		    strerror(e));
	}
	return sync_parent(path, err);
}

void
auth_key_id(const uint8_t key[AUTH_KEY_SIZE], char out[AUTH_KEY_ID_LEN + 1])
{
	uint8_t sub[crypto_kdf_BYTES_MIN];

	/* 16 bytes is the KDF's minimum; the id shows the first 8. */
	crypto_kdf_derive_from_key(sub, sizeof(sub), 1, CTX_KEYID, key);
	out[0] = 'k';
	out[1] = '-';
	sodium_bin2hex(out + 2, AUTH_KEY_ID_LEN - 1, sub,
	    (AUTH_KEY_ID_LEN - 2) / 2);
	sodium_memzero(sub, sizeof(sub));
}

/* ---- peer links --------------------------------------------------------- */

#define PEER_MAGIC "DSCP"
#define PEER_VERSION 1

/* Handshake steps done, as bits of peer_sess.steps. */
enum {
	STEP_HELLO_SENT = 1 << 0,
	STEP_HELLO_READ = 1 << 1,
	STEP_AUTH_SENT = 1 << 2,
	STEP_AUTH_OK = 1 << 3,
	STEPS_ALL = (1 << 4) - 1,
};

/* Domain labels: 16 bytes each, so the inputs they start cannot collide. */
static const uint8_t LABEL_AUTH[16] = "dsc-peer-auth-v1";
static const uint8_t LABEL_KEY[16] = "dsc-peer-key-v1";

static const char *const state_names[PEER_STATE_MAX] = {
	[PEER_HANDSHAKE] = "handshake",
	[PEER_OPEN] = "open",
	[PEER_FAILED] = "failed",
};

const char *
peer_state_name(enum peer_state state)
{
	return (unsigned)state < PEER_STATE_MAX ? state_names[state] :
	    "unknown";
}

/* The one place the state changes. */
static void
set_state(struct peer_sess *s, enum peer_state state)
{
	DSC_ASSERT((unsigned)state < PEER_STATE_MAX);
	s->state = state;
}

/* Counts a rejection by the peer's bytes; fails the handshake if in one. */
static int fail(struct peer_sess *, struct dsc_err *, const char *, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct peer_sess *s, struct dsc_err *err, const char *fmt, ...)
{
	char msg[DSC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	s->failures++;
	if (s->state == PEER_HANDSHAKE) {
		set_state(s, PEER_FAILED);
		sodium_memzero(s->link_key, sizeof(s->link_key));
	}
	return dsc_errorf(err, DSC_EAUTH, "peer link: %s", msg);
}

/* Refuses calls in a failed session or out of order (caller bugs). */
static int
usable(const struct peer_sess *s, const char *call, struct dsc_err *err)
{
	if (s->state == PEER_FAILED)
		return dsc_errorf(err, DSC_EAUTH,
		    "peer link: %s after the handshake failed", call);
	return 0;
}

int
peer_sess_init(struct peer_sess *s, const uint8_t key[AUTH_KEY_SIZE],
	       enum peer_role role, uint64_t self_id, struct dsc_err *err)
{
	int rc;

	if ((rc = auth_init(err)) != 0)
		return rc;
	if (self_id == 0)
		return dsc_errorf(err, DSC_EINVAL, "peer link: node id 0");
	if (role != PEER_CLIENT && role != PEER_SERVER)
		return dsc_errorf(err, DSC_EINVAL, "peer link: bad role %d",
		    (int)role);
	sodium_memzero(s, sizeof(*s));
	s->role = role;
	s->self_id = self_id;
	set_state(s, PEER_HANDSHAKE);
	crypto_kdf_derive_from_key(s->link_key, sizeof(s->link_key), 1,
	    CTX_PEER, key);
	return 0;
}

void
peer_sess_release(struct peer_sess *s)
{
	sodium_memzero(s, sizeof(*s));
	s->state = PEER_FAILED;
}

int
peer_hello_make(struct peer_sess *s, uint8_t out[PEER_HELLO_SIZE],
		struct dsc_err *err)
{
	uint8_t *h = s->hello[s->role];
	int rc;

	if ((rc = usable(s, "hello", err)) != 0)
		return rc;
	if (s->steps & STEP_HELLO_SENT)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: hello sent twice");
	memcpy(h, PEER_MAGIC, 4);
	h[4] = PEER_VERSION;
	h[5] = (uint8_t)s->role;
	for (int i = 0; i < 8; i++)
		h[6 + i] = (uint8_t)(s->self_id >> (8 * i));
	randombytes_buf(h + 14, PEER_NONCE_SIZE);
	memcpy(out, h, PEER_HELLO_SIZE);
	s->steps |= STEP_HELLO_SENT;
	return 0;
}

int
peer_hello_read(struct peer_sess *s, const uint8_t *in, size_t len,
		struct dsc_err *err)
{
	enum peer_role them =
	    s->role == PEER_CLIENT ? PEER_SERVER : PEER_CLIENT;
	uint64_t id;
	int rc;

	if ((rc = usable(s, "hello", err)) != 0)
		return rc;
	if (s->steps & STEP_HELLO_READ)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: hello read twice");
	if (len != PEER_HELLO_SIZE)
		return fail(s, err, "hello is %zu bytes, expected %d", len,
		    PEER_HELLO_SIZE);
	if (memcmp(in, PEER_MAGIC, 4) != 0)
		return fail(s, err, "not a dsc peer (bad magic)");
	if (in[4] != PEER_VERSION)
		return fail(s, err, "peer speaks version %u, we speak %d",
		    (unsigned)in[4], PEER_VERSION);
	if (in[5] != them)
		return fail(s, err, "peer claims role %u, expected %u",
		    (unsigned)in[5], (unsigned)them);
	id = get_u64le(in + 6);
	if (id == 0)
		return fail(s, err, "peer claims node id 0");
	if (id == s->self_id)
		return fail(s, err, "peer claims our own node id %" PRIu64, id);
	memcpy(s->hello[them], in, PEER_HELLO_SIZE);
	s->peer_id = id;
	s->steps |= STEP_HELLO_READ;
	return 0;
}

/* BLAKE2b-256 of both hellos, client's first: what the handshake saw. */
static void
transcript(const struct peer_sess *s, uint8_t th[32])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, s->hello[PEER_CLIENT], PEER_HELLO_SIZE);
	crypto_generichash_update(&st, s->hello[PEER_SERVER], PEER_HELLO_SIZE);
	crypto_generichash_final(&st, th, 32);
	sodium_memzero(&st, sizeof(st));
}

/* BLAKE2b-256 keyed with the link key over label || byte || transcript. */
static void
derive(const struct peer_sess *s, const uint8_t label[16], uint8_t which,
       uint8_t out[32])
{
	crypto_generichash_state st;
	uint8_t th[32];

	transcript(s, th);
	crypto_generichash_init(&st, s->link_key, sizeof(s->link_key), 32);
	crypto_generichash_update(&st, label, 16);
	crypto_generichash_update(&st, &which, 1);
	crypto_generichash_update(&st, th, sizeof(th));
	crypto_generichash_final(&st, out, 32);
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(th, sizeof(th));
}

/* Both tags done: derive the session keys, forget the link key. */
static void
maybe_open(struct peer_sess *s)
{
	uint8_t c2s[AUTH_KEY_SIZE], s2c[AUTH_KEY_SIZE];

	if (s->steps != STEPS_ALL)
		return;
	derive(s, LABEL_KEY, 'c', c2s);
	derive(s, LABEL_KEY, 's', s2c);
	memcpy(s->tx_key, s->role == PEER_CLIENT ? c2s : s2c, AUTH_KEY_SIZE);
	memcpy(s->rx_key, s->role == PEER_CLIENT ? s2c : c2s, AUTH_KEY_SIZE);
	sodium_memzero(c2s, sizeof(c2s));
	sodium_memzero(s2c, sizeof(s2c));
	sodium_memzero(s->link_key, sizeof(s->link_key));
	s->tx_seq = s->rx_seq = 0;
	set_state(s, PEER_OPEN);
}

static int
both_hellos(const struct peer_sess *s, const char *call, struct dsc_err *err)
{
	int rc;

	if ((rc = usable(s, call, err)) != 0)
		return rc;
	if ((s->steps & (STEP_HELLO_SENT | STEP_HELLO_READ)) !=
	    (STEP_HELLO_SENT | STEP_HELLO_READ))
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: %s before both hellos", call);
	return 0;
}

int
peer_auth_make(struct peer_sess *s, uint8_t out[PEER_AUTH_SIZE],
	       struct dsc_err *err)
{
	int rc;

	if ((rc = both_hellos(s, "auth", err)) != 0)
		return rc;
	if (s->steps & STEP_AUTH_SENT)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: auth sent twice");
	derive(s, LABEL_AUTH, (uint8_t)s->role, out);
	s->steps |= STEP_AUTH_SENT;
	maybe_open(s);
	return 0;
}

int
peer_auth_verify(struct peer_sess *s, const uint8_t *in, size_t len,
		 struct dsc_err *err)
{
	uint8_t want[PEER_AUTH_SIZE];
	int ok, rc;

	if ((rc = both_hellos(s, "auth", err)) != 0)
		return rc;
	if (s->steps & STEP_AUTH_OK)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: auth checked twice");
	if (len != PEER_AUTH_SIZE)
		return fail(s, err, "auth tag is %zu bytes, expected %d", len,
		    PEER_AUTH_SIZE);
	derive(s, LABEL_AUTH, (uint8_t)(s->role == PEER_CLIENT ? PEER_SERVER :
	    PEER_CLIENT), want);
	ok = crypto_verify_32(want, in) == 0;
	sodium_memzero(want, sizeof(want));
	if (!ok)
		return fail(s, err,
		    "node %" PRIu64 " failed to prove it holds the cluster key",
		    s->peer_id);
	s->steps |= STEP_AUTH_OK;
	maybe_open(s);
	return 0;
}

/* The AEAD nonce for counter @seq. */
static void
frame_nonce(uint64_t seq, uint8_t n[12])
{
	for (int i = 0; i < 8; i++)
		n[i] = (uint8_t)(seq >> (8 * i));
	n[8] = n[9] = n[10] = n[11] = 0;
}

int
peer_frame_size(struct peer_sess *s, const uint8_t *p, size_t avail,
		size_t *need, struct dsc_err *err)
{
	uint32_t n;

	if (avail < PEER_FRAME_HDR) {
		*need = PEER_FRAME_HDR;
		return 0;
	}
	n = get_u32le(p);
	if (n < PEER_TAG_SIZE || n > PEER_MAX_FRAME)
		return fail(s, err, "frame length %lu outside [%d, %lu]",
		    (unsigned long)n, PEER_TAG_SIZE,
		    (unsigned long)PEER_MAX_FRAME);
	*need = PEER_FRAME_HDR + (size_t)n;
	return 0;
}

int
peer_seal(struct peer_sess *s, const void *pt, size_t len, struct buf *out,
	  struct dsc_err *err)
{
	uint8_t nonce[12], *hdr;
	size_t n;

	if (s->state != PEER_OPEN)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: seal while %s", peer_state_name(s->state));
	if (len > PEER_MAX_PLAIN)
		return dsc_errorf(err, DSC_ETOOBIG,
		    "peer link: frame of %zu bytes, limit %lu", len,
		    (unsigned long)PEER_MAX_PLAIN);
	if (s->tx_seq == UINT64_MAX)
		return dsc_errorf(err, DSC_EAUTH,
		    "peer link: send counter exhausted; reconnect");
	n = len + PEER_TAG_SIZE;
	if (buf_grow(out, PEER_FRAME_HDR + n) != 0)
		return dsc_errorf(err, DSC_ENOMEM,
		    "peer link: unable to seal %zu bytes: out of memory", len);
	hdr = out->p + out->len;
	for (int i = 0; i < 4; i++)
		hdr[i] = (uint8_t)(n >> (8 * i));
	frame_nonce(s->tx_seq, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(hdr + PEER_FRAME_HDR, NULL,
	    pt, len, hdr, PEER_FRAME_HDR, NULL, nonce, s->tx_key);
	s->tx_seq++;
	out->len += PEER_FRAME_HDR + n;
	out->p[out->len] = '\0';
	return 0;
}

int
peer_open(struct peer_sess *s, const uint8_t *frame, size_t len,
	  struct buf *plain, struct dsc_err *err)
{
	uint8_t nonce[12], *dst;
	size_t n, need = 0;
	int rc;

	if (s->state != PEER_OPEN)
		return dsc_errorf(err, DSC_EINVAL,
		    "peer link: open while %s", peer_state_name(s->state));
	if (len < PEER_FRAME_HDR)
		return fail(s, err, "frame of %zu bytes is truncated", len);
	if ((rc = peer_frame_size(s, frame, len, &need, err)) != 0)
		return rc;
	if (len != need)
		return fail(s, err, "frame is %zu bytes, its length says %zu",
		    len, need);
	if (s->rx_seq == UINT64_MAX)
		return fail(s, err, "receive counter exhausted");
	n = need - PEER_FRAME_HDR - PEER_TAG_SIZE;
	if (buf_grow(plain, n) != 0)
		return dsc_errorf(err, DSC_ENOMEM,
		    "peer link: unable to open %zu bytes: out of memory", n);
	dst = plain->p + plain->len;
	frame_nonce(s->rx_seq, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(dst, NULL, NULL,
		frame + PEER_FRAME_HDR, need - PEER_FRAME_HDR, frame,
		PEER_FRAME_HDR, nonce, s->rx_key) != 0) {
		sodium_memzero(dst, n);
		plain->p[plain->len] = '\0';
		return fail(s, err,
		    "frame %" PRIu64 " from node %" PRIu64 " failed "
		    "authentication (altered, replayed, reordered or lost)",
		    s->rx_seq, s->peer_id);
	}
	s->rx_seq++;
	plain->len += n;
	plain->p[plain->len] = '\0';
	return 0;
}

/* ---- signed requests ---------------------------------------------------- */

static const uint8_t LABEL_MAC[16] = "dsc-rpc-mac-v1\0";

/* [A-Za-z0-9._-]{1,AUTH_KEY_ID_MAX} */
static bool
valid_key_id(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++) {
		char c = id[n];

		if (n >= AUTH_KEY_ID_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return n > 0;
}

int
auth_rpc_key_init(struct auth_rpc_key *k, const uint8_t key[AUTH_KEY_SIZE],
		  const char *id, struct dsc_err *err)
{
	int rc;

	if ((rc = auth_init(err)) != 0)
		return rc;
	if (id != NULL && !valid_key_id(id))
		return dsc_errorf(err, DSC_EINVAL,
		    "key id must be 1 to %d of [A-Za-z0-9._-]",
		    AUTH_KEY_ID_MAX);
	sodium_memzero(k, sizeof(*k));
	crypto_kdf_derive_from_key(k->mac_key, sizeof(k->mac_key), 1, CTX_RPC,
	    key);
	if (id != NULL)
		memcpy(k->id, id, strlen(id) + 1);
	else
		auth_key_id(key, k->id);
	return 0;
}

void
auth_rpc_key_release(struct auth_rpc_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

static void
mac_field(crypto_generichash_state *st, const void *p, size_t n)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)n >> (8 * i));
	crypto_generichash_update(st, le, sizeof(le));
	if (n > 0)
		crypto_generichash_update(st, p, n);
}

/* The MAC of a request; the string fields are NUL-terminated. */
static void
req_mac(const struct auth_rpc_key *k, const char *key_id, const char *ts,
	const char *nonce, const char *method, const char *path,
	const void *body, size_t len, uint8_t mac[AUTH_REQ_MAC_SIZE])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, k->mac_key, sizeof(k->mac_key),
	    AUTH_REQ_MAC_SIZE);
	crypto_generichash_update(&st, LABEL_MAC, sizeof(LABEL_MAC));
	mac_field(&st, key_id, strlen(key_id));
	mac_field(&st, ts, strlen(ts));
	mac_field(&st, nonce, strlen(nonce));
	mac_field(&st, method, strlen(method));
	mac_field(&st, path, strlen(path));
	mac_field(&st, body, len);
	crypto_generichash_final(&st, mac, AUTH_REQ_MAC_SIZE);
	sodium_memzero(&st, sizeof(st));
}

static int
check_target(const char *method, const char *path, int code,
	     struct dsc_err *err)
{
	if (method == NULL || strlen(method) > AUTH_REQ_METHOD_MAX)
		return dsc_errorf(err, code, "request method missing or over "
		    "%d bytes", AUTH_REQ_METHOD_MAX);
	if (path == NULL || strlen(path) > AUTH_REQ_PATH_MAX)
		return dsc_errorf(err, code, "request path missing or over "
		    "%d bytes", AUTH_REQ_PATH_MAX);
	return 0;
}

int
auth_req_sign(const struct auth_rpc_key *k, int64_t now, const char *method,
	      const char *path, const void *body, size_t len,
	      struct auth_req_sig *sig, struct dsc_err *err)
{
	uint8_t nonce[AUTH_REQ_NONCE_SIZE], mac[AUTH_REQ_MAC_SIZE];
	int rc;

	if ((rc = check_target(method, path, DSC_EINVAL, err)) != 0)
		return rc;
	if (now < 0)
		return dsc_errorf(err, DSC_EINVAL, "negative time %" PRId64,
		    now);
	if (len > 0 && body == NULL)
		return dsc_errorf(err, DSC_EINVAL, "request body missing");
	memcpy(sig->key_id, k->id, sizeof(sig->key_id));
	snprintf(sig->timestamp, sizeof(sig->timestamp), "%" PRId64, now);
	randombytes_buf(nonce, sizeof(nonce));
	sodium_bin2hex(sig->nonce, sizeof(sig->nonce), nonce, sizeof(nonce));
	req_mac(k, sig->key_id, sig->timestamp, sig->nonce, method, path, body,
	    len, mac);
	sodium_bin2hex(sig->mac, sizeof(sig->mac), mac, sizeof(mac));
	sodium_memzero(mac, sizeof(mac));
	return 0;
}

void
auth_req_sig_hdrs(const struct auth_req_sig *sig, struct auth_req_hdrs *h)
{
	h->key_id = sig->key_id;
	h->timestamp = sig->timestamp;
	h->nonce = sig->nonce;
	h->mac = sig->mac;
}

/* Exactly 2 * @n lowercase hex digits into @out. */
static bool
parse_hex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 2 * n)
			return false;
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	if (i != 2 * n)
		return false;
	return sodium_hex2bin(out, n, s, 2 * n, NULL, NULL, NULL) == 0;
}

/* Unix seconds: 1 to AUTH_REQ_TS_MAX digits, no sign, no leading zero. */
static bool
parse_ts(const char *s, int64_t *ts)
{
	int64_t v = 0;
	size_t i;

	if (s[0] == '0' && s[1] == '\0') {
		*ts = 0;
		return true;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= AUTH_REQ_TS_MAX || s[i] < '0' || s[i] > '9' ||
		    (i == 0 && s[i] == '0'))
			return false;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0)
		return false;
	*ts = v;
	return true;
}

int
auth_req_verify(const struct auth_rpc_key *k, const struct auth_req_hdrs *h,
		const char *method, const char *path, const void *body,
		size_t len, int64_t now, struct replay_cache *rc,
		struct dsc_err *err)
{
	uint8_t nonce[AUTH_REQ_NONCE_SIZE], got[AUTH_REQ_MAC_SIZE];
	uint8_t want[AUTH_REQ_MAC_SIZE];
	int64_t ts;
	int ok, r;

	if (h->key_id == NULL)
		return dsc_errorf(err, DSC_EAUTH, "missing header %s",
		    AUTH_HDR_KEY_ID);
	if (h->timestamp == NULL)
		return dsc_errorf(err, DSC_EAUTH, "missing header %s",
		    AUTH_HDR_TIMESTAMP);
	if (h->nonce == NULL)
		return dsc_errorf(err, DSC_EAUTH, "missing header %s",
		    AUTH_HDR_NONCE);
	if (h->mac == NULL)
		return dsc_errorf(err, DSC_EAUTH, "missing header %s",
		    AUTH_HDR_MAC);
	if ((r = check_target(method, path, DSC_EAUTH, err)) != 0)
		return r;
	if (len > 0 && body == NULL)
		return dsc_errorf(err, DSC_EINVAL, "request body missing");
	if (!valid_key_id(h->key_id))
		return dsc_errorf(err, DSC_EAUTH, "malformed header %s",
		    AUTH_HDR_KEY_ID);
	if (!parse_ts(h->timestamp, &ts))
		return dsc_errorf(err, DSC_EAUTH, "malformed header %s",
		    AUTH_HDR_TIMESTAMP);
	if (!parse_hex(h->nonce, nonce, sizeof(nonce)))
		return dsc_errorf(err, DSC_EAUTH, "malformed header %s",
		    AUTH_HDR_NONCE);
	if (!parse_hex(h->mac, got, sizeof(got)))
		return dsc_errorf(err, DSC_EAUTH, "malformed header %s",
		    AUTH_HDR_MAC);
	/* Key ids are public: an ordinary comparison is fine. */
	if (strcmp(h->key_id, k->id) != 0)
		return dsc_errorf(err, DSC_EAUTH, "unknown key id '%s'",
		    h->key_id);
	req_mac(k, h->key_id, h->timestamp, h->nonce, method, path, body, len,
	    want);
	ok = crypto_verify_32(want, got) == 0;
	sodium_memzero(want, sizeof(want));
	if (!ok)
		return dsc_errorf(err, DSC_EAUTH, "bad request MAC");
	if (ts < now - AUTH_REQ_SKEW || ts > now + AUTH_REQ_SKEW)
		return dsc_errorf(err, DSC_EAUTH,
		    "request timestamp %" PRId64 " is %" PRId64 " s %s; "
		    "allowed skew is %d s", ts, ts < now ? now - ts : ts - now,
		    ts < now ? "old" : "in the future", AUTH_REQ_SKEW);
	return replay_cache_add(rc, nonce, ts, now, err);
}

/* ---- replay cache ------------------------------------------------------- */

#define NIL UINT32_MAX

struct replay_entry {
	uint8_t nonce[AUTH_REQ_NONCE_SIZE];
	int64_t ts;
	uint32_t hash;		/* bucket, masked */
	uint32_t hnext;		/* hash chain, or free list */
	uint32_t tnext;		/* list of one second of timestamps */
};

static uint32_t
bucket(const struct replay_cache *rc, const uint8_t nonce[16])
{
	uint8_t h[crypto_shorthash_BYTES];

	crypto_shorthash(h, nonce, AUTH_REQ_NONCE_SIZE, rc->hkey);
	return (uint32_t)get_u64le(h) & rc->hmask;
}

/* Sizes the pool to @alloc entries and the table to the power of two at or
 * above it, rehashing every live nonce; the pool keeps its indexes, so the
 * expiry lists stay as they are. On failure nothing changed. */
static int
replay_resize(struct replay_cache *rc, uint32_t alloc)
{
	struct replay_entry *pool;
	uint32_t *heads, nb = 1;

	while (nb < alloc)
		nb <<= 1;
	heads = dsc_calloc(nb, sizeof(*heads));
	if (heads == NULL)
		return DSC_ENOMEM;
	pool = dsc_reallocarray(rc->pool, alloc, sizeof(*pool));
	if (pool == NULL) {
		dsc_free(heads);
		return DSC_ENOMEM;
	}
	rc->pool = pool;
	dsc_free(rc->heads);
	rc->heads = heads;
	rc->hmask = nb - 1;
	for (uint32_t i = 0; i < nb; i++)
		heads[i] = NIL;
	for (int s = 0; s < AUTH_REPLAY_SLOTS; s++)
		for (uint32_t i = rc->ring[s]; i != NIL; i = pool[i].tnext) {
			pool[i].hash = bucket(rc, pool[i].nonce);
			pool[i].hnext = heads[pool[i].hash];
			heads[pool[i].hash] = i;
		}
	/* The new entries go to the front of the free list, in order. */
	for (uint32_t i = alloc; i-- > rc->alloc;) {
		pool[i].hnext = rc->free_head;
		rc->free_head = i;
	}
	rc->alloc = alloc;
	return 0;
}

int
replay_cache_init(struct replay_cache *rc, uint32_t cap, struct dsc_err *err)
{
	int r;

	if ((r = auth_init(err)) != 0)
		return r;
	if (cap < 1 || cap > AUTH_REPLAY_MAX_CAP)
		return dsc_errorf(err, DSC_EINVAL,
		    "replay cache of %lu nonces outside [1, %lu]",
		    (unsigned long)cap, (unsigned long)AUTH_REPLAY_MAX_CAP);
	memset(rc, 0, sizeof(*rc));
	rc->free_head = NIL;
	for (int i = 0; i < AUTH_REPLAY_SLOTS; i++)
		rc->ring[i] = NIL;
	randombytes_buf(rc->hkey, sizeof(rc->hkey));
	if (replay_resize(rc, cap < AUTH_REPLAY_INIT_CAP ? cap :
		AUTH_REPLAY_INIT_CAP) != 0) {
		sodium_memzero(rc, sizeof(*rc));
		return dsc_errorf(err, DSC_ENOMEM,
		    "unable to allocate a replay cache of %lu nonces",
		    (unsigned long)cap);
	}
	rc->cap = cap;
	return 0;
}

void
replay_cache_release(struct replay_cache *rc)
{
	dsc_free(rc->pool);
	dsc_free(rc->heads);
	sodium_memzero(rc, sizeof(*rc));
}

uint32_t
replay_cache_count(const struct replay_cache *rc)
{
	return rc->n;
}

/* Forgets every nonce stamped with second @t (one ring slot). */
static void
drain_slot(struct replay_cache *rc, int64_t t)
{
	uint32_t *slot = &rc->ring[(uint64_t)t & (AUTH_REPLAY_SLOTS - 1)];

	while (*slot != NIL) {
		uint32_t i = *slot;
		struct replay_entry *e = &rc->pool[i];
		uint32_t *pp = &rc->heads[e->hash];

		DSC_ASSERT(e->ts == t);
		/* Chains average below one entry: load factor <= 1. */
		while (*pp != i)
			pp = &rc->pool[*pp].hnext;
		*pp = e->hnext;
		*slot = e->tnext;
		e->hnext = rc->free_head;
		rc->free_head = i;
		rc->n--;
	}
}

/* Moves the high-water mark to @now, forgetting what can no longer pass. */
static void
advance(struct replay_cache *rc, int64_t now)
{
	int64_t from, to;

	if (!rc->started) {
		rc->started = true;
		rc->hwm = now;
		return;
	}
	if (now <= rc->hwm)
		return;
	/* Seconds that fall out of the window: [old - skew, now - skew - 1]. */
	from = rc->hwm - AUTH_REQ_SKEW;
	to = now - AUTH_REQ_SKEW - 1;
	if (to - from >= AUTH_REPLAY_SLOTS - 1)
		to = from + AUTH_REPLAY_SLOTS - 1;
	for (int64_t t = from; t <= to; t++)
		if (t >= 0)
			drain_slot(rc, t);
	rc->hwm = now;
}

int
replay_cache_add(struct replay_cache *rc,
		 const uint8_t nonce[AUTH_REQ_NONCE_SIZE], int64_t ts,
		 int64_t now, struct dsc_err *err)
{
	struct replay_entry *e;
	uint32_t h, i;

	advance(rc, now);
	if (ts < 0 || ts < rc->hwm - AUTH_REQ_SKEW ||
	    ts > now + AUTH_REQ_SKEW)
		return dsc_errorf(err, DSC_EAUTH,
		    "request timestamp %" PRId64 " outside the replay window",
		    ts);
	h = bucket(rc, nonce);
	for (i = rc->heads[h]; i != NIL; i = rc->pool[i].hnext)
		if (memcmp(rc->pool[i].nonce, nonce, AUTH_REQ_NONCE_SIZE) == 0)
			return dsc_errorf(err, DSC_EAUTH,
			    "replayed request nonce");
	if (rc->free_head == NIL && rc->alloc < rc->cap) {
		if (replay_resize(rc, rc->alloc > rc->cap / 2 ? rc->cap :
			rc->alloc * 2) != 0)
			return dsc_errorf(err, DSC_ENOMEM,
			    "unable to grow the replay cache past %lu nonces",
			    (unsigned long)rc->alloc);
		h = bucket(rc, nonce);
	}
	if (rc->free_head == NIL)
		return dsc_errorf(err, DSC_EBUSY,
		    "replay cache full (%lu nonces in the last %d s); "
		    "refusing requests until some expire",
		    (unsigned long)rc->cap, 2 * AUTH_REQ_SKEW + 1);
	i = rc->free_head;
	e = &rc->pool[i];
	rc->free_head = e->hnext;
	memcpy(e->nonce, nonce, AUTH_REQ_NONCE_SIZE);
	e->ts = ts;
	e->hash = h;
	e->hnext = rc->heads[h];
	rc->heads[h] = i;
	e->tnext = rc->ring[(uint64_t)ts & (AUTH_REPLAY_SLOTS - 1)];
	rc->ring[(uint64_t)ts & (AUTH_REPLAY_SLOTS - 1)] = i;
	rc->n++;
	return 0;
}

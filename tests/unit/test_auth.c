/*
 * test_auth.c - key files, the peer-link handshake and frames, signed
 * requests and the replay cache: what must pass passes, and everything
 * TESTING.md L0 lists (wrong key, missing MAC, replay, truncation, flipped
 * bits in header and body, oversized lengths) is refused, counted and
 * changes nothing.
 */
#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "t.h"

/* ---- fixture ------------------------------------------------------- */

static char tmpdir[64];
static uint8_t key1[AUTH_KEY_SIZE], key2[AUTH_KEY_SIZE];

/* Removes the test directory and what the tests left in it. */
static void
cleanup(void)
{
	struct dirent *d;
	char p[sizeof(tmpdir) + 1 + 256];
	DIR *dir;

	if ((dir = opendir(tmpdir)) == NULL)
		return;
	while ((d = readdir(dir)) != NULL) {
		snprintf(p, sizeof(p), "%s/%s", tmpdir, d->d_name);
		if (d->d_name[0] != '.' && unlink(p) != 0)
			rmdir(p);
	}
	closedir(dir);
	rmdir(tmpdir);
}

static void
setup(void)
{
	dsc_mem_fail_after(-1);
	dsc_mem_reset_count();
	T_EQ(auth_init(NULL), 0);
	if (tmpdir[0] == '\0') {
		strcpy(tmpdir, "/tmp/test_auth.XXXXXX");
		T_ASSERT(mkdtemp(tmpdir) != NULL);
		atexit(cleanup);
		randombytes_buf(key1, sizeof(key1));
		randombytes_buf(key2, sizeof(key2));
	}
}

/* A path in the test's directory; the file is removed first. */
static const char *
tpath(const char *name)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	unlink(p);
	rmdir(p);
	return p;
}

static void
write_file(const char *path, const char *text, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	T_ASSERT(fd >= 0);
	T_EQ(write(fd, text, n), (ssize_t)n);
	T_EQ(fchmod(fd, mode), 0);
	close(fd);
}

/* Expects auth_key_load(@path) to fail with @code, @key untouched. */
#define LOAD_ERROR(path, code, needle)                                         \
	do {                                                                   \
		uint8_t k_[AUTH_KEY_SIZE];                                     \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		memset(k_, 0x5a, sizeof(k_));                                  \
		T_EQ(auth_key_load((path), k_, &e_), (code));                  \
		T_ASSERT(strstr(e_.msg, (needle)) != NULL);                    \
		for (size_t i_ = 0; i_ < sizeof(k_); i_++)                     \
			T_EQ(k_[i_], 0x5a);                                    \
	} while (0)

/* ---- key files ----------------------------------------------------- */

TEST(keygen_makes_0600_and_loads)
{
	const char *p;
	uint8_t k[AUTH_KEY_SIZE], k2[AUTH_KEY_SIZE];
	char text[AUTH_KEY_FILE_MAX];
	struct stat st;
	mode_t old;
	int fd;

	setup();
	/* Whatever the umask: 0 would allow 0666, 0277 would take u+w. */
	for (int i = 0; i < 2; i++) {
		old = umask(i == 0 ? 0 : 0277);
		p = tpath("cluster.key");
		T_EQ(auth_keygen(p, NULL), 0);
		umask(old);
		T_EQ(stat(p, &st), 0);
		T_ASSERT(S_ISREG(st.st_mode));
		T_EQ(st.st_mode & 07777, 0600);
		T_EQ(st.st_size, AUTH_KEY_B64_LEN + 1);
	}
	fd = open(p, O_RDONLY);
	T_ASSERT(fd >= 0);
	T_EQ(read(fd, text, sizeof(text)), AUTH_KEY_B64_LEN + 1);
	close(fd);
	T_EQ(text[AUTH_KEY_B64_LEN], '\n');
	T_EQ(auth_key_load(p, k, NULL), 0);
	T_EQ(auth_key_parse(text, AUTH_KEY_B64_LEN + 1, k2, NULL), 0);
	T_MEMEQ(k, k2, sizeof(k));
	/* Two keygens give two keys. */
	p = tpath("other.key");
	T_EQ(auth_keygen(p, NULL), 0);
	T_EQ(auth_key_load(p, k2, NULL), 0);
	T_ASSERT(memcmp(k, k2, sizeof(k)) != 0);
}

TEST(keygen_refuses_to_overwrite)
{
	const char *p;
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t before[AUTH_KEY_SIZE], after[AUTH_KEY_SIZE];
	char target[128];

	setup();
	p = tpath("exists.key");
	T_EQ(auth_keygen(p, NULL), 0);
	T_EQ(auth_key_load(p, before, NULL), 0);
	T_EQ(auth_keygen(p, &err), DSC_EEXIST);
	T_ASSERT(strstr(err.msg, "already exists") != NULL);
	T_EQ(auth_key_load(p, after, NULL), 0);
	T_MEMEQ(before, after, sizeof(before));
	/* A dangling symlink is not followed to create its target. */
	snprintf(target, sizeof(target), "%s", tpath("target.key"));
	p = tpath("link.key");
	T_EQ(symlink(target, p), 0);
	T_EQ(auth_keygen(p, &err), DSC_EEXIST);
	T_ASSERT(access(target, F_OK) != 0);
	unlink(p);
	/* Missing directory: a clean system error. */
	T_EQ(auth_keygen("/nonexistent-dsc-dir/k", &err), DSC_EIO);
	T_ASSERT(strstr(err.msg, "unable to create") != NULL);
}

TEST(load_refuses_loose_modes)
{
	static const struct {
		mode_t mode;
		const char *word;
	} modes[] = {
		{ 0644, "readable by others (mode 0644); chmod 600 it" },
		{ 0640, "readable by others (mode 0640)" },
		{ 0604, "readable" },
		{ 0620, "writable by others (mode 0620)" },
		{ 0602, "writable" },
		{ 0610, "executable" },
		{ 0666, "readable" },
	};
	char line[AUTH_KEY_B64_LEN + 2];
	const char *p;

	setup();
	sodium_bin2base64(line, sizeof(line), key1, sizeof(key1),
	    sodium_base64_VARIANT_ORIGINAL);
	strcat(line, "\n");
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		p = tpath("loose.key");
		write_file(p, line, strlen(line), modes[i].mode);
		LOAD_ERROR(p, DSC_EINVAL, modes[i].word);
		LOAD_ERROR(p, DSC_EINVAL, "loose.key");
	}
	/* 0400 is fine: only the owner can read it. */
	write_file(p, line, strlen(line), 0400);
	{
		uint8_t k[AUTH_KEY_SIZE];

		T_EQ(auth_key_load(p, k, NULL), 0);
		T_MEMEQ(k, key1, sizeof(k));
	}
}

TEST(load_refuses_bad_contents)
{
	char good[AUTH_KEY_B64_LEN + 2], text[512];
	uint8_t k[AUTH_KEY_SIZE], k31[31], k33[33];
	const char *p;

	setup();
	sodium_bin2base64(good, sizeof(good), key1, sizeof(key1),
	    sodium_base64_VARIANT_ORIGINAL);
	p = tpath("bad.key");
	/* Wrong lengths: 31, 24 and 33 bytes of valid base64. */
	memset(k31, 1, sizeof(k31));
	sodium_bin2base64(text, sizeof(text), k31, sizeof(k31),
	    sodium_base64_VARIANT_ORIGINAL);
	write_file(p, text, strlen(text), 0600);
	LOAD_ERROR(p, DSC_EINVAL, "base64 of 32 bytes");
	write_file(p, text, 32, 0600);		/* 24 bytes' worth */
	LOAD_ERROR(p, DSC_EINVAL, "is 32 characters, expected 44");
	memset(k33, 1, sizeof(k33));
	sodium_bin2base64(text, sizeof(text), k33, sizeof(k33),
	    sodium_base64_VARIANT_ORIGINAL);
	write_file(p, text, strlen(text), 0600);
	LOAD_ERROR(p, DSC_EINVAL, "base64 of 32 bytes");
	/* Bad characters, same length. */
	memcpy(text, good, sizeof(good));
	text[10] = '!';
	write_file(p, text, AUTH_KEY_B64_LEN, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "not valid base64");
	memcpy(text, good, sizeof(good));
	text[AUTH_KEY_B64_LEN - 1] = 'A';	/* padding replaced */
	write_file(p, text, AUTH_KEY_B64_LEN, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "not valid base64");
	/* URL-safe alphabet is not ours. */
	memcpy(text, good, sizeof(good));
	text[3] = '-';
	write_file(p, text, AUTH_KEY_B64_LEN, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "not valid base64");
	/* Stray low bits in the last data character: same bytes, other
	 * spelling; refused so one key has one text. */
	memcpy(text, good, sizeof(good));
	{
		const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
				  "qrstuvwxyz0123456789+/";
		const char *c = strchr(b64, text[AUTH_KEY_B64_LEN - 2]);

		T_ASSERT(c != NULL);
		text[AUTH_KEY_B64_LEN - 2] = b64[(c - b64) ^ 1];
	}
	write_file(p, text, AUTH_KEY_B64_LEN, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "not valid base64");
	/* Leading space, embedded NUL, empty. */
	text[0] = ' ';
	memcpy(text + 1, good, AUTH_KEY_B64_LEN);
	write_file(p, text, AUTH_KEY_B64_LEN + 1, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "expected 44");
	memcpy(text, good, sizeof(good));
	text[5] = '\0';
	write_file(p, text, AUTH_KEY_B64_LEN, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "not valid base64");
	write_file(p, "", 0, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "empty");
	write_file(p, "\n\n", 2, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "empty");
	/* Oversize, even when it starts with a good key. */
	memset(text, '\n', sizeof(text));
	memcpy(text, good, AUTH_KEY_B64_LEN);
	write_file(p, text, AUTH_KEY_FILE_MAX + 1, 0600);
	LOAD_ERROR(p, DSC_EINVAL, "limit");
	/* Accepted spellings: with and without newline, CRLF, spaces. */
	write_file(p, good, AUTH_KEY_B64_LEN, 0600);
	T_EQ(auth_key_load(p, k, NULL), 0);
	T_MEMEQ(k, key1, sizeof(k));
	snprintf(text, sizeof(text), "%s\r\n", good);
	write_file(p, text, strlen(text), 0600);
	T_EQ(auth_key_load(p, k, NULL), 0);
	snprintf(text, sizeof(text), "%s \t\n\n", good);
	write_file(p, text, strlen(text), 0600);
	T_EQ(auth_key_load(p, k, NULL), 0);
	T_MEMEQ(k, key1, sizeof(k));
}

TEST(load_refuses_non_files)
{
	const char *p;

	setup();
	p = tpath("dir.key");
	T_EQ(mkdir(p, 0700), 0);
	LOAD_ERROR(p, DSC_EINVAL, "not a regular file");
	rmdir(p);
	p = tpath("fifo.key");
	T_EQ(mkfifo(p, 0600), 0);
	LOAD_ERROR(p, DSC_EINVAL, "not a regular file");	/* no hang */
	unlink(p);
	LOAD_ERROR(tpath("missing.key"), DSC_EINVAL, "unable to open");
}

TEST(key_id_is_stable_and_distinct)
{
	char a[AUTH_KEY_ID_LEN + 1], b[AUTH_KEY_ID_LEN + 1];

	setup();
	auth_key_id(key1, a);
	T_EQ(strlen(a), AUTH_KEY_ID_LEN);
	T_ASSERT(a[0] == 'k' && a[1] == '-');
	for (int i = 2; i < AUTH_KEY_ID_LEN; i++)
		T_ASSERT(strchr("0123456789abcdef", a[i]) != NULL);
	auth_key_id(key1, b);
	T_STREQ(a, b);
	auth_key_id(key2, b);
	T_ASSERT(strcmp(a, b) != 0);
}

/* ---- peer handshake ------------------------------------------------ */

/* Client @c (node 1, key @kc) and server @s (node 2, key @ks) say hello. */
static void
hellos(struct peer_sess *c, struct peer_sess *s, const uint8_t *kc,
       const uint8_t *ks, uint8_t hc[PEER_HELLO_SIZE],
       uint8_t hs[PEER_HELLO_SIZE])
{
	T_EQ(peer_sess_init(c, kc, PEER_CLIENT, 1, NULL), 0);
	T_EQ(peer_sess_init(s, ks, PEER_SERVER, 2, NULL), 0);
	T_EQ(peer_hello_make(c, hc, NULL), 0);
	T_EQ(peer_hello_make(s, hs, NULL), 0);
}

/* A full handshake; returns how many of the two tag checks passed. */
static int
handshake(struct peer_sess *c, struct peer_sess *s, const uint8_t *kc,
	  const uint8_t *ks)
{
	uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
	uint8_t tc[PEER_AUTH_SIZE], ts[PEER_AUTH_SIZE];
	int ok = 0;

	hellos(c, s, kc, ks, hc, hs);
	T_EQ(peer_hello_read(s, hc, sizeof(hc), NULL), 0);
	T_EQ(peer_hello_read(c, hs, sizeof(hs), NULL), 0);
	T_EQ(peer_auth_make(c, tc, NULL), 0);
	T_EQ(peer_auth_make(s, ts, NULL), 0);
	ok += peer_auth_verify(s, tc, sizeof(tc), NULL) == 0;
	ok += peer_auth_verify(c, ts, sizeof(ts), NULL) == 0;
	return ok;
}

TEST(handshake_with_same_key_opens)
{
	struct peer_sess c, s;

	setup();
	T_EQ(handshake(&c, &s, key1, key1), 2);
	T_EQ(c.state, PEER_OPEN);
	T_EQ(s.state, PEER_OPEN);
	T_STREQ(peer_state_name(c.state), "open");
	T_EQ(c.peer_id, 2);
	T_EQ(s.peer_id, 1);
	T_MEMEQ(c.tx_key, s.rx_key, AUTH_KEY_SIZE);
	T_MEMEQ(c.rx_key, s.tx_key, AUTH_KEY_SIZE);
	T_ASSERT(memcmp(c.tx_key, c.rx_key, AUTH_KEY_SIZE) != 0);
	T_EQ(c.failures + s.failures, 0);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(handshake_with_other_key_fails_both_ways)
{
	struct peer_sess c, s;
	uint8_t zero[AUTH_KEY_SIZE] = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t out[PEER_HELLO_SIZE];
	struct buf frame = BUF_INIT;

	setup();
	T_EQ(handshake(&c, &s, key1, key2), 0);
	T_EQ(c.state, PEER_FAILED);
	T_EQ(s.state, PEER_FAILED);
	T_EQ(c.failures, 1);
	T_EQ(s.failures, 1);
	/* A failed session refuses everything and kept no key. */
	T_MEMEQ(c.link_key, zero, sizeof(zero));
	T_MEMEQ(c.tx_key, zero, sizeof(zero));
	T_EQ(peer_auth_make(&c, out, &err), DSC_EAUTH);
	T_EQ(peer_seal(&c, "x", 1, &frame, &err), DSC_EINVAL);
	T_EQ(frame.len, 0);
	peer_sess_release(&c);
	peer_sess_release(&s);
	/* One side wrong is enough for both to fail. */
	T_EQ(handshake(&c, &s, key2, key1), 0);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

/*
 * Every byte of either hello altered in flight: the handshake never opens
 * on both sides. Header bytes are refused by hello_read, nonce bytes by
 * the tag check (the tags cover both hellos).
 */
TEST(tampered_hello_fails)
{
	setup();
	for (int side = 0; side < 2; side++) {
		for (size_t i = 0; i < PEER_HELLO_SIZE; i++) {
			uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
			uint8_t tc[PEER_AUTH_SIZE], ts[PEER_AUTH_SIZE];
			struct peer_sess c, s;
			int rc1, rc2, ok = 0;

			hellos(&c, &s, key1, key1, hc, hs);
			(side == 0 ? hc : hs)[i] ^= 0x20;
			rc1 = peer_hello_read(&s, hc, sizeof(hc), NULL);
			rc2 = peer_hello_read(&c, hs, sizeof(hs), NULL);
			if (rc1 == 0 && rc2 == 0) {
				/* Ids and nonces parse: the tags catch them. */
				T_ASSERT(i >= 6);
				T_EQ(peer_auth_make(&c, tc, NULL), 0);
				T_EQ(peer_auth_make(&s, ts, NULL), 0);
				ok += peer_auth_verify(&s, tc, sizeof(tc),
				    NULL) == 0;
				ok += peer_auth_verify(&c, ts, sizeof(ts),
				    NULL) == 0;
				T_EQ(ok, 0);
			} else {
				/* Magic, version and role are checked. */
				T_EQ(rc1 != 0 ? rc1 : rc2, DSC_EAUTH);
				T_ASSERT(i < 6);
			}
			T_ASSERT(c.state != PEER_OPEN || s.state != PEER_OPEN);
			peer_sess_release(&c);
			peer_sess_release(&s);
		}
	}
}

TEST(tampered_tag_fails)
{
	setup();
	for (size_t bit = 0; bit < 8 * PEER_AUTH_SIZE; bit += 7) {
		uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
		uint8_t tc[PEER_AUTH_SIZE];
		struct peer_sess c, s;
		struct dsc_err err = DSC_ERR_INIT;

		hellos(&c, &s, key1, key1, hc, hs);
		T_EQ(peer_hello_read(&s, hc, sizeof(hc), NULL), 0);
		T_EQ(peer_hello_read(&c, hs, sizeof(hs), NULL), 0);
		T_EQ(peer_auth_make(&c, tc, NULL), 0);
		tc[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		T_EQ(peer_auth_verify(&s, tc, sizeof(tc), &err), DSC_EAUTH);
		T_ASSERT(strstr(err.msg, "cluster key") != NULL);
		T_EQ(s.state, PEER_FAILED);
		T_EQ(s.failures, 1);
		peer_sess_release(&c);
		peer_sess_release(&s);
	}
	/* Truncated tag, and a tag replayed from another connection. */
	{
		struct peer_sess c, s, c2, s2;
		uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
		uint8_t tc[PEER_AUTH_SIZE];

		hellos(&c, &s, key1, key1, hc, hs);
		T_EQ(peer_hello_read(&s, hc, sizeof(hc), NULL), 0);
		T_EQ(peer_hello_read(&c, hs, sizeof(hs), NULL), 0);
		T_EQ(peer_auth_make(&c, tc, NULL), 0);
		T_EQ(peer_auth_verify(&s, tc, sizeof(tc) - 1, NULL), DSC_EAUTH);
		hellos(&c2, &s2, key1, key1, hc, hs);
		T_EQ(peer_hello_read(&s2, hc, sizeof(hc), NULL), 0);
		T_EQ(peer_hello_read(&c2, hs, sizeof(hs), NULL), 0);
		T_EQ(peer_auth_verify(&s2, tc, sizeof(tc), NULL), DSC_EAUTH);
		peer_sess_release(&c);
		peer_sess_release(&s);
		peer_sess_release(&c2);
		peer_sess_release(&s2);
	}
}

TEST(hello_checks)
{
	uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
	struct peer_sess c, s, x;
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	/* Wrong length. */
	hellos(&c, &s, key1, key1, hc, hs);
	T_EQ(peer_hello_read(&s, hc, sizeof(hc) - 1, &err), DSC_EAUTH);
	T_EQ(s.state, PEER_FAILED);
	/* Our own hello reflected back: wrong role. */
	T_EQ(peer_hello_read(&c, hc, sizeof(hc), &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "role") != NULL);
	/* A server hello claiming our own id (reflection through a
	 * second connection), and id 0. */
	T_EQ(peer_sess_init(&x, key1, PEER_SERVER, 1, NULL), 0);
	T_EQ(peer_hello_make(&x, hs, NULL), 0);
	T_EQ(peer_sess_init(&c, key1, PEER_CLIENT, 1, NULL), 0);
	T_EQ(peer_hello_read(&c, hs, sizeof(hs), &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "our own node id") != NULL);
	memset(hs + 6, 0, 8);
	T_EQ(peer_sess_init(&c, key1, PEER_CLIENT, 1, NULL), 0);
	T_EQ(peer_hello_read(&c, hs, sizeof(hs), &err), DSC_EAUTH);
	/* Version and magic. */
	T_EQ(peer_hello_make(&x, hs, &err), DSC_EINVAL);	/* twice */
	hellos(&c, &s, key1, key1, hc, hs);
	hs[4] = 2;
	T_EQ(peer_hello_read(&c, hs, sizeof(hs), &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "version 2") != NULL);
	/* Misuse: id 0, auth before hellos, reading twice. */
	T_EQ(peer_sess_init(&x, key1, PEER_CLIENT, 0, &err), DSC_EINVAL);
	hellos(&c, &s, key1, key1, hc, hs);
	T_EQ(peer_auth_make(&c, hc, &err), DSC_EINVAL);
	T_EQ(peer_auth_verify(&c, hc, PEER_AUTH_SIZE, &err), DSC_EINVAL);
	T_EQ(peer_hello_read(&c, hs, sizeof(hs), NULL), 0);
	T_EQ(peer_hello_read(&c, hs, sizeof(hs), &err), DSC_EINVAL);
	T_EQ(c.state, PEER_HANDSHAKE);
	peer_sess_release(&c);
	peer_sess_release(&s);
	peer_sess_release(&x);
}

TEST(release_wipes)
{
	struct peer_sess c, s, z;

	setup();
	T_EQ(handshake(&c, &s, key1, key1), 2);
	peer_sess_release(&c);
	memset(&z, 0, sizeof(z));
	z.state = PEER_FAILED;
	T_MEMEQ(&c, &z, sizeof(z));
	peer_sess_release(&s);
}

/* ---- frames -------------------------------------------------------- */

static void
open_pair(struct peer_sess *c, struct peer_sess *s)
{
	T_EQ(handshake(c, s, key1, key1), 2);
}

static void
seal(struct peer_sess *from, const void *p, size_t n, struct buf *out)
{
	*out = (struct buf)BUF_INIT;
	T_EQ(peer_seal(from, p, n, out, NULL), 0);
	T_EQ(out->len, PEER_FRAME_HDR + n + PEER_TAG_SIZE);
	T_EQ(get_u32le(out->p), n + PEER_TAG_SIZE);
}

/* Expects @f to be refused by @to, leaving @to's counters alone. */
#define OPEN_ERROR(to, f, n)                                                   \
	do {                                                                   \
		struct buf pl_ = BUF_INIT;                                     \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		uint64_t seq_ = (to)->rx_seq, fails_ = (to)->failures;         \
		T_EQ(buf_addstr(&pl_, "keep"), 0);                             \
		T_EQ(peer_open((to), (f), (n), &pl_, &e_), DSC_EAUTH);         \
		T_EQ(e_.code, DSC_EAUTH);                                      \
		T_EQ((to)->rx_seq, seq_);                                      \
		T_EQ((to)->failures, fails_ + 1);                              \
		T_EQ((to)->state, PEER_OPEN);                                  \
		T_STREQ((char *)pl_.p, "keep");                                \
		buf_release(&pl_);                                             \
	} while (0)

static void
opens_to(struct peer_sess *to, const struct buf *f, const void *want,
	 size_t n)
{
	struct buf pl = BUF_INIT;

	T_EQ(peer_open(to, f->p, f->len, &pl, NULL), 0);
	T_EQ(pl.len, n);
	if (n > 0)
		T_MEMEQ(pl.p, want, n);
	buf_release(&pl);
}

TEST(frames_round_trip_both_ways)
{
	static const size_t sizes[] = { 0, 1, 15, 16, 17, 1000, 300000 };
	struct peer_sess c, s;
	uint8_t *data;

	setup();
	open_pair(&c, &s);
	data = malloc(300000);
	T_ASSERT(data != NULL);
	randombytes_buf(data, 300000);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct buf f;

		seal(&c, data, sizes[i], &f);
		opens_to(&s, &f, data, sizes[i]);
		buf_release(&f);
		seal(&s, data, sizes[i], &f);
		opens_to(&c, &f, data, sizes[i]);
		buf_release(&f);
	}
	T_EQ(c.tx_seq, 7);
	T_EQ(s.rx_seq, 7);
	T_EQ(c.failures + s.failures, 0);
	/* Frames append: two in one buffer, opened one after the other. */
	{
		struct buf two = BUF_INIT;
		size_t first;

		T_EQ(peer_seal(&c, "ab", 2, &two, NULL), 0);
		first = two.len;
		T_EQ(peer_seal(&c, "cde", 3, &two, NULL), 0);
		{
			struct buf pl = BUF_INIT;
			size_t need;

			T_EQ(peer_frame_size(&s, two.p, two.len, &need, NULL),
			    0);
			T_EQ(need, first);
			T_EQ(peer_open(&s, two.p, first, &pl, NULL), 0);
			T_EQ(peer_open(&s, two.p + first, two.len - first, &pl,
			    NULL), 0);
			T_STREQ((char *)pl.p, "abcde");
			buf_release(&pl);
		}
		buf_release(&two);
	}
	free(data);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(flipped_bits_are_rejected)
{
	static const char msg[] = "append entries 42..44";
	struct peer_sess c, s;
	struct buf f;

	setup();
	open_pair(&c, &s);
	seal(&c, msg, sizeof(msg), &f);
	for (size_t i = 0; i < f.len; i++) {
		for (int b = 0; b < 8; b++) {
			f.p[i] ^= (uint8_t)(1 << b);
			OPEN_ERROR(&s, f.p, f.len);
			f.p[i] ^= (uint8_t)(1 << b);
		}
	}
	T_EQ(s.failures, 8 * f.len);
	/* Nothing changed: the genuine frame still opens. */
	opens_to(&s, &f, msg, sizeof(msg));
	buf_release(&f);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(replayed_reordered_dropped_are_rejected)
{
	struct peer_sess c, s;
	struct buf f1, f2, f3;

	setup();
	open_pair(&c, &s);
	seal(&c, "one", 3, &f1);
	seal(&c, "two", 3, &f2);
	seal(&c, "three", 5, &f3);
	/* Reordered: 2 before 1. */
	OPEN_ERROR(&s, f2.p, f2.len);
	opens_to(&s, &f1, "one", 3);
	/* Replayed: 1 again. */
	OPEN_ERROR(&s, f1.p, f1.len);
	/* Dropped: 2 lost, 3 arrives. */
	OPEN_ERROR(&s, f3.p, f3.len);
	opens_to(&s, &f2, "two", 3);
	opens_to(&s, &f3, "three", 5);
	OPEN_ERROR(&s, f3.p, f3.len);
	/* Reflected: our own frame sent back to us. */
	{
		struct buf own;

		seal(&s, "mine", 4, &own);
		OPEN_ERROR(&s, own.p, own.len);
		buf_release(&own);
	}
	buf_release(&f1);
	buf_release(&f2);
	buf_release(&f3);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(truncated_and_padded_frames_are_rejected)
{
	struct peer_sess c, s;
	struct buf f;

	setup();
	open_pair(&c, &s);
	seal(&c, "hello, peer", 11, &f);
	for (size_t n = 0; n < f.len; n++) {
		uint8_t *p = malloc(n ? n : 1);

		T_ASSERT(p != NULL);
		memcpy(p, f.p, n);
		OPEN_ERROR(&s, p, n);
		free(p);
	}
	T_EQ(buf_addch(&f, 0), 0);	/* one byte too many */
	OPEN_ERROR(&s, f.p, f.len);
	f.len--;
	opens_to(&s, &f, "hello, peer", 11);
	buf_release(&f);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(oversized_lengths_are_rejected_before_allocating)
{
	static const uint32_t bad[] = {
		0, 1, PEER_TAG_SIZE - 1, PEER_MAX_FRAME + 1, UINT32_MAX,
	};
	struct peer_sess c, s;
	uint8_t hdr[PEER_FRAME_HDR + 64] = { 0 };
	size_t need = 0;

	setup();
	open_pair(&c, &s);
	T_EQ(peer_frame_size(&s, hdr, 3, &need, NULL), 0);
	T_EQ(need, PEER_FRAME_HDR);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dsc_err err = DSC_ERR_INIT;

		for (int b = 0; b < 4; b++)
			hdr[b] = (uint8_t)(bad[i] >> (8 * b));
		dsc_mem_reset_count();
		T_EQ(peer_frame_size(&s, hdr, sizeof(hdr), &need, &err),
		    DSC_EAUTH);
		T_ASSERT(strstr(err.msg, "frame length") != NULL);
		{
			struct buf pl = BUF_INIT;

			T_EQ(peer_open(&s, hdr, sizeof(hdr), &pl, &err),
			    DSC_EAUTH);
			T_ASSERT(pl.p == NULL);
		}
		T_EQ(dsc_mem_calls(), 0);
		OPEN_ERROR(&s, hdr, sizeof(hdr));
	}
	for (int b = 0; b < 4; b++)
		hdr[b] = (uint8_t)(PEER_MAX_FRAME >> (8 * b));
	T_EQ(peer_frame_size(&s, hdr, sizeof(hdr), &need, NULL), 0);
	T_EQ(need, PEER_FRAME_HDR + PEER_MAX_FRAME);
	/* The sender refuses before touching the data or the buffer. */
	{
		struct buf out = BUF_INIT;
		struct dsc_err err = DSC_ERR_INIT;

		dsc_mem_reset_count();
		T_EQ(peer_seal(&c, hdr, (size_t)PEER_MAX_PLAIN + 1, &out,
		    &err), DSC_ETOOBIG);
		T_EQ(dsc_mem_calls(), 0);
		T_EQ(c.tx_seq, 0);
	}
	peer_sess_release(&c);
	peer_sess_release(&s);
}

static int
cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

TEST(nonces_never_repeat)
{
	enum { N = 20000 };
	struct peer_sess c, s;
	uint8_t (*heads)[16];
	struct buf f = BUF_INIT;

	setup();
	open_pair(&c, &s);
	heads = malloc(N * sizeof(*heads));
	T_ASSERT(heads != NULL);
	/* Same plaintext every time: equal ciphertexts would mean a reused
	 * (key, nonce) pair. */
	for (uint64_t i = 0; i < N; i++) {
		buf_clear(&f);
		T_EQ(c.tx_seq, i);
		T_EQ(peer_seal(&c, "0123456789abcdef", 16, &f, NULL), 0);
		memcpy(heads[i], f.p + PEER_FRAME_HDR, 16);
		opens_to(&s, &f, "0123456789abcdef", 16);
	}
	qsort(heads, N, sizeof(*heads), cmp16);
	for (size_t i = 1; i < N; i++)
		T_ASSERT(memcmp(heads[i - 1], heads[i], 16) != 0);
	free(heads);
	/* At the end of the counter, refuse rather than wrap. */
	c.tx_seq = UINT64_MAX - 1;
	s.rx_seq = UINT64_MAX - 1;
	buf_clear(&f);
	T_EQ(peer_seal(&c, "x", 1, &f, NULL), 0);
	opens_to(&s, &f, "x", 1);
	T_EQ(peer_seal(&c, "y", 1, &f, NULL), DSC_EAUTH);
	OPEN_ERROR(&s, f.p, f.len);
	buf_release(&f);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

TEST(session_keys_are_fresh_per_connection)
{
	struct peer_sess c1, s1, c2, s2;
	struct buf f;

	setup();
	open_pair(&c1, &s1);
	open_pair(&c2, &s2);
	T_ASSERT(memcmp(c1.tx_key, c2.tx_key, AUTH_KEY_SIZE) != 0);
	T_ASSERT(memcmp(c1.rx_key, c2.rx_key, AUTH_KEY_SIZE) != 0);
	/* A frame from one connection means nothing on another, even at the
	 * same counter. */
	seal(&c1, "term 5", 6, &f);
	OPEN_ERROR(&s2, f.p, f.len);
	opens_to(&s1, &f, "term 5", 6);
	buf_release(&f);
	peer_sess_release(&c1);
	peer_sess_release(&s1);
	peer_sess_release(&c2);
	peer_sess_release(&s2);
}

TEST(frame_allocation_failure)
{
	struct peer_sess c, s;
	struct buf f = BUF_INIT, pl = BUF_INIT;
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	open_pair(&c, &s);
	dsc_mem_fail_after(0);
	T_EQ(peer_seal(&c, "abc", 3, &f, &err), DSC_ENOMEM);
	dsc_mem_fail_after(-1);
	T_EQ(f.len, 0);
	T_EQ(c.tx_seq, 0);
	T_EQ(peer_seal(&c, "abc", 3, &f, NULL), 0);
	dsc_mem_fail_after(0);
	T_EQ(peer_open(&s, f.p, f.len, &pl, &err), DSC_ENOMEM);
	dsc_mem_fail_after(-1);
	T_EQ(s.rx_seq, 0);
	T_EQ(s.failures, 0);
	T_EQ(pl.len, 0);
	T_EQ(peer_open(&s, f.p, f.len, &pl, NULL), 0);
	T_STREQ((char *)pl.p, "abc");
	buf_release(&f);
	buf_release(&pl);
	peer_sess_release(&c);
	peer_sess_release(&s);
}

/* ---- signed requests ----------------------------------------------- */

static const char body[] =
    "{\"jsonrpc\":\"2.0\",\"method\":\"Catalog.Register\","
    "\"params\":{\"service\":\"web\"},\"id\":1}";
static const int64_t T0 = 1700000000;

struct rpc_fixture {
	struct auth_rpc_key k;
	struct replay_cache rc;
	struct auth_req_sig sig;
	struct auth_req_hdrs h;
};

static void
rpc_setup(struct rpc_fixture *f)
{
	setup();
	T_EQ(auth_rpc_key_init(&f->k, key1, NULL, NULL), 0);
	T_EQ(replay_cache_init(&f->rc, 1024, NULL), 0);
	T_EQ(auth_req_sign(&f->k, T0, "POST", "/rpc", body, strlen(body),
	    &f->sig, NULL), 0);
	auth_req_sig_hdrs(&f->sig, &f->h);
}

static void
rpc_teardown(struct rpc_fixture *f)
{
	auth_rpc_key_release(&f->k);
	replay_cache_release(&f->rc);
}

/* Verifies @h for POST /rpc @b at @now; returns the code, checks @needle. */
static int
verify_at(struct rpc_fixture *f, const struct auth_req_hdrs *h,
	  const char *b, int64_t now, const char *needle)
{
	struct dsc_err err = DSC_ERR_INIT;
	int rc;

	rc = auth_req_verify(&f->k, h, "POST", "/rpc", b, strlen(b), now,
	    &f->rc, &err);
	if (needle != NULL && strstr(err.msg, needle) == NULL)
		T_FAIL("error '%s' does not mention '%s'", err.msg, needle);
	return rc;
}

TEST(request_accepted_once)
{
	struct rpc_fixture f;

	rpc_setup(&f);
	T_STREQ(f.sig.timestamp, "1700000000");
	T_EQ(strlen(f.sig.nonce), 32);
	T_EQ(strlen(f.sig.mac), 64);
	T_EQ(strlen(f.sig.key_id), AUTH_KEY_ID_LEN);
	T_EQ(verify_at(&f, &f.h, body, T0, NULL), 0);
	T_EQ(verify_at(&f, &f.h, body, T0, "replayed"), DSC_EAUTH);
	T_EQ(verify_at(&f, &f.h, body, T0 + 20, "replayed"), DSC_EAUTH);
	T_EQ(replay_cache_count(&f.rc), 1);
	/* A new signature of the same request is a new request. */
	T_EQ(auth_req_sign(&f.k, T0, "POST", "/rpc", body, strlen(body),
	    &f.sig, NULL), 0);
	T_EQ(verify_at(&f, &f.h, body, T0, NULL), 0);
	rpc_teardown(&f);
}

TEST(request_timestamp_window)
{
	static const struct {
		int64_t off;
		int want;
	} cases[] = {
		{ -31, DSC_EAUTH }, { -30, 0 }, { -29, 0 }, { 0, 0 },
		{ 29, 0 }, { 30, 0 }, { 31, DSC_EAUTH }, { -100000, DSC_EAUTH },
		{ 100000, DSC_EAUTH },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rpc_fixture f;

		rpc_setup(&f);
		/* The request is stamped T0; the verifier's clock is off. */
		T_EQ(verify_at(&f, &f.h, body, T0 - cases[i].off,
		    cases[i].want ? "allowed skew is 30 s" : NULL),
		    cases[i].want);
		T_EQ(replay_cache_count(&f.rc), cases[i].want ? 0 : 1);
		rpc_teardown(&f);
	}
}

TEST(request_any_change_is_refused)
{
	struct rpc_fixture f;
	struct auth_req_hdrs h;
	char b[sizeof(body)], s[128];

	rpc_setup(&f);
	/* Every byte of the body. */
	for (size_t i = 0; i < strlen(body); i++) {
		memcpy(b, body, sizeof(body));
		b[i] ^= 0x01;
		T_EQ(verify_at(&f, &f.h, b, T0, "bad request MAC"), DSC_EAUTH);
	}
	memcpy(b, body, sizeof(body));
	b[strlen(b) - 1] = '\0';	/* truncated */
	T_EQ(verify_at(&f, &f.h, b, T0, "bad request MAC"), DSC_EAUTH);
	/* Each hex digit of the nonce and the MAC. */
	for (int which = 0; which < 2; which++) {
		const char *orig = which ? f.sig.mac : f.sig.nonce;

		for (size_t i = 0; i < strlen(orig); i++) {
			h = f.h;
			snprintf(s, sizeof(s), "%s", orig);
			s[i] = s[i] == '0' ? '1' : '0';
			*(which ? &h.mac : &h.nonce) = s;
			T_EQ(verify_at(&f, &h, body, T0, "bad request MAC"),
			    DSC_EAUTH);
		}
	}
	/* The timestamp, still inside the window. */
	h = f.h;
	h.timestamp = "1700000001";
	T_EQ(verify_at(&f, &h, body, T0, "bad request MAC"), DSC_EAUTH);
	/* Another key id, and the right id with another key. */
	h = f.h;
	h.key_id = "k-0000000000000000";
	T_EQ(verify_at(&f, &h, body, T0, "unknown key id"), DSC_EAUTH);
	{
		struct auth_rpc_key other;
		struct dsc_err err = DSC_ERR_INIT;

		T_EQ(auth_rpc_key_init(&other, key2, f.k.id, NULL), 0);
		T_EQ(auth_req_verify(&other, &f.h, "POST", "/rpc", body,
		    strlen(body), T0, &f.rc, &err), DSC_EAUTH);
		T_ASSERT(strstr(err.msg, "bad request MAC") != NULL);
		auth_rpc_key_release(&other);
	}
	/* Method and path, including a byte moved across the boundary. */
	{
		struct dsc_err err = DSC_ERR_INIT;

		T_EQ(auth_req_verify(&f.k, &f.h, "GET", "/rpc", body,
		    strlen(body), T0, &f.rc, &err), DSC_EAUTH);
		T_EQ(auth_req_verify(&f.k, &f.h, "POST", "/rpc2", body,
		    strlen(body), T0, &f.rc, &err), DSC_EAUTH);
		T_EQ(auth_req_verify(&f.k, &f.h, "POS", "T/rpc", body,
		    strlen(body), T0, &f.rc, &err), DSC_EAUTH);
		T_ASSERT(strstr(err.msg, "bad request MAC") != NULL);
	}
	/* None of that was recorded: the genuine request still passes. */
	T_EQ(replay_cache_count(&f.rc), 0);
	T_EQ(verify_at(&f, &f.h, body, T0, NULL), 0);
	rpc_teardown(&f);
}

TEST(request_missing_or_malformed_headers)
{
	struct rpc_fixture f;
	struct auth_req_hdrs h;
	char upper[65];

	rpc_setup(&f);
	h = f.h;
	h.key_id = NULL;
	T_EQ(verify_at(&f, &h, body, T0, "missing header X-Dsc-Key-Id"),
	    DSC_EAUTH);
	h = f.h;
	h.timestamp = NULL;
	T_EQ(verify_at(&f, &h, body, T0, "missing header X-Dsc-Timestamp"),
	    DSC_EAUTH);
	h = f.h;
	h.nonce = NULL;
	T_EQ(verify_at(&f, &h, body, T0, "missing header X-Dsc-Nonce"),
	    DSC_EAUTH);
	h = f.h;
	h.mac = NULL;
	T_EQ(verify_at(&f, &h, body, T0, "missing header X-Dsc-Mac"),
	    DSC_EAUTH);
	/* Malformed values. */
	{
		static const char *const ts[] = {
			"", "01700000000", "+1700000000", "-1", "17e8",
			"1700000000 ", "99999999999999999999",
			"9223372036854775808",
		};

		for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
			h = f.h;
			h.timestamp = ts[i];
			T_EQ(verify_at(&f, &h, body, T0,
			    "malformed header X-Dsc-Timestamp"), DSC_EAUTH);
		}
	}
	h = f.h;
	h.key_id = "";
	T_EQ(verify_at(&f, &h, body, T0, "malformed header X-Dsc-Key-Id"),
	    DSC_EAUTH);
	h.key_id = "k 1";
	T_EQ(verify_at(&f, &h, body, T0, "malformed"), DSC_EAUTH);
	h = f.h;
	h.nonce = "00";
	T_EQ(verify_at(&f, &h, body, T0, "malformed header X-Dsc-Nonce"),
	    DSC_EAUTH);
	snprintf(upper, sizeof(upper), "%s", f.sig.mac);
	for (char *c = upper; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	h = f.h;
	h.mac = upper;
	if (strcmp(upper, f.sig.mac) != 0)
		T_EQ(verify_at(&f, &h, body, T0, "malformed header X-Dsc-Mac"),
		    DSC_EAUTH);
	snprintf(upper, sizeof(upper), "%s", f.sig.mac);
	upper[63] = '\0';
	h.mac = upper;
	T_EQ(verify_at(&f, &h, body, T0, "malformed header X-Dsc-Mac"),
	    DSC_EAUTH);
	T_EQ(replay_cache_count(&f.rc), 0);
	rpc_teardown(&f);
}

TEST(request_key_ids_and_sign_errors)
{
	struct auth_rpc_key k;
	struct auth_req_sig sig;
	struct dsc_err err = DSC_ERR_INIT;
	char id[AUTH_KEY_ID_MAX + 2], path[AUTH_REQ_PATH_MAX + 2];

	setup();
	T_EQ(auth_rpc_key_init(&k, key1, "ops-token.1", NULL), 0);
	T_STREQ(k.id, "ops-token.1");
	T_EQ(auth_req_sign(&k, -1, "POST", "/rpc", "", 0, &sig, &err),
	    DSC_EINVAL);
	T_EQ(auth_req_sign(&k, 0, "POST-AND-MORE-THAN-16", "/rpc", "", 0,
	    &sig, &err), DSC_EINVAL);
	memset(path, '/', sizeof(path));
	path[AUTH_REQ_PATH_MAX + 1] = '\0';
	T_EQ(auth_req_sign(&k, 0, "POST", path, "", 0, &sig, &err),
	    DSC_EINVAL);
	path[AUTH_REQ_PATH_MAX] = '\0';
	T_EQ(auth_req_sign(&k, 0, "POST", path, NULL, 0, &sig, &err), 0);
	T_STREQ(sig.timestamp, "0");
	memset(id, 'a', sizeof(id));
	id[AUTH_KEY_ID_MAX + 1] = '\0';
	T_EQ(auth_rpc_key_init(&k, key1, id, &err), DSC_EINVAL);
	id[AUTH_KEY_ID_MAX] = '\0';
	T_EQ(auth_rpc_key_init(&k, key1, id, &err), 0);
	T_EQ(auth_rpc_key_init(&k, key1, "a/b", &err), DSC_EINVAL);
	auth_rpc_key_release(&k);
}

/* ---- replay cache -------------------------------------------------- */

static void
nonce_of(uint32_t i, uint8_t n[AUTH_REQ_NONCE_SIZE])
{
	memset(n, 0, AUTH_REQ_NONCE_SIZE);
	memcpy(n, &i, sizeof(i));
}

TEST(replay_cache_expiry)
{
	struct replay_cache rc;
	uint8_t n[AUTH_REQ_NONCE_SIZE];
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	T_EQ(replay_cache_init(&rc, 16, NULL), 0);
	nonce_of(1, n);
	T_EQ(replay_cache_add(&rc, n, 1000, 1000, NULL), 0);
	T_EQ(replay_cache_add(&rc, n, 1000, 1000, &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "replayed") != NULL);
	/* Kept as long as ts 1000 could pass: up to now = 1030. */
	T_EQ(replay_cache_add(&rc, n, 1000, 1030, NULL), DSC_EAUTH);
	T_EQ(replay_cache_count(&rc), 1);
	/* At 1031 it is forgotten, and the timestamp is stale anyway. */
	T_EQ(replay_cache_add(&rc, n, 1000, 1031, &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "outside the replay window") != NULL);
	T_EQ(replay_cache_count(&rc), 0);
	/* Future-stamped nonces are kept until their own time passes. */
	nonce_of(2, n);
	T_EQ(replay_cache_add(&rc, n, 1061, 1031, NULL), 0);
	T_EQ(replay_cache_add(&rc, n, 1061, 1091, NULL), DSC_EAUTH);
	T_EQ(replay_cache_count(&rc), 1);
	T_EQ(replay_cache_add(&rc, n, 1062, 1092, NULL), 0);	/* other ts */
	/* A clock stepped back cannot revive old timestamps. */
	nonce_of(3, n);
	T_EQ(replay_cache_add(&rc, n, 1050, 1050, &err), DSC_EAUTH);
	T_ASSERT(strstr(err.msg, "outside") != NULL);
	/* A jump far ahead forgets everything. */
	T_EQ(replay_cache_add(&rc, n, 100000, 100000, NULL), 0);
	T_EQ(replay_cache_count(&rc), 1);
	replay_cache_release(&rc);
}

TEST(replay_cache_full_refuses)
{
	struct replay_cache rc;
	uint8_t n[AUTH_REQ_NONCE_SIZE];
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	T_EQ(replay_cache_init(&rc, 4, NULL), 0);
	for (uint32_t i = 0; i < 4; i++) {
		nonce_of(i, n);
		T_EQ(replay_cache_add(&rc, n, 500 + i, 500 + i, NULL), 0);
	}
	nonce_of(99, n);
	T_EQ(replay_cache_add(&rc, n, 503, 503, &err), DSC_EBUSY);
	T_ASSERT(strstr(err.msg, "full") != NULL);
	/* Still remembered: being full forgets nothing. */
	nonce_of(0, n);
	T_EQ(replay_cache_add(&rc, n, 500, 503, NULL), DSC_EAUTH);
	/* Once ts 500 expires, room again. */
	nonce_of(99, n);
	T_EQ(replay_cache_add(&rc, n, 531, 531, NULL), 0);
	T_EQ(replay_cache_count(&rc), 4);
	T_EQ(replay_cache_add(&rc, n, 531, 531, NULL), DSC_EAUTH);
	replay_cache_release(&rc);
	T_EQ(replay_cache_init(&rc, 0, &err), DSC_EINVAL);
	T_EQ(replay_cache_init(&rc, AUTH_REPLAY_MAX_CAP + 1, &err),
	    DSC_EINVAL);
}

/*
 * The cache against a naive model (a list scanned in full) over many
 * random operations: time moving forward in small steps and sometimes
 * back, timestamps around the clock, nonces drawn from a small set so
 * replays are common.
 */
struct model_entry {
	uint32_t nonce;
	int64_t ts;
};

/* @slow: the clock moves about once in @slow operations instead of every
 * other one, so many nonces are live at once. */
static void
replay_model_run(uint32_t cap, uint32_t nonces, int ops, unsigned slow)
{
	struct model_entry *model = calloc(cap, sizeof(*model));
	size_t nm = 0;
	struct replay_cache rc;
	int64_t now = 10000, hwm = 10000;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	T_ASSERT(model != NULL);
	T_EQ(replay_cache_init(&rc, cap, NULL), 0);
	for (int op = 0; op < ops; op++) {
		uint8_t n[AUTH_REQ_NONCE_SIZE];
		uint32_t id;
		int64_t ts;
		int want, got;
		bool seen = false;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (x % 50 == 0)
			now -= (int64_t)(x >> 8) % 40;
		else if (slow == 0 || (x >> 40) % slow == 0)
			now += (int64_t)(x >> 8) % 3;
		ts = now + (int64_t)((x >> 16) % 71) - 35;
		id = (uint32_t)((x >> 32) % nonces);
		nonce_of(id, n);
		/* The model. */
		if (now > hwm)
			hwm = now;
		for (size_t i = 0; i < nm;)
			if (model[i].ts < hwm - AUTH_REQ_SKEW)
				model[i] = model[--nm];
			else
				i++;
		for (size_t i = 0; i < nm; i++)
			seen |= model[i].nonce == id;
		if (ts < hwm - AUTH_REQ_SKEW || ts > now + AUTH_REQ_SKEW ||
		    seen)
			want = DSC_EAUTH;
		else if (nm == cap)
			want = DSC_EBUSY;
		else {
			want = 0;
			model[nm].nonce = id;
			model[nm].ts = ts;
			nm++;
		}
		got = replay_cache_add(&rc, n, ts, now, NULL);
		if (got != want)
			T_FAIL("op %d: now %lld ts %lld nonce %u: got %d, "
			       "model %d", op, (long long)now, (long long)ts,
			       id, got, want);
		T_EQ(replay_cache_count(&rc), nm);
	}
	replay_cache_release(&rc);
	free(model);
}

TEST(replay_cache_matches_model)
{
	setup();
	replay_model_run(64, 200, 50000, 0);
}

/* Above AUTH_REPLAY_INIT_CAP the cache grows while nonces are live. */
TEST(replay_cache_grows_and_matches_model)
{
	setup();
	replay_model_run(3 * AUTH_REPLAY_INIT_CAP, 1u << 20, 200000, 40);
	setup();
	replay_model_run(AUTH_REPLAY_INIT_CAP + 1, 1u << 20, 100000, 40);
}

TEST(replay_cache_growth_allocation_failure)
{
	struct replay_cache rc;
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t n[AUTH_REQ_NONCE_SIZE];

	setup();
	T_EQ(replay_cache_init(&rc, 4 * AUTH_REPLAY_INIT_CAP, NULL), 0);
	for (uint32_t i = 0; i < AUTH_REPLAY_INIT_CAP; i++) {
		nonce_of(i, n);
		T_EQ(replay_cache_add(&rc, n, 500, 500, NULL), 0);
	}
	nonce_of(AUTH_REPLAY_INIT_CAP, n);
	dsc_mem_fail_after(0);
	T_EQ(replay_cache_add(&rc, n, 500, 500, &err), DSC_ENOMEM);
	dsc_mem_fail_after(-1);
	T_EQ(replay_cache_count(&rc), AUTH_REPLAY_INIT_CAP);
	/* Nothing was lost: old nonces are still refused, new ones fit. */
	nonce_of(7, n);
	T_EQ(replay_cache_add(&rc, n, 500, 500, NULL), DSC_EAUTH);
	nonce_of(AUTH_REPLAY_INIT_CAP, n);
	T_EQ(replay_cache_add(&rc, n, 500, 500, NULL), 0);
	for (uint32_t i = 0; i <= AUTH_REPLAY_INIT_CAP; i++) {
		nonce_of(i, n);
		T_EQ(replay_cache_add(&rc, n, 500, 501, NULL), DSC_EAUTH);
	}
	replay_cache_release(&rc);
}

TEST(replay_cache_allocation_failure)
{
	struct replay_cache rc;
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	for (long n = 0; n < 2; n++) {
		dsc_mem_fail_after(n);
		T_EQ(replay_cache_init(&rc, 100, &err), DSC_ENOMEM);
		dsc_mem_fail_after(-1);
		T_ASSERT(rc.pool == NULL && rc.heads == NULL);
	}
	T_EQ(replay_cache_init(&rc, 100, NULL), 0);
	replay_cache_release(&rc);
	replay_cache_release(&rc);	/* twice is harmless */
}

T_MAIN()

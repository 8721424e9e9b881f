/*
 * fuzz_auth_frame.c - libFuzzer target for everything auth.c parses from
 * the network or a file, with a fixed test key so the fuzzer also reaches
 * the code behind the MAC.
 *
 * The first byte picks what the rest is:
 *	0  a client hello (46 bytes) then an auth tag, fed to a server session
 *	1  a frame, fed to an open session (peer_frame_size, then peer_open)
 *	2  a plaintext, sealed by one side and opened by the other (must
 *	   round-trip), then decoded as a raft message - the path behind the
 *	   MAC; then one byte of the sealed frame altered (must be refused)
 *	3  a key file's text (auth_key_parse)
 *	4  request headers and body, '\n'-separated: key id, timestamp,
 *	   nonce, MAC, method, path, body (auth_req_verify)
 *	5  a body, signed and verified (must pass once, then be a replay)
 * Forged handshakes, frames or requests being accepted would be a bug, and
 * abort, as does any sanitizer report.
 *
 * Build and run for 60 s from the top of the tree (line comments, since a
 * glob inside a block comment draws -Wcomment):
 */
// clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L -Ilibcommon tests/fuzz/fuzz_auth_frame.c libcommon/*.c -ljansson -lsodium -o /tmp/fuzz_auth_frame
// mkdir -p /tmp/corpus-auth && /tmp/fuzz_auth_frame -max_total_time=60 -max_len=4096 /tmp/corpus-auth
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "raft_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000

static const uint8_t test_key[AUTH_KEY_SIZE] = "dsc fuzz key, not a secret....";

/* An open pair of sessions, set up once. */
static struct peer_sess cli, srv;

static void
must(bool ok)
{
	if (!ok)
		abort();
}

static void
init_pair(void)
{
	static bool done;
	uint8_t hc[PEER_HELLO_SIZE], hs[PEER_HELLO_SIZE];
	uint8_t tc[PEER_AUTH_SIZE], ts[PEER_AUTH_SIZE];

	if (done)
		return;
	done = true;
	must(auth_init(NULL) == 0);
	must(peer_sess_init(&cli, test_key, PEER_CLIENT, 1, NULL) == 0);
	must(peer_sess_init(&srv, test_key, PEER_SERVER, 2, NULL) == 0);
	must(peer_hello_make(&cli, hc, NULL) == 0);
	must(peer_hello_make(&srv, hs, NULL) == 0);
	must(peer_hello_read(&srv, hc, sizeof(hc), NULL) == 0);
	must(peer_hello_read(&cli, hs, sizeof(hs), NULL) == 0);
	must(peer_auth_make(&cli, tc, NULL) == 0);
	must(peer_auth_make(&srv, ts, NULL) == 0);
	must(peer_auth_verify(&srv, tc, sizeof(tc), NULL) == 0);
	must(peer_auth_verify(&cli, ts, sizeof(ts), NULL) == 0);
}

static void
fuzz_handshake(const uint8_t *p, size_t n)
{
	struct peer_sess s;
	uint8_t hs[PEER_HELLO_SIZE], ts[PEER_AUTH_SIZE];
	size_t hn = n < PEER_HELLO_SIZE ? n : PEER_HELLO_SIZE;

	must(peer_sess_init(&s, test_key, PEER_SERVER, 2, NULL) == 0);
	must(peer_hello_make(&s, hs, NULL) == 0);
	if (peer_hello_read(&s, p, hn, NULL) == 0) {
		must(peer_auth_make(&s, ts, NULL) == 0);
		/* The tag covers our fresh nonce: it cannot be in the input. */
		must(peer_auth_verify(&s, p + hn, n - hn, NULL) == DSC_EAUTH);
	}
	must(s.state != PEER_OPEN);
	peer_sess_release(&s);
}

static void
fuzz_open(const uint8_t *p, size_t n)
{
	struct buf plain = BUF_INIT;
	size_t need;

	if (peer_frame_size(&srv, p, n, &need, NULL) == 0)
		must(need >= PEER_FRAME_HDR &&
		     need <= PEER_FRAME_HDR + PEER_MAX_FRAME);
	must(peer_open(&srv, p, n, &plain, NULL) == DSC_EAUTH);
	must(plain.len == 0);
	buf_release(&plain);
}

static void
fuzz_after_mac(const uint8_t *p, size_t n)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct buf frame = BUF_INIT, plain = BUF_INIT;
	struct raft_msg m;
	size_t at;

	must(peer_seal(&cli, p, n, &frame, NULL) == 0);
	/* One byte altered first: refused, and nothing moves. */
	at = n > 0 ? p[n - 1] % frame.len : 0;
	frame.p[at] ^= 0x80;
	must(peer_open(&srv, frame.p, frame.len, &plain, NULL) == DSC_EAUTH);
	frame.p[at] ^= 0x80;
	must(peer_open(&srv, frame.p, frame.len, &plain, NULL) == 0);
	must(plain.len == n && (n == 0 || memcmp(plain.p, p, n) == 0));
	(void)raft_msg_decode(plain.p, plain.len, &m, &st, NULL);
	raft_msg_storage_release(&st);
	buf_release(&frame);
	buf_release(&plain);
}

/* Splits off the next '\n'-terminated field into @out (NUL-terminated). */
static const char *
field(const uint8_t **p, size_t *n, char *out, size_t cap)
{
	const uint8_t *nl = memchr(*p, '\n', *n);
	size_t len;

	if (nl == NULL)
		return NULL;
	len = (size_t)(nl - *p);
	if (len >= cap || memchr(*p, '\0', len) != NULL)
		return NULL;
	memcpy(out, *p, len);
	out[len] = '\0';
	*n -= len + 1;
	*p = nl + 1;
	return out;
}

static void
fuzz_request(const uint8_t *p, size_t n)
{
	char id[128], ts[64], nonce[128], mac[160], method[64], path[256];
	struct auth_req_hdrs h;
	struct auth_rpc_key k;
	struct replay_cache rc;
	int r;

	must(auth_rpc_key_init(&k, test_key, NULL, NULL) == 0);
	must(replay_cache_init(&rc, 4, NULL) == 0);
	h.key_id = field(&p, &n, id, sizeof(id));
	h.timestamp = field(&p, &n, ts, sizeof(ts));
	h.nonce = field(&p, &n, nonce, sizeof(nonce));
	h.mac = field(&p, &n, mac, sizeof(mac));
	if (field(&p, &n, method, sizeof(method)) != NULL &&
	    field(&p, &n, path, sizeof(path)) != NULL) {
		r = auth_req_verify(&k, &h, method, path, p, n, NOW, &rc,
		    NULL);
		must(r == DSC_EAUTH);	/* forging a MAC is not expected */
	}
	replay_cache_release(&rc);
	auth_rpc_key_release(&k);
}

static void
fuzz_signed(const uint8_t *p, size_t n)
{
	struct auth_req_sig sig;
	struct auth_req_hdrs h;
	struct auth_rpc_key k;
	struct replay_cache rc;

	must(auth_rpc_key_init(&k, test_key, NULL, NULL) == 0);
	must(replay_cache_init(&rc, 4, NULL) == 0);
	must(auth_req_sign(&k, NOW, "POST", "/rpc", p, n, &sig, NULL) == 0);
	auth_req_sig_hdrs(&sig, &h);
	must(auth_req_verify(&k, &h, "POST", "/rpc", p, n, NOW + 29, &rc,
	    NULL) == 0);
	must(auth_req_verify(&k, &h, "POST", "/rpc", p, n, NOW, &rc, NULL) ==
	     DSC_EAUTH);
	replay_cache_release(&rc);
	auth_rpc_key_release(&k);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t key[AUTH_KEY_SIZE];

	init_pair();
	if (size == 0)
		return 0;
	switch (data[0] % 6) {
	case 0:
		fuzz_handshake(data + 1, size - 1);
		break;
	case 1:
		fuzz_open(data + 1, size - 1);
		break;
	case 2:
		fuzz_after_mac(data + 1, size - 1);
		break;
	case 3:
		(void)auth_key_parse((const char *)data + 1, size - 1, key,
		    NULL);
		break;
	case 4:
		fuzz_request(data + 1, size - 1);
		break;
	case 5:
		fuzz_signed(data + 1, size - 1);
		break;
	}
	return 0;
}

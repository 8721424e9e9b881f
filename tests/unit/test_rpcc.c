/*
 * test_rpcc.c - the JSON-RPC client against canned answers.
 *
 * No dsc-server is needed: a tiny HTTP responder runs in a thread on
 * 127.0.0.1 with a kernel-chosen port, records each request it reads and
 * answers from a script (an HTTP status and body, an answer held back for a
 * while, or no answer at all). The tests check what the client sends (the
 * envelope, the signature, ClientID/Seq) and what it makes of each answer:
 * error mapping, failover, keep-alive, timeouts and limits.
 */
#include "rpcc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "mem.h"
#include "t.h"

/* ---- a scripted HTTP responder ------------------------------------------- */

enum act {
	ACT_SEND,  /* answer at once */
	ACT_DELAY, /* answer after delay_ms */
	ACT_HANG,  /* read the request, never answer */
};

struct step {
	enum act act;
	int status;
	const char *body; /* "$ID" is replaced by the request's id */
	int delay_ms;
};

#define MAX_STEPS 8
#define MAX_CONNS 4
#define REQ_MAX   65536

struct request {
	char head[8192];
	char body[REQ_MAX];
	size_t body_len;
	char peer[INET_ADDRSTRLEN];
};

struct responder {
	int lfd;
	char addr[32];
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t mu;
	struct step script[MAX_STEPS];
	size_t n_steps;
	/* Guarded by mu. */
	unsigned accepts, requests;
	struct request last, prev;
};

/* A header's value in @head (case-insensitive name), or NULL. */
static const char *
header(const char *head, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	for (const char *p = strstr(head, "\r\n"); p != NULL;
	     p = strstr(p + 2, "\r\n")) {
		const char *l = p + 2, *e;

		if (strncasecmp(l, name, n) != 0 || l[n] != ':')
			continue;
		l += n + 1;
		while (*l == ' ')
			l++;
		e = strstr(l, "\r\n");
		if (e == NULL)
			e = l + strlen(l);
		snprintf(out, size, "%.*s", (int)(e - l), l);
		return out;
	}
	return NULL;
}

/* Reads one request from @fd into @r: 0, or -1 on EOF or error. */
static int
read_request(struct responder *s, int fd, struct request *r)
{
	char cl[32], *end = NULL;
	size_t have = 0, want;
	ssize_t n;

	while (end == NULL) {
		struct pollfd p = { fd, POLLIN, 0 };

		if (have + 1 >= sizeof(r->head))
			return -1;
		if (atomic_load(&s->stop))
			return -1;
		if (poll(&p, 1, 20) == 0)
			continue;
		if ((n = read(fd, r->head + have, 1)) <= 0)
			return -1;
		have += (size_t)n;
		r->head[have] = '\0';
		end = strstr(r->head, "\r\n\r\n");
	}
	want = header(r->head, "Content-Length", cl, sizeof(cl))
	    ? strtoul(cl, NULL, 10)
	    : 0;
	if (want >= sizeof(r->body))
		return -1;
	for (r->body_len = 0; r->body_len < want; r->body_len += (size_t)n)
		if ((n = read(fd, r->body + r->body_len, want - r->body_len)) <=
		    0)
			return -1;
	r->body[r->body_len] = '\0';
	return 0;
}

static void
answer(int fd, const struct step *st, const struct request *r)
{
	json_t *req = json_loadb(r->body, r->body_len, 0, NULL);
	char id[32] = "null", text[8192], out[8192 + 256];
	const char *p;
	size_t n = 0;
	int len;

	if (json_is_integer(json_object_get(req, "id")))
		snprintf(id, sizeof(id), "%lld",
		    (long long)json_integer_value(json_object_get(req, "id")));
	json_decref(req);
	for (p = st->body; *p != '\0' && n + 32 < sizeof(text); p++) {
		if (strncmp(p, "$ID", 3) == 0) {
			n += (size_t)snprintf(
			    text + n, sizeof(text) - n, "%s", id);
			p += 2;
		} else {
			text[n++] = *p;
		}
	}
	text[n] = '\0';
	len = snprintf(out, sizeof(out),
	    "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\n\r\n%s",
	    st->status, n, text);
	/* No SIGPIPE when the client gave up: its test says so. */
	if (send(fd, out, (size_t)len, MSG_NOSIGNAL) != len)
		return;
}

static void *
serve(void *arg)
{
	struct responder *s = arg;
	struct pollfd p[1 + MAX_CONNS];
	nfds_t n = 1;
	struct request *r = malloc(sizeof(*r));

	p[0] = (struct pollfd){ s->lfd, POLLIN, 0 };
	while (r != NULL && !atomic_load(&s->stop)) {
		if (poll(p, n, 20) <= 0)
			continue;
		if ((p[0].revents & POLLIN) && n < 1 + MAX_CONNS) {
			struct sockaddr_in sa;
			socklen_t sl = sizeof(sa);
			int fd = accept(s->lfd, (struct sockaddr *)&sa, &sl);

			if (fd >= 0) {
				p[n++] = (struct pollfd){ fd, POLLIN, 0 };
				pthread_mutex_lock(&s->mu);
				s->accepts++;
				inet_ntop(AF_INET, &sa.sin_addr, r->peer,
				    sizeof(r->peer));
				pthread_mutex_unlock(&s->mu);
			}
		}
		for (nfds_t i = 1; i < n; i++) {
			const struct step *st;
			size_t k;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (read_request(s, p[i].fd, r) != 0) {
				close(p[i].fd);
				p[i--] = p[--n];
				continue;
			}
			pthread_mutex_lock(&s->mu);
			k = s->requests++;
			s->prev = s->last;
			s->last = *r;
			pthread_mutex_unlock(&s->mu);
			/* The script's last step repeats. */
			st = &s->script[k < s->n_steps ? k : s->n_steps - 1];
			if (st->act == ACT_HANG)
				continue;
			if (st->act == ACT_DELAY) {
				struct timespec ts = { st->delay_ms / 1000,
					(st->delay_ms % 1000) * 1000000L };

				nanosleep(&ts, NULL);
			}
			answer(p[i].fd, st, r);
		}
	}
	for (nfds_t i = 1; i < n; i++)
		close(p[i].fd);
	free(r);
	return NULL;
}

/* A listening socket on 127.0.0.1 with a kernel-chosen port. */
static int
listen_any(char *addr, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	T_ASSERT(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	T_EQ(listen(fd, 16), 0);
	T_EQ(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(addr, size, "127.0.0.1:%u", ntohs(sa.sin_port));
	return fd;
}

static void
responder_start(struct responder *s, const struct step *script, size_t n)
{
	memset(s, 0, sizeof(*s));
	T_ASSERT(n >= 1 && n <= MAX_STEPS);
	memcpy(s->script, script, n * sizeof(*script));
	s->n_steps = n;
	s->lfd = listen_any(s->addr, sizeof(s->addr));
	pthread_mutex_init(&s->mu, NULL);
	T_EQ(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
responder_stop(struct responder *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->mu);
}

static unsigned
responder_requests(struct responder *s)
{
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->requests;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* An address where nothing listens: connections are refused. */
static void
closed_addr(char *addr, size_t size)
{
	close(listen_any(addr, size));
}

/* ---- fixture ------------------------------------------------------------- */

static uint8_t key[AUTH_KEY_SIZE];

static void
setup(void)
{
	dsc_mem_fail_after(-1);
	T_EQ(auth_init(NULL), 0);
	randombytes_buf(key, sizeof(key));
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct rpcc *
client(const char *a, const char *b, const struct rpcc_options *opt)
{
	const char *servers[2] = { a, b };
	struct dsc_err err = DSC_ERR_INIT;
	struct rpcc *c = rpcc_new(key, servers, b != NULL ? 2 : 1, opt, &err);

	if (c == NULL)
		T_FAIL("rpcc_new: %s", err.msg);
	return c;
}

#define OK_BODY                                                                \
	"{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{\"ok\":true,"             \
	"\"index\":42,\"known_leader\":false,\"last_contact_ms\":7}}"
#define ERR_BODY(code, name, msg)                                              \
	"{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":" code            \
	",\"message\":\"" msg "\",\"data\":{\"name\":\"" name "\"}}}"

/* Calls @method with {} on @c; returns the code and leaves @err set. */
static int
call(struct rpcc *c, const char *method, unsigned flags, struct dsc_err *err)
{
	json_t *res = NULL;
	int rc = rpcc_call(c, method, NULL, flags, &res, NULL, err);

	T_ASSERT((rc == 0) == (res != NULL));
	json_decref(res);
	return rc;
}

/* Checks @r's signature headers as a server would, with its own cache. */
static int
verify(const struct request *r)
{
	struct auth_rpc_key k;
	struct auth_req_hdrs h;
	struct replay_cache rc;
	char id[80], ts[40], nonce[80], mac[80];
	int v;

	T_EQ(auth_rpc_key_init(&k, key, NULL, NULL), 0);
	T_EQ(replay_cache_init(&rc, 16, NULL), 0);
	h.key_id = header(r->head, AUTH_HDR_KEY_ID, id, sizeof(id));
	h.timestamp = header(r->head, AUTH_HDR_TIMESTAMP, ts, sizeof(ts));
	h.nonce = header(r->head, AUTH_HDR_NONCE, nonce, sizeof(nonce));
	h.mac = header(r->head, AUTH_HDR_MAC, mac, sizeof(mac));
	v = auth_req_verify(&k, &h, "POST", "/rpc", r->body, r->body_len,
	    (int64_t)time(NULL), &rc, NULL);
	replay_cache_release(&rc);
	auth_rpc_key_release(&k);
	return v;
}

/* ---- building and signing ------------------------------------------------ */

TEST(build_makes_the_envelope)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf b = BUF_INIT;
	struct rpcc *c;
	json_t *p;

	setup();
	c = client("127.0.0.1:9", NULL, NULL);
	p = json_pack("{s:s}", "Service", "web");
	T_EQ(rpcc_build(c, "catalog.service", p, 0, &b, &err), 0);
	T_STREQ((char *)b.p,
	    "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":"
	    "\"catalog.service\",\"params\":{\"Service\":\"web\"}}");
	buf_clear(&b);
	T_EQ(rpcc_build(c, "status.leader", NULL, 0, &b, &err), 0);
	T_STREQ((char *)b.p,
	    "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":"
	    "\"status.leader\",\"params\":{}}");
	/* The caller's params are not changed by a write. */
	for (int seq = 1; seq <= 2; seq++) {
		char want[256];

		buf_clear(&b);
		T_EQ(rpcc_build(c, "kv.put", p, RPCC_WRITE, &b, &err), 0);
		snprintf(want, sizeof(want),
		    "{\"id\":%d,\"jsonrpc\":\"2.0\","
		    "\"method\":\"kv.put\",\"params\":{\"ClientID\":\"%s\","
		    "\"Seq\":%d,\"Service\":\"web\"}}",
		    seq + 2, rpcc_client_id(c), seq);
		T_STREQ((char *)b.p, want);
		T_EQ(json_object_size(p), 1);
	}
	json_decref(p);
	T_EQ(strlen(rpcc_client_id(c)), RPCC_CLIENT_ID_LEN);
	T_ASSERT(strncmp(rpcc_client_id(c), "rpcc-", 5) == 0);
	buf_release(&b);
	rpcc_free(c);
}

TEST(build_refuses_bad_input_and_uses_nothing)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf b = BUF_INIT;
	struct rpcc *c;
	json_t *p, *big;
	char *huge;

	setup();
	c = client("127.0.0.1:9", NULL, NULL);
	p = json_pack("{s:s,s:i}", "ClientID", "mine", "Seq", 3);
	T_EQ(rpcc_build(c, "kv.put", p, RPCC_WRITE, &b, &err), DSC_EINVAL);
	T_ASSERT(strstr(err.msg, "ClientID") != NULL);
	json_decref(p);
	p = json_array();
	T_EQ(rpcc_build(c, "kv.put", p, 0, &b, &err), DSC_EINVAL);
	json_decref(p);
	T_EQ(rpcc_build(c, "", NULL, 0, &b, &err), DSC_EINVAL);
	/* Over the server's body limit: refused before anything is sent. */
	huge = malloc(RPCC_MAX_REQUEST + 1);
	T_ASSERT(huge != NULL);
	memset(huge, 'a', RPCC_MAX_REQUEST);
	huge[RPCC_MAX_REQUEST] = '\0';
	big = json_pack("{s:s}", "Value", huge);
	free(huge);
	T_EQ(rpcc_build(c, "kv.put", big, RPCC_WRITE, &b, &err), DSC_ETOOBIG);
	json_decref(big);
	T_EQ(b.len, 0);
	/* Nothing above used an id or a Seq. */
	T_EQ(rpcc_build(c, "kv.put", NULL, RPCC_WRITE, &b, &err), 0);
	T_ASSERT(strstr((char *)b.p, "\"id\":1,") != NULL);
	T_ASSERT(strstr((char *)b.p, "\"Seq\":1}") != NULL);
	buf_release(&b);
	rpcc_free(c);
}

TEST(sign_verifies_and_covers_the_body)
{
	struct auth_rpc_key k;
	struct auth_req_sig sig;
	struct auth_req_hdrs h;
	struct replay_cache rc;
	struct buf b = BUF_INIT;
	struct rpcc *c;
	int64_t now = (int64_t)time(NULL);

	setup();
	c = client("127.0.0.1:9", NULL, NULL);
	T_EQ(rpcc_build(c, "status.peers", NULL, 0, &b, NULL), 0);
	T_EQ(rpcc_sign(c, now, b.p, b.len, &sig, NULL), 0);
	auth_req_sig_hdrs(&sig, &h);
	T_EQ(auth_rpc_key_init(&k, key, NULL, NULL), 0);
	T_EQ(replay_cache_init(&rc, 16, NULL), 0);
	b.p[3] ^= 1;
	T_EQ(
	    auth_req_verify(&k, &h, "POST", "/rpc", b.p, b.len, now, &rc, NULL),
	    DSC_EAUTH);
	b.p[3] ^= 1;
	T_EQ(
	    auth_req_verify(&k, &h, "POST", "/rpc", b.p, b.len, now, &rc, NULL),
	    0);
	T_EQ(
	    auth_req_verify(&k, &h, "POST", "/rpc", b.p, b.len, now, &rc, NULL),
	    DSC_EAUTH); /* replayed */
	replay_cache_release(&rc);
	auth_rpc_key_release(&k);
	buf_release(&b);
	rpcc_free(c);
}

TEST(new_refuses_bad_arguments)
{
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	const char *bad[] = { "", "127.0.0.1", "127.0.0.1:", ":80",
		"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:8x", "a/b:80",
		"a b:80", "127.0.0.1:123456" };
	const char *one = "127.0.0.1:8300";

	setup();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_ASSERT(rpcc_new(key, &bad[i], 1, NULL, &err) == NULL);
		T_EQ(err.code, DSC_EINVAL);
	}
	T_ASSERT(rpcc_new(key, &one, 0, NULL, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	o.bind_ip = "127.0.0.1:80";
	T_ASSERT(rpcc_new(key, &one, 1, &o, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	o.bind_ip = NULL;
	o.key_id = "no spaces";
	T_ASSERT(rpcc_new(key, &one, 1, &o, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
}

TEST(out_of_memory_is_clean)
{
	struct dsc_err err = DSC_ERR_INIT;
	const char *one = "127.0.0.1:8300";
	struct buf b = BUF_INIT;
	struct rpcc *c = NULL;
	long n;

	setup();
	for (n = 0; c == NULL; n++) {
		dsc_mem_fail_after(n);
		c = rpcc_new(key, &one, 1, NULL, &err);
		dsc_mem_fail_after(-1);
		if (c == NULL)
			T_EQ(err.code, DSC_ENOMEM);
	}
	for (n = 0;; n++) {
		dsc_mem_fail_after(n);
		if (rpcc_build(c, "kv.put", NULL, RPCC_WRITE, &b, &err) == 0)
			break;
		dsc_mem_fail_after(-1);
		T_EQ(err.code, DSC_ENOMEM);
		T_EQ(b.len, 0);
	}
	dsc_mem_fail_after(-1);
	T_ASSERT(strstr((char *)b.p, "\"Seq\":1}") != NULL);
	buf_release(&b);
	rpcc_free(c);
}

/* ---- calls against canned answers ---------------------------------------- */

TEST(call_sends_a_signed_post_and_reads_the_result)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct dsc_err err = DSC_ERR_INIT;
	struct rpcc_meta m;
	struct responder s;
	struct rpcc *c;
	json_t *res = NULL, *p;
	char v[64];

	setup();
	responder_start(&s, ok, 1);
	c = client(s.addr, NULL, NULL);
	p = json_pack("{s:s}", "Node", "n1");
	T_EQ(rpcc_call_write(c, "catalog.register", p, &res, &m, &err), 0);
	json_decref(p);
	T_ASSERT(json_is_true(json_object_get(res, "ok")));
	json_decref(res);
	T_EQ(m.index, 42);
	T_EQ(m.known_leader, false);
	T_EQ(m.last_contact_ms, 7);
	T_STREQ(m.server, s.addr);
	T_EQ(m.attempts, 1);
	T_EQ(m.seq, 1);

	pthread_mutex_lock(&s.mu);
	T_ASSERT(strncmp(s.last.head, "POST /rpc HTTP/1.1\r\n", 20) == 0);
	T_STREQ(header(s.last.head, "Content-Type", v, sizeof(v)),
	    "application/json");
	T_ASSERT(header(s.last.head, "Expect", v, sizeof(v)) == NULL);
	T_EQ(verify(&s.last), 0);
	T_ASSERT(strstr(s.last.body, "\"Seq\":1") != NULL);
	T_ASSERT(strstr(s.last.body, rpcc_client_id(c)) != NULL);
	pthread_mutex_unlock(&s.mu);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(calls_reuse_one_connection)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct responder s;
	struct rpcc *c;

	setup();
	responder_start(&s, ok, 1);
	c = client(s.addr, NULL, NULL);
	for (int i = 0; i < 5; i++)
		T_EQ(call(c, "status.leader", 0, NULL), 0);
	T_EQ(responder_requests(&s), 5);
	pthread_mutex_lock(&s.mu);
	T_EQ(s.accepts, 1);
	pthread_mutex_unlock(&s.mu);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(outgoing_connections_bind_the_given_address)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct responder s;
	struct rpcc *c;

	setup();
	responder_start(&s, ok, 1);
	o.bind_ip = "127.0.0.3";
	c = client(s.addr, NULL, &o);
	T_EQ(call(c, "status.leader", 0, NULL), 0);
	pthread_mutex_lock(&s.mu);
	T_STREQ(s.last.peer, "127.0.0.3");
	pthread_mutex_unlock(&s.mu);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(send_without_headers_sends_none)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct buf b = BUF_INIT;
	struct responder s;
	struct rpcc *c;
	json_t *res = NULL;
	char v[64];

	setup();
	responder_start(&s, ok, 1);
	c = client(s.addr, NULL, NULL);
	T_EQ(rpcc_build(c, "status.leader", NULL, 0, &b, NULL), 0);
	T_EQ(rpcc_send(c, 0, b.p, b.len, NULL, &res, NULL), 0);
	json_decref(res);
	pthread_mutex_lock(&s.mu);
	T_ASSERT(header(s.last.head, AUTH_HDR_MAC, v, sizeof(v)) == NULL);
	T_ASSERT(header(s.last.head, AUTH_HDR_NONCE, v, sizeof(v)) == NULL);
	T_EQ(verify(&s.last), DSC_EAUTH);
	pthread_mutex_unlock(&s.mu);
	T_EQ(rpcc_send(c, 1, b.p, b.len, NULL, &res, NULL), DSC_EINVAL);
	buf_release(&b);
	rpcc_free(c);
	responder_stop(&s);
}

/* One canned answer, one call: the code and message it maps to. */
static void
expect_error(int status, const char *body, int code, const char *needle)
{
	struct step st = { ACT_SEND, status, body, 0 };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct responder s;
	struct rpcc *c;

	responder_start(&s, &st, 1);
	o.retries = 0; /* a temporary answer would be asked again */
	c = client(s.addr, NULL, &o);
	T_EQ(call(c, "m", 0, &err), code);
	if (strstr(err.msg, needle) == NULL)
		T_FAIL("message '%s' lacks '%s'", err.msg, needle);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(server_errors_map_to_their_code)
{
	setup();
	expect_error(200,
	    ERR_BODY("-32004", "DSC_ENOTFOUND", "service 'web' not found"),
	    DSC_ENOTFOUND, "service 'web' not found");
	/* The name wins over the number. */
	expect_error(200, ERR_BODY("-32001", "DSC_EEXIST", "taken"), DSC_EEXIST,
	    "taken");
	/* Without data: the number, -32000 - code. */
	expect_error(200,
	    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":"
	    "-32002,\"message\":\"bad port\"}}",
	    DSC_EINVAL, "bad port");
	expect_error(200,
	    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":"
	    "-32601,\"message\":\"no method 'm'\"}}",
	    DSC_EINVAL, "no method");
	expect_error(200,
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
	    "-32700,\"message\":\"parse error\"}}",
	    DSC_EINVAL, "parse error");
	/* Unknown name and a number outside the table. */
	expect_error(
	    200, ERR_BODY("-32999", "DSC_EWHAT", "odd"), DSC_EPROTO, "odd");
	/* A message-less error gets the table's. */
	expect_error(500,
	    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":"
	    "-32014}}",
	    DSC_EAUTH, "authentication failed");
	T_EQ(dsc_exit_class(DSC_ENOTFOUND), DSC_EXIT_NO);
}

TEST(http_401_is_an_authentication_failure)
{
	setup();
	/* -32001 is also -32000 - DSC_ENOMEM: the status decides. */
	expect_error(401,
	    "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
	    "\"code\":-32001,\"message\":\"bad mac\"}}",
	    DSC_EAUTH, "bad mac");
	expect_error(401, "", DSC_EAUTH, "refused");
}

TEST(bad_answers_are_protocol_errors)
{
	setup();
	expect_error(200, "not json", DSC_EPROTO, "invalid JSON");
	expect_error(200,
	    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"result\":{},"
	    "\"result\":{}}",
	    DSC_EPROTO, "duplicate");
	expect_error(200, "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}",
	    DSC_EPROTO, "no JSON-RPC 2.0 answer");
	expect_error(200, "{\"id\":$ID,\"result\":{}}", DSC_EPROTO,
	    "no JSON-RPC 2.0 answer");
	expect_error(200, "[1]", DSC_EPROTO, "no JSON-RPC 2.0 answer");
	expect_error(404, "<html>", DSC_EPROTO, "HTTP 404");
	expect_error(503, "", DSC_EBUSY, "unavailable");
}

TEST(answers_over_the_cap_are_refused)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct responder s;
	struct rpcc *c;

	setup();
	responder_start(&s, ok, 1);
	o.max_response = 64;
	c = client(s.addr, NULL, &o);
	T_EQ(call(c, "m", 0, &err), DSC_ETOOBIG);
	T_ASSERT(strstr(err.msg, "over 64 bytes") != NULL);
	rpcc_free(c);
	o.max_response = sizeof(OK_BODY) + 8;
	c = client(s.addr, NULL, &o);
	T_EQ(call(c, "m", 0, &err), 0);
	rpcc_free(c);
	responder_stop(&s);
}

/* ---- failure and failover ------------------------------------------------ */

TEST(unreachable_servers_fail_fast)
{
	struct dsc_err err = DSC_ERR_INIT;
	char a[32], b[32], want[96];
	struct rpcc *c;
	int64_t t0;

	setup();
	closed_addr(a, sizeof(a));
	closed_addr(b, sizeof(b));
	c = client(a, b, NULL);
	t0 = mono_ms();
	T_EQ(call(c, "status.leader", 0, &err), DSC_EUNREACH);
	T_ASSERT(mono_ms() - t0 < 1000);
	snprintf(want, sizeof(want),
	    "unable to reach server '%s': connection refused", b);
	T_STREQ(err.msg, want);
	T_EQ(dsc_exit_class(err.code), DSC_EXIT_TEMP);
	rpcc_free(c);
}

TEST(a_silent_server_times_out_in_time)
{
	static const struct step hang[] = { { ACT_HANG, 0, "", 0 } };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct responder s;
	struct rpcc *c;
	int64_t t0, dt;

	setup();
	responder_start(&s, hang, 1);
	o.timeout_ms = 600;
	c = client(s.addr, NULL, &o);
	t0 = mono_ms();
	T_EQ(call(c, "status.leader", 0, &err), DSC_ETIMEDOUT);
	dt = mono_ms() - t0;
	if (dt < 550 || dt > 600 + 1500)
		T_FAIL(
		    "timed out after %lld ms, want about 600", (long long)dt);
	T_ASSERT(strstr(err.msg, s.addr) != NULL);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(a_blocking_query_extends_the_deadline)
{
	static const struct step slow[] = { { ACT_DELAY, 200, OK_BODY, 700 } };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct responder s;
	struct rpcc *c;
	json_t *p, *res = NULL;

	setup();
	responder_start(&s, slow, 1);
	o.timeout_ms = 300;
	c = client(s.addr, NULL, &o);
	p = json_pack("{s:i,s:i}", "index", 5, "wait", 500);
	T_EQ(rpcc_call(c, "catalog.services", p, 0, &res, NULL, NULL), 0);
	json_decref(res);
	json_decref(p);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(an_index_alone_blocks_for_the_servers_default_wait)
{
	static const struct step slow[] = { { ACT_DELAY, 200, OK_BODY, 700 } };
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct responder s;
	struct rpcc *c;
	json_t *p, *res = NULL;

	setup();
	responder_start(&s, slow, 1);
	o.timeout_ms = 300;
	c = client(s.addr, NULL, &o);
	p = json_pack("{s:i}", "index", 5);
	T_EQ(rpcc_call(c, "catalog.services", p, 0, &res, NULL, NULL), 0);
	json_decref(res);
	json_decref(p);
	/* Without index, no blocking: the deadline holds. */
	T_EQ(rpcc_call(c, "catalog.services", NULL, 0, &res, NULL, NULL),
	    DSC_ETIMEDOUT);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(an_error_answer_fills_meta_from_its_data)
{
	static const struct step nf[] = { { ACT_SEND, 200,
	    "{\"jsonrpc\":\"2.0\",\"id\":$ID,\"error\":{\"code\":-32004,"
	    "\"message\":\"key 'k' not found\",\"data\":{\"name\":"
	    "\"DSC_ENOTFOUND\",\"exit\":1,\"index\":17,\"known_leader\":"
	    "true,\"last_contact_ms\":3}}}",
	    0 } };
	struct dsc_err err = DSC_ERR_INIT;
	struct rpcc_meta m;
	struct responder s;
	struct rpcc *c;
	json_t *res = NULL;
	char dead[32];

	setup();
	responder_start(&s, nf, 1);
	c = client(s.addr, NULL, NULL);
	T_EQ(rpcc_call(c, "kv.get", NULL, 0, &res, &m, &err), DSC_ENOTFOUND);
	T_ASSERT(res == NULL);
	T_STREQ(err.msg, "key 'k' not found");
	T_EQ(m.index, 17);
	T_EQ(m.known_leader, true);
	T_EQ(m.last_contact_ms, 3);
	T_STREQ(m.server, s.addr);
	rpcc_free(c);
	responder_stop(&s);

	/* No answer, no meta. */
	closed_addr(dead, sizeof(dead));
	c = client(dead, NULL, NULL);
	memset(&m, 0x5a, sizeof(m));
	T_EQ(rpcc_call(c, "kv.get", NULL, 0, &res, &m, &err), DSC_EUNREACH);
	T_EQ(m.index, 0x5a5a5a5a5a5a5a5aull);
	rpcc_free(c);
}

TEST(failover_past_an_unreachable_server_then_stay)
{
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct rpcc_meta m;
	struct responder s;
	struct rpcc *c;
	json_t *res = NULL;
	char dead[32];

	setup();
	responder_start(&s, ok, 1);
	closed_addr(dead, sizeof(dead));
	c = client(dead, s.addr, NULL);
	T_EQ(rpcc_call(c, "status.leader", NULL, 0, &res, &m, NULL), 0);
	json_decref(res);
	T_STREQ(m.server, s.addr);
	T_EQ(m.attempts, 2);
	/* The server that answered is asked first next time. */
	T_EQ(rpcc_call(c, "status.leader", NULL, 0, &res, &m, NULL), 0);
	json_decref(res);
	T_EQ(m.attempts, 1);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(failover_on_no_leader_keeps_client_id_and_seq)
{
	static const struct step noleader[] = { { ACT_SEND, 200,
	    ERR_BODY("-32007", "DSC_ENOLEADER", "no leader"), 0 } };
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct responder a, b;
	struct rpcc_meta m;
	struct rpcc *c;
	json_t *res = NULL, *ja, *jb;
	char na[80], nb[80];

	setup();
	responder_start(&a, noleader, 1);
	responder_start(&b, ok, 1);
	c = client(a.addr, b.addr, NULL);
	T_EQ(rpcc_call(c, "kv.put", NULL, RPCC_WRITE, &res, &m, NULL), 0);
	json_decref(res);
	T_STREQ(m.server, b.addr);
	T_EQ(m.seq, 1);
	/* The same command on both, each signed afresh. */
	ja = json_loads(a.last.body, 0, NULL);
	jb = json_loads(b.last.body, 0, NULL);
	T_ASSERT(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
	T_ASSERT(header(a.last.head, AUTH_HDR_NONCE, na, sizeof(na)) != NULL);
	T_ASSERT(header(b.last.head, AUTH_HDR_NONCE, nb, sizeof(nb)) != NULL);
	T_ASSERT(strcmp(na, nb) != 0);
	T_EQ(verify(&a.last), 0);
	T_EQ(verify(&b.last), 0);
	/* The next write takes the next Seq. */
	T_EQ(rpcc_call(c, "kv.put", NULL, RPCC_WRITE, &res, &m, NULL), 0);
	json_decref(res);
	T_EQ(m.seq, 2);
	T_ASSERT(strstr(b.last.body, "\"Seq\":2") != NULL);
	rpcc_free(c);
	responder_stop(&a);
	responder_stop(&b);
}

TEST(no_leader_anywhere_retries_until_the_deadline)
{
	static const struct step noleader[] = { { ACT_SEND, 200,
	    ERR_BODY("-32007", "DSC_ENOLEADER", "no leader yet"), 0 } };
	static const struct step later[] = {
		{ ACT_SEND, 200,
		    ERR_BODY("-32007", "DSC_ENOLEADER", "no leader yet"), 0 },
		{ ACT_SEND, 200,
		    ERR_BODY("-32007", "DSC_ENOLEADER", "no leader yet"), 0 },
		{ ACT_SEND, 200, OK_BODY, 0 },
	};
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct responder s;
	struct rpcc *c;
	int64_t t0, dt;

	setup();
	responder_start(&s, noleader, 1);
	o.timeout_ms = 700;
	c = client(s.addr, NULL, &o);
	t0 = mono_ms();
	T_EQ(call(c, "kv.put", RPCC_WRITE, &err), DSC_ENOLEADER);
	dt = mono_ms() - t0;
	T_STREQ(err.msg, "no leader yet");
	T_ASSERT(responder_requests(&s) >= 3);
	if (dt < 650 || dt > 700 + 1500)
		T_FAIL("gave up after %lld ms, want about 700", (long long)dt);
	rpcc_free(c);
	responder_stop(&s);

	/* An election that ends in time is waited for. */
	responder_start(&s, later, 3);
	c = client(s.addr, NULL, NULL);
	T_EQ(call(c, "kv.put", RPCC_WRITE, &err), 0);
	T_EQ(responder_requests(&s), 3);
	rpcc_free(c);
	responder_stop(&s);
}

TEST(permanent_errors_are_not_retried)
{
	static const struct step einval[] = { { ACT_SEND, 200,
	    ERR_BODY("-32002", "DSC_EINVAL", "missing Node"), 0 } };
	struct dsc_err err = DSC_ERR_INIT;
	struct responder a, b;
	struct rpcc *c;

	setup();
	responder_start(&a, einval, 1);
	responder_start(&b, einval, 1);
	c = client(a.addr, b.addr, NULL);
	T_EQ(call(c, "catalog.register", RPCC_WRITE, &err), DSC_EINVAL);
	T_EQ(responder_requests(&a), 1);
	T_EQ(responder_requests(&b), 0);
	rpcc_free(c);
	responder_stop(&a);
	responder_stop(&b);
}

TEST(retries_zero_means_one_attempt)
{
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	static const struct step ok[] = { { ACT_SEND, 200, OK_BODY, 0 } };
	struct responder s;
	struct rpcc *c;
	char dead[32];

	setup();
	responder_start(&s, ok, 1);
	closed_addr(dead, sizeof(dead));
	o.retries = 0;
	c = client(dead, s.addr, &o);
	T_EQ(call(c, "status.leader", 0, &err), DSC_EUNREACH);
	T_EQ(responder_requests(&s), 0);
	rpcc_free(c);
	responder_stop(&s);
}

T_MAIN()

/*
 * test_rpca.c - the asynchronous JSON-RPC client against responders on the
 * same loop.
 *
 * Each responder is libcommon's own httpd on 127.0.0.1 with a
 * kernel-chosen port; its handler verifies the request's signature as a
 * server does, records the params, and answers from a mode: at once, with
 * an error, or not until the test says so (a parked blocking query). Being
 * on the client's loop, the tests are single-threaded and see exactly what
 * the client did: connections opened, requests parked, clients gone.
 */
#include "rpca.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "auth.h"
#include "err.h"
#include "httpd.h"
#include "mem.h"
#include "rpcc_internal.h"
#include "t.h"

#define N_RESP   2
#define PARK_MAX 1100

enum mode {
	MODE_OK,       /* {"index":N,...} at once */
	MODE_NOLEADER, /* DSC_ENOLEADER, retry */
	MODE_NOTFOUND, /* DSC_ENOTFOUND with data.index */
	MODE_PARK,     /* hold until released */
};

struct resp {
	struct httpd *h;
	struct event *lev;
	int lfd, port;
	char addr[32];
	enum mode mode;
	unsigned requests, auth_bad;
	char last_peer[HTTPD_PEER_MAX];
	json_t *last_params;
	json_t *writes; /* {"<ClientID>": [Seq, ...]} in arrival order */
	struct httpd_req *parked[PARK_MAX];
	json_t *parked_id[PARK_MAX];
	size_t n_parked;
};

static struct {
	struct event_base *base;
	uint8_t key[AUTH_KEY_SIZE];
	struct auth_rpc_key rkey;
	struct replay_cache replay;
	struct resp r[N_RESP];
	struct rpca *c;
} fx;

/* One call's outcome. */
struct outcome {
	int done, rc;
	uint64_t index, seq;
	unsigned attempts;
	char server[64];
	char msg[DSC_ERRMSG_MAX];
	json_t *result;
};

static void
done_cb(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg)
{
	struct outcome *o = arg;

	o->done++;
	o->rc = rc;
	o->index = meta->index;
	o->seq = meta->seq;
	o->attempts = meta->attempts;
	snprintf(o->server, sizeof(o->server), "%s",
	    meta->server != NULL ? meta->server : "");
	snprintf(o->msg, sizeof(o->msg), "%s", rc != 0 ? err->msg : "");
	json_decref(o->result);
	o->result = result != NULL ? json_incref(result) : NULL;
}

static long
now_ms(void)
{
	return (long)rpcc_now_ms();
}

/* One turn of the loop, waiting at most 10 ms for something to happen. */
static void
pump_once(void)
{
	struct timeval tv = { 0, 10000 };

	event_base_loopexit(fx.base, &tv);
	event_base_loop(fx.base, EVLOOP_ONCE);
}

/* Turns the loop until @cond holds or @ms pass. */
#define PUMP_UNTIL(cond, ms)                                                   \
	do {                                                                   \
		long t_end_ = now_ms() + (ms);                                 \
		while (!(cond) && now_ms() < t_end_)                           \
			pump_once();                                           \
	} while (0)

/* ---- the responder ------------------------------------------------------- */

static void
send_json(struct httpd_req *req, json_t *env)
{
	char *text = json_dumps(env, JSON_COMPACT);

	httpd_respond(
	    req, 200, "application/json", text, strlen(text), NULL, 0);
	free(text);
	json_decref(env);
}

static void
answer(struct resp *r, struct httpd_req *req, json_t *id, enum mode m)
{
	switch (m) {
	case MODE_OK:
	case MODE_PARK:
		send_json(req,
		    json_pack("{s:s,s:O,s:{s:I,s:b,s:s}}", "jsonrpc", "2.0",
		        "id", id, "result", "index", (json_int_t)42,
		        "known_leader", 1, "who", r->addr));
		break;
	case MODE_NOLEADER:
		send_json(req,
		    json_pack("{s:s,s:O,s:{s:i,s:s,s:{s:s,s:i}}}", "jsonrpc",
		        "2.0", "id", id, "error", "code",
		        -32000 - DSC_ENOLEADER, "message", "no leader", "data",
		        "name", "DSC_ENOLEADER", "exit", 3));
		break;
	case MODE_NOTFOUND:
		send_json(req,
		    json_pack("{s:s,s:O,s:{s:i,s:s,s:{s:s,s:i,s:I}}}",
		        "jsonrpc", "2.0", "id", id, "error", "code",
		        -32000 - DSC_ENOTFOUND, "message", "no such key",
		        "data", "name", "DSC_ENOTFOUND", "exit", 1, "index",
		        (json_int_t)7));
		break;
	}
}

static void
parked_gone(struct httpd_req *req, void *arg)
{
	struct resp *r = arg;

	for (size_t i = 0; i < r->n_parked; i++)
		if (r->parked[i] == req) {
			json_decref(r->parked_id[i]);
			r->parked[i] = r->parked[--r->n_parked];
			r->parked_id[i] = r->parked_id[r->n_parked];
			break;
		}
	httpd_req_drop(req);
}

static void
note_write(struct resp *r, json_t *params)
{
	const char *id = json_string_value(json_object_get(params, "ClientID"));
	json_t *seqs;

	if (id == NULL)
		return;
	if (r->writes == NULL)
		r->writes = json_object();
	if ((seqs = json_object_get(r->writes, id)) == NULL) {
		seqs = json_array();
		json_object_set_new(r->writes, id, seqs);
	}
	json_array_append(seqs, json_object_get(params, "Seq"));
}

static void
handler(struct httpd_req *req, void *arg)
{
	struct resp *r = arg;
	struct auth_req_hdrs h;
	const uint8_t *body;
	json_t *root;
	size_t len;

	r->requests++;
	snprintf(r->last_peer, sizeof(r->last_peer), "%s", httpd_req_peer(req));
	h.key_id = httpd_req_header(req, AUTH_HDR_KEY_ID);
	h.timestamp = httpd_req_header(req, AUTH_HDR_TIMESTAMP);
	h.nonce = httpd_req_header(req, AUTH_HDR_NONCE);
	h.mac = httpd_req_header(req, AUTH_HDR_MAC);
	body = httpd_req_body(req, &len);
	if (auth_req_verify(&fx.rkey, &h, httpd_req_method(req),
	        httpd_req_target(req), body, len, (int64_t)time(NULL),
	        &fx.replay, NULL) != 0) {
		r->auth_bad++;
		httpd_respond(req, 401, "text/plain", "no\n", 3, NULL, 0);
		return;
	}
	root = json_loadb((const char *)body, len, 0, NULL);
	json_decref(r->last_params);
	r->last_params = json_incref(json_object_get(root, "params"));
	note_write(r, r->last_params);
	if (r->mode == MODE_PARK && r->n_parked < PARK_MAX) {
		r->parked[r->n_parked] = req;
		r->parked_id[r->n_parked++] =
		    json_incref(json_object_get(root, "id"));
		httpd_on_close(req, parked_gone, r);
	} else {
		answer(r, req, json_object_get(root, "id"), r->mode);
	}
	json_decref(root);
}

static void
release_parked(struct resp *r)
{
	while (r->n_parked > 0) {
		r->n_parked--;
		httpd_on_close(r->parked[r->n_parked], NULL, NULL);
		answer(r, r->parked[r->n_parked], r->parked_id[r->n_parked],
		    MODE_OK);
		json_decref(r->parked_id[r->n_parked]);
	}
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct resp *r = arg;
	int fd;

	(void)what;
	while ((fd = accept(lfd, NULL, NULL)) >= 0) {
		evutil_make_socket_nonblocking(fd);
		httpd_adopt(r->h, fd, NULL, 0);
	}
}

static void
resp_open(struct resp *r)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);

	memset(r, 0, sizeof(*r));
	T_ASSERT((r->h = httpd_new(fx.base, NULL, handler, r, NULL)) != NULL);
	T_ASSERT((r->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(r->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	T_EQ(listen(r->lfd, 1024), 0);
	T_EQ(getsockname(r->lfd, (struct sockaddr *)&sin, &len), 0);
	r->port = ntohs(sin.sin_port);
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%d", r->port);
	evutil_make_socket_nonblocking(r->lfd);
	r->lev = event_new(fx.base, r->lfd, EV_READ | EV_PERSIST, accept_cb, r);
	T_ASSERT(r->lev != NULL);
	event_add(r->lev, NULL);
}

/* Stops listening: the port refuses connections from now on. */
static void
resp_close_port(struct resp *r)
{
	if (r->lev != NULL)
		event_free(r->lev);
	r->lev = NULL;
	if (r->lfd >= 0)
		close(r->lfd);
	r->lfd = -1;
}

static void
resp_free(struct resp *r)
{
	resp_close_port(r);
	if (r->h != NULL) {
		httpd_free(r->h);
		/* Whatever close callbacks did not release. */
		release_parked(r);
	}
	json_decref(r->last_params);
	json_decref(r->writes);
	memset(r, 0, sizeof(*r));
	r->lfd = -1;
}

static struct httpd_stats
resp_stats(const struct resp *r)
{
	struct httpd_stats st;

	httpd_stats(r->h, &st);
	return st;
}

/* ---- fixture ---------------------------------------------------------------
 */

static void
teardown(void)
{
	rpca_free(fx.c);
	fx.c = NULL;
	for (int i = 0; i < N_RESP; i++)
		if (fx.r[i].h != NULL)
			resp_free(&fx.r[i]);
	if (fx.base != NULL) {
		event_base_free(fx.base);
		replay_cache_release(&fx.replay);
		auth_rpc_key_release(&fx.rkey);
	}
	fx.base = NULL;
}

/* Two responders; a client for @servers of them (by number) with @opt. */
static void
setup(const int *servers, size_t n, const struct rpcc_options *opt)
{
	const char *addrs[N_RESP];
	struct dsc_err err = DSC_ERR_INIT;

	teardown();
	T_ASSERT((fx.base = event_base_new()) != NULL);
	randombytes_buf(fx.key, sizeof(fx.key));
	T_EQ(auth_rpc_key_init(&fx.rkey, fx.key, NULL, NULL), 0);
	T_EQ(replay_cache_init(&fx.replay, 1u << 16, NULL), 0);
	for (int i = 0; i < N_RESP; i++)
		resp_open(&fx.r[i]);
	for (size_t i = 0; i < n; i++)
		addrs[i] = fx.r[servers[i]].addr;
	fx.c = rpca_new(fx.base, fx.key, addrs, n, opt, &err);
	if (fx.c == NULL)
		T_FAIL("rpca_new: %s", err.msg);
}

static struct rpca_call *
start(const char *method, const char *params, unsigned flags, struct outcome *o)
{
	struct dsc_err err = DSC_ERR_INIT;
	json_t *p = params != NULL ? json_loads(params, 0, NULL) : NULL;
	struct rpca_call *call;

	call = rpca_call(fx.c, method, p, flags, done_cb, o, &err);
	json_decref(p);
	if (call == NULL)
		T_FAIL("rpca_call: %s", err.msg);
	return call;
}

static void
outcome_clear(struct outcome *o)
{
	json_decref(o->result);
	memset(o, 0, sizeof(*o));
}

/* ---- tests ------------------------------------------------------------------
 */

TEST(call_answers_from_the_loop_only)
{
	static const int one[] = { 0 };
	struct outcome o = { 0 };

	setup(one, 1, NULL);
	start("kv.get", "{\"Key\":\"a\"}", 0, &o);
	T_EQ(o.done, 0); /* never from inside rpca_call */
	T_EQ(rpca_pending(fx.c), 1);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.done, 1);
	T_EQ(o.rc, 0);
	T_EQ(o.index, 42);
	T_EQ(o.attempts, 1);
	T_STREQ(o.server, fx.r[0].addr);
	T_STREQ(
	    json_string_value(json_object_get(o.result, "who")), fx.r[0].addr);
	T_STREQ(json_string_value(json_object_get(fx.r[0].last_params, "Key")),
	    "a");
	T_EQ(fx.r[0].auth_bad, 0);
	T_EQ(rpca_pending(fx.c), 0);
	outcome_clear(&o);
	teardown();
}

TEST(connections_are_kept_alive_across_calls)
{
	static const int one[] = { 0 };
	struct outcome o = { 0 };

	setup(one, 1, NULL);
	for (int i = 0; i < 20; i++) {
		o.done = 0;
		start("status.leader", NULL, 0, &o);
		PUMP_UNTIL(o.done, 5000);
		T_EQ(o.rc, 0);
	}
	T_EQ(fx.r[0].requests, 20);
	T_EQ(resp_stats(&fx.r[0]).conns_accepted, 1);
	outcome_clear(&o);
	teardown();
}

TEST(server_error_maps_to_its_code_with_meta)
{
	static const int one[] = { 0 };
	struct outcome o = { 0 };

	setup(one, 1, NULL);
	fx.r[0].mode = MODE_NOTFOUND;
	start("kv.get", "{\"Key\":\"none\"}", 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, DSC_ENOTFOUND);
	T_EQ(o.index, 7);
	T_STREQ(o.msg, "no such key");
	T_ASSERT(o.result == NULL);
	outcome_clear(&o);
	teardown();
}

TEST(refused_connection_fails_over_to_the_next_server)
{
	static const int both[] = { 0, 1 };
	struct outcome o = { 0 };

	setup(both, 2, NULL);
	resp_close_port(&fx.r[0]);
	start("kv.get", "{\"Key\":\"a\"}", 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, 0);
	T_EQ(o.attempts, 2);
	T_STREQ(o.server, fx.r[1].addr);
	/* The server that answered is tried first next time. */
	T_STREQ(rpca_current_server(fx.c), fx.r[1].addr);
	outcome_clear(&o);
	teardown();
}

TEST(no_reachable_server_is_unreach_at_once)
{
	static const int both[] = { 0, 1 };
	struct outcome o = { 0 };
	long t0;

	setup(both, 2, NULL);
	resp_close_port(&fx.r[0]);
	resp_close_port(&fx.r[1]);
	t0 = now_ms();
	start("kv.get", NULL, 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, DSC_EUNREACH);
	T_EQ(o.attempts, 2);
	T_ASSERT(strstr(o.msg, "unable to reach server") != NULL);
	T_ASSERT(now_ms() - t0 < 2000);
	outcome_clear(&o);
	teardown();
}

TEST(write_retried_after_no_leader_keeps_client_id_and_seq)
{
	static const int both[] = { 0, 1 };
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct outcome o = { 0 };
	json_t *p0, *p1;

	opt.timeout_ms = 3000;
	setup(both, 2, &opt);
	fx.r[0].mode = MODE_NOLEADER;
	fx.r[1].mode = MODE_NOLEADER;
	start("kv.put", "{\"Key\":\"k\"}", RPCC_WRITE, &o);
	/* Two full passes, then a leader appears on the second server. */
	PUMP_UNTIL(fx.r[1].requests >= 2, 5000);
	T_EQ(o.done, 0);
	fx.r[1].mode = MODE_OK;
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, 0);
	T_ASSERT(o.attempts >= 4);
	p0 = fx.r[0].last_params;
	p1 = fx.r[1].last_params;
	T_ASSERT(json_string_value(json_object_get(p0, "ClientID")) != NULL);
	T_STREQ(json_string_value(json_object_get(p0, "ClientID")),
	    json_string_value(json_object_get(p1, "ClientID")));
	T_EQ(json_integer_value(json_object_get(p0, "Seq")), 1);
	T_EQ(json_integer_value(json_object_get(p1, "Seq")), 1);
	/* Every attempt was signed afresh: no replay refused. */
	T_EQ(fx.r[0].auth_bad + fx.r[1].auth_bad, 0);
	outcome_clear(&o);
	teardown();
}

/*
 * Writes in flight at once each write as a ClientID of their own, so their
 * Seqs cannot reach a server out of order (the catalog would refuse the
 * lower as stale); a writer identity is reused, with the next Seq, once
 * its write ended.
 */
TEST(concurrent_writes_each_have_a_writer_of_their_own)
{
	static const int one[] = { 0 };
	enum { N = 20 };
	struct outcome o[N];
	const char *id;
	json_t *seqs;

	setup(one, 1, NULL);
	fx.r[0].mode = MODE_PARK;
	for (int round = 1; round <= 2; round++) {
		memset(o, 0, sizeof(o));
		for (int i = 0; i < N; i++)
			start("catalog.register", "{\"Node\":\"n\"}",
			    RPCC_WRITE, &o[i]);
		PUMP_UNTIL(fx.r[0].n_parked == N, 10000);
		T_EQ(json_object_size(fx.r[0].writes), N);
		json_object_foreach(fx.r[0].writes, id, seqs) {
			T_EQ(json_array_size(seqs), round);
			T_EQ(json_integer_value(json_array_get(seqs, round - 1)),
			    round);
		}
		release_parked(&fx.r[0]);
		PUMP_UNTIL(rpca_pending(fx.c) == 0, 10000);
		for (int i = 0; i < N; i++) {
			T_EQ(o[i].rc, 0);
			T_EQ(o[i].seq, (uint64_t)round);
			outcome_clear(&o[i]);
		}
	}
	teardown();
}

TEST(unanswered_call_times_out)
{
	static const int one[] = { 0 };
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct outcome o = { 0 };

	opt.timeout_ms = 300;
	setup(one, 1, &opt);
	fx.r[0].mode = MODE_PARK;
	start("kv.get", NULL, 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, DSC_ETIMEDOUT);
	outcome_clear(&o);
	teardown();
}

TEST(blocking_query_wait_extends_the_deadline)
{
	static const int one[] = { 0 };
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct outcome o = { 0 };
	long t0;

	opt.timeout_ms = 200;
	setup(one, 1, &opt);
	fx.r[0].mode = MODE_PARK;
	start("kv.get", "{\"Key\":\"a\",\"index\":5,\"wait\":1000}", 0, &o);
	t0 = now_ms();
	PUMP_UNTIL(now_ms() - t0 >= 800, 2000);
	T_EQ(o.done, 0);
	T_EQ(fx.r[0].n_parked, 1);
	release_parked(&fx.r[0]);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, 0);
	outcome_clear(&o);
	teardown();
}

TEST(a_thousand_parked_calls_at_once)
{
	static const int one[] = { 0 };
	static struct outcome o[1000];
	int done = 0;

	setup(one, 1, NULL);
	fx.r[0].mode = MODE_PARK;
	memset(o, 0, sizeof(o));
	for (int i = 0; i < 1000; i++)
		start("health.service",
		    "{\"Service\":\"web\",\"index\":3,\"wait\":60000}", 0,
		    &o[i]);
	T_EQ(rpca_pending(fx.c), 1000);
	PUMP_UNTIL(fx.r[0].n_parked == 1000, 30000);
	T_EQ(fx.r[0].n_parked, 1000);
	release_parked(&fx.r[0]);
	PUMP_UNTIL(rpca_pending(fx.c) == 0, 30000);
	for (int i = 0; i < 1000; i++) {
		done += o[i].done;
		T_EQ(o[i].rc, 0);
		outcome_clear(&o[i]);
	}
	T_EQ(done, 1000);
	teardown();
}

TEST(cancel_closes_the_parked_request_and_never_calls_back)
{
	static const int one[] = { 0 };
	struct rpca_call *calls[50];
	struct outcome o[50];

	setup(one, 1, NULL);
	fx.r[0].mode = MODE_PARK;
	memset(o, 0, sizeof(o));
	for (int i = 0; i < 50; i++)
		calls[i] = start("kv.get", "{\"index\":9}", 0, &o[i]);
	PUMP_UNTIL(fx.r[0].n_parked == 50, 10000);
	T_EQ(fx.r[0].n_parked, 50);
	for (int i = 0; i < 50; i++)
		rpca_cancel(calls[i]);
	T_EQ(rpca_pending(fx.c), 0);
	/* The server learns: each parked request's client went away. */
	PUMP_UNTIL(fx.r[0].n_parked == 0, 10000);
	T_EQ(fx.r[0].n_parked, 0);
	T_EQ(resp_stats(&fx.r[0]).client_gone, 50);
	for (int i = 0; i < 50; i++)
		T_EQ(o[i].done, 0);
	teardown();
}

TEST(free_with_calls_in_flight_calls_nobody)
{
	static const int one[] = { 0 };
	struct outcome o[10];

	setup(one, 1, NULL);
	fx.r[0].mode = MODE_PARK;
	memset(o, 0, sizeof(o));
	for (int i = 0; i < 10; i++)
		start("kv.get", "{\"index\":9}", 0, &o[i]);
	PUMP_UNTIL(fx.r[0].n_parked == 10, 10000);
	rpca_free(fx.c);
	fx.c = NULL;
	PUMP_UNTIL(fx.r[0].n_parked == 0, 10000);
	for (int i = 0; i < 10; i++)
		T_EQ(o[i].done, 0);
	teardown();
}

TEST(bad_arguments_fail_at_the_call)
{
	static const int one[] = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct outcome o = { 0 };
	json_t *arr = json_array();

	setup(one, 1, NULL);
	T_ASSERT(rpca_call(fx.c, "", NULL, 0, done_cb, &o, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	T_ASSERT(rpca_call(fx.c, "kv.get", arr, 0, done_cb, &o, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	T_EQ(rpca_pending(fx.c), 0);
	PUMP_UNTIL(false, 50);
	T_EQ(o.done, 0);
	json_decref(arr);
	teardown();
}

TEST(set_servers_moves_the_next_calls)
{
	static const int one[] = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct outcome o = { 0 };
	const char *bad[] = { "nowhere" };
	const char *other[1];

	setup(one, 1, NULL);
	T_EQ(rpca_set_servers(fx.c, bad, 1, &err), DSC_EINVAL);
	other[0] = fx.r[1].addr;
	T_EQ(rpca_set_servers(fx.c, other, 1, &err), 0);
	start("status.leader", NULL, 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, 0);
	T_STREQ(o.server, fx.r[1].addr);
	T_EQ(fx.r[0].requests, 0);
	outcome_clear(&o);
	teardown();
}

TEST(outgoing_connections_leave_from_the_bind_address)
{
	static const int one[] = { 0 };
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct outcome o = { 0 };

	opt.bind_ip = "127.0.0.5";
	setup(one, 1, &opt);
	start("status.leader", NULL, 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, 0);
	T_ASSERT(strncmp(fx.r[0].last_peer, "127.0.0.5:", 10) == 0);
	outcome_clear(&o);
	teardown();
}

TEST(an_address_not_on_this_host_cannot_be_bound)
{
	static const int one[] = { 0 };
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct outcome o = { 0 };

	opt.bind_ip = "192.0.2.1"; /* TEST-NET-1: never local */
	setup(one, 1, &opt);
	start("status.leader", NULL, 0, &o);
	PUMP_UNTIL(o.done, 5000);
	T_EQ(o.rc, DSC_EINVAL);
	T_ASSERT(strstr(o.msg, "unable to bind") != NULL);
	T_EQ(fx.r[0].requests, 0);
	outcome_clear(&o);
	teardown();
}

T_MAIN()

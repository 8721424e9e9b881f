/*
 * dsc-load.c - the benchmark's load generator (tests/bench/README.md): one
 * program for dsc and for etcd, so both sides are measured the same way.
 *
 * C keep-alive HTTP/1.1 connections on one libevent loop, each with one
 * request in flight (closed loop), for a fixed time or a fixed number of
 * successes. Every latency goes into a log-linear histogram (64 sub-buckets
 * per power of two of nanoseconds: 1.6% resolution, fixed memory). Only a
 * 2xx answer is a success, and for JSON-RPC only a 200 whose body is a
 * response object with "result"; everything else is counted as an error
 * and never as throughput.
 *
 * Each request's body comes from one template in which "@ID@" becomes an id
 * unique to the run (PREFIX-CONN-SEQ) and "@NODE@" a number that cycles
 * through -N values, so a registration benchmark registers distinct
 * instances on a bounded set of nodes. Modes:
 *   http      the template is the body, sent as -X METHOD to -u PATH
 *   etcd-put  etcd's JSON gateway: POST /v3/kv/put with key -K PREFIX + id
 *             and the template as value, both base64 as the gateway wants
 *   rpc       the template is the params of JSON-RPC method -m, built and
 *             signed for every request with rpcc_build/rpcc_sign (a fresh
 *             id and nonce; with -w a ClientID per connection and a Seq)
 *
 * Connection i talks to target i mod the number of targets; after an error
 * it moves to the next target and waits RETRY_MS before sending again, so a
 * dead server is not hammered. With -F PID the run measures a failover
 * instead: one client writes, -A seconds in the program sends SIGKILL to
 * PID, and the run ends at the first success of a request sent after the
 * kill, reporting the time from the kill to that answer.
 *
 * CPU: the loader's own (getrusage) and that of the -P processes (utime +
 * stime in /proc/PID/stat) between the end of the warm-up and the end.
 * Prints one JSON line on stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <sodium.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "rpcc.h"

#define USAGE                                                                  \
	"usage: dsc-load [-w] [-c clients] [-d secs] [-W warmup-secs] "        \
	"[-t timeout-ms]\n"                                                    \
	"                [-b bind-ip] [-k keyfile] [-m rpc-method] "           \
	"[-X http-method]\n"                                                   \
	"                [-u path] [-H 'Name: value']... [-f body-file | "     \
	"-D body]\n"                                                           \
	"                [-K key-prefix] [-p id-prefix] [-N nodes] "           \
	"[-n max-ok]\n"                                                        \
	"                [-P pid]... [-F kill-pid -A kill-after-secs]\n"       \
	"                http|etcd-put|rpc addr:port...\n"

#define MAX_CLIENTS   1024
#define MAX_TARGETS   8
#define MAX_PIDS      16
#define MAX_HEADERS   16
#define MAX_TEMPLATE  (64 * 1024)
#define MAX_PREFIX    64
#define MAX_RESPONSE  (64u * 1024 * 1024)
#define MAX_SECS      3600
/* Pause after an error before the next request of that connection. */
#define RETRY_MS      5
/* Histogram: 2^HIST_SUB_BITS sub-buckets per power of two. */
#define HIST_SUB_BITS 6
#define HIST_SUB      (1u << HIST_SUB_BITS)
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

enum mode { MODE_HTTP, MODE_ETCD_PUT, MODE_RPC };

/* One piece of the body template: literal text, then a placeholder. */
enum piece_kind { PIECE_END, PIECE_ID, PIECE_NODE };

struct piece {
	const char *text;
	size_t len;
	enum piece_kind then;
};

struct load;

struct conn {
	struct load *ld;
	unsigned id;
	size_t target;
	struct evhttp_connection *evcon[MAX_TARGETS];
	struct rpcc *rpcc;
	struct event *retry;
	uint64_t seq, t_sent;
	struct buf body, scratch;
};

struct load {
	enum mode mode;
	struct event_base *base;
	const char *targets[MAX_TARGETS];
	size_t n_targets;
	char hosts[MAX_TARGETS][RPCC_ADDR_MAX];
	unsigned ports[MAX_TARGETS];
	const char *headers[MAX_HEADERS];
	size_t n_headers;
	enum evhttp_cmd_type http_method;
	const char *path, *rpc_method, *bind_ip, *key_prefix, *id_prefix;
	unsigned flags, timeout_ms, nodes;
	uint8_t key[AUTH_KEY_SIZE];
	struct piece *pieces;
	size_t n_pieces;
	struct conn *conns;
	unsigned n_conns;
	pid_t pids[MAX_PIDS];
	size_t n_pids;
	pid_t kill_pid;
	uint64_t node_ctr;
	/* The measured window: [t_start, t_end); ok counts answers to
	 * requests sent inside it. */
	uint64_t t_start, t_end, t_kill, failover_ns, max_ok;
	uint64_t ok, err_transport, err_status, err_rpc;
	bool measuring, done;
	double cpu_self0, cpu_srv0, cpu_self, cpu_srv;
	char first_error[160];
	uint64_t hist[HIST_BUCKETS];
};

static void send_next(struct conn *c);

static _Noreturn void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static _Noreturn void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("dsc-load: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(DSC_EXIT_TEMP);
}

static _Noreturn void
usage(void)
{
	fputs(USAGE, stderr);
	exit(DSC_EXIT_USAGE);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
arm(struct event *ev, unsigned long ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

static unsigned long
number(const char *what, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo ||
	    v > hi) {
		fprintf(stderr, "dsc-load: error: %s '%s' not in %lu..%lu\n",
		    what, s, lo, hi);
		exit(DSC_EXIT_USAGE);
	}
	return v;
}

/* ---- histogram ----------------------------------------------------------- */

static size_t
hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * HIST_SUB)
		return (size_t)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return ((size_t)shift << HIST_SUB_BITS) + (size_t)(v >> shift);
}

/* The middle of bucket @i, in ns. */
static double
hist_value(size_t i)
{
	unsigned shift =
	    i < 2 * HIST_SUB ? 0 : (unsigned)(i >> HIST_SUB_BITS) - 1;
	uint64_t low = (uint64_t)(i - ((size_t)shift << HIST_SUB_BITS))
	    << shift;

	return (double)low + (double)((1ull << shift) - 1) / 2;
}

/* The @q quantile in ms (0 when nothing was recorded). */
static double
hist_quantile(const uint64_t *h, uint64_t n, double q)
{
	uint64_t want = (uint64_t)((double)n * q), seen = 0;

	if (n == 0)
		return 0;
	if (want >= n)
		want = n - 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h[i];
		if (seen > want)
			return hist_value(i) / 1e6;
	}
	return 0;
}

/* ---- CPU ----------------------------------------------------------------- */

static double
cpu_self(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* utime + stime of @pid in seconds; 0 once it is gone. */
static double
cpu_of(pid_t pid)
{
	char path[64], line[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past the
	 * last ')', then state is field 3 and utime, stime fields 14, 15. */
	if ((p = strrchr(line, ')')) == NULL ||
	    sscanf(p + 1,
	        " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	        &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double
cpu_servers(const struct load *ld)
{
	double s = 0;

	for (size_t i = 0; i < ld->n_pids; i++)
		s += cpu_of(ld->pids[i]);
	return s;
}

/* ---- requests ------------------------------------------------------------ */

/* Splits the template at its placeholders; the pieces point into @t. */
static void
template_parse(struct load *ld, const char *t)
{
	static const struct {
		const char *name;
		enum piece_kind kind;
	} ph[] = { { "@ID@", PIECE_ID }, { "@NODE@", PIECE_NODE } };
	size_t cap = 0;

	for (;;) {
		const char *best = NULL;
		size_t which = 0;

		for (size_t i = 0; i < sizeof(ph) / sizeof(ph[0]); i++) {
			const char *p = strstr(t, ph[i].name);

			if (p != NULL && (best == NULL || p < best)) {
				best = p;
				which = i;
			}
		}
		if (ld->n_pieces == cap) {
			/* At most MAX_TEMPLATE / 4 placeholders: no overflow.
			 */
			cap = cap ? 2 * cap : 8;
			ld->pieces =
			    realloc(ld->pieces, cap * sizeof(*ld->pieces));
			if (ld->pieces == NULL)
				die("%s", "out of memory");
		}
		ld->pieces[ld->n_pieces++] =
		    (struct piece){ t, best ? (size_t)(best - t) : strlen(t),
			    best ? ph[which].kind : PIECE_END };
		if (best == NULL)
			return;
		t = best + strlen(ph[which].name);
	}
}

/* Appends the template with the placeholders of request @c->seq. */
static int
template_expand(struct conn *c, struct buf *out)
{
	struct load *ld = c->ld;

	for (size_t i = 0; i < ld->n_pieces; i++) {
		const struct piece *p = &ld->pieces[i];

		if (buf_add(out, p->text, p->len) != 0)
			return DSC_ENOMEM;
		if (p->then == PIECE_ID &&
		    buf_addf(out, "%s-%u-%" PRIu64, ld->id_prefix, c->id,
		        c->seq) != 0)
			return DSC_ENOMEM;
		if (p->then == PIECE_NODE &&
		    buf_addf(out, "%" PRIu64, ld->node_ctr++ % ld->nodes) != 0)
			return DSC_ENOMEM;
	}
	return 0;
}

static int
add_base64(struct buf *out, const void *p, size_t len)
{
	size_t n =
	    sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);

	if (buf_grow(out, n) != 0)
		return DSC_ENOMEM;
	sodium_bin2base64((char *)out->p + out->len, n, p, len,
	    sodium_base64_VARIANT_ORIGINAL);
	out->len += n - 1;
	return 0;
}

/* Builds request @c->seq's body in c->body and adds its own headers. */
static int
build(struct conn *c, struct evkeyvalq *hdrs)
{
	struct load *ld = c->ld;
	struct dsc_err err = DSC_ERR_INIT;
	struct auth_req_sig sig;
	json_t *params;
	int rv;

	buf_clear(&c->body);
	buf_clear(&c->scratch);
	switch (ld->mode) {
	case MODE_HTTP:
		return template_expand(c, &c->body);
	case MODE_ETCD_PUT:
		if (template_expand(c, &c->scratch) != 0 ||
		    buf_addstr(&c->body, "{\"key\":\"") != 0)
			return DSC_ENOMEM;
		{
			size_t mark = c->scratch.len;

			if (buf_addf(&c->scratch, "%s%s-%u-%" PRIu64,
			        ld->key_prefix, ld->id_prefix, c->id,
			        c->seq) != 0 ||
			    add_base64(&c->body, c->scratch.p + mark,
			        c->scratch.len - mark) != 0 ||
			    buf_addstr(&c->body, "\",\"value\":\"") != 0 ||
			    add_base64(&c->body, c->scratch.p, mark) != 0 ||
			    buf_addstr(&c->body, "\"}") != 0)
				return DSC_ENOMEM;
		}
		return 0;
	case MODE_RPC:
		if (template_expand(c, &c->scratch) != 0)
			return DSC_ENOMEM;
		params = json_loadb((const char *)c->scratch.p, c->scratch.len,
		    JSON_REJECT_DUPLICATES, NULL);
		if (params == NULL)
			return DSC_EINVAL;
		rv = rpcc_build(
		    c->rpcc, ld->rpc_method, params, ld->flags, &c->body, &err);
		json_decref(params);
		if (rv == 0)
			rv = rpcc_sign(c->rpcc, (int64_t)time(NULL), c->body.p,
			    c->body.len, &sig, &err);
		if (rv != 0)
			return rv;
		evhttp_add_header(hdrs, AUTH_HDR_KEY_ID, sig.key_id);
		evhttp_add_header(hdrs, AUTH_HDR_TIMESTAMP, sig.timestamp);
		evhttp_add_header(hdrs, AUTH_HDR_NONCE, sig.nonce);
		evhttp_add_header(hdrs, AUTH_HDR_MAC, sig.mac);
		evhttp_add_header(hdrs, "Content-Type", "application/json");
		return 0;
	}
	return DSC_EINVAL;
}

/* Is this JSON-RPC answer a response object with a result? */
static bool
rpc_ok(struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	const char *p = (const char *)evbuffer_pullup(in, -1);
	json_t *j = p ? json_loadb(p, len, 0, NULL) : NULL;
	bool ok = json_is_object(j) && json_object_get(j, "result") != NULL &&
	    json_object_get(j, "error") == NULL;

	json_decref(j);
	return ok;
}

static void
note_error(struct load *ld, const char *what, int code, struct evbuffer *in)
{
	char body[96] = "";

	if (ld->first_error[0] != '\0')
		return;
	if (in != NULL) {
		ev_ssize_t n = evbuffer_copyout(in, body, sizeof(body) - 1);

		body[n > 0 ? n : 0] = '\0';
		for (char *p = body; *p; p++)
			if (*p < ' ' || *p > '~')
				*p = ' ';
	}
	snprintf(ld->first_error, sizeof(ld->first_error), "%s %d %s", what,
	    code, body);
}

static void
finish(struct load *ld)
{
	if (ld->done)
		return;
	ld->done = true;
	ld->t_end = now_ns();
	ld->cpu_self = cpu_self() - ld->cpu_self0;
	ld->cpu_srv = cpu_servers(ld) - ld->cpu_srv0;
	event_base_loopbreak(ld->base);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_next(arg);
}

static void
on_answer(struct evhttp_request *req, void *arg)
{
	struct conn *c = arg;
	struct load *ld = c->ld;
	uint64_t t = now_ns();
	int code = req ? evhttp_request_get_response_code(req) : 0;
	struct evbuffer *in = req ? evhttp_request_get_input_buffer(req) : NULL;
	bool counted = ld->measuring && c->t_sent >= ld->t_start;
	bool ok = code >= 200 && code < 300 &&
	    (ld->mode != MODE_RPC || (code == 200 && rpc_ok(in)));

	if (ld->done)
		return;
	if (ok) {
		if (ld->kill_pid > 0) {
			if (ld->t_kill > 0 && c->t_sent >= ld->t_kill) {
				ld->failover_ns = t - ld->t_kill;
				ld->ok++;
				finish(ld);
				return;
			}
		} else if (counted) {
			ld->ok++;
			ld->hist[hist_index(t - c->t_sent)]++;
			if (ld->max_ok > 0 && ld->ok >= ld->max_ok) {
				finish(ld);
				return;
			}
		}
		send_next(c);
		return;
	}
	if (counted) {
		if (code == 0)
			ld->err_transport++;
		else if (code < 200 || code >= 300)
			ld->err_status++;
		else
			ld->err_rpc++;
		note_error(ld,
		    code == 0 ? "no answer (refused, reset or timed out):"
		              : "HTTP",
		    code, in);
	}
	/* Another server may answer; give this one a moment. */
	c->target = (c->target + 1) % ld->n_targets;
	arm(c->retry, RETRY_MS);
}

static struct evhttp_connection *
conn_evcon(struct conn *c)
{
	struct load *ld = c->ld;
	struct evhttp_connection **e = &c->evcon[c->target];

	if (*e != NULL)
		return *e;
	*e = evhttp_connection_base_new(ld->base, NULL, ld->hosts[c->target],
	    (ev_uint16_t)ld->ports[c->target]);
	if (*e == NULL)
		return NULL;
	if (ld->bind_ip != NULL)
		evhttp_connection_set_local_address(*e, ld->bind_ip);
	evhttp_connection_set_timeout_tv(*e,
	    &(struct timeval){
	        ld->timeout_ms / 1000, (ld->timeout_ms % 1000) * 1000 });
	evhttp_connection_set_max_body_size(*e, MAX_RESPONSE);
	evhttp_connection_set_retries(*e, 0);
	return *e;
}

static void
send_next(struct conn *c)
{
	struct load *ld = c->ld;
	struct evhttp_connection *evcon;
	struct evhttp_request *req;
	struct evkeyvalq *hdrs;
	int rv;

	if (ld->done)
		return;
	c->seq++;
	if ((evcon = conn_evcon(c)) == NULL ||
	    (req = evhttp_request_new(on_answer, c)) == NULL)
		die("%s", "out of memory");
	hdrs = evhttp_request_get_output_headers(req);
	evhttp_add_header(hdrs, "Host", ld->targets[c->target]);
	for (size_t i = 0; i < ld->n_headers; i++) {
		char name[128];
		const char *colon = strchr(ld->headers[i], ':');
		size_t n = (size_t)(colon - ld->headers[i]);

		snprintf(name, sizeof(name), "%.*s", (int)n, ld->headers[i]);
		evhttp_add_header(
		    hdrs, name, colon + 1 + strspn(colon + 1, " "));
	}
	if ((rv = build(c, hdrs)) != 0) {
		evhttp_request_free(req);
		die("cannot build a request: %s",
		    rv == DSC_EINVAL ? "the body is not valid JSON"
		                     : "out of memory");
	}
	if (c->body.len > 0)
		evbuffer_add(evhttp_request_get_output_buffer(req), c->body.p,
		    c->body.len);
	c->t_sent = now_ns();
	if (evhttp_make_request(evcon, req,
	        ld->mode == MODE_HTTP ? ld->http_method : EVHTTP_REQ_POST,
	        ld->mode == MODE_HTTP      ? ld->path
	            : ld->mode == MODE_RPC ? RPCC_HTTP_PATH
	                                   : "/v3/kv/put") != 0) {
		/* The request is freed; try again shortly. */
		c->target = (c->target + 1) % ld->n_targets;
		arm(c->retry, RETRY_MS);
	}
}

/* ---- the run ------------------------------------------------------------- */

static void
on_warm(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	ld->measuring = true;
	ld->t_start = now_ns();
	ld->cpu_self0 = cpu_self();
	ld->cpu_srv0 = cpu_servers(ld);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

static void
on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct load *ld = arg;

	(void)fd;
	(void)what;
	ld->t_kill = now_ns();
	if (kill(ld->kill_pid, SIGKILL) != 0) {
		fprintf(stderr, "dsc-load: error: kill %ld: %s\n",
		    (long)ld->kill_pid, strerror(errno));
		finish(ld);
	}
}

static void
split_target(struct load *ld, size_t i)
{
	const char *t = ld->targets[i], *colon = strrchr(t, ':');
	size_t n;

	if (colon == NULL || (n = (size_t)(colon - t)) == 0 ||
	    n >= sizeof(ld->hosts[i]))
		die("target '%s' is not ADDR:PORT", t);
	memcpy(ld->hosts[i], t, n);
	ld->hosts[i][n] = '\0';
	ld->ports[i] = (unsigned)number("port", colon + 1, 1, 65535);
}

static char *
read_template(const char *path)
{
	FILE *f = fopen(path, "r");
	char *t = malloc(MAX_TEMPLATE + 1);
	size_t n;

	if (f == NULL || t == NULL)
		die("cannot open body file '%s'", path);
	n = fread(t, 1, MAX_TEMPLATE + 1, f);
	if (ferror(f) || n > MAX_TEMPLATE)
		die("body file '%s' unreadable or over 64 KiB", path);
	fclose(f);
	t[n] = '\0';
	if (strlen(t) != n)
		die("body file '%s' holds a NUL byte", path);
	return t;
}

static void
print_result(const struct load *ld, double secs)
{
	uint64_t n = 0;
	double max = 0;

	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		n += ld->hist[i];
		if (ld->hist[i] != 0)
			max = hist_value(i) / 1e6;
	}
	printf("{\"mode\":\"%s\",\"clients\":%u,\"secs\":%.3f,\"ok\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"err_transport\":%" PRIu64
	       ",\"err_status\":%" PRIu64 ",\"err_rpc\":%" PRIu64
	       ",\"ops_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
	       "\"max_ms\":%.3f,\"cpu_load_s\":%.3f,\"cpu_servers_s\":%.3f",
	    ld->mode == MODE_HTTP      ? "http"
	        : ld->mode == MODE_RPC ? "rpc"
	                               : "etcd-put",
	    ld->n_conns, secs, ld->ok,
	    ld->err_transport + ld->err_status + ld->err_rpc, ld->err_transport,
	    ld->err_status, ld->err_rpc, secs > 0 ? (double)ld->ok / secs : 0,
	    hist_quantile(ld->hist, n, 0.50), hist_quantile(ld->hist, n, 0.99),
	    max, ld->cpu_self, ld->cpu_srv);
	if (ld->kill_pid > 0)
		printf(",\"failover_ms\":%.3f",
		    ld->failover_ns > 0 ? (double)ld->failover_ns / 1e6 : -1.0);
	printf("}\n");
}

int
main(int argc, char **argv)
{
	static struct load ld;
	struct dsc_err err = DSC_ERR_INIT;
	const char *keyfile = NULL, *body_file = NULL, *body = NULL;
	char *template = NULL;
	unsigned long secs = 5, warm_ms = 0, kill_after_ms = 0;
	struct event *warm, *deadline, *killer = NULL;
	int ch;

	ld.n_conns = 1;
	ld.timeout_ms = 5000;
	ld.nodes = 1000;
	ld.http_method = EVHTTP_REQ_GET;
	ld.path = "/";
	ld.key_prefix = "/services/web/";
	ld.id_prefix = "i";
	while ((ch = getopt(argc, argv,
	            "wc:d:W:t:b:k:m:X:u:H:f:D:K:p:N:n:P:F:A:")) != -1) {
		switch (ch) {
		case 'w':
			ld.flags |= RPCC_WRITE;
			break;
		case 'c':
			ld.n_conns =
			    (unsigned)number("clients", optarg, 1, MAX_CLIENTS);
			break;
		case 'd':
			secs = number("secs", optarg, 1, MAX_SECS);
			break;
		case 'W':
			warm_ms = (unsigned long)(1000 * strtod(optarg, NULL));
			if (warm_ms > 60000)
				usage();
			break;
		case 't':
			ld.timeout_ms =
			    (unsigned)number("timeout-ms", optarg, 1, 600000);
			break;
		case 'b':
			ld.bind_ip = optarg;
			break;
		case 'k':
			keyfile = optarg;
			break;
		case 'm':
			ld.rpc_method = optarg;
			break;
		case 'X':
			if (strcmp(optarg, "GET") == 0)
				ld.http_method = EVHTTP_REQ_GET;
			else if (strcmp(optarg, "PUT") == 0)
				ld.http_method = EVHTTP_REQ_PUT;
			else if (strcmp(optarg, "POST") == 0)
				ld.http_method = EVHTTP_REQ_POST;
			else
				die("http method '%s' is not GET, PUT or POST",
				    optarg);
			break;
		case 'u':
			if (optarg[0] != '/')
				die("path '%s' must start with '/'", optarg);
			ld.path = optarg;
			break;
		case 'H':
			if (ld.n_headers == MAX_HEADERS ||
			    strchr(optarg, ':') == NULL ||
			    strchr(optarg, ':') == optarg ||
			    strchr(optarg, ':') - optarg >= 127 ||
			    strpbrk(optarg, "\r\n") != NULL)
				die("header '%s' is not 'Name: value'", optarg);
			ld.headers[ld.n_headers++] = optarg;
			break;
		case 'f':
			body_file = optarg;
			break;
		case 'D':
			body = optarg;
			break;
		case 'K':
			ld.key_prefix = optarg;
			break;
		case 'p':
			if (strlen(optarg) > MAX_PREFIX)
				die("id prefix '%s' over 64 bytes", optarg);
			ld.id_prefix = optarg;
			break;
		case 'N':
			ld.nodes =
			    (unsigned)number("nodes", optarg, 1, UINT_MAX);
			break;
		case 'n':
			ld.max_ok = number("max-ok", optarg, 1, ULONG_MAX);
			break;
		case 'P':
			if (ld.n_pids == MAX_PIDS)
				usage();
			ld.pids[ld.n_pids++] =
			    (pid_t)number("pid", optarg, 1, INT_MAX);
			break;
		case 'F':
			ld.kill_pid =
			    (pid_t)number("kill-pid", optarg, 1, INT_MAX);
			break;
		case 'A':
			kill_after_ms =
			    (unsigned long)(1000 * strtod(optarg, NULL));
			if (kill_after_ms < 1 || kill_after_ms > 60000)
				die("kill-after '%s' not in 0.001..60", optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 2 || argc - optind - 1 > MAX_TARGETS)
		usage();
	if (strcmp(argv[optind], "http") == 0)
		ld.mode = MODE_HTTP;
	else if (strcmp(argv[optind], "etcd-put") == 0)
		ld.mode = MODE_ETCD_PUT;
	else if (strcmp(argv[optind], "rpc") == 0)
		ld.mode = MODE_RPC;
	else
		usage();
	for (int i = optind + 1; i < argc; i++) {
		ld.targets[ld.n_targets] = argv[i];
		split_target(&ld, ld.n_targets++);
	}
	if (body != NULL && body_file != NULL)
		die("%s", "can't combine -f and -D");
	if ((ld.mode == MODE_RPC) != (keyfile != NULL && ld.rpc_method != NULL))
		die("%s",
		    "-k and -m go with rpc mode, and rpc mode needs both");
	if ((ld.kill_pid > 0) != (kill_after_ms > 0) ||
	    (ld.kill_pid > 0 && ld.n_conns != 1))
		die("%s", "-F and -A go together, with one client");
	if (body_file != NULL)
		body = template = read_template(body_file);
	template_parse(&ld, body ? body : "");

	signal(SIGPIPE, SIG_IGN);
	if (auth_init(&err) != 0 ||
	    (keyfile && auth_key_load(keyfile, ld.key, &err) != 0))
		die("%s", dsc_err_msg(&err));
	if ((ld.base = event_base_new()) == NULL ||
	    (ld.conns = calloc(ld.n_conns, sizeof(*ld.conns))) == NULL)
		die("%s", "out of memory");
	for (unsigned i = 0; i < ld.n_conns; i++) {
		struct conn *c = &ld.conns[i];
		struct rpcc_options o = RPCC_OPTIONS_INIT;

		*c = (struct conn){ .ld = &ld,
			.id = i,
			.target = i % ld.n_targets,
			.body = BUF_INIT,
			.scratch = BUF_INIT };
		c->retry = evtimer_new(ld.base, on_retry, c);
		if (c->retry == NULL)
			die("%s", "out of memory");
		if (ld.mode == MODE_RPC &&
		    (c->rpcc = rpcc_new(
		         ld.key, ld.targets, ld.n_targets, &o, &err)) == NULL)
			die("%s", dsc_err_msg(&err));
	}

	warm = evtimer_new(ld.base, on_warm, &ld);
	deadline = evtimer_new(ld.base, on_deadline, &ld);
	if (warm == NULL || deadline == NULL)
		die("%s", "out of memory");
	arm(deadline, warm_ms + secs * 1000);
	if (ld.kill_pid > 0) {
		if ((killer = evtimer_new(ld.base, on_kill, &ld)) == NULL)
			die("%s", "out of memory");
		arm(killer, kill_after_ms);
	}
	if (warm_ms == 0)
		on_warm(-1, 0, &ld);
	else
		arm(warm, warm_ms);
	for (unsigned i = 0; i < ld.n_conns; i++)
		send_next(&ld.conns[i]);
	event_base_dispatch(ld.base);
	if (!ld.done)
		finish(&ld);

	print_result(
	    &ld, ld.measuring ? (double)(ld.t_end - ld.t_start) / 1e9 : 0);
	if (ld.first_error[0] != '\0')
		fprintf(stderr, "dsc-load: warning: first error: %s\n",
		    ld.first_error);

	for (unsigned i = 0; i < ld.n_conns; i++) {
		struct conn *c = &ld.conns[i];

		for (size_t t = 0; t < ld.n_targets; t++)
			if (c->evcon[t] != NULL)
				evhttp_connection_free(c->evcon[t]);
		event_free(c->retry);
		rpcc_free(c->rpcc);
		buf_release(&c->body);
		buf_release(&c->scratch);
	}
	if (killer != NULL)
		event_free(killer);
	event_free(warm);
	event_free(deadline);
	event_base_free(ld.base);
	free(ld.conns);
	free(ld.pieces);
	free(template);
	sodium_memzero(ld.key, sizeof(ld.key));
	if (ld.kill_pid > 0)
		return ld.failover_ns > 0 ? 0 : DSC_EXIT_TEMP;
	return ld.ok == 0 ? DSC_EXIT_TEMP : 0;
}

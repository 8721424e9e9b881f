/*
 * test_checks.c - the health-check runners on a real event loop.
 *
 * Each test gets a fresh event_base, a checker on it, and an evhttp server
 * on 127.0.0.1 with a port chosen by the kernel whose answers the path
 * picks (/ok 200, /busy 429, /fail 500, /slow never, /big 100 kB, /echo
 * what it saw, /ctl the code the test sets). Scripts are /bin/sh command
 * lines run as argument vectors. Every wait turns the loop until a
 * condition holds or a generous deadline passes; intervals are short so
 * the tests stay quick on a loaded machine without fixed sleeps.
 */
#include "checks.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "err.h"
#include "loop_harness.h"
#include "mem.h"
#include "t.h"

#define MAX_REPORTS 64

/* ---- fixture ------------------------------------------------------------ */

enum act { ACT_NONE, ACT_STOP_SELF, ACT_FREE_CHECKER };

struct rec {
	int n;
	char *status[MAX_REPORTS];
	char *output[MAX_REPORTS];
	int hits[MAX_REPORTS]; /* server hits when the report came */
	struct check_run *run;
	enum act act;
};

static struct {
	struct loop_fx lf;
	struct checker *ck;
	int hits;
	int code; /* what /ctl answers */
	char peer[64];
	char dir[64]; /* scratch directory for scripts */
	struct rec recs[4];
} fx;

static void
on_report(const char *status, const char *output, void *arg)
{
	struct rec *r = arg;

	if (r->n < MAX_REPORTS) {
		r->status[r->n] = strdup(status);
		r->output[r->n] = strdup(output);
		r->hits[r->n] = fx.hits;
	}
	r->n++;
	if (r->act == ACT_STOP_SELF) {
		check_run_stop(r->run);
		r->run = NULL;
	} else if (r->act == ACT_FREE_CHECKER) {
		checker_free(fx.ck);
		fx.ck = NULL;
	}
}

static const char *
method_name(enum evhttp_cmd_type c)
{
	switch (c) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_POST:
		return "POST";
	default:
		return "OTHER";
	}
}

static void
http_cb(struct evhttp_request *req, void *arg)
{
	const char *uri = evhttp_request_get_uri(req);
	struct evbuffer *b = evbuffer_new();
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	char *addr = NULL;
	ev_uint16_t port;
	const char *xt;
	size_t i;

	(void)arg;
	fx.hits++;
	evhttp_connection_get_peer(c, &addr, &port);
	snprintf(fx.peer, sizeof(fx.peer), "%s", addr ? addr : "");
	if (strcmp(uri, "/ok") == 0) {
		evbuffer_add_printf(b, "all good");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/busy") == 0) {
		evhttp_send_reply(req, 429, "Too Many Requests", b);
	} else if (strcmp(uri, "/fail") == 0) {
		evbuffer_add_printf(b, "boom");
		evhttp_send_reply(req, 500, "Internal Server Error", b);
	} else if (strcmp(uri, "/big") == 0) {
		for (i = 0; i < 100000; i++)
			evbuffer_add(b, "x", 1);
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/echo") == 0) {
		xt = evhttp_find_header(
		    evhttp_request_get_input_headers(req), "X-Test");
		evbuffer_add_printf(b, "%s x-test=%s body=",
		    method_name(evhttp_request_get_command(req)),
		    xt ? xt : "-");
		evbuffer_add_buffer(b, evhttp_request_get_input_buffer(req));
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/ctl") == 0) {
		evhttp_send_reply(req, fx.code, "Set By Test", b);
	} else if (strcmp(uri, "/slow") != 0) {
		evhttp_send_reply(req, 404, "Not Found", b);
	} /* /slow: never answered; freed when the client gives up */
	evbuffer_free(b);
}

static void
teardown(void)
{
	size_t i;
	int k;

	checker_free(fx.ck);
	fx.ck = NULL;
	/* Every script was reaped: no child, zombie or not, is left. */
	T_EQ(waitpid(-1, NULL, WNOHANG), -1);
	T_EQ(errno, ECHILD);
	for (i = 0; i < sizeof(fx.recs) / sizeof(fx.recs[0]); i++) {
		for (k = 0; k < fx.recs[i].n && k < MAX_REPORTS; k++) {
			free(fx.recs[i].status[k]);
			free(fx.recs[i].output[k]);
		}
		memset(&fx.recs[i], 0, sizeof(fx.recs[i]));
	}
	loop_fx_close(&fx.lf);
	if (fx.dir[0] != '\0') {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
		T_EQ(system(cmd), 0);
		fx.dir[0] = '\0';
	}
}

/* A fresh loop, HTTP server and checker with source address @bind_ip. */
static void
setup_with(const char *bind_ip, bool allow_scripts)
{
	struct dsc_err err = DSC_ERR_INIT;

	teardown(); /* whatever a failed test left */
	dsc_mem_fail_after(-1);
	fx.hits = 0;
	fx.code = 200;
	fx.peer[0] = '\0';
	loop_fx_open(&fx.lf, http_cb, NULL);
	fx.ck = checker_new(fx.lf.base, bind_ip, allow_scripts, &err);
	T_ASSERT(fx.ck != NULL);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_checks.XXXXXX");
	T_ASSERT(mkdtemp(fx.dir) != NULL);
}

static void
setup(void)
{
	setup_with(NULL, true);
}

#define WAIT_FOR(cond) LOOP_WAIT_FOR(&fx.lf, cond)

static struct check_run *
start(const struct check_def *d, struct rec *r)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct check_run *run = checker_start(fx.ck, d, on_report, r, &err);

	if (run == NULL)
		T_FAIL("checker_start: %s", dsc_err_msg(&err));
	r->run = run;
	return run;
}

static struct check_def
http_def(const char *path, uint64_t interval_ms)
{
	static char url[128];
	struct check_def d = { 0 };

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", fx.lf.port, path);
	d.kind = CHECK_HTTP;
	d.http = url;
	d.interval_ms = interval_ms;
	return d;
}

/* sh -c @cmd, with the scratch directory as $1. */
static struct check_def
script_def(const char *cmd, uint64_t interval_ms)
{
	struct check_def d = { 0 };

	d.kind = CHECK_SCRIPT;
	d.args[0] = "/bin/sh";
	d.args[1] = "-c";
	d.args[2] = cmd;
	d.args[3] = "sh";
	d.args[4] = fx.dir;
	d.n_args = 5;
	d.interval_ms = interval_ms;
	return d;
}

static const char *
last_status(const struct rec *r)
{
	return r->n > 0 ? r->status[r->n - 1] : "";
}

static const char *
last_output(const struct rec *r)
{
	return r->n > 0 ? r->output[r->n - 1] : "";
}

/* A port on 127.0.0.1 nobody listens on. */
static uint16_t
closed_port(void)
{
	struct sockaddr_in sin = { 0 };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	T_ASSERT(fd >= 0);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_EQ(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	T_EQ(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

/* Reads the integers in @name under the scratch directory. */
static int
read_ints(const char *name, long *v, int max)
{
	char path[128];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (n < max && fscanf(f, "%ld", &v[n]) == 1)
		n++;
	fclose(f);
	return n;
}

/* Gone or a zombie that is not ours: not running. */
static bool
not_running(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL && p[1] == ' ')
		gone = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return gone;
}

/* ---- HTTP --------------------------------------------------------------- */

TEST(http_first_run_is_immediate_and_passing)
{
	struct check_def d;
	char want[128];

	setup();
	/* An hour's interval: only an immediate first run can report. */
	d = http_def("/ok", 3600000);
	start(&d, &fx.recs[0]);
	T_STREQ(check_run_status(fx.recs[0].run), "critical");
	T_EQ(fx.recs[0].n, 0); /* never from inside checker_start */
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	snprintf(want, sizeof(want),
	    "HTTP GET http://127.0.0.1:%u/ok: 200 OK Output: all good",
	    fx.lf.port);
	T_STREQ(last_output(&fx.recs[0]), want);
	T_STREQ(check_run_output(fx.recs[0].run), want);
	T_EQ(fx.hits, 1);
	teardown();
}

TEST(http_429_is_warning_500_critical)
{
	struct check_def d;

	setup();
	d = http_def("/busy", 3600000);
	d.initial_status = "passing";
	start(&d, &fx.recs[0]);
	d = http_def("/fail", 3600000);
	d.initial_status = "passing";
	start(&d, &fx.recs[1]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[1].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "warning");
	T_ASSERT(strstr(last_output(&fx.recs[0]),
	             ": 429 Too Many Requests Output: ") != NULL);
	T_STREQ(last_status(&fx.recs[1]), "critical");
	T_ASSERT(strstr(last_output(&fx.recs[1]),
	             ": 500 Internal Server Error Output: boom") != NULL);
	teardown();
}

TEST(http_timeout_is_critical)
{
	struct check_def d;
	long t0;

	setup();
	d = http_def("/slow", 3600000);
	d.timeout_ms = 200;
	d.initial_status = "passing";
	t0 = loop_now_ms();
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_ASSERT(loop_now_ms() - t0 >= 190);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_ASSERT(
	    strncmp(last_output(&fx.recs[0]), "HTTP GET http://", 16) == 0);
	T_ASSERT(strstr(last_output(&fx.recs[0]), "timed out") != NULL);
	teardown();
}

TEST(http_body_capped_at_output_max)
{
	struct check_def d;
	const char *out, *body;
	size_t i;

	setup();
	d = http_def("/big", 3600000);
	d.output_max = 100;
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	out = last_output(&fx.recs[0]);
	T_ASSERT((body = strstr(out, "Output: ")) != NULL);
	body += 8;
	T_EQ(strlen(body), 100);
	for (i = 0; i < 100; i++)
		T_EQ(body[i], 'x');
	teardown();
}

TEST(http_method_headers_and_body_are_sent)
{
	struct check_def d;
	char hdr[] = "X-Test: yes", body[] = "hello";

	setup();
	d = http_def("/echo", 3600000);
	d.method = "PUT";
	d.headers[0] = hdr;
	d.n_headers = 1;
	d.body = body;
	start(&d, &fx.recs[0]);
	/* The definition was copied. */
	memset(hdr + 8, 'z', 3);
	memset(body, 'z', 5);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_ASSERT(strstr(last_output(&fx.recs[0]),
	             "HTTP PUT http://127.0.0.1:") == last_output(&fx.recs[0]));
	T_ASSERT(strstr(last_output(&fx.recs[0]),
	             "Output: PUT x-test=yes body=hello") != NULL);
	teardown();
}

TEST(http_refused_is_critical)
{
	struct check_def d = { 0 };
	char url[64];

	setup();
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", closed_port());
	d.kind = CHECK_HTTP;
	d.http = url;
	d.interval_ms = 3600000;
	d.initial_status = "passing";
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_ASSERT(
	    strstr(last_output(&fx.recs[0]), "Connection refused") != NULL);
	teardown();
}

/*
 * An "openssl s_server -www" on 127.0.0.1 with a self-signed certificate:
 * its pid, and its port in *@port. 0 when there is no openssl to run.
 */
static pid_t
tls_server(uint16_t *port)
{
	char cmd[512], path[128];
	long end = loop_now_ms() + LOOP_WAIT_MAX_MS;
	unsigned p = 0;
	pid_t pid;
	FILE *f;
	int fd;

	if (system("openssl version >/dev/null 2>&1") != 0)
		return 0;
	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -days 1 "
	    "-keyout k.pem -out c.pem >/dev/null 2>&1",
	    fx.dir);
	T_EQ(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/server.out", fx.dir);
	if ((pid = fork()) == 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0 && dup2(fd, 1) == 1 && dup2(fd, 2) == 2 &&
		    chdir(fx.dir) == 0)
			execlp("openssl", "openssl", "s_server", "-accept",
			    "127.0.0.1:0", "-www", "-cert", "c.pem", "-key",
			    "k.pem", (char *)NULL);
		_exit(127);
	}
	T_ASSERT(pid > 0);
	/* "ACCEPT 127.0.0.1:40109" once it listens. */
	while (p == 0 && loop_now_ms() < end) {
		if ((f = fopen(path, "r")) != NULL) {
			while (fgets(cmd, sizeof(cmd), f) != NULL)
				if (sscanf(cmd, "ACCEPT 127.0.0.1:%u", &p) == 1)
					break;
			fclose(f);
		}
		loop_pump(&fx.lf, 10);
	}
	if (p == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		T_FAIL("openssl s_server did not start");
	}
	*port = (uint16_t)p;
	return pid;
}

TEST(https_with_and_without_verification)
{
	struct check_def d = { 0 };
	char url[64];
	uint16_t port;
	pid_t pid;

	setup();
	if ((pid = tls_server(&port)) == 0) {
		fprintf(stderr, "  no openssl to serve TLS: nothing checked\n");
		teardown();
		return;
	}
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/", port);
	d.kind = CHECK_HTTP;
	d.http = url;
	d.interval_ms = 3600000;
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	d.tls_skip_verify = true;
	start(&d, &fx.recs[1]);
	WAIT_FOR(fx.recs[1].n >= 1);
	kill(pid, SIGTERM);
	T_EQ(waitpid(pid, NULL, 0), pid);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_ASSERT(strstr(last_output(&fx.recs[0]), "certificate") != NULL);
	T_STREQ(last_status(&fx.recs[1]), "passing");
	T_ASSERT(
	    strncmp(last_output(&fx.recs[1]), "HTTP GET https://", 17) == 0);
	T_ASSERT(strstr(last_output(&fx.recs[1]), ": 200 ok Output: ") != NULL);
	teardown();
}

TEST(http_source_address_is_bind_ip)
{
	struct check_def d;

	setup_with("127.0.0.2", false);
	d = http_def("/ok", 3600000);
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	T_STREQ(fx.peer, "127.0.0.2");
	teardown();
}

TEST(reports_only_on_change)
{
	struct check_def d;

	setup();
	d = http_def("/ok", 20);
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.hits >= 6);
	T_EQ(fx.recs[0].n, 1);
	teardown();
}

/* ---- TCP ---------------------------------------------------------------- */

TEST(tcp_open_and_closed)
{
	struct check_def d = { 0 };
	char open_addr[64], closed_addr[64], want[128];

	setup_with("127.0.0.1", false);
	snprintf(open_addr, sizeof(open_addr), "127.0.0.1:%u", fx.lf.port);
	snprintf(
	    closed_addr, sizeof(closed_addr), "127.0.0.1:%u", closed_port());
	d.kind = CHECK_TCP;
	d.interval_ms = 3600000;
	d.tcp = open_addr;
	start(&d, &fx.recs[0]);
	d.tcp = closed_addr;
	d.initial_status = "passing";
	start(&d, &fx.recs[1]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[1].n >= 1);
	snprintf(want, sizeof(want), "TCP connect %s: Success", open_addr);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	T_STREQ(last_output(&fx.recs[0]), want);
	snprintf(want, sizeof(want), "TCP connect %s: Connection refused",
	    closed_addr);
	T_STREQ(last_status(&fx.recs[1]), "critical");
	T_STREQ(last_output(&fx.recs[1]), want);
	T_EQ(fx.hits, 0); /* connected, sent nothing */
	teardown();
}

/* ---- scripts ------------------------------------------------------------ */

TEST(script_exit_codes)
{
	struct check_def d;

	setup();
	d = script_def("echo hello; exit 0", 3600000);
	start(&d, &fx.recs[0]);
	d = script_def("echo careful >&2; exit 1", 3600000);
	start(&d, &fx.recs[1]);
	d = script_def("echo bad; exit 2", 3600000);
	d.initial_status = "passing";
	start(&d, &fx.recs[2]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[1].n >= 1 && fx.recs[2].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	T_STREQ(last_output(&fx.recs[0]), "hello\n");
	T_STREQ(last_status(&fx.recs[1]), "warning");
	T_STREQ(last_output(&fx.recs[1]), "careful\n");
	T_STREQ(last_status(&fx.recs[2]), "critical");
	T_STREQ(last_output(&fx.recs[2]), "bad\n");
	teardown();
}

TEST(script_output_capped_and_made_text)
{
	struct check_def d;
	const char *out;
	size_t i;

	setup();
	/* Far more than a pipe holds: the script must not block on it. */
	d = script_def("head -c 300000 /dev/zero | tr '\\000' a", 3600000);
	d.output_max = 50;
	start(&d, &fx.recs[0]);
	d = script_def("printf 'ok\\377\\000!'", 3600000);
	start(&d, &fx.recs[1]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[1].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	out = last_output(&fx.recs[0]);
	T_EQ(strlen(out), 50);
	for (i = 0; i < 50; i++)
		T_EQ(out[i], 'a');
	T_STREQ(last_output(&fx.recs[1]), "ok\xef\xbf\xbd\xef\xbf\xbd!");
	teardown();
}

TEST(script_timeout_kills_the_group_and_reaps)
{
	struct check_def d;
	long pids[2];

	setup();
	d = script_def("sleep 30 & echo $! > \"$1/pids\"; "
	               "echo $$ >> \"$1/pids\"; wait",
	    3600000);
	d.timeout_ms = 300;
	d.initial_status = "passing";
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_STREQ(last_output(&fx.recs[0]), "Timed out (300ms) running check");
	T_EQ(read_ints("pids", pids, 2), 2);
	/* The shell was our child: reaped, so waitpid knows it no more. */
	T_EQ(waitpid((pid_t)pids[1], NULL, WNOHANG), -1);
	T_EQ(errno, ECHILD);
	T_ASSERT(not_running((pid_t)pids[1]));
	/* Its background child died with the group. */
	WAIT_FOR(not_running((pid_t)pids[0]));
	teardown();
}

TEST(script_runs_never_overlap)
{
	struct check_def d;
	long runs[8];

	setup();
	/* Each run holds a lock for 150 ms; the interval is 20 ms. A second
	 * run while one holds it would fail, and the check with it. */
	d = script_def("mkdir \"$1/lock\" || exit 2; echo 1 >> \"$1/runs\"; "
	               "sleep 0.15; rmdir \"$1/lock\"",
	    20);
	start(&d, &fx.recs[0]);
	WAIT_FOR(read_ints("runs", runs, 8) >= 4);
	T_EQ(fx.recs[0].n, 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	teardown();
}

TEST(script_refused_when_disabled)
{
	struct check_def d;
	struct dsc_err err = DSC_ERR_INIT;

	setup_with(NULL, false);
	d = script_def("exit 0", 1000);
	T_ASSERT(
	    checker_start(fx.ck, &d, on_report, &fx.recs[0], &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	T_STREQ(err.msg,
	    "script checks are disabled; start the agent with "
	    "--enable-script-checks");
	teardown();
}

TEST(script_missing_is_critical)
{
	struct check_def d = { 0 };

	setup();
	d.kind = CHECK_SCRIPT;
	d.args[0] = "/nonexistent/check";
	d.n_args = 1;
	d.interval_ms = 3600000;
	d.initial_status = "passing";
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_STREQ(last_output(&fx.recs[0]),
	    "unable to run '/nonexistent/check': No such file or directory");
	teardown();
}

/* ---- TTL ---------------------------------------------------------------- */

TEST(ttl_update_and_expiry)
{
	struct check_def d = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct check_run *run;
	long t0;

	setup();
	d.kind = CHECK_TTL;
	d.ttl_ms = 300;
	run = start(&d, &fx.recs[0]);
	T_STREQ(check_run_status(run), "critical");
	T_EQ(check_run_ttl(run, "passing", "fine", &err), 0);
	t0 = loop_now_ms();
	T_STREQ(check_run_status(run), "passing");
	T_STREQ(check_run_output(run), "fine");
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	T_STREQ(last_output(&fx.recs[0]), "fine");
	WAIT_FOR(fx.recs[0].n >= 2);
	T_ASSERT(loop_now_ms() - t0 >= 290);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_STREQ(last_output(&fx.recs[0]),
	    "TTL expired (last output before timeout follows): fine");
	T_EQ(check_run_ttl(run, "sleeping", NULL, &err), DSC_EINVAL);
	T_EQ(check_run_ttl(run, "warning", NULL, &err), 0);
	T_STREQ(check_run_output(run), "");
	WAIT_FOR(fx.recs[0].n >= 4);
	T_STREQ(fx.recs[0].status[2], "warning");
	T_STREQ(last_output(&fx.recs[0]), "TTL expired");
	teardown();
}

TEST(ttl_update_on_other_kinds_is_refused)
{
	struct check_def d;
	struct dsc_err err = DSC_ERR_INIT;

	setup();
	d = http_def("/ok", 3600000);
	T_EQ(check_run_ttl(start(&d, &fx.recs[0]), "passing", "x", &err),
	    DSC_EINVAL);
	teardown();
}

/* ---- thresholds --------------------------------------------------------- */

TEST(thresholds_hold_from_the_first_probe)
{
	struct check_def d;
	int base;

	setup();
	d = http_def("/ctl", 20);
	d.success_before_passing = 3;
	d.failures_before_warning = 1;
	d.failures_before_critical = 3;
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.recs[0].n >= 1);
	T_STREQ(last_status(&fx.recs[0]), "passing");
	T_ASSERT(fx.recs[0].hits[0] >= 3);
	base = fx.hits;
	fx.code = 500;
	WAIT_FOR(fx.recs[0].n >= 3);
	T_STREQ(fx.recs[0].status[1], "warning");
	T_STREQ(fx.recs[0].status[2], "critical");
	T_ASSERT(fx.recs[0].hits[1] >= base + 1);
	T_ASSERT(fx.recs[0].hits[2] >= base + 3);
	/* Failing again refreshes nothing: same status, same output. */
	loop_pump(&fx.lf, 100);
	T_EQ(fx.recs[0].n, 3);
	teardown();
}

TEST(thresholds_default_warning_is_the_critical_one)
{
	struct check_def d;
	int base;

	setup();
	d = http_def("/ctl", 20);
	d.failures_before_critical = 3;
	d.initial_status = "passing";
	start(&d, &fx.recs[0]);
	WAIT_FOR(fx.hits >= 2);
	T_EQ(fx.recs[0].n, 1); /* passing, with the output */
	base = fx.hits;
	fx.code = 503;
	WAIT_FOR(fx.recs[0].n >= 2);
	T_STREQ(last_status(&fx.recs[0]), "critical");
	T_ASSERT(fx.recs[0].hits[1] >= base + 3);
	teardown();
}

/* ---- stopping ----------------------------------------------------------- */

TEST(stop_from_inside_own_report)
{
	struct check_def d;
	int hits;

	setup();
	d = http_def("/ok", 20);
	fx.recs[0].act = ACT_STOP_SELF;
	start(&d, &fx.recs[0]);
	d = script_def("exit 1", 20);
	fx.recs[1].act = ACT_STOP_SELF;
	start(&d, &fx.recs[1]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[1].n >= 1);
	hits = fx.hits;
	loop_pump(&fx.lf, 200);
	T_EQ(fx.recs[0].n, 1);
	T_EQ(fx.recs[1].n, 1);
	T_EQ(fx.hits, hits);
	teardown();
}

TEST(free_checker_from_inside_a_report)
{
	struct check_def d;
	long pids[1];

	setup();
	/* Busy runs of every kind when the checker goes. */
	d = http_def("/slow", 20);
	start(&d, &fx.recs[0]);
	d = script_def("echo $$ > \"$1/pids\"; exec sleep 30", 20);
	start(&d, &fx.recs[1]);
	WAIT_FOR(read_ints("pids", pids, 1) == 1);
	d = http_def("/ok", 20);
	fx.recs[2].act = ACT_FREE_CHECKER;
	start(&d, &fx.recs[2]);
	WAIT_FOR(fx.ck == NULL);
	T_EQ(fx.recs[2].n, 1);
	/* The sleeping script was killed and reaped by checker_free. */
	T_EQ(waitpid((pid_t)pids[0], NULL, WNOHANG), -1);
	T_EQ(errno, ECHILD);
	T_ASSERT(not_running((pid_t)pids[0]));
	loop_pump(&fx.lf, 100);
	T_EQ(fx.recs[0].n, 0);
	T_EQ(fx.recs[1].n, 0);
	teardown();
}

TEST(stop_reaps_a_running_script)
{
	struct check_def d;
	struct check_run *run;
	long pids[1];

	setup();
	d = script_def("echo $$ > \"$1/pids\"; exec sleep 30", 3600000);
	run = start(&d, &fx.recs[0]);
	WAIT_FOR(read_ints("pids", pids, 1) == 1);
	check_run_stop(run);
	/* Killed at once; reaped on the loop when SIGCHLD comes. */
	WAIT_FOR(
	    waitpid((pid_t)pids[0], NULL, WNOHANG) == -1 && errno == ECHILD);
	T_ASSERT(not_running((pid_t)pids[0]));
	T_EQ(fx.recs[0].n, 0);
	teardown();
}

static int
count_fds(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

TEST(no_descriptor_left_behind)
{
	struct check_def d = { 0 };
	char addr[64];
	int before;

	teardown();
	before = count_fds();
	setup();
	d = http_def("/ok", 20);
	start(&d, &fx.recs[0]);
	d = http_def("/slow", 20);
	start(&d, &fx.recs[1]);
	d = script_def("echo hi; sleep 0.05", 20);
	start(&d, &fx.recs[2]);
	memset(&d, 0, sizeof(d));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", fx.lf.port);
	d.kind = CHECK_TCP;
	d.tcp = addr;
	d.interval_ms = 20;
	start(&d, &fx.recs[3]);
	WAIT_FOR(fx.recs[0].n >= 1 && fx.recs[2].n >= 1 && fx.recs[3].n >= 1);
	loop_pump(&fx.lf, 100);
	teardown();
	T_EQ(count_fds(), before);
}

/* ---- definitions -------------------------------------------------------- */

TEST(invalid_definitions_are_refused)
{
	struct check_def d;
	struct dsc_err err = DSC_ERR_INIT;
	const char *bad_urls[] = { "ftp://x/", "http://a b/", "", "http://\r/",
		"http://[::1/" };
	const char *bad_addrs[] = { "127.0.0.1", "127.0.0.1:0", ":80",
		"127.0.0.1:99999", "h/x:80", "::1:80", "[::1]:x" };
	size_t i;

	setup();
	for (i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		d = http_def("/", 1000);
		d.http = bad_urls[i];
		T_ASSERT(
		    checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
		T_EQ(err.code, DSC_EINVAL);
	}
	for (i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
		memset(&d, 0, sizeof(d));
		d.kind = CHECK_TCP;
		d.interval_ms = 1000;
		d.tcp = bad_addrs[i];
		T_ASSERT(
		    checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
		T_EQ(err.code, DSC_EINVAL);
	}
	d = http_def("/", 0);
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d = http_def("/", 1000);
	d.initial_status = "fine";
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d.initial_status = NULL;
	d.headers[0] = "X-A: 1\r\nX-B: 2";
	d.n_headers = 1;
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d.headers[0] = "No colon";
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d.n_headers = 0;
	d.method = "GE T";
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d = script_def("exit 0", 1000);
	d.args[0] = "";
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	d.n_args = 0;
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	T_EQ(err.code, DSC_EINVAL);
	memset(&d, 0, sizeof(d));
	d.kind = CHECK_TTL;
	T_ASSERT(checker_start(fx.ck, &d, on_report, NULL, &err) == NULL);
	/* What passes: an IPv6 address, a host name. */
	memset(&d, 0, sizeof(d));
	d.kind = CHECK_TCP;
	d.interval_ms = 3600000;
	d.tcp = "[::1]:1";
	T_ASSERT(start(&d, &fx.recs[0]) != NULL);
	d.tcp = "localhost:1";
	T_ASSERT(start(&d, &fx.recs[1]) != NULL);
	teardown();
}

TEST(start_survives_allocation_failures)
{
	struct check_def d;
	struct dsc_err err = DSC_ERR_INIT;
	struct check_run *run;
	long n;

	setup();
	d = http_def("/echo", 3600000);
	d.method = "POST";
	d.body = "b";
	d.headers[0] = "X-Test: 1";
	d.n_headers = 1;
	for (n = 0; n < 40; n++) {
		dsc_mem_fail_after(n);
		run = checker_start(fx.ck, &d, on_report, &fx.recs[0], &err);
		dsc_mem_fail_after(-1);
		if (run == NULL) {
			T_EQ(err.code, DSC_ENOMEM);
			continue;
		}
		check_run_stop(run);
	}
	for (n = 0; n < 10; n++) {
		struct checker *ck;

		dsc_mem_fail_after(n);
		ck = checker_new(fx.lf.base, "127.0.0.1", true, &err);
		dsc_mem_fail_after(-1);
		T_ASSERT(ck != NULL || err.code == DSC_ENOMEM);
		checker_free(ck);
	}
	teardown();
}

TEST(probes_survive_allocation_failures)
{
	const char *want[] = { "all good", "fine", "Success" };
	struct check_def d = { 0 };
	char addr[64];
	long n;
	int i;

	setup();
	/* A socket curl could not have watched ends at the timeout. */
	d = http_def("/ok", 10);
	d.timeout_ms = 300;
	start(&d, &fx.recs[0]);
	d = script_def("echo fine", 10);
	start(&d, &fx.recs[1]);
	memset(&d, 0, sizeof(d));
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", fx.lf.port);
	d.kind = CHECK_TCP;
	d.tcp = addr;
	d.interval_ms = 10;
	d.timeout_ms = 300;
	start(&d, &fx.recs[2]);
	d.kind = CHECK_TTL;
	d.ttl_ms = 5;
	start(&d, &fx.recs[3]);
	for (n = 0; n < 12; n++) {
		dsc_mem_fail_after(n);
		loop_pump(&fx.lf, 30);
		(void)check_run_ttl(fx.recs[3].run, "passing", "x", NULL);
		dsc_mem_fail_after(-1);
	}
	/* With memory back, every check finds its way to the truth. */
	for (i = 0; i < 3; i++)
		WAIT_FOR(
		    strcmp(check_run_status(fx.recs[i].run), "passing") == 0 &&
		    strstr(check_run_output(fx.recs[i].run), want[i]) != NULL);
	teardown();
}

T_MAIN()

/*
 * checks.c - the runs of health checks: validation and copies of their
 * definitions, the schedule (first probe at once, then one interval after
 * the last probe ended), TTLs, the thresholds, and the reports.
 *
 * Reports never run inside a probe's code: a change of state activates the
 * run's report event, and deliver() calls the callback from the loop with
 * nothing of ours on the stack but itself. That is what lets a callback
 * stop any run, its own included, or free the whole checker: deliver()
 * marks both as in use, and a stop or free asked for meanwhile is finished
 * by deliver() once the callback returns.
 */
#include "checks.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "checks_internal.h"
#include "mem.h"

/* The second probe comes up to a tenth of the interval late, at most
 * this much. */
#define STAGGER_MAX_MS 10000

const char *const checks_status_names[] = { "passing", "warning", "critical" };

static const char *
bstr(const struct buf *b)
{
	return b->p != NULL ? (const char *)b->p : "";
}

static int
status_parse(const char *s, enum check_status *st)
{
	size_t i;

	for (i = 0; i <= CHECK_CRITICAL; i++) {
		if (strcmp(s, checks_status_names[i]) == 0) {
			*st = (enum check_status)i;
			return 0;
		}
	}
	return DSC_EINVAL;
}

static struct timeval
ms_tv(uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)(ms % 1000 * 1000) };

	return tv;
}

/* ---- output ------------------------------------------------------------ */

/*
 * The length of the well-formed UTF-8 sequence at @p (RFC 3629, Unicode
 * table 3-7: the lead byte fixes the range of the second byte, which rules
 * out overlongs, surrogates and values past U+10FFFF), 0 when there is
 * none. NUL counts as ill-formed: outputs are C strings.
 */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
	uint8_t lo = 0x80, hi = 0xbf;
	size_t len, k;

	if (p[0] >= 0x01 && p[0] <= 0x7f)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (k = 2; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

/*
 * Appends @p to @dst as valid UTF-8 without NUL, each ill-formed byte
 * replaced by U+FFFD (as Go's JSON encoder does), stopping before @dst
 * would pass @cap bytes. Probe output is any bytes at all; the catalog and
 * every JSON encoder downstream want text.
 */
static int
utf8_sanitize(struct buf *dst, const uint8_t *p, size_t n, size_t cap)
{
	static const uint8_t repl[] = { 0xef, 0xbf, 0xbd };
	size_t i = 0, len;
	int rc;

	while (i < n) {
		len = utf8_len(p + i, n - i);
		if (dst->len + (len > 0 ? len : sizeof(repl)) > cap)
			break;
		if (len > 0)
			rc = buf_add(dst, p + i, len);
		else
			rc = buf_add(dst, repl, sizeof(repl));
		if (rc != 0)
			return rc;
		i += len > 0 ? len : 1;
	}
	return 0;
}

/* ---- state and reports ------------------------------------------------- */

/*
 * Sets the run's state, and when it changed, has it reported. An output
 * that cannot be copied for want of memory is replaced by "" rather than
 * keeping a stale one beside a new status.
 */
static void
set_state(struct check_run *run, enum check_status st, const void *out,
    size_t len, size_t cap)
{
	struct buf tmp = BUF_INIT;

	if (utf8_sanitize(&tmp, out, len, cap) != 0)
		buf_release(&tmp);
	if (st == run->status && strcmp(bstr(&tmp), bstr(&run->output)) == 0) {
		buf_release(&tmp);
		return;
	}
	buf_release(&run->output);
	run->output = tmp;
	run->status = st;
	event_active(run->report, EV_TIMEOUT, 0);
}

static void
run_free(struct check_run *run)
{
	struct checker *ck = run->ck;
	size_t i;

	if (run->def.kind == CHECK_SCRIPT)
		checks_script_cancel(run);
	else if (run->def.kind != CHECK_TTL)
		checks_curl_cancel(run);
	if (run->prev != NULL)
		run->prev->next = run->next;
	else
		ck->runs = run->next;
	if (run->next != NULL)
		run->next->prev = run->prev;
	if (run->timer != NULL)
		event_free(run->timer);
	if (run->report != NULL)
		event_free(run->report);
	buf_release(&run->output);
	buf_release(&run->rep_output);
	dsc_free((char *)run->def.http);
	dsc_free((char *)run->def.method);
	dsc_free((char *)run->def.body);
	dsc_free((char *)run->def.tcp);
	dsc_free((char *)run->def.initial_status);
	for (i = 0; i < run->def.n_headers; i++)
		dsc_free((char *)run->def.headers[i]);
	for (i = 0; i < run->def.n_args; i++)
		dsc_free((char *)run->def.args[i]);
	dsc_free(run);
}

static void
checker_destroy(struct checker *ck)
{
	while (ck->runs != NULL)
		run_free(ck->runs);
	checks_curl_release(ck);
	checks_script_release(ck);
	dsc_free(ck->bind_ip);
	dsc_free(ck->curl_iface);
	dsc_free(ck);
	curl_global_cleanup();
}

/* The report event: the only place a report callback is called from. */
static void
deliver(evutil_socket_t fd, short what, void *arg)
{
	struct check_run *run = arg;
	struct checker *ck = run->ck;

	(void)fd;
	(void)what;
	if (run->status == run->rep_status &&
	    strcmp(bstr(&run->output), bstr(&run->rep_output)) == 0)
		return;
	run->rep_status = run->status;
	buf_clear(&run->rep_output);
	if (buf_add(&run->rep_output, run->output.p, run->output.len) != 0)
		buf_clear(&run->rep_output);
	run->in_report = true;
	ck->in_report++;
	if (run->fn != NULL)
		run->fn(checks_status_names[run->rep_status],
		    bstr(&run->rep_output), run->arg);
	ck->in_report--;
	run->in_report = false;
	if (run->stopped)
		run_free(run);
	if (ck->dying && ck->in_report == 0)
		checker_destroy(ck);
}

/* ---- schedule ---------------------------------------------------------- */

static void
arm(struct check_run *run, uint64_t ms)
{
	struct timeval tv = ms_tv(ms);

	evtimer_add(run->timer, &tv);
}

/*
 * Consul's StatusHandler, with one deliberate difference: the counters
 * start at 0, not at the thresholds, so the thresholds hold from the first
 * probe on (hashicorp/consul#10256, hashicorp/nomad#9189: a check with
 * SuccessBeforePassing 3 must not pass on its first success). Warning
 * counts as a success, as in Consul. A result below its threshold still
 * refreshes the output when it agrees with the current status.
 */
void
checks_probe_done(struct check_run *run, enum check_status st, const void *out,
    size_t len, size_t cap)
{
	const struct check_def *d = &run->def;
	uint64_t next = d->interval_ms, stagger;

	run->probing = false;
	if (st != CHECK_CRITICAL) {
		run->failures = 0;
		if (run->successes < UINT_MAX)
			run->successes++;
		if (run->successes >= d->success_before_passing ||
		    st == run->status)
			set_state(run, st, out, len, cap);
	} else {
		run->successes = 0;
		if (run->failures < UINT_MAX)
			run->failures++;
		if (run->failures >= d->failures_before_critical ||
		    run->status == CHECK_CRITICAL)
			set_state(run, CHECK_CRITICAL, out, len, cap);
		else if (run->failures >= d->failures_before_warning ||
		    run->status == CHECK_WARNING)
			set_state(run, CHECK_WARNING, out, len, cap);
	}
	/* Checks started together (an agent's start) would otherwise probe
	 * in step forever; one random delay spreads them out for good. */
	if (!run->probed_once) {
		stagger = d->interval_ms / 10;
		if (stagger > STAGGER_MAX_MS)
			stagger = STAGGER_MAX_MS;
		next += prng_below(&run->ck->prng, stagger + 1);
	}
	run->probed_once = true;
	arm(run, next);
}

static void
ttl_expired(struct check_run *run)
{
	struct buf out = BUF_INIT;

	if (run->output.len == 0 ||
	    buf_addf(&out,
	        "TTL expired (last output before timeout "
	        "follows): %s",
	        bstr(&run->output)) != 0) {
		set_state(run, CHECK_CRITICAL, "TTL expired", 11, SIZE_MAX);
	} else {
		set_state(run, CHECK_CRITICAL, out.p, out.len, SIZE_MAX);
	}
	buf_release(&out);
}

static void
probe_start(struct check_run *run)
{
	struct dsc_err err = DSC_ERR_INIT;
	int rc;

	run->probing = true;
	if (run->def.kind == CHECK_SCRIPT)
		rc = checks_script_start(run, &err);
	else
		rc = checks_curl_start(run, &err);
	if (rc != 0) {
		checks_probe_done(run, CHECK_CRITICAL, err.msg, strlen(err.msg),
		    run->def.output_max);
		return;
	}
	if (run->def.kind == CHECK_SCRIPT)
		arm(run, run->def.timeout_ms);
}

static void
timer_fired(evutil_socket_t fd, short what, void *arg)
{
	struct check_run *run = arg;

	(void)fd;
	(void)what;
	if (run->def.kind == CHECK_TTL)
		ttl_expired(run);
	else if (run->probing)
		checks_script_timeout(run);
	else
		probe_start(run);
}

/* ---- definitions ------------------------------------------------------- */

static bool
is_token(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0' && n <= max; n++)
		if (!isalnum((unsigned char)s[n]) &&
		    strchr("!#$%&'*+-.^_`|~", s[n]) == NULL)
			return false;
	return n > 0 && n <= max;
}

static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A "Name: value" header line a request can carry as it is. */
static int
check_header(const char *h, struct dsc_err *err)
{
	const char *colon;
	char name[CHECK_HEADER_MAX + 1];

	if (h == NULL || strlen(h) > CHECK_HEADER_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "header longer than %d bytes", CHECK_HEADER_MAX);
	colon = strchr(h, ':');
	if (colon == NULL)
		return dsc_errorf(
		    err, DSC_EINVAL, "header '%.64s' is not 'Name: value'", h);
	memcpy(name, h, (size_t)(colon - h));
	name[colon - h] = '\0';
	if (!is_token(name, CHECK_HEADER_MAX) || has_ctl(colon))
		return dsc_errorf(err, DSC_EINVAL, "invalid header '%.64s'", h);
	return 0;
}

/* "host:port", host a name, an IPv4 address or a bracketed IPv6 one. */
static int
check_tcp_addr(const char *a, struct dsc_err *err)
{
	const char *colon = a != NULL ? strrchr(a, ':') : NULL;
	size_t hlen;
	char *end;
	long port;

	if (colon == NULL || strlen(a) > CHECK_ADDR_MAX)
		goto bad;
	hlen = (size_t)(colon - a);
	if (hlen == 0 || colon[1] == '\0' || !isdigit((unsigned char)colon[1]))
		goto bad;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		goto bad;
	if (a[0] == '[') {
		if (hlen < 3 || a[hlen - 1] != ']' ||
		    strspn(a + 1, "0123456789abcdefABCDEF:.") != hlen - 2)
			goto bad;
	} else if (strspn(a,
	               "0123456789abcdefghijklmnopqrstuvwxyz"
	               "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_") != hlen) {
		goto bad;
	}
	return 0;
bad:
	return dsc_errorf(err, DSC_EINVAL,
	    "invalid TCP check address '%.64s': want host:port", a ? a : "");
}

static int
check_http(const struct check_def *d, struct dsc_err *err)
{
	CURLU *u;
	CURLUcode uc;
	size_t i;

	if (d->http == NULL || strlen(d->http) > CHECK_URL_MAX ||
	    has_ctl(d->http) || strchr(d->http, ' ') != NULL ||
	    (strncasecmp(d->http, "http://", 7) != 0 &&
	        strncasecmp(d->http, "https://", 8) != 0))
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid HTTP check URL '%.64s': want http:// or https://",
		    d->http ? d->http : "");
	if ((u = curl_url()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	uc = curl_url_set(u, CURLUPART_URL, d->http, 0);
	curl_url_cleanup(u);
	if (uc == CURLUE_OUT_OF_MEMORY)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	if (uc != CURLUE_OK)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid HTTP check URL '%.64s': %s", d->http,
		    curl_url_strerror(uc));
	if (d->method != NULL && !is_token(d->method, CHECK_METHOD_MAX))
		return dsc_errorf(
		    err, DSC_EINVAL, "invalid HTTP method '%.32s'", d->method);
	if (d->body != NULL && strlen(d->body) > CHECK_BODY_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "HTTP check body longer than %d bytes", CHECK_BODY_MAX);
	if (d->n_headers > CHECK_HEADERS_MAX)
		return dsc_errorf(
		    err, DSC_EINVAL, "more than %d headers", CHECK_HEADERS_MAX);
	for (i = 0; i < d->n_headers; i++)
		if (check_header(d->headers[i], err) != 0)
			return err != NULL ? err->code : DSC_EINVAL;
	return 0;
}

static int
check_script(const struct check_def *d, struct dsc_err *err)
{
	size_t i;

	if (d->n_args == 0 || d->n_args >= CHECK_ARGS_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "a script check needs 1 to %d arguments",
		    CHECK_ARGS_MAX - 1);
	for (i = 0; i < d->n_args; i++)
		if (d->args[i] == NULL || strlen(d->args[i]) > CHECK_ARG_MAX)
			return dsc_errorf(err, DSC_EINVAL,
			    "script argument %zu missing or longer than %d "
			    "bytes",
			    i, CHECK_ARG_MAX);
	if (d->args[0][0] == '\0')
		return dsc_errorf(err, DSC_EINVAL, "empty script name");
	return 0;
}

static int
check_def_valid(const struct checker *ck, const struct check_def *d,
    enum check_status *initial, struct dsc_err *err)
{
	uint64_t period = d->kind == CHECK_TTL ? d->ttl_ms : d->interval_ms;

	if (d->kind == CHECK_SCRIPT && !ck->allow_scripts)
		return dsc_errorf(err, DSC_EINVAL,
		    "script checks are disabled; start the agent with "
		    "--enable-script-checks");
	if ((int)d->kind < CHECK_TTL || d->kind > CHECK_SCRIPT)
		return dsc_errorf(
		    err, DSC_EINVAL, "unknown check kind %d", (int)d->kind);
	if (period == 0 || period > CHECK_DURATION_MAX_MS)
		return dsc_errorf(err, DSC_EINVAL,
		    "check %s must be between 1 ms and %d days",
		    d->kind == CHECK_TTL ? "TTL" : "interval",
		    CHECK_DURATION_MAX_DAYS);
	if (d->timeout_ms > CHECK_DURATION_MAX_MS)
		return dsc_errorf(err, DSC_EINVAL,
		    "check timeout longer than %d days",
		    CHECK_DURATION_MAX_DAYS);
	if (d->output_max > CHECK_OUTPUT_MAX_LIMIT)
		return dsc_errorf(err, DSC_EINVAL,
		    "check output limit above %d bytes",
		    CHECK_OUTPUT_MAX_LIMIT);
	*initial = CHECK_CRITICAL;
	if (d->initial_status != NULL &&
	    status_parse(d->initial_status, initial) != 0)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid check status '%.32s': want passing, warning or "
		    "critical",
		    d->initial_status);
	switch (d->kind) {
	case CHECK_HTTP:
		return check_http(d, err);
	case CHECK_TCP:
		return check_tcp_addr(d->tcp, err);
	case CHECK_SCRIPT:
		return check_script(d, err);
	case CHECK_TTL:
		break;
	}
	return 0;
}

static int
dup_str(const char **field)
{
	if (*field == NULL)
		return 0;
	*field = dsc_strdup(*field);
	return *field != NULL ? 0 : DSC_ENOMEM;
}

/*
 * Copies @d's strings into @run->def, which already holds @d by value; on
 * failure the pointers not yet copied are cleared, so run_free() frees
 * exactly the copies.
 */
static int
copy_def(struct check_run *run)
{
	struct check_def *d = &run->def;
	const char **fields[] = { &d->http, &d->method, &d->body, &d->tcp,
		&d->initial_status };
	size_t i, n = sizeof(fields) / sizeof(fields[0]);
	int rc = 0;

	for (i = 0; i < n; i++)
		if (rc != 0)
			*fields[i] = NULL;
		else
			rc = dup_str(fields[i]);
	for (i = 0; i < d->n_headers; i++)
		if (rc != 0)
			d->headers[i] = NULL;
		else
			rc = dup_str(&d->headers[i]);
	for (i = 0; i < d->n_args; i++)
		if (rc != 0)
			d->args[i] = NULL;
		else
			rc = dup_str(&d->args[i]);
	d->args[d->n_args] = NULL;
	return rc;
}

/* ---- interface --------------------------------------------------------- */

struct checker *
checker_new(struct event_base *base, const char *bind_ip, bool allow_scripts,
    struct dsc_err *err)
{
	struct checker *ck;
	uint64_t seed;

	if (bind_ip != NULL &&
	    (strlen(bind_ip) > CHECK_ADDR_MAX || has_ctl(bind_ip))) {
		dsc_errorf(
		    err, DSC_EINVAL, "invalid source address '%.64s'", bind_ip);
		return NULL;
	}
	if (sodium_init() < 0) {
		dsc_errorf(err, DSC_EIO, "unable to initialise libsodium");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		dsc_errorf(err, DSC_EIO, "unable to initialise libcurl");
		return NULL;
	}
	if ((ck = dsc_calloc(1, sizeof(*ck))) == NULL) {
		curl_global_cleanup();
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	ck->base = base;
	ck->allow_scripts = allow_scripts;
	randombytes_buf(&seed, sizeof(seed));
	prng_seed(&ck->prng, seed);
	if (bind_ip != NULL) {
		struct buf b = BUF_INIT;

		ck->bind_ip = dsc_strdup(bind_ip);
		if (ck->bind_ip == NULL ||
		    buf_addf(&b, "host!%s", bind_ip) != 0) {
			checker_destroy(ck);
			dsc_errorf(err, DSC_ENOMEM, "out of memory");
			return NULL;
		}
		ck->curl_iface = (char *)buf_detach(&b, NULL);
	}
	if (checks_curl_init(ck, err) != 0 ||
	    (allow_scripts && checks_script_init(ck, err) != 0)) {
		checker_destroy(ck);
		return NULL;
	}
	return ck;
}

void
checker_free(struct checker *ck)
{
	struct check_run *run, *next;

	if (ck == NULL || ck->dying)
		return;
	for (run = ck->runs; run != NULL; run = next) {
		next = run->next;
		check_run_stop(run);
	}
	if (ck->in_report > 0) {
		ck->dying = true;
		return;
	}
	checker_destroy(ck);
}

struct check_run *
checker_start(struct checker *ck, const struct check_def *def,
    check_report_fn *fn, void *arg, struct dsc_err *err)
{
	struct check_run *run;
	enum check_status initial = CHECK_CRITICAL;

	if (ck->dying) {
		dsc_errorf(err, DSC_ESTOPPED, "checker is shutting down");
		return NULL;
	}
	if (check_def_valid(ck, def, &initial, err) != 0)
		return NULL;
	if ((run = dsc_calloc(1, sizeof(*run))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	run->ck = ck;
	run->next = ck->runs;
	if (ck->runs != NULL)
		ck->runs->prev = run;
	ck->runs = run;
	run->def = *def;
	run->fn = fn;
	run->arg = arg;
	run->pid = -1;
	run->pipe_fd = -1;
	run->status = run->rep_status = initial;
	if (run->def.output_max == 0)
		run->def.output_max = CHECK_OUTPUT_MAX_DEFAULT;
	if (run->def.timeout_ms == 0)
		run->def.timeout_ms = CHECK_TIMEOUT_MS_DEFAULT;
	/* Consul: FailuresBeforeWarning defaults to FailuresBeforeCritical,
	 * so a failing check does not pass through warning unless asked. */
	if (run->def.failures_before_warning == 0)
		run->def.failures_before_warning =
		    run->def.failures_before_critical;
	run->timer = evtimer_new(ck->base, timer_fired, run);
	run->report = event_new(ck->base, -1, 0, deliver, run);
	if (copy_def(run) != 0 || run->timer == NULL || run->report == NULL) {
		run_free(run);
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	arm(run, def->kind == CHECK_TTL ? def->ttl_ms : 0);
	return run;
}

void
check_run_stop(struct check_run *run)
{
	if (run == NULL || run->stopped)
		return;
	run->stopped = true;
	if (run->def.kind == CHECK_SCRIPT)
		checks_script_cancel(run);
	else if (run->def.kind != CHECK_TTL)
		checks_curl_cancel(run);
	event_del(run->timer);
	event_del(run->report);
	if (!run->in_report)
		run_free(run);
}

int
check_run_ttl(struct check_run *run, const char *status, const char *output,
    struct dsc_err *err)
{
	enum check_status st;

	if (run->def.kind != CHECK_TTL)
		return dsc_errorf(err, DSC_EINVAL, "not a TTL check");
	if (status == NULL || status_parse(status, &st) != 0)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid check status '%.32s': want passing, warning or "
		    "critical",
		    status ? status : "");
	if (run->stopped)
		return dsc_errorf(err, DSC_ESTOPPED, "check stopped");
	if (output == NULL)
		output = "";
	set_state(run, st, output, strlen(output), run->def.output_max);
	arm(run, run->def.ttl_ms);
	return 0;
}

const char *
check_run_status(const struct check_run *run)
{
	return checks_status_names[run->status];
}

const char *
check_run_output(const struct check_run *run)
{
	return bstr(&run->output);
}

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

#include <limits.h>
#include <string.h>
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
	checks_def_release(&run->def);
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

/* ---- interface --------------------------------------------------------- */

struct checker *
checker_new(struct event_base *base, const char *bind_ip, bool allow_scripts,
    struct dsc_err *err)
{
	struct checker *ck;
	uint64_t seed;

	if (bind_ip != NULL && checks_bind_valid(bind_ip, err) != 0)
		return NULL;
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
	if (checks_def_valid(ck->allow_scripts, def, &initial, err) != 0)
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
	if (checks_def_copy(&run->def) != 0 || run->timer == NULL ||
	    run->report == NULL) {
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
	if (status == NULL || checks_status_parse(status, &st) != 0)
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

/*
 * checks.h - the health checks an agent runs (consul-api.md 2.7).
 *
 * Kinds: TTL (critical with output "TTL expired" unless updated within the
 * TTL), HTTP (2xx passing, 429 warning, anything else or no answer
 * critical; output "HTTP GET <url>: 200 OK Output: <body>"), TCP (connect
 * within the timeout: passing), script (an argument vector run without a
 * shell, only when the checker allows scripts: exit 0 passing, 1 warning,
 * else critical; output is stdout+stderr). Output is capped at
 * output_max bytes. Every check but TTL runs first at once (not one
 * interval later), then every interval; a run that overstays its timeout
 * is critical (a script is killed, its process group with it). Thresholds:
 * a result must repeat success_before_passing times before the status
 * turns passing, failures_before_warning / failures_before_critical times
 * before it turns warning / critical (0 or 1: at once; a warning threshold
 * of 0 means the critical one, as in Consul). Unlike Consul the thresholds
 * hold from the first probe on (hashicorp/consul#10256). Warning counts as
 * a success. A result below its threshold that agrees with the current
 * status still refreshes the output.
 *
 * Outputs are valid UTF-8 without NUL (ill-formed bytes become U+FFFD), so
 * they can go into JSON as they are. An HTTP check reads at most
 * output_max bytes of the body; a script's output beyond output_max is
 * read and dropped. A TTL that expires makes the output "TTL expired", or
 * "TTL expired (last output before timeout follows): <output>" as Consul
 * words it. A script that overstays its timeout: "Timed out (10s) running
 * check". HTTP checks do not follow redirects (a 3xx is critical), use no
 * proxy and open a fresh connection every time.
 *
 * Nothing here blocks the loop: HTTP through libcurl's multi interface,
 * TCP with non-blocking connects (curl's too, which resolve names without
 * blocking), scripts with fork/exec, a pipe and SIGCHLD handled on the
 * loop.
 */
#ifndef DSC_CHECKS_H
#define DSC_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "err.h"

#define CHECK_OUTPUT_MAX_DEFAULT 4096
#define CHECK_TIMEOUT_MS_DEFAULT 10000
#define CHECK_ARGS_MAX 64
#define CHECK_HEADERS_MAX 32
/* Limits on definitions; checker_start refuses more (DSC_EINVAL). */
#define CHECK_OUTPUT_MAX_LIMIT (1024 * 1024)
#define CHECK_DURATION_MAX_DAYS 366 /* interval, TTL, timeout */
#define CHECK_DURATION_MAX_MS (UINT64_C(86400000) * CHECK_DURATION_MAX_DAYS)
#define CHECK_URL_MAX 4096
#define CHECK_METHOD_MAX 32
#define CHECK_HEADER_MAX 8192   /* one "Name: value" */
#define CHECK_BODY_MAX 65536
#define CHECK_ADDR_MAX 300      /* "host:port", a source address */
#define CHECK_ARG_MAX 4096      /* one script argument */

enum check_kind { CHECK_TTL, CHECK_HTTP, CHECK_TCP, CHECK_SCRIPT };

struct check_def {
	enum check_kind kind;
	uint64_t interval_ms;  /* HTTP, TCP, script; > 0 */
	uint64_t timeout_ms;   /* 0: CHECK_TIMEOUT_MS_DEFAULT */
	uint64_t ttl_ms;       /* TTL */
	const char *http;      /* URL */
	const char *method;    /* NULL: GET */
	const char *body;      /* NULL: none */
	const char *headers[CHECK_HEADERS_MAX]; /* "Name: value" */
	size_t n_headers;
	bool tls_skip_verify;
	const char *tcp;       /* "host:port" */
	const char *args[CHECK_ARGS_MAX]; /* script argv, NULL-terminated */
	size_t n_args;
	unsigned success_before_passing;
	unsigned failures_before_warning;
	unsigned failures_before_critical;
	size_t output_max;     /* 0: CHECK_OUTPUT_MAX_DEFAULT */
	const char *initial_status; /* "passing"/"warning"/"critical"; NULL:
				     * critical */
};

/* A status change (or, for the same status, a new output): @status is
 * "passing", "warning" or "critical"; both strings are borrowed for the
 * call. */
typedef void check_report_fn(const char *status, const char *output,
    void *arg);

struct checker;
struct check_run;

/* A checker on @base; @bind_ip (copied, NULL: any) is the source address of
 * HTTP and TCP checks; scripts run only when @allow_scripts. */
struct checker *checker_new(struct event_base *base, const char *bind_ip,
    bool allow_scripts, struct dsc_err *err);
/*
 * Stops every run (killing scripts) and frees; the runs' handles die with
 * it. NULL is a no-op. Safe from inside a report callback (the freeing
 * then completes when the callback returns). Scripts killed here are
 * reaped here, waiting for SIGKILL to take effect.
 */
void checker_free(struct checker *ck);

/*
 * Starts running @def (copied). @fn is called from the loop on every change
 * of status or output, never from inside this call. A script check on a
 * checker without allow_scripts is DSC_EINVAL ("script checks are
 * disabled; start the agent with --enable-script-checks").
 */
struct check_run *checker_start(struct checker *ck, const struct check_def *def,
    check_report_fn *fn, void *arg, struct dsc_err *err);
/*
 * Stops @run (no more reports; a script in flight is killed) and frees it.
 * NULL is a no-op. Safe from any report callback, @run's own included.
 */
void check_run_stop(struct check_run *run);
/*
 * A TTL update: sets the status and output (NULL: "", capped at
 * output_max) now, reports it like any change, and restarts the TTL.
 * DSC_EINVAL for a check that is not a TTL check or a status other than
 * "passing", "warning" or "critical".
 */
int check_run_ttl(struct check_run *run, const char *status,
    const char *output, struct dsc_err *err);
/* The current status and output (borrowed). */
const char *check_run_status(const struct check_run *run);
const char *check_run_output(const struct check_run *run);

#endif

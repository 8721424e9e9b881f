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
 * before it turns warning / critical (0 or 1: at once).
 *
 * Nothing here blocks the loop: HTTP through libcurl's multi interface,
 * TCP with non-blocking connects, scripts with fork/exec, a pipe and
 * SIGCHLD handled on the loop.
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
/* Stops every run (killing scripts) and frees. NULL is a no-op. */
void checker_free(struct checker *ck);

/*
 * Starts running @def (copied). @fn is called from the loop on every change
 * of status or output, never from inside this call. A script check on a
 * checker without allow_scripts is DSC_EINVAL ("script checks are
 * disabled; start the agent with --enable-script-checks").
 */
struct check_run *checker_start(struct checker *ck, const struct check_def *def,
    check_report_fn *fn, void *arg, struct dsc_err *err);
/* Stops @run (no more reports). NULL is a no-op. */
void check_run_stop(struct check_run *run);
/* A TTL update: sets the status and output now and restarts the TTL. */
int check_run_ttl(struct check_run *run, const char *status,
    const char *output, struct dsc_err *err);
/* The current status and output (borrowed). */
const char *check_run_status(const struct check_run *run);
const char *check_run_output(const struct check_run *run);

#endif

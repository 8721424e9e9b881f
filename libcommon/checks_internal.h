/*
 * checks_internal.h - what checks.c (runs, schedule, thresholds, reports),
 * checks_def.c (definitions), checks_curl.c (HTTP and TCP probes on libcurl's
 * multi interface) and checks_script.c (script probes) share. Not for other
 * modules: checks.h is the interface.
 *
 * A run is idle (its timer counts down to the next probe) or probing (one
 * probe in flight; for a script the same timer is the probe's timeout).
 * The next probe is armed only when the last one has finished, so probes of
 * one run never overlap. Probes end in checks_probe_done(), which applies
 * the thresholds; reports go out from a separate event (checks.c deliver),
 * so no user code ever runs inside curl's or a probe's callbacks, and a
 * report callback may stop any run or free the checker.
 */
#ifndef DSC_CHECKS_INTERNAL_H
#define DSC_CHECKS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "buf.h"
#include "checks.h"
#include "curlev.h"
#include "prng.h"

enum check_status { CHECK_PASSING, CHECK_WARNING, CHECK_CRITICAL };

struct checker {
	struct event_base *base;
	char *bind_ip;    /* NULL: any */
	char *curl_iface; /* "host!<bind_ip>" for CURLOPT_INTERFACE */
	bool allow_scripts;
	struct curlev *cv;
	struct event *sigchld; /* NULL unless allow_scripts */
	pid_t *orphans;        /* killed scripts of stopped runs, to reap */
	size_t n_orphans, cap_orphans;
	struct check_run *runs;
	struct prng prng;
	int in_report; /* a report callback is running */
	bool dying;    /* checker_free was called from a report */
};

struct check_run {
	struct checker *ck;
	struct check_run *prev, *next;
	struct check_def def; /* strings owned by the run */
	check_report_fn *fn;
	void *arg;
	struct event *timer;  /* next probe, TTL, or a script's timeout */
	struct event *report; /* activated when the state changed */
	enum check_status status;
	struct buf output;
	/* What the last report said; what report callbacks borrow. */
	enum check_status rep_status;
	struct buf rep_output;
	unsigned successes, failures; /* consecutive, for the thresholds */
	bool probing, probed_once, stopped, in_report;

	/* HTTP and TCP */
	CURL *easy;
	struct curl_slist *hdrs;
	struct buf body; /* the answer's first output_max bytes */
	bool body_full;  /* and we stopped reading there */
	char reason[64]; /* the status line's reason phrase */
	char errbuf[CURL_ERROR_SIZE];

	/* script */
	pid_t pid;   /* > 0 while not reaped */
	int pipe_fd; /* -1 when closed */
	struct event *pipe_ev;
	bool timed_out;
};

extern const char *const checks_status_names[];

/* A probe's result: thresholds, then state and report. @out is sanitized
 * and capped at @cap bytes. Arms the next probe. */
void checks_probe_done(struct check_run *run, enum check_status st,
    const void *out, size_t len, size_t cap);

/* checks_def.c */
int checks_status_parse(const char *s, enum check_status *st);
/* 0 when @d may run (*@initial: its first status), else DSC_EINVAL. */
int checks_def_valid(bool allow_scripts, const struct check_def *d,
    enum check_status *initial, struct dsc_err *err);
/*
 * Replaces @d's borrowed strings with copies: DSC_ENOMEM when one fails,
 * and then the pointers not yet copied are cleared, so checks_def_release
 * frees exactly the copies.
 */
int checks_def_copy(struct check_def *d);
void checks_def_release(struct check_def *d);
int checks_bind_valid(const char *ip, struct dsc_err *err);

/* checks_curl.c */
int checks_curl_init(struct checker *ck, struct dsc_err *err);
void checks_curl_release(struct checker *ck);
/* Starts an HTTP or TCP probe; 0 or DSC_E* with @err set. */
int checks_curl_start(struct check_run *run, struct dsc_err *err);
/* Abandons the probe in flight, if any. */
void checks_curl_cancel(struct check_run *run);

/* checks_script.c */
int checks_script_init(struct checker *ck, struct dsc_err *err);
void checks_script_release(struct checker *ck);
int checks_script_start(struct check_run *run, struct dsc_err *err);
/* The timeout fired: kill the process group; the reap finishes the probe. */
void checks_script_timeout(struct check_run *run);
/* Kills the script in flight, if any; a checker-held orphan reaps it. */
void checks_script_cancel(struct check_run *run);

#endif

/*
 * loop_harness.h - a libevent loop for unit tests of asynchronous code:
 * waits bounded by a deadline, and an evhttp server on 127.0.0.1 with a
 * port the kernel picks, so tests run in parallel.
 *
 *	struct loop_fx lf;
 *	loop_fx_open(&lf, serve, NULL);
 *	... start something that talks to 127.0.0.1:lf.port ...
 *	LOOP_WAIT_FOR(&lf, done == 1);
 *	loop_fx_close(&lf);
 */
#ifndef DSC_LOOP_HARNESS_H
#define DSC_LOOP_HARNESS_H

#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>

#include "t.h"

/* Upper bound of any wait: generous, for a loaded machine. */
#define LOOP_WAIT_MAX_MS 15000

struct loop_fx {
	struct event_base *base;
	struct event *tick; /* wakes the loop, so waits see deadlines */
	struct evhttp *http;
	uint16_t port;
};

/* CLOCK_MONOTONIC in milliseconds. */
long loop_now_ms(void);
/* A fresh loop and server answering with @serve(@arg); fails the test. */
void loop_fx_open(struct loop_fx *lf,
    void (*serve)(struct evhttp_request *, void *), void *arg);
/* Frees what loop_fx_open made; harmless on a zeroed or closed fixture. */
void loop_fx_close(struct loop_fx *lf);
/* Turns the loop for @ms. */
void loop_pump(struct loop_fx *lf, long ms);

/* Turns the loop until @cond holds; fails the test after the deadline. */
#define LOOP_WAIT_FOR(lf, cond)                                                \
	do {                                                                   \
		long end_ = loop_now_ms() + LOOP_WAIT_MAX_MS;                  \
		while (!(cond) && loop_now_ms() < end_)                        \
			event_base_loop((lf)->base, EVLOOP_ONCE);              \
		if (!(cond))                                                   \
			T_FAIL("timed out waiting for %s", #cond);             \
	} while (0)

#endif

/*
 * curlev.h - libcurl's multi interface on a libevent loop: one CURLM driven
 * by curl_multi_socket_action (libcurl's hiperfifo example), one loop event
 * per socket libcurl asks to have watched, one timer for libcurl's single
 * timeout. What every asynchronous libcurl user in dsc needs, written once.
 *
 * Not thread-safe; everything runs on the loop of the event_base given.
 */
#ifndef DSC_CURLEV_H
#define DSC_CURLEV_H

#include <curl/curl.h>
#include <event2/event.h>

#include "err.h"

struct curlev;

/*
 * A transfer has ended with @rc. Called from the loop, never from inside
 * curlev_add(); @easy is still in the multi handle: the callback removes it
 * (curlev_remove) and may add new transfers, but must not free the curlev.
 */
typedef void curlev_done_fn(CURL *easy, CURLcode rc, void *arg);

/* A multi handle on @base; NULL with @err set (DSC_ENOMEM) on failure. */
struct curlev *curlev_new(struct event_base *base, curlev_done_fn *done,
    void *arg, struct dsc_err *err);
/*
 * Closes every connection and frees. Transfers still added are abandoned
 * (their done is not called); their easy handles stay the caller's. NULL
 * is a no-op.
 */
void curlev_free(struct curlev *cv);
/* The multi handle, for curl_multi_setopt; borrowed. */
CURLM *curlev_multi(struct curlev *cv);
/* Starts @easy (borrowed until removed). DSC_ENOMEM when libcurl refuses. */
int curlev_add(struct curlev *cv, CURL *easy, struct dsc_err *err);
/* Stops @easy, ended or not; it may then be cleaned up or added again. */
void curlev_remove(struct curlev *cv, CURL *easy);

#endif

/*
 * rpca.c - rpcc's calls on a libevent loop: one libcurl multi handle on
 * the loop (curlev.h), one easy handle per call in flight, and the same attempt
 * loop as rpcc_call turned inside out: an attempt ends in check_done(), which
 * either delivers the outcome, moves the call to the next server at once, or
 * arms the call's backoff timer after a full pass over the servers.
 *
 * Envelopes, signatures, the easy handle's options and the decoding of
 * answers are rpcc's (rpcc_internal.h), so both clients behave alike.
 * Connections belong to the multi handle's cache, not to the calls, so
 * they stay warm across calls; a cancelled call's connection is closed by
 * libcurl (its answer would be lost anyway).
 */
#include "rpca.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "buf.h"
#include "curlev.h"
#include "mem.h"
#include "rpcc_internal.h"

/* Idle connections kept warm for the next calls. */
#define RPCA_MAXCONNECTS 64

/*
 * A writer identity. The catalog refuses a Seq below the highest it applied
 * for a ClientID, so writes of one ClientID must reach it in order; with
 * many writes in flight at once they would not. Each write in flight
 * therefore holds a lane of its own, ClientID "<client id>-<lane>", whose
 * Seq rises by one per write; a lane is reused once its write ended.
 */
struct rpca_lane {
	uint64_t seq;
	uint32_t next_free;
};

#define NO_LANE UINT32_MAX

struct rpca {
	struct event_base *base;
	struct rpca_lane *lanes;
	uint32_t n_lanes, free_lane;
	struct rpcc *rc; /* key, servers, ids, Seq; its own handle unused */
	struct curlev *cv;
	struct rpca_call *calls; /* in flight, a doubly linked list */
	size_t pending;
	uint64_t generation; /* of the server list */
};

struct rpca_call {
	struct rpca *c;
	struct rpca_call *prev, *next;
	struct rpcc_xfer x;
	struct event *backoff_ev;
	struct buf body;
	uint64_t id, seq, generation;
	uint32_t lane; /* NO_LANE for a read */
	int64_t deadline, backoff;
	long attempt_ms;
	size_t server, in_pass;
	char server_addr[RPCC_ADDR_MAX];
	unsigned attempts;
	bool answered, in_multi;
	rpca_done_fn *fn;
	void *arg;
};

static int start_attempt(struct rpca_call *call, struct dsc_err *err);

/* ---- calls ----------------------------------------------------------------
 */

static void
call_unlink(struct rpca_call *call)
{
	struct rpca *c = call->c;

	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		c->calls = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	c->pending--;
}

/* A free lane, or NO_LANE when RPCA_LANES_MAX writes are in flight or
 * memory is short. */
static uint32_t
lane_take(struct rpca *c)
{
	struct rpca_lane *l;
	uint32_t i;

	if (c->free_lane != NO_LANE) {
		i = c->free_lane;
		c->free_lane = c->lanes[i].next_free;
		return i;
	}
	if (c->n_lanes >= RPCA_LANES_MAX)
		return NO_LANE;
	l = dsc_reallocarray(c->lanes, c->n_lanes + 1, sizeof(*l));
	if (l == NULL)
		return NO_LANE;
	c->lanes = l;
	l[c->n_lanes].seq = 0;
	return c->n_lanes++;
}

static void
lane_put(struct rpca *c, uint32_t i)
{
	c->lanes[i].next_free = c->free_lane;
	c->free_lane = i;
}

static void
call_free(struct rpca_call *call)
{
	if (call->lane != NO_LANE)
		lane_put(call->c, call->lane);
	if (call->in_multi)
		curlev_remove(call->c->cv, call->x.curl);
	call_unlink(call);
	if (call->backoff_ev != NULL)
		event_free(call->backoff_ev);
	rpcc_xfer_release(&call->x);
	buf_release(&call->body);
	dsc_free(call);
}

/* Ends @call with @rc and tells its owner; frees it. */
static void
finish(struct rpca_call *call, int rc, struct rpcc_answer *a,
    const struct dsc_err *err)
{
	struct rpcc_meta meta;
	rpca_done_fn *fn = call->fn;
	void *arg = call->arg;
	struct rpca *c = call->c;

	memset(&meta, 0, sizeof(meta));
	if (a != NULL && a->from_server) {
		rpcc_fill_meta(&meta, rc == 0 ? a->result : a->data,
		    call->server_addr, call->attempts, call->seq);
		/* The server that answered goes first next time. */
		if (call->generation == c->generation)
			rpcc_set_first(c->rc, call->server);
	} else {
		meta.known_leader = false;
		meta.server = call->server_addr;
		meta.attempts = call->attempts;
		meta.seq = call->seq;
	}
	/* Out of the list first, so the callback may start or cancel
	 * other calls, and the borrowed strings stay valid through it. */
	if (call->in_multi) {
		curlev_remove(c->cv, call->x.curl);
		call->in_multi = false;
	}
	fn(rc, rc == 0 && a != NULL ? a->result : NULL, &meta, err, arg);
	call_free(call);
}

static void
on_backoff(evutil_socket_t fd, short what, void *arg)
{
	struct rpca_call *call = arg;
	struct dsc_err err = DSC_ERR_INIT;
	int rc;

	(void)fd;
	(void)what;
	if ((rc = start_attempt(call, &err)) != 0)
		finish(call, rc, NULL, &err);
}

/* One attempt of @call on its current server. */
static int
start_attempt(struct rpca_call *call, struct dsc_err *err)
{
	struct rpca *c = call->c;
	const struct rpcc_options *o = rpcc_opts(c->rc);
	struct auth_req_sig sig;
	struct auth_req_hdrs hdrs;
	int64_t left;
	int rc;

	if (call->generation != c->generation) {
		/* The list changed (SIGHUP): start over on the new one. */
		call->generation = c->generation;
		call->server = rpcc_first(c->rc);
		call->in_pass = 0;
	}
	snprintf(call->server_addr, sizeof(call->server_addr), "%s",
	    rpcc_server(c->rc, call->server));
	rc = rpcc_sign(c->rc, (int64_t)time(NULL), call->body.p, call->body.len,
	    &sig, err);
	if (rc != 0)
		return rc;
	auth_req_sig_hdrs(&sig, &hdrs);
	left = call->deadline - rpcc_now_ms();
	if (o->attempt_ms != 0 && left > o->attempt_ms)
		left = o->attempt_ms;
	if (left < 1)
		left = 1;
	call->attempt_ms = (long)left;
	rc = rpcc_xfer_prepare(c->rc, &call->x, call->server_addr, call->body.p,
	    call->body.len, &hdrs, call->attempt_ms, err);
	sodium_memzero(&sig, sizeof(sig));
	if (rc != 0)
		return rc;
	call->attempts++;
	if ((rc = curlev_add(c->cv, call->x.curl, err)) != 0)
		return rc;
	call->in_multi = true;
	return 0;
}

/* An attempt of @call ended with @code: deliver, retry or back off. */
static void
attempt_done(struct rpca_call *call, CURLcode code)
{
	struct rpca *c = call->c;
	const struct rpcc_options *o = rpcc_opts(c->rc);
	struct rpcc_answer a = { 0 };
	struct dsc_err err = DSC_ERR_INIT;
	struct timeval tv;
	int64_t left;
	int rc;

	curlev_remove(c->cv, call->x.curl);
	call->in_multi = false;
	rc = rpcc_xfer_finish(c->rc, &call->x, call->server_addr, code,
	    call->attempt_ms, call->id, &a, &err);
	if (rc == 0 || !a.retry || call->attempts > o->retries ||
	    call->deadline - rpcc_now_ms() <= 0)
		goto done;
	call->answered |= rc != DSC_EUNREACH;
	call->server = (call->server + 1) % rpcc_n_servers(c->rc);
	if (++call->in_pass < rpcc_n_servers(c->rc)) {
		rpcc_answer_clear(&a);
		if ((rc = start_attempt(call, &err)) != 0)
			goto done;
		return;
	}
	/* Every server failed once: as rpcc_call, stop when none could be
	 * reached, else give an election a moment. */
	if (!call->answered)
		goto done;
	call->in_pass = 0;
	call->answered = false;
	left = call->deadline - rpcc_now_ms();
	if (left > call->backoff)
		left = call->backoff;
	call->backoff = call->backoff * 2 < RPCC_BACKOFF_MAX_MS
	    ? call->backoff * 2
	    : RPCC_BACKOFF_MAX_MS;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	if (evtimer_add(call->backoff_ev, &tv) == 0) {
		rpcc_answer_clear(&a);
		return;
	}
	rc = dsc_errorf(&err, DSC_ENOMEM, "unable to arm a timer");
done:
	finish(call, rc, &a, &err);
	rpcc_answer_clear(&a);
}

/* curlev: a transfer has ended. */
static void
transfer_done(CURL *easy, CURLcode code, void *arg)
{
	struct rpca_call *call = NULL;

	(void)arg;
	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &call);
	if (call != NULL)
		attempt_done(call, code);
}

struct rpca_call *
rpca_call(struct rpca *c, const char *method, json_t *params, unsigned flags,
    rpca_done_fn *fn, void *arg, struct dsc_err *err)
{
	struct rpca_call *call;

	if (fn == NULL) {
		dsc_errorf(err, DSC_EINVAL, "a call needs a callback");
		return NULL;
	}
	if ((call = dsc_calloc(1, sizeof(*call))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	call->c = c;
	call->lane = NO_LANE;
	call->fn = fn;
	call->arg = arg;
	call->backoff = RPCC_BACKOFF_MIN_MS;
	call->generation = c->generation;
	call->server = rpcc_first(c->rc);
	call->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = call;
	c->calls = call;
	c->pending++;
	call->deadline = rpcc_now_ms() + rpcc_opts(c->rc)->timeout_ms +
	    rpcc_wait_extension(params);
	if (flags & RPCC_WRITE) {
		char client_id[RPCC_CLIENT_ID_LEN + 16];

		if ((call->lane = lane_take(c)) == NO_LANE) {
			dsc_errorf(err, DSC_EBUSY,
			    "%d writes in flight already", RPCA_LANES_MAX);
			goto fail;
		}
		call->seq = ++c->lanes[call->lane].seq;
		snprintf(client_id, sizeof(client_id), "%s-%" PRIu32,
		    rpcc_client_id(c->rc), call->lane);
		if (rpcc_build_as(c->rc, method, params, client_id, call->seq,
			&call->body, err) != 0)
			goto fail;
	} else if (rpcc_build_as(c->rc, method, params, NULL, 0, &call->body,
		       err) != 0)
		goto fail;
	call->id = rpcc_last_id(c->rc);
	if (rpcc_xfer_init(c->rc, &call->x, err) != 0)
		goto fail;
	if (curl_easy_setopt(call->x.curl, CURLOPT_PRIVATE, call) != CURLE_OK ||
	    (call->backoff_ev = evtimer_new(c->base, on_backoff, call)) ==
	        NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		goto fail;
	}
	if (start_attempt(call, err) != 0)
		goto fail;
	return call;
fail:
	call_free(call);
	return NULL;
}

void
rpca_cancel(struct rpca_call *call)
{
	if (call != NULL)
		call_free(call);
}

/* ---- the client -----------------------------------------------------------
 */

struct rpca *
rpca_new(struct event_base *base, const uint8_t key[AUTH_KEY_SIZE],
    const char *const *servers, size_t n, const struct rpcc_options *opt,
    struct dsc_err *err)
{
	struct rpca *c;
	CURLMcode mc;

	if ((c = dsc_calloc(1, sizeof(*c))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	c->base = base;
	c->free_lane = NO_LANE;
	if ((c->rc = rpcc_new(key, servers, n, opt, err)) == NULL) {
		dsc_free(c);
		return NULL;
	}
	if ((c->cv = curlev_new(base, transfer_done, c, err)) == NULL) {
		rpca_free(c);
		return NULL;
	}
	mc = curl_multi_setopt(
	    curlev_multi(c->cv), CURLMOPT_MAXCONNECTS, (long)RPCA_MAXCONNECTS);
	if (mc != CURLM_OK) {
		dsc_errorf(err, DSC_EIO, "unable to set up libcurl: %s",
		    curl_multi_strerror(mc));
		rpca_free(c);
		return NULL;
	}
	return c;
}

void
rpca_free(struct rpca *c)
{
	if (c == NULL)
		return;
	while (c->calls != NULL)
		call_free(c->calls);
	curlev_free(c->cv);
	rpcc_free(c->rc);
	dsc_free(c->lanes);
	dsc_free(c);
}

const char *
rpca_current_server(const struct rpca *c)
{
	return rpcc_server(c->rc, rpcc_first(c->rc));
}

size_t
rpca_pending(const struct rpca *c)
{
	return c->pending;
}

int
rpca_set_servers(
    struct rpca *c, const char *const *servers, size_t n, struct dsc_err *err)
{
	int rc = rpcc_set_servers(c->rc, servers, n, err);

	if (rc == 0)
		c->generation++;
	return rc;
}

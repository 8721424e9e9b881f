/*
 * curlev.c - libcurl's multi interface on a libevent loop (curlev.h).
 *
 * libcurl says which sockets to watch for what (CURLMOPT_SOCKETFUNCTION)
 * and when to call it back anyway (CURLMOPT_TIMERFUNCTION); the loop tells
 * libcurl what happened through curl_multi_socket_action, and after each
 * action the transfers that ended go to the done callback. libcurl's own
 * callbacks only arm and disarm events: nothing of the caller runs inside
 * libcurl.
 */
#include "curlev.h"

#include <stddef.h>

#include "mem.h"

/* A socket libcurl wants watched. */
struct sock {
	struct curlev *cv;
	struct sock *prev, *next;
	struct event *ev;
};

struct curlev {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct sock *socks;
	curlev_done_fn *done;
	void *arg;
};

static void
sock_free(struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->cv->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	if (s->ev != NULL)
		event_free(s->ev);
	dsc_free(s);
}

/* Every transfer libcurl has ended, to the done callback. */
static void
drain(struct curlev *cv)
{
	CURLMsg *m;
	CURL *easy;
	CURLcode rc;
	int left;

	while ((m = curl_multi_info_read(cv->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		easy = m->easy_handle;
		rc = m->data.result;
		cv->done(easy, rc, cv->arg);
	}
}

static void
on_socket(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg; /* not the sock: the action may free it */
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	    ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;

	curl_multi_socket_action(cv->multi, fd, action, &running);
	drain(cv);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct curlev *cv = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(cv);
}

/* CURLMOPT_TIMERFUNCTION: libcurl's one timeout, as one loop timer. */
static int
timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
	struct curlev *cv = arg;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0)
		return evtimer_del(cv->timer);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	/* Never socket_action from here: the loop runs it, even for 0. */
	return evtimer_add(cv->timer, &tv);
}

/*
 * CURLMOPT_SOCKETFUNCTION: watch @fd for what libcurl asks, or stop. Never
 * returns -1, which would mark the whole multi handle dead for good (every
 * transfer, now and later); a socket we cannot watch for want of memory
 * leaves its transfer to end at its timeout, and the next change for that
 * socket tries again.
 */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct curlev *cv = arg;
	struct sock *s = sockp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(cv->multi, fd, NULL);
			sock_free(s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		if ((s = dsc_calloc(1, sizeof(*s))) == NULL)
			return 0;
		s->cv = cv;
		s->next = cv->socks;
		if (cv->socks != NULL)
			cv->socks->prev = s;
		cv->socks = s;
		curl_multi_assign(cv->multi, fd, s);
	} else if (s->ev != NULL) {
		event_free(s->ev);
	}
	s->ev = event_new(cv->base, fd, kind, on_socket, cv);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		curl_multi_assign(cv->multi, fd, NULL);
		sock_free(s);
	}
	return 0;
}

struct curlev *
curlev_new(struct event_base *base, curlev_done_fn *done, void *arg,
    struct dsc_err *err)
{
	struct curlev *cv;

	if ((cv = dsc_calloc(1, sizeof(*cv))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	cv->base = base;
	cv->done = done;
	cv->arg = arg;
	cv->multi = curl_multi_init();
	cv->timer = evtimer_new(base, on_timer, cv);
	if (cv->multi == NULL || cv->timer == NULL ||
	    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv) != CURLM_OK ||
	    curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb) !=
	        CURLM_OK ||
	    curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv) != CURLM_OK) {
		curlev_free(cv);
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	return cv;
}

void
curlev_free(struct curlev *cv)
{
	if (cv == NULL)
		return;
	/* Closes the cached connections; their sockets leave through
	 * socket_cb's CURL_POLL_REMOVE, and what is left, here. */
	if (cv->multi != NULL)
		curl_multi_cleanup(cv->multi);
	while (cv->socks != NULL)
		sock_free(cv->socks);
	if (cv->timer != NULL)
		event_free(cv->timer);
	dsc_free(cv);
}

CURLM *
curlev_multi(struct curlev *cv)
{
	return cv->multi;
}

int
curlev_add(struct curlev *cv, CURL *easy, struct dsc_err *err)
{
	CURLMcode mc = curl_multi_add_handle(cv->multi, easy);

	if (mc != CURLM_OK)
		return dsc_errorf(err, DSC_ENOMEM,
		    "unable to start transfer: %s", curl_multi_strerror(mc));
	return 0;
}

void
curlev_remove(struct curlev *cv, CURL *easy)
{
	curl_multi_remove_handle(cv->multi, easy);
}

/*
 * loop_harness.c - a libevent loop and a local HTTP server for unit tests
 * (loop_harness.h).
 */
#include "loop_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

long
loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

void
loop_fx_open(struct loop_fx *lf, void (*serve)(struct evhttp_request *, void *),
    void *arg)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct timeval tv = { 0, 10000 };

	T_ASSERT((lf->base = event_base_new()) != NULL);
	lf->tick = event_new(lf->base, -1, EV_PERSIST, tick, NULL);
	T_ASSERT(lf->tick != NULL);
	T_EQ(event_add(lf->tick, &tv), 0);
	T_ASSERT((lf->http = evhttp_new(lf->base)) != NULL);
	evhttp_set_gencb(lf->http, serve, arg);
	bs = evhttp_bind_socket_with_handle(lf->http, "127.0.0.1", 0);
	T_ASSERT(bs != NULL);
	T_EQ(getsockname(
	         evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len),
	    0);
	lf->port = ntohs(sin.sin_port);
}

void
loop_fx_close(struct loop_fx *lf)
{
	if (lf->http != NULL)
		evhttp_free(lf->http);
	lf->http = NULL;
	if (lf->tick != NULL)
		event_free(lf->tick);
	lf->tick = NULL;
	if (lf->base != NULL)
		event_base_free(lf->base);
	lf->base = NULL;
}

void
loop_pump(struct loop_fx *lf, long ms)
{
	long end = loop_now_ms() + ms;

	while (loop_now_ms() < end)
		event_base_loop(lf->base, EVLOOP_ONCE);
}

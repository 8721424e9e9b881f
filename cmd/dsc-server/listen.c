/*
 * listen.c - the server's one TCP port. A new connection is held until its
 * first four bytes arrive: "DSCP" starts a peer hello and goes to the peer
 * links, anything else is HTTP and goes to the JSON-RPC layer -- the way
 * Consul multiplexes its port 8300 on a leading byte. A connection that
 * says nothing within SNIFF_TIMEOUT_S is closed, and so is one over the cap,
 * so idle sockets cannot pile up.
 */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "log.h"
#include "peers.h"
#include "rpc.h"

#define SNIFF_BYTES 4
#define SNIFF_TIMEOUT_S 10
#define SNIFF_MAX 1024		/* connections not yet sorted */

struct sniff {
	struct listener *l;
	evutil_socket_t fd;
	struct event *ev;
	uint8_t buf[SNIFF_BYTES];
	size_t n;
	struct sniff *prev, *next;
};

struct listener {
	struct server *s;
	struct evconnlistener *lev;
	struct sniff *pending;
	size_t n_pending;
};

static void
sniff_free(struct sniff *c, bool close_fd)
{
	struct listener *l = c->l;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->pending = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	l->n_pending--;
	event_free(c->ev);
	if (close_fd)
		evutil_closesocket(c->fd);
	free(c);
}

static void
sniff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sniff *c = arg;
	struct server *s = c->l->s;
	uint8_t first[SNIFF_BYTES];
	ssize_t n;

	if (what & EV_TIMEOUT) {
		sniff_free(c, true);
		return;
	}
	n = recv(fd, c->buf + c->n, SNIFF_BYTES - c->n, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		sniff_free(c, true);
		return;
	}
	if (n > 0)
		c->n += (size_t)n;
	if (c->n < SNIFF_BYTES)
		return;
	memcpy(first, c->buf, SNIFF_BYTES);
	sniff_free(c, false);
	if (memcmp(first, "DSCP", SNIFF_BYTES) == 0)
		peers_accept(s->peers, fd, first, SNIFF_BYTES);
	else
		rpc_accept(s->rpc, fd, first, SNIFF_BYTES);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
	  struct sockaddr *sa, int salen, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { SNIFF_TIMEOUT_S, 0 };
	struct sniff *c;
	int one = 1;

	(void)lev;
	(void)sa;
	(void)salen;
	if (l->n_pending >= SNIFF_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->l = l;
	c->fd = fd;
	c->ev = event_new(l->s->base, fd, EV_READ | EV_PERSIST, sniff_cb, c);
	if (c->ev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = l->pending;
	if (l->pending != NULL)
		l->pending->prev = c;
	l->pending = c;
	l->n_pending++;
	event_add(c->ev, &tv);
}

static void
error_cb(struct evconnlistener *lev, void *arg)
{
	(void)lev;
	(void)arg;
	/* EMFILE and friends: libevent keeps listening; say so once in a
	 * while rather than spin. */
	log_warn("accept: %s", evutil_socket_error_to_string(
				       EVUTIL_SOCKET_ERROR()));
}

int
listener_start(struct server *s, struct dsc_err *err)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	struct listener *l;

	if (evutil_parse_sockaddr_port(s->cfg.bind, (struct sockaddr *)&ss,
				       &len) != 0)
		return dsc_errorf(err, DSC_EINVAL, "invalid bind address '%s'",
				  s->cfg.bind);
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	l->s = s;
	l->lev = evconnlistener_new_bind(
		s->base, accept_cb, l,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
			LEV_OPT_CLOSE_ON_EXEC,
		1024, (struct sockaddr *)&ss, len);
	if (l->lev == NULL) {
		int e = errno;

		free(l);
		return dsc_errorf(err,
				  e == EADDRINUSE || e == EADDRNOTAVAIL
					  ? DSC_EBUSY
					  : DSC_EIO,
				  "unable to listen on '%s': %s", s->cfg.bind,
				  strerror(e));
	}
	evconnlistener_set_error_cb(l->lev, error_cb);
	s->listener = l;
	return 0;
}

void
listener_free(struct listener *l)
{
	if (l == NULL)
		return;
	while (l->pending != NULL)
		sniff_free(l->pending, true);
	evconnlistener_free(l->lev);
	free(l);
}

/*
 * rpc.h - JSON-RPC 2.0 over HTTP/1.1 on the server's port (README.md has the
 * method table). The listener hands over connections that did not start
 * with a peer hello; rpc owns them from then on.
 *
 * HTTP is deliberately small: request line, headers and a Content-Length
 * body, each with a named limit; keep-alive; one request at a time per
 * connection (a parked blocking query holds its connection); a client that
 * goes away cancels what it was waiting for.
 */
#ifndef DSC_RPC_H
#define DSC_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "err.h"

struct server;
struct rpc;

struct rpc_stats {
	uint64_t requests, auth_failures, errors, open_conns, parked;
};

struct rpc *rpc_new(struct server *s, struct dsc_err *err);
void rpc_free(struct rpc *r);
/* Takes over accepted socket @fd whose first @n bytes were already read. */
void rpc_accept(struct rpc *r, evutil_socket_t fd, const uint8_t *first,
		size_t n);
void rpc_stats(const struct rpc *r, struct rpc_stats *st);

#endif

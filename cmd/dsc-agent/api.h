/*
 * api.h - the agent's HTTP side on --http: the Consul-compatible /v1 API
 * (consul-api.md, the contract) and POST /rpc, the authenticated JSON-RPC
 * endpoint the command-line tools use (README.md has its methods).
 *
 * Reads are forwarded to a server through rpca: /v1/catalog/...,
 * /v1/health/..., /v1/kv/... and /v1/status/... become the servers'
 * JSON-RPC methods (index and wait passed through, so a blocking query
 * parks here without a thread and upstream as one call), and the answers
 * are turned into Consul's shapes and headers (X-Consul-Index never 0,
 * also on a 404; KnownLeader, LastContact, Effective-Consistency). The
 * consistency asked for is passed on; without ?stale or ?consistent the
 * read is the leader's linearizable one, as Consul's default.
 *
 * When no server answers a read that asked for ?stale, the last answer
 * this agent saw for the same request is served with
 * X-Consul-KnownLeader: false and X-Consul-LastContact the age of that
 * answer in ms. The cache holds API_CACHE_SLOTS answers of at most
 * API_CACHE_BODY_MAX bytes each (api_internal.h).
 *
 * Limits: request bodies 1 MiB (httpd's HTTPD_BODY_MAX; more is 413), KV
 * values 512 KiB (413), names and keys in paths API_NAME_MAX bytes (400).
 * Bad input is a 400 with a one-line text/plain reason.
 * /v1/agent/... goes to local.h.
 */
#ifndef DSC_API_H
#define DSC_API_H

#include "agent.h"
#include "err.h"

/* Listens on a->cfg.http (DSC_EIO with "port busy" text: exit 3). */
struct api *api_new(struct agent *a, struct dsc_err *err);
/* Closes the listener and every connection; parked requests are dropped
 * and their upstream calls cancelled. */
void api_free(struct api *api);

#endif

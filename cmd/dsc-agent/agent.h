/*
 * agent.h - what the agent's parts share: its settings and the handles
 * main.c wires together. The parts, each behind its own header:
 *
 *   main.c      command line, --config, key, signals, the event loop
 *   api*.c      the Consul-compatible /v1 HTTP API and POST /rpc for the
 *               command-line tools (api.h)
 *   local*.c    the agent's own services and checks: definitions from the
 *               config dir, API registrations persisted in the data dir,
 *               anti-entropy to the catalog, heartbeats (local.h)
 *   libcommon/checks.c  the health-check runners: TTL, HTTP, TCP, script
 *   libcommon/rpca.h   asynchronous authenticated JSON-RPC to the servers
 *
 * The agent holds no copy of the catalog: reads are forwarded to a server,
 * except when none answers and the request allows a stale answer (api.h).
 */
#ifndef DSC_AGENT_H
#define DSC_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "auth.h"
#include "rpca.h"

#define AGENT_SERVERS_MAX   16
#define AGENT_HTTP_DEFAULT  "127.0.0.1:8500"
#define AGENT_DC_DEFAULT    "dc1"
/* How often the agent tells the leader it is alive, and how often it
 * re-syncs its own services and checks in full (Consul: 1 min + jitter). */
#define AGENT_HEARTBEAT_MS_DEFAULT 2000
#define AGENT_SYNC_MS_DEFAULT      60000

struct agent_config {
	char *name;        /* --name: the node name (default: hostname) */
	char *node_id;     /* UUID, made once and kept in the data dir */
	char *bind;        /* --bind ADDR: node address, outgoing source IP */
	char *http;        /* --http ADDR:PORT */
	char *servers[AGENT_SERVERS_MAX]; /* --server ADDR:PORT ... */
	size_t n_servers;
	char *data_dir;    /* --data-dir */
	char *config_dir;  /* --config-dir, NULL: none */
	char *key_file;    /* --key-file */
	char *datacenter;  /* "dc1" */
	bool enable_script_checks;
	unsigned heartbeat_ms, sync_ms;
};

struct local;
struct checker;
struct api;

struct agent {
	struct event_base *base;
	struct agent_config cfg;
	uint8_t key[AUTH_KEY_SIZE];
	struct rpca *up;          /* to the servers */
	struct checker *checker;  /* runs health checks */
	struct local *local;      /* owned services and checks */
	struct api *api;          /* the HTTP side */
};

#endif

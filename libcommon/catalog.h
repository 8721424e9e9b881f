/*
 * catalog.h - the replicated service catalog: a pure state machine.
 *
 * Every server applies the same Raft log to a catalog and so holds the same
 * nodes, services, checks and KV entries. The catalog does no I/O, reads no
 * clock and draws no random numbers: the same commands at the same indexes
 * give the same state, the same replies and the same digest on every server.
 * It is not thread-safe; one caller (the server's loop) owns it.
 *
 * Model (Consul's, consul-api.md 2.5): nodes (Node, ID, Address,
 * TaggedAddresses, Meta); service instances per node (ID unique on the
 * node, Service name, Tags, Address, Port, Meta, Weights, EnableTagOverride,
 * TaggedAddresses, Kind); checks per node (CheckID unique on the node,
 * node-level when ServiceID is "", else bound to that service instance);
 * KV entries (Key, Flags, raw Value bytes). Each entity has CreateIndex and
 * ModifyIndex, the Raft index of the write that created / last changed it.
 * A write that changes nothing (an anti-entropy resync) moves no index.
 * Node and service names are matched case-insensitively (Consul's memdb
 * indexes them lowercased); IDs and KV keys are exact.
 *
 * Maintenance mode is what Consul stores: a critical check with CheckID
 * "_node_maintenance" or "_service_maintenance:<service id>". The status
 * "maintenance" is refused; catalog_aggregate_status() reports it.
 *
 * COMMAND FORMAT
 *
 * A command is one JSON object, at most CATALOG_CMD_MAX bytes, decoded with
 * duplicate keys refused. Writers should encode it with
 * JSON_SORT_KEYS | JSON_COMPACT so equal commands are equal bytes (apply
 * itself does not depend on key order). Keys are exact PascalCase; an
 * unknown key is refused, so a writer's mistake fails loudly on every server
 * instead of being silently dropped on some. Integers are JSON integers
 * (never reals) within the stated ranges.
 *
 *   "Op"        string, required; one of the ops below
 *   "ClientID"  string, 1..CATALOG_CLIENT_ID_MAX printable ASCII; optional
 *   "Seq"       integer 1..2^63-1; required with ClientID, refused without
 *
 * Idempotency: the catalog remembers, per ClientID, the highest Seq applied
 * and its result. A command with that Seq again is not applied; it returns
 * the remembered result. A lower Seq is refused ("stale sequence"). A client
 * must therefore number its writes 1, 2, 3, ... and retry a write with the
 * same Seq. At most CATALOG_CLIENTS_MAX clients are remembered; beyond that
 * the least recently used is forgotten, and a retry from a forgotten client
 * is applied again. Commands without ClientID are never deduplicated (the
 * leader's own writes: reap, liveness checks).
 *
 * Ops (missing optional strings are ""):
 *
 * "register": Consul's CatalogRegistration.
 *	Node (required), Address (required unless SkipNodeUpdate and the node
 *	exists), ID (node UUID or ""), Datacenter (ignored), TaggedAddresses
 *	{str:str}, NodeMeta {str:str}, SkipNodeUpdate (bool: keep an existing
 *	node's fields as they are),
 *	Service {ID (default Service), Service (name, required), Tags [str],
 *	  Address, Port 0..65535, Meta {str:str}, Weights {Passing 1..65535,
 *	  Warning 0..65535} (default 1/1), EnableTagOverride bool,
 *	  TaggedAddresses {str:{Address, Port}}, Kind},
 *	Check {...} and/or Checks [{...}], each: Node (default the
 *	  registration's; must match), CheckID (default Name; required),
 *	  Name, Status (passing|warning|critical, default critical), Notes,
 *	  Output, ServiceID (must name a service on the node after the Service
 *	  above is applied), Type, Interval, Timeout, Definition {...} (kept as
 *	  given, canonicalised), ServiceName and ServiceTags (ignored: always
 *	  taken from the service).
 *	The node, service and checks are created or replaced as one unit.
 * "deregister": Node (required), ServiceID, CheckID. With ServiceID:
 *	remove that instance and its checks; else with CheckID: remove that
 *	check; else remove the node with its services and checks. Removing
 *	what does not exist succeeds and changes nothing.
 * "check_update": Node, CheckID, Status (all required), Output (absent:
 *	unchanged). An unknown check is refused (DSC_ENOTFOUND).
 * "kv_set": Key (1..CATALOG_KEY_MAX bytes), Value (base64, standard
 *	alphabet with padding, or null/absent for empty; at most
 *	CATALOG_VALUE_MAX bytes decoded), Flags (0..2^63-1). Always bumps the
 *	entry's ModifyIndex, like Consul.
 * "kv_cas": as kv_set plus Cas (0..2^63-1): 0 = create only if absent,
 *	N = set only if the entry exists with ModifyIndex N. Else ok=false.
 * "kv_delete": Key ("" allowed only with Recurse), Recurse (bool: every key
 *	with that prefix), Cas (1..2^63-1, not with Recurse: delete only if
 *	ModifyIndex is N; a missing key counts as deleted, as in Consul).
 *	A deleted key leaves a tombstone so prefix indexes still move.
 * "reap": Index (1..2^63-1): forget KV tombstones, removed nodes and
 *	removed service names whose index is below Index. The indexes they
 *	held are remembered as floors, so no watch index moves backwards.
 *	Proposed by the leader, so every server reaps at the same point.
 * "noop": no body; a barrier that changes nothing but the applied index.
 *
 * Example: {"Address":"10.0.0.1","ClientID":"agent-a1","Node":"a1","Op":
 *   "register","Seq":7,"Service":{"Port":80,"Service":"web","Tags":["v1"]}}
 *
 * WATCH KEYS AND INDEXES
 *
 * catalog_index() answers "what index does a blocking query on X compare
 * against" (consul-api.md 2.2), never below 1:
 *   "services"          any service instance added, changed or removed
 *   "nodes"             any node added, changed or removed
 *   "service:<name>"    instances of that name, their checks, their nodes'
 *                       fields and node-level checks (catalog/service,
 *                       health/service, health/checks)
 *   "node:<name>"       the node, its services and its checks
 *                       (catalog/node, health/node)
 *   "checks:<state>"    state any|passing|warning|critical: checks entering,
 *                       leaving or changing in that state (health/state)
 *   "kv:<key>"          the key's ModifyIndex, or its tombstone's
 *   "kvp:<prefix>"      the highest index of any entry or tombstone under
 *                       the prefix ("kvp:" = the whole store)
 * Names in keys are matched case-insensitively like the names themselves.
 * Any other key answers the last applied index (always safe, never precise).
 *
 * After each catalog_apply(), catalog_changes() lists the watch keys whose
 * index that apply moved, so the server wakes only their watchers. KV writes
 * are listed as "kv:<key>" only; a "kvp:<prefix>" watcher is affected when
 * catalog_watch_matches() says so.
 *
 * Ownership: read functions return a new json_t the caller owns (free with
 * json_decref), or NULL when out of memory. Nothing returned borrows the
 * catalog unless its comment says so.
 */
#ifndef DSC_CATALOG_H
#define DSC_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"

/* ---- limits (named so the server's pre-validation says the same) ---- */

#define CATALOG_CMD_MAX		(1024 * 1024)	/* bytes of one command */
#define CATALOG_NAME_MAX	128	/* node and service names */
#define CATALOG_ID_MAX		256	/* service and check ids */
#define CATALOG_CLIENT_ID_MAX	128
#define CATALOG_ADDR_MAX	256	/* addresses: IPs or host names */
#define CATALOG_TAGS_MAX	64	/* tags per service */
#define CATALOG_TAG_MAX		512	/* bytes per tag */
#define CATALOG_META_MAX	64	/* meta pairs (Consul's limit) */
#define CATALOG_META_KEY_MAX	128	/* Consul's limit */
#define CATALOG_META_VALUE_MAX	512	/* Consul's limit */
#define CATALOG_TADDRS_MAX	16	/* tagged addresses per node/service */
#define CATALOG_TADDR_KEY_MAX	64
#define CATALOG_KIND_MAX	64
#define CATALOG_REG_CHECKS_MAX	64	/* checks in one registration */
#define CATALOG_TEXT_MAX	1024	/* check Name, Type, Interval... */
#define CATALOG_NOTES_MAX	4096
#define CATALOG_OUTPUT_MAX	(16 * 1024)	/* agents send <= 4 KiB + */
#define CATALOG_DEFINITION_MAX	8192	/* canonical JSON bytes */
#define CATALOG_KEY_MAX		512	/* KV key bytes */
#define CATALOG_VALUE_MAX	(512 * 1024)	/* KV value bytes (Consul's) */
#define CATALOG_CLIENTS_MAX	16384	/* remembered clients (LRU) */

/* ---- lifecycle ------------------------------------------------------ */

struct catalog;

/* An empty catalog (applied index 0), or NULL when out of memory. */
struct catalog *catalog_new(void);
void catalog_free(struct catalog *c);

/*
 * The datacenter name put in read results ("Datacenter" fields); "dc1" by
 * default. A reader's setting, not replicated state: not in the snapshot.
 * Copies @dc. Returns 0 or DSC_ENOMEM (the old name is kept).
 */
int catalog_set_datacenter(struct catalog *c, const char *dc);

/*
 * Test hook: remember at most @n clients instead of CATALOG_CLIENTS_MAX.
 * Every server must use the same limit, so production code never calls it.
 */
void catalog_set_clients_max(struct catalog *c, size_t n);

/* ---- writes --------------------------------------------------------- */

/*
 * What an applied command did. err.code is 0 when it was carried out (then
 * @ok is true, or false when a CAS condition did not hold), or the DSC_E*
 * code why it was refused (invalid, unknown check, stale sequence), with
 * state unchanged and err.msg saying why. Deterministic: every server
 * computes the same result for the same entry.
 */
struct catalog_result {
	bool ok;
	struct dsc_err err;
};

/*
 * Applies the command @data (@len bytes) committed at Raft index @index,
 * which must be greater than the last applied one, and fills @res.
 * Returns 0 when the entry was applied (carried out or refused: see @res).
 * DSC_EINVAL: @index is not increasing; nothing changed.
 * DSC_ENOMEM: nothing changed at all; the entry must be applied again
 * before any later one (skipping it would make this replica diverge).
 *
 * Caveat: the command is parsed by jansson, which allocates with its own
 * hooks and does not report every failed allocation (it may call the
 * command invalid, or worse, parse it wrong). The catalog's own allocations
 * are all-or-nothing; a server should treat a failing malloc as fatal
 * rather than trust an apply made while memory ran out.
 */
int catalog_apply(struct catalog *c, uint64_t index, const void *data,
    size_t len, struct catalog_result *res);

/*
 * Checks @data the way catalog_apply() would before looking at any state
 * (shape, types, limits), so the server refuses bad writes before proposing.
 * Returns 0 or the code apply would refuse with, filling @err.
 */
int catalog_validate(const void *data, size_t len, struct dsc_err *err);

/*
 * @res as JSON: {"ok":true}, {"ok":false}, or {"ok":false,"error":"...",
 * "code":"DSC_EINVAL"}. New reference; NULL when out of memory.
 */
json_t *catalog_result_json(const struct catalog_result *res);

/* The index of the last applied entry (0 before the first). */
uint64_t catalog_applied_index(const struct catalog *c);

/* ---- watch indexes -------------------------------------------------- */

/* The index a blocking query on @watch_key compares against; >= 1. */
uint64_t catalog_index(const struct catalog *c, const char *watch_key);

/*
 * The watch keys the last catalog_apply() (or restore) moved: sorted,
 * unique, borrowed until the next apply, restore or free. When @all is set
 * the list could not be kept (out of memory, or a restore): treat every
 * watch key as changed.
 */
struct catalog_changes {
	const char *const *keys;
	size_t n;
	bool all;
};
void catalog_changes(const struct catalog *c, struct catalog_changes *out);

/* True when a change listed as @changed can move @watch_key's index. */
bool catalog_watch_matches(const char *watch_key, const char *changed);

/* ---- reads ---------------------------------------------------------- */

enum catalog_health {
	CATALOG_HEALTH_ANY,		/* every instance */
	CATALOG_HEALTH_PASSING,		/* ?passing: every check passing */
	CATALOG_HEALTH_NOT_CRITICAL,	/* DNS: no check critical */
};

struct catalog_meta {
	const char *key, *value;
};

/*
 * Filters for the service and node reads; a NULL filter or zero counts
 * match everything. Tags: the instance carries every one (ASCII
 * case-insensitive). Node meta: the node has every pair exactly.
 */
struct catalog_filter {
	const char *const *tags;
	size_t n_tags;
	const struct catalog_meta *node_meta;
	size_t n_node_meta;
	enum catalog_health health;	/* catalog_health_service() only */
};

/* /v1/catalog/services: {"name": ["tag", ...]}, tags sorted and unique. */
json_t *catalog_services(const struct catalog *c,
    const struct catalog_filter *f);

/*
 * /v1/catalog/service/<name>: [ServiceNode], sorted by node name, then
 * service ID. Unknown name: [].
 */
json_t *catalog_service(const struct catalog *c, const char *name,
    const struct catalog_filter *f);

/*
 * /v1/health/service/<name>: [{"Node", "Service", "Checks"}], same order;
 * Checks are the node-level checks plus the instance's own, by CheckID.
 */
json_t *catalog_health_service(const struct catalog *c, const char *name,
    const struct catalog_filter *f);

/* /v1/health/checks/<service>: [HealthCheck] by node, then CheckID. */
json_t *catalog_health_checks(const struct catalog *c, const char *name);

/* /v1/catalog/nodes: [Node] sorted by name. */
json_t *catalog_nodes(const struct catalog *c, const struct catalog_filter *f);

/*
 * /v1/catalog/node/<name>: {"Node": Node, "Services": {"<id>":
 * AgentService}}; an unknown node gives JSON null (not NULL).
 */
json_t *catalog_node(const struct catalog *c, const char *name);

/* /v1/health/node/<name>: [HealthCheck] by CheckID; unknown node: []. */
json_t *catalog_node_checks(const struct catalog *c, const char *name);

enum catalog_state {
	CATALOG_STATE_ANY,
	CATALOG_STATE_PASSING,
	CATALOG_STATE_WARNING,
	CATALOG_STATE_CRITICAL,
};

/* Parses "any", "passing", "warning", "critical"; DSC_EINVAL otherwise. */
int catalog_state_parse(const char *s, enum catalog_state *out);

/* /v1/health/state/<state>: [HealthCheck] by node, then CheckID. */
json_t *catalog_checks_in_state(const struct catalog *c,
    enum catalog_state state, const struct catalog_filter *f);

/*
 * The status of check @check_id on node @node (name matched as always,
 * the id exactly) without building JSON, for callers that ask often (the
 * leader's liveness checks): CATALOG_STATE_PASSING, _WARNING or _CRITICAL,
 * or CATALOG_STATE_ANY when the node or the check does not exist.
 */
enum catalog_state catalog_check_state(const struct catalog *c,
    const char *node, const char *check_id);

/*
 * Calls @fn for every live node holding a node-level check @check_id (one
 * with no ServiceID), with the node's name and the check's status, in no
 * particular order (sort what you collect); stops when @fn returns false.
 * @node is borrowed for the call; @fn must not change the catalog.
 */
typedef bool catalog_node_check_fn(void *arg, const char *node,
    enum catalog_state state);
void catalog_each_node_check(const struct catalog *c, const char *check_id,
    catalog_node_check_fn *fn, void *arg);

/*
 * Consul's aggregated status of a Checks array (borrowed): "maintenance"
 * if any maintenance check, else the worst of critical > warning > passing,
 * "passing" when empty, "" for an unknown status. Static string.
 */
const char *catalog_aggregate_status(const json_t *checks);

/*
 * /v1/kv/<key>: [KVPair] with Value base64 (null when empty); @recurse:
 * every entry under the prefix @key, sorted by key. No match: [] (the HTTP
 * layer answers 404 with the index of "kv:<key>" / "kvp:<key>").
 */
json_t *catalog_kv_get(const struct catalog *c, const char *key,
    bool recurse);

/*
 * /v1/kv/<prefix>?keys[&separator=]: sorted key names under @prefix; with a
 * non-empty @separator, keys are cut after the first separator that follows
 * the prefix and repeats dropped (["web/bar", "web/sub/"]). No match: [].
 */
json_t *catalog_kv_keys(const struct catalog *c, const char *prefix,
    const char *separator);

/*
 * ?raw: the value bytes of @key, borrowed until the next apply, restore or
 * free; @flags may be NULL. False when the key does not exist.
 */
bool catalog_kv_raw(const struct catalog *c, const char *key,
    const uint8_t **value, size_t *len, uint64_t *flags);

/* ---- snapshot, restore, digest -------------------------------------- */

/*
 * Appends the whole state - entities, indexes, tombstones, floors and the
 * client table - to @out as canonical bytes: equal states give equal bytes.
 * Returns 0 or DSC_ENOMEM (@out may then hold a partial snapshot; its
 * original length is the caller's to restore).
 */
int catalog_snapshot(const struct catalog *c, struct buf *out);

/*
 * Replaces @c's state with the snapshot @data. Borrows @data for the call.
 * DSC_ECORRUPT (bad or non-canonical bytes) or DSC_ENOMEM: @c is unchanged.
 * On success catalog_changes() reports "all".
 */
int catalog_restore(struct catalog *c, const void *data, size_t len,
    struct dsc_err *err);

/*
 * BLAKE2b-256 of the canonical snapshot bytes as 64 lowercase hex digits
 * and a NUL: equal on every server that applied the same log. Streams, so
 * it needs no copy of the snapshot. Returns 0 or DSC_ENOMEM.
 */
int catalog_digest(const struct catalog *c, char hex[65]);

#endif

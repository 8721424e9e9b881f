/*
 * local.h - the agent's own state: the services and checks this host
 * runs, and the syncing of them into the catalog.
 *
 * Sources: service definitions in the config dir (*.json in lexical order,
 * consul-api.md 4.1: "service" or "services", "check" or "checks", top-level
 * node checks), read at start and on local_reload(); registrations made
 * through the API (HTTP /v1/agent/... or JSON-RPC agent.*), persisted in
 * the data dir (written to a temp file, fsynced, renamed) and restored at
 * start. A reload replaces what came from files and keeps what came from the
 * API.
 *
 * Decoding is Consul's (consul-api.md 2.1.3, 2.4): keys case-insensitive,
 * snake_case aliases, unknown keys ignored, durations as Go strings or
 * integer nanoseconds, Args/ScriptArgs/Script, automatic check ids
 * ("service:<id>", "service:<id>:<i>"). Invalid input is DSC_EINVAL with a
 * short message fit for a 400 body; nothing is stored then.
 *
 * Ownership (consul-api.md 5.2): the agent owns the services and checks
 * it registered on the node named cfg.name; anti-entropy (at start, on
 * reload, after every change, every cfg.sync_ms) makes the catalog's view
 * of them equal to local state, using catalog.register /
 * catalog.deregister / catalog.check_update through rpca with RPCC_WRITE.
 * It deletes only IDs it owns (kept in the data dir until their
 * deregistration commits). Entries registered on the node by others
 * through /v1/catalog/register are left alone, unlike Consul, and so is
 * the leader's serfHealth check; entries on other nodes are never touched.
 *
 * A reload also runs a full sync at once. The reads return the agent's
 * state in Consul's shapes; /v1/agent/checks values carry the current
 * Status and Output.
 *
 * Liveness: every cfg.heartbeat_ms the agent calls "node.heartbeat" on the
 * servers (cmd/dsc-server/README.md); the leader keeps the node's
 * "serfHealth" check passing while heartbeats arrive and marks it critical
 * when they stop.
 *
 * Check results come from checks.h; a change of status or output is
 * written to the catalog at once (check_update), not at the next sync.
 *
 * Writes that change local state complete asynchronously: @done runs once
 * the change was committed by the cluster (rc 0), or when that failed (rc
 * and err set; the change stays in local state and anti-entropy retries,
 * the caller may report the error). An invalid request fails before
 * anything changes, and then @done is NOT called: the function returns the
 * error. A function that returns 0 calls @done exactly once, from the
 * loop, never from inside the call.
 */
#ifndef DSC_LOCAL_H
#define DSC_LOCAL_H

#include <stdbool.h>

#include <jansson.h>

#include "agent.h"
#include "err.h"

typedef void local_done_fn(int rc, const struct dsc_err *err, void *arg);

/* Loads persisted registrations and the config dir; starts checks, sync
 * and heartbeats. DSC_EINVAL/DSC_ECORRUPT name the file (and line/column
 * for bad JSON). */
struct local *local_new(struct agent *a, struct dsc_err *err);
void local_free(struct local *l);

/* Re-reads the config dir (SIGHUP, PUT /v1/agent/reload). On an error
 * nothing changes. */
int local_reload(struct local *l, struct dsc_err *err);

/* PUT /v1/agent/service/register: @reg is the decoded request body
 * (borrowed), any key case. */
int local_service_register(struct local *l, json_t *reg, bool replace_checks,
    local_done_fn *done, void *arg, struct dsc_err *err);
/* Unknown id: DSC_ENOTFOUND. */
int local_service_deregister(struct local *l, const char *service_id,
    local_done_fn *done, void *arg, struct dsc_err *err);
/* PUT /v1/agent/check/register: a CheckRegistration (Name required). */
int local_check_register(struct local *l, json_t *reg, local_done_fn *done,
    void *arg, struct dsc_err *err);
int local_check_deregister(struct local *l, const char *check_id,
    local_done_fn *done, void *arg, struct dsc_err *err);
/*
 * pass/warn/fail/update of a TTL check: @status "passing", "warning" or
 * "critical", @output the note (NULL: ""). A check that is unknown or not
 * a TTL check: DSC_ENOTFOUND with the message
 * 'CheckID "<id>" does not have associated TTL' (clients match that text).
 */
int local_check_ttl(struct local *l, const char *check_id, const char *status,
    const char *output, local_done_fn *done, void *arg, struct dsc_err *err);
/* Maintenance of the node (@service_id NULL) or of one service: adds or
 * removes the critical check _node_maintenance / _service_maintenance:<id>
 * with Notes @reason. Unknown service: DSC_ENOTFOUND. */
int local_maintenance(struct local *l, const char *service_id, bool enable,
    const char *reason, local_done_fn *done, void *arg, struct dsc_err *err);

/* Reads, as /v1/agent/services, /v1/agent/service/:id and
 * /v1/agent/checks answer them (consul-api.md 2.5); new references, NULL
 * when out of memory or (local_service) unknown. */
json_t *local_services(struct local *l);
json_t *local_service(struct local *l, const char *service_id);
json_t *local_checks(struct local *l);

/* True once the catalog holds local state (the last sync succeeded). */
bool local_in_sync(const struct local *l);

#endif

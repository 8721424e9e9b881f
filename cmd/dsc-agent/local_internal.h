/*
 * local_internal.h - what local.c (state, API writes, config dir,
 * persistence) and local_sync.c (anti-entropy, heartbeats, the reaper)
 * share.
 *
 * Every service and check carries two generations per kind of change:
 * "def" moves when its definition changes (a catalog.register is needed),
 * "st" when its status or output changes (a catalog.check_update is
 * enough). A write built at generation g marks the item synced at g when
 * it commits; a change made meanwhile leaves the item unsynced, so the
 * next pass sends it again and no change is lost to a race.
 */
#ifndef DSC_LOCAL_INTERNAL_H
#define DSC_LOCAL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "hmap.h"
#include "local.h"
#include "svcdef.h"

/* The leader owns this check (liveness); local state never touches it. */
#define LOCAL_SERF_CHECK   "serfHealth"
#define LOCAL_NODE_MAINT   "_node_maintenance"
#define LOCAL_SVC_MAINT    "_service_maintenance:"
/* The file in the data dir that holds API registrations and ownership. */
#define LOCAL_STATE_FILE   "local.json"
#define LOCAL_STATE_MAX    (64 * 1024 * 1024)
/* Config-dir files read per load. */
#define LOCAL_FILES_MAX    4096
/* How often services whose checks stay critical are looked at. */
#define LOCAL_REAP_MS      5000
/* Retry after a failed sync pass: doubles from min to max (or to the sync
 * interval when that is shorter). */
#define LOCAL_RETRY_MIN_MS 500
#define LOCAL_RETRY_MAX_MS 10000

enum local_origin { ORIGIN_FILE, ORIGIN_API };

struct lsvc {
	struct svc_def def; /* def.checks moved into the check map */
	enum local_origin origin;
	json_t *raw; /* the registration as received (persisted) */
	uint64_t def_gen, def_synced;
};

struct lcheck {
	struct local *l;
	struct svc_check def;
	enum local_origin origin;
	bool in_service; /* came with its service's registration */
	bool maint;      /* a maintenance check: no runner */
	json_t *raw;     /* standalone API registration (persisted) */
	struct check_run *run;
	char *status, *output;
	uint64_t critical_since; /* monotonic ms; 0: not critical */
	uint64_t def_gen, def_synced, st_gen, st_synced;
};

struct waiter {
	struct waiter *next;
	local_done_fn *fn;
	void *arg;
};

struct sync_pass;

struct local {
	struct agent *a;
	struct hmap svcs;   /* struct lsvc by ID */
	struct hmap checks; /* struct lcheck by ID */
	/* IDs this agent registered in the catalog and has not yet seen
	 * deregistered there: what anti-entropy may delete. */
	struct hmap owned_svcs, owned_checks; /* char * */
	char *node_maint; /* reason while the node is in maintenance */
	struct waiter *waiters, **waiters_tail;
	struct sync_pass *pass;
	bool want_pass, want_full, in_sync;
	unsigned retry_ms;
	struct event *kick, *sync_timer, *retry_timer, *beat_timer, *reap_timer;
	struct rpca_call *beat;
	bool beat_failing;
	uint64_t gen; /* source of generations */
};

/* local.c */
struct lsvc *local_svc(struct local *l, const char *id);
struct lcheck *local_check(struct local *l, const char *id);
int local_persist(struct local *l);
const char *local_node_address(const struct local *l);
/* Removes service @id and its checks from local state (not the catalog:
 * anti-entropy deregisters what is owned and gone). */
void local_svc_remove(struct local *l, const char *id);

/* local_sync.c */
int local_sync_start(struct local *l, struct dsc_err *err);
void local_sync_stop(struct local *l);
/* Asks for a pass soon (from the loop); @full reads the catalog first. */
void local_sync_request(struct local *l, bool full);
/* Queues @fn for the end of the next pass that starts after now. */
int local_sync_wait(
    struct local *l, local_done_fn *fn, void *arg, struct dsc_err *err);
/* The catalog's Checks element for @c with its current status. */
json_t *local_check_json(const struct lcheck *c);

#endif

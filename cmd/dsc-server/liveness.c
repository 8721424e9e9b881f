/*
 * liveness.c - the leader's side of node liveness (liveness.h): heartbeats
 * in, serfHealth registrations and critical marks out.
 *
 * The soft state is one map, lowercase node name -> struct beat: when the
 * node was last heard from and the critical mark in flight, if any. It
 * lives only on the leader and only as long as it says something: an entry
 * older than the TTL with nothing in flight is dropped by the next sweep,
 * since "never heard from" then judges the node the same way. Losing
 * leadership drops it all; the next leader starts over with a full TTL of
 * grace for every node.
 *
 * A heartbeat that arrives while a critical mark for its node is in
 * flight proposes the passing registration anyway: the log orders it after
 * the mark, so a live node never stays critical.
 */
#include "liveness.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "catalog.h"
#include "clock.h"
#include "hmap.h"
#include "log.h"
#include "raft.h"

struct beat {
	uint64_t last_ms;         /* monotonic; 0: not heard while leading */
	struct server_wait *mark; /* a critical mark in flight */
	char lname[];
};

struct liveness {
	struct server *s;
	struct hmap beats; /* lname -> struct beat */
	struct event *sweep_ev;
	bool leading;
	uint64_t leader_since_ms;
};

static const char *
beat_key(const void *item)
{
	return ((const struct beat *)item)->lname;
}

/* Catalog names match ASCII case-insensitively; false when too long. */
static bool
lower(const char *name, char out[CATALOG_NAME_MAX + 1])
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++) {
		if (i == CATALOG_NAME_MAX)
			return false;
		out[i] = name[i] >= 'A' && name[i] <= 'Z'
		    ? (char)(name[i] - 'A' + 'a')
		    : name[i];
	}
	out[i] = '\0';
	return true;
}

/* The entry for @lname, created when missing; NULL when full or no
 * memory (@err says which). */
static struct beat *
beat_get(struct liveness *l, const char *lname, struct dsc_err *err)
{
	struct beat *b = hmap_get(&l->beats, lname);
	size_t n = strlen(lname) + 1;

	if (b != NULL)
		return b;
	if (l->beats.n >= LIVENESS_NODES_MAX) {
		dsc_errorf(err, DSC_EBUSY, "the leader tracks %d nodes already",
		    LIVENESS_NODES_MAX);
		return NULL;
	}
	if ((b = calloc(1, sizeof(*b) + n)) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(b->lname, lname, n);
	if (hmap_put(&l->beats, b, NULL) != 0) {
		free(b);
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	return b;
}

static void
forget_all(struct liveness *l)
{
	struct beat *b;
	size_t it = 0;

	while ((b = hmap_next(&l->beats, &it)) != NULL) {
		server_wait_cancel(l->s, b->mark);
		free(b);
	}
	hmap_release(&l->beats);
}

void
liveness_on_role(struct server *s)
{
	struct liveness *l = s->liveness;
	bool leading = raft_role(s->raft) == RAFT_LEADER;

	if (l == NULL || leading == l->leading)
		return;
	l->leading = leading;
	if (!leading) {
		forget_all(l);
		return;
	}
	l->leader_since_ms = dsc_mono_ms();
	log_info("liveness: every node has %u ms to send a heartbeat",
	    s->cfg.node_ttl_ms);
}

/* Proposes @cmd (taken), encoded as the catalog wants it. */
static struct server_wait *
propose_json(struct server *s, json_t *cmd, server_propose_fn *fn, void *arg,
    struct dsc_err *err)
{
	char *text =
	    cmd != NULL ? json_dumps(cmd, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	struct server_wait *w;

	json_decref(cmd);
	if (text == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	w = server_propose(s, text, strlen(text), 0, fn, arg, err);
	free(text);
	return w;
}

/* The registration that makes @b's node exist with serfHealth passing,
 * keeping the fields of a node that exists. */
static struct server_wait *
propose_alive(struct server *s, const struct liveness_beat *b,
    server_propose_fn *fn, void *arg, struct dsc_err *err)
{
	json_t *node = catalog_node(s->catalog, b->node), *cmd;
	bool exists = node != NULL && !json_is_null(node);

	json_decref(node);
	cmd = json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s, s:s}}", "Op",
	    "register", "Node", b->node, "Address", b->address,
	    "SkipNodeUpdate", exists, "Check", "CheckID", LIVENESS_CHECK_ID,
	    "Name", LIVENESS_CHECK_NAME, "Status", "passing", "Output",
	    LIVENESS_ALIVE);
	if (cmd != NULL && b->id != NULL && b->id[0] != '\0' &&
	    json_object_set_new(cmd, "ID", json_string(b->id)) != 0) {
		json_decref(cmd);
		cmd = NULL;
	}
	return propose_json(s, cmd, fn, arg, err);
}

int
liveness_heartbeat(struct server *s, const struct liveness_beat *b,
    server_propose_fn *fn, void *arg, struct server_wait **wait,
    uint64_t *index, struct dsc_err *err)
{
	struct liveness *l = s->liveness;
	char lname[CATALOG_NAME_MAX + 1], key[CATALOG_NAME_MAX + 8];
	enum catalog_state st;
	struct beat *e;

	*wait = NULL;
	liveness_on_role(s);
	if (!l->leading || s->stopping)
		return dsc_errorf(err, DSC_ENOTLEADER,
		    "not the leader: heartbeats go to the leader");
	if (!lower(b->node, lname))
		return dsc_errorf(err, DSC_EINVAL, "node name longer than %d",
		    CATALOG_NAME_MAX);
	st = catalog_check_state(s->catalog, b->node, LIVENESS_CHECK_ID);
	e = hmap_get(&l->beats, lname);
	/* Applied behind commit: the state read may be about to change. */
	if (st == CATALOG_STATE_PASSING && (e == NULL || e->mark == NULL) &&
	    raft_applied_index(s->raft) >= raft_commit_index(s->raft)) {
		if ((e = beat_get(l, lname, err)) == NULL)
			return err->code;
		e->last_ms = dsc_mono_ms();
		snprintf(key, sizeof(key), "node:%s", b->node);
		*index = catalog_index(s->catalog, key);
		return 0;
	}
	/* Only a heartbeat that may be proposed is remembered, so names the
	 * catalog refuses take no room. */
	if (e == NULL && (e = beat_get(l, lname, err)) == NULL)
		return err->code;
	if ((*wait = propose_alive(s, b, fn, arg, err)) == NULL) {
		if (e->mark == NULL && e->last_ms == 0) {
			hmap_del(&l->beats, lname);
			free(e);
		}
		return err->code;
	}
	e->last_ms = dsc_mono_ms();
	if (st == CATALOG_STATE_CRITICAL || st == CATALOG_STATE_WARNING)
		log_info("liveness: node '%s' is alive again", b->node);
	return 0;
}

/* ---- the sweep ------------------------------------------------------------
 */

struct sweep {
	struct liveness *l;
	uint64_t now, ttl;
	unsigned marked;
};

static void
mark_done(void *arg, int rv, uint64_t index, json_t *result)
{
	struct beat *b = arg;

	(void)index;
	(void)result;
	b->mark = NULL;
	if (rv != 0)
		log_debug("liveness: marking '%s' critical: %s", b->lname,
		    dsc_strerror(rv));
}

static bool
sweep_node(void *arg, const char *node, enum catalog_state st)
{
	struct sweep *sw = arg;
	struct liveness *l = sw->l;
	struct dsc_err err = DSC_ERR_INIT;
	char lname[CATALOG_NAME_MAX + 1];
	uint64_t last;
	struct beat *b;
	json_t *cmd;

	if (st != CATALOG_STATE_PASSING || !lower(node, lname))
		return true;
	b = hmap_get(&l->beats, lname);
	if (b != NULL && b->mark != NULL)
		return true;
	last = l->leader_since_ms;
	if (b != NULL && b->last_ms > last)
		last = b->last_ms;
	if (sw->now - last < sw->ttl)
		return true;
	if (b == NULL && (b = beat_get(l, lname, &err)) == NULL) {
		log_warn("liveness: unable to mark '%s' critical: %s", node,
		    dsc_err_msg(&err));
		return false;
	}
	cmd = json_pack("{s:s, s:s, s:s, s:s, s:s}", "Op", "check_update",
	    "Node", node, "CheckID", LIVENESS_CHECK_ID, "Status", "critical",
	    "Output", LIVENESS_DEAD);
	b->mark = propose_json(l->s, cmd, mark_done, b, &err);
	if (b->mark == NULL) {
		log_warn("liveness: unable to mark '%s' critical: %s", node,
		    dsc_err_msg(&err));
		return false; /* no leader, a stalled disk: try next sweep */
	}
	log_info("liveness: node '%s' silent for %" PRIu64
	         " ms: marking it critical",
	    node, sw->now - last);
	return ++sw->marked < LIVENESS_SWEEP_MAX;
}

/* Drops what says no more than "never heard from". */
static void
prune(struct liveness *l, uint64_t now, uint64_t ttl)
{
	struct beat *b;
	size_t it = 0;

	while ((b = hmap_next(&l->beats, &it)) != NULL)
		if (b->mark == NULL && now - b->last_ms > ttl) {
			(void)hmap_take(&l->beats, &it);
			free(b);
		}
}

static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct liveness *l = arg;
	struct server *s = l->s;
	struct sweep sw = { l, dsc_mono_ms(), s->cfg.node_ttl_ms, 0 };

	(void)fd;
	(void)what;
	liveness_on_role(s);
	if (!l->leading || s->stopping || s->disk_stalled || s->wal_failed)
		return;
	catalog_each_node_check(s->catalog, LIVENESS_CHECK_ID, sweep_node, &sw);
	prune(l, sw.now, sw.ttl);
}

/* ---- life cycle --------------------------------------------------------- */

int
liveness_start(struct server *s, struct dsc_err *err)
{
	struct liveness *l = calloc(1, sizeof(*l));
	unsigned every = s->cfg.node_ttl_ms / 4;
	struct timeval tv = { every / 1000, (every % 1000) * 1000 };

	if (l == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	l->s = s;
	hmap_init(&l->beats, beat_key);
	l->sweep_ev = event_new(s->base, -1, EV_PERSIST, sweep_cb, l);
	if (l->sweep_ev == NULL || event_add(l->sweep_ev, &tv) != 0) {
		if (l->sweep_ev != NULL)
			event_free(l->sweep_ev);
		free(l);
		return dsc_errorf(err, DSC_ENOMEM, "unable to start liveness");
	}
	s->liveness = l;
	return 0;
}

void
liveness_free(struct server *s)
{
	struct liveness *l = s->liveness;

	if (l == NULL)
		return;
	forget_all(l);
	event_free(l->sweep_ev);
	free(l);
	s->liveness = NULL;
}

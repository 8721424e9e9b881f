/*
 * local_sync.c - anti-entropy, heartbeats and the critical-service reaper.
 *
 * A pass makes the catalog's view of this node equal to local state. A
 * push pass sends what local state knows is unsynced: catalog.register for
 * a service with all its checks (or for the node-level checks), a
 * catalog.check_update for a check whose status alone moved, and
 * catalog.deregister for owned IDs that are no longer local. A full pass
 * (at start, on reload, every cfg.sync_ms) first reads the node
 * (catalog.node) and its service checks (health.checks per local service
 * name), marks as unsynced whatever differs, and then pushes.
 *
 * Ownership: the agent deletes from the catalog only IDs it registered
 * itself (the owned sets, kept in the data dir). Services and checks on
 * this node that others registered through /v1/catalog/register are left
 * alone (consul-api.md 5 item 2), and so is the leader's serfHealth
 * check. Entries on other nodes are never read or written.
 *
 * One pass runs at a time. A change during a pass asks for another, which
 * starts when the running one ends; a waiter (local_sync_wait) is answered
 * by the first pass that starts after it was queued, so it sees its
 * change committed. A failed pass is retried with backoff.
 */
#include "local_internal.h"

#include <string.h>
#include <strings.h>

#include "clock.h"
#include "log.h"
#include "mem.h"

enum op_kind {
	OP_READ_NODE,
	OP_READ_CHECKS,
	OP_REGISTER,
	OP_CHECK_UPDATE,
	OP_DEREG_SVC,
	OP_DEREG_CHECK,
};

struct op_check {
	char *id;
	uint64_t def_gen, st_gen;
};

struct op {
	struct sync_pass *p;
	struct op *prev, *next;
	enum op_kind kind;
	char *id;     /* service (register, dereg) or check */
	uint64_t gen; /* the service's def_gen, or a check's st_gen */
	struct op_check *checks; /* OP_REGISTER: the checks it carries */
	size_t n_checks;
	struct rpca_call *call;
	/* a write waiting its turn */
	struct op *qnext;
	const char *method;
	json_t *params;
	unsigned flags;
};

struct sync_pass {
	struct local *l;
	bool full, pushing;
	struct waiter *waiters;
	struct op *ops; /* in flight */
	/* Writes go one at a time: the catalog refuses a write whose Seq is
	 * below one it applied, and parallel calls may arrive out of order. */
	struct op *queue, **queue_tail;
	bool writing;
	size_t pending; /* in flight and queued */
	int rc;
	struct dsc_err err;
	json_t *node_services; /* full: catalog.node's services; {} if none */
	json_t *checks;        /* full: this node's service checks */
};

static void pass_push(struct sync_pass *p);
static void pass_end(struct sync_pass *p);

/* ---- helpers ------------------------------------------------------------ */

static unsigned
sync_ms(const struct local *l)
{
	return l->a->cfg.sync_ms > 0 ? l->a->cfg.sync_ms
	                             : AGENT_SYNC_MS_DEFAULT;
}

static unsigned
beat_ms(const struct local *l)
{
	return l->a->cfg.heartbeat_ms > 0 ? l->a->cfg.heartbeat_ms
	                                  : AGENT_HEARTBEAT_MS_DEFAULT;
}

static void
arm(struct event *ev, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(ev, &tv);
}

json_t *
local_check_json(const struct lcheck *c)
{
	json_t *v = json_deep_copy(c->def.catalog);

	if (v != NULL &&
	    (json_object_set_new(v, "Status", json_string(c->status)) != 0 ||
	        json_object_set_new(v, "Output", json_string(c->output)) !=
	            0)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Node, Address, ID and the tagged addresses Consul gives an agent's node:
 * the head of every registration this agent sends. */
static json_t *
node_params(const struct local *l)
{
	const char *addr = local_node_address(l);
	json_t *p, *ta;

	p = json_pack("{s:s, s:s}", "Node", l->a->cfg.name, "Address", addr);
	ta = json_pack("{s:s, s:s}", "lan", addr, "wan", addr);
	if (p == NULL || ta == NULL ||
	    (strchr(addr, ':') == NULL &&
	        (json_object_set_new(ta, "lan_ipv4", json_string(addr)) ||
	            json_object_set_new(ta, "wan_ipv4", json_string(addr)))) ||
	    json_object_set_new(p, "TaggedAddresses", json_incref(ta)) != 0 ||
	    (l->a->cfg.node_id != NULL &&
	        json_object_set_new(p, "ID", json_string(l->a->cfg.node_id)))) {
		json_decref(ta);
		json_decref(p);
		return NULL;
	}
	json_decref(ta);
	return p;
}

static void
fail(struct sync_pass *p, int rc, const struct dsc_err *err)
{
	if (p->rc != 0)
		return;
	p->rc = rc;
	if (err != NULL)
		p->err = *err;
	else
		dsc_errorf(&p->err, rc, "%s", dsc_strerror(rc));
}

static void
op_free(struct op *o)
{
	for (size_t i = 0; i < o->n_checks; i++)
		dsc_free(o->checks[i].id);
	dsc_free(o->checks);
	dsc_free(o->id);
	json_decref(o->params);
	dsc_free(o);
}

static void
op_unlink(struct op *o)
{
	struct sync_pass *p = o->p;

	if (o->prev != NULL)
		o->prev->next = o->next;
	else
		p->ops = o->next;
	if (o->next != NULL)
		o->next->prev = o->prev;
	p->pending--;
}

static void on_op(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg);

/* Calls @o now; false (and @o freed) when the call could not start. */
static bool
op_call(struct sync_pass *p, struct op *o)
{
	struct dsc_err err = DSC_ERR_INIT;

	o->call = rpca_call(
	    p->l->a->up, o->method, o->params, o->flags, on_op, o, &err);
	json_decref(o->params);
	o->params = NULL;
	if (o->call == NULL) {
		log_warn("sync: %s: %s", o->method, err.msg);
		fail(p, err.code, &err);
		op_free(o);
		return false;
	}
	o->next = p->ops;
	if (p->ops != NULL)
		p->ops->prev = o;
	p->ops = o;
	p->pending++;
	return true;
}

/* Starts the next queued write unless one is in flight. */
static void
pump(struct sync_pass *p)
{
	while (!p->writing && p->queue != NULL) {
		struct op *o = p->queue;

		if ((p->queue = o->qnext) == NULL)
			p->queue_tail = &p->queue;
		p->pending--;
		p->writing = op_call(p, o);
	}
}

/* Starts (a read) or queues (a write) @o's call with @params (stolen);
 * NULL @params is out of memory. */
static void
op_start(struct sync_pass *p, struct op *o, const char *method, json_t *params,
    unsigned flags)
{
	o->p = p;
	if (params == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		op_free(o);
		return;
	}
	o->method = method;
	o->params = params;
	o->flags = flags;
	if (flags & RPCC_WRITE) {
		*p->queue_tail = o;
		p->queue_tail = &o->qnext;
		p->pending++;
		pump(p);
		return;
	}
	op_call(p, o);
}

static struct op *
op_new(enum op_kind kind, const char *id)
{
	struct op *o = dsc_calloc(1, sizeof(*o));

	if (o != NULL && id != NULL && (o->id = dsc_strdup(id)) == NULL) {
		dsc_free(o);
		return NULL;
	}
	if (o != NULL)
		o->kind = kind;
	return o;
}

/* ---- reads of a full pass ------------------------------------------------ */

static bool
same_service(json_t *cat, const struct lsvc *s)
{
	static const char *const keys[] = { "Service", "Tags", "Address",
		"Port", "Meta", "Weights", "EnableTagOverride", NULL };
	json_t *mine = s->def.catalog, *ta, *cta;

	if (!json_is_object(cat))
		return false;
	for (int i = 0; keys[i] != NULL; i++)
		if (!json_equal(json_object_get(cat, keys[i]),
		        json_object_get(mine, keys[i])))
			return false;
	ta = json_object_get(mine, "TaggedAddresses");
	cta = json_object_get(cat, "TaggedAddresses");
	if (ta != NULL)
		return json_equal(ta, cta);
	return cta == NULL || json_object_size(cta) == 0;
}

static bool
same_str(json_t *o, const char *key, const char *want)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v != NULL && strcmp(v, want) == 0;
}

/* Compares what the catalog holds with local state and marks the
 * differences unsynced; learns owned IDs that must go. */
static void
diff(struct sync_pass *p)
{
	struct local *l = p->l;
	size_t it = 0, i;
	struct lsvc *s;
	struct lcheck *c;
	json_t *v;

	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		if (!same_service(
		        json_object_get(p->node_services, s->def.id), s))
			s->def_synced = 0;
	it = 0;
	while ((c = hmap_next(&l->checks, &it)) != NULL) {
		json_t *found = NULL;

		if (*c->def.service_id == '\0') {
			/* Node checks cannot be read per node; re-register
			 * them (an equal write moves no index). */
			c->def_synced = 0;
			continue;
		}
		json_array_foreach(p->checks, i, v)
		{
			if (same_str(v, "CheckID", c->def.id))
				found = v;
		}
		if (found == NULL ||
		    !same_str(found, "ServiceID", c->def.service_id) ||
		    !json_equal(json_object_get(found, "Name"),
		        json_object_get(c->def.catalog, "Name")) ||
		    !json_equal(json_object_get(found, "Notes"),
		        json_object_get(c->def.catalog, "Notes")))
			c->def_synced = 0;
		else if (!same_str(found, "Status", c->status) ||
		    !same_str(found, "Output", c->output))
			c->st_synced = 0;
	}
	/* What the catalog has and local state lacks: deleted only if ours. */
	const char *id;

	json_object_foreach(p->node_services, id, v)
	{
		if (local_svc(l, id) == NULL &&
		    hmap_get(&l->owned_svcs, id) == NULL)
			log_debug("sync: service '%s' on this node is not "
			          "the agent's: left alone",
			    id);
	}
}

static void
read_done(struct sync_pass *p)
{
	if (p->pending > 0)
		return;
	if (p->rc != 0) {
		pass_end(p);
		return;
	}
	if (p->node_services == NULL)
		p->node_services = json_object();
	if (p->checks == NULL)
		p->checks = json_array();
	if (p->node_services == NULL || p->checks == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		pass_end(p);
		return;
	}
	diff(p);
	pass_push(p);
}

static void
on_read(struct op *o, int rc, json_t *result, const struct dsc_err *err)
{
	struct sync_pass *p = o->p;
	struct local *l = p->l;
	size_t i;
	json_t *v;

	if (o->kind == OP_READ_NODE) {
		if (rc == DSC_ENOTFOUND) {
			p->node_services = json_object();
		} else if (rc == 0) {
			v = json_object_get(result, "services");
			p->node_services =
			    json_is_object(v) ? json_incref(v) : json_object();
		} else {
			fail(p, rc, err);
		}
		return;
	}
	if (rc != 0) {
		fail(p, rc, err);
		return;
	}
	if (p->checks == NULL && (p->checks = json_array()) == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		return;
	}
	json_array_foreach(json_object_get(result, "checks"), i, v)
	{
		const char *node =
		    json_string_value(json_object_get(v, "Node"));

		if (node != NULL && strcasecmp(node, l->a->cfg.name) == 0 &&
		    json_array_append(p->checks, v) != 0)
			fail(p, DSC_ENOMEM, NULL);
	}
}

static void
pass_read(struct sync_pass *p)
{
	struct local *l = p->l;
	json_t *names = json_object();
	size_t it = 0;
	struct lsvc *s;
	const char *name;
	json_t *v;

	if (names == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		pass_end(p);
		return;
	}
	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		json_object_set_new(names, s->def.name, json_true());
	op_start(p, op_new(OP_READ_NODE, NULL), "catalog.node",
	    json_pack("{s:s}", "Node", l->a->cfg.name), 0);
	json_object_foreach(names, name, v)
	{
		struct op *o = op_new(OP_READ_CHECKS, NULL);

		if (o == NULL) {
			fail(p, DSC_ENOMEM, NULL);
			break;
		}
		op_start(p, o, "health.checks",
		    json_pack("{s:s}", "Service", name), 0);
	}
	json_decref(names);
	if (p->pending == 0)
		read_done(p);
}

/* ---- writes -------------------------------------------------------------- */

/* Adds check @c to the register @o and its params' @checks (room for it
 * is allocated); -1 when out of memory. */
static int
op_add_check(struct op *o, json_t *checks, struct lcheck *c)
{
	size_t n = o->n_checks;

	if (json_array_append_new(checks, local_check_json(c)) != 0 ||
	    (o->checks[n].id = dsc_strdup(c->def.id)) == NULL)
		return -1;
	o->checks[n].def_gen = c->def_gen;
	o->checks[n].st_gen = c->st_gen;
	o->n_checks = n + 1;
	return 0;
}

/* The register of service @s with every one of its checks. */
static void
push_service(struct sync_pass *p, struct lsvc *s)
{
	struct local *l = p->l;
	struct op *o = op_new(OP_REGISTER, s->def.id);
	json_t *params = node_params(l), *checks = json_array();
	size_t it = 0;
	struct lcheck *c;

	if (o == NULL || params == NULL || checks == NULL ||
	    json_object_set(params, "Service", s->def.catalog) != 0 ||
	    json_object_set(params, "Checks", checks) != 0 ||
	    (o->checks = dsc_calloc(l->checks.n + 1, sizeof(*o->checks))) ==
	        NULL)
		goto oom;
	o->gen = s->def_gen;
	while ((c = hmap_next(&l->checks, &it)) != NULL) {
		if (strcmp(c->def.service_id, s->def.id) != 0)
			continue;
		if (op_add_check(o, checks, c) != 0)
			goto oom;
	}
	json_decref(checks);
	op_start(p, o, "catalog.register", params, RPCC_WRITE);
	return;
oom:
	json_decref(checks);
	json_decref(params);
	if (o != NULL)
		op_free(o);
	fail(p, DSC_ENOMEM, NULL);
}

static void
push_node_checks(struct sync_pass *p)
{
	struct local *l = p->l;
	struct op *o = op_new(OP_REGISTER, NULL);
	json_t *params = node_params(l), *checks = json_array();
	size_t it = 0;
	struct lcheck *c;

	if (o == NULL || params == NULL || checks == NULL ||
	    json_object_set(params, "Checks", checks) != 0 ||
	    (o->checks = dsc_calloc(l->checks.n + 1, sizeof(*o->checks))) ==
	        NULL)
		goto oom;
	while ((c = hmap_next(&l->checks, &it)) != NULL) {
		if (*c->def.service_id != '\0' || c->def_synced == c->def_gen)
			continue;
		if (op_add_check(o, checks, c) != 0)
			goto oom;
	}
	json_decref(checks);
	if (o->n_checks == 0) {
		json_decref(params);
		op_free(o);
		return;
	}
	op_start(p, o, "catalog.register", params, RPCC_WRITE);
	return;
oom:
	json_decref(checks);
	json_decref(params);
	if (o != NULL)
		op_free(o);
	fail(p, DSC_ENOMEM, NULL);
}

static void
push_check_update(struct sync_pass *p, struct lcheck *c)
{
	struct op *o = op_new(OP_CHECK_UPDATE, c->def.id);

	if (o == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		return;
	}
	o->gen = c->st_gen;
	op_start(p, o, "catalog.check_update",
	    json_pack("{s:s, s:s, s:s, s:s}", "Node", p->l->a->cfg.name,
	        "CheckID", c->def.id, "Status", c->status, "Output", c->output),
	    RPCC_WRITE);
}

static void
push_dereg(struct sync_pass *p, enum op_kind kind, const char *id)
{
	struct op *o = op_new(kind, id);

	if (o == NULL) {
		fail(p, DSC_ENOMEM, NULL);
		return;
	}
	op_start(p, o, "catalog.deregister",
	    json_pack("{s:s, s:s}", "Node", p->l->a->cfg.name,
	        kind == OP_DEREG_SVC ? "ServiceID" : "CheckID", id),
	    RPCC_WRITE);
}

static bool
svc_needs_register(struct local *l, struct lsvc *s)
{
	size_t it = 0;
	struct lcheck *c;

	if (s->def_synced != s->def_gen)
		return true;
	while ((c = hmap_next(&l->checks, &it)) != NULL)
		if (c->def_synced != c->def_gen &&
		    strcmp(c->def.service_id, s->def.id) == 0)
			return true;
	return false;
}

static void
pass_push(struct sync_pass *p)
{
	struct local *l = p->l;
	size_t it = 0;
	struct lsvc *s;
	struct lcheck *c;
	const char *id;

	p->pushing = true;
	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		if (svc_needs_register(l, s))
			push_service(p, s);
	push_node_checks(p);
	it = 0;
	while ((c = hmap_next(&l->checks, &it)) != NULL) {
		bool orphan = *c->def.service_id != '\0' &&
		    local_svc(l, c->def.service_id) == NULL;

		if (!orphan && c->def_synced == c->def_gen &&
		    c->st_synced != c->st_gen)
			push_check_update(p, c);
	}
	it = 0;
	while ((id = hmap_next(&l->owned_svcs, &it)) != NULL)
		if (local_svc(l, id) == NULL)
			push_dereg(p, OP_DEREG_SVC, id);
	it = 0;
	while ((id = hmap_next(&l->owned_checks, &it)) != NULL)
		if (local_check(l, id) == NULL)
			push_dereg(p, OP_DEREG_CHECK, id);
	if (p->pending == 0)
		pass_end(p);
}

static void
disown(struct hmap *m, const char *id)
{
	dsc_free(hmap_del(m, id));
}

static void
on_write(struct op *o, int rc, const struct dsc_err *err)
{
	struct local *l = o->p->l;
	struct lsvc *s;
	struct lcheck *c;

	if (rc != 0) {
		log_warn("sync: %s '%s': %s",
		    o->kind == OP_CHECK_UPDATE   ? "update of check"
		        : o->kind == OP_REGISTER ? "register of"
		                                 : "deregister of",
		    o->id != NULL ? o->id : "node checks", err->msg);
		/* The catalog lost the check: register it whole again. */
		if (rc == DSC_ENOTFOUND && o->kind == OP_CHECK_UPDATE &&
		    (c = local_check(l, o->id)) != NULL) {
			c->def_synced = 0;
			l->want_pass = true;
		}
		fail(o->p, rc, err);
		return;
	}
	switch (o->kind) {
	case OP_REGISTER:
		if (o->id != NULL && (s = local_svc(l, o->id)) != NULL &&
		    s->def_synced < o->gen)
			s->def_synced = o->gen;
		for (size_t i = 0; i < o->n_checks; i++) {
			if ((c = local_check(l, o->checks[i].id)) == NULL)
				continue;
			if (c->def_synced < o->checks[i].def_gen)
				c->def_synced = o->checks[i].def_gen;
			if (c->st_synced < o->checks[i].st_gen)
				c->st_synced = o->checks[i].st_gen;
		}
		break;
	case OP_CHECK_UPDATE:
		if ((c = local_check(l, o->id)) != NULL &&
		    c->st_synced < o->gen)
			c->st_synced = o->gen;
		break;
	case OP_DEREG_SVC:
		if (local_svc(l, o->id) == NULL) {
			disown(&l->owned_svcs, o->id);
			local_persist(l);
		}
		break;
	case OP_DEREG_CHECK:
		if (local_check(l, o->id) == NULL) {
			disown(&l->owned_checks, o->id);
			local_persist(l);
		}
		break;
	default:
		break;
	}
}

static void
on_op(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg)
{
	struct op *o = arg;
	struct sync_pass *p = o->p;

	(void)meta;
	op_unlink(o);
	if (o->kind == OP_READ_NODE || o->kind == OP_READ_CHECKS) {
		on_read(o, rc, result, err);
	} else {
		on_write(o, rc, err);
		p->writing = false;
	}
	op_free(o);
	pump(p);
	if (p->pending > 0)
		return;
	if (p->pushing)
		pass_end(p);
	else
		read_done(p);
}

/* ---- passes ----------------------------------------------------------------
 */

static bool
all_synced(struct local *l)
{
	size_t it = 0;
	struct lsvc *s;
	struct lcheck *c;
	const char *id;

	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		if (s->def_synced != s->def_gen)
			return false;
	it = 0;
	while ((c = hmap_next(&l->checks, &it)) != NULL)
		if (c->def_synced != c->def_gen || c->st_synced != c->st_gen)
			return false;
	it = 0;
	while ((id = hmap_next(&l->owned_svcs, &it)) != NULL)
		if (local_svc(l, id) == NULL)
			return false;
	it = 0;
	while ((id = hmap_next(&l->owned_checks, &it)) != NULL)
		if (local_check(l, id) == NULL)
			return false;
	return true;
}

static void
pass_free(struct sync_pass *p)
{
	struct waiter *w;

	while (p->ops != NULL) {
		struct op *o = p->ops;

		rpca_cancel(o->call);
		op_unlink(o);
		op_free(o);
	}
	while (p->queue != NULL) {
		struct op *o = p->queue;

		p->queue = o->qnext;
		op_free(o);
	}
	while ((w = p->waiters) != NULL) {
		p->waiters = w->next;
		dsc_free(w);
	}
	json_decref(p->node_services);
	json_decref(p->checks);
	dsc_free(p);
}

static void
pass_end(struct sync_pass *p)
{
	struct local *l = p->l;
	struct waiter *w;
	bool was = l->in_sync, ok;

	l->pass = NULL;
	l->in_sync = p->rc == 0 && all_synced(l);
	if (l->in_sync && !was)
		log_debug("in sync with the catalog");
	if (p->rc != 0) {
		log_warn("sync failed, retrying in %u ms: %s", l->retry_ms,
		    p->err.msg);
		arm(l->retry_timer, l->retry_ms);
		unsigned max = sync_ms(l) < LOCAL_RETRY_MAX_MS
		    ? sync_ms(l)
		    : LOCAL_RETRY_MAX_MS;

		l->retry_ms = l->retry_ms * 2 > max ? max : l->retry_ms * 2;
	} else {
		l->retry_ms = LOCAL_RETRY_MIN_MS;
		if (!l->in_sync)
			l->want_pass = true;
	}
	/* Waiters may call back into local.h: they run with no pass. */
	while ((w = p->waiters) != NULL) {
		p->waiters = w->next;
		w->fn(p->rc, p->rc != 0 ? &p->err : NULL, w->arg);
		dsc_free(w);
	}
	ok = p->rc == 0;
	pass_free(p);
	/* After a failure the retry timer asks for the next pass. */
	if (l->want_pass && ok)
		event_active(l->kick, EV_TIMEOUT, 0);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct local *l = arg;
	struct sync_pass *p;

	(void)fd;
	(void)what;
	if (l->pass != NULL || !l->want_pass)
		return;
	if ((p = dsc_calloc(1, sizeof(*p))) == NULL) {
		log_err("sync: out of memory");
		arm(l->retry_timer, l->retry_ms);
		return;
	}
	p->l = l;
	p->queue_tail = &p->queue;
	p->full = l->want_full;
	p->waiters = l->waiters;
	l->waiters = NULL;
	l->waiters_tail = &l->waiters;
	l->want_pass = l->want_full = false;
	l->pass = p;
	if (p->full)
		pass_read(p);
	else
		pass_push(p);
}

void
local_sync_request(struct local *l, bool full)
{
	l->want_pass = true;
	l->want_full = l->want_full || full;
	if (l->pass == NULL && l->kick != NULL)
		event_active(l->kick, EV_TIMEOUT, 0);
}

int
local_sync_wait(
    struct local *l, local_done_fn *fn, void *arg, struct dsc_err *err)
{
	struct waiter *w = dsc_calloc(1, sizeof(*w));

	if (w == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	w->fn = fn;
	w->arg = arg;
	*l->waiters_tail = w;
	l->waiters_tail = &w->next;
	return 0;
}

/* ---- timers: periodic sync, retry, heartbeat, reaper -----------------------
 */

static void
on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	local_sync_request(arg, true);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	local_sync_request(arg, false);
}

static void
on_beat_done(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, void *arg)
{
	struct local *l = arg;

	(void)result;
	(void)meta;
	l->beat = NULL;
	if (rc != 0 && !l->beat_failing)
		log_warn("heartbeat failed: %s", err->msg);
	else if (rc == 0 && l->beat_failing)
		log_info("heartbeats reach the leader again");
	l->beat_failing = rc != 0;
}

static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct local *l = arg;
	struct dsc_err err = DSC_ERR_INIT;
	json_t *params;

	(void)fd;
	(void)what;
	if (l->beat != NULL)
		return;
	params = json_pack("{s:s, s:s}", "Node", l->a->cfg.name, "Address",
	    local_node_address(l));
	if (params != NULL && l->a->cfg.node_id != NULL &&
	    json_object_set_new(params, "ID", json_string(l->a->cfg.node_id)))
		json_decref(params), params = NULL;
	if (params == NULL) {
		log_err("heartbeat: out of memory");
		return;
	}
	l->beat = rpca_call(
	    l->a->up, "node.heartbeat", params, 0, on_beat_done, l, &err);
	json_decref(params);
	if (l->beat == NULL)
		log_warn("heartbeat: %s", err.msg);
}

/* Deregisters services whose check stayed critical past its
 * DeregisterCriticalServiceAfter. */
static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct local *l = arg;
	uint64_t now = dsc_mono_ms();
	bool again = true, any = false;

	(void)fd;
	(void)what;
	while (again) {
		size_t it = 0;
		struct lcheck *c;

		again = false;
		while ((c = hmap_next(&l->checks, &it)) != NULL) {
			char *sid;

			if (c->def.deregister_after_ms == 0 ||
			    c->critical_since == 0 ||
			    *c->def.service_id == '\0' ||
			    now - c->critical_since <
			        c->def.deregister_after_ms)
				continue;
			if ((sid = dsc_strdup(c->def.service_id)) == NULL)
				return;
			log_warn("check '%s' critical for longer than %llu "
			         "ms: deregistering service '%s'",
			    c->def.id,
			    (unsigned long long)c->def.deregister_after_ms,
			    sid);
			local_svc_remove(l, sid);
			dsc_free(sid);
			again = any = true;
			break;
		}
	}
	if (any) {
		local_persist(l);
		local_sync_request(l, false);
	}
}

int
local_sync_start(struct local *l, struct dsc_err *err)
{
	struct event_base *b = l->a->base;

	l->retry_ms = LOCAL_RETRY_MIN_MS;
	if ((l->kick = event_new(b, -1, 0, on_kick, l)) == NULL ||
	    (l->sync_timer = event_new(b, -1, EV_PERSIST, on_sync_timer, l)) ==
	        NULL ||
	    (l->retry_timer = evtimer_new(b, on_retry, l)) == NULL ||
	    (l->beat_timer = event_new(b, -1, EV_PERSIST, on_beat, l)) ==
	        NULL ||
	    (l->reap_timer = event_new(b, -1, EV_PERSIST, on_reap, l)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	arm(l->sync_timer, sync_ms(l));
	arm(l->beat_timer, beat_ms(l));
	arm(l->reap_timer, LOCAL_REAP_MS);
	/* The first heartbeat at once: it makes the node exist. */
	on_beat(-1, 0, l);
	return 0;
}

void
local_sync_stop(struct local *l)
{
	struct waiter *w;

	if (l->pass != NULL) {
		pass_free(l->pass);
		l->pass = NULL;
	}
	while ((w = l->waiters) != NULL) {
		l->waiters = w->next;
		dsc_free(w);
	}
	l->waiters_tail = &l->waiters;
	rpca_cancel(l->beat);
	l->beat = NULL;
	if (l->kick != NULL)
		event_free(l->kick);
	if (l->sync_timer != NULL)
		event_free(l->sync_timer);
	if (l->retry_timer != NULL)
		event_free(l->retry_timer);
	if (l->beat_timer != NULL)
		event_free(l->beat_timer);
	if (l->reap_timer != NULL)
		event_free(l->reap_timer);
	l->kick = l->sync_timer = l->retry_timer = l->beat_timer =
	    l->reap_timer = NULL;
}

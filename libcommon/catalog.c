/*
 * catalog.c - the catalog's life cycle, the apply entry point with its
 * idempotency table, change tracking and the watch-index lookup.
 *
 * Apply order: decode (no state touched); look the client up and answer a
 * repeated or stale Seq from the table; reserve the client's slot; run the
 * op, which is all-or-nothing by itself; record the result. Anything that
 * can fail for lack of memory fails before the op commits, so DSC_ENOMEM
 * always means "nothing happened, apply this entry again".
 */
#include "catalog.h"

#include <string.h>

#include "catalog_internal.h"
#include "mem.h"

const char *const cat_status_names[CAT_STATUS_MAX] = { "passing", "warning",
	"critical" };

/* ---- ptrvec --------------------------------------------------------- */

int
ptrvec_reserve(struct ptrvec *pv, size_t extra)
{
	size_t cap;
	void **v;

	if (pv->cap - pv->n >= extra)
		return 0;
	if (extra > SIZE_MAX / 16 - pv->n)
		return DSC_ENOMEM;
	cap = pv->cap < 4 ? 4 : pv->cap;
	while (cap < pv->n + extra)
		cap += cap / 2;
	if ((v = dsc_reallocarray(pv->v, cap, sizeof(*v))) == NULL)
		return DSC_ENOMEM;
	pv->v = v;
	pv->cap = cap;
	return 0;
}

void
ptrvec_release(struct ptrvec *pv)
{
	dsc_free(pv->v);
	pv->v = NULL;
	pv->n = pv->cap = 0;
}

/* ---- life cycle ----------------------------------------------------- */

static const char *
client_key(const void *p)
{
	return ((const struct cat_client *)p)->id;
}

struct catalog *
catalog_new(void)
{
	struct catalog *c = dsc_calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if ((c->dc = dsc_strdup("dc1")) == NULL) {
		dsc_free(c);
		return NULL;
	}
	cat_reg_init(c);
	hmap_init(&c->clients, client_key);
	c->clients_max = CATALOG_CLIENTS_MAX;
	return c;
}

static void
clients_release(struct catalog *c)
{
	struct cat_client *cl, *next;

	for (cl = c->lru_head; cl != NULL; cl = next) {
		next = cl->next;
		dsc_free(cl->msg);
		dsc_free(cl);
	}
	c->lru_head = c->lru_tail = NULL;
	hmap_release(&c->clients);
}

static void
chg_reset(struct catalog *c)
{
	buf_clear(&c->chg);
	c->chg_n = 0;
	c->chg_keys_n = 0;
	c->chg_all = false;
}

void
catalog_free(struct catalog *c)
{
	if (c == NULL)
		return;
	cat_reg_release(c);
	cat_kv_release(c);
	clients_release(c);
	buf_release(&c->chg);
	dsc_free(c->chg_off);
	dsc_free(c->chg_keys);
	dsc_free(c->dc);
	dsc_free(c);
}

int
catalog_set_datacenter(struct catalog *c, const char *dc)
{
	char *d = dsc_strdup(dc);

	if (d == NULL)
		return DSC_ENOMEM;
	dsc_free(c->dc);
	c->dc = d;
	return 0;
}

void
catalog_set_clients_max(struct catalog *c, size_t n)
{
	c->clients_max = n != 0 ? n : 1;
}

uint64_t
catalog_applied_index(const struct catalog *c)
{
	return c->applied;
}

/* ---- changes -------------------------------------------------------- */

void
cat_changed(struct catalog *c, const char *prefix, const char *name)
{
	size_t off = c->chg.len;

	if (c->chg_all)
		return;
	if (c->chg_n == c->chg_cap) {
		size_t cap = c->chg_cap != 0 ? c->chg_cap * 2 : 16;
		size_t *v = dsc_reallocarray(c->chg_off, cap, sizeof(*v));

		if (v == NULL) {
			c->chg_all = true;
			return;
		}
		c->chg_off = v;
		c->chg_cap = cap;
	}
	if (buf_addstr(&c->chg, prefix) != 0 ||
	    buf_addstr(&c->chg, name) != 0 || buf_addch(&c->chg, '\0') != 0) {
		buf_truncate(&c->chg, off);
		c->chg_all = true;
		return;
	}
	c->chg_off[c->chg_n++] = off;
}

static int
cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Turns the recorded offsets into the sorted, unique key list. */
static void
chg_finish(struct catalog *c)
{
	const char **keys;
	size_t n = 0;

	if (c->chg_all || c->chg_n == 0)
		return;
	keys = dsc_reallocarray(c->chg_keys, c->chg_n, sizeof(*keys));
	if (keys == NULL) {
		c->chg_all = true;
		return;
	}
	c->chg_keys = keys;
	for (size_t i = 0; i < c->chg_n; i++)
		keys[i] = (const char *)c->chg.p + c->chg_off[i];
	qsort(keys, c->chg_n, sizeof(*keys), cmp_strp);
	for (size_t i = 0; i < c->chg_n; i++)
		if (n == 0 || strcmp(keys[n - 1], keys[i]) != 0)
			keys[n++] = keys[i];
	c->chg_keys_n = n;
}

void
catalog_changes(const struct catalog *c, struct catalog_changes *out)
{
	out->all = c->chg_all;
	out->keys = c->chg_all ? NULL : c->chg_keys;
	out->n = c->chg_all ? 0 : c->chg_keys_n;
}

/* Each touch records its key once per apply: the index doubles as mark. */
void
cat_touch_node(struct catalog *c, struct cat_node *n)
{
	if (n->watch_index == c->cur)
		return;
	n->watch_index = c->cur;
	cat_changed(c, "node:", n->lname);
}

void
cat_touch_group(struct catalog *c, struct cat_group *g)
{
	if (g->index == c->cur)
		return;
	g->index = c->cur;
	cat_changed(c, "service:", g->lname);
}

void
cat_touch_services(struct catalog *c)
{
	if (c->services_index == c->cur)
		return;
	c->services_index = c->cur;
	cat_changed(c, "services", "");
}

void
cat_touch_nodes(struct catalog *c)
{
	if (c->nodes_index == c->cur)
		return;
	c->nodes_index = c->cur;
	cat_changed(c, "nodes", "");
}

static const char *const state_keys[CAT_SX_MAX] = { "any", "passing",
	"warning", "critical" };

void
cat_touch_state(struct catalog *c, enum cat_status s)
{
	int slots[2] = { CAT_SX_ANY, CAT_SX_PASSING + (int)s };

	for (int i = 0; i < 2; i++) {
		if (c->state_index[slots[i]] == c->cur)
			continue;
		c->state_index[slots[i]] = c->cur;
		cat_changed(c, "checks:", state_keys[slots[i]]);
	}
}

/* ---- watch indexes -------------------------------------------------- */

static bool
has_prefix(const char *s, const char *p, const char **rest)
{
	size_t n = strlen(p);

	if (strncmp(s, p, n) != 0)
		return false;
	*rest = s + n;
	return true;
}

uint64_t
catalog_index(const struct catalog *c, const char *key)
{
	const char *rest;
	uint64_t v = c->applied;

	if (strcmp(key, "services") == 0) {
		v = c->services_index;
	} else if (strcmp(key, "nodes") == 0) {
		v = c->nodes_index;
	} else if (has_prefix(key, "service:", &rest)) {
		struct cat_group *g = cat_group_find(c, rest);

		v = g != NULL ? g->index : c->svc_floor;
	} else if (has_prefix(key, "node:", &rest)) {
		struct cat_node *n = cat_node_find(c, rest);

		v = n != NULL ? n->watch_index : c->node_floor;
	} else if (has_prefix(key, "checks:", &rest)) {
		for (int i = 0; i < CAT_SX_MAX; i++)
			if (strcmp(rest, state_keys[i]) == 0)
				v = c->state_index[i];
	} else if (has_prefix(key, "kv:", &rest)) {
		struct kv_ent *e = cat_kv_find(c, rest);

		v = e != NULL ? e->modify_index : c->kv_floor;
	} else if (has_prefix(key, "kvp:", &rest)) {
		v = cat_kv_prefix_max(c, rest);
		if (v < c->kv_floor)
			v = c->kv_floor;
	}
	return v != 0 ? v : 1;
}

bool
catalog_watch_matches(const char *watch, const char *changed)
{
	const char *w, *k;

	if (has_prefix(watch, "service:", &w) &&
	    has_prefix(changed, "service:", &k))
		return cat_strcasecmp(w, k) == 0;
	if (has_prefix(watch, "node:", &w) && has_prefix(changed, "node:", &k))
		return cat_strcasecmp(w, k) == 0;
	if (has_prefix(watch, "kvp:", &w) && has_prefix(changed, "kv:", &k))
		return strncmp(k, w, strlen(w)) == 0;
	return strcmp(watch, changed) == 0;
}

/* ---- clients -------------------------------------------------------- */

static void
lru_unlink(struct catalog *c, struct cat_client *cl)
{
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		c->lru_head = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	else
		c->lru_tail = cl->prev;
	cl->prev = cl->next = NULL;
}

static void
lru_append(struct catalog *c, struct cat_client *cl)
{
	cl->prev = c->lru_tail;
	cl->next = NULL;
	if (c->lru_tail != NULL)
		c->lru_tail->next = cl;
	else
		c->lru_head = cl;
	c->lru_tail = cl;
}

/* Linked at the tail of the LRU list and mapped; evicts beyond the limit. */
static void
client_commit(struct catalog *c, struct cat_client *cl, bool is_new)
{
	if (is_new) {
		(void)hmap_put(&c->clients, cl, NULL);	/* reserved */
	} else {
		lru_unlink(c, cl);
	}
	lru_append(c, cl);
	while (c->clients.n > c->clients_max) {
		struct cat_client *old = c->lru_head;

		lru_unlink(c, old);
		hmap_del(&c->clients, old->id);
		dsc_free(old->msg);
		dsc_free(old);
	}
}

struct cat_client *
cat_client_new(const char *id)
{
	size_t n = strlen(id) + 1;
	struct cat_client *cl = dsc_calloc(1, sizeof(*cl) + n);

	if (cl != NULL)
		memcpy(cl->id, id, n);
	return cl;
}

void
cat_client_append(struct catalog *c, struct cat_client *cl)
{
	lru_append(c, cl);
}

/* The remembered result of @cl's last Seq, as a fresh result. */
static void
client_result(const struct cat_client *cl, struct catalog_result *res)
{
	res->ok = cl->ok;
	dsc_err_clear(&res->err);
	if (cl->code != 0)
		dsc_errorf(&res->err, cl->code, "%s", cl->msg);
}

/* ---- apply ---------------------------------------------------------- */

static int
run_op(struct catalog *c, struct cat_cmd *cmd, struct catalog_result *res)
{
	uint64_t floors;
	int rc;

	switch (cmd->op) {
	case CAT_OP_REGISTER:
		return cat_apply_register(c, cmd, res);
	case CAT_OP_DEREGISTER:
		return cat_apply_deregister(c, cmd, res);
	case CAT_OP_CHECK_UPDATE:
		return cat_apply_check_update(c, cmd, res);
	case CAT_OP_KV_SET:
	case CAT_OP_KV_CAS:
	case CAT_OP_KV_DELETE:
		return cat_apply_kv(c, cmd, res);
	case CAT_OP_REAP:
		floors = c->node_floor + c->svc_floor + c->kv_floor;
		if ((rc = cat_reap_reg(c, cmd->reap_index)) != 0 ||
		    (rc = cat_reap_kv(c, cmd->reap_index)) != 0)
			return rc;
		/* A raised floor moves the index of every name it covers. */
		if (c->node_floor + c->svc_floor + c->kv_floor != floors)
			c->chg_all = true;
		return 0;
	case CAT_OP_NOOP:
		return 0;
	}
	return 0;
}

int
catalog_apply(struct catalog *c, uint64_t index, const void *data,
    size_t len, struct catalog_result *res)
{
	struct cat_client *cl = NULL;
	struct cat_cmd cmd;
	bool is_new = false;
	char *msg = NULL;
	int rc;

	if (index <= c->applied)
		return DSC_EINVAL;
	memset(res, 0, sizeof(*res));
	res->ok = true;
	chg_reset(c);
	c->cur = index;
	rc = cat_cmd_decode(&cmd, data, len, &res->err);
	if (rc == DSC_ENOMEM)
		goto nomem;
	if (cmd.header_ok && cmd.client != NULL) {
		cl = hmap_get(&c->clients, cmd.client);
		if (cl != NULL && cmd.seq <= cl->seq) {
			if (cmd.seq == cl->seq) {
				client_result(cl, res);
				lru_unlink(c, cl);
				lru_append(c, cl);
			} else {
				res->ok = false;
				dsc_errorf(&res->err, DSC_EINVAL,
				    "stale sequence %ju for client '%s': "
				    "%ju was applied", (uintmax_t)cmd.seq,
				    cmd.client, (uintmax_t)cl->seq);
			}
			goto done;
		}
		if (cl == NULL) {
			if ((cl = cat_client_new(cmd.client)) == NULL)
				goto nomem;
			is_new = true;
			if (hmap_reserve(&c->clients, 1) != 0)
				goto nomem;
		}
	}
	if (rc == 0 && (rc = run_op(c, &cmd, res)) == DSC_ENOMEM)
		goto nomem;
	if (res->err.code != 0) {
		/* Refused: nothing changed but the client's entry. */
		res->ok = false;
		chg_reset(c);
		if (cl != NULL && (msg = dsc_strdup(res->err.msg)) == NULL)
			goto nomem;
	}
	if (cl != NULL) {
		cl->seq = cmd.seq;
		cl->ok = res->ok;
		cl->code = res->err.code;
		dsc_free(cl->msg);
		cl->msg = msg;
		client_commit(c, cl, is_new);
	}
done:
	c->applied = index;
	chg_finish(c);
	cat_cmd_release(&cmd);
	return 0;
nomem:
	if (is_new)
		dsc_free(cl);
	chg_reset(c);
	cat_cmd_release(&cmd);
	memset(res, 0, sizeof(*res));
	return DSC_ENOMEM;
}

json_t *
catalog_result_json(const struct catalog_result *res)
{
	if (res->err.code == 0)
		return json_pack("{s:b}", "ok", res->ok);
	return json_pack("{s:b,s:s,s:s}", "ok", 0, "error",
	    dsc_err_msg(&res->err), "code", dsc_errname(res->err.code));
}

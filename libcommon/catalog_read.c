/*
 * catalog_read.c - the reads, shaped as Consul's /v1 responses
 * (consul-api.md 2.5): Node, AgentService, HealthCheck, ServiceNode,
 * KVPair. Orders are deterministic: nodes by lowercase name, instances by
 * node then service ID, checks by node then CheckID, KV by key bytes.
 * Empty lists are [] and Tags are [] never null.
 *
 * Every function returns a new reference or NULL when out of memory.
 * json_pack() steals its "o" arguments even when it fails, so a NULL
 * sub-object simply makes the whole pack fail without leaking.
 */
#include "catalog_internal.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"

/* ---- sorting -------------------------------------------------------- */

int
cat_cmp_node(const void *a, const void *b)
{
	const struct cat_node *x = *(const struct cat_node *const *)a;
	const struct cat_node *y = *(const struct cat_node *const *)b;

	return strcmp(x->lname, y->lname);
}

int
cat_cmp_svc(const void *a, const void *b)
{
	const struct cat_svc *x = *(const struct cat_svc *const *)a;
	const struct cat_svc *y = *(const struct cat_svc *const *)b;
	int r = strcmp(x->node->lname, y->node->lname);

	return r != 0 ? r : strcmp(x->b->id, y->b->id);
}

int
cat_cmp_check(const void *a, const void *b)
{
	const struct cat_check *x = *(const struct cat_check *const *)a;
	const struct cat_check *y = *(const struct cat_check *const *)b;
	int r = strcmp(x->node->lname, y->node->lname);

	return r != 0 ? r : strcmp(x->b->id, y->b->id);
}

int
cat_cmp_group(const void *a, const void *b)
{
	const struct cat_group *x = *(const struct cat_group *const *)a;
	const struct cat_group *y = *(const struct cat_group *const *)b;

	return strcmp(x->lname, y->lname);
}

/* The items of @m sorted with @cmp; dsc_free the array. */
void **
cat_map_sorted(const struct hmap *m, int (*cmp)(const void *, const void *),
    size_t *cnt)
{
	void **v = dsc_reallocarray(NULL, m->n, sizeof(*v)), *p;
	size_t it = 0, n = 0;

	if (v == NULL)
		return NULL;
	while ((p = hmap_next(m, &it)) != NULL)
		v[n++] = p;
	qsort(v, n, sizeof(*v), cmp);
	*cnt = n;
	return v;
}

struct cat_svc **
cat_node_svcs_sorted(const struct cat_node *n, size_t *cnt)
{
	return (struct cat_svc **)cat_map_sorted(&n->services, cat_cmp_svc,
	    cnt);
}

struct cat_check **
cat_node_checks_sorted(const struct cat_node *n, size_t *cnt)
{
	return (struct cat_check **)cat_map_sorted(&n->checks, cat_cmp_check,
	    cnt);
}

struct cat_node **
cat_nodes_sorted(const struct catalog *c, bool tombs, size_t *cnt)
{
	struct cat_node **v = (struct cat_node **)cat_map_sorted(&c->nodes,
	    cat_cmp_node, cnt);
	size_t n = 0;

	if (v == NULL || tombs)
		return v;
	for (size_t i = 0; i < *cnt; i++)
		if (v[i]->b != NULL)
			v[n++] = v[i];
	*cnt = n;
	return v;
}

/* ---- filters -------------------------------------------------------- */

static bool
node_matches(const struct cat_node *n, const struct catalog_filter *f)
{
	if (f == NULL)
		return true;
	for (size_t i = 0; i < f->n_node_meta; i++) {
		size_t j;

		for (j = 0; j < n->b->n_meta; j++)
			if (strcmp(n->b->meta[j].k, f->node_meta[i].key) == 0)
				break;
		if (j == n->b->n_meta ||
		    strcmp(n->b->meta[j].v, f->node_meta[i].value) != 0)
			return false;
	}
	return true;
}

static bool
has_tags(const struct cat_svc *s, const struct catalog_filter *f)
{
	if (f == NULL)
		return true;
	for (size_t i = 0; i < f->n_tags; i++) {
		size_t j;

		for (j = 0; j < s->b->n_tags; j++)
			if (cat_strcasecmp(s->b->tags[j], f->tags[i]) == 0)
				break;
		if (j == s->b->n_tags)
			return false;
	}
	return true;
}

static bool
vec_healthy(const struct ptrvec *pv, enum catalog_health h)
{
	for (size_t i = 0; i < pv->n; i++) {
		const struct cat_check *k = pv->v[i];
		enum cat_status s = k->status;

		if (h == CATALOG_HEALTH_PASSING && s != CAT_PASSING)
			return false;
		if (h == CATALOG_HEALTH_NOT_CRITICAL && s == CAT_CRITICAL)
			return false;
	}
	return true;
}

static bool
svc_matches(const struct cat_svc *s, const struct catalog_filter *f,
    bool health)
{
	if (!node_matches(s->node, f) || !has_tags(s, f))
		return false;
	if (!health || f == NULL || f->health == CATALOG_HEALTH_ANY)
		return true;
	return vec_healthy(&s->node->node_checks, f->health) &&
	       vec_healthy(&s->checks, f->health);
}

/* The matching instances of @name, sorted; dsc_free the array. */
static struct cat_svc **
instances(const struct catalog *c, const char *name,
    const struct catalog_filter *f, bool health, size_t *cnt)
{
	struct cat_group *g = cat_group_find(c, name);
	struct cat_svc **v;
	size_t n = 0;

	*cnt = 0;
	v = dsc_reallocarray(NULL, g != NULL ? g->insts.n : 0, sizeof(*v));
	if (v == NULL || g == NULL)
		return v;
	for (size_t i = 0; i < g->insts.n; i++)
		if (svc_matches(g->insts.v[i], f, health))
			v[n++] = g->insts.v[i];
	qsort(v, n, sizeof(*v), cat_cmp_svc);
	*cnt = n;
	return v;
}

/* ---- object builders ------------------------------------------------ */

static json_t *
pairs_json(const struct cat_pair *p, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < n; i++)
		if (json_object_set_new(o, p[i].k, json_string(p[i].v)) != 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

static json_t *
tags_json(const struct svc_body *b)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < b->n_tags; i++)
		if (json_array_append_new(a, json_string(b->tags[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *
taddrs_json(const struct svc_body *b)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < b->n_taddrs; i++)
		if (json_object_set_new(o, b->taddrs[i].k,
			json_pack("{s:s,s:I}", "Address", b->taddrs[i].addr,
			    "Port", (json_int_t)b->taddrs[i].port)) != 0) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* Sets @key to @v (stolen) in @o; on failure frees @o and returns NULL. */
static json_t *
set_or_drop(json_t *o, const char *key, json_t *v)
{
	if (o == NULL) {
		json_decref(v);
		return NULL;
	}
	if (json_object_set_new(o, key, v) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
node_json(const struct catalog *c, const struct cat_node *n)
{
	const struct node_body *b = n->b;

	return json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:I}", "ID", b->id,
	    "Node", b->name, "Address", b->address, "Datacenter", c->dc,
	    "TaggedAddresses", pairs_json(b->tagged, b->n_tagged), "Meta",
	    pairs_json(b->meta, b->n_meta), "CreateIndex",
	    (json_int_t)n->create_index, "ModifyIndex",
	    (json_int_t)n->modify_index);
}

static json_t *
svc_json(const struct cat_svc *s)
{
	const struct svc_body *b = s->b;
	json_t *o;

	o = json_pack("{s:s,s:s,s:o,s:s,s:I,s:o,s:{s:I,s:I},s:b,s:I,s:I}",
	    "ID", b->id, "Service", b->name, "Tags", tags_json(b), "Address",
	    b->address, "Port", (json_int_t)b->port, "Meta",
	    pairs_json(b->meta, b->n_meta), "Weights", "Passing",
	    (json_int_t)b->w_passing, "Warning", (json_int_t)b->w_warning,
	    "EnableTagOverride", b->eto, "CreateIndex",
	    (json_int_t)s->create_index, "ModifyIndex",
	    (json_int_t)s->modify_index);
	if (b->n_taddrs != 0)
		o = set_or_drop(o, "TaggedAddresses", taddrs_json(b));
	if (b->kind[0] != '\0')
		o = set_or_drop(o, "Kind", json_string(b->kind));
	return o;
}

static json_t *
definition_json(const char *text)
{
	if (text[0] == '\0')
		return json_object();
	return json_loads(text, JSON_REJECT_DUPLICATES, NULL);
}

static json_t *
check_json(const struct cat_check *k)
{
	const struct check_body *b = k->b;
	const struct cat_svc *s = k->svc;

	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:s,"
			 "s:i,s:o,s:I,s:I}",
	    "Node", k->node->b->name, "CheckID", b->id, "Name", b->name,
	    "Status", cat_status_names[k->status], "Notes", b->notes,
	    "Output", k->output != NULL ? k->output : "", "ServiceID",
	    b->service_id, "ServiceName", s != NULL ? s->b->name : "",
	    "ServiceTags", s != NULL ? tags_json(s->b) : json_array(), "Type",
	    b->type, "Interval", b->interval, "Timeout", b->timeout,
	    "ExposedPort", 0, "Definition", definition_json(b->definition),
	    "CreateIndex", (json_int_t)k->create_index, "ModifyIndex",
	    (json_int_t)k->modify_index);
}

static json_t *
service_node_json(const struct catalog *c, const struct cat_svc *s)
{
	const struct node_body *nb = s->node->b;
	const struct svc_body *b = s->b;
	json_t *o;

	o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s,s:s,s:s,s:o,s:s,"
		      "s:{s:I,s:I},s:o,s:I,s:b,s:I,s:I}",
	    "ID", nb->id, "Node", nb->name, "Address", nb->address,
	    "Datacenter", c->dc, "TaggedAddresses",
	    pairs_json(nb->tagged, nb->n_tagged), "NodeMeta",
	    pairs_json(nb->meta, nb->n_meta), "ServiceKind", b->kind,
	    "ServiceID", b->id, "ServiceName", b->name, "ServiceTags",
	    tags_json(b), "ServiceAddress", b->address, "ServiceWeights",
	    "Passing", (json_int_t)b->w_passing, "Warning",
	    (json_int_t)b->w_warning, "ServiceMeta",
	    pairs_json(b->meta, b->n_meta), "ServicePort", (json_int_t)b->port,
	    "ServiceEnableTagOverride", b->eto, "CreateIndex",
	    (json_int_t)s->create_index, "ModifyIndex",
	    (json_int_t)s->modify_index);
	if (b->n_taddrs != 0)
		o = set_or_drop(o, "ServiceTaggedAddresses", taddrs_json(b));
	return o;
}

/* Appends @v (stolen) to @a; on failure frees @a and returns NULL. */
static json_t *
push(json_t *a, json_t *v)
{
	if (a == NULL || v == NULL || json_array_append_new(a, v) != 0) {
		json_decref(a);
		if (v != NULL && a == NULL)
			json_decref(v);
		return NULL;
	}
	return a;
}

/* ---- catalog reads -------------------------------------------------- */

struct name_tag {
	const char *name, *tag;		/* tag NULL: the name itself */
};

static int
cmp_name_tag(const void *a, const void *b)
{
	const struct name_tag *x = a, *y = b;
	int r = strcmp(x->name, y->name);

	if (r != 0)
		return r;
	if (x->tag == NULL || y->tag == NULL)
		return (x->tag != NULL) - (y->tag != NULL);
	return strcmp(x->tag, y->tag);
}

/* Adds one group's names (exact spelling) and their tags to @out. */
static int
add_group(json_t *out, const struct cat_group *g,
    const struct catalog_filter *f, struct name_tag **tmp, size_t *cap)
{
	size_t n = 0, need = 0;
	json_t *arr = NULL;

	for (size_t i = 0; i < g->insts.n; i++)
		need += 1 + ((struct cat_svc *)g->insts.v[i])->b->n_tags;
	if (need > *cap) {
		struct name_tag *v = dsc_reallocarray(*tmp, need, sizeof(*v));

		if (v == NULL)
			return DSC_ENOMEM;
		*tmp = v;
		*cap = need;
	}
	for (size_t i = 0; i < g->insts.n; i++) {
		const struct cat_svc *s = g->insts.v[i];

		if (!node_matches(s->node, f))
			continue;
		(*tmp)[n++] = (struct name_tag){ s->b->name, NULL };
		for (size_t j = 0; j < s->b->n_tags; j++)
			(*tmp)[n++] = (struct name_tag){ s->b->name,
				s->b->tags[j] };
	}
	if (n == 0)
		return 0;
	qsort(*tmp, n, sizeof(**tmp), cmp_name_tag);
	for (size_t i = 0; i < n; i++) {
		struct name_tag *x = &(*tmp)[i];

		if (i > 0 && cmp_name_tag(x, x - 1) == 0)
			continue;
		if (x->tag == NULL) {
			if ((arr = json_array()) == NULL ||
			    json_object_set_new(out, x->name, arr) != 0)
				return DSC_ENOMEM;
		} else if (json_array_append_new(arr,
			       json_string(x->tag)) != 0) {
			return DSC_ENOMEM;
		}
	}
	return 0;
}

json_t *
catalog_services(const struct catalog *c, const struct catalog_filter *f)
{
	struct cat_group **v;
	struct name_tag *tmp = NULL;
	size_t n, cap = 0;
	json_t *out = json_object();

	v = (struct cat_group **)cat_map_sorted(&c->groups, cat_cmp_group, &n);
	if (v == NULL || out == NULL)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (add_group(out, v[i], f, &tmp, &cap) != 0)
			goto fail;
	dsc_free(tmp);
	dsc_free(v);
	return out;
fail:
	dsc_free(tmp);
	dsc_free(v);
	json_decref(out);
	return NULL;
}

json_t *
catalog_service(const struct catalog *c, const char *name,
    const struct catalog_filter *f)
{
	size_t n;
	struct cat_svc **v = instances(c, name, f, false, &n);
	json_t *out = v != NULL ? json_array() : NULL;

	for (size_t i = 0; out != NULL && i < n; i++)
		out = push(out, service_node_json(c, v[i]));
	dsc_free(v);
	return out;
}

/* A sorted array of @a's and @b's checks (either may be NULL). */
static json_t *
checks_json(const struct ptrvec *a, const struct ptrvec *b)
{
	size_t na = a != NULL ? a->n : 0, nb = b != NULL ? b->n : 0, n = 0;
	struct cat_check **v = dsc_reallocarray(NULL, na + nb, sizeof(*v));
	json_t *out = v != NULL ? json_array() : NULL;

	for (size_t i = 0; v != NULL && i < na; i++)
		v[n++] = a->v[i];
	for (size_t i = 0; v != NULL && i < nb; i++)
		v[n++] = b->v[i];
	if (v != NULL)
		qsort(v, n, sizeof(*v), cat_cmp_check);
	for (size_t i = 0; out != NULL && i < n; i++)
		out = push(out, check_json(v[i]));
	dsc_free(v);
	return out;
}

json_t *
catalog_health_service(const struct catalog *c, const char *name,
    const struct catalog_filter *f)
{
	size_t n;
	struct cat_svc **v = instances(c, name, f, true, &n);
	json_t *out = v != NULL ? json_array() : NULL;

	for (size_t i = 0; out != NULL && i < n; i++)
		out = push(out, json_pack("{s:o,s:o,s:o}", "Node",
				    node_json(c, v[i]->node), "Service",
				    svc_json(v[i]), "Checks",
				    checks_json(&v[i]->node->node_checks,
					&v[i]->checks)));
	dsc_free(v);
	return out;
}

/* Sorts and encodes @n checks gathered in @v (dsc_free'd here). */
static json_t *
check_list(struct cat_check **v, size_t n)
{
	json_t *out = v != NULL ? json_array() : NULL;

	if (v != NULL)
		qsort(v, n, sizeof(*v), cat_cmp_check);
	for (size_t i = 0; out != NULL && i < n; i++)
		out = push(out, check_json(v[i]));
	dsc_free(v);
	return out;
}

json_t *
catalog_health_checks(const struct catalog *c, const char *name)
{
	size_t n, total = 0, k = 0;
	struct cat_svc **v = instances(c, name, NULL, false, &n);
	struct cat_check **ck = NULL;

	for (size_t i = 0; v != NULL && i < n; i++)
		total += v[i]->checks.n;
	if (v != NULL)
		ck = dsc_reallocarray(NULL, total, sizeof(*ck));
	for (size_t i = 0; ck != NULL && i < n; i++)
		for (size_t j = 0; j < v[i]->checks.n; j++)
			ck[k++] = v[i]->checks.v[j];
	dsc_free(v);
	return check_list(ck, k);
}

json_t *
catalog_nodes(const struct catalog *c, const struct catalog_filter *f)
{
	size_t n;
	struct cat_node **v = cat_nodes_sorted(c, false, &n);
	json_t *out = v != NULL ? json_array() : NULL;

	for (size_t i = 0; out != NULL && i < n; i++)
		if (node_matches(v[i], f))
			out = push(out, node_json(c, v[i]));
	dsc_free(v);
	return out;
}

json_t *
catalog_node(const struct catalog *c, const char *name)
{
	struct cat_node *n = cat_node_find(c, name);
	struct cat_svc **v;
	json_t *svcs;
	size_t cnt;

	if (n == NULL || n->b == NULL)
		return json_null();
	if ((v = cat_node_svcs_sorted(n, &cnt)) == NULL)
		return NULL;
	svcs = json_object();
	for (size_t i = 0; svcs != NULL && i < cnt; i++)
		svcs = set_or_drop(svcs, v[i]->b->id, svc_json(v[i]));
	dsc_free(v);
	return json_pack("{s:o,s:o}", "Node", node_json(c, n), "Services",
	    svcs);
}

json_t *
catalog_node_checks(const struct catalog *c, const char *name)
{
	struct cat_node *n = cat_node_find(c, name);
	struct cat_check **v;
	size_t cnt = 0;

	if (n == NULL || n->b == NULL)
		return json_array();
	v = cat_node_checks_sorted(n, &cnt);
	return check_list(v, cnt);
}

int
catalog_state_parse(const char *s, enum catalog_state *out)
{
	static const char *const names[] = { "any", "passing", "warning",
		"critical" };

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum catalog_state)i;
			return 0;
		}
	return DSC_EINVAL;
}

json_t *
catalog_checks_in_state(const struct catalog *c, enum catalog_state state,
    const struct catalog_filter *f)
{
	struct cat_node *n;
	struct cat_check *k, **v;
	size_t it = 0, total = 0, cnt = 0;

	while ((n = hmap_next(&c->nodes, &it)) != NULL)
		total += n->checks.n;
	if ((v = dsc_reallocarray(NULL, total, sizeof(*v))) == NULL)
		return NULL;
	it = 0;
	while ((n = hmap_next(&c->nodes, &it)) != NULL) {
		size_t jt = 0;

		if (n->b == NULL || !node_matches(n, f))
			continue;
		while ((k = hmap_next(&n->checks, &jt)) != NULL)
			if (state == CATALOG_STATE_ANY ||
			    (int)k->status == (int)state - 1)
				v[cnt++] = k;
	}
	return check_list(v, cnt);
}

enum catalog_state
catalog_check_state(const struct catalog *c, const char *node,
    const char *check_id)
{
	struct cat_node *n = cat_node_find(c, node);
	struct cat_check *k;

	if (n == NULL || n->b == NULL ||
	    (k = hmap_get(&n->checks, check_id)) == NULL)
		return CATALOG_STATE_ANY;
	return (enum catalog_state)(k->status + 1);
}

void
catalog_each_node_check(const struct catalog *c, const char *check_id,
    catalog_node_check_fn *fn, void *arg)
{
	struct cat_node *n;
	struct cat_check *k;
	size_t it = 0;

	while ((n = hmap_next(&c->nodes, &it)) != NULL) {
		if (n->b == NULL)
			continue;
		k = hmap_get(&n->checks, check_id);
		if (k == NULL || k->svc != NULL)
			continue;
		if (!fn(arg, n->b->name, (enum catalog_state)(k->status + 1)))
			return;
	}
}

const char *
catalog_aggregate_status(const json_t *checks)
{
	bool maint = false, seen[CAT_STATUS_MAX] = { false };
	size_t i;
	json_t *k;

	json_array_foreach(checks, i, k) {
		const char *id = json_string_value(json_object_get(k,
		    "CheckID"));
		const char *st = json_string_value(json_object_get(k,
		    "Status"));
		int s;

		if (id != NULL && (strcmp(id, "_node_maintenance") == 0 ||
				      strncmp(id, "_service_maintenance:",
					  21) == 0)) {
			maint = true;
			continue;
		}
		for (s = 0; s < CAT_STATUS_MAX; s++)
			if (st != NULL && strcmp(st, cat_status_names[s]) == 0)
				break;
		if (s == CAT_STATUS_MAX)
			return "";
		seen[s] = true;
	}
	if (maint)
		return "maintenance";
	if (seen[CAT_CRITICAL])
		return "critical";
	if (seen[CAT_WARNING])
		return "warning";
	return "passing";
}

/* ---- KV ------------------------------------------------------------- */

static json_t *
kv_json(const struct kv_ent *e)
{
	json_t *val = json_null();

	if (e->vlen != 0) {
		size_t n = sodium_base64_ENCODED_LEN(e->vlen,
		    sodium_base64_VARIANT_ORIGINAL);
		char *b64 = dsc_malloc(n);

		if (b64 == NULL)
			return NULL;
		sodium_bin2base64(b64, n, e->val, e->vlen,
		    sodium_base64_VARIANT_ORIGINAL);
		val = json_string(b64);
		dsc_free(b64);
	}
	return json_pack("{s:s,s:I,s:I,s:i,s:I,s:o}", "Key", e->key,
	    "CreateIndex", (json_int_t)e->create_index, "ModifyIndex",
	    (json_int_t)e->modify_index, "LockIndex", 0, "Flags",
	    (json_int_t)e->flags, "Value", val);
}

json_t *
catalog_kv_get(const struct catalog *c, const char *key, bool recurse)
{
	size_t plen = strlen(key);
	json_t *out = json_array();
	struct kv_iter it;
	struct kv_ent *e;

	if (!recurse) {
		e = cat_kv_find(c, key);
		if (e != NULL && !e->tomb)
			out = push(out, kv_json(e));
		return out;
	}
	cat_kv_seek(c, &it, key);
	while (out != NULL && (e = cat_kv_next(&it)) != NULL &&
	       strncmp(e->key, key, plen) == 0)
		if (!e->tomb)
			out = push(out, kv_json(e));
	return out;
}

json_t *
catalog_kv_keys(const struct catalog *c, const char *prefix, const char *sep)
{
	size_t plen = strlen(prefix), slen = sep != NULL ? strlen(sep) : 0;
	char bound[CATALOG_KEY_MAX + 2];
	json_t *out = json_array();
	struct kv_iter it;
	struct kv_ent *e;

	cat_kv_seek(c, &it, prefix);
	while (out != NULL && (e = cat_kv_next(&it)) != NULL &&
	       strncmp(e->key, prefix, plen) == 0) {
		const char *hit;
		size_t n;

		if (e->tomb)
			continue;
		hit = slen != 0 ? strstr(e->key + plen, sep) : NULL;
		if (hit == NULL) {
			out = push(out, json_string(e->key));
			continue;
		}
		/* Emit "prefix...sep" once, then jump past every key in it. */
		n = (size_t)(hit - e->key) + slen;
		out = push(out, json_stringn(e->key, n));
		memcpy(bound, e->key, n);
		/* No 0xff byte in UTF-8, so no carry. */
		bound[n - 1] = (char)((unsigned char)bound[n - 1] + 1);
		bound[n] = '\0';
		cat_kv_seek(c, &it, bound);
	}
	return out;
}

bool
catalog_kv_raw(const struct catalog *c, const char *key,
    const uint8_t **value, size_t *len, uint64_t *flags)
{
	struct kv_ent *e = cat_kv_find(c, key);

	if (e == NULL || e->tomb)
		return false;
	*value = e->val;
	*len = e->vlen;
	if (flags != NULL)
		*flags = e->flags;
	return true;
}

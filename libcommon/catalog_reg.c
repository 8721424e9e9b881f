/*
 * catalog_reg.c - nodes, service instances and checks: register,
 * deregister, check status updates and reaping of removed names.
 *
 * Each op runs in two phases. "Prepare" looks at the state, refuses the
 * command if it must (state untouched), and allocates everything the commit
 * will need: new entities, bodies, output strings, room in every map and
 * vector. "Commit" links it all in and moves indexes; none of its steps can
 * fail. On DSC_ENOMEM during prepare, what was allocated is freed and the
 * catalog is exactly as before.
 *
 * Index rules (catalog.h): a node change touches "nodes", "node:<n>" and the
 * groups of its services (their rows show node fields); a service change
 * touches "services", "node:<n>" and its old and new group; a check change
 * touches "node:<n>", the states it leaves and enters, and its service's
 * group, or every group on the node for a node-level check.
 */
#include "catalog_internal.h"

#include <string.h>

#include "mem.h"

/* ---- keys, lookups, freeing ----------------------------------------- */

const char *
cat_node_key(const void *p)
{
	return ((const struct cat_node *)p)->lname;
}

const char *
cat_group_key(const void *p)
{
	return ((const struct cat_group *)p)->lname;
}

const char *
cat_svc_key(const void *p)
{
	return ((const struct cat_svc *)p)->b->id;
}

const char *
cat_check_key(const void *p)
{
	return ((const struct cat_check *)p)->b->id;
}

void
cat_reg_init(struct catalog *c)
{
	hmap_init(&c->nodes, cat_node_key);
	hmap_init(&c->groups, cat_group_key);
	c->n_live_nodes = 0;
}

static void
svc_free(struct cat_svc *s)
{
	if (s == NULL)
		return;
	ptrvec_release(&s->checks);
	dsc_free(s->b);
	dsc_free(s);
}

static void
check_free(struct cat_check *k)
{
	if (k == NULL)
		return;
	dsc_free(k->b);
	dsc_free(k->output);
	dsc_free(k);
}

/* Frees what the node holds (services, checks, body) but not the node. */
static void
node_clear(struct cat_node *n)
{
	size_t it = 0;
	void *p;

	while ((p = hmap_next(&n->services, &it)) != NULL)
		svc_free(p);
	it = 0;
	while ((p = hmap_next(&n->checks, &it)) != NULL)
		check_free(p);
	hmap_release(&n->services);
	hmap_release(&n->checks);
	ptrvec_release(&n->node_checks);
	dsc_free(n->b);
	n->b = NULL;
}

void
cat_node_free(struct cat_node *n)
{
	if (n == NULL)
		return;
	node_clear(n);
	dsc_free(n);
}

void
cat_group_free(struct cat_group *g)
{
	if (g == NULL)
		return;
	ptrvec_release(&g->insts);
	dsc_free(g);
}

void
cat_reg_release(struct catalog *c)
{
	size_t it = 0;
	void *p;

	while ((p = hmap_next(&c->nodes, &it)) != NULL)
		cat_node_free(p);
	it = 0;
	while ((p = hmap_next(&c->groups, &it)) != NULL)
		cat_group_free(p);
	hmap_release(&c->nodes);
	hmap_release(&c->groups);
	c->n_live_nodes = 0;
}

struct cat_node *
cat_node_find(const struct catalog *c, const char *name)
{
	char l[CATALOG_NAME_MAX + 1];

	return cat_lower(name, l) ? hmap_get(&c->nodes, l) : NULL;
}

struct cat_group *
cat_group_find(const struct catalog *c, const char *name)
{
	char l[CATALOG_NAME_MAX + 1];

	return cat_lower(name, l) ? hmap_get(&c->groups, l) : NULL;
}

struct cat_node *
cat_node_alloc(const char *lname)
{
	size_t n = strlen(lname) + 1;
	struct cat_node *node = dsc_calloc(1, sizeof(*node) + n);

	if (node == NULL)
		return NULL;
	memcpy(node->lname, lname, n);
	hmap_init(&node->services, cat_svc_key);
	hmap_init(&node->checks, cat_check_key);
	return node;
}

struct cat_group *
cat_group_alloc(const char *lname)
{
	size_t n = strlen(lname) + 1;
	struct cat_group *g = dsc_calloc(1, sizeof(*g) + n);

	if (g != NULL)
		memcpy(g->lname, lname, n);
	return g;
}

/* ---- linking (commit-phase helpers; room already reserved) ---------- */

static void
group_add(struct cat_group *g, struct cat_svc *s)
{
	s->group = g;
	s->gpos = g->insts.n;
	g->insts.v[g->insts.n++] = s;
}

static void
group_remove(struct cat_svc *s)
{
	struct cat_group *g = s->group;
	struct cat_svc *last = g->insts.v[--g->insts.n];

	g->insts.v[s->gpos] = last;
	last->gpos = s->gpos;
	s->group = NULL;
}

static struct ptrvec *
owner_vec(struct cat_node *n, struct cat_svc *s)
{
	return s != NULL ? &s->checks : &n->node_checks;
}

static void
owner_add(struct cat_check *k)
{
	struct ptrvec *pv = owner_vec(k->node, k->svc);

	k->pos = pv->n;
	pv->v[pv->n++] = k;
}

static void
owner_remove(struct cat_check *k)
{
	struct ptrvec *pv = owner_vec(k->node, k->svc);
	struct cat_check *last = pv->v[--pv->n];

	pv->v[k->pos] = last;
	last->pos = k->pos;
}

static void
touch_node_groups(struct catalog *c, struct cat_node *n)
{
	size_t it = 0;
	struct cat_svc *s;

	while ((s = hmap_next(&n->services, &it)) != NULL)
		cat_touch_group(c, s->group);
}

/* Everything a change of a check bound to @svc (NULL: node-level) moves. */
static void
touch_check_scope(struct catalog *c, struct cat_node *n, struct cat_svc *svc)
{
	cat_touch_node(c, n);
	if (svc != NULL)
		cat_touch_group(c, svc->group);
	else
		touch_node_groups(c, n);
}

static bool
output_eq(const char *stored, const char *s)
{
	return strcmp(stored != NULL ? stored : "", s) == 0;
}

/* ---- register ------------------------------------------------------- */

/* What register's prepare phase decided and allocated. */
struct reg_plan {
	struct cat_node *n;		/* existing (maybe removed) or new */
	bool new_node, live, update_node;
	struct cat_svc *svc;		/* the registered instance */
	bool new_svc, update_svc;
	struct cat_group *g;		/* group of the new service name */
	bool new_group;
	struct cat_check *k[CATALOG_REG_CHECKS_MAX];	/* existing or new */
	bool new_k[CATALOG_REG_CHECKS_MAX], update_k[CATALOG_REG_CHECKS_MAX];
	struct cat_svc *owner[CATALOG_REG_CHECKS_MAX];	/* NULL = node */
	char *out[CATALOG_REG_CHECKS_MAX];	/* new output, NULL = "" */
};

static void
plan_abort(struct reg_plan *p, size_t n_checks)
{
	for (size_t i = 0; i < n_checks; i++) {
		if (p->new_k[i])
			check_free(p->k[i]);
		dsc_free(p->out[i]);
	}
	if (p->new_svc)
		svc_free(p->svc);
	if (p->new_group)
		cat_group_free(p->g);
	if (p->new_node)
		cat_node_free(p->n);
}

static int
prepare_node(struct catalog *c, struct cat_cmd *cmd, struct reg_plan *p,
    struct catalog_result *res)
{
	char l[CATALOG_NAME_MAX + 1];
	bool need;

	(void)cat_lower(cmd->node, l);	/* validated */
	p->n = hmap_get(&c->nodes, l);
	p->live = p->n != NULL && p->n->b != NULL;
	need = !p->live || !cmd->skip_node_update;
	if (need && cmd->nb == NULL)
		return dsc_errorf(&res->err, DSC_EINVAL, "missing address for "
		    "new node '%s'", cmd->node);
	p->update_node = need && (!p->live || !node_body_eq(p->n->b, cmd->nb));
	if (p->n == NULL) {
		if ((p->n = cat_node_alloc(l)) == NULL)
			return DSC_ENOMEM;
		p->new_node = true;
		if (hmap_reserve(&c->nodes, 1) != 0)
			return DSC_ENOMEM;
	}
	return 0;
}

static int
prepare_service(struct catalog *c, struct cat_cmd *cmd, struct reg_plan *p)
{
	char l[CATALOG_NAME_MAX + 1];
	struct svc_body *sb = cmd->sb;

	if (sb == NULL)
		return 0;
	p->svc = p->live ? hmap_get(&p->n->services, sb->id) : NULL;
	if (p->svc != NULL && svc_body_eq(p->svc->b, sb))
		return 0;
	p->update_svc = true;
	(void)cat_lower(sb->name, l);
	if ((p->g = hmap_get(&c->groups, l)) == NULL) {
		if ((p->g = cat_group_alloc(l)) == NULL)
			return DSC_ENOMEM;
		p->new_group = true;
		if (hmap_reserve(&c->groups, 1) != 0)
			return DSC_ENOMEM;
	}
	if ((p->svc == NULL || p->svc->group != p->g) &&
	    ptrvec_reserve(&p->g->insts, 1) != 0)
		return DSC_ENOMEM;
	if (p->svc == NULL) {
		if ((p->svc = dsc_calloc(1, sizeof(*p->svc))) == NULL)
			return DSC_ENOMEM;
		p->new_svc = true;
		if (hmap_reserve(&p->n->services, 1) != 0)
			return DSC_ENOMEM;
	}
	return 0;
}

/* The instance a check's ServiceID names after the registration. */
static int
check_owner(struct cat_cmd *cmd, struct reg_plan *p, const char *sid,
    struct cat_svc **out, struct catalog_result *res)
{
	*out = NULL;
	if (sid[0] == '\0')
		return 0;
	if (cmd->sb != NULL && strcmp(cmd->sb->id, sid) == 0) {
		*out = p->svc != NULL ? p->svc : hmap_get(&p->n->services, sid);
		return 0;
	}
	if (p->live && (*out = hmap_get(&p->n->services, sid)) != NULL)
		return 0;
	return dsc_errorf(&res->err, DSC_EINVAL, "check service '%s' is not "
	    "registered on node '%s'", sid, cmd->node);
}

static int
prepare_checks(struct cat_cmd *cmd, struct reg_plan *p,
    struct catalog_result *res)
{
	size_t n_new = 0;
	int rc;

	for (size_t i = 0; i < cmd->n_checks; i++) {
		struct check_spec *cs = &cmd->checks[i];
		struct cat_check *k;

		if ((rc = check_owner(cmd, p, cs->b->service_id, &p->owner[i],
			 res)) != 0)
			return rc;
		k = p->live ? hmap_get(&p->n->checks, cs->b->id) : NULL;
		if (k != NULL && check_body_eq(k->b, cs->b) &&
		    k->status == (enum cat_status)cs->status &&
		    output_eq(k->output, cs->output))
			continue;
		p->update_k[i] = true;
		if (cs->output[0] != '\0' &&
		    (p->out[i] = dsc_strdup(cs->output)) == NULL)
			return DSC_ENOMEM;
		if (k == NULL) {
			if ((k = dsc_calloc(1, sizeof(*k))) == NULL)
				return DSC_ENOMEM;
			p->new_k[i] = true;
			n_new++;
		}
		p->k[i] = k;
	}
	if (n_new != 0 && hmap_reserve(&p->n->checks, n_new) != 0)
		return DSC_ENOMEM;
	/* Room in each owner's vector for the checks moving into it. */
	for (size_t i = 0; i < cmd->n_checks; i++) {
		size_t want = 0;
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = p->update_k[j] && p->owner[j] == p->owner[i];
		if (!p->update_k[i] || seen)
			continue;
		for (size_t j = i; j < cmd->n_checks; j++)
			if (p->update_k[j] && p->owner[j] == p->owner[i])
				want++;
		if (ptrvec_reserve(owner_vec(p->n, p->owner[i]), want) != 0)
			return DSC_ENOMEM;
	}
	return 0;
}

static void
commit_node(struct catalog *c, struct cat_cmd *cmd, struct reg_plan *p)
{
	struct cat_node *n = p->n;

	if (p->new_node)
		(void)hmap_put(&c->nodes, n, NULL);
	if (!p->update_node)
		return;
	dsc_free(n->b);
	n->b = cmd->nb;
	cmd->nb = NULL;
	if (!p->live) {
		n->create_index = c->cur;
		c->n_live_nodes++;
	}
	n->modify_index = c->cur;
	cat_touch_nodes(c);
	cat_touch_node(c, n);
	touch_node_groups(c, n);
}

static void
commit_service(struct catalog *c, struct cat_cmd *cmd, struct reg_plan *p)
{
	struct cat_svc *s = p->svc;

	if (!p->update_svc)
		return;
	if (p->new_group)
		(void)hmap_put(&c->groups, p->g, NULL);
	if (p->new_svc) {
		s->node = p->n;
		s->b = cmd->sb;
		s->create_index = c->cur;
		(void)hmap_put(&p->n->services, s, NULL);
		group_add(p->g, s);
	} else {
		dsc_free(s->b);
		s->b = cmd->sb;
		if (s->group != p->g) {
			cat_touch_group(c, s->group);
			group_remove(s);
			group_add(p->g, s);
		}
		/* Its checks show the service's name and tags. */
		for (size_t i = 0; i < s->checks.n; i++)
			cat_touch_state(c,
			    ((struct cat_check *)s->checks.v[i])->status);
	}
	cmd->sb = NULL;
	s->modify_index = c->cur;
	cat_touch_group(c, p->g);
	cat_touch_services(c);
	cat_touch_node(c, p->n);
}

static void
commit_checks(struct catalog *c, struct cat_cmd *cmd, struct reg_plan *p)
{
	for (size_t i = 0; i < cmd->n_checks; i++) {
		struct check_spec *cs = &cmd->checks[i];
		struct cat_check *k = p->k[i];

		if (!p->update_k[i])
			continue;
		if (p->new_k[i]) {
			k->node = p->n;
			k->b = cs->b;
			k->create_index = c->cur;
			(void)hmap_put(&p->n->checks, k, NULL);
		} else {
			cat_touch_state(c, k->status);
			touch_check_scope(c, p->n, k->svc);
			dsc_free(k->b);
			k->b = cs->b;
			owner_remove(k);
		}
		cs->b = NULL;
		k->svc = p->owner[i];
		owner_add(k);
		dsc_free(k->output);
		k->output = p->out[i];
		p->out[i] = NULL;
		k->status = (enum cat_status)cs->status;
		k->modify_index = c->cur;
		cat_touch_state(c, k->status);
		touch_check_scope(c, p->n, k->svc);
	}
}

int
cat_apply_register(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res)
{
	struct reg_plan p;
	int rc;

	memset(&p, 0, sizeof(p));
	if ((rc = prepare_node(c, cmd, &p, res)) != 0 ||
	    (rc = prepare_service(c, cmd, &p)) != 0 ||
	    (rc = prepare_checks(cmd, &p, res)) != 0) {
		plan_abort(&p, cmd->n_checks);
		return res->err.code != 0 ? 0 : rc;
	}
	commit_node(c, cmd, &p);
	commit_service(c, cmd, &p);
	commit_checks(c, cmd, &p);
	return 0;
}

/* ---- deregister ----------------------------------------------------- */

static void
remove_check(struct catalog *c, struct cat_check *k)
{
	struct cat_node *n = k->node;

	cat_touch_state(c, k->status);
	touch_check_scope(c, n, k->svc);
	owner_remove(k);
	hmap_del(&n->checks, k->b->id);
	check_free(k);
}

static void
remove_service(struct catalog *c, struct cat_svc *s)
{
	struct cat_node *n = s->node;

	while (s->checks.n > 0)
		remove_check(c, s->checks.v[s->checks.n - 1]);
	cat_touch_group(c, s->group);
	cat_touch_services(c);
	cat_touch_node(c, n);
	group_remove(s);
	hmap_del(&n->services, s->b->id);
	svc_free(s);
}

static void
remove_node(struct catalog *c, struct cat_node *n)
{
	size_t it = 0;
	struct cat_svc *s;
	struct cat_check *k;

	while ((k = hmap_next(&n->checks, &it)) != NULL)
		cat_touch_state(c, k->status);
	it = 0;
	while ((s = hmap_next(&n->services, &it)) != NULL) {
		cat_touch_group(c, s->group);
		group_remove(s);
	}
	if (n->services.n > 0)
		cat_touch_services(c);
	node_clear(n);
	c->n_live_nodes--;
	cat_touch_nodes(c);
	cat_touch_node(c, n);
}

int
cat_apply_deregister(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res)
{
	struct cat_node *n = cat_node_find(c, cmd->node);
	void *p;

	(void)res;
	if (n == NULL || n->b == NULL)
		return 0;
	if (cmd->service_id[0] != '\0') {
		if ((p = hmap_get(&n->services, cmd->service_id)) != NULL)
			remove_service(c, p);
	} else if (cmd->check_id[0] != '\0') {
		if ((p = hmap_get(&n->checks, cmd->check_id)) != NULL)
			remove_check(c, p);
	} else {
		remove_node(c, n);
	}
	return 0;
}

/* ---- check status --------------------------------------------------- */

int
cat_apply_check_update(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res)
{
	struct cat_node *n = cat_node_find(c, cmd->node);
	struct cat_check *k = NULL;
	bool out_changed;
	char *out = NULL;

	if (n != NULL && n->b != NULL)
		k = hmap_get(&n->checks, cmd->check_id);
	if (k == NULL)
		return dsc_errorf(&res->err, DSC_ENOTFOUND, "check '%s' on "
		    "node '%s' not found", cmd->check_id, cmd->node);
	out_changed = cmd->output != NULL && !output_eq(k->output, cmd->output);
	if (!out_changed && k->status == (enum cat_status)cmd->status)
		return 0;
	if (out_changed && cmd->output[0] != '\0' &&
	    (out = dsc_strdup(cmd->output)) == NULL)
		return DSC_ENOMEM;
	cat_touch_state(c, k->status);
	if (out_changed) {
		dsc_free(k->output);
		k->output = out;
	}
	k->status = (enum cat_status)cmd->status;
	k->modify_index = c->cur;
	cat_touch_state(c, k->status);
	touch_check_scope(c, n, k->svc);
	return 0;
}

/* ---- reap ----------------------------------------------------------- */

int
cat_reap_reg(struct catalog *c, uint64_t below)
{
	struct cat_node *n;
	struct cat_group *g;
	size_t it = 0;

	while ((n = hmap_next(&c->nodes, &it)) != NULL) {
		if (n->b != NULL || n->watch_index >= below)
			continue;
		if (n->watch_index > c->node_floor)
			c->node_floor = n->watch_index;
		cat_node_free(hmap_take(&c->nodes, &it));
	}
	it = 0;
	while ((g = hmap_next(&c->groups, &it)) != NULL) {
		if (g->insts.n != 0 || g->index >= below)
			continue;
		if (g->index > c->svc_floor)
			c->svc_floor = g->index;
		cat_group_free(hmap_take(&c->groups, &it));
	}
	return 0;
}

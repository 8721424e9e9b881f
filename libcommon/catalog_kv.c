/*
 * catalog_kv.c - the KV store: an AVL tree ordered by key bytes, each node
 * augmented with the highest ModifyIndex in its subtree, so the index of a
 * prefix ("kvp:") is found in O(log n) and a listing walks only what it
 * returns.
 *
 * A delete keeps the node as a tombstone (value freed, ModifyIndex = the
 * delete's index) so prefix indexes move on deletions. Deleting and
 * overwriting never change the tree's shape and never allocate; only a new
 * key allocates, before anything changes. "reap" drops old tombstones by
 * flattening the tree into a list, filtering it and rebuilding it
 * perfectly balanced: O(n), no allocation, so it cannot fail half-way.
 */
#include "catalog_internal.h"

#include <string.h>

#include "mem.h"

/* ---- tree ----------------------------------------------------------- */

static int
height(const struct kv_ent *e)
{
	return e != NULL ? e->height : 0;
}

static uint64_t
maxof(const struct kv_ent *e)
{
	return e != NULL ? e->max : 0;
}

static void
update(struct kv_ent *e)
{
	int hl = height(e->l), hr = height(e->r);
	uint64_t m = e->modify_index;

	e->height = 1 + (hl > hr ? hl : hr);
	if (maxof(e->l) > m)
		m = maxof(e->l);
	if (maxof(e->r) > m)
		m = maxof(e->r);
	e->max = m;
}

static struct kv_ent *
rot_right(struct kv_ent *y)
{
	struct kv_ent *x = y->l;

	y->l = x->r;
	x->r = y;
	update(y);
	update(x);
	return x;
}

static struct kv_ent *
rot_left(struct kv_ent *x)
{
	struct kv_ent *y = x->r;

	x->r = y->l;
	y->l = x;
	update(x);
	update(y);
	return y;
}

static struct kv_ent *
balance(struct kv_ent *e)
{
	int bf;

	update(e);
	bf = height(e->l) - height(e->r);
	if (bf > 1) {
		if (height(e->l->l) < height(e->l->r))
			e->l = rot_left(e->l);
		return rot_right(e);
	}
	if (bf < -1) {
		if (height(e->r->r) < height(e->r->l))
			e->r = rot_right(e->r);
		return rot_left(e);
	}
	return e;
}

static struct kv_ent *
insert(struct kv_ent *root, struct kv_ent *e)
{
	if (root == NULL) {
		e->l = e->r = NULL;
		update(e);
		return e;
	}
	if (strcmp(e->key, root->key) < 0)
		root->l = insert(root->l, e);
	else
		root->r = insert(root->r, e);
	return balance(root);
}

/* Recomputes the augmented maxima on the path to @key. */
static void
retouch(struct kv_ent *root, const char *key)
{
	int c;

	if (root == NULL)
		return;
	c = strcmp(key, root->key);
	if (c < 0)
		retouch(root->l, key);
	else if (c > 0)
		retouch(root->r, key);
	update(root);
}

void
cat_kv_insert(struct catalog *c, struct kv_ent *e)
{
	c->kv = insert(c->kv, e);
	c->kv_n++;
}

struct kv_ent *
cat_kv_ent_new(const char *key, size_t klen)
{
	struct kv_ent *e = dsc_calloc(1, sizeof(*e) + klen + 1);

	if (e != NULL)
		memcpy(e->key, key, klen);
	return e;
}

void
cat_kv_ent_free(struct kv_ent *e)
{
	if (e == NULL)
		return;
	dsc_free(e->val);
	dsc_free(e);
}

static void
free_tree(struct kv_ent *e)
{
	if (e == NULL)
		return;
	free_tree(e->l);
	free_tree(e->r);
	cat_kv_ent_free(e);
}

void
cat_kv_release(struct catalog *c)
{
	free_tree(c->kv);
	c->kv = NULL;
	c->kv_n = 0;
}

struct kv_ent *
cat_kv_find(const struct catalog *c, const char *key)
{
	struct kv_ent *e = c->kv;

	while (e != NULL) {
		int r = strcmp(key, e->key);

		if (r == 0)
			return e;
		e = r < 0 ? e->l : e->r;
	}
	return NULL;
}

/* ---- iteration ------------------------------------------------------ */

void
cat_kv_seek(const struct catalog *c, struct kv_iter *it, const char *from)
{
	struct kv_ent *e = c->kv;

	it->top = 0;
	while (e != NULL) {
		if (strcmp(e->key, from) >= 0) {
			it->stack[it->top++] = e;
			e = e->l;
		} else {
			e = e->r;
		}
	}
}

struct kv_ent *
cat_kv_next(struct kv_iter *it)
{
	struct kv_ent *e, *x;

	if (it->top == 0)
		return NULL;
	e = it->stack[--it->top];
	for (x = e->r; x != NULL; x = x->l)
		it->stack[it->top++] = x;
	return e;
}

/* ---- prefix ranges -------------------------------------------------- */

/* <0: @key sorts before every key with @p; 0: has prefix @p; >0: after. */
static int
cmp_prefix(const char *key, const char *p, size_t plen)
{
	int r = strncmp(key, p, plen);

	return r;
}

/* Max over keys >= the prefix start in a subtree known to end in range. */
static uint64_t
max_ge(const struct kv_ent *e, const char *p, size_t plen)
{
	uint64_t m = 0, x;

	while (e != NULL) {
		if (cmp_prefix(e->key, p, plen) >= 0) {
			x = e->modify_index > maxof(e->r) ? e->modify_index :
							    maxof(e->r);
			if (x > m)
				m = x;
			e = e->l;
		} else {
			e = e->r;
		}
	}
	return m;
}

/* Max over keys still inside the prefix in a subtree known to start in it. */
static uint64_t
max_lt_end(const struct kv_ent *e, const char *p, size_t plen)
{
	uint64_t m = 0, x;

	while (e != NULL) {
		if (cmp_prefix(e->key, p, plen) <= 0) {
			x = e->modify_index > maxof(e->l) ? e->modify_index :
							    maxof(e->l);
			if (x > m)
				m = x;
			e = e->r;
		} else {
			e = e->l;
		}
	}
	return m;
}

uint64_t
cat_kv_prefix_max(const struct catalog *c, const char *p)
{
	size_t plen = strlen(p);
	const struct kv_ent *e = c->kv;

	while (e != NULL) {
		int r = cmp_prefix(e->key, p, plen);
		uint64_t m, x;

		if (r < 0) {
			e = e->r;
		} else if (r > 0) {
			e = e->l;
		} else {
			m = e->modify_index;
			if ((x = max_ge(e->l, p, plen)) > m)
				m = x;
			if ((x = max_lt_end(e->r, p, plen)) > m)
				m = x;
			return m;
		}
	}
	return 0;
}

/* Tombstones every live key under @p; returns how many. */
static size_t
tomb_range(struct catalog *c, struct kv_ent *e, const char *p, size_t plen)
{
	size_t n = 0;
	int r;

	if (e == NULL)
		return 0;
	r = cmp_prefix(e->key, p, plen);
	if (r >= 0)
		n += tomb_range(c, e->l, p, plen);
	if (r <= 0)
		n += tomb_range(c, e->r, p, plen);
	if (r == 0 && !e->tomb) {
		dsc_free(e->val);
		e->val = NULL;
		e->vlen = 0;
		e->flags = 0;
		e->tomb = true;
		e->modify_index = c->cur;
		cat_changed(c, "kv:", e->key);
		n++;
	}
	if (n != 0)
		update(e);
	return n;
}

/* ---- apply ---------------------------------------------------------- */

static void
tombstone(struct catalog *c, struct kv_ent *e)
{
	dsc_free(e->val);
	e->val = NULL;
	e->vlen = 0;
	e->flags = 0;
	e->tomb = true;
	e->modify_index = c->cur;
	retouch(c->kv, e->key);
	cat_changed(c, "kv:", e->key);
}

static int
kv_set(struct catalog *c, struct cat_cmd *cmd, struct kv_ent *e)
{
	if (e == NULL) {
		if ((e = cat_kv_ent_new(cmd->key, strlen(cmd->key))) == NULL)
			return DSC_ENOMEM;
		e->create_index = c->cur;
		e->modify_index = c->cur;
		cat_kv_insert(c, e);
	} else {
		if (e->tomb) {
			e->tomb = false;
			e->create_index = c->cur;
		}
		dsc_free(e->val);
		e->modify_index = c->cur;
		retouch(c->kv, e->key);
	}
	e->val = cmd->val;
	e->vlen = cmd->vlen;
	cmd->val = NULL;
	e->flags = cmd->flags;
	cat_changed(c, "kv:", e->key);
	return 0;
}

int
cat_apply_kv(struct catalog *c, struct cat_cmd *cmd,
    struct catalog_result *res)
{
	struct kv_ent *e = cat_kv_find(c, cmd->key);
	bool live = e != NULL && !e->tomb;

	switch (cmd->op) {
	case CAT_OP_KV_SET:
		return kv_set(c, cmd, e);
	case CAT_OP_KV_CAS:
		if (cmd->cas == 0 ? live :
				    !live || e->modify_index != cmd->cas) {
			res->ok = false;
			return 0;
		}
		return kv_set(c, cmd, e);
	case CAT_OP_KV_DELETE:
		if (cmd->recurse) {
			(void)tomb_range(c, c->kv, cmd->key, strlen(cmd->key));
			return 0;
		}
		if (!live)
			return 0;	/* Consul: deleting nothing is true */
		if (cmd->has_cas && e->modify_index != cmd->cas) {
			res->ok = false;
			return 0;
		}
		tombstone(c, e);
		return 0;
	default:
		return 0;
	}
}

/* ---- reap ----------------------------------------------------------- */

/* The tree as a list through ->r, in key order. */
static void
flatten(struct kv_ent *e, struct kv_ent **list)
{
	struct kv_ent *l;

	if (e == NULL)
		return;
	flatten(e->r, list);
	l = e->l;
	e->l = NULL;
	e->r = *list;
	*list = e;
	flatten(l, list);
}

/* A perfectly balanced tree of the first @n entries of @list. */
static struct kv_ent *
build(struct kv_ent **list, size_t n)
{
	struct kv_ent *left, *root;

	if (n == 0)
		return NULL;
	left = build(list, n / 2);
	root = *list;
	*list = root->r;
	root->l = left;
	root->r = build(list, n - n / 2 - 1);
	update(root);
	return root;
}

int
cat_reap_kv(struct catalog *c, uint64_t below)
{
	struct kv_ent *list = NULL, **pp, *e;
	size_t n = 0;

	if (c->kv == NULL)
		return 0;
	flatten(c->kv, &list);
	for (pp = &list; (e = *pp) != NULL;) {
		if (e->tomb && e->modify_index < below) {
			if (e->modify_index > c->kv_floor)
				c->kv_floor = e->modify_index;
			*pp = e->r;
			cat_kv_ent_free(e);
		} else {
			n++;
			pp = &e->r;
		}
	}
	c->kv = build(&list, n);
	c->kv_n = n;
	return 0;
}

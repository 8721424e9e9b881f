/*
 * catalog_body.c - the immutable bodies of nodes, services and checks: one
 * allocation each, fields and strings packed together, built from a
 * template of borrowed pointers, and compared field by field so a
 * registration that changes nothing moves no index.
 */
#include "catalog_internal.h"

#include <string.h>

#include "mem.h"

/* ---- bodies --------------------------------------------------------- */

/*
 * A body is built in two passes over the same code: with base NULL the
 * blob only counts bytes, then the block is allocated and filled.
 */
struct blob {
	char *base;
	size_t off;
};

static void *
blob_take(struct blob *b, size_t n, size_t align)
{
	void *p;

	b->off = (b->off + align - 1) / align * align;
	p = b->base != NULL ? b->base + b->off : NULL;
	b->off += n;
	return p;
}

static const char *
blob_str(struct blob *b, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = blob_take(b, n, 1);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

static struct cat_pair *
blob_pairs(struct blob *b, const struct cat_pair *src, size_t n)
{
	struct cat_pair *d = blob_take(b, n * sizeof(*d),
	    _Alignof(struct cat_pair));

	for (size_t i = 0; i < n; i++) {
		const char *k = blob_str(b, src[i].k);
		const char *v = blob_str(b, src[i].v);

		if (d != NULL) {
			d[i].k = k;
			d[i].v = v;
		}
	}
	return d;
}

static void
node_fill(struct blob *b, const struct node_body *t)
{
	struct node_body *d = blob_take(b, sizeof(*d),
	    _Alignof(struct node_body));
	struct node_body x = *t;

	x.name = blob_str(b, t->name);
	x.id = blob_str(b, t->id);
	x.address = blob_str(b, t->address);
	x.tagged = blob_pairs(b, t->tagged, t->n_tagged);
	x.meta = blob_pairs(b, t->meta, t->n_meta);
	if (d != NULL)
		*d = x;
}

struct node_body *
node_body_new(const struct node_body *t)
{
	struct blob b = { NULL, 0 };

	node_fill(&b, t);
	if ((b.base = dsc_malloc(b.off)) == NULL)
		return NULL;
	b.off = 0;
	node_fill(&b, t);
	return (struct node_body *)b.base;
}

static void
svc_fill(struct blob *b, const struct svc_body *t)
{
	struct svc_body *d = blob_take(b, sizeof(*d),
	    _Alignof(struct svc_body));
	struct svc_body x = *t;
	const char **tags;
	struct cat_taddr *ta;

	x.id = blob_str(b, t->id);
	x.name = blob_str(b, t->name);
	x.address = blob_str(b, t->address);
	x.kind = blob_str(b, t->kind);
	tags = blob_take(b, t->n_tags * sizeof(*tags),
	    _Alignof(const char *));
	for (size_t i = 0; i < t->n_tags; i++) {
		const char *s = blob_str(b, t->tags[i]);

		if (tags != NULL)
			tags[i] = s;
	}
	x.tags = tags;
	x.meta = blob_pairs(b, t->meta, t->n_meta);
	ta = blob_take(b, t->n_taddrs * sizeof(*ta),
	    _Alignof(struct cat_taddr));
	for (size_t i = 0; i < t->n_taddrs; i++) {
		const char *k = blob_str(b, t->taddrs[i].k);
		const char *a = blob_str(b, t->taddrs[i].addr);

		if (ta != NULL) {
			ta[i].k = k;
			ta[i].addr = a;
			ta[i].port = t->taddrs[i].port;
		}
	}
	x.taddrs = ta;
	if (d != NULL)
		*d = x;
}

struct svc_body *
svc_body_new(const struct svc_body *t)
{
	struct blob b = { NULL, 0 };

	svc_fill(&b, t);
	if ((b.base = dsc_malloc(b.off)) == NULL)
		return NULL;
	b.off = 0;
	svc_fill(&b, t);
	return (struct svc_body *)b.base;
}

static void
check_fill(struct blob *b, const struct check_body *t)
{
	struct check_body *d = blob_take(b, sizeof(*d),
	    _Alignof(struct check_body));
	struct check_body x;

	x.id = blob_str(b, t->id);
	x.name = blob_str(b, t->name);
	x.notes = blob_str(b, t->notes);
	x.service_id = blob_str(b, t->service_id);
	x.type = blob_str(b, t->type);
	x.interval = blob_str(b, t->interval);
	x.timeout = blob_str(b, t->timeout);
	x.definition = blob_str(b, t->definition);
	if (d != NULL)
		*d = x;
}

struct check_body *
check_body_new(const struct check_body *t)
{
	struct blob b = { NULL, 0 };

	check_fill(&b, t);
	if ((b.base = dsc_malloc(b.off)) == NULL)
		return NULL;
	b.off = 0;
	check_fill(&b, t);
	return (struct check_body *)b.base;
}

static bool
pairs_eq(const struct cat_pair *a, const struct cat_pair *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(a[i].k, b[i].k) != 0 || strcmp(a[i].v, b[i].v) != 0)
			return false;
	return true;
}

bool
node_body_eq(const struct node_body *a, const struct node_body *b)
{
	return strcmp(a->name, b->name) == 0 && strcmp(a->id, b->id) == 0 &&
	       strcmp(a->address, b->address) == 0 &&
	       a->n_tagged == b->n_tagged && a->n_meta == b->n_meta &&
	       pairs_eq(a->tagged, b->tagged, a->n_tagged) &&
	       pairs_eq(a->meta, b->meta, a->n_meta);
}

bool
svc_body_eq(const struct svc_body *a, const struct svc_body *b)
{
	if (strcmp(a->id, b->id) != 0 || strcmp(a->name, b->name) != 0 ||
	    strcmp(a->address, b->address) != 0 ||
	    strcmp(a->kind, b->kind) != 0 || a->n_tags != b->n_tags ||
	    a->n_meta != b->n_meta || a->n_taddrs != b->n_taddrs ||
	    a->eto != b->eto || a->port != b->port ||
	    a->w_passing != b->w_passing || a->w_warning != b->w_warning)
		return false;
	for (size_t i = 0; i < a->n_tags; i++)
		if (strcmp(a->tags[i], b->tags[i]) != 0)
			return false;
	for (size_t i = 0; i < a->n_taddrs; i++)
		if (strcmp(a->taddrs[i].k, b->taddrs[i].k) != 0 ||
		    strcmp(a->taddrs[i].addr, b->taddrs[i].addr) != 0 ||
		    a->taddrs[i].port != b->taddrs[i].port)
			return false;
	return pairs_eq(a->meta, b->meta, a->n_meta);
}

bool
check_body_eq(const struct check_body *a, const struct check_body *b)
{
	return strcmp(a->id, b->id) == 0 && strcmp(a->name, b->name) == 0 &&
	       strcmp(a->notes, b->notes) == 0 &&
	       strcmp(a->service_id, b->service_id) == 0 &&
	       strcmp(a->type, b->type) == 0 &&
	       strcmp(a->interval, b->interval) == 0 &&
	       strcmp(a->timeout, b->timeout) == 0 &&
	       strcmp(a->definition, b->definition) == 0;
}

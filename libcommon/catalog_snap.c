/*
 * catalog_snap.c - snapshot, restore and digest.
 *
 * The snapshot is canonical: everything is written in a fixed order
 * (groups, nodes, services and checks sorted by key; KV in key order;
 * clients in LRU order), integers little-endian, strings as a u32 length,
 * the bytes and a NUL (so restore can use them in place). Equal states give
 * equal bytes, which is what makes the digest comparable across servers.
 *
 *	magic "DSCCAT" 0 1 (format 1)
 *	u64 applied, services, nodes, state[4], node_floor, svc_floor, kv_floor
 *	u64 n_groups;  { str lname; u64 index }
 *	u64 n_nodes;   { str lname; u8 live; u64 create, modify, watch;
 *	                 live: str name, id, address; pairs tagged, meta;
 *	                 u32 n_svcs { str id, name, address, kind;
 *	                   u32 n_tags { str }; pairs meta;
 *	                   u32 n_taddrs { str key, addr; u32 port };
 *	                   u8 eto; u32 port, w_passing, w_warning;
 *	                   u64 create, modify }
 *	                 u32 n_checks { str id, name, notes, service_id, type,
 *	                   interval, timeout, definition, output; u8 status;
 *	                   u64 create, modify } }
 *	u64 n_kv;      { str key; u8 tomb; u64 flags, create, modify;
 *	                 u32 vlen; vlen bytes }
 *	u64 n_clients; { str id; u64 seq; u8 ok; u32 code; str msg }
 *	pairs = u32 n { str key, value }
 *
 * Restore checks every length, every limit, strict key order (so only
 * canonical bytes are accepted and restore(snapshot(x)) is x), and that
 * references resolve; it builds a new catalog and swaps it in only when
 * all of it was read.
 */
#include "catalog_internal.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"

static const uint8_t magic[8] = { 'D', 'S', 'C', 'C', 'A', 'T', 0, 1 };

/* ---- writing -------------------------------------------------------- */

/* Where snapshot bytes go: a buffer, or a running hash. */
struct sink {
	struct buf *b;
	crypto_generichash_state *h;
	int rc;
};

static void
put(struct sink *s, const void *p, size_t n)
{
	if (s->rc != 0 || n == 0)
		return;
	if (s->b != NULL)
		s->rc = buf_add(s->b, p, n);
	else
		crypto_generichash_update(s->h, p, n);
}

static void
put_u64(struct sink *s, uint64_t v)
{
	uint8_t x[8];

	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(s, x, 8);
}

static void
put_u32(struct sink *s, uint32_t v)
{
	uint8_t x[4];

	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	put(s, x, 4);
}

static void
put_u8(struct sink *s, uint8_t v)
{
	put(s, &v, 1);
}

static void
put_str(struct sink *s, const char *str)
{
	size_t n = str != NULL ? strlen(str) : 0;

	put_u32(s, (uint32_t)n);
	put(s, str != NULL ? str : "", n + 1);
}

static void
put_pairs(struct sink *s, const struct cat_pair *p, size_t n)
{
	put_u32(s, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		put_str(s, p[i].k);
		put_str(s, p[i].v);
	}
}

static void
put_svc(struct sink *s, const struct cat_svc *sv)
{
	const struct svc_body *b = sv->b;

	put_str(s, b->id);
	put_str(s, b->name);
	put_str(s, b->address);
	put_str(s, b->kind);
	put_u32(s, b->n_tags);
	for (size_t i = 0; i < b->n_tags; i++)
		put_str(s, b->tags[i]);
	put_pairs(s, b->meta, b->n_meta);
	put_u32(s, b->n_taddrs);
	for (size_t i = 0; i < b->n_taddrs; i++) {
		put_str(s, b->taddrs[i].k);
		put_str(s, b->taddrs[i].addr);
		put_u32(s, b->taddrs[i].port);
	}
	put_u8(s, b->eto);
	put_u32(s, b->port);
	put_u32(s, b->w_passing);
	put_u32(s, b->w_warning);
	put_u64(s, sv->create_index);
	put_u64(s, sv->modify_index);
}

static void
put_check(struct sink *s, const struct cat_check *k)
{
	const struct check_body *b = k->b;

	put_str(s, b->id);
	put_str(s, b->name);
	put_str(s, b->notes);
	put_str(s, b->service_id);
	put_str(s, b->type);
	put_str(s, b->interval);
	put_str(s, b->timeout);
	put_str(s, b->definition);
	put_str(s, k->output);
	put_u8(s, (uint8_t)k->status);
	put_u64(s, k->create_index);
	put_u64(s, k->modify_index);
}

static int
put_node(struct sink *s, const struct cat_node *n)
{
	struct cat_svc **sv;
	struct cat_check **ck;
	size_t ns, nc;

	put_str(s, n->lname);
	put_u8(s, n->b != NULL);
	put_u64(s, n->create_index);
	put_u64(s, n->modify_index);
	put_u64(s, n->watch_index);
	if (n->b == NULL)
		return 0;
	put_str(s, n->b->name);
	put_str(s, n->b->id);
	put_str(s, n->b->address);
	put_pairs(s, n->b->tagged, n->b->n_tagged);
	put_pairs(s, n->b->meta, n->b->n_meta);
	if ((sv = cat_node_svcs_sorted(n, &ns)) == NULL)
		return DSC_ENOMEM;
	put_u32(s, (uint32_t)ns);
	for (size_t i = 0; i < ns; i++)
		put_svc(s, sv[i]);
	dsc_free(sv);
	if ((ck = cat_node_checks_sorted(n, &nc)) == NULL)
		return DSC_ENOMEM;
	put_u32(s, (uint32_t)nc);
	for (size_t i = 0; i < nc; i++)
		put_check(s, ck[i]);
	dsc_free(ck);
	return 0;
}

static int
write_all(const struct catalog *c, struct sink *s)
{
	struct cat_group **g;
	struct cat_node **nodes;
	struct kv_iter it;
	struct kv_ent *e;
	size_t n;

	put(s, magic, sizeof(magic));
	put_u64(s, c->applied);
	put_u64(s, c->services_index);
	put_u64(s, c->nodes_index);
	for (int i = 0; i < CAT_SX_MAX; i++)
		put_u64(s, c->state_index[i]);
	put_u64(s, c->node_floor);
	put_u64(s, c->svc_floor);
	put_u64(s, c->kv_floor);
	g = (struct cat_group **)cat_map_sorted(&c->groups, cat_cmp_group, &n);
	if (g == NULL)
		return DSC_ENOMEM;
	put_u64(s, n);
	for (size_t i = 0; i < n; i++) {
		put_str(s, g[i]->lname);
		put_u64(s, g[i]->index);
	}
	dsc_free(g);
	if ((nodes = cat_nodes_sorted(c, true, &n)) == NULL)
		return DSC_ENOMEM;
	put_u64(s, n);
	for (size_t i = 0; i < n && s->rc == 0; i++)
		if ((s->rc = put_node(s, nodes[i])) != 0)
			break;
	dsc_free(nodes);
	put_u64(s, c->kv_n);
	cat_kv_seek(c, &it, "");
	while ((e = cat_kv_next(&it)) != NULL) {
		put_str(s, e->key);
		put_u8(s, e->tomb);
		put_u64(s, e->flags);
		put_u64(s, e->create_index);
		put_u64(s, e->modify_index);
		put_u32(s, (uint32_t)e->vlen);
		put(s, e->val, e->vlen);
	}
	put_u64(s, c->clients.n);
	for (struct cat_client *cl = c->lru_head; cl != NULL; cl = cl->next) {
		put_str(s, cl->id);
		put_u64(s, cl->seq);
		put_u8(s, cl->ok);
		put_u32(s, (uint32_t)cl->code);
		put_str(s, cl->msg);
	}
	return s->rc;
}

int
catalog_snapshot(const struct catalog *c, struct buf *out)
{
	struct sink s = { out, NULL, 0 };

	return write_all(c, &s);
}

int
catalog_digest(const struct catalog *c, char hex[65])
{
	crypto_generichash_state st;
	uint8_t h[32];
	struct sink s = { NULL, &st, 0 };
	int rc;

	crypto_generichash_init(&st, NULL, 0, sizeof(h));
	if ((rc = write_all(c, &s)) != 0)
		return rc;
	crypto_generichash_final(&st, h, sizeof(h));
	sodium_bin2hex(hex, 65, h, sizeof(h));
	return 0;
}

/* ---- reading -------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static bool
need(struct rd *r, size_t n)
{
	if (r->bad || r->n < n) {
		r->bad = true;
		return false;
	}
	return true;
}

static uint64_t
get_u64(struct rd *r)
{
	uint64_t v;

	if (!need(r, 8))
		return 0;
	v = get_u64le(r->p);
	r->p += 8;
	r->n -= 8;
	return v;
}

static uint32_t
get_u32(struct rd *r)
{
	uint32_t v;

	if (!need(r, 4))
		return 0;
	v = get_u32le(r->p);
	r->p += 4;
	r->n -= 4;
	return v;
}

static uint8_t
get_u8(struct rd *r)
{
	uint8_t v;

	if (!need(r, 1))
		return 0;
	v = r->p[0];
	r->p++;
	r->n--;
	return v;
}

/*
 * Well-formed UTF-8 (RFC 3629: no overlongs, surrogates or values past
 * U+10FFFF), as jansson demands of every string it is given back.
 */
static bool
utf8_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i];
		uint32_t cp;
		size_t len;

		if (b < 0x80) {
			i++;
			continue;
		}
		if (b >= 0xc2 && b <= 0xdf)
			len = 2, cp = b & 0x1f;
		else if (b >= 0xe0 && b <= 0xef)
			len = 3, cp = b & 0x0f;
		else if (b >= 0xf0 && b <= 0xf4)
			len = 4, cp = b & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 &&
						    cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

/* A string of at most @max bytes, in place; "" once the reader failed. */
static const char *
get_str(struct rd *r, size_t max)
{
	uint32_t n = get_u32(r);
	const char *s;

	if (r->bad || n > max || !need(r, (size_t)n + 1) || r->p[n] != 0 ||
	    memchr(r->p, 0, n) != NULL || !utf8_ok(r->p, n)) {
		r->bad = true;
		return "";
	}
	s = (const char *)r->p;
	r->p += n + 1;
	r->n -= (size_t)n + 1;
	return s;
}

/* Restore state: the catalog being built and the error to report. */
struct rs {
	struct rd r;
	struct catalog *t;
	struct dsc_err *err;
	int rc;
};

static int
corrupt(struct rs *s, const char *what)
{
	if (s->rc == 0)
		s->rc = dsc_errorf(s->err, DSC_ECORRUPT, "catalog snapshot: "
		    "bad %s", what);
	return s->rc;
}

static int
nomem(struct rs *s)
{
	if (s->rc == 0)
		s->rc = dsc_errorf(s->err, DSC_ENOMEM, "out of memory");
	return s->rc;
}

static int
get_pairs(struct rs *s, struct cat_pair *p, uint16_t *n, size_t max,
    size_t vmax)
{
	uint32_t cnt = get_u32(&s->r);

	if (cnt > max)
		return corrupt(s, "map size");
	for (uint32_t i = 0; i < cnt; i++) {
		p[i].k = get_str(&s->r, CATALOG_META_KEY_MAX);
		p[i].v = get_str(&s->r, vmax);
		if (i > 0 && strcmp(p[i - 1].k, p[i].k) >= 0)
			return corrupt(s, "map order");
	}
	*n = (uint16_t)cnt;
	return s->r.bad ? corrupt(s, "map") : 0;
}

static int
read_svc(struct rs *s, struct cat_node *n, const char **prev)
{
	const char *tags[CATALOG_TAGS_MAX];
	struct cat_pair meta[CATALOG_META_MAX];
	struct cat_taddr ta[CATALOG_TADDRS_MAX];
	char l[CATALOG_NAME_MAX + 1];
	struct svc_body t = { 0 };
	struct cat_group *g;
	struct cat_svc *sv;
	uint32_t cnt;

	t.id = get_str(&s->r, CATALOG_ID_MAX);
	t.name = get_str(&s->r, CATALOG_NAME_MAX);
	t.address = get_str(&s->r, CATALOG_ADDR_MAX);
	t.kind = get_str(&s->r, CATALOG_KIND_MAX);
	if (s->r.bad || (*prev != NULL && strcmp(*prev, t.id) >= 0) ||
	    cat_check_id("service ID", t.id, CATALOG_ID_MAX, NULL) != 0 ||
	    cat_check_name("service name", t.name, NULL) != 0)
		return corrupt(s, "service");
	*prev = t.id;
	if ((cnt = get_u32(&s->r)) > CATALOG_TAGS_MAX)
		return corrupt(s, "tags");
	for (uint32_t i = 0; i < cnt; i++)
		tags[i] = get_str(&s->r, CATALOG_TAG_MAX);
	t.n_tags = (uint16_t)cnt;
	if (get_pairs(s, meta, &t.n_meta, CATALOG_META_MAX,
		CATALOG_META_VALUE_MAX) != 0)
		return s->rc;
	if ((cnt = get_u32(&s->r)) > CATALOG_TADDRS_MAX)
		return corrupt(s, "tagged addresses");
	for (uint32_t i = 0; i < cnt; i++) {
		ta[i].k = get_str(&s->r, CATALOG_TADDR_KEY_MAX);
		ta[i].addr = get_str(&s->r, CATALOG_ADDR_MAX);
		ta[i].port = get_u32(&s->r);
	}
	t.n_taddrs = (uint16_t)cnt;
	t.eto = get_u8(&s->r) != 0;
	t.port = get_u32(&s->r);
	t.w_passing = get_u32(&s->r);
	t.w_warning = get_u32(&s->r);
	t.tags = tags;
	t.meta = meta;
	t.taddrs = ta;
	(void)cat_lower(t.name, l);
	if (s->r.bad || (g = hmap_get(&s->t->groups, l)) == NULL)
		return corrupt(s, "service group");
	if ((sv = dsc_calloc(1, sizeof(*sv))) == NULL)
		return nomem(s);
	if ((sv->b = svc_body_new(&t)) == NULL ||
	    ptrvec_reserve(&g->insts, 1) != 0 ||
	    hmap_put(&n->services, sv, NULL) != 0) {
		dsc_free(sv->b);
		dsc_free(sv);
		return nomem(s);
	}
	sv->node = n;
	sv->create_index = get_u64(&s->r);
	sv->modify_index = get_u64(&s->r);
	sv->group = g;
	sv->gpos = g->insts.n;
	g->insts.v[g->insts.n++] = sv;
	return s->r.bad ? corrupt(s, "service") : 0;
}

static int
read_check(struct rs *s, struct cat_node *n, const char **prev)
{
	struct check_body t;
	const char *out;
	struct cat_check *k;
	struct cat_svc *owner = NULL;
	struct ptrvec *pv;
	uint8_t st;
	size_t dlen;

	t.id = get_str(&s->r, CATALOG_ID_MAX);
	t.name = get_str(&s->r, CATALOG_TEXT_MAX);
	t.notes = get_str(&s->r, CATALOG_NOTES_MAX);
	t.service_id = get_str(&s->r, CATALOG_ID_MAX);
	t.type = get_str(&s->r, CATALOG_TEXT_MAX);
	t.interval = get_str(&s->r, CATALOG_TEXT_MAX);
	t.timeout = get_str(&s->r, CATALOG_TEXT_MAX);
	t.definition = get_str(&s->r, CATALOG_DEFINITION_MAX);
	out = get_str(&s->r, CATALOG_OUTPUT_MAX);
	st = get_u8(&s->r);
	if (s->r.bad || st >= CAT_STATUS_MAX ||
	    cat_check_id("check ID", t.id, CATALOG_ID_MAX, NULL) != 0 ||
	    (*prev != NULL && strcmp(*prev, t.id) >= 0))
		return corrupt(s, "check");
	*prev = t.id;
	if (t.service_id[0] != '\0' &&
	    (owner = hmap_get(&n->services, t.service_id)) == NULL)
		return corrupt(s, "check service");
	/* Shape only: jansson cannot tell a failed allocation from bad
	 * input, and restore must not call one the other. */
	dlen = strlen(t.definition);
	if (dlen != 0 && (dlen < 2 || t.definition[0] != '{' ||
			     t.definition[dlen - 1] != '}'))
		return corrupt(s, "check definition");
	pv = owner != NULL ? &owner->checks : &n->node_checks;
	if ((k = dsc_calloc(1, sizeof(*k))) == NULL)
		return nomem(s);
	if ((k->b = check_body_new(&t)) == NULL ||
	    (out[0] != '\0' && (k->output = dsc_strdup(out)) == NULL) ||
	    ptrvec_reserve(pv, 1) != 0 ||
	    hmap_put(&n->checks, k, NULL) != 0) {
		dsc_free(k->b);
		dsc_free(k->output);
		dsc_free(k);
		return nomem(s);
	}
	k->node = n;
	k->svc = owner;
	k->status = (enum cat_status)st;
	k->create_index = get_u64(&s->r);
	k->modify_index = get_u64(&s->r);
	k->pos = pv->n;
	pv->v[pv->n++] = k;
	return s->r.bad ? corrupt(s, "check") : 0;
}

static int
read_node_body(struct rs *s, struct cat_node *n)
{
	struct cat_pair tagged[CATALOG_TADDRS_MAX], meta[CATALOG_META_MAX];
	char l[CATALOG_NAME_MAX + 1];
	struct node_body t = { 0 };

	t.name = get_str(&s->r, CATALOG_NAME_MAX);
	t.id = get_str(&s->r, 64);
	t.address = get_str(&s->r, CATALOG_ADDR_MAX);
	if (s->r.bad || cat_check_name("node", t.name, NULL) != 0 ||
	    !cat_lower(t.name, l) || strcmp(l, n->lname) != 0)
		return corrupt(s, "node");
	if (get_pairs(s, tagged, &t.n_tagged, CATALOG_TADDRS_MAX,
		CATALOG_ADDR_MAX) != 0 ||
	    get_pairs(s, meta, &t.n_meta, CATALOG_META_MAX,
		CATALOG_META_VALUE_MAX) != 0)
		return s->rc;
	t.tagged = tagged;
	t.meta = meta;
	if ((n->b = node_body_new(&t)) == NULL)
		return nomem(s);
	return 0;
}

static int
read_node(struct rs *s, const char **prev)
{
	const char *lname = get_str(&s->r, CATALOG_NAME_MAX), *last = NULL;
	char l[CATALOG_NAME_MAX + 1];
	struct cat_node *n;
	uint32_t cnt;
	bool live;

	if (s->r.bad || cat_check_name("node", lname, NULL) != 0 ||
	    !cat_lower(lname, l) || strcmp(l, lname) != 0 ||
	    (*prev != NULL && strcmp(*prev, lname) >= 0))
		return corrupt(s, "node name");
	*prev = lname;
	if ((n = cat_node_alloc(lname)) == NULL)
		return nomem(s);
	if (hmap_put(&s->t->nodes, n, NULL) != 0) {
		cat_node_free(n);
		return nomem(s);
	}
	live = get_u8(&s->r) != 0;
	n->create_index = get_u64(&s->r);
	n->modify_index = get_u64(&s->r);
	n->watch_index = get_u64(&s->r);
	if (!live)
		return s->r.bad ? corrupt(s, "node") : 0;
	if (read_node_body(s, n) != 0)
		return s->rc;
	s->t->n_live_nodes++;
	cnt = get_u32(&s->r);
	for (uint32_t i = 0; i < cnt && s->rc == 0; i++)
		(void)read_svc(s, n, &last);
	last = NULL;
	cnt = s->rc == 0 ? get_u32(&s->r) : 0;
	for (uint32_t i = 0; i < cnt && s->rc == 0; i++)
		(void)read_check(s, n, &last);
	return s->r.bad ? corrupt(s, "node") : s->rc;
}

/* Counts are bounded by the bytes left, so a bad count cannot run long. */
static uint64_t
get_count(struct rs *s, size_t min_item)
{
	uint64_t n = get_u64(&s->r);

	if (n > s->r.n / min_item)
		s->r.bad = true;
	return s->r.bad ? 0 : n;
}

static int
read_groups(struct rs *s)
{
	uint64_t n = get_count(s, 13);
	const char *prev = NULL;

	for (uint64_t i = 0; i < n && s->rc == 0; i++) {
		const char *l = get_str(&s->r, CATALOG_NAME_MAX);
		char low[CATALOG_NAME_MAX + 1];
		struct cat_group *g;

		if (s->r.bad || cat_check_name("service", l, NULL) != 0 ||
		    !cat_lower(l, low) || strcmp(low, l) != 0 ||
		    (prev != NULL && strcmp(prev, l) >= 0))
			return corrupt(s, "service group");
		prev = l;
		if ((g = cat_group_alloc(l)) == NULL)
			return nomem(s);
		if (hmap_put(&s->t->groups, g, NULL) != 0) {
			cat_group_free(g);
			return nomem(s);
		}
		g->index = get_u64(&s->r);
	}
	return s->r.bad ? corrupt(s, "service groups") : s->rc;
}

static int
read_kv(struct rs *s)
{
	uint64_t n = get_count(s, 34);
	const char *prev = NULL;

	for (uint64_t i = 0; i < n && s->rc == 0; i++) {
		const char *key = get_str(&s->r, CATALOG_KEY_MAX);
		bool tomb = get_u8(&s->r) != 0;
		uint64_t flags = get_u64(&s->r), ci = get_u64(&s->r),
			 mi = get_u64(&s->r);
		uint32_t vlen = get_u32(&s->r);
		struct kv_ent *e;

		if (s->r.bad || key[0] == '\0' || vlen > CATALOG_VALUE_MAX ||
		    flags > INT64_MAX || (tomb && vlen != 0) ||
		    (prev != NULL && strcmp(prev, key) >= 0) ||
		    !need(&s->r, vlen))
			return corrupt(s, "kv entry");
		prev = key;
		if ((e = cat_kv_ent_new(key, strlen(key))) == NULL)
			return nomem(s);
		if (vlen != 0 && (e->val = dsc_malloc(vlen)) == NULL) {
			dsc_free(e);
			return nomem(s);
		}
		if (vlen != 0)
			memcpy(e->val, s->r.p, vlen);
		s->r.p += vlen;
		s->r.n -= vlen;
		e->vlen = vlen;
		e->tomb = tomb;
		e->flags = flags;
		e->create_index = ci;
		e->modify_index = mi;
		cat_kv_insert(s->t, e);
	}
	return s->r.bad ? corrupt(s, "kv") : s->rc;
}

static int
read_clients(struct rs *s)
{
	uint64_t n = get_count(s, 23);

	for (uint64_t i = 0; i < n && s->rc == 0; i++) {
		const char *id = get_str(&s->r, CATALOG_CLIENT_ID_MAX);
		uint64_t seq = get_u64(&s->r);
		bool ok = get_u8(&s->r) != 0;
		uint32_t code = get_u32(&s->r);
		const char *msg = get_str(&s->r, DSC_ERRMSG_MAX - 1);
		struct cat_client *cl;

		if (s->r.bad || code >= DSC_E_MAX ||
		    cat_check_id("client", id, CATALOG_CLIENT_ID_MAX, NULL) ||
		    hmap_get(&s->t->clients, id) != NULL ||
		    (code == 0) != (msg[0] == '\0'))
			return corrupt(s, "client");
		if ((cl = cat_client_new(id)) == NULL)
			return nomem(s);
		if ((code != 0 && (cl->msg = dsc_strdup(msg)) == NULL) ||
		    hmap_put(&s->t->clients, cl, NULL) != 0) {
			dsc_free(cl->msg);
			dsc_free(cl);
			return nomem(s);
		}
		cl->seq = seq;
		cl->ok = ok;
		cl->code = (int)code;
		cat_client_append(s->t, cl);
	}
	return s->r.bad ? corrupt(s, "clients") : s->rc;
}

static int
read_all(struct rs *s)
{
	struct catalog *t = s->t;
	const char *prev = NULL;
	uint64_t n;

	if (!need(&s->r, sizeof(magic)) ||
	    memcmp(s->r.p, magic, sizeof(magic)) != 0)
		return corrupt(s, "header");
	s->r.p += sizeof(magic);
	s->r.n -= sizeof(magic);
	t->applied = get_u64(&s->r);
	t->services_index = get_u64(&s->r);
	t->nodes_index = get_u64(&s->r);
	for (int i = 0; i < CAT_SX_MAX; i++)
		t->state_index[i] = get_u64(&s->r);
	t->node_floor = get_u64(&s->r);
	t->svc_floor = get_u64(&s->r);
	t->kv_floor = get_u64(&s->r);
	if (read_groups(s) != 0)
		return s->rc;
	n = get_count(s, 30);
	for (uint64_t i = 0; i < n && s->rc == 0; i++)
		(void)read_node(s, &prev);
	if (s->rc != 0 || read_kv(s) != 0 || read_clients(s) != 0)
		return s->rc;
	if (s->r.bad || s->r.n != 0)
		return corrupt(s, "length");
	return 0;
}

/* Moves @from's replicated state into @to; @from gets @to's old state. */
static void
swap_state(struct catalog *to, struct catalog *from)
{
	struct catalog tmp = *to;

	to->applied = from->applied;
	to->services_index = from->services_index;
	to->nodes_index = from->nodes_index;
	memcpy(to->state_index, from->state_index, sizeof(to->state_index));
	to->node_floor = from->node_floor;
	to->svc_floor = from->svc_floor;
	to->kv_floor = from->kv_floor;
	to->nodes = from->nodes;
	to->n_live_nodes = from->n_live_nodes;
	to->groups = from->groups;
	to->kv = from->kv;
	to->kv_n = from->kv_n;
	to->clients = from->clients;
	to->lru_head = from->lru_head;
	to->lru_tail = from->lru_tail;

	from->nodes = tmp.nodes;
	from->n_live_nodes = tmp.n_live_nodes;
	from->groups = tmp.groups;
	from->kv = tmp.kv;
	from->kv_n = tmp.kv_n;
	from->clients = tmp.clients;
	from->lru_head = tmp.lru_head;
	from->lru_tail = tmp.lru_tail;
}

int
catalog_restore(struct catalog *c, const void *data, size_t len,
    struct dsc_err *err)
{
	struct rs s;

	memset(&s, 0, sizeof(s));
	s.r.p = data;
	s.r.n = len;
	s.err = err;
	if ((s.t = catalog_new()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	if (read_all(&s) != 0) {
		catalog_free(s.t);
		return s.rc;
	}
	swap_state(c, s.t);
	catalog_free(s.t);
	buf_clear(&c->chg);
	c->chg_n = 0;
	c->chg_keys_n = 0;
	c->chg_all = true;
	return 0;
}

/*
 * raft_codec.c - the version 1 wire format of raft_codec.h.
 *
 * The encoder checks the whole message and computes its exact size first,
 * grows the buffer once, and only then writes; so it either writes all of
 * the message or nothing. The decoder reads through a cursor that refuses to
 * move past the end, checks each count against both its named limit and the
 * bytes actually left before trusting it, and builds the message in locals,
 * copying it out only once every byte has been accepted.
 */
#include "raft_codec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dsc_assert.h"
#include "mem.h"

enum {
	FLAG_REJECT = 1 << 0,
	FLAG_TRANSFER = 1 << 1,
	FLAGS_KNOWN = FLAG_REJECT | FLAG_TRANSFER,
};

/* Fixed bytes of the SNAPSHOT part before the servers: index, term, n. */
#define SNAP_META_HDR (8 + 8 + 4)

_Static_assert(RAFT_CODEC_MAX_SNAPSHOT + RAFT_CODEC_HDR + SNAP_META_HDR +
			   RAFT_MAX_SERVERS * RAFT_CODEC_SERVER_SIZE + 8 <=
		       RAFT_CODEC_MAX_MSG,
    "a maximal snapshot message must be encodable");

/* ---- shared checks ------------------------------------------------------ */

/* A configuration is at most RAFT_MAX_SERVERS distinct non-zero ids. */
static int
check_conf(const struct raft_conf *c, struct dsc_err *err, int code,
	   const char *what)
{
	if (c->n > RAFT_MAX_SERVERS)
		return dsc_errorf(err, code,
		    "%s: %u servers in configuration, limit %d", what,
		    (unsigned)c->n, RAFT_MAX_SERVERS);
	for (uint32_t i = 0; i < c->n; i++) {
		if (c->servers[i].id == RAFT_NONE)
			return dsc_errorf(err, code,
			    "%s: server %u has id 0", what, (unsigned)i);
		if (c->servers[i].suffrage > RAFT_LEARNER)
			return dsc_errorf(err, code,
			    "%s: server %u has unknown suffrage %u", what,
			    (unsigned)i, (unsigned)c->servers[i].suffrage);
		for (uint32_t j = 0; j < i; j++)
			if (c->servers[j].id == c->servers[i].id)
				return dsc_errorf(err, code,
				    "%s: server id %llu listed twice", what,
				    (unsigned long long)c->servers[i].id);
	}
	return 0;
}

/* ---- encoding ----------------------------------------------------------- */

/*
 * Checks @m against everything the decoder will check and computes its
 * encoded size into *@size. Returns 0 or the error.
 */
static int
measure(const struct raft_msg *m, size_t *size, struct dsc_err *err)
{
	size_t n = RAFT_CODEC_HDR;
	int rc;

	if (m->type >= RAFT_MSG_TYPE_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "unable to encode message of unknown type %u",
		    (unsigned)m->type);
	if (m->n_entries > 0 && m->type != RAFT_MSG_APPEND)
		return dsc_errorf(err, DSC_EINVAL,
		    "unable to encode %s: it carries %zu entries",
		    raft_msg_type_name(m->type), m->n_entries);
	if (m->type == RAFT_MSG_APPEND) {
		if (m->n_entries > RAFT_CODEC_MAX_ENTRIES)
			return dsc_errorf(err, DSC_ETOOBIG,
			    "unable to encode append: %zu entries, limit %d",
			    m->n_entries, RAFT_CODEC_MAX_ENTRIES);
		if (m->n_entries > 0 && m->index > UINT64_MAX - m->n_entries)
			return dsc_errorf(err, DSC_EINVAL,
			    "unable to encode append: entry index overflows");
		n += 4;
		for (size_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];

			if (e->index != m->index + 1 + i)
				return dsc_errorf(err, DSC_EINVAL,
				    "unable to encode append: entry %zu has "
				    "index %llu, expected %llu", i,
				    (unsigned long long)e->index,
				    (unsigned long long)(m->index + 1 + i));
			if (e->type >= RAFT_ENTRY_TYPE_MAX)
				return dsc_errorf(err, DSC_EINVAL,
				    "unable to encode append: entry %zu has "
				    "unknown type %u", i, (unsigned)e->type);
			if (e->len > RAFT_MAX_ENTRY_SIZE)
				return dsc_errorf(err, DSC_ETOOBIG,
				    "unable to encode append: entry %zu is "
				    "%lu bytes, limit %lu", i,
				    (unsigned long)e->len,
				    (unsigned long)RAFT_MAX_ENTRY_SIZE);
			if (e->len > 0 && e->data == NULL)
				return dsc_errorf(err, DSC_EINVAL,
				    "unable to encode append: entry %zu has "
				    "no data", i);
			n += RAFT_CODEC_ENTRY_HDR + e->len;
			if (n > RAFT_CODEC_MAX_MSG)
				return dsc_errorf(err, DSC_ETOOBIG,
				    "unable to encode append: more than %lu "
				    "bytes", (unsigned long)RAFT_CODEC_MAX_MSG);
		}
	} else if (m->type == RAFT_MSG_SNAPSHOT) {
		const struct raft_snapshot *s = &m->snapshot;

		if ((rc = check_conf(&s->meta.conf, err, DSC_EINVAL,
			 "unable to encode snapshot")) != 0)
			return rc;
		if (s->len > RAFT_CODEC_MAX_SNAPSHOT)
			return dsc_errorf(err, DSC_ETOOBIG,
			    "unable to encode snapshot: %zu bytes, limit %lu",
			    s->len, (unsigned long)RAFT_CODEC_MAX_SNAPSHOT);
		if (s->len > 0 && s->data == NULL)
			return dsc_errorf(err, DSC_EINVAL,
			    "unable to encode snapshot: no data");
		n += SNAP_META_HDR + s->meta.conf.n * RAFT_CODEC_SERVER_SIZE +
		     8 + s->len;
	}
	*size = n;
	return 0;
}

size_t
raft_msg_encoded_size(const struct raft_msg *m)
{
	size_t n = 0;

	return measure(m, &n, NULL) == 0 ? n : 0;
}

/* Writers into room reserved by buf_grow(); they cannot fail. */
static uint8_t *
put8(uint8_t *p, uint8_t v)
{
	*p = v;
	return p + 1;
}

static uint8_t *
put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 4;
}

static uint8_t *
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	return p + 8;
}

static uint8_t *
putn(uint8_t *p, const void *data, size_t n)
{
	if (n > 0)
		memcpy(p, data, n);
	return p + n;
}

int
raft_msg_encode(const struct raft_msg *m, struct buf *out,
		struct dsc_err *err)
{
	size_t size = 0;
	uint8_t *p, *start;
	int rc;

	if ((rc = measure(m, &size, err)) != 0)
		return rc;
	if (buf_grow(out, size) != 0)
		return dsc_errorf(err, DSC_ENOMEM,
		    "unable to encode %s: out of memory",
		    raft_msg_type_name(m->type));
	p = start = out->p + out->len;
	p = put8(p, RAFT_CODEC_VERSION);
	p = put8(p, m->type);
	p = put8(p, (uint8_t)((m->reject ? FLAG_REJECT : 0) |
			      (m->transfer ? FLAG_TRANSFER : 0)));
	p = put64(p, m->from);
	p = put64(p, m->to);
	p = put64(p, m->term);
	p = put64(p, m->index);
	p = put64(p, m->log_term);
	p = put64(p, m->commit);
	p = put64(p, m->hint);
	p = put64(p, m->context);
	if (m->type == RAFT_MSG_APPEND) {
		p = put32(p, (uint32_t)m->n_entries);
		for (size_t i = 0; i < m->n_entries; i++) {
			const struct raft_entry *e = &m->entries[i];

			p = put64(p, e->term);
			p = put64(p, e->index);
			p = put8(p, e->type);
			p = put32(p, e->len);
			p = putn(p, e->data, e->len);
		}
	} else if (m->type == RAFT_MSG_SNAPSHOT) {
		const struct raft_snapshot *s = &m->snapshot;

		p = put64(p, s->meta.index);
		p = put64(p, s->meta.term);
		p = put32(p, s->meta.conf.n);
		for (uint32_t i = 0; i < s->meta.conf.n; i++) {
			p = put64(p, s->meta.conf.servers[i].id);
			p = put8(p, s->meta.conf.servers[i].suffrage);
		}
		p = put64(p, (uint64_t)s->len);
		p = putn(p, s->data, s->len);
	}
	DSC_ASSERT((size_t)(p - start) == size);
	out->len += size;
	out->p[out->len] = '\0';
	return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/* A bounded cursor; @err gets the first failure and later reads fail too. */
struct rd {
	const uint8_t *base;
	size_t off, len;
	struct dsc_err *err;
	int rc;
};

/* Fails the read of @n bytes for @what when fewer are left. */
static bool
need(struct rd *r, size_t n, const char *what)
{
	if (r->rc != 0)
		return false;
	if (n <= r->len - r->off)
		return true;
	r->rc = dsc_errorf(r->err, DSC_EPROTO,
	    "truncated raft message: %s at offset %zu needs %zu bytes, "
	    "%zu left", what, r->off, n, r->len - r->off);
	return false;
}

static uint8_t
get8(struct rd *r, const char *what)
{
	if (!need(r, 1, what))
		return 0;
	return r->base[r->off++];
}

static uint32_t
get32(struct rd *r, const char *what)
{
	uint32_t v;

	if (!need(r, 4, what))
		return 0;
	v = get_u32le(r->base + r->off);
	r->off += 4;
	return v;
}

static uint64_t
get64(struct rd *r, const char *what)
{
	uint64_t v;

	if (!need(r, 8, what))
		return 0;
	v = get_u64le(r->base + r->off);
	r->off += 8;
	return v;
}

/* Takes @n bytes in place; NULL for @n == 0 or on failure. */
static const uint8_t *
getn(struct rd *r, size_t n, const char *what)
{
	const uint8_t *p;

	if (!need(r, n, what) || n == 0)
		return NULL;
	p = r->base + r->off;
	r->off += n;
	return p;
}

/*
 * Records a protocol error found just before the cursor's offset and returns
 * DSC_EPROTO, so decoders write `return bad(r, ...)`.
 */
static int bad(struct rd *, const char *, ...)
	__attribute__((format(printf, 2, 3)));

static int
bad(struct rd *r, const char *fmt, ...)
{
	char what[DSC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	r->rc = dsc_errorf(r->err, DSC_EPROTO,
	    "bad raft message: %s (before offset %zu)", what, r->off);
	return r->rc;
}

/*
 * Makes room for @n entries in @st. @n is already bounded by the limit and
 * by the bytes left, so the allocation is paid for by the input.
 */
static int
reserve(struct raft_msg_storage *st, size_t n, struct dsc_err *err)
{
	struct raft_entry *e;

	if (n <= st->cap)
		return 0;
	e = dsc_reallocarray(st->entries, n, sizeof(*e));
	if (e == NULL)
		return dsc_errorf(err, DSC_ENOMEM,
		    "unable to decode %zu raft entries: out of memory", n);
	st->entries = e;
	st->cap = n;
	return 0;
}

static int
decode_append(struct rd *r, struct raft_msg *m, struct raft_msg_storage *st)
{
	uint32_t n = get32(r, "entry count");

	if (r->rc != 0)
		return r->rc;
	if (n > RAFT_CODEC_MAX_ENTRIES)
		return bad(r, "%lu entries, limit %d", (unsigned long)n,
		    RAFT_CODEC_MAX_ENTRIES);
	/* Before allocating: the input must hold n entry headers. */
	if ((size_t)n > (r->len - r->off) / RAFT_CODEC_ENTRY_HDR)
		return bad(r, "%lu entries claimed, %zu bytes left",
		    (unsigned long)n, r->len - r->off);
	if (n > 0 && m->index > UINT64_MAX - n)
		return bad(r, "%lu entries after index %llu",
		    (unsigned long)n, (unsigned long long)m->index);
	if (n == 0)
		return 0;
	if ((r->rc = reserve(st, n, r->err)) != 0)
		return r->rc;
	for (uint32_t i = 0; i < n; i++) {
		struct raft_entry *e = &st->entries[i];

		e->term = get64(r, "entry term");
		e->index = get64(r, "entry index");
		e->type = get8(r, "entry type");
		e->len = get32(r, "entry length");
		if (r->rc != 0)
			return r->rc;
		if (e->index != m->index + 1 + i)
			return bad(r, "entry %lu has index %llu, expected %llu",
			    (unsigned long)i, (unsigned long long)e->index,
			    (unsigned long long)(m->index + 1 + i));
		if (e->type >= RAFT_ENTRY_TYPE_MAX)
			return bad(r, "entry %lu has unknown type %u",
			    (unsigned long)i, (unsigned)e->type);
		if (e->len > RAFT_MAX_ENTRY_SIZE)
			return bad(r, "entry %lu is %lu bytes, limit %lu",
			    (unsigned long)i, (unsigned long)e->len,
			    (unsigned long)RAFT_MAX_ENTRY_SIZE);
		/* Entry data is read-only; raft.h types it for the core. */
		e->data = (uint8_t *)(uintptr_t)getn(r, e->len, "entry data");
		if (r->rc != 0)
			return r->rc;
	}
	m->entries = st->entries;
	m->n_entries = n;
	return 0;
}

static int
decode_snapshot(struct rd *r, struct raft_msg *m)
{
	struct raft_snapshot *s = &m->snapshot;
	uint64_t len;

	s->meta.index = get64(r, "snapshot index");
	s->meta.term = get64(r, "snapshot term");
	s->meta.conf.n = get32(r, "server count");
	if (r->rc != 0)
		return r->rc;
	if (s->meta.conf.n > RAFT_MAX_SERVERS)
		return bad(r, "%lu servers in configuration, limit %d",
		    (unsigned long)s->meta.conf.n, RAFT_MAX_SERVERS);
	for (uint32_t i = 0; i < s->meta.conf.n; i++) {
		s->meta.conf.servers[i].id = get64(r, "server id");
		s->meta.conf.servers[i].suffrage = get8(r, "server suffrage");
	}
	if (r->rc != 0)
		return r->rc;
	if ((r->rc = check_conf(&s->meta.conf, r->err, DSC_EPROTO,
		 "bad raft message: snapshot configuration")) != 0)
		return r->rc;
	len = get64(r, "snapshot length");
	if (r->rc != 0)
		return r->rc;
	if (len > RAFT_CODEC_MAX_SNAPSHOT)
		return bad(r, "snapshot of %llu bytes, limit %lu",
		    (unsigned long long)len,
		    (unsigned long)RAFT_CODEC_MAX_SNAPSHOT);
	s->len = (size_t)len;
	s->data = getn(r, s->len, "snapshot data");
	return r->rc;
}

void
raft_msg_storage_release(struct raft_msg_storage *st)
{
	dsc_free(st->entries);
	st->entries = NULL;
	st->cap = 0;
}

int
raft_msg_decode(const uint8_t *p, size_t len, struct raft_msg *m,
		struct raft_msg_storage *st, struct dsc_err *err)
{
	struct rd r = { p, 0, len, err, 0 };
	struct raft_msg d;
	uint8_t version, flags;
	int rc = 0;

	memset(&d, 0, sizeof(d));
	if (len > RAFT_CODEC_MAX_MSG)
		return dsc_errorf(err, DSC_EPROTO,
		    "bad raft message: %zu bytes, limit %lu", len,
		    (unsigned long)RAFT_CODEC_MAX_MSG);
	version = get8(&r, "version");
	d.type = get8(&r, "type");
	flags = get8(&r, "flags");
	if (r.rc != 0)
		return r.rc;
	if (version != RAFT_CODEC_VERSION)
		return bad(&r, "version %u, this build speaks %d",
		    (unsigned)version, RAFT_CODEC_VERSION);
	if (d.type >= RAFT_MSG_TYPE_MAX)
		return bad(&r, "unknown type %u", (unsigned)d.type);
	if ((flags & ~FLAGS_KNOWN) != 0)
		return bad(&r, "unknown flags 0x%02x", (unsigned)flags);
	d.reject = (flags & FLAG_REJECT) != 0;
	d.transfer = (flags & FLAG_TRANSFER) != 0;
	d.from = get64(&r, "from");
	d.to = get64(&r, "to");
	d.term = get64(&r, "term");
	d.index = get64(&r, "index");
	d.log_term = get64(&r, "log term");
	d.commit = get64(&r, "commit");
	d.hint = get64(&r, "hint");
	d.context = get64(&r, "context");
	if (r.rc != 0)
		return r.rc;
	if (d.type == RAFT_MSG_APPEND)
		rc = decode_append(&r, &d, st);
	else if (d.type == RAFT_MSG_SNAPSHOT)
		rc = decode_snapshot(&r, &d);
	if (rc != 0)
		return rc;
	if (r.off != len)
		return dsc_errorf(err, DSC_EPROTO,
		    "bad raft message: %zu trailing bytes after %s at offset "
		    "%zu", len - r.off, raft_msg_type_name(d.type), r.off);
	*m = d;
	return 0;
}

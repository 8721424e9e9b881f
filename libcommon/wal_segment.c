/*
 * wal_segment.c - segment records: encoding, file names, and the loader.
 *
 * The loader reads every segment whole, in sequence order, and replays its
 * records into a vector of entries the way they were appended: an entry at
 * index i drops everything at or above i first (a follower's suffix
 * replacement), a RESET drops everything. It changes nothing on disk; what
 * a torn tail needs is written down in struct wal_scan for wal_open to do
 * once the whole load has succeeded, so damaged data is never "repaired"
 * into something else.
 *
 * Telling a torn tail from damage (canonical/raft's rule): only the last
 * segment can end in a write that was cut short by a crash, and a cut-short
 * write is the last thing in the file, so the bad record must be followed
 * by nothing but the zeros of preallocation. A bad record anywhere else, or
 * one followed by data, is damage.
 */
#include "wal_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "mem.h"

/* ---- encoding ---------------------------------------------------------- */

static void
put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
rec_crc(const uint8_t *p, uint32_t len)
{
	return crc32c(crc32c(0, p, 4), p + 8, 4 + (size_t)len);
}

/* Fills in the header of a record whose payload is already at p + 12. */
static size_t
finish(uint8_t *p, uint8_t type, size_t len)
{
	put_u32(p, (uint32_t)len);
	p[8] = type;
	p[9] = p[10] = p[11] = 0;
	put_u32(p + 4, rec_crc(p, (uint32_t)len));
	return WAL_REC_HDR + len;
}

size_t
wal_enc_segment(uint8_t *p, uint64_t seq, uint64_t first)
{
	uint8_t *q = p + WAL_REC_HDR;

	memcpy(q, WAL_MAGIC, 8);
	put_u32(q + 8, WAL_VERSION);
	put_u32(q + 12, 0);
	put_u64(q + 16, seq);
	put_u64(q + 24, first);
	return finish(p, WAL_REC_SEGMENT, WAL_SEGMENT_PAYLOAD);
}

size_t
wal_enc_hard(uint8_t *p, const struct raft_hard *h)
{
	uint8_t *q = p + WAL_REC_HDR;

	put_u64(q, h->term);
	put_u64(q + 8, h->vote);
	put_u64(q + 16, h->commit);
	return finish(p, WAL_REC_HARD, WAL_HARD_PAYLOAD);
}

size_t
wal_enc_entry(uint8_t *p, const struct raft_entry *e)
{
	uint8_t *q = p + WAL_REC_HDR;

	put_u64(q, e->term);
	put_u64(q + 8, e->index);
	memset(q + 16, 0, 8);
	q[16] = e->type;
	if (e->len > 0)
		memcpy(q + WAL_ENTRY_HEAD, e->data, e->len);
	return finish(p, WAL_REC_ENTRY, WAL_ENTRY_HEAD + (size_t)e->len);
}

size_t
wal_enc_reset(uint8_t *p, uint64_t index, uint64_t term)
{
	uint8_t *q = p + WAL_REC_HDR;

	put_u64(q, index);
	put_u64(q + 8, term);
	return finish(p, WAL_REC_RESET, WAL_RESET_PAYLOAD);
}

/* ---- names ------------------------------------------------------------- */

bool
wal_parse_hex16(const char *p, uint64_t *v)
{
	uint64_t x = 0;

	for (int i = 0; i < 16; i++) {
		int c = (unsigned char)p[i], d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return false;
		x = x << 4 | (uint64_t)d;
	}
	*v = x;
	return true;
}

void
wal_seg_name(char out[WAL_NAME_LEN + 1], uint64_t seq, uint64_t first)
{
	snprintf(out, WAL_NAME_LEN + 1, "%016" PRIx64 "-%016" PRIx64 ".wal",
	    seq, first);
}

bool
wal_seg_parse_name(const char *name, uint64_t *seq, uint64_t *first)
{
	return strlen(name) == WAL_NAME_LEN && name[16] == '-' &&
	    strcmp(name + 33, ".wal") == 0 && wal_parse_hex16(name, seq) &&
	    wal_parse_hex16(name + 17, first) && *first > 0;
}

/* ---- decoding ---------------------------------------------------------- */

enum rec_status {
	REC_OK,
	REC_END,	/* a zeroed header: the end of what was written */
	REC_SHORT,	/* the file ends inside the header */
	REC_TRUNC,	/* the file ends inside the payload */
	REC_TOO_BIG,	/* a length no record can have */
	REC_CRC,	/* checksum mismatch */
};

static const char *const rec_status_what[] = {
	[REC_OK] = "valid record",
	[REC_END] = "data after the end of the log",
	[REC_SHORT] = "torn record header",
	[REC_TRUNC] = "truncated record",
	[REC_TOO_BIG] = "record length over the limit",
	[REC_CRC] = "checksum mismatch",
};

static bool
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Offset of the first non-zero byte in [@from, @to), or @to. */
static uint64_t
first_nonzero(const uint8_t *p, uint64_t from, uint64_t to)
{
	while (from < to && p[from] == 0)
		from++;
	return from;
}

static enum rec_status
parse(const uint8_t *p, uint64_t avail, uint32_t *len)
{
	*len = 0;
	if (avail < WAL_REC_HDR)
		return all_zero(p, (size_t)avail) ? REC_END : REC_SHORT;
	if (all_zero(p, WAL_REC_HDR))
		return REC_END;
	*len = get_u32le(p);
	if (*len > WAL_MAX_RECORD)
		return REC_TOO_BIG;
	if (*len > avail - WAL_REC_HDR)
		return REC_TRUNC;
	if (rec_crc(p, *len) != get_u32le(p + 4))
		return REC_CRC;
	return REC_OK;
}

/* Where the bad record at @off with status @st ends, as far as we know. */
static uint64_t
bad_end(enum rec_status st, uint64_t off, uint32_t len, uint64_t size)
{
	switch (st) {
	case REC_CRC:
		return off + WAL_REC_HDR + len;
	case REC_TOO_BIG:
		return off + WAL_REC_HDR;
	case REC_END:
		return off;
	default:
		return size;
	}
}

/* ---- replay ------------------------------------------------------------ */

static void
free_entries(struct raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dsc_free(e[i].data);
		e[i].data = NULL;
	}
}

/* Drops entries at or above @index (a suffix being replaced). */
static void
drop_from(struct wal_scan *s, uint64_t index)
{
	size_t keep;

	if (s->n == 0)
		return;
	if (index <= s->ents[0].index)
		keep = 0;
	else if (index - s->ents[0].index >= s->n)
		return;
	else
		keep = (size_t)(index - s->ents[0].index);
	free_entries(s->ents + keep, s->n - keep);
	s->n = keep;
}

static int
push_entry(struct wal_scan *s, const uint8_t *p, uint32_t dlen)
{
	struct raft_entry *e;

	if (s->n == s->cap) {
		size_t cap = s->cap < 64 ? 64 : s->cap * 2;

		e = dsc_reallocarray(s->ents, cap, sizeof(*e));
		if (e == NULL)
			return DSC_ENOMEM;
		s->ents = e;
		s->cap = cap;
	}
	e = &s->ents[s->n];
	*e = (struct raft_entry){ .term = get_u64le(p),
		.index = get_u64le(p + 8), .type = p[16], .len = dlen };
	if (dlen > 0) {
		e->data = dsc_malloc(dlen);
		if (e->data == NULL)
			return DSC_ENOMEM;
		memcpy(e->data, p + WAL_ENTRY_HEAD, dlen);
	}
	s->n++;
	return 0;
}

static int
malformed(struct wal_scan *s, const char *name, uint64_t off,
    const char *what, struct dsc_err *err)
{
	return dsc_errorf(err, DSC_ECORRUPT,
	    "malformed %s record in '%s/wal/%s' at offset %" PRIu64, what,
	    s->dir, name, off);
}

static int
replay_entry(struct wal_scan *s, const uint8_t *p, uint32_t len,
    const char *name, uint64_t off, struct dsc_err *err)
{
	struct wal_seg *seg = &s->segs[s->n_segs - 1];
	uint64_t index = get_u64le(p + 8);

	if (len < WAL_ENTRY_HEAD || p[16] >= RAFT_ENTRY_TYPE_MAX ||
	    !all_zero(p + 17, 7) || index == 0)
		return malformed(s, name, off, "entry", err);
	if (index > s->next)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "index gap in '%s/wal/%s' at offset %" PRIu64
		    ": entry %" PRIu64 " where %" PRIu64 " was expected",
		    s->dir, name, off, index, s->next);
	drop_from(s, index);
	if (push_entry(s, p, len - WAL_ENTRY_HEAD) != 0)
		return dsc_errorf(err, DSC_ENOMEM,
		    "out of memory loading '%s/wal/%s'", s->dir, name);
	s->next = index + 1;
	if (index > seg->last)
		seg->last = index;
	return 0;
}

/* Applies the valid record @r (@len payload bytes) at @off of @name. */
static int
replay(struct wal_scan *s, const uint8_t *r, uint32_t len, const char *name,
    uint64_t off, struct dsc_err *err)
{
	const uint8_t *p = r + WAL_REC_HDR;

	if (r[9] != 0 || r[10] != 0 || r[11] != 0)
		return malformed(s, name, off, "padded", err);
	switch (r[8]) {
	case WAL_REC_HARD:
		if (len != WAL_HARD_PAYLOAD)
			return malformed(s, name, off, "hard state", err);
		s->hard.term = get_u64le(p);
		s->hard.vote = get_u64le(p + 8);
		s->hard.commit = get_u64le(p + 16);
		return 0;
	case WAL_REC_ENTRY:
		return replay_entry(s, p, len, name, off, err);
	case WAL_REC_RESET:
		if (len != WAL_RESET_PAYLOAD || get_u64le(p) == 0)
			return malformed(s, name, off, "reset", err);
		drop_from(s, 0);
		s->next = get_u64le(p) + 1;
		for (size_t i = 0; i + 1 < s->n_segs; i++)
			s->segs[i].last = 0;
		s->segs[s->n_segs - 1].last = get_u64le(p);
		return 0;
	case WAL_REC_SEGMENT:
		return dsc_errorf(err, DSC_ECORRUPT,
		    "unexpected segment header in '%s/wal/%s' at offset %" PRIu64,
		    s->dir, name, off);
	default:
		return dsc_errorf(err, DSC_ECORRUPT,
		    "unknown record type %u in '%s/wal/%s' at offset %" PRIu64,
		    r[8], s->dir, name, off);
	}
}

/* ---- one segment ------------------------------------------------------- */

/*
 * The bad record at @off (status @st) in the segment in s->file: a torn
 * tail when the segment is the last and only zeros follow the record,
 * otherwise damage. Sets *@torn or returns DSC_ECORRUPT.
 */
static int
judge(struct wal_scan *s, const char *name, bool last, enum rec_status st,
    uint64_t off, uint32_t len, bool *torn, struct dsc_err *err)
{
	const uint8_t *p = s->file.p;
	uint64_t size = s->file.len, end, nz;

	end = bad_end(st, off, len, size);
	nz = first_nonzero(p, end, size);
	*torn = false;
	if (st == REC_END && nz == size)
		return 0;	/* the zeros of preallocation */
	if (last && st != REC_END && nz == size) {
		*torn = true;
		s->torn_off = off;
		while (end > off && p[end - 1] == 0)
			end--;
		s->torn_end = end;
		return 0;
	}
	if (st == REC_END)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "data after the end of the log in '%s/wal/%s' at offset %"
		    PRIu64, s->dir, name, nz);
	if (nz < size)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "%s in '%s/wal/%s' at offset %" PRIu64
		    " (followed by data at offset %" PRIu64 ")",
		    rec_status_what[st], s->dir, name, off, nz);
	return dsc_errorf(err, DSC_ECORRUPT,
	    "%s in '%s/wal/%s' at offset %" PRIu64 " (sealed segment)",
	    rec_status_what[st], s->dir, name, off);
}

static int
add_seg(struct wal_scan *s, uint64_t seq, uint64_t first)
{
	struct wal_seg *v;

	if (s->n_segs == s->cap_segs) {
		size_t cap = s->cap_segs < 8 ? 8 : s->cap_segs * 2;

		v = dsc_reallocarray(s->segs, cap, sizeof(*v));
		if (v == NULL)
			return DSC_ENOMEM;
		s->segs = v;
		s->cap_segs = cap;
	}
	s->segs[s->n_segs++] = (struct wal_seg){ seq, first, first - 1 };
	return 0;
}

/* Checks the segment header record and starts the segment. */
static int
start_segment(struct wal_scan *s, const char *name, uint64_t seq,
    uint64_t first, uint32_t len, struct dsc_err *err)
{
	const uint8_t *r = s->file.p, *p = r + WAL_REC_HDR;

	if (r[8] != WAL_REC_SEGMENT || len != WAL_SEGMENT_PAYLOAD ||
	    memcmp(p, WAL_MAGIC, 8) != 0)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "bad segment header in '%s/wal/%s' at offset 0", s->dir,
		    name);
	if (get_u32le(p + 8) != WAL_VERSION)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "unsupported wal format version %" PRIu32
		    " in '%s/wal/%s' at offset 12", get_u32le(p + 8), s->dir,
		    name);
	if (get_u64le(p + 16) != seq || get_u64le(p + 24) != first)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "segment header in '%s/wal/%s' at offset 0 does not match "
		    "its name", s->dir, name);
	if (s->n_segs > 0 && first != s->next)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "index gap: '%s/wal/%s' at offset 0 starts at index %"
		    PRIu64 " but the log before it ends at %" PRIu64, s->dir,
		    name, first, s->next - 1);
	if (s->n_segs == 0)
		s->next = first;
	if (add_seg(s, seq, first) != 0)
		return dsc_errorf(err, DSC_ENOMEM,
		    "out of memory loading '%s/wal/%s'", s->dir, name);
	return 0;
}

static int
scan_segment(struct wal_scan *s, const char *name, uint64_t seq,
    uint64_t first, bool last, struct dsc_err *err)
{
	const uint8_t *p = s->file.p;
	uint64_t size = s->file.len, off;
	enum rec_status st;
	uint32_t len;
	bool torn;
	int rv;

	st = parse(p, size, &len);
	if (st == REC_END && first_nonzero(p, 0, size) < size)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "missing segment header in '%s/wal/%s' at offset 0 "
		    "(followed by data at offset %" PRIu64 ")", s->dir, name,
		    first_nonzero(p, 0, size));
	if (st == REC_END && !last)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "empty sealed segment '%s/wal/%s' at offset 0", s->dir,
		    name);
	if (st != REC_OK) {
		/* Not even a header: a segment that never held anything. */
		rv = 0;
		if (st != REC_END)
			rv = judge(s, name, last, st, 0, len, &torn, err);
		if (rv == 0)
			memcpy(s->drop_name, name, WAL_NAME_LEN + 1);
		return rv;
	}
	if ((rv = start_segment(s, name, seq, first, len, err)) != 0)
		return rv;
	for (off = WAL_REC_HDR + (uint64_t)len;; off += WAL_REC_HDR + len) {
		st = parse(p + off, size - off, &len);
		if (st != REC_OK) {
			rv = judge(s, name, last, st, off, len, &torn, err);
			if (rv != 0)
				return rv;
			s->torn = torn;
			break;
		}
		if ((rv = replay(s, p + off, len, name, off, err)) != 0)
			return rv;
	}
	s->end = off;
	s->size = size;
	return 0;
}

/* Reads wal/@name whole into s->file. */
static int
read_segment(struct wal_scan *s, int walfd, const char *name,
    struct dsc_err *err)
{
	struct stat st;
	int fd, rv = 0;

	fd = openat(walfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to open '%s/wal/%s': %s", s->dir, name,
		    strerror(errno));
	if (fstat(fd, &st) != 0) {
		rv = dsc_errorf(err, DSC_EIO, "unable to stat '%s/wal/%s': %s",
		    s->dir, name, strerror(errno));
	} else if ((uint64_t)st.st_size > WAL_MAX_FILE) {
		rv = dsc_errorf(err, DSC_ECORRUPT,
		    "segment '%s/wal/%s' is %jd bytes, over the limit", s->dir,
		    name, (intmax_t)st.st_size);
	} else {
		buf_clear(&s->file);
		if (buf_grow(&s->file, (size_t)st.st_size) != 0)
			rv = dsc_errorf(err, DSC_ENOMEM,
			    "out of memory reading '%s/wal/%s'", s->dir, name);
		else if (wal_io_pread_all(fd, s->file.p, (size_t)st.st_size,
			     0) != 0)
			rv = dsc_errorf(err, DSC_EIO,
			    "unable to read '%s/wal/%s': %s", s->dir, name,
			    errno != 0 ? strerror(errno) : "file shrank");
		else
			s->file.len = (size_t)st.st_size;
		if (s->file.p != NULL)
			s->file.p[s->file.len] = 0;
	}
	close(fd);
	return rv;
}

/* ---- the directory ----------------------------------------------------- */

struct seg_name {
	uint64_t seq, first;
};

static int
cmp_seq(const void *a, const void *b)
{
	const struct seg_name *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->first < y->first ? -1 : x->first > y->first;
}

static int
add_orphan(struct wal_scan *s, const char *name)
{
	char **v, *copy = dsc_strdup(name);

	if (copy == NULL)
		return DSC_ENOMEM;
	v = dsc_reallocarray(s->orphans, s->n_orphans + 1, sizeof(*v));
	if (v == NULL) {
		dsc_free(copy);
		return DSC_ENOMEM;
	}
	v[s->n_orphans++] = copy;
	s->orphans = v;
	return 0;
}

static bool
is_tmp(const char *name)
{
	size_t n = strlen(name);

	return n > 4 && strcmp(name + n - 4, ".tmp") == 0;
}

static int
list_segments(struct wal_scan *s, int walfd, struct seg_name **out,
    size_t *nout, struct dsc_err *err)
{
	struct seg_name *v = NULL, *p;
	struct dirent *de;
	size_t n = 0;
	int dfd, rv = 0;
	DIR *d;

	dfd = openat(walfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		rv = dsc_errorf(err, wal_errno_code(errno),
		    "unable to list '%s/wal': %s", s->dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rv;
	}
	while (rv == 0 && (errno = 0, de = readdir(d)) != NULL) {
		struct seg_name sn;

		if (wal_seg_parse_name(de->d_name, &sn.seq, &sn.first)) {
			p = dsc_reallocarray(v, n + 1, sizeof(*v));
			if (p == NULL) {
				rv = DSC_ENOMEM;
				break;
			}
			v = p;
			v[n++] = sn;
		} else if (is_tmp(de->d_name)) {
			rv = add_orphan(s, de->d_name);
		}
	}
	if (rv == 0 && errno != 0)
		rv = dsc_errorf(err, DSC_EIO, "unable to list '%s/wal': %s",
		    s->dir, strerror(errno));
	closedir(d);
	if (rv == DSC_ENOMEM)
		dsc_errorf(err, rv, "out of memory listing '%s/wal'", s->dir);
	if (rv != 0) {
		dsc_free(v);
		return rv;
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_seq);
	*out = v;
	*nout = n;
	return 0;
}

/* Sequence numbers must run without a gap or a repeat. */
static int
check_sequence(struct wal_scan *s, const struct seg_name *v, size_t n,
    struct dsc_err *err)
{
	char a[WAL_NAME_LEN + 1], b[WAL_NAME_LEN + 1];

	for (size_t i = 1; i < n; i++) {
		if (v[i].seq == v[i - 1].seq + 1)
			continue;
		wal_seg_name(a, v[i - 1].seq, v[i - 1].first);
		wal_seg_name(b, v[i].seq, v[i].first);
		if (v[i].seq == v[i - 1].seq)
			return dsc_errorf(err, DSC_ECORRUPT,
			    "two segments with sequence %" PRIu64
			    ": '%s/wal/%s' and '%s'", v[i].seq, s->dir, a, b);
		return dsc_errorf(err, DSC_ECORRUPT,
		    "missing segment: '%s/wal/%s' follows '%s' (sequence %"
		    PRIu64 " not found)", s->dir, b, a, v[i - 1].seq + 1);
	}
	return 0;
}

int
wal_scan_read(struct wal_scan *s, int walfd, struct dsc_err *err)
{
	char name[WAL_NAME_LEN + 1];
	struct seg_name *v = NULL;
	size_t n = 0;
	int rv;

	rv = list_segments(s, walfd, &v, &n, err);
	if (rv == 0)
		rv = check_sequence(s, v, n, err);
	if (n > 0) {
		s->any_seq = true;
		s->max_seq = v[n - 1].seq;
	}
	for (size_t i = 0; rv == 0 && i < n; i++) {
		wal_seg_name(name, v[i].seq, v[i].first);
		rv = read_segment(s, walfd, name, err);
		if (rv == 0)
			rv = scan_segment(s, name, v[i].seq, v[i].first,
			    i + 1 == n, err);
	}
	dsc_free(v);
	buf_release(&s->file);
	if (rv != 0)
		return rv;
	if (s->drop_name[0] != '\0')
		snprintf(s->note, sizeof(s->note),
		    "removed empty last segment '%s/wal/%s'", s->dir,
		    s->drop_name);
	else if (s->torn)
		snprintf(s->note, sizeof(s->note),
		    "truncated torn tail of '%s/wal/%s' at offset %" PRIu64
		    " (%" PRIu64 " bytes zeroed)", s->dir,
		    (wal_seg_name(name, s->segs[s->n_segs - 1].seq,
			 s->segs[s->n_segs - 1].first), name),
		    s->torn_off, s->torn_end - s->torn_off);
	return 0;
}

/* ---- fitting the log to the snapshot ----------------------------------- */

int
wal_scan_fit(struct wal_scan *s, uint64_t snap_index, uint64_t snap_term,
    bool *need_reset, struct dsc_err *err)
{
	uint64_t first, last, last_term;

	*need_reset = false;
	if (s->n_segs == 0) {
		if (snap_index > 0)
			return dsc_errorf(err, DSC_ECORRUPT,
			    "no log segments in '%s/wal' but a snapshot at "
			    "index %" PRIu64 ": the hard state is lost", s->dir,
			    snap_index);
		s->next = 1;
		return 0;
	}
	first = s->n > 0 ? s->ents[0].index : s->next;
	last = s->next - 1;
	if (first > snap_index + 1)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "entries %" PRIu64 "..%" PRIu64 " missing between %s "
		    "and the log in '%s/wal'", snap_index + 1, first - 1,
		    snap_index > 0 ? "the snapshot" : "the start", s->dir);
	if (snap_index > 0 && first <= snap_index && snap_index <= last &&
	    s->n > 0 &&
	    s->ents[snap_index - first].term != snap_term) {
		/* The log conflicts with the snapshot: a leader's snapshot
		 * replaced it and we crashed before its RESET record. */
		drop_from(s, 0);
		*need_reset = true;
	} else if (snap_index > 0 && last < snap_index) {
		*need_reset = true;
	}
	/* Entries the snapshot covers are not returned. */
	if (s->n > 0 && s->ents[0].index <= snap_index) {
		size_t k = (size_t)(snap_index - s->ents[0].index + 1);

		if (k > s->n)
			k = s->n;
		free_entries(s->ents, k);
		memmove(s->ents, s->ents + k, (s->n - k) * sizeof(*s->ents));
		s->n -= k;
	}
	/* Commit is optional to persist (raft.h) and may have been saved
	 * ahead of entries that a crash then tore off. */
	last = s->n > 0 ? s->ents[s->n - 1].index : snap_index;
	if (s->hard.commit > last)
		s->hard.commit = last;
	/* A leader's snapshot is saved before the batch holding the term it
	 * came with; a crash between leaves an older term on disk. A vote is
	 * always saved before it is sent, so none was cast in the newer
	 * term: take it with no vote (raft_new refuses a term below the
	 * log's). */
	last_term = s->n > 0 ? s->ents[s->n - 1].term : snap_term;
	if (last_term > s->hard.term) {
		s->hard.term = last_term;
		s->hard.vote = RAFT_NONE;
	}
	return 0;
}

void
wal_scan_release(struct wal_scan *s)
{
	free_entries(s->ents, s->n);
	dsc_free(s->ents);
	dsc_free(s->segs);
	for (size_t i = 0; i < s->n_orphans; i++)
		dsc_free(s->orphans[i]);
	dsc_free(s->orphans);
	buf_release(&s->file);
	s->ents = NULL;
	s->segs = NULL;
	s->orphans = NULL;
	s->n = s->cap = s->n_segs = s->cap_segs = s->n_orphans = 0;
}

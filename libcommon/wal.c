/*
 * wal.c - the write-ahead log: group-commit saves, rolls, release.
 *
 * A save builds every record of one ready in one buffer and writes it with
 * one pwrite(2) (more only when it spills into a new segment), then
 * fdatasyncs once. What the wal remembers about the disk (append offset,
 * next index, hard state, what each segment covers) changes only after the
 * bytes it describes were written, so after any error the memory matches the
 * files and a later save continues cleanly.
 *
 * Rolling: the next segment is created ahead as wal/next.tmp and
 * preallocated (wal_prepare); a roll syncs the full segment, writes the new
 * one's header and current hard state, syncs it, renames it into place and
 * syncs the directory. So a segment that has a name always has a durable
 * header, and every sealed segment is durable in full: only the last one can
 * have a torn tail.
 *
 * Failure model: a failed fsync leaves the page cache in an unknown state
 * (PostgreSQL's "fsyncgate", 2018), so the wal stops for good and answers
 * DSC_EIO from then on. ENOSPC is different: the bytes a failed write left
 * are zeroed (or cut off), memory still matches the disk, and the caller
 * may try again once there is space.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "snap.h"
#include "wal_internal.h"

/* ---- system calls ------------------------------------------------------ */

int
wal_errno_code(int e)
{
	if (e == ENOSPC)
		return DSC_ENOSPC;
#ifdef EDQUOT
	if (e == EDQUOT)
		return DSC_ENOSPC;
#endif
	if (e == ENOMEM)
		return DSC_ENOMEM;
	return DSC_EIO;
}

int
wal_io_pwrite_all(const struct wal_io *io, int fd, const void *buf, size_t n,
    uint64_t off, size_t *done)
{
	const uint8_t *p = buf;
	ssize_t k;

	*done = 0;
	while (*done < n) {
		if (io != NULL && io->pwrite != NULL)
			k = io->pwrite(io->ctx, fd, p + *done, n - *done,
			    (off_t)(off + *done));
		else
			k = pwrite(fd, p + *done, n - *done,
			    (off_t)(off + *done));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = ENOSPC;
			return -1;
		}
		*done += (size_t)k;
	}
	return 0;
}

int
wal_io_sync(const struct wal_io *io, int fd, bool dir)
{
	if (io != NULL && io->sync != NULL)
		return io->sync(io->ctx, fd, dir);
	return dir ? fsync(fd) : fdatasync(fd);
}

int
wal_io_fallocate(const struct wal_io *io, int fd, uint64_t len)
{
	if (io != NULL && io->fallocate != NULL)
		return io->fallocate(io->ctx, fd, (off_t)len);
	return posix_fallocate(fd, 0, (off_t)len);
}

int
wal_io_pread_all(int fd, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	ssize_t k;

	while (n > 0) {
		k = pread(fd, p, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (k == 0)
				errno = 0;
			return -1;
		}
		p += k;
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}

/* ---- failure ----------------------------------------------------------- */

static int fail(struct wal *w, struct dsc_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Puts the wal in the failed state for good; returns DSC_EIO. */
static int
fail(struct wal *w, struct dsc_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->failed_msg, sizeof(w->failed_msg), fmt, ap);
	va_end(ap);
	w->failed = true;
	return dsc_errorf(err, DSC_EIO, "%s", w->failed_msg);
}

static int
refuse(const struct wal *w, struct dsc_err *err)
{
	return dsc_errorf(err, DSC_EIO, "wal stopped after an earlier error: %s",
	    w->failed_msg);
}

static void
seg_name_of(const struct wal_seg *s, char out[WAL_NAME_LEN + 1])
{
	wal_seg_name(out, s->seq, s->first);
}

/* ---- writing records --------------------------------------------------- */

/* What a record just written means for the wal's view of the disk. */
static void
apply(struct wal *w, const uint8_t *r)
{
	const uint8_t *p = r + WAL_REC_HDR;
	struct wal_seg *seg = &w->segs[w->n_segs - 1];
	uint64_t index;

	switch (r[8]) {
	case WAL_REC_HARD:
		w->hard.term = get_u64le(p);
		w->hard.vote = get_u64le(p + 8);
		w->hard.commit = get_u64le(p + 16);
		break;
	case WAL_REC_ENTRY:
		index = get_u64le(p + 8);
		w->next = index + 1;
		if (index > seg->last)
			seg->last = index;
		break;
	case WAL_REC_RESET:
		index = get_u64le(p);
		w->next = index + 1;
		for (size_t i = 0; i + 1 < w->n_segs; i++)
			w->segs[i].last = 0;
		seg->last = index;
		if (index == w->reset_index)
			w->need_reset = false;
		break;
	}
}

/* Zeroes [@from, @to) of the open segment, or cuts the file at @from. */
int
wal_clear_tail(struct wal *w, uint64_t from, uint64_t to)
{
	static const uint8_t zeros[4096];
	uint64_t end = to < w->size ? to : w->size, off = from;
	size_t n, done;

	if (to > w->size &&
	    ftruncate(w->fd, (off_t)(from > w->size ? from : w->size)) != 0)
		return -1;
	while (off < end) {
		n = end - off < sizeof(zeros) ? (size_t)(end - off) :
		    sizeof(zeros);
		if (wal_io_pwrite_all(&w->io, w->fd, zeros, n, off, &done) != 0)
			break;
		off += n;
	}
	if (off >= end)
		return 0;
	/* No room even for zeros over our own bytes: cut the file. */
	if (ftruncate(w->fd, (off_t)from) != 0)
		return -1;
	w->size = from;
	return 0;
}

static int
write_failed(struct wal *w, size_t done, int e, struct dsc_err *err)
{
	char name[WAL_NAME_LEN + 1];

	seg_name_of(&w->segs[w->n_segs - 1], name);
	if (wal_clear_tail(w, w->off, w->off + done) != 0)
		return fail(w, err,
		    "unable to clear a failed write in '%s/wal/%s' at offset %"
		    PRIu64 ": %s", w->dir, name, w->off, strerror(errno));
	if (wal_errno_code(e) != DSC_ENOSPC)
		return fail(w, err, "unable to write '%s/wal/%s': %s", w->dir,
		    name, strerror(e));
	return dsc_errorf(err, DSC_ENOSPC, "unable to write '%s/wal/%s': %s",
	    w->dir, name, strerror(e));
}

int
wal_prepare(struct wal *w, struct dsc_err *err)
{
	int fd, e;

	if (w->failed)
		return refuse(w, err);
	if (w->next_fd >= 0)
		return 0;
	fd = openat(w->walfd, WAL_NEXT_NAME,
	    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to create '%s/wal/%s': %s", w->dir, WAL_NEXT_NAME,
		    strerror(errno));
	e = wal_io_fallocate(&w->io, fd, w->seg_size);
	if (e != 0) {
		close(fd);
		unlinkat(w->walfd, WAL_NEXT_NAME, 0);
		return dsc_errorf(err, e == ENOSPC ? DSC_ENOSPC : DSC_EIO,
		    "unable to allocate %zu bytes for '%s/wal/%s': %s",
		    w->seg_size, w->dir, WAL_NEXT_NAME, strerror(e));
	}
	w->next_fd = fd;
	w->next_size = w->seg_size;
	return 0;
}

static void
discard_next(struct wal *w)
{
	if (w->next_fd < 0)
		return;
	close(w->next_fd);
	w->next_fd = -1;
	unlinkat(w->walfd, WAL_NEXT_NAME, 0);
}

int
wal_reserve_seg(struct wal *w)
{
	struct wal_seg *v;
	size_t cap;

	if (w->n_segs < w->cap_segs)
		return 0;
	cap = w->cap_segs < 8 ? 8 : w->cap_segs * 2;
	v = dsc_reallocarray(w->segs, cap, sizeof(*v));
	if (v == NULL)
		return DSC_ENOMEM;
	w->segs = v;
	w->cap_segs = cap;
	return 0;
}

/* Seals the open segment (if any) and opens the next one. */
int
wal_roll(struct wal *w, struct dsc_err *err)
{
	uint8_t start[WAL_SEGMENT_START];
	char name[WAL_NAME_LEN + 1];
	uint64_t seq;
	size_t n, done;
	int rv, e;

	seq = w->n_segs > 0 ? w->segs[w->n_segs - 1].seq + 1 : w->first_seq;
	if (wal_reserve_seg(w) != 0)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory rolling '%s'",
		    w->dir);
	/* Every sealed segment is durable in full: only the last one may
	 * end in a torn write. */
	if (w->fd >= 0 && w->durable < w->off) {
		if (wal_io_sync(&w->io, w->fd, false) != 0)
			return fail(w, err, "unable to sync '%s/wal': %s",
			    w->dir, strerror(errno));
		w->n_syncs++;
		w->durable = w->off;
	}
	if ((rv = wal_prepare(w, err)) != 0)
		return rv;
	n = wal_enc_segment(start, seq, w->next);
	n += wal_enc_hard(start + n, &w->hard);
	wal_seg_name(name, seq, w->next);
	if (wal_io_pwrite_all(&w->io, w->next_fd, start, n, 0, &done) != 0) {
		e = errno;
		discard_next(w);
		if (wal_errno_code(e) == DSC_ENOSPC)
			return dsc_errorf(err, DSC_ENOSPC,
			    "unable to start '%s/wal/%s': %s", w->dir, name,
			    strerror(e));
		return fail(w, err, "unable to start '%s/wal/%s': %s", w->dir,
		    name, strerror(e));
	}
	if (wal_io_sync(&w->io, w->next_fd, false) != 0)
		return fail(w, err, "unable to sync '%s/wal/%s': %s", w->dir,
		    WAL_NEXT_NAME, strerror(errno));
	w->n_syncs++;
	if (renameat(w->walfd, WAL_NEXT_NAME, w->walfd, name) != 0) {
		e = errno;
		if (wal_errno_code(e) == DSC_ENOSPC)
			return dsc_errorf(err, DSC_ENOSPC,
			    "unable to rename '%s/wal/%s': %s", w->dir,
			    WAL_NEXT_NAME, strerror(e));
		return fail(w, err, "unable to rename '%s/wal/%s': %s", w->dir,
		    WAL_NEXT_NAME, strerror(e));
	}
	if (wal_io_sync(&w->io, w->walfd, true) != 0)
		return fail(w, err, "unable to sync '%s/wal': %s", w->dir,
		    strerror(errno));
	w->n_syncs++;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = w->next_fd;
	w->next_fd = -1;
	w->off = w->durable = n;
	w->size = w->next_size;
	w->segs[w->n_segs++] = (struct wal_seg){ seq, w->next, w->next - 1 };
	return 0;
}

/*
 * Writes the records in w->buf: as many as fit in the open segment with one
 * pwrite, rolling when the next does not fit (a record larger than a whole
 * segment gets a fresh segment to itself), then syncs once if @sync.
 */
static int
append(struct wal *w, bool sync, struct dsc_err *err)
{
	size_t i = 0, j, start, len, done;
	uint64_t room;
	int rv;

	while (i < w->n_recs) {
		start = i > 0 ? w->ends[i - 1] : 0;
		room = w->size > w->off ? w->size - w->off : 0;
		for (j = i; j < w->n_recs && w->ends[j] - start <= room; j++)
			;
		if (j == i) {
			if (w->off > WAL_SEGMENT_START) {
				if ((rv = wal_roll(w, err)) != 0)
					return rv;
				continue;
			}
			j = i + 1;
		}
		len = w->ends[j - 1] - start;
		if (wal_io_pwrite_all(&w->io, w->fd, w->buf.p + start, len,
			w->off, &done) != 0)
			return write_failed(w, done, errno, err);
		w->n_writes++;
		for (size_t k = i; k < j; k++)
			apply(w, w->buf.p + (k > 0 ? w->ends[k - 1] : 0));
		w->off += len;
		if (w->off > w->size)
			w->size = w->off;
		i = j;
	}
	if (sync && w->durable < w->off) {
		if (wal_io_sync(&w->io, w->fd, false) != 0)
			return fail(w, err, "unable to sync '%s/wal': %s",
			    w->dir, strerror(errno));
		w->n_syncs++;
		w->durable = w->off;
	}
	return 0;
}

/* ---- saving ------------------------------------------------------------ */

/* Entries must be well-formed and continue (or replace part of) the log. */
static int
check_entries(const struct wal *w, const struct raft_ready *rd,
    uint64_t floor, uint64_t base, struct dsc_err *err)
{
	const struct raft_entry *e = rd->entries;

	for (size_t i = 0; i < rd->n_entries; i++) {
		if (i == 0 && (e[0].index <= floor || e[0].index > base))
			return dsc_errorf(err, DSC_EINVAL,
			    "entries start at index %" PRIu64 " but '%s' "
			    "takes %" PRIu64 "..%" PRIu64 " next", e[0].index,
			    w->dir, floor + 1, base);
		if (i > 0 && e[i].index != e[i - 1].index + 1)
			return dsc_errorf(err, DSC_EINVAL,
			    "entry %" PRIu64 " follows %" PRIu64, e[i].index,
			    e[i - 1].index);
		if (e[i].type >= RAFT_ENTRY_TYPE_MAX ||
		    e[i].len > RAFT_MAX_ENTRY_SIZE ||
		    (e[i].len > 0 && e[i].data == NULL))
			return dsc_errorf(err, DSC_EINVAL,
			    "malformed entry %" PRIu64, e[i].index);
	}
	return 0;
}

/* Encodes one batch into w->buf and w->ends; DSC_ENOMEM changes nothing
 * the wal relies on. */
static int
build(struct wal *w, bool reset, const struct raft_ready *rd,
    struct dsc_err *err)
{
	size_t total = 0, n = rd->n_entries + 2, k = 0;
	uint8_t *p;

	if (reset)
		total += wal_rec_size(WAL_RESET_PAYLOAD);
	if (rd->hard_changed)
		total += wal_rec_size(WAL_HARD_PAYLOAD);
	for (size_t i = 0; i < rd->n_entries; i++)
		total += wal_rec_size(WAL_ENTRY_HEAD + rd->entries[i].len);
	buf_clear(&w->buf);
	if (buf_grow(&w->buf, total) != 0)
		goto nomem;
	if (n > w->cap_recs) {
		size_t *v = dsc_reallocarray(w->ends, n, sizeof(*v));

		if (v == NULL)
			goto nomem;
		w->ends = v;
		w->cap_recs = n;
	}
	p = w->buf.p;
	if (reset) {
		p += wal_enc_reset(p, w->reset_index, w->reset_term);
		w->ends[k++] = (size_t)(p - w->buf.p);
	}
	if (rd->hard_changed) {
		p += wal_enc_hard(p, &rd->hard);
		w->ends[k++] = (size_t)(p - w->buf.p);
	}
	for (size_t i = 0; i < rd->n_entries; i++) {
		p += wal_enc_entry(p, &rd->entries[i]);
		w->ends[k++] = (size_t)(p - w->buf.p);
	}
	w->buf.len = total;
	w->buf.p[total] = 0;
	w->n_recs = k;
	return 0;
nomem:
	w->n_recs = 0;
	return dsc_errorf(err, DSC_ENOMEM, "out of memory saving to '%s'",
	    w->dir);
}

static int
save_snapshot_file(struct wal *w, const struct raft_snapshot *s,
    struct dsc_err *err)
{
	bool fatal = false;
	int rv;

	if (s->meta.index < w->snap_index)
		return dsc_errorf(err, DSC_EINVAL,
		    "snapshot at index %" PRIu64 " is older than the saved one "
		    "at %" PRIu64, s->meta.index, w->snap_index);
	rv = snap_write(w->snapfd, w->snap_path, &w->io, s, &fatal, err);
	if (fatal) {
		w->failed = true;
		snprintf(w->failed_msg, sizeof(w->failed_msg), "%s",
		    dsc_err_msg(err));
	}
	if (rv != 0)
		return rv;
	w->n_syncs += 2;
	w->snap_index = s->meta.index;
	w->snap_term = s->meta.term;
	return 0;
}

int
wal_save(struct wal *w, const struct raft_ready *rd, struct dsc_err *err)
{
	const struct raft_snapshot *s = rd->snapshot;
	uint64_t floor = 0, base = w->next;
	int rv;

	if (w->failed)
		return refuse(w, err);
	if (s != NULL) {
		if (s->meta.index == 0 || s->meta.index < w->snap_index)
			return dsc_errorf(err, DSC_EINVAL,
			    "snapshot at index %" PRIu64 " is older than the "
			    "saved one at %" PRIu64, s->meta.index,
			    w->snap_index);
		floor = s->meta.index;
	} else if (w->need_reset) {
		floor = w->reset_index;
	}
	if (s != NULL || w->need_reset)
		base = floor + 1;
	if ((rv = check_entries(w, rd, floor, base, err)) != 0)
		return rv;
	/* The snapshot goes first, so a RESET on disk always has its
	 * snapshot file; build first, so ENOMEM cannot come between. */
	if (s != NULL) {
		uint64_t old_index = w->reset_index, old_term = w->reset_term;
		bool old_need = w->need_reset;

		w->reset_index = s->meta.index;
		w->reset_term = s->meta.term;
		w->need_reset = true;
		rv = build(w, true, rd, err);
		if (rv == 0)
			rv = save_snapshot_file(w, s, err);
		if (rv != 0) {
			w->reset_index = old_index;
			w->reset_term = old_term;
			w->need_reset = old_need;
			return rv;
		}
	} else if ((rv = build(w, w->need_reset, rd, err)) != 0) {
		return rv;
	}
	if ((rv = append(w, rd->must_sync || s != NULL, err)) != 0)
		return rv;
	/* The ready is saved: tidying up after it is best effort, and a
	 * failure that stopped the wal shows in the next call. */
	if (s != NULL) {
		snap_prune(w->snapfd, w->snap_path, NULL);
		wal_release(w, s->meta.index + 1, NULL);
	}
	return 0;
}

int
wal_save_snapshot(struct wal *w, const struct raft_snapshot *s,
    struct dsc_err *err)
{
	int rv;

	if (w->failed)
		return refuse(w, err);
	if ((rv = save_snapshot_file(w, s, err)) != 0)
		return rv;
	snap_prune(w->snapfd, w->snap_path, NULL);	/* best effort */
	return 0;
}

int
wal_release(struct wal *w, uint64_t before, struct dsc_err *err)
{
	char name[WAL_NAME_LEN + 1];
	size_t k = 0;
	int rv = 0;

	if (w->failed)
		return refuse(w, err);
	if (before > w->snap_index + 1)
		before = w->snap_index + 1;
	/* Oldest first, the directory synced after each, so a crash can
	 * never leave a hole in the sequence. */
	while (k + 1 < w->n_segs && w->segs[k].last < before) {
		seg_name_of(&w->segs[k], name);
		if (unlinkat(w->walfd, name, 0) != 0 && errno != ENOENT) {
			rv = dsc_errorf(err, DSC_EIO,
			    "unable to remove '%s/wal/%s': %s", w->dir, name,
			    strerror(errno));
			break;
		}
		k++;
		if (wal_io_sync(&w->io, w->walfd, true) != 0) {
			rv = fail(w, err, "unable to sync '%s/wal': %s", w->dir,
			    strerror(errno));
			break;
		}
		w->n_syncs++;
	}
	memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof(*w->segs));
	w->n_segs -= k;
	return rv;
}

void
wal_stat(const struct wal *w, struct wal_stat *st)
{
	memset(st, 0, sizeof(*st));
	if (w->n_segs > 0) {
		st->seq = w->segs[w->n_segs - 1].seq;
		seg_name_of(&w->segs[w->n_segs - 1], st->segment);
	}
	st->offset = w->off;
	st->durable = w->durable;
	st->n_segments = w->n_segs;
	st->next_index = w->need_reset ? w->reset_index + 1 : w->next;
	st->snapshot_index = w->snap_index;
	st->n_writes = w->n_writes;
	st->n_syncs = w->n_syncs;
	st->failed = w->failed;
}

/*
 * wal_open.c - opening a data dir: layout, lock, load, repair.
 *
 * Everything is read and checked first (snapshot, then every segment, then
 * the two fitted together); only when all of it holds does anything on disk
 * change: orphan temporary files go, an empty last segment is removed, a
 * torn tail is zeroed and synced. A damaged data dir is refused exactly as
 * it was found, so an operator (or walcheck) sees what the crash left.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE		/* flock(2) */
#endif
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mem.h"
#include "snap.h"
#include "wal_internal.h"

/* fsyncs the directory holding w->dir. */
static int
sync_parent(const struct wal *w, struct dsc_err *err)
{
	char *copy = dsc_strdup(w->dir), *slash;
	int fd, rv = 0;

	if (copy == NULL)
		return dsc_errorf(err, DSC_ENOMEM,
		    "out of memory opening '%s'", w->dir);
	for (slash = copy + strlen(copy); slash > copy && slash[-1] == '/';)
		*--slash = '\0';
	slash = strrchr(copy, '/');
	if (slash == NULL)
		strcpy(copy, ".");
	else if (slash == copy)
		copy[1] = '\0';
	else
		*slash = '\0';
	fd = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || wal_io_sync(&w->io, fd, true) != 0)
		rv = dsc_errorf(err, DSC_EIO, "unable to sync '%s': %s", copy,
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	dsc_free(copy);
	return rv;
}

static int
sub_dir(struct wal *w, const char *name, int *fd, bool *made,
    struct dsc_err *err)
{
	if (mkdirat(w->dirfd, name, 0700) == 0)
		*made = true;
	else if (errno != EEXIST)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to create '%s/%s': %s", w->dir, name,
		    strerror(errno));
	*fd = openat(w->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to open '%s/%s': %s", w->dir, name,
		    strerror(errno));
	return 0;
}

/* Creates what is missing of the layout, opens and locks it. */
static int
open_dirs(struct wal *w, struct dsc_err *err)
{
	bool made_root = false, made = false;
	int rv;

	if (mkdir(w->dir, 0700) == 0)
		made_root = true;
	else if (errno != EEXIST)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to create '%s': %s", w->dir, strerror(errno));
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to open '%s': %s", w->dir, strerror(errno));
	if (flock(w->dirfd, LOCK_EX | LOCK_NB) != 0)
		return dsc_errorf(err,
		    errno == EWOULDBLOCK ? DSC_EBUSY : DSC_EIO,
		    "unable to lock '%s': %s", w->dir,
		    errno == EWOULDBLOCK ? "in use by another process" :
		    strerror(errno));
	if ((rv = sub_dir(w, "wal", &w->walfd, &made, err)) != 0 ||
	    (rv = sub_dir(w, "snap", &w->snapfd, &made, err)) != 0)
		return rv;
	if ((made || made_root) && wal_io_sync(&w->io, w->dirfd, true) != 0)
		return dsc_errorf(err, DSC_EIO, "unable to sync '%s': %s",
		    w->dir, strerror(errno));
	if (made_root)
		return sync_parent(w, err);
	return 0;
}

/* Loads the newest snapshot, if any, and lists snap/'s orphans. */
static int
load_snapshot(struct wal *w, struct raft_snapshot *s, char ***orphans,
    size_t *n_orphans, struct dsc_err *err)
{
	struct snap_id *ids = NULL;
	size_t n = 0;
	int rv;

	rv = snap_list(w->snapfd, w->snap_path, &ids, &n, orphans, n_orphans,
	    err);
	if (rv == 0 && n > 0)
		rv = snap_read(w->snapfd, w->snap_path, ids[n - 1], s, err);
	dsc_free(ids);
	return rv;
}

/* Removes a last segment that never held a record. */
static int
drop_empty(struct wal *w, const struct wal_scan *sc, struct dsc_err *err)
{
	if (sc->drop_name[0] == '\0')
		return 0;
	if ((unlinkat(w->walfd, sc->drop_name, 0) != 0 && errno != ENOENT) ||
	    wal_io_sync(&w->io, w->walfd, true) != 0)
		return dsc_errorf(err, DSC_EIO,
		    "unable to remove '%s/wal/%s': %s", w->dir, sc->drop_name,
		    strerror(errno));
	return 0;
}

/* Zeroes the torn tail of the (now open) last segment and syncs it. */
static int
zero_torn(struct wal *w, const struct wal_scan *sc, struct dsc_err *err)
{
	char name[WAL_NAME_LEN + 1];

	if (!sc->torn)
		return 0;
	wal_seg_name(name, w->segs[w->n_segs - 1].seq,
	    w->segs[w->n_segs - 1].first);
	if (wal_clear_tail(w, sc->torn_off, sc->torn_end) != 0 ||
	    wal_io_sync(&w->io, w->fd, false) != 0)
		return dsc_errorf(err, DSC_EIO,
		    "unable to truncate torn tail of '%s/wal/%s': %s", w->dir,
		    name, strerror(errno));
	w->n_syncs++;
	return 0;
}

static void
remove_orphans(int fd, char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		unlinkat(fd, names[i], 0);
}

/* Opens the last segment for appending, or creates the first one. */
static int
open_last(struct wal *w, const struct wal_scan *sc, struct dsc_err *err)
{
	char name[WAL_NAME_LEN + 1];

	if (w->n_segs == 0) {
		w->first_seq = sc->any_seq ? sc->max_seq + 1 : 0;
		if (sc->drop_name[0] != '\0')
			w->first_seq = sc->max_seq;
		return wal_roll(w, err);
	}
	wal_seg_name(name, w->segs[w->n_segs - 1].seq,
	    w->segs[w->n_segs - 1].first);
	w->fd = openat(w->walfd, name, O_RDWR | O_CLOEXEC);
	if (w->fd < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to open '%s/wal/%s': %s", w->dir, name,
		    strerror(errno));
	w->off = sc->end;
	w->size = sc->size;
	/* What a killed process left in the page cache is ours now. */
	if (wal_io_sync(&w->io, w->fd, false) != 0)
		return dsc_errorf(err, DSC_EIO, "unable to sync '%s/wal/%s': %s",
		    w->dir, name, strerror(errno));
	w->durable = w->off;
	return 0;
}

static void
wal_free(struct wal *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->next_fd >= 0)
		close(w->next_fd);
	if (w->walfd >= 0)
		close(w->walfd);
	if (w->snapfd >= 0)
		close(w->snapfd);
	if (w->dirfd >= 0)
		close(w->dirfd);	/* drops the flock */
	dsc_free(w->dir);
	dsc_free(w->snap_path);
	dsc_free(w->segs);
	dsc_free(w->ends);
	buf_release(&w->buf);
	dsc_free(w);
}

static struct wal *
wal_new(const char *dir, const struct wal_options *o)
{
	struct wal *w = dsc_calloc(1, sizeof(*w));
	struct buf path = BUF_INIT;

	if (w == NULL)
		return NULL;
	w->dirfd = w->walfd = w->snapfd = w->fd = w->next_fd = -1;
	w->seg_size = o != NULL && o->segment_size > 0 ? o->segment_size :
	    WAL_SEGMENT_SIZE;
	if (o != NULL && o->io != NULL)
		w->io = *o->io;
	w->dir = dsc_strdup(dir);
	if (w->dir == NULL || buf_addf(&path, "%s/snap", dir) != 0) {
		wal_free(w);
		return NULL;
	}
	w->snap_path = (char *)buf_detach(&path, NULL);
	return w;
}

/* Hands what was loaded to @ld. */
static void
fill_loaded(struct wal_loaded *ld, struct wal_scan *sc,
    struct raft_snapshot *s)
{
	ld->hard = sc->hard;
	ld->snapshot = *s;
	memset(s, 0, sizeof(*s));
	ld->entries = sc->ents;
	ld->n_entries = sc->n;
	sc->ents = NULL;
	sc->n = sc->cap = 0;
	snprintf(ld->repair, sizeof(ld->repair), "%s", sc->note);
}

int
wal_open(const char *dir, const struct wal_options *o, struct wal **wp,
    struct wal_loaded *ld, struct dsc_err *err)
{
	struct wal_scan sc = { 0 };
	struct raft_snapshot snap = { 0 };
	char **sorphans = NULL;
	size_t n_sorphans = 0;
	bool need_reset = false;
	struct wal *w;
	int rv;

	memset(ld, 0, sizeof(*ld));
	*wp = NULL;
	if (o != NULL && o->segment_size > 0 &&
	    o->segment_size < WAL_MIN_SEGMENT_SIZE)
		return dsc_errorf(err, DSC_EINVAL,
		    "segment size %zu is below the minimum %zu",
		    o->segment_size, WAL_MIN_SEGMENT_SIZE);
	if ((w = wal_new(dir, o)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory opening '%s'",
		    dir);
	sc.dir = w->dir;
	/* Read and check everything before changing anything. */
	if ((rv = open_dirs(w, err)) != 0 ||
	    (rv = load_snapshot(w, &snap, &sorphans, &n_sorphans, err)) != 0 ||
	    (rv = wal_scan_read(&sc, w->walfd, err)) != 0 ||
	    (rv = wal_scan_fit(&sc, snap.meta.index, snap.meta.term,
		 &need_reset, err)) != 0)
		goto out;
	w->segs = sc.segs;
	w->n_segs = sc.n_segs;
	w->cap_segs = sc.cap_segs;
	sc.segs = NULL;
	sc.n_segs = sc.cap_segs = 0;
	if ((rv = wal_reserve_seg(w)) != 0)
		goto out;
	w->next = sc.next;
	w->hard = sc.hard;
	w->snap_index = w->reset_index = snap.meta.index;
	w->snap_term = w->reset_term = snap.meta.term;
	w->need_reset = need_reset;
	/* The load succeeded: now tidy and repair. */
	remove_orphans(w->walfd, sc.orphans, sc.n_orphans);
	remove_orphans(w->snapfd, sorphans, n_sorphans);
	if ((rv = drop_empty(w, &sc, err)) != 0 ||
	    (rv = open_last(w, &sc, err)) != 0 ||
	    (rv = zero_torn(w, &sc, err)) != 0)
		goto out;
	fill_loaded(ld, &sc, &snap);
	*wp = w;
	w = NULL;
out:
	if (rv == DSC_ENOMEM && err != NULL && err->code != DSC_ENOMEM)
		dsc_errorf(err, rv, "out of memory opening '%s'", dir);
	for (size_t i = 0; i < n_sorphans; i++)
		dsc_free(sorphans[i]);
	dsc_free(sorphans);
	dsc_free((void *)snap.data);
	wal_scan_release(&sc);
	wal_free(w);
	return rv;
}

/* Opens @dir's layout read-only, creating nothing. */
static int
open_existing(struct wal *w, struct dsc_err *err)
{
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd >= 0)
		w->walfd = openat(w->dirfd, "wal",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->walfd >= 0)
		w->snapfd = openat(w->dirfd, "snap",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->snapfd >= 0)
		return 0;
	if (errno == ENOENT)
		return dsc_errorf(err, DSC_ENOTFOUND,
		    "no data dir at '%s' (wal/ and snap/ needed)", w->dir);
	return dsc_errorf(err, DSC_EIO, "unable to open '%s': %s", w->dir,
	    strerror(errno));
}

int
wal_check(const char *dir, struct wal_loaded *ld, struct wal_stat *st,
    struct dsc_err *err)
{
	struct wal_scan sc = { 0 };
	struct raft_snapshot snap = { 0 };
	bool need_reset = false;
	struct wal *w;
	int rv;

	memset(ld, 0, sizeof(*ld));
	if (st != NULL)
		memset(st, 0, sizeof(*st));
	if ((w = wal_new(dir, NULL)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory opening '%s'",
		    dir);
	sc.dir = w->dir;
	if ((rv = open_existing(w, err)) != 0 ||
	    (rv = load_snapshot(w, &snap, NULL, NULL, err)) != 0 ||
	    (rv = wal_scan_read(&sc, w->walfd, err)) != 0 ||
	    (rv = wal_scan_fit(&sc, snap.meta.index, snap.meta.term,
		 &need_reset, err)) != 0)
		goto out;
	if (st != NULL && sc.n_segs > 0) {
		const struct wal_seg *last = &sc.segs[sc.n_segs - 1];

		st->seq = last->seq;
		wal_seg_name(st->segment, last->seq, last->first);
		st->offset = st->durable = sc.end;
	}
	if (st != NULL) {
		st->n_segments = sc.n_segs;
		st->next_index = need_reset ? snap.meta.index + 1 : sc.next;
		st->snapshot_index = snap.meta.index;
	}
	fill_loaded(ld, &sc, &snap);
out:
	dsc_free((void *)snap.data);
	wal_scan_release(&sc);
	wal_free(w);
	return rv;
}

void
wal_loaded_release(struct wal_loaded *ld)
{
	for (size_t i = 0; i < ld->n_entries; i++)
		dsc_free(ld->entries[i].data);
	dsc_free(ld->entries);
	dsc_free((void *)ld->snapshot.data);
	memset(ld, 0, sizeof(*ld));
}

void
wal_close(struct wal *w)
{
	wal_free(w);
}


/*
 * wal.h - the server's durable storage: Raft log, hard state and snapshots.
 *
 * A data directory holds
 *
 *	wal/SSSSSSSSSSSSSSSS-IIIIIIIIIIIIIIII.wal   segments: sequence, first index
 *	wal/next.tmp                                 the next segment, preallocated
 *	snap/snap-IIIIIIIIIIIIIIII-TTTTTTTTTTTTTTTT.snap   snapshots: index, term
 *
 * (16 hex digits each). Segments are preallocated files of CRC32C-framed
 * records, written append-only: entries, hard state, and "log reset" markers
 * all go to the open segment, so one fdatasync per ready covers them all
 * (group commit). A follower replacing a suffix just appends entries with
 * lower indexes; on load, an entry at index i drops everything at or above i
 * loaded before it (etcd's WAL rule). Each new segment starts with a header
 * record and the current hard state, so releasing old segments never loses
 * the hard state. Formats are described in wal_internal.h and snap.h.
 *
 * Driving it (see raft.h):
 *
 *	struct wal_loaded ld;
 *	if (wal_open(dir, NULL, &w, &ld, &err) != 0)
 *		exit with dsc_exit_class(err.code)	(DSC_ECORRUPT: 4)
 *	if (ld.repair[0] != '\0')
 *		log_warn("%s", ld.repair);
 *	st.hard = ld.hard;
 *	st.snapshot = ld.snapshot.meta.index > 0 ? &ld.snapshot : NULL;
 *	st.entries = ld.entries; st.n_entries = ld.n_entries;
 *	restore the state machine from ld.snapshot;
 *	st.applied = ld.snapshot.meta.index;
 *	r = raft_new(&cfg, &st, &rv);	(copies what it keeps)
 *	wal_loaded_release(&ld);
 *	...
 *	while (raft_ready(r, &rd)) {
 *		if (wal_save(w, &rd, &err) != 0)
 *			stop: never acknowledge what is not on disk;
 *		...
 *	}
 *	taking a snapshot: wal_save_snapshot(w, &snap, &err), then
 *	raft_snapshot(r, ...), then wal_release(w, raft_first_index(r), &err);
 *	when idle: wal_prepare(w, &err), so the next roll is only a rename.
 *
 * Errors follow err.h. Damage found on load is DSC_ECORRUPT with a message
 * naming the file and byte offset, and nothing on disk is changed; the one
 * thing repaired is a torn tail of the last segment (see wal_open). After a
 * failed fsync the wal refuses every later write with DSC_EIO (after a
 * failed fsync the page cache's state is unknown: PostgreSQL's
 * "fsyncgate", 2018). DSC_ENOSPC is recoverable: what a failed write left is
 * zeroed, and a later save retries cleanly.
 *
 * Not thread-safe: one wal is used from one thread (the server's loop).
 */
#ifndef DSC_WAL_H
#define DSC_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "raft.h"

/* Bytes preallocated per segment unless wal_options says otherwise. */
#define WAL_SEGMENT_SIZE ((size_t)64 << 20)
/* Smallest segment_size accepted (tests use small ones to roll often). */
#define WAL_MIN_SEGMENT_SIZE ((size_t)256)

/*
 * The system calls that write, sync and allocate, so tests can fail them
 * (TESTING.md 5 L0: ENOSPC and EIO injection). NULL members mean the real
 * call. Each returns like the call it stands for: pwrite the bytes written or
 * -1 with errno set; sync 0 or -1 with errno (fdatasync for a file, fsync
 * for a directory when @dir); fallocate 0 or an errno value, like
 * posix_fallocate(fd, 0, len).
 */
struct wal_io {
	ssize_t (*pwrite)(void *ctx, int fd, const void *buf, size_t n,
	    off_t off);
	int (*sync)(void *ctx, int fd, bool dir);
	int (*fallocate)(void *ctx, int fd, off_t len);
	void *ctx;
};

struct wal_options {
	size_t segment_size;		/* 0 = WAL_SEGMENT_SIZE */
	const struct wal_io *io;	/* NULL = the system calls; copied */
};

/*
 * What wal_open() found: ready to feed struct raft_state. Owned by the
 * struct (entries' data, the snapshot's data); free with
 * wal_loaded_release().
 */
struct wal_loaded {
	/*
	 * The last hard state saved, made consistent with the log: commit is
	 * clamped to the last index, and a term below the last entry's or
	 * the snapshot's (a crash between saving a leader's snapshot and the
	 * term that came with it) is raised to it with no vote.
	 */
	struct raft_hard hard;
	/* The newest snapshot; meta.index 0 when there is none. */
	struct raft_snapshot snapshot;
	/* Consecutive entries from snapshot.meta.index + 1 on. */
	struct raft_entry *entries;
	size_t n_entries;
	/* "" or a sentence saying what was repaired, for the caller's log. */
	char repair[DSC_ERRMSG_MAX];
};

struct wal;

/*
 * Opens the data directory @dir, creating it and its layout when missing,
 * locks it against a second opener (flock), and loads what it holds into
 * @ld. @o may be NULL for the defaults.
 *
 * Load rules: the newest snapshot must be valid (a damaged newest snapshot is
 * an error; older ones are not looked at). Segments are read in sequence
 * order; the last hard-state record wins. A torn tail of the last segment --
 * a record whose header or payload is incomplete or fails its checksum and
 * that is followed only by zeros to the end of the file -- is zeroed and
 * synced, and said in ld->repair; so is a last segment that is all zeros (it
 * is removed). Orphan temporary files are deleted. Everything else is
 * DSC_ECORRUPT with nothing changed on disk: a bad record in a sealed
 * segment, a bad record followed by data, a missing segment, an index gap, a
 * damaged or truncated snapshot, entries missing between the snapshot and the
 * log, segments missing while a snapshot exists.
 *
 * On success *@wp is the wal (free with wal_close) and @ld is filled. On
 * error *@wp and @ld are left empty; errors: DSC_ECORRUPT, DSC_EBUSY (another
 * process has the directory open), DSC_EINVAL (bad options), DSC_EIO,
 * DSC_ENOSPC, DSC_ENOMEM.
 */
int wal_open(const char *dir, const struct wal_options *o, struct wal **wp,
    struct wal_loaded *ld, struct dsc_err *err);

/*
 * Loads @dir as wal_open() would, but reads only: nothing is created,
 * locked, repaired or deleted, and ld->repair says what wal_open() would
 * repair. For tools that inspect a data dir (tests/tools/walcheck.c); run
 * it on a live server's dir and it may see a batch half-written. @st, when
 * not NULL, gets the segment count, the last segment and its end offset,
 * the next index and the snapshot index. Errors as wal_open(), plus
 * DSC_ENOTFOUND when @dir has no wal/ and snap/.
 */
struct wal_stat;
int wal_check(const char *dir, struct wal_loaded *ld, struct wal_stat *st,
    struct dsc_err *err);

/* Frees what @ld owns and empties it; harmless on an empty one. */
void wal_loaded_release(struct wal_loaded *ld);

/*
 * Saves one ready, in the order raft.h asks: rd->snapshot (when not NULL) to
 * its own file, synced and renamed into place, then a log-reset record,
 * rd->hard (when rd->hard_changed) and rd->entries to the open segment, in
 * as few writes as fit, then one fdatasync when rd->must_sync. After a
 * snapshot from the leader the older snapshots beyond the newest two and the
 * segments it made obsolete are removed; that is best effort (they go next
 * time), since the ready itself is saved by then.
 *
 * Nothing of @rd is kept. Errors: DSC_EINVAL (entries not consecutive, or
 * leaving a gap after what is saved), DSC_ENOMEM and DSC_ENOSPC (nothing
 * half-written is left behind; the ready may be saved again), DSC_EIO (the
 * wal has failed: every later call returns DSC_EIO).
 */
int wal_save(struct wal *w, const struct raft_ready *rd, struct dsc_err *err);

/*
 * Saves a snapshot the application took (raft_snapshot()), synced and
 * renamed into place, and removes snapshots older than the newest two (best
 * effort). The log is not touched: release it with wal_release(). Errors:
 * DSC_EINVAL (older than the newest saved snapshot, or malformed), DSC_ENOSPC
 * (nothing is left behind), DSC_EIO (a failed sync stops the wal).
 */
int wal_save_snapshot(struct wal *w, const struct raft_snapshot *s,
    struct dsc_err *err);

/*
 * Deletes the oldest segments all of whose entries are below @before (never
 * the open one), typically raft_first_index() after raft_snapshot(). @before
 * is capped at the newest snapshot's index + 1, so the log never loses what
 * no snapshot covers. Errors: DSC_EIO.
 */
int wal_release(struct wal *w, uint64_t before, struct dsc_err *err);

/*
 * Creates and preallocates the next segment now, if not done yet, so the
 * next roll costs a rename instead of an allocation. wal_save() does it
 * itself when it must; a server may call this when idle. Errors:
 * DSC_ENOSPC, DSC_EIO.
 */
int wal_prepare(struct wal *w, struct dsc_err *err);

/* Closes the files and frees @w (NULL is fine). Does not sync. */
void wal_close(struct wal *w);

/* Counters and positions, for tests, benchmarks and status pages. */
struct wal_stat {
	uint64_t seq;		/* open segment's sequence number */
	uint64_t offset;	/* its append offset */
	uint64_t durable;	/* bytes of it known on disk (last fdatasync) */
	char segment[64];	/* its file name, relative to wal/ */
	size_t n_segments;
	uint64_t next_index;	/* index the next appended entry would take */
	uint64_t snapshot_index;
	uint64_t n_writes;	/* pwrite calls on segments */
	uint64_t n_syncs;	/* fdatasync/fsync calls */
	bool failed;
};

void wal_stat(const struct wal *w, struct wal_stat *st);

#endif

/*
 * snap.h - snapshot files in a data dir's snap/ (internal to wal*.c).
 *
 * snap/snap-IIIIIIIIIIIIIIII-TTTTTTTTTTTTTTTT.snap (index, term; 16 hex
 * digits each) holds, all integers little-endian:
 *
 *	0   magic "DSCSNAP\n"
 *	8   u32 version (1)
 *	12  u32 n, servers in the configuration (at most RAFT_MAX_SERVERS)
 *	16  u64 index
 *	24  u64 term
 *	32  u64 data length
 *	40  n times: u64 id, u8 suffrage, u8 pad[7]
 *	    data
 *	    u32 CRC32C of every byte before it
 *
 * A file is written as snap/tmp-<index>-<term>.snap, fdatasynced, renamed
 * to its name, and the directory fsynced, so a snapshot file either is
 * complete or does not exist; a tmp- file is an orphan of a crash.
 */
#ifndef DSC_SNAP_H
#define DSC_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "raft.h"
#include "wal.h"

#define SNAP_MAGIC "DSCSNAP\n"
#define SNAP_VERSION 1
#define SNAP_HEADER 40
#define SNAP_SERVER 16
/* Largest state machine image accepted on load. */
#define SNAP_MAX_DATA ((uint64_t)1 << 32)
/* Snapshot files kept by snap_prune(). */
#define SNAP_KEEP 2

struct snap_id {
	uint64_t index, term;
};

/*
 * Lists snap/ (@fd, shown as @path in messages): the valid snapshot names
 * into *@ids, sorted oldest first (free with dsc_free), and, when @orphans
 * is not NULL, the tmp- files into *@orphans (free each and the array with
 * dsc_free). DSC_EIO, DSC_ENOMEM.
 */
int snap_list(int fd, const char *path, struct snap_id **ids, size_t *n,
    char ***orphans, size_t *n_orphans, struct dsc_err *err);

/*
 * Reads and checks snapshot @id into @s; s->data is allocated (dsc_free).
 * DSC_ECORRUPT (naming the file and offset), DSC_EIO, DSC_ENOMEM.
 */
int snap_read(int fd, const char *path, struct snap_id id,
    struct raft_snapshot *s, struct dsc_err *err);

/*
 * Writes @s durably as described above. On error nothing is left but,
 * perhaps, a tmp- file; *@fatal is set when a sync failed (the wal must
 * stop). DSC_ENOSPC, DSC_EIO, DSC_EINVAL (too many servers).
 */
int snap_write(int fd, const char *path, const struct wal_io *io,
    const struct raft_snapshot *s, bool *fatal, struct dsc_err *err);

/* Deletes all but the newest SNAP_KEEP snapshots. DSC_EIO, DSC_ENOMEM. */
int snap_prune(int fd, const char *path, struct dsc_err *err);

void snap_name(char out[64], struct snap_id id, bool tmp);

#endif

/*
 * wal_internal.h - segment record format and the loader (internal to wal*.c).
 *
 * A record, all integers little-endian:
 *
 *	0   u32 len       payload bytes (at most WAL_MAX_RECORD)
 *	4   u32 crc       CRC32C over bytes [0, 4) and [8, 12 + len): the
 *	                  length, type, padding and payload
 *	8   u8  type      enum wal_rec_type; 0 never occurs, so a zeroed header
 *	                  (the preallocated rest of a segment) ends the log
 *	9   u8  pad[3]    zero
 *	12  payload
 *
 * Payloads:
 *	SEGMENT  magic "DSC-WAL\n", u32 version, u32 zero, u64 seq, u64 first
 *	         index; the first record of every segment, then a HARD record
 *	HARD     u64 term, u64 vote, u64 commit
 *	ENTRY    u64 term, u64 index, u8 type, u8 pad[7], data (the rest)
 *	RESET    u64 index, u64 term: a snapshot from the leader replaced the
 *	         whole log; entries before this record are void, the next one
 *	         is index + 1
 */
#ifndef DSC_WAL_INTERNAL_H
#define DSC_WAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "raft.h"
#include "wal.h"

#define WAL_REC_HDR 12
#define WAL_MAGIC "DSC-WAL\n"
#define WAL_VERSION 1
#define WAL_SEGMENT_PAYLOAD 32
#define WAL_HARD_PAYLOAD 24
#define WAL_ENTRY_HEAD 24
#define WAL_RESET_PAYLOAD 16
/* A segment's header plus its first hard state. */
#define WAL_SEGMENT_START (2 * WAL_REC_HDR + WAL_SEGMENT_PAYLOAD + \
	WAL_HARD_PAYLOAD)
/* The largest record: a length above it is damage, not an allocation. */
#define WAL_MAX_RECORD ((uint32_t)(WAL_ENTRY_HEAD + RAFT_MAX_ENTRY_SIZE))
/* The largest segment file read whole on load. */
#define WAL_MAX_FILE ((uint64_t)1 << 32)
/* File names: 16 + 1 + 16 + 4 characters. */
#define WAL_NAME_LEN 37
#define WAL_NEXT_NAME "next.tmp"

enum wal_rec_type {
	WAL_REC_SEGMENT = 1,
	WAL_REC_HARD,
	WAL_REC_ENTRY,
	WAL_REC_RESET,
	WAL_REC_TYPE_MAX
};

/* One segment as the wal and the loader track it. */
struct wal_seg {
	uint64_t seq;
	uint64_t first;		/* index expected first, from its header */
	/*
	 * The highest index this segment still matters for: its entries' and
	 * a RESET's index, first - 1 when it has none, 0 once a later RESET
	 * made it void. wal_release() drops it when this is below "before".
	 */
	uint64_t last;
};

/* ---- records (wal_segment.c) ------------------------------------------ */

/* Bytes of an encoded record with @payload bytes of payload. */
static inline size_t
wal_rec_size(size_t payload)
{
	return WAL_REC_HDR + payload;
}

/*
 * Encoders write one whole record at @p, which must have room for it, and
 * return its size.
 */
size_t wal_enc_segment(uint8_t *p, uint64_t seq, uint64_t first);
size_t wal_enc_hard(uint8_t *p, const struct raft_hard *h);
size_t wal_enc_entry(uint8_t *p, const struct raft_entry *e);
size_t wal_enc_reset(uint8_t *p, uint64_t index, uint64_t term);

void wal_seg_name(char out[WAL_NAME_LEN + 1], uint64_t seq, uint64_t first);
/* Parses a segment file name; false when @name is not one. */
bool wal_seg_parse_name(const char *name, uint64_t *seq, uint64_t *first);

/* ---- loading (wal_segment.c) ------------------------------------------- */

/*
 * What reading wal/ found, and what wal_open must do about it. Reading
 * changes nothing on disk: the repair fields say what to change once the
 * whole load has succeeded.
 */
struct wal_scan {
	const char *dir;		/* data dir, for messages */
	struct raft_entry *ents;	/* consecutive, data owned */
	size_t n, cap;
	uint64_t next;			/* index expected next */
	struct raft_hard hard;
	struct wal_seg *segs;		/* the segments kept, in order */
	size_t n_segs, cap_segs;
	uint64_t end;			/* append offset in the last one */
	uint64_t size;			/* its file size */
	/* Repairs: zero [torn_off, torn_end) of the last segment, or remove
	 * the last segment (drop_name) because it held nothing. */
	bool torn;
	uint64_t torn_off, torn_end;
	char drop_name[WAL_NAME_LEN + 1];
	char **orphans;			/* wal/ temporary files to delete */
	size_t n_orphans;
	uint64_t max_seq;		/* highest sequence seen, dropped or not */
	bool any_seq;
	struct buf file;		/* the segment being read */
	char note[DSC_ERRMSG_MAX];	/* what a repair will do */
};

/* Reads every segment in wal/ (@walfd) into @s. DSC_ECORRUPT, DSC_EIO,
 * DSC_ENOMEM. @s must be zeroed with dir set; release with wal_scan_release
 * whatever the result. */
int wal_scan_read(struct wal_scan *s, int walfd, struct dsc_err *err);

/*
 * Fits what was read to the snapshot at (@snap_index, @snap_term), both 0
 * for none: drops entries it covers, or the whole log when it conflicts
 * (a crash between saving a leader's snapshot and its RESET record), and
 * refuses gaps. *@need_reset says a RESET record must be written before
 * the next entries. Clamps the hard state's commit to the last index and
 * raises its term (clearing the vote) to the last entry's or snapshot's
 * term. DSC_ECORRUPT.
 */
int wal_scan_fit(struct wal_scan *s, uint64_t snap_index, uint64_t snap_term,
    bool *need_reset, struct dsc_err *err);

void wal_scan_release(struct wal_scan *s);

/* ---- the wal (wal.c, wal_open.c) -------------------------------------- */

struct wal {
	char *dir;
	char *snap_path;		/* dir + "/snap", for messages */
	int dirfd, walfd, snapfd;
	size_t seg_size;
	struct wal_io io;

	/* The open segment: append offset, synced offset, file size. */
	int fd;
	uint64_t off, durable, size;
	/* The prepared next segment (wal/next.tmp), or -1. */
	int next_fd;
	uint64_t next_size;
	uint64_t first_seq;		/* for the first segment created */

	struct wal_seg *segs;		/* oldest first; the last is open */
	size_t n_segs, cap_segs;
	uint64_t next;			/* index the next entry takes */
	struct raft_hard hard;		/* last hard state written */
	uint64_t snap_index, snap_term;	/* newest snapshot file */
	/* A RESET record is owed before the next entries. */
	bool need_reset;
	uint64_t reset_index, reset_term;

	bool failed;
	char failed_msg[DSC_ERRMSG_MAX];

	struct buf buf;			/* the batch being written */
	size_t *ends;			/* end of each record in buf */
	size_t n_recs, cap_recs;
	uint64_t n_writes, n_syncs;
};

/* Zeroes [@from, @to) of the open segment, or cuts the file at @from;
 * 0 or -1 with errno. */
int wal_clear_tail(struct wal *w, uint64_t from, uint64_t to);
/* Room for one more segment in w->segs; 0 or DSC_ENOMEM. */
int wal_reserve_seg(struct wal *w);
/* Seals the open segment (if any) and starts the next one at w->next. */
int wal_roll(struct wal *w, struct dsc_err *err);

/* ---- system calls through struct wal_io (wal.c) ------------------------ */

/*
 * pwrite(2) until @n bytes are written; returns 0, or -1 with errno set and
 * *@done the bytes written before the failure.
 */
int wal_io_pwrite_all(const struct wal_io *io, int fd, const void *buf,
    size_t n, uint64_t off, size_t *done);
int wal_io_sync(const struct wal_io *io, int fd, bool dir);
int wal_io_fallocate(const struct wal_io *io, int fd, uint64_t len);
/* Reads @n bytes at @off; 0, or -1 with errno (0 for a short file). */
int wal_io_pread_all(int fd, void *buf, size_t n, uint64_t off);
/* DSC_ENOSPC for ENOSPC and EDQUOT, DSC_ENOMEM for ENOMEM, else DSC_EIO. */
int wal_errno_code(int e);
/* Parses exactly 16 lowercase hex digits. */
bool wal_parse_hex16(const char *p, uint64_t *v);

#endif

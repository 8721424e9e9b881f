/*
 * raft_codec.h - Raft messages to bytes and back, for the peer links.
 *
 * Pure: no I/O, no clock. The format is versioned by its first byte and made
 * of little-endian fixed-width fields, so a decoder in any language can be
 * written from the table below. Everything on the wire is hostile until
 * decoded: the decoder is strict (unknown version, type or flag bits, short
 * input, trailing bytes, counts or lengths over the limits below, entries
 * whose indexes do not follow the message's index) and answers DSC_EPROTO
 * with a message naming the offending field and its offset. It never reads
 * past @len and allocates at most one array of entries whose size the input
 * itself pays for (every encoded entry is at least RAFT_CODEC_ENTRY_HDR
 * bytes).
 *
 * Version 1 layout (offsets in bytes; u64/u32 are little-endian):
 *
 *	0   u8   version (RAFT_CODEC_VERSION)
 *	1   u8   type (enum raft_msg_type)
 *	2   u8   flags: bit 0 reject, bit 1 transfer; other bits must be 0
 *	3   u64  from, to, term, index, log_term, commit, hint, context
 *	67       then, by type:
 *	  RAFT_MSG_APPEND:
 *	         u32 n_entries (<= RAFT_CODEC_MAX_ENTRIES), then each entry:
 *	         u64 term, u64 index, u8 type (enum raft_entry_type),
 *	         u32 len (<= RAFT_MAX_ENTRY_SIZE), len bytes of data;
 *	         entry i has index = message index + 1 + i
 *	  RAFT_MSG_SNAPSHOT:
 *	         u64 meta.index, u64 meta.term,
 *	         u32 conf.n (<= RAFT_MAX_SERVERS),
 *	         conf.n x { u64 id (non-zero, distinct), u8 suffrage },
 *	         u64 len (<= RAFT_CODEC_MAX_SNAPSHOT), len bytes of data
 *	  every other type: nothing
 *
 * The encoding is canonical: decoding and re-encoding gives the same bytes
 * (the fuzz target checks it).
 */
#ifndef DSC_RAFT_CODEC_H
#define DSC_RAFT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "raft.h"

/* The format byte this code writes and the only one it reads. */
#define RAFT_CODEC_VERSION 1

/* Bytes before the type-specific part: version, type, flags, 8 x u64. */
#define RAFT_CODEC_HDR (3 + 8 * 8)
/* Fixed bytes of one encoded entry: term, index, type, len. */
#define RAFT_CODEC_ENTRY_HDR (8 + 8 + 1 + 4)
/* Fixed bytes of one encoded configuration server: id, suffrage. */
#define RAFT_CODEC_SERVER_SIZE (8 + 1)

/* Entries in one APPEND; the core (raft.c) refuses more as well. */
#define RAFT_CODEC_MAX_ENTRIES RAFT_MAX_MSG_ENTRIES
/*
 * Snapshot data carried by one SNAPSHOT message. A snapshot travels in one
 * message, and a message in one peer frame (auth.h PEER_MAX_PLAIN), so this
 * bounds the catalog a cluster can hold until snapshots are chunked.
 */
#define RAFT_CODEC_MAX_SNAPSHOT (62u << 20)
/* Bytes of one encoded message; fits one peer frame (auth.c checks). */
#define RAFT_CODEC_MAX_MSG (63u << 20)

/*
 * What a decoded message owns besides the input bytes: its entries array.
 * Init with RAFT_MSG_STORAGE_INIT; reusable across decodes (the array only
 * grows, so a steady stream of messages stops allocating); release with
 * raft_msg_storage_release(), which leaves it equal to RAFT_MSG_STORAGE_INIT.
 */
struct raft_msg_storage {
	struct raft_entry *entries;
	size_t cap;
};

#define RAFT_MSG_STORAGE_INIT { NULL, 0 }

void raft_msg_storage_release(struct raft_msg_storage *st);

/*
 * Exact size of @m encoded, or 0 when @m cannot be encoded (see
 * raft_msg_encode for what that means).
 */
size_t raft_msg_encoded_size(const struct raft_msg *m);

/*
 * Appends @m, encoded, to @out. Refuses what the decoder would refuse, so a
 * peer is never sent a message it must reject: DSC_EINVAL for an unknown
 * type, entries on a type other than APPEND, entries whose indexes do not
 * follow m->index, an unknown entry type or suffrage, a bad configuration;
 * DSC_ETOOBIG for counts or sizes over the limits above; DSC_ENOMEM. On
 * error @out is unchanged. @err may be NULL.
 */
int raft_msg_encode(const struct raft_msg *m, struct buf *out,
		    struct dsc_err *err);

/*
 * Decodes the @len bytes at @p into @m. Zero-copy: the entries' and the
 * snapshot's data point into @p, so @p must stay valid and unchanged for as
 * long as @m is used (raft_step() copies what it keeps, so handing @m to the
 * core and then freeing @p is fine). The entries array lives in @st, so
 * decoding again into @st, or releasing it, ends @m's life too - whether or
 * not that decode succeeds. Entry data is typed `uint8_t *` by raft.h but
 * must not be written through. Data pointers are NULL for length 0.
 *
 * Returns 0, DSC_EPROTO for bytes that are not a valid message (with the
 * field and offset in @err), DSC_ENOMEM. On error @m is unchanged. @err may
 * be NULL.
 */
int raft_msg_decode(const uint8_t *p, size_t len, struct raft_msg *m,
		    struct raft_msg_storage *st, struct dsc_err *err);

#endif

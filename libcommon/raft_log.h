/*
 * raft_log.h - the core's in-memory log (internal to raft*.c).
 *
 * Holds every entry after the compaction point. Entries (offset,
 * last] live in one array; the entry at offset itself is gone but its term is
 * kept (offset_term) so AppendEntries can still name it as "previous".
 *
 *	 compacted | offset | offset+1 ... stable | stable+1 ... last
 *	           (term)     saved by the driver   not yet saved
 *
 * stable is how far the driver has saved (raised by raft_advance); committed
 * and applied follow Figure 3.1. epoch changes whenever existing entries go
 * away (truncation, compaction, restore), so a message built from entries
 * earlier in a batch can tell that its entries are no longer there.
 * Entries own their data (allocated with dsc_malloc).
 */
#ifndef DSC_RAFT_LOG_H
#define DSC_RAFT_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft.h"

struct raft_log {
	struct raft_entry *ents;
	size_t n, cap;
	uint64_t offset, offset_term;
	uint64_t stable, committed, applied;
	uint64_t epoch;
};

void rlog_init(struct raft_log *l);
void rlog_release(struct raft_log *l);

static inline uint64_t
rlog_last_index(const struct raft_log *l)
{
	return l->offset + l->n;
}

static inline uint64_t
rlog_first_index(const struct raft_log *l)
{
	return l->offset + 1;
}

/* Term of entry @i into *@term; false when @i is compacted or beyond last. */
bool rlog_term(const struct raft_log *l, uint64_t i, uint64_t *term);
/* Term of @i, or 0 when unknown. */
uint64_t rlog_term_or0(const struct raft_log *l, uint64_t i);
uint64_t rlog_last_term(const struct raft_log *l);
bool rlog_match_term(const struct raft_log *l, uint64_t i, uint64_t term);
/* Figure 3.1 RequestVote: is (@index, @term) at least as up to date? */
bool rlog_is_up_to_date(const struct raft_log *l, uint64_t index,
		       uint64_t term);

/* Entry @i, which must be in (offset, last]. */
const struct raft_entry *rlog_entry(const struct raft_log *l, uint64_t i);

/*
 * Appends copies of @n entries that continue the log after @after (entries
 * past @after are dropped first, lowering stable if needed). All allocation
 * happens before anything changes: on DSC_ENOMEM the log is untouched.
 */
int rlog_append_after(struct raft_log *l, uint64_t after,
		     const struct raft_entry *ents, size_t n);

/* Appends one new entry, copying @data. Returns 0 or DSC_ENOMEM. */
int rlog_append_one(struct raft_log *l, uint64_t term, uint8_t type,
		   const void *data, size_t len);

/*
 * First index among @ents whose term disagrees with the log or that is past
 * the last index; 0 when all are present and equal (etcd findConflict).
 */
uint64_t rlog_find_conflict(const struct raft_log *l,
			   const struct raft_entry *ents, size_t n);

/*
 * The largest index <= @index whose term is <= @term, for fast backtracking
 * of a rejected AppendEntries (etcd findConflictByTerm). Stops at offset.
 */
uint64_t rlog_find_conflict_by_term(const struct raft_log *l, uint64_t index,
				   uint64_t term);

/* Drops entries up to @i (offset < @i <= last). */
void rlog_compact(struct raft_log *l, uint64_t i);
/* Drops everything; the log restarts after (@index, @term), committed there. */
void rlog_restore(struct raft_log *l, uint64_t index, uint64_t term);

/* How many entries from @lo fit in @max_bytes (at least one if any exist). */
size_t rlog_count_within(const struct raft_log *l, uint64_t lo,
			size_t max_bytes);

#endif

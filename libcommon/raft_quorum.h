/*
 * raft_quorum.h - majority arithmetic (internal to raft*.c). Pure functions
 * over small arrays, kept apart so the rules can be read and tested alone.
 */
#ifndef DSC_RAFT_QUORUM_H
#define DSC_RAFT_QUORUM_H

#include <stddef.h>
#include <stdint.h>

enum vote_result {
	VOTE_PENDING = 0,
	VOTE_LOST,
	VOTE_WON,
};

/* Votes needed out of @n voters. */
static inline size_t
quorum_size(size_t n)
{
	return n / 2 + 1;
}

/*
 * The largest value that a majority of @vals reach: the commit index when
 * @vals are the voters' match indexes (Figure 3.1, "Rules for Servers",
 * Leaders, last paragraph). @vals is reordered. 0 when @n is 0.
 */
uint64_t quorum_index(uint64_t *vals, size_t n);

/* Election outcome with @granted yes and @rejected no out of @n voters. */
enum vote_result quorum_tally(size_t granted, size_t rejected, size_t n);

#endif

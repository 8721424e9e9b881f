/*
 * raft_quorum.c - majority arithmetic: commit index and vote tallying.
 */
#include "raft_quorum.h"

uint64_t
quorum_index(uint64_t *vals, size_t n)
{
	/* Insertion sort, descending: n is at most RAFT_MAX_SERVERS. */
	for (size_t i = 1; i < n; i++) {
		uint64_t v = vals[i];
		size_t j = i;

		for (; j > 0 && vals[j - 1] < v; j--)
			vals[j] = vals[j - 1];
		vals[j] = v;
	}
	/* vals[k] is reached by k + 1 voters; a majority is n / 2 + 1. */
	return n == 0 ? 0 : vals[quorum_size(n) - 1];
}

enum vote_result
quorum_tally(size_t granted, size_t rejected, size_t n)
{
	size_t q = quorum_size(n);

	if (granted >= q)
		return VOTE_WON;
	if (n - rejected < q)
		return VOTE_LOST;
	return VOTE_PENDING;
}

/*
 * dsc_assert.h - invariant checks (canonical/raft's assert.h idea).
 *
 * DSC_ASSERT guards invariants of our own making, never input: hostile
 * bytes from a peer, a file or argv always take an error path. A failed
 * assertion aborts with the expression and place, in every build, because
 * carrying on with a broken invariant in a consensus system is how
 * acknowledged data gets lost.
 */
#ifndef DSC_ASSERT_H
#define DSC_ASSERT_H

void dsc_assert_fail(const char *expr, const char *file, int line)
	__attribute__((noreturn));

#define DSC_ASSERT(cond)                                                       \
	do {                                                                   \
		if (!(cond))                                                   \
			dsc_assert_fail(#cond, __FILE__, __LINE__);            \
	} while (0)

#endif

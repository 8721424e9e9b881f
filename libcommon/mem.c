/*
 * mem.c - the counting, fault-injecting allocator behind every libcommon
 * module.
 *
 * Every allocation call (malloc, calloc, realloc, strdup) is counted and,
 * when a test has armed dsc_mem_fail_after(), may be refused, so the
 * out-of-memory paths of the code above are executed by the unit tests
 * instead of only being read.
 *
 * Size 0: malloc(0) and realloc(p, 0) may legally return NULL on success (and
 * realloc(p, 0) may free @p), which callers cannot tell apart from failure.
 * Here a request for 0 bytes allocates 1 byte instead, so NULL from any
 * dsc_* allocator always means "failed, nothing changed" and a non-NULL
 * result is always a pointer to free with dsc_free(). Freeing is done with
 * dsc_free(), never with realloc(p, 0).
 *
 * The counters are atomics so that a stray allocation from another thread is
 * not a data race; arming the hook is still meant for single-threaded tests.
 */
#include "mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before failing; negative means the hook is disarmed. */
static atomic_long budget = -1;
static atomic_ulong calls;

/*
 * Counts one allocation call and says whether it may go ahead. Sets errno to
 * ENOMEM for an injected failure, as a real one would.
 */
static int
admit(void)
{
	long left;

	atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
	left = atomic_load_explicit(&budget, memory_order_relaxed);
	if (left < 0)
		return 1;
	if (left == 0) {
		errno = ENOMEM;
		return 0;
	}
	atomic_store_explicit(&budget, left - 1, memory_order_relaxed);
	return 1;
}

void *
dsc_malloc(size_t size)
{
	if (!admit())
		return NULL;
	return malloc(size != 0 ? size : 1);
}

void *
dsc_calloc(size_t n, size_t size)
{
	if (!admit())
		return NULL;
	if (n == 0 || size == 0)
		return calloc(1, 1);
	/* calloc checks n * size itself; checked here too for clarity. */
	if (n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(n, size);
}

void *
dsc_realloc(void *p, size_t size)
{
	if (!admit())
		return NULL;
	return realloc(p, size != 0 ? size : 1);
}

void *
dsc_reallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	return dsc_realloc(p, n * size);
}

char *
dsc_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d;

	if (!admit())
		return NULL;
	d = malloc(n);
	if (d != NULL)
		memcpy(d, s, n);
	return d;
}

void
dsc_free(void *p)
{
	free(p);
}

void
dsc_mem_fail_after(long n)
{
	atomic_store_explicit(&budget, n < 0 ? -1 : n, memory_order_relaxed);
}

unsigned long
dsc_mem_calls(void)
{
	return atomic_load_explicit(&calls, memory_order_relaxed);
}

void
dsc_mem_reset_count(void)
{
	atomic_store_explicit(&calls, 0, memory_order_relaxed);
}

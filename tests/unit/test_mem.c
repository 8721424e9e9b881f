/*
 * test_mem.c - the allocator: size 0, overflow checks, the failure hook and
 * the call counter.
 */
#include "mem.h"

#include <errno.h>
#include <stdint.h>

#include "t.h"

/* ---- fixture ------------------------------------------------------- */

/* Every test starts disarmed, whatever an earlier failed test left. */
static void
setup(void)
{
	dsc_mem_fail_after(-1);
	dsc_mem_reset_count();
}

/* ---- size 0 -------------------------------------------------------- */

TEST(zero_sizes_allocate)
{
	void *p, *q, *r;

	setup();
	p = dsc_malloc(0);
	T_ASSERT(p != NULL);
	q = dsc_calloc(0, 16);
	T_ASSERT(q != NULL);
	r = dsc_calloc(16, 0);
	T_ASSERT(r != NULL);
	dsc_free(q);
	dsc_free(r);
	/* realloc to 0 never frees behind our back and never says NULL. */
	p = dsc_realloc(p, 0);
	T_ASSERT(p != NULL);
	dsc_free(p);
	p = dsc_reallocarray(NULL, 0, 8);
	T_ASSERT(p != NULL);
	dsc_free(p);
}

/* ---- ordinary use -------------------------------------------------- */

TEST(calloc_zeroes)
{
	unsigned char *p;

	setup();
	p = dsc_calloc(100, 3);
	T_ASSERT(p != NULL);
	for (int i = 0; i < 300; i++)
		T_EQ(p[i], 0);
	dsc_free(p);
}

TEST(realloc_keeps_contents)
{
	char *p;

	setup();
	p = dsc_malloc(4);
	T_ASSERT(p != NULL);
	memcpy(p, "abc", 4);
	p = dsc_realloc(p, 1 << 20);
	T_ASSERT(p != NULL);
	T_STREQ(p, "abc");
	p = dsc_reallocarray(p, 2, 2);
	T_ASSERT(p != NULL);
	T_STREQ(p, "abc");
	dsc_free(p);
}

TEST(strdup_copies)
{
	const char *s = "dsc-server";
	char *d;

	setup();
	d = dsc_strdup(s);
	T_ASSERT(d != NULL && d != s);
	T_STREQ(d, s);
	dsc_free(d);
	d = dsc_strdup("");
	T_ASSERT(d != NULL);
	T_STREQ(d, "");
	dsc_free(d);
}

TEST(free_null_is_a_no_op)
{
	setup();
	dsc_free(NULL);
	T_EQ(dsc_mem_calls(), 0);
}

/* ---- overflow ------------------------------------------------------ */

TEST(reallocarray_overflow_fails_cleanly)
{
	char *p;

	setup();
	p = dsc_malloc(8);
	T_ASSERT(p != NULL);
	memcpy(p, "intact", 7);
	errno = 0;
	T_ASSERT(dsc_reallocarray(p, SIZE_MAX / 2 + 1, 2) == NULL);
	T_EQ(errno, ENOMEM);
	T_ASSERT(dsc_reallocarray(p, 2, SIZE_MAX) == NULL);
	T_STREQ(p, "intact");
	dsc_free(p);
}

TEST(calloc_overflow_fails_cleanly)
{
	setup();
	errno = 0;
	T_ASSERT(dsc_calloc(SIZE_MAX / 4, 8) == NULL);
	T_EQ(errno, ENOMEM);
}

/* ---- the failure hook ---------------------------------------------- */

TEST(fail_after_zero_fails_everything)
{
	char *p;

	setup();
	p = dsc_malloc(1);
	T_ASSERT(p != NULL);
	dsc_mem_fail_after(0);
	errno = 0;
	T_ASSERT(dsc_malloc(1) == NULL);
	T_EQ(errno, ENOMEM);
	T_ASSERT(dsc_calloc(1, 1) == NULL);
	T_ASSERT(dsc_strdup("x") == NULL);
	T_ASSERT(dsc_realloc(p, 100) == NULL);
	T_ASSERT(dsc_reallocarray(p, 10, 10) == NULL);
	/* Still failing: the hook stays armed until disarmed. */
	T_ASSERT(dsc_malloc(1) == NULL);
	dsc_mem_fail_after(-1);
	dsc_free(p);
}

TEST(fail_after_n_lets_n_through)
{
	void *a[3];

	setup();
	dsc_mem_fail_after(3);
	a[0] = dsc_malloc(1);
	a[1] = dsc_strdup("b");
	a[2] = dsc_calloc(1, 1);
	T_ASSERT(a[0] != NULL && a[1] != NULL && a[2] != NULL);
	T_ASSERT(dsc_malloc(1) == NULL);
	dsc_mem_fail_after(-1);
	for (int i = 0; i < 3; i++)
		dsc_free(a[i]);
}

TEST(failed_realloc_leaves_block_alone)
{
	char *p, *q;

	setup();
	p = dsc_malloc(16);
	T_ASSERT(p != NULL);
	memcpy(p, "still here", 11);
	dsc_mem_fail_after(0);
	q = dsc_realloc(p, 4096);
	dsc_mem_fail_after(-1);
	T_ASSERT(q == NULL);
	T_STREQ(p, "still here");
	dsc_free(p);
}

TEST(negative_disarms)
{
	void *p;

	setup();
	dsc_mem_fail_after(0);
	dsc_mem_fail_after(-5);
	p = dsc_malloc(1);
	T_ASSERT(p != NULL);
	dsc_free(p);
}

/* ---- the counter --------------------------------------------------- */

TEST(calls_counts_every_allocation_call)
{
	void *p, *q;

	setup();
	p = dsc_malloc(1);
	p = dsc_realloc(p, 2);
	q = dsc_calloc(1, 1);
	dsc_free(q);
	q = dsc_strdup("x");
	T_EQ(dsc_mem_calls(), 4);
	dsc_free(p);
	dsc_free(q);
	T_EQ(dsc_mem_calls(), 4);
	/* Refused calls are calls too. */
	dsc_mem_fail_after(0);
	T_ASSERT(dsc_malloc(1) == NULL);
	dsc_mem_fail_after(-1);
	T_EQ(dsc_mem_calls(), 5);
	dsc_mem_reset_count();
	T_EQ(dsc_mem_calls(), 0);
}

T_MAIN()

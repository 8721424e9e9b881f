/*
 * dsc_assert.c - the failure path of DSC_ASSERT.
 */
#include "dsc_assert.h"

#include <stdio.h>
#include <stdlib.h>

void
dsc_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
	fflush(stderr);
	abort();
}

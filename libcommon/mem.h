/*
 * mem.h - the allocator every libcommon module goes through.
 *
 * Tests arm it to fail after N successful allocations (canonical/raft's
 * test/lib/heap.h idea), so every out-of-memory path is run, not just read.
 * dsc_free(NULL) is a no-op. Allocation sizes that overflow fail cleanly.
 */
#ifndef DSC_MEM_H
#define DSC_MEM_H

#include <stddef.h>

void *dsc_malloc(size_t size);
void *dsc_calloc(size_t n, size_t size);
/* Like realloc(); on failure @p is untouched and NULL is returned. */
void *dsc_realloc(void *p, size_t size);
/* realloc(@p, n * size) with the multiplication checked for overflow. */
void *dsc_reallocarray(void *p, size_t n, size_t size);
char *dsc_strdup(const char *s);
void dsc_free(void *p);

/*
 * Test hooks. dsc_mem_fail_after(n): the next @n allocations succeed and every
 * one after fails until dsc_mem_fail_after(-1) disarms it. dsc_mem_calls()
 * counts allocation calls (malloc, calloc, realloc, strdup) since the last
 * dsc_mem_reset_count(). Not thread-safe: tests only.
 */
void dsc_mem_fail_after(long n);
unsigned long dsc_mem_calls(void);
void dsc_mem_reset_count(void);

#endif

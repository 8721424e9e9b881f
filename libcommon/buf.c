/*
 * buf.c - the growable byte buffer of buf.h.
 *
 * cap counts every allocated byte, including the one that holds the
 * trailing NUL, so whenever p is not NULL: len < cap and p[len] == 0. Code
 * that writes into the spare room directly (after buf_grow) must store the
 * NUL itself after advancing len.
 *
 * Every function that can fail checks and allocates before it changes
 * anything, so on failure the buffer is exactly as it was: the unit tests
 * fail each allocation in turn to hold us to that.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "mem.h"

/* The first allocation; small enough to be cheap, big enough for a line. */
#define BUF_MIN_CAP 64

int
buf_grow(struct buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - 1 - b->len)
		return DSC_ENOMEM;
	need = b->len + extra + 1;
	if (b->p != NULL && need <= b->cap)
		return 0;
	/* Grow by half again (git's alloc_nr): appends stay amortized O(1). */
	cap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
	while (cap < need)
		cap = cap <= SIZE_MAX / 3 * 2 ? cap + cap / 2 : need;
	p = dsc_realloc(b->p, cap);
	if (p == NULL)
		return DSC_ENOMEM;
	if (b->p == NULL)
		p[0] = '\0';
	b->p = p;
	b->cap = cap;
	return 0;
}

int
buf_add(struct buf *b, const void *data, size_t n)
{
	uintptr_t d = (uintptr_t)data, base = (uintptr_t)b->p;
	int rc;

	if (n == 0)
		return b->p != NULL ? 0 : buf_grow(b, 0);
	/* Appending part of ourselves: the block may move while growing. */
	if (b->p != NULL && d >= base && d < base + b->cap) {
		size_t off = d - base;

		if ((rc = buf_grow(b, n)) != 0)
			return rc;
		memmove(b->p + b->len, b->p + off, n);
	} else {
		if ((rc = buf_grow(b, n)) != 0)
			return rc;
		memcpy(b->p + b->len, data, n);
	}
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addch(struct buf *b, int c)
{
	uint8_t ch = (uint8_t)c;

	return buf_add(b, &ch, 1);
}

/*
 * Formats straight into the spare room when it fits, and otherwise grows to
 * the exact size and formats again. The arguments must not point into @b:
 * the first attempt overwrites the NUL that ends the current contents.
 */
int
buf_addf(struct buf *b, const char *fmt, ...)
{
	size_t room = b->p != NULL ? b->cap - b->len : 0;
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(room ? (char *)b->p + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < room) {
		b->len += (size_t)n;
		return 0;
	}
	if (b->p != NULL)
		b->p[b->len] = '\0';
	if (n < 0)
		return DSC_EINVAL;
	if ((rc = buf_grow(b, (size_t)n)) != 0)
		return rc;
	va_start(ap, fmt);
	n = vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->len] = '\0';
		return DSC_EINVAL;
	}
	b->len += (size_t)n;
	return 0;
}

int
buf_add_u32le(struct buf *b, uint32_t v)
{
	uint8_t le[4];

	for (int i = 0; i < 4; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	return buf_add(b, le, sizeof(le));
}

int
buf_add_u64le(struct buf *b, uint64_t v)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(v >> (8 * i));
	return buf_add(b, le, sizeof(le));
}

void
buf_clear(struct buf *b)
{
	buf_truncate(b, 0);
}

void
buf_truncate(struct buf *b, size_t len)
{
	if (len >= b->len)
		return;
	b->len = len;
	b->p[len] = '\0';
}

void
buf_release(struct buf *b)
{
	dsc_free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

uint8_t *
buf_detach(struct buf *b, size_t *len)
{
	uint8_t *p = b->p;

	if (len != NULL)
		*len = b->len;
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

uint32_t
get_u32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

uint64_t
get_u64le(const uint8_t *p)
{
	return (uint64_t)get_u32le(p) | (uint64_t)get_u32le(p + 4) << 32;
}

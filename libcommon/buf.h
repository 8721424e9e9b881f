/*
 * buf.h - a growable byte buffer.
 *
 * Invariants (git's strbuf): len <= cap; when p is not NULL, p[len] is 0, so
 * text built here is a C string. BUF_INIT is a valid empty buffer with p NULL.
 * buf_release() frees and leaves the buffer equal to BUF_INIT, so releasing
 * twice is harmless. Functions that can grow return 0 or DSC_ENOMEM; on
 * failure the buffer is unchanged.
 */
#ifndef DSC_BUF_H
#define DSC_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap;
};

#define BUF_INIT { NULL, 0, 0 }

/* Ensures room for @extra more bytes (plus the trailing NUL). */
int buf_grow(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *data, size_t n);
int buf_addstr(struct buf *b, const char *s);
int buf_addch(struct buf *b, int c);
int buf_addf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Little-endian fixed-width integers, for codecs and on-disk records. */
int buf_add_u32le(struct buf *b, uint32_t v);
int buf_add_u64le(struct buf *b, uint64_t v);
/* Drops the contents, keeps the allocation. */
void buf_clear(struct buf *b);
/* Shortens to @len (no-op if @len >= b->len). */
void buf_truncate(struct buf *b, size_t len);
void buf_release(struct buf *b);
/*
 * Hands the bytes to the caller (free with dsc_free) and resets @b to
 * BUF_INIT. Returns NULL for an empty buffer that never allocated.
 */
uint8_t *buf_detach(struct buf *b, size_t *len);

/* Little-endian loads for decoders; @p must hold 4 or 8 bytes. */
uint32_t get_u32le(const uint8_t *p);
uint64_t get_u64le(const uint8_t *p);

#endif

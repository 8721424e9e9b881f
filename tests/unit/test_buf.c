/*
 * test_buf.c - struct buf: contents, invariants after every operation (git's
 * assert_sane_strbuf), and allocation failure at every possible point.
 */
#include "buf.h"

#include "err.h"
#include "mem.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------- */

/* The invariants buf.h promises, checked after every operation. */
#define SANE(b)                                                                \
	do {                                                                   \
		const struct buf *s_ = (b);                                    \
		T_ASSERT(s_->len <= s_->cap);                                  \
		if (s_->p == NULL) {                                           \
			T_EQ(s_->len, 0);                                      \
			T_EQ(s_->cap, 0);                                      \
		} else {                                                       \
			T_ASSERT(s_->len < s_->cap);                           \
			T_EQ(s_->p[s_->len], 0);                               \
		}                                                              \
	} while (0)

/* Contents equal @s (a C string), and the buffer is sane. */
#define HAS(b, s)                                                              \
	do {                                                                   \
		SANE(b);                                                       \
		T_EQ((b)->len, strlen(s));                                     \
		T_STREQ((const char *)(b)->p, (s));                            \
	} while (0)

/* An operation under test, applied to @b; returns buf's status code. */
typedef int buf_op(struct buf *b);

static void
setup(void)
{
	dsc_mem_fail_after(-1);
}

/* ---- basics -------------------------------------------------------- */

TEST(init_is_empty_and_sane)
{
	struct buf b = BUF_INIT;

	setup();
	SANE(&b);
	T_ASSERT(b.p == NULL);
	buf_clear(&b);
	buf_truncate(&b, 0);
	SANE(&b);
	buf_release(&b);
	SANE(&b);
}

TEST(addstr_addch_add)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_addstr(&b, "hello"), 0);
	HAS(&b, "hello");
	T_EQ(buf_addch(&b, ','), 0);
	HAS(&b, "hello,");
	T_EQ(buf_add(&b, " world!!", 6), 0);
	HAS(&b, "hello, world");
	T_EQ(buf_addch(&b, 0x100 + '!'), 0);	/* only the low byte */
	HAS(&b, "hello, world!");
	buf_release(&b);
}

TEST(empty_add_still_makes_a_string)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_addstr(&b, ""), 0);
	T_ASSERT(b.p != NULL);
	HAS(&b, "");
	T_EQ(buf_add(&b, NULL, 0), 0);
	HAS(&b, "");
	buf_release(&b);
}

TEST(binary_with_nuls)
{
	struct buf b = BUF_INIT;
	const uint8_t bytes[] = { 0, 1, 0, 0xff, 0 };

	setup();
	T_EQ(buf_add(&b, bytes, sizeof(bytes)), 0);
	SANE(&b);
	T_EQ(b.len, sizeof(bytes));
	T_MEMEQ(b.p, bytes, sizeof(bytes));
	buf_release(&b);
}

TEST(addf_small_and_large)
{
	struct buf b = BUF_INIT;
	char big[3000];

	setup();
	T_EQ(buf_addf(&b, "term=%d index=%s", 7, "42"), 0);
	HAS(&b, "term=7 index=42");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	T_EQ(buf_addf(&b, "[%s]", big), 0);
	SANE(&b);
	T_EQ(b.len, 15 + 2 + sizeof(big) - 1);
	T_EQ(b.p[15], '[');
	T_EQ(b.p[b.len - 1], ']');
	T_EQ(buf_addf(&b, "%s", ""), 0);
	T_EQ(b.len, 15 + 2 + sizeof(big) - 1);
	SANE(&b);
	buf_release(&b);
}

TEST(addf_exact_fit_of_the_spare_room)
{
	struct buf b = BUF_INIT;
	char s[256];
	size_t room;

	setup();
	T_EQ(buf_addstr(&b, "a"), 0);
	room = b.cap - b.len;
	T_ASSERT(room < sizeof(s));
	/* room - 1 characters fit with their NUL; room characters do not. */
	memset(s, 'y', room);
	s[room - 1] = '\0';
	T_EQ(buf_addf(&b, "%s", s), 0);
	SANE(&b);
	T_EQ(b.len, room);
	buf_clear(&b);
	s[room - 1] = 'y';
	s[room] = '\0';
	T_EQ(buf_addstr(&b, "a"), 0);
	T_EQ(buf_addf(&b, "%s", s), 0);
	SANE(&b);
	T_EQ(b.len, 1 + room);
	buf_release(&b);
}

TEST(little_endian_integers)
{
	struct buf b = BUF_INIT;
	const uint8_t want[] = { 0x78, 0x56, 0x34, 0x12, 0x08, 0x07, 0x06,
		0x05, 0x04, 0x03, 0x02, 0x01 };

	setup();
	T_EQ(buf_add_u32le(&b, 0x12345678), 0);
	T_EQ(buf_add_u64le(&b, 0x0102030405060708ULL), 0);
	SANE(&b);
	T_EQ(b.len, 12);
	T_MEMEQ(b.p, want, sizeof(want));
	T_ASSERT(get_u32le(b.p) == 0x12345678);
	T_ASSERT(get_u64le(b.p + 4) == 0x0102030405060708ULL);
	buf_clear(&b);
	T_EQ(buf_add_u64le(&b, UINT64_MAX), 0);
	T_EQ(buf_add_u32le(&b, 0x80000001), 0);
	T_ASSERT(get_u64le(b.p) == UINT64_MAX);
	T_ASSERT(get_u32le(b.p + 8) == 0x80000001);
	buf_release(&b);
}

TEST(clear_keeps_allocation)
{
	struct buf b = BUF_INIT;
	uint8_t *p;
	size_t cap;

	setup();
	T_EQ(buf_addstr(&b, "some text"), 0);
	p = b.p;
	cap = b.cap;
	buf_clear(&b);
	HAS(&b, "");
	T_ASSERT(b.p == p && b.cap == cap);
	buf_release(&b);
}

TEST(truncate)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_addstr(&b, "abcdef"), 0);
	buf_truncate(&b, 10);
	HAS(&b, "abcdef");
	buf_truncate(&b, 6);
	HAS(&b, "abcdef");
	buf_truncate(&b, 3);
	HAS(&b, "abc");
	buf_truncate(&b, 0);
	HAS(&b, "");
	buf_release(&b);
}

TEST(release_twice_is_harmless)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_addstr(&b, "x"), 0);
	buf_release(&b);
	SANE(&b);
	T_ASSERT(b.p == NULL);
	buf_release(&b);
	SANE(&b);
	T_EQ(buf_addstr(&b, "reusable"), 0);
	HAS(&b, "reusable");
	buf_release(&b);
}

TEST(detach_hands_over)
{
	struct buf b = BUF_INIT;
	uint8_t *p;
	size_t len = 99;

	setup();
	T_ASSERT(buf_detach(&b, &len) == NULL);
	T_EQ(len, 0);
	T_EQ(buf_addstr(&b, "mine now"), 0);
	p = buf_detach(&b, &len);
	SANE(&b);
	T_ASSERT(b.p == NULL);
	T_EQ(len, 8);
	T_STREQ((char *)p, "mine now");
	dsc_free(p);
	T_EQ(buf_addstr(&b, "again"), 0);
	p = buf_detach(&b, NULL);
	T_STREQ((char *)p, "again");
	dsc_free(p);
}

TEST(append_part_of_itself)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_addstr(&b, "abc"), 0);
	/* Enough doublings to move the block several times. */
	for (int i = 0; i < 10; i++) {
		T_EQ(buf_add(&b, b.p, b.len), 0);
		SANE(&b);
	}
	T_EQ(b.len, 3 << 10);
	for (size_t i = 0; i < b.len; i++)
		T_EQ(b.p[i], "abc"[i % 3]);
	T_EQ(buf_add(&b, b.p + 1, 2), 0);
	T_EQ(b.p[b.len - 2], 'b');
	T_EQ(b.p[b.len - 1], 'c');
	buf_release(&b);
}

TEST(many_appends_grow)
{
	struct buf b = BUF_INIT;

	setup();
	for (int i = 0; i < 100000; i++) {
		T_EQ(buf_addch(&b, 'a' + i % 26), 0);
		if (i % 997 == 0)
			SANE(&b);
	}
	SANE(&b);
	T_EQ(b.len, 100000);
	T_EQ(b.p[99999], 'a' + 99999 % 26);
	buf_release(&b);
}

TEST(grow_reserves_room)
{
	struct buf b = BUF_INIT;
	uint8_t *p;

	setup();
	T_EQ(buf_grow(&b, 1000), 0);
	SANE(&b);
	T_ASSERT(b.cap >= 1001);
	p = b.p;
	for (int i = 0; i < 1000; i++)
		T_EQ(buf_addch(&b, 'z'), 0);
	T_ASSERT(b.p == p);	/* no reallocation needed */
	SANE(&b);
	buf_release(&b);
}

TEST(impossible_sizes_fail_cleanly)
{
	struct buf b = BUF_INIT;

	setup();
	T_EQ(buf_grow(&b, SIZE_MAX), DSC_ENOMEM);
	SANE(&b);
	T_ASSERT(b.p == NULL);
	T_EQ(buf_addstr(&b, "abc"), 0);
	T_EQ(buf_grow(&b, SIZE_MAX - 3), DSC_ENOMEM);
	T_EQ(buf_grow(&b, SIZE_MAX - 1), DSC_ENOMEM);
	HAS(&b, "abc");
	buf_release(&b);
}

/* ---- allocation failure at every point ------------------------------ */

static char big_text[5000];

static int
op_addstr_big(struct buf *b)
{
	return buf_addstr(b, big_text);
}

static int
op_addch(struct buf *b)
{
	return buf_addch(b, 'q');
}

static int
op_addf_big(struct buf *b)
{
	return buf_addf(b, "<%s|%d>", big_text, 12345);
}

static int
op_addf_small(struct buf *b)
{
	return buf_addf(b, "%d", 7);
}

static int
op_u32(struct buf *b)
{
	return buf_add_u32le(b, 0xdeadbeef);
}

static int
op_u64(struct buf *b)
{
	return buf_add_u64le(b, 0x1122334455667788ULL);
}

static int
op_grow(struct buf *b)
{
	return buf_grow(b, 100000);
}

static int
op_self_append(struct buf *b)
{
	return buf_add(b, b->p, b->len);
}

static int
op_empty_add(struct buf *b)
{
	return buf_add(b, "", 0);
}

/*
 * The starting points: never allocated, partly full, and full to the last
 * byte of its allocation so that any append must reallocate.
 */
enum start { START_EMPTY, START_SOME, START_FULL, START_MAX };

static void
prepare(struct buf *b, enum start s)
{
	dsc_mem_fail_after(-1);
	*b = (struct buf)BUF_INIT;
	if (s == START_EMPTY)
		return;
	T_EQ(buf_addstr(b, "prefix-"), 0);
	if (s == START_FULL)
		while (b->len + 1 < b->cap)
			T_EQ(buf_addch(b, '.'), 0);
	SANE(b);
}

/*
 * Fails the 1st, 2nd, ... allocation of @op until it succeeds. Every failed
 * attempt must return DSC_ENOMEM and leave @b bit-for-bit as it was; the
 * successful one must give the same result as an unconstrained run.
 * LeakSanitizer (make test) reports any block lost on the way.
 */
static void
sweep(const char *name, buf_op *op)
{
	for (int s = 0; s < START_MAX; s++) {
		struct buf want = BUF_INIT, b, before;
		uint8_t *copy;
		long n;
		int rc;

		prepare(&want, s);
		T_EQ(op(&want), 0);
		SANE(&want);
		for (n = 0;; n++) {
			T_ASSERT(n < 10);
			prepare(&b, s);
			before = b;
			copy = dsc_malloc(b.len + 1);
			T_ASSERT(copy != NULL);
			if (b.p != NULL)
				memcpy(copy, b.p, b.len + 1);
			dsc_mem_fail_after(n);
			rc = op(&b);
			dsc_mem_fail_after(-1);
			SANE(&b);
			if (rc == 0) {
				dsc_free(copy);
				break;
			}
			if (rc != DSC_ENOMEM)
				T_FAIL("%s from start %d: rc %d", name, s, rc);
			T_ASSERT(b.p == before.p && b.len == before.len &&
			    b.cap == before.cap);
			if (b.p != NULL)
				T_MEMEQ(b.p, copy, b.len + 1);
			dsc_free(copy);
			buf_release(&b);
		}
		T_EQ(b.len, want.len);
		T_MEMEQ(b.p, want.p, want.len + 1);
		/* Growing from scratch or when full must have allocated. */
		if (s == START_EMPTY || (s == START_FULL && op != op_empty_add))
			T_ASSERT(n >= 1);
		buf_release(&b);
		buf_release(&want);
	}
}

TEST(allocation_failure_leaves_buffer_unchanged)
{
	static const struct {
		const char *name;
		buf_op *op;
	} ops[] = {
		{ "addstr", op_addstr_big },
		{ "addch", op_addch },
		{ "addf big", op_addf_big },
		{ "addf small", op_addf_small },
		{ "u32le", op_u32 },
		{ "u64le", op_u64 },
		{ "grow", op_grow },
		{ "self append", op_self_append },
		{ "empty add", op_empty_add },
	};

	setup();
	memset(big_text, 'B', sizeof(big_text) - 1);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		sweep(ops[i].name, ops[i].op);
}

T_MAIN()

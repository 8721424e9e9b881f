/*
 * test_raft_codec.c - raft messages to bytes and back: round trips of every
 * type, the exact bytes of version 1, and hostile input (every prefix, every
 * byte changed to every value, oversize counts, allocation failure).
 */
#include "raft_codec.h"

#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "t.h"

/* ---- fixture ------------------------------------------------------- */

static void
setup(void)
{
	dsc_mem_fail_after(-1);
	dsc_mem_reset_count();
}

static uint8_t data_a[] = "register web 10.0.0.1:80";
static uint8_t data_b[] = { 1, 0, 0, 0, 0, 0, 0, 0, 7 };
static uint8_t snap_data[] = "catalog snapshot bytes";

static const struct raft_entry three_entries[] = {
	{ .term = 3, .index = 42, .type = RAFT_ENTRY_NOOP },
	{ .term = 3, .index = 43, .type = RAFT_ENTRY_NORMAL,
	  .len = sizeof(data_a), .data = data_a },
	{ .term = 4, .index = 44, .type = RAFT_ENTRY_CONF,
	  .len = sizeof(data_b), .data = data_b },
};

/* A message of @type with every header field set to something distinct. */
static struct raft_msg
msg_of(uint8_t type)
{
	struct raft_msg m = {
		.type = type, .reject = true, .transfer = false,
		.from = 1, .to = 0x0102030405060708ull, .term = 7,
		.index = 41, .log_term = 3, .commit = 40, .hint = 39,
		.context = UINT64_MAX,
	};

	if (type == RAFT_MSG_APPEND) {
		m.entries = three_entries;
		m.n_entries = 3;
	} else if (type == RAFT_MSG_SNAPSHOT) {
		m.snapshot.meta.index = 100;
		m.snapshot.meta.term = 6;
		m.snapshot.meta.conf.n = 3;
		m.snapshot.meta.conf.servers[0].id = 1;
		m.snapshot.meta.conf.servers[1].id = 2;
		m.snapshot.meta.conf.servers[2].id = 9;
		m.snapshot.meta.conf.servers[2].suffrage = RAFT_LEARNER;
		m.snapshot.len = sizeof(snap_data);
		m.snapshot.data = snap_data;
	}
	return m;
}

/* Field-by-field equality, data compared by content. */
static void
same_msg(const struct raft_msg *a, const struct raft_msg *b)
{
	T_EQ(a->type, b->type);
	T_EQ(a->reject, b->reject);
	T_EQ(a->transfer, b->transfer);
	T_ASSERT(a->from == b->from && a->to == b->to && a->term == b->term);
	T_ASSERT(a->index == b->index && a->log_term == b->log_term);
	T_ASSERT(a->commit == b->commit && a->hint == b->hint);
	T_ASSERT(a->context == b->context);
	T_EQ(a->n_entries, b->n_entries);
	for (size_t i = 0; i < a->n_entries; i++) {
		const struct raft_entry *x = &a->entries[i];
		const struct raft_entry *y = &b->entries[i];

		T_ASSERT(x->term == y->term && x->index == y->index);
		T_EQ(x->type, y->type);
		T_EQ(x->len, y->len);
		T_ASSERT((x->data == NULL) == (y->data == NULL));
		if (x->len > 0)
			T_MEMEQ(x->data, y->data, x->len);
	}
	T_ASSERT(a->snapshot.meta.index == b->snapshot.meta.index);
	T_ASSERT(a->snapshot.meta.term == b->snapshot.meta.term);
	T_EQ(a->snapshot.meta.conf.n, b->snapshot.meta.conf.n);
	for (uint32_t i = 0; i < a->snapshot.meta.conf.n; i++) {
		T_ASSERT(a->snapshot.meta.conf.servers[i].id ==
			 b->snapshot.meta.conf.servers[i].id);
		T_EQ(a->snapshot.meta.conf.servers[i].suffrage,
		     b->snapshot.meta.conf.servers[i].suffrage);
	}
	T_EQ(a->snapshot.len, b->snapshot.len);
	T_ASSERT((a->snapshot.data == NULL) == (b->snapshot.data == NULL));
	if (a->snapshot.len > 0)
		T_MEMEQ(a->snapshot.data, b->snapshot.data, a->snapshot.len);
}

/* Encodes @m into a fresh buffer, checking the promised size. */
static void
encode(const struct raft_msg *m, struct buf *b)
{
	struct dsc_err err = DSC_ERR_INIT;

	*b = (struct buf)BUF_INIT;
	T_EQ(raft_msg_encode(m, b, &err), 0);
	T_EQ(b->len, raft_msg_encoded_size(m));
}

/* A sentinel message to check that failed decodes leave @m alone. */
static struct raft_msg
poison(void)
{
	struct raft_msg m;

	memset(&m, 0xa5, sizeof(m));
	return m;
}

static bool
is_poison(const struct raft_msg *m)
{
	struct raft_msg p = poison();

	return memcmp(m, &p, sizeof(p)) == 0;
}

#define DECODE_ERROR(p, len, want)                                             \
	do {                                                                   \
		struct raft_msg_storage st_ = RAFT_MSG_STORAGE_INIT;           \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		struct raft_msg m_ = poison();                                 \
		T_EQ(raft_msg_decode((p), (len), &m_, &st_, &e_), (want));     \
		T_EQ(e_.code, (want));                                         \
		T_ASSERT(e_.msg[0] != '\0');                                   \
		T_ASSERT(is_poison(&m_));                                      \
		raft_msg_storage_release(&st_);                                \
	} while (0)

#define ENCODE_ERROR(m, want)                                                  \
	do {                                                                   \
		struct buf b_ = BUF_INIT;                                      \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		T_EQ(buf_addstr(&b_, "keep"), 0);                              \
		T_EQ(raft_msg_encode((m), &b_, &e_), (want));                  \
		T_EQ(e_.code, (want));                                         \
		T_EQ(raft_msg_encoded_size(m), 0);                             \
		T_EQ(b_.len, 4);                                               \
		T_STREQ((char *)b_.p, "keep");                                 \
		buf_release(&b_);                                              \
	} while (0)

/* ---- round trips --------------------------------------------------- */

TEST(every_type_round_trips)
{
	for (uint8_t t = 0; t < RAFT_MSG_TYPE_MAX; t++) {
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct raft_msg m = msg_of(t), d = poison();
		struct dsc_err err = DSC_ERR_INIT;
		struct buf b, b2;

		setup();
		encode(&m, &b);
		T_EQ(raft_msg_decode(b.p, b.len, &d, &st, &err), 0);
		same_msg(&m, &d);
		/* Canonical: re-encoding gives the same bytes. */
		encode(&d, &b2);
		T_EQ(b2.len, b.len);
		T_MEMEQ(b2.p, b.p, b.len);
		buf_release(&b);
		buf_release(&b2);
		raft_msg_storage_release(&st);
	}
}

TEST(flags_and_empty_parts_round_trip)
{
	static const bool flags[4][2] = {
		{ false, false }, { true, false }, { false, true },
		{ true, true },
	};

	for (int i = 0; i < 4; i++) {
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct raft_msg m = msg_of(RAFT_MSG_VOTE), d = poison();
		struct buf b;

		m.reject = flags[i][0];
		m.transfer = flags[i][1];
		encode(&m, &b);
		T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
		same_msg(&m, &d);
		buf_release(&b);
		raft_msg_storage_release(&st);
	}
	/* APPEND without entries (a probe) and an empty snapshot. */
	{
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct raft_msg m = msg_of(RAFT_MSG_APPEND), d = poison();
		struct buf b;

		m.n_entries = 0;
		m.entries = NULL;
		encode(&m, &b);
		T_EQ(b.len, RAFT_CODEC_HDR + 4);
		T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
		T_EQ(d.n_entries, 0);
		T_ASSERT(d.entries == NULL);
		T_ASSERT(st.entries == NULL);	/* nothing allocated */
		buf_release(&b);

		m = msg_of(RAFT_MSG_SNAPSHOT);
		m.snapshot.len = 0;
		m.snapshot.data = NULL;
		m.snapshot.meta.conf.n = 0;
		encode(&m, &b);
		T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
		same_msg(&m, &d);
		T_ASSERT(d.snapshot.data == NULL);
		buf_release(&b);
		raft_msg_storage_release(&st);
	}
}

TEST(decoded_data_points_into_input)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct raft_msg m = msg_of(RAFT_MSG_APPEND), d = poison();
	struct buf b;

	setup();
	encode(&m, &b);
	T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
	T_ASSERT(d.entries == st.entries);
	T_ASSERT(d.entries[0].data == NULL);	/* NOOP, len 0 */
	T_ASSERT(d.entries[1].data > b.p && d.entries[1].data < b.p + b.len);
	T_ASSERT(d.entries[2].data + d.entries[2].len == b.p + b.len);
	buf_release(&b);

	m = msg_of(RAFT_MSG_SNAPSHOT);
	encode(&m, &b);
	T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
	T_ASSERT(d.snapshot.data + d.snapshot.len == b.p + b.len);
	buf_release(&b);
	raft_msg_storage_release(&st);
	T_ASSERT(st.entries == NULL);
	T_EQ(st.cap, 0);
	raft_msg_storage_release(&st);	/* twice is harmless */
}

TEST(storage_is_reused)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct raft_msg m = msg_of(RAFT_MSG_APPEND), d;
	struct buf big, small;

	setup();
	encode(&m, &big);
	m.n_entries = 1;
	encode(&m, &small);
	T_EQ(raft_msg_decode(big.p, big.len, &d, &st, NULL), 0);
	dsc_mem_reset_count();
	for (int i = 0; i < 10; i++) {
		T_EQ(raft_msg_decode(small.p, small.len, &d, &st, NULL), 0);
		T_EQ(d.n_entries, 1);
		T_EQ(raft_msg_decode(big.p, big.len, &d, &st, NULL), 0);
		T_EQ(d.n_entries, 3);
	}
	T_EQ(dsc_mem_calls(), 0);
	buf_release(&big);
	buf_release(&small);
	raft_msg_storage_release(&st);
}

TEST(encode_appends_to_buffer)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct raft_msg m = msg_of(RAFT_MSG_HEARTBEAT), d;
	struct buf b = BUF_INIT;

	T_EQ(buf_addstr(&b, "xy"), 0);
	T_EQ(raft_msg_encode(&m, &b, NULL), 0);
	T_EQ(b.len, 2 + RAFT_CODEC_HDR);
	T_EQ(b.p[b.len], 0);	/* buf's NUL invariant */
	T_EQ(raft_msg_decode(b.p + 2, b.len - 2, &d, &st, NULL), 0);
	same_msg(&m, &d);
	buf_release(&b);
	raft_msg_storage_release(&st);
}

/* ---- the exact bytes of version 1 ---------------------------------- */

TEST(golden_append_bytes)
{
	static const uint8_t data[] = { 'h', 'i' };
	static const struct raft_entry e = {
		.term = 2, .index = 6, .type = RAFT_ENTRY_NORMAL,
		.len = 2, .data = (uint8_t *)(uintptr_t)data,
	};
	static const uint8_t want[] = {
		0x01, 0x00, 0x02,		/* v1, APPEND, transfer */
		1, 0, 0, 0, 0, 0, 0, 0,			/* from */
		2, 0, 0, 0, 0, 0, 0, 0,			/* to */
		3, 0, 0, 0, 0, 0, 0, 0,			/* term */
		5, 0, 0, 0, 0, 0, 0, 0,			/* index */
		2, 0, 0, 0, 0, 0, 0, 0,			/* log_term */
		4, 0, 0, 0, 0, 0, 0, 0,			/* commit */
		0, 0, 0, 0, 0, 0, 0, 0,			/* hint */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* context */
		1, 0, 0, 0,				/* n_entries */
		2, 0, 0, 0, 0, 0, 0, 0,			/* entry term */
		6, 0, 0, 0, 0, 0, 0, 0,			/* entry index */
		0,					/* NORMAL */
		2, 0, 0, 0, 'h', 'i',			/* len, data */
	};
	struct raft_msg m = {
		.type = RAFT_MSG_APPEND, .transfer = true, .from = 1, .to = 2,
		.term = 3, .index = 5, .log_term = 2, .commit = 4,
		.context = 0x1122334455667788ull, .n_entries = 1, .entries = &e,
	};
	struct buf b;

	encode(&m, &b);
	T_EQ(b.len, sizeof(want));
	T_MEMEQ(b.p, want, sizeof(want));
	buf_release(&b);
}

TEST(golden_snapshot_tail)
{
	struct raft_msg m = { .type = RAFT_MSG_SNAPSHOT, .from = 1, .term = 1 };
	static const uint8_t d[] = { 0xee };
	static const uint8_t want_tail[] = {
		9, 0, 0, 0, 0, 0, 0, 0,		/* meta.index */
		1, 0, 0, 0, 0, 0, 0, 0,		/* meta.term */
		1, 0, 0, 0,			/* conf.n */
		5, 0, 0, 0, 0, 0, 0, 0, 1,	/* id 5, learner */
		1, 0, 0, 0, 0, 0, 0, 0, 0xee,	/* len, data */
	};
	struct buf b;

	m.snapshot.meta.index = 9;
	m.snapshot.meta.term = 1;
	m.snapshot.meta.conf.n = 1;
	m.snapshot.meta.conf.servers[0].id = 5;
	m.snapshot.meta.conf.servers[0].suffrage = RAFT_LEARNER;
	m.snapshot.len = 1;
	m.snapshot.data = d;
	encode(&m, &b);
	T_EQ(b.len, RAFT_CODEC_HDR + sizeof(want_tail));
	T_EQ(b.p[1], RAFT_MSG_SNAPSHOT);
	T_MEMEQ(b.p + RAFT_CODEC_HDR, want_tail, sizeof(want_tail));
	buf_release(&b);
}

/* ---- hostile input ------------------------------------------------- */

TEST(every_strict_prefix_is_rejected)
{
	for (uint8_t t = 0; t < RAFT_MSG_TYPE_MAX; t++) {
		struct raft_msg m = msg_of(t);
		struct buf b;

		encode(&m, &b);
		for (size_t n = 0; n < b.len; n++) {
			/* A copy of exactly n bytes, so ASan sees overreads. */
			uint8_t *p = malloc(n ? n : 1);

			T_ASSERT(p != NULL);
			memcpy(p, b.p, n);
			DECODE_ERROR(p, n, DSC_EPROTO);
			free(p);
		}
		buf_release(&b);
	}
}

TEST(trailing_bytes_are_rejected)
{
	for (uint8_t t = 0; t < RAFT_MSG_TYPE_MAX; t++) {
		struct raft_msg m = msg_of(t);
		struct buf b;

		encode(&m, &b);
		T_EQ(buf_addch(&b, 0), 0);
		DECODE_ERROR(b.p, b.len, DSC_EPROTO);
		buf_release(&b);
	}
}

/*
 * Every byte of every message type set to every other value: either the
 * result is a valid message, which must then re-encode to exactly the
 * mutated bytes, or it is rejected cleanly with @m untouched.
 */
TEST(every_byte_flip_decodes_or_is_rejected)
{
	unsigned long ok = 0, rejected = 0;

	for (uint8_t t = 0; t < RAFT_MSG_TYPE_MAX; t++) {
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct raft_msg m = msg_of(t);
		struct buf b;
		uint8_t *p;

		encode(&m, &b);
		p = malloc(b.len);
		T_ASSERT(p != NULL);
		for (size_t i = 0; i < b.len; i++) {
			for (int v = 1; v < 256; v++) {
				struct raft_msg d = poison();
				struct dsc_err err = DSC_ERR_INIT;
				struct buf re = BUF_INIT;
				int rc;

				memcpy(p, b.p, b.len);
				p[i] ^= (uint8_t)v;
				rc = raft_msg_decode(p, b.len, &d, &st, &err);
				if (rc != 0) {
					T_EQ(rc, DSC_EPROTO);
					T_ASSERT(is_poison(&d));
					rejected++;
					continue;
				}
				ok++;
				T_EQ(raft_msg_encode(&d, &re, NULL), 0);
				T_EQ(re.len, b.len);
				T_MEMEQ(re.p, p, b.len);
				buf_release(&re);
			}
		}
		free(p);
		buf_release(&b);
		raft_msg_storage_release(&st);
	}
	/* Both outcomes happen: header fields are free, framing is not. */
	T_ASSERT(ok > 0 && rejected > 0);
}

/* Builds a header for @type followed by @tail. */
static void
with_header(struct buf *b, uint8_t type, uint64_t index, const void *tail,
	    size_t n)
{
	struct raft_msg m = msg_of(RAFT_MSG_HEARTBEAT);

	*b = (struct buf)BUF_INIT;
	m.index = index;
	T_EQ(raft_msg_encode(&m, b, NULL), 0);
	b->p[1] = type;
	T_EQ(buf_add(b, tail, n), 0);
}

TEST(oversize_counts_are_rejected_before_allocating)
{
	static const uint32_t counts[] = {
		UINT32_MAX, RAFT_CODEC_MAX_ENTRIES + 1, 1000, 2,
	};

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		uint8_t tail[4 + RAFT_CODEC_ENTRY_HDR + 20] = { 0 };
		struct buf b;

		setup();
		/* One entry's worth of bytes, far fewer than claimed. */
		tail[0] = (uint8_t)counts[i];
		tail[1] = (uint8_t)(counts[i] >> 8);
		tail[2] = (uint8_t)(counts[i] >> 16);
		tail[3] = (uint8_t)(counts[i] >> 24);
		with_header(&b, RAFT_MSG_APPEND, 41, tail, sizeof(tail));
		dsc_mem_reset_count();
		DECODE_ERROR(b.p, b.len, DSC_EPROTO);
		T_EQ(dsc_mem_calls(), 0);
		buf_release(&b);
	}
}

TEST(limits_are_enforced)
{
	struct raft_msg m = msg_of(RAFT_MSG_APPEND);
	struct buf b;
	size_t at;

	/* Entry length over RAFT_MAX_ENTRY_SIZE, with the bytes present. */
	{
		struct raft_entry e = { .term = 1, .index = 42 };
		uint8_t *big = calloc(1, RAFT_MAX_ENTRY_SIZE + 1);

		T_ASSERT(big != NULL);
		e.len = RAFT_MAX_ENTRY_SIZE;
		e.data = big;
		m.entries = &e;
		m.n_entries = 1;
		encode(&m, &b);		/* the limit itself is fine */
		at = RAFT_CODEC_HDR + 4 + 17;
		T_EQ(get_u32le(b.p + at), RAFT_MAX_ENTRY_SIZE);
		b.p[at] += 1;		/* one byte more than allowed... */
		T_EQ(buf_addch(&b, 0), 0);	/* ...and present */
		DECODE_ERROR(b.p, b.len, DSC_EPROTO);
		e.len = RAFT_MAX_ENTRY_SIZE + 1;
		ENCODE_ERROR(&m, DSC_ETOOBIG);
		buf_release(&b);
		free(big);
	}
	/* Snapshot length over the limit. */
	m = msg_of(RAFT_MSG_SNAPSHOT);
	encode(&m, &b);
	at = b.len - sizeof(snap_data) - 8;
	T_EQ(get_u64le(b.p + at), sizeof(snap_data));
	b.p[at] = 0;
	b.p[at + 1] = 0;
	b.p[at + 2] = 0;
	b.p[at + 3] = (uint8_t)((RAFT_CODEC_MAX_SNAPSHOT >> 24) + 1);
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[at + 3] = 0;
	b.p[at + 7] = 0x80;	/* a length that would wrap size_t math */
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	buf_release(&b);
	m.snapshot.len = RAFT_CODEC_MAX_SNAPSHOT + 1;
	ENCODE_ERROR(&m, DSC_ETOOBIG);

	/* More servers than RAFT_MAX_SERVERS. */
	{
		uint8_t tail[8 + 8 + 4] = { 1, 0, 0, 0, 0, 0, 0, 0, 1 };

		tail[16] = RAFT_MAX_SERVERS + 1;
		with_header(&b, RAFT_MSG_SNAPSHOT, 0, tail, sizeof(tail));
		for (int i = 0; i < RAFT_MAX_SERVERS + 1; i++) {
			T_EQ(buf_add_u64le(&b, (uint64_t)i + 1), 0);
			T_EQ(buf_addch(&b, 0), 0);
		}
		T_EQ(buf_add_u64le(&b, 0), 0);
		DECODE_ERROR(b.p, b.len, DSC_EPROTO);
		buf_release(&b);
	}
	/* A whole message over RAFT_CODEC_MAX_MSG, refused before reading. */
	{
		uint8_t *huge = calloc(1, RAFT_CODEC_MAX_MSG + 1);

		T_ASSERT(huge != NULL);
		huge[0] = RAFT_CODEC_VERSION;
		DECODE_ERROR(huge, RAFT_CODEC_MAX_MSG + 1, DSC_EPROTO);
		free(huge);
	}
}

TEST(bad_headers_are_rejected)
{
	struct raft_msg m = msg_of(RAFT_MSG_VOTE);
	struct buf b;

	encode(&m, &b);
	b.p[0] = 0;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[0] = RAFT_CODEC_VERSION + 1;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[0] = RAFT_CODEC_VERSION;
	b.p[1] = RAFT_MSG_TYPE_MAX;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[1] = 0xff;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[1] = RAFT_MSG_VOTE;
	b.p[2] = 0x04;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[2] = 0x80;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[2] = 0x03;
	{
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct raft_msg d;

		T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
		T_ASSERT(d.reject && d.transfer);
	}
	/* A VOTE followed by an APPEND's tail is just trailing bytes. */
	T_EQ(buf_add_u32le(&b, 0), 0);
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	buf_release(&b);
}

TEST(bad_entries_are_rejected)
{
	struct raft_msg m = msg_of(RAFT_MSG_APPEND);
	const size_t e0 = RAFT_CODEC_HDR + 4;	/* first entry */
	struct buf b;

	encode(&m, &b);
	/* Index of the second entry not consecutive. */
	b.p[e0 + RAFT_CODEC_ENTRY_HDR + 8] ^= 1;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[e0 + RAFT_CODEC_ENTRY_HDR + 8] ^= 1;
	/* First entry must follow the message's index. */
	b.p[RAFT_CODEC_HDR - 8 * 5] ^= 1;	/* index field */
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[RAFT_CODEC_HDR - 8 * 5] ^= 1;
	/* Unknown entry type. */
	b.p[e0 + 16] = RAFT_ENTRY_TYPE_MAX;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[e0 + 16] = RAFT_ENTRY_NOOP;
	/* Entry length running past the end. */
	b.p[e0 + 17] = 1;
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	buf_release(&b);

	/* Index overflow: entries after UINT64_MAX. */
	{
		uint8_t tail[4] = { 1, 0, 0, 0 };

		with_header(&b, RAFT_MSG_APPEND, UINT64_MAX, tail,
		    sizeof(tail));
		T_EQ(buf_add_u64le(&b, 1), 0);
		T_EQ(buf_add_u64le(&b, 0), 0);
		T_EQ(buf_addch(&b, 0), 0);
		T_EQ(buf_add_u32le(&b, 0), 0);
		DECODE_ERROR(b.p, b.len, DSC_EPROTO);
		buf_release(&b);
	}
}

TEST(bad_configurations_are_rejected)
{
	struct raft_msg m = msg_of(RAFT_MSG_SNAPSHOT);
	const size_t s0 = RAFT_CODEC_HDR + 20;	/* first server */
	struct buf b;

	encode(&m, &b);
	b.p[s0 + 8] = 2;		/* unknown suffrage */
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[s0 + 8] = 0;
	b.p[s0] = 0;			/* id 0 */
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	b.p[s0] = 2;			/* same id as the second server */
	DECODE_ERROR(b.p, b.len, DSC_EPROTO);
	buf_release(&b);

	m.snapshot.meta.conf.servers[1].id = 1;
	ENCODE_ERROR(&m, DSC_EINVAL);
	m.snapshot.meta.conf.servers[1].id = 0;
	ENCODE_ERROR(&m, DSC_EINVAL);
	m.snapshot.meta.conf.servers[1].id = 2;
	m.snapshot.meta.conf.servers[1].suffrage = 7;
	ENCODE_ERROR(&m, DSC_EINVAL);
	m.snapshot.meta.conf.servers[1].suffrage = RAFT_VOTER;
	m.snapshot.meta.conf.n = RAFT_MAX_SERVERS + 1;
	ENCODE_ERROR(&m, DSC_EINVAL);
}

TEST(encoder_refuses_what_decoder_would)
{
	struct raft_entry e[2] = {
		{ .term = 1, .index = 42, .type = RAFT_ENTRY_NORMAL },
		{ .term = 1, .index = 44, .type = RAFT_ENTRY_NORMAL },
	};
	struct raft_msg m = msg_of(RAFT_MSG_APPEND);

	m.type = RAFT_MSG_TYPE_MAX;
	ENCODE_ERROR(&m, DSC_EINVAL);
	m.type = RAFT_MSG_HEARTBEAT;	/* entries on a non-APPEND */
	ENCODE_ERROR(&m, DSC_EINVAL);
	m.type = RAFT_MSG_APPEND;
	m.entries = e;
	m.n_entries = 2;		/* index 44 after 42 */
	ENCODE_ERROR(&m, DSC_EINVAL);
	e[1].index = 43;
	e[1].type = RAFT_ENTRY_TYPE_MAX;
	ENCODE_ERROR(&m, DSC_EINVAL);
	e[1].type = RAFT_ENTRY_NORMAL;
	e[1].len = 3;			/* data NULL */
	ENCODE_ERROR(&m, DSC_EINVAL);
	e[1].len = 0;
	m.n_entries = RAFT_CODEC_MAX_ENTRIES + 1;
	ENCODE_ERROR(&m, DSC_ETOOBIG);
	m.n_entries = 1;
	m.index = UINT64_MAX;
	ENCODE_ERROR(&m, DSC_EINVAL);
	m = msg_of(RAFT_MSG_SNAPSHOT);
	m.snapshot.data = NULL;
	ENCODE_ERROR(&m, DSC_EINVAL);
}

TEST(max_entries_round_trip)
{
	struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
	struct raft_msg m = msg_of(RAFT_MSG_APPEND), d;
	struct raft_entry *e;
	struct buf b;

	e = calloc(RAFT_CODEC_MAX_ENTRIES, sizeof(*e));
	T_ASSERT(e != NULL);
	for (size_t i = 0; i < RAFT_CODEC_MAX_ENTRIES; i++) {
		e[i].term = 7;
		e[i].index = m.index + 1 + i;
		e[i].type = RAFT_ENTRY_NOOP;
	}
	m.entries = e;
	m.n_entries = RAFT_CODEC_MAX_ENTRIES;
	encode(&m, &b);
	T_EQ(raft_msg_decode(b.p, b.len, &d, &st, NULL), 0);
	T_EQ(d.n_entries, RAFT_CODEC_MAX_ENTRIES);
	T_ASSERT(d.entries[RAFT_CODEC_MAX_ENTRIES - 1].index ==
		 m.index + RAFT_CODEC_MAX_ENTRIES);
	buf_release(&b);
	raft_msg_storage_release(&st);
	free(e);
}

/* ---- allocation failure -------------------------------------------- */

TEST(allocation_failure_everywhere)
{
	struct raft_msg m = msg_of(RAFT_MSG_APPEND);
	struct buf good;
	long n;

	setup();
	encode(&m, &good);
	/* Decode: the one allocation is the entries array. */
	for (n = 0;; n++) {
		struct raft_msg_storage st = RAFT_MSG_STORAGE_INIT;
		struct dsc_err err = DSC_ERR_INIT;
		struct raft_msg d = poison();
		int rc;

		dsc_mem_fail_after(n);
		rc = raft_msg_decode(good.p, good.len, &d, &st, &err);
		dsc_mem_fail_after(-1);
		raft_msg_storage_release(&st);
		if (rc == 0)
			break;
		T_EQ(rc, DSC_ENOMEM);
		T_EQ(err.code, DSC_ENOMEM);
		T_ASSERT(is_poison(&d));
	}
	T_EQ(n, 1);
	/* Encode: buffer unchanged on failure. */
	for (n = 0;; n++) {
		struct buf b = BUF_INIT;
		struct dsc_err err = DSC_ERR_INIT;
		int rc;

		dsc_mem_fail_after(n);
		rc = raft_msg_encode(&m, &b, &err);
		dsc_mem_fail_after(-1);
		if (rc == 0) {
			T_EQ(b.len, good.len);
			T_MEMEQ(b.p, good.p, good.len);
			buf_release(&b);
			break;
		}
		T_EQ(rc, DSC_ENOMEM);
		T_EQ(b.len, 0);
		T_ASSERT(b.p == NULL);
	}
	T_EQ(n, 1);
	buf_release(&good);
}

T_MAIN()

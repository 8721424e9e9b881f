/*
 * test_crc32c.c - CRC-32C against published vectors and a bitwise reference,
 * with the hardware and table paths compared over random buffers, lengths
 * and alignments.
 */
#include "crc32c.h"

#include "prng.h"
#include "t.h"

/* ---- reference ----------------------------------------------------- */

/* One bit at a time, straight from the definition: slow and obviously right. */
static uint32_t
crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n-- > 0) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82f63b78U & -(crc & 1));
	}
	return ~crc;
}

static void
fill(struct prng *r, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)prng_next(r);
}

#define CHECK_ALL(data, n, want)                                               \
	do {                                                                   \
		T_EQ(crc32c(0, (data), (n)), (want));                          \
		T_EQ(crc32c_sw(0, (data), (n)), (want));                       \
		T_EQ(crc_bitwise(0, (const uint8_t *)(data), (n)), (want));    \
	} while (0)

/* ---- published vectors --------------------------------------------- */

TEST(check_value)
{
	CHECK_ALL("123456789", 9, 0xe3069283U);
}

/* RFC 3720 (iSCSI), appendix B.4. */
TEST(rfc3720_vectors)
{
	uint8_t b[32];

	memset(b, 0, sizeof(b));
	CHECK_ALL(b, sizeof(b), 0x8a9136aaU);
	memset(b, 0xff, sizeof(b));
	CHECK_ALL(b, sizeof(b), 0x62a8ab43U);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	CHECK_ALL(b, sizeof(b), 0x46dd794eU);
	for (int i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	CHECK_ALL(b, sizeof(b), 0x113fdb5cU);
}

TEST(empty_input_keeps_crc)
{
	T_EQ(crc32c(0, "", 0), 0);
	T_EQ(crc32c_sw(0, "", 0), 0);
	T_EQ(crc32c(0x12345678, "", 0), 0x12345678);
	T_EQ(crc32c_sw(0x12345678, "", 0), 0x12345678);
}

/* ---- both paths, everywhere ---------------------------------------- */

TEST(hw_flag_is_stable)
{
	int h = crc32c_hw_available();

	T_ASSERT(h == 0 || h == 1);
	T_EQ(crc32c_hw_available(), h);
}

TEST(every_length_and_alignment)
{
	static uint8_t buf[16 + 300];
	struct prng r;

	prng_seed(&r, 1);
	fill(&r, buf, sizeof(buf));
	for (size_t off = 0; off < 16; off++)
		for (size_t n = 0; n <= 300; n++) {
			uint32_t want = crc_bitwise(0, buf + off, n);

			if (crc32c(0, buf + off, n) != want ||
			    crc32c_sw(0, buf + off, n) != want)
				T_FAIL("offset %zu length %zu", off, n);
		}
}

TEST(random_large_buffers)
{
	enum { MAX = 1 << 20 };
	struct prng r;
	uint8_t *buf = malloc(MAX + 8);

	T_ASSERT(buf != NULL);
	prng_seed(&r, 2);
	fill(&r, buf, MAX + 8);
	for (int i = 0; i < 20; i++) {
		size_t off = prng_below(&r, 8), n = prng_below(&r, MAX + 1);
		uint32_t seed = (uint32_t)prng_next(&r);
		uint32_t want = crc_bitwise(seed, buf + off, n);

		if (crc32c(seed, buf + off, n) != want ||
		    crc32c_sw(seed, buf + off, n) != want) {
			free(buf);
			T_FAIL("offset %zu length %zu", off, n);
		}
	}
	free(buf);
}

TEST(pieces_chain_to_the_whole)
{
	uint8_t buf[200];
	struct prng r;
	uint32_t whole;

	prng_seed(&r, 3);
	fill(&r, buf, sizeof(buf));
	whole = crc32c(0, buf, sizeof(buf));
	for (size_t cut = 0; cut <= sizeof(buf); cut++) {
		uint32_t a = crc32c(0, buf, cut);
		uint32_t b = crc32c_sw(0, buf, cut);

		T_EQ(crc32c(a, buf + cut, sizeof(buf) - cut), whole);
		T_EQ(crc32c_sw(b, buf + cut, sizeof(buf) - cut), whole);
	}
}

T_MAIN()

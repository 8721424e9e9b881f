/*
 * prng.c - xoshiro256** (Blackman and Vigna, 2018) seeded through splitmix64.
 *
 * The generator is specified bit for bit, uses only 64-bit unsigned
 * arithmetic and no floating point, so a seed gives the same sequence on
 * every platform and compiler: that is what lets the simulator replay a
 * failing run from SIM_SEED alone. splitmix64 spreads any 64-bit seed,
 * including 0, over the 256-bit state, which must not be all zero.
 */
#include "prng.h"

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z;

	z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void
prng_seed(struct prng *p, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		p->s[i] = splitmix64(&seed);
}

uint64_t
prng_next(struct prng *p)
{
	uint64_t *s = p->s;
	uint64_t result, t;

	result = rotl(s[1] * 5, 7) * 9;
	t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* The full 128-bit product of @a and @b: high half returned, low in @lo. */
static uint64_t
mul128(uint64_t a, uint64_t b, uint64_t *lo)
{
#ifdef __SIZEOF_INT128__
	unsigned __int128 m = (unsigned __int128)a * b;

	*lo = (uint64_t)m;
	return (uint64_t)(m >> 64);
#else
	uint64_t a0 = a & 0xffffffffU, a1 = a >> 32;
	uint64_t b0 = b & 0xffffffffU, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffU) + (p10 & 0xffffffffU);

	*lo = (mid << 32) | (p00 & 0xffffffffU);
	return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

/*
 * Lemire, "Fast Random Integer Generation in an Interval" (2019): the high
 * half of x * n is uniform over [0, n) once the few x whose low half falls
 * below 2^64 mod n are rejected. Rejection happens with probability < n/2^64,
 * and the division is skipped on the common path.
 */
uint64_t
prng_below(struct prng *p, uint64_t n)
{
	uint64_t hi, lo, threshold;

	if (n == 0)
		return 0;
	hi = mul128(prng_next(p), n, &lo);
	if (lo < n) {
		threshold = -n % n;	/* (2^64 - n) mod n == 2^64 mod n */
		while (lo < threshold)
			hi = mul128(prng_next(p), n, &lo);
	}
	return hi;
}

uint64_t
prng_range(struct prng *p, uint64_t lo, uint64_t hi)
{
	if (hi < lo)
		return lo;
	if (hi - lo == UINT64_MAX)
		return prng_next(p);
	return lo + prng_below(p, hi - lo + 1);
}

/*
 * Always draws, even for 0 and 1,000,000, so changing a fault probability in
 * the simulator does not shift which random number every later decision
 * gets.
 */
bool
prng_chance(struct prng *p, uint32_t per_million)
{
	return prng_below(p, 1000000) < per_million;
}

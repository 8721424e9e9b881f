/*
 * prng.h - a seeded pseudo-random generator (xoshiro256**, seeded through
 * splitmix64). Same seed, same sequence, on every platform: the Raft core and
 * the simulator take all their randomness from here so a seed replays a run.
 * Not for secrets: use libsodium's randombytes for those.
 */
#ifndef DSC_PRNG_H
#define DSC_PRNG_H

#include <stdbool.h>
#include <stdint.h>

struct prng {
	uint64_t s[4];
};

void prng_seed(struct prng *p, uint64_t seed);
uint64_t prng_next(struct prng *p);
/* Uniform in [0, @n); 0 when @n is 0. No modulo bias. */
uint64_t prng_below(struct prng *p, uint64_t n);
/* Uniform in [@lo, @hi] inclusive; @lo when @hi < @lo. */
uint64_t prng_range(struct prng *p, uint64_t lo, uint64_t hi);
/* True with probability @per_million / 1,000,000. */
bool prng_chance(struct prng *p, uint32_t per_million);

#endif

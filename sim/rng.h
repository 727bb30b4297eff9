/* sim/rng.h: seeded random streams.
 *
 * One run seed; every component draws from its own named stream derived
 * from (seed, name), so adding a draw in one stream never shifts another.
 * Names in use: "tiebreak", "link/<name>/<src>-><dst>/<fault>", "entropy"
 * (BoringSSL), "script" (Lua math.random), "node/<name>" (endpoints).
 *
 * Generator: xoshiro256** seeded through splitmix64 from seed ^ FNV-1a(name).
 * The sequence for a given (seed, name) is part of the determinism contract:
 * tests/test_rng.c pins it with fixed vectors. */
#ifndef TLSIM_SIM_RNG_H
#define TLSIM_SIM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_rng {
	uint64_t s[4];
} sim_rng;

/* sim_rng_init seeds |r| as the stream |name| of run |seed|. */
void sim_rng_init(sim_rng *r, uint64_t seed, const char *name);

/* sim_rng_next returns the next 64 random bits of |r|. */
static inline uint64_t sim_rng_next(sim_rng *r)
{
	uint64_t *s = r->s;
	uint64_t x = s[1] * 5;
	uint64_t result = ((x << 7) | (x >> 57)) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = (s[3] << 45) | (s[3] >> 19);
	return result;
}

/* sim_rng_double returns a uniform double in [0, 1) with 53 random bits. */
double sim_rng_double(sim_rng *r);

/* sim_rng_below returns a uniform integer in [0, n); n must be > 0.
 * Unbiased (Lemire's multiply-and-reject). */
uint64_t sim_rng_below(sim_rng *r, uint64_t n);

/* sim_rng_chance returns 1 with probability |p| (clamped to [0, 1]). A
 * probability of 0 consumes no draw, so a disabled fault leaves the stream
 * untouched. */
int sim_rng_chance(sim_rng *r, double p);

/* sim_rng_fill writes |len| random bytes to |out|. */
void sim_rng_fill(sim_rng *r, void *out, size_t len);

/* sim_fnv1a64 hashes |len| bytes (or a NUL-terminated string with
 * sim_fnv1a64_str). Used for stream names; stable across platforms. */
uint64_t sim_fnv1a64(const void *data, size_t len);
uint64_t sim_fnv1a64_str(const char *s);

#endif

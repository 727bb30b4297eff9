#include "sim/rng.h"

#include <string.h>

uint64_t sim_fnv1a64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t sim_fnv1a64_str(const char *s)
{
	return sim_fnv1a64(s, strlen(s));
}

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sim_rng_init(sim_rng *r, uint64_t seed, const char *name)
{
	uint64_t x = seed ^ sim_fnv1a64_str(name);
	/* Mix the seed once more so that seeds differing in one bit and
	 * names differing in one bit do not land on neighbouring states. */
	x = splitmix64(&x) ^ seed;
	for (int i = 0; i < 4; i++) {
		r->s[i] = splitmix64(&x);
	}
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) {
		r->s[0] = 1; /* xoshiro's one forbidden state */
	}
}

double sim_rng_double(sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t sim_rng_below(sim_rng *r, uint64_t n)
{
	unsigned __int128 m = (unsigned __int128)sim_rng_next(r) * n;
	uint64_t l = (uint64_t)m;
	if (l < n) {
		uint64_t t = -n % n;
		while (l < t) {
			m = (unsigned __int128)sim_rng_next(r) * n;
			l = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

int sim_rng_chance(sim_rng *r, double p)
{
	if (!(p > 0.0)) {
		return 0;
	}
	if (p >= 1.0) {
		return 1;
	}
	return sim_rng_double(r) < p;
}

void sim_rng_fill(sim_rng *r, void *out, size_t len)
{
	unsigned char *p = out;
	while (len >= 8) {
		uint64_t v = sim_rng_next(r);
		for (int i = 0; i < 8; i++) {
			p[i] = (unsigned char)(v >> (8 * i));
		}
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		uint64_t v = sim_rng_next(r);
		for (size_t i = 0; i < len; i++) {
			p[i] = (unsigned char)(v >> (8 * i));
		}
	}
}

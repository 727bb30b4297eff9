/* RNG streams: pinned vectors (computed by an independent Python
 * implementation of splitmix64 + xoshiro256**), stream independence, and
 * range/uniformity of the helpers. */
#include <math.h>

#include "sim/rng.h"
#include "tests/unit.h"

TEST(rng_xoshiro_reference)
{
	/* xoshiro256** from state {1, 2, 3, 4}: the generator's own
	 * reference sequence. */
	sim_rng r = {{1, 2, 3, 4}};
	CHECK_U64(sim_rng_next(&r), 0x2d00ULL);
	CHECK_U64(sim_rng_next(&r), 0x0ULL);
	CHECK_U64(sim_rng_next(&r), 0x5a007080ULL);
	CHECK_U64(sim_rng_next(&r), 0x10e0000000009d80ULL);
}

TEST(rng_stream_vectors)
{
	sim_rng r;
	sim_rng_init(&r, 1, "tiebreak");
	CHECK_U64(sim_rng_next(&r), 0x19db0619e3f2a0b1ULL);
	CHECK_U64(sim_rng_next(&r), 0x318a0544143ee8c6ULL);
	CHECK_U64(sim_rng_next(&r), 0xfe233b12d7484839ULL);
	sim_rng_init(&r, 42, "link/l/a->b/loss");
	CHECK_U64(sim_rng_next(&r), 0xa5965de577c39930ULL);
	CHECK_U64(sim_rng_next(&r), 0x6e85add6f1fe4806ULL);
	CHECK_U64(sim_rng_next(&r), 0x15e24a516f2c7d8aULL);
	sim_rng_init(&r, 0, "entropy");
	CHECK_U64(sim_rng_next(&r), 0x9865be5f24be08edULL);
	CHECK_U64(sim_rng_next(&r), 0xee365d92437526a0ULL);
	CHECK_U64(sim_rng_next(&r), 0x976df77c7f130342ULL);
}

TEST(rng_streams_independent)
{
	sim_rng a, b, a2;
	sim_rng_init(&a, 7, "link/x/a->b/loss");
	sim_rng_init(&b, 7, "link/x/b->a/loss");
	sim_rng_init(&a2, 7, "link/x/a->b/loss");
	int same = 0;
	for (int i = 0; i < 1000; i++) {
		/* Draws from b do not move a. */
		(void)sim_rng_next(&b);
		uint64_t x = sim_rng_next(&a), y = sim_rng_next(&a2);
		CHECK_U64(x, y);
		same += x == sim_rng_next(&b);
	}
	CHECK_INT(same, 0);
	/* Neighbouring seeds give unrelated streams. */
	sim_rng s1, s2;
	sim_rng_init(&s1, 1000, "script");
	sim_rng_init(&s2, 1001, "script");
	CHECK(sim_rng_next(&s1) != sim_rng_next(&s2));
}

TEST(rng_below_and_double)
{
	sim_rng r;
	sim_rng_init(&r, 3, "test");
	uint64_t counts[10] = {0};
	const int n = 100000;
	for (int i = 0; i < n; i++) {
		uint64_t v = sim_rng_below(&r, 10);
		REQUIRE(v < 10);
		counts[v]++;
		double d = sim_rng_double(&r);
		REQUIRE(d >= 0.0 && d < 1.0);
	}
	/* Each bucket is Binomial(n, 0.1): mean 10000, sd 94.9; a 5-sigma
	 * band is [9525, 10475]. */
	for (int i = 0; i < 10; i++) {
		CHECK(counts[i] >= 9525 && counts[i] <= 10475);
	}
	CHECK_U64(sim_rng_below(&r, 1), 0);
}

TEST(rng_chance_edges)
{
	sim_rng r, r2;
	sim_rng_init(&r, 5, "chance");
	r2 = r;
	/* p = 0 and p = 1 consume no draw. */
	CHECK_INT(sim_rng_chance(&r, 0.0), 0);
	CHECK_INT(sim_rng_chance(&r, 1.0), 1);
	CHECK_INT(sim_rng_chance(&r, NAN), 0);
	CHECK_U64(sim_rng_next(&r), sim_rng_next(&r2));
	int hits = 0;
	for (int i = 0; i < 100000; i++) {
		hits += sim_rng_chance(&r, 0.25);
	}
	/* Binomial(1e5, 0.25): sd 136.9, 5-sigma band 25000 +- 685. */
	CHECK(hits >= 24315 && hits <= 25685);
}

TEST(rng_fill)
{
	sim_rng a, b;
	sim_rng_init(&a, 9, "entropy");
	b = a;
	uint8_t buf[13];
	sim_rng_fill(&a, buf, sizeof(buf));
	uint64_t w0 = sim_rng_next(&b), w1 = sim_rng_next(&b);
	for (int i = 0; i < 8; i++) {
		CHECK_INT(buf[i], (uint8_t)(w0 >> (8 * i)));
	}
	for (int i = 0; i < 5; i++) {
		CHECK_INT(buf[8 + i], (uint8_t)(w1 >> (8 * i)));
	}
}

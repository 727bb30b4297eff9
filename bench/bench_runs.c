/* bench/bench_runs.c: a scenario's runs in one process, no fork, no
 * trace: what `tlsim sweep` would cost if starting a run were free. It
 * loads the scenario as `tlsim run` does and calls sim_lua_run for seeds
 * A..B (each run on its fresh thread, as always), then prints
 *
 *     runs N us_per_run X pass P
 *
 * on stdout. scripts/bench/sweep uses it as the in-process reference.
 *
 *   tlsim_bench_runs SCENARIO.lua --seeds A..B [--set KEY=VALUE]...
 *
 * Wall-clock time is read here only: bench/ is outside the simulator. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "sim/entropy.h"
#include "sim/err.h"
#include "sim/lua.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: tlsim_bench_runs SCENARIO.lua --seeds A..B "
			"[--set KEY=VALUE]...\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rc = sim_entropy_reexec(argc, argv);
	if (rc != 0) {
		fprintf(stderr, "tlsim_bench_runs: cannot re-execute: %s\n",
			sim_strerror(rc));
		return 3;
	}
	sim_lua_opts o = {.have_seed = 1, .verbosity = 0};
	unsigned long long a = 0, b = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
			if (sscanf(argv[++i], "%llu..%llu", &a, &b) != 2 ||
			    b < a) {
				return usage();
			}
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc &&
			   o.nset < SIM_LUA_MAX_SET) {
			char *kv = argv[++i], *eq = strchr(kv, '=');
			if (eq == NULL) {
				return usage();
			}
			*eq = '\0';
			o.set_key[o.nset] = kv;
			o.set_val[o.nset++] = eq + 1;
		} else if (argv[i][0] != '-' && o.path == NULL) {
			o.path = argv[i];
		} else {
			return usage();
		}
	}
	if (o.path == NULL || b == 0) {
		return usage();
	}
	FILE *f = fopen(o.path, "rb");
	static char src[1 << 20];
	size_t n = f ? fread(src, 1, sizeof(src) - 1, f) : 0;
	if (f == NULL || n == 0) {
		fprintf(stderr, "tlsim_bench_runs: cannot read %s\n", o.path);
		return 2;
	}
	fclose(f);
	uint8_t md[SHA256_DIGEST_LENGTH];
	char sha[65];
	SHA256((const uint8_t *)src, n, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		snprintf(sha + 2 * i, 3, "%02x", md[i]);
	}
	o.source = src;
	o.source_len = n;
	o.sha256 = sha;
	sim_lua_result r;
	unsigned long long pass = 0;
	double t0 = now_s();
	for (unsigned long long s = a; s <= b; s++) {
		o.seed = s;
		int st = sim_lua_run(&o, &r);
		if (st == SIM_STATUS_PASS) {
			pass++;
		} else if (st != SIM_STATUS_FAIL) {
			fprintf(stderr, "tlsim_bench_runs: seed %llu: %s\n", s,
				r.message);
			return 1;
		}
	}
	double dt = now_s() - t0;
	printf("runs %llu us_per_run %.1f pass %llu\n", b - a + 1,
	       dt * 1e6 / (double)(b - a + 1), pass);
	return 0;
}

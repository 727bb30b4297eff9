/* sim/sweep.h: `tlsim sweep`, one scenario over a range of seeds.
 *
 * Each seed runs in its own forked child, exactly as `tlsim run --seed S`
 * would run it, so a crash, a signal or an exit of one run is recorded
 * and the sweep goes on. Up to |jobs| children run at once; child slot K
 * writes its runs to its own trace, OUT.slotK.tmp next to the output, so
 * the writers never contend for a lock. At the end the slot traces are
 * merged into the output in seed order (sim/merge.h) and deleted: the
 * output's run ids and rows are the same whatever |jobs| is. A run that
 * left no run row (killed by a signal, exited 2 or 3 before committing)
 * gets one, with outcome `crash` (or `error` for exit 2) and the signal
 * or exit status as its reason. */
#ifndef TLSIM_SIM_SWEEP_H
#define TLSIM_SIM_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "sim/lua.h"

#define SIM_SWEEP_MAX_JOBS 256
#define SIM_SWEEP_MAX_RUNS 10000000u

typedef struct sim_sweep_opts {
	sim_lua_opts run; /* scenario, --set, limits; seed, trace and
			     verbosity are set per run */
	uint64_t seed_first, seed_last; /* inclusive */
	int jobs;                       /* 1..SIM_SWEEP_MAX_JOBS */
	/* Shard |shard_index| (0-based) of |shard_count|: only the seeds
	 * seed_first + shard_index + k * shard_count. 0/1: every seed. */
	uint64_t shard_index, shard_count;
	const char *trace_path;         /* NULL: a temporary trace, deleted */
	int quiet;                      /* no progress, no table */
} sim_sweep_opts;

/* sim_sweep runs the sweep, shows progress on stderr and prints the
 * closing table on stdout. Returns an exit status (enum sim_status): 0
 * every run passed, 1 a run did not, 2 the trace cannot be used, 3 an
 * internal error.
 *
 * Test hook: with the environment variable TLSIM_TEST_CRASH_SEED=N the
 * child for seed N raises SIGSEGV before running (tests/cli/sweep.sh). */
int sim_sweep(const sim_sweep_opts *o);

/* sim_sweep_reproduce writes "reproduce: tlsim run SCENARIO --seed S
 * [--set K=V]..." for |o| and |seed| to |f|, after |indent|. */
void sim_sweep_reproduce(FILE *f, const char *indent, const sim_lua_opts *o,
			 uint64_t seed);

#endif

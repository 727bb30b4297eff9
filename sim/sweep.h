/* sim/sweep.h: `tlsim sweep`, one scenario over a range of seeds.
 *
 * Each seed runs in its own forked child, exactly as `tlsim run --seed S`
 * would run it, so a crash, a signal or an exit of one run is recorded
 * and the sweep goes on (with runs_per_child > 1, a child makes that many
 * runs in a row: see there). Up to |jobs| children run at once. A child
 * reports its run over a pipe: outcome, reason, the messages of its
 * failed expectations and, when the sweep is traced, the whole run
 * spooled by sim_trace_open_spool (the child never opens the database).
 * The parent takes the reports in seed order (a window of at most
 * (8 + runs_per_child) * jobs + 8 finished runs waits for a slower
 * earlier one), counts
 * them into the closing table (memory bounded by the number of distinct
 * messages, not of runs) and, when traced, stores each run into the
 * output trace itself, in batches of runs per transaction
 * (sim_trace_store_spooled, which re-checks each run's digest against its
 * rows): the output's run ids and rows are the same whatever |jobs| is.
 * A run that left no report (killed by a signal, exited 2 or 3 before
 * finishing) is recorded, with outcome `crash` (or `error` for exit 2)
 * and the signal or exit status as its reason. A child dies with the
 * sweep (PR_SET_PDEATHSIG): killing the sweep process alone leaves no run
 * behind.
 *
 * A sweep that is killed keeps the runs of its committed batches, whole;
 * --resume runs the rest (sim_sweep_opts.resume).
 *
 * Cost: beyond its run a child pays for the fork, its exit and a page
 * fault per page it writes. The CLI's children allocate from a region of
 * their own (sim_sweep_opts.child_init = sim_arena_begin, sim/arena.h),
 * the parent sets up the time zone once before the first fork, and the
 * children report the certificate chains they had to make
 * (proto_pki_cache_export), which the parent imports so that the
 * children forked after it find them made. */
#ifndef TLSIM_SIM_SWEEP_H
#define TLSIM_SIM_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "sim/lua.h"

#define SIM_SWEEP_MAX_JOBS 256
#define SIM_SWEEP_MAX_RUNS 10000000u
#define SIM_SWEEP_MAX_QUERIES 32
#define SIM_SWEEP_MAX_RUNS_PER_CHILD 100000

typedef struct sim_sweep_opts {
	sim_lua_opts run; /* scenario, --set, limits; seed, trace and
			     verbosity are set per run */
	uint64_t seed_first, seed_last; /* inclusive */
	int jobs;                       /* 1..SIM_SWEEP_MAX_JOBS */
	/* Shard |shard_index| (0-based) of |shard_count|: only the seeds
	 * seed_first + shard_index + k * shard_count. 0/1: every seed. */
	uint64_t shard_index, shard_count;
	/* NULL: tracing off (no rows are made or stored), unless there are
	 * queries, which then run on a temporary trace, deleted. */
	const char *trace_path;
	/* --query files (sqlite3 scripts: lines starting with '.' are left
	 * out; every statement's first column is a run id), each run on the
	 * swept runs after the sweep. */
	const char *query[SIM_SWEEP_MAX_QUERIES];
	int nquery;
	int quiet; /* no progress, no table */
	/* --resume (needs trace_path): run only the seeds whose runs are
	 * not in the trace yet (same scenario SHA-256, same --set and caps, no
	 * schedule), and count the ones that are into the table, which is
	 * then the whole sweep's. */
	int resume;
	/* Runs a child makes one after another, each on a fresh thread
	 * with a fresh world, as a child per run would (0 or 1: a child per
	 * run, the default). More trade some isolation (a run that corrupts
	 * memory may change the runs after it in its child) for the fork,
	 * exit and page faults a child costs; a run that crashes is still
	 * recorded alone, and the runs after it get a new child. */
	uint64_t runs_per_child; /* 0..SIM_SWEEP_MAX_RUNS_PER_CHILD */
	/* Optional: called first thing in each child of one run, right
	 * after the fork (the CLI passes sim_arena_begin); its result is
	 * ignored. Not called with runs_per_child > 1. */
	int (*child_init)(void);
} sim_sweep_opts;

/* sim_sweep runs the sweep, shows progress on stderr and prints the
 * closing table on stdout. Returns an exit status (enum sim_status): 0
 * every run passed, 1 a run did not, 2 the trace or a query cannot be
 * used (also when writing the trace fails: disk full, locked by another
 * writer; the runs committed before are kept), 3 an internal error.
 *
 * Test hook: with the environment variable TLSIM_TEST_CRASH_SEED=N the
 * child for seed N raises SIGSEGV before running (tests/cli/sweep.sh). */
int sim_sweep(const sim_sweep_opts *o);

/* sim_sweep_reproduce writes "reproduce: tlsim run SCENARIO --seed S
 * [--set K=V]..." for |o| and |seed| to |f|, after |indent|. */
void sim_sweep_reproduce(FILE *f, const char *indent, const sim_lua_opts *o,
			 uint64_t seed);

#endif

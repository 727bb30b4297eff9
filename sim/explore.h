/* sim/explore.h: `tlsim explore`, orderings of one seed.
 *
 * A seed fixes the link's faults and, through the tie keys, the order of
 * simultaneous events. Exploration keeps the seed and varies only that
 * order, at the run's choice points (sim/sched.h):
 *  - random: a uniform pick at every choice point, one schedule per run;
 *  - pct: probabilistic concurrency testing (Burckhardt et al., ASPLOS
 *    2010) over chains (sim/sched.h): each chain gets a random priority,
 *    the highest-priority candidate runs, and at depth - 1 change points
 *    drawn among the baseline run's choice points the chain about to run
 *    drops below every other. A bug that needs d ordering constraints is
 *    found with probability at least 1 / (chains * points^(d-1)) per run;
 *  - exhaustive: every schedule that differs from the seed's in at most
 *    |depth| choices, breadth first (fewest deviations first), until the
 *    space or the run budget is exhausted (stateless model checking with a
 *    deviation bound).
 * Run 0 is the seed's own schedule (the baseline). Every run executes in a
 * forked child without tracing; each failing schedule is then run once
 * more into the trace, with its choices in run.schedule, so `tlsim replay
 * TRACE --run ID` reproduces it. */
#ifndef TLSIM_SIM_EXPLORE_H
#define TLSIM_SIM_EXPLORE_H

#include <stdint.h>

#include "sim/lua.h"
#include "sim/schedule.h"

#define SIM_EXPLORE_MAX_RUNS 10000000u

enum sim_explore_strategy {
	SIM_EXPLORE_RANDOM = 0,
	SIM_EXPLORE_PCT,
	SIM_EXPLORE_EXHAUSTIVE,
};

typedef struct sim_explore_opts {
	sim_lua_opts run; /* scenario, --seed, --set, limits */
	enum sim_explore_strategy strategy;
	uint64_t runs; /* schedules to try after the baseline */
	int depth;     /* pct: change points + 1; exhaustive: deviations */
	int jobs;
	const char *trace_path; /* where failing schedules are saved */
	int quiet;
	int stop_first; /* stop at the first failing schedule */
} sim_explore_opts;

/* sim_explore runs the exploration, shows progress on stderr and prints
 * the closing table on stdout. Returns an exit status (enum sim_status):
 * 0 every schedule passed, 1 one failed (saved to the trace), 2 input
 * error, 3 internal error. */
int sim_explore(const sim_explore_opts *o);

/* sim_explore_strategy_parse maps "random", "pct", "exhaustive"; -1 for
 * anything else. */
int sim_explore_strategy_parse(const char *name);

#endif

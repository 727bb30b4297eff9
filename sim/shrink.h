/* sim/shrink.h: `tlsim shrink`, the smallest schedule that still fails.
 *
 * The failing seed's run is recorded as a schedule (sim/schedule.h): every
 * random link fault it drew (losses, jitter delays, reorders, flipped
 * bits, duplicates) and every choice point where the seed's tie keys ran
 * an event before one scheduled earlier. Forced, that schedule replays the
 * run; shrinking removes decisions with delta debugging (Zeller and
 * Hildebrandt, ddmin) until removing any single one more makes the run
 * pass or fail differently. "The same way" means the same outcome and the
 * same first failed expectation (file, line and name; its detail may
 * change). Each candidate runs in its own forked child without tracing.
 *
 * The result is a schedule file that `tlsim run FILE` accepts: the
 * scenario, seed and parameters, `order fifo`, `faults forced` and the
 * decisions left. */
#ifndef TLSIM_SIM_SHRINK_H
#define TLSIM_SIM_SHRINK_H

#include <stdint.h>

#include "sim/lua.h"

typedef struct sim_shrink_opts {
	sim_lua_opts run;     /* scenario, --seed (have_seed), --set, limits */
	const char *out_path; /* the schedule file to write */
	int jobs;             /* candidates run at once, 1..256 */
	uint64_t max_runs;    /* budget of candidate runs */
	int quiet;
} sim_shrink_opts;

/* sim_shrink shrinks, writes the schedule file and prints the sizes
 * before and after. Returns an exit status (enum sim_status): 0 written
 * (and verified to fail the same way), 2 input error (e.g. the seed
 * passes), 3 internal error. */
int sim_shrink(const sim_shrink_opts *o);

#endif

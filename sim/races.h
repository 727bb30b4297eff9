/* sim/races.h: `tlsim races`, which ordering separates failing runs from
 * passing ones.
 *
 * For every run of a trace (a sweep's, an exploration's), the view
 * op_concurrent (docs/trace.md "Happens-before") lists the pairs of
 * operations on one endpoint, enqueued at the same virtual time, that no
 * happens-before path orders, and which of the two ran first. Runs are
 * split into failing and passing (by outcome, by a failed expectation
 * whose name contains a text, or by a race query returning rows for the
 * run, sim/query.h). For each pair of operation types and each
 * order ("shutdown before validation_complete on client"), the share of
 * failing runs with that order (among the failing runs where the pair
 * occurs) minus the share of passing runs with it ranks the orders: at the
 * top, the one that best separates the groups, with counts and a seed of
 * each kind to replay. */
#ifndef TLSIM_SIM_RACES_H
#define TLSIM_SIM_RACES_H

#include <stdint.h>
#include <stdio.h>

typedef struct sim_races_opts {
	const char *path;
	int64_t first_run, last_run; /* 0, 0: every run */
	const char *check;           /* NULL: failing = outcome is not pass */
	const char *query;           /* a race query file: failing = the runs
					it returns; overrides check */
	int top;                     /* lines shown */
} sim_races_opts;

/* sim_races prints the ranking to |f|. Returns 0, or a SIM_E* code with a
 * one-line message in |err| (not a trace, no runs, a trace without
 * causality columns, no failing or no passing run). */
int sim_races(const sim_races_opts *o, FILE *f, char *err, size_t errlen);

#endif

/* sim/rowdiff.h: the first row where two recorded runs differ.
 *
 * Used by `tlsim replay` when a re-run's digest differs from the recorded
 * one, and meant for `tlsim diff`. Runs are compared table by table in the
 * digest's order (node, event, op, packet, tls, check, log), rows in seq
 * order, every column but the run id. */
#ifndef TLSIM_SIM_ROWDIFF_H
#define TLSIM_SIM_ROWDIFF_H

#include <stddef.h>
#include <stdint.h>

/* sim_rowdiff compares run |a_run| of the trace at |a_path| with run
 * |b_run| of |b_path| (both opened read-only). Returns 0 if every row is
 * equal, 1 if they differ, with "TABLE seq N: COLUMN: A | B" and both
 * rows' text in |out|; or a negative SIM_E* code with a message in |out|. */
int sim_rowdiff(const char *a_path, int64_t a_run, const char *b_path,
		int64_t b_run, char *out, size_t outlen);

#endif

/* sim/merge.h: copying runs from trace to trace (`tlsim merge`, and the
 * last step of `tlsim sweep`).
 *
 * A run is copied with its run row and every row of every table that has
 * a `run` column, under a new run id in the output (the largest id + 1),
 * in one transaction. The digest leaves out the run id, so a copied run
 * keeps its digest; sim_merge_verify proves it by recomputing each copied
 * run's digest from the output (sim_trace_digest_db). */
#ifndef TLSIM_SIM_MERGE_H
#define TLSIM_SIM_MERGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sim_merge sim_merge;

/* sim_merge_new opens (or creates) the output trace |out| with the checks
 * of sim_trace_open. Returns 0 or a SIM_E* code with a one-line reason,
 * naming the file, in |err|. */
int sim_merge_new(const char *out, sim_merge **m, char *err, size_t errlen);

/* sim_merge_del closes |m|. sim_merge_del(NULL) is a no-op. */
void sim_merge_del(sim_merge *m);

/* sim_merge_check_input checks that |in| is a trace sim_trace_open would
 * accept (exists, a tlsim trace, schema this build reads, not locked),
 * with the same one-line messages, and that it is not |m|'s output.
 * Returns 0 or a SIM_E* code. */
int sim_merge_check_input(sim_merge *m, const char *in, char *err,
			  size_t errlen);

/* sim_merge_runs copies the runs |ids| (|n| of them, in that order; ids
 * NULL: every run of |in| in id order) from |in| to the output, each in
 * its own transaction. |*copied| (may be NULL) gets how many were copied.
 * Returns 0 or a SIM_E* code; the runs copied before a failure stay. */
int sim_merge_runs(sim_merge *m, const char *in, const int64_t *ids, size_t n,
		   size_t *copied, char *err, size_t errlen);

/* sim_merge_first_id and sim_merge_last_id return the output ids of the
 * first and last run copied through |m| (0 before any). */
int64_t sim_merge_first_id(const sim_merge *m);
int64_t sim_merge_last_id(const sim_merge *m);

/* sim_merge_verify recomputes the digest of every run copied through |m|
 * from the output and compares it with the digest the input stored.
 * Runs stored with rows off cannot be recomputed and are skipped. Returns
 * 0, or SIM_ECORRUPT naming the first mismatching run. */
int sim_merge_verify(sim_merge *m, char *err, size_t errlen);

#endif

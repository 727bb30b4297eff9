/* sim/rowdiff.h: the first row where two recorded runs differ.
 *
 * Used by `tlsim diff` and by `tlsim replay` when a re-run's digest
 * differs from the recorded one. */
#ifndef TLSIM_SIM_ROWDIFF_H
#define TLSIM_SIM_ROWDIFF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* sim_rowdiff_timeline compares the two runs as they happened: the rows of
 * every table merged into one timeline ordered by (virtual time, table in
 * the order node, event, op, packet, tls, check, log, seq), where a
 * packet's time is its send time and node rows come first. It writes to
 * |f|, and returns 0 when the timelines are equal ("no difference"), 1 at
 * the first row that differs: its time and position, the |context| rows
 * before it (equal in both), both rows with the differing column, and
 * what the row belongs to (the operation, packet, endpoint), or a negative
 * SIM_E* code with a message in |err|. |a_label| and |b_label| name the
 * runs in the output. Columns named in |ignore| (|nignore| of them, e.g.
 * "data" to compare two seeds' runs without their ciphertext) are not
 * compared. */
int sim_rowdiff_timeline(const char *a_path, int64_t a_run,
			 const char *b_path, int64_t b_run,
			 const char *a_label, const char *b_label, int context,
			 const char *const *ignore, int nignore, FILE *f,
			 char *err, size_t errlen);

#endif

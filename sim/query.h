/* sim/query.h: race queries, the .sql files users keep in scripts/queries/.
 *
 * A query file is what `sqlite3 trace.db < FILE` runs: SQL statements and
 * sqlite3 dot-commands (".headers on"). tlsim reads it with the dot-command
 * lines blanked (so SQLite's error positions still match the file), and
 * runs each statement read-only; the first column of every statement must
 * be the run id, named run. A run "matches" when some statement returns a
 * row for it. `tlsim sweep --query` counts the matching runs; `tlsim races
 * --query` calls them the failing ones. */
#ifndef TLSIM_SIM_QUERY_H
#define TLSIM_SIM_QUERY_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

/* SIM_QUERY_BYTES_MAX: a query file larger than this is refused. */
#define SIM_QUERY_BYTES_MAX ((size_t)1 << 20)

typedef struct sim_query {
	const char *path; /* as given; not owned */
	const char *who;  /* the message prefix, e.g. "tlsim sweep" */
	char *sql;        /* owned */
} sim_query;

/* sim_query_load reads |path|. Returns 0, SIM_ENOMEM, or SIM_EINVAL (it
 * cannot be read, or is too large) with a one-line message in |err|
 * ("WHO: --query PATH: why"). */
int sim_query_load(sim_query *q, const char *path, const char *who,
		   char *err, size_t errlen);

/* sim_query_free frees what sim_query_load allocated; safe on a zeroed or
 * already freed query. */
void sim_query_free(sim_query *q);

/* sim_query_check prepares every statement of |q| on |db| without running
 * it: SQL errors, statements that write, a first column not named run, or
 * no statement at all give SIM_EINVAL and a message naming the file. */
int sim_query_check(sqlite3 *db, const sim_query *q, char *err,
		    size_t errlen);

/* sim_query_match runs |q| on |db| and sets bit (id - lo) of |bits| for
 * every run id in [lo, hi] some statement returns. Returns 0 or SIM_EINVAL
 * (as sim_query_check, or a statement failed while running). */
int sim_query_match(sqlite3 *db, const sim_query *q, int64_t lo, int64_t hi,
		    uint8_t *bits, char *err, size_t errlen);

#endif

/* sim/races.c: `tlsim races`. */
#include "sim/races.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "sim/query.h"
#include "sim/trace.h"

/* The groups: bad = 1 for a failing run. */
static const char RUNS_BY_OUTCOME[] =
	"CREATE TEMP TABLE races_run AS SELECT id AS run, seed,"
	" (outcome <> 'pass') AS bad FROM run WHERE ?1 = 0 OR id BETWEEN ?1"
	" AND ?2";

static const char RUNS_BY_CHECK[] =
	"CREATE TEMP TABLE races_run AS SELECT r.id AS run, r.seed,"
	" EXISTS (SELECT 1 FROM \"check\" c WHERE c.run = r.id AND c.ok = 0"
	" AND instr(c.message, ?3) > 0) AS bad FROM run r WHERE ?1 = 0 OR"
	" r.id BETWEEN ?1 AND ?2";

/* One row per (run, endpoint, unordered pair of types, type that ran
 * first), then the ranking. */
static const char RANK[] =
	"WITH per AS (SELECT DISTINCT c.run, c.node, min(c.a_type, c.b_type)"
	" AS x, max(c.a_type, c.b_type) AS y, c.first_type AS first, r.bad,"
	" r.seed FROM temp.op_concurrent c JOIN races_run r ON r.run = c.run"
	" WHERE c.a_type <> c.b_type),"
	" occ AS (SELECT node, x, y, sum(bad) AS nbad, count(*) - sum(bad)"
	" AS ngood FROM (SELECT DISTINCT run, node, x, y, bad FROM per) GROUP"
	" BY node, x, y),"
	" ord AS (SELECT node, x, y, first, sum(bad) AS bad_with,"
	" count(*) - sum(bad) AS good_with, min(CASE WHEN bad THEN run END)"
	" AS bad_run, min(CASE WHEN NOT bad THEN run END) AS good_run FROM"
	" per GROUP BY node, x, y, first)"
	" SELECT o.node, o.first, CASE WHEN o.first = o.x THEN o.y ELSE o.x"
	" END AS second, o.bad_with, c.nbad, o.good_with, c.ngood,"
	" (SELECT seed FROM races_run WHERE run = o.bad_run),"
	" (SELECT seed FROM races_run WHERE run = (SELECT min(p.run) FROM"
	" per p WHERE p.node = o.node AND p.x = o.x AND p.y = o.y AND NOT"
	" p.bad AND p.first <> o.first)), o.bad_run,"
	" (SELECT min(p.run) FROM per p WHERE p.node = o.node AND p.x = o.x"
	" AND p.y = o.y AND NOT p.bad AND p.first <> o.first),"
	" (CASE WHEN c.nbad > 0 THEN 1.0 * o.bad_with / c.nbad ELSE 0 END) -"
	" (CASE WHEN c.ngood > 0 THEN 1.0 * o.good_with / c.ngood ELSE 0 END)"
	" AS score FROM ord o JOIN occ c USING (node, x, y)"
	" ORDER BY score DESC, o.bad_with DESC, o.node, o.first, second";

static int fail_sql(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
	return SIM_EIO;
}

/* mark_by_query: failing = the runs |o->query| returns rows for. */
static int mark_by_query(sqlite3 *db, const sim_races_opts *o, char *err,
			 size_t errlen)
{
	sim_query q = {0};
	sqlite3_stmt *st = NULL;
	int64_t lo = 0, hi = -1;
	int rc = sim_query_load(&q, o->query, "tlsim races", err, errlen);
	if (rc != 0) {
		return rc;
	}
	if (sqlite3_prepare_v2(db,
			       "SELECT min(run), max(run) FROM races_run", -1,
			       &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		lo = sqlite3_column_int64(st, 0);
		hi = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	uint8_t *bits = NULL;
	if (hi >= lo) {
		bits = calloc((size_t)((hi - lo) / 8 + 1), 1);
		rc = bits == NULL ? SIM_ENOMEM
				  : sim_query_match(db, &q, lo, hi, bits, err,
						    errlen);
		if (rc == SIM_ENOMEM) {
			snprintf(err, errlen, "out of memory");
		}
	}
	if (rc == 0 &&
	    (sqlite3_exec(db, "UPDATE races_run SET bad = 0", NULL, NULL,
			  NULL) != SQLITE_OK ||
	     sqlite3_prepare_v2(db,
				"UPDATE races_run SET bad = 1 WHERE run = ?1",
				-1, &st, NULL) != SQLITE_OK)) {
		rc = fail_sql(db, o->path, err, errlen);
	}
	for (int64_t id = lo; rc == 0 && id <= hi; id++) {
		uint64_t k = (uint64_t)(id - lo);
		if (bits[k / 8] & (1u << (k % 8))) {
			sqlite3_bind_int64(st, 1, id);
			if (sqlite3_step(st) != SQLITE_DONE) {
				rc = fail_sql(db, o->path, err, errlen);
			}
			sqlite3_reset(st);
		}
	}
	sqlite3_finalize(st);
	free(bits);
	sim_query_free(&q);
	return rc;
}

static double pct(int64_t a, int64_t b)
{
	return b > 0 ? 100.0 * (double)a / (double)b : 0.0;
}

int sim_races(const sim_races_opts *o, FILE *f, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int empty = 0;
	int rc = sim_trace_open_readonly(o->path, &db, &empty, err, errlen);
	if (rc != 0) {
		return rc;
	}
	sqlite3_stmt *st = NULL;
	int64_t counts[2] = {0, 0};
	int has_cols = !empty &&
		       sqlite3_prepare_v2(db, "SELECT event FROM op LIMIT 0",
					  -1, &st, NULL) == SQLITE_OK;
	sqlite3_finalize(st);
	st = NULL;
	if (empty || !has_cols) {
		snprintf(err, errlen,
			 empty ? "%s: the trace holds no runs"
			       : "%s: the trace has no causality columns "
				 "(written before schema 3); run the sweep "
				 "again with this tlsim",
			 o->path);
		sqlite3_close(db);
		return empty ? SIM_EINVAL : SIM_ESCHEMA;
	}
	/* Temp objects only: the trace is never written. */
	rc = sim_trace_causality_create(db, 1);
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(db,
					o->check ? RUNS_BY_CHECK
						 : RUNS_BY_OUTCOME,
					-1, &st, NULL);
	}
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, o->first_run);
		sqlite3_bind_int64(st, 2, o->last_run);
		if (o->check) {
			sqlite3_bind_text(st, 3, o->check, -1, SQLITE_STATIC);
		}
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK
						     : sqlite3_errcode(db);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_OK && o->query != NULL) {
		rc = mark_by_query(db, o, err, errlen);
		if (rc != 0) {
			sqlite3_close(db);
			return rc;
		}
	}
	if (rc == SQLITE_OK &&
	    (rc = sqlite3_prepare_v2(db,
				     "SELECT bad, count(*) FROM races_run "
				     "GROUP BY bad",
				     -1, &st, NULL)) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			counts[sqlite3_column_int(st, 0) ? 1 : 0] =
				sqlite3_column_int64(st, 1);
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_OK) {
		rc = fail_sql(db, o->path, err, errlen);
		sqlite3_close(db);
		return rc;
	}
	if (counts[0] == 0 || counts[1] == 0) {
		snprintf(err, errlen,
			 "%s: %lld failing and %lld passing runs%s; races "
			 "compares the two groups, so it needs some of each",
			 o->path, (long long)counts[1], (long long)counts[0],
			 o->query   ? " (by --query)"
			 : o->check ? " (by --check)"
				    : "");
		sqlite3_close(db);
		return SIM_EINVAL;
	}
	fprintf(f,
		"%s: %lld failing and %lld passing runs (%s)\n"
		"orders of concurrent operations (same endpoint, same virtual "
		"time, no happens-before path),\nby how well they separate "
		"failing from passing runs:\n",
		o->path, (long long)counts[1], (long long)counts[0],
		o->query   ? "failing: --query returns rows for the run"
		: o->check ? "failing: an expectation matching --check failed"
			   : "failing: outcome is not pass");
	rc = sqlite3_prepare_v2(db, RANK, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = fail_sql(db, o->path, err, errlen);
		sqlite3_close(db);
		return rc;
	}
	int shown = 0;
	while (shown < o->top && sqlite3_step(st) == SQLITE_ROW) {
		const char *node = (const char *)sqlite3_column_text(st, 0);
		const char *first = (const char *)sqlite3_column_text(st, 1);
		const char *second = (const char *)sqlite3_column_text(st, 2);
		int64_t bw = sqlite3_column_int64(st, 3);
		int64_t nb = sqlite3_column_int64(st, 4);
		int64_t gw = sqlite3_column_int64(st, 5);
		int64_t ng = sqlite3_column_int64(st, 6);
		if (sqlite3_column_double(st, 11) <= 0.0) {
			break; /* the rest separate nothing (or mirror above) */
		}
		shown++;
		fprintf(f,
			"%2d. %s before %s on %s: %.0f%% of failing runs "
			"(%lld/%lld), %.0f%% of passing (%lld/%lld)\n",
			shown, first, second, node, pct(bw, nb), (long long)bw,
			(long long)nb, pct(gw, ng), (long long)gw,
			(long long)ng);
		if (sqlite3_column_type(st, 9) != SQLITE_NULL) {
			fprintf(f, "    failing: seed %lld (run %lld)",
				(long long)sqlite3_column_int64(st, 7),
				(long long)sqlite3_column_int64(st, 9));
			if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
				fprintf(f,
					"; passing with %s first: seed %lld "
					"(run %lld)",
					second,
					(long long)sqlite3_column_int64(st, 8),
					(long long)sqlite3_column_int64(st,
									10));
			}
			fprintf(f, "\n");
		}
	}
	if (shown == 0) {
		fprintf(f, "  (no order of concurrent operations is more "
			   "common in failing runs than in passing ones)\n");
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}

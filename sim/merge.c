/* sim/merge.c: copying runs between traces. */
#include "sim/merge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "sim/err.h"
#include "sim/trace.h"

#define BUSY_TIMEOUT_MS 2000
#define MAX_TABLES 32
#define MAX_SQL 4096
/* Runs one merge may copy: the verify list is kept in memory. */
#define MAX_RUNS 100000000u

typedef struct copied {
	int64_t id;
	char digest[65];
} copied;

struct sim_merge {
	char *out;
	struct stat out_st;
	sqlite3 *db;
	char *attached; /* the input attached as "src"; NULL none */
	int ntab;
	sqlite3_stmt *copy_run, *copy[MAX_TABLES], *get_digest;
	copied *runs;
	size_t nruns, cap;
};

static int fail(char *err, size_t n, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return code;
}

static int sql_fail(sim_merge *m, char *err, size_t n, const char *what)
{
	int rc = sqlite3_errcode(m->db);
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		return fail(err, n, SIM_EBUSY, "%s: locked by another writer",
			    m->out);
	}
	if (rc == SQLITE_FULL) {
		return fail(err, n, SIM_EFULL, "disk full writing %s", m->out);
	}
	return fail(err, n, SIM_EIO, "%s: %s: %s", m->out, what,
		    sqlite3_errmsg(m->db));
}

int sim_merge_new(const char *out, sim_merge **mp, char *err, size_t errlen)
{
	*mp = NULL;
	sim_trace *t = NULL;
	int rc = sim_trace_open(out, &t, err, errlen);
	sim_trace_close(t);
	if (rc != 0) {
		return rc;
	}
	sim_merge *m = calloc(1, sizeof(*m));
	if (m == NULL || (m->out = strdup(out)) == NULL) {
		free(m);
		return fail(err, errlen, SIM_ENOMEM, "out of memory");
	}
	if (stat(out, &m->out_st) != 0) {
		rc = fail(err, errlen, SIM_EIO, "%s: %s", out, strerror(errno));
		sim_merge_del(m);
		return rc;
	}
	if (sqlite3_open_v2(out, &m->db, SQLITE_OPEN_READWRITE, NULL) !=
		SQLITE_OK ||
	    sqlite3_exec(m->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
			 NULL) != SQLITE_OK) {
		rc = sql_fail(m, err, errlen, "opening trace");
		sim_merge_del(m);
		return rc;
	}
	sqlite3_busy_timeout(m->db, BUSY_TIMEOUT_MS);
	*mp = m;
	return 0;
}

static void detach(sim_merge *m)
{
	sqlite3_finalize(m->copy_run);
	sqlite3_finalize(m->get_digest);
	for (int i = 0; i < m->ntab; i++) {
		sqlite3_finalize(m->copy[i]);
	}
	m->copy_run = m->get_digest = NULL;
	m->ntab = 0;
	if (m->attached != NULL) {
		sqlite3_exec(m->db, "DETACH src", NULL, NULL, NULL);
		free(m->attached);
		m->attached = NULL;
	}
}

void sim_merge_del(sim_merge *m)
{
	if (m == NULL) {
		return;
	}
	detach(m);
	sqlite3_close(m->db);
	free(m->runs);
	free(m->out);
	free(m);
}

int sim_merge_check_input(sim_merge *m, const char *in, char *err,
			  size_t errlen)
{
	struct stat st;
	if (stat(in, &st) != 0 || (S_ISREG(st.st_mode) && st.st_size == 0)) {
		return fail(err, errlen, SIM_ENOENT,
			    "%s: no such trace (missing or empty)", in);
	}
	if (st.st_dev == m->out_st.st_dev && st.st_ino == m->out_st.st_ino) {
		return fail(err, errlen, SIM_EINVAL,
			    "%s: is the output trace; cannot merge a trace "
			    "into itself",
			    in);
	}
	sim_trace *t = NULL;
	int rc = sim_trace_open(in, &t, err, errlen);
	sim_trace_close(t);
	return rc;
}

/* col_list writes the columns of table |name| in schema "db" to |buf|,
 * comma-separated, with |subst| in place of column |skip| (or the column
 * left out with subst NULL). Returns the column count or -1. */
static int col_list(sqlite3 *db, const char *schema, const char *name,
		    const char *skip, const char *subst, char *buf, size_t n)
{
	char sql[256];
	snprintf(sql, sizeof(sql), "PRAGMA %s.table_info(\"%s\")", schema,
		 name);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		return -1;
	}
	size_t k = 0;
	int cols = 0;
	buf[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW && k < n) {
		const char *c = (const char *)sqlite3_column_text(st, 1);
		int is_skip = strcmp(c, skip) == 0;
		if (is_skip && subst == NULL) {
			continue;
		}
		k += (size_t)snprintf(buf + k, n - k, "%s%s", cols ? ", " : "",
				      is_skip ? subst : c);
		cols++;
	}
	sqlite3_finalize(st);
	return k < n ? cols : -1;
}

static int attach(sim_merge *m, const char *in, char *err, size_t errlen)
{
	if (m->attached != NULL && strcmp(m->attached, in) == 0) {
		return 0;
	}
	detach(m);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(m->db, "ATTACH ?1 AS src", -1, &st, NULL) !=
		SQLITE_OK ||
	    sqlite3_bind_text(st, 1, in, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		return fail(err, errlen, SIM_EIO, "%s: cannot attach: %s", in,
			    sqlite3_errmsg(m->db));
	}
	sqlite3_finalize(st);
	if ((m->attached = strdup(in)) == NULL) {
		return fail(err, errlen, SIM_ENOMEM, "out of memory");
	}
	int v[2] = {-1, -1};
	const char *vq[2] = {"PRAGMA main.user_version",
			     "PRAGMA src.user_version"};
	for (int i = 0; i < 2; i++) {
		if (sqlite3_prepare_v2(m->db, vq[i], -1, &st, NULL) ==
			SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			v[i] = sqlite3_column_int(st, 0);
		}
		sqlite3_finalize(st);
	}
	if (v[0] != v[1]) {
		return fail(err, errlen, SIM_ESCHEMA,
			    "%s: trace schema version %d differs from %s's "
			    "(%d); cannot merge",
			    in, v[1], m->out, v[0]);
	}

	char cols[MAX_SQL / 2], sql[2 * MAX_SQL];
	if (col_list(m->db, "main", "run", "id", NULL, cols, sizeof(cols)) <
	    1) {
		return sql_fail(m, err, errlen, "reading the schema");
	}
	snprintf(sql, sizeof(sql),
		 "INSERT INTO main.run(%s) SELECT %s FROM src.run WHERE id = "
		 "?1",
		 cols, cols);
	if (sqlite3_prepare_v2(m->db, sql, -1, &m->copy_run, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(m->db,
			       "SELECT digest FROM src.run WHERE id = ?1", -1,
			       &m->get_digest, NULL) != SQLITE_OK) {
		return sql_fail(m, err, errlen, "preparing the copy");
	}

	/* Every table with a run column, in name order. */
	if (sqlite3_prepare_v2(m->db,
			       "SELECT m.name FROM main.sqlite_master m WHERE "
			       "m.type = 'table' AND m.name <> 'run' AND "
			       "EXISTS (SELECT 1 FROM "
			       "pragma_table_info(m.name, 'main') p WHERE "
			       "p.name = 'run') ORDER BY m.name",
			       -1, &st, NULL) != SQLITE_OK) {
		return sql_fail(m, err, errlen, "reading the schema");
	}
	int rc = 0;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		char src_cols[MAX_SQL / 2];
		if (m->ntab == MAX_TABLES ||
		    col_list(m->db, "main", name, "run", "run", cols,
			     sizeof(cols)) < 1 ||
		    col_list(m->db, "main", name, "run", "?1", src_cols,
			     sizeof(src_cols)) < 1) {
			rc = sql_fail(m, err, errlen, "reading the schema");
			break;
		}
		snprintf(sql, sizeof(sql),
			 "INSERT INTO main.\"%s\"(%s) SELECT %s FROM "
			 "src.\"%s\" WHERE run = ?2 ORDER BY seq",
			 name, cols, src_cols, name);
		if (sqlite3_prepare_v2(m->db, sql, -1, &m->copy[m->ntab],
				       NULL) != SQLITE_OK) {
			rc = fail(err, errlen, SIM_ECORRUPT,
				  "%s: table %s does not match %s's: %s", in,
				  name, m->out, sqlite3_errmsg(m->db));
			break;
		}
		m->ntab++;
	}
	sqlite3_finalize(st);
	return rc;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static int copy_one(sim_merge *m, const char *in, int64_t id, char *err,
		    size_t errlen)
{
	if (m->nruns == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		copied *p =
		    cap <= MAX_RUNS ? realloc(m->runs, cap * sizeof(*p)) : NULL;
		if (p == NULL) {
			return fail(err, errlen, SIM_ELIMIT,
				    "%s: cannot merge more than %u runs at "
				    "once",
				    m->out, MAX_RUNS);
		}
		m->runs = p;
		m->cap = cap;
	}
	copied *c = &m->runs[m->nruns];
	sqlite3_bind_int64(m->get_digest, 1, id);
	int found = sqlite3_step(m->get_digest) == SQLITE_ROW;
	const char *d =
	    found ? (const char *)sqlite3_column_text(m->get_digest, 0) : NULL;
	snprintf(c->digest, sizeof(c->digest), "%s", d ? d : "");
	sqlite3_reset(m->get_digest);
	if (!found) {
		return fail(err, errlen, SIM_EINVAL, "%s: no run %lld", in,
			    (long long)id);
	}
	if (sqlite3_exec(m->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		return sql_fail(m, err, errlen, "beginning the copy");
	}
	sqlite3_bind_int64(m->copy_run, 1, id);
	int bad = step_done(m->copy_run);
	c->id = sqlite3_last_insert_rowid(m->db);
	for (int i = 0; i < m->ntab && !bad; i++) {
		sqlite3_bind_int64(m->copy[i], 1, c->id);
		sqlite3_bind_int64(m->copy[i], 2, id);
		bad = step_done(m->copy[i]);
	}
	if (bad ||
	    sqlite3_exec(m->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int rc = sql_fail(m, err, errlen, "copying a run");
		sqlite3_exec(m->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	m->nruns++;
	return 0;
}

int sim_merge_runs(sim_merge *m, const char *in, const int64_t *ids, size_t n,
		   size_t *copied_out, char *err, size_t errlen)
{
	size_t done = 0, before = m->nruns;
	int rc = attach(m, in, err, errlen);
	if (rc == 0 && ids != NULL) {
		for (; done < n && rc == 0; done++) {
			rc = copy_one(m, in, ids[done], err, errlen);
		}
	} else if (rc == 0) {
		/* Every run: the ids first, since the copy writes. */
		sqlite3_stmt *st;
		int64_t *all = NULL;
		size_t nall = 0, cap = 0;
		if (sqlite3_prepare_v2(m->db,
				       "SELECT id FROM src.run ORDER BY id", -1,
				       &st, NULL) != SQLITE_OK) {
			return sql_fail(m, err, errlen, "listing runs");
		}
		while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
			if (nall == cap) {
				cap = cap ? 2 * cap : 256;
				int64_t *p =
				    cap <= MAX_RUNS
					? realloc(all, cap * sizeof(*p))
					: NULL;
				if (p == NULL) {
					rc = fail(err, errlen, SIM_ENOMEM,
						  "out of memory");
					break;
				}
				all = p;
			}
			all[nall++] = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		for (; done < nall && rc == 0; done++) {
			rc = copy_one(m, in, all[done], err, errlen);
		}
		free(all);
	}
	if (copied_out != NULL) {
		*copied_out = m->nruns - before;
	}
	return rc;
}

int64_t sim_merge_first_id(const sim_merge *m)
{
	return m->nruns ? m->runs[0].id : 0;
}

int64_t sim_merge_last_id(const sim_merge *m)
{
	return m->nruns ? m->runs[m->nruns - 1].id : 0;
}

int sim_merge_verify(sim_merge *m, char *err, size_t errlen)
{
	/* The copies are committed: recompute from the file as any reader
	 * would see it. */
	detach(m);
	for (size_t i = 0; i < m->nruns; i++) {
		char d[65];
		int rc =
		    sim_trace_digest_db(m->out, m->runs[i].id, d, err, errlen);
		if (rc == SIM_ESTATE) {
			continue; /* stored with rows off */
		}
		if (rc != 0) {
			return rc;
		}
		if (strcmp(d, m->runs[i].digest) != 0) {
			return fail(err, errlen, SIM_ECORRUPT,
				    "%s: run %lld: digest %.16s of the copied "
				    "rows differs from the input's %.16s",
				    m->out, (long long)m->runs[i].id, d,
				    m->runs[i].digest);
		}
	}
	return 0;
}

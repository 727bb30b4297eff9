#include "sim/rowdiff.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "sim/err.h"

static const char *const tables[] = {"node", "event", "op",    "packet",
				     "tls",  "check", "log"};

/* Appends column |c| of |st| as text ("NULL", numbers, quoted text, blob
 * length) to |buf|. */
static void value_text(sqlite3_stmt *st, int c, char *buf, size_t len)
{
	switch (sqlite3_column_type(st, c)) {
	case SQLITE_NULL:
		snprintf(buf, len, "NULL");
		break;
	case SQLITE_INTEGER:
		snprintf(buf, len, "%lld",
			 (long long)sqlite3_column_int64(st, c));
		break;
	case SQLITE_FLOAT:
		snprintf(buf, len, "%.17g", sqlite3_column_double(st, c));
		break;
	case SQLITE_BLOB:
		snprintf(buf, len, "<%d bytes>", sqlite3_column_bytes(st, c));
		break;
	default:
		snprintf(buf, len, "'%.*s'", 60,
			 (const char *)sqlite3_column_text(st, c));
		break;
	}
}

static int same_value(sqlite3_stmt *a, sqlite3_stmt *b, int c)
{
	int t = sqlite3_column_type(a, c);
	if (t != sqlite3_column_type(b, c)) {
		return 0;
	}
	switch (t) {
	case SQLITE_NULL:
		return 1;
	case SQLITE_INTEGER:
		return sqlite3_column_int64(a, c) == sqlite3_column_int64(b, c);
	case SQLITE_FLOAT:
		return sqlite3_column_double(a, c) ==
		       sqlite3_column_double(b, c);
	default: {
		const void *pa = sqlite3_column_blob(a, c);
		const void *pb = sqlite3_column_blob(b, c);
		int na = sqlite3_column_bytes(a, c);
		int nb = sqlite3_column_bytes(b, c);
		return na == nb && (na == 0 || memcmp(pa, pb, (size_t)na) == 0);
	}
	}
}

/* "col=value col=value ..." of the current row, without the run id. */
static void row_text(sqlite3_stmt *st, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (int c = 0; c < sqlite3_column_count(st) && n + 1 < len; c++) {
		if (strcmp(sqlite3_column_name(st, c), "run") == 0) {
			continue;
		}
		char v[96];
		value_text(st, c, v, sizeof(v));
		n += (size_t)snprintf(buf + n, len - n, "%s%s=%s", n ? " " : "",
				      sqlite3_column_name(st, c), v);
	}
}

static int open_ro(const char *path, sqlite3 **db, char *out, size_t outlen)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		snprintf(out, outlen, "%s: %s", path, sqlite3_errmsg(*db));
		return SIM_EIO;
	}
	return 0;
}

static int prepare(sqlite3 *db, const char *table, int64_t run,
		   sqlite3_stmt **st, char *out, size_t outlen)
{
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "SELECT * FROM \"%s\" WHERE run = ?1 ORDER BY seq", table);
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
		snprintf(out, outlen, "%s: %s", table, sqlite3_errmsg(db));
		return SIM_ENOTTRACE;
	}
	sqlite3_bind_int64(*st, 1, run);
	return 0;
}

/* --- the timeline ------------------------------------------------------- */

#define NTABLES (sizeof(tables) / sizeof(tables[0]))
#define CONTEXT_MAX 50
#define ROW_TEXT 640

/* The time column of each table, -1: none (node rows come first). */
static const char *const time_cols[NTABLES] = {
	NULL, "time_ns", "time_ns", "send_ns", "time_ns", "time_ns", "time_ns"};

/* One run's timeline: a cursor per table and the table of the next row. */
typedef struct timeline {
	sqlite3 *db;
	sqlite3_stmt *st[NTABLES];
	int live[NTABLES];      /* the cursor holds a row */
	int64_t when[NTABLES];  /* its time */
	int time_col[NTABLES];  /* column index of the time, or -1 */
} timeline;

static int tl_step(timeline *t, size_t k, char *err, size_t errlen)
{
	int rc = sqlite3_step(t->st[k]);
	if (rc == SQLITE_ROW) {
		t->live[k] = 1;
		t->when[k] = t->time_col[k] >= 0
				     ? sqlite3_column_int64(t->st[k],
							    t->time_col[k])
				     : INT64_MIN;
		return 0;
	}
	t->live[k] = 0;
	if (rc != SQLITE_DONE) {
		snprintf(err, errlen, "%s: cannot read the rows: %s",
			 tables[k], sqlite3_errmsg(t->db));
		return SIM_EIO;
	}
	return 0;
}

static int tl_open(timeline *t, const char *path, int64_t run, char *err,
		   size_t errlen)
{
	memset(t, 0, sizeof(*t));
	int rc = open_ro(path, &t->db, err, errlen);
	for (size_t k = 0; rc == 0 && k < NTABLES; k++) {
		rc = prepare(t->db, tables[k], run, &t->st[k], err, errlen);
		if (rc != 0) {
			break;
		}
		t->time_col[k] = -1;
		for (int c = 0; time_cols[k] != NULL &&
				c < sqlite3_column_count(t->st[k]);
		     c++) {
			if (strcmp(sqlite3_column_name(t->st[k], c),
				   time_cols[k]) == 0) {
				t->time_col[k] = c;
			}
		}
		rc = tl_step(t, k, err, errlen);
	}
	return rc;
}

static void tl_close(timeline *t)
{
	for (size_t k = 0; k < NTABLES; k++) {
		sqlite3_finalize(t->st[k]);
	}
	sqlite3_close(t->db);
}

/* The table of the next row (time, then table order; seq within a table
 * is the cursor's order), or -1 at the end. */
static int tl_next(const timeline *t)
{
	int best = -1;
	for (size_t k = 0; k < NTABLES; k++) {
		if (t->live[k] && (best < 0 || t->when[k] < t->when[best])) {
			best = (int)k;
		}
	}
	return best;
}

static int64_t col_int(sqlite3_stmt *st, const char *name)
{
	for (int c = 0; c < sqlite3_column_count(st); c++) {
		if (strcmp(sqlite3_column_name(st, c), name) == 0) {
			return sqlite3_column_int64(st, c);
		}
	}
	return -1;
}

static const char *col_text(sqlite3_stmt *st, const char *name)
{
	for (int c = 0; c < sqlite3_column_count(st); c++) {
		if (strcmp(sqlite3_column_name(st, c), name) == 0) {
			const char *v =
				(const char *)sqlite3_column_text(st, c);
			return v ? v : "";
		}
	}
	return "";
}

/* What a row belongs to, in words. */
static void belongs(sqlite3_stmt *st, int k, char *buf, size_t len)
{
	const char *table = tables[k];
	if (strcmp(table, "op") == 0) {
		const char *id = col_text(st, "cause_id");
		snprintf(buf, len, "operation #%lld (%s) on %s, caused by %s%s%s",
			 (long long)col_int(st, "op_id"),
			 col_text(st, "op_type"), col_text(st, "node"),
			 col_text(st, "cause_kind"), *id ? " " : "", id);
	} else if (strcmp(table, "packet") == 0) {
		int64_t parent = col_int(st, "parent");
		snprintf(buf, len, "packet #%lld%s%.0lld on link %s, %s -> %s",
			 (long long)col_int(st, "id"),
			 sqlite3_column_type(st, 3) == SQLITE_NULL
				 ? ""
				 : " inside datagram #",
			 sqlite3_column_type(st, 3) == SQLITE_NULL
				 ? 0
				 : (long long)parent,
			 col_text(st, "link"), col_text(st, "src"),
			 col_text(st, "dst"));
	} else if (strcmp(table, "node") == 0) {
		snprintf(buf, len, "node %s", col_text(st, "name"));
	} else if (strcmp(table, "check") == 0) {
		snprintf(buf, len, "the expectation at %s",
			 col_text(st, "location"));
	} else {
		snprintf(buf, len, "%s on %s", table, col_text(st, "node"));
	}
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
	if (ns == INT64_MIN) {
		snprintf(buf, len, "setup");
	} else {
		snprintf(buf, len, "%lld.%06llds", (long long)(ns / 1000000000),
			 (long long)(ns % 1000000000 / 1000));
	}
}

int sim_rowdiff_timeline(const char *a_path, int64_t a_run,
			 const char *b_path, int64_t b_run,
			 const char *a_label, const char *b_label, int context,
			 const char *const *ignore, int nignore, FILE *f,
			 char *err, size_t errlen)
{
	timeline a, b;
	char ring[CONTEXT_MAX][ROW_TEXT];
	int nring = 0, head = 0;
	if (context > CONTEXT_MAX) {
		context = CONTEXT_MAX;
	}
	int rc = tl_open(&a, a_path, a_run, err, errlen);
	if (rc == 0) {
		rc = tl_open(&b, b_path, b_run, err, errlen);
	} else {
		memset(&b, 0, sizeof(b));
	}
	uint64_t index = 0;
	while (rc == 0) {
		int ka = tl_next(&a), kb = tl_next(&b);
		if (ka < 0 && kb < 0) {
			fprintf(f, "no difference (%llu rows)\n",
				(unsigned long long)index);
			break;
		}
		sqlite3_stmt *sa = ka >= 0 ? a.st[ka] : NULL;
		sqlite3_stmt *sb = kb >= 0 ? b.st[kb] : NULL;
		const char *col = NULL;
		if (ka != kb || (ka >= 0 && a.when[ka] != b.when[kb])) {
			col = ka < 0	  ? "(the first run ended)"
			      : kb < 0	  ? "(the second run ended)"
			      : ka != kb ? "(a different table)"
					  : "(a different time)";
		} else {
			for (int c = 0; c < sqlite3_column_count(sa); c++) {
				const char *name = sqlite3_column_name(sa, c);
				int skip = strcmp(name, "run") == 0 ||
					   strcmp(name, "seq") == 0;
				for (int i = 0; i < nignore && !skip; i++) {
					skip = strcmp(name, ignore[i]) == 0;
				}
				if (!skip && !same_value(sa, sb, c)) {
					col = name;
					break;
				}
			}
		}
		char ta[ROW_TEXT - 64] = "(no row)", tb[ROW_TEXT - 64] = "(no row)";
		if (sa != NULL) {
			row_text(sa, ta, sizeof(ta));
		}
		if (sb != NULL) {
			row_text(sb, tb, sizeof(tb));
		}
		char when[32];
		int k0 = ka >= 0 ? ka : kb;
		fmt_time(ka >= 0 ? a.when[ka] : b.when[kb], when, sizeof(when));
		if (col != NULL) {
			fprintf(f, "first difference at %s, row %llu of the "
				   "timeline: %s\n",
				when, (unsigned long long)index + 1, col);
			if (nring > 0) {
				fprintf(f, "  before it (the same in both):\n");
			}
			for (int i = 0; i < nring; i++) {
				fprintf(f, "    %s\n",
					ring[(head - nring + i + CONTEXT_MAX) %
					     CONTEXT_MAX]);
			}
			char ba[256] = "", bb[256] = "";
			if (sa != NULL) {
				belongs(sa, ka, ba, sizeof(ba));
			}
			if (sb != NULL) {
				belongs(sb, kb, bb, sizeof(bb));
			}
			fprintf(f, "  %s: %s%s%s\n", a_label,
				ka >= 0 ? tables[ka] : "", ka >= 0 ? " " : "",
				ta);
			if (sa != NULL) {
				fprintf(f, "    (%s)\n", ba);
			}
			fprintf(f, "  %s: %s%s%s\n", b_label,
				kb >= 0 ? tables[kb] : "", kb >= 0 ? " " : "",
				tb);
			if (sb != NULL) {
				fprintf(f, "    (%s)\n", bb);
			}
			rc = 1;
			break;
		}
		if (context > 0) {
			snprintf(ring[head], ROW_TEXT, "%s %s %s", when,
				 tables[k0], ta);
			head = (head + 1) % CONTEXT_MAX;
			if (nring < context) {
				nring++;
			}
		}
		index++;
		rc = tl_step(&a, (size_t)ka, err, errlen);
		if (rc == 0) {
			rc = tl_step(&b, (size_t)kb, err, errlen);
		}
	}
	tl_close(&a);
	tl_close(&b);
	return rc;
}

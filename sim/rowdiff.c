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

/* Compares one table; 0 same, 1 differs (|out| says where), <0 error. */
static int diff_table(sqlite3 *da, int64_t ra, sqlite3 *db, int64_t rb,
		      const char *table, char *out, size_t outlen)
{
	sqlite3_stmt *a = NULL, *b = NULL;
	int rc = prepare(da, table, ra, &a, out, outlen);
	if (rc == 0) {
		rc = prepare(db, table, rb, &b, out, outlen);
	}
	while (rc == 0) {
		int sa = sqlite3_step(a), sb = sqlite3_step(b);
		if (sa == SQLITE_DONE && sb == SQLITE_DONE) {
			break;
		}
		if ((sa != SQLITE_ROW && sa != SQLITE_DONE) ||
		    (sb != SQLITE_ROW && sb != SQLITE_DONE)) {
			snprintf(out, outlen, "%s: cannot read the rows",
				 table);
			rc = SIM_EIO;
			break;
		}
		char ta[512] = "(no row)", tb[512] = "(no row)";
		if (sa == SQLITE_ROW) {
			row_text(a, ta, sizeof(ta));
		}
		if (sb == SQLITE_ROW) {
			row_text(b, tb, sizeof(tb));
		}
		const char *col = NULL;
		if (sa != sb) {
			col = sa == SQLITE_ROW ? "(extra row in the first run)"
					       : "(extra row in the second run)";
		} else {
			for (int c = 0; c < sqlite3_column_count(a); c++) {
				const char *name = sqlite3_column_name(a, c);
				if (strcmp(name, "run") != 0 &&
				    !same_value(a, b, c)) {
					col = name;
					break;
				}
			}
		}
		if (col != NULL) {
			long long seq = sqlite3_column_int64(
				sa == SQLITE_ROW ? a : b, 1);
			snprintf(out, outlen,
				 "%s seq %lld: %s\n  first:  %s\n  second: %s",
				 table, seq, col, ta, tb);
			rc = 1;
		}
	}
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	return rc;
}

int sim_rowdiff(const char *a_path, int64_t a_run, const char *b_path,
		int64_t b_run, char *out, size_t outlen)
{
	sqlite3 *da = NULL, *db = NULL;
	int rc = open_ro(a_path, &da, out, outlen);
	if (rc == 0) {
		rc = open_ro(b_path, &db, out, outlen);
	}
	for (size_t i = 0; rc == 0 && i < sizeof(tables) / sizeof(tables[0]);
	     i++) {
		rc = diff_table(da, a_run, db, b_run, tables[i], out, outlen);
	}
	sqlite3_close(da);
	sqlite3_close(db);
	if (rc == 0) {
		snprintf(out, outlen, "no difference");
	}
	return rc;
}

/* sim/query.c: race query files (sim/query.h). */
#include "sim/query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim/err.h"

int sim_query_load(sim_query *q, const char *path, const char *who,
		   char *err, size_t errlen)
{
	q->path = path;
	q->who = who;
	q->sql = NULL;
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s: --query %s: %s", who, path,
			 strerror(errno));
		return SIM_EINVAL;
	}
	char *s = malloc(SIM_QUERY_BYTES_MAX + 1);
	size_t n = s ? fread(s, 1, SIM_QUERY_BYTES_MAX + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	if (s == NULL || bad || n > SIM_QUERY_BYTES_MAX) {
		snprintf(err, errlen, "%s: --query %s: %s", who, path,
			 s == NULL ? "out of memory"
			 : bad     ? "cannot read it"
				   : "larger than 1 MiB");
		free(s);
		return s == NULL ? SIM_ENOMEM : SIM_EINVAL;
	}
	s[n] = '\0';
	/* Blank the dot-commands, keeping the newlines. */
	for (char *line = s; *line != '\0';) {
		char *nl = strchr(line, '\n');
		if (*line == '.') {
			memset(line, ' ',
			       nl ? (size_t)(nl - line) : strlen(line));
		}
		line = nl ? nl + 1 : line + strlen(line);
	}
	q->sql = s;
	return 0;
}

void sim_query_free(sim_query *q)
{
	free(q->sql);
	q->sql = NULL;
}

typedef struct match_arg {
	int64_t lo, hi;
	uint8_t *bits;
} match_arg;

/* each_stmt prepares the statements of |q| one by one and, when |m| is not
 * NULL, steps each, marking the runs it returns. */
static int each_stmt(sqlite3 *db, const sim_query *q, match_arg *m,
		     char *err, size_t errlen)
{
	const char *p = q->sql;
	int nstmt = 0;
	while (p != NULL && *p != '\0') {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK) {
			snprintf(err, errlen, "%s: --query %s: %s", q->who,
				 q->path, sqlite3_errmsg(db));
			return SIM_EINVAL;
		}
		p = tail;
		if (st == NULL) {
			continue; /* only comments or blanks were left */
		}
		nstmt++;
		const char *col = sqlite3_column_count(st) > 0
				      ? sqlite3_column_name(st, 0)
				      : NULL;
		int rc = SQLITE_DONE;
		if (!sqlite3_stmt_readonly(st)) {
			snprintf(err, errlen,
				 "%s: --query %s: a statement writes; "
				 "queries may only read",
				 q->who, q->path);
		} else if (col == NULL || strcasecmp(col, "run") != 0) {
			snprintf(err, errlen,
				 "%s: --query %s: the first column of every "
				 "statement must be the run id, named run "
				 "(got %s)",
				 q->who, q->path, col ? col : "no column");
		} else {
			while (m != NULL &&
			       (rc = sqlite3_step(st)) == SQLITE_ROW) {
				int64_t id = sqlite3_column_int64(st, 0);
				if (sqlite3_column_type(st, 0) ==
					SQLITE_INTEGER &&
				    id >= m->lo && id <= m->hi) {
					uint64_t k = (uint64_t)(id - m->lo);
					m->bits[k / 8] |=
					    (uint8_t)(1u << (k % 8));
				}
			}
			if (rc == SQLITE_DONE) {
				sqlite3_finalize(st);
				continue;
			}
			snprintf(err, errlen, "%s: --query %s: %s", q->who,
				 q->path, sqlite3_errmsg(db));
		}
		sqlite3_finalize(st);
		return SIM_EINVAL;
	}
	if (nstmt == 0) {
		snprintf(err, errlen, "%s: --query %s: no SQL statement in it",
			 q->who, q->path);
		return SIM_EINVAL;
	}
	return 0;
}

int sim_query_check(sqlite3 *db, const sim_query *q, char *err,
		    size_t errlen)
{
	return each_stmt(db, q, NULL, err, errlen);
}

int sim_query_match(sqlite3 *db, const sim_query *q, int64_t lo, int64_t hi,
		    uint8_t *bits, char *err, size_t errlen)
{
	match_arg m = {.lo = lo, .hi = hi, .bits = bits};
	return each_stmt(db, q, &m, err, errlen);
}

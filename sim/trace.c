#include "sim/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "sim/err.h"

enum { T_NODE, T_EVENT, T_OP, T_PACKET, T_TLS, T_CHECK, T_LOG, T_COUNT };

static const char *const table_names[T_COUNT] = {
    "node", "event", "op", "packet", "tls", "check", "log"};

/* Columns of each table after (run, seq), in schema order. */
static const char *const table_cols[T_COUNT] = {
    "id INTEGER, name TEXT, kind TEXT",
    "time_ns INTEGER, node TEXT, kind TEXT",
    "time_ns INTEGER, node TEXT, op_id INTEGER, op_type TEXT, "
    "action TEXT, depth INTEGER, cause_kind TEXT, cause_id INTEGER, "
    "detail TEXT",
    "id INTEGER, parent INTEGER, link TEXT, src TEXT, dst TEXT, "
    "proto TEXT, send_ns INTEGER, deliver_ns INTEGER, len INTEGER, "
    "fate TEXT, reason TEXT, dup_of INTEGER, ptype TEXT, space TEXT, "
    "pn INTEGER, frames TEXT, hs_state TEXT, data BLOB",
    "time_ns INTEGER, node TEXT, event TEXT, level TEXT, direction TEXT, "
    "code INTEGER, detail TEXT",
    "time_ns INTEGER, ok INTEGER, message TEXT, location TEXT, "
    "detail TEXT",
    "time_ns INTEGER, node TEXT, text TEXT",
};

static const int table_ncols[T_COUNT] = {3, 3, 9, 18, 7, 5, 3};

enum { TAG_NULL = 0, TAG_INT = 1, TAG_TEXT = 2, TAG_BLOB = 3 };

struct sim_trace {
	char *path;
	sqlite3 *db;
	int keep_rows;
	uint64_t max_rows;
	uint64_t crash_after;
	int err;
	char errmsg[512];

	int in_run;
	char *scenario, *scenario_sha256, *params;
	uint64_t seed;

	uint8_t *arena; /* records: u8 table, u32 len, columns */
	size_t arena_len, arena_cap;
	uint8_t *row; /* scratch for the row being built */
	size_t row_len, row_cap;
	SHA256_CTX sha[T_COUNT];
	uint64_t counts[T_COUNT];
	uint64_t rows;

	sqlite3_stmt *ins[T_COUNT];
	sqlite3_stmt *ins_run;
};

static void set_err(sim_trace *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(sim_trace *t, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->errmsg, sizeof(t->errmsg), fmt, ap);
	va_end(ap);
	if (t->err == 0) {
		t->err = code;
	}
}

static int map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SIM_EBUSY;
	case SQLITE_FULL:
		return SIM_EFULL;
	case SQLITE_NOTADB:
		return SIM_ENOTTRACE;
	case SQLITE_CORRUPT:
		return SIM_ECORRUPT;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return SIM_EPERM;
	case SQLITE_CANTOPEN:
		return SIM_EIO;
	case SQLITE_NOMEM:
		return SIM_ENOMEM;
	default:
		return SIM_EIO;
	}
}

static const char *what_for(int code)
{
	switch (code) {
	case SIM_EBUSY:
		return "locked by another writer";
	case SIM_EFULL:
		return "disk full";
	case SIM_ENOTTRACE:
		return "not an SQLite database";
	case SIM_ECORRUPT:
		return "trace file is corrupt";
	case SIM_EPERM:
		return "permission denied";
	default:
		return "I/O error";
	}
}

/* --- serialisation ------------------------------------------------------ */

static int grow(uint8_t **buf, size_t *cap, size_t need)
{
	if (need <= *cap) {
		return 0;
	}
	size_t c = *cap ? *cap : 4096;
	while (c < need) {
		c *= 2;
	}
	uint8_t *b = realloc(*buf, c);
	if (b == NULL) {
		return SIM_ENOMEM;
	}
	*buf = b;
	*cap = c;
	return 0;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_i64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 0; i < 8; i++) {
		p[i] = (uint8_t)(u >> (8 * i));
	}
}

static int64_t get_i64(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++) {
		u |= (uint64_t)p[i] << (8 * i);
	}
	return (int64_t)u;
}

typedef struct ser {
	uint8_t **buf;
	size_t *len, *cap;
	int err;
} ser;

static void s_null(ser *s)
{
	if (s->err || (s->err = grow(s->buf, s->cap, *s->len + 1))) {
		return;
	}
	(*s->buf)[(*s->len)++] = TAG_NULL;
}

static void s_int(ser *s, int64_t v)
{
	if (s->err || (s->err = grow(s->buf, s->cap, *s->len + 9))) {
		return;
	}
	(*s->buf)[*s->len] = TAG_INT;
	put_i64(*s->buf + *s->len + 1, v);
	*s->len += 9;
}

/* An integer where -1 means "none" (stored as NULL). */
static void s_opt(ser *s, int64_t v)
{
	if (v == -1) {
		s_null(s);
	} else {
		s_int(s, v);
	}
}

static void s_bytes(ser *s, int tag, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		n = UINT32_MAX;
	}
	if (s->err || (s->err = grow(s->buf, s->cap, *s->len + 5 + n))) {
		return;
	}
	(*s->buf)[*s->len] = (uint8_t)tag;
	put_u32(*s->buf + *s->len + 1, (uint32_t)n);
	if (n > 0) {
		memcpy(*s->buf + *s->len + 5, p, n);
	}
	*s->len += 5 + n;
}

static void s_text(ser *s, const char *v)
{
	if (v == NULL) {
		s_null(s);
	} else {
		s_bytes(s, TAG_TEXT, v, strlen(v));
	}
}

static void s_blob(ser *s, const void *p, size_t n)
{
	if (p == NULL) {
		s_null(s);
	} else {
		s_bytes(s, TAG_BLOB, p, n);
	}
}

/* Starts a row: returns a serialiser over the scratch buffer. */
static int row_begin(sim_trace *t, ser *s)
{
	if (t == NULL || !t->in_run) {
		return 0;
	}
	t->row_len = 0;
	s->buf = &t->row;
	s->len = &t->row_len;
	s->cap = &t->row_cap;
	s->err = 0;
	return 1;
}

/* Finishes a row of table |tab|: hashes it and keeps it in the arena. */
static void row_end(sim_trace *t, int tab, ser *s)
{
	if (s->err) {
		set_err(t, SIM_ENOMEM, "%s: out of memory buffering the run",
		        t->path ? t->path : "trace");
		return;
	}
	SHA256_Update(&t->sha[tab], t->row, t->row_len);
	t->counts[tab]++;
	t->rows++;
	if (t->db == NULL || !t->keep_rows) {
		return;
	}
	if (t->rows > t->max_rows) {
		if (t->err == 0) {
			set_err(t, SIM_ELIMIT,
			        "%s: run has more than %llu trace rows (the "
			        "rest are not stored)",
			        t->path, (unsigned long long)t->max_rows);
		}
		return;
	}
	if (grow(&t->arena, &t->arena_cap, t->arena_len + 5 + t->row_len)) {
		set_err(t, SIM_ENOMEM, "%s: out of memory buffering the run",
		        t->path);
		return;
	}
	uint8_t *p = t->arena + t->arena_len;
	p[0] = (uint8_t)tab;
	put_u32(p + 1, (uint32_t)t->row_len);
	memcpy(p + 5, t->row, t->row_len);
	t->arena_len += 5 + t->row_len;
}

void sim_trace_node(sim_trace *t, int64_t id, const char *name,
                    const char *kind)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, id);
	s_text(&s, name);
	s_text(&s, kind);
	row_end(t, T_NODE, &s);
}

void sim_trace_event(sim_trace *t, sim_time time, const char *node,
                     const char *kind)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, time);
	s_text(&s, node);
	s_text(&s, kind);
	row_end(t, T_EVENT, &s);
}

void sim_trace_op(sim_trace *t, const sim_op_row *r)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, r->time);
	s_text(&s, r->node);
	s_int(&s, r->op_id);
	s_text(&s, r->op_type);
	s_text(&s, r->action);
	s_int(&s, r->depth);
	s_text(&s, r->cause_kind);
	s_opt(&s, r->cause_id);
	s_text(&s, r->detail);
	row_end(t, T_OP, &s);
}

void sim_trace_packet(sim_trace *t, const sim_packet_row *r)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, r->id);
	s_opt(&s, r->parent);
	s_text(&s, r->link);
	s_text(&s, r->src);
	s_text(&s, r->dst);
	s_text(&s, r->proto);
	s_int(&s, r->send_ns);
	s_opt(&s, r->deliver_ns);
	s_int(&s, r->len);
	s_text(&s, r->fate);
	s_text(&s, r->reason);
	s_opt(&s, r->dup_of);
	s_text(&s, r->ptype);
	s_text(&s, r->space);
	s_opt(&s, r->pn);
	s_text(&s, r->frames);
	s_text(&s, r->hs_state);
	s_blob(&s, r->data, r->data_len);
	row_end(t, T_PACKET, &s);
}

void sim_trace_tls(sim_trace *t, const sim_tls_row *r)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, r->time);
	s_text(&s, r->node);
	s_text(&s, r->event);
	s_text(&s, r->level);
	s_text(&s, r->direction);
	s_opt(&s, r->code);
	s_text(&s, r->detail);
	row_end(t, T_TLS, &s);
}

void sim_trace_check(sim_trace *t, sim_time time, int ok, const char *message,
                     const char *location, const char *detail)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, time);
	s_int(&s, ok ? 1 : 0);
	s_text(&s, message);
	s_text(&s, location);
	s_text(&s, detail);
	row_end(t, T_CHECK, &s);
}

void sim_trace_log(sim_trace *t, sim_time time, const char *node,
                   const char *text)
{
	ser s;
	if (!row_begin(t, &s)) {
		return;
	}
	s_int(&s, time);
	s_text(&s, node);
	s_text(&s, text);
	row_end(t, T_LOG, &s);
}

/* The outcome fields that open the digest. */
static void outcome_bytes(ser *s, const char *outcome, const char *reason,
                          int64_t end_ns, int64_t events, int64_t checks,
                          int64_t failed)
{
	s_text(s, outcome);
	s_text(s, reason);
	s_int(s, end_ns);
	s_int(s, events);
	s_int(s, checks);
	s_int(s, failed);
}

static void digest_final(const uint8_t *outcome, size_t outcome_len,
                         SHA256_CTX *tabs, char hex[65])
{
	SHA256_CTX all;
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256_Init(&all);
	SHA256_Update(&all, outcome, outcome_len);
	for (int i = 0; i < T_COUNT; i++) {
		SHA256_Final(md, &tabs[i]);
		SHA256_Update(&all, table_names[i], strlen(table_names[i]));
		SHA256_Update(&all, md, sizeof(md));
	}
	SHA256_Final(md, &all);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	}
}

/* --- opening ------------------------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int create_schema(sim_trace *t)
{
	char sql[1024];
	int rc = exec(t->db,
	              "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
	              "CREATE TABLE run(id INTEGER PRIMARY KEY, scenario TEXT,"
	              " scenario_sha256 TEXT, seed INTEGER, params TEXT,"
	              " version TEXT, outcome TEXT, reason TEXT,"
	              " end_ns INTEGER, events INTEGER, rows INTEGER,"
	              " checks INTEGER, checks_failed INTEGER, digest TEXT);");
	for (int i = 0; i < T_COUNT && rc == SQLITE_OK; i++) {
		snprintf(
		    sql, sizeof(sql),
		    "CREATE TABLE \"%s\"(run INTEGER NOT NULL, seq INTEGER "
		    "NOT NULL, %s, PRIMARY KEY(run, seq)) WITHOUT ROWID;",
		    table_names[i], table_cols[i]);
		rc = exec(t->db, sql);
	}
	if (rc == SQLITE_OK) {
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO meta VALUES('schema_version', '%d');"
		    "INSERT INTO meta VALUES('created_by', 'tlsim %s');"
		    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
		    SIM_TRACE_SCHEMA_VERSION, TLSIM_VERSION,
		    SIM_TRACE_APPLICATION_ID, SIM_TRACE_SCHEMA_VERSION);
		rc = exec(t->db, sql);
	}
	return rc;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		return rc;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Refuses what is plainly not an SQLite file before SQLite touches it. */
static int check_header(sim_trace *t, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		set_err(t, errno == EACCES ? SIM_EPERM : SIM_EIO,
		        "%s: cannot open trace: %s", path, strerror(errno));
		return t->err;
	}
	char hdr[16];
	ssize_t n = read(fd, hdr, sizeof(hdr));
	close(fd);
	if (n == 0) {
		return 0; /* empty file: becomes a trace */
	}
	if (n != (ssize_t)sizeof(hdr) || memcmp(hdr, "SQLite format 3", 16)) {
		set_err(t, SIM_ENOTTRACE,
		        "%s: not a tlsim trace (not an SQLite database)", path);
		return t->err;
	}
	return 0;
}

static int check_dir(sim_trace *t, const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL) {
		set_err(t, SIM_ENOMEM, "out of memory");
		return t->err;
	}
	const char *dir = dirname(copy);
	struct stat st;
	int rc = 0;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		set_err(t, SIM_ENOENT,
		        "%s: cannot create trace: directory %s "
		        "does not exist",
		        path, dir);
		rc = t->err;
	} else if (access(dir, W_OK) != 0) {
		set_err(t, SIM_EPERM,
		        "%s: cannot create trace: directory %s is not "
		        "writable",
		        path, dir);
		rc = t->err;
	}
	free(copy);
	return rc;
}

static int open_db(sim_trace *t, const char *path)
{
	if (check_dir(t, path) || check_header(t, path)) {
		return t->err;
	}
	int rc = sqlite3_open_v2(
	    path, &t->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		int code = map_sqlite(rc);
		set_err(t, code == SIM_EIO ? SIM_EPERM : code,
		        "%s: cannot open trace: %s", path,
		        t->db ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc));
		return t->err;
	}
	sqlite3_busy_timeout(t->db, 0);
	int64_t app = 0, ver = 0, tables = 0;
	rc = pragma_int(t->db, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK) {
		rc = pragma_int(t->db, "PRAGMA user_version", &ver);
	}
	if (rc == SQLITE_OK) {
		rc = pragma_int(t->db, "SELECT count(*) FROM sqlite_master",
		                &tables);
	}
	if (rc != SQLITE_OK) {
		int code = map_sqlite(rc);
		set_err(t, code, "%s: %s (%s)", path,
		        code == SIM_EBUSY       ? "locked by another writer"
		        : code == SIM_ENOTTRACE ? "not a tlsim trace"
		                                : "trace file is corrupt",
		        sqlite3_errmsg(t->db));
		return t->err;
	}
	if (tables > 0 && app != SIM_TRACE_APPLICATION_ID) {
		set_err(t, SIM_ENOTTRACE,
		        "%s: not a tlsim trace (an SQLite database of another "
		        "application)",
		        path);
		return t->err;
	}
	if (app == SIM_TRACE_APPLICATION_ID && ver > SIM_TRACE_SCHEMA_VERSION) {
		set_err(
		    t, SIM_ESCHEMA,
		    "%s: trace schema version %lld is newer than this tlsim "
		    "(reads %d)",
		    path, (long long)ver, SIM_TRACE_SCHEMA_VERSION);
		return t->err;
	}
	if (tables > 0) {
		sqlite3_stmt *st;
		rc = sqlite3_prepare_v2(t->db, "PRAGMA quick_check", -1, &st,
		                        NULL);
		const char *res = NULL;
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
			res = (const char *)sqlite3_column_text(st, 0);
		}
		int ok = res != NULL && strcmp(res, "ok") == 0;
		char first[128];
		snprintf(first, sizeof(first), "%s",
		         res ? res : sqlite3_errmsg(t->db));
		for (char *c = first; *c != '\0'; c++) {
			if (*c == '\n') { /* quick_check lists pages */
				strcpy(c, "...");
				break;
			}
		}
		if (rc == SQLITE_OK) {
			sqlite3_finalize(st);
		}
		if (!ok) {
			int code = map_sqlite(sqlite3_errcode(t->db));
			set_err(t, code == SIM_EBUSY ? SIM_EBUSY : SIM_ECORRUPT,
			        "%s: %s (%s)", path,
			        code == SIM_EBUSY ? "locked by another writer"
			                          : "trace file is corrupt",
			        first);
			return t->err;
		}
	}
	/* Probe the write lock, and create the schema under it. */
	rc = exec(t->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		int code = map_sqlite(rc);
		set_err(t, code, "%s: %s", path, what_for(code));
		return t->err;
	}
	if (tables == 0) {
		rc = create_schema(t);
		if (rc != SQLITE_OK) {
			int code = map_sqlite(rc);
			exec(t->db, "ROLLBACK");
			set_err(t, code, "%s: cannot create trace: %s", path,
			        sqlite3_errmsg(t->db));
			return t->err;
		}
		rc = exec(t->db, "COMMIT");
	} else {
		rc = exec(t->db, "ROLLBACK");
	}
	if (rc != SQLITE_OK) {
		int code = map_sqlite(rc);
		set_err(t, code, "%s: %s", path, what_for(code));
		return t->err;
	}
	rc = exec(t->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
	if (rc != SQLITE_OK) {
		int code = map_sqlite(rc);
		set_err(t, code, "%s: %s", path, what_for(code));
		return t->err;
	}
	sqlite3_busy_timeout(t->db, 2000);
	return 0;
}

int sim_trace_open(const char *path, sim_trace **out, char *err, size_t errlen)
{
	*out = NULL;
	sim_trace *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return SIM_ENOMEM;
	}
	t->keep_rows = 1;
	t->max_rows = 10000000;
	if (path != NULL) {
		t->path = strdup(path);
		if (t->path == NULL || open_db(t, path) != 0) {
			int rc = t->path ? t->err : SIM_ENOMEM;
			snprintf(err, errlen, "%s",
			         t->path ? t->errmsg : "out of memory");
			sim_trace_close(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

static void clear_run(sim_trace *t)
{
	t->in_run = 0;
	free(t->scenario);
	free(t->scenario_sha256);
	free(t->params);
	t->scenario = t->scenario_sha256 = t->params = NULL;
	t->arena_len = 0;
}

void sim_trace_close(sim_trace *t)
{
	if (t == NULL) {
		return;
	}
	clear_run(t);
	for (int i = 0; i < T_COUNT; i++) {
		sqlite3_finalize(t->ins[i]);
	}
	sqlite3_finalize(t->ins_run);
	if (t->db != NULL) {
		sqlite3_close(t->db);
	}
	free(t->arena);
	free(t->row);
	free(t->path);
	free(t);
}

void sim_trace_set_rows(sim_trace *t, int keep)
{
	t->keep_rows = keep;
}

void sim_trace_set_max_rows(sim_trace *t, uint64_t max)
{
	t->max_rows = max;
}

void sim_trace_set_crash_after(sim_trace *t, uint64_t n)
{
	t->crash_after = n;
}

int sim_trace_error(const sim_trace *t)
{
	return t ? t->err : 0;
}

const char *sim_trace_errmsg(const sim_trace *t)
{
	return t ? t->errmsg : "";
}

uint64_t sim_trace_rows(const sim_trace *t)
{
	return t ? t->rows : 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int sim_trace_begin(sim_trace *t, const sim_run_info *info)
{
	clear_run(t);
	t->err = 0;
	t->errmsg[0] = '\0';
	t->scenario = dup_or_null(info->scenario);
	t->scenario_sha256 = dup_or_null(info->scenario_sha256);
	t->params = dup_or_null(info->params);
	t->seed = info->seed;
	for (int i = 0; i < T_COUNT; i++) {
		SHA256_Init(&t->sha[i]);
		t->counts[i] = 0;
	}
	t->rows = 0;
	t->in_run = 1;
	return 0;
}

static int prepare_inserts(sim_trace *t)
{
	char sql[512];
	for (int i = 0; i < T_COUNT; i++) {
		if (t->ins[i] != NULL) {
			continue;
		}
		int n = snprintf(sql, sizeof(sql),
		                 "INSERT INTO \"%s\" VALUES(?1, ?2",
		                 table_names[i]);
		for (int c = 0; c < table_ncols[i]; c++) {
			n += snprintf(sql + n, sizeof(sql) - (size_t)n, ", ?%d",
			              c + 3);
		}
		snprintf(sql + n, sizeof(sql) - (size_t)n, ")");
		int rc = sqlite3_prepare_v3(t->db, sql, -1,
		                            SQLITE_PREPARE_PERSISTENT,
		                            &t->ins[i], NULL);
		if (rc != SQLITE_OK) {
			return rc;
		}
	}
	if (t->ins_run == NULL) {
		return sqlite3_prepare_v3(
		    t->db,
		    "INSERT INTO run(scenario, scenario_sha256, seed, params,"
		    " version, outcome, reason, end_ns, events, rows, checks,"
		    " checks_failed, digest) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
		    " ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
		    -1, SQLITE_PREPARE_PERSISTENT, &t->ins_run, NULL);
	}
	return SQLITE_OK;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC)
	         : sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Writes the run row and the buffered rows; inside a transaction. */
static int write_run(sim_trace *t, const sim_run_result *res,
                     const char *digest, int64_t *run_id)
{
	int rc = prepare_inserts(t);
	if (rc != SQLITE_OK) {
		return rc;
	}
	sqlite3_stmt *st = t->ins_run;
	bind_text(st, 1, t->scenario);
	bind_text(st, 2, t->scenario_sha256);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)t->seed);
	bind_text(st, 4, t->params);
	bind_text(st, 5, TLSIM_VERSION);
	bind_text(st, 6, res->outcome);
	bind_text(st, 7, res->reason);
	sqlite3_bind_int64(st, 8, res->end_ns);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)res->events);
	sqlite3_bind_int64(st, 10, (sqlite3_int64)t->rows);
	sqlite3_bind_int64(st, 11, (sqlite3_int64)res->checks);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)res->checks_failed);
	bind_text(st, 13, digest);
	rc = step_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_OK) {
		return rc;
	}
	int64_t run = sqlite3_last_insert_rowid(t->db);
	*run_id = run;

	uint64_t seq[T_COUNT] = {0};
	uint64_t written = 0;
	size_t off = 0;
	while (off < t->arena_len) {
		int tab = t->arena[off];
		uint32_t len = get_u32(t->arena + off + 1);
		const uint8_t *p = t->arena + off + 5, *end = p + len;
		off += 5 + len;
		st = t->ins[tab];
		sqlite3_bind_int64(st, 1, run);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)seq[tab]++);
		for (int c = 0; c < table_ncols[tab] && p < end; c++) {
			int col = c + 3;
			switch (*p) {
			case TAG_NULL:
				sqlite3_bind_null(st, col);
				p += 1;
				break;
			case TAG_INT:
				sqlite3_bind_int64(st, col, get_i64(p + 1));
				p += 9;
				break;
			case TAG_TEXT:
				sqlite3_bind_text(st, col, (const char *)p + 5,
				                  (int)get_u32(p + 1),
				                  SQLITE_STATIC);
				p += 5 + get_u32(p + 1);
				break;
			default:
				sqlite3_bind_blob(st, col, p + 5,
				                  (int)get_u32(p + 1),
				                  SQLITE_STATIC);
				p += 5 + get_u32(p + 1);
				break;
			}
		}
		rc = step_reset(st);
		if (rc != SQLITE_OK) {
			return rc;
		}
		if (t->crash_after != 0 && ++written >= t->crash_after) {
			_exit(9);
		}
	}
	return SQLITE_OK;
}

int sim_trace_end(sim_trace *t, const sim_run_result *res, char *digest,
                  int64_t *run_id)
{
	char hex[65];
	uint8_t *ob = NULL;
	size_t olen = 0, ocap = 0;
	ser s = {&ob, &olen, &ocap, 0};
	int64_t ignored;
	if (run_id == NULL) {
		run_id = &ignored;
	}
	*run_id = 0;
	if (!t->in_run) {
		return SIM_ESTATE;
	}
	outcome_bytes(&s, res->outcome, res->reason, res->end_ns,
	              (int64_t)res->events, (int64_t)res->checks,
	              (int64_t)res->checks_failed);
	if (s.err) {
		free(ob);
		clear_run(t);
		set_err(t, SIM_ENOMEM, "out of memory");
		return SIM_ENOMEM;
	}
	digest_final(ob, olen, t->sha, hex);
	free(ob);
	if (digest != NULL) {
		memcpy(digest, hex, 65);
	}
	int err = t->err == SIM_ELIMIT ? 0 : t->err;
	if (t->db != NULL && err == 0) {
		int rc = exec(t->db, "BEGIN IMMEDIATE");
		if (rc == SQLITE_OK) {
			rc = write_run(t, res, hex, run_id);
			if (rc == SQLITE_OK) {
				rc = exec(t->db, "COMMIT");
			}
			if (rc != SQLITE_OK) {
				int save = rc;
				exec(t->db, "ROLLBACK");
				rc = save;
			}
		}
		if (rc != SQLITE_OK) {
			err = map_sqlite(rc);
			*run_id = 0;
			set_err(t, err, "%s: cannot write the run: %s", t->path,
			        err == SIM_EBUSY   ? "locked by another writer"
			        : err == SIM_EFULL ? "disk full"
			                           : sqlite3_errmsg(t->db));
		}
	}
	clear_run(t);
	return err;
}

/* --- recomputing a digest from the database ------------------------------ */

static void ser_column(ser *s, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		s_null(s);
		break;
	case SQLITE_INTEGER:
		s_int(s, sqlite3_column_int64(st, i));
		break;
	case SQLITE_BLOB: {
		const void *p = sqlite3_column_blob(st, i);
		s_bytes(s, TAG_BLOB, p, (size_t)sqlite3_column_bytes(st, i));
		break;
	}
	default: {
		const char *p = (const char *)sqlite3_column_text(st, i);
		s_bytes(s, TAG_TEXT, p, (size_t)sqlite3_column_bytes(st, i));
		break;
	}
	}
}

int sim_trace_digest_db(const char *path, int64_t run_id, char *digest,
                        char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	ser s = {&buf, &len, &cap, 0};
	SHA256_CTX sha[T_COUNT];
	int ret = 0;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		ret = map_sqlite(rc);
		goto out;
	}
	rc =
	    sqlite3_prepare_v2(db,
	                       "SELECT outcome, reason, end_ns, events, checks,"
	                       " checks_failed FROM run WHERE id = ?1",
	                       -1, &st, NULL);
	if (rc != SQLITE_OK) {
		goto sqlerr;
	}
	sqlite3_bind_int64(st, 1, run_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		snprintf(err, errlen, "%s: no run %lld", path,
		         (long long)run_id);
		ret = SIM_EINVAL;
		goto out;
	}
	for (int i = 0; i < 6; i++) {
		ser_column(&s, st, i);
	}
	sqlite3_finalize(st);
	st = NULL;
	uint8_t *outcome = buf;
	size_t outcome_len = len;
	buf = NULL;
	len = cap = 0;
	for (int tab = 0; tab < T_COUNT; tab++) {
		char sql[256];
		SHA256_Init(&sha[tab]);
		snprintf(sql, sizeof(sql),
		         "SELECT * FROM \"%s\" WHERE run = ?1 ORDER BY seq",
		         table_names[tab]);
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK) {
			free(outcome);
			goto sqlerr;
		}
		sqlite3_bind_int64(st, 1, run_id);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			len = 0;
			for (int c = 0; c < table_ncols[tab]; c++) {
				ser_column(&s, st, c + 2);
			}
			SHA256_Update(&sha[tab], buf, len);
		}
		sqlite3_finalize(st);
		st = NULL;
		if (rc != SQLITE_DONE) {
			free(outcome);
			goto sqlerr;
		}
	}
	if (s.err) {
		free(outcome);
		snprintf(err, errlen, "out of memory");
		ret = SIM_ENOMEM;
		goto out;
	}
	digest_final(outcome, outcome_len, sha, digest);
	free(outcome);
	goto out;
sqlerr:
	ret = map_sqlite(rc);
	snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(buf);
	return ret;
}

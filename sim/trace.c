/* sim/trace.c: the SQLite trace writer.
 *
 * A run's rows are serialised, as they are produced, straight into one
 * growable arena in the canonical form of trace.h; each record is a table
 * byte, a u32 LE length and the row. The row's bytes also update its
 * table's running SHA-256. sim_trace_end inserts the arena's records with
 * one INSERT ... SELECT per table from a virtual table that reads them in
 * place (prepared once per sim_trace), inside one transaction. Without a
 * database, or with rows off, the arena only ever holds the row being
 * built.
 *
 * Opening an existing file validates it through a read-only connection
 * first, so nothing is written to a file until it is known to be a tlsim
 * trace of a schema this build reads. docs/trace.md is the user's view. */
#include "sim/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include <openssl/sha.h>

#include "sim/err.h"
#include "sim/vfs.h"

#define MAX_ROWS_DEFAULT 10000000ULL /* about 1 GB of buffered rows */
/* A row's canonical form is capped at SQLite's default SQLITE_MAX_LENGTH,
 * with or without a database, so a row that could not be stored cannot be
 * hashed either. */
#define ROW_BYTES_MAX 1000000000u
#define BUSY_TIMEOUT_MS 2000
/* SQLite checkpoints (copies the WAL into the database, with two syncs)
 * after a commit that takes the WAL past this many pages: 16 MiB of 4 KiB
 * pages, about 180 runs of a TLS handshake. Each checkpoint's syncs cost
 * a few milliseconds whatever they write; at SQLite's default, 1000
 * pages, they were about 0.1 ms per such run on ext4. */
#define CHECKPOINT_PAGES 4096
#define ARENA_KEEP_MAX ((size_t)64 << 20) /* capacity kept between runs */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum { T_NODE, T_EVENT, T_OP, T_PACKET, T_TLS, T_CHECK, T_LOG, T_COUNT };

enum { TAG_NULL = 0, TAG_INT = 1, TAG_TEXT = 2, TAG_BLOB = 3 };

typedef struct column {
	const char *name, *type;
	int since; /* the schema version that added it; 0: from the start */
} column;

/* Columns after (run, seq), in schema order: the order of the canonical
 * form. docs/trace.md documents each. */
static const column node_cols[] = {
    {"id", "INTEGER", 0}, {"name", "TEXT", 0}, {"kind", "TEXT", 0}};
static const column event_cols[] = {{"time_ns", "INTEGER", 0},
				    {"node", "TEXT", 0},
				    {"kind", "TEXT", 0},
				    {"parent", "INTEGER", 3}};
static const column op_cols[] = {
    {"time_ns", "INTEGER", 0}, {"node", "TEXT", 0},        {"op_id", "INTEGER", 0},
    {"op_type", "TEXT", 0},    {"action", "TEXT", 0},      {"depth", "INTEGER", 0},
    {"cause_kind", "TEXT", 0}, {"cause_id", "INTEGER", 0}, {"detail", "TEXT", 0},
    {"event", "INTEGER", 3}};
static const column packet_cols[] = {
    {"id", "INTEGER", 0},      {"parent", "INTEGER", 0},     {"link", "TEXT", 0},
    {"src", "TEXT", 0},        {"dst", "TEXT", 0},           {"proto", "TEXT", 0},
    {"send_ns", "INTEGER", 0}, {"deliver_ns", "INTEGER", 0}, {"len", "INTEGER", 0},
    {"fate", "TEXT", 0},       {"reason", "TEXT", 0},        {"dup_of", "INTEGER", 0},
    {"ptype", "TEXT", 0},      {"space", "TEXT", 0},         {"pn", "INTEGER", 0},
    {"frames", "TEXT", 0},     {"hs_state", "TEXT", 0},      {"data", "BLOB", 0}};
static const column tls_cols[] = {{"time_ns", "INTEGER", 0}, {"node", "TEXT", 0},
				  {"event", "TEXT", 0},      {"level", "TEXT", 0},
				  {"direction", "TEXT", 0},  {"code", "INTEGER", 0},
				  {"detail", "TEXT", 0}};
static const column check_cols[] = {{"time_ns", "INTEGER", 0},
				    {"ok", "INTEGER", 0},
				    {"message", "TEXT", 0},
				    {"location", "TEXT", 0},
				    {"detail", "TEXT", 0}};
static const column log_cols[] = {
    {"time_ns", "INTEGER", 0}, {"node", "TEXT", 0}, {"text", "TEXT", 0}};

static const struct table {
	const char *name;
	const column *cols;
	int ncols;
} tables[T_COUNT] = {
    {"node", node_cols, (int)ARRAY_LEN(node_cols)},
    {"event", event_cols, (int)ARRAY_LEN(event_cols)},
    {"op", op_cols, (int)ARRAY_LEN(op_cols)},
    {"packet", packet_cols, (int)ARRAY_LEN(packet_cols)},
    {"tls", tls_cols, (int)ARRAY_LEN(tls_cols)},
    {"check", check_cols, (int)ARRAY_LEN(check_cols)},
    {"log", log_cols, (int)ARRAY_LEN(log_cols)},
};

static const char RUN_SCHEMA[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE run(id INTEGER PRIMARY KEY, scenario TEXT,"
    " scenario_sha256 TEXT, seed INTEGER, params TEXT, version TEXT,"
    " outcome TEXT, reason TEXT, end_ns INTEGER, events INTEGER,"
    " rows INTEGER, checks INTEGER, checks_failed INTEGER, digest TEXT,"
    " schedule TEXT, schema INTEGER, limits TEXT);";

/* Causality (docs/trace.md "Happens-before"): op_step, one row per queued
 * operation with the events that enqueued and dequeued it; op_concurrent,
 * the pairs of operations on one endpoint, enqueued at the same virtual
 * time, that no happens-before path orders, with the one that ran first.
 * Also created as temp views by readers of older traces. */
const char sim_trace_causality_views[] =
    "CREATE %1$sVIEW IF NOT EXISTS %2$sop_step AS SELECT e.run, e.node,"
    " e.op_id, e.op_type, e.action AS enq_action, e.seq AS enq_seq,"
    " e.event AS enq_event, e.time_ns AS enq_ns, e.cause_kind, e.cause_id,"
    " d.seq AS deq_seq, d.event AS deq_event, d.time_ns AS deq_ns FROM op e"
    " LEFT JOIN op d ON d.run = e.run AND d.op_id = e.op_id AND d.action ="
    " 'dequeue' WHERE e.action IN ('enqueue', 'enqueue_front');"
    "CREATE %1$sVIEW IF NOT EXISTS %2$sop_concurrent AS SELECT a.run,"
    " a.node, a.enq_ns AS time_ns, a.op_id AS a_op, a.op_type AS a_type,"
    " b.op_id AS b_op, b.op_type AS b_type, CASE WHEN b.deq_seq IS NULL OR"
    " a.deq_seq < b.deq_seq THEN a.op_id ELSE b.op_id END AS first_op,"
    " CASE WHEN b.deq_seq IS NULL OR a.deq_seq < b.deq_seq THEN a.op_type"
    " ELSE b.op_type END AS first_type FROM %2$sop_step a JOIN"
    " %2$sop_step b ON b.run = a.run AND b.node = a.node AND b.enq_seq >"
    " a.enq_seq AND b.enq_ns = a.enq_ns WHERE a.enq_event IS NOT NULL AND"
    " b.enq_event IS NOT NULL AND a.deq_seq IS NOT NULL AND NOT EXISTS"
    " (WITH RECURSIVE up(e) AS (SELECT b.enq_event UNION SELECT ev.parent"
    " FROM up JOIN event ev ON ev.run = a.run AND ev.seq = up.e WHERE"
    " ev.parent IS NOT NULL AND ev.parent >= min(a.enq_event,"
    " a.deq_event)) SELECT 1 FROM up WHERE up.e = a.enq_event OR (up.e ="
    " a.deq_event AND (up.e <> b.enq_event OR a.deq_seq < b.enq_seq)));";

static const char RUN_SUMMARY_VIEW[] =
    "CREATE VIEW IF NOT EXISTS run_summary AS SELECT r.id AS run,"
    " r.scenario, r.seed, r.outcome, r.reason, r.end_ns, r.events,"
    " r.rows, r.checks, r.checks_failed,"
    " (SELECT count(*) FROM op o WHERE o.run = r.id) AS ops,"
    " (SELECT count(*) FROM packet p WHERE p.run = r.id) AS packets,"
    " (SELECT count(*) FROM packet p WHERE p.run = r.id"
    "  AND p.fate = 'lost') AS lost,"
    " substr(r.digest, 1, 16) AS digest16 FROM run r;";

static const char RUN_INSERT[] =
    "INSERT INTO run(scenario, scenario_sha256, seed, params, version,"
    " outcome, reason, end_ns, events, rows, checks, checks_failed,"
    " digest, schedule, schema, limits) VALUES(?1, ?2, ?3, ?4, ?5, ?6,"
    " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/* The growable buffer rows are serialised into. */
typedef struct arena {
	uint8_t *p;
	size_t len, cap; /* len: bytes of kept records */
} arena;

struct sim_trace {
	char *path; /* NULL: digest only */
	sqlite3 *db;
	sqlite3_stmt *ins[T_COUNT], *ins_run, *begin, *commit;
	int keep_rows; /* setting; latched into |keeping| at begin */
	void (*cap_hook)(void *, uint64_t);
	void *cap_ud;
	uint64_t max_rows;
	uint64_t crash_after;
	int spool;  /* no database: finished runs become a record */
	int batch;  /* a batch transaction is open */
	arena rec;  /* the last spooled run, when have_rec */
	int have_rec;
	int err;
	char errmsg[512];

	int in_run;
	int keeping;    /* this run's rows go into the arena */
	int hashed_all; /* every row reached its table's hash */
	char *scenario, *scenario_sha256, *params, *limits;
	uint64_t seed;
	arena a;
	SHA256_CTX sha[T_COUNT];
	uint64_t rows;
	uint64_t kept[T_COUNT]; /* rows of each table in the arena */

	/* The commit's row source (see "the run's rows as a table"). */
	int feed_tab;     /* the table being inserted */
	uint64_t fed;     /* its rows the statement has read */
	uint64_t written; /* rows inserted in the commit, for crash_after */
};

/* --- messages ------------------------------------------------------------ */

static void vfail(char *msg, size_t n, const char *fmt, va_list ap)
{
	if (n == 0) {
		return;
	}
	vsnprintf(msg, n, fmt, ap);
	for (char *c = msg; *c != '\0'; c++) {
		if (*c == '\n' || *c == '\r') { /* one line, always */
			*c = ' ';
		}
	}
}

static int fail(char *msg, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *msg, size_t n, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(msg, n, fmt, ap);
	va_end(ap);
	return code;
}

/* set_err records |code| as the sticky error (if none yet) and the
 * message as the last one. Returns |code|. */
static int set_err(sim_trace *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(sim_trace *t, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(t->errmsg, sizeof(t->errmsg), fmt, ap);
	va_end(ap);
	if (t->err == 0) {
		t->err = code;
	}
	return code;
}

static const char *label(const sim_trace *t)
{
	return t->path ? t->path : "trace (digest only)";
}

static int map_sqlite(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SIM_EBUSY;
	case SQLITE_FULL:
		return SIM_EFULL;
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
		return SIM_ECORRUPT;
	case SQLITE_PERM:
	case SQLITE_READONLY:
	case SQLITE_AUTH:
		return SIM_EPERM;
	case SQLITE_NOMEM:
		return SIM_ENOMEM;
	case SQLITE_TOOBIG:
		return SIM_ELIMIT;
	default: /* IOERR, CANTOPEN, PROTOCOL, ... */
		return SIM_EIO;
	}
}

/* sql_fail turns SQLite's |rc| on |db| into a SIM_E* code and a one-line
 * message naming |path|, with |doing| saying what failed. */
static int sql_fail(char *msg, size_t n, sqlite3 *db, int rc, const char *path,
		    const char *doing)
{
	int code = map_sqlite(rc);
	const char *why = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
	int e = db ? sqlite3_system_errno(db) : 0;
	if (code == SIM_EIO && (e == ENOSPC || e == EDQUOT)) {
		code = SIM_EFULL; /* SQLite says IOERR for some of these */
	}
	switch (code) {
	case SIM_EBUSY:
		return fail(msg, n, code, "%s: locked by another writer", path);
	case SIM_EFULL:
		return fail(msg, n, code, "disk full writing %s", path);
	case SIM_ECORRUPT:
		return fail(msg, n, code, "%s: trace file is corrupt (%s)",
			    path, why);
	case SIM_EIO:
		return fail(msg, n, code, "%s: I/O error %s: %s%s%s%s", path,
			    doing, why, e ? " (" : "", e ? strerror(e) : "",
			    e ? ")" : "");
	default:
		return fail(msg, n, code, "%s: %s: %s", path, doing, why);
	}
}

/* --- canonical serialisation --------------------------------------------- */

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

static int reserve(arena *a, size_t need)
{
	if (need <= a->cap) {
		return 0;
	}
	size_t c = a->cap ? a->cap : 4096;
	while (c < need) {
		c *= 2;
	}
	uint8_t *p = realloc(a->p, c);
	if (p == NULL) {
		return SIM_ENOMEM;
	}
	a->p = p;
	a->cap = c;
	return 0;
}

/* A row being written at the end of an arena, after room for its record
 * header (table byte and length). Errors are sticky in |err|. */
typedef struct rowbuf {
	arena *a;
	size_t start, pos;
	int err;
} rowbuf;

static void rb_begin(rowbuf *b, arena *a)
{
	b->a = a;
	b->start = a->len;
	b->pos = a->len + 5;
	b->err = reserve(a, b->pos);
}

static uint8_t *rb_room(rowbuf *b, size_t n)
{
	if (b->err != 0) {
		return NULL;
	}
	if (n > ROW_BYTES_MAX || b->pos - b->start - 5 + n > ROW_BYTES_MAX) {
		b->err = SIM_ELIMIT;
		return NULL;
	}
	if (n > b->a->cap - b->pos && (b->err = reserve(b->a, b->pos + n))) {
		return NULL;
	}
	uint8_t *p = b->a->p + b->pos;
	b->pos += n;
	return p;
}

static void put_null(rowbuf *b)
{
	uint8_t *p = rb_room(b, 1);
	if (p != NULL) {
		p[0] = TAG_NULL;
	}
}

static void put_int(rowbuf *b, int64_t v)
{
	uint8_t *p = rb_room(b, 9);
	if (p != NULL) {
		p[0] = TAG_INT;
		put_i64(p + 1, v);
	}
}

/* An integer where -1 means "none": NULL, as stored. */
static void put_opt(rowbuf *b, int64_t v)
{
	if (v == -1) {
		put_null(b);
	} else {
		put_int(b, v);
	}
}

static void put_bytes(rowbuf *b, int tag, const void *v, size_t n)
{
	if (n > ROW_BYTES_MAX) {
		b->err = b->err ? b->err : SIM_ELIMIT;
		return;
	}
	uint8_t *p = rb_room(b, 5 + n);
	if (p != NULL) {
		p[0] = (uint8_t)tag;
		put_u32(p + 1, (uint32_t)n);
		if (n > 0) {
			memcpy(p + 5, v, n);
		}
	}
}

static void put_text(rowbuf *b, const char *s)
{
	if (s == NULL) {
		put_null(b);
	} else {
		put_bytes(b, TAG_TEXT, s, strlen(s));
	}
}

static void put_blob(rowbuf *b, const void *v, size_t n)
{
	if (v == NULL) {
		put_null(b);
	} else {
		put_bytes(b, TAG_BLOB, v, n);
	}
}

static const uint8_t *rb_row(const rowbuf *b, size_t *n)
{
	*n = b->pos - b->start - 5;
	return b->a->p + b->start + 5;
}

/* The outcome fields that open the digest, in canonical form. */
static void put_outcome(rowbuf *b, const char *outcome, const char *reason,
			int64_t end_ns, int64_t events, int64_t checks,
			int64_t checks_failed)
{
	put_text(b, outcome);
	put_text(b, reason);
	put_int(b, end_ns);
	put_int(b, events);
	put_int(b, checks);
	put_int(b, checks_failed);
}

/* digest_final consumes the table hashes |tabs|. */
static void digest_final(const uint8_t *outcome, size_t outcome_len,
			 SHA256_CTX tabs[T_COUNT], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	SHA256_CTX all;
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256_Init(&all);
	SHA256_Update(&all, outcome, outcome_len);
	for (int i = 0; i < T_COUNT; i++) {
		SHA256_Final(md, &tabs[i]);
		SHA256_Update(&all, tables[i].name, strlen(tables[i].name));
		SHA256_Update(&all, md, sizeof(md));
	}
	SHA256_Final(md, &all);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[64] = '\0';
}

/* --- rows ---------------------------------------------------------------- */

static void drop_rows(sim_trace *t)
{
	t->keeping = 0;
	t->a.len = 0;
	memset(t->kept, 0, sizeof(t->kept));
	if (t->a.cap > ARENA_KEEP_MAX) {
		free(t->a.p);
		t->a.p = NULL;
		t->a.cap = 0;
	}
}

static int row_begin(sim_trace *t, rowbuf *b)
{
	if (t == NULL || !t->in_run) {
		return 0;
	}
	rb_begin(b, &t->a);
	return 1;
}

/* row_end hashes the row and, when the run's rows are kept, makes it a
 * record of the arena. */
static void row_end(sim_trace *t, int tab, rowbuf *b)
{
	if (b->err != 0) {
		t->hashed_all = 0;
		if (b->err == SIM_ELIMIT) {
			set_err(t, SIM_ELIMIT,
				"%s: a %s row is over %u bytes; the run is "
				"not stored",
				label(t), tables[tab].name, ROW_BYTES_MAX);
		} else {
			set_err(t, b->err,
				"%s: out of memory buffering the run's rows",
				label(t));
		}
		drop_rows(t);
		return;
	}
	size_t n;
	const uint8_t *row = rb_row(b, &n);
	SHA256_Update(&t->sha[tab], row, n);
	t->rows++;
	if (!t->keeping) {
		return;
	}
	if (t->rows > t->max_rows) {
		if (t->cap_hook != NULL) {
			/* The run ends at the cap (outcome limit) and is stored
			 * without its rows, as with rows off. */
			t->cap_hook(t->cap_ud, t->max_rows);
		} else {
			set_err(t, SIM_ELIMIT,
				"%s: the run has more than %llu trace rows "
				"(the cap); the run is not stored",
				label(t), (unsigned long long)t->max_rows);
		}
		drop_rows(t);
		return;
	}
	t->a.p[b->start] = (uint8_t)tab;
	put_u32(t->a.p + b->start + 1, (uint32_t)n);
	t->a.len = b->pos;
	t->kept[tab]++;
}

void sim_trace_node(sim_trace *t, int64_t id, const char *name,
		    const char *kind)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, id);
	put_text(&b, name);
	put_text(&b, kind);
	row_end(t, T_NODE, &b);
}

void sim_trace_event(sim_trace *t, sim_time time, const char *node,
		     const char *kind, int64_t parent)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, time);
	put_text(&b, node);
	put_text(&b, kind);
	put_opt(&b, parent);
	row_end(t, T_EVENT, &b);
}

void sim_trace_op(sim_trace *t, const sim_op_row *r)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, r->time);
	put_text(&b, r->node);
	put_int(&b, r->op_id);
	put_text(&b, r->op_type);
	put_text(&b, r->action);
	put_int(&b, r->depth);
	put_text(&b, r->cause_kind);
	put_opt(&b, r->cause_id);
	put_text(&b, r->detail);
	put_opt(&b, r->event);
	row_end(t, T_OP, &b);
}

void sim_trace_packet(sim_trace *t, const sim_packet_row *r)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, r->id);
	put_opt(&b, r->parent);
	put_text(&b, r->link);
	put_text(&b, r->src);
	put_text(&b, r->dst);
	put_text(&b, r->proto);
	put_int(&b, r->send_ns);
	put_opt(&b, r->deliver_ns);
	put_int(&b, r->len);
	put_text(&b, r->fate);
	put_text(&b, r->reason);
	put_opt(&b, r->dup_of);
	put_text(&b, r->ptype);
	put_text(&b, r->space);
	put_opt(&b, r->pn);
	put_text(&b, r->frames);
	put_text(&b, r->hs_state);
	put_blob(&b, r->data, r->data_len);
	row_end(t, T_PACKET, &b);
}

void sim_trace_tls(sim_trace *t, const sim_tls_row *r)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, r->time);
	put_text(&b, r->node);
	put_text(&b, r->event);
	put_text(&b, r->level);
	put_text(&b, r->direction);
	put_opt(&b, r->code);
	put_text(&b, r->detail);
	row_end(t, T_TLS, &b);
}

void sim_trace_check(sim_trace *t, sim_time time, int ok, const char *message,
		     const char *location, const char *detail)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, time);
	put_int(&b, ok ? 1 : 0);
	put_text(&b, message);
	put_text(&b, location);
	put_text(&b, detail);
	row_end(t, T_CHECK, &b);
}

void sim_trace_log(sim_trace *t, sim_time time, const char *node,
		   const char *text)
{
	rowbuf b;
	if (!row_begin(t, &b)) {
		return;
	}
	put_int(&b, time);
	put_text(&b, node);
	put_text(&b, text);
	row_end(t, T_LOG, &b);
}

/* --- the run's rows as a table ------------------------------------------- */

/* The kept rows reach SQLite through temp.tlsim_rows, a virtual table of
 * this connection that reads the arena: one INSERT ... SELECT per table
 * and run, not one INSERT per row. The inserting cursor then stays open
 * across a table's rows, which all go to the end of its (run, seq) key, so
 * SQLite finds each one's place on the last page instead of searching
 * from the root, and the statement is set up and finished once per table
 * rather than once per row. Values are handed over in place
 * (SQLITE_STATIC: the arena does not change during the commit) and take
 * the same column affinities as bound parameters would, so the stored rows
 * are the same. It lives in the connection's temp schema, where no table
 * of the file can hide it.
 *
 * Columns: seq, then c0, c1, ... the columns of a record (as many as the
 * widest table has). It reads the records of table t->feed_tab. */
#define FEED_COLS ARRAY_LEN(packet_cols) /* the widest table */

typedef struct feed_vtab {
	sqlite3_vtab base;
	sim_trace *t;
} feed_vtab;

typedef struct feed_cursor {
	sqlite3_vtab_cursor base;
	sim_trace *t;
	const uint8_t *next, *end; /* the next record, the arena's end */
	int eof;
	int64_t seq;
	const uint8_t *col[FEED_COLS]; /* each column's tag byte */
} feed_cursor;

static int feed_connect(sqlite3 *db, void *aux, int argc,
			const char *const *argv, sqlite3_vtab **out,
			char **errp)
{
	char sql[256];
	size_t k = (size_t)snprintf(sql, sizeof(sql), "CREATE TABLE x(seq");
	for (size_t c = 0; c < FEED_COLS; c++) {
		k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", c%zu", c);
	}
	snprintf(sql + k, sizeof(sql) - k, ")");
	int rc = sqlite3_declare_vtab(db, sql);
	if (rc != SQLITE_OK) {
		return rc;
	}
	sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
	feed_vtab *v = sqlite3_malloc(sizeof(*v));
	if (v == NULL) {
		return SQLITE_NOMEM;
	}
	memset(v, 0, sizeof(*v));
	v->t = aux;
	*out = &v->base;
	return SQLITE_OK;
}

static int feed_disconnect(sqlite3_vtab *v)
{
	sqlite3_free(v);
	return SQLITE_OK;
}

static int feed_best_index(sqlite3_vtab *v, sqlite3_index_info *info)
{
	info->estimatedCost = 1e6;
	info->estimatedRows = 1000000;
	return SQLITE_OK;
}

static int feed_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out)
{
	feed_cursor *c = sqlite3_malloc(sizeof(*c));
	if (c == NULL) {
		return SQLITE_NOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->t = ((feed_vtab *)v)->t;
	*out = &c->base;
	return SQLITE_OK;
}

static int feed_close(sqlite3_vtab_cursor *cur)
{
	sqlite3_free(cur);
	return SQLITE_OK;
}

/* value_len is the length of the canonical value at |v|, tag included. */
static size_t value_len(const uint8_t *v)
{
	switch (v[0]) {
	case TAG_NULL:
		return 1;
	case TAG_INT:
		return 9;
	default:
		return 5 + (size_t)get_u32(v + 1);
	}
}

/* feed_advance moves to the next record of the table being inserted, if
 * it has one, and finds its columns. */
static void feed_advance(feed_cursor *c)
{
	const uint8_t *p = c->next;
	int tab = c->t->feed_tab;
	if ((uint64_t)(c->seq + 1) >= c->t->kept[tab]) {
		c->eof = 1; /* the rest of the arena is other tables' */
		return;
	}
	while (p < c->end && p[0] != tab) {
		p += 5 + get_u32(p + 1);
	}
	if (SIM_NEVER(p >= c->end)) {
		c->eof = 1;
		return;
	}
	const uint8_t *v = p + 5;
	c->next = v + get_u32(p + 1);
	for (int i = 0; i < tables[tab].ncols; i++) {
		c->col[i] = v;
		v += value_len(v);
	}
	c->seq++;
}

static int feed_filter(sqlite3_vtab_cursor *cur, int idx, const char *idxs,
		       int argc, sqlite3_value **argv)
{
	feed_cursor *c = (feed_cursor *)cur;
	c->next = c->t->a.p;
	c->end = c->t->a.p + c->t->a.len;
	c->eof = 0;
	c->seq = -1;
	feed_advance(c);
	return SQLITE_OK;
}

/* crash_point is the sim_trace_set_crash_after hook: it counts every row
 * inserted in the commit transaction, the run row first. */
static void crash_point(sim_trace *t)
{
	if (t->crash_after != 0 && ++t->written >= t->crash_after) {
		_exit(9);
	}
}

static int feed_next(sqlite3_vtab_cursor *cur)
{
	feed_cursor *c = (feed_cursor *)cur;
	/* The statement inserts each row before it asks for the next. */
	c->t->fed++;
	crash_point(c->t);
	feed_advance(c);
	return SQLITE_OK;
}

static int feed_eof(sqlite3_vtab_cursor *cur)
{
	return ((feed_cursor *)cur)->eof;
}

static int feed_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
	feed_cursor *c = (feed_cursor *)cur;
	if (i == 0) {
		sqlite3_result_int64(ctx, c->seq);
		return SQLITE_OK;
	}
	if (i > tables[c->t->feed_tab].ncols) {
		sqlite3_result_null(ctx); /* not a column of this table */
		return SQLITE_OK;
	}
	const uint8_t *v = c->col[i - 1];
	switch (v[0]) {
	case TAG_NULL:
		sqlite3_result_null(ctx);
		break;
	case TAG_INT:
		sqlite3_result_int64(ctx, get_i64(v + 1));
		break;
	case TAG_TEXT:
		sqlite3_result_text(ctx, (const char *)v + 5,
				    (int)get_u32(v + 1), SQLITE_STATIC);
		break;
	default:
		sqlite3_result_blob(ctx, v + 5, (int)get_u32(v + 1),
				    SQLITE_STATIC);
		break;
	}
	return SQLITE_OK;
}

static int feed_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
	*rowid = ((feed_cursor *)cur)->seq;
	return SQLITE_OK;
}

static const sqlite3_module feed_module = {
    .xCreate = feed_connect,
    .xConnect = feed_connect,
    .xBestIndex = feed_best_index,
    .xDisconnect = feed_disconnect,
    .xDestroy = feed_disconnect,
    .xOpen = feed_open,
    .xClose = feed_close,
    .xFilter = feed_filter,
    .xNext = feed_next,
    .xEof = feed_eof,
    .xColumn = feed_column,
    .xRowid = feed_rowid,
};

/* --- schema and validation ----------------------------------------------- */

static int exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int query_int(sqlite3 *db, const char *sql, int64_t *out)
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
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	return rc;
}

/* "col1, col2, ..." (with types when |typed|) of table |tab|, the columns
 * a run of schema version |schema| has. */
static void column_list(char *buf, size_t n, int tab, int typed, int schema)
{
	size_t k = 0;
	buf[0] = '\0';
	for (int c = 0; c < tables[tab].ncols && k < n; c++) {
		const column *col = &tables[tab].cols[c];
		if (col->since > schema) {
			continue;
		}
		k += (size_t)snprintf(buf + k, n - k, "%s%s%s%s", k ? ", " : "",
				      col->name, typed ? " " : "",
				      typed ? col->type : "");
	}
}

int sim_trace_causality_create(sqlite3 *db, int temp)
{
	char sql[sizeof(sim_trace_causality_views) + 64];
	snprintf(sql, sizeof(sql), sim_trace_causality_views, temp ? "TEMP " : "",
		 temp ? "temp." : "");
	return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static int create_causality_views(sqlite3 *db, int temp)
{
	return sim_trace_causality_create(db, temp);
}

static int create_schema(sqlite3 *db)
{
	char sql[1024], cols[512];
	int rc = exec(db, RUN_SCHEMA);
	for (int i = 0; i < T_COUNT && rc == SQLITE_OK; i++) {
		column_list(cols, sizeof(cols), i, 1, SIM_TRACE_SCHEMA_VERSION);
		snprintf(sql, sizeof(sql),
			 "CREATE TABLE \"%s\"(run INTEGER NOT NULL, seq INTEGER"
			 " NOT NULL, %s, PRIMARY KEY(run, seq)) WITHOUT ROWID",
			 tables[i].name, cols);
		rc = exec(db, sql);
	}
	if (rc == SQLITE_OK) {
		rc = exec(db, RUN_SUMMARY_VIEW);
	}
	if (rc == SQLITE_OK) {
		rc = create_causality_views(db, 0);
	}
	if (rc == SQLITE_OK) {
		snprintf(
		    sql, sizeof(sql),
		    "INSERT INTO meta VALUES('schema_version', '%d'),"
		    " ('created_by', 'tlsim %s');"
		    "PRAGMA application_id = %d; PRAGMA user_version = %d;",
		    SIM_TRACE_SCHEMA_VERSION, TLSIM_VERSION,
		    SIM_TRACE_APPLICATION_ID, SIM_TRACE_SCHEMA_VERSION);
		rc = exec(db, sql);
	}
	return rc;
}

/* upgrade_schema brings a trace of an older schema version to this one,
 * inside the caller's transaction. 1 -> 2: run.schedule; 2 -> 3: run.schema,
 * event.parent, op.event (causality); 3 -> 4: run.limits. */
static int upgrade_schema(sqlite3 *db)
{
	int64_t ver = 0;
	int rc = query_int(db, "PRAGMA user_version", &ver);
	if (rc == SQLITE_OK && ver < 2) {
		rc = exec(db, "ALTER TABLE run ADD COLUMN schedule TEXT");
	}
	if (rc == SQLITE_OK && ver < 3) {
		/* Older runs keep NULL in the new columns; the digest of a run
		 * covers the columns of its own schema (run.schema, NULL: 2). */
		rc = exec(db, "ALTER TABLE run ADD COLUMN schema INTEGER;"
			      "ALTER TABLE event ADD COLUMN parent INTEGER;"
			      "ALTER TABLE op ADD COLUMN event INTEGER;");
	}
	if (rc == SQLITE_OK && ver < 4) {
		rc = exec(db, "ALTER TABLE run ADD COLUMN limits TEXT");
	}
	if (rc == SQLITE_OK && ver < SIM_TRACE_SCHEMA_VERSION) {
		char sql[256];
		snprintf(sql, sizeof(sql),
			 "UPDATE meta SET value = '%d' WHERE key = "
			 "'schema_version'; PRAGMA user_version = %d;",
			 SIM_TRACE_SCHEMA_VERSION, SIM_TRACE_SCHEMA_VERSION);
		rc = exec(db, sql);
	}
	return rc;
}

/* check_trace checks that |db| is a tlsim trace this build reads, with
 * PRAGMA quick_check when |quick|. Sets |*empty| for a database with no
 * schema and no application id: a new trace. Returns 0 or a SIM_E* code
 * with a message in |msg|. Reads only. */
static int check_trace(sqlite3 *db, const char *path, int quick, int *empty,
		       char *msg, size_t n)
{
	int64_t app = 0, ver = 0, objects = 0, ours = 0;
	int rc = query_int(db, "PRAGMA application_id", &app);
	if (rc == SQLITE_OK) {
		rc = query_int(db, "PRAGMA user_version", &ver);
	}
	if (rc == SQLITE_OK) {
		rc = query_int(db, "SELECT count(*) FROM sqlite_master",
			       &objects);
	}
	if (rc != SQLITE_OK) {
		return sql_fail(msg, n, db, rc, path, "reading the trace");
	}
	*empty = app == 0 && objects == 0;
	if (*empty) {
		return 0;
	}
	if (app != SIM_TRACE_APPLICATION_ID) {
		return fail(msg, n, SIM_ENOTTRACE,
			    "%s: not a tlsim trace (an SQLite database of "
			    "another application)",
			    path);
	}
	if (ver > SIM_TRACE_SCHEMA_VERSION) {
		return fail(msg, n, SIM_ESCHEMA,
			    "%s: trace schema version %lld is newer than "
			    "this tlsim (reads %d)",
			    path, (long long)ver, SIM_TRACE_SCHEMA_VERSION);
	}
	if (ver < 1) {
		return fail(msg, n, SIM_ESCHEMA,
			    "%s: trace schema version %lld is not one this "
			    "tlsim reads (reads %d)",
			    path, (long long)ver, SIM_TRACE_SCHEMA_VERSION);
	}
	rc = query_int(db,
		       "SELECT count(*) FROM sqlite_master WHERE type = "
		       "'table' AND name IN ('meta', 'run', 'node', 'event',"
		       " 'op', 'packet', 'tls', 'check', 'log')",
		       &ours);
	if (rc != SQLITE_OK) {
		return sql_fail(msg, n, db, rc, path, "reading the trace");
	}
	if (ours != 2 + T_COUNT) {
		return fail(msg, n, SIM_ECORRUPT,
			    "%s: trace file is corrupt (schema version %lld "
			    "but only %lld of its %d tables)",
			    path, (long long)ver, (long long)ours, 2 + T_COUNT);
	}
	if (!quick) {
		return 0;
	}
	sqlite3_stmt *st;
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		return sql_fail(msg, n, db, rc, path, "checking the trace");
	}
	rc = sqlite3_step(st);
	int code = 0;
	if (rc == SQLITE_ROW) {
		const char *res = (const char *)sqlite3_column_text(st, 0);
		if (res == NULL || strcmp(res, "ok") != 0) {
			code = fail(msg, n, SIM_ECORRUPT,
				    "%s: trace file is corrupt (quick_check: "
				    "%.200s)",
				    path, res ? res : "no result");
		}
	} else {
		code = sql_fail(msg, n, db, rc, path, "checking the trace");
	}
	sqlite3_finalize(st);
	return code;
}

/* check_file looks at |path| before SQLite does. Sets |*exists| when the
 * file exists and is not empty. */
static int check_file(const char *path, int *exists, char *msg, size_t n)
{
	struct stat st;
	*exists = 0;
	if (stat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode)) {
			return fail(msg, n, SIM_ENOTTRACE,
				    "%s: not a tlsim trace (not a regular "
				    "file)",
				    path);
		}
		if (st.st_size == 0) {
			return 0;
		}
		*exists = 1;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			return fail(
			    msg, n, errno == EACCES ? SIM_EPERM : SIM_EIO,
			    "%s: cannot open trace: %s", path, strerror(errno));
		}
		uint8_t hdr[100];
		ssize_t got = read(fd, hdr, sizeof(hdr));
		int e = errno;
		close(fd);
		if (got < 0) {
			return fail(msg, n, SIM_EIO,
				    "%s: cannot read trace: %s", path,
				    strerror(e));
		}
		if (got < 16 || memcmp(hdr, "SQLite format 3", 16) != 0) {
			return fail(msg, n, SIM_ENOTTRACE,
				    "%s: not a tlsim trace (not an SQLite "
				    "database)",
				    path);
		}
		/* Another application's id (header offset 68, big-endian):
		 * refused before SQLite opens the file at all, which for a
		 * WAL database would leave -wal and -shm files behind. */
		uint32_t app = got < 72 ? 0
					: (uint32_t)hdr[68] << 24 |
					      (uint32_t)hdr[69] << 16 |
					      (uint32_t)hdr[70] << 8 | hdr[71];
		if (app != 0 && app != SIM_TRACE_APPLICATION_ID) {
			return fail(msg, n, SIM_ENOTTRACE,
				    "%s: not a tlsim trace (an SQLite database "
				    "of another application)",
				    path);
		}
		return 0;
	}
	if (errno == ENOENT) {
		return 0;
	}
	if (errno == ENOTDIR) {
		return fail(msg, n, SIM_ENOENT,
			    "%s: cannot create trace: a component of the "
			    "path is not a directory",
			    path);
	}
	return fail(msg, n, errno == EACCES ? SIM_EPERM : SIM_EIO,
		    "%s: cannot open trace: %s", path, strerror(errno));
}

/* check_dir: the directory must exist and be writable, for a new trace
 * and for SQLite's -wal and -shm files next to an existing one (with
 * |present|). */
static int check_dir(const char *path, int present, char *msg, size_t n)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == path) {
		snprintf(dir, sizeof(dir), "/");
	} else if ((size_t)(slash - path) >= sizeof(dir)) {
		return fail(msg, n, SIM_ENOENT, "%.200s...: path too long",
			    path);
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	}
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno == EACCES) {
			return fail(msg, n, SIM_EPERM,
				    "%s: cannot create trace: directory %s "
				    "is not accessible",
				    path, dir);
		}
		return fail(msg, n, SIM_ENOENT,
			    "%s: cannot create trace: directory %s does not "
			    "exist",
			    path, dir);
	}
	if (!S_ISDIR(st.st_mode)) {
		return fail(msg, n, SIM_ENOENT,
			    "%s: cannot create trace: %s is not a directory",
			    path, dir);
	}
	if (access(dir, W_OK) != 0) {
		return fail(msg, n, SIM_EPERM,
			    "%s: cannot %s trace: directory %s is not "
			    "writable%s",
			    path, present ? "write" : "create", dir,
			    present ? " (SQLite keeps its -wal file there)"
				    : "");
	}
	return 0;
}

static int open_db(sim_trace *t)
{
	const char *path = t->path;
	char *msg = t->errmsg;
	size_t n = sizeof(t->errmsg);
	int exists, empty = 1, rc;
	if ((rc = check_dir(path, access(path, F_OK) == 0, msg, n)) != 0 ||
	    (rc = check_file(path, &exists, msg, n)) != 0) {
		return rc;
	}
	if (exists && access(path, R_OK | W_OK) != 0) {
		return fail(msg, n, SIM_EPERM, "%s: cannot open trace: %s",
			    path, strerror(errno));
	}
	if (exists) {
		/* Validate read-only: a file that is not ours is never
		 * written to, not even by a WAL checkpoint at close. */
		sqlite3 *ro = NULL;
		rc = sqlite3_open_v2(path, &ro, SQLITE_OPEN_READONLY, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_busy_timeout(ro, 0);
			rc = check_trace(ro, path, 1, &empty, msg, n);
		} else {
			rc = sql_fail(msg, n, ro, rc, path, "opening trace");
		}
		sqlite3_close(ro);
		if (rc != 0) {
			return rc;
		}
	}
	/* NOMUTEX: a trace is used by one thread at a time, so SQLite's
	 * per-call connection mutex (about a thousand lock/unlock pairs per
	 * TLS handshake run, one per bind) buys nothing. */
	rc = sqlite3_open_v2(path, &t->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX,
			     sim_vfs_register());
	if (rc != SQLITE_OK) {
		int e = t->db ? sqlite3_system_errno(t->db) : 0;
		int code = map_sqlite(rc);
		if (code == SIM_EIO &&
		    (e == EACCES || e == EPERM || e == EROFS ||
		     (!exists && e == ENOENT))) {
			code = SIM_EPERM; /* e.g. /proc, read-only mounts */
		}
		return fail(msg, n, code, "%s: cannot open trace: %s%s%s", path,
			    t->db ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc),
			    e ? ": " : "", e ? strerror(e) : "");
	}
	sqlite3_extended_result_codes(t->db, 1);
	/* Probe the write lock without waiting; create the schema under it,
	 * checking again in case another process created it meanwhile. */
	sqlite3_busy_timeout(t->db, 0);
	rc = exec(t->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK) {
		return sql_fail(msg, n, t->db, rc, path, "opening trace");
	}
	/* No other writer. Readers (sqlite3 watching the file) may still
	 * hold a shared lock that the commit below, and the switch to WAL
	 * (until then the file is in rollback mode), must wait out. */
	sqlite3_busy_timeout(t->db, BUSY_TIMEOUT_MS);
	int code = check_trace(t->db, path, 0, &empty, msg, n);
	if (code == 0 && empty) {
		rc = create_schema(t->db);
	} else if (code == 0) {
		/* Traces of schema 1 written before the view existed. */
		rc = exec(t->db, RUN_SUMMARY_VIEW);
		if (rc == SQLITE_OK) {
			rc = upgrade_schema(t->db);
		}
		if (rc == SQLITE_OK) {
			rc = create_causality_views(t->db, 0);
		}
	}
	if (code == 0 && rc == SQLITE_OK) {
		rc = exec(t->db, "COMMIT");
	}
	if (code == 0 && rc != SQLITE_OK) {
		code = sql_fail(msg, n, t->db, rc, path,
				empty ? "creating trace" : "opening trace");
	}
	if (!sqlite3_get_autocommit(t->db)) {
		exec(t->db, "ROLLBACK");
	}
	if (code != 0) {
		return code;
	}
	sqlite3_stmt *st;
	rc =
	    sqlite3_prepare_v2(t->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st) == SQLITE_ROW ? SQLITE_OK
						    : sqlite3_errcode(t->db);
		sqlite3_finalize(st);
	}
	if (rc == SQLITE_OK) {
		rc = exec(t->db, "PRAGMA synchronous=NORMAL");
	}
	if (rc == SQLITE_OK) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint=%d",
			 CHECKPOINT_PAGES);
		rc = exec(t->db, sql);
	}
	if (rc == SQLITE_OK) {
		rc =
		    sqlite3_create_module(t->db, "tlsim_rows", &feed_module, t);
	}
	if (rc == SQLITE_OK) {
		rc = exec(t->db, "CREATE VIRTUAL TABLE temp.tlsim_rows USING "
				 "tlsim_rows");
	}
	if (rc != SQLITE_OK) {
		return sql_fail(msg, n, t->db, rc, path, "opening trace");
	}
	sqlite3_busy_timeout(t->db, BUSY_TIMEOUT_MS);
	return 0;
}

/* --- lifecycle ----------------------------------------------------------- */

int sim_trace_open(const char *path, sim_trace **out, char *err, size_t errlen)
{
	if (out == NULL) {
		return fail(err, errlen, SIM_EINVAL, "sim_trace_open: no out");
	}
	*out = NULL;
	if (path != NULL && path[0] == '\0') {
		return fail(err, errlen, SIM_EINVAL, "trace path is empty");
	}
	sim_trace *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return fail(err, errlen, SIM_ENOMEM, "%s: out of memory",
			    path ? path : "trace");
	}
	t->keep_rows = 1;
	t->max_rows = MAX_ROWS_DEFAULT;
	if (path != NULL) {
		int rc = SIM_ENOMEM;
		t->path = strdup(path);
		if (t->path == NULL) {
			fail(t->errmsg, sizeof(t->errmsg), rc,
			     "%s: out of memory", path);
		} else {
			rc = open_db(t);
		}
		if (rc != 0) {
			fail(err, errlen, rc, "%s", t->errmsg);
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
	free(t->limits);
	t->scenario = t->scenario_sha256 = t->params = t->limits = NULL;
	drop_rows(t);
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
	sqlite3_finalize(t->begin);
	sqlite3_finalize(t->commit);
	sqlite3_close(t->db);
	free(t->a.p);
	free(t->rec.p);
	free(t->path);
	free(t);
}

void sim_trace_set_rows(sim_trace *t, int keep)
{
	if (t != NULL) {
		t->keep_rows = keep != 0;
	}
}

void sim_trace_set_cap_hook(sim_trace *t, void (*fn)(void *, uint64_t),
			    void *user_data)
{
	if (t != NULL) {
		t->cap_hook = fn;
		t->cap_ud = user_data;
	}
}

void sim_trace_set_max_rows(sim_trace *t, uint64_t max)
{
	if (t != NULL) {
		t->max_rows = max;
	}
}

void sim_trace_set_crash_after(sim_trace *t, uint64_t n)
{
	if (t != NULL) {
		t->crash_after = n;
	}
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

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (s != NULL && (*out = strdup(s)) == NULL) {
		return SIM_ENOMEM;
	}
	return 0;
}

int sim_trace_begin(sim_trace *t, const sim_run_info *info)
{
	if (t == NULL || info == NULL) {
		return SIM_EINVAL;
	}
	if (t->in_run) { /* the run in progress goes on */
		return fail(t->errmsg, sizeof(t->errmsg), SIM_ESTATE,
			    "%s: sim_trace_begin: a run is already in "
			    "progress",
			    label(t));
	}
	t->err = 0;
	t->errmsg[0] = '\0';
	if (dup_opt(info->scenario, &t->scenario) ||
	    dup_opt(info->scenario_sha256, &t->scenario_sha256) ||
	    dup_opt(info->params, &t->params) ||
	    dup_opt(info->limits, &t->limits)) {
		clear_run(t);
		return set_err(t, SIM_ENOMEM, "%s: out of memory", label(t));
	}
	t->seed = info->seed;
	for (int i = 0; i < T_COUNT; i++) {
		SHA256_Init(&t->sha[i]);
	}
	t->rows = 0;
	t->a.len = 0;
	memset(t->kept, 0, sizeof(t->kept));
	t->keeping = (t->db != NULL || t->spool) && t->keep_rows;
	t->hashed_all = 1;
	t->have_rec = 0;
	t->rec.len = 0;
	if (t->rec.cap > ARENA_KEEP_MAX) {
		free(t->rec.p);
		t->rec.p = NULL;
		t->rec.cap = 0;
	}
	t->in_run = 1;
	return 0;
}

/* --- commit -------------------------------------------------------------- */

static int prepare(sim_trace *t, const char *sql, sqlite3_stmt **st)
{
	if (*st != NULL) {
		return SQLITE_OK;
	}
	return sqlite3_prepare_v3(t->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				  NULL);
}

/* prepare_commit prepares, once per sim_trace, the statements of a commit:
 * BEGIN IMMEDIATE and COMMIT, the run row's INSERT, and one INSERT per
 * table: INSERT OR FAIL INTO "tls" SELECT ?1, seq, c0, ... c6 FROM
 * temp.tlsim_rows. OR FAIL rather than the default ABORT: a failing row
 * stops the statement without undoing its earlier rows, so SQLite keeps no
 * statement journal for it; the whole transaction is rolled back. */
static int prepare_commit(sim_trace *t)
{
	char sql[512];
	int rc = prepare(t, "BEGIN IMMEDIATE", &t->begin);
	if (rc == SQLITE_OK) {
		rc = prepare(t, "COMMIT", &t->commit);
	}
	if (rc == SQLITE_OK) {
		rc = prepare(t, RUN_INSERT, &t->ins_run);
	}
	for (int i = 0; i < T_COUNT && rc == SQLITE_OK; i++) {
		if (t->ins[i] != NULL) {
			continue;
		}
		size_t k = (size_t)snprintf(
		    sql, sizeof(sql),
		    "INSERT OR FAIL INTO \"%s\" SELECT ?1, seq",
		    tables[i].name);
		for (int c = 0; c < tables[i].ncols; c++) {
			k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", c%d",
					      c);
		}
		snprintf(sql + k, sizeof(sql) - k, " FROM temp.tlsim_rows");
		rc = prepare(t, sql, &t->ins[i]);
	}
	return rc;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC)
		 : sqlite3_bind_null(st, i);
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		return sqlite3_reset(st);
	}
	sqlite3_reset(st);
	return rc;
}

/* write_run inserts the run row and the kept rows; inside a transaction.
 * Sets |*lost| if a table's statement did not read all its rows. */
static int write_run(sim_trace *t, const sim_run_result *res,
		     const char *digest, int64_t *run_id, int *lost)
{
	t->written = 0;
	sqlite3_stmt *st = t->ins_run;
	int rc;
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
	bind_text(st, 14, res->schedule != NULL && res->schedule[0] != '\0'
				  ? res->schedule
				  : NULL);
	sqlite3_bind_int(st, 15, SIM_TRACE_SCHEMA_VERSION);
	bind_text(st, 16, t->limits);
	rc = step_reset(st);
	if (rc != SQLITE_OK) {
		return rc;
	}
	crash_point(t);
	int64_t run = sqlite3_last_insert_rowid(t->db);
	*run_id = run;

	for (int tab = 0; tab < T_COUNT; tab++) {
		if (t->kept[tab] == 0) {
			continue;
		}
		st = t->ins[tab];
		sqlite3_bind_int64(st, 1, run);
		t->feed_tab = tab;
		t->fed = 0;
		rc = step_reset(st);
		if (rc != SQLITE_OK) {
			return rc;
		}
		if (SIM_NEVER(t->fed != t->kept[tab])) {
			*lost = tab + 1;
			return SQLITE_INTERNAL;
		}
	}
	return SQLITE_OK;
}

static int commit_run(sim_trace *t, const sim_run_result *res,
		      const char *digest, int64_t *run_id)
{
	int lost = 0;
	int rc = prepare_commit(t);
	if (rc == SQLITE_OK && !t->batch) {
		rc = step_reset(t->begin);
	}
	if (rc == SQLITE_OK) {
		rc = write_run(t, res, digest, run_id, &lost);
	}
	if (rc == SQLITE_OK && !t->batch) {
		rc = step_reset(t->commit);
	}
	if (rc == SQLITE_OK) {
		return 0;
	}
	t->batch = 0; /* the rollback below ends it */
	*run_id = 0;
	int code =
	    lost ? fail(t->errmsg, sizeof(t->errmsg), SIM_EINTERNAL,
			"%s: internal error writing the run: %llu of its %llu "
			"%s rows inserted",
			t->path, (unsigned long long)t->fed,
			(unsigned long long)t->kept[lost - 1],
			tables[lost - 1].name)
		 : sql_fail(t->errmsg, sizeof(t->errmsg), t->db, rc, t->path,
			    "writing the run");
	if (t->err == 0) {
		t->err = code;
	}
	/* SQLite may have rolled back already (SQLITE_FULL, IOERR). */
	if (!sqlite3_get_autocommit(t->db)) {
		exec(t->db, "ROLLBACK");
	}
	return code;
}

/* --- spooled runs -------------------------------------------------------- */

/* A spooled run is one arena record with the table byte SPOOL_TAG: the
 * run's fields in canonical form (scenario, scenario_sha256, seed, params,
 * schedule, digest, rows, limits, then the outcome fields exactly as
 * put_outcome writes them, which the digest starts with), followed by the
 * run's kept records as they were in the arena. */
#define SPOOL_TAG 0xff
#define SPOOL_FIELDS 14 /* 8 + the 6 outcome fields */
#define SPOOL_OUTCOME 8 /* the first outcome field */

int sim_trace_open_spool(sim_trace **out, char *err, size_t errlen)
{
	int rc = sim_trace_open(NULL, out, err, errlen);
	if (rc == 0) {
		(*out)->spool = 1;
	}
	return rc;
}

static int spool_run(sim_trace *t, const sim_run_result *res, const char *hex)
{
	rowbuf b;
	t->rec.len = 0;
	rb_begin(&b, &t->rec);
	put_text(&b, t->scenario);
	put_text(&b, t->scenario_sha256);
	put_int(&b, (int64_t)t->seed);
	put_text(&b, t->params);
	put_text(&b, res->schedule != NULL && res->schedule[0] != '\0'
			 ? res->schedule
			 : NULL);
	put_text(&b, hex);
	put_int(&b, (int64_t)t->rows);
	put_text(&b, t->limits);
	put_outcome(&b, res->outcome, res->reason, res->end_ns,
		    (int64_t)res->events, (int64_t)res->checks,
		    (int64_t)res->checks_failed);
	if (b.err == 0 && t->a.len > SIZE_MAX - b.pos) {
		b.err = SIM_ENOMEM;
	}
	if (b.err == 0) {
		b.err = reserve(&t->rec, b.pos + t->a.len);
	}
	if (b.err != 0) {
		return set_err(t, b.err, "%s: %s", label(t),
			       b.err == SIM_ELIMIT
				   ? "the run's fields are too long"
				   : "out of memory spooling the run");
	}
	size_t n;
	rb_row(&b, &n);
	t->rec.p[0] = SPOOL_TAG;
	put_u32(t->rec.p + 1, (uint32_t)n);
	if (t->a.len > 0) {
		memcpy(t->rec.p + b.pos, t->a.p, t->a.len);
	}
	t->rec.len = b.pos + t->a.len;
	t->have_rec = 1;
	return 0;
}

const void *sim_trace_spooled(const sim_trace *t, size_t *len)
{
	if (t == NULL || !t->have_rec) {
		*len = 0;
		return NULL;
	}
	*len = t->rec.len;
	return t->rec.p;
}

/* A canonical value read back: its tag, integer, or bytes. */
typedef struct value {
	int tag;
	int64_t i;
	const uint8_t *p;
	size_t n;
} value;

/* next_value reads the value at |*v| (before |end|) and moves past it.
 * Returns 0, or -1 if it does not fit or has no known tag. */
static int next_value(const uint8_t **v, const uint8_t *end, value *out)
{
	const uint8_t *p = *v;
	if (p >= end) {
		return -1;
	}
	out->tag = p[0];
	switch (p[0]) {
	case TAG_NULL:
		*v = p + 1;
		return 0;
	case TAG_INT:
		if (end - p < 9) {
			return -1;
		}
		out->i = get_i64(p + 1);
		*v = p + 9;
		return 0;
	case TAG_TEXT:
	case TAG_BLOB:
		if (end - p < 5 || get_u32(p + 1) > (size_t)(end - p - 5)) {
			return -1;
		}
		out->p = p + 5;
		out->n = get_u32(p + 1);
		*v = p + 5 + out->n;
		return 0;
	default:
		return -1;
	}
}

/* text_copy returns a NUL-terminated copy of a text value (NULL for a
 * NULL value) in |*out|; -1 out of memory or not text. */
static int text_copy(const value *v, char **out)
{
	*out = NULL;
	if (v->tag == TAG_NULL) {
		return 0;
	}
	if (v->tag != TAG_TEXT || memchr(v->p, '\0', v->n) != NULL) {
		return -1;
	}
	*out = malloc(v->n + 1);
	if (*out == NULL) {
		return -1;
	}
	memcpy(*out, v->p, v->n);
	(*out)[v->n] = '\0';
	return 0;
}

/* check_records walks the records in [p, end): each must be a row of a
 * known table with exactly that table's columns. Hashes each into its
 * table's |sha| and counts them into |kept|. Returns 0 or -1. */
static int check_records(const uint8_t *p, const uint8_t *end,
			 SHA256_CTX sha[T_COUNT], uint64_t kept[T_COUNT])
{
	while (p < end) {
		if (end - p < 5 || p[0] >= T_COUNT ||
		    get_u32(p + 1) > (size_t)(end - p - 5)) {
			return -1;
		}
		int tab = p[0];
		const uint8_t *v = p + 5, *row_end = v + get_u32(p + 1);
		value val;
		for (int c = 0; c < tables[tab].ncols; c++) {
			if (next_value(&v, row_end, &val) != 0) {
				return -1;
			}
		}
		if (v != row_end) {
			return -1;
		}
		SHA256_Update(&sha[tab], p + 5, get_u32(p + 1));
		kept[tab]++;
		p = row_end;
	}
	return 0;
}

int sim_trace_store_spooled(sim_trace *t, const void *rec, size_t len,
			    int64_t *run_id)
{
	int64_t ignored;
	if (run_id == NULL) {
		run_id = &ignored;
	}
	*run_id = 0;
	if (t == NULL || rec == NULL) {
		return SIM_EINVAL;
	}
	t->err = 0;
	t->errmsg[0] = '\0';
	if (t->db == NULL || t->in_run) {
		return set_err(t, SIM_ESTATE,
			       "%s: sim_trace_store_spooled: %s", label(t),
			       t->in_run ? "a run is in progress"
					 : "no database");
	}
	const uint8_t *p = rec, *end = p + len;
	if (len < 5 || p[0] != SPOOL_TAG || get_u32(p + 1) > len - 5) {
		return set_err(t, SIM_ECORRUPT,
			       "%s: a spooled run is malformed (header)",
			       label(t));
	}
	const uint8_t *v = p + 5, *fields_end = v + get_u32(p + 1);
	const uint8_t *outcome_at = NULL;
	value f[SPOOL_FIELDS];
	int bad = 0;
	for (int i = 0; i < SPOOL_FIELDS && !bad; i++) {
		if (i == SPOOL_OUTCOME) {
			outcome_at = v;
		}
		bad = next_value(&v, fields_end, &f[i]) != 0;
	}
	static const int int_fields[] = {2, 6, 10, 11, 12, 13};
	for (size_t i = 0; i < ARRAY_LEN(int_fields) && !bad; i++) {
		bad = f[int_fields[i]].tag != TAG_INT;
	}
	if (bad || v != fields_end || f[5].tag != TAG_TEXT || f[5].n != 64 ||
	    f[6].i < 0) {
		return set_err(t, SIM_ECORRUPT,
			       "%s: a spooled run is malformed (run fields)",
			       label(t));
	}
	SHA256_CTX sha[T_COUNT];
	uint64_t kept[T_COUNT] = {0}, rows = 0;
	for (int i = 0; i < T_COUNT; i++) {
		SHA256_Init(&sha[i]);
	}
	if (check_records(fields_end, end, sha, kept) != 0) {
		return set_err(t, SIM_ECORRUPT,
			       "%s: a spooled run is malformed (rows)",
			       label(t));
	}
	for (int i = 0; i < T_COUNT; i++) {
		rows += kept[i];
	}
	char hex[65];
	digest_final(outcome_at, (size_t)(fields_end - outcome_at), sha, hex);
	if (rows != (uint64_t)f[6].i || memcmp(hex, f[5].p, 64) != 0) {
		return set_err(t, SIM_ECORRUPT,
			       "%s: a spooled run of seed %llu holds %llu of "
			       "its %lld rows, hashing to %.16s, not to its "
			       "digest %.16s",
			       label(t), (unsigned long long)f[2].i,
			       (unsigned long long)rows, (long long)f[6].i,
			       hex, (const char *)f[5].p);
	}
	char *outcome = NULL, *reason = NULL, *schedule = NULL;
	size_t nrec = (size_t)(end - fields_end);
	int rc = text_copy(&f[0], &t->scenario) | text_copy(&f[1],
							     &t->scenario_sha256) |
		 text_copy(&f[3], &t->params) | text_copy(&f[4], &schedule) |
		 text_copy(&f[7], &t->limits) | text_copy(&f[8], &outcome) |
		 text_copy(&f[9], &reason);
	if (rc != 0 || reserve(&t->a, nrec) != 0) {
		free(outcome);
		free(reason);
		free(schedule);
		clear_run(t);
		return set_err(t, SIM_ENOMEM,
			       "%s: out of memory (or a malformed text field) "
			       "storing a spooled run",
			       label(t));
	}
	if (nrec > 0) {
		memcpy(t->a.p, fields_end, nrec);
	}
	t->a.len = nrec;
	memcpy(t->kept, kept, sizeof(kept));
	t->rows = rows;
	t->seed = (uint64_t)f[2].i;
	sim_run_result res = {.outcome = outcome,
			      .reason = reason,
			      .end_ns = f[10].i,
			      .events = (uint64_t)f[11].i,
			      .checks = (uint64_t)f[12].i,
			      .checks_failed = (uint64_t)f[13].i,
			      .schedule = schedule};
	int err = commit_run(t, &res, hex, run_id);
	free(outcome);
	free(reason);
	free(schedule);
	clear_run(t);
	return err;
}

int sim_trace_batch_begin(sim_trace *t)
{
	if (t == NULL || t->db == NULL || t->in_run || t->batch) {
		return t ? set_err(t, SIM_ESTATE,
				   "%s: sim_trace_batch_begin: %s", label(t),
				   t->db == NULL ? "no database"
				   : t->in_run	 ? "a run is in progress"
						 : "a batch is already open")
			 : SIM_EINVAL;
	}
	int rc = prepare_commit(t);
	if (rc == SQLITE_OK) {
		rc = step_reset(t->begin);
	}
	if (rc != SQLITE_OK) {
		int code = sql_fail(t->errmsg, sizeof(t->errmsg), t->db, rc,
				    t->path, "beginning a batch");
		t->err = t->err ? t->err : code;
		return code;
	}
	t->batch = 1;
	return 0;
}

int sim_trace_batch_commit(sim_trace *t)
{
	if (t == NULL || !t->batch) {
		return 0;
	}
	t->batch = 0;
	int rc = step_reset(t->commit);
	if (rc == SQLITE_OK) {
		return 0;
	}
	int code = sql_fail(t->errmsg, sizeof(t->errmsg), t->db, rc, t->path,
			    "committing a batch of runs");
	t->err = t->err ? t->err : code;
	if (!sqlite3_get_autocommit(t->db)) {
		exec(t->db, "ROLLBACK");
	}
	return code;
}

int sim_trace_end(sim_trace *t, const sim_run_result *res, char *digest,
		  int64_t *run_id)
{
	int64_t ignored;
	if (run_id == NULL) {
		run_id = &ignored;
	}
	*run_id = 0;
	if (digest != NULL) {
		digest[0] = '\0';
	}
	if (t == NULL || res == NULL) {
		return SIM_EINVAL;
	}
	if (!t->in_run) {
		t->err = 0;
		return set_err(t, SIM_ESTATE, "%s: sim_trace_end without a run",
			       label(t));
	}
	/* The outcome's canonical form goes after the kept records, where
	 * it is never mistaken for one. */
	rowbuf b;
	rb_begin(&b, &t->a);
	put_outcome(&b, res->outcome, res->reason, res->end_ns,
		    (int64_t)res->events, (int64_t)res->checks,
		    (int64_t)res->checks_failed);
	if (b.err != 0) {
		set_err(t, b.err, "%s: %s", label(t),
			b.err == SIM_ELIMIT ? "the run's outcome is too long"
					    : "out of memory");
		t->hashed_all = 0;
	}
	char hex[65] = "";
	if (t->hashed_all) {
		size_t n;
		const uint8_t *o = rb_row(&b, &n);
		digest_final(o, n, t->sha, hex);
		if (digest != NULL) {
			memcpy(digest, hex, sizeof(hex));
		}
	}
	int err = t->err;
	if (err == 0 && t->db != NULL) {
		err = commit_run(t, res, hex, run_id);
	} else if (err == 0 && t->spool) {
		err = spool_run(t, res, hex);
	}
	t->crash_after = 0;
	clear_run(t);
	return err;
}

/* --- recomputing a digest from the database ------------------------------ */

/* put_column serialises column |i| of the current row as it is stored. */
static int put_column(rowbuf *b, sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_NULL:
		put_null(b);
		return 0;
	case SQLITE_INTEGER:
		put_int(b, sqlite3_column_int64(st, i));
		return 0;
	case SQLITE_TEXT: {
		const unsigned char *p = sqlite3_column_text(st, i);
		put_bytes(b, TAG_TEXT, p, (size_t)sqlite3_column_bytes(st, i));
		return 0;
	}
	case SQLITE_BLOB: {
		const void *p = sqlite3_column_blob(st, i);
		put_bytes(b, TAG_BLOB, p, (size_t)sqlite3_column_bytes(st, i));
		return 0;
	}
	default:
		return -1; /* REAL: the writer never stores one */
	}
}

typedef struct digest_job {
	const char *path;
	sqlite3 *db;
	int64_t run;
	arena a;
	char *msg;
	size_t n;
} digest_job;

/* hash_table hashes the rows of one table for the run and checks that
 * their seq are 0, 1, 2...; adds their number to |*count|. */
static int hash_table(digest_job *j, int tab, SHA256_CTX *sha, int64_t *count,
		      int schema)
{
	char sql[512], cols[256];
	sqlite3_stmt *st;
	int ncols = 0;
	for (int c = 0; c < tables[tab].ncols; c++) {
		ncols += tables[tab].cols[c].since <= schema;
	}
	column_list(cols, sizeof(cols), tab, 0, schema);
	snprintf(sql, sizeof(sql),
		 "SELECT seq, %s FROM \"%s\" WHERE run = ?1 ORDER BY seq", cols,
		 tables[tab].name);
	SHA256_Init(sha);
	int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		return sql_fail(j->msg, j->n, j->db, rc, j->path,
				"reading the trace");
	}
	sqlite3_bind_int64(st, 1, j->run);
	int64_t seq = 0;
	int code = 0;
	while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int64(st, 0) != seq) {
			code = fail(j->msg, j->n, SIM_ECORRUPT,
				    "%s: run %lld: table %s has no row with "
				    "seq %lld",
				    j->path, (long long)j->run,
				    tables[tab].name, (long long)seq);
			break;
		}
		seq++;
		rowbuf b;
		rb_begin(&b, &j->a);
		for (int c = 0; c < ncols && code == 0; c++) {
			if (put_column(&b, st, c + 1) != 0) {
				code = fail(j->msg, j->n, SIM_ECORRUPT,
					    "%s: run %lld: %s.%s holds a "
					    "floating-point value",
					    j->path, (long long)j->run,
					    tables[tab].name,
					    tables[tab].cols[c].name);
			}
		}
		if (code == 0 && b.err != 0) {
			code = fail(j->msg, j->n, b.err, "%s: %s", j->path,
				    b.err == SIM_ENOMEM ? "out of memory"
							: "row too long");
		}
		if (code == 0) {
			size_t n;
			const uint8_t *row = rb_row(&b, &n);
			SHA256_Update(sha, row, n);
		}
	}
	if (code == 0 && rc != SQLITE_DONE) {
		code = sql_fail(j->msg, j->n, j->db, rc, j->path,
				"reading the trace");
	}
	sqlite3_finalize(st);
	*count += seq;
	return code;
}

static int digest_run(digest_job *j, char *digest)
{
	sqlite3_stmt *st;
	/* A run's rows have the columns of the schema it was written in. */
	int rc = sqlite3_prepare_v2(j->db,
				    "SELECT outcome, reason, end_ns, events,"
				    " checks, checks_failed, rows,"
				    " coalesce(schema, 2) FROM run WHERE id = ?1",
				    -1, &st, NULL);
	if (rc != SQLITE_OK) { /* schema 1 or 2: no run.schema */
		rc = sqlite3_prepare_v2(j->db,
					"SELECT outcome, reason, end_ns, events,"
					" checks, checks_failed, rows, 2 FROM run"
					" WHERE id = ?1",
					-1, &st, NULL);
	}
	if (rc != SQLITE_OK) {
		return sql_fail(j->msg, j->n, j->db, rc, j->path,
				"reading the trace");
	}
	sqlite3_bind_int64(st, 1, j->run);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		int code = rc == SQLITE_DONE
			       ? fail(j->msg, j->n, SIM_EINVAL,
				      "%s: no run %lld in this trace", j->path,
				      (long long)j->run)
			       : sql_fail(j->msg, j->n, j->db, rc, j->path,
					  "reading the trace");
		sqlite3_finalize(st);
		return code;
	}
	/* The outcome's canonical form stays at the start of the arena. */
	rowbuf ob;
	rb_begin(&ob, &j->a);
	int bad = 0;
	for (int i = 0; i < 6; i++) {
		bad |= put_column(&ob, st, i);
	}
	int64_t rows = sqlite3_column_int64(st, 6);
	int schema = sqlite3_column_int(st, 7);
	sqlite3_finalize(st);
	if (bad || ob.err != 0) {
		return fail(j->msg, j->n, ob.err ? ob.err : SIM_ECORRUPT,
			    "%s: run %lld: unreadable outcome fields", j->path,
			    (long long)j->run);
	}
	j->a.len = ob.pos;

	SHA256_CTX sha[T_COUNT];
	int64_t stored = 0;
	for (int tab = 0; tab < T_COUNT; tab++) {
		int code = hash_table(j, tab, &sha[tab], &stored, schema);
		if (code != 0) {
			return code;
		}
	}
	if (stored != rows) {
		return fail(
		    j->msg, j->n, SIM_ESTATE,
		    "%s: run %lld stores %lld of its %lld rows (written "
		    "with rows off, or rows were deleted): its digest "
		    "cannot be recomputed",
		    j->path, (long long)j->run, (long long)stored,
		    (long long)rows);
	}
	size_t n;
	const uint8_t *o = rb_row(&ob, &n);
	digest_final(o, n, sha, digest);
	return 0;
}

int sim_trace_open_readonly(const char *path, sqlite3 **db, int *empty,
			    char *err, size_t errlen)
{
	int exists = 0, rc;
	*db = NULL;
	*empty = 0;
	if ((rc = check_file(path, &exists, err, errlen)) != 0) {
		return rc;
	}
	if (!exists) {
		return fail(err, errlen, SIM_ENOENT,
			    "%s: no such trace (missing or empty)", path);
	}
	rc = sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL);
	if (rc != SQLITE_OK) {
		rc = sql_fail(err, errlen, *db, rc, path, "opening trace");
	} else {
		sqlite3_busy_timeout(*db, BUSY_TIMEOUT_MS);
		/* One read transaction: a consistent snapshot of every table. */
		rc = exec(*db, "BEGIN");
		rc = rc != SQLITE_OK ? sql_fail(err, errlen, *db, rc, path,
						"reading the trace")
				     : check_trace(*db, path, 0, empty, err,
						   errlen);
	}
	if (rc != 0) {
		sqlite3_close(*db);
		*db = NULL;
	}
	return rc;
}

int sim_trace_digest_db(const char *path, int64_t run_id, char *digest,
			char *err, size_t errlen)
{
	digest_job j = {.path = path, .run = run_id, .msg = err, .n = errlen};
	int empty = 0, rc;
	if (digest != NULL) {
		digest[0] = '\0';
	}
	if (path == NULL || digest == NULL) {
		return fail(err, errlen, SIM_EINVAL,
			    "sim_trace_digest_db: no path or digest buffer");
	}
	rc = sim_trace_open_readonly(path, &j.db, &empty, err, errlen);
	if (rc != 0) {
		return rc;
	}
	rc = empty ? fail(err, errlen, SIM_EINVAL,
			  "%s: no run %lld in this trace (it is empty)", path,
			  (long long)run_id)
		   : digest_run(&j, digest);
	exec(j.db, "COMMIT");
	sqlite3_close(j.db);
	free(j.a.p);
	return rc;
}

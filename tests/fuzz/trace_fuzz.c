/* tests/fuzz/trace_fuzz.c: fuzz harness for the trace readers: what
 * `tlsim replay` and `tlsim diff` (sim_trace_digest_db,
 * sim_rowdiff_timeline, the run row's schedule, sim_plan_parse), `tlsim
 * report` (sim_report_open and _list, the terminal ladder, the HTML page),
 * `tlsim pcap` (sim_pcap_export), `tlsim races` (sim_races) and `tlsim
 * merge` (sim_merge_*) read.
 *
 * A trace is an SQLite file, so random bytes would mostly test SQLite.
 * Instead, at start-up the harness records a small valid trace in a
 * scratch directory: three runs of scenarios written here (an echo run
 * under a forced schedule with every kind of link fault, odd bytes in a
 * log row and a failed expectation; a TLS 1.3 run and a QUIC run over a
 * faulty link), and keeps its bytes. Each input then mutates a copy:
 *
 *   byte 0  readers' options: report tls_states (bit 0), race queries
 *           (1), HTML page (2), ASCII ladder and diff's ignored columns
 *           (3), colour (4); pcap at the sender (5), with a key log (6);
 *           merge the trace (7)
 *   byte 1  the runs the readers ask for (run 0, 1..4, -1, 2^62), races'
 *           range and expectation, diff's context
 *   byte 2  the report's window and item limit, the ladder's width
 *   then records, one after another until the input ends:
 *     0  set one cell: table, column, row (by position), value
 *     1  delete one row;  2 delete a table's rows of one run
 *     3  renumber rows (seq + k from a row on: gaps, duplicates refused)
 *     4  one statement from a fixed list of nasty ones (cycles of
 *        packet.parent, op.cause_id, NULL keys, huge numbers...)
 *     5  drop a table or a column, rename a column, a view instead of a
 *        table
 *     6  PRAGMA user_version / application_id
 *     7  copy a row under a new seq or run
 *     8  patch bytes of the file; 9 truncate it (both applied to the
 *        serialized file, after the SQL ones)
 *   values: NULL, integers (small, 64-bit, the edges), reals, text from
 *   the input or from a list of strings the readers give meaning to
 *   (ptypes, fates, key log lines, schedules, params), blobs.
 *
 * Every reader must return 0 or a SIM_E* error with a one-line message;
 * a crash, a sanitizer report or an assert is a bug. An input that
 * changes nothing must read cleanly: the digest recomputed equals the
 * run row's, the run equals itself (rowdiff), report, pcap and merge
 * succeed. A schedule that parses must format to text that parses to the
 * same text.
 *
 * Seed corpus: tests/fuzz/corpus/trace/. Crashes found:
 * tests/fuzz/regress/trace/. The base trace depends on the simulator's
 * bytes, so a byte patch (record 8) may mean something else after the
 * simulator changes; the SQL records address tables, columns and rows by
 * position and keep their meaning. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim/entropy.h"
#include "sim/err.h"
#include "sim/html.h"
#include "sim/ladder.h"
#include "sim/lua.h"
#include "sim/merge.h"
#include "sim/pcap.h"
#include "sim/races.h"
#include "sim/report.h"
#include "sim/rowdiff.h"
#include "sim/schedule.h"
#include "sim/trace.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define BASE_RUNS 3

static const char echo_src[] =
    "local w = tlsim.world{seed = 3}\n"
    "local l = w:link{latency = '5ms', jitter = '1ms'}\n"
    "local srv = w:echo_server{}\n"
    "local cli = w:echo_client{count = 6, interval = '2ms', rto = "
    "'30ms'}\n"
    "cli:start()\n"
    "w:after('3ms', function() w:log('caf\\xc3\\xa9 \\x01\\x7f\\xff "
    "\\u{202e}rtl\\n2nd') end)\n"
    "w:after('4ms', function() w:log('x') end)\n"
    "w:run{limit = '2s'}\n"
    "w:expect(cli:state() == 'done', 'all echoed', cli:state())\n"
    "w:expect(false, 'a failed\\nexpectation', 'detail\\twith\\0nul')\n";

static const char echo_plan[] = "faults forced\n"
				"fault 0 ab 2 lost loss\n"
				"fault 0 ab 3 corrupt 1,7,300\n"
				"fault 0 ab 4 dup 100000\n"
				"fault 0 ba 1 delay 5000000\n"
				"fault 0 ba 3 reorder 2000000\n";

static const char tls_src[] =
    "local w = tlsim.world{seed = 5}\n"
    "w:link{latency = '10ms', loss = 0.05, dup = 0.05, reorder = 0.05,"
    " reorder_delay = '3ms', corrupt = 0.05}\n"
    "local pki = w:pki{}\n"
    "local srv = w:tls_server{pki = pki}\n"
    "local cli = w:tls_client{pki = pki}\n"
    "srv:on('data', function(s) s:write('response') s:shutdown{} end)\n"
    "cli:on('handshake_done', function(c) c:write('request') end)\n"
    "cli:on('close_notify', function(c) c:shutdown{} end)\n"
    "srv:accept()\n"
    "cli:connect()\n"
    "w:run{limit = '20s'}\n"
    "w:expect(cli:received() == 'response', 'response', cli:outcome())\n";

static const char quic_src[] =
    "local w = tlsim.world{seed = 7}\n"
    "w:link{latency = '10ms', loss = 0.1, dup = 0.05}\n"
    "local pki = w:pki{}\n"
    "local srv = w:quic_server{pki = pki}\n"
    "local cli = w:quic_client{pki = pki}\n"
    "srv:on('data', function(s, ev) if ev.fin == 1 then "
    "s:send('response', true) end end)\n"
    "cli:on('connected', function(c) c:send('request', true) end)\n"
    "cli:on('data', function(c, ev) if ev.fin == 1 then c:shutdown(0) "
    "end end)\n"
    "cli:start()\n"
    "w:run{limit = '30s'}\n"
    "w:expect(cli:received() == 'response', 'response')\n";

static char dir[256];
static char base_path[300], path[300], out_path[300], html_path[300],
    keylog_path[300], merged_path[300], queries_dir[300];
static unsigned char *base_img;
static sqlite3_int64 base_len;
static FILE *sink;

static void fail(const char *what, const char *detail)
{
	fprintf(stderr, "trace_fuzz: %s%s%s\n", what, detail ? ": " : "",
		detail ? detail : "");
	abort();
}

/* A reader's error must be a SIM_E* code with a one-line message. */
static void check_err(const char *who, int rc, const char *err)
{
	if (rc >= 0) {
		return;
	}
	if (strcmp(sim_strerror(rc), "unknown error") == 0) {
		fail(who, "returned an unknown error code");
	}
	if (err[0] == '\0' || strchr(err, '\n') != NULL) {
		fail(who, "an error message that is empty or not one line");
	}
}

static void remove_file(const char *p)
{
	char f[400];
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < N(sfx); i++) {
		snprintf(f, sizeof(f), "%s%s", p, sfx[i]);
		unlink(f);
	}
}

static void cleanup(void)
{
	remove_file(base_path);
	remove_file(path);
	remove_file(merged_path);
	unlink(out_path);
	unlink(html_path);
	unlink(keylog_path);
	char q[400];
	snprintf(q, sizeof(q), "%s/a.sql", queries_dir);
	unlink(q);
	snprintf(q, sizeof(q), "%s/b.sql", queries_dir);
	unlink(q);
	rmdir(queries_dir);
	rmdir(dir);
}

static void record(sim_trace *t, const char *name, const char *src,
		   const char *plan)
{
	sim_lua_opts o = {
	    .path = name,
	    .source = src,
	    .source_len = strlen(src),
	    .sha256 = "1111111111111111111111111111111111111111111111111111"
		      "111111111111",
	    .trace = t,
	};
	o.nset = 2;
	o.set_key[0] = "variant";
	o.set_val[0] = "buggy";
	o.set_key[1] = "loss";
	o.set_val[1] = "0.1";
	sim_schedule *s = NULL;
	char err[512];
	if (plan != NULL) {
		s = sim_schedule_new();
		if (s == NULL ||
		    sim_plan_parse(sim_schedule_plan(s), plan, "plan", 1, err,
				   sizeof(err)) != 0) {
			fail("cannot make the schedule", err);
		}
		o.schedule = s;
	}
	sim_lua_result r;
	int status = sim_lua_run(&o, &r);
	if (status > SIM_STATUS_FAIL || r.run_id <= 0) {
		fail("cannot record the base trace", r.message);
	}
	sim_schedule_del(s);
}

static void write_file(const char *p, const void *data, size_t len)
{
	FILE *f = fopen(p, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fail("cannot write", p);
	}
}

static void make_base(void)
{
	/* $TMPDIR, else memory (/dev/shm) rather than a disk: every input
	 * writes and syncs files. */
	const char *t = getenv("TMPDIR");
	const char *parents[] = {t && *t ? t : "/dev/shm", "/tmp"};
	int made = 0;
	for (size_t i = 0; i < N(parents) && !made; i++) {
		snprintf(dir, sizeof(dir), "%s/tlsim-tracefuzz.XXXXXX",
			 parents[i]);
		made = mkdtemp(dir) != NULL;
	}
	if (!made) {
		fail("cannot make a scratch directory", strerror(errno));
	}
	snprintf(base_path, sizeof(base_path), "%s/base.db", dir);
	snprintf(path, sizeof(path), "%s/t.db", dir);
	snprintf(out_path, sizeof(out_path), "%s/out.pcapng", dir);
	snprintf(html_path, sizeof(html_path), "%s/out.html", dir);
	snprintf(keylog_path, sizeof(keylog_path), "%s/keys.log", dir);
	snprintf(merged_path, sizeof(merged_path), "%s/merged.db", dir);
	snprintf(queries_dir, sizeof(queries_dir), "%s/queries", dir);
	atexit(cleanup);
	if (mkdir(queries_dir, 0700) != 0) {
		fail("cannot make", queries_dir);
	}
	char q[400];
	/* Race queries: one that matches packet rows, one that fails. */
	snprintf(q, sizeof(q), "%s/a.sql", queries_dir);
	static const char a_sql[] =
	    ".headers on\nSELECT run, id, ptype, frames FROM packet "
	    "WHERE fate = 'lost' OR frames LIKE '%CONNECTION%';\n";
	write_file(q, a_sql, strlen(a_sql));
	snprintf(q, sizeof(q), "%s/b.sql", queries_dir);
	static const char b_sql[] = "SELECT run, no_such_column FROM op;\n";
	write_file(q, b_sql, strlen(b_sql));

	sim_trace *tr;
	char err[512];
	if (sim_trace_open(base_path, &tr, err, sizeof(err)) != 0) {
		fail("cannot create the base trace", err);
	}
	record(tr, "echo.lua", echo_src, echo_plan);
	record(tr, "tls.lua", tls_src, NULL);
	record(tr, "quic.lua", quic_src, NULL);
	sim_trace_close(tr);

	/* The bytes of the whole file, WAL checkpointed into it. */
	sqlite3 *db;
	if (sqlite3_open_v2(base_path, &db, SQLITE_OPEN_READWRITE, NULL) !=
		SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode = DELETE", NULL, NULL,
			 NULL) != SQLITE_OK) {
		fail("cannot reopen the base trace", sqlite3_errmsg(db));
	}
	base_img = sqlite3_serialize(db, "main", &base_len, 0);
	sqlite3_close(db);
	if (base_img == NULL) {
		fail("cannot serialize the base trace", NULL);
	}
}

typedef struct in {
	const uint8_t *p;
	size_t len, pos;
} in;

static uint8_t u8(in *r)
{
	return r->pos < r->len ? r->p[r->pos++] : 0;
}

static uint64_t u64(in *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v = v << 8 | u8(r);
	}
	return v;
}

static const char *const texts[] = {
    "",
    "datagram",
    "tcp",
    "quic",
    "echo",
    "initial",
    "handshake",
    "1rtt",
    "SYN",
    "ACK",
    "DATA-FIN",
    "lost",
    "delivered",
    "in_flight",
    "corrupted",
    "loss",
    "burst_loss",
    "client",
    "server",
    "world",
    "script",
    "echo_client",
    "tls_server",
    "quic_client",
    "enqueue",
    "enqueue_front",
    "dequeue",
    "complete",
    "drop",
    "keylog",
    "keys",
    "state",
    "alert_sent",
    "CLIENT_RANDOM 00 11",
    "CLIENT_HANDSHAKE_TRAFFIC_SECRET "
    "0000000000000000000000000000000000000000000000000000000000000000 "
    "1111111111111111111111111111111111111111111111111111111111111111",
    "a->b",
    "b->a",
    "link0",
    "ACK[0-3],CRYPTO(0+90),PADDING",
    "STREAM(0+5,fin)",
    "keys=H,1 complete=0 confirmed=0",
    "seq=1 ack=1 len=5 rtx",
    "order fifo\nchoice 0 1\nchoice 3 2\nfaults forced\n"
    "fault 0 ab 1 lost loss\nfault 0 ba 2 corrupt 0,1,2\n",
    "faults forced\nfault 99 ab 18446744073709551615 dup -1\n",
    "choice 18446744073709551615 4294967295\n",
    "fault 0 ab 1 corrupt "
    "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,"
    "26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,"
    "48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66\n",
    "variant=buggy\nloss=0.1\n",
    "=\n=\n\n",
    "noequals",
    "pass",
    "fail",
    "crash",
    "error",
    "\xff\xfe\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80",
    "\xe2\x80\xae\x1b[31m\x7f\xc2\x85",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "%s%s%n",
};

static const int64_t ints[] = {
    0,
    1,
    -1,
    2,
    3,
    255,
    1200,
    65535,
    65536,
    1000000,
    INT32_MAX,
    INT32_MIN,
    INT64_MAX,
    INT64_MIN,
    INT64_MAX - 1,
    INT64_MIN + 1,
    1000000000,
    86400000000000,
    4000000000000000000,
    -86400000000000,
};

/* Binds the value the input describes to parameter 1 of |st|. */
static void bind_value(in *r, sqlite3_stmt *st)
{
	uint8_t k = u8(r);
	switch (k % 9) {
	case 0:
		sqlite3_bind_null(st, 1);
		break;
	case 1:
		sqlite3_bind_int64(st, 1, (int8_t)u8(r));
		break;
	case 2:
		sqlite3_bind_int64(st, 1, (sqlite3_int64)u64(r));
		break;
	case 3:
		sqlite3_bind_int64(st, 1, ints[u8(r) % N(ints)]);
		break;
	case 4: {
		static const double reals[] = {0.5, -1.5, 1e300, -0.0, 3.0};
		sqlite3_bind_double(st, 1, reals[u8(r) % N(reals)]);
		break;
	}
	case 5:
	case 6: {
		const char *t = texts[u8(r) % N(texts)];
		sqlite3_bind_text(st, 1, t, -1, SQLITE_STATIC);
		break;
	}
	case 7: {
		size_t n = u8(r);
		n = n < r->len - r->pos ? n : r->len - r->pos;
		sqlite3_bind_text(st, 1, (const char *)r->p + r->pos, (int)n,
				  SQLITE_TRANSIENT);
		r->pos += n;
		break;
	}
	default: {
		size_t n = u8(r);
		n = n < r->len - r->pos ? n : r->len - r->pos;
		sqlite3_bind_blob(st, 1, r->p + r->pos, (int)n,
				  SQLITE_TRANSIENT);
		r->pos += n;
		break;
	}
	}
}

/* The |i|th (modulo their number) table of the schema, in name order. */
static int table_name(sqlite3 *db, int i, char *out, size_t n)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(db,
			       "SELECT name FROM sqlite_master WHERE type IN "
			       "('table', 'view') AND name NOT LIKE "
			       "'sqlite_%' ORDER BY name LIMIT 1 OFFSET ?1 % "
			       "max(1, (SELECT count(*) FROM sqlite_master "
			       "WHERE type IN ('table', 'view') AND name NOT "
			       "LIKE 'sqlite_%'))",
			       -1, &st, NULL) != SQLITE_OK) {
		return 0;
	}
	sqlite3_bind_int(st, 1, i);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out, n, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		found = strchr(out, '"') == NULL;
	}
	sqlite3_finalize(st);
	return found;
}

/* The |i|th column of |table|; |*pk| gets its primary-key columns as a
 * list ("run, seq"), or "rowid" for a table without one. */
static int column_name(sqlite3 *db, const char *table, int i, char *out,
		       size_t n, char *pk, size_t pkn)
{
	char sql[256];
	sqlite3_stmt *st;
	snprintf(sql, sizeof(sql),
		 "SELECT name, pk FROM pragma_table_info('%s') ORDER BY cid",
		 table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		return 0;
	}
	char names[32][64], pks[8][64];
	int nn = 0, np = 0;
	while (sqlite3_step(st) == SQLITE_ROW && nn < 32) {
		snprintf(names[nn++], 64, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		int k = sqlite3_column_int(st, 1);
		if (k > 0 && k <= 8) {
			snprintf(pks[k - 1], 64, "%s", names[nn - 1]);
			np = k > np ? k : np;
		}
	}
	sqlite3_finalize(st);
	if (nn == 0) {
		return 0;
	}
	snprintf(out, n, "%s", names[i % nn]);
	pk[0] = '\0';
	for (int k = 0; k < np; k++) {
		size_t used = strlen(pk);
		snprintf(pk + used, pkn - used, "%s\"%s\"", k ? ", " : "",
			 pks[k]);
	}
	if (np == 0) {
		snprintf(pk, pkn, "rowid");
	}
	return strchr(out, '"') == NULL && strchr(pk, '\'') == NULL;
}

static void exec_bound(sqlite3 *db, const char *sql, in *r, int value,
		       int64_t a, int64_t b)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		return;
	}
	if (value) {
		bind_value(r, st);
	}
	sqlite3_bind_int64(st, 2, a);
	sqlite3_bind_int64(st, 3, b);
	while (sqlite3_step(st) == SQLITE_ROW) {
	}
	sqlite3_finalize(st);
}

static const char *const nasty[] = {
    "UPDATE packet SET parent = id",
    "UPDATE packet SET parent = id + 1",
    "UPDATE packet SET parent = (SELECT max(id) FROM packet)",
    "UPDATE packet SET dup_of = id",
    "UPDATE packet SET id = 7",
    "UPDATE op SET cause_id = op_id",
    "UPDATE op SET op_id = 1",
    "UPDATE packet SET deliver_ns = send_ns - 1",
    "UPDATE packet SET len = -1",
    "UPDATE packet SET len = 9223372036854775807",
    "UPDATE packet SET data = zeroblob(70000) WHERE rowid % 2 = 0",
    "UPDATE packet SET data = NULL",
    "UPDATE packet SET src = dst",
    "UPDATE packet SET src = 'nobody'",
    "UPDATE node SET name = 'client'",
    "UPDATE node SET name = NULL",
    "UPDATE node SET kind = 'quic_client'",
    "DELETE FROM node",
    "UPDATE run SET id = id + 10",
    "UPDATE run SET id = -id",
    "UPDATE run SET rows = 0",
    "UPDATE run SET rows = -1",
    "UPDATE run SET end_ns = -1",
    "UPDATE run SET end_ns = 9223372036854775807",
    "UPDATE run SET digest = NULL",
    "UPDATE run SET scenario = NULL, params = NULL",
    "UPDATE run SET schedule = 'faults forced'",
    "UPDATE run SET seed = -1",
    "DELETE FROM run WHERE id = 2",
    "INSERT INTO run SELECT * FROM run WHERE id = 1 AND 0",
    "UPDATE tls SET detail = NULL",
    "UPDATE tls SET event = 'keylog', detail = 'CLIENT_RANDOM'",
    "UPDATE tls SET code = 9223372036854775807",
    "UPDATE \"check\" SET ok = 2",
    "UPDATE \"check\" SET message = NULL, location = NULL",
    "UPDATE log SET text = zeroblob(100)",
    "UPDATE event SET time_ns = -time_ns",
    "UPDATE op SET time_ns = 9223372036854775807 - seq",
    "UPDATE op SET depth = -5",
    "UPDATE op SET action = 'enqueue'",
    "UPDATE packet SET time_ns = 0",
    "UPDATE packet SET send_ns = -1, deliver_ns = NULL",
    "UPDATE packet SET fate = NULL, reason = NULL",
    "UPDATE packet SET ptype = 'datagram', parent = NULL",
    "UPDATE packet SET proto = 'tcp'",
    "UPDATE packet SET proto = 'quic'",
    "UPDATE packet SET link = NULL",
    "UPDATE meta SET value = NULL",
    "DELETE FROM meta",
    "CREATE TABLE extra(a)",
    "CREATE INDEX i1 ON packet(len)",
};

static void mutate_sql(sqlite3 *db, in *r, uint8_t kind)
{
	char t[128], c[128], pk[256], sql[2048];
	switch (kind) {
	case 0:   /* set one cell */
	case 7: { /* copy a row under a new seq or run */
		int ti = u8(r), ci = u8(r), row = u8(r) | u8(r) << 8;
		if (!table_name(db, ti, t, sizeof(t)) ||
		    !column_name(db, t, ci, c, sizeof(c), pk, sizeof(pk))) {
			return;
		}
		if (kind == 0) {
			snprintf(sql, sizeof(sql),
				 "UPDATE \"%s\" SET \"%s\" = ?1 WHERE (%s) = "
				 "(SELECT %s FROM \"%s\" LIMIT 1 OFFSET ?2)",
				 t, c, pk, pk, t);
		} else {
			snprintf(sql, sizeof(sql),
				 "INSERT OR REPLACE INTO \"%s\" SELECT * FROM "
				 "\"%s\" LIMIT 1 OFFSET ?2; ",
				 t, t);
			exec_bound(db, sql, r, 0, row, 0);
			snprintf(
			    sql, sizeof(sql),
			    "UPDATE OR IGNORE \"%s\" SET \"%s\" = ?1 WHERE "
			    "(%s) = (SELECT %s FROM \"%s\" ORDER BY %s "
			    "DESC LIMIT 1)",
			    t, c, pk, pk, t, pk);
		}
		exec_bound(db, sql, r, 1, row, 0);
		return;
	}
	case 1:
	case 2: {
		int ti = u8(r), row = u8(r) | u8(r) << 8;
		if (!table_name(db, ti, t, sizeof(t)) ||
		    !column_name(db, t, 0, c, sizeof(c), pk, sizeof(pk))) {
			return;
		}
		if (kind == 1) {
			snprintf(sql, sizeof(sql),
				 "DELETE FROM \"%s\" WHERE (%s) = (SELECT %s "
				 "FROM \"%s\" LIMIT 1 OFFSET ?2)",
				 t, pk, pk, t);
		} else {
			snprintf(sql, sizeof(sql),
				 "DELETE FROM \"%s\" WHERE run = ?2", t);
			row %= BASE_RUNS + 1;
		}
		exec_bound(db, sql, r, 0, row, 0);
		return;
	}
	case 3: {
		int ti = u8(r), from = u8(r);
		int64_t k = (int8_t)u8(r);
		if (!table_name(db, ti, t, sizeof(t))) {
			return;
		}
		snprintf(sql, sizeof(sql),
			 "UPDATE OR IGNORE \"%s\" SET seq = seq + ?2 WHERE seq "
			 ">= ?3",
			 t);
		exec_bound(db, sql, r, 0, k, from);
		return;
	}
	case 4:
		sqlite3_exec(db, nasty[u8(r) % N(nasty)], NULL, NULL, NULL);
		return;
	case 5: {
		int ti = u8(r), ci = u8(r), how = u8(r);
		if (!table_name(db, ti, t, sizeof(t)) ||
		    !column_name(db, t, ci, c, sizeof(c), pk, sizeof(pk))) {
			return;
		}
		switch (how % 4) {
		case 0:
			snprintf(sql, sizeof(sql), "DROP TABLE \"%s\"", t);
			break;
		case 1:
			snprintf(sql, sizeof(sql),
				 "ALTER TABLE \"%s\" DROP COLUMN \"%s\"", t, c);
			break;
		case 2:
			snprintf(sql, sizeof(sql),
				 "ALTER TABLE \"%s\" RENAME COLUMN \"%s\" TO "
				 "\"%s_x\"",
				 t, c, c);
			break;
		default:
			/* A view with the same name and columns in a
			 * different order (every value text). */
			snprintf(sql, sizeof(sql),
				 "ALTER TABLE \"%s\" RENAME TO \"%s_old\"; "
				 "CREATE VIEW \"%s\" AS SELECT \"%s\" AS x, "
				 "CAST(\"%s\" AS TEXT) AS y, * FROM \"%s_old\"",
				 t, t, t, c, c, t);
			break;
		}
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		return;
	}
	default: {
		int64_t v = ints[u8(r) % N(ints)];
		snprintf(sql, sizeof(sql), "PRAGMA %s = %lld",
			 u8(r) & 1 ? "application_id" : "user_version",
			 (long long)(v & 0xffffffff));
		sqlite3_exec(db, sql, NULL, NULL, NULL);
		return;
	}
	}
}

/* Applies the input's records; returns the mutated file's bytes. */
static unsigned char *mutate(in *r, sqlite3_int64 *len, int *changed)
{
	sqlite3 *db;
	*changed = 0;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK) {
		fail("cannot open an in-memory database", NULL);
	}
	unsigned char *img = sqlite3_malloc64((sqlite3_uint64)base_len);
	if (img == NULL) {
		fail("out of memory", NULL);
	}
	memcpy(img, base_img, (size_t)base_len);
	if (sqlite3_deserialize(db, "main", img, base_len, base_len,
				SQLITE_DESERIALIZE_FREEONCLOSE |
				    SQLITE_DESERIALIZE_RESIZEABLE) !=
	    SQLITE_OK) {
		fail("cannot load the base trace", sqlite3_errmsg(db));
	}
	/* Byte records wait until the SQL ones are done. */
	size_t patches[64], npatches = 0;
	while (r->pos < r->len) {
		uint8_t kind = u8(r) % 10;
		*changed = 1;
		if (kind >= 8) {
			if (npatches < N(patches)) {
				patches[npatches++] = r->pos - 1;
			}
			r->pos += kind == 8 ? 4 + (u8(r) & 15) : 3;
			continue;
		}
		mutate_sql(db, r, kind);
	}
	unsigned char *out = sqlite3_serialize(db, "main", len, 0);
	sqlite3_close(db);
	if (out == NULL) {
		fail("cannot serialize", NULL);
	}
	for (size_t i = 0; i < npatches; i++) {
		in p = *r;
		p.pos = patches[i];
		uint8_t kind = u8(&p) % 10;
		size_t off = (size_t)u8(&p) << 16 | (size_t)u8(&p) << 8;
		off |= u8(&p);
		if (*len == 0) {
			break;
		}
		off %= (size_t)*len;
		if (kind == 9) {
			*len = (sqlite3_int64)off;
			continue;
		}
		size_t n = u8(&p) & 15;
		for (size_t k = 0; k < n && off + k < (size_t)*len; k++) {
			out[off + k] = u8(&p);
		}
	}
	return out;
}

static const int64_t run_ids[] = {1, 2, 3, 0, 4, -1, (int64_t)1 << 62, 2};

/* What `tlsim replay` reads from the run row besides the digest. */
static void replay_reads(int64_t run)
{
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT params, schedule FROM run WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		sqlite3_close(db);
		return;
	}
	sqlite3_bind_int64(st, 1, run);
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *sched = (const char *)sqlite3_column_text(st, 1);
		sim_plan p, q;
		char err[512];
		sim_plan_init(&p);
		sim_plan_init(&q);
		if (sched != NULL && sim_plan_parse(&p, sched, "run schedule",
						    1, err, sizeof(err)) == 0) {
			char *a = sim_plan_format(&p);
			char *b = NULL;
			if (a == NULL ||
			    sim_plan_parse(&q, a, "formatted", 1, err,
					   sizeof(err)) != 0 ||
			    (b = sim_plan_format(&q)) == NULL ||
			    strcmp(a, b) != 0) {
				fail("a parsed schedule does not format back "
				     "to itself",
				     err);
			}
			free(a);
			free(b);
		} else if (sched != NULL && strchr(err, '\n') != NULL) {
			fail("sim_plan_parse",
			     "a message that is not one line");
		}
		sim_plan_free(&p);
		sim_plan_free(&q);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void read_all(uint8_t opts, uint8_t runs, uint8_t view, int changed)
{
	char err[2048], digest[65];
	int64_t a = run_ids[runs & 7], b = run_ids[(runs >> 3) & 7];

	int rc = sim_trace_digest_db(path, a, digest, err, sizeof(err));
	check_err("sim_trace_digest_db", rc, err);
	if (!changed && a >= 1 && a <= BASE_RUNS && rc != 0) {
		fail("the base trace's digest cannot be recomputed", err);
	}

	/* tlsim diff, and replay on a mismatch. */
	static const char *const ignore[] = {"data", "time_ns", "nosuch"};
	int context = runs >> 6, nignore = opts & 8 ? 3 : 0;
	rc = sim_rowdiff_timeline(path, a, path, b, "a", "b", context, ignore,
				  nignore, sink, err, sizeof(err));
	check_err("sim_rowdiff_timeline", rc, err);
	rc = sim_rowdiff_timeline(base_path, a, path, a, "recorded", "replayed",
				  context, ignore, nignore, sink, err,
				  sizeof(err));
	check_err("sim_rowdiff_timeline", rc, err);
	if (!changed && a >= 1 && a <= BASE_RUNS && rc != 0) {
		fail("a run differs from itself", err);
	}
	replay_reads(a);

	/* tlsim races: failing runs by outcome, or by an expectation. */
	sim_races_opts so = {
	    .path = path,
	    .first_run = runs & 16 ? a : 0,
	    .last_run = runs & 16 ? b : 0,
	    .check = runs & 32 ? "all echoed" : NULL,
	    .top = 1 + (view & 7),
	};
	rc = sim_races(&so, sink, err, sizeof(err));
	check_err("sim_races", rc, err);

	static const sim_time windows[][2] = {
	    {0, SIM_TIME_MAX},       {0, 0},
	    {1000000, 20000000},     {-5, 5},
	    {SIM_TIME_MAX, 0},       {0, 1},
	    {5000000, SIM_TIME_MAX}, {INT64_MIN, INT64_MAX},
	};
	static const size_t limits[] = {0, 1, 3, 1000000};
	sim_report_opts ro = {
	    .run = runs & 64 ? 0 : a,
	    .from_ns = windows[view & 7][0],
	    .to_ns = windows[view & 7][1],
	    .limit = limits[(view >> 3) & 3],
	    .tls_states = opts & 1,
	    .queries_dir = opts & 2 ? queries_dir : NULL,
	};
	sim_report *rep = NULL;
	rc = sim_report_open(path, &ro, &rep, err, sizeof(err));
	check_err("sim_report_open", rc, err);
	if (!changed && ro.run >= 0 && ro.run <= BASE_RUNS && rc != 0) {
		fail("the base trace's report cannot be read", err);
	}
	if (rc == 0) {
		static const int widths[] = {0, 1, 20, 40, 80, 100, 200, 1000};
		sim_ladder_opts lo = {.width = widths[(view >> 5) & 7],
				      .color = (opts >> 4) & 1,
				      .ascii = (opts >> 3) & 1};
		sim_ladder_print(sink, rep, &lo);
		if (opts & 4) {
			rc = sim_html_write(rep, html_path, err, sizeof(err));
			check_err("sim_html_write", rc, err);
			if (rc != 0) {
				fail("sim_html_write failed on a report", err);
			}
		}
		sim_report_del(rep);
	}
	rc = sim_report_list(path, sink, err, sizeof(err));
	check_err("sim_report_list", rc, err);

	sim_pcap_opts po = {
	    .trace_path = path,
	    .run_id = runs & 128 ? 0 : a,
	    .out_path = out_path,
	    .keylog_path = opts & 64 ? keylog_path : NULL,
	    .at = opts & 32 ? SIM_PCAP_AT_SENDER : SIM_PCAP_AT_RECEIVER,
	};
	sim_pcap_stats ps;
	rc = sim_pcap_export(&po, &ps, err, sizeof(err));
	check_err("sim_pcap_export", rc, err);
	if (!changed && po.run_id >= 1 && po.run_id <= BASE_RUNS && rc != 0) {
		fail("the base trace's run cannot be exported", err);
	}

	if (opts & 128) {
		remove_file(merged_path);
		sim_merge *m = NULL;
		rc = sim_merge_new(merged_path, &m, err, sizeof(err));
		check_err("sim_merge_new", rc, err);
		if (rc == 0) {
			rc = sim_merge_check_input(m, path, err, sizeof(err));
			check_err("sim_merge_check_input", rc, err);
		}
		if (rc == 0) {
			rc = sim_merge_runs(m, path, NULL, 0, NULL, err,
					    sizeof(err));
			check_err("sim_merge_runs", rc, err);
		}
		if (rc == 0) {
			rc = sim_merge_verify(m, err, sizeof(err));
			check_err("sim_merge_verify", rc, err);
		}
		if (!changed && rc != 0) {
			fail("the base trace cannot be merged", err);
		}
		sim_merge_del(m);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sim_entropy_reexec(*argc, *argv);
	sink = fopen("/dev/null", "w");
	if (sink == NULL) {
		fail("cannot open /dev/null", NULL);
	}
	make_base();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	in r = {.p = data, .len = size, .pos = 3};
	uint8_t opts = size > 0 ? data[0] : 0;
	uint8_t runs = size > 1 ? data[1] : 0;
	uint8_t view = size > 2 ? data[2] : 0;
	int changed;
	sqlite3_int64 len;
	unsigned char *img = mutate(&r, &len, &changed);
	remove_file(path);
	write_file(path, img, (size_t)len);
	sqlite3_free(img);
	read_all(opts, runs, view, changed);
	return 0;
}

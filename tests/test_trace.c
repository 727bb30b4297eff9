/* Trace writer: the canonical form and digest, atomic runs, refusal of
 * files that are not ours, locks, caps and a full disk. Multi-process
 * cases with the CLI and sqlite3 are in tests/cli/trace_*.sh. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "sim/err.h"
#include "sim/trace.h"
#include "tests/unit.h"

/* --- helpers ------------------------------------------------------------- */

static char dir[256];

static const char *tmp_path(const char *name)
{
	static char buf[8][512];
	static int k;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/tlsim-trace-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			abort();
		}
	}
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	chmod(p, 0700);
	remove(p);
	return 0;
}

/* cleanup removes the test's scratch directory (run at each test's end). */
static void cleanup(void)
{
	if (dir[0] != '\0') {
		chmod(dir, 0700);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		dir[0] = '\0';
	}
}

/* Writes one small run, touching every table and every NULL convention,
 * whose content depends on |salt|. */
static void produce(sim_trace *t, int salt)
{
	sim_trace_node(t, 1, "client", "echo_client");
	sim_trace_node(t, 2, "server", NULL);
	for (int i = 0; i < 10; i++) {
		sim_trace_event(t, i * 100 + salt, "client", "timer", i - 1);
		sim_op_row op = {.time = i * 100,
				 .node = "client",
				 .op_id = i,
				 .op_type = "recv",
				 .action = "enqueue",
				 .depth = i,
				 .cause_kind = i % 2 ? "packet" : NULL,
				 .cause_id = i % 2 ? i : -1,
				 .detail = i == 3 ? "" : NULL};
		sim_trace_op(t, &op);
	}
	uint8_t bytes[4] = {1, 2, 0, (uint8_t)salt};
	sim_packet_row p = {.id = 1,
			    .parent = -1,
			    .link = "l",
			    .src = "a",
			    .dst = "b",
			    .proto = "echo",
			    .send_ns = 5,
			    .deliver_ns = -1,
			    .len = 4,
			    .fate = "lost",
			    .reason = "loss",
			    .dup_of = -1,
			    .pn = -1,
			    .data = bytes,
			    .data_len = sizeof(bytes)};
	sim_trace_packet(t, &p);
	sim_packet_row q = {.id = 2,
			    .parent = 1,
			    .link = "l",
			    .src = "a",
			    .dst = "b",
			    .proto = "quic",
			    .send_ns = 6,
			    .deliver_ns = 0,
			    .len = 0,
			    .fate = "duplicated",
			    .dup_of = 0,
			    .ptype = "initial",
			    .space = "",
			    .pn = 0,
			    .frames = "CRYPTO",
			    .hs_state = "start",
			    .data = "",
			    .data_len = 0};
	sim_trace_packet(t, &q);
	sim_tls_row tr = {.time = 9,
			  .node = "client",
			  .event = "alert_sent",
			  .level = "handshake",
			  .direction = "write",
			  .code = 70,
			  .detail = "protocol_version"};
	sim_trace_tls(t, &tr);
	sim_tls_row tn = {
	    .time = 9, .node = "server", .event = "state", .code = -1};
	sim_trace_tls(t, &tn);
	sim_trace_check(t, 10, 1, "ok", "s.lua:3", NULL);
	sim_trace_check(t, 10, 0, "bad", "s.lua:4", "got 2");
	sim_trace_log(t, 11, "script", "hello");
}

#define RUN_ROWS 29 /* rows produce() writes */

static const sim_run_info run_info = {
    .scenario = "s.lua", .scenario_sha256 = "ab", .seed = 7, .params = "k=v\n"};

static int write_run(sim_trace *t, int salt, char digest[65], int64_t *id)
{
	if (sim_trace_begin(t, &run_info) != 0) {
		return -1;
	}
	produce(t, salt);
	sim_run_result res = {.outcome = "fail",
			      .reason = "s.lua:4: bad",
			      .end_ns = 1000,
			      .events = 10,
			      .checks = 2,
			      .checks_failed = 1};
	return sim_trace_end(t, &res, digest, id);
}

static int64_t query(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return v;
}

static void query_text(const char *path, const char *sql, char *out, size_t n)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(out, n, "(error)");
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			const unsigned char *s = sqlite3_column_text(st, 0);
			snprintf(out, n, "%s", s ? (const char *)s : "(null)");
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static int sql(const char *path, const char *text)
{
	sqlite3 *db;
	int rc = sqlite3_open(path, &db);
	if (rc == SQLITE_OK) {
		rc = sqlite3_exec(db, text, NULL, NULL, NULL);
	}
	sqlite3_close(db);
	return rc;
}

/* A whole file in memory, to prove a refused file was left untouched. */
typedef struct blob {
	char *p;
	long n;
} blob;

static blob slurp(const char *path)
{
	blob b = {NULL, -1};
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return b;
	}
	fseek(f, 0, SEEK_END);
	b.n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc((size_t)b.n + 1);
	if (b.p == NULL || fread(b.p, 1, (size_t)b.n, f) != (size_t)b.n) {
		b.n = -1;
	}
	fclose(f);
	return b;
}

static int same_file(blob before, const char *path)
{
	blob after = slurp(path);
	int same = before.n >= 0 && before.n == after.n &&
		   memcmp(before.p, after.p, (size_t)before.n) == 0;
	free(after.p);
	return same;
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int one_line_naming(const char *err, const char *path)
{
	return err[0] != '\0' && strchr(err, '\n') == NULL &&
	       strstr(err, path) != NULL;
}

/* --- digests ------------------------------------------------------------- */

TEST(trace_runs_and_digests)
{
	const char *path = tmp_path("a.db");
	char err[256], d1[65], d2[65], d[65], again[65];
	int64_t id1, id2, id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id1) == 0);
	REQUIRE(write_run(t, 1, d2, &id2) == 0);
	CHECK_INT(id1, 1);
	CHECK_INT(id2, 2);
	CHECK_INT(strlen(d1), 64);
	CHECK(strcmp(d1, d2) != 0); /* different rows, different digest */
	sim_trace_close(t);

	CHECK_INT(query(path, "SELECT count(*) FROM run"), 2);
	static const struct {
		const char *table;
		int rows;
	} per[] = {{"node", 2}, {"event", 10},    {"op", 10}, {"packet", 2},
		   {"tls", 2},  {"\"check\"", 2}, {"log", 1}};
	for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
		char q[128];
		for (int run = 1; run <= 2; run++) {
			snprintf(q, sizeof(q),
				 "SELECT count(*) FROM %s WHERE run = %d",
				 per[i].table, run);
			CHECK_INT(query(path, q), per[i].rows);
			/* seq is 0, 1, 2... within the table and run */
			snprintf(q, sizeof(q),
				 "SELECT max(seq) + 1 = count(*) FROM %s "
				 "WHERE run = %d",
				 per[i].table, run);
			CHECK_INT(query(path, q), 1);
		}
	}
	CHECK_INT(query(path, "SELECT rows FROM run WHERE id = 1"), RUN_ROWS);
	char s[256];
	query_text(path,
		   "SELECT scenario || '|' || scenario_sha256 || '|' || seed "
		   "|| '|' || params || '|' || version || '|' || outcome || "
		   "'|' || reason || '|' || end_ns || '|' || events || '|' || "
		   "checks || '|' || checks_failed FROM run WHERE id = 2",
		   s, sizeof(s));
	CHECK_STR(s, "s.lua|ab|7|k=v\n|" TLSIM_VERSION
		     "|fail|s.lua:4: bad|1000|10|2|1");
	query_text(path, "SELECT digest FROM run WHERE id = 1", s, sizeof(s));
	CHECK_STR(s, d1);

	/* NULL conventions: -1 and NULL pointers are NULL; "" and an empty
	 * blob are not. */
	CHECK_INT(query(path, "SELECT count(*) FROM packet WHERE run = 1 AND "
			      "id = 1 AND parent IS NULL AND deliver_ns IS "
			      "NULL AND dup_of IS NULL AND pn IS NULL AND "
			      "ptype IS NULL AND hex(data) = '01020000'"),
		  1);
	CHECK_INT(query(path, "SELECT count(*) FROM packet WHERE run = 1 AND "
			      "id = 2 AND parent = 1 AND deliver_ns = 0 AND "
			      "dup_of = 0 AND pn = 0 AND space = '' AND "
			      "typeof(data) = 'blob' AND length(data) = 0"),
		  1);
	CHECK_INT(query(path, "SELECT count(*) FROM op WHERE run = 1 AND "
			      "cause_id IS NULL AND cause_kind IS NULL"),
		  5);
	CHECK_INT(query(path, "SELECT count(*) FROM op WHERE detail = ''"), 2);
	CHECK_INT(query(path, "SELECT count(*) FROM tls WHERE code IS NULL"),
		  2);
	CHECK_INT(query(path, "SELECT count(*) FROM node WHERE kind IS NULL"),
		  2);

	/* The stored digest is what the stored rows recompute to. */
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d1);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d2);

	/* Same rows in a fresh file: same digest (the run id is not in
	 * it). Without a database and with rows off: same digest too. */
	REQUIRE(sim_trace_open(tmp_path("b.db"), &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_STR(d, d1);
	CHECK_INT(id, 1);
	sim_trace_set_rows(t, 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_STR(d, d1);
	CHECK_INT(id, 2);
	sim_trace_set_rows(t, 1);
	REQUIRE(write_run(t, 1, d, &id) == 0);
	CHECK_STR(d, d2);
	sim_trace_close(t);
	const char *b = tmp_path("b.db");
	CHECK_INT(query(b, "SELECT count(*) FROM op WHERE run = 2"), 0);
	CHECK_INT(query(b, "SELECT rows FROM run WHERE id = 2"), RUN_ROWS);
	/* A run written with rows off cannot be re-derived: an error, not
	 * a digest that does not match. */
	CHECK_INT(sim_trace_digest_db(b, 2, again, err, sizeof(err)),
		  SIM_ESTATE);
	CHECK(strstr(err, "rows off") != NULL);
	REQUIRE(sim_trace_digest_db(b, 3, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d2);

	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_STR(d, d1);
	CHECK_INT(id, 0);
	CHECK_INT(sim_trace_rows(t), RUN_ROWS);
	REQUIRE(write_run(t, 1, d, &id) == 0);
	CHECK_STR(d, d2);
	sim_trace_close(t);
	cleanup();
}

/* An independent encoder of the canonical form (trace.h, docs/trace.md):
 * pins the digest definition so it cannot drift silently. */
typedef struct canon {
	uint8_t b[256];
	size_t n;
} canon;

static void c_int(canon *c, int64_t v)
{
	c->b[c->n++] = 1;
	for (int i = 0; i < 8; i++) {
		c->b[c->n++] = (uint8_t)((uint64_t)v >> (8 * i));
	}
}

static void c_text(canon *c, const char *s)
{
	if (s == NULL) {
		c->b[c->n++] = 0;
		return;
	}
	uint32_t len = (uint32_t)strlen(s);
	c->b[c->n++] = 2;
	for (int i = 0; i < 4; i++) {
		c->b[c->n++] = (uint8_t)(len >> (8 * i));
	}
	memcpy(c->b + c->n, s, len);
	c->n += len;
}

TEST(trace_canonical_form)
{
	char err[256], d[65], want[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	sim_trace_node(t, -2, "a", NULL);
	sim_trace_log(t, 5, NULL, "");
	sim_trace_log(t, 6, "x", "y");
	sim_run_result res = {.outcome = "pass", .end_ns = 7, .events = 2};
	REQUIRE(sim_trace_end(t, &res, d, &id) == 0);
	sim_trace_close(t);

	canon outcome = {.n = 0}, node = {.n = 0}, log = {.n = 0};
	c_text(&outcome, "pass");
	c_text(&outcome, NULL);
	c_int(&outcome, 7);
	c_int(&outcome, 2);
	c_int(&outcome, 0);
	c_int(&outcome, 0);
	c_int(&node, -2);
	c_text(&node, "a");
	c_text(&node, NULL);
	c_int(&log, 5);
	c_text(&log, NULL);
	c_text(&log, "");
	c_int(&log, 6);
	c_text(&log, "x");
	c_text(&log, "y");
	CHECK_INT(outcome.n, 9 + 1 + 4 * 9);
	CHECK_INT(node.n, 9 + 6 + 1);
	static const char *const names[] = {"node", "event", "op", "packet",
					    "tls",  "check", "log"};
	SHA256_CTX all;
	uint8_t md[32];
	SHA256_Init(&all);
	SHA256_Update(&all, outcome.b, outcome.n);
	for (int i = 0; i < 7; i++) {
		const canon *rows = i == 0 ? &node : i == 6 ? &log : NULL;
		SHA256(rows ? rows->b : (const uint8_t *)"", rows ? rows->n : 0,
		       md);
		SHA256_Update(&all, names[i], strlen(names[i]));
		SHA256_Update(&all, md, sizeof(md));
	}
	SHA256_Final(md, &all);
	for (int i = 0; i < 32; i++) {
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	}
	CHECK_STR(d, want);
}

/* The commit reads the run's rows through a virtual table in the
 * connection's temp schema: it leaves nothing in the file, a table of the
 * same name in the file changes nothing, and big values (overflow pages,
 * many pages per run) are stored whole. */
TEST(trace_commit_row_source)
{
	const char *path = tmp_path("rs.db");
	char err[256], d[65], d1[65], again[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id) == 0);
	sim_trace_close(t);
	CHECK_INT(query(path, "SELECT count(*) FROM sqlite_master WHERE "
			      "name LIKE '%tlsim_rows%'"),
		  0);
	/* Someone's table of the same name, with the same columns. */
	REQUIRE(sql(path, "CREATE TABLE tlsim_rows(seq, c0, c1, c2, c3, c4,"
			  " c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15,"
			  " c16, c17); INSERT INTO tlsim_rows(seq, c0)"
			  " VALUES(0, 'not a row of the run')") == SQLITE_OK);
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_STR(d, d1);
	CHECK_INT(id, 2);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d1);
	/* A run of many rows and big values, tables interleaved. */
	static uint8_t big[100000];
	for (size_t i = 0; i < sizeof(big); i++) {
		big[i] = (uint8_t)(i * 7);
	}
	char text[3000];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	for (int i = 0; i < 2000; i++) {
		sim_trace_log(t, i, i % 3 ? "script" : NULL,
			      text + sizeof(text) - 1 - (size_t)(i % 2999));
		if (i % 100 == 0) {
			sim_packet_row p = {.id = i,
					    .parent = -1,
					    .link = "l",
					    .src = "a",
					    .dst = "b",
					    .proto = "tcp",
					    .send_ns = i,
					    .deliver_ns = i + 1,
					    .len = i,
					    .fate = "delivered",
					    .dup_of = -1,
					    .pn = -1,
					    .data = big,
					    .data_len = (size_t)i * 50};
			sim_trace_packet(t, &p);
		}
		sim_trace_event(t, i, "client", "drain", -1);
	}
	sim_run_result res = {.outcome = "pass", .end_ns = 2000};
	REQUIRE(sim_trace_end(t, &res, d, &id) == 0);
	CHECK_INT(id, 3);
	sim_trace_close(t);
	REQUIRE(sim_trace_digest_db(path, 3, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d);
	CHECK_INT(query(path, "SELECT count(*) FROM log WHERE run = 3"), 2000);
	CHECK_INT(query(path, "SELECT sum(length(data)) FROM packet WHERE "
			      "run = 3"),
		  50 * 100 * (19 * 20 / 2));
	CHECK_INT(query(path, "SELECT count(*) FROM tlsim_rows"), 1);
	char s[64];
	query_text(path, "PRAGMA integrity_check", s, sizeof(s));
	CHECK_STR(s, "ok");
	cleanup();
}

TEST(trace_digest_db_errors)
{
	const char *path = tmp_path("e.db");
	char err[256], d[65], again[65];
	int64_t id;
	sim_trace *t;
	CHECK_INT(sim_trace_digest_db(path, 1, again, err, sizeof(err)),
		  SIM_ENOENT);
	CHECK(one_line_naming(err, path));
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	CHECK_INT(sim_trace_digest_db(path, 3, again, err, sizeof(err)),
		  SIM_EINVAL);
	CHECK(strstr(err, "no run 3") != NULL);
	/* A changed value changes the recomputed digest... */
	REQUIRE(
	    sql(path, "UPDATE op SET depth = 99 WHERE run = 1 AND seq = 4") ==
	    SQLITE_OK);
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	CHECK(strcmp(again, d) != 0);
	/* ...and so does a changed outcome field. */
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d);
	REQUIRE(sql(path, "UPDATE run SET checks_failed = 0 WHERE id = 2") ==
		SQLITE_OK);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK(strcmp(again, d) != 0);
	/* A deleted row is a gap in seq. */
	REQUIRE(sql(path, "DELETE FROM event WHERE run = 2 AND seq = 3") ==
		SQLITE_OK);
	CHECK_INT(sim_trace_digest_db(path, 2, again, err, sizeof(err)),
		  SIM_ECORRUPT);
	CHECK(strstr(err, "seq 3") != NULL);
	/* Not a trace. */
	const char *text = tmp_path("e.txt");
	FILE *f = fopen(text, "w");
	REQUIRE(f != NULL);
	fputs("not a database at all\n", f);
	fclose(f);
	CHECK_INT(sim_trace_digest_db(text, 1, again, err, sizeof(err)),
		  SIM_ENOTTRACE);
	cleanup();
}

TEST(trace_schema)
{
	const char *path = tmp_path("s.db");
	char err[256], d[65], s[512];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	CHECK_INT(query(path, "PRAGMA application_id"),
		  SIM_TRACE_APPLICATION_ID);
	CHECK_INT(query(path, "PRAGMA user_version"), SIM_TRACE_SCHEMA_VERSION);
	query_text(path, "PRAGMA journal_mode", s, sizeof(s));
	CHECK_STR(s, "wal");
	query_text(path, "SELECT value FROM meta WHERE key = 'schema_version'",
		   s, sizeof(s));
	CHECK_STR(s, "4");
	/* Columns in schema order: the order of the canonical form. */
	static const struct {
		const char *table, *cols;
	} want[] = {
	    {"run", "id,scenario,scenario_sha256,seed,params,version,"
		    "outcome,reason,end_ns,events,rows,checks,"
		    "checks_failed,digest,schedule,schema,limits"},
	    {"node", "run,seq,id,name,kind"},
	    {"event", "run,seq,time_ns,node,kind,parent"},
	    {"op", "run,seq,time_ns,node,op_id,op_type,action,depth,"
		   "cause_kind,cause_id,detail,event"},
	    {"packet", "run,seq,id,parent,link,src,dst,proto,send_ns,"
		       "deliver_ns,len,fate,reason,dup_of,ptype,space,pn,"
		       "frames,hs_state,data"},
	    {"tls", "run,seq,time_ns,node,event,level,direction,code,"
		    "detail"},
	    {"check", "run,seq,time_ns,ok,message,location,detail"},
	    {"log", "run,seq,time_ns,node,text"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char q[256];
		snprintf(q, sizeof(q),
			 "SELECT group_concat(name) FROM (SELECT name FROM "
			 "pragma_table_info('%s') ORDER BY cid)",
			 want[i].table);
		query_text(path, q, s, sizeof(s));
		CHECK_STR(s, want[i].cols);
		if (i > 0) { /* the key of every data table */
			snprintf(q, sizeof(q),
				 "SELECT group_concat(name) FROM (SELECT name "
				 "FROM pragma_table_info('%s') WHERE pk > 0 "
				 "ORDER BY pk)",
				 want[i].table);
			query_text(path, q, s, sizeof(s));
			CHECK_STR(s, "run,seq");
		}
	}
	query_text(path,
		   "SELECT run || ' ' || outcome || ' ' || ops || ' ' || "
		   "packets || ' ' || lost || ' ' || length(digest16) FROM "
		   "run_summary",
		   s, sizeof(s));
	CHECK_STR(s, "1 fail 10 2 1 16");
	/* Reopening an existing trace changes nothing of its runs. */
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 1, d, &id) == 0);
	CHECK_INT(id, 2);
	sim_trace_close(t);
	CHECK_INT(query(path, "SELECT count(*) FROM meta"), 2);
	cleanup();
}

/* --- atomicity ----------------------------------------------------------- */

TEST(trace_unfinished_run_is_absent)
{
	const char *path = tmp_path("c.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	produce(t, 1);
	CHECK_INT(sim_trace_begin(t, &run_info), SIM_ESTATE);
	sim_trace_close(t); /* no sim_trace_end */
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(query(path, "SELECT count(*) FROM log"), 1);
	CHECK_INT(query(path, "SELECT count(*) FROM op WHERE run <> 1"), 0);
	cleanup();
}

TEST(trace_killed_writer_keeps_earlier_runs)
{
	const char *path = tmp_path("d.db");
	char err[256], d1[65], d[65], again[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id) == 0);
	sim_trace_close(t);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		sim_trace *c;
		if (sim_trace_open(path, &c, err, sizeof(err)) != 0) {
			_exit(1);
		}
		/* Enough rows that SQLite spills uncommitted pages into the
		 * WAL before the process dies. */
		sim_trace_set_crash_after(c, 60000);
		sim_trace_begin(c, &run_info);
		for (int i = 0; i < 70000; i++) {
			sim_trace_log(c, i, "script",
				      "a line of text long enough to fill "
				      "pages quickly, a line of text");
		}
		sim_run_result res = {.outcome = "pass"};
		sim_trace_end(c, &res, d, &id);
		_exit(0); /* not reached: the hook exits with 9 */
	}
	int status;
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9);
	char wal[512];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	struct stat st;
	CHECK(stat(wal, &st) == 0 && st.st_size > 1000000); /* it spilled */
	char s[64];
	query_text(path, "PRAGMA integrity_check", s, sizeof(s));
	CHECK_STR(s, "ok");
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(query(path, "SELECT count(*) FROM log"), 1);
	CHECK_INT(query(path, "SELECT rows FROM run"), RUN_ROWS);
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d1);
	/* The trace takes new runs. */
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 2, d, &id) == 0);
	CHECK_INT(id, 2);
	sim_trace_close(t);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d);
	cleanup();
}

/* --- files that are not ours --------------------------------------------- */

TEST(trace_refuses_text_file)
{
	char err[256];
	sim_trace *t = (sim_trace *)&t;
	const char *text = tmp_path("text.db");
	FILE *f = fopen(text, "w");
	REQUIRE(f != NULL);
	fputs("hello, not a database\n", f);
	fclose(f);
	blob before = slurp(text);
	CHECK_INT(sim_trace_open(text, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(t == NULL);
	CHECK(one_line_naming(err, text));
	CHECK(strstr(err, "not an SQLite database") != NULL);
	CHECK(same_file(before, text));
	free(before.p);
	/* Shorter than an SQLite header. */
	f = fopen(text, "w");
	REQUIRE(f != NULL);
	fputs("SQLite", f);
	fclose(f);
	CHECK_INT(sim_trace_open(text, &t, err, sizeof(err)), SIM_ENOTTRACE);
	/* A directory. */
	CHECK_INT(sim_trace_open(dir, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(one_line_naming(err, dir));
	cleanup();
}

TEST(trace_refuses_other_application)
{
	char err[256], s[64];
	sim_trace *t;
	const char *other = tmp_path("other.db");
	REQUIRE(sql(other, "CREATE TABLE foo(x); INSERT INTO foo VALUES(1);") ==
		SQLITE_OK);
	blob before = slurp(other);
	CHECK_INT(sim_trace_open(other, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(one_line_naming(err, other));
	snprintf(s, sizeof(s), "%s: not a tlsim trace (an SQLite database",
		 other);
	CHECK(strstr(err, s) != NULL);
	CHECK(same_file(before, other));
	free(before.p);
	CHECK_INT(query(other, "SELECT count(*) FROM sqlite_master"), 1);

	/* Another application's id, in WAL mode, even with no tables. */
	const char *wal = tmp_path("otherwal.db");
	REQUIRE(sql(wal, "PRAGMA journal_mode=WAL; PRAGMA application_id = 42;"
			 " CREATE TABLE foo(x); DROP TABLE foo;") == SQLITE_OK);
	before = slurp(wal);
	CHECK_INT(sim_trace_open(wal, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(same_file(before, wal));
	CHECK(!exists(tmp_path("otherwal.db-wal")));
	CHECK(!exists(tmp_path("otherwal.db-shm")));
	free(before.p);
	CHECK_INT(query(wal, "PRAGMA application_id"), 42);

	/* An empty SQLite database (no schema, no id) becomes a trace. */
	const char *empty = tmp_path("empty.db");
	REQUIRE(sql(empty, "PRAGMA user_version = 0; VACUUM;") == SQLITE_OK);
	REQUIRE(sim_trace_open(empty, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	CHECK_INT(query(empty, "PRAGMA application_id"),
		  SIM_TRACE_APPLICATION_ID);
	/* So does an empty file. */
	const char *zero = tmp_path("zero.db");
	FILE *f = fopen(zero, "w");
	REQUIRE(f != NULL);
	fclose(f);
	REQUIRE(sim_trace_open(zero, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	CHECK_INT(query(zero, "SELECT count(*) FROM run"), 0);
	cleanup();
}

/* A trace of schema 1 (no run.schedule) is upgraded when opened for
 * writing; its runs stay, new runs carry their schedule. */
TEST(trace_upgrades_schema_1)
{
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	const char *old = tmp_path("v1.db");
	REQUIRE(sim_trace_open(old, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	/* A schema-1 file: without the columns later versions added. */
	REQUIRE(sql(old, "DROP VIEW op_concurrent; DROP VIEW op_step;"
			 "ALTER TABLE run DROP COLUMN schedule;"
			 "ALTER TABLE run DROP COLUMN schema;"
			 "ALTER TABLE run DROP COLUMN limits;"
			 "ALTER TABLE event DROP COLUMN parent;"
			 "ALTER TABLE op DROP COLUMN event;"
			 "UPDATE meta SET value = '1' WHERE key = "
			 "'schema_version'; PRAGMA user_version = 1") ==
		SQLITE_OK);
	char before[65];
	/* (Recomputed as a schema-1 run: not |d|, which had the columns.) */
	CHECK_INT(sim_trace_digest_db(old, 1, before, err, sizeof(err)), 0);
	REQUIRE(sim_trace_open(old, &t, err, sizeof(err)) == 0);
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	sim_run_result res = {.outcome = "pass", .schedule = "choice 3 1\n"};
	REQUIRE(sim_trace_end(t, &res, d, &id) == 0);
	sim_trace_close(t);
	CHECK_INT(query(old, "PRAGMA user_version"), SIM_TRACE_SCHEMA_VERSION);
	CHECK_INT(query(old, "SELECT count(*) FROM run"), 2);
	CHECK_INT(query(old, "SELECT count(*) FROM run WHERE schedule = "
			     "'choice 3 1' || char(10)"),
		  1);
	CHECK_INT(query(old, "SELECT value FROM meta WHERE key = "
			     "'schema_version'"),
		  SIM_TRACE_SCHEMA_VERSION);
	/* The old run's digest still recomputes (its schema's columns); the
	 * new run's covers the new columns. */
	char after[65];
	CHECK_INT(sim_trace_digest_db(old, 1, after, err, sizeof(err)), 0);
	CHECK_STR(after, before);
	CHECK_INT(query(old, "SELECT count(*) FROM run WHERE id = 1 AND "
			     "schema IS NULL"),
		  1);
	CHECK_INT(query(old, "SELECT schema FROM run WHERE id = 2"),
		  SIM_TRACE_SCHEMA_VERSION);
	/* The causality views are back, over the new columns. */
	CHECK_INT(query(old, "SELECT count(*) FROM op_step"),
		  query(old, "SELECT count(*) FROM op WHERE action LIKE "
			     "'enqueue%'"));
	CHECK(query(old, "SELECT count(*) FROM op_concurrent") >= 0);
	cleanup();
}

/* A schema-3 trace (before run.limits) gets the column when opened for
 * writing; its runs keep NULL and their digests, new runs store their
 * caps, and a run with the defaults stores NULL. */
TEST(trace_upgrades_schema_3)
{
	char err[256], d[65], before[65], after[65];
	int64_t id;
	sim_trace *t;
	const char *old = tmp_path("v3.db");
	REQUIRE(sim_trace_open(old, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	REQUIRE(sql(old, "ALTER TABLE run DROP COLUMN limits;"
			 "UPDATE meta SET value = '3' WHERE key = "
			 "'schema_version'; PRAGMA user_version = 3") ==
		SQLITE_OK);
	CHECK_INT(sim_trace_digest_db(old, 1, before, err, sizeof(err)), 0);
	CHECK_STR(before, d);
	REQUIRE(sim_trace_open(old, &t, err, sizeof(err)) == 0);
	sim_run_info capped = run_info;
	capped.limits = "max-events=50\n";
	REQUIRE(sim_trace_begin(t, &capped) == 0);
	sim_run_result res = {.outcome = "limit", .reason = "events"};
	REQUIRE(sim_trace_end(t, &res, d, &id) == 0);
	REQUIRE(write_run(t, 1, d, &id) == 0);
	sim_trace_close(t);
	CHECK_INT(query(old, "PRAGMA user_version"), SIM_TRACE_SCHEMA_VERSION);
	CHECK_INT(query(old, "SELECT count(*) FROM run WHERE limits IS NULL"),
		  2);
	CHECK_INT(query(old, "SELECT count(*) FROM run WHERE id = 2 AND "
			     "limits = 'max-events=50' || char(10)"),
		  1);
	CHECK_INT(sim_trace_digest_db(old, 1, after, err, sizeof(err)), 0);
	CHECK_STR(after, before);
	cleanup();
}

TEST(trace_refuses_newer_schema)
{
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	const char *newer = tmp_path("newer.db");
	REQUIRE(sim_trace_open(newer, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	REQUIRE(sql(newer, "PRAGMA user_version = 99") == SQLITE_OK);
	blob before = slurp(newer);
	CHECK_INT(sim_trace_open(newer, &t, err, sizeof(err)), SIM_ESCHEMA);
	char want[512];
	snprintf(want, sizeof(want),
		 "%s: trace schema version 99 is newer than this tlsim "
		 "(reads %d)",
		 newer, SIM_TRACE_SCHEMA_VERSION);
	CHECK_STR(err, want);
	CHECK(same_file(before, newer));
	free(before.p);
	CHECK_INT(sim_trace_digest_db(newer, 1, d, err, sizeof(err)),
		  SIM_ESCHEMA);
	/* Our id but tables missing: not a trace this build can use. */
	const char *half = tmp_path("half.db");
	REQUIRE(sim_trace_open(half, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	REQUIRE(sql(half, "DROP TABLE tls") == SQLITE_OK);
	CHECK_INT(sim_trace_open(half, &t, err, sizeof(err)), SIM_ECORRUPT);
	CHECK(one_line_naming(err, half));
	cleanup();
}

TEST(trace_corrupt_file)
{
	const char *path = tmp_path("corrupt.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	for (int i = 0; i < 40; i++) {
		REQUIRE(write_run(t, i, d, &id) == 0);
	}
	sim_trace_close(t);
	REQUIRE(!exists(tmp_path("corrupt.db-wal"))); /* all in the file */
	blob good = slurp(path);
	REQUIRE(good.n >= 8 * 4096);
	/* Overwrite the middle pages with garbage: the header and the
	 * schema page are intact, so only a check of the b-trees finds it. */
	FILE *f = fopen(path, "r+b");
	REQUIRE(f != NULL);
	fseek(f, 3 * 4096, SEEK_SET);
	for (long i = 0; i < good.n - 5 * 4096; i++) {
		fputc((int)((i * 131 + 7) & 0xff), f);
	}
	fclose(f);
	blob before = slurp(path);
	int rc = sim_trace_open(path, &t, err, sizeof(err));
	CHECK_INT(rc, SIM_ECORRUPT);
	CHECK(one_line_naming(err, path));
	CHECK(strstr(err, "corrupt") != NULL);
	CHECK(same_file(before, path));
	free(before.p);

	/* A valid 100-byte header followed by garbage. */
	f = fopen(path, "wb");
	REQUIRE(f != NULL);
	fwrite(good.p, 1, 100, f);
	for (int i = 0; i < 3 * 4096; i++) {
		fputc((i * 77 + 3) & 0xff, f);
	}
	fclose(f);
	before = slurp(path);
	rc = sim_trace_open(path, &t, err, sizeof(err));
	CHECK_INT(rc, SIM_ECORRUPT);
	CHECK(one_line_naming(err, path));
	CHECK(same_file(before, path));
	CHECK(sim_trace_digest_db(path, 1, d, err, sizeof(err)) != 0);
	free(before.p);
	free(good.p);
	cleanup();
}

TEST(trace_missing_directory)
{
	char err[256];
	sim_trace *t;
	const char *p = tmp_path("nodir/x.db");
	CHECK_INT(sim_trace_open(p, &t, err, sizeof(err)), SIM_ENOENT);
	CHECK(one_line_naming(err, p));
	CHECK(strstr(err, "does not exist") != NULL);
	/* A path through a regular file. */
	const char *file = tmp_path("f");
	FILE *f = fopen(file, "w");
	REQUIRE(f != NULL);
	fclose(f);
	CHECK_INT(sim_trace_open(tmp_path("f/x.db"), &t, err, sizeof(err)),
		  SIM_ENOENT);
	CHECK_INT(sim_trace_open("", &t, err, sizeof(err)), SIM_EINVAL);
	cleanup();
}

/* Opens |path| as user nobody in a child process; returns the child's
 * sim_trace_open result, or 1 if the child could not drop root. */
static int open_as_nobody(const char *path)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		char err[256];
		sim_trace *t;
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
		    setuid(65534) != 0) {
			_exit(200);
		}
		int rc = sim_trace_open(path, &t, err, sizeof(err));
		_exit(rc == 0 ? 100 : rc - SIM_E__FIRST);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
		return 2;
	}
	int code = WEXITSTATUS(status);
	return code == 200 ? 1 : code == 100 ? 0 : SIM_E__FIRST + code;
}

TEST(trace_unwritable)
{
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	/* /proc refuses new files to everyone, root included: a real
	 * refusal whoever runs the tests. */
	CHECK_INT(sim_trace_open("/proc/tlsim-test.db", &t, err, sizeof(err)),
		  SIM_EPERM);
	CHECK(one_line_naming(err, "/proc/tlsim-test.db"));

	const char *ro = tmp_path("ro");
	REQUIRE(mkdir(ro, 0755) == 0);
	const char *inro = tmp_path("ro/x.db");
	const char *rofile = tmp_path("rofile.db");
	REQUIRE(sim_trace_open(rofile, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	REQUIRE(chmod(rofile, 0444) == 0);
	if (geteuid() != 0) {
		REQUIRE(chmod(ro, 0555) == 0);
		CHECK_INT(sim_trace_open(inro, &t, err, sizeof(err)),
			  SIM_EPERM);
		CHECK(strstr(err, "not writable") != NULL);
		CHECK_INT(sim_trace_open(rofile, &t, err, sizeof(err)),
			  SIM_EPERM);
		CHECK(one_line_naming(err, rofile));
	} else {
		/* Permission bits do not stop root: check them as nobody in
		 * a child (a root-owned 0755 directory, a 0444 file in a
		 * directory nobody may write). If this system will not let
		 * us drop root, the /proc case above is the one check. */
		REQUIRE(chmod(dir, 0777) == 0);
		int rc = open_as_nobody(inro);
		if (rc != 1) {
			CHECK_INT(rc, SIM_EPERM);
			CHECK_INT(open_as_nobody(rofile), SIM_EPERM);
		} else {
			fprintf(stderr, "trace_unwritable: cannot drop root; "
					"checked /proc only\n");
		}
	}
	CHECK(!exists(inro));
	cleanup();
}

/* --- locks --------------------------------------------------------------- */

TEST(trace_locked_at_open)
{
	const char *path = tmp_path("lo.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) ==
		SQLITE_OK);
	CHECK_INT(sim_trace_open(path, &t, err, sizeof(err)), SIM_EBUSY);
	char want[512];
	snprintf(want, sizeof(want), "%s: locked by another writer", path);
	CHECK_STR(err, want);
	/* A brand-new trace being created by another writer: the same. */
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	const char *fresh = tmp_path("fresh.db");
	REQUIRE(sqlite3_open(fresh, &db) == SQLITE_OK);
	REQUIRE(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) ==
		SQLITE_OK);
	CHECK_INT(sim_trace_open(fresh, &t, err, sizeof(err)), SIM_EBUSY);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	/* Released: both open. */
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	REQUIRE(sim_trace_open(fresh, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	cleanup();
}

TEST(trace_locked_at_end)
{
	const char *path = tmp_path("le.db");
	char err[256], d[65], d1[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id) == 0);
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
		SQLITE_OK);
	/* Taken after open: the commit waits (2 s), then fails clearly,
	 * and the run is not in the trace. */
	CHECK_INT(write_run(t, 1, d, &id), SIM_EBUSY);
	CHECK_INT(id, 0);
	CHECK_INT(sim_trace_error(t), SIM_EBUSY);
	char want[512];
	snprintf(want, sizeof(want), "%s: locked by another writer", path);
	CHECK_STR(sim_trace_errmsg(t), want);
	CHECK_INT(strlen(d), 64); /* the digest is still computed */
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(query(path, "SELECT count(*) FROM op"), 10);
	/* The same handle goes on. */
	REQUIRE(write_run(t, 1, d, &id) == 0);
	CHECK_INT(id, 2);
	CHECK_INT(sim_trace_error(t), 0);
	sim_trace_close(t);
	cleanup();
}

/* --- caps, state, full disk ---------------------------------------------- */

TEST(trace_row_cap)
{
	const char *path = tmp_path("cap.db");
	char err[256], d[65], d1[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id) == 0);
	sim_trace_set_max_rows(t, RUN_ROWS - 1);
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	produce(t, 0);
	CHECK_INT(sim_trace_error(t), SIM_ELIMIT);
	CHECK(strstr(sim_trace_errmsg(t), "more than 28 trace rows") != NULL);
	CHECK(one_line_naming(sim_trace_errmsg(t), path));
	CHECK_INT(sim_trace_rows(t), RUN_ROWS);
	sim_run_result res = {.outcome = "fail",
			      .reason = "s.lua:4: bad",
			      .end_ns = 1000,
			      .events = 10,
			      .checks = 2,
			      .checks_failed = 1};
	/* The run is not stored, but its digest is whole. */
	CHECK_INT(sim_trace_end(t, &res, d, &id), SIM_ELIMIT);
	CHECK_INT(id, 0);
	CHECK_STR(d, d1);
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 1);
	/* At the cap exactly: stored. The error does not outlive its run. */
	sim_trace_set_max_rows(t, RUN_ROWS);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_INT(id, 2);
	CHECK_INT(sim_trace_error(t), 0);
	sim_trace_close(t);
	/* The cap bounds memory: without stored rows it does not apply. */
	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	sim_trace_set_max_rows(t, 1);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_STR(d, d1);
	sim_trace_close(t);
	cleanup();
}

TEST(trace_state_errors)
{
	char err[256], d[65];
	int64_t id = 5;
	sim_trace *t;
	sim_run_result res = {.outcome = "pass"};
	/* NULL handles: no-ops. */
	sim_trace_close(NULL);
	sim_trace_log(NULL, 0, "x", "y");
	sim_trace_node(NULL, 0, "x", "y");
	CHECK_INT(sim_trace_error(NULL), 0);
	CHECK_INT(sim_trace_rows(NULL), 0);
	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	CHECK_INT(sim_trace_end(t, &res, d, &id), SIM_ESTATE);
	CHECK_INT(id, 0);
	CHECK_STR(d, "");
	sim_trace_log(t, 0, "x", "outside a run: ignored");
	CHECK_INT(sim_trace_rows(t), 0);
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	CHECK_INT(sim_trace_error(t), 0);
	CHECK_INT(sim_trace_begin(t, &run_info), SIM_ESTATE);
	CHECK_INT(sim_trace_end(t, &res, NULL, NULL), 0);
	sim_trace_close(t);
}

/* A run spooled in one trace and stored into another has the same run
 * row, rows and digest as one written there directly; a damaged record is
 * refused and writes nothing; batches commit several runs at once. */
TEST(trace_spooled_runs)
{
	char err[256], d_direct[65], d_spool[65], d[65];
	int64_t id = 0;
	sim_trace *direct, *spool, *out;
	const char *pd = tmp_path("direct.db"), *po = tmp_path("stored.db");
	REQUIRE(sim_trace_open(pd, &direct, err, sizeof(err)) == 0);
	REQUIRE(write_run(direct, 3, d_direct, &id) == 0);
	sim_trace_close(direct);

	REQUIRE(sim_trace_open_spool(&spool, err, sizeof(err)) == 0);
	size_t len = 1;
	CHECK(sim_trace_spooled(spool, &len) == NULL);
	CHECK_INT(len, 0);
	REQUIRE(write_run(spool, 3, d_spool, &id) == 0);
	CHECK_INT(id, 0);
	CHECK_STR(d_spool, d_direct);
	const uint8_t *rec = sim_trace_spooled(spool, &len);
	REQUIRE(rec != NULL && len > 0);
	uint8_t *copy = malloc(len);
	REQUIRE(copy != NULL);
	memcpy(copy, rec, len);

	REQUIRE(sim_trace_open(po, &out, err, sizeof(err)) == 0);
	/* Damaged: a flipped byte in the last row, a cut record. */
	copy[len - 1] ^= 1;
	CHECK_INT(sim_trace_store_spooled(out, copy, len, &id), SIM_ECORRUPT);
	copy[len - 1] ^= 1;
	CHECK_INT(sim_trace_store_spooled(out, copy, len - 3, &id),
		  SIM_ECORRUPT);
	CHECK_INT(sim_trace_store_spooled(out, copy, 3, &id), SIM_ECORRUPT);
	CHECK_INT(query(po, "SELECT count(*) FROM run"), 0);
	/* Whole: twice in one batch, then once on its own. */
	REQUIRE(sim_trace_batch_begin(out) == 0);
	CHECK_INT(sim_trace_batch_begin(out), SIM_ESTATE);
	CHECK_INT(sim_trace_store_spooled(out, copy, len, &id), 0);
	CHECK_INT(id, 1);
	CHECK_INT(sim_trace_store_spooled(out, copy, len, &id), 0);
	CHECK_INT(id, 2);
	CHECK_INT(sim_trace_batch_commit(out), 0);
	CHECK_INT(sim_trace_store_spooled(out, copy, len, &id), 0);
	CHECK_INT(id, 3);
	sim_trace_close(out);
	for (int64_t r = 1; r <= 3; r++) {
		REQUIRE(sim_trace_digest_db(po, r, d, err, sizeof(err)) == 0);
		CHECK_STR(d, d_direct);
	}
	/* The stored rows and run row are the direct run's. */
	char a[2048], b[2048];
	static const char *const q =
	    "SELECT scenario || scenario_sha256 || seed || params || outcome"
	    " || reason || end_ns || events || rows || checks ||"
	    " checks_failed || digest || ifnull(schedule, '-') ||"
	    " (SELECT group_concat(text, '|') FROM log WHERE run = %d)"
	    " FROM run WHERE id = %d";
	char sqltext[512];
	snprintf(sqltext, sizeof(sqltext), q, 1, 1);
	query_text(pd, sqltext, a, sizeof(a));
	snprintf(sqltext, sizeof(sqltext), q, 2, 2);
	query_text(po, sqltext, b, sizeof(b));
	CHECK_STR(b, a);
	/* A spool trace has no database to store into. */
	CHECK_INT(sim_trace_store_spooled(spool, copy, len, &id), SIM_ESTATE);
	CHECK_INT(sim_trace_batch_begin(spool), SIM_ESTATE);
	free(copy);
	sim_trace_close(spool);
	cleanup();
}

/* A VFS that wraps the default one and fails writes with SQLITE_FULL once
 * |full_budget| bytes have been written: a full disk without root or a
 * small file system. */
static sqlite3_vfs *real_vfs;
static long long full_budget = -1; /* -1: unlimited */

typedef struct full_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct */
} full_file;

#define REAL(f) (((full_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, off);
}
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	if (full_budget >= 0) {
		if (full_budget < n) {
			full_budget = 0;
			return SQLITE_FULL;
		}
		full_budget -= n;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shmmap(sqlite3_file *f, int pg, int sz, int ext,
		     void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int ff_shmlock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void ff_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods full_methods = {
    2,          ff_close,  ff_read,    ff_write,      ff_truncate, ff_sync,
    ff_size,    ff_lock,   ff_unlock,  ff_reserved,   ff_fcntl,    ff_sector,
    ff_devchar, ff_shmmap, ff_shmlock, ff_shmbarrier, ff_shmunmap, NULL,
    NULL};

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		   int flags, int *out)
{
	(void)vfs;
	full_file *ff = (full_file *)f;
	ff->real = (sqlite3_file *)&ff[1];
	int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
	ff->base.pMethods = rc == SQLITE_OK ? &full_methods : NULL;
	return rc;
}

TEST(trace_disk_full)
{
	static sqlite3_vfs full;
	real_vfs = sqlite3_vfs_find(NULL);
	REQUIRE(real_vfs != NULL && real_vfs->iVersion >= 1);
	full = *real_vfs;
	full.zName = "tlsim_test_full";
	full.szOsFile = (int)sizeof(full_file) + real_vfs->szOsFile;
	full.xOpen = ff_open;
	REQUIRE(sqlite3_vfs_register(&full, 1) == SQLITE_OK);

	const char *path = tmp_path("full.db");
	char err[256], d1[65], d[65], again[65];
	int64_t id;
	sim_trace *t;
	/* Full while creating the trace. */
	full_budget = 0;
	CHECK_INT(sim_trace_open(path, &t, err, sizeof(err)), SIM_EFULL);
	char want[512];
	snprintf(want, sizeof(want), "disk full writing %s", path);
	CHECK_STR(err, want);
	full_budget = -1;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id) == 0);
	/* Full in the middle of a big run's commit. */
	full_budget = 64 * 1024;
	REQUIRE(sim_trace_begin(t, &run_info) == 0);
	for (int i = 0; i < 20000; i++) {
		sim_trace_log(t, i, "script", "a line that takes some room");
	}
	sim_run_result res = {.outcome = "pass"};
	CHECK_INT(sim_trace_end(t, &res, d, &id), SIM_EFULL);
	CHECK_STR(sim_trace_errmsg(t), want);
	CHECK_INT(id, 0);
	full_budget = -1;
	/* Nothing of it is in the trace, and the trace goes on. */
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(query(path, "SELECT count(*) FROM log"), 1);
	REQUIRE(write_run(t, 1, d, &id) == 0);
	CHECK_INT(id, 2);
	sim_trace_close(t);
	char s[64];
	query_text(path, "PRAGMA integrity_check", s, sizeof(s));
	CHECK_STR(s, "ok");
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d1);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d);

	sqlite3_vfs_register(real_vfs, 1);
	sqlite3_vfs_unregister(&full);
	cleanup();
}

/* wal_size returns the size of |path|'s -wal file, 0 if there is none. */
static long long wal_size(const char *path)
{
	char wal[600];
	struct stat st;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &st) == 0 ? (long long)st.st_size : 0;
}

/* The writer checkpoints after a commit that takes the WAL past 4096
 * pages (16 MiB), not SQLite's default 1000 (4 MiB): a checkpoint's syncs
 * cost a few milliseconds whatever they write. A checkpoint that copied
 * everything lets the next commit reuse the WAL from its start, so the
 * file stops growing. */
TEST(trace_checkpoint_interval)
{
	const char *path = tmp_path("ck.db");
	char err[256], digest[65];
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	static uint8_t data[3000];
	memset(data, 0x3c, sizeof(data));
	long long most = 0;
	for (int r = 0; r < 40; r++) { /* about 1 MB a run */
		REQUIRE(sim_trace_begin(t, &run_info) == 0);
		for (int i = 0; i < 300; i++) {
			sim_packet_row p = {.id = i,
					    .parent = -1,
					    .src = "client",
					    .dst = "server",
					    .proto = "echo",
					    .deliver_ns = -1,
					    .len = (int64_t)sizeof(data),
					    .fate = "delivered",
					    .dup_of = -1,
					    .pn = -1,
					    .data = data,
					    .data_len = sizeof(data)};
			sim_trace_packet(t, &p);
		}
		sim_run_result res = {.outcome = "pass"};
		int64_t id;
		REQUIRE(sim_trace_end(t, &res, digest, &id) == 0);
		long long w = wal_size(path);
		most = w > most ? w : most;
		if (r == 9) {
			/* 10 MB of commits: no checkpoint yet, or the WAL
			 * would have started over at 4 MiB. */
			CHECK(w > 8 * 1024 * 1024);
		}
	}
	/* 40 MB of commits: checkpointed and started over at 16 MiB (plus
	 * the commit that took it past). */
	CHECK(most > 16 * 1024 * 1024);
	CHECK(most < 18 * 1024 * 1024);
	CHECK_INT(query(path, "SELECT count(*) FROM run"), 40);
	sim_trace_close(t);
	cleanup();
}

/* Trace writer: digests, atomic runs, refusal of files that are not ours. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/trace.h"
#include "tests/unit.h"

static char dir[256];

static const char *tmp_path(const char *name)
{
	static char buf[4][512];
	static int k;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/tlsim-trace-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			abort();
		}
	}
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	unlink(buf[k]);
	return buf[k];
}

/* Writes one small run whose content depends on |salt|. */
static int write_run(sim_trace *t, int salt, char digest[65], int64_t *id)
{
	sim_run_info info = {.scenario = "s.lua", .scenario_sha256 = "ab",
			     .seed = 7, .params = "k=v\n"};
	if (sim_trace_begin(t, &info) != 0) {
		return -1;
	}
	sim_trace_node(t, 1, "client", "echo_client");
	for (int i = 0; i < 10; i++) {
		sim_trace_event(t, i * 100 + salt, "client", "timer");
		sim_op_row op = {.time = i * 100, .node = "client",
				 .op_id = i, .op_type = "recv",
				 .action = "enqueue", .depth = i,
				 .cause_kind = "packet", .cause_id = -1};
		sim_trace_op(t, &op);
	}
	uint8_t bytes[4] = {1, 2, 3, (uint8_t)salt};
	sim_packet_row p = {.id = 1, .parent = -1, .link = "l", .src = "a",
			    .dst = "b", .proto = "echo", .send_ns = 5,
			    .deliver_ns = -1, .len = 4, .fate = "lost",
			    .reason = "loss", .dup_of = -1, .pn = -1,
			    .data = bytes, .data_len = sizeof(bytes)};
	sim_trace_packet(t, &p);
	sim_tls_row tr = {.time = 9, .node = "client", .event = "alert_sent",
			  .code = 70, .detail = "protocol_version"};
	sim_trace_tls(t, &tr);
	sim_trace_check(t, 10, 1, "ok", "s.lua:3", NULL);
	sim_trace_log(t, 11, "script", "hello");
	sim_run_result res = {.outcome = "pass", .end_ns = 1000,
			      .events = 10, .checks = 1};
	return sim_trace_end(t, &res, digest, id);
}

static int64_t count(const char *path, const char *sql)
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

TEST(trace_runs_and_digests)
{
	const char *path = tmp_path("a.db");
	char err[256], d1[65], d2[65], d3[65], d4[65], d5[65], again[65];
	int64_t id1, id2, id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d1, &id1) == 0);
	REQUIRE(write_run(t, 1, d2, &id2) == 0);
	CHECK_INT(id1, 1);
	CHECK_INT(id2, 2);
	CHECK(strcmp(d1, d2) != 0);
	sim_trace_close(t);
	CHECK_INT(count(path, "SELECT count(*) FROM run"), 2);
	CHECK_INT(count(path, "SELECT count(*) FROM op WHERE run = 2"), 10);
	CHECK_INT(count(path, "SELECT rows FROM run WHERE id = 1"), 25);
	CHECK_INT(count(path, "SELECT count(*) FROM packet WHERE deliver_ns "
			      "IS NULL AND pn IS NULL"),
		  2);
	CHECK_INT(count(path, "SELECT max(seq) FROM event WHERE run = 1"), 9);
	/* The stored digest is what the stored rows recompute to. */
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d1);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK_STR(again, d2);
	CHECK(sim_trace_digest_db(path, 3, again, err, sizeof(err)) != 0);
	/* Same rows: same digest without a database, and without rows. */
	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d3, &id) == 0);
	CHECK_INT(id, 0);
	sim_trace_close(t);
	CHECK_STR(d3, d1);
	REQUIRE(sim_trace_open(tmp_path("b.db"), &t, err, sizeof(err)) == 0);
	sim_trace_set_rows(t, 0);
	REQUIRE(write_run(t, 0, d4, &id) == 0);
	CHECK_STR(d4, d1);
	sim_trace_set_rows(t, 1);
	REQUIRE(write_run(t, 0, d5, &id) == 0);
	CHECK_STR(d5, d1);
	sim_trace_close(t);
}

TEST(trace_unfinished_run_is_absent)
{
	const char *path = tmp_path("c.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_run_info info = {.scenario = "s.lua", .seed = 1};
	sim_trace_begin(t, &info);
	sim_trace_log(t, 1, "script", "never committed");
	sim_trace_close(t);
	CHECK_INT(count(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(count(path, "SELECT count(*) FROM log"), 1);
}

TEST(trace_killed_writer_keeps_earlier_runs)
{
	const char *path = tmp_path("d.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	sim_trace_close(t);
	fflush(NULL);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		sim_trace *c;
		if (sim_trace_open(path, &c, err, sizeof(err)) != 0) {
			_exit(1);
		}
		sim_trace_set_crash_after(c, 5);
		write_run(c, 1, d, &id);
		_exit(0); /* not reached: the hook exits with 9 */
	}
	int status;
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9);
	CHECK_INT(count(path, "SELECT count(*) FROM run"), 1);
	CHECK_INT(count(path, "SELECT count(*) FROM op"), 10);
	CHECK_INT(count(path, "SELECT count(*) FROM pragma_integrity_check "
			      "WHERE integrity_check = 'ok'"),
		  1);
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(write_run(t, 2, d, &id) == 0);
	CHECK_INT(id, 2);
	sim_trace_close(t);
}

static int read_all(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return -1;
	}
	int n = (int)fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

TEST(trace_refuses_foreign_files)
{
	char err[256], before[8192], after[8192];
	sim_trace *t;
	const char *text = tmp_path("text.db");
	FILE *f = fopen(text, "w");
	REQUIRE(f != NULL);
	fputs("hello, not a database\n", f);
	fclose(f);
	CHECK_INT(sim_trace_open(text, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(strstr(err, text) != NULL);
	CHECK(t == NULL);

	const char *other = tmp_path("other.db");
	sqlite3 *db;
	REQUIRE(sqlite3_open(other, &db) == SQLITE_OK);
	sqlite3_exec(db, "CREATE TABLE foo(x); INSERT INTO foo VALUES(1);",
		     NULL, NULL, NULL);
	sqlite3_close(db);
	int n1 = read_all(other, before, sizeof(before));
	CHECK_INT(sim_trace_open(other, &t, err, sizeof(err)), SIM_ENOTTRACE);
	CHECK(strstr(err, "another application") != NULL);
	int n2 = read_all(other, after, sizeof(after));
	CHECK(n1 > 0 && n1 == n2 && memcmp(before, after, (size_t)n1) == 0);

	const char *newer = tmp_path("newer.db");
	REQUIRE(sim_trace_open(newer, &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	REQUIRE(sqlite3_open(newer, &db) == SQLITE_OK);
	sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK_INT(sim_trace_open(newer, &t, err, sizeof(err)), SIM_ESCHEMA);
	CHECK(strstr(err, "version 99") != NULL);

	CHECK_INT(sim_trace_open(tmp_path("nodir/x.db"), &t, err,
				 sizeof(err)),
		  SIM_ENOENT);
	/* /proc refuses new files even to root, whose permission bits
	 * would not stop a write anywhere else. */
	CHECK(sim_trace_open("/proc/tlsim-test.db", &t, err, sizeof(err)) ==
	      SIM_EPERM);
}

TEST(trace_corrupt_file)
{
	const char *path = tmp_path("corrupt.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	for (int i = 0; i < 20; i++) {
		REQUIRE(write_run(t, i, d, &id) == 0);
	}
	sim_trace_close(t);
	/* Fold the WAL into the file, then overwrite the pages after the
	 * first with garbage. */
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
	FILE *f = fopen(path, "r+b");
	REQUIRE(f != NULL);
	fseek(f, 4096, SEEK_SET);
	for (int i = 0; i < 16384; i++) {
		fputc((i * 131) & 0xff, f);
	}
	fclose(f);
	int rc = sim_trace_open(path, &t, err, sizeof(err));
	CHECK(rc == SIM_ECORRUPT || rc == SIM_ENOTTRACE);
	CHECK(strchr(err, '\n') == NULL);
	CHECK(strstr(err, path) != NULL);
}

TEST(trace_locked)
{
	const char *path = tmp_path("locked.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) ==
		SQLITE_OK);
	/* Taken after open: the commit waits, then fails clearly. */
	CHECK_INT(write_run(t, 0, d, &id), SIM_EBUSY);
	CHECK(strstr(sim_trace_errmsg(t), "locked") != NULL);
	sim_trace *t2;
	CHECK_INT(sim_trace_open(path, &t2, err, sizeof(err)), SIM_EBUSY);
	CHECK(strstr(err, "locked by another writer") != NULL);
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	REQUIRE(write_run(t, 0, d, &id) == 0);
	CHECK_INT(id, 1);
	sim_trace_close(t);
}

TEST(trace_row_cap)
{
	const char *path = tmp_path("cap.db");
	char err[256], d[65];
	int64_t id;
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	sim_trace_set_max_rows(t, 5);
	sim_run_info info = {.scenario = "s.lua", .seed = 1};
	sim_trace_begin(t, &info);
	for (int i = 0; i < 8; i++) {
		sim_trace_log(t, i, "script", "x");
	}
	CHECK_INT(sim_trace_error(t), SIM_ELIMIT);
	CHECK_INT(sim_trace_rows(t), 8);
	sim_run_result res = {.outcome = "pass"};
	CHECK_INT(sim_trace_end(t, &res, d, &id), 0);
	sim_trace_close(t);
	CHECK_INT(count(path, "SELECT count(*) FROM log"), 5);
}

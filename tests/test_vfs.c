/* The trace writer's VFS (sim/vfs.h): WAL appends gathered into one write
 * per commit, written before the commit is visible, and nothing else
 * changed. A counting VFS is made the default before sim_vfs_register
 * wraps it (each test runs in a process of its own), so the tests see the
 * writes that reach the default VFS. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/trace.h"
#include "sim/vfs.h"
#include "tests/unit.h"

/* --- a counting VFS under sim_vfs ---------------------------------------- */

typedef struct cfile {
	sqlite3_file base;
	sqlite3_file *real;
	int wal;
} cfile;

static sqlite3_vfs *under;
static sqlite3_vfs counting;
static sqlite3_io_methods cmethods;
static long wal_writes, wal_bytes, wal_max_write;

static int c_write(sqlite3_file *p, const void *b, int n, sqlite3_int64 o)
{
	cfile *f = (cfile *)p;
	if (f->wal) {
		wal_writes++;
		wal_bytes += n;
		if (n > wal_max_write) {
			wal_max_write = n;
		}
	}
	return f->real->pMethods->xWrite(f->real, b, n, o);
}

#define FWD(name, args, call)                                                  \
	static int c_##name args                                               \
	{                                                                      \
		sqlite3_file *r = ((cfile *)p)->real;                          \
		return r->pMethods->call;                                      \
	}
FWD(read, (sqlite3_file * p, void *b, int n, sqlite3_int64 o),
    xRead(r, b, n, o))
FWD(truncate, (sqlite3_file * p, sqlite3_int64 s), xTruncate(r, s))
FWD(sync, (sqlite3_file * p, int fl), xSync(r, fl))
FWD(size, (sqlite3_file * p, sqlite3_int64 *s), xFileSize(r, s))
FWD(lock, (sqlite3_file * p, int l), xLock(r, l))
FWD(unlock, (sqlite3_file * p, int l), xUnlock(r, l))
FWD(reserved, (sqlite3_file * p, int *o), xCheckReservedLock(r, o))
FWD(fcntl, (sqlite3_file * p, int op, void *a), xFileControl(r, op, a))
FWD(sector, (sqlite3_file * p), xSectorSize(r))
FWD(device, (sqlite3_file * p), xDeviceCharacteristics(r))
FWD(shm_map, (sqlite3_file * p, int i, int sz, int e, void volatile **pp),
    xShmMap(r, i, sz, e, pp))
FWD(shm_lock, (sqlite3_file * p, int o, int n, int fl), xShmLock(r, o, n, fl))
FWD(shm_unmap, (sqlite3_file * p, int d), xShmUnmap(r, d))
FWD(fetch, (sqlite3_file * p, sqlite3_int64 o, int n, void **pp),
    xFetch(r, o, n, pp))
FWD(unfetch, (sqlite3_file * p, sqlite3_int64 o, void *q), xUnfetch(r, o, q))

static void c_barrier(sqlite3_file *p)
{
	sqlite3_file *r = ((cfile *)p)->real;
	r->pMethods->xShmBarrier(r);
}

static int c_close(sqlite3_file *p)
{
	cfile *f = (cfile *)p;
	int rc = f->real->pMethods->xClose(f->real);
	free(f->real);
	return rc;
}

static int c_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p,
		  int flags, int *out)
{
	cfile *f = (cfile *)p;
	memset(f, 0, sizeof(*f));
	f->real = calloc(1, (size_t)under->szOsFile);
	if (f->real == NULL) {
		return SQLITE_NOMEM;
	}
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = under->xOpen(under, name, f->real, flags, out);
	if (f->real->pMethods == NULL) {
		free(f->real);
		return rc;
	}
	f->base.pMethods = &cmethods;
	return rc;
}

/* install makes the counting VFS the default, before anything registers
 * sim_vfs on top of it. */
static void install(void)
{
	under = sqlite3_vfs_find(NULL);
	counting = *under;
	counting.zName = "counting";
	counting.szOsFile = (int)sizeof(cfile);
	counting.xOpen = c_open;
	counting.pNext = NULL;
	cmethods = (sqlite3_io_methods){
	    3,         c_close,     c_read,   c_write,   c_truncate,
	    c_sync,    c_size,      c_lock,   c_unlock,  c_reserved,
	    c_fcntl,   c_sector,    c_device, c_shm_map, c_shm_lock,
	    c_barrier, c_shm_unmap, c_fetch,  c_unfetch};
	sqlite3_vfs_register(&counting, 1);
	wal_writes = wal_bytes = wal_max_write = 0;
}

/* --- helpers ------------------------------------------------------------- */

static void rows(sim_trace *t, int n, size_t blob)
{
	static uint8_t data[4000];
	memset(data, 0x5a, sizeof(data));
	sim_trace_node(t, 1, "client", "x");
	for (int i = 0; i < n; i++) {
		sim_op_row op = {.time = i,
				 .node = "client",
				 .op_id = i,
				 .op_type = "recv",
				 .action = "enqueue",
				 .depth = i % 7,
				 .cause_id = -1,
				 .event = -1};
		sim_trace_op(t, &op);
		if (blob > 0) {
			sim_packet_row p = {.id = i,
					    .parent = -1,
					    .src = "client",
					    .dst = "server",
					    .proto = "echo",
					    .deliver_ns = -1,
					    .len = (int64_t)blob,
					    .fate = "delivered",
					    .dup_of = -1,
					    .pn = -1,
					    .data = data,
					    .data_len = blob};
			sim_trace_packet(t, &p);
		}
	}
}

static int64_t one_run(sim_trace *t, int n, size_t blob, char digest[65])
{
	sim_run_info info = {.scenario = "vfs", .seed = 1, .params = ""};
	sim_run_result res = {.outcome = "pass", .end_ns = 1, .events = 1};
	int64_t id = 0;
	if (sim_trace_begin(t, &info) != 0) {
		return -1;
	}
	rows(t, n, blob);
	if (sim_trace_end(t, &res, digest, &id) != 0) {
		return -1;
	}
	return id;
}

static int64_t count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		n = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return n;
}

/* --- tests --------------------------------------------------------------- */

/* Each commit reaches the WAL in one write, and a reader in another
 * connection (the default VFS, reading the file) sees every run, whole,
 * as soon as sim_trace_end has returned: nothing of a commit is left in
 * memory. */
TEST(vfs_one_write_per_commit)
{
	install();
	REQUIRE(sim_vfs_register() != NULL);
	char err[256], digest[65], again[65];
	const char *path = unit_tmp_path("t.db");
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	sqlite3 *rd;
	REQUIRE(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, "counting") ==
		SQLITE_OK);
	for (int r = 1; r <= 20; r++) {
		long w0 = wal_writes, b0 = wal_bytes;
		REQUIRE(one_run(t, 50 + r, r % 3 ? 0 : 700, digest) == r);
		/* The first commit after opening also writes the WAL header. */
		CHECK(wal_writes - w0 <= (r == 1 ? 2 : 1));
		CHECK(wal_bytes - b0 > 0);
		CHECK_INT(count(rd, "SELECT count(*) FROM run"), r);
		char sql[128];
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM op WHERE run = %d", r);
		CHECK_INT(count(rd, sql), 50 + r);
		REQUIRE(sim_trace_digest_db(path, r, again, err, sizeof(err)) ==
			0);
		CHECK(strcmp(again, digest) == 0);
	}
	sqlite3_close(rd);
	sim_trace_close(t);
	unit_tmp_cleanup();
}

/* A run bigger than the buffer: written in pieces the default VFS takes
 * (os_unix.c writes at most 128 KiB - 1 bytes per call), all of it
 * stored. */
TEST(vfs_big_commit)
{
	install();
	REQUIRE(sim_vfs_register() != NULL);
	char err[256], digest[65], again[65];
	const char *path = unit_tmp_path("big.db");
	sim_trace *t;
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	REQUIRE(one_run(t, 600, 3000, digest) == 1); /* about 2 MB of rows */
	CHECK(wal_bytes > 1000000);
	CHECK(wal_max_write < 128 * 1024);
	CHECK(wal_writes < wal_bytes / 4096); /* not two per page */
	REQUIRE(one_run(t, 10, 0, digest) == 2);
	REQUIRE(sim_trace_digest_db(path, 2, again, err, sizeof(err)) == 0);
	CHECK(strcmp(again, digest) == 0);
	REQUIRE(sim_trace_digest_db(path, 1, again, err, sizeof(err)) == 0);
	sim_trace_close(t);
	sqlite3 *db;
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	sqlite3_stmt *st;
	REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st,
				   NULL) == SQLITE_OK);
	REQUIRE(sqlite3_step(st) == SQLITE_ROW);
	CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0);
	sqlite3_finalize(st);
	CHECK_INT(count(db, "SELECT count(*) FROM packet WHERE run = 1"), 600);
	sqlite3_close(db);
	unit_tmp_cleanup();
}

/* The rules, on a WAL file opened through the VFS: appends wait for the
 * commit frame's page, which writes them out before its write returns;
 * any other call on the file writes them out first; a write that is not a
 * whole frame header or page switches gathering off for the file. */
TEST(vfs_wal_rules)
{
	REQUIRE(sim_vfs_register() != NULL);
	sqlite3_vfs *v = sqlite3_vfs_find(SIM_VFS_NAME);
	REQUIRE(v != NULL);
	/* The default VFS wants the database next to its WAL. */
	int dbfd = open(unit_tmp_path("x"), O_RDWR | O_CREAT, 0644);
	REQUIRE(dbfd >= 0);
	close(dbfd);
	const char *path = unit_tmp_path("x-wal");
	sqlite3_file *f = calloc(1, (size_t)v->szOsFile);
	REQUIRE(f != NULL);
	int out = 0;
	REQUIRE(v->xOpen(v, path, f,
			 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_WAL,
			 &out) == SQLITE_OK);
	const sqlite3_io_methods *m = f->pMethods;
	uint8_t hdr[32] = {0x37, 0x7f, 0x06, 0x82}, fh[24] = {0}, page[1024];
	memset(page, 0xab, sizeof(page));
	int fd = open(path, O_RDONLY);
	REQUIRE(fd >= 0);
	off_t size;
#define ON_DISK() ((size = lseek(fd, 0, SEEK_END)), (long long)size)
	CHECK(m->xWrite(f, hdr, 32, 0) == SQLITE_OK); /* written through */
	CHECK_INT(ON_DISK(), 32);
	fh[3] = 1; /* page 1, not a commit */
	CHECK(m->xWrite(f, fh, 24, 32) == SQLITE_OK);
	CHECK(m->xWrite(f, page, 1024, 56) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 32); /* gathered */
	fh[3] = 2;
	fh[7] = 2; /* page 2, commit: database of 2 pages */
	CHECK(m->xWrite(f, fh, 24, 1080) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 32);
	CHECK(m->xWrite(f, page, 1024, 1104) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 2128); /* the commit frame is complete */
	/* A read writes out what is gathered. */
	fh[7] = 0;
	CHECK(m->xWrite(f, fh, 24, 2128) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 2128);
	uint8_t back[24];
	CHECK(m->xRead(f, back, 24, 2128) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 2152);
	CHECK(memcmp(back, fh, 24) == 0);
	/* So does a size, and a rewrite in place goes straight through. */
	CHECK(m->xWrite(f, page, 1024, 2152) == SQLITE_OK);
	sqlite3_int64 sz = 0;
	CHECK(m->xFileSize(f, &sz) == SQLITE_OK);
	CHECK_INT(sz, 3176);
	CHECK(m->xWrite(f, fh, 24, 1080) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 3176);
	/* A commit frame's header that went straight through (it did not
	 * continue the last write): its page is still written at once. */
	fh[7] = 3;
	CHECK(m->xWrite(f, fh, 24, 4200) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 4224);
	CHECK(m->xWrite(f, page, 1024, 4224) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 5248);
	fh[7] = 0;
	/* A piece of a frame: gathering stops for good. */
	CHECK(m->xWrite(f, fh, 24, 5248) == SQLITE_OK);
	CHECK(m->xWrite(f, page, 100, 5272) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 5372);
	CHECK(m->xWrite(f, fh, 24, 5372) == SQLITE_OK);
	CHECK_INT(ON_DISK(), 5396);
	CHECK(m->xClose(f) == SQLITE_OK);
	close(fd);
	free(f);
	unit_tmp_cleanup();
}

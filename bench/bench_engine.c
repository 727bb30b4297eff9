/* bench/bench_engine.c: throughput of the scheduler and of the trace writer,
 * each against a floor measured in the same process.
 *
 *  sched: the hold model. PENDING events are pending; each event that fires
 *         schedules one successor at now + a random delay, so the queue
 *         size stays constant. The floor is a bare binary heap of
 *         (time, seq) entries with the same loop shape (pop, call a handler
 *         through a pointer, the handler pushes). Both draw their delays
 *         from the same inline LCG with the same seed, so they fire the
 *         same times in the same order; the sums of fired times are checked
 *         equal.
 *  trace: op rows (and event rows) through sim_trace_open/begin/row/end/
 *         close into a fresh database, against raw SQLite: the same table,
 *         WAL + synchronous=NORMAL, one transaction, one prepared INSERT,
 *         the same values. Both are timed from open to close.
 *
 * Each measurement is repeated R times and the median, min and max are
 * reported; ratios are taken from medians. Floor and tlsim alternate: the
 * scheduler pair in 20 slices per repetition (both queues stay alive
 * between slices), the trace pair once per repetition; the order swaps
 * every slice or repetition. On a shared VM whose speed drifts by 20%, the
 * slices are what keep the scheduler ratio steady.
 *
 * Output: a markdown table on stdout (scripts/bench/engine embeds it),
 * details on stderr. Exit status 1 only if a run failed or floor and tlsim
 * did different work; missing a target is reported, not an error.
 *
 * Wall-clock time is read here only: bench/ is outside the simulator. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim/err.h"
#include "sim/sched.h"
#include "sim/trace.h"

#define PENDING 1000
#define DELAY_NS_MAX 1000000 /* delays are uniform in [1, 1ms] */
#define DELAY_SEED 0x9e3779b97f4a7c15ull
#define REPS_MAX 101
#define SCHED_TARGET_EPS 12e6 /* events/s */
#define SCHED_TARGET_RATIO 1.4
#define TRACE_TARGET_RATIO 1.3

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tlsim_bench_engine: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* The delay stream: a 64-bit LCG (Knuth's MMIX constants) mapped to
 * [1, DELAY_NS_MAX] by multiply-shift. Cheaper than xoshiro, and the same
 * for both sides, so it does not favour either. */
static inline sim_time delay_next(uint64_t *x)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return 1 + (sim_time)(((*x >> 32) * (uint64_t)DELAY_NS_MAX) >> 32);
}

/* ---- (a) scheduler: the floor ---- */

typedef struct fent {
	sim_time time;
	uint64_t seq;
} fent;

typedef struct floorq floorq;
typedef void (*floor_fn)(floorq *q);

struct floorq {
	fent *h;
	uint64_t n, cap, seq;
	sim_time now;
	floor_fn fn; /* one handler for every entry, called through a pointer */
	uint64_t lcg;
	uint64_t sum; /* of fired times, to check both sides did the same */
};

static inline int fent_less(const fent *a, const fent *b)
{
	if (a->time != b->time) {
		return a->time < b->time;
	}
	return a->seq < b->seq;
}

static void floor_push(floorq *q, sim_time t)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->h = realloc(q->h, q->cap * sizeof(*q->h));
		if (q->h == NULL) {
			die("out of memory");
		}
	}
	fent e = {t, q->seq++};
	uint64_t i = q->n++;
	while (i > 0) {
		uint64_t p = (i - 1) / 2;
		if (!fent_less(&e, &q->h[p])) {
			break;
		}
		q->h[i] = q->h[p];
		i = p;
	}
	q->h[i] = e;
}

static fent floor_pop(floorq *q)
{
	fent top = q->h[0];
	fent e = q->h[--q->n];
	uint64_t n = q->n, i = 0;
	for (;;) {
		uint64_t c = 2 * i + 1;
		if (c >= n) {
			break;
		}
		if (c + 1 < n && fent_less(&q->h[c + 1], &q->h[c])) {
			c++;
		}
		if (!fent_less(&q->h[c], &e)) {
			break;
		}
		q->h[i] = q->h[c];
		i = c;
	}
	if (n > 0) {
		q->h[i] = e;
	}
	return top;
}

static void floor_handler(floorq *q)
{
	q->sum += (uint64_t)q->now;
	floor_push(q, q->now + delay_next(&q->lcg));
}

/* noinline so that callgrind sees the loop as one function. */
__attribute__((noinline)) static void floor_run(floorq *q, uint64_t n)
{
	for (uint64_t i = 0; i < n && q->n > 0; i++) {
		fent e = floor_pop(q);
		q->now = e.time;
		q->fn(q);
	}
}

/* ---- (a) scheduler: tlsim ---- */

typedef struct tl_bench {
	uint64_t lcg;
	uint64_t sum;
	int node, kind;
} tl_bench;

static void tl_handler(sim_sched *s, void *arg, sim_event_id id)
{
	tl_bench *b = arg;
	sim_time now = sim_sched_now(s);
	(void)id;
	b->sum += (uint64_t)now;
	if (sim_sched_at(s, now + delay_next(&b->lcg), b->node, b->kind,
			 tl_handler, b) == 0) {
		die("sim_sched_at: %s", sim_strerror(sim_sched_error(s)));
	}
}

/* ---- (a) the pair ---- */

#define SLICES 20

/* sched_pair runs |n| events on the floor and on tlsim, in SLICES slices
 * that alternate between the two (the order swapping every slice), so that
 * both see the same machine conditions (frequency changes, neighbours on
 * a shared VM). Adds the seconds each side spent to |*fl_s| and |*tl_s|. */
static void sched_pair(uint64_t n, double *fl_s, double *tl_s)
{
	floorq q = {.fn = floor_handler, .lcg = DELAY_SEED};
	tl_bench b = {.lcg = DELAY_SEED};
	sim_sched *s = sim_sched_new(1);
	if (s == NULL) {
		die("sim_sched_new failed");
	}
	b.node = sim_sched_node(s, "bench");
	b.kind = sim_sched_kind(s, "hold");
	for (int i = 0; i < PENDING; i++) {
		floor_push(&q, delay_next(&q.lcg));
		if (sim_sched_at(s, delay_next(&b.lcg), b.node, b.kind,
				 tl_handler, &b) == 0) {
			die("sim_sched_at failed");
		}
	}
	uint64_t done = 0;
	for (int k = 0; k < SLICES; k++) {
		uint64_t m = n / SLICES + (k < (int)(n % SLICES) ? 1 : 0);
		if (m == 0) {
			continue;
		}
		sim_run_limits lim = {.until = SIM_TIME_MAX, .max_events = m};
		for (int side = 0; side < 2; side++) {
			double t0 = wall_s();
			if ((side ^ k) & 1) {
				enum sim_stop why = sim_sched_run(s, &lim);
				*tl_s += wall_s() - t0;
				if (why != SIM_STOP_EVENT_LIMIT) {
					die("tlsim run stopped early: %s",
					    sim_stop_name(why));
				}
			} else {
				floor_run(&q, m);
				*fl_s += wall_s() - t0;
			}
		}
		done += m;
	}
	if (q.n != PENDING || sim_sched_pending(s) != PENDING ||
	    sim_sched_events(s) != done || done != n) {
		die("pending or event counts drifted");
	}
	if (q.sum != b.sum || q.now != sim_sched_now(s)) {
		die("floor and tlsim fired different times");
	}
	free(q.h);
	sim_sched_del(s);
}

/* ---- (b) trace rows ---- */

static const char *const NODES[] = {"client", "server", "router"};
static const char *const OP_TYPES[] = {"handshake", "write", "read",
				       "key_update", "close"};
static const char *const ACTIONS[] = {"enqueue", "dequeue", "complete"};
static const char *const CAUSES[] = {"api", "packet", "timer", "op"};
static const char *const KINDS[] = {"deliver", "timer", "drain", "script"};

/* op_row_make fills row |i| of the op-row workload: realistic short
 * strings, some NULLs, small integers. */
static void op_row_make(uint64_t i, sim_op_row *r)
{
	r->time = (sim_time)(i * 1013);
	r->node = NODES[i % 3];
	r->op_id = (int64_t)(i / 3);
	r->op_type = OP_TYPES[(i / 3) % 5];
	r->action = ACTIONS[i % 3];
	r->depth = (int64_t)(i % 7);
	r->cause_kind = i % 4 == 3 ? NULL : CAUSES[i % 4];
	r->cause_id = i % 4 == 3 ? -1 : (int64_t)(i / 2);
	r->detail = i % 5 == 0 ? "retry" : NULL;
}

/* The floor's tables: sim/trace.c's CREATE TABLE for op and event. */
static const char OP_SCHEMA[] =
    "CREATE TABLE \"op\"(run INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "time_ns INTEGER, node TEXT, op_id INTEGER, op_type TEXT, "
    "action TEXT, depth INTEGER, cause_kind TEXT, cause_id INTEGER, "
    "detail TEXT, PRIMARY KEY(run, seq)) WITHOUT ROWID";
static const char OP_INSERT[] =
    "INSERT INTO \"op\" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
    "?11)";
static const char EVENT_SCHEMA[] =
    "CREATE TABLE \"event\"(run INTEGER NOT NULL, seq INTEGER NOT NULL, "
    "time_ns INTEGER, node TEXT, kind TEXT, PRIMARY KEY(run, seq)) "
    "WITHOUT ROWID";
static const char EVENT_INSERT[] =
    "INSERT INTO \"event\" VALUES(?1, ?2, ?3, ?4, ?5)";

enum row_kind { ROW_OP, ROW_EVENT };

static void rm_db(const char *path)
{
	char p[4096];
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (unlink(p) != 0 && errno != ENOENT) {
			die("cannot remove %s: %s", p, strerror(errno));
		}
	}
}

static void sql_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		die("sqlite: %s: %s", sql, msg ? msg : "?");
	}
}

static void bind_text(sqlite3_stmt *st, int col, const char *s)
{
	if (s == NULL) {
		sqlite3_bind_null(st, col);
	} else {
		sqlite3_bind_text(st, col, s, -1, SQLITE_STATIC);
	}
}

static double trace_floor(const char *path, enum row_kind kind, uint64_t n)
{
	rm_db(path);
	double t0 = wall_s();
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		die("sqlite: cannot open %s: %s", path, sqlite3_errmsg(db));
	}
	sql_exec(db, "PRAGMA journal_mode=WAL");
	sql_exec(db, "PRAGMA synchronous=NORMAL");
	sql_exec(db, kind == ROW_OP ? OP_SCHEMA : EVENT_SCHEMA);
	sql_exec(db, "BEGIN");
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, kind == ROW_OP ? OP_INSERT : EVENT_INSERT,
			       -1, &st, NULL) != SQLITE_OK) {
		die("sqlite: prepare: %s", sqlite3_errmsg(db));
	}
	for (uint64_t i = 0; i < n; i++) {
		sqlite3_bind_int64(st, 1, 1);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		if (kind == ROW_OP) {
			sim_op_row r;
			op_row_make(i, &r);
			sqlite3_bind_int64(st, 3, r.time);
			bind_text(st, 4, r.node);
			sqlite3_bind_int64(st, 5, r.op_id);
			bind_text(st, 6, r.op_type);
			bind_text(st, 7, r.action);
			sqlite3_bind_int64(st, 8, r.depth);
			bind_text(st, 9, r.cause_kind);
			/* the writer stores a cause_id of -1 as NULL */
			if (r.cause_id == -1) {
				sqlite3_bind_null(st, 10);
			} else {
				sqlite3_bind_int64(st, 10, r.cause_id);
			}
			bind_text(st, 11, r.detail);
		} else {
			sqlite3_bind_int64(st, 3, (int64_t)(i * 1013));
			bind_text(st, 4, NODES[i % 3]);
			bind_text(st, 5, KINDS[i % 4]);
		}
		if (sqlite3_step(st) != SQLITE_DONE) {
			die("sqlite: insert: %s", sqlite3_errmsg(db));
		}
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	sql_exec(db, "COMMIT");
	if (sqlite3_close(db) != SQLITE_OK) {
		die("sqlite: close: %s", sqlite3_errmsg(db));
	}
	return wall_s() - t0;
}

typedef struct trace_phases {
	double open, rows, end, close;
} trace_phases;

static double trace_tlsim(const char *path, enum row_kind kind, uint64_t n,
			  trace_phases *ph)
{
	rm_db(path);
	char err[512];
	double t0 = wall_s();
	sim_trace *t = NULL;
	int rc = sim_trace_open(path, &t, err, sizeof(err));
	if (rc != 0) {
		die("sim_trace_open: %s", err);
	}
	sim_run_info info = {
	    .scenario = "bench/engine",
	    .scenario_sha256 = "0000000000000000000000000000000000000000"
			       "000000000000000000000000",
	    .seed = 1,
	    .params = "",
	};
	if ((rc = sim_trace_begin(t, &info)) != 0) {
		die("sim_trace_begin: %s", sim_strerror(rc));
	}
	double t1 = wall_s();
	if (kind == ROW_OP) {
		for (uint64_t i = 0; i < n; i++) {
			sim_op_row r;
			op_row_make(i, &r);
			sim_trace_op(t, &r);
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			sim_trace_event(t, (sim_time)(i * 1013), NODES[i % 3],
					KINDS[i % 4], (int64_t)i - 1);
		}
	}
	double t2 = wall_s();
	if (sim_trace_error(t) != 0 || sim_trace_rows(t) < n) {
		die("trace rows: %s", sim_trace_errmsg(t));
	}
	sim_run_result res = {.outcome = "pass", .end_ns = (sim_time)n};
	char digest[65];
	int64_t run_id = 0;
	if ((rc = sim_trace_end(t, &res, digest, &run_id)) != 0) {
		die("sim_trace_end: %s: %s", sim_strerror(rc),
		    sim_trace_errmsg(t));
	}
	double t3 = wall_s();
	sim_trace_close(t);
	double t4 = wall_s();
	ph->open += t1 - t0;
	ph->rows += t2 - t1;
	ph->end += t3 - t2;
	ph->close += t4 - t3;
	return t4 - t0;
}

/* Checks the stored row count, so a writer that silently dropped rows
 * cannot look fast. */
static void check_count(const char *path, enum row_kind kind, uint64_t n)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	const char *sql = kind == ROW_OP ? "SELECT count(*) FROM op"
					 : "SELECT count(*) FROM event";
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		die("cannot count rows in %s: %s", path, sqlite3_errmsg(db));
	}
	uint64_t got = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (got != n) {
		die("%s: wrong row count in %s", sql, path);
	}
}

/* ---- statistics and output ---- */

typedef struct stat3 {
	double med, min, max;
} stat3;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static stat3 stats(double *v, int reps)
{
	qsort(v, (size_t)reps, sizeof(v[0]), cmp_double);
	stat3 s = {reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2,
		   v[0], v[reps - 1]};
	return s;
}

/* stats of rates |work / secs[i]|. */
static stat3 rate_stats(const double *secs, int reps, double work)
{
	double v[REPS_MAX];
	for (int i = 0; i < reps; i++) {
		v[i] = work / secs[i];
	}
	return stats(v, reps);
}

/* The median of the per-repetition ratios tlsim time / floor time: less
 * sensitive than the ratio of medians to a slow spell that hits one side
 * of a pair only (disk flushes in the trace measures). */
static double paired_ratio(const double *fl, const double *tl, int reps)
{
	double v[REPS_MAX];
	for (int i = 0; i < reps; i++) {
		v[i] = tl[i] / fl[i];
	}
	return stats(v, reps).med;
}

static void print_stat(const char *unit, stat3 s)
{
	printf("%.2f %s (%.2f–%.2f)", s.med / 1e6, unit, s.min / 1e6,
	       s.max / 1e6);
}

static uint64_t parse_u64(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0) {
		die("%s: bad value '%s'", opt, s);
	}
	return (uint64_t)v;
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: tlsim_bench_engine [--events N] [--rows N] [--reps R]\n"
	    "                          [--dir DIR] [--label TEXT] "
	    "[--only sched|trace]\n"
	    "                          [--no-warmup]\n"
	    "  --events N  scheduler events per run (default 5000000)\n"
	    "  --rows N    trace rows per run (default 1000000)\n"
	    "  --reps R    repetitions of each measurement (default 5)\n"
	    "  --dir DIR   where to put the scratch databases (default: a "
	    "new\n"
	    "              directory under $TMPDIR or /tmp, removed after)\n"
	    "  --label T   add \"(T)\" to the trace measures' names, e.g. "
	    "the\n"
	    "              file system of --dir\n"
	    "  --only X    run only the scheduler or only the trace part\n"
	    "  --no-warmup skip the untimed scheduler warm-up (for "
	    "callgrind:\n"
	    "              then sim_sched_run and floor_run each run "
	    "exactly N\n"
	    "              events per repetition)\n");
}

static void bench_sched(uint64_t n, int reps, int warmup)
{
	double fl[REPS_MAX], tl[REPS_MAX];
	if (warmup) { /* caches, page faults, CPU frequency */
		double x = 0, y = 0;
		sched_pair(n / 10 + 1, &x, &y);
	}
	for (int i = 0; i < reps; i++) {
		fl[i] = tl[i] = 0;
		sched_pair(n, &fl[i], &tl[i]);
		fprintf(stderr,
			"sched rep %d: floor %.3f s, tlsim %.3f s (%.2fx)\n", i,
			fl[i], tl[i], tl[i] / fl[i]);
	}
	stat3 f = rate_stats(fl, reps, (double)n);
	stat3 t = rate_stats(tl, reps, (double)n);
	double ratio = f.med / t.med;
	int met = t.med >= SCHED_TARGET_EPS && ratio <= SCHED_TARGET_RATIO;
	printf("| scheduler, %d pending, %llu events | ", PENDING,
	       (unsigned long long)n);
	print_stat("M events/s", f);
	printf(" | ");
	print_stat("M events/s", t);
	printf(" | %.2fx (paired %.2fx) | ≥ %.0f M events/s and ≤ %.1fx | %s "
	       "|\n",
	       ratio, paired_ratio(fl, tl, reps), SCHED_TARGET_EPS / 1e6,
	       SCHED_TARGET_RATIO, met ? "yes" : "**no**");
}

static void bench_trace(const char *dir, const char *label, enum row_kind kind,
			uint64_t n, int reps)
{
	char fpath[4096], tpath[4096];
	const char *name = kind == ROW_OP ? "op" : "event";
	snprintf(fpath, sizeof(fpath), "%s/floor-%s.db", dir, name);
	snprintf(tpath, sizeof(tpath), "%s/tlsim-%s.db", dir, name);
	double fl[REPS_MAX], tl[REPS_MAX];
	trace_phases ph = {0};
	for (int i = 0; i < reps; i++) {
		if (i % 2 == 0) {
			fl[i] = trace_floor(fpath, kind, n);
			tl[i] = trace_tlsim(tpath, kind, n, &ph);
		} else {
			tl[i] = trace_tlsim(tpath, kind, n, &ph);
			fl[i] = trace_floor(fpath, kind, n);
		}
		fprintf(stderr,
			"trace %s%s%s rep %d: floor %.3f s, tlsim %.3f s "
			"(%.2fx)\n",
			name, label ? " " : "", label ? label : "", i, fl[i],
			tl[i], tl[i] / fl[i]);
	}
	check_count(fpath, kind, n);
	check_count(tpath, kind, n);
	rm_db(fpath);
	rm_db(tpath);
	stat3 f = rate_stats(fl, reps, (double)n);
	stat3 t = rate_stats(tl, reps, (double)n);
	double ratio = f.med / t.med;
	printf("| trace %s rows, %llu rows, open to close%s%s%s | ", name,
	       (unsigned long long)n, label ? " (" : "", label ? label : "",
	       label ? ")" : "");
	print_stat("M rows/s", f);
	printf(" | ");
	print_stat("M rows/s", t);
	printf(" | %.2fx (paired %.2fx) | ≤ %.1fx | %s |\n", ratio,
	       paired_ratio(fl, tl, reps), TRACE_TARGET_RATIO,
	       ratio <= TRACE_TARGET_RATIO ? "yes" : "**no**");
	fprintf(stderr,
		"trace %s%s%s tlsim phases (mean): open+begin %.3f s, rows "
		"%.3f s, end (digest+commit) %.3f s, close %.3f s\n",
		name, label ? " " : "", label ? label : "", ph.open / reps,
		ph.rows / reps, ph.end / reps, ph.close / reps);
}

int main(int argc, char **argv)
{
	uint64_t events = 5000000, rows = 1000000;
	int reps = 5, warmup = 1;
	const char *dir = NULL, *only = NULL, *label = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage();
			return 0;
		}
		if (strcmp(a, "--no-warmup") == 0) {
			warmup = 0;
			continue;
		}
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		if (strcmp(a, "--events") == 0) {
			events = parse_u64(a, argv[++i]);
		} else if (strcmp(a, "--rows") == 0) {
			rows = parse_u64(a, argv[++i]);
		} else if (strcmp(a, "--reps") == 0) {
			uint64_t r = parse_u64(a, argv[++i]);
			if (r > REPS_MAX) {
				die("--reps: at most %d", REPS_MAX);
			}
			reps = (int)r;
		} else if (strcmp(a, "--label") == 0) {
			label = argv[++i];
		} else if (strcmp(a, "--dir") == 0) {
			dir = argv[++i];
		} else if (strcmp(a, "--only") == 0) {
			only = argv[++i];
			if (strcmp(only, "sched") != 0 &&
			    strcmp(only, "trace") != 0) {
				die("--only: '%s'", only);
			}
		} else {
			usage();
			return 2;
		}
	}
	int do_sched = only == NULL || strcmp(only, "sched") == 0;
	int do_trace = only == NULL || strcmp(only, "trace") == 0;

	char tmpl[4096];
	int own_dir = 0;
	if (do_trace && dir == NULL) {
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/tlsim-bench-XXXXXX",
			 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL) {
			die("mkdtemp %s: %s", tmpl, strerror(errno));
		}
		dir = tmpl;
		own_dir = 1;
	}

	printf("| measure | floor: median (min–max) | tlsim: median (min–max) "
	       "| floor/tlsim | target | met? |\n");
	printf("|---|---|---|---|---|---|\n");
	fflush(stdout);
	if (do_sched) {
		bench_sched(events, reps, warmup);
		fflush(stdout);
	}
	if (do_trace) {
		bench_trace(dir, label, ROW_OP, rows, reps);
		fflush(stdout);
		bench_trace(dir, label, ROW_EVENT, rows, reps);
		fflush(stdout);
	}
	if (own_dir) {
		rmdir(dir);
	}
	return 0;
}

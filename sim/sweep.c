/* sim/sweep.c: `tlsim sweep`. */
#define _GNU_SOURCE /* sigabbrev_np */
#include "sim/sweep.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim/err.h"
#include "sim/merge.h"
#include "sim/trace.h"

#define REPORT_MAX 1200 /* < PIPE_BUF: a child's report never blocks */
#define SEEDS_SHOWN 5

typedef struct slot {
	pid_t pid; /* 0: free */
	uint64_t seed;
	int fd; /* read end of the child's report pipe */
	char path[PATH_MAX];
} slot;

typedef struct run_ref {
	uint64_t seed;
	int64_t id;
	int slot;
} run_ref;

/* Progress is about the operator's wait, so it reads the wall clock; no
 * run ever sees it (runs execute in the children, on virtual time). */
static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct progress {
	int tty;
	double start, last;
	uint64_t last_done;
} progress;

static void fmt_eta(double s, char *buf, size_t n)
{
	long t = (long)(s + 0.5);
	if (t >= 3600) {
		snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
	} else if (t >= 60) {
		snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
	} else {
		snprintf(buf, n, "%lds", t);
	}
}

static void show_progress(progress *p, uint64_t done, uint64_t total)
{
	double now = wall_s();
	int last = done == total;
	if (p->tty) {
		if (!last && now - p->last < 0.1) {
			return;
		}
	} else if (last || now - p->last < 5.0 ||
		   (done - p->last_done) * 10 < total) {
		return; /* the table follows; plain lines only on the way */
	}
	double rate = now > p->start ? (double)done / (now - p->start) : 0;
	char eta[32] = "?";
	if (rate > 0) {
		fmt_eta((double)(total - done) / rate, eta, sizeof(eta));
	}
	int pct = (int)(done * 100 / total);
	if (p->tty) {
		char bar[21];
		int fill = (int)(done * 20 / total);
		for (int i = 0; i < 20; i++) {
			bar[i] = i < fill ? '#' : '.';
		}
		bar[20] = '\0';
		fprintf(stderr,
			"\r[%s] %llu/%llu %3d%%  %.1f runs/s  ETA %s\033[K",
			bar, (unsigned long long)done,
			(unsigned long long)total, pct, rate, eta);
		if (last) {
			fprintf(stderr, "\r\033[K");
		}
	} else {
		fprintf(stderr,
			"tlsim sweep: %llu/%llu runs (%d%%), %.1f runs/s, "
			"ETA %s\n",
			(unsigned long long)done, (unsigned long long)total,
			pct, rate, eta);
	}
	fflush(stderr);
	p->last = now;
	p->last_done = done;
}

void sim_sweep_reproduce(FILE *f, const char *indent, const sim_lua_opts *o,
			 uint64_t seed)
{
	fprintf(f, "%sreproduce: tlsim run %s --seed %llu", indent, o->path,
		(unsigned long long)seed);
	for (int i = 0; i < o->nset; i++) {
		fprintf(f, " --set %s=%s", o->set_key[i], o->set_val[i]);
	}
	fprintf(f, "\n");
}

static void remove_trace(const char *path)
{
	char p[PATH_MAX + 8];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-journal", path);
	unlink(p);
}

/* The child: one run, as `tlsim run --seed S --trace SLOT -q` would do
 * it. Reports "RUN_ID MESSAGE" on |fd| and exits with the run's status. */
static void child(const sim_sweep_opts *o, const char *path, uint64_t seed,
		  int fd)
{
	const char *hook = getenv("TLSIM_TEST_CRASH_SEED");
	if (hook != NULL && strtoull(hook, NULL, 10) == seed) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	}
	char err[512], report[REPORT_MAX];
	sim_trace *t = NULL;
	sim_lua_result r = {0};
	int status;
	if (sim_trace_open(path, &t, err, sizeof(err)) != 0) {
		status = SIM_STATUS_INTERNAL;
		snprintf(report, sizeof(report), "0 %s", err);
	} else {
		sim_lua_opts lo = o->run;
		lo.seed = seed;
		lo.have_seed = 1;
		lo.trace = t;
		lo.verbosity = 0;
		status = sim_lua_run(&lo, &r);
		const char *msg = r.message;
		if (r.trace_err != 0) {
			msg = sim_trace_errmsg(t);
			status = r.trace_err == SIM_EINTERNAL
				     ? SIM_STATUS_INTERNAL
				     : SIM_STATUS_INPUT;
		}
		snprintf(report, sizeof(report), "%lld %s", (long long)r.run_id,
			 msg);
	}
	for (char *p = report; *p != '\0'; p++) {
		if (*p == '\n') {
			*p = ' ';
		}
	}
	size_t n = strlen(report);
	if (write(fd, report, n) != (ssize_t)n) {
		status = SIM_STATUS_INTERNAL;
	}
	sim_trace_close(t);
	_exit(status);
}

/* A run that left no run row gets one saying why. */
static int record_lost_run(const sim_sweep_opts *o, slot *s, int wstatus,
			   const char *msg, char *err, size_t errlen)
{
	char reason[REPORT_MAX + 64];
	const char *outcome = "crash";
	if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		const char *name = sigabbrev_np(sig);
		snprintf(reason, sizeof(reason), "signal %d (SIG%s)", sig,
			 name ? name : "?");
	} else {
		int code = WEXITSTATUS(wstatus);
		if (code == SIM_STATUS_INPUT) {
			outcome = "error";
		}
		snprintf(reason, sizeof(reason), "exit %d: %s", code,
			 *msg ? msg : "no run recorded");
	}
	char params[4096];
	sim_lua_params(&o->run, params, sizeof(params));
	sim_run_info info = {.scenario = o->run.path,
			     .scenario_sha256 = o->run.sha256,
			     .seed = s->seed,
			     .params = params};
	sim_run_result res = {.outcome = outcome, .reason = reason};
	sim_trace *t = NULL;
	int rc = sim_trace_open(s->path, &t, err, errlen);
	if (rc == 0 && (rc = sim_trace_begin(t, &info)) == 0) {
		rc = sim_trace_end(t, &res, NULL, NULL);
	}
	if (rc != 0 && t != NULL) {
		snprintf(err, errlen, "%s", sim_trace_errmsg(t));
	}
	sim_trace_close(t);
	return rc;
}

static int reap(const sim_sweep_opts *o, slot *s, int wstatus, char *err,
		size_t errlen)
{
	char report[REPORT_MAX + 1];
	size_t n = 0;
	ssize_t k;
	while (n < REPORT_MAX &&
	       (k = read(s->fd, report + n, REPORT_MAX - n)) != 0) {
		if (k < 0 && errno != EINTR) {
			break;
		}
		n += k > 0 ? (size_t)k : 0;
	}
	report[n] = '\0';
	close(s->fd);
	s->pid = 0;
	char *msg = report;
	long long run_id = strtoll(report, &msg, 10);
	msg += *msg == ' ';
	if (WIFEXITED(wstatus) && run_id > 0) {
		return 0;
	}
	return record_lost_run(o, s, wstatus, msg, err, errlen);
}

static int spawn(const sim_sweep_opts *o, slot *s, uint64_t seed)
{
	int p[2];
	if (pipe(p) != 0) {
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child(o, s->path, seed, p[1]);
	}
	close(p[1]);
	s->pid = pid;
	s->seed = seed;
	s->fd = p[0];
	return 0;
}

static int cmp_ref(const void *a, const void *b)
{
	const run_ref *x = a, *y = b;
	if (x->seed != y->seed) {
		return x->seed < y->seed ? -1 : 1;
	}
	return x->slot - y->slot;
}

/* Lists the runs of every slot trace, sorted by seed. */
static int list_runs(slot *slots, int jobs, run_ref **out, size_t *nout,
		     char *err, size_t errlen)
{
	size_t n = 0, cap = 0;
	run_ref *refs = NULL;
	for (int k = 0; k < jobs; k++) {
		if (access(slots[k].path, F_OK) != 0) {
			continue; /* the slot never ran */
		}
		sqlite3 *db = NULL;
		sqlite3_stmt *st = NULL;
		if (sqlite3_open_v2(slots[k].path, &db, SQLITE_OPEN_READONLY,
				    NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(db, "SELECT seed, id FROM run", -1, &st,
				       NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", slots[k].path,
				 sqlite3_errmsg(db));
			sqlite3_close(db);
			free(refs);
			return SIM_EIO;
		}
		while (sqlite3_step(st) == SQLITE_ROW) {
			if (n == cap) {
				cap = cap ? 2 * cap : 256;
				run_ref *p = realloc(refs, cap * sizeof(*p));
				if (p == NULL) {
					sqlite3_finalize(st);
					sqlite3_close(db);
					free(refs);
					snprintf(err, errlen, "out of memory");
					return SIM_ENOMEM;
				}
				refs = p;
			}
			refs[n].seed = (uint64_t)sqlite3_column_int64(st, 0);
			refs[n].id = sqlite3_column_int64(st, 1);
			refs[n].slot = k;
			n++;
		}
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	qsort(refs, n, sizeof(*refs), cmp_ref);
	*out = refs;
	*nout = n;
	return 0;
}

static void print_seeds(sqlite3_stmt *st, const char *key, int64_t lo,
			int64_t hi)
{
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, lo);
	sqlite3_bind_int64(st, 3, hi);
	printf("%18sseeds", "");
	int i = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (i == SEEDS_SHOWN) {
			printf(" ...");
			break;
		}
		printf(" %llu",
		       (unsigned long long)sqlite3_column_int64(st, 0));
		i++;
	}
	printf("\n");
	sqlite3_reset(st);
}

/* One group list: "count  pct%  key", then its first seeds. */
static void print_groups(sqlite3 *db, const char *title, const char *groups,
			 const char *seeds, int64_t lo, int64_t hi,
			 uint64_t total)
{
	sqlite3_stmt *g = NULL, *s = NULL;
	if (sqlite3_prepare_v2(db, groups, -1, &g, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, seeds, -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(g);
		return;
	}
	sqlite3_bind_int64(g, 1, lo);
	sqlite3_bind_int64(g, 2, hi);
	int first = 1;
	while (sqlite3_step(g) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(g, 0);
		int64_t count = sqlite3_column_int64(g, 1);
		if (first) {
			printf("%s:\n", title);
			first = 0;
		}
		printf("  %7lld %6.1f%%  %s\n", (long long)count,
		       100.0 * (double)count / (double)total,
		       key ? key : "(none)");
		print_seeds(s, key ? key : "", lo, hi);
	}
	sqlite3_finalize(g);
	sqlite3_finalize(s);
}

/* The closing table, from the runs lo..hi of the output trace. Returns
 * the exit status: 0 all passed, 1 not. */
static int print_table(const sim_sweep_opts *o, const char *path, int64_t lo,
		       int64_t hi, uint64_t total)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	uint64_t pass = 0;
	int64_t first_bad = -1;
	uint64_t first_bad_seed = 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "tlsim: %s: %s\n", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return SIM_STATUS_INTERNAL;
	}
	if (!o->quiet) {
		printf("%s", o->run.path);
		for (int i = 0; i < o->run.nset; i++) {
			printf(" --set %s=%s", o->run.set_key[i],
			       o->run.set_val[i]);
		}
		printf(", seeds %llu..%llu", (unsigned long long)o->seed_first,
		       (unsigned long long)o->seed_last);
		if (o->shard_count > 1) {
			printf(" shard %llu/%llu",
			       (unsigned long long)o->shard_index + 1,
			       (unsigned long long)o->shard_count);
		}
		printf(": %llu runs\n", (unsigned long long)total);
		printf("  %-8s %7s %7s\n", "outcome", "runs", "%");
	}
	/* pass, fail, error, crash first, then anything else by name. */
	sqlite3_prepare_v2(db,
			   "SELECT o, (SELECT count(*) FROM run WHERE id "
			   "BETWEEN ?1 AND ?2 AND outcome = o) FROM (SELECT "
			   "'pass' AS o, 0 AS k UNION ALL SELECT 'fail', 1 "
			   "UNION ALL SELECT 'error', 2 UNION ALL SELECT "
			   "'crash', 3 UNION ALL SELECT DISTINCT outcome, 4 "
			   "FROM run WHERE id BETWEEN ?1 AND ?2 AND outcome "
			   "NOT IN ('pass', 'fail', 'error', 'crash')) ORDER "
			   "BY k, o",
			   -1, &st, NULL);
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *oc = (const char *)sqlite3_column_text(st, 0);
		uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
		if (strcmp(oc, "pass") == 0) {
			pass = n;
		}
		if (!o->quiet) {
			printf("  %-8s %7llu %6.1f%%\n", oc,
			       (unsigned long long)n,
			       100.0 * (double)n / (double)total);
		}
	}
	sqlite3_finalize(st);
	if (!o->quiet) {
		print_groups(
		    db, "failed expectations",
		    "SELECT c.message, count(DISTINCT c.run) AS n FROM "
		    "\"check\" c WHERE c.ok = 0 AND c.run BETWEEN ?1 AND ?2 "
		    "GROUP BY c.message ORDER BY n DESC, min(c.run)",
		    "SELECT DISTINCT r.seed FROM \"check\" c JOIN run r ON "
		    "r.id = c.run WHERE c.ok = 0 AND c.message = ?1 AND "
		    "c.run BETWEEN ?2 AND ?3 ORDER BY r.id",
		    lo, hi, total);
		print_groups(
		    db, "errors and crashes",
		    "SELECT reason, count(*) AS n FROM run WHERE outcome IN "
		    "('error', 'crash') AND id BETWEEN ?1 AND ?2 GROUP BY "
		    "reason ORDER BY n DESC, min(id)",
		    "SELECT seed FROM run WHERE outcome IN ('error', "
		    "'crash') AND reason = ?1 AND id BETWEEN ?2 AND ?3 ORDER "
		    "BY id",
		    lo, hi, total);
	}
	sqlite3_prepare_v2(db,
			   "SELECT id, seed FROM run WHERE outcome <> 'pass' "
			   "AND id BETWEEN ?1 AND ?2 ORDER BY id LIMIT 1",
			   -1, &st, NULL);
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	if (sqlite3_step(st) == SQLITE_ROW) {
		first_bad = sqlite3_column_int64(st, 0);
		first_bad_seed = (uint64_t)sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (!o->quiet && o->trace_path != NULL) {
		printf("trace: %s, runs %lld..%lld\n", o->trace_path,
		       (long long)lo, (long long)hi);
	}
	if (first_bad > 0 && !o->quiet) {
		sim_sweep_reproduce(stdout, "", &o->run, first_bad_seed);
	}
	fflush(stdout);
	return pass == total ? SIM_STATUS_PASS : SIM_STATUS_FAIL;
}

/* Merges the slot traces into |m| in seed order. */
static int merge_slots(sim_merge *m, slot *slots, int jobs, uint64_t total,
		       char *err, size_t errlen)
{
	run_ref *refs = NULL;
	size_t n = 0;
	int rc = list_runs(slots, jobs, &refs, &n, err, errlen);
	if (rc == 0 && n != total) {
		snprintf(err, errlen,
			 "the slot traces hold %zu runs, the sweep made %llu",
			 n, (unsigned long long)total);
		rc = SIM_EINTERNAL;
	}
	for (size_t i = 0; rc == 0 && i < n; i++) {
		rc = sim_merge_runs(m, slots[refs[i].slot].path, &refs[i].id, 1,
				    NULL, err, errlen);
	}
	free(refs);
	return rc == 0 ? sim_merge_verify(m, err, errlen) : rc;
}

int sim_sweep(const sim_sweep_opts *o)
{
	char err[1024];
	char tmpdir[PATH_MAX] = "", tmpout[PATH_MAX];
	const char *out = o->trace_path;
	uint64_t span = o->seed_last - o->seed_first + 1;
	uint64_t shards = o->shard_count ? o->shard_count : 1;
	uint64_t shard = o->shard_index;
	/* The seeds of this shard: first + shard + k * shards. */
	uint64_t total = shard < span ? (span - shard + shards - 1) / shards : 0;
	int status = SIM_STATUS_INTERNAL;
	if (o->jobs < 1 || o->jobs > SIM_SWEEP_MAX_JOBS ||
	    o->seed_last < o->seed_first || total > SIM_SWEEP_MAX_RUNS ||
	    total == 0) {
		fprintf(stderr, "tlsim sweep: bad jobs, seed range or shard "
				"(a shard with no seeds)\n");
		return SIM_STATUS_INPUT;
	}
	if (out == NULL) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tlsim-sweep.XXXXXX",
			 t && *t ? t : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			fprintf(stderr,
				"tlsim: cannot create a directory in "
				"%s: %s\n",
				t && *t ? t : "/tmp", strerror(errno));
			return SIM_STATUS_INTERNAL;
		}
		/* Bounded, so that the name provably fits. */
		snprintf(tmpout, sizeof(tmpout), "%.*s/sweep.db",
			 (int)(sizeof(tmpout) - sizeof("/sweep.db")), tmpdir);
		out = tmpout;
	}
	sim_merge *m = NULL;
	int rc = sim_merge_new(out, &m, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		if (tmpdir[0] != '\0') {
			remove_trace(tmpout);
			rmdir(tmpdir);
		}
		return rc == SIM_EINTERNAL || rc == SIM_ENOMEM
			   ? SIM_STATUS_INTERNAL
			   : SIM_STATUS_INPUT;
	}
	slot *slots = calloc((size_t)o->jobs, sizeof(*slots));
	if (slots == NULL) {
		fprintf(stderr, "tlsim: out of memory\n");
		sim_merge_del(m);
		return SIM_STATUS_INTERNAL;
	}
	for (int k = 0; k < o->jobs; k++) {
		if (snprintf(slots[k].path, sizeof(slots[k].path),
			     "%s.slot%d.tmp", out,
			     k) >= (int)sizeof(slots[k].path)) {
			fprintf(stderr, "tlsim: %s: path too long\n", out);
			sim_merge_del(m);
			free(slots);
			return SIM_STATUS_INPUT;
		}
		remove_trace(slots[k].path); /* a killed sweep's leftovers */
	}

	progress pg = {.tty = isatty(2), .start = wall_s()};
	pg.last = pg.start;
	uint64_t launched = 0, done = 0;
	int running = 0, broken = 0;
	while (done < total) {
		for (int k = 0; k < o->jobs && !broken && launched < total;
		     k++) {
			if (slots[k].pid != 0) {
				continue;
			}
			if (spawn(o, &slots[k],
				  o->seed_first + shard + launched * shards) !=
			    0) {
				snprintf(err, sizeof(err),
					 "cannot start a run: %s",
					 strerror(errno));
				broken = 1;
				break;
			}
			launched++;
			running++;
		}
		if (running == 0) {
			break;
		}
		int ws;
		pid_t pid = waitpid(-1, &ws, 0);
		if (pid < 0) {
			if (errno == EINTR) {
				continue;
			}
			snprintf(err, sizeof(err), "waitpid: %s",
				 strerror(errno));
			broken = 1;
			break;
		}
		for (int k = 0; k < o->jobs; k++) {
			if (slots[k].pid != pid) {
				continue;
			}
			running--;
			done++;
			if (reap(o, &slots[k], ws, err, sizeof(err)) != 0) {
				broken = 1;
			}
		}
		if (!o->quiet) {
			show_progress(&pg, done, total);
		}
	}
	while (running > 0) { /* after a failure: let the children finish */
		int ws;
		pid_t pid = wait(&ws);
		if (pid < 0 && errno != EINTR) {
			break;
		}
		for (int k = 0; k < o->jobs; k++) {
			if (pid > 0 && slots[k].pid == pid) {
				close(slots[k].fd);
				slots[k].pid = 0;
				running--;
			}
		}
	}

	if (!broken &&
	    merge_slots(m, slots, o->jobs, total, err, sizeof(err)) != 0) {
		broken = 1;
	}
	if (broken) {
		fprintf(stderr, "tlsim sweep: %s\n", err);
	} else {
		status = print_table(o, out, sim_merge_first_id(m),
				     sim_merge_last_id(m), total);
	}
	sim_merge_del(m);
	for (int k = 0; k < o->jobs; k++) {
		remove_trace(slots[k].path);
	}
	free(slots);
	if (tmpdir[0] != '\0') {
		remove_trace(tmpout);
		rmdir(tmpdir);
	}
	return status;
}

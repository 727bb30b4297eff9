/* sim/explore.c: `tlsim explore`. */
#define _GNU_SOURCE /* sigabbrev_np */
#include "sim/explore.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/trace.h"

#define MAX_ARITY_REPORTED 100000 /* choice points exhaustive looks at */
#define MAX_GROUPS 64
#define IDS_SHOWN 5

/* One schedule to try. */
typedef struct job {
	uint64_t id; /* 0: the baseline */
	uint32_t ndev;
	sim_choice dev[SIM_SCHEDULE_MAX_DEPTH]; /* exhaustive */
} job;

typedef struct result {
	uint64_t hash; /* of the schedule's replay text: equal runs */
	int status;
	char outcome[16];
	char msg[512];
	uint64_t seed, points;
	uint32_t *arity; /* exhaustive */
	size_t narity;
} result;

typedef struct slot {
	pid_t pid; /* 0: free */
	job j;
	int ready; /* finished, waiting to be processed in id order */
	result r;
	char report[PATH_MAX];
} slot;

typedef struct group {
	char msg[640];
	uint64_t count;
	uint64_t ids[IDS_SHOWN];
} group;

typedef struct state {
	const sim_explore_opts *o;
	uint64_t seed;       /* the run seed, from the baseline */
	uint64_t points;     /* the baseline's choice points */
	job *queue;          /* exhaustive frontier (ring) */
	size_t qhead, qlen, qcap;
	uint64_t generated;  /* schedules given an id */
	uint64_t left;       /* exhaustive: schedules not queued (budget) */
	uint64_t processed, passed;
	group groups[MAX_GROUPS];
	int ngroups;
	uint64_t other_fail;
	job *failing; /* distinct failing schedules, to save */
	size_t nfailing, failing_cap;
	uint64_t *seen; /* open addressing set of failing hashes */
	size_t nseen, seen_cap;
	int stop;
} state;

int sim_explore_strategy_parse(const char *name)
{
	if (strcmp(name, "random") == 0) {
		return SIM_EXPLORE_RANDOM;
	}
	if (strcmp(name, "pct") == 0) {
		return SIM_EXPLORE_PCT;
	}
	if (strcmp(name, "exhaustive") == 0) {
		return SIM_EXPLORE_EXHAUSTIVE;
	}
	return -1;
}

static const char *strategy_name(enum sim_explore_strategy s)
{
	return s == SIM_EXPLORE_PCT	     ? "pct"
	       : s == SIM_EXPLORE_EXHAUSTIVE ? "exhaustive"
					     : "random";
}

static double wall_s(void)
{
	/* Progress only: runs never see it. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The seed of schedule |id|'s strategy stream. */
static uint64_t strategy_seed(uint64_t run_seed, uint64_t id)
{
	return run_seed * 0x9e3779b97f4a7c15ull + id;
}

/* configure sets up |sch| for schedule |j|. */
static int configure(const state *st, sim_schedule *sch, const job *j)
{
	const sim_explore_opts *o = st->o;
	if (j->id == 0) {
		return 0; /* the seed's own order */
	}
	switch (o->strategy) {
	case SIM_EXPLORE_RANDOM:
		sim_schedule_set_strategy(sch, SIM_STRATEGY_RANDOM,
					  strategy_seed(st->seed, j->id), 0, 0);
		return 0;
	case SIM_EXPLORE_PCT:
		sim_schedule_set_strategy(sch, SIM_STRATEGY_PCT,
					  strategy_seed(st->seed, j->id),
					  o->depth, st->points);
		return 0;
	case SIM_EXPLORE_EXHAUSTIVE:
		for (uint32_t i = 0; i < j->ndev; i++) {
			int rc = sim_plan_add_choice(sim_schedule_plan(sch),
						     j->dev[i].point,
						     j->dev[i].index);
			if (rc != 0) {
				return rc;
			}
		}
		return 0;
	}
	return 0;
}

/* The child: runs schedule |j| (into |trace_path| when not NULL) and
 * writes its report to |report|. */
static void child(const state *st, const job *j, const char *report,
		  const char *trace_path)
{
	const sim_explore_opts *o = st->o;
	sim_schedule *sch = sim_schedule_new();
	sim_trace *t = NULL;
	char err[512];
	FILE *f = fopen(report, "w");
	if (sch == NULL || f == NULL || configure(st, sch, j) != 0) {
		_exit(SIM_STATUS_INTERNAL);
	}
	if (trace_path != NULL &&
	    sim_trace_open(trace_path, &t, err, sizeof(err)) != 0) {
		fprintf(f, "%d error 0 0 0\n%s\n", SIM_STATUS_INTERNAL, err);
		fclose(f);
		_exit(SIM_STATUS_INTERNAL);
	}
	sim_lua_opts lo = o->run;
	lo.verbosity = 0;
	lo.trace = t;
	lo.schedule = sch;
	if (j->id != 0 || o->run.have_seed) {
		lo.have_seed = 1;
		lo.seed = st->seed;
	}
	sim_lua_result r;
	int status = sim_lua_run(&lo, &r);
	if (r.trace_err != 0) {
		status = SIM_STATUS_INTERNAL;
		snprintf(r.message, sizeof(r.message), "%s",
			 sim_trace_errmsg(t));
	}
	for (char *p = r.message; *p != '\0'; p++) {
		if (*p == '\n') {
			*p = ' ';
		}
	}
	uint64_t points = sim_schedule_points(sch);
	char *text = sim_schedule_replay_text(sch);
	uint64_t hash = 0xcbf29ce484222325ull; /* FNV-1a */
	for (const char *p = text ? text : ""; *p != '\0'; p++) {
		hash = (hash ^ (uint8_t)*p) * 0x100000001b3ull;
	}
	free(text);
	fprintf(f, "%d %s %" PRIu64 " %" PRIu64 " %lld %" PRIu64 "\n%s\n",
		status, r.outcome[0] ? r.outcome : "error", r.seed, points,
		(long long)r.run_id, hash, r.message);
	if (o->strategy == SIM_EXPLORE_EXHAUSTIVE && trace_path == NULL) {
		for (uint64_t i = 0; i < points && i < MAX_ARITY_REPORTED;
		     i++) {
			fprintf(f, "%" PRIu32 "\n", sim_schedule_arity(sch, i));
		}
	}
	if (fclose(f) != 0) {
		status = SIM_STATUS_INTERNAL;
	}
	sim_trace_close(t);
	_exit(status);
}

/* read_report fills |r| from a child's report file and exit status. */
static void read_report(const char *path, int wstatus, result *r,
			int64_t *run_id)
{
	memset(r, 0, sizeof(*r));
	FILE *f = fopen(path, "r");
	long long id = 0;
	char head[128];
	int ok = f != NULL && fgets(head, sizeof(head), f) != NULL &&
		 sscanf(head, "%d %15s %" SCNu64 " %" SCNu64 " %lld %" SCNu64,
			&r->status, r->outcome, &r->seed, &r->points, &id,
			&r->hash) == 6 &&
		 fgets(r->msg, sizeof(r->msg), f) != NULL;
	if (ok) {
		r->msg[strcspn(r->msg, "\n")] = '\0';
		size_t cap = 0;
		unsigned v;
		while (r->narity < MAX_ARITY_REPORTED &&
		       fscanf(f, "%u", &v) == 1) {
			if (r->narity == cap) {
				cap = cap ? 2 * cap : 256;
				uint32_t *a =
					realloc(r->arity, cap * sizeof(*a));
				if (a == NULL) {
					break;
				}
				r->arity = a;
			}
			r->arity[r->narity++] = v;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
	if (run_id != NULL) {
		*run_id = id;
	}
	if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		const char *name = sigabbrev_np(sig);
		r->status = SIM_STATUS_INTERNAL;
		snprintf(r->outcome, sizeof(r->outcome), "crash");
		snprintf(r->msg, sizeof(r->msg), "signal %d (SIG%s)", sig,
			 name ? name : "?");
	} else if (!ok) {
		r->status = WEXITSTATUS(wstatus) ? WEXITSTATUS(wstatus)
						 : SIM_STATUS_INTERNAL;
		snprintf(r->outcome, sizeof(r->outcome), "crash");
		snprintf(r->msg, sizeof(r->msg), "exit %d without a report",
			 WEXITSTATUS(wstatus));
	}
}

static pid_t spawn(const state *st, const job *j, const char *report,
		   const char *trace_path)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		child(st, j, report, trace_path);
	}
	return pid;
}

static int queue_push(state *st, const job *j)
{
	if (st->qlen == st->qcap) {
		size_t cap = st->qcap ? 2 * st->qcap : 256;
		job *v = malloc(cap * sizeof(*v));
		if (v == NULL) {
			return SIM_ENOMEM;
		}
		for (size_t i = 0; i < st->qlen; i++) {
			v[i] = st->queue[(st->qhead + i) % st->qcap];
		}
		free(st->queue);
		st->queue = v;
		st->qcap = cap;
		st->qhead = 0;
	}
	st->queue[(st->qhead + st->qlen) % st->qcap] = *j;
	st->qlen++;
	return 0;
}

/* next_job gives the next schedule to try; 0 when there is none now. */
static int next_job(state *st, job *j)
{
	const sim_explore_opts *o = st->o;
	if (st->stop || st->generated > o->runs) {
		return 0;
	}
	if (st->generated == 0 || o->strategy != SIM_EXPLORE_EXHAUSTIVE) {
		memset(j, 0, sizeof(*j));
		j->id = st->generated++;
		return 1;
	}
	if (st->qlen == 0) {
		return 0;
	}
	*j = st->queue[st->qhead];
	st->qhead = (st->qhead + 1) % st->qcap;
	st->qlen--;
	j->id = st->generated++;
	return 1;
}

/* expand queues the children of exhaustive schedule |j|: one more
 * deviation at each later choice point, within the depth and budget. */
static int expand(state *st, const job *j, const result *r)
{
	const sim_explore_opts *o = st->o;
	if ((int)j->ndev >= o->depth) {
		return 0;
	}
	uint64_t from = j->ndev > 0 ? j->dev[j->ndev - 1].point + 1 : 0;
	for (uint64_t p = from; p < r->narity; p++) {
		for (uint32_t alt = 1; alt < r->arity[p]; alt++) {
			uint64_t queued = st->generated + st->qlen;
			if (queued > o->runs) {
				st->left++;
				continue;
			}
			job c = *j;
			c.dev[c.ndev++] = (sim_choice){.point = p, .index = alt};
			int rc = queue_push(st, &c);
			if (rc != 0) {
				return rc;
			}
		}
	}
	return 0;
}

/* Adds |h| to the set of failing schedules; returns 1 if it was there. */
static int seen_before(state *st, uint64_t h)
{
	h |= 1; /* 0 marks a free cell */
	if (2 * (st->nseen + 1) > st->seen_cap) {
		size_t cap = st->seen_cap ? 2 * st->seen_cap : 256;
		uint64_t *v = calloc(cap, sizeof(*v));
		if (v == NULL) {
			return 0;
		}
		for (size_t i = 0; i < st->seen_cap; i++) {
			uint64_t x = st->seen[i];
			size_t k = (size_t)(x % cap);
			while (x != 0 && v[k] != 0) {
				k = (k + 1) % cap;
			}
			if (x != 0) {
				v[k] = x;
			}
		}
		free(st->seen);
		st->seen = v;
		st->seen_cap = cap;
	}
	size_t k = (size_t)(h % st->seen_cap);
	while (st->seen[k] != 0) {
		if (st->seen[k] == h) {
			return 1;
		}
		k = (k + 1) % st->seen_cap;
	}
	st->seen[k] = h;
	st->nseen++;
	return 0;
}

static void tally(state *st, const job *j, const result *r)
{
	st->processed++;
	if (r->status == SIM_STATUS_PASS) {
		st->passed++;
		return;
	}
	const char *key = r->msg;
	char buf[632];
	if (strcmp(r->outcome, "fail") != 0) {
		snprintf(buf, sizeof(buf), "%s: %s", r->outcome, r->msg);
		key = buf;
	}
	int g = 0;
	while (g < st->ngroups && strcmp(st->groups[g].msg, key) != 0) {
		g++;
	}
	if (g == st->ngroups && st->ngroups < MAX_GROUPS) {
		snprintf(st->groups[g].msg, sizeof(st->groups[g].msg), "%s",
			 key);
		st->ngroups++;
	}
	if (g < st->ngroups) {
		group *gr = &st->groups[g];
		if (gr->count < IDS_SHOWN) {
			gr->ids[gr->count] = j->id;
		}
		gr->count++;
	} else {
		st->other_fail++;
	}
	if (seen_before(st, r->hash)) {
		return; /* the same choices as a failing schedule before */
	}
	if (st->nfailing == st->failing_cap) {
		size_t cap = st->failing_cap ? 2 * st->failing_cap : 64;
		job *v = realloc(st->failing, cap * sizeof(*v));
		if (v == NULL) {
			return; /* counted, not saved: reported at the end */
		}
		st->failing = v;
		st->failing_cap = cap;
	}
	st->failing[st->nfailing++] = *j;
	if (st->o->stop_first) {
		st->stop = 1;
	}
}

static void show_progress(const state *st, double start, double *last,
			  uint64_t total)
{
	double now = wall_s();
	int tty = isatty(2);
	if (now - *last < (tty ? 0.1 : 5.0)) {
		return;
	}
	*last = now;
	double rate = now > start ? (double)st->processed / (now - start) : 0;
	fprintf(stderr,
		tty ? "\r%llu/%llu schedules, %llu failing, %.1f runs/s\033[K"
		    : "tlsim explore: %llu/%llu schedules, %llu failing, "
		      "%.1f runs/s\n",
		(unsigned long long)st->processed,
		(unsigned long long)total,
		(unsigned long long)(st->processed - st->passed), rate);
	fflush(stderr);
}

static void describe(const state *st, const job *j, char *buf, size_t n)
{
	const sim_explore_opts *o = st->o;
	if (j->id == 0) {
		snprintf(buf, n, "the seed's own order");
	} else if (o->strategy == SIM_EXPLORE_EXHAUSTIVE) {
		size_t k = (size_t)snprintf(buf, n, "choices");
		for (uint32_t i = 0; i < j->ndev && k < n; i++) {
			k += (size_t)snprintf(buf + k, n - k,
					      " %" PRIu64 ":%" PRIu32,
					      j->dev[i].point, j->dev[i].index);
		}
	} else {
		snprintf(buf, n, "%s stream %" PRIu64,
			 strategy_name(o->strategy),
			 strategy_seed(st->seed, j->id));
	}
}

/* Runs every failing schedule once more into the trace. Prints each
 * saved run. Returns 0 or -1 (printed). */
static int save_failing(state *st, const char *dir, uint64_t *first_run)
{
	const sim_explore_opts *o = st->o;
	char report[PATH_MAX];
	snprintf(report, sizeof(report), "%.*s/save.report",
		 (int)(sizeof(report) - 16), dir);
	for (size_t i = 0; i < st->nfailing; i++) {
		const job *j = &st->failing[i];
		pid_t pid = spawn(st, j, report, o->trace_path);
		int ws = 0;
		if (pid < 0 || waitpid(pid, &ws, 0) != pid) {
			fprintf(stderr, "tlsim explore: cannot save schedule "
					"%llu: %s\n",
				(unsigned long long)j->id, strerror(errno));
			return -1;
		}
		result r;
		int64_t run_id = 0;
		read_report(report, ws, &r, &run_id);
		free(r.arity);
		if (run_id <= 0) {
			fprintf(stderr,
				"tlsim explore: saving schedule %llu: %s\n",
				(unsigned long long)j->id, r.msg);
			return -1;
		}
		if (i == 0) {
			*first_run = (uint64_t)run_id;
		}
		if (!o->quiet && i < 20) {
			char d[256];
			describe(st, j, d, sizeof(d));
			printf("  schedule %llu (%s): run %lld\n",
			       (unsigned long long)j->id, d,
			       (long long)run_id);
		}
	}
	if (!o->quiet && st->nfailing > 20) {
		printf("  ... and %zu more\n", st->nfailing - 20);
	}
	unlink(report);
	return 0;
}

static void print_table(const state *st, uint64_t first_run)
{
	const sim_explore_opts *o = st->o;
	uint64_t n = st->processed, failed = n - st->passed;
	printf("%s seed %llu, strategy %s", o->run.path,
	       (unsigned long long)st->seed, strategy_name(o->strategy));
	if (o->strategy != SIM_EXPLORE_RANDOM) {
		printf(" depth %d", o->depth);
	}
	printf(": %llu choice points in the seed's run, %llu schedules "
	       "run\n",
	       (unsigned long long)st->points, (unsigned long long)n);
	printf("  %-8s %7llu %6.1f%%\n", "pass",
	       (unsigned long long)st->passed,
	       n ? 100.0 * (double)st->passed / (double)n : 0.0);
	printf("  %-8s %7llu %6.1f%%", "failing", (unsigned long long)failed,
	       n ? 100.0 * (double)failed / (double)n : 0.0);
	if (failed > 0) {
		printf("  (%zu distinct schedule%s)", st->nfailing,
		       st->nfailing == 1 ? "" : "s");
	}
	printf("\n");
	if (st->ngroups > 0) {
		printf("failures:\n");
	}
	for (int g = 0; g < st->ngroups; g++) {
		const group *gr = &st->groups[g];
		printf("  %7llu %6.1f%%  %s\n%18sschedules",
		       (unsigned long long)gr->count,
		       100.0 * (double)gr->count / (double)n, gr->msg, "");
		for (uint64_t i = 0; i < gr->count && i < IDS_SHOWN; i++) {
			printf(" %llu", (unsigned long long)gr->ids[i]);
		}
		printf("%s\n", gr->count > IDS_SHOWN ? " ..." : "");
	}
	if (st->other_fail > 0) {
		printf("  %7llu other failures\n",
		       (unsigned long long)st->other_fail);
	}
	if (o->strategy == SIM_EXPLORE_EXHAUSTIVE) {
		if (st->left == 0 && st->qlen == 0 && !st->stop) {
			printf("every schedule within %d deviation%s from the "
			       "seed's was run\n",
			       o->depth, o->depth == 1 ? "" : "s");
		} else if (!st->stop) {
			printf("stopped at --runs %llu: %llu schedules within "
			       "depth %d not run\n",
			       (unsigned long long)o->runs,
			       (unsigned long long)(st->left + st->qlen),
			       o->depth);
		}
	}
	if (st->stop) {
		printf("stopped at the first failing schedule "
		       "(--stop-first)\n");
	}
	if (failed > 0) {
		printf("failing schedules saved in %s; reproduce: tlsim "
		       "replay %s --run %llu\n",
		       o->trace_path, o->trace_path,
		       (unsigned long long)first_run);
	}
}

int sim_explore(const sim_explore_opts *o)
{
	if (o->jobs < 1 || o->jobs > 256 || o->runs > SIM_EXPLORE_MAX_RUNS ||
	    o->depth < 1 || o->depth > SIM_SCHEDULE_MAX_DEPTH ||
	    o->trace_path == NULL) {
		fprintf(stderr, "tlsim explore: bad --jobs, --runs or "
				"--depth\n");
		return SIM_STATUS_INPUT;
	}
	/* The trace must be usable before hours of exploring. */
	char err[1024];
	sim_trace *t = NULL;
	if (sim_trace_open(o->trace_path, &t, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	sim_trace_close(t);
	char dir[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/tlsim-explore.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "tlsim: cannot create a directory in %s: %s\n",
			tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return SIM_STATUS_INTERNAL;
	}
	state st = {.o = o, .seed = o->run.seed};
	slot *slots = calloc((size_t)o->jobs, sizeof(*slots));
	if (slots == NULL) {
		rmdir(dir);
		fprintf(stderr, "tlsim: out of memory\n");
		return SIM_STATUS_INTERNAL;
	}
	for (int k = 0; k < o->jobs; k++) {
		snprintf(slots[k].report, sizeof(slots[k].report),
			 "%.*s/slot%d.report", (int)(sizeof(dir) - 32), dir, k);
	}
	int status = SIM_STATUS_INTERNAL, broken = 0;
	uint64_t total = o->runs + 1, next_done = 0;
	double start = wall_s(), last = start;
	int running = 0;
	for (;;) {
		/* Launch: the baseline alone first (its seed and choice
		 * points shape every other schedule). */
		for (int k = 0; k < o->jobs && !broken; k++) {
			if (slots[k].pid != 0 || slots[k].ready ||
			    (next_done == 0 && st.generated > 0)) {
				continue;
			}
			job j;
			if (!next_job(&st, &j)) {
				break;
			}
			pid_t pid = spawn(&st, &j, slots[k].report, NULL);
			if (pid < 0) {
				snprintf(err, sizeof(err),
					 "cannot start a run: %s",
					 strerror(errno));
				broken = 1;
				break;
			}
			slots[k].pid = pid;
			slots[k].j = j;
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
			if (slots[k].pid == pid) {
				read_report(slots[k].report, ws, &slots[k].r,
					    NULL);
				slots[k].pid = 0;
				slots[k].ready = 1;
				running--;
			}
		}
		/* Process finished schedules in id order. */
		for (int found = 1; found;) {
			found = 0;
			for (int k = 0; k < o->jobs; k++) {
				slot *s = &slots[k];
				if (!s->ready || s->j.id != next_done) {
					continue;
				}
				found = 1;
				s->ready = 0;
				next_done++;
				if (s->j.id == 0) {
					st.seed = s->r.seed;
					st.points = s->r.points;
				}
				if (st.stop) { /* after the first failure */
					free(s->r.arity);
					continue;
				}
				tally(&st, &s->j, &s->r);
				if (o->strategy == SIM_EXPLORE_EXHAUSTIVE &&
				    expand(&st, &s->j, &s->r) != 0) {
					snprintf(err, sizeof(err),
						 "out of memory");
					broken = 1;
				}
				free(s->r.arity);
				s->r.arity = NULL;
			}
		}
		if (!o->quiet) {
			show_progress(&st, start, &last, total);
		}
	}
	while (running > 0) { /* after a failure to start one */
		int ws;
		pid_t pid = wait(&ws);
		if (pid < 0 && errno != EINTR) {
			break;
		}
		running -= pid > 0;
	}
	if (!o->quiet && isatty(2)) {
		fprintf(stderr, "\r\033[K");
	}
	uint64_t first_run = 0;
	if (broken) {
		fprintf(stderr, "tlsim explore: %s\n", err);
	} else {
		if (!o->quiet && st.nfailing > 0) {
			printf("saving %zu distinct failing schedule%s to "
			       "%s:\n",
			       st.nfailing, st.nfailing == 1 ? "" : "s",
			       o->trace_path);
		}
		if (save_failing(&st, dir, &first_run) != 0) {
			status = SIM_STATUS_INTERNAL;
		} else {
			if (!o->quiet) {
				print_table(&st, first_run);
			}
			status = st.passed == st.processed ? SIM_STATUS_PASS
							   : SIM_STATUS_FAIL;
		}
	}
	for (int k = 0; k < o->jobs; k++) {
		unlink(slots[k].report);
		free(slots[k].r.arity);
	}
	rmdir(dir);
	free(slots);
	free(st.queue);
	free(st.failing);
	free(st.seen);
	fflush(stdout);
	return status;
}

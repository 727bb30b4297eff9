/* sim/shrink.c: `tlsim shrink`. */
#define _GNU_SOURCE /* sigabbrev_np */
#include "sim/shrink.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/schedule.h"

#define SIG_MAX 1200
#define MAX_JOBS 256

/* One decision of the recorded run: a choice or a fault. */
typedef struct item {
	int fault;
	size_t idx; /* into the record's choices or faults */
} item;

typedef struct shrinker {
	const sim_shrink_opts *o;
	sim_plan rec;    /* the seed's run, fifo order, faults forced */
	item *items;     /* every decision of |rec| */
	size_t nitems;
	char want[SIG_MAX]; /* the failure's signature */
	char dir[PATH_MAX];
	uint64_t runs;
	int over_budget;
} shrinker;

/* A candidate being run. */
typedef struct task {
	pid_t pid;
	int slot;
	size_t cand;
} task;

/* The child: runs |plan| (NULL: the seed, recorded) and writes
 * "OUTCOME\nSIGNATURE\n" and, when recording, the record's text. */
static void child(const sim_shrink_opts *o, const sim_plan *plan,
		  const char *report)
{
	FILE *f = fopen(report, "w");
	sim_schedule *sch = sim_schedule_new();
	if (f == NULL || sch == NULL ||
	    (plan != NULL &&
	     sim_plan_copy(sim_schedule_plan(sch), plan) != 0)) {
		_exit(SIM_STATUS_INTERNAL);
	}
	sim_schedule_set_record_order(sch, SIM_ORDER_FIFO);
	sim_lua_opts lo = o->run;
	lo.verbosity = 0;
	lo.trace = NULL;
	lo.schedule = sch;
	sim_lua_result r;
	int status = sim_lua_run(&lo, &r);
	const char *sig = strcmp(r.outcome, "fail") == 0 && r.first_check[0]
				  ? r.first_check
				  : r.message;
	fprintf(f, "%s\n%.*s\n", r.outcome[0] ? r.outcome : "error",
		SIG_MAX - 64, sig);
	if (plan == NULL) {
		char *text = sim_plan_format(sim_schedule_record(sch));
		if (text == NULL) {
			_exit(SIM_STATUS_INTERNAL);
		}
		fputs(text, f);
		free(text);
	}
	if (fclose(f) != 0) {
		_exit(SIM_STATUS_INTERNAL);
	}
	_exit(status);
}

static pid_t spawn(const shrinker *sh, const sim_plan *plan,
		   const char *report)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		child(sh->o, plan, report);
	}
	return pid;
}

static void report_path(const shrinker *sh, int slot, char *out, size_t n)
{
	snprintf(out, n, "%.*s/slot%d", (int)(n - 16), sh->dir, slot);
}

/* Reads a child's signature ("outcome: first failure") into |sig|; a
 * crash is a signature too. Returns the rest of the report (malloc'd)
 * when |rest|. */
static void read_sig(const char *path, int ws, char *sig, size_t n,
		     char **rest)
{
	FILE *f = fopen(path, "r");
	char outcome[64] = "", what[SIG_MAX] = "";
	int ok = f != NULL && fgets(outcome, sizeof(outcome), f) != NULL &&
		 fgets(what, sizeof(what), f) != NULL;
	outcome[strcspn(outcome, "\n")] = '\0';
	what[strcspn(what, "\n")] = '\0';
	if (WIFSIGNALED(ws)) {
		const char *name = sigabbrev_np(WTERMSIG(ws));
		snprintf(sig, n, "crash: signal %d (SIG%s)", WTERMSIG(ws),
			 name ? name : "?");
	} else if (!ok) {
		snprintf(sig, n, "crash: exit %d without a report",
			 WEXITSTATUS(ws));
	} else {
		snprintf(sig, n, "%s: %s", outcome, what);
	}
	if (rest != NULL) {
		*rest = NULL;
		if (ok) {
			size_t cap = 4096, len = 0;
			char *buf = malloc(cap);
			size_t k;
			while (buf != NULL &&
			       (k = fread(buf + len, 1, cap - len - 1, f)) >
				   0) {
				len += k;
				if (cap - len < 2) {
					cap *= 2;
					char *v = realloc(buf, cap);
					if (v == NULL) {
						free(buf);
						buf = NULL;
						break;
					}
					buf = v;
				}
			}
			if (buf != NULL) {
				buf[len] = '\0';
			}
			*rest = buf;
		}
	}
	if (f != NULL) {
		fclose(f);
	}
}

/* Builds the plan of the items in |set| (nset of them). */
static int plan_of(const shrinker *sh, const item *set, size_t nset,
		   sim_plan *p)
{
	sim_plan_free(p);
	p->order = SIM_ORDER_FIFO;
	p->faults_forced = 1;
	for (size_t i = 0; i < nset; i++) {
		int rc = set[i].fault
				 ? sim_plan_add_fault(p,
						      &sh->rec.faults[set[i].idx])
				 : sim_plan_add_choice(
					   p, sh->rec.choices[set[i].idx].point,
					   sh->rec.choices[set[i].idx].index);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* Runs the candidate plans in order, up to |jobs| at once, and returns
 * the index of the first that fails the same way, or |n| when none does.
 * Deterministic: later candidates never win over an earlier one. Returns
 * -1 on a failure to run (err filled). */
static long first_failing(shrinker *sh, sim_plan *cands, size_t n,
			  char *err, size_t errlen)
{
	const sim_shrink_opts *o = sh->o;
	task run[MAX_JOBS];
	int nrun = 0;
	size_t next = 0, best = n;
	int free_slot[MAX_JOBS];
	for (int k = 0; k < o->jobs; k++) {
		free_slot[k] = 1;
	}
	for (;;) {
		while (nrun < o->jobs && next < best &&
		       sh->runs < o->max_runs) {
			int slot = 0;
			while (!free_slot[slot]) {
				slot++;
			}
			char path[PATH_MAX];
			report_path(sh, slot, path, sizeof(path));
			pid_t pid = spawn(sh, &cands[next], path);
			if (pid < 0) {
				snprintf(err, errlen, "cannot start a run: %s",
					 strerror(errno));
				while (nrun > 0 && wait(NULL) > 0) {
					nrun--;
				}
				return -1;
			}
			free_slot[slot] = 0;
			run[nrun++] = (task){.pid = pid, .slot = slot,
					     .cand = next++};
			sh->runs++;
		}
		if (nrun == 0) {
			break;
		}
		int ws;
		pid_t pid = waitpid(-1, &ws, 0);
		if (pid < 0) {
			if (errno == EINTR) {
				continue;
			}
			snprintf(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
		for (int i = 0; i < nrun; i++) {
			if (run[i].pid != pid) {
				continue;
			}
			char path[PATH_MAX], sig[SIG_MAX];
			report_path(sh, run[i].slot, path, sizeof(path));
			read_sig(path, ws, sig, sizeof(sig), NULL);
			if (strcmp(sig, sh->want) == 0 && run[i].cand < best) {
				best = run[i].cand;
			}
			free_slot[run[i].slot] = 1;
			run[i] = run[--nrun];
			break;
		}
	}
	if (best == n && next < n) {
		sh->over_budget = 1;
	}
	return (long)best;
}

/* ddmin over sh->items: leaves a 1-minimal failing subset in
 * items[0..*nkeep). */
static int ddmin(shrinker *sh, size_t *nkeep, char *err, size_t errlen)
{
	size_t n = sh->nitems, gran = 2;
	item *cur = sh->items;
	item *tmp = malloc((n + 1) * sizeof(*tmp));
	sim_plan *cands = calloc(2 * (n + 1), sizeof(*cands));
	size_t ncands = 2 * (n + 1);
	if (tmp == NULL || cands == NULL) {
		free(tmp);
		free(cands);
		snprintf(err, errlen, "out of memory");
		return SIM_ENOMEM;
	}
	int rc = 0;
	/* The empty schedule first: maybe no decision matters. */
	if (n > 0 && plan_of(sh, NULL, 0, &cands[0]) == 0) {
		long w = first_failing(sh, cands, 1, err, errlen);
		if (w < 0) {
			rc = SIM_EINTERNAL;
		} else if (w == 0) {
			n = 0;
		}
	}
	while (rc == 0 && n >= 2 && !sh->over_budget) {
		if (gran > n) {
			gran = n;
		}
		size_t k = 0;
		/* subsets, then complements */
		for (int pass = 0; pass < 2 && rc == 0; pass++) {
			for (size_t c = 0; c < gran; c++) {
				size_t lo = n * c / gran, hi = n * (c + 1) / gran;
				size_t m = 0;
				for (size_t i = 0; i < n; i++) {
					int in = i >= lo && i < hi;
					if (in == (pass == 0)) {
						tmp[m++] = cur[i];
					}
				}
				rc = plan_of(sh, tmp, m, &cands[k++]);
				if (rc != 0) {
					break;
				}
			}
		}
		if (rc != 0) {
			snprintf(err, errlen, "%s", sim_strerror(rc));
			break;
		}
		/* With 2 chunks the complements are the subsets again. */
		size_t ntry = gran == 2 ? 2 : k;
		long w = first_failing(sh, cands, ntry, err, errlen);
		if (w < 0) {
			rc = SIM_EINTERNAL;
			break;
		}
		if ((size_t)w == ntry) {
			if (gran >= n) {
				break; /* 1-minimal */
			}
			gran = 2 * gran < n ? 2 * gran : n;
			continue;
		}
		size_t c = (size_t)w % gran;
		int subset = (size_t)w < gran;
		size_t lo = n * c / gran, hi = n * (c + 1) / gran, m = 0;
		for (size_t i = 0; i < n; i++) {
			int in = i >= lo && i < hi;
			if (in == subset) {
				tmp[m++] = cur[i];
			}
		}
		memcpy(cur, tmp, m * sizeof(*cur));
		n = m;
		gran = subset ? 2 : (gran - 1 > 2 ? gran - 1 : 2);
		if (!sh->o->quiet) {
			fprintf(stderr,
				"tlsim shrink: %zu decisions left after %llu "
				"runs\n",
				n, (unsigned long long)sh->runs);
		}
	}
	for (size_t i = 0; i < ncands; i++) {
		sim_plan_free(&cands[i]);
	}
	free(cands);
	free(tmp);
	*nkeep = n;
	return rc;
}

static void count(const item *set, size_t n, size_t *faults, size_t *choices)
{
	*faults = *choices = 0;
	for (size_t i = 0; i < n; i++) {
		(*(set[i].fault ? faults : choices))++;
	}
}

/* Writes |text| to |path| through a temporary file and a rename. */
static int write_file(const char *path, const char *text, char *err,
		      size_t errlen)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	FILE *f = fopen(tmp, "w");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
			 strerror(errno));
		return -1;
	}
	int bad = fputs(text, f) < 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: cannot write: %s", path,
			 strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int run_one(shrinker *sh, const sim_plan *plan, char *sig, size_t n,
		   char **rest)
{
	char path[PATH_MAX];
	report_path(sh, 0, path, sizeof(path));
	pid_t pid = spawn(sh, plan, path);
	int ws = 0;
	if (pid < 0 || waitpid(pid, &ws, 0) != pid) {
		return -1;
	}
	sh->runs++;
	read_sig(path, ws, sig, n, rest);
	return 0;
}

int sim_shrink(const sim_shrink_opts *o)
{
	shrinker sh = {.o = o};
	char err[1024], sig[SIG_MAX];
	int status = SIM_STATUS_INTERNAL;
	char *record = NULL, *text = NULL;
	sim_plan kept;
	sim_plan_init(&kept);
	sim_plan_init(&sh.rec);
	if (o->jobs < 1 || o->jobs > MAX_JOBS || !o->run.have_seed) {
		fprintf(stderr, "tlsim shrink: needs --seed N and 1 to %d "
				"jobs\n",
			MAX_JOBS);
		return SIM_STATUS_INPUT;
	}
	const char *t = getenv("TMPDIR");
	snprintf(sh.dir, sizeof(sh.dir), "%s/tlsim-shrink.XXXXXX",
		 t && *t ? t : "/tmp");
	if (mkdtemp(sh.dir) == NULL) {
		fprintf(stderr, "tlsim: cannot create a directory in %s: %s\n",
			t && *t ? t : "/tmp", strerror(errno));
		return SIM_STATUS_INTERNAL;
	}

	/* 1. The seed's run, recorded. */
	if (run_one(&sh, NULL, sh.want, sizeof(sh.want), &record) != 0) {
		fprintf(stderr, "tlsim shrink: cannot run: %s\n",
			strerror(errno));
		goto out;
	}
	if (strncmp(sh.want, "pass: ", 6) == 0) {
		fprintf(stderr,
			"tlsim shrink: %s seed %llu passes; nothing to "
			"shrink\n",
			o->run.path, (unsigned long long)o->run.seed);
		status = SIM_STATUS_INPUT;
		goto out;
	}
	if (strncmp(sh.want, "error: ", 7) == 0) {
		fprintf(stderr, "tlsim shrink: the run is an error, not a "
				"failure: %s\n",
			sh.want + 7);
		status = SIM_STATUS_INPUT;
		goto out;
	}
	if (record == NULL ||
	    sim_plan_parse(&sh.rec, record, "record", 1, err, sizeof(err)) !=
		0) {
		fprintf(stderr, "tlsim shrink: reading the record: %s\n",
			record ? err : "missing");
		goto out;
	}
	sh.rec.order = SIM_ORDER_FIFO;
	sh.rec.faults_forced = 1;
	sh.nitems = sh.rec.nchoices + sh.rec.nfaults;
	sh.items = malloc((sh.nitems + 1) * sizeof(*sh.items));
	if (sh.items == NULL) {
		fprintf(stderr, "tlsim: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < sh.rec.nchoices; i++) {
		sh.items[i] = (item){.fault = 0, .idx = i};
	}
	for (size_t i = 0; i < sh.rec.nfaults; i++) {
		sh.items[sh.rec.nchoices + i] = (item){.fault = 1, .idx = i};
	}
	if (!o->quiet) {
		fprintf(stderr,
			"tlsim shrink: seed %llu fails (%s) with %zu link "
			"faults and %zu out-of-order choices\n",
			(unsigned long long)o->run.seed, sh.want,
			sh.rec.nfaults, sh.rec.nchoices);
	}
	/* 2. The record, forced, must fail the same way. */
	if (run_one(&sh, &sh.rec, sig, sizeof(sig), NULL) != 0 ||
	    strcmp(sig, sh.want) != 0) {
		fprintf(stderr,
			"tlsim shrink: the recorded schedule does not "
			"reproduce the failure (got '%s'); this is a tlsim "
			"bug, please report it\n",
			sig);
		goto out;
	}
	/* 3. ddmin. */
	size_t nkeep = 0;
	if (ddmin(&sh, &nkeep, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsim shrink: %s\n", err);
		goto out;
	}
	if (plan_of(&sh, sh.items, nkeep, &kept) != 0) {
		fprintf(stderr, "tlsim: out of memory\n");
		goto out;
	}
	/* 4. The file. */
	size_t kf, kc;
	count(sh.items, nkeep, &kf, &kc);
	sim_schedule_file file = {.scenario = (char *)o->run.path,
				  .have_seed = 1,
				  .seed = o->run.seed,
				  .nset = o->run.nset,
				  .plan = kept};
	snprintf(file.sha256, sizeof(file.sha256), "%s", o->run.sha256);
	for (int i = 0; i < o->run.nset; i++) {
		file.set_key[i] = (char *)o->run.set_key[i];
		file.set_val[i] = o->run.set_val[i];
	}
	char comment[2048];
	snprintf(comment, sizeof(comment),
		 "written by tlsim shrink from seed %llu: %zu link faults and "
		 "%zu choices -> %zu and %zu (%llu runs%s)\nfails the same "
		 "way: %s\nrun it: tlsim run %s",
		 (unsigned long long)o->run.seed, sh.rec.nfaults,
		 sh.rec.nchoices, kf, kc, (unsigned long long)sh.runs,
		 sh.over_budget ? ", stopped at --max-runs: not minimal" : "",
		 sh.want, o->out_path);
	text = sim_schedule_file_format(&file, comment);
	if (text == NULL) {
		fprintf(stderr, "tlsim: out of memory\n");
		goto out;
	}
	if (write_file(o->out_path, text, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		status = SIM_STATUS_INPUT;
		goto out;
	}
	uint64_t shrink_runs = sh.runs;
	/* 5. Read back what was written and check it once more. */
	sim_schedule_file back;
	int prc = sim_schedule_file_parse(&back, text, o->out_path, err,
					  sizeof(err));
	int same = prc == 0 &&
		   run_one(&sh, &back.plan, sig, sizeof(sig), NULL) == 0 &&
		   strcmp(sig, sh.want) == 0;
	sim_schedule_file_free(&back);
	if (!same) {
		fprintf(stderr,
			"tlsim shrink: %s does not fail the same way when "
			"run (got '%s'); this is a tlsim bug\n",
			o->out_path, prc == 0 ? sig : err);
		goto out;
	}
	if (!o->quiet) {
		printf("%s seed %llu: %s\n", o->run.path,
		       (unsigned long long)o->run.seed, sh.want);
		printf("  link faults %zu -> %zu, out-of-order choices %zu -> "
		       "%zu, %llu runs%s\n",
		       sh.rec.nfaults, kf, sh.rec.nchoices, kc,
		       (unsigned long long)shrink_runs,
		       sh.over_budget ? " (stopped at --max-runs: not "
					"minimal)"
				      : "");
		char *plan = sim_plan_format(&kept);
		if (plan != NULL) {
			for (char *l = plan; *l != '\0';) {
				char *e = strchr(l, '\n');
				printf("    %.*s\n",
				       (int)(e ? e - l : (long)strlen(l)), l);
				l = e ? e + 1 : l + strlen(l);
			}
		}
		free(plan);
		printf("written to %s; reproduce: tlsim run %s\n", o->out_path,
		       o->out_path);
	}
	status = SIM_STATUS_PASS;
out:
	free(text);
	free(record);
	free(sh.items);
	sim_plan_free(&kept);
	sim_plan_free(&sh.rec);
	char path[PATH_MAX];
	for (int k = 0; k < o->jobs && k < MAX_JOBS; k++) {
		report_path(&sh, k, path, sizeof(path));
		unlink(path);
	}
	rmdir(sh.dir);
	fflush(stdout);
	return status;
}

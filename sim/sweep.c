/* sim/sweep.c: `tlsim sweep`. */
#define _GNU_SOURCE /* sigabbrev_np */
#include "sim/sweep.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "proto/pki.h"
#include "sim/entropy.h"
#include "sim/query.h"
#include "sim/err.h"
#include "sim/trace.h"

#define SEEDS_SHOWN 5
#define WINDOW_PER_JOB 8  /* finished runs that may wait, per job */
#define GROUPS_MAX 1024   /* distinct messages kept per list */
#define KEY_MAX 1024      /* bytes of a message kept */
#define FAILS_MAX 64      /* distinct failed expectations per run */
#define BATCH_RUNS 256    /* runs per trace transaction, at most */
#define BATCH_SECONDS 1.0 /* and for at most this long */
#define READ_CHUNK 65536
#define FRAME_HEAD 16 /* a report frame's length and status words */
#define NAP_NS 2000000 /* see the poll in sim_sweep */

/* A growable byte buffer. */
typedef struct buf {
	uint8_t *p;
	size_t len, cap;
} buf;

static int buf_reserve(buf *b, size_t need)
{
	if (need <= b->cap) {
		return 0;
	}
	size_t c = b->cap ? b->cap : 4096;
	while (c < need) {
		c *= 2;
	}
	uint8_t *p = realloc(b->p, c);
	if (p == NULL) {
		return -1;
	}
	b->p = p;
	b->cap = c;
	return 0;
}

static int buf_put(buf *b, const void *v, size_t n)
{
	if (buf_reserve(b, b->len + n) != 0) {
		return -1;
	}
	if (n > 0) {
		memcpy(b->p + b->len, v, n);
	}
	b->len += n;
	return 0;
}

/* The report's fields: u32/u64 little-endian lengths, then bytes. */
static int buf_put_u64(buf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++) {
		x[i] = (uint8_t)(v >> (8 * i));
	}
	return buf_put(b, x, 8);
}

static int buf_put_str(buf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	return buf_put_u64(b, n) || buf_put(b, s, n);
}

/* A reader over a received report; |bad| is sticky. */
typedef struct reader {
	const uint8_t *p, *end;
	int bad;
} reader;

static uint64_t get_u64(reader *r)
{
	if (r->bad || r->end - r->p < 8) {
		r->bad = 1;
		return 0;
	}
	uint64_t v = 0;
	for (int i = 0; i < 8; i++) {
		v |= (uint64_t)r->p[i] << (8 * i);
	}
	r->p += 8;
	return v;
}

/* get_bytes returns |n| bytes (and moves past them), NULL if short. */
static const uint8_t *get_bytes(reader *r, uint64_t n)
{
	if (r->bad || (uint64_t)(r->end - r->p) < n) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	return p;
}

/* get_str copies a string field into |out| (|len| bytes, truncated to
 * fit, NUL-terminated). */
static void get_str(reader *r, char *out, size_t len)
{
	uint64_t n = get_u64(r);
	const uint8_t *p = get_bytes(r, n);
	size_t k = p == NULL ? 0 : n < len ? (size_t)n : len - 1;
	if (k > 0) {
		memcpy(out, p, k);
	}
	out[k] = '\0';
}

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

static void fmt_eta(double s, char *b, size_t n)
{
	long t = (long)(s + 0.5);
	if (t >= 3600) {
		snprintf(b, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
	} else if (t >= 60) {
		snprintf(b, n, "%ldm%02lds", t / 60, t % 60);
	} else {
		snprintf(b, n, "%lds", t);
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
	/* The caps that change what a run does. */
	const struct {
		const char *opt;
		uint64_t v;
	} caps[] = {{"--max-events", o->max_events},
		    {"--max-inflight", o->max_inflight},
		    {"--max-queued-ops", o->max_queued_ops},
		    {"--max-rows", o->max_rows},
		    {"--max-instructions", o->max_instructions},
		    {"--max-memory", o->max_memory},
		    {"--livelock-events", o->livelock_events}};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		if (caps[i].v != 0) {
			fprintf(f, " %s %llu", caps[i].opt,
				(unsigned long long)caps[i].v);
		}
	}
	if (o->max_time_ns != 0) {
		fprintf(f, " --max-time %lldns", (long long)o->max_time_ns);
	}
	fprintf(f, "\n");
}

static void remove_trace(const char *path)
{
	char p[PATH_MAX + 16];
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

/* --- the child ----------------------------------------------------------- */

/* The distinct messages of a run's failed expectations, in the order
 * they first failed (truncated to KEY_MAX - 1 bytes). Each is allocated
 * as it fails: a fixed 64 KiB table cost every child 16 pages, i.e. 16
 * page faults, whether anything failed or not. */
typedef struct fails {
	int n;
	char *msg[FAILS_MAX];
} fails;

static void on_check(void *user_data, int ok, const char *message)
{
	fails *f = user_data;
	if (ok || f->n == FAILS_MAX) {
		return;
	}
	char key[KEY_MAX];
	snprintf(key, sizeof(key), "%s", message ? message : "expectation");
	for (int i = 0; i < f->n; i++) {
		if (strcmp(f->msg[i], key) == 0) {
			return;
		}
	}
	/* Out of memory: the message is left out of the table. */
	if ((f->msg[f->n] = strdup(key)) != NULL) {
		f->n++;
	}
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			return -1;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* runs_per_child is the runs a child makes: 0 means 1. */
static uint64_t runs_per_child(const sim_sweep_opts *o)
{
	return o->runs_per_child ? o->runs_per_child : 1;
}

/* report_run makes one run, as `tlsim run --seed S -q` would do it
 * (with |traced|, as with --trace, its rows spooled rather than
 * committed), and writes its report frame to |fd|: u64 length of what
 * follows the status, u64 the run's exit status, then u64 have_run (a run row stands for it), outcome, message (the error or
 * first failed expectation), u64 n and n failed-expectation messages,
 * the spooled run (u64 length, bytes; empty untraced), then the
 * certificate chains the run made rather than found memoised (u64 length,
 * bytes of proto_pki_cache_export), which the parent imports so that the
 * runs forked after it find them made (those an earlier report of this
 * child did not pass on: |*chains_sent| bytes of the export, updated);
 * strings as u64 length and bytes. Returns 0, or -1 if the frame could not be made or written. */
static int report_run(const sim_sweep_opts *o, int traced, uint64_t seed,
		      int fd, size_t *chains_sent)
{
	const char *hook = getenv("TLSIM_TEST_CRASH_SEED");
	if (hook != NULL && strtoull(hook, NULL, 10) == seed) {
		signal(SIGSEGV, SIG_DFL);
		raise(SIGSEGV);
	}
	char err[512];
	sim_trace *t = NULL;
	sim_lua_result *r = calloc(1, sizeof(*r));
	fails *f = calloc(1, sizeof(*f));
	buf rep = {0};
	int status = SIM_STATUS_INTERNAL, have_run = 0;
	const char *msg = "out of memory";
	const void *rec = NULL;
	size_t reclen = 0;
	if (r == NULL || f == NULL) {
		/* reported below */
	} else if (traced && sim_trace_open_spool(&t, err, sizeof(err)) != 0) {
		msg = err;
	} else {
		sim_lua_opts lo = o->run;
		lo.seed = seed;
		lo.have_seed = 1;
		lo.trace = t;
		lo.verbosity = 0;
		lo.on_check = on_check;
		lo.user_data = f;
		status = sim_lua_run(&lo, r);
		msg = r->message;
		have_run = r->have_world;
		if (r->trace_err != 0) {
			msg = sim_trace_errmsg(t);
			status = r->trace_err == SIM_EINTERNAL
				     ? SIM_STATUS_INTERNAL
				     : SIM_STATUS_INPUT;
			have_run = 0;
		}
		if (traced && have_run) {
			rec = sim_trace_spooled(t, &reclen);
			if (rec == NULL) {
				msg = "the run was not spooled";
				status = SIM_STATUS_INTERNAL;
				have_run = 0;
			}
		}
	}
	/* The frame's two header words, filled in last. */
	int bad = buf_put_u64(&rep, 0) || buf_put_u64(&rep, 0) ||
		  buf_put_u64(&rep, (uint64_t)have_run) ||
		  buf_put_str(&rep, r ? r->outcome : "") ||
		  buf_put_str(&rep, msg) ||
		  buf_put_u64(&rep, f && have_run ? (uint64_t)f->n : 0);
	for (int i = 0; !bad && have_run && i < f->n; i++) {
		bad = buf_put_str(&rep, f->msg[i]);
	}
	bad = bad || buf_put_u64(&rep, have_run ? reclen : 0) ||
	      buf_put(&rep, rec, have_run ? reclen : 0);
	/* Chains are worth passing on whatever the run's outcome; none if
	 * they cannot be (out of memory). The export holds every chain this
	 * child made, in the order made, so the chains an earlier report of
	 * the child passed on are its first |*chains_sent| bytes. */
	uint8_t *chains = NULL;
	size_t nchains = 0;
	if (proto_pki_cache_export(&chains, &nchains) < 0 ||
	    nchains < *chains_sent) {
		nchains = *chains_sent;
	}
	size_t fresh = nchains - *chains_sent;
	bad = bad || buf_put_u64(&rep, fresh) ||
	      buf_put(&rep, chains ? chains + *chains_sent : NULL, fresh);
	free(chains);
	if (!bad) {
		*chains_sent = nchains;
	}
	if (!bad) {
		size_t len = rep.len;
		rep.len = 0;
		buf_put_u64(&rep, (uint64_t)(len - FRAME_HEAD));
		buf_put_u64(&rep, (uint64_t)status);
		rep.len = len;
	}
	int rc = bad || write_all(fd, rep.p, rep.len) != 0 ? -1 : 0;
	/* Freed although the process ends, so that a leak checker run over
	 * a sweep (scripts/test's valgrind pass) sees none. */
	free(rep.p);
	for (int i = 0; f != NULL && i < f->n; i++) {
		free(f->msg[i]);
	}
	free(f);
	free(r);
	sim_trace_close(t);
	return rc;
}

/* --- the closing table's counts ----------------------------------------- */

#define OTHER_KEY "(further distinct messages, past the first 1023)"

/* One line of the table: a message (or outcome, or query) and the runs
 * it covers, with the first (smallest) seeds. A group does not depend on
 * the order its runs are counted in (a resumed sweep counts the runs it
 * finds in the trace before those it runs), but for which messages get
 * a line of their own past GROUPS_MAX. */
typedef struct group {
	char *key;
	uint64_t count;
	uint64_t first;              /* index of its first run: orders ties */
	uint64_t seeds[SEEDS_SHOWN]; /* ascending; seed order is index order */
	int nseeds;
} group;

typedef struct groups {
	group *g;
	size_t n, cap;
} groups;

static void group_count(group *g, uint64_t seed)
{
	g->count++;
	int n = g->nseeds;
	if (n == SEEDS_SHOWN && seed >= g->seeds[n - 1]) {
		return;
	}
	int k = n < SEEDS_SHOWN ? n : n - 1; /* the largest drops out */
	while (k > 0 && g->seeds[k - 1] > seed) {
		g->seeds[k] = g->seeds[k - 1];
		k--;
	}
	g->seeds[k] = seed;
	g->nseeds += n < SEEDS_SHOWN;
}

/* groups_add counts run |index| (seed |seed|) under |key|; past
 * GROUPS_MAX distinct keys, under OTHER_KEY. Returns 0 or -1 (no
 * memory). */
static int groups_add(groups *gs, const char *key, uint64_t seed,
		      uint64_t index)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < gs->n; i++) {
			if (strcmp(gs->g[i].key, key) == 0) {
				group_count(&gs->g[i], seed);
				if (index < gs->g[i].first) {
					gs->g[i].first = index;
				}
				return 0;
			}
		}
		if (gs->n < GROUPS_MAX - 1 || pass == 1) {
			break;
		}
		key = OTHER_KEY;
	}
	if (gs->n == gs->cap) {
		size_t cap = gs->cap ? 2 * gs->cap : 8;
		group *p = realloc(gs->g, cap * sizeof(*p));
		if (p == NULL) {
			return -1;
		}
		gs->g = p;
		gs->cap = cap;
	}
	group *g = &gs->g[gs->n];
	memset(g, 0, sizeof(*g));
	if ((g->key = strdup(key)) == NULL) {
		return -1;
	}
	g->first = index;
	gs->n++;
	if (seed != UINT64_MAX) { /* UINT64_MAX: only create it */
		group_count(g, seed);
	}
	return 0;
}

static void groups_free(groups *gs)
{
	for (size_t i = 0; i < gs->n; i++) {
		free(gs->g[i].key);
	}
	free(gs->g);
}

static int cmp_count(const void *a, const void *b)
{
	const group *x = a, *y = b;
	if (x->count != y->count) {
		return x->count > y->count ? -1 : 1;
	}
	if (x->first != y->first) {
		return x->first < y->first ? -1 : 1;
	}
	return strcmp(x->key, y->key); /* failed in the same run first */
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const group *)a)->key, ((const group *)b)->key);
}

static void print_group(const group *g, uint64_t total)
{
	printf("  %7llu %6.1f%%  %s\n", (unsigned long long)g->count,
	       100.0 * (double)g->count / (double)total, g->key);
	if (g->nseeds == 0) {
		return;
	}
	printf("%18sseeds", "");
	for (int i = 0; i < g->nseeds; i++) {
		printf(" %llu", (unsigned long long)g->seeds[i]);
	}
	printf("%s\n", g->count > (uint64_t)g->nseeds ? " ..." : "");
}

/* One group list, most runs first. */
static void print_groups(groups *gs, const char *title, uint64_t total)
{
	if (gs->n == 0) {
		return;
	}
	qsort(gs->g, gs->n, sizeof(*gs->g), cmp_count);
	printf("%s:\n", title);
	for (size_t i = 0; i < gs->n; i++) {
		print_group(&gs->g[i], total);
	}
}

/* --- the sweep ----------------------------------------------------------- */

/* A finished run waiting for its turn. */
typedef struct result {
	int ready;
	int wstatus;
	buf data; /* the child's report */
} result;

/* A child and the runs it was given: the indices [next, end) but those
 * a resumed sweep found in the trace; |next| moves past each run it
 * reports. Free when it has no child and no runs left. */
typedef struct slot {
	pid_t pid; /* 0: no child */
	uint64_t next, end;
	int fd; /* read end of the child's report pipe */
	buf in; /* bytes of a frame not yet whole */
} slot;

typedef struct query {
	sim_query sq;
	group g;
} query;

typedef struct sweep {
	const sim_sweep_opts *o;
	uint64_t total, shards, shard;
	int traced;
	const char *out_path; /* NULL untraced */
	sim_trace *out;
	char params[4096];
	char limits[512]; /* run.limits; empty: the defaults */
	int64_t first_id, last_id; /* the runs stored now; 0 none */
	uint64_t batch_runs;
	double batch_start;
	uint64_t committed; /* runs stored now, in committed batches */
	groups outcomes, fails, errors;
	uint64_t pass;
	int have_bad;
	uint64_t first_bad_seed;
	query q[SIM_SWEEP_MAX_QUERIES];
	/* --resume: a bit per index, set for the runs found in the trace;
	 * and a bit per run id up to old_max_id, set for those runs. */
	uint8_t *done, *old_ids;
	uint64_t ndone;
	int64_t old_max_id;
	int status; /* the exit status of a failure, 0: internal */
	char err[1100];
	/* sim_sweep's arrays, also held here: a forked child's child() never
	 * returns, so it saves no registers, and a pointer kept only in one
	 * would look lost to a leak checker (valgrind.memcheck). */
	slot *slots;
	result *results;
	struct pollfd *pfd;
	int *pslot;
} sweep;

static int bit_get(const uint8_t *b, uint64_t i)
{
	return (b[i / 8] >> (i % 8)) & 1;
}

static void bit_set(uint8_t *b, uint64_t i)
{
	b[i / 8] |= (uint8_t)(1u << (i % 8));
}

static int is_done(const sweep *sw, uint64_t index)
{
	return sw->done != NULL && bit_get(sw->done, index);
}

static uint64_t seed_at(const sweep *sw, uint64_t index)
{
	return sw->o->seed_first + sw->shard + index * sw->shards;
}

/* child runs the seeds of the runs [next, end) that a resumed sweep did
 * not find in the trace, in order, each as `tlsim run --seed S` would,
 * writing a report frame to |fd| after each, and exits: 0 when every run
 * was reported. A run that crashes takes the child with it; the parent
 * records it and starts another child for the rest (read_slot). */
static void child(const sweep *sw, uint64_t next, uint64_t end, int fd,
		  pid_t parent)
{
	const sim_sweep_opts *o = sw->o;
	/* The arena saves a one-run child the faults of a heap of its own;
	 * a child of many runs faults its heap in once, and then glibc's
	 * allocator, faster than the arena's, serves it. */
	if (o->child_init != NULL && runs_per_child(o) == 1) {
		(void)o->child_init();
	}
	/* A sweep killed outright (SIGKILL of its process alone) takes its
	 * runs with it, rather than leaving them to finish unseen. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) {
		_exit(SIM_STATUS_INTERNAL);
	}
	/* Neither the parent nor this child has drawn from BoringSSL's RNG:
	 * the first run may take this thread, the others get threads of
	 * their own (sim/entropy.h). */
	sim_entropy_fresh_thread();
	size_t chains_sent = 0;
	for (uint64_t i = next; i < end; i++) {
		if (!is_done(sw, i) &&
		    report_run(o, sw->traced, seed_at(sw, i), fd,
			       &chains_sent) != 0) {
			_exit(SIM_STATUS_INTERNAL);
		}
	}
	_exit(0);
}

/* next_todo returns the first index from |i| on, before |end|, that is
 * to run (not found in the trace by --resume); |end| if none. */
static uint64_t next_todo(const sweep *sw, uint64_t i, uint64_t end)
{
	while (i < end && is_done(sw, i)) {
		i++;
	}
	return i;
}

/* spawn starts a child for slot |s|'s runs. */
static int spawn(sweep *sw, slot *s)
{
	int p[2];
	if (pipe(p) != 0) {
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		child(sw, s->next, s->end, p[1], parent);
	}
	close(p[1]);
	s->pid = pid;
	s->fd = p[0];
	s->in.len = 0;
	return 0;
}

/* store_failed says why writing the output failed (disk full, locked
 * by another writer...) and what it kept. The batch in progress, if
 * any, is gone. Returns -1. */
static int store_failed(sweep *sw)
{
	int code = sim_trace_error(sw->out);
	sw->status = code == 0 || code == SIM_EINTERNAL || code == SIM_ENOMEM
			 ? SIM_STATUS_INTERNAL
			 : SIM_STATUS_INPUT;
	sw->batch_runs = 0;
	snprintf(sw->err, sizeof(sw->err),
		 "tlsim sweep: %s; the %llu runs of this sweep committed "
		 "before are kept, and --resume runs the others",
		 sim_trace_errmsg(sw->out),
		 (unsigned long long)(sw->committed + sw->ndone));
	return -1;
}

/* store_begin opens a batch of runs in the output if none is open. */
static int store_begin(sweep *sw)
{
	if (sw->batch_runs > 0) {
		return 0;
	}
	if (sim_trace_batch_begin(sw->out) != 0) {
		return store_failed(sw);
	}
	sw->batch_start = wall_s();
	return 0;
}

static int store_commit(sweep *sw)
{
	if (sw->batch_runs == 0) {
		return 0;
	}
	uint64_t n = sw->batch_runs;
	sw->batch_runs = 0;
	if (sim_trace_batch_commit(sw->out) != 0) {
		return store_failed(sw);
	}
	sw->committed += n;
	return 0;
}

/* store_done notes a stored run; the batch commits when it is full or
 * old (wall clock: it decides when runs become visible, not what). */
static int store_done(sweep *sw, int64_t id)
{
	if (sw->first_id == 0) {
		sw->first_id = id;
	}
	sw->last_id = id;
	sw->batch_runs++;
	if (sw->batch_runs >= BATCH_RUNS ||
	    wall_s() - sw->batch_start >= BATCH_SECONDS) {
		return store_commit(sw);
	}
	return 0;
}

/* store_lost records a run that left no report: a run row with its
 * outcome and reason, no other rows. */
static int store_lost(sweep *sw, uint64_t seed, const char *outcome,
		      const char *reason)
{
	sim_run_info info = {.scenario = sw->o->run.path,
			     .scenario_sha256 = sw->o->run.sha256,
			     .seed = seed,
			     .params = sw->params,
			     .limits = sw->limits[0] ? sw->limits : NULL};
	sim_run_result res = {.outcome = outcome, .reason = reason};
	int64_t id = 0;
	if (store_begin(sw) != 0) {
		return -1;
	}
	if (sim_trace_begin(sw->out, &info) != 0 ||
	    sim_trace_end(sw->out, &res, NULL, &id) != 0) {
		return store_failed(sw); /* it ended the batch */
	}
	return store_done(sw, id);
}

static int store_spooled(sweep *sw, const uint8_t *rec, size_t len)
{
	int64_t id = 0;
	if (store_begin(sw) != 0) {
		return -1;
	}
	if (sim_trace_store_spooled(sw->out, rec, len, &id) != 0) {
		return store_failed(sw);
	}
	return store_done(sw, id);
}

/* count_run counts run |index| under its outcome and, for an error, a
 * crash or a limit, under its reason; its failed expectations are the
 * caller's.
 * Returns 0 or -1 (out of memory). */
static int count_run(sweep *sw, uint64_t index, const char *outcome,
		     const char *reason)
{
	uint64_t seed = seed_at(sw, index);
	int oom = groups_add(&sw->outcomes, outcome, seed, index);
	if (strcmp(outcome, "pass") == 0) {
		sw->pass++;
	} else if (!sw->have_bad || seed < sw->first_bad_seed) {
		sw->have_bad = 1;
		sw->first_bad_seed = seed;
	}
	if (!oom &&
	    (strcmp(outcome, "error") == 0 || strcmp(outcome, "crash") == 0 ||
	     strcmp(outcome, "limit") == 0)) {
		oom = groups_add(&sw->errors, reason[0] ? reason : "(none)",
				 seed, index);
	}
	return oom;
}

/* consume takes the report of run |index|: counts it and, traced, stores
 * it. Returns 0, or -1 with sw->err set. */
static int consume(sweep *sw, uint64_t index, const result *res)
{
	uint64_t seed = seed_at(sw, index);
	reader rd = {res->data.p, res->data.p + res->data.len, 0};
	char outcome[32], msg[1024], reason[1100];
	uint64_t have_run = get_u64(&rd);
	get_str(&rd, outcome, sizeof(outcome));
	get_str(&rd, msg, sizeof(msg));
	reader fl = rd; /* the failed expectations */
	uint64_t nfail = get_u64(&rd);
	for (uint64_t i = 0; i < nfail && !rd.bad; i++) {
		get_bytes(&rd, get_u64(&rd));
	}
	uint64_t reclen = get_u64(&rd);
	const uint8_t *rec = get_bytes(&rd, reclen);
	uint64_t chainslen = get_u64(&rd);
	const uint8_t *chains = get_bytes(&rd, chainslen);
	int ws = res->wstatus;
	if (!rd.bad && rd.p == rd.end && WIFEXITED(ws) && chainslen > 0) {
		/* Best effort: a chain not imported is made again. */
		(void)proto_pki_cache_import(chains, (size_t)chainslen);
	}
	if (rd.bad || rd.p != rd.end || !WIFEXITED(ws) || !have_run) {
		/* No run stands for it: say why. */
		const char *oc = "crash";
		for (char *p = msg; *p != '\0'; p++) {
			*p = *p == '\n' ? ' ' : *p;
		}
		if (WIFSIGNALED(ws)) {
			int sig = WTERMSIG(ws);
			const char *name = sigabbrev_np(sig);
			snprintf(reason, sizeof(reason), "signal %d (SIG%s)",
				 sig, name ? name : "?");
		} else {
			int code = WEXITSTATUS(ws);
			if (code == SIM_STATUS_INPUT) {
				oc = "error";
			}
			snprintf(reason, sizeof(reason), "exit %d: %s", code,
				 msg[0] ? msg : "no run recorded");
		}
		if (sw->traced && store_lost(sw, seed, oc, reason) != 0) {
			return -1;
		}
		snprintf(outcome, sizeof(outcome), "%s", oc);
		nfail = 0;
	} else {
		if (sw->traced && store_spooled(sw, rec, (size_t)reclen) != 0) {
			return -1;
		}
		snprintf(reason, sizeof(reason), "%s", msg);
	}
	int oom = count_run(sw, index, outcome, reason);
	fl.bad = 0;
	get_u64(&fl);
	for (uint64_t i = 0; i < nfail && !oom; i++) {
		char key[KEY_MAX];
		get_str(&fl, key, sizeof(key));
		oom = groups_add(&sw->fails, key, seed, index);
	}
	if (oom) {
		snprintf(sw->err, sizeof(sw->err), "out of memory");
		return -1;
	}
	return 0;
}

/* --- race queries -------------------------------------------------------- */

static int open_ro(const char *path, sqlite3 **db, char *err, size_t errlen)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		snprintf(err, errlen, "tlsim: %s: %s", path,
			 sqlite3_errmsg(*db));
		return SIM_STATUS_INTERNAL;
	}
	sqlite3_busy_timeout(*db, 2000);
	return 0;
}

/* --- resuming ----------------------------------------------------------- */

/* index_of returns the index of |seed| in the sweep, or UINT64_MAX for a
 * seed that is not one of its seeds. */
static uint64_t index_of(const sweep *sw, uint64_t seed)
{
	if (seed < sw->o->seed_first || seed > sw->o->seed_last) {
		return UINT64_MAX;
	}
	uint64_t off = seed - sw->o->seed_first;
	if (off < sw->shard || (off - sw->shard) % sw->shards != 0) {
		return UINT64_MAX;
	}
	uint64_t i = (off - sw->shard) / sw->shards;
	return i < sw->total ? i : UINT64_MAX;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? (const char *)v : "";
}

/* count_old counts run |id| (index |index|) of the trace, found by
 * load_done, as consume counts a run just made: outcome, reason and the
 * distinct messages of its failed expectations in the order they failed
 * (the child's FAILS_MAX and KEY_MAX apply). */
static int count_old(sweep *sw, sqlite3_stmt *runs, sqlite3_stmt *failed,
		     int64_t id, uint64_t index)
{
	char reason[1100], msg[FAILS_MAX][KEY_MAX];
	snprintf(reason, sizeof(reason), "%s", col_text(runs, 6));
	if (count_run(sw, index, col_text(runs, 5), reason) != 0) {
		return -1;
	}
	if (sqlite3_column_int64(runs, 7) == 0) {
		return 0; /* no failed expectation */
	}
	int n = 0, rc;
	sqlite3_bind_int64(failed, 1, id);
	while ((rc = sqlite3_step(failed)) == SQLITE_ROW && n < FAILS_MAX) {
		snprintf(msg[n], KEY_MAX, "%s", col_text(failed, 0));
		int seen = 0;
		for (int i = 0; i < n && !seen; i++) {
			seen = strcmp(msg[i], msg[n]) == 0;
		}
		if (!seen && groups_add(&sw->fails, msg[n++],
					seed_at(sw, index), index) != 0) {
			sqlite3_reset(failed);
			return -1;
		}
	}
	sqlite3_reset(failed);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : 1;
}

/* load_done, for --resume, finds the runs of this sweep already in the
 * trace: a run with the scenario's SHA-256, the same --set parameters, no
 * schedule and a seed of the sweep (of several for one seed, the first
 * by id). It counts each into the table as if it had just run and marks
 * its seed done. It refuses (exit status 2, one line) a trace holding a
 * seed of the sweep, with the same parameters, from a scenario file of
 * the same name with another SHA-256 (the scenario changed since), or
 * from this scenario run by another version of tlsim. Returns 0 or an
 * exit status with sw->err set. */
static int load_done(sweep *sw)
{
	const char *path = sw->out_path;
	sqlite3 *db = NULL;
	sqlite3_stmt *runs = NULL, *failed = NULL;
	int64_t max_id = 0;
	int status = open_ro(path, &db, sw->err, sizeof(sw->err));
	if (status != 0) {
		sqlite3_close(db);
		return status;
	}
	/* One read transaction: a consistent snapshot. */
	int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(db, "SELECT max(id) FROM run", -1,
					&runs, NULL);
	}
	if (rc == SQLITE_OK && sqlite3_step(runs) == SQLITE_ROW) {
		max_id = sqlite3_column_int64(runs, 0);
	}
	sqlite3_finalize(runs);
	runs = NULL;
	sw->done = calloc(sw->total / 8 + 1, 1);
	if (sw->o->nquery > 0) { /* which runs the queries count */
		sw->old_ids = calloc((size_t)(max_id / 8 + 1), 1);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(
		    db,
		    "SELECT id, seed, scenario, scenario_sha256, version, "
		    "outcome, reason, checks_failed FROM run WHERE params = "
		    "?1 AND limits IS ?2 AND schedule IS NULL ORDER BY id",
		    -1, &runs, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(db,
					"SELECT message FROM \"check\" WHERE "
					"run = ?1 AND ok = 0 ORDER BY seq",
					-1, &failed, NULL);
	}
	if (rc != SQLITE_OK || sw->done == NULL ||
	    (sw->o->nquery > 0 && sw->old_ids == NULL)) {
		snprintf(sw->err, sizeof(sw->err), "tlsim: %s: %s", path,
			 rc != SQLITE_OK ? sqlite3_errmsg(db)
					 : "out of memory");
		status =
		    rc == SQLITE_OK ? SIM_STATUS_INTERNAL : SIM_STATUS_INPUT;
	}
	sw->old_max_id = max_id;
	if (status == 0) {
		sqlite3_bind_text(runs, 1, sw->params, -1, SQLITE_STATIC);
		if (sw->limits[0] != '\0') {
			sqlite3_bind_text(runs, 2, sw->limits, -1,
					  SQLITE_STATIC);
		}
	}
	while (status == 0 && (rc = sqlite3_step(runs)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(runs, 0);
		uint64_t seed = (uint64_t)sqlite3_column_int64(runs, 1);
		uint64_t index = index_of(sw, seed);
		const char *sha = col_text(runs, 3);
		const char *version = col_text(runs, 4);
		if (index == UINT64_MAX || id < 1 || id > max_id) {
			continue;
		}
		if (strcmp(sha, sw->o->run.sha256) != 0) {
			if (strcmp(base_name(col_text(runs, 2)),
				   base_name(sw->o->run.path)) != 0) {
				continue; /* another scenario */
			}
			snprintf(sw->err, sizeof(sw->err),
				 "tlsim sweep: --resume: %s holds seed %llu "
				 "of this sweep from another version of %s "
				 "(SHA-256 %.16s..., now %.16s...); sweep "
				 "into a new trace",
				 path, (unsigned long long)seed,
				 base_name(sw->o->run.path), sha,
				 sw->o->run.sha256);
			status = SIM_STATUS_INPUT;
		} else if (strcmp(version, TLSIM_VERSION) != 0) {
			snprintf(sw->err, sizeof(sw->err),
				 "tlsim sweep: --resume: %s holds seed %llu "
				 "of this sweep run by tlsim %s, this is "
				 "tlsim %s; resume with that one or sweep "
				 "into a new trace",
				 path, (unsigned long long)seed, version,
				 TLSIM_VERSION);
			status = SIM_STATUS_INPUT;
		} else if (!bit_get(sw->done, index)) {
			bit_set(sw->done, index);
			if (sw->old_ids != NULL) {
				bit_set(sw->old_ids, (uint64_t)id);
			}
			sw->ndone++;
			int r = count_old(sw, runs, failed, id, index);
			if (r != 0) {
				snprintf(sw->err, sizeof(sw->err),
					 "tlsim: %s: %s", path,
					 r < 0 ? "out of memory"
					       : sqlite3_errmsg(db));
				status = r < 0 ? SIM_STATUS_INTERNAL
					       : SIM_STATUS_INPUT;
			}
		}
	}
	if (status == 0 && rc != SQLITE_DONE) {
		snprintf(sw->err, sizeof(sw->err), "tlsim: %s: %s", path,
			 sqlite3_errmsg(db));
		status = SIM_STATUS_INPUT;
	}
	sqlite3_finalize(runs);
	sqlite3_finalize(failed);
	sqlite3_close(db); /* ends the read transaction */
	return status;
}

/* run_queries counts, for each query, the swept runs it returns rows for,
 * with their first seeds (looked up in the run table). */
static int run_queries(sweep *sw)
{
	if (sw->o->nquery == 0 || (sw->first_id == 0 && sw->ndone == 0)) {
		return 0;
	}
	sqlite3 *db = NULL;
	sqlite3_stmt *seed = NULL;
	int status = open_ro(sw->out_path, &db, sw->err, sizeof(sw->err));
	/* The runs stored now, and (resumed) the runs found before. */
	struct {
		int64_t lo, hi;
		uint8_t *bits;
	} m = {.lo = sw->ndone > 0 ? 1 : sw->first_id,
	       .hi = sw->last_id > sw->old_max_id ? sw->last_id
						  : sw->old_max_id};
	size_t nbytes = (size_t)((m.hi - m.lo) / 8 + 1);
	if (status == 0 && ((m.bits = malloc(nbytes)) == NULL ||
			    sqlite3_prepare_v2(db,
					       "SELECT seed FROM run WHERE "
					       "id = ?1",
					       -1, &seed, NULL) != SQLITE_OK)) {
		snprintf(sw->err, sizeof(sw->err), "tlsim: %s: %s",
			 sw->out_path,
			 m.bits ? sqlite3_errmsg(db) : "out of memory");
		status = SIM_STATUS_INTERNAL;
	}
	for (int i = 0; status == 0 && i < sw->o->nquery; i++) {
		query *q = &sw->q[i];
		memset(m.bits, 0, nbytes);
		status = sim_query_match(db, &q->sq, m.lo, m.hi, m.bits,
					 sw->err, sizeof(sw->err)) == 0
			     ? 0
			     : SIM_STATUS_INPUT;
		for (int64_t id = m.lo; status == 0 && id <= m.hi; id++) {
			uint64_t k = (uint64_t)(id - m.lo);
			int now = sw->first_id != 0 && id >= sw->first_id &&
				  id <= sw->last_id;
			int before = sw->old_ids != NULL &&
				     id <= sw->old_max_id &&
				     bit_get(sw->old_ids, (uint64_t)id);
			if (!bit_get(m.bits, k) || !(now || before)) {
				continue;
			}
			/* The runs stored now are in seed order: past the
			 * first seeds, only count them. */
			int found = 0;
			if (sw->ndone > 0 || q->g.nseeds < SEEDS_SHOWN) {
				sqlite3_bind_int64(seed, 1, id);
				if (sqlite3_step(seed) == SQLITE_ROW) {
					found = 1;
					group_count(
					    &q->g,
					    (uint64_t)sqlite3_column_int64(seed,
									   0));
				}
				sqlite3_reset(seed);
			}
			if (!found) {
				q->g.count++;
			}
		}
	}
	sqlite3_finalize(seed);
	sqlite3_close(db);
	free(m.bits);
	return status;
}

/* --- the table ----------------------------------------------------------- */

static int print_table(sweep *sw)
{
	const sim_sweep_opts *o = sw->o;
	if (!o->quiet) {
		printf("%s", o->run.path);
		for (int i = 0; i < o->run.nset; i++) {
			printf(" --set %s=%s", o->run.set_key[i],
			       o->run.set_val[i]);
		}
		printf(", seeds %llu..%llu", (unsigned long long)o->seed_first,
		       (unsigned long long)o->seed_last);
		if (sw->shards > 1) {
			printf(" shard %llu/%llu",
			       (unsigned long long)sw->shard + 1,
			       (unsigned long long)sw->shards);
		}
		printf(": %llu runs\n", (unsigned long long)sw->total);
		printf("  %-8s %7s %7s\n", "outcome", "runs", "%");
		/* pass, fail, error, crash first, then any other by name. */
		if (sw->outcomes.n > 4) {
			qsort(sw->outcomes.g + 4, sw->outcomes.n - 4,
			      sizeof(group), cmp_key);
		}
		for (size_t i = 0; i < sw->outcomes.n; i++) {
			const group *g = &sw->outcomes.g[i];
			printf("  %-8s %7llu %6.1f%%\n", g->key,
			       (unsigned long long)g->count,
			       100.0 * (double)g->count / (double)sw->total);
		}
		print_groups(&sw->fails, "failed expectations", sw->total);
		print_groups(&sw->errors, "errors, crashes and limits",
			     sw->total);
		if (o->nquery > 0) {
			printf("race queries (runs with rows):\n");
		}
		for (int i = 0; i < o->nquery; i++) {
			sw->q[i].g.key = (char *)sw->q[i].sq.path;
			print_group(&sw->q[i].g, sw->total);
		}
		if (o->resume) {
			printf("resumed: %llu of the %llu runs were in %s "
			       "already\n",
			       (unsigned long long)sw->ndone,
			       (unsigned long long)sw->total, o->trace_path);
		}
		if (o->trace_path != NULL && sw->first_id != 0) {
			printf("trace: %s, runs %lld..%lld\n", o->trace_path,
			       (long long)sw->first_id, (long long)sw->last_id);
		} else if (o->trace_path != NULL) {
			printf("trace: %s, no new runs\n", o->trace_path);
		}
		if (sw->have_bad) {
			sim_sweep_reproduce(stdout, "", &o->run,
					    sw->first_bad_seed);
		}
	}
	fflush(stdout);
	return sw->pass == sw->total ? SIM_STATUS_PASS : SIM_STATUS_FAIL;
}

/* ready_run hands run |index|'s report (|n| bytes at |p|) and the
 * status its child gave it to |results|. Returns 0 or -1 (out of
 * memory). */
static int ready_run(result *results, uint64_t window, uint64_t index,
		     const uint8_t *p, size_t n, int wstatus)
{
	result *r = &results[index % window];
	r->data.len = 0;
	if (buf_put(&r->data, p, n) != 0) {
		return -1;
	}
	r->wstatus = wstatus;
	r->ready = 1;
	return 0;
}

/* take_frames hands each whole frame in slot |s|'s buffer to |results|,
 * as the report of the slot's next run, and keeps the rest. Returns 0 or
 * -1 (out of memory). */
static int take_frames(const sweep *sw, slot *s, result *results,
		       uint64_t window)
{
	size_t off = 0;
	for (;;) {
		reader rd = {s->in.p + off, s->in.p + s->in.len, 0};
		uint64_t len = get_u64(&rd);
		uint64_t status = get_u64(&rd);
		if (rd.bad || (uint64_t)(rd.end - rd.p) < len) {
			break;
		}
		s->next = next_todo(sw, s->next, s->end);
		if (SIM_NEVER(s->next == s->end)) {
			break; /* more frames than runs: left to EOF */
		}
		/* An exit status as waitpid gives it: a run's own status
		 * reads as if its child had exited with it. */
		if (ready_run(results, window, s->next, rd.p, (size_t)len,
			      (int)(status & 0xff) << 8) != 0) {
			return -1;
		}
		s->next++;
		off += FRAME_HEAD + (size_t)len;
	}
	memmove(s->in.p, s->in.p + off, s->in.len - off);
	s->in.len -= off;
	return 0;
}

/* read_slot reads what slot |s|'s child wrote, handing over each run's
 * report as it is whole. At its end of file, waits for the child; if a
 * run was left without a report (the child crashed or was killed while
 * making it), that run gets the child's exit status and no report, and
 * the slot keeps the runs after it for a new child (fill_slots). Returns
 * 1 when the child is done, 0 to read on, -1 out of memory. */
static int read_slot(const sweep *sw, slot *s, result *results,
		     uint64_t window)
{
	if (buf_reserve(&s->in, s->in.len + READ_CHUNK) != 0) {
		return -1;
	}
	ssize_t n = read(s->fd, s->in.p + s->in.len, READ_CHUNK);
	if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
		return 0;
	}
	if (n > 0) {
		s->in.len += (size_t)n;
		return take_frames(sw, s, results, window);
	}
	/* End of file (or a read error: the report is then incomplete and
	 * the run is recorded as lost). */
	close(s->fd);
	int ws = 0;
	while (waitpid(s->pid, &ws, 0) < 0 && errno == EINTR) {
	}
	s->pid = 0;
	s->in.len = 0;
	s->next = next_todo(sw, s->next, s->end);
	if (s->next < s->end) {
		if (ready_run(results, window, s->next, NULL, 0, ws) != 0) {
			return -1;
		}
		s->next = next_todo(sw, s->next + 1, s->end);
	}
	return 1;
}

/* fill_slots starts a child for each slot with runs left (after a
 * crash), then gives the free slots the next runs, up to
 * runs_per_child each, as far as the window allows. Returns 0, or 1
 * with sw->err set. */
static int fill_slots(sweep *sw, slot *slots, uint64_t *launched,
		      uint64_t consumed, uint64_t window)
{
	uint64_t per = runs_per_child(sw->o);
	for (int k = 0; k < sw->o->jobs; k++) {
		slot *s = &slots[k];
		if (s->pid == 0 && s->next < s->end && spawn(sw, s) != 0) {
			goto fail;
		}
	}
	int k = 0;
	for (;;) {
		*launched = next_todo(sw, *launched, sw->total);
		uint64_t limit = consumed + window < sw->total
				     ? consumed + window
				     : sw->total;
		if (*launched >= limit) {
			break;
		}
		while (k < sw->o->jobs &&
		       (slots[k].pid != 0 || slots[k].next < slots[k].end)) {
			k++;
		}
		if (k == sw->o->jobs) {
			break;
		}
		uint64_t end = *launched, runs = 0;
		while (end < limit && runs < per) {
			runs += !is_done(sw, end);
			end++;
		}
		slots[k].next = *launched;
		slots[k].end = end;
		if (spawn(sw, &slots[k]) != 0) {
			slots[k].end = slots[k].next;
			goto fail;
		}
		*launched = end;
	}
	return 0;
fail:
	snprintf(sw->err, sizeof(sw->err), "tlsim sweep: cannot start a run: %s",
		 strerror(errno));
	return 1;
}

/* consume_ready counts (and stores) the finished runs that are next in
 * seed order, passing over those a resumed sweep found in the trace.
 * Returns 0, or 1 with sw->err set. */
static int consume_ready(sweep *sw, result *results, uint64_t window,
			 uint64_t *consumed, uint64_t *ran, progress *pg)
{
	while (*consumed < sw->total) {
		if (!is_done(sw, *consumed)) {
			result *r = &results[*consumed % window];
			if (!r->ready) {
				break;
			}
			if (consume(sw, *consumed, r) != 0) {
				return 1;
			}
			r->ready = 0;
			r->data.len = 0;
			if (r->data.cap > ((size_t)1 << 20)) {
				free(r->data.p); /* a large run's buffer */
				r->data = (buf){0};
			}
			(*ran)++;
			if (!sw->o->quiet) {
				show_progress(pg, *ran, sw->total - sw->ndone);
			}
		}
		(*consumed)++;
	}
	return 0;
}

int sim_sweep(const sim_sweep_opts *o)
{
	sweep *sw = calloc(1, sizeof(*sw));
	char tmpdir[PATH_MAX] = "", tmpout[PATH_MAX];
	if (sw == NULL) {
		fprintf(stderr, "tlsim: out of memory\n");
		return SIM_STATUS_INTERNAL;
	}
	sw->o = o;
	uint64_t span = o->seed_last - o->seed_first + 1;
	sw->shards = o->shard_count ? o->shard_count : 1;
	sw->shard = o->shard_index;
	/* The seeds of this shard: first + shard + k * shards. */
	sw->total = sw->shard < span
			? (span - sw->shard + sw->shards - 1) / sw->shards
			: 0;
	if (o->jobs < 1 || o->jobs > SIM_SWEEP_MAX_JOBS ||
	    o->seed_last < o->seed_first || sw->total > SIM_SWEEP_MAX_RUNS ||
	    sw->total == 0 || o->nquery < 0 ||
	    o->nquery > SIM_SWEEP_MAX_QUERIES) {
		fprintf(stderr, "tlsim sweep: bad jobs, seed range or shard "
				"(a shard with no seeds)\n");
		free(sw);
		return SIM_STATUS_INPUT;
	}
	if (o->resume && o->trace_path == NULL) {
		fprintf(stderr, "tlsim sweep: --resume needs --trace FILE\n");
		free(sw);
		return SIM_STATUS_INPUT;
	}
	int status = 0;
	for (int i = 0; status == 0 && i < o->nquery; i++) {
		int rc = sim_query_load(&sw->q[i].sq, o->query[i],
					"tlsim sweep", sw->err,
					sizeof(sw->err));
		status = rc == 0		 ? 0
			 : rc == SIM_ENOMEM ? SIM_STATUS_INTERNAL
					    : SIM_STATUS_INPUT;
	}
	sw->traced = o->trace_path != NULL || o->nquery > 0;
	sw->out_path = o->trace_path;
	if (status == 0 && sw->traced && o->trace_path == NULL) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tlsim-sweep.XXXXXX",
			 t && *t ? t : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			snprintf(sw->err, sizeof(sw->err),
				 "tlsim: cannot create a directory in %s: %s",
				 t && *t ? t : "/tmp", strerror(errno));
			tmpdir[0] = '\0';
			status = SIM_STATUS_INTERNAL;
		} else {
			/* Bounded, so that the name provably fits. */
			snprintf(tmpout, sizeof(tmpout), "%.*s/sweep.db",
				 (int)(sizeof(tmpout) - sizeof("/sweep.db")),
				 tmpdir);
			sw->out_path = tmpout;
		}
	}
	if (status == 0 && sw->traced) {
		char err[1024];
		int rc =
		    sim_trace_open(sw->out_path, &sw->out, err, sizeof(err));
		if (rc != 0) {
			snprintf(sw->err, sizeof(sw->err), "tlsim: %s", err);
			status = rc == SIM_EINTERNAL || rc == SIM_ENOMEM
				     ? SIM_STATUS_INTERNAL
				     : SIM_STATUS_INPUT;
		}
	}
	if (status == 0 && o->nquery > 0) {
		/* Check the queries before the runs, not after them. */
		sqlite3 *db = NULL;
		status = open_ro(sw->out_path, &db, sw->err, sizeof(sw->err));
		for (int i = 0; status == 0 && i < o->nquery; i++) {
			status = sim_query_check(db, &sw->q[i].sq, sw->err,
						 sizeof(sw->err)) == 0
				     ? 0
				     : SIM_STATUS_INPUT;
		}
		sqlite3_close(db);
	}
	sim_lua_params(&o->run, sw->params, sizeof(sw->params));
	sim_lua_limits(&o->run, sw->limits, sizeof(sw->limits));
	static const char *const fixed[] = {"pass", "fail", "error", "crash"};
	for (int i = 0; status == 0 && i < 4; i++) {
		if (groups_add(&sw->outcomes, fixed[i], UINT64_MAX, 0) != 0) {
			snprintf(sw->err, sizeof(sw->err), "out of memory");
			status = SIM_STATUS_INTERNAL;
		}
	}
	if (status == 0 && o->resume) {
		status = load_done(sw);
	}

	uint64_t per = runs_per_child(o);
	uint64_t window = (WINDOW_PER_JOB + per) * (uint64_t)o->jobs + 8;
	slot *slots = calloc((size_t)o->jobs, sizeof(*slots));
	result *results = calloc(window, sizeof(*results));
	struct pollfd *pfd = calloc((size_t)o->jobs, sizeof(*pfd));
	int *pslot = calloc((size_t)o->jobs, sizeof(*pslot));
	sw->slots = slots;
	sw->results = results;
	sw->pfd = pfd;
	sw->pslot = pslot;
	if (status == 0 && (slots == NULL || results == NULL || pfd == NULL ||
			    pslot == NULL)) {
		snprintf(sw->err, sizeof(sw->err), "out of memory");
		status = SIM_STATUS_INTERNAL;
	}

	/* glibc's time zone, which gmtime (certificate times) reads from
	 * /etc/localtime on first use: once here rather than in every
	 * child (about 6 page faults each). */
	tzset();
	/* The scenario compiled once, not in every child (3% of a short
	 * QUIC run); a source that does not compile is left to the
	 * children, which report it as a run does. */
	sim_sweep_opts ro = *o;
	char *bytecode = NULL;
	if (sim_lua_compile(&o->run, &bytecode, &ro.run.bytecode_len) == 0) {
		ro.run.bytecode = bytecode;
		sw->o = &ro;
	}
	progress pg = {.tty = isatty(2), .start = wall_s()};
	pg.last = pg.start;
	uint64_t launched = 0, consumed = 0, ran = 0;
	int broken = status != 0;
	while (!broken && consumed < sw->total) {
		/* Start the next runs before storing and counting the
		 * finished ones, so that those overlap the runs. */
		uint64_t before = consumed;
		broken =
		    fill_slots(sw, slots, &launched, consumed, window) ||
		    consume_ready(sw, results, window, &consumed, &ran, &pg);
		if (broken || consumed == sw->total) {
			break;
		}
		if (consumed != before) {
			continue; /* the window moved: start more first */
		}
		int np = 0;
		for (int k = 0; k < o->jobs; k++) {
			if (slots[k].pid != 0) {
				pfd[np].fd = slots[k].fd;
				pfd[np].events = POLLIN;
				pfd[np].revents = 0;
				pslot[np++] = k;
			}
		}
		if (SIM_NEVER(np == 0)) { /* runs are due: one is running */
			snprintf(sw->err, sizeof(sw->err),
				 "tlsim sweep: internal error: no run to wait "
				 "for");
			broken = 1;
			break;
		}
		/* An open batch is committed after BATCH_SECONDS even while
		 * no run finishes (slow runs): what a kill can lose, and how
		 * long the write lock is held, stay bounded. */
		int timeout = -1;
		if (sw->batch_runs > 0) {
			double left =
			    sw->batch_start + BATCH_SECONDS - wall_s();
			timeout = left <= 0 ? 0 : (int)(left * 1000) + 1;
		}
		/* Children of many runs write a report per run: waiting in
		 * poll, the sweep would be woken (another CPU interrupted)
		 * for each. A short nap first lets their reports gather in
		 * the pipes, to be read together; not while a report is half
		 * read (a traced run's can be larger than a pipe holds, and
		 * its child waits). */
		int partial = 0;
		for (int k = 0; k < o->jobs; k++) {
			partial |= slots[k].pid != 0 && slots[k].in.len > 0;
		}
		if (per > 1 && !partial && timeout != 0) {
			struct timespec nap = {0, NAP_NS};
			nanosleep(&nap, NULL);
		}
		int ready = poll(pfd, (nfds_t)np, timeout);
		if (ready < 0) {
			if (errno == EINTR) {
				continue;
			}
			snprintf(sw->err, sizeof(sw->err),
				 "tlsim sweep: poll: %s", strerror(errno));
			broken = 1;
			break;
		}
		if (ready == 0) {
			broken = store_commit(sw) != 0;
			continue;
		}
		for (int i = 0; i < np && !broken; i++) {
			if (pfd[i].revents != 0 &&
			    read_slot(sw, &slots[pslot[i]], results, window) <
				0) {
				snprintf(sw->err, sizeof(sw->err),
					 "out of memory");
				broken = 1;
			}
		}
	}
	for (int k = 0; slots != NULL && k < o->jobs; k++) {
		if (slots[k].pid != 0) { /* after a failure: stop its run */
			kill(slots[k].pid, SIGKILL);
			close(slots[k].fd);
			while (waitpid(slots[k].pid, NULL, 0) < 0 &&
			       errno == EINTR) {
			}
		}
	}
	if (!broken && sw->traced && store_commit(sw) != 0) {
		broken = 1;
	}
	if (!broken && (status = run_queries(sw)) != 0) {
		broken = 1;
	}
	if (broken) {
		fprintf(stderr, "%s\n", sw->err);
		status = status       ? status
			 : sw->status ? sw->status
				      : SIM_STATUS_INTERNAL;
	} else {
		status = print_table(sw);
	}
	sim_trace_close(sw->out);
	for (int k = 0; slots != NULL && k < o->jobs; k++) {
		free(slots[k].in.p);
	}
	for (uint64_t i = 0; results != NULL && i < window; i++) {
		free(results[i].data.p);
	}
	free(sw->done);
	free(sw->old_ids);
	free(slots);
	free(results);
	free(pfd);
	free(pslot);
	free(bytecode);
	groups_free(&sw->outcomes);
	groups_free(&sw->fails);
	groups_free(&sw->errors);
	for (int i = 0; i < o->nquery; i++) {
		sim_query_free(&sw->q[i].sq);
	}
	if (tmpdir[0] != '\0') {
		remove_trace(tmpout);
		rmdir(tmpdir);
	}
	free(sw);
	return status;
}

/* sim/main.c: the tlsim command line. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <sqlite3.h>
#include <unistd.h>

#include "sim/arena.h"
#include "sim/entropy.h"
#include "sim/err.h"
#include "sim/explore.h"
#include "sim/lua.h"
#include "sim/merge.h"
#include "sim/pcap.h"
#include "sim/races.h"
#include "sim/report.h"
#include "sim/rowdiff.h"
#include "sim/schedule.h"
#include "sim/shrink.h"
#include "sim/sweep.h"
#include "sim/trace.h"

#define MAX_SCENARIO_BYTES (16u << 20)

static const char usage_main[] =
	"usage: tlsim COMMAND [ARGS]\n"
	"\n"
	"tlsim is a deterministic discrete-event network simulator for\n"
	"hunting race conditions in secure transports.\n"
	"\n"
	"commands:\n"
	"  run SCENARIO.lua [options]   run a scenario once\n"
	"  sweep SCENARIO.lua --seeds A..B [options]\n"
	"                               run it for every seed in A..B\n"
	"  merge OUT.db IN.db...        append the runs of traces to OUT\n"
	"  explore SCENARIO.lua [--strategy random|pct|exhaustive]\n"
	"                               explore orderings of one seed\n"
	"  shrink SCENARIO.lua --seed N smallest schedule of faults and\n"
	"                               choices that still fails the same way\n"
	"  replay TRACE.db --run ID     re-run a recorded run, check its digest\n"
	"  diff A.db[:RUN] B.db[:RUN]   the first row where two runs differ\n"
	"  races TRACE.db               which concurrent order separates\n"
	"                               failing runs from passing ones\n"
	"  pcap TRACE.db -o OUT.pcapng  a run as a capture for Wireshark\n"
	"  report TRACE.db [--run ID] [--html OUT.html]\n"
	"                               outcome, race queries, ladder diagram\n"
	"\n"
	"  tlsim --help, tlsim COMMAND --help, tlsim --version\n"
	"\n"
	"exit status: 0 every expectation held, 1 an expectation failed,\n"
	"2 usage, scenario or input error, 3 internal error.\n";

static const char usage_run[] =
	"usage: tlsim run SCENARIO.lua [options]\n"
	"       tlsim run SCHEDULE [options]\n"
	"\n"
	"Runs the scenario once and prints a summary. A SCHEDULE file (as\n"
	"'tlsim shrink' writes: first line '# tlsim schedule 1') names the\n"
	"scenario, seed and parameters and forces its choices and faults.\n"
	"\n"
	"options:\n"
	"  --seed N              run seed (overrides the scenario's; default:\n"
	"                        the scenario's, else 1)\n"
	"  --trace FILE          record the run in the SQLite trace FILE\n"
	"                        (created if missing; runs are appended)\n"
	"  --set KEY=VALUE       scenario parameter, visible as arg.KEY\n"
	"                        (repeatable)\n"
	"  --schedule FILE       force the choices and link faults in FILE\n"
	"                        (the text of a trace's run.schedule)\n"
	"  -q, --quiet           print nothing but errors\n"
	"  -v, --verbose         print endpoint events and passing checks\n"
	"  --max-instructions N  Lua instruction budget (default 200000000)\n"
	"  --max-memory BYTES    Lua memory cap, suffix k/M/G (default 512M)\n"
	"  --livelock-events N   events at one virtual time before a run is\n"
	"                        declared livelocked (default 1000000)\n"
	"  --max-events N        scheduler events in the run (default\n"
	"                        100000000)\n"
	"  --max-time DURATION   virtual time (default 24h)\n"
	"  --max-inflight N      packets in flight on one link (default\n"
	"                        1000000)\n"
	"  --max-queued-ops N    operations waiting in one endpoint queue\n"
	"                        (default 1000000)\n"
	"  --max-rows N          trace rows in the run (default 10000000)\n"
	"                        A run that reaches a --max-* cap ends there\n"
	"                        with outcome 'limit' naming it (exit 1).\n"
	"  -h, --help            this help\n";

static const char usage_sweep[] =
	"usage: tlsim sweep SCENARIO.lua --seeds A..B [options]\n"
	"\n"
	"Runs the scenario once for every seed in A..B (inclusive), each run\n"
	"in its own child process exactly as 'tlsim run --seed S' would, and\n"
	"prints a table of outcomes and failed expectations with the seeds\n"
	"that reproduce them.\n"
	"\n"
	"options:\n"
	"  --seeds A..B          seed range (at most 10,000,000 runs)\n"
	"  --jobs N              runs at once, 1 to 256 (default 1); the\n"
	"                        trace is the same whatever N is\n"
	"  --runs-per-child N    runs each child makes in a row, 1 to\n"
	"                        100000 (default 1: a child per run); more\n"
	"                        save the fork and the child's page faults\n"
	"                        and give the same trace, but a run that\n"
	"                        corrupts memory may change the runs after\n"
	"                        it in its child (a crash is still recorded\n"
	"                        alone); with --trace up to N x jobs runs'\n"
	"                        rows may wait in memory for an earlier run\n"
	"  --shard I/N           run only shard I of N (1 <= I <= N): the\n"
	"                        seeds A+I-1, A+I-1+N, ...; 'tlsim merge' of\n"
	"                        all N shards' traces equals the whole sweep\n"
	"  --trace FILE          append the runs to the SQLite trace FILE in\n"
	"                        seed order (without it no rows are made)\n"
	"  --resume              with --trace: run only the seeds whose runs\n"
	"                        are not in FILE yet (same scenario SHA-256\n"
	"                        and --set), e.g. after the sweep was killed;\n"
	"                        the table covers the whole sweep\n"
	"  --query FILE.sql      after the runs, count the runs this race\n"
	"                        query returns rows for (repeatable; its\n"
	"                        first column is the run id; without\n"
	"                        --trace the runs go to a temporary trace)\n"
	"  --set KEY=VALUE       scenario parameter (repeatable)\n"
	"  -q, --quiet           no progress and no table\n"
	"  --max-instructions N, --max-memory BYTES, --livelock-events N,\n"
	"  --max-events N, --max-time D, --max-inflight N, --max-queued-ops N,\n"
	"  --max-rows N          as for 'tlsim run'\n"
	"  -h, --help            this help\n"
	"\n"
	"exit status: 0 every run passed, 1 a run failed, errored or\n"
	"crashed, 2 usage or input error, 3 internal error.\n";

static const char usage_explore[] =
	"usage: tlsim explore SCENARIO.lua [options]\n"
	"\n"
	"Keeps one seed (its link faults) and explores the orderings of\n"
	"simultaneous events: at each choice point (several events due at\n"
	"the same virtual time) which one runs first. Each schedule runs in\n"
	"its own child process without tracing; every failing one is run\n"
	"again into the trace with its choices, for 'tlsim replay'.\n"
	"\n"
	"options:\n"
	"  --strategy S          random (default): a uniform pick at each\n"
	"                        choice point; pct: chain priorities with\n"
	"                        depth-1 change points; exhaustive: every\n"
	"                        schedule at most --depth choices away from\n"
	"                        the seed's, fewest first\n"
	"  --runs N              schedules to try after the seed's own\n"
	"                        (default 1000)\n"
	"  --depth D             pct: bug depth (default 3); exhaustive:\n"
	"                        deviations (default 1); 1 to 16\n"
	"  --seed N              the seed (default: the scenario's)\n"
	"  --jobs N              runs at once, 1 to 256 (default 1); the\n"
	"                        results are the same whatever N is\n"
	"  --trace FILE          where failing schedules are saved\n"
	"                        (default explore.db)\n"
	"  --stop-first          stop at the first failing schedule\n"
	"  --set KEY=VALUE       scenario parameter (repeatable)\n"
	"  -q, --quiet           no progress and no table\n"
	"  --max-instructions N, --max-memory BYTES, --livelock-events N,\n"
	"  --max-events N, --max-time D, --max-inflight N, --max-queued-ops N,\n"
	"  --max-rows N          as for 'tlsim run'\n"
	"\n"
	"exit status: 0 every schedule passed, 1 one failed, 2 usage or\n"
	"input error, 3 internal error.\n";

static const char usage_shrink[] =
	"usage: tlsim shrink SCENARIO.lua --seed N [options]\n"
	"\n"
	"Records the failing run of seed N as a schedule (every random link\n"
	"fault it drew and every simultaneous-event choice its tie keys made\n"
	"out of scheduling order) and removes decisions (delta debugging)\n"
	"until removing any one more makes the run pass or fail otherwise.\n"
	"Writes a schedule file that 'tlsim run FILE' runs.\n"
	"\n"
	"options:\n"
	"  --seed N              the failing seed (required)\n"
	"  -o, --out FILE        the schedule file (default NAME-seedN.sched\n"
	"                        in the current directory)\n"
	"  --jobs N              candidate runs at once, 1 to 256 (default\n"
	"                        1); the result is the same whatever N is\n"
	"  --max-runs N          budget of candidate runs (default 5000)\n"
	"  --set KEY=VALUE       scenario parameter (repeatable)\n"
	"  -q, --quiet           print nothing but errors\n"
	"  --max-instructions N, --max-memory BYTES, --livelock-events N,\n"
	"  --max-events N, --max-time D, --max-inflight N, --max-queued-ops N,\n"
	"  --max-rows N          as for 'tlsim run'\n"
	"\n"
	"exit status: 0 written and checked, 2 usage or input error (e.g.\n"
	"the seed passes), 3 internal error.\n";

static const char usage_replay[] =
	"usage: tlsim replay TRACE.db --run ID [-q]\n"
	"\n"
	"Re-runs run ID of the trace (its scenario file, seed and --set\n"
	"parameters, as recorded) and checks that the new run's digest equals\n"
	"the recorded one. Refuses if the scenario file changed since (by\n"
	"SHA-256). On a mismatch, names the first row that differs.\n"
	"\n"
	"exit status: 0 the digest matches, 1 it does not, 2 usage or input\n"
	"error (no such run, scenario changed or missing), 3 internal error.\n";

static const char usage_report[] =
	"usage: tlsim report TRACE.db [--run ID] [options]\n"
	"\n"
	"Shows one run of a trace: its outcome and expectations, the verdict\n"
	"of every race query (*.sql) run against it, and a ladder diagram:\n"
	"one column per endpoint, virtual time (ms) down the side, each\n"
	"datagram or segment an arrow (lost ones end in an X, the packets\n"
	"of a QUIC datagram below it), operation-queue steps and TLS changes\n"
	"in their endpoint's column.\n"
	"\n"
	"options:\n"
	"  --run ID          the run (default: the last run in the trace)\n"
	"  --list            list the trace's runs instead\n"
	"  --html OUT.html   write the report as one self-contained page\n"
	"                    (inline SVG and script; zoom, filter, hover)\n"
	"  --queries DIR     race queries to run (default: scripts/queries\n"
	"                    beside the executable's directory or one of its\n"
	"                    three parents, else in the current directory);\n"
	"                    each runs restricted to the run: its first\n"
	"                    column must be the run id\n"
	"  --no-queries      run none\n"
	"  --from T, --to T  only rows in this window of virtual time (ms,\n"
	"                    or a duration such as 1.5s)\n"
	"  --limit N         at most N ladder rows (default 10000)\n"
	"  --states          also BoringSSL handshake-state and key-log rows\n"
	"  --width N         columns (default: $COLUMNS, the terminal's, 100)\n"
	"  --color WHEN      auto (on a terminal), always or never\n"
	"  --ascii           draw with ASCII only\n"
	"  -h, --help        this help\n"
	"\n"
	"exit status: 0 the report was written, 2 usage or input error (not\n"
	"a tlsim trace, no such run, an output that cannot be written),\n"
	"3 internal error.\n";

static int cmd_report(int argc, char **argv)
{
	return sim_report_cli(argc, argv, usage_report);
}

static const char usage_merge[] =
	"usage: tlsim merge OUT.db IN.db...\n"
	"\n"
	"Appends every run of each input (in order, runs in id order) to\n"
	"OUT (created if missing) under new run ids, then recomputes each\n"
	"copied run's digest and checks it against the input's.\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "tlsim%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'tlsim %s%s--help')\n", cmd ? cmd : "",
		cmd ? " " : "");
	return SIM_STATUS_INPUT;
}

/* Parses a non-negative integer; 0 on success. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-') {
		return -1;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0') {
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-') {
		return -1;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1;
	if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0) {
		mul = 1ULL << 10;
	} else if (strcmp(end, "M") == 0) {
		mul = 1ULL << 20;
	} else if (strcmp(end, "G") == 0) {
		mul = 1ULL << 30;
	} else if (*end != '\0') {
		return -1;
	}
	if (errno != 0 || v > UINT64_MAX / mul) {
		return -1;
	}
	*out = v * mul;
	return 0;
}

/* read_file reads |path| (at most MAX_SCENARIO_BYTES); |what| names it in
 * messages ("scenario", "schedule"). */
static char *read_file(const char *path, const char *what, size_t *len,
		       char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read %s '%s': %s", what, path,
			 strerror(errno));
		return NULL;
	}
	char *buf = malloc(MAX_SCENARIO_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t n = fread(buf, 1, MAX_SCENARIO_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "cannot read %s '%s': %s", what, path,
			 strerror(errno));
		free(buf);
		return NULL;
	}
	if (n > MAX_SCENARIO_BYTES) {
		snprintf(err, errlen, "%s '%s' is larger than %u bytes", what,
			 path, MAX_SCENARIO_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
}

/* The options of run and sweep. */
typedef struct run_args {
	sim_lua_opts o;
	const char *trace_path;
	char *setbuf[SIM_LUA_MAX_SET];
	int have_seeds; /* sweep only: --seeds, --jobs */
	uint64_t seed_first, seed_last;
	uint64_t jobs;
	uint64_t shard_index, shard_count; /* sweep only: --shard I/N */
	const char *schedule_path;         /* run only: --schedule FILE */
	int strategy, depth, stop_first;   /* explore only */
	uint64_t runs;
	const char *out_path;              /* shrink only: -o FILE */
	sim_schedule *schedule;
	sim_schedule_file file; /* SCENARIO was a schedule file */
	char file_path[PATH_MAX];
	int have_file;
	const char *query[SIM_SWEEP_MAX_QUERIES]; /* sweep only: --query */
	int resume;                               /* sweep only: --resume */
	uint64_t runs_per_child; /* sweep only: --runs-per-child */
	int nquery;
} run_args;

static void run_args_free(run_args *a)
{
	free((char *)a->o.source);
	a->o.source = NULL;
	for (int i = 0; i < a->o.nset; i++) {
		free(a->setbuf[i]);
	}
	sim_schedule_del(a->schedule);
	if (a->have_file) {
		sim_schedule_file_free(&a->file);
	}
}

/* Parses "A..B". */
/* parse_shard reads "I/N" with 1 <= I <= N <= 1,000,000. */
static int parse_shard(const char *v, uint64_t *index, uint64_t *count)
{
	char *end;
	if (v == NULL || *v < '0' || *v > '9') {
		return -1;
	}
	unsigned long long i = strtoull(v, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9') {
		return -1;
	}
	unsigned long long n = strtoull(end + 1, &end, 10);
	if (*end != '\0' || i < 1 || i > n || n > 1000000) {
		return -1;
	}
	*index = i;
	*count = n;
	return 0;
}

static int parse_range(const char *s, uint64_t *a, uint64_t *b)
{
	const char *dots = s ? strstr(s, "..") : NULL;
	char first[32];
	if (dots == NULL || (size_t)(dots - s) >= sizeof(first)) {
		return -1;
	}
	memcpy(first, s, (size_t)(dots - s));
	first[dots - s] = '\0';
	return parse_u64(first, a) != 0 || parse_u64(dots + 2, b) != 0 ||
		       *b < *a
		   ? -1
		   : 0;
}

/* Parses the arguments of |cmd| (run or sweep) into |a|. Returns -1 to go
 * on, else the exit status. */
static int parse_args(const char *cmd, int argc, char **argv, run_args *a)
{
	sim_lua_opts *op = &a->o;
	int sweep = strcmp(cmd, "sweep") == 0;
	int explore = strcmp(cmd, "explore") == 0;
	int shrink = strcmp(cmd, "shrink") == 0;
	int run = !sweep && !explore && !shrink;
	op->verbosity = 1;
	a->jobs = 1;
	a->runs = shrink ? 5000 : 1000;
	a->depth = -1;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		/* --opt=value spelling */
		char opt[64];
		const char *eq = strchr(arg, '=');
		if (arg[0] == '-' && arg[1] == '-' && eq != NULL &&
		    (size_t)(eq - arg) < sizeof(opt)) {
			memcpy(opt, arg, (size_t)(eq - arg));
			opt[eq - arg] = '\0';
			arg = opt;
			v = eq + 1;
			i--; /* no separate value to skip */
		}
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			fputs(sweep	? usage_sweep
			      : explore ? usage_explore
			      : shrink	? usage_shrink
					: usage_run,
			      stdout);
			return 0;
		} else if (strcmp(arg, "-q") == 0 ||
			   strcmp(arg, "--quiet") == 0) {
			op->verbosity = 0;
		} else if (run && (strcmp(arg, "-v") == 0 ||
				   strcmp(arg, "--verbose") == 0)) {
			op->verbosity = 2;
		} else if (sweep && strcmp(arg, "--seeds") == 0) {
			if (parse_range(v, &a->seed_first, &a->seed_last) !=
				0 ||
			    a->seed_last - a->seed_first >=
				SIM_SWEEP_MAX_RUNS) {
				return usage_error(
				    cmd,
				    "--seeds needs A..B with A <= "
				    "B and at most 10000000 "
				    "seeds, got '%s'",
				    v ? v : "");
			}
			a->have_seeds = 1;
			i++;
		} else if (sweep && strcmp(arg, "--shard") == 0) {
			if (parse_shard(v, &a->shard_index, &a->shard_count) !=
			    0) {
				return usage_error(
				    cmd,
				    "--shard needs I/N with 1 <= I <= N, "
				    "got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (explore && strcmp(arg, "--strategy") == 0) {
			a->strategy =
				v ? sim_explore_strategy_parse(v) : -1;
			if (a->strategy < 0) {
				return usage_error(
				    cmd,
				    "--strategy must be random, pct or "
				    "exhaustive, got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (shrink && (strcmp(arg, "-o") == 0 ||
				      strcmp(arg, "--out") == 0)) {
			if (v == NULL || *v == '\0') {
				return usage_error(cmd, "-o needs a file%s",
						   "");
			}
			a->out_path = v;
			i++;
		} else if ((explore && strcmp(arg, "--runs") == 0) ||
			   (shrink && strcmp(arg, "--max-runs") == 0)) {
			if (parse_u64(v, &a->runs) != 0 || a->runs == 0 ||
			    a->runs > SIM_EXPLORE_MAX_RUNS) {
				return usage_error(
				    cmd,
				    "--runs and --max-runs need an integer "
				    "from 1 to 10000000, got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (explore && strcmp(arg, "--depth") == 0) {
			uint64_t d;
			if (parse_u64(v, &d) != 0 || d < 1 ||
			    d > SIM_SCHEDULE_MAX_DEPTH) {
				return usage_error(
				    cmd,
				    "--depth needs an integer from 1 to 16, "
				    "got '%s'",
				    v ? v : "");
			}
			a->depth = (int)d;
			i++;
		} else if (sweep && strcmp(arg, "--resume") == 0) {
			a->resume = 1;
		} else if (explore && strcmp(arg, "--stop-first") == 0) {
			a->stop_first = 1;
		} else if (sweep && strcmp(arg, "--query") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error(cmd,
						   "--query needs a .sql file%s",
						   "");
			}
			if (a->nquery == SIM_SWEEP_MAX_QUERIES) {
				return usage_error(
				    cmd, "--query: at most 32 queries, got '%s'",
				    v);
			}
			a->query[a->nquery++] = v;
			i++;
		} else if ((sweep || explore || shrink) &&
			   strcmp(arg, "--jobs") == 0) {
			if (parse_u64(v, &a->jobs) != 0 || a->jobs == 0 ||
			    a->jobs > SIM_SWEEP_MAX_JOBS) {
				return usage_error(
				    cmd,
				    "--jobs needs an integer from "
				    "1 to 256, got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (sweep && strcmp(arg, "--runs-per-child") == 0) {
			if (parse_u64(v, &a->runs_per_child) != 0 ||
			    a->runs_per_child == 0 ||
			    a->runs_per_child > SIM_SWEEP_MAX_RUNS_PER_CHILD) {
				return usage_error(
				    cmd,
				    "--runs-per-child needs an integer from "
				    "1 to 100000, got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (!sweep && strcmp(arg, "--seed") == 0) {
			if (parse_u64(v, &op->seed) != 0) {
				return usage_error(
				    cmd,
				    "--seed needs a non-negative "
				    "integer, got '%s'",
				    v ? v : "");
			}
			op->have_seed = 1;
			i++;
		} else if (run && strcmp(arg, "--schedule") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error(
				    cmd, "--schedule needs a file%s", "");
			}
			a->schedule_path = v;
			i++;
		} else if (strcmp(arg, "--trace") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error(
				    cmd, "--trace needs a file%s", "");
			}
			a->trace_path = v;
			i++;
		} else if (strcmp(arg, "--set") == 0) {
			const char *e = v ? strchr(v, '=') : NULL;
			if (e == NULL || e == v) {
				return usage_error(cmd,
						   "--set needs KEY=VALUE, got "
						   "'%s'",
						   v ? v : "");
			}
			if (op->nset == SIM_LUA_MAX_SET) {
				return usage_error(cmd, "too many --set%s", "");
			}
			char *kv = strdup(v);
			if (kv == NULL) {
				return SIM_STATUS_INTERNAL;
			}
			a->setbuf[op->nset] = kv;
			kv[e - v] = '\0';
			op->set_key[op->nset] = kv;
			op->set_val[op->nset] = kv + (e - v) + 1;
			op->nset++;
			i++;
		} else if (strcmp(arg, "--max-instructions") == 0) {
			if (parse_u64(v, &op->max_instructions) != 0 ||
			    op->max_instructions == 0) {
				return usage_error(cmd,
						   "--max-instructions needs a "
						   "positive integer, got '%s'",
						   v ? v : "");
			}
			i++;
		} else if (strcmp(arg, "--max-memory") == 0) {
			uint64_t m = 0;
			if (parse_size(v, &m) != 0 || m < (64u << 10)) {
				return usage_error(
				    cmd,
				    "--max-memory needs a size of "
				    "at least 64k, got '%s'",
				    v ? v : "");
			}
			op->max_memory = (size_t)m;
			i++;
		} else if (strcmp(arg, "--max-events") == 0 ||
			   strcmp(arg, "--max-inflight") == 0 ||
			   strcmp(arg, "--max-queued-ops") == 0 ||
			   strcmp(arg, "--max-rows") == 0) {
			uint64_t n = 0;
			if (parse_u64(v, &n) != 0 || n == 0) {
				char what[128];
				snprintf(what, sizeof(what),
					 "%.40s needs a positive integer, got "
					 "'%%s'",
					 arg);
				return usage_error(cmd, what, v ? v : "");
			}
			*(strcmp(arg, "--max-events") == 0   ? &op->max_events
			  : strcmp(arg, "--max-inflight") == 0 ? &op->max_inflight
			  : strcmp(arg, "--max-rows") == 0     ? &op->max_rows
							       : &op->max_queued_ops) =
				n;
			i++;
		} else if (strcmp(arg, "--max-time") == 0) {
			sim_time d = 0;
			if (v == NULL || sim_time_parse(v, 0, &d) != 0 ||
			    d <= 0) {
				return usage_error(cmd,
						   "--max-time needs a positive "
						   "duration such as 60s or "
						   "500ms, got '%s'",
						   v ? v : "");
			}
			op->max_time_ns = d;
			i++;
		} else if (strcmp(arg, "--livelock-events") == 0) {
			if (parse_u64(v, &op->livelock_events) != 0 ||
			    op->livelock_events == 0) {
				return usage_error(cmd,
						   "--livelock-events needs a "
						   "positive integer, got '%s'",
						   v ? v : "");
			}
			i++;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			return usage_error(cmd, "unknown option '%s'", arg);
		} else if (op->path == NULL) {
			op->path = arg;
		} else {
			return usage_error(cmd, "unexpected argument '%s'",
					   arg);
		}
	}
	if (op->path == NULL) {
		return usage_error(cmd, "missing SCENARIO.lua%s", "");
	}
	if (sweep && !a->have_seeds) {
		return usage_error(cmd, "missing --seeds A..B%s", "");
	}
	if (a->resume && a->trace_path == NULL) {
		return usage_error(cmd,
				   "--resume needs --trace FILE (the trace of "
				   "the sweep to continue)%s",
				   "");
	}
	if (shrink && !op->have_seed) {
		return usage_error(cmd, "missing --seed N (the failing seed)%s",
				   "");
	}
	return -1;
}

/* Reads the scenario of |o| into o->source, with its hash in |sha|.
 * Returns 0, or prints the error and returns the exit status. */
static int load_scenario(sim_lua_opts *o, char sha[65])
{
	char err[512];
	size_t len;
	char *src = read_file(o->path, "scenario", &len, err, sizeof(err));
	if (src == NULL) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	sha256_hex(src, len, sha);
	o->source = src;
	o->source_len = len;
	o->sha256 = sha;
	return 0;
}

/* The first non-option argument of run (the scenario or schedule file). */
static const char *argv_path(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (argv[i][0] != '-') {
			return argv[i];
		}
		if (strchr(argv[i], '=') == NULL && i + 1 < argc &&
		    strcmp(argv[i], "-q") != 0 && strcmp(argv[i], "-v") != 0 &&
		    strcmp(argv[i], "--quiet") != 0 &&
		    strcmp(argv[i], "--verbose") != 0) {
			i++; /* the option's value */
		}
	}
	return "?";
}

/* The directory part of |path| ("." for none) into |dir|. */
static void dir_of(const char *path, char *dir, size_t n)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL) {
		snprintf(dir, n, ".");
	} else {
		snprintf(dir, n, "%.*s", (int)(slash - path + (slash == path)),
			 path);
	}
}

/* load_schedule_file: o->source is a schedule file. Loads the scenario it
 * names (as written, else relative to the file's directory), checks its
 * hash, and takes its seed, parameters and plan. Returns 0 or prints the
 * error and returns the exit status. */
static int load_schedule_file(run_args *a, char sha[65])
{
	sim_lua_opts *o = &a->o;
	char err[1024];
	char *text = (char *)o->source;
	const char *origin = o->path;
	a->have_file = 1;
	int rc = sim_schedule_file_parse(&a->file, text, origin, err,
					 sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	if (o->have_seed || o->nset > 0 || a->schedule_path != NULL) {
		fprintf(stderr,
			"tlsim: %s: a schedule file fixes the seed, the "
			"parameters and the schedule; drop --seed, --set and "
			"--schedule\n",
			origin);
		return SIM_STATUS_INPUT;
	}
	const char *scen = a->file.scenario;
	snprintf(a->file_path, sizeof(a->file_path), "%s", scen);
	if (scen[0] != '/' && access(scen, F_OK) != 0) {
		char dir[PATH_MAX];
		dir_of(origin, dir, sizeof(dir));
		if (snprintf(a->file_path, sizeof(a->file_path), "%s/%s", dir,
			     scen) >= (int)sizeof(a->file_path)) {
			fprintf(stderr, "tlsim: %s: scenario path too long\n",
				origin);
			return SIM_STATUS_INPUT;
		}
	}
	o->path = a->file_path;
	free(text);
	o->source = NULL;
	size_t len;
	char *src = read_file(o->path, "scenario", &len, err, sizeof(err));
	if (src == NULL) {
		fprintf(stderr, "tlsim: %s (named by %s)\n", err, origin);
		return SIM_STATUS_INPUT;
	}
	sha256_hex(src, len, sha);
	o->source = src;
	o->source_len = len;
	o->sha256 = sha;
	if (a->file.sha256[0] != '\0' && strcmp(a->file.sha256, sha) != 0) {
		fprintf(stderr,
			"tlsim: %s changed since %s was written (sha256 "
			"%.16s..., recorded %.16s...); its choice and fault "
			"numbers may no longer mean anything\n",
			o->path, origin, sha, a->file.sha256);
		return SIM_STATUS_INPUT;
	}
	o->have_seed = 1;
	o->seed = a->file.seed;
	for (int i = 0; i < a->file.nset; i++) {
		o->set_key[i] = a->file.set_key[i];
		o->set_val[i] = a->file.set_val[i];
	}
	o->nset = a->file.nset;
	a->schedule = sim_schedule_new();
	if (a->schedule == NULL ||
	    sim_plan_copy(sim_schedule_plan(a->schedule), &a->file.plan) != 0) {
		fprintf(stderr, "tlsim: out of memory\n");
		return SIM_STATUS_INTERNAL;
	}
	o->schedule = a->schedule;
	return 0;
}

/* load_schedule: --schedule FILE, a plan. */
static int load_schedule(run_args *a)
{
	char err[1024];
	size_t len;
	char *text = read_file(a->schedule_path, "schedule", &len, err, sizeof(err));
	if (text == NULL) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	a->schedule = sim_schedule_new();
	if (a->schedule == NULL) {
		free(text);
		fprintf(stderr, "tlsim: out of memory\n");
		return SIM_STATUS_INTERNAL;
	}
	int rc = sim_plan_parse(sim_schedule_plan(a->schedule), text,
				a->schedule_path, 1, err, sizeof(err));
	free(text);
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	a->o.schedule = a->schedule;
	return 0;
}

/* load_run: the scenario (or schedule file) and --schedule of |a|. */
static int load_run(run_args *a, char sha[65])
{
	int status = load_scenario(&a->o, sha);
	if (status == 0 &&
	    strncmp(a->o.source, SIM_SCHEDULE_MAGIC,
		    strlen(SIM_SCHEDULE_MAGIC)) == 0) {
		return load_schedule_file(a, sha);
	}
	if (status == 0 && a->schedule_path != NULL) {
		status = load_schedule(a);
	}
	return status;
}

static int cmd_run(int argc, char **argv)
{
	run_args a = {0};
	int status = parse_args("run", argc, argv, &a);
	char sha[65], err[512];
	if (status < 0 && (status = load_run(&a, sha)) == 0) {
		status = -1;
	}
	if (status >= 0) {
		run_args_free(&a);
		return status;
	}
	sim_lua_opts o = a.o;
	const char *trace_path = a.trace_path;

	sim_trace *trace = NULL;
	int rc = sim_trace_open(trace_path, &trace, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		run_args_free(&a);
		return SIM_STATUS_INPUT;
	}
	o.trace = trace;

	sim_lua_result r;
	status = sim_lua_run(&o, &r);
	if (r.trace_err != 0) {
		fprintf(stderr, "tlsim: %s\n", sim_trace_errmsg(trace));
		if (status == SIM_STATUS_PASS || status == SIM_STATUS_FAIL) {
			status = r.trace_err == SIM_EINTERNAL
				     ? SIM_STATUS_INTERNAL
				     : SIM_STATUS_INPUT;
		}
	}
	if (status == SIM_STATUS_INPUT || status == SIM_STATUS_INTERNAL) {
		fprintf(stderr, "%s\n", r.message);
	}
	if (o.verbosity > 0 && r.have_world && status != SIM_STATUS_INPUT) {
		char t[64];
		printf("%s seed %llu: %s, %llu/%llu expectations held\n",
		       o.path, (unsigned long long)r.seed, r.outcome,
		       (unsigned long long)(r.checks - r.checks_failed),
		       (unsigned long long)r.checks);
		printf("  virtual time %s, %llu events",
		       sim_time_format(r.end_ns, t, sizeof(t)),
		       (unsigned long long)r.events);
		if (r.digest[0] != '\0') {
			printf(", digest %.16s", r.digest);
		}
		if (r.run_id > 0) {
			printf(", run %lld in %s", (long long)r.run_id,
			       trace_path);
		}
		printf("\n");
		fflush(stdout);
		if (status == SIM_STATUS_FAIL) {
			fprintf(stderr, "  first failure: %s\n", r.message);
		}
	}
	if ((status == SIM_STATUS_FAIL || status == SIM_STATUS_INTERNAL) &&
	    r.have_world) {
		if (a.have_file) {
			fprintf(stderr, "  reproduce: tlsim run %s\n",
				argv_path(argc, argv));
		} else {
			sim_sweep_reproduce(stderr, "  ", &o, r.seed);
			if (a.schedule_path != NULL) {
				fprintf(stderr, "    --schedule %s\n",
					a.schedule_path);
			}
		}
	}
	sim_trace_close(trace);
	run_args_free(&a);
	return status;
}

/* prepare parses |cmd|'s arguments into |a| and loads the scenario.
 * Returns -1 to go on, else the exit status (|a| freed). */
static int prepare(const char *cmd, int argc, char **argv, run_args *a,
		   char sha[65])
{
	int status = parse_args(cmd, argc, argv, a);
	if (status < 0 && (status = load_scenario(&a->o, sha)) == 0) {
		return -1;
	}
	run_args_free(a);
	return status;
}

static int cmd_sweep(int argc, char **argv)
{
	run_args a = {0};
	char sha[65];
	int status = prepare("sweep", argc, argv, &a, sha);
	if (status >= 0) {
		return status;
	}
	sim_sweep_opts so = {.run = a.o,
			     .seed_first = a.seed_first,
			     .seed_last = a.seed_last,
			     .jobs = (int)a.jobs,
			     .shard_index = a.shard_count ? a.shard_index - 1 : 0,
			     .shard_count = a.shard_count ? a.shard_count : 1,
			     .trace_path = a.trace_path,
			     .quiet = a.o.verbosity == 0,
			     .resume = a.resume,
			     .runs_per_child = a.runs_per_child,
			     .child_init = sim_arena_begin};
	memcpy(so.query, a.query, sizeof(so.query));
	so.nquery = a.nquery;
	status = sim_sweep(&so);
	run_args_free(&a);
	return status;
}

static int cmd_explore(int argc, char **argv)
{
	run_args a = {0};
	char sha[65];
	int status = prepare("explore", argc, argv, &a, sha);
	if (status >= 0) {
		return status;
	}
	sim_explore_opts eo = {
	    .run = a.o,
	    .strategy = (enum sim_explore_strategy)a.strategy,
	    .runs = a.runs,
	    .depth = a.depth > 0 ? a.depth
		     : a.strategy == SIM_EXPLORE_EXHAUSTIVE ? 1
							    : 3,
	    .jobs = (int)a.jobs,
	    .trace_path = a.trace_path ? a.trace_path : "explore.db",
	    .quiet = a.o.verbosity == 0,
	    .stop_first = a.stop_first};
	status = sim_explore(&eo);
	run_args_free(&a);
	return status;
}

static int cmd_shrink(int argc, char **argv)
{
	run_args a = {0};
	char sha[65], out[PATH_MAX];
	int status = prepare("shrink", argc, argv, &a, sha);
	if (status >= 0) {
		return status;
	}
	if (a.out_path == NULL) {
		/* NAME-seedN.sched in the current directory. */
		const char *base = strrchr(a.o.path, '/');
		base = base ? base + 1 : a.o.path;
		size_t len = strlen(base);
		if (len > 4 && strcmp(base + len - 4, ".lua") == 0) {
			len -= 4;
		}
		snprintf(out, sizeof(out), "%.*s-seed%llu.sched",
			 (int)(len < 200 ? len : 200), base,
			 (unsigned long long)a.o.seed);
		a.out_path = out;
	}
	sim_shrink_opts so = {.run = a.o,
			      .out_path = a.out_path,
			      .jobs = (int)a.jobs,
			      .max_runs = a.runs,
			      .quiet = a.o.verbosity == 0};
	status = sim_shrink(&so);
	run_args_free(&a);
	return status;
}

static int cmd_merge(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage_merge, stdout);
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return usage_error("merge", "unknown option '%s'",
					   argv[i]);
		}
	}
	if (argc < 2) {
		return usage_error("merge",
				   "needs OUT.db and at least one "
				   "IN.db%s",
				   "");
	}
	char err[1024];
	sim_merge *m = NULL;
	int rc = sim_merge_new(argv[0], &m, err, sizeof(err));
	for (int i = 1; rc == 0 && i < argc; i++) {
		rc = sim_merge_check_input(m, argv[i], err, sizeof(err));
	}
	int input_err = rc != 0;
	for (int i = 1; rc == 0 && i < argc; i++) {
		rc =
		    sim_merge_runs(m, argv[i], NULL, 0, NULL, err, sizeof(err));
	}
	if (rc == 0) {
		rc = sim_merge_verify(m, err, sizeof(err));
	}
	if (rc == 0) {
		printf("merged %lld runs into %s (runs %lld..%lld), digests "
		       "verified\n",
		       (long long)(sim_merge_last_id(m)
				       ? sim_merge_last_id(m) -
					     sim_merge_first_id(m) + 1
				       : 0),
		       argv[0], (long long)sim_merge_first_id(m),
		       (long long)sim_merge_last_id(m));
	}
	sim_merge_del(m);
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return input_err && rc != SIM_EINTERNAL && rc != SIM_ENOMEM
			   ? SIM_STATUS_INPUT
		       : rc == SIM_EBUSY ? SIM_STATUS_INPUT
					 : SIM_STATUS_INTERNAL;
	}
	return 0;
}

static const char usage_diff[] =
	"usage: tlsim diff A.db[:RUN] B.db[:RUN] [--context N] [--ignore COL]...\n"
	"                  [-q]\n"
	"\n"
	"Compares two recorded runs (of the same trace or of two, same or\n"
	"different seeds) as they happened: every table's rows merged into\n"
	"one timeline by virtual time. Prints the first row that differs,\n"
	"the N rows before it that both runs share (default 5, at most 50),\n"
	"both rows with the column that differs, and the operation, packet\n"
	"or endpoint each belongs to. RUN may be left out when the trace\n"
	"holds one run. --ignore COL (repeatable) leaves a column out of\n"
	"the comparison, e.g. --ignore data to compare two seeds' runs\n"
	"without their ciphertext.\n"
	"\n"
	"exit status: 0 no difference, 1 a difference, 2 usage or input\n"
	"error, 3 internal error.\n";

/* diff_side parses "PATH[:RUN]" into |path| and |*run|: the run named, or
 * the only run of the trace. Returns 0 or prints the error and returns
 * the exit status. */
static int diff_side(const char *arg, char *path, size_t n, int64_t *run)
{
	const char *colon = strrchr(arg, ':');
	uint64_t v = 0;
	char err[1024];
	snprintf(path, n, "%s", arg);
	*run = 0;
	if (colon != NULL && parse_u64(colon + 1, &v) == 0 && v > 0 &&
	    v <= INT64_MAX) {
		snprintf(path, n, "%.*s", (int)(colon - arg), arg);
		*run = (int64_t)v;
	}
	sqlite3 *db = NULL;
	int empty = 0;
	if (sim_trace_open_readonly(path, &db, &empty, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	sqlite3_stmt *st = NULL;
	int64_t count = 0, only = 0, found = 0;
	if (!empty &&
	    sqlite3_prepare_v2(db,
			       "SELECT count(*), max(id), sum(id = ?1) FROM run",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, *run);
		if (sqlite3_step(st) == SQLITE_ROW) {
			count = sqlite3_column_int64(st, 0);
			only = sqlite3_column_int64(st, 1);
			found = sqlite3_column_int64(st, 2);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (*run == 0 && count != 1) {
		fprintf(stderr,
			"tlsim: %s holds %lld runs; name one as %s:RUN\n",
			path, (long long)count, path);
		return SIM_STATUS_INPUT;
	}
	if (*run == 0) {
		*run = only;
	} else if (found == 0) {
		fprintf(stderr, "tlsim: %s: no run %lld\n", path,
			(long long)*run);
		return SIM_STATUS_INPUT;
	}
	return 0;
}

static int cmd_diff(int argc, char **argv)
{
	const char *side[2] = {NULL, NULL};
	uint64_t context = 5;
	int quiet = 0, nignore = 0;
	const char *ignore[16];
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage_diff, stdout);
			return 0;
		} else if (strcmp(argv[i], "--context") == 0) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], &context) != 0 ||
			    context > 50) {
				return usage_error("diff",
						   "--context needs an integer "
						   "from 0 to 50, got '%s'",
						   i + 1 < argc ? argv[i + 1]
								: "");
			}
			i++;
		} else if (strcmp(argv[i], "--ignore") == 0) {
			if (i + 1 >= argc || nignore == 16) {
				return usage_error("diff",
						   "--ignore needs a column name "
						   "(at most 16)%s",
						   "");
			}
			ignore[nignore++] = argv[++i];
		} else if (strcmp(argv[i], "-q") == 0 ||
			   strcmp(argv[i], "--quiet") == 0) {
			quiet = 1;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return usage_error("diff", "unknown option '%s'",
					   argv[i]);
		} else if (side[0] == NULL) {
			side[0] = argv[i];
		} else if (side[1] == NULL) {
			side[1] = argv[i];
		} else {
			return usage_error("diff", "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (side[1] == NULL) {
		return usage_error("diff", "needs two runs: A.db[:RUN] "
					   "B.db[:RUN]%s",
				   "");
	}
	char path[2][PATH_MAX], label[2][PATH_MAX + 32], err[1024];
	int64_t run[2];
	for (int k = 0; k < 2; k++) {
		int st = diff_side(side[k], path[k], sizeof(path[k]), &run[k]);
		if (st != 0) {
			return st;
		}
		snprintf(label[k], sizeof(label[k]), "%s:%lld", path[k],
			 (long long)run[k]);
	}
	FILE *out = quiet ? fopen("/dev/null", "w") : stdout;
	if (out == NULL) {
		return SIM_STATUS_INTERNAL;
	}
	int rc = sim_rowdiff_timeline(path[0], run[0], path[1], run[1],
				      label[0], label[1], (int)context, ignore,
				      nignore, out, err, sizeof(err));
	if (quiet) {
		fclose(out);
	}
	fflush(stdout);
	if (rc < 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	return rc == 0 ? SIM_STATUS_PASS : SIM_STATUS_FAIL;
}

static const char usage_races[] =
	"usage: tlsim races TRACE.db [--runs A..B] [--check TEXT | --query "
	"FILE.sql]\n"
	"                   [--top N]\n"
	"\n"
	"Splits the runs of a trace (a sweep's) into failing and passing and\n"
	"ranks the orders of concurrent operations (one endpoint, the same\n"
	"virtual time, no happens-before path between them) by how well they\n"
	"separate the two groups, with a seed of each kind to replay.\n"
	"\n"
	"options:\n"
	"  --runs A..B           only runs A..B of the trace (default: all)\n"
	"  --check TEXT          failing = an expectation whose name contains\n"
	"                        TEXT failed (default: outcome is not pass)\n"
	"  --query FILE.sql      failing = the runs a race query returns rows\n"
	"                        for (first column run, as sweep --query)\n"
	"  --top N               lines shown (default 10)\n"
	"\n"
	"exit status: 0 ranked, 2 usage or input error (no failing or no\n"
	"passing run, a trace without causality columns), 3 internal error.\n";

static int cmd_races(int argc, char **argv)
{
	sim_races_opts o = {.top = 10};
	for (int i = 0; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t a, b;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage_races, stdout);
			return 0;
		} else if (strcmp(argv[i], "--runs") == 0) {
			if (parse_range(v, &a, &b) != 0 || a == 0 ||
			    b > INT64_MAX) {
				return usage_error("races",
						   "--runs needs A..B with 1 <= "
						   "A <= B, got '%s'",
						   v ? v : "");
			}
			o.first_run = (int64_t)a;
			o.last_run = (int64_t)b;
			i++;
		} else if (strcmp(argv[i], "--check") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error("races",
						   "--check needs a text%s", "");
			}
			o.check = v;
			i++;
		} else if (strcmp(argv[i], "--query") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error("races",
						   "--query needs a file%s", "");
			}
			o.query = v;
			i++;
		} else if (strcmp(argv[i], "--top") == 0) {
			if (parse_u64(v, &a) != 0 || a == 0 || a > 1000) {
				return usage_error("races",
						   "--top needs an integer from "
						   "1 to 1000, got '%s'",
						   v ? v : "");
			}
			o.top = (int)a;
			i++;
		} else if (argv[i][0] == '-') {
			return usage_error("races", "unknown option '%s'",
					   argv[i]);
		} else if (o.path == NULL) {
			o.path = argv[i];
		} else {
			return usage_error("races", "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (o.path == NULL) {
		return usage_error("races", "missing TRACE.db%s", "");
	}
	if (o.check != NULL && o.query != NULL) {
		return usage_error("races",
				   "give --check or --query, not both%s", "");
	}
	char err[1024];
	int rc = sim_races(&o, stdout, err, sizeof(err));
	fflush(stdout);
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return rc == SIM_ENOMEM || rc == SIM_EINTERNAL
			       ? SIM_STATUS_INTERNAL
			       : SIM_STATUS_INPUT;
	}
	return 0;
}

static int cmd_pcap(int argc, char **argv)
{
	sim_pcap_opts o = {0};
	int quiet = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t id;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(sim_pcap_usage, stdout);
			return 0;
		} else if (strcmp(a, "--run") == 0) {
			if (parse_u64(v, &id) != 0 || id == 0 ||
			    id > INT64_MAX) {
				return usage_error("pcap",
						   "--run needs a run id, got "
						   "'%s'",
						   v ? v : "");
			}
			o.run_id = (int64_t)id;
			i++;
		} else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0 ||
			   strcmp(a, "--keylog") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error("pcap", "%s needs a file",
						   a);
			}
			if (strcmp(a, "--keylog") == 0) {
				o.keylog_path = v;
			} else {
				o.out_path = v;
			}
			i++;
		} else if (strcmp(a, "--at") == 0) {
			if (v == NULL || (strcmp(v, "receiver") != 0 &&
					  strcmp(v, "sender") != 0)) {
				return usage_error("pcap",
						   "--at needs receiver or "
						   "sender, got '%s'",
						   v ? v : "");
			}
			o.at = strcmp(v, "sender") == 0 ? SIM_PCAP_AT_SENDER
							: SIM_PCAP_AT_RECEIVER;
			i++;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			quiet = 1;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("pcap", "unknown option '%s'", a);
		} else if (o.trace_path == NULL) {
			o.trace_path = a;
		} else {
			return usage_error("pcap", "unexpected argument '%s'",
					   a);
		}
	}
	if (o.trace_path == NULL || o.out_path == NULL) {
		return usage_error("pcap", "needs TRACE.db and -o FILE%s", "");
	}
	char err[2048];
	sim_pcap_stats st;
	int rc = sim_pcap_export(&o, &st, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return rc == SIM_ENOMEM || rc == SIM_EINTERNAL
			   ? SIM_STATUS_INTERNAL
			   : SIM_STATUS_INPUT;
	}
	if (!quiet) {
		printf("run %lld of %s: %llu packets at the %s to %s "
		       "(%llu lost, %llu link duplicates, %llu in flight at "
		       "the end, %llu not IP, %llu TCP checksums "
		       "recomputed), %llu key log lines%s%s%s\n",
		       (long long)st.run_id, o.trace_path,
		       (unsigned long long)st.packets,
		       o.at == SIM_PCAP_AT_SENDER ? "sender" : "receiver",
		       o.out_path, (unsigned long long)st.lost,
		       (unsigned long long)st.duplicates,
		       (unsigned long long)st.in_flight,
		       (unsigned long long)st.other,
		       (unsigned long long)st.tcp_recomputed,
		       (unsigned long long)st.keylog_lines,
		       st.keylog_lines ? " in its Decryption Secrets Block"
				       : "",
		       o.keylog_path ? ", key log file " : "",
		       o.keylog_path ? o.keylog_path : "");
	}
	return 0;
}

/* The recorded facts replay needs from a run row. */
typedef struct recorded {
	char scenario[4096], sha[65], digest[65];
	uint64_t seed;
	char *params;   /* "key=value\n" lines */
	char *schedule; /* run.schedule, NULL when none */
	char *limits;   /* run.limits, NULL when none (or schema < 4) */
} recorded;

static int read_recorded(const char *path, int64_t run, recorded *r,
			 char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = SIM_STATUS_INPUT;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    (sqlite3_prepare_v2(db,
				"SELECT scenario, scenario_sha256, seed, "
				"params, digest, schedule, limits FROM run "
				"WHERE id = ?1",
				-1, &st, NULL) != SQLITE_OK &&
	     sqlite3_prepare_v2(db, /* schema 2 and 3: no limits column */
				"SELECT scenario, scenario_sha256, seed, "
				"params, digest, schedule, NULL FROM run "
				"WHERE id = ?1",
				-1, &st, NULL) != SQLITE_OK &&
	     sqlite3_prepare_v2(db, /* schema 1: no schedule column */
				"SELECT scenario, scenario_sha256, seed, "
				"params, digest, NULL, NULL FROM run WHERE "
				"id = ?1",
				-1, &st, NULL) != SQLITE_OK)) {
		snprintf(err, errlen, "%s: not a readable tlsim trace (%s)",
			 path, sqlite3_errmsg(db));
	} else {
		sqlite3_bind_int64(st, 1, run);
		if (sqlite3_step(st) != SQLITE_ROW) {
			snprintf(err, errlen, "%s: no run %lld", path,
				 (long long)run);
		} else if (sqlite3_column_type(st, 4) == SQLITE_NULL) {
			snprintf(err, errlen,
				 "%s: run %lld has no digest (a crash row)",
				 path, (long long)run);
		} else {
			const char *t;
			t = (const char *)sqlite3_column_text(st, 0);
			snprintf(r->scenario, sizeof(r->scenario), "%s",
				 t ? t : "");
			t = (const char *)sqlite3_column_text(st, 1);
			snprintf(r->sha, sizeof(r->sha), "%s", t ? t : "");
			r->seed = (uint64_t)sqlite3_column_int64(st, 2);
			t = (const char *)sqlite3_column_text(st, 3);
			r->params = strdup(t ? t : "");
			t = (const char *)sqlite3_column_text(st, 4);
			snprintf(r->digest, sizeof(r->digest), "%s", t ? t : "");
			t = (const char *)sqlite3_column_text(st, 5);
			r->schedule = t ? strdup(t) : NULL;
			const char *l =
			    (const char *)sqlite3_column_text(st, 6);
			r->limits = l ? strdup(l) : NULL;
			rc = r->params != NULL && (t == NULL || r->schedule) &&
				     (l == NULL || r->limits)
				 ? 0
				 : SIM_STATUS_INTERNAL;
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

static int cmd_replay(int argc, char **argv)
{
	const char *path = NULL;
	int64_t run = -1;
	int quiet = 0;
	for (int i = 0; i < argc; i++) {
		uint64_t v;
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(usage_replay, stdout);
			return 0;
		} else if (strcmp(argv[i], "--run") == 0) {
			if (i + 1 >= argc || parse_u64(argv[i + 1], &v) != 0 ||
			    v == 0 || v > INT64_MAX) {
				return usage_error("replay",
						   "--run needs a run id, got "
						   "'%s'",
						   i + 1 < argc ? argv[i + 1]
								: "");
			}
			run = (int64_t)v;
			i++;
		} else if (strcmp(argv[i], "-q") == 0 ||
			   strcmp(argv[i], "--quiet") == 0) {
			quiet = 1;
		} else if (argv[i][0] == '-') {
			return usage_error("replay", "unknown option '%s'",
					   argv[i]);
		} else if (path == NULL) {
			path = argv[i];
		} else {
			return usage_error("replay", "unexpected argument '%s'",
					   argv[i]);
		}
	}
	if (path == NULL || run < 0) {
		return usage_error("replay", "needs TRACE.db and --run ID%s",
				   "");
	}
	char err[2048];
	recorded rec = {0};
	int status = read_recorded(path, run, &rec, err, sizeof(err));
	if (status != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return status;
	}
	sim_lua_opts o = {.path = rec.scenario,
			  .have_seed = 1,
			  .seed = rec.seed,
			  .verbosity = 0};
	char sha[65];
	status = load_scenario(&o, sha);
	if (status == 0 && strcmp(sha, rec.sha) != 0) {
		fprintf(stderr,
			"tlsim: %s changed since run %lld was recorded "
			"(sha256 %.16s..., recorded %.16s...); not replaying\n",
			rec.scenario, (long long)run, sha, rec.sha);
		status = SIM_STATUS_INPUT;
	}
	/* The parameters, from their canonical "key=value" lines. */
	for (char *line = rec.params, *next; status == 0 && *line != '\0';
	     line = next) {
		next = strchr(line, '\n');
		next = next ? (*next = '\0', next + 1) : line + strlen(line);
		char *eq = strchr(line, '=');
		if (eq == NULL || o.nset == SIM_LUA_MAX_SET) {
			fprintf(stderr, "tlsim: run %lld: bad parameters\n",
				(long long)run);
			status = SIM_STATUS_INPUT;
			break;
		}
		*eq = '\0';
		o.set_key[o.nset] = line;
		o.set_val[o.nset++] = eq + 1;
	}
	/* The caps it ran under: a run that reached one ends there again. */
	if (status == 0 &&
	    sim_lua_limits_parse(rec.limits, &o, err, sizeof(err)) != 0) {
		fprintf(stderr, "tlsim: %s: run %lld: %s\n", path,
			(long long)run, err);
		status = SIM_STATUS_INPUT;
	}
	sim_schedule *sched = NULL;
	if (status == 0 && rec.schedule != NULL) {
		char origin[64];
		snprintf(origin, sizeof(origin), "run %lld schedule",
			 (long long)run);
		sched = sim_schedule_new();
		if (sched == NULL) {
			status = SIM_STATUS_INTERNAL;
		} else if (sim_plan_parse(sim_schedule_plan(sched),
					  rec.schedule, origin, 1, err,
					  sizeof(err)) != 0) {
			fprintf(stderr, "tlsim: %s: %s\n", path, err);
			status = SIM_STATUS_INPUT;
		}
		o.schedule = sched;
	}
	char tmpdir[PATH_MAX] = "", tpath[PATH_MAX + 16];
	sim_trace *trace = NULL;
	if (status == 0) {
		const char *t = getenv("TMPDIR");
		snprintf(tmpdir, sizeof(tmpdir), "%s/tlsim-replay.XXXXXX",
			 t && *t ? t : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			fprintf(stderr, "tlsim: cannot create %s: %s\n", tmpdir,
				strerror(errno));
			status = SIM_STATUS_INTERNAL;
			tmpdir[0] = '\0';
		}
	}
	if (status == 0) {
		snprintf(tpath, sizeof(tpath), "%s/replay.db", tmpdir);
		if (sim_trace_open(tpath, &trace, err, sizeof(err)) != 0) {
			fprintf(stderr, "tlsim: %s\n", err);
			status = SIM_STATUS_INTERNAL;
		}
	}
	if (status == 0) {
		o.trace = trace;
		sim_lua_result r;
		int rs = sim_lua_run(&o, &r);
		sim_trace_close(trace);
		if (r.run_id <= 0) {
			fprintf(stderr, "tlsim: the replay did not record a run"
					" (%s)\n",
				rs == SIM_STATUS_PASS ? "?" : r.message);
			status = SIM_STATUS_INTERNAL;
		} else if (strcmp(r.digest, rec.digest) == 0) {
			if (!quiet) {
				printf("run %lld of %s replayed: digest %.16s "
				       "matches (%s)\n",
				       (long long)run, path, r.digest,
				       r.outcome);
			}
		} else {
			printf("run %lld of %s replayed: digest %.16s, "
			       "recorded %.16s: DIFFERENT\n",
			       (long long)run, path, r.digest, rec.digest);
			fflush(stdout);
			int d = sim_rowdiff_timeline(path, run, tpath, r.run_id,
						     "recorded", "replayed", 5,
						     NULL, 0, stdout, err,
						     sizeof(err));
			if (d == 0) {
				printf("(the rows are equal: the run row's "
				       "outcome fields differ)\n");
			} else if (d < 0) {
				printf("cannot compare the rows: %s\n", err);
			}
			status = SIM_STATUS_FAIL;
		}
	}
	if (tmpdir[0] != '\0') {
		char f[PATH_MAX + 32];
		static const char *const sfx[] = {"", "-wal", "-shm",
						  "-journal"};
		for (size_t i = 0; i < 4; i++) {
			snprintf(f, sizeof(f), "%s%s", tpath, sfx[i]);
			unlink(f);
		}
		rmdir(tmpdir);
	}
	free((char *)o.source);
	free(rec.params);
	free(rec.limits);
	free(rec.schedule);
	sim_schedule_del(sched);
	return status;
}

/* malloc_settings fixes glibc's malloc thresholds for the process. By
 * default they move: freeing a block that was mmapped raises the mmap
 * threshold to its size and the trim threshold to twice that (glibc's
 * "dynamic mmap threshold"), so whether freeing a run's memory (about
 * 0.5 MB for a TLS handshake: two 256 KiB stream buffers, BoringSSL's
 * objects) gives it back to the kernel, to be faulted in again by the
 * next run, depends on which blocks happened to be freed first. A process
 * that makes many runs (explore, shrink, a sweep's parent storing runs)
 * keeps its heap instead: blocks under 1 MiB come from the heap, and up
 * to 32 MiB of free memory at its top is kept. */
static void malloc_settings(void)
{
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

int main(int argc, char **argv)
{
	malloc_settings();
	if (argc < 2) {
		fputs(usage_main, stderr);
		return SIM_STATUS_INPUT;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("tlsim %s (trace schema %d)\n", TLSIM_VERSION,
		       SIM_TRACE_SCHEMA_VERSION);
		return 0;
	}
	if (strcmp(cmd, "merge") == 0) {
		return cmd_merge(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "pcap") == 0) {
		return cmd_pcap(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "diff") == 0) {
		return cmd_diff(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "races") == 0) {
		return cmd_races(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "report") == 0) {
		return cmd_report(argc - 2, argv + 2);
	}
	if (strcmp(cmd, "run") == 0 || strcmp(cmd, "sweep") == 0 ||
	    strcmp(cmd, "replay") == 0 || strcmp(cmd, "explore") == 0 ||
	    strcmp(cmd, "shrink") == 0) {
		/* BoringSSL reads OPENSSL_ia32cap when it loads: re-execute
		 * once with RDRAND switched off so that all of its entropy
		 * comes from the run seed. */
		if (sim_entropy_reexec(argc, argv) != 0) {
			fprintf(stderr,
				"tlsim: cannot re-execute with "
				"OPENSSL_ia32cap set: %s\n",
				strerror(errno));
			return SIM_STATUS_INTERNAL;
		}
		if (strcmp(cmd, "replay") == 0) {
			return cmd_replay(argc - 2, argv + 2);
		}
		if (strcmp(cmd, "explore") == 0) {
			return cmd_explore(argc - 2, argv + 2);
		}
		if (strcmp(cmd, "shrink") == 0) {
			return cmd_shrink(argc - 2, argv + 2);
		}
		return strcmp(cmd, "run") == 0 ? cmd_run(argc - 2, argv + 2)
					       : cmd_sweep(argc - 2, argv + 2);
	}
	fprintf(stderr, "tlsim: unknown command '%s' (see 'tlsim --help')\n",
		cmd);
	return SIM_STATUS_INPUT;
}

/* tests/helper_tracecrash.c: tlsim_tracecrash, a trace writer driven from
 * the shell tests (tests/cli/trace_*.sh), for cases that need a second
 * process: a writer killed mid-commit, a lock held by another process.
 *
 *   tlsim_tracecrash write DB ROWS [CRASH_AFTER]
 *       appends one run of ROWS rows (the same rows for the same ROWS) and
 *       prints "RUN_ID DIGEST"; with CRASH_AFTER the process _exit(9)s
 *       after that many rows of the commit (sim_trace_set_crash_after).
 *   tlsim_tracecrash write-kill DB ROWS
 *       as write, then SIGKILLs itself right after sim_trace_end, the
 *       trace still open: a run reported stored must be in the file.
 *   tlsim_tracecrash write-when DB ROWS READY GO
 *       opens DB and produces the rows, creates the file READY, waits (up
 *       to 10 s) for the file GO, then ends the run; prints "RUN_ID DIGEST
 *       MS" with MS the wall-clock milliseconds sim_trace_end took.
 *   tlsim_tracecrash digest DB RUN_ID
 *       prints the digest recomputed from the stored rows.
 *
 * Errors print "tlsim_tracecrash: error CODE: MESSAGE" and exit 2. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/trace.h"

static int die(int code, const char *msg)
{
	fprintf(stderr, "tlsim_tracecrash: error %d: %s\n", code, msg);
	return 2;
}

static void rows(sim_trace *t, long n)
{
	static const char *const nodes[] = {"client", "server"};
	static const char *const actions[] = {"enqueue", "dequeue", "complete"};
	sim_trace_node(t, 1, "client", "echo_client");
	sim_trace_node(t, 2, "server", "echo_server");
	for (long i = 2; i < n; i++) {
		if (i % 10 == 0) {
			uint8_t data[32];
			memset(data, (int)(i & 0xff), sizeof(data));
			sim_packet_row p = {
			    .id = i,
			    .parent = -1,
			    .link = "l",
			    .src = "client",
			    .dst = "server",
			    .proto = "echo",
			    .send_ns = i * 1000,
			    .deliver_ns = i % 30 ? i * 1000 + 500 : -1,
			    .len = sizeof(data),
			    .fate = i % 30 ? "delivered" : "lost",
			    .dup_of = -1,
			    .pn = -1,
			    .data = data,
			    .data_len = sizeof(data)};
			sim_trace_packet(t, &p);
			continue;
		}
		sim_op_row r = {.time = i * 1000,
				.node = nodes[i % 2],
				.op_id = i / 3,
				.op_type = "recv",
				.action = actions[i % 3],
				.depth = i % 5,
				.cause_kind = i % 4 ? "packet" : NULL,
				.cause_id = i % 4 ? i : -1};
		sim_trace_op(t, &r);
	}
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	char err[512], digest[65];
	int64_t id = 0;
	if (argc == 4 && strcmp(argv[1], "digest") == 0) {
		int rc = sim_trace_digest_db(argv[2], atoll(argv[3]), digest,
					     err, sizeof(err));
		if (rc != 0) {
			return die(rc, err);
		}
		printf("%s\n", digest);
		return 0;
	}
	int when = argc == 6 && strcmp(argv[1], "write-when") == 0;
	int killed = argc == 4 && strcmp(argv[1], "write-kill") == 0;
	if (!when && !killed &&
	    !((argc == 4 || argc == 5) && strcmp(argv[1], "write") == 0)) {
		fprintf(stderr, "usage: tlsim_tracecrash write DB ROWS "
				"[CRASH_AFTER] | write-kill DB ROWS | "
				"write-when DB ROWS READY GO | digest DB "
				"RUN_ID\n");
		return 2;
	}
	sim_trace *t;
	int rc = sim_trace_open(argv[2], &t, err, sizeof(err));
	if (rc != 0) {
		return die(rc, err);
	}
	if (!when && !killed && argc == 5) {
		sim_trace_set_crash_after(t, strtoull(argv[4], NULL, 10));
	}
	sim_run_info info = {.scenario = "tracecrash", .seed = 1, .params = ""};
	if ((rc = sim_trace_begin(t, &info)) != 0) {
		return die(rc, sim_trace_errmsg(t));
	}
	rows(t, atol(argv[3]));
	if (when) {
		FILE *f = fopen(argv[4], "w");
		if (f == NULL) {
			return die(SIM_EIO, "cannot create READY");
		}
		fclose(f);
		for (int i = 0; access(argv[5], F_OK) != 0; i++) {
			if (i == 1000) {
				return die(SIM_EIO, "GO never appeared");
			}
			usleep(10000);
		}
	}
	sim_run_result res = {
	    .outcome = "pass", .end_ns = 1000000, .events = 1, .checks = 0};
	double t0 = now_ms();
	rc = sim_trace_end(t, &res, digest, &id);
	double ms = now_ms() - t0;
	if (rc != 0) {
		die(rc, sim_trace_errmsg(t));
		sim_trace_close(t);
		return 2;
	}
	if (when) {
		printf("%lld %s %.0f\n", (long long)id, digest, ms);
	} else if (killed) {
		printf("%lld %s\n", (long long)id, digest);
		fflush(stdout);
		kill(getpid(), SIGKILL);
	} else {
		printf("%lld %s\n", (long long)id, digest);
	}
	sim_trace_close(t);
	return 0;
}

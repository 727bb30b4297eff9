/* Reading a run for `tlsim report` (sim/report.c) and writing its page
 * (sim/html.c): lane order, the order of items at one time, merged
 * operation steps, coalesced packets, windows and limits, display-safe
 * text, race queries restricted to the run, errors. The CLI and the page
 * in a browser are tested by tests/cli/report.sh. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/html.h"
#include "sim/report.h"
#include "sim/trace.h"
#include "tests/unit.h"

static char dir[256];

static const char *path(const char *name)
{
	static char buf[4][512];
	static int k;
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/tlsim-report-XXXXXX");
		if (mkdtemp(dir) == NULL) {
			abort();
		}
	}
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static void cleanup(void)
{
	static const char *const names[] = {
	    "t.db",   "t.db-wal", "t.db-shm",     "q/mine.sql",  "a.html",
	    "b.html", "empty.db", "empty.db-wal", "empty.db-shm"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		unlink(path(names[i]));
	}
	rmdir(path("q"));
	rmdir(dir);
	dir[0] = '\0';
}

static void op(sim_trace *t, sim_time time, const char *node, int64_t id,
	       const char *type, const char *action, int64_t depth)
{
	sim_op_row r = {.time = time,
			.node = node,
			.op_id = id,
			.op_type = type,
			.action = action,
			.depth = depth,
			.cause_kind = "api",
			.cause_id = -1};
	sim_trace_op(t, &r);
}

static void packet(sim_trace *t, int64_t id, int64_t parent, const char *src,
		   const char *dst, sim_time send, const char *fate,
		   const char *ptype, const char *frames)
{
	sim_packet_row p = {.id = id,
			    .parent = parent,
			    .link = "link0",
			    .src = src,
			    .dst = dst,
			    .proto = "quic",
			    .send_ns = send,
			    .deliver_ns = strcmp(fate, "lost") ? send + 10 : -1,
			    .len = 100,
			    .fate = fate,
			    .reason = strcmp(fate, "lost") ? NULL : "loss",
			    .dup_of = -1,
			    .ptype = ptype,
			    .pn = parent < 0 ? -1 : id,
			    .frames = frames,
			    .hs_state = "keys=I complete=0 confirmed=0"};
	sim_trace_packet(t, &p);
}

static void tls(sim_trace *t, sim_time time, const char *node,
		const char *event, const char *detail)
{
	sim_tls_row r = {.time = time,
			 .node = node,
			 .event = event,
			 .code = -1,
			 .detail = detail};
	sim_trace_tls(t, &r);
}

/* Two runs: the first a decoy with one lost packet, the second the one
 * read. In the second the server's node comes first, but the client
 * sends first, so it is the left lane. */
static int write_trace(void)
{
	char err[512];
	sim_trace *t = NULL;
	if (sim_trace_open(path("t.db"), &t, err, sizeof(err)) != 0) {
		return -1;
	}
	sim_run_info info = {.scenario = "s.lua", .seed = 1, .params = ""};
	sim_run_result res = {.outcome = "pass", .end_ns = 100};
	sim_trace_begin(t, &info);
	packet(t, 1, -1, "a", "b", 0, "lost", "datagram", "1rtt");
	sim_trace_end(t, &res, NULL, NULL);

	sim_trace_begin(t, &info);
	sim_trace_node(t, 0, "world", "world");
	sim_trace_node(t, 1, "script", "script");
	sim_trace_node(t, 2, "server", "quic_server");
	sim_trace_node(t, 3, "client", "quic_client");
	/* time 0: the packet is written before the op and tls rows, but
	 * lists after them. */
	packet(t, 1, -1, "client", "server", 0, "delivered", "datagram",
	       "initial+handshake");
	packet(t, 2, 1, "client", "server", 0, "delivered", "initial",
	       "CRYPTO(0+10)");
	packet(t, 3, 1, "client", "server", 0, "delivered", "handshake",
	       "PADDING(5)");
	op(t, 0, "client", 1, "start", "enqueue", 1);
	op(t, 0, "client", 1, "start", "dequeue", 0);
	op(t, 0, "client", 2, "shutdown", "enqueue_front", 1);
	op(t, 0, "client", 1, "start", "complete", 1);
	tls(t, 0, "client", "keys", "TLS_AES_128_GCM_SHA256");
	tls(t, 0, "client", "state", "TLS 1.3 client start");
	sim_trace_log(t, 0, "script",
		      "esc \x1b[31m bad \xff bidi \xe2\x80\xae ok \xc3\xa9");
	/* time 10 */
	op(t, 10, "server", 3, "recv", "enqueue", 1);
	packet(t, 4, -1, "server", "client", 10, "lost", "datagram", "1rtt");
	sim_trace_check(t, 50, 0, "it failed", "s.lua:9", NULL);
	sim_trace_check(t, 50, 1, "it held", "s.lua:8", NULL);
	res.outcome = "fail";
	int rc = sim_trace_end(t, &res, NULL, NULL);
	sim_trace_close(t);
	return rc;
}

static sim_report *open_run(const sim_report_opts *o)
{
	char err[512];
	sim_report *r = NULL;
	int rc = sim_report_open(path("t.db"), o, &r, err, sizeof(err));
	if (rc != 0) {
		unit_fail(__FILE__, __LINE__, "sim_report_open: %s", err);
	}
	return r;
}

TEST(report_items)
{
	REQUIRE(write_trace() == 0);
	sim_report_opts o = {.to_ns = SIM_TIME_MAX};
	sim_report *r = open_run(&o);
	REQUIRE(r != NULL);
	CHECK_INT(r->run, 2);
	CHECK_INT(r->runs, 2);
	CHECK(strcmp(r->outcome, "fail") == 0);
	REQUIRE(r->nlanes == 2);
	CHECK(strcmp(r->lanes[0], "client") == 0);
	CHECK(strcmp(r->lanes[1], "server") == 0);
	CHECK(strcmp(r->lane_kind[0], "quic_client") == 0);
	CHECK_INT(r->n_arrows, 2);
	CHECK_INT(r->n_packet_rows, 4);
	CHECK_INT(r->n_lost_arrows, 1);
	CHECK_INT(r->hidden_tls, 1);
	CHECK_INT(r->nchecks, 2);

	/* start (merged: enqueue, dequeue), shutdown, start (complete),
	 * keys, the datagram, the log; then recv, the lost datagram, the
	 * failed check (the held one is not an item). */
	static const sim_report_kind want[] = {
	    SIM_REPORT_OP,  SIM_REPORT_OP,     SIM_REPORT_OP,
	    SIM_REPORT_TLS, SIM_REPORT_PACKET, SIM_REPORT_LOG,
	    SIM_REPORT_OP,  SIM_REPORT_PACKET, SIM_REPORT_CHECK};
	REQUIRE(r->nitems == sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < r->nitems; i++) {
		CHECK_INT(r->items[i].kind, want[i]);
	}
	const sim_report_item *it = &r->items[0];
	CHECK_INT(it->u.op.nsteps, 2);
	CHECK_INT(it->lane, 0);
	CHECK_INT(r->items[2].u.op.nsteps, 1);
	char text[512];
	sim_report_item_text(&r->items[1], text, sizeof(text));
	CHECK(strcmp(text, "shutdown [op2] enqueue_front(1)") == 0);
	it = &r->items[4];
	CHECK_INT(it->u.pkt.p.id, 1);
	CHECK_INT(it->lane, 0);
	CHECK_INT(it->u.pkt.dst_lane, 1);
	REQUIRE(it->u.pkt.nsub == 2);
	sim_report_sub_label(&it->u.pkt.sub[1], text, sizeof(text));
	CHECK(strcmp(text, "handshake pn=3 PADDING(5)") == 0);
	sim_report_pkt_label(&r->items[7].u.pkt.p, text, sizeof(text));
	CHECK(strcmp(text, "#4 1rtt 100B LOST(loss)") == 0);
	/* Display-safe: control bytes, a stray byte and a bidi override
	 * become text; valid UTF-8 stays. */
	it = &r->items[5];
	CHECK_INT(it->lane, -1);
	CHECK(strcmp(it->u.log.text, "esc \\x1b[31m bad \\xff bidi "
				     "\\u{202e} ok \xc3\xa9") == 0);
	sim_report_del(r);

	/* States on; a window; a limit. */
	o.tls_states = 1;
	o.from_ns = 5;
	r = open_run(&o);
	REQUIRE(r != NULL);
	CHECK_INT(r->hidden_tls, 0);
	CHECK_INT(r->nitems, 3);
	/* Before 5: 4 op rows, 2 tls rows, 3 packet rows, 1 log row. */
	CHECK_INT(r->rows_before, 10);
	sim_report_del(r);
	o.from_ns = 0;
	o.to_ns = 5;
	o.limit = 2;
	r = open_run(&o);
	REQUIRE(r != NULL);
	CHECK_INT(r->nitems, 2);
	/* Left in the window: start's complete, keys, state, 3 packet
	 * rows, the log. */
	CHECK_INT(r->rows_past_limit, 7);
	/* After 5: recv, the lost datagram, the failed check. */
	CHECK_INT(r->rows_after, 3);
	sim_report_del(r);
	cleanup();
}

TEST(report_queries)
{
	REQUIRE(write_trace() == 0);
	REQUIRE(mkdir(path("q"), 0700) == 0);
	FILE *f = fopen(path("q/mine.sql"), "w");
	REQUIRE(f != NULL);
	fputs("-- lost packets, then ops\n.headers on\n"
	      "SELECT run, id FROM packet WHERE fate = 'lost';\n"
	      "SELECT run, op_type FROM op -- trailing comment\n;\n",
	      f);
	fclose(f);
	char dir_q[600];
	snprintf(dir_q, sizeof(dir_q), "%s", path("q"));
	sim_report_opts o = {.to_ns = SIM_TIME_MAX, .queries_dir = dir_q};
	sim_report *r = open_run(&o);
	REQUIRE(r != NULL);
	REQUIRE(r->nqueries == 1);
	const sim_report_query *q = &r->queries[0];
	CHECK(q->error == NULL);
	/* Run 2 only: one lost packet and five op rows. */
	CHECK_INT(q->rows, 6);
	CHECK(strcmp(q->first[0], "id=4") == 0);
	char v[128];
	sim_report_query_verdict(q, v, sizeof(v));
	CHECK(strcmp(v, "matches (6 rows)") == 0);
	sim_report_del(r);
	o.run = 1;
	r = open_run(&o);
	REQUIRE(r != NULL);
	CHECK_INT(r->queries[0].rows, 1);
	sim_report_del(r);
	cleanup();
}

static char *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	char *buf = malloc(1 << 20);
	*n = f && buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (f) {
		fclose(f);
	}
	if (buf) {
		buf[*n] = '\0';
	}
	return buf;
}

TEST(report_html)
{
	REQUIRE(write_trace() == 0);
	sim_report_opts o = {.to_ns = SIM_TIME_MAX, .tls_states = 1};
	sim_report *r = open_run(&o);
	REQUIRE(r != NULL);
	char err[512];
	CHECK_INT(sim_html_write(r, path("a.html"), err, sizeof(err)), 0);
	CHECK_INT(sim_html_write(r, path("b.html"), err, sizeof(err)), 0);
	size_t na, nb;
	char *a = slurp(path("a.html"), &na), *b = slurp(path("b.html"), &nb);
	REQUIRE(a != NULL && b != NULL);
	CHECK(na > 1000 && na == nb && memcmp(a, b, na) == 0);
	CHECK(strstr(a, "\"k\":\"p\"") != NULL);
	/* The log's text, escaped for JSON in a script element. */
	CHECK(strstr(a, "esc \\\\x1b[31m bad") != NULL);
	CHECK(strstr(a, "http://") == NULL && strstr(a, "https://") == NULL);
	free(a);
	free(b);
	/* A missing directory: an error naming the file, nothing left. */
	char bad[700];
	snprintf(bad, sizeof(bad), "%s/none/x.html", dir);
	CHECK_INT(sim_html_write(r, bad, err, sizeof(err)), SIM_ENOENT);
	CHECK(strstr(err, "none/x.html: cannot write the report") != NULL);
	sim_report_del(r);
	cleanup();
}

TEST(report_errors)
{
	char err[512];
	sim_report *r = NULL;
	sim_report_opts o = {.to_ns = SIM_TIME_MAX};
	CHECK_INT(sim_report_open(path("missing.db"), &o, &r, err, sizeof(err)),
		  SIM_ENOENT);
	CHECK(r == NULL);
	/* A trace with no runs. */
	sim_trace *t = NULL;
	REQUIRE(sim_trace_open(path("empty.db"), &t, err, sizeof(err)) == 0);
	sim_trace_close(t);
	CHECK_INT(sim_report_open(path("empty.db"), &o, &r, err, sizeof(err)),
		  SIM_EINVAL);
	CHECK(strstr(err, "empty.db: no runs in this trace") != NULL);
	REQUIRE(write_trace() == 0);
	o.run = 7;
	CHECK_INT(sim_report_open(path("t.db"), &o, &r, err, sizeof(err)),
		  SIM_EINVAL);
	CHECK(strstr(err, "t.db: no run 7 (runs 1..2)") != NULL);
	cleanup();
}

/* Schedules: the scheduler's choice points and chains, plans as text, and
 * the property everything rests on: a run's record, forced, is the same
 * run (same digest), for choices and for every kind of link fault. */
#include <stdlib.h>

#include "sim/lua.h"
#include "sim/schedule.h"
#include "sim/sched.h"
#include "sim/trace.h"
#include "tests/unit.h"

typedef struct log {
	int order[16];
	uint64_t chain[16];
	int n;
} log;

typedef struct ev {
	log *l;
	int tag;
	int spawn; /* schedule a child event at the same time */
	struct ev *child;
} ev;

static void note(sim_sched *s, void *arg, sim_event_id id)
{
	ev *e = arg;
	(void)id;
	if (e->l->n < 16) {
		e->l->chain[e->l->n] = sim_sched_current_chain(s);
		e->l->order[e->l->n++] = e->tag;
	}
	if (e->spawn) {
		sim_sched_after(s, 0, 0, 0, note, e->child);
	}
}

typedef struct pick {
	size_t want[8];
	size_t arity[8];
	int n;
} pick;

static size_t choose_fixed(void *ud, sim_time t, const sim_sched_cand *c,
			   size_t n)
{
	pick *p = ud;
	(void)t;
	(void)c;
	size_t w = p->n < 8 ? p->want[p->n] : 0;
	if (p->n < 8) {
		p->arity[p->n] = n;
	}
	p->n++;
	return w;
}

/* Three simultaneous events: two choice points (3, then 2 candidates);
 * the chooser's picks decide the order; an out-of-range pick runs the
 * first. */
TEST(sched_chooser_decides_ties)
{
	sim_sched *s = sim_sched_new(7);
	REQUIRE(s != NULL);
	log l = {0};
	ev e[3] = {{&l, 0, 0, NULL}, {&l, 1, 0, NULL}, {&l, 2, 0, NULL}};
	for (int i = 0; i < 3; i++) {
		sim_sched_at(s, 10, 0, 0, note, &e[i]);
	}
	sim_sched_at(s, 20, 0, 0, note, &e[0]); /* alone: no choice point */
	pick p = {.want = {2, 99}};
	sim_sched_set_chooser(s, choose_fixed, &p);
	CHECK_INT(sim_sched_run(s, NULL), SIM_STOP_IDLE);
	CHECK_INT(p.n, 2);
	CHECK_INT(p.arity[0], 3);
	CHECK_INT(p.arity[1], 2);
	CHECK_INT(l.n, 4);
	sim_sched_del(s);

	/* The same picks in the default order, to name candidates. */
	sim_sched *d = sim_sched_new(7);
	log ld = {0};
	for (int i = 0; i < 3; i++) {
		e[i].l = &ld;
		sim_sched_at(d, 10, 0, 0, note, &e[i]);
	}
	sim_sched_run(d, NULL);
	sim_sched_del(d);
	/* pick 2 = the default's third; then pick 0 = the default's first
	 * of the two left. */
	CHECK_INT(l.order[0], ld.order[2]);
	CHECK_INT(l.order[1], ld.order[0]);
	CHECK_INT(l.order[2], ld.order[1]);
}

/* Events inherit the chain of the event that scheduled them; a new chain
 * is asked for; events made outside any event are chain 0. Events due now
 * from a handler are not candidates of the running group (next pass). */
TEST(sched_chains)
{
	sim_sched *s = sim_sched_new(1);
	log l = {0};
	ev child = {&l, 9, 0, NULL};
	ev a = {&l, 1, 1, &child};
	ev b = {&l, 2, 0, NULL};
	sim_sched_at(s, 5, 0, 0, note, &a); /* chain 0 */
	sim_sched_new_chain(s);
	sim_sched_at(s, 5, 0, 0, note, &b); /* chain 1 */
	pick p = {.want = {0}};
	sim_sched_set_chooser(s, choose_fixed, &p);
	sim_sched_run(s, NULL);
	CHECK_INT(l.n, 3);
	CHECK_INT(p.n, 1); /* the child runs in the next pass, alone */
	for (int i = 0; i < l.n; i++) {
		CHECK_INT(l.chain[i], l.order[i] == 2 ? 1 : 0);
	}
	CHECK_INT(l.order[2], 9);
	sim_sched_del(s);
}

TEST(schedule_text_round_trip)
{
	static const char text[] = "order fifo\n"
				   "choice 0 2\n"
				   "choice 17 1\n"
				   "faults forced\n"
				   "fault 0 ab 3 lost burst_loss\n"
				   "fault 0 ab 4 delay 1234\n"
				   "fault 0 ab 4 reorder 15000000\n"
				   "fault 0 ba 1 corrupt 3,77,4000\n"
				   "fault 1 ab 9 dup 1000\n";
	sim_plan p;
	char err[256];
	sim_plan_init(&p);
	REQUIRE(sim_plan_parse(&p, "# a comment\n\n   # x\n", "c", 1, err,
			       sizeof(err)) == 0);
	CHECK(sim_plan_is_plain(&p));
	REQUIRE(sim_plan_parse(&p, text, "t", 1, err, sizeof(err)) == 0);
	CHECK_INT(p.nchoices, 2);
	CHECK_INT(p.nfaults, 5);
	CHECK(!sim_plan_is_plain(&p));
	char *out = sim_plan_format(&p);
	REQUIRE(out != NULL);
	CHECK_STR(out, text);
	free(out);
	/* Out-of-order input comes out sorted; a zero choice removes. */
	REQUIRE(sim_plan_parse(&p,
			       "fault 0 ba 1 lost loss\nfault 0 ab 2 lost "
			       "loss\nchoice 5 1\nchoice 2 3\nchoice 5 0\n",
			       "t", 1, err, sizeof(err)) == 0);
	out = sim_plan_format(&p);
	CHECK_STR(out, "order keys\nchoice 2 3\nfault 0 ab 2 lost loss\n"
		       "fault 0 ba 1 lost loss\n");
	free(out);
	sim_plan copy;
	sim_plan_init(&copy);
	REQUIRE(sim_plan_copy(&copy, &p) == 0);
	CHECK_INT(copy.nfaults, 2);
	sim_plan_free(&copy);
	sim_plan_free(&p);
}

TEST(schedule_parse_errors)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	    {"order random\n", "f:1: order must be keys or fifo"},
	    {"\n\nchoice x 1\n", "f:3: choice: expected POINT INDEX"},
	    {"faults sometimes\n", "f:1: faults must be random or forced"},
	    {"fault 0 ab 0 lost loss\n",
	     "f:1: fault: expected a packet number (from 1)"},
	    {"fault 0 ab 1 lost often\n",
	     "f:1: fault lost: reason must be loss or burst_loss"},
	    {"fault 0 ab 1 melt 3\n",
	     "f:1: fault: unknown kind 'melt' (lost, delay, reorder, corrupt, "
	     "dup)"},
	    {"fault 0 ab 1 delay -5\n",
	     "f:1: fault delay: expected a duration in ns"},
	    {"fault 0 ab 1 corrupt 1,\n",
	     "f:1: fault corrupt: expected up to 64 bit offsets separated by "
	     "commas"},
	    {"fault 0 ab 1 dup 5 extra\n", "f:1: fault: unexpected ' extra'"},
	    {"seed 3\n", "f:1: unknown directive 'seed' (order, choice, "
			 "faults, fault)"},
	};
	sim_plan p;
	sim_plan_init(&p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		CHECK(sim_plan_parse(&p, cases[i].text, "f", 1, err,
				     sizeof(err)) != 0);
		CHECK_STR(err, cases[i].want);
	}
	sim_plan_free(&p);
	sim_schedule_file f;
	char err[256];
	CHECK(sim_schedule_file_parse(&f, "order fifo\n", "s", err,
				      sizeof(err)) != 0);
	CHECK_STR(err, "s:1: not a schedule file (the first line must start "
		       "with '# tlsim schedule 1')");
	sim_schedule_file_free(&f);
	REQUIRE(sim_schedule_file_parse(&f,
					"# tlsim schedule 1\nscenario a b.lua\n"
					"seed 4\nset k=v=w\nchoice 1 1\n",
					"s", err, sizeof(err)) == 0);
	CHECK_STR(f.scenario, "a b.lua");
	CHECK_INT(f.seed, 4);
	CHECK_INT(f.nset, 1);
	CHECK_STR(f.set_key[0], "k");
	CHECK_STR(f.set_val[0], "v=w");
	CHECK_INT(f.plan.nchoices, 1);
	char *text = sim_schedule_file_format(&f, "two\nlines");
	CHECK_STR(text, "# tlsim schedule 1\n# two\n# lines\nscenario a "
			"b.lua\nseed 4\nset k=v=w\norder keys\nchoice 1 1\n");
	free(text);
	sim_schedule_file_free(&f);
}

/* A lossy, jittery, duplicating, reordering, corrupting link and tie-break
 * choices: the run recorded in FIFO order and forced is the same run,
 * row for row (the digest), and so is the keys-order record. */
static const char scenario[] =
	"local w = tlsim.world{ seed = 5 }\n"
	"w:link{ latency = '10ms', jitter = '3ms', loss = 0.15, dup = 0.1,\n"
	"        reorder = 0.2, reorder_delay = '7ms', corrupt = 0.1,\n"
	"        corrupt_bits = 3 }\n"
	"local srv = w:echo_server{}\n"
	"local cli = w:echo_client{ count = 30, interval = '1ms',\n"
	"                           rto = '50ms', max_retries = 20 }\n"
	"for i = 1, 6 do w:after('2ms', function() w:log('tick ' .. i) end) "
	"end\n"
	"cli:start()\n"
	"w:run{ limit = '30s' }\n";

static int run_digest(sim_schedule *sch, char digest[65])
{
	char err[256];
	sim_trace *t = NULL;
	if (sim_trace_open(NULL, &t, err, sizeof(err)) != 0) {
		return -1;
	}
	sim_lua_opts o = {.path = "inline.lua",
			  .source = scenario,
			  .source_len = sizeof(scenario) - 1,
			  .sha256 = "0",
			  .trace = t,
			  .schedule = sch};
	sim_lua_result r;
	int rc = sim_lua_run(&o, &r);
	memcpy(digest, r.digest, 65);
	sim_trace_close(t);
	return rc == SIM_STATUS_PASS || rc == SIM_STATUS_FAIL ? 0 : -1;
}

TEST(schedule_record_forced_is_the_same_run)
{
	char plain[65], rec_fifo[65], rec_keys[65], forced[65];
	REQUIRE(run_digest(NULL, plain) == 0);
	for (int order = 0; order < 2; order++) {
		sim_schedule *r = sim_schedule_new();
		REQUIRE(r != NULL);
		sim_schedule_set_record_order(r, order ? SIM_ORDER_FIFO
						       : SIM_ORDER_KEYS);
		REQUIRE(run_digest(r, order ? rec_fifo : rec_keys) == 0);
		const sim_plan *rec = sim_schedule_record(r);
		size_t kinds[5] = {0};
		for (size_t i = 0; i < rec->nfaults; i++) {
			kinds[rec->faults[i].kind]++;
		}
		for (int k = 0; k < 5; k++) {
			CHECK(kinds[k] > 0); /* every kind of fault happened */
		}
		CHECK(sim_schedule_points(r) >= 5);
		if (order) {
			CHECK(rec->nchoices > 0); /* the keys beat FIFO */
		} else {
			CHECK_INT(rec->nchoices, 0);
		}
		sim_schedule *f = sim_schedule_new();
		REQUIRE(f != NULL);
		REQUIRE(sim_plan_copy(sim_schedule_plan(f), rec) == 0);
		REQUIRE(run_digest(f, forced) == 0);
		CHECK_STR(forced, plain);
		/* Forcing records the same again. */
		char *a = sim_plan_format(rec);
		char *b = sim_schedule_replay_text(f);
		CHECK_STR(a, b);
		free(a);
		free(b);
		sim_schedule_del(f);
		sim_schedule_del(r);
	}
	/* Recording changes nothing. */
	CHECK_STR(rec_fifo, plain);
	CHECK_STR(rec_keys, plain);
	/* And a forced plan without its faults is a different run. */
	sim_schedule *none = sim_schedule_new();
	sim_schedule_plan(none)->faults_forced = 1;
	REQUIRE(run_digest(none, forced) == 0);
	CHECK(strcmp(forced, plain) != 0);
	sim_schedule_del(none);
}

/* Random and PCT strategies are deterministic per stream seed and differ
 * across seeds. */
TEST(schedule_strategies_deterministic)
{
	char d[4][65];
	for (int strat = 0; strat < 2; strat++) {
		for (int i = 0; i < 4; i++) {
			sim_schedule *s = sim_schedule_new();
			REQUIRE(s != NULL);
			sim_schedule_set_strategy(
			    s,
			    strat ? SIM_STRATEGY_PCT : SIM_STRATEGY_RANDOM,
			    (uint64_t)(i / 2) + 100, 3, 10);
			REQUIRE(run_digest(s, d[i]) == 0);
			sim_schedule_del(s);
		}
		CHECK_STR(d[0], d[1]);
		CHECK_STR(d[2], d[3]);
		CHECK(strcmp(d[0], d[2]) != 0);
	}
}

/* Scheduler: ordering by (time, pass, tie key, seq), cancel by id, limits,
 * livelock detection. Time is stepped by the scheduler itself. */
#include <stdlib.h>

#include "sim/sched.h"
#include "tests/unit.h"

typedef struct rec {
	int order[64];
	sim_time when[64];
	int n;
} rec;

typedef struct ev {
	rec *r;
	int tag;
} ev;

static void note(sim_sched *s, void *arg, sim_event_id id)
{
	ev *e = arg;
	(void)id;
	if (e->r->n < 64) {
		e->r->when[e->r->n] = sim_sched_now(s);
		e->r->order[e->r->n++] = e->tag;
	}
}

TEST(sched_time_order)
{
	sim_sched *s = sim_sched_new(1);
	REQUIRE(s != NULL);
	rec r = {0};
	ev e[4] = {{&r, 0}, {&r, 1}, {&r, 2}, {&r, 3}};
	int k = sim_sched_kind(s, "t");
	sim_sched_at(s, 30, 0, k, note, &e[0]);
	sim_sched_at(s, 10, 0, k, note, &e[1]);
	sim_sched_at(s, 20, 0, k, note, &e[2]);
	sim_sched_after(s, 5, 0, k, note, &e[3]);
	CHECK_INT(sim_sched_pending(s), 4);
	CHECK_INT(sim_sched_run(s, NULL), SIM_STOP_IDLE);
	CHECK_INT(r.n, 4);
	CHECK_INT(r.order[0], 3);
	CHECK_INT(r.order[1], 1);
	CHECK_INT(r.order[2], 2);
	CHECK_INT(r.order[3], 0);
	CHECK_INT(r.when[3], 30);
	CHECK_INT(sim_sched_now(s), 30);
	CHECK_INT(sim_sched_events(s), 4);
	sim_sched_del(s);
}

/* Simultaneous events: the order is a function of the seed, the same for
 * the same seed, and different seeds give different orders. */
static void order_for_seed(uint64_t seed, int out[8])
{
	sim_sched *s = sim_sched_new(seed);
	rec r = {0};
	ev e[8];
	for (int i = 0; i < 8; i++) {
		e[i].r = &r;
		e[i].tag = i;
		sim_sched_at(s, 100, 0, 0, note, &e[i]);
	}
	sim_sched_run(s, NULL);
	for (int i = 0; i < 8; i++) {
		out[i] = r.order[i];
	}
	sim_sched_del(s);
}

TEST(sched_ties_follow_seed)
{
	int a[8], b[8], c[8];
	order_for_seed(1, a);
	order_for_seed(1, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	int differ = 0;
	for (uint64_t seed = 2; seed < 10; seed++) {
		order_for_seed(seed, c);
		differ += memcmp(a, c, sizeof(a)) != 0;
	}
	CHECK(differ >= 7);
}

static uint64_t fixed_key(void *ud, sim_time t, int node, int kind)
{
	(void)ud;
	(void)t;
	(void)node;
	(void)kind;
	return 0;
}

TEST(sched_ties_insertion_order_with_equal_keys)
{
	sim_sched *s = sim_sched_new(1);
	sim_sched_hooks h = {.tiebreak = fixed_key};
	sim_sched_set_hooks(s, &h);
	rec r = {0};
	ev e[5];
	for (int i = 0; i < 5; i++) {
		e[i].r = &r;
		e[i].tag = i;
		sim_sched_at(s, 7, 0, 0, note, &e[i]);
	}
	sim_sched_run(s, NULL);
	for (int i = 0; i < 5; i++) {
		CHECK_INT(r.order[i], i);
	}
	sim_sched_del(s);
}

/* An event scheduled for "now" by a running handler goes after all events
 * that were already due at that time, whatever its tie key. */
typedef struct spawner {
	rec *r;
	ev child;
	int tag;
} spawner;

static void spawn(sim_sched *s, void *arg, sim_event_id id)
{
	spawner *sp = arg;
	(void)id;
	sp->r->order[sp->r->n++] = sp->tag;
	sim_sched_after(s, 0, 0, 0, note, &sp->child);
}

TEST(sched_now_events_go_to_next_pass)
{
	for (uint64_t seed = 1; seed <= 20; seed++) {
		sim_sched *s = sim_sched_new(seed);
		rec r = {0};
		spawner sp[4];
		for (int i = 0; i < 4; i++) {
			sp[i].r = &r;
			sp[i].tag = i;
			sp[i].child.r = &r;
			sp[i].child.tag = 10 + i;
			sim_sched_at(s, 50, 0, 0, spawn, &sp[i]);
		}
		sim_sched_run(s, NULL);
		REQUIRE(r.n == 8);
		for (int i = 0; i < 4; i++) {
			CHECK(r.order[i] < 10);
			CHECK(r.order[4 + i] >= 10);
		}
		sim_sched_del(s);
	}
}

TEST(sched_cancel)
{
	sim_sched *s = sim_sched_new(1);
	rec r = {0};
	ev e[3] = {{&r, 0}, {&r, 1}, {&r, 2}};
	sim_event_id a = sim_sched_at(s, 10, 0, 0, note, &e[0]);
	sim_event_id b = sim_sched_at(s, 20, 0, 0, note, &e[1]);
	sim_sched_at(s, 30, 0, 0, note, &e[2]);
	CHECK(a != 0 && b != 0 && a != b);
	CHECK_INT(sim_sched_cancel(s, b), 1);
	CHECK_INT(sim_sched_cancel(s, b), 0);
	CHECK_INT(sim_sched_cancel(s, 0), 0);
	CHECK_INT(sim_sched_cancel(s, 0xdead00000001ULL), 0);
	CHECK_INT(sim_sched_pending(s), 2);
	sim_sched_run(s, NULL);
	CHECK_INT(r.n, 2);
	CHECK_INT(r.order[0], 0);
	CHECK_INT(r.order[1], 2);
	/* A fired event's id no longer cancels anything, even when its slot
	 * is reused. */
	sim_event_id c = sim_sched_at(s, 40, 0, 0, note, &e[0]);
	CHECK_INT(sim_sched_cancel(s, a), 0);
	CHECK_INT(sim_sched_pending(s), 1);
	CHECK_INT(sim_sched_cancel(s, c), 1);
	sim_sched_del(s);
}

TEST(sched_limits)
{
	sim_sched *s = sim_sched_new(1);
	rec r = {0};
	ev e[5];
	for (int i = 0; i < 5; i++) {
		e[i].r = &r;
		e[i].tag = i;
		sim_sched_at(s, (i + 1) * 100, 0, 0, note, &e[i]);
	}
	sim_run_limits lim = {.until = 250, .max_events = 0};
	CHECK_INT(sim_sched_run(s, &lim), SIM_STOP_TIME_LIMIT);
	CHECK_INT(r.n, 2);
	CHECK_INT(sim_sched_now(s), 250);
	lim.until = SIM_TIME_MAX;
	lim.max_events = 2;
	CHECK_INT(sim_sched_run(s, &lim), SIM_STOP_EVENT_LIMIT);
	CHECK_INT(r.n, 4);
	CHECK_INT(sim_sched_run(s, NULL), SIM_STOP_IDLE);
	CHECK_INT(r.n, 5);
	sim_sched_set_max_pending(s, 1);
	CHECK(sim_sched_at(s, 600, 0, 0, note, &e[0]) != 0);
	CHECK(sim_sched_at(s, 700, 0, 0, note, &e[0]) == 0);
	CHECK(sim_sched_error(s) != 0);
	sim_sched_del(s);
}

static void self_loop(sim_sched *s, void *arg, sim_event_id id)
{
	int *kind = arg;
	(void)id;
	sim_sched_after(s, 0, 1, *kind, self_loop, arg);
}

static void ticker(sim_sched *s, void *arg, sim_event_id id)
{
	int *kind = arg;
	(void)id;
	if (sim_sched_now(s) < 1000) {
		sim_sched_after(s, 1, 2, *kind, ticker, arg);
	}
}

TEST(sched_livelock_named)
{
	sim_sched *s = sim_sched_new(1);
	int n1 = sim_sched_node(s, "client");
	int n2 = sim_sched_node(s, "server");
	CHECK_INT(n1, 1);
	CHECK_INT(n2, 2);
	CHECK_INT(sim_sched_node(s, "client"), 1);
	int spin = sim_sched_kind(s, "retry");
	int tick = sim_sched_kind(s, "tick");
	sim_sched_set_livelock(s, 10000);
	/* A ticker that advances time never trips detection... */
	sim_sched_at(s, 0, n2, tick, ticker, &tick);
	CHECK_INT(sim_sched_run(s, NULL), SIM_STOP_IDLE);
	/* ...a handler that reschedules itself at the same time does. */
	sim_sched_at(s, 5000, n1, spin, self_loop, &spin);
	CHECK_INT(sim_sched_run(s, NULL), SIM_STOP_LIVELOCK);
	int node, kind;
	uint64_t count;
	sim_sched_livelock_culprit(s, &node, &kind, &count);
	CHECK_STR(sim_sched_node_name(s, node), "client");
	CHECK_STR(sim_sched_kind_name(s, kind), "retry");
	CHECK(count >= 4000);
	CHECK_INT(sim_sched_now(s), 5000);
	sim_sched_del(s);
}

/* Many events with random times: always non-decreasing time, and the same
 * sequence for the same seed. */
typedef struct churn {
	sim_time last;
	int bad;
	uint64_t sum;
	uint64_t x;
	int left;
} churn;

static void churn_fn(sim_sched *s, void *arg, sim_event_id id)
{
	churn *c = arg;
	(void)id;
	if (sim_sched_now(s) < c->last) {
		c->bad++;
	}
	c->last = sim_sched_now(s);
	c->sum = c->sum * 31 + (uint64_t)sim_sched_now(s);
	if (c->left-- > 0) {
		c->x = c->x * 6364136223846793005ULL + 1442695040888963407ULL;
		sim_sched_after(s, (sim_time)(c->x >> 54), 0, 0, churn_fn, c);
	}
}

TEST(sched_churn)
{
	uint64_t sums[2];
	for (int k = 0; k < 2; k++) {
		sim_sched *s = sim_sched_new(11);
		churn c = {.x = 1, .left = 100000};
		for (int i = 0; i < 1000; i++) {
			sim_sched_at(s, i, 0, 0, churn_fn, &c);
		}
		sim_sched_run(s, NULL);
		CHECK_INT(c.bad, 0);
		CHECK_INT(sim_sched_events(s), 101000);
		sums[k] = c.sum;
		sim_sched_del(s);
	}
	CHECK_U64(sums[0], sums[1]);
}

/* Operation queue: front/tail order, drain size, depth, caps. */
#include <stdlib.h>

#include "sim/opq.h"
#include "sim/world.h"
#include "tests/unit.h"

typedef struct seen {
	const char *type[64];
	sim_time at[64];
	int n;
	sim_opq *q;
	int enqueue_more;
} seen;

static void process(void *ud, sim_op *op)
{
	seen *s = ud;
	if (s->n < 64) {
		s->type[s->n] = op->type;
		s->at[s->n] = sim_world_now(s->q->w);
		s->n++;
	}
	if (s->enqueue_more > 0) {
		s->enqueue_more--;
		sim_op more = {.type = "more", .cause_kind = "op",
			       .cause_id = op->id};
		sim_opq_enqueue(s->q, &more, 0);
	}
}

TEST(opq_front_and_tail)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	int node = sim_sched_node(w.sched, "client");
	sim_opq q;
	seen s = {.q = &q};
	REQUIRE(sim_opq_init(&q, &w, node, 0, 0, process, &s) == 0);
	/* MsQuic's order: validation-complete at the tail, shutdown at the
	 * front: shutdown runs first. */
	sim_op a = {.type = "validation_complete", .cause_kind = "api"};
	sim_op b = {.type = "shutdown", .cause_kind = "api"};
	CHECK(sim_opq_enqueue(&q, &a, 0) > 0);
	CHECK(sim_opq_enqueue(&q, &b, 1) > 0);
	CHECK_INT(sim_opq_depth(&q), 2);
	sim_sched_run(w.sched, NULL);
	REQUIRE(s.n == 2);
	CHECK_STR(s.type[0], "shutdown");
	CHECK_STR(s.type[1], "validation_complete");
	CHECK_INT(sim_opq_depth(&q), 0);
	sim_opq_free(&q);
	sim_world_free(&w);
}

TEST(opq_drain_max_and_growth)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_opq q;
	seen s = {.q = &q};
	REQUIRE(sim_opq_init(&q, &w, 0, 0, 4, process, &s) == 0);
	static const char *const names[] = {"0", "1", "2", "3", "4", "5",
					    "6", "7", "8", "9"};
	for (int i = 0; i < 10; i++) {
		sim_op op = {.type = names[i]};
		sim_opq_enqueue(&q, &op, 0);
	}
	for (int i = 0; i < 30; i++) { /* past the initial ring of 16 */
		sim_op op = {.type = "x"};
		sim_opq_enqueue(&q, &op, i % 2);
	}
	CHECK_INT(q.max_depth, 40);
	uint64_t before = sim_sched_events(w.sched);
	sim_sched_run(w.sched, NULL);
	/* 40 ops, 4 per drain: 10 drain events. */
	CHECK_INT(sim_sched_events(w.sched) - before, 10);
	CHECK_INT(q.processed, 40);
	sim_opq_free(&q);
	sim_world_free(&w);
}

TEST(opq_cap_drops)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_opq q;
	seen s = {.q = &q};
	REQUIRE(sim_opq_init(&q, &w, 0, 3, 0, process, &s) == 0);
	for (int i = 0; i < 3; i++) {
		sim_op op = {.type = "ok", .args = {.data = malloc(8)}};
		CHECK(sim_opq_enqueue(&q, &op, 0) > 0);
	}
	sim_op op = {.type = "over", .args = {.data = malloc(8)}};
	CHECK(sim_opq_enqueue(&q, &op, 0) < 0); /* dropped, data freed */
	CHECK_INT(sim_opq_depth(&q), 3);
	sim_opq_free(&q); /* frees the queued ops' data */
	sim_world_free(&w);
}

TEST(opq_ops_enqueued_while_draining)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_opq q;
	seen s = {.q = &q, .enqueue_more = 3};
	REQUIRE(sim_opq_init(&q, &w, 0, 0, 16, process, &s) == 0);
	sim_op op = {.type = "first"};
	sim_opq_enqueue(&q, &op, 0);
	sim_sched_run(w.sched, NULL);
	CHECK_INT(s.n, 4);
	CHECK_STR(s.type[3], "more");
	sim_opq_free(&q);
	sim_world_free(&w);
}

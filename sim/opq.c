#include "sim/opq.h"

#include <stdlib.h>
#include <string.h>

#include "sim/err.h"

static void trace_step(sim_opq *q, const sim_op *op, const char *action,
		       const char *detail)
{
	if (q->w->trace == NULL) {
		return;
	}
	sim_op_row r = {
		.time = sim_world_now(q->w),
		.node = q->node_name,
		.op_id = op->id,
		.op_type = op->type,
		.action = action,
		.depth = q->len,
		.cause_kind = op->cause_kind,
		.cause_id = op->cause_id,
		.detail = detail,
		.event = sim_sched_current_event(q->w->sched),
	};
	sim_trace_op(q->w->trace, &r);
}

static void drain(sim_sched *s, void *arg, sim_event_id id);

static void schedule_drain(sim_opq *q)
{
	if (q->drain_ev != 0 || q->draining || q->len == 0) {
		return;
	}
	q->drain_ev = sim_sched_after(q->w->sched, 0, q->node, q->drain_kind,
				      drain, q);
	if (q->drain_ev == 0) {
		sim_world_fail(q->w, "%s: cannot schedule a drain: %s",
			       q->node_name,
			       sim_strerror(sim_sched_error(q->w->sched)));
	}
}

/* free_data frees an op's data as its owner said. */
static void free_data(sim_op_args *a)
{
	if (a->free_data != NULL) {
		a->free_data(a->data);
	} else {
		free(a->data);
	}
}

static void drain(sim_sched *s, void *arg, sim_event_id id)
{
	sim_opq *q = arg;
	(void)s;
	(void)id;
	q->drain_ev = 0;
	q->draining = 1;
	for (uint32_t n = 0; n < q->drain_max && q->len > 0; n++) {
		sim_op op = q->ring[q->head];
		q->head = (q->head + 1) % q->ring_size;
		q->len--;
		trace_step(q, &op, "dequeue", NULL);
		q->process(q->user_data, &op);
		q->processed++;
		trace_step(q, &op, "complete", NULL);
		free_data(&op.args);
		if (q->w->fatal) {
			break;
		}
	}
	q->draining = 0;
	schedule_drain(q);
}

int sim_opq_init(sim_opq *q, sim_world *w, int node, uint32_t cap,
		 uint32_t drain_max, sim_opq_process_fn process,
		 void *user_data)
{
	memset(q, 0, sizeof(*q));
	q->w = w;
	q->node = node;
	q->node_name = sim_sched_node_name(w->sched, node);
	q->cap = cap ? cap : SIM_OPQ_CAP_DEFAULT;
	q->drain_max = drain_max ? drain_max : SIM_OPQ_DRAIN_MAX_DEFAULT;
	q->process = process;
	q->user_data = user_data;
	int k = sim_sched_kind(w->sched, "drain");
	if (k < 0) {
		return k;
	}
	q->drain_kind = k;
	q->ring_size = 16 < q->cap ? 16 : q->cap;
	q->ring = calloc(q->ring_size, sizeof(*q->ring));
	return q->ring == NULL ? SIM_ENOMEM : 0;
}

void sim_opq_free(sim_opq *q)
{
	if (q->ring == NULL) {
		return;
	}
	while (q->len > 0) {
		sim_op op = q->ring[q->head];
		q->head = (q->head + 1) % q->ring_size;
		q->len--;
		trace_step(q, &op, "drop", "end of run");
		free_data(&op.args);
	}
	if (q->drain_ev != 0) {
		sim_sched_cancel(q->w->sched, q->drain_ev);
		q->drain_ev = 0;
	}
	free(q->ring);
	q->ring = NULL;
}

/* Doubles the ring (up to cap), unrolling it so that head is 0. */
static int grow(sim_opq *q)
{
	uint32_t size = q->ring_size * 2 < q->cap ? q->ring_size * 2 : q->cap;
	sim_op *ring = malloc((size_t)size * sizeof(*ring));
	if (ring == NULL) {
		return SIM_ENOMEM;
	}
	for (uint32_t i = 0; i < q->len; i++) {
		ring[i] = q->ring[(q->head + i) % q->ring_size];
	}
	free(q->ring);
	q->ring = ring;
	q->ring_size = size;
	q->head = 0;
	return 0;
}

int64_t sim_opq_enqueue(sim_opq *q, const sim_op *op, int front)
{
	sim_op o = *op;
	o.id = q->w->next_op_id++;
	o.enqueued_ns = sim_world_now(q->w);
	if (q->len >= q->w->limits.max_queued_ops) {
		sim_world_limit(q->w,
				"queued operations: more than %llu in one "
				"queue (--max-queued-ops)",
				(unsigned long long)q->w->limits.max_queued_ops);
		trace_step(q, &o, "drop", "queued-ops cap");
		free_data(&o.args);
		return SIM_ELIMIT;
	}
	if (q->len == q->cap || (q->len == q->ring_size && grow(q) != 0)) {
		trace_step(q, &o, "drop", "queue full");
		free_data(&o.args);
		return SIM_ELIMIT;
	}
	uint32_t at;
	if (front) {
		q->head = (q->head + q->ring_size - 1) % q->ring_size;
		at = q->head;
	} else {
		at = (q->head + q->len) % q->ring_size;
	}
	q->ring[at] = o;
	q->len++;
	if (q->len > q->max_depth) {
		q->max_depth = q->len;
	}
	trace_step(q, &o, front ? "enqueue_front" : "enqueue", NULL);
	schedule_drain(q);
	return o.id;
}

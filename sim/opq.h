/* sim/opq.h: an endpoint's operation queue.
 *
 * Everything that reaches an endpoint becomes an operation: an application
 * API call, a received datagram or segment, a timer expiry, the completion
 * of an asynchronous job. Operations are enqueued at the tail, or at the
 * front for those the modelled stack prioritises (MsQuic queues shutdown at
 * the front). When the queue goes from empty to non-empty a "drain" event
 * is scheduled at the current time; a drain processes up to drain_max
 * operations and schedules another drain if any remain.
 *
 * Every step is an op row in the trace: enqueue / enqueue_front (depth
 * after), dequeue (depth after), complete (depth), drop (queue full or
 * discarded at the end of the run), with the operation's cause. */
#ifndef TLSIM_SIM_OPQ_H
#define TLSIM_SIM_OPQ_H

#include <stdint.h>

#include "sim/time.h"
#include "sim/world.h"

/* Arguments of an operation; |data| is owned by the op and freed after it
 * completes (or is dropped) unless the handler sets it to NULL: with
 * |free_data|, or free() when that is NULL. */
typedef struct sim_op_args {
	int64_t i[4];
	void *data;
	size_t len;
	void (*free_data)(void *data);
} sim_op_args;

typedef struct sim_op {
	int64_t id;           /* run-unique (world->next_op_id) */
	const char *type;     /* static string: "start", "recv", "timer"... */
	const char *cause_kind; /* static: "api", "packet", "timer", "op",
				   "async", or NULL */
	int64_t cause_id;     /* -1 none */
	sim_time enqueued_ns;
	sim_op_args args;
} sim_op;

/* sim_opq_process_fn runs one dequeued operation. It may enqueue more. */
typedef void (*sim_opq_process_fn)(void *user_data, sim_op *op);

typedef struct sim_opq {
	sim_world *w;
	int node;          /* sim_sched node id */
	const char *node_name;
	int drain_kind;    /* sim_sched kind id of "drain" */
	uint32_t drain_max;
	uint32_t cap;
	sim_op *ring;      /* circular buffer, grows up to cap entries */
	uint32_t ring_size;
	uint32_t head, len;
	sim_event_id drain_ev;
	int draining;
	sim_opq_process_fn process;
	void *user_data;
	uint64_t processed;
	uint64_t max_depth;
} sim_opq;

#define SIM_OPQ_DRAIN_MAX_DEFAULT 16
#define SIM_OPQ_CAP_DEFAULT 100000

/* sim_opq_init sets up |q| for endpoint |node| of |w|, with room for |cap|
 * operations (0: default) and |drain_max| per drain (0: default 16).
 * Returns 0 or SIM_ENOMEM. */
int sim_opq_init(sim_opq *q, sim_world *w, int node, uint32_t cap,
		 uint32_t drain_max, sim_opq_process_fn process,
		 void *user_data);

/* sim_opq_free drops every queued operation (a "drop" row each, detail
 * "end of run"), cancels a pending drain and frees the queue. */
void sim_opq_free(sim_opq *q);

/* sim_opq_enqueue copies |op| (assigning its id and enqueue time) to the
 * tail, or the front if |front|. Takes ownership of op->args.data. Returns
 * the op id, or SIM_ELIMIT when the queue is full or cannot grow (the op
 * is dropped: a "drop" row, its data freed). */
int64_t sim_opq_enqueue(sim_opq *q, const sim_op *op, int front);

/* sim_opq_depth returns the number of queued operations. */
static inline uint32_t sim_opq_depth(const sim_opq *q)
{
	return q->len;
}

#endif

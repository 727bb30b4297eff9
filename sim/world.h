/* sim/world.h: one simulation run's context, shared by every component.
 *
 * A world owns the scheduler and (optionally) the trace of one run, hands
 * out run-unique ids for packets and operations, and derives each
 * component's RNG stream from the run seed. The Lua layer (sim/lua.c)
 * creates exactly one world per run. */
#ifndef TLSIM_SIM_WORLD_H
#define TLSIM_SIM_WORLD_H

#include <stdint.h>

#include "sim/rng.h"
#include "sim/sched.h"
#include "sim/time.h"
#include "sim/trace.h"

/* Per-run caps (issue: "limits on everything"). Hitting one ends the run
 * with outcome "limit" and a reason naming the cap and its option. */
typedef struct sim_limits {
	uint64_t max_events;     /* scheduler events in the run */
	sim_time max_time_ns;    /* virtual time */
	uint64_t max_inflight;   /* packets in flight on one link */
	uint64_t max_queued_ops; /* operations waiting in one queue */
} sim_limits;

#define SIM_LIMIT_EVENTS_DEFAULT 100000000ull
#define SIM_LIMIT_TIME_DEFAULT (24 * 3600 * SIM_S)
#define SIM_LIMIT_INFLIGHT_DEFAULT 1000000ull
#define SIM_LIMIT_QUEUED_OPS_DEFAULT 1000000ull

typedef struct sim_world {
	sim_sched *sched;
	sim_trace *trace; /* NULL: tracing off (no rows, no digest) */
	uint64_t seed;
	int64_t next_packet_id;
	int64_t next_op_id;
	int trace_events;  /* write an event row per scheduler event */
	struct sim_schedule *schedule; /* NULL: the seed decides everything */
	int nlinks;        /* links made so far (their schedule index) */
	int fatal;         /* a component hit an unrecoverable error */
	char fatal_msg[256];
	sim_limits limits;
	int limit_hit;     /* a cap was reached: the run ends, outcome limit */
	char limit_msg[256];
} sim_world;

/* sim_world_init sets up |w| for a run of |seed| with a new scheduler;
 * |trace| (may be NULL) is borrowed. Returns 0 or SIM_ENOMEM. */
int sim_world_init(sim_world *w, uint64_t seed, sim_trace *trace);

/* sim_world_free frees the scheduler. */
void sim_world_free(sim_world *w);

/* sim_world_now returns the current virtual time. */
static inline sim_time sim_world_now(const sim_world *w)
{
	return sim_sched_now(w->sched);
}

/* sim_world_rng seeds |r| as the stream |name| of the run seed. */
void sim_world_rng(const sim_world *w, sim_rng *r, const char *name);

/* sim_world_fail records an unrecoverable component error (allocation
 * failure, cap reached); the run stops after the current event and ends
 * with outcome "error" and this message. Only the first call counts. */
void sim_world_fail(sim_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* sim_world_limit records that a cap was reached (|fmt| names it and its
 * option); the run stops after the current event and ends with outcome
 * "limit". Only the first call counts. */
void sim_world_limit(sim_world *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif

#include "sim/world.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim/err.h"

static void on_event(void *ud, uint64_t seq, sim_time t, int node, int kind,
		     int64_t parent)
{
	sim_world *w = ud;
	(void)seq;
	sim_trace_event(w->trace, t, sim_sched_node_name(w->sched, node),
			sim_sched_kind_name(w->sched, kind), parent);
}

int sim_world_init(sim_world *w, uint64_t seed, sim_trace *trace)
{
	memset(w, 0, sizeof(*w));
	w->seed = seed;
	w->trace = trace;
	w->trace_events = 1;
	w->next_packet_id = 1;
	w->next_op_id = 1;
	w->limits = (sim_limits){.max_events = SIM_LIMIT_EVENTS_DEFAULT,
				 .max_time_ns = SIM_LIMIT_TIME_DEFAULT,
				 .max_inflight = SIM_LIMIT_INFLIGHT_DEFAULT,
				 .max_queued_ops = SIM_LIMIT_QUEUED_OPS_DEFAULT};
	w->sched = sim_sched_new(seed);
	if (w->sched == NULL) {
		return SIM_ENOMEM;
	}
	if (trace != NULL) {
		sim_sched_hooks h = {.on_event = on_event, .user_data = w};
		sim_sched_set_hooks(w->sched, &h);
	}
	return 0;
}

void sim_world_free(sim_world *w)
{
	sim_sched_del(w->sched);
	w->sched = NULL;
}

void sim_world_rng(const sim_world *w, sim_rng *r, const char *name)
{
	sim_rng_init(r, w->seed, name);
}

/* stop_with records the first reason (|*flag| set) and stops the run after
 * the current event: the shared part of fail and limit. */
static void stop_with(sim_world *w, int *flag, char *msg, size_t n,
		      const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void stop_with(sim_world *w, int *flag, char *msg, size_t n,
		      const char *fmt, va_list ap)
{
	if (*flag) {
		return;
	}
	*flag = 1;
	vsnprintf(msg, n, fmt, ap);
	sim_sched_stop(w->sched);
}

void sim_world_fail(sim_world *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	stop_with(w, &w->fatal, w->fatal_msg, sizeof(w->fatal_msg), fmt, ap);
	va_end(ap);
}

void sim_world_limit(sim_world *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	stop_with(w, &w->limit_hit, w->limit_msg, sizeof(w->limit_msg), fmt,
		  ap);
	va_end(ap);
}

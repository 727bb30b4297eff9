/* sim/sched.h: the discrete-event scheduler and virtual clock.
 *
 * Events are ordered by (time, pass, tie key, seq):
 *  - time: virtual ns;
 *  - pass: 0 for events scheduled for a later time; an event scheduled for
 *    the current time while another runs goes to the pass after the running
 *    one, so "now" work created by a handler never overtakes work that was
 *    already due (libuv does the same for equal timers);
 *  - tie key: drawn from the "tiebreak" stream of the run seed (or from a
 *    strategy installed with sim_sched_set_tiebreak), which is how seeds
 *    explore the orderings of simultaneous events;
 *  - seq: insertion counter, so the order is total.
 *
 * Cancel by id: sim_sched_cancel marks the event dead and the heap drops it
 * when it surfaces. Ids are never reused within a scheduler's life. */
#ifndef TLSIM_SIM_SCHED_H
#define TLSIM_SIM_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "sim/time.h"

typedef struct sim_sched sim_sched;
typedef uint64_t sim_event_id; /* 0 means "no event" */

/* sim_event_fn is an event handler. |id| is the event's own id. */
typedef void (*sim_event_fn)(sim_sched *s, void *arg, sim_event_id id);

enum sim_stop {
	SIM_STOP_NONE = 0,
	SIM_STOP_IDLE,        /* no event left */
	SIM_STOP_TIME_LIMIT,  /* next event is past the virtual-time limit */
	SIM_STOP_EVENT_LIMIT, /* event budget used up */
	SIM_STOP_REQUESTED,   /* sim_sched_stop() from a handler */
	SIM_STOP_LIVELOCK,    /* too many events at one virtual time */
};

/* sim_stop_name returns "idle", "time_limit", "event_limit", "stopped" or
 * "livelock". */
const char *sim_stop_name(enum sim_stop why);

typedef struct sim_run_limits {
	sim_time until;           /* stop before events after this time;
				     SIM_TIME_MAX for none */
	uint64_t max_events;      /* stop after this many more events;
				     0 for none */
} sim_run_limits;

/* sim_sched_new returns a scheduler at time 0 whose tie keys come from the
 * "tiebreak" stream of |seed|, or NULL on allocation failure. */
sim_sched *sim_sched_new(uint64_t seed);

/* sim_sched_del frees |s| and every pending event (their args are not
 * freed: owners must cancel or free them). sim_sched_del(NULL) is a no-op. */
void sim_sched_del(sim_sched *s);

/* sim_sched_now returns the current virtual time. */
sim_time sim_sched_now(const sim_sched *s);

/* sim_sched_node registers a node name (an endpoint, a link, "script") and
 * returns its id (0, 1, ...); the same name returns the same id. Node 0 is
 * "world". Returns a negative SIM_E* code on failure. */
int sim_sched_node(sim_sched *s, const char *name);

/* sim_sched_kind registers an event-kind name ("timer", "deliver", "drain",
 * "script"...) and returns its id; the same name returns the same id. */
int sim_sched_kind(sim_sched *s, const char *name);

/* sim_sched_node_name / sim_sched_kind_name return the registered name of
 * an id, or "?" for an unknown id. */
const char *sim_sched_node_name(const sim_sched *s, int node);
const char *sim_sched_kind_name(const sim_sched *s, int kind);
int sim_sched_node_count(const sim_sched *s);
int sim_sched_kind_count(const sim_sched *s);

/* sim_sched_at schedules |fn(s, arg, id)| at absolute time |t| (clamped to
 * now if in the past) for |node| with event |kind|. Returns the event id, or
 * 0 if the pending-event cap (sim_sched_set_max_pending) is reached or
 * memory runs out; sim_sched_error() then says which. */
sim_event_id sim_sched_at(sim_sched *s, sim_time t, int node, int kind,
			  sim_event_fn fn, void *arg);

/* sim_sched_after is sim_sched_at(s, now + delay, ...). */
sim_event_id sim_sched_after(sim_sched *s, sim_time delay, int node, int kind,
			     sim_event_fn fn, void *arg);

/* sim_sched_cancel cancels a pending event. Returns 1 if it was pending and
 * is now cancelled, 0 if it already ran, was cancelled or never existed. */
int sim_sched_cancel(sim_sched *s, sim_event_id id);

/* sim_sched_pending returns the number of live pending events. */
uint64_t sim_sched_pending(const sim_sched *s);

/* sim_sched_events returns the number of events run so far. */
uint64_t sim_sched_events(const sim_sched *s);

/* sim_sched_run runs events until a limit in |lim| (NULL: none), until no
 * event is left, until a handler calls sim_sched_stop, or until livelock is
 * detected. On SIM_STOP_TIME_LIMIT the clock is advanced to lim->until.
 * Returns why it stopped. May be called again to continue. */
enum sim_stop sim_sched_run(sim_sched *s, const sim_run_limits *lim);

/* sim_sched_stop makes the running sim_sched_run return SIM_STOP_REQUESTED
 * after the current event. */
void sim_sched_stop(sim_sched *s);

/* sim_sched_set_livelock sets how many events may run at one virtual time
 * before the run ends with SIM_STOP_LIVELOCK (default 1,000,000; 0 turns
 * detection off). */
void sim_sched_set_livelock(sim_sched *s, uint64_t events);

/* sim_sched_livelock_culprit reports, after SIM_STOP_LIVELOCK, the node and
 * kind that ran most often at the stuck time and how many times. */
void sim_sched_livelock_culprit(const sim_sched *s, int *node, int *kind,
				uint64_t *count);

/* sim_sched_set_max_pending caps the number of pending events (default
 * 10,000,000). */
void sim_sched_set_max_pending(sim_sched *s, uint64_t max);

/* sim_sched_error returns the SIM_E* code of the last failed sim_sched_at. */
int sim_sched_error(const sim_sched *s);

/* Hooks, all optional. */
typedef struct sim_sched_hooks {
	/* on_event: called before each event runs, with its sequence number
	 * (0, 1, ... in run order), time, node and kind, and the sequence
	 * number of the event that scheduled it (-1: scheduled outside any
	 * event, e.g. by the script's top level). Used by the trace. */
	void (*on_event)(void *user_data, uint64_t seq, sim_time t, int node,
			 int kind, int64_t parent);
	/* tiebreak: returns the tie key of a new event. Default: the next
	 * draw of the run's "tiebreak" stream. Exploration strategies
	 * replace it. */
	uint64_t (*tiebreak)(void *user_data, sim_time t, int node, int kind);
	void *user_data;
} sim_sched_hooks;

/* sim_sched_set_hooks installs |hooks| (copied). NULL restores defaults. */
void sim_sched_set_hooks(sim_sched *s, const sim_sched_hooks *hooks);

/* Choice points and chains, for exploring orderings (sim/schedule.h).
 *
 * A choice point is a moment when more than one live event is due at the
 * same (time, pass). Without a chooser the tie keys decide; with one, the
 * scheduler lists the candidates in that default order (tie key, then
 * seq) and runs the one the chooser names. The remaining candidates stay
 * due, so a group of k simultaneous events is k - 1 choice points.
 *
 * Every event belongs to a chain: the chain of the event that was running
 * when it was scheduled (chain 0 outside any event), or a fresh one when
 * the scheduler was told so with sim_sched_new_chain (the Lua layer starts
 * one per script timer: each behaves as its own application thread).
 * Within a chain, seq is program order. */
typedef struct sim_sched_cand {
	uint64_t seq;   /* insertion order */
	uint64_t chain;
	int node, kind;
} sim_sched_cand;

/* sim_sched_choose_fn returns the index (0 .. n-1) of the candidate to
 * run; |cands| is in the default order. Out-of-range picks run 0. */
typedef size_t (*sim_sched_choose_fn)(void *user_data, sim_time t,
				      const sim_sched_cand *cands, size_t n);

/* sim_sched_set_chooser installs |fn| (NULL: the tie keys decide). */
void sim_sched_set_chooser(sim_sched *s, sim_sched_choose_fn fn,
			   void *user_data);

/* sim_sched_new_chain makes the next event scheduled start a new chain. */
void sim_sched_new_chain(sim_sched *s);

/* sim_sched_current_event returns the sequence number (run order) of the
 * running event, or -1 when none runs. */
int64_t sim_sched_current_event(const sim_sched *s);

/* sim_sched_current_chain returns the chain of the running event (0 when
 * none runs). */
uint64_t sim_sched_current_chain(const sim_sched *s);

#endif

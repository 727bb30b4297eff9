/* sim/schedule.h: the choices and faults of one run, as data.
 *
 * A run's seed decides two kinds of things that exploration and shrinking
 * want to control one by one:
 *  - choices: at each choice point (sim/sched.h: several events due at the
 *    same time and pass) which candidate runs. A choice is written as
 *    (point, index): the point counts choice points from 0 in run order,
 *    the index counts candidates either in the seed's order (`order keys`:
 *    tie key, then seq; index 0 is what the seed does) or in insertion
 *    order (`order fifo`: index 0 is the earliest scheduled). Points not
 *    listed take index 0.
 *  - faults: what a link's random faults did to the Nth packet submitted
 *    in one direction (lost, extra delay from jitter, reorder delay,
 *    flipped bits, duplicated). With `faults random` the link draws them
 *    from the seed as usual; with `faults forced` it draws nothing and
 *    applies exactly the listed ones. Scripted faults (partitions,
 *    drop_nth, filters) are part of the scenario, not of the schedule.
 *
 * A schedule forces a plan, may drive the choices itself (the random and
 * PCT strategies of `tlsim explore`), and records what the run actually
 * did, in either order, so that the record, forced, reproduces the run.
 *
 * Text form (one directive per line, '#' comments; what `tlsim shrink`
 * writes, what the trace's run.schedule column holds):
 *
 *     order keys|fifo
 *     choice POINT INDEX
 *     faults random|forced
 *     fault LINK DIR N lost loss|burst_loss
 *     fault LINK DIR N delay NS          (jitter)
 *     fault LINK DIR N reorder NS
 *     fault LINK DIR N corrupt BIT[,BIT...]
 *     fault LINK DIR N dup NS            (copy delivered NS after)
 *
 * LINK is the link's index in creation order (0, 1, ...), DIR is ab or ba,
 * N counts packets submitted in that direction from 1. */
#ifndef TLSIM_SIM_SCHEDULE_H
#define TLSIM_SIM_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "sim/rng.h"
#include "sim/sched.h"
#include "sim/time.h"

#define SIM_SCHEDULE_MAX_ITEMS 1000000 /* choices or faults per schedule */
#define SIM_SCHEDULE_MAX_BITS 64       /* flipped bits per packet */
#define SIM_SCHEDULE_MAX_DEPTH 16      /* PCT depth */

enum sim_order {
	SIM_ORDER_KEYS = 0, /* index 0: the seed's order */
	SIM_ORDER_FIFO,     /* index 0: the earliest scheduled */
};

enum sim_strategy {
	SIM_STRATEGY_FORCED = 0, /* follow the plan's choices */
	SIM_STRATEGY_RANDOM,     /* a uniform pick at each choice point */
	SIM_STRATEGY_PCT,        /* chain priorities with change points */
};

enum sim_fault_kind {
	SIM_FAULT_LOST = 0,
	SIM_FAULT_DELAY,
	SIM_FAULT_REORDER,
	SIM_FAULT_CORRUPT,
	SIM_FAULT_DUP,
};

typedef struct sim_choice {
	uint64_t point;
	uint32_t index;
} sim_choice;

typedef struct sim_fault {
	int link;
	int dir; /* 0 a->b, 1 b->a */
	uint64_t n;
	enum sim_fault_kind kind;
	int64_t value;  /* lost: 1 loss, 2 burst_loss; delays: ns */
	uint32_t nbits; /* corrupt */
	uint32_t *bits; /* corrupt: bit offsets into the packet, owned */
} sim_fault;

/* The random faults of one packet, as the link applies them. */
typedef struct sim_packet_faults {
	int lost;           /* 0, 1 loss, 2 burst_loss */
	sim_time delay_ns;  /* jitter */
	int reorder;
	sim_time reorder_ns;
	int dup;
	sim_time dup_after_ns;
	uint32_t nbits;
	uint32_t bits[SIM_SCHEDULE_MAX_BITS];
} sim_packet_faults;

/* A list of choices and faults: a plan to force, or a record. */
typedef struct sim_plan {
	enum sim_order order;
	int faults_forced;
	sim_choice *choices; /* sorted by point, index != 0 */
	size_t nchoices, choices_cap;
	sim_fault *faults;   /* sorted by (link, dir, n, kind) */
	size_t nfaults, faults_cap;
} sim_plan;

typedef struct sim_schedule sim_schedule;

/* sim_schedule_new returns an empty schedule: forced strategy, an empty
 * plan in keys order with random faults (a run under it is the plain seed
 * run), recording choices in keys order. NULL on allocation failure. */
sim_schedule *sim_schedule_new(void);

/* sim_schedule_del frees |s|; sim_schedule_del(NULL) is a no-op. */
void sim_schedule_del(sim_schedule *s);

/* sim_schedule_plan returns the plan |s| forces (editable before the run);
 * sim_schedule_record returns what the run did so far. */
sim_plan *sim_schedule_plan(sim_schedule *s);
const sim_plan *sim_schedule_record(const sim_schedule *s);

/* sim_schedule_set_strategy picks the strategy. RANDOM and PCT draw from
 * the stream "explore" of |seed|; PCT takes |depth| (1 ..
 * SIM_SCHEDULE_MAX_DEPTH) and |points|, the expected number of choice
 * points (the change points are drawn among the first |points|). */
void sim_schedule_set_strategy(sim_schedule *s, enum sim_strategy strategy,
			       uint64_t seed, int depth, uint64_t points);

/* sim_schedule_set_record_order sets the order choices are recorded in
 * (default keys). Faults are always recorded, in the link's order. */
void sim_schedule_set_record_order(sim_schedule *s, enum sim_order order);

/* sim_schedule_attach installs |s| as |sched|'s chooser. */
void sim_schedule_attach(sim_schedule *s, sim_sched *sched);

/* sim_schedule_points returns the number of choice points met so far;
 * sim_schedule_arity the number of candidates at point |i| (0 when it
 * was not reached). */
uint64_t sim_schedule_points(const sim_schedule *s);
uint32_t sim_schedule_arity(const sim_schedule *s, uint64_t i);

/* sim_schedule_replay_text returns the plan that, forced, replays the run
 * so far: the forced plan itself, or for RANDOM and PCT the recorded
 * choices (and the plan's forced faults). malloc'd; NULL on allocation
 * failure. */
char *sim_schedule_replay_text(const sim_schedule *s);

/* Faults, for sim/link.c. */

/* sim_schedule_faults_forced returns whether the link must take its random
 * faults from the plan. */
int sim_schedule_faults_forced(const sim_schedule *s);

/* sim_schedule_packet_faults fills |f| with the plan's faults for packet
 * |n| of |link| in |dir| (all zero when none). */
void sim_schedule_packet_faults(const sim_schedule *s, int link, int dir,
				uint64_t n, sim_packet_faults *f);

/* sim_schedule_note_faults records the faults packet |n| of |link| in
 * |dir| got. Returns 0 or SIM_ENOMEM / SIM_ELIMIT. */
int sim_schedule_note_faults(sim_schedule *s, int link, int dir, uint64_t n,
			     const sim_packet_faults *f);

/* Plans as data. */

/* sim_plan_init / sim_plan_free: an empty plan (keys order, random faults)
 * and its release. */
void sim_plan_init(sim_plan *p);
void sim_plan_free(sim_plan *p);

/* sim_plan_copy makes |dst| (initialised) a deep copy of |src|. Returns 0
 * or SIM_ENOMEM. */
int sim_plan_copy(sim_plan *dst, const sim_plan *src);

/* sim_plan_add_choice / sim_plan_add_fault append, keeping the sort order
 * (an equal key replaces). A zero choice index removes the point. The
 * fault's bits are copied. Return 0, SIM_ENOMEM or SIM_ELIMIT. */
int sim_plan_add_choice(sim_plan *p, uint64_t point, uint32_t index);
int sim_plan_add_fault(sim_plan *p, const sim_fault *f);

/* sim_plan_parse reads the text form into |p| (initialised, emptied
 * first). |origin| names the source in messages; |line0| is the number of
 * the line |text| starts at. Returns 0, or SIM_EINVAL with "ORIGIN:LINE:
 * what is wrong" in |err|. */
int sim_plan_parse(sim_plan *p, const char *text, const char *origin,
		   int line0, char *err, size_t errlen);

/* sim_plan_format returns the text form of |p| (malloc'd, "" for the plain
 * seed run's plan), or NULL on allocation failure. */
char *sim_plan_format(const sim_plan *p);

/* sim_plan_is_plain returns whether |p| changes nothing: no choices,
 * random faults. */
int sim_plan_is_plain(const sim_plan *p);

/* Schedule files: a plan plus the run it belongs to, what `tlsim shrink`
 * writes and `tlsim run FILE` accepts in place of a scenario:
 *
 *     # tlsim schedule 1
 *     # comments
 *     scenario PATH        (as given when it was written)
 *     sha256 HEX           (optional: the scenario's hash then)
 *     seed N
 *     set KEY=VALUE        (repeatable)
 *     ...the plan's directives... */
#define SIM_SCHEDULE_MAGIC "# tlsim schedule 1"
#define SIM_SCHEDULE_MAX_SET 64

typedef struct sim_schedule_file {
	char *scenario;
	char sha256[65]; /* "" when absent */
	int have_seed;
	uint64_t seed;
	int nset;
	char *set_key[SIM_SCHEDULE_MAX_SET]; /* owned; values point inside */
	const char *set_val[SIM_SCHEDULE_MAX_SET];
	sim_plan plan;
} sim_schedule_file;

/* sim_schedule_file_parse reads |text| (which must start with
 * SIM_SCHEDULE_MAGIC) into |f|. Returns 0, or a SIM_E* code with
 * "ORIGIN:LINE: what is wrong" in |err|; free |f| either way. */
int sim_schedule_file_parse(sim_schedule_file *f, const char *text,
			    const char *origin, char *err, size_t errlen);

/* sim_schedule_file_format returns the text of |f| with |comment| (may be
 * NULL; lines become '#' lines) after the magic line; malloc'd, NULL on
 * allocation failure. */
char *sim_schedule_file_format(const sim_schedule_file *f,
			       const char *comment);

void sim_schedule_file_free(sim_schedule_file *f);

#endif

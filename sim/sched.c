#include "sim/sched.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "sim/rng.h"

/* A heap entry is 16 bytes: (time, pass) decide almost every comparison,
 * and the tie key and seq, needed only between simultaneous events of one
 * pass, live in the slot. Keeping the heap small keeps it in L1 (measured:
 * results/bench/engine.md). */
typedef struct hent {
	sim_time time;
	uint32_t pass;
	uint32_t slot;
} hent;

typedef struct slot {
	uint64_t key; /* tie key */
	uint64_t seq; /* insertion order */
	uint64_t chain;
	int64_t parent; /* run-order seq of the scheduling event, -1 none */
	sim_event_fn fn; /* NULL: cancelled (or free) */
	void *arg;
	uint32_t gen;
	int32_t node;
	int32_t kind;
	uint32_t next_free;
} slot;

#define NAMES_MAX 4096

typedef struct names {
	char **v;
	int n, cap;
} names;

struct sim_sched {
	sim_time now;
	uint32_t cur_pass;
	int running;
	int stop;
	int err;

	hent *heap;
	uint64_t nheap, heap_cap;

	slot *slots;
	uint32_t nslots, slots_cap, free_head;
	uint64_t live;
	uint64_t max_pending;

	uint64_t seq;
	uint64_t events;
	sim_rng tiebreak;
	sim_sched_hooks hooks;
	int have_hooks;

	/* choice points (sim_sched_set_chooser) */
	sim_sched_choose_fn choose;
	void *choose_ud;
	hent *group;          /* the candidates of one choice point */
	sim_sched_cand *cands;
	size_t group_cap;
	uint64_t cur_chain;   /* chain of the running event */
	uint64_t next_chain;  /* last chain handed out */
	int fresh_chain;      /* the next event starts a chain */

	/* livelock detection */
	uint64_t livelock_limit;
	sim_time same_time;
	uint64_t same_count;
	uint32_t *culprit_counts; /* nodes x kinds, filled past half limit */
	int culprit_node, culprit_kind;
	uint64_t culprit_count;

	names nodes, kinds;
};

#define NO_SLOT UINT32_MAX

static int names_add(names *ns, const char *name)
{
	for (int i = 0; i < ns->n; i++) {
		if (strcmp(ns->v[i], name) == 0) {
			return i;
		}
	}
	if (ns->n >= NAMES_MAX) {
		return SIM_ELIMIT;
	}
	if (ns->n == ns->cap) {
		int cap = ns->cap ? ns->cap * 2 : 16;
		char **v = realloc(ns->v, (size_t)cap * sizeof(*v));
		if (v == NULL) {
			return SIM_ENOMEM;
		}
		ns->v = v;
		ns->cap = cap;
	}
	char *copy = strdup(name);
	if (copy == NULL) {
		return SIM_ENOMEM;
	}
	ns->v[ns->n] = copy;
	return ns->n++;
}

static void names_free(names *ns)
{
	for (int i = 0; i < ns->n; i++) {
		free(ns->v[i]);
	}
	free(ns->v);
}

const char *sim_stop_name(enum sim_stop why)
{
	switch (why) {
	case SIM_STOP_NONE:
		return "none";
	case SIM_STOP_IDLE:
		return "idle";
	case SIM_STOP_TIME_LIMIT:
		return "time_limit";
	case SIM_STOP_EVENT_LIMIT:
		return "event_limit";
	case SIM_STOP_REQUESTED:
		return "stopped";
	case SIM_STOP_LIVELOCK:
		return "livelock";
	}
	return "?";
}

sim_sched *sim_sched_new(uint64_t seed)
{
	sim_sched *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	sim_rng_init(&s->tiebreak, seed, "tiebreak");
	s->free_head = NO_SLOT;
	s->max_pending = 10000000;
	s->livelock_limit = 1000000;
	s->culprit_node = s->culprit_kind = -1;
	if (names_add(&s->nodes, "world") != 0) {
		sim_sched_del(s);
		return NULL;
	}
	return s;
}

void sim_sched_del(sim_sched *s)
{
	if (s == NULL) {
		return;
	}
	free(s->heap);
	free(s->slots);
	free(s->group);
	free(s->cands);
	free(s->culprit_counts);
	names_free(&s->nodes);
	names_free(&s->kinds);
	free(s);
}

sim_time sim_sched_now(const sim_sched *s)
{
	return s->now;
}

int sim_sched_node(sim_sched *s, const char *name)
{
	return names_add(&s->nodes, name);
}

int sim_sched_kind(sim_sched *s, const char *name)
{
	return names_add(&s->kinds, name);
}

const char *sim_sched_node_name(const sim_sched *s, int node)
{
	return node >= 0 && node < s->nodes.n ? s->nodes.v[node] : "?";
}

const char *sim_sched_kind_name(const sim_sched *s, int kind)
{
	return kind >= 0 && kind < s->kinds.n ? s->kinds.v[kind] : "?";
}

int sim_sched_node_count(const sim_sched *s)
{
	return s->nodes.n;
}

int sim_sched_kind_count(const sim_sched *s)
{
	return s->kinds.n;
}

static inline int hent_less(const slot *sl, const hent *a, const hent *b)
{
	if (a->time != b->time) {
		return a->time < b->time;
	}
	if (a->pass != b->pass) {
		return a->pass < b->pass;
	}
	const slot *x = &sl[a->slot], *y = &sl[b->slot];
	if (x->key != y->key) {
		return x->key < y->key;
	}
	return x->seq < y->seq;
}

static void sift_up(const slot *sl, hent *h, uint64_t i)
{
	hent e = h[i];
	while (i > 0) {
		uint64_t p = (i - 1) / 2;
		if (!hent_less(sl, &e, &h[p])) {
			break;
		}
		h[i] = h[p];
		i = p;
	}
	h[i] = e;
}

static void sift_down(const slot *sl, hent *h, uint64_t n, uint64_t i)
{
	hent e = h[i];
	for (;;) {
		uint64_t c = 2 * i + 1;
		if (c >= n) {
			break;
		}
		if (c + 1 < n && hent_less(sl, &h[c + 1], &h[c])) {
			c++;
		}
		if (!hent_less(sl, &h[c], &e)) {
			break;
		}
		h[i] = h[c];
		i = c;
	}
	h[i] = e;
}

static uint32_t slot_alloc(sim_sched *s)
{
	if (s->free_head != NO_SLOT) {
		uint32_t i = s->free_head;
		s->free_head = s->slots[i].next_free;
		return i;
	}
	if (s->nslots == s->slots_cap) {
		uint32_t cap = s->slots_cap ? s->slots_cap * 2 : 256;
		if (cap < s->slots_cap || cap >= NO_SLOT) {
			return NO_SLOT;
		}
		slot *v = realloc(s->slots, (size_t)cap * sizeof(*v));
		if (v == NULL) {
			return NO_SLOT;
		}
		s->slots = v;
		s->slots_cap = cap;
	}
	s->slots[s->nslots].gen = 0;
	return s->nslots++;
}

static void slot_free(sim_sched *s, uint32_t i)
{
	s->slots[i].fn = NULL;
	s->slots[i].gen++;
	s->slots[i].next_free = s->free_head;
	s->free_head = i;
}

sim_event_id sim_sched_at(sim_sched *s, sim_time t, int node, int kind,
			  sim_event_fn fn, void *arg)
{
	assert(fn != NULL);
	if (t < s->now) {
		t = s->now;
	}
	if (s->live >= s->max_pending) {
		s->err = SIM_ELIMIT;
		return 0;
	}
	if (s->nheap == s->heap_cap) {
		uint64_t cap = s->heap_cap ? s->heap_cap * 2 : 256;
		hent *h = realloc(s->heap, (size_t)cap * sizeof(*h));
		if (h == NULL) {
			s->err = SIM_ENOMEM;
			return 0;
		}
		s->heap = h;
		s->heap_cap = cap;
	}
	uint32_t i = slot_alloc(s);
	if (i == NO_SLOT) {
		s->err = SIM_ENOMEM;
		return 0;
	}
	slot *sl = &s->slots[i];
	sl->fn = fn;
	sl->arg = arg;
	sl->node = node;
	sl->kind = kind;

	sl->key = s->hooks.tiebreak != NULL
			  ? s->hooks.tiebreak(s->hooks.user_data, t, node, kind)
			  : sim_rng_next(&s->tiebreak);
	sl->seq = s->seq++;
	sl->parent = s->running ? (int64_t)s->events - 1 : -1;
	if (s->fresh_chain) {
		sl->chain = ++s->next_chain;
		s->fresh_chain = 0;
	} else {
		sl->chain = s->running ? s->cur_chain : 0;
	}
	hent *e = &s->heap[s->nheap];
	e->time = t;
	e->pass = (s->running && t == s->now) ? s->cur_pass + 1 : 0;
	e->slot = i;
	sift_up(s->slots, s->heap, s->nheap++);
	s->live++;
	return ((uint64_t)sl->gen << 32) | (uint64_t)(i + 1);
}

sim_event_id sim_sched_after(sim_sched *s, sim_time delay, int node, int kind,
			     sim_event_fn fn, void *arg)
{
	sim_time t = delay > SIM_TIME_MAX - s->now ? SIM_TIME_MAX
						   : s->now + delay;
	return sim_sched_at(s, t, node, kind, fn, arg);
}

int sim_sched_cancel(sim_sched *s, sim_event_id id)
{
	uint32_t i = (uint32_t)(id & 0xffffffffu);
	uint32_t gen = (uint32_t)(id >> 32);
	if (i == 0 || i > s->nslots) {
		return 0;
	}
	slot *sl = &s->slots[i - 1];
	if (sl->gen != gen || sl->fn == NULL) {
		return 0;
	}
	sl->fn = NULL; /* the heap frees the slot when the entry surfaces */
	s->live--;
	return 1;
}

uint64_t sim_sched_pending(const sim_sched *s)
{
	return s->live;
}

uint64_t sim_sched_events(const sim_sched *s)
{
	return s->events;
}

void sim_sched_stop(sim_sched *s)
{
	s->stop = 1;
}

void sim_sched_set_livelock(sim_sched *s, uint64_t events)
{
	s->livelock_limit = events;
}

void sim_sched_livelock_culprit(const sim_sched *s, int *node, int *kind,
				uint64_t *count)
{
	*node = s->culprit_node;
	*kind = s->culprit_kind;
	*count = s->culprit_count;
}

void sim_sched_set_max_pending(sim_sched *s, uint64_t max)
{
	s->max_pending = max;
}

int sim_sched_error(const sim_sched *s)
{
	return s->err;
}

void sim_sched_set_hooks(sim_sched *s, const sim_sched_hooks *hooks)
{
	if (hooks == NULL) {
		memset(&s->hooks, 0, sizeof(s->hooks));
	} else {
		s->hooks = *hooks;
	}
}

void sim_sched_set_chooser(sim_sched *s, sim_sched_choose_fn fn,
			   void *user_data)
{
	s->choose = fn;
	s->choose_ud = user_data;
}

void sim_sched_new_chain(sim_sched *s)
{
	s->fresh_chain = 1;
}

int64_t sim_sched_current_event(const sim_sched *s)
{
	return s->running && s->events > 0 ? (int64_t)s->events - 1 : -1;
}

uint64_t sim_sched_current_chain(const sim_sched *s)
{
	return s->running ? s->cur_chain : 0;
}

/* Pops the heap's top entry, freeing cancelled ones on the way; returns
 * 0 when the heap is empty. */
static int pop_live(sim_sched *s, hent *out)
{
	while (s->nheap > 0) {
		hent top = s->heap[0];
		s->heap[0] = s->heap[--s->nheap];
		if (s->nheap > 0) {
			sift_down(s->slots, s->heap, s->nheap, 0);
		}
		if (s->slots[top.slot].fn == NULL) {
			slot_free(s, top.slot);
			continue;
		}
		*out = top;
		return 1;
	}
	return 0;
}

static void push_back(sim_sched *s, hent e)
{
	s->heap[s->nheap] = e; /* fits: it was in the heap a moment ago */
	sift_up(s->slots, s->heap, s->nheap++);
}

/* choose_among: |top| (live) was about to run. Collects every live event
 * due at the same (time, pass), asks the chooser, puts the others back
 * and returns the one to run. */
static hent choose_among(sim_sched *s, hent top)
{
	size_t n = 0;
	hent next;
	for (;;) {
		if (n == s->group_cap) {
			size_t cap = s->group_cap ? 2 * s->group_cap : 16;
			hent *g = realloc(s->group, cap * sizeof(*g));
			if (g != NULL) {
				s->group = g;
			}
			sim_sched_cand *c =
				g ? realloc(s->cands, cap * sizeof(*c)) : NULL;
			if (c == NULL) { /* no memory: the default order */
				if (n == 0) {
					return top;
				}
				push_back(s, top);
				break;
			}
			s->cands = c;
			s->group_cap = cap;
		}
		s->group[n++] = top;
		if (!pop_live(s, &next)) {
			break;
		}
		if (next.time != top.time || next.pass != top.pass) {
			push_back(s, next);
			break;
		}
		top = next;
	}
	size_t pick = 0;
	if (n > 1) {
		for (size_t i = 0; i < n; i++) {
			const slot *sl = &s->slots[s->group[i].slot];
			s->cands[i] = (sim_sched_cand){.seq = sl->seq,
						       .chain = sl->chain,
						       .node = sl->node,
						       .kind = sl->kind};
		}
		pick = s->choose(s->choose_ud, top.time, s->cands, n);
		if (pick >= n) {
			pick = 0;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (i != pick) {
			push_back(s, s->group[i]);
		}
	}
	return s->group[pick];
}

/* Counts (node, kind) pairs over the second half of a same-time streak, so
 * that a livelock names the loop rather than whichever event tripped it. */
static int livelock_note(sim_sched *s, int node, int kind)
{
	uint64_t half = s->livelock_limit / 2;
	if (s->same_count < half) {
		return 0;
	}
	size_t nn = (size_t)s->nodes.n, nk = (size_t)s->kinds.n;
	if (s->same_count == half) {
		free(s->culprit_counts);
		s->culprit_counts = calloc(nn * nk + 1, sizeof(uint32_t));
	}
	if (s->culprit_counts != NULL && node >= 0 && kind >= 0 &&
	    (size_t)node < nn && (size_t)kind < nk) {
		s->culprit_counts[(size_t)node * nk + (size_t)kind]++;
	}
	if (s->same_count < s->livelock_limit) {
		return 0;
	}
	s->culprit_node = node;
	s->culprit_kind = kind;
	s->culprit_count = 0;
	if (s->culprit_counts != NULL) {
		for (size_t n = 0; n < nn; n++) {
			for (size_t k = 0; k < nk; k++) {
				uint32_t c = s->culprit_counts[n * nk + k];
				if (c > s->culprit_count) {
					s->culprit_count = c;
					s->culprit_node = (int)n;
					s->culprit_kind = (int)k;
				}
			}
		}
	}
	return 1;
}

enum sim_stop sim_sched_run(sim_sched *s, const sim_run_limits *lim)
{
	sim_time until = lim != NULL ? lim->until : SIM_TIME_MAX;
	uint64_t budget = lim != NULL ? lim->max_events : 0;
	uint64_t ran = 0;
	enum sim_stop why = SIM_STOP_IDLE;

	s->stop = 0;
	s->running = 1;
	while (s->nheap > 0) {
		hent top = s->heap[0];
		slot *sl = &s->slots[top.slot];
		if (sl->fn == NULL) { /* cancelled */
			s->heap[0] = s->heap[--s->nheap];
			if (s->nheap > 0) {
				sift_down(s->slots, s->heap, s->nheap, 0);
			}
			slot_free(s, top.slot);
			continue;
		}
		if (top.time > until) {
			why = SIM_STOP_TIME_LIMIT;
			break;
		}
		if (budget != 0 && ran >= budget) {
			why = SIM_STOP_EVENT_LIMIT;
			break;
		}
		s->heap[0] = s->heap[--s->nheap];
		if (s->nheap > 0) {
			sift_down(s->slots, s->heap, s->nheap, 0);
		}
		if (s->choose != NULL) {
			top = choose_among(s, top);
			sl = &s->slots[top.slot];
		}
		assert(top.time >= s->now);
		if (top.time != s->same_time || s->events == 0) {
			s->same_time = top.time;
			s->same_count = 0;
		}
		s->same_count++;
		s->now = top.time;
		s->cur_pass = top.pass;

		sim_event_fn fn = sl->fn;
		void *arg = sl->arg;
		int node = sl->node, kind = sl->kind;
		int64_t parent = sl->parent;
		s->cur_chain = sl->chain;
		sim_event_id id =
			((uint64_t)sl->gen << 32) | (uint64_t)(top.slot + 1);
		slot_free(s, top.slot);
		s->live--;

		if (s->livelock_limit != 0 && livelock_note(s, node, kind)) {
			why = SIM_STOP_LIVELOCK;
			break;
		}
		if (s->hooks.on_event != NULL) {
			s->hooks.on_event(s->hooks.user_data, s->events, s->now,
					  node, kind, parent);
		}
		s->events++;
		ran++;
		fn(s, arg, id);
		if (s->stop) {
			why = SIM_STOP_REQUESTED;
			break;
		}
	}
	if (why == SIM_STOP_TIME_LIMIT && until > s->now) {
		s->now = until;
	}
	s->running = 0;
	s->cur_pass = 0;
	return why;
}

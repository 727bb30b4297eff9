/* sim/link.c: the simulated link and its fault model.
 *
 * Conventions not spelt out in link.h:
 *
 * RNG streams. Each direction has one stream per fault, named
 * "link/<name>/<src>-><dst>/<fault>" with <src>, <dst> the sched node names
 * of the attached sides and <fault> one of loss, ge, jitter, reorder,
 * corrupt, dup. A direction's streams are seeded at its first submit (both
 * sides must be attached by then). A draw is taken only by a packet that
 * reaches the stage and only when the fault is enabled (sim_rng_chance(0)
 * draws nothing), so enabling a fault never shifts another fault's draws,
 * nor the other direction's.
 *
 * Timing. A packet that passes the bottleneck at time |done| is delivered
 * at done + latency + jitter + filter delay + reorder delay. Jitter is
 * uniform in [0, jitter_ns]. The bottleneck serialises len * 8 / bps
 * (rounded up to 1 ns) behind the packets already accepted; the queue holds
 * the packets waiting for the wire (not the one being sent), and a packet
 * is tail-dropped when the waiting bytes plus its own would exceed
 * queue_bytes. A packet that finds the wire idle is never dropped by the
 * queue. Lost packets do not use the bottleneck. Gilbert-Elliott: for each
 * packet reaching the loss stage the chain steps first (good->bad with
 * p_gb, bad->good with p_bg; it starts good), then the packet is lost with
 * the new state's loss probability.
 *
 * Corruption flips min(corrupt_bits, 8 * len) distinct bits. Duplication
 * follows corruption, so the copy carries the same bytes as the original;
 * it arrives 1 + U[0, jitter_ns) ns after the original (1 us with no
 * jitter), with its own id and dup_of set. The copy does not use the
 * bottleneck.
 *
 * Trace rows (written at submit, with the planned delivery time):
 *   fate "lost", deliver_ns -1, reason one of
 *     partition, drop_nth, filter, filter:<filter reason>, mtu,
 *     loss (Bernoulli, or Gilbert-Elliott in the good state),
 *     burst_loss (Gilbert-Elliott in the bad state), queue_full,
 *     inflight_cap, nomem, sched:<error> (the scheduler refused the event);
 *   fate "delivered" / "reordered" / "corrupted" (corrupted wins over
 *     reordered, which wins over delivered), reason NULL or a comma list of
 *     delay:<filter reason> (or "delay"), reorder, corrupt:<n> bits;
 *   the copy: fate "duplicated", reason "dup" (",corrupt:<n> bits" when the
 *     original was corrupted), or "inflight_cap" / "nomem" with
 *     deliver_ns -1.
 * sim_link_submit returns the id for every packet it takes in, dropped or
 * not; it returns a negative code only for bad arguments, a side not
 * attached (SIM_ESTATE), out of memory, or the scheduler refusing the
 * delivery event (its code, e.g. SIM_ELIMIT): errors that should end the
 * run, which is what sim/ep.c does with them. In the last two cases the
 * packet still got an id and a "lost" row (reason nomem / sched:<error>).
 * data is always the bytes as submitted, before corruption.
 *
 * Stats: submitted counts sim_link_submit calls that got an id; lost every
 * drop (copies included); duplicated the copies made; delivered and
 * bytes_delivered what was handed to the receiver (copies included), so
 * after a run to idle submitted + duplicated == delivered + lost. */
#include "sim/link.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "sim/schedule.h"

#define INFLIGHT_MAX 1000000 /* packets in flight per link */
#define SCRIPT_MAX 4096      /* partitions / drop_nth entries per direction */
#define RULES_MAX 256        /* fault rules per link */
#define NAME_MAX_LEN 255
#define REASON_LEN 192

enum fault {
	F_LOSS,
	F_GE,
	F_JITTER,
	F_REORDER,
	F_CORRUPT,
	F_DUP,
	F_COUNT,
};

static const char *const fault_names[F_COUNT] = {
	"loss", "ge", "jitter", "reorder", "corrupt", "dup",
};

typedef struct flight {
	struct flight *prev, *next;
	sim_link *l;
	sim_packet *pkt;
	sim_event_id ev;
	int dir;
} flight;

typedef struct interval {
	sim_time from, to;
} interval;

/* A packet accepted by the bottleneck but not yet on the wire. */
typedef struct waiting {
	sim_time start;
	uint64_t len;
} waiting;

typedef struct direction {
	sim_link_params p;
	sim_link_stats st;
	sim_rng rng[F_COUNT];
	int seeded;
	int ge_bad;

	sim_time busy_until; /* when the bottleneck is next free */
	waiting *q;          /* ring of packets waiting for the wire */
	uint32_t q_head, q_len, q_cap;
	uint64_t q_bytes;

	interval *parts;
	uint32_t nparts;
	uint64_t *nth;
	uint32_t nnth;
	sim_rng rule_rng; /* corruption by fault rules */

	/* Packets a reorder rule holds, in order: each waits for |left| more
	 * packets to leave in this direction. */
	struct held *held;
} direction;

typedef struct held {
	sim_packet *pkt;
	uint64_t left;
	char reason[64];
	struct held *next;
} held;

typedef struct side {
	int attached;
	int node;
	sim_link_deliver_fn deliver;
	void *user_data;
	sim_link_deadline_fn deadline;
	void *deadline_ud;
} side;

struct sim_link {
	sim_world *w;
	char *name;
	int index; /* in creation order: how schedules name it */
	int deliver_kind;
	direction d[2];
	side s[2];
	sim_link_filter_fn filter;
	void *filter_ud;
	flight *head; /* in-flight packets, most recent first */
	uint64_t inflight;
	sim_fault_rule *rules;
	int nrules;
};

void sim_link_params_default(sim_link_params *p)
{
	memset(p, 0, sizeof(*p));
	p->corrupt_bits = 1;
	p->ge_loss_bad = 1.0;
}

static int bad_prob(double v)
{
	return isnan(v) || v < 0.0 || v > 1.0;
}

const char *sim_link_params_check(const sim_link_params *p)
{
	if (p == NULL) {
		return "params must not be NULL";
	}
	if (p->latency_ns < 0) {
		return "latency_ns must be >= 0";
	}
	if (p->jitter_ns < 0) {
		return "jitter_ns must be >= 0";
	}
	if (p->reorder_delay_ns < 0) {
		return "reorder_delay_ns must be >= 0";
	}
	if (bad_prob(p->loss)) {
		return "loss must be in [0, 1]";
	}
	if (bad_prob(p->dup)) {
		return "dup must be in [0, 1]";
	}
	if (bad_prob(p->reorder)) {
		return "reorder must be in [0, 1]";
	}
	if (bad_prob(p->corrupt)) {
		return "corrupt must be in [0, 1]";
	}
	if (bad_prob(p->ge_p_gb)) {
		return "ge_p_gb must be in [0, 1]";
	}
	if (bad_prob(p->ge_p_bg)) {
		return "ge_p_bg must be in [0, 1]";
	}
	if (bad_prob(p->ge_loss_good)) {
		return "ge_loss_good must be in [0, 1]";
	}
	if (bad_prob(p->ge_loss_bad)) {
		return "ge_loss_bad must be in [0, 1]";
	}
	if (p->corrupt_bits < 0) {
		return "corrupt_bits must be >= 0";
	}
	if (p->corrupt > 0.0 && p->corrupt_bits < 1) {
		return "corrupt_bits must be >= 1 when corrupt > 0";
	}
	return NULL;
}

sim_link *sim_link_new(sim_world *w, const char *name,
		       const sim_link_params *params)
{
	sim_link_params def;
	if (w == NULL || name == NULL || strlen(name) > NAME_MAX_LEN) {
		return NULL;
	}
	if (params == NULL) {
		sim_link_params_default(&def);
		params = &def;
	}
	if (sim_link_params_check(params) != NULL) {
		return NULL;
	}
	int kind = sim_sched_kind(w->sched, "deliver");
	if (kind < 0) {
		return NULL;
	}
	sim_link *l = calloc(1, sizeof(*l));
	if (l == NULL) {
		return NULL;
	}
	l->name = strdup(name);
	if (l->name == NULL) {
		free(l);
		return NULL;
	}
	l->w = w;
	l->index = w->nlinks++;
	l->deliver_kind = kind;
	for (int dir = 0; dir < 2; dir++) {
		l->d[dir].p = *params;
	}
	return l;
}

static void trace_row(sim_link *l, int dir, const sim_packet *pkt,
		      const void *data, sim_time deliver_ns, const char *fate,
		      const char *reason);

void sim_link_del(sim_link *l)
{
	if (l == NULL) {
		return;
	}
	flight *f = l->head;
	while (f != NULL) {
		flight *next = f->next;
		sim_sched_cancel(l->w->sched, f->ev);
		sim_packet_del(f->pkt);
		free(f);
		f = next;
	}
	for (int dir = 0; dir < 2; dir++) {
		free(l->d[dir].q);
		free(l->d[dir].parts);
		free(l->d[dir].nth);
		for (held *h = l->d[dir].held, *n; h != NULL; h = n) {
			n = h->next;
			char why[96];
			snprintf(why, sizeof(why), "%s,held at the end",
				 h->reason);
			trace_row(l, dir, h->pkt, h->pkt->data, -1, "lost", why);
			sim_packet_del(h->pkt);
			free(h);
		}
	}
	free(l->rules);
	free(l->name);
	free(l);
}

int sim_link_set_params(sim_link *l, int dir, const sim_link_params *p)
{
	if (l == NULL || (dir != 0 && dir != 1) ||
	    sim_link_params_check(p) != NULL) {
		return SIM_EINVAL;
	}
	l->d[dir].p = *p;
	return 0;
}

void sim_link_attach(sim_link *l, int side_, int node,
		     sim_link_deliver_fn deliver, void *user_data)
{
	if (l == NULL || (side_ != 0 && side_ != 1)) {
		return;
	}
	side *s = &l->s[side_];
	s->attached = 1;
	s->node = node;
	s->deliver = deliver;
	s->user_data = user_data;
}

/* Scripted faults take 0, 1 or -1 (both directions). */
static int check_dir(int dir)
{
	return dir == -1 || dir == 0 || dir == 1;
}

static int add_partition(direction *d, sim_time from, sim_time to)
{
	if (d->nparts >= SCRIPT_MAX) {
		return SIM_ELIMIT;
	}
	interval *v = realloc(d->parts, (d->nparts + 1) * sizeof(*v));
	if (v == NULL) {
		return SIM_ENOMEM;
	}
	d->parts = v;
	d->parts[d->nparts].from = from;
	d->parts[d->nparts].to = to;
	d->nparts++;
	return 0;
}

int sim_link_partition(sim_link *l, int dir, sim_time from, sim_time to)
{
	if (l == NULL || !check_dir(dir) || from > to) {
		return SIM_EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		if (dir != -1 && dir != i) {
			continue;
		}
		int rc = add_partition(&l->d[i], from, to);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

static int add_nth(direction *d, uint64_t n)
{
	if (d->nnth >= SCRIPT_MAX) {
		return SIM_ELIMIT;
	}
	uint64_t *v = realloc(d->nth, (d->nnth + 1) * sizeof(*v));
	if (v == NULL) {
		return SIM_ENOMEM;
	}
	d->nth = v;
	d->nth[d->nnth++] = n;
	return 0;
}

int sim_link_drop_nth(sim_link *l, int dir, uint64_t n)
{
	if (l == NULL || !check_dir(dir) || n == 0) {
		return SIM_EINVAL;
	}
	for (int i = 0; i < 2; i++) {
		if (dir != -1 && dir != i) {
			continue;
		}
		int rc = add_nth(&l->d[i], n);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

void sim_link_set_deadlines(sim_link *l, int which, sim_link_deadline_fn fn,
			    void *user_data)
{
	if (l != NULL && (which == 0 || which == 1)) {
		l->s[which].deadline = fn;
		l->s[which].deadline_ud = user_data;
	}
}

void sim_fault_rule_init(sim_fault_rule *r)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "drop");
	r->dir = -1;
	r->pn = -1;
	r->byte = -1;
	r->key_phase = -1;
	r->before_ns = SIM_TIME_MAX;
	r->action = SIM_FAULT_ACT_DROP;
}

int sim_link_add_fault(sim_link *l, const sim_fault_rule *r)
{
	if (l == NULL || r == NULL || !check_dir(r->dir) ||
	    r->action > SIM_FAULT_ACT_AT_TIMER || r->key_phase < -1 ||
	    r->key_phase > 1 ||
	    (r->action == SIM_FAULT_ACT_AT_TIMER && r->timer[0] == '\0') ||
	    (r->action == SIM_FAULT_ACT_CORRUPT && r->bits < 1) ||
	    (r->action == SIM_FAULT_ACT_REORDER && r->behind < 1)) {
		return SIM_EINVAL;
	}
	if (l->nrules >= RULES_MAX) {
		return SIM_ELIMIT;
	}
	sim_fault_rule *v =
		realloc(l->rules, (size_t)(l->nrules + 1) * sizeof(*v));
	if (v == NULL) {
		return SIM_ENOMEM;
	}
	l->rules = v;
	v[l->nrules] = *r;
	v[l->nrules].matched = v[l->nrules].acted = 0;
	l->nrules++;
	return 0;
}

void sim_link_set_filter(sim_link *l, sim_link_filter_fn fn, void *user_data)
{
	if (l == NULL) {
		return;
	}
	l->filter = fn;
	l->filter_ud = fn != NULL ? user_data : NULL;
}

void sim_link_get_stats(const sim_link *l, int dir, sim_link_stats *out)
{
	if (l == NULL || (dir != 0 && dir != 1)) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = l->d[dir].st;
}

int sim_link_has_faults(const sim_link *l)
{
	return l->nrules > 0;
}

const char *sim_link_name(const sim_link *l)
{
	return l->name;
}

/* Both operands are >= 0. */
static sim_time add_sat(sim_time a, sim_time b)
{
	return b > SIM_TIME_MAX - a ? SIM_TIME_MAX : a + b;
}

static sim_time serialization_ns(uint64_t len, uint64_t bps)
{
	unsigned __int128 bits = (unsigned __int128)len * 8u * 1000000000u;
	unsigned __int128 ns = (bits + bps - 1) / bps;
	return ns > (unsigned __int128)SIM_TIME_MAX ? SIM_TIME_MAX
						    : (sim_time)ns;
}

static void seed_streams(sim_link *l, int dir)
{
	direction *d = &l->d[dir];
	const char *src = sim_sched_node_name(l->w->sched, l->s[dir].node);
	const char *dst = sim_sched_node_name(l->w->sched, l->s[!dir].node);
	char name[1024];
	for (int f = 0; f < F_COUNT; f++) {
		snprintf(name, sizeof(name), "link/%s/%s->%s/%s", l->name, src,
			 dst, fault_names[f]);
		sim_world_rng(l->w, &d->rng[f], name);
	}
	snprintf(name, sizeof(name), "link/%s/%s->%s/rule", l->name, src, dst);
	sim_world_rng(l->w, &d->rule_rng, name);
	d->seeded = 1;
}

static int in_partition(const direction *d, sim_time now)
{
	for (uint32_t i = 0; i < d->nparts; i++) {
		if (now >= d->parts[i].from && now < d->parts[i].to) {
			return 1;
		}
	}
	return 0;
}

static int is_nth(const direction *d, uint64_t n)
{
	for (uint32_t i = 0; i < d->nnth; i++) {
		if (d->nth[i] == n) {
			return 1;
		}
	}
	return 0;
}

/* Returns 1 if the packet is lost, with *burst set for a loss in the
 * Gilbert-Elliott bad state. */
static int draw_loss(direction *d, int *burst)
{
	const sim_link_params *p = &d->p;
	*burst = 0;
	if (!p->ge_enabled) {
		return sim_rng_chance(&d->rng[F_LOSS], p->loss);
	}
	if (d->ge_bad) {
		if (sim_rng_chance(&d->rng[F_GE], p->ge_p_bg)) {
			d->ge_bad = 0;
		}
	} else if (sim_rng_chance(&d->rng[F_GE], p->ge_p_gb)) {
		d->ge_bad = 1;
	}
	double pl = d->ge_bad ? p->ge_loss_bad : p->ge_loss_good;
	if (!sim_rng_chance(&d->rng[F_LOSS], pl)) {
		return 0;
	}
	*burst = d->ge_bad;
	return 1;
}

/* Forgets the waiting packets that are on (or past) the wire by |now|. */
static void queue_advance(direction *d, sim_time now)
{
	while (d->q_len > 0 && d->q[d->q_head].start <= now) {
		d->q_bytes -= d->q[d->q_head].len;
		d->q_head = (d->q_head + 1) % d->q_cap;
		d->q_len--;
	}
}

static int queue_push(direction *d, sim_time start, uint64_t len)
{
	if (d->q_len == d->q_cap) {
		if (d->q_cap >= INFLIGHT_MAX) {
			return SIM_ELIMIT; /* cannot happen: each is in flight */
		}
		uint32_t cap = d->q_cap ? d->q_cap * 2 : 64;
		waiting *v = malloc(cap * sizeof(*v));
		if (v == NULL) {
			return SIM_ENOMEM;
		}
		for (uint32_t i = 0; i < d->q_len; i++) {
			v[i] = d->q[(d->q_head + i) % d->q_cap];
		}
		free(d->q);
		d->q = v;
		d->q_cap = cap;
		d->q_head = 0;
	}
	d->q[(d->q_head + d->q_len) % d->q_cap] = (waiting){start, len};
	d->q_len++;
	d->q_bytes += len;
	return 0;
}

/* Picks min(k, 8 * len) distinct bit positions (Floyd's sampling) into
 * |mask| (len bytes, zeroed). Returns how many. */
static uint64_t pick_bits(sim_rng *r, uint8_t *mask, size_t len, uint64_t k)
{
	uint64_t n = (uint64_t)len * 8;
	if (k > n) {
		k = n;
	}
	for (uint64_t j = n - k; j < n; j++) {
		uint64_t t = sim_rng_below(r, j + 1);
		if (mask[t / 8] & (1u << (t % 8))) {
			t = j;
		}
		mask[t / 8] |= (uint8_t)(1u << (t % 8));
	}
	return k;
}

static void unlink_flight(sim_link *l, flight *f)
{
	if (f->prev != NULL) {
		f->prev->next = f->next;
	} else {
		l->head = f->next;
	}
	if (f->next != NULL) {
		f->next->prev = f->prev;
	}
	l->inflight--;
}

static void on_deliver(sim_sched *s, void *arg, sim_event_id id)
{
	flight *f = arg;
	sim_link *l = f->l;
	sim_packet *pkt = f->pkt;
	int dir = f->dir;
	(void)s;
	(void)id;
	unlink_flight(l, f);
	free(f);
	l->d[dir].st.delivered++;
	l->d[dir].st.bytes_delivered += pkt->len;
	const side *dst = &l->s[!dir];
	if (dst->deliver != NULL) {
		dst->deliver(dst->user_data, pkt); /* may delete l */
	} else {
		sim_packet_del(pkt);
	}
}

/* Puts |pkt| in flight until |at|. Returns 0 or a SIM_E* code (the packet
 * is then still the caller's). */
static int launch(sim_link *l, int dir, sim_packet *pkt, sim_time at)
{
	flight *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return SIM_ENOMEM;
	}
	f->ev = sim_sched_at(l->w->sched, at, l->s[!dir].node, l->deliver_kind,
			     on_deliver, f);
	if (f->ev == 0) {
		free(f);
		int rc = sim_sched_error(l->w->sched);
		return rc < 0 ? rc : SIM_EINTERNAL;
	}
	f->l = l;
	f->pkt = pkt;
	f->dir = dir;
	f->next = l->head;
	if (l->head != NULL) {
		l->head->prev = f;
	}
	l->head = f;
	l->inflight++;
	return 0;
}

static void trace_row(sim_link *l, int dir, const sim_packet *pkt,
		      const void *data, sim_time deliver_ns, const char *fate,
		      const char *reason)
{
	if (l->w->trace == NULL) {
		return;
	}
	sim_packet_row r = {
		.id = pkt->id,
		.parent = -1,
		.link = l->name,
		.src = sim_sched_node_name(l->w->sched, l->s[dir].node),
		.dst = sim_sched_node_name(l->w->sched, l->s[!dir].node),
		.proto = pkt->proto,
		.send_ns = pkt->sent_ns,
		.deliver_ns = deliver_ns,
		.len = (int64_t)pkt->len,
		.fate = fate,
		.reason = reason,
		.dup_of = pkt->dup_of,
		.ptype = pkt->ptype[0] != '\0' ? pkt->ptype : NULL,
		.space = NULL,
		.pn = -1,
		.frames = pkt->info[0] != '\0' ? pkt->info : NULL,
		.hs_state = pkt->hs_state[0] != '\0' ? pkt->hs_state : NULL,
		.data = data,
		.data_len = pkt->len,
	};
	sim_trace_packet(l->w->trace, &r);
	/* The packets inside the datagram: same fate and times, no bytes of
	 * their own (they are a slice of the parent's). Copies made by
	 * duplication carry none. */
	for (int i = 0; pkt->dup_of < 0 && i < pkt->nsubs; i++) {
		const sim_packet_sub *s = &pkt->subs[i];
		sim_packet_row sr = r;
		sr.id = s->id;
		sr.parent = pkt->id;
		sr.len = (int64_t)s->len;
		sr.ptype = s->ptype;
		sr.space = s->space[0] != '\0' ? s->space : NULL;
		sr.pn = s->pn;
		sr.frames = s->frames[0] != '\0' ? s->frames : NULL;
		sr.hs_state = s->hs_state[0] != '\0' ? s->hs_state : NULL;
		sr.data = NULL;
		sr.data_len = 0;
		sim_trace_packet(l->w->trace, &sr);
	}
}

/* Drops |pkt| (a submitted original) with |reason|; returns its id. */
static int64_t drop(sim_link *l, int dir, sim_packet *pkt, const char *reason)
{
	int64_t id = pkt->id;
	l->d[dir].st.lost++;
	trace_row(l, dir, pkt, pkt->data, -1, "lost", reason);
	sim_packet_del(pkt);
	return id;
}

/* inflight_full: the link holds the run's cap of packets in flight; the
 * run ends (sim_world_limit) and the packet is dropped. */
static int inflight_full(sim_link *l)
{
	uint64_t cap = l->w->limits.max_inflight;
	if (cap > INFLIGHT_MAX) {
		cap = INFLIGHT_MAX;
	}
	if (l->inflight < cap) {
		return 0;
	}
	sim_world_limit(l->w,
			"packets in flight: more than %llu on link %s "
			"(--max-inflight)",
			(unsigned long long)cap, l->name);
	return 1;
}

/* A frame type |t| in a frame list such as "ACK[0],CRYPTO(0+90)". */
static int has_frame(const char *frames, const char *t)
{
	size_t n = strlen(t);
	for (const char *p = frames; (p = strstr(p, t)) != NULL; p += n) {
		int start = p == frames || p[-1] == ',';
		char e = p[n];
		if (start && (e == '\0' || e == ',' || e == '(' || e == '[')) {
			return 1;
		}
	}
	return 0;
}

/* Whether a TCP segment's description ("... tls=ClientHello,Finished")
 * names TLS message |m|. */
static int carries_tls(const char *info, const char *m)
{
	const char *list = strstr(info, " tls=");
	if (list == NULL) {
		return 0;
	}
	list += 5;
	size_t n = strlen(m);
	for (const char *p = list; (p = strstr(p, m)) != NULL; p += n) {
		if ((p == list || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) {
			return 1;
		}
	}
	return 0;
}

/* holds_byte: whether TCP segment |info| ("seq=S ack=A len=N ...", the
 * stream's description, sequence numbers relative to the SYN) carries data
 * byte |off| of its sender's stream: data byte 0 has sequence number 1. */
static int holds_byte(const char *info, int64_t off)
{
	const char *s = strstr(info, "seq=");
	const char *n = strstr(info, "len=");
	if (s == NULL || n == NULL) {
		return 0;
	}
	unsigned long long seq = strtoull(s + 4, NULL, 10);
	unsigned long long len = strtoull(n + 4, NULL, 10);
	return seq >= 1 && (unsigned long long)off >= seq - 1 &&
	       (unsigned long long)off - (seq - 1) < len;
}

/* A packet type |want| is |have| or one of its '-' separated parts (a TCP
 * segment "DATA-FIN" is a FIN). */
static int type_is(const char *have, const char *want)
{
	size_t n = strlen(want);
	for (const char *p = have; (p = strstr(p, want)) != NULL; p += n) {
		if ((p == have || p[-1] == '-') &&
		    (p[n] == '\0' || p[n] == '-')) {
			return 1;
		}
	}
	return 0;
}

/* Whether the rule's per-packet fields (type, space, pn, frame,
 * key_phase) hold for the datagram itself or for one packet inside it.
 * Only a packet inside has a key phase: a datagram without any never
 * matches a key_phase rule. */
static int inner_matches(const sim_fault_rule *r, const sim_packet *pkt)
{
	if (r->type[0] == '\0' && r->space[0] == '\0' && r->pn < 0 &&
	    r->frame[0] == '\0' && r->key_phase < 0) {
		return 1;
	}
	for (int i = 0; i < pkt->nsubs; i++) {
		const sim_packet_sub *s = &pkt->subs[i];
		if ((r->type[0] == '\0' || type_is(s->ptype, r->type)) &&
		    (r->space[0] == '\0' || strcmp(r->space, s->space) == 0) &&
		    (r->pn < 0 || r->pn == s->pn) &&
		    (r->key_phase < 0 || r->key_phase == s->key_phase) &&
		    (r->frame[0] == '\0' || has_frame(s->frames, r->frame))) {
			return 1;
		}
	}
	return pkt->nsubs == 0 && r->space[0] == '\0' && r->pn < 0 &&
	       r->key_phase < 0 &&
	       (r->type[0] == '\0' || type_is(pkt->ptype, r->type)) &&
	       (r->frame[0] == '\0' || has_frame(pkt->info, r->frame));
}

/* pick_rule: the first rule with actions left that selects |pkt|; counts
 * its match (and its action, unless it waits for its nth). */
static const sim_fault_rule *pick_rule(sim_link *l, int dir,
				       const sim_packet *pkt, sim_time now)
{
	const char *from = sim_sched_node_name(l->w->sched, l->s[dir].node);
	for (int i = 0; i < l->nrules; i++) {
		sim_fault_rule *r = &l->rules[i];
		if ((r->count != 0 && r->acted >= r->count) ||
		    (r->dir != -1 && r->dir != dir) ||
		    (r->from[0] != '\0' && strcmp(r->from, from) != 0) ||
		    (r->proto[0] != '\0' &&
		     (pkt->proto == NULL || strcmp(r->proto, pkt->proto) != 0)) ||
		    now < r->after_ns || now >= r->before_ns ||
		    (r->info[0] != '\0' && strstr(pkt->info, r->info) == NULL) ||
		    (r->tls[0] != '\0' && !carries_tls(pkt->info, r->tls)) ||
		    (r->byte >= 0 &&
		     (pkt->proto == NULL || strcmp(pkt->proto, "tcp") != 0 ||
		      !holds_byte(pkt->info, r->byte))) ||
		    !inner_matches(r, pkt)) {
			continue;
		}
		r->matched++;
		if (r->nth != 0 && r->matched != r->nth) {
			continue;
		}
		r->acted++;
		return r;
	}
	return NULL;
}

static void append(char *buf, const char *item);

/* at_timer: the arrival time a timer-edge rule asks for, noted in
 * |reason|: the deadline plus the offset, or |at| when the timer is not
 * armed or that moment is already past. */
static sim_time at_timer(sim_link *l, int dir, const sim_fault_rule *r,
			 sim_time at, char *reason)
{
	const side *s = &l->s[r->timer_side ? !dir : dir];
	sim_time dl = s->deadline != NULL
			      ? s->deadline(s->deadline_ud, r->timer)
			      : SIM_TIME_MAX;
	char item[96];
	if (dl == SIM_TIME_MAX) {
		snprintf(item, sizeof(item), "%s timer not armed", r->timer);
		append(reason, item);
		return at;
	}
	sim_time want = r->offset_ns < 0 && dl < -r->offset_ns
				? 0
				: add_sat(dl, r->offset_ns);
	if (want < at) {
		snprintf(item, sizeof(item), "%s%+lldns is past", r->timer,
			 (long long)r->offset_ns);
		append(reason, item);
		return at;
	}
	snprintf(item, sizeof(item), "at %s%+lldns", r->timer,
		 (long long)r->offset_ns);
	append(reason, item);
	return want;
}

/* hold keeps |pkt| back until |behind| more packets left in |dir|. */
static int64_t hold(sim_link *l, int dir, sim_packet *pkt, uint64_t behind,
		    const char *reason)
{
	held *h = calloc(1, sizeof(*h));
	if (h == NULL) {
		return drop(l, dir, pkt, "nomem");
	}
	h->pkt = pkt;
	h->left = behind;
	snprintf(h->reason, sizeof(h->reason), "%s", reason);
	held **tail = &l->d[dir].held;
	while (*tail != NULL) {
		tail = &(*tail)->next;
	}
	*tail = h;
	return pkt->id;
}

/* release_held: a packet left |dir| to arrive at |at|; held packets whose
 * count is reached arrive 1 ns after it, in the order they were held. */
static void release_held(sim_link *l, int dir, sim_time at)
{
	held **pp = &l->d[dir].held;
	sim_time when = at;
	while (*pp != NULL) {
		held *h = *pp;
		if (--h->left > 0) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		when = add_sat(when, 1);
		if (launch(l, dir, h->pkt, when) != 0) {
			drop(l, dir, h->pkt, "nomem");
		} else {
			l->d[dir].st.reordered++;
			trace_row(l, dir, h->pkt, h->pkt->data, when,
				  "reordered", h->reason);
		}
		free(h);
	}
}

/* Records |pf| when a schedule is attached (sim/schedule.h). */
static void note_faults(sim_link *l, int dir, const sim_packet_faults *pf)
{
	sim_schedule *sch = l->w->schedule;
	if (sch == NULL) {
		return;
	}
	int rc = sim_schedule_note_faults(sch, l->index, dir,
					  l->d[dir].st.submitted, pf);
	if (rc != 0) {
		sim_world_fail(l->w, "link %s: recording the schedule: %s",
			       l->name, sim_strerror(rc));
	}
}

/* The flipped bits of |mask| (len bytes) into pf->bits, in offset order. */
static void bits_from_mask(sim_packet_faults *pf, const uint8_t *mask,
			   size_t len)
{
	pf->nbits = 0;
	for (size_t i = 0; i < len && pf->nbits < SIM_SCHEDULE_MAX_BITS; i++) {
		for (int b = 0; b < 8 && mask[i] != 0; b++) {
			if ((mask[i] & (1u << b)) &&
			    pf->nbits < SIM_SCHEDULE_MAX_BITS) {
				pf->bits[pf->nbits++] = (uint32_t)(i * 8 + b);
			}
		}
	}
}

/* pf->bits into |mask|; offsets past the packet are skipped. Returns how
 * many bits it sets. */
static uint64_t mask_from_bits(const sim_packet_faults *pf, uint8_t *mask,
			       size_t len)
{
	uint64_t k = 0;
	for (uint32_t i = 0; i < pf->nbits; i++) {
		uint32_t t = pf->bits[i];
		if (t / 8 < len && !(mask[t / 8] & (1u << (t % 8)))) {
			mask[t / 8] |= (uint8_t)(1u << (t % 8));
			k++;
		}
	}
	return k;
}

static void append(char *buf, const char *item)
{
	size_t n = strlen(buf);
	snprintf(buf + n, REASON_LEN - n, "%s%s", n > 0 ? "," : "", item);
}

int64_t sim_link_submit(sim_link *l, int from_side, sim_packet *pkt)
{
	if (pkt == NULL) {
		return SIM_EINVAL;
	}
	if (l == NULL || (from_side != 0 && from_side != 1)) {
		sim_packet_del(pkt);
		return SIM_EINVAL;
	}
	int dir = from_side;
	if (!l->s[0].attached || !l->s[1].attached) {
		sim_packet_del(pkt);
		return SIM_ESTATE;
	}
	sim_world *w = l->w;
	direction *d = &l->d[dir];
	const sim_link_params *p = &d->p;
	sim_time now = sim_world_now(w);
	char reason[REASON_LEN] = "";
	char item[96];

	if (!d->seeded) {
		seed_streams(l, dir);
	}
	pkt->id = w->next_packet_id++;
	for (int i = 0; i < pkt->nsubs; i++) {
		pkt->subs[i].id = w->next_packet_id++;
	}
	pkt->dup_of = -1;
	pkt->sent_ns = now;
	d->st.submitted++;

	/* 1. scripted faults */
	if (in_partition(d, now)) {
		return drop(l, dir, pkt, "partition");
	}
	if (is_nth(d, d->st.submitted)) {
		return drop(l, dir, pkt, "drop_nth");
	}
	const sim_fault_rule *rule = pick_rule(l, dir, pkt, now);
	char rule_reason[80] = "";
	if (rule != NULL) {
		snprintf(rule_reason, sizeof(rule_reason), "fault:%s",
			 rule->name);
		if (rule->action == SIM_FAULT_ACT_DROP) {
			return drop(l, dir, pkt, rule_reason);
		}
		if (rule->action == SIM_FAULT_ACT_REORDER) {
			return hold(l, dir, pkt, rule->behind, rule_reason);
		}
		append(reason, rule_reason);
	}
	sim_time filter_delay = 0;
	if (l->filter != NULL) {
		char fr[64] = "";
		sim_time dl = 0;
		enum sim_link_verdict v =
			l->filter(l->filter_ud, pkt, dir, &dl, fr);
		fr[sizeof(fr) - 1] = '\0';
		if (v == SIM_LINK_DROP) {
			snprintf(item, sizeof(item), "filter%s%s",
				 fr[0] ? ":" : "", fr);
			return drop(l, dir, pkt, item);
		}
		if (v == SIM_LINK_DELAY) {
			filter_delay = dl > 0 ? dl : 0;
			snprintf(item, sizeof(item), "delay%s%s",
				 fr[0] ? ":" : "", fr);
			append(reason, item);
		}
	}
	/* 2. MTU */
	if (p->mtu != 0 && pkt->len > p->mtu) {
		return drop(l, dir, pkt, "mtu");
	}
	/* 3. loss */
	sim_schedule *sch = w->schedule;
	int forced = sch != NULL && sim_schedule_faults_forced(sch);
	sim_packet_faults pf; /* this packet's random faults */
	if (forced) {
		sim_schedule_packet_faults(sch, l->index, dir, d->st.submitted,
					   &pf);
	} else {
		int burst;
		memset(&pf, 0, sizeof(pf));
		if (draw_loss(d, &burst)) {
			pf.lost = burst ? 2 : 1;
		}
	}
	if (pf.lost) {
		note_faults(l, dir, &pf);
		return drop(l, dir, pkt, pf.lost == 2 ? "burst_loss" : "loss");
	}
	if (inflight_full(l)) {
		return drop(l, dir, pkt, "inflight_cap");
	}
	/* 4. bandwidth */
	sim_time done = now;
	if (p->bandwidth_bps != 0) {
		queue_advance(d, now);
		sim_time start = d->busy_until > now ? d->busy_until : now;
		if (start > now && p->queue_bytes != 0 &&
		    d->q_bytes + pkt->len > p->queue_bytes) {
			return drop(l, dir, pkt, "queue_full");
		}
		if (start > now && queue_push(d, start, pkt->len) != 0) {
			drop(l, dir, pkt, "nomem");
			return SIM_ENOMEM;
		}
		done = add_sat(start,
			       serialization_ns(pkt->len, p->bandwidth_bps));
		d->busy_until = done;
	}
	/* 5. latency + jitter */
	sim_time at = add_sat(done, p->latency_ns);
	if (!forced && p->jitter_ns > 0) {
		pf.delay_ns = (sim_time)sim_rng_below(
			&d->rng[F_JITTER], (uint64_t)p->jitter_ns + 1);
	}
	at = add_sat(at, pf.delay_ns);
	at = add_sat(at, filter_delay);
	if (rule != NULL && rule->action == SIM_FAULT_ACT_DELAY) {
		at = add_sat(at, rule->delay_ns);
	}
	if (rule != NULL && rule->action == SIM_FAULT_ACT_AT_TIMER) {
		at = at_timer(l, dir, rule, at, reason);
	}
	/* 6. reorder */
	if (!forced && sim_rng_chance(&d->rng[F_REORDER], p->reorder)) {
		pf.reorder = 1;
		pf.reorder_ns = p->reorder_delay_ns;
	}
	if (pf.reorder) {
		at = add_sat(at, pf.reorder_ns);
		append(reason, "reorder");
	}
	/* 7. corruption: bits chosen now, flipped after the rows are written
	 * so that they hold the bytes as sent. */
	uint8_t *mask = NULL;
	uint64_t flipped = 0;
	int corrupt = forced ? pf.nbits > 0
			     : sim_rng_chance(&d->rng[F_CORRUPT], p->corrupt);
	if (corrupt && pkt->len > 0) {
		mask = calloc(1, pkt->len);
		if (mask == NULL) {
			drop(l, dir, pkt, "nomem");
			return SIM_ENOMEM;
		}
		if (forced) {
			flipped = mask_from_bits(&pf, mask, pkt->len);
		} else {
			flipped = pick_bits(&d->rng[F_CORRUPT], mask, pkt->len,
					    (uint64_t)p->corrupt_bits);
			bits_from_mask(&pf, mask, pkt->len);
		}
		if (flipped > 0) {
			snprintf(item, sizeof(item), "corrupt:%llu bits",
				 (unsigned long long)flipped);
			append(reason, item);
		}
	}
	if (rule != NULL && rule->action == SIM_FAULT_ACT_CORRUPT &&
	    pkt->len > 0) {
		if (mask == NULL && (mask = calloc(1, pkt->len)) == NULL) {
			drop(l, dir, pkt, "nomem");
			return SIM_ENOMEM;
		}
		uint8_t *extra = calloc(1, pkt->len);
		if (extra == NULL) {
			free(mask);
			drop(l, dir, pkt, "nomem");
			return SIM_ENOMEM;
		}
		pick_bits(&d->rule_rng, extra, pkt->len, (uint64_t)rule->bits);
		flipped = 0;
		for (size_t i = 0; i < pkt->len; i++) {
			mask[i] ^= extra[i];
			flipped += (uint64_t)__builtin_popcount(mask[i]);
		}
		free(extra);
	}
	/* 8. duplication */
	if (!forced && sim_rng_chance(&d->rng[F_DUP], p->dup)) {
		pf.dup = 1;
		pf.dup_after_ns = p->jitter_ns > 0
					  ? 1 + (sim_time)sim_rng_below(
							&d->rng[F_DUP],
							(uint64_t)p->jitter_ns)
					  : SIM_US;
	}
	int want_dup = pf.dup;
	sim_time dup_at = want_dup ? add_sat(at, pf.dup_after_ns) : 0;
	if (rule != NULL && rule->action == SIM_FAULT_ACT_DUP) {
		want_dup = 1;
		dup_at = add_sat(at, rule->delay_ns > 0 ? rule->delay_ns : SIM_US);
	}
	note_faults(l, dir, &pf);

	int64_t id = pkt->id;
	size_t len = pkt->len;
	int rc = launch(l, dir, pkt, at);
	if (rc != 0) {
		free(mask);
		if (rc == SIM_ENOMEM) {
			drop(l, dir, pkt, "nomem");
		} else {
			snprintf(item, sizeof(item), "sched:%s",
				 sim_strerror(rc));
			drop(l, dir, pkt, item);
		}
		return rc;
	}
	if (flipped > 0) {
		d->st.corrupted++;
	}
	if (pf.reorder) {
		d->st.reordered++;
	}
	const char *fate = flipped > 0 ? "corrupted"
			   : pf.reorder ? "reordered"
				       : "delivered";
	trace_row(l, dir, pkt, pkt->data, at, fate,
		  reason[0] ? reason : NULL);
	release_held(l, dir, at);

	if (want_dup) {
		/* pkt is in flight but cannot be delivered before we return. */
		sim_packet *c = sim_packet_clone(pkt);
		if (c == NULL) {
			sim_world_fail(w, "link %s: out of memory", l->name);
		} else {
			c->id = w->next_packet_id++;
			c->dup_of = id;
			d->st.duplicated++;
			char dr[REASON_LEN] = "dup";
			if (flipped > 0) {
				snprintf(item, sizeof(item),
					 "corrupt:%llu bits",
					 (unsigned long long)flipped);
				append(dr, item);
			}
			if (inflight_full(l)) {
				d->st.lost++;
				trace_row(l, dir, c, c->data, -1, "duplicated",
					  "inflight_cap");
				sim_packet_del(c);
			} else if (launch(l, dir, c, dup_at) != 0) {
				d->st.lost++;
				trace_row(l, dir, c, c->data, -1, "duplicated",
					  "nomem");
				sim_packet_del(c);
				sim_world_fail(w, "link %s: cannot schedule a "
						  "duplicate: %s",
					       l->name,
					       sim_strerror(sim_sched_error(
						       w->sched)));
			} else {
				trace_row(l, dir, c, c->data, dup_at,
					  "duplicated", dr);
				if (mask != NULL) {
					for (size_t i = 0; i < len; i++) {
						c->data[i] ^= mask[i];
					}
				}
			}
		}
	}
	if (mask != NULL) {
		for (size_t i = 0; i < len; i++) {
			pkt->data[i] ^= mask[i];
		}
		free(mask);
	}
	return id;
}

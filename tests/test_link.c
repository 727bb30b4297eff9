/* Link: fault statistics, timing, bandwidth and queue, scripted faults,
 * corruption, reordering, determinism and stream independence, parameter
 * checks, teardown with packets in flight.
 *
 * Packets carry their per-test index in pkt->info ("%d") so that the
 * receiver can tell which one arrived even when the bytes are corrupted or
 * ids shift because of duplicates. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/link.h"
#include "sim/world.h"
#include "tests/unit.h"

#define DATA_KEEP 128

typedef struct rec {
	int64_t id, dup_of;
	int dir;
	int idx;
	sim_time sent, at;
	size_t len;
	uint64_t hash;
	uint8_t data[DATA_KEEP];
} rec;

typedef struct harness harness;

typedef struct endpoint {
	harness *h;
	int side;
} endpoint;

struct harness {
	sim_world w;
	sim_link *l;
	int node[2];
	endpoint ep[2];
	rec *recs;
	size_t n, cap;
};

static void on_deliver(void *ud, sim_packet *pkt)
{
	endpoint *ep = ud;
	harness *h = ep->h;
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 1024;
		h->recs = realloc(h->recs, h->cap * sizeof(*h->recs));
		if (h->recs == NULL) {
			abort();
		}
	}
	rec *r = &h->recs[h->n++];
	memset(r, 0, sizeof(*r));
	r->id = pkt->id;
	r->dup_of = pkt->dup_of;
	r->dir = !ep->side; /* delivered to b: sent a->b, direction 0 */
	r->idx = atoi(pkt->info);
	r->sent = pkt->sent_ns;
	r->at = sim_world_now(&h->w);
	r->len = pkt->len;
	r->hash = sim_fnv1a64(pkt->data, pkt->len);
	memcpy(r->data, pkt->data, pkt->len < DATA_KEEP ? pkt->len : DATA_KEEP);
	sim_packet_del(pkt);
}

/* Sets up world |seed| and link "l" between nodes "a" and "b". */
static int h_init(harness *h, uint64_t seed, const sim_link_params *p)
{
	memset(h, 0, sizeof(*h));
	if (sim_world_init(&h->w, seed, NULL) != 0) {
		return -1;
	}
	h->l = sim_link_new(&h->w, "l", p);
	if (h->l == NULL) {
		sim_world_free(&h->w);
		return -1;
	}
	static const char *const names[2] = {"a", "b"};
	for (int s = 0; s < 2; s++) {
		h->node[s] = sim_sched_node(h->w.sched, names[s]);
		h->ep[s].h = h;
		h->ep[s].side = s;
		sim_link_attach(h->l, s, h->node[s], on_deliver, &h->ep[s]);
	}
	return 0;
}

static void h_free(harness *h)
{
	sim_link_del(h->l);
	sim_world_free(&h->w);
	free(h->recs);
}

/* The payload of packet |idx|: bytes derived from the index. */
static void payload(uint8_t *buf, size_t len, int idx)
{
	for (size_t i = 0; i < len; i++) {
		buf[i] = (uint8_t)(idx * 31 + (int)i * 7 + 1);
	}
}

static int64_t h_send(harness *h, int side, int idx, size_t len)
{
	uint8_t buf[2048];
	if (len > sizeof(buf)) {
		abort();
	}
	payload(buf, len, idx);
	sim_packet *p = sim_packet_new(buf, len);
	if (p == NULL) {
		abort();
	}
	snprintf(p->info, sizeof(p->info), "%d", idx);
	p->proto = "test";
	return sim_link_submit(h->l, side, p);
}

/* A send scheduled at a chosen virtual time. */
typedef struct sendspec {
	harness *h;
	int side;
	int idx;
	size_t len;
	int64_t id; /* filled when sent */
} sendspec;

static void send_ev(sim_sched *s, void *arg, sim_event_id id)
{
	sendspec *sp = arg;
	(void)s;
	(void)id;
	sp->id = h_send(sp->h, sp->side, sp->idx, sp->len);
}

static void send_at(harness *h, sendspec *sp, sim_time t)
{
	int kind = sim_sched_kind(h->w.sched, "script");
	sim_sched_at(h->w.sched, t, h->node[sp->side], kind, send_ev, sp);
}

static void h_run(harness *h)
{
	sim_sched_run(h->w.sched, NULL);
}

/* Marks, per index, whether the original of a packet sent in |dir| was
 * delivered. */
static void delivered_map(const harness *h, int dir, uint8_t *got, int n)
{
	memset(got, 0, (size_t)n);
	for (size_t i = 0; i < h->n; i++) {
		const rec *r = &h->recs[i];
		if (r->dir == dir && r->dup_of < 0 && r->idx >= 0 &&
		    r->idx < n) {
			got[r->idx] = 1;
		}
	}
}

static void check_invariant(const harness *h)
{
	for (int dir = 0; dir < 2; dir++) {
		sim_link_stats st;
		sim_link_get_stats(h->l, dir, &st);
		CHECK_U64(st.submitted + st.duplicated, st.delivered + st.lost);
	}
}

#define NSTAT 100000

TEST(link_loss_rate)
{
	/* Binomial: k lost of n = 100,000 with p = 0.1. We require
	 * |k - np| <= 5 * sqrt(np(1-p)) (= 474): a 5-sigma bound, so a
	 * correct implementation fails it for about 1 seed in 1.7 million,
	 * and the seed is fixed anyway. */
	sim_link_params p;
	sim_link_params_default(&p);
	p.loss = 0.1;
	harness h;
	REQUIRE(h_init(&h, 42, &p) == 0);
	for (int i = 0; i < NSTAT; i++) {
		CHECK(h_send(&h, 0, i, 8) > 0);
	}
	h_run(&h);
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.submitted, NSTAT);
	CHECK_U64(st.delivered, h.n);
	CHECK_U64(st.delivered + st.lost, NSTAT);
	double np = NSTAT * 0.1, bound = 5 * sqrt(np * 0.9);
	if (fabs((double)st.lost - np) > bound) {
		unit_fail(__FILE__, __LINE__, "lost %llu, want %.0f +- %.0f",
			  (unsigned long long)st.lost, np, bound);
	}
	sim_link_get_stats(h.l, 1, &st);
	CHECK_U64(st.submitted, 0);
	h_free(&h);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

TEST(link_dup_rate)
{
	/* Same 5-sigma binomial bound for n = 100,000, p = 0.05 (= 345). */
	sim_link_params p;
	sim_link_params_default(&p);
	p.dup = 0.05;
	p.latency_ns = 3 * SIM_MS;
	harness h;
	REQUIRE(h_init(&h, 43, &p) == 0);
	int64_t *ids = calloc(NSTAT, sizeof(*ids));
	sim_time *at = calloc(NSTAT, sizeof(*at));
	REQUIRE(ids != NULL && at != NULL);
	for (int i = 0; i < NSTAT; i++) {
		ids[i] = h_send(&h, 0, i, 8);
	}
	h_run(&h);
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	double np = NSTAT * 0.05, bound = 5 * sqrt(np * 0.95);
	if (fabs((double)st.duplicated - np) > bound) {
		unit_fail(__FILE__, __LINE__,
			  "duplicated %llu, want %.0f +- %.0f",
			  (unsigned long long)st.duplicated, np, bound);
	}
	CHECK_U64(st.delivered, NSTAT + st.duplicated);
	CHECK_U64(h.n, NSTAT + st.duplicated);
	check_invariant(&h);
	/* Originals first, to know their arrival time. */
	for (size_t i = 0; i < h.n; i++) {
		const rec *r = &h.recs[i];
		if (r->dup_of < 0) {
			CHECK_INT(r->id, ids[r->idx]);
			at[r->idx] = r->at;
		}
	}
	uint64_t copies = 0, bad = 0;
	for (size_t i = 0; i < h.n; i++) {
		const rec *r = &h.recs[i];
		if (r->dup_of < 0) {
			continue;
		}
		copies++;
		uint8_t want[8];
		payload(want, 8, r->idx);
		/* Own id, dup_of the original, same bytes, 1 us later (no
		 * jitter). */
		if (r->dup_of != ids[r->idx] || r->id <= r->dup_of ||
		    memcmp(r->data, want, 8) != 0 ||
		    r->at != at[r->idx] + SIM_US) {
			bad++;
		}
	}
	CHECK_U64(copies, st.duplicated);
	CHECK_U64(bad, 0);
	/* Every packet, copy or not, has its own id. */
	int64_t *all = malloc(h.n * sizeof(*all));
	REQUIRE(all != NULL);
	for (size_t i = 0; i < h.n; i++) {
		all[i] = h.recs[i].id;
	}
	qsort(all, h.n, sizeof(*all), cmp_i64);
	for (size_t i = 1; i < h.n; i++) {
		CHECK(all[i - 1] < all[i]);
	}
	free(all);
	free(ids);
	free(at);
	h_free(&h);
}

/* Mean length of the runs of consecutive losses in |got|. */
static double mean_burst(const uint8_t *got, int n, uint64_t *lost)
{
	uint64_t bursts = 0, total = 0;
	for (int i = 0; i < n; i++) {
		if (!got[i]) {
			total++;
			if (i == 0 || got[i - 1]) {
				bursts++;
			}
		}
	}
	*lost = total;
	return bursts ? (double)total / (double)bursts : 0.0;
}

TEST(link_gilbert_elliott)
{
	/* Chain: p_gb = 0.02, p_bg = 0.3, loss 0.01 good / 1 bad.
	 * pi_bad = p_gb / (p_gb + p_bg) = 0.0625; stationary loss rate
	 * pi_bad * 1 + pi_good * 0.01 = 0.071875.
	 * Bound: losses are correlated. For a two-state chain with
	 * lambda = 1 - p_gb - p_bg (= 0.68) the variance of the number of
	 * bad-state packets over n is about
	 *   n pi_bad pi_good (1 + lambda) / (1 - lambda)   (sd ~ 175),
	 * plus the good-state Bernoulli noise n pi_good lg (1 - lg)
	 * (sd ~ 30). We require |k - n * rate| <= 6 * sqrt(sum of both)
	 * (~ 1070, 15% of the mean): generous, and the seed is fixed. */
	const double p_gb = 0.02, p_bg = 0.3, lg = 0.01, lb = 1.0;
	sim_link_params p;
	sim_link_params_default(&p);
	p.ge_enabled = 1;
	p.ge_p_gb = p_gb;
	p.ge_p_bg = p_bg;
	p.ge_loss_good = lg;
	p.ge_loss_bad = lb;
	harness h;
	REQUIRE(h_init(&h, 44, &p) == 0);
	for (int i = 0; i < NSTAT; i++) {
		h_send(&h, 0, i, 8);
	}
	h_run(&h);
	uint8_t *got = malloc(NSTAT);
	REQUIRE(got != NULL);
	delivered_map(&h, 0, got, NSTAT);
	uint64_t lost;
	double burst = mean_burst(got, NSTAT, &lost);
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.lost, lost);

	double pb = p_gb / (p_gb + p_bg), pg = 1 - pb;
	double rate = pb * lb + pg * lg;
	double lambda = 1 - p_gb - p_bg;
	double var = NSTAT * pb * pg * (1 + lambda) / (1 - lambda) +
		     NSTAT * pg * lg * (1 - lg);
	double bound = 6 * sqrt(var);
	if (fabs((double)lost - NSTAT * rate) > bound) {
		unit_fail(__FILE__, __LINE__, "GE lost %llu, want %.0f +- %.0f",
			  (unsigned long long)lost, NSTAT * rate, bound);
	}
	/* Bad-state sojourns last 1 / p_bg = 3.3 packets on average, all
	 * lost: bursts. Require a mean burst length > 1.5. */
	if (!(burst > 1.5)) {
		unit_fail(__FILE__, __LINE__, "GE mean burst %.3f, want > 1.5",
			  burst);
	}
	h_free(&h);

	/* Contrast: Bernoulli loss at the same rate has mean burst
	 * 1 / (1 - rate) = 1.08. */
	sim_link_params_default(&p);
	p.loss = rate;
	REQUIRE(h_init(&h, 44, &p) == 0);
	for (int i = 0; i < NSTAT; i++) {
		h_send(&h, 0, i, 8);
	}
	h_run(&h);
	delivered_map(&h, 0, got, NSTAT);
	burst = mean_burst(got, NSTAT, &lost);
	if (!(burst < 1.2)) {
		unit_fail(__FILE__, __LINE__,
			  "Bernoulli mean burst %.3f, want < 1.2", burst);
	}
	free(got);
	h_free(&h);
}

TEST(link_latency_jitter)
{
	enum { N = 2000 };
	static sendspec sp[N];
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = 20 * SIM_MS;
	p.jitter_ns = 2 * SIM_MS;
	harness h;
	REQUIRE(h_init(&h, 7, &p) == 0);
	for (int i = 0; i < N; i++) {
		sp[i] = (sendspec){.h = &h, .side = i % 2, .idx = i, .len = 16};
		send_at(&h, &sp[i], (sim_time)i * 100 * SIM_US);
	}
	h_run(&h);
	REQUIRE(h.n == N);
	sim_time dmin = SIM_TIME_MAX, dmax = 0;
	for (size_t i = 0; i < h.n; i++) {
		const rec *r = &h.recs[i];
		CHECK_INT(r->sent, (sim_time)r->idx * 100 * SIM_US);
		CHECK_INT(r->dir, r->idx % 2);
		sim_time d = r->at - r->sent;
		if (d < p.latency_ns || d > p.latency_ns + p.jitter_ns) {
			unit_fail(__FILE__, __LINE__, "delay %lld out of range",
				  (long long)d);
		}
		dmin = d < dmin ? d : dmin;
		dmax = d > dmax ? d : dmax;
	}
	/* The jitter is actually used: spread over most of [0, 2ms]. */
	CHECK(dmin < p.latency_ns + p.jitter_ns / 10);
	CHECK(dmax > p.latency_ns + p.jitter_ns * 9 / 10);
	h_free(&h);

	/* Zero jitter: exactly the latency. */
	p.jitter_ns = 0;
	REQUIRE(h_init(&h, 7, &p) == 0);
	for (int i = 0; i < N; i++) {
		sp[i] = (sendspec){.h = &h, .side = i % 2, .idx = i, .len = 16};
		send_at(&h, &sp[i], (sim_time)i * 100 * SIM_US);
	}
	h_run(&h);
	REQUIRE(h.n == N);
	for (size_t i = 0; i < h.n; i++) {
		CHECK_INT(h.recs[i].at, h.recs[i].sent + 20 * SIM_MS);
	}
	h_free(&h);
}

TEST(link_bandwidth_queue)
{
	/* 1250 bytes at 1 Mbit/s: 10 ms each, back to back. */
	sim_link_params p;
	sim_link_params_default(&p);
	p.bandwidth_bps = 1000000;
	p.latency_ns = 5 * SIM_MS;
	harness h;
	REQUIRE(h_init(&h, 1, &p) == 0);
	for (int i = 0; i < 10; i++) {
		CHECK(h_send(&h, 0, i, 1250) > 0);
	}
	h_run(&h);
	REQUIRE(h.n == 10);
	for (int i = 0; i < 10; i++) {
		CHECK_INT(h.recs[i].idx, i);
		CHECK_INT(h.recs[i].at, 5 * SIM_MS + (i + 1) * 10 * SIM_MS);
	}
	/* The other direction has its own bottleneck: idle. */
	CHECK(h_send(&h, 1, 100, 1250) > 0);
	h_run(&h);
	REQUIRE(h.n == 11);
	CHECK_INT(h.recs[10].at - h.recs[10].sent, 15 * SIM_MS);
	h_free(&h);

	/* queue_bytes 3000: packet 0 goes on the wire, 1 and 2 wait (2500
	 * bytes), 3..9 would exceed 3000 and are tail-dropped. At 20 ms
	 * packet 2 is on the wire and the queue is empty again: packet 10
	 * waits and leaves at 40 ms. */
	p.queue_bytes = 3000;
	REQUIRE(h_init(&h, 1, &p) == 0);
	for (int i = 0; i < 10; i++) {
		CHECK(h_send(&h, 0, i, 1250) > 0);
	}
	sendspec late = {.h = &h, .side = 0, .idx = 10, .len = 1250};
	send_at(&h, &late, 20 * SIM_MS);
	h_run(&h);
	REQUIRE(h.n == 4);
	for (int i = 0; i < 3; i++) {
		CHECK_INT(h.recs[i].idx, i);
		CHECK_INT(h.recs[i].at, 5 * SIM_MS + (i + 1) * 10 * SIM_MS);
	}
	CHECK_INT(h.recs[3].idx, 10);
	CHECK_INT(h.recs[3].at, 45 * SIM_MS);
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.lost, 7);
	CHECK_U64(st.delivered, 4);
	CHECK_U64(st.bytes_delivered, 4 * 1250);
	h_free(&h);
}

TEST(link_mtu)
{
	sim_link_params p;
	sim_link_params_default(&p);
	p.mtu = 1200;
	harness h;
	REQUIRE(h_init(&h, 1, &p) == 0);
	CHECK(h_send(&h, 0, 0, 1199) > 0);
	CHECK(h_send(&h, 0, 1, 1200) > 0);
	CHECK(h_send(&h, 0, 2, 1201) > 0); /* dropped, still gets an id */
	CHECK(h_send(&h, 1, 3, 1500) > 0);
	h_run(&h);
	REQUIRE(h.n == 2);
	CHECK_INT(h.recs[0].idx, 0);
	CHECK_INT(h.recs[1].idx, 1);
	CHECK_INT(h.recs[1].len, 1200);
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.lost, 1);
	sim_link_get_stats(h.l, 1, &st);
	CHECK_U64(st.lost, 1);
	h_free(&h);
}

TEST(link_partition)
{
	static const sim_time when[] = {
		0, 5 * SIM_MS, 10 * SIM_MS - 1, 10 * SIM_MS, 15 * SIM_MS,
		20 * SIM_MS - 1, 20 * SIM_MS, 25 * SIM_MS,
	};
	/* Sent in [10ms, 20ms) a->b: dropped. */
	static const int dropped[] = {0, 0, 0, 1, 1, 1, 0, 0};
	enum { N = sizeof(when) / sizeof(when[0]) };
	sendspec sp[2 * N];
	harness h;
	REQUIRE(h_init(&h, 1, NULL) == 0);
	CHECK_INT(sim_link_partition(h.l, 0, 10 * SIM_MS, 20 * SIM_MS), 0);
	CHECK_INT(sim_link_partition(h.l, 2, 0, 1), SIM_EINVAL);
	CHECK_INT(sim_link_partition(h.l, 0, 2, 1), SIM_EINVAL);
	for (int i = 0; i < N; i++) {
		for (int s = 0; s < 2; s++) {
			sp[2 * i + s] = (sendspec){
				.h = &h, .side = s, .idx = 2 * i + s, .len = 4};
			send_at(&h, &sp[2 * i + s], when[i]);
		}
	}
	h_run(&h);
	uint8_t got[2 * N];
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < h.n; i++) {
		got[h.recs[i].idx] = 1;
	}
	for (int i = 0; i < N; i++) {
		CHECK_INT(got[2 * i], !dropped[i]); /* a->b */
		CHECK_INT(got[2 * i + 1], 1);       /* b->a untouched */
	}
	h_free(&h);

	/* Both directions. */
	REQUIRE(h_init(&h, 1, NULL) == 0);
	CHECK_INT(sim_link_partition(h.l, -1, 0, SIM_MS), 0);
	CHECK(h_send(&h, 0, 0, 4) > 0);
	CHECK(h_send(&h, 1, 1, 4) > 0);
	h_run(&h);
	CHECK_INT(h.n, 0);
	h_free(&h);
}

TEST(link_drop_nth)
{
	harness h;
	REQUIRE(h_init(&h, 1, NULL) == 0);
	CHECK_INT(sim_link_drop_nth(h.l, 0, 3), 0);
	CHECK_INT(sim_link_drop_nth(h.l, -1, 5), 0);
	CHECK_INT(sim_link_drop_nth(h.l, 0, 0), SIM_EINVAL);
	CHECK_INT(sim_link_drop_nth(h.l, 3, 1), SIM_EINVAL);
	for (int i = 1; i <= 8; i++) {
		h_send(&h, 0, i, 4);       /* idx = ordinal in a->b */
		h_send(&h, 1, 100 + i, 4); /* 100 + ordinal in b->a */
	}
	h_run(&h);
	uint8_t got[200];
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < h.n; i++) {
		got[h.recs[i].idx] = 1;
	}
	for (int i = 1; i <= 8; i++) {
		CHECK_INT(got[i], i != 3 && i != 5);
		CHECK_INT(got[100 + i], i != 5);
	}
	h_free(&h);
}

/* A QUIC-like datagram |idx| from |side| holding |n| packets: ptypes[k]
 * with Key Phase phases[k] (-1: a long header). */
static void h_send_quic(harness *h, int side, int idx, int n,
			const char *const *ptypes, const int *phases)
{
	uint8_t buf[64];
	payload(buf, sizeof(buf), idx);
	sim_packet *p = sim_packet_new(buf, sizeof(buf));
	if (p == NULL) {
		abort();
	}
	snprintf(p->info, sizeof(p->info), "%d", idx);
	snprintf(p->ptype, sizeof(p->ptype), "datagram");
	p->proto = "quic";
	for (int k = 0; k < n; k++) {
		sim_packet_sub sub;
		memset(&sub, 0, sizeof(sub));
		snprintf(sub.ptype, sizeof(sub.ptype), "%s", ptypes[k]);
		sub.pn = idx;
		sub.key_phase = phases[k];
		sub.len = sizeof(buf) / (size_t)n;
		if (sim_packet_add_sub(p, &sub) != 0) {
			abort();
		}
	}
	sim_link_submit(h->l, side, p);
}

static sim_fault_rule rule_any(const char *name)
{
	sim_fault_rule r;
	sim_fault_rule_init(&r);
	snprintf(r.name, sizeof(r.name), "%s", name);
	return r;
}

/* key_phase selects datagrams by the Key Phase of a short-header packet
 * inside, never by a long header's or a datagram's without packets. */
TEST(link_fault_key_phase)
{
	static const char *const hs_1rtt[] = {"handshake", "1rtt"};
	static const char *const one[] = {"1rtt"};
	static const char *const hs[] = {"handshake"};
	harness h;
	REQUIRE(h_init(&h, 1, NULL) == 0);
	sim_fault_rule bad = rule_any("bad");
	bad.key_phase = 2;
	CHECK_INT(sim_link_add_fault(h.l, &bad), SIM_EINVAL);
	bad.key_phase = -2;
	CHECK_INT(sim_link_add_fault(h.l, &bad), SIM_EINVAL);
	/* The second a->b datagram with a phase 1 packet. */
	sim_fault_rule second = rule_any("second phase 1");
	second.dir = 0;
	second.key_phase = 1;
	second.nth = 2;
	CHECK_INT(sim_link_add_fault(h.l, &second), 0);
	/* A handshake packet never has phase 0, even in a datagram with a
	 * phase 0 1-RTT packet. */
	sim_fault_rule hs0 = rule_any("handshake phase 0");
	snprintf(hs0.type, sizeof(hs0.type), "handshake");
	hs0.key_phase = 0;
	CHECK_INT(sim_link_add_fault(h.l, &hs0), 0);
	/* Every b->a datagram with a phase 0 packet. */
	sim_fault_rule back = rule_any("b->a phase 0");
	back.dir = 1;
	back.key_phase = 0;
	CHECK_INT(sim_link_add_fault(h.l, &back), 0);

	const int p0[] = {0}, p1[] = {1}, hs_p0[] = {-1, 0}, hs_p1[] = {-1, 1},
		  none[] = {-1};
	h_send_quic(&h, 0, 1, 2, hs_1rtt, hs_p0); /* a->b: passes */
	h_send_quic(&h, 0, 2, 2, hs_1rtt, hs_p1); /* first phase 1: passes */
	h_send_quic(&h, 0, 3, 1, one, p0);
	h_send_quic(&h, 0, 4, 1, one, p1);        /* second: dropped */
	h_send_quic(&h, 0, 5, 1, one, p1);        /* third: passes */
	h_send_quic(&h, 0, 6, 1, hs, none);
	h_send(&h, 0, 7, 8);                      /* no packets inside */
	h_send_quic(&h, 1, 101, 1, one, p0);      /* b->a phase 0: dropped */
	h_send_quic(&h, 1, 102, 1, one, p1);
	h_send_quic(&h, 1, 103, 2, hs_1rtt, hs_p0); /* dropped */
	h_send_quic(&h, 1, 104, 1, hs, none);
	h_send(&h, 1, 105, 8);
	h_run(&h);
	uint8_t got[200];
	memset(got, 0, sizeof(got));
	for (size_t i = 0; i < h.n; i++) {
		got[h.recs[i].idx] = 1;
	}
	for (int i = 1; i <= 7; i++) {
		CHECK_INT(got[i], i != 4);
	}
	for (int i = 101; i <= 105; i++) {
		CHECK_INT(got[i], i != 101 && i != 103);
	}
	check_invariant(&h);
	h_free(&h);
}

typedef struct filter_state {
	int calls[2];
} filter_state;

static enum sim_link_verdict filter(void *ud, const sim_packet *pkt, int dir,
				    sim_time *delay_ns, char *reason)
{
	filter_state *fs = ud;
	fs->calls[dir]++;
	int idx = atoi(pkt->info);
	if (idx == 2) {
		snprintf(reason, 64, "no second");
		return SIM_LINK_DROP;
	}
	if (idx == 4 && dir == 0) {
		*delay_ns = 7 * SIM_MS;
		snprintf(reason, 64, "slow");
		return SIM_LINK_DELAY;
	}
	return SIM_LINK_PASS;
}

TEST(link_filter)
{
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = SIM_MS;
	filter_state fs = {{0, 0}};
	harness h;
	REQUIRE(h_init(&h, 1, &p) == 0);
	sim_link_set_filter(h.l, filter, &fs);
	for (int i = 0; i < 6; i++) {
		h_send(&h, 0, i, 4);
	}
	h_send(&h, 1, 4, 4); /* not delayed b->a */
	h_send(&h, 1, 2, 4); /* dropped b->a too */
	h_run(&h);
	CHECK_INT(fs.calls[0], 6);
	CHECK_INT(fs.calls[1], 2);
	REQUIRE(h.n == 6);
	int seen4 = 0;
	for (size_t i = 0; i < h.n; i++) {
		const rec *r = &h.recs[i];
		CHECK(r->idx != 2);
		if (r->idx == 4 && r->dir == 0) {
			seen4 = 1;
			CHECK_INT(r->at, 8 * SIM_MS);
		} else {
			CHECK_INT(r->at, SIM_MS);
		}
	}
	CHECK(seen4);
	/* Removing the filter passes everything. */
	sim_link_set_filter(h.l, NULL, NULL);
	h.n = 0;
	h_send(&h, 0, 2, 4);
	h_run(&h);
	CHECK_INT(h.n, 1);
	CHECK_INT(fs.calls[0], 6);
	h_free(&h);
}

static int popcount_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++) {
		n += __builtin_popcount((unsigned)(a[i] ^ b[i]));
	}
	return n;
}

TEST(link_corrupt)
{
	enum { N = 500 };
	sim_link_params p;
	sim_link_params_default(&p);
	p.corrupt = 1.0;
	p.corrupt_bits = 3;
	harness h;
	REQUIRE(h_init(&h, 9, &p) == 0);
	for (int i = 0; i < N; i++) {
		h_send(&h, 0, i, 100);
	}
	h_run(&h);
	REQUIRE(h.n == N);
	for (size_t i = 0; i < h.n; i++) {
		uint8_t want[100];
		payload(want, 100, h.recs[i].idx);
		CHECK_INT(popcount_diff(h.recs[i].data, want, 100), 3);
	}
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.corrupted, N);
	h_free(&h);

	/* More bits than the packet has: every bit flips once. One-byte
	 * packets with one bit: exactly one. */
	p.corrupt_bits = 20;
	REQUIRE(h_init(&h, 9, &p) == 0);
	h_send(&h, 0, 0, 2);
	h_run(&h);
	REQUIRE(h.n == 1);
	uint8_t want[2];
	payload(want, 2, 0);
	CHECK_INT(popcount_diff(h.recs[0].data, want, 2), 16);
	h_free(&h);

	p.corrupt_bits = 1;
	p.corrupt = 0.5;
	REQUIRE(h_init(&h, 9, &p) == 0);
	for (int i = 0; i < N; i++) {
		h_send(&h, 0, i, 1);
	}
	h_run(&h);
	REQUIRE(h.n == N);
	int flipped = 0;
	for (size_t i = 0; i < h.n; i++) {
		payload(want, 1, h.recs[i].idx);
		int d = popcount_diff(h.recs[i].data, want, 1);
		CHECK(d == 0 || d == 1);
		flipped += d;
	}
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.corrupted, flipped);
	CHECK(flipped > N / 4 && flipped < 3 * N / 4);
	h_free(&h);
}

TEST(link_reorder)
{
	/* One packet per ms, latency 10 ms, 20% get 5 ms more: each
	 * reordered packet is overtaken by the next (not reordered) one. */
	enum { N = 1000 };
	static sendspec sp[N];
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = 10 * SIM_MS;
	p.reorder = 0.2;
	p.reorder_delay_ns = 5 * SIM_MS;
	harness h;
	REQUIRE(h_init(&h, 11, &p) == 0);
	for (int i = 0; i < N; i++) {
		sp[i] = (sendspec){.h = &h, .side = 0, .idx = i, .len = 4};
		send_at(&h, &sp[i], (sim_time)i * SIM_MS);
	}
	h_run(&h);
	REQUIRE(h.n == N);
	int *pos = calloc(N, sizeof(*pos));
	uint8_t *late = calloc(N, 1);
	REQUIRE(pos != NULL && late != NULL);
	int nlate = 0;
	for (size_t i = 0; i < h.n; i++) {
		const rec *r = &h.recs[i];
		pos[r->idx] = (int)i;
		sim_time d = r->at - r->sent;
		CHECK(d == 10 * SIM_MS || d == 15 * SIM_MS);
		late[r->idx] = d == 15 * SIM_MS;
		nlate += late[r->idx];
	}
	sim_link_stats st;
	sim_link_get_stats(h.l, 0, &st);
	CHECK_U64(st.reordered, nlate);
	CHECK(nlate > N / 10 && nlate < 3 * N / 10);
	int overtaken = 0;
	for (int i = 0; i + 1 < N; i++) {
		if (late[i] && !late[i + 1]) {
			CHECK(pos[i + 1] < pos[i]);
			overtaken++;
		}
	}
	CHECK(overtaken > 0);
	free(pos);
	free(late);
	h_free(&h);
}

/* A busy two-way run with every random fault on. */
static void rich_run(harness *h, uint64_t seed)
{
	enum { N = 3000 };
	static sendspec sp[N];
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = 2 * SIM_MS;
	p.jitter_ns = SIM_MS;
	p.loss = 0.1;
	p.dup = 0.1;
	p.reorder = 0.1;
	p.reorder_delay_ns = 3 * SIM_MS;
	p.corrupt = 0.1;
	p.corrupt_bits = 2;
	p.bandwidth_bps = 10000000;
	p.queue_bytes = 20000;
	if (h_init(h, seed, &p) != 0) {
		abort();
	}
	for (int i = 0; i < N; i++) {
		sp[i] = (sendspec){
			.h = h, .side = i % 3 == 0, .idx = i,
			.len = 50 + (size_t)(i * 37) % 1000};
		send_at(h, &sp[i], (sim_time)(i / 2) * 200 * SIM_US);
	}
	h_run(h);
}

static int same_deliveries(const harness *x, const harness *y)
{
	if (x->n != y->n) {
		return 0;
	}
	for (size_t i = 0; i < x->n; i++) {
		const rec *a = &x->recs[i], *b = &y->recs[i];
		if (a->id != b->id || a->at != b->at || a->hash != b->hash ||
		    a->len != b->len || a->dup_of != b->dup_of) {
			return 0;
		}
	}
	return 1;
}

TEST(link_determinism)
{
	harness x, y, z;
	rich_run(&x, 1234);
	rich_run(&y, 1234);
	rich_run(&z, 1235);
	CHECK(x.n > 1000);
	CHECK(same_deliveries(&x, &y));
	CHECK(!same_deliveries(&x, &z));
	for (int dir = 0; dir < 2; dir++) {
		sim_link_stats a, b;
		sim_link_get_stats(x.l, dir, &a);
		sim_link_get_stats(y.l, dir, &b);
		CHECK(memcmp(&a, &b, sizeof(a)) == 0);
		/* Every fault fired. */
		CHECK(a.lost > 0 && a.duplicated > 0 && a.corrupted > 0 &&
		      a.reordered > 0);
	}
	check_invariant(&x);
	check_invariant(&z);
	h_free(&x);
	h_free(&y);
	h_free(&z);
}

/* Loss on both directions, traffic interleaved; |tweak| adds faults. */
static void loss_run(harness *h, int tweak, uint8_t *got0, uint8_t *got1,
		     int n)
{
	sim_link_params p;
	sim_link_params_default(&p);
	p.loss = 0.2;
	if (h_init(h, 77, &p) != 0) {
		abort();
	}
	sim_link_params q = p;
	if (tweak == 1) { /* dup on b->a */
		q.dup = 0.3;
		q.jitter_ns = SIM_MS;
		sim_link_set_params(h->l, 1, &q);
	} else if (tweak == 2) { /* corruption on a->b */
		q.corrupt = 0.5;
		q.corrupt_bits = 4;
		sim_link_set_params(h->l, 0, &q);
	} else if (tweak == 3) { /* jitter, reorder, dup on a->b */
		q.jitter_ns = 5 * SIM_MS;
		q.reorder = 0.3;
		q.reorder_delay_ns = SIM_MS;
		q.dup = 0.2;
		sim_link_set_params(h->l, 0, &q);
	}
	for (int i = 0; i < n; i++) {
		h_send(h, 0, i, 32);
		h_send(h, 1, i, 32);
	}
	h_run(h);
	delivered_map(h, 0, got0, n);
	delivered_map(h, 1, got1, n);
}

TEST(link_stream_independence)
{
	enum { N = 5000 };
	static uint8_t base0[N], base1[N], got0[N], got1[N];
	harness h;
	loss_run(&h, 0, base0, base1, N);
	h_free(&h);
	int lost = 0;
	for (int i = 0; i < N; i++) {
		lost += !base0[i];
	}
	CHECK(lost > N / 10);

	static const char *const what[] = {
		NULL, "dup on b->a", "corruption on a->b",
		"jitter+reorder+dup on a->b"};
	for (int t = 1; t <= 3; t++) {
		loss_run(&h, t, got0, got1, N);
		sim_link_stats st;
		sim_link_get_stats(h.l, t == 1 ? 1 : 0, &st);
		/* The tweak did something... */
		CHECK(st.duplicated + st.corrupted + st.reordered > 0);
		/* ...without moving either direction's loss draws. */
		if (memcmp(got0, base0, N) != 0) {
			unit_fail(__FILE__, __LINE__,
				  "%s changed the a->b loss pattern", what[t]);
		}
		if (memcmp(got1, base1, N) != 0) {
			unit_fail(__FILE__, __LINE__,
				  "%s changed the b->a loss pattern", what[t]);
		}
		h_free(&h);
	}
}

TEST(link_params_check)
{
	sim_link_params p;
	sim_link_params_default(&p);
	CHECK(sim_link_params_check(&p) == NULL);

	p.loss = 1.5;
	CHECK_STR(sim_link_params_check(&p), "loss must be in [0, 1]");
	p.loss = -0.1;
	CHECK_STR(sim_link_params_check(&p), "loss must be in [0, 1]");
	p.loss = NAN;
	CHECK_STR(sim_link_params_check(&p), "loss must be in [0, 1]");
	p.loss = 1.0;
	CHECK(sim_link_params_check(&p) == NULL);

	sim_link_params_default(&p);
	p.latency_ns = -1;
	CHECK_STR(sim_link_params_check(&p), "latency_ns must be >= 0");
	sim_link_params_default(&p);
	p.jitter_ns = -1;
	CHECK_STR(sim_link_params_check(&p), "jitter_ns must be >= 0");
	sim_link_params_default(&p);
	p.reorder_delay_ns = -5;
	CHECK_STR(sim_link_params_check(&p), "reorder_delay_ns must be >= 0");
	sim_link_params_default(&p);
	p.dup = NAN;
	CHECK_STR(sim_link_params_check(&p), "dup must be in [0, 1]");
	sim_link_params_default(&p);
	p.reorder = 2;
	CHECK_STR(sim_link_params_check(&p), "reorder must be in [0, 1]");
	sim_link_params_default(&p);
	p.corrupt = -1;
	CHECK_STR(sim_link_params_check(&p), "corrupt must be in [0, 1]");
	sim_link_params_default(&p);
	p.corrupt = 0.5;
	p.corrupt_bits = 0;
	CHECK_STR(sim_link_params_check(&p),
		  "corrupt_bits must be >= 1 when corrupt > 0");
	sim_link_params_default(&p);
	p.ge_p_gb = 1.01;
	CHECK_STR(sim_link_params_check(&p), "ge_p_gb must be in [0, 1]");
	sim_link_params_default(&p);
	p.ge_p_bg = NAN;
	CHECK_STR(sim_link_params_check(&p), "ge_p_bg must be in [0, 1]");
	sim_link_params_default(&p);
	p.ge_loss_good = -0.5;
	CHECK_STR(sim_link_params_check(&p), "ge_loss_good must be in [0, 1]");
	sim_link_params_default(&p);
	p.ge_loss_bad = INFINITY;
	CHECK_STR(sim_link_params_check(&p), "ge_loss_bad must be in [0, 1]");

	/* sim_link_new and sim_link_set_params refuse bad params. */
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_link_params_default(&p);
	p.loss = 1.5;
	CHECK(sim_link_new(&w, "l", &p) == NULL);
	sim_link *l = sim_link_new(&w, "l", NULL);
	REQUIRE(l != NULL);
	CHECK_STR(sim_link_name(l), "l");
	CHECK_INT(sim_link_set_params(l, 0, &p), SIM_EINVAL);
	p.loss = 0.5;
	CHECK_INT(sim_link_set_params(l, 0, &p), 0);
	CHECK_INT(sim_link_set_params(l, 2, &p), SIM_EINVAL);
	sim_link_del(l);
	sim_link_del(NULL);
	sim_world_free(&w);
}

TEST(link_per_direction_params)
{
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = SIM_MS;
	harness h;
	REQUIRE(h_init(&h, 1, NULL) == 0);
	CHECK_INT(sim_link_set_params(h.l, 1, &p), 0);
	h_send(&h, 0, 0, 4);
	h_send(&h, 1, 1, 4);
	h_run(&h);
	REQUIRE(h.n == 2);
	CHECK_INT(h.recs[0].idx, 0);
	CHECK_INT(h.recs[0].at, 0);
	CHECK_INT(h.recs[1].idx, 1);
	CHECK_INT(h.recs[1].at, SIM_MS);
	h_free(&h);
}

TEST(link_submit_errors)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_link *l = sim_link_new(&w, "l", NULL);
	REQUIRE(l != NULL);
	int a = sim_sched_node(w.sched, "a");
	CHECK_INT(sim_link_submit(l, 0, NULL), SIM_EINVAL);
	/* Only side a attached: nowhere to deliver. The packet is freed
	 * (valgrind would see a leak otherwise). */
	sim_link_attach(l, 0, a, NULL, NULL);
	CHECK_INT(sim_link_submit(l, 0, sim_packet_new("x", 1)), SIM_ESTATE);
	int b = sim_sched_node(w.sched, "b");
	sim_link_attach(l, 1, b, NULL, NULL);
	CHECK_INT(sim_link_submit(l, 2, sim_packet_new("x", 1)), SIM_EINVAL);
	/* A NULL deliver callback is a sink. Ids come from the world. */
	int64_t id = sim_link_submit(l, 0, sim_packet_new("x", 1));
	CHECK_INT(id, 1);
	CHECK_INT(w.next_packet_id, 2);
	sim_sched_run(w.sched, NULL);
	sim_link_stats st;
	sim_link_get_stats(l, 0, &st);
	CHECK_U64(st.delivered, 1);
	CHECK_U64(st.bytes_delivered, 1);
	sim_link_del(l);
	sim_world_free(&w);
}

TEST(link_del_inflight)
{
	/* Packets in flight (some behind the bottleneck, some duplicated,
	 * corrupted) when the link goes: sim_link_del frees them and cancels
	 * their events. Run under valgrind --leak-check=full. */
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = SIM_S;
	p.jitter_ns = SIM_MS;
	p.dup = 0.5;
	p.corrupt = 0.5;
	p.bandwidth_bps = 1000000;
	harness h;
	REQUIRE(h_init(&h, 5, &p) == 0);
	for (int i = 0; i < 50; i++) {
		CHECK(h_send(&h, i % 2, i, 200) > 0);
	}
	sim_run_limits lim = {.until = SIM_S / 2, .max_events = 0};
	CHECK_INT(sim_sched_run(h.w.sched, &lim), SIM_STOP_TIME_LIMIT);
	CHECK_INT(h.n, 0);
	CHECK(sim_sched_pending(h.w.sched) >= 50);
	sim_link_del(h.l);
	h.l = NULL;
	CHECK_U64(sim_sched_pending(h.w.sched), 0);
	CHECK_INT(sim_sched_run(h.w.sched, NULL), SIM_STOP_IDLE);
	CHECK_INT(h.n, 0);
	h_free(&h);
}

/* A receiver that deletes the link from inside a delivery. */
typedef struct killer {
	sim_link *l;
	int got;
} killer;

static void kill_on_deliver(void *ud, sim_packet *pkt)
{
	killer *k = ud;
	k->got++;
	sim_packet_del(pkt);
	sim_link_del(k->l);
	k->l = NULL;
}

TEST(link_del_from_callback)
{
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_link_params p;
	sim_link_params_default(&p);
	p.latency_ns = SIM_MS;
	killer k = {0};
	k.l = sim_link_new(&w, "l", &p);
	REQUIRE(k.l != NULL);
	sim_link_attach(k.l, 0, sim_sched_node(w.sched, "a"), NULL, NULL);
	sim_link_attach(k.l, 1, sim_sched_node(w.sched, "b"), kill_on_deliver,
			&k);
	for (int i = 0; i < 5; i++) {
		sim_link_submit(k.l, 0, sim_packet_new("abc", 3));
	}
	sim_sched_run(w.sched, NULL);
	CHECK_INT(k.got, 1);
	CHECK(k.l == NULL);
	sim_world_free(&w);
}

TEST(link_sched_limit)
{
	/* When the scheduler refuses a delivery event (its pending cap), the
	 * packet is dropped and freed and submit returns the error; a refused
	 * duplicate fails the world. */
	sim_world w;
	REQUIRE(sim_world_init(&w, 1, NULL) == 0);
	sim_sched_set_max_pending(w.sched, 3);
	sim_link *l = sim_link_new(&w, "l", NULL);
	REQUIRE(l != NULL);
	sim_link_attach(l, 0, sim_sched_node(w.sched, "a"), NULL, NULL);
	sim_link_attach(l, 1, sim_sched_node(w.sched, "b"), NULL, NULL);
	for (int i = 0; i < 3; i++) {
		CHECK(sim_link_submit(l, 0, sim_packet_new("x", 1)) > 0);
	}
	CHECK_INT(sim_link_submit(l, 0, sim_packet_new("x", 1)), SIM_ELIMIT);
	sim_link_stats st;
	sim_link_get_stats(l, 0, &st);
	CHECK_U64(st.submitted, 4);
	CHECK_U64(st.lost, 1);
	CHECK(!w.fatal);

	sim_link_params p;
	sim_link_params_default(&p);
	p.dup = 1;
	REQUIRE(sim_link_set_params(l, 1, &p) == 0);
	sim_sched_set_max_pending(w.sched, 4);
	CHECK(sim_link_submit(l, 1, sim_packet_new("y", 1)) > 0);
	CHECK(w.fatal);
	sim_sched_run(w.sched, NULL);
	sim_link_get_stats(l, 1, &st);
	CHECK_U64(st.duplicated, 1);
	CHECK_U64(st.delivered, 1);
	CHECK_U64(st.lost, 1);
	sim_link_del(l);
	sim_world_free(&w);
}

/* Filter for the trace test: by the first letter of pkt->info. */
static enum sim_link_verdict row_filter(void *ud, const sim_packet *pkt,
					int dir, sim_time *delay_ns,
					char *reason)
{
	(void)ud;
	(void)dir;
	switch (pkt->info[0]) {
	case 'D':
		snprintf(reason, 64, "dropme");
		return SIM_LINK_DROP;
	case 'd':
		return SIM_LINK_DROP;
	case 'S':
		*delay_ns = 5;
		snprintf(reason, 64, "slow");
		return SIM_LINK_DELAY;
	default:
		return SIM_LINK_PASS;
	}
}

/* Runs the packet-row scenario of link_trace_rows with |t|. */
static void row_scenario(sim_trace *t)
{
	sim_world w;
	if (sim_world_init(&w, 3, t) != 0) {
		abort();
	}
	sim_link_params p;
	sim_link_params_default(&p);
	p.mtu = 100;
	p.bandwidth_bps = 8000; /* 1 byte per ms */
	p.queue_bytes = 20;
	p.latency_ns = 1000;
	sim_link *l = sim_link_new(&w, "wan", &p);
	if (l == NULL) {
		abort();
	}
	sim_link_attach(l, 0, sim_sched_node(w.sched, "cli"), NULL, NULL);
	sim_link_attach(l, 1, sim_sched_node(w.sched, "srv"), NULL, NULL);
	sim_link_set_filter(l, row_filter, NULL);
	sim_link_partition(l, 1, 0, 10);
	sim_link_drop_nth(l, 0, 2);

	sim_link_params q;
	sim_link_params_default(&q);
	q.reorder = 1;
	q.reorder_delay_ns = 7;
	q.corrupt = 1;
	q.corrupt_bits = 3;
	q.dup = 1;
	sim_link_params lossy;
	sim_link_params_default(&lossy);
	lossy.loss = 1;
	sim_link_params ge;
	sim_link_params_default(&ge);
	ge.ge_enabled = 1;
	ge.ge_p_gb = 1;

	static const struct {
		int side;
		const char *info;
		size_t len;
	} sends[] = {
		{1, "part", 4},  {0, "ok", 4},    {0, "nth", 4},
		{0, "D", 4},     {0, "d", 4},     {0, "S", 4},
		{0, "big", 101}, {0, "q1", 10},   {0, "q2", 10},
		{1, "all", 8},   {1, "lost", 8},  {1, "burst", 8},
	};
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
		if (i == 9) {
			/* Past the partition (b->a, [0, 10)). */
			sim_run_limits lim = {.until = 20, .max_events = 0};
			sim_sched_run(w.sched, &lim);
			sim_link_set_params(l, 1, &q);
		} else if (i == 10) {
			sim_link_set_params(l, 1, &lossy);
		} else if (i == 11) {
			sim_link_set_params(l, 1, &ge);
		}
		uint8_t buf[128];
		payload(buf, sends[i].len, (int)i);
		sim_packet *pkt = sim_packet_new(buf, sends[i].len);
		if (pkt == NULL) {
			abort();
		}
		snprintf(pkt->info, sizeof(pkt->info), "%s", sends[i].info);
		snprintf(pkt->ptype, sizeof(pkt->ptype), "1rtt");
		pkt->proto = "quic";
		sim_link_submit(l, sends[i].side, pkt);
	}
	sim_sched_run(w.sched, NULL);
	sim_link_del(l);
	sim_world_free(&w);
}

static void end_run(sim_trace *t, char *digest, int64_t *run_id)
{
	sim_run_result res = {.outcome = "pass", .end_ns = 0, .events = 0};
	if (sim_trace_end(t, &res, digest, run_id) != 0) {
		unit_fail(__FILE__, __LINE__, "sim_trace_end: %s",
			  sim_trace_errmsg(t));
	}
}

TEST(link_trace_rows)
{
	/* One packet row per submitted packet and per copy, with the fate
	 * and reason of each fault, the planned delivery time and the bytes
	 * as sent. */
	char dir[] = "/tmp/tlsim_link_XXXXXX";
	REQUIRE(mkdtemp(dir) != NULL);
	char path[64];
	snprintf(path, sizeof(path), "%s/t.db", dir);
	sim_trace *t = NULL;
	char err[256];
	REQUIRE(sim_trace_open(path, &t, err, sizeof(err)) == 0);
	sim_run_info info = {.scenario = "test_link", .seed = 3};
	REQUIRE(sim_trace_begin(t, &info) == 0);
	row_scenario(t);
	char digest[65], digest2[65];
	int64_t run_id = 0;
	end_run(t, digest, &run_id);
	sim_trace_close(t);

	/* The same run again, digest only: same digest. */
	REQUIRE(sim_trace_open(NULL, &t, err, sizeof(err)) == 0);
	REQUIRE(sim_trace_begin(t, &info) == 0);
	row_scenario(t);
	int64_t run_id2;
	end_run(t, digest2, &run_id2);
	sim_trace_close(t);
	CHECK_STR(digest, digest2);

	static const struct {
		int64_t id;
		const char *src, *fate, *reason;
		int64_t deliver_ns, dup_of;
		int send; /* index in sends[], for the bytes */
	} want[] = {
		{1, "srv", "lost", "partition", -1, -1, 0},
		{2, "cli", "delivered", NULL, 4 * SIM_MS + 1000, -1, 1},
		{3, "cli", "lost", "drop_nth", -1, -1, 2},
		{4, "cli", "lost", "filter:dropme", -1, -1, 3},
		{5, "cli", "lost", "filter", -1, -1, 4},
		{6, "cli", "delivered", "delay:slow", 8 * SIM_MS + 1005, -1, 5},
		{7, "cli", "lost", "mtu", -1, -1, 6},
		/* waits behind "S" (4 bytes queued): 14 <= 20 */
		{8, "cli", "delivered", NULL, 18 * SIM_MS + 1000, -1, 7},
		/* 4 + 10 + 10 > 20 */
		{9, "cli", "lost", "queue_full", -1, -1, 8},
		{10, "srv", "corrupted", "reorder,corrupt:3 bits", 27, -1, 9},
		{11, "srv", "duplicated", "dup,corrupt:3 bits", 27 + SIM_US,
		 10, 9},
		{12, "srv", "lost", "loss", -1, -1, 10},
		{13, "srv", "lost", "burst_loss", -1, -1, 11},
	};
	static const size_t lens[] = {4, 4, 4, 4, 4, 4, 101, 10, 10, 8, 8, 8};
	enum { NWANT = sizeof(want) / sizeof(want[0]) };

	sqlite3 *db;
	REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
		SQLITE_OK);
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(
		db,
		"SELECT id, parent, link, src, dst, proto, send_ns, deliver_ns,"
		" len, fate, reason, dup_of, ptype, frames, data"
		" FROM packet WHERE run = ? ORDER BY seq",
		-1, &st, NULL);
	REQUIRE(rc == SQLITE_OK);
	sqlite3_bind_int64(st, 1, run_id);
	size_t n = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n >= NWANT) {
			n++;
			continue;
		}
		const char *reason = (const char *)sqlite3_column_text(st, 10);
		CHECK_INT(sqlite3_column_int64(st, 0), want[n].id);
		CHECK_INT(sqlite3_column_type(st, 1), SQLITE_NULL);
		CHECK_STR((const char *)sqlite3_column_text(st, 2), "wan");
		CHECK_STR((const char *)sqlite3_column_text(st, 3),
			  want[n].src);
		CHECK_STR((const char *)sqlite3_column_text(st, 4),
			  strcmp(want[n].src, "cli") == 0 ? "srv" : "cli");
		CHECK_STR((const char *)sqlite3_column_text(st, 5), "quic");
		CHECK_INT(sqlite3_column_int64(st, 6), n >= 9 ? 20 : 0);
		if (want[n].deliver_ns < 0) {
			CHECK_INT(sqlite3_column_type(st, 7), SQLITE_NULL);
		} else {
			CHECK_INT(sqlite3_column_int64(st, 7),
				  want[n].deliver_ns);
		}
		CHECK_INT(sqlite3_column_int64(st, 8), lens[want[n].send]);
		CHECK_STR((const char *)sqlite3_column_text(st, 9),
			  want[n].fate);
		if (want[n].reason == NULL) {
			CHECK(reason == NULL);
		} else {
			CHECK_STR(reason, want[n].reason);
		}
		if (want[n].dup_of < 0) {
			CHECK_INT(sqlite3_column_type(st, 11), SQLITE_NULL);
		} else {
			CHECK_INT(sqlite3_column_int64(st, 11), want[n].dup_of);
		}
		CHECK_STR((const char *)sqlite3_column_text(st, 12), "1rtt");
		CHECK(sqlite3_column_text(st, 13) != NULL);
		/* Bytes as sent, before corruption. */
		uint8_t buf[128];
		size_t len = lens[want[n].send];
		payload(buf, len, want[n].send);
		CHECK_INT(sqlite3_column_bytes(st, 14), len);
		const void *blob = sqlite3_column_blob(st, 14);
		CHECK(blob != NULL && memcmp(blob, buf, len) == 0);
		n++;
	}
	CHECK_INT(n, NWANT);
	sqlite3_finalize(st);
	sqlite3_close(db);
	unlink(path);
	rmdir(dir);
}

/* The reliable stream: two proto_stream objects driven by hand over a tiny
 * in-test link (a queue of segments with a fixed delay; time stepped by
 * hand), with deterministic drop, duplicate, reorder and corrupt patterns,
 * plus direct segment surgery for the validation and attack tests. */
#include <stdlib.h>

#include "proto/stream.h"
#include "sim/err.h"
#include "sim/rng.h"
#include "tests/unit.h"

#define QMAX 8192
#define RX_MAX (4u << 20)
#define STEPS_MAX 5000000
#define ISN_A 1000u
#define ISN_B 0xfffff000u /* wraps during the first megabyte */

typedef struct net net;

/* A fault decides the fate of the |idx|th segment (from 0) sent by side
 * |from|: it returns how many copies to deliver (0, 1 or 2) and may
 * corrupt |p| or add to |*extra_ns|. */
typedef int (*fault_fn)(net *n, int from, uint64_t idx, sim_packet *p,
			sim_time *extra_ns);

typedef struct side {
	net *n;
	proto_stream *s;
	uint8_t *rx;
	size_t rx_len, rx_at_fin;
	int connected, fins, resets, errors, acked_all;
	sim_time fin_ns, error_ns;
	const char *why;
	const uint8_t *tx; /* application data still to send */
	size_t tx_len, tx_off;
	int close_after; /* close_write once tx is all queued */
	long long forged_seq;
} side;

typedef struct item {
	sim_time at;
	uint64_t seq;
	int to;
	sim_packet *p;
} item;

struct net {
	side sd[2];
	item q[QMAX];
	int qn;
	uint64_t qseq;
	sim_time now, delay_ns;
	uint64_t sent[2];
	fault_fn fault;
	int dir, arg, arg2; /* fault parameters; dir -1: both directions */
	const char *match;  /* fault parameter: a ptype */
};

static void on_connected(void *ud, sim_time now)
{
	((side *)ud)->connected++;
}

static void on_recv(void *ud, sim_time now, const uint8_t *data, size_t len)
{
	side *d = ud;
	if (d->rx_len + len > RX_MAX) {
		unit_fail(__FILE__, __LINE__, "received too much");
		return;
	}
	memcpy(d->rx + d->rx_len, data, len);
	d->rx_len += len;
}

static void on_fin(void *ud, sim_time now)
{
	side *d = ud;
	d->fins++;
	d->fin_ns = now;
	d->rx_at_fin = d->rx_len;
}

static void on_reset(void *ud, sim_time now)
{
	((side *)ud)->resets++;
}

static void on_error(void *ud, sim_time now, const char *why)
{
	side *d = ud;
	d->errors++;
	d->error_ns = now;
	d->why = why;
}

static void on_acked_all(void *ud, sim_time now)
{
	((side *)ud)->acked_all++;
}

static const proto_stream_callbacks callbacks = {
	.connected = on_connected,
	.recv = on_recv,
	.fin = on_fin,
	.reset = on_reset,
	.error = on_error,
	.acked_all = on_acked_all,
};

/* Side a is the client (10.0.0.1:49152), side b the server. */
static void configs(proto_stream_config *a, proto_stream_config *b)
{
	proto_stream_config_default(a);
	a->isn = ISN_A;
	*b = *a;
	b->local_port = a->remote_port;
	b->remote_port = a->local_port;
	b->local_addr = a->remote_addr;
	b->remote_addr = a->local_addr;
	b->isn = ISN_B;
}

static net *net_new_cfg(const proto_stream_config *ca,
			const proto_stream_config *cb)
{
	net *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		abort();
	}
	n->delay_ns = 10 * SIM_MS;
	n->dir = -1;
	for (int i = 0; i < 2; i++) {
		side *d = &n->sd[i];
		d->n = n;
		d->rx = malloc(RX_MAX);
		d->s = proto_stream_new(i == 0 ? ca : cb, &callbacks, d);
		if (d->rx == NULL || d->s == NULL) {
			abort();
		}
	}
	return n;
}

static net *net_new(void)
{
	proto_stream_config a, b;
	configs(&a, &b);
	return net_new_cfg(&a, &b);
}

static void net_del(net *n)
{
	for (int i = 0; i < n->qn; i++) {
		sim_packet_del(n->q[i].p);
	}
	for (int i = 0; i < 2; i++) {
		proto_stream_del(n->sd[i].s);
		free(n->sd[i].rx);
	}
	free(n);
}

static void enqueue(net *n, int to, sim_packet *p, sim_time at)
{
	if (n->qn == QMAX) {
		unit_fail(__FILE__, __LINE__, "link queue full");
		sim_packet_del(p);
		return;
	}
	n->q[n->qn++] = (item){at, n->qseq++, to, p};
}

/* Feeds application data, then moves every output segment onto the link
 * through the fault. */
static void pump(net *n)
{
	for (int i = 0; i < 2; i++) {
		side *d = &n->sd[i];
		size_t left = d->tx_len - d->tx_off;
		if (left > 0) {
			int64_t r = proto_stream_send(d->s, n->now,
						      d->tx + d->tx_off, left);
			d->tx_off += r > 0 ? (size_t)r : 0;
		}
		if (d->close_after && d->tx_off == d->tx_len) {
			d->close_after = 0;
			CHECK_INT(proto_stream_close_write(d->s, n->now), 0);
		}
		sim_packet *p;
		while ((p = proto_stream_output(d->s, n->now)) != NULL) {
			if (strstr(p->info, " forged") != NULL) {
				sscanf(p->info, "seq=%lld", &d->forged_seq);
			}
			sim_time extra = 0;
			int copies = 1;
			if (n->fault != NULL) {
				copies = n->fault(n, i, n->sent[i], p, &extra);
			}
			n->sent[i]++;
			if (copies == 2) {
				enqueue(n, !i, sim_packet_clone(p),
					n->now + n->delay_ns + 1);
			}
			if (copies == 0) {
				sim_packet_del(p);
			} else {
				enqueue(n, !i, p, n->now + n->delay_ns + extra);
			}
		}
	}
}

/* Runs until nothing is left to happen or virtual time |until|: segments
 * arrive in (time, submission) order, and before timers due at the same
 * time. */
static void run(net *n, sim_time until)
{
	for (int steps = 0;; steps++) {
		if (steps == STEPS_MAX) {
			unit_fail(__FILE__, __LINE__, "run: step limit");
			return;
		}
		pump(n);
		int best = -1;
		for (int i = 0; i < n->qn; i++) {
			if (best < 0 || n->q[i].at < n->q[best].at ||
			    (n->q[i].at == n->q[best].at &&
			     n->q[i].seq < n->q[best].seq)) {
				best = i;
			}
		}
		sim_time ta = proto_stream_expiry(n->sd[0].s);
		sim_time tb = proto_stream_expiry(n->sd[1].s);
		sim_time tt = ta < tb ? ta : tb;
		sim_time t = tt;
		if (best >= 0 && n->q[best].at <= tt) {
			t = n->q[best].at;
		}
		if (t == SIM_TIME_MAX || t > until) {
			break;
		}
		n->now = t;
		if (best >= 0 && n->q[best].at == t) {
			item it = n->q[best];
			n->q[best] = n->q[--n->qn];
			proto_stream_input(n->sd[it.to].s, t, it.p->data,
					   it.p->len);
			sim_packet_del(it.p);
		} else {
			proto_stream_timeout(n->sd[ta <= tb ? 0 : 1].s, t);
		}
	}
	if (until != SIM_TIME_MAX) {
		n->now = until;
	}
}

static void connect_pair(net *n)
{
	CHECK_INT(proto_stream_listen(n->sd[1].s), 0);
	CHECK_INT(proto_stream_connect(n->sd[0].s, n->now), 0);
}

/* Test data: random bytes from a fixed seed, so a misplaced byte shows. */
static uint8_t *pattern(size_t len, uint64_t seed)
{
	uint8_t *b = malloc(len ? len : 1);
	sim_rng r;
	sim_rng_init(&r, seed, "stream-test");
	sim_rng_fill(&r, b, len);
	return b;
}

static proto_stream_stats stats(const side *d)
{
	proto_stream_stats st;
	proto_stream_get_stats(d->s, &st);
	return st;
}

static int applies(const net *n, int from)
{
	return n->dir < 0 || n->dir == from;
}

static int is_forged(const sim_packet *p)
{
	return strstr(p->info, " forged") != NULL;
}

/* Drop every arg-th segment; forged ones always pass (the attacker is on
 * the path after the lossy hop). */
static int f_every(net *n, int from, uint64_t idx, sim_packet *p,
		   sim_time *extra)
{
	return !(applies(n, from) && !is_forged(p) && (idx + 1) % n->arg == 0);
}

/* Drop segments [arg, arg + arg2). */
static int f_burst(net *n, int from, uint64_t idx, sim_packet *p,
		   sim_time *extra)
{
	return !(applies(n, from) && idx >= (uint64_t)n->arg &&
		 idx < (uint64_t)(n->arg + n->arg2));
}

/* Drop the first arg segments whose ptype is |match|; with arg2, drop
 * instead those of that type whose index modulo arg is below arg2. */
static int f_type(net *n, int from, uint64_t idx, sim_packet *p,
		  sim_time *extra)
{
	if (!applies(n, from) || strcmp(p->ptype, n->match) != 0) {
		return 1;
	}
	if (n->arg2 == 0) {
		return n->arg-- > 0 ? 0 : 1;
	}
	return (int)(idx % (uint64_t)n->arg) >= n->arg2;
}

/* Drop everything sent in [arg, arg + arg2) ms. */
static int f_outage(net *n, int from, uint64_t idx, sim_packet *p,
		    sim_time *extra)
{
	return !(applies(n, from) && n->now >= n->arg * SIM_MS &&
		 n->now < (n->arg + n->arg2) * SIM_MS);
}

/* Delay every arg-th segment by arg2 ms (reordering) and duplicate every
 * (arg + 1)-th. */
static int f_shuffle(net *n, int from, uint64_t idx, sim_packet *p,
		     sim_time *extra)
{
	if (idx % (uint64_t)n->arg == 0) {
		*extra = n->arg2 * SIM_MS;
	}
	return idx % (uint64_t)(n->arg + 1) == 0 ? 2 : 1;
}

/* Flip one bit of every arg-th segment, at a position that walks. */
static int f_corrupt(net *n, int from, uint64_t idx, sim_packet *p,
		     sim_time *extra)
{
	if ((idx + 1) % (uint64_t)n->arg == 0) {
		size_t bit = (size_t)(idx * 131) % (p->len * 8);
		p->data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	return 1;
}

/* Transfers |la| bytes a->b and |lb| bytes b->a, both sides closing, and
 * checks they arrive byte-exact and both sides end "done". */
static void transfer(net *n, size_t la, size_t lb)
{
	uint8_t *da = pattern(la, 1), *db = pattern(lb, 2);
	n->sd[0].tx = da;
	n->sd[0].tx_len = la;
	n->sd[1].tx = db;
	n->sd[1].tx_len = lb;
	n->sd[0].close_after = n->sd[1].close_after = 1;
	connect_pair(n);
	run(n, SIM_TIME_MAX);
	CHECK_U64(n->sd[1].rx_len, la);
	CHECK_U64(n->sd[0].rx_len, lb);
	CHECK(n->sd[1].rx_len == la && memcmp(n->sd[1].rx, da, la) == 0);
	CHECK(n->sd[0].rx_len == lb && memcmp(n->sd[0].rx, db, lb) == 0);
	for (int i = 0; i < 2; i++) {
		CHECK_STR(proto_stream_state(n->sd[i].s), "done");
		CHECK_INT(n->sd[i].fins, 1);
		CHECK_INT(n->sd[i].connected, 1);
		CHECK_INT(n->sd[i].errors, 0);
		CHECK_U64(stats(&n->sd[i]).bytes_received, i ? la : lb);
		CHECK_U64(stats(&n->sd[i]).bytes_acked, i ? lb : la);
	}
	free(da);
	free(db);
}

/* The Internet checksum as RFC 1071 states it, written independently of
 * proto/stream.c: 32-bit accumulation of 16-bit words. */
static uint16_t ref_checksum(uint32_t src, uint32_t dst, const uint8_t *seg,
			     size_t len)
{
	uint8_t ph[12] = {(uint8_t)(src >> 24), (uint8_t)(src >> 16),
			  (uint8_t)(src >> 8),  (uint8_t)src,
			  (uint8_t)(dst >> 24), (uint8_t)(dst >> 16),
			  (uint8_t)(dst >> 8),  (uint8_t)dst,
			  0, 6, (uint8_t)(len >> 8), (uint8_t)len};
	uint32_t sum = 0;
	for (size_t i = 0; i < 12; i += 2) {
		sum += (uint32_t)(ph[i] << 8 | ph[i + 1]);
	}
	for (size_t i = 0; i < len; i += 2) {
		uint32_t hi = seg[i], lo = i + 1 < len ? seg[i + 1] : 0;
		if (i != 16) { /* the checksum field counts as zero */
			sum += hi << 8 | lo;
		}
	}
	while (sum > 0xffff) {
		sum = (sum >> 16) + (sum & 0xffff);
	}
	return (uint16_t)~sum;
}

/* Recomputes the CRC-32C and checksum of a segment edited by a test, as
 * the sender |cfg| would. */
static void reseal(const proto_stream_config *cfg, uint8_t *b, size_t len)
{
	memset(b + 16, 0, 2);
	memset(b + 24, 0, 4);
	uint32_t crc = proto_stream_crc32c(b, len);
	b[24] = (uint8_t)(crc >> 24);
	b[25] = (uint8_t)(crc >> 16);
	b[26] = (uint8_t)(crc >> 8);
	b[27] = (uint8_t)crc;
	uint16_t ck = ref_checksum(cfg->local_addr, cfg->remote_addr, b, len);
	b[16] = (uint8_t)(ck >> 8);
	b[17] = (uint8_t)ck;
}

/* Runs a pair through the handshake and returns it established. */
static net *established(void)
{
	net *n = net_new();
	connect_pair(n);
	run(n, SIM_TIME_MAX);
	CHECK_STR(proto_stream_state(n->sd[0].s), "established");
	CHECK_STR(proto_stream_state(n->sd[1].s), "established");
	return n;
}

TEST(stream_crc32c)
{
	CHECK_U64(proto_stream_crc32c("123456789", 9), 0xe3069283u);
	CHECK_U64(proto_stream_crc32c("", 0), 0);
	uint8_t zeros[32] = {0};
	CHECK_U64(proto_stream_crc32c(zeros, 32), 0x8a9136aau); /* RFC 3720 */
}

TEST(stream_checksum)
{
	proto_stream_config a, b;
	configs(&a, &b);
	proto_stream *s = proto_stream_new(&a, NULL, NULL);
	REQUIRE(s != NULL);
	CHECK_INT(proto_stream_send(s, 0, "hello", 5), 5);
	CHECK_INT(proto_stream_connect(s, 0), 0);
	sim_packet *p = proto_stream_output(s, 0);
	REQUIRE(p != NULL && p->len == PROTO_STREAM_HDR);
	const uint8_t *h = p->data;
	/* The SYN: ports, ISN, no ACK, data offset 7, flags SYN, window. */
	const uint8_t want[16] = {0xc0, 0x00, 0x01, 0xbb, 0, 0, 0x03, 0xe8,
				  0,    0,    0,    0,    0x70, 0x02, 0xff,
				  0xff};
	CHECK(memcmp(h, want, 16) == 0);
	CHECK(h[20] == 253 && h[21] == 8 && h[22] == 0x74 && h[23] == 0x53);
	uint16_t ck = (uint16_t)(h[16] << 8 | h[17]);
	CHECK_INT(ck, ref_checksum(a.local_addr, a.remote_addr, h, p->len));
	uint8_t copy[PROTO_STREAM_HDR];
	memcpy(copy, h, sizeof(copy));
	reseal(&a, copy, sizeof(copy));
	CHECK(memcmp(copy, h, sizeof(copy)) == 0);
	CHECK_STR(p->proto, "tcp");
	CHECK_STR(p->ptype, "SYN");
	CHECK_STR(p->info, "seq=0 ack=0 len=0");
	sim_packet_del(p);
	CHECK(proto_stream_output(s, 0) == NULL);
	proto_stream_del(s);
	proto_stream_del(NULL);
}

TEST(stream_config_check)
{
	proto_stream_config c, ok;
	proto_stream_config_default(&ok);
	CHECK(proto_stream_config_check(&ok) == NULL);
	CHECK_INT(ok.mss, 1400);
	CHECK_INT(ok.window, 65535);
	CHECK_INT(ok.local_port, 49152);
	CHECK_INT(ok.remote_port, 443);
#define BAD(field, value)                                                  \
	do {                                                               \
		c = ok;                                                    \
		c.field = value;                                           \
		const char *m = proto_stream_config_check(&c);             \
		CHECK(m != NULL && strstr(m, #field) != NULL);             \
		CHECK(proto_stream_new(&c, NULL, NULL) == NULL);           \
	} while (0)
	BAD(mss, 0);
	BAD(mss, 65001);
	BAD(sndbuf, 0);
	BAD(sndbuf, (1u << 30) + 1);
	BAD(window, 0);
	BAD(rto_initial_ns, 0);
	BAD(rto_initial_ns, -5);
	BAD(rto_max_ns, ok.rto_initial_ns - 1);
	BAD(rto_max_ns, 86401 * SIM_S);
	BAD(max_retries, 31);
#undef BAD
	c = ok;
	c.mss = 65000;
	c.window = 1u << 31; /* advertised as 65535 */
	c.max_retries = 0;
	CHECK(proto_stream_config_check(&c) == NULL);
}

/* Moves the next segment of |from| to |to| and checks its type and info. */
static void hop(proto_stream *from, proto_stream *to, sim_time now,
		const char *ptype, const char *info)
{
	sim_packet *p = proto_stream_output(from, now);
	if (p == NULL) {
		unit_fail(__FILE__, __LINE__, "no segment, want %s %s", ptype,
			  info);
		return;
	}
	if (strcmp(p->ptype, ptype) != 0 || strcmp(p->info, info) != 0) {
		unit_fail(__FILE__, __LINE__, "got %s \"%s\", want %s \"%s\"",
			  p->ptype, p->info, ptype, info);
	}
	proto_stream_input(to, now, p->data, p->len);
	sim_packet_del(p);
}

TEST(stream_handshake)
{
	net *n = net_new();
	proto_stream *a = n->sd[0].s, *b = n->sd[1].s;
	CHECK_STR(proto_stream_state(a), "closed");
	CHECK(proto_stream_output(a, 0) == NULL);
	CHECK_INT(proto_stream_forge(a, 0, "fin"), SIM_ESTATE);
	CHECK_INT(proto_stream_listen(b), 0);
	CHECK_STR(proto_stream_state(b), "listen");
	CHECK_INT(proto_stream_listen(b), SIM_ESTATE);
	CHECK_INT(proto_stream_connect(b, 0), SIM_ESTATE);
	CHECK_INT(proto_stream_connect(a, 0), 0);
	CHECK_INT(proto_stream_connect(a, 0), SIM_ESTATE);
	CHECK_STR(proto_stream_state(a), "syn_sent");
	CHECK_INT(proto_stream_expiry(a), SIM_TIME_MAX); /* nothing sent yet */
	hop(a, b, 1, "SYN", "seq=0 ack=0 len=0");
	CHECK_INT(proto_stream_expiry(a), 1 + 200 * SIM_MS);
	CHECK_STR(proto_stream_state(b), "syn_received");
	hop(b, a, 2, "SYN-ACK", "seq=0 ack=1 len=0");
	CHECK_STR(proto_stream_state(a), "established");
	CHECK_INT(n->sd[0].connected, 1);
	CHECK_INT(proto_stream_expiry(a), SIM_TIME_MAX);
	CHECK_INT(n->sd[1].connected, 0);
	hop(a, b, 3, "ACK", "seq=1 ack=1 len=0");
	CHECK_STR(proto_stream_state(b), "established");
	CHECK_INT(n->sd[1].connected, 1);
	CHECK_INT(n->sd[0].acked_all, 0);
	CHECK_INT(proto_stream_send(a, 4, "hi", 2), 2);
	hop(a, b, 4, "DATA", "seq=1 ack=1 len=2");
	CHECK(n->sd[1].rx_len == 2 && memcmp(n->sd[1].rx, "hi", 2) == 0);
	hop(b, a, 5, "ACK", "seq=1 ack=3 len=0");
	CHECK_INT(n->sd[0].acked_all, 1);
	CHECK(proto_stream_output(a, 5) == NULL);
	CHECK(proto_stream_output(b, 5) == NULL);
	CHECK_INT(proto_stream_close_write(a, 6), 0);
	CHECK_STR(proto_stream_state(a), "fin_wait");
	hop(a, b, 6, "FIN", "seq=3 ack=1 len=0");
	CHECK_STR(proto_stream_state(b), "close_wait");
	CHECK_INT(n->sd[1].fins, 1);
	hop(b, a, 7, "ACK", "seq=1 ack=4 len=0");
	CHECK_INT(n->sd[0].acked_all, 2);
	CHECK_INT(proto_stream_send(b, 8, "x", 1), 1);
	CHECK_INT(proto_stream_close_write(b, 8), 0);
	CHECK_STR(proto_stream_state(b), "closing");
	hop(b, a, 8, "DATA-FIN", "seq=1 ack=4 len=1");
	CHECK_STR(proto_stream_state(a), "done");
	CHECK_INT(n->sd[0].fins, 1);
	hop(a, b, 9, "ACK", "seq=4 ack=3 len=0");
	CHECK_STR(proto_stream_state(b), "done");
	CHECK(proto_stream_output(a, 9) == NULL);
	CHECK(proto_stream_output(b, 9) == NULL);
	CHECK_INT(proto_stream_send(a, 9, "y", 1), SIM_ESTATE);
	net_del(n);
}

TEST(stream_handshake_loss)
{
	/* RTO 200 ms, one-way delay 10 ms. A lost SYN-ACK is resent twice at
	 * 210 ms: for the client's repeated SYN, and by the server's RTO. A
	 * lost ACK is recovered when the server repeats its SYN-ACK (at 210
	 * and 610 ms) and the client answers it. */
	static const struct {
		int dir, count;
		const char *type;
		sim_time a_ms, b_ms; /* when sides a and b are connected */
		uint64_t rtx;
	} cases[] = {
		{0, 1, "SYN", 220, 230, 1},     {0, 2, "SYN", 620, 630, 2},
		{1, 1, "SYN-ACK", 220, 230, 3}, {1, 3, "SYN-ACK", 620, 630, 6},
		{0, 1, "ACK", 20, 230, 1},      {0, 2, "ACK", 20, 630, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = unit_failures;
		net *n = net_new();
		n->fault = f_type;
		n->dir = cases[i].dir;
		n->arg = cases[i].count;
		n->match = cases[i].type;
		connect_pair(n);
		for (int k = 0; k < 2; k++) {
			sim_time at = k ? cases[i].b_ms : cases[i].a_ms;
			at *= SIM_MS;
			run(n, at - 1);
			CHECK_INT(n->sd[k].connected, 0);
			run(n, at);
			CHECK_INT(n->sd[k].connected, 1);
		}
		run(n, SIM_TIME_MAX);
		CHECK_STR(proto_stream_state(n->sd[0].s), "established");
		CHECK_STR(proto_stream_state(n->sd[1].s), "established");
		CHECK_U64(stats(&n->sd[0]).retransmits +
				  stats(&n->sd[1]).retransmits,
			  cases[i].rtx);
		if (unit_failures > before) {
			fprintf(stderr, "case %zu: drop %d %s\n", i,
				cases[i].count, cases[i].type);
		}
		net_del(n);
	}
}

TEST(stream_window)
{
	proto_stream_config a, b;
	configs(&a, &b);
	a.mss = b.mss = 1000;
	a.window = 2500; /* a->b: limited by a's own window */
	b.window = 4000; /* b->a: limited by a's advertised window */
	net *n = net_new_cfg(&a, &b);
	connect_pair(n);
	run(n, SIM_TIME_MAX);
	uint8_t *d = pattern(20000, 4);
	for (int i = 0; i < 2; i++) {
		proto_stream *s = n->sd[i].s;
		CHECK_INT(proto_stream_send(s, n->now, d, 20000), 20000);
		const char *want[] = {"seq=1 ack=1 len=1000",
				      "seq=1001 ack=1 len=1000",
				      "seq=2001 ack=1 len=500"};
		for (int k = 0; k < 3; k++) {
			sim_packet *p = proto_stream_output(s, n->now);
			REQUIRE(p != NULL);
			CHECK_STR(p->info, want[k]);
			enqueue(n, !i, p, n->now + n->delay_ns);
		}
		CHECK(proto_stream_output(s, n->now) == NULL);
	}
	run(n, SIM_TIME_MAX);
	for (int i = 0; i < 2; i++) {
		CHECK(n->sd[i].rx_len == 20000 &&
		      memcmp(n->sd[i].rx, d, 20000) == 0);
		CHECK_U64(stats(&n->sd[i]).retransmits, 0);
	}
	free(d);
	net_del(n);
}

TEST(stream_transfer_1mb)
{
	net *n = net_new();
	transfer(n, 1u << 20, 1u << 20);
	for (int i = 0; i < 2; i++) {
		proto_stream_stats st = stats(&n->sd[i]);
		CHECK_U64(st.retransmits, 0);
		CHECK_U64(st.bytes_sent, 1u << 20);
		CHECK_U64(st.dropped_corrupt + st.dropped_malformed, 0);
		CHECK_U64(st.dropped_duplicate + st.dropped_out_of_window, 0);
		CHECK(n->sd[i].acked_all >= 1);
		CHECK_INT(proto_stream_expiry(n->sd[i].s), SIM_TIME_MAX);
	}
	net_del(n);
}

/* Runs transfer() with a fault, checks that something was retransmitted
 * if |want_rtx|, and says which case failed. */
static void lossy_transfer(fault_fn f, int dir, int arg, int arg2,
			   const char *match, size_t la, size_t lb,
			   int want_rtx)
{
	int before = unit_failures;
	net *n = net_new();
	n->fault = f;
	n->dir = dir;
	n->arg = arg;
	n->arg2 = arg2;
	n->match = match;
	transfer(n, la, lb);
	CHECK(!want_rtx || stats(&n->sd[0]).retransmits +
					   stats(&n->sd[1]).retransmits >
				   0);
	if (unit_failures > before) {
		fprintf(stderr, "failed: dir %d arg %d arg2 %d match %s\n", dir,
			arg, arg2, match ? match : "-");
	}
	net_del(n);
}

TEST(stream_loss_sweep)
{
	for (int dir = -1; dir < 2; dir++) {
		for (int every = 2; every <= 24; every++) {
			lossy_transfer(f_every, dir, every, 0, NULL, 60000,
				       60000, 1);
		}
	}
}

TEST(stream_loss_patterns)
{
	static const struct {
		fault_fn f;
		int dir, arg, arg2;
		const char *match;
		size_t la, lb;
		int rtx; /* retransmissions expected */
	} cases[] = {
		{f_every, 0, 13, 0, NULL, 300000, 0, 1},
		{f_burst, 0, 10, 20, NULL, 200000, 200000, 1},
		{f_burst, -1, 30, 8, NULL, 200000, 200000, 1},
		{f_outage, -1, 50, 1500, NULL, 200000, 200000, 1},
		{f_type, 0, 3, 0, "SYN", 50000, 50000, 1},
		{f_type, 1, 2, 0, "SYN-ACK", 50000, 50000, 1},
		{f_type, -1, 3, 0, "DATA-FIN", 50000, 50000, 1},
		{f_type, -1, 3, 0, "FIN", 0, 0, 1},
		{f_type, 0, 2, 0, "FIN", 0, 50000, 1},
		{f_type, 1, 4, 3, "ACK", 300000, 0, 0},
		{f_type, -1, 2, 1, "ACK", 200000, 200000, 0},
		{f_type, 0, 3, 0, "ACK", 0, 1000, 1}, /* a ACKs b's DATA-FIN */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		lossy_transfer(cases[i].f, cases[i].dir, cases[i].arg,
			       cases[i].arg2, cases[i].match, cases[i].la,
			       cases[i].lb, cases[i].rtx);
	}
}

TEST(stream_reorder_duplicate)
{
	net *n = net_new();
	n->fault = f_shuffle;
	n->arg = 3;
	n->arg2 = 15; /* ms, beyond the 10 ms delay: overtaken */
	transfer(n, 300000, 300000);
	for (int i = 0; i < 2; i++) {
		CHECK(stats(&n->sd[i]).ooo_buffered > 0);
		CHECK(stats(&n->sd[i]).dropped_duplicate > 0);
	}
	net_del(n);
}

TEST(stream_corrupting_link)
{
	net *n = net_new();
	n->fault = f_corrupt;
	n->arg = 4;
	transfer(n, 200000, 200000);
	for (int i = 0; i < 2; i++) {
		CHECK(stats(&n->sd[i]).dropped_corrupt > 0);
		CHECK(stats(&n->sd[i]).retransmits > 0);
	}
	net_del(n);
}

TEST(stream_corrupt_every_bit)
{
	net *n = established();
	proto_stream *a = n->sd[0].s, *b = n->sd[1].s;
	uint8_t *d = pattern(100, 3);
	CHECK_INT(proto_stream_send(a, n->now, d, 100), 100);
	sim_packet *p = proto_stream_output(a, n->now);
	REQUIRE(p != NULL && p->len == PROTO_STREAM_HDR + 100);
	CHECK_STR(p->ptype, "DATA");
	uint8_t copy[PROTO_STREAM_HDR + 100];
	uint64_t bad = 0;
	for (size_t bit = 0; bit < p->len * 8; bit++) {
		memcpy(copy, p->data, p->len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		proto_stream_input(b, n->now, copy, p->len);
		bad++;
	}
	/* Swapped 16-bit words keep the Internet checksum; the CRC-32C
	 * catches them. */
	for (size_t i = 28; i + 3 < p->len; i += 2) {
		memcpy(copy, p->data, p->len);
		if (copy[i] == copy[i + 2] && copy[i + 1] == copy[i + 3]) {
			continue;
		}
		copy[i] = p->data[i + 2];
		copy[i + 1] = p->data[i + 3];
		copy[i + 2] = p->data[i];
		copy[i + 3] = p->data[i + 1];
		proto_stream_input(b, n->now, copy, p->len);
		bad++;
	}
	CHECK_U64(stats(&n->sd[1]).dropped_corrupt, bad);
	CHECK_U64(n->sd[1].rx_len, 0);
	CHECK_STR(proto_stream_state(b), "established");
	CHECK(proto_stream_output(b, n->now) == NULL); /* nothing to ACK */
	proto_stream_input(b, n->now, p->data, p->len);
	CHECK(n->sd[1].rx_len == 100 && memcmp(n->sd[1].rx, d, 100) == 0);
	sim_packet_del(p);
	free(d);
	net_del(n);
}

TEST(stream_garbage)
{
	proto_stream_config ca, cb;
	configs(&ca, &cb);
	net *n = established();
	side *b = &n->sd[1];
	proto_stream *lis = proto_stream_new(&cb, &callbacks, b);
	proto_stream *fresh = proto_stream_new(&cb, &callbacks, b);
	REQUIRE(lis != NULL && fresh != NULL);
	CHECK_INT(proto_stream_listen(lis), 0);
	sim_rng r;
	sim_rng_init(&r, 42, "garbage");
	static uint8_t buf[70000];
	uint64_t shorts = 0, rounds = 20000;
	for (uint64_t i = 0; i < rounds; i++) {
		size_t len = (size_t)sim_rng_below(&r, 301);
		sim_rng_fill(&r, buf, len);
		shorts += len < PROTO_STREAM_HDR;
		proto_stream_input(b->s, n->now, buf, len);
		proto_stream_input(lis, n->now, buf, len);
		proto_stream_input(fresh, n->now, buf, len);
	}
	proto_stream_stats st = stats(b);
	CHECK_U64(st.dropped_malformed, shorts);
	CHECK_U64(st.dropped_corrupt, rounds - shorts);
	proto_stream_input(b->s, n->now, buf, sizeof(buf)); /* too long */
	CHECK_U64(stats(b).dropped_malformed, shorts + 1);

	/* Every truncation of a real segment. */
	uint8_t *d = pattern(300, 6);
	CHECK_INT(proto_stream_send(n->sd[0].s, n->now, d, 300), 300);
	sim_packet *p = proto_stream_output(n->sd[0].s, n->now);
	REQUIRE(p != NULL);
	st = stats(b);
	for (size_t len = 0; len < p->len; len++) {
		proto_stream_input(b->s, n->now, p->data, len);
	}
	CHECK_U64(stats(b).dropped_malformed - st.dropped_malformed,
		  PROTO_STREAM_HDR);
	CHECK_U64(stats(b).dropped_corrupt - st.dropped_corrupt,
		  p->len - PROTO_STREAM_HDR);

	/* Well-sealed segments with a bad field. */
	struct {
		size_t at;
		uint8_t val;
	} edits[] = {
		{12, 0x00}, {12, 0x50}, {12, 0x60}, {12, 0x80}, {12, 0xf0},
		{20, 1},    {20, 254},  {21, 4},    {22, 0x12}, {23, 0x00},
		{1, 0x01},  {3, 0xbc},  {13, 0x03}, {13, 0x06}, {13, 0x08},
	};
	st = stats(b);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		memcpy(buf, p->data, p->len);
		buf[edits[i].at] = edits[i].val;
		reseal(&ca, buf, p->len);
		proto_stream_input(b->s, n->now, buf, p->len);
	}
	CHECK_U64(stats(b).dropped_malformed - st.dropped_malformed,
		  sizeof(edits) / sizeof(edits[0]));
	CHECK_U64(b->rx_len, 0);
	CHECK_STR(proto_stream_state(b->s), "established");
	CHECK_STR(proto_stream_state(lis), "listen");
	CHECK_STR(proto_stream_state(fresh), "closed");

	/* The stream still works, byte-exact. */
	proto_stream_input(b->s, n->now, p->data, p->len);
	sim_packet_del(p);
	run(n, SIM_TIME_MAX);
	CHECK(b->rx_len == 300 && memcmp(b->rx, d, 300) == 0);
	CHECK_U64(stats(&n->sd[0]).retransmits, 0);
	free(d);
	proto_stream_del(lis);
	proto_stream_del(fresh);
	net_del(n);
}

TEST(stream_rto_backoff)
{
	proto_stream_config a, b;
	configs(&a, &b);
	a.rto_initial_ns = 100 * SIM_MS;
	a.rto_max_ns = SIM_S;
	a.max_retries = 6;
	net *n = net_new_cfg(&a, &b);
	proto_stream *s = n->sd[0].s;
	CHECK_INT(proto_stream_connect(s, 0), 0);
	sim_packet *p = proto_stream_output(s, 0);
	CHECK(p != NULL && strcmp(p->info, "seq=0 ack=0 len=0") == 0);
	sim_packet_del(p);
	/* Nothing answers: 100, 200, 400, 800, then capped at 1000 ms. */
	sim_time t = 0, rto = a.rto_initial_ns;
	for (uint32_t i = 0; i <= a.max_retries; i++) {
		t += rto;
		CHECK_INT(proto_stream_expiry(s), t);
		proto_stream_timeout(s, t - 1); /* early: nothing happens */
		CHECK_INT(proto_stream_expiry(s), t);
		proto_stream_timeout(s, t);
		p = proto_stream_output(s, t);
		if (i < a.max_retries) {
			CHECK(p != NULL && strcmp(p->ptype, "SYN") == 0 &&
			      strcmp(p->info, "seq=0 ack=0 len=0 rtx") == 0);
		} else {
			CHECK(p == NULL);
		}
		sim_packet_del(p);
		rto = rto * 2 < a.rto_max_ns ? rto * 2 : a.rto_max_ns;
	}
	CHECK_INT(t, 4500 * SIM_MS);
	CHECK_INT(n->sd[0].errors, 1);
	CHECK_INT(n->sd[0].error_ns, t);
	CHECK_STR(n->sd[0].why, "timeout");
	CHECK_STR(proto_stream_state(s), "failed");
	CHECK_INT(proto_stream_expiry(s), SIM_TIME_MAX);
	CHECK_U64(stats(&n->sd[0]).timeouts, 7);
	CHECK_U64(stats(&n->sd[0]).retransmits, 6);
	CHECK_INT(proto_stream_send(s, t, "x", 1), SIM_ESTATE);
	net_del(n);

	/* Data: three losses back off, the ACK resets the RTO. */
	n = net_new_cfg(&a, &b);
	connect_pair(n);
	run(n, SIM_TIME_MAX);
	n->fault = f_type;
	n->dir = 0;
	n->arg = 3;
	n->match = "DATA";
	sim_time t0 = n->now;
	CHECK_INT(proto_stream_send(n->sd[0].s, t0, "abc", 3), 3);
	run(n, t0 + 700 * SIM_MS + 10 * SIM_MS - 1);
	CHECK_U64(n->sd[1].rx_len, 0);
	run(n, t0 + 700 * SIM_MS + 10 * SIM_MS);
	CHECK_U64(n->sd[1].rx_len, 3);
	run(n, SIM_TIME_MAX);
	CHECK_U64(stats(&n->sd[0]).timeouts, 3);
	CHECK_INT(proto_stream_send(n->sd[0].s, n->now, "d", 1), 1);
	pump(n);
	CHECK_INT(proto_stream_expiry(n->sd[0].s), n->now + a.rto_initial_ns);
	run(n, SIM_TIME_MAX);

	/* Then the peer goes silent: a gives up 4.5 s after sending. */
	n->fault = f_burst;
	n->arg = 0;
	n->arg2 = 1 << 30;
	t0 = n->now;
	CHECK_INT(proto_stream_send(n->sd[0].s, t0, "efgh", 4), 4);
	run(n, SIM_TIME_MAX);
	CHECK_INT(n->sd[0].errors, 1);
	CHECK_INT(n->sd[0].error_ns, t0 + 4500 * SIM_MS);
	CHECK_STR(proto_stream_state(n->sd[0].s), "failed");
	CHECK_U64(n->sd[1].rx_len, 4);
	CHECK_U64(stats(&n->sd[1]).bytes_received, 4);
	net_del(n);
}

TEST(stream_half_close)
{
	uint8_t *d = pattern(50000, 9);
	for (int first = 0; first < 2; first++) {
		net *n = established();
		side *c = &n->sd[first], *o = &n->sd[!first];
		CHECK_INT(proto_stream_close_write(c->s, n->now), 0);
		CHECK_INT(proto_stream_close_write(c->s, n->now), 0);
		CHECK_INT(proto_stream_send(c->s, n->now, "x", 1), SIM_ESTATE);
		run(n, SIM_TIME_MAX);
		CHECK_INT(o->fins, 1);
		CHECK_STR(proto_stream_state(c->s), "fin_wait");
		CHECK_STR(proto_stream_state(o->s), "close_wait");
		o->tx = d;
		o->tx_len = 50000;
		run(n, SIM_TIME_MAX);
		CHECK(c->rx_len == 50000 && memcmp(c->rx, d, 50000) == 0);
		CHECK_STR(proto_stream_state(c->s), "fin_wait");
		CHECK_INT(c->fins, 0);
		CHECK_INT(proto_stream_close_write(o->s, n->now), 0);
		run(n, SIM_TIME_MAX);
		CHECK_INT(c->fins, 1);
		CHECK_INT(c->rx_at_fin, 50000);
		CHECK_STR(proto_stream_state(c->s), "done");
		CHECK_STR(proto_stream_state(o->s), "done");
		net_del(n);
	}
	free(d);
}

/* close() in SYN-SENT abandons the attempt (RFC 9293 3.10.4): no SYN
 * retransmission, no FIN, a late SYN-ACK is ignored; close() once
 * established is close_write. */
TEST(stream_close)
{
	net *n = net_new();
	proto_stream *a = n->sd[0].s, *b = n->sd[1].s;
	CHECK_INT(proto_stream_connect(a, 0), 0);
	CHECK_INT(proto_stream_send(a, 0, "hello", 5), 5);
	sim_packet *syn = proto_stream_output(a, 0);
	CHECK(syn != NULL && strcmp(syn->ptype, "SYN") == 0);
	CHECK_INT(proto_stream_close(a, 1), 0);
	CHECK_STR(proto_stream_state(a), "closed");
	CHECK_INT(proto_stream_expiry(a), SIM_TIME_MAX);
	CHECK(proto_stream_output(a, 1) == NULL);
	proto_stream_timeout(a, 10 * SIM_S);
	CHECK(proto_stream_output(a, 10 * SIM_S) == NULL);
	/* The SYN that left still reaches the listener; its SYN-ACK finds
	 * nothing. */
	CHECK_INT(proto_stream_listen(b), 0);
	proto_stream_input(b, 10 * SIM_S, syn->data, syn->len);
	sim_packet_del(syn);
	sim_packet *sa = proto_stream_output(b, 10 * SIM_S);
	CHECK(sa != NULL && strcmp(sa->ptype, "SYN-ACK") == 0);
	proto_stream_input(a, 10 * SIM_S, sa->data, sa->len);
	sim_packet_del(sa);
	CHECK_STR(proto_stream_state(a), "closed");
	CHECK(proto_stream_output(a, 10 * SIM_S) == NULL);
	CHECK_INT(n->sd[0].connected, 0);
	net_del(n);

	/* Established: a FIN after the data. */
	n = established();
	CHECK_INT(proto_stream_send(n->sd[0].s, n->now, "hi", 2), 2);
	CHECK_INT(proto_stream_close(n->sd[0].s, n->now), 0);
	CHECK_STR(proto_stream_state(n->sd[0].s), "fin_wait");
	run(n, SIM_TIME_MAX);
	CHECK_INT(n->sd[1].fins, 1);
	CHECK_INT(n->sd[1].rx_at_fin, 2);
	net_del(n);
}

TEST(stream_abort)
{
	net *n = established();
	side *a = &n->sd[0], *b = &n->sd[1];
	uint8_t *d = pattern(100000, 7);
	a->tx = d;
	a->tx_len = 100000;
	run(n, n->now + 15 * SIM_MS);
	CHECK(b->rx_len > 0 && b->rx_len < 100000);
	proto_stream_abort(a->s, n->now);
	CHECK_STR(proto_stream_state(a->s), "reset");
	CHECK_INT(proto_stream_send(a->s, n->now, "x", 1), SIM_ESTATE);
	CHECK_INT(proto_stream_close_write(a->s, n->now), SIM_ESTATE);
	CHECK_INT(proto_stream_expiry(a->s), SIM_TIME_MAX);
	sim_packet *p = proto_stream_output(a->s, n->now);
	REQUIRE(p != NULL);
	CHECK_STR(p->ptype, "RST");
	proto_stream_abort(a->s, n->now); /* idempotent: no second RST */
	CHECK(proto_stream_output(a->s, n->now) == NULL);
	enqueue(n, 1, p, n->now + n->delay_ns);
	run(n, SIM_TIME_MAX);
	CHECK_INT(b->resets, 1);
	CHECK_STR(proto_stream_state(b->s), "reset");
	CHECK_INT(proto_stream_send(b->s, n->now, "x", 1), SIM_ESTATE);
	size_t got = b->rx_len;
	CHECK(memcmp(b->rx, d, got) == 0);
	net_del(n);
	free(d);

	/* Before any SYN: no RST; listen returns to closed. */
	n = net_new();
	proto_stream_abort(n->sd[0].s, 0);
	CHECK_STR(proto_stream_state(n->sd[0].s), "closed");
	CHECK(proto_stream_output(n->sd[0].s, 0) == NULL);
	CHECK_INT(proto_stream_listen(n->sd[1].s), 0);
	proto_stream_abort(n->sd[1].s, 0);
	CHECK_STR(proto_stream_state(n->sd[1].s), "closed");
	net_del(n);

	/* From syn_sent: a RST without ACK resets the half-open peer. */
	n = net_new();
	connect_pair(n);
	pump(n);
	run(n, 5 * SIM_MS);
	proto_stream_abort(n->sd[0].s, n->now);
	run(n, SIM_TIME_MAX);
	CHECK_INT(n->sd[1].resets, 1);
	CHECK_STR(proto_stream_state(n->sd[1].s), "reset");
	CHECK_INT(n->sd[0].resets, 0);
	net_del(n);
}

/* Feeds |p| to |to| with its sequence number moved by |dseq| and its
 * acknowledgment number by |dack|, resealed as |cfg| would. */
static void feed_edited(proto_stream *to, sim_time now,
			const proto_stream_config *cfg, const sim_packet *p,
			uint32_t dseq, uint32_t dack)
{
	uint8_t b[PROTO_STREAM_HDR];
	REQUIRE(p->len == PROTO_STREAM_HDR);
	memcpy(b, p->data, sizeof(b));
	uint32_t seq = (uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 |
		       (uint32_t)b[6] << 8 | b[7];
	uint32_t ack = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 |
		       (uint32_t)b[10] << 8 | b[11];
	seq += dseq;
	ack += dack;
	for (int i = 0; i < 4; i++) {
		b[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
		b[8 + i] = (uint8_t)(ack >> (24 - 8 * i));
	}
	reseal(cfg, b, sizeof(b));
	proto_stream_input(to, now, b, sizeof(b));
}

TEST(stream_rst_window)
{
	proto_stream_config ca, cb;
	configs(&ca, &cb);
	net *n = established();
	proto_stream *a = n->sd[0].s;
	CHECK_INT(proto_stream_forge(n->sd[1].s, n->now, "rst"), 0);
	sim_packet *p = proto_stream_output(n->sd[1].s, n->now);
	REQUIRE(p != NULL);
	CHECK_STR(p->ptype, "RST");
	CHECK_STR(p->info, "seq=1 ack=1 len=0 forged");
	CHECK_STR(proto_stream_state(n->sd[1].s), "established");
	const uint32_t bad[] = {65535, 70000, (uint32_t)-1, 1u << 31};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		feed_edited(a, n->now, &cb, p, bad[i], 0);
	}
	CHECK_STR(proto_stream_state(a), "established");
	CHECK_U64(stats(&n->sd[0]).dropped_out_of_window, 4);
	feed_edited(a, n->now, &cb, p, 65534, 0); /* last in the window */
	CHECK_STR(proto_stream_state(a), "reset");
	CHECK_INT(n->sd[0].resets, 1);
	sim_packet_del(p);
	net_del(n);

	/* In syn_sent a RST counts only if it acknowledges our SYN. */
	n = net_new();
	connect_pair(n);
	hop(n->sd[0].s, n->sd[1].s, 0, "SYN", "seq=0 ack=0 len=0");
	proto_stream_abort(n->sd[1].s, 0);
	p = proto_stream_output(n->sd[1].s, 0);
	REQUIRE(p != NULL);
	CHECK_STR(p->info, "seq=0 ack=1 len=0"); /* no SYN-ACK sent yet */
	feed_edited(n->sd[0].s, 0, &cb, p, 0, 1);
	feed_edited(n->sd[0].s, 0, &cb, p, 0, (uint32_t)-1);
	CHECK_STR(proto_stream_state(n->sd[0].s), "syn_sent");
	proto_stream_input(n->sd[0].s, 0, p->data, p->len);
	CHECK_STR(proto_stream_state(n->sd[0].s), "reset");
	CHECK_INT(n->sd[0].resets, 1);
	sim_packet_del(p);
	net_del(n);
}

TEST(stream_forge_fin)
{
	const size_t len = 300000;
	uint8_t *d = pattern(len, 5);
	net *n = net_new();
	side *a = &n->sd[0], *b = &n->sd[1];
	n->fault = f_every;
	n->arg = 7;
	a->tx = d;
	a->tx_len = len;
	connect_pair(n);
	run(n, 150 * SIM_MS);
	CHECK_INT(proto_stream_forge(a->s, n->now, "syn"), SIM_EINVAL);
	CHECK_INT(proto_stream_forge(a->s, n->now, "fin"), 0);
	CHECK_INT(proto_stream_forge(a->s, n->now, "rst"), SIM_ELIMIT);
	run(n, n->now + n->delay_ns); /* the forged FIN is in, a gap is open */
	CHECK_INT(b->fins, 0);
	CHECK(b->rx_len + 1 < (size_t)a->forged_seq);
	run(n, SIM_TIME_MAX);
	long long fs = a->forged_seq;
	CHECK(fs > 1 && fs < (long long)len);
	CHECK_STR(proto_stream_state(a->s), "failed"); /* a never knew */
	CHECK_INT(a->errors, 1);
	CHECK_U64(stats(a).forged, 1);
	CHECK_INT(b->fins, 1);
	CHECK_INT(b->rx_at_fin, fs - 1);
	CHECK_INT(b->rx_len, fs - 1);
	CHECK(memcmp(b->rx, d, b->rx_len) == 0);
	CHECK_STR(proto_stream_state(b->s), "close_wait");
	CHECK(stats(b).dropped_out_of_window > 0); /* data after the FIN */
	free(d);
	net_del(n);
}

TEST(stream_cut)
{
	static const uint64_t offsets[] = {0,    1,    700,  1399,  1400,
					   1401, 2800, 4199, 50000, 99999};
	static const char *const kinds[] = {"fin", "rst"};
	const size_t len = 100000;
	uint8_t *d = pattern(len, 8);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]);
		     i++) {
			for (int lossy = 0; lossy < 2 - k; lossy++) {
				int before = unit_failures;
				net *n = net_new();
				side *a = &n->sd[0], *b = &n->sd[1];
				if (lossy) {
					n->fault = f_every;
					n->arg = 5;
				}
				CHECK_INT(proto_stream_cut(a->s, offsets[i],
							   kinds[k]),
					  0);
				a->tx = d;
				a->tx_len = len;
				a->close_after = 1;
				connect_pair(n);
				run(n, SIM_TIME_MAX);
				CHECK_U64(b->rx_len, offsets[i]);
				CHECK(memcmp(b->rx, d, b->rx_len) == 0);
				if (k == 0) {
					CHECK_INT(b->fins, 1);
					CHECK_U64(b->rx_at_fin, offsets[i]);
					CHECK_STR(proto_stream_state(b->s),
						  "close_wait");
				} else {
					CHECK_INT(b->resets, 1);
					CHECK_STR(proto_stream_state(b->s),
						  "reset");
				}
				CHECK_STR(proto_stream_state(a->s), "failed");
				CHECK(stats(a).forged >= 1);
				if (unit_failures > before) {
					fprintf(stderr, "cut %s at %llu%s\n",
						kinds[k],
						(unsigned long long)offsets[i],
						lossy ? " lossy" : "");
				}
				net_del(n);
			}
		}
	}

	/* Armed mid-transfer; refused for an offset already sent. */
	net *n = net_new();
	n->sd[0].tx = d;
	n->sd[0].tx_len = len;
	connect_pair(n);
	run(n, 35 * SIM_MS); /* the first window is out */
	CHECK_INT(proto_stream_cut(n->sd[0].s, 10, "fin"), SIM_ESTATE);
	CHECK_INT(proto_stream_cut(n->sd[0].s, 90000, "bogus"), SIM_EINVAL);
	CHECK_INT(proto_stream_cut(n->sd[0].s, 90000, "fin"), 0);
	run(n, SIM_TIME_MAX);
	CHECK_U64(n->sd[1].rx_len, 90000);
	CHECK_INT(n->sd[1].fins, 1);
	net_del(n);
	free(d);
}

TEST(stream_sndbuf)
{
	proto_stream_config a, b;
	configs(&a, &b);
	a.sndbuf = 1000;
	net *n = net_new_cfg(&a, &b);
	proto_stream *s = n->sd[0].s;
	uint8_t *d = pattern(1500, 10);
	CHECK_U64(proto_stream_sndbuf_free(s), 1000);
	CHECK_INT(proto_stream_send(s, 0, d, 1500), 1000); /* waits for SYN */
	CHECK_U64(proto_stream_sndbuf_free(s), 0);
	CHECK_INT(proto_stream_send(s, 0, d + 1000, 500), 0);
	connect_pair(n);
	run(n, SIM_TIME_MAX);
	CHECK_U64(n->sd[1].rx_len, 1000);
	CHECK_U64(proto_stream_sndbuf_free(s), 1000);
	CHECK_INT(proto_stream_send(s, n->now, d + 1000, 500), 500);
	CHECK_U64(proto_stream_sndbuf_free(s), 500);
	run(n, SIM_TIME_MAX);
	CHECK(n->sd[1].rx_len == 1500 && memcmp(n->sd[1].rx, d, 1500) == 0);
	free(d);
	net_del(n);
}

/* Well-formed segments with random sequence and acknowledgment numbers
 * (half of them near the real ones), flags, window and payload, sealed
 * with valid checksums, against a stream in each state: nothing may crash
 * or trip the sanitizers. */
TEST(stream_fuzz_sealed)
{
	proto_stream_config ca, cb;
	configs(&ca, &cb);
	sim_rng r;
	sim_rng_init(&r, 7, "fuzz");
	static uint8_t buf[PROTO_STREAM_HDR + 200];
	for (int phase = 0; phase < 5; phase++) {
		net *n = net_new();
		side *b = &n->sd[1];
		if (phase >= 1) {
			connect_pair(n); /* b listens */
		}
		if (phase >= 2) {
			pump(n);
			run(n, 10 * SIM_MS); /* b in syn_received */
		}
		if (phase >= 3) {
			run(n, SIM_TIME_MAX);
		}
		if (phase == 4) {
			proto_stream_close_write(n->sd[0].s, n->now);
			proto_stream_close_write(b->s, n->now);
			run(n, SIM_TIME_MAX);
			CHECK_STR(proto_stream_state(b->s), "done");
		}
		for (int i = 0; i < 3000; i++) {
			size_t len = PROTO_STREAM_HDR +
				     (size_t)sim_rng_below(&r, 201);
			sim_rng_fill(&r, buf, len);
			memcpy(buf, "\xc0\x00\x01\xbb", 4);
			buf[12] = 0x70;
			if (i % 64 != 0) { /* mostly no RST, mostly ACK */
				buf[13] = (uint8_t)((buf[13] & 0x0b) |
						    (i % 4 ? 0x10 : 0));
			}
			memcpy(buf + 20, "\xfd\x08\x74\x53", 4);
			if (i % 2) { /* near the real numbers */
				buf[4] = buf[5] = 0;
				buf[8] = 0xff;
				buf[9] = 0xff;
			}
			reseal(&ca, buf, len);
			n->now += SIM_MS;
			proto_stream_input(b->s, n->now, buf, len);
			sim_packet *p;
			while ((p = proto_stream_output(b->s, n->now))) {
				sim_packet_del(p);
			}
			proto_stream_timeout(b->s, n->now);
		}
		CHECK(b->rx_len <= 3000u * 200u);
		CHECK(b->fins <= 1 && b->resets <= 1);
		net_del(n);
	}
}

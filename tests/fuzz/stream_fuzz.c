/* tests/fuzz/stream_fuzz.c: fuzz harness for proto/stream (the TCP-shaped
 * reliable stream under TLS).
 *
 * The input drives two streams, a client (side 0, 10.0.0.1:49152) that
 * connects and a server (side 1) that listens, and the network between
 * them: the first bytes pick their configurations (ISNs, mss, window,
 * send buffer, RTOs, retries) and how each reacts in its callbacks (echo
 * what it receives, close_write on FIN or when all is acknowledged:
 * re-entrant calls the header allows); then every byte pair is one step:
 * collect a side's output into its in-flight queue (until it holds
 * QMAX segments), deliver, duplicate, drop or corrupt one of them (corrupted
 * then resealed with a right CRC-32C and checksum, or not), inject a
 * forged segment built from fields of the input (resealed) or raw bytes,
 * send application bytes, close_write, abort, forge, cut, advance the
 * clock and fire the expired timers, or deliver everything until quiet.
 *
 * Properties checked after every step, besides no crash and no sanitizer
 * report (and the stream's own asserts, on in this build):
 *  - each state is one of proto_stream_state's names and the free send
 *    buffer never exceeds its size;
 *  - the counters agree with the callbacks (bytes_received) and the
 *    application (bytes_sent);
 *  - every segment a side outputs passes its peer's checks;
 *  - what a side has received is a prefix of what its peer sent, unless a
 *    segment that passes both checks but does not come from the peer
 *    reached it (a resealed corruption, a forged injection: "tainted");
 *  - a FIN reported while untainted, with no forged FIN or cut on the
 *    peer, comes after every byte the peer sent.
 *
 * Input layout: for each side (client, then server) 4 bytes ISN and 3
 * bytes a, b, e: mss = {1,7,100,536,1400,65000,1,13}[a & 7], sndbuf =
 * {1,10,1000,4096,65536,262144,3,100}[(a >> 3) & 7], window =
 * {1,5,300,2000,65535,100000,64,1400}[b & 7], RTO (1 + ((b >> 3) & 31)) ms,
 * RTO cap RTO << (e & 7), retries (e >> 3) % 31, reactions a >> 6 (echo,
 * close_write on FIN) and b >> 7 (close_write when all is acknowledged);
 * then steps of an op byte (low 4 bits: the step, bit 7: the side) and an
 * argument byte, some steps reading more (see step()).
 *
 * Seed corpus: tests/fuzz/corpus/stream/ (the hand-written seeds named for
 * what they do, and what libFuzzer added, merged to new edges). Crashes
 * found: tests/fuzz/regress/stream/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/stream.h"
#include "sim/packet.h"

#define QMAX 64
#define SENT_MAX (1u << 18) /* application bytes a side sends at most */
#define PUMP_ROUNDS 64
#define ECHO_MAX 100

typedef struct fz fz;

typedef struct side {
	fz *f;
	int idx;
	proto_stream_config cfg;
	proto_stream *s;
	uint8_t react; /* bit 0 echo, 1 close_write on FIN, 2 on acked_all */
	uint8_t *sent; /* what send accepted, in order */
	size_t nsent, sent_cap;
	uint64_t nrcvd;
	int tainted;   /* took a segment the peer did not make */
	int peer_fake; /* the peer forged a FIN or armed a cut */
	int fins;
	sim_packet *q[QMAX]; /* in flight toward the other side */
	int qn;
} side;

struct fz {
	side sd[2];
	sim_time now;
	const uint8_t *in;
	size_t len, pos;
};

static void fail(const char *what, int side_idx)
{
	fprintf(stderr, "stream_fuzz: side %d: %s\n", side_idx, what);
	abort();
}

static uint8_t take8(fz *f)
{
	return f->pos < f->len ? f->in[f->pos++] : 0;
}

static uint32_t take32(fz *f)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		v = v << 8 | take8(f);
	}
	return v;
}

static uint8_t pattern_byte(int side_idx, uint64_t off)
{
	return (uint8_t)(off * 31 + (off >> 8) + (uint64_t)side_idx * 101);
}

/* Sends and appends to the record of what |d| sent; at most SENT_MAX. */
static void do_send(side *d, const uint8_t *data, size_t len)
{
	if (d->nsent + len > SENT_MAX) {
		return;
	}
	if (d->nsent + len > d->sent_cap) {
		size_t cap = d->sent_cap ? d->sent_cap : 4096;
		while (cap < d->nsent + len) {
			cap *= 2;
		}
		uint8_t *v = realloc(d->sent, cap);
		if (v == NULL) {
			return;
		}
		d->sent = v;
		d->sent_cap = cap;
	}
	int64_t n = proto_stream_send(d->s, d->f->now, data, len);
	if (n < 0) {
		return;
	}
	if ((size_t)n > len) {
		fail("send accepted more than it was given", d->idx);
	}
	if (n > 0) {
		memcpy(d->sent + d->nsent, data, (size_t)n);
		d->nsent += (size_t)n;
	}
}

static void on_recv(void *ud, sim_time now, const uint8_t *data, size_t len)
{
	side *d = ud;
	const side *peer = &d->f->sd[1 - d->idx];
	(void)now;
	if (len == 0) {
		fail("recv with no bytes", d->idx);
	}
	if (!d->tainted && (d->nrcvd + len > peer->nsent ||
			    memcmp(peer->sent + d->nrcvd, data, len) != 0)) {
		fail("received bytes the peer did not send", d->idx);
	}
	d->nrcvd += len;
	if (d->react & 1) {
		do_send(d, data, len < ECHO_MAX ? len : ECHO_MAX);
	}
}

static void on_fin(void *ud, sim_time now)
{
	side *d = ud;
	const side *peer = &d->f->sd[1 - d->idx];
	d->fins++;
	if (d->fins > 1) {
		fail("two FINs delivered", d->idx);
	}
	if (!d->tainted && !d->peer_fake && d->nrcvd != peer->nsent) {
		fail("FIN before all the peer's bytes", d->idx);
	}
	if (d->react & 2) {
		proto_stream_close_write(d->s, now);
	}
}

static void on_acked_all(void *ud, sim_time now)
{
	side *d = ud;
	if (d->react & 4) {
		proto_stream_close_write(d->s, now);
	}
}

static const proto_stream_callbacks callbacks = {
    .recv = on_recv,
    .fin = on_fin,
    .acked_all = on_acked_all,
};

/* Does |b| pass both checks at side |to|? */
static int sealed(const fz *f, int to, const uint8_t *b, size_t len)
{
	return len >= PROTO_STREAM_HDR &&
	       proto_stream_sealed(&f->sd[to].cfg, b, len);
}

/* Seals |b| as the peer of side |to| would have. */
static void reseal(const fz *f, int to, uint8_t *b, size_t len)
{
	if (len >= PROTO_STREAM_HDR) {
		proto_stream_seal(&f->sd[1 - to].cfg, b, len);
	}
}

/* Writes the |n| low bytes of |v| big-endian. */
static void put_be(uint8_t *p, uint32_t v, int n)
{
	for (int i = 0; i < n; i++) {
		p[i] = (uint8_t)(v >> 8 * (n - 1 - i));
	}
}

/* Hands |b| to side |to|; |genuine|: made by the peer, unchanged. */
static void input(fz *f, int to, uint8_t *b, size_t len, int genuine)
{
	side *d = &f->sd[to];
	if (!genuine && sealed(f, to, b, len)) {
		d->tainted = 1;
	}
	proto_stream_input(d->s, f->now, b, len);
}

static void collect(fz *f, int from)
{
	side *d = &f->sd[from];
	sim_packet *p;
	/* At most QMAX in flight: the stream makes the rest when asked. */
	while (d->qn < QMAX &&
	       (p = proto_stream_output(d->s, f->now)) != NULL) {
		if (p->len < PROTO_STREAM_HDR || p->proto == NULL ||
		    strcmp(p->proto, "tcp") != 0) {
			fail("output a malformed segment", from);
		}
		if (!sealed(f, 1 - from, p->data, p->len)) {
			fail("output a segment its peer refuses", from);
		}
		d->q[d->qn++] = p;
	}
}

static sim_packet *unqueue(side *d, int i)
{
	sim_packet *p = d->q[i];
	memmove(d->q + i, d->q + i + 1,
		(size_t)(d->qn - i - 1) * sizeof(d->q[0]));
	d->qn--;
	return p;
}

/* Delivers everything in flight both ways until nothing moves. */
static void pump(fz *f)
{
	for (int r = 0; r < PUMP_ROUNDS; r++) {
		collect(f, 0);
		collect(f, 1);
		if (f->sd[0].qn == 0 && f->sd[1].qn == 0) {
			return;
		}
		for (int from = 0; from < 2; from++) {
			side *d = &f->sd[from];
			while (d->qn > 0) {
				sim_packet *p = unqueue(d, 0);
				input(f, 1 - from, p->data, p->len, 1);
				sim_packet_del(p);
			}
		}
	}
}

static void advance(fz *f, sim_time dt)
{
	f->now += dt;
	for (int i = 0; i < 2; i++) {
		proto_stream *s = f->sd[i].s;
		if (proto_stream_expiry(s) <= f->now) {
			proto_stream_timeout(s, f->now);
		}
	}
}

static const char *const states[] = {
    "closed",      "listen",   "syn_sent",   "syn_received",
    "established", "fin_wait", "close_wait", "closing",
    "done",        "reset",    "failed",
};

static void check(const fz *f)
{
	for (int i = 0; i < 2; i++) {
		const side *d = &f->sd[i];
		const char *st = proto_stream_state(d->s);
		size_t k = 0, n = sizeof(states) / sizeof(states[0]);
		while (st != NULL && k < n && strcmp(states[k], st) != 0) {
			k++;
		}
		if (k == n) {
			fail("an unknown state", i);
		}
		if (proto_stream_sndbuf_free(d->s) > d->cfg.sndbuf) {
			fail("more free send buffer than its size", i);
		}
		proto_stream_stats stats;
		proto_stream_get_stats(d->s, &stats);
		if (stats.bytes_received != d->nrcvd) {
			fail("bytes_received disagrees with recv", i);
		}
		if (stats.bytes_sent > d->nsent) {
			fail("sent more bytes than it was given", i);
		}
	}
}

static void configure(fz *f, int i)
{
	side *d = &f->sd[i];
	proto_stream_config *c = &d->cfg;
	proto_stream_config_default(c);
	if (i == 1) {
		c->local_port = 443;
		c->remote_port = 49152;
		c->local_addr = PROTO_STREAM_ADDR_B;
		c->remote_addr = PROTO_STREAM_ADDR_A;
	}
	c->isn = take32(f);
	uint8_t a = take8(f), b = take8(f), e = take8(f);
	/* Small sizes make windows fill, buffers wrap and segments split. */
	static const uint32_t mss[] = {1, 7, 100, 536, 1400, 65000, 1, 13};
	static const uint32_t sndbuf[] = {1,     10,     1000, 4096,
					  65536, 262144, 3,    100};
	static const uint32_t window[] = {1,     5,      300, 2000,
					  65535, 100000, 64,  1400};
	c->mss = mss[a & 7];
	c->sndbuf = sndbuf[(a >> 3) & 7];
	c->window = window[b & 7];
	c->rto_initial_ns = (sim_time)(1 + ((b >> 3) & 31)) * SIM_MS;
	c->rto_max_ns = c->rto_initial_ns << (e & 7);
	c->max_retries = (uint32_t)(e >> 3) % 31;
	d->react = (uint8_t)(a >> 6 | (b >> 7) << 2);
	d->f = f;
	d->idx = i;
	d->s = proto_stream_new(c, &callbacks, d);
	if (d->s == NULL) {
		fail("cannot create the stream", i);
	}
}

/* A segment from the input's fields, near the real sequence numbers. */
static void inject(fz *f, int to)
{
	const side *d = &f->sd[to], *peer = &f->sd[1 - to];
	uint8_t flags = take8(f), how = take8(f);
	uint32_t dseq = take32(f), dack = take32(f);
	size_t plen = take8(f);
	if (how & 1) {
		plen *= 37;
	}
	uint8_t *b = calloc(1, PROTO_STREAM_HDR + plen);
	if (b == NULL) {
		return;
	}
	put_be(b, how & 2 ? take8(f) : d->cfg.remote_port, 2);
	put_be(b + 2, d->cfg.local_port, 2);
	/* Near: a small signed offset from the ISNs; far: anything. */
	put_be(b + 4,
	       how & 4 ? dseq
		       : peer->cfg.isn + (uint32_t)(int8_t)dseq +
			     (uint32_t)peer->nsent * (how >> 7),
	       4);
	put_be(b + 8,
	       how & 8 ? dack
		       : d->cfg.isn + (uint32_t)(int8_t)dack +
			     (uint32_t)d->nsent * (how >> 7),
	       4);
	b[12] = how & 16 ? take8(f) : 7 << 4;
	b[13] = flags;
	put_be(b + 14, how & 32 ? take8(f) * 257u : 65535, 2);
	b[20] = 253;
	b[21] = 8;
	put_be(b + 22, 0x7453, 2);
	for (size_t i = 0; i < plen; i++) {
		b[PROTO_STREAM_HDR + i] = pattern_byte(1 - to, i + dseq);
	}
	if (!(how & 64)) {
		reseal(f, to, b, PROTO_STREAM_HDR + plen);
	}
	input(f, to, b, PROTO_STREAM_HDR + plen, 0);
	free(b);
}

/* Corrupts a copy of an in-flight segment and delivers it. */
static void corrupt(fz *f, int from)
{
	side *d = &f->sd[from];
	uint8_t i = take8(f), n = take8(f), how = take8(f);
	if (d->qn == 0) {
		return;
	}
	sim_packet *p = d->q[i % d->qn];
	size_t len = p->len;
	if (how & 1) { /* truncate */
		len = take8(f) % (len + 1);
	}
	uint8_t *b = malloc(len > 0 ? len : 1);
	if (b == NULL) {
		return;
	}
	memcpy(b, p->data, len);
	for (int k = 0; k < (n & 7) && len > 0; k++) {
		uint8_t at = take8(f), v = take8(f);
		b[(at + (size_t)(n >> 3) * 256) % len] = v;
	}
	if (how & 2) {
		reseal(f, 1 - from, b, len);
	}
	input(f, 1 - from, b, len,
	      len == p->len && memcmp(b, p->data, len) == 0);
	free(b);
}

static void raw(fz *f, int to)
{
	size_t len = take8(f) + PROTO_STREAM_HDR / 2;
	uint8_t flags = take8(f);
	uint8_t *b = malloc(len);
	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < len; i++) {
		b[i] = take8(f);
	}
	if (flags & 1) {
		reseal(f, to, b, len);
	}
	input(f, to, b, len, 0);
	free(b);
}

static void step(fz *f)
{
	uint8_t op = take8(f), arg = take8(f);
	int x = op >> 7; /* the side */
	side *d = &f->sd[x];
	switch (op & 15) {
	case 0:
	case 1:
		collect(f, x);
		break;
	case 2: /* deliver one, maybe out of order */
	case 3:
		if (d->qn > 0) {
			sim_packet *p = unqueue(d, arg % d->qn);
			input(f, 1 - x, p->data, p->len, 1);
			sim_packet_del(p);
		}
		break;
	case 4:
		corrupt(f, x);
		break;
	case 5: /* a copy, the original stays in flight */
		if (d->qn > 0) {
			sim_packet *p = d->q[arg % d->qn];
			input(f, 1 - x, p->data, p->len, 1);
		}
		break;
	case 6:
		if (d->qn > 0) {
			sim_packet_del(unqueue(d, arg % d->qn));
		}
		break;
	case 7: { /* application bytes */
		size_t n = (size_t)arg * (op & 16 ? 67 : 3);
		uint8_t *buf = malloc(n > 0 ? n : 1);
		if (buf == NULL) {
			break;
		}
		for (size_t i = 0; i < n; i++) {
			buf[i] = pattern_byte(x, d->nsent + i);
		}
		do_send(d, buf, n);
		free(buf);
		break;
	}
	case 8:
		proto_stream_close_write(d->s, f->now);
		break;
	case 9:
		if (arg < 16) { /* rarely: it ends the connection */
			proto_stream_abort(d->s, f->now);
		}
		break;
	case 10:
		if (proto_stream_forge(d->s, f->now, arg & 1 ? "rst" : "fin") ==
			0 &&
		    !(arg & 1)) {
			f->sd[1 - x].peer_fake = 1;
		}
		break;
	case 11:
		if (proto_stream_cut(d->s, (uint64_t)arg * (op & 16 ? 97 : 1),
				     arg & 1 ? "rst" : "fin") == 0) {
			f->sd[1 - x].peer_fake = 1;
		}
		break;
	case 12: { /* time: up to 255 us, ms or s */
		static const sim_time unit[] = {SIM_US, SIM_MS, SIM_S, SIM_MS};
		advance(f, (sim_time)arg * unit[(op >> 4) & 3]);
		break;
	}
	case 13:
		f->pos--; /* |arg| is the first field */
		inject(f, 1 - x);
		break;
	case 14:
		f->pos--;
		raw(f, 1 - x);
		break;
	default:
		pump(f);
		if (arg & 1) {
			advance(f, 100 * SIM_MS);
		}
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return 0;
	}
	f->in = data;
	f->len = size;
	configure(f, 0);
	configure(f, 1);
	proto_stream_listen(f->sd[1].s);
	proto_stream_connect(f->sd[0].s, f->now);
	while (f->pos < f->len) {
		step(f);
		check(f);
	}
	for (int i = 0; i < 2; i++) {
		side *d = &f->sd[i];
		while (d->qn > 0) {
			sim_packet_del(d->q[--d->qn]);
		}
		proto_stream_del(d->s);
		free(d->sent);
	}
	free(f);
	return 0;
}

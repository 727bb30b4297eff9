#include "proto/stream.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"

enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_PSH = 0x08, F_ACK = 0x10 };

#define OPT_KIND 253
#define OPT_LEN 8
#define OPT_EXID 0x7453
#define WND_MAX 65535
#define SEG_MAX 65535 /* the pseudo-header's length field is 16 bits */
#define SNDBUF_MAX (1u << 30)
#define RETRIES_MAX 30
#define RTO_MAX_NS (86400 * SIM_S)

/* ST_OPEN covers established and the closing states, which
 * proto_stream_state derives from the FIN flags. */
enum st {
	ST_CLOSED,
	ST_LISTEN,
	ST_SYN_SENT,
	ST_SYN_RCVD,
	ST_OPEN,
	ST_RESET,
	ST_FAILED
};

static const char *const state_names[] = {"closed",      "listen",
					  "syn_sent",    "syn_received",
					  "established", "reset",
					  "failed"};

/* A received segment that passed validation. */
typedef struct seg {
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const uint8_t *data;
	int64_t len;
} seg;

/* Sequence numbers are kept as 64-bit offsets from the ISN of the side that
 * sends them (the SYN is offset 0, stream byte i is offset 1 + i, the FIN
 * follows the last byte) and become 32-bit only on the wire. */
typedef struct stream_label {
	uint64_t from, to; /* data offsets */
	char name[24];
} stream_label;

struct proto_stream {
	stream_label labels[PROTO_STREAM_LABELS_MAX]; /* ring */
	uint64_t nlabels;
	proto_stream_config cfg;
	proto_stream_callbacks cb;
	void *ud;
	enum st st;
	sim_time last_now;
	proto_stream_stats stats;
	/* send side, offsets from cfg.isn */
	int64_t snd_una, snd_nxt, snd_max;
	int64_t queued; /* stream bytes ever accepted by send */
	int fin_queued, fin_acked;
	uint8_t *sbuf; /* ring of cfg.sndbuf bytes: byte i at i % sndbuf */
	uint32_t peer_wnd;
	sim_time rto_ns, deadline_ns;
	uint32_t backoffs; /* consecutive timeouts without progress */
	int probing;       /* after a timeout: one segment until an ACK */
	/* receive side, offsets from irs; rcv_nxt 0 until the peer's SYN */
	uint32_t irs;
	int64_t rcv_nxt;
	int64_t peer_fin; /* offset of the peer's FIN, -1 until known */
	uint32_t rcv_wnd; /* advertised, and the size of the rings below */
	uint8_t *rbuf; /* peer offset o at o % rcv_wnd */
	uint8_t *have; /* bitmap: bit k set when rbuf[k] holds a byte */
	int ack_pending, rst_pending;
	/* attacks: one pending forged segment, one armed cut */
	uint8_t forge_flags, cut_flags;
	int64_t forge_seq, cut_seq;
};

static const uint32_t crc_table[256] = {
	0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
	0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
	0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
	0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
	0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
	0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
	0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
	0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
	0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
	0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
	0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
	0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
	0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
	0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
	0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
	0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
	0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
	0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
	0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
	0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
	0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
	0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
	0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
	0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
	0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
	0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
	0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
	0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
	0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
	0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
	0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
	0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
	0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
	0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
	0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
	0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
	0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
	0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
	0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
	0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
	0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
	0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
	0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	}
	return crc;
}

uint32_t proto_stream_crc32c(const void *data, size_t len)
{
	return ~crc_update(0xffffffffu, data, len);
}

/* The segment's CRC-32C with the checksum and CRC fields taken as zero, so
 * the same function computes and verifies it. */
static uint32_t seg_crc(const uint8_t *b, size_t len)
{
	static const uint8_t zero[4];
	uint32_t c = crc_update(0xffffffffu, b, 16);
	c = crc_update(c, zero, 2);
	c = crc_update(c, b + 18, 6);
	c = crc_update(c, zero, 4);
	return ~crc_update(c, b + PROTO_STREAM_HDR, len - PROTO_STREAM_HDR);
}

/* The Internet checksum of the IPv4 pseudo-header and the segment: the
 * value to store when the checksum field is zero, 0 when it is right. */
static uint16_t inet_sum(uint32_t src, uint32_t dst, const uint8_t *b,
			 size_t len)
{
	uint64_t sum = (src >> 16) + (src & 0xffff) + (dst >> 16) +
		       (dst & 0xffff) + 6 + len;
	for (size_t i = 0; i + 1 < len; i += 2) {
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	}
	if (len & 1) {
		sum += (uint32_t)b[len - 1] << 8;
	}
	while (sum >> 16) {
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

void proto_stream_seal(const proto_stream_config *c, uint8_t *b, size_t len)
{
	put16(b + 16, 0);
	put32(b + 24, seg_crc(b, len));
	put16(b + 16, inet_sum(c->local_addr, c->remote_addr, b, len));
}

int proto_stream_sealed(const proto_stream_config *c, const uint8_t *b,
			size_t len)
{
	return inet_sum(c->remote_addr, c->local_addr, b, len) == 0 &&
	       seg_crc(b, len) == get32(b + 24);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

void proto_stream_config_default(proto_stream_config *c)
{
	memset(c, 0, sizeof(*c));
	c->local_port = 49152;
	c->remote_port = 443;
	c->local_addr = PROTO_STREAM_ADDR_A;
	c->remote_addr = PROTO_STREAM_ADDR_B;
	c->mss = 1400;
	c->sndbuf = 262144;
	c->window = 65535;
	c->rto_initial_ns = 200 * SIM_MS;
	c->rto_max_ns = 60 * SIM_S;
	c->max_retries = 8;
}

const char *proto_stream_config_check(const proto_stream_config *c)
{
	if (c->mss == 0 || c->mss > 65000) {
		return "mss must be in [1, 65000]";
	}
	if (c->nsplit > PROTO_STREAM_SPLITS_MAX) {
		return "at most 16 split offsets";
	}
	if (c->sndbuf == 0 || c->sndbuf > SNDBUF_MAX) {
		return "sndbuf must be in [1, 1073741824]";
	}
	if (c->window == 0) {
		return "window must be positive";
	}
	if (c->rto_initial_ns <= 0) {
		return "rto_initial_ns must be positive";
	}
	if (c->rto_max_ns < c->rto_initial_ns || c->rto_max_ns > RTO_MAX_NS) {
		return "rto_max_ns must be in [rto_initial_ns, 1 day]";
	}
	if (c->max_retries > RETRIES_MAX) {
		return "max_retries must be at most 30";
	}
	return NULL;
}

proto_stream *proto_stream_new(const proto_stream_config *cfg,
			       const proto_stream_callbacks *cb,
			       void *user_data)
{
	if (proto_stream_config_check(cfg) != NULL) {
		return NULL;
	}
	proto_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	s->cfg = *cfg;
	if (cb != NULL) {
		s->cb = *cb;
	}
	s->ud = user_data;
	s->rcv_wnd = cfg->window < WND_MAX ? cfg->window : WND_MAX;
	s->sbuf = malloc(cfg->sndbuf);
	s->rbuf = malloc(s->rcv_wnd);
	/* A bitmap rather than a byte per byte: calloc zeroes 8 KiB, not
	 * 64 KiB, for every stream. */
	s->have = calloc((s->rcv_wnd + 7) / 8, 1);
	if (s->sbuf == NULL || s->rbuf == NULL || s->have == NULL) {
		proto_stream_del(s);
		return NULL;
	}
	s->peer_fin = -1;
	s->rto_ns = cfg->rto_initial_ns;
	s->deadline_ns = SIM_TIME_MAX;
	return s;
}

void proto_stream_del(proto_stream *s)
{
	if (s == NULL) {
		return;
	}
	free(s->sbuf);
	free(s->rbuf);
	free(s->have);
	free(s);
}

static void tick(proto_stream *s, sim_time now)
{
	assert(s->last_now <= now);
	s->last_now = now;
}

/* Enters "reset" or "failed": nothing more to acknowledge or resend. */
static void finish(proto_stream *s, enum st st)
{
	s->st = st;
	s->ack_pending = 0;
	s->deadline_ns = SIM_TIME_MAX;
}

int proto_stream_connect(proto_stream *s, sim_time now)
{
	tick(s, now);
	if (s->st != ST_CLOSED) {
		return SIM_ESTATE;
	}
	s->st = ST_SYN_SENT; /* output sends the SYN: snd_nxt is 0 */
	return 0;
}

int proto_stream_listen(proto_stream *s)
{
	if (s->st != ST_CLOSED) {
		return SIM_ESTATE;
	}
	s->st = ST_LISTEN;
	return 0;
}

/* Stream bytes acknowledged by the peer, which have left the send buffer. */
static int64_t acked_bytes(const proto_stream *s)
{
	return min64(max64(s->snd_una - 1, 0), s->queued);
}

size_t proto_stream_sndbuf_free(const proto_stream *s)
{
	return (size_t)(s->cfg.sndbuf - (s->queued - acked_bytes(s)));
}

int proto_stream_split(proto_stream *s, uint64_t off)
{
	proto_stream_config *c = &s->cfg;
	uint32_t i = 0;
	while (i < c->nsplit && c->split_at[i] < off) {
		i++;
	}
	if (i < c->nsplit && c->split_at[i] == off) {
		return 0;
	}
	if (c->nsplit == PROTO_STREAM_SPLITS_MAX) {
		return SIM_ELIMIT;
	}
	memmove(&c->split_at[i + 1], &c->split_at[i],
		(c->nsplit - i) * sizeof(c->split_at[0]));
	c->split_at[i] = off;
	c->nsplit++;
	return 0;
}

void proto_stream_label(proto_stream *s, uint64_t from, uint64_t to,
			const char *label)
{
	if (from >= to) {
		return;
	}
	if (s->nlabels > 0) {
		/* A message spanning records comes in pieces: one label. */
		stream_label *last =
			&s->labels[(s->nlabels - 1) % PROTO_STREAM_LABELS_MAX];
		if (last->to == from && strcmp(last->name, label) == 0) {
			last->to = to;
			return;
		}
	}
	stream_label *l = &s->labels[s->nlabels++ % PROTO_STREAM_LABELS_MAX];
	l->from = from;
	l->to = to;
	snprintf(l->name, sizeof(l->name), "%s", label);
}

/* Appends " tls=A,B" for the labels over data offsets [from, to). */
static void label_info(const proto_stream *s, int64_t from, int64_t to,
		       char *buf, size_t n)
{
	size_t k = strlen(buf);
	int first = 1;
	uint64_t count = s->nlabels < PROTO_STREAM_LABELS_MAX
				 ? s->nlabels
				 : PROTO_STREAM_LABELS_MAX;
	uint64_t start = s->nlabels - count;
	for (uint64_t i = start; i < s->nlabels && k < n; i++) {
		const stream_label *l = &s->labels[i % PROTO_STREAM_LABELS_MAX];
		if ((int64_t)l->from >= to || (int64_t)l->to <= from) {
			continue;
		}
		/* one name once per segment */
		int dup = 0;
		for (uint64_t j = start; j < i && !dup; j++) {
			const stream_label *m =
				&s->labels[j % PROTO_STREAM_LABELS_MAX];
			dup = (int64_t)m->from < to && (int64_t)m->to > from &&
			      strcmp(m->name, l->name) == 0;
		}
		if (dup) {
			continue;
		}
		k += (size_t)snprintf(buf + k, n - k, "%s%s",
				      first ? " tls=" : ",", l->name);
		first = 0;
	}
}

int64_t proto_stream_send(proto_stream *s, sim_time now, const void *data,
			  size_t len)
{
	tick(s, now);
	if (s->fin_queued || s->st >= ST_RESET) {
		return SIM_ESTATE;
	}
	size_t n = proto_stream_sndbuf_free(s);
	n = len < n ? len : n;
	size_t at = (size_t)(s->queued % s->cfg.sndbuf);
	size_t first = n < s->cfg.sndbuf - at ? n : s->cfg.sndbuf - at;
	if (n > 0) {
		memcpy(s->sbuf + at, data, first);
		memcpy(s->sbuf, (const uint8_t *)data + first, n - first);
	}
	s->queued += (int64_t)n;
	return (int64_t)n;
}

int proto_stream_close_write(proto_stream *s, sim_time now)
{
	tick(s, now);
	if (s->st >= ST_RESET) {
		return SIM_ESTATE;
	}
	s->fin_queued = 1;
	return 0;
}

int proto_stream_close(proto_stream *s, sim_time now)
{
	tick(s, now);
	if (s->st == ST_SYN_SENT) {
		finish(s, ST_CLOSED);
		s->fin_queued = 0;
		s->forge_flags = 0;
		return 0;
	}
	return proto_stream_close_write(s, now);
}

void proto_stream_abort(proto_stream *s, sim_time now)
{
	tick(s, now);
	if (s->st == ST_CLOSED || s->st == ST_LISTEN) {
		s->st = ST_CLOSED;
	} else if (s->st < ST_RESET) {
		finish(s, ST_RESET);
		s->rst_pending = s->snd_max > 0 || s->rcv_nxt > 0;
		s->forge_flags = 0;
	}
}

/* The note of a forged segment (which acknowledges nothing of ours). */
static const char FORGED[] = " forged";

/* Builds a segment at send offset |off| with |len| bytes of the send
 * buffer; |note| is appended to info (" rtx", FORGED or ""). */
static sim_packet *make_seg(proto_stream *s, sim_time now, int64_t off,
			    uint8_t flags, int64_t len, const char *note)
{
	sim_packet *p = sim_packet_new(NULL, PROTO_STREAM_HDR + (size_t)len);
	if (p == NULL) {
		return NULL;
	}
	uint8_t *h = p->data;
	put16(h, s->cfg.local_port);
	put16(h + 2, s->cfg.remote_port);
	put32(h + 4, s->cfg.isn + (uint32_t)off);
	put32(h + 8, flags & F_ACK ? s->irs + (uint32_t)s->rcv_nxt : 0);
	h[12] = 7 << 4;
	h[13] = flags;
	put16(h + 14, s->rcv_wnd);
	h[20] = OPT_KIND;
	h[21] = OPT_LEN;
	put16(h + 22, OPT_EXID);
	for (int64_t i = 0; i < len; i++) { /* stream byte off - 1 + i */
		h[PROTO_STREAM_HDR + i] =
			s->sbuf[(off - 1 + i) % s->cfg.sndbuf];
	}
	proto_stream_seal(&s->cfg, h, p->len);
	const char *type = flags & F_RST   ? "RST"
			   : flags & F_SYN ? (flags & F_ACK ? "SYN-ACK" : "SYN")
			   : len > 0 ? (flags & F_FIN ? "DATA-FIN" : "DATA")
			   : flags & F_FIN ? "FIN"
					   : "ACK";
	p->proto = "tcp";
	snprintf(p->ptype, sizeof(p->ptype), "%s", type);
	snprintf(p->info, sizeof(p->info), "seq=%lld ack=%lld len=%lld%s",
		 (long long)off,
		 (long long)(flags & F_ACK ? s->rcv_nxt : 0), (long long)len,
		 note);
	if (len > 0) {
		label_info(s, off - 1, off - 1 + len, p->info,
			   sizeof(p->info));
	}
	p->sent_ns = now;
	s->stats.segs_sent++;
	if ((flags & F_ACK) && note != FORGED) {
		s->ack_pending = 0;
	}
	return p;
}

/* Books the transmission of send offsets [off, off + n) and tells whether
 * it is a retransmission. */
static int book(proto_stream *s, sim_time now, int64_t off, int64_t n)
{
	int rtx = off < s->snd_max;
	s->snd_nxt = off + n;
	s->snd_max = max64(s->snd_max, s->snd_nxt);
	s->stats.retransmits += (uint64_t)rtx;
	if (s->deadline_ns == SIM_TIME_MAX) {
		s->deadline_ns = now + s->rto_ns;
	}
	return rtx;
}

/* The next data and/or FIN segment within the window, or NULL when there
 * is none. A segment blackholed by a cut is booked as sent and *skipped is
 * set, so the caller asks again. */
static sim_packet *data_seg(proto_stream *s, sim_time now, int *skipped)
{
	int64_t end = 1 + s->queued; /* offset just after the last byte */
	int64_t off = s->snd_nxt;
	int64_t limit = min64(s->cfg.window, s->peer_wnd);
	int64_t room = s->snd_una + limit - off;
	int64_t len = max64(0, min64(min64(end - off, s->cfg.mss), room));
	for (uint32_t i = 0; i < s->cfg.nsplit; i++) {
		/* data offset k is sequence offset 1 + k */
		int64_t cut = 1 + (int64_t)s->cfg.split_at[i];
		if (cut > off && cut < off + len) {
			len = cut - off;
			break;
		}
	}
	int fin = s->fin_queued && off + len == end && len < room;
	*skipped = 0;
	if ((len == 0 && !fin) || (s->probing && off > s->snd_una)) {
		return NULL;
	}
	s->stats.bytes_sent += (uint64_t)max64(0, off + len - s->snd_max);
	const char *note = book(s, now, off, len + fin) ? " rtx" : "";
	uint8_t flags =
		(uint8_t)(F_ACK | (len > 0 ? F_PSH : 0) | (fin ? F_FIN : 0));
	if (s->cut_flags && off + len + fin > s->cut_seq) {
		if (off <= s->cut_seq) {
			s->forge_flags = s->cut_flags;
			s->forge_seq = s->cut_seq;
		}
		if (off >= s->cut_seq) {
			*skipped = 1;
			return NULL;
		}
		len = s->cut_seq - off;
		flags &= (uint8_t)~F_FIN;
	}
	return make_seg(s, now, off, flags, len, note);
}

sim_packet *proto_stream_output(proto_stream *s, sim_time now)
{
	tick(s, now);
	/* Each blackholed segment advances snd_nxt within the window, so the
	 * loop ends. */
	for (;;) {
		if (s->rst_pending) {
			s->rst_pending = 0;
			uint8_t ack = s->rcv_nxt > 0 ? F_ACK : 0;
			return make_seg(s, now, s->snd_max, F_RST | ack, 0, "");
		}
		if (s->forge_flags) {
			uint8_t f = s->forge_flags;
			s->forge_flags = 0;
			s->stats.forged++;
			return make_seg(s, now, s->forge_seq, f | F_ACK, 0,
					FORGED);
		}
		if ((s->st == ST_SYN_SENT || s->st == ST_SYN_RCVD) &&
		    s->snd_nxt == 0) {
			uint8_t ack = s->st == ST_SYN_RCVD ? F_ACK : 0;
			const char *note = book(s, now, 0, 1) ? " rtx" : "";
			return make_seg(s, now, 0, F_SYN | ack, 0, note);
		}
		if (s->st == ST_OPEN) {
			int skipped;
			sim_packet *p = data_seg(s, now, &skipped);
			if (skipped) {
				continue;
			}
			if (p != NULL) {
				return p;
			}
		}
		if (s->ack_pending) {
			return make_seg(s, now, s->snd_nxt, F_ACK, 0, "");
		}
		return NULL;
	}
}

sim_time proto_stream_expiry(const proto_stream *s)
{
	return s->deadline_ns;
}

void proto_stream_timeout(proto_stream *s, sim_time now)
{
	tick(s, now);
	if (now < s->deadline_ns) {
		return;
	}
	s->stats.timeouts++;
	if (s->backoffs >= s->cfg.max_retries) {
		finish(s, ST_FAILED);
		if (s->cb.error != NULL) {
			s->cb.error(s->ud, now, "timeout");
		}
		return;
	}
	s->backoffs++;
	s->rto_ns = s->rto_ns > s->cfg.rto_max_ns / 2 ? s->cfg.rto_max_ns
						       : s->rto_ns * 2;
	s->deadline_ns = now + s->rto_ns;
	s->snd_nxt = s->snd_una; /* go back N */
	s->probing = 1;
}

static void on_reset(proto_stream *s, sim_time now)
{
	finish(s, ST_RESET);
	if (s->cb.reset != NULL) {
		s->cb.reset(s->ud, now);
	}
}

/* Validates a received segment into |g|; counts and returns 0 if bad. */
static int parse(proto_stream *s, const uint8_t *b, size_t len, seg *g)
{
	if (len < PROTO_STREAM_HDR || len > SEG_MAX) {
		s->stats.dropped_malformed++;
		return 0;
	}
	if (!proto_stream_sealed(&s->cfg, b, len)) {
		s->stats.dropped_corrupt++;
		return 0;
	}
	g->flags = b[13];
	if (b[12] >> 4 != 7 || b[20] != OPT_KIND || b[21] != OPT_LEN ||
	    get16(b + 22) != OPT_EXID || get16(b) != s->cfg.remote_port ||
	    get16(b + 2) != s->cfg.local_port ||
	    ((g->flags & F_SYN) && (g->flags & (F_FIN | F_RST)))) {
		s->stats.dropped_malformed++;
		return 0;
	}
	g->seq = get32(b + 4);
	g->ack = get32(b + 8);
	g->wnd = get16(b + 14);
	g->data = b + PROTO_STREAM_HDR;
	g->len = (int64_t)(len - PROTO_STREAM_HDR);
	return 1;
}

/* Processes the ACK field. Returns 0 if the rest of the segment must be
 * ignored (it acknowledges what was never sent, it does not acknowledge
 * our SYN in syn_received, or a callback ended the stream). */
static int on_ack(proto_stream *s, sim_time now, const seg *g)
{
	uint32_t d = g->ack - (s->cfg.isn + (uint32_t)s->snd_una);
	if (d > (uint64_t)(s->snd_max - s->snd_una)) {
		if ((int32_t)d > 0) {
			s->stats.dropped_out_of_window++;
			s->ack_pending |= g->len > 0 || (g->flags & F_FIN);
			return 0;
		}
		d = 0; /* an old ACK */
	}
	s->peer_wnd = g->wnd;
	if (d > 0) {
		int64_t before = acked_bytes(s), una = s->snd_una + d;
		int syn = s->snd_una == 0;
		s->snd_una = una;
		s->snd_nxt = max64(s->snd_nxt, una);
		s->stats.bytes_acked += (uint64_t)(acked_bytes(s) - before);
		s->fin_acked = s->fin_queued && una == s->queued + 2;
		s->backoffs = 0;
		s->probing = 0;
		s->rto_ns = s->cfg.rto_initial_ns;
		s->deadline_ns = una < s->snd_max ? now + s->rto_ns
						  : SIM_TIME_MAX;
		if (syn) {
			s->st = ST_OPEN;
			if (s->cb.connected != NULL) {
				s->cb.connected(s->ud, now);
			}
		}
		if (s->st == ST_OPEN && (!syn || d > 1) &&
		    una == 1 + s->queued + s->fin_queued &&
		    s->cb.acked_all != NULL) {
			s->cb.acked_all(s->ud, now);
		}
	}
	if (s->st == ST_SYN_RCVD) {
		s->stats.dropped_out_of_window++;
	}
	return s->st == ST_OPEN;
}

static int have_get(const proto_stream *s, size_t k)
{
	return s->have[k >> 3] >> (k & 7) & 1;
}

static void have_put(proto_stream *s, size_t k, int v)
{
	uint8_t bit = (uint8_t)(1u << (k & 7));
	s->have[k >> 3] = v ? s->have[k >> 3] | bit : s->have[k >> 3] & ~bit;
}

/* Hands the in-order bytes, then the peer's FIN, to the owner. */
static void deliver(proto_stream *s, sim_time now)
{
	while (s->st == ST_OPEN) {
		int64_t end = s->peer_fin >= 0 ? s->peer_fin : INT64_MAX;
		size_t k = (size_t)(s->rcv_nxt % s->rcv_wnd), n = 0;
		while (k + n < s->rcv_wnd && s->rcv_nxt + (int64_t)n < end &&
		       have_get(s, k + n)) {
			have_put(s, k + n, 0);
			n++;
		}
		if (n > 0) {
			s->rcv_nxt += (int64_t)n;
			s->stats.bytes_received += n;
			if (s->cb.recv != NULL) {
				s->cb.recv(s->ud, now, s->rbuf + k, n);
			}
			continue;
		}
		if (s->rcv_nxt == s->peer_fin) {
			s->rcv_nxt++;
			if (s->cb.fin != NULL) {
				s->cb.fin(s->ud, now);
			}
		}
		return;
	}
}

/* Takes the payload and FIN of a segment at peer offset |off|. */
static void on_data(proto_stream *s, sim_time now, int64_t off, const seg *g)
{
	int64_t wnd_end = s->rcv_nxt + s->rcv_wnd, seg_end = off + g->len;
	int fresh = 0;
	if (g->len == 0 && !(g->flags & F_FIN)) {
		return; /* a pure ACK is not acknowledged */
	}
	s->ack_pending = 1;
	/* A FIN needs no buffer space: one just past the window (the peer
	 * sent a full window) is taken. */
	if ((g->flags & F_FIN) && s->peer_fin < 0 && seg_end >= s->rcv_nxt &&
	    seg_end <= wnd_end) {
		s->peer_fin = seg_end;
		fresh = 1;
	}
	int64_t lim = s->peer_fin >= 0 ? min64(s->peer_fin, wnd_end) : wnd_end;
	for (int64_t o = max64(off, s->rcv_nxt); o < min64(seg_end, lim); o++) {
		size_t k = (size_t)(o % s->rcv_wnd);
		if (!have_get(s, k)) {
			have_put(s, k, 1);
			s->rbuf[k] = g->data[o - off];
			fresh = 1;
		}
	}
	if (seg_end > wnd_end || (s->peer_fin >= 0 && seg_end > s->peer_fin)) {
		s->stats.dropped_out_of_window++;
	} else if (!fresh) {
		s->stats.dropped_duplicate++;
	} else if (off > s->rcv_nxt) {
		s->stats.ooo_buffered++;
	}
	deliver(s, now);
}

void proto_stream_input(proto_stream *s, sim_time now, const uint8_t *b,
			size_t len)
{
	seg g;
	tick(s, now);
	s->stats.segs_received++;
	if (!parse(s, b, len, &g)) {
		return;
	}
	if (s->st == ST_LISTEN) {
		if (g.flags & (F_ACK | F_RST) || !(g.flags & F_SYN)) {
			s->stats.dropped_out_of_window++;
			return;
		}
		s->irs = g.seq;
		s->rcv_nxt = 1;
		s->peer_wnd = g.wnd;
		s->st = ST_SYN_RCVD;
		return;
	}
	if (s->st == ST_SYN_SENT) {
		if (!(g.flags & F_ACK) || g.ack != s->cfg.isn + 1 ||
		    s->snd_max == 0 ||
		    !(g.flags & (F_SYN | F_RST))) {
			s->stats.dropped_out_of_window++;
		} else if (g.flags & F_RST) {
			on_reset(s, now);
		} else {
			s->irs = g.seq;
			s->rcv_nxt = 1;
			s->ack_pending = 1;
			on_ack(s, now, &g);
		}
		return;
	}
	if (s->st != ST_SYN_RCVD && s->st != ST_OPEN) {
		return;
	}
	int64_t off = s->rcv_nxt +
		      (int32_t)(g.seq - (s->irs + (uint32_t)s->rcv_nxt));
	if (g.flags & F_RST) {
		if (off >= s->rcv_nxt && off < s->rcv_nxt + s->rcv_wnd) {
			on_reset(s, now);
		} else {
			s->stats.dropped_out_of_window++;
		}
		return;
	}
	if (g.flags & F_SYN) {
		/* A retransmitted SYN or SYN-ACK: our answer was lost. */
		s->stats.dropped_duplicate++;
		if (s->st == ST_SYN_RCVD && g.seq == s->irs) {
			s->snd_nxt = 0;
		} else {
			s->ack_pending = 1;
		}
		return;
	}
	if (!(g.flags & F_ACK)) {
		s->stats.dropped_malformed++;
		return;
	}
	if (on_ack(s, now, &g)) {
		on_data(s, now, off, &g);
	}
}

const char *proto_stream_state(const proto_stream *s)
{
	if (s->st != ST_OPEN) {
		return state_names[s->st];
	}
	int peer_fin = s->peer_fin >= 0 && s->rcv_nxt > s->peer_fin;
	if (!s->fin_queued) {
		return peer_fin ? "close_wait" : "established";
	}
	if (!peer_fin) {
		return "fin_wait";
	}
	return s->fin_acked ? "done" : "closing";
}

static uint8_t attack_flags(const char *kind)
{
	if (kind != NULL && strcmp(kind, "fin") == 0) {
		return F_FIN;
	}
	if (kind != NULL && strcmp(kind, "rst") == 0) {
		return F_RST;
	}
	return 0;
}

int proto_stream_forge(proto_stream *s, sim_time now, const char *kind)
{
	tick(s, now);
	uint8_t f = attack_flags(kind);
	if (f == 0) {
		return SIM_EINVAL;
	}
	if (s->st != ST_SYN_RCVD && s->st != ST_OPEN) {
		return SIM_ESTATE;
	}
	if (s->forge_flags) {
		return SIM_ELIMIT;
	}
	s->forge_flags = f;
	s->forge_seq = s->snd_max;
	return 0;
}

int proto_stream_cut(proto_stream *s, uint64_t offset, const char *kind)
{
	uint8_t f = attack_flags(kind);
	if (f == 0) {
		return SIM_EINVAL;
	}
	if (offset > (uint64_t)INT64_MAX - 2 ||
	    1 + (int64_t)offset < s->snd_max) {
		return SIM_ESTATE;
	}
	s->cut_flags = f;
	s->cut_seq = 1 + (int64_t)offset;
	return 0;
}

void proto_stream_get_stats(const proto_stream *s, proto_stream_stats *out)
{
	*out = s->stats;
}

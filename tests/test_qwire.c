/* The QUIC v1 wire format: RFC 9000 appendix A vectors (varints, packet
 * numbers), RFC 9001 A.2's client Initial header byte for byte, header and
 * frame round trips, every rejection the parser documents, and a seeded
 * fuzz loop over random and mutated inputs through the harness the
 * libFuzzer target uses (tests/fuzz/qwire_fuzz.c). Inputs are copied into
 * buffers of their exact size so AddressSanitizer sees any over-read. */
#include <dirent.h>
#include <stdlib.h>

#include "proto/quic_wire.h"
#include "sim/rng.h"
#include "tests/fuzz/qwire_fuzz.h"
#include "tests/unit.h"

#define FEE PROTO_QWIRE_FRAME_ENCODING_ERROR
#define PV PROTO_QWIRE_PROTOCOL_VIOLATION
#define VMAX PROTO_QWIRE_VARINT_MAX
#define FRAMES_MAX 64
#define DGRAM_MAX 4096
#define FUZZ_ROUNDS 100000
#define FUZZ_LEN_MAX 2048

static const uint8_t dcid8[8] = {0x83, 0x94, 0xc8, 0xf0,
				 0x3e, 0x51, 0x57, 0x08};
static const uint8_t scid5[5] = {0xf0, 0x67, 0xa5, 0x50, 0x2a};
static const uint8_t token12[12] = "retry-token!";
static const uint8_t bytes[256] = "0123456789abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Parses one frame from a heap copy of exactly |len| bytes of |in|, so
 * that reading one byte too far trips ASan. |*f| points into the copy,
 * which the caller frees. */
static uint8_t *parse_copy(const uint8_t *in, size_t len, proto_qwire_frame *f,
			   size_t *used, uint64_t *err)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	memcpy(copy, in, len);
	const uint8_t *p = copy;
	*err = proto_qwire_frame_parse(&p, copy + len, f);
	*used = (size_t)(p - copy);
	return copy;
}

static uint64_t parse_bytes(const uint8_t *in, size_t len)
{
	proto_qwire_frame f;
	size_t used;
	uint64_t err;
	free(parse_copy(in, len, &f, &used, &err));
	return err;
}

static proto_qwire_frame *add(proto_qwire_frame *fs, size_t *n, uint64_t type)
{
	proto_qwire_frame *f = &fs[(*n)++];
	memset(f, 0, sizeof(*f));
	f->type = type;
	return f;
}

static void set_stream(proto_qwire_frame *f, uint64_t id, uint64_t offset,
		       size_t len, int fin)
{
	f->u.stream.id = id;
	f->u.stream.offset = offset;
	f->u.stream.data = bytes;
	f->u.stream.len = len;
	f->u.stream.fin = fin;
}

/* One frame of every RFC 9000 type, several of some; |with_padding| 0
 * leaves PADDING out (a cut inside a run of padding is still padding). */
static size_t sample_frames(proto_qwire_frame *fs, int with_padding)
{
	size_t n = 0;
	proto_qwire_frame *f;
	if (with_padding) {
		add(fs, &n, 0x00)->padding_len = 3;
	}
	add(fs, &n, 0x01);
	f = add(fs, &n, 0x02);
	f->u.ack.delay = 5;
	f->u.ack.nranges = 3;
	f->u.ack.ranges[0] = (proto_qwire_ack_range){90, 100};
	f->u.ack.ranges[1] = (proto_qwire_ack_range){50, 80};
	f->u.ack.ranges[2] = (proto_qwire_ack_range){0, 10};
	f->u.ack.largest = 100;
	f = add(fs, &n, 0x03);
	f->u.ack.nranges = 1;
	f->u.ack.ect0 = 1;
	f->u.ack.ect1 = 2;
	f->u.ack.ce = 3;
	f = add(fs, &n, 0x04);
	f->u.other.a = 4;
	f->u.other.b = 0x100;
	f->u.other.c = 1000000;
	f = add(fs, &n, 0x05);
	f->u.other.a = 8;
	f->u.other.b = 7;
	f = add(fs, &n, 0x06);
	f->u.crypto.data = bytes;
	f->u.crypto.len = 20;
	f = add(fs, &n, 0x06);
	f->u.crypto.offset = 70000;
	f->u.crypto.data = bytes + 20;
	f->u.crypto.len = 5;
	f = add(fs, &n, 0x07);
	f->u.other.data = bytes;
	f->u.other.len = 16;
	set_stream(add(fs, &n, 0x0a), 0, 0, 10, 0);
	set_stream(add(fs, &n, 0x0f), 4, 100, 0, 1);
	set_stream(add(fs, &n, 0x0e), VMAX, VMAX - 1, 1, 0);
	set_stream(add(fs, &n, 0x0b), 1, 0, 0, 1);
	add(fs, &n, 0x10)->u.other.a = VMAX;
	f = add(fs, &n, 0x11);
	f->u.other.a = 4;
	f->u.other.b = 65536;
	add(fs, &n, 0x12)->u.other.a = 100;
	add(fs, &n, 0x13)->u.other.a = UINT64_C(1) << 60;
	add(fs, &n, 0x14)->u.other.a = 1u << 20;
	f = add(fs, &n, 0x15);
	f->u.other.b = 5;
	add(fs, &n, 0x16)->u.other.a = UINT64_C(1) << 60;
	add(fs, &n, 0x17);
	f = add(fs, &n, 0x18);
	f->u.other.a = 5;
	f->u.other.b = 3;
	f->u.other.data = bytes + 40;
	f->u.other.len = 20;
	f->u.other.reset_token = bytes + 100;
	add(fs, &n, 0x19)->u.other.a = 2;
	f = add(fs, &n, 0x1a);
	f->u.other.data = bytes + 8;
	f->u.other.len = 8;
	f = add(fs, &n, 0x1b);
	f->u.other.data = bytes + 8;
	f->u.other.len = 8;
	f = add(fs, &n, 0x1c);
	f->u.close.error = PV;
	f->u.close.frame_type = 0x06;
	f->u.close.reason = (const uint8_t *)"bad frame";
	f->u.close.reason_len = 9;
	add(fs, &n, 0x1d)->u.close.error = 0x1234;
	add(fs, &n, 0x1e);
	return n;
}

/* Writes |n| frames back to back; |ends|, if not NULL, gets where each
 * ends. Returns the total, or 0 if one did not fit. */
static size_t write_frames(uint8_t *buf, size_t cap,
			   const proto_qwire_frame *fs, size_t n, size_t *ends)
{
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = proto_qwire_frame_write(buf + at, cap - at, &fs[i]);
		if (k == 0) {
			return 0;
		}
		at += k;
		if (ends != NULL) {
			ends[i] = at;
		}
	}
	return at;
}

/* A packet of |type| with |payload| after the packet number |pn| (2 bytes,
 * unprotected, no AEAD tag): Initial carries token12, long headers
 * dcid8/scid5, 1-RTT dcid8 and key phase 1. Returns its size. */
static size_t write_packet(uint8_t *buf, size_t cap, int type, uint64_t pn,
			   const uint8_t *payload, size_t plen)
{
	size_t h;
	if (type == PROTO_QWIRE_1RTT) {
		h = proto_qwire_write_short_header(buf, cap, dcid8, 8, 1, pn,
						   2);
	} else {
		int initial = type == PROTO_QWIRE_INITIAL;
		h = proto_qwire_write_long_header(
		    buf, cap, type, PROTO_QWIRE_VERSION_1, dcid8, 8, scid5, 5,
		    initial ? token12 : NULL, initial ? 12 : 0, pn, 2, plen);
	}
	if (h == 0 || cap - h < plen) {
		return 0;
	}
	memcpy(buf + h, payload, plen);
	return h + plen;
}

/* Initial (ACK, CRYPTO, PADDING) + Handshake (CRYPTO) + 1-RTT (every
 * sample frame) in one datagram; |sizes| gets the three packet sizes. */
static size_t write_datagram(uint8_t *buf, size_t cap, size_t sizes[3])
{
	proto_qwire_frame fs[FRAMES_MAX];
	uint8_t pl[DGRAM_MAX];
	size_t n = 0, at = 0;
	proto_qwire_frame *f = add(fs, &n, 0x02);
	f->u.ack.nranges = 1;
	f->u.ack.ranges[0] = (proto_qwire_ack_range){0, 3};
	f = add(fs, &n, 0x06);
	f->u.crypto.data = bytes;
	f->u.crypto.len = 120;
	add(fs, &n, 0x00)->padding_len = 900;
	size_t plen = write_frames(pl, sizeof(pl), fs, n, NULL);
	sizes[0] = write_packet(buf, cap, PROTO_QWIRE_INITIAL, 0, pl, plen);
	at += sizes[0];
	n = 0;
	f = add(fs, &n, 0x06);
	f->u.crypto.offset = 120;
	f->u.crypto.data = bytes;
	f->u.crypto.len = 200;
	plen = write_frames(pl, sizeof(pl), fs, n, NULL);
	sizes[1] = write_packet(buf + at, cap - at, PROTO_QWIRE_HANDSHAKE, 1,
				pl, plen);
	at += sizes[1];
	n = sample_frames(fs, 1);
	plen = write_frames(pl, sizeof(pl), fs, n, NULL);
	sizes[2] =
	    write_packet(buf + at, cap - at, PROTO_QWIRE_1RTT, 2, pl, plen);
	return at + sizes[2];
}

TEST(qwire_varint_rfc_examples)
{
	/* RFC 9000 A.1 */
	static const struct {
		const char *hex;
		uint64_t v;
	} ex[] = {{"\xc2\x19\x7c\x5e\xff\x14\xe8\x8c", 151288809941952652u},
		  {"\x9d\x7f\x3e\x7d", 494878333},
		  {"\x7b\xbd", 15293},
		  {"\x25", 37},
		  {"\x40\x25", 37}};
	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		size_t n = (size_t)1 << ((uint8_t)ex[i].hex[0] >> 6);
		const uint8_t *in = (const uint8_t *)ex[i].hex, *p = in;
		uint64_t v = 0;
		CHECK_INT(proto_qwire_varint_get(&p, in + n, &v), 0);
		CHECK_U64(v, ex[i].v);
		CHECK(p == in + n);
		if (i < 4) { /* the shortest encodings */
			uint8_t out[8];
			CHECK_INT(proto_qwire_varint_len(v), n);
			CHECK(proto_qwire_varint_put(out, v) == out + n);
			CHECK(memcmp(out, in, n) == 0);
		}
	}
}

TEST(qwire_varint_boundaries)
{
	static const struct {
		uint64_t v;
		size_t len;
	} b[] = {{0, 1},
		 {63, 1},
		 {64, 2},
		 {16383, 2},
		 {16384, 4},
		 {(UINT64_C(1) << 30) - 1, 4},
		 {UINT64_C(1) << 30, 8},
		 {VMAX, 8},
		 {VMAX + 1, 0},
		 {UINT64_MAX, 0}};
	for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		CHECK_INT(proto_qwire_varint_len(b[i].v), b[i].len);
		if (b[i].len == 0) {
			continue;
		}
		uint8_t out[8];
		uint8_t *e = proto_qwire_varint_put(out, b[i].v);
		REQUIRE(e == out + b[i].len);
		/* Every strict prefix is truncated and moves nothing. */
		for (size_t cut = 0; cut < b[i].len; cut++) {
			const uint8_t *p = out;
			uint64_t v = 12345;
			CHECK_INT(proto_qwire_varint_get(&p, out + cut, &v),
				  -1);
			CHECK(p == out && v == 12345);
		}
		const uint8_t *p = out;
		uint64_t v;
		CHECK_INT(proto_qwire_varint_get(&p, e, &v), 0);
		CHECK_U64(v, b[i].v);
		CHECK(p == e);
	}
}

TEST(qwire_pn_rfc_examples)
{
	/* RFC 9000 A.2: 0xabe8b3 acknowledged. */
	CHECK_INT(proto_qwire_pn_len(0xac5c02, 0xabe8b3), 2);
	CHECK_INT(proto_qwire_pn_len(0xace8fe, 0xabe8b3), 3);
	/* RFC 9000 A.3 */
	CHECK_U64(proto_qwire_pn_decode(0xa82f30ea, 0x9b32, 2), 0xa82f9b32);
	/* Nothing acknowledged: the whole number counts. */
	CHECK_INT(proto_qwire_pn_len(0, -1), 1);
	CHECK_INT(proto_qwire_pn_len(127, -1), 1);
	CHECK_INT(proto_qwire_pn_len(128, -1), 2);
	CHECK_INT(proto_qwire_pn_len((UINT64_C(1) << 31) - 1, -1), 4);
	CHECK_INT(proto_qwire_pn_len(UINT64_C(1) << 31, -1), 0);
	CHECK_INT(proto_qwire_pn_len(UINT64_C(1) << 31, 0), 4);
	CHECK_INT(proto_qwire_pn_len((UINT64_C(1) << 31) + 1, 0), 0);
	/* Exactly 2^(8n-1) packets outstanding still fit n bytes. */
	CHECK_INT(proto_qwire_pn_len(1000 + 128, 1000), 1);
	CHECK_INT(proto_qwire_pn_len(1000 + 129, 1000), 2);
	CHECK_INT(proto_qwire_pn_len(1000 + 32768, 1000), 2);
	CHECK_INT(proto_qwire_pn_len(1000 + 32769, 1000), 3);
	/* Not after the acknowledged one, or not a packet number. */
	CHECK_INT(proto_qwire_pn_len(5, 5), 0);
	CHECK_INT(proto_qwire_pn_len(4, 5), 0);
	CHECK_INT(proto_qwire_pn_len(VMAX + 1, -1), 0);
	/* Decoding at the edges of the window and of the space. */
	CHECK_U64(proto_qwire_pn_decode(-1, 0, 1), 0);
	CHECK_U64(proto_qwire_pn_decode(-1, 0xff, 1), 0xff);
	CHECK_U64(proto_qwire_pn_decode(0xff, 0x00, 1), 0x100);
	CHECK_U64(proto_qwire_pn_decode(0x17f, 0x00, 1), 0x200);
	CHECK_U64(proto_qwire_pn_decode(0x17e, 0x00, 1), 0x100);
	CHECK_U64(proto_qwire_pn_decode(VMAX - 1, 0xff, 1), VMAX);
}

/* Encode with pn_len, truncate, decode from anywhere between the largest
 * acknowledged and the packet before: always the same number back. */
TEST(qwire_pn_roundtrip_property)
{
	sim_rng r;
	sim_rng_init(&r, 1, "qwire/pn");
	for (int64_t la = -1; la < 300; la++) {
		for (uint64_t pn = (uint64_t)(la + 1); pn < (uint64_t)la + 300;
		     pn++) {
			size_t n = proto_qwire_pn_len(pn, la);
			uint64_t mask = (UINT64_C(1) << (8 * n)) - 1;
			CHECK_U64(proto_qwire_pn_decode(la, pn & mask, n), pn);
			CHECK_U64(proto_qwire_pn_decode((int64_t)pn - 1,
							pn & mask, n),
				  pn);
		}
	}
	for (int i = 0; i < 200000; i++) {
		int scale = (int)sim_rng_below(&r, 62);
		int64_t la = i % 17 == 0
				 ? -1
				 : (int64_t)(sim_rng_next(&r) >> (2 + scale));
		uint64_t gap =
		    1 + (sim_rng_next(&r) >> (32 + sim_rng_below(&r, 32)));
		uint64_t pn = (uint64_t)(la < 0 ? 0 : la) + gap - (la < 0);
		if (pn > VMAX) {
			continue;
		}
		size_t n = proto_qwire_pn_len(pn, la);
		uint64_t outstanding = la < 0 ? pn + 1 : gap;
		if (outstanding > UINT64_C(1) << 31) {
			CHECK_INT(n, 0);
			continue;
		}
		REQUIRE(n >= 1 && n <= 4);
		if (n > 1) { /* and no shorter encoding would do */
			CHECK(outstanding > UINT64_C(1) << (8 * n - 9));
		}
		uint64_t mask = (UINT64_C(1) << (8 * n)) - 1;
		int64_t lo = la, hi = (int64_t)pn - 1;
		int64_t mid =
		    lo + (int64_t)sim_rng_below(&r, (uint64_t)(hi - lo) + 1);
		CHECK_U64(proto_qwire_pn_decode(lo, pn & mask, n), pn);
		CHECK_U64(proto_qwire_pn_decode(hi, pn & mask, n), pn);
		CHECK_U64(proto_qwire_pn_decode(mid, pn | ~mask, n), pn);
	}
}

TEST(qwire_header_rfc9001_client_initial)
{
	/* RFC 9001 A.2: the unprotected header of the client Initial, its
	 * 1162 bytes of frames plus the 16-byte tag after packet number 2. */
	static const uint8_t want[] = {
	    0xc3, 0x00, 0x00, 0x00, 0x01, 0x08, 0x83, 0x94, 0xc8, 0xf0, 0x3e,
	    0x51, 0x57, 0x08, 0x00, 0x00, 0x44, 0x9e, 0x00, 0x00, 0x00, 0x02};
	uint8_t dgram[1200];
	memset(dgram, 0, sizeof(dgram));
	size_t n = proto_qwire_write_long_header(
	    dgram, sizeof(dgram), PROTO_QWIRE_INITIAL, PROTO_QWIRE_VERSION_1,
	    dcid8, 8, NULL, 0, NULL, 0, 2, 4, 1162 + 16);
	CHECK_INT(n, sizeof(want));
	CHECK(memcmp(dgram, want, sizeof(want)) == 0);
	CHECK_INT(
	    proto_qwire_long_header_size(PROTO_QWIRE_INITIAL, 8, 0, 0, 4, 1178),
	    sizeof(want));
	/* Its payload starts with a CRYPTO frame of 241 bytes at 0. */
	proto_qwire_frame f = {.type = 0x06};
	f.u.crypto.data = bytes;
	f.u.crypto.len = 241;
	CHECK_INT(proto_qwire_frame_write(dgram + n, sizeof(dgram) - n, &f),
		  245);
	CHECK(memcmp(dgram + n, "\x06\x00\x40\xf1", 4) == 0);
	proto_qwire_hdr h;
	REQUIRE(proto_qwire_parse_header(dgram, sizeof(dgram), 0, &h) == 0);
	CHECK_INT(h.type, PROTO_QWIRE_INITIAL);
	CHECK_INT(h.first, 0xc3);
	CHECK_INT(h.dcid_len, 8);
	CHECK(memcmp(h.dcid, dcid8, 8) == 0);
	CHECK_INT(h.scid_len, 0);
	CHECK_INT(h.token_len, 0);
	CHECK_INT(h.pn_offset, 18);
	CHECK_INT(h.length, 0x049e);
	CHECK_INT(h.packet_len, 1200);
	char sum[128];
	CHECK_INT(proto_qwire_summarize(dgram + 22, 1162, sum, sizeof(sum)), 0);
	CHECK_STR(sum, "CRYPTO(0+241),PADDING(917)");
}

TEST(qwire_header_initial_roundtrip)
{
	uint8_t buf[200];
	memset(buf, 0xee, sizeof(buf));
	size_t want = 1 + 4 + 1 + 8 + 1 + 5 + 1 + 12 + 1 + 2;
	CHECK_INT(
	    proto_qwire_long_header_size(PROTO_QWIRE_INITIAL, 8, 5, 12, 2, 50),
	    want);
	size_t n = proto_qwire_write_long_header(
	    buf, sizeof(buf), PROTO_QWIRE_INITIAL, PROTO_QWIRE_VERSION_1, dcid8,
	    8, scid5, 5, token12, 12, 0x51234, 2, 50);
	REQUIRE(n == want);
	CHECK_INT(buf[0], 0xc1);
	CHECK(buf[n - 2] == 0x12 && buf[n - 1] == 0x34);
	/* Every cap below the size writes nothing. */
	for (size_t cap = 0; cap < want; cap++) {
		uint8_t small[64];
		CHECK_INT(proto_qwire_write_long_header(
			      small, cap, PROTO_QWIRE_INITIAL,
			      PROTO_QWIRE_VERSION_1, dcid8, 8, scid5, 5,
			      token12, 12, 0x51234, 2, 50),
			  0);
	}
	proto_qwire_hdr h;
	REQUIRE(proto_qwire_parse_header(buf, n + 50, 0, &h) == 0);
	CHECK_INT(h.type, PROTO_QWIRE_INITIAL);
	CHECK_U64(h.version, PROTO_QWIRE_VERSION_1);
	CHECK(h.dcid_len == 8 && memcmp(h.dcid, dcid8, 8) == 0);
	CHECK(h.scid_len == 5 && memcmp(h.scid, scid5, 5) == 0);
	CHECK(h.token == buf + 21 && h.token_len == 12);
	CHECK_INT(h.pn_offset, n - 2);
	CHECK_INT(h.length, 52);
	CHECK_INT(h.packet_len, n + 50);
	CHECK_U64(proto_qwire_pn_decode(
		      0x51200, buf[h.pn_offset] << 8 | buf[h.pn_offset + 1],
		      (size_t)(h.first & 3) + 1),
		  0x51234);
	/* A larger payload takes a two-byte Length. */
	CHECK_INT(
	    proto_qwire_long_header_size(PROTO_QWIRE_INITIAL, 8, 5, 12, 2, 62),
	    want + 1);
	/* Datagram space after the packet is not part of it. */
	REQUIRE(proto_qwire_parse_header(buf, sizeof(buf), 0, &h) == 0);
	CHECK_INT(h.packet_len, n + 50);
}

TEST(qwire_header_handshake_0rtt_1rtt)
{
	uint8_t buf[300];
	proto_qwire_hdr h;
	static const struct {
		int type;
		uint8_t first;
	} longs[] = {{PROTO_QWIRE_0RTT, 0xd3}, {PROTO_QWIRE_HANDSHAKE, 0xe3}};
	for (size_t i = 0; i < 2; i++) {
		size_t n = proto_qwire_write_long_header(
		    buf, sizeof(buf), longs[i].type, PROTO_QWIRE_VERSION_1,
		    dcid8, 8, scid5, 5, NULL, 0, 0xdeadbeef, 4, 200);
		REQUIRE(n == 1 + 4 + 1 + 8 + 1 + 5 + 2 + 4);
		CHECK_INT(buf[0], longs[i].first);
		REQUIRE(proto_qwire_parse_header(buf, n + 200, 0, &h) == 0);
		CHECK_INT(h.type, longs[i].type);
		CHECK(h.token == NULL && h.token_len == 0);
		CHECK_INT(h.length, 204);
		CHECK_INT(h.packet_len, n + 200);
		CHECK(memcmp(buf + h.pn_offset, "\xde\xad\xbe\xef", 4) == 0);
		/* Only Initial carries a token. */
		CHECK_INT(proto_qwire_write_long_header(
			      buf, sizeof(buf), longs[i].type,
			      PROTO_QWIRE_VERSION_1, dcid8, 8, scid5, 5,
			      token12, 12, 1, 1, 10),
			  0);
	}
	size_t n = proto_qwire_write_short_header(buf, sizeof(buf), dcid8, 8, 1,
						  0xabcdef, 3);
	REQUIRE(n == 12);
	CHECK_INT(buf[0], 0x46);
	CHECK(memcmp(buf + 9, "\xab\xcd\xef", 3) == 0);
	CHECK_INT(proto_qwire_write_short_header(buf, 11, dcid8, 8, 1, 1, 3),
		  0);
	CHECK_INT(
	    proto_qwire_write_short_header(buf, sizeof(buf), dcid8, 8, 0, 1, 1),
	    10);
	CHECK_INT(buf[0], 0x40);
	REQUIRE(proto_qwire_parse_header(buf, 40, 8, &h) == 0);
	CHECK_INT(h.type, PROTO_QWIRE_1RTT);
	CHECK(h.dcid_len == 8 && memcmp(h.dcid, dcid8, 8) == 0);
	CHECK_INT(h.pn_offset, 9);
	CHECK_INT(h.length, 31);
	CHECK_INT(h.packet_len, 40);
	/* Zero-length CIDs work both ways. */
	REQUIRE(proto_qwire_parse_header(buf, 40, 0, &h) == 0);
	CHECK(h.dcid_len == 0 && h.pn_offset == 1);
}

TEST(qwire_header_coalesced)
{
	uint8_t d[DGRAM_MAX];
	size_t sizes[3];
	size_t len = write_datagram(d, sizeof(d), sizes);
	REQUIRE(len > 0 && sizes[0] > 0 && sizes[1] > 0 && sizes[2] > 0);
	static const int types[] = {PROTO_QWIRE_INITIAL, PROTO_QWIRE_HANDSHAKE,
				    PROTO_QWIRE_1RTT};
	static const char *const sums[] = {
	    "ACK[0-3],CRYPTO(0+120),PADDING(900)", "CRYPTO(120+200)", NULL};
	size_t off = 0;
	int k = 0;
	while (off < len && k < 4) {
		proto_qwire_hdr h;
		REQUIRE(proto_qwire_parse_header(d + off, len - off, 8, &h) ==
			0);
		REQUIRE(k < 3);
		CHECK_INT(h.type, types[k]);
		CHECK_INT(h.packet_len, sizes[k]);
		size_t pn_len = (size_t)(h.first & 3) + 1;
		CHECK_U64(
		    proto_qwire_pn_decode(-1, d[off + h.pn_offset + 1], pn_len),
		    (uint64_t)k);
		char sum[128];
		CHECK_INT(proto_qwire_summarize(d + off + h.pn_offset + pn_len,
						h.length - pn_len, sum,
						sizeof(sum)),
			  0);
		if (sums[k] != NULL) {
			CHECK_STR(sum, sums[k]);
		}
		off += h.packet_len;
		k++;
	}
	CHECK_INT(k, 3);
	CHECK_INT(off, len);
}

TEST(qwire_header_version_neg_and_retry)
{
	uint8_t buf[128];
	proto_qwire_hdr h;
	static const uint32_t vs[] = {0x1a2a3a4a, PROTO_QWIRE_VERSION_1};
	size_t n = proto_qwire_write_version_neg(buf, sizeof(buf), scid5, 5,
						 dcid8, 8, vs, 2);
	REQUIRE(n == 7 + 5 + 8 + 8);
	CHECK_INT(buf[0], 0xc0);
	CHECK_INT(proto_qwire_write_version_neg(buf, n - 1, scid5, 5, dcid8, 8,
						vs, 2),
		  0);
	REQUIRE(proto_qwire_parse_header(buf, n, 0, &h) == 0);
	CHECK_INT(h.type, PROTO_QWIRE_VERSION_NEG);
	CHECK_U64(h.version, 0);
	CHECK(h.dcid_len == 5 && h.scid_len == 8);
	CHECK_INT(h.nversions, 2);
	CHECK(memcmp(h.versions, "\x1a\x2a\x3a\x4a\x00\x00\x00\x01", 8) == 0);
	CHECK(h.pn_offset == n - 8 && h.packet_len == n && h.length == 8);
	buf[0] = 0x80; /* the fixed bit does not matter here */
	CHECK_INT(proto_qwire_parse_header(buf, n, 0, &h), 0);
	CHECK_INT(proto_qwire_parse_header(buf, n - 1, 0, &h), -1);
	CHECK_INT(proto_qwire_parse_header(buf, n - 8, 0, &h), -1);

	n = proto_qwire_write_long_header(buf, sizeof(buf), PROTO_QWIRE_RETRY,
					  PROTO_QWIRE_VERSION_1, dcid8, 8,
					  scid5, 5, token12, 12, 99, 4, 1000);
	REQUIRE(n == 1 + 4 + 1 + 8 + 1 + 5 + 12);
	CHECK_INT(buf[0], 0xf0);
	memset(buf + n, 0x77, PROTO_QWIRE_RETRY_TAG_LEN);
	REQUIRE(proto_qwire_parse_header(buf, n + 16, 0, &h) == 0);
	CHECK_INT(h.type, PROTO_QWIRE_RETRY);
	CHECK(h.token == buf + 20 && h.token_len == 12);
	CHECK(h.pn_offset == n && h.length == 16 && h.packet_len == n + 16);
	/* A Retry without a token, or too short for its tag. */
	CHECK_INT(proto_qwire_parse_header(buf, 20 + 16, 0, &h), -1);
	CHECK_INT(proto_qwire_parse_header(buf, 20, 0, &h), -1);
	CHECK_INT(proto_qwire_write_long_header(buf, sizeof(buf),
						PROTO_QWIRE_RETRY,
						PROTO_QWIRE_VERSION_1, dcid8, 8,
						scid5, 5, NULL, 0, 0, 1, 0),
		  0);
}

TEST(qwire_header_rejects)
{
	uint8_t buf[128], cid21[21];
	memset(buf, 0, sizeof(buf));
	memset(cid21, 1, sizeof(cid21));
	proto_qwire_hdr h;
	CHECK_INT(proto_qwire_parse_header(buf, 0, 0, &h), -1);
	size_t n = proto_qwire_write_long_header(
	    buf, sizeof(buf), PROTO_QWIRE_INITIAL, PROTO_QWIRE_VERSION_1, dcid8,
	    8, scid5, 5, token12, 12, 7, 1, 20);
	memset(buf + n, 0, 20);
	/* Every cut up to the end of the packet number is malformed... */
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *copy = malloc(cut + 1);
		memcpy(copy, buf, cut);
		CHECK_INT(proto_qwire_parse_header(copy, cut, 0, &h), -1);
		CHECK(h.token == NULL && h.type == 0 && h.packet_len == 0);
		free(copy);
	}
	/* ...and so is a Length beyond the datagram. */
	CHECK_INT(proto_qwire_parse_header(buf, n + 19, 0, &h), -1);
	CHECK_INT(proto_qwire_parse_header(buf, n + 20, 0, &h), 0);
	uint8_t b[128];
	memcpy(b, buf, n + 20);
	b[0] &= (uint8_t)~0x40; /* fixed bit */
	CHECK_INT(proto_qwire_parse_header(b, n + 20, 0, &h), -1);
	memcpy(b, buf, n + 20);
	b[4] = 2; /* unknown version */
	CHECK_INT(proto_qwire_parse_header(b, n + 20, 0, &h), -1);
	memcpy(b, buf, n + 20);
	b[5] = 21; /* DCID length */
	CHECK_INT(proto_qwire_parse_header(b, n + 20, 0, &h), -1);
	memcpy(b, buf, n + 20);
	b[n - 2] = 0; /* Length 0 */
	CHECK_INT(proto_qwire_parse_header(b, n + 20, 0, &h), -1);
	/* Short headers: fixed bit, local CID length, no room for a pn. */
	b[0] = 0x00;
	CHECK_INT(proto_qwire_parse_header(b, 40, 8, &h), -1);
	b[0] = 0x40;
	CHECK_INT(proto_qwire_parse_header(b, 40, 21, &h), -1);
	CHECK_INT(proto_qwire_parse_header(b, 9, 8, &h), -1);
	CHECK_INT(proto_qwire_parse_header(b, 10, 8, &h), 0);
	/* Writers refuse what cannot be said. */
	CHECK_INT(proto_qwire_write_long_header(buf, sizeof(buf),
						PROTO_QWIRE_INITIAL,
						PROTO_QWIRE_VERSION_1, cid21,
						21, NULL, 0, NULL, 0, 0, 1, 0),
		  0);
	CHECK_INT(proto_qwire_write_long_header(
		      buf, sizeof(buf), PROTO_QWIRE_1RTT, PROTO_QWIRE_VERSION_1,
		      dcid8, 8, NULL, 0, NULL, 0, 0, 1, 0),
		  0);
	CHECK_INT(proto_qwire_write_long_header(buf, sizeof(buf),
						PROTO_QWIRE_INITIAL, 0, dcid8,
						8, NULL, 0, NULL, 0, 0, 1, 0),
		  0);
	for (size_t pn_len = 0; pn_len < 7; pn_len += 5) {
		CHECK_INT(proto_qwire_write_long_header(
			      buf, sizeof(buf), PROTO_QWIRE_HANDSHAKE,
			      PROTO_QWIRE_VERSION_1, dcid8, 8, NULL, 0, NULL, 0,
			      0, pn_len, 0),
			  0);
		CHECK_INT(proto_qwire_write_short_header(
			      buf, sizeof(buf), dcid8, 8, 0, 0, pn_len),
			  0);
	}
	CHECK_INT(proto_qwire_write_short_header(buf, sizeof(buf), cid21, 21, 0,
						 0, 1),
		  0);
	CHECK_INT(proto_qwire_write_version_neg(buf, sizeof(buf), dcid8, 8,
						NULL, 0, NULL, 0),
		  0);
}

TEST(qwire_frames_roundtrip)
{
	proto_qwire_frame fs[FRAMES_MAX];
	size_t n = sample_frames(fs, 1);
	int seen[0x1f] = {0};
	for (size_t i = 0; i < n; i++) {
		uint8_t buf[128];
		size_t k = proto_qwire_frame_size(&fs[i]);
		REQUIRE(k > 0 && k <= sizeof(buf));
		for (size_t cap = 0; cap < k; cap++) {
			CHECK_INT(proto_qwire_frame_write(buf, cap, &fs[i]), 0);
		}
		CHECK_INT(proto_qwire_frame_write(buf, sizeof(buf), &fs[i]), k);
		proto_qwire_frame g;
		size_t used;
		uint64_t err;
		uint8_t *c = parse_copy(buf, k, &g, &used, &err);
		CHECK_INT(err, 0);
		CHECK_INT(used, k);
		CHECK_U64(g.type, fs[i].type);
		if (err != 0 || !qwire_fuzz_frame_eq(&fs[i], &g)) {
			unit_fail(__FILE__, __LINE__, "frame %zu (type 0x%02x)",
				  i, (unsigned)fs[i].type);
		}
		seen[g.type & 0x1f] = 1;
		free(c);
	}
	for (int t = 0; t < 0x1f; t++) {
		/* STREAM without LEN is only ever parsed. */
		if (t >= 0x08 && t <= 0x0f && !(t & 0x02)) {
			continue;
		}
		if (!seen[t]) {
			unit_fail(__FILE__, __LINE__, "type 0x%02x not covered",
				  t);
		}
	}
	/* STREAM without LEN takes the rest of the payload. */
	static const uint8_t s[] = {0x0d, 0x04, 0x40, 0x64, 'a', 'b', 'c'};
	proto_qwire_frame g;
	size_t used;
	uint64_t err;
	uint8_t *c = parse_copy(s, sizeof(s), &g, &used, &err);
	CHECK_INT(err, 0);
	CHECK_INT(used, sizeof(s));
	CHECK(g.u.stream.id == 4 && g.u.stream.offset == 100);
	CHECK(g.u.stream.len == 3 && g.u.stream.fin == 1);
	CHECK(err == 0 && memcmp(g.u.stream.data, "abc", 3) == 0);
	free(c);
	/* Consecutive padding is one frame. */
	static const uint8_t pad[] = {0, 0, 0, 0, 1};
	free(parse_copy(pad, sizeof(pad), &g, &used, &err));
	CHECK(err == 0 && used == 4 && g.padding_len == 4);
}

TEST(qwire_ack_ranges)
{
	proto_qwire_frame fs[FRAMES_MAX];
	sample_frames(fs, 0);
	proto_qwire_frame *f = &fs[1]; /* ACK 90-100, 50-80, 0-10 */
	REQUIRE(f->type == 0x02);
	static const uint8_t want[] = {0x02, 0x40, 0x64, 0x05, 0x02,
				       0x0a, 0x08, 0x1e, 0x26, 0x0a};
	uint8_t buf[512];
	REQUIRE(proto_qwire_frame_write(buf, sizeof(buf), f) == sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
	/* The writer takes Largest Acknowledged from the ranges. */
	f->u.ack.largest = 7;
	CHECK_INT(proto_qwire_frame_write(buf, sizeof(buf), f), sizeof(want));
	CHECK(memcmp(buf, want, sizeof(want)) == 0);
	/* It refuses ranges that touch, overlap, ascend or are empty. */
	proto_qwire_frame bad = *f;
	bad.u.ack.ranges[1].largest = 88; /* 89 missing: fine */
	CHECK(proto_qwire_frame_size(&bad) > 0);
	bad.u.ack.ranges[1].largest = 89;
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	bad.u.ack.ranges[1].largest = 95;
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	bad.u.ack.ranges[1].largest = 120;
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	bad = *f;
	bad.u.ack.ranges[2] = (proto_qwire_ack_range){5, 4};
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	bad.u.ack.nranges = 0;
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	bad.u.ack.nranges = PROTO_QWIRE_ACK_RANGES_MAX + 1;
	CHECK_INT(proto_qwire_frame_size(&bad), 0);
	/* The most ranges, single packets one apart, from 1000 down. */
	proto_qwire_frame many = {.type = 0x03};
	many.u.ack.nranges = PROTO_QWIRE_ACK_RANGES_MAX;
	for (size_t i = 0; i < PROTO_QWIRE_ACK_RANGES_MAX; i++) {
		many.u.ack.ranges[i].largest = 1000 - 2 * i;
		many.u.ack.ranges[i].smallest = 1000 - 2 * i;
	}
	many.u.ack.largest = 1000;
	many.u.ack.ce = 9;
	size_t k = proto_qwire_frame_write(buf, sizeof(buf), &many);
	REQUIRE(k > 0);
	proto_qwire_frame g;
	size_t used;
	uint64_t err;
	uint8_t *c = parse_copy(buf, k, &g, &used, &err);
	CHECK(err == 0 && used == k && qwire_fuzz_frame_eq(&many, &g));
	free(c);
	/* One more range is more than the parser keeps: the count is at
	 * index 4 (after the type, a two-byte largest and the delay), and a
	 * gap 0, length 0 pair goes after the last range, before the ECN
	 * counts. */
	uint8_t more[600];
	size_t at = k - 3;
	memcpy(more, buf, at);
	more[4] = PROTO_QWIRE_ACK_RANGES_MAX;
	more[at] = 0;
	more[at + 1] = 0;
	memcpy(more + at + 2, buf + at, 3);
	CHECK_INT(parse_bytes(more, k + 2), FEE);
	more[4] = PROTO_QWIRE_ACK_RANGES_MAX - 1;
	CHECK_INT(parse_bytes(more, k), 0);
}

/* Cut a valid frame list anywhere: the frames before the cut parse, the
 * one it cuts through is an error and leaves the cursor alone. */
TEST(qwire_parse_truncation)
{
	proto_qwire_frame fs[FRAMES_MAX];
	size_t n = sample_frames(fs, 0), ends[FRAMES_MAX];
	uint8_t buf[1024];
	size_t total = write_frames(buf, sizeof(buf), fs, n, ends);
	REQUIRE(total > 0);
	for (size_t cut = 0; cut <= total; cut++) {
		uint8_t *copy = malloc(cut + 1);
		memcpy(copy, buf, cut);
		const uint8_t *p = copy, *end = copy + cut;
		size_t i = 0;
		uint64_t err = 0;
		proto_qwire_frame f;
		while (p < end && err == 0) {
			const uint8_t *at = p;
			err = proto_qwire_frame_parse(&p, end, &f);
			if (err == 0) {
				CHECK_INT(p - copy, ends[i]);
				i++;
			} else {
				CHECK(p == at);
			}
		}
		int boundary = cut == 0;
		for (size_t j = 0; j < n; j++) {
			boundary |= ends[j] == cut;
		}
		if (boundary) {
			CHECK_INT(err, 0);
		} else if (err != FEE) {
			unit_fail(__FILE__, __LINE__, "cut %zu: error %d", cut,
				  (int)err);
		}
		free(copy);
	}
}

TEST(qwire_parse_rejects)
{
	const uint8_t *p;
	proto_qwire_frame f;
	/* nothing, unknown types, types longer than needed */
	p = bytes;
	CHECK_INT(proto_qwire_frame_parse(&p, bytes, &f), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x1f", 1), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x30\x00", 2), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x40\x40", 2), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x80\x00\x00\x1f", 4), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x40\x01", 2), PV);
	CHECK_INT(parse_bytes((const uint8_t *)"\x80\x00\x00\x1e", 4), PV);
	CHECK_INT(parse_bytes((const uint8_t *)"\x40", 1), FEE);
	/* STREAM ending beyond 2^62 - 1, with and without LEN */
	static const uint8_t s1[] = {0x0e, 0x00, 0xff, 0xff, 0xff, 0xff,
				     0xff, 0xff, 0xff, 0xfe, 0x01, 'x'};
	CHECK_INT(parse_bytes(s1, sizeof(s1)), 0);
	uint8_t s2[sizeof(s1)];
	memcpy(s2, s1, sizeof(s1));
	s2[9] = 0xff;
	CHECK_INT(parse_bytes(s2, sizeof(s2)), FEE);
	s2[0] = 0x0c; /* no LEN: the 2 bytes after the offset */
	CHECK_INT(parse_bytes(s2, sizeof(s2)), FEE);
	CHECK_INT(parse_bytes(s2, 10), 0);
	/* ACK ranges below packet 0 */
	CHECK_INT(parse_bytes((const uint8_t *)"\x02\x05\x00\x00\x05", 5), 0);
	CHECK_INT(parse_bytes((const uint8_t *)"\x02\x05\x00\x00\x06", 5), FEE);
	CHECK_INT(
	    parse_bytes((const uint8_t *)"\x02\x05\x00\x01\x02\x01\x00", 7), 0);
	CHECK_INT(
	    parse_bytes((const uint8_t *)"\x02\x05\x00\x01\x02\x02\x00", 7),
	    FEE);
	CHECK_INT(
	    parse_bytes((const uint8_t *)"\x02\x05\x00\x01\x02\x01\x01", 7),
	    FEE);
	/* too many ranges: the count alone decides */
	CHECK_INT(parse_bytes((const uint8_t *)"\x02\x05\x00\x20\x00", 5), FEE);
	/* CRYPTO: data beyond the input, end beyond 2^62 - 1 */
	CHECK_INT(parse_bytes((const uint8_t *)"\x06\x00\x05\x61\x62", 5), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x06\x00\x02\x61\x62", 5), 0);
	CHECK_INT(parse_bytes((const uint8_t *)"\x06\xff\xff\xff\xff\xff\xff"
					       "\xff\xff\x01\x61",
			      11),
		  FEE);
	/* CONNECTION_CLOSE reason beyond the input */
	CHECK_INT(parse_bytes((const uint8_t *)"\x1d\x00\x03\x61\x62", 5), FEE);
	/* NEW_TOKEN empty; PATH_CHALLENGE short */
	CHECK_INT(parse_bytes((const uint8_t *)"\x07\x00", 2), FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x1a"
					       "1234567",
			      8),
		  FEE);
	CHECK_INT(parse_bytes((const uint8_t *)"\x1a"
					       "12345678",
			      9),
		  0);
	/* NEW_CONNECTION_ID: CID length 0 and 21, retire prior to > seq */
	uint8_t ncid[1 + 2 + 1 + 21 + 16];
	memset(ncid, 0xab, sizeof(ncid));
	ncid[0] = 0x18;
	ncid[1] = 2;
	ncid[2] = 1;
	ncid[3] = 20;
	CHECK_INT(parse_bytes(ncid, 4 + 20 + 16), 0);
	CHECK_INT(parse_bytes(ncid, 4 + 20 + 15), FEE);
	ncid[3] = 21;
	CHECK_INT(parse_bytes(ncid, sizeof(ncid)), FEE);
	ncid[3] = 0;
	CHECK_INT(parse_bytes(ncid, 4 + 16), FEE);
	ncid[3] = 4;
	ncid[2] = 3;
	CHECK_INT(parse_bytes(ncid, 4 + 4 + 16), FEE);
	/* MAX_STREAMS and STREAMS_BLOCKED above 2^60 */
	static const uint8_t ms[] = {0x12, 0xd0, 0, 0, 0, 0, 0, 0, 0x00};
	CHECK_INT(parse_bytes(ms, sizeof(ms)), 0);
	uint8_t m2[sizeof(ms)];
	memcpy(m2, ms, sizeof(ms));
	m2[8] = 1;
	CHECK_INT(parse_bytes(m2, sizeof(m2)), FEE);
	m2[0] = 0x17;
	CHECK_INT(parse_bytes(m2, sizeof(m2)), FEE);
	/* An error leaves the cursor where it was. */
	p = s2;
	CHECK_INT(proto_qwire_frame_parse(&p, s2 + sizeof(s2), &f), FEE);
	CHECK(p == s2);
	/* The writer refuses what the parser rejects. */
	proto_qwire_frame w = {.type = 0x06};
	w.u.crypto.offset = VMAX;
	w.u.crypto.data = bytes;
	w.u.crypto.len = 1;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	w.u.crypto.len = 0;
	CHECK(proto_qwire_frame_size(&w) > 0);
	w.type = 0x13;
	w.u.other.a = (UINT64_C(1) << 60) + 1;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	memset(&w, 0, sizeof(w));
	w.type = 0x07;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	w.type = 0x1a;
	w.u.other.data = bytes;
	w.u.other.len = 7;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	w.type = 0x00;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	w.type = 0x1f;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
	w.type = 0x10;
	w.u.other.a = VMAX + 1;
	CHECK_INT(proto_qwire_frame_size(&w), 0);
}

static size_t stream_size(uint64_t id, uint64_t off, size_t len)
{
	proto_qwire_frame f = {.type = 0x08};
	set_stream(&f, id, off, len, 0);
	return proto_qwire_frame_size(&f);
}

static size_t crypto_size(uint64_t off, size_t len)
{
	proto_qwire_frame f = {.type = 0x06};
	f.u.crypto.offset = off;
	f.u.crypto.data = bytes;
	f.u.crypto.len = len;
	return proto_qwire_frame_size(&f);
}

/* n from *_fit fits and n + 1 does not, for caps around every varint
 * boundary of the Length field. */
TEST(qwire_fit)
{
	static const uint64_t ids[] = {0, 63, 64, VMAX};
	static const uint64_t offs[] = {0, 1, 70000, VMAX - 100, VMAX};
	static const size_t lens[] = {0, 1, 63, 64, 100, 16384, 1u << 20};
	for (size_t a = 0; a < 4; a++) {
		for (size_t b = 0; b < 5; b++) {
			for (size_t c = 0; c < 7; c++) {
				for (size_t cap = 0; cap < 16500;
				     cap += cap < 200 || cap > 16370 ? 1 : 97) {
					uint64_t id = ids[a], off = offs[b];
					size_t len = lens[c];
					size_t n = proto_qwire_stream_fit(
					    cap, id, off, len);
					size_t most =
					    len < VMAX - off ? len : VMAX - off;
					CHECK(n <= most);
					if (n > 0) {
						CHECK(stream_size(id, off, n) <=
						      cap);
					}
					if (n < most) {
						CHECK(stream_size(id, off,
								  n + 1) > cap);
					}
					if (a > 0) {
						continue;
					}
					n = proto_qwire_crypto_fit(cap, off,
								   len);
					CHECK(n <= most);
					if (n > 0) {
						CHECK(crypto_size(off, n) <=
						      cap);
					}
					if (n < most) {
						CHECK(crypto_size(off, n + 1) >
						      cap);
					}
				}
			}
		}
	}
	/* 63 bytes take a one-byte Length, 64 two. */
	CHECK_INT(proto_qwire_crypto_fit(1 + 1 + 1 + 63, 0, 1000), 63);
	CHECK_INT(proto_qwire_crypto_fit(1 + 1 + 2 + 63, 0, 1000), 63);
	CHECK_INT(proto_qwire_crypto_fit(1 + 1 + 2 + 64, 0, 1000), 64);
	CHECK_INT(proto_qwire_stream_fit(3, 0, 0, 10), 0);
	CHECK_INT(proto_qwire_stream_fit(4, 0, 0, 10), 1);
}

TEST(qwire_frame_allowed)
{
	static const uint64_t in_ih[] = {0x00, 0x01, 0x02, 0x03, 0x06, 0x1c};
	static const uint64_t not_0rtt[] = {0x02, 0x03, 0x06, 0x07, 0x1b, 0x1e};
	for (uint64_t t = 0; t <= 0x20; t++) {
		int ih = 0, z = t <= 0x1e;
		for (size_t i = 0; i < 6; i++) {
			ih |= in_ih[i] == t;
			z &= not_0rtt[i] != t;
		}
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_INITIAL),
			  ih);
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_HANDSHAKE),
			  ih);
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_0RTT), z);
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_1RTT),
			  t <= 0x1e);
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_RETRY), 0);
		CHECK_INT(proto_qwire_frame_allowed(t, PROTO_QWIRE_VERSION_NEG),
			  0);
		CHECK_INT(proto_qwire_frame_allowed(t, 99), 0);
	}
	CHECK_INT(proto_qwire_frame_allowed(UINT64_MAX, PROTO_QWIRE_1RTT), 0);
}

TEST(qwire_names_and_summary)
{
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_INITIAL), "initial");
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_0RTT), "0rtt");
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_HANDSHAKE), "handshake");
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_RETRY), "retry");
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_1RTT), "1rtt");
	CHECK_STR(proto_qwire_ptype_name(PROTO_QWIRE_VERSION_NEG),
		  "version_negotiation");
	CHECK_STR(proto_qwire_ptype_name(6), "unknown");
	CHECK_STR(proto_qwire_ptype_name(-1), "unknown");
	CHECK_STR(proto_qwire_frame_name(0x03), "ACK");
	CHECK_STR(proto_qwire_frame_name(0x0d), "STREAM");
	CHECK_STR(proto_qwire_frame_name(0x1c), "CONNECTION_CLOSE(0x1c)");
	CHECK_STR(proto_qwire_frame_name(0x1d), "CONNECTION_CLOSE(0x1d)");
	CHECK_STR(proto_qwire_frame_name(0x1e), "HANDSHAKE_DONE");
	CHECK_STR(proto_qwire_frame_name(0x1f), "UNKNOWN");

	proto_qwire_frame fs[FRAMES_MAX];
	size_t n = sample_frames(fs, 1);
	uint8_t buf[1024];
	size_t len = write_frames(buf, sizeof(buf), fs, n, NULL);
	char s[1024];
	CHECK_INT(proto_qwire_summarize(buf, len, s, sizeof(s)), 0);
	CHECK_STR(s, "PADDING(3),PING,ACK[90-100,50-80,0-10],ACK[0]ecn,"
		     "RESET_STREAM(4,256,1000000),STOP_SENDING(8,7),"
		     "CRYPTO(0+20),CRYPTO(70000+5),NEW_TOKEN(16),"
		     "STREAM(0,0+10),STREAM(4,100+0,fin),"
		     "STREAM(4611686018427387903,4611686018427387902+1),"
		     "STREAM(1,0+0,fin),MAX_DATA(4611686018427387903),"
		     "MAX_STREAM_DATA(4,65536),MAX_STREAMS(bidi,100),"
		     "MAX_STREAMS(uni,1152921504606846976),"
		     "DATA_BLOCKED(1048576),STREAM_DATA_BLOCKED(0,5),"
		     "STREAMS_BLOCKED(bidi,1152921504606846976),"
		     "STREAMS_BLOCKED(uni,0),NEW_CONNECTION_ID(5,3,20),"
		     "RETIRE_CONNECTION_ID(2),PATH_CHALLENGE,PATH_RESPONSE,"
		     "CONNECTION_CLOSE(0x1c)(0xa,0x6),"
		     "CONNECTION_CLOSE(0x1d)(0x1234),HANDSHAKE_DONE");
	/* Cut to the trace's column at a frame boundary. */
	char col[128];
	CHECK_INT(proto_qwire_summarize(buf, len, col, sizeof(col)), 0);
	CHECK(strlen(col) < sizeof(col));
	size_t cl = strlen(col);
	REQUIRE(cl > 4);
	CHECK_STR(col + cl - 4, ",...");
	CHECK(strncmp(s, col, cl - 3) == 0);
	/* A bad frame ends the summary. */
	uint8_t bad[64];
	size_t k = proto_qwire_frame_write(bad, sizeof(bad), &fs[6]);
	bad[k] = 0x1f;
	CHECK_INT(proto_qwire_summarize(bad, k + 1, s, sizeof(s)), FEE);
	CHECK_STR(s, "CRYPTO(0+20),!ERR");
	CHECK_INT(proto_qwire_summarize(bad, k + 1, s, 12), FEE);
	CHECK_STR(s, "...,!ERR");
	CHECK_INT(proto_qwire_summarize(bad, k - 1, s, sizeof(s)), FEE);
	CHECK_STR(s, "!ERR");
	CHECK_INT(proto_qwire_summarize(buf, len, s, 30), 0);
	CHECK_STR(s, "PADDING(3),PING,...");
	CHECK_INT(proto_qwire_summarize(bad, k + 1, s, 30), FEE);
	CHECK_STR(s, "CRYPTO(0+20),!ERR");
	/* An empty payload is a protocol violation; no buffer is fine. */
	CHECK_INT(proto_qwire_summarize(buf, 0, s, sizeof(s)), PV);
	CHECK_STR(s, "!ERR");
	CHECK_INT(proto_qwire_summarize(bad, k + 1, NULL, 0), FEE);
	CHECK_INT(proto_qwire_summarize(bad, k + 1, s, 1), FEE);
	CHECK_STR(s, "");
}

/* Valid inputs in the harness format (mode byte first), to mutate. */
static size_t seed_input(int which, uint8_t *out, size_t cap)
{
	proto_qwire_frame fs[FRAMES_MAX];
	size_t sizes[3];
	switch (which) {
	case 0:
		out[0] = 0x00;
		return 1 + write_frames(out + 1, cap - 1, fs,
					sample_frames(fs, 1), NULL);
	case 1:
		out[0] = 0x88; /* datagram, 8-byte short-header DCIDs */
		return 1 + write_datagram(out + 1, cap - 1, sizes);
	default:
		out[0] = 0x00;
		return 1 + write_frames(out + 1, cap - 1, fs,
					sample_frames(fs, 0), NULL);
	}
}

static size_t mutate(sim_rng *r, uint8_t *b, size_t len, size_t cap)
{
	static const uint8_t special[] = {0x00, 0x01, 0x3f, 0x40, 0x7f,
					  0x80, 0xbf, 0xc0, 0xff, 0x1f};
	int rounds = 1 + (int)sim_rng_below(r, 4);
	for (int i = 0; i < rounds && len > 1; i++) {
		size_t at = 1 + (size_t)sim_rng_below(r, len - 1);
		switch (sim_rng_below(r, 6)) {
		case 0:
			b[at] ^= (uint8_t)(1u << sim_rng_below(r, 8));
			break;
		case 1:
			b[at] = special[sim_rng_below(r, sizeof(special))];
			break;
		case 2:
			b[at] = (uint8_t)sim_rng_next(r);
			break;
		case 3: /* truncate */
			len = at;
			break;
		case 4: { /* delete a run */
			size_t k = 1 + (size_t)sim_rng_below(r, 16);
			k = k < len - at ? k : len - at;
			memmove(b + at, b + at + k, len - at - k);
			len -= k;
			break;
		}
		default: { /* insert random bytes */
			size_t k = 1 + (size_t)sim_rng_below(r, 8);
			if (len + k > cap) {
				break;
			}
			memmove(b + at + k, b + at, len - at);
			sim_rng_fill(r, b + at, k);
			len += k;
			break;
		}
		}
	}
	return len;
}

TEST(qwire_fuzz)
{
	sim_rng r;
	sim_rng_init(&r, 1, "qwire/fuzz");
	static uint8_t seeds[3][FUZZ_LEN_MAX];
	size_t seed_len[3];
	for (int i = 0; i < 3; i++) {
		seed_len[i] = seed_input(i, seeds[i], FUZZ_LEN_MAX);
		int clean = 0;
		CHECK(qwire_fuzz_check(seeds[i], seed_len[i], &clean) == NULL);
		CHECK(clean);
	}
	static uint8_t work[FUZZ_LEN_MAX];
	int cleans = 0, failures = 0;
	for (int i = 0; i < FUZZ_ROUNDS && failures < 5; i++) {
		size_t len;
		if (i % 4 == 0) {
			len = (size_t)sim_rng_below(&r, 65);
			sim_rng_fill(&r, work, len);
		} else {
			int s = (int)sim_rng_below(&r, 3);
			memcpy(work, seeds[s], seed_len[s]);
			len = mutate(&r, work, seed_len[s], FUZZ_LEN_MAX);
		}
		uint8_t *in = malloc(len > 0 ? len : 1);
		memcpy(in, work, len);
		int clean;
		const char *m = qwire_fuzz_check(in, len, &clean);
		if (m != NULL) {
			unit_fail(__FILE__, __LINE__, "input %d: %s", i, m);
			failures++;
		}
		cleans += clean;
		free(in);
	}
	/* The mutations leave some inputs valid, so the write-back checks
	 * ran on more than the seeds. */
	CHECK(cleans > FUZZ_ROUNDS / 100);
}

/* The committed seed corpus parses cleanly through the harness. */
TEST(qwire_fuzz_corpus)
{
	const char *dir = TLSIM_SOURCE_DIR "/tests/fuzz/corpus/qwire";
	DIR *d = opendir(dir);
	REQUIRE(d != NULL);
	struct dirent *e;
	int files = 0;
	static uint8_t buf[DGRAM_MAX + 1];
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			continue;
		}
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		FILE *fp = fopen(path, "rb");
		REQUIRE(fp != NULL);
		size_t len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		CHECK(len <= DGRAM_MAX);
		int clean = 0;
		const char *m = qwire_fuzz_check(buf, len, &clean);
		if (m != NULL || !clean) {
			unit_fail(__FILE__, __LINE__, "%s: %s", e->d_name,
				  m != NULL ? m : "does not parse cleanly");
		}
		files++;
	}
	closedir(d);
	CHECK(files >= 5);
}

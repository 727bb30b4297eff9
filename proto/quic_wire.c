#include "proto/quic_wire.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sim/err.h"

#define VMAX PROTO_QWIRE_VARINT_MAX
#define FEE PROTO_QWIRE_FRAME_ENCODING_ERROR
#define STREAMS_MAX (UINT64_C(1) << 60)
#define FTYPE_LAST 0x1e
/* The end of a summary is kept free for ",...,!ERR" and the NUL. */
#define SUMMARY_RESERVE 10

/* How a frame type is laid out: the kinds with their own union member,
 * and for K_OTHER the number of leading varints (u.other.a, b, c) and what
 * follows them. */
enum kind { K_PADDING, K_ACK, K_CRYPTO, K_STREAM, K_CLOSE, K_OTHER };
enum tail { T_NONE, T_LEN, T_PATH, T_CID };

/* Table 3's Pkts column as a mask of 1 << proto_qwire_ptype. */
#define P_I (1u << PROTO_QWIRE_INITIAL)
#define P_Z (1u << PROTO_QWIRE_0RTT)
#define P_H (1u << PROTO_QWIRE_HANDSHAKE)
#define P_O (1u << PROTO_QWIRE_1RTT)
#define P_ALL (P_I | P_Z | P_H | P_O)

typedef struct ftype {
	const char *name;
	uint8_t kind, nvar, tail, pkts;
} ftype;

/* clang-format off */
static const ftype ftypes[FTYPE_LAST + 1] = {
	[0x00] = {"PADDING", K_PADDING, 0, T_NONE, P_ALL},
	[0x01] = {"PING", K_OTHER, 0, T_NONE, P_ALL},
	[0x02] = {"ACK", K_ACK, 0, T_NONE, P_I | P_H | P_O},
	[0x03] = {"ACK", K_ACK, 0, T_NONE, P_I | P_H | P_O},
	[0x04] = {"RESET_STREAM", K_OTHER, 3, T_NONE, P_Z | P_O},
	[0x05] = {"STOP_SENDING", K_OTHER, 2, T_NONE, P_Z | P_O},
	[0x06] = {"CRYPTO", K_CRYPTO, 0, T_NONE, P_I | P_H | P_O},
	[0x07] = {"NEW_TOKEN", K_OTHER, 0, T_LEN, P_O},
	[0x08] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x09] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0a] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0b] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0c] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0d] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0e] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x0f] = {"STREAM", K_STREAM, 0, T_NONE, P_Z | P_O},
	[0x10] = {"MAX_DATA", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x11] = {"MAX_STREAM_DATA", K_OTHER, 2, T_NONE, P_Z | P_O},
	[0x12] = {"MAX_STREAMS", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x13] = {"MAX_STREAMS", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x14] = {"DATA_BLOCKED", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x15] = {"STREAM_DATA_BLOCKED", K_OTHER, 2, T_NONE, P_Z | P_O},
	[0x16] = {"STREAMS_BLOCKED", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x17] = {"STREAMS_BLOCKED", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x18] = {"NEW_CONNECTION_ID", K_OTHER, 2, T_CID, P_Z | P_O},
	[0x19] = {"RETIRE_CONNECTION_ID", K_OTHER, 1, T_NONE, P_Z | P_O},
	[0x1a] = {"PATH_CHALLENGE", K_OTHER, 0, T_PATH, P_Z | P_O},
	[0x1b] = {"PATH_RESPONSE", K_OTHER, 0, T_PATH, P_O},
	[0x1c] = {"CONNECTION_CLOSE(0x1c)", K_CLOSE, 0, T_NONE, P_ALL},
	[0x1d] = {"CONNECTION_CLOSE(0x1d)", K_CLOSE, 0, T_NONE, P_Z | P_O},
	[0x1e] = {"HANDSHAKE_DONE", K_OTHER, 0, T_NONE, P_O},
};
/* clang-format on */

static const ftype *find_ftype(uint64_t type)
{
	return type <= FTYPE_LAST ? &ftypes[type] : NULL;
}

/* MAX_STREAMS and STREAMS_BLOCKED: bit 0 of the type says uni. */
static int is_streams_limit(uint64_t type)
{
	return (type & ~UINT64_C(1)) == 0x12 || (type & ~UINT64_C(1)) == 0x16;
}

/* A bounded reader: a failed read sets |bad| and makes later reads no-ops,
 * so a parser reads all its fields and checks once. */
typedef struct rd {
	const uint8_t *p, *end;
	int bad;
} rd;

static size_t rd_left(const rd *r)
{
	return (size_t)(r->end - r->p);
}

static uint64_t get_var(rd *r)
{
	uint64_t v = 0;
	if (!r->bad && proto_qwire_varint_get(&r->p, r->end, &v) != 0) {
		r->bad = 1;
	}
	return r->bad ? 0 : v;
}

static const uint8_t *get_bytes(rd *r, uint64_t len)
{
	if (r->bad || len > rd_left(r)) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *at = r->p;
	r->p += len;
	return at;
}

static uint64_t get_be(rd *r, size_t n)
{
	const uint8_t *b = get_bytes(r, n);
	uint64_t v = 0;
	for (size_t i = 0; b != NULL && i < n; i++) {
		v = v << 8 | b[i];
	}
	return v;
}

/* A writer that only counts while |p| is NULL, so one function both
 * sizes and writes a structure. |bad| marks a value that has no
 * encoding. */
typedef struct wr {
	uint8_t *p;
	size_t n;
	int bad;
} wr;

static void put_var(wr *w, uint64_t v)
{
	size_t n = proto_qwire_varint_len(v);
	if (n == 0) {
		w->bad = 1;
		return;
	}
	if (w->p != NULL) {
		w->p = proto_qwire_varint_put(w->p, v);
	}
	w->n += n;
}

/* Copies |len| bytes of |d|, or writes zeros when |d| is NULL. */
static void put_bytes(wr *w, const void *d, size_t len)
{
	if (w->p != NULL && len > 0) {
		if (d != NULL) {
			memcpy(w->p, d, len);
		} else {
			memset(w->p, 0, len);
		}
		w->p += len;
	}
	w->n += len;
}

/* A varint length, then the bytes. */
static void put_vbytes(wr *w, const void *d, size_t len)
{
	put_var(w, len);
	put_bytes(w, d, len);
}

static void put_be(wr *w, uint64_t v, size_t n)
{
	for (size_t i = 0; w->p != NULL && i < n; i++) {
		w->p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	}
	if (w->p != NULL) {
		w->p += n;
	}
	w->n += n;
}

/* Data pointer and length given together: NULL only with no bytes. */
static int has(const void *d, size_t len)
{
	return d != NULL || len == 0;
}

size_t proto_qwire_varint_len(uint64_t v)
{
	if (v < (UINT64_C(1) << 6)) {
		return 1;
	}
	if (v < (UINT64_C(1) << 14)) {
		return 2;
	}
	if (v < (UINT64_C(1) << 30)) {
		return 4;
	}
	return v <= VMAX ? 8 : 0;
}

uint8_t *proto_qwire_varint_put(uint8_t *p, uint64_t v)
{
	assert(v <= VMAX);
	v &= VMAX;
	size_t n = proto_qwire_varint_len(v);
	/* The length in the top two bits: 1, 2, 4, 8 bytes -> 0..3. */
	uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
	wr w = {p, 0, 0};
	put_be(&w, v, n);
	p[0] |= prefix;
	return w.p;
}

int proto_qwire_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	const uint8_t *q = *p;
	if (q >= end) {
		return -1;
	}
	size_t n = (size_t)1 << (q[0] >> 6);
	if ((size_t)(end - q) < n) {
		return -1;
	}
	uint64_t v = q[0] & 0x3f;
	for (size_t i = 1; i < n; i++) {
		v = v << 8 | q[i];
	}
	*out = v;
	*p = q + n;
	return 0;
}

const char *proto_qwire_ptype_name(int type)
{
	static const char *const names[] = {"initial",   "0rtt",
					    "handshake", "retry",
					    "1rtt",      "version_negotiation"};
	if (type < 0 || type > PROTO_QWIRE_VERSION_NEG) {
		return "unknown";
	}
	return names[type];
}

/* Headers */

static int bad_header(proto_qwire_hdr *h)
{
	memset(h, 0, sizeof(*h));
	return -1;
}

static void get_cid(rd *r, uint8_t *cid, size_t *cid_len)
{
	uint64_t n = get_be(r, 1);
	if (n > PROTO_QWIRE_CID_MAX) {
		r->bad = 1;
		return;
	}
	const uint8_t *b = get_bytes(r, n);
	if (b != NULL) {
		memcpy(cid, b, n);
		*cid_len = n;
	}
}

/* Version negotiation and Retry run to the end of the datagram. */
static int parse_to_end(rd *r, const uint8_t *pkt, proto_qwire_hdr *h)
{
	size_t rest = rd_left(r);
	if (h->type == PROTO_QWIRE_VERSION_NEG) {
		if (rest == 0 || rest % 4 != 0) {
			return bad_header(h);
		}
		h->versions = r->p;
		h->nversions = rest / 4;
		h->pn_offset = (size_t)(r->p - pkt);
	} else {
		if (rest <= PROTO_QWIRE_RETRY_TAG_LEN) {
			return bad_header(h);
		}
		h->token = r->p;
		h->token_len = rest - PROTO_QWIRE_RETRY_TAG_LEN;
		h->pn_offset = (size_t)(r->p - pkt) + h->token_len;
	}
	h->packet_len = (size_t)(r->end - pkt);
	h->length = h->packet_len - h->pn_offset;
	return 0;
}

int proto_qwire_parse_header(const uint8_t *pkt, size_t len,
			     size_t short_dcid_len, proto_qwire_hdr *h)
{
	memset(h, 0, sizeof(*h));
	rd r = {pkt, pkt + len, 0};
	if (len == 0) {
		return -1;
	}
	h->first = (uint8_t)get_be(&r, 1);
	if (!(h->first & 0x80)) {
		if (!(h->first & 0x40) ||
		    short_dcid_len > PROTO_QWIRE_CID_MAX ||
		    len < 1 + short_dcid_len + 1) {
			return bad_header(h);
		}
		h->type = PROTO_QWIRE_1RTT;
		memcpy(h->dcid, pkt + 1, short_dcid_len);
		h->dcid_len = short_dcid_len;
		h->pn_offset = 1 + short_dcid_len;
		h->length = len - h->pn_offset;
		h->packet_len = len;
		return 0;
	}
	h->version = (uint32_t)get_be(&r, 4);
	get_cid(&r, h->dcid, &h->dcid_len);
	get_cid(&r, h->scid, &h->scid_len);
	if (r.bad) {
		return bad_header(h);
	}
	if (h->version == 0) {
		h->type = PROTO_QWIRE_VERSION_NEG;
		return parse_to_end(&r, pkt, h);
	}
	if (h->version != PROTO_QWIRE_VERSION_1 || !(h->first & 0x40)) {
		return bad_header(h);
	}
	h->type = (h->first >> 4) & 3;
	if (h->type == PROTO_QWIRE_RETRY) {
		return parse_to_end(&r, pkt, h);
	}
	if (h->type == PROTO_QWIRE_INITIAL) {
		uint64_t n = get_var(&r);
		h->token = get_bytes(&r, n);
		h->token_len = (size_t)n;
	}
	uint64_t length = get_var(&r);
	if (r.bad || length == 0 || length > rd_left(&r)) {
		return bad_header(h);
	}
	h->pn_offset = (size_t)(r.p - pkt);
	h->length = (size_t)length;
	h->packet_len = h->pn_offset + h->length;
	return 0;
}

static int valid_pn_len(size_t pn_len)
{
	return pn_len >= 1 && pn_len <= 4;
}

static int emit_long(wr *w, int type, uint32_t version, const uint8_t *dcid,
		     size_t dcid_len, const uint8_t *scid, size_t scid_len,
		     const uint8_t *token, size_t token_len, uint64_t pn,
		     size_t pn_len, size_t payload_len)
{
	int retry = type == PROTO_QWIRE_RETRY;
	if (type < PROTO_QWIRE_INITIAL || type > PROTO_QWIRE_RETRY ||
	    version == 0 || dcid_len > PROTO_QWIRE_CID_MAX ||
	    scid_len > PROTO_QWIRE_CID_MAX || !has(dcid, dcid_len) ||
	    !has(scid, scid_len) || !has(token, token_len)) {
		return 0;
	}
	if (retry && token_len == 0) {
		return 0;
	}
	if (!retry && ((token_len > 0 && type != PROTO_QWIRE_INITIAL) ||
		       !valid_pn_len(pn_len) || payload_len > VMAX - pn_len)) {
		return 0;
	}
	put_be(w, 0xc0u | (unsigned)type << 4 | (retry ? 0 : pn_len - 1), 1);
	put_be(w, version, 4);
	put_be(w, dcid_len, 1);
	put_bytes(w, dcid, dcid_len);
	put_be(w, scid_len, 1);
	put_bytes(w, scid, scid_len);
	if (type == PROTO_QWIRE_INITIAL) {
		put_var(w, token_len);
	}
	put_bytes(w, token, token_len);
	if (!retry) {
		put_var(w, pn_len + payload_len);
		put_be(w, pn, pn_len);
	}
	return !w->bad;
}

size_t proto_qwire_long_header_size(int type, size_t dcid_len, size_t scid_len,
				    size_t token_len, size_t pn_len,
				    size_t payload_len)
{
	/* Any non-NULL pointer stands for the bytes: nothing is read. */
	static const uint8_t any[1];
	wr w = {NULL, 0, 0};
	if (!emit_long(&w, type, PROTO_QWIRE_VERSION_1, any, dcid_len, any,
		       scid_len, any, token_len, 0, pn_len, payload_len)) {
		return 0;
	}
	return w.n;
}

size_t proto_qwire_write_long_header(uint8_t *buf, size_t cap, int type,
				     uint32_t version, const uint8_t *dcid,
				     size_t dcid_len, const uint8_t *scid,
				     size_t scid_len, const uint8_t *token,
				     size_t token_len, uint64_t pn,
				     size_t pn_len, size_t payload_len)
{
	wr w = {NULL, 0, 0};
	if (!emit_long(&w, type, version, dcid, dcid_len, scid, scid_len, token,
		       token_len, pn, pn_len, payload_len) ||
	    w.n > cap) {
		return 0;
	}
	wr out = {buf, 0, 0};
	emit_long(&out, type, version, dcid, dcid_len, scid, scid_len, token,
		  token_len, pn, pn_len, payload_len);
	assert(out.n == w.n);
	return out.n;
}

size_t proto_qwire_write_short_header(uint8_t *buf, size_t cap,
				      const uint8_t *dcid, size_t dcid_len,
				      int key_phase, uint64_t pn, size_t pn_len)
{
	if (dcid_len > PROTO_QWIRE_CID_MAX || !has(dcid, dcid_len) ||
	    !valid_pn_len(pn_len) || 1 + dcid_len + pn_len > cap) {
		return 0;
	}
	wr w = {buf, 0, 0};
	put_be(&w, 0x40u | (key_phase ? 0x04u : 0) | (pn_len - 1), 1);
	put_bytes(&w, dcid, dcid_len);
	put_be(&w, pn, pn_len);
	return w.n;
}

size_t proto_qwire_write_version_neg(uint8_t *buf, size_t cap,
				     const uint8_t *dcid, size_t dcid_len,
				     const uint8_t *scid, size_t scid_len,
				     const uint32_t *versions, size_t nversions)
{
	if (dcid_len > PROTO_QWIRE_CID_MAX || scid_len > PROTO_QWIRE_CID_MAX ||
	    !has(dcid, dcid_len) || !has(scid, scid_len) || nversions == 0 ||
	    versions == NULL || nversions > cap / 4 ||
	    7 + dcid_len + scid_len + 4 * nversions > cap) {
		return 0;
	}
	wr w = {buf, 0, 0};
	put_be(&w, 0xc0, 1);
	put_be(&w, 0, 4);
	put_be(&w, dcid_len, 1);
	put_bytes(&w, dcid, dcid_len);
	put_be(&w, scid_len, 1);
	put_bytes(&w, scid, scid_len);
	for (size_t i = 0; i < nversions; i++) {
		put_be(&w, versions[i], 4);
	}
	return w.n;
}

/* Packet numbers */

size_t proto_qwire_pn_len(uint64_t full_pn, int64_t largest_acked)
{
	if (full_pn > VMAX ||
	    (largest_acked >= 0 && full_pn <= (uint64_t)largest_acked)) {
		return 0;
	}
	/* The packets from the acknowledged one (excluded) to this one. */
	uint64_t unacked =
	    largest_acked < 0 ? full_pn + 1 : full_pn - (uint64_t)largest_acked;
	for (size_t n = 1; n <= 4; n++) {
		if (unacked <= UINT64_C(1) << (8 * n - 1)) {
			return n;
		}
	}
	return 0;
}

uint64_t proto_qwire_pn_decode(int64_t largest_pn, uint64_t truncated,
			       size_t pn_len)
{
	if (SIM_NEVER(!valid_pn_len(pn_len))) {
		pn_len = 4;
	}
	uint64_t expected = largest_pn < 0 ? 0 : (uint64_t)largest_pn + 1;
	uint64_t win = UINT64_C(1) << (8 * pn_len);
	uint64_t hwin = win / 2, mask = win - 1;
	uint64_t cand = (expected & ~mask) | (truncated & mask);
	if (cand + hwin <= expected && cand < (UINT64_C(1) << 62) - win) {
		return cand + win;
	}
	if (cand > expected + hwin && cand >= win) {
		return cand - win;
	}
	return cand;
}

/* Frames */

/* Checks the ranges as the struct documents them; the parser builds them
 * that way, the writer must be given them that way. */
static int ack_valid(const proto_qwire_frame *f)
{
	size_t n = f->u.ack.nranges;
	const proto_qwire_ack_range *r = f->u.ack.ranges;
	if (n == 0 || n > PROTO_QWIRE_ACK_RANGES_MAX || r[0].largest > VMAX) {
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		/* below the previous range with at least one packet between */
		if (r[i].smallest > r[i].largest ||
		    (i > 0 && (r[i - 1].smallest < 2 ||
			       r[i].largest > r[i - 1].smallest - 2))) {
			return 0;
		}
	}
	return 1;
}

/* What the parser checks beyond the encoding for u.other frames. */
static int other_valid(const proto_qwire_frame *f)
{
	const ftype *t = find_ftype(f->type);
	size_t len = f->u.other.len;
	if (is_streams_limit(f->type) && f->u.other.a > STREAMS_MAX) {
		return 0;
	}
	switch (t->tail) {
	case T_LEN:
		return len > 0 && f->u.other.data != NULL;
	case T_PATH:
		return len == PROTO_QWIRE_PATH_DATA_LEN &&
		       f->u.other.data != NULL;
	case T_CID:
		return f->u.other.b <= f->u.other.a && len >= 1 &&
		       len <= PROTO_QWIRE_CID_MAX && f->u.other.data != NULL &&
		       f->u.other.reset_token != NULL;
	default:
		return 1;
	}
}

/* STREAM and CRYPTO data must end at or below 2^62 - 1. */
static int data_end_valid(uint64_t offset, uint64_t len)
{
	return offset <= VMAX && len <= VMAX - offset;
}

static int parse_ack(rd *r, proto_qwire_frame *f)
{
	proto_qwire_ack_range *rg = f->u.ack.ranges;
	uint64_t largest = get_var(r);
	f->u.ack.delay = get_var(r);
	uint64_t count = get_var(r), first = get_var(r);
	if (r->bad || first > largest || count >= PROTO_QWIRE_ACK_RANGES_MAX) {
		return 0;
	}
	f->u.ack.largest = largest;
	rg[0].largest = largest;
	rg[0].smallest = largest - first;
	for (size_t i = 1; i <= count; i++) {
		uint64_t gap = get_var(r), len = get_var(r);
		uint64_t below = rg[i - 1].smallest;
		/* largest = previous smallest - gap - 2, and then
		 * smallest = largest - len, both at least 0 */
		if (r->bad || gap + 2 > below || len > below - gap - 2) {
			return 0;
		}
		rg[i].largest = below - gap - 2;
		rg[i].smallest = rg[i].largest - len;
	}
	f->u.ack.nranges = (size_t)count + 1;
	if (f->type == 0x03) {
		f->u.ack.ect0 = get_var(r);
		f->u.ack.ect1 = get_var(r);
		f->u.ack.ce = get_var(r);
	}
	return !r->bad;
}

static int parse_other(rd *r, const ftype *t, proto_qwire_frame *f)
{
	uint64_t v[3] = {0, 0, 0};
	for (size_t i = 0; i < t->nvar; i++) {
		v[i] = get_var(r);
	}
	f->u.other.a = v[0];
	f->u.other.b = v[1];
	f->u.other.c = v[2];
	uint64_t len = 0;
	if (t->tail == T_LEN) {
		len = get_var(r);
	} else if (t->tail == T_PATH) {
		len = PROTO_QWIRE_PATH_DATA_LEN;
	} else if (t->tail == T_CID) {
		len = get_be(r, 1);
	}
	if (t->tail != T_NONE) {
		f->u.other.data = get_bytes(r, len);
		f->u.other.len = (size_t)len;
	}
	if (t->tail == T_CID) {
		f->u.other.reset_token =
		    get_bytes(r, PROTO_QWIRE_RESET_TOKEN_LEN);
	}
	return !r->bad && other_valid(f);
}

static int parse_body(rd *r, const ftype *t, proto_qwire_frame *f)
{
	uint64_t len;
	switch (t->kind) {
	case K_PADDING:
		f->padding_len = 1;
		while (r->p < r->end && *r->p == 0) {
			r->p++;
			f->padding_len++;
		}
		return 1;
	case K_ACK:
		return parse_ack(r, f);
	case K_CRYPTO:
		f->u.crypto.offset = get_var(r);
		len = get_var(r);
		f->u.crypto.data = get_bytes(r, len);
		f->u.crypto.len = (size_t)len;
		return !r->bad && data_end_valid(f->u.crypto.offset, len);
	case K_STREAM:
		f->u.stream.id = get_var(r);
		f->u.stream.offset = f->type & 0x04 ? get_var(r) : 0;
		len = f->type & 0x02 ? get_var(r) : rd_left(r);
		f->u.stream.data = get_bytes(r, len);
		f->u.stream.len = (size_t)len;
		f->u.stream.fin = (int)(f->type & 0x01);
		return !r->bad && data_end_valid(f->u.stream.offset, len);
	case K_CLOSE:
		f->u.close.error = get_var(r);
		f->u.close.frame_type = f->type == 0x1c ? get_var(r) : 0;
		len = get_var(r);
		f->u.close.reason = get_bytes(r, len);
		f->u.close.reason_len = (size_t)len;
		return !r->bad;
	default:
		return parse_other(r, t, f);
	}
}

uint64_t proto_qwire_frame_parse(const uint8_t **p, const uint8_t *end,
				 proto_qwire_frame *f)
{
	rd r = {*p, end, 0};
	uint64_t type = get_var(&r);
	const ftype *t = find_ftype(type);
	if (r.bad || t == NULL) {
		return FEE;
	}
	/* Every RFC 9000 type fits one byte. */
	if (r.p - *p != 1) {
		return PROTO_QWIRE_PROTOCOL_VIOLATION;
	}
	memset(f, 0, sizeof(*f));
	f->type = type;
	if (!parse_body(&r, t, f)) {
		return FEE;
	}
	*p = r.p;
	return 0;
}

static void emit_ack(wr *w, const proto_qwire_frame *f)
{
	const proto_qwire_ack_range *r = f->u.ack.ranges;
	put_var(w, r[0].largest);
	put_var(w, f->u.ack.delay);
	put_var(w, f->u.ack.nranges - 1);
	put_var(w, r[0].largest - r[0].smallest);
	for (size_t i = 1; i < f->u.ack.nranges; i++) {
		put_var(w, r[i - 1].smallest - r[i].largest - 2);
		put_var(w, r[i].largest - r[i].smallest);
	}
	if (f->type == 0x03) {
		put_var(w, f->u.ack.ect0);
		put_var(w, f->u.ack.ect1);
		put_var(w, f->u.ack.ce);
	}
}

static void emit_other(wr *w, const ftype *t, const proto_qwire_frame *f)
{
	const uint64_t v[3] = {f->u.other.a, f->u.other.b, f->u.other.c};
	for (size_t i = 0; i < t->nvar; i++) {
		put_var(w, v[i]);
	}
	if (t->tail == T_LEN) {
		put_vbytes(w, f->u.other.data, f->u.other.len);
	} else if (t->tail == T_PATH) {
		put_bytes(w, f->u.other.data, f->u.other.len);
	} else if (t->tail == T_CID) {
		put_be(w, f->u.other.len, 1);
		put_bytes(w, f->u.other.data, f->u.other.len);
		put_bytes(w, f->u.other.reset_token,
			  PROTO_QWIRE_RESET_TOKEN_LEN);
	}
}

/* Sizes (w->p NULL) or writes |f|; returns 0 if it cannot be written.
 * Checks may follow the writes: frame_write only writes what sized
 * cleanly. */
static int emit_frame(wr *w, const proto_qwire_frame *f)
{
	const ftype *t = find_ftype(f->type);
	if (t == NULL) {
		return 0;
	}
	switch (t->kind) {
	case K_PADDING:
		put_bytes(w, NULL, f->padding_len);
		return f->padding_len > 0;
	case K_ACK:
		if (!ack_valid(f)) {
			return 0;
		}
		put_var(w, f->type);
		emit_ack(w, f);
		break;
	case K_CRYPTO:
		put_var(w, f->type);
		put_var(w, f->u.crypto.offset);
		put_vbytes(w, f->u.crypto.data, f->u.crypto.len);
		if (!data_end_valid(f->u.crypto.offset, f->u.crypto.len) ||
		    !has(f->u.crypto.data, f->u.crypto.len)) {
			return 0;
		}
		break;
	case K_STREAM:
		put_var(w, 0x0a | (f->u.stream.offset > 0 ? 0x04 : 0) |
			       (f->u.stream.fin ? 0x01 : 0));
		put_var(w, f->u.stream.id);
		if (f->u.stream.offset > 0) {
			put_var(w, f->u.stream.offset);
		}
		put_vbytes(w, f->u.stream.data, f->u.stream.len);
		if (!data_end_valid(f->u.stream.offset, f->u.stream.len) ||
		    !has(f->u.stream.data, f->u.stream.len)) {
			return 0;
		}
		break;
	case K_CLOSE:
		put_var(w, f->type);
		put_var(w, f->u.close.error);
		if (f->type == 0x1c) {
			put_var(w, f->u.close.frame_type);
		}
		put_vbytes(w, f->u.close.reason, f->u.close.reason_len);
		if (!has(f->u.close.reason, f->u.close.reason_len)) {
			return 0;
		}
		break;
	default:
		if (!other_valid(f)) {
			return 0;
		}
		put_var(w, f->type);
		emit_other(w, t, f);
		break;
	}
	return !w->bad;
}

size_t proto_qwire_frame_size(const proto_qwire_frame *f)
{
	wr w = {NULL, 0, 0};
	return emit_frame(&w, f) ? w.n : 0;
}

size_t proto_qwire_frame_write(uint8_t *buf, size_t cap,
			       const proto_qwire_frame *f)
{
	size_t n = proto_qwire_frame_size(f);
	if (n == 0 || n > cap) {
		return 0;
	}
	wr w = {buf, 0, 0};
	emit_frame(&w, f);
	assert(w.n == n);
	return w.n;
}

/* The most of |len| data bytes that fit in |room| together with their
 * Length field: for each size of the Length field, as many bytes as it
 * can count and the room leaves. */
static size_t fit_data(size_t room, size_t len)
{
	static const size_t lens[] = {1, 2, 4, 8};
	size_t best = 0;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		if (room <= lens[i]) {
			break;
		}
		uint64_t n = room - lens[i];
		uint64_t most = lens[i] == 8
				    ? VMAX
				    : (UINT64_C(1) << (8 * lens[i] - 2)) - 1;
		n = n < most ? n : most;
		n = n < len ? n : len;
		best = n > best ? (size_t)n : best;
	}
	return best;
}

/* |len| capped so the data ends at or below 2^62 - 1. */
static size_t cap_end(uint64_t offset, size_t len)
{
	return len <= VMAX - offset ? len : (size_t)(VMAX - offset);
}

size_t proto_qwire_stream_fit(size_t cap, uint64_t id, uint64_t offset,
			      size_t len)
{
	if (id > VMAX || offset > VMAX) {
		return 0;
	}
	size_t head = 1 + proto_qwire_varint_len(id) +
		      (offset > 0 ? proto_qwire_varint_len(offset) : 0);
	return cap > head ? fit_data(cap - head, cap_end(offset, len)) : 0;
}

size_t proto_qwire_crypto_fit(size_t cap, uint64_t offset, size_t len)
{
	if (offset > VMAX) {
		return 0;
	}
	size_t head = 1 + proto_qwire_varint_len(offset);
	return cap > head ? fit_data(cap - head, cap_end(offset, len)) : 0;
}

int proto_qwire_frame_allowed(uint64_t type, int ptype)
{
	const ftype *t = find_ftype(type);
	if (t == NULL || ptype < 0 || ptype > PROTO_QWIRE_VERSION_NEG) {
		return 0;
	}
	return (t->pkts >> ptype) & 1;
}

const char *proto_qwire_frame_name(uint64_t type)
{
	const ftype *t = find_ftype(type);
	return t != NULL ? t->name : "UNKNOWN";
}

/* Summaries */

/* An appender that keeps |buf| NUL-terminated and refuses what does not
 * fit whole within |cap| (then |over| is set until reset). */
typedef struct sb {
	char *buf;
	size_t cap, n;
	int over;
} sb;

__attribute__((format(printf, 2, 3))) static void
sb_printf(sb *s, const char *fmt, ...)
{
	if (s->over || s->n >= s->cap) {
		s->over = 1;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(s->buf + s->n, s->cap - s->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= s->cap - s->n) {
		s->over = 1;
		s->buf[s->n] = '\0';
		return;
	}
	s->n += (size_t)k;
}

static void describe_ack(sb *s, const proto_qwire_frame *f)
{
	sb_printf(s, "[");
	for (size_t i = 0; i < f->u.ack.nranges; i++) {
		const proto_qwire_ack_range *r = &f->u.ack.ranges[i];
		sb_printf(s, "%s%" PRIu64, i > 0 ? "," : "", r->smallest);
		if (r->largest != r->smallest) {
			sb_printf(s, "-%" PRIu64, r->largest);
		}
	}
	sb_printf(s, "]%s", f->type == 0x03 ? "ecn" : "");
}

static void describe_other(sb *s, const ftype *t, const proto_qwire_frame *f)
{
	const uint64_t v[3] = {f->u.other.a, f->u.other.b, f->u.other.c};
	int lists_len = t->tail == T_LEN || t->tail == T_CID;
	if (t->nvar == 0 && !lists_len) {
		return;
	}
	sb_printf(s, "(");
	if (is_streams_limit(f->type)) {
		sb_printf(s, "%s,", f->type & 1 ? "uni" : "bidi");
	}
	for (size_t i = 0; i < t->nvar; i++) {
		sb_printf(s, "%s%" PRIu64, i > 0 ? "," : "", v[i]);
	}
	if (lists_len) {
		sb_printf(s, "%s%zu", t->nvar > 0 ? "," : "", f->u.other.len);
	}
	sb_printf(s, ")");
}

static void describe(sb *s, const proto_qwire_frame *f)
{
	const ftype *t = find_ftype(f->type);
	sb_printf(s, "%s%s", s->n > 0 ? "," : "", t->name);
	switch (t->kind) {
	case K_PADDING:
		sb_printf(s, "(%zu)", f->padding_len);
		break;
	case K_ACK:
		describe_ack(s, f);
		break;
	case K_CRYPTO:
		sb_printf(s, "(%" PRIu64 "+%zu)", f->u.crypto.offset,
			  f->u.crypto.len);
		break;
	case K_STREAM:
		sb_printf(s, "(%" PRIu64 ",%" PRIu64 "+%zu%s)", f->u.stream.id,
			  f->u.stream.offset, f->u.stream.len,
			  f->u.stream.fin ? ",fin" : "");
		break;
	case K_CLOSE:
		sb_printf(s, "(0x%" PRIx64, f->u.close.error);
		if (f->type == 0x1c) {
			sb_printf(s, ",0x%" PRIx64, f->u.close.frame_type);
		}
		sb_printf(s, ")");
		break;
	default:
		describe_other(s, t, f);
		break;
	}
}

int proto_qwire_summarize(const uint8_t *payload, size_t len, char *buf,
			  size_t buflen)
{
	sb s = {buf, buflen > SUMMARY_RESERVE ? buflen - SUMMARY_RESERVE : 0, 0,
		0};
	if (buflen > 0) {
		buf[0] = '\0';
	}
	const uint8_t *p = payload, *end = len > 0 ? payload + len : payload;
	uint64_t err = len == 0 ? PROTO_QWIRE_PROTOCOL_VIOLATION : 0;
	int cut = 0;
	proto_qwire_frame f;
	/* Each frame takes at least one byte. */
	while (err == 0 && p < end) {
		err = proto_qwire_frame_parse(&p, end, &f);
		if (err != 0 || cut || buflen == 0) {
			continue;
		}
		size_t mark = s.n;
		describe(&s, &f);
		if (s.over) {
			s.n = mark;
			buf[mark] = '\0';
			cut = 1;
		}
	}
	if (buflen > 0) {
		s.cap = buflen;
		s.over = 0;
		if (cut) {
			sb_printf(&s, "%s...", s.n > 0 ? "," : "");
		}
		if (err != 0) {
			sb_printf(&s, "%s!ERR", s.n > 0 ? "," : "");
		}
	}
	return (int)err;
}

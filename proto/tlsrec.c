#include "proto/tlsrec.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define HDR 5
#define TLS13_OVERHEAD 17 /* content type byte + 16-byte AEAD tag */

enum { RT_CCS = 20, RT_ALERT = 21, RT_HANDSHAKE = 22, RT_APPDATA = 23 };

static int type_index(int type)
{
	return type - RT_CCS;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void proto_tlsrec_init(proto_tlsrec *r, uint64_t at,
		       proto_tlsrec_label_fn label, void *user_data)
{
	memset(r, 0, sizeof(*r));
	r->label = label;
	r->user_data = user_data;
	r->at = at;
}

void proto_tlsrec_free(proto_tlsrec *r)
{
	(void)r;
}

void proto_tlsrec_reset(proto_tlsrec *r, uint64_t at)
{
	for (int i = 0; i < 3; i++) {
		r->lo[i] = r->hi[i] = r->total[i];
	}
	r->nmsgs = 0;
	r->at = at;
	r->body_left = 0;
	r->hdr_have = 0;
}

void proto_tlsrec_message(proto_tlsrec *r, int type, const char *name,
			  size_t len, uint64_t at)
{
	if (type < RT_CCS || type > RT_HANDSHAKE || len == 0) {
		return;
	}
	if (r->nmsgs == PROTO_TLSREC_MSGS_MAX) {
		/* Only messages BoringSSL reported and never wrote (a failed
		 * flight) stay long; forgetting one loses its label, and
		 * offsets stay right (each message keeps its own). */
		memmove(r->msgs, r->msgs + 1,
			sizeof(r->msgs[0]) * (PROTO_TLSREC_MSGS_MAX - 1));
		r->nmsgs--;
		r->dropped++;
	}
	int ti = type_index(type);
	proto_tlsrec_msg *m = &r->msgs[r->nmsgs++];
	snprintf(m->name, sizeof(m->name), "%s", name);
	m->type = (uint8_t)type;
	m->len = len;
	m->toff = r->total[ti];
	m->at = at;
	r->total[ti] += len;
}

/* Drops the messages every byte of which records have carried. */
static void compact(proto_tlsrec *r)
{
	int k = 0;
	for (int i = 0; i < r->nmsgs; i++) {
		const proto_tlsrec_msg *m = &r->msgs[i];
		if (m->toff + m->len > r->lo[type_index(m->type)]) {
			r->msgs[k++] = *m;
		}
	}
	r->nmsgs = k;
}

/* A record [s, e) carries bytes [lo + lmin .. hi + lmax) of its type's
 * messages, its plaintext starting at stream offset |pstart| (when exact:
 * lo == hi and lmin == lmax). */
static void place(proto_tlsrec *r, int type, uint64_t s, uint64_t e,
		  uint64_t pstart, uint64_t lmin, uint64_t lmax)
{
	int ti = type_index(type);
	uint64_t lo = r->lo[ti], hi = r->hi[ti];
	if (lo == hi && lmin == lmax) {
		uint64_t end = lo + lmin;
		int last = -1;
		for (int i = 0; i < r->nmsgs; i++) {
			const proto_tlsrec_msg *m = &r->msgs[i];
			if (m->type == type && m->toff < end &&
			    m->toff + m->len > lo) {
				last = i;
			}
		}
		int first = 1;
		for (int i = 0; i <= last; i++) {
			const proto_tlsrec_msg *m = &r->msgs[i];
			if (m->type != type || m->toff >= end ||
			    m->toff + m->len <= lo) {
				continue;
			}
			uint64_t a = max64(m->toff, lo);
			uint64_t b = min64(m->toff + m->len, end);
			uint64_t from = first ? s : pstart + (a - lo);
			uint64_t to = i == last ? e : pstart + (b - lo);
			r->label(r->user_data, from, to, m->name);
			first = 0;
		}
		/* More plaintext than was reported (not seen with BoringSSL:
		 * padding, or a message not reported) is framing of the
		 * last message; the next record starts after what was. */
		r->lo[ti] = r->hi[ti] = min64(end, r->total[ti]);
	} else {
		for (int i = 0; i < r->nmsgs; i++) {
			const proto_tlsrec_msg *m = &r->msgs[i];
			if (m->type == type && m->toff < hi + lmax &&
			    m->toff + m->len > lo) {
				r->label(r->user_data, s, e, m->name);
			}
		}
		r->inexact++;
		r->lo[ti] = min64(lo + lmin, r->total[ti]);
		r->hi[ti] = min64(hi + lmax, r->total[ti]);
	}
	compact(r);
}

/* Whether a handshake message reported before stream offset |s| has
 * bytes no record has carried yet. */
static int handshake_pending(const proto_tlsrec *r, uint64_t s)
{
	uint64_t lo = r->lo[type_index(RT_HANDSHAKE)];
	for (int i = 0; i < r->nmsgs; i++) {
		const proto_tlsrec_msg *m = &r->msgs[i];
		if (m->type == RT_HANDSHAKE && m->at <= s &&
		    m->toff + m->len > lo) {
			return 1;
		}
	}
	return 0;
}

static void record(proto_tlsrec *r, const proto_tlsrec_prot *pr, uint64_t s,
		   int type, uint64_t len)
{
	uint64_t e = s + HDR + len;
	if (type == RT_ALERT || type == RT_APPDATA) {
		for (int i = 0; i < r->nmsgs; i++) {
			const proto_tlsrec_msg *m = &r->msgs[i];
			if (m->type == RT_ALERT && m->at == e) {
				int ti = type_index(RT_ALERT);
				r->label(r->user_data, s, e, m->name);
				r->lo[ti] = r->hi[ti] = m->toff + m->len;
				compact(r);
				return;
			}
		}
	}
	uint64_t pstart = s + HDR, lmin = len, lmax = len;
	switch (type) {
	case RT_APPDATA:
		/* TLS 1.2: application data. TLS 1.3: the inner type is
		 * hidden; a flight is written before any later application
		 * data, so a record is the flight's while some of it is not
		 * yet placed. */
		if (!pr->tls13 || len < TLS13_OVERHEAD ||
		    !handshake_pending(r, s)) {
			r->label(r->user_data, s, e, "ApplicationData");
			return;
		}
		type = RT_HANDSHAKE;
		lmin = lmax = len - TLS13_OVERHEAD;
		break;
	case RT_CCS:
	case RT_ALERT:
	case RT_HANDSHAKE:
		if (pr->tls13 || !r->ccs_written) {
			break; /* plaintext */
		}
		/* TLS 1.2, encrypted. */
		if (pr->tag != 0) {
			uint64_t over = (uint64_t)pr->nonce + pr->tag;
			pstart += pr->nonce;
			lmin = lmax = len > over ? len - over : 0;
		} else if (pr->mac != 0) {
			/* IV, then plaintext, MAC and 1..256 bytes of
			 * padding (its length byte included). */
			uint64_t over = (uint64_t)pr->iv + pr->mac + 1;
			lmax = len > over ? len - over : 0;
			lmin = lmax > 255 ? lmax - 255 : 0;
		} else {
			lmin = 0;
		}
		break;
	default:
		return; /* not a record BoringSSL writes */
	}
	if (type == RT_CCS) {
		r->ccs_written = 1;
	}
	place(r, type, s, e, pstart, lmin, lmax);
}

void proto_tlsrec_write(proto_tlsrec *r, const proto_tlsrec_prot *prot,
			const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (r->body_left > 0) {
			uint64_t k = min64(r->body_left, n - i);
			r->body_left -= k;
			r->at += k;
			i += (size_t)k;
			continue;
		}
		if (r->hdr_have == 0) {
			r->rec_start = r->at;
		}
		r->hdr[r->hdr_have++] = p[i++];
		r->at++;
		if (r->hdr_have == HDR) {
			r->hdr_have = 0;
			r->body_left = (uint64_t)r->hdr[3] << 8 | r->hdr[4];
			record(r, prot, r->rec_start, r->hdr[0], r->body_left);
		}
	}
	assert(r->hdr_have < HDR);
}

/* tests/fuzz/qwire_fuzz.c: fuzz harness for proto/quic_wire.
 *
 * LLVMFuzzerTestOneInput is the libFuzzer entry point: with -DTLSIM_FUZZ=ON
 * the build makes build/tests/fuzz/libfuzzer/tests/fuzz/qwire_fuzz (clang
 * -fsanitize=fuzzer,address,undefined), and every build makes
 * build/tests/fuzz/tlsim_fuzz_qwire (tests/fuzz/driver.c); README "Testing
 * and hardening" says how to run them. A property violation aborts with its
 * description, as a crash would.
 *
 * The seed corpus (tests/fuzz/corpus/qwire/) holds inputs in the format
 * documented in qwire_fuzz.h, written with the proto_qwire writers: a
 * client Initial like RFC 9001 A.2's, Initial + Handshake + 1-RTT
 * coalesced, 0-RTT, Retry and version negotiation datagrams, and frame
 * lists with every frame type, a many-range ACK with ECN counts and a
 * CONNECTION_CLOSE. The unit test qwire_fuzz_corpus requires each to parse
 * cleanly, so a seed that stops being valid is noticed. */
#include "tests/fuzz/qwire_fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUMMARY_MAX 128 /* the trace's frames column (SIM_PACKET_INFO_MAX) */
#define SUMMARY_SMALL 10

static int same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	return n == 0 || (a != NULL && b != NULL && memcmp(a, b, n) == 0);
}

static int is_stream(uint64_t type)
{
	return type >= 0x08 && type <= 0x0f;
}

int qwire_fuzz_frame_eq(const proto_qwire_frame *a, const proto_qwire_frame *b)
{
	if (is_stream(a->type) || is_stream(b->type)) {
		return is_stream(a->type) && is_stream(b->type) &&
		       a->u.stream.id == b->u.stream.id &&
		       a->u.stream.offset == b->u.stream.offset &&
		       a->u.stream.len == b->u.stream.len &&
		       same_bytes(a->u.stream.data, b->u.stream.data,
				  a->u.stream.len) &&
		       a->u.stream.fin == b->u.stream.fin;
	}
	if (a->type != b->type) {
		return 0;
	}
	switch (a->type) {
	case 0x00:
		return a->padding_len == b->padding_len;
	case 0x02:
	case 0x03:
		if (a->u.ack.largest != b->u.ack.largest ||
		    a->u.ack.delay != b->u.ack.delay ||
		    a->u.ack.nranges != b->u.ack.nranges ||
		    a->u.ack.ect0 != b->u.ack.ect0 ||
		    a->u.ack.ect1 != b->u.ack.ect1 ||
		    a->u.ack.ce != b->u.ack.ce ||
		    a->u.ack.nranges > PROTO_QWIRE_ACK_RANGES_MAX) {
			return 0;
		}
		for (size_t i = 0; i < a->u.ack.nranges; i++) {
			if (a->u.ack.ranges[i].smallest !=
				b->u.ack.ranges[i].smallest ||
			    a->u.ack.ranges[i].largest !=
				b->u.ack.ranges[i].largest) {
				return 0;
			}
		}
		return 1;
	case 0x06:
		return a->u.crypto.offset == b->u.crypto.offset &&
		       a->u.crypto.len == b->u.crypto.len &&
		       same_bytes(a->u.crypto.data, b->u.crypto.data,
				  a->u.crypto.len);
	case 0x1c:
	case 0x1d:
		return a->u.close.error == b->u.close.error &&
		       a->u.close.frame_type == b->u.close.frame_type &&
		       a->u.close.reason_len == b->u.close.reason_len &&
		       same_bytes(a->u.close.reason, b->u.close.reason,
				  a->u.close.reason_len);
	default:
		return a->u.other.a == b->u.other.a &&
		       a->u.other.b == b->u.other.b &&
		       a->u.other.c == b->u.other.c &&
		       a->u.other.len == b->u.other.len &&
		       same_bytes(a->u.other.data, b->u.other.data,
				  a->u.other.len) &&
		       (a->u.other.reset_token == NULL) ==
			   (b->u.other.reset_token == NULL) &&
		       (a->u.other.reset_token == NULL ||
			same_bytes(a->u.other.reset_token,
				   b->u.other.reset_token,
				   PROTO_QWIRE_RESET_TOKEN_LEN));
	}
}

/* A parsed frame must be writable, refuse a buffer one byte short, and
 * parse back to itself from exactly the bytes written. */
static const char *check_rewrite(const proto_qwire_frame *f)
{
	size_t n = proto_qwire_frame_size(f);
	if (n == 0) {
		return "a parsed frame cannot be written";
	}
	uint8_t *buf = malloc(n);
	if (buf == NULL) {
		return "out of memory";
	}
	const char *m = NULL;
	proto_qwire_frame g;
	const uint8_t *q = buf;
	if (proto_qwire_frame_write(buf, n - 1, f) != 0) {
		m = "frame_write ignored its capacity";
	} else if (proto_qwire_frame_write(buf, n, f) != n) {
		m = "frame_write and frame_size disagree";
	} else if (proto_qwire_frame_parse(&q, buf + n, &g) != 0 ||
		   q != buf + n || !qwire_fuzz_frame_eq(f, &g)) {
		m = "a written frame does not parse back to itself";
	}
	free(buf);
	return m;
}

static int ends_with_err(const char *s)
{
	size_t n = strlen(s);
	return n >= 4 && strcmp(s + n - 4, "!ERR") == 0;
}

/* Parses a frame list as |ptype|'s payload; |*err| gets the first error
 * (PROTOCOL_VIOLATION for an empty list, as summarize says). */
static const char *check_frames(const uint8_t *p, size_t len, int ptype,
				uint64_t *err)
{
	const uint8_t *q = p, *end = p + len;
	proto_qwire_frame f;
	*err = len == 0 ? PROTO_QWIRE_PROTOCOL_VIOLATION : 0;
	while (*err == 0 && q < end) {
		const uint8_t *at = q;
		*err = proto_qwire_frame_parse(&q, end, &f);
		if (*err != 0) {
			if (q != at) {
				return "a failed parse moved the cursor";
			}
			if (*err != PROTO_QWIRE_FRAME_ENCODING_ERROR &&
			    *err != PROTO_QWIRE_PROTOCOL_VIOLATION) {
				return "parse returned an unexpected code";
			}
			break;
		}
		if (q <= at || q > end) {
			return "parse did not advance within bounds";
		}
		if (strcmp(proto_qwire_frame_name(f.type), "UNKNOWN") == 0 ||
		    !proto_qwire_frame_allowed(f.type, PROTO_QWIRE_1RTT)) {
			return "a parsed frame has an unknown type";
		}
		(void)proto_qwire_frame_allowed(f.type, ptype);
		const char *m = check_rewrite(&f);
		if (m != NULL) {
			return m;
		}
	}
	char big[SUMMARY_MAX], small[SUMMARY_SMALL];
	if (proto_qwire_summarize(p, len, big, sizeof(big)) != (int)*err ||
	    proto_qwire_summarize(p, len, small, sizeof(small)) != (int)*err) {
		return "summarize disagrees with frame_parse";
	}
	if (ends_with_err(big) != (*err != 0) ||
	    strlen(small) >= SUMMARY_SMALL) {
		return "summary text does not match its result";
	}
	return NULL;
}

/* Compares what the writers take; the low bits of the first byte are the
 * packet number length except in Retry and version negotiation, where
 * they are unused. */
static int same_hdr(const proto_qwire_hdr *a, const proto_qwire_hdr *b)
{
	int pn_bits =
	    a->type != PROTO_QWIRE_RETRY && a->type != PROTO_QWIRE_VERSION_NEG;
	return a->type == b->type && a->version == b->version &&
	       (!pn_bits || (a->first & 3) == (b->first & 3)) &&
	       a->dcid_len == b->dcid_len &&
	       same_bytes(a->dcid, b->dcid, a->dcid_len) &&
	       a->scid_len == b->scid_len &&
	       same_bytes(a->scid, b->scid, a->scid_len) &&
	       a->token_len == b->token_len &&
	       same_bytes(a->token, b->token, a->token_len) &&
	       a->nversions == b->nversions &&
	       same_bytes(a->versions, b->versions, 4 * a->nversions) &&
	       a->length == b->length;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Writes |h|'s header again from its fields (the unprotected first byte
 * gives pn_len), appends the rest of the packet, parses that and compares.
 * Returns NULL when the header cannot be rewritten (pn_len beyond the
 * Length) or survives. */
static const char *check_header_rewrite(const uint8_t *pkt,
					const proto_qwire_hdr *h,
					size_t short_dcid_len)
{
	size_t pn_len = (size_t)(h->first & 3) + 1, hlen = 0, tail = 0;
	uint64_t pn = 0;
	int has_pn =
	    h->type != PROTO_QWIRE_RETRY && h->type != PROTO_QWIRE_VERSION_NEG;
	if (has_pn) {
		if (pn_len > h->length) {
			return NULL;
		}
		for (size_t i = 0; i < pn_len; i++) {
			pn = pn << 8 | pkt[h->pn_offset + i];
		}
		tail = h->length - pn_len;
	} else if (h->type == PROTO_QWIRE_RETRY) {
		tail = PROTO_QWIRE_RETRY_TAG_LEN;
	}
	if (h->type == PROTO_QWIRE_1RTT) {
		hlen = 1 + h->dcid_len + pn_len;
	} else if (h->type == PROTO_QWIRE_VERSION_NEG) {
		hlen = 7 + h->dcid_len + h->scid_len + 4 * h->nversions;
	} else {
		hlen = proto_qwire_long_header_size(h->type, h->dcid_len,
						    h->scid_len, h->token_len,
						    pn_len, tail);
	}
	uint8_t *buf = malloc(hlen + tail);
	uint32_t *versions = malloc(4 * h->nversions + 4);
	if (buf == NULL || versions == NULL) {
		free(buf);
		free(versions);
		return "out of memory";
	}
	size_t n;
	if (h->type == PROTO_QWIRE_1RTT) {
		n = proto_qwire_write_short_header(buf, hlen, h->dcid,
						   h->dcid_len, h->first & 0x04,
						   pn, pn_len);
	} else if (h->type == PROTO_QWIRE_VERSION_NEG) {
		for (size_t i = 0; i < h->nversions; i++) {
			versions[i] = get32(h->versions + 4 * i);
		}
		n = proto_qwire_write_version_neg(
		    buf, hlen, h->dcid, h->dcid_len, h->scid, h->scid_len,
		    versions, h->nversions);
	} else {
		n = proto_qwire_write_long_header(
		    buf, hlen, h->type, h->version, h->dcid, h->dcid_len,
		    h->scid, h->scid_len, h->token, h->token_len, pn, pn_len,
		    tail);
	}
	const char *m = NULL;
	proto_qwire_hdr g;
	if (n != hlen || hlen == 0) {
		m = "a parsed header cannot be written back";
	} else {
		memcpy(buf + hlen, pkt + h->packet_len - tail, tail);
		if (proto_qwire_parse_header(buf, hlen + tail, short_dcid_len,
					     &g) != 0 ||
		    g.packet_len != hlen + tail || !same_hdr(h, &g) ||
		    (g.type == PROTO_QWIRE_1RTT &&
		     (g.first & 0x04) != (h->first & 0x04))) {
			m = "a written header does not parse back to itself";
		}
	}
	free(buf);
	free(versions);
	return m;
}

static const char *check_datagram(const uint8_t *d, size_t len,
				  size_t short_dcid_len, int *clean)
{
	size_t off = 0;
	/* Each packet takes at least one byte. */
	while (off < len) {
		proto_qwire_hdr h;
		if (proto_qwire_parse_header(d + off, len - off, short_dcid_len,
					     &h) != 0) {
			*clean = 0;
			return NULL;
		}
		if (h.packet_len == 0 || h.packet_len > len - off ||
		    h.pn_offset + h.length != h.packet_len ||
		    strcmp(proto_qwire_ptype_name(h.type), "unknown") == 0) {
			return "a parsed header is inconsistent";
		}
		const char *m =
		    check_header_rewrite(d + off, &h, short_dcid_len);
		if (m != NULL) {
			return m;
		}
		size_t pn_len = (size_t)(h.first & 3) + 1;
		if (h.type == PROTO_QWIRE_RETRY ||
		    h.type == PROTO_QWIRE_VERSION_NEG) {
			/* no frames */
		} else if (pn_len > h.length) {
			*clean = 0;
		} else {
			uint64_t err;
			m = check_frames(d + off + h.pn_offset + pn_len,
					 h.length - pn_len, h.type, &err);
			if (m != NULL) {
				return m;
			}
			*clean &= err == 0;
		}
		off += h.packet_len;
	}
	return NULL;
}

const char *qwire_fuzz_check(const uint8_t *data, size_t size, int *clean)
{
	int ok = 1;
	const char *m = NULL;
	if (size == 0) {
		ok = 0;
	} else if (data[0] & 0x80) {
		m = check_datagram(data + 1, size - 1,
				   (size_t)(data[0] & 0x1f) % 21, &ok);
	} else {
		uint64_t err;
		m = check_frames(data + 1, size - 1, PROTO_QWIRE_1RTT, &err);
		ok = err == 0;
	}
	if (clean != NULL) {
		*clean = ok && m == NULL;
	}
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *m = qwire_fuzz_check(data, size, NULL);
	if (m != NULL) {
		fprintf(stderr, "qwire_fuzz: %s\n", m);
		abort();
	}
	return 0;
}

/* proto/quic_wire.h: the QUIC version 1 wire format (RFC 9000).
 *
 * Pure and allocation-free: variable-length integers (section 16), packet
 * headers (17), packet number encoding and decoding (17.1, appendix A),
 * frames (12.4, 19) and the one-line frame summaries the trace stores. No
 * crypto: header protection and packet protection belong to another
 * module, so the header functions see the first byte and the packet number
 * as they are on the wire (protected) when parsing, and write them
 * unprotected.
 *
 * Ownership: nothing here allocates or keeps a pointer. Parsed headers and
 * frames point into the caller's input (token, versions, frame data),
 * which must outlive them. Every reader takes an explicit end and never
 * reads past it, whatever the input; every writer takes a capacity and
 * writes nothing beyond it.
 *
 * Limits: connection IDs up to PROTO_QWIRE_CID_MAX bytes (also in version
 * negotiation packets, where the invariants allow 255: longer ones are
 * rejected), ACK frames up to PROTO_QWIRE_ACK_RANGES_MAX ranges. */
#ifndef TLSIM_PROTO_QUIC_WIRE_H
#define TLSIM_PROTO_QUIC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_QWIRE_VERSION_1 0x00000001u
#define PROTO_QWIRE_CID_MAX 20
#define PROTO_QWIRE_ACK_RANGES_MAX 32
/* The largest variable-length integer, 2^62 - 1; also the largest stream
 * or CRYPTO offset + length and the largest packet number. */
#define PROTO_QWIRE_VARINT_MAX ((UINT64_C(1) << 62) - 1)
/* Bytes of the Retry Integrity Tag that ends a Retry packet (RFC 9001
 * 5.8). */
#define PROTO_QWIRE_RETRY_TAG_LEN 16
/* Bytes of a NEW_CONNECTION_ID frame's Stateless Reset Token, and of the
 * data of PATH_CHALLENGE and PATH_RESPONSE. */
#define PROTO_QWIRE_RESET_TOKEN_LEN 16
#define PROTO_QWIRE_PATH_DATA_LEN 8

/* Transport error codes the frame parser returns (RFC 9000 20.1). */
#define PROTO_QWIRE_FRAME_ENCODING_ERROR 0x07
#define PROTO_QWIRE_PROTOCOL_VIOLATION 0x0a

/* Variable-length integers (RFC 9000 16). Any encoding length is accepted
 * when reading (0x40 0x25 is 37, like 0x25); writers use the shortest. */

/* proto_qwire_varint_len returns the bytes of the shortest encoding of |v|
 * (1, 2, 4 or 8), or 0 if |v| is above PROTO_QWIRE_VARINT_MAX. */
size_t proto_qwire_varint_len(uint64_t v);

/* proto_qwire_varint_put writes |v| in its shortest encoding at |p| and
 * returns the byte after it. The caller makes room for
 * proto_qwire_varint_len(v) bytes; |v| must be at most
 * PROTO_QWIRE_VARINT_MAX (asserted; a release build writes the low 62
 * bits). */
uint8_t *proto_qwire_varint_put(uint8_t *p, uint64_t v);

/* proto_qwire_varint_get reads one variable-length integer at |*p| into
 * |*out| and advances |*p| past it. Returns 0, or -1 if the encoding does
 * not end by |end| (then |*p| and |*out| are unchanged). */
int proto_qwire_varint_get(const uint8_t **p, const uint8_t *end,
			   uint64_t *out);

/* Packet types. The first four are the long-header types in their wire
 * order (the two type bits of the first byte). */
enum proto_qwire_ptype {
	PROTO_QWIRE_INITIAL,
	PROTO_QWIRE_0RTT,
	PROTO_QWIRE_HANDSHAKE,
	PROTO_QWIRE_RETRY,
	PROTO_QWIRE_1RTT,
	PROTO_QWIRE_VERSION_NEG
};

/* proto_qwire_ptype_name returns "initial", "0rtt", "handshake", "retry",
 * "1rtt" or "version_negotiation" for a proto_qwire_ptype, "unknown" for
 * anything else. */
const char *proto_qwire_ptype_name(int type);

/* A parsed packet header. Offsets count from the start of the packet. */
typedef struct proto_qwire_hdr {
	int type;         /* enum proto_qwire_ptype */
	uint8_t first;    /* the first byte as received (still protected) */
	uint32_t version; /* long headers; 0 for 1-RTT and version neg. */
	uint8_t dcid[PROTO_QWIRE_CID_MAX], scid[PROTO_QWIRE_CID_MAX];
	size_t dcid_len, scid_len; /* scid_len is 0 for 1-RTT */
	/* Initial: the Token (token_len may be 0). Retry: the Retry Token,
	 * never empty. Otherwise NULL and 0. Points into the packet. */
	const uint8_t *token;
	size_t token_len;
	/* Version negotiation: the Supported Version list, |nversions|
	 * big-endian 32-bit versions. Otherwise NULL and 0. */
	const uint8_t *versions;
	size_t nversions;
	/* Initial, 0-RTT, Handshake, 1-RTT: where the (protected) packet
	 * number starts. Retry: where the Retry Integrity Tag starts.
	 * Version negotiation: where the version list starts. */
	size_t pn_offset;
	/* Long headers with a Length field: its value (packet number and
	 * payload, at least 1). 1-RTT, Retry and version negotiation: the
	 * bytes from pn_offset to the end of the datagram. */
	size_t length;
	/* The bytes of this packet in the datagram, pn_offset + length: the
	 * next coalesced packet starts there. Only long headers with a Length
	 * field can be followed by another packet; for the others it is all
	 * of |len|. */
	size_t packet_len;
} proto_qwire_hdr;

/* proto_qwire_parse_header parses the part of the packet at |pkt| that
 * header protection leaves readable; |len| is what is left of the datagram
 * from |pkt|. A short header does not carry its Destination Connection ID
 * length: |short_dcid_len| is the length of the receiver's own CIDs.
 * Fills |*h| and returns 0, or returns -1 (|*h| then holds no pointers)
 * for malformed input: empty; truncated anywhere up to and including the
 * Length field; fixed bit 0 (in anything but version negotiation); a CID
 * longer than PROTO_QWIRE_CID_MAX (or |short_dcid_len| above it); a
 * version other than 1 in a long header that is not version negotiation
 * (version 0); a version negotiation packet whose list is empty or not a
 * whole number of versions; a Retry packet too short for its tag or with
 * an empty Retry Token; a Length of 0 or beyond the datagram; a short
 * header with no byte after the DCID. Never reads past |len|. To walk a
 * datagram of coalesced packets, advance by h->packet_len while bytes
 * remain. */
int proto_qwire_parse_header(const uint8_t *pkt, size_t len,
			     size_t short_dcid_len, proto_qwire_hdr *h);

/* proto_qwire_write_long_header writes a long header into |buf| (at most
 * |cap| bytes) and returns its size, or 0 if it does not fit or an
 * argument is invalid (|type| not Initial, 0-RTT, Handshake or Retry;
 * |version| 0; a CID above PROTO_QWIRE_CID_MAX; a token for a type other
 * than Initial or Retry; an empty token for Retry; |pn_len| not 1..4; a
 * Length above PROTO_QWIRE_VARINT_MAX). CIDs and |token| are copied and
 * may be NULL when their length is 0.
 *
 * Initial, 0-RTT and Handshake: the first byte carries the type, reserved
 * bits 0 and |pn_len| - 1; the Length field is pn_len + payload_len, where
 * |payload_len| counts every byte after the packet number (frames and the
 * AEAD tag the caller will add), encoded in its shortest form, so the
 * header size depends on payload_len: compute it with
 * proto_qwire_long_header_size first when filling a packet up to a size.
 * The packet number follows unprotected: the low |pn_len| bytes of |pn|,
 * big-endian (choose pn_len with proto_qwire_pn_len).
 *
 * Retry: the header and the Retry Token only (unused bits 0; |pn|,
 * |pn_len| and |payload_len| are ignored); the caller appends the
 * PROTO_QWIRE_RETRY_TAG_LEN-byte integrity tag. */
size_t proto_qwire_write_long_header(uint8_t *buf, size_t cap, int type,
				     uint32_t version, const uint8_t *dcid,
				     size_t dcid_len, const uint8_t *scid,
				     size_t scid_len, const uint8_t *token,
				     size_t token_len, uint64_t pn,
				     size_t pn_len, size_t payload_len);

/* proto_qwire_long_header_size returns what proto_qwire_write_long_header
 * would write with the same arguments (given |cap| large enough), or 0 if
 * they are invalid. */
size_t proto_qwire_long_header_size(int type, size_t dcid_len, size_t scid_len,
				    size_t token_len, size_t pn_len,
				    size_t payload_len);

/* proto_qwire_write_short_header writes a 1-RTT header (fixed bit 1, spin
 * bit 0, reserved bits 0, the key phase bit from |key_phase| != 0,
 * |pn_len| - 1), the DCID (copied; NULL if |dcid_len| is 0) and the low
 * |pn_len| bytes of |pn| unprotected. Returns 1 + dcid_len + pn_len, or 0
 * if that exceeds |cap|, |dcid_len| is above PROTO_QWIRE_CID_MAX or
 * |pn_len| is not 1..4. */
size_t proto_qwire_write_short_header(uint8_t *buf, size_t cap,
				      const uint8_t *dcid, size_t dcid_len,
				      int key_phase, uint64_t pn,
				      size_t pn_len);

/* proto_qwire_write_version_neg writes a whole version negotiation packet
 * (first byte 0xc0: RFC 9000 17.2.1 asks servers to set 0x40; version 0;
 * the CIDs as given, which a server copies swapped from the client's
 * packet; |nversions| versions from |versions|, big-endian). Returns its
 * size, or 0 if it does not fit in |cap|, a CID is above
 * PROTO_QWIRE_CID_MAX or |nversions| is 0. */
size_t proto_qwire_write_version_neg(uint8_t *buf, size_t cap,
				     const uint8_t *dcid, size_t dcid_len,
				     const uint8_t *scid, size_t scid_len,
				     const uint32_t *versions,
				     size_t nversions);

/* Packet numbers (RFC 9000 17.1, appendix A.2 and A.3). */

/* proto_qwire_pn_len returns how many bytes (1..4) the packet number
 * |full_pn| needs on the wire given the largest packet number the peer
 * acknowledged in its space (|largest_acked|, -1 for none): enough to
 * represent twice the number of packets from the acknowledged one to this
 * one (all of 0..full_pn when none was acknowledged). Returns 0 when no
 * encoding can (that range exceeds 2^31 packets), |full_pn| is above
 * PROTO_QWIRE_VARINT_MAX or |full_pn| <= |largest_acked|. */
size_t proto_qwire_pn_len(uint64_t full_pn, int64_t largest_acked);

/* proto_qwire_pn_decode returns the full packet number whose low |pn_len|
 * bytes (1..4, asserted) are |truncated| (higher bits of |truncated| are
 * ignored): the candidate closest to |largest_pn| + 1, where |largest_pn|
 * is the largest packet number received and authenticated in the space
 * (-1 for none), as in RFC 9000 appendix A.3. */
uint64_t proto_qwire_pn_decode(int64_t largest_pn, uint64_t truncated,
			       size_t pn_len);

/* Frames (RFC 9000 19). */

typedef struct proto_qwire_ack_range {
	uint64_t smallest, largest; /* inclusive */
} proto_qwire_ack_range;

/* A frame. |type| is the frame type as on the wire; the union member in
 * use follows from it:
 *   0x00 PADDING              padding_len (a run of 0x00 is one frame)
 *   0x01 PING, 0x1e HANDSHAKE_DONE    nothing
 *   0x02, 0x03 ACK            u.ack (0x03 with the ECN counts)
 *   0x06 CRYPTO               u.crypto
 *   0x08..0x0f STREAM         u.stream (0x04 OFF, 0x02 LEN, 0x01 FIN)
 *   0x1c, 0x1d CONNECTION_CLOSE  u.close (0x1c with frame_type)
 * and every other frame in u.other, fields in wire order:
 *   0x04 RESET_STREAM         a stream id, b error code, c final size
 *   0x05 STOP_SENDING         a stream id, b error code
 *   0x07 NEW_TOKEN            data, len: the token (never empty)
 *   0x10 MAX_DATA             a maximum data
 *   0x11 MAX_STREAM_DATA      a stream id, b maximum stream data
 *   0x12, 0x13 MAX_STREAMS    a maximum streams (bidi, uni; <= 2^60)
 *   0x14 DATA_BLOCKED         a maximum data
 *   0x15 STREAM_DATA_BLOCKED  a stream id, b maximum stream data
 *   0x16, 0x17 STREAMS_BLOCKED  a maximum streams (bidi, uni; <= 2^60)
 *   0x18 NEW_CONNECTION_ID    a sequence number, b retire prior to (<= a),
 *                             data, len: the CID (1..20 bytes),
 *                             reset_token: the 16-byte stateless reset
 *                             token
 *   0x19 RETIRE_CONNECTION_ID a sequence number
 *   0x1a PATH_CHALLENGE, 0x1b PATH_RESPONSE  data, len: the 8 bytes
 * Unused fields are 0 or NULL after parsing and ignored by the writer. */
typedef struct proto_qwire_frame {
	uint64_t type;
	union {
		struct {
			uint64_t largest; /* Largest Acknowledged */
			uint64_t delay;   /* ACK Delay as sent (unscaled) */
			size_t nranges;   /* 1..PROTO_QWIRE_ACK_RANGES_MAX */
			/* descending, disjoint and not adjacent (a gap of at
			 * least one packet); ranges[0].largest == largest */
			proto_qwire_ack_range
			    ranges[PROTO_QWIRE_ACK_RANGES_MAX];
			uint64_t ect0, ect1, ce; /* type 0x03 only */
		} ack;
		struct {
			uint64_t offset;
			const uint8_t *data;
			size_t len;
		} crypto;
		struct {
			uint64_t id, offset;
			const uint8_t *data;
			size_t len;
			int fin;
		} stream;
		struct {
			uint64_t error, frame_type; /* frame_type: 0x1c only */
			const uint8_t *reason;
			size_t reason_len;
		} close;
		struct {
			uint64_t a, b, c;
			const uint8_t *data;
			size_t len;
			const uint8_t *reset_token;
		} other;
	} u;
	size_t padding_len;
} proto_qwire_frame;

/* proto_qwire_frame_parse parses the frame at |*p|, up to |end|, into
 * |*f| and advances |*p| past it. Data pointers in |*f| point into the
 * input. Returns 0, or a transport error code with |*p| unchanged and
 * |*f| undefined:
 *   PROTO_QWIRE_PROTOCOL_VIOLATION  the frame type is not in its shortest
 *     encoding (RFC 9000 12.4 allows this code for it);
 *   PROTO_QWIRE_FRAME_ENCODING_ERROR  everything else: nothing to parse
 *     (|*p| == |end|), truncated, unknown type, a length beyond |end|, an
 *     ACK range below packet 0 (the code RFC 9000 19.3.1 names), an ACK
 *     with more than PROTO_QWIRE_ACK_RANGES_MAX ranges (a limit of this
 *     parser), STREAM or CRYPTO data ending beyond 2^62 - 1, MAX_STREAMS
 *     or STREAMS_BLOCKED above 2^60, an empty NEW_TOKEN, a
 *     NEW_CONNECTION_ID with a CID length outside 1..20 or retire prior to
 *     above its sequence number.
 * A STREAM frame without the LEN bit takes the data up to |end|. Never
 * reads past |end|. */
uint64_t proto_qwire_frame_parse(const uint8_t **p, const uint8_t *end,
				 proto_qwire_frame *f);

/* proto_qwire_frame_size returns the bytes proto_qwire_frame_write needs
 * for |f|, or 0 if |f| cannot be written: an unknown type, a value above
 * PROTO_QWIRE_VARINT_MAX, or anything the parser would reject (ACK ranges
 * not as documented in the struct or nranges outside 1..max, STREAM or
 * CRYPTO data ending beyond 2^62 - 1, a bad NEW_CONNECTION_ID, an empty
 * NEW_TOKEN, PATH_* data not 8 bytes, MAX_STREAMS or STREAMS_BLOCKED
 * above 2^60, padding_len 0 for PADDING).
 *
 * proto_qwire_frame_write serialises |f| into |buf| and returns the bytes
 * written, or 0 if |f| cannot be written or does not fit in |cap|
 * (nothing written then). Integers use their shortest encodings. ACK
 * writes Largest Acknowledged from ranges[0].largest (u.ack.largest is
 * not read) and the ECN counts for type 0x03. STREAM ignores the low bits
 * of f->type and derives them: LEN always, OFF when the offset is not 0,
 * FIN from u.stream.fin. PADDING writes padding_len zero bytes. */
size_t proto_qwire_frame_size(const proto_qwire_frame *f);
size_t proto_qwire_frame_write(uint8_t *buf, size_t cap,
			       const proto_qwire_frame *f);

/* proto_qwire_stream_fit returns how many of |len| data bytes a STREAM
 * frame for stream |id| at |offset| can carry within |cap| bytes (as
 * proto_qwire_frame_write would write it, with LEN), and never more than
 * would end the stream beyond 2^62 - 1. proto_qwire_crypto_fit does the
 * same for a CRYPTO frame. 0 means no data byte fits; a STREAM frame with
 * no data (a bare FIN) may still fit: ask proto_qwire_frame_size. */
size_t proto_qwire_stream_fit(size_t cap, uint64_t id, uint64_t offset,
			      size_t len);
size_t proto_qwire_crypto_fit(size_t cap, uint64_t offset, size_t len);

/* proto_qwire_frame_allowed returns 1 if a frame of |type| may appear in a
 * packet of type |ptype| (RFC 9000 12.4, Table 3), else 0: Initial and
 * Handshake take PADDING, PING, ACK, CRYPTO and CONNECTION_CLOSE 0x1c;
 * 0-RTT takes everything but ACK, CRYPTO, NEW_TOKEN, PATH_RESPONSE and
 * HANDSHAKE_DONE; 1-RTT every frame type; Retry and version negotiation
 * none; unknown frame types nowhere. Receiving a frame where it is not
 * allowed is a PROTOCOL_VIOLATION. */
int proto_qwire_frame_allowed(uint64_t type, int ptype);

/* proto_qwire_frame_name returns the RFC 9000 name of frame |type| for
 * traces: "PADDING", "ACK" (both types), "STREAM" (all eight),
 * "MAX_STREAMS", "CONNECTION_CLOSE(0x1c)", "CONNECTION_CLOSE(0x1d)"...;
 * "UNKNOWN" for other types. */
const char *proto_qwire_frame_name(uint64_t type);

/* proto_qwire_summarize writes a compact one-line summary of a decrypted
 * packet payload (|len| bytes of frames) into |buf| (|buflen| bytes,
 * always NUL-terminated when buflen > 0), frames separated by ",":
 *   PADDING(n)  PING  HANDSHAKE_DONE
 *   ACK[l-h,...] (ranges descending, "n" for a one-packet range; "ecn"
 *     appended for type 0x03)
 *   CRYPTO(offset+len)  STREAM(id,offset+len[,fin])  NEW_TOKEN(len)
 *   CONNECTION_CLOSE(0x1c)(error,frame_type)  CONNECTION_CLOSE(0x1d)(error)
 *   RESET_STREAM(id,error,final_size)  STOP_SENDING(id,error)
 *   MAX_DATA(n)  MAX_STREAM_DATA(id,n)  MAX_STREAMS(bidi,n)
 *   MAX_STREAMS(uni,n)  DATA_BLOCKED(n)  STREAM_DATA_BLOCKED(id,n)
 *   STREAMS_BLOCKED(bidi|uni,n)  NEW_CONNECTION_ID(seq,retire,cid_len)
 *   RETIRE_CONNECTION_ID(seq)  PATH_CHALLENGE  PATH_RESPONSE
 * e.g. "ACK[0-3],CRYPTO(0+120),PADDING(900)". Returns 0, or the error
 * code of the first frame that fails to parse (the summary then ends with
 * "!ERR" after the frames before it), or PROTO_QWIRE_PROTOCOL_VIOLATION
 * for an empty payload (RFC 9000 12.4; summary "!ERR"). A summary longer
 * than |buf| is cut at a frame boundary and ends with "..." (then "!ERR"
 * if an error follows), given buflen >= 10. */
int proto_qwire_summarize(const uint8_t *payload, size_t len, char *buf,
			  size_t buflen);

#endif

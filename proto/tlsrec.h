/* proto/tlsrec.h: which TLS messages each byte of an endpoint's outgoing
 * record stream carries, for the labels of TLS-over-stream segments.
 *
 * BoringSSL reports every handshake message, ChangeCipherSpec and alert it
 * writes through its message callback (the whole message, with the 4-byte
 * handshake header), but not where in the record stream the message went:
 * a TLS 1.3 flight is packed into as few records as fit
 * (SSL_set_max_send_fragment bytes of plaintext each, 16384 by default), so
 * one record carries several messages and a large message spans records.
 * proto_tlsrec parses the bytes the endpoint writes (5-byte record headers:
 * type, version, length) and places the reported messages in them:
 *
 *  - Plaintext records (ClientHello, ServerHello, TLS 1.2's handshake
 *    before ChangeCipherSpec, the ChangeCipherSpec, plaintext alerts) carry
 *    their type's next |length| bytes of reported messages, in order.
 *  - A TLS 1.3 encrypted record (type 23) is inner plaintext, one content
 *    type byte and a 16-byte AEAD tag (every TLS 1.3 cipher suite has a
 *    16-byte tag; BoringSSL adds no padding: measured, e.g. a 997-byte
 *    record for a 980-byte server flight). It is a handshake record if a
 *    handshake message reported before its first byte was written is not
 *    yet placed (BoringSSL writes a flight before any later application
 *    data), else application data, labelled "ApplicationData" (as are
 *    TLS 1.2's application data records).
 *  - An alert is written as a record of its own and reported just after:
 *    the record that ends where the written bytes ended when the alert was
 *    reported is that alert, in any version and with any cipher.
 *  - TLS 1.2 after our ChangeCipherSpec: the record type is the content
 *    type; with an AEAD the plaintext is exact (an explicit nonce of
 *    |nonce| bytes, then the ciphertext, then a |tag|-byte tag); with a
 *    CBC cipher the padding length is not visible, so the plaintext length
 *    is only known to lie in a range: every message that may have a byte
 *    in such a record labels the whole record (never fewer than the true
 *    set), and later records of that type are labelled as wholes too.
 *
 * A message's bytes are its own bytes in the record plus the framing next
 * to them: the 5-byte record header goes with the record's first message,
 * and what follows the last message's plaintext (TLS 1.3's content type and
 * tag, TLS 1.2's MAC, padding and tag) with its last; a TLS 1.2 explicit
 * nonce with the first. So every byte of a handshake, alert or
 * ChangeCipherSpec record belongs to a message, and a stream cut anywhere
 * gives each segment exactly the messages it has bytes of.
 *
 * The tracker does no I/O and keeps no pointer to the caller's data; it is
 * embedded in the endpoint (proto_tlsrec_init/_free). */
#ifndef TLSIM_PROTO_TLSREC_H
#define TLSIM_PROTO_TLSREC_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_TLSREC_MSGS_MAX 64 /* reported messages not yet placed */
#define PROTO_TLSREC_NAME_MAX 24

/* How records written from now on are protected once encrypted (what the
 * endpoint negotiated); all zero before that. */
typedef struct proto_tlsrec_prot {
	int tls13;      /* TLS 1.3 negotiated */
	uint32_t nonce; /* TLS 1.2 AEAD: explicit nonce bytes (8 AES-GCM, 0
			   ChaCha20-Poly1305) */
	uint32_t tag;   /* TLS 1.2 AEAD: tag bytes (16); 0 if not an AEAD */
	uint32_t iv;    /* TLS 1.2 CBC: explicit IV bytes (the block size) */
	uint32_t mac;   /* TLS 1.2 CBC: MAC bytes; 0 and tag 0: unknown
			   protection (the plaintext is 0..length bytes) */
} proto_tlsrec_prot;

/* proto_tlsrec_label_fn (required) is called with the stream offsets
 * [from, to) of the bytes of message |name| ("Finished", "close_notify",
 * ...) in one record. A message spanning records is reported once per
 * record, in order. |to| may lie beyond the bytes written so far: the
 * record's header says how long it is. */
typedef void (*proto_tlsrec_label_fn)(void *user_data, uint64_t from,
				      uint64_t to, const char *name);

typedef struct proto_tlsrec_msg {
	char name[PROTO_TLSREC_NAME_MAX];
	uint8_t type; /* record content type: 20, 21 or 22 */
	uint64_t len;
	uint64_t toff; /* offset among all the messages of its type */
	uint64_t at;   /* stream offset of the end of the written bytes
			  when it was reported */
} proto_tlsrec_msg;

typedef struct proto_tlsrec {
	proto_tlsrec_label_fn label;
	void *user_data;
	proto_tlsrec_msg msgs[PROTO_TLSREC_MSGS_MAX]; /* oldest first */
	int nmsgs;
	/* Per content type (20, 21, 22): bytes reported, and the range of
	 * how many of them records have carried so far (lo == hi: exact). */
	uint64_t total[3], lo[3], hi[3];
	uint64_t at;        /* stream offset of the next byte written */
	uint64_t rec_start; /* stream offset of the record being parsed */
	uint64_t body_left; /* its bytes still to come */
	uint8_t hdr[5];
	int hdr_have;
	int ccs_written;
	uint64_t dropped; /* messages forgotten: the queue was full */
	uint64_t inexact; /* records labelled as a whole (a range) */
} proto_tlsrec;

/* proto_tlsrec_init sets up |r| for a stream whose next byte written is at
 * stream offset |at|; |label| is called with |user_data|. */
void proto_tlsrec_init(proto_tlsrec *r, uint64_t at,
		       proto_tlsrec_label_fn label, void *user_data);

/* proto_tlsrec_free releases nothing (no allocations); for symmetry. */
void proto_tlsrec_free(proto_tlsrec *r);

/* proto_tlsrec_reset forgets the messages and any partly parsed record:
 * the bytes written so far are gone (dropped unsent) or were not records
 * (raw bytes); the next byte written is at |at|. */
void proto_tlsrec_reset(proto_tlsrec *r, uint64_t at);

/* proto_tlsrec_message notes that the endpoint wrote a message of content
 * type |type| (20 ChangeCipherSpec, 21 alert, 22 handshake; others are
 * ignored) of |len| bytes named |name|, when the bytes it had written so
 * far ended at stream offset |at|. Messages of one type must be reported
 * in the order they are written. A full queue forgets its oldest message
 * (counted in |dropped|). */
void proto_tlsrec_message(proto_tlsrec *r, int type, const char *name,
			  size_t len, uint64_t at);

/* proto_tlsrec_write parses |n| more bytes of the record stream, written
 * at the next stream offsets, and calls the label callback for each
 * message placed in a record whose header completes here; |prot| says how
 * those records are protected. Call it once the messages those records
 * carry have been reported (after the call into BoringSSL that wrote
 * them). */
void proto_tlsrec_write(proto_tlsrec *r, const proto_tlsrec_prot *prot,
			const uint8_t *p, size_t n);

#endif

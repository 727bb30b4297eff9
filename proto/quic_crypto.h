/* proto/quic_crypto.h: QUIC v1 packet protection (RFC 9001 section 5).
 *
 * Keys come from secrets: the Initial secrets from the client's first
 * Destination Connection ID (proto_qcrypto_initial_secrets), every other
 * level's from TLS (BoringSSL's SSL_QUIC_METHOD set_read_secret /
 * set_write_secret hand over a secret and an SSL_CIPHER, whose
 * SSL_CIPHER_get_protocol_id is the |suite| below). proto_qcrypto_keys_init
 * turns one secret into one direction's packet key, IV and header
 * protection key; proto_qcrypto_protect and proto_qcrypto_unprotect work in
 * place on one packet. Supported suites, each with its AEAD, HKDF hash and
 * header protection:
 *   0x1301 TLS_AES_128_GCM_SHA256        AES-128-GCM, SHA-256, AES-128-ECB
 *   0x1302 TLS_AES_256_GCM_SHA384        AES-256-GCM, SHA-384, AES-256-ECB
 *   0x1303 TLS_CHACHA20_POLY1305_SHA256  ChaCha20-Poly1305, SHA-256, ChaCha20
 * (BoringSSL prefers 0x1303 when AES-NI is off, as it is in tlsim runs.)
 *
 * Nothing here draws randomness or reads a clock: the same keys and inputs
 * give the same bytes. Keys are read-only once made, so one
 * proto_qcrypto_keys may protect or unprotect from several threads at
 * once. Key material is wiped by proto_qcrypto_keys_free.
 *
 * Retry integrity (RFC 9001 5.8) is not implemented: tlsim sends no Retry. */
#ifndef TLSIM_PROTO_QUIC_CRYPTO_H
#define TLSIM_PROTO_QUIC_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/base.h>

/* PROTO_QCRYPTO_TAG_LEN: the AEAD tag every protected packet carries after
 * its payload (all three suites). */
#define PROTO_QCRYPTO_TAG_LEN 16

/* PROTO_QCRYPTO_SAMPLE_LEN: the ciphertext sample header protection takes,
 * starting 4 bytes after the start of the packet number (RFC 9001 5.4.2). */
#define PROTO_QCRYPTO_SAMPLE_LEN 16

/* PROTO_QCRYPTO_IV_LEN: the AEAD nonce and packet IV length. */
#define PROTO_QCRYPTO_IV_LEN 12

/* PROTO_QCRYPTO_MAX_CID_LEN: the longest connection ID QUIC v1 allows. */
#define PROTO_QCRYPTO_MAX_CID_LEN 20

/* PROTO_QCRYPTO_MAX_PACKET: the longest packet proto_qcrypto_unprotect
 * accepts, the largest UDP payload QUIC allows (RFC 9000 18.2,
 * max_udp_payload_size). proto_qcrypto_unprotect decrypts into a stack
 * buffer of this size (so that a failure leaves the packet intact). */
#define PROTO_QCRYPTO_MAX_PACKET 65527

/* PROTO_QCRYPTO_PN_MAX: packet numbers are below 2^62 (RFC 9000 12.3). */
#define PROTO_QCRYPTO_PN_MAX ((UINT64_C(1) << 62) - 1)

/* PROTO_QCRYPTO_INITIAL_SECRET_LEN: the length of an Initial secret
 * (SHA-256, used with 0x1301). */
#define PROTO_QCRYPTO_INITIAL_SECRET_LEN 32

/* PROTO_QCRYPTO_INITIAL_SUITE: the cipher suite Initial packets use. */
#define PROTO_QCRYPTO_INITIAL_SUITE 0x1301

/* proto_qcrypto_keys is one direction's packet protection at one
 * encryption level (and, for 1-RTT, one key phase). Make it with
 * proto_qcrypto_keys_init or proto_qcrypto_keys_next, release it with
 * proto_qcrypto_keys_free. Do not copy an initialised one (the AEAD
 * context is BoringSSL's to manage); derive again instead. */
typedef struct proto_qcrypto_keys {
	/* suite is the TLS cipher suite id (0x1301..0x1303), md its hash. */
	uint16_t suite;
	const EVP_MD *md;
	/* secret is the secret the keys came from, kept for key updates;
	 * secret_len is the hash length, 32 or 48. */
	uint8_t secret[48];
	size_t secret_len;
	/* key is the AEAD key (16 or 32 bytes), iv the packet IV the packet
	 * number is XORed into to make the nonce. */
	uint8_t key[32];
	size_t key_len;
	uint8_t iv[PROTO_QCRYPTO_IV_LEN];
	/* hp is the header protection key (16 or 32 bytes); hp_aes is its
	 * AES key schedule for the AES suites. */
	uint8_t hp[32];
	size_t hp_len;
	AES_KEY hp_aes;
	/* aead is keyed with |key|. */
	EVP_AEAD_CTX aead;
	/* ready is 1 once initialised, 0 when zeroed or freed. */
	int ready;
} proto_qcrypto_keys;

/* proto_qcrypto_initial_secrets derives the client's and the server's
 * Initial secrets (RFC 9001 5.2: HKDF-Extract with SHA-256 and the QUIC v1
 * salt 0x38762cf7f55934b34d179ae6a4c80cadccbb7f0a over |dcid|, then
 * HKDF-Expand-Label "client in" / "server in") from the Destination
 * Connection ID of the client's first Initial, |dcid_len| bytes (at most
 * PROTO_QCRYPTO_MAX_CID_LEN; |dcid| may be NULL if 0). Both sides key
 * Initial packets with these (suite PROTO_QCRYPTO_INITIAL_SUITE): the
 * client writes with |client| and reads with |server|, the server the
 * other way round. Returns 0 and fills both, or SIM_EINVAL (bad length) /
 * SIM_ECRYPTO, leaving them zeroed. */
int proto_qcrypto_initial_secrets(
    const uint8_t *dcid, size_t dcid_len,
    uint8_t client[PROTO_QCRYPTO_INITIAL_SECRET_LEN],
    uint8_t server[PROTO_QCRYPTO_INITIAL_SECRET_LEN]);

/* proto_qcrypto_keys_init fills |k| for cipher suite |suite| (0x1301,
 * 0x1302 or 0x1303, see above) from |secret|, which must be as long as the
 * suite's hash (32 bytes, or 48 for 0x1302): key, iv and hp are
 * HKDF-Expand-Label(secret, "quic key" / "quic iv" / "quic hp", "", len)
 * with the "tls13 " label prefix of RFC 8446 7.1, and the AEAD is keyed.
 * |k| is taken to hold nothing: free it first if it held keys. A copy of
 * |secret| is kept (for proto_qcrypto_keys_next); the caller keeps its
 * own. Returns 0 with |k|->ready set, or SIM_EINVAL (NULL argument, unknown
 * suite, wrong secret length) / SIM_ECRYPTO, leaving |k| zeroed. */
int proto_qcrypto_keys_init(proto_qcrypto_keys *k, uint16_t suite,
			    const uint8_t *secret, size_t secret_len);

/* proto_qcrypto_keys_free releases and wipes |k|, leaving it zeroed. It is
 * idempotent and safe on a zeroed struct. NULL is a no-op. */
void proto_qcrypto_keys_free(proto_qcrypto_keys *k);

/* proto_qcrypto_keys_next derives the next key phase of |k| into |next|
 * (RFC 9001 6): the secret becomes HKDF-Expand-Label(secret, "quic ku", "",
 * hash length), key and iv are derived from it as in
 * proto_qcrypto_keys_init, and the header protection key is |k|'s,
 * unchanged. |k| must be ready and is not modified; |next| must not be |k|
 * and is taken to hold nothing, as for proto_qcrypto_keys_init. Returns 0,
 * or SIM_EINVAL (NULL, |k| not ready, |next| == |k|) / SIM_ECRYPTO,
 * leaving |next| zeroed. */
int proto_qcrypto_keys_next(const proto_qcrypto_keys *k,
			    proto_qcrypto_keys *next);

/* proto_qcrypto_keys_copy makes |dst| an independent copy of |src| (which
 * must be ready): the same suite, secret, key, iv and header protection
 * key, with its own AEAD context keyed again from them (an initialised
 * proto_qcrypto_keys must not be copied byte for byte). |dst| must not be
 * |src| and is taken to hold nothing, as for proto_qcrypto_keys_init.
 * Returns 0, or SIM_EINVAL (NULL, |src| not ready, |dst| == |src|) /
 * SIM_ECRYPTO, leaving |dst| zeroed. */
int proto_qcrypto_keys_copy(proto_qcrypto_keys *dst,
			    const proto_qcrypto_keys *src);

/* Which read keys a 1-RTT packet needs (RFC 9001 6.3, 6.5), as
 * proto_qcrypto_phase_select decides. */
enum proto_qcrypto_phase_keys {
	PROTO_QCRYPTO_PHASE_CURRENT = 0, /* its phase is the current one */
	PROTO_QCRYPTO_PHASE_PREVIOUS,    /* a late packet of the phase before */
	PROTO_QCRYPTO_PHASE_NEXT,        /* the peer's key update, or its
					    answer to ours */
	PROTO_QCRYPTO_PHASE_GONE,        /* an old phase whose keys are gone:
					    drop it */
};

/* proto_qcrypto_phase_select picks the read keys for a 1-RTT packet with
 * key phase bit |packet_phase| and recovered packet number |pn|, given the
 * current read key phase bit |current_phase|, the lowest packet number
 * received with the current read keys |current_first_pn| (0 before the
 * first update) and whether the previous phase's read keys are still held
 * (|have_previous|). The Key Phase bit alone cannot tell the previous
 * phase from the next (both differ from the current one), so, as RFC 9001
 * 6.5 says, a packet number below every one of the current phase means
 * the previous keys, any other the next. Pure: no keys are touched. */
enum proto_qcrypto_phase_keys proto_qcrypto_phase_select(
    int current_phase, int packet_phase, uint64_t pn,
    uint64_t current_first_pn, int have_previous);

/* proto_qcrypto_peek_header removes the header protection of one packet
 * without changing it or decrypting anything: it sets |*out_first| to the
 * first byte as sent (for a short header, bit 0x04 is the Key Phase) and
 * |*out_pn| to the packet number recovered with |largest_pn|, as
 * proto_qcrypto_unprotect would. Key updates keep the header protection
 * key (RFC 9001 6.1), so the keys of any key phase give the same answer:
 * this is how a receiver learns which phase's keys to decrypt with.
 * Arguments and SIM_EINVAL are as for proto_qcrypto_unprotect; returns 0
 * on success (the packet may still fail to authenticate). */
int proto_qcrypto_peek_header(const proto_qcrypto_keys *k, const uint8_t *pkt,
			      size_t pkt_len, size_t pn_offset,
			      int64_t largest_pn, uint8_t *out_first,
			      uint64_t *out_pn);

/* proto_qcrypto_protect protects one packet in place with |k|. |pkt|
 * holds the complete unprotected packet: the header [0, |hdr_len|), whose
 * last |pn_len| bytes (1..4) are the packet number field, then
 * |payload_len| bytes of plaintext frames. |cap| is the size of |pkt|,
 * which must leave room for PROTO_QCRYPTO_TAG_LEN more bytes. It encrypts
 * the payload (nonce = iv XOR |pn|, associated data = the header), appends
 * the tag and applies header protection with the sample at
 * hdr_len - pn_len + 4: the low 4 bits of the first byte for a long header
 * (top bit set), the low 5 for a short one, and the packet number bytes.
 *
 * The header must agree with |pn| and |pn_len|: its first byte's low two
 * bits are pn_len - 1 and the packet number field holds the low |pn_len|
 * bytes of |pn| (big-endian). For a long header the Length field must
 * already count the tag. The payload must be long enough for the sample,
 * pn_len + payload_len >= 4 (RFC 9001 5.4.2: pad with PADDING frames).
 *
 * Returns 0 and sets |*out_len| to the protected length, hdr_len +
 * payload_len + PROTO_QCRYPTO_TAG_LEN. Returns SIM_EINVAL (|k| not ready,
 * a bad length, a header that disagrees with |pn|, |pn| above
 * PROTO_QCRYPTO_PN_MAX) with |pkt| untouched, or SIM_ECRYPTO (the AEAD
 * failed; the payload bytes are then unspecified). */
int proto_qcrypto_protect(const proto_qcrypto_keys *k, uint64_t pn,
			  uint8_t *pkt, size_t hdr_len, size_t pn_len,
			  size_t payload_len, size_t cap, size_t *out_len);

/* proto_qcrypto_unprotect removes the protection of one packet in place.
 * |pkt| is exactly one protected packet of |pkt_len| bytes (the caller has
 * already split a coalesced datagram at the long header's Length), and its
 * packet number field starts at |pn_offset|. It removes header protection,
 * reads the packet number length from the first byte, recovers the full
 * packet number from the truncated one given |largest_pn|, the largest
 * packet number received so far in this packet number space (-1 if none;
 * RFC 9000 A.3), and decrypts and authenticates the payload.
 *
 * On success returns 0, leaves the unprotected header followed by the
 * plaintext in |pkt|, and sets |*out_pn|, |*out_hdr_len| (the header
 * including the packet number field) and |*out_payload_len| (the plaintext,
 * tag excluded; the plaintext is at pkt + *out_hdr_len).
 *
 * On failure |pkt| is as it was on entry, so the caller may try other keys
 * (the other key phase) on the same bytes. Returns SIM_EINVAL if |k| is not
 * ready, |pkt_len| exceeds PROTO_QCRYPTO_MAX_PACKET, |largest_pn| is
 * outside -1 .. PROTO_QCRYPTO_PN_MAX - 1, |pn_offset| is 0, or the packet is
 * too short to hold the sample (pn_offset + 4 + PROTO_QCRYPTO_SAMPLE_LEN >
 * pkt_len); returns SIM_ECRYPTO if authentication fails (wrong keys or a
 * damaged packet: drop it). The outputs are set only on success. */
int proto_qcrypto_unprotect(const proto_qcrypto_keys *k, uint8_t *pkt,
			    size_t pkt_len, size_t pn_offset,
			    int64_t largest_pn, uint64_t *out_pn,
			    size_t *out_hdr_len, size_t *out_payload_len);

#endif

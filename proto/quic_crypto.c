#include "proto/quic_crypto.h"

#include <assert.h>
#include <string.h>

#include <openssl/chacha.h>
#include <openssl/digest.h>
#include <openssl/hkdf.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>

#include "sim/err.h"

/* RFC 9001 5.2. */
static const uint8_t initial_salt[20] = {
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a,
};

enum hp_kind { HP_AES, HP_CHACHA };

struct suite {
	uint16_t id;
	const EVP_AEAD *(*aead)(void);
	const EVP_MD *(*md)(void);
	size_t key_len; /* AEAD key and hp key alike */
	enum hp_kind hp;
};

static const struct suite suites[] = {
    {0x1301, EVP_aead_aes_128_gcm, EVP_sha256, 16, HP_AES},
    {0x1302, EVP_aead_aes_256_gcm, EVP_sha384, 32, HP_AES},
    {0x1303, EVP_aead_chacha20_poly1305, EVP_sha256, 32, HP_CHACHA},
};

static const struct suite *find_suite(uint16_t id)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
		if (suites[i].id == id) {
			return &suites[i];
		}
	}
	return NULL;
}

/* The longest label passed below; "tls13 " is added to it. */
#define LABEL_MAX 16
#define LABEL_PREFIX "tls13 "

/* HKDF-Expand-Label (RFC 8446 7.1) with an empty context, which is all
 * QUIC uses: info is uint16 length, then the label with its prefix as a
 * one-byte-length vector, then an empty context vector. Every output here
 * is at most one hash long, so HKDF-Expand is the single block
 * T(1) = HMAC(secret, info || 0x01); |hmac| is keyed with the secret
 * once and reset for each label, which saves the key setup per label. */
static int expand_one(HMAC_CTX *hmac, const char *label, uint8_t *out,
		      size_t out_len)
{
	size_t prefix_len = sizeof(LABEL_PREFIX) - 1, label_len = strlen(label);
	uint8_t info[2 + 1 + sizeof(LABEL_PREFIX) - 1 + LABEL_MAX + 1 + 1];
	uint8_t block[EVP_MAX_MD_SIZE];
	unsigned block_len = 0;
	size_t n = 0;
	assert(label_len <= LABEL_MAX);
	if (out_len > HMAC_size(hmac)) {
		return SIM_EINVAL;
	}
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(prefix_len + label_len);
	memcpy(info + n, LABEL_PREFIX, prefix_len);
	n += prefix_len;
	memcpy(info + n, label, label_len);
	n += label_len;
	info[n++] = 0;    /* empty context */
	info[n++] = 0x01; /* HKDF-Expand block counter */
	if (!HMAC_Init_ex(hmac, NULL, 0, NULL, NULL) ||
	    !HMAC_Update(hmac, info, n) ||
	    !HMAC_Final(hmac, block, &block_len)) {
		return SIM_ECRYPTO;
	}
	memcpy(out, block, out_len);
	OPENSSL_cleanse(block, sizeof(block));
	return 0;
}

/* expand_labels derives up to three outputs from one secret. */
typedef struct label_out {
	const char *label;
	uint8_t *out;
	size_t len;
} label_out;

static int expand_labels(const EVP_MD *md, const uint8_t *secret,
			 size_t secret_len, const label_out *o, int n)
{
	HMAC_CTX hmac;
	HMAC_CTX_init(&hmac);
	int rc = HMAC_Init_ex(&hmac, secret, secret_len, md, NULL)
			 ? 0
			 : SIM_ECRYPTO;
	for (int i = 0; rc == 0 && i < n; i++) {
		rc = expand_one(&hmac, o[i].label, o[i].out, o[i].len);
	}
	HMAC_CTX_cleanse(&hmac);
	return rc;
}

static int expand_label(const EVP_MD *md, const uint8_t *secret,
			size_t secret_len, const char *label, uint8_t *out,
			size_t out_len)
{
	label_out o = {label, out, out_len};
	return expand_labels(md, secret, secret_len, &o, 1);
}

int proto_qcrypto_initial_secrets(
    const uint8_t *dcid, size_t dcid_len,
    uint8_t client[PROTO_QCRYPTO_INITIAL_SECRET_LEN],
    uint8_t server[PROTO_QCRYPTO_INITIAL_SECRET_LEN])
{
	static const uint8_t empty[1];
	uint8_t initial[EVP_MAX_MD_SIZE];
	size_t initial_len = 0;
	int rc = SIM_EINVAL;
	if (client == NULL || server == NULL) {
		return SIM_EINVAL;
	}
	memset(client, 0, PROTO_QCRYPTO_INITIAL_SECRET_LEN);
	memset(server, 0, PROTO_QCRYPTO_INITIAL_SECRET_LEN);
	if (dcid_len > PROTO_QCRYPTO_MAX_CID_LEN ||
	    (dcid == NULL && dcid_len != 0)) {
		return SIM_EINVAL;
	}
	if (!HKDF_extract(initial, &initial_len, EVP_sha256(),
			  dcid != NULL ? dcid : empty, dcid_len, initial_salt,
			  sizeof(initial_salt))) {
		return SIM_ECRYPTO;
	}
	rc = expand_label(EVP_sha256(), initial, initial_len, "client in",
			  client, PROTO_QCRYPTO_INITIAL_SECRET_LEN);
	if (rc == 0) {
		rc = expand_label(EVP_sha256(), initial, initial_len,
				  "server in", server,
				  PROTO_QCRYPTO_INITIAL_SECRET_LEN);
	}
	OPENSSL_cleanse(initial, sizeof(initial));
	if (rc != 0) {
		OPENSSL_cleanse(client, PROTO_QCRYPTO_INITIAL_SECRET_LEN);
		OPENSSL_cleanse(server, PROTO_QCRYPTO_INITIAL_SECRET_LEN);
	}
	return rc;
}

/* setup fills |k| from |secret|: key and iv always, and hp too unless
 * |hp| gives it (a key update keeps the old one). */
static int setup(proto_qcrypto_keys *k, const struct suite *s,
		 const uint8_t *secret, size_t secret_len, const uint8_t *hp)
{
	const EVP_MD *md = s->md();
	int rc;
	memset(k, 0, sizeof(*k));
	if (secret_len != EVP_MD_size(md) || secret_len > sizeof(k->secret)) {
		return SIM_EINVAL;
	}
	k->suite = s->id;
	k->md = md;
	memcpy(k->secret, secret, secret_len);
	k->secret_len = secret_len;
	k->key_len = s->key_len;
	k->hp_len = s->key_len;
	const label_out o[] = {{"quic key", k->key, k->key_len},
			       {"quic iv", k->iv, sizeof(k->iv)},
			       {"quic hp", k->hp, k->hp_len}};
	rc = expand_labels(md, secret, secret_len, o, hp == NULL ? 3 : 2);
	if (rc == 0 && hp != NULL) {
		memcpy(k->hp, hp, k->hp_len);
	}
	/* AES_set_encrypt_key, unlike the rest, returns 0 on success. */
	if (rc == 0 && s->hp == HP_AES) {
		unsigned bits = (unsigned)k->hp_len * 8;
		if (AES_set_encrypt_key(k->hp, bits, &k->hp_aes) != 0) {
			rc = SIM_ECRYPTO;
		}
	}
	if (rc == 0 &&
	    (SIM_NEVER(EVP_AEAD_key_length(s->aead()) != k->key_len) ||
	     SIM_NEVER(EVP_AEAD_nonce_length(s->aead()) != sizeof(k->iv)) ||
	     !EVP_AEAD_CTX_init(&k->aead, s->aead(), k->key, k->key_len,
				PROTO_QCRYPTO_TAG_LEN, NULL))) {
		rc = SIM_ECRYPTO;
	}
	if (rc != 0) {
		proto_qcrypto_keys_free(k);
		return rc;
	}
	k->ready = 1;
	return 0;
}

int proto_qcrypto_keys_init(proto_qcrypto_keys *k, uint16_t suite,
			    const uint8_t *secret, size_t secret_len)
{
	const struct suite *s = find_suite(suite);
	if (k == NULL) {
		return SIM_EINVAL;
	}
	if (s == NULL || secret == NULL) {
		memset(k, 0, sizeof(*k));
		return SIM_EINVAL;
	}
	return setup(k, s, secret, secret_len, NULL);
}

void proto_qcrypto_keys_free(proto_qcrypto_keys *k)
{
	if (k == NULL) {
		return;
	}
	EVP_AEAD_CTX_cleanup(&k->aead);
	OPENSSL_cleanse(k, sizeof(*k));
}

int proto_qcrypto_keys_next(const proto_qcrypto_keys *k,
			    proto_qcrypto_keys *next)
{
	uint8_t secret[sizeof(k->secret)];
	const struct suite *s;
	int rc;
	if (next == NULL || next == k) {
		return SIM_EINVAL;
	}
	if (k == NULL || !k->ready || (s = find_suite(k->suite)) == NULL) {
		memset(next, 0, sizeof(*next));
		return SIM_EINVAL;
	}
	rc = expand_label(k->md, k->secret, k->secret_len, "quic ku", secret,
			  k->secret_len);
	if (rc == 0) {
		rc = setup(next, s, secret, k->secret_len, k->hp);
	} else {
		memset(next, 0, sizeof(*next));
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

int proto_qcrypto_keys_copy(proto_qcrypto_keys *dst,
			    const proto_qcrypto_keys *src)
{
	const struct suite *s;
	if (dst == NULL || dst == src) {
		return SIM_EINVAL;
	}
	if (src == NULL || !src->ready ||
	    (s = find_suite(src->suite)) == NULL) {
		memset(dst, 0, sizeof(*dst));
		return SIM_EINVAL;
	}
	return setup(dst, s, src->secret, src->secret_len, src->hp);
}

enum proto_qcrypto_phase_keys
proto_qcrypto_phase_select(int current_phase, int packet_phase, uint64_t pn,
			   uint64_t current_first_pn, int have_previous)
{
	if ((current_phase != 0) == (packet_phase != 0)) {
		return PROTO_QCRYPTO_PHASE_CURRENT;
	}
	if (pn >= current_first_pn) {
		return PROTO_QCRYPTO_PHASE_NEXT;
	}
	return have_previous ? PROTO_QCRYPTO_PHASE_PREVIOUS
			     : PROTO_QCRYPTO_PHASE_GONE;
}

/* hp_mask computes the 5-byte header protection mask from a sample
 * (RFC 9001 5.4.3, 5.4.4). */
static void hp_mask(const proto_qcrypto_keys *k,
		    const uint8_t sample[PROTO_QCRYPTO_SAMPLE_LEN],
		    uint8_t mask[5])
{
	if (find_suite(k->suite)->hp == HP_CHACHA) {
		static const uint8_t zeros[5];
		uint32_t counter =
		    (uint32_t)sample[0] | (uint32_t)sample[1] << 8 |
		    (uint32_t)sample[2] << 16 | (uint32_t)sample[3] << 24;
		CRYPTO_chacha_20(mask, zeros, 5, k->hp, sample + 4, counter);
	} else {
		uint8_t block[16];
		AES_ecb_encrypt(sample, block, &k->hp_aes, AES_ENCRYPT);
		memcpy(mask, block, 5);
	}
}

/* first_byte_mask is the part of the mask that applies to first byte
 * |b0|: 4 bits of a long header (top bit set), 5 of a short one. The top
 * bit is never masked, so this is the same before and after. */
static uint8_t first_byte_mask(uint8_t b0, const uint8_t mask[5])
{
	return mask[0] & ((b0 & 0x80) ? 0x0f : 0x1f);
}

/* Applying the mask and removing it are the same XOR; the caller says how
 * long the packet number is (on receipt, from the unmasked first byte). */
static void hp_apply(uint8_t *pkt, size_t pn_offset, size_t pn_len,
		     const uint8_t mask[5])
{
	pkt[0] ^= first_byte_mask(pkt[0], mask);
	for (size_t i = 0; i < pn_len; i++) {
		pkt[pn_offset + i] ^= mask[1 + i];
	}
}

static void make_nonce(const proto_qcrypto_keys *k, uint64_t pn,
		       uint8_t nonce[PROTO_QCRYPTO_IV_LEN])
{
	memcpy(nonce, k->iv, PROTO_QCRYPTO_IV_LEN);
	for (size_t i = 0; i < 8; i++) {
		nonce[PROTO_QCRYPTO_IV_LEN - 1 - i] ^= (uint8_t)(pn >> (8 * i));
	}
}

/* pn_decode recovers a full packet number from its low |pn_len| bytes
 * (RFC 9000 A.3). The caller keeps largest_pn below PROTO_QCRYPTO_PN_MAX,
 * so expected is below 2^62 and the window arithmetic cannot wrap; the
 * RFC's "candidate <= expected - hwin" is written so as not to go below
 * zero. */
static uint64_t pn_decode(int64_t largest_pn, uint64_t truncated, size_t pn_len)
{
	uint64_t expected = (uint64_t)(largest_pn + 1);
	uint64_t win = UINT64_C(1) << (8 * pn_len);
	uint64_t hwin = win / 2, mask = win - 1;
	uint64_t candidate = (expected & ~mask) | truncated;
	if (candidate + hwin <= expected &&
	    candidate < (UINT64_C(1) << 62) - win) {
		return candidate + win;
	}
	if (candidate > expected + hwin && candidate >= win) {
		return candidate - win;
	}
	return candidate;
}

int proto_qcrypto_protect(const proto_qcrypto_keys *k, uint64_t pn,
			  uint8_t *pkt, size_t hdr_len, size_t pn_len,
			  size_t payload_len, size_t cap, size_t *out_len)
{
	uint8_t nonce[PROTO_QCRYPTO_IV_LEN], mask[5];
	size_t pn_offset, sealed_len = 0;
	if (k == NULL || !k->ready || pkt == NULL || out_len == NULL ||
	    pn_len < 1 || pn_len > 4 || hdr_len <= pn_len ||
	    pn > PROTO_QCRYPTO_PN_MAX || pn_len + payload_len < 4 ||
	    cap < hdr_len || cap - hdr_len < payload_len ||
	    cap - hdr_len - payload_len < PROTO_QCRYPTO_TAG_LEN) {
		return SIM_EINVAL;
	}
	pn_offset = hdr_len - pn_len;
	if ((size_t)(pkt[0] & 0x03) + 1 != pn_len) {
		return SIM_EINVAL;
	}
	for (size_t i = 0; i < pn_len; i++) {
		if (pkt[pn_offset + i] !=
		    (uint8_t)(pn >> (8 * (pn_len - 1 - i)))) {
			return SIM_EINVAL;
		}
	}
	make_nonce(k, pn, nonce);
	if (!EVP_AEAD_CTX_seal(&k->aead, pkt + hdr_len, &sealed_len,
			       payload_len + PROTO_QCRYPTO_TAG_LEN, nonce,
			       sizeof(nonce), pkt + hdr_len, payload_len, pkt,
			       hdr_len) ||
	    SIM_NEVER(sealed_len != payload_len + PROTO_QCRYPTO_TAG_LEN)) {
		return SIM_ECRYPTO;
	}
	hp_mask(k, pkt + pn_offset + 4, mask);
	hp_apply(pkt, pn_offset, pn_len, mask);
	*out_len = hdr_len + sealed_len;
	return 0;
}

/* unprotect_args_ok checks what proto_qcrypto_unprotect and
 * proto_qcrypto_peek_header share. */
static int unprotect_args_ok(const proto_qcrypto_keys *k, const uint8_t *pkt,
			     size_t pkt_len, size_t pn_offset,
			     int64_t largest_pn)
{
	return k != NULL && k->ready && pkt != NULL &&
	       pkt_len <= PROTO_QCRYPTO_MAX_PACKET && pn_offset >= 1 &&
	       largest_pn >= -1 && largest_pn < (int64_t)PROTO_QCRYPTO_PN_MAX &&
	       pn_offset <= pkt_len &&
	       pkt_len - pn_offset >= 4 + PROTO_QCRYPTO_SAMPLE_LEN;
}

/* read_header reads the first byte and the packet number of a protected
 * packet through its header protection mask, leaving |pkt| as it is. */
static void read_header(const uint8_t *pkt, size_t pn_offset,
			int64_t largest_pn, const uint8_t mask[5],
			uint8_t *first, size_t *pn_len, uint64_t *pn)
{
	uint64_t truncated = 0;
	*first = pkt[0] ^ first_byte_mask(pkt[0], mask);
	*pn_len = (size_t)(*first & 0x03) + 1;
	for (size_t i = 0; i < *pn_len; i++) {
		truncated = truncated << 8 |
			    (uint8_t)(pkt[pn_offset + i] ^ mask[1 + i]);
	}
	*pn = pn_decode(largest_pn, truncated, *pn_len);
}

int proto_qcrypto_peek_header(const proto_qcrypto_keys *k, const uint8_t *pkt,
			      size_t pkt_len, size_t pn_offset,
			      int64_t largest_pn, uint8_t *out_first,
			      uint64_t *out_pn)
{
	uint8_t mask[5], first;
	size_t pn_len;
	uint64_t pn;
	if (!unprotect_args_ok(k, pkt, pkt_len, pn_offset, largest_pn) ||
	    out_first == NULL || out_pn == NULL) {
		return SIM_EINVAL;
	}
	hp_mask(k, pkt + pn_offset + 4, mask);
	read_header(pkt, pn_offset, largest_pn, mask, &first, &pn_len, &pn);
	*out_first = first;
	*out_pn = pn;
	return 0;
}

int proto_qcrypto_unprotect(const proto_qcrypto_keys *k, uint8_t *pkt,
			    size_t pkt_len, size_t pn_offset,
			    int64_t largest_pn, uint64_t *out_pn,
			    size_t *out_hdr_len, size_t *out_payload_len)
{
	/* Decrypting in place would lose the ciphertext when authentication
	 * fails (BoringSSL zeroes the output), so decrypt into |plain| and
	 * copy back on success. */
	uint8_t plain[PROTO_QCRYPTO_MAX_PACKET];
	uint8_t nonce[PROTO_QCRYPTO_IV_LEN], mask[5], saved[5], first;
	size_t pn_len, hdr_len, plain_len = 0;
	uint64_t pn;
	if (!unprotect_args_ok(k, pkt, pkt_len, pn_offset, largest_pn) ||
	    out_pn == NULL || out_hdr_len == NULL || out_payload_len == NULL) {
		return SIM_EINVAL;
	}
	saved[0] = pkt[0];
	memcpy(saved + 1, pkt + pn_offset, 4);
	hp_mask(k, pkt + pn_offset + 4, mask);
	read_header(pkt, pn_offset, largest_pn, mask, &first, &pn_len, &pn);
	hp_apply(pkt, pn_offset, pn_len, mask);
	hdr_len = pn_offset + pn_len;
	make_nonce(k, pn, nonce);
	/* The sample check above leaves at least a tag after the header. */
	if (SIM_NEVER(pn > PROTO_QCRYPTO_PN_MAX) ||
	    !EVP_AEAD_CTX_open(&k->aead, plain, &plain_len, sizeof(plain),
			       nonce, sizeof(nonce), pkt + hdr_len,
			       pkt_len - hdr_len, pkt, hdr_len)) {
		pkt[0] = saved[0];
		memcpy(pkt + pn_offset, saved + 1, 4);
		OPENSSL_cleanse(plain, plain_len);
		return SIM_ECRYPTO;
	}
	memcpy(pkt + hdr_len, plain, plain_len);
	OPENSSL_cleanse(plain, plain_len);
	*out_pn = pn;
	*out_hdr_len = hdr_len;
	*out_payload_len = plain_len;
	return 0;
}

/* proto/quic_crypto: QUIC v1 packet protection.
 *
 * The hex below is RFC 9001 Appendix A's sample packet protection, as
 * published (DCID 0x8394c8f03e515708 for A.1-A.3; A.5's application
 * secret). Everything else is generated from fixed seeds. */
#include <stdlib.h>

#include "proto/quic_crypto.h"
#include "sim/err.h"
#include "sim/rng.h"
#include "tests/unit.h"

/* unhex decodes |hex| (whitespace ignored) into |out|; returns the byte
 * count, or 0 on a bad digit, an odd count or overflow. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (const char *p = hex; *p != '\0'; p++) {
		int v;
		if (*p == ' ' || *p == '\n') {
			continue;
		}
		if (*p >= '0' && *p <= '9') {
			v = *p - '0';
		} else if (*p >= 'a' && *p <= 'f') {
			v = *p - 'a' + 10;
		} else {
			return 0;
		}
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap) {
			return 0;
		}
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? n : 0;
}

/* CHECK_HEX: |len| bytes at |got| are the bytes |hex| spells. */
#define CHECK_HEX(got, len, hex)                                               \
	do {                                                                   \
		uint8_t want_[1300];                                           \
		size_t want_len_ = unhex((hex), want_, sizeof(want_));         \
		CHECK_INT((len), want_len_);                                   \
		CHECK(want_len_ == (size_t)(len) &&                            \
		      memcmp((got), want_, want_len_) == 0);                   \
	} while (0)

/* ---- RFC 9001 A.1: keys ---- */

static const char dcid_hex[] = "8394c8f03e515708";

TEST(qcrypto_rfc9001_a1_keys)
{
	uint8_t dcid[8], client[32], server[32];
	proto_qcrypto_keys ck, sk;
	REQUIRE(unhex(dcid_hex, dcid, sizeof(dcid)) == 8);
	REQUIRE(proto_qcrypto_initial_secrets(dcid, sizeof(dcid), client,
					      server) == 0);
	CHECK_HEX(client, 32,
		  "c00cf151ca5be075ed0ebfb5c80323c4"
		  "2d6b7db67881289af4008f1f6c357aea");
	CHECK_HEX(server, 32,
		  "3c199828fd139efd216c155ad844cc81"
		  "fb82fa8d7446fa7d78be803acdda951b");

	REQUIRE(proto_qcrypto_keys_init(&ck, PROTO_QCRYPTO_INITIAL_SUITE,
					client, 32) == 0);
	CHECK(ck.ready);
	CHECK_HEX(ck.key, ck.key_len, "1f369613dd76d5467730efcbe3b1a22d");
	CHECK_HEX(ck.iv, sizeof(ck.iv), "fa044b2f42a3fd3b46fb255c");
	CHECK_HEX(ck.hp, ck.hp_len, "9f50449e04a0e810283a1e9933adedd2");
	CHECK_HEX(ck.secret, ck.secret_len,
		  "c00cf151ca5be075ed0ebfb5c80323c4"
		  "2d6b7db67881289af4008f1f6c357aea");

	REQUIRE(proto_qcrypto_keys_init(&sk, PROTO_QCRYPTO_INITIAL_SUITE,
					server, 32) == 0);
	CHECK_HEX(sk.key, sk.key_len, "cf3a5331653c364c88f0f379b6067e37");
	CHECK_HEX(sk.iv, sizeof(sk.iv), "0ac1493ca1905853b0bba03e");
	CHECK_HEX(sk.hp, sk.hp_len, "c206b8d9b9f0f37644430b490eeaa314");

	proto_qcrypto_keys_free(&ck);
	proto_qcrypto_keys_free(&sk);
	CHECK(!ck.ready && !sk.ready);
}

/* ---- RFC 9001 A.2 and A.3: Initial packets ---- */

static const char a2_header[] = "c300000001088394c8f03e5157080000449e00000002";

static const char a2_crypto[] =
    "060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a 00080006001d00170018001000070005"
    "04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408 050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806 048000ffff";

static const char a2_protected[] =
    "c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c 0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89 eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e 610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7 961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7 fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf 330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff2 8f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accd d5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a07 1b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499d bd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723 c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905dd f3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934";

static const char a3_header[] = "c1000000010008f067a5502a4262b50040750001";

static const char a3_payload[] =
    "02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00"
    "020304";

static const char a3_protected[] =
    "cf000000010008f067a5502a4262b500 4075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb3 8cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9 c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f 58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee";

/* A packet vector: where the keys come from, the unprotected header and
 * payload (zero-padded to |payload_len|), and what protecting them must
 * give. */
struct vector {
	uint16_t suite;
	/* secret_hex, or if NULL the Initial secret of the DCID above for
	 * the client (server == 0) or the server. */
	const char *secret_hex;
	int server;
	const char *header, *payload;
	size_t payload_len, pn_len;
	uint64_t pn;
	int64_t largest_pn; /* what the receiver has seen */
	const char *protected_hex;
};

static int vector_keys(const struct vector *v, proto_qcrypto_keys *k)
{
	uint8_t secret[48], dcid[8], client[32], server[32];
	size_t len;
	if (v->secret_hex != NULL) {
		len = unhex(v->secret_hex, secret, sizeof(secret));
	} else if (unhex(dcid_hex, dcid, sizeof(dcid)) == 8 &&
		   proto_qcrypto_initial_secrets(dcid, sizeof(dcid), client,
						 server) == 0) {
		memcpy(secret, v->server ? server : client, 32);
		len = 32;
	} else {
		return SIM_EINVAL;
	}
	return proto_qcrypto_keys_init(k, v->suite, secret, len);
}

static void check_vector(const struct vector *v)
{
	uint8_t pkt[1300], plain[1300];
	size_t hdr_len, body_len, out_len = 0, got_hdr = 0, got_payload = 0;
	uint64_t got_pn = 0;
	proto_qcrypto_keys k;
	REQUIRE(vector_keys(v, &k) == 0);
	memset(pkt, 0, sizeof(pkt));
	hdr_len = unhex(v->header, pkt, sizeof(pkt));
	REQUIRE(hdr_len > v->pn_len);
	body_len = unhex(v->payload, pkt + hdr_len, sizeof(pkt) - hdr_len);
	REQUIRE(body_len > 0 && body_len <= v->payload_len);
	REQUIRE(hdr_len + v->payload_len + PROTO_QCRYPTO_TAG_LEN <=
		sizeof(pkt));
	memcpy(plain, pkt, sizeof(plain));

	CHECK_INT(proto_qcrypto_protect(&k, v->pn, pkt, hdr_len, v->pn_len,
					v->payload_len, sizeof(pkt), &out_len),
		  0);
	CHECK_HEX(pkt, out_len, v->protected_hex);

	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, out_len, hdr_len - v->pn_len,
					  v->largest_pn, &got_pn, &got_hdr,
					  &got_payload),
		  0);
	CHECK_U64(got_pn, v->pn);
	CHECK_INT(got_hdr, hdr_len);
	CHECK_INT(got_payload, v->payload_len);
	CHECK(memcmp(pkt, plain, hdr_len + v->payload_len) == 0);
	proto_qcrypto_keys_free(&k);
}

/* A.2: 1162 bytes of payload, the CRYPTO frame then PADDING (zeros). */
static const struct vector a2 = {PROTO_QCRYPTO_INITIAL_SUITE,
				 NULL,
				 0,
				 a2_header,
				 a2_crypto,
				 1162,
				 4,
				 2,
				 -1,
				 a2_protected};
/* A.3: an ACK and a CRYPTO frame, no padding. */
static const struct vector a3 = {PROTO_QCRYPTO_INITIAL_SUITE,
				 NULL,
				 1,
				 a3_header,
				 a3_payload,
				 99,
				 2,
				 1,
				 -1,
				 a3_protected};

TEST(qcrypto_rfc9001_a2_client_initial)
{
	check_vector(&a2);
}

TEST(qcrypto_rfc9001_a3_server_initial)
{
	check_vector(&a3);
}

/* ---- RFC 9001 A.5: ChaCha20-Poly1305 short header ---- */

static const char a5_secret[] = "9ac312a7f877468ebe69422748ad00a1"
				"5443f18203a07d6060f688f30f21632b";
static const char a5_hp[] = "25a282b9e82f06f21f488917a4fc8f1b"
			    "73573685608597d0efcb076b0ab7a7a4";
static const char a5_ku[] = "1223504755036d556342ee9361d25342"
			    "1a826c9ecdf3c7148684b36b714881f9";
#define A5_PN UINT64_C(654360564)
static const char a5_protected[] = "4cfe4189655e5cd55c41f69080575d7999c25a5bfb";

/* A.5: a short header (0x42: 3-byte packet number 0x00bff4) and one
 * PING frame; the receiver has seen the packet before. */
static const struct vector a5 = {
    0x1303, a5_secret, 0,     "4200bff4",         "01",
    1,      3,         A5_PN, (int64_t)A5_PN - 1, a5_protected};

TEST(qcrypto_rfc9001_a5_chacha20_short)
{
	uint8_t secret[32];
	proto_qcrypto_keys k;
	REQUIRE(unhex(a5_secret, secret, sizeof(secret)) == 32);
	REQUIRE(proto_qcrypto_keys_init(&k, 0x1303, secret, 32) == 0);
	CHECK_HEX(k.key, k.key_len,
		  "c6d98ff3441c3fe1b2182094f69caa2e"
		  "d4b716b65488960a7a984979fb23e1c8");
	CHECK_HEX(k.iv, sizeof(k.iv), "e0459b3474bdd0e44a41c144");
	CHECK_HEX(k.hp, k.hp_len, a5_hp);
	proto_qcrypto_keys_free(&k);

	check_vector(&a5);
}

/* Without the right largest packet number the truncated 0x00bff4 decodes
 * to another packet number, so the nonce is wrong and the packet fails
 * authentication; the bytes are left as they came. */
TEST(qcrypto_rfc9001_a5_needs_pn_context)
{
	uint8_t secret[32], pkt[64], orig[64];
	size_t len = unhex(a5_protected, pkt, sizeof(pkt)), hdr = 0, pl = 0;
	uint64_t pn = 0;
	proto_qcrypto_keys k;
	REQUIRE(len == 21);
	memcpy(orig, pkt, len);
	REQUIRE(unhex(a5_secret, secret, sizeof(secret)) == 32);
	REQUIRE(proto_qcrypto_keys_init(&k, 0x1303, secret, 32) == 0);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, 1, -1, &pn, &hdr, &pl),
		  SIM_ECRYPTO);
	CHECK(memcmp(pkt, orig, len) == 0);
	/* Anywhere within half a window (2^23) below works. */
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, 1,
					  (int64_t)A5_PN - (1 << 22), &pn, &hdr,
					  &pl),
		  0);
	CHECK_U64(pn, A5_PN);
	CHECK_INT(hdr, 4);
	CHECK_INT(pl, 1);
	CHECK_INT(pkt[4], 0x01);
	proto_qcrypto_keys_free(&k);
}

/* ---- key update ---- */

/* A short header: |first| (0x43: 4-byte pn; 0x47 with the Key Phase
 * bit), 8-byte DCID, then the pn; 32 bytes of payload. */
static int protect_first(const proto_qcrypto_keys *k, uint8_t first,
			 uint64_t pn, uint8_t *pkt, size_t cap, size_t *len)
{
	static const uint8_t dcid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	size_t payload_len = 32;
	if (cap < 13 + payload_len + PROTO_QCRYPTO_TAG_LEN) {
		return SIM_EINVAL;
	}
	pkt[0] = first;
	memcpy(pkt + 1, dcid, sizeof(dcid));
	for (int i = 0; i < 4; i++) {
		pkt[9 + i] = (uint8_t)(pn >> (8 * (3 - i)));
	}
	for (size_t i = 0; i < payload_len; i++) {
		pkt[13 + i] = (uint8_t)i;
	}
	return proto_qcrypto_protect(k, pn, pkt, 13, 4, payload_len, cap, len);
}

static int protect_simple(const proto_qcrypto_keys *k, uint64_t pn,
			  uint8_t *pkt, size_t cap, size_t *len)
{
	return protect_first(k, 0x43, pn, pkt, cap, len);
}

static int unprotect_simple(const proto_qcrypto_keys *k, uint8_t *pkt,
			    size_t len)
{
	uint64_t pn;
	size_t hdr, pl;
	return proto_qcrypto_unprotect(k, pkt, len, 9, -1, &pn, &hdr, &pl);
}

TEST(qcrypto_key_update)
{
	uint8_t secret[32], pkt[128], orig[128];
	size_t len = 0;
	proto_qcrypto_keys k, n1, n1b, n2, direct;
	REQUIRE(unhex(a5_secret, secret, sizeof(secret)) == 32);
	REQUIRE(proto_qcrypto_keys_init(&k, 0x1303, secret, 32) == 0);
	REQUIRE(proto_qcrypto_keys_next(&k, &n1) == 0);
	REQUIRE(proto_qcrypto_keys_next(&k, &n1b) == 0);
	REQUIRE(proto_qcrypto_keys_next(&n1, &n2) == 0);

	/* RFC 9001 A.5 gives the next secret ("quic ku"). */
	CHECK_HEX(n1.secret, n1.secret_len, a5_ku);
	CHECK_HEX(n1.hp, n1.hp_len, a5_hp);
	CHECK_HEX(n2.hp, n2.hp_len, a5_hp);
	CHECK(n1.suite == k.suite && n1.ready);
	CHECK(memcmp(n1.key, k.key, k.key_len) != 0);
	CHECK(memcmp(n1.iv, k.iv, sizeof(k.iv)) != 0);
	CHECK(memcmp(n2.key, n1.key, k.key_len) != 0);
	CHECK(memcmp(n2.secret, n1.secret, n1.secret_len) != 0);
	/* Deterministic, and the same as keys made from the ku secret. */
	CHECK(memcmp(n1.key, n1b.key, k.key_len) == 0 &&
	      memcmp(n1.iv, n1b.iv, sizeof(k.iv)) == 0);
	REQUIRE(proto_qcrypto_keys_init(&direct, 0x1303, n1.secret, 32) == 0);
	CHECK(memcmp(direct.key, n1.key, k.key_len) == 0 &&
	      memcmp(direct.iv, n1.iv, sizeof(k.iv)) == 0);
	proto_qcrypto_keys_free(&direct);

	/* A packet under the new keys opens with them only. */
	REQUIRE(protect_simple(&n1, 7, pkt, sizeof(pkt), &len) == 0);
	memcpy(orig, pkt, len);
	CHECK_INT(unprotect_simple(&k, pkt, len), SIM_ECRYPTO);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(unprotect_simple(&n2, pkt, len), SIM_ECRYPTO);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(unprotect_simple(&n1b, pkt, len), 0);
	/* And the reverse: old keys' packets do not open with new keys. */
	REQUIRE(protect_simple(&k, 7, pkt, sizeof(pkt), &len) == 0);
	CHECK_INT(unprotect_simple(&n1, pkt, len), SIM_ECRYPTO);
	CHECK_INT(unprotect_simple(&k, pkt, len), 0);

	CHECK_INT(proto_qcrypto_keys_next(&k, &k), SIM_EINVAL);
	CHECK(k.ready);
	proto_qcrypto_keys_free(&k);
	proto_qcrypto_keys_free(&n1b);
	CHECK_INT(proto_qcrypto_keys_next(&k, &n1b), SIM_EINVAL);
	CHECK(!n1b.ready);
	proto_qcrypto_keys_free(&n1);
	proto_qcrypto_keys_free(&n2);
}

/* A copy is keyed on its own: it outlives its source and protects the
 * same bytes. */
TEST(qcrypto_keys_copy)
{
	uint8_t secret[32], a[128], b[128];
	size_t la = 0, lb = 0;
	proto_qcrypto_keys k, n1, c, c2;
	REQUIRE(unhex(a5_secret, secret, sizeof(secret)) == 32);
	REQUIRE(proto_qcrypto_keys_init(&k, 0x1303, secret, 32) == 0);
	REQUIRE(proto_qcrypto_keys_next(&k, &n1) == 0);
	REQUIRE(proto_qcrypto_keys_copy(&c, &n1) == 0);
	CHECK(c.ready && c.suite == n1.suite);
	CHECK_HEX(c.secret, c.secret_len, a5_ku);
	CHECK_HEX(c.hp, c.hp_len, a5_hp);
	REQUIRE(protect_simple(&n1, 9, a, sizeof(a), &la) == 0);
	proto_qcrypto_keys_free(&n1);
	REQUIRE(protect_simple(&c, 9, b, sizeof(b), &lb) == 0);
	CHECK(la == lb && memcmp(a, b, la) == 0);
	CHECK_INT(unprotect_simple(&c, a, la), 0);
	/* The next phase of a copy is the next phase of the original. */
	REQUIRE(proto_qcrypto_keys_copy(&c2, &k) == 0);
	proto_qcrypto_keys_free(&k);
	REQUIRE(proto_qcrypto_keys_next(&c2, &k) == 0);
	CHECK(memcmp(k.key, c.key, c.key_len) == 0 &&
	      memcmp(k.iv, c.iv, sizeof(c.iv)) == 0);
	CHECK_INT(proto_qcrypto_keys_copy(&c, &c), SIM_EINVAL);
	CHECK_INT(proto_qcrypto_keys_copy(NULL, &c), SIM_EINVAL);
	proto_qcrypto_keys_free(&c2);
	CHECK_INT(proto_qcrypto_keys_copy(&n1, &c2), SIM_EINVAL);
	CHECK(!n1.ready);
	CHECK_INT(proto_qcrypto_keys_copy(&n1, NULL), SIM_EINVAL);
	proto_qcrypto_keys_free(&c);
	proto_qcrypto_keys_free(&k);
}

/* The receiver reads the Key Phase bit through header protection, with
 * the keys of either phase, before it knows which keys will decrypt. */
TEST(qcrypto_peek_header)
{
	uint8_t secret[32], pkt[128], orig[128], first = 0;
	size_t len = 0;
	uint64_t pn = 0;
	proto_qcrypto_keys k, n1;
	REQUIRE(unhex(a5_secret, secret, sizeof(secret)) == 32);
	REQUIRE(proto_qcrypto_keys_init(&k, 0x1303, secret, 32) == 0);
	REQUIRE(proto_qcrypto_keys_next(&k, &n1) == 0);

	/* A.5's packet: 0x42, packet number 654360564. */
	len = unhex(a5_protected, pkt, sizeof(pkt));
	memcpy(orig, pkt, len);
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 1, (int64_t)A5_PN - 1,
					    &first, &pn),
		  0);
	CHECK_INT(first, 0x42);
	CHECK_U64(pn, A5_PN);
	CHECK(memcmp(pkt, orig, len) == 0);

	/* A packet of the next phase, Key Phase bit set: both phases' keys
	 * read the bit and the packet number; only the next ones decrypt. */
	REQUIRE(protect_first(&n1, 0x47, 300, pkt, sizeof(pkt), &len) == 0);
	memcpy(orig, pkt, len);
	first = 0;
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 9, 250, &first, &pn),
		  0);
	CHECK_INT(first, 0x47);
	CHECK_U64(pn, 300);
	CHECK_INT(proto_qcrypto_peek_header(&n1, pkt, len, 9, 250, &first, &pn),
		  0);
	CHECK_INT(first, 0x47);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(unprotect_simple(&k, pkt, len), SIM_ECRYPTO);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(unprotect_simple(&n1, pkt, len), 0);
	CHECK_INT(pkt[0], 0x47);

	/* The checks proto_qcrypto_unprotect makes. */
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 0, -1, &first, &pn),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, 24, 9, -1, &first, &pn),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 9, -2, &first, &pn),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 9, -1, NULL, &pn),
		  SIM_EINVAL);
	proto_qcrypto_keys_free(&k);
	CHECK_INT(proto_qcrypto_peek_header(&k, pkt, len, 9, -1, &first, &pn),
		  SIM_EINVAL);
	proto_qcrypto_keys_free(&n1);
}

/* RFC 9001 6.5: the Key Phase bit and the packet number pick the keys. */
TEST(qcrypto_phase_select)
{
	enum {
		C = PROTO_QCRYPTO_PHASE_CURRENT,
		P = PROTO_QCRYPTO_PHASE_PREVIOUS,
		N = PROTO_QCRYPTO_PHASE_NEXT,
		G = PROTO_QCRYPTO_PHASE_GONE
	};
	static const struct {
		int cur, bit;
		uint64_t pn, first;
		int prev, want;
	} cases[] = {
	    /* Before any update: phase 0 from packet 0 on. */
	    {0, 0, 0, 0, 0, C},
	    {0, 0, 17, 0, 0, C},
	    {0, 1, 17, 0, 0, N}, /* the peer's first update */
	    {0, 1, 0, 0, 0, N},
	    /* Phase 1 since packet 40, phase 0 keys kept. */
	    {1, 1, 40, 40, 1, C},
	    {1, 1, 39, 40, 1, C}, /* the bit says current: try it */
	    {1, 0, 39, 40, 1, P}, /* a late phase 0 packet */
	    {1, 0, 0, 40, 1, P},
	    {1, 0, 40, 40, 1, N}, /* the next update (phase 2) */
	    {1, 0, 41, 40, 1, N},
	    /* The phase 0 keys discarded. */
	    {1, 0, 39, 40, 0, G},
	    {1, 0, 41, 40, 0, N},
	    /* Any nonzero bit is 1. */
	    {1, 4, 50, 40, 1, C},
	    {0, 4, 50, 40, 1, N},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = (int)proto_qcrypto_phase_select(
		    cases[i].cur, cases[i].bit, cases[i].pn, cases[i].first,
		    cases[i].prev);
		if (got != cases[i].want) {
			unit_fail(__FILE__, __LINE__,
				  "case %zu: got %d, want %d", i, got,
				  cases[i].want);
		}
	}
}

/* ---- generated packets, all suites ---- */

static const uint16_t all_suites[] = {0x1301, 0x1302, 0x1303};
#define NSUITES (sizeof(all_suites) / sizeof(all_suites[0]))

static size_t suite_hash_len(uint16_t suite)
{
	return suite == 0x1302 ? 48 : 32;
}

static void random_bytes(sim_rng *r, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = (uint8_t)sim_rng_next(r);
	}
}

static int random_keys(sim_rng *r, uint16_t suite, proto_qcrypto_keys *k)
{
	uint8_t secret[48];
	random_bytes(r, secret, sizeof(secret));
	return proto_qcrypto_keys_init(k, suite, secret, suite_hash_len(suite));
}

/* random_packet writes an unprotected packet for |pn| with a |pn_len|-byte
 * packet number: a long header (Handshake type, random CIDs, a Length
 * covering pn, payload and tag) or a short one (random DCID), then
 * |payload_len| random bytes. Returns the header length (pn included). */
static size_t random_packet(sim_rng *r, int long_header, uint64_t pn,
			    size_t pn_len, size_t payload_len, uint8_t *pkt)
{
	size_t n = 0;
	size_t dcid_len = (size_t)sim_rng_below(r, 21);
	uint8_t bits = (uint8_t)sim_rng_next(r); /* reserved, spin, phase */
	if (long_header) {
		size_t scid_len = (size_t)sim_rng_below(r, 21);
		size_t length = pn_len + payload_len + PROTO_QCRYPTO_TAG_LEN;
		pkt[n++] = (uint8_t)(0xe0 | (bits & 0x0c) | (pn_len - 1));
		pkt[n++] = 0;
		pkt[n++] = 0;
		pkt[n++] = 0;
		pkt[n++] = 1;
		pkt[n++] = (uint8_t)dcid_len;
		random_bytes(r, pkt + n, dcid_len);
		n += dcid_len;
		pkt[n++] = (uint8_t)scid_len;
		random_bytes(r, pkt + n, scid_len);
		n += scid_len;
		pkt[n++] = (uint8_t)(0x40 | length >> 8);
		pkt[n++] = (uint8_t)length;
	} else {
		pkt[n++] = (uint8_t)(0x40 | (bits & 0x3c) | (pn_len - 1));
		random_bytes(r, pkt + n, dcid_len);
		n += dcid_len;
	}
	for (size_t i = 0; i < pn_len; i++) {
		pkt[n++] = (uint8_t)(pn >> (8 * (pn_len - 1 - i)));
	}
	random_bytes(r, pkt + n, payload_len);
	return n;
}

#define PKT_CAP 1500

TEST(qcrypto_round_trip)
{
	sim_rng r;
	sim_rng_init(&r, 9001, "qcrypto_round_trip");
	for (size_t s = 0; s < NSUITES; s++) {
		/* Header protection reaches bit 0x10 of a short header's
		 * first byte, never the top 4 bits of a long header's. */
		int short_bit4 = 0, long_high = 0;
		proto_qcrypto_keys k;
		REQUIRE(random_keys(&r, all_suites[s], &k) == 0);
		for (int iter = 0; iter < 200; iter++) {
			uint8_t pkt[PKT_CAP], plain[PKT_CAP];
			size_t pn_len = (size_t)(iter % 4) + 1;
			int long_header = (iter / 4) % 2;
			size_t min = pn_len >= 4 ? 0 : 4 - pn_len;
			size_t payload_len =
			    min + (size_t)sim_rng_below(&r, 1200);
			/* pn is within half a window either side of the
			 * next one the receiver expects (reordering). */
			uint64_t pn = sim_rng_below(&r, UINT64_C(1) << 40);
			int64_t hwin = INT64_C(1) << (8 * pn_len - 1);
			int64_t d =
			    (int64_t)sim_rng_below(&r, 2 * (uint64_t)hwin) -
			    hwin + 1;
			int64_t largest = (int64_t)pn - 1 - d;
			size_t hdr_len, len = 0, got_hdr = 0, got_pl = 0;
			uint64_t got_pn = 0;
			if (largest < -1) {
				largest = -1;
			}
			hdr_len = random_packet(&r, long_header, pn, pn_len,
						payload_len, pkt);
			memcpy(plain, pkt, hdr_len + payload_len);
			REQUIRE(proto_qcrypto_protect(&k, pn, pkt, hdr_len,
						      pn_len, payload_len,
						      sizeof(pkt), &len) == 0);
			REQUIRE(len ==
				hdr_len + payload_len + PROTO_QCRYPTO_TAG_LEN);
			if (long_header) {
				long_high |= (pkt[0] ^ plain[0]) & 0xf0;
			} else {
				short_bit4 |= (pkt[0] ^ plain[0]) & 0x10;
				CHECK(((pkt[0] ^ plain[0]) & 0xe0) == 0);
			}
			REQUIRE(proto_qcrypto_unprotect(
				    &k, pkt, len, hdr_len - pn_len, largest,
				    &got_pn, &got_hdr, &got_pl) == 0);
			CHECK_U64(got_pn, pn);
			CHECK_INT(got_hdr, hdr_len);
			CHECK_INT(got_pl, payload_len);
			CHECK(memcmp(pkt, plain, hdr_len + payload_len) == 0);
		}
		CHECK_INT(long_high, 0);
		CHECK(short_bit4 != 0);
		proto_qcrypto_keys_free(&k);
	}
}

/* Protecting the same packet twice gives the same bytes, and the suites
 * differ from one another. */
TEST(qcrypto_deterministic)
{
	uint8_t out[NSUITES][2][128];
	size_t len[NSUITES][2];
	for (size_t s = 0; s < NSUITES; s++) {
		for (int t = 0; t < 2; t++) {
			sim_rng r;
			proto_qcrypto_keys k;
			sim_rng_init(&r, 1, "qcrypto_deterministic");
			REQUIRE(random_keys(&r, all_suites[s], &k) == 0);
			REQUIRE(protect_simple(&k, 1234, out[s][t],
					       sizeof(out[s][t]),
					       &len[s][t]) == 0);
			proto_qcrypto_keys_free(&k);
		}
		CHECK(len[s][0] == len[s][1] &&
		      memcmp(out[s][0], out[s][1], len[s][0]) == 0);
	}
	CHECK(memcmp(out[0][0], out[1][0], len[0][0]) != 0);
	CHECK(memcmp(out[1][0], out[2][0], len[1][0]) != 0);
}

/* Flipping any one bit of a protected packet makes it fail
 * authentication, and the packet is left exactly as it was given. */
TEST(qcrypto_tamper)
{
	sim_rng r;
	sim_rng_init(&r, 17, "qcrypto_tamper");
	for (size_t s = 0; s < NSUITES; s++) {
		proto_qcrypto_keys k;
		REQUIRE(random_keys(&r, all_suites[s], &k) == 0);
		for (int long_header = 0; long_header < 2; long_header++) {
			uint8_t pkt[PKT_CAP], prot[PKT_CAP];
			size_t pn_len = long_header ? 2 : 1;
			size_t payload_len = 40, len = 0, hdr_len, bad = 0;
			uint64_t pn = 1000 + (uint64_t)long_header;
			hdr_len = random_packet(&r, long_header, pn, pn_len,
						payload_len, pkt);
			REQUIRE(proto_qcrypto_protect(&k, pn, pkt, hdr_len,
						      pn_len, payload_len,
						      sizeof(pkt), &len) == 0);
			memcpy(prot, pkt, len);
			for (size_t bit = 0; bit < 8 * len; bit++) {
				uint64_t got_pn = 0;
				size_t got_hdr = 0, got_pl = 0;
				int rc;
				memcpy(pkt, prot, len);
				pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				rc = proto_qcrypto_unprotect(
				    &k, pkt, len, hdr_len - pn_len, 999,
				    &got_pn, &got_hdr, &got_pl);
				pkt[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				if (rc != SIM_ECRYPTO ||
				    memcmp(pkt, prot, len) != 0) {
					bad++;
				}
			}
			CHECK_INT(bad, 0);
		}
		proto_qcrypto_keys_free(&k);
	}
}

/* ---- argument checks ---- */

TEST(qcrypto_too_short)
{
	uint8_t pkt[PKT_CAP], orig[PKT_CAP];
	size_t len = 0, hdr = 0, pl = 0;
	uint64_t pn = 0;
	sim_rng r;
	proto_qcrypto_keys k;
	sim_rng_init(&r, 3, "qcrypto_too_short");
	REQUIRE(random_keys(&r, 0x1301, &k) == 0);
	REQUIRE(protect_simple(&k, 5, pkt, sizeof(pkt), &len) == 0);
	memcpy(orig, pkt, len);
	/* pn_offset 9: the sample needs 9 + 4 + 16 = 29 bytes. */
	for (size_t n = 0; n < 29; n++) {
		CHECK_INT(
		    proto_qcrypto_unprotect(&k, pkt, n, 9, -1, &pn, &hdr, &pl),
		    SIM_EINVAL);
	}
	CHECK(memcmp(pkt, orig, len) == 0);
	/* Long enough to sample but cut short: authentication fails. */
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, 29, 9, -1, &pn, &hdr, &pl),
		  SIM_ECRYPTO);
	CHECK_INT(
	    proto_qcrypto_unprotect(&k, pkt, len - 1, 9, -1, &pn, &hdr, &pl),
	    SIM_ECRYPTO);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(
	    proto_qcrypto_unprotect(&k, pkt, len, len, -1, &pn, &hdr, &pl),
	    SIM_EINVAL);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, 0, -1, &pn, &hdr, &pl),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, 9, -2, &pn, &hdr, &pl),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, PROTO_QCRYPTO_MAX_PACKET + 1,
					  9, -1, &pn, &hdr, &pl),
		  SIM_EINVAL);
	CHECK(memcmp(pkt, orig, len) == 0);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, 9, -1, &pn, &hdr, &pl),
		  0);
	CHECK_U64(pn, 5);
	proto_qcrypto_keys_free(&k);
}

TEST(qcrypto_protect_args)
{
	uint8_t pkt[64], orig[64];
	size_t len = 0;
	sim_rng r;
	proto_qcrypto_keys k, zero;
	memset(&zero, 0, sizeof(zero));
	sim_rng_init(&r, 4, "qcrypto_protect_args");
	REQUIRE(random_keys(&r, 0x1303, &k) == 0);
	/* Short header, 1-byte pn 0x07: payload must be >= 3 bytes. */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x40;
	pkt[1] = 0x07;
	memcpy(orig, pkt, sizeof(pkt));
	CHECK_INT(proto_qcrypto_protect(&k, 7, pkt, 2, 1, 2, sizeof(pkt), &len),
		  SIM_EINVAL);
	/* No room for the tag. */
	CHECK_INT(proto_qcrypto_protect(&k, 7, pkt, 2, 1, 3, 2 + 3 + 15, &len),
		  SIM_EINVAL);
	/* The header disagrees with pn or pn_len. */
	CHECK_INT(proto_qcrypto_protect(&k, 8, pkt, 2, 1, 3, sizeof(pkt), &len),
		  SIM_EINVAL);
	CHECK_INT(
	    proto_qcrypto_protect(&k, 0x107, pkt, 3, 2, 3, sizeof(pkt), &len),
	    SIM_EINVAL);
	CHECK_INT(proto_qcrypto_protect(&k, 7, pkt, 1, 1, 3, sizeof(pkt), &len),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_protect(&k, 7, pkt, 6, 5, 3, sizeof(pkt), &len),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_protect(&k, PROTO_QCRYPTO_PN_MAX + 1, pkt, 2, 1,
					3, sizeof(pkt), &len),
		  SIM_EINVAL);
	CHECK_INT(
	    proto_qcrypto_protect(&zero, 7, pkt, 2, 1, 3, sizeof(pkt), &len),
	    SIM_EINVAL);
	CHECK(memcmp(pkt, orig, sizeof(pkt)) == 0);
	/* The smallest packet: 1 + 1 + 3 + 16 bytes. */
	CHECK_INT(proto_qcrypto_protect(&k, 7, pkt, 2, 1, 3, 2 + 3 + 16, &len),
		  0);
	CHECK_INT(len, 21);
	proto_qcrypto_keys_free(&k);
}

TEST(qcrypto_keys_args)
{
	uint8_t secret[48] = {0}, client[32], server[32], dcid[21] = {0};
	proto_qcrypto_keys k, zero;
	memset(&zero, 0, sizeof(zero));
	memset(&k, 0x5a, sizeof(k));
	CHECK_INT(proto_qcrypto_keys_init(&k, 0x1304, secret, 32),
		  SIM_EINVAL); /* TLS_AES_128_CCM_SHA256 */
	CHECK(memcmp(&k, &zero, sizeof(k)) == 0);
	CHECK_INT(proto_qcrypto_keys_init(&k, 0x1301, secret, 48), SIM_EINVAL);
	CHECK_INT(proto_qcrypto_keys_init(&k, 0x1302, secret, 32), SIM_EINVAL);
	CHECK_INT(proto_qcrypto_keys_init(&k, 0x1303, secret, 0), SIM_EINVAL);
	CHECK_INT(proto_qcrypto_keys_init(&k, 0x1303, NULL, 32), SIM_EINVAL);
	CHECK_INT(proto_qcrypto_keys_init(NULL, 0x1303, secret, 32),
		  SIM_EINVAL);
	CHECK(!k.ready);
	for (size_t s = 0; s < NSUITES; s++) {
		size_t hl = suite_hash_len(all_suites[s]);
		CHECK_INT(
		    proto_qcrypto_keys_init(&k, all_suites[s], secret, hl), 0);
		CHECK_INT(k.secret_len, hl);
		CHECK_INT(k.key_len, all_suites[s] == 0x1301 ? 16 : 32);
		CHECK_INT(k.hp_len, k.key_len);
		proto_qcrypto_keys_free(&k);
		CHECK(memcmp(&k, &zero, sizeof(k)) == 0);
	}
	/* Free is idempotent and safe on zeroed keys and NULL. */
	proto_qcrypto_keys_free(&k);
	proto_qcrypto_keys_free(&zero);
	proto_qcrypto_keys_free(NULL);

	CHECK_INT(proto_qcrypto_initial_secrets(dcid, 21, client, server),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_initial_secrets(NULL, 8, client, server),
		  SIM_EINVAL);
	CHECK_INT(proto_qcrypto_initial_secrets(dcid, 20, client, server), 0);
	CHECK_INT(proto_qcrypto_initial_secrets(NULL, 0, client, server), 0);
	CHECK(memcmp(client, server, 32) != 0);
}

/* ---- packet number recovery (RFC 9000 A.3) ---- */

static void check_pn(uint64_t pn, size_t pn_len, int64_t largest)
{
	uint8_t pkt[PKT_CAP];
	size_t hdr_len, len = 0, hdr = 0, pl = 0;
	uint64_t got = 0;
	sim_rng r;
	proto_qcrypto_keys k;
	sim_rng_init(&r, 5, "qcrypto_pn");
	REQUIRE(random_keys(&r, 0x1301, &k) == 0);
	hdr_len = random_packet(&r, 0, pn, pn_len, 8, pkt);
	REQUIRE(proto_qcrypto_protect(&k, pn, pkt, hdr_len, pn_len, 8,
				      sizeof(pkt), &len) == 0);
	CHECK_INT(proto_qcrypto_unprotect(&k, pkt, len, hdr_len - pn_len,
					  largest, &got, &hdr, &pl),
		  0);
	CHECK_U64(got, pn);
	proto_qcrypto_keys_free(&k);
}

TEST(qcrypto_pn_decode)
{
	/* RFC 9000 A.3's example: largest 0xa82f30ea, truncated 0x9b32. */
	check_pn(UINT64_C(0xa82f9b32), 2, INT64_C(0xa82f30ea));
	/* Edges of the window, both ways. */
	check_pn(0, 1, -1);
	check_pn(127, 1, -1);
	check_pn(255, 1, 127);
	check_pn(256, 1, 255);
	check_pn(300, 1, 400);
	check_pn(101, 1, 227);
	check_pn(356, 1, 227); /* 100 is half a window back: read as 356 */
	check_pn(UINT64_C(0x10000), 2, 0xffff);
	check_pn(UINT64_C(0xfffe), 2, 0x10000);
	check_pn(PROTO_QCRYPTO_PN_MAX, 4, (int64_t)PROTO_QCRYPTO_PN_MAX - 1);
	check_pn(PROTO_QCRYPTO_PN_MAX, 1, (int64_t)PROTO_QCRYPTO_PN_MAX - 100);
	/* Near 2^62 the window cannot move up. */
	check_pn(PROTO_QCRYPTO_PN_MAX - 255, 1,
		 (int64_t)PROTO_QCRYPTO_PN_MAX - 1);
	check_pn(PROTO_QCRYPTO_PN_MAX - 300, 2,
		 (int64_t)PROTO_QCRYPTO_PN_MAX - 1);
}

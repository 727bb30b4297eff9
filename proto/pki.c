#include "proto/pki.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sim/entropy.h"
#include "sim/err.h"

#define NS_PER_S INT64_C(1000000000)

static _Thread_local int64_t clock_unix_ns;

void proto_pki_clock_set(int64_t unix_ns)
{
	clock_unix_ns = unix_ns;
}

int64_t proto_pki_clock_get(void)
{
	return clock_unix_ns;
}

/* Floor division, so that times before 1970 still round down. */
static int64_t clock_seconds(void)
{
	int64_t ns = clock_unix_ns;
	int64_t s = ns / NS_PER_S;
	if (ns % NS_PER_S < 0) {
		s--;
	}
	return s;
}

static void current_time_cb(const SSL *ssl, struct timeval *out_clock)
{
	int64_t s = clock_seconds();
	int64_t rem_ns = clock_unix_ns - s * NS_PER_S;
	out_clock->tv_sec = (time_t)s;
	out_clock->tv_usec = (suseconds_t)(rem_ns / 1000);
}

/* Without this, BoringSSL would verify at the time put in the verify param
 * when the context was made; with it, at the virtual time of the handshake.
 * X509_STORE_CTX_set_time also sets X509_V_FLAG_USE_CHECK_TIME, so
 * X509_verify_cert never calls time(). */
static int verify_at_virtual_time(X509_STORE_CTX *store_ctx, void *arg)
{
	X509_STORE_CTX_set_time(store_ctx, 0, (time_t)clock_seconds());
	return X509_verify_cert(store_ctx) > 0;
}

static int valid_time(int64_t t)
{
	/* GeneralizedTime covers years 0000-9999; stay well inside. */
	return t >= 0 && t <= INT64_C(253402300799);
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (ext == NULL) {
		return 0;
	}
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static EVP_PKEY *generate_p256(void)
{
	EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
	EVP_PKEY *pkey = EVP_PKEY_new();
	if (ec == NULL || pkey == NULL || !EC_KEY_generate_key(ec) ||
	    !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
		EC_KEY_free(ec);
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

static int set_serial(X509 *x)
{
	uint8_t raw[PROTO_PKI_SERIAL_BYTES];
	if (sim_entropy_fill(raw, sizeof(raw)) != 0) {
		return 0;
	}
	raw[0] &= 0x7f;
	raw[0] |= 0x40; /* nonzero and always PROTO_PKI_SERIAL_BYTES long */
	BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
	ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
	int ok = ai != NULL && X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	BN_free(bn);
	return ok;
}

int proto_pki_self_signed(const char *dns_name, int64_t epoch_s,
                          int64_t validity_s, EVP_PKEY **out_key,
                          X509 **out_cert)
{
	if (dns_name == NULL || dns_name[0] == '\0' || strlen(dns_name) > 253 ||
	    out_key == NULL || out_cert == NULL || validity_s <= 0 ||
	    !valid_time(epoch_s - PROTO_PKI_BACKDATE_S) ||
	    validity_s > INT64_C(253402300799) - epoch_s ||
	    (int64_t)(time_t)(epoch_s + validity_s) != epoch_s + validity_s) {
		return SIM_EINVAL;
	}
	if (!sim_entropy_active()) {
		return SIM_ESTATE;
	}
	char san[300];
	snprintf(san, sizeof(san), "DNS:%s", dns_name);

	int rc = SIM_ECRYPTO;
	EVP_PKEY *pkey = generate_p256();
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	if (pkey == NULL || x == NULL || name == NULL ||
	    !X509_set_version(x, X509_VERSION_3) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                (const uint8_t *)dns_name, -1, -1, 0) ||
	    !X509_set_subject_name(x, name) || !X509_set_issuer_name(x, name) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x),
	                   (time_t)(epoch_s - PROTO_PKI_BACKDATE_S)) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x),
	                   (time_t)(epoch_s + validity_s)) ||
	    !X509_set_pubkey(x, pkey)) {
		goto out;
	}
	if (!set_serial(x)) {
		goto out;
	}
	/* No keyUsage: a self-signed certificate is its own issuer, which
	 * BoringSSL accepts only if a keyUsage includes keyCertSign, and RFC
	 * 5280 forbids keyCertSign without CA:TRUE. */
	if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, NID_ext_key_usage, "serverAuth") ||
	    !add_ext(x, NID_subject_alt_name, san) ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0) {
		goto out;
	}
	*out_key = pkey;
	*out_cert = x;
	pkey = NULL;
	x = NULL;
	rc = 0;
out:
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

static SSL_CTX *new_tls13_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_current_time_cb(ctx, current_time_cb);
	return ctx;
}

int proto_pki_tls13_ctx_pair(EVP_PKEY *key, X509 *cert, const char *dns_name,
                             SSL_CTX **out_client, SSL_CTX **out_server)
{
	if (key == NULL || cert == NULL || dns_name == NULL ||
	    out_client == NULL || out_server == NULL) {
		return SIM_EINVAL;
	}
	SSL_CTX *srv = new_tls13_ctx();
	SSL_CTX *cli = new_tls13_ctx();
	if (srv == NULL || cli == NULL || !SSL_CTX_use_certificate(srv, cert) ||
	    !SSL_CTX_use_PrivateKey(srv, key) ||
	    !SSL_CTX_check_private_key(srv) ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(cli), cert)) {
		goto fail;
	}
	X509_VERIFY_PARAM *param = SSL_CTX_get0_param(cli);
	if (!X509_VERIFY_PARAM_set1_host(param, dns_name, strlen(dns_name))) {
		goto fail;
	}
	X509_VERIFY_PARAM_set_time(param, (time_t)clock_seconds());
	SSL_CTX_set_verify(cli, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(cli, verify_at_virtual_time, NULL);
	*out_client = cli;
	*out_server = srv;
	return 0;
fail:
	SSL_CTX_free(cli);
	SSL_CTX_free(srv);
	return SIM_ECRYPTO;
}

/* --- chains -------------------------------------------------------------- */

#define DAY_S INT64_C(86400)
#define CA_VALIDITY_S (3650 * DAY_S)
#define LEAF_VALIDITY_S (90 * DAY_S)

static EVP_PKEY *generate(proto_pki_alg alg)
{
	if (alg == PROTO_PKI_P256) {
		return generate_p256();
	}
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (kctx == NULL || EVP_PKEY_keygen_init(kctx) != 1 ||
	    EVP_PKEY_keygen(kctx, &pkey) != 1) {
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(kctx);
	return pkey;
}

static X509_NAME *cn_name(const char *cn)
{
	X509_NAME *n = X509_NAME_new();
	if (n != NULL &&
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
					(const uint8_t *)cn, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* Adds extension |nid| = |value| with |issuer| as the issuer (for the
 * authority key identifier). */
static int add_ext_by(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, nid, value);
	if (ext == NULL) {
		return 0;
	}
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

typedef struct cert_spec {
	const char *cn;
	const char *const *ext; /* nid/value pairs as strings, NULL ended */
	const int *nids;
	int64_t not_before_s, not_after_s;
} cert_spec;

/* Makes a certificate for |key| signed by |issuer_key| (|issuer| NULL: self
 * signed). Returns NULL on failure. */
static X509 *make_cert(const cert_spec *s, EVP_PKEY *key, X509 *issuer,
		       EVP_PKEY *issuer_key, proto_pki_alg alg)
{
	X509 *x = X509_new();
	X509_NAME *name = cn_name(s->cn);
	const EVP_MD *md = alg == PROTO_PKI_P256 ? EVP_sha256() : NULL;
	int ok = x != NULL && name != NULL &&
		 X509_set_version(x, X509_VERSION_3) &&
		 X509_set_subject_name(x, name) &&
		 X509_set_issuer_name(x, issuer != NULL
						? X509_get_subject_name(issuer)
						: name) &&
		 ASN1_TIME_set(X509_getm_notBefore(x),
			       (time_t)s->not_before_s) &&
		 ASN1_TIME_set(X509_getm_notAfter(x),
			       (time_t)s->not_after_s) &&
		 X509_set_pubkey(x, key) && set_serial(x);
	for (int i = 0; ok && s->ext[i] != NULL; i++) {
		ok = add_ext_by(x, issuer != NULL ? issuer : x, s->nids[i],
				s->ext[i]);
	}
	ok = ok && X509_sign(x, issuer_key, md) > 0;
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

void proto_pki_chain_del(proto_pki_chain *c)
{
	if (c == NULL) {
		return;
	}
	X509_free(c->root);
	X509_free(c->inter);
	X509_free(c->leaf);
	EVP_PKEY_free(c->root_key);
	EVP_PKEY_free(c->inter_key);
	EVP_PKEY_free(c->leaf_key);
	OPENSSL_free(c);
}

int proto_pki_chain_new(const proto_pki_chain_params *p, proto_pki_chain **out)
{
	if (p == NULL || out == NULL || p->dns_name == NULL ||
	    p->dns_name[0] == '\0' || strlen(p->dns_name) > 253 ||
	    (p->alg != PROTO_PKI_P256 && p->alg != PROTO_PKI_ED25519)) {
		return SIM_EINVAL;
	}
	int64_t nb = p->epoch_s - PROTO_PKI_BACKDATE_S;
	int64_t na = p->epoch_s + LEAF_VALIDITY_S;
	if (p->leaf_not_before_s != 0 || p->leaf_not_after_s != 0) {
		nb = p->epoch_s + p->leaf_not_before_s;
		na = p->epoch_s + p->leaf_not_after_s;
	}
	int64_t ca_nb = p->epoch_s - CA_VALIDITY_S;
	int64_t ca_na = p->epoch_s + CA_VALIDITY_S;
	if (nb >= na || !valid_time(nb) || !valid_time(na) ||
	    !valid_time(ca_nb) || !valid_time(ca_na)) {
		return SIM_EINVAL;
	}
	if (!sim_entropy_active()) {
		return SIM_ESTATE;
	}
	char san[300];
	snprintf(san, sizeof(san), "DNS:%s", p->dns_name);
	static const int ca_nids[] = {NID_basic_constraints, NID_key_usage,
				      NID_subject_key_identifier,
				      NID_authority_key_identifier};
	static const char *const root_ext[] = {
		"critical,CA:TRUE", "critical,keyCertSign,cRLSign", "hash",
		"keyid:always", NULL};
	static const char *const inter_ext[] = {
		"critical,CA:TRUE,pathlen:0", "critical,keyCertSign,cRLSign",
		"hash", "keyid:always", NULL};
	static const int leaf_nids[] = {
		NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
		NID_subject_alt_name, NID_authority_key_identifier};
	const char *leaf_ext[] = {"critical,CA:FALSE",
				  "critical,digitalSignature", "serverAuth",
				  san, "keyid:always", NULL};
	const cert_spec root = {"tlsim root CA", root_ext, ca_nids, ca_nb,
				ca_na};
	const cert_spec inter = {"tlsim intermediate CA", inter_ext, ca_nids,
				 ca_nb, ca_na};
	const cert_spec leaf = {p->dns_name, leaf_ext, leaf_nids, nb, na};

	proto_pki_chain *c = OPENSSL_malloc(sizeof(*c));
	if (c == NULL) {
		return SIM_ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->root_key = generate(p->alg);
	c->inter_key = generate(p->alg);
	c->leaf_key = generate(p->alg);
	if (c->root_key != NULL && c->inter_key != NULL &&
	    c->leaf_key != NULL) {
		c->root = make_cert(&root, c->root_key, NULL, c->root_key,
				    p->alg);
	}
	if (c->root != NULL) {
		c->inter = make_cert(&inter, c->inter_key, c->root,
				     c->root_key, p->alg);
	}
	if (c->inter != NULL) {
		c->leaf = make_cert(&leaf, c->leaf_key, c->inter,
				    c->inter_key, p->alg);
	}
	if (c->leaf == NULL) {
		proto_pki_chain_del(c);
		return SIM_ECRYPTO;
	}
	*out = c;
	return 0;
}

int proto_pki_verify(STACK_OF(X509) *chain, STACK_OF(X509) *roots,
		     STACK_OF(X509) *cached, const char *dns_name,
		     int64_t now_s, int *out_depth, char *msg, size_t msglen)
{
	*out_depth = -1;
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int err = X509_V_ERR_UNSPECIFIED;
	int ok = store != NULL && sctx != NULL && untrusted != NULL &&
		 chain != NULL && sk_X509_num(chain) > 0;
	for (size_t i = 0; ok && roots != NULL && i < sk_X509_num(roots);
	     i++) {
		ok = X509_STORE_add_cert(store, sk_X509_value(roots, i));
	}
	for (size_t i = 1; ok && i < sk_X509_num(chain); i++) {
		ok = sk_X509_push(untrusted, sk_X509_value(chain, i)) != 0;
	}
	for (size_t i = 0; ok && cached != NULL && i < sk_X509_num(cached);
	     i++) {
		ok = sk_X509_push(untrusted, sk_X509_value(cached, i)) != 0;
	}
	ok = ok && X509_STORE_CTX_init(sctx, store, sk_X509_value(chain, 0),
				       untrusted);
	if (ok) {
		X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sctx);
		X509_STORE_CTX_set_default(sctx, "ssl_server");
		X509_VERIFY_PARAM_set1_host(param, dns_name, strlen(dns_name));
		X509_STORE_CTX_set_time(sctx, 0, (time_t)now_s);
		if (X509_verify_cert(sctx) == 1) {
			err = X509_V_OK;
		} else {
			err = X509_STORE_CTX_get_error(sctx);
			*out_depth = X509_STORE_CTX_get_error_depth(sctx);
		}
	}
	if (err == X509_V_OK) {
		snprintf(msg, msglen, "ok");
	} else {
		snprintf(msg, msglen, "%s (depth %d)",
			 X509_verify_cert_error_string(err), *out_depth);
	}
	sk_X509_free(untrusted); /* borrowed entries */
	X509_STORE_CTX_free(sctx);
	X509_STORE_free(store);
	return err;
}

int proto_pki_alert_for(int x509_err)
{
	return SSL_alert_from_verify_result(x509_err);
}

const char *proto_pki_alert_name(int alert)
{
	/* RFC 8446 section 6 (and the older ones still seen on the wire). */
	static const struct {
		int code;
		const char *name;
	} names[] = {
		{0, "close_notify"},
		{10, "unexpected_message"},
		{20, "bad_record_mac"},
		{21, "decryption_failed"},
		{22, "record_overflow"},
		{30, "decompression_failure"},
		{40, "handshake_failure"},
		{41, "no_certificate"},
		{42, "bad_certificate"},
		{43, "unsupported_certificate"},
		{44, "certificate_revoked"},
		{45, "certificate_expired"},
		{46, "certificate_unknown"},
		{47, "illegal_parameter"},
		{48, "unknown_ca"},
		{49, "access_denied"},
		{50, "decode_error"},
		{51, "decrypt_error"},
		{60, "export_restriction"},
		{70, "protocol_version"},
		{71, "insufficient_security"},
		{80, "internal_error"},
		{86, "inappropriate_fallback"},
		{90, "user_canceled"},
		{100, "no_renegotiation"},
		{109, "missing_extension"},
		{110, "unsupported_extension"},
		{111, "certificate_unobtainable"},
		{112, "unrecognized_name"},
		{113, "bad_certificate_status_response"},
		{114, "bad_certificate_hash_value"},
		{115, "unknown_psk_identity"},
		{116, "certificate_required"},
		{120, "no_application_protocol"},
		{121, "ech_required"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i].code == alert) {
			return names[i].name;
		}
	}
	return "unknown";
}

static SSL_CTX *new_ctx(uint16_t min_version, uint16_t max_version,
			const char *groups, const char *ciphers)
{
	/* Ed25519 is not in BoringSSL's default verify preferences. */
	static const uint16_t verify_prefs[] = {
		SSL_SIGN_ECDSA_SECP256R1_SHA256, SSL_SIGN_ED25519,
		SSL_SIGN_RSA_PSS_RSAE_SHA256,    SSL_SIGN_RSA_PKCS1_SHA256,
		SSL_SIGN_ECDSA_SECP384R1_SHA384, SSL_SIGN_RSA_PSS_RSAE_SHA384,
		SSL_SIGN_RSA_PKCS1_SHA384,       SSL_SIGN_RSA_PSS_RSAE_SHA512,
		SSL_SIGN_RSA_PKCS1_SHA512,
	};
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, max_version) ||
	    !SSL_CTX_set_verify_algorithm_prefs(
		    ctx, verify_prefs,
		    sizeof(verify_prefs) / sizeof(verify_prefs[0])) ||
	    (groups != NULL && !SSL_CTX_set1_curves_list(ctx, groups)) ||
	    (ciphers != NULL && !SSL_CTX_set_strict_cipher_list(ctx, ciphers))) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_current_time_cb(ctx, current_time_cb);
	return ctx;
}

SSL_CTX *proto_pki_server_ctx(const proto_pki_chain *c, int send_chain,
			      uint16_t min_version, uint16_t max_version,
			      const char *groups, const char *ciphers)
{
	SSL_CTX *ctx = new_ctx(min_version, max_version, groups, ciphers);
	if (ctx == NULL || !SSL_CTX_use_certificate(ctx, c->leaf) ||
	    !SSL_CTX_use_PrivateKey(ctx, c->leaf_key) ||
	    (send_chain && !SSL_CTX_add1_chain_cert(ctx, c->inter))) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *proto_pki_client_ctx(uint16_t min_version, uint16_t max_version,
			      const char *groups, const char *ciphers)
{
	return new_ctx(min_version, max_version, groups, ciphers);
}

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

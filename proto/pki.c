#include "proto/pki.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/sha.h>
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

/* GeneralizedTime covers years 0000-9999; stay inside 1970..9999 so that
 * every time is also a valid time_t. */
#define TIME_MAX_S INT64_C(253402300799)

static int valid_time(int64_t t)
{
	return t >= 0 && t <= TIME_MAX_S && (int64_t)(time_t)t == t;
}

/* valid_dns_name accepts what a certificate's DNS name may hold, and in
 * particular nothing that the extension-config syntax of subjectAltName
 * ("DNS:...", comma-separated) would read as more than one name. */
static int valid_dns_name(const char *name)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > 253) {
		return 0;
	}
	if (name[0] == '*' && name[1] == '.') {
		name += 2;
	}
	for (const char *q = name; *q != '\0'; q++) {
		char ch = *q;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.')) {
			return 0;
		}
	}
	return name[0] != '\0';
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

static EVP_PKEY *generate_ed25519(void)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (kctx == NULL || !EVP_PKEY_keygen_init(kctx) ||
	    !EVP_PKEY_keygen(kctx, &pkey)) {
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(kctx);
	return pkey;
}

static EVP_PKEY *generate_key(proto_pki_alg alg)
{
	return alg == PROTO_PKI_ED25519 ? generate_ed25519() : generate_p256();
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

/* |issuer| is the certificate whose key identifier an
 * authorityKeyIdentifier copies; a self-signed certificate is its own. */
static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
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

struct ext {
	int nid;
	const char *value;
};

/* cert_spec is one certificate for make_cert. */
struct cert_spec {
	const char *cn;
	EVP_PKEY *key;        /* the subject's key */
	X509 *issuer;         /* NULL: self-signed */
	EVP_PKEY *issuer_key; /* signs; ignored when self-signed */
	int64_t not_before_s, not_after_s;
	const struct ext *exts; /* added in order; ends at nid NID_undef */
};

/* make_cert builds, serial-numbers (one entropy draw) and signs the
 * certificate |s| describes, or returns NULL. Ed25519 keys sign without a
 * separate digest; everything else with SHA-256. The caller has checked
 * that the times fit a time_t. */
static X509 *make_cert(const struct cert_spec *s)
{
	X509 *issuer = s->issuer;
	EVP_PKEY *signer = issuer != NULL ? s->issuer_key : s->key;
	const EVP_MD *md =
	    EVP_PKEY_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	int ok =
	    x != NULL && name != NULL && X509_set_version(x, X509_VERSION_3) &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				       (const uint8_t *)s->cn, -1, -1, 0) &&
	    X509_set_subject_name(x, name) &&
	    X509_set_issuer_name(
		x, issuer != NULL ? X509_get_subject_name(issuer) : name) &&
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)s->not_before_s) &&
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)s->not_after_s) &&
	    X509_set_pubkey(x, s->key) && set_serial(x);
	for (const struct ext *e = s->exts; ok && e->nid != NID_undef; e++) {
		ok = add_ext(x, issuer != NULL ? issuer : x, e->nid, e->value);
	}
	ok = ok && X509_sign(x, signer, md) > 0;
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int proto_pki_self_signed(const char *dns_name, int64_t epoch_s,
			  int64_t validity_s, EVP_PKEY **out_key,
			  X509 **out_cert)
{
	if (!valid_dns_name(dns_name) || out_key == NULL || out_cert == NULL ||
	    validity_s <= 0 || epoch_s < PROTO_PKI_BACKDATE_S ||
	    !valid_time(epoch_s - PROTO_PKI_BACKDATE_S) ||
	    validity_s > TIME_MAX_S - epoch_s ||
	    !valid_time(epoch_s + validity_s)) {
		return SIM_EINVAL;
	}
	if (!sim_entropy_active()) {
		return SIM_ESTATE;
	}
	char san[300];
	snprintf(san, sizeof(san), "DNS:%s", dns_name);
	/* No keyUsage: a self-signed certificate is its own issuer, which
	 * BoringSSL accepts only if a keyUsage includes keyCertSign, and RFC
	 * 5280 forbids keyCertSign without CA:TRUE. */
	const struct ext exts[] = {
	    {NID_basic_constraints, "critical,CA:FALSE"},
	    {NID_ext_key_usage, "serverAuth"},
	    {NID_subject_alt_name, san},
	    {NID_undef, NULL},
	};
	EVP_PKEY *pkey = generate_p256();
	if (pkey == NULL) {
		return SIM_ECRYPTO;
	}
	const struct cert_spec spec = {
	    .cn = dns_name,
	    .key = pkey,
	    .not_before_s = epoch_s - PROTO_PKI_BACKDATE_S,
	    .not_after_s = epoch_s + validity_s,
	    .exts = exts,
	};
	X509 *x = make_cert(&spec);
	if (x == NULL) {
		EVP_PKEY_free(pkey);
		return SIM_ECRYPTO;
	}
	*out_key = pkey;
	*out_cert = x;
	return 0;
}

void proto_pki_chain_del(proto_pki_chain *c)
{
	if (c == NULL ||
	    __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0) {
		return;
	}
	X509_free(c->leaf);
	X509_free(c->inter);
	X509_free(c->root);
	EVP_PKEY_free(c->leaf_key);
	EVP_PKEY_free(c->inter_key);
	EVP_PKEY_free(c->root_key);
	free(c);
}

int proto_pki_chain_new(const proto_pki_chain_params *p, proto_pki_chain **out)
{
	if (p == NULL || out == NULL || !valid_dns_name(p->dns_name) ||
	    (p->alg != PROTO_PKI_P256 && p->alg != PROTO_PKI_ED25519) ||
	    p->epoch_s < 0 || p->epoch_s > TIME_MAX_S) {
		return SIM_EINVAL;
	}
	const int64_t ca_nb = p->epoch_s - PROTO_PKI_CA_VALIDITY_S / 2;
	const int64_t ca_na = p->epoch_s + PROTO_PKI_CA_VALIDITY_S / 2;
	int64_t nb = -PROTO_PKI_BACKDATE_S, na = PROTO_PKI_LEAF_VALIDITY_S;
	if (p->leaf_not_before_s != 0 || p->leaf_not_after_s != 0) {
		nb = p->leaf_not_before_s;
		na = p->leaf_not_after_s;
	}
	/* Offsets beyond the CAs' half-period cannot be in range; checking
	 * that first keeps the additions below from overflowing. */
	if (!valid_time(ca_nb) || !valid_time(ca_na) || nb >= na ||
	    nb < -PROTO_PKI_CA_VALIDITY_S / 2 ||
	    na > PROTO_PKI_CA_VALIDITY_S / 2) {
		return SIM_EINVAL;
	}
	if (!sim_entropy_active()) {
		return SIM_ESTATE;
	}
	proto_pki_chain *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return SIM_ENOMEM;
	}
	c->refs = 1;
	char san[300];
	snprintf(san, sizeof(san), "DNS:%s", p->dns_name);
	const struct ext root_exts[] = {
	    {NID_basic_constraints, "critical,CA:TRUE"},
	    {NID_key_usage, "critical,keyCertSign,cRLSign"},
	    {NID_subject_key_identifier, "hash"},
	    {NID_undef, NULL},
	};
	const struct ext inter_exts[] = {
	    {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
	    {NID_key_usage, "critical,keyCertSign,cRLSign"},
	    {NID_subject_key_identifier, "hash"},
	    {NID_authority_key_identifier, "keyid:always"},
	    {NID_undef, NULL},
	};
	const struct ext leaf_exts[] = {
	    {NID_basic_constraints, "critical,CA:FALSE"},
	    {NID_key_usage, "critical,digitalSignature"},
	    {NID_ext_key_usage, "serverAuth"},
	    {NID_subject_alt_name, san},
	    {NID_authority_key_identifier, "keyid:always"},
	    {NID_undef, NULL},
	};
	struct cert_spec spec = {
	    .cn = PROTO_PKI_ROOT_CN,
	    .not_before_s = ca_nb,
	    .not_after_s = ca_na,
	    .exts = root_exts,
	};
	if ((c->root_key = spec.key = generate_key(p->alg)) == NULL ||
	    (c->root = make_cert(&spec)) == NULL) {
		goto fail;
	}
	spec.cn = PROTO_PKI_INTER_CN;
	spec.issuer = c->root;
	spec.issuer_key = c->root_key;
	spec.exts = inter_exts;
	if ((c->inter_key = spec.key = generate_key(p->alg)) == NULL ||
	    (c->inter = make_cert(&spec)) == NULL) {
		goto fail;
	}
	spec.cn = p->dns_name;
	spec.issuer = c->inter;
	spec.issuer_key = c->inter_key;
	spec.not_before_s = p->epoch_s + nb;
	spec.not_after_s = p->epoch_s + na;
	spec.exts = leaf_exts;
	if ((c->leaf_key = spec.key = generate_key(p->alg)) == NULL ||
	    (c->leaf = make_cert(&spec)) == NULL) {
		goto fail;
	}
	*out = c;
	return 0;
fail:
	proto_pki_chain_del(c);
	return SIM_ECRYPTO;
}

/* --- the chain cache ----------------------------------------------------- */

/* A memoised chain: its parameters (the name copied), its index, and
 * the pid of the process that made it (0: imported). */
typedef struct memo {
	proto_pki_chain_params p;
	char name[256];
	uint32_t index;
	pid_t made_by;
	proto_pki_chain *chain;
} memo;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static memo cache[PROTO_PKI_CACHE_MAX];
static int ncache;

static int same_key(const memo *e, const proto_pki_chain_params *p,
		    uint32_t index)
{
	return e->index == index && e->p.alg == p->alg &&
	       e->p.epoch_s == p->epoch_s &&
	       e->p.leaf_not_before_s == p->leaf_not_before_s &&
	       e->p.leaf_not_after_s == p->leaf_not_after_s &&
	       strcmp(e->name, p->dns_name) == 0;
}

/* lookup returns a new reference to the memoised chain for the key, or
 * NULL. The caller holds cache_lock. */
static proto_pki_chain *lookup(const proto_pki_chain_params *p, uint32_t index)
{
	for (int i = 0; i < ncache; i++) {
		if (same_key(&cache[i], p, index)) {
			__atomic_add_fetch(&cache[i].chain->refs, 1,
					   __ATOMIC_RELAXED);
			return cache[i].chain;
		}
	}
	return NULL;
}

/* insert memoises |c| (taking a reference of its own) unless the key is
 * there already or the cache is full. The caller holds cache_lock and
 * has checked |p|. Returns 1 if it did. */
static int insert(const proto_pki_chain_params *p, uint32_t index,
		  proto_pki_chain *c, pid_t made_by)
{
	if (ncache == PROTO_PKI_CACHE_MAX) {
		return 0;
	}
	memo *e = &cache[ncache++];
	e->p = *p;
	snprintf(e->name, sizeof(e->name), "%s", p->dns_name);
	e->p.dns_name = e->name;
	e->index = index;
	e->made_by = made_by;
	e->chain = c;
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return 1;
}

/* chain_seed is the seed of the entropy stream a chain is made from: the
 * first 8 bytes (little-endian) of a SHA-256 over its parameters. */
static uint64_t chain_seed(const proto_pki_chain_params *p, uint32_t index)
{
	static const char tag[] = "tlsim proto_pki_chain_get v1";
	uint8_t in[sizeof(tag) + 1 + 256 + 3 * 8 + 4];
	size_t n = 0, name = strlen(p->dns_name);
	memcpy(in, tag, sizeof(tag));
	n += sizeof(tag);
	in[n++] = (uint8_t)p->alg;
	memcpy(in + n, p->dns_name, name + 1);
	n += name + 1;
	const uint64_t v[3] = {(uint64_t)p->epoch_s,
			       (uint64_t)p->leaf_not_before_s,
			       (uint64_t)p->leaf_not_after_s};
	for (int i = 0; i < 3; i++) {
		for (int b = 0; b < 8; b++) {
			in[n++] = (uint8_t)(v[i] >> (8 * b));
		}
	}
	for (int b = 0; b < 4; b++) {
		in[n++] = (uint8_t)(index >> (8 * b));
	}
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(in, n, md);
	uint64_t seed = 0;
	for (int b = 0; b < 8; b++) {
		seed |= (uint64_t)md[b] << (8 * b);
	}
	return seed;
}

struct make {
	const proto_pki_chain_params *p;
	proto_pki_chain *chain;
	int rc;
};

static void *make_main(void *arg)
{
	struct make *m = arg;
	m->rc = proto_pki_chain_new(m->p, &m->chain);
	return NULL;
}

int proto_pki_chain_get(const proto_pki_chain_params *p, uint32_t index,
			proto_pki_chain **out)
{
	if (p == NULL || out == NULL || !valid_dns_name(p->dns_name)) {
		return SIM_EINVAL;
	}
	pthread_mutex_lock(&cache_lock);
	proto_pki_chain *c = lookup(p, index);
	pthread_mutex_unlock(&cache_lock);
	if (c != NULL) {
		*out = c;
		return 0;
	}
	struct make m = {.p = p};
	int rc =
	    sim_entropy_run_thread(make_main, &m, chain_seed(p, index), NULL);
	if (rc == 0) {
		rc = m.rc;
	}
	if (rc != 0) {
		return rc;
	}
	pthread_mutex_lock(&cache_lock);
	proto_pki_chain *had = lookup(p, index); /* made meanwhile */
	if (had == NULL) {
		insert(p, index, m.chain, getpid());
	}
	pthread_mutex_unlock(&cache_lock);
	if (had != NULL) {
		proto_pki_chain_del(m.chain);
		m.chain = had;
	}
	*out = m.chain;
	return 0;
}

/* The export format, per chain (BoringSSL CBB/CBS):
 *   u32 index, u8 alg, u8-length-prefixed DNS name, u64 epoch_s,
 *   u64 leaf_not_before_s, u64 leaf_not_after_s,
 *   then six u24-length-prefixed DER blobs: root, intermediate, leaf
 *   (X.509) and their keys (PKCS #8, EVP_marshal_private_key). */
static int export_one(CBB *cbb, const memo *e)
{
	const proto_pki_chain *c = e->chain;
	X509 *certs[3] = {c->root, c->inter, c->leaf};
	EVP_PKEY *keys[3] = {c->root_key, c->inter_key, c->leaf_key};
	CBB name, der;
	if (!CBB_add_u32(cbb, e->index) ||
	    !CBB_add_u8(cbb, (uint8_t)e->p.alg) ||
	    !CBB_add_u8_length_prefixed(cbb, &name) ||
	    !CBB_add_bytes(&name, (const uint8_t *)e->name, strlen(e->name)) ||
	    !CBB_add_u64(cbb, (uint64_t)e->p.epoch_s) ||
	    !CBB_add_u64(cbb, (uint64_t)e->p.leaf_not_before_s) ||
	    !CBB_add_u64(cbb, (uint64_t)e->p.leaf_not_after_s)) {
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		uint8_t *p = NULL;
		int n = i2d_X509(certs[i], &p);
		int ok = n > 0 && CBB_add_u24_length_prefixed(cbb, &der) &&
			 CBB_add_bytes(&der, p, (size_t)n) && CBB_flush(cbb);
		OPENSSL_free(p);
		if (!ok) {
			return 0;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (!CBB_add_u24_length_prefixed(cbb, &der) ||
		    !EVP_marshal_private_key(&der, keys[i]) ||
		    !CBB_flush(cbb)) {
			return 0;
		}
	}
	return 1;
}

int proto_pki_cache_export(uint8_t **buf, size_t *len)
{
	CBB cbb;
	if (!CBB_init(&cbb, 4096)) {
		return SIM_ENOMEM;
	}
	int n = 0, rc = 0;
	pid_t self = getpid();
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < ncache && rc == 0; i++) {
		if (cache[i].made_by != self) {
			continue;
		}
		if (!export_one(&cbb, &cache[i])) {
			rc = SIM_ENOMEM;
			break;
		}
		n++;
	}
	pthread_mutex_unlock(&cache_lock);
	uint8_t *out = NULL;
	size_t outlen = 0;
	if (rc == 0 && !CBB_finish(&cbb, &out, &outlen)) {
		rc = SIM_ENOMEM;
	}
	if (rc != 0) {
		CBB_cleanup(&cbb);
		return rc;
	}
	uint8_t *p = realloc(*buf, *len + outlen + 1);
	if (p == NULL) {
		OPENSSL_free(out);
		return SIM_ENOMEM;
	}
	if (outlen > 0) {
		memcpy(p + *len, out, outlen);
	}
	OPENSSL_free(out);
	*buf = p;
	*len += outlen;
	return n;
}

/* import_one parses one chain from |cbs| into |*c|, |p| and |index|
 * (the name into |name|, 256 bytes). Returns 0, SIM_EINVAL or
 * SIM_ENOMEM. */
static int import_one(CBS *cbs, proto_pki_chain_params *p, char *name,
		      uint32_t *index, proto_pki_chain **out)
{
	CBS n, der;
	uint8_t alg;
	uint64_t v[3];
	memset(p, 0, sizeof(*p));
	if (!CBS_get_u32(cbs, index) || !CBS_get_u8(cbs, &alg) ||
	    !CBS_get_u8_length_prefixed(cbs, &n) || CBS_len(&n) > 253 ||
	    !CBS_get_u64(cbs, &v[0]) || !CBS_get_u64(cbs, &v[1]) ||
	    !CBS_get_u64(cbs, &v[2]) ||
	    (alg != PROTO_PKI_P256 && alg != PROTO_PKI_ED25519)) {
		return SIM_EINVAL;
	}
	memcpy(name, CBS_data(&n), CBS_len(&n));
	name[CBS_len(&n)] = '\0';
	p->dns_name = name;
	p->alg = (proto_pki_alg)alg;
	p->epoch_s = (int64_t)v[0];
	p->leaf_not_before_s = (int64_t)v[1];
	p->leaf_not_after_s = (int64_t)v[2];
	if (!valid_dns_name(name)) {
		return SIM_EINVAL;
	}
	proto_pki_chain *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return SIM_ENOMEM;
	}
	c->refs = 1;
	X509 **certs[3] = {&c->root, &c->inter, &c->leaf};
	EVP_PKEY **keys[3] = {&c->root_key, &c->inter_key, &c->leaf_key};
	int ok = 1;
	for (int i = 0; ok && i < 3; i++) {
		const uint8_t *d;
		ok = CBS_get_u24_length_prefixed(cbs, &der) &&
		     (d = CBS_data(&der),
		      (*certs[i] = d2i_X509(NULL, &d, (long)CBS_len(&der))) !=
			  NULL) &&
		     d == CBS_data(&der) + CBS_len(&der);
	}
	for (int i = 0; ok && i < 3; i++) {
		ok = CBS_get_u24_length_prefixed(cbs, &der) &&
		     (*keys[i] = EVP_parse_private_key(&der)) != NULL &&
		     CBS_len(&der) == 0;
	}
	if (!ok) {
		proto_pki_chain_del(c);
		ERR_clear_error();
		return SIM_EINVAL;
	}
	*out = c;
	return 0;
}

int proto_pki_cache_import(const uint8_t *in, size_t len)
{
	CBS cbs;
	CBS_init(&cbs, in, len);
	int added = 0;
	while (CBS_len(&cbs) > 0) {
		proto_pki_chain_params p;
		char name[256];
		uint32_t index;
		proto_pki_chain *c = NULL;
		int rc = import_one(&cbs, &p, name, &index, &c);
		if (rc != 0) {
			return rc;
		}
		pthread_mutex_lock(&cache_lock);
		proto_pki_chain *had = lookup(&p, index);
		if (had == NULL) {
			added += insert(&p, index, c, 0);
		}
		pthread_mutex_unlock(&cache_lock);
		proto_pki_chain_del(had);
		proto_pki_chain_del(c);
	}
	return added;
}

static int valid_version(uint16_t v)
{
	return v == TLS1_2_VERSION || v == TLS1_3_VERSION;
}

/* new_ctx makes an SSL_CTX for versions [min, max] (checked by the
 * caller) on the virtual clock, with the optional group and cipher lists.
 * Returns SIM_EINVAL if BoringSSL rejects a list. */
static int new_ctx(uint16_t min_version, uint16_t max_version,
		   const char *groups, const char *ciphers, SSL_CTX **out)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());
	if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, min_version) ||
	    !SSL_CTX_set_max_proto_version(ctx, max_version)) {
		SSL_CTX_free(ctx);
		return SIM_ECRYPTO;
	}
	if ((groups != NULL && !SSL_CTX_set1_curves_list(ctx, groups)) ||
	    (ciphers != NULL &&
	     !SSL_CTX_set_strict_cipher_list(ctx, ciphers))) {
		SSL_CTX_free(ctx);
		return SIM_EINVAL;
	}
	SSL_CTX_set_current_time_cb(ctx, current_time_cb);
	*out = ctx;
	return 0;
}

int proto_pki_tls13_ctx_pair(EVP_PKEY *key, X509 *cert, const char *dns_name,
			     SSL_CTX **out_client, SSL_CTX **out_server)
{
	if (key == NULL || cert == NULL || dns_name == NULL ||
	    out_client == NULL || out_server == NULL) {
		return SIM_EINVAL;
	}
	SSL_CTX *srv = NULL, *cli = NULL;
	if (new_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL, &srv) != 0 ||
	    new_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL, &cli) != 0 ||
	    !SSL_CTX_use_certificate(srv, cert) ||
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

int proto_pki_server_ctx(const proto_pki_chain *c, int send_chain,
			 uint16_t min_version, uint16_t max_version,
			 const char *groups, const char *ciphers, SSL_CTX **out)
{
	if (c == NULL || c->leaf == NULL || c->leaf_key == NULL ||
	    (send_chain && c->inter == NULL) || out == NULL ||
	    !valid_version(min_version) || !valid_version(max_version) ||
	    min_version > max_version) {
		return SIM_EINVAL;
	}
	SSL_CTX *ctx;
	int rc = new_ctx(min_version, max_version, groups, ciphers, &ctx);
	if (rc != 0) {
		return rc;
	}
	if (!SSL_CTX_use_certificate(ctx, c->leaf) ||
	    !SSL_CTX_use_PrivateKey(ctx, c->leaf_key) ||
	    !SSL_CTX_check_private_key(ctx) ||
	    (send_chain && !SSL_CTX_add1_chain_cert(ctx, c->inter))) {
		SSL_CTX_free(ctx);
		return SIM_ECRYPTO;
	}
	*out = ctx;
	return 0;
}

/* BoringSSL's default verify preferences (ssl/t1_lib.cc
 * kVerifySignatureAlgorithms), in its order, plus Ed25519, which it
 * verifies only when asked to. */
static const uint16_t verify_prefs[] = {
    SSL_SIGN_ECDSA_SECP256R1_SHA256,
    SSL_SIGN_RSA_PSS_RSAE_SHA256,
    SSL_SIGN_RSA_PKCS1_SHA256,
    SSL_SIGN_ECDSA_SECP384R1_SHA384,
    SSL_SIGN_RSA_PSS_RSAE_SHA384,
    SSL_SIGN_RSA_PKCS1_SHA384,
    SSL_SIGN_RSA_PSS_RSAE_SHA512,
    SSL_SIGN_RSA_PKCS1_SHA512,
    SSL_SIGN_ED25519,
};

int proto_pki_client_ctx(uint16_t min_version, uint16_t max_version,
			 const char *groups, const char *ciphers, SSL_CTX **out)
{
	if (out == NULL || !valid_version(min_version) ||
	    !valid_version(max_version) || min_version > max_version) {
		return SIM_EINVAL;
	}
	SSL_CTX *ctx;
	int rc = new_ctx(min_version, max_version, groups, ciphers, &ctx);
	if (rc != 0) {
		return rc;
	}
	if (!SSL_CTX_set_verify_algorithm_prefs(ctx, verify_prefs,
						sizeof(verify_prefs) /
						    sizeof(verify_prefs[0]))) {
		SSL_CTX_free(ctx);
		return SIM_ECRYPTO;
	}
	*out = ctx;
	return 0;
}

/* push_all appends |from| (may be NULL) to |to| without taking references:
 * |to| only lives as long as the caller's stacks. */
static int push_all(STACK_OF(X509) *to, STACK_OF(X509) *from, size_t first)
{
	size_t n = from != NULL ? sk_X509_num(from) : 0;
	for (size_t i = first; i < n; i++) {
		if (!sk_X509_push(to, sk_X509_value(from, i))) {
			return 0;
		}
	}
	return 1;
}

int proto_pki_verify(STACK_OF(X509) *chain, STACK_OF(X509) *roots,
		     STACK_OF(X509) *cached, const char *dns_name,
		     int64_t now_s, int *out_depth, char *msg, size_t msglen)
{
	int depth = -1;
	int rc = SIM_EINVAL;
	X509_STORE *store = NULL;
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *sctx = NULL;
	if (chain == NULL || sk_X509_num(chain) == 0 || dns_name == NULL ||
	    dns_name[0] == '\0' || !valid_time(now_s)) {
		goto out;
	}
	ERR_set_mark();
	rc = SIM_ENOMEM;
	store = X509_STORE_new();
	untrusted = sk_X509_new_null();
	sctx = X509_STORE_CTX_new();
	if (store == NULL || untrusted == NULL || sctx == NULL ||
	    !push_all(untrusted, chain, 1) || !push_all(untrusted, cached, 0)) {
		goto out;
	}
	rc = SIM_ECRYPTO;
	size_t nroots = roots != NULL ? sk_X509_num(roots) : 0;
	for (size_t i = 0; i < nroots; i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(roots, i))) {
			goto out;
		}
	}
	if (!X509_STORE_CTX_init(sctx, store, sk_X509_value(chain, 0),
				 untrusted) ||
	    !X509_STORE_CTX_set_default(sctx, "ssl_server") ||
	    !X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(sctx),
					 dns_name, strlen(dns_name))) {
		goto out;
	}
	/* Also sets X509_V_FLAG_USE_CHECK_TIME: X509_verify_cert never calls
	 * time(). */
	X509_STORE_CTX_set_time(sctx, 0, (time_t)now_s);
	int ok = X509_verify_cert(sctx);
	int err = X509_STORE_CTX_get_error(sctx);
	if (ok > 0 && err == X509_V_OK) {
		STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(sctx);
		depth = built != NULL ? (int)sk_X509_num(built) - 1 : -1;
		rc = X509_V_OK;
	} else if (ok <= 0 && err > X509_V_OK) {
		depth = X509_STORE_CTX_get_error_depth(sctx);
		rc = err;
	}
out:
	X509_STORE_CTX_free(sctx);
	sk_X509_free(untrusted);
	X509_STORE_free(store);
	if (rc >= 0) {
		/* A verdict is not an error: leave the queue as it was. */
		ERR_pop_to_mark();
	}
	if (out_depth != NULL) {
		*out_depth = depth;
	}
	if (msg != NULL && msglen > 0) {
		snprintf(msg, msglen, "%s (depth %d)",
			 rc >= 0 ? X509_verify_cert_error_string(rc)
				 : sim_strerror(rc),
			 depth);
	}
	return rc;
}

int proto_pki_alert_for(int x509_err)
{
	if (x509_err < 0) {
		return SSL_AD_INTERNAL_ERROR;
	}
	return SSL_alert_from_verify_result(x509_err);
}

/* The alerts of RFC 8446 section 6 and appendix B.2, with its spelling. */
static const char *const alert_names[256] = {
    [0] = "close_notify",
    [10] = "unexpected_message",
    [20] = "bad_record_mac",
    [21] = "decryption_failed_RESERVED",
    [22] = "record_overflow",
    [30] = "decompression_failure_RESERVED",
    [40] = "handshake_failure",
    [41] = "no_certificate_RESERVED",
    [42] = "bad_certificate",
    [43] = "unsupported_certificate",
    [44] = "certificate_revoked",
    [45] = "certificate_expired",
    [46] = "certificate_unknown",
    [47] = "illegal_parameter",
    [48] = "unknown_ca",
    [49] = "access_denied",
    [50] = "decode_error",
    [51] = "decrypt_error",
    [60] = "export_restriction_RESERVED",
    [70] = "protocol_version",
    [71] = "insufficient_security",
    [80] = "internal_error",
    [86] = "inappropriate_fallback",
    [90] = "user_canceled",
    [100] = "no_renegotiation_RESERVED",
    [109] = "missing_extension",
    [110] = "unsupported_extension",
    [111] = "certificate_unobtainable_RESERVED",
    [112] = "unrecognized_name",
    [113] = "bad_certificate_status_response",
    [114] = "bad_certificate_hash_value_RESERVED",
    [115] = "unknown_psk_identity",
    [116] = "certificate_required",
    [120] = "no_application_protocol",
};

/* "unknown(N)" for every N in 0..255, built by the preprocessor so that
 * the strings are static and need no lock: D10(p) names p0..p9. */
/* clang-format off */
#define U(n) "unknown(" #n ")",
#define D10(p) U(p##0) U(p##1) U(p##2) U(p##3) U(p##4) \
               U(p##5) U(p##6) U(p##7) U(p##8) U(p##9)
static const char *const unknown_names[256] = {
	U(0) U(1) U(2) U(3) U(4) U(5) U(6) U(7) U(8) U(9)
	D10(1) D10(2) D10(3) D10(4) D10(5) D10(6) D10(7) D10(8) D10(9)
	D10(10) D10(11) D10(12) D10(13) D10(14) D10(15) D10(16) D10(17)
	D10(18) D10(19) D10(20) D10(21) D10(22) D10(23) D10(24)
	U(250) U(251) U(252) U(253) U(254) U(255)
};
/* clang-format on */
#undef D10
#undef U

const char *proto_pki_alert_name(int alert)
{
	if (alert < 0 || alert > 255) {
		return "invalid";
	}
	return alert_names[alert] != NULL ? alert_names[alert]
					  : unknown_names[alert];
}

/* A stack holding |a| (with its own reference), or an empty one. */
static STACK_OF(X509) *stack_of(X509 *a)
{
	STACK_OF(X509) *s = sk_X509_new_null();
	if (s != NULL && a != NULL &&
	    (!X509_up_ref(a) || !sk_X509_push(s, a))) {
		sk_X509_pop_free(s, X509_free);
		return NULL;
	}
	return s;
}

int proto_pki_client_trust(const proto_pki_chain *c, int cached_intermediate,
			   STACK_OF(X509) **roots, STACK_OF(X509) **cached)
{
	*roots = stack_of(c->root);
	*cached = stack_of(cached_intermediate ? c->inter : NULL);
	if (*roots == NULL || *cached == NULL) {
		sk_X509_pop_free(*roots, X509_free);
		sk_X509_pop_free(*cached, X509_free);
		*roots = *cached = NULL;
		return SIM_ENOMEM;
	}
	return 0;
}

STACK_OF(X509) *proto_pki_cached_at(STACK_OF(X509) *cached, int always,
				    int64_t fetch_ns, int64_t now_ns)
{
	return always || (fetch_ns >= 0 && now_ns >= fetch_ns) ? cached : NULL;
}

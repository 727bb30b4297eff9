/* proto/pki: certificate chains, verification, alerts and the TLS contexts.
 *
 * Everything that draws randomness runs on a fresh thread with an entropy
 * stream (sim_entropy_run_thread). Byte-for-byte determinism also needs
 * RDRAND off, which tests/CMakeLists.txt arranges for the unit.pki_* tests
 * (OPENSSL_ia32cap in their environment); run by hand, that is
 *   OPENSSL_ia32cap='~0x4200000000000000' tlsim_unit pki_chain_deterministic
 *
 * What this BoringSSL reports, held below (X.509 error, depth, the alert
 * SSL_alert_from_verify_result gives, which the client sends):
 *   full chain, roots={root}               0 ok, anchor at depth 2
 *   leaf only, roots={root}               20 unable to get local issuer
 *                                             certificate, depth 0, 48
 *                                             unknown_ca
 *   leaf only, roots={root}, cached inter  0 ok, anchor at depth 2
 *   expired leaf                          10 depth 0, 45 certificate_expired
 *   leaf not yet valid                     9 depth 0, 45 certificate_expired
 *   wrong host name                       62 depth 0, 42 bad_certificate
 */
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "proto/pki.h"
#include "sim/entropy.h"
#include "sim/err.h"
#include "tests/unit.h"

#define EPOCH_S INT64_C(1700000000) /* 2023-11-14T22:13:20Z */
#define DAY_S INT64_C(86400)
#define NS_PER_S INT64_C(1000000000)
#define HOST "server.tlsim.test"

/* ---- chain generation ---- */

struct gen {
	proto_pki_chain_params p;
	int rc;
	uint8_t der[3][1024]; /* root, intermediate, leaf */
	int len[3];
};

static void *gen_main(void *arg)
{
	struct gen *g = arg;
	proto_pki_chain *c = NULL;
	g->rc = proto_pki_chain_new(&g->p, &c);
	if (g->rc != 0) {
		return NULL;
	}
	X509 *certs[3] = {c->root, c->inter, c->leaf};
	for (int i = 0; i < 3; i++) {
		uint8_t *out = g->der[i];
		g->len[i] = i2d_X509(certs[i], NULL);
		if (g->len[i] <= 0 || g->len[i] > (int)sizeof(g->der[i])) {
			g->len[i] = -1;
			continue;
		}
		i2d_X509(certs[i], &out);
	}
	proto_pki_chain_del(c);
	return NULL;
}

static void gen_alg(proto_pki_alg alg)
{
	static struct gen a, b, c;
	memset(&a, 0, sizeof(a));
	a.p.dns_name = HOST;
	a.p.alg = alg;
	a.p.epoch_s = EPOCH_S;
	b = a;
	c = a;
	CHECK_INT(sim_entropy_run_thread(gen_main, &a, 5, NULL), 0);
	CHECK_INT(sim_entropy_run_thread(gen_main, &b, 5, NULL), 0);
	CHECK_INT(sim_entropy_run_thread(gen_main, &c, 6, NULL), 0);
	REQUIRE(a.rc == 0 && b.rc == 0 && c.rc == 0);
	for (int i = 0; i < 3; i++) {
		REQUIRE(a.len[i] > 0 && b.len[i] > 0 && c.len[i] > 0);
		CHECK_INT(a.len[i], b.len[i]);
		CHECK(a.len[i] == b.len[i] &&
		      memcmp(a.der[i], b.der[i], (size_t)a.len[i]) == 0);
		CHECK(a.len[i] != c.len[i] ||
		      memcmp(a.der[i], c.der[i], (size_t)a.len[i]) != 0);
	}
}

TEST(pki_chain_deterministic)
{
	char err[256];
	if (sim_entropy_check(err, sizeof(err)) != 0) {
		unit_fail(__FILE__, __LINE__,
			  "needs OPENSSL_ia32cap=%s (CTest sets it): %s",
			  SIM_ENTROPY_IA32CAP, err);
		return;
	}
	gen_alg(PROTO_PKI_P256);
	gen_alg(PROTO_PKI_ED25519);
}

/* ---- memoised chains (proto_pki_chain_get) ---- */

/* chain_der writes the DER of |c|'s three certificates, one after the
 * other, into |out| (|cap| bytes). Returns the length, or -1. */
static int chain_der(const proto_pki_chain *c, uint8_t *out, int cap)
{
	X509 *certs[3] = {c->root, c->inter, c->leaf};
	int n = 0;
	for (int i = 0; i < 3; i++) {
		int k = i2d_X509(certs[i], NULL);
		if (k <= 0 || k > cap - n) {
			return -1;
		}
		uint8_t *p = out + n;
		i2d_X509(certs[i], &p);
		n += k;
	}
	return n;
}

struct get {
	proto_pki_chain_params p;
	uint32_t index;
	int rc;
	uint64_t draws; /* from the calling thread's stream */
	uint8_t der[4096];
	int len;
	proto_pki_chain *chain;
};

static void *get_main(void *arg)
{
	struct get *g = arg;
	uint64_t before = 0;
	sim_entropy_stats(&before, NULL);
	g->rc = proto_pki_chain_get(&g->p, g->index, &g->chain);
	sim_entropy_stats(&g->draws, NULL);
	g->draws -= before;
	if (g->rc == 0) {
		g->len = chain_der(g->chain, g->der, sizeof(g->der));
		proto_pki_chain_del(g->chain);
	}
	return NULL;
}

static void get_init(struct get *g, const char *name, uint32_t index)
{
	memset(g, 0, sizeof(*g));
	g->p.dns_name = name;
	g->p.alg = PROTO_PKI_P256;
	g->p.epoch_s = EPOCH_S;
	g->index = index;
}

/* get_in_child runs |g| in a forked child and reads its DER back: the
 * child starts from this process's cache, so |g|'s key must not be in
 * it for the child to make the chain itself. */
static void get_in_child(struct get *g)
{
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		get_main(g);
		ssize_t w = write(fds[1], g, sizeof(*g));
		_exit(w == (ssize_t)sizeof(*g) ? 0 : 1);
	}
	close(fds[1]);
	size_t got = 0;
	while (got < sizeof(*g)) {
		ssize_t k = read(fds[0], (uint8_t *)g + got, sizeof(*g) - got);
		if (k <= 0) {
			break;
		}
		got += (size_t)k;
	}
	close(fds[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	CHECK(got == sizeof(*g) && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(pki_chain_get_memoised)
{
	char err[256];
	if (sim_entropy_check(err, sizeof(err)) != 0) {
		unit_fail(__FILE__, __LINE__,
			  "needs OPENSSL_ia32cap=%s (CTest sets it): %s",
			  SIM_ENTROPY_IA32CAP, err);
		return;
	}
	static struct get a, b, c, d, e;
	/* Made in a child (a process of its own), then here, from two run
	 * seeds: the same chain, and no draw from either run's stream. */
	get_init(&a, "memo.test", 0);
	get_in_child(&a);
	get_init(&b, "memo.test", 0);
	CHECK_INT(sim_entropy_run_thread(get_main, &b, 1, NULL), 0);
	get_init(&c, "memo.test", 0);
	CHECK_INT(sim_entropy_run_thread(get_main, &c, 2, NULL), 0);
	REQUIRE(a.rc == 0 && b.rc == 0 && c.rc == 0);
	REQUIRE(a.len > 0 && b.len > 0 && c.len > 0);
	CHECK_INT(a.draws, 0);
	CHECK_INT(b.draws, 0);
	CHECK_INT(c.draws, 0);
	CHECK(a.len == b.len && memcmp(a.der, b.der, (size_t)a.len) == 0);
	CHECK(b.chain == c.chain); /* memoised: one object */
	CHECK(b.len == c.len && memcmp(b.der, c.der, (size_t)b.len) == 0);
	/* A run's second chain, or another name: another chain. */
	get_init(&d, "memo.test", 1);
	CHECK_INT(sim_entropy_run_thread(get_main, &d, 1, NULL), 0);
	get_init(&e, "other.test", 0);
	CHECK_INT(sim_entropy_run_thread(get_main, &e, 1, NULL), 0);
	REQUIRE(d.rc == 0 && e.rc == 0 && d.len > 0 && e.len > 0);
	CHECK(d.len != b.len || memcmp(d.der, b.der, (size_t)b.len) != 0);
	CHECK(e.len != b.len || memcmp(e.der, b.der, (size_t)b.len) != 0);
	/* Without a stream of its own on the calling thread too. */
	get_init(&a, "memo.test", 0);
	get_main(&a);
	CHECK(a.rc == 0 && a.chain == b.chain);
	get_init(&a, "bad name!", 0);
	get_main(&a);
	CHECK_INT(a.rc, SIM_EINVAL);
}

TEST(pki_cache_export_import)
{
	char err[256];
	if (sim_entropy_check(err, sizeof(err)) != 0) {
		unit_fail(__FILE__, __LINE__,
			  "needs OPENSSL_ia32cap=%s (CTest sets it): %s",
			  SIM_ENTROPY_IA32CAP, err);
		return;
	}
	/* A child makes two chains (one Ed25519) and exports what it made;
	 * this process imports them and then finds them made, byte for
	 * byte the child's. */
	static struct get g;
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		get_init(&g, "export.test", 3);
		get_main(&g);
		get_init(&g, "export.test", 4);
		g.p.alg = PROTO_PKI_ED25519;
		get_main(&g);
		uint8_t *buf = NULL;
		size_t len = 0;
		int n = proto_pki_cache_export(&buf, &len);
		uint64_t hdr[2] = {(uint64_t)n, len};
		int ok = write(fds[1], &g, sizeof(g)) == sizeof(g) &&
			 write(fds[1], hdr, sizeof(hdr)) == sizeof(hdr) &&
			 write(fds[1], buf, len) == (ssize_t)len;
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	uint64_t hdr[2] = {0, 0};
	static uint8_t buf[65536];
	size_t got = 0;
	CHECK(read(fds[0], &g, sizeof(g)) == sizeof(g));
	CHECK(read(fds[0], hdr, sizeof(hdr)) == sizeof(hdr));
	while (got < hdr[1] && got < sizeof(buf)) {
		ssize_t k = read(fds[0], buf + got, sizeof(buf) - got);
		if (k <= 0) {
			break;
		}
		got += (size_t)k;
	}
	close(fds[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	REQUIRE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	REQUIRE(g.rc == 0 && g.len > 0);
	CHECK_INT(hdr[0], 2); /* what it made, not what it inherited */
	REQUIRE(got == hdr[1] && got > 0);
	uint8_t *mine = NULL;
	size_t mlen = 0;
	int made = proto_pki_cache_export(&mine, &mlen);
	free(mine);
	/* Truncated: the first chain is whole and kept, the second not. */
	CHECK_INT(proto_pki_cache_import(buf, got - 1), SIM_EINVAL);
	CHECK_INT(proto_pki_cache_import(buf, got), 1);
	CHECK_INT(proto_pki_cache_import(buf, got), 0);
	static struct get h;
	get_init(&h, "export.test", 4);
	h.p.alg = PROTO_PKI_ED25519;
	CHECK_INT(sim_entropy_run_thread(get_main, &h, 9, NULL), 0);
	REQUIRE(h.rc == 0);
	CHECK(h.len == g.len && memcmp(h.der, g.der, (size_t)g.len) == 0);
	/* Imported chains are not this process's to export. */
	mine = NULL;
	mlen = 0;
	CHECK_INT(proto_pki_cache_export(&mine, &mlen), made);
	free(mine);
	CHECK_INT(proto_pki_cache_import((const uint8_t *)"\x01", 1),
		  SIM_EINVAL);
}

/* ---- chain contents ---- */

static int cn_is(X509_NAME *name, const char *want)
{
	char buf[256];
	return X509_NAME_get_text_by_NID(name, NID_commonName, buf,
					 sizeof(buf)) > 0 &&
	       strcmp(buf, want) == 0;
}

/* time_eq: |t| is exactly |want| seconds since 1970 (X509_cmp_time says
 * -1 for "at or before"). */
static int time_eq(const ASN1_TIME *t, int64_t want)
{
	time_t at = (time_t)want, before = (time_t)(want - 1);
	return X509_cmp_time(t, &at) == -1 && X509_cmp_time(t, &before) == 1;
}

static int serial_ok(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	int ok = bn != NULL && !BN_is_negative(bn) &&
		 BN_num_bytes(bn) == PROTO_PKI_SERIAL_BYTES;
	BN_free(bn);
	return ok;
}

static int key_type(X509 *x)
{
	EVP_PKEY *k = X509_get_pubkey(x);
	int id = k != NULL ? EVP_PKEY_id(k) : NID_undef;
	EVP_PKEY_free(k);
	return id;
}

static int critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

struct shape {
	proto_pki_alg alg;
	int rc;
};

#define SHAPE(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			unit_fail(__FILE__, __LINE__, "alg %d: %s", s->alg,    \
				  #cond);                                      \
		}                                                              \
	} while (0)

static void *shape_main(void *arg)
{
	struct shape *s = arg;
	proto_pki_chain *c = NULL;
	proto_pki_chain_params p = {
	    .dns_name = HOST, .alg = s->alg, .epoch_s = EPOCH_S};
	s->rc = proto_pki_chain_new(&p, &c);
	if (s->rc != 0) {
		return NULL;
	}
	int sig =
	    s->alg == PROTO_PKI_ED25519 ? NID_ED25519 : NID_ecdsa_with_SHA256;
	int key = s->alg == PROTO_PKI_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_EC;
	X509 *all[3] = {c->root, c->inter, c->leaf};
	for (int i = 0; i < 3; i++) {
		SHAPE(X509_get_version(all[i]) == X509_VERSION_3);
		SHAPE(X509_get_signature_nid(all[i]) == sig);
		SHAPE(key_type(all[i]) == key);
		SHAPE(serial_ok(all[i]));
		SHAPE(critical(all[i], NID_basic_constraints));
		SHAPE(critical(all[i], NID_key_usage));
	}
	/* Subjects, issuers, signatures. */
	SHAPE(cn_is(X509_get_subject_name(c->root), PROTO_PKI_ROOT_CN));
	SHAPE(cn_is(X509_get_issuer_name(c->root), PROTO_PKI_ROOT_CN));
	SHAPE(cn_is(X509_get_subject_name(c->inter), PROTO_PKI_INTER_CN));
	SHAPE(cn_is(X509_get_issuer_name(c->inter), PROTO_PKI_ROOT_CN));
	SHAPE(cn_is(X509_get_subject_name(c->leaf), HOST));
	SHAPE(cn_is(X509_get_issuer_name(c->leaf), PROTO_PKI_INTER_CN));
	SHAPE(X509_verify(c->root, c->root_key) == 1);
	SHAPE(X509_verify(c->inter, c->root_key) == 1);
	SHAPE(X509_verify(c->leaf, c->inter_key) == 1);
	SHAPE(X509_verify(c->leaf, c->root_key) != 1);
	SHAPE(X509_check_issued(c->root, c->root) == X509_V_OK);
	SHAPE(X509_check_issued(c->root, c->inter) == X509_V_OK);
	SHAPE(X509_check_issued(c->inter, c->leaf) == X509_V_OK);
	/* CA flags, path length, key usages. */
	SHAPE(X509_check_ca(c->root) == 1);
	SHAPE(X509_check_ca(c->inter) == 1);
	SHAPE(X509_check_ca(c->leaf) == 0);
	SHAPE(X509_get_pathlen(c->root) == -1);
	SHAPE(X509_get_pathlen(c->inter) == 0);
	SHAPE(X509_get_key_usage(c->root) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	SHAPE(X509_get_key_usage(c->inter) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	SHAPE(X509_get_key_usage(c->leaf) == KU_DIGITAL_SIGNATURE);
	SHAPE(X509_get_extended_key_usage(c->leaf) == XKU_SSL_SERVER);
	SHAPE(X509_check_host(c->leaf, HOST, strlen(HOST), 0, NULL) == 1);
	SHAPE(X509_check_host(c->leaf, "other.test", 10, 0, NULL) == 0);
	/* Key identifiers link the chain; the root carries no AKI. */
	const ASN1_OCTET_STRING *root_ski = X509_get0_subject_key_id(c->root);
	const ASN1_OCTET_STRING *inter_ski = X509_get0_subject_key_id(c->inter);
	const ASN1_OCTET_STRING *inter_aki =
	    X509_get0_authority_key_id(c->inter);
	const ASN1_OCTET_STRING *leaf_aki = X509_get0_authority_key_id(c->leaf);
	SHAPE(root_ski != NULL && inter_ski != NULL);
	SHAPE(inter_aki != NULL && leaf_aki != NULL);
	SHAPE(X509_get0_authority_key_id(c->root) == NULL);
	SHAPE(root_ski && inter_aki &&
	      ASN1_OCTET_STRING_cmp(root_ski, inter_aki) == 0);
	SHAPE(inter_ski && leaf_aki &&
	      ASN1_OCTET_STRING_cmp(inter_ski, leaf_aki) == 0);
	/* Validity. */
	int64_t ca_nb = EPOCH_S - PROTO_PKI_CA_VALIDITY_S / 2;
	int64_t ca_na = EPOCH_S + PROTO_PKI_CA_VALIDITY_S / 2;
	for (int i = 0; i < 2; i++) {
		SHAPE(time_eq(X509_get0_notBefore(all[i]), ca_nb));
		SHAPE(time_eq(X509_get0_notAfter(all[i]), ca_na));
	}
	SHAPE(time_eq(X509_get0_notBefore(c->leaf),
		      EPOCH_S - PROTO_PKI_BACKDATE_S));
	SHAPE(time_eq(X509_get0_notAfter(c->leaf),
		      EPOCH_S + PROTO_PKI_LEAF_VALIDITY_S));
	proto_pki_chain_del(c);
	return NULL;
}

TEST(pki_chain_shape)
{
	static const proto_pki_alg algs[] = {PROTO_PKI_P256, PROTO_PKI_ED25519};
	for (size_t i = 0; i < 2; i++) {
		struct shape s = {.alg = algs[i]};
		CHECK_INT(sim_entropy_run_thread(shape_main, &s, 11, NULL), 0);
		CHECK_INT(s.rc, 0);
	}
}

struct badargs {
	int rc[12];
};

static void *badargs_main(void *arg)
{
	struct badargs *b = arg;
	proto_pki_chain *c = NULL;
	proto_pki_chain_params p = {.dns_name = HOST, .epoch_s = EPOCH_S};
	proto_pki_chain_params q;
	int n = 0;
	b->rc[n++] = proto_pki_chain_new(NULL, &c);
	b->rc[n++] = proto_pki_chain_new(&p, NULL);
	q = p;
	q.dns_name = "a,DNS:evil.test";
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	q = p;
	q.alg = (proto_pki_alg)7;
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	q = p;
	q.epoch_s = PROTO_PKI_CA_VALIDITY_S / 2 - 1; /* root before 1970 */
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	q = p;
	q.leaf_not_before_s = DAY_S; /* empty period */
	q.leaf_not_after_s = DAY_S;
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	q = p;
	q.leaf_not_after_s = PROTO_PKI_CA_VALIDITY_S; /* past the CAs */
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	q = p;
	q.leaf_not_before_s = INT64_MIN;
	q.leaf_not_after_s = INT64_MAX;
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	/* A wildcard and an edge-of-range epoch are fine. */
	q = p;
	q.dns_name = "*.tlsim.test";
	q.epoch_s = PROTO_PKI_CA_VALIDITY_S / 2;
	b->rc[n++] = proto_pki_chain_new(&q, &c);
	proto_pki_chain_del(c);
	c = NULL;
	sim_entropy_end();
	b->rc[n++] = proto_pki_chain_new(&p, &c);
	b->rc[n++] = c == NULL ? 0 : -1;
	return NULL;
}

TEST(pki_chain_bad_args)
{
	struct badargs b;
	memset(&b, 0, sizeof(b));
	CHECK_INT(sim_entropy_run_thread(badargs_main, &b, 1, NULL), 0);
	for (int i = 0; i < 8; i++) {
		CHECK_INT(b.rc[i], SIM_EINVAL);
	}
	CHECK_INT(b.rc[8], 0);
	CHECK_INT(b.rc[9], SIM_ESTATE); /* no stream: no real randomness */
	CHECK_INT(b.rc[10], 0);
	proto_pki_chain_del(NULL);
}

/* ---- proto_pki_verify ---- */

/* vcase: one verification. The chain is made for EPOCH_S with the leaf's
 * period [nb, na] (0, 0: default) and verified at EPOCH_S + at_s. */
struct vcase {
	proto_pki_alg alg;
	int64_t nb, na, at_s;
	int send_inter, cache_inter;
	const char *host;
	int rc, err, depth;
	char msg[128];
	int queue_kept; /* the caller's error queue came back as it was */
};

static STACK_OF(X509) *stack_of(X509 *a, X509 *b)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	if (sk != NULL && ((a != NULL && !sk_X509_push(sk, a)) ||
			   (b != NULL && !sk_X509_push(sk, b)))) {
		sk_X509_free(sk);
		return NULL;
	}
	return sk;
}

static void *verify_main(void *arg)
{
	struct vcase *v = arg;
	proto_pki_chain *c = NULL;
	proto_pki_chain_params p = {.dns_name = HOST,
				    .alg = v->alg,
				    .epoch_s = EPOCH_S,
				    .leaf_not_before_s = v->nb,
				    .leaf_not_after_s = v->na};
	v->rc = proto_pki_chain_new(&p, &c);
	if (v->rc != 0) {
		return NULL;
	}
	STACK_OF(X509) *sent =
	    stack_of(c->leaf, v->send_inter ? c->inter : NULL);
	STACK_OF(X509) *roots = stack_of(c->root, NULL);
	STACK_OF(X509) *cached =
	    stack_of(v->cache_inter ? c->inter : NULL, NULL);
	if (sent == NULL || roots == NULL || cached == NULL) {
		v->rc = SIM_ENOMEM;
	} else {
		ERR_put_error(ERR_LIB_USER, 0, 123, __FILE__, __LINE__);
		v->err = proto_pki_verify(
		    sent, roots, cached, v->host ? v->host : HOST,
		    EPOCH_S + v->at_s, &v->depth, v->msg, sizeof(v->msg));
		v->queue_kept = ERR_GET_REASON(ERR_get_error()) == 123 &&
				ERR_get_error() == 0;
	}
	sk_X509_free(sent);
	sk_X509_free(roots);
	sk_X509_free(cached);
	proto_pki_chain_del(c);
	return NULL;
}

/* verify runs |v| for both algorithms and checks the result and depth. */
static void verify(struct vcase v, int want_err, int want_depth,
		   const char *want_msg)
{
	static const proto_pki_alg algs[] = {PROTO_PKI_P256, PROTO_PKI_ED25519};
	for (size_t i = 0; i < 2; i++) {
		v.alg = algs[i];
		CHECK_INT(sim_entropy_run_thread(verify_main, &v, 3, NULL), 0);
		CHECK_INT(v.rc, 0);
		CHECK_INT(v.err, want_err);
		CHECK_INT(v.depth, want_depth);
		CHECK_STR(v.msg, want_msg);
		CHECK(v.queue_kept);
	}
}

TEST(pki_verify_full_chain)
{
	verify((struct vcase){.send_inter = 1}, X509_V_OK, 2, "ok (depth 2)");
	/* The cache does not get in the way of a complete chain. */
	verify((struct vcase){.send_inter = 1, .cache_inter = 1}, X509_V_OK, 2,
	       "ok (depth 2)");
}

TEST(pki_verify_leaf_only_strict)
{
	verify((struct vcase){0}, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
	       0, "unable to get local issuer certificate (depth 0)");
}

TEST(pki_verify_leaf_only_cached)
{
	verify((struct vcase){.cache_inter = 1}, X509_V_OK, 2, "ok (depth 2)");
}

TEST(pki_verify_expired)
{
	struct vcase v = {.send_inter = 1, .nb = -2 * DAY_S, .na = -DAY_S};
	verify(v, X509_V_ERR_CERT_HAS_EXPIRED, 0,
	       "certificate has expired (depth 0)");
	/* The same chain verifies at a virtual time inside its period. */
	v.at_s = -DAY_S - DAY_S / 2;
	verify(v, X509_V_OK, 2, "ok (depth 2)");
}

TEST(pki_verify_not_yet_valid)
{
	struct vcase v = {.send_inter = 1, .nb = DAY_S, .na = 30 * DAY_S};
	verify(v, X509_V_ERR_CERT_NOT_YET_VALID, 0,
	       "certificate is not yet valid (depth 0)");
	v.at_s = 2 * DAY_S;
	verify(v, X509_V_OK, 2, "ok (depth 2)");
}

TEST(pki_verify_hostname_mismatch)
{
	verify((struct vcase){.send_inter = 1, .host = "other.tlsim.test"},
	       X509_V_ERR_HOSTNAME_MISMATCH, 0, "Hostname mismatch (depth 0)");
}

TEST(pki_verify_bad_args)
{
	STACK_OF(X509) *empty = sk_X509_new_null();
	REQUIRE(empty != NULL);
	int depth = 7;
	char msg[64];
	CHECK_INT(proto_pki_verify(NULL, NULL, NULL, HOST, EPOCH_S, &depth, msg,
				   sizeof(msg)),
		  SIM_EINVAL);
	CHECK_INT(depth, -1);
	CHECK_STR(msg, "invalid argument (depth -1)");
	CHECK_INT(
	    proto_pki_verify(empty, NULL, NULL, HOST, EPOCH_S, NULL, NULL, 0),
	    SIM_EINVAL);
	sk_X509_free(empty);
}

/* ---- alerts ---- */

TEST(pki_alert_for)
{
	static const struct {
		int err, alert;
	} want[] = {
	    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, 48},
	    {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, 48},
	    {X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, 48},
	    {X509_V_ERR_CERT_HAS_EXPIRED, 45},
	    {X509_V_ERR_CERT_NOT_YET_VALID, 45},
	    {X509_V_ERR_HOSTNAME_MISMATCH, 42},
	    {X509_V_ERR_INVALID_PURPOSE, 43},
	    {X509_V_OK, 46},
	    {SIM_ECRYPTO, 80},
	};
	CHECK_INT(SSL_AD_UNKNOWN_CA, 48);
	CHECK_INT(SSL_AD_CERTIFICATE_EXPIRED, 45);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int got = proto_pki_alert_for(want[i].err);
		if (got != want[i].alert) {
			unit_fail(__FILE__, __LINE__,
				  "alert_for(%d) == %d, want %d", want[i].err,
				  got, want[i].alert);
		}
	}
}

TEST(pki_alert_name)
{
	CHECK_STR(proto_pki_alert_name(0), "close_notify");
	CHECK_STR(proto_pki_alert_name(10), "unexpected_message");
	CHECK_STR(proto_pki_alert_name(20), "bad_record_mac");
	CHECK_STR(proto_pki_alert_name(21), "decryption_failed_RESERVED");
	CHECK_STR(proto_pki_alert_name(40), "handshake_failure");
	CHECK_STR(proto_pki_alert_name(42), "bad_certificate");
	CHECK_STR(proto_pki_alert_name(45), "certificate_expired");
	CHECK_STR(proto_pki_alert_name(48), "unknown_ca");
	CHECK_STR(proto_pki_alert_name(50), "decode_error");
	CHECK_STR(proto_pki_alert_name(70), "protocol_version");
	CHECK_STR(proto_pki_alert_name(80), "internal_error");
	CHECK_STR(proto_pki_alert_name(86), "inappropriate_fallback");
	CHECK_STR(proto_pki_alert_name(109), "missing_extension");
	CHECK_STR(proto_pki_alert_name(112), "unrecognized_name");
	CHECK_STR(proto_pki_alert_name(116), "certificate_required");
	CHECK_STR(proto_pki_alert_name(120), "no_application_protocol");
	CHECK_STR(proto_pki_alert_name(1), "unknown(1)");
	CHECK_STR(proto_pki_alert_name(99), "unknown(99)");
	CHECK_STR(proto_pki_alert_name(200), "unknown(200)");
	CHECK_STR(proto_pki_alert_name(255), "unknown(255)");
	CHECK_STR(proto_pki_alert_name(256), "invalid");
	CHECK_STR(proto_pki_alert_name(-1), "invalid");
	/* Every defined name is in the table BoringSSL agrees exists. */
	int named = 0;
	for (int a = 0; a < 256; a++) {
		named += strncmp(proto_pki_alert_name(a), "unknown(", 8) != 0;
	}
	CHECK_INT(named, 34);
}

/* ---- TLS contexts and handshakes ---- */

/* hcase: one in-memory handshake between proto_pki_server_ctx and
 * proto_pki_client_ctx, the client verifying with proto_pki_verify in a
 * custom verify callback, roots={root}, cached={inter} if cache_inter. */
struct hcase {
	proto_pki_alg alg;
	int send_chain, cache_inter;
	int64_t nb, na;
	uint16_t version;
	const char *host; /* the name the client checks; NULL: HOST */
	/* out */
	int rc;
	int cdone, sdone; /* 1 handshake done, -1 failed */
	int verify_calls, verify_err, verify_depth;
	int alert_sent, alert_read; /* client sent, server read; -1 none */
	int server_reason;          /* ERR_GET_REASON of the server's error */
	int peer_certs;
	uint16_t sigalg, got_version;
	STACK_OF(X509) *roots, *cached;
};

static enum ssl_verify_result_t verify_cb(SSL *ssl, uint8_t *out_alert)
{
	struct hcase *h = SSL_get_app_data(ssl);
	STACK_OF(X509) *peer = SSL_get_peer_full_cert_chain(ssl);
	h->verify_calls++;
	h->peer_certs = peer != NULL ? (int)sk_X509_num(peer) : 0;
	h->verify_err = proto_pki_verify(
	    peer, h->roots, h->cached, h->host ? h->host : HOST,
	    proto_pki_clock_get() / NS_PER_S, &h->verify_depth, NULL, 0);
	if (h->verify_err == X509_V_OK) {
		return ssl_verify_ok;
	}
	*out_alert = (uint8_t)proto_pki_alert_for(h->verify_err);
	return ssl_verify_invalid;
}

static void info_cb(const SSL *ssl, int type, int value)
{
	struct hcase *h = SSL_get_app_data(ssl);
	if (type == SSL_CB_WRITE_ALERT && !SSL_is_server(ssl)) {
		h->alert_sent = value & 0xff;
	} else if (type == SSL_CB_READ_ALERT && SSL_is_server(ssl)) {
		h->alert_read = value & 0xff;
	}
}

/* hs_step advances one side unless it has finished; returns its state. */
static int hs_step(SSL *ssl, int state, int *reason)
{
	if (state != 0) {
		return state;
	}
	int r = SSL_do_handshake(ssl);
	if (r == 1) {
		return 1;
	}
	int e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		return 0;
	}
	if (reason != NULL) {
		*reason = ERR_GET_REASON(ERR_peek_last_error());
	}
	ERR_clear_error();
	return -1;
}

static void *hs_main(void *arg)
{
	struct hcase *h = arg;
	proto_pki_chain *c = NULL;
	SSL_CTX *sctx = NULL, *cctx = NULL;
	SSL *cl = NULL, *sv = NULL;
	BIO *cb = NULL, *sb = NULL;
	int64_t now_ns = EPOCH_S * NS_PER_S;
	proto_pki_clock_set(now_ns);
	proto_pki_chain_params p = {.dns_name = HOST,
				    .alg = h->alg,
				    .epoch_s = EPOCH_S,
				    .leaf_not_before_s = h->nb,
				    .leaf_not_after_s = h->na};
	if ((h->rc = proto_pki_chain_new(&p, &c)) != 0 ||
	    (h->rc = proto_pki_server_ctx(c, h->send_chain, h->version,
					  h->version, NULL, NULL, &sctx)) !=
		0 ||
	    (h->rc = proto_pki_client_ctx(h->version, h->version, NULL, NULL,
					  &cctx)) != 0) {
		goto out;
	}
	h->rc = SIM_ENOMEM;
	h->roots = stack_of(c->root, NULL);
	h->cached = stack_of(h->cache_inter ? c->inter : NULL, NULL);
	cl = SSL_new(cctx);
	sv = SSL_new(sctx);
	if (h->roots == NULL || h->cached == NULL || cl == NULL || sv == NULL ||
	    !BIO_new_bio_pair(&cb, 0, &sb, 0)) {
		goto out;
	}
	SSL_set_bio(cl, cb, cb); /* one reference each way */
	SSL_set_bio(sv, sb, sb);
	SSL_set_app_data(cl, h);
	SSL_set_app_data(sv, h);
	SSL_set_custom_verify(cl, SSL_VERIFY_PEER, verify_cb);
	SSL_set_info_callback(cl, info_cb);
	SSL_set_info_callback(sv, info_cb);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	if (!SSL_set_tlsext_host_name(cl, HOST)) {
		goto out;
	}
	h->rc = 0;
	for (int i = 0; i < 16 && (h->cdone == 0 || h->sdone == 0); i++) {
		now_ns += NS_PER_S / 1000;
		proto_pki_clock_set(now_ns);
		h->cdone = hs_step(cl, h->cdone, NULL);
		h->sdone = hs_step(sv, h->sdone, &h->server_reason);
	}
	h->sigalg = SSL_get_peer_signature_algorithm(cl);
	h->got_version = (uint16_t)SSL_version(cl);
out:
	SSL_free(cl);
	SSL_free(sv);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	sk_X509_free(h->roots);
	sk_X509_free(h->cached);
	proto_pki_chain_del(c);
	ERR_clear_error();
	return NULL;
}

static struct hcase handshake(struct hcase h)
{
	h.alert_sent = h.alert_read = -1;
	if (h.version == 0) {
		h.version = TLS1_3_VERSION;
	}
	CHECK_INT(sim_entropy_run_thread(hs_main, &h, 21, NULL), 0);
	CHECK_INT(h.rc, 0);
	return h;
}

static void handshake_ok(struct hcase h, uint16_t want_sigalg, int want_certs)
{
	h = handshake(h);
	CHECK_INT(h.cdone, 1);
	CHECK_INT(h.sdone, 1);
	CHECK_INT(h.verify_calls, 1);
	CHECK_INT(h.verify_err, X509_V_OK);
	CHECK_INT(h.verify_depth, 2);
	CHECK_INT(h.peer_certs, want_certs);
	CHECK_INT(h.sigalg, want_sigalg);
	CHECK_INT(h.got_version, h.version);
	CHECK_INT(h.alert_sent, -1);
	CHECK_INT(h.alert_read, -1);
}

TEST(pki_handshake_p256)
{
	handshake_ok((struct hcase){.alg = PROTO_PKI_P256, .send_chain = 1},
		     SSL_SIGN_ECDSA_SECP256R1_SHA256, 2);
	handshake_ok((struct hcase){.alg = PROTO_PKI_P256,
				    .send_chain = 1,
				    .version = TLS1_2_VERSION},
		     SSL_SIGN_ECDSA_SECP256R1_SHA256, 2);
}

TEST(pki_handshake_ed25519)
{
	handshake_ok((struct hcase){.alg = PROTO_PKI_ED25519, .send_chain = 1},
		     SSL_SIGN_ED25519, 2);
}

TEST(pki_handshake_leaf_only_cached)
{
	handshake_ok((struct hcase){.alg = PROTO_PKI_P256, .cache_inter = 1},
		     SSL_SIGN_ECDSA_SECP256R1_SHA256, 1);
}

/* handshake_fail: the client rejects the server's certificate with
 * |want_err| and sends |want_alert|, and the server fails on reading it. */
static void handshake_fail(struct hcase h, int want_err, int want_alert)
{
	h = handshake(h);
	CHECK_INT(h.cdone, -1);
	CHECK_INT(h.sdone, -1);
	CHECK_INT(h.verify_calls, 1);
	CHECK_INT(h.verify_err, want_err);
	CHECK_INT(h.verify_depth, 0);
	CHECK_INT(h.alert_sent, want_alert);
	CHECK_INT(h.alert_read, want_alert);
	CHECK_INT(h.server_reason, SSL_AD_REASON_OFFSET + want_alert);
}

TEST(pki_handshake_leaf_only_strict)
{
	handshake_fail((struct hcase){.alg = PROTO_PKI_P256},
		       X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
		       SSL_AD_UNKNOWN_CA);
	handshake_fail((struct hcase){.alg = PROTO_PKI_ED25519},
		       X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
		       SSL_AD_UNKNOWN_CA);
}

TEST(pki_handshake_rejected)
{
	handshake_fail((struct hcase){.alg = PROTO_PKI_P256,
				      .send_chain = 1,
				      .nb = -2 * DAY_S,
				      .na = -DAY_S},
		       X509_V_ERR_CERT_HAS_EXPIRED, SSL_AD_CERTIFICATE_EXPIRED);
	handshake_fail((struct hcase){.alg = PROTO_PKI_ED25519,
				      .send_chain = 1,
				      .nb = DAY_S,
				      .na = 30 * DAY_S},
		       X509_V_ERR_CERT_NOT_YET_VALID,
		       SSL_AD_CERTIFICATE_EXPIRED);
	handshake_fail((struct hcase){.alg = PROTO_PKI_P256,
				      .send_chain = 1,
				      .host = "other.tlsim.test"},
		       X509_V_ERR_HOSTNAME_MISMATCH, SSL_AD_BAD_CERTIFICATE);
}

TEST(pki_ctx_bad_args)
{
	SSL_CTX *ctx = NULL;
	proto_pki_chain c = {0};
	CHECK_INT(proto_pki_client_ctx(TLS1_3_VERSION, TLS1_2_VERSION, NULL,
				       NULL, &ctx),
		  SIM_EINVAL);
	CHECK_INT(proto_pki_client_ctx(TLS1_1_VERSION, TLS1_3_VERSION, NULL,
				       NULL, &ctx),
		  SIM_EINVAL);
	CHECK_INT(proto_pki_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION,
				       "no-such-group", NULL, &ctx),
		  SIM_EINVAL);
	CHECK_INT(proto_pki_client_ctx(TLS1_2_VERSION, TLS1_3_VERSION, NULL,
				       "NO-SUCH-CIPHER", &ctx),
		  SIM_EINVAL);
	CHECK_INT(proto_pki_server_ctx(&c, 0, TLS1_3_VERSION, TLS1_3_VERSION,
				       NULL, NULL, &ctx),
		  SIM_EINVAL);
	CHECK_INT(proto_pki_server_ctx(NULL, 0, TLS1_3_VERSION, TLS1_3_VERSION,
				       NULL, NULL, &ctx),
		  SIM_EINVAL);
	CHECK(ctx == NULL);
	CHECK_INT(proto_pki_client_ctx(TLS1_2_VERSION, TLS1_3_VERSION,
				       "X25519:P-256",
				       "ECDHE-ECDSA-AES128-GCM-SHA256", &ctx),
		  0);
	CHECK(ctx != NULL);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

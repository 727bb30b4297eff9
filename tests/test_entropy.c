/* Deterministic entropy: the BoringSSL we build against and load is the
 * Debian android one, and getrandom through syscall() is served from the
 * run's "entropy" stream. tlsim_unit does not re-execute itself with
 * OPENSSL_ia32cap, so nothing here depends on RDRAND being off; the full
 * proof is tests/cli/boringssl_determinism.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/base.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/pki.h"
#include "sim/entropy.h"
#include "sim/err.h"
#include "sim/rng.h"
#include "tests/unit.h"

#ifndef OPENSSL_IS_BORINGSSL
#error "not compiled against BoringSSL: /usr/include/android must come first"
#endif

/* lib_of returns the path of the shared object that defines |fn|. */
static const char *lib_of(void *fn)
{
	Dl_info info;
	if (fn == NULL || dladdr(fn, &info) == 0 || info.dli_fname == NULL) {
		return "(unknown)";
	}
	return info.dli_fname;
}

TEST(entropy_is_boringssl)
{
	const char *ssl = lib_of((void *)SSL_new);
	const char *crypto = lib_of((void *)RAND_bytes);
	CHECK(strstr(ssl, "android") != NULL);
	CHECK(strstr(ssl, "libssl.so.0") != NULL);
	CHECK(strstr(crypto, "android") != NULL);
	CHECK(strstr(crypto, "libcrypto.so.0") != NULL);
	if (strstr(ssl, "android") == NULL ||
	    strstr(crypto, "android") == NULL) {
		fprintf(stderr, "  libssl: %s\n  libcrypto: %s\n", ssl, crypto);
	}
	/* The names the process resolves are the same objects, and functions
	 * only BoringSSL has resolve. */
	CHECK(dlsym(RTLD_DEFAULT, "SSL_new") == (void *)SSL_new);
	CHECK(dlsym(RTLD_DEFAULT, "RAND_bytes") == (void *)RAND_bytes);
	void *only_bssl_crypto = dlsym(RTLD_DEFAULT, "CRYPTO_BUFFER_new");
	void *only_bssl_ssl =
	    dlsym(RTLD_DEFAULT, "SSL_CTX_set_current_time_cb");
	CHECK(only_bssl_crypto != NULL);
	CHECK(only_bssl_ssl != NULL);
	CHECK(strstr(lib_of(only_bssl_crypto), "android") != NULL);
	CHECK(strstr(lib_of(only_bssl_ssl), "android") != NULL);
	/* OpenSSL 3 must not be in the process at all. */
	CHECK(dlsym(RTLD_DEFAULT, "OSSL_PROVIDER_load") == NULL);
	CHECK(dlsym(RTLD_DEFAULT, "OSSL_LIB_CTX_new") == NULL);
	/* The interposer is the syscall the libraries see. */
	CHECK(dlsym(RTLD_DEFAULT, "syscall") == (void *)syscall);
	CHECK(strstr(lib_of(dlsym(RTLD_DEFAULT, "syscall")), "libc.so") ==
	      NULL);
}

TEST(entropy_stream)
{
	uint8_t got[100], want[100], other[100];
	sim_rng r;

	sim_entropy_begin(7);
	CHECK(sim_entropy_active());
	/* Call by call, as sim_rng_fill of the same stream. */
	CHECK_INT(syscall(SYS_getrandom, got, 37, 0), 37);
	CHECK_INT(syscall(SYS_getrandom, got + 37, 63, 1 /* NONBLOCK */), 63);
	sim_rng_init(&r, 7, "entropy");
	sim_rng_fill(&r, want, 37);
	sim_rng_fill(&r, want + 37, 63);
	CHECK(memcmp(got, want, sizeof(got)) == 0);
	uint64_t calls, bytes;
	sim_entropy_stats(&calls, &bytes);
	CHECK_U64(calls, 2);
	CHECK_U64(bytes, 100);
	/* Zero length, bad flags. */
	CHECK_INT(syscall(SYS_getrandom, got, 0, 0), 0);
	errno = 0;
	CHECK_INT(syscall(SYS_getrandom, got, 8, 0x100), -1);
	CHECK_INT(errno, EINVAL);
	/* sim_entropy_fill continues the same stream. */
	uint8_t f[16], fw[16];
	CHECK_INT(sim_entropy_fill(f, sizeof(f)), 0);
	sim_rng_fill(&r, fw, sizeof(fw));
	CHECK(memcmp(f, fw, sizeof(f)) == 0);

	/* begin restarts the stream; another seed gives other bytes. */
	sim_entropy_begin(7);
	CHECK_INT(syscall(SYS_getrandom, other, sizeof(other), 0), 100);
	sim_rng_init(&r, 7, "entropy");
	sim_rng_fill(&r, want, sizeof(want));
	CHECK(memcmp(other, want, sizeof(other)) == 0);
	sim_entropy_begin(8);
	CHECK_INT(syscall(SYS_getrandom, other, sizeof(other), 0), 100);
	CHECK(memcmp(other, want, sizeof(other)) != 0);
	sim_entropy_end();

	/* No stream: the kernel answers, and it does not repeat. */
	CHECK(!sim_entropy_active());
	CHECK_INT(sim_entropy_fill(f, sizeof(f)), SIM_ESTATE);
	sim_entropy_stats(&calls, &bytes);
	CHECK_U64(calls, 0);
	uint8_t k1[32], k2[32];
	CHECK_INT(syscall(SYS_getrandom, k1, sizeof(k1), 0), 32);
	CHECK_INT(syscall(SYS_getrandom, k2, sizeof(k2), 0), 32);
	CHECK(memcmp(k1, k2, sizeof(k1)) != 0);
	sim_rng_init(&r, 8, "entropy");
	sim_rng_fill(&r, want, sizeof(k1));
	CHECK(memcmp(k1, want, sizeof(k1)) != 0);
	/* Other numbers are forwarded with their arguments. */
	CHECK_INT(syscall(SYS_getpid), getpid());
	errno = 0;
	CHECK_INT(syscall(SYS_getrandom, got, 8, 0x100), -1);
	CHECK_INT(errno, EINVAL);
}

struct draw {
	uint8_t out[48];
	uint64_t calls;
	int active;
};

static void *draw_main(void *p)
{
	struct draw *d = p;
	d->active = sim_entropy_active();
	RAND_bytes(d->out, sizeof(d->out));
	sim_entropy_stats(&d->calls, NULL);
	return d;
}

TEST(entropy_run_thread)
{
	struct draw a, b, c;
	void *ret = NULL;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	CHECK_INT(sim_entropy_run_thread(draw_main, &a, 99, &ret), 0);
	CHECK(ret == &a);
	CHECK_INT(sim_entropy_run_thread(draw_main, &b, 99, NULL), 0);
	CHECK_INT(sim_entropy_run_thread(draw_main, &c, 100, NULL), 0);
	CHECK(a.active && b.active && c.active);
	/* libcrypto seeded each fresh thread's DRBG through the interposer. */
	CHECK(a.calls > 0);
	CHECK_U64(a.calls, b.calls);
	CHECK(memcmp(a.out, c.out, sizeof(a.out)) != 0);
	/* Equal bytes for equal seeds needs RDRAND off, which only the CLI
	 * guarantees (sim_entropy_reexec); here, check it where it applies. */
	if (sim_entropy_check(NULL, 0) == 0) {
		CHECK(memcmp(a.out, b.out, sizeof(a.out)) == 0);
	}
	CHECK(!sim_entropy_active());
	CHECK_INT(sim_entropy_run_thread(NULL, NULL, 1, NULL), SIM_EINVAL);
}

/* sim_entropy_fresh_thread: in a forked child whose process never drew
 * (as `tlsim sweep`'s children), the run takes the calling thread and
 * draws what a run on a fresh thread draws. Each child reports over a
 * pipe. (CTest runs each test in its own process, which has not drawn.) */
struct fresh_report {
	uint8_t out[32];
	uint64_t calls;
	int active, same_thread;
};

static pthread_t fresh_main_tid;

static void *fresh_main(void *p)
{
	struct fresh_report *r = p;
	r->active = sim_entropy_active();
	RAND_bytes(r->out, sizeof(r->out));
	sim_entropy_stats(&r->calls, NULL);
	r->same_thread = pthread_equal(pthread_self(), fresh_main_tid) != 0;
	return p;
}

static int fresh_child(int fresh, uint64_t seed, struct fresh_report *out)
{
	int p[2];
	if (pipe(p) != 0) {
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		struct fresh_report r;
		memset(&r, 0, sizeof(r));
		close(p[0]);
		fresh_main_tid = pthread_self();
		if (fresh) {
			sim_entropy_fresh_thread();
		}
		int bad = sim_entropy_run_thread(fresh_main, &r, seed, NULL) ||
			  sim_entropy_active() ||
			  write(p[1], &r, sizeof(r)) != (ssize_t)sizeof(r);
		_exit(bad ? 3 : 0);
	}
	close(p[1]);
	ssize_t n = pid > 0 ? read(p[0], out, sizeof(*out)) : -1;
	close(p[0]);
	int st = 0;
	if (pid > 0) {
		waitpid(pid, &st, 0);
	}
	return n == (ssize_t)sizeof(*out) && WIFEXITED(st) &&
		       WEXITSTATUS(st) == 0
		   ? 0
		   : -1;
}

TEST(entropy_fresh_thread)
{
	struct fresh_report a, b, c;
	REQUIRE(fresh_child(1, 42, &a) == 0);
	REQUIRE(fresh_child(0, 42, &b) == 0);
	REQUIRE(fresh_child(1, 43, &c) == 0);
	CHECK(a.same_thread);
	CHECK(!b.same_thread);
	CHECK(a.active && b.active);
	CHECK(a.calls > 0);
	CHECK_U64(a.calls, b.calls);
	const char *cap = getenv("OPENSSL_ia32cap");
	if (cap != NULL && strcmp(cap, SIM_ENTROPY_IA32CAP) == 0) {
		CHECK(memcmp(a.out, b.out, sizeof(a.out)) == 0);
		CHECK(memcmp(a.out, c.out, sizeof(a.out)) != 0);
	}
}

/* proto/pki is tested here too: it is the first user of the stream, and
 * what it makes must be a function of the seed. */
struct certgen {
	int rc;
	uint8_t der[2048];
	int der_len;
	uint8_t serial_first[PROTO_PKI_SERIAL_BYTES];
	int not_before_ok, not_after_ok, serial_ok;
};

static int time_is(const ASN1_TIME *t, time_t want)
{
	ASN1_TIME *w = ASN1_TIME_set(NULL, want);
	int days = 1, secs = 1;
	int ok = w != NULL && ASN1_TIME_diff(&days, &secs, t, w) && days == 0 &&
	         secs == 0;
	ASN1_TIME_free(w);
	return ok;
}

static void *certgen_main(void *p)
{
	struct certgen *g = p;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const int64_t epoch = 1700000000;
	g->rc = proto_pki_self_signed("a.test", epoch, 3600, &key, &cert);
	if (g->rc != 0) {
		return NULL;
	}
	uint8_t *out = g->der;
	g->der_len = i2d_X509(cert, NULL);
	if (g->der_len > 0 && g->der_len <= (int)sizeof(g->der)) {
		i2d_X509(cert, &out);
	} else {
		g->der_len = -1;
	}
	g->not_before_ok = time_is(X509_get0_notBefore(cert),
	                           (time_t)(epoch - PROTO_PKI_BACKDATE_S));
	g->not_after_ok = time_is(X509_get0_notAfter(cert), epoch + 3600);
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	g->serial_ok =
	    bn != NULL && !BN_is_negative(bn) &&
	    BN_num_bytes(bn) == PROTO_PKI_SERIAL_BYTES &&
	    BN_bn2bin_padded(g->serial_first, sizeof(g->serial_first), bn);
	BN_free(bn);
	X509_free(cert);
	EVP_PKEY_free(key);
	return NULL;
}

TEST(entropy_pki_self_signed)
{
	static struct certgen a, b, c;
	CHECK_INT(sim_entropy_run_thread(certgen_main, &a, 5, NULL), 0);
	CHECK_INT(sim_entropy_run_thread(certgen_main, &b, 5, NULL), 0);
	CHECK_INT(sim_entropy_run_thread(certgen_main, &c, 6, NULL), 0);
	CHECK_INT(a.rc, 0);
	CHECK_INT(c.rc, 0);
	CHECK(a.der_len > 0);
	CHECK(a.not_before_ok);
	CHECK(a.not_after_ok);
	CHECK(a.serial_ok);
	/* Same seed, same certificate: needs RDRAND off (see above). */
	if (sim_entropy_check(NULL, 0) == 0) {
		CHECK_INT(a.der_len, b.der_len);
		CHECK(memcmp(a.der, b.der, (size_t)a.der_len) == 0);
	}
	CHECK(memcmp(a.serial_first, c.serial_first, sizeof(a.serial_first)) !=
	      0);

	/* Without a stream it refuses rather than use real randomness. */
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	CHECK_INT(
	    proto_pki_self_signed("a.test", 1700000000, 3600, &key, &cert),
	    SIM_ESTATE);
	CHECK(key == NULL && cert == NULL);
	CHECK_INT(proto_pki_self_signed("a.test", 1700000000, 0, &key, &cert),
	          SIM_EINVAL);
}

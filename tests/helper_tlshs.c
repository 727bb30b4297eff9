/* tests/helper_tlshs.c: tlsim_tlshs, a TLS 1.3 handshake between two
 * in-process BoringSSL endpoints over hand-shuttled memory BIOs, to prove
 * that the crypto is deterministic (tests/cli/boringssl_determinism.sh).
 *
 *   tlsim_tlshs [--no-stream] [--stats] [--skew SECONDS] SEED [RUNS]
 *
 * Each of RUNS (default 1) runs executes on a fresh thread with the entropy
 * stream of SEED (sim_entropy_run_thread): make a self-signed P-256
 * certificate, handshake (the client verifies the server), the client
 * writes "hello", the server reads it and answers "world" (with its session
 * tickets), the client reads that. It prints one line per run:
 *
 *   SHA256(transcript) CIPHER VERSION
 *
 * where the transcript is every chunk that crossed, in order, each as a
 * direction byte ('C' client->server, 'S' server->client), its length (4
 * bytes, big-endian) and its bytes. --no-stream runs without the stream
 * (BoringSSL gets the kernel's getrandom), which must NOT be repeatable;
 * --stats appends the getrandom calls and bytes the run drew from its
 * stream; --skew moves the virtual clock of the handshake (not of the
 * certificate) by SECONDS, to show that verification uses it. Exits 1 with
 * a message on stderr on any failure (handshake, verification), 2 on
 * usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/pki.h"
#include "sim/entropy.h"
#include "sim/err.h"

/* 2023-11-14T22:13:20Z: the virtual epoch, the certificate's "now". */
#define EPOCH_S INT64_C(1700000000)
#define VALIDITY_S INT64_C(86400)
#define STEP_NS INT64_C(1000000) /* virtual time per pump step */
#define MAX_STEPS 64
#define HOST "server.tlsim.test"

struct run {
	int no_stream;
	int64_t skew_s;
	SHA256_CTX transcript;
	uint64_t transcript_bytes;
	char cipher[64];
	char version[16];
	uint64_t calls, bytes;
	char err[512];
	int failed;
};

static void fail(struct run *r, const char *fmt, const char *detail)
{
	if (r->failed) {
		return;
	}
	r->failed = 1;
	int n = snprintf(r->err, sizeof(r->err), fmt, detail ? detail : "");
	unsigned long e = ERR_get_error();
	if (e != 0 && n > 0 && (size_t)n < sizeof(r->err)) {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof(buf));
		snprintf(r->err + n, sizeof(r->err) - (size_t)n, " (%s)", buf);
	}
}

/* move takes what |from| wrote and gives it to |to|, recording it. */
static int move(struct run *r, BIO *from_w, BIO *to_r, uint8_t dir)
{
	const uint8_t *data;
	size_t len;
	if (!BIO_mem_contents(from_w, &data, &len)) {
		return 0;
	}
	if (len == 0) {
		return 1;
	}
	uint8_t hdr[5] = {dir, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
	                  (uint8_t)(len >> 8), (uint8_t)len};
	SHA256_Update(&r->transcript, hdr, sizeof(hdr));
	SHA256_Update(&r->transcript, data, len);
	r->transcript_bytes += len;
	if (BIO_write(to_r, data, (int)len) != (int)len) {
		return 0;
	}
	return BIO_reset(from_w) == 1;
}

static int shuttle(struct run *r, BIO *cw, BIO *cr, BIO *sw, BIO *sr)
{
	return move(r, cw, sr, 'C') && move(r, sw, cr, 'S');
}

/* step runs one handshake step; returns 1 done, 0 wants I/O, -1 error. */
static int step(struct run *r, SSL *ssl, const char *who)
{
	int rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		return 1;
	}
	int e = SSL_get_error(ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		return 0;
	}
	long vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "%s: certificate verification failed: %s", who,
		         X509_verify_cert_error_string(vr));
		fail(r, "%s", msg);
	} else {
		fail(r, "%s: handshake failed", who);
	}
	return -1;
}

static BIO *mem_bio(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b != NULL) {
		BIO_set_mem_eof_return(b, -1); /* empty: retry, not EOF */
	}
	return b;
}

static void *run_main(void *arg)
{
	struct run *r = arg;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	SSL_CTX *cctx = NULL, *sctx = NULL;
	SSL *c = NULL, *s = NULL;
	int64_t now_ns = EPOCH_S * INT64_C(1000000000);

	if (r->no_stream) {
		sim_entropy_end();
	}
	SHA256_Init(&r->transcript);
	proto_pki_clock_set(now_ns);

	/* proto_pki_self_signed insists on a stream. Without one, seed this
	 * thread's DRBG from the kernel first (so the key and the handshake
	 * are random), then lend it a stream for the serial number only. */
	if (r->no_stream) {
		uint8_t b;
		RAND_bytes(&b, 1);
		sim_entropy_begin(1);
	}
	int rc = proto_pki_self_signed(HOST, EPOCH_S, VALIDITY_S, &key, &cert);
	if (r->no_stream) {
		sim_entropy_end();
	}
	if (rc != 0) {
		fail(r, "certificate: %s", sim_strerror(rc));
		goto out;
	}
	now_ns += r->skew_s * INT64_C(1000000000);
	proto_pki_clock_set(now_ns);
	rc = proto_pki_tls13_ctx_pair(key, cert, HOST, &cctx, &sctx);
	if (rc != 0) {
		fail(r, "SSL_CTX pair: %s", sim_strerror(rc));
		goto out;
	}
	c = SSL_new(cctx);
	s = SSL_new(sctx);
	BIO *cr = mem_bio(), *cw = mem_bio(), *sr = mem_bio(), *sw = mem_bio();
	if (c == NULL || s == NULL || cr == NULL || cw == NULL || sr == NULL ||
	    sw == NULL) {
		BIO_free(cr);
		BIO_free(cw);
		BIO_free(sr);
		BIO_free(sw);
		fail(r, "out of memory%s", NULL);
		goto out;
	}
	SSL_set_bio(c, cr, cw); /* takes ownership */
	SSL_set_bio(s, sr, sw);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (!SSL_set_tlsext_host_name(c, HOST)) {
		fail(r, "SNI%s", NULL);
		goto out;
	}

	int cdone = 0, sdone = 0, steps;
	for (steps = 0; steps < MAX_STEPS && !(cdone && sdone); steps++) {
		now_ns += STEP_NS;
		proto_pki_clock_set(now_ns);
		if (!cdone && (cdone = step(r, c, "client")) < 0) {
			goto out;
		}
		if (!shuttle(r, cw, cr, sw, sr)) {
			fail(r, "BIO shuttle failed%s", NULL);
			goto out;
		}
		if (!sdone && (sdone = step(r, s, "server")) < 0) {
			goto out;
		}
		if (!shuttle(r, cw, cr, sw, sr)) {
			fail(r, "BIO shuttle failed%s", NULL);
			goto out;
		}
	}
	if (!(cdone && sdone)) {
		fail(r, "handshake did not finish in %s steps", "64");
		goto out;
	}
	long vr = SSL_get_verify_result(c);
	X509 *peer = SSL_get_peer_certificate(c);
	int peer_ok = peer != NULL && X509_cmp(peer, cert) == 0;
	X509_free(peer);
	if (vr != X509_V_OK || !peer_ok) {
		fail(r, "client did not verify the server: %s",
		     vr != X509_V_OK ? X509_verify_cert_error_string(vr)
		                     : "no peer certificate");
		goto out;
	}

	now_ns += STEP_NS;
	proto_pki_clock_set(now_ns);
	if (SSL_write(c, "hello", 5) != 5 || !shuttle(r, cw, cr, sw, sr)) {
		fail(r, "client write failed%s", NULL);
		goto out;
	}
	char buf[16];
	int n = SSL_read(s, buf, sizeof(buf));
	if (n != 5 || memcmp(buf, "hello", 5) != 0) {
		fail(r, "server did not read \"hello\"%s", NULL);
		goto out;
	}
	if (!shuttle(r, cw, cr, sw, sr)) {
		fail(r, "BIO shuttle failed%s", NULL);
		goto out;
	}
	/* BoringSSL's server sends its NewSessionTickets with its first
	 * write, so answer: the transcript then covers the tickets too, whose
	 * contents depend on the virtual clock (session time, ticket key). */
	now_ns += STEP_NS;
	proto_pki_clock_set(now_ns);
	if (SSL_write(s, "world", 5) != 5 || !shuttle(r, cw, cr, sw, sr)) {
		fail(r, "server write failed%s", NULL);
		goto out;
	}
	n = SSL_read(c, buf, sizeof(buf));
	if (n != 5 || memcmp(buf, "world", 5) != 0) {
		fail(r, "client did not read \"world\"%s", NULL);
		goto out;
	}
	n = SSL_read(c, buf, sizeof(buf));
	if (n > 0 || SSL_get_error(c, n) != SSL_ERROR_WANT_READ ||
	    !shuttle(r, cw, cr, sw, sr)) {
		fail(r, "client read: unexpected data or error%s", NULL);
		goto out;
	}
	const SSL_CIPHER *ciph = SSL_get_current_cipher(c);
	snprintf(r->cipher, sizeof(r->cipher), "%s",
	         ciph ? SSL_CIPHER_standard_name(ciph) : "?");
	snprintf(r->version, sizeof(r->version), "%s", SSL_get_version(c));
out:
	sim_entropy_stats(&r->calls, &r->bytes);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return NULL;
}

static int usage(void)
{
	fprintf(stderr, "usage: tlsim_tlshs [--no-stream] [--stats] "
	                "[--skew SECONDS] SEED [RUNS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int rc = sim_entropy_reexec(argc, argv);
	if (rc != 0) {
		fprintf(stderr,
		        "tlsim_tlshs: cannot re-execute with "
		        "OPENSSL_ia32cap: %s\n",
		        sim_strerror(rc));
		return 1;
	}
	int no_stream = 0, stats = 0, i = 1;
	int64_t skew_s = 0;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--no-stream") == 0) {
			no_stream = 1;
		} else if (strcmp(argv[i], "--stats") == 0) {
			stats = 1;
		} else if (strcmp(argv[i], "--skew") == 0 && i + 1 < argc) {
			char *e;
			skew_s = strtoll(argv[++i], &e, 10);
			if (*argv[i] == '\0' || *e != '\0' ||
			    skew_s < -EPOCH_S || skew_s > EPOCH_S) {
				return usage();
			}
		} else {
			return usage();
		}
	}
	if (argc - i < 1 || argc - i > 2) {
		return usage();
	}
	char *end;
	uint64_t seed = strtoull(argv[i], &end, 0);
	if (*argv[i] == '\0' || *end != '\0') {
		return usage();
	}
	long runs = 1;
	if (argc - i == 2) {
		runs = strtol(argv[i + 1], &end, 10);
		if (*end != '\0' || runs < 1 || runs > 1000) {
			return usage();
		}
	}

	char err[256];
	if ((rc = sim_entropy_check(err, sizeof(err))) != 0) {
		fprintf(stderr, "tlsim_tlshs: entropy self-check failed: %s\n",
		        err);
		return 1;
	}

	for (long k = 0; k < runs; k++) {
		struct run *r = calloc(1, sizeof(*r));
		if (r == NULL) {
			fprintf(stderr, "tlsim_tlshs: out of memory\n");
			return 1;
		}
		r->no_stream = no_stream;
		r->skew_s = skew_s;
		rc = sim_entropy_run_thread(run_main, r, seed, NULL);
		if (rc != 0) {
			fprintf(stderr, "tlsim_tlshs: run thread: %s\n",
			        sim_strerror(rc));
			free(r);
			return 1;
		}
		if (r->failed) {
			fprintf(stderr,
			        "tlsim_tlshs: seed %" PRIu64 " run %ld: %s\n",
			        seed, k + 1, r->err);
			free(r);
			return 1;
		}
		uint8_t md[SHA256_DIGEST_LENGTH];
		SHA256_Final(md, &r->transcript);
		for (size_t j = 0; j < sizeof(md); j++) {
			printf("%02x", md[j]);
		}
		printf(" %s %s", r->cipher, r->version);
		if (stats) {
			printf(" bytes=%" PRIu64 " getrandom_calls=%" PRIu64
			       " getrandom_bytes=%" PRIu64,
			       r->transcript_bytes, r->calls, r->bytes);
		}
		printf("\n");
		free(r);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

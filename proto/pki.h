/* proto/pki.h: certificates and TLS contexts for the endpoints.
 *
 * Everything here is deterministic given the calling thread's entropy stream
 * (sim/entropy.h) and the virtual clock below: keys and signatures come from
 * BoringSSL's RNG, which draws from the stream; serial numbers come from the
 * stream directly; validity periods and every time BoringSSL asks for come
 * from the caller, never from the wall clock.
 *
 * For now: one self-signed P-256 certificate, and a TLS 1.3-only client and
 * server SSL_CTX pair where the client trusts exactly that certificate.
 * (Chains root -> intermediate -> leaf and Ed25519 keys come later.)
 *
 * The virtual clock. SSL_CTX_set_current_time_cb takes a plain function and
 * passes it no user data (in this BoringSSL its |ssl| argument is always
 * NULL), so a per-SSL_CTX clock cannot be recovered inside the callback.
 * The clock is therefore thread-local: each run executes on its own thread
 * (sim_entropy_run_thread), and the code that drives an endpoint calls
 * proto_pki_clock_set(epoch + now) before each call into BoringSSL for that
 * endpoint, the way ngtcp2 passes |ts| into every call. That also gives each
 * endpoint its own clock (skew, an expiring certificate) when the caller
 * wants it. Certificate verification reads the same clock at the moment it
 * runs (a cert_verify_callback sets the X509_STORE_CTX time), so a
 * certificate that expires during a run is seen as expired. A thread that
 * never set the clock reads 0 (1970-01-01), which fails verification loudly
 * rather than falling back to the wall clock. */
#ifndef TLSIM_PROTO_PKI_H
#define TLSIM_PROTO_PKI_H

#include <stdint.h>

#include <openssl/base.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* PROTO_PKI_BACKDATE_S: a certificate's notBefore is this many seconds
 * before the epoch it is made for, as CAs backdate to absorb clock skew. */
#define PROTO_PKI_BACKDATE_S ((int64_t)3600)

/* PROTO_PKI_SERIAL_BYTES: serial numbers are this many bytes from the
 * entropy stream, top bit cleared (positive, at most 20 octets). */
#define PROTO_PKI_SERIAL_BYTES 16

/* proto_pki_clock_set sets the calling thread's virtual clock, which every
 * SSL_CTX made by this module reports to BoringSSL, to |unix_ns|
 * nanoseconds since 1970-01-01T00:00:00Z. */
void proto_pki_clock_set(int64_t unix_ns);

/* proto_pki_clock_get returns the calling thread's virtual clock (0 if it
 * was never set on this thread). */
int64_t proto_pki_clock_get(void);

/* proto_pki_self_signed generates a P-256 key and a self-signed X.509 v3
 * certificate for |dns_name| (subject CN and subjectAltName DNS entry,
 * basicConstraints CA:FALSE, extendedKeyUsage serverAuth, no keyUsage,
 * ECDSA-SHA256), valid from |epoch_s| - PROTO_PKI_BACKDATE_S to
 * |epoch_s| + |validity_s| (seconds since 1970). The calling thread must have
 * an entropy stream (sim_entropy_begin / sim_entropy_run_thread). On success
 * returns 0 and sets |*out_key| and |*out_cert|, which the caller owns
 * (EVP_PKEY_free, X509_free). Returns SIM_EINVAL (bad argument, validity_s
 * <= 0), SIM_ESTATE (no entropy stream) or SIM_ECRYPTO, leaving the outputs
 * untouched. */
int proto_pki_self_signed(const char *dns_name, int64_t epoch_s,
                          int64_t validity_s, EVP_PKEY **out_key,
                          X509 **out_cert);

/* proto_pki_tls13_ctx_pair makes two SSL_CTXs, TLS 1.3 only (min and max
 * version TLS1_3_VERSION), both reporting the thread's virtual clock to
 * BoringSSL (SSL_CTX_set_current_time_cb):
 *  - |*out_server| serves |cert| with |key| (it takes its own references);
 *  - |*out_client| trusts |cert| alone (an X509_STORE holding only it),
 *    verifies the server (SSL_VERIFY_PEER) against |dns_name| as host name,
 *    and checks validity at the virtual clock: its verify param gets
 *    X509_VERIFY_PARAM_set_time(now) at creation, and each verification
 *    sets the current virtual time again.
 * Clients should also send |dns_name| as SNI (SSL_set_tlsext_host_name).
 * Returns 0 and the two contexts, which the caller owns (SSL_CTX_free), or
 * SIM_EINVAL / SIM_ECRYPTO with nothing allocated. */
int proto_pki_tls13_ctx_pair(EVP_PKEY *key, X509 *cert, const char *dns_name,
                             SSL_CTX **out_client, SSL_CTX **out_server);

/* --- chains -------------------------------------------------------------- */

typedef enum proto_pki_alg { PROTO_PKI_P256 = 0, PROTO_PKI_ED25519 } proto_pki_alg;

typedef struct proto_pki_chain_params {
	const char *dns_name; /* leaf subjectAltName DNS entry and CN */
	proto_pki_alg alg;    /* key type of all three certificates */
	int64_t epoch_s;      /* the "now" the chain is made for (unix s) */
	/* Leaf validity relative to epoch_s, in seconds; both 0 for the
	 * default [-PROTO_PKI_BACKDATE_S, +90 days]. E.g. expired:
	 * -2 days..-1 day; not yet valid: +1 day..+30 days. The root and
	 * the intermediate are valid for 10 years either side of epoch_s. */
	int64_t leaf_not_before_s, leaf_not_after_s;
} proto_pki_chain_params;

typedef struct proto_pki_chain {
	EVP_PKEY *root_key, *inter_key, *leaf_key;
	X509 *root, *inter, *leaf;
} proto_pki_chain;

/* proto_pki_chain_new makes root CA -> intermediate CA -> leaf, all with
 * |p->alg| keys (ECDSA-SHA256 or Ed25519 signatures): the root is
 * self-signed "tlsim root CA" (CA:TRUE critical, keyCertSign|cRLSign),
 * the intermediate "tlsim intermediate CA" (CA:TRUE, pathlen 0), the leaf
 * |p->dns_name| (CA:FALSE, digitalSignature, serverAuth, SAN DNS), serials
 * from the entropy stream. Deterministic given the calling thread's
 * entropy stream. Returns 0 and |*out| (free with proto_pki_chain_del),
 * SIM_EINVAL, SIM_ESTATE (no entropy stream) or SIM_ECRYPTO. */
int proto_pki_chain_new(const proto_pki_chain_params *p,
			proto_pki_chain **out);

/* proto_pki_chain_del frees |c|; NULL is a no-op. */
void proto_pki_chain_del(proto_pki_chain *c);

/* proto_pki_verify checks |chain| (the peer's certificates, leaf first) as
 * a TLS server certificate for |dns_name| at unix time |now_s|, trusting
 * exactly |roots| and using |cached| (may be NULL: intermediates the client
 * already holds) as extra untrusted certificates. Returns X509_V_OK or the
 * X509_V_ERR_* result (X509_V_ERR_UNSPECIFIED when |chain| is empty or a
 * context cannot be made), sets |*out_depth| to the failing depth (-1 on
 * success) and writes a message to |msg|. */
int proto_pki_verify(STACK_OF(X509) *chain, STACK_OF(X509) *roots,
		     STACK_OF(X509) *cached, const char *dns_name,
		     int64_t now_s, int *out_depth, char *msg, size_t msglen);

/* proto_pki_alert_for returns the alert BoringSSL sends for X.509 result
 * |x509_err| (SSL_alert_from_verify_result): e.g. 20 (unable to get local
 * issuer) -> unknown_ca (48), 10 (expired) -> certificate_expired (45). */
int proto_pki_alert_for(int x509_err);

/* proto_pki_alert_name returns the RFC 8446 name of alert |alert|
 * ("unknown_ca"), or "unknown" for a number RFC 8446 does not define. */
const char *proto_pki_alert_name(int alert);

/* proto_pki_server_ctx returns a server SSL_CTX serving |c->leaf| with
 * |c->leaf_key|, plus |c->inter| as chain certificate when |send_chain|;
 * protocol versions [min_version, max_version]; |groups| ("X25519:P-256")
 * and |ciphers| (TLS 1.2 cipher list) when not NULL; the virtual clock.
 * proto_pki_client_ctx is the same for a client, with no verification set
 * up (the caller installs SSL_CTX_set_custom_verify) and Ed25519 among
 * the accepted signature algorithms. Both return NULL on failure (a bad
 * group or cipher list, or no memory); the caller owns the result. */
SSL_CTX *proto_pki_server_ctx(const proto_pki_chain *c, int send_chain,
			      uint16_t min_version, uint16_t max_version,
			      const char *groups, const char *ciphers);
SSL_CTX *proto_pki_client_ctx(uint16_t min_version, uint16_t max_version,
			      const char *groups, const char *ciphers);

#endif

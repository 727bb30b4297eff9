/* proto/pki.h: certificates and TLS contexts for the endpoints.
 *
 * Everything here is deterministic given the calling thread's entropy stream
 * (sim/entropy.h) and the virtual clock below: keys and signatures come from
 * BoringSSL's RNG, which draws from the stream; serial numbers come from the
 * stream directly; validity periods and every time BoringSSL asks for come
 * from the caller, never from the wall clock.
 *
 * Two ways to get a server identity:
 *  - proto_pki_self_signed and proto_pki_tls13_ctx_pair: one self-signed
 *    P-256 certificate and a TLS 1.3 client/server pair where the client
 *    trusts exactly it (BoringSSL's built-in verification);
 *  - proto_pki_chain_new: root CA -> intermediate CA -> leaf, P-256 or
 *    Ed25519, with proto_pki_server_ctx (sends the leaf, with or without
 *    the intermediate), proto_pki_client_ctx (no built-in verification) and
 *    proto_pki_verify (what a client's custom verify callback calls, with
 *    its own roots and cache of intermediates), and proto_pki_alert_for /
 *    proto_pki_alert_name to turn a verification failure into the alert
 *    BoringSSL would send and its RFC 8446 name.
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

#include <stddef.h>
#include <stdint.h>

#include <openssl/base.h>
#include <openssl/stack.h>
#include <openssl/x509.h>

/* PROTO_PKI_BACKDATE_S: a certificate's notBefore is this many seconds
 * before the epoch it is made for, as CAs backdate to absorb clock skew. */
#define PROTO_PKI_BACKDATE_S ((int64_t)3600)

/* PROTO_PKI_SERIAL_BYTES: serial numbers are this many bytes from the
 * entropy stream, top bit cleared (positive, at most 20 octets). */
#define PROTO_PKI_SERIAL_BYTES 16

/* PROTO_PKI_LEAF_VALIDITY_S: a chain's leaf is valid until this many
 * seconds after the epoch, unless the caller says otherwise. */
#define PROTO_PKI_LEAF_VALIDITY_S ((int64_t)90 * 86400)

/* PROTO_PKI_CA_VALIDITY_S: a chain's root and intermediate are valid for
 * this long (ten 365-day years), centred on the epoch, so that a leaf made
 * expired or not yet valid is the only certificate out of its period. */
#define PROTO_PKI_CA_VALIDITY_S ((int64_t)10 * 365 * 86400)

/* The subject common names of a chain's CAs. */
#define PROTO_PKI_ROOT_CN "tlsim root CA"
#define PROTO_PKI_INTER_CN "tlsim intermediate CA"

/* proto_pki_clock_set sets the calling thread's virtual clock, which every
 * SSL_CTX made by this module reports to BoringSSL, to |unix_ns|
 * nanoseconds since 1970-01-01T00:00:00Z. */
void proto_pki_clock_set(int64_t unix_ns);

/* proto_pki_clock_get returns the calling thread's virtual clock (0 if it
 * was never set on this thread). */
int64_t proto_pki_clock_get(void);

/* proto_pki_self_signed generates a P-256 key and a self-signed X.509 v3
 * certificate for |dns_name| (which must be as for
 * proto_pki_chain_params.dns_name): subject CN and subjectAltName DNS
 * entry, basicConstraints CA:FALSE, extendedKeyUsage serverAuth, no
 * keyUsage, ECDSA-SHA256, valid from |epoch_s| - PROTO_PKI_BACKDATE_S to
 * |epoch_s| + |validity_s| (seconds since 1970). The calling thread must
 * have an entropy stream (sim_entropy_begin / sim_entropy_run_thread). On
 * success returns 0 and sets |*out_key| and |*out_cert|, which the caller
 * owns (EVP_PKEY_free, X509_free). Returns SIM_EINVAL (bad argument,
 * validity_s <= 0), SIM_ESTATE (no entropy stream) or SIM_ECRYPTO, leaving
 * the outputs untouched. */
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

/* proto_pki_alg is the key type of every certificate in a chain, and the
 * signature algorithm: ECDSA with SHA-256 over P-256, or pure Ed25519. */
typedef enum proto_pki_alg {
	PROTO_PKI_P256 = 0,
	PROTO_PKI_ED25519,
} proto_pki_alg;

/* proto_pki_chain_params describes the chain proto_pki_chain_new makes. */
typedef struct proto_pki_chain_params {
	/* dns_name (required) is the leaf's subject CN and its one
	 * subjectAltName DNS entry: letters, digits, '-', '.' and a leading
	 * "*." only, at most 253 bytes. */
	const char *dns_name;
	/* alg is the key type of root, intermediate and leaf. */
	proto_pki_alg alg;
	/* epoch_s is the "now" the chain is made for, in seconds since 1970.
	 * The CAs are valid for PROTO_PKI_CA_VALIDITY_S centred on it, which
	 * must lie within years 1970..9999. */
	int64_t epoch_s;
	/* leaf_not_before_s and leaf_not_after_s are the leaf's validity
	 * period relative to epoch_s. Both 0 means [-PROTO_PKI_BACKDATE_S,
	 * +PROTO_PKI_LEAF_VALIDITY_S]; otherwise not_before must be before
	 * not_after and both within the CAs' period. An expired leaf: e.g.
	 * -2 days .. -1 day; not yet valid: +1 day .. +30 days. */
	int64_t leaf_not_before_s, leaf_not_after_s;
} proto_pki_chain_params;

/* proto_pki_chain is a root CA, an intermediate CA it signed, and a leaf
 * the intermediate signed, with their private keys. It owns all six.
 * Nothing may change a chain once made: proto_pki_chain_get shares one
 * among every run of the process. */
typedef struct proto_pki_chain {
	EVP_PKEY *root_key, *inter_key, *leaf_key;
	X509 *root, *inter, *leaf;
	unsigned refs; /* private: references (proto_pki_chain_del) */
} proto_pki_chain;

/* proto_pki_chain_new makes a chain as |p| says. All three certificates
 * are X.509 v3 with PROTO_PKI_SERIAL_BYTES serials from the entropy stream
 * and distinct subjects:
 *  - root: CN PROTO_PKI_ROOT_CN, self-signed, basicConstraints critical
 *    CA:TRUE, keyUsage critical keyCertSign|cRLSign, subjectKeyIdentifier;
 *  - intermediate: CN PROTO_PKI_INTER_CN, signed by the root,
 *    basicConstraints critical CA:TRUE pathlen:0, the same keyUsage,
 *    subjectKeyIdentifier and authorityKeyIdentifier (the root's key id);
 *  - leaf: CN p->dns_name, signed by the intermediate, basicConstraints
 *    critical CA:FALSE, keyUsage critical digitalSignature,
 *    extendedKeyUsage serverAuth, subjectAltName DNS:p->dns_name,
 *    authorityKeyIdentifier.
 * Keys, serials and signatures are drawn in that order (root, intermediate,
 * leaf; for each: key, serial, signature), so the chain is a function of
 * the calling thread's entropy stream, which it must have. On success
 * returns 0 and sets |*out|, which the caller frees with
 * proto_pki_chain_del. Returns SIM_EINVAL (bad parameters), SIM_ESTATE (no
 * entropy stream), SIM_ENOMEM or SIM_ECRYPTO, leaving |*out| untouched. */
int proto_pki_chain_new(const proto_pki_chain_params *p, proto_pki_chain **out);

/* proto_pki_chain_del releases a reference to |c| (one from
 * proto_pki_chain_new or proto_pki_chain_get) and frees it and everything
 * in it with the last. NULL is a no-op. */
void proto_pki_chain_del(proto_pki_chain *c);

/* proto_pki_chain_get returns the chain |p| describes, the |index|-th of a
 * run (0 for its first w:pki, 1 for its second...), as a function of |p|
 * and |index| alone: it is made by proto_pki_chain_new on a thread of its
 * own (sim_entropy_run_thread) whose entropy stream is seeded from a
 * SHA-256 of |p| and |index|, so neither the calling thread's stream nor
 * its BoringSSL state is drawn from or touched, and the same arguments
 * give the same certificates and keys in any process. Distinct |index|es
 * give distinct chains (a run's second PKI is not its first). Chains are
 * memoised per process (PROTO_PKI_CACHE_MAX of them; past that each call
 * makes its own): a P-256 chain takes three key generations and three
 * signatures, a third of a short QUIC run. On success returns 0 and sets
 * |*out| to a reference the caller releases with proto_pki_chain_del;
 * otherwise the errors of proto_pki_chain_new and of
 * sim_entropy_run_thread, leaving |*out| untouched. Thread-safe. */
#define PROTO_PKI_CACHE_MAX 64
int proto_pki_chain_get(const proto_pki_chain_params *p, uint32_t index,
			proto_pki_chain **out);

/* proto_pki_cache_export appends to |*buf| (realloc'd; |*len| bytes, both
 * updated) every memoised chain this process made itself, rather than
 * inherited from the process it was forked from or imported: its
 * parameters, index, certificates and private keys. `tlsim sweep`'s
 * children report them, so that the sweep imports each chain once and
 * every child forked after that finds it made. Returns the number of
 * chains appended, or SIM_ENOMEM (|*buf| and |*len| then describe what
 * was appended before). */
int proto_pki_cache_export(uint8_t **buf, size_t *len);

/* proto_pki_cache_import memoises the chains in |in| (|len| bytes, as
 * proto_pki_cache_export wrote them), as if proto_pki_chain_get had made
 * them, skipping those already memoised and those past
 * PROTO_PKI_CACHE_MAX. The bytes must come from this same build: a chain
 * is trusted to be what its parameters would make. Returns the number of
 * chains added, or SIM_EINVAL (malformed input; the chains before the
 * malformed one are kept) or SIM_ENOMEM. */
int proto_pki_cache_import(const uint8_t *in, size_t len);

/* proto_pki_verify verifies |chain|, the certificates a server sent (leaf
 * first, then whatever else it sent, in its order), as a TLS server
 * certificate (purpose sslserver: extendedKeyUsage serverAuth) for host
 * name |dns_name| at |now_s| seconds since 1970, the way a client does:
 * the trust anchors are exactly the certificates in |roots| (no system
 * store; each must be self-signed), and |cached| holds intermediates the
 * client already has (a cache, an "AIA fetch"), used like the ones the
 * server sent: as untrusted candidates for building the path. |roots| and
 * |cached| may be NULL or empty. Nothing passed in is modified or kept.
 *
 * Returns X509_V_OK (0) if the chain verifies, a positive X509_V_ERR_*
 * code if it does not, or a negative SIM_E* code: SIM_EINVAL (|chain| NULL
 * or empty, |dns_name| NULL or empty, |now_s| outside 1970..9999),
 * SIM_ENOMEM or SIM_ECRYPTO (BoringSSL failed without a verdict; its
 * error queue says why). A verdict leaves the error queue as it was. If
 * |out_depth| is not NULL it gets the depth of the failing certificate (0
 * = leaf) for an X509_V_ERR_* result, the depth of the trust anchor in the
 * path built (2 for leaf, intermediate, root) for X509_V_OK, and -1 for a
 * SIM_E* code. If |msg| is not NULL it gets a NUL-terminated line of at
 * most |msglen| bytes: X509_verify_cert_error_string and the depth, e.g.
 * "unable to get local issuer certificate (depth 0)". */
int proto_pki_verify(STACK_OF(X509) *chain, STACK_OF(X509) *roots,
		     STACK_OF(X509) *cached, const char *dns_name,
		     int64_t now_s, int *out_depth, char *msg, size_t msglen);

/* proto_pki_alert_for returns the TLS alert BoringSSL's own verifier sends
 * for |x509_err|, an X509_V_* code: SSL_alert_from_verify_result. Measured
 * with this BoringSSL (tests/test_pki.c holds it to these):
 *   20 unable to get local issuer certificate -> 48 unknown_ca
 *    2 unable to get issuer certificate       -> 48 unknown_ca
 *   21 unable to verify the first certificate -> 48 unknown_ca
 *   10 certificate has expired                -> 45 certificate_expired
 *    9 certificate is not yet valid           -> 45 certificate_expired
 *   62 hostname mismatch                      -> 42 bad_certificate
 *   26 unsupported certificate purpose        -> 43 unsupported_certificate
 *    0 ok                                     -> 46 certificate_unknown
 * (aioquic sends bad_certificate for 20; tlsim follows BoringSSL.) A
 * negative (SIM_E*) argument gives 80 internal_error. */
int proto_pki_alert_for(int x509_err);

/* proto_pki_alert_name returns the name RFC 8446 (section 6, appendix B.2)
 * gives alert number |alert|, spelled as there ("unknown_ca",
 * "decryption_failed_RESERVED"), or "unknown(N)" for a number in 0..255 it
 * does not define, or "invalid" outside 0..255. The string is static. */
const char *proto_pki_alert_name(int alert);

/* proto_pki_server_ctx makes a server SSL_CTX that serves |c|->leaf with
 * |c|->leaf_key, followed by |c|->inter if |send_chain| is nonzero (the
 * leaf alone otherwise: the incomplete chain of SCENARIOS.md 3). It takes
 * its own references. Versions are [|min_version|, |max_version|], each
 * TLS1_2_VERSION or TLS1_3_VERSION; BoringSSL's time is the thread's
 * virtual clock. |groups| (optional) is a key-exchange group list in
 * SSL_CTX_set1_curves_list syntax ("X25519:P-256"); |ciphers| (optional)
 * is a cipher list for SSL_CTX_set_strict_cipher_list, which in BoringSSL
 * only governs TLS 1.2 (TLS 1.3 suites are not configurable). NULL means
 * BoringSSL's defaults. It requests no client certificate. Returns 0 and
 * |*out|, which the caller owns (SSL_CTX_free), or SIM_EINVAL (bad
 * argument, a list BoringSSL rejects) / SIM_ECRYPTO with nothing
 * allocated. */
int proto_pki_server_ctx(const proto_pki_chain *c, int send_chain,
			 uint16_t min_version, uint16_t max_version,
			 const char *groups, const char *ciphers,
			 SSL_CTX **out);

/* proto_pki_client_ctx makes a client SSL_CTX: versions, virtual clock,
 * |groups| and |ciphers| as for proto_pki_server_ctx. It accepts the
 * server signature algorithms BoringSSL verifies by default plus Ed25519
 * (SSL_CTX_set_verify_algorithm_prefs; BoringSSL leaves Ed25519 out unless
 * asked). It configures NO certificate verification (BoringSSL's default,
 * SSL_VERIFY_NONE): the endpoint must install its own with
 * SSL_CTX_set_custom_verify or SSL_set_custom_verify (SSL_VERIFY_PEER),
 * typically calling proto_pki_verify. Returns 0 and |*out|, which the
 * caller owns, or SIM_EINVAL / SIM_ECRYPTO with nothing allocated. */
int proto_pki_client_ctx(uint16_t min_version, uint16_t max_version,
			 const char *groups, const char *ciphers,
			 SSL_CTX **out);

/* proto_pki_client_trust makes the stacks a client verifies with:
 * |*roots| holds |c->root|; |*cached| holds |c->inter| when
 * |cached_intermediate| (an intermediate the client already has, as if
 * fetched through AIA), else nothing. The caller frees both with
 * sk_X509_pop_free(..., X509_free). Returns 0, or SIM_ENOMEM with nothing
 * allocated. */
int proto_pki_client_trust(const proto_pki_chain *c, int cached_intermediate,
			   STACK_OF(X509) **roots, STACK_OF(X509) **cached);

/* proto_pki_cached_at returns |cached| if the client holds its
 * intermediates at virtual time |now_ns|: always when |always|, else once
 * |fetch_ns| >= 0 (an AIA fetch finishing then) has passed; NULL
 * otherwise. */
STACK_OF(X509) *proto_pki_cached_at(STACK_OF(X509) *cached, int always,
				    int64_t fetch_ns, int64_t now_ns);

#endif

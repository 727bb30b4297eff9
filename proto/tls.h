/* proto/tls.h: a TLS endpoint on BoringSSL over the reliable stream.
 *
 * One endpoint is one application socket: a proto/stream.h stream under a
 * BoringSSL SSL object with memory BIOs. It is a pure state machine
 * (sim/ep.h): API calls, received segments and timer expiries come in as
 * operations with |now|; segments go out through output().
 *
 * API operations (op names, arguments in sim_op_args):
 *   connect            client: open the transport; the handshake starts
 *                      when it is up unless auto_handshake is off
 *   accept             server: start answering on the (listening) transport;
 *                      a server that never accepts stays silent
 *   handshake          start (or restart) the handshake; i[0] = deadline in
 *                      ns from now (0: none)
 *   write              send data (args data/len) as application data
 *   read               with autoread off: deliver what has arrived, or the
 *                      next data to arrive, as one "data" event
 *   shutdown           send close_notify; i[0] = 1 wait for the peer's,
 *                      0 don't, -1 the endpoint's shutdown_wait policy
 *   close              close per the close policy (see below)
 *   close_write        half-close the transport (FIN), no close_notify
 *   abort              reset the transport (RST)
 *   validation_complete  finish a pending certificate check, i[0] = 1 ok
 *   sign_complete      finish a pending private-key signature, i[0] = 1 ok
 *   client_hello_complete  finish a pending ClientHello inspection
 *                      (server, acceptor), i[0] = 1 go on, 0 reject
 *   send_raw           write args data/len to the transport as is (junk or
 *                      hand-made records); incoming records are then parsed
 *                      only for alerts
 *
 * Events to the scenario (sim_ep_event name: fields):
 *   connected                          transport up
 *   client_hello: version, tls13, sni  server, acceptor; answer true/nil
 *                                      (go on), false (reject) or "pending"
 *   peer_certificate: x509_error, x509_message, depth, certs
 *                                      answer true/false, "pending", or nil
 *                                      for the built-in verdict
 *   sign: sigalg                       server with async_sign; "pending"
 *   handshake_done: version, cipher, group
 *   data: data, len                    application bytes (binary-safe)
 *   close_notify                       the peer's close_notify arrived
 *   eof: truncated                     the transport closed; truncated = 1
 *                                      when no close_notify came first
 *   alert_sent / alert_received: name, code, fatal
 *   shutdown_done: clean               clean = 1 both close_notify
 *   error: op, reason                  an operation failed
 *   timeout: what                      a deadline passed ("handshake")
 *   reset                              the transport was reset
 *   closed                             the endpoint is finished
 *
 * Outcome (proto_tls_outcome): the first terminal fact, in the words users
 * know: "clean: close_notify exchanged", "clean: close_notify sent, not
 * awaited", "clean: close_notify received, then EOF",
 * "truncated: EOF without close_notify", "alert received: NAME(N)",
 * "alert sent: NAME(N)", "eof during handshake: no alert", "timeout:
 * handshake deadline", "clean: end of stream" (unexpected_eof ignore), "reset", "aborted: closed before close_notify", or "open"
 * while nothing terminal has happened.
 *
 * Trace: tls rows for handshake state changes ("state", BoringSSL's state
 * name), keys installed per level and direction ("keys", from the key log
 * callback; detail holds the NSS key log line for decryption), alerts,
 * verify_pending/verify_done, sign_pending/sign_done, client_hello
 * pending/done, close_notify sent/received, handshake_done, eof. */
#ifndef TLSIM_PROTO_TLS_H
#define TLSIM_PROTO_TLS_H

#include <stdint.h>

#include "proto/pki.h"
#include "proto/stream.h"
#include "sim/ep.h"

/* Policies (DESIGN.md "Policies"); the first value of each is the
 * RFC-correct default. */
enum proto_tls_acceptor_alert {
	PROTO_TLS_ALERT_FLUSH = 0, /* write the pending alert, then close */
	PROTO_TLS_ALERT_DROP,      /* rustls before 0.23: drop it, close */
};
enum proto_tls_deadline {
	PROTO_TLS_DEADLINE_HONOUR = 0, /* fail at the deadline */
	PROTO_TLS_DEADLINE_IGNORE,     /* Go before 2011: retry the timed-out
					  read forever */
};
enum proto_tls_close {
	PROTO_TLS_CLOSE_NOTIFY = 0,  /* close_notify if the handshake is done,
					then always close the transport */
	PROTO_TLS_CLOSE_FINISH_HANDSHAKE, /* Go before 2011: finish the
					     handshake first to send
					     close_notify; the transport
					     closes only after that */
	PROTO_TLS_CLOSE_TRANSPORT,   /* close the transport only */
};

enum proto_tls_unexpected_eof {
	PROTO_TLS_EOF_ERROR = 0, /* EOF without close_notify is truncation */
	PROTO_TLS_EOF_IGNORE,    /* reported as a clean end of stream (as
				    SSL_OP_IGNORE_UNEXPECTED_EOF): the
				    truncation attack succeeds */
};

typedef struct proto_tls_config {
	int is_server;
	const char *name;      /* host name: SNI and the name verified */
	uint16_t min_version, max_version; /* TLS1_2_VERSION..TLS1_3_VERSION */
	const char *groups;    /* "X25519:P-256" style, NULL: defaults */
	const char *ciphers;   /* TLS 1.2 cipher list, NULL: defaults */
	/* PKI: the server serves chain->leaf (and chain->inter when
	 * send_chain); the client trusts chain->root, plus chain->inter as a
	 * cached intermediate when cached_intermediate. Borrowed; outlives
	 * the endpoint. */
	const proto_pki_chain *chain;
	int send_chain;
	int cached_intermediate;
	/* aia_fetch_ns: client: the intermediate reaches its cache at this
	 * virtual time (an AIA fetch finishing); a check before then sees
	 * the root alone. -1: never (unless cached_intermediate). */
	sim_time aia_fetch_ns;
	int verify_async;      /* client: emit peer_certificate (else the
				  built-in verdict, no event) */
	int async_sign;        /* server: private-key signing via "sign" */
	int acceptor;          /* server: ClientHello inspected first */
	int auto_handshake;    /* client: handshake once connected (def 1) */
	int autoread;          /* read as data arrives (default 1) */
	uint32_t read_chunk;   /* hand received bytes to TLS at most this
				  many at a time, each followed by a
				  processing step (partial records); 0: all
				  at once */
	/* split_msg: cut the stream at these offsets (split_msg_at, from 0,
	 * ascending) into the bytes of the first message of that name this
	 * endpoint writes ("Certificate", "Finished"...; offset 0 is the
	 * first byte labelled with it, see proto/tlsrec.h), as stream.split_at
	 * cuts at absolute offsets. "" none. */
	char split_msg[24];
	uint32_t nsplit_msg;
	uint64_t split_msg_at[8];
	uint32_t max_record;   /* records of at most this many bytes of
				  plaintext (512..16384,
				  SSL_set_max_send_fragment); 0: BoringSSL's
				  16384 */
	int shutdown_wait;     /* default for shutdown's wait (default 1) */
	sim_time shutdown_timeout_ns; /* a waiting shutdown gives up after
					 this long without the peer's
					 close_notify and closes the
					 transport (timer "close_notify");
					 0: waits for ever (default) */
	enum proto_tls_acceptor_alert acceptor_alert;
	enum proto_tls_deadline deadline;
	enum proto_tls_close close;
	enum proto_tls_unexpected_eof unexpected_eof;
	int64_t epoch_ns;      /* unix time of virtual time 0, in ns */
	uint64_t max_received; /* bytes kept for proto_tls_received */
	proto_stream_config stream;
} proto_tls_config;

/* proto_tls_config_default: client, TLS 1.2..1.3, name "server.test",
 * RFC policies, autoread, auto_handshake, shutdown_wait, epoch
 * 2026-01-01T00:00:00Z, 16 MiB kept, stream defaults. */
void proto_tls_config_default(proto_tls_config *c, int is_server);

extern const sim_ep_class proto_tls_client_class;
extern const sim_ep_class proto_tls_server_class;

/* proto_tls_make is the sim_ep_new "make" function; |arg| is a
 * const proto_tls_config * (copied; chain and strings borrowed). */
void *proto_tls_make(const sim_ep_env *env, void *arg, char *err,
		     size_t errlen);

/* proto_tls_outcome returns the endpoint's outcome (see above). */
const char *proto_tls_outcome(const void *impl);

/* proto_tls_received returns the application bytes received so far (up to
 * max_received) and their count in |*len|. */
const uint8_t *proto_tls_received(const void *impl, size_t *len);

typedef struct proto_tls_info {
	sim_time handshake_done_ns; /* -1: not yet */
	sim_time closed_ns;         /* transport closed locally, -1 not */
	sim_time peer_closed_ns;    /* FIN/RST from the peer, -1 not */
	int close_notify_sent, close_notify_received;
	int alert_sent, alert_received; /* last alert number, -1 none */
	int verify_error;           /* X.509 error of the last check */
	uint64_t bytes_written, bytes_read;
	/* stream_offset: where the next application record will start in
	 * this side's outgoing byte stream (bytes given to the stream plus
	 * what BoringSSL holds); for aiming proto_tls_attack. */
	uint64_t stream_offset;
	const char *stream_state;
	proto_stream_stats stream;
} proto_tls_info;
void proto_tls_get_info(const void *impl, proto_tls_info *out);

/* proto_tls_attack runs an on-path attack against this endpoint's
 * outgoing direction: |kind| "fin" / "rst" forged now (offset < 0) or as a
 * truncation at payload byte |offset| (see proto_stream_cut). The caller
 * flushes the endpoint (sim_ep_flush). Returns 0 or a SIM_E* code. */
int proto_tls_attack(void *impl, sim_time now, const char *kind,
		     int64_t offset);

#endif

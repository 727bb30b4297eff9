/* proto/quic.h: a QUIC v1 endpoint on BoringSSL's QUIC API.
 *
 * A pure state machine (sim/ep.h) speaking the real RFC 9000/9001 wire
 * format (proto/quic_wire.h) with real packet protection
 * (proto/quic_crypto.h), so what it sends is what Wireshark decodes. One
 * connection per endpoint, one bidirectional stream (id 0, opened by the
 * client). BoringSSL runs the TLS 1.3 handshake through SSL_QUIC_METHOD:
 * its secrets become packet keys per level and direction, its handshake
 * bytes travel in CRYPTO frames.
 *
 * Modelled on MsQuic's connection: everything that reaches the endpoint is
 * an operation on its queue (sim/opq.h): API calls, received datagrams,
 * timer expiries; the shutdown API call goes to the front of the queue or
 * the tail by policy.
 *
 * API operations (sim_op type, arguments):
 *   start                  client: send the first Initial
 *   send                   queue data (args data/len) on stream 0;
 *                          i[0] = 1 to end the stream (FIN) after it
 *   shutdown               close the connection with application error
 *                          i[0] (CONNECTION_CLOSE; closing state)
 *   validation_complete    finish a pending certificate check, i[0] = 1 ok
 *   key_update             initiate a 1-RTT key update (RFC 9001 6.1):
 *                          the write keys move to the next phase now, the
 *                          peer answers with its own. Refused (an "error"
 *                          event, nothing changes) when not allowed:
 *                          "handshake not confirmed", "previous key update
 *                          not acknowledged" (no packet sent with the
 *                          current keys acknowledged yet), "connection
 *                          closed"
 *
 * Events to the scenario (name: fields):
 *   peer_certificate: x509_error, x509_message, certs   client; answer
 *        true/false, "pending" (complete with validation_complete) or nil
 *        for the built-in verdict
 *   connected                     the handshake completed
 *   handshake_confirmed           RFC 9001 4.1.2
 *   data: data, len, fin          stream 0 bytes (binary-safe)
 *   shutdown_by_peer: error, app, frame   a CONNECTION_CLOSE arrived
 *        (frame 0x1c or 0x1d); the connection is draining
 *   closed: reason                the connection is gone: "closed" (after
 *        closing/draining), "idle_timeout", "handshake_timeout",
 *        "error" (a transport or TLS error we detected)
 *   key_updated: phase, initiated our 1-RTT write keys moved to key phase
 *        |phase| (0/1), because we initiated (1) or the peer did (0)
 *   error: op, reason             an API operation was refused
 *
 * Key update (RFC 9001 6): a receiver reads the Key Phase bit through
 * header protection (the header protection key never changes) and picks
 * the current read keys, the next ones (the peer updated: they become
 * current, and our write keys follow before we acknowledge anything), or
 * the previous phase's for a late packet whose number is below every one
 * of the current phase. Previous read keys are kept 3 PTO (RFC 9001 6.5)
 * and then discarded; a packet that fails to decrypt with the keys its
 * phase implies is dropped, never fatal.
 *
 * Trace: a packet row per datagram (ptype "datagram") and one per QUIC
 * packet inside it (ptype initial/handshake/1rtt, space, pn, the frame
 * summary, the sender's handshake state: "keys=I,H,1 complete=0
 * confirmed=0", followed, once it has 1-RTT write keys, by their Key Phase,
 * the bit its 1-RTT packets carry: "keys=1 complete=1 confirmed=1
 * key_phase=1");
 * tls rows for keys installed and discarded per level and direction,
 * handshake complete/confirmed, alerts (code 0x100 + alert as the
 * CRYPTO_ERROR sent), verification pending/done, close sent/received, and
 * for key updates key_update (we initiated), keys_updated (1-RTT keys of
 * one direction moved to a new phase), keys_discarded (level application,
 * direction read: the previous phase's read keys), each with the key
 * phase as code.
 */
#ifndef TLSIM_PROTO_QUIC_H
#define TLSIM_PROTO_QUIC_H

#include <stdint.h>

#include "proto/pki.h"
#include "sim/ep.h"

/* Which CONNECTION_CLOSE goes in which packet before the handshake is
 * confirmed. */
enum proto_quic_close_rule {
	/* RFC 9000 10.2.3: in every packet space the peer may be able to
	 * read (Initial if its keys are held, Handshake, and 1-RTT); an
	 * application close is sent as 0x1c APPLICATION_ERROR in Initial and
	 * Handshake packets. */
	PROTO_QUIC_CLOSE_RFC = 0,
	/* MsQuic before PR 4169: one close at the current write-key level;
	 * with 1-RTT write keys that is a 0x1d in a 1-RTT packet even when
	 * the peer cannot read 1-RTT yet. */
	PROTO_QUIC_CLOSE_WRITE_KEY,
};

/* What a receiver does with a packet it cannot decrypt yet (keys not
 * available) or must not process yet (1-RTT at a server before the
 * handshake completes): RFC 9001 5.7 allows either. */
enum proto_quic_early_packet {
	PROTO_QUIC_EARLY_BUFFER = 0, /* keep a few, process them later */
	PROTO_QUIC_EARLY_DROP,
};

/* How the client's certificate check waits for the application. */
enum proto_quic_verify {
	PROTO_QUIC_VERIFY_SYNC = 0, /* the built-in verdict, no event */
	/* BoringSSL's ssl_verify_retry: the TLS handshake pauses at the
	 * server's Certificate until validation_complete. */
	PROTO_QUIC_VERIFY_ASYNC,
	/* MsQuic's deferred validation: the TLS handshake runs on (1-RTT
	 * keys are installed) but the client's final flight (its Finished)
	 * is held until validation_complete. */
	PROTO_QUIC_VERIFY_DEFERRED,
};

typedef struct proto_quic_config {
	int is_server;
	const char *name; /* SNI and the name verified */
	const proto_pki_chain *chain;
	int send_chain, cached_intermediate;
	sim_time aia_fetch_ns; /* as proto_tls_config's; -1 never */
	enum proto_quic_verify verify;
	enum proto_quic_close_rule close_rule;
	enum proto_quic_early_packet early_packet;
	int shutdown_front;        /* shutdown queued at the front (MsQuic) */
	uint64_t app_error_in_initial; /* error code of a converted application
					  close: 0x0c APPLICATION_ERROR (RFC),
					  MsQuic sends 0x0b */
	int no_coalesce;               /* one QUIC packet per datagram */
	sim_time idle_timeout_ns;      /* transport parameter (default 30 s) */
	sim_time handshake_timeout_ns; /* before the handshake completes
					  (default 10 s, MsQuic's) */
	sim_time max_ack_delay_ns;     /* default 25 ms */
	uint64_t initial_max_data, initial_max_stream_data;
	uint64_t max_stream_bytes;     /* bytes kept for proto_quic_received */
	uint64_t key_update_every;     /* initiate a key update once this many
					  1-RTT packets went out with the
					  current write keys, as soon as it
					  is allowed (0: never) */
	int64_t epoch_ns;
} proto_quic_config;

/* proto_quic_config_default: the RFC-correct policies, shutdown at the
 * tail, idle 30 s, handshake timeout 10 s, max_ack_delay 25 ms, 1 MiB
 * flow-control windows, 2026-01-01 epoch. */
void proto_quic_config_default(proto_quic_config *c, int is_server);

extern const sim_ep_class proto_quic_client_class;
extern const sim_ep_class proto_quic_server_class;

/* proto_quic_make is the sim_ep_new "make" function; |arg| is a
 * const proto_quic_config * (copied; |name| copied, |chain| borrowed). */
void *proto_quic_make(const sim_ep_env *env, void *arg, char *err,
		      size_t errlen);

typedef struct proto_quic_info {
	const char *state;   /* see proto_quic_state names */
	const char *close_reason; /* "" while open */
	sim_time connected_ns, confirmed_ns, closed_ns; /* -1: not yet */
	sim_time close_sent_ns, close_received_ns;       /* -1: not yet */
	uint64_t close_error; int close_app; uint64_t close_frame; /* last
						 CONNECTION_CLOSE received */
	int verify_error;
	uint64_t packets_sent, packets_received, packets_dropped,
	    packets_buffered, packets_lost, bytes_sent, bytes_received;
	uint64_t crypto_bytes_sent; /* handshake bytes BoringSSL gave us to
				       send, all levels */
	uint64_t stream_bytes_received;
	int stream_fin_received;
	sim_time srtt_ns;
	int key_phase;            /* Key Phase bit of our 1-RTT write keys */
	uint64_t key_updates;     /* times our write keys moved on a phase */
	uint64_t key_updates_initiated; /* of which we initiated */
	uint64_t old_phase_packets; /* 1-RTT packets decrypted with the
				       previous phase's read keys */
} proto_quic_info;

void proto_quic_get_info(const void *impl, proto_quic_info *out);

/* proto_quic_received returns stream 0's bytes received so far. */
const uint8_t *proto_quic_received(const void *impl, size_t *len);

#endif

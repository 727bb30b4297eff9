/* proto/echo.h: a datagram ping/echo pair with retransmission.
 *
 * The test endpoint that exercises the engine before the TLS and QUIC
 * endpoints: the client sends |count| pings, one every |interval_ns|; each
 * is retransmitted after an RTO that doubles per attempt, up to
 * |max_retries| times. The server answers each ping with a pong carrying
 * the same sequence number. Both are pure state machines (sim/ep.h).
 *
 * Wire format (all big-endian): "PING" or "PONG", u32 seq, u32 attempt,
 * zero padding to |size| bytes, then a u32 FNV-1a checksum of the rest.
 * A packet with a bad checksum is counted and ignored ("corrupt" event).
 *
 * Client API: "start", "close". Server API: "close".
 * Client events: echo {seq, attempt, rtt_ns}, retransmit {seq, attempt},
 * corrupt {len}, done {echoed, retransmits}, failed {seq, attempts}, closed.
 * Server events: ping {seq, attempt}, corrupt {len}, closed. */
#ifndef TLSIM_PROTO_ECHO_H
#define TLSIM_PROTO_ECHO_H

#include <stdint.h>

#include "sim/ep.h"

typedef struct proto_echo_config {
	uint32_t count;       /* pings to send (client) */
	sim_time interval_ns; /* between first transmissions */
	sim_time rto_ns;      /* initial retransmission timeout */
	uint32_t max_retries; /* retransmissions per ping before failing */
	uint32_t size;        /* datagram size, >= 16 */
} proto_echo_config;

/* proto_echo_config_default: 10 pings, 10ms apart, 200ms RTO, 5 retries,
 * 64 bytes. */
void proto_echo_config_default(proto_echo_config *c);

/* proto_echo_config_check returns NULL or a message naming the bad field. */
const char *proto_echo_config_check(const proto_echo_config *c);

extern const sim_ep_class proto_echo_client_class;
extern const sim_ep_class proto_echo_server_class;

/* proto_echo_make_client / proto_echo_make_server are sim_ep_new "make"
 * functions; |arg| is a const proto_echo_config *. */
void *proto_echo_make_client(const sim_ep_env *env, void *arg, char *err,
			     size_t errlen);
void *proto_echo_make_server(const sim_ep_env *env, void *arg, char *err,
			     size_t errlen);

/* Client statistics. */
typedef struct proto_echo_stats {
	uint32_t sent, echoed, retransmits, corrupt, duplicates;
	sim_time rtt_min_ns, rtt_max_ns, rtt_sum_ns;
} proto_echo_stats;
void proto_echo_get_stats(const void *impl, proto_echo_stats *out);

#endif

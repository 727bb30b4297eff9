/* sim/packet.h: a datagram or segment on a simulated link. */
#ifndef TLSIM_SIM_PACKET_H
#define TLSIM_SIM_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "sim/time.h"

#define SIM_PACKET_INFO_MAX 128
#define SIM_PACKET_SUBS_MAX 8

/* A protocol packet inside a datagram (QUIC coalesces several), described
 * by the sender for the trace: each becomes its own packet row with the
 * datagram as parent. */
typedef struct sim_packet_sub {
	int64_t id;   /* assigned by the link with the datagram's */
	char ptype[16];
	char space[12];
	int64_t pn;   /* -1 none */
	int key_phase; /* a QUIC short-header (1-RTT) packet's Key Phase bit,
			  0 or 1; -1 for any other packet */
	size_t len;
	char frames[SIM_PACKET_INFO_MAX];
	char hs_state[64];
} sim_packet_sub;

typedef struct sim_packet {
	int64_t id;      /* assigned by the link at submit, unique per run */
	int64_t dup_of;  /* id of the original for a duplicate, else -1 */
	sim_time sent_ns;
	size_t len;
	uint8_t *data;   /* owned by the packet */
	/* Filled by the sender for the trace and for fault predicates. */
	const char *proto;              /* static string: echo, tcp, quic */
	char info[SIM_PACKET_INFO_MAX]; /* e.g. "ping seq=3" or frame list */
	char ptype[16];                 /* protocol packet type */
	char hs_state[64];              /* sender's handshake state, or "" */
	sim_packet_sub *subs;           /* owned; NULL when nsubs == 0 */
	int nsubs;
} sim_packet;

/* sim_packet_add_sub appends a copy of |sub| to |p| (at most
 * SIM_PACKET_SUBS_MAX). Returns 0, SIM_ELIMIT or SIM_ENOMEM. */
int sim_packet_add_sub(sim_packet *p, const sim_packet_sub *sub);

/* sim_packet_new allocates a packet holding a copy of |len| bytes of
 * |data| (which may be NULL to leave them zeroed). Returns NULL on
 * allocation failure. */
sim_packet *sim_packet_new(const void *data, size_t len);

/* sim_packet_clone copies |p| (bytes, metadata and subs). */
sim_packet *sim_packet_clone(const sim_packet *p);

/* sim_packet_del frees |p|; sim_packet_del(NULL) is a no-op. */
void sim_packet_del(sim_packet *p);

#endif

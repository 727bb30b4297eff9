/* sim/packet.h: a datagram or segment on a simulated link. */
#ifndef TLSIM_SIM_PACKET_H
#define TLSIM_SIM_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "sim/time.h"

#define SIM_PACKET_INFO_MAX 128

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
} sim_packet;

/* sim_packet_new allocates a packet holding a copy of |len| bytes of
 * |data| (which may be NULL to leave them zeroed). Returns NULL on
 * allocation failure. */
sim_packet *sim_packet_new(const void *data, size_t len);

/* sim_packet_clone copies |p| (bytes and metadata). */
sim_packet *sim_packet_clone(const sim_packet *p);

/* sim_packet_del frees |p|; sim_packet_del(NULL) is a no-op. */
void sim_packet_del(sim_packet *p);

#endif

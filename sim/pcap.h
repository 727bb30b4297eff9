/* sim/pcap.h: exporting a recorded run as a pcapng capture (`tlsim pcap`).
 *
 * The packet rows of one run become Enhanced Packet Blocks of raw IPv4
 * (LINKTYPE_RAW): QUIC datagrams and echo datagrams as UDP, the TLS
 * stream's segments as TCP. Nothing but the trace is read; the output is a
 * pure function of the run's rows (the same trace gives the same bytes).
 *
 * Addresses and ports (fixed, per endpoint node; docs: README "tlsim
 * pcap"): client nodes (kind "*_client") get 10.0.0.1, 10.0.0.3, ... and
 * server nodes ("*_server") 10.0.0.2, 10.0.0.4, ... in node id order; any
 * other node the next free address after them. TCP ports are the
 * segment's own (49152 -> 443); UDP is 49152 at a client, 443 at a QUIC
 * server, 7 at an echo server. The IPv4 identification is the packet id
 * (a link's duplicate keeps its original's), TTL 64, DF set.
 *
 * Checksums: the IPv4 header and UDP checksums are computed. A TCP segment
 * is written as the stream wrote it when its checksum is right for the
 * synthesized pseudo-header, which it is for one client/server pair
 * (proto/stream.c sums over 10.0.0.1 and 10.0.0.2); otherwise it is
 * recomputed (sim_pcap_stats.tcp_recomputed counts them).
 *
 * Capture point (sim_pcap_opts.at):
 *   SIM_PCAP_AT_RECEIVER: every copy that reaches its receiver before the
 *     run ended, at its delivery time, in the order the receivers got them
 *     (delivery time, then the order of their "recv" operations): lost
 *     packets are left out, a link's duplicates are in.
 *   SIM_PCAP_AT_SENDER: every packet the endpoints handed to a link, at
 *     its send time, in the order they were handed over (packet id), lost
 *     ones included; a link's duplicates are left out (the sender sent
 *     one).
 * Each packet carries an opt_comment: the tlsim packet id, link, ends,
 * both times, fate and reason (loss, "copy of N", corruption), and the
 * packet row's type and frames (for QUIC each coalesced packet's type,
 * number and frames).
 *
 * Secrets: every NSS key log line of the run's tls rows (events "keys"
 * and "keylog"), once each in first-seen order, goes into a Decryption
 * Secrets Block (TLS key log) before the first packet, so Wireshark
 * decrypts with the file alone, and optionally into a key log file. */
#ifndef TLSIM_SIM_PCAP_H
#define TLSIM_SIM_PCAP_H

#include <stddef.h>
#include <stdint.h>

enum sim_pcap_at {
	SIM_PCAP_AT_RECEIVER = 0,
	SIM_PCAP_AT_SENDER,
};

typedef struct sim_pcap_opts {
	const char *trace_path;  /* required */
	int64_t run_id;          /* 0: the trace's only run */
	const char *out_path;    /* the pcapng file (required) */
	const char *keylog_path; /* also write the key log here; may be NULL */
	enum sim_pcap_at at;
} sim_pcap_opts;

typedef struct sim_pcap_stats {
	int64_t run_id;          /* the run exported */
	uint64_t packets;        /* Enhanced Packet Blocks written */
	uint64_t lost;           /* receiver: lost packets left out; sender:
				    lost packets written (with a comment) */
	uint64_t in_flight;      /* receiver: still in flight when the run
				    ended, left out */
	uint64_t duplicates;     /* receiver: link duplicates written; sender:
				    left out */
	uint64_t corrupted;      /* written with a comment, bytes as sent */
	uint64_t other;          /* rows of other protocols or too big for
				    IPv4, left out */
	uint64_t tcp_recomputed; /* TCP checksums recomputed */
	uint64_t keylog_lines;   /* distinct key log lines */
} sim_pcap_stats;

/* sim_pcap_export writes run |o->run_id| of the trace |o->trace_path| (read
 * only, never modified) to |o->out_path| and, with |o->keylog_path|, the
 * key log. Each output is written to a temporary file next to it and
 * renamed into place only when complete, so a failure never leaves a
 * half-written file (and leaves an existing one untouched). Returns 0, or
 * a SIM_E* code with a one-line message naming the file or run in |err|:
 * SIM_ENOENT, SIM_ENOTTRACE, SIM_ESCHEMA, SIM_ECORRUPT, SIM_EBUSY (the
 * trace, as sim_trace_open_readonly); SIM_EINVAL (no such run, no --run
 * for a trace of several runs, a run with no packet rows, an output that
 * is the trace or the other output); SIM_EPERM / SIM_EIO / SIM_EFULL (an
 * output cannot be written); SIM_ENOMEM; SIM_ELIMIT (more than
 * SIM_PCAP_MAX_NODES nodes or links). |st| (may be NULL) gets counts. */
int sim_pcap_export(const sim_pcap_opts *o, sim_pcap_stats *st, char *err,
		    size_t errlen);

#define SIM_PCAP_MAX_NODES 100000

/* sim_pcap_usage is the text of `tlsim pcap --help`. */
extern const char sim_pcap_usage[];

#endif

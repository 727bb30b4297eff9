/* proto/stream.h: a reliable byte stream over the lossy link, for TLS.
 *
 * A pure state machine in the shape of the other proto/ modules: it takes
 * segments and |now| in, gives segments and its next deadline out, and
 * reads no clock. It is TCP-shaped, not TCP: connect/accept with SYN and
 * SYN-ACK, 32-bit sequence numbers, cumulative ACKs (an ACK for every
 * segment that carries data, a SYN or a FIN), a retransmission timeout with
 * exponential backoff (go-back-N from the oldest unacknowledged byte), FIN
 * half-close, RST, a bounded send buffer and a fixed send window. No
 * congestion control, no SACK, no delayed ACKs, no TIME_WAIT.
 *
 * Loss and reordering on the link become delay and retransmission, never
 * corrupted or reordered bytes for the owner: out-of-order segments are
 * kept (within the advertised window, so at most 65535 bytes; beyond it
 * they are dropped) and delivered in order, duplicates are dropped (the
 * first copy of a byte wins), bytes after the peer's FIN are ignored, and
 * every segment carries a CRC-32C of the whole segment (header and
 * payload) as well as the real TCP checksum, so a corrupted segment is
 * discarded (and counted) rather than delivered.
 *
 * Wire format: a real TCP header (RFC 9293) with one option, followed by
 * the payload, so that a pcap export only has to add an IPv4 header. The
 * TCP checksum covers the IPv4 pseudo-header of PROTO_STREAM_ADDR_A/B (the
 * config says which address is local). Windows are in bytes, capped at
 * 65535 (no window scaling).
 *
 * Layout (big-endian), PROTO_STREAM_HDR = 28 bytes:
 *   0  u16 src port        2  u16 dst port
 *   4  u32 seq             8  u32 ack
 *  12  u8  data offset<<4 (7 words = 28 bytes)   13 u8 flags
 *  14  u16 window         16  u16 TCP checksum    18 u16 urgent (0)
 *  20  u8 253 (experimental option kind)  21 u8 8 (option length)
 *  22  u16 0x7453 (ExID "tS")  24 u32 CRC-32C of the segment with bytes
 *      16..17 and 24..27 taken as zero
 *
 * The owner is told what happened through callbacks; it pulls segments with
 * proto_stream_output until NULL after every call that may have produced
 * some (input, timeout, send, close_write, abort, connect). */
#ifndef TLSIM_PROTO_STREAM_H
#define TLSIM_PROTO_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "sim/packet.h"
#include "sim/time.h"

#define PROTO_STREAM_HDR 28
/* IPv4 addresses used for the checksum pseudo-header (and by pcap export):
 * 10.0.0.1 for side a, 10.0.0.2 for side b. */
#define PROTO_STREAM_ADDR_A 0x0a000001u
#define PROTO_STREAM_ADDR_B 0x0a000002u

typedef struct proto_stream proto_stream;

typedef struct proto_stream_config {
	uint16_t local_port, remote_port;
	uint32_t local_addr, remote_addr; /* PROTO_STREAM_ADDR_A/B */
	uint32_t isn;            /* initial send sequence number */
	uint32_t mss;            /* payload bytes per segment (default 1400) */
	uint32_t sndbuf;         /* send buffer bytes (default 262144) */
	uint32_t window;         /* bytes in flight at most (default 65535),
				    also the peer's window; this side
				    advertises min(window, 65535) */
	sim_time rto_initial_ns; /* default 200 ms */
	sim_time rto_max_ns;     /* backoff cap, default 60 s */
	uint32_t max_retries;    /* retransmissions without progress: the
				    (max_retries + 1)th consecutive timeout
				    gives up with error "timeout" (default 8) */
	/* Segmentation control: a segment never spans one of these byte
	 * offsets of the data sent (0-based, ascending, up to
	 * PROTO_STREAM_SPLITS_MAX), so the bytes reach the peer cut there. */
	uint32_t nsplit;
	uint64_t split_at[16];
} proto_stream_config;
#define PROTO_STREAM_SPLITS_MAX 16

/* proto_stream_config_default fills |c| with the defaults above, ports
 * 49152 -> 443, addresses a -> b, isn 0. */
void proto_stream_config_default(proto_stream_config *c);

/* proto_stream_config_check returns NULL, or a static message naming the
 * bad field (mss 0 or above 65000, sndbuf 0 or above 1 GiB, window 0,
 * rto_initial <= 0, rto_max < rto_initial or above 1 day, max_retries
 * above 30). */
const char *proto_stream_config_check(const proto_stream_config *c);

/* Callbacks, all optional (NULL: ignored). They run inside the stream call
 * that caused them; they may call proto_stream_send / close_write / abort
 * but must not delete the stream. */
typedef struct proto_stream_callbacks {
	/* connected: the three-way handshake completed (both sides). */
	void (*connected)(void *user_data, sim_time now);
	/* recv: |len| > 0 new in-order bytes from the peer. */
	void (*recv)(void *user_data, sim_time now, const uint8_t *data,
		     size_t len);
	/* fin: the peer's FIN, after all its bytes were delivered. */
	void (*fin)(void *user_data, sim_time now);
	/* reset: an acceptable RST arrived; the stream is in "reset". */
	void (*reset)(void *user_data, sim_time now);
	/* error: the stream gave up: |why| is "timeout" (see max_retries;
	 * for the SYN, data or FIN); the stream is in "failed". */
	void (*error)(void *user_data, sim_time now, const char *why);
	/* acked_all: everything queued with send and close_write so far has
	 * been acknowledged by the peer (useful for a graceful close). */
	void (*acked_all)(void *user_data, sim_time now);
} proto_stream_callbacks;

/* proto_stream_new returns a new stream in state "closed", or NULL on a bad
 * config (see proto_stream_config_check) or allocation failure. */
proto_stream *proto_stream_new(const proto_stream_config *cfg,
			       const proto_stream_callbacks *cb,
			       void *user_data);

/* proto_stream_del frees |s|; proto_stream_del(NULL) is a no-op. */
void proto_stream_del(proto_stream *s);

/* proto_stream_connect sends a SYN (active open). proto_stream_listen makes
 * the stream accept the first SYN for its port (passive open). Both return
 * 0, or SIM_ESTATE if the stream is not in state "closed". */
int proto_stream_connect(proto_stream *s, sim_time now);
int proto_stream_listen(proto_stream *s);

/* proto_stream_send queues up to |len| bytes; returns how many fit in the
 * send buffer (0 when full), or SIM_ESTATE if the stream cannot send (not
 * yet open for sending is fine while connecting: bytes wait for the
 * handshake; after close_write, abort, a reset or an error it is
 * SIM_ESTATE). */
int64_t proto_stream_send(proto_stream *s, sim_time now, const void *data,
			  size_t len);

/* proto_stream_label names what data bytes [from, to) (0-based offsets of
 * the data sent) carry, e.g. "Finished": the data segments that carry any
 * of them say so in their description (" tls=ClientHello,..."), which the
 * trace's frames column and link fault rules see, each name once, in the
 * order labelled. A label that continues the last one (same name, |from|
 * its end) extends it. The range may lie beyond the data sent so far. Old
 * labels are forgotten as newer ones come (at most
 * PROTO_STREAM_LABELS_MAX). */
#define PROTO_STREAM_LABELS_MAX 64
void proto_stream_label(proto_stream *s, uint64_t from, uint64_t to,
			const char *label);

/* proto_stream_split adds |off| (a 0-based data offset) to the offsets a
 * segment never spans (config split_at), keeping them ascending; one
 * already there is a no-op. Bytes already segmented are not cut again.
 * Returns 0 or SIM_ELIMIT (PROTO_STREAM_SPLITS_MAX offsets). */
int proto_stream_split(proto_stream *s, uint64_t off);

/* proto_stream_sndbuf_free returns the free bytes in the send buffer. */
size_t proto_stream_sndbuf_free(const proto_stream *s);

/* proto_stream_close_write queues a FIN after the queued bytes (half
 * close); like send, it may come before or during the handshake.
 * Idempotent; SIM_ESTATE after abort, a reset or an error. */
int proto_stream_close_write(proto_stream *s, sim_time now);

/* proto_stream_close is close(2) on the socket: before the peer's SYN
 * arrived ("syn_sent") the connection attempt is abandoned, queued bytes
 * are discarded, nothing more is sent (not even a SYN retransmission) and
 * the stream is "closed" (RFC 9293 3.10.4, CLOSE in SYN-SENT); in any other
 * state it is proto_stream_close_write. */
int proto_stream_close(proto_stream *s, sim_time now);

/* proto_stream_abort sends a RST (if the stream ever sent or received a
 * SYN) and moves to "reset"; queued bytes are discarded. On a "closed" or
 * "listen" stream it only returns it to "closed"; on a "reset" or "failed"
 * one it does nothing. The RST carries the highest sequence number sent
 * and, once the peer's SYN is known, an ACK. */
void proto_stream_abort(proto_stream *s, sim_time now);

/* proto_stream_input processes one received segment. Malformed, corrupted
 * (CRC or checksum), wrong-port and unacceptable segments are discarded and
 * counted (see proto_stream_stats); nothing the peer sends can crash it.
 * Segments reaching a "closed", "reset" or "failed" stream are ignored;
 * "done" still acknowledges a retransmitted FIN. */
void proto_stream_input(proto_stream *s, sim_time now, const uint8_t *seg,
			size_t len);

/* proto_stream_output returns the next segment to send (the caller owns
 * it), or NULL when there is nothing to send (or on allocation failure).
 * Segments are made on demand from the stream's state: a pending RST or
 * forged segment first, then the SYN or SYN-ACK, then data and FIN within
 * the window, then a pending ACK. The packet has proto "tcp", ptype one
 * of "SYN", "SYN-ACK", "ACK" (no payload, no FIN), "DATA" (payload),
 * "DATA-FIN", "FIN" (a FIN without payload) and "RST", and info
 * "seq=S ack=A len=L" with relative sequence numbers (S from this side's
 * ISN, A from the peer's, 0 without the ACK flag; the SYN is 0, so stream
 * byte i is at i + 1) plus " rtx" for a retransmission and " forged" for
 * a forged segment. */
sim_packet *proto_stream_output(proto_stream *s, sim_time now);

/* proto_stream_expiry returns the next retransmission deadline, or
 * SIM_TIME_MAX. proto_stream_timeout handles it (a no-op before it): it
 * doubles the RTO (up to rto_max_ns) and goes back to the oldest
 * unacknowledged byte (go-back-N), or gives up (see max_retries). After a
 * timeout one segment is in flight until an ACK of new data, which resets
 * the RTO to rto_initial_ns and reopens the window (resending a whole
 * window into a lossy path at every timeout wastes it, and a periodic
 * loss pattern can then hit the oldest segment every time). */
sim_time proto_stream_expiry(const proto_stream *s);
void proto_stream_timeout(proto_stream *s, sim_time now);

/* proto_stream_state returns one of "closed", "listen", "syn_sent",
 * "syn_received", "established", "fin_wait" (close_write called, peer's
 * FIN not yet delivered), "close_wait" (peer's FIN delivered, close_write
 * not called), "closing" (both, ours not yet acknowledged), "done" (both
 * FINs exchanged and ours acknowledged), "reset" (RST sent or received),
 * "failed" (gave up). */
const char *proto_stream_state(const proto_stream *s);

/* Attacks: an on-path attacker forging segments as if they came from this
 * stream's side, toward its peer.
 *
 * proto_stream_forge queues a forged FIN (|kind| "fin") or RST ("rst")
 * carrying this side's highest sequence number sent so far (its next new
 * one, which is what an observer of the wire sees) and a correct ACK, to
 * go out with the next proto_stream_output, marked " forged". This side's
 * own state does not change (it did not send it). Returns 0, SIM_EINVAL
 * for a bad kind, SIM_ESTATE unless the stream is in "syn_received" or
 * later (and not reset or failed), SIM_ELIMIT if one is already queued.
 *
 * proto_stream_cut arms a truncation attack at payload byte |offset| of
 * this side's outgoing stream: bytes before |offset| go out normally; the
 * segment that would carry byte |offset| is trimmed there and followed by
 * a forged FIN or RST (|kind|) at |offset|; every later payload byte this
 * side sends (including retransmissions) is silently blackholed, as by an
 * attacker on the path (this side's own FIN too). The forged segment goes
 * out again whenever this side resends the segment that would carry byte
 * |offset|, so it survives loss. The receiver's ACK of the forged FIN
 * looks to this side like an ACK of byte |offset|; this side keeps
 * resending the rest until it gives up. Returns 0, or SIM_EINVAL for a
 * bad kind, or SIM_ESTATE if |offset| has already been sent. */
int proto_stream_forge(proto_stream *s, sim_time now, const char *kind);
int proto_stream_cut(proto_stream *s, uint64_t offset, const char *kind);

/* Counters. segs_sent counts segments returned by output (forged ones
 * too; not those a cut blackholed); segs_received every input call.
 * retransmits counts segments resent (SYN, data, FIN); bytes_sent stream
 * bytes sent for the first time; bytes_received bytes delivered.
 * dropped_malformed: too short or long, bad data offset or option, wrong
 * ports, SYN with FIN or RST, no ACK flag after the handshake;
 * dropped_corrupt: bad checksum or CRC-32C; dropped_duplicate: nothing new
 * (and retransmitted SYNs); dropped_out_of_window: beyond the receive
 * window or the peer's FIN, an ACK of unsent data, an unacceptable RST or
 * SYN-ACK; ooo_buffered: segments kept ahead of a gap; forged: forged
 * segments sent. */
typedef struct proto_stream_stats {
	uint64_t segs_sent, segs_received, retransmits, timeouts;
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint64_t dropped_corrupt, dropped_malformed, dropped_duplicate,
	    dropped_out_of_window, ooo_buffered, forged;
} proto_stream_stats;

/* proto_stream_get_stats copies the counters to |out|. */
void proto_stream_get_stats(const proto_stream *s, proto_stream_stats *out);

/* proto_stream_seal writes the CRC-32C and the TCP checksum into the
 * segment |b| (|len| >= PROTO_STREAM_HDR bytes) as the side configured by
 * |c| sends it. proto_stream_sealed returns 1 if both are right for the
 * side configured by |c| receiving |b|, else 0 (|len| >= PROTO_STREAM_HDR).
 * For tests that build or alter segments by hand. */
void proto_stream_seal(const proto_stream_config *c, uint8_t *b, size_t len);
int proto_stream_sealed(const proto_stream_config *c, const uint8_t *b,
			size_t len);

/* proto_stream_crc32c returns the CRC-32C (Castagnoli) of |len| bytes. */
uint32_t proto_stream_crc32c(const void *data, size_t len);

#endif

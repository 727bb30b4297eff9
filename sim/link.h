/* sim/link.h: a bidirectional simulated link between two endpoints.
 *
 * Each direction has its own parameters and its own RNG streams (named
 * "link/<name>/<src>-><dst>/<fault>"), so a fault on one direction never
 * shifts the other's draws. Order of processing for a submitted packet:
 *   1. scripted faults: partition/blackhole interval, drop the Nth,
 *      predicate filter (drop / delay / pass);
 *   2. MTU: a packet longer than mtu is dropped;
 *   3. loss: Bernoulli, or Gilbert-Elliott when enabled;
 *   4. bandwidth: serialization delay behind a bounded queue (tail drop);
 *   5. latency + uniform jitter in [0, jitter];
 *   6. reorder: with probability p, extra delay reorder_delay_ns;
 *   7. corruption: with probability p, flip corrupt_bits random bits;
 *   8. duplication: with probability p, a copy delivered 1 to jitter ns
 *      after the original (1 us without jitter).
 * Every submitted packet (and every duplicate) is one packet row whose fate
 * and reason say what happened.
 *
 * The link owns what it is given: after sim_link_submit it frees a dropped
 * packet or hands it to the receiver's deliver callback, which then owns
 * it. */
#ifndef TLSIM_SIM_LINK_H
#define TLSIM_SIM_LINK_H

#include <stdint.h>

#include "sim/packet.h"
#include "sim/time.h"
#include "sim/world.h"

typedef struct sim_link sim_link;

typedef struct sim_link_params {
	sim_time latency_ns;
	sim_time jitter_ns;     /* uniform extra delay in [0, jitter] */
	double loss;            /* Bernoulli loss probability */
	/* Gilbert-Elliott: when ge_enabled, loss comes from a two-state
	 * chain: good->bad with p_gb, bad->good with p_bg per packet, loss
	 * probability loss_good / loss_bad in each state. */
	int ge_enabled;
	double ge_p_gb, ge_p_bg, ge_loss_good, ge_loss_bad;
	double dup;             /* duplication probability */
	double reorder;         /* probability of extra delay */
	sim_time reorder_delay_ns;
	double corrupt;         /* probability of bit flips */
	int corrupt_bits;       /* bits flipped per corrupted packet (>=1) */
	uint64_t bandwidth_bps; /* 0: unlimited */
	uint64_t queue_bytes;   /* bottleneck queue size; 0: unbounded */
	uint32_t mtu;           /* 0: unlimited */
} sim_link_params;

/* sim_link_params_default fills |p| with an ideal link: 0 latency, no
 * faults, no MTU, unlimited bandwidth. */
void sim_link_params_default(sim_link_params *p);

/* sim_link_params_check returns NULL if |p| is valid, else a static
 * message naming the bad field (e.g. "loss must be in [0, 1]"). */
const char *sim_link_params_check(const sim_link_params *p);

/* sim_link_deliver_fn receives a packet; the callee owns |pkt|. */
typedef void (*sim_link_deliver_fn)(void *user_data, sim_packet *pkt);

/* Filter verdicts for scripted predicate faults. */
enum sim_link_verdict {
	SIM_LINK_PASS = 0,
	SIM_LINK_DROP,
	SIM_LINK_DELAY,
};

/* sim_link_filter_fn is called for each packet submitted in direction
 * |dir| (0: a->b, 1: b->a) before the random faults. It returns a verdict
 * and, for SIM_LINK_DELAY, sets |*delay_ns|. |reason| (64 bytes) may be
 * filled with a short reason for the trace. */
typedef enum sim_link_verdict (*sim_link_filter_fn)(void *user_data,
						    const sim_packet *pkt,
						    int dir,
						    sim_time *delay_ns,
						    char *reason);

/* sim_link_new creates a link named |name| in |w|. Both directions start
 * with |params| (validated with sim_link_params_check; NULL for ideal).
 * Returns NULL on allocation failure or invalid params. */
sim_link *sim_link_new(sim_world *w, const char *name,
		       const sim_link_params *params);

/* sim_link_del frees |l| and every packet still in flight. Pending delivery
 * events are cancelled. sim_link_del(NULL) is a no-op. */
void sim_link_del(sim_link *l);

/* sim_link_set_params sets direction |dir|'s parameters (0: a->b, 1: b->a).
 * Returns 0 or SIM_EINVAL. */
int sim_link_set_params(sim_link *l, int dir, const sim_link_params *p);

/* sim_link_attach connects side |side| (0: a, 1: b) to endpoint node
 * |node| (a sim_sched node id); packets sent towards that side are given
 * to |deliver|. */
void sim_link_attach(sim_link *l, int side, int node,
		     sim_link_deliver_fn deliver, void *user_data);

/* sim_link_submit sends |pkt| from side |from_side|. Takes ownership of
 * |pkt|; assigns pkt->id. Returns the packet id, or a negative SIM_E* code
 * (the packet is then freed). */
int64_t sim_link_submit(sim_link *l, int from_side, sim_packet *pkt);

/* Scripted faults. Directions: 0 a->b, 1 b->a, -1 both. */

/* sim_link_partition drops every packet submitted in [from, to). */
int sim_link_partition(sim_link *l, int dir, sim_time from, sim_time to);

/* sim_link_drop_nth drops the |n|th packet (1-based) submitted in |dir|. */
int sim_link_drop_nth(sim_link *l, int dir, uint64_t n);

/* sim_link_set_deadlines gives the link the named timer deadlines of the
 * endpoint on side |side| (for SIM_FAULT_ACT_AT_TIMER); sim/ep.c sets it
 * when it attaches an endpoint. */
typedef sim_time (*sim_link_deadline_fn)(void *user_data, const char *name);
void sim_link_set_deadlines(sim_link *l, int side, sim_link_deadline_fn fn,
			    void *user_data);

/* sim_link_set_filter installs a predicate filter for both directions
 * (NULL removes it). */
void sim_link_set_filter(sim_link *l, sim_link_filter_fn fn, void *user_data);

/* Protocol-aware faults: rules that select packets by what they are and
 * act on them, checked in order after the partitions and drop_nth (first
 * match wins; a rule that has used up its count no longer matches). A
 * field left empty / -1 matches anything: a rule made without all fields
 * set must set pn and key_phase to -1. */
enum sim_fault_action {
	SIM_FAULT_ACT_DROP = 0,
	SIM_FAULT_ACT_DELAY,   /* deliver delay_ns later */
	SIM_FAULT_ACT_DUP,     /* and a copy delay_ns (default 1 us) after it */
	SIM_FAULT_ACT_CORRUPT, /* flip |bits| bits (its own RNG stream) */
	SIM_FAULT_ACT_REORDER, /* hold it until |behind| later packets in its
				  direction have left, then deliver it 1 ns
				  after the last of them */
	SIM_FAULT_ACT_AT_TIMER, /* deliver it at an endpoint's named timer
				   deadline plus |offset_ns| (as the timer
				   stands when the packet is sent; never
				   earlier than it would arrive anyway) */
};

typedef struct sim_fault_rule {
	char name[64];     /* the packet row's reason: "fault:NAME" */
	int dir;           /* 0 a->b, 1 b->a, -1 both */
	char from[64];     /* sender endpoint's node name */
	char proto[16];    /* echo, tcp, quic */
	char type[16];     /* datagram or any packet inside: initial, ... */
	char space[12];    /* QUIC number space of a packet inside */
	int64_t pn;        /* QUIC packet number of a packet inside */
	int64_t byte;      /* TCP: a segment whose data holds this offset of
			      the sender's byte stream (0-based); -1 any */
	int key_phase;     /* Key Phase bit (0 or 1) of a short-header QUIC
			      packet inside (sim_packet_sub.key_phase); -1
			      any */
	char frame[32];    /* a frame type inside (e.g. CRYPTO, ACK) */
	char info[64];     /* a text in the sender's description (TCP: SYN,
			      FIN, RST, seq=100 ...) */
	char tls[24];      /* TLS over the stream: a message the segment
			      carries bytes of (ClientHello, Finished,
			      NewSessionTicket, close_notify, alert...) */
	sim_time after_ns, before_ns; /* send time window [after, before) */
	uint64_t nth;      /* only the nth matching packet (1-based); 0 all */
	uint64_t count;    /* at most this many actions; 0 unlimited */
	enum sim_fault_action action;
	sim_time delay_ns;
	int bits;
	uint64_t behind;
	char timer[16];    /* at_timer: "idle", "handshake", "pto"... */
	int timer_side;    /* at_timer: whose timer: 1 the receiver (default),
			      0 the sender */
	sim_time offset_ns; /* at_timer: signed */
	/* state */
	uint64_t matched, acted;
} sim_fault_rule;

/* sim_fault_rule_init sets |r| to a rule that selects every packet (the
 * "any" value of each field: dir, pn, byte, key_phase -1, no time window)
 * and drops it, named "drop"; set the fields wanted after it. */
void sim_fault_rule_init(sim_fault_rule *r);

/* sim_link_add_fault appends |r| (copied; its state is reset). Returns 0,
 * SIM_EINVAL or SIM_ELIMIT. */
int sim_link_add_fault(sim_link *l, const sim_fault_rule *r);

/* sim_link_has_faults: whether any fault rule was added (a sender that
 * fills packet metadata only for the trace must fill it for the rules
 * too: a rule's space and frame fields read it). */
int sim_link_has_faults(const sim_link *l);

/* Counters per direction, for tests and the summary. */
typedef struct sim_link_stats {
	uint64_t submitted, delivered, lost, duplicated, corrupted, reordered;
	uint64_t bytes_delivered;
} sim_link_stats;
void sim_link_get_stats(const sim_link *l, int dir, sim_link_stats *out);

/* sim_link_name returns the link's name. */
const char *sim_link_name(const sim_link *l);

#endif

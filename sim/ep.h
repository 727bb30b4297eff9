/* sim/ep.h: the glue between a protocol endpoint (proto/) and the engine.
 *
 * A proto/ endpoint is a pure state machine in the shape of ngtcp2: it takes
 * inputs with the current time (an API operation, a received packet, a
 * timer expiry), gives packets out when asked, and reports its next
 * deadline. It does no I/O and reads no clock. The glue (sim_ep) turns
 * everything that reaches the endpoint into an operation on its queue
 * (sim/opq.h), and after each operation sends the endpoint's output on its
 * link and re-arms its timer. Endpoint events (handshake done, data,
 * alerts...) go to the scenario through the glue's event callback, which may
 * answer (e.g. "pending" for an asynchronous certificate check). */
#ifndef TLSIM_SIM_EP_H
#define TLSIM_SIM_EP_H

#include <stdint.h>

#include "sim/link.h"
#include "sim/opq.h"
#include "sim/packet.h"
#include "sim/world.h"

#define SIM_EP_FIELDS_MAX 8

typedef struct sim_ep_field {
	const char *key;
	const char *s; /* string value, or NULL for an integer */
	size_t len;    /* bytes in |s| (binary-safe) */
	int bin;       /* |s| came from sim_ep_event_bytes */
	int64_t i;
} sim_ep_field;

/* An event from an endpoint to the scenario. All strings are borrowed for
 * the duration of the callback. */
typedef struct sim_ep_event {
	const char *name;
	int nfields;
	sim_ep_field f[SIM_EP_FIELDS_MAX];
} sim_ep_event;

/* Answers a scenario handler can give to an event. */
enum sim_ep_answer {
	SIM_EP_ANSWER_NONE = 0,
	SIM_EP_ANSWER_PENDING, /* "pending": completion comes later */
	SIM_EP_ANSWER_ACCEPT,  /* true */
	SIM_EP_ANSWER_REJECT,  /* false */
};

/* sim_ep_event_int / sim_ep_event_str append a field to |ev| (ignored past
 * SIM_EP_FIELDS_MAX). */
void sim_ep_event_int(sim_ep_event *ev, const char *key, int64_t v);
void sim_ep_event_str(sim_ep_event *ev, const char *key, const char *v);
/* sim_ep_event_format writes "NAME k=v k=v" for |ev| into |buf| (binary
 * fields as "<N bytes>") and returns |buf|. */
char *sim_ep_event_format(const sim_ep_event *ev, char *buf, size_t len);

/* sim_ep_event_bytes appends |len| bytes (binary-safe; borrowed). */
void sim_ep_event_bytes(sim_ep_event *ev, const char *key, const void *v,
			size_t len);

typedef struct sim_ep sim_ep;

/* What an endpoint may call back into the glue. */
typedef struct sim_ep_env {
	sim_ep *ep;
	sim_world *w;
	const char *name; /* the endpoint's node name */
} sim_ep_env;

/* sim_ep_emit sends |ev| to the scenario's handler and returns its answer.
 * Also writes a log row "event NAME k=v ...". */
int sim_ep_emit(sim_ep *ep, const sim_ep_event *ev);

/* sim_ep_packet_detail: whether packets |env|'s endpoint sends now need
 * their full metadata (frame summaries, number spaces, handshake state):
 * the run is traced, or the endpoint's link has fault rules, which select
 * by them. Behaviour must not depend on tracing, so a sender that skips
 * that work untraced asks this, never the trace alone. */
int sim_ep_packet_detail(const sim_ep_env *env);

/* sim_ep_post enqueues an internal operation on |ep|'s own queue (e.g. the
 * completion of an asynchronous job), with cause "async"/"op" and id. */
int64_t sim_ep_post(sim_ep *ep, const char *type, const char *cause_kind,
		    int64_t cause_id, const sim_op_args *args, int front);

/* The protocol side. Required members unless marked optional. */
typedef struct sim_ep_class {
	const char *kind; /* "echo_client", "tls_server"... */
	/* api_names: the API operation names, NULL-terminated; sim_ep_call
	 * accepts only these. */
	const char *const *api_names;
	/* api: run API operation |op| (op->type names it). */
	void (*api)(void *impl, sim_time now, sim_op *op);
	/* api_front: optional; 1 if API op |type| is queued at the front
	 * (the modelled stack's policy). Default: tail. */
	int (*api_front)(const void *impl, const char *type);
	/* input: a received packet; borrowed. */
	void (*input)(void *impl, sim_time now, const sim_packet *pkt);
	/* timeout: the deadline from expiry() has passed. */
	void (*timeout)(void *impl, sim_time now);
	/* output: the next packet to send (caller owns it), or NULL. */
	sim_packet *(*output)(void *impl, sim_time now);
	/* expiry: the next deadline, SIM_TIME_MAX for none. */
	sim_time (*expiry)(const void *impl);
	/* deadline: optional; the named timer's deadline ("idle",
	 * "handshake", "pto", "ack", "close" for QUIC; "handshake",
	 * "retransmit", "close_notify" for TLS), SIM_TIME_MAX when it is not armed or the
	 * name is unknown. For faults aimed at a timer's edge. */
	sim_time (*deadline)(const void *impl, const char *name);
	/* state: a short state name for the scenario ("handshaking",
	 * "closed"...). */
	const char *(*state)(const void *impl);
	/* del: free the endpoint. */
	void (*del)(void *impl);
} sim_ep_class;

/* Called for each endpoint event; returns an enum sim_ep_answer. */
typedef int (*sim_ep_event_fn)(void *user_data, sim_ep *ep,
			       const sim_ep_event *ev);

/* sim_ep_flush sends whatever the endpoint has to send and re-arms its
 * timer, outside an operation (after an attack injected a segment). */
void sim_ep_flush(sim_ep *ep);

/* sim_ep_new creates the glue for endpoint |name| (registered as a
 * scheduler node) of class |cls|. |make| builds the protocol object given
 * the env (which stays valid for the endpoint's life); returns NULL on
 * failure with a message in |err|. Queue capacity and drain size: 0 for
 * defaults. Returns NULL on failure (|err| says why). */
sim_ep *sim_ep_new(sim_world *w, const char *name, const sim_ep_class *cls,
		   void *(*make)(const sim_ep_env *env, void *arg, char *err,
				 size_t errlen),
		   void *make_arg, uint32_t queue_cap, uint32_t drain_max,
		   char *err, size_t errlen);

/* sim_ep_del frees |ep|, its queue and its protocol object.
 * sim_ep_del(NULL) is a no-op. */
void sim_ep_del(sim_ep *ep);

/* sim_ep_attach connects |ep| to side |side| of |link|. */
void sim_ep_attach(sim_ep *ep, sim_link *link, int side);

/* sim_ep_set_handler sets the scenario's event callback. */
void sim_ep_set_handler(sim_ep *ep, sim_ep_event_fn fn, void *user_data);

/* sim_ep_call enqueues API operation |type| (one of the class's api_names)
 * with |args| (may be NULL; ownership of args->data passes to the queue),
 * at the front or tail per the class's api_front policy. Returns the op id,
 * SIM_EINVAL for an unknown name (args->data is then freed), or another
 * negative SIM_E* code. */
int64_t sim_ep_call(sim_ep *ep, const char *type, const sim_op_args *args);

/* sim_ep_set_clock_drift makes the endpoint's clock run at 1 + ppb / 1e9
 * of virtual time (|ppb| < 5e8): everything it is told the time with
 * (operations, packets, timers, certificate checks) reads that clock, and
 * its deadlines are converted back to virtual time. */
void sim_ep_set_clock_drift(sim_ep *ep, int64_t ppb);

/* sim_ep_deadline returns the endpoint's named timer deadline (see
 * sim_ep_class.deadline), SIM_TIME_MAX when none. */
sim_time sim_ep_deadline(const sim_ep *ep, const char *name);

/* Accessors. */
void *sim_ep_impl(const sim_ep *ep);
const char *sim_ep_name(const sim_ep *ep);
const char *sim_ep_kind(const sim_ep *ep);
const char *sim_ep_state(const sim_ep *ep);
int sim_ep_node(const sim_ep *ep);
const sim_opq *sim_ep_queue(const sim_ep *ep);

#endif

#include "sim/ep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"

struct sim_ep {
	sim_world *w;
	const sim_ep_class *cls;
	void *impl;
	sim_ep_env env;
	int node;
	const char *name;
	sim_opq q;
	sim_link *link;
	int side;
	int timer_kind;
	sim_event_id timer_ev;
	sim_time timer_at;
	int64_t timers_fired;
	sim_ep_event_fn on_event;
	void *on_event_ud;
	int64_t drift_ppb; /* local clock rate: 1 + drift_ppb / 1e9 */
};

/* The endpoint's own clock: virtual time at its rate. */
static sim_time local_now(const sim_ep *ep)
{
	sim_time now = sim_world_now(ep->w);
	if (ep->drift_ppb == 0) {
		return now;
	}
	__int128 extra = (__int128)now * ep->drift_ppb / 1000000000;
	return now + (sim_time)extra;
}

/* The virtual time at which the endpoint's clock reads |local| (the
 * first nanosecond it does, so a timer never fires early). */
static sim_time to_global(const sim_ep *ep, sim_time local)
{
	if (ep->drift_ppb == 0 || local == SIM_TIME_MAX) {
		return local;
	}
	__int128 den = 1000000000 + (__int128)ep->drift_ppb;
	__int128 g = ((__int128)local * 1000000000 + den - 1) / den;
	while (g > 0 && (g - 1) + (g - 1) * ep->drift_ppb / 1000000000 >=
			    local) {
		g--;
	}
	while (g + g * ep->drift_ppb / 1000000000 < local) {
		g++;
	}
	return g > SIM_TIME_MAX ? SIM_TIME_MAX : (sim_time)g;
}

void sim_ep_set_clock_drift(sim_ep *ep, int64_t ppb)
{
	ep->drift_ppb = ppb;
}

void sim_ep_event_int(sim_ep_event *ev, const char *key, int64_t v)
{
	if (ev->nfields < SIM_EP_FIELDS_MAX) {
		sim_ep_field *f = &ev->f[ev->nfields++];
		f->key = key;
		f->s = NULL;
		f->len = 0;
		f->bin = 0;
		f->i = v;
	}
}

void sim_ep_event_str(sim_ep_event *ev, const char *key, const char *v)
{
	if (ev->nfields < SIM_EP_FIELDS_MAX) {
		sim_ep_field *f = &ev->f[ev->nfields++];
		f->key = key;
		f->s = v != NULL ? v : "";
		f->len = strlen(f->s);
		f->bin = 0;
		f->i = 0;
	}
}

void sim_ep_event_bytes(sim_ep_event *ev, const char *key, const void *v,
			size_t len)
{
	if (ev->nfields < SIM_EP_FIELDS_MAX) {
		sim_ep_field *f = &ev->f[ev->nfields++];
		f->key = key;
		f->s = len > 0 ? v : "";
		f->len = len;
		f->bin = 1;
		f->i = 0;
	}
}

char *sim_ep_event_format(const sim_ep_event *ev, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s", ev->name);
	for (int i = 0; i < ev->nfields && n > 0 && (size_t)n < len; i++) {
		const sim_ep_field *f = &ev->f[i];
		if (f->s != NULL && f->bin) {
			n += snprintf(buf + n, len - (size_t)n,
				      " %s=<%zu bytes>", f->key, f->len);
		} else if (f->s != NULL) {
			n += snprintf(buf + n, len - (size_t)n, " %s=%s",
				      f->key, f->s);
		} else {
			n += snprintf(buf + n, len - (size_t)n, " %s=%lld",
				      f->key, (long long)f->i);
		}
	}
	return buf;
}

int sim_ep_emit(sim_ep *ep, const sim_ep_event *ev)
{
	if (ep->w->trace != NULL) {
		char line[512] = "event ";
		sim_ep_event_format(ev, line + 6, sizeof(line) - 6);
		sim_trace_log(ep->w->trace, sim_world_now(ep->w), ep->name,
			      line);
	}
	if (ep->on_event == NULL) {
		return SIM_EP_ANSWER_NONE;
	}
	return ep->on_event(ep->on_event_ud, ep, ev);
}

static void flush(sim_ep *ep);

void sim_ep_flush(sim_ep *ep)
{
	flush(ep);
}

static void on_timer(sim_sched *s, void *arg, sim_event_id id)
{
	sim_ep *ep = arg;
	(void)s;
	(void)id;
	ep->timer_ev = 0;
	ep->timer_at = SIM_TIME_MAX;
	sim_op op = {.type = "timer",
		     .cause_kind = "timer",
		     .cause_id = ep->timers_fired++};
	sim_opq_enqueue(&ep->q, &op, 0);
}

static void arm_timer(sim_ep *ep)
{
	sim_time at = to_global(ep, ep->cls->expiry(ep->impl));
	if (at == ep->timer_at && (ep->timer_ev != 0 || at == SIM_TIME_MAX)) {
		return;
	}
	if (ep->timer_ev != 0) {
		sim_sched_cancel(ep->w->sched, ep->timer_ev);
		ep->timer_ev = 0;
	}
	ep->timer_at = at;
	if (at == SIM_TIME_MAX) {
		return;
	}
	ep->timer_ev = sim_sched_at(ep->w->sched, at, ep->node, ep->timer_kind,
				    on_timer, ep);
	if (ep->timer_ev == 0) {
		sim_world_fail(ep->w, "%s: cannot arm timer: %s", ep->name,
			       sim_strerror(sim_sched_error(ep->w->sched)));
	}
}

int sim_ep_packet_detail(const sim_ep_env *env)
{
	const sim_ep *ep = env->ep;
	return env->w->trace != NULL ||
	       (ep != NULL && ep->link != NULL &&
		sim_link_has_faults(ep->link));
}

/* After every operation: send what the endpoint has, re-arm its timer. */
static void flush(sim_ep *ep)
{
	sim_time now = local_now(ep);
	sim_packet *p;
	while ((p = ep->cls->output(ep->impl, now)) != NULL) {
		if (ep->link == NULL) {
			sim_packet_del(p); /* not attached: nowhere to go */
			continue;
		}
		int64_t rc = sim_link_submit(ep->link, ep->side, p);
		if (rc < 0) {
			sim_world_fail(ep->w, "%s: send failed: %s", ep->name,
				       sim_strerror((int)rc));
			break;
		}
	}
	arm_timer(ep);
}

static void process(void *ud, sim_op *op)
{
	sim_ep *ep = ud;
	sim_time now = local_now(ep);
	if (strcmp(op->type, "recv") == 0) {
		sim_packet *p = op->args.data;
		ep->cls->input(ep->impl, now, p);
		sim_packet_del(p);
		op->args.data = NULL;
	} else if (strcmp(op->type, "timer") == 0) {
		if (ep->cls->expiry(ep->impl) <= now) {
			ep->cls->timeout(ep->impl, now);
		}
	} else {
		ep->cls->api(ep->impl, now, op);
	}
	flush(ep);
}

/* A "recv" op's data is a packet, freed whole however the op ends. */
static void del_packet(void *pkt)
{
	sim_packet_del(pkt);
}

static void on_deliver(void *ud, sim_packet *pkt)
{
	sim_ep *ep = ud;
	sim_op op = {.type = "recv",
		     .cause_kind = "packet",
		     .cause_id = pkt->id,
		     .args = {.data = pkt,
			      .len = pkt->len,
			      .free_data = del_packet}};
	sim_opq_enqueue(&ep->q, &op, 0);
}

sim_ep *sim_ep_new(sim_world *w, const char *name, const sim_ep_class *cls,
		   void *(*make)(const sim_ep_env *env, void *arg, char *err,
				 size_t errlen),
		   void *make_arg, uint32_t queue_cap, uint32_t drain_max,
		   char *err, size_t errlen)
{
	sim_ep *ep = calloc(1, sizeof(*ep));
	if (ep == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ep->w = w;
	ep->cls = cls;
	ep->timer_at = SIM_TIME_MAX;
	ep->node = sim_sched_node(w->sched, name);
	ep->timer_kind = sim_sched_kind(w->sched, "timer");
	if (ep->node < 0 || ep->timer_kind < 0) {
		snprintf(err, errlen, "cannot register endpoint '%s': %s", name,
			 sim_strerror(ep->node < 0 ? ep->node : ep->timer_kind));
		free(ep);
		return NULL;
	}
	ep->name = sim_sched_node_name(w->sched, ep->node);
	if (sim_opq_init(&ep->q, w, ep->node, queue_cap, drain_max, process,
			 ep) != 0) {
		snprintf(err, errlen, "out of memory");
		free(ep);
		return NULL;
	}
	ep->env.ep = ep;
	ep->env.w = w;
	ep->env.name = ep->name;
	ep->impl = make(&ep->env, make_arg, err, errlen);
	if (ep->impl == NULL) {
		sim_opq_free(&ep->q);
		free(ep);
		return NULL;
	}
	sim_trace_node(w->trace, ep->node, ep->name, cls->kind);
	return ep;
}

void sim_ep_del(sim_ep *ep)
{
	if (ep == NULL) {
		return;
	}
	sim_opq_free(&ep->q);
	if (ep->timer_ev != 0) {
		sim_sched_cancel(ep->w->sched, ep->timer_ev);
	}
	ep->cls->del(ep->impl);
	free(ep);
}

static sim_time link_deadline(void *ud, const char *name)
{
	return sim_ep_deadline(ud, name);
}

void sim_ep_attach(sim_ep *ep, sim_link *link, int side)
{
	ep->link = link;
	ep->side = side;
	sim_link_attach(link, side, ep->node, on_deliver, ep);
	sim_link_set_deadlines(link, side, link_deadline, ep);
}

sim_time sim_ep_deadline(const sim_ep *ep, const char *name)
{
	if (ep->cls->deadline == NULL) {
		return SIM_TIME_MAX;
	}
	return to_global(ep, ep->cls->deadline(ep->impl, name));
}

void sim_ep_set_handler(sim_ep *ep, sim_ep_event_fn fn, void *user_data)
{
	ep->on_event = fn;
	ep->on_event_ud = user_data;
}

int64_t sim_ep_call(sim_ep *ep, const char *type, const sim_op_args *args)
{
	const char *name = NULL;
	for (const char *const *n = ep->cls->api_names; *n != NULL; n++) {
		if (strcmp(*n, type) == 0) {
			name = *n;
			break;
		}
	}
	if (name == NULL) {
		if (args != NULL) {
			free(args->data);
		}
		return SIM_EINVAL;
	}
	sim_op op = {.type = name, .cause_kind = "api", .cause_id = -1};
	if (args != NULL) {
		op.args = *args;
	}
	int front = ep->cls->api_front != NULL &&
		    ep->cls->api_front(ep->impl, name);
	return sim_opq_enqueue(&ep->q, &op, front);
}

int64_t sim_ep_post(sim_ep *ep, const char *type, const char *cause_kind,
		    int64_t cause_id, const sim_op_args *args, int front)
{
	sim_op op = {.type = type, .cause_kind = cause_kind,
		     .cause_id = cause_id};
	if (args != NULL) {
		op.args = *args;
	}
	return sim_opq_enqueue(&ep->q, &op, front);
}

void *sim_ep_impl(const sim_ep *ep)
{
	return ep->impl;
}

const char *sim_ep_name(const sim_ep *ep)
{
	return ep->name;
}

const char *sim_ep_kind(const sim_ep *ep)
{
	return ep->cls->kind;
}

const char *sim_ep_state(const sim_ep *ep)
{
	return ep->cls->state(ep->impl);
}

int sim_ep_node(const sim_ep *ep)
{
	return ep->node;
}

const sim_opq *sim_ep_queue(const sim_ep *ep)
{
	return &ep->q;
}

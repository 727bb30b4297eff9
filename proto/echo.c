#include "proto/echo.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"
#include "sim/rng.h"

#define ECHO_HDR 12
#define ECHO_MIN_SIZE (ECHO_HDR + 4)
#define ECHO_MAX_SIZE 65507
#define ECHO_MAX_COUNT 1000000
#define ECHO_OUTQ 64 /* packets buffered between output() calls */

enum echo_state { ST_IDLE, ST_RUNNING, ST_DONE, ST_FAILED, ST_CLOSED };

static const char *const state_names[] = {"idle", "running", "done",
					  "failed", "closed"};

typedef struct ping {
	sim_time first_sent_ns;
	sim_time deadline_ns; /* retransmit at; SIM_TIME_MAX when echoed */
	sim_time rto_ns;
	uint32_t attempts;
	int echoed;
} ping;

typedef struct echo {
	const sim_ep_env *env;
	int is_server;
	proto_echo_config cfg;
	enum echo_state st;
	sim_time last_now;
	ping *pings;        /* client: one per seq */
	uint32_t next_seq;  /* client: next first transmission */
	sim_time next_send_ns;
	proto_echo_stats stats;
	sim_packet *outq[ECHO_OUTQ];
	uint32_t outq_head, outq_len;
	uint64_t pings_seen; /* server */
} echo;

void proto_echo_config_default(proto_echo_config *c)
{
	c->count = 10;
	c->interval_ns = 10 * SIM_MS;
	c->rto_ns = 200 * SIM_MS;
	c->max_retries = 5;
	c->size = 64;
}

const char *proto_echo_config_check(const proto_echo_config *c)
{
	if (c->count > ECHO_MAX_COUNT) {
		return "count must be at most 1000000";
	}
	if (c->interval_ns < 0) {
		return "interval must not be negative";
	}
	if (c->rto_ns <= 0) {
		return "rto must be positive";
	}
	if (c->max_retries > 30) {
		return "max_retries must be at most 30";
	}
	if (c->size < ECHO_MIN_SIZE || c->size > ECHO_MAX_SIZE) {
		return "size must be in [16, 65507]";
	}
	return NULL;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint32_t checksum(const uint8_t *p, size_t len)
{
	return (uint32_t)sim_fnv1a64(p, len);
}

static void emit_simple(echo *e, const char *name)
{
	sim_ep_event ev = {.name = name};
	sim_ep_emit(e->env->ep, &ev);
}

static void send_msg(echo *e, const char *magic, uint32_t seq,
		     uint32_t attempt, sim_time now)
{
	if (e->outq_len == ECHO_OUTQ) {
		sim_world_fail(e->env->w, "%s: output queue full", e->env->name);
		return;
	}
	sim_packet *p = sim_packet_new(NULL, e->cfg.size);
	if (p == NULL) {
		sim_world_fail(e->env->w, "%s: out of memory", e->env->name);
		return;
	}
	memcpy(p->data, magic, 4);
	put32(p->data + 4, seq);
	put32(p->data + 8, attempt);
	put32(p->data + p->len - 4, checksum(p->data, p->len - 4));
	p->proto = "echo";
	snprintf(p->ptype, sizeof(p->ptype), "%s", magic[1] == 'I' ? "ping"
								   : "pong");
	snprintf(p->info, sizeof(p->info), "seq=%u attempt=%u", seq, attempt);
	p->sent_ns = now;
	e->outq[(e->outq_head + e->outq_len) % ECHO_OUTQ] = p;
	e->outq_len++;
}

/* Returns 1 and fills seq/attempt if |pkt| is a valid |magic| message. */
static int parse(echo *e, const sim_packet *pkt, const char *magic,
		 uint32_t *seq, uint32_t *attempt)
{
	if (pkt->len < ECHO_MIN_SIZE ||
	    checksum(pkt->data, pkt->len - 4) !=
		    get32(pkt->data + pkt->len - 4)) {
		sim_ep_event ev = {.name = "corrupt"};
		sim_ep_event_int(&ev, "len", (int64_t)pkt->len);
		sim_ep_emit(e->env->ep, &ev);
		e->stats.corrupt++;
		return 0;
	}
	if (memcmp(pkt->data, magic, 4) != 0) {
		return 0;
	}
	*seq = get32(pkt->data + 4);
	*attempt = get32(pkt->data + 8);
	return 1;
}

static void enter(echo *e, enum echo_state st)
{
	e->st = st;
}

static void client_api(void *impl, sim_time now, sim_op *op)
{
	echo *e = impl;
	assert(e->last_now <= now);
	e->last_now = now;
	if (strcmp(op->type, "start") == 0) {
		if (e->st != ST_IDLE) {
			return;
		}
		enter(e, ST_RUNNING);
		e->next_send_ns = now;
		if (e->cfg.count == 0) {
			enter(e, ST_DONE);
			emit_simple(e, "done");
		}
	} else if (strcmp(op->type, "close") == 0) {
		if (e->st != ST_CLOSED) {
			enter(e, ST_CLOSED);
			emit_simple(e, "closed");
		}
	}
}

static void client_input(void *impl, sim_time now, const sim_packet *pkt)
{
	echo *e = impl;
	uint32_t seq, attempt;
	assert(e->last_now <= now);
	e->last_now = now;
	if (e->st != ST_RUNNING || !parse(e, pkt, "PONG", &seq, &attempt)) {
		return;
	}
	if (seq >= e->next_seq) {
		return; /* never sent: forged or corrupted beyond checksum */
	}
	ping *pg = &e->pings[seq];
	if (pg->echoed) {
		e->stats.duplicates++;
		return;
	}
	pg->echoed = 1;
	pg->deadline_ns = SIM_TIME_MAX;
	sim_time rtt = now - pg->first_sent_ns;
	e->stats.echoed++;
	e->stats.rtt_sum_ns += rtt;
	if (e->stats.echoed == 1 || rtt < e->stats.rtt_min_ns) {
		e->stats.rtt_min_ns = rtt;
	}
	if (rtt > e->stats.rtt_max_ns) {
		e->stats.rtt_max_ns = rtt;
	}
	sim_ep_event ev = {.name = "echo"};
	sim_ep_event_int(&ev, "seq", seq);
	sim_ep_event_int(&ev, "attempt", attempt);
	sim_ep_event_int(&ev, "rtt_ns", rtt);
	sim_ep_emit(e->env->ep, &ev);
	if (e->stats.echoed == e->cfg.count && e->st == ST_RUNNING) {
		enter(e, ST_DONE);
		sim_ep_event done = {.name = "done"};
		sim_ep_event_int(&done, "echoed", e->stats.echoed);
		sim_ep_event_int(&done, "retransmits", e->stats.retransmits);
		sim_ep_emit(e->env->ep, &done);
	}
}

static void client_timeout(void *impl, sim_time now)
{
	echo *e = impl;
	assert(e->last_now <= now);
	e->last_now = now;
	if (e->st != ST_RUNNING) {
		return;
	}
	/* Retransmissions first, in sequence order, then new pings. */
	for (uint32_t s = 0; s < e->next_seq && e->st == ST_RUNNING; s++) {
		ping *pg = &e->pings[s];
		if (pg->echoed || pg->deadline_ns > now) {
			continue;
		}
		if (e->outq_len == ECHO_OUTQ) {
			break; /* expiry() stays <= now: the timer refires */
		}
		if (pg->attempts > e->cfg.max_retries) {
			enter(e, ST_FAILED);
			sim_ep_event ev = {.name = "failed"};
			sim_ep_event_int(&ev, "seq", s);
			sim_ep_event_int(&ev, "attempts", pg->attempts);
			sim_ep_emit(e->env->ep, &ev);
			return;
		}
		pg->rto_ns *= 2;
		pg->deadline_ns = now + pg->rto_ns;
		send_msg(e, "PING", s, pg->attempts, now);
		pg->attempts++;
		e->stats.retransmits++;
		sim_ep_event ev = {.name = "retransmit"};
		sim_ep_event_int(&ev, "seq", s);
		sim_ep_event_int(&ev, "attempt", pg->attempts - 1);
		sim_ep_emit(e->env->ep, &ev);
	}
	while (e->st == ST_RUNNING && e->next_seq < e->cfg.count &&
	       e->next_send_ns <= now && e->outq_len < ECHO_OUTQ) {
		ping *pg = &e->pings[e->next_seq];
		pg->first_sent_ns = now;
		pg->rto_ns = e->cfg.rto_ns;
		pg->deadline_ns = now + pg->rto_ns;
		pg->attempts = 1;
		send_msg(e, "PING", e->next_seq, 0, now);
		e->next_seq++;
		e->stats.sent++;
		e->next_send_ns = now + e->cfg.interval_ns;
	}
}

static sim_time client_expiry(const void *impl)
{
	const echo *e = impl;
	if (e->st != ST_RUNNING) {
		return SIM_TIME_MAX;
	}
	sim_time t = e->next_seq < e->cfg.count ? e->next_send_ns
						: SIM_TIME_MAX;
	for (uint32_t s = 0; s < e->next_seq; s++) {
		if (e->pings[s].deadline_ns < t) {
			t = e->pings[s].deadline_ns;
		}
	}
	return t;
}

static sim_packet *echo_output(void *impl, sim_time now)
{
	echo *e = impl;
	(void)now;
	if (e->outq_len == 0) {
		return NULL;
	}
	sim_packet *p = e->outq[e->outq_head];
	e->outq_head = (e->outq_head + 1) % ECHO_OUTQ;
	e->outq_len--;
	return p;
}

static const char *echo_state(const void *impl)
{
	const echo *e = impl;
	if (e->is_server) {
		return e->st == ST_CLOSED ? "closed" : "listening";
	}
	return state_names[e->st];
}

static void echo_del(void *impl)
{
	echo *e = impl;
	while (e->outq_len > 0) {
		sim_packet_del(echo_output(e, 0));
	}
	free(e->pings);
	free(e);
}

static void server_api(void *impl, sim_time now, sim_op *op)
{
	echo *e = impl;
	assert(e->last_now <= now);
	e->last_now = now;
	if (strcmp(op->type, "close") == 0 && e->st != ST_CLOSED) {
		enter(e, ST_CLOSED);
		emit_simple(e, "closed");
	}
}

static void server_input(void *impl, sim_time now, const sim_packet *pkt)
{
	echo *e = impl;
	uint32_t seq, attempt;
	assert(e->last_now <= now);
	e->last_now = now;
	if (e->st == ST_CLOSED || !parse(e, pkt, "PING", &seq, &attempt)) {
		return;
	}
	e->pings_seen++;
	sim_ep_event ev = {.name = "ping"};
	sim_ep_event_int(&ev, "seq", seq);
	sim_ep_event_int(&ev, "attempt", attempt);
	sim_ep_emit(e->env->ep, &ev);
	send_msg(e, "PONG", seq, attempt, now);
}

static void server_timeout(void *impl, sim_time now)
{
	(void)impl;
	(void)now;
}

static sim_time server_expiry(const void *impl)
{
	(void)impl;
	return SIM_TIME_MAX;
}

static void *make(const sim_ep_env *env, void *arg, int is_server,
		  char *err, size_t errlen)
{
	const proto_echo_config *cfg = arg;
	const char *bad = proto_echo_config_check(cfg);
	if (bad != NULL) {
		snprintf(err, errlen, "%s", bad);
		return NULL;
	}
	echo *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	e->env = env;
	e->is_server = is_server;
	e->cfg = *cfg;
	if (!is_server) {
		e->pings = calloc(cfg->count ? cfg->count : 1,
				  sizeof(*e->pings));
		if (e->pings == NULL) {
			free(e);
			snprintf(err, errlen, "out of memory");
			return NULL;
		}
	}
	return e;
}

void *proto_echo_make_client(const sim_ep_env *env, void *arg, char *err,
			     size_t errlen)
{
	return make(env, arg, 0, err, errlen);
}

void *proto_echo_make_server(const sim_ep_env *env, void *arg, char *err,
			     size_t errlen)
{
	return make(env, arg, 1, err, errlen);
}

void proto_echo_get_stats(const void *impl, proto_echo_stats *out)
{
	const echo *e = impl;
	*out = e->stats;
}

static const char *const client_api_names[] = {"start", "close", NULL};
static const char *const server_api_names[] = {"close", NULL};

const sim_ep_class proto_echo_client_class = {
	.kind = "echo_client",
	.api_names = client_api_names,
	.api = client_api,
	.input = client_input,
	.timeout = client_timeout,
	.output = echo_output,
	.expiry = client_expiry,
	.state = echo_state,
	.del = echo_del,
};

const sim_ep_class proto_echo_server_class = {
	.kind = "echo_server",
	.api_names = server_api_names,
	.api = server_api,
	.input = server_input,
	.timeout = server_timeout,
	.output = echo_output,
	.expiry = server_expiry,
	.state = echo_state,
	.del = echo_del,
};

/* tests/fuzz/lua_fuzz.c: fuzz harness for the Lua scenario API (sim/lua.c
 * and everything a script reaches: worlds, links, echo/TLS/QUIC endpoints,
 * PKI, timers, the trace writer).
 *
 * Byte 0 chooses the mode. With its low two bits 3 the rest is a scenario
 * as Lua source (the corpus holds scripts/scenarios/ this way, so
 * mutations start from real scenarios). Otherwise the rest drives a
 * generator that writes a scenario from a fixed grammar: up to MAX_STMTS
 * statements, each wrapped in pcall so that an error does not end the
 * script (a statement picked as "bare" is not, so errors also escape),
 *  - tlsim.world{...}, w:link{...}, w:pki{...}, w:echo_client/server,
 *    w:tls_client/server, w:quic_client/server{...} with options from the
 *    real key lists and values of every type;
 *  - any method of any class called on any object (the wrong class too),
 *    with zero to three arguments: nil, booleans, integers at the edges
 *    (math.mininteger, 2^53...), NaN and infinities, durations, enum names,
 *    long strings, tables, functions, the objects themselves;
 *  - ep:on(event, fn), l:filter(fn), w:after/w:at(d, fn) with callbacks
 *    whose bodies are statements too (w:run inside a callback included)
 *    and return random answers ("pending", "drop", "delay"...);
 *  - l:partition, l:drop_nth, l:fault{...} with the selector keys;
 *  - w:run{...} (always with an events= cap, so that a run ends), w:stop,
 *    w:expect, w:log, print, math.random, pairs, dropping references.
 * Bits 2-3 of byte 0 choose the trace (none, digest only, spooled rows);
 * bit 4 forces the seed; bit 5 runs verbose (event formatting, to a
 * discarded stderr); bit 6 adds --set parameters.
 *
 * The run has small limits (MAX_INSTR Lua instructions, MAX_MEM bytes,
 * livelock after LIVELOCK events at one time, MAX_EVENTS events and trace
 * rows, MAX_SMALL packets in flight and queued operations), so that every
 * input ends soon and the limits' paths run too. Lua errors, failed
 * expectations and limits are fine; a crash, a sanitizer report, an
 * assert, or an internal error (status 3) is a bug.
 *
 * Seed corpus: tests/fuzz/corpus/lua/ (the scenarios as Lua source, and
 * the generator inputs libFuzzer found, merged to new edges). Crashes found:
 * tests/fuzz/regress/lua/. TLSIM_FUZZ_LUA_PRINT=1 prints each generated
 * script to stderr. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>

#include "sim/entropy.h"
#include "sim/lua.h"
#include "sim/trace.h"

#define MAX_STMTS 48
#define MAX_DEPTH 3
#define MAX_SRC (256 * 1024)
#define MAX_INSTR 2000000
#define MAX_MEM ((size_t)48 << 20)
#define LIVELOCK 20000
#define MAX_EVENTS 200000 /* events in a run, and trace rows */
#define MAX_SMALL 10000   /* packets in flight, queued operations */
#define RUN_EVENTS 5000   /* events one w:run may run */

typedef struct gen {
	const uint8_t *in;
	size_t len, pos;
	char *src;
	size_t n;
	int overflow;
	int stmts;
} gen;

static int print_scripts;
static int devnull = -1;

static uint8_t u8(gen *g)
{
	return g->pos < g->len ? g->in[g->pos++] : 0;
}

static int more(const gen *g)
{
	return g->pos < g->len && !g->overflow && g->stmts < MAX_STMTS;
}

static void emit(gen *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(gen *g, const char *fmt, ...)
{
	if (g->overflow) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(g->src + g->n, MAX_SRC - g->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= MAX_SRC - g->n) {
		g->overflow = 1;
		return;
	}
	g->n += (size_t)k;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *pick(gen *g, const char *const *list, size_t n)
{
	return list[u8(g) % n];
}

/* Names: the variables a script keeps its objects in. */
static const char *const objects[] = {
    "w",  "L1", "L2", "E1", "E2", "E3", "E4", "P1",
    "P2", "T1", "T2", "w",  "E1", "E2", "L1", "tlsim",
};
static const char *const links[] = {"L1", "L2"};
static const char *const eps[] = {"E1", "E2", "E3", "E4"};
static const char *const pkis[] = {"P1", "P2"};
static const char *const timers[] = {"T1", "T2"};

static const char *const strings[] = {
    "20ms",
    "0ns",
    "1s",
    "-5ms",
    "1.5s",
    "90d",
    "2m",
    "1h",
    "250us",
    "7ns",
    "9223372036854775807ns",
    "99999999999999h",
    "1e3ms",
    "ms",
    "",
    "abc",
    "1.2",
    "1.3",
    "p256",
    "ed25519",
    "full",
    "leaf",
    "root",
    "root+intermediate",
    "sync",
    "async",
    "deferred",
    "honour",
    "ignore",
    "notify",
    "finish_handshake",
    "transport",
    "error",
    "flush",
    "drop",
    "rfc",
    "write_key",
    "buffer",
    "tail",
    "front",
    "a",
    "b",
    "a->b",
    "b->a",
    "both",
    "fin",
    "rst",
    "pending",
    "pass",
    "delay",
    "10Mbps",
    "0bps",
    "1e20Gbps",
    "X25519:P-256",
    "P-384",
    "server.test",
    "start",
    "close",
    "write",
    "GET / HTTP/1.1\\r\\n\\r\\n",
    "\\0\\1\\2\\255",
    "\\22\\3\\1\\0\\5hello",
    "%s%n%d",
    "\\1self",
    "client",
    "server",
    "link0",
    "at_timer",
    "dup",
    "reorder",
    "corrupt",
    "Finished",
    "ClientHello",
    "CRYPTO",
    "ACK",
    "CONNECTION_CLOSE",
    "initial",
    "handshake",
    "1rtt",
    "idle",
    "pto",
    "retransmit",
    "close_notify",
    "tcp",
    "quic",
    "SYN",
    "DATA",
};

static const char *const events[] = {
    "connected",
    "client_hello",
    "peer_certificate",
    "sign",
    "handshake_done",
    "data",
    "close_notify",
    "eof",
    "alert_sent",
    "alert_received",
    "shutdown_done",
    "error",
    "timeout",
    "reset",
    "closed",
    "echo",
    "retransmit",
    "corrupt",
    "done",
    "failed",
    "ping",
    "handshake_confirmed",
    "shutdown_by_peer",
    "\\1self",
};

static const char *const world_keys[] = {
    "seed",  "drain_max",       "queue_cap", "trace_events",
    "epoch", "livelock_events", "bogus",
};
static const char *const link_keys[] = {
    "name",      "latency", "jitter",        "loss",     "burst",
    "dup",       "reorder", "reorder_delay", "corrupt",  "corrupt_bits",
    "bandwidth", "queue",   "mtu",           "a_to_b",   "b_to_a",
    "p_gb",      "p_bg",    "loss_good",     "loss_bad", "from",
    "to",        "dir",
};
static const char *const ep_keys[] = {
    "name",
    "link",
    "side",
    "queue_cap",
    "drain_max",
    "count",
    "interval",
    "rto",
    "max_retries",
    "size",
    "pki",
    "host",
    "aia_fetch",
    "min_version",
    "max_version",
    "groups",
    "ciphers",
    "chain",
    "trust",
    "verify",
    "async_sign",
    "acceptor",
    "auto_handshake",
    "autoread",
    "shutdown_wait",
    "acceptor_alert",
    "deadline",
    "close",
    "unexpected_eof",
    "mss",
    "rto_max",
    "sndbuf",
    "window",
    "close_rule",
    "early_packet",
    "shutdown_queue",
    "app_error",
    "idle_timeout",
    "handshake_timeout",
    "max_ack_delay",
    "alg",
    "not_before",
    "not_after",
    "wait",
    "kind",
    "offset",
    "until_idle",
    "limit",
    "events",
    "allow_livelock",
    "clock_drift",
    "clock_offset",
    "split_at",
    "read_chunk",
    "max_record",
    "coalesce",
    "shutdown_timeout",
    "key_update_every",
};

static const char *const fault_keys[] = {
    "name",  "dir",  "from",   "proto",  "type",   "space", "pn",
    "frame", "info", "after",  "before", "nth",    "count", "action",
    "by",    "bits", "behind", "timer",  "offset", "of",    "tls",
    "key_phase",
};

static const char *const ctors[] = {
    "echo_client", "echo_server", "tls_client",
    "tls_server",  "quic_client", "quic_server",
};

/* Every method of every class, for calls on any object, but run: a run
 * with any arguments might not end (run_call caps it). */
static const char *const world_methods[] = {
    "link",       "echo_client", "echo_server", "pki",   "tls_client",
    "tls_server", "quic_client", "quic_server", "after", "at",
    "tostring",   "stop",        "expect",      "log",   "now",
    "ns",         "us",          "ms",          "s",     "time",
    "fmt",        "events",      "stop_reason",
};
static const char *const link_methods[] = {
    "partition", "drop_nth", "filter", "fault", "stats", "cancel",
};
static const char *const ep_methods[] = {
    "on",
    "call",
    "start",
    "close",
    "state",
    "name",
    "queue",
    "stats",
    "connect",
    "accept",
    "handshake",
    "write",
    "read",
    "shutdown",
    "close_write",
    "abort",
    "validation_complete",
    "sign_complete",
    "client_hello_complete",
    "send_raw",
    "send",
    "outcome",
    "received",
    "info",
    "attack",
    "key_update",
};

static const char *any_method(gen *g)
{
	uint8_t k = u8(g);
	if (k < 80) {
		return world_methods[u8(g) % N(world_methods)];
	}
	if (k < 120) {
		return link_methods[u8(g) % N(link_methods)];
	}
	return ep_methods[u8(g) % N(ep_methods)];
}

static void stmt(gen *g, int depth);
static void value(gen *g, int depth);

static void block(gen *g, int depth)
{
	int k = u8(g) % 4;
	for (int i = 0; i < k && more(g); i++) {
		stmt(g, depth + 1);
	}
}

/* A callback: a few statements, then an answer. */
static void function(gen *g, int depth)
{
	emit(g, "function(a1, a2) ");
	if (depth < MAX_DEPTH) {
		block(g, depth);
	}
	/* An answer for the handlers that take one, an error, or nothing. */
	static const char *const answers[] = {
	    "return true ",
	    "return false ",
	    "return 'pending' ",
	    "return 'drop' ",
	    "error('from a callback') ",
	    "",
	};
	uint8_t k = u8(g) % (N(answers) + 2);
	if (k < N(answers)) {
		emit(g, "%s", answers[k]);
	} else {
		emit(g, k == N(answers) ? "return 'delay', " : "return ");
		value(g, depth + 1);
		emit(g, " ");
	}
	emit(g, "end");
}

static void table(gen *g, int depth, const char *const *keys, size_t nkeys)
{
	emit(g, "{");
	int k = u8(g) % 6;
	for (int i = 0; i < k; i++) {
		uint8_t how = u8(g);
		if (how < 200) {
			emit(g, "%s = ", pick(g, keys, nkeys));
		} else if (how < 230) {
			emit(g, "[");
			value(g, depth + 1);
			emit(g, "] = ");
		}
		value(g, depth + 1);
		emit(g, ", ");
	}
	emit(g, "}");
}

static void value(gen *g, int depth)
{
	uint8_t k = u8(g);
	if (depth > MAX_DEPTH && k >= 150) {
		k %= 150;
	}
	if (k < 20) {
		emit(g, "nil");
	} else if (k < 30) {
		emit(g, k & 1 ? "true" : "false");
	} else if (k < 60) {
		static const char *const ints[] = {
		    "0",
		    "1",
		    "-1",
		    "2",
		    "3",
		    "16",
		    "100",
		    "1200",
		    "65535",
		    "65536",
		    "1000000",
		    "2^31",
		    "1 << 31",
		    "1 << 32",
		    "1 << 53",
		    "1 << 62",
		    "math.maxinteger",
		    "math.mininteger",
		    "-(1 << 40)",
		    "20000000",
		    "1767225600",
		    "4102444800",
		    "255",
		};
		emit(g, "%s", pick(g, ints, N(ints)));
	} else if (k < 70) {
		static const char *const reals[] = {
		    "0.5", "-0.0", "1e308",  "0/0",  "1/0",   "-1/0",
		    "1.5", "0.01", "1e-300", "2^63", "-2^63",
		};
		emit(g, "%s", pick(g, reals, N(reals)));
	} else if (k < 80) {
		unsigned v = u8(g);
		emit(g, "%u", v << (u8(g) % 24));
	} else if (k < 120) {
		emit(g, "\"%s\"", pick(g, strings, N(strings)));
	} else if (k < 125) {
		static const unsigned reps[] = {100, 1400, 70000, 1000000};
		int c = 'A' + u8(g) % 26;
		emit(g, "string.rep(\"%c\", %u)", c, reps[u8(g) % N(reps)]);
	} else if (k < 150) {
		emit(g, "%s", pick(g, objects, N(objects)));
	} else if (k < 175) {
		table(g, depth, ep_keys, N(ep_keys));
	} else if (k < 190) {
		function(g, depth);
	} else if (k < 200) {
		emit(g, "w and w:now()");
	} else if (k < 210) {
		emit(g, "w and w:ms(");
		value(g, depth + 1);
		emit(g, ")");
	} else {
		emit(g, "(");
		value(g, depth + 1);
		emit(g, ")");
	}
}

static void args(gen *g, int depth, int max)
{
	int k = u8(g) % (max + 1);
	for (int i = 0; i < k; i++) {
		if (i > 0) {
			emit(g, ", ");
		}
		value(g, depth + 1);
	}
}

/* The events= cap that every w:run gets, last so that it wins. */
static void run_call(gen *g, int depth, const char *recv)
{
	static const char *const keys[] = {
	    "until_idle", "limit", "deadline", "allow_livelock", "bogus",
	};
	emit(g, "%s:run{", recv);
	int k = u8(g) % 3;
	for (int i = 0; i < k; i++) {
		emit(g, "%s = ", pick(g, keys, N(keys)));
		value(g, depth + 1);
		emit(g, ", ");
	}
	emit(g, "events = %u}", 1 + u8(g) * (RUN_EVENTS / 256));
}

static void stmt(gen *g, int depth)
{
	g->stmts++;
	uint8_t k = u8(g), bare = u8(g) < 8;
	emit(g, bare ? "do " : "pcall(function() ");
	switch (k % 20) {
	case 0:
		emit(g, "w = tlsim.world");
		table(g, depth, world_keys, N(world_keys));
		break;
	case 1:
		emit(g, "%s = w:link", pick(g, links, N(links)));
		table(g, depth, link_keys, N(link_keys));
		break;
	case 2:
		emit(g, "%s = w:pki", pick(g, pkis, N(pkis)));
		table(g, depth, ep_keys, N(ep_keys));
		break;
	case 3:
	case 4: {
		/* An endpoint with a PKI and a link most of the time. */
		const char *e = pick(g, eps, N(eps));
		const char *c = pick(g, ctors, N(ctors));
		const char *p = pick(g, pkis, N(pkis));
		emit(g, "%s = w:%s{pki = %s, link = %s, ", e, c, p,
		     pick(g, links, N(links)));
		int n = u8(g) % 5;
		for (int i = 0; i < n; i++) {
			emit(g, "%s = ", pick(g, ep_keys, N(ep_keys)));
			value(g, depth + 1);
			emit(g, ", ");
		}
		emit(g, "}");
		break;
	}
	case 5:
	case 6:
	case 7: { /* a method on its own class */
		const char *e = pick(g, eps, N(eps));
		emit(g, "%s:%s(", e, pick(g, ep_methods, N(ep_methods)));
		args(g, depth, 2);
		emit(g, ")");
		break;
	}
	case 8: { /* any method, any receiver */
		const char *o = pick(g, objects, N(objects));
		emit(g, "%s.%s(", o, any_method(g));
		args(g, depth, 3);
		emit(g, ")");
		break;
	}
	case 9: {
		const char *e = pick(g, eps, N(eps));
		emit(g, "%s:on(\"%s\", ", e, pick(g, events, N(events)));
		function(g, depth);
		emit(g, ")");
		break;
	}
	case 10:
		emit(g, "%s:filter(", pick(g, links, N(links)));
		function(g, depth);
		emit(g, ")");
		break;
	case 11: {
		const char *t = pick(g, timers, N(timers));
		emit(g, "%s = w:%s(", t, u8(g) & 1 ? "after" : "at");
		value(g, depth + 1);
		emit(g, ", ");
		function(g, depth);
		emit(g, ")");
		break;
	}
	case 12:
		run_call(g, depth, "w");
		break;
	case 13: {
		static const char *const calls[] = {
		    "w:stop()",      "w:expect",    "w:log",
		    "print",         "math.random", "math.randomseed",
		    "w:stop_reason", "T1:cancel",   "w:fmt",
		    "w:time",        "os.time",     "os.clock",
		};
		const char *c = pick(g, calls, N(calls));
		if (strchr(c, '(') != NULL) {
			emit(g, "%s", c);
		} else {
			emit(g, "%s(", c);
			args(g, depth, 3);
			emit(g, ")");
		}
		break;
	}
	case 14:
		emit(g, "%s:partition", pick(g, links, N(links)));
		table(g, depth, link_keys, N(link_keys));
		break;
	case 15:
		if (u8(g) & 1) {
			emit(g, "%s:drop_nth(", pick(g, links, N(links)));
			args(g, depth, 2);
			emit(g, ")");
		} else {
			emit(g, "%s:fault", pick(g, links, N(links)));
			table(g, depth, fault_keys, N(fault_keys));
		}
		break;
	case 16: /* drop a reference, make garbage */
		emit(g,
		     "%s = nil; local t = {} for i = 1, 200 do t[i] = {i} "
		     "end",
		     pick(g, objects, N(objects) - 1));
		break;
	case 17:
		emit(g, "for k, v in pairs(");
		value(g, depth + 1);
		emit(g, ") do end");
		break;
	case 18: { /* a method call with a colon on a random object */
		const char *o = pick(g, objects, N(objects));
		emit(g, "%s:%s(", o, any_method(g));
		args(g, depth, 2);
		emit(g, ")");
		break;
	}
	default: {
		const char *e = pick(g, eps, N(eps));
		emit(g, "%s:%s(", e, u8(g) & 1 ? "write" : "send");
		value(g, depth + 1);
		emit(g, ")");
		break;
	}
	}
	emit(g, bare ? " end\n" : " end)\n");
}

static void generate(gen *g)
{
	emit(g, "local w, L1, L2, E1, E2, E3, E4, P1, P2, T1, T2\n");
	/* Most scripts start from a world, a link and a PKI. */
	if (u8(g) < 200) {
		emit(g, "w = tlsim.world{}\nL1 = w:link{latency = \"10ms\"}\n"
			"P1 = w:pki{}\n");
	}
	while (more(g)) {
		stmt(g, 0);
	}
	emit(g, "if w then w:run{events = %d} end\n", RUN_EVENTS);
}

static void on_check(void *ud, int ok, const char *message)
{
	(void)ud;
	(void)ok;
	if (message == NULL) {
		abort();
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* RDRAND and AES-NI off, as in tlsim: a run's bytes, and so what an
	 * input does, are the same on every machine. Returns only if the
	 * environment is already set. */
	sim_entropy_reexec(*argc, *argv);
	const char *p = getenv("TLSIM_FUZZ_LUA_PRINT");
	print_scripts = p != NULL && strcmp(p, "1") == 0;
	devnull = open("/dev/null", O_WRONLY);
	/* print() and w:log write to stdout; libFuzzer writes to stderr. */
	if (devnull >= 0 && !print_scripts) {
		dup2(devnull, 1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return 0;
	}
	gen g = {.in = data + 1, .len = size - 1};
	uint8_t mode = data[0];
	if ((mode & 3) == 3) {
		g.src = malloc(size);
		if (g.src == NULL) {
			return 0;
		}
		memcpy(g.src, data + 1, size - 1);
		g.n = size - 1;
	} else {
		g.src = malloc(MAX_SRC);
		if (g.src == NULL) {
			return 0;
		}
		generate(&g);
		if (g.overflow) {
			free(g.src);
			return 0;
		}
	}
	if (print_scripts) {
		fprintf(stderr, "---- script\n%.*s----\n", (int)g.n, g.src);
	}
	sim_lua_opts o = {
	    .path = "fuzz.lua",
	    .source = g.src,
	    .source_len = g.n,
	    .sha256 = "0000000000000000000000000000000000000000000000000000"
		      "000000000000",
	    .have_seed = (mode >> 4) & 1,
	    .seed = mode,
	    .verbosity = (mode >> 5) & 1 ? 2 : 0,
	    .max_instructions = MAX_INSTR,
	    .max_memory = MAX_MEM,
	    .livelock_events = LIVELOCK,
	    .max_events = MAX_EVENTS,
	    .max_inflight = MAX_SMALL,
	    .max_queued_ops = MAX_SMALL,
	    .max_rows = MAX_EVENTS,
	    .on_check = on_check,
	};
	if ((mode >> 6) & 1) {
		static const char *const keys[] = {"variant", "seed", "loss",
						   "x"};
		static const char *const vals[] = {"buggy", "0.5", "-1",
						   "tail",  "",    "1e999"};
		o.nset = 2;
		for (int i = 0; i < o.nset; i++) {
			o.set_key[i] = keys[(mode + i) % N(keys)];
			o.set_val[i] = vals[(mode + 3 * i) % N(vals)];
		}
	}
	sim_trace *t = NULL;
	char err[256];
	int tmode = (mode >> 2) & 3;
	if (tmode == 1) {
		sim_trace_open(NULL, &t, err, sizeof(err));
	} else if (tmode >= 2) {
		sim_trace_open_spool(&t, err, sizeof(err));
	}
	o.trace = t;
	int saved = -1;
	if (o.verbosity > 1 && devnull >= 0 && !print_scripts) {
		fflush(stderr);
		saved = dup(2);
		dup2(devnull, 2);
	}
	sim_lua_result r;
	int status = sim_lua_run(&o, &r);
	if (saved >= 0) {
		fflush(stderr);
		dup2(saved, 2);
		close(saved);
	}
	if (print_scripts) {
		fprintf(stderr, "---- status %d: %s\n", status, r.message);
	}
	if (status == SIM_STATUS_INTERNAL) {
		fprintf(stderr, "lua_fuzz: internal error: %s\n", r.message);
		abort();
	}
	if (tmode >= 2 && r.trace_err == 0 && r.have_world) {
		size_t len = 0;
		const void *rec = sim_trace_spooled(t, &len);
		if (rec == NULL || len == 0) {
			fprintf(stderr, "lua_fuzz: a spooled run left no "
					"record\n");
			abort();
		}
	}
	sim_trace_close(t);
	free(g.src);
	return 0;
}

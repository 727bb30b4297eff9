#include "sim/lua.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "proto/echo.h"
#include "proto/pki.h"
#include "proto/quic.h"
#include "proto/tls.h"
#include "sim/entropy.h"
#include "sim/ep.h"
#include "sim/err.h"
#include "sim/link.h"
#include "sim/rng.h"
#include "sim/schedule.h"
#include "sim/world.h"

#define WORLD_MT "tlsim.world"
#define LINK_MT "tlsim.link"
#define EP_MT "tlsim.endpoint"
#define TIMER_MT "tlsim.timer"
#define PKI_MT "tlsim.pki"

#define MAX_LINKS 64
#define MAX_EPS 256
#define MAX_PKIS 64
#define MAX_TIMERS 1000000
#define HOOK_EVERY 1000

typedef struct timer_rec {
	struct ctx *c;
	int fn_ref; /* LUA_NOREF once fired or cancelled */
	sim_event_id ev;
} timer_rec;

typedef struct link_ud {
	struct ctx *c;
	sim_link *link;
	int index;
	int filter_ref;
	int attached[2];
} link_ud;

typedef struct ep_ud {
	struct ctx *c;
	sim_ep *ep;
	int index;
	int handlers_ref; /* table: event name -> function */
} ep_ud;

typedef struct ctx {
	lua_State *L;
	const sim_lua_opts *o;
	sim_lua_result *r;
	sim_world w;
	int have_world;
	int ran;
	int script_node, script_kind;
	sim_rng script_rng;

	link_ud *links[MAX_LINKS];
	int nlinks;
	ep_ud *eps[MAX_EPS];
	int neps;
	proto_pki_chain *pkis[MAX_PKIS];
	int npkis;
	int64_t epoch_ns; /* unix time of virtual time 0 */
	uint64_t livelock_events;
	timer_rec **timers;
	size_t ntimers, timers_cap;

	uint64_t checks, checks_failed;
	int cb_failed;         /* a callback raised an error */
	char cb_msg[1024];

	uint32_t default_queue_cap, default_drain_max; /* from tlsim.world */
	uint64_t instr_budget, instr_used;
	size_t mem_limit, mem_used;
	int mem_exceeded;
	enum sim_stop last_stop;
	char stop_reason[512];
} ctx;

/* --- memory cap and instruction budget ---------------------------------- */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	ctx *c = ud;
	if (ptr == NULL) {
		osize = 0;
	}
	if (nsize == 0) {
		free(ptr);
		c->mem_used -= osize;
		return NULL;
	}
	if (nsize > osize && c->mem_used + (nsize - osize) > c->mem_limit) {
		c->mem_exceeded = 1;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p != NULL) {
		c->mem_used = c->mem_used - osize + nsize;
	}
	return p;
}

static ctx *get_ctx(lua_State *L)
{
	ctx *c;
	lua_getallocf(L, (void **)&c);
	return c;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	ctx *c = get_ctx(L);
	c->instr_used += HOOK_EVERY;
	if (c->instr_used > c->instr_budget) {
		/* Name the line that was running: a hook has no caller
		 * position of its own for luaL_error to use. */
		if (lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
			lua_pushfstring(L, "%s:%d: ", ar->short_src,
					ar->currentline);
		} else {
			lua_pushliteral(L, "");
		}
		lua_pushfstring(L,
				"instruction budget exceeded (%I instructions; "
				"raise it with --max-instructions)",
				(lua_Integer)c->instr_budget);
		lua_concat(L, 2);
		lua_error(L);
	}
}

/* --- argument helpers ---------------------------------------------------- */

/* Reads a duration: a string such as "20ms" or an integer of ns. */
static sim_time check_duration(lua_State *L, int idx, const char *what,
			       int allow_negative)
{
	sim_time t;
	if (lua_type(L, idx) == LUA_TNUMBER) {
		if (!lua_isinteger(L, idx)) {
			luaL_error(L,
				   "%s: a duration is a string like '20ms' or an "
				   "integer of nanoseconds, got %s",
				   what, lua_tostring(L, idx));
		}
		t = lua_tointeger(L, idx);
		if (t < 0 && !allow_negative) {
			luaL_error(L, "%s: duration must not be negative", what);
		}
		return t;
	}
	if (lua_type(L, idx) != LUA_TSTRING) {
		luaL_error(L, "%s: expected a duration such as '20ms', got %s",
			   what, luaL_typename(L, idx));
	}
	const char *s = lua_tostring(L, idx);
	int rc = sim_time_parse(s, allow_negative, &t);
	if (rc == SIM_ERANGE) {
		luaL_error(L, "%s: duration '%s' is negative or too large",
			   what, s);
	} else if (rc != 0) {
		luaL_error(L,
			   "%s: bad duration '%s' (use ns, us, ms, s, m, h; "
			   "e.g. '20ms')",
			   what, s);
	}
	return t;
}

/* Checks that every key of the options table at |idx| is in |allowed|. */
static void check_keys(lua_State *L, int idx, const char *what,
		       const char *const *allowed)
{
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx) != 0) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			luaL_error(L, "%s: option names must be strings", what);
		}
		const char *k = lua_tostring(L, -1);
		int ok = 0;
		for (const char *const *a = allowed; *a != NULL; a++) {
			if (strcmp(*a, k) == 0) {
				ok = 1;
				break;
			}
		}
		if (!ok) {
			luaL_error(L, "%s: unknown option '%s'", what, k);
		}
	}
}

/* Makes argument |idx| an options table: an empty one when absent or nil,
 * an error when it is anything but a table. */
static void opt_table(lua_State *L, int idx)
{
	lua_settop(L, idx);
	if (lua_isnil(L, idx)) {
		lua_newtable(L);
		lua_replace(L, idx);
	}
	luaL_checktype(L, idx, LUA_TTABLE);
}

static int opt_field(lua_State *L, int idx, const char *key)
{
	return lua_getfield(L, idx, key) != LUA_TNIL;
}

static double opt_prob(lua_State *L, int idx, const char *key,
		       const char *what, double def)
{
	double v = def;
	if (opt_field(L, idx, key)) {
		if (!lua_isnumber(L, -1)) {
			luaL_error(L, "%s: %s must be a number in [0, 1]", what,
				   key);
		}
		v = lua_tonumber(L, -1);
		if (!(v >= 0.0 && v <= 1.0)) {
			luaL_error(L, "%s: %s must be in [0, 1], got %s", what,
				   key, lua_tostring(L, -1));
		}
	}
	lua_pop(L, 1);
	return v;
}

static int64_t opt_int(lua_State *L, int idx, const char *key,
		       const char *what, int64_t def, int64_t lo, int64_t hi)
{
	int64_t v = def;
	if (opt_field(L, idx, key)) {
		if (!lua_isinteger(L, -1)) {
			luaL_error(L, "%s: %s must be an integer", what, key);
		}
		v = lua_tointeger(L, -1);
		if (v < lo || v > hi) {
			luaL_error(L, "%s: %s must be in [%I, %I], got %I",
				   what, key, (lua_Integer)lo, (lua_Integer)hi,
				   (lua_Integer)v);
		}
	}
	lua_pop(L, 1);
	return v;
}

static sim_time opt_time(lua_State *L, int idx, const char *key,
			 const char *what, sim_time def, int allow_negative)
{
	sim_time v = def;
	if (opt_field(L, idx, key)) {
		char label[96];
		snprintf(label, sizeof(label), "%s: %s", what, key);
		v = check_duration(L, -1, label, allow_negative);
	}
	lua_pop(L, 1);
	return v;
}

static sim_time opt_duration(lua_State *L, int idx, const char *key,
			     const char *what, sim_time def)
{
	return opt_time(L, idx, key, what, def, 0);
}

/* Bandwidth: an integer of bits/s or a string "10Mbps", "512kbps". */
static uint64_t opt_bandwidth(lua_State *L, int idx, const char *key,
			      const char *what, uint64_t def)
{
	uint64_t v = def;
	if (opt_field(L, idx, key)) {
		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
			v = (uint64_t)lua_tointeger(L, -1);
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			const char *s = lua_tostring(L, -1);
			char *end;
			double n = strtod(s, &end);
			double mul = 0;
			if (strcmp(end, "bps") == 0) {
				mul = 1;
			} else if (strcmp(end, "kbps") == 0) {
				mul = 1e3;
			} else if (strcmp(end, "Mbps") == 0) {
				mul = 1e6;
			} else if (strcmp(end, "Gbps") == 0) {
				mul = 1e9;
			}
			if (end == s || mul == 0 || !(n >= 0) || n * mul > 1e15) {
				luaL_error(L,
					   "%s: %s: bad bandwidth '%s' (e.g. "
					   "'10Mbps', '512kbps')",
					   what, key, s);
			}
			v = (uint64_t)(n * mul);
		} else {
			luaL_error(L, "%s: %s must be bits/s or a string such "
				      "as '10Mbps'",
				   what, key);
		}
	}
	lua_pop(L, 1);
	return v;
}

/* --- world --------------------------------------------------------------- */

static ctx *check_world(lua_State *L, int idx)
{
	ctx **pc = luaL_checkudata(L, idx, WORLD_MT);
	return *pc;
}

static const char *const world_keys[] = {"seed", "drain_max", "queue_cap",
					  "trace_events", "epoch",
					  "livelock_events", NULL};

static void rows_cap(void *ud, uint64_t cap)
{
	sim_world *w = ud;
	sim_world_limit(w, "trace rows: more than %llu in the run (--max-rows)",
			(unsigned long long)cap);
}

/* apply_limits: the command line's caps over the world's defaults. */
static void apply_limits(ctx *c)
{
	const sim_lua_opts *o = c->o;
	sim_limits *l = &c->w.limits;
	if (o->max_events != 0) {
		l->max_events = o->max_events;
	}
	if (o->max_time_ns != 0) {
		l->max_time_ns = o->max_time_ns;
	}
	if (o->max_inflight != 0) {
		l->max_inflight = o->max_inflight;
	}
	if (o->max_queued_ops != 0) {
		l->max_queued_ops = o->max_queued_ops;
	}
	if (o->trace != NULL) {
		if (o->max_rows != 0) {
			sim_trace_set_max_rows(o->trace, o->max_rows);
		}
		sim_trace_set_cap_hook(o->trace, rows_cap, &c->w);
	}
}

static int l_world(lua_State *L)
{
	ctx *c = get_ctx(L);
	opt_table(L, 1);
	check_keys(L, 1, "tlsim.world", world_keys);
	if (c->have_world) {
		return luaL_error(L, "tlsim.world: a scenario creates one "
				     "world per run");
	}
	uint64_t seed = 1;
	if (opt_field(L, 1, "seed")) {
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0) {
			return luaL_error(L, "tlsim.world: seed must be a "
					     "non-negative integer");
		}
		seed = (uint64_t)lua_tointeger(L, -1);
	}
	lua_pop(L, 1);
	if (c->o->have_seed) {
		seed = c->o->seed;
	}
	int trace_events =
		(int)opt_int(L, 1, "trace_events", "tlsim.world", 1, 0, 1);
	c->default_queue_cap = (uint32_t)opt_int(L, 1, "queue_cap",
						 "tlsim.world", 0, 0, 10000000);
	c->default_drain_max = (uint32_t)opt_int(L, 1, "drain_max",
						 "tlsim.world", 0, 0, 1000000);
	/* Certificates and BoringSSL's clock see unix time epoch + now;
	 * default 2026-01-01T00:00:00Z. */
	c->epoch_ns = opt_int(L, 1, "epoch", "tlsim.world", 1767225600, 0,
			      (int64_t)4102444800) *
		      SIM_S;
	/* --livelock-events overrides the scenario's livelock_events. Every
	 * option is read before the world exists: an error after
	 * sim_world_init would leak it (teardown frees it only once
	 * have_world is set). */
	c->livelock_events = (uint64_t)opt_int(L, 1, "livelock_events",
					       "tlsim.world", 1000000, 100,
					       INT64_MAX);
	if (c->o->livelock_events != 0) {
		c->livelock_events = c->o->livelock_events;
	}

	if (sim_world_init(&c->w, seed, c->o->trace) != 0) {
		return luaL_error(L, "tlsim.world: out of memory");
	}
	c->w.trace_events = trace_events;
	if (!trace_events) {
		sim_sched_set_hooks(c->w.sched, NULL);
	}
	apply_limits(c);
	if (c->o->schedule != NULL) {
		c->w.schedule = c->o->schedule;
		sim_schedule_attach(c->o->schedule, c->w.sched);
	}
	if (c->livelock_events != 1000000) {
		sim_sched_set_livelock(c->w.sched, c->livelock_events);
	}
	c->have_world = 1;
	c->r->have_world = 1;
	c->r->seed = seed;
	sim_entropy_begin(seed);
	sim_rng_init(&c->script_rng, seed, "script");
	c->script_node = sim_sched_node(c->w.sched, "script");
	c->script_kind = sim_sched_kind(c->w.sched, "script");

	if (c->o->trace != NULL) {
		char params[4096];
		char limits[512];
		sim_lua_params(c->o, params, sizeof(params));
		sim_lua_limits(c->o, limits, sizeof(limits));
		sim_run_info info = {.scenario = c->o->path,
				     .scenario_sha256 = c->o->sha256,
				     .seed = seed,
				     .params = params,
				     .limits = limits[0] ? limits : NULL};
		int rc = sim_trace_begin(c->o->trace, &info);
		if (rc != 0) {
			return luaL_error(L, "trace: %s",
					  sim_trace_errmsg(c->o->trace));
		}
		sim_trace_node(c->o->trace, 0, "world", "world");
		sim_trace_node(c->o->trace, c->script_node, "script", "script");
	}

	ctx **pc = lua_newuserdatauv(L, sizeof(*pc), 0);
	*pc = c;
	luaL_setmetatable(L, WORLD_MT);
	return 1;
}

static int w_now(lua_State *L)
{
	ctx *c = check_world(L, 1);
	lua_pushinteger(L, sim_world_now(&c->w));
	return 1;
}

static int unit_mul(lua_State *L, sim_time unit)
{
	check_world(L, 1);
	lua_Number n = luaL_checknumber(L, 2);
	double v = n * (double)unit;
	if (!(fabs(v) < 9.2e18)) {
		return luaL_error(L, "time value out of range");
	}
	lua_pushinteger(L, (lua_Integer)llround(v));
	return 1;
}

static int w_ns(lua_State *L)
{
	return unit_mul(L, SIM_NS);
}

static int w_us(lua_State *L)
{
	return unit_mul(L, SIM_US);
}

static int w_ms(lua_State *L)
{
	return unit_mul(L, SIM_MS);
}

static int w_s(lua_State *L)
{
	return unit_mul(L, SIM_S);
}

static int w_time(lua_State *L)
{
	check_world(L, 1);
	lua_pushinteger(L, check_duration(L, 2, "w:time", 1));
	return 1;
}

static int w_fmt(lua_State *L)
{
	check_world(L, 1);
	char buf[64];
	lua_pushstring(L, sim_time_format(luaL_checkinteger(L, 2), buf,
					  sizeof(buf)));
	return 1;
}

/* Where the script is: "file:line" of the caller at |level|. */
static void where(lua_State *L, int level, char *buf, size_t len)
{
	lua_Debug ar;
	buf[0] = '\0';
	if (lua_getstack(L, level, &ar) && lua_getinfo(L, "Sl", &ar) &&
	    ar.currentline > 0) {
		snprintf(buf, len, "%s:%d", ar.short_src, ar.currentline);
	}
}

static int w_expect(lua_State *L)
{
	ctx *c = check_world(L, 1);
	luaL_checkany(L, 2);
	int ok = lua_toboolean(L, 2);
	const char *msg = luaL_optstring(L, 3, "expectation");
	const char *detail = luaL_optstring(L, 4, NULL);
	char loc[256];
	where(L, 1, loc, sizeof(loc));
	c->checks++;
	if (!ok) {
		c->checks_failed++;
		if (c->checks_failed == 1) {
			snprintf(c->r->message, sizeof(c->r->message),
				 "%s: expectation failed: %s%s%s", loc, msg,
				 detail ? ": " : "", detail ? detail : "");
			snprintf(c->r->first_check, sizeof(c->r->first_check),
				 "%s: %s", loc, msg);
		}
		if (c->o->verbosity > 0) {
			fprintf(stderr, "FAIL %s: %s%s%s\n", loc, msg,
				detail ? ": " : "", detail ? detail : "");
		}
	} else if (c->o->verbosity > 1) {
		fprintf(stderr, "ok   %s: %s\n", loc, msg);
	}
	sim_trace_check(c->w.trace, sim_world_now(&c->w), ok, msg, loc, detail);
	if (c->o->on_check != NULL) {
		c->o->on_check(c->o->user_data, ok, msg);
	}
	lua_pushboolean(L, ok);
	return 1;
}

static int w_log(lua_State *L)
{
	ctx *c = check_world(L, 1);
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = 2; i <= n; i++) {
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
		if (i < n) {
			luaL_addchar(&b, ' ');
		}
	}
	luaL_pushresult(&b);
	const char *s = lua_tostring(L, -1);
	sim_trace_log(c->w.trace, sim_world_now(&c->w), "script", s);
	if (c->o->verbosity > 0) {
		char t[64];
		printf("[%s] %s\n",
		       sim_time_format(sim_world_now(&c->w), t, sizeof(t)), s);
	}
	return 0;
}

/* Records a failure raised inside a callback; w:run re-raises it. */
static void callback_failed(ctx *c, lua_State *L)
{
	if (!c->cb_failed) {
		c->cb_failed = 1;
		const char *m = lua_tostring(L, -1);
		snprintf(c->cb_msg, sizeof(c->cb_msg), "%s",
			 m ? m : "error object is not a string");
	}
	lua_pop(L, 1);
	sim_sched_stop(c->w.sched);
}

static void fire_timer(sim_sched *s, void *arg, sim_event_id id)
{
	timer_rec *t = arg;
	ctx *c = t->c;
	lua_State *L = c->L;
	(void)s;
	(void)id;
	int ref = t->fn_ref;
	t->fn_ref = LUA_NOREF;
	t->ev = 0;
	if (ref == LUA_NOREF || c->cb_failed) {
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	luaL_unref(L, LUA_REGISTRYINDEX, ref);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		callback_failed(c, L);
	}
}

static int schedule(lua_State *L, ctx *c, sim_time at)
{
	luaL_checktype(L, 3, LUA_TFUNCTION);
	if (c->ntimers >= MAX_TIMERS) {
		return luaL_error(L, "too many timers (limit %d)", MAX_TIMERS);
	}
	if (c->ntimers == c->timers_cap) {
		size_t cap = c->timers_cap ? c->timers_cap * 2 : 64;
		timer_rec **v = realloc(c->timers, cap * sizeof(*v));
		if (v == NULL) {
			return luaL_error(L, "out of memory");
		}
		c->timers = v;
		c->timers_cap = cap;
	}
	timer_rec *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return luaL_error(L, "out of memory");
	}
	c->timers[c->ntimers++] = t;
	t->c = c;
	lua_pushvalue(L, 3);
	t->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	sim_sched_new_chain(c->w.sched); /* a timer is its own thread */
	t->ev = sim_sched_at(c->w.sched, at, c->script_node, c->script_kind,
			     fire_timer, t);
	if (t->ev == 0) {
		return luaL_error(L, "cannot schedule: %s",
				  sim_strerror(sim_sched_error(c->w.sched)));
	}
	timer_rec **pt = lua_newuserdatauv(L, sizeof(*pt), 0);
	*pt = t;
	luaL_setmetatable(L, TIMER_MT);
	return 1;
}

static int w_after(lua_State *L)
{
	ctx *c = check_world(L, 1);
	sim_time d = check_duration(L, 2, "w:after", 0);
	sim_time now = sim_world_now(&c->w);
	return schedule(L, c, d > SIM_TIME_MAX - now ? SIM_TIME_MAX : now + d);
}

static int w_at(lua_State *L)
{
	ctx *c = check_world(L, 1);
	sim_time t = check_duration(L, 2, "w:at", 0);
	if (t < sim_world_now(&c->w)) {
		char a[64], b[64];
		return luaL_error(L, "w:at: time %s is in the past (now %s)",
				  sim_time_format(t, a, sizeof(a)),
				  sim_time_format(sim_world_now(&c->w), b,
						  sizeof(b)));
	}
	return schedule(L, c, t);
}

static int timer_cancel(lua_State *L)
{
	timer_rec *t = *(timer_rec **)luaL_checkudata(L, 1, TIMER_MT);
	int cancelled = 0;
	if (t->fn_ref != LUA_NOREF) {
		cancelled = sim_sched_cancel(t->c->w.sched, t->ev);
		luaL_unref(L, LUA_REGISTRYINDEX, t->fn_ref);
		t->fn_ref = LUA_NOREF;
	}
	lua_pushboolean(L, cancelled);
	return 1;
}

static int w_stop(lua_State *L)
{
	ctx *c = check_world(L, 1);
	sim_sched_stop(c->w.sched);
	return 0;
}

static const char *const run_keys[] = {"until_idle", "limit", "deadline",
				       "events", "allow_livelock", NULL};

static int w_run(lua_State *L)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	check_keys(L, 2, "w:run", run_keys);
	sim_run_limits lim = {.until = SIM_TIME_MAX, .max_events = 0};
	sim_time limit = opt_duration(L, 2, "limit", "w:run", -1);
	if (limit >= 0) {
		sim_time now = sim_world_now(&c->w);
		lim.until = limit > SIM_TIME_MAX - now ? SIM_TIME_MAX
						       : now + limit;
	}
	if (opt_field(L, 2, "deadline")) {
		sim_time u = check_duration(L, -1, "w:run: deadline", 0);
		if (u < lim.until) {
			lim.until = u;
		}
	}
	lua_pop(L, 1);
	lim.max_events = (uint64_t)opt_int(L, 2, "events", "w:run", 0, 0,
					   INT64_MAX);
	/* The run's caps bound every w:run: what is left of them. */
	const sim_limits *cap = &c->w.limits;
	uint64_t done = sim_sched_events(c->w.sched);
	uint64_t left = done < cap->max_events ? cap->max_events - done : 0;
	int events_capped = lim.max_events == 0 || lim.max_events > left;
	if (events_capped) {
		lim.max_events = left;
	}
	int time_capped = lim.until > cap->max_time_ns;
	if (time_capped) {
		lim.until = cap->max_time_ns;
	}
	int allow_livelock = 0;
	if (opt_field(L, 2, "allow_livelock")) {
		allow_livelock = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	c->ran = 1;

	enum sim_stop why = left == 0 ? SIM_STOP_EVENT_LIMIT
				      : sim_sched_run(c->w.sched, &lim);
	c->last_stop = why;
	char when[64];
	if (why == SIM_STOP_EVENT_LIMIT && events_capped) {
		sim_world_limit(&c->w, "events: %llu run (--max-events)",
				(unsigned long long)cap->max_events);
	} else if (why == SIM_STOP_TIME_LIMIT && time_capped &&
		   sim_sched_pending(c->w.sched) > 0) {
		sim_world_limit(&c->w,
				"virtual time: %s reached with events still "
				"due (--max-time)",
				sim_time_format(cap->max_time_ns, when,
						sizeof(when)));
	}
	if (c->w.limit_hit) {
		return luaL_error(L, "limit reached: %s", c->w.limit_msg);
	}
	if (c->cb_failed) {
		lua_pushstring(L, c->cb_msg);
		return lua_error(L);
	}
	if (c->w.fatal) {
		return luaL_error(L, "simulation error: %s", c->w.fatal_msg);
	}
	if (why == SIM_STOP_LIVELOCK) {
		int node, kind;
		uint64_t count;
		char t[64];
		sim_sched_livelock_culprit(c->w.sched, &node, &kind, &count);
		uint64_t ll = c->livelock_events;
		snprintf(c->stop_reason, sizeof(c->stop_reason),
			 "livelock at %s: %llu events without virtual time "
			 "advancing; the loop is node '%s' event '%s' (%llu "
			 "of the last %llu events)",
			 sim_time_format(sim_world_now(&c->w), t, sizeof(t)),
			 (unsigned long long)ll,
			 sim_sched_node_name(c->w.sched, node),
			 sim_sched_kind_name(c->w.sched, kind),
			 (unsigned long long)count,
			 (unsigned long long)(ll - ll / 2 + 1));
		if (!allow_livelock) {
			char loc[256];
			where(L, 1, loc, sizeof(loc));
			c->checks++;
			c->checks_failed++;
			if (c->checks_failed == 1) {
				snprintf(c->r->message, sizeof(c->r->message),
					 "%s: %s", loc, c->stop_reason);
			}
			if (c->o->verbosity > 0) {
				fprintf(stderr, "FAIL %s: %s\n", loc,
					c->stop_reason);
			}
			sim_trace_check(c->w.trace, sim_world_now(&c->w), 0,
					"no livelock", loc, c->stop_reason);
			if (c->o->on_check != NULL) {
				c->o->on_check(c->o->user_data, 0,
					       "no livelock");
			}
		}
	}
	lua_pushstring(L, sim_stop_name(why));
	return 1;
}

static int w_stop_reason(lua_State *L)
{
	ctx *c = check_world(L, 1);
	lua_pushstring(L, c->stop_reason);
	return 1;
}

static int w_events(lua_State *L)
{
	ctx *c = check_world(L, 1);
	lua_pushinteger(L, (lua_Integer)sim_sched_events(c->w.sched));
	return 1;
}

/* --- links --------------------------------------------------------------- */

static link_ud *check_link(lua_State *L, int idx)
{
	return *(link_ud **)luaL_checkudata(L, idx, LINK_MT);
}

static const char *const dir_keys[] = {
	"latency", "jitter", "loss", "burst", "dup", "reorder",
	"reorder_delay", "corrupt", "corrupt_bits", "bandwidth", "queue",
	"mtu", NULL};

static const char *const link_keys[] = {
	"name", "latency", "jitter", "loss", "burst", "dup", "reorder",
	"reorder_delay", "corrupt", "corrupt_bits", "bandwidth", "queue",
	"mtu", "a_to_b", "b_to_a", NULL};

static const char *const burst_keys[] = {"p_gb", "p_bg", "loss_good",
					 "loss_bad", NULL};

/* Reads link parameters from the table at |idx| over |p|. */
static void read_link_params(lua_State *L, int idx, const char *what,
			     sim_link_params *p)
{
	idx = lua_absindex(L, idx);
	p->latency_ns = opt_duration(L, idx, "latency", what, p->latency_ns);
	p->jitter_ns = opt_duration(L, idx, "jitter", what, p->jitter_ns);
	p->loss = opt_prob(L, idx, "loss", what, p->loss);
	if (opt_field(L, idx, "burst")) {
		luaL_checktype(L, -1, LUA_TTABLE);
		char bw[96];
		snprintf(bw, sizeof(bw), "%s: burst", what);
		check_keys(L, -1, bw, burst_keys);
		p->ge_enabled = 1;
		p->ge_p_gb = opt_prob(L, -1, "p_gb", bw, 0.01);
		p->ge_p_bg = opt_prob(L, -1, "p_bg", bw, 0.3);
		p->ge_loss_good = opt_prob(L, -1, "loss_good", bw, 0.0);
		p->ge_loss_bad = opt_prob(L, -1, "loss_bad", bw, 1.0);
	}
	lua_pop(L, 1);
	p->dup = opt_prob(L, idx, "dup", what, p->dup);
	p->reorder = opt_prob(L, idx, "reorder", what, p->reorder);
	p->reorder_delay_ns = opt_duration(L, idx, "reorder_delay", what,
					   p->reorder_delay_ns);
	p->corrupt = opt_prob(L, idx, "corrupt", what, p->corrupt);
	p->corrupt_bits = (int)opt_int(L, idx, "corrupt_bits", what,
				       p->corrupt_bits, 1, 64);
	p->bandwidth_bps = opt_bandwidth(L, idx, "bandwidth", what,
					 p->bandwidth_bps);
	p->queue_bytes = (uint64_t)opt_int(L, idx, "queue", what,
					   (int64_t)p->queue_bytes, 0,
					   INT64_MAX);
	p->mtu = (uint32_t)opt_int(L, idx, "mtu", what, p->mtu, 0, 65535);
}

static int l_link(lua_State *L)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	check_keys(L, 2, "w:link", link_keys);
	if (c->nlinks == MAX_LINKS) {
		return luaL_error(L, "w:link: too many links (limit %d)",
				  MAX_LINKS);
	}
	char name[64];
	snprintf(name, sizeof(name), "link%d", c->nlinks);
	if (opt_field(L, 2, "name")) {
		snprintf(name, sizeof(name), "%s", luaL_checkstring(L, -1));
	}
	lua_pop(L, 1);

	sim_link_params base;
	sim_link_params_default(&base);
	base.corrupt_bits = 1;
	read_link_params(L, 2, "w:link", &base);
	sim_link_params dirs[2] = {base, base};
	static const char *const dir_names[2] = {"a_to_b", "b_to_a"};
	for (int d = 0; d < 2; d++) {
		if (opt_field(L, 2, dir_names[d])) {
			char what[64];
			snprintf(what, sizeof(what), "w:link: %s", dir_names[d]);
			luaL_checktype(L, -1, LUA_TTABLE);
			check_keys(L, -1, what, dir_keys);
			read_link_params(L, -1, what, &dirs[d]);
		}
		lua_pop(L, 1);
		const char *bad = sim_link_params_check(&dirs[d]);
		if (bad != NULL) {
			return luaL_error(L, "w:link: %s", bad);
		}
	}
	sim_link *link = sim_link_new(&c->w, name, &dirs[0]);
	if (link == NULL) {
		return luaL_error(L, "w:link: out of memory");
	}
	sim_link_set_params(link, 1, &dirs[1]);
	link_ud *lu = calloc(1, sizeof(*lu));
	if (lu == NULL) {
		sim_link_del(link);
		return luaL_error(L, "w:link: out of memory");
	}
	lu->c = c;
	lu->link = link;
	lu->index = c->nlinks;
	lu->filter_ref = LUA_NOREF;
	c->links[c->nlinks++] = lu;
	link_ud **p = lua_newuserdatauv(L, sizeof(*p), 0);
	*p = lu;
	luaL_setmetatable(L, LINK_MT);
	return 1;
}

static int parse_dir(lua_State *L, int idx)
{
	const char *d = luaL_optstring(L, idx, "both");
	if (strcmp(d, "both") == 0) {
		return -1;
	}
	if (strcmp(d, "a->b") == 0 || strcmp(d, "a_to_b") == 0) {
		return 0;
	}
	if (strcmp(d, "b->a") == 0 || strcmp(d, "b_to_a") == 0) {
		return 1;
	}
	return luaL_error(L, "direction must be 'a->b', 'b->a' or 'both', "
			     "got '%s'",
			  d);
}

static const char *const partition_keys[] = {"from", "to", "dir", NULL};

static int link_partition(lua_State *L)
{
	link_ud *lu = check_link(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	check_keys(L, 2, "l:partition", partition_keys);
	sim_time from = opt_duration(L, 2, "from", "l:partition", 0);
	sim_time to = opt_duration(L, 2, "to", "l:partition", SIM_TIME_MAX);
	if (to < from) {
		return luaL_error(L, "l:partition: 'to' is before 'from'");
	}
	lua_getfield(L, 2, "dir");
	int dir = parse_dir(L, -1);
	lua_pop(L, 1);
	if (sim_link_partition(lu->link, dir, from, to) != 0) {
		return luaL_error(L, "l:partition: too many partitions");
	}
	return 0;
}

static int link_drop_nth(lua_State *L)
{
	link_ud *lu = check_link(L, 1);
	lua_Integer n = luaL_checkinteger(L, 2);
	if (n < 1) {
		return luaL_error(L, "l:drop_nth: n must be >= 1");
	}
	int dir = parse_dir(L, 3);
	if (sim_link_drop_nth(lu->link, dir, (uint64_t)n) != 0) {
		return luaL_error(L, "l:drop_nth: too many drop rules");
	}
	return 0;
}

static enum sim_link_verdict link_filter_cb(void *ud, const sim_packet *pkt,
					    int dir, sim_time *delay_ns,
					    char *reason)
{
	link_ud *lu = ud;
	ctx *c = lu->c;
	lua_State *L = c->L;
	if (c->cb_failed || lu->filter_ref == LUA_NOREF) {
		return SIM_LINK_PASS;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, lu->filter_ref);
	lua_createtable(L, 0, 8);
	lua_pushinteger(L, pkt->id);
	lua_setfield(L, -2, "id");
	lua_pushinteger(L, (lua_Integer)pkt->len);
	lua_setfield(L, -2, "len");
	lua_pushstring(L, dir == 0 ? "a->b" : "b->a");
	lua_setfield(L, -2, "dir");
	lua_pushstring(L, pkt->proto);
	lua_setfield(L, -2, "proto");
	lua_pushstring(L, pkt->ptype);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, pkt->info);
	lua_setfield(L, -2, "info");
	lua_pushinteger(L, sim_world_now(&c->w));
	lua_setfield(L, -2, "time");
	lua_pushlstring(L, (const char *)pkt->data, pkt->len);
	lua_setfield(L, -2, "bytes");
	if (lua_pcall(L, 1, 2, 0) != LUA_OK) {
		callback_failed(c, L);
		return SIM_LINK_PASS;
	}
	enum sim_link_verdict v = SIM_LINK_PASS;
	const char *verdict = lua_tostring(L, -2);
	if (verdict == NULL || strcmp(verdict, "pass") == 0) {
		v = SIM_LINK_PASS;
	} else if (strcmp(verdict, "drop") == 0) {
		v = SIM_LINK_DROP;
		snprintf(reason, 64, "script");
	} else if (strcmp(verdict, "delay") == 0) {
		sim_time t;
		const char *d = lua_tostring(L, -1);
		if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0) {
			t = lua_tointeger(L, -1);
		} else if (d == NULL || sim_time_parse(d, 0, &t) != 0) {
			lua_pop(L, 2);
			lua_pushfstring(L,
					"link filter: 'delay' needs a duration "
					"as its second result");
			callback_failed(c, L);
			return SIM_LINK_PASS;
		}
		*delay_ns = t;
		v = SIM_LINK_DELAY;
		snprintf(reason, 64, "script");
	} else {
		lua_pushfstring(L,
				"link filter: unknown verdict '%s' (use "
				"'pass', 'drop' or 'delay')",
				verdict);
		lua_remove(L, -2);
		lua_remove(L, -2);
		callback_failed(c, L);
		return SIM_LINK_PASS;
	}
	lua_pop(L, 2);
	return v;
}

static int link_filter(lua_State *L)
{
	link_ud *lu = check_link(L, 1);
	if (lu->filter_ref != LUA_NOREF) {
		luaL_unref(L, LUA_REGISTRYINDEX, lu->filter_ref);
		lu->filter_ref = LUA_NOREF;
	}
	if (lua_isnoneornil(L, 2)) {
		sim_link_set_filter(lu->link, NULL, NULL);
		return 0;
	}
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	lu->filter_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	sim_link_set_filter(lu->link, link_filter_cb, lu);
	return 0;
}

static const char *const fault_keys[] = {
	"name", "dir", "from", "proto", "type", "space", "pn", "frame",
	"info", "after", "before", "nth", "count", "action", "by", "bits",
	"behind", "timer", "offset", "of", "tls", "byte", "key_phase", NULL};

/* opt_text copies string field |key| of the table at |idx| into |out|. */
static void opt_text(lua_State *L, int idx, const char *key, char *out,
		     size_t n)
{
	if (opt_field(L, idx, key)) {
		size_t len;
		const char *s = lua_tolstring(L, -1, &len);
		if (lua_type(L, -1) != LUA_TSTRING || len == 0 || len >= n) {
			luaL_error(L,
				   "l:fault: %s must be a string of 1 to %d "
				   "characters",
				   key, (int)n - 1);
		}
		memcpy(out, s, len + 1);
	}
	lua_pop(L, 1);
}

/* l:fault{...}: a protocol-aware fault rule (sim/link.h). */
static int link_fault(lua_State *L)
{
	link_ud *lu = check_link(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	check_keys(L, 2, "l:fault", fault_keys);
	sim_fault_rule r;
	sim_fault_rule_init(&r);
	static const char *const actions[] = {"drop",	 "delay",
					      "dup",	 "corrupt",
					      "reorder", "at_timer", NULL};
	if (!opt_field(L, 2, "action")) {
		return luaL_error(L, "l:fault: action is required (drop, "
				     "delay, dup, corrupt or reorder)");
	}
	const char *act = lua_tostring(L, -1);
	int ai = 0;
	while (actions[ai] != NULL &&
	       (act == NULL || strcmp(actions[ai], act) != 0)) {
		ai++;
	}
	if (actions[ai] == NULL) {
		return luaL_error(L,
				  "l:fault: action must be drop, delay, dup, "
				  "corrupt, reorder or at_timer, got '%s'",
				  act ? act : luaL_typename(L, -1));
	}
	r.action = (enum sim_fault_action)ai;
	lua_pop(L, 1);
	lua_getfield(L, 2, "dir");
	r.dir = parse_dir(L, -1);
	lua_pop(L, 1);
	opt_text(L, 2, "from", r.from, sizeof(r.from));
	opt_text(L, 2, "proto", r.proto, sizeof(r.proto));
	opt_text(L, 2, "type", r.type, sizeof(r.type));
	opt_text(L, 2, "space", r.space, sizeof(r.space));
	opt_text(L, 2, "frame", r.frame, sizeof(r.frame));
	opt_text(L, 2, "info", r.info, sizeof(r.info));
	opt_text(L, 2, "tls", r.tls, sizeof(r.tls));
	r.pn = opt_int(L, 2, "pn", "l:fault", -1, 0, INT64_MAX);
	r.byte = opt_int(L, 2, "byte", "l:fault", -1, 0, INT64_MAX);
	r.key_phase = (int)opt_int(L, 2, "key_phase", "l:fault", -1, 0, 1);
	r.after_ns = opt_duration(L, 2, "after", "l:fault", 0);
	r.before_ns = opt_duration(L, 2, "before", "l:fault", SIM_TIME_MAX);
	r.nth = (uint64_t)opt_int(L, 2, "nth", "l:fault", 0, 1, INT64_MAX);
	r.count = (uint64_t)opt_int(L, 2, "count", "l:fault", 0, 1,
				    INT64_MAX);
	r.delay_ns = opt_duration(L, 2, "by", "l:fault", 0);
	r.bits = (int)opt_int(L, 2, "bits", "l:fault", 1, 1, 64);
	r.behind = (uint64_t)opt_int(L, 2, "behind", "l:fault", 1, 1, 1000000);
	opt_text(L, 2, "timer", r.timer, sizeof(r.timer));
	r.offset_ns = opt_time(L, 2, "offset", "l:fault", 0, 1);
	r.timer_side = 1;
	if (opt_field(L, 2, "of")) {
		const char *of = lua_tostring(L, -1);
		if (of == NULL || (strcmp(of, "receiver") != 0 &&
				   strcmp(of, "sender") != 0)) {
			return luaL_error(L, "l:fault: of must be 'receiver' "
					     "or 'sender'");
		}
		r.timer_side = of[0] == 'r';
	}
	lua_pop(L, 1);
	if (r.action == SIM_FAULT_ACT_AT_TIMER && r.timer[0] == '\0') {
		return luaL_error(L, "l:fault: action 'at_timer' needs timer = "
				     "a timer name (idle, handshake, pto, ack, "
				     "close; TLS: handshake, retransmit)");
	}
	if (r.action == SIM_FAULT_ACT_DELAY && r.delay_ns <= 0) {
		return luaL_error(L, "l:fault: action 'delay' needs by = a "
				     "duration");
	}
	if (r.before_ns <= r.after_ns) {
		return luaL_error(L, "l:fault: 'before' is not after 'after'");
	}
	snprintf(r.name, sizeof(r.name), "%s", actions[r.action]);
	opt_text(L, 2, "name", r.name, sizeof(r.name));
	int rc = sim_link_add_fault(lu->link, &r);
	if (rc != 0) {
		return luaL_error(L, "l:fault: %s",
				  rc == SIM_ELIMIT ? "too many fault rules "
						     "on this link (256)"
						   : sim_strerror(rc));
	}
	return 0;
}

static int link_stats(lua_State *L)
{
	link_ud *lu = check_link(L, 1);
	int dir = parse_dir(L, 2);
	if (dir < 0) {
		return luaL_error(L, "l:stats: give a direction, 'a->b' or "
				     "'b->a'");
	}
	sim_link_stats st;
	sim_link_get_stats(lu->link, dir, &st);
	lua_createtable(L, 0, 7);
#define F(name)                                                              \
	lua_pushinteger(L, (lua_Integer)st.name);                            \
	lua_setfield(L, -2, #name)
	F(submitted);
	F(delivered);
	F(lost);
	F(duplicated);
	F(corrupted);
	F(reordered);
	F(bytes_delivered);
#undef F
	return 1;
}

/* --- endpoints ----------------------------------------------------------- */

static ep_ud *check_ep(lua_State *L, int idx)
{
	return *(ep_ud **)luaL_checkudata(L, idx, EP_MT);
}

static int ep_handler(void *ud, sim_ep *ep, const sim_ep_event *ev)
{
	ep_ud *eu = ud;
	ctx *c = eu->c;
	lua_State *L = c->L;
	(void)ep;
	if (c->o->verbosity > 1) {
		char t[64], line[512];
		fprintf(stderr, "[%s] %s: %s\n",
			sim_time_format(sim_world_now(&c->w), t, sizeof(t)),
			sim_ep_name(eu->ep),
			sim_ep_event_format(ev, line, sizeof(line)));
	}
	if (c->cb_failed) {
		return SIM_EP_ANSWER_NONE;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, eu->handlers_ref);
	if (lua_getfield(L, -1, ev->name) != LUA_TFUNCTION) {
		lua_pop(L, 2);
		return SIM_EP_ANSWER_NONE;
	}
	lua_remove(L, -2);
	lua_rawgeti(L, LUA_REGISTRYINDEX, eu->handlers_ref);
	lua_getfield(L, -1, "\1self");
	lua_remove(L, -2);
	lua_createtable(L, 0, ev->nfields + 1);
	lua_pushstring(L, ev->name);
	lua_setfield(L, -2, "event");
	for (int i = 0; i < ev->nfields; i++) {
		if (ev->f[i].s != NULL) {
			lua_pushlstring(L, ev->f[i].s, ev->f[i].len);
		} else {
			lua_pushinteger(L, ev->f[i].i);
		}
		lua_setfield(L, -2, ev->f[i].key);
	}
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		callback_failed(c, L);
		return SIM_EP_ANSWER_NONE;
	}
	int answer = SIM_EP_ANSWER_NONE;
	if (lua_isboolean(L, -1)) {
		answer = lua_toboolean(L, -1) ? SIM_EP_ANSWER_ACCEPT
					      : SIM_EP_ANSWER_REJECT;
	} else if (lua_type(L, -1) == LUA_TSTRING &&
		   strcmp(lua_tostring(L, -1), "pending") == 0) {
		answer = SIM_EP_ANSWER_PENDING;
	}
	lua_pop(L, 1);
	return answer;
}

typedef struct ep_spec {
	const char *ctor; /* Lua name, for messages */
	const sim_ep_class *cls;
	void *(*make)(const sim_ep_env *, void *, char *, size_t);
	int default_side;
	const char *default_name;
} ep_spec;

/* Creates an endpoint from the options table at index 2. |cfg| has been
 * filled from the class-specific options already. */
static int new_endpoint(lua_State *L, ctx *c, const ep_spec *spec, void *cfg)
{
	if (c->neps == MAX_EPS) {
		return luaL_error(L, "%s: too many endpoints (limit %d)",
				  spec->ctor, MAX_EPS);
	}
	char name[64];
	snprintf(name, sizeof(name), "%s", spec->default_name);
	if (opt_field(L, 2, "name")) {
		snprintf(name, sizeof(name), "%s", luaL_checkstring(L, -1));
	}
	lua_pop(L, 1);
	for (int i = 0; i < c->neps; i++) {
		if (strcmp(sim_ep_name(c->eps[i]->ep), name) == 0) {
			return luaL_error(L, "%s: an endpoint named '%s' exists "
					     "already (give name=)",
					  spec->ctor, name);
		}
	}
	link_ud *lu = NULL;
	if (opt_field(L, 2, "link")) {
		lu = check_link(L, -1);
	} else if (c->nlinks > 0) {
		lu = c->links[c->nlinks - 1];
	}
	lua_pop(L, 1);
	int side = spec->default_side;
	if (opt_field(L, 2, "side")) {
		const char *s = luaL_checkstring(L, -1);
		if (strcmp(s, "a") == 0) {
			side = 0;
		} else if (strcmp(s, "b") == 0) {
			side = 1;
		} else {
			return luaL_error(L, "%s: side must be 'a' or 'b'",
					  spec->ctor);
		}
	}
	lua_pop(L, 1);
	if (lu == NULL) {
		return luaL_error(L, "%s: no link: create one with w:link{} "
				     "first",
				  spec->ctor);
	}
	if (lu->attached[side]) {
		return luaL_error(L, "%s: side %s of link '%s' is taken",
				  spec->ctor, side ? "b" : "a",
				  sim_link_name(lu->link));
	}
	uint32_t qcap = (uint32_t)opt_int(L, 2, "queue_cap", spec->ctor,
					  c->default_queue_cap, 0, 10000000);
	uint32_t dmax = (uint32_t)opt_int(L, 2, "drain_max", spec->ctor,
					  c->default_drain_max, 0, 1000000);
	double drift = 0;
	if (opt_field(L, 2, "clock_drift")) {
		drift = lua_tonumber(L, -1);
		if (!lua_isnumber(L, -1) || !(drift > -0.5 && drift < 0.5)) {
			return luaL_error(L,
					  "%s: clock_drift must be a number in "
					  "(-0.5, 0.5) (e.g. 1e-4: 100 ppm "
					  "fast)",
					  spec->ctor);
		}
	}
	lua_pop(L, 1);
	char err[256] = "";
	sim_ep *ep = sim_ep_new(&c->w, name, spec->cls, spec->make, cfg, qcap,
				dmax, err, sizeof(err));
	if (ep == NULL) {
		return luaL_error(L, "%s: %s", spec->ctor, err);
	}
	sim_ep_set_clock_drift(ep, (int64_t)(drift * 1e9));
	ep_ud *eu = calloc(1, sizeof(*eu));
	if (eu == NULL) {
		sim_ep_del(ep);
		return luaL_error(L, "%s: out of memory", spec->ctor);
	}
	eu->c = c;
	eu->ep = ep;
	eu->index = c->neps;
	c->eps[c->neps++] = eu;
	sim_ep_attach(ep, lu->link, side);
	lu->attached[side] = 1;

	ep_ud **p = lua_newuserdatauv(L, sizeof(*p), 0);
	*p = eu;
	luaL_setmetatable(L, EP_MT);
	lua_newtable(L); /* handlers */
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "\1self");
	eu->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	sim_ep_set_handler(ep, ep_handler, eu);
	return 1;
}

static const char *const echo_keys[] = {
	"name", "link", "side", "queue_cap", "drain_max", "clock_drift", "count",
	"interval", "rto", "max_retries", "size", NULL};

static void read_echo(lua_State *L, const char *what, proto_echo_config *cfg)
{
	check_keys(L, 2, what, echo_keys);
	proto_echo_config_default(cfg);
	cfg->count = (uint32_t)opt_int(L, 2, "count", what, cfg->count, 0,
				       1000000);
	cfg->interval_ns = opt_duration(L, 2, "interval", what,
					cfg->interval_ns);
	cfg->rto_ns = opt_duration(L, 2, "rto", what, cfg->rto_ns);
	cfg->max_retries = (uint32_t)opt_int(L, 2, "max_retries", what,
					     cfg->max_retries, 0, 30);
	cfg->size = (uint32_t)opt_int(L, 2, "size", what, cfg->size, 16,
				      65507);
	const char *bad = proto_echo_config_check(cfg);
	if (bad != NULL) {
		luaL_error(L, "%s: %s", what, bad);
	}
}

static int echo_ctor(lua_State *L, const ep_spec *spec)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	proto_echo_config cfg;
	read_echo(L, spec->ctor, &cfg);
	return new_endpoint(L, c, spec, &cfg);
}

static int l_echo_client(lua_State *L)
{
	static const ep_spec spec = {"w:echo_client",
				     &proto_echo_client_class,
				     proto_echo_make_client, 0, "client"};
	return echo_ctor(L, &spec);
}

static int l_echo_server(lua_State *L)
{
	static const ep_spec spec = {"w:echo_server",
				     &proto_echo_server_class,
				     proto_echo_make_server, 1, "server"};
	return echo_ctor(L, &spec);
}

static int ep_on(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	const char *name = luaL_checkstring(L, 2);
	if (!lua_isnil(L, 3)) {
		luaL_checktype(L, 3, LUA_TFUNCTION);
	}
	if (name[0] == '\1') {
		return luaL_argerror(L, 2, "bad event name");
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, eu->handlers_ref);
	lua_pushvalue(L, 3);
	lua_setfield(L, -2, name);
	return 0;
}

/* Enqueues API operation |type| on |eu| and returns its op id to Lua. */
static int enqueue(lua_State *L, ep_ud *eu, const char *type,
		   const sim_op_args *args)
{
	int64_t id = sim_ep_call(eu->ep, type, args);
	if (id == SIM_EINVAL) {
		return luaL_error(L, "%s has no operation '%s'",
				  sim_ep_kind(eu->ep), type);
	}
	if (id < 0) {
		return luaL_error(L, "%s: %s: %s", sim_ep_name(eu->ep), type,
				  sim_strerror((int)id));
	}
	lua_pushinteger(L, id);
	return 1;
}

/* call_api_at enqueues |type| with the integer arguments from stack
 * index |first| on. */
static int call_api_at(lua_State *L, ep_ud *eu, const char *type, int first)
{
	sim_op_args args;
	memset(&args, 0, sizeof(args));
	int top = lua_gettop(L);
	for (int i = 0; i < 4 && first + i <= top; i++) {
		args.i[i] = luaL_checkinteger(L, first + i);
	}
	return enqueue(L, eu, type, &args);
}

/* Generic API call: ep:call("name"), and the named shorthands below. */
static int call_api(lua_State *L, ep_ud *eu, const char *type)
{
	return call_api_at(L, eu, type, 2);
}

static int ep_call(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	/* |type| stays at index 2, so the collector cannot free it while
	 * an error message still reads it. */
	const char *type = luaL_checkstring(L, 2);
	return call_api_at(L, eu, type, 3);
}

static int ep_start(lua_State *L)
{
	return call_api(L, check_ep(L, 1), "start");
}

static int ep_close(lua_State *L)
{
	return call_api(L, check_ep(L, 1), "close");
}

static int ep_state(lua_State *L)
{
	lua_pushstring(L, sim_ep_state(check_ep(L, 1)->ep));
	return 1;
}

static int ep_name(lua_State *L)
{
	lua_pushstring(L, sim_ep_name(check_ep(L, 1)->ep));
	return 1;
}

static int ep_queue(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	const sim_opq *q = sim_ep_queue(eu->ep);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, q->len);
	lua_setfield(L, -2, "depth");
	lua_pushinteger(L, (lua_Integer)q->max_depth);
	lua_setfield(L, -2, "max_depth");
	lua_pushinteger(L, (lua_Integer)q->processed);
	lua_setfield(L, -2, "processed");
	return 1;
}

static int ep_stats(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	const char *kind = sim_ep_kind(eu->ep);
	if (strcmp(kind, "echo_client") != 0) {
		return luaL_error(L, "%s has no stats", kind);
	}
	proto_echo_stats st;
	proto_echo_get_stats(sim_ep_impl(eu->ep), &st);
	lua_createtable(L, 0, 8);
#define F(name)                                                              \
	lua_pushinteger(L, (lua_Integer)st.name);                            \
	lua_setfield(L, -2, #name)
	F(sent);
	F(echoed);
	F(retransmits);
	F(corrupt);
	F(duplicates);
	F(rtt_min_ns);
	F(rtt_max_ns);
#undef F
	lua_pushinteger(L, st.echoed ? st.rtt_sum_ns / st.echoed : 0);
	lua_setfield(L, -2, "rtt_avg_ns");
	return 1;
}

/* --- PKI and TLS endpoints ----------------------------------------------- */

static const proto_pki_chain *check_pki(lua_State *L, int idx)
{
	return *(proto_pki_chain **)luaL_checkudata(L, idx, PKI_MT);
}

/* A duration that may be negative (an offset from a reference time). */
static sim_time opt_offset(lua_State *L, int idx, const char *key,
			   const char *what, sim_time def)
{
	return opt_time(L, idx, key, what, def, 1);
}

/* Picks one of |names| for option |key|; returns its index or |def|. */
static int opt_enum(lua_State *L, int idx, const char *key, const char *what,
		    const char *const *names, int def)
{
	int v = def;
	if (opt_field(L, idx, key)) {
		const char *s = luaL_checkstring(L, -1);
		v = -1;
		for (int i = 0; names[i] != NULL; i++) {
			if (strcmp(names[i], s) == 0) {
				v = i;
			}
		}
		if (v < 0) {
			char all[160] = "";
			size_t n = 0;
			for (int i = 0; names[i] != NULL; i++) {
				n += (size_t)snprintf(all + n, sizeof(all) - n,
						      "%s%s", i ? ", " : "",
						      names[i]);
			}
			luaL_error(L, "%s: %s must be one of %s, got '%s'",
				   what, key, all, s);
		}
	}
	lua_pop(L, 1);
	return v;
}

static int opt_bool(lua_State *L, int idx, const char *key, const char *what,
		    int def)
{
	int v = def;
	if (opt_field(L, idx, key)) {
		if (!lua_isboolean(L, -1)) {
			luaL_error(L, "%s: %s must be true or false", what,
				   key);
		}
		v = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

static const char *const pki_keys[] = {"alg", "name", "not_before",
				       "not_after", NULL};
static const char *const alg_names[] = {"p256", "ed25519", NULL};

static int l_pki(lua_State *L)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	check_keys(L, 2, "w:pki", pki_keys);
	if (c->npkis == MAX_PKIS) {
		return luaL_error(L, "w:pki: too many PKIs (limit %d)",
				  MAX_PKIS);
	}
	proto_pki_chain_params p;
	memset(&p, 0, sizeof(p));
	p.alg = (proto_pki_alg)opt_enum(L, 2, "alg", "w:pki", alg_names, 0);
	p.dns_name = "server.test";
	if (opt_field(L, 2, "name")) {
		p.dns_name = luaL_checkstring(L, -1);
	}
	p.epoch_s = c->epoch_ns / SIM_S;
	p.leaf_not_before_s =
		opt_offset(L, 2, "not_before", "w:pki", 0) / SIM_S;
	p.leaf_not_after_s = opt_offset(L, 2, "not_after", "w:pki", 0) / SIM_S;
	if (p.leaf_not_before_s != 0 || p.leaf_not_after_s != 0) {
		if (p.leaf_not_after_s <= p.leaf_not_before_s) {
			return luaL_error(L, "w:pki: not_after must be later "
					     "than not_before");
		}
	}
	proto_pki_clock_set(c->epoch_ns + sim_world_now(&c->w));
	/* A function of the parameters and of which w:pki of the run this
	 * is, never of the seed: memoised, it costs a run nothing after the
	 * first (proto/pki.h). */
	proto_pki_chain *chain = NULL;
	int rc = proto_pki_chain_get(&p, (uint32_t)c->npkis, &chain);
	lua_pop(L, 1); /* name */
	if (rc != 0) {
		return luaL_error(L, "w:pki: %s", sim_strerror(rc));
	}
	c->pkis[c->npkis++] = chain;
	proto_pki_chain **ud = lua_newuserdatauv(L, sizeof(*ud), 0);
	*ud = chain;
	luaL_setmetatable(L, PKI_MT);
	return 1;
}

static const char *const tls_keys[] = {
	"name", "link", "side", "queue_cap", "drain_max", "clock_drift",
	"clock_offset", "pki", "host",
	"aia_fetch", "min_version", "max_version", "groups", "ciphers", "chain", "trust",
	"verify", "async_sign", "acceptor", "auto_handshake", "autoread",
	"shutdown_wait", "acceptor_alert", "deadline", "close",
	"unexpected_eof", "mss", "rto",
	"rto_max", "max_retries", "sndbuf", "window", "split_at", "read_chunk",
	"max_record", "shutdown_timeout", "split_in",
	NULL};
static const char *const version_names[] = {"1.2", "1.3", NULL};
static const char *const chain_names[] = {"full", "leaf", NULL};
static const char *const trust_names[] = {"root", "root+intermediate",
					  NULL};
static const char *const verify_names[] = {"sync", "async", NULL};
static const char *const acceptor_alert_names[] = {"flush", "drop", NULL};
static const char *const deadline_names[] = {"honour", "ignore", NULL};
static const char *const close_names[] = {"notify", "finish_handshake",
					  "transport", NULL};
static const char *const eof_names[] = {"error", "ignore", NULL};

static void read_tls(lua_State *L, ctx *c, const char *what,
		     proto_tls_config *cfg)
{
	check_keys(L, 2, what, tls_keys);
	if (!opt_field(L, 2, "pki")) {
		luaL_error(L, "%s: pki is required (pki = w:pki{})", what);
	}
	cfg->chain = check_pki(L, -1);
	lua_pop(L, 1);
	if (opt_field(L, 2, "host")) {
		cfg->name = luaL_checkstring(L, -1); /* the table keeps it */
	}
	lua_pop(L, 1);
	static const uint16_t versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
	cfg->min_version = versions[opt_enum(L, 2, "min_version", what,
					     version_names, 0)];
	cfg->max_version = versions[opt_enum(L, 2, "max_version", what,
					     version_names, 1)];
	if (cfg->min_version > cfg->max_version) {
		luaL_error(L, "%s: min_version is above max_version", what);
	}
	if (opt_field(L, 2, "groups")) {
		cfg->groups = luaL_checkstring(L, -1);
	}
	lua_pop(L, 1);
	if (opt_field(L, 2, "ciphers")) {
		cfg->ciphers = luaL_checkstring(L, -1);
	}
	lua_pop(L, 1);
	cfg->send_chain = opt_enum(L, 2, "chain", what, chain_names, 0) == 0;
	cfg->cached_intermediate =
		opt_enum(L, 2, "trust", what, trust_names, 0) == 1;
	cfg->aia_fetch_ns = opt_duration(L, 2, "aia_fetch", what, -1);
	cfg->verify_async = opt_enum(L, 2, "verify", what, verify_names, 0);
	cfg->async_sign = opt_bool(L, 2, "async_sign", what, 0);
	cfg->acceptor = opt_bool(L, 2, "acceptor", what, 0);
	cfg->auto_handshake = opt_bool(L, 2, "auto_handshake", what, 1);
	cfg->autoread = opt_bool(L, 2, "autoread", what, 1);
	cfg->shutdown_wait = opt_bool(L, 2, "shutdown_wait", what, 1);
	cfg->acceptor_alert = (enum proto_tls_acceptor_alert)opt_enum(
		L, 2, "acceptor_alert", what, acceptor_alert_names, 0);
	cfg->deadline = (enum proto_tls_deadline)opt_enum(
		L, 2, "deadline", what, deadline_names, 0);
	cfg->close = (enum proto_tls_close)opt_enum(L, 2, "close", what,
						    close_names, 0);
	cfg->unexpected_eof = (enum proto_tls_unexpected_eof)opt_enum(
		L, 2, "unexpected_eof", what, eof_names, 0);
	proto_stream_config *s = &cfg->stream;
	s->mss = (uint32_t)opt_int(L, 2, "mss", what, s->mss, 1, 65000);
	if (opt_field(L, 2, "split_at")) {
		if (!lua_istable(L, -1)) {
			luaL_error(L, "%s: split_at must be a list of byte "
				      "offsets",
				   what);
		}
		lua_Integer n = luaL_len(L, -1);
		if (n > PROTO_STREAM_SPLITS_MAX) {
			luaL_error(L, "%s: split_at: at most %d offsets", what,
				   PROTO_STREAM_SPLITS_MAX);
		}
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, i);
			lua_Integer v = lua_tointeger(L, -1);
			if (!lua_isinteger(L, -1) || v < 1 ||
			    (i > 1 && (uint64_t)v <= s->split_at[i - 2])) {
				luaL_error(L,
					   "%s: split_at must hold ascending "
					   "byte offsets >= 1",
					   what);
			}
			s->split_at[i - 1] = (uint64_t)v;
			lua_pop(L, 1);
		}
		s->nsplit = (uint32_t)n;
	}
	lua_pop(L, 1);
	if (opt_field(L, 2, "split_in")) {
		/* split_in = { msg = "Certificate", at = { 10, 200 } } */
		const char *bad = NULL;
		if (!lua_istable(L, -1)) {
			bad = "must be a table { msg = NAME, at = { offsets } }";
		} else {
			lua_getfield(L, -1, "msg");
			size_t len = 0;
			const char *m = lua_tolstring(L, -1, &len);
			if (lua_type(L, -1) != LUA_TSTRING || len == 0 ||
			    len >= sizeof(cfg->split_msg)) {
				bad = "msg must be a TLS message name "
				      "(\"Certificate\", \"Finished\"...)";
			} else {
				memcpy(cfg->split_msg, m, len + 1);
			}
			lua_pop(L, 1);
			lua_getfield(L, -1, "at");
			if (bad == NULL && lua_isinteger(L, -1)) {
				lua_createtable(L, 1, 0);
				lua_insert(L, -2);
				lua_rawseti(L, -2, 1);
			}
			lua_Integer n = bad == NULL && lua_istable(L, -1)
					    ? luaL_len(L, -1)
					    : 0;
			if (bad == NULL && (n < 1 || n > 8)) {
				bad = "at must be an offset or a list of 1 to "
				      "8 ascending offsets";
			}
			for (lua_Integer i = 1; bad == NULL && i <= n; i++) {
				lua_rawgeti(L, -1, i);
				lua_Integer v = lua_tointeger(L, -1);
				if (!lua_isinteger(L, -1) || v < 1 ||
				    (i > 1 && (uint64_t)v <=
						  cfg->split_msg_at[i - 2])) {
					bad = "at must hold ascending offsets "
					      ">= 1 into the message";
				}
				cfg->split_msg_at[i - 1] = (uint64_t)v;
				lua_pop(L, 1);
			}
			cfg->nsplit_msg = (uint32_t)n;
			lua_pop(L, 1);
		}
		if (bad != NULL) {
			luaL_error(L, "%s: split_in: %s", what, bad);
		}
	}
	lua_pop(L, 1);
	cfg->read_chunk = (uint32_t)opt_int(L, 2, "read_chunk", what, 0, 0,
					    1 << 24);
	cfg->max_record = (uint32_t)opt_int(L, 2, "max_record", what, 0, 512,
					    16384);
	cfg->shutdown_timeout_ns =
		opt_duration(L, 2, "shutdown_timeout", what, 0);
	s->sndbuf = (uint32_t)opt_int(L, 2, "sndbuf", what, s->sndbuf, 1,
				      1 << 30);
	s->window = (uint32_t)opt_int(L, 2, "window", what, s->window, 1,
				      65535);
	s->max_retries = (uint32_t)opt_int(L, 2, "max_retries", what,
					   s->max_retries, 0, 30);
	s->rto_initial_ns = opt_duration(L, 2, "rto", what, s->rto_initial_ns);
	s->rto_max_ns = opt_duration(L, 2, "rto_max", what, s->rto_max_ns);
	const char *bad = proto_stream_config_check(s);
	if (bad != NULL) {
		luaL_error(L, "%s: %s", what, bad);
	}
	cfg->epoch_ns = c->epoch_ns;
}

static int tls_ctor(lua_State *L, const ep_spec *spec, int is_server)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	proto_tls_config cfg;
	proto_tls_config_default(&cfg, is_server);
	read_tls(L, c, spec->ctor, &cfg);
	/* The endpoint's wall clock: certificate validity, tickets. */
	cfg.epoch_ns += opt_time(L, 2, "clock_offset", spec->ctor, 0, 1);
	proto_pki_clock_set(c->epoch_ns + sim_world_now(&c->w));
	return new_endpoint(L, c, spec, &cfg);
}

static int l_tls_client(lua_State *L)
{
	static const ep_spec spec = {"w:tls_client", &proto_tls_client_class,
				     proto_tls_make, 0, "client"};
	return tls_ctor(L, &spec, 0);
}

static int l_tls_server(lua_State *L)
{
	static const ep_spec spec = {"w:tls_server", &proto_tls_server_class,
				     proto_tls_make, 1, "server"};
	return tls_ctor(L, &spec, 1);
}

static ep_ud *check_tls(lua_State *L, int idx)
{
	ep_ud *eu = check_ep(L, idx);
	const char *kind = sim_ep_kind(eu->ep);
	if (strncmp(kind, "tls_", 4) != 0) {
		luaL_error(L, "%s is not a TLS endpoint", kind);
	}
	return eu;
}

/* Enqueues |type| with a copy of a Lua string as its data. */
static int call_data(lua_State *L, const char *type)
{
	ep_ud *eu = check_tls(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	sim_op_args args;
	memset(&args, 0, sizeof(args));
	args.data = malloc(len > 0 ? len : 1);
	if (args.data == NULL) {
		return luaL_error(L, "%s: out of memory", type);
	}
	memcpy(args.data, s, len);
	args.len = len;
	return enqueue(L, eu, type, &args);
}

static int tls_write(lua_State *L)
{
	return call_data(L, "write");
}

static int tls_send_raw(lua_State *L)
{
	return call_data(L, "send_raw");
}

/* ep:validation_complete(ok) and friends: a boolean argument. */
static int call_bool(lua_State *L, const char *type)
{
	ep_ud *eu = check_ep(L, 1);
	luaL_checktype(L, 2, LUA_TBOOLEAN);
	int ok = lua_toboolean(L, 2);
	lua_settop(L, 1);
	lua_pushinteger(L, ok);
	return call_api(L, eu, type);
}

static int tls_validation_complete(lua_State *L)
{
	return call_bool(L, "validation_complete");
}

static int tls_sign_complete(lua_State *L)
{
	return call_bool(L, "sign_complete");
}

static int tls_client_hello_complete(lua_State *L)
{
	return call_bool(L, "client_hello_complete");
}

static int tls_handshake(lua_State *L)
{
	ep_ud *eu = check_tls(L, 1);
	opt_table(L, 2);
	static const char *const keys[] = {"deadline", NULL};
	check_keys(L, 2, "handshake", keys);
	sim_time d = opt_duration(L, 2, "deadline", "handshake", 0);
	lua_settop(L, 1);
	lua_pushinteger(L, d);
	return call_api(L, eu, "handshake");
}

static int is_quic(const ep_ud *eu)
{
	return strncmp(sim_ep_kind(eu->ep), "quic_", 5) == 0;
}

static int quic_shutdown(lua_State *L, ep_ud *eu);

static int tls_shutdown(lua_State *L)
{
	if (is_quic(check_ep(L, 1))) {
		return quic_shutdown(L, check_ep(L, 1));
	}
	ep_ud *eu = check_tls(L, 1);
	opt_table(L, 2);
	static const char *const keys[] = {"wait", NULL};
	check_keys(L, 2, "shutdown", keys);
	int wait = -1;
	if (opt_field(L, 2, "wait")) {
		luaL_checktype(L, -1, LUA_TBOOLEAN);
		wait = lua_toboolean(L, -1);
	}
	lua_settop(L, 1);
	lua_pushinteger(L, wait);
	return call_api(L, eu, "shutdown");
}

#define TLS_SIMPLE(fn, op)                                                   \
	static int fn(lua_State *L)                                          \
	{                                                                    \
		return call_api(L, check_tls(L, 1), op);                     \
	}
TLS_SIMPLE(tls_connect, "connect")
TLS_SIMPLE(tls_accept, "accept")
TLS_SIMPLE(tls_read, "read")
TLS_SIMPLE(tls_close_write, "close_write")
TLS_SIMPLE(tls_abort, "abort")
#undef TLS_SIMPLE

static int tls_outcome(lua_State *L)
{
	lua_pushstring(L, proto_tls_outcome(sim_ep_impl(check_tls(L, 1)->ep)));
	return 1;
}

static int quic_received(lua_State *L, ep_ud *eu);
static int quic_info(lua_State *L, ep_ud *eu);

static int tls_received(lua_State *L)
{
	if (is_quic(check_ep(L, 1))) {
		return quic_received(L, check_ep(L, 1));
	}
	size_t len;
	const uint8_t *p =
		proto_tls_received(sim_ep_impl(check_tls(L, 1)->ep), &len);
	lua_pushlstring(L, (const char *)p, len);
	return 1;
}

static int tls_info(lua_State *L)
{
	if (is_quic(check_ep(L, 1))) {
		return quic_info(L, check_ep(L, 1));
	}
	proto_tls_info in;
	proto_tls_get_info(sim_ep_impl(check_tls(L, 1)->ep), &in);
	lua_createtable(L, 0, 16);
#define F(name)                                                              \
	lua_pushinteger(L, (lua_Integer)in.name);                            \
	lua_setfield(L, -2, #name)
	F(handshake_done_ns);
	F(closed_ns);
	F(peer_closed_ns);
	F(alert_sent);
	F(alert_received);
	F(verify_error);
	F(bytes_written);
	F(bytes_read);
	F(stream_offset);
#undef F
#define F(name)                                                              \
	lua_pushinteger(L, (lua_Integer)in.stream.name);                     \
	lua_setfield(L, -2, "stream_" #name)
	F(segs_sent);
	F(segs_received);
	F(retransmits);
	F(dropped_corrupt);
	F(dropped_duplicate);
#undef F
	lua_pushboolean(L, in.close_notify_sent);
	lua_setfield(L, -2, "close_notify_sent");
	lua_pushboolean(L, in.close_notify_received);
	lua_setfield(L, -2, "close_notify_received");
	lua_pushstring(L, in.stream_state);
	lua_setfield(L, -2, "stream_state");
	return 1;
}

static int tls_attack(lua_State *L)
{
	ep_ud *eu = check_tls(L, 1);
	opt_table(L, 2);
	static const char *const keys[] = {"kind", "offset", NULL};
	static const char *const kinds[] = {"fin", "rst", NULL};
	check_keys(L, 2, "attack", keys);
	int k = opt_enum(L, 2, "kind", "attack", kinds, 0);
	int64_t off = opt_int(L, 2, "offset", "attack", -1, 0, INT64_MAX);
	int rc = proto_tls_attack(sim_ep_impl(eu->ep),
				  sim_world_now(&eu->c->w), kinds[k], off);
	if (rc != 0) {
		return luaL_error(L, "attack: %s", sim_strerror(rc));
	}
	sim_ep_flush(eu->ep);
	return 0;
}


/* --- QUIC endpoints ------------------------------------------------------ */

static const char *const quic_keys[] = {
	"name", "link", "side", "queue_cap", "drain_max", "clock_drift",
	"clock_offset", "pki", "host",
	"aia_fetch", "chain", "trust", "verify", "close_rule", "early_packet",
	"shutdown_queue", "app_error", "idle_timeout", "handshake_timeout",
	"coalesce",
	"max_ack_delay", "key_update_every", NULL};
static const char *const qverify_names[] = {"sync", "async", "deferred",
					    NULL};
static const char *const close_rule_names[] = {"rfc", "write_key", NULL};
static const char *const early_names[] = {"buffer", "drop", NULL};
static const char *const queue_names[] = {"tail", "front", NULL};

static int quic_ctor(lua_State *L, const ep_spec *spec, int is_server)
{
	ctx *c = check_world(L, 1);
	opt_table(L, 2);
	const char *what = spec->ctor;
	check_keys(L, 2, what, quic_keys);
	proto_quic_config cfg;
	proto_quic_config_default(&cfg, is_server);
	if (!opt_field(L, 2, "pki")) {
		return luaL_error(L, "%s: pki is required (pki = w:pki{})",
				  what);
	}
	cfg.chain = check_pki(L, -1);
	lua_pop(L, 1);
	if (opt_field(L, 2, "host")) {
		cfg.name = luaL_checkstring(L, -1); /* copied by make */
	}
	lua_pop(L, 1);
	cfg.send_chain = opt_enum(L, 2, "chain", what, chain_names, 0) == 0;
	cfg.cached_intermediate =
		opt_enum(L, 2, "trust", what, trust_names, 0) == 1;
	cfg.aia_fetch_ns = opt_duration(L, 2, "aia_fetch", what, -1);
	cfg.verify = (enum proto_quic_verify)opt_enum(L, 2, "verify", what,
						      qverify_names, 0);
	cfg.close_rule = (enum proto_quic_close_rule)opt_enum(
		L, 2, "close_rule", what, close_rule_names, 0);
	cfg.early_packet = (enum proto_quic_early_packet)opt_enum(
		L, 2, "early_packet", what, early_names, 0);
	cfg.shutdown_front =
		opt_enum(L, 2, "shutdown_queue", what, queue_names, 0);
	cfg.app_error_in_initial = (uint64_t)opt_int(
		L, 2, "app_error", what, (int64_t)cfg.app_error_in_initial, 0,
		((int64_t)1 << 62) - 1);
	cfg.no_coalesce = !opt_bool(L, 2, "coalesce", what, 1);
	cfg.idle_timeout_ns =
		opt_duration(L, 2, "idle_timeout", what, cfg.idle_timeout_ns);
	cfg.handshake_timeout_ns = opt_duration(L, 2, "handshake_timeout",
						what, cfg.handshake_timeout_ns);
	cfg.max_ack_delay_ns = opt_duration(L, 2, "max_ack_delay", what,
					    cfg.max_ack_delay_ns);
	cfg.key_update_every = (uint64_t)opt_int(L, 2, "key_update_every",
						 what, 0, 0, 1000000000);
	if (cfg.idle_timeout_ns <= 0 || cfg.handshake_timeout_ns <= 0) {
		return luaL_error(L, "%s: timeouts must be positive", what);
	}
	cfg.epoch_ns = c->epoch_ns + opt_time(L, 2, "clock_offset", what, 0, 1);
	proto_pki_clock_set(c->epoch_ns + sim_world_now(&c->w));
	return new_endpoint(L, c, spec, &cfg);
}

static int l_quic_client(lua_State *L)
{
	static const ep_spec spec = {"w:quic_client",
				     &proto_quic_client_class, proto_quic_make,
				     0, "client"};
	return quic_ctor(L, &spec, 0);
}

static int l_quic_server(lua_State *L)
{
	static const ep_spec spec = {"w:quic_server",
				     &proto_quic_server_class, proto_quic_make,
				     1, "server"};
	return quic_ctor(L, &spec, 1);
}

/* ep:send(data [, fin]) on stream 0. */
static int ep_send(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	size_t len;
	const char *s = luaL_checklstring(L, 2, &len);
	int fin = lua_toboolean(L, 3);
	sim_op_args args;
	memset(&args, 0, sizeof(args));
	args.data = malloc(len > 0 ? len : 1);
	if (args.data == NULL) {
		return luaL_error(L, "send: out of memory");
	}
	memcpy(args.data, s, len);
	args.len = len;
	args.i[0] = fin;
	return enqueue(L, eu, "send", &args);
}

static int quic_shutdown(lua_State *L, ep_ud *eu)
{
	lua_Integer code = luaL_optinteger(L, 2, 0);
	if (code < 0 || code >= ((lua_Integer)1 << 62)) {
		return luaL_error(L, "shutdown: error code out of range");
	}
	lua_settop(L, 1);
	lua_pushinteger(L, code);
	return call_api(L, eu, "shutdown");
}

/* ep:key_update(): initiate a 1-RTT key update (queued). */
static int quic_key_update(lua_State *L)
{
	ep_ud *eu = check_ep(L, 1);
	if (!is_quic(eu)) {
		return luaL_error(L, "key_update: %s is not a QUIC endpoint",
				  sim_ep_kind(eu->ep));
	}
	lua_settop(L, 1);
	return call_api(L, eu, "key_update");
}

static int quic_received(lua_State *L, ep_ud *eu)
{
	size_t len;
	const uint8_t *p = proto_quic_received(sim_ep_impl(eu->ep), &len);
	lua_pushlstring(L, (const char *)p, len);
	return 1;
}

static int quic_info(lua_State *L, ep_ud *eu)
{
	proto_quic_info in;
	proto_quic_get_info(sim_ep_impl(eu->ep), &in);
	lua_createtable(L, 0, 24);
#define F(name)                                                              \
	lua_pushinteger(L, (lua_Integer)in.name);                            \
	lua_setfield(L, -2, #name)
	F(connected_ns);
	F(confirmed_ns);
	F(closed_ns);
	F(close_sent_ns);
	F(close_received_ns);
	F(close_error);
	F(close_app);
	F(close_frame);
	F(verify_error);
	F(packets_sent);
	F(packets_received);
	F(packets_dropped);
	F(packets_buffered);
	F(packets_lost);
	F(bytes_sent);
	F(bytes_received);
	F(crypto_bytes_sent);
	F(stream_bytes_received);
	F(srtt_ns);
	F(key_phase);
	F(key_updates);
	F(key_updates_initiated);
	F(old_phase_packets);
#undef F
	lua_pushboolean(L, in.stream_fin_received);
	lua_setfield(L, -2, "stream_fin_received");
	lua_pushstring(L, in.state);
	lua_setfield(L, -2, "state");
	lua_pushstring(L, in.close_reason);
	lua_setfield(L, -2, "close_reason");
	return 1;
}

/* --- module and sandbox -------------------------------------------------- */

static int l_print(lua_State *L)
{
	ctx *c = get_ctx(L);
	luaL_Buffer b;
	int n = lua_gettop(L);
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
		if (i < n) {
			luaL_addchar(&b, '\t');
		}
	}
	luaL_pushresult(&b);
	const char *s = lua_tostring(L, -1);
	if (c->have_world) {
		sim_trace_log(c->w.trace, sim_world_now(&c->w), "script", s);
	}
	if (c->o->verbosity > 0) {
		printf("%s\n", s);
	}
	return 0;
}

static int l_random(lua_State *L)
{
	ctx *c = get_ctx(L);
	lua_Integer lo, hi;
	switch (lua_gettop(L)) {
	case 0:
		lua_pushnumber(L, sim_rng_double(&c->script_rng));
		return 1;
	case 1:
		lo = 1;
		hi = luaL_checkinteger(L, 1);
		break;
	case 2:
		lo = luaL_checkinteger(L, 1);
		hi = luaL_checkinteger(L, 2);
		break;
	default:
		return luaL_error(L, "wrong number of arguments");
	}
	luaL_argcheck(L, lo <= hi, 2, "interval is empty");
	uint64_t span = (uint64_t)hi - (uint64_t)lo;
	uint64_t r = span == UINT64_MAX ? sim_rng_next(&c->script_rng)
					: sim_rng_below(&c->script_rng,
							span + 1);
	lua_pushinteger(L, (lua_Integer)((uint64_t)lo + r));
	return 1;
}

static int l_randomseed(lua_State *L)
{
	ctx *c = get_ctx(L);
	lua_Integer s = luaL_optinteger(L, 1, 0);
	sim_rng_init(&c->script_rng, (uint64_t)s ^ c->w.seed, "script");
	return 0;
}

static int l_os_time(lua_State *L)
{
	ctx *c = get_ctx(L);
	lua_pushinteger(L, c->have_world ? sim_world_now(&c->w) / SIM_S : 0);
	return 1;
}

static int l_os_clock(lua_State *L)
{
	ctx *c = get_ctx(L);
	lua_pushnumber(L, c->have_world
				  ? (double)sim_world_now(&c->w) / 1e9
				  : 0.0);
	return 1;
}

/* Deterministic pairs().
 *
 * Lua seeds its string hash from time() and from addresses that ASLR moves,
 * so the order of next() over string keys differs between processes. A
 * scenario's behaviour must not, so pairs() visits keys in a fixed order:
 * numbers ascending, then strings in byte order, then false, true. Keys of
 * other types (tables, functions, userdata) have no stable order and are an
 * error. A __pairs metamethod is honoured. */
static int key_rank(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		return 0;
	case LUA_TSTRING:
		return 1;
	case LUA_TBOOLEAN:
		return 2;
	default:
		return 3;
	}
}

static int key_less(lua_State *L)
{
	int ra = key_rank(L, 1), rb = key_rank(L, 2);
	if (ra != rb) {
		lua_pushboolean(L, ra < rb);
	} else if (ra == 2) {
		lua_pushboolean(L, !lua_toboolean(L, 1) && lua_toboolean(L, 2));
	} else if (ra == 1) {
		size_t la, lb;
		const char *a = lua_tolstring(L, 1, &la);
		const char *b = lua_tolstring(L, 2, &lb);
		int c = memcmp(a, b, la < lb ? la : lb);
		lua_pushboolean(L, c < 0 || (c == 0 && la < lb));
	} else {
		lua_pushboolean(L, lua_compare(L, 1, 2, LUA_OPLT));
	}
	return 1;
}

static int pairs_iter(lua_State *L)
{
	/* upvalues: 1 table, 2 sorted keys, 3 next index */
	lua_Integer i = lua_tointeger(L, lua_upvalueindex(3));
	lua_Integer n = (lua_Integer)lua_rawlen(L, lua_upvalueindex(2));
	for (; i <= n; i++) {
		lua_rawgeti(L, lua_upvalueindex(2), i);
		lua_pushvalue(L, -1);
		if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) {
			lua_pushinteger(L, i + 1);
			lua_replace(L, lua_upvalueindex(3));
			return 2;
		}
		lua_pop(L, 2); /* removed during the traversal */
	}
	lua_pushinteger(L, i);
	lua_replace(L, lua_upvalueindex(3));
	lua_pushnil(L);
	return 1;
}

static int l_pairs(lua_State *L)
{
	luaL_checkany(L, 1);
	if (luaL_getmetafield(L, 1, "__pairs") != LUA_TNIL) {
		lua_pushvalue(L, 1);
		lua_call(L, 1, 3);
		return 3;
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_newtable(L); /* keys */
	int keys = lua_gettop(L);
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, 1) != 0) {
		lua_pop(L, 1);
		if (key_rank(L, -1) == 3) {
			return luaL_error(L,
					  "pairs: a key of type %s has no "
					  "deterministic order; use string or "
					  "number keys, or a list with ipairs",
					  luaL_typename(L, -1));
		}
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, ++n);
	}
	/* table.sort(keys, key_less), with the original table.sort. */
	lua_getfield(L, LUA_REGISTRYINDEX, "tlsim.sort");
	lua_pushvalue(L, keys);
	lua_pushcfunction(L, key_less);
	lua_call(L, 2, 0);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, keys);
	lua_pushinteger(L, 1);
	lua_pushcclosure(L, pairs_iter, 3);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static const luaL_Reg world_methods[] = {
	{"link", l_link},
	{"echo_client", l_echo_client},
	{"echo_server", l_echo_server},
	{"pki", l_pki},
	{"tls_client", l_tls_client},
	{"tls_server", l_tls_server},
	{"quic_client", l_quic_client},
	{"quic_server", l_quic_server},
	{"after", w_after},
	{"at", w_at},
	{"run", w_run},
	{"stop", w_stop},
	{"expect", w_expect},
	{"log", w_log},
	{"now", w_now},
	{"ns", w_ns},
	{"us", w_us},
	{"ms", w_ms},
	{"s", w_s},
	{"time", w_time},
	{"fmt", w_fmt},
	{"events", w_events},
	{"stop_reason", w_stop_reason},
	{NULL, NULL},
};

static const luaL_Reg link_methods[] = {
	{"partition", link_partition},
	{"drop_nth", link_drop_nth},
	{"filter", link_filter},
	{"fault", link_fault},
	{"stats", link_stats},
	{NULL, NULL},
};

static const luaL_Reg ep_methods[] = {
	{"on", ep_on},
	{"call", ep_call},
	{"start", ep_start},
	{"close", ep_close},
	{"state", ep_state},
	{"name", ep_name},
	{"queue", ep_queue},
	{"stats", ep_stats},
	{"connect", tls_connect},
	{"accept", tls_accept},
	{"handshake", tls_handshake},
	{"write", tls_write},
	{"read", tls_read},
	{"shutdown", tls_shutdown},
	{"close_write", tls_close_write},
	{"abort", tls_abort},
	{"validation_complete", tls_validation_complete},
	{"sign_complete", tls_sign_complete},
	{"client_hello_complete", tls_client_hello_complete},
	{"send_raw", tls_send_raw},
	{"send", ep_send},
	{"outcome", tls_outcome},
	{"received", tls_received},
	{"info", tls_info},
	{"attack", tls_attack},
	{"key_update", quic_key_update},
	{NULL, NULL},
};

static const luaL_Reg pki_methods[] = {
	{NULL, NULL},
};

static const luaL_Reg timer_methods[] = {
	{"cancel", timer_cancel},
	{NULL, NULL},
};

static void new_class(lua_State *L, const char *mt, const luaL_Reg *methods)
{
	luaL_newmetatable(L, mt);
	lua_newtable(L);
	luaL_setfuncs(L, methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, "tlsim object");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}

static int luaopen_tlsim(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"world", l_world},
		{NULL, NULL},
	};
	new_class(L, WORLD_MT, world_methods);
	new_class(L, LINK_MT, link_methods);
	new_class(L, EP_MT, ep_methods);
	new_class(L, TIMER_MT, timer_methods);
	new_class(L, PKI_MT, pki_methods);
	luaL_newlib(L, funcs);
	lua_pushstring(L, TLSIM_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}

/* Opens the safe standard libraries and removes everything that reaches
 * files, the process or the wall clock. */
static void sandbox(lua_State *L)
{
	static const luaL_Reg libs[] = {
		{LUA_GNAME, luaopen_base},
		{LUA_TABLIBNAME, luaopen_table},
		{LUA_STRLIBNAME, luaopen_string},
		{LUA_MATHLIBNAME, luaopen_math},
		{LUA_UTF8LIBNAME, luaopen_utf8},
		{LUA_COLIBNAME, luaopen_coroutine},
		{NULL, NULL},
	};
	for (const luaL_Reg *l = libs; l->func != NULL; l++) {
		luaL_requiref(L, l->name, l->func, 1);
		lua_pop(L, 1);
	}
	static const char *const banned[] = {"dofile", "loadfile", "load",
					     "require", "collectgarbage",
					     NULL};
	for (const char *const *b = banned; *b != NULL; b++) {
		lua_pushnil(L);
		lua_setglobal(L, *b);
	}
	lua_pushcfunction(L, l_print);
	lua_setglobal(L, "print");
	lua_getglobal(L, "table");
	lua_getfield(L, -1, "sort");
	lua_setfield(L, LUA_REGISTRYINDEX, "tlsim.sort");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_pairs);
	lua_setglobal(L, "pairs");
	lua_getglobal(L, "math");
	lua_pushcfunction(L, l_random);
	lua_setfield(L, -2, "random");
	lua_pushcfunction(L, l_randomseed);
	lua_setfield(L, -2, "randomseed");
	lua_pop(L, 1);
	lua_newtable(L);
	lua_pushcfunction(L, l_os_time);
	lua_setfield(L, -2, "time");
	lua_pushcfunction(L, l_os_clock);
	lua_setfield(L, -2, "clock");
	lua_setglobal(L, "os");
	/* string.dump would let a script build bytecode; not needed. */
	lua_getglobal(L, "string");
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	luaL_requiref(L, "tlsim", luaopen_tlsim, 1);
	lua_pop(L, 1);
}

static void push_args(lua_State *L, const sim_lua_opts *o)
{
	lua_newtable(L);
	if (o->have_seed) {
		lua_pushinteger(L, (lua_Integer)o->seed);
		lua_setfield(L, -2, "seed");
	}
	for (int i = 0; i < o->nset; i++) {
		const char *v = o->set_val[i];
		if (lua_stringtonumber(L, v) == 0) {
			lua_pushstring(L, v);
		}
		lua_setfield(L, -2, o->set_key[i]);
	}
	lua_setglobal(L, "arg");
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		msg = "error object is not a string";
	}
	ctx *c = get_ctx(L);
	if (c->o->verbosity > 1) {
		luaL_traceback(L, L, msg, 1);
	} else {
		lua_pushstring(L, msg);
	}
	return 1;
}

/* Frees everything the world owns, in an order that never touches freed
 * memory: endpoints (which reference links), links, timers, the world. */
static void teardown(ctx *c)
{
	for (int i = c->neps - 1; i >= 0; i--) {
		sim_ep_del(c->eps[i]->ep);
		free(c->eps[i]);
	}
	for (int i = c->nlinks - 1; i >= 0; i--) {
		sim_link_del(c->links[i]->link);
		free(c->links[i]);
	}
	for (int i = 0; i < c->npkis; i++) {
		proto_pki_chain_del(c->pkis[i]);
	}
	for (size_t i = 0; i < c->ntimers; i++) {
		free(c->timers[i]);
	}
	free(c->timers);
	if (c->have_world) {
		sim_world_free(&c->w);
	}
}

static void *run_thread(void *arg)
{
	ctx *c = arg;
	const sim_lua_opts *o = c->o;
	sim_lua_result *r = c->r;

	lua_State *L = lua_newstate(lua_alloc, c);
	if (L == NULL) {
		r->status = SIM_STATUS_INTERNAL;
		snprintf(r->message, sizeof(r->message), "cannot create a Lua "
							 "state");
		return NULL;
	}
	c->L = L;
	sandbox(L);
	push_args(L, o);
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);

	char chunk[1024];
	snprintf(chunk, sizeof(chunk), "@%s", o->path);
	lua_pushcfunction(L, traceback);
	/* Bytecode only from sim_lua_compile (of this very source): a
	 * script can never load any. */
	int rc =
	    o->bytecode != NULL
		? luaL_loadbufferx(L, o->bytecode, o->bytecode_len, chunk, "b")
		: luaL_loadbufferx(L, o->source, o->source_len, chunk, "t");
	if (rc == LUA_OK) {
		rc = lua_pcall(L, 0, 0, -2);
	}
	if (rc == LUA_OK && c->have_world && !c->ran) {
		/* A scenario that never called w:run runs until idle. */
		lua_pushcfunction(L, w_run);
		ctx **pc = lua_newuserdatauv(L, sizeof(*pc), 0);
		*pc = c;
		luaL_setmetatable(L, WORLD_MT);
		rc = lua_pcall(L, 1, 0, -3);
	}
	if (c->have_world && c->w.limit_hit) {
		r->status = SIM_STATUS_FAIL;
		snprintf(r->outcome, sizeof(r->outcome), "limit");
		snprintf(r->message, sizeof(r->message),
			 "%s: limit reached: %s", o->path, c->w.limit_msg);
	} else if (rc != LUA_OK) {
		const char *m = lua_tostring(L, -1);
		if (c->mem_exceeded && rc == LUA_ERRMEM) {
			m = "memory limit exceeded (raise it with --max-memory)";
		}
		snprintf(r->message, sizeof(r->message), "%s",
			 m ? m : "unknown error");
		if (rc == LUA_ERRMEM && c->mem_exceeded) {
			snprintf(r->message, sizeof(r->message),
				 "%s: memory limit exceeded (%zu bytes; raise it "
				 "with --max-memory)",
				 o->path, c->mem_limit);
		}
		r->status = SIM_STATUS_INPUT;
		snprintf(r->outcome, sizeof(r->outcome), "error");
	} else if (!c->have_world) {
		r->status = SIM_STATUS_INPUT;
		snprintf(r->outcome, sizeof(r->outcome), "error");
		snprintf(r->message, sizeof(r->message),
			 "%s: the scenario never created a world "
			 "(tlsim.world{...})",
			 o->path);
	} else if (c->checks_failed > 0) {
		r->status = SIM_STATUS_FAIL;
		snprintf(r->outcome, sizeof(r->outcome), "fail");
	} else {
		r->status = SIM_STATUS_PASS;
		snprintf(r->outcome, sizeof(r->outcome), "pass");
	}
	r->checks = c->checks;
	r->checks_failed = c->checks_failed;
	if (c->have_world) {
		r->end_ns = sim_world_now(&c->w);
		r->events = sim_sched_events(c->w.sched);
		if (c->w.fatal && r->status != SIM_STATUS_INPUT) {
			/* The script caught w:run's "simulation error" with
			 * pcall: the run still ends as that error would
			 * have ended it (exit 2), saying why. */
			r->status = SIM_STATUS_INPUT;
			snprintf(r->outcome, sizeof(r->outcome), "error");
			snprintf(r->message, sizeof(r->message),
				 "simulation error: %s", c->w.fatal_msg);
		}
	}
	/* Endpoints drop their queued operations (trace rows) before the run
	 * is committed. */
	teardown(c);
	if (c->have_world && o->trace != NULL) {
		char *sched = o->schedule != NULL
				      ? sim_schedule_replay_text(o->schedule)
				      : NULL;
		sim_run_result res = {
			.schedule = sched,
			.outcome = r->outcome,
			.reason = r->status == SIM_STATUS_PASS ? NULL
							       : r->message,
			.end_ns = r->end_ns,
			.events = r->events,
			.checks = r->checks,
			.checks_failed = r->checks_failed,
		};
		r->trace_err = sim_trace_end(o->trace, &res, r->digest,
					     &r->run_id);
		free(sched);
	}
	lua_close(L);
	sim_entropy_end();
	return NULL;
}

typedef struct dump {
	char *p;
	size_t len, cap;
	int oom;
} dump;

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud)
{
	dump *d = ud;
	if (d->len + n > d->cap) {
		size_t cap = d->cap ? d->cap : 4096;
		while (cap < d->len + n) {
			cap *= 2;
		}
		char *q = realloc(d->p, cap);
		if (q == NULL) {
			d->oom = 1;
			return 1;
		}
		d->p = q;
		d->cap = cap;
	}
	memcpy(d->p + d->len, p, n);
	d->len += n;
	return 0;
}

int sim_lua_compile(const sim_lua_opts *o, char **out, size_t *len)
{
	lua_State *L = luaL_newstate();
	if (L == NULL) {
		return SIM_ENOMEM;
	}
	char chunk[1024];
	snprintf(chunk, sizeof(chunk), "@%s", o->path);
	dump d = {0};
	int rc = luaL_loadbufferx(L, o->source, o->source_len, chunk, "t");
	if (rc == LUA_OK) {
		lua_dump(L, dump_writer, &d, 0);
	}
	lua_close(L);
	if (rc != LUA_OK || d.oom) {
		free(d.p);
		return rc == LUA_ERRMEM || d.oom ? SIM_ENOMEM : SIM_ESCRIPT;
	}
	*out = d.p;
	*len = d.len;
	return 0;
}

void sim_lua_params(const sim_lua_opts *o, char *params, size_t len)
{
	int order[SIM_LUA_MAX_SET];
	for (int i = 0; i < o->nset; i++) {
		order[i] = i;
	}
	for (int i = 1; i < o->nset; i++) {
		for (int j = i; j > 0 && strcmp(o->set_key[order[j - 1]],
						o->set_key[order[j]]) > 0;
		     j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	}
	size_t n = 0;
	params[0] = '\0';
	for (int i = 0; i < o->nset && n < len; i++) {
		n += (size_t)snprintf(params + n, len - n, "%s=%s\n",
				      o->set_key[order[i]],
				      o->set_val[order[i]]);
	}
}

/* The caps of a run as run.limits names them, with where each lives in
 * sim_lua_opts. */
typedef enum { CAP_U64, CAP_SIZE, CAP_TIME } cap_kind;
static const struct cap {
	const char *name;
	size_t off;
	cap_kind kind;
} caps[] = {
    {"max-instructions", offsetof(sim_lua_opts, max_instructions), CAP_U64},
    {"max-memory", offsetof(sim_lua_opts, max_memory), CAP_SIZE},
    {"livelock-events", offsetof(sim_lua_opts, livelock_events), CAP_U64},
    {"max-events", offsetof(sim_lua_opts, max_events), CAP_U64},
    {"max-time", offsetof(sim_lua_opts, max_time_ns), CAP_TIME},
    {"max-inflight", offsetof(sim_lua_opts, max_inflight), CAP_U64},
    {"max-queued-ops", offsetof(sim_lua_opts, max_queued_ops), CAP_U64},
    {"max-rows", offsetof(sim_lua_opts, max_rows), CAP_U64},
};

static uint64_t cap_get(const sim_lua_opts *o, const struct cap *k)
{
	const char *p = (const char *)o + k->off;
	switch (k->kind) {
	case CAP_SIZE:
		return (uint64_t)*(const size_t *)(const void *)p;
	case CAP_TIME:
		return (uint64_t)*(const sim_time *)(const void *)p;
	default:
		return *(const uint64_t *)(const void *)p;
	}
}

void sim_lua_limits(const sim_lua_opts *o, char *buf, size_t len)
{
	size_t n = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]) && n < len;
	     i++) {
		uint64_t v = cap_get(o, &caps[i]);
		if (v != 0) {
			n += (size_t)snprintf(buf + n, len - n, "%s=%llu\n",
					      caps[i].name,
					      (unsigned long long)v);
		}
	}
}

int sim_lua_limits_parse(const char *text, sim_lua_opts *o, char *err,
			 size_t errlen)
{
	for (const char *line = text ? text : ""; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t n = eol ? (size_t)(eol - line) : strlen(line);
		const char *eq = memchr(line, '=', n);
		const struct cap *k = NULL;
		for (size_t i = 0;
		     eq != NULL && i < sizeof(caps) / sizeof(caps[0]); i++) {
			if (strlen(caps[i].name) == (size_t)(eq - line) &&
			    memcmp(caps[i].name, line, (size_t)(eq - line)) ==
				0) {
				k = &caps[i];
			}
		}
		char num[32];
		size_t vn = eq ? n - (size_t)(eq + 1 - line) : 0;
		char *end = NULL;
		unsigned long long v = 0;
		if (k != NULL && vn > 0 && vn < sizeof(num)) {
			memcpy(num, eq + 1, vn);
			num[vn] = '\0';
			errno = 0;
			v = strtoull(num, &end, 10);
		}
		if (k == NULL || end == NULL || *end != '\0' || errno != 0 ||
		    num[0] == '-' || v == 0 ||
		    (k->kind != CAP_U64 && v > INT64_MAX)) {
			snprintf(err, errlen, "unknown run limit '%.*s'",
				 (int)(n > 80 ? 80 : n), line);
			return -1;
		}
		char *p = (char *)o + k->off;
		switch (k->kind) {
		case CAP_SIZE:
			*(size_t *)(void *)p = (size_t)v;
			break;
		case CAP_TIME:
			*(sim_time *)(void *)p = (sim_time)v;
			break;
		default:
			*(uint64_t *)(void *)p = (uint64_t)v;
		}
		line += n + (eol != NULL);
	}
	return 0;
}

int sim_lua_run(const sim_lua_opts *o, sim_lua_result *r)
{
	memset(r, 0, sizeof(*r));
	ctx *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		r->status = SIM_STATUS_INTERNAL;
		snprintf(r->message, sizeof(r->message), "out of memory");
		return r->status;
	}
	c->o = o;
	c->r = r;
	c->instr_budget = o->max_instructions ? o->max_instructions
					      : 200000000ULL;
	c->mem_limit = o->max_memory ? o->max_memory : (size_t)512 << 20;
	int rc = sim_entropy_run_thread(run_thread, c, 0, NULL);
	if (rc != 0) {
		r->status = SIM_STATUS_INTERNAL;
		snprintf(r->message, sizeof(r->message),
			 "cannot start the run thread: %s", sim_strerror(rc));
	}
	free(c);
	return r->status;
}

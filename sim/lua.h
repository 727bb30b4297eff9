/* sim/lua.h: scenario scripts (Lua 5.4) and the run they drive.
 *
 * sim_lua_run loads a scenario in a sandboxed Lua state (no io, no os
 * beyond a virtual clock, no loading of files or code from strings, an
 * instruction budget and a memory cap), exposes the `tlsim` module, runs
 * the script, and records the run in the trace. The whole run executes on
 * a fresh thread whose BoringSSL entropy comes from the run seed
 * (sim/entropy.h), so a run's bytes do not depend on earlier runs in the
 * same process. README.md documents the Lua API. */
#ifndef TLSIM_SIM_LUA_H
#define TLSIM_SIM_LUA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/time.h"
#include "sim/trace.h"

#define SIM_LUA_MAX_SET 64

typedef struct sim_lua_opts {
	const char *path;   /* scenario path as given (for messages) */
	const char *source; /* the file's contents */
	size_t source_len;
	const char *sha256; /* hex of the contents */
	/* Optional: |source| compiled by sim_lua_compile, which the run
	 * loads instead of compiling the source again (`tlsim sweep` does
	 * it once before the forks). Borrowed. */
	const char *bytecode;
	size_t bytecode_len;
	int have_seed;      /* --seed given: overrides the world's seed */
	uint64_t seed;
	int nset; /* --set key=value pairs, visible as arg.key */
	const char *set_key[SIM_LUA_MAX_SET];
	const char *set_val[SIM_LUA_MAX_SET];
	sim_trace *trace;   /* digest-only or database; NULL: tracing off */
	int verbosity;      /* 0 quiet, 1 normal, 2 verbose */
	uint64_t max_instructions; /* 0: default 200,000,000 */
	size_t max_memory;         /* 0: default 512 MiB */
	uint64_t livelock_events;  /* 0: default 1,000,000 */
	/* Per-run caps (sim/world.h); 0: the default. Hitting one ends the
	 * run with outcome "limit". */
	uint64_t max_events;
	sim_time max_time_ns;
	uint64_t max_inflight;
	uint64_t max_queued_ops;
	uint64_t max_rows; /* trace rows (sim_trace_set_max_rows) */
	/* Choices and faults to force or explore, recorded as the run goes
	 * (sim/schedule.h); NULL: the seed decides. Borrowed. */
	struct sim_schedule *schedule;
	/* Optional: called for every expectation as it is evaluated (also
	 * the implicit "no livelock"), with the message of its check row,
	 * traced or not (`tlsim sweep` without a trace). */
	void (*on_check)(void *user_data, int ok, const char *message);
	void *user_data;
} sim_lua_opts;

/* Exit statuses, shared with the command line. */
enum sim_status {
	SIM_STATUS_PASS = 0,     /* every expectation held */
	SIM_STATUS_FAIL = 1,     /* an expectation failed (or livelock) */
	SIM_STATUS_INPUT = 2,    /* usage, script or input error */
	SIM_STATUS_INTERNAL = 3, /* tlsim's own failure */
};

typedef struct sim_lua_result {
	int status;          /* enum sim_status */
	char outcome[16];    /* pass, fail, error */
	char message[1024];  /* the error, or the first failed expectation */
	char first_check[512]; /* "FILE:LINE: name" of the first failed
				  expectation, without its detail */
	int have_world;
	uint64_t seed;
	sim_time end_ns;
	uint64_t events;
	uint64_t checks, checks_failed;
	char digest[65];     /* empty without a trace */
	int64_t run_id;      /* 0 without a database */
	int trace_err;       /* SIM_E* from committing the run, or 0 */
} sim_lua_result;

/* sim_lua_params writes |o|'s --set pairs in the trace's canonical form
 * (run.params: "key=value\n" lines sorted by key) into |params| (|len|
 * bytes, truncated to fit, always terminated). */
void sim_lua_params(const sim_lua_opts *o, char *params, size_t len);

/* sim_lua_limits writes |o|'s caps that are not the defaults in the
 * trace's canonical form (run.limits: "option=value\n" lines in a fixed
 * order, options named as on the command line without their dashes,
 * values as integers: max-time in nanoseconds, max-memory in bytes) into
 * |buf| (|len| bytes, always terminated; empty with every cap at its
 * default). sim_lua_limits_parse sets |o|'s caps from such text (NULL or
 * empty: none); returns 0, or -1 with a reason in |err| for text it does
 * not read (an option it does not know, a bad value). */
void sim_lua_limits(const sim_lua_opts *o, char *buf, size_t len);
int sim_lua_limits_parse(const char *text, sim_lua_opts *o, char *err,
			 size_t errlen);

/* sim_lua_compile compiles |o|->source as a run would (chunk name
 * "@" |o|->path, text only) and dumps it with its debug information, so
 * that a run given the result as |bytecode| behaves exactly as one that
 * compiles the source (line numbers, messages). Returns 0 and a
 * malloc'd |*out| of |*len| bytes, or SIM_ESCRIPT (the source does not
 * compile: runs then report the error themselves) or SIM_ENOMEM. */
int sim_lua_compile(const sim_lua_opts *o, char **out, size_t *len);

/* sim_lua_run runs the scenario described by |o| to completion and fills
 * |r|. Returns r->status. Messages for the user (failed expectations as
 * they happen, print() output, verbose events) go to stdout/stderr
 * according to o->verbosity; the summary is the caller's. */
int sim_lua_run(const sim_lua_opts *o, sim_lua_result *r);

#endif

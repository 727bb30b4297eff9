/* sim/err.h: tlsim's error codes.
 *
 * Every fallible function in sim/ and proto/ returns 0 or a negative SIM_E*
 * code. The table below generates both the enum and sim_strerror(), in the
 * manner of libuv's UV_ERRNO_MAP. */
#ifndef TLSIM_SIM_ERR_H
#define TLSIM_SIM_ERR_H

#define SIM_ERRNO_MAP(XX)                                                    \
	XX(NOMEM, "out of memory")                                           \
	XX(INVAL, "invalid argument")                                        \
	XX(RANGE, "value out of range")                                      \
	XX(LIMIT, "limit reached")                                           \
	XX(IO, "input/output error")                                         \
	XX(BUSY, "trace is locked by another writer")                        \
	XX(NOTTRACE, "not a tlsim trace")                                    \
	XX(SCHEMA, "trace schema version not supported")                     \
	XX(CORRUPT, "trace file is corrupt")                                 \
	XX(FULL, "disk full")                                                \
	XX(PERM, "permission denied")                                        \
	XX(NOENT, "no such file or directory")                               \
	XX(SCRIPT, "scenario error")                                         \
	XX(LIVELOCK, "livelock: events without virtual time advancing")      \
	XX(CRYPTO, "BoringSSL error")                                        \
	XX(STATE, "operation not valid in this state")                       \
	XX(INTERNAL, "internal error")

enum sim_err {
	SIM_OK = 0,
#define XX(name, msg) SIM_E##name,
	SIM_E__FIRST = -1000,
	SIM_ERRNO_MAP(XX)
#undef XX
};

/* sim_strerror returns a static description of |err|, which is 0 or a
 * SIM_E* code. Unknown codes give "unknown error". */
const char *sim_strerror(int err);

/* SIM_ALWAYS(x) / SIM_NEVER(x): defensive checks that hold in release builds
 * too (SQLite's ALWAYS/NEVER). In debug builds a violation aborts. */
#ifdef NDEBUG
#define SIM_ALWAYS(x) (x)
#define SIM_NEVER(x) (x)
#else
#include <assert.h>
#define SIM_ALWAYS(x) ((x) ? 1 : (assert(0 && #x), 0))
#define SIM_NEVER(x) ((x) ? (assert(!(#x)), 1) : 0)
#endif

#endif

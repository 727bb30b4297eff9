/* sim/trace.h: the SQLite trace writer.
 *
 * One database holds many runs. A run's rows are serialised as they are
 * produced into a canonical byte form (the same bytes feed the run digest),
 * kept in memory, and written in one transaction at sim_trace_end: a run is
 * committed atomically, the write lock is held only for the commit, and a
 * killed process leaves earlier runs intact. Without a database the rows
 * still feed the digest (and are then discarded), so a run's digest is the
 * same whether or not it was traced.
 *
 * Digest: SHA-256 over, in this order, the run's outcome fields and, for
 * each table in the fixed order node, event, op, packet, tls, check, log,
 * the SHA-256 of that table's rows in emission order. A row's canonical
 * form: for each column in schema order except run and seq, a tag byte
 * (0 null, 1 integer as 8 bytes little-endian, 2 text as 4-byte LE length
 * and bytes, 3 blob likewise). docs/trace.md documents every column.
 *
 * Threads: a sim_trace may be handed from thread to thread (opened on one,
 * written on a run thread) but never used by two threads at once; its
 * SQLite connection is opened without a connection mutex. */
#ifndef TLSIM_SIM_TRACE_H
#define TLSIM_SIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "sim/time.h"

#define SIM_TRACE_SCHEMA_VERSION 1
#define SIM_TRACE_APPLICATION_ID 0x544c534d /* "TLSM" */

typedef struct sim_trace sim_trace;

/* sim_trace_open opens or creates the trace database at |path|. With
 * |path| NULL the trace only computes digests. Checks that an existing file
 * is a tlsim trace of a schema this build reads, and that no other writer
 * holds it. On failure returns a negative SIM_E* code (SIM_ENOTTRACE,
 * SIM_ESCHEMA, SIM_ECORRUPT, SIM_EBUSY, SIM_EPERM, SIM_ENOENT, SIM_EFULL,
 * SIM_EIO) and writes a one-line reason, naming |path|, to |err|. */
int sim_trace_open(const char *path, sim_trace **out, char *err,
		   size_t errlen);

/* sim_trace_close closes |t|; an unfinished run is discarded.
 * sim_trace_close(NULL) is a no-op. */
void sim_trace_close(sim_trace *t);

/* sim_trace_set_rows controls whether row tables are kept (1, default) or
 * only the digest is computed and the run row written (0). */
void sim_trace_set_rows(sim_trace *t, int keep);

/* sim_trace_set_max_rows caps the rows of one run (default 10,000,000,
 * about 1 GB of buffered rows); past it sim_trace_error() is SIM_ELIMIT
 * and rows are no longer kept. */
void sim_trace_set_max_rows(sim_trace *t, uint64_t max);

typedef struct sim_run_info {
	const char *scenario;        /* path as given */
	const char *scenario_sha256; /* hex */
	uint64_t seed;
	const char *params;          /* canonical "k=v\n..." */
} sim_run_info;

/* sim_trace_begin starts a run. Returns 0 or a SIM_E* code. */
int sim_trace_begin(sim_trace *t, const sim_run_info *info);

typedef struct sim_run_result {
	const char *outcome; /* "pass", "fail", "error", "livelock"... */
	const char *reason;  /* one line, may be NULL */
	sim_time end_ns;
	uint64_t events;
	uint64_t checks;
	uint64_t checks_failed;
} sim_run_result;

/* sim_trace_end finishes the run: computes the digest (hex into |digest|,
 * 65 bytes, may be NULL) and, with a database, writes the run and its rows
 * in one transaction. Returns 0, or a SIM_E* code with sim_trace_errmsg()
 * explaining; then nothing of the run is in the database. |*run_id| (may
 * be NULL) gets the new run's id (0 without a database). */
int sim_trace_end(sim_trace *t, const sim_run_result *res, char *digest,
		  int64_t *run_id);

/* sim_trace_error returns the first error a row write hit (sticky), or 0. */
int sim_trace_error(const sim_trace *t);

/* sim_trace_errmsg returns the last one-line error message. */
const char *sim_trace_errmsg(const sim_trace *t);

/* sim_trace_rows returns how many rows the current run has produced. */
uint64_t sim_trace_rows(const sim_trace *t);

/* Row writers. Strings may be NULL (stored as NULL). Each returns nothing:
 * failures are sticky (sim_trace_error). All are no-ops on t == NULL. */
void sim_trace_node(sim_trace *t, int64_t id, const char *name,
		    const char *kind);
void sim_trace_event(sim_trace *t, sim_time time, const char *node,
		     const char *kind);

typedef struct sim_op_row {
	sim_time time;
	const char *node;
	int64_t op_id;
	const char *op_type;
	const char *action; /* enqueue, enqueue_front, dequeue, complete, drop */
	int64_t depth;      /* queue depth after the step */
	const char *cause_kind; /* api, packet, timer, op, async; may be NULL */
	int64_t cause_id;       /* id in that kind's namespace; -1 none */
	const char *detail;
} sim_op_row;
void sim_trace_op(sim_trace *t, const sim_op_row *r);

typedef struct sim_packet_row {
	int64_t id;
	int64_t parent;   /* datagram id for a packet inside it; -1 none */
	const char *link;
	const char *src, *dst;
	const char *proto; /* echo, tcp, udp, quic */
	sim_time send_ns;
	sim_time deliver_ns; /* -1: not delivered */
	int64_t len;
	const char *fate;   /* delivered, lost, duplicated, corrupted,
			       reordered */
	const char *reason; /* which fault decided the fate; may be NULL */
	int64_t dup_of;     /* -1 none */
	const char *ptype;  /* protocol packet type, may be NULL */
	const char *space;
	int64_t pn;         /* -1 none */
	const char *frames;
	const char *hs_state;
	const void *data;   /* bytes as sent, may be NULL */
	size_t data_len;
} sim_packet_row;
void sim_trace_packet(sim_trace *t, const sim_packet_row *r);

typedef struct sim_tls_row {
	sim_time time;
	const char *node;
	const char *event; /* state, keys, alert_sent, alert_received,
			      verify_pending, verify_done, close_notify_sent,
			      close_notify_received, ... */
	const char *level; /* initial, early_data, handshake, application */
	const char *direction; /* read, write */
	int64_t code;          /* alert number etc; -1 none */
	const char *detail;
} sim_tls_row;
void sim_trace_tls(sim_trace *t, const sim_tls_row *r);

void sim_trace_check(sim_trace *t, sim_time time, int ok, const char *message,
		     const char *location, const char *detail);
void sim_trace_log(sim_trace *t, sim_time time, const char *node,
		   const char *text);

/* sim_trace_digest_db recomputes the digest of run |run_id| from the rows
 * stored in the trace at |path| (read-only), into |digest| (65 bytes, hex).
 * Returns 0 or a SIM_E* code with a reason in |err|. Used by tests and by
 * `tlsim replay` to prove a stored trace matches its run row. */
int sim_trace_digest_db(const char *path, int64_t run_id, char *digest,
			char *err, size_t errlen);

/* sim_trace_open_readonly opens the trace at |path| read-only for readers
 * (`tlsim report`), after the checks sim_trace_open makes (a tlsim trace,
 * a schema this build reads), and begins one read transaction so that
 * every query sees one snapshot. Never writes to the file. On success
 * |*db| is the connection (the caller closes it with sqlite3_close, which
 * ends the transaction); else |*db| is NULL and a SIM_E* code is returned
 * with a one-line reason, naming |path|, in |err|. */
struct sqlite3;
int sim_trace_open_readonly(const char *path, struct sqlite3 **db, char *err,
			    size_t errlen);

/* sim_trace_set_crash_after is a test hook: the process _exit(9)s after
 * writing |n| rows inside the commit transaction of the next run, to
 * prove that a killed writer leaves earlier runs intact. 0 disables. */
void sim_trace_set_crash_after(sim_trace *t, uint64_t n);

#endif

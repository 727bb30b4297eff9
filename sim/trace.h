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

#define SIM_TRACE_SCHEMA_VERSION 4
#define SIM_TRACE_APPLICATION_ID 0x544c534d /* "TLSM" */

typedef struct sim_trace sim_trace;
struct sqlite3;

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

/* sim_trace_set_cap_hook: with a hook, a run that passes the row cap calls
 * |fn(user_data, cap)| once, keeps hashing its rows but stops storing
 * them, and is then stored without its rows (like rows off) instead of
 * being refused. The world uses it to end the run there (outcome limit).
 * NULL restores refusing. */
void sim_trace_set_cap_hook(sim_trace *t, void (*fn)(void *, uint64_t),
			    void *user_data);

typedef struct sim_run_info {
	const char *scenario;        /* path as given */
	const char *scenario_sha256; /* hex */
	uint64_t seed;
	const char *params;          /* canonical "k=v\n..." */
	const char *limits; /* the run's caps, canonical (sim_lua_limits);
			       NULL: the defaults */
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
	const char *schedule; /* text that, forced, replays the run's choices
				 and faults (sim/schedule.h); NULL: the
				 seed alone */
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
/* |parent|: the seq of the event row that scheduled this event, -1 none. */
void sim_trace_event(sim_trace *t, sim_time time, const char *node,
		     const char *kind, int64_t parent);

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
	int64_t event;          /* seq of the event the step ran in; -1 none */
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

/* Spooled runs: one process runs, another stores (`tlsim sweep`).
 *
 * sim_trace_open_spool opens a trace without a database that keeps each
 * run's rows, as a trace with a database does (same cap, same errors),
 * and at sim_trace_end, instead of committing them, serialises the
 * finished run (its run row's fields, digest and every row) into one
 * record that sim_trace_spooled returns. sim_trace_end's |*run_id| is 0.
 * Returns 0 or SIM_ENOMEM with a message in |err|. */
int sim_trace_open_spool(sim_trace **out, char *err, size_t errlen);

/* sim_trace_spooled returns the record of the last run that |t| (a spool
 * trace) finished without error, and its length in |*len|; NULL (and 0)
 * if there is none. The record belongs to |t| and is valid until the next
 * sim_trace_begin or sim_trace_close. It is opaque: only
 * sim_trace_store_spooled of the same build reads it. */
const void *sim_trace_spooled(const sim_trace *t, size_t *len);

/* sim_trace_store_spooled writes the run in |rec| (|len| bytes, made by
 * sim_trace_spooled) to |t|'s database, as sim_trace_end would have had
 * the run been written to |t| directly: the same run row and rows, under
 * the next run id (|*run_id|, may be NULL). Before writing, it checks the
 * record's shape and recomputes the digest from its rows: a record that
 * is malformed or whose rows do not hash to its digest is refused with
 * SIM_ECORRUPT, and nothing is written. Not during a run. Returns 0 or a
 * SIM_E* code with sim_trace_errmsg() explaining. */
int sim_trace_store_spooled(sim_trace *t, const void *rec, size_t len,
			    int64_t *run_id);

/* sim_trace_batch_begin opens one write transaction for the runs that
 * follow (sim_trace_end, sim_trace_store_spooled) until
 * sim_trace_batch_commit: fewer commits, and the pages several runs share
 * are written once. A run is then stored when the batch commits, and an
 * interrupted process loses the whole uncommitted batch (still never a
 * part of a run). If writing a run in the batch fails, the whole batch is
 * rolled back and the error returned; the batch is over. Returns 0 or a
 * SIM_E* code (SIM_ESTATE: no database, a run in progress or a batch
 * already open). */
int sim_trace_batch_begin(sim_trace *t);

/* sim_trace_batch_commit commits the open batch. Returns 0 (also when no
 * batch is open) or a SIM_E* code; on failure the batch is rolled back. */
int sim_trace_batch_commit(sim_trace *t);

/* sim_trace_digest_db recomputes the digest of run |run_id| from the rows
 * stored in the trace at |path| (read-only), into |digest| (65 bytes, hex).
 * Returns 0 or a SIM_E* code with a reason in |err|. Used by tests and by
 * `tlsim replay` to prove a stored trace matches its run row. */
int sim_trace_digest_db(const char *path, int64_t run_id, char *digest,
			char *err, size_t errlen);

/* sim_trace_open_readonly opens the trace at |path| read-only for a
 * reader (`tlsim pcap`, sim_trace_digest_db), with the checks of
 * sim_trace_open and the same one-line messages naming |path|, but it
 * never creates or modifies anything: a missing or empty file is
 * SIM_ENOENT. On success |*db| is in a read transaction (a consistent
 * snapshot of every table; sqlite3_close ends it) and |*empty| is set for
 * an SQLite database with no schema at all (a trace with no runs). Returns
 * 0 or a SIM_E* code, with |*db| NULL. */
int sim_trace_open_readonly(const char *path, struct sqlite3 **db, int *empty,
			    char *err, size_t errlen);

/* sim_trace_causality_create creates the views op_step and op_concurrent
 * (docs/trace.md "Happens-before") in |db|, as temporary views when
 * |temp| (for reading a trace that lacks them). Returns an SQLite code. */
int sim_trace_causality_create(struct sqlite3 *db, int temp);

/* sim_trace_set_crash_after is a test hook: the process _exit(9)s after
 * writing |n| rows inside the commit transaction of the next run, to
 * prove that a killed writer leaves earlier runs intact. 0 disables. */
void sim_trace_set_crash_after(sim_trace *t, uint64_t n);

#endif

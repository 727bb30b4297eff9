/* sim/report.h: one run of a trace, read for `tlsim report`.
 *
 * sim_report_open reads a run from a trace (read-only, one snapshot): its
 * run row, its endpoints (the ladder's lanes), its expectations, the
 * verdicts of the race queries run against it, and its rows merged into
 * one list of ladder items in virtual-time order. sim/ladder.c draws the
 * report in a terminal, sim/html.c as a self-contained page.
 *
 * Item order: by time; at one time, operation steps, then TLS rows, then
 * packets, then log rows, then failed expectations; each table's rows in
 * their own order (seq). The trace has no order across tables, and this
 * one puts the packets an operation sent after the operation.
 *
 * Every string of a report is display-safe: valid UTF-8 with no control
 * characters. Trace text can hold any bytes (a script can put any string
 * in a log row or an operation's name); a byte that is not part of valid
 * UTF-8, a control character (C0, DEL, C1) or a bidirectional override is
 * replaced by the text \xNN (\u{NNNN} for a code point), once, when read.
 * Renderers still escape for their own syntax (HTML, JSON). */
#ifndef TLSIM_SIM_REPORT_H
#define TLSIM_SIM_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sim/time.h"

#define SIM_REPORT_LIMIT_DEFAULT 10000 /* ladder items shown */
#define SIM_REPORT_LIMIT_MAX 1000000
#define SIM_REPORT_MAX_STEPS 8     /* op steps merged into one item */
#define SIM_REPORT_MAX_LANES 64    /* endpoints drawn */
#define SIM_REPORT_MAX_SUB 64      /* packets shown inside one datagram */
#define SIM_REPORT_MAX_QUERIES 256 /* *.sql files run */
#define SIM_REPORT_QUERY_ROWS 3    /* rows kept of a matching query */
#define SIM_REPORT_MAX_CHECKS 100000

/* What an item is, in the order items of one time are listed. */
typedef enum sim_report_kind {
	SIM_REPORT_OP,
	SIM_REPORT_TLS,
	SIM_REPORT_PACKET,
	SIM_REPORT_LOG,
	SIM_REPORT_CHECK,
} sim_report_kind;

/* A packet row. Integers that are NULL in the trace are -1, strings NULL. */
typedef struct sim_report_pkt {
	int64_t id, parent, dup_of, pn, len;
	sim_time send_ns, deliver_ns; /* deliver_ns -1: never delivered */
	const char *link, *src, *dst, *proto, *fate, *reason, *ptype, *space,
	    *frames, *hs_state;
} sim_report_pkt;

typedef struct sim_report_step {
	const char
	    *action;   /* enqueue, enqueue_front, dequeue, complete, drop */
	int64_t depth; /* queue depth after it */
} sim_report_step;

typedef struct sim_report_item {
	sim_report_kind kind;
	sim_time time;
	int64_t seq;      /* the (first) row's seq in its table */
	const char *node; /* endpoint, `script`...; NULL for a check */
	int lane;         /* index into lanes; -1 not an endpoint */
	union {
		struct { /* SIM_REPORT_PACKET: a datagram or segment */
			sim_report_pkt p;
			int dst_lane;        /* -1 not an endpoint */
			sim_report_pkt *sub; /* packets coalesced in it */
			int nsub;
			int more_sub; /* packets left out past MAX_SUB */
		} pkt;
		struct { /* SIM_REPORT_OP: consecutive steps of one op */
			int64_t op_id, cause_id; /* cause_id -1 none */
			const char *op_type, *cause_kind, *detail;
			sim_report_step steps[SIM_REPORT_MAX_STEPS];
			int nsteps;
		} op;
		struct { /* SIM_REPORT_TLS */
			const char *event, *level, *direction, *detail;
			int64_t code; /* -1 none */
		} tls;
		struct { /* SIM_REPORT_LOG */
			const char *text;
		} log;
		struct { /* SIM_REPORT_CHECK (failed ones only) */
			const char *message, *location, *detail;
			int ok;
		} check;
	} u;
} sim_report_item;

typedef struct sim_report_check {
	sim_time time;
	int ok;
	const char *message, *location, *detail;
} sim_report_check;

/* The verdict of one race query restricted to the run. */
typedef struct sim_report_query {
	const char *name;  /* file name without .sql */
	const char *error; /* NULL, or why it could not run */
	int64_t rows;      /* rows whose first column is the run id */
	const char *first[SIM_REPORT_QUERY_ROWS]; /* the first rows, as
						     "col=value ..." */
} sim_report_query;

typedef struct sim_report {
	const char *path; /* the trace */
	int64_t run;
	int64_t runs, first_run, last_run; /* runs in the trace */
	/* The run row. */
	const char *scenario, *scenario_sha256, *params, *version, *outcome,
	    *reason, *digest;
	uint64_t seed;
	sim_time end_ns;
	int64_t events, rows, checks_total, checks_failed;
	/* Endpoints, left to right: in the order they first send or
	 * receive a packet, then the ones that never do. */
	const char *lanes[SIM_REPORT_MAX_LANES];
	const char *lane_kind[SIM_REPORT_MAX_LANES];
	int nlanes;
	sim_report_check *checks; /* every expectation, in order */
	size_t nchecks;
	int checks_cut;           /* more than SIM_REPORT_MAX_CHECKS */
	const char *queries_dir;  /* NULL: no queries were run */
	const char *queries_note; /* why not, for the reader (static) */
	sim_report_query *queries;
	size_t nqueries;
	/* The run's totals, whatever the window: datagrams and segments
	 * (packet rows with no parent), all packet rows, lost ones of
	 * each, op rows, tls rows. */
	int64_t n_arrows, n_packet_rows, n_lost_arrows, n_lost_rows, n_ops,
	    n_tls;
	/* The ladder. */
	sim_report_item *items;
	size_t nitems;
	sim_time from_ns, to_ns; /* the window shown */
	int64_t rows_before;     /* trace rows before from_ns */
	int64_t rows_after;      /* after to_ns */
	int64_t rows_past_limit; /* in the window, past the item limit */
	size_t limit;
	int64_t hidden_tls; /* state and keylog rows left out */
	struct sim_report_pool *pool;
} sim_report;

typedef struct sim_report_opts {
	int64_t run;             /* 0: the last run */
	sim_time from_ns;        /* window: from (0) ... */
	sim_time to_ns;          /* ... to (SIM_TIME_MAX), inclusive */
	size_t limit;            /* items; 0: SIM_REPORT_LIMIT_DEFAULT */
	int tls_states;          /* keep `state` and `keylog` tls rows */
	const char *queries_dir; /* NULL: run no queries */
} sim_report_opts;

/* sim_report_open reads run |o->run| (the last run when 0) of the trace
 * at |path| into a new report at |*out|. Returns 0, or a SIM_E* code with
 * a one-line reason naming the file or option in |err|: SIM_ENOTTRACE,
 * SIM_ESCHEMA, SIM_ECORRUPT, SIM_ENOENT (no such file; SIM_EINVAL for no
 * such run or a trace with no runs), SIM_EIO, SIM_ENOMEM. A query that
 * cannot run is not an error: its verdict says why. */
int sim_report_open(const char *path, const sim_report_opts *o,
		    sim_report **out, char *err, size_t errlen);

/* sim_report_del frees |r|. sim_report_del(NULL) is a no-op. */
void sim_report_del(sim_report *r);

/* sim_report_list writes one line per run of the trace at |path| to
 * |f|: id, seed, outcome, end time, rows, scenario and parameters.
 * Returns 0 or a SIM_E* code with a reason in |err|. */
int sim_report_list(const char *path, FILE *f, char *err, size_t errlen);

/* sim_report_default_queries finds the race queries' directory when
 * --queries is not given: scripts/queries in the executable's directory
 * or one of its three parents (build/tlsim finds the source tree's), else
 * in the current directory. Writes it to |dir| and returns 0, or returns
 * SIM_ENOENT when there is none. */
int sim_report_default_queries(char *dir, size_t n);

/* sim_report_cli is `tlsim report ARGS`; |usage| is its help text.
 * Returns the exit status (enum sim_status). */
int sim_report_cli(int argc, char **argv, const char *usage);

/* Formatting shared by the renderers. */

/* sim_report_ms writes |t| as milliseconds with microsecond precision
 * ("1040.000") into |buf| and returns it. */
char *sim_report_ms(sim_time t, char *buf, size_t n);

/* sim_report_pkt_label writes a one-line summary of datagram or segment
 * |p| ("#3 initial+handshake 1200B", "#4 DATA seq=1 ack=1 len=250
 * 278B") and its fate ("LOST(loss)", "DUP of #4"...) to |buf|. */
void sim_report_pkt_label(const sim_report_pkt *p, char *buf, size_t n);

/* sim_report_sub_label: one coalesced packet ("initial pn=0
 * ACK[0],CRYPTO(0+90)"). */
void sim_report_sub_label(const sim_report_pkt *p, char *buf, size_t n);

/* sim_report_item_text writes the text of an op, tls, log or check item
 * ("shutdown [op10] enqueue_front(2) dequeue(1) complete(1)", "keys
 * application/write TLS_AES_128_GCM_SHA256") to |buf|. */
void sim_report_item_text(const sim_report_item *it, char *buf, size_t n);

/* sim_report_query_verdict: "matches (2 rows)", "no rows" or "error: ...". */
void sim_report_query_verdict(const sim_report_query *q, char *buf, size_t n);

#endif

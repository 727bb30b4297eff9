/* bench/bench_handshake.c: TLS 1.3 or QUIC handshakes through tlsim,
 * tracing off and on, against bare in-memory BoringSSL handshakes measured
 * in the same process (--proto tls, the default, or --proto quic).
 *
 * TLS (--proto tls):
 *  floor: two SSL objects with memory BIOs shuttled by hand. The contexts
 *         come from the same factories tlsim uses (proto_pki_server_ctx /
 *         proto_pki_client_ctx), made once; the server serves the same
 *         P-256 chain (leaf + intermediate), the client verifies it with a
 *         custom verify callback calling proto_pki_verify, as tlsim's
 *         client does, and sends SNI. Fresh SSL objects per handshake.
 *         After both sides finish, each reads once, as tlsim's autoread
 *         does (BoringSSL holds the session tickets until the server's
 *         first write, so none cross on either side); the bytes each side
 *         sent are checked against what tlsim's endpoints sent (equal but
 *         for the length of the server's DER ECDSA signature).
 *  off:   per handshake a fresh sim_world (no trace), a link (10 ms each
 *         way, no faults), a tls server and a tls client made by
 *         sim_ep_new(proto_tls_make), accept + connect, the scheduler run
 *         until idle, everything freed. The chain is made once;
 *         proto_tls_make makes each endpoint's SSL_CTX itself.
 *  on:    the same with a sim_trace on a file: sim_trace_begin before the
 *         world, sim_trace_end after it (digest, one transaction), event
 *         rows on, as `tlsim run --trace` does per run. One database per
 *         repetition, opened before its first handshake and closed (a WAL
 *         checkpoint) after its last; that time counts too.
 *  batch: the same, but the handshakes of a slice (N/20, see below) are
 *         committed in one transaction (sim_trace_batch_begin/commit), as
 *         tlsim sweep stores runs: what is left when the per-run commit
 *         is amortised, the rows' own inserts. No target of its own.
 *  sqlite: no simulation: SQLite alone storing what full tracing
 *         stores. Before timing, SQL_RUNS handshakes (world seeds --seed
 *         on) are traced into a scratch trace, as in on, and their run
 *         rows and the rows of every table are read back; each handshake
 *         then stores the next of those runs again, the same values (same
 *         types, same lengths) under a new run id: BEGIN IMMEDIATE, the
 *         run row, per table one prepared INSERT INTO t VALUES(?, ...)
 *         stepped once per row with sqlite3_bind_*, COMMIT. The database
 *         has the scratch trace's schema and tlsim's pragmas (WAL,
 *         synchronous=NORMAL, its checkpoint interval) and is opened with
 *         tlsim's VFS (sim/vfs.h; --sqlite-vfs unix: SQLite's default);
 *         one per repetition, open and close counted, as in on. The
 *         straightforward way to write the rows with SQLite, the floor
 *         of the trace writer; no target of its own. (The writer inserts
 *         a table's rows with one INSERT ... SELECT from a virtual table,
 *         which costs SQLite fewer instructions per row.) At the end the
 *         rows it stored are checked against the traced modes' and the
 *         runs they copy (row counts, digests).
 *
 * QUIC (--proto quic):
 *  floor: two SSL objects with an SSL_QUIC_METHOD, TLS 1.3 only, contexts
 *         from the same factories, made once, with the same chain, ALPN
 *         "tlsim", transport parameters laid out as proto/quic.c lays them
 *         out, and the same client verification (proto_pki_verify).
 *         add_handshake_data appends to the peer's inbox for that level;
 *         each side is handed its inbox at its read level
 *         (SSL_provide_quic_data) before SSL_do_handshake. The secret
 *         callbacks keep nothing: no packets, no packet protection. Done
 *         when both handshakes have returned 1 (the server's session
 *         tickets stay unread, as in tlsim); the handshake bytes each side
 *         wrote are checked against tlsim's CRYPTO bytes.
 *  off:   per handshake a fresh sim_world, the same link, a quic_server and
 *         a quic_client made by sim_ep_new(proto_quic_make) (each makes its
 *         own SSL_CTX), start; the scheduler runs until both endpoints
 *         have emitted "connected" (the handler calls sim_sched_stop:
 *         the server's connected, 30 ms of virtual time), then everything
 *         is freed with the server's last datagram (HANDSHAKE_DONE) still
 *         on the link. Teardown counts on both sides (SSL_free here).
 *  on, batch: the same with tracing, as for TLS.
 *  sqlite: as for TLS, with the rows of traced QUIC runs.
 *
 * Each repetition runs N handshakes of every mode in SLICES slices that
 * alternate between the modes (the order rotating every slice), so that a
 * slow spell of the shared machine hits all of them. Reported: microseconds
 * per handshake, median (min-max) over the repetitions, and the ratio of
 * the medians to the floor.
 *
 * Each mode runs on a thread of its own (see "one thread per mode") whose
 * BoringSSL entropy comes from the stream of --seed plus the mode number
 * (sim_entropy_begin; the chain is made on a sim_entropy_run_thread
 * thread), and main() re-executes the program with OPENSSL_ia32cap set
 * (sim_entropy_reexec) as the CLI does, so RDRAND and AES-NI are off on
 * every side and all negotiate the same suite.
 *
 * Output: a markdown table on stdout (scripts/bench/handshake embeds it),
 * details on stderr. Exit status 1 only if a handshake failed or the floor
 * and tlsim did different work; missing a target is reported, not an
 * error.
 *
 * Wall-clock time is read here only: bench/ is outside the simulator. */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "proto/pki.h"
#include "proto/quic.h"
#include "proto/quic_wire.h"
#include "proto/tls.h"
#include "sim/entropy.h"
#include "sim/ep.h"
#include "sim/err.h"
#include "sim/link.h"
#include "sim/sched.h"
#include "sim/trace.h"
#include "sim/vfs.h"
#include "sim/world.h"

#define HOST "server.test"
#define EPOCH_S INT64_C(1767225600) /* 2026-01-01, tlsim's default */
#define LATENCY_NS (10 * SIM_MS)
#define RUN_LIMIT_NS (60 * SIM_S)
#define FLOOR_STEPS_MAX 16
#define REPS_MAX 101
#define SLICES 20
#define OFF_TARGET 1.10
#define ON_TARGET 1.25
#define SIG_SLACK 8 /* bytes */

enum mode { M_FLOOR, M_OFF, M_ON, M_BATCH, M_SQLITE, M_COUNT };
static const char *const MODE_NAMES[M_COUNT] = {"floor", "off", "on", "batch",
						"sqlite"};
/* The modes from M_ON on have a database of their own, one per
 * repetition; the file names under --dir. */
static const char *const DB_NAMES[M_COUNT] = {
    NULL, NULL, "handshake.db", "handshake-batch.db", "handshake-sqlite.db"};
#define ROWS_DB_NAME "handshake-rows.db" /* the sqlite mode's scratch */

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt,
								...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tlsim_bench_handshake: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	uint32_t e = ERR_peek_last_error();
	if (e != 0) {
		char buf[256];
		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, "  (BoringSSL: %s)\n", buf);
	}
	exit(1);
}

/* Bytes each side wrote into its connection in one handshake: the floor's
 * and tlsim's must be equal, or they did not do the same work. */
typedef struct hs_bytes {
	uint64_t client, server;
} hs_bytes;

typedef STACK_OF(X509) x509_stack;

/* Where a tlsim handshake's time goes, summed over the timed ones. */
typedef struct phases {
	double begin;     /* sim_trace_begin */
	double setup;     /* world, link, two endpoints, accept + connect */
	double run;       /* sim_sched_run until idle */
	double teardown;  /* endpoints, link, world freed */
	double end;       /* sim_trace_end: digest, commit */
	double commit;    /* sim_trace_batch_begin + commit (batch); COMMIT
			     (sqlite) */
	double insert;    /* BEGIN IMMEDIATE and the inserts (sqlite) */
	double openclose; /* sim_trace_open + sim_trace_close */
	uint64_t n;
} phases;

/* One side of a QUIC floor handshake: what the peer wrote, per level,
 * waiting to be provided at this side's read level. */
#define QLEVELS 4
#define QINBOX_BYTES 16384

typedef struct qside {
	struct bench *b;
	SSL *ssl;
	struct qside *peer;
	uint8_t in[QLEVELS][QINBOX_BYTES];
	size_t in_len[QLEVELS];
	uint64_t sent; /* handshake bytes written, all levels */
	int alert;     /* an alert BoringSSL sent, -1 for none */
} qside;

/* The sqlite mode: the rows of SQL_RUNS traced runs, read back from a
 * scratch trace, stored again in turn, one run per handshake. Several
 * runs, not one: a QUIC run's rows depend on its seed (5 or 6 datagrams,
 * as the seed's tie-break orders two of the server's), and a TLS run's
 * packet bytes on its signature's length. */
#define SQL_RUNS 20

/* The run table first: its new row's id is the other rows' run. Column 0
 * (run.id, the other tables' run) is bound per handshake, not copied. */
#define SQL_TABLES 8
static const char *const SQL_TABLE_NAMES[SQL_TABLES] = {
    "run", "node", "event", "op", "packet", "tls", "check", "log"};

typedef struct sqlval {
	int type; /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB or _NULL */
	sqlite3_int64 i;
	double d;
	void *p; /* text or blob bytes, never NULL for those */
	int n;
} sqlval;

/* One captured run. */
typedef struct sqlcap {
	int nrows[SQL_TABLES]; /* the run table: 1 */
	sqlval *v[SQL_TABLES]; /* nrows rows of ncols values, seq order */
	uint64_t rows;         /* its rows, its run row left out */
	char digest[65];       /* its run.digest */
	/* in this repetition's database */
	uint64_t stored; /* times stored */
	int64_t id;      /* the last run id it was stored as */
} sqlcap;

typedef struct sqlrun {
	const char *vfs; /* sim_vfs_register()'s, or NULL: SQLite's default */
	char *schema;    /* the scratch trace's CREATE statements, meta rows
			    and ids, as one script (sqlite3_malloc) */
	int ncols[SQL_TABLES];
	sqlcap cap[SQL_RUNS];
	uint64_t next; /* stores cap[next % SQL_RUNS] next */
	sqlite3 *db;
	sqlite3_stmt *begin, *commit, *ins[SQL_TABLES];
} sqlrun;

typedef struct bench {
	/* options */
	uint64_t n;
	int reps, warmup;
	uint64_t seed;
	const char *dir;
	const char *label;
	int run[M_COUNT];
	int quic;        /* --proto quic */
	int default_vfs; /* --sqlite-vfs unix */
	/* shared */
	proto_pki_chain *chain;
	int64_t epoch_ns;
	/* floor */
	SSL_CTX *cctx, *sctx;
	x509_stack *roots, *cached;
	hs_bytes floor_bytes;
	/* QUIC floor: contexts made once, the two sides of a handshake */
	SSL_CTX *qcctx, *qsctx;
	qside *qs; /* [2]: client, server */
	/* tlsim */
	proto_tls_config ccfg, scfg;
	proto_quic_config qccfg, qscfg;
	uint64_t qpackets; /* QUIC packets sent, both sides, last handshake */
	uint64_t world_seed;
	hs_bytes tl_bytes;
	uint64_t segments; /* link packets (TLS segments, QUIC datagrams),
			      last handshake */
	sim_time end_ns;   /* virtual time of the last handshake */
	uint64_t events;   /* scheduler events, last handshake */
	/* trace: one database per mode from M_ON (on, batch, sqlite) */
	char db[M_COUNT][4096];
	char rows_db[4096]; /* the sqlite mode's scratch trace */
	sim_trace *trace[M_COUNT];
	uint64_t rows; /* rows of the last traced handshake */
	sqlrun sq;
	/* phases, summed over timed handshakes */
	phases ph[M_COUNT];
} bench;

/* ---- floor ---- */

static enum ssl_verify_result_t floor_verify(SSL *ssl, uint8_t *out_alert)
{
	bench *b = SSL_get_app_data(ssl);
	char msg[160];
	int depth;
	int err = proto_pki_verify(
	    SSL_get_peer_cert_chain(ssl), b->roots, b->cached, HOST,
	    proto_pki_clock_get() / SIM_S, &depth, msg, sizeof(msg));
	if (err != X509_V_OK) {
		*out_alert = (uint8_t)proto_pki_alert_for(err);
		return ssl_verify_invalid;
	}
	return ssl_verify_ok;
}

static BIO *mem_bio(void)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (bio == NULL) {
		die("out of memory");
	}
	BIO_set_mem_eof_return(bio, -1); /* empty: would block */
	return bio;
}

/* move gives what |from| wrote to |to|; adds the count to |*sent|. */
static void move(BIO *from, BIO *to, uint64_t *sent)
{
	const uint8_t *data;
	size_t len;
	if (!BIO_mem_contents(from, &data, &len)) {
		die("BIO_mem_contents");
	}
	if (len == 0) {
		return;
	}
	if (BIO_write(to, data, (int)len) != (int)len || BIO_reset(from) != 1) {
		die("BIO shuttle");
	}
	*sent += len;
}

/* step returns 1 when |ssl|'s handshake is done, 0 if it wants input. */
static int step(SSL *ssl, const char *who)
{
	int rc = SSL_do_handshake(ssl);
	if (rc == 1) {
		return 1;
	}
	int e = SSL_get_error(ssl, rc);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
		die("floor: %s handshake failed (SSL error %d)", who, e);
	}
	return 0;
}

static void read_once(SSL *ssl, const char *who)
{
	uint8_t buf[64];
	int n = SSL_read(ssl, buf, sizeof(buf));
	if (n > 0 || SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ) {
		die("floor: %s read: unexpected data or error", who);
	}
}

static void floor_handshake(bench *b)
{
	proto_pki_clock_set(b->epoch_ns);
	SSL *c = SSL_new(b->cctx), *s = SSL_new(b->sctx);
	if (c == NULL || s == NULL) {
		die("SSL_new");
	}
	BIO *cr = mem_bio(), *cw = mem_bio(), *sr = mem_bio(), *sw = mem_bio();
	SSL_set_bio(c, cr, cw);
	SSL_set_bio(s, sr, sw);
	SSL_set_app_data(c, b);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (!SSL_set_tlsext_host_name(c, HOST)) {
		die("SNI");
	}
	hs_bytes sent = {0, 0};
	int cdone = 0, sdone = 0;
	for (int i = 0; !(cdone && sdone); i++) {
		if (i == FLOOR_STEPS_MAX) {
			die("floor: handshake did not finish in %d steps",
			    FLOOR_STEPS_MAX);
		}
		if (!cdone) {
			cdone = step(c, "client");
		}
		move(cw, sr, &sent.client);
		if (!sdone) {
			sdone = step(s, "server");
		}
		move(sw, cr, &sent.server);
	}
	/* What tlsim's autoread does once each side is done. */
	read_once(c, "client");
	read_once(s, "server");
	move(cw, sr, &sent.client);
	move(sw, cr, &sent.server);
	SSL_free(c);
	SSL_free(s);
	b->floor_bytes = sent;
}

static x509_stack *stack_of(X509 *x)
{
	x509_stack *s = sk_X509_new_null();
	if (s == NULL ||
	    (x != NULL && (!X509_up_ref(x) || !sk_X509_push(s, x)))) {
		die("out of memory");
	}
	return s;
}

static void floor_setup(bench *b)
{
	proto_pki_clock_set(b->epoch_ns);
	const proto_tls_config *c = &b->ccfg;
	b->sctx = NULL;
	b->cctx = NULL;
	if (proto_pki_server_ctx(b->chain, 1, c->min_version, c->max_version,
				 NULL, NULL, &b->sctx) != 0 ||
	    proto_pki_client_ctx(c->min_version, c->max_version, NULL, NULL,
				 &b->cctx) != 0) {
		die("cannot make the floor's contexts");
	}
	SSL_CTX_set_custom_verify(b->cctx, SSL_VERIFY_PEER, floor_verify);
}

static void floor_free(bench *b)
{
	SSL_CTX_free(b->cctx);
	SSL_CTX_free(b->sctx);
}

/* ---- QUIC floor ---- */

#define QALPN "\x05tlsim" /* as proto/quic.c */
#define QCID_LEN 8

static int qf_secret(SSL *ssl, enum ssl_encryption_level_t level,
		     const SSL_CIPHER *cipher, const uint8_t *secret,
		     size_t len)
{
	return 1; /* no packets, no keys */
}

static int qf_add(SSL *ssl, enum ssl_encryption_level_t level,
		  const uint8_t *data, size_t len)
{
	qside *s = SSL_get_app_data(ssl);
	qside *p = s->peer;
	if ((unsigned)level >= QLEVELS ||
	    len > QINBOX_BYTES - p->in_len[level]) {
		return 0;
	}
	memcpy(p->in[level] + p->in_len[level], data, len);
	p->in_len[level] += len;
	s->sent += len;
	return 1;
}

static int qf_flush(SSL *ssl)
{
	return 1;
}

static int qf_alert(SSL *ssl, enum ssl_encryption_level_t level, uint8_t alert)
{
	qside *s = SSL_get_app_data(ssl);
	s->alert = alert;
	return 1;
}

static const SSL_QUIC_METHOD qf_method = {
    qf_secret, qf_secret, qf_add, qf_flush, qf_alert,
};

static enum ssl_verify_result_t qf_verify(SSL *ssl, uint8_t *out_alert)
{
	qside *s = SSL_get_app_data(ssl);
	char msg[160];
	int depth;
	int err = proto_pki_verify(
	    SSL_get_peer_cert_chain(ssl), s->b->roots, s->b->cached, HOST,
	    proto_pki_clock_get() / SIM_S, &depth, msg, sizeof(msg));
	if (err != X509_V_OK) {
		*out_alert = (uint8_t)proto_pki_alert_for(err);
		return ssl_verify_invalid;
	}
	return ssl_verify_ok;
}

static int qf_alpn(SSL *ssl, const uint8_t **out, uint8_t *outlen,
		   const uint8_t *in, unsigned inlen, void *arg)
{
	return SSL_select_next_proto(
		   (uint8_t **)out, outlen, in, inlen, (const uint8_t *)QALPN,
		   sizeof(QALPN) - 1) == OPENSSL_NPN_NEGOTIATED
		   ? SSL_TLSEXT_ERR_OK
		   : SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* qf_params sets transport parameters laid out as proto/quic.c's (the
 * defaults of proto_quic_config_default), with fixed connection IDs. */
static void qf_params(SSL *ssl, const proto_quic_config *c)
{
	static const uint8_t odcid[QCID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
	static const uint8_t scid[QCID_LEN] = {9, 10, 11, 12, 13, 14, 15, 16};
	uint8_t buf[256], *p = buf;
	const uint64_t ints[][2] = {
	    {0x01, (uint64_t)(c->idle_timeout_ns / SIM_MS)},
	    {0x04, c->initial_max_data},
	    {0x05, c->initial_max_stream_data},
	    {0x06, c->initial_max_stream_data},
	    {0x08, 4},
	    {0x0b, (uint64_t)(c->max_ack_delay_ns / SIM_MS)},
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		p = proto_qwire_varint_put(p, ints[i][0]);
		p = proto_qwire_varint_put(p,
					   proto_qwire_varint_len(ints[i][1]));
		p = proto_qwire_varint_put(p, ints[i][1]);
	}
	if (c->is_server) {
		p = proto_qwire_varint_put(p, 0x00);
		p = proto_qwire_varint_put(p, QCID_LEN);
		memcpy(p, odcid, QCID_LEN);
		p += QCID_LEN;
	}
	p = proto_qwire_varint_put(p, 0x0f);
	p = proto_qwire_varint_put(p, QCID_LEN);
	memcpy(p, scid, QCID_LEN);
	p += QCID_LEN;
	if (!SSL_set_quic_transport_params(ssl, buf, (size_t)(p - buf))) {
		die("SSL_set_quic_transport_params");
	}
}

/* qf_step hands |s| what waits at its read level and runs its handshake,
 * again while that moves it to a level with bytes waiting. Returns 1 when
 * the handshake is done, 0 if it wants input. */
static int qf_step(qside *s, const char *who)
{
	for (int i = 0; i < FLOOR_STEPS_MAX; i++) {
		enum ssl_encryption_level_t lv = SSL_quic_read_level(s->ssl);
		if (s->in_len[lv] > 0) {
			if (!SSL_provide_quic_data(s->ssl, lv, s->in[lv],
						   s->in_len[lv])) {
				die("quic floor: %s: SSL_provide_quic_data",
				    who);
			}
			s->in_len[lv] = 0;
		}
		if (step(s->ssl, who)) {
			return 1;
		}
		enum ssl_encryption_level_t now = SSL_quic_read_level(s->ssl);
		if (now == lv || s->in_len[now] == 0) {
			return 0;
		}
	}
	die("quic floor: %s: no progress in %d steps", who, FLOOR_STEPS_MAX);
}

static void qfloor_handshake(bench *b)
{
	proto_pki_clock_set(b->epoch_ns);
	qside *c = &b->qs[0], *s = &b->qs[1];
	c->ssl = SSL_new(b->qcctx);
	s->ssl = SSL_new(b->qsctx);
	if (c->ssl == NULL || s->ssl == NULL) {
		die("SSL_new");
	}
	for (int k = 0; k < 2; k++) {
		qside *q = &b->qs[k];
		q->b = b;
		q->peer = &b->qs[1 - k];
		memset(q->in_len, 0, sizeof(q->in_len));
		q->sent = 0;
		q->alert = -1;
		if (!SSL_set_quic_method(q->ssl, &qf_method)) {
			die("SSL_set_quic_method");
		}
		SSL_set_app_data(q->ssl, q);
	}
	SSL_set_connect_state(c->ssl);
	SSL_set_accept_state(s->ssl);
	if (!SSL_set_tlsext_host_name(c->ssl, HOST) ||
	    SSL_set_alpn_protos(c->ssl, (const uint8_t *)QALPN,
				sizeof(QALPN) - 1) != 0) {
		die("SNI, ALPN");
	}
	qf_params(c->ssl, &b->qccfg);
	qf_params(s->ssl, &b->qscfg);
	int cdone = 0, sdone = 0;
	for (int i = 0; !(cdone && sdone); i++) {
		if (i == FLOOR_STEPS_MAX) {
			die("quic floor: handshake did not finish in %d steps",
			    FLOOR_STEPS_MAX);
		}
		if (!cdone) {
			cdone = qf_step(c, "client");
		}
		if (!sdone) {
			sdone = qf_step(s, "server");
		}
	}
	if (c->alert >= 0 || s->alert >= 0) {
		die("quic floor: alert %d/%d", c->alert, s->alert);
	}
	b->floor_bytes.client = c->sent;
	b->floor_bytes.server = s->sent;
	SSL_free(c->ssl);
	SSL_free(s->ssl);
	c->ssl = s->ssl = NULL;
}

/* qctx_pair makes a server and a client context set up as proto_quic_make
 * sets up its own: the QUIC floor's (made once), or made and freed to
 * measure what proto_quic_make's cost. */
static void qctx_pair(bench *b, SSL_CTX **sctx, SSL_CTX **cctx)
{
	if (proto_pki_server_ctx(b->chain, 1, TLS1_3_VERSION, TLS1_3_VERSION,
				 NULL, NULL, sctx) != 0 ||
	    proto_pki_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, NULL, NULL,
				 cctx) != 0) {
		die("cannot make the QUIC contexts");
	}
	SSL_CTX_set_alpn_select_cb(*sctx, qf_alpn, NULL);
	SSL_CTX_set_custom_verify(*cctx, SSL_VERIFY_PEER, qf_verify);
}

static void qfloor_setup(bench *b)
{
	proto_pki_clock_set(b->epoch_ns);
	qctx_pair(b, &b->qsctx, &b->qcctx);
	b->qs = calloc(2, sizeof(*b->qs));
	if (b->qs == NULL) {
		die("out of memory");
	}
}

static void qfloor_free(bench *b)
{
	SSL_CTX_free(b->qcctx);
	SSL_CTX_free(b->qsctx);
	free(b->qs);
}

/* ---- tlsim ---- */

static sim_ep *make_ep(sim_world *w, const char *name, const sim_ep_class *cls,
		       proto_tls_config *cfg)
{
	char err[256] = "";
	sim_ep *ep = sim_ep_new(w, name, cls, proto_tls_make, cfg, 0, 0, err,
				sizeof(err));
	if (ep == NULL) {
		die("sim_ep_new %s: %s", name, err);
	}
	return ep;
}

/* A QUIC run's event handler: stops the run once both endpoints are
 * connected. */
typedef struct qrun {
	sim_sched *sched;
	int connected;
} qrun;

static int q_event(void *ud, sim_ep *ep, const sim_ep_event *ev)
{
	qrun *r = ud;
	if (strcmp(ev->name, "connected") == 0 && ++r->connected == 2) {
		sim_sched_stop(r->sched);
	}
	return SIM_EP_ANSWER_NONE;
}

static sim_ep *make_qep(sim_world *w, const char *name, const sim_ep_class *cls,
			proto_quic_config *cfg, qrun *r)
{
	char err[256] = "";
	sim_ep *ep = sim_ep_new(w, name, cls, proto_quic_make, cfg, 0, 0, err,
				sizeof(err));
	if (ep == NULL) {
		die("sim_ep_new %s: %s", name, err);
	}
	sim_ep_set_handler(ep, q_event, r);
	return ep;
}

/* run_world runs one handshake in |w|, from the link to the freed
 * endpoints, and sets t[0] after the setup and t[1] after the run. TLS
 * (|quic| 0): accept + connect, run until idle. QUIC: start, run until
 * both sides are connected. */
static void run_world(bench *b, sim_world *w, int quic, double t[2])
{
	sim_link_params lp;
	sim_link_params_default(&lp);
	lp.latency_ns = LATENCY_NS;
	lp.corrupt_bits = 1; /* as w:link{} */
	sim_link *link = sim_link_new(w, "link0", &lp);
	if (link == NULL) {
		die("sim_link_new");
	}
	qrun r = {.sched = w->sched, .connected = 0};
	proto_pki_clock_set(b->epoch_ns);
	sim_ep *srv, *cli;
	if (quic) {
		srv = make_qep(w, "server", &proto_quic_server_class, &b->qscfg,
			       &r);
		cli = make_qep(w, "client", &proto_quic_client_class, &b->qccfg,
			       &r);
	} else {
		srv = make_ep(w, "server", &proto_tls_server_class, &b->scfg);
		cli = make_ep(w, "client", &proto_tls_client_class, &b->ccfg);
	}
	sim_ep_attach(srv, link, 1);
	sim_ep_attach(cli, link, 0);
	if (quic ? sim_ep_call(cli, "start", NULL) < 0
		 : sim_ep_call(srv, "accept", NULL) < 0 ||
		       sim_ep_call(cli, "connect", NULL) < 0) {
		die("sim_ep_call");
	}
	t[0] = wall_s();
	sim_run_limits lim = {.until = RUN_LIMIT_NS, .max_events = 0};
	enum sim_stop why = sim_sched_run(w->sched, &lim);
	t[1] = wall_s();
	if (why != (quic ? SIM_STOP_REQUESTED : SIM_STOP_IDLE) || w->fatal) {
		die("tlsim run stopped: %s %s", sim_stop_name(why),
		    w->fatal ? w->fatal_msg : "");
	}
	if (quic) {
		proto_quic_info ci, si;
		proto_quic_get_info(sim_ep_impl(cli), &ci);
		proto_quic_get_info(sim_ep_impl(srv), &si);
		if (ci.connected_ns < 0 || si.connected_ns < 0 ||
		    ci.verify_error != X509_V_OK) {
			die("tlsim QUIC: handshake not done (client %s, "
			    "server %s)",
			    ci.state, si.state);
		}
		b->tl_bytes.client = ci.crypto_bytes_sent;
		b->tl_bytes.server = si.crypto_bytes_sent;
		b->qpackets = ci.packets_sent + si.packets_sent;
	} else {
		proto_tls_info ci, si;
		proto_tls_get_info(sim_ep_impl(cli), &ci);
		proto_tls_get_info(sim_ep_impl(srv), &si);
		if (ci.handshake_done_ns < 0 || si.handshake_done_ns < 0 ||
		    ci.verify_error != X509_V_OK) {
			die("tlsim: handshake not done (client %s, server %s)",
			    proto_tls_outcome(sim_ep_impl(cli)),
			    proto_tls_outcome(sim_ep_impl(srv)));
		}
		b->tl_bytes.client = ci.stream_offset;
		b->tl_bytes.server = si.stream_offset;
	}
	sim_link_stats ls[2];
	sim_link_get_stats(link, 0, &ls[0]);
	sim_link_get_stats(link, 1, &ls[1]);
	b->segments = ls[0].submitted + ls[1].submitted;
	b->end_ns = sim_world_now(w);
	b->events = sim_sched_events(w->sched);
	sim_ep_del(cli);
	sim_ep_del(srv);
	sim_link_del(link);
}

/* tlsim_handshake runs one TLS (|quic| 0) or QUIC handshake through
 * tlsim for |mode|, traced into that mode's trace (none for M_OFF). */
static void tlsim_handshake(bench *b, enum mode mode, int quic)
{
	sim_trace *trace = b->trace[mode];
	double t0 = wall_s();
	uint64_t seed = b->world_seed++;
	if (trace != NULL) {
		sim_run_info info = {
		    .scenario =
			quic ? "bench/handshake/quic" : "bench/handshake",
		    .scenario_sha256 =
			"0000000000000000000000000000000000000000"
			"000000000000000000000000",
		    .seed = seed,
		    .params = "",
		};
		int rc = sim_trace_begin(trace, &info);
		if (rc != 0) {
			die("sim_trace_begin: %s", sim_trace_errmsg(trace));
		}
		sim_trace_node(trace, 0, "world", "world");
	}
	double t1 = wall_s();
	sim_world w;
	if (sim_world_init(&w, seed, trace) != 0) {
		die("sim_world_init: out of memory");
	}
	double t23[2];
	run_world(b, &w, quic, t23);
	sim_world_free(&w);
	double t4 = wall_s();
	if (trace != NULL) {
		b->rows = sim_trace_rows(trace);
		sim_run_result res = {.outcome = "pass",
				      .end_ns = b->end_ns,
				      .events = b->events};
		char digest[65];
		int rc = sim_trace_end(trace, &res, digest, NULL);
		if (rc != 0) {
			die("sim_trace_end: %s", sim_trace_errmsg(trace));
		}
	}
	double t5 = wall_s();
	phases *ph = &b->ph[mode];
	ph->begin += t1 - t0;
	ph->setup += t23[0] - t1;
	ph->run += t23[1] - t23[0];
	ph->teardown += t4 - t23[1];
	ph->end += t5 - t4;
	ph->n++;
}

/* ---- bare SQLite ---- */

static void rm_db(const char *path);

/* SQLite's checkpoint interval as sim/trace.c sets it (CHECKPOINT_PAGES,
 * private there): keep the two equal. */
#define SQL_CHECKPOINT_PAGES 4096

static sqlite3_stmt *sql_prepare(sqlite3 *db, const char *sql, unsigned flags)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v3(db, sql, -1, flags, &st, NULL) != SQLITE_OK) {
		die("sqlite: %s: %s", sql, sqlite3_errmsg(db));
	}
	return st;
}

/* sql_row steps |st|: 1 for a row, 0 when done. */
static int sql_row(sqlite3 *db, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		die("sqlite: %s: %s", sqlite3_sql(st), sqlite3_errmsg(db));
	}
	return rc == SQLITE_ROW;
}

/* sql_done runs |st|, which returns no row, and resets it. */
static void sql_done(sqlite3 *db, sqlite3_stmt *st)
{
	if (sql_row(db, st)) {
		die("sqlite: %s: a row", sqlite3_sql(st));
	}
	sqlite3_reset(st);
}

static void sql_exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		die("sqlite: %.60s: %s", sql, sqlite3_errmsg(db));
	}
}

static int64_t sql_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = sql_prepare(db, sql, 0);
	if (!sql_row(db, st)) {
		die("sqlite: %s: no row", sql);
	}
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* sql_keep copies column |c| of |st|'s row, type and bytes as stored. */
static void sql_keep(sqlval *v, sqlite3_stmt *st, int c)
{
	memset(v, 0, sizeof(*v));
	v->type = sqlite3_column_type(st, c);
	if (v->type == SQLITE_INTEGER) {
		v->i = sqlite3_column_int64(st, c);
	} else if (v->type == SQLITE_FLOAT) {
		v->d = sqlite3_column_double(st, c);
	} else if (v->type == SQLITE_TEXT || v->type == SQLITE_BLOB) {
		const void *p = v->type == SQLITE_TEXT
				    ? (const void *)sqlite3_column_text(st, c)
				    : sqlite3_column_blob(st, c);
		v->n = sqlite3_column_bytes(st, c);
		/* Never NULL: a NULL pointer would bind SQL NULL. */
		v->p = malloc((size_t)v->n + 1);
		if (v->p == NULL) {
			die("out of memory");
		}
		if (v->n > 0) {
			memcpy(v->p, p, (size_t)v->n);
		}
	}
}

/* sql_read_table reads table |t| of the scratch trace into the captured
 * runs, whose ids there are 1 to SQL_RUNS. */
static void sql_read_table(sqlite3 *db, sqlrun *q, int t)
{
	int run = t == 0;
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY %s",
		 SQL_TABLE_NAMES[t], run ? "id" : "run, seq");
	sqlite3_stmt *st = sql_prepare(db, sql, 0);
	int nc = sqlite3_column_count(st);
	if (nc < 2 ||
	    strcmp(sqlite3_column_name(st, 0), run ? "id" : "run") != 0) {
		die("sqlite: %s: unexpected columns", SQL_TABLE_NAMES[t]);
	}
	q->ncols[t] = nc;
	while (sql_row(db, st)) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id < 1 || id > SQL_RUNS) {
			die("sqlite: %s: run %" PRId64 " in the scratch trace",
			    SQL_TABLE_NAMES[t], id);
		}
		sqlcap *c = &q->cap[id - 1];
		size_t at = (size_t)c->nrows[t] * (size_t)nc;
		c->v[t] = realloc(c->v[t], (at + (size_t)nc) * sizeof(sqlval));
		if (c->v[t] == NULL) {
			die("out of memory");
		}
		for (int k = 0; k < nc; k++) {
			sql_keep(&c->v[t][at + (size_t)k], st, k);
		}
		c->nrows[t]++;
	}
	sqlite3_finalize(st);
}

/* sql_capture traces SQL_RUNS handshakes, as the on mode does (world
 * seeds --seed on), into a scratch trace and reads back its schema, run
 * rows and rows, which the sqlite mode stores. Before any timing; the
 * world seeds of the timed handshakes are those they would have been
 * without it. */
static void sql_capture(bench *b)
{
	sqlrun *q = &b->sq;
	char err[512];
	rm_db(b->rows_db);
	if (sim_trace_open(b->rows_db, &b->trace[M_SQLITE], err, sizeof(err)) !=
	    0) {
		die("sim_trace_open: %s", err);
	}
	uint64_t seed = b->world_seed;
	for (int i = 0; i < SQL_RUNS; i++) {
		tlsim_handshake(b, M_SQLITE, b->quic);
	}
	b->world_seed = seed;
	sim_trace_close(b->trace[M_SQLITE]);
	b->trace[M_SQLITE] = NULL;
	memset(&b->ph[M_SQLITE], 0, sizeof(b->ph[M_SQLITE]));

	sqlite3 *db = NULL;
	int empty = 0;
	if (sim_trace_open_readonly(b->rows_db, &db, &empty, err,
				    sizeof(err)) != 0) {
		die("%s", err);
	}
	sqlite3_str *s = sqlite3_str_new(db);
	sqlite3_stmt *st = sql_prepare(
	    db,
	    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY "
	    "rowid",
	    0);
	while (sql_row(db, st)) {
		sqlite3_str_appendf(s, "%s;", sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	st = sql_prepare(db, "SELECT key, value FROM meta", 0);
	while (sql_row(db, st)) {
		sqlite3_str_appendf(s, "INSERT INTO meta VALUES(%Q, %Q);",
				    sqlite3_column_text(st, 0),
				    sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	sqlite3_str_appendf(
	    s, "PRAGMA application_id = %lld; PRAGMA user_version = %lld;",
	    (long long)sql_int(db, "PRAGMA application_id"),
	    (long long)sql_int(db, "PRAGMA user_version"));
	q->schema = sqlite3_str_finish(s);
	if (q->schema == NULL) {
		die("out of memory");
	}
	for (int t = 0; t < SQL_TABLES; t++) {
		sql_read_table(db, q, t);
	}
	st = sql_prepare(db, "SELECT id, rows, digest FROM run ORDER BY id", 0);
	for (int i = 0; i < SQL_RUNS; i++) {
		sqlcap *c = &q->cap[i];
		const char *dg = NULL;
		if (sql_row(db, st)) {
			dg = (const char *)sqlite3_column_text(st, 2);
		}
		c->rows = 0;
		for (int t = 1; t < SQL_TABLES; t++) {
			c->rows += (uint64_t)c->nrows[t];
		}
		if (dg == NULL || sqlite3_column_int64(st, 0) != i + 1 ||
		    sqlite3_column_int64(st, 1) != (int64_t)c->rows ||
		    c->nrows[0] != 1 || strlen(dg) != 64) {
			die("sqlite: the scratch trace %s does not hold %d "
			    "whole runs",
			    b->rows_db, SQL_RUNS);
		}
		memcpy(c->digest, dg, 65);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	rm_db(b->rows_db);
}

/* sql_open makes the sqlite mode's database as sim_trace_open makes a new
 * trace: the schema in one transaction, then tlsim's pragmas; and
 * prepares the statements of a run. */
static void sql_open(bench *b)
{
	sqlrun *q = &b->sq;
	const char *path = b->db[M_SQLITE];
	rm_db(path);
	if (sqlite3_open_v2(path, &q->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    q->vfs) != SQLITE_OK) {
		die("sqlite: cannot open %s: %s", path, sqlite3_errmsg(q->db));
	}
	char sql[4096];
	snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint=%d",
		 SQL_CHECKPOINT_PAGES);
	sql_exec(q->db, "BEGIN IMMEDIATE");
	sql_exec(q->db, q->schema);
	sql_exec(q->db, "COMMIT");
	sql_exec(q->db, "PRAGMA journal_mode=WAL");
	sql_exec(q->db, "PRAGMA synchronous=NORMAL");
	sql_exec(q->db, sql);
	q->begin =
	    sql_prepare(q->db, "BEGIN IMMEDIATE", SQLITE_PREPARE_PERSISTENT);
	q->commit = sql_prepare(q->db, "COMMIT", SQLITE_PREPARE_PERSISTENT);
	for (int t = 0; t < SQL_TABLES; t++) {
		size_t k = (size_t)snprintf(sql, sizeof(sql),
					    "INSERT INTO \"%s\" VALUES(?",
					    SQL_TABLE_NAMES[t]);
		for (int c = 1; c < q->ncols[t] && k < sizeof(sql); c++) {
			k += (size_t)snprintf(sql + k, sizeof(sql) - k, ",?");
		}
		if (k + 2 > sizeof(sql)) {
			die("sqlite: %s: too many columns", SQL_TABLE_NAMES[t]);
		}
		memcpy(sql + k, ")", 2);
		q->ins[t] = sql_prepare(q->db, sql, SQLITE_PREPARE_PERSISTENT);
	}
	q->next = 0;
	for (int i = 0; i < SQL_RUNS; i++) {
		q->cap[i].stored = 0;
		q->cap[i].id = 0;
	}
}

static void sql_close(bench *b)
{
	sqlrun *q = &b->sq;
	for (int t = 0; t < SQL_TABLES; t++) {
		sqlite3_finalize(q->ins[t]);
		q->ins[t] = NULL;
	}
	sqlite3_finalize(q->begin);
	sqlite3_finalize(q->commit);
	q->begin = q->commit = NULL;
	if (sqlite3_close(q->db) != SQLITE_OK) {
		die("sqlite: close: %s", sqlite3_errmsg(q->db));
	}
	q->db = NULL;
}

static void sql_bind(sqlite3_stmt *st, int i, const sqlval *v)
{
	int rc;
	switch (v->type) {
	case SQLITE_INTEGER:
		rc = sqlite3_bind_int64(st, i, v->i);
		break;
	case SQLITE_FLOAT:
		rc = sqlite3_bind_double(st, i, v->d);
		break;
	case SQLITE_TEXT:
		rc = sqlite3_bind_text(st, i, v->p, v->n, SQLITE_STATIC);
		break;
	case SQLITE_BLOB:
		rc = sqlite3_bind_blob(st, i, v->p, v->n, SQLITE_STATIC);
		break;
	default:
		rc = sqlite3_bind_null(st, i);
		break;
	}
	if (rc != SQLITE_OK) {
		die("sqlite: bind: %s", sqlite3_errstr(rc));
	}
}

/* sql_store stores the next captured run: BEGIN IMMEDIATE, its run row
 * (a new id), each table's rows with that run id, COMMIT. */
static void sql_store(bench *b)
{
	sqlrun *q = &b->sq;
	sqlcap *c = &q->cap[q->next++ % SQL_RUNS];
	double t0 = wall_s();
	sql_done(q->db, q->begin);
	sqlite3_int64 run = 0;
	for (int t = 0; t < SQL_TABLES; t++) {
		sqlite3_stmt *ins = q->ins[t];
		int nc = q->ncols[t];
		for (int r = 0; r < c->nrows[t]; r++) {
			const sqlval *v = c->v[t] + (size_t)r * (size_t)nc;
			if (t == 0) {
				sqlite3_bind_null(ins, 1);
			} else {
				sqlite3_bind_int64(ins, 1, run);
			}
			for (int k = 1; k < nc; k++) {
				sql_bind(ins, k + 1, &v[k]);
			}
			sql_done(q->db, ins);
		}
		if (t == 0) {
			run = sqlite3_last_insert_rowid(q->db);
		}
	}
	double t1 = wall_s();
	sql_done(q->db, q->commit);
	c->stored++;
	c->id = run;
	phases *ph = &b->ph[M_SQLITE];
	ph->insert += t1 - t0;
	ph->commit += wall_s() - t1;
	ph->n++;
}

/* sql_span gives the fewest and most rows in a captured run, and the mean
 * over the captured runs. */
static double sql_span(const sqlrun *q, int *lo, int *hi)
{
	double sum = 0;
	*lo = INT32_MAX;
	*hi = 0;
	for (int i = 0; i < SQL_RUNS; i++) {
		int n = (int)q->cap[i].rows;
		sum += n;
		*lo = n < *lo ? n : *lo;
		*hi = n > *hi ? n : *hi;
	}
	return sum / SQL_RUNS;
}

static void sql_free(sqlrun *q)
{
	for (int i = 0; i < SQL_RUNS; i++) {
		for (int t = 0; t < SQL_TABLES; t++) {
			sqlcap *c = &q->cap[i];
			size_t n = (size_t)c->nrows[t] * (size_t)q->ncols[t];
			for (size_t k = 0; k < n; k++) {
				free(c->v[t][k].p);
			}
			free(c->v[t]);
			c->v[t] = NULL;
			c->nrows[t] = 0;
		}
	}
	sqlite3_free(q->schema);
	q->schema = NULL;
}

/* One function per mode, not inlined, so that callgrind counts each
 * mode's instructions per handshake (scripts/bench/handshake). */
__attribute__((noinline, noclone)) static void hs_floor(bench *b)
{
	floor_handshake(b);
}

__attribute__((noinline, noclone)) static void hs_off(bench *b)
{
	tlsim_handshake(b, M_OFF, 0);
}

__attribute__((noinline, noclone)) static void hs_on(bench *b)
{
	tlsim_handshake(b, M_ON, 0);
}

__attribute__((noinline, noclone)) static void hs_batch(bench *b)
{
	tlsim_handshake(b, M_BATCH, 0);
}

__attribute__((noinline, noclone)) static void hs_qfloor(bench *b)
{
	qfloor_handshake(b);
}

__attribute__((noinline, noclone)) static void hs_qoff(bench *b)
{
	tlsim_handshake(b, M_OFF, 1);
}

__attribute__((noinline, noclone)) static void hs_qon(bench *b)
{
	tlsim_handshake(b, M_ON, 1);
}

__attribute__((noinline, noclone)) static void hs_qbatch(bench *b)
{
	tlsim_handshake(b, M_BATCH, 1);
}

/* TLS and QUIC alike: only the captured rows differ. */
__attribute__((noinline, noclone)) static void hs_sqlite(bench *b)
{
	sql_store(b);
}

/* The handshake of each mode, TLS ([0]) and QUIC ([1]). */
static void (*const HANDSHAKE[2][M_COUNT])(bench *) = {
    {hs_floor, hs_off, hs_on, hs_batch, hs_sqlite},
    {hs_qfloor, hs_qoff, hs_qon, hs_qbatch, hs_sqlite},
};

static void rm_db(const char *path)
{
	char p[4200];
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		if (unlink(p) != 0 && errno != ENOENT) {
			die("cannot remove %s: %s", p, strerror(errno));
		}
	}
}

/* ---- the slices ---- */

/* ---- one thread per mode ---- */

/* Each mode runs on a thread of its own, started once, so that each has
 * its own malloc arena, as separate processes would: with tracing off a
 * tlsim process has no SQLite, and the traced mode's SQLite and row
 * buffers must not change where the untraced mode's allocations land (on
 * one thread they made glibc trim and re-fault the arena on every
 * handshake). Only one thread works at a time; the others wait. */
enum cmd { C_IDLE, C_RUN, C_OPEN, C_CLOSE, C_CTX, C_QUIT };

typedef struct worker {
	bench *b;
	enum mode mode;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum cmd cmd;
	uint64_t m;
	double secs;
} worker;

/* ctx_pair makes and frees the two contexts proto_tls_make makes for a
 * client and a server endpoint, set up as it sets them up. */
static void keylog_nop(const SSL *ssl, const char *line)
{
}

static void ctx_pair(bench *b)
{
	const proto_tls_config *c = &b->ccfg;
	SSL_CTX *sctx = NULL, *cctx = NULL;
	if (proto_pki_server_ctx(b->chain, 1, c->min_version, c->max_version,
				 NULL, NULL, &sctx) != 0 ||
	    proto_pki_client_ctx(c->min_version, c->max_version, NULL, NULL,
				 &cctx) != 0) {
		die("cannot make contexts");
	}
	SSL_CTX_set_keylog_callback(sctx, keylog_nop);
	SSL_CTX_set_keylog_callback(cctx, keylog_nop);
	SSL_CTX_set_custom_verify(cctx, SSL_VERIFY_PEER, floor_verify);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void work(worker *w)
{
	bench *b = w->b;
	double t0 = wall_s();
	char err[512];
	switch (w->cmd) {
	case C_RUN:
		/* The batch mode commits the slice's runs in one transaction,
		 * as tlsim sweep stores runs: begin and commit count. */
		if (w->mode == M_BATCH) {
			if (sim_trace_batch_begin(b->trace[M_BATCH]) != 0) {
				die("sim_trace_batch_begin: %s",
				    sim_trace_errmsg(b->trace[M_BATCH]));
			}
			b->ph[M_BATCH].commit += wall_s() - t0;
		}
		for (uint64_t i = 0; i < w->m; i++) {
			HANDSHAKE[b->quic][w->mode](b);
		}
		if (w->mode == M_BATCH) {
			double tc = wall_s();
			if (sim_trace_batch_commit(b->trace[M_BATCH]) != 0) {
				die("sim_trace_batch_commit: %s",
				    sim_trace_errmsg(b->trace[M_BATCH]));
			}
			b->ph[M_BATCH].commit += wall_s() - tc;
		}
		break;
	case C_OPEN:
		if (w->mode == M_SQLITE) {
			sql_open(b);
			break;
		}
		rm_db(b->db[w->mode]);
		if (sim_trace_open(b->db[w->mode], &b->trace[w->mode], err,
				   sizeof(err)) != 0) {
			die("sim_trace_open: %s", err);
		}
		break;
	case C_CLOSE:
		if (w->mode == M_SQLITE) {
			sql_close(b);
			break;
		}
		sim_trace_close(b->trace[w->mode]);
		b->trace[w->mode] = NULL;
		break;
	case C_CTX:
		for (uint64_t i = 0; i < w->m; i++) {
			if (b->quic) {
				SSL_CTX *sctx = NULL, *cctx = NULL;
				qctx_pair(b, &sctx, &cctx);
				SSL_CTX_free(cctx);
				SSL_CTX_free(sctx);
			} else {
				ctx_pair(b);
			}
		}
		break;
	default:
		break;
	}
	w->secs = wall_s() - t0;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	/* A fresh thread: BoringSSL seeds its DRBG for this thread from the
	 * stream on the first draw. */
	sim_entropy_begin(w->b->seed + (uint64_t)w->mode);
	proto_pki_clock_set(w->b->epoch_ns);
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->cmd == C_IDLE) {
			pthread_cond_wait(&w->cv, &w->mu);
		}
		if (w->cmd == C_QUIT) {
			break;
		}
		work(w);
		w->cmd = C_IDLE;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	sim_entropy_end();
	return NULL;
}

/* call has |w| run |cmd| (with count |m|) and returns its seconds. */
static double call(worker *w, enum cmd cmd, uint64_t m)
{
	pthread_mutex_lock(&w->mu);
	w->cmd = cmd;
	w->m = m;
	pthread_cond_broadcast(&w->cv);
	while (w->cmd != C_IDLE && cmd != C_QUIT) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	double secs = w->secs;
	pthread_mutex_unlock(&w->mu);
	return secs;
}

static void workers_start(bench *b, worker w[M_COUNT])
{
	for (int m = 0; m < M_COUNT; m++) {
		w[m].b = b;
		w[m].mode = (enum mode)m;
		w[m].cmd = C_IDLE;
		pthread_mutex_init(&w[m].mu, NULL);
		pthread_cond_init(&w[m].cv, NULL);
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, SIM_ENTROPY_STACK_BYTES);
		if (pthread_create(&w[m].th, &attr, worker_main, &w[m]) != 0) {
			die("pthread_create");
		}
		pthread_attr_destroy(&attr);
	}
}

static void workers_stop(worker w[M_COUNT])
{
	for (int m = 0; m < M_COUNT; m++) {
		call(&w[m], C_QUIT, 0);
		pthread_join(w[m].th, NULL);
		pthread_mutex_destroy(&w[m].mu);
		pthread_cond_destroy(&w[m].cv);
	}
}

/* rep runs |n| handshakes of every selected mode, in SLICES slices, and
 * adds each mode's seconds to |secs|. The database of each mode that has
 * one (on, batch, sqlite) is new for each repetition, open from its first
 * slice to its end; opening and closing it (a WAL checkpoint) count. */
static void rep(bench *b, worker w[M_COUNT], uint64_t n, int index,
		double secs[M_COUNT])
{
	for (int m = M_ON; m < M_COUNT; m++) {
		if (b->run[m]) {
			double dt = call(&w[m], C_OPEN, 0);
			secs[m] += dt;
			b->ph[m].openclose += dt;
		}
	}
	for (int k = 0; k < SLICES; k++) {
		uint64_t m = n / SLICES + ((uint64_t)k < n % SLICES ? 1 : 0);
		if (m == 0) {
			continue;
		}
		for (int j = 0; j < M_COUNT; j++) {
			/* rotate, and reverse every other repetition */
			int mode =
			    (k + (index & 1 ? M_COUNT - j : j)) % M_COUNT;
			if (b->run[mode]) {
				secs[mode] += call(&w[mode], C_RUN, m);
			}
		}
	}
	for (int m = M_ON; m < M_COUNT; m++) {
		if (b->run[m]) {
			double dt = call(&w[m], C_CLOSE, 0);
			secs[m] += dt;
			b->ph[m].openclose += dt;
		}
	}
	/* The server's CertificateVerify holds a DER ECDSA signature, 70 to
	 * 72 bytes long (shorter, rarely): its bytes may differ a little. */
	if (b->run[M_FLOOR] && b->run[M_OFF] &&
	    (b->floor_bytes.client != b->tl_bytes.client ||
	     b->floor_bytes.server > b->tl_bytes.server + SIG_SLACK ||
	     b->tl_bytes.server > b->floor_bytes.server + SIG_SLACK)) {
		die("floor and tlsim sent different %s bytes: client %" PRIu64
		    "/%" PRIu64 ", server %" PRIu64 "/%" PRIu64,
		    b->quic ? "handshake (CRYPTO)" : "TLS",
		    b->floor_bytes.client, b->tl_bytes.client,
		    b->floor_bytes.server, b->tl_bytes.server);
	}
}

/* ---- statistics and output ---- */

typedef struct stat3 {
	double med, min, max;
} stat3;

static int cmp_double(const void *a, const void *c)
{
	double x = *(const double *)a, y = *(const double *)c;
	return (x > y) - (x < y);
}

static stat3 stats(const double *v0, int reps)
{
	double v[REPS_MAX];
	memcpy(v, v0, (size_t)reps * sizeof(v[0]));
	qsort(v, (size_t)reps, sizeof(v[0]), cmp_double);
	stat3 s = {reps % 2 ? v[reps / 2] : (v[reps / 2 - 1] + v[reps / 2]) / 2,
		   v[0], v[reps - 1]};
	return s;
}

static double paired_ratio(const double *fl, const double *tl, int reps)
{
	double v[REPS_MAX];
	for (int i = 0; i < reps; i++) {
		v[i] = tl[i] / fl[i];
	}
	return stats(v, reps).med;
}

/* rows_per_run counts the rows of |table| (NULL: of all tables, run.rows)
 * in the trace |path| per run: r[0] the mean, r[1] the fewest, r[2] the
 * most. */
static void rows_per_run(const char *path, const char *table, double r[3])
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char sql[256] = "SELECT avg(rows), min(rows), max(rows) FROM run";
	if (table != NULL) {
		snprintf(sql, sizeof(sql),
			 "SELECT avg(c), min(c), max(c) FROM (SELECT (SELECT "
			 "count(*) FROM \"%s\" t WHERE t.run = r.id) AS c FROM "
			 "run r)",
			 table);
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
		SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		die("cannot count rows in %s: %s", path, sqlite3_errmsg(db));
	}
	for (int i = 0; i < 3; i++) {
		r[i] = sqlite3_column_double(st, i); /* 0 for no runs */
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* check_sqlite_rows checks the last repetition's databases: the sqlite
 * mode stored n runs and as many rows of every table as the captured runs
 * it stored have; the captured runs it stored have rows per table within
 * the range of each traced mode's runs (the same count, for TLS); and it
 * stored the same values: the last run it stored of each captured run
 * hashes (sim_trace_digest_db) to that run's digest. Exits 1 if not. */
static void check_sqlite_rows(bench *b)
{
	const sqlrun *q = &b->sq;
	const char *path = b->db[M_SQLITE];
	int bad = 0;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK) {
		die("cannot open %s: %s", path, sqlite3_errmsg(db));
	}
	int64_t runs = sql_int(db, "SELECT count(*) FROM run");
	if (runs != (int64_t)b->n) {
		fprintf(stderr,
			"tlsim_bench_handshake: the sqlite mode's database "
			"holds %" PRId64 " runs, not %" PRIu64 "\n",
			runs, b->n);
		bad = 1;
	}
	for (int t = 1; t < SQL_TABLES; t++) {
		const char *name = SQL_TABLE_NAMES[t];
		int64_t want = 0;
		int lo = INT32_MAX, hi = 0;
		for (int i = 0; i < SQL_RUNS; i++) {
			const sqlcap *c = &q->cap[i];
			if (c->stored > 0) {
				want += (int64_t)c->stored * c->nrows[t];
				lo = c->nrows[t] < lo ? c->nrows[t] : lo;
				hi = c->nrows[t] > hi ? c->nrows[t] : hi;
			}
		}
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", name);
		int64_t got = sql_int(db, sql);
		if (got != want) {
			fprintf(stderr,
				"tlsim_bench_handshake: %s: the sqlite mode "
				"stored %" PRId64 " rows, not %" PRId64 "\n",
				name, got, want);
			bad = 1;
		}
		for (int m = M_ON; m < M_COUNT; m++) {
			double r[3];
			if (!b->run[m]) {
				continue;
			}
			rows_per_run(b->db[m], name, r);
			if (lo < r[1] || hi > r[2]) {
				fprintf(stderr,
					"tlsim_bench_handshake: %s rows per "
					"run: %d to %d in the runs the sqlite "
					"mode stores, %g to %g in the %s "
					"mode's\n",
					name, lo, hi, r[1], r[2],
					MODE_NAMES[m]);
				bad = 1;
			}
		}
	}
	sqlite3_close(db);
	for (int i = 0; i < SQL_RUNS; i++) {
		const sqlcap *c = &q->cap[i];
		char digest[65], err[512];
		if (c->id == 0) {
			continue;
		}
		if (sim_trace_digest_db(path, c->id, digest, err,
					sizeof(err)) != 0) {
			die("%s", err);
		}
		if (strcmp(digest, c->digest) != 0) {
			fprintf(stderr,
				"tlsim_bench_handshake: the sqlite mode's run "
				"%" PRId64 " hashes to %s, the run it copies "
				"to %s\n",
				c->id, digest, c->digest);
			bad = 1;
		}
	}
	if (bad) {
		exit(1);
	}
}

static void usage(void)
{
	fprintf(
	    stderr,
	    "usage: tlsim_bench_handshake [--handshakes N] [--reps R] "
	    "[--seed S]\n"
	    "                             [--dir DIR] [--label TEXT]\n"
	    "                             [--only floor|off|on|batch|sqlite]\n"
	    "                             [--proto tls|quic] "
	    "[--sqlite-vfs tlsim|unix]\n"
	    "                             [--no-warmup]\n"
	    "  --handshakes N  handshakes per mode per repetition (default "
	    "1000)\n"
	    "  --reps R        repetitions (default 5)\n"
	    "  --seed S        entropy stream and first world seed (default "
	    "1)\n"
	    "  --dir DIR       where the on, batch and sqlite modes write "
	    "their\n"
	    "                  databases (default: a new directory under "
	    "$TMPDIR\n"
	    "                  or /tmp)\n"
	    "  --label T       add \"(T)\" to the names of those modes' rows\n"
	    "  --only M        run one mode (repeatable), e.g. for callgrind;\n"
	    "                  all five by default. batch: full tracing, one\n"
	    "                  transaction per slice of handshakes (N/20), as\n"
	    "                  tlsim sweep commits; sqlite: no simulation, "
	    "the\n"
	    "                  rows of traced runs stored again, a run per\n"
	    "                  handshake, with prepared INSERTs, one\n"
	    "                  transaction each\n"
	    "  --proto P       TLS 1.3 over tlsim's stream (default) or QUIC\n"
	    "  --sqlite-vfs V  the sqlite mode's VFS: tlsim's, as the trace\n"
	    "                  writer opens its database with (default), or\n"
	    "                  unix, SQLite's default\n"
	    "  --no-warmup     skip the untimed warm-up handshakes\n");
}

static uint64_t parse_u64(const char *opt, const char *s, int zero_ok)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || (v == 0 && !zero_ok)) {
		die("%s: bad value '%s'", opt, s);
	}
	return (uint64_t)v;
}

static void print_row(const char *name, stat3 s, const char *ratio,
		      const char *target, const char *met)
{
	printf("| %s | %.1f µs (%.1f–%.1f) | %s | %s | %s |\n", name, s.med,
	       s.min, s.max, ratio, target, met);
}

/* headroom prints, from the medians in |st|, what the full-tracing target
 * leaves for tracing (the target times the floor, less tracing off) and
 * what tlsim's tracing costs (full tracing less tracing off), each against
 * what SQLite alone takes to store the same rows (the sqlite mode). */
static void headroom(const bench *b, const stat3 st[M_COUNT], const char *lab)
{
	if (!b->run[M_SQLITE] || !b->run[M_OFF]) {
		return;
	}
	double sq = st[M_SQLITE].med, off = st[M_OFF].med;
	if (b->run[M_FLOOR]) {
		double fl = st[M_FLOOR].med, room = ON_TARGET * fl - off;
		fprintf(stderr,
			"headroom%s: the %.2fx target leaves %.2f x floor "
			"%.1f - tracing off %.1f = %.1f µs per handshake for "
			"tracing; bare SQLite stores the rows in %.1f µs",
			lab, ON_TARGET, ON_TARGET, fl, off, room, sq);
		if (room > 0) {
			fprintf(stderr, ", %.2fx the headroom", sq / room);
		}
		fprintf(stderr, "\n");
	}
	if (b->run[M_ON]) {
		double on = st[M_ON].med;
		fprintf(stderr,
			"trace cost%s: full tracing %.1f - tracing off %.1f = "
			"%.1f µs per handshake, %.2fx bare SQLite's %.1f µs\n",
			lab, on, off, on - off, (on - off) / sq, sq);
	}
}

static void *bench_main(void *arg)
{
	bench *b = arg;
	b->epoch_ns = EPOCH_S * SIM_S;
	proto_pki_clock_set(b->epoch_ns);
	proto_pki_chain_params cp = {
	    .dns_name = HOST, .alg = PROTO_PKI_P256, .epoch_s = EPOCH_S};
	int rc = proto_pki_chain_new(&cp, &b->chain);
	if (rc != 0) {
		die("proto_pki_chain_new: %s", sim_strerror(rc));
	}
	proto_tls_config_default(&b->ccfg, 0);
	proto_tls_config_default(&b->scfg, 1);
	b->ccfg.chain = b->scfg.chain = b->chain;
	b->ccfg.epoch_ns = b->scfg.epoch_ns = b->epoch_ns;
	proto_quic_config_default(&b->qccfg, 0);
	proto_quic_config_default(&b->qscfg, 1);
	b->qccfg.chain = b->qscfg.chain = b->chain;
	b->qccfg.name = b->qscfg.name = HOST;
	b->qccfg.epoch_ns = b->qscfg.epoch_ns = b->epoch_ns;
	b->world_seed = b->seed;
	b->roots = stack_of(b->chain->root);
	b->cached = stack_of(NULL);
	if (b->quic) {
		qfloor_setup(b);
	} else {
		floor_setup(b);
	}
	if (b->run[M_SQLITE]) {
		b->sq.vfs = b->default_vfs ? NULL : sim_vfs_register();
		sql_capture(b);
	}
	worker w[M_COUNT];
	workers_start(b, w);

	if (b->warmup) {
		double ws[M_COUNT] = {0};
		rep(b, w, SLICES, 0, ws);
	}
	memset(b->ph, 0, sizeof(b->ph));

	double secs[M_COUNT][REPS_MAX];
	for (int i = 0; i < b->reps; i++) {
		double s[M_COUNT] = {0};
		rep(b, w, b->n, i, s);
		fprintf(stderr, "rep %d:", i);
		for (int m = 0; m < M_COUNT; m++) {
			secs[m][i] = s[m] / (double)b->n * 1e6; /* µs each */
			if (b->run[m]) {
				fprintf(stderr, " %s %.1f µs", MODE_NAMES[m],
					secs[m][i]);
			}
		}
		fprintf(stderr, "\n");
	}

	printf("| measure | µs per handshake: median (min–max) | "
	       "tlsim/floor | target | met? |\n");
	printf("|---|---|---|---|---|\n");
	stat3 st[M_COUNT];
	for (int m = 0; m < M_COUNT; m++) {
		if (b->run[m]) {
			st[m] = stats(secs[m], b->reps);
		}
	}
	char name[512], ratio[64];
	const char *tl = b->quic ? "tlsim QUIC" : "tlsim";
	if (b->run[M_FLOOR]) {
		snprintf(name, sizeof(name),
			 b->quic
			     ? "QUIC floor: bare BoringSSL QUIC "
			       "(SSL_QUIC_METHOD, in memory), %" PRIu64
			       " handshakes"
			     : "floor: bare BoringSSL, memory BIOs, %" PRIu64
			       " handshakes",
			 b->n);
		print_row(name, st[M_FLOOR], "1.00x", "–", "–");
	}
	/* The batch and sqlite modes have no target of their own: they show
	 * what the per-run commit costs, and what SQLite alone costs. */
	static const double targets[M_COUNT] = {0, OFF_TARGET, ON_TARGET, 0, 0};
	char lab[160] = ""; /* " (LABEL)": where the database was */
	if (b->label != NULL) {
		snprintf(lab, sizeof(lab), " (%s)", b->label);
	}
	for (int m = M_OFF; m < M_COUNT; m++) {
		if (!b->run[m]) {
			continue;
		}
		if (m == M_OFF) {
			snprintf(name, sizeof(name),
				 "%s, tracing off, %" PRIu64 " handshakes", tl,
				 b->n);
		} else if (m == M_SQLITE) {
			int lo, hi;
			double mean = sql_span(&b->sq, &lo, &hi);
			char rows[64];
			if (lo == hi) {
				snprintf(rows, sizeof(rows),
					 "the same %d rows per run", lo);
			} else {
				snprintf(rows, sizeof(rows),
					 "the same rows, %.1f per run (%d–%d)",
					 mean, lo, hi);
			}
			snprintf(
			    name, sizeof(name),
			    "bare SQLite%s: %s, prepared INSERTs, one "
			    "transaction per run%s, %" PRIu64 " handshakes",
			    lab, rows,
			    b->sq.vfs ? "" : ", SQLite's default VFS", b->n);
		} else {
			char batch[64] = "";
			if (m == M_BATCH) {
				snprintf(batch, sizeof(batch),
					 ", %" PRIu64 " runs per commit",
					 b->n / SLICES);
			}
			snprintf(name, sizeof(name),
				 "%s, full tracing%s%s, %" PRIu64 " handshakes",
				 tl, lab, batch, b->n);
		}
		char target[32] = "–";
		if (targets[m] > 0) {
			snprintf(target, sizeof(target), "≤ %.2fx", targets[m]);
		}
		if (!b->run[M_FLOOR]) {
			print_row(name, st[m], "–", target, "–");
			continue;
		}
		double r = st[m].med / st[M_FLOOR].med;
		snprintf(ratio, sizeof(ratio), "%.2fx (paired %.2fx)", r,
			 paired_ratio(secs[M_FLOOR], secs[m], b->reps));
		print_row(name, st[m], ratio, target,
			  targets[m] <= 0	 ? "–"
			  : r <= targets[m] ? "yes"
					    : "**no**");
	}
	fflush(stdout);
	headroom(b, st, lab);

	/* What proto_tls_make's (proto_quic_make's) own contexts cost: a
	 * server and a client SSL_CTX made and freed, median of 3 runs. */
	if (b->run[M_FLOOR] && b->warmup) {
		uint64_t nctx = b->n / 10 > 50 ? b->n / 10 : 50;
		double ctx_us[3];
		for (int i = 0; i < 3; i++) {
			ctx_us[i] =
			    call(&w[M_FLOOR], C_CTX, nctx) / (double)nctx * 1e6;
		}
		fprintf(stderr,
			"SSL_CTX pair (server + client, set up as "
			"%s does) made and freed: %.1f µs\n",
			b->quic ? "proto_quic_make" : "proto_tls_make",
			stats(ctx_us, 3).med);
	}
	workers_stop(w);

	/* Details. */
	for (int m = M_OFF; m < M_COUNT; m++) {
		const phases *ph = &b->ph[m];
		if (ph->n == 0) {
			continue;
		}
		double k = 1e6 / (double)ph->n;
		if (m == M_SQLITE) {
			fprintf(stderr,
				"bare SQLite (VFS %s), mean µs per handshake: "
				"open + close %.1f (amortised), BEGIN "
				"IMMEDIATE + inserts %.1f, COMMIT %.1f\n",
				b->sq.vfs ? b->sq.vfs : "SQLite's default",
				ph->openclose * k, ph->insert * k,
				ph->commit * k);
			continue;
		}
		fprintf(stderr, "%s %s, mean µs per handshake: ", tl,
			MODE_NAMES[m]);
		if (m >= M_ON) {
			fprintf(stderr,
				"sim_trace_open + close %.1f (amortised), "
				"sim_trace_begin %.1f, ",
				ph->openclose * k, ph->begin * k);
		}
		fprintf(stderr,
			"setup (world, link, 2 endpoints) %.1f, run %.1f, "
			"teardown %.1f",
			ph->setup * k, ph->run * k, ph->teardown * k);
		if (m == M_ON) {
			fprintf(stderr,
				", sim_trace_end (digest + commit) %.1f",
				ph->end * k);
		} else if (m == M_BATCH) {
			fprintf(stderr,
				", sim_trace_end (digest + insert) %.1f, "
				"sim_trace_batch_begin + commit %.1f",
				ph->end * k, ph->commit * k);
		}
		fprintf(stderr, "\n");
	}
	if (b->quic) {
		fprintf(stderr,
			"per handshake: CRYPTO bytes client %" PRIu64
			", server %" PRIu64 "; %" PRIu64 " datagrams, %" PRIu64
			" QUIC packets, %" PRIu64
			" scheduler events, virtual time %.1f ms\n",
			b->tl_bytes.client, b->tl_bytes.server, b->segments,
			b->qpackets, b->events, (double)b->end_ns / 1e6);
	} else {
		fprintf(stderr,
			"per handshake: TLS bytes client %" PRIu64
			", server %" PRIu64 "; %" PRIu64 " segments, %" PRIu64
			" scheduler events, virtual time %.1f ms\n",
			b->tl_bytes.client, b->tl_bytes.server, b->segments,
			b->events, (double)b->end_ns / 1e6);
	}
	if (b->run[M_ON] || b->run[M_BATCH]) {
		static const char *const tables[] = {"node",   "event", "op",
						     "packet", "tls",   "log"};
		const char *db = b->db[b->run[M_ON] ? M_ON : M_BATCH];
		double per[6];
		for (int i = 0; i < 6; i++) {
			double r[3];
			rows_per_run(db, tables[i], r);
			per[i] = r[0];
		}
		fprintf(stderr,
			"per handshake, trace: %.0f tls rows, %.0f packet "
			"rows; %" PRIu64 " rows in all (",
			per[4], per[3], b->rows);
		for (int i = 0; i < 6; i++) {
			fprintf(stderr, "%s%s %.0f", i ? ", " : "", tables[i],
				per[i]);
		}
		fprintf(stderr, ")\n");
	}
	if (b->run[M_SQLITE]) {
		int lo, hi;
		double mean = sql_span(&b->sq, &lo, &hi);
		fprintf(stderr,
			"per handshake, bare SQLite: %.1f rows per run "
			"(%d–%d), those of %d traced runs (world seeds %" PRIu64
			" to %" PRIu64 ") in turn",
			mean, lo, hi, SQL_RUNS, b->seed,
			b->seed + SQL_RUNS - 1);
		for (int m = M_ON; m < M_SQLITE; m++) {
			double r[3];
			if (b->run[m]) {
				rows_per_run(b->db[m], NULL, r);
				fprintf(stderr,
					"; the %s mode's runs %.1f (%g–%g)",
					MODE_NAMES[m], r[0], r[1], r[2]);
			}
		}
		fprintf(stderr, "\n");
		check_sqlite_rows(b);
		sql_free(&b->sq);
	}
	for (int m = M_ON; m < M_COUNT; m++) {
		rm_db(b->db[m]);
	}
	if (b->quic) {
		qfloor_free(b);
	} else {
		floor_free(b);
	}
	sk_X509_pop_free(b->roots, X509_free);
	sk_X509_pop_free(b->cached, X509_free);
	proto_pki_chain_del(b->chain);
	return NULL;
}

int main(int argc, char **argv)
{
	/* The malloc thresholds tlsim's command line fixes (sim/main.c,
	 * malloc_settings), for every mode alike: with glibc's moving
	 * thresholds, the traced mode's thread gave its heap back to the
	 * kernel after every handshake and faulted it in again. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	int rc = sim_entropy_reexec(argc, argv);
	if (rc != 0) {
		die("cannot re-execute with OPENSSL_ia32cap: %s",
		    sim_strerror(rc));
	}
	bench b;
	memset(&b, 0, sizeof(b));
	b.n = 1000;
	b.reps = 5;
	b.warmup = 1;
	b.seed = 1;
	int only = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage();
			return 0;
		}
		if (strcmp(a, "--no-warmup") == 0) {
			b.warmup = 0;
			continue;
		}
		if (i + 1 >= argc) {
			usage();
			return 2;
		}
		const char *v = argv[++i];
		if (strcmp(a, "--handshakes") == 0) {
			b.n = parse_u64(a, v, 0);
		} else if (strcmp(a, "--reps") == 0) {
			uint64_t r = parse_u64(a, v, 0);
			if (r > REPS_MAX) {
				die("--reps: at most %d", REPS_MAX);
			}
			b.reps = (int)r;
		} else if (strcmp(a, "--seed") == 0) {
			b.seed = parse_u64(a, v, 1);
		} else if (strcmp(a, "--dir") == 0) {
			b.dir = v;
		} else if (strcmp(a, "--label") == 0) {
			b.label = v;
		} else if (strcmp(a, "--sqlite-vfs") == 0) {
			if (strcmp(v, "tlsim") != 0 && strcmp(v, "unix") != 0) {
				die("--sqlite-vfs: '%s' (tlsim or unix)", v);
			}
			b.default_vfs = strcmp(v, "unix") == 0;
		} else if (strcmp(a, "--proto") == 0) {
			if (strcmp(v, "tls") != 0 && strcmp(v, "quic") != 0) {
				die("--proto: '%s' (tls or quic)", v);
			}
			b.quic = strcmp(v, "quic") == 0;
		} else if (strcmp(a, "--only") == 0) {
			int m;
			for (m = 0; m < M_COUNT; m++) {
				if (strcmp(v, MODE_NAMES[m]) == 0) {
					break;
				}
			}
			if (m == M_COUNT) {
				die("--only: '%s' (floor, off, on, batch or "
				    "sqlite)",
				    v);
			}
			b.run[m] = 1;
			only = 1;
		} else {
			usage();
			return 2;
		}
	}
	if (!only) {
		for (int m = 0; m < M_COUNT; m++) {
			b.run[m] = 1;
		}
	}

	char err[256];
	if ((rc = sim_entropy_check(err, sizeof(err))) != 0) {
		die("entropy self-check failed: %s", err);
	}

	char tmpl[4096];
	int own_dir = 0;
	if (b.dir == NULL) {
		const char *tmp = getenv("TMPDIR");
		snprintf(tmpl, sizeof(tmpl), "%s/tlsim-bench-XXXXXX",
			 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
		if (mkdtemp(tmpl) == NULL) {
			die("mkdtemp %s: %s", tmpl, strerror(errno));
		}
		b.dir = tmpl;
		own_dir = 1;
	}
	if (strlen(b.dir) + sizeof("/" ROWS_DB_NAME) > sizeof(b.db[0])) {
		die("directory name too long: %s", b.dir);
	}
	for (int m = M_ON; m < M_COUNT; m++) {
		snprintf(b.db[m], sizeof(b.db[m]), "%s/%s", b.dir, DB_NAMES[m]);
	}
	snprintf(b.rows_db, sizeof(b.rows_db), "%s/%s", b.dir, ROWS_DB_NAME);

	rc = sim_entropy_run_thread(bench_main, &b, b.seed, NULL);
	if (rc != 0) {
		die("run thread: %s", sim_strerror(rc));
	}
	if (own_dir) {
		rmdir(b.dir);
	}
	return 0;
}

#include "proto/quic.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/quic_crypto.h"
#include "proto/quic_wire.h"
#include "sim/err.h"
#include "sim/rng.h"
#include "sim/trace.h"

#define EPOCH_2026_NS (1767225600LL * 1000000000LL)
#define CID_LEN 8
#define DATAGRAM_MAX 1200  /* we never send larger datagrams */
#define INITIAL_MIN 1200   /* RFC 9000 14.1 */
#define SENT_MAX 4096      /* packets in flight per space, at most */
#define RX_RANGES_MAX 32   /* packet number ranges kept for ACKs */
#define CRYPTO_MAX 65536   /* handshake bytes per level */
#define EARLY_MAX 16       /* datagrams buffered for later keys */
#define ALPN "\x05tlsim"
#define INITIAL_RTT_NS (333 * SIM_MS)  /* RFC 9002 6.2.2 */
#define GRANULARITY_NS SIM_MS
#define PACKET_THRESHOLD 3
#define FT_PADDING 0x00
#define FT_PING 0x01
#define FT_ACK 0x02
#define FT_CRYPTO 0x06
#define FT_STREAM 0x08
#define FT_CLOSE 0x1c
#define FT_CLOSE_APP 0x1d
#define FT_HANDSHAKE_DONE 0x1e
#define ERR_NO_ERROR 0x00
#define ERR_PROTOCOL_VIOLATION 0x0a
#define ERR_CRYPTO 0x100

enum space_id { SP_INITIAL, SP_HANDSHAKE, SP_APP, NSPACE };
static const char *const space_names[NSPACE] = {"initial", "handshake",
						"application"};
static const int space_ptype[NSPACE] = {PROTO_QWIRE_INITIAL,
					PROTO_QWIRE_HANDSHAKE,
					PROTO_QWIRE_1RTT};

enum conn_state {
	ST_IDLE,       /* client before start */
	ST_HANDSHAKE,  /* handshake in progress */
	ST_CONNECTED,  /* handshake complete */
	ST_CLOSING,    /* we sent CONNECTION_CLOSE */
	ST_DRAINING,   /* we received one */
	ST_CLOSED,
};
static const char *const state_names[] = {
	"idle", "handshaking", "connected", "closing", "draining", "closed"};

/* A byte stream we send (CRYPTO data of one level, or stream 0). */
typedef struct txbuf {
	uint8_t *data;
	size_t len, cap, max;
	uint64_t next;  /* first byte never sent */
	uint64_t rtx_off; /* lost bytes to resend: [rtx_off, rtx_end) */
	uint64_t rtx_end;
	int fin, fin_sent, fin_acked;
} txbuf;

/* A byte stream we receive, reassembled. */
typedef struct rxbuf {
	uint8_t *data, *have;
	size_t cap, max;
	uint64_t delivered; /* bytes handed on */
	uint64_t fin_at;    /* UINT64_MAX: no FIN yet */
} rxbuf;

typedef struct sent_pkt {
	uint64_t pn;
	sim_time sent_ns;
	size_t size;
	int ack_eliciting;
	uint64_t crypto_off, crypto_len;
	uint64_t stream_off, stream_len;
	int stream_fin, handshake_done;
} sent_pkt;

typedef struct space {
	proto_qcrypto_keys tx, rx;
	int have_tx, have_rx, discarded;
	uint64_t next_pn;
	int64_t largest_rx, largest_acked;
	proto_qwire_ack_range rx_ranges[RX_RANGES_MAX]; /* descending */
	size_t nrx;
	int ack_pending, ack_eliciting_unacked;
	sim_time ack_due, largest_rx_ns;
	sent_pkt *sent; /* grows to SENT_MAX */
	size_t nsent, sent_cap;
	sim_time loss_ns, last_eliciting_ns;
	txbuf crypto_tx;
	rxbuf crypto_rx;
	int probe; /* PTO: send an ack-eliciting packet */
	int send_close;
} space;

typedef struct early_dgram {
	uint8_t *data;
	size_t len;
} early_dgram;

typedef struct quic {
	const sim_ep_env *env;
	proto_quic_config cfg;
	char host[256];
	sim_time last_now, now;
	SSL_CTX *ctx;
	SSL *ssl;
	STACK_OF(X509) *roots, *cached;
	enum conn_state st;
	space sp[NSPACE];
	uint8_t dcid[CID_LEN], scid[CID_LEN], odcid[CID_LEN];
	int have_peer_cid;
	int hs_complete, hs_confirmed, address_validated;
	int peer_validated; /* client: the server has validated our address */
	sim_time last_sent_ns;
	uint64_t bytes_rx_unvalidated, bytes_tx_unvalidated;
	/* certificate check */
	int verify_state; /* 0 none, 1 pending, 2 ok, 3 failed */
	int verify_alert;
	int flight_held; /* deferred verification holds our Handshake data */
	/* loss recovery (RFC 9002) */
	sim_time srtt, rttvar, min_rtt, latest_rtt;
	int have_rtt;
	unsigned pto_count;
	/* timers */
	sim_time idle_deadline, handshake_deadline, close_deadline;
	sim_time start_ns;
	/* closing */
	uint64_t close_error, close_frame_type;
	int close_app, close_sent_once;
	/* stream 0 */
	txbuf stream_tx;
	rxbuf stream_rx;
	early_dgram early[EARLY_MAX];
	int nearly;
	int keys_changed; /* buffered datagrams may be readable now */
	/* 1-RTT key update (RFC 9001 6). Write and read keys each move on
	 * by one phase per update; gen counts the updates, the Key Phase
	 * bit is gen & 1. */
	struct {
		uint64_t tx_gen, rx_gen;
		uint64_t tx_first_pn; /* first packet number sent with the
					 current write keys */
		uint64_t rx_first_pn; /* lowest received with the current read
					 keys (0 before the first update) */
		uint64_t tx_packets;  /* 1-RTT packets sent with the current
					 write keys (key_update_every) */
		proto_qcrypto_keys rx_prev; /* read keys of phase rx_gen - 1 */
		int have_rx_prev;
		sim_time prev_until; /* when rx_prev goes: 3 PTO after the
					update (RFC 9001 6.5) */
	} ku;
	int handshake_done_pending;
	proto_quic_info info;
	char close_reason[32];
} quic;

/* --- configuration ------------------------------------------------------- */

void proto_quic_config_default(proto_quic_config *c, int is_server)
{
	memset(c, 0, sizeof(*c));
	c->is_server = is_server;
	c->name = "server.test";
	c->send_chain = 1;
	c->app_error_in_initial = 0x0c;
	c->idle_timeout_ns = 30 * SIM_S;
	c->handshake_timeout_ns = 10 * SIM_S;
	c->max_ack_delay_ns = 25 * SIM_MS;
	c->initial_max_data = 1u << 20;
	c->initial_max_stream_data = 1u << 20;
	c->max_stream_bytes = 16u << 20;
	c->epoch_ns = EPOCH_2026_NS;
	c->aia_fetch_ns = -1;
}

/* --- small helpers ------------------------------------------------------- */

static void tls_row(quic *q, const char *event, const char *level,
		    const char *dir, int64_t code, const char *detail)
{
	sim_tls_row r = {.time = q->now,
			 .node = q->env->name,
			 .event = event,
			 .level = level,
			 .direction = dir,
			 .code = code,
			 .detail = detail};
	sim_trace_tls(q->env->w->trace, &r);
}

static int emit(quic *q, const sim_ep_event *ev)
{
	return sim_ep_emit(q->env->ep, ev);
}

static void emit_simple(quic *q, const char *name)
{
	sim_ep_event ev = {.name = name};
	emit(q, &ev);
}

static int buf_reserve(uint8_t **data, size_t *cap, size_t need, size_t max,
		       int zero)
{
	if (need <= *cap) {
		return 0;
	}
	if (need > max) {
		return SIM_ELIMIT;
	}
	size_t n = *cap ? *cap : 4096;
	while (n < need) {
		n *= 2;
	}
	n = n < max ? n : max;
	uint8_t *b = realloc(*data, n);
	if (b == NULL) {
		return SIM_ENOMEM;
	}
	if (zero) {
		memset(b + *cap, 0, n - *cap);
	}
	*data = b;
	*cap = n;
	return 0;
}

static int tx_append(txbuf *t, const uint8_t *p, size_t n)
{
	int rc = buf_reserve(&t->data, &t->cap, t->len + n, t->max, 0);
	if (rc != 0) {
		return rc;
	}
	memcpy(t->data + t->len, p, n);
	t->len += n;
	return 0;
}

/* tx_lost marks [off, off + len) for resending. One range is kept: the
 * union's hull, which may resend some acknowledged bytes (harmless). */
static void tx_lost(txbuf *t, uint64_t off, uint64_t len)
{
	if (len == 0) {
		return;
	}
	if (t->rtx_end <= t->rtx_off) {
		t->rtx_off = off;
		t->rtx_end = off + len;
		return;
	}
	if (off < t->rtx_off) {
		t->rtx_off = off;
	}
	if (off + len > t->rtx_end) {
		t->rtx_end = off + len;
	}
}

static int tx_pending(const txbuf *t)
{
	return t->rtx_end > t->rtx_off || t->next < t->len ||
	       (t->fin && !t->fin_sent);
}

/* rx_add stores [off, off + len); returns 0, or SIM_ELIMIT when it would
 * exceed the buffer's limit. */
static int rx_add(rxbuf *r, uint64_t off, const uint8_t *p, size_t len)
{
	if (off + len <= r->delivered) {
		return 0;
	}
	if (off + len > r->max) {
		return SIM_ELIMIT;
	}
	size_t need = (size_t)(off + len);
	size_t cap = r->cap;
	int rc = buf_reserve(&r->data, &r->cap, need, r->max, 0);
	if (rc == 0) {
		size_t hcap = cap;
		rc = buf_reserve(&r->have, &hcap, r->cap, r->max, 1);
	}
	if (rc != 0) {
		return rc;
	}
	for (size_t i = 0; i < len; i++) {
		if (!r->have[off + i]) {
			r->data[off + i] = p[i];
			r->have[off + i] = 1;
		}
	}
	return 0;
}

/* rx_ready returns how many in-order bytes wait after r->delivered. */
static size_t rx_ready(const rxbuf *r)
{
	size_t n = 0;
	while (r->delivered + n < r->cap && r->have[r->delivered + n]) {
		n++;
	}
	return n;
}

/* copy_str is snprintf(dst, size, "%s", src) without the formatting
 * (this runs for every packet); returns the bytes copied. */
static size_t copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);
	if (n >= size) {
		n = size - 1;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

/* The sender's state for the packet rows: the levels it has write keys
 * for, and once it has 1-RTT keys their Key Phase (which its short-header
 * packets carry). */
static void hs_state(const quic *q, char *buf, size_t len)
{
	snprintf(buf, len, "keys=%s%s%s complete=%d confirmed=%d",
		 q->sp[SP_INITIAL].have_tx ? "I" : "",
		 q->sp[SP_HANDSHAKE].have_tx ? (q->sp[SP_INITIAL].have_tx
							 ? ",H"
							 : "H")
					     : "",
		 q->sp[SP_APP].have_tx
			 ? (q->sp[SP_INITIAL].have_tx ||
					    q->sp[SP_HANDSHAKE].have_tx
				    ? ",1"
				    : "1")
			 : "",
		 q->hs_complete, q->hs_confirmed);
	if (q->sp[SP_APP].have_tx) {
		size_t n = strlen(buf);
		snprintf(buf + n, len - n, " key_phase=%d",
			 (int)(q->ku.tx_gen & 1));
	}
}

/* --- RTT and timers (RFC 9002) ------------------------------------------- */

static sim_time pto_base(const quic *q, int sp)
{
	sim_time srtt = q->have_rtt ? q->srtt : INITIAL_RTT_NS;
	sim_time var = q->have_rtt ? q->rttvar : INITIAL_RTT_NS / 2;
	sim_time d = srtt + (4 * var > GRANULARITY_NS ? 4 * var
						      : GRANULARITY_NS);
	if (sp == SP_APP) {
		d += q->cfg.max_ack_delay_ns;
	}
	return d;
}

static sim_time pto_duration(const quic *q, int sp)
{
	unsigned shift = q->pto_count < 20 ? q->pto_count : 20;
	return pto_base(q, sp) << shift;
}

static void update_rtt(quic *q, sim_time sample, sim_time ack_delay)
{
	q->latest_rtt = sample;
	if (!q->have_rtt) {
		q->have_rtt = 1;
		q->min_rtt = sample;
		q->srtt = sample;
		q->rttvar = sample / 2;
		return;
	}
	if (sample < q->min_rtt) {
		q->min_rtt = sample;
	}
	if (ack_delay > q->cfg.max_ack_delay_ns) {
		ack_delay = q->cfg.max_ack_delay_ns;
	}
	sim_time adjusted = sample;
	if (sample >= q->min_rtt + ack_delay) {
		adjusted = sample - ack_delay;
	}
	sim_time diff = q->srtt > adjusted ? q->srtt - adjusted
					   : adjusted - q->srtt;
	q->rttvar = (3 * q->rttvar + diff) / 4;
	q->srtt = (7 * q->srtt + adjusted) / 8;
	q->info.srtt_ns = q->srtt;
}

static int has_eliciting_in_flight(const space *s)
{
	for (size_t i = 0; i < s->nsent; i++) {
		if (s->sent[i].ack_eliciting) {
			return 1;
		}
	}
	return 0;
}

/* anti_deadlock: a client whose address the server has not validated yet
 * (no ACK of a Handshake packet, handshake not confirmed). */
static int anti_deadlock(const quic *q)
{
	return !q->cfg.is_server && !q->peer_validated && !q->hs_confirmed &&
	       q->st == ST_HANDSHAKE;
}

/* The loss-detection deadline: the earliest time-threshold loss, else the
 * PTO of the earliest space with ack-eliciting packets in flight. */
static sim_time loss_deadline(const quic *q)
{
	sim_time at = SIM_TIME_MAX;
	for (int i = 0; i < NSPACE; i++) {
		if (q->sp[i].loss_ns != 0 && q->sp[i].loss_ns < at) {
			at = q->sp[i].loss_ns;
		}
	}
	if (at != SIM_TIME_MAX) {
		return at;
	}
	int in_flight = 0;
	for (int i = 0; i < NSPACE; i++) {
		const space *s = &q->sp[i];
		if (s->discarded || !has_eliciting_in_flight(s)) {
			continue;
		}
		in_flight = 1;
		if (i == SP_APP && !q->hs_complete) {
			continue; /* RFC 9002 6.2.1: no app PTO before then */
		}
		sim_time t = s->last_eliciting_ns + pto_duration(q, i);
		if (t < at) {
			at = t;
		}
	}
	if (anti_deadlock(q) && !in_flight) {
		/* RFC 9002 6.2.2.1: a client the server may be blocked on
		 * (anti-amplification) keeps a PTO armed anyway. */
		at = q->last_sent_ns + pto_duration(q, SP_HANDSHAKE);
	}
	return at;
}

/* --- packet number spaces ------------------------------------------------ */

static void discard_space(quic *q, int i)
{
	space *s = &q->sp[i];
	if (s->discarded) {
		return;
	}
	s->discarded = 1;
	if (s->have_tx || s->have_rx) {
		tls_row(q, "keys_discarded", space_names[i], "both", -1, NULL);
	}
	proto_qcrypto_keys_free(&s->tx);
	proto_qcrypto_keys_free(&s->rx);
	s->have_tx = s->have_rx = 0;
	s->nsent = 0;
	s->loss_ns = 0;
	s->ack_pending = 0;
	s->probe = 0;
	q->pto_count = 0;
}

/* Records packet number |pn| as received in |s|. */
static void note_received(space *s, uint64_t pn, sim_time now,
			  int eliciting)
{
	/* Insert into the descending range list, merging neighbours. */
	size_t i = 0;
	while (i < s->nrx && s->rx_ranges[i].smallest > pn + 1) {
		i++;
	}
	if (i < s->nrx && pn >= s->rx_ranges[i].smallest &&
	    pn <= s->rx_ranges[i].largest) {
		return; /* duplicate */
	}
	if (i < s->nrx && s->rx_ranges[i].smallest == pn + 1) {
		s->rx_ranges[i].smallest = pn;
		if (i + 1 < s->nrx && s->rx_ranges[i + 1].largest + 1 == pn) {
			s->rx_ranges[i].smallest =
				s->rx_ranges[i + 1].smallest;
			memmove(&s->rx_ranges[i + 1], &s->rx_ranges[i + 2],
				(s->nrx - i - 2) * sizeof(s->rx_ranges[0]));
			s->nrx--;
		}
	} else if (i < s->nrx && s->rx_ranges[i].largest + 1 == pn) {
		s->rx_ranges[i].largest = pn;
	} else {
		if (s->nrx == RX_RANGES_MAX) {
			s->nrx--; /* forget the oldest range */
		}
		memmove(&s->rx_ranges[i + 1], &s->rx_ranges[i],
			(s->nrx - i) * sizeof(s->rx_ranges[0]));
		s->rx_ranges[i].smallest = pn;
		s->rx_ranges[i].largest = pn;
		s->nrx++;
	}
	if ((int64_t)pn > s->largest_rx) {
		s->largest_rx = (int64_t)pn;
		s->largest_rx_ns = now;
	}
	if (eliciting) {
		s->ack_eliciting_unacked++;
		s->ack_pending = 1;
	}
}

/* --- TLS ----------------------------------------------------------------- */

static const int level_space[] = {SP_INITIAL, -1, SP_HANDSHAKE, SP_APP};

static int install_secret(quic *q, enum ssl_encryption_level_t level,
			  const SSL_CIPHER *cipher, const uint8_t *secret,
			  size_t len, int write)
{
	int i = level_space[level];
	if (i < 0) {
		return 1; /* 0-RTT: not used */
	}
	space *s = &q->sp[i];
	proto_qcrypto_keys *k = write ? &s->tx : &s->rx;
	proto_qcrypto_keys_free(k);
	int rc = proto_qcrypto_keys_init(
		k, (uint16_t)SSL_CIPHER_get_protocol_id(cipher), secret, len);
	if (rc != 0) {
		return 0;
	}
	if (write) {
		s->have_tx = 1;
	} else {
		s->have_rx = 1;
		q->keys_changed = 1;
	}
	tls_row(q, "keys", space_names[i], write ? "write" : "read", -1,
		SSL_CIPHER_standard_name(cipher));
	return 1;
}

static int set_read_secret(SSL *ssl, enum ssl_encryption_level_t level,
			   const SSL_CIPHER *cipher, const uint8_t *secret,
			   size_t len)
{
	return install_secret(SSL_get_app_data(ssl), level, cipher, secret,
			      len, 0);
}

static int set_write_secret(SSL *ssl, enum ssl_encryption_level_t level,
			    const SSL_CIPHER *cipher, const uint8_t *secret,
			    size_t len)
{
	return install_secret(SSL_get_app_data(ssl), level, cipher, secret,
			      len, 1);
}

static int add_handshake_data(SSL *ssl, enum ssl_encryption_level_t level,
			      const uint8_t *data, size_t len)
{
	quic *q = SSL_get_app_data(ssl);
	int i = level_space[level];
	if (i < 0) {
		return 0;
	}
	return tx_append(&q->sp[i].crypto_tx, data, len) == 0;
}

static int flush_flight(SSL *ssl)
{
	return 1;
}

static void start_close(quic *q, uint64_t error, int app,
			uint64_t frame_type, const char *why);

static int send_alert(SSL *ssl, enum ssl_encryption_level_t level,
		      uint8_t alert)
{
	quic *q = SSL_get_app_data(ssl);
	char d[64];
	snprintf(d, sizeof(d), "%s(%d) as CRYPTO_ERROR 0x%x",
		 proto_pki_alert_name(alert), alert, ERR_CRYPTO + alert);
	tls_row(q, "alert_sent", level_space[level] >= 0
					 ? space_names[level_space[level]]
					 : NULL,
		"write", ERR_CRYPTO + alert, d);
	start_close(q, ERR_CRYPTO + alert, 0, FT_CRYPTO, "tls alert");
	return 1;
}

/* The NSS key log lines (the handshake and application traffic secrets,
 * the exporter secret), so that `tlsim pcap` can hand Wireshark what it
 * needs to decrypt Handshake and 1-RTT packets. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	tls_row(SSL_get_app_data(ssl), "keylog", NULL, NULL, -1, line);
}

static const SSL_QUIC_METHOD quic_method = {
	set_read_secret, set_write_secret, add_handshake_data, flush_flight,
	send_alert,
};

static enum ssl_verify_result_t verify_cb(SSL *ssl, uint8_t *out_alert)
{
	quic *q = SSL_get_app_data(ssl);
	if (q->verify_state == 1) {
		return ssl_verify_retry;
	}
	if (q->verify_state == 2) {
		return ssl_verify_ok;
	}
	if (q->verify_state == 3) {
		*out_alert = (uint8_t)q->verify_alert;
		return ssl_verify_invalid;
	}
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	char msg[160] = "";
	int depth = -1;
	int err = proto_pki_verify(chain, q->roots,
				   proto_pki_cached_at(q->cached,
						       q->cfg.cached_intermediate,
						       q->cfg.aia_fetch_ns, q->now),
				   q->host,
				   (q->cfg.epoch_ns + q->now) / SIM_S, &depth,
				   msg, sizeof(msg));
	q->info.verify_error = err;
	q->verify_alert = err != X509_V_OK ? proto_pki_alert_for(err)
					   : SSL_AD_BAD_CERTIFICATE;
	int answer = SIM_EP_ANSWER_NONE;
	if (q->cfg.verify != PROTO_QUIC_VERIFY_SYNC) {
		sim_ep_event ev = {.name = "peer_certificate"};
		sim_ep_event_int(&ev, "x509_error", err);
		sim_ep_event_str(&ev, "x509_message", msg);
		sim_ep_event_int(&ev, "certs",
				 chain ? (int64_t)sk_X509_num(chain) : 0);
		answer = emit(q, &ev);
	}
	if (answer == SIM_EP_ANSWER_PENDING) {
		tls_row(q, "verify_pending", NULL, NULL, err, msg);
		if (q->cfg.verify == PROTO_QUIC_VERIFY_DEFERRED) {
			/* MsQuic: the handshake goes on; our flight waits. */
			q->verify_state = 1;
			q->flight_held = 1;
			return ssl_verify_ok;
		}
		q->verify_state = 1;
		return ssl_verify_retry;
	}
	int ok = err == X509_V_OK;
	if (answer == SIM_EP_ANSWER_ACCEPT || answer == SIM_EP_ANSWER_REJECT) {
		ok = answer == SIM_EP_ANSWER_ACCEPT;
	}
	q->verify_state = ok ? 2 : 3;
	tls_row(q, "verify_done", NULL, NULL, err, ok ? "ok" : msg);
	if (!ok) {
		*out_alert = (uint8_t)q->verify_alert;
		return ssl_verify_invalid;
	}
	return ssl_verify_ok;
}

static int alpn_select(SSL *ssl, const uint8_t **out, uint8_t *outlen,
		       const uint8_t *in, unsigned inlen, void *arg)
{
	for (unsigned i = 0; i < inlen;) {
		unsigned n = in[i];
		if (i + 1 + n <= inlen && n == sizeof(ALPN) - 2 &&
		    memcmp(in + i + 1, &ALPN[1], n) == 0) {
			*out = in + i + 1;
			*outlen = (uint8_t)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + n;
	}
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Transport parameters (RFC 9000 18.2) we send. */
static int set_transport_params(quic *q)
{
	uint8_t buf[256], *p = buf;
	struct {
		uint64_t id, v;
	} ints[] = {
		{0x01, (uint64_t)(q->cfg.idle_timeout_ns / SIM_MS)},
		{0x04, q->cfg.initial_max_data},
		{0x05, q->cfg.initial_max_stream_data},
		{0x06, q->cfg.initial_max_stream_data},
		{0x08, 4},
		{0x0b, (uint64_t)(q->cfg.max_ack_delay_ns / SIM_MS)},
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		p = proto_qwire_varint_put(p, ints[i].id);
		p = proto_qwire_varint_put(p, proto_qwire_varint_len(ints[i].v));
		p = proto_qwire_varint_put(p, ints[i].v);
	}
	if (q->cfg.is_server) {
		p = proto_qwire_varint_put(p, 0x00); /* original dcid */
		p = proto_qwire_varint_put(p, CID_LEN);
		memcpy(p, q->odcid, CID_LEN);
		p += CID_LEN;
	}
	p = proto_qwire_varint_put(p, 0x0f); /* initial_source_connection_id */
	p = proto_qwire_varint_put(p, CID_LEN);
	memcpy(p, q->scid, CID_LEN);
	p += CID_LEN;
	return SSL_set_quic_transport_params(q->ssl, buf, (size_t)(p - buf));
}

/* RFC 9001 4.1.2: the handshake is confirmed; Handshake keys go. */
static void confirm(quic *q, const char *why)
{
	q->hs_confirmed = 1;
	q->info.confirmed_ns = q->now;
	tls_row(q, "handshake_confirmed", NULL, NULL, -1, why);
	emit_simple(q, "handshake_confirmed");
	discard_space(q, SP_HANDSHAKE);
}

/* Checks the peer's transport parameters (RFC 9000 7.3, 18.2) and takes
 * what we use from them. Returns 0 or a transport error code. */
static uint64_t peer_params(quic *q)
{
	const uint8_t *p;
	size_t len;
	SSL_get_peer_quic_transport_params(q->ssl, &p, &len);
	const uint8_t *end = p + len;
	int have_iscid = 0, have_odcid = 0;
	while (p < end) {
		uint64_t id, n;
		if (proto_qwire_varint_get(&p, end, &id) != 0 ||
		    proto_qwire_varint_get(&p, end, &n) != 0 ||
		    n > (uint64_t)(end - p)) {
			return 0x08; /* TRANSPORT_PARAMETER_ERROR */
		}
		const uint8_t *v = p, *vend = p + n;
		p += n;
		uint64_t x;
		if (id == 0x01) { /* max_idle_timeout: the smaller one wins */
			if (proto_qwire_varint_get(&v, vend, &x) != 0) {
				return 0x08;
			}
			sim_time peer = (sim_time)x * SIM_MS;
			if (x > 0 && x < (uint64_t)1 << 40 &&
			    peer < q->cfg.idle_timeout_ns) {
				q->cfg.idle_timeout_ns = peer;
			}
		} else if (id == 0x0f) {
			have_iscid = 1;
			if (n != CID_LEN || memcmp(v, q->dcid, CID_LEN) != 0) {
				return 0x08;
			}
		} else if (id == 0x00) {
			have_odcid = 1;
			if (q->cfg.is_server || n != CID_LEN ||
			    memcmp(v, q->odcid, CID_LEN) != 0) {
				return 0x08;
			}
		}
	}
	if (!have_iscid || (!q->cfg.is_server && !have_odcid)) {
		return 0x08;
	}
	return 0;
}

static void on_handshake_complete(quic *q)
{
	uint64_t perr = peer_params(q);
	if (perr != 0) {
		tls_row(q, "transport_params", NULL, "read", (int64_t)perr,
			"invalid peer transport parameters");
		start_close(q, perr, 0, FT_CRYPTO, "transport parameters");
		return;
	}
	q->hs_complete = 1;
	q->keys_changed = 1; /* a server may now process 1-RTT packets */
	if (q->st == ST_HANDSHAKE) {
		q->st = ST_CONNECTED;
	}
	q->info.connected_ns = q->now;
	const SSL_CIPHER *c = SSL_get_current_cipher(q->ssl);
	char d[128];
	snprintf(d, sizeof(d), "TLSv1.3 %s %s",
		 c ? SSL_CIPHER_standard_name(c) : "",
		 SSL_get_curve_name(SSL_get_curve_id(q->ssl))
			 ? SSL_get_curve_name(SSL_get_curve_id(q->ssl))
			 : "-");
	tls_row(q, "handshake_done", NULL, NULL, -1, d);
	emit_simple(q, "connected");
	if (q->cfg.is_server) {
		/* RFC 9001 4.1.2: the server's handshake is confirmed when it
		 * completes; HANDSHAKE_DONE tells the client. */
		q->handshake_done_pending = 1;
		confirm(q, "handshake complete");
	}
}

/* Runs the TLS handshake as far as it goes. */
static void drive_tls(quic *q)
{
	if (q->st >= ST_CLOSING) {
		return;
	}
	if (q->hs_complete) {
		if (SSL_process_quic_post_handshake(q->ssl) != 1) {
			start_close(q, ERR_PROTOCOL_VIOLATION, 0, FT_CRYPTO,
				    "post-handshake message");
		}
		return;
	}
	int rc = SSL_do_handshake(q->ssl);
	if (rc == 1) {
		/* With deferred validation the handshake is complete for the
		 * TLS library, but not for the connection until the
		 * application says so. */
		if (!q->flight_held) {
			on_handshake_complete(q);
		}
		return;
	}
	int e = SSL_get_error(q->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_CERTIFICATE_VERIFY) {
		return;
	}
	if (q->st < ST_CLOSING) {
		/* A failure without an alert (send_alert closes otherwise). */
		uint32_t err = ERR_peek_last_error();
		const char *r = err ? ERR_reason_error_string(err) : NULL;
		tls_row(q, "handshake_failed", NULL, NULL, -1,
			r ? r : "unknown");
		start_close(q, ERR_CRYPTO + SSL_AD_INTERNAL_ERROR, 0,
			    FT_CRYPTO, "tls error");
	}
}

/* Feeds in-order CRYPTO bytes of space |i| to BoringSSL. */
static void feed_crypto(quic *q, int i)
{
	static const enum ssl_encryption_level_t levels[] = {
		ssl_encryption_initial, ssl_encryption_handshake,
		ssl_encryption_application};
	rxbuf *r = &q->sp[i].crypto_rx;
	size_t n = rx_ready(r);
	if (n == 0) {
		return;
	}
	if (!SSL_provide_quic_data(q->ssl, levels[i], r->data + r->delivered,
				   n)) {
		start_close(q, ERR_PROTOCOL_VIOLATION, 0, FT_CRYPTO,
			    "bad CRYPTO data");
		return;
	}
	r->delivered += n;
	drive_tls(q);
}

/* --- closing (RFC 9000 10.2) --------------------------------------------- */

static void finish(quic *q, const char *reason)
{
	if (q->st == ST_CLOSED) {
		return;
	}
	q->st = ST_CLOSED;
	q->info.closed_ns = q->now;
	snprintf(q->close_reason, sizeof(q->close_reason), "%s", reason);
	tls_row(q, "closed", NULL, NULL, -1, reason);
	sim_ep_event ev = {.name = "closed"};
	sim_ep_event_str(&ev, "reason", reason);
	emit(q, &ev);
}

/* Which spaces carry our CONNECTION_CLOSE. */
static void choose_close_spaces(quic *q)
{
	for (int i = 0; i < NSPACE; i++) {
		q->sp[i].send_close = 0;
	}
	if (q->hs_confirmed) {
		q->sp[SP_APP].send_close = q->sp[SP_APP].have_tx;
		return;
	}
	if (q->cfg.close_rule == PROTO_QUIC_CLOSE_WRITE_KEY) {
		/* The highest level we can write at, and only that. */
		for (int i = NSPACE - 1; i >= 0; i--) {
			if (q->sp[i].have_tx) {
				q->sp[i].send_close = 1;
				return;
			}
		}
		return;
	}
	/* RFC 9000 10.2.3: every level the peer might be able to read. */
	for (int i = 0; i < NSPACE; i++) {
		q->sp[i].send_close = q->sp[i].have_tx;
	}
}

static void start_close(quic *q, uint64_t error, int app,
			uint64_t frame_type, const char *why)
{
	if (q->st >= ST_CLOSING) {
		return;
	}
	q->close_error = error;
	q->close_app = app;
	q->close_frame_type = frame_type;
	q->st = ST_CLOSING;
	q->info.close_sent_ns = q->now;
	snprintf(q->close_reason, sizeof(q->close_reason), "%s", why);
	choose_close_spaces(q);
	char d[96];
	snprintf(d, sizeof(d), "%s error 0x%llx (%s)",
		 app ? "application" : "transport", (unsigned long long)error,
		 why);
	tls_row(q, "close_sent", NULL, "write", (int64_t)error, d);
	/* RFC 9000 10.2: the closing state lasts three PTOs. */
	q->close_deadline = q->now + 3 * pto_base(q, SP_APP);
}

static void enter_draining(quic *q, const proto_qwire_frame *f)
{
	int app = f->type == FT_CLOSE_APP;
	q->info.close_received_ns = q->now;
	q->info.close_error = f->u.close.error;
	q->info.close_app = app;
	q->info.close_frame = f->type;
	char d[96];
	snprintf(d, sizeof(d), "frame 0x%02llx error 0x%llx",
		 (unsigned long long)f->type,
		 (unsigned long long)f->u.close.error);
	tls_row(q, "close_received", NULL, "read", (int64_t)f->u.close.error,
		d);
	int was_closing = q->st == ST_CLOSING;
	q->st = ST_DRAINING;
	if (!was_closing) {
		q->close_deadline = q->now + 3 * pto_base(q, SP_APP);
	}
	sim_ep_event ev = {.name = "shutdown_by_peer"};
	sim_ep_event_int(&ev, "error", (int64_t)f->u.close.error);
	sim_ep_event_int(&ev, "app", app);
	sim_ep_event_int(&ev, "frame", (int64_t)f->type);
	emit(q, &ev);
}

/* --- key update (RFC 9001 6) -------------------------------------------- */

static int phase_of(uint64_t gen)
{
	return (int)(gen & 1);
}

/* replace_keys makes |dst| a copy of |src| and frees |src|; an
 * initialised proto_qcrypto_keys cannot be moved byte for byte. */
static int replace_keys(proto_qcrypto_keys *dst, proto_qcrypto_keys *src)
{
	proto_qcrypto_keys_free(dst);
	int rc = proto_qcrypto_keys_copy(dst, src);
	proto_qcrypto_keys_free(src);
	return rc;
}

/* Why this endpoint may not initiate a key update now (RFC 9001 6.1), or
 * NULL. */
static const char *key_update_refusal(const quic *q)
{
	if (q->st >= ST_CLOSING) {
		return "connection closed";
	}
	if (!q->hs_confirmed || !q->sp[SP_APP].have_tx) {
		return "handshake not confirmed";
	}
	/* The peer must have the current keys first: it acknowledged a packet
	 * sent with them (and so answered our last update). */
	if (q->ku.tx_gen > 0 &&
	    (q->sp[SP_APP].largest_acked < (int64_t)q->ku.tx_first_pn ||
	     q->ku.rx_gen != q->ku.tx_gen)) {
		return "previous key update not acknowledged";
	}
	return NULL;
}

/* The 1-RTT write keys move on one phase: we initiate (|initiated|) or
 * answer the peer's update. */
static void update_write_keys(quic *q, int initiated)
{
	space *s = &q->sp[SP_APP];
	proto_qcrypto_keys next;
	if (proto_qcrypto_keys_next(&s->tx, &next) != 0 ||
	    replace_keys(&s->tx, &next) != 0) {
		sim_world_fail(q->env->w, "%s: cannot update the 1-RTT keys",
			       q->env->name);
		return;
	}
	q->ku.tx_gen++;
	q->ku.tx_first_pn = s->next_pn;
	q->ku.tx_packets = 0;
	q->info.key_updates++;
	q->info.key_phase = phase_of(q->ku.tx_gen);
	char d[96];
	snprintf(d, sizeof(d), "key phase %d (update %llu), %s",
		 q->info.key_phase, (unsigned long long)q->ku.tx_gen,
		 initiated ? "initiated" : "answering the peer");
	tls_row(q, "keys_updated", space_names[SP_APP], "write",
		q->info.key_phase, d);
	sim_ep_event ev = {.name = "key_updated"};
	sim_ep_event_int(&ev, "phase", q->info.key_phase);
	sim_ep_event_int(&ev, "initiated", initiated);
	emit(q, &ev);
}

/* Initiates a key update (the caller checked key_update_refusal). */
static void key_update_start(quic *q, const char *why)
{
	q->info.key_updates_initiated++;
	tls_row(q, "key_update", space_names[SP_APP], "write",
		phase_of(q->ku.tx_gen + 1), why);
	update_write_keys(q, 1);
}

static void discard_prev_keys(quic *q, const char *why)
{
	if (!q->ku.have_rx_prev) {
		return;
	}
	proto_qcrypto_keys_free(&q->ku.rx_prev);
	q->ku.have_rx_prev = 0;
	q->ku.prev_until = 0;
	char d[96];
	snprintf(d, sizeof(d), "key phase %d (update %llu), %s",
		 phase_of(q->ku.rx_gen - 1),
		 (unsigned long long)(q->ku.rx_gen - 1), why);
	tls_row(q, "keys_discarded", space_names[SP_APP], "read",
		phase_of(q->ku.rx_gen - 1), d);
}

/* read_keys picks the keys for 1-RTT packet |pkt| by its Key Phase bit
 * and packet number (RFC 9001 6.3, 6.5): the current read keys, the
 * previous phase's, or the next phase's, derived into |next| (which the
 * caller then owns). Sets |*which|; returns NULL for a packet nothing can
 * decrypt (an unreadable header, or an old phase whose keys are gone). */
static const proto_qcrypto_keys *read_keys(quic *q, const uint8_t *pkt,
					   const proto_qwire_hdr *h,
					   proto_qcrypto_keys *next,
					   enum proto_qcrypto_phase_keys *which)
{
	space *s = &q->sp[SP_APP];
	uint8_t first;
	uint64_t pn;
	if (proto_qcrypto_peek_header(&s->rx, pkt, h->packet_len, h->pn_offset,
				      s->largest_rx, &first, &pn) != 0) {
		return NULL;
	}
	*which = proto_qcrypto_phase_select(phase_of(q->ku.rx_gen),
					    first & 0x04, pn,
					    q->ku.rx_first_pn,
					    q->ku.have_rx_prev);
	switch (*which) {
	case PROTO_QCRYPTO_PHASE_CURRENT:
		return &s->rx;
	case PROTO_QCRYPTO_PHASE_PREVIOUS:
		return &q->ku.rx_prev;
	case PROTO_QCRYPTO_PHASE_NEXT:
		return proto_qcrypto_keys_next(&s->rx, next) == 0 ? next : NULL;
	default:
		return NULL;
	}
}

/* A packet decrypted with the next read keys |next| (consumed): the peer
 * updated its keys, to start an update or to answer ours. The next keys
 * become current, the current ones previous for 3 PTO, and our write
 * keys follow if the peer started it (RFC 9001 6.2: before we acknowledge
 * the packet). */
static void promote_read_keys(quic *q, proto_qcrypto_keys *next, uint64_t pn)
{
	space *s = &q->sp[SP_APP];
	discard_prev_keys(q, "replaced by a newer phase");
	if (proto_qcrypto_keys_copy(&q->ku.rx_prev, &s->rx) != 0 ||
	    replace_keys(&s->rx, next) != 0) {
		proto_qcrypto_keys_free(next);
		sim_world_fail(q->env->w, "%s: cannot update the 1-RTT keys",
			       q->env->name);
		return;
	}
	q->ku.have_rx_prev = 1;
	q->ku.rx_gen++;
	q->ku.rx_first_pn = pn;
	q->ku.prev_until = q->now + 3 * pto_base(q, SP_APP);
	char d[96];
	snprintf(d, sizeof(d), "key phase %d (update %llu), from packet %llu",
		 phase_of(q->ku.rx_gen), (unsigned long long)q->ku.rx_gen,
		 (unsigned long long)pn);
	tls_row(q, "keys_updated", space_names[SP_APP], "read",
		phase_of(q->ku.rx_gen), d);
	if (q->ku.rx_gen > q->ku.tx_gen) {
		update_write_keys(q, 0);
	}
}

/* --- receiving ----------------------------------------------------------- */

static void detect_lost(quic *q, int i);

static void on_ack(quic *q, int i, const proto_qwire_frame *f)
{
	space *s = &q->sp[i];
	if ((int64_t)f->u.ack.largest >= (int64_t)s->next_pn) {
		start_close(q, ERR_PROTOCOL_VIOLATION, 0, FT_ACK,
			    "ACK of an unsent packet");
		return;
	}
	if ((int64_t)f->u.ack.largest > s->largest_acked) {
		s->largest_acked = (int64_t)f->u.ack.largest;
	}
	int newly = 0, rtt_sample = 0;
	sim_time sample = 0;
	size_t keep = 0;
	for (size_t k = 0; k < s->nsent; k++) {
		sent_pkt *p = &s->sent[k];
		int acked = 0;
		for (size_t r = 0; r < f->u.ack.nranges; r++) {
			if (p->pn >= f->u.ack.ranges[r].smallest &&
			    p->pn <= f->u.ack.ranges[r].largest) {
				acked = 1;
				break;
			}
		}
		if (!acked) {
			s->sent[keep++] = *p;
			continue;
		}
		newly = 1;
		if (p->pn == f->u.ack.largest && p->ack_eliciting) {
			rtt_sample = 1;
			sample = q->now - p->sent_ns;
		}
		if (i == SP_APP && p->stream_fin) {
			q->stream_tx.fin_acked = 1;
		}
	}
	s->nsent = keep;
	if (!newly) {
		return;
	}
	if (i == SP_HANDSHAKE) {
		q->peer_validated = 1;
	}
	if (i == SP_APP && !q->cfg.is_server && q->hs_complete &&
	    !q->hs_confirmed) {
		/* RFC 9001 4.1.2: an acknowledged 1-RTT packet confirms the
		 * handshake for the client too. */
		confirm(q, "1-RTT packet acknowledged");
	}
	if (rtt_sample) {
		sim_time delay = i == SP_APP ? (sim_time)f->u.ack.delay *
						       8 * SIM_US
					     : 0; /* exponent 3 */
		update_rtt(q, sample, delay);
	}
	q->pto_count = 0;
	detect_lost(q, i);
}

static void on_stream(quic *q, const proto_qwire_frame *f)
{
	rxbuf *r = &q->stream_rx;
	if (f->u.stream.id != 0) {
		return; /* one stream only: ignore others */
	}
	if (rx_add(r, f->u.stream.offset, f->u.stream.data, f->u.stream.len) !=
	    0) {
		start_close(q, 0x03 /* FLOW_CONTROL_ERROR */, 0, FT_STREAM,
			    "stream data beyond the limit");
		return;
	}
	if (f->u.stream.fin) {
		r->fin_at = f->u.stream.offset + f->u.stream.len;
	}
	size_t n = rx_ready(r);
	int fin = r->fin_at != UINT64_MAX && r->delivered + n == r->fin_at;
	if (n == 0 && !(fin && !q->info.stream_fin_received)) {
		return;
	}
	const uint8_t *p = r->data ? r->data + r->delivered : NULL;
	r->delivered += n;
	q->info.stream_bytes_received = r->delivered;
	if (fin) {
		q->info.stream_fin_received = 1;
	}
	sim_ep_event ev = {.name = "data"};
	sim_ep_event_bytes(&ev, "data", p, n);
	sim_ep_event_int(&ev, "len", (int64_t)n);
	sim_ep_event_int(&ev, "fin", fin);
	emit(q, &ev);
}

/* Processes the decrypted payload of a packet in space |i|. */
static void on_payload(quic *q, int i, int ptype, const uint8_t *p,
		       size_t len)
{
	const uint8_t *end = p + len;
	while (p < end && q->st != ST_CLOSED) {
		proto_qwire_frame f;
		uint64_t err = proto_qwire_frame_parse(&p, end, &f);
		if (err != 0) {
			start_close(q, err, 0, 0, "malformed frame");
			return;
		}
		if (!proto_qwire_frame_allowed(f.type, ptype)) {
			start_close(q, ERR_PROTOCOL_VIOLATION, 0, f.type,
				    "frame not allowed here");
			return;
		}
		if (q->st == ST_DRAINING) {
			continue;
		}
		if (f.type == FT_CLOSE || f.type == FT_CLOSE_APP) {
			enter_draining(q, &f);
			continue;
		}
		if (q->st == ST_CLOSING) {
			continue;
		}
		if (f.type == FT_ACK || f.type == FT_ACK + 1) {
			on_ack(q, i, &f);
		} else if (f.type == FT_CRYPTO) {
			if (rx_add(&q->sp[i].crypto_rx, f.u.crypto.offset,
				   f.u.crypto.data, f.u.crypto.len) != 0) {
				start_close(q, 0x0d /* CRYPTO_BUFFER_EXCEEDED */,
					    0, FT_CRYPTO, "too much CRYPTO");
				return;
			}
			feed_crypto(q, i);
		} else if (f.type >= FT_STREAM && f.type <= FT_STREAM + 7) {
			on_stream(q, &f);
		} else if (f.type == FT_HANDSHAKE_DONE) {
			if (q->cfg.is_server) {
				start_close(q, ERR_PROTOCOL_VIOLATION, 0, f.type,
					    "HANDSHAKE_DONE from a client");
				return;
			}
			if (!q->hs_confirmed) {
				confirm(q, "HANDSHAKE_DONE");
			}
		}
	}
}

static int eliciting(const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;
	while (p < end) {
		proto_qwire_frame f;
		if (proto_qwire_frame_parse(&p, end, &f) != 0) {
			return 0;
		}
		if (f.type != FT_PADDING && f.type != FT_ACK &&
		    f.type != FT_ACK + 1 && f.type != FT_CLOSE &&
		    f.type != FT_CLOSE_APP) {
			return 1;
		}
	}
	return 0;
}

static int packet_space(int type)
{
	switch (type) {
	case PROTO_QWIRE_INITIAL:
		return SP_INITIAL;
	case PROTO_QWIRE_HANDSHAKE:
		return SP_HANDSHAKE;
	case PROTO_QWIRE_1RTT:
		return SP_APP;
	default:
		return -1;
	}
}

/* Keeps a copy of the rest of a datagram for when keys arrive. */
static void buffer_early(quic *q, const uint8_t *p, size_t len)
{
	q->info.packets_buffered++;
	if (q->cfg.early_packet == PROTO_QUIC_EARLY_DROP ||
	    q->nearly == EARLY_MAX) {
		q->info.packets_dropped++;
		return;
	}
	uint8_t *c = malloc(len);
	if (c == NULL) {
		return;
	}
	memcpy(c, p, len);
	q->early[q->nearly].data = c;
	q->early[q->nearly].len = len;
	q->nearly++;
}

static int server_initial_keys(quic *q, const proto_qwire_hdr *h);
static void server_forget_initial(quic *q);
static int server_accept_initial(quic *q, const proto_qwire_hdr *h);

/* Processes one datagram (modified in place: decryption). */
static void on_datagram(quic *q, uint8_t *d, size_t len)
{
	size_t off = 0;
	while (off < len && q->st != ST_CLOSED) {
		proto_qwire_hdr h;
		if (proto_qwire_parse_header(d + off, len - off, CID_LEN, &h) !=
		    0) {
			q->info.packets_dropped++;
			return; /* the rest of the datagram is unreadable */
		}
		uint8_t *pkt = d + off;
		off += h.packet_len;
		int i = packet_space(h.type);
		/* Ours, or (server) the client's first Initials, still
		 * addressed to the connection ID it made up. */
		int ours = h.dcid_len == CID_LEN &&
			   memcmp(h.dcid, q->scid, CID_LEN) == 0;
		int first = q->cfg.is_server && i == SP_INITIAL &&
			    (!q->have_peer_cid ||
			     (h.dcid_len == CID_LEN &&
			      memcmp(h.dcid, q->odcid, CID_LEN) == 0));
		if (i < 0 || !(ours || first)) {
			q->info.packets_dropped++;
			continue;
		}
		/* A server's first Initial sets up the connection only once
		 * it decrypts: until then its connection IDs are unproven (a
		 * damaged one would bind the connection to garbage). */
		int accepting = q->cfg.is_server && !q->have_peer_cid;
		if (accepting &&
		    (i != SP_INITIAL || server_initial_keys(q, &h) != 0)) {
			q->info.packets_dropped++;
			continue;
		}
		space *s = &q->sp[i];
		if (s->discarded) {
			q->info.packets_dropped++;
			continue;
		}
		/* RFC 9001 5.7: no keys yet, or 1-RTT at a server before its
		 * handshake completes: buffer or drop. */
		if (!s->have_rx ||
		    (i == SP_APP && q->cfg.is_server && !q->hs_complete)) {
			buffer_early(q, pkt, h.packet_len);
			continue;
		}
		uint64_t pn;
		size_t hdr_len, plen;
		/* 1-RTT: the Key Phase bit says which phase's keys. */
		enum proto_qcrypto_phase_keys which =
			PROTO_QCRYPTO_PHASE_CURRENT;
		proto_qcrypto_keys next;
		const proto_qcrypto_keys *k =
			i == SP_APP ? read_keys(q, pkt, &h, &next, &which)
				    : &s->rx;
		if (k == NULL ||
		    proto_qcrypto_unprotect(k, pkt, h.packet_len, h.pn_offset,
					    s->largest_rx, &pn, &hdr_len,
					    &plen) != 0) {
			/* RFC 9001 5.5, 6.3: a packet that fails to decrypt,
			 * with whichever phase's keys, is dropped. */
			if (k == &next) {
				proto_qcrypto_keys_free(&next);
			}
			if (accepting) {
				server_forget_initial(q);
			}
			q->info.packets_dropped++;
			continue;
		}
		if (which == PROTO_QCRYPTO_PHASE_NEXT) {
			promote_read_keys(q, &next, pn);
		} else if (which == PROTO_QCRYPTO_PHASE_PREVIOUS) {
			q->info.old_phase_packets++;
		} else if (i == SP_APP && pn < q->ku.rx_first_pn) {
			q->ku.rx_first_pn = pn;
		}
		if (accepting && server_accept_initial(q, &h) != 0) {
			server_forget_initial(q);
			q->info.packets_dropped++;
			continue;
		}
		q->info.packets_received++;
		if (!q->cfg.is_server && !q->have_peer_cid) {
			memcpy(q->dcid, h.scid, CID_LEN);
			q->have_peer_cid = 1;
		}
		if (q->cfg.is_server && i == SP_HANDSHAKE) {
			/* RFC 9000 8.1: a Handshake packet validates the
			 * client's address; RFC 9001 4.9.1: the server stops
			 * using Initial keys. */
			q->address_validated = 1;
			discard_space(q, SP_INITIAL);
		}
		q->idle_deadline = q->now + q->cfg.idle_timeout_ns;
		if (q->st == ST_CLOSING) {
			/* Answer with our close again (RFC 9000 10.2.1). */
			choose_close_spaces(q);
		}
		int el = eliciting(pkt + hdr_len, plen);
		note_received(s, pn, q->now, el);
		on_payload(q, i, h.type, pkt + hdr_len, plen);
	}
}

/* Retries the buffered datagrams while new keys keep making some of them
 * readable (RFC 9001 5.7). Called at the end of each operation, never from
 * inside packet processing. */
static void process_buffered(quic *q)
{
	while (q->keys_changed && q->nearly > 0 && q->st != ST_CLOSED) {
		q->keys_changed = 0;
		int n = q->nearly;
		early_dgram saved[EARLY_MAX];
		memcpy(saved, q->early, sizeof(saved));
		q->nearly = 0;
		for (int k = 0; k < n; k++) {
			on_datagram(q, saved[k].data, saved[k].len);
			free(saved[k].data);
		}
	}
	q->keys_changed = 0;
}

/* server_initial_keys derives the Initial keys from the client's first
 * Initial, tentatively: nothing else of the connection is set up until
 * the packet decrypts with them (server_accept_initial), and
 * server_forget_initial drops them if it does not. */
static int server_initial_keys(quic *q, const proto_qwire_hdr *h)
{
	uint8_t cs[32], ss[32];
	if (h->dcid_len < 8 || h->scid_len != CID_LEN) {
		return -1; /* RFC 9000 7.2; we use CID_LEN-byte CIDs */
	}
	if (proto_qcrypto_initial_secrets(h->dcid, h->dcid_len, cs, ss) != 0 ||
	    proto_qcrypto_keys_init(&q->sp[SP_INITIAL].rx, 0x1301, cs, 32) !=
		    0 ||
	    proto_qcrypto_keys_init(&q->sp[SP_INITIAL].tx, 0x1301, ss, 32) !=
		    0) {
		server_forget_initial(q);
		return -1;
	}
	q->sp[SP_INITIAL].have_rx = q->sp[SP_INITIAL].have_tx = 1;
	return 0;
}

static void server_forget_initial(quic *q)
{
	proto_qcrypto_keys_free(&q->sp[SP_INITIAL].rx);
	proto_qcrypto_keys_free(&q->sp[SP_INITIAL].tx);
	q->sp[SP_INITIAL].have_rx = q->sp[SP_INITIAL].have_tx = 0;
}

/* server_accept_initial binds the connection to the client's first
 * Initial, which has just decrypted with server_initial_keys's keys. */
static int server_accept_initial(quic *q, const proto_qwire_hdr *h)
{
	memcpy(q->odcid, h->dcid, CID_LEN);
	memcpy(q->dcid, h->scid, CID_LEN);
	tls_row(q, "keys", "initial", "read", -1, "TLS_AES_128_GCM_SHA256");
	tls_row(q, "keys", "initial", "write", -1, "TLS_AES_128_GCM_SHA256");
	q->have_peer_cid = 1;
	/* The server's scid is ours already; the client's dcid was only
	 * for the Initial keys. */
	if (!set_transport_params(q)) {
		q->have_peer_cid = 0;
		return -1;
	}
	q->st = ST_HANDSHAKE;
	q->start_ns = q->now;
	q->handshake_deadline = q->now + q->cfg.handshake_timeout_ns;
	return 0;
}

/* --- loss detection ------------------------------------------------------ */

static void declare_lost(quic *q, int i, const sent_pkt *p)
{
	space *s = &q->sp[i];
	q->info.packets_lost++;
	if (p->crypto_len > 0) {
		tx_lost(&s->crypto_tx, p->crypto_off, p->crypto_len);
	}
	if (p->stream_len > 0 || p->stream_fin) {
		tx_lost(&q->stream_tx, p->stream_off, p->stream_len);
		if (p->stream_fin && !q->stream_tx.fin_acked) {
			q->stream_tx.fin_sent = 0;
		}
	}
	if (p->handshake_done) {
		q->handshake_done_pending = 1;
	}
}

static void detect_lost(quic *q, int i)
{
	space *s = &q->sp[i];
	s->loss_ns = 0;
	if (s->largest_acked < 0) {
		return;
	}
	sim_time rtt = q->have_rtt ? (q->latest_rtt > q->srtt ? q->latest_rtt
							      : q->srtt)
				   : INITIAL_RTT_NS;
	sim_time delay = rtt * 9 / 8;
	if (delay < GRANULARITY_NS) {
		delay = GRANULARITY_NS;
	}
	size_t keep = 0;
	for (size_t k = 0; k < s->nsent; k++) {
		sent_pkt *p = &s->sent[k];
		if ((int64_t)p->pn > s->largest_acked) {
			s->sent[keep++] = *p;
			continue;
		}
		if (p->sent_ns <= q->now - delay ||
		    s->largest_acked >= (int64_t)p->pn + PACKET_THRESHOLD) {
			declare_lost(q, i, p);
			continue;
		}
		sim_time t = p->sent_ns + delay;
		if (s->loss_ns == 0 || t < s->loss_ns) {
			s->loss_ns = t;
		}
		s->sent[keep++] = *p;
	}
	s->nsent = keep;
}

/* The loss-detection timer fired (RFC 9002 6.2). */
static void on_loss_timer(quic *q)
{
	for (int i = 0; i < NSPACE; i++) {
		if (q->sp[i].loss_ns != 0 && q->sp[i].loss_ns <= q->now) {
			detect_lost(q, i);
			return;
		}
	}
	/* PTO: probe the earliest space with data in flight. */
	int probe = -1;
	sim_time at = SIM_TIME_MAX;
	for (int i = 0; i < NSPACE; i++) {
		space *s = &q->sp[i];
		if (s->discarded || !has_eliciting_in_flight(s) ||
		    (i == SP_APP && !q->hs_complete)) {
			continue;
		}
		sim_time t = s->last_eliciting_ns + pto_duration(q, i);
		if (t < at) {
			at = t;
			probe = i;
		}
	}
	if (probe < 0 && anti_deadlock(q) &&
	    q->last_sent_ns + pto_duration(q, SP_HANDSHAKE) <= q->now) {
		q->pto_count++;
		int i = q->sp[SP_HANDSHAKE].have_tx ? SP_HANDSHAKE : SP_INITIAL;
		q->sp[i].probe = 1;
		return;
	}
	if (probe < 0 || at > q->now) {
		return;
	}
	q->pto_count++;
	/* Probe with the unacknowledged data, in the space that timed out
	 * and, before the handshake is confirmed, in every other space with
	 * data in flight too: the peer may lack the keys for the later ones
	 * (RFC 9002 6.2.4 suggests coalescing such probes). */
	for (int i = 0; i < NSPACE; i++) {
		space *s = &q->sp[i];
		if (i != probe && (q->hs_confirmed || s->discarded ||
				   !has_eliciting_in_flight(s) ||
				   (i == SP_APP && !q->hs_complete))) {
			continue;
		}
		for (size_t k = 0; k < s->nsent; k++) {
			if (s->sent[k].ack_eliciting) {
				declare_lost(q, i, &s->sent[k]);
			}
		}
		s->nsent = 0;
		s->probe = 1;
	}
}

/* --- sending ------------------------------------------------------------- */

#define LONG_OVERHEAD (1 + 4 + 1 + CID_LEN + 1 + CID_LEN + 1 + 2 + 4)
#define SHORT_OVERHEAD (1 + CID_LEN + 4)

typedef struct plan {
	int space;
	uint8_t payload[DATAGRAM_MAX];
	size_t len;
	size_t pn_len;
	uint64_t pn;
	sent_pkt rec;
} plan;

static int ack_wanted(const quic *q, int i)
{
	const space *s = &q->sp[i];
	if (!s->ack_pending) {
		return 0;
	}
	if (i != SP_APP) {
		return 1;
	}
	return s->ack_eliciting_unacked >= 2 ||
	       q->now >= s->largest_rx_ns + q->cfg.max_ack_delay_ns;
}

static int crypto_held(const quic *q, int i)
{
	return q->flight_held && i == SP_HANDSHAKE;
}

static int stream_ok(const quic *q)
{
	return q->hs_complete && !q->flight_held && q->st == ST_CONNECTED;
}

/* Whether space |i| has something to send now. */
static int wants_send(const quic *q, int i)
{
	const space *s = &q->sp[i];
	if (!s->have_tx || s->discarded) {
		return 0;
	}
	if (q->st == ST_CLOSING) {
		return s->send_close;
	}
	if (q->st != ST_HANDSHAKE && q->st != ST_CONNECTED) {
		return 0;
	}
	if (ack_wanted(q, i) || s->probe) {
		return 1;
	}
	if (tx_pending(&s->crypto_tx) && !crypto_held(q, i)) {
		return 1;
	}
	if (i == SP_APP && (q->handshake_done_pending ||
			    (stream_ok(q) && tx_pending(&q->stream_tx)))) {
		return 1;
	}
	return 0;
}

static size_t put_frame(uint8_t *buf, size_t cap, const proto_qwire_frame *f)
{
	return proto_qwire_frame_write(buf, cap, f);
}

/* Takes up to |room| bytes of |t| for a CRYPTO or STREAM frame: lost bytes
 * first, then new ones. Sets the offset and length. */
static void take(txbuf *t, size_t room, uint64_t *off, size_t *len)
{
	if (t->rtx_end > t->rtx_off) {
		*off = t->rtx_off;
		uint64_t n = t->rtx_end - t->rtx_off;
		*len = (size_t)(n < room ? n : room);
		t->rtx_off += *len;
		return;
	}
	*off = t->next;
	uint64_t n = t->len - t->next;
	*len = (size_t)(n < room ? n : room);
	t->next += *len;
}

/* Fills |pl| with the frames for space |i| within |room| payload bytes. */
static void plan_packet(quic *q, int i, plan *pl, size_t room)
{
	space *s = &q->sp[i];
	uint8_t *b = pl->payload;
	size_t n = 0;
	memset(&pl->rec, 0, sizeof(pl->rec));
	pl->space = i;
	pl->pn = s->next_pn;
	pl->pn_len = proto_qwire_pn_len(pl->pn, s->largest_acked);
	if (room > sizeof(pl->payload)) {
		room = sizeof(pl->payload);
	}
	proto_qwire_frame f;
	if (q->st == ST_CLOSING) {
		memset(&f, 0, sizeof(f));
		int convert = q->close_app && i != SP_APP;
		f.type = q->close_app && !convert ? FT_CLOSE_APP : FT_CLOSE;
		f.u.close.error = convert ? q->cfg.app_error_in_initial
					  : q->close_error;
		f.u.close.frame_type = convert ? 0 : q->close_frame_type;
		n += put_frame(b + n, room - n, &f);
		s->send_close = 0;
		pl->len = n;
		return;
	}
	if (s->ack_pending) {
		memset(&f, 0, sizeof(f));
		f.type = FT_ACK;
		f.u.ack.largest = (uint64_t)s->largest_rx;
		f.u.ack.delay = i == SP_APP ? (uint64_t)((q->now -
							   s->largest_rx_ns) /
							  (8 * SIM_US))
					    : 0;
		f.u.ack.nranges = s->nrx;
		memcpy(f.u.ack.ranges, s->rx_ranges,
		       s->nrx * sizeof(s->rx_ranges[0]));
		size_t w = put_frame(b + n, room - n, &f);
		if (w > 0) {
			n += w;
			s->ack_pending = 0;
			s->ack_eliciting_unacked = 0;
		}
	}
	if (i == SP_APP && q->handshake_done_pending && room - n > 1) {
		b[n++] = FT_HANDSHAKE_DONE;
		q->handshake_done_pending = 0;
		pl->rec.handshake_done = 1;
		pl->rec.ack_eliciting = 1;
	}
	if (tx_pending(&s->crypto_tx) && !crypto_held(q, i) &&
	    room - n > 16) {
		size_t len;
		uint64_t off;
		take(&s->crypto_tx, room - n - 16, &off, &len);
		memset(&f, 0, sizeof(f));
		f.type = FT_CRYPTO;
		f.u.crypto.offset = off;
		f.u.crypto.data = s->crypto_tx.data + off;
		f.u.crypto.len = len;
		n += put_frame(b + n, room - n, &f);
		pl->rec.crypto_off = off;
		pl->rec.crypto_len = len;
		pl->rec.ack_eliciting = 1;
	}
	if (i == SP_APP && stream_ok(q) && tx_pending(&q->stream_tx) &&
	    room - n > 24) {
		txbuf *t = &q->stream_tx;
		size_t len;
		uint64_t off;
		take(t, room - n - 24, &off, &len);
		memset(&f, 0, sizeof(f));
		f.type = FT_STREAM;
		f.u.stream.id = 0;
		f.u.stream.offset = off;
		f.u.stream.data = t->data ? t->data + off : NULL;
		f.u.stream.len = len;
		f.u.stream.fin = t->fin && off + len == t->len &&
				 t->rtx_end <= t->rtx_off;
		n += put_frame(b + n, room - n, &f);
		if (f.u.stream.fin) {
			t->fin_sent = 1;
		}
		pl->rec.stream_off = off;
		pl->rec.stream_len = len;
		pl->rec.stream_fin = f.u.stream.fin;
		pl->rec.ack_eliciting = 1;
	}
	if (s->probe && !pl->rec.ack_eliciting && room - n > 1) {
		b[n++] = FT_PING;
		pl->rec.ack_eliciting = 1;
	}
	s->probe = 0;
	pl->len = n;
}

/* Writes the protected packet for |pl| at |out|; returns its length. */
static size_t seal(quic *q, plan *pl, uint8_t *out, size_t cap)
{
	space *s = &q->sp[pl->space];
	/* RFC 9001 5.4.2: at least 4 bytes of pn + payload for the sample. */
	while (pl->pn_len + pl->len < 4) {
		pl->payload[pl->len++] = FT_PADDING;
	}
	size_t hdr;
	if (pl->space == SP_APP) {
		hdr = proto_qwire_write_short_header(out, cap, q->dcid, CID_LEN,
						     (int)(q->ku.tx_gen & 1),
						     pl->pn, pl->pn_len);
	} else {
		hdr = proto_qwire_write_long_header(
			out, cap, space_ptype[pl->space], PROTO_QWIRE_VERSION_1,
			q->dcid, CID_LEN, q->scid, CID_LEN, NULL, 0, pl->pn,
			pl->pn_len, pl->len + PROTO_QCRYPTO_TAG_LEN);
	}
	if (hdr == 0 || hdr + pl->len + PROTO_QCRYPTO_TAG_LEN > cap) {
		return 0;
	}
	memcpy(out + hdr, pl->payload, pl->len);
	size_t total;
	if (proto_qcrypto_protect(&s->tx, pl->pn, out, hdr, pl->pn_len,
				  pl->len, cap, &total) != 0) {
		return 0;
	}
	return total;
}

static void record_sent(quic *q, plan *pl, size_t size)
{
	space *s = &q->sp[pl->space];
	s->next_pn++;
	q->info.packets_sent++;
	if (pl->space == SP_APP) {
		q->ku.tx_packets++;
	}
	if (!pl->rec.ack_eliciting) {
		return;
	}
	if (s->nsent == SENT_MAX) {
		sim_world_fail(q->env->w, "%s: too many packets in flight",
			       q->env->name);
		return;
	}
	if (s->nsent == s->sent_cap) {
		/* Grown on demand: a handshake has a few packets in flight,
		 * and SENT_MAX records up front (about 300 kB per space) cost
		 * more than the handshake's packet protection. */
		size_t cap = s->sent_cap ? 2 * s->sent_cap : 16;
		sent_pkt *n = realloc(s->sent, cap * sizeof(*n));
		if (n == NULL) {
			sim_world_fail(q->env->w, "%s: out of memory",
				       q->env->name);
			return;
		}
		s->sent = n;
		s->sent_cap = cap;
	}
	pl->rec.pn = pl->pn;
	pl->rec.sent_ns = q->now;
	pl->rec.size = size;
	s->sent[s->nsent++] = pl->rec;
	s->last_eliciting_ns = q->now;
}

/* The protected size of the packet |pl| will make. */
static size_t packet_size(const plan *pl)
{
	size_t body = pl->len + PROTO_QCRYPTO_TAG_LEN;
	if (pl->space == SP_APP) {
		return 1 + CID_LEN + pl->pn_len + body;
	}
	return proto_qwire_long_header_size(space_ptype[pl->space], CID_LEN,
					    CID_LEN, 0, pl->pn_len, body) +
	       body;
}

/* Builds the next datagram, coalescing one packet per space. */
static sim_packet *build_datagram(quic *q)
{
	plan plans[NSPACE];
	int np = 0;
	size_t budget = DATAGRAM_MAX;
	if (q->cfg.is_server && !q->address_validated) {
		/* RFC 9000 8.1: three times what the client sent. */
		uint64_t limit = 3 * q->bytes_rx_unvalidated;
		uint64_t left = limit > q->bytes_tx_unvalidated
					? limit - q->bytes_tx_unvalidated
					: 0;
		if (left < budget) {
			budget = (size_t)left;
		}
	}
	size_t used = 0;
	int has_initial = 0;
	for (int i = 0; i < NSPACE; i++) {
		if (!wants_send(q, i)) {
			continue;
		}
		size_t over = (i == SP_APP ? SHORT_OVERHEAD : LONG_OVERHEAD) +
			      PROTO_QCRYPTO_TAG_LEN;
		if (used + over + 8 > budget) {
			break;
		}
		plan_packet(q, i, &plans[np], budget - used - over);
		if (plans[np].len == 0) {
			continue;
		}
		used += over + plans[np].len;
		has_initial |= i == SP_INITIAL;
		np++;
		if (q->cfg.no_coalesce) {
			break;
		}
	}
	if (np == 0) {
		return NULL;
	}
	/* RFC 9000 14.1: datagrams with Initial packets are at least 1200
	 * bytes; pad the last packet (its Length field may grow a byte). */
	if (has_initial && budget >= INITIAL_MIN) {
		plan *last = &plans[np - 1];
		for (int tries = 0; tries < 3; tries++) {
			size_t total = 0;
			for (int k = 0; k < np; k++) {
				total += packet_size(&plans[k]);
			}
			if (total == INITIAL_MIN) {
				break;
			}
			if (total < INITIAL_MIN) {
				size_t pad = INITIAL_MIN - total;
				memset(last->payload + last->len, FT_PADDING,
				       pad);
				last->len += pad;
			} else if (tries > 0) {
				last->len -= total - INITIAL_MIN;
			} else {
				break;
			}
		}
	}
	uint8_t dg[DATAGRAM_MAX + 64];
	size_t dlen = 0;
	sim_packet_sub subs[NSPACE];
	/* The frame summaries, spaces and handshake state are read by the
	 * trace's packet rows and by fault rules (space, frame); untraced
	 * without rules, nothing reads them. */
	int traced = sim_ep_packet_detail(q->env);
	char state[64] = "";
	if (traced) {
		hs_state(q, state, sizeof(state));
	}
	for (int k = 0; k < np; k++) {
		plan *pl = &plans[k];
		sim_packet_sub *sub = &subs[k];
		memset(sub, 0, sizeof(*sub));
		if (traced) {
			proto_qwire_summarize(pl->payload, pl->len,
					      sub->frames, sizeof(sub->frames));
		}
		size_t n = seal(q, pl, dg + dlen, sizeof(dg) - dlen);
		if (n == 0) {
			sim_world_fail(q->env->w, "%s: cannot seal a packet",
				       q->env->name);
			return NULL;
		}
		copy_str(sub->ptype, sizeof(sub->ptype),
			 proto_qwire_ptype_name(space_ptype[pl->space]));
		/* A short header's Key Phase: in its row, and for the fault
		 * selector key_phase (sim/link.h). */
		sub->key_phase =
			pl->space == SP_APP ? (int)(q->ku.tx_gen & 1) : -1;
		if (traced) {
			copy_str(sub->space, sizeof(sub->space),
				 space_names[pl->space]);
			copy_str(sub->hs_state, sizeof(sub->hs_state), state);
		}
		sub->pn = (int64_t)pl->pn;
		sub->len = n;
		record_sent(q, pl, n);
		dlen += n;
	}
	sim_packet *p = sim_packet_new(dg, dlen);
	if (p == NULL) {
		return NULL;
	}
	p->proto = "quic";
	copy_str(p->ptype, sizeof(p->ptype), "datagram");
	size_t o = 0;
	for (int k = 0; k < np; k++) {
		if (k > 0 && o + 1 < sizeof(p->info)) {
			p->info[o++] = '+';
		}
		o += copy_str(p->info + o, sizeof(p->info) - o, subs[k].ptype);
		sim_packet_add_sub(p, &subs[k]);
	}
	copy_str(p->hs_state, sizeof(p->hs_state), state);
	q->info.bytes_sent += dlen;
	q->last_sent_ns = q->now;
	if (q->cfg.is_server && !q->address_validated) {
		q->bytes_tx_unvalidated += dlen;
	}
	/* RFC 9001 4.9.1: a client stops using Initial keys once it sends a
	 * Handshake packet. */
	for (int k = 0; k < np; k++) {
		if (!q->cfg.is_server && plans[k].space == SP_HANDSHAKE) {
			discard_space(q, SP_INITIAL);
		}
	}
	return p;
}

/* --- the endpoint -------------------------------------------------------- */

static void enter(quic *q, sim_time now)
{
	assert(q->last_now <= now);
	q->last_now = now;
	q->now = now;
	proto_pki_clock_set(q->cfg.epoch_ns + now);
}

static void client_start(quic *q)
{
	if (q->st != ST_IDLE) {
		return;
	}
	uint8_t cs[32], ss[32];
	/* The client's first Destination Connection ID decides the Initial
	 * keys (RFC 9001 5.2). */
	memcpy(q->odcid, q->dcid, CID_LEN);
	if (proto_qcrypto_initial_secrets(q->dcid, CID_LEN, cs, ss) != 0 ||
	    proto_qcrypto_keys_init(&q->sp[SP_INITIAL].tx, 0x1301, cs, 32) !=
		    0 ||
	    proto_qcrypto_keys_init(&q->sp[SP_INITIAL].rx, 0x1301, ss, 32) !=
		    0 ||
	    !set_transport_params(q)) {
		sim_world_fail(q->env->w, "%s: cannot set up the Initial keys",
			       q->env->name);
		return;
	}
	q->sp[SP_INITIAL].have_tx = q->sp[SP_INITIAL].have_rx = 1;
	tls_row(q, "keys", "initial", "write", -1, "TLS_AES_128_GCM_SHA256");
	tls_row(q, "keys", "initial", "read", -1, "TLS_AES_128_GCM_SHA256");
	q->st = ST_HANDSHAKE;
	q->start_ns = q->now;
	q->handshake_deadline = q->now + q->cfg.handshake_timeout_ns;
	q->idle_deadline = q->now + q->cfg.idle_timeout_ns;
	drive_tls(q);
}

static void validation_complete(quic *q, int ok)
{
	if (q->verify_state != 1) {
		sim_ep_event ev = {.name = "error"};
		sim_ep_event_str(&ev, "op", "validation_complete");
		sim_ep_event_str(&ev, "reason", "no certificate check pending");
		emit(q, &ev);
		return;
	}
	q->verify_state = ok ? 2 : 3;
	tls_row(q, "verify_done", NULL, NULL, q->info.verify_error,
		ok ? "ok" : "rejected");
	if (q->st >= ST_CLOSING) {
		return; /* shut down meanwhile: the flight stays unsent */
	}
	if (q->flight_held) {
		q->flight_held = 0;
		if (!ok) {
			/* The handshake already went on: close with the
			 * alert's CRYPTO_ERROR, as MsQuic does. */
			start_close(q, ERR_CRYPTO + (uint64_t)q->verify_alert, 0,
				    FT_CRYPTO, "certificate rejected");
			return;
		}
		if (SSL_in_init(q->ssl) == 0 && !q->hs_complete) {
			on_handshake_complete(q);
		}
		return;
	}
	drive_tls(q);
}

static void api(void *impl, sim_time now, sim_op *op)
{
	quic *q = impl;
	enter(q, now);
	if (strcmp(op->type, "start") == 0) {
		client_start(q);
	} else if (strcmp(op->type, "send") == 0) {
		if (q->stream_tx.fin || q->st >= ST_CLOSING) {
			sim_ep_event ev = {.name = "error"};
			sim_ep_event_str(&ev, "op", "send");
			sim_ep_event_str(&ev, "reason", q->stream_tx.fin
								? "stream ended"
								: "closed");
			emit(q, &ev);
			return;
		}
		if (op->args.len > 0 &&
		    tx_append(&q->stream_tx, op->args.data, op->args.len) != 0) {
			sim_world_fail(q->env->w, "%s: send buffer full",
				       q->env->name);
		}
		q->stream_tx.fin = op->args.i[0] != 0;
	} else if (strcmp(op->type, "shutdown") == 0) {
		if (q->st == ST_IDLE) {
			finish(q, "closed");
		} else {
			start_close(q, (uint64_t)op->args.i[0], 1, 0,
				    "application shutdown");
		}
	} else if (strcmp(op->type, "validation_complete") == 0) {
		validation_complete(q, op->args.i[0] != 0);
	} else if (strcmp(op->type, "key_update") == 0) {
		const char *why = key_update_refusal(q);
		if (why != NULL) {
			sim_ep_event ev = {.name = "error"};
			sim_ep_event_str(&ev, "op", "key_update");
			sim_ep_event_str(&ev, "reason", why);
			emit(q, &ev);
		} else {
			key_update_start(q, "requested by the application");
		}
	}
	process_buffered(q);
}

static int api_front(const void *impl, const char *type)
{
	const quic *q = impl;
	return q->cfg.shutdown_front && strcmp(type, "shutdown") == 0;
}

static void input(void *impl, sim_time now, const sim_packet *pkt)
{
	quic *q = impl;
	enter(q, now);
	if (q->st == ST_CLOSED || (q->st == ST_IDLE && !q->cfg.is_server)) {
		return;
	}
	q->info.bytes_received += pkt->len;
	if (q->cfg.is_server && !q->address_validated) {
		q->bytes_rx_unvalidated += pkt->len;
	}
	/* Decryption works in place: on a copy, the link owns |pkt|. */
	uint8_t *d = malloc(pkt->len ? pkt->len : 1);
	if (d == NULL) {
		sim_world_fail(q->env->w, "%s: out of memory", q->env->name);
		return;
	}
	memcpy(d, pkt->data, pkt->len);
	on_datagram(q, d, pkt->len);
	free(d);
	process_buffered(q);
}

static sim_time named_deadline(const void *impl, const char *name)
{
	const quic *q = impl;
	sim_time none = SIM_TIME_MAX;
	if (q->st == ST_CLOSED || q->st == ST_IDLE) {
		return none;
	}
	if (strcmp(name, "close") == 0) {
		return q->st == ST_CLOSING || q->st == ST_DRAINING
			       ? q->close_deadline
			       : none;
	}
	if (q->st == ST_CLOSING || q->st == ST_DRAINING) {
		return none;
	}
	if (strcmp(name, "idle") == 0) {
		return q->idle_deadline != 0 ? q->idle_deadline : none;
	}
	if (strcmp(name, "handshake") == 0) {
		return !q->hs_complete && q->handshake_deadline != 0
			       ? q->handshake_deadline
			       : none;
	}
	if (strcmp(name, "pto") == 0) {
		return loss_deadline(q);
	}
	if (strcmp(name, "key_discard") == 0) {
		return q->ku.have_rx_prev ? q->ku.prev_until : none;
	}
	if (strcmp(name, "ack") == 0) {
		const space *s = &q->sp[SP_APP];
		return s->ack_pending && !s->discarded
			       ? s->largest_rx_ns + q->cfg.max_ack_delay_ns
			       : none;
	}
	return none;
}

static sim_time expiry(const void *impl)
{
	const quic *q = impl;
	if (q->st == ST_CLOSED || q->st == ST_IDLE) {
		return SIM_TIME_MAX;
	}
	if (q->st == ST_CLOSING || q->st == ST_DRAINING) {
		return q->close_deadline;
	}
	sim_time at = loss_deadline(q);
	if (q->idle_deadline != 0 && q->idle_deadline < at) {
		at = q->idle_deadline;
	}
	if (!q->hs_complete && q->handshake_deadline != 0 &&
	    q->handshake_deadline < at) {
		at = q->handshake_deadline;
	}
	const space *s = &q->sp[SP_APP];
	if (s->ack_pending && !s->discarded) {
		sim_time due = s->largest_rx_ns + q->cfg.max_ack_delay_ns;
		if (due < at) {
			at = due;
		}
	}
	if (q->ku.have_rx_prev && q->ku.prev_until < at) {
		at = q->ku.prev_until;
	}
	return at;
}

static void timeout(void *impl, sim_time now)
{
	quic *q = impl;
	enter(q, now);
	if (q->ku.have_rx_prev && now >= q->ku.prev_until) {
		discard_prev_keys(q, "3 PTO after the update");
	}
	if (q->st == ST_CLOSING || q->st == ST_DRAINING) {
		if (now >= q->close_deadline) {
			finish(q, "closed");
		}
		return;
	}
	if (!q->hs_complete && q->handshake_deadline != 0 &&
	    now >= q->handshake_deadline) {
		finish(q, "handshake_timeout");
		return;
	}
	if (q->idle_deadline != 0 && now >= q->idle_deadline) {
		finish(q, "idle_timeout");
		return;
	}
	if (loss_deadline(q) <= now) {
		on_loss_timer(q);
	}
}

static sim_packet *output(void *impl, sim_time now)
{
	quic *q = impl;
	q->now = now;
	if (q->st == ST_CLOSED || q->st == ST_IDLE ||
	    q->st == ST_DRAINING) {
		return NULL;
	}
	if (q->cfg.key_update_every > 0 &&
	    q->ku.tx_packets >= q->cfg.key_update_every &&
	    key_update_refusal(q) == NULL) {
		char why[64];
		snprintf(why, sizeof(why), "key_update_every %llu packets",
			 (unsigned long long)q->cfg.key_update_every);
		key_update_start(q, why);
	}
	return build_datagram(q);
}

static const char *state(const void *impl)
{
	return state_names[((const quic *)impl)->st];
}

static void del(void *impl)
{
	quic *q = impl;
	if (q == NULL) {
		return;
	}
	for (int i = 0; i < NSPACE; i++) {
		space *s = &q->sp[i];
		proto_qcrypto_keys_free(&s->tx);
		proto_qcrypto_keys_free(&s->rx);
		free(s->sent);
		free(s->crypto_tx.data);
		free(s->crypto_rx.data);
		free(s->crypto_rx.have);
	}
	proto_qcrypto_keys_free(&q->ku.rx_prev);
	for (int k = 0; k < q->nearly; k++) {
		free(q->early[k].data);
	}
	free(q->stream_tx.data);
	free(q->stream_rx.data);
	free(q->stream_rx.have);
	SSL_free(q->ssl);
	SSL_CTX_free(q->ctx);
	sk_X509_pop_free(q->roots, X509_free);
	sk_X509_pop_free(q->cached, X509_free);
	free(q);
}

static int setup_ssl(quic *q, char *err, size_t errlen)
{
	const proto_quic_config *c = &q->cfg;
	int rc = c->is_server
			 ? proto_pki_server_ctx(c->chain, c->send_chain,
						TLS1_3_VERSION, TLS1_3_VERSION,
						NULL, NULL, &q->ctx)
			 : proto_pki_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION,
						NULL, NULL, &q->ctx);
	if (rc != 0) {
		snprintf(err, errlen, "cannot make a TLS context");
		return rc;
	}
	if (c->is_server) {
		SSL_CTX_set_alpn_select_cb(q->ctx, alpn_select, NULL);
	} else {
		SSL_CTX_set_custom_verify(q->ctx, SSL_VERIFY_PEER, verify_cb);
	}
	SSL_CTX_set_keylog_callback(q->ctx, keylog_cb);
	q->ssl = SSL_new(q->ctx);
	if (q->ssl == NULL || !SSL_set_quic_method(q->ssl, &quic_method)) {
		snprintf(err, errlen, "cannot make a QUIC TLS object");
		return SIM_ECRYPTO;
	}
	SSL_set_app_data(q->ssl, q);
	if (c->is_server) {
		SSL_set_accept_state(q->ssl);
	} else {
		SSL_set_connect_state(q->ssl);
		SSL_set_tlsext_host_name(q->ssl, q->host);
		if (SSL_set_alpn_protos(q->ssl, (const uint8_t *)ALPN,
					sizeof(ALPN) - 1) != 0) {
			snprintf(err, errlen, "cannot set ALPN");
			return SIM_ECRYPTO;
		}
		if (proto_pki_client_trust(c->chain,
					   c->cached_intermediate ||
						   c->aia_fetch_ns >= 0,
					   &q->roots, &q->cached) != 0) {
			snprintf(err, errlen, "out of memory");
			return SIM_ENOMEM;
		}
	}
	return 0;
}

void *proto_quic_make(const sim_ep_env *env, void *arg, char *err,
		      size_t errlen)
{
	const proto_quic_config *cfg = arg;
	if (cfg->chain == NULL) {
		snprintf(err, errlen, "no PKI: give pki=w:pki{}");
		return NULL;
	}
	quic *q = calloc(1, sizeof(*q));
	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->env = env;
	q->cfg = *cfg;
	snprintf(q->host, sizeof(q->host), "%s", cfg->name);
	q->cfg.name = q->host;
	q->st = ST_IDLE; /* a server leaves it with the first Initial */
	for (int i = 0; i < NSPACE; i++) {
		q->sp[i].largest_rx = -1;
		q->sp[i].largest_acked = -1;
		q->sp[i].crypto_tx.max = CRYPTO_MAX;
		q->sp[i].crypto_rx.max = CRYPTO_MAX;
		q->sp[i].crypto_rx.fin_at = UINT64_MAX;
	}
	q->stream_tx.max = (size_t)cfg->max_stream_bytes;
	q->stream_rx.max = (size_t)cfg->initial_max_stream_data;
	q->stream_rx.fin_at = UINT64_MAX;
	q->info.connected_ns = q->info.confirmed_ns = q->info.closed_ns = -1;
	q->info.close_sent_ns = q->info.close_received_ns = -1;
	/* Connection IDs: the endpoint's only randomness. */
	char name[96];
	sim_rng r;
	snprintf(name, sizeof(name), "quic/%s/cid", env->name);
	sim_world_rng(env->w, &r, name);
	for (int k = 0; k < CID_LEN; k++) {
		q->scid[k] = (uint8_t)sim_rng_next(&r);
		q->dcid[k] = (uint8_t)sim_rng_next(&r);
	}
	proto_pki_clock_set(cfg->epoch_ns);
	if (setup_ssl(q, err, errlen) != 0) {
		del(q);
		return NULL;
	}
	return q;
}

void proto_quic_get_info(const void *impl, proto_quic_info *out)
{
	const quic *q = impl;
	*out = q->info;
	out->state = state_names[q->st];
	out->close_reason = q->close_reason;
	out->crypto_bytes_sent = 0;
	for (int i = 0; i < NSPACE; i++) {
		out->crypto_bytes_sent += q->sp[i].crypto_tx.len;
	}
}

const uint8_t *proto_quic_received(const void *impl, size_t *len)
{
	const quic *q = impl;
	*len = (size_t)q->stream_rx.delivered;
	return q->stream_rx.data;
}

static const char *const client_api[] = {"start", "send", "shutdown",
					 "validation_complete", "key_update",
					 NULL};
static const char *const server_api[] = {"send", "shutdown", "key_update",
					 NULL};

const sim_ep_class proto_quic_client_class = {
	.kind = "quic_client",
	.api_names = client_api,
	.api = api,
	.api_front = api_front,
	.input = input,
	.timeout = timeout,
	.output = output,
	.expiry = expiry,
	.deadline = named_deadline,
	.state = state,
	.del = del,
};

const sim_ep_class proto_quic_server_class = {
	.kind = "quic_server",
	.api_names = server_api,
	.api = api,
	.api_front = api_front,
	.input = input,
	.timeout = timeout,
	.output = output,
	.expiry = expiry,
	.deadline = named_deadline,
	.state = state,
	.del = del,
};

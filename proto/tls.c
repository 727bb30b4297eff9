#include "proto/tls.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "proto/tlsrec.h"
#include "sim/err.h"
#include "sim/rng.h"
#include "sim/trace.h"

#define EPOCH_2026_NS (1767225600LL * 1000000000LL)
#define RAW_MAX 65536     /* raw-mode bytes buffered while parsing */
#define SIGN_IN_MAX 1024  /* signing input kept while a signature pends */
#define READ_CHUNK 16384

/* The state of an asynchronous step (certificate check, signature,
 * ClientHello inspection). */
enum pend { P_NONE, P_PENDING, P_OK, P_FAIL };

typedef struct tls {
	const sim_ep_env *env;
	proto_tls_config cfg;
	sim_time last_now;
	sim_time now; /* of the call in progress, for BoringSSL callbacks */
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *rbio, *wbio;
	STACK_OF(X509) *roots, *cached;
	proto_stream *st;

	int connecting, connected, accepted, raw;
	int hs_started, hs_done, hs_failed;
	int close_pending; /* close once the handshake finishes */
	int app_closed;    /* close() ran: the application is gone */
	int transport_closed;
	int eof_seen, eof_reported;
	int read_wanted;
	int shutdown_called, shutdown_waiting;
	int sent_any; /* any byte of ours reached the stream */
	uint64_t to_stream; /* bytes given to the stream */
	/* The messages BoringSSL writes (msg_cb) placed in the records it
	 * writes (flush_wbio), for the segments' labels. */
	proto_tlsrec rec;
	int split_done; /* cfg.split_msg's cuts were placed */
	sim_time deadline_ns;
	sim_time shutdown_deadline_ns; /* SIM_TIME_MAX: none */
	int deadline_fired;

	enum pend verify, sign, hello;
	int verify_alert;
	uint16_t sign_alg;
	uint8_t sign_in[SIGN_IN_MAX];
	size_t sign_in_len;

	uint8_t *pending_write; /* written before the handshake finished */
	size_t pending_write_len;
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint8_t *raw_in; /* RAW_MAX bytes, made by send_raw */
	size_t raw_in_len;

	char host[256]; /* cfg.name points here */
	char outcome[96];
	char last_state[64];
	proto_tls_info info;
} tls;

/* --- configuration ------------------------------------------------------- */

void proto_tls_config_default(proto_tls_config *c, int is_server)
{
	memset(c, 0, sizeof(*c));
	c->is_server = is_server;
	c->name = "server.test";
	c->min_version = TLS1_2_VERSION;
	c->max_version = TLS1_3_VERSION;
	c->send_chain = 1;
	c->auto_handshake = 1;
	c->autoread = 1;
	c->shutdown_wait = 1;
	c->epoch_ns = EPOCH_2026_NS;
	c->max_received = 16u << 20;
	c->aia_fetch_ns = -1;
	proto_stream_config_default(&c->stream);
	if (is_server) {
		c->stream.local_port = 443;
		c->stream.remote_port = 49152;
		c->stream.local_addr = PROTO_STREAM_ADDR_B;
		c->stream.remote_addr = PROTO_STREAM_ADDR_A;
	}
}

/* --- trace and events ---------------------------------------------------- */

static void tls_row(tls *t, const char *event, const char *level,
		    const char *dir, int64_t code, const char *detail)
{
	sim_tls_row r = {.time = t->now,
			 .node = t->env->name,
			 .event = event,
			 .level = level,
			 .direction = dir,
			 .code = code,
			 .detail = detail};
	sim_trace_tls(t->env->w->trace, &r);
}

static int emit(tls *t, const sim_ep_event *ev)
{
	return sim_ep_emit(t->env->ep, ev);
}

static void emit_simple(tls *t, const char *name)
{
	sim_ep_event ev = {.name = name};
	emit(t, &ev);
}

static void emit_int(tls *t, const char *name, const char *key, int64_t v)
{
	sim_ep_event ev = {.name = name};
	sim_ep_event_int(&ev, key, v);
	emit(t, &ev);
}

static void emit_error(tls *t, const char *op, const char *reason)
{
	sim_ep_event ev = {.name = "error"};
	sim_ep_event_str(&ev, "op", op);
	sim_ep_event_str(&ev, "reason", reason);
	emit(t, &ev);
}

/* set_outcome keeps the first terminal fact. */
static void set_outcome(tls *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_outcome(tls *t, const char *fmt, ...)
{
	if (strcmp(t->outcome, "open") != 0) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->outcome, sizeof(t->outcome), fmt, ap);
	va_end(ap);
}

static const char *ssl_reason(void)
{
	uint32_t e = ERR_peek_last_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
	return r != NULL ? r : "unknown error";
}

/* --- transport ----------------------------------------------------------- */

/* How BoringSSL protects the records it writes now, for proto_tlsrec. */
static void record_prot(const tls *t, proto_tlsrec_prot *p)
{
	memset(p, 0, sizeof(*p));
	p->tls13 = SSL_version(t->ssl) >= TLS1_3_VERSION;
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
	if (p->tls13 || c == NULL) {
		return;
	}
	int nid = SSL_CIPHER_get_cipher_nid(c);
	if (nid == NID_aes_128_gcm || nid == NID_aes_256_gcm) {
		p->nonce = 8;
		p->tag = 16;
	} else if (nid == NID_chacha20_poly1305) {
		p->tag = 16;
	} else if (SSL_CIPHER_is_block_cipher(c)) {
		const EVP_MD *md =
			EVP_get_digestbynid(SSL_CIPHER_get_digest_nid(c));
		p->iv = nid == NID_des_ede3_cbc ? 8 : 16;
		p->mac = md != NULL ? (uint32_t)EVP_MD_size(md) : 0;
	}
}

static void label_cb(void *ud, uint64_t from, uint64_t to, const char *name)
{
	tls *t = ud;
	proto_stream_label(t->st, from, to, name);
	if (!t->split_done && t->cfg.split_msg[0] != '\0' &&
	    strcmp(name, t->cfg.split_msg) == 0) {
		/* The first piece of the message: its bytes are in the send
		 * buffer, not yet cut into segments. */
		t->split_done = 1;
		for (uint32_t i = 0; i < t->cfg.nsplit_msg; i++) {
			if (proto_stream_split(t->st,
					       from + t->cfg.split_msg_at[i]) !=
			    0) {
				tls_row(t, "split_dropped", NULL, NULL, -1,
					"more than 16 split offsets");
				break;
			}
		}
	}
}

/* Moves BoringSSL's output into the stream, as much as fits, and labels
 * the records' bytes with the messages they carry (proto_tlsrec). */
static void flush_wbio(tls *t)
{
	uint8_t buf[READ_CHUNK];
	proto_tlsrec_prot prot;
	record_prot(t, &prot);
	while (BIO_pending(t->wbio) > 0) {
		size_t room = proto_stream_sndbuf_free(t->st);
		size_t n = (size_t)BIO_pending(t->wbio);
		if (room == 0 || t->transport_closed) {
			break;
		}
		n = n < room ? n : room;
		n = n < sizeof(buf) ? n : sizeof(buf);
		int got = BIO_read(t->wbio, buf, (int)n);
		if (got <= 0) {
			break;
		}
		if (proto_stream_send(t->st, t->now, buf, (size_t)got) < 0) {
			break;
		}
		t->sent_any = 1;
		t->to_stream += (uint64_t)got;
		/* Every message in these records has been reported: flushes
		 * come after the calls into BoringSSL that wrote them. */
		proto_tlsrec_write(&t->rec, &prot, buf, (size_t)got);
	}
}

/* msg_cb notes each handshake message, alert and ChangeCipherSpec
 * BoringSSL writes, with where its written bytes ended then, so that
 * proto_tlsrec can tell which record bytes carry it: exactly, each
 * segment is labelled with the messages it has bytes of. */
static void msg_cb(int write_p, int version, int content_type,
		   const void *buf, size_t len, SSL *ssl, void *arg)
{
	tls *t = arg;
	const uint8_t *b = buf;
	(void)version;
	(void)ssl;
	if (!write_p || len == 0) {
		return;
	}
	const char *name = NULL;
	char tmp[24];
	if (content_type == 22) {
		static const struct {
			uint8_t type;
			const char *name;
		} hs[] = {{1, "ClientHello"},
			  {2, "ServerHello"},
			  {4, "NewSessionTicket"},
			  {5, "EndOfEarlyData"},
			  {8, "EncryptedExtensions"},
			  {11, "Certificate"},
			  {12, "ServerKeyExchange"},
			  {13, "CertificateRequest"},
			  {14, "ServerHelloDone"},
			  {15, "CertificateVerify"},
			  {16, "ClientKeyExchange"},
			  {20, "Finished"},
			  {24, "KeyUpdate"}};
		for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
			if (hs[i].type == b[0]) {
				name = hs[i].name;
			}
		}
		if (name == NULL) {
			snprintf(tmp, sizeof(tmp), "handshake%u", b[0]);
			name = tmp;
		}
	} else if (content_type == 21 && len >= 2) {
		name = b[1] == 0 ? "close_notify" : "alert";
	} else if (content_type == 20) {
		name = "ChangeCipherSpec";
	} else {
		return; /* record headers, application data */
	}
	proto_tlsrec_message(&t->rec, content_type, name, len,
			     t->to_stream + (uint64_t)BIO_pending(t->wbio));
}

/* close_transport closes the socket (|full|: close(2), which abandons a
 * connection still in SYN-SENT) or only its sending side (shutdown(2)
 * SHUT_WR: the FIN goes after the handshake). */
static void close_transport(tls *t, int full)
{
	if (t->transport_closed) {
		return;
	}
	flush_wbio(t);
	/* What BoringSSL still holds would be sent by a real socket's
	 * close() only if it was written: drop it. */
	t->transport_closed = 1;
	t->info.closed_ns = t->now;
	if (full) {
		proto_stream_close(t->st, t->now);
	} else {
		proto_stream_close_write(t->st, t->now);
	}
}

/* --- BoringSSL callbacks ------------------------------------------------- */

static void info_cb(const SSL *ssl, int where, int ret)
{
	tls *t = SSL_get_app_data(ssl);
	if (where & SSL_CB_ALERT) {
		int code = ret & 0xff;
		int fatal = (ret >> 8) == SSL3_AL_FATAL;
		int recv = (where & SSL_CB_READ) != 0;
		const char *name = proto_pki_alert_name(code);
		if (code == SSL_AD_CLOSE_NOTIFY) {
			tls_row(t, recv ? "close_notify_received"
					: "close_notify_sent",
				"application", recv ? "read" : "write", 0,
				NULL);
			if (recv) {
				t->info.close_notify_received = 1;
			} else {
				t->info.close_notify_sent = 1;
			}
			return;
		}
		char d[64];
		snprintf(d, sizeof(d), "%s(%d)%s", name, code,
			 fatal ? " fatal" : "");
		tls_row(t, recv ? "alert_received" : "alert_sent", NULL,
			recv ? "read" : "write", code, d);
		if (recv) {
			t->info.alert_received = code;
		} else {
			t->info.alert_sent = code;
		}
		sim_ep_event ev = {.name = recv ? "alert_received"
						: "alert_sent"};
		sim_ep_event_str(&ev, "name", name);
		sim_ep_event_int(&ev, "code", code);
		sim_ep_event_int(&ev, "fatal", fatal);
		emit(t, &ev);
		return;
	}
	if (where & SSL_CB_LOOP) {
		const char *s = SSL_state_string_long(ssl);
		if (s != NULL && strcmp(s, t->last_state) != 0) {
			snprintf(t->last_state, sizeof(t->last_state), "%s", s);
			tls_row(t, "state", NULL, NULL, -1, s);
		}
	}
}

/* Key log lines say which secret was derived; that is when BoringSSL
 * installs the key for that level and direction. */
static void keylog_cb(const SSL *ssl, const char *line)
{
	tls *t = SSL_get_app_data(ssl);
	static const struct {
		const char *label, *level;
		int client_writes; /* 1 client, 0 server, -1 both */
	} labels[] = {
		{"CLIENT_EARLY_TRAFFIC_SECRET ", "early_data", 1},
		{"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "handshake", 1},
		{"SERVER_HANDSHAKE_TRAFFIC_SECRET ", "handshake", 0},
		{"CLIENT_TRAFFIC_SECRET_0 ", "application", 1},
		{"SERVER_TRAFFIC_SECRET_0 ", "application", 0},
		{"CLIENT_RANDOM ", "application", -1},
	};
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		if (strncmp(line, labels[i].label, strlen(labels[i].label)) !=
		    0) {
			continue;
		}
		const char *dir = "both";
		if (labels[i].client_writes >= 0) {
			int writes = labels[i].client_writes ==
				     !t->cfg.is_server;
			dir = writes ? "write" : "read";
		}
		tls_row(t, "keys", labels[i].level, dir, -1, line);
		return;
	}
	tls_row(t, "keylog", NULL, NULL, -1, line);
}

static enum ssl_verify_result_t verify_cb(SSL *ssl, uint8_t *out_alert)
{
	tls *t = SSL_get_app_data(ssl);
	if (t->verify == P_PENDING) {
		return ssl_verify_retry;
	}
	if (t->verify == P_OK) {
		return ssl_verify_ok;
	}
	if (t->verify == P_FAIL) {
		*out_alert = (uint8_t)t->verify_alert;
		return ssl_verify_invalid;
	}
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
	char msg[160] = "";
	int depth = -1;
	int err = proto_pki_verify(chain, t->roots,
				   proto_pki_cached_at(t->cached,
						       t->cfg.cached_intermediate,
						       t->cfg.aia_fetch_ns, t->now),
				   t->cfg.name,
				   (t->cfg.epoch_ns + t->now) / SIM_S, &depth,
				   msg, sizeof(msg));
	t->info.verify_error = err;
	int answer = SIM_EP_ANSWER_NONE;
	if (t->cfg.verify_async) {
		sim_ep_event ev = {.name = "peer_certificate"};
		sim_ep_event_int(&ev, "x509_error", err);
		sim_ep_event_str(&ev, "x509_message", msg);
		sim_ep_event_int(&ev, "depth", depth);
		sim_ep_event_int(&ev, "certs",
				 chain != NULL ? (int64_t)sk_X509_num(chain)
					       : 0);
		answer = emit(t, &ev);
	}
	int ok = err == X509_V_OK;
	if (answer == SIM_EP_ANSWER_PENDING) {
		t->verify = P_PENDING;
		tls_row(t, "verify_pending", NULL, NULL, err, msg);
		return ssl_verify_retry;
	}
	if (answer == SIM_EP_ANSWER_ACCEPT || answer == SIM_EP_ANSWER_REJECT) {
		ok = answer == SIM_EP_ANSWER_ACCEPT;
	}
	t->verify = ok ? P_OK : P_FAIL;
	t->verify_alert = err != X509_V_OK ? proto_pki_alert_for(err)
					   : SSL_AD_BAD_CERTIFICATE;
	tls_row(t, "verify_done", NULL, NULL, err, ok ? "ok" : msg);
	if (!ok) {
		*out_alert = (uint8_t)t->verify_alert;
		return ssl_verify_invalid;
	}
	return ssl_verify_ok;
}

static int do_sign(tls *t, uint8_t *out, size_t *out_len, size_t max_out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok = md != NULL &&
		 EVP_DigestSignInit(md, &pctx,
				    SSL_get_signature_algorithm_digest(
					t->sign_alg),
				    NULL, t->cfg.chain->leaf_key) == 1;
	if (ok && SSL_is_signature_algorithm_rsa_pss(t->sign_alg)) {
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx,
						  RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, -1) == 1;
	}
	*out_len = max_out;
	ok = ok && EVP_DigestSign(md, out, out_len, t->sign_in,
				  t->sign_in_len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

static enum ssl_private_key_result_t pk_sign(SSL *ssl, uint8_t *out,
					     size_t *out_len, size_t max_out,
					     uint16_t sigalg, const uint8_t *in,
					     size_t in_len)
{
	tls *t = SSL_get_app_data(ssl);
	if (in_len > sizeof(t->sign_in)) {
		return ssl_private_key_failure;
	}
	memcpy(t->sign_in, in, in_len);
	t->sign_in_len = in_len;
	t->sign_alg = sigalg;
	const char *alg = SSL_get_signature_algorithm_name(sigalg, 0);
	sim_ep_event ev = {.name = "sign"};
	sim_ep_event_str(&ev, "sigalg", alg != NULL ? alg : "unknown");
	int answer = emit(t, &ev);
	if (answer == SIM_EP_ANSWER_PENDING) {
		t->sign = P_PENDING;
		tls_row(t, "sign_pending", NULL, NULL, sigalg, alg);
		return ssl_private_key_retry;
	}
	t->sign = answer == SIM_EP_ANSWER_REJECT ? P_FAIL : P_OK;
	tls_row(t, "sign_done", NULL, NULL, sigalg,
		t->sign == P_OK ? "ok" : "failed");
	if (t->sign == P_FAIL || !do_sign(t, out, out_len, max_out)) {
		return ssl_private_key_failure;
	}
	return ssl_private_key_success;
}

static enum ssl_private_key_result_t pk_complete(SSL *ssl, uint8_t *out,
						 size_t *out_len,
						 size_t max_out)
{
	tls *t = SSL_get_app_data(ssl);
	if (t->sign == P_PENDING) {
		return ssl_private_key_retry;
	}
	if (t->sign != P_OK || !do_sign(t, out, out_len, max_out)) {
		return ssl_private_key_failure;
	}
	return ssl_private_key_success;
}

static enum ssl_private_key_result_t pk_decrypt(SSL *ssl, uint8_t *out,
						size_t *out_len,
						size_t max_out,
						const uint8_t *in,
						size_t in_len)
{
	return ssl_private_key_failure; /* RSA key exchange: never offered */
}

static const SSL_PRIVATE_KEY_METHOD pk_method = {pk_sign, pk_decrypt,
						 pk_complete};

/* Finds extension |type| in a ClientHello. */
static int hello_ext(const SSL_CLIENT_HELLO *ch, uint16_t type,
		     const uint8_t **data, size_t *len)
{
	return SSL_early_callback_ctx_extension_get(ch, type, data, len);
}

static int offers_tls13(const SSL_CLIENT_HELLO *ch)
{
	const uint8_t *d;
	size_t n;
	if (!hello_ext(ch, TLSEXT_TYPE_supported_versions, &d, &n) || n < 1) {
		return 0;
	}
	size_t list = d[0];
	for (size_t i = 1; i + 1 < n && i + 1 <= list; i += 2) {
		if (d[i] == 0x03 && d[i + 1] == 0x04) {
			return 1;
		}
	}
	return 0;
}

static void hello_sni(const SSL_CLIENT_HELLO *ch, char *out, size_t outlen)
{
	const uint8_t *d;
	size_t n;
	out[0] = '\0';
	/* server_name_list: u16 len, u8 type 0, u16 len, name */
	if (!hello_ext(ch, TLSEXT_TYPE_server_name, &d, &n) || n < 5 ||
	    d[2] != 0) {
		return;
	}
	size_t nl = (size_t)d[3] << 8 | d[4];
	if (nl > n - 5) {
		return;
	}
	nl = nl < outlen - 1 ? nl : outlen - 1;
	for (size_t i = 0; i < nl; i++) {
		out[i] = d[5 + i] >= 0x20 && d[5 + i] < 0x7f ? (char)d[5 + i]
							      : '?';
	}
	out[nl] = '\0';
}

static enum ssl_select_cert_result_t select_cb(const SSL_CLIENT_HELLO *ch)
{
	tls *t = SSL_get_app_data(ch->ssl);
	if (t->hello == P_PENDING) {
		return ssl_select_cert_retry;
	}
	if (t->hello != P_NONE) {
		return t->hello == P_OK ? ssl_select_cert_success
					: ssl_select_cert_error;
	}
	char sni[64];
	hello_sni(ch, sni, sizeof(sni));
	sim_ep_event ev = {.name = "client_hello"};
	sim_ep_event_int(&ev, "version", ch->version);
	sim_ep_event_int(&ev, "tls13", offers_tls13(ch));
	sim_ep_event_str(&ev, "sni", sni);
	int answer = emit(t, &ev);
	if (answer == SIM_EP_ANSWER_PENDING) {
		t->hello = P_PENDING;
		tls_row(t, "client_hello_pending", NULL, NULL, -1, sni);
		return ssl_select_cert_retry;
	}
	t->hello = answer == SIM_EP_ANSWER_REJECT ? P_FAIL : P_OK;
	tls_row(t, "client_hello_done", NULL, NULL, -1,
		t->hello == P_OK ? "accepted" : "rejected");
	return t->hello == P_OK ? ssl_select_cert_success
				: ssl_select_cert_error;
}

/* --- the TLS state machine ----------------------------------------------- */

static void handshake_done(tls *t)
{
	t->hs_done = 1;
	t->info.handshake_done_ns = t->now;
	const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
	const char *cipher = c != NULL ? SSL_CIPHER_standard_name(c) : "";
	const char *group = SSL_get_curve_name(SSL_get_curve_id(t->ssl));
	const char *version = SSL_get_version(t->ssl);
	char d[160];
	snprintf(d, sizeof(d), "%s %s %s", version, cipher,
		 group != NULL ? group : "-");
	tls_row(t, "handshake_done", NULL, NULL, -1, d);
	sim_ep_event ev = {.name = "handshake_done"};
	sim_ep_event_str(&ev, "version", version);
	sim_ep_event_str(&ev, "cipher", cipher);
	sim_ep_event_str(&ev, "group", group != NULL ? group : "");
	emit(t, &ev);
	if (t->pending_write_len > 0) {
		SSL_write(t->ssl, t->pending_write, (int)t->pending_write_len);
		t->info.bytes_written += t->pending_write_len;
		free(t->pending_write);
		t->pending_write = NULL;
		t->pending_write_len = 0;
	}
}

static void fail_outcome(tls *t)
{
	if (t->info.alert_received >= 0) {
		set_outcome(t, "alert received: %s(%d)",
			    proto_pki_alert_name(t->info.alert_received),
			    t->info.alert_received);
	} else if (t->info.alert_sent >= 0) {
		set_outcome(t, "alert sent: %s(%d)",
			    proto_pki_alert_name(t->info.alert_sent),
			    t->info.alert_sent);
	}
}

static void handshake_failed(tls *t, const char *reason)
{
	t->hs_failed = 1;
	tls_row(t, "handshake_failed", NULL, NULL, -1, reason);
	if (t->cfg.is_server && t->cfg.acceptor && !t->sent_any &&
	    t->cfg.acceptor_alert == PROTO_TLS_ALERT_DROP &&
	    BIO_pending(t->wbio) > 0) {
		/* The acceptor path returned the error and dropped the
		 * connection with the alert still in its buffer. */
		tls_row(t, "alert_dropped", NULL, "write",
			t->info.alert_sent, "acceptor path: pending alert "
					    "dropped with the connection");
		BIO_reset(t->wbio);
		proto_tlsrec_reset(&t->rec, t->to_stream);
	}
	fail_outcome(t);
	set_outcome(t, "handshake failed: %s", reason);
	emit_error(t, "handshake", reason);
	/* Every real caller closes the socket when the handshake fails. */
	close_transport(t, 1);
}

static void report_eof(tls *t)
{
	if (t->eof_reported) {
		return;
	}
	t->eof_reported = 1;
	/* code: 0 EOF after close_notify, 1 truncation reported, 2
	 * truncation reported to the application as a clean end. */
	int truncated = !t->info.close_notify_received;
	int code = truncated;
	if (truncated && t->cfg.unexpected_eof == PROTO_TLS_EOF_IGNORE) {
		truncated = 0;
		code = 2;
		set_outcome(t, "clean: end of stream");
	} else if (truncated) {
		set_outcome(t, "truncated: EOF without close_notify");
	} else {
		set_outcome(t, "clean: close_notify received, then EOF");
	}
	static const char *const what[] = {
		"EOF after close_notify", "EOF without close_notify",
		"EOF without close_notify, reported as a clean end"};
	tls_row(t, "eof", NULL, "read", code, what[code]);
	if (t->shutdown_waiting) {
		t->shutdown_waiting = 0;
		emit_int(t, "shutdown_done", "clean", 0);
	}
	emit_int(t, "eof", "truncated", truncated);
}

static void got_close_notify(tls *t)
{
	if (t->shutdown_waiting) {
		t->shutdown_waiting = 0;
		set_outcome(t, "clean: close_notify exchanged");
		emit_int(t, "shutdown_done", "clean", 1);
	}
	emit_simple(t, "close_notify");
}

static void keep_received(tls *t, const uint8_t *p, size_t n)
{
	size_t keep = t->cfg.max_received - t->rx_len;
	if (t->rx_len >= t->cfg.max_received) {
		return;
	}
	n = n < keep ? n : keep;
	if (t->rx_len + n > t->rx_cap) {
		size_t cap = t->rx_cap ? t->rx_cap : 4096;
		while (cap < t->rx_len + n) {
			cap *= 2;
		}
		uint8_t *nb = realloc(t->rx, cap);
		if (nb == NULL) {
			sim_world_fail(t->env->w, "%s: out of memory",
				       t->env->name);
			return;
		}
		t->rx = nb;
		t->rx_cap = cap;
	}
	memcpy(t->rx + t->rx_len, p, n);
	t->rx_len += n;
}

static void read_loop(tls *t)
{
	uint8_t buf[READ_CHUNK];
	while (!t->app_closed &&
	       (t->cfg.autoread || t->read_wanted || t->shutdown_waiting)) {
		int n = SSL_read(t->ssl, buf, sizeof(buf));
		if (n > 0) {
			t->info.bytes_read += (uint64_t)n;
			keep_received(t, buf, (size_t)n);
			t->read_wanted = 0;
			sim_ep_event ev = {.name = "data"};
			sim_ep_event_bytes(&ev, "data", buf, (size_t)n);
			sim_ep_event_int(&ev, "len", n);
			emit(t, &ev);
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_ZERO_RETURN) {
			if (t->info.close_notify_received == 1) {
				t->info.close_notify_received = 2;
				got_close_notify(t);
			}
			if (t->eof_seen) {
				report_eof(t);
			}
			break;
		}
		if (e == SSL_ERROR_WANT_READ) {
			break;
		}
		if (e == SSL_ERROR_SYSCALL && t->eof_seen) {
			report_eof(t);
			break;
		}
		fail_outcome(t);
		set_outcome(t, "error: %s", ssl_reason());
		emit_error(t, "read", ssl_reason());
		close_transport(t, 1);
		t->app_closed = 1;
		break;
	}
}

static void raw_parse(tls *t)
{
	size_t off = 0;
	while (t->raw_in_len - off >= 5) {
		const uint8_t *h = t->raw_in + off;
		size_t len = (size_t)h[3] << 8 | h[4];
		if (t->raw_in_len - off < 5 + len) {
			break;
		}
		if (h[0] == SSL3_RT_ALERT && len >= 2) {
			int code = h[6];
			t->info.alert_received = code;
			char d[64];
			snprintf(d, sizeof(d), "%s(%d)",
				 proto_pki_alert_name(code), code);
			tls_row(t, "alert_received", NULL, "read", code, d);
			set_outcome(t, "alert received: %s(%d)",
				    proto_pki_alert_name(code), code);
			sim_ep_event ev = {.name = "alert_received"};
			sim_ep_event_str(&ev, "name",
					 proto_pki_alert_name(code));
			sim_ep_event_int(&ev, "code", code);
			sim_ep_event_int(&ev, "fatal", h[5] == SSL3_AL_FATAL);
			emit(t, &ev);
		}
		off += 5 + len;
	}
	memmove(t->raw_in, t->raw_in + off, t->raw_in_len - off);
	t->raw_in_len -= off;
	if (t->eof_seen && !t->eof_reported) {
		t->eof_reported = 1;
		set_outcome(t, "eof during handshake: no alert");
		emit_int(t, "eof", "truncated", 1);
	}
}

/* Runs BoringSSL as far as it goes with what it has. */
static void pump(tls *t)
{
	if (t->raw) {
		raw_parse(t);
		return;
	}
	if (!t->hs_started || t->hs_failed) {
		return;
	}
	if (!t->hs_done) {
		int rc = SSL_do_handshake(t->ssl);
		if (rc == 1) {
			handshake_done(t);
		} else {
			int e = SSL_get_error(t->ssl, rc);
			switch (e) {
			case SSL_ERROR_WANT_READ:
			case SSL_ERROR_WANT_WRITE:
			case SSL_ERROR_PENDING_CERTIFICATE:
			case SSL_ERROR_WANT_PRIVATE_KEY_OPERATION:
			case SSL_ERROR_WANT_CERTIFICATE_VERIFY:
				if (t->eof_seen && e == SSL_ERROR_WANT_READ) {
					handshake_failed(t, "eof during "
							    "handshake");
				}
				break;
			case SSL_ERROR_SYSCALL:
				if (t->eof_seen) {
					tls_row(t, "eof", NULL, "read", 1,
						"EOF during handshake");
					set_outcome(t, "eof during handshake: "
						       "no alert");
					t->eof_reported = 1;
					handshake_failed(t, "unexpected eof");
					break;
				}
				/* fall through */
			default:
				handshake_failed(t, ssl_reason());
				break;
			}
		}
	}
	if (t->hs_done && t->close_pending) {
		t->close_pending = 0;
		/* close() waited for the handshake: now it can finish. */
		if (!t->info.close_notify_sent) {
			SSL_shutdown(t->ssl);
		}
		close_transport(t, 1);
		t->app_closed = 1;
		emit_simple(t, "closed");
		return;
	}
	if (t->hs_done) {
		read_loop(t);
	}
}

/* --- stream callbacks ---------------------------------------------------- */

static void on_connected(void *ud, sim_time now)
{
	tls *t = ud;
	t->connected = 1;
	emit_simple(t, "connected");
	if (!t->cfg.is_server && t->cfg.auto_handshake && !t->raw) {
		t->hs_started = 1;
	}
	pump(t);
}

static void on_recv(void *ud, sim_time now, const uint8_t *data, size_t len)
{
	tls *t = ud;
	if (t->app_closed) {
		/* Data for a closed socket: the kernel answers with RST. */
		proto_stream_abort(t->st, now);
		return;
	}
	if (t->raw) {
		size_t n = len < RAW_MAX - t->raw_in_len ? len
						       : RAW_MAX - t->raw_in_len;
		memcpy(t->raw_in + t->raw_in_len, data, n);
		t->raw_in_len += n;
	} else if (t->cfg.read_chunk > 0) {
		const uint8_t *p = data;
		while (len > 0 && !t->app_closed) {
			size_t n = len < t->cfg.read_chunk ? len
							   : t->cfg.read_chunk;
			BIO_write(t->rbio, p, (int)n);
			p += n;
			len -= n;
			pump(t);
		}
		return;
	} else {
		BIO_write(t->rbio, data, (int)len);
	}
	pump(t);
}

static void on_fin(void *ud, sim_time now)
{
	tls *t = ud;
	t->eof_seen = 1;
	t->info.peer_closed_ns = now;
	BIO_set_mem_eof_return(t->rbio, 0);
	if (!t->app_closed) {
		pump(t);
	}
}

static void on_reset(void *ud, sim_time now)
{
	tls *t = ud;
	t->info.peer_closed_ns = now;
	t->transport_closed = 1;
	tls_row(t, "reset", NULL, "read", -1, "transport reset by peer");
	set_outcome(t, "reset");
	if (!t->app_closed) {
		emit_simple(t, "reset");
	}
}

static void on_stream_error(void *ud, sim_time now, const char *why)
{
	tls *t = ud;
	t->transport_closed = 1;
	set_outcome(t, "transport %s", why);
	if (!t->app_closed) {
		emit_error(t, "transport", why);
	}
}

static const proto_stream_callbacks stream_cb = {
	.connected = on_connected,
	.recv = on_recv,
	.fin = on_fin,
	.reset = on_reset,
	.error = on_stream_error,
};

/* --- API operations ------------------------------------------------------ */

static void api_handshake(tls *t, const sim_op *op)
{
	if (t->hs_done || t->hs_failed) {
		emit_error(t, "handshake", t->hs_done ? "already done"
						      : "already failed");
		return;
	}
	if (op->args.i[0] > 0) {
		t->deadline_ns = t->now + op->args.i[0];
		t->deadline_fired = 0;
	}
	if (t->deadline_fired &&
	    t->cfg.deadline == PROTO_TLS_DEADLINE_IGNORE) {
		/* The read timed out; the handshake loop takes that for
		 * "would block" and retries at once. */
		sim_ep_post(t->env->ep, "handshake", "op", op->id, NULL, 0);
	}
	t->hs_started = 1;
	pump(t);
}

static void api_write(tls *t, sim_op *op)
{
	if (t->app_closed || t->transport_closed) {
		emit_error(t, "write", "closed");
		return;
	}
	if (t->shutdown_called) {
		emit_error(t, "write", "protocol is shutdown");
		return;
	}
	if (!t->hs_done) {
		uint8_t *nb = realloc(t->pending_write,
				      t->pending_write_len + op->args.len);
		if (nb == NULL) {
			sim_world_fail(t->env->w, "%s: out of memory",
				       t->env->name);
			return;
		}
		memcpy(nb + t->pending_write_len, op->args.data, op->args.len);
		t->pending_write = nb;
		t->pending_write_len += op->args.len;
		return;
	}
	if (op->args.len > 0 &&
	    SSL_write(t->ssl, op->args.data, (int)op->args.len) <= 0) {
		emit_error(t, "write", ssl_reason());
		return;
	}
	t->info.bytes_written += op->args.len;
}

static void api_shutdown(tls *t, const sim_op *op)
{
	if (!t->hs_done || t->app_closed) {
		emit_error(t, "shutdown", t->app_closed ? "closed"
							: "handshake not done");
		return;
	}
	int wait = op->args.i[0] < 0 ? t->cfg.shutdown_wait
				     : op->args.i[0] != 0;
	t->shutdown_called = 1;
	int rc = SSL_shutdown(t->ssl);
	if (rc == 1 || t->info.close_notify_received) {
		set_outcome(t, "clean: close_notify exchanged");
		emit_int(t, "shutdown_done", "clean", 1);
		return;
	}
	if (rc < 0) {
		emit_error(t, "shutdown", ssl_reason());
		return;
	}
	if (wait) {
		t->shutdown_waiting = 1;
		if (t->cfg.shutdown_timeout_ns > 0) {
			t->shutdown_deadline_ns =
				t->now + t->cfg.shutdown_timeout_ns;
		}
		if (t->eof_seen) {
			report_eof(t);
		} else {
			pump(t);
		}
		return;
	}
	set_outcome(t, "clean: close_notify sent, not awaited");
	emit_int(t, "shutdown_done", "clean", 0);
}

static void api_close(tls *t)
{
	if (t->app_closed) {
		return;
	}
	switch (t->cfg.close) {
	case PROTO_TLS_CLOSE_FINISH_HANDSHAKE:
		/* Go before 2011: Close() ran Handshake() to be able to send
		 * close_notify and returned its error without closing the
		 * connection. */
		if (!t->hs_done && t->hs_failed) {
			emit_error(t, "close", "handshake failed: transport "
					       "left open");
			return;
		}
		if (!t->hs_done && !t->raw) {
			t->close_pending = 1;
			t->hs_started = 1;
			pump(t);
			return;
		}
		/* fall through */
	case PROTO_TLS_CLOSE_NOTIFY:
		if (t->hs_done && !t->info.close_notify_sent) {
			SSL_shutdown(t->ssl);
		}
		break;
	case PROTO_TLS_CLOSE_TRANSPORT:
		break;
	}
	if (!t->hs_done || !t->info.close_notify_sent) {
		set_outcome(t, "aborted: closed before close_notify");
	}
	close_transport(t, 1);
	t->app_closed = 1;
	emit_simple(t, "closed");
}

static void api_complete(tls *t, enum pend *p, const char *what,
			 const sim_op *op)
{
	if (*p != P_PENDING) {
		char why[64];
		snprintf(why, sizeof(why), "no %s pending", what);
		emit_error(t, op->type, why);
		return;
	}
	*p = op->args.i[0] ? P_OK : P_FAIL;
	char ev[48];
	snprintf(ev, sizeof(ev), "%s_done", what);
	if (p == &t->verify) {
		t->verify_alert = t->info.verify_error != X509_V_OK
					  ? proto_pki_alert_for(
						t->info.verify_error)
					  : SSL_AD_BAD_CERTIFICATE;
	}
	tls_row(t, ev, NULL, NULL, -1, *p == P_OK ? "ok" : "failed");
	pump(t);
}

static void api(void *impl, sim_time now, sim_op *op)
{
	tls *t = impl;
	assert(t->last_now <= now);
	t->last_now = now;
	t->now = now;
	proto_pki_clock_set(t->cfg.epoch_ns + now);
	const char *ty = op->type;
	if (strcmp(ty, "connect") == 0) {
		if (t->connecting) {
			emit_error(t, ty, "already connecting");
			return;
		}
		t->connecting = 1;
		proto_stream_connect(t->st, now);
	} else if (strcmp(ty, "accept") == 0) {
		t->accepted = 1;
		t->hs_started = 1;
		pump(t);
	} else if (strcmp(ty, "handshake") == 0) {
		api_handshake(t, op);
	} else if (strcmp(ty, "write") == 0) {
		api_write(t, op);
	} else if (strcmp(ty, "read") == 0) {
		t->read_wanted = 1;
		pump(t);
	} else if (strcmp(ty, "shutdown") == 0) {
		api_shutdown(t, op);
	} else if (strcmp(ty, "close") == 0) {
		api_close(t);
	} else if (strcmp(ty, "close_write") == 0) {
		close_transport(t, 0);
	} else if (strcmp(ty, "abort") == 0) {
		t->transport_closed = 1;
		t->info.closed_ns = now;
		proto_stream_abort(t->st, now);
	} else if (strcmp(ty, "validation_complete") == 0) {
		api_complete(t, &t->verify, "verify", op);
	} else if (strcmp(ty, "sign_complete") == 0) {
		api_complete(t, &t->sign, "sign", op);
	} else if (strcmp(ty, "client_hello_complete") == 0) {
		api_complete(t, &t->hello, "client_hello", op);
	} else if (strcmp(ty, "send_raw") == 0) {
		/* Made here, not with the endpoint: calloc would zero 64 KiB
		 * for every endpoint, and few scenarios send raw bytes. */
		if (t->raw_in == NULL &&
		    (t->raw_in = malloc(RAW_MAX)) == NULL) {
			sim_world_fail(t->env->w, "%s: out of memory",
				       t->env->name);
			return;
		}
		t->raw = 1;
		/* Raw bytes go after what BoringSSL wrote, and are no
		 * records of its. */
		flush_wbio(t);
		int64_t n = proto_stream_send(t->st, now, op->args.data,
					      op->args.len);
		if (n < 0) {
			emit_error(t, ty, "transport closed");
		} else {
			t->to_stream += (uint64_t)n;
			proto_tlsrec_reset(&t->rec, t->to_stream);
		}
	}
}

static int api_front(const void *impl, const char *type)
{
	return 0;
}

static void input(void *impl, sim_time now, const sim_packet *pkt)
{
	tls *t = impl;
	assert(t->last_now <= now);
	t->last_now = now;
	t->now = now;
	proto_pki_clock_set(t->cfg.epoch_ns + now);
	proto_stream_input(t->st, now, pkt->data, pkt->len);
}

static sim_time named_deadline(const void *impl, const char *name)
{
	const tls *t = impl;
	if (strcmp(name, "handshake") == 0) {
		return t->deadline_ns != SIM_TIME_MAX && !t->deadline_fired &&
				       !t->hs_done && !t->hs_failed
			       ? t->deadline_ns
			       : SIM_TIME_MAX;
	}
	if (strcmp(name, "retransmit") == 0) {
		return proto_stream_expiry(t->st);
	}
	if (strcmp(name, "close_notify") == 0) {
		return t->shutdown_waiting ? t->shutdown_deadline_ns
					   : SIM_TIME_MAX;
	}
	return SIM_TIME_MAX;
}

static sim_time expiry(const void *impl)
{
	const tls *t = impl;
	sim_time at = proto_stream_expiry(t->st);
	if (t->shutdown_waiting && t->shutdown_deadline_ns < at) {
		at = t->shutdown_deadline_ns;
	}
	if (t->deadline_ns != SIM_TIME_MAX && !t->deadline_fired &&
	    !t->hs_done && !t->hs_failed && t->deadline_ns < at) {
		at = t->deadline_ns;
	}
	return at;
}

static void timeout(void *impl, sim_time now)
{
	tls *t = impl;
	assert(t->last_now <= now);
	t->last_now = now;
	t->now = now;
	proto_pki_clock_set(t->cfg.epoch_ns + now);
	if (proto_stream_expiry(t->st) <= now) {
		proto_stream_timeout(t->st, now);
	}
	if (t->shutdown_waiting && t->shutdown_deadline_ns <= now) {
		t->shutdown_waiting = 0;
		t->shutdown_deadline_ns = SIM_TIME_MAX;
		tls_row(t, "shutdown_timeout", NULL, NULL, -1,
			"no close_notify from the peer in time");
		set_outcome(t, "timeout: no close_notify from the peer");
		emit_int(t, "shutdown_done", "clean", 0);
		sim_ep_event ev = {.name = "timeout"};
		sim_ep_event_str(&ev, "what", "shutdown");
		emit(t, &ev);
		close_transport(t, 1);
	}
	if (t->deadline_ns > now || t->deadline_fired || t->hs_done ||
	    t->hs_failed) {
		return;
	}
	t->deadline_fired = 1;
	tls_row(t, "deadline", NULL, NULL, -1, "handshake deadline reached");
	if (t->cfg.deadline == PROTO_TLS_DEADLINE_IGNORE) {
		sim_ep_post(t->env->ep, "handshake", "timer", -1, NULL, 0);
		return;
	}
	t->hs_failed = 1;
	set_outcome(t, "timeout: handshake deadline");
	sim_ep_event ev = {.name = "timeout"};
	sim_ep_event_str(&ev, "what", "handshake");
	emit(t, &ev);
}

static sim_packet *output(void *impl, sim_time now)
{
	tls *t = impl;
	t->now = now;
	flush_wbio(t);
	sim_packet *p = proto_stream_output(t->st, now);
	return p;
}

static const char *state(const void *impl)
{
	const tls *t = impl;
	if (t->app_closed) {
		return "closed";
	}
	if (t->hs_failed) {
		return "failed";
	}
	if (t->shutdown_waiting) {
		return "shutdown_wait";
	}
	if (t->shutdown_called) {
		return "shutdown";
	}
	if (t->hs_done) {
		return "established";
	}
	if (t->verify == P_PENDING || t->sign == P_PENDING ||
	    t->hello == P_PENDING) {
		return "pending";
	}
	if (t->hs_started) {
		return "handshaking";
	}
	if (t->cfg.is_server) {
		return "listening";
	}
	return t->connecting ? "connecting" : "idle";
}

static void del(void *impl)
{
	tls *t = impl;
	if (t == NULL) {
		return;
	}
	SSL_free(t->ssl); /* frees both BIOs */
	SSL_CTX_free(t->ctx);
	sk_X509_pop_free(t->roots, X509_free);
	sk_X509_pop_free(t->cached, X509_free);
	proto_stream_del(t->st);
	proto_tlsrec_free(&t->rec);
	free(t->pending_write);
	free(t->rx);
	free(t->raw_in);
	free(t);
}

/* --- construction -------------------------------------------------------- */

static int setup_ssl(tls *t, const proto_tls_config *c, char *err,
		     size_t errlen)
{
	int rc;
	if (c->is_server) {
		rc = proto_pki_server_ctx(c->chain, c->send_chain,
					  c->min_version, c->max_version,
					  c->groups, c->ciphers, &t->ctx);
	} else {
		rc = proto_pki_client_ctx(c->min_version, c->max_version,
					  c->groups, c->ciphers, &t->ctx);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot make a TLS context (%s%s%s%s)",
			 c->groups != NULL ? "groups '" : "",
			 c->groups != NULL ? c->groups : "",
			 c->groups != NULL ? "', " : "", ssl_reason());
		return rc;
	}
	SSL_CTX_set_keylog_callback(t->ctx, keylog_cb);
	if (c->is_server && c->acceptor) {
		SSL_CTX_set_select_certificate_cb(t->ctx, select_cb);
	}
	if (!c->is_server) {
		SSL_CTX_set_custom_verify(t->ctx, SSL_VERIFY_PEER, verify_cb);
	}
	t->ssl = SSL_new(t->ctx);
	if (t->ssl != NULL) {
		SSL_set_msg_callback(t->ssl, msg_cb);
		SSL_set_msg_callback_arg(t->ssl, t);
	}
	if (t->ssl != NULL && c->max_record != 0 &&
	    !SSL_set_max_send_fragment(t->ssl, c->max_record)) {
		snprintf(err, errlen, "max_record %u: %s", c->max_record,
			 ssl_reason());
		return SIM_EINVAL;
	}
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
		BIO_free(t->rbio);
		BIO_free(t->wbio);
		snprintf(err, errlen, "out of memory");
		return SIM_ENOMEM;
	}
	BIO_set_mem_eof_return(t->rbio, -1); /* empty: would block */
	SSL_set_bio(t->ssl, t->rbio, t->wbio);
	SSL_set_app_data(t->ssl, t);
	SSL_set_info_callback(t->ssl, info_cb);
	if (c->is_server) {
		SSL_set_accept_state(t->ssl);
		if (c->async_sign) {
			SSL_set_private_key_method(t->ssl, &pk_method);
		}
	} else {
		SSL_set_connect_state(t->ssl);
		SSL_set_tlsext_host_name(t->ssl, t->host);
		if (proto_pki_client_trust(c->chain,
					   c->cached_intermediate ||
						   c->aia_fetch_ns >= 0,
					   &t->roots, &t->cached) != 0) {
			snprintf(err, errlen, "out of memory");
			return SIM_ENOMEM;
		}
	}
	return 0;
}

void *proto_tls_make(const sim_ep_env *env, void *arg, char *err,
		     size_t errlen)
{
	const proto_tls_config *cfg = arg;
	if (cfg->chain == NULL) {
		snprintf(err, errlen, "no PKI: give pki=w:pki{}");
		return NULL;
	}
	tls *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->env = env;
	t->cfg = *cfg;
	snprintf(t->host, sizeof(t->host), "%s", cfg->name);
	t->cfg.name = t->host;
	t->cfg.groups = NULL;  /* borrowed: used by setup_ssl only */
	t->cfg.ciphers = NULL;
	t->deadline_ns = SIM_TIME_MAX;
	t->shutdown_deadline_ns = SIM_TIME_MAX;
	t->info.handshake_done_ns = -1;
	t->info.closed_ns = -1;
	t->info.peer_closed_ns = -1;
	t->info.alert_sent = -1;
	t->info.alert_received = -1;
	snprintf(t->outcome, sizeof(t->outcome), "open");
	proto_pki_clock_set(cfg->epoch_ns);
	/* The initial sequence number is the stream's only randomness. */
	char name[96];
	sim_rng r;
	snprintf(name, sizeof(name), "stream/%s/isn", env->name);
	sim_world_rng(env->w, &r, name);
	t->cfg.stream.isn = (uint32_t)sim_rng_next(&r);
	const char *bad = proto_stream_config_check(&t->cfg.stream);
	if (bad != NULL) {
		snprintf(err, errlen, "%s", bad);
		free(t);
		return NULL;
	}
	proto_tlsrec_init(&t->rec, 0, label_cb, t);
	t->st = proto_stream_new(&t->cfg.stream, &stream_cb, t);
	if (t->st == NULL || setup_ssl(t, cfg, err, errlen) != 0) {
		if (t->st == NULL) {
			snprintf(err, errlen, "out of memory");
		}
		del(t);
		return NULL;
	}
	if (cfg->is_server) {
		proto_stream_listen(t->st);
	}
	return t;
}

const char *proto_tls_outcome(const void *impl)
{
	return ((const tls *)impl)->outcome;
}

const uint8_t *proto_tls_received(const void *impl, size_t *len)
{
	const tls *t = impl;
	*len = t->rx_len;
	return t->rx;
}

void proto_tls_get_info(const void *impl, proto_tls_info *out)
{
	const tls *t = impl;
	*out = t->info;
	out->close_notify_received = t->info.close_notify_received != 0;
	out->stream_offset = t->to_stream + (uint64_t)BIO_pending(t->wbio);
	out->stream_state = proto_stream_state(t->st);
	proto_stream_get_stats(t->st, &out->stream);
}

int proto_tls_attack(void *impl, sim_time now, const char *kind,
		     int64_t offset)
{
	tls *t = impl;
	t->now = now;
	if (offset < 0) {
		return proto_stream_forge(t->st, now, kind);
	}
	return proto_stream_cut(t->st, (uint64_t)offset, kind);
}

static const char *const client_api[] = {
	"connect", "handshake", "write", "read", "shutdown", "close",
	"close_write", "abort", "validation_complete", "send_raw", NULL};
static const char *const server_api[] = {
	"accept", "handshake", "write", "read", "shutdown", "close",
	"close_write", "abort", "sign_complete", "client_hello_complete",
	"send_raw", NULL};

const sim_ep_class proto_tls_client_class = {
	.kind = "tls_client",
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

const sim_ep_class proto_tls_server_class = {
	.kind = "tls_server",
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

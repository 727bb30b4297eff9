/* proto/tlsrec: the messages BoringSSL reports, placed in the records it
 * writes. The record streams here are the shapes BoringSSL produced
 * (measured with its message callback and the write BIO's bytes): a TLS
 * 1.3 server flight packed into one record, the same flight cut by a 512
 * byte max_send_fragment (two messages in one record, one message in two
 * records), post-handshake tickets and close_notify around application
 * data, TLS 1.2 with AEAD and CBC ciphers. Each case is also fed one byte
 * at a time, which must not change a label. */
#include <stdio.h>
#include <string.h>

#include "proto/tlsrec.h"
#include "tests/unit.h"

typedef struct out {
	char s[2048];
	size_t n;
} out;

static void on_label(void *ud, uint64_t from, uint64_t to, const char *name)
{
	out *o = ud;
	o->n +=
	    (size_t)snprintf(o->s + o->n, sizeof(o->s) - o->n,
			     "%s%s[%llu,%llu)", o->n ? " " : "", name,
			     (unsigned long long)from, (unsigned long long)to);
}

/* The bytes an endpoint writes. */
typedef struct wire {
	uint8_t b[8192];
	size_t n;
} wire;

static void rec(wire *w, int type, size_t len)
{
	w->b[w->n++] = (uint8_t)type;
	w->b[w->n++] = 3;
	w->b[w->n++] = 3;
	w->b[w->n++] = (uint8_t)(len >> 8);
	w->b[w->n++] = (uint8_t)len;
	memset(w->b + w->n, 0xa5, len);
	w->n += len;
}

static void feed(proto_tlsrec *r, const proto_tlsrec_prot *p, const wire *w,
		 size_t from, size_t to, int bytewise)
{
	if (!bytewise) {
		proto_tlsrec_write(r, p, w->b + from, to - from);
		return;
	}
	for (size_t i = from; i < to; i++) {
		proto_tlsrec_write(r, p, w->b + i, 1);
	}
}

static const proto_tlsrec_prot tls13 = {.tls13 = 1};

/* The TLS 1.3 server flight: ServerHello and ChangeCipherSpec in the
 * clear, then EncryptedExtensions, Certificate, CertificateVerify and
 * Finished in one record (980 bytes of plaintext + 17). */
static void server_flight(int bytewise)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	wire w = {0};
	/* ServerHello and the ChangeCipherSpec are sealed before they are
	 * reported, the encrypted messages are reported before their record
	 * is sealed; all before the flight reaches the write BIO. */
	proto_tlsrec_message(&r, 22, "ServerHello", 122, 0);
	proto_tlsrec_message(&r, 20, "ChangeCipherSpec", 1, 0);
	proto_tlsrec_message(&r, 22, "EncryptedExtensions", 6, 0);
	proto_tlsrec_message(&r, 22, "Certificate", 858, 0);
	proto_tlsrec_message(&r, 22, "CertificateVerify", 80, 0);
	proto_tlsrec_message(&r, 22, "Finished", 36, 0);
	rec(&w, 22, 122);
	rec(&w, 20, 1);
	rec(&w, 23, 980 + 17);
	CHECK_INT(w.n, 1135);
	feed(&r, &tls13, &w, 0, w.n, bytewise);
	CHECK_STR(o.s, "ServerHello[0,127) ChangeCipherSpec[127,133) "
		       "EncryptedExtensions[133,144) Certificate[144,1002) "
		       "CertificateVerify[1002,1082) Finished[1082,1135)");
	CHECK_INT(r.nmsgs, 0);
	CHECK_INT(r.inexact, 0);
}

TEST(tlsrec_tls13_flight)
{
	server_flight(0);
	server_flight(1);
}

/* SSL_set_max_send_fragment(512): EncryptedExtensions and the first 506
 * bytes of the Certificate fill one record, the rest of the Certificate,
 * CertificateVerify and Finished the next. The flight is also written in
 * two parts, the cut inside the second record's header. */
static void spanning(int bytewise)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 1000, on_label, &o);
	wire w = {0};
	proto_tlsrec_message(&r, 22, "EncryptedExtensions", 6, 1000);
	proto_tlsrec_message(&r, 22, "Certificate", 858, 1000);
	proto_tlsrec_message(&r, 22, "CertificateVerify", 80, 1000);
	proto_tlsrec_message(&r, 22, "Finished", 36, 1000);
	rec(&w, 23, 512 + 17);
	rec(&w, 23, 468 + 17);
	feed(&r, &tls13, &w, 0, 536, bytewise);
	CHECK_STR(o.s, "EncryptedExtensions[1000,1011) "
		       "Certificate[1011,1534)");
	feed(&r, &tls13, &w, 536, w.n, bytewise);
	CHECK_STR(o.s, "EncryptedExtensions[1000,1011) Certificate[1011,1534) "
		       "Certificate[1534,1891) CertificateVerify[1891,1971) "
		       "Finished[1971,2024)");
	CHECK_INT(r.nmsgs, 0);
}

TEST(tlsrec_spanning)
{
	spanning(0);
	spanning(1);
}

/* A plaintext message longer than a record (a TLS 1.2 Certificate with a
 * 512-byte fragment): one record per piece, sealed before the report. */
TEST(tlsrec_plaintext_spanning)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	wire w = {0};
	proto_tlsrec_message(&r, 22, "ServerHello", 63, 0);
	proto_tlsrec_message(&r, 22, "Certificate", 853, 0);
	proto_tlsrec_message(&r, 22, "ServerHelloDone", 4, 0);
	rec(&w, 22, 63);
	rec(&w, 22, 512);
	rec(&w, 22, 341);
	rec(&w, 22, 4);
	feed(&r, &(proto_tlsrec_prot){0}, &w, 0, w.n, 0);
	CHECK_STR(o.s, "ServerHello[0,68) Certificate[68,585) "
		       "Certificate[585,931) ServerHelloDone[931,940)");
}

/* After the handshake: application data is labelled ApplicationData, tickets
 * written with the next write do, and close_notify is the record that
 * ends where the bytes ended when it was reported. */
static void post_handshake(int bytewise)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 1135, on_label, &o);
	wire w = {0};
	/* The tickets are reported at 1135, written before the data. */
	proto_tlsrec_message(&r, 22, "NewSessionTicket", 182, 1135);
	proto_tlsrec_message(&r, 22, "NewSessionTicket", 182, 1135);
	rec(&w, 23, 364 + 17); /* [1135, 1521) */
	rec(&w, 23, 300 + 17); /* application data [1521, 1843) */
	feed(&r, &tls13, &w, 0, w.n, bytewise);
	rec(&w, 23, 2 + 17); /* [1843, 1867) */
	proto_tlsrec_message(&r, 21, "close_notify", 2, 1867);
	feed(&r, &tls13, &w, 708, w.n, bytewise);
	rec(&w, 23, 40 + 17); /* more application data [1867, 1929) */
	feed(&r, &tls13, &w, 732, w.n, bytewise);
	CHECK_STR(o.s,
		  "NewSessionTicket[1135,1322) NewSessionTicket[1322,1521) "
		  "ApplicationData[1521,1843) close_notify[1843,1867) "
		  "ApplicationData[1867,1929)");
	CHECK_INT(r.nmsgs, 0);
}

TEST(tlsrec_post_handshake)
{
	post_handshake(0);
	post_handshake(1);
}

/* TLS 1.2 with AES-GCM (8-byte explicit nonce, 16-byte tag): plaintext
 * messages, ChangeCipherSpec, then the encrypted Finished and alert
 * exactly; application data as ApplicationData. */
TEST(tlsrec_tls12_aead)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	proto_tlsrec_prot p = {.nonce = 8, .tag = 16};
	wire w = {0};
	proto_tlsrec_message(&r, 22, "ClientKeyExchange", 37, 0);
	proto_tlsrec_message(&r, 20, "ChangeCipherSpec", 1, 0);
	proto_tlsrec_message(&r, 22, "Finished", 16, 0);
	rec(&w, 22, 37);          /* [0, 42) */
	rec(&w, 20, 1);           /* [42, 48) */
	rec(&w, 22, 8 + 16 + 16); /* [48, 93) */
	rec(&w, 23, 8 + 5 + 16);  /* application data [93, 127) */
	feed(&r, &p, &w, 0, w.n, 0);
	rec(&w, 21, 8 + 2 + 16); /* [127, 158) */
	proto_tlsrec_message(&r, 21, "close_notify", 2, 158);
	feed(&r, &p, &w, 127, w.n, 0);
	CHECK_STR(o.s, "ClientKeyExchange[0,42) ChangeCipherSpec[42,48) "
		       "Finished[48,93) ApplicationData[93,127) "
		       "close_notify[127,158)");
	CHECK_INT(r.inexact, 0);
}

/* A CBC cipher hides the padding length: a record's plaintext is only
 * known within a range, so every message that may be in it labels the
 * whole record, never fewer than the true set; alerts stay exact. */
TEST(tlsrec_tls12_cbc)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	proto_tlsrec_prot p = {.iv = 16, .mac = 20};
	wire w = {0};
	proto_tlsrec_message(&r, 20, "ChangeCipherSpec", 1, 0);
	proto_tlsrec_message(&r, 22, "Finished", 16, 0);
	proto_tlsrec_message(&r, 22, "HelloRequest", 4, 0);
	rec(&w, 20, 1);                 /* [0, 6) */
	rec(&w, 22, 16 + 16 + 20 + 12); /* Finished: [6, 75) */
	rec(&w, 22, 16 + 4 + 20 + 8);   /* HelloRequest: [75, 128) */
	feed(&r, &p, &w, 0, w.n, 0);
	rec(&w, 21, 16 + 2 + 20 + 10); /* [128, 181) */
	proto_tlsrec_message(&r, 21, "alert", 2, 181);
	feed(&r, &p, &w, 128, w.n, 0);
	CHECK_STR(o.s, "ChangeCipherSpec[0,6) Finished[6,75) "
		       "HelloRequest[6,75) Finished[75,128) "
		       "HelloRequest[75,128) alert[128,181)");
	CHECK_INT(r.inexact, 2);
}

/* TLS 1.2 application data and a TLS 1.3 record too short for a tag are
 * ApplicationData, records of no known type carry no label, even with a
 * handshake message pending; bytes reported later than a record began
 * are not in it. */
TEST(tlsrec_unlabelled)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	wire w = {0};
	proto_tlsrec_message(&r, 22, "Finished", 16, 0);
	rec(&w, 23, 40);
	rec(&w, 99, 3);
	feed(&r, &(proto_tlsrec_prot){.tag = 16}, &w, 0, w.n, 0);
	CHECK_STR(o.s, "ApplicationData[0,45)");
	o.s[0] = '\0';
	o.n = 0;
	proto_tlsrec_reset(&r, 0);
	w.n = 0;
	proto_tlsrec_message(&r, 22, "KeyUpdate", 5, 60);
	rec(&w, 23, 10);      /* [0, 15) too short */
	rec(&w, 23, 30 + 17); /* [15, 67) application data */
	rec(&w, 23, 5 + 17);  /* [67, 94) */
	feed(&r, &tls13, &w, 0, w.n, 0);
	CHECK_STR(o.s, "ApplicationData[0,15) ApplicationData[15,67) "
		       "KeyUpdate[67,94)");
}

/* A write BIO emptied unsent (proto_tlsrec_reset): the messages of that
 * flight are forgotten, the next flight is placed from its offset. A full
 * queue forgets its oldest message. */
TEST(tlsrec_reset_and_cap)
{
	out o = {0};
	proto_tlsrec r;
	proto_tlsrec_init(&r, 0, on_label, &o);
	wire w = {0};
	proto_tlsrec_message(&r, 22, "ServerHello", 50, 0);
	rec(&w, 22, 50);
	proto_tlsrec_write(&r, &tls13, w.b, 3); /* a header in part */
	proto_tlsrec_reset(&r, 3);
	w.n = 0;
	proto_tlsrec_message(&r, 21, "alert", 2, 10);
	rec(&w, 21, 2);
	proto_tlsrec_write(&r, &tls13, w.b, w.n);
	CHECK_STR(o.s, "alert[3,10)");
	for (int i = 0; i < PROTO_TLSREC_MSGS_MAX + 3; i++) {
		proto_tlsrec_message(&r, 22, "Certificate", 10, 10);
	}
	CHECK_INT(r.dropped, 3);
	CHECK_INT(r.nmsgs, PROTO_TLSREC_MSGS_MAX);
	CHECK_INT(r.msgs[0].toff, 80);
}

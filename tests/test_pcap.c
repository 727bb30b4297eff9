/* pcap export: the pcapng structure (block lengths, the interface, the
 * Decryption Secrets Block), the IPv4/UDP/TCP headers and their checksums,
 * which rows each capture point writes and in what order, determinism,
 * and refusals that leave no file behind. tests/cli/pcap.sh checks real
 * scenario exports with tshark. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/pcap.h"
#include "sim/trace.h"
#include "tests/unit.h"

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The Internet checksum of |n| bytes after |sum|: 0 when they are right. */
static uint16_t csum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		sum += i % 2 ? p[i] : (uint32_t)p[i] << 8;
	}
	while (sum >> 16) {
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return (uint16_t)~sum;
}

/* The checksum of an IPv4 packet's UDP or TCP part with its pseudo-header. */
static uint16_t l4_sum(const uint8_t *ip, size_t len)
{
	uint8_t ph[12] = {0};
	memcpy(ph, ip + 12, 8);
	ph[9] = ip[9];
	ph[10] = (uint8_t)((len - 20) >> 8);
	ph[11] = (uint8_t)(len - 20);
	uint32_t s = (uint16_t)~csum(0, ph, sizeof(ph));
	return csum(s, ip + 20, len - 20);
}

/* A TCP segment as proto/stream.c lays it out, 28 bytes of header and
 * |n| of payload, with the checksum for |src| -> |dst| (or a wrong one). */
static size_t tcp_seg(uint8_t *b, uint32_t src, uint32_t dst, size_t n,
		      int right)
{
	memset(b, 0, 28 + n);
	b[0] = 0xc0, b[1] = 0x00, b[2] = 0x01, b[3] = 0xbb; /* 49152 -> 443 */
	b[7] = 1;
	b[12] = 7 << 4;
	b[13] = 0x18;
	b[14] = 0xff, b[15] = 0xff;
	b[20] = 253, b[21] = 8, b[22] = 0x74, b[23] = 0x53;
	for (size_t i = 0; i < n; i++) {
		b[28 + i] = (uint8_t)i;
	}
	uint8_t ip[20 + 28 + 64] = {0};
	ip[9] = 6;
	for (int i = 0; i < 4; i++) {
		ip[12 + i] = (uint8_t)(src >> (24 - 8 * i));
		ip[16 + i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	memcpy(ip + 20, b, 28 + n);
	uint16_t c = l4_sum(ip, 20 + 28 + n);
	b[16] = (uint8_t)(c >> 8);
	b[17] = (uint8_t)(c + (right ? 0 : 1));
	return 28 + n;
}

#define KEYLINE                                                                \
	"CLIENT_HANDSHAKE_TRAFFIC_SECRET "                                     \
	"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff "    \
	"aabb"

static void packet(sim_trace *t, int64_t id, int64_t parent, const char *src,
		   const char *dst, const char *proto, sim_time send,
		   sim_time deliver, const char *fate, int64_t dup_of,
		   const void *data, size_t len)
{
	sim_packet_row r = {.id = id,
			    .parent = parent,
			    .link = "link0",
			    .src = src,
			    .dst = dst,
			    .proto = proto,
			    .send_ns = send,
			    .deliver_ns = deliver,
			    .len = (int64_t)len,
			    .fate = fate,
			    .reason = dup_of >= 0 ? "dup" : NULL,
			    .dup_of = dup_of,
			    .ptype = parent >= 0 ? "initial" : "datagram",
			    .pn = parent >= 0 ? 0 : -1,
			    .frames = parent >= 0 ? "CRYPTO(0+10)" : NULL,
			    .data = data,
			    .data_len = data ? len : 0};
	sim_trace_packet(t, &r);
}

/* One run: a QUIC pair (nodes 2, 3: 10.0.0.1 and .2) and a TLS pair
 * (nodes 4, 5: .4 and .3). */
static int write_trace(const char *p)
{
	sim_trace *t = NULL;
	char err[256];
	uint8_t dg[30], right[40], wrong[40];
	memset(dg, 0xc3, sizeof(dg));
	size_t nr = tcp_seg(right, 0x0a000003, 0x0a000004, 12, 1);
	size_t nw = tcp_seg(wrong, 0x0a000003, 0x0a000004, 12, 0);
	sim_run_info info = {.scenario = "s.lua",
			     .scenario_sha256 = "ab",
			     .seed = 3,
			     .params = "variant=x\n"};
	sim_run_result res = {.outcome = "pass", .end_ns = 1000};
	if (sim_trace_open(p, &t, err, sizeof(err)) != 0 ||
	    sim_trace_begin(t, &info) != 0) {
		sim_trace_close(t);
		return -1;
	}
	sim_trace_node(t, 0, "world", "world");
	sim_trace_node(t, 2, "qs", "quic_server");
	sim_trace_node(t, 3, "qc", "quic_client");
	sim_trace_node(t, 4, "ts", "tls_server");
	sim_trace_node(t, 5, "tc", "tls_client");
	/* sent 10, delivered 300; its copy at 310; a lost one */
	packet(t, 1, -1, "qc", "qs", "quic", 10, 300, "delivered", -1, dg, 30);
	packet(t, 2, 1, "qc", "qs", "quic", 10, 300, "delivered", -1, NULL, 30);
	packet(t, 3, -1, "qc", "qs", "quic", 10, 310, "duplicated", 1, dg, 30);
	packet(t, 4, -1, "qs", "qc", "quic", 20, -1, "lost", -1, dg, 30);
	packet(t, 5, 4, "qs", "qc", "quic", 20, -1, "lost", -1, NULL, 30);
	/* TCP: the checksum right for .3 -> .4, then a wrong one */
	packet(t, 6, -1, "tc", "ts", "tcp", 30, 200, "delivered", -1, right,
	       nr);
	packet(t, 7, -1, "tc", "ts", "tcp", 40, 200, "delivered", -1, wrong,
	       nw);
	/* arrives after the end of the run; not IP */
	packet(t, 8, -1, "ts", "tc", "tcp", 50, 2000, "delivered", -1, right,
	       nr);
	packet(t, 9, -1, "ts", "tc", "raw", 60, 100, "delivered", -1, dg, 3);
	sim_tls_row k = {.time = 1,
			 .node = "qc",
			 .event = "keylog",
			 .code = -1,
			 .detail = KEYLINE};
	sim_trace_tls(t, &k);
	k.node = "qs";
	sim_trace_tls(t, &k); /* the same line from the other end */
	k.event = "keys";
	k.detail = "TLS_AES_128_GCM_SHA256"; /* not a key log line */
	sim_trace_tls(t, &k);
	int rc = sim_trace_end(t, &res, NULL, NULL);
	sim_trace_close(t);
	return rc;
}

static uint8_t *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	uint8_t *b = malloc(1 << 16);
	*len = f && b ? fread(b, 1, 1 << 16, f) : 0;
	if (f) {
		fclose(f);
	}
	return b;
}

typedef struct parsed {
	int shb, idb, dsb, epb, bad;
	char secrets[512];
	uint64_t ts[8];
	const uint8_t *pkt[8];
	size_t pkt_len[8];
	char comment[8][512];
} parsed;

/* Walks the blocks of a pcapng file, checking every length. */
static void parse(const uint8_t *b, size_t len, parsed *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t at = 0; at < len;) {
		uint32_t type = le32(b + at), blen = le32(b + at + 4);
		if (blen < 12 || blen % 4 != 0 || at + blen > len ||
		    le32(b + at + blen - 4) != blen) {
			out->bad++;
			return;
		}
		const uint8_t *body = b + at + 8;
		if (type == 0x0a0d0d0a) {
			out->shb++;
			out->bad += le32(body) != 0x1a2b3c4d;
		} else if (type == 1) {
			out->idb++;
			out->bad += (le32(body) & 0xffff) != 101;
			/* if_tsresol 9 among the options */
			const uint8_t *o = body + 8;
			int resol = 0;
			while (o < b + at + blen - 4 && le32(o) != 0) {
				uint16_t code = (uint16_t)le32(o),
					 n = (uint16_t)(le32(o) >> 16);
				resol |= code == 9 && n == 1 && o[4] == 9;
				o += 4 + (n + 3u) / 4 * 4;
			}
			out->bad += !resol;
		} else if (type == 0x0a) {
			out->dsb++;
			out->bad += le32(body) != 0x544c534b;
			size_t n = le32(body + 4);
			if (n < sizeof(out->secrets)) {
				memcpy(out->secrets, body + 8, n);
			}
		} else if (type == 6 && out->epb < 8) {
			int k = out->epb++;
			out->ts[k] =
			    (uint64_t)le32(body + 4) << 32 | le32(body + 8);
			size_t cap = le32(body + 12);
			out->bad += cap != le32(body + 16);
			out->pkt[k] = body + 20;
			out->pkt_len[k] = cap;
			const uint8_t *o = body + 20 + (cap + 3) / 4 * 4;
			if (le32(o) & 0xffff) { /* opt_comment first */
				size_t n = le32(o) >> 16;
				memcpy(out->comment[k], o + 4,
				       n < 511 ? n : 511);
			}
		}
		at += blen;
	}
}

static int export(const char *out, enum sim_pcap_at at, sim_pcap_stats *st,
		  char *err, size_t errlen)
{
	sim_pcap_opts o = {.trace_path = unit_tmp_path("t.db"),
			   .out_path = out,
			   .keylog_path = unit_tmp_path("keys.txt"),
			   .at = at};
	return sim_pcap_export(&o, st, err, errlen);
}

TEST(pcap_receiver)
{
	char err[512];
	sim_pcap_stats st;
	REQUIRE(write_trace(unit_tmp_path("t.db")) == 0);
	int rc = export(unit_tmp_path("r.pcapng"), SIM_PCAP_AT_RECEIVER, &st,
			err, sizeof(err));
	if (rc != 0) {
		unit_fail(__FILE__, __LINE__, "%s", err);
		unit_tmp_cleanup();
		return;
	}
	size_t len;
	uint8_t *b = slurp(unit_tmp_path("r.pcapng"), &len);
	parsed p;
	parse(b, len, &p);
	CHECK_INT(p.bad, 0);
	CHECK_INT(p.shb, 1);
	CHECK_INT(p.idb, 1);
	CHECK_INT(p.dsb, 1);
	CHECK(strcmp(p.secrets, KEYLINE "\n") == 0);
	/* 6 and 7 at 200, then 1 at 300 and its copy at 310; 4 lost, 8 in
	 * flight at the end, 9 not IP */
	REQUIRE(p.epb == 4);
	CHECK_INT(st.packets, 4);
	CHECK_INT(st.lost, 1);
	CHECK_INT(st.in_flight, 1);
	CHECK_INT(st.other, 1);
	CHECK_INT(st.duplicates, 1);
	CHECK_INT(st.tcp_recomputed, 1);
	CHECK_INT(st.keylog_lines, 1);
	static const uint64_t ts[] = {200, 200, 300, 310};
	for (int k = 0; k < 4; k++) {
		const uint8_t *ip = p.pkt[k];
		size_t n = p.pkt_len[k];
		CHECK_INT(p.ts[k], ts[k]);
		CHECK_INT(ip[0], 0x45);
		CHECK_INT(get16(ip + 2), n);
		CHECK_INT(csum(0, ip, 20), 0);
		CHECK_INT(l4_sum(ip, n), 0);
		CHECK_INT(ip[9], k < 2 ? 6 : 17);
	}
	/* TCP .3 -> .4, the right segment unchanged; UDP .1:49152 -> .2:443 */
	CHECK_INT(get16(p.pkt[0] + 12), 0x0a00);
	CHECK_INT(p.pkt[0][15], 3);
	CHECK_INT(p.pkt[0][19], 4);
	uint8_t right[40];
	size_t nr = tcp_seg(right, 0x0a000003, 0x0a000004, 12, 1);
	CHECK(p.pkt_len[0] == 20 + nr && memcmp(p.pkt[0] + 20, right, nr) == 0);
	CHECK_INT(p.pkt[2][15], 1);
	CHECK_INT(p.pkt[2][19], 2);
	CHECK_INT(get16(p.pkt[2] + 20), 49152);
	CHECK_INT(get16(p.pkt[2] + 22), 443);
	CHECK_INT(get16(p.pkt[2] + 24), 8 + 30);
	/* the copy keeps the original's IPv4 id, and says what it is */
	CHECK_INT(get16(p.pkt[2] + 4), 1);
	CHECK_INT(get16(p.pkt[3] + 4), 1);
	CHECK(strstr(p.comment[2], "tlsim packet 1, link0 qc->qs") != NULL);
	CHECK(strstr(p.comment[2], "; initial pn 0: CRYPTO(0+10)") != NULL);
	CHECK(strstr(p.comment[3], "copy of packet 1") != NULL);
	CHECK(strstr(p.comment[3], "; initial pn 0: CRYPTO(0+10)") != NULL);
	/* the key log file, and the same bytes from the same trace again */
	size_t klen, len2;
	uint8_t *k = slurp(unit_tmp_path("keys.txt"), &klen);
	CHECK(klen == strlen(KEYLINE) + 1 &&
	      memcmp(k, KEYLINE "\n", klen) == 0);
	free(k);
	CHECK_INT(export(unit_tmp_path("r2.pcapng"), SIM_PCAP_AT_RECEIVER, NULL,
			 err, sizeof(err)),
		  0);
	uint8_t *b2 = slurp(unit_tmp_path("r2.pcapng"), &len2);
	CHECK(len == len2 && memcmp(b, b2, len) == 0);
	free(b2);
	free(b);
	unit_tmp_cleanup();
}

TEST(pcap_sender)
{
	char err[512];
	sim_pcap_stats st;
	REQUIRE(write_trace(unit_tmp_path("t.db")) == 0);
	REQUIRE(export(unit_tmp_path("s.pcapng"), SIM_PCAP_AT_SENDER, &st, err,
		       sizeof(err)) == 0);
	size_t len;
	uint8_t *b = slurp(unit_tmp_path("s.pcapng"), &len);
	parsed p;
	parse(b, len, &p);
	CHECK_INT(p.bad, 0);
	/* 1, 4 (lost), 6, 7, 8 at their send times; no copy; 9 not IP */
	REQUIRE(p.epb == 5);
	static const uint64_t ts[] = {10, 20, 30, 40, 50};
	for (int k = 0; k < 5; k++) {
		CHECK_INT(p.ts[k], ts[k]);
	}
	CHECK(strstr(p.comment[1], "never delivered; lost") != NULL);
	CHECK_INT(st.duplicates, 0);
	CHECK_INT(st.in_flight, 0);
	free(b);
	unit_tmp_cleanup();
}

TEST(pcap_refusals)
{
	char err[512];
	REQUIRE(write_trace(unit_tmp_path("t.db")) == 0);
	/* an existing output survives a failed export */
	FILE *f = fopen(unit_tmp_path("old.pcapng"), "w");
	REQUIRE(f != NULL);
	fputs("old", f);
	fclose(f);
	sim_pcap_opts o = {.trace_path = unit_tmp_path("t.db"),
			   .out_path = unit_tmp_path("old.pcapng"),
			   .run_id = 9};
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_EINVAL);
	CHECK(strstr(err, "no run 9") != NULL);
	size_t len;
	uint8_t *b = slurp(unit_tmp_path("old.pcapng"), &len);
	CHECK(len == 3 && memcmp(b, "old", 3) == 0);
	free(b);
	o.run_id = 1;
	o.out_path = unit_tmp_path("t.db");
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_EINVAL);
	CHECK(strstr(err, "it is the trace being read") != NULL);
	o.out_path = unit_tmp_path("no/such/dir.pcapng");
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_ENOENT);
	o.out_path = unit_tmp_path("x.pcapng");
	o.keylog_path = unit_tmp_path("x.pcapng");
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_EINVAL);
	o.keylog_path = NULL;
	o.trace_path = unit_tmp_path("old.pcapng");
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_ENOTTRACE);
	o.trace_path = unit_tmp_path("missing.db");
	CHECK_INT(sim_pcap_export(&o, NULL, err, sizeof(err)), SIM_ENOENT);
	/* nothing but the trace (and its -wal, -shm) and the old file */
	int files = 0;
	DIR *d = opendir(unit_tmp_dir());
	REQUIRE(d != NULL);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		files += e->d_name[0] != '.' &&
			 strncmp(e->d_name, "t.db", 4) != 0 &&
			 strcmp(e->d_name, "old.pcapng") != 0;
	}
	closedir(d);
	CHECK_INT(files, 0);
	unit_tmp_cleanup();
}

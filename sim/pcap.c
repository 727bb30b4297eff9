/* sim/pcap.c: a recorded run as a pcapng capture.
 *
 * pcapng (draft-ietf-opsawg-pcapng): one Section Header Block, one
 * Interface Description Block per link (LINKTYPE_RAW, if_tsresol 9: the
 * timestamps are virtual nanoseconds), a Decryption Secrets Block with the
 * TLS key log, then one Enhanced Packet Block per packet with an
 * opt_comment. Block fields are written little-endian byte by byte (the
 * byte-order magic says so), network headers big-endian, so the bytes do
 * not depend on the host. */
#include "sim/pcap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim/err.h"
#include "sim/time.h"
#include "sim/trace.h"

#define BT_SHB 0x0a0d0d0au
#define BT_IDB 0x00000001u
#define BT_EPB 0x00000006u
#define BT_DSB 0x0000000au
#define BYTE_ORDER_MAGIC 0x1a2b3c4du
#define SECRETS_TLS_KEYLOG 0x544c534bu
#define LINKTYPE_RAW 101
#define SNAPLEN 65535

#define OPT_END 0
#define OPT_COMMENT 1
#define SHB_USERAPPL 4
#define IF_NAME 2
#define IF_DESCRIPTION 3
#define IF_TSRESOL 9

#define IP_HDR 20
#define UDP_HDR 8
#define TCP_HDR_MIN 20
#define IP_MAX 65535
#define PROTO_TCP 6
#define PROTO_UDP 17
#define ADDR_BASE 0x0a000000u /* 10.0.0.0 */
#define PORT_CLIENT 49152
#define PORT_QUIC 443
#define PORT_ECHO 7

#define COMMENT_MAX 4096
#define KEYLOG_LINE_MAX 1024
#define KEYLOG_MAX_LINES 1000000u
#define MAX_LINKS 4096

enum role { R_CLIENT, R_SERVER, R_OTHER };

typedef struct node {
	char *name;
	enum role role;
	uint16_t udp_port;
	uint32_t addr;
} node;

/* A QUIC packet inside a datagram, for the datagram's comment. */
typedef struct sub {
	int64_t parent;
	char *text; /* "handshake pn 2: CONNECTION_CLOSE(0x1c)(0xc,0x0)" */
} sub;

typedef struct line {
	char *text;
	size_t order;
	int dup;
} line;

/* A growable byte buffer; err latches an allocation failure. */
typedef struct bytes {
	uint8_t *p;
	size_t len, cap;
	int err;
} bytes;

/* An output written to |tmp| and renamed to |path| when complete. */
typedef struct output {
	const char *path;
	char *tmp;
	FILE *f;
	int errnum; /* the first failed write's errno */
} output;

typedef struct job {
	const sim_pcap_opts *o;
	char *err;
	size_t errlen;
	sqlite3 *db;
	int64_t run;
	sim_time end_ns;
	node *nodes; /* sorted by name */
	size_t nnodes, nodes_cap;
	uint32_t roles[3]; /* nodes of each role numbered so far */
	char **links;      /* in order of their first packet: interface ids */
	size_t nlinks, links_cap;
	sub *subs; /* sorted by parent, then seq */
	size_t nsubs, subs_cap;
	line *lines; /* key log lines in first-seen order, dup marked */
	size_t nlines, lines_cap;
	int64_t *order; /* packet row seqs in capture order */
	size_t norder, order_cap;
	bytes blk, pkt;
	output out, keylog;
	sim_pcap_stats st;
} job;

const char sim_pcap_usage[] =
    "usage: tlsim pcap TRACE.db [--run ID] -o FILE.pcapng [options]\n"
    "\n"
    "Writes the packets of a recorded run as a pcapng capture for\n"
    "Wireshark: QUIC and echo datagrams as UDP over IPv4, the TLS stream\n"
    "as TCP over IPv4, timestamps in virtual time (ns since the start of\n"
    "the run), a comment on every packet (tlsim id, fate, frames), and the\n"
    "run's TLS secrets in a Decryption Secrets Block, so the file alone\n"
    "decrypts. The trace is only read.\n"
    "\n"
    "options:\n"
    "  --run ID              the run (default: the trace's only run)\n"
    "  -o, --output FILE     the pcapng file to write (replaced whole)\n"
    "  --keylog FILE         also write the NSS key log (SSLKEYLOGFILE)\n"
    "  --at receiver|sender  capture point (default receiver): every copy\n"
    "                        that arrived, at its delivery time, lost\n"
    "                        packets left out, link duplicates in; or\n"
    "                        every packet sent, at its send time, lost\n"
    "                        ones in (commented), link duplicates out\n"
    "  -q, --quiet           print nothing but errors\n"
    "  -h, --help            this help\n"
    "\n"
    "exit status: 0 written, 2 usage or input error (no such run, not a\n"
    "tlsim trace, a run without packets, an output that cannot be\n"
    "written), 3 internal error.\n";

static int fail(job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(job *j, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->err, j->errlen, fmt, ap);
	va_end(ap);
	for (char *c = j->err; *c != '\0'; c++) {
		if (*c == '\n' || *c == '\r') {
			*c = ' ';
		}
	}
	return code;
}

static int sql_fail(job *j, const char *doing)
{
	int rc = sqlite3_errcode(j->db);
	int code = rc == SQLITE_NOMEM                            ? SIM_ENOMEM
		   : rc == SQLITE_BUSY || rc == SQLITE_LOCKED    ? SIM_EBUSY
		   : rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB ? SIM_ECORRUPT
								 : SIM_EIO;
	return fail(j, code, "%s: %s: %s", j->o->trace_path, doing,
		    sqlite3_errmsg(j->db));
}

static char *dup_text(sqlite3_stmt *st, int col)
{
	const char *t = (const char *)sqlite3_column_text(st, col);
	return strdup(t != NULL ? t : "");
}

/* --- byte buffers -------------------------------------------------------- */

static uint8_t *b_room(bytes *b, size_t n)
{
	if (b->err || n > SIZE_MAX / 2 - b->len) {
		b->err = 1;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n) {
			cap *= 2;
		}
		uint8_t *p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = 1;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	uint8_t *r = b->p + b->len;
	b->len += n;
	return r;
}

static void b_put(bytes *b, const void *v, size_t n)
{
	uint8_t *r = b_room(b, n);
	if (r != NULL && n > 0) {
		memcpy(r, v, n);
	}
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) {
		p[i] = (uint8_t)(v >> (8 * i));
	}
}

static void b_u16(bytes *b, uint16_t v)
{
	uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	b_put(b, le, 2);
}

static void b_u32(bytes *b, uint32_t v)
{
	uint8_t le[4];
	le32(le, v);
	b_put(b, le, 4);
}

static void b_pad(bytes *b)
{
	static const uint8_t zero[3];
	b_put(b, zero, (4 - b->len % 4) % 4);
}

static void b_opt(bytes *b, uint16_t code, const void *v, size_t n)
{
	n = n > 0xfffc ? 0xfffc : n;
	b_u16(b, code);
	b_u16(b, (uint16_t)n);
	b_put(b, v, n);
	b_pad(b);
}

static void b_opt_text(bytes *b, uint16_t code, const char *s)
{
	b_opt(b, code, s, strlen(s));
}

static void block_begin(bytes *b, uint32_t type)
{
	b->len = 0;
	b_u32(b, type);
	b_u32(b, 0); /* total length, set by block_end */
}

static int out_close(job *j, output *out, const char *what);

/* Writes |len| bytes; on failure closes |out| and reports it. */
static int out_write(job *j, output *out, const void *p, size_t len,
		     const char *what)
{
	if (fwrite(p, 1, len, out->f) != len) {
		out->errnum = errno ? errno : EIO;
		return out_close(j, out, what);
	}
	return 0;
}

/* Appends the trailing length, patches the leading one, writes it. */
static int block_end(job *j, bytes *b)
{
	b_u32(b, (uint32_t)(b->len + 4));
	if (b->err) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	le32(b->p + 4, (uint32_t)b->len);
	return out_write(j, &j->out, b->p, b->len, "pcapng");
}

/* --- outputs ------------------------------------------------------------- */

static int io_code(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
	case EROFS:
		return SIM_EPERM;
	case ENOSPC:
	case EDQUOT:
		return SIM_EFULL;
	case ENOENT:
	case ENOTDIR:
		return SIM_ENOENT;
	case ENOMEM:
		return SIM_ENOMEM;
	default:
		return SIM_EIO;
	}
}

static int same_file(const struct stat *a, const char *path)
{
	struct stat b;
	return stat(path, &b) == 0 && a->st_dev == b.st_dev &&
	       a->st_ino == b.st_ino;
}

static int out_open(job *j, output *out, const char *path, const char *what)
{
	struct stat st;
	/* The output replaces a regular file only: renaming over a device
	 * (-o /dev/null) would replace the device node itself. */
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		return fail(j, SIM_EINVAL,
			    "cannot write %s %s: not a regular file", what,
			    path);
	}
	if (stat(path, &st) == 0 && same_file(&st, j->o->trace_path)) {
		return fail(j, SIM_EINVAL,
			    "cannot write %s %s: it is the trace being read",
			    what, path);
	}
	size_t n = strlen(path) + 16;
	out->tmp = malloc(n);
	if (out->tmp == NULL) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	snprintf(out->tmp, n, "%s.tmpXXXXXX", path);
	int fd = mkstemp(out->tmp);
	if (fd < 0) {
		int e = errno;
		free(out->tmp);
		out->tmp = NULL;
		return fail(j, io_code(e), "cannot write %s %s: %s", what, path,
			    strerror(e));
	}
	/* mkstemp makes it 0600; give it the mode a plain create would. */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	out->path = path;
	out->f = fdopen(fd, "wb");
	if (out->f == NULL) {
		int e = errno;
		close(fd);
		return fail(j, io_code(e), "cannot write %s %s: %s", what, path,
			    strerror(e));
	}
	return 0;
}

/* Closes the temporary file; a write error (now or earlier) is reported
 * against the final name. */
static int out_close(job *j, output *out, const char *what)
{
	if (out->f == NULL) {
		return 0;
	}
	int e = out->errnum;
	if (fflush(out->f) != 0 && e == 0) {
		e = errno;
	}
	if (ferror(out->f) && e == 0) {
		e = EIO;
	}
	if (fclose(out->f) != 0 && e == 0) {
		e = errno;
	}
	out->f = NULL;
	if (e != 0) {
		return fail(j, io_code(e), "cannot write %s %s: %s", what,
			    out->path, strerror(e));
	}
	return 0;
}

static int out_commit(job *j, output *out, const char *what)
{
	if (out->tmp == NULL) {
		return 0;
	}
	if (rename(out->tmp, out->path) != 0) {
		int e = errno;
		return fail(j, io_code(e), "cannot write %s %s: %s", what,
			    out->path, strerror(e));
	}
	free(out->tmp);
	out->tmp = NULL;
	return 0;
}

/* Removes what is left of an output that was not committed. */
static void out_discard(output *out)
{
	if (out->f != NULL) {
		fclose(out->f);
		out->f = NULL;
	}
	if (out->tmp != NULL) {
		unlink(out->tmp);
		free(out->tmp);
		out->tmp = NULL;
	}
}

/* --- reading the run ----------------------------------------------------- */

/* each_row runs |sql| (its ?1 bound to the run id) and calls |fn| for each
 * row until it returns non-zero. Returns 0, |fn|'s code, or a SIM_E* code
 * for SQLite's failure, with |doing| in the message. */
static int each_row(job *j, const char *sql, const char *doing,
		    int (*fn)(job *j, sqlite3_stmt *st))
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
		return sql_fail(j, doing);
	}
	if (sqlite3_bind_parameter_count(st) > 0) {
		sqlite3_bind_int64(st, 1, j->run);
	}
	int rc, code = 0;
	while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		code = fn(j, st);
	}
	if (code == 0 && rc != SQLITE_DONE) {
		code = sql_fail(j, doing);
	}
	sqlite3_finalize(st);
	return code;
}

/* grow makes room for element |n| of the array whose pointer is at
 * |arrayp| (a T **), of |size|-byte elements with capacity |*cap|
 * (doubling), at most |max| elements (|what| names them in the message).
 * Returns 0 or a SIM_E* code. The pointer is read and written with memcpy:
 * a T * is not a void * to the aliasing rules. */
static int grow(job *j, void *arrayp, size_t *cap, size_t n, size_t size,
		size_t max, const char *what)
{
	if (n == max) {
		return fail(j, SIM_ELIMIT, "%s: run %lld has more than %zu %s",
			    j->o->trace_path, (long long)j->run, max, what);
	}
	if (n < *cap) {
		return 0;
	}
	size_t c = *cap ? *cap * 2 : 16;
	void *old, *q;
	memcpy(&old, arrayp, sizeof(old));
	if (c > SIZE_MAX / size || (q = realloc(old, c * size)) == NULL) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	memcpy(arrayp, &q, sizeof(q));
	*cap = c;
	return 0;
}

static int run_count_row(job *j, sqlite3_stmt *st)
{
	int64_t n = sqlite3_column_int64(st, 0);
	if (n == 0) {
		return fail(j, SIM_EINVAL, "%s: holds no runs",
			    j->o->trace_path);
	}
	if (n > 1) {
		return fail(j, SIM_EINVAL,
			    "%s: holds %lld runs; say which with --run ID",
			    j->o->trace_path, (long long)n);
	}
	j->run = sqlite3_column_int64(st, 1);
	return 0;
}

static int run_row(job *j, sqlite3_stmt *st)
{
	j->end_ns = sqlite3_column_int64(st, 0);
	j->st.run_id = j->run;
	return 0;
}

static int find_run(job *j)
{
	j->run = j->o->run_id;
	int rc = j->run != 0 ? 0
			     : each_row(j, "SELECT count(*), max(id) FROM run",
					"reading the runs", run_count_row);
	if (rc == 0) {
		rc = each_row(j, "SELECT end_ns FROM run WHERE id = ?1",
			      "reading the runs", run_row);
	}
	if (rc == 0 && j->st.run_id == 0) {
		rc = fail(j, SIM_EINVAL, "%s: no run %lld (--run)",
			  j->o->trace_path, (long long)j->run);
	}
	return rc;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const node *)a)->name, ((const node *)b)->name);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Addresses: the k-th client (node id order) 10.0.0.(2k+1), the k-th
 * server 10.0.0.(2k+2), others after both (read_nodes); see pcap.h. */
static int node_row(job *j, sqlite3_stmt *st)
{
	int rc = grow(j, &j->nodes, &j->nodes_cap, j->nnodes, sizeof(node),
		      SIM_PCAP_MAX_NODES, "nodes");
	if (rc != 0) {
		return rc;
	}
	node *n = &j->nodes[j->nnodes];
	const char *kind = (const char *)sqlite3_column_text(st, 1);
	kind = kind ? kind : "";
	if ((n->name = dup_text(st, 0)) == NULL) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	j->nnodes++;
	n->role = ends_with(kind, "_client")   ? R_CLIENT
		  : ends_with(kind, "_server") ? R_SERVER
					       : R_OTHER;
	n->udp_port = n->role != R_SERVER             ? PORT_CLIENT
		      : strncmp(kind, "echo", 4) == 0 ? PORT_ECHO
						      : PORT_QUIC;
	uint32_t k = j->roles[n->role]++;
	n->addr = n->role == R_OTHER ? 0 : ADDR_BASE + 2 * k + 1 + n->role;
	return 0;
}

static int read_nodes(job *j)
{
	int rc = each_row(j,
			  "SELECT name, kind FROM node WHERE run = ?1 AND "
			  "name IS NOT NULL ORDER BY id, seq",
			  "reading the nodes", node_row);
	if (rc != 0) {
		return rc;
	}
	uint32_t pairs = j->roles[R_CLIENT] > j->roles[R_SERVER]
			     ? j->roles[R_CLIENT]
			     : j->roles[R_SERVER];
	uint32_t next = ADDR_BASE + 2 * pairs + 1;
	for (size_t i = 0; i < j->nnodes; i++) {
		if (j->nodes[i].role == R_OTHER) {
			j->nodes[i].addr = next++;
		}
	}
	if (j->nnodes > 0) { /* a run with no node rows: nodes is NULL */
		qsort(j->nodes, j->nnodes, sizeof(node), cmp_node);
	}
	return 0;
}

static const node *find_node(const job *j, const char *name)
{
	node key = {.name = (char *)name};
	return name == NULL || j->nnodes == 0
		   ? NULL
		   : bsearch(&key, j->nodes, j->nnodes, sizeof(node), cmp_node);
}

static int link_row(job *j, sqlite3_stmt *st)
{
	int rc = grow(j, &j->links, &j->links_cap, j->nlinks, sizeof(char *),
		      MAX_LINKS, "links");
	if (rc == 0 && (j->links[j->nlinks] = dup_text(st, 0)) == NULL) {
		rc = fail(j, SIM_ENOMEM, "out of memory");
	}
	j->nlinks += rc == 0;
	return rc;
}

static int read_links(job *j)
{
	int rc = each_row(j,
			  "SELECT coalesce(link, '') FROM packet WHERE run = "
			  "?1 AND parent IS NULL GROUP BY coalesce(link, '') "
			  "ORDER BY min(seq)",
			  "reading the packets", link_row);
	if (rc == 0 && j->nlinks == 0) {
		rc = fail(j, SIM_EINVAL, "%s: run %lld has no packets",
			  j->o->trace_path, (long long)j->run);
	}
	return rc;
}

static size_t link_index(const job *j, const char *name)
{
	for (size_t i = 0; i < j->nlinks; i++) {
		if (strcmp(j->links[i], name ? name : "") == 0) {
			return i;
		}
	}
	return 0; /* not reached: read_links saw every link */
}

static int sub_row(job *j, sqlite3_stmt *st)
{
	int rc = grow(j, &j->subs, &j->subs_cap, j->nsubs, sizeof(sub),
		      SIZE_MAX, "packets");
	if (rc != 0) {
		return rc;
	}
	char t[512], pn[32] = "";
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		snprintf(pn, sizeof(pn), " pn %lld",
			 (long long)sqlite3_column_int64(st, 2));
	}
	snprintf(t, sizeof(t), "%s%s: %s",
		 (const char *)sqlite3_column_text(st, 1), pn,
		 (const char *)sqlite3_column_text(st, 3));
	sub *s = &j->subs[j->nsubs];
	s->parent = sqlite3_column_int64(st, 0);
	if ((s->text = strdup(t)) == NULL) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	j->nsubs++;
	return 0;
}

static int read_subs(job *j)
{
	return each_row(j,
			"SELECT parent, coalesce(ptype, '?'), pn, "
			"coalesce(frames, '') FROM packet WHERE run = ?1 AND "
			"parent IS NOT NULL ORDER BY parent, seq",
			"reading the packets", sub_row);
}

/* Index of the first sub of |parent|, or nsubs. */
static size_t first_sub(const job *j, int64_t parent)
{
	size_t lo = 0, hi = j->nsubs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (j->subs[mid].parent < parent) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

/* "LABEL <64 hex> <hex>": an NSS key log line. */
static int keylog_line(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
	if (n == 0 || s[n] != ' ' || strlen(s) >= KEYLOG_LINE_MAX) {
		return 0;
	}
	s += n + 1;
	n = strspn(s, "0123456789abcdefABCDEF");
	if (n != 64 || s[n] != ' ') {
		return 0;
	}
	s += n + 1;
	n = strspn(s, "0123456789abcdefABCDEF");
	return n > 0 && n % 2 == 0 && s[n] == '\0';
}

static int cmp_line(const void *a, const void *b)
{
	const line *x = a, *y = b;
	int c = strcmp(x->text, y->text);
	return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

static int cmp_order(const void *a, const void *b)
{
	const line *x = a, *y = b;
	return (x->order > y->order) - (x->order < y->order);
}

static int keylog_row(job *j, sqlite3_stmt *st)
{
	const char *t = (const char *)sqlite3_column_text(st, 0);
	if (t == NULL || !keylog_line(t)) {
		return 0;
	}
	int rc = grow(j, &j->lines, &j->lines_cap, j->nlines, sizeof(line),
		      KEYLOG_MAX_LINES, "key log lines");
	if (rc != 0) {
		return rc;
	}
	line *l = &j->lines[j->nlines];
	*l = (line){.text = strdup(t), .order = j->nlines};
	if (l->text == NULL) {
		return fail(j, SIM_ENOMEM, "out of memory");
	}
	j->nlines++;
	return 0;
}

static int read_keylog(job *j)
{
	int rc = each_row(j,
			  "SELECT detail FROM tls WHERE run = ?1 AND event IN "
			  "('keys', 'keylog') AND detail IS NOT NULL ORDER BY "
			  "seq",
			  "reading the tls rows", keylog_row);
	if (rc != 0 || j->nlines == 0) {
		return rc;
	}
	/* Both ends log the same secrets: keep each line's first copy. */
	qsort(j->lines, j->nlines, sizeof(line), cmp_line);
	for (size_t i = 1; i < j->nlines; i++) {
		j->lines[i].dup =
		    strcmp(j->lines[i].text, j->lines[i - 1].text) == 0;
	}
	qsort(j->lines, j->nlines, sizeof(line), cmp_order);
	for (size_t i = 0; i < j->nlines; i++) {
		j->st.keylog_lines += !j->lines[i].dup;
	}
	return 0;
}

static int order_row(job *j, sqlite3_stmt *st)
{
	if (sqlite3_column_int64(st, 1) > j->end_ns) {
		j->st.in_flight++; /* arrives after the run ended */
		return 0;
	}
	int rc = grow(j, &j->order, &j->order_cap, j->norder, sizeof(int64_t),
		      SIZE_MAX, "packets");
	if (rc == 0) {
		j->order[j->norder++] = sqlite3_column_int64(st, 0);
	}
	return rc;
}

static int lost_row(job *j, sqlite3_stmt *st)
{
	j->st.lost = (uint64_t)sqlite3_column_int64(st, 0);
	return 0;
}

/* The packet rows to write, as seqs in capture order (see pcap.h), and
 * the count of lost ones. At the receiver, packets that arrive at the
 * same virtual time are in the order they were sent: the link is the
 * wire, and which one the receiver took first is the scheduler's
 * tie-break, recorded in the op table. (Taken in that order instead, a
 * Handshake datagram can come before the Initial with the ServerHello,
 * and Wireshark cannot decrypt it.) At the sender, packets sent at the
 * same time are in the order they were sent, their ids: a packet the link
 * held back (a reorder fault) has its row written only when it leaves. */
static int read_order(job *j)
{
	static const char *const sql[] = {
	    [SIM_PCAP_AT_RECEIVER] =
		"SELECT seq, deliver_ns FROM packet WHERE run = ?1 AND parent "
		"IS NULL AND deliver_ns IS NOT NULL ORDER BY deliver_ns, "
		"send_ns, seq",
	    [SIM_PCAP_AT_SENDER] =
		"SELECT seq, send_ns FROM packet WHERE run = ?1 AND parent IS "
		"NULL AND dup_of IS NULL ORDER BY send_ns, id",
	};
	int rc = each_row(j, sql[j->o->at], "reading the packets", order_row);
	return rc != 0 ? rc
		       : each_row(j,
				  "SELECT count(*) FROM packet WHERE run = ?1 "
				  "AND parent IS NULL AND deliver_ns IS NULL "
				  "AND dup_of IS NULL",
				  "reading the packets", lost_row);
}

/* --- headers ------------------------------------------------------------- */

static void be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
	be16(p, v >> 16);
	be16(p + 2, v);
}

/* The one's-complement sum of big-endian 16-bit words, unfolded. */
static uint64_t sum16(uint64_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2) {
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	}
	if (n & 1) {
		sum += (uint32_t)p[n - 1] << 8;
	}
	return sum;
}

static uint16_t fold(uint64_t sum)
{
	while (sum >> 16) {
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return (uint16_t)~sum;
}

static uint64_t pseudo_sum(uint32_t src, uint32_t dst, int proto, size_t len)
{
	uint8_t ph[12];
	be32(ph, src);
	be32(ph + 4, dst);
	ph[8] = 0;
	ph[9] = (uint8_t)proto;
	be16(ph + 10, (uint32_t)len);
	return sum16(0, ph, sizeof(ph));
}

/* Builds IPv4 + transport header + payload in j->pkt. Returns 0, or 1 if
 * the row cannot be a packet (too big for IPv4, a TCP segment shorter than
 * a TCP header), or SIM_ENOMEM. */
static int build(job *j, int tcp, const node *src, const node *dst,
		 uint16_t ip_id, const uint8_t *data, size_t len)
{
	size_t l4 = tcp ? len : UDP_HDR + len;
	if (IP_HDR + l4 > IP_MAX || (tcp && len < TCP_HDR_MIN)) {
		return 1;
	}
	bytes *b = &j->pkt;
	b->len = 0;
	uint8_t *h = b_room(b, IP_HDR + l4);
	if (h == NULL) {
		return SIM_ENOMEM;
	}
	memset(h, 0, IP_HDR + (tcp ? 0 : UDP_HDR));
	h[0] = 0x45;
	be16(h + 2, (uint32_t)(IP_HDR + l4));
	be16(h + 4, ip_id);
	be16(h + 6, 0x4000); /* DF */
	h[8] = 64;
	h[9] = tcp ? PROTO_TCP : PROTO_UDP;
	be32(h + 12, src->addr);
	be32(h + 16, dst->addr);
	be16(h + 10, fold(sum16(0, h, IP_HDR)));
	uint8_t *t = h + IP_HDR;
	uint64_t ps = pseudo_sum(src->addr, dst->addr, h[9], l4);
	if (tcp) {
		memcpy(t, data, len);
		if (fold(sum16(ps, t, l4)) != 0) {
			/* Not right for these addresses: recompute. */
			be16(t + 16, 0);
			be16(t + 16, fold(sum16(ps, t, l4)));
			j->st.tcp_recomputed++;
		}
		return 0;
	}
	be16(t, src->udp_port);
	be16(t + 2, dst->udp_port);
	be16(t + 4, (uint32_t)l4);
	if (len > 0) { /* an empty blob reads as NULL */
		memcpy(t + UDP_HDR, data, len);
	}
	uint16_t c = fold(sum16(ps, t, l4));
	be16(t + 6, c == 0 ? 0xffff : c);
	return 0;
}

/* --- blocks -------------------------------------------------------------- */

static const char *at_name(enum sim_pcap_at at)
{
	return at == SIM_PCAP_AT_SENDER ? "sender (send times)"
					: "receiver (delivery times)";
}

static int write_header(job *j)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(j->db,
			       "SELECT scenario, seed, params, outcome, digest "
			       "FROM run WHERE id = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		return sql_fail(j, "reading the runs");
	}
	sqlite3_bind_int64(st, 1, j->run);
	char c[COMMENT_MAX] = "";
	if (sqlite3_step(st) == SQLITE_ROW) {
		const char *params = (const char *)sqlite3_column_text(st, 2);
		char set[1024] = "";
		size_t n = 0;
		/* "k=v\n" lines as " --set k=v" */
		for (const char *p = params ? params : ""; *p != '\0';) {
			size_t k = strcspn(p, "\n");
			if (n < sizeof(set)) {
				n += (size_t)snprintf(set + n, sizeof(set) - n,
						      " --set %.*s", (int)k, p);
			}
			p += k + (p[k] == '\n');
		}
		const char *scen = (const char *)sqlite3_column_text(st, 0);
		const char *out = (const char *)sqlite3_column_text(st, 3);
		const char *dig = (const char *)sqlite3_column_text(st, 4);
		snprintf(c, sizeof(c),
			 "tlsim run %lld: %s --seed %llu%s; outcome %s, "
			 "digest %.16s; capture at the %s",
			 (long long)j->run, scen ? scen : "?",
			 (unsigned long long)sqlite3_column_int64(st, 1), set,
			 out ? out : "?", dig ? dig : "-", at_name(j->o->at));
	}
	sqlite3_finalize(st);

	bytes *b = &j->blk;
	block_begin(b, BT_SHB);
	b_u32(b, BYTE_ORDER_MAGIC);
	b_u16(b, 1); /* version 1.0 */
	b_u16(b, 0);
	b_u32(b, 0xffffffffu); /* section length: not given */
	b_u32(b, 0xffffffffu);
	b_opt_text(b, OPT_COMMENT, c);
	b_opt_text(b, SHB_USERAPPL, "tlsim " TLSIM_VERSION);
	b_opt(b, OPT_END, NULL, 0);
	int rc = block_end(j, b);
	for (size_t i = 0; rc == 0 && i < j->nlinks; i++) {
		char d[512];
		snprintf(d, sizeof(d), "tlsim link %s, capture at the %s",
			 j->links[i], at_name(j->o->at));
		uint8_t resol = 9; /* 10^-9 s */
		block_begin(b, BT_IDB);
		b_u16(b, LINKTYPE_RAW);
		b_u16(b, 0);
		b_u32(b, SNAPLEN);
		b_opt_text(b, IF_NAME, j->links[i]);
		b_opt_text(b, IF_DESCRIPTION, d);
		b_opt(b, IF_TSRESOL, &resol, 1);
		b_opt(b, OPT_END, NULL, 0);
		rc = block_end(j, b);
	}
	if (rc == 0 && j->st.keylog_lines > 0) {
		block_begin(b, BT_DSB);
		b_u32(b, SECRETS_TLS_KEYLOG);
		size_t at = b->len;
		b_u32(b, 0); /* secrets length, below */
		for (size_t i = 0; i < j->nlines; i++) {
			if (!j->lines[i].dup) {
				b_put(b, j->lines[i].text,
				      strlen(j->lines[i].text));
				b_put(b, "\n", 1);
			}
		}
		if (!b->err) {
			le32(b->p + at, (uint32_t)(b->len - at - 4));
		}
		b_pad(b);
		rc = block_end(j, b);
	}
	return rc;
}

static void fmt_ns(char *buf, size_t n, sim_time t)
{
	snprintf(buf, n, "%lld.%09lld", (long long)(t / SIM_S),
		 (long long)(t % SIM_S));
}

/* The packet's comment: who, when, fate, what (see pcap.h). */
static void comment(job *j, sqlite3_stmt *st, char *c, size_t cap)
{
	int64_t id = sqlite3_column_int64(st, 0);
	const char *fate = (const char *)sqlite3_column_text(st, 7);
	const char *reason = (const char *)sqlite3_column_text(st, 8);
	const char *ptype = (const char *)sqlite3_column_text(st, 10);
	const char *frames = (const char *)sqlite3_column_text(st, 11);
	int64_t dup_of = sqlite3_column_type(st, 9) == SQLITE_NULL
			     ? -1
			     : sqlite3_column_int64(st, 9);
	char sent[32], dl[48] = "never delivered";
	fmt_ns(sent, sizeof(sent), sqlite3_column_int64(st, 5));
	if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
		strcpy(dl, "delivered ");
		fmt_ns(dl + 10, sizeof(dl) - 10, sqlite3_column_int64(st, 6));
	}
	size_t n = (size_t)snprintf(
	    c, cap, "tlsim packet %lld, %s %s->%s, sent %s, %s; %s",
	    (long long)id, (const char *)sqlite3_column_text(st, 1),
	    (const char *)sqlite3_column_text(st, 2),
	    (const char *)sqlite3_column_text(st, 3), sent, dl,
	    fate ? fate : "?");
	if (n < cap && reason != NULL) {
		n += (size_t)snprintf(c + n, cap - n, " (%s)", reason);
	}
	if (n < cap && dup_of >= 0) {
		n += (size_t)snprintf(c + n, cap - n, ", copy of packet %lld",
				      (long long)dup_of);
	}
	if (n < cap && reason != NULL && strstr(reason, "corrupt:") != NULL) {
		n += (size_t)snprintf(c + n, cap - n,
				      ", bytes as sent (the receiver got "
				      "them with the bits flipped)");
	}
	if (n < cap && (ptype != NULL || frames != NULL)) {
		n += (size_t)snprintf(
		    c + n, cap - n, "; %s%s%s", ptype ? ptype : "",
		    ptype && frames ? " " : "", frames ? frames : "");
	}
	/* A copy's packets are its original's. */
	int64_t parent = dup_of >= 0 ? dup_of : id;
	for (size_t i = first_sub(j, parent);
	     n < cap && i < j->nsubs && j->subs[i].parent == parent; i++) {
		n += (size_t)snprintf(c + n, cap - n, "; %s", j->subs[i].text);
	}
}

static int write_packet(job *j, sqlite3_stmt *st)
{
	const char *proto = (const char *)sqlite3_column_text(st, 4);
	int tcp = proto != NULL && strcmp(proto, "tcp") == 0;
	int udp = proto != NULL &&
		  (strcmp(proto, "quic") == 0 || strcmp(proto, "echo") == 0 ||
		   strcmp(proto, "udp") == 0);
	const node *src =
	    find_node(j, (const char *)sqlite3_column_text(st, 2));
	const node *dst =
	    find_node(j, (const char *)sqlite3_column_text(st, 3));
	if (src == NULL || dst == NULL) {
		return fail(j, SIM_ECORRUPT,
			    "%s: run %lld: packet %lld names a node that is "
			    "not in the node table",
			    j->o->trace_path, (long long)j->run,
			    (long long)sqlite3_column_int64(st, 0));
	}
	int64_t dup_of = sqlite3_column_type(st, 9) == SQLITE_NULL
			     ? -1
			     : sqlite3_column_int64(st, 9);
	int64_t id = sqlite3_column_int64(st, 0);
	const uint8_t *data = sqlite3_column_blob(st, 12);
	size_t len = (size_t)sqlite3_column_bytes(st, 12);
	int rc = tcp || udp
		     ? build(j, tcp, src, dst,
			     (uint16_t)(dup_of >= 0 ? dup_of : id), data, len)
		     : 1;
	if (rc != 0) {
		j->st.other += rc == 1;
		return rc == 1 ? 0 : fail(j, rc, "out of memory");
	}
	int at_sender = j->o->at == SIM_PCAP_AT_SENDER;
	uint64_t ts = (uint64_t)sqlite3_column_int64(st, at_sender ? 5 : 6);
	const char *reason = (const char *)sqlite3_column_text(st, 8);
	j->st.corrupted += reason != NULL && strstr(reason, "corrupt:");
	j->st.duplicates += dup_of >= 0;
	char c[COMMENT_MAX];
	comment(j, st, c, sizeof(c));

	bytes *b = &j->blk;
	block_begin(b, BT_EPB);
	b_u32(b, (uint32_t)link_index(
		     j, (const char *)sqlite3_column_text(st, 1)));
	b_u32(b, (uint32_t)(ts >> 32));
	b_u32(b, (uint32_t)ts);
	b_u32(b, (uint32_t)j->pkt.len);
	b_u32(b, (uint32_t)j->pkt.len);
	b_put(b, j->pkt.p, j->pkt.len);
	b_pad(b);
	b_opt_text(b, OPT_COMMENT, c);
	b_opt(b, OPT_END, NULL, 0);
	j->st.packets++;
	return block_end(j, b);
}

static int write_packets(job *j)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
		j->db,
		"SELECT id, coalesce(link, ''), src, dst, proto, send_ns, "
		"deliver_ns, fate, reason, dup_of, ptype, frames, data "
		"FROM packet WHERE run = ?1 AND seq = ?2",
		-1, &st, NULL) != SQLITE_OK) {
		return sql_fail(j, "reading the packets");
	}
	sqlite3_bind_int64(st, 1, j->run);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < j->norder; i++) {
		sqlite3_bind_int64(st, 2, j->order[i]);
		int s = sqlite3_step(st);
		rc = s == SQLITE_ROW ? write_packet(j, st)
				     : sql_fail(j, "reading the packets");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static int open_outputs(job *j)
{
	int rc = out_open(j, &j->out, j->o->out_path, "pcapng");
	if (rc == 0 && j->o->keylog_path != NULL) {
		rc = out_open(j, &j->keylog, j->o->keylog_path, "key log");
	}
	return rc;
}

/* Closes both outputs, then renames both into place. */
static int finish_outputs(job *j)
{
	int rc = out_close(j, &j->out, "pcapng");
	if (rc == 0) {
		rc = out_close(j, &j->keylog, "key log");
	}
	if (rc == 0) {
		rc = out_commit(j, &j->out, "pcapng");
	}
	return rc != 0 ? rc : out_commit(j, &j->keylog, "key log");
}

static int write_keylog(job *j)
{
	int rc = 0;
	if (j->keylog.f == NULL) {
		return 0;
	}
	for (size_t i = 0; rc == 0 && i < j->nlines; i++) {
		if (!j->lines[i].dup) {
			rc = out_write(j, &j->keylog, j->lines[i].text,
				       strlen(j->lines[i].text), "key log");
		}
		if (rc == 0 && !j->lines[i].dup) {
			rc = out_write(j, &j->keylog, "\n", 1, "key log");
		}
	}
	return rc;
}

static void job_free(job *j)
{
	sqlite3_close(j->db);
	for (size_t i = 0; i < j->nnodes; i++) {
		free(j->nodes[i].name);
	}
	free(j->nodes);
	for (size_t i = 0; i < j->nlinks; i++) {
		free(j->links[i]);
	}
	free(j->links);
	for (size_t i = 0; i < j->nsubs; i++) {
		free(j->subs[i].text);
	}
	free(j->subs);
	for (size_t i = 0; i < j->nlines; i++) {
		free(j->lines[i].text);
	}
	free(j->lines);
	free(j->order);
	free(j->blk.p);
	free(j->pkt.p);
	out_discard(&j->out);
	out_discard(&j->keylog);
}

int sim_pcap_export(const sim_pcap_opts *o, sim_pcap_stats *stats, char *err,
		    size_t errlen)
{
	job j = {.o = o, .err = err, .errlen = errlen};
	int empty = 0;
	if (stats != NULL) {
		memset(stats, 0, sizeof(*stats));
	}
	if (o->trace_path == NULL || o->out_path == NULL ||
	    (o->at != SIM_PCAP_AT_RECEIVER && o->at != SIM_PCAP_AT_SENDER)) {
		return fail(&j, SIM_EINVAL, "sim_pcap_export: bad options");
	}
	if (o->keylog_path != NULL &&
	    strcmp(o->keylog_path, o->out_path) == 0) {
		return fail(&j, SIM_EINVAL,
			    "--keylog %s is also the pcapng output (-o)",
			    o->keylog_path);
	}
	int rc =
	    sim_trace_open_readonly(o->trace_path, &j.db, &empty, err, errlen);
	if (rc == 0 && empty) {
		rc = fail(&j, SIM_EINVAL, "%s: holds no runs", o->trace_path);
	}
	static int (*const steps[])(job *) = {
	    find_run,      read_links,   read_nodes,     read_subs,
	    read_keylog,   read_order,   open_outputs,   write_header,
	    write_packets, write_keylog, finish_outputs,
	};
	for (size_t i = 0; rc == 0 && i < sizeof(steps) / sizeof(steps[0]);
	     i++) {
		rc = steps[i](&j);
	}
	if (stats != NULL) {
		*stats = j.st;
	}
	job_free(&j);
	return rc;
}

/* sim/report.c: reading one run of a trace for `tlsim report`, the race
 * queries' verdicts, and the command line. */
#include "sim/report.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "sim/err.h"
#include "sim/html.h"
#include "sim/ladder.h"
#include "sim/lua.h"
#include "sim/trace.h"

#define POOL_CHUNK (64u << 10)
#define QUERY_BYTES_MAX (1u << 20)
/* A race query may run for about this many SQLite VM steps. */
#define QUERY_STEPS_MAX 2000000000LL
#define QUERY_PROGRESS_EVERY 10000
/* How far back a coalesced packet looks for its datagram. */
#define PARENT_LOOKBACK 4096
/* Packets read to put the lanes in order of first appearance. */
#define LANE_SCAN_PACKETS 10000
#define STR_(x) #x
#define STR(x) STR_(x)

/* --- a pool of strings and arrays, freed at once -------------------------- */

typedef struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
} chunk;

struct sim_report_pool {
	chunk *head;
	int oom;
};

static void *pool_alloc(struct sim_report_pool *p, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (p->head == NULL || p->head->cap - p->head->used < n) {
		size_t cap = n > POOL_CHUNK ? n : POOL_CHUNK;
		chunk *c = malloc(sizeof(*c) + cap);
		if (c == NULL) {
			p->oom = 1;
			return NULL;
		}
		c->next = p->head;
		c->used = 0;
		c->cap = cap;
		p->head = c;
	}
	void *r = p->head->data + p->head->used;
	p->head->used += n;
	return r;
}

static void pool_free(struct sim_report_pool *p)
{
	while (p != NULL && p->head != NULL) {
		chunk *c = p->head;
		p->head = c->next;
		free(c);
	}
}

/* utf8_len returns the length of the valid UTF-8 sequence at |s| (|n|
 * bytes left) and its code point in |*cp|, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0];
	size_t len;
	uint32_t c, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if (b >= 0xc2 && b <= 0xdf) {
		len = 2, c = b & 0x1f, min = 0x80;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3, c = b & 0x0f, min = 0x800;
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4, c = b & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
		return 0;
	}
	*cp = c;
	return len;
}

/* unsafe: code points shown as \u{NNNN}: C1 controls, the line and
 * paragraph separators, and the bidirectional controls that can make a
 * terminal or a page show text in another order than it is. */
static int unsafe(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || c == 0x200e || c == 0x200f ||
	       (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* pool_text copies |n| bytes of trace text into the pool, display-safe
 * (see report.h). NULL stays NULL. */
static const char *pool_text(struct sim_report_pool *p, const void *v, size_t n)
{
	if (v == NULL) {
		return NULL;
	}
	const unsigned char *s = v;
	size_t out = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_len(s + i, n - i, &c);
		out += k == 0 || c < 0x20 || c == 0x7f ? 4 : unsafe(c) ? 10 : k;
		i += k ? k : 1;
	}
	char *d = pool_alloc(p, out + 1);
	if (d == NULL) {
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_len(s + i, n - i, &c);
		if (k == 0 || c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(d + o, 5, "\\x%02x", s[i]);
			i++;
		} else if (unsafe(c)) {
			o += (size_t)snprintf(d + o, 11, "\\u{%04x}", c);
			i += k;
		} else {
			memcpy(d + o, s + i, k);
			o += k;
			i += k;
		}
	}
	d[o] = '\0';
	return d;
}

static const char *pool_strdup(struct sim_report_pool *p, const char *s)
{
	return s ? pool_text(p, s, strlen(s)) : NULL;
}

/* col_text: column |c| of |st| as display-safe text; NULL for NULL. */
static const char *col_text(struct sim_report_pool *p, sqlite3_stmt *st, int c)
{
	if (sqlite3_column_type(st, c) == SQLITE_NULL) {
		return NULL;
	}
	const void *v = sqlite3_column_text(st, c);
	return pool_text(p, v ? v : "", (size_t)sqlite3_column_bytes(st, c));
}

static int64_t col_int(sqlite3_stmt *st, int c)
{
	return sqlite3_column_type(st, c) == SQLITE_NULL
		   ? -1
		   : sqlite3_column_int64(st, c);
}

static int fail(char *err, size_t n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t n, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
	return code;
}

/* --- reading the run ------------------------------------------------------ */

typedef struct loader {
	sim_report *r;
	sqlite3 *db;
	char *err;
	size_t errlen;
} loader;

static int sql_err(loader *l, const char *doing)
{
	if (l->r->pool->oom) {
		return fail(l->err, l->errlen, SIM_ENOMEM, "out of memory");
	}
	return fail(l->err, l->errlen, SIM_EIO, "%s: %s: %s", l->r->path, doing,
		    sqlite3_errmsg(l->db));
}

static int prep(loader *l, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(l->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return sql_err(l, "reading the trace");
	}
	sqlite3_bind_int64(*st, 1, l->r->run);
	return 0;
}

static int64_t query_i64(loader *l, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	if (*rc != 0 || (*rc = prep(l, sql, &st)) != 0) {
		return 0;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		v = col_int(st, 0);
	} else {
		*rc = sql_err(l, "reading the trace");
	}
	sqlite3_finalize(st);
	return v;
}

static int load_run(loader *l, int64_t want)
{
	sim_report *r = l->r;
	int rc = 0;
	r->runs = query_i64(l, "SELECT count(*) FROM run", &rc);
	r->first_run = query_i64(l, "SELECT ifnull(min(id), 0) FROM run", &rc);
	r->last_run = query_i64(l, "SELECT ifnull(max(id), 0) FROM run", &rc);
	if (rc != 0) {
		return rc;
	}
	if (r->runs == 0) {
		return fail(l->err, l->errlen, SIM_EINVAL,
			    "%s: no runs in this trace", r->path);
	}
	r->run = want > 0 ? want : r->last_run;
	sqlite3_stmt *st;
	if ((rc = prep(l,
		       "SELECT scenario, scenario_sha256, seed, params, "
		       "version, outcome, reason, end_ns, events, rows, "
		       "checks, checks_failed, digest FROM run WHERE id = ?1",
		       &st)) != 0) {
		return rc;
	}
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		struct sim_report_pool *p = r->pool;
		r->scenario = col_text(p, st, 0);
		r->scenario_sha256 = col_text(p, st, 1);
		r->seed = (uint64_t)sqlite3_column_int64(st, 2);
		r->params = col_text(p, st, 3);
		r->version = col_text(p, st, 4);
		r->outcome = col_text(p, st, 5);
		r->reason = col_text(p, st, 6);
		r->end_ns = col_int(st, 7);
		r->events = col_int(st, 8);
		r->rows = col_int(st, 9);
		r->checks_total = col_int(st, 10);
		r->checks_failed = col_int(st, 11);
		r->digest = col_text(p, st, 12);
	} else if (s == SQLITE_DONE) {
		rc = fail(l->err, l->errlen, SIM_EINVAL,
			  "%s: no run %lld (runs %lld..%lld)", r->path,
			  (long long)r->run, (long long)r->first_run,
			  (long long)r->last_run);
	} else {
		rc = sql_err(l, "reading the run");
	}
	sqlite3_finalize(st);
	return rc;
}

static int lane_of(const sim_report *r, const char *name)
{
	for (int i = 0; name != NULL && i < r->nlanes; i++) {
		if (strcmp(r->lanes[i], name) == 0) {
			return i;
		}
	}
	return -1;
}

static void add_lane(sim_report *r, const char *name, const char *kind)
{
	if (name != NULL && lane_of(r, name) < 0 &&
	    r->nlanes < SIM_REPORT_MAX_LANES) {
		r->lane_kind[r->nlanes] = kind;
		r->lanes[r->nlanes++] = name;
	}
}

static int load_lanes(loader *l)
{
	sim_report *r = l->r;
	sqlite3_stmt *st;
	const char *names[SIM_REPORT_MAX_LANES], *kinds[SIM_REPORT_MAX_LANES];
	int n = 0, rc = prep(l,
			     "SELECT name, kind FROM node WHERE run = ?1 AND "
			     "kind NOT IN ('world', 'script') ORDER BY seq",
			     &st);
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		/* A damaged trace may hold a NULL name: not a lane. */
		const char *name = col_text(r->pool, st, 0);
		if (n < SIM_REPORT_MAX_LANES && name != NULL) {
			names[n] = name;
			kinds[n++] = col_text(r->pool, st, 1);
		}
	}
	sqlite3_finalize(st);
	if (rc == 0) {
		rc = prep(
		    l,
		    "SELECT src, dst FROM packet WHERE run = ?1 AND "
		    "parent IS NULL ORDER BY seq LIMIT " STR(LANE_SCAN_PACKETS),
		    &st);
	}
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		for (int c = 0; c < 2; c++) {
			const char *name = col_text(r->pool, st, c);
			const char *kind = NULL;
			for (int i = 0; name != NULL && i < n; i++) {
				if (strcmp(names[i], name) == 0) {
					kind = kinds[i];
				}
			}
			add_lane(r, name, kind);
		}
	}
	sqlite3_finalize(st);
	for (int i = 0; rc == 0 && i < n; i++) {
		add_lane(r, names[i], kinds[i]);
	}
	return rc;
}

static int load_checks(loader *l)
{
	sim_report *r = l->r;
	sqlite3_stmt *st;
	int rc = prep(l,
		      "SELECT time_ns, ok, message, location, detail FROM "
		      "\"check\" WHERE run = ?1 ORDER BY seq",
		      &st);
	size_t cap = 0;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (r->nchecks == SIM_REPORT_MAX_CHECKS) {
			r->checks_cut = 1;
			break;
		}
		if (r->nchecks == cap) {
			cap = cap ? cap * 2 : 16;
			sim_report_check *c =
			    realloc(r->checks, cap * sizeof(*c));
			if (c == NULL) {
				rc = fail(l->err, l->errlen, SIM_ENOMEM,
					  "out of memory");
				break;
			}
			r->checks = c;
		}
		sim_report_check *c = &r->checks[r->nchecks++];
		c->time = col_int(st, 0);
		c->ok = (int)col_int(st, 1) == 1;
		c->message = col_text(r->pool, st, 2);
		c->location = col_text(r->pool, st, 3);
		c->detail = col_text(r->pool, st, 4);
	}
	sqlite3_finalize(st);
	return rc;
}

static int load_totals(loader *l)
{
	sim_report *r = l->r;
	int rc = 0;
	r->n_packet_rows =
	    query_i64(l, "SELECT count(*) FROM packet WHERE run = ?1", &rc);
	r->n_arrows = query_i64(l,
				"SELECT count(*) FROM packet WHERE run = ?1 "
				"AND parent IS NULL",
				&rc);
	r->n_lost_rows = query_i64(l,
				   "SELECT count(*) FROM packet WHERE run = "
				   "?1 AND fate = 'lost'",
				   &rc);
	r->n_lost_arrows = query_i64(l,
				     "SELECT count(*) FROM packet WHERE run = "
				     "?1 AND fate = 'lost' AND parent IS NULL",
				     &rc);
	r->n_ops = query_i64(l, "SELECT count(*) FROM op WHERE run = ?1", &rc);
	r->n_tls = query_i64(l, "SELECT count(*) FROM tls WHERE run = ?1", &rc);
	return rc;
}

/* --- the ladder: the tables merged in time order -------------------------- */

enum { C_OP, C_TLS, C_PACKET, C_LOG, C_CHECK, C_COUNT };

/* One table read in seq order within the window. The order of the
 * entries is the order of items at one time (sim_report_kind). */
static const struct source {
	const char *table, *time_col, *cols, *filter;
} sources[C_COUNT] = {
    {"op", "time_ns",
     "node, op_id, op_type, action, depth, cause_kind, cause_id, detail", ""},
    {"tls", "time_ns", "node, event, level, direction, code, detail",
     " AND event NOT IN ('state', 'keylog')"},
    {"packet", "send_ns",
     "id, parent, link, src, dst, proto, deliver_ns, len, fate, reason, "
     "dup_of, ptype, space, pn, frames, hs_state",
     ""},
    {"log", "time_ns", "node, text", ""},
    {"\"check\"", "time_ns", "ok, message, location, detail", " AND ok = 0"},
};

typedef struct cursor {
	sqlite3_stmt *st;
	int live; /* st holds a row */
	sim_time time;
	int64_t seq;
} cursor;

static const char *filter_of(const sim_report_opts *o, int c)
{
	return c == C_TLS && o->tls_states ? "" : sources[c].filter;
}

static int cur_step(loader *l, cursor *c)
{
	int s = sqlite3_step(c->st);
	c->live = s == SQLITE_ROW;
	if (c->live) {
		c->seq = sqlite3_column_int64(c->st, 0);
		c->time = sqlite3_column_int64(c->st, 1);
		return 0;
	}
	return s == SQLITE_DONE ? 0 : sql_err(l, "reading the rows");
}

static int item_push(loader *l, size_t *cap, sim_report_item **it)
{
	sim_report *r = l->r;
	if (r->nitems == *cap) {
		size_t n = *cap ? *cap * 2 : 256;
		sim_report_item *a = realloc(r->items, n * sizeof(*a));
		if (a == NULL) {
			return fail(l->err, l->errlen, SIM_ENOMEM,
				    "out of memory");
		}
		r->items = a;
		*cap = n;
	}
	*it = &r->items[r->nitems++];
	memset(*it, 0, sizeof(**it));
	return 0;
}

static void read_pkt(struct sim_report_pool *p, sqlite3_stmt *st,
		     sim_report_pkt *k)
{
	k->send_ns = sqlite3_column_int64(st, 1);
	k->id = col_int(st, 2);
	k->parent = col_int(st, 3);
	k->link = col_text(p, st, 4);
	k->src = col_text(p, st, 5);
	k->dst = col_text(p, st, 6);
	k->proto = col_text(p, st, 7);
	k->deliver_ns = col_int(st, 8);
	k->len = col_int(st, 9);
	k->fate = col_text(p, st, 10);
	k->reason = col_text(p, st, 11);
	k->dup_of = col_int(st, 12);
	k->ptype = col_text(p, st, 13);
	k->space = col_text(p, st, 14);
	k->pn = col_int(st, 15);
	k->frames = col_text(p, st, 16);
	k->hs_state = col_text(p, st, 17);
}

/* attach_sub adds the coalesced packet in the current row of |st| to its
 * datagram, one of the last items; one whose datagram is not shown is
 * left out (its datagram is outside the window). */
static int attach_sub(loader *l, sqlite3_stmt *st)
{
	sim_report *r = l->r;
	int64_t parent = sqlite3_column_int64(st, 3);
	size_t stop =
	    r->nitems > PARENT_LOOKBACK ? r->nitems - PARENT_LOOKBACK : 0;
	for (size_t i = r->nitems; i-- > stop;) {
		sim_report_item *it = &r->items[i];
		if (it->kind != SIM_REPORT_PACKET || it->u.pkt.p.id != parent) {
			continue;
		}
		if (it->u.pkt.nsub == SIM_REPORT_MAX_SUB) {
			it->u.pkt.more_sub++;
			return 0;
		}
		sim_report_pkt *s = realloc(
		    it->u.pkt.sub, (size_t)(it->u.pkt.nsub + 1) * sizeof(*s));
		if (s == NULL) {
			return fail(l->err, l->errlen, SIM_ENOMEM,
				    "out of memory");
		}
		it->u.pkt.sub = s;
		read_pkt(r->pool, st, &s[it->u.pkt.nsub++]);
		return 0;
	}
	return 0;
}

/* take turns the head row(s) of cursor |c| into an item. */
static int take(loader *l, int c, cursor *cur, size_t *cap)
{
	sim_report *r = l->r;
	struct sim_report_pool *p = r->pool;
	sqlite3_stmt *st = cur->st;
	sim_report_item *it = NULL;
	int rc = item_push(l, cap, &it);
	if (rc != 0) {
		return rc;
	}
	it->kind = (sim_report_kind)c;
	it->time = cur->time;
	it->seq = cur->seq;
	it->lane = -1;
	if (c != C_CHECK && c != C_PACKET) {
		it->node = col_text(p, st, 2);
		it->lane = lane_of(r, it->node);
	}
	switch (c) {
	case C_OP: {
		int64_t id = col_int(st, 3);
		it->u.op.op_id = id;
		it->u.op.op_type = col_text(p, st, 4);
		it->u.op.cause_kind = col_text(p, st, 7);
		it->u.op.cause_id = col_int(st, 8);
		it->u.op.detail = col_text(p, st, 9);
		/* Steps of this op at this time, until another row. */
		do {
			sim_report_step *s = &it->u.op.steps[it->u.op.nsteps++];
			s->action = col_text(p, st, 5);
			s->depth = col_int(st, 6);
			const char *d = col_text(p, st, 9);
			if (d != NULL) {
				it->u.op.detail = d;
			}
			if ((rc = cur_step(l, cur)) != 0) {
				return rc;
			}
		} while (cur->live && it->u.op.nsteps < SIM_REPORT_MAX_STEPS &&
			 cur->time == it->time && col_int(st, 3) == id &&
			 it->node != NULL &&
			 sqlite3_column_type(st, 2) == SQLITE_TEXT &&
			 strcmp((const char *)sqlite3_column_text(st, 2),
				it->node) == 0);
		return 0;
	}
	case C_TLS:
		it->u.tls.event = col_text(p, st, 3);
		it->u.tls.level = col_text(p, st, 4);
		it->u.tls.direction = col_text(p, st, 5);
		it->u.tls.code = col_int(st, 6);
		it->u.tls.detail = col_text(p, st, 7);
		break;
	case C_PACKET:
		read_pkt(p, st, &it->u.pkt.p);
		it->node = it->u.pkt.p.src;
		it->lane = lane_of(r, it->u.pkt.p.src);
		it->u.pkt.dst_lane = lane_of(r, it->u.pkt.p.dst);
		break;
	case C_LOG:
		it->u.log.text = col_text(p, st, 3);
		break;
	default:
		it->u.check.ok = (int)col_int(st, 2) == 1;
		it->u.check.message = col_text(p, st, 3);
		it->u.check.location = col_text(p, st, 4);
		it->u.check.detail = col_text(p, st, 5);
		break;
	}
	return cur_step(l, cur);
}

/* Coalesced packets are not items: the packet cursor attaches them to
 * their datagram as it passes them. */
static int skip_subs(loader *l, cursor *cur)
{
	int rc = 0;
	while (rc == 0 && cur->live &&
	       sqlite3_column_type(cur->st, 3) != SQLITE_NULL) {
		rc = attach_sub(l, cur->st);
		if (rc == 0) {
			rc = cur_step(l, cur);
		}
	}
	return rc;
}

static int count_rows(loader *l, int c, const sim_report_opts *o,
		      const char *cond, sim_time t, int64_t *out)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM %s WHERE run = ?1 AND %s %s ?2%s",
		 sources[c].table, sources[c].time_col, cond, filter_of(o, c));
	sqlite3_stmt *st;
	int rc = prep(l, sql, &st);
	if (rc == 0) {
		sqlite3_bind_int64(st, 2, t);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*out += sqlite3_column_int64(st, 0);
		} else {
			rc = sql_err(l, "counting rows");
		}
	}
	sqlite3_finalize(st);
	return rc;
}

static int load_items(loader *l, const sim_report_opts *o)
{
	sim_report *r = l->r;
	cursor cur[C_COUNT] = {{0}};
	size_t cap = 0;
	int rc = 0;
	for (int c = 0; rc == 0 && c < C_COUNT; c++) {
		char sql[512];
		snprintf(sql, sizeof(sql),
			 "SELECT seq, %s, %s FROM %s WHERE run = ?1 AND %s "
			 "BETWEEN ?2 AND ?3%s ORDER BY seq",
			 sources[c].time_col, sources[c].cols, sources[c].table,
			 sources[c].time_col, filter_of(o, c));
		if ((rc = prep(l, sql, &cur[c].st)) == 0) {
			sqlite3_bind_int64(cur[c].st, 2, r->from_ns);
			sqlite3_bind_int64(cur[c].st, 3, r->to_ns);
			rc = cur_step(l, &cur[c]);
		}
	}
	for (;;) {
		if (rc == 0) {
			rc = skip_subs(l, &cur[C_PACKET]);
		}
		int best = -1;
		for (int c = 0; rc == 0 && c < C_COUNT; c++) {
			if (cur[c].live &&
			    (best < 0 || cur[c].time < cur[best].time)) {
				best = c;
			}
		}
		if (rc != 0 || best < 0) {
			break;
		}
		if (r->nitems == r->limit) {
			/* Count what is left, coalesced packets too. */
			for (int c = 0; rc == 0 && c < C_COUNT; c++) {
				while (rc == 0 && cur[c].live) {
					r->rows_past_limit++;
					rc = cur_step(l, &cur[c]);
				}
			}
			break;
		}
		rc = take(l, best, &cur[best], &cap);
	}
	for (int c = 0; c < C_COUNT; c++) {
		sqlite3_finalize(cur[c].st);
	}
	for (int c = 0; rc == 0 && c < C_COUNT; c++) {
		rc = count_rows(l, c, o, "<", r->from_ns, &r->rows_before);
		if (rc == 0) {
			rc = count_rows(l, c, o, ">", r->to_ns, &r->rows_after);
		}
	}
	if (rc == 0 && !o->tls_states) {
		sqlite3_stmt *st;
		rc = prep(l,
			  "SELECT count(*) FROM tls WHERE run = ?1 AND "
			  "time_ns BETWEEN ?2 AND ?3 AND event IN ('state', "
			  "'keylog')",
			  &st);
		if (rc == 0) {
			sqlite3_bind_int64(st, 2, r->from_ns);
			sqlite3_bind_int64(st, 3, r->to_ns);
			if (sqlite3_step(st) == SQLITE_ROW) {
				r->hidden_tls = sqlite3_column_int64(st, 0);
			} else {
				rc = sql_err(l, "counting rows");
			}
		}
		sqlite3_finalize(st);
	}
	return rc == 0 && r->pool->oom
		   ? fail(l->err, l->errlen, SIM_ENOMEM, "out of memory")
		   : rc;
}

/* --- race queries --------------------------------------------------------- */

static int progress(void *steps)
{
	*(int64_t *)steps += QUERY_PROGRESS_EVERY;
	return *(int64_t *)steps > QUERY_STEPS_MAX;
}

/* row_text: "col=value ..." of the current row without its first
 * column (the run id). */
static const char *row_text(struct sim_report_pool *p, sqlite3_stmt *st)
{
	char buf[512];
	size_t k = 0;
	buf[0] = '\0';
	for (int c = 1; c < sqlite3_column_count(st) && k + 1 < sizeof(buf);
	     c++) {
		const char *v = sqlite3_column_type(st, c) == SQLITE_NULL
				    ? "NULL"
				    : (const char *)sqlite3_column_text(st, c);
		int n =
		    snprintf(buf + k, sizeof(buf) - k, "%s%s=%s", k ? " " : "",
			     sqlite3_column_name(st, c), v ? v : "");
		k = n < 0 ? k : k + (size_t)n;
	}
	return pool_strdup(p, buf);
}

/* run_statement runs one statement of a query, restricted to the run:
 * SELECT * FROM (statement) WHERE first_column = run. */
static void run_statement(loader *l, sim_report_query *q, const char *sql,
			  size_t len)
{
	sim_report *r = l->r;
	sqlite3_stmt *st = NULL;
	char *wrapped = NULL;
	int64_t steps = 0;
	/* The statement without its ';' (a subquery cannot have one). */
	while (len > 0 && (sql[len - 1] == ';' || sql[len - 1] == ' ' ||
			   sql[len - 1] == '\n' || sql[len - 1] == '\t' ||
			   sql[len - 1] == '\r')) {
		len--;
	}
	if (sqlite3_prepare_v2(l->db, sql, (int)len, &st, NULL) != SQLITE_OK) {
		q->error = pool_strdup(r->pool, sqlite3_errmsg(l->db));
		return;
	}
	if (st == NULL || sqlite3_column_count(st) == 0 ||
	    !sqlite3_stmt_readonly(st)) {
		if (st != NULL && !sqlite3_stmt_readonly(st)) {
			q->error = "not a read-only statement";
		}
		sqlite3_finalize(st);
		return;
	}
	const char *first = sqlite3_column_name(st, 0);
	size_t flen = strlen(first), wl = len + 2 * flen + 64;
	wrapped = malloc(wl);
	char *qn = malloc(2 * flen + 1);
	if (wrapped == NULL || qn == NULL) {
		r->pool->oom = 1;
		q->error = "out of memory";
		free(wrapped);
		free(qn);
		sqlite3_finalize(st);
		return;
	}
	size_t k = 0;
	for (const char *s = first; *s; s++) {
		if (*s == '"') {
			qn[k++] = '"';
		}
		qn[k++] = *s;
	}
	qn[k] = '\0';
	snprintf(wrapped, wl, "SELECT * FROM (\n%.*s\n) WHERE \"%s\" = ?1",
		 (int)len, sql, qn);
	free(qn);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(l->db, wrapped, -1, &st, NULL) != SQLITE_OK) {
		q->error = pool_strdup(r->pool, sqlite3_errmsg(l->db));
		free(wrapped);
		return;
	}
	free(wrapped);
	sqlite3_bind_int64(st, 1, r->run);
	sqlite3_progress_handler(l->db, QUERY_PROGRESS_EVERY, progress, &steps);
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (q->rows < SIM_REPORT_QUERY_ROWS) {
			q->first[q->rows] = row_text(r->pool, st);
		}
		q->rows++;
	}
	sqlite3_progress_handler(l->db, 0, NULL, NULL);
	if (s == SQLITE_INTERRUPT) {
		q->error = "stopped: ran for more than 2e9 SQLite steps";
	} else if (s != SQLITE_DONE) {
		q->error = pool_strdup(r->pool, sqlite3_errmsg(l->db));
	}
	sqlite3_finalize(st);
}

/* run_query runs the sqlite3 script |text|: lines starting with '.' (the
 * CLI's dot-commands) are dropped, every statement that returns rows is
 * run restricted to the run, and their rows add up. */
static void run_query(loader *l, sim_report_query *q, char *text)
{
	char *w = text;
	for (char *line = text; *line != '\0';) {
		char *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
		const char *t = line;
		while (t < line + n && (*t == ' ' || *t == '\t')) {
			t++;
		}
		if (*t != '.') {
			memmove(w, line, n);
			w += n;
		}
		line += n;
	}
	*w = '\0';
	const char *sql = text;
	while (q->error == NULL && *sql != '\0') {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(l->db, sql, -1, &st, &tail) !=
		    SQLITE_OK) {
			q->error =
			    pool_strdup(l->r->pool, sqlite3_errmsg(l->db));
			break;
		}
		sqlite3_finalize(st);
		if (st != NULL) {
			run_statement(l, q, sql, (size_t)(tail - sql));
		}
		if (tail == NULL || tail == sql) {
			break;
		}
		sql = tail;
	}
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_all(const char *path, size_t max, int *too_big)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		return NULL;
	}
	char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	int bad = ferror(f);
	fclose(f);
	*too_big = n > max;
	if (buf == NULL || bad || *too_big) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static int load_queries(loader *l, const char *dir)
{
	sim_report *r = l->r;
	DIR *d = opendir(dir);
	if (d == NULL) {
		return fail(l->err, l->errlen,
			    errno == ENOENT ? SIM_ENOENT : SIM_EIO,
			    "--queries: cannot open directory %s: %s", dir,
			    strerror(errno));
	}
	r->queries_dir = pool_strdup(r->pool, dir);
	char *names[SIM_REPORT_MAX_QUERIES];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < SIM_REPORT_MAX_QUERIES) {
		size_t len = strlen(e->d_name);
		if (len > 4 && e->d_name[0] != '.' &&
		    strcmp(e->d_name + len - 4, ".sql") == 0) {
			names[n] = strdup(e->d_name);
			if (names[n] != NULL) {
				n++;
			}
		}
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), by_name);
	r->queries = calloc(n ? n : 1, sizeof(*r->queries));
	int rc = r->queries
		     ? 0
		     : fail(l->err, l->errlen, SIM_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sim_report_query *q = &r->queries[r->nqueries++];
		char path[PATH_MAX];
		int too_big = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		q->name = pool_text(r->pool, names[i], strlen(names[i]) - 4);
		char *text = read_all(path, QUERY_BYTES_MAX, &too_big);
		if (text == NULL) {
			q->error = too_big
				       ? "larger than 1 MiB"
				       : pool_strdup(r->pool, strerror(errno));
			continue;
		}
		run_query(l, q, text);
		free(text);
	}
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
	}
	return rc;
}

/* --- public --------------------------------------------------------------- */

int sim_report_open(const char *path, const sim_report_opts *o,
		    sim_report **out, char *err, size_t errlen)
{
	*out = NULL;
	sim_report *r = calloc(1, sizeof(*r));
	struct sim_report_pool *pool = calloc(1, sizeof(*pool));
	if (r == NULL || pool == NULL) {
		free(r);
		free(pool);
		return fail(err, errlen, SIM_ENOMEM, "out of memory");
	}
	r->pool = pool;
	r->path = pool_strdup(pool, path);
	r->from_ns = o->from_ns;
	r->to_ns = o->to_ns;
	r->limit = o->limit ? o->limit : SIM_REPORT_LIMIT_DEFAULT;
	loader l = {.r = r, .err = err, .errlen = errlen};
	int empty_trace = 0;
	int rc = sim_trace_open_readonly(path, &l.db, &empty_trace, err,
					 errlen);
	if (rc == 0) {
		rc = load_run(&l, o->run);
	}
	if (rc == 0) {
		rc = load_lanes(&l);
	}
	if (rc == 0) {
		rc = load_checks(&l);
	}
	if (rc == 0) {
		rc = load_totals(&l);
	}
	if (rc == 0) {
		rc = load_items(&l, o);
	}
	if (rc == 0 && o->queries_dir != NULL) {
		rc = load_queries(&l, o->queries_dir);
	}
	if (rc == 0 && pool->oom) {
		rc = fail(err, errlen, SIM_ENOMEM, "out of memory");
	}
	sqlite3_close(l.db); /* ends the read transaction */
	if (rc != 0) {
		sim_report_del(r);
		return rc;
	}
	*out = r;
	return 0;
}

void sim_report_del(sim_report *r)
{
	if (r == NULL) {
		return;
	}
	for (size_t i = 0; i < r->nitems; i++) {
		if (r->items[i].kind == SIM_REPORT_PACKET) {
			free(r->items[i].u.pkt.sub);
		}
	}
	free(r->items);
	free(r->checks);
	free(r->queries);
	pool_free(r->pool);
	free(r->pool);
	free(r);
}

int sim_report_list(const char *path, FILE *f, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int empty_trace = 0;
	int rc = sim_trace_open_readonly(path, &db, &empty_trace, err,
					 errlen);
	if (rc != 0) {
		return rc;
	}
	struct sim_report_pool pool = {0};
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db,
			       "SELECT id, seed, outcome, end_ns, rows, "
			       "scenario, params FROM run ORDER BY id",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = fail(err, errlen, SIM_EIO, "%s: reading the runs: %s",
			  path, sqlite3_errmsg(db));
	}
	int header = 0;
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
		if (!header) {
			fprintf(f, "%6s %20s %-8s %14s %9s  %s\n", "run",
				"seed", "outcome", "end (ms)", "rows",
				"scenario [--set]");
			header = 1;
		}
		char ms[32];
		const char *outcome = col_text(&pool, st, 2);
		const char *scen = col_text(&pool, st, 5);
		const char *params = col_text(&pool, st, 6);
		fprintf(f, "%6lld %20llu %-8s %14s %9lld  %s",
			(long long)col_int(st, 0),
			(unsigned long long)sqlite3_column_int64(st, 1),
			outcome ? outcome : "?",
			sim_report_ms(col_int(st, 3), ms, sizeof(ms)),
			(long long)col_int(st, 4), scen ? scen : "?");
		/* params: "k=v\n" lines, shown as --set k=v (the newlines
		 * are \x0a once display-safe). */
		const char *pr = params ? params : "";
		while (*pr != '\0') {
			const char *nl = strstr(pr, "\\x0a");
			size_t n = nl ? (size_t)(nl - pr) : strlen(pr);
			if (n > 0) {
				fprintf(f, " --set %.*s", (int)n, pr);
			}
			pr += n + (nl ? 4 : 0);
		}
		fputc('\n', f);
		pool_free(&pool);
	}
	if (rc == 0 && !header) {
		fprintf(f, "%s: no runs\n", path);
	}
	pool_free(&pool);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == 0 && pool.oom
		   ? fail(err, errlen, SIM_ENOMEM, "out of memory")
		   : rc;
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int sim_report_default_queries(char *dir, size_t n)
{
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k > 0) {
		exe[k] = '\0';
		for (int up = 0; up < 4; up++) {
			char *slash = strrchr(exe, '/');
			if (slash == NULL) {
				break;
			}
			*slash = '\0';
			if (snprintf(dir, n, "%s/scripts/queries", exe) <
				(int)n &&
			    is_dir(dir)) {
				return 0;
			}
		}
	}
	if (is_dir("scripts/queries")) {
		snprintf(dir, n, "scripts/queries");
		return 0;
	}
	return SIM_ENOENT;
}

/* --- formatting ----------------------------------------------------------- */

char *sim_report_ms(sim_time t, char *buf, size_t n)
{
	if (t < 0) {
		snprintf(buf, n, "-");
		return buf;
	}
	/* Microsecond precision, rounded to nearest (t + 500 would overflow
	 * near SIM_TIME_MAX). */
	int64_t us = t / 1000 + (t % 1000 >= 500);
	snprintf(buf, n, "%lld.%03lld", (long long)(us / 1000),
		 (long long)(us % 1000));
	return buf;
}

/* cat appends printf output to |buf| (|*k| used of |n|), truncating. */
static void cat(char *buf, size_t n, size_t *k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cat(char *buf, size_t n, size_t *k, const char *fmt, ...)
{
	if (*k >= n) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(buf + *k, n - *k, fmt, ap);
	va_end(ap);
	*k = m < 0 ? *k : *k + (size_t)m;
	if (*k >= n) {
		*k = n - 1;
	}
}

static int is(const char *s, const char *t)
{
	return s != NULL && strcmp(s, t) == 0;
}

void sim_report_pkt_label(const sim_report_pkt *p, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = '\0';
	cat(buf, n, &k, "#%lld", (long long)p->id);
	if (p->ptype != NULL && !is(p->ptype, "datagram")) {
		cat(buf, n, &k, " %s", p->ptype);
	}
	if (p->frames != NULL && p->frames[0] != '\0') {
		cat(buf, n, &k, " %s", p->frames);
	}
	cat(buf, n, &k, " %lldB", (long long)p->len);
	if (is(p->fate, "lost")) {
		cat(buf, n, &k, " LOST(%s)", p->reason ? p->reason : "?");
	} else if (is(p->fate, "duplicated")) {
		cat(buf, n, &k, " DUP of #%lld", (long long)p->dup_of);
	} else if (is(p->fate, "corrupted")) {
		cat(buf, n, &k, " CORRUPT(%s)", p->reason ? p->reason : "?");
	} else if (is(p->fate, "reordered")) {
		cat(buf, n, &k, " REORDERED");
	} else if (p->reason != NULL) {
		cat(buf, n, &k, " (%s)", p->reason);
	}
}

void sim_report_sub_label(const sim_report_pkt *p, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = '\0';
	cat(buf, n, &k, "%s", p->ptype ? p->ptype : "packet");
	if (p->pn >= 0) {
		cat(buf, n, &k, " pn=%lld", (long long)p->pn);
	}
	if (p->frames != NULL) {
		cat(buf, n, &k, " %s", p->frames);
	}
}

void sim_report_item_text(const sim_report_item *it, char *buf, size_t n)
{
	size_t k = 0;
	buf[0] = '\0';
	switch (it->kind) {
	case SIM_REPORT_OP: {
		const char *ck = it->u.op.cause_kind;
		cat(buf, n, &k, "%s",
		    it->u.op.op_type ? it->u.op.op_type : "?");
		if (is(ck, "packet") && it->u.op.cause_id >= 0) {
			cat(buf, n, &k, " #%lld", (long long)it->u.op.cause_id);
		} else if (is(ck, "op") && it->u.op.cause_id >= 0) {
			cat(buf, n, &k, " (after op%lld)",
			    (long long)it->u.op.cause_id);
		} else if (is(ck, "async")) {
			cat(buf, n, &k, " (async)");
		}
		cat(buf, n, &k, " [op%lld]", (long long)it->u.op.op_id);
		for (int i = 0; i < it->u.op.nsteps; i++) {
			const sim_report_step *s = &it->u.op.steps[i];
			cat(buf, n, &k, " %s(%lld)",
			    s->action ? s->action : "?", (long long)s->depth);
		}
		if (it->u.op.detail != NULL) {
			cat(buf, n, &k, ": %s", it->u.op.detail);
		}
		break;
	}
	case SIM_REPORT_TLS: {
		const char *lv = it->u.tls.level, *dir = it->u.tls.direction;
		const char *d = it->u.tls.detail, *ev = it->u.tls.event;
		cat(buf, n, &k, "%s", ev ? ev : "?");
		if (lv != NULL || dir != NULL) {
			cat(buf, n, &k, " %s%s%s", lv ? lv : "",
			    lv && dir ? "/" : "", dir ? dir : "");
		}
		char code[32] = "";
		if (it->u.tls.code >= 0) {
			int hex = is(ev, "close_sent") ||
				  is(ev, "close_received") ||
				  is(ev, "transport_params") ||
				  it->u.tls.code >= 0x100;
			snprintf(code, sizeof(code), hex ? "0x%llx" : "%lld",
				 (long long)it->u.tls.code);
			/* Skip a code the detail already names. */
			char dec[32];
			snprintf(dec, sizeof(dec), "(%lld)",
				 (long long)it->u.tls.code);
			if (d == NULL || strstr(d, dec) == NULL) {
				cat(buf, n, &k, " %s", code);
			}
		}
		/* TLS `keys` rows hold a key log line: too long, and the
		 * level and direction say it. */
		if (d != NULL && !(is(ev, "keys") && strchr(d, ' ') != NULL)) {
			cat(buf, n, &k, " %s", d);
		}
		break;
	}
	case SIM_REPORT_LOG: {
		const char *t = it->u.log.text ? it->u.log.text : "";
		if (it->lane >= 0 && strncmp(t, "event ", 6) == 0) {
			t += 6;
		}
		cat(buf, n, &k, "%s", t);
		break;
	}
	case SIM_REPORT_CHECK:
		cat(buf, n, &k, "expectation failed: %s",
		    it->u.check.message ? it->u.check.message : "");
		if (it->u.check.detail != NULL) {
			cat(buf, n, &k, ": %s", it->u.check.detail);
		}
		if (it->u.check.location != NULL) {
			cat(buf, n, &k, " (%s)", it->u.check.location);
		}
		break;
	default:
		break;
	}
}

void sim_report_query_verdict(const sim_report_query *q, char *buf, size_t n)
{
	if (q->error != NULL) {
		snprintf(buf, n, "error: %s", q->error);
	} else if (q->rows == 0) {
		snprintf(buf, n, "no rows");
	} else {
		snprintf(buf, n, "matches (%lld row%s)", (long long)q->rows,
			 q->rows == 1 ? "" : "s");
	}
}

/* --- the command line ----------------------------------------------------- */

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "tlsim report: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'tlsim report --help')\n");
	return SIM_STATUS_INPUT;
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9') {
		return -1;
	}
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		return -1;
	}
	*out = v;
	return 0;
}

/* parse_when reads a virtual time: a duration with a unit ("1.5s",
 * "250ms") or a bare number of milliseconds ("1040.5"). */
static int parse_when(const char *s, sim_time *out)
{
	if (s == NULL || *s == '\0') {
		return -1;
	}
	char *end;
	errno = 0;
	double ms = strtod(s, &end);
	if (*end == '\0' && *s >= '0' && *s <= '9') {
		if (errno != 0 || !(ms >= 0) || ms > 9.2e12) {
			return -1;
		}
		*out = (sim_time)(ms * 1e6 + 0.5);
		return 0;
	}
	return sim_time_parse(s, 0, out) == 0 ? 0 : -1;
}

int sim_report_cli(int argc, char **argv, const char *usage)
{
	const char *path = NULL, *html = NULL, *queries = NULL;
	int list = 0, no_queries = 0;
	sim_report_opts o = {.from_ns = 0, .to_ns = SIM_TIME_MAX};
	sim_ladder_opts lo = {.width = 0, .color = -1};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char opt[32];
		const char *eq = strchr(a, '=');
		if (a[0] == '-' && a[1] == '-' && eq != NULL &&
		    (size_t)(eq - a) < sizeof(opt)) {
			memcpy(opt, a, (size_t)(eq - a));
			opt[eq - a] = '\0';
			a = opt;
			v = eq + 1;
			i--;
		}
		int64_t n;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (strcmp(a, "--run") == 0) {
			if (parse_int(v, 1, INT64_MAX, &o.run) != 0) {
				return usage_error(
				    "--run needs a run id, got '%s'",
				    v ? v : "");
			}
			i++;
		} else if (strcmp(a, "--list") == 0) {
			list = 1;
		} else if (strcmp(a, "--html") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error("--html needs a file%s", "");
			}
			html = v;
			i++;
		} else if (strcmp(a, "--queries") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error(
				    "--queries needs a directory%s", "");
			}
			queries = v;
			i++;
		} else if (strcmp(a, "--no-queries") == 0) {
			no_queries = 1;
		} else if (strcmp(a, "--width") == 0) {
			if (parse_int(v, 40, 1000, &n) != 0) {
				return usage_error("--width needs a number of "
						   "columns from 40 to 1000, "
						   "got '%s'",
						   v ? v : "");
			}
			lo.width = (int)n;
			i++;
		} else if (strcmp(a, "--color") == 0 ||
			   strcmp(a, "--colour") == 0) {
			if (v != NULL && strcmp(v, "auto") == 0) {
				lo.color = -1;
			} else if (v != NULL && strcmp(v, "always") == 0) {
				lo.color = 1;
			} else if (v != NULL && strcmp(v, "never") == 0) {
				lo.color = 0;
			} else {
				return usage_error("--color needs auto, always "
						   "or never, got '%s'",
						   v ? v : "");
			}
			i++;
		} else if (strcmp(a, "--ascii") == 0) {
			lo.ascii = 1;
		} else if (strcmp(a, "--states") == 0) {
			o.tls_states = 1;
		} else if (strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0) {
			sim_time t;
			if (parse_when(v, &t) != 0) {
				fprintf(stderr,
					"tlsim report: %s needs a time such "
					"as 1040.5 (ms) or 1.5s, got '%s' "
					"(see 'tlsim report --help')\n",
					a, v ? v : "");
				return SIM_STATUS_INPUT;
			}
			*(a[2] == 'f' ? &o.from_ns : &o.to_ns) = t;
			i++;
		} else if (strcmp(a, "--limit") == 0) {
			if (parse_int(v, 1, SIM_REPORT_LIMIT_MAX, &n) != 0) {
				return usage_error("--limit needs a number of "
						   "rows from 1 to 1000000, "
						   "got '%s'",
						   v ? v : "");
			}
			o.limit = (size_t)n;
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("unknown option '%s'", a);
		} else if (path == NULL) {
			path = a;
		} else {
			return usage_error("unexpected argument '%s'", a);
		}
	}
	if (path == NULL) {
		return usage_error("missing TRACE.db%s", "");
	}
	if (o.from_ns > o.to_ns) {
		return usage_error("--from is after --to%s", "");
	}
	char err[2048];
	if (list) {
		int rc = sim_report_list(path, stdout, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "tlsim: %s\n", err);
			return rc == SIM_ENOMEM ? SIM_STATUS_INTERNAL
						: SIM_STATUS_INPUT;
		}
		return 0;
	}
	char dir[PATH_MAX];
	if (!no_queries) {
		if (queries != NULL) {
			o.queries_dir = queries;
		} else if (sim_report_default_queries(dir, sizeof(dir)) == 0) {
			o.queries_dir = dir;
		}
	}
	/* HTML: every tls row goes into the page (it can show or hide
	 * the handshake states). */
	if (html != NULL) {
		o.tls_states = 1;
	}
	sim_report *r = NULL;
	int rc = sim_report_open(path, &o, &r, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		return rc == SIM_ENOMEM || rc == SIM_EINTERNAL
			   ? SIM_STATUS_INTERNAL
			   : SIM_STATUS_INPUT;
	}
	r->queries_note = no_queries ? "--no-queries"
			  : o.queries_dir == NULL
			      ? "no scripts/queries found; --queries DIR"
			      : NULL;
	if (html != NULL) {
		rc = sim_html_write(r, html, err, sizeof(err));
		if (rc == 0) {
			printf("run %lld of %s: %zu ladder rows (%lld "
			       "datagrams/segments) written to %s\n",
			       (long long)r->run, r->path, r->nitems,
			       (long long)r->n_arrows, html);
		} else {
			fprintf(stderr, "tlsim: %s\n", err);
			rc = rc == SIM_ENOMEM || rc == SIM_EINTERNAL
				 ? SIM_STATUS_INTERNAL
				 : SIM_STATUS_INPUT;
		}
	} else {
		sim_ladder_print(stdout, r, &lo);
		rc = fflush(stdout) == 0 ? 0 : SIM_STATUS_INTERNAL;
	}
	sim_report_del(r);
	return rc;
}

/* sim/ladder.c: `tlsim report` in a terminal. Each line of the ladder is
 * drawn into a row of cells (one code point and one colour each), then
 * written with the colour changes. Every code point counts as one column
 * (trace text is display-safe, report.h; East Asian wide characters would
 * shift the rest of their line). */
#include "sim/ladder.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define WIDTH_DEFAULT 100
#define WIDTH_MAX 1000
#define WIDTH_MIN 40 /* narrower, say() cannot fit its indents */
#define TEXT_MAX 4096
#define EXPECT_LIST_MAX 20 /* expectations listed when all held */

enum color {
	C_NONE,
	C_DIM,
	C_RED,
	C_BRED,
	C_GREEN,
	C_BGREEN,
	C_YELLOW,
	C_BLUE,
	C_MAGENTA,
	C_CYAN,
	C_BOLD,
};

static const char *const sgr[] = {
    [C_NONE] = "0",    [C_DIM] = "2",    [C_RED] = "31",
    [C_BRED] = "1;31", [C_GREEN] = "32", [C_BGREEN] = "1;32",
    [C_YELLOW] = "33", [C_BLUE] = "34",  [C_MAGENTA] = "35",
    [C_CYAN] = "36",   [C_BOLD] = "1",
};

/* The glyphs, UTF-8 or ASCII. */
typedef struct glyphs {
	const char *lane, *from_l, *from_r, *body, *dup, *corrupt, *head_r,
	    *head_l, *lost, *ellipsis, *arrive, *tls, *event, *sub, *ok, *bad;
} glyphs;

static const glyphs utf8 = {"│", "├", "┤", "─",  "╌",  "~",  "▶",    "◀",
			    "X", "…", "→", "◆ ", "» ", "· ", "ok  ", "FAIL"};
static const glyphs ascii = {"|", "+", "+",  "-",  "=",  "~",  ">",    "<",
			     "X", "~", "->", "* ", "> ", ". ", "ok  ", "FAIL"};

typedef struct cell {
	char g[5]; /* one code point, NUL-terminated */
	unsigned char color;
} cell;

typedef struct ladder {
	FILE *f;
	const sim_report *r;
	const glyphs *gl;
	int color, width;
	int tw; /* time gutter width */
	int x[SIM_REPORT_MAX_LANES];
	cell *row;
	char last_time[32];
	/* Per lane: the last handshake state shown for its packets. */
	const char *hs[SIM_REPORT_MAX_LANES];
} ladder;

/* --- cells ---------------------------------------------------------------- */

static void clear_row(ladder *l)
{
	for (int i = 0; i < l->width; i++) {
		l->row[i].g[0] = ' ';
		l->row[i].g[1] = '\0';
		l->row[i].color = C_NONE;
	}
}

static void put(ladder *l, int x, const char *g, int color)
{
	if (x < 0 || x >= l->width) {
		return;
	}
	snprintf(l->row[x].g, sizeof(l->row[x].g), "%s", g);
	l->row[x].color = (unsigned char)color;
}

/* cp_len: bytes of the code point at |s| (text is valid UTF-8). */
static size_t cp_len(const char *s)
{
	unsigned char b = (unsigned char)*s;
	return b < 0x80 ? 1 : b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4;
}

static int text_cols(const char *s)
{
	int n = 0;
	for (; *s; s += cp_len(s)) {
		n++;
	}
	return n;
}

/* put_text writes |s| from column |x| in at most |maxw| columns, ending
 * in an ellipsis when cut. Returns the columns used. */
static int put_text(ladder *l, int x, int maxw, const char *s, int color)
{
	int n = text_cols(s), used = 0;
	if (maxw <= 0) {
		return 0;
	}
	int cut = n > maxw;
	int keep = cut ? maxw - 1 : n;
	for (; *s && used < keep; used++) {
		size_t k = cp_len(s);
		char g[5] = {0};
		memcpy(g, s, k);
		put(l, x + used, g, color);
		s += k;
	}
	if (cut) {
		put(l, x + used++, l->gl->ellipsis, color);
	}
	return used;
}

static void emit_row(ladder *l)
{
	int end = l->width;
	while (end > 0 && strcmp(l->row[end - 1].g, " ") == 0 &&
	       l->row[end - 1].color == C_NONE) {
		end--;
	}
	int cur = C_NONE;
	for (int i = 0; i < end; i++) {
		if (l->color && l->row[i].color != cur) {
			cur = l->row[i].color;
			fprintf(l->f, "\033[0;%sm", sgr[cur]);
		}
		fputs(l->row[i].g, l->f);
	}
	if (l->color && cur != C_NONE) {
		fputs("\033[0m", l->f);
	}
	fputc('\n', l->f);
}

/* --- the ladder ----------------------------------------------------------- */

static const int lane_colors[] = {C_CYAN, C_MAGENTA, C_BLUE, C_YELLOW, C_GREEN};

static int lane_color(int lane)
{
	return lane < 0 ? C_NONE : lane_colors[lane % 5];
}

/* new_row starts a ladder line: lane lines, and the time when it is not
 * the last one printed (|t| < 0: none). */
static void new_row(ladder *l, sim_time t)
{
	clear_row(l);
	for (int k = 0; k < l->r->nlanes; k++) {
		put(l, l->x[k], l->gl->lane, C_DIM);
	}
	if (t >= 0) {
		char ms[32];
		sim_report_ms(t, ms, sizeof(ms));
		if (strcmp(ms, l->last_time) != 0) {
			int n = (int)strlen(ms);
			put_text(l, l->tw - n, n, ms, C_DIM);
			snprintf(l->last_time, sizeof(l->last_time), "%s", ms);
		}
	}
}

/* lane_text writes |s| beside lane |k|: right of it, or left of it,
 * right-aligned, for the rightmost of two or more lanes. */
static void lane_text(ladder *l, int k, const char *s, int color)
{
	int n = l->r->nlanes;
	if (k == n - 1 && n >= 2) {
		int right = l->x[k] - 2, left = l->x[0] + 2;
		int w = text_cols(s);
		int avail = right - left + 1;
		int use = w < avail ? w : avail;
		put_text(l, right - use + 1, use, s, color);
	} else {
		put_text(l, l->x[k] + 2, l->width - l->x[k] - 2, s, color);
	}
}

static void note(ladder *l, sim_time t, const char *s, int color)
{
	new_row(l, t);
	int x = l->r->nlanes ? l->x[0] + 2 : l->tw + 2;
	put_text(l, x, l->width - x, s, color);
	emit_row(l);
}

static int tls_color(const sim_report_item *it)
{
	const char *e = it->u.tls.event ? it->u.tls.event : "";
	if (strncmp(e, "alert", 5) == 0 || strncmp(e, "close", 5) == 0 ||
	    strcmp(e, "handshake_failed") == 0 || strcmp(e, "reset") == 0 ||
	    strcmp(e, "deadline") == 0 || strcmp(e, "transport_params") == 0 ||
	    (strcmp(e, "eof") == 0 && it->u.tls.code > 0) ||
	    (strcmp(e, "verify_done") == 0 && it->u.tls.code > 0)) {
		return C_BRED;
	}
	if (strncmp(e, "handshake_", 10) == 0) {
		return C_BGREEN;
	}
	return C_GREEN;
}

static void draw_arrow(ladder *l, const sim_report_item *it)
{
	const sim_report_pkt *p = &it->u.pkt.p;
	const glyphs *g = l->gl;
	int s = it->lane, d = it->u.pkt.dst_lane;
	char label[TEXT_MAX];
	size_t k;
	sim_report_pkt_label(p, label, sizeof(label));
	k = strlen(label);
	if (p->deliver_ns >= 0 && k + 40 < sizeof(label)) {
		char ms[32];
		snprintf(label + k, sizeof(label) - k, " %s%s", g->arrive,
			 sim_report_ms(p->deliver_ns, ms, sizeof(ms)));
	}
	new_row(l, it->time);
	if (s < 0 || d < 0 || s == d) {
		/* No two lanes to join: say it in words. */
		char t[TEXT_MAX + 128];
		snprintf(t, sizeof(t), "%s %s %s: %s", p->src ? p->src : "?",
			 g->arrive, p->dst ? p->dst : "?", label);
		int x = l->r->nlanes ? l->x[0] + 2 : l->tw + 2;
		put_text(l, x, l->width - x, t, C_BOLD);
		emit_row(l);
		return;
	}
	int lost = p->fate != NULL && strcmp(p->fate, "lost") == 0;
	int color = lost ? C_BRED : lane_color(s);
	const char *body = g->body;
	if (p->fate != NULL && strcmp(p->fate, "duplicated") == 0) {
		body = g->dup, color = C_YELLOW;
	} else if (p->fate != NULL && strcmp(p->fate, "corrupted") == 0) {
		body = g->corrupt, color = C_YELLOW;
	}
	int a = l->x[s] < l->x[d] ? l->x[s] : l->x[d];
	int b = l->x[s] < l->x[d] ? l->x[d] : l->x[s];
	int rightward = l->x[s] < l->x[d];
	int lw = text_cols(label);
	/* Body cells [p0, p1]; the label from p0 + 2. */
	int p0, p1;
	if (!lost) {
		p0 = rightward ? a + 1 : a + 2;
		p1 = rightward ? b - 2 : b - 1;
		put(l, rightward ? b - 1 : a + 1,
		    rightward ? g->head_r : g->head_l, color);
	} else if (rightward) {
		int mid = a + 1 + (b - a - 2) / 2, x = a + lw + 4;
		x = x > mid ? x : mid;
		x = x < b - 1 ? x : b - 1;
		p0 = a + 1, p1 = x - 1;
		put(l, x, g->lost, color);
	} else {
		int mid = a + 1 + (b - a - 2) / 2, x = b - lw - 4;
		x = x < mid ? x : mid;
		x = x > a + 1 ? x : a + 1;
		p0 = x + 1, p1 = b - 1;
		put(l, x, g->lost, color);
	}
	put(l, l->x[s], rightward ? g->from_l : g->from_r, color);
	for (int x = p0; x <= p1; x++) {
		put(l, x, body, color);
	}
	int room = p1 - p0 - 3;
	if (room > 0) {
		put(l, p0 + 1, " ", color);
		int used = put_text(l, p0 + 2, room, label, color);
		put(l, p0 + 2 + used, " ", color);
	}
	emit_row(l);

	/* The packets coalesced in it, and the sender's handshake state
	 * when it changed. */
	int x = a + 3, w = b - a - 4;
	int sub_color = lost ? C_RED : C_DIM;
	for (int i = 0; i < it->u.pkt.nsub; i++) {
		char t[TEXT_MAX];
		size_t n = (size_t)snprintf(t, sizeof(t), "%s", g->sub);
		sim_report_sub_label(&it->u.pkt.sub[i], t + n, sizeof(t) - n);
		new_row(l, -1);
		put_text(l, x, w, t, sub_color);
		emit_row(l);
	}
	if (it->u.pkt.more_sub > 0) {
		char t[64];
		snprintf(t, sizeof(t), "%s%d more packets", g->sub,
			 it->u.pkt.more_sub);
		new_row(l, -1);
		put_text(l, x, w, t, sub_color);
		emit_row(l);
	}
	const char *hs =
	    it->u.pkt.nsub ? it->u.pkt.sub[0].hs_state : p->hs_state;
	if (hs != NULL && (l->hs[s] == NULL || strcmp(l->hs[s], hs) != 0)) {
		char t[TEXT_MAX];
		snprintf(t, sizeof(t), "%s%s: %s", g->sub, p->src, hs);
		new_row(l, -1);
		put_text(l, x, w, t, C_DIM);
		emit_row(l);
		l->hs[s] = hs;
	}
}

static void draw_item(ladder *l, const sim_report_item *it)
{
	char text[TEXT_MAX], line[TEXT_MAX + 64];
	if (it->kind == SIM_REPORT_PACKET) {
		draw_arrow(l, it);
		return;
	}
	sim_report_item_text(it, text, sizeof(text));
	int color = C_NONE;
	const char *mark = "";
	switch (it->kind) {
	case SIM_REPORT_OP:
		color = C_DIM;
		for (int i = 0; i < it->u.op.nsteps; i++) {
			const char *a = it->u.op.steps[i].action;
			if (a != NULL && (strcmp(a, "enqueue_front") == 0 ||
					  strcmp(a, "drop") == 0)) {
				color = C_YELLOW;
			}
		}
		break;
	case SIM_REPORT_TLS:
		color = tls_color(it);
		mark = l->gl->tls;
		break;
	case SIM_REPORT_LOG:
		color = it->lane >= 0 ? C_BLUE : C_BOLD;
		mark = it->lane >= 0 ? l->gl->event : "";
		break;
	default:
		color = C_BRED;
		break;
	}
	if (it->lane >= 0) {
		snprintf(line, sizeof(line), "%s%s", mark, text);
		new_row(l, it->time);
		lane_text(l, it->lane, line, color);
		emit_row(l);
	} else {
		snprintf(line, sizeof(line), "%s%s%s", it->node ? it->node : "",
			 it->node ? ": " : "", text);
		note(l, it->time, line, color);
	}
}

static void lane_header(ladder *l)
{
	const sim_report *r = l->r;
	clear_row(l);
	put_text(l, l->tw - 2, 2, "ms", C_DIM);
	for (int k = 0; k < r->nlanes; k++) {
		int w = text_cols(r->lanes[k]);
		int x = k == 0               ? l->x[k]
			: k == r->nlanes - 1 ? l->x[k] - w + 1
					     : l->x[k] - w / 2;
		put_text(l, x < l->tw + 1 ? l->tw + 1 : x, w, r->lanes[k],
			 C_BOLD);
	}
	emit_row(l);
}

static void layout(ladder *l)
{
	const sim_report *r = l->r;
	int tw = 2;
	char ms[32];
	for (size_t i = 0; i < r->nitems; i++) {
		int n = (int)strlen(
		    sim_report_ms(r->items[i].time, ms, sizeof(ms)));
		tw = n > tw ? n : tw;
	}
	l->tw = tw;
	int x0 = tw + 2, xn = l->width - 1;
	for (int k = 0; k < r->nlanes; k++) {
		l->x[k] =
		    r->nlanes == 1
			? x0
			: x0 + (int)((long)k * (xn - x0) / (r->nlanes - 1));
	}
}

/* --- the summary ---------------------------------------------------------- */

static void col(ladder *l, int c)
{
	if (l->color) {
		fprintf(l->f, "\033[%sm", sgr[c]);
	}
}

static void uncol(ladder *l)
{
	if (l->color) {
		fputs("\033[0m", l->f);
	}
}

/* fit prints |s| cut to the columns left after |used|. */
static void fit(ladder *l, int used, const char *s)
{
	int room = l->width - used, n = 0;
	for (; *s && n < room; n++) {
		size_t k = cp_len(s);
		if (n == room - 1 && s[k] != '\0') {
			fputs(l->gl->ellipsis, l->f);
			break;
		}
		fwrite(s, 1, k, l->f);
		s += k;
	}
	fputc('\n', l->f);
}

/* say writes |s| wrapped at the width, continuation lines indented by
 * |indent| columns, with bytes [cs, cs + cn) of it in |color|, then a
 * newline. Lines break at a space when there is one, else anywhere. */
static void say(ladder *l, int indent, int cs, int cn, int color, const char *s)
{
	FILE *f = l->f;
	size_t p = 0, len = strlen(s);
	int first = 1, on = 0;
	while (first || p < len) {
		int room = l->width - (first ? 0 : indent), cols = 0;
		size_t e = p, brk = 0;
		while (e < len && cols < room) {
			if (s[e] == ' ' && e > p) {
				brk = e;
			}
			e += cp_len(s + e);
			cols++;
		}
		if (e < len && brk > p) {
			e = brk;
		}
		if (!first) {
			fprintf(f, "%*s", indent, "");
		}
		for (size_t i = p; i < e; i++) {
			int in = (int)i >= cs && (int)i < cs + cn;
			if (in != on) {
				in ? col(l, color) : uncol(l);
				on = in;
			}
			fputc(s[i], f);
		}
		if (on) {
			uncol(l);
			on = 0;
		}
		fputc('\n', f);
		p = e < len && s[e] == ' ' ? e + 1 : e;
		first = 0;
	}
}

static void summary(ladder *l)
{
	const sim_report *r = l->r;
	char ms[32], t[TEXT_MAX];
	size_t k = 0;
	snprintf(t, sizeof(t), "run %lld of %s (runs %lld..%lld in the trace)",
		 (long long)r->run, r->path, (long long)r->first_run,
		 (long long)r->last_run);
	say(l, 4, 0, 0, 0, t);
	k = (size_t)snprintf(t, sizeof(t), "  scenario  %s",
			     r->scenario ? r->scenario : "?");
	/* params are "k=v\n" lines, display-safe (\x0a). */
	for (const char *p = r->params ? r->params : "";
	     *p != '\0' && k < sizeof(t);) {
		const char *nl = strstr(p, "\\x0a");
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		if (n > 0) {
			k += (size_t)snprintf(t + k, sizeof(t) - k,
					      " --set %.*s", n, p);
		}
		p += n + (nl ? 4 : 0);
	}
	say(l, 12, 0, 0, 0, t);
	snprintf(t, sizeof(t), "  seed      %llu (sha256 %.16s, tlsim %s)",
		 (unsigned long long)r->seed,
		 r->scenario_sha256 ? r->scenario_sha256 : "?",
		 r->version ? r->version : "?");
	say(l, 12, 0, 0, 0, t);
	const char *o = r->outcome ? r->outcome : "?";
	snprintf(t, sizeof(t), "  outcome   %s%s%s", o, r->reason ? ": " : "",
		 r->reason ? r->reason : "");
	say(l, 12, 12, (int)strlen(o),
	    strcmp(o, "pass") == 0 ? C_BGREEN : C_BRED, t);
	snprintf(t, sizeof(t),
		 "  end       %s ms virtual, %lld events, %lld rows, digest "
		 "%.16s",
		 sim_report_ms(r->end_ns, ms, sizeof(ms)), (long long)r->events,
		 (long long)r->rows, r->digest ? r->digest : "-");
	say(l, 12, 0, 0, 0, t);

	size_t held = 0;
	for (size_t i = 0; i < r->nchecks; i++) {
		held += r->checks[i].ok;
	}
	fprintf(l->f, "\nexpectations: %zu of %zu held%s\n", held, r->nchecks,
		r->checks_cut ? " (more not read)" : "");
	int all = r->nchecks <= EXPECT_LIST_MAX;
	for (size_t i = 0; i < r->nchecks; i++) {
		const sim_report_check *c = &r->checks[i];
		if (c->ok && !all) {
			continue;
		}
		snprintf(t, sizeof(t), "  %s %s%s%s (%s)",
			 c->ok ? l->gl->ok : l->gl->bad,
			 c->message ? c->message : "", c->detail ? ": " : "",
			 c->detail ? c->detail : "",
			 c->location ? c->location : "?");
		say(l, 7, 2, 4, c->ok ? C_GREEN : C_BRED, t);
	}
	if (!all && held > 0) {
		fprintf(l->f, "  (%zu more held)\n", held);
	}

	if (r->queries_dir == NULL) {
		snprintf(t, sizeof(t), "race queries: none run (%s)",
			 r->queries_note ? r->queries_note : "no directory");
	} else {
		snprintf(t, sizeof(t),
			 "race queries (%s/*.sql, restricted to run %lld):",
			 r->queries_dir, (long long)r->run);
	}
	fputc('\n', l->f);
	say(l, 2, 0, 0, 0, t);
	if (r->queries_dir != NULL && r->nqueries == 0) {
		fprintf(l->f, "  (no .sql files)\n");
	}
	for (size_t i = 0; i < r->nqueries; i++) {
		const sim_report_query *q = &r->queries[i];
		char v[1024];
		sim_report_query_verdict(q, v, sizeof(v));
		snprintf(t, sizeof(t), "  %-22s %s", q->name, v);
		say(l, 25, 25, (int)strlen(v),
		    q->error  ? C_YELLOW
		    : q->rows ? C_BRED
			      : C_GREEN,
		    t);
		for (int j = 0; j < SIM_REPORT_QUERY_ROWS && j < q->rows; j++) {
			fputs("      ", l->f);
			fit(l, 6, q->first[j] ? q->first[j] : "");
		}
		if (q->rows > SIM_REPORT_QUERY_ROWS) {
			fprintf(l->f, "      (%lld more)\n",
				(long long)(q->rows - SIM_REPORT_QUERY_ROWS));
		}
	}
	snprintf(t, sizeof(t),
		 "ladder: %lld datagrams/segments (%lld packet rows, %lld "
		 "lost), %lld op rows, %lld tls rows",
		 (long long)r->n_arrows, (long long)r->n_packet_rows,
		 (long long)r->n_lost_arrows, (long long)r->n_ops,
		 (long long)r->n_tls);
	fputc('\n', l->f);
	say(l, 2, 0, 0, 0, t);
}

static int term_width(FILE *f)
{
	const char *c = getenv("COLUMNS");
	char *end;
	long v = c ? strtol(c, &end, 10) : 0;
	if (c != NULL && *c != '\0' && *end == '\0' && v >= WIDTH_MIN &&
	    v <= WIDTH_MAX) {
		return (int)v;
	}
	struct winsize ws;
	if (isatty(fileno(f)) && ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col >= WIDTH_MIN) {
		return ws.ws_col > WIDTH_MAX ? WIDTH_MAX : ws.ws_col;
	}
	return WIDTH_DEFAULT;
}

void sim_ladder_print(FILE *f, const sim_report *r, const sim_ladder_opts *o)
{
	ladder l = {.f = f, .r = r, .gl = o->ascii ? &ascii : &utf8};
	l.width = o->width > 0 ? o->width : term_width(f);
	l.width = l.width < WIDTH_MIN   ? WIDTH_MIN
		  : l.width > WIDTH_MAX ? WIDTH_MAX
					: l.width;
	if (o->color >= 0) {
		l.color = o->color;
	} else {
		const char *term = getenv("TERM");
		l.color = isatty(fileno(f)) && getenv("NO_COLOR") == NULL &&
			  !(term != NULL && strcmp(term, "dumb") == 0);
	}
	l.row = calloc((size_t)l.width, sizeof(cell));
	if (l.row == NULL) {
		fprintf(f, "(out of memory drawing the ladder)\n");
		return;
	}
	summary(&l);
	layout(&l);
	char a[32], b[32];
	if (r->hidden_tls > 0) {
		char t[128];
		snprintf(t, sizeof(t),
			 "(%lld BoringSSL handshake-state and key-log rows not "
			 "shown: --states)",
			 (long long)r->hidden_tls);
		say(&l, 1, 0, 0, 0, t);
	}
	fputc('\n', f);
	lane_header(&l);
	if (r->rows_before > 0) {
		fprintf(f, "%*s %s %lld rows before %s ms not shown (--from)\n",
			l.tw, "", l.gl->ellipsis, (long long)r->rows_before,
			sim_report_ms(r->from_ns, a, sizeof(a)));
	}
	for (size_t i = 0; i < r->nitems; i++) {
		draw_item(&l, &r->items[i]);
	}
	if (r->nitems == 0) {
		note(&l, -1, "(no rows in this window)", C_DIM);
	}
	if (r->rows_past_limit > 0) {
		fprintf(
		    f,
		    "%*s %s %lld more rows after %s ms not shown (--limit "
		    "%zu)\n",
		    l.tw, "", l.gl->ellipsis, (long long)r->rows_past_limit,
		    sim_report_ms(r->items[r->nitems - 1].time, b, sizeof(b)),
		    r->limit);
	}
	if (r->rows_after > 0) {
		fprintf(f, "%*s %s %lld rows after %s ms not shown (--to)\n",
			l.tw, "", l.gl->ellipsis, (long long)r->rows_after,
			sim_report_ms(r->to_ns, b, sizeof(b)));
	}
	free(l.row);
}

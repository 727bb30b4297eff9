/* sim/html.c: `tlsim report --html`. The header (run, expectations,
 * queries) is static HTML; the ladder is drawn by the embedded script from
 * the JSON of the report's items. */
#include "sim/html.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/html_css.h"
#include "sim/html_js.h"

#define TEXT_MAX 4096

/* Text content and attribute values. */
static void html(FILE *f, const char *s)
{
	for (; s != NULL && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A JSON string that is safe inside a <script> element: no '<' (so no
 * "</script>" or "<!--"), '>' and '&' escaped too. Report text has no
 * control characters or U+2028/9 (report.h); they are escaped anyway. */
static void json(FILE *f, const char *s)
{
	if (s == NULL) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			fprintf(f, "\\u%04x", c);
		} else {
			fputc(c, f);
		}
	}
	fputc('"', f);
}

static void key(FILE *f, const char *k, const char *v)
{
	fprintf(f, ",\"%s\":", k);
	json(f, v);
}

static void num(FILE *f, const char *k, int64_t v)
{
	fprintf(f, ",\"%s\":%lld", k, (long long)v);
}

static void pkt_fields(FILE *f, const sim_report_pkt *p)
{
	num(f, "id", p->id);
	key(f, "ptype", p->ptype);
	key(f, "space", p->space);
	num(f, "pn", p->pn);
	key(f, "frames", p->frames);
	num(f, "len", p->len);
	key(f, "fate", p->fate);
	key(f, "hs", p->hs_state);
}

static void item_json(FILE *f, const sim_report_item *it)
{
	static const char *const kinds[] = {"o", "t", "p", "g", "c"};
	char text[TEXT_MAX];
	if (it->kind == SIM_REPORT_PACKET) {
		sim_report_pkt_label(&it->u.pkt.p, text, sizeof(text));
	} else {
		sim_report_item_text(it, text, sizeof(text));
	}
	fprintf(f, "{\"k\":\"%s\",\"t\":%lld,\"l\":%d", kinds[it->kind],
		(long long)it->time, it->lane);
	key(f, "node", it->node);
	key(f, "text", text);
	switch (it->kind) {
	case SIM_REPORT_PACKET: {
		const sim_report_pkt *p = &it->u.pkt.p;
		num(f, "s", it->lane);
		num(f, "d", it->u.pkt.dst_lane);
		pkt_fields(f, p);
		key(f, "reason", p->reason);
		num(f, "dup", p->dup_of);
		num(f, "dl", p->deliver_ns);
		key(f, "proto", p->proto);
		key(f, "link", p->link);
		key(f, "src", p->src);
		key(f, "dst", p->dst);
		num(f, "more", it->u.pkt.more_sub);
		fputs(",\"sub\":[", f);
		for (int i = 0; i < it->u.pkt.nsub; i++) {
			fputs(i ? ",{\"x\":0" : "{\"x\":0", f);
			pkt_fields(f, &it->u.pkt.sub[i]);
			fputc('}', f);
		}
		fputc(']', f);
		break;
	}
	case SIM_REPORT_OP:
		num(f, "id", it->u.op.op_id);
		key(f, "type", it->u.op.op_type);
		key(f, "ck", it->u.op.cause_kind);
		num(f, "ci", it->u.op.cause_id);
		key(f, "detail", it->u.op.detail);
		fputs(",\"steps\":[", f);
		for (int i = 0; i < it->u.op.nsteps; i++) {
			fputs(i ? ",[" : "[", f);
			json(f, it->u.op.steps[i].action);
			fprintf(f, ",%lld]",
				(long long)it->u.op.steps[i].depth);
		}
		fputc(']', f);
		break;
	case SIM_REPORT_TLS:
		key(f, "ev", it->u.tls.event);
		key(f, "level", it->u.tls.level);
		key(f, "dir", it->u.tls.direction);
		num(f, "code", it->u.tls.code);
		key(f, "detail", it->u.tls.detail);
		break;
	case SIM_REPORT_LOG:
		key(f, "raw", it->u.log.text);
		break;
	default:
		num(f, "ok", it->u.check.ok);
		key(f, "msg", it->u.check.message);
		key(f, "loc", it->u.check.location);
		key(f, "detail", it->u.check.detail);
		break;
	}
	fputc('}', f);
}

static void data_json(FILE *f, const sim_report *r)
{
	fprintf(f, "{\"run\":%lld", (long long)r->run);
	key(f, "path", r->path);
	fputs(",\"lanes\":[", f);
	for (int k = 0; k < r->nlanes; k++) {
		if (k) {
			fputc(',', f);
		}
		json(f, r->lanes[k]);
	}
	fprintf(f,
		"],\"elided\":{\"before\":%lld,\"after\":%lld,\"limit\":%lld},"
		"\"items\":[\n",
		(long long)r->rows_before, (long long)r->rows_after,
		(long long)r->rows_past_limit);
	for (size_t i = 0; i < r->nitems; i++) {
		item_json(f, &r->items[i]);
		fputs(i + 1 < r->nitems ? ",\n" : "\n", f);
	}
	fputs("]}", f);
}

static void params(FILE *f, const char *p)
{
	/* "k=v\n" lines, display-safe (the newlines read \x0a). */
	while (p != NULL && *p != '\0') {
		const char *nl = strstr(p, "\\x0a");
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n > 0 && n < TEXT_MAX) {
			char kv[TEXT_MAX];
			memcpy(kv, p, n);
			kv[n] = '\0';
			fputs(" --set ", f);
			html(f, kv);
		}
		p += n + (nl ? 4 : 0);
	}
}

static void header(FILE *f, const sim_report *r)
{
	char ms[32], line[TEXT_MAX];
	fprintf(f, "<header>\n<h1>tlsim report: run %lld of ",
		(long long)r->run);
	html(f, r->path);
	fputs("</h1>\n<dl>\n<dt>scenario</dt><dd class=\"mono\">", f);
	html(f, r->scenario ? r->scenario : "?");
	params(f, r->params);
	fprintf(f, "</dd>\n<dt>seed</dt><dd>%llu (sha256 <code>",
		(unsigned long long)r->seed);
	html(f, r->scenario_sha256 ? r->scenario_sha256 : "?");
	fputs("</code>, tlsim ", f);
	html(f, r->version ? r->version : "?");
	const char *o = r->outcome ? r->outcome : "?";
	fprintf(f, ")</dd>\n<dt>outcome</dt><dd><span class=\"%s\">",
		strcmp(o, "pass") == 0 ? "pass" : "fail");
	html(f, o);
	fputs("</span>", f);
	if (r->reason != NULL) {
		fputs(": ", f);
		html(f, r->reason);
	}
	fprintf(f,
		"</dd>\n<dt>end</dt><dd>%s ms virtual, %lld events, %lld "
		"rows, digest <code>",
		sim_report_ms(r->end_ns, ms, sizeof(ms)), (long long)r->events,
		(long long)r->rows);
	html(f, r->digest ? r->digest : "-");
	fprintf(f,
		"</code></dd>\n<dt>ladder</dt><dd>%lld datagrams/segments "
		"(%lld packet rows, %lld lost), %lld op rows, %lld tls rows",
		(long long)r->n_arrows, (long long)r->n_packet_rows,
		(long long)r->n_lost_arrows, (long long)r->n_ops,
		(long long)r->n_tls);
	if (r->rows_before > 0 || r->rows_after > 0) {
		char a[32], b[32];
		fprintf(f,
			"; shown from %s to %s ms (%lld rows before, %lld "
			"after not shown)",
			sim_report_ms(r->from_ns, a, sizeof(a)),
			r->to_ns == SIM_TIME_MAX
			    ? "the end"
			    : sim_report_ms(r->to_ns, b, sizeof(b)),
			(long long)r->rows_before, (long long)r->rows_after);
	}
	if (r->rows_past_limit > 0) {
		fprintf(f, "; %lld more rows past the limit of %zu not shown",
			(long long)r->rows_past_limit, r->limit);
	}
	size_t held = 0;
	for (size_t i = 0; i < r->nchecks; i++) {
		held += r->checks[i].ok;
	}
	fprintf(f,
		"</dd>\n</dl>\n<h2>expectations: %zu of %zu held</h2>\n"
		"<ul class=\"checks\">\n",
		held, r->nchecks);
	for (size_t i = 0; i < r->nchecks; i++) {
		const sim_report_check *c = &r->checks[i];
		fprintf(f, "<li><span class=\"%s\">%s</span> ",
			c->ok ? "pass" : "fail", c->ok ? "ok" : "FAIL");
		html(f, c->message);
		if (c->detail != NULL) {
			fputs(": ", f);
			html(f, c->detail);
		}
		fputs(" <code>(", f);
		html(f, c->location);
		fputs(")</code></li>\n", f);
	}
	fputs("</ul>\n<h2>race queries", f);
	if (r->queries_dir != NULL) {
		fputs(" <small>(<code>", f);
		html(f, r->queries_dir);
		fprintf(f, "/*.sql</code>, restricted to run %lld)</small>",
			(long long)r->run);
	} else {
		fputs(": none run (", f);
		html(f, r->queries_note ? r->queries_note : "no directory");
		fputs(")", f);
	}
	fputs("</h2>\n<ul class=\"queries\">\n", f);
	for (size_t i = 0; i < r->nqueries; i++) {
		const sim_report_query *q = &r->queries[i];
		sim_report_query_verdict(q, line, sizeof(line));
		fputs("<li><span class=\"name mono\">", f);
		html(f, q->name);
		fprintf(f, "</span> <span class=\"%s\">",
			q->error  ? "warn"
			: q->rows ? "fail"
				  : "pass");
		html(f, line);
		fputs("</span>", f);
		if (q->rows > 0) {
			fputs("<div class=\"rows mono\">", f);
			for (int k = 0;
			     k < SIM_REPORT_QUERY_ROWS && k < q->rows; k++) {
				html(f, q->first[k]);
				fputc('\n', f);
			}
			if (q->rows > SIM_REPORT_QUERY_ROWS) {
				fprintf(f, "(%lld more)",
					(long long)(q->rows -
						    SIM_REPORT_QUERY_ROWS));
			}
			fputs("</div>", f);
		}
		fputs("</li>\n", f);
	}
	fputs("</ul>\n</header>\n", f);
}

static const char controls[] =
    "<div id=\"controls\">\n"
    "<button id=\"zout\" title=\"zoom out (-, Ctrl+wheel)\">&minus;</button>"
    "<button id=\"zin\" title=\"zoom in (+, Ctrl+wheel)\">+</button>"
    "<button id=\"zreset\" title=\"zoom 100%\">100%</button>\n"
    "<input id=\"filter\" type=\"search\" placeholder=\"filter rows: "
    "CONNECTION_CLOSE, shutdown, LOST, server...\" aria-label=\"filter\">\n"
    "<label><input type=\"checkbox\" id=\"show-op\"> operations</label>\n"
    "<label><input type=\"checkbox\" id=\"show-tls\"> tls</label>\n"
    "<label><input type=\"checkbox\" id=\"show-state\"> handshake "
    "states</label>\n"
    "<label><input type=\"checkbox\" id=\"show-log\"> events</label>\n"
    "<span id=\"status\" data-errors=\"not run\">the ladder is drawn by "
    "a script: JavaScript is off or failed</span>\n"
    "</div>\n"
    "<div id=\"wrap\"><svg id=\"ladder\" width=\"0\" height=\"0\" "
    "role=\"img\" aria-label=\"ladder diagram\"></svg></div>\n"
    "<div id=\"tip\" hidden></div>\n";

static void page(FILE *f, const sim_report *r)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
	      "<meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\""
	      "default-src 'none'; style-src 'unsafe-inline'; "
	      "script-src 'unsafe-inline'\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n"
	      "<meta name=\"generator\" content=\"tlsim " TLSIM_VERSION
	      "\">\n<title>tlsim report: run ",
	      f);
	fprintf(f, "%lld of ", (long long)r->run);
	html(f, r->path);
	fputs("</title>\n<style>\n", f);
	fputs(html_css, f);
	fputs("</style>\n</head>\n<body>\n", f);
	header(f, r);
	fputs(controls, f);
	fputs("<script type=\"application/json\" id=\"data\">", f);
	data_json(f, r);
	fputs("</script>\n<script>\n", f);
	fputs(html_js, f);
	fputs("</script>\n</body>\n</html>\n", f);
}

static int write_fail(char *err, size_t n, const char *path, int e)
{
	int code = e == ENOENT || e == ENOTDIR               ? SIM_ENOENT
		   : e == EACCES || e == EPERM || e == EROFS ? SIM_EPERM
		   : e == ENOSPC || e == EDQUOT              ? SIM_EFULL
		   : e == ENOMEM                             ? SIM_ENOMEM
							     : SIM_EIO;
	snprintf(err, n, "%s: cannot write the report: %s", path, strerror(e));
	return code;
}

int sim_html_write(const sim_report *r, const char *path, char *err,
		   size_t errlen)
{
	size_t n = strlen(path);
	char *tmp = malloc(n + 8);
	if (tmp == NULL) {
		snprintf(err, errlen, "out of memory");
		return SIM_ENOMEM;
	}
	snprintf(tmp, n + 8, "%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		int rc = write_fail(err, errlen, path, errno);
		free(tmp);
		return rc;
	}
	/* mkstemp makes the file 0600; a report is as readable as any
	 * file the user creates. */
	mode_t mask = umask(0);
	umask(mask);
	int e = fchmod(fd, 0666 & ~mask) == 0 ? 0 : errno;
	FILE *f = e == 0 ? fdopen(fd, "w") : NULL;
	if (f == NULL) {
		e = e ? e : errno;
		close(fd);
	} else {
		page(f, r);
		if (fflush(f) != 0 || ferror(f)) {
			e = errno ? errno : EIO;
		}
		if (fclose(f) != 0 && e == 0) {
			e = errno;
		}
	}
	if (e == 0 && rename(tmp, path) != 0) {
		e = errno;
	}
	if (e != 0) {
		unlink(tmp);
		free(tmp);
		return write_fail(err, errlen, path, e);
	}
	free(tmp);
	return 0;
}

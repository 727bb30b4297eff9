#include "sim/schedule.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/err.h"

#define MAX_CHAINS 1000000

struct sim_schedule {
	sim_plan plan;
	sim_plan rec;
	enum sim_order record_order;
	enum sim_strategy strategy;
	sim_rng rng;
	size_t cursor; /* next plan choice to look at */
	uint64_t points;
	uint32_t *arity;
	size_t arity_cap;
	/* PCT */
	int depth;
	uint64_t change[SIM_SCHEDULE_MAX_DEPTH];
	int nchange;
	uint64_t *prio; /* by chain id; 0: not seen yet */
	size_t prio_cap;
	/* scratch for fifo ranks */
	uint64_t *seqs;
	size_t seqs_cap;
};

static const char *const kind_names[] = {"lost", "delay", "reorder",
					 "corrupt", "dup"};

void sim_plan_init(sim_plan *p)
{
	memset(p, 0, sizeof(*p));
}

void sim_plan_free(sim_plan *p)
{
	for (size_t i = 0; i < p->nfaults; i++) {
		free(p->faults[i].bits);
	}
	free(p->faults);
	free(p->choices);
	sim_plan_init(p);
}

int sim_plan_is_plain(const sim_plan *p)
{
	return p->nchoices == 0 && !p->faults_forced;
}

int sim_plan_add_choice(sim_plan *p, uint64_t point, uint32_t index)
{
	size_t lo = 0, hi = p->nchoices;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->choices[mid].point < point) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	int found = lo < p->nchoices && p->choices[lo].point == point;
	if (index == 0) {
		if (found) {
			memmove(&p->choices[lo], &p->choices[lo + 1],
				(p->nchoices - lo - 1) * sizeof(sim_choice));
			p->nchoices--;
		}
		return 0;
	}
	if (found) {
		p->choices[lo].index = index;
		return 0;
	}
	if (p->nchoices >= SIM_SCHEDULE_MAX_ITEMS) {
		return SIM_ELIMIT;
	}
	if (p->nchoices == p->choices_cap) {
		size_t cap = p->choices_cap ? 2 * p->choices_cap : 16;
		sim_choice *v = realloc(p->choices, cap * sizeof(*v));
		if (v == NULL) {
			return SIM_ENOMEM;
		}
		p->choices = v;
		p->choices_cap = cap;
	}
	memmove(&p->choices[lo + 1], &p->choices[lo],
		(p->nchoices - lo) * sizeof(sim_choice));
	p->choices[lo] = (sim_choice){.point = point, .index = index};
	p->nchoices++;
	return 0;
}

static int fault_cmp(int link, int dir, uint64_t n, int kind,
		     const sim_fault *f)
{
	if (link != f->link) {
		return link < f->link ? -1 : 1;
	}
	if (dir != f->dir) {
		return dir < f->dir ? -1 : 1;
	}
	if (n != f->n) {
		return n < f->n ? -1 : 1;
	}
	if (kind != (int)f->kind) {
		return kind < (int)f->kind ? -1 : 1;
	}
	return 0;
}

/* The first fault not before (link, dir, n, kind). */
static size_t fault_lower(const sim_plan *p, int link, int dir, uint64_t n,
			  int kind)
{
	size_t lo = 0, hi = p->nfaults;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (fault_cmp(link, dir, n, kind, &p->faults[mid]) > 0) {
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	return lo;
}

int sim_plan_add_fault(sim_plan *p, const sim_fault *f)
{
	uint32_t *bits = NULL;
	if (f->nbits > SIM_SCHEDULE_MAX_BITS) {
		return SIM_ELIMIT;
	}
	if (f->nbits > 0) {
		bits = malloc(f->nbits * sizeof(*bits));
		if (bits == NULL) {
			return SIM_ENOMEM;
		}
		memcpy(bits, f->bits, f->nbits * sizeof(*bits));
	}
	size_t at = fault_lower(p, f->link, f->dir, f->n, (int)f->kind);
	if (at < p->nfaults &&
	    fault_cmp(f->link, f->dir, f->n, (int)f->kind, &p->faults[at]) ==
		0) {
		free(p->faults[at].bits);
		p->faults[at] = *f;
		p->faults[at].bits = bits;
		return 0;
	}
	if (p->nfaults >= SIM_SCHEDULE_MAX_ITEMS) {
		free(bits);
		return SIM_ELIMIT;
	}
	if (p->nfaults == p->faults_cap) {
		size_t cap = p->faults_cap ? 2 * p->faults_cap : 16;
		sim_fault *v = realloc(p->faults, cap * sizeof(*v));
		if (v == NULL) {
			free(bits);
			return SIM_ENOMEM;
		}
		p->faults = v;
		p->faults_cap = cap;
	}
	memmove(&p->faults[at + 1], &p->faults[at],
		(p->nfaults - at) * sizeof(sim_fault));
	p->faults[at] = *f;
	p->faults[at].bits = bits;
	p->nfaults++;
	return 0;
}

int sim_plan_copy(sim_plan *dst, const sim_plan *src)
{
	sim_plan_free(dst);
	dst->order = src->order;
	dst->faults_forced = src->faults_forced;
	for (size_t i = 0; i < src->nchoices; i++) {
		int rc = sim_plan_add_choice(dst, src->choices[i].point,
					     src->choices[i].index);
		if (rc != 0) {
			return rc;
		}
	}
	for (size_t i = 0; i < src->nfaults; i++) {
		int rc = sim_plan_add_fault(dst, &src->faults[i]);
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* --- text --------------------------------------------------------------- */

typedef struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
	if (b->oom) {
		return;
	}
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int k = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)k < room) {
			b->len += (size_t)k;
			return;
		}
		size_t cap = b->cap ? b->cap : 256;
		while (cap - b->len <= (size_t)k) {
			cap *= 2;
		}
		char *v = realloc(b->p, cap);
		if (v == NULL) {
			b->oom = 1;
			return;
		}
		b->p = v;
		b->cap = cap;
	}
}

char *sim_plan_format(const sim_plan *p)
{
	sbuf b = {0};
	sb_printf(&b, "%s", "");
	if (p->order != SIM_ORDER_KEYS || p->nchoices > 0) {
		sb_printf(&b, "order %s\n",
			  p->order == SIM_ORDER_FIFO ? "fifo" : "keys");
	}
	for (size_t i = 0; i < p->nchoices; i++) {
		sb_printf(&b, "choice %" PRIu64 " %" PRIu32 "\n",
			  p->choices[i].point, p->choices[i].index);
	}
	if (p->faults_forced) {
		sb_printf(&b, "faults forced\n");
	}
	for (size_t i = 0; i < p->nfaults; i++) {
		const sim_fault *f = &p->faults[i];
		sb_printf(&b, "fault %d %s %" PRIu64 " %s", f->link,
			  f->dir ? "ba" : "ab", f->n, kind_names[f->kind]);
		switch (f->kind) {
		case SIM_FAULT_LOST:
			sb_printf(&b, " %s\n",
				  f->value == 2 ? "burst_loss" : "loss");
			break;
		case SIM_FAULT_CORRUPT:
			for (uint32_t k = 0; k < f->nbits; k++) {
				sb_printf(&b, "%c%" PRIu32, k ? ',' : ' ',
					  f->bits[k]);
			}
			sb_printf(&b, "\n");
			break;
		default:
			sb_printf(&b, " %" PRId64 "\n", f->value);
			break;
		}
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static int perr(char *err, size_t n, const char *origin, int line,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int perr(char *err, size_t n, const char *origin, int line,
		const char *fmt, ...)
{
	int k = snprintf(err, n, "%s:%d: ", origin, line);
	if (k >= 0 && (size_t)k < n) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err + k, n - (size_t)k, fmt, ap);
		va_end(ap);
	}
	return SIM_EINVAL;
}

/* Reads an unsigned decimal token; returns 0 on success. */
static int read_u64(const char **s, uint64_t *out)
{
	const char *p = *s;
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	if (!isdigit((unsigned char)*p)) {
		return -1;
	}
	uint64_t v = 0;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
		p++;
	}
	*s = p;
	*out = v;
	return 0;
}

static int read_word(const char **s, char *out, size_t n)
{
	const char *p = *s;
	while (*p == ' ' || *p == '\t') {
		p++;
	}
	size_t k = 0;
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n') {
		if (k + 1 < n) {
			out[k++] = *p;
		}
		p++;
	}
	out[k] = '\0';
	*s = p;
	return k > 0 ? 0 : -1;
}

static int at_end(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r') {
		p++;
	}
	return *p == '\0';
}

static int parse_fault(sim_plan *p, const char *s, const char *origin,
		       int line, char *err, size_t errlen)
{
	uint64_t link, n, v;
	char dir[8], kind[16];
	sim_fault f = {0};
	uint32_t bits[SIM_SCHEDULE_MAX_BITS];
	if (read_u64(&s, &link) != 0 || link > 1000000) {
		return perr(err, errlen, origin, line,
			    "fault: expected a link index");
	}
	if (read_word(&s, dir, sizeof(dir)) != 0 ||
	    (strcmp(dir, "ab") != 0 && strcmp(dir, "ba") != 0)) {
		return perr(err, errlen, origin, line,
			    "fault: direction must be ab or ba");
	}
	if (read_u64(&s, &n) != 0 || n == 0) {
		return perr(err, errlen, origin, line,
			    "fault: expected a packet number (from 1)");
	}
	if (read_word(&s, kind, sizeof(kind)) != 0) {
		return perr(err, errlen, origin, line,
			    "fault: expected lost, delay, reorder, corrupt "
			    "or dup");
	}
	f.link = (int)link;
	f.dir = dir[0] == 'b';
	f.n = n;
	if (strcmp(kind, "lost") == 0) {
		char why[16];
		f.kind = SIM_FAULT_LOST;
		if (read_word(&s, why, sizeof(why)) != 0 ||
		    (strcmp(why, "loss") != 0 &&
		     strcmp(why, "burst_loss") != 0)) {
			return perr(err, errlen, origin, line,
				    "fault lost: reason must be loss or "
				    "burst_loss");
		}
		f.value = why[0] == 'b' ? 2 : 1;
	} else if (strcmp(kind, "corrupt") == 0) {
		f.kind = SIM_FAULT_CORRUPT;
		do {
			if (f.nbits == SIM_SCHEDULE_MAX_BITS ||
			    read_u64(&s, &v) != 0 || v > UINT32_MAX) {
				return perr(err, errlen, origin, line,
					    "fault corrupt: expected up to %d "
					    "bit offsets separated by commas",
					    SIM_SCHEDULE_MAX_BITS);
			}
			bits[f.nbits++] = (uint32_t)v;
		} while (*s == ',' && s++);
		f.bits = bits;
	} else {
		int i = 1;
		while (i < 5 && strcmp(kind, kind_names[i]) != 0) {
			i++;
		}
		if (i == 5 || i == SIM_FAULT_CORRUPT) {
			return perr(err, errlen, origin, line,
				    "fault: unknown kind '%s' (lost, delay, "
				    "reorder, corrupt, dup)",
				    kind);
		}
		f.kind = (enum sim_fault_kind)i;
		if (read_u64(&s, &v) != 0 || v > (uint64_t)SIM_TIME_MAX / 2) {
			return perr(err, errlen, origin, line,
				    "fault %s: expected a duration in ns",
				    kind);
		}
		f.value = (int64_t)v;
	}
	if (!at_end(s)) {
		return perr(err, errlen, origin, line,
			    "fault: unexpected '%s'", s);
	}
	int rc = sim_plan_add_fault(p, &f);
	if (rc != 0) {
		return perr(err, errlen, origin, line, "fault: %s",
			    sim_strerror(rc));
	}
	return 0;
}

/* plan_line parses one line (comments stripped) into |p|. Returns 0, 1
 * for a directive that is not a plan's (left to the caller), or
 * SIM_EINVAL with the message in |err|. */
static int plan_line(sim_plan *p, const char *q, const char *origin,
		     int line, char *err, size_t errlen)
{
	char word[32];
	if (read_word(&q, word, sizeof(word)) != 0) {
		return 0; /* blank */
	}
	if (strcmp(word, "order") == 0) {
		char v[16];
		if (read_word(&q, v, sizeof(v)) != 0 || !at_end(q) ||
		    (strcmp(v, "keys") != 0 && strcmp(v, "fifo") != 0)) {
			return perr(err, errlen, origin, line,
				    "order must be keys or fifo");
		}
		p->order = v[0] == 'f' ? SIM_ORDER_FIFO : SIM_ORDER_KEYS;
	} else if (strcmp(word, "faults") == 0) {
		char v[16];
		if (read_word(&q, v, sizeof(v)) != 0 || !at_end(q) ||
		    (strcmp(v, "random") != 0 && strcmp(v, "forced") != 0)) {
			return perr(err, errlen, origin, line,
				    "faults must be random or forced");
		}
		p->faults_forced = v[0] == 'f';
	} else if (strcmp(word, "choice") == 0) {
		uint64_t point, index;
		if (read_u64(&q, &point) != 0 || read_u64(&q, &index) != 0 ||
		    index > UINT32_MAX || !at_end(q)) {
			return perr(err, errlen, origin, line,
				    "choice: expected POINT INDEX");
		}
		int rc = sim_plan_add_choice(p, point, (uint32_t)index);
		if (rc != 0) {
			return perr(err, errlen, origin, line, "choice: %s",
				    sim_strerror(rc));
		}
	} else if (strcmp(word, "fault") == 0) {
		return parse_fault(p, q, origin, line, err, errlen);
	} else {
		return 1;
	}
	return 0;
}

/* Copies the next line of |*s| into |buf| without its comment and
 * advances; returns -1 when the line is too long. */
static int next_line(const char **s, char *buf, size_t n)
{
	const char *eol = strchr(*s, '\n');
	size_t len = eol ? (size_t)(eol - *s) : strlen(*s);
	if (len >= n) {
		*s += len + (eol != NULL);
		return -1;
	}
	memcpy(buf, *s, len);
	buf[len] = '\0';
	*s += len + (eol != NULL);
	char *hash = strchr(buf, '#');
	if (hash != NULL) {
		*hash = '\0';
	}
	return 0;
}

int sim_plan_parse(sim_plan *p, const char *text, const char *origin,
		   int line0, char *err, size_t errlen)
{
	sim_plan_free(p);
	int line = line0;
	for (const char *s = text; *s != '\0'; line++) {
		char buf[1024];
		if (next_line(&s, buf, sizeof(buf)) != 0) {
			return perr(err, errlen, origin, line,
				    "line too long");
		}
		int rc = plan_line(p, buf, origin, line, err, errlen);
		if (rc == 1) {
			const char *q = buf;
			char word[32];
			read_word(&q, word, sizeof(word));
			return perr(err, errlen, origin, line,
				    "unknown directive '%s' (order, choice, "
				    "faults, fault)",
				    word);
		}
		if (rc != 0) {
			return rc;
		}
	}
	return 0;
}

/* --- schedule files ------------------------------------------------------ */

void sim_schedule_file_free(sim_schedule_file *f)
{
	free(f->scenario);
	for (int i = 0; i < f->nset; i++) {
		free(f->set_key[i]);
	}
	sim_plan_free(&f->plan);
	memset(f, 0, sizeof(*f));
}

int sim_schedule_file_parse(sim_schedule_file *f, const char *text,
			    const char *origin, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	sim_plan_init(&f->plan);
	if (strncmp(text, SIM_SCHEDULE_MAGIC, strlen(SIM_SCHEDULE_MAGIC)) !=
	    0) {
		return perr(err, errlen, origin, 1,
			    "not a schedule file (the first line must start "
			    "with '%s')",
			    SIM_SCHEDULE_MAGIC);
	}
	int line = 1, rc = 0;
	for (const char *s = text; rc == 0 && *s != '\0'; line++) {
		char buf[8192];
		if (next_line(&s, buf, sizeof(buf)) != 0) {
			rc = perr(err, errlen, origin, line, "line too long");
			break;
		}
		rc = plan_line(&f->plan, buf, origin, line, err, errlen);
		if (rc != 1) {
			continue;
		}
		rc = 0;
		const char *q = buf;
		char word[32];
		read_word(&q, word, sizeof(word));
		while (*q == ' ' || *q == '\t') {
			q++;
		}
		size_t len = strlen(q);
		while (len > 0 && (q[len - 1] == ' ' || q[len - 1] == '\r')) {
			len--;
		}
		if (strcmp(word, "scenario") == 0 && len > 0 &&
		    f->scenario == NULL) {
			f->scenario = strndup(q, len);
			if (f->scenario == NULL) {
				rc = SIM_ENOMEM;
			}
		} else if (strcmp(word, "sha256") == 0 && len == 64) {
			memcpy(f->sha256, q, 64);
			f->sha256[64] = '\0';
		} else if (strcmp(word, "seed") == 0) {
			if (read_u64(&q, &f->seed) != 0 || !at_end(q)) {
				rc = perr(err, errlen, origin, line,
					  "seed: expected a non-negative "
					  "integer");
			}
			f->have_seed = 1;
		} else if (strcmp(word, "set") == 0) {
			const char *eq = memchr(q, '=', len);
			if (eq == NULL || eq == q) {
				rc = perr(err, errlen, origin, line,
					  "set: expected KEY=VALUE");
			} else if (f->nset == SIM_SCHEDULE_MAX_SET) {
				rc = perr(err, errlen, origin, line,
					  "set: more than %d parameters",
					  SIM_SCHEDULE_MAX_SET);
			} else {
				char *kv = strndup(q, len);
				if (kv == NULL) {
					rc = SIM_ENOMEM;
				} else {
					kv[eq - q] = '\0';
					f->set_key[f->nset] = kv;
					f->set_val[f->nset++] = kv + (eq - q) + 1;
				}
			}
		} else {
			rc = perr(err, errlen, origin, line,
				  "unknown or repeated directive '%s' "
				  "(scenario, sha256, seed, set, order, "
				  "choice, faults, fault)",
				  word);
		}
	}
	if (rc == SIM_ENOMEM) {
		snprintf(err, errlen, "%s: out of memory", origin);
	} else if (rc == 0 && (f->scenario == NULL || !f->have_seed)) {
		rc = perr(err, errlen, origin, line - 1,
			  "a schedule file needs 'scenario PATH' and "
			  "'seed N'");
	}
	return rc;
}

char *sim_schedule_file_format(const sim_schedule_file *f,
			       const char *comment)
{
	char *plan = sim_plan_format(&f->plan);
	if (plan == NULL) {
		return NULL;
	}
	sbuf b = {0};
	sb_printf(&b, "%s\n", SIM_SCHEDULE_MAGIC);
	for (const char *c = comment; c != NULL && *c != '\0';) {
		const char *eol = strchr(c, '\n');
		int len = eol ? (int)(eol - c) : (int)strlen(c);
		sb_printf(&b, "# %.*s\n", len, c);
		c += len + (eol != NULL);
	}
	sb_printf(&b, "scenario %s\n", f->scenario);
	if (f->sha256[0] != '\0') {
		sb_printf(&b, "sha256 %s\n", f->sha256);
	}
	sb_printf(&b, "seed %" PRIu64 "\n", f->seed);
	for (int i = 0; i < f->nset; i++) {
		sb_printf(&b, "set %s=%s\n", f->set_key[i], f->set_val[i]);
	}
	sb_printf(&b, "%s", plan);
	free(plan);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* --- the running schedule ------------------------------------------------ */

sim_schedule *sim_schedule_new(void)
{
	sim_schedule *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return NULL;
	}
	sim_plan_init(&s->plan);
	sim_plan_init(&s->rec);
	return s;
}

void sim_schedule_del(sim_schedule *s)
{
	if (s == NULL) {
		return;
	}
	sim_plan_free(&s->plan);
	sim_plan_free(&s->rec);
	free(s->arity);
	free(s->prio);
	free(s->seqs);
	free(s);
}

sim_plan *sim_schedule_plan(sim_schedule *s)
{
	return &s->plan;
}

const sim_plan *sim_schedule_record(const sim_schedule *s)
{
	return &s->rec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void sim_schedule_set_strategy(sim_schedule *s, enum sim_strategy strategy,
			       uint64_t seed, int depth, uint64_t points)
{
	s->strategy = strategy;
	sim_rng_init(&s->rng, seed, "explore");
	s->nchange = 0;
	if (strategy != SIM_STRATEGY_PCT) {
		return;
	}
	if (depth < 1) {
		depth = 1;
	}
	if (depth > SIM_SCHEDULE_MAX_DEPTH) {
		depth = SIM_SCHEDULE_MAX_DEPTH;
	}
	s->depth = depth;
	if (points == 0) {
		points = 1;
	}
	/* d - 1 change points, uniform over the expected choice points. */
	for (int i = 0; i < depth - 1; i++) {
		s->change[s->nchange++] = sim_rng_below(&s->rng, points);
	}
	qsort(s->change, (size_t)s->nchange, sizeof(s->change[0]), cmp_u64);
}

void sim_schedule_set_record_order(sim_schedule *s, enum sim_order order)
{
	s->record_order = order;
	s->rec.order = order;
}

uint64_t sim_schedule_points(const sim_schedule *s)
{
	return s->points;
}

uint32_t sim_schedule_arity(const sim_schedule *s, uint64_t i)
{
	return i < s->points && i < s->arity_cap ? s->arity[i] : 0;
}

/* The candidate's rank by seq among |cands|. */
static uint32_t fifo_rank(const sim_sched_cand *cands, size_t n, size_t i)
{
	uint32_t r = 0;
	for (size_t k = 0; k < n; k++) {
		r += cands[k].seq < cands[i].seq;
	}
	return r;
}

/* The candidate whose rank by seq is |rank| (clamped to the last). */
static size_t by_fifo_rank(sim_schedule *s, const sim_sched_cand *cands,
			   size_t n, uint32_t rank)
{
	if (rank >= n) {
		rank = (uint32_t)(n - 1);
	}
	if (n > s->seqs_cap) {
		uint64_t *v = realloc(s->seqs, n * sizeof(*v));
		if (v == NULL) {
			return 0;
		}
		s->seqs = v;
		s->seqs_cap = n;
	}
	for (size_t k = 0; k < n; k++) {
		s->seqs[k] = cands[k].seq;
	}
	qsort(s->seqs, n, sizeof(*s->seqs), cmp_u64);
	for (size_t k = 0; k < n; k++) {
		if (cands[k].seq == s->seqs[rank]) {
			return k;
		}
	}
	return 0;
}

/* A chain's PCT priority, drawn when first seen: above every change
 * priority (1 .. depth - 1). */
static uint64_t chain_prio(sim_schedule *s, uint64_t chain)
{
	if (chain >= MAX_CHAINS) {
		return (uint64_t)s->depth;
	}
	if (chain >= s->prio_cap) {
		size_t cap = s->prio_cap ? s->prio_cap : 64;
		while (cap <= chain) {
			cap *= 2;
		}
		uint64_t *v = realloc(s->prio, cap * sizeof(*v));
		if (v == NULL) {
			return (uint64_t)s->depth;
		}
		memset(v + s->prio_cap, 0, (cap - s->prio_cap) * sizeof(*v));
		s->prio = v;
		s->prio_cap = cap;
	}
	if (s->prio[chain] == 0) {
		s->prio[chain] = (uint64_t)s->depth + 1 +
				 (sim_rng_next(&s->rng) >> 8);
	}
	return s->prio[chain];
}

static size_t pct_pick(sim_schedule *s, const sim_sched_cand *cands,
		       size_t n)
{
	size_t best = 0;
	for (size_t k = 1; k < n; k++) {
		uint64_t pk = chain_prio(s, cands[k].chain);
		uint64_t pb = chain_prio(s, cands[best].chain);
		/* Same chain: program order. */
		if (pk > pb || (pk == pb && cands[k].seq < cands[best].seq)) {
			best = k;
		}
	}
	return best;
}

static size_t choose(void *ud, sim_time t, const sim_sched_cand *cands,
		     size_t n)
{
	sim_schedule *s = ud;
	uint64_t point = s->points++;
	size_t pick = 0;
	(void)t;
	switch (s->strategy) {
	case SIM_STRATEGY_FORCED: {
		const sim_plan *p = &s->plan;
		while (s->cursor < p->nchoices &&
		       p->choices[s->cursor].point < point) {
			s->cursor++;
		}
		uint32_t idx = 0;
		if (s->cursor < p->nchoices &&
		    p->choices[s->cursor].point == point) {
			idx = p->choices[s->cursor].index;
		}
		if (p->order == SIM_ORDER_FIFO) {
			pick = by_fifo_rank(s, cands, n, idx);
		} else {
			pick = idx < n ? idx : n - 1;
		}
		break;
	}
	case SIM_STRATEGY_RANDOM:
		pick = (size_t)sim_rng_below(&s->rng, n);
		break;
	case SIM_STRATEGY_PCT:
		for (int i = 0; i < s->nchange; i++) {
			if (s->change[i] == point) {
				/* The chain about to run drops below all. */
				size_t k = pct_pick(s, cands, n);
				uint64_t c = cands[k].chain;
				if (c < s->prio_cap) {
					s->prio[c] = (uint64_t)i + 1;
				}
			}
		}
		pick = pct_pick(s, cands, n);
		break;
	}
	if (point < SIM_SCHEDULE_MAX_ITEMS) {
		if (point >= s->arity_cap) {
			size_t cap = s->arity_cap ? 2 * s->arity_cap : 64;
			uint32_t *v = realloc(s->arity, cap * sizeof(*v));
			if (v != NULL) {
				s->arity = v;
				s->arity_cap = cap;
			}
		}
		if (point < s->arity_cap) {
			s->arity[point] = (uint32_t)n;
		}
	}
	uint32_t rec = s->record_order == SIM_ORDER_FIFO
			       ? fifo_rank(cands, n, pick)
			       : (uint32_t)pick;
	(void)sim_plan_add_choice(&s->rec, point, rec); /* appends: cheap */
	return pick;
}

void sim_schedule_attach(sim_schedule *s, sim_sched *sched)
{
	s->cursor = 0;
	s->points = 0;
	sim_sched_set_chooser(sched, choose, s);
}

char *sim_schedule_replay_text(const sim_schedule *s)
{
	if (s->strategy == SIM_STRATEGY_FORCED) {
		return sim_plan_format(&s->plan);
	}
	sim_plan p;
	sim_plan_init(&p);
	char *text = NULL;
	if (sim_plan_copy(&p, &s->plan) == 0) {
		/* The plan's faults, the record's choices. */
		free(p.choices);
		p.choices = NULL;
		p.nchoices = p.choices_cap = 0;
		p.order = s->rec.order;
		int rc = 0;
		for (size_t i = 0; rc == 0 && i < s->rec.nchoices; i++) {
			rc = sim_plan_add_choice(&p, s->rec.choices[i].point,
						 s->rec.choices[i].index);
		}
		if (rc == 0) {
			text = sim_plan_format(&p);
		}
	}
	sim_plan_free(&p);
	return text;
}

/* --- faults ------------------------------------------------------------- */

int sim_schedule_faults_forced(const sim_schedule *s)
{
	return s->plan.faults_forced;
}

void sim_schedule_packet_faults(const sim_schedule *s, int link, int dir,
				uint64_t n, sim_packet_faults *f)
{
	memset(f, 0, sizeof(*f));
	const sim_plan *p = &s->plan;
	for (size_t i = fault_lower(p, link, dir, n, 0);
	     i < p->nfaults && p->faults[i].link == link &&
	     p->faults[i].dir == dir && p->faults[i].n == n;
	     i++) {
		const sim_fault *x = &p->faults[i];
		switch (x->kind) {
		case SIM_FAULT_LOST:
			f->lost = (int)x->value;
			break;
		case SIM_FAULT_DELAY:
			f->delay_ns = x->value;
			break;
		case SIM_FAULT_REORDER:
			f->reorder = 1;
			f->reorder_ns = x->value;
			break;
		case SIM_FAULT_DUP:
			f->dup = 1;
			f->dup_after_ns = x->value;
			break;
		case SIM_FAULT_CORRUPT:
			f->nbits = x->nbits;
			memcpy(f->bits, x->bits, x->nbits * sizeof(*x->bits));
			break;
		}
	}
}

int sim_schedule_note_faults(sim_schedule *s, int link, int dir, uint64_t n,
			     const sim_packet_faults *f)
{
	sim_fault x = {.link = link, .dir = dir, .n = n};
	int rc = 0;
	if (f->lost) {
		x.kind = SIM_FAULT_LOST;
		x.value = f->lost;
		rc = sim_plan_add_fault(&s->rec, &x);
	}
	if (rc == 0 && f->delay_ns > 0) {
		x.kind = SIM_FAULT_DELAY;
		x.value = f->delay_ns;
		rc = sim_plan_add_fault(&s->rec, &x);
	}
	if (rc == 0 && f->reorder) {
		x.kind = SIM_FAULT_REORDER;
		x.value = f->reorder_ns;
		rc = sim_plan_add_fault(&s->rec, &x);
	}
	if (rc == 0 && f->nbits > 0) {
		x.kind = SIM_FAULT_CORRUPT;
		x.value = 0;
		x.nbits = f->nbits;
		x.bits = (uint32_t *)f->bits;
		rc = sim_plan_add_fault(&s->rec, &x);
		x.nbits = 0;
		x.bits = NULL;
	}
	if (rc == 0 && f->dup) {
		x.kind = SIM_FAULT_DUP;
		x.value = f->dup_after_ns;
		rc = sim_plan_add_fault(&s->rec, &x);
	}
	s->rec.faults_forced = 1;
	return rc;
}

/* tests/unit_main.c: runs one unit test by name, or all with no argument.
 * `tlsim_unit --list` prints the names. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/unit.h"

#define MAX_TESTS 1024

static struct {
	const char *name;
	unit_fn fn;
} tests[MAX_TESTS];
static int ntests;
int unit_failures;

void unit_register(const char *name, unit_fn fn)
{
	if (ntests == MAX_TESTS) {
		fprintf(stderr, "tlsim_unit: too many tests\n");
		abort();
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	unit_failures++;
}

static char tmp_dir[256];

const char *unit_tmp_dir(void)
{
	if (tmp_dir[0] == '\0') {
		snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/tlsim-unit-XXXXXX");
		if (mkdtemp(tmp_dir) == NULL) {
			abort();
		}
	}
	return tmp_dir;
}

const char *unit_tmp_path(const char *name)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", unit_tmp_dir(), name);
	return buf[k];
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	chmod(p, 0700);
	remove(p);
	return 0;
}

void unit_tmp_cleanup(void)
{
	if (tmp_dir[0] != '\0') {
		chmod(tmp_dir, 0700);
		nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		tmp_dir[0] = '\0';
	}
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv)
{
	int ran = 0;
	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		const char *names[MAX_TESTS];
		for (int i = 0; i < ntests; i++) {
			names[i] = tests[i].name;
		}
		qsort(names, (size_t)ntests, sizeof(names[0]), cmp);
		for (int i = 0; i < ntests; i++) {
			printf("%s\n", names[i]);
		}
		return 0;
	}
	for (int i = 0; i < ntests; i++) {
		if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) {
			continue;
		}
		int before = unit_failures;
		tests[i].fn();
		ran++;
		fprintf(stderr, "%s: %s\n", tests[i].name,
			unit_failures == before ? "ok" : "FAILED");
	}
	if (ran == 0) {
		fprintf(stderr, "tlsim_unit: no test named '%s'\n",
			argc > 1 ? argv[1] : "");
		return 2;
	}
	return unit_failures == 0 ? 0 : 1;
}

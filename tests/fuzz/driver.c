/* tests/fuzz/driver.c: a main() for the fuzz harnesses without libFuzzer.
 *
 * Every harness in tests/fuzz/ defines LLVMFuzzerTestOneInput (and may
 * define LLVMFuzzerInitialize). Linked with clang -fsanitize=fuzzer, it is
 * a libFuzzer target (-DTLSIM_FUZZ=ON); linked with this file, by any
 * compiler and in every build (the ASan+UBSan one too), it is
 * tests/fuzz/NAME's `tlsim_fuzz_NAME`, which CTest runs as fuzz.NAME:
 *
 *   tlsim_fuzz_NAME [-runs=N] [-seed=S] [-max_len=L] [-v] DIR|FILE...
 *
 * It runs every input under the DIRs (files in name order, so a run is
 * the same everywhere) and FILEs once, then N mutated inputs: a copy of a
 * corpus input picked at random (or an empty one), changed one to eight
 * times by libFuzzer-like mutations (bit flips, interesting values, byte
 * insertion, erasure, duplication, crossover with another input), at most
 * L bytes (default 4096). Everything is decided by S (default 1), so a
 * failure repeats with the same arguments. No coverage feedback: this is
 * a fixed regression and smoke run; libFuzzer does the real search.
 *
 * A harness fails by crashing or aborting (a sanitizer report, an assert,
 * a property it checks). The driver then writes the input that failed to
 * ./crash-PROG-input-I (the Ith corpus input) or ./crash-PROG-run-R (the
 * Rth mutated one), from a signal handler or the sanitizer's death callback,
 * and says so, so it can become a regression input. The flags accept
 * libFuzzer's spelling; others are refused. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

#define MAX_INPUTS 100000
#define MAX_FILE (64u << 20)

typedef struct input {
	uint8_t *data;
	size_t len;
	char *name;
} input;

static input *inputs;
static size_t ninputs;

/* The input being run, for the crash handlers. */
static const uint8_t *cur_data;
static size_t cur_len;
static char crash_path[256];
static const char *prog;

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t below(size_t n)
{
	return n == 0 ? 0 : (size_t)(rnd() % n);
}

static void save_crash(void)
{
	if (cur_data == NULL || crash_path[0] == '\0') {
		return;
	}
	int fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		size_t off = 0;
		while (off < cur_len) {
			ssize_t w = write(fd, cur_data + off, cur_len - off);
			if (w <= 0) {
				break;
			}
			off += (size_t)w;
		}
		close(fd);
	}
	/* Only async-signal-safe calls here; the results do not matter. */
	static const char m[] = "\nfuzz driver: the failing input is in ./";
	int ok = write(2, m, sizeof(m) - 1) > 0 &&
		 write(2, crash_path, strlen(crash_path)) > 0 &&
		 write(2, "\n", 1) > 0;
	(void)ok;
	cur_data = NULL; /* once */
}

static void on_signal(int sig)
{
	save_crash();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int add_input(uint8_t *data, size_t len, const char *name)
{
	if (ninputs == MAX_INPUTS) {
		fprintf(stderr, "fuzz driver: more than %d inputs\n",
			MAX_INPUTS);
		return -1;
	}
	if (ninputs % 64 == 0) {
		input *v = realloc(inputs, (ninputs + 64) * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		inputs = v;
	}
	inputs[ninputs].data = data;
	inputs[ninputs].len = len;
	inputs[ninputs].name = strdup(name);
	ninputs++;
	return inputs[ninputs - 1].name != NULL ? 0 : -1;
}

static int read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "fuzz driver: cannot open %s\n", path);
		return -1;
	}
	uint8_t *buf = malloc(MAX_FILE);
	size_t n = buf != NULL ? fread(buf, 1, MAX_FILE, f) : 0;
	int bad = buf == NULL || ferror(f) || !feof(f);
	fclose(f);
	if (bad) {
		fprintf(stderr,
			"fuzz driver: cannot read %s (or above %u "
			"bytes)\n",
			path, MAX_FILE);
		free(buf);
		return -1;
	}
	uint8_t *data = realloc(buf, n > 0 ? n : 1);
	return add_input(data != NULL ? data : buf, n, path);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "fuzz driver: cannot open %s\n", dir);
		return -1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int rc = 0;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			char **v = realloc(names, cap * sizeof(*v));
			if (v == NULL) {
				rc = -1;
				break;
			}
			names = v;
		}
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		if ((names[n] = malloc(len)) == NULL) {
			rc = -1;
			break;
		}
		snprintf(names[n++], len, "%s/%s", dir, e->d_name);
	}
	closedir(d);
	if (names != NULL) {
		qsort(names, n, sizeof(*names), by_name);
	}
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (rc == 0 && stat(names[i], &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			rc = read_file(names[i]);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static const uint64_t interesting[] = {
    0,          1,           0x7f,        0x80,       0xff,
    0x100,      0x7fff,      0x8000,      0xffff,     0x10000,
    0x7fffffff, 0x80000000u, 0xffffffffu, 0x40000000, 0x3fffffffffffffffull,
    ~0ull,      ~0ull >> 1,  1ull << 63,  16,         64,
    1200,       1400,        4096,        65535,      1000000,
};

/* Applies one mutation to |buf| (|*len| bytes, room for |cap|). */
static void mutate_once(uint8_t *buf, size_t *len, size_t cap)
{
	size_t n = *len;
	switch (below(8)) {
	case 0: /* flip a bit */
		if (n > 0) {
			buf[below(n)] ^= (uint8_t)(1u << below(8));
		}
		break;
	case 1: /* a random byte */
		if (n > 0) {
			buf[below(n)] = (uint8_t)rnd();
		}
		break;
	case 2: { /* an interesting integer, 1/2/4/8 bytes, either order */
		size_t w = (size_t)1 << below(4);
		if (n < w) {
			break;
		}
		uint64_t v = interesting[below(sizeof(interesting) /
					       sizeof(interesting[0]))];
		if (rnd() & 1) {
			v = 0 - v; /* negated, without signed overflow */
		}
		size_t at = below(n - w + 1);
		int big = rnd() & 1;
		for (size_t i = 0; i < w; i++) {
			size_t sh = 8 * (big ? w - 1 - i : i);
			buf[at + i] = (uint8_t)(v >> sh);
		}
		break;
	}
	case 3: { /* insert random bytes */
		size_t k = 1 + below(8);
		if (n + k > cap) {
			break;
		}
		size_t at = below(n + 1);
		memmove(buf + at + k, buf + at, n - at);
		for (size_t i = 0; i < k; i++) {
			buf[at + i] = (uint8_t)rnd();
		}
		*len = n + k;
		break;
	}
	case 4: { /* erase a range */
		if (n == 0) {
			break;
		}
		size_t at = below(n), k = 1 + below(n - at < 16 ? n - at : 16);
		memmove(buf + at, buf + at + k, n - at - k);
		*len = n - k;
		break;
	}
	case 5: { /* duplicate a range in place */
		if (n == 0) {
			break;
		}
		size_t from = below(n), k = 1 + below(n - from);
		if (k > 64) {
			k = 64;
		}
		if (n + k > cap) {
			break;
		}
		size_t at = below(n + 1);
		uint8_t tmp[64];
		memcpy(tmp, buf + from, k);
		memmove(buf + at + k, buf + at, n - at);
		memcpy(buf + at, tmp, k);
		*len = n + k;
		break;
	}
	case 6: { /* overwrite with a piece of another input */
		if (ninputs == 0 || n == 0) {
			break;
		}
		const input *o = &inputs[below(ninputs)];
		if (o->len == 0) {
			break;
		}
		size_t from = below(o->len), at = below(n);
		size_t k = 1 + below(o->len - from);
		if (k > n - at) {
			k = n - at;
		}
		memcpy(buf + at, o->data + from, k);
		break;
	}
	default: { /* crossover: our head, another input's tail */
		if (ninputs == 0) {
			break;
		}
		const input *o = &inputs[below(ninputs)];
		size_t head = below(n + 1), from = below(o->len + 1);
		size_t k = o->len - from;
		if (head + k > cap) {
			k = cap - head;
		}
		memcpy(buf + head, o->data + from, k);
		*len = head + k;
		break;
	}
	}
}

static int run_one(const uint8_t *data, size_t len, const char *what,
		   unsigned long long i)
{
	/* An exact-size copy, so that ASan sees a read past the end. */
	uint8_t *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		return -1;
	}
	memcpy(copy, data, len);
	cur_data = copy;
	cur_len = len;
	snprintf(crash_path, sizeof(crash_path), "crash-%s-%s-%llu", prog, what,
		 i);
	LLVMFuzzerTestOneInput(copy, len);
	cur_data = NULL;
	free(copy);
	return 0;
}

static int flag(const char *arg, const char *name, unsigned long long *v)
{
	size_t n = strlen(name);
	if (strncmp(arg, name, n) != 0 || arg[n] != '=') {
		return 0;
	}
	char *end;
	*v = strtoull(arg + n + 1, &end, 10);
	return *end == '\0' && end != arg + n + 1 ? 1 : -1;
}

int main(int argc, char **argv)
{
	unsigned long long runs = 1000, seed = 1, max_len = 4096;
	int verbose = 0;
	if (LLVMFuzzerInitialize != NULL) {
		LLVMFuzzerInitialize(&argc, &argv);
	}
	const char *name = strrchr(argv[0], '/');
	name = name != NULL ? name + 1 : argv[0];
	prog = name;
	for (int i = 1; i < argc; i++) {
		int r = 0;
		if (argv[i][0] != '-') {
			struct stat st;
			r = stat(argv[i], &st) != 0 ? -1
			    : S_ISDIR(st.st_mode)   ? read_dir(argv[i])
						    : read_file(argv[i]);
			if (r != 0) {
				return 2;
			}
			continue;
		}
		if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
			continue;
		}
		if ((r = flag(argv[i], "-runs", &runs)) == 0 &&
		    (r = flag(argv[i], "-seed", &seed)) == 0) {
			r = flag(argv[i], "-max_len", &max_len);
		}
		if (r != 1 || max_len == 0 || max_len > MAX_FILE) {
			fprintf(stderr,
				"usage: %s [-runs=N] [-seed=S] [-max_len=L] "
				"[-v] DIR|FILE...\n",
				name);
			return 2;
		}
	}
	signal(SIGSEGV, on_signal);
	signal(SIGBUS, on_signal);
	signal(SIGILL, on_signal);
	signal(SIGFPE, on_signal);
	signal(SIGABRT, on_signal);
	if (__sanitizer_set_death_callback != NULL) {
		__sanitizer_set_death_callback(save_crash);
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	for (size_t i = 0; i < ninputs; i++) {
		if (verbose) {
			fprintf(stderr, "%s: %s\n", name, inputs[i].name);
		}
		if (run_one(inputs[i].data, inputs[i].len, "input", i) != 0) {
			return 3;
		}
	}
	uint8_t *buf = malloc(max_len);
	if (buf == NULL) {
		return 3;
	}
	rng_state = seed;
	for (unsigned long long r = 0; r < runs; r++) {
		size_t len = 0;
		if (ninputs > 0) {
			const input *in = &inputs[below(ninputs)];
			len = in->len < max_len ? in->len : max_len;
			memcpy(buf, in->data, len);
		}
		for (size_t k = 1 + below(8); k > 0; k--) {
			mutate_once(buf, &len, max_len);
		}
		if (run_one(buf, len, "run", r) != 0) {
			return 3;
		}
	}
	free(buf);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) +
		   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr,
		"%s: %zu inputs and %llu mutated runs (seed %llu) in %.1f s, "
		"no failure\n",
		name, ninputs, runs, seed, s);
	for (size_t i = 0; i < ninputs; i++) {
		free(inputs[i].data);
		free(inputs[i].name);
	}
	free(inputs);
	return 0;
}

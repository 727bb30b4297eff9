/* sim/main.c: the tlsim command line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "sim/entropy.h"
#include "sim/err.h"
#include "sim/lua.h"
#include "sim/trace.h"

#define MAX_SCENARIO_BYTES (16u << 20)

static const char usage_main[] =
	"usage: tlsim COMMAND [ARGS]\n"
	"\n"
	"tlsim is a deterministic discrete-event network simulator for\n"
	"hunting race conditions in secure transports.\n"
	"\n"
	"commands:\n"
	"  run SCENARIO.lua [options]   run a scenario once\n"
	"\n"
	"  tlsim --help, tlsim COMMAND --help, tlsim --version\n"
	"\n"
	"exit status: 0 every expectation held, 1 an expectation failed,\n"
	"2 usage, scenario or input error, 3 internal error.\n";

static const char usage_run[] =
	"usage: tlsim run SCENARIO.lua [options]\n"
	"\n"
	"Runs the scenario once and prints a summary.\n"
	"\n"
	"options:\n"
	"  --seed N              run seed (overrides the scenario's; default:\n"
	"                        the scenario's, else 1)\n"
	"  --trace FILE          record the run in the SQLite trace FILE\n"
	"                        (created if missing; runs are appended)\n"
	"  --set KEY=VALUE       scenario parameter, visible as arg.KEY\n"
	"                        (repeatable)\n"
	"  -q, --quiet           print nothing but errors\n"
	"  -v, --verbose         print endpoint events and passing checks\n"
	"  --max-instructions N  Lua instruction budget (default 200000000)\n"
	"  --max-memory BYTES    Lua memory cap, suffix k/M/G (default 512M)\n"
	"  --livelock-events N   events at one virtual time before a run is\n"
	"                        declared livelocked (default 1000000)\n"
	"  -h, --help            this help\n";

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "tlsim%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'tlsim %s--help')\n", cmd ? "run " : "");
	return SIM_STATUS_INPUT;
}

/* Parses a non-negative integer; 0 on success. */
static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-') {
		return -1;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno != 0 || *end != '\0') {
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (s == NULL || *s == '\0' || *s == '-') {
		return -1;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = 1;
	if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0) {
		mul = 1ULL << 10;
	} else if (strcmp(end, "M") == 0) {
		mul = 1ULL << 20;
	} else if (strcmp(end, "G") == 0) {
		mul = 1ULL << 30;
	} else if (*end != '\0') {
		return -1;
	}
	if (errno != 0 || v > UINT64_MAX / mul) {
		return -1;
	}
	*out = v * mul;
	return 0;
}

static char *read_file(const char *path, size_t *len, char *err,
		       size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "cannot read scenario '%s': %s", path,
			 strerror(errno));
		return NULL;
	}
	char *buf = malloc(MAX_SCENARIO_BYTES + 1);
	if (buf == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	size_t n = fread(buf, 1, MAX_SCENARIO_BYTES + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "cannot read scenario '%s': %s", path,
			 strerror(errno));
		free(buf);
		return NULL;
	}
	if (n > MAX_SCENARIO_BYTES) {
		snprintf(err, errlen, "scenario '%s' is larger than %u bytes",
			 path, MAX_SCENARIO_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
}

static void print_reproduce(const sim_lua_opts *o, uint64_t seed)
{
	fprintf(stderr, "  reproduce: tlsim run %s --seed %llu", o->path,
		(unsigned long long)seed);
	for (int i = 0; i < o->nset; i++) {
		fprintf(stderr, " --set %s=%s", o->set_key[i], o->set_val[i]);
	}
	fprintf(stderr, "\n");
}

static int cmd_run(int argc, char **argv)
{
	sim_lua_opts o = {0};
	const char *trace_path = NULL;
	o.verbosity = 1;
	char *setbuf[SIM_LUA_MAX_SET] = {0};

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		/* --opt=value spelling */
		char opt[64];
		const char *eq = strchr(a, '=');
		if (a[0] == '-' && a[1] == '-' && eq != NULL &&
		    (size_t)(eq - a) < sizeof(opt)) {
			memcpy(opt, a, (size_t)(eq - a));
			opt[eq - a] = '\0';
			a = opt;
			v = eq + 1;
			i--; /* no separate value to skip */
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			fputs(usage_run, stdout);
			return 0;
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
			o.verbosity = 0;
		} else if (strcmp(a, "-v") == 0 ||
			   strcmp(a, "--verbose") == 0) {
			o.verbosity = 2;
		} else if (strcmp(a, "--seed") == 0) {
			if (parse_u64(v, &o.seed) != 0) {
				return usage_error("run",
						   "--seed needs a non-negative "
						   "integer, got '%s'",
						   v ? v : "");
			}
			o.have_seed = 1;
			i++;
		} else if (strcmp(a, "--trace") == 0) {
			if (v == NULL || *v == '\0') {
				return usage_error("run", "--trace needs a file%s",
						   "");
			}
			trace_path = v;
			i++;
		} else if (strcmp(a, "--set") == 0) {
			const char *e = v ? strchr(v, '=') : NULL;
			if (e == NULL || e == v) {
				return usage_error("run",
						   "--set needs KEY=VALUE, got "
						   "'%s'",
						   v ? v : "");
			}
			if (o.nset == SIM_LUA_MAX_SET) {
				return usage_error("run", "too many --set%s", "");
			}
			char *kv = strdup(v);
			if (kv == NULL) {
				return SIM_STATUS_INTERNAL;
			}
			setbuf[o.nset] = kv;
			kv[e - v] = '\0';
			o.set_key[o.nset] = kv;
			o.set_val[o.nset] = kv + (e - v) + 1;
			o.nset++;
			i++;
		} else if (strcmp(a, "--max-instructions") == 0) {
			if (parse_u64(v, &o.max_instructions) != 0 ||
			    o.max_instructions == 0) {
				return usage_error("run",
						   "--max-instructions needs a "
						   "positive integer, got '%s'",
						   v ? v : "");
			}
			i++;
		} else if (strcmp(a, "--max-memory") == 0) {
			uint64_t m = 0;
			if (parse_size(v, &m) != 0 || m < (64u << 10)) {
				return usage_error("run",
						   "--max-memory needs a size of "
						   "at least 64k, got '%s'",
						   v ? v : "");
			}
			o.max_memory = (size_t)m;
			i++;
		} else if (strcmp(a, "--livelock-events") == 0) {
			if (parse_u64(v, &o.livelock_events) != 0 ||
			    o.livelock_events == 0) {
				return usage_error("run",
						   "--livelock-events needs a "
						   "positive integer, got '%s'",
						   v ? v : "");
			}
			i++;
		} else if (a[0] == '-' && a[1] != '\0') {
			return usage_error("run", "unknown option '%s'", a);
		} else if (o.path == NULL) {
			o.path = a;
		} else {
			return usage_error("run", "unexpected argument '%s'", a);
		}
	}
	if (o.path == NULL) {
		return usage_error("run", "missing SCENARIO.lua%s", "");
	}

	char err[512];
	size_t len;
	char *src = read_file(o.path, &len, err, sizeof(err));
	if (src == NULL) {
		fprintf(stderr, "tlsim: %s\n", err);
		return SIM_STATUS_INPUT;
	}
	char sha[65];
	sha256_hex(src, len, sha);
	o.source = src;
	o.source_len = len;
	o.sha256 = sha;

	sim_trace *trace = NULL;
	int rc = sim_trace_open(trace_path, &trace, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "tlsim: %s\n", err);
		free(src);
		return SIM_STATUS_INPUT;
	}
	o.trace = trace;

	sim_lua_result r;
	int status = sim_lua_run(&o, &r);
	if (r.trace_err != 0) {
		fprintf(stderr, "tlsim: %s\n", sim_trace_errmsg(trace));
		if (status == SIM_STATUS_PASS || status == SIM_STATUS_FAIL) {
			status = r.trace_err == SIM_EINTERNAL
					 ? SIM_STATUS_INTERNAL
					 : SIM_STATUS_INPUT;
		}
	}
	if (status == SIM_STATUS_INPUT || status == SIM_STATUS_INTERNAL) {
		fprintf(stderr, "%s\n", r.message);
	}
	if (o.verbosity > 0 && r.have_world && status != SIM_STATUS_INPUT) {
		char t[64];
		printf("%s seed %llu: %s, %llu/%llu expectations held\n",
		       o.path, (unsigned long long)r.seed, r.outcome,
		       (unsigned long long)(r.checks - r.checks_failed),
		       (unsigned long long)r.checks);
		printf("  virtual time %s, %llu events",
		       sim_time_format(r.end_ns, t, sizeof(t)),
		       (unsigned long long)r.events);
		if (r.digest[0] != '\0') {
			printf(", digest %.16s", r.digest);
		}
		if (r.run_id > 0) {
			printf(", run %lld in %s", (long long)r.run_id,
			       trace_path);
		}
		printf("\n");
		fflush(stdout);
		if (status == SIM_STATUS_FAIL) {
			fprintf(stderr, "  first failure: %s\n", r.message);
		}
	}
	if ((status == SIM_STATUS_FAIL || status == SIM_STATUS_INTERNAL) &&
	    r.have_world) {
		print_reproduce(&o, r.seed);
	}
	sim_trace_close(trace);
	free(src);
	for (int i = 0; i < o.nset; i++) {
		free(setbuf[i]);
	}
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_main, stderr);
		return SIM_STATUS_INPUT;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("tlsim %s (trace schema %d)\n", TLSIM_VERSION,
		       SIM_TRACE_SCHEMA_VERSION);
		return 0;
	}
	if (strcmp(cmd, "run") == 0) {
		/* BoringSSL reads OPENSSL_ia32cap when it loads: re-execute
		 * once with RDRAND switched off so that all of its entropy
		 * comes from the run seed. */
		if (sim_entropy_reexec(argc, argv) != 0) {
			fprintf(stderr, "tlsim: cannot re-execute with "
					"OPENSSL_ia32cap set: %s\n",
				strerror(errno));
			return SIM_STATUS_INTERNAL;
		}
		return cmd_run(argc - 2, argv + 2);
	}
	fprintf(stderr, "tlsim: unknown command '%s' (see 'tlsim --help')\n",
		cmd);
	return SIM_STATUS_INPUT;
}

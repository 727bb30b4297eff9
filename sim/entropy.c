#define _GNU_SOURCE
#include "sim/entropy.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sim/err.h"
#include "sim/rng.h"

#ifndef GRND_NONBLOCK
#define GRND_NONBLOCK 0x0001
#endif
#ifndef GRND_RANDOM
#define GRND_RANDOM 0x0002
#endif
#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

/* The stream lives in thread-local storage of the executable (initial-exec
 * TLS): reading it costs no allocation and no lock, which matters because
 * syscall() may be called from any context. */
static _Thread_local struct {
	int active;
	sim_rng rng;
	uint64_t calls;
	uint64_t bytes;
} stream;

typedef long (*syscall_fn)(long, ...);

static _Atomic(syscall_fn) real_syscall_fn;

static syscall_fn real_syscall(void)
{
	syscall_fn f =
	    atomic_load_explicit(&real_syscall_fn, memory_order_acquire);
	if (f != NULL) {
		return f;
	}
	void *sym = dlsym(RTLD_NEXT, "syscall");
	memcpy(&f, &sym, sizeof(f));
	if (f == NULL || f == syscall) {
		return NULL;
	}
	atomic_store_explicit(&real_syscall_fn, f, memory_order_release);
	return f;
}

/* Resolve glibc's syscall() before main, outside any lock a later caller
 * might hold; real_syscall() still resolves lazily if a constructor of a
 * library runs first. */
__attribute__((constructor)) static void resolve_real_syscall(void)
{
	(void)real_syscall();
}

static long serve_getrandom(void *buf, size_t len, unsigned int flags)
{
	if ((flags & ~(unsigned int)(GRND_NONBLOCK | GRND_RANDOM |
	                             GRND_INSECURE)) != 0 ||
	    (flags & (GRND_RANDOM | GRND_INSECURE)) ==
	        (GRND_RANDOM | GRND_INSECURE)) {
		errno = EINVAL;
		return -1;
	}
	if (len > SIM_ENTROPY_CALL_MAX) {
		len = SIM_ENTROPY_CALL_MAX;
	}
	if (buf == NULL && len > 0) {
		errno = EFAULT;
		return -1;
	}
	sim_rng_fill(&stream.rng, buf, len);
	stream.calls++;
	stream.bytes += len;
	return (long)len;
}

/* The interposer. libcrypto calls syscall(SYS_getrandom, buf, len, flags);
 * glibc's own code never goes through this symbol. Like glibc's syscall()
 * we read six argument words whatever the number: the ABI leaves the unused
 * ones as harmless garbage. */
long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	va_start(ap, number);
	for (int i = 0; i < 6; i++) {
		a[i] = va_arg(ap, long);
	}
	va_end(ap);

	if (number == SYS_getrandom && stream.active) {
		return serve_getrandom((void *)a[0], (size_t)a[1],
		                       (unsigned int)a[2]);
	}
	syscall_fn f = real_syscall();
	if (f != NULL) {
		return f(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
	if (number == SYS_getrandom) {
		/* glibc's getrandom() does not go through syscall(). */
		return getrandom((void *)a[0], (size_t)a[1],
		                 (unsigned int)a[2]);
	}
	errno = ENOSYS;
	return -1;
}

void sim_entropy_begin(uint64_t seed)
{
	sim_rng_init(&stream.rng, seed, "entropy");
	stream.calls = 0;
	stream.bytes = 0;
	stream.active = 1;
}

void sim_entropy_end(void)
{
	memset(&stream, 0, sizeof(stream));
}

int sim_entropy_active(void)
{
	return stream.active;
}

int sim_entropy_fill(void *out, size_t len)
{
	if (!stream.active) {
		return SIM_ESTATE;
	}
	sim_rng_fill(&stream.rng, out, len);
	return 0;
}

void sim_entropy_stats(uint64_t *calls, uint64_t *bytes)
{
	if (calls != NULL) {
		*calls = stream.active ? stream.calls : 0;
	}
	if (bytes != NULL) {
		*bytes = stream.active ? stream.bytes : 0;
	}
}

struct run {
	void *(*fn)(void *);
	void *arg;
	uint64_t seed;
	int with_stream;
	void *ret;
};

static void *run_main(void *p)
{
	struct run *r = p;
	if (r->with_stream) {
		sim_entropy_begin(r->seed);
	}
	r->ret = r->fn(r->arg);
	sim_entropy_end();
	return NULL;
}

/* The run threads' stacks, kept from one thread to the next. glibc
 * caches the stacks it makes too, but tells the kernel, as each thread
 * exits, that the stack's pages are unused (MADV_DONTNEED): the next run
 * then faulted its whole stack in again, page by page, zeroed, and the
 * madvise flushed every CPU's TLB. A thread made while all of these are
 * in use (a run thread's own helper threads, nested) gets glibc's. */
#define STACK_POOL 4
#define STACK_GUARD ((size_t)64 << 10)
static struct {
	void *low; /* the usable bytes: SIM_ENTROPY_STACK_BYTES */
	int busy;
} stacks[STACK_POOL];
static pthread_mutex_t stacks_lock = PTHREAD_MUTEX_INITIALIZER;

/* stack_take returns a free stack of the pool, making it on first use
 * (with a guard region below it, as glibc's have), or NULL. */
static void *stack_take(void)
{
	void *low = NULL;
	pthread_mutex_lock(&stacks_lock);
	for (int i = 0; i < STACK_POOL && low == NULL; i++) {
		if (stacks[i].busy) {
			continue;
		}
		if (stacks[i].low == NULL) {
			size_t len = STACK_GUARD + SIM_ENTROPY_STACK_BYTES;
			uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS |
					      MAP_NORESERVE | MAP_STACK,
					  -1, 0);
			if (m == MAP_FAILED) {
				break;
			}
			if (mprotect(m, STACK_GUARD, PROT_NONE) != 0) {
				munmap(m, len);
				break;
			}
			stacks[i].low = m + STACK_GUARD;
		}
		stacks[i].busy = 1;
		low = stacks[i].low;
	}
	pthread_mutex_unlock(&stacks_lock);
	return low;
}

static void stack_give(void *low)
{
	pthread_mutex_lock(&stacks_lock);
	for (int i = 0; i < STACK_POOL; i++) {
		if (stacks[i].low == low) {
			stacks[i].busy = 0;
		}
	}
	pthread_mutex_unlock(&stacks_lock);
}

static int start_thread(struct run *r)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc = pthread_attr_init(&attr);
	if (rc != 0) {
		return SIM_ENOMEM;
	}
	void *stack = stack_take();
	rc = stack != NULL ? pthread_attr_setstack(&attr, stack,
						   SIM_ENTROPY_STACK_BYTES)
			   : pthread_attr_setstacksize(
				 &attr, SIM_ENTROPY_STACK_BYTES);
	if (rc == 0) {
		rc = pthread_create(&t, &attr, run_main, r);
	}
	pthread_attr_destroy(&attr);
	if (rc != 0 && stack != NULL) {
		stack_give(stack);
	}
	if (rc != 0) {
		return rc == EAGAIN   ? SIM_ELIMIT
		       : rc == ENOMEM ? SIM_ENOMEM
		                      : SIM_EINTERNAL;
	}
	if (pthread_join(t, NULL) != 0) {
		return SIM_EINTERNAL; /* the stack stays taken */
	}
	if (stack != NULL) {
		stack_give(stack);
	}
	return 0;
}

/* BoringSSL's first RAND_bytes in a process probes getrandom once (a
 * one-byte GRND_NONBLOCK read to learn whether the pool is ready) and sets
 * up fork detection. Doing that here, on a thread that has no stream and
 * then exits (taking its DRBG with it), keeps it out of every run. */
static void *warm_up_main(void *unused)
{
	uint8_t b;
	RAND_bytes(&b, 1);
	return NULL;
}

static pthread_once_t warm_up_once = PTHREAD_ONCE_INIT;
static int warm_up_err;

static void warm_up(void)
{
	struct run r = {.fn = warm_up_main, .with_stream = 0};
	warm_up_err = start_thread(&r);
}

/* Set by sim_entropy_fresh_thread on a thread that has never drawn. */
static _Thread_local int fresh_here;

void sim_entropy_fresh_thread(void)
{
	fresh_here = 1;
}

/* The main thread's stack may grow to RLIMIT_STACK: a run may take it
 * only if that is at least what a run thread gets. */
static int main_stack_ok(void)
{
	struct rlimit rl;
	return getrlimit(RLIMIT_STACK, &rl) == 0 &&
	       (rl.rlim_cur == RLIM_INFINITY ||
	        rl.rlim_cur >= SIM_ENTROPY_STACK_BYTES);
}

int sim_entropy_run_thread(void *(*fn)(void *), void *arg, uint64_t seed,
                           void **ret)
{
	if (fn == NULL) {
		return SIM_EINVAL;
	}
	if (fresh_here) {
		fresh_here = 0;
		if (main_stack_ok()) {
			/* BoringSSL's one-time start-up (the getrandom
			 * readiness probe, fork detection), without giving
			 * this thread a DRBG: what the warm-up thread does. */
			CRYPTO_pre_sandbox_init();
			struct run r = {
			    .fn = fn, .arg = arg, .seed = seed, .with_stream = 1};
			run_main(&r);
			if (ret != NULL) {
				*ret = r.ret;
			}
			return 0;
		}
	}
	pthread_once(&warm_up_once, warm_up);
	if (warm_up_err != 0) {
		return warm_up_err;
	}
	struct run r = {.fn = fn, .arg = arg, .seed = seed, .with_stream = 1};
	int rc = start_thread(&r);
	if (rc == 0 && ret != NULL) {
		*ret = r.ret;
	}
	return rc;
}

int sim_entropy_reexec(int argc, char **argv)
{
	const char *v = getenv("OPENSSL_ia32cap");
	if (v != NULL && strcmp(v, SIM_ENTROPY_IA32CAP) == 0) {
		return 0;
	}
	if (argc < 1 || argv == NULL || argv[0] == NULL || argv[argc] != NULL) {
		return SIM_EINVAL;
	}
	if (setenv("OPENSSL_ia32cap", SIM_ENTROPY_IA32CAP, 1) != 0) {
		return SIM_ENOMEM;
	}
	/* Bind every symbol of every library at start-up (unless the caller
	 * chose): `tlsim sweep` forks a child per run, and with lazy binding
	 * each child resolved the same symbols again and copied the GOT
	 * pages it wrote them to (about 20 page faults per run). */
	if (setenv("LD_BIND_NOW", "1", 0) != 0) {
		return SIM_ENOMEM;
	}
	fflush(NULL);
	/* The path /proc/self/exe links to names this binary even if argv[0]
	 * is relative or was found on $PATH. Exec that path rather than the
	 * link itself: under valgrind the link is valgrind's own tool binary,
	 * while readlink() is virtualised to give the client's path. If the
	 * binary was deleted since it started, only the link still works. */
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0 && (size_t)n < sizeof(path) - 1) {
		path[n] = '\0';
		static const char deleted[] = " (deleted)";
		size_t dl = sizeof(deleted) - 1;
		if (!((size_t)n >= dl && strcmp(path + n - dl, deleted) == 0)) {
			execv(path, argv);
		}
	}
	execv("/proc/self/exe", argv);
	int e = errno;
	return e == ENOENT                   ? SIM_ENOENT
	       : (e == EACCES || e == EPERM) ? SIM_EPERM
	                                     : SIM_EIO;
}

struct probe {
	uint8_t out[32];
	uint64_t calls;
};

static void *probe_main(void *p)
{
	struct probe *pr = p;
	RAND_bytes(pr->out, sizeof(pr->out));
	sim_entropy_stats(&pr->calls, NULL);
	return NULL;
}

int sim_entropy_check(char *err, size_t errlen)
{
	char dummy[1];
	if (err == NULL) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (errlen > 0) {
		err[0] = '\0';
	}
	const char *v = getenv("OPENSSL_ia32cap");
	if (v == NULL || strcmp(v, SIM_ENTROPY_IA32CAP) != 0) {
		snprintf(err, errlen,
		         "OPENSSL_ia32cap is %s%s%s, not \"%s\": BoringSSL may "
		         "use RDRAND (main() must call sim_entropy_reexec "
		         "first)",
		         v ? "\"" : "", v ? v : "unset", v ? "\"" : "",
		         SIM_ENTROPY_IA32CAP);
		return SIM_ESTATE;
	}
	struct probe a, b, c;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	const uint64_t seed = 0x7e57e7a0b0d1ULL;
	int rc = sim_entropy_run_thread(probe_main, &a, seed, NULL);
	if (rc == 0) {
		rc = sim_entropy_run_thread(probe_main, &b, seed, NULL);
	}
	if (rc == 0) {
		rc = sim_entropy_run_thread(probe_main, &c, seed + 1, NULL);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot start a run thread: %s",
		         sim_strerror(rc));
		return rc;
	}
	if (a.calls == 0 || b.calls == 0 || c.calls == 0) {
		snprintf(err, errlen,
		         "libcrypto's getrandom does not reach the interposer "
		         "(sim/entropy.o must be linked into the executable "
		         "and export syscall)");
		return SIM_ESTATE;
	}
	if (a.calls != b.calls) {
		snprintf(err, errlen,
		         "two runs of the same seed drew %" PRIu64
		         " and %" PRIu64
		         " times from the stream: a one-time BoringSSL draw "
		         "reached a run",
		         a.calls, b.calls);
		return SIM_ESTATE;
	}
	if (memcmp(a.out, b.out, sizeof(a.out)) != 0) {
		snprintf(err, errlen,
		         "RAND_bytes differs between runs of the same seed: "
		         "BoringSSL has an entropy source besides getrandom");
		return SIM_ESTATE;
	}
	if (memcmp(a.out, c.out, sizeof(a.out)) == 0) {
		snprintf(err, errlen,
		         "RAND_bytes does not depend on the run seed");
		return SIM_ESTATE;
	}
	return 0;
}

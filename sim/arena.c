/* sim/arena.c: malloc and its family for the tlsim executable; see
 * sim/arena.h. */
#define _GNU_SOURCE /* MADV_HUGEPAGE */
#include "sim/arena.h"

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sim/err.h"

#if defined(__SANITIZE_ADDRESS__)
#define NO_ARENA 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_ARENA 1
#endif
#endif

#ifdef NO_ARENA

int sim_arena_begin(void)
{
	return SIM_ESTATE;
}

#else

/* glibc's own allocator, which the functions below stand in front of. */
void *__libc_malloc(size_t n);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

#define HUGE_BYTES ((size_t)2 << 20)
#define SMALL_MAX 1024 /* classes 1..64: 16-byte steps */
#define NCLASSES (64 + 40)

/* Every block starts with a header; the caller's bytes follow it, 16-byte
 * aligned. A free block's first 8 bytes link it into its class's list. */
typedef struct header {
	uint64_t usable; /* bytes the caller may use */
	uint64_t cls;    /* size class; 0: aligned, never reused */
} header;

static struct {
	int active;
	char lock;
	uintptr_t base, end, bump;
	void *free[NCLASSES];
} a;

static void lock(void)
{
	while (__atomic_test_and_set(&a.lock, __ATOMIC_ACQUIRE)) {
	}
}

static void unlock(void)
{
	__atomic_clear(&a.lock, __ATOMIC_RELEASE);
}

static int ours(const void *p)
{
	return (uintptr_t)p - a.base < a.end - a.base;
}

/* class_of returns the class of an |n|-byte request and sets |*size| to
 * its block's usable bytes; 0 if too large for any class. */
static int class_of(size_t n, size_t *size)
{
	if (n <= SMALL_MAX) {
		int c = n == 0 ? 1 : (int)((n + 15) >> 4);
		*size = (size_t)c << 4;
		return c;
	}
	size_t s = 2048;
	for (int c = 65; c < NCLASSES; c++, s <<= 1) {
		if (n <= s) {
			*size = s;
			return c;
		}
	}
	return 0;
}

/* carve takes |size| bytes (plus a header, the payload aligned to
 * |align|) from the bump pointer; NULL when the region is used up. */
static void *carve(size_t size, size_t align, uint64_t cls)
{
	uintptr_t p = (a.bump + sizeof(header) + align - 1) & ~(align - 1);
	if (p > a.end || a.end - p < size) {
		return NULL;
	}
	header *h = (header *)p - 1;
	h->usable = size;
	h->cls = cls;
	a.bump = p + size;
	return (void *)p;
}

static void *arena_alloc(size_t n)
{
	size_t size;
	int c = class_of(n, &size);
	if (c == 0) {
		return NULL;
	}
	lock();
	void *p = a.free[c];
	if (p != NULL) {
		memcpy(&a.free[c], p, sizeof(void *));
	} else {
		p = carve(size, 16, (uint64_t)c);
	}
	unlock();
	return p;
}

static size_t usable(const void *p)
{
	return ((const header *)p - 1)->usable;
}

/* alloc is malloc under another name: GCC turns a malloc followed by a
 * memset to zero into calloc, which inside calloc recurses (the file is
 * also built with -fno-builtin). */
static void *alloc(size_t n)
{
	if (a.active) {
		void *p = arena_alloc(n);
		if (p != NULL) {
			return p;
		}
	}
	return __libc_malloc(n);
}

void *malloc(size_t n)
{
	return alloc(n);
}

void free(void *p)
{
	if (p == NULL) {
		return;
	}
	if (!ours(p)) {
		__libc_free(p);
		return;
	}
	uint64_t c = ((header *)p - 1)->cls;
	if (c == 0 || c >= NCLASSES) {
		return; /* aligned blocks are not reused */
	}
	lock();
	memcpy(p, &a.free[c], sizeof(void *));
	a.free[c] = p;
	unlock();
}

void *calloc(size_t n, size_t size)
{
	if (!a.active) {
		return __libc_calloc(n, size);
	}
	if (size != 0 && n > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = alloc(n * size);
	if (p != NULL) {
		memset(p, 0, n * size);
	}
	return p;
}

/* glibc_usable is the usable size of a block glibc allocated: glibc's
 * chunk header (the size, low three bits flags) precedes it, and an
 * mmapped chunk (flag 2) has no next chunk to borrow from. */
static size_t glibc_usable(const void *p)
{
	size_t h = ((const size_t *)p)[-1];
	return (h & ~(size_t)7) - (h & 2 ? 2 : 1) * sizeof(size_t);
}

void *realloc(void *p, size_t n)
{
	if (p == NULL) {
		return alloc(n);
	}
	if (!ours(p)) {
		if (!a.active) {
			return __libc_realloc(p, n);
		}
		if (n == 0) {
			__libc_free(p);
			return NULL;
		}
		/* A block from before the fork moves into the arena. */
		void *q = alloc(n);
		if (q != NULL) {
			size_t old = glibc_usable(p);
			memcpy(q, p, old < n ? old : n);
			__libc_free(p);
		}
		return q;
	}
	if (n == 0) {
		free(p);
		return NULL;
	}
	size_t old = usable(p);
	if (n <= old && (n > SMALL_MAX || old - n < 256)) {
		return p;
	}
	void *q = alloc(n);
	if (q != NULL) {
		memcpy(q, p, old < n ? old : n);
		free(p);
	}
	return q;
}

void *memalign(size_t align, size_t n)
{
	if (!a.active) {
		return __libc_memalign(align, n);
	}
	if (align <= 16) {
		return alloc(n);
	}
	if ((align & (align - 1)) != 0) {
		errno = EINVAL;
		return NULL;
	}
	lock();
	void *p = carve((n + 15) & ~(size_t)15, align, 0);
	unlock();
	return p != NULL ? p : __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
	return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)) != 0) {
		return EINVAL;
	}
	void *p = memalign(align, n);
	if (p == NULL) {
		return ENOMEM;
	}
	*out = p;
	return 0;
}

void *valloc(size_t n)
{
	return memalign(4096, n);
}

void *pvalloc(size_t n)
{
	return memalign(4096, (n + 4095) & ~(size_t)4095);
}

size_t malloc_usable_size(void *p)
{
	if (p == NULL) {
		return 0;
	}
	return ours(p) ? usable(p) : glibc_usable(p);
}

int sim_arena_begin(void)
{
	const char *pre = getenv("LD_PRELOAD");
	if (a.active || (pre != NULL && strstr(pre, "vgpreload") != NULL)) {
		return SIM_ESTATE;
	}
	size_t bytes = SIM_ARENA_BYTES;
	const char *test = getenv("TLSIM_TEST_ARENA_BYTES");
	if (test != NULL && strtoull(test, NULL, 10) > 0 &&
	    strtoull(test, NULL, 10) < SIM_ARENA_BYTES) {
		bytes = (size_t)strtoull(test, NULL, 10);
	}
	size_t len = bytes + HUGE_BYTES;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		return SIM_ENOMEM;
	}
	uintptr_t base = ((uintptr_t)m + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
	/* Best effort: without transparent huge pages the region faults in
	 * 4 KiB at a time, still never touching the parent's heap. */
	(void)madvise((void *)base, bytes, MADV_HUGEPAGE);
	a.base = a.bump = base;
	a.end = base + bytes;
	a.active = 1;
	return 0;
}

#endif

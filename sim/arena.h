/* sim/arena.h: the memory of `tlsim sweep`'s children.
 *
 * A sweep forks a child per run (sim/sweep.h). On the VMs tlsim is
 * measured on, what a freshly forked child pays for most, after the fork
 * itself, is page faults: every page the run writes is either one the
 * parent had (copied on write) or a new one (zeroed), one fault each, and
 * glibc's heap spreads a run's 200 KiB over some 60 pages of both kinds.
 * sim/arena.c replaces malloc and its family in the tlsim executable
 * (ELF symbol interposition, as glibc's manual describes for replacing
 * malloc; sim/arena.c is linked into `tlsim` only). Until sim_arena_begin
 * every call goes to glibc's own functions (__libc_malloc...), unchanged.
 * After it, in a child, allocations come from one fresh private region
 * advised for transparent huge pages: the run's heap is then one huge
 * page, one fault, and nothing of the parent's heap is written. A block
 * from glibc (allocated before the fork) is still freed or reallocated
 * by glibc.
 *
 * Not compiled in under AddressSanitizer (which interposes malloc
 * itself), and sim_arena_begin does nothing under valgrind (memcheck
 * tracks glibc's heap, not this one). */
#ifndef TLSIM_SIM_ARENA_H
#define TLSIM_SIM_ARENA_H

#include <stddef.h>

/* SIM_ARENA_BYTES is the address space a child's region reserves (not
 * memory: pages are made as they are touched). An allocation that does
 * not fit in what is left goes to glibc. */
#define SIM_ARENA_BYTES ((size_t)256 << 20)

/* sim_arena_begin makes every later allocation of this process come from
 * a new region of SIM_ARENA_BYTES. Call it in a freshly forked child,
 * while it has one thread, and only there: it never ends. Returns 0, or
 * SIM_ESTATE (not compiled in, under valgrind, or already begun) or
 * SIM_ENOMEM (no region), glibc then serving on as before.
 *
 * Test hook: the environment variable TLSIM_TEST_ARENA_BYTES=N (below
 * SIM_ARENA_BYTES) makes the region N bytes, so that a run outgrows it
 * and the rest of its blocks come from glibc (tests/cli/sweep.sh). */
int sim_arena_begin(void);

#endif

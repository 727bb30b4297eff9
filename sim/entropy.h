/* sim/entropy.h: deterministic crypto entropy for BoringSSL.
 *
 * BoringSSL (Debian's prebuilt libcrypto.so.0) has exactly two entropy
 * sources on Linux/x86-64:
 *
 *  1. glibc's syscall(SYS_getrandom, ...), an imported symbol. This module
 *     defines syscall() itself; the executable's definition takes precedence
 *     over glibc's for every shared library, so libcrypto's getrandom calls
 *     land here and are served from the current run's "entropy" RNG stream
 *     (sim/rng.h). Every other syscall number is forwarded to glibc.
 *  2. RDRAND, used only when the CPU has it. OPENSSL_ia32cap (below) turns it
 *     off, but libcrypto reads the variable in a load-time constructor, so
 *     it must be in the environment before the process starts:
 *     sim_entropy_reexec() re-executes the program once with it set.
 *
 * BoringSSL keeps its CTR-DRBG state per thread and seeds it from getrandom
 * the first time a thread asks for random bytes. A thread that has already
 * drawn (with or without a stream) continues its old DRBG, so each run must
 * execute on a fresh thread: sim_entropy_run_thread().
 *
 * Linking: the interposer only works if sim/entropy.o is part of the
 * executable. The linker pulls it out of libtlsimcore.a only when something
 * in the executable references one of its functions, so the run code must
 * call sim_entropy_run_thread() or sim_entropy_begin() (and main() calls
 * sim_entropy_reexec()), and the executable must export its symbols
 * (ENABLE_EXPORTS, i.e. -rdynamic; ld also exports a definition that a
 * shared library on the link line references). `nm -D EXE | grep syscall`
 * must show "T syscall". sim_entropy_check() proves it at run time. */
#ifndef TLSIM_SIM_ENTROPY_H
#define TLSIM_SIM_ENTROPY_H

#include <stddef.h>
#include <stdint.h>

/* SIM_ENTROPY_IA32CAP is the value of OPENSSL_ia32cap that clears the
 * RDRAND bit (bit 30 of the second capability word) and the AES-NI bit
 * (bit 25). RDRAND would feed BoringSSL entropy that is not from the run
 * seed. AES-NI changes the TLS 1.3 cipher preference (AES-GCM first with
 * it, ChaCha20-Poly1305 first without), so a trace would depend on the CPU;
 * without it every x86-64 machine negotiates the same suite. */
#define SIM_ENTROPY_IA32CAP "~0x4200000000000000"

/* SIM_ENTROPY_STACK_BYTES is the stack size of a run thread (Lua and
 * BoringSSL both recurse). */
#define SIM_ENTROPY_STACK_BYTES ((size_t)8 << 20)

/* SIM_ENTROPY_CALL_MAX caps the bytes one getrandom call returns, as the
 * kernel does (MAX_RW_COUNT); callers loop on short reads. */
#define SIM_ENTROPY_CALL_MAX ((size_t)0x7ffff000)

/* sim_entropy_begin makes the calling thread's getrandom calls return the
 * stream "entropy" of run |seed| (sim_rng_init(&r, seed, "entropy")), from
 * its start, and resets the counters of sim_entropy_stats. Each call is
 * served with sim_rng_fill, so a call of n bytes consumes ceil(n/8) draws.
 * Prefer sim_entropy_run_thread: if this thread has already drawn from
 * BoringSSL's RNG, its DRBG is not reseeded and the run is not
 * deterministic. */
void sim_entropy_begin(uint64_t seed);

/* sim_entropy_end stops the calling thread's stream; later getrandom calls
 * on this thread go to the kernel. A no-op without a stream. */
void sim_entropy_end(void);

/* sim_entropy_active returns 1 if the calling thread has a stream. */
int sim_entropy_active(void);

/* sim_entropy_fill writes |len| bytes of the calling thread's stream to
 * |out|, as a getrandom call would. Returns 0, or SIM_ESTATE (and writes
 * nothing) if the thread has no stream: callers that must be deterministic
 * never fall back to real randomness. */
int sim_entropy_fill(void *out, size_t len);

/* sim_entropy_stats sets |*calls| and |*bytes| (either may be NULL) to the
 * number of getrandom calls the interposer served from the calling thread's
 * stream since sim_entropy_begin, and the bytes returned. Zero without a
 * stream. */
void sim_entropy_stats(uint64_t *calls, uint64_t *bytes);

/* sim_entropy_run_thread runs |fn|(|arg|) on a new thread with a stack of
 * SIM_ENTROPY_STACK_BYTES, inside sim_entropy_begin(|seed|) ...
 * sim_entropy_end(), waits for it and stores its return value in |*ret| (if
 * |ret| is not NULL). The first call in a process also warms BoringSSL up on
 * a throwaway thread without a stream, so that its one-time start-up draws
 * (the getrandom readiness probe) never come out of a run's stream and the
 * first run of a process draws exactly what later runs draw. Returns 0,
 * SIM_EINVAL (|fn| is NULL), SIM_ENOMEM / SIM_ELIMIT (no thread could be
 * created) or SIM_EINTERNAL. */
int sim_entropy_run_thread(void *(*fn)(void *), void *arg, uint64_t seed,
                           void **ret);

/* sim_entropy_fresh_thread declares that the calling thread has never
 * drawn from BoringSSL's RNG, as the main thread of a process forked from
 * one that never has (`tlsim sweep`'s children). The next
 * sim_entropy_run_thread on this thread then runs its function on this
 * thread instead of starting two (the warm-up and the run), after
 * BoringSSL's one-time start-up through CRYPTO_pre_sandbox_init, which
 * gives no thread a DRBG; the run draws the same bytes. Skipped (a thread
 * is started as usual) if RLIMIT_STACK is below SIM_ENTROPY_STACK_BYTES.
 * Starting two threads costs a freshly forked process 0.2-0.4 ms on the
 * VMs this was measured on, a sixth of a short QUIC run. */
void sim_entropy_fresh_thread(void);

/* sim_entropy_reexec must be the first thing main() does. If OPENSSL_ia32cap
 * is already SIM_ENTROPY_IA32CAP it returns 0. Otherwise it sets it (a
 * different value is replaced), sets LD_BIND_NOW=1 unless it is set (a
 * forked child then finds every symbol bound) and re-executes this
 * program with |argv|
 * (NULL-terminated, |argc| entries): execv() of the path /proc/self/exe
 * links to (which valgrind virtualises, so `valgrind --trace-children=yes`
 * follows), or of /proc/self/exe itself if that path is gone. It returns
 * only on failure: SIM_EINVAL (no argv), SIM_ENOMEM (setenv failed), or
 * SIM_ENOENT / SIM_EPERM / SIM_EIO from execv. stdio buffers are flushed
 * first. The process keeps its pid, fds and the rest of its environment. */
int sim_entropy_reexec(int argc, char **argv);

/* sim_entropy_check verifies that this process is set up for deterministic
 * crypto: OPENSSL_ia32cap is SIM_ENTROPY_IA32CAP, libcrypto's getrandom
 * calls reach the interposer, RAND_bytes on fresh run threads with the same
 * seed returns the same bytes, and a different seed gives different bytes.
 * Returns 0, or SIM_ESTATE with a message in |err| (|errlen| bytes,
 * NUL-terminated; |err| may be NULL), or the error of
 * sim_entropy_run_thread. */
int sim_entropy_check(char *err, size_t errlen);

#endif

/* tests/unit.h: the unit-test harness.
 *
 * A test is written TEST(name) { ... } in tests/test_<module>.c. Each
 * registers itself in the one table at start-up; tests/CMakeLists.txt finds
 * the names with a regex and registers one CTest test per name, run as
 * `tlsim_unit NAME`. CHECK* record a failure with file:line and carry on;
 * REQUIRE* also return from the test. */
#ifndef TLSIM_TESTS_UNIT_H
#define TLSIM_TESTS_UNIT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
extern int unit_failures;

/* unit_tmp_path returns |name| inside a scratch directory made on first
 * use (/tmp/tlsim-unit-XXXXXX); the last 8 results stay valid.
 * unit_tmp_dir returns the directory (making it); unit_tmp_cleanup removes
 * it and everything in it, making it writable first (a test ends with
 * it). */
const char *unit_tmp_path(const char *name);
const char *unit_tmp_dir(void);
void unit_tmp_cleanup(void);

#define TEST(name)                                                           \
	static void test_##name(void);                                       \
	__attribute__((constructor)) static void register_##name(void)      \
	{                                                                    \
		unit_register(#name, test_##name);                           \
	}                                                                    \
	static void test_##name(void)

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);   \
		}                                                            \
	} while (0)

#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!(cond)) {                                               \
			unit_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); \
			return;                                              \
		}                                                            \
	} while (0)

#define CHECK_INT(a, b)                                                      \
	do {                                                                 \
		long long a_ = (long long)(a), b_ = (long long)(b);          \
		if (a_ != b_) {                                              \
			unit_fail(__FILE__, __LINE__, "%s == %lld, want %s == %lld", \
				  #a, a_, #b, b_);                           \
		}                                                            \
	} while (0)

#define CHECK_U64(a, b)                                                      \
	do {                                                                 \
		unsigned long long a_ = (a), b_ = (b);                       \
		if (a_ != b_) {                                              \
			unit_fail(__FILE__, __LINE__,                        \
				  "%s == 0x%016llx, want 0x%016llx", #a, a_, \
				  b_);                                       \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *a_ = (a), *b_ = (b);                             \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {       \
			unit_fail(__FILE__, __LINE__, "%s == \"%s\", want \"%s\"", \
				  #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
		}                                                            \
	} while (0)

#endif

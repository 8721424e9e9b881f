/*
 * t.h - the in-house unit-test harness.
 *
 * One test binary per tests/unit/test_<module>.c. Tests register themselves
 * with TEST(name); main() comes from T_MAIN(). Each test runs in order; the
 * first failed check ends that test and is reported with file and line. The
 * binary ends with the line "N passed, N failed" that tests/run-suites sums,
 * and exits non-zero when anything failed. `test_x NAME...` runs only the
 * named tests; `test_x -l` lists them.
 *
 * Checks: T_ASSERT(cond), T_EQ(a, b) and T_NE for integers, T_STREQ(a, b),
 * T_MEMEQ(a, b, n), T_FAIL(fmt, ...). Use T_ASSERT for conditions, the typed
 * forms where printing both values helps the reader of a failure.
 */
#ifndef DSC_T_H
#define DSC_T_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void t_fn(void);

struct t_case {
	const char *name;
	t_fn *fn;
	struct t_case *next;
};

extern struct t_case *t_cases, **t_cases_tail;
extern jmp_buf t_jmp;
extern int t_failed_checks;

void t_register(struct t_case *c);
void t_fail_at(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), noreturn));
int t_main(int argc, char **argv);

#define TEST(name)                                                             \
	static void t_fn_##name(void);                                         \
	static struct t_case t_case_##name = { #name, t_fn_##name, NULL };     \
	__attribute__((constructor)) static void t_reg_##name(void)            \
	{                                                                      \
		t_register(&t_case_##name);                                    \
	}                                                                      \
	static void t_fn_##name(void)

#define T_FAIL(...) t_fail_at(__FILE__, __LINE__, __VA_ARGS__)

#define T_ASSERT(cond)                                                         \
	do {                                                                   \
		if (!(cond))                                                   \
			T_FAIL("assertion failed: %s", #cond);                 \
	} while (0)

#define T_EQ(a, b)                                                             \
	do {                                                                   \
		intmax_t t_a_ = (intmax_t)(a), t_b_ = (intmax_t)(b);           \
		if (t_a_ != t_b_)                                              \
			T_FAIL("%s == %s: %jd != %jd", #a, #b, t_a_, t_b_);    \
	} while (0)

#define T_NE(a, b)                                                             \
	do {                                                                   \
		intmax_t t_a_ = (intmax_t)(a), t_b_ = (intmax_t)(b);           \
		if (t_a_ == t_b_)                                              \
			T_FAIL("%s != %s: both %jd", #a, #b, t_a_);            \
	} while (0)

#define T_STREQ(a, b)                                                          \
	do {                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0)   \
			T_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b,           \
			       t_a_ ? t_a_ : "(null)",                         \
			       t_b_ ? t_b_ : "(null)");                        \
	} while (0)

#define T_MEMEQ(a, b, n)                                                       \
	do {                                                                   \
		if (memcmp((a), (b), (n)) != 0)                                \
			T_FAIL("%s == %s: %zu bytes differ", #a, #b,           \
			       (size_t)(n));                                   \
	} while (0)

/* Defines main(); put it once at the end of each test file. */
#define T_MAIN()                                                               \
	int main(int argc, char **argv)                                        \
	{                                                                      \
		return t_main(argc, argv);                                     \
	}

#endif

/*
 * test_err.c - the error table, dsc_errorf truncation and dsc_err_wrap.
 */
#include "err.h"

#include "t.h"

/* ---- helpers ------------------------------------------------------- */

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A string of @n copies of @c, in a static buffer. */
static const char *
repeat(char c, size_t n)
{
	static char s[1024];

	T_ASSERT(n < sizeof(s));
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* ---- the table ----------------------------------------------------- */

TEST(every_code_has_a_name_message_and_class)
{
	for (int c = 0; c < DSC_E_MAX; c++) {
		const char *name = dsc_errname(c), *msg = dsc_strerror(c);
		int cls = dsc_exit_class(c);

		T_ASSERT(strncmp(name, "DSC_", 4) == 0);
		T_ASSERT(msg[0] != '\0');
		T_ASSERT(cls >= DSC_EXIT_OK && cls <= DSC_EXIT_PERM);
		/* Only success maps to exit 0. */
		T_EQ(cls == DSC_EXIT_OK, c == DSC_OK);
		for (int d = 0; d < c; d++)
			T_ASSERT(strcmp(dsc_errname(d), name) != 0);
	}
}

TEST(known_rows)
{
	T_EQ(DSC_OK, 0);
	T_STREQ(dsc_strerror(DSC_OK), "success");
	T_STREQ(dsc_errname(DSC_ENOMEM), "DSC_ENOMEM");
	T_STREQ(dsc_strerror(DSC_ENOMEM), "out of memory");
	T_EQ(dsc_exit_class(DSC_ENOMEM), DSC_EXIT_TEMP);
	T_EQ(dsc_exit_class(DSC_ENOTFOUND), DSC_EXIT_NO);
	T_EQ(dsc_exit_class(DSC_EUSAGE), DSC_EXIT_USAGE);
	T_EQ(dsc_exit_class(DSC_ECORRUPT), DSC_EXIT_PERM);
	T_STREQ(dsc_errname(DSC_ESTOPPED), "DSC_ESTOPPED");
}

TEST(unknown_codes_are_permanent)
{
	int bad[] = { -1, DSC_E_MAX, DSC_E_MAX + 1, 1 << 30 };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		T_STREQ(dsc_strerror(bad[i]), "unknown error");
		T_STREQ(dsc_errname(bad[i]), "DSC_E_UNKNOWN");
		T_EQ(dsc_exit_class(bad[i]), DSC_EXIT_PERM);
	}
}

/* ---- dsc_errorf ---------------------------------------------------- */

TEST(errorf_sets_code_and_message)
{
	struct dsc_err err = DSC_ERR_INIT;

	T_EQ(err.code, DSC_OK);
	T_STREQ(err.msg, "");
	T_EQ(dsc_errorf(&err, DSC_EINVAL, "port '%ld' out of range", 70000L),
	    DSC_EINVAL);
	T_EQ(err.code, DSC_EINVAL);
	T_STREQ(err.msg, "port '70000' out of range");
	T_STREQ(dsc_err_msg(&err), "port '70000' out of range");
}

TEST(errorf_without_err_returns_code)
{
	T_EQ(dsc_errorf(NULL, DSC_EBUSY, "ignored %d", 1), DSC_EBUSY);
}

TEST(errorf_exact_fit_is_not_marked)
{
	struct dsc_err err = DSC_ERR_INIT;
	const char *s = repeat('a', DSC_ERRMSG_MAX - 1);

	dsc_errorf(&err, DSC_EIO, "%s", s);
	T_STREQ(err.msg, s);
}

TEST(errorf_truncates_with_a_mark)
{
	struct dsc_err err = DSC_ERR_INIT;

	dsc_errorf(&err, DSC_EIO, "%s-%s", repeat('b', 300), "tail");
	T_EQ(strlen(err.msg), DSC_ERRMSG_MAX - 1);
	T_ASSERT(ends_with(err.msg, "..."));
	T_ASSERT(strncmp(err.msg, "bbbb", 4) == 0);
	T_EQ(err.code, DSC_EIO);
}

/* ---- dsc_err_wrap -------------------------------------------------- */

TEST(wrap_prefixes_context_and_keeps_code)
{
	struct dsc_err err = DSC_ERR_INIT;

	dsc_errorf(&err, DSC_EIO, "permission denied");
	dsc_err_wrap(&err, "unable to open '%s'", "x");
	T_STREQ(err.msg, "unable to open 'x': permission denied");
	T_EQ(err.code, DSC_EIO);
	dsc_err_wrap(&err, "loading config");
	T_STREQ(err.msg,
	    "loading config: unable to open 'x': permission denied");
}

TEST(wrap_of_empty_message_uses_the_table)
{
	struct dsc_err err = DSC_ERR_INIT;

	err.code = DSC_ENOMEM;
	T_STREQ(dsc_err_msg(&err), "out of memory");
	dsc_err_wrap(&err, "adding entry %d", 7);
	T_STREQ(err.msg, "adding entry 7: out of memory");
}

TEST(wrap_null_is_a_no_op)
{
	dsc_err_wrap(NULL, "nothing %s", "here");
}

TEST(wrap_truncates_the_old_message)
{
	struct dsc_err err = DSC_ERR_INIT;

	dsc_errorf(&err, DSC_EIO, "%s", repeat('m', 200));
	dsc_err_wrap(&err, "%s", repeat('c', 100));
	T_EQ(strlen(err.msg), DSC_ERRMSG_MAX - 1);
	T_ASSERT(strncmp(err.msg, repeat('c', 100), 100) == 0);
	T_ASSERT(strncmp(err.msg + 100, ": mmm", 5) == 0);
	T_ASSERT(ends_with(err.msg, "..."));
}

TEST(wrap_with_huge_context_stays_bounded)
{
	struct dsc_err err = DSC_ERR_INIT;

	dsc_errorf(&err, DSC_EIO, "inner");
	for (int i = 0; i < 3; i++) {
		dsc_err_wrap(&err, "%s", repeat('z', 254 - i));
		T_EQ(strlen(err.msg), DSC_ERRMSG_MAX - 1);
		T_ASSERT(ends_with(err.msg, "..."));
	}
	T_EQ(err.code, DSC_EIO);
}

TEST(wrap_exact_fit_is_not_marked)
{
	struct dsc_err err = DSC_ERR_INIT;
	char want[DSC_ERRMSG_MAX];

	/* 100 + 2 + 153 == 255 characters: fits exactly. */
	memset(want, 'p', 100);
	memcpy(want + 100, ": ", 2);
	memset(want + 102, 'o', 153);
	want[255] = '\0';
	dsc_errorf(&err, DSC_EIO, "%s", repeat('o', 153));
	dsc_err_wrap(&err, "%s", repeat('p', 100));
	T_STREQ(err.msg, want);
}

/* ---- clear and msg ------------------------------------------------- */

TEST(clear_resets)
{
	struct dsc_err err = DSC_ERR_INIT;

	dsc_errorf(&err, DSC_EAUTH, "bad token '%s'", "t1");
	dsc_err_clear(&err);
	T_EQ(err.code, DSC_OK);
	T_STREQ(err.msg, "");
	T_STREQ(dsc_err_msg(&err), "success");
	dsc_err_clear(NULL);
	T_STREQ(dsc_err_msg(NULL), "success");
}

T_MAIN()

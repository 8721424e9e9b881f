/*
 * test_duration.c - Go duration text: what time.ParseDuration accepts and
 * refuses, Duration.String's output, and the JSON forms.
 */
#include "duration.h"

#include "t.h"

/* ---- helpers ------------------------------------------------------- */

#define PARSES(s, want)                                                        \
	do {                                                                   \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		int64_t ns_ = -12345;                                          \
		T_EQ(dur_parse((s), &ns_, &e_), 0);                            \
		T_EQ(ns_, (want));                                             \
	} while (0)

#define REFUSED(s)                                                             \
	do {                                                                   \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		int64_t ns_ = -12345;                                          \
		T_EQ(dur_parse((s), &ns_, &e_), DSC_EINVAL);                   \
		T_EQ(ns_, -12345);                                             \
		T_ASSERT(strstr(e_.msg, "invalid duration") != NULL);          \
	} while (0)

#define FORMATS(ns, want)                                                      \
	do {                                                                   \
		char b_[DUR_FMT_MAX];                                          \
		T_STREQ(dur_format((ns), b_), (want));                         \
	} while (0)

#define S  INT64_C(1000000000)
#define MS INT64_C(1000000)

/* ---- parsing ------------------------------------------------------- */

TEST(parse_go_examples)
{
	PARSES("0", 0);
	PARSES("+0", 0);
	PARSES("-0", 0);
	PARSES("0s", 0);
	PARSES("10s", 10 * S);
	PARSES("1m30s", 90 * S);
	PARSES("500ms", 500 * MS);
	PARSES("120000ms", 120 * S);
	PARSES("1.5h", 5400 * S);
	PARSES("-2h45m", -(2 * 3600 + 45 * 60) * S);
	PARSES("1ns", 1);
	PARSES("1us", 1000);
	PARSES("1\xc2\xb5s", 1000);
	PARSES("1\xce\xbcs", 1000);
	PARSES(".5s", 500 * MS);
	PARSES("1.s", S);
	PARSES("1h1m1s1ms1us1ns", 3661 * S + MS + 1000 + 1);
	PARSES("0.000000001s", 1);
	/* Go keeps only the fraction digits that fit, ignoring the rest. */
	PARSES("0.1000000000000000000000000001s", 100 * MS);
	PARSES("9223372036854775807ns", INT64_MAX);
	PARSES("-9223372036854775808ns", INT64_MIN);
}

TEST(parse_refuses_what_go_refuses)
{
	REFUSED("");
	REFUSED("-");
	REFUSED("1");
	REFUSED("10");
	REFUSED("s");
	REFUSED(".s");
	REFUSED(".");
	REFUSED("1d");
	REFUSED("1 s");
	REFUSED(" 1s");
	REFUSED("1s ");
	REFUSED("1S");
	REFUSED("1sec");
	REFUSED("--1s");
	REFUSED("9223372036854775808ns");
	REFUSED("2562048h");
	REFUSED("99999999999999999999s");
	REFUSED("1e3s");
}

TEST(parse_error_names_the_unit_and_bounds_the_text)
{
	struct dsc_err e = DSC_ERR_INIT;
	char long_text[DUR_TEXT_MAX + 8];
	int64_t ns;

	T_EQ(dur_parse("3d", &ns, &e), DSC_EINVAL);
	T_STREQ(e.msg, "invalid duration '3d': unknown unit 'd'");
	T_EQ(dur_parse("7", &ns, &e), DSC_EINVAL);
	T_STREQ(e.msg, "invalid duration '7': missing unit");
	memset(long_text, '1', sizeof(long_text) - 2);
	long_text[sizeof(long_text) - 2] = 's';
	long_text[sizeof(long_text) - 1] = '\0';
	T_EQ(dur_parse(long_text, &ns, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "longer than") != NULL);
}

TEST(parse_ms_rounds_up_and_refuses_negative)
{
	struct dsc_err e = DSC_ERR_INIT;
	uint64_t ms = 7;

	T_EQ(dur_parse_ms("1ns", &ms, &e), 0);
	T_EQ(ms, 1);
	T_EQ(dur_parse_ms("0", &ms, &e), 0);
	T_EQ(ms, 0);
	T_EQ(dur_parse_ms("1m", &ms, &e), 0);
	T_EQ(ms, 60000);
	T_EQ(dur_parse_ms("1.0005s", &ms, &e), 0);
	T_EQ(ms, 1001);
	ms = 7;
	T_EQ(dur_parse_ms("-1s", &ms, &e), DSC_EINVAL);
	T_EQ(ms, 7);
	T_STREQ(e.msg, "invalid duration '-1s': negative");
}

/* ---- JSON ---------------------------------------------------------- */

TEST(json_string_or_integer_nanoseconds)
{
	struct dsc_err e = DSC_ERR_INIT;
	json_t *v;
	int64_t ns = 0;

	v = json_string("90s");
	T_EQ(dur_json(v, &ns, &e), 0);
	T_EQ(ns, 90 * S);
	json_decref(v);
	v = json_integer(10 * S);
	T_EQ(dur_json(v, &ns, &e), 0);
	T_EQ(ns, 10 * S);
	json_decref(v);
	v = json_real(1.5);
	T_EQ(dur_json(v, &ns, &e), DSC_EINVAL);
	json_decref(v);
	T_EQ(dur_json(json_true(), &ns, &e), DSC_EINVAL);
	T_EQ(dur_json(json_null(), &ns, &e), DSC_EINVAL);
	T_EQ(dur_json(NULL, &ns, &e), DSC_EINVAL);
}

/* ---- formatting ---------------------------------------------------- */

TEST(format_is_go_string)
{
	FORMATS(0, "0s");
	FORMATS(1, "1ns");
	FORMATS(1100, "1.1\xc2\xb5s");
	FORMATS(2200 * 1000, "2.2ms");
	FORMATS(500 * MS, "500ms");
	FORMATS(S, "1s");
	FORMATS(3300 * MS, "3.3s");
	FORMATS(90 * S, "1m30s");
	FORMATS(10 * S, "10s");
	FORMATS(4 * 60 * S + 5 * S + 1, "4m5.000000001s");
	FORMATS(5 * 3600 * S + 6 * 60 * S + 7001 * MS, "5h6m7.001s");
	FORMATS(8 * 60 * S + 1, "8m0.000000001s");
	FORMATS(3600 * S, "1h0m0s");
	FORMATS(-90 * S, "-1m30s");
	FORMATS(INT64_MAX, "2562047h47m16.854775807s");
	FORMATS(INT64_MIN, "-2562047h47m16.854775808s");
}

TEST(format_then_parse_round_trips)
{
	static const int64_t v[] = { 1, 999, 1000, 1500 * MS, 61 * S,
		3601 * S + 1, INT64_MAX, INT64_MIN, -7 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char b[DUR_FMT_MAX];
		int64_t ns;

		T_EQ(dur_parse(dur_format(v[i], b), &ns, NULL), 0);
		T_EQ(ns, v[i]);
	}
}

T_MAIN()

/*
 * duration.c - Go duration text, parsed and printed.
 *
 * A port of time.ParseDuration and Duration.String (Go's time/format.go):
 * the same grammar, the same overflow rules and the same output, because
 * the strings travel between dsc and Go clients in both directions.
 */
#include "duration.h"

#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#define NS_US UINT64_C(1000)
#define NS_MS (NS_US * 1000)
#define NS_S  (NS_MS * 1000)
#define NS_M  (NS_S * 60)
#define NS_H  (NS_M * 60)
#define LIMIT (UINT64_C(1) << 63)

static const struct {
	const char *name;
	uint64_t ns;
} units[] = {
	{ "ns", 1 },
	{ "us", NS_US },
	{ "\xc2\xb5s", NS_US }, /* U+00B5 micro sign */
	{ "\xce\xbcs", NS_US }, /* U+03BC Greek small letter mu */
	{ "ms", NS_MS },
	{ "s", NS_S },
	{ "m", NS_M },
	{ "h", NS_H },
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Consumes [0-9]*; false on overflow past 2^63 (Go's leadingInt). */
static bool
leading_int(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t x = 0;

	for (; is_digit(*s); s++) {
		if (x > LIMIT / 10)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > LIMIT)
			return false;
	}
	*sp = s;
	*out = x;
	return true;
}

/* Consumes [0-9]* after a '.', keeping the digits that fit (Go's
 * leadingFraction): @f / @scale is the fraction. */
static void
leading_fraction(const char **sp, uint64_t *f, double *scale)
{
	const char *s = *sp;
	bool overflow = false;

	*f = 0;
	*scale = 1;
	for (; is_digit(*s); s++) {
		if (overflow)
			continue;
		if (*f > (LIMIT - 1) / 10) {
			overflow = true;
			continue;
		}
		uint64_t y = *f * 10 + (uint64_t)(*s - '0');
		if (y > LIMIT) {
			overflow = true;
			continue;
		}
		*f = y;
		*scale *= 10;
	}
	*sp = s;
}

static int
bad(struct dsc_err *err, const char *orig, const char *why)
{
	return dsc_errorf(err, DSC_EINVAL, "invalid duration '%s'%s%s", orig,
	    *why != '\0' ? ": " : "", why);
}

int
dur_parse(const char *orig, int64_t *ns, struct dsc_err *err)
{
	const char *s = orig;
	uint64_t d = 0;
	bool neg = false;

	if (strnlen(orig, DUR_TEXT_MAX + 1) > DUR_TEXT_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid duration: longer than %d bytes", DUR_TEXT_MAX);
	if (*s == '-' || *s == '+')
		neg = *s++ == '-';
	if (strcmp(s, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*s == '\0')
		return bad(err, orig, "");
	while (*s != '\0') {
		const char *start = s, *u;
		uint64_t v, f = 0, unit = 0;
		double scale = 1;
		bool pre, post = false;
		size_t ulen;

		if (!(*s == '.' || is_digit(*s)))
			return bad(err, orig, "");
		if (!leading_int(&s, &v))
			return bad(err, orig, "out of range");
		pre = s != start;
		if (*s == '.') {
			const char *fs = ++s;

			leading_fraction(&s, &f, &scale);
			post = s != fs;
		}
		if (!pre && !post)
			return bad(err, orig, "");
		for (u = s; *s != '\0' && *s != '.' && !is_digit(*s); s++)
			;
		ulen = (size_t)(s - u);
		if (ulen == 0)
			return bad(err, orig, "missing unit");
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].name) == ulen &&
			    memcmp(units[i].name, u, ulen) == 0)
				unit = units[i].ns;
		if (unit == 0)
			return dsc_errorf(err, DSC_EINVAL,
			    "invalid duration '%s': unknown unit '%.*s'", orig,
			    (int)ulen, u);
		if (v > LIMIT / unit)
			return bad(err, orig, "out of range");
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > LIMIT)
				return bad(err, orig, "out of range");
		}
		d += v;
		if (d > LIMIT)
			return bad(err, orig, "out of range");
	}
	if (neg) {
		*ns = d == LIMIT ? INT64_MIN : -(int64_t)d;
		return 0;
	}
	if (d > LIMIT - 1)
		return bad(err, orig, "out of range");
	*ns = (int64_t)d;
	return 0;
}

static int
to_ms(int64_t ns, const char *what, uint64_t *ms, struct dsc_err *err)
{
	if (ns < 0)
		return dsc_errorf(
		    err, DSC_EINVAL, "invalid duration '%s': negative", what);
	*ms = (uint64_t)ns / NS_MS + ((uint64_t)ns % NS_MS != 0);
	return 0;
}

int
dur_parse_ms(const char *s, uint64_t *ms, struct dsc_err *err)
{
	int64_t ns;
	int rc;

	if ((rc = dur_parse(s, &ns, err)) != 0)
		return rc;
	return to_ms(ns, s, ms, err);
}

int
dur_json(const json_t *v, int64_t *ns, struct dsc_err *err)
{
	if (json_is_string(v))
		return dur_parse(json_string_value(v), ns, err);
	if (json_is_integer(v)) {
		*ns = (int64_t)json_integer_value(v);
		return 0;
	}
	return dsc_errorf(err, DSC_EINVAL,
	    "invalid duration: want a string like \"10s\" or integer "
	    "nanoseconds");
}

/* Go's fmtFrac: the low @prec digits of @v as a fraction without trailing
 * zeros, written backwards ending at @w; returns the new start. */
static size_t
fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
	bool print = false;

	for (int i = 0; i < prec; i++) {
		unsigned digit = (unsigned)(*v % 10);

		print = print || digit != 0;
		if (print)
			buf[--w] = (char)('0' + digit);
		*v /= 10;
	}
	if (print)
		buf[--w] = '.';
	return w;
}

static size_t
fmt_int(char *buf, size_t w, uint64_t v)
{
	if (v == 0)
		buf[--w] = '0';
	for (; v > 0; v /= 10)
		buf[--w] = (char)('0' + v % 10);
	return w;
}

char *
dur_format(int64_t ns, char buf[DUR_FMT_MAX])
{
	char tmp[DUR_FMT_MAX];
	size_t w = sizeof(tmp) - 1;
	bool neg = ns < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;

	tmp[w] = '\0';
	if (u == 0) {
		memcpy(buf, "0s", 3);
		return buf;
	}
	tmp[--w] = 's';
	if (u < NS_S) {
		int prec;

		if (u < NS_US) {
			prec = 0;
			tmp[--w] = 'n';
		} else if (u < NS_MS) {
			prec = 3;
			w -= 2;
			memcpy(tmp + w, "\xc2\xb5", 2);
		} else {
			prec = 6;
			tmp[--w] = 'm';
		}
		w = fmt_frac(tmp, w, &u, prec);
		w = fmt_int(tmp, w, u);
	} else {
		w = fmt_frac(tmp, w, &u, 9);
		w = fmt_int(tmp, w, u % 60);
		u /= 60;
		if (u > 0) {
			tmp[--w] = 'm';
			w = fmt_int(tmp, w, u % 60);
			u /= 60;
			if (u > 0) {
				tmp[--w] = 'h';
				w = fmt_int(tmp, w, u);
			}
		}
	}
	if (neg)
		tmp[--w] = '-';
	memcpy(buf, tmp + w, sizeof(tmp) - w);
	return buf;
}

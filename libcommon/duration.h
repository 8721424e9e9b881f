/*
 * duration.h - Go's time.Duration syntax, the one Consul's API speaks.
 *
 * A duration is a signed count of nanoseconds that fits an int64 (about
 * 292 years either way). The text form is Go's: "0", or an optional sign
 * and one or more decimal numbers each with a unit, "10s", "1m30s",
 * "500ms", "1.5h", "-2h45m", "120000ms"; units ns, us, µs (U+00B5 or
 * U+03BC), ms, s, m, h. Parsing follows time.ParseDuration exactly,
 * including what it refuses ("", "1", "s", ".s", "1d", overflow), so a
 * value Consul accepts is accepted here and the other way round.
 * In JSON (consul-api.md 2.1.3) a duration is such a string or an integer
 * count of nanoseconds.
 *
 * Callers decide about negative values: dur_parse() returns them as Go
 * does; the helpers ending in _ms refuse them.
 */
#ifndef DSC_DURATION_H
#define DSC_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

#define DUR_NS_PER_MS INT64_C(1000000)
/* Bytes dur_format() may write, NUL included ("-2562047h47m16.854775808s"). */
#define DUR_FMT_MAX   32
/* Longest text dur_parse() looks at; Go has no limit, hostile input does. */
#define DUR_TEXT_MAX  64

/*
 * Parses @s into *@ns. DSC_EINVAL with a message quoting @s ("invalid
 * duration '1d': unknown unit 'd'") on anything Go refuses, and on text
 * longer than DUR_TEXT_MAX; *@ns is written only on success.
 */
int dur_parse(const char *s, int64_t *ns, struct dsc_err *err);

/*
 * As dur_parse(), for a duration that must not be negative, in whole
 * milliseconds (rounded up, so "1ns" is 1 ms and never "no time").
 */
int dur_parse_ms(const char *s, uint64_t *ms, struct dsc_err *err);

/*
 * A JSON duration: a Go duration string or an integer of nanoseconds.
 * Anything else (a real, a bool, null) is DSC_EINVAL.
 */
int dur_json(const json_t *v, int64_t *ns, struct dsc_err *err);

/*
 * Writes @ns the way Go's Duration.String() does ("1h30m0s", "1.5s",
 * "500ms", "0s") into @buf and returns it.
 */
char *dur_format(int64_t ns, char buf[DUR_FMT_MAX]);

#endif

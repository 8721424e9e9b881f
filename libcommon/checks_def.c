/*
 * checks_def.c - check definitions: what checker_start accepts, and the
 * copies a run keeps. Every string comes from a client of the agent, so
 * each has a named limit (checks.h) and a one-line refusal that quotes it.
 */
#include "checks_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

int
checks_status_parse(const char *s, enum check_status *st)
{
	size_t i;

	for (i = 0; i <= CHECK_CRITICAL; i++) {
		if (strcmp(s, checks_status_names[i]) == 0) {
			*st = (enum check_status)i;
			return 0;
		}
	}
	return DSC_EINVAL;
}

static bool
is_token(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0' && n <= max; n++)
		if (!isalnum((unsigned char)s[n]) &&
		    strchr("!#$%&'*+-.^_`|~", s[n]) == NULL)
			return false;
	return n > 0 && n <= max;
}

static bool
has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* A "Name: value" header line a request can carry as it is. */
static int
check_header(const char *h, struct dsc_err *err)
{
	const char *colon;
	char name[CHECK_HEADER_MAX + 1];

	if (h == NULL || strlen(h) > CHECK_HEADER_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "header longer than %d bytes", CHECK_HEADER_MAX);
	colon = strchr(h, ':');
	if (colon == NULL)
		return dsc_errorf(
		    err, DSC_EINVAL, "header '%.64s' is not 'Name: value'", h);
	memcpy(name, h, (size_t)(colon - h));
	name[colon - h] = '\0';
	if (!is_token(name, CHECK_HEADER_MAX) || has_ctl(colon))
		return dsc_errorf(err, DSC_EINVAL, "invalid header '%.64s'", h);
	return 0;
}

/* "host:port", host a name, an IPv4 address or a bracketed IPv6 one. */
static int
check_tcp_addr(const char *a, struct dsc_err *err)
{
	const char *colon = a != NULL ? strrchr(a, ':') : NULL;
	size_t hlen;
	char *end;
	long port;

	if (colon == NULL || strlen(a) > CHECK_ADDR_MAX)
		goto bad;
	hlen = (size_t)(colon - a);
	if (hlen == 0 || colon[1] == '\0' || !isdigit((unsigned char)colon[1]))
		goto bad;
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535)
		goto bad;
	if (a[0] == '[') {
		if (hlen < 3 || a[hlen - 1] != ']' ||
		    strspn(a + 1, "0123456789abcdefABCDEF:.") != hlen - 2)
			goto bad;
	} else if (strspn(a,
	               "0123456789abcdefghijklmnopqrstuvwxyz"
	               "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_") != hlen) {
		goto bad;
	}
	return 0;
bad:
	return dsc_errorf(err, DSC_EINVAL,
	    "invalid TCP check address '%.64s': want host:port", a ? a : "");
}

static int
check_http(const struct check_def *d, struct dsc_err *err)
{
	CURLU *u;
	CURLUcode uc;
	size_t i;

	if (d->http == NULL || strlen(d->http) > CHECK_URL_MAX ||
	    has_ctl(d->http) || strchr(d->http, ' ') != NULL ||
	    (strncasecmp(d->http, "http://", 7) != 0 &&
	        strncasecmp(d->http, "https://", 8) != 0))
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid HTTP check URL '%.64s': want http:// or https://",
		    d->http ? d->http : "");
	if ((u = curl_url()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	uc = curl_url_set(u, CURLUPART_URL, d->http, 0);
	curl_url_cleanup(u);
	if (uc == CURLUE_OUT_OF_MEMORY)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	if (uc != CURLUE_OK)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid HTTP check URL '%.64s': %s", d->http,
		    curl_url_strerror(uc));
	if (d->method != NULL && !is_token(d->method, CHECK_METHOD_MAX))
		return dsc_errorf(
		    err, DSC_EINVAL, "invalid HTTP method '%.32s'", d->method);
	if (d->body != NULL && strlen(d->body) > CHECK_BODY_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "HTTP check body longer than %d bytes", CHECK_BODY_MAX);
	if (d->n_headers > CHECK_HEADERS_MAX)
		return dsc_errorf(
		    err, DSC_EINVAL, "more than %d headers", CHECK_HEADERS_MAX);
	for (i = 0; i < d->n_headers; i++)
		if (check_header(d->headers[i], err) != 0)
			return err != NULL ? err->code : DSC_EINVAL;
	return 0;
}

static int
check_script(const struct check_def *d, struct dsc_err *err)
{
	size_t i;

	if (d->n_args == 0 || d->n_args >= CHECK_ARGS_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "a script check needs 1 to %d arguments",
		    CHECK_ARGS_MAX - 1);
	for (i = 0; i < d->n_args; i++)
		if (d->args[i] == NULL || strlen(d->args[i]) > CHECK_ARG_MAX)
			return dsc_errorf(err, DSC_EINVAL,
			    "script argument %zu missing or longer than %d "
			    "bytes",
			    i, CHECK_ARG_MAX);
	if (d->args[0][0] == '\0')
		return dsc_errorf(err, DSC_EINVAL, "empty script name");
	return 0;
}

int
checks_def_valid(bool allow_scripts, const struct check_def *d,
    enum check_status *initial, struct dsc_err *err)
{
	uint64_t period = d->kind == CHECK_TTL ? d->ttl_ms : d->interval_ms;

	if (d->kind == CHECK_SCRIPT && !allow_scripts)
		return dsc_errorf(err, DSC_EINVAL,
		    "script checks are disabled; start the agent with "
		    "--enable-script-checks");
	if ((int)d->kind < CHECK_TTL || d->kind > CHECK_SCRIPT)
		return dsc_errorf(
		    err, DSC_EINVAL, "unknown check kind %d", (int)d->kind);
	if (period == 0 || period > CHECK_DURATION_MAX_MS)
		return dsc_errorf(err, DSC_EINVAL,
		    "check %s must be between 1 ms and %d days",
		    d->kind == CHECK_TTL ? "TTL" : "interval",
		    CHECK_DURATION_MAX_DAYS);
	if (d->timeout_ms > CHECK_DURATION_MAX_MS)
		return dsc_errorf(err, DSC_EINVAL,
		    "check timeout longer than %d days",
		    CHECK_DURATION_MAX_DAYS);
	if (d->output_max > CHECK_OUTPUT_MAX_LIMIT)
		return dsc_errorf(err, DSC_EINVAL,
		    "check output limit above %d bytes",
		    CHECK_OUTPUT_MAX_LIMIT);
	*initial = CHECK_CRITICAL;
	if (d->initial_status != NULL &&
	    checks_status_parse(d->initial_status, initial) != 0)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid check status '%.32s': want passing, warning or "
		    "critical",
		    d->initial_status);
	switch (d->kind) {
	case CHECK_HTTP:
		return check_http(d, err);
	case CHECK_TCP:
		return check_tcp_addr(d->tcp, err);
	case CHECK_SCRIPT:
		return check_script(d, err);
	case CHECK_TTL:
		break;
	}
	return 0;
}

static int
dup_str(const char **field)
{
	if (*field == NULL)
		return 0;
	*field = dsc_strdup(*field);
	return *field != NULL ? 0 : DSC_ENOMEM;
}

int
checks_def_copy(struct check_def *d)
{
	const char **fields[] = { &d->http, &d->method, &d->body, &d->tcp,
		&d->initial_status };
	size_t i, n = sizeof(fields) / sizeof(fields[0]);
	int rc = 0;

	for (i = 0; i < n; i++)
		if (rc != 0)
			*fields[i] = NULL;
		else
			rc = dup_str(fields[i]);
	for (i = 0; i < d->n_headers; i++)
		if (rc != 0)
			d->headers[i] = NULL;
		else
			rc = dup_str(&d->headers[i]);
	for (i = 0; i < d->n_args; i++)
		if (rc != 0)
			d->args[i] = NULL;
		else
			rc = dup_str(&d->args[i]);
	d->args[d->n_args] = NULL;
	return rc;
}

int
checks_bind_valid(const char *ip, struct dsc_err *err)
{
	if (ip[0] == '\0' || strlen(ip) > CHECK_ADDR_MAX || has_ctl(ip))
		return dsc_errorf(
		    err, DSC_EINVAL, "invalid source address '%.64s'", ip);
	return 0;
}

void
checks_def_release(struct check_def *d)
{
	size_t i;

	dsc_free((char *)d->http);
	dsc_free((char *)d->method);
	dsc_free((char *)d->body);
	dsc_free((char *)d->tcp);
	dsc_free((char *)d->initial_status);
	for (i = 0; i < d->n_headers; i++)
		dsc_free((char *)d->headers[i]);
	for (i = 0; i < d->n_args; i++)
		dsc_free((char *)d->args[i]);
	memset(d, 0, sizeof(*d));
}

/*
 * checks_curl.c - HTTP and TCP probes on libcurl's multi interface, on
 * the checker's loop through curlev.h: one multi handle per checker, one
 * easy handle per probe in flight.
 *
 * A TCP probe is a curl transfer with CURLOPT_CONNECT_ONLY: curl resolves
 * the name without blocking the loop, binds the source address, tries each
 * address and bounds the whole with the timeout, exactly as for HTTP, and
 * stops once the connection is up. Every probe uses a fresh connection and
 * no proxy: a check must see what a new client of the service would see.
 */
#include "checks_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

static void probe_finished(struct check_run *run, CURLcode rc);

/* curlev's done: a transfer ended, its run learns how. */
static void
transfer_done(CURL *easy, CURLcode rc, void *arg)
{
	char *priv = NULL;

	(void)arg;
	if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) == CURLE_OK &&
	    priv != NULL)
		probe_finished((struct check_run *)(void *)priv, rc);
}

int
checks_curl_init(struct checker *ck, struct dsc_err *err)
{
	ck->cv = curlev_new(ck->base, transfer_done, ck, err);
	return ck->cv != NULL ? 0 : DSC_ENOMEM;
}

void
checks_curl_release(struct checker *ck)
{
	curlev_free(ck->cv);
	ck->cv = NULL;
}

/* ---- one probe --------------------------------------------------------- */

void
checks_curl_cancel(struct check_run *run)
{
	if (run->easy != NULL) {
		curlev_remove(run->ck->cv, run->easy);
		curl_easy_cleanup(run->easy);
	}
	run->easy = NULL;
	curl_slist_free_all(run->hdrs);
	run->hdrs = NULL;
	buf_release(&run->body);
}

/* Keeps the first output_max bytes, then stops the transfer. */
static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct check_run *run = arg;
	size_t room = run->def.output_max - run->body.len;
	size_t take = n < room ? n : room;

	(void)size; /* always 1 */
	if (take > 0 && buf_add(&run->body, p, take) != 0)
		return 0;
	if (take < n)
		run->body_full = true;
	return take;
}

/* Keeps the reason phrase of the last status line ("HTTP/1.1 200 OK"). */
static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
	struct check_run *run = arg;
	size_t i = 0, k = 0;

	(void)size;
	if (n < 12 || strncmp(p, "HTTP/", 5) != 0)
		return n;
	while (i < n && p[i] != ' ')
		i++;
	i += 5; /* " 200 " */
	for (; i < n && k + 1 < sizeof(run->reason); i++) {
		if (p[i] == '\r' || p[i] == '\n')
			break;
		run->reason[k++] = p[i] >= 0x20 && p[i] < 0x7f ? p[i] : '?';
	}
	run->reason[k] = '\0';
	return n;
}

/* Go's http.StatusText for the codes a health endpoint gives, for
 * answers without a reason phrase (HTTP/2). */
static const char *
status_text(long code)
{
	static const struct {
		long code;
		const char *text;
	} t[] = { { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
		{ 204, "No Content" }, { 301, "Moved Permanently" },
		{ 302, "Found" }, { 304, "Not Modified" },
		{ 307, "Temporary Redirect" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 429, "Too Many Requests" }, { 500, "Internal Server Error" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" } };
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (t[i].code == code)
			return t[i].text;
	return "";
}

/* Why a transfer failed, as a person would say it. */
static const char *
failure(struct check_run *run, CURLcode rc)
{
	long os = 0;

	if (rc == CURLE_COULDNT_CONNECT &&
	    curl_easy_getinfo(run->easy, CURLINFO_OS_ERRNO, &os) == CURLE_OK &&
	    os > 0)
		return strerror((int)os);
	if (run->errbuf[0] != '\0')
		return run->errbuf;
	return curl_easy_strerror(rc);
}

static void
probe_finished(struct check_run *run, CURLcode rc)
{
	const struct check_def *d = &run->def;
	const char *method = d->method != NULL ? d->method : "GET";
	enum check_status st = CHECK_CRITICAL;
	struct buf out = BUF_INIT;
	size_t cap;
	long code = 0;
	int wrc;

	if (d->kind == CHECK_TCP) {
		if (rc == CURLE_OK) {
			st = CHECK_PASSING;
			wrc = buf_addf(&out, "TCP connect %s: Success", d->tcp);
		} else {
			wrc = buf_addf(&out, "TCP connect %s: %s", d->tcp,
			    failure(run, rc));
		}
	} else if (rc == CURLE_OK ||
	    (rc == CURLE_WRITE_ERROR && run->body_full)) {
		curl_easy_getinfo(run->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code <= 299)
			st = CHECK_PASSING;
		else if (code == 429)
			st = CHECK_WARNING;
		wrc = buf_addf(&out, "HTTP %s %s: %ld %s Output: ", method,
		    d->http, code,
		    run->reason[0] != '\0' ? run->reason : status_text(code));
		if (wrc == 0)
			wrc = buf_add(&out, run->body.p, run->body.len);
	} else {
		wrc = buf_addf(
		    &out, "HTTP %s %s: %s", method, d->http, failure(run, rc));
	}
	cap = out.len;
	checks_curl_cancel(run);
	if (wrc != 0)
		checks_probe_done(run, st, "out of memory", 13, SIZE_MAX);
	else
		checks_probe_done(run, st, out.p, out.len, cap);
	buf_release(&out);
}

static bool
has_header(const struct check_def *d, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < d->n_headers; i++)
		if (strncasecmp(d->headers[i], name, n) == 0 &&
		    d->headers[i][n] == ':')
			return true;
	return false;
}

/* The request: method, body and headers as Consul sends them. */
static CURLcode
set_http(struct check_run *run)
{
	const struct check_def *d = &run->def;
	struct curl_slist *l;
	CURLcode rc = CURLE_OK;
	size_t i;

	/* Consul's Accept; no "Expect: 100-continue" wait for a body. */
	if (!has_header(d, "Accept"))
		run->hdrs = curl_slist_append(
		    run->hdrs, "Accept: text/plain, text/*, */*");
	if ((l = curl_slist_append(run->hdrs, "Expect:")) == NULL)
		return CURLE_OUT_OF_MEMORY;
	run->hdrs = l;
	for (i = 0; i < d->n_headers; i++) {
		if ((l = curl_slist_append(run->hdrs, d->headers[i])) == NULL)
			return CURLE_OUT_OF_MEMORY;
		run->hdrs = l;
	}
	if (d->body != NULL) {
		rc |= curl_easy_setopt(
		    run->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(d->body));
		rc |= curl_easy_setopt(run->easy, CURLOPT_POSTFIELDS, d->body);
		rc |= curl_easy_setopt(run->easy, CURLOPT_CUSTOMREQUEST,
		    d->method != NULL ? d->method : "GET");
	} else if (d->method != NULL && strcmp(d->method, "HEAD") == 0) {
		rc |= curl_easy_setopt(run->easy, CURLOPT_NOBODY, 1L);
	} else if (d->method != NULL && strcmp(d->method, "GET") != 0) {
		rc |= curl_easy_setopt(
		    run->easy, CURLOPT_CUSTOMREQUEST, d->method);
	}
	rc |= curl_easy_setopt(run->easy, CURLOPT_HTTPHEADER, run->hdrs);
	rc |=
	    curl_easy_setopt(run->easy, CURLOPT_USERAGENT, "dsc-health-check");
	rc |= curl_easy_setopt(run->easy, CURLOPT_URL, d->http);
	rc |= curl_easy_setopt(run->easy, CURLOPT_WRITEFUNCTION, on_body);
	rc |= curl_easy_setopt(run->easy, CURLOPT_WRITEDATA, run);
	rc |= curl_easy_setopt(run->easy, CURLOPT_HEADERFUNCTION, on_header);
	rc |= curl_easy_setopt(run->easy, CURLOPT_HEADERDATA, run);
	if (d->tls_skip_verify) {
		rc |= curl_easy_setopt(run->easy, CURLOPT_SSL_VERIFYPEER, 0L);
		rc |= curl_easy_setopt(run->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return rc;
}

static CURLcode
set_tcp(struct check_run *run)
{
	struct buf url = BUF_INIT;
	CURLcode rc;

	if (buf_addf(&url, "http://%s/", run->def.tcp) != 0)
		return CURLE_OUT_OF_MEMORY;
	rc = curl_easy_setopt(run->easy, CURLOPT_URL, (char *)url.p);
	rc |= curl_easy_setopt(run->easy, CURLOPT_CONNECT_ONLY, 1L);
	buf_release(&url);
	return rc;
}

int
checks_curl_start(struct check_run *run, struct dsc_err *err)
{
	struct checker *ck = run->ck;
	uint64_t t = run->def.timeout_ms;
	CURLcode rc = CURLE_OK;

	run->body_full = false;
	run->reason[0] = '\0';
	run->errbuf[0] = '\0';
	if ((run->easy = curl_easy_init()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	rc |= curl_easy_setopt(run->easy, CURLOPT_PRIVATE, (char *)run);
	rc |= curl_easy_setopt(run->easy, CURLOPT_ERRORBUFFER, run->errbuf);
	rc |= curl_easy_setopt(run->easy, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(run->easy, CURLOPT_TIMEOUT_MS,
	    t < (uint64_t)LONG_MAX ? (long)t : LONG_MAX);
	rc |= curl_easy_setopt(run->easy, CURLOPT_PROXY, "");
	rc |= curl_easy_setopt(run->easy, CURLOPT_FORBID_REUSE, 1L);
	rc |= curl_easy_setopt(run->easy, CURLOPT_FRESH_CONNECT, 1L);
	rc |= curl_easy_setopt(run->easy, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(run->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	rc |= curl_easy_setopt(run->easy, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (ck->curl_iface != NULL)
		rc |= curl_easy_setopt(
		    run->easy, CURLOPT_INTERFACE, ck->curl_iface);
	rc |= run->def.kind == CHECK_TCP ? set_tcp(run) : set_http(run);
	if (rc != CURLE_OK) {
		checks_curl_cancel(run);
		return dsc_errorf(
		    err, DSC_ENOMEM, "unable to set up the check's request");
	}
	if (curlev_add(ck->cv, run->easy, err) != 0) {
		checks_curl_cancel(run);
		return err != NULL ? err->code : DSC_ENOMEM;
	}
	return 0;
}

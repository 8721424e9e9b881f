/*
 * httpd_req.c - the request side of httpd.h: parsing a request head and
 * body out of a connection's input buffer, the handler's accessors, and
 * the helpers (status texts, query strings).
 *
 * The parser is incremental and never trusts a length it has not
 * checked: each line is first found in the input buffer and copied out only
 * once its length is known to be within its limit, so a hostile client
 * costs at most one read's worth of buffered bytes beyond the limits. A
 * request's strings live in one growable buffer addressed by offsets, so
 * growing it never invalidates them. Field syntax is RFC 9112's, strictly:
 * no bare LF, no obs-fold, no whitespace before a colon, no control
 * characters.
 */
#include "httpd_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "dsc_assert.h"
#include "mem.h"

/* ---- small helpers ------------------------------------------------------ */

static bool
is_tchar(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') ||
	    (ch > 0 && ch < 0x80 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A field value byte: HTAB, SP, VCHAR or obs-text. */
static bool
is_value_char(int ch)
{
	ch &= 0xff;
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

bool
httpd_is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!is_tchar((unsigned char)*s))
			return false;
	return true;
}

bool
httpd_is_value(const char *s)
{
	for (; *s != '\0'; s++)
		if (!is_value_char((unsigned char)*s))
			return false;
	return true;
}

static const char *
str_at(const struct httpd_req *req, uint32_t off)
{
	return (const char *)req->head.p + off;
}

/* True when the comma-separated list @list holds token @tok. */
static bool
list_has(const char *list, const char *tok)
{
	size_t n = strlen(tok), len;
	const char *p = list, *end;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end != '\0' && *end != ',')
			end++;
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(p, tok, n) == 0)
			return true;
		p = end;
	}
	return false;
}

/* ---- requests ----------------------------------------------------------- */

struct httpd_req *
httpd_req_new(struct httpd_conn *c, const char *peer)
{
	struct httpd_req *req;

	if ((req = dsc_calloc(1, sizeof(*req))) == NULL)
		return NULL;
	req->conn = c;
	snprintf(req->peer, sizeof(req->peer), "%s", peer);
	return req;
}

void
httpd_req_free(struct httpd_req *req)
{
	buf_release(&req->head);
	buf_release(&req->body);
	dsc_free(req);
}

/* ---- parsing ------------------------------------------------------------ */

/*
 * Moves the next CRLF-terminated line of at most @max bytes (CRLF
 * excluded) from the input into req->head as a C string at *@off, length
 * *@len. HTTPD_STEP_MORE while incomplete; @too_long when over @max; 400 for a
 * bare LF.
 */
static int
take_line(struct httpd_req *req, struct evbuffer *in,
    const struct httpd_limits *lim, size_t max, int too_long, uint32_t *off,
    size_t *len, char *why)
{
	struct buf *b = &req->head;
	struct evbuffer_ptr eol;
	size_t eol_len, n;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
	if (eol.pos < 0) {
		if (evbuffer_get_length(in) > max + 1) /* + the CR */
			goto over;
		return HTTPD_STEP_MORE;
	}
	n = (size_t)eol.pos + 1; /* the line and its LF */
	if (n > max + 2)
		goto over;
	if (b->len > UINT32_MAX - n || buf_grow(b, n) != 0)
		return HTTPD_STEP_NOMEM;
	evbuffer_remove(in, b->p + b->len, n);
	b->len += n;
	b->p[b->len] = '\0';
	if (n < 2 || b->p[b->len - 2] != '\r') {
		snprintf(why, HTTPD_WHY_MAX, "bare LF in request head");
		return 400;
	}
	/* Checked here once, so later steps may treat lines as C strings. */
	if (memchr(b->p + b->len - n, '\0', n) != NULL) {
		snprintf(why, HTTPD_WHY_MAX, "NUL in request head");
		return 400;
	}
	b->p[b->len - 2] = b->p[b->len - 1] = '\0';
	*off = (uint32_t)(b->len - n);
	*len = n - 2;
	return HTTPD_STEP_DONE;
over:
	if (too_long == 414)
		snprintf(why, HTTPD_WHY_MAX,
		    "request line too long (limit %zu bytes)", max);
	else
		snprintf(why, HTTPD_WHY_MAX,
		    "header section too large (limit %zu bytes)",
		    lim->header_bytes_max);
	return too_long;
}

/* Appends a copy of the @n bytes at offset @from as a C string at *@off. */
static int
head_copy(struct httpd_req *req, uint32_t from, size_t n, uint32_t *off)
{
	struct buf *b = &req->head;

	if (b->len > UINT32_MAX - n - 1 || buf_grow(b, n + 1) != 0)
		return HTTPD_STEP_NOMEM;
	memcpy(b->p + b->len, b->p + from, n);
	*off = (uint32_t)b->len;
	b->len += n + 1;
	b->p[b->len - 1] = b->p[b->len] = '\0';
	return HTTPD_STEP_DONE;
}

/* "METHOD SP origin-form SP HTTP-version", each part checked. */
static int
parse_request_line(struct httpd_req *req, uint32_t off, size_t len, char *why)
{
	char *line = (char *)req->head.p + off, *sp1, *sp2, *q, *ver;
	size_t i;

	sp1 = memchr(line, ' ', len);
	sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
	if (sp1 == NULL || sp2 == NULL ||
	    memchr(sp2 + 1, ' ', len - (size_t)(sp2 + 1 - line)) != NULL) {
		snprintf(why, HTTPD_WHY_MAX, "malformed request line");
		return 400;
	}
	*sp1 = *sp2 = '\0';
	ver = sp2 + 1;
	if (sp1 == line || (size_t)(sp1 - line) > HTTPD_METHOD_MAX ||
	    !httpd_is_token(line)) {
		snprintf(why, HTTPD_WHY_MAX, "bad method");
		return 400;
	}
	if (sp1[1] != '/') {
		snprintf(
		    why, HTTPD_WHY_MAX, "request target not in origin form");
		return 400;
	}
	for (i = 1; sp1 + i < sp2; i++)
		if (sp1[i] <= 0x20 || sp1[i] >= 0x7f || sp1[i] == '#') {
			snprintf(why, HTTPD_WHY_MAX, "bad request target");
			return 400;
		}
	if (strcmp(ver, "HTTP/1.1") == 0)
		req->version = 11;
	else if (strcmp(ver, "HTTP/1.0") == 0)
		req->version = 10;
	else if (strlen(ver) == 8 && strncmp(ver, "HTTP/", 5) == 0 &&
	    ver[5] >= '0' && ver[5] <= '9' && ver[6] == '.' && ver[7] >= '0' &&
	    ver[7] <= '9') {
		snprintf(why, HTTPD_WHY_MAX, "HTTP version not supported");
		return 505;
	} else {
		snprintf(why, HTTPD_WHY_MAX, "bad HTTP version");
		return 400;
	}
	req->method = off;
	req->target = off + (uint32_t)(sp1 + 1 - line);
	/* The query is the target's tail; the path needs a copy of its own. */
	q = strchr(sp1 + 1, '?');
	i = q ? (size_t)(q - (sp1 + 1)) : (size_t)(sp2 - (sp1 + 1));
	req->query = req->target + (uint32_t)i + (q ? 1 : 0);
	return head_copy(req, req->target, i, &req->path);
}

/* "name: OWS value OWS"; an empty line ends the section (HTTPD_STEP_MORE). */
static int
parse_header(struct httpd_req *req, const struct httpd_limits *lim,
    uint32_t off, size_t len, char *why)
{
	char *line = (char *)req->head.p + off, *colon, *v, *end;
	size_t i;

	if (len == 0)
		return HTTPD_STEP_MORE;
	if (line[0] == ' ' || line[0] == '\t') {
		snprintf(why, HTTPD_WHY_MAX, "obsolete header line folding");
		return 400;
	}
	colon = memchr(line, ':', len);
	for (i = 0; colon != NULL && line + i < colon; i++)
		if (!is_tchar((unsigned char)line[i]))
			break;
	if (colon == NULL || colon == line || line + i != colon) {
		snprintf(why, HTTPD_WHY_MAX, "malformed header field");
		return 400;
	}
	if (req->n_hdrs >= lim->headers_max) {
		snprintf(why, HTTPD_WHY_MAX,
		    "too many header fields (limit %zu)", lim->headers_max);
		return 431;
	}
	*colon = '\0';
	v = colon + 1;
	end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (i = 0; v + i < end; i++)
		if (!is_value_char((unsigned char)v[i])) {
			snprintf(why, HTTPD_WHY_MAX,
			    "bad character in header '%s'", line);
			return 400;
		}
	*end = '\0';
	req->hdrs[req->n_hdrs].name = off;
	req->hdrs[req->n_hdrs].value = off + (uint32_t)(v - line);
	req->n_hdrs++;
	return HTTPD_STEP_DONE;
}

/* Content-Length: 1*DIGIT, at most the body limit. */
static int
parse_length(struct httpd_req *req, const struct httpd_limits *lim,
    const char *s, char *why)
{
	size_t v = 0, max = lim->body_max;

	if (*s == '\0')
		goto bad;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			goto bad;
		if (v > max) /* keeps going only to see it is all digits */
			continue;
		v = v * 10 + (size_t)(*s - '0');
	}
	if (v > max) {
		snprintf(why, HTTPD_WHY_MAX, "body too large (limit %zu bytes)",
		    max);
		return 413;
	}
	req->content_length = v;
	return HTTPD_STEP_DONE;
bad:
	snprintf(why, HTTPD_WHY_MAX, "bad Content-Length");
	return 400;
}

/* The whole head is in: framing, Host, Expect and persistence. */
static int
finish_head(struct httpd_req *req, const struct httpd_limits *lim, char *why)
{
	const char *v;
	bool close = false, keep = false;
	size_t i, n;
	int rc;

	n = httpd_req_header_count(req, "Host");
	if (n > 1 || (req->version == 11 && n == 0)) {
		snprintf(why, HTTPD_WHY_MAX, "%s Host header",
		    n ? "repeated" : "missing");
		return 400;
	}
	if ((v = httpd_req_header(req, "Transfer-Encoding")) != NULL) {
		if (list_has(v, "chunked")) {
			snprintf(why, HTTPD_WHY_MAX,
			    "chunked body not accepted: send Content-Length");
			return 411;
		}
		snprintf(why, HTTPD_WHY_MAX, "transfer coding not implemented");
		return 501;
	}
	if ((n = httpd_req_header_count(req, "Content-Length")) > 1) {
		snprintf(why, HTTPD_WHY_MAX, "repeated Content-Length");
		return 400;
	}
	if (n == 1 &&
	    (rc = parse_length(
	         req, lim, httpd_req_header(req, "Content-Length"), why)) != 0)
		return rc;
	if ((n = httpd_req_header_count(req, "Expect")) > 0) {
		v = httpd_req_header(req, "Expect");
		if (n > 1 || strcasecmp(v, "100-continue") != 0) {
			snprintf(why, HTTPD_WHY_MAX, "unsupported expectation");
			return 417;
		}
		req->expect_continue = req->version == 11;
	}
	for (i = 0; i < req->n_hdrs; i++) {
		if (strcasecmp(str_at(req, req->hdrs[i].name), "Connection"))
			continue;
		v = str_at(req, req->hdrs[i].value);
		close = close || list_has(v, "close");
		keep = keep || list_has(v, "keep-alive");
	}
	req->keep_alive = !close && (req->version == 11 || keep);
	req->is_head = strcmp(str_at(req, req->method), "HEAD") == 0;
	return HTTPD_STEP_DONE;
}

int
httpd_req_read_head(struct httpd_req *req, struct evbuffer *in,
    const struct httpd_limits *lim, char *why)
{
	uint32_t off;
	size_t len, room;
	int rc;

	while (!req->have_line) {
		rc = take_line(
		    req, in, lim, lim->line_max, 414, &off, &len, why);
		if (rc != HTTPD_STEP_DONE)
			return rc;
		if (len == 0) /* an empty line before a request: ignored */
			continue;
		if ((rc = parse_request_line(req, off, len, why)) != 0)
			return rc;
		req->have_line = true;
	}
	for (;;) {
		room = lim->header_bytes_max - req->head_bytes;
		if (room < 2) {
			snprintf(why, HTTPD_WHY_MAX,
			    "header section too large (limit %zu bytes)",
			    lim->header_bytes_max);
			return 431;
		}
		rc = take_line(req, in, lim, room - 2, 431, &off, &len, why);
		if (rc != HTTPD_STEP_DONE)
			return rc;
		req->head_bytes += len + 2;
		rc = parse_header(req, lim, off, len, why);
		if (rc == HTTPD_STEP_MORE)
			return finish_head(req, lim, why);
		if (rc != HTTPD_STEP_DONE)
			return rc;
	}
}

int
httpd_req_read_body(struct httpd_req *req, struct evbuffer *in)
{
	size_t want = req->content_length - req->body.len;
	size_t n = evbuffer_get_length(in);

	if (n > want)
		n = want;
	if (n > 0) {
		/* Grows with what arrived, not with what was announced. */
		if (buf_grow(&req->body, n) != 0)
			return HTTPD_STEP_NOMEM;
		evbuffer_remove(in, req->body.p + req->body.len, n);
		req->body.len += n;
		req->body.p[req->body.len] = '\0';
	}
	return req->body.len == req->content_length ? HTTPD_STEP_DONE
	                                            : HTTPD_STEP_MORE;
}

/* ---- the handler's accessors -------------------------------------------- */

const char *
httpd_req_method(const struct httpd_req *req)
{
	return str_at(req, req->method);
}

const char *
httpd_req_target(const struct httpd_req *req)
{
	return str_at(req, req->target);
}

const char *
httpd_req_path(const struct httpd_req *req)
{
	return str_at(req, req->path);
}

const char *
httpd_req_query(const struct httpd_req *req)
{
	return str_at(req, req->query);
}

int
httpd_req_version(const struct httpd_req *req)
{
	return req->version;
}

const char *
httpd_req_peer(const struct httpd_req *req)
{
	return req->peer;
}

const char *
httpd_req_header(const struct httpd_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->n_hdrs; i++)
		if (strcasecmp(str_at(req, req->hdrs[i].name), name) == 0)
			return str_at(req, req->hdrs[i].value);
	return NULL;
}

size_t
httpd_req_header_count(const struct httpd_req *req, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < req->n_hdrs; i++)
		if (strcasecmp(str_at(req, req->hdrs[i].name), name) == 0)
			n++;
	return n;
}

size_t
httpd_req_n_headers(const struct httpd_req *req)
{
	return req->n_hdrs;
}

void
httpd_req_header_at(const struct httpd_req *req, size_t i, const char **name,
    const char **value)
{
	DSC_ASSERT(i < req->n_hdrs);
	*name = str_at(req, req->hdrs[i].name);
	*value = str_at(req, req->hdrs[i].value);
}

const uint8_t *
httpd_req_body(const struct httpd_req *req, size_t *len)
{
	*len = req->body.len;
	return req->body.p != NULL ? req->body.p : (const uint8_t *)"";
}

bool
httpd_response_ok(int status, const char *ctype,
    const struct httpd_header *extra, size_t n_extra)
{
	static const char *const reserved[] = { "Content-Length", "Date",
		"Connection", "Transfer-Encoding" };
	size_t i, j;

	if (status < 200 || status > 599 || n_extra > HTTPD_EXTRA_HEADERS_MAX ||
	    (ctype != NULL && !httpd_is_value(ctype)))
		return false;
	for (i = 0; i < n_extra; i++) {
		if (!httpd_is_token(extra[i].name) ||
		    !httpd_is_value(extra[i].value))
			return false;
		for (j = 0; j < sizeof(reserved) / sizeof(reserved[0]); j++)
			if (strcasecmp(extra[i].name, reserved[j]) == 0)
				return false;
	}
	return true;
}

/* ---- helpers ------------------------------------------------------------ */

static const struct {
	int status;
	const char *text;
} status_texts[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 304, "Not Modified" },
	{ 307, "Temporary Redirect" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 411, "Length Required" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 417, "Expectation Failed" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
	{ 505, "HTTP Version Not Supported" },
};

const char *
httpd_status_text(int status)
{
	size_t i;

	for (i = 0; i < sizeof(status_texts) / sizeof(status_texts[0]); i++)
		if (status_texts[i].status == status)
			return status_texts[i].text;
	return "Unknown";
}

static int
hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes @n bytes at @s into @out (@size bytes with the NUL). */
static int
pct_decode(const char *s, size_t n, char *out, size_t size)
{
	size_t i, o = 0;
	int hi, lo, ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch == '+') {
			ch = ' ';
		} else if (ch == '%') {
			if (i + 2 >= n)
				return DSC_EINVAL;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0)
				return DSC_EINVAL;
			ch = hi << 4 | lo;
			i += 2;
		}
		if (o + 1 >= size)
			return DSC_ETOOBIG;
		out[o++] = (char)ch;
	}
	if (size == 0)
		return DSC_ETOOBIG;
	out[o] = '\0';
	return 0;
}

/* Splits the next non-empty pair off @*cursor: name and value spans. */
static bool
query_split(const char **cursor, const char **np, size_t *nlen, const char **vp,
    size_t *vlen)
{
	const char *p = *cursor, *end, *eq;

	while (*p == '&')
		p++;
	if (*p == '\0') {
		*cursor = p;
		return false;
	}
	end = strchr(p, '&');
	if (end == NULL)
		end = p + strlen(p);
	eq = memchr(p, '=', (size_t)(end - p));
	*np = p;
	*nlen = (size_t)((eq ? eq : end) - p);
	*vp = eq ? eq + 1 : end;
	*vlen = (size_t)(end - *vp);
	*cursor = end;
	return true;
}

int
httpd_query_next(const char **cursor, char *name, size_t name_size, char *value,
    size_t value_size)
{
	const char *np, *vp;
	size_t nlen, vlen;
	int rc;

	if (!query_split(cursor, &np, &nlen, &vp, &vlen))
		return DSC_ENOTFOUND;
	if ((rc = pct_decode(np, nlen, name, name_size)) != 0)
		return rc;
	return pct_decode(vp, vlen, value, value_size);
}

int
httpd_query_get(
    const char *query, const char *name, char *value, size_t value_size)
{
	char n[HTTPD_LINE_MAX + 1];
	const char *np, *vp;
	size_t nlen, vlen;
	int rc;

	while (query_split(&query, &np, &nlen, &vp, &vlen)) {
		if ((rc = pct_decode(np, nlen, n, sizeof(n))) != 0)
			return rc;
		if (strcmp(n, name) == 0)
			return pct_decode(vp, vlen, value, value_size);
	}
	return DSC_ENOTFOUND;
}

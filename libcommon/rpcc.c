/*
 * rpcc.c - the JSON-RPC client: envelopes, signing, one libcurl easy handle
 * kept alive across calls, failover over the server list, and the mapping
 * of every failure to a DSC_E* code with a message that names the server.
 *
 * A call is a loop of attempts under one deadline. Each attempt is signed
 * again (fresh nonce and timestamp) and bounded by what is left of the
 * deadline; between full passes over the servers the loop sleeps with a
 * doubling backoff, which is what gives an election time to finish when
 * every server answers DSC_ENOLEADER.
 */
#include "rpcc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "mem.h"
#include "rpcc_internal.h"

/* Longest method name sent: the server's table has nothing near it. */
#define METHOD_MAX           64
/* A response buffer bigger than this is freed after the call, not kept. */
#define RESP_KEEP_MAX        (1024 * 1024)
/* "http://" ADDR "/rpc" */
#define URL_MAX              (sizeof("http://") + RPCC_ADDR_MAX + sizeof(RPCC_HTTP_PATH))
/* JSON-RPC 2.0's own error codes, and the base of dsc's. */
#define JRPC_PARSE_ERROR     -32700
#define JRPC_INVALID_REQUEST -32600
#define JRPC_NO_METHOD       -32601
#define JRPC_INVALID_PARAMS  -32602
#define JRPC_DSC_BASE        -32000

struct rpcc {
	struct rpcc_xfer x; /* rpcc_call's own transfer */
	struct auth_rpc_key key;
	char servers[RPCC_MAX_SERVERS][RPCC_ADDR_MAX];
	size_t n, cur;            /* cur: the server tried first */
	struct rpcc_options opt;  /* defaults filled in; no pointers */
	char bind[RPCC_ADDR_MAX]; /* "host!" IP, or "" */
	char client_id[RPCC_CLIENT_ID_LEN + 1];
	uint64_t seq;              /* last Seq used */
	uint64_t next_id, last_id; /* JSON-RPC ids: next, last built */
};

/* ---- helpers ------------------------------------------------------------- */

int64_t
rpcc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
		(long)(ms % 1000) * 1000000 };

	while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* strerror(@e) starting lowercase, as dsc messages do (git). */
static const char *
errno_text(long e, char *buf, size_t size)
{
	if (e == 0 || strerror_r((int)e, buf, size) != 0)
		snprintf(buf, size, "error %ld", e);
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

/*
 * "ADDR:PORT" with a port in 1..65535 and only characters an IP address or
 * host name (IPv6 in brackets) can hold, so nothing can reach the URL that
 * changes its meaning.
 */
static bool
valid_addr(const char *s)
{
	const char *colon = strrchr(s, ':');
	size_t len = strlen(s);
	long port = 0;

	if (len == 0 || len >= RPCC_ADDR_MAX || colon == NULL || colon == s ||
	    colon[1] == '\0' || strlen(colon + 1) > 5)
		return false;
	for (const char *p = s; p < colon; p++)
		if (!isalnum((unsigned char)*p) && strchr(".-:[]_", *p) == NULL)
			return false;
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535;
}

/* A literal IPv4 or IPv6 address: never an interface or host name. */
static bool
valid_ip(const char *s)
{
	struct in6_addr a;

	return strlen(s) < RPCC_ADDR_MAX - sizeof("host!") &&
	    (inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1);
}

/* ---- lifecycle ----------------------------------------------------------- */

static size_t
on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct rpcc_xfer *x = arg;
	size_t n = size * nmemb;

	if (n > x->max_response - x->resp.len) {
		x->resp_overflow = true;
		return 0;
	}
	if (buf_add(&x->resp, p, n) != 0) {
		x->resp_nomem = true;
		return 0;
	}
	return n;
}

/* The options every request shares, set once. */
int
rpcc_xfer_init(const struct rpcc *c, struct rpcc_xfer *x, struct dsc_err *err)
{
	CURLcode rc = CURLE_OK;
	CURL *h;

	memset(x, 0, sizeof(*x));
	x->max_response = c->opt.max_response;
	if ((h = x->curl = curl_easy_init()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "unable to start libcurl");

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(h, opt, val);                    \
	} while (0)
	SET(CURLOPT_NOSIGNAL, 1L);
	/* Never through a proxy from the environment: servers are peers. */
	SET(CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http");
#else
	SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	SET(CURLOPT_USERAGENT, "dsc-rpcc/1");
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_ERRORBUFFER, x->curl_err);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opt.max_response);
	SET(CURLOPT_TCP_NODELAY, 1L);
	if (c->bind[0] != '\0')
		SET(CURLOPT_INTERFACE, c->bind);
#undef SET
	if (rc != CURLE_OK) {
		rpcc_xfer_release(x);
		return dsc_errorf(err,
		    rc == CURLE_OUT_OF_MEMORY ? DSC_ENOMEM : DSC_EIO,
		    "unable to set up libcurl: %s", curl_easy_strerror(rc));
	}
	return 0;
}

void
rpcc_xfer_release(struct rpcc_xfer *x)
{
	if (x->curl != NULL)
		curl_easy_cleanup(x->curl);
	curl_slist_free_all(x->hdrs);
	buf_release(&x->resp);
	memset(x, 0, sizeof(*x));
}

static int
fill_options(
    struct rpcc *c, const struct rpcc_options *opt, struct dsc_err *err)
{
	static const struct rpcc_options defaults = RPCC_OPTIONS_INIT;

	c->opt = opt != NULL ? *opt : defaults;
	if (c->opt.timeout_ms == 0)
		c->opt.timeout_ms = RPCC_TIMEOUT_MS_DEFAULT;
	if (c->opt.connect_ms == 0)
		c->opt.connect_ms = RPCC_CONNECT_MS_DEFAULT;
	if (c->opt.max_response == 0)
		c->opt.max_response = RPCC_MAX_RESPONSE;
	if (c->opt.bind_ip != NULL) {
		if (!valid_ip(c->opt.bind_ip))
			return dsc_errorf(err, DSC_EINVAL,
			    "invalid bind address '%s'", c->opt.bind_ip);
		snprintf(c->bind, sizeof(c->bind), "host!%s", c->opt.bind_ip);
	}
	c->opt.bind_ip = NULL;
	c->opt.key_id = NULL;
	return 0;
}

static int
check_servers(const char *const *servers, size_t n, struct dsc_err *err)
{
	if (n == 0 || n > RPCC_MAX_SERVERS)
		return dsc_errorf(err, DSC_EINVAL,
		    "%zu servers given, want 1 to %d", n, RPCC_MAX_SERVERS);
	for (size_t i = 0; i < n; i++)
		if (servers[i] == NULL || !valid_addr(servers[i]))
			return dsc_errorf(err, DSC_EINVAL,
			    "invalid server address '%s' (want ADDR:PORT)",
			    servers[i] != NULL ? servers[i] : "");
	return 0;
}

int
rpcc_set_servers(
    struct rpcc *c, const char *const *servers, size_t n, struct dsc_err *err)
{
	if (check_servers(servers, n, err) != 0)
		return err != NULL ? err->code : DSC_EINVAL;
	for (size_t i = 0; i < n; i++)
		snprintf(c->servers[i], RPCC_ADDR_MAX, "%s", servers[i]);
	c->n = n;
	c->cur = 0;
	return 0;
}

struct rpcc *
rpcc_new(const uint8_t key[AUTH_KEY_SIZE], const char *const *servers, size_t n,
    const struct rpcc_options *opt, struct dsc_err *err)
{
	uint8_t rnd[(RPCC_CLIENT_ID_LEN - 5) / 2];
	struct rpcc *c;

	if (check_servers(servers, n, err) != 0)
		return NULL;
	if ((c = dsc_calloc(1, sizeof(*c))) == NULL) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		snprintf(c->servers[i], RPCC_ADDR_MAX, "%s", servers[i]);
	c->n = n;
	c->next_id = 1;
	if (fill_options(c, opt, err) != 0 ||
	    auth_rpc_key_init(
	        &c->key, key, opt != NULL ? opt->key_id : NULL, err) != 0) {
		sodium_memzero(&c->key, sizeof(c->key));
		dsc_free(c);
		return NULL;
	}
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(c->client_id, "rpcc-", 5);
	sodium_bin2hex(
	    c->client_id + 5, sizeof(c->client_id) - 5, rnd, sizeof(rnd));

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		dsc_errorf(err, DSC_EIO, "unable to initialise libcurl");
		auth_rpc_key_release(&c->key);
		dsc_free(c);
		return NULL;
	}
	if (rpcc_xfer_init(c, &c->x, err) != 0) {
		rpcc_free(c);
		return NULL;
	}
	return c;
}

void
rpcc_free(struct rpcc *c)
{
	if (c == NULL)
		return;
	rpcc_xfer_release(&c->x);
	curl_global_cleanup();
	auth_rpc_key_release(&c->key);
	dsc_free(c);
}

const char *
rpcc_client_id(const struct rpcc *c)
{
	return c->client_id;
}

/* ---- request ------------------------------------------------------------- */

int
rpcc_build(struct rpcc *c, const char *method, json_t *params, unsigned flags,
    struct buf *body, struct dsc_err *err)
{
	bool is_write = (flags & RPCC_WRITE) != 0;
	int rc;

	rc = rpcc_build_as(c, method, params, is_write ? c->client_id : NULL,
	    c->seq + 1, body, err);
	if (rc == 0 && is_write)
		c->seq++;
	return rc;
}

int
rpcc_build_as(struct rpcc *c, const char *method, json_t *params,
    const char *client_id, uint64_t seq, struct buf *body,
    struct dsc_err *err)
{
	bool is_write = client_id != NULL;
	json_t *p, *req;
	char *text;
	size_t len;
	int rc;

	if (method == NULL || method[0] == '\0' || strlen(method) > METHOD_MAX)
		return dsc_errorf(err, DSC_EINVAL, "invalid method name");
	if (params != NULL && !json_is_object(params))
		return dsc_errorf(err, DSC_EINVAL,
		    "params of '%s' must be a JSON object", method);
	if (is_write && params != NULL &&
	    (json_object_get(params, "ClientID") != NULL ||
	        json_object_get(params, "Seq") != NULL))
		return dsc_errorf(err, DSC_EINVAL,
		    "params of '%s' already have ClientID or Seq", method);

	p = params != NULL ? json_copy(params) : json_object();
	if (p != NULL && is_write &&
	    (json_object_set_new(p, "ClientID", json_string(client_id)) ||
	        json_object_set_new(p, "Seq", json_integer((json_int_t)seq)))) {
		json_decref(p);
		p = NULL;
	}
	if (p == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	/* "o" steals p, on failure too. */
	req = json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)c->next_id,
	    "jsonrpc", "2.0", "method", method, "params", p);
	text =
	    req != NULL ? json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(req);
	if (text == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	len = strlen(text);
	if (len > RPCC_MAX_REQUEST)
		rc = dsc_errorf(err, DSC_ETOOBIG,
		    "request '%s' of %zu bytes is over the limit of %d", method,
		    len, RPCC_MAX_REQUEST);
	else if (buf_add(body, text, len) != 0)
		rc = dsc_errorf(err, DSC_ENOMEM, "out of memory");
	else
		rc = 0;
	free(text);
	if (rc != 0)
		return rc;
	c->last_id = c->next_id++;
	return 0;
}

int
rpcc_sign(const struct rpcc *c, int64_t now, const void *body, size_t len,
    struct auth_req_sig *sig, struct dsc_err *err)
{
	return auth_req_sign(&c->key, now, RPCC_HTTP_METHOD, RPCC_HTTP_PATH,
	    body, len, sig, err);
}

/* ---- response ------------------------------------------------------------ */

void
rpcc_answer_clear(struct rpcc_answer *a)
{
	json_decref(a->result);
	json_decref(a->data);
	memset(a, 0, sizeof(*a));
}

/* The DSC_E* code a JSON-RPC error object stands for. */
static int
error_code(json_t *error)
{
	const char *name = json_string_value(
	    json_object_get(json_object_get(error, "data"), "name"));
	json_int_t code = json_integer_value(json_object_get(error, "code"));

	if (name != NULL)
		for (int i = DSC_OK + 1; i < DSC_E_MAX; i++)
			if (strcmp(dsc_errname(i), name) == 0)
				return i;
	if (code < JRPC_DSC_BASE && code > JRPC_DSC_BASE - DSC_E_MAX)
		return (int)(JRPC_DSC_BASE - code);
	switch (code) {
	case JRPC_PARSE_ERROR:
	case JRPC_INVALID_REQUEST:
	case JRPC_NO_METHOD:
	case JRPC_INVALID_PARAMS:
		return DSC_EINVAL;
	default:
		return DSC_EPROTO;
	}
}

/* Turns the answer in @resp with HTTP status @status from @server to
 * request @want into @a->result or an error. */
static int
decode(const struct buf *resp, const char *server, long status, uint64_t want,
    struct rpcc_answer *a, struct dsc_err *err)
{
	json_error_t jerr;
	json_t *root, *error, *res, *id;
	const char *msg;
	int rc;

	root = json_loadb(
	    (const char *)resp->p, resp->len, JSON_REJECT_DUPLICATES, &jerr);
	error = json_object_get(root, "error");
	res = json_object_get(root, "result");
	id = json_object_get(root, "id");
	msg = json_string_value(json_object_get(error, "message"));

	if (status == 401) {
		rc = dsc_errorf(err, DSC_EAUTH,
		    "server '%s' refused the request: %s", server,
		    msg != NULL ? msg : "authentication failed");
	} else if (json_is_object(error) &&
	    json_is_integer(json_object_get(error, "code"))) {
		rc = error_code(error);
		rc = dsc_errorf(
		    err, rc, "%s", msg != NULL ? msg : dsc_strerror(rc));
		a->retry = dsc_exit_class(rc) == DSC_EXIT_TEMP;
		a->from_server = true;
		if (json_is_object(json_object_get(error, "data")))
			a->data = json_incref(json_object_get(error, "data"));
	} else if (status >= 502 && status <= 504) {
		rc = dsc_errorf(err, DSC_EBUSY,
		    "server '%s' is unavailable (HTTP %ld)", server, status);
		a->retry = true;
	} else if (status != 200) {
		rc = dsc_errorf(err, DSC_EPROTO,
		    "server '%s' answered HTTP %ld", server, status);
	} else if (root == NULL) {
		rc = dsc_errorf(err, DSC_EPROTO,
		    "invalid JSON from server '%s': %s", server, jerr.text);
	} else if (!json_is_object(root) || res == NULL ||
	    !json_is_string(json_object_get(root, "jsonrpc")) ||
	    strcmp(json_string_value(json_object_get(root, "jsonrpc")),
	        "2.0") != 0 ||
	    !json_is_integer(id) || (uint64_t)json_integer_value(id) != want) {
		rc = dsc_errorf(err, DSC_EPROTO,
		    "server '%s' sent no JSON-RPC 2.0 answer to request "
		    "%" PRIu64,
		    server, want);
	} else {
		a->result = json_incref(res);
		a->from_server = true;
		rc = 0;
	}
	json_decref(root);
	return rc;
}

/* Maps a failed transfer to a DSC_E* code. */
static int
transport_error(const struct rpcc *c, const struct rpcc_xfer *x,
    const char *server, CURLcode code, long timeout_ms, bool *retry,
    struct dsc_err *err)
{
	long oserr = 0, sent = 0;
	char why[128];

	curl_easy_getinfo(x->curl, CURLINFO_OS_ERRNO, &oserr);
	curl_easy_getinfo(x->curl, CURLINFO_REQUEST_SIZE, &sent);
	*retry = true;
	switch (code) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		return dsc_errorf(err, DSC_EUNREACH,
		    "unable to reach server '%s': %s", server,
		    oserr != 0 ? errno_text(oserr, why, sizeof(why))
		               : "connection failed");
	case CURLE_OPERATION_TIMEDOUT:
		if (sent == 0)
			return dsc_errorf(err, DSC_EUNREACH,
			    "unable to reach server '%s': connection timed out",
			    server);
		return dsc_errorf(err, DSC_ETIMEDOUT,
		    "server '%s' did not answer within %ld ms", server,
		    timeout_ms);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return dsc_errorf(err, DSC_EUNREACH,
		    "lost connection to server '%s': %s", server,
		    oserr != 0 ? errno_text(oserr, why, sizeof(why))
		               : "closed before the answer");
	default:
		break;
	}
	*retry = false;
	if (code == CURLE_INTERFACE_FAILED)
		return dsc_errorf(err, DSC_EINVAL, "unable to bind to '%s': %s",
		    c->bind + 5,
		    oserr != 0 ? errno_text(oserr, why, sizeof(why))
		               : "no such address");
	if (x->resp_overflow || code == CURLE_FILESIZE_EXCEEDED)
		return dsc_errorf(err, DSC_ETOOBIG,
		    "answer from server '%s' is over %zu bytes", server,
		    c->opt.max_response);
	if (x->resp_nomem || code == CURLE_OUT_OF_MEMORY)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	return dsc_errorf(err, DSC_EPROTO, "request to server '%s' failed: %s",
	    server,
	    x->curl_err[0] != '\0' ? x->curl_err : curl_easy_strerror(code));
}

static struct curl_slist *
add_header(struct curl_slist *l, bool *ok, const char *name, const char *val)
{
	char line[256];
	struct curl_slist *n;

	if (!*ok)
		return l;
	/* "Name:" with nothing after it removes a header curl would add. */
	snprintf(line, sizeof(line), "%s:%s%s", name, val != NULL ? " " : "",
	    val != NULL ? val : "");
	if ((n = curl_slist_append(l, line)) == NULL)
		*ok = false;
	return n != NULL ? n : l;
}

int
rpcc_xfer_prepare(const struct rpcc *c, struct rpcc_xfer *x, const char *server,
    const void *body, size_t len, const struct auth_req_hdrs *hdrs,
    long timeout_ms, struct dsc_err *err)
{
	struct curl_slist *h = NULL;
	char url[URL_MAX];
	bool ok = true;
	CURLcode code;

	snprintf(url, sizeof(url), "http://%s%s", server, RPCC_HTTP_PATH);
	h = add_header(h, &ok, "Content-Type", "application/json");
	h = add_header(h, &ok, "Accept", "application/json");
	/* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
	h = add_header(h, &ok, "Expect", NULL);
	if (hdrs != NULL) {
		h = add_header(h, &ok, AUTH_HDR_KEY_ID, hdrs->key_id);
		h = add_header(h, &ok, AUTH_HDR_TIMESTAMP, hdrs->timestamp);
		h = add_header(h, &ok, AUTH_HDR_NONCE, hdrs->nonce);
		h = add_header(h, &ok, AUTH_HDR_MAC, hdrs->mac);
	}
	if (!ok) {
		curl_slist_free_all(h);
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	}
	curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(x->hdrs);
	/* The list must outlive the transfer, not the handle. */
	x->hdrs = h;

	buf_clear(&x->resp);
	x->resp_overflow = x->resp_nomem = false;
	x->curl_err[0] = '\0';
	if (timeout_ms < 1)
		timeout_ms = 1;
	code = curl_easy_setopt(x->curl, CURLOPT_URL, url);
	if (code == CURLE_OK)
		code = curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, h);
	if (code == CURLE_OK)
		code = curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, body);
	if (code == CURLE_OK)
		code = curl_easy_setopt(
		    x->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	if (code == CURLE_OK)
		code =
		    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (code == CURLE_OK)
		code = curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS,
		    timeout_ms < (long)c->opt.connect_ms
		        ? timeout_ms
		        : (long)c->opt.connect_ms);
	if (code != CURLE_OK)
		return dsc_errorf(err,
		    code == CURLE_OUT_OF_MEMORY ? DSC_ENOMEM : DSC_EIO,
		    "unable to set up libcurl: %s", curl_easy_strerror(code));
	return 0;
}

int
rpcc_xfer_finish(const struct rpcc *c, struct rpcc_xfer *x, const char *server,
    CURLcode code, long timeout_ms, uint64_t id, struct rpcc_answer *a,
    struct dsc_err *err)
{
	long status = 0;
	int rc;

	if (timeout_ms < 1)
		timeout_ms = 1;
	if (code == CURLE_OK) {
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
		rc = decode(&x->resp, server, status, id, a, err);
	} else {
		rc = transport_error(
		    c, x, server, code, timeout_ms, &a->retry, err);
	}
	curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(x->hdrs);
	x->hdrs = NULL;
	if (x->resp.cap > RESP_KEEP_MAX)
		buf_release(&x->resp);
	return rc;
}

/* One POST to server @i, bounded by @timeout_ms; fills the cleared @a. */
static int
attempt(struct rpcc *c, size_t i, const void *body, size_t len,
    const struct auth_req_hdrs *hdrs, long timeout_ms, struct rpcc_answer *a,
    struct dsc_err *err)
{
	int rc;

	rc = rpcc_xfer_prepare(
	    c, &c->x, c->servers[i], body, len, hdrs, timeout_ms, err);
	if (rc != 0)
		return rc;
	return rpcc_xfer_finish(c, &c->x, c->servers[i],
	    curl_easy_perform(c->x.curl), timeout_ms, c->last_id, a, err);
}

int
rpcc_send(struct rpcc *c, size_t server, const void *body, size_t len,
    const struct auth_req_hdrs *hdrs, json_t **result, struct dsc_err *err)
{
	long t = c->opt.attempt_ms != 0 ? c->opt.attempt_ms : c->opt.timeout_ms;
	struct rpcc_answer a = { 0 };
	int rc;

	if (server >= c->n)
		return dsc_errorf(
		    err, DSC_EINVAL, "no server number %zu", server);
	rc = attempt(c, server, body, len, hdrs, t, &a, err);
	if (rc == 0) {
		*result = a.result;
		a.result = NULL;
	}
	rpcc_answer_clear(&a);
	return rc;
}

/* ---- calls --------------------------------------------------------------- */

void
rpcc_fill_meta(struct rpcc_meta *m, json_t *res, const char *server,
    unsigned attempts, uint64_t seq)
{
	json_t *v;

	memset(m, 0, sizeof(*m));
	v = json_object_get(res, "index");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		m->index = (uint64_t)json_integer_value(v);
	v = json_object_get(res, "known_leader");
	m->known_leader = json_is_boolean(v) ? json_is_true(v) : true;
	v = json_object_get(res, "last_contact_ms");
	if (json_is_integer(v) && json_integer_value(v) > 0)
		m->last_contact_ms = (uint64_t)json_integer_value(v);
	m->server = server;
	m->attempts = attempts;
	m->seq = seq;
}

int64_t
rpcc_wait_extension(json_t *params)
{
	json_t *w = json_object_get(params, "wait");
	json_t *i = json_object_get(params, "index");
	json_int_t ms;

	if (json_is_integer(w))
		ms = json_integer_value(w);
	else if (json_is_integer(i) && json_integer_value(i) > 0)
		ms = RPCC_WAIT_DEFAULT_MS;
	else
		return 0;
	if (ms <= 0)
		return 0;
	if (ms > RPCC_WAIT_MAX_MS)
		ms = RPCC_WAIT_MAX_MS;
	return ms + ms / 16 + RPCC_WAIT_SLACK_MS;
}

int
rpcc_call(struct rpcc *c, const char *method, json_t *params, unsigned flags,
    json_t **result, struct rpcc_meta *meta, struct dsc_err *err)
{
	int64_t deadline, left, backoff = RPCC_BACKOFF_MIN_MS;
	struct buf body = BUF_INIT;
	struct auth_req_sig sig;
	struct auth_req_hdrs hdrs;
	struct rpcc_answer a = { 0 };
	unsigned attempts = 0;
	size_t in_pass = 0;
	bool answered = false;
	int rc;

	deadline =
	    rpcc_now_ms() + c->opt.timeout_ms + rpcc_wait_extension(params);
	if ((rc = rpcc_build(c, method, params, flags, &body, err)) != 0)
		return rc;
	for (;;) {
		rc = rpcc_sign(
		    c, (int64_t)time(NULL), body.p, body.len, &sig, err);
		if (rc != 0)
			break;
		auth_req_sig_hdrs(&sig, &hdrs);
		left = deadline - rpcc_now_ms();
		if (c->opt.attempt_ms != 0 && left > c->opt.attempt_ms)
			left = c->opt.attempt_ms;
		attempts++;
		rpcc_answer_clear(&a);
		rc = attempt(
		    c, c->cur, body.p, body.len, &hdrs, (long)left, &a, err);
		if (rc == 0 || !a.retry || attempts > c->opt.retries)
			break;
		answered |= rc != DSC_EUNREACH;
		c->cur = (c->cur + 1) % c->n;
		if (++in_pass == c->n) {
			/*
			 * Every server failed once. When none could even be
			 * reached, more passes only delay the same answer;
			 * otherwise (an election, a slow leader) give them a
			 * moment.
			 */
			if (!answered)
				break;
			in_pass = 0;
			answered = false;
			left = deadline - rpcc_now_ms();
			sleep_ms(backoff < left ? backoff : left);
			backoff = backoff * 2 < RPCC_BACKOFF_MAX_MS
			    ? backoff * 2
			    : RPCC_BACKOFF_MAX_MS;
		}
		if (deadline - rpcc_now_ms() <= 0)
			break;
	}
	sodium_memzero(&sig, sizeof(sig));
	buf_release(&body);
	if (meta != NULL && a.from_server)
		rpcc_fill_meta(meta, rc == 0 ? a.result : a.data,
		    c->servers[c->cur], attempts,
		    (flags & RPCC_WRITE) ? c->seq : 0);
	if (rc == 0) {
		*result = a.result;
		a.result = NULL;
	}
	rpcc_answer_clear(&a);
	return rc;
}

int
rpcc_call_write(struct rpcc *c, const char *method, json_t *params,
    json_t **result, struct rpcc_meta *meta, struct dsc_err *err)
{
	return rpcc_call(c, method, params, RPCC_WRITE, result, meta, err);
}

/* ---- for other drivers (rpcc_internal.h) ------------------------------- */

const struct rpcc_options *
rpcc_opts(const struct rpcc *c)
{
	return &c->opt;
}

size_t
rpcc_n_servers(const struct rpcc *c)
{
	return c->n;
}

const char *
rpcc_server(const struct rpcc *c, size_t i)
{
	return c->servers[i % c->n];
}

size_t
rpcc_first(const struct rpcc *c)
{
	return c->cur;
}

void
rpcc_set_first(struct rpcc *c, size_t i)
{
	c->cur = i % c->n;
}

uint64_t
rpcc_last_id(const struct rpcc *c)
{
	return c->last_id;
}

/*
 * svcdef.c - service and check definitions: Consul's loose JSON in, the
 * catalog's strict form and the checker's struct out.
 *
 * Each object is first copied into a "normalised" object whose keys are
 * lowercased with underscores dropped, which makes every lookup below a
 * plain json_object_get and catches "Name" and "name" given together. Only
 * the keys of definition objects are normalised: Meta, Header and
 * TaggedAddresses keys are user data and kept as written.
 */
#include "svcdef.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog.h"
#include "duration.h"
#include "mem.h"

/* Longest key that can be one of ours once normalised; longer keys are
 * unknown keys and ignored. */
#define KEY_MAX 48

#define INVAL(err, ...) dsc_errorf((err), DSC_EINVAL, __VA_ARGS__)

/* ---- normalised objects --------------------------------------------- */

/* Lowercases @key and drops underscores; false when it is too long. */
static bool
norm_key(const char *key, char out[KEY_MAX])
{
	size_t n = 0;

	for (; *key != '\0'; key++) {
		char c = *key;

		if (c == '_')
			continue;
		if (n + 1 >= KEY_MAX)
			return false;
		out[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[n] = '\0';
	return true;
}

/* A new object holding @in's members under normalised keys (values are
 * shared, not copied). */
static int
norm(json_t *in, const char *what, json_t **out, struct dsc_err *err)
{
	const char *k;
	json_t *v, *o;

	if (!json_is_object(in))
		return INVAL(err, "%s must be a JSON object", what);
	if ((o = json_object()) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	json_object_foreach(in, k, v)
	{
		char nk[KEY_MAX];

		if (!norm_key(k, nk))
			continue;
		if (json_object_get(o, nk) != NULL) {
			json_decref(o);
			return INVAL(err, "duplicate key '%s' in %s", k, what);
		}
		if (json_object_set(o, nk, v) != 0) {
			json_decref(o);
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		}
	}
	*out = o;
	return 0;
}

/* The member @key (given in its canonical spelling); JSON null counts as
 * absent, as Go decodes it. */
static json_t *
get(json_t *o, const char *key)
{
	char nk[KEY_MAX];
	json_t *v;

	if (!norm_key(key, nk))
		return NULL;
	v = json_object_get(o, nk);
	return json_is_null(v) ? NULL : v;
}

static int
check_text(const char *key, json_t *v, size_t max, struct dsc_err *err)
{
	if (!json_is_string(v))
		return INVAL(err, "invalid '%s': want a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return INVAL(err, "invalid '%s': contains a NUL byte", key);
	if (json_string_length(v) > max)
		return INVAL(
		    err, "invalid '%s': longer than %zu bytes", key, max);
	return 0;
}

/* A string member, or @def when absent. */
static int
get_str(json_t *o, const char *key, size_t max, const char *def,
    const char **out, struct dsc_err *err)
{
	json_t *v = get(o, key);
	int rc;

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if ((rc = check_text(key, v, max, err)) != 0)
		return rc;
	*out = json_string_value(v);
	return 0;
}

static int
get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t def,
    int64_t *out, struct dsc_err *err)
{
	json_t *v = get(o, key);

	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return INVAL(err, "invalid '%s': want an integer %jd..%jd", key,
		    (intmax_t)min, (intmax_t)max);
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int
get_bool(json_t *o, const char *key, bool *out, struct dsc_err *err)
{
	json_t *v = get(o, key);

	if (v == NULL) {
		*out = false;
		return 0;
	}
	if (!json_is_boolean(v))
		return INVAL(err, "invalid '%s': want true or false", key);
	*out = json_is_true(v);
	return 0;
}

/* A duration member in ms; 0 when absent. */
static int
get_dur(json_t *o, const char *key, uint64_t *ms, struct dsc_err *err)
{
	json_t *v = get(o, key);
	int64_t ns;

	*ms = 0;
	/* "" is what a client's zero value looks like: absent, not invalid. */
	if (v == NULL || (json_is_string(v) && json_string_length(v) == 0))
		return 0;
	if (dur_json(v, &ns, err) != 0) {
		dsc_err_wrap(err, "invalid '%s'", key);
		return DSC_EINVAL;
	}
	if (ns < 0)
		return INVAL(err, "invalid '%s': negative", key);
	if ((uint64_t)ns / DUR_NS_PER_MS > SVCDEF_DURATION_MAX_MS)
		return INVAL(err, "invalid '%s': longer than %llu days", key,
		    SVCDEF_DURATION_MAX_MS / (24 * 3600 * 1000));
	*ms =
	    (uint64_t)ns / DUR_NS_PER_MS + ((uint64_t)ns % DUR_NS_PER_MS != 0);
	return 0;
}

/* Names and IDs: printable, no control characters (they end up in URLs,
 * logs and DNS labels). */
static int
check_name(const char *key, const char *s, size_t max, struct dsc_err *err)
{
	if (*s == '\0')
		return INVAL(err, "missing '%s'", key);
	if (strlen(s) > max)
		return INVAL(
		    err, "invalid '%s': longer than %zu bytes", key, max);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return INVAL(
			    err, "invalid '%s': control character", key);
	return 0;
}

/* A string fit to quote in a message: short and without control bytes. */
static const char *
quotable(json_t *v)
{
	const char *s = json_string_value(v);

	if (s == NULL || *s == '\0' || strlen(s) > 64)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return NULL;
	return s;
}

static int
nomem(struct dsc_err *err)
{
	return dsc_errorf(err, DSC_ENOMEM, "out of memory");
}

/* ---- checks ---------------------------------------------------------- */

struct check_ctx {
	const char *service_id; /* enclosing service, NULL: standalone */
	const char *service_name;
	size_t index, count; /* 1-based position among its checks */
};

/* Keeps a copy of @s alive as long as @c and returns it. */
static const char *
keep(struct svc_check *c, const char *s)
{
	json_t *v = json_string(s);

	if (v == NULL || json_array_append_new(c->strings_, v) != 0)
		return NULL;
	return json_string_value(v);
}

static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s <= ' ' || *s >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?={}", *s) != NULL)
			return false;
	return true;
}

static bool
has_crlf(const char *s)
{
	return strpbrk(s, "\r\n") != NULL;
}

/* "host:port" with a port 1..65535 after the last colon. */
static bool
is_host_port(const char *s)
{
	const char *c = strrchr(s, ':');
	long port = 0;

	if (c == NULL || c == s || c[1] == '\0' || strlen(c + 1) > 5)
		return false;
	for (const char *p = c + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		port = port * 10 + (*p - '0');
	}
	return port >= 1 && port <= 65535;
}

/* Header: {"Name": ["v1", "v2"]} (Go's map[string][]string) or, leniently,
 * {"Name": "v"}; becomes "Name: v" lines in @c->def and @def_hdr. */
static int
decode_headers(
    struct svc_check *c, json_t *h, json_t *def_hdr, struct dsc_err *err)
{
	const char *name;
	json_t *vals;

	if (!json_is_object(h))
		return INVAL(err,
		    "invalid 'Header': want an object of string "
		    "lists");
	json_object_foreach(h, name, vals)
	{
		json_t *list = json_is_string(vals) ? json_pack("[O]", vals)
		                                    : json_incref(vals);
		size_t i;
		json_t *v;

		if (list == NULL)
			return nomem(err);
		if (!is_token(name) || !json_is_array(list)) {
			json_decref(list);
			return INVAL(err, "invalid 'Header' '%s'", name);
		}
		json_array_foreach(list, i, v)
		{
			char line[SVCDEF_HEADER_MAX + 1];
			const char *val = json_string_value(v);

			if (val == NULL ||
			    strlen(val) != json_string_length(v) ||
			    has_crlf(val) ||
			    (size_t)snprintf(line, sizeof(line), "%s: %s", name,
			        val) >= sizeof(line)) {
				json_decref(list);
				return INVAL(
				    err, "invalid 'Header' '%s'", name);
			}
			if (c->def.n_headers >= CHECK_HEADERS_MAX) {
				json_decref(list);
				return INVAL(err,
				    "invalid 'Header': more "
				    "than %d values",
				    CHECK_HEADERS_MAX);
			}
			if ((c->def.headers[c->def.n_headers] =
			            keep(c, line)) == NULL) {
				json_decref(list);
				return nomem(err);
			}
			c->def.n_headers++;
		}
		if (json_object_set_new(def_hdr, name, list) != 0)
			return nomem(err);
	}
	return 0;
}

static int
decode_args(struct svc_check *c, json_t *o, struct dsc_err *err)
{
	json_t *args = get(o, "Args"), *sargs = get(o, "ScriptArgs");
	const char *script;
	size_t i;
	json_t *v;
	int rc;

	if (args != NULL && sargs != NULL)
		return INVAL(err, "give 'Args' or 'ScriptArgs', not both");
	if (args == NULL)
		args = sargs;
	if ((rc = get_str(o, "Script", SVCDEF_ARG_MAX, NULL, &script, err)))
		return rc;
	if (script != NULL && *script != '\0') {
		if (args != NULL && json_array_size(args) > 0)
			return INVAL(err, "give 'Args' or 'Script', not both");
		if ((c->def.args[0] = keep(c, "/bin/sh")) == NULL ||
		    (c->def.args[1] = keep(c, "-c")) == NULL ||
		    (c->def.args[2] = keep(c, script)) == NULL)
			return nomem(err);
		c->def.n_args = 3;
		return 0;
	}
	if (args == NULL)
		return 0;
	if (!json_is_array(args))
		return INVAL(err, "invalid 'Args': want a list of strings");
	if (json_array_size(args) >= CHECK_ARGS_MAX)
		return INVAL(err, "invalid 'Args': more than %d arguments",
		    CHECK_ARGS_MAX - 1);
	json_array_foreach(args, i, v)
	{
		if ((rc = check_text("Args", v, SVCDEF_ARG_MAX, err)) != 0)
			return rc;
		if ((c->def.args[i] = keep(c, json_string_value(v))) == NULL)
			return nomem(err);
	}
	c->def.n_args = json_array_size(args);
	if (c->def.n_args > 0 && *c->def.args[0] == '\0')
		return INVAL(err, "invalid 'Args': empty program name");
	return 0;
}

/* Kinds dsc does not run, refused by name rather than silently ignored. */
static int
refuse_unsupported(json_t *o, struct dsc_err *err)
{
	static const struct {
		const char *key, *kind;
	} kinds[] = {
		{ "UDP", "UDP" },
		{ "GRPC", "gRPC" },
		{ "H2PING", "H2PING" },
		{ "DockerContainerID", "Docker" },
		{ "AliasService", "alias" },
		{ "AliasNode", "alias" },
		{ "OSService", "OS service" },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		json_t *v = get(o, kinds[i].key);

		if (v != NULL &&
		    !(json_is_string(v) && json_string_length(v) == 0))
			return INVAL(
			    err, "%s checks are not supported", kinds[i].kind);
	}
	return 0;
}

static int
put_dur(json_t *obj, const char *key, uint64_t ms)
{
	char b[DUR_FMT_MAX];

	return json_object_set_new(
	    obj, key, json_string(dur_format((int64_t)ms * DUR_NS_PER_MS, b)));
}

/* The catalog form of a decoded check. */
static int
build_catalog(struct svc_check *c, const char *notes, const char *type,
    json_t *def, struct dsc_err *err)
{
	json_t *cat;
	char *text;
	size_t len;

	cat = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "CheckID", c->id,
	    "Name", c->name, "Notes", notes, "Status", c->def.initial_status,
	    "ServiceID", c->service_id, "Type", type, "Definition", def);
	if (cat == NULL)
		return nomem(err);
	if (c->def.kind != CHECK_TTL &&
	    (put_dur(cat, "Interval", c->def.interval_ms) != 0 ||
	        put_dur(cat, "Timeout", c->def.timeout_ms) != 0)) {
		json_decref(cat);
		return nomem(err);
	}
	if ((text = json_dumps(def, JSON_SORT_KEYS | JSON_COMPACT)) == NULL) {
		json_decref(cat);
		return nomem(err);
	}
	len = strlen(text);
	free(text);
	if (len > CATALOG_DEFINITION_MAX) {
		json_decref(cat);
		return INVAL(err, "definition longer than %d bytes",
		    CATALOG_DEFINITION_MAX);
	}
	c->catalog = cat;
	return 0;
}

/* The HTTP kind's fields: URL, Method, Body, Header, TLSSkipVerify. */
static int
decode_http(struct svc_check *c, json_t *o, const char *http, json_t *def,
    struct dsc_err *err)
{
	const char *method, *body;
	json_t *hdr;
	bool skip = false;
	int rc;

	if ((rc = get_str(o, "Method", 16, NULL, &method, err)) ||
	    (rc = get_str(o, "Body", SVCDEF_BODY_MAX, NULL, &body, err)) ||
	    (rc = get_bool(o, "TLSSkipVerify", &skip, err)))
		return rc;
	if (strncmp(http, "http://", 7) != 0 &&
	    strncmp(http, "https://", 8) != 0)
		return INVAL(err,
		    "invalid 'HTTP' '%s': want an http:// or "
		    "https:// URL",
		    http);
	if (has_crlf(http) || strchr(http, ' ') != NULL)
		return INVAL(err,
		    "invalid 'HTTP': contains spaces or line "
		    "breaks");
	if (method != NULL && *method != '\0' && !is_token(method))
		return INVAL(err, "invalid 'Method' '%s'", method);
	c->def.tls_skip_verify = skip;
	if ((c->def.http = keep(c, http)) == NULL ||
	    (method != NULL && *method != '\0' &&
	        (c->def.method = keep(c, method)) == NULL) ||
	    (body != NULL && *body != '\0' &&
	        (c->def.body = keep(c, body)) == NULL))
		return nomem(err);
	if (json_object_set_new(def, "HTTP", json_string(http)) ||
	    (c->def.method != NULL &&
	        json_object_set_new(def, "Method", json_string(method))) ||
	    (c->def.body != NULL &&
	        json_object_set_new(def, "Body", json_string(body))) ||
	    (skip && json_object_set_new(def, "TLSSkipVerify", json_true())))
		return nomem(err);
	if ((hdr = get(o, "Header")) != NULL) {
		json_t *dh = json_object();

		if (dh == NULL || json_object_set_new(def, "Header", dh) != 0)
			return nomem(err);
		return decode_headers(c, hdr, dh, err);
	}
	return 0;
}

static int
decode_check_fields(json_t *o, const struct check_ctx *ctx, struct svc_check *c,
    json_t *def, struct dsc_err *err)
{
	const char *id, *cid, *name, *notes, *status, *sid, *http, *tcp, *type;
	uint64_t interval, timeout, ttl;
	int64_t sbp, fbw, fbc, omax;
	int kinds, rc;
	char auto_id[CATALOG_ID_MAX + 32], auto_name[CATALOG_NAME_MAX + 32];

	if ((rc = get_str(o, "CheckID", CATALOG_ID_MAX, NULL, &cid, err)) ||
	    (rc = get_str(o, "ID", CATALOG_ID_MAX, NULL, &id, err)) ||
	    (rc = get_str(o, "Name", CATALOG_TEXT_MAX, "", &name, err)) ||
	    (rc = get_str(o, "Notes", CATALOG_NOTES_MAX, "", &notes, err)) ||
	    (rc = get_str(o, "Status", 16, "critical", &status, err)) ||
	    (rc = get_str(o, "ServiceID", CATALOG_ID_MAX, "", &sid, err)) ||
	    (rc = get_str(o, "HTTP", SVCDEF_URL_MAX, "", &http, err)) ||
	    (rc = get_str(o, "TCP", CATALOG_ADDR_MAX, "", &tcp, err)) ||
	    (rc = get_dur(o, "Interval", &interval, err)) ||
	    (rc = get_dur(o, "Timeout", &timeout, err)) ||
	    (rc = get_dur(o, "TTL", &ttl, err)) ||
	    (rc = get_dur(o, "DeregisterCriticalServiceAfter",
	         &c->deregister_after_ms, err)) ||
	    (rc = get_int(o, "SuccessBeforePassing", 0, SVCDEF_THRESHOLD_MAX, 0,
	         &sbp, err)) ||
	    (rc = get_int(o, "FailuresBeforeWarning", 0, SVCDEF_THRESHOLD_MAX,
	         0, &fbw, err)) ||
	    (rc = get_int(o, "FailuresBeforeCritical", 0, SVCDEF_THRESHOLD_MAX,
	         0, &fbc, err)) ||
	    (rc = get_int(o, "OutputMaxSize", 1, SVCDEF_OUTPUT_MAX,
	         CHECK_OUTPUT_MAX_DEFAULT, &omax, err)) ||
	    (rc = refuse_unsupported(o, err)) || (rc = decode_args(c, o, err)))
		return rc;
	if (cid == NULL || *cid == '\0')
		cid = id;
	if (ctx->service_id != NULL)
		sid = ctx->service_id;
	if (ctx->service_id == NULL && *name == '\0')
		return INVAL(err, "missing check 'Name'");
	if (cid == NULL || *cid == '\0') {
		if (ctx->service_id == NULL)
			cid = name;
		else if (ctx->count > 1)
			snprintf(auto_id, sizeof(auto_id), "service:%s:%zu",
			    ctx->service_id, ctx->index);
		else
			snprintf(auto_id, sizeof(auto_id), "service:%s",
			    ctx->service_id);
		if (ctx->service_id != NULL)
			cid = auto_id;
	}
	if (*name == '\0') {
		snprintf(auto_name, sizeof(auto_name), "Service '%s' check",
		    ctx->service_name);
		name = auto_name;
	}
	if ((rc = check_name("CheckID", cid, CATALOG_ID_MAX, err)) != 0)
		return rc;
	if (strcmp(status, "passing") != 0 && strcmp(status, "warning") != 0 &&
	    strcmp(status, "critical") != 0)
		return INVAL(err,
		    "invalid 'Status' '%s': want passing, "
		    "warning or critical",
		    status);

	kinds =
	    (ttl > 0) + (*http != '\0') + (*tcp != '\0') + (c->def.n_args > 0);
	if (kinds == 0)
		return INVAL(err,
		    "check needs one of 'TTL', 'HTTP', 'TCP' "
		    "or 'Args'");
	if (kinds > 1)
		return INVAL(err,
		    "check has more than one of 'TTL', 'HTTP', "
		    "'TCP' and 'Args'");
	if (ttl > 0 && interval > 0)
		return INVAL(err, "'Interval' and 'TTL' cannot both be given");
	if (ttl == 0 && interval == 0)
		return INVAL(err,
		    "'Interval' is required for HTTP, TCP and "
		    "script checks");
	if (ttl == 0 && interval < SVCDEF_INTERVAL_MIN_MS)
		interval = SVCDEF_INTERVAL_MIN_MS;
	if (timeout == 0)
		timeout = SVCDEF_TIMEOUT_MS_DEFAULT;
	if (c->deregister_after_ms > 0 &&
	    c->deregister_after_ms < SVCDEF_DEREG_MIN_MS)
		c->deregister_after_ms = SVCDEF_DEREG_MIN_MS;

	c->def.interval_ms = ttl > 0 ? 0 : interval;
	c->def.timeout_ms = ttl > 0 ? 0 : timeout;
	c->def.ttl_ms = ttl;
	c->def.success_before_passing = (unsigned)sbp;
	c->def.failures_before_warning = (unsigned)fbw;
	c->def.failures_before_critical = (unsigned)fbc;
	c->def.output_max = (size_t)omax;
	if ((c->def.initial_status = keep(c, status)) == NULL)
		return nomem(err);
	if (ttl > 0) {
		c->def.kind = CHECK_TTL;
		type = "ttl";
	} else if (*http != '\0') {
		c->def.kind = CHECK_HTTP;
		type = "http";
		if ((rc = decode_http(c, o, http, def, err)) != 0)
			return rc;
	} else if (*tcp != '\0') {
		c->def.kind = CHECK_TCP;
		type = "tcp";
		if (!is_host_port(tcp))
			return INVAL(err,
			    "invalid 'TCP' '%s': want "
			    "host:port",
			    tcp);
		if ((c->def.tcp = keep(c, tcp)) == NULL ||
		    json_object_set_new(def, "TCP", json_string(tcp)) != 0)
			return nomem(err);
	} else {
		json_t *a = json_array();

		c->def.kind = CHECK_SCRIPT;
		type = "script";
		if (a == NULL || json_object_set_new(def, "ScriptArgs", a))
			return nomem(err);
		for (size_t i = 0; i < c->def.n_args; i++)
			if (json_array_append_new(
			        a, json_string(c->def.args[i])) != 0)
				return nomem(err);
	}
	if (put_dur(def, "Interval", c->def.interval_ms) != 0 ||
	    put_dur(def, "Timeout", c->def.timeout_ms) != 0 ||
	    put_dur(def, "DeregisterCriticalServiceAfter",
	        c->deregister_after_ms) != 0)
		return nomem(err);
	if ((c->id = dsc_strdup(cid)) == NULL ||
	    (c->name = dsc_strdup(name)) == NULL ||
	    (c->service_id = dsc_strdup(sid)) == NULL)
		return nomem(err);
	return build_catalog(c, notes, type, def, err);
}

/* How a check is called in messages: its ID, its name, or its place. */
static void
wrap_check(struct dsc_err *err, json_t *o, const struct check_ctx *ctx)
{
	const char *what = NULL;
	json_t *v;

	if (o != NULL) {
		if ((v = get(o, "CheckID")) == NULL || !json_is_string(v))
			v = get(o, "ID");
		if (v == NULL || !json_is_string(v))
			v = get(o, "Name");
		what = quotable(v);
	}
	if (what != NULL)
		dsc_err_wrap(err, "check '%s'", what);
	else if (ctx->count > 1)
		dsc_err_wrap(err, "check %zu", ctx->index);
	else
		dsc_err_wrap(err, "check");
}

static int
decode_check(json_t *raw, const struct check_ctx *ctx, struct svc_check *out,
    struct dsc_err *err)
{
	struct svc_check c = { 0 };
	json_t *o = NULL, *def = NULL;
	int rc;

	if ((rc = norm(raw, "a check", &o, err)) != 0) {
		wrap_check(err, NULL, ctx);
		return rc;
	}
	if ((c.strings_ = json_array()) == NULL ||
	    (def = json_object()) == NULL)
		rc = nomem(err);
	else
		rc = decode_check_fields(o, ctx, &c, def, err);
	if (rc != 0) {
		if (rc != DSC_ENOMEM)
			wrap_check(err, o, ctx);
		svc_check_release(&c);
	} else {
		*out = c;
	}
	json_decref(def);
	json_decref(o);
	return rc;
}

int
svcdef_check(json_t *reg, struct svc_check *out, struct dsc_err *err)
{
	const struct check_ctx ctx = { NULL, NULL, 1, 1 };

	return decode_check(reg, &ctx, out, err);
}

void
svc_check_release(struct svc_check *c)
{
	if (c == NULL)
		return;
	dsc_free(c->id);
	dsc_free(c->name);
	dsc_free(c->service_id);
	json_decref(c->catalog);
	json_decref(c->strings_);
	memset(c, 0, sizeof(*c));
}

/* ---- services -------------------------------------------------------- */

static int
decode_tags(json_t *o, json_t *svc, struct dsc_err *err)
{
	json_t *tags = get(o, "Tags"), *out = json_array(), *v;
	size_t i;
	int rc;

	if (out == NULL || json_object_set_new(svc, "Tags", out) != 0)
		return nomem(err);
	if (tags == NULL)
		return 0;
	if (!json_is_array(tags))
		return INVAL(err, "invalid 'Tags': want a list of strings");
	if (json_array_size(tags) > CATALOG_TAGS_MAX)
		return INVAL(
		    err, "invalid 'Tags': more than %d", CATALOG_TAGS_MAX);
	json_array_foreach(tags, i, v)
	{
		if ((rc = check_text("Tags", v, CATALOG_TAG_MAX, err)) != 0)
			return rc;
		if (json_array_append(out, v) != 0)
			return nomem(err);
	}
	return 0;
}

static int
decode_meta(json_t *o, json_t *svc, struct dsc_err *err)
{
	json_t *meta = get(o, "Meta"), *out = json_object(), *v;
	const char *k;
	int rc;

	if (out == NULL || json_object_set_new(svc, "Meta", out) != 0)
		return nomem(err);
	if (meta == NULL)
		return 0;
	if (!json_is_object(meta))
		return INVAL(err, "invalid 'Meta': want an object of strings");
	if (json_object_size(meta) > CATALOG_META_MAX)
		return INVAL(err, "invalid 'Meta': more than %d pairs",
		    CATALOG_META_MAX);
	json_object_foreach(meta, k, v)
	{
		if (*k == '\0' || strlen(k) > CATALOG_META_KEY_MAX)
			return INVAL(err, "invalid 'Meta' key '%.64s'", k);
		if ((rc = check_text("Meta", v, CATALOG_META_VALUE_MAX, err)))
			return rc;
		if (json_object_set(out, k, v) != 0)
			return nomem(err);
	}
	return 0;
}

static int
decode_weights(json_t *o, json_t *svc, struct dsc_err *err)
{
	json_t *w = get(o, "Weights"), *nw = NULL;
	int64_t passing = 1, warning = 1;
	int rc = 0;

	if (w != NULL) {
		if ((rc = norm(w, "'Weights'", &nw, err)) != 0)
			return rc;
		if ((rc = get_int(nw, "Passing", 1, 65535, 1, &passing, err)) ==
		    0)
			rc = get_int(nw, "Warning", 0, 65535, 1, &warning, err);
		json_decref(nw);
		if (rc != 0) {
			dsc_err_wrap(err, "invalid 'Weights'");
			return rc;
		}
	}
	if (json_object_set_new(svc, "Weights",
	        json_pack("{s:I, s:I}", "Passing", (json_int_t)passing,
	            "Warning", (json_int_t)warning)) != 0)
		return nomem(err);
	return 0;
}

static int
decode_tagged(json_t *o, json_t *svc, struct dsc_err *err)
{
	json_t *ta = get(o, "TaggedAddresses"), *out, *v;
	const char *k;
	int rc;

	if (ta == NULL)
		return 0;
	if (!json_is_object(ta))
		return INVAL(err, "invalid 'TaggedAddresses': want an object");
	if (json_object_size(ta) > CATALOG_TADDRS_MAX)
		return INVAL(err, "invalid 'TaggedAddresses': more than %d",
		    CATALOG_TADDRS_MAX);
	if ((out = json_object()) == NULL ||
	    json_object_set_new(svc, "TaggedAddresses", out) != 0)
		return nomem(err);
	json_object_foreach(ta, k, v)
	{
		const char *addr;
		int64_t port;
		json_t *nv;

		if (*k == '\0' || strlen(k) > CATALOG_TADDR_KEY_MAX)
			return INVAL(err,
			    "invalid 'TaggedAddresses' key "
			    "'%.64s'",
			    k);
		if ((rc = norm(v, "a tagged address", &nv, err)) != 0)
			return rc;
		if ((rc = get_str(nv, "Address", CATALOG_ADDR_MAX, "", &addr,
		         err)) == 0 &&
		    (rc = get_int(nv, "Port", 0, 65535, 0, &port, err)) == 0 &&
		    json_object_set_new(out, k,
		        json_pack("{s:s, s:I}", "Address", addr, "Port",
		            (json_int_t)port)) != 0)
			rc = nomem(err);
		json_decref(nv);
		if (rc != 0) {
			dsc_err_wrap(err, "'TaggedAddresses' '%s'", k);
			return rc;
		}
	}
	return 0;
}

/* Check and Checks, in that order (Consul's CheckTypes()). */
static int
decode_service_checks(json_t *o, struct svc_def *s, struct dsc_err *err)
{
	json_t *one = get(o, "Check"), *many = get(o, "Checks"), *all, *v;
	struct check_ctx ctx = { s->id, s->name, 0, 0 };
	size_t i;
	int rc = 0;

	if (many != NULL && !json_is_array(many))
		return INVAL(err, "invalid 'Checks': want a list of checks");
	if ((all = json_array()) == NULL)
		return nomem(err);
	if ((one != NULL && json_array_append(all, one) != 0) ||
	    (many != NULL && json_array_extend(all, many) != 0)) {
		json_decref(all);
		return nomem(err);
	}
	ctx.count = json_array_size(all);
	if (ctx.count > SVCDEF_CHECKS_MAX) {
		json_decref(all);
		return INVAL(err, "more than %d checks", SVCDEF_CHECKS_MAX);
	}
	if (ctx.count > 0 &&
	    (s->checks = dsc_calloc(ctx.count, sizeof(*s->checks))) == NULL) {
		json_decref(all);
		return nomem(err);
	}
	json_array_foreach(all, i, v)
	{
		ctx.index = i + 1;
		if ((rc = decode_check(v, &ctx, &s->checks[i], err)) != 0)
			break;
		s->n_checks++;
		for (size_t j = 0; j < i; j++)
			if (strcmp(s->checks[j].id, s->checks[i].id) == 0) {
				rc = INVAL(err, "duplicate check ID '%s'",
				    s->checks[i].id);
				break;
			}
		if (rc != 0)
			break;
	}
	json_decref(all);
	return rc;
}

static int
decode_service_fields(json_t *o, struct svc_def *s, struct dsc_err *err)
{
	const char *name, *id, *addr;
	int64_t port;
	bool eto = false;
	int rc;

	if ((rc = get_str(o, "Name", CATALOG_NAME_MAX, "", &name, err)) ||
	    (rc = get_str(o, "ID", CATALOG_ID_MAX, "", &id, err)) ||
	    (rc = get_str(o, "Address", CATALOG_ADDR_MAX, "", &addr, err)) ||
	    (rc = get_int(o, "Port", 0, 65535, 0, &port, err)) ||
	    (rc = get_bool(o, "EnableTagOverride", &eto, err)))
		return rc;
	if (*name == '\0')
		return INVAL(err, "missing service name");
	if (*id == '\0')
		id = name;
	if ((rc = check_name("Name", name, CATALOG_NAME_MAX, err)) ||
	    (rc = check_name("ID", id, CATALOG_ID_MAX, err)))
		return rc;
	if ((s->id = dsc_strdup(id)) == NULL ||
	    (s->name = dsc_strdup(name)) == NULL ||
	    (s->catalog = json_pack("{s:s, s:s, s:s, s:I, s:b}", "ID", id,
	         "Service", name, "Address", addr, "Port", (json_int_t)port,
	         "EnableTagOverride", eto)) == NULL)
		return nomem(err);
	if ((rc = decode_tags(o, s->catalog, err)) ||
	    (rc = decode_meta(o, s->catalog, err)) ||
	    (rc = decode_weights(o, s->catalog, err)) ||
	    (rc = decode_tagged(o, s->catalog, err)))
		return rc;
	return decode_service_checks(o, s, err);
}

int
svcdef_service(json_t *reg, struct svc_def *out, struct dsc_err *err)
{
	struct svc_def s = { 0 };
	json_t *o;
	int rc;

	if ((rc = norm(reg, "a service", &o, err)) != 0)
		return rc;
	rc = decode_service_fields(o, &s, err);
	if (rc != 0 && rc != DSC_ENOMEM) {
		const char *name = quotable(get(o, "Name"));

		if (name != NULL)
			dsc_err_wrap(err, "service '%s'", name);
	}
	json_decref(o);
	if (rc != 0)
		svc_def_release(&s);
	else
		*out = s;
	return rc;
}

void
svc_def_release(struct svc_def *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n_checks; i++)
		svc_check_release(&s->checks[i]);
	dsc_free(s->checks);
	dsc_free(s->id);
	dsc_free(s->name);
	json_decref(s->catalog);
	memset(s, 0, sizeof(*s));
}

/* ---- files ----------------------------------------------------------- */

/* "service" and "services" (or "check" and "checks") as one list. */
static int
collect(json_t *o, const char *one, const char *many, json_t **out,
    struct dsc_err *err)
{
	json_t *a = get(o, one), *m = get(o, many), *all;

	if (m != NULL && !json_is_array(m))
		return INVAL(err, "invalid '%s': want a list", many);
	if ((all = json_array()) == NULL ||
	    (a != NULL && json_array_append(all, a) != 0) ||
	    (m != NULL && json_array_extend(all, m) != 0)) {
		json_decref(all);
		return nomem(err);
	}
	*out = all;
	return 0;
}

static int
file_unique(const struct svcdef_file *f, struct dsc_err *err)
{
	/* Files are small (SVCDEF_FILE_ENTRIES_MAX): quadratic is fine. */
	for (size_t i = 0; i < f->n_services; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->services[i].id, f->services[j].id) == 0)
				return INVAL(err, "duplicate service ID '%s'",
				    f->services[i].id);
	for (size_t i = 0; i < f->n_checks; i++) {
		for (size_t j = 0; j < i; j++)
			if (strcmp(f->checks[i].id, f->checks[j].id) == 0)
				return INVAL(err, "duplicate check ID '%s'",
				    f->checks[i].id);
		for (size_t j = 0; j < f->n_services; j++)
			for (size_t k = 0; k < f->services[j].n_checks; k++)
				if (strcmp(f->checks[i].id,
				        f->services[j].checks[k].id) == 0)
					return INVAL(err,
					    "duplicate check "
					    "ID '%s'",
					    f->checks[i].id);
	}
	return 0;
}

static int
decode_file(json_t *o, struct svcdef_file *f, struct dsc_err *err)
{
	json_t *svcs = NULL, *checks = NULL, *v;
	size_t i;
	int rc;

	if ((rc = collect(o, "Service", "Services", &svcs, err)) ||
	    (rc = collect(o, "Check", "Checks", &checks, err)))
		goto out;
	if (json_array_size(svcs) + json_array_size(checks) >
	    SVCDEF_FILE_ENTRIES_MAX) {
		rc = INVAL(err, "more than %d services and checks",
		    SVCDEF_FILE_ENTRIES_MAX);
		goto out;
	}
	if ((json_array_size(svcs) > 0 &&
	        (f->services = dsc_calloc(
	             json_array_size(svcs), sizeof(*f->services))) == NULL) ||
	    (json_array_size(checks) > 0 &&
	        (f->checks = dsc_calloc(
	             json_array_size(checks), sizeof(*f->checks))) == NULL)) {
		rc = nomem(err);
		goto out;
	}
	json_array_foreach(svcs, i, v)
	{
		if ((rc = svcdef_service(v, &f->services[i], err)) != 0)
			goto out;
		f->n_services++;
	}
	json_array_foreach(checks, i, v)
	{
		if ((rc = svcdef_check(v, &f->checks[i], err)) != 0)
			goto out;
		f->n_checks++;
	}
	rc = file_unique(f, err);
out:
	json_decref(svcs);
	json_decref(checks);
	return rc;
}

int
svcdef_file_json(json_t *root, const char *path, struct svcdef_file *out,
    struct dsc_err *err)
{
	struct svcdef_file f = { 0 };
	json_t *o;
	int rc;

	if ((rc = norm(root, "a definition file", &o, err)) == 0) {
		rc = decode_file(o, &f, err);
		json_decref(o);
	}
	if (rc != 0) {
		dsc_err_wrap(err, "%s", path);
		svcdef_file_release(&f);
		return rc;
	}
	*out = f;
	return 0;
}

int
svcdef_file_load(const char *path, struct svcdef_file *out, struct dsc_err *err)
{
	json_error_t jerr;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	json_t *root;
	ssize_t n;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return dsc_errorf(err, DSC_EIO, "unable to open '%s': %s", path,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return dsc_errorf(
		    err, DSC_EINVAL, "%s: not a regular file", path);
	}
	if (st.st_size > SVCDEF_FILE_MAX) {
		close(fd);
		return dsc_errorf(err, DSC_EINVAL, "%s: larger than %d bytes",
		    path, SVCDEF_FILE_MAX);
	}
	if ((text = dsc_malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return nomem(err);
	}
	/* The file may grow while read: never read past what was sized. */
	while (len < (size_t)st.st_size &&
	    (n = read(fd, text + len, (size_t)st.st_size - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = dsc_errorf(err, DSC_EIO, "unable to read '%s': %s",
			    path, strerror(errno));
			close(fd);
			dsc_free(text);
			return rc;
		}
		len += (size_t)n;
	}
	close(fd);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	dsc_free(text);
	if (root == NULL)
		return dsc_errorf(err, DSC_EINVAL, "%s:%d:%d: %s", path,
		    jerr.line, jerr.column, jerr.text);
	rc = svcdef_file_json(root, path, out, err);
	json_decref(root);
	return rc;
}

void
svcdef_file_release(struct svcdef_file *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n_services; i++)
		svc_def_release(&f->services[i]);
	for (size_t i = 0; i < f->n_checks; i++)
		svc_check_release(&f->checks[i]);
	dsc_free(f->services);
	dsc_free(f->checks);
	memset(f, 0, sizeof(*f));
}

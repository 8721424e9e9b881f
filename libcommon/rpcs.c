/*
 * rpcs.c - the server side of dsc's JSON-RPC: authentication, the strict
 * envelope, response objects and sending them (rpcs.h).
 */
#include "rpcs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

/* A header sent exactly once; NULL when absent, *@dup when repeated. */
static const char *
single(struct httpd_req *req, const char *name, const char **dup)
{
	size_t n = httpd_req_header_count(req, name);

	if (n > 1 && *dup == NULL)
		*dup = name;
	return n == 1 ? httpd_req_header(req, name) : NULL;
}

static void
log_auth_failure(struct rpcs_auth *a, const char *peer, const char *why)
{
	time_t now = time(NULL);

	if (now != a->log_sec) {
		a->log_sec = now;
		a->logged = 0;
	}
	if (a->logged >= RPCS_AUTH_LOG_PER_SEC) {
		a->unlogged++;
		return;
	}
	a->logged++;
	if (a->unlogged > 0)
		log_warn("rpc: refused request from %s: %s (and %" PRIu64
		         " more not logged)",
		    peer, why, a->unlogged);
	else
		log_warn("rpc: refused request from %s: %s", peer, why);
	a->unlogged = 0;
}

int
rpcs_authenticate(
    struct rpcs_auth *a, struct httpd_req *req, struct dsc_err *err)
{
	struct auth_req_hdrs h;
	const char *dup = NULL;
	const uint8_t *body;
	size_t len;
	int rc;

	h.key_id = single(req, AUTH_HDR_KEY_ID, &dup);
	h.timestamp = single(req, AUTH_HDR_TIMESTAMP, &dup);
	h.nonce = single(req, AUTH_HDR_NONCE, &dup);
	h.mac = single(req, AUTH_HDR_MAC, &dup);
	body = httpd_req_body(req, &len);
	if (dup != NULL)
		rc = dsc_errorf(err, DSC_EAUTH, "repeated header '%s'", dup);
	else
		rc = auth_req_verify(a->key, &h, httpd_req_method(req),
		    httpd_req_target(req), body, len, (int64_t)time(NULL),
		    a->replay, err);
	if (rc == 0 || rc == DSC_EBUSY)
		return rc;
	a->failures++;
	log_auth_failure(a, httpd_req_peer(req), dsc_err_msg(err));
	return DSC_EAUTH;
}

bool
rpcs_json_content_type(const char *v)
{
	size_t n = strlen(RPCS_JSON_TYPE);

	return v != NULL && strncasecmp(v, RPCS_JSON_TYPE, n) == 0 &&
	    (v[n] == '\0' || v[n] == ';' || v[n] == ' ' || v[n] == '\t');
}

int
rpcs_take_envelope(json_t *root, json_t **id_out, const char **method,
    json_t **params_out, char *msg, size_t size)
{
	static const char *const members[] = { "jsonrpc", "method", "params",
		"id" };
	json_t *id, *params, *v;
	const char *key;
	size_t i;

	*id_out = json_null();
	if (json_is_array(root)) {
		snprintf(msg, size, "batch requests are not supported");
		return RPCS_E_INVALID_REQUEST;
	}
	if (!json_is_object(root)) {
		snprintf(msg, size, "a request must be a JSON object");
		return RPCS_E_INVALID_REQUEST;
	}
	id = json_object_get(root, "id");
	if (id != NULL && !json_is_string(id) && !json_is_integer(id) &&
	    !json_is_null(id)) {
		snprintf(
		    msg, size, "'id' must be a string, an integer or null");
		return RPCS_E_INVALID_REQUEST;
	}
	if (id != NULL) /* errors from here on carry it */
		*id_out = json_incref(id);
	json_object_foreach(root, key, v)
	{
		for (i = 0; i < sizeof(members) / sizeof(members[0]); i++)
			if (strcmp(key, members[i]) == 0)
				break;
		if (i == sizeof(members) / sizeof(members[0])) {
			snprintf(msg, size, "unknown member '%.64s'", key);
			return RPCS_E_INVALID_REQUEST;
		}
	}
	v = json_object_get(root, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		snprintf(msg, size, "'jsonrpc' must be \"2.0\"");
		return RPCS_E_INVALID_REQUEST;
	}
	*method = json_string_value(json_object_get(root, "method"));
	if (*method == NULL) {
		snprintf(msg, size, "'method' must be a string");
		return RPCS_E_INVALID_REQUEST;
	}
	params = json_object_get(root, "params");
	if (params != NULL && !json_is_object(params)) {
		snprintf(msg, size, "'params' must be an object (by name)");
		return json_is_array(params) ? RPCS_E_INVALID_PARAMS
		                             : RPCS_E_INVALID_REQUEST;
	}
	/* A valid request without "id" is a notification. */
	if (id == NULL) {
		json_decref(*id_out);
		*id_out = NULL;
	}
	*params_out = params;
	return 0;
}

json_t *
rpcs_result(json_t *id, json_t *result)
{
	if (result == NULL)
		return NULL;
	return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "result", result,
	    "id", id != NULL ? id : json_null());
}

json_t *
rpcs_error(json_t *id, int code, const char *msg, json_t *data)
{
	json_t *err = json_pack("{s:i, s:s}", "code", code, "message", msg);

	if (err != NULL && data != NULL)
		json_object_set(err, "data", data);
	json_decref(data);
	return err == NULL
	    ? NULL
	    : json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", err, "id",
	          id != NULL ? id : json_null());
}

int
rpcs_dsc_code(int code)
{
	return RPCS_E_DSC_BASE - code;
}

json_t *
rpcs_dsc_data(int code, json_t *extra)
{
	json_t *data = json_pack("{s:s, s:i}", "name", dsc_errname(code),
	    "exit", dsc_exit_class(code));

	if (data != NULL && extra != NULL)
		json_object_update(data, extra);
	json_decref(extra);
	return data;
}

void
rpcs_send(struct httpd_req *req, int status, bool notification, json_t *env)
{
	static const struct httpd_header auth_hdr[] = {
		{ "WWW-Authenticate", "DscMac" },
	};
	static const struct httpd_header busy_hdr[] = {
		{ "Retry-After", "1" },
	};
	const struct httpd_header *extra = NULL;
	size_t n_extra = 0;
	char *text;

	if (notification) { /* no response object (JSON-RPC 2.0 §4.1) */
		json_decref(env);
		httpd_respond(req, 204, NULL, NULL, 0, NULL, 0);
		return;
	}
	if (status == 401) {
		extra = auth_hdr;
		n_extra = 1;
	} else if (status == 503) {
		extra = busy_hdr;
		n_extra = 1;
	}
	text = env != NULL ? json_dumps(env, JSON_COMPACT) : NULL;
	json_decref(env);
	if (text == NULL)
		httpd_respond(req, 500, "text/plain; charset=utf-8",
		    "out of memory\n", 14, NULL, 0);
	else
		httpd_respond(req, status, RPCS_JSON_TYPE, text, strlen(text),
		    extra, n_extra);
	free(text);
}

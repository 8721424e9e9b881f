/*
 * api_rpc.c - POST /rpc on the agent: the servers' authenticated JSON-RPC
 * (libcommon/rpcs.h does the checking), so a command-line tool works the
 * same against an agent and a server. The agent.* methods of README.md
 * are answered from local state; every other method is forwarded to the
 * servers as it is, and their answer (or error, with its DSC_E* name and
 * exit class) comes back with the caller's id.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "local.h"
#include "log.h"
#include "rpcs.h"

#define AGENT_PREFIX "agent."

void
api_rpc_result(struct httpd_req *req, json_t *id, json_t *result)
{
	json_t *env = rpcs_result(id, result);

	rpcs_send(req, 200, id == NULL, env);
}

void
api_rpc_error(struct httpd_req *req, json_t *id, const struct dsc_err *err)
{
	int code = err->code > 0 && err->code < DSC_E_MAX ? err->code : DSC_EIO;

	rpcs_send(req, 200, id == NULL,
	    rpcs_error(id, rpcs_dsc_code(code), dsc_err_msg(err),
	        rpcs_dsc_data(code, NULL)));
}

void
api_rpc_done(int rc, json_t *result, const struct rpcc_meta *meta,
    const struct dsc_err *err, json_t *id, struct httpd_req *req)
{
	int code = rc > 0 && rc < DSC_E_MAX ? rc : DSC_EIO;
	json_t *extra = NULL;

	if (rc == 0) {
		api_rpc_result(req, id, json_incref(result));
		return;
	}
	/* What a server's error carried for blocking on a missing key. */
	if (meta != NULL && meta->index > 0)
		extra = json_pack("{s:I, s:b, s:I}", "index",
		    (json_int_t)meta->index, "known_leader", meta->known_leader,
		    "last_contact_ms", (json_int_t)meta->last_contact_ms);
	rpcs_send(req, 200, id == NULL,
	    rpcs_error(id, rpcs_dsc_code(code), dsc_err_msg(err),
	        rpcs_dsc_data(code, extra)));
}

static void
invalid_params(struct httpd_req *req, json_t *id, const char *msg)
{
	rpcs_send(req, 200, id == NULL,
	    rpcs_error(id, RPCS_E_INVALID_PARAMS, msg, NULL));
}

static json_t *
self(struct api *api)
{
	const struct agent_config *c = &api->a->cfg;
	json_t *servers = json_array();

	for (size_t i = 0; i < c->n_servers; i++)
		json_array_append_new(servers, json_string(c->servers[i]));
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:b, s:i}",
	    "name", c->name, "node_id", c->node_id, "address", c->bind,
	    "datacenter", c->datacenter, "version", "0.1.0", "servers", servers,
	    "current_server", rpca_current_server(api->a->up), "in_sync",
	    local_in_sync(api->a->local), "index", 0);
}

/* A string param or NULL; *@bad when present but not a string. */
static const char *
str_param(json_t *params, const char *name, bool *bad)
{
	json_t *v = api_get_ci(params, name);

	if (v != NULL && !json_is_string(v))
		*bad = true;
	return json_string_value(v);
}

/* agent.*: answered here. */
static void
agent_method(struct api *api, struct httpd_req *req, json_t *id, const char *m,
    json_t *params)
{
	struct local *l = api->a->local;
	struct dsc_err err = DSC_ERR_INIT;
	struct agent_write *w;
	json_t *p, *v;
	bool bad = false;
	int rc;

	if (strcmp(m, "self") == 0) {
		api_rpc_result(req, id, self(api));
		return;
	}
	if (strcmp(m, "services") == 0) {
		api_rpc_result(req, id,
		    json_pack("{s:o, s:i}", "services", local_services(l),
		        "index", 0));
		return;
	}
	if (strcmp(m, "checks") == 0) {
		api_rpc_result(req, id,
		    json_pack(
		        "{s:o, s:i}", "checks", local_checks(l), "index", 0));
		return;
	}
	if (strcmp(m, "reload") == 0) {
		if (local_reload(l, &err) != 0)
			api_rpc_error(req, id, &err);
		else
			api_rpc_result(req, id, json_pack("{s:b}", "ok", 1));
		return;
	}
	if ((w = api_agent_write_new(
	         api, req, id != NULL ? id : json_null())) == NULL) {
		dsc_errorf(&err, DSC_ENOMEM, "out of memory");
		api_rpc_error(req, id, &err);
		return;
	}
	if (strcmp(m, "service_register") == 0) {
		p = json_copy(params);
		v = api_get_ci(p, "ReplaceExistingChecks");
		bad = v != NULL && !json_is_boolean(v);
		rc = bad || p == NULL
		    ? dsc_errorf(&err, DSC_EINVAL,
		          "ReplaceExistingChecks must be a bool")
		    : (json_object_del(p, "ReplaceExistingChecks"),
		          local_service_register(l, p, json_is_true(v),
		              api_agent_write_done, w, &err));
		json_decref(p);
	} else if (strcmp(m, "service_deregister") == 0) {
		const char *sid = str_param(params, "ServiceID", &bad);

		rc = sid == NULL || bad
		    ? dsc_errorf(&err, DSC_EINVAL, "ServiceID is required")
		    : local_service_deregister(
		          l, sid, api_agent_write_done, w, &err);
	} else if (strcmp(m, "check_register") == 0) {
		rc = local_check_register(
		    l, params, api_agent_write_done, w, &err);
	} else if (strcmp(m, "check_deregister") == 0) {
		const char *cid = str_param(params, "CheckID", &bad);

		rc = cid == NULL || bad
		    ? dsc_errorf(&err, DSC_EINVAL, "CheckID is required")
		    : local_check_deregister(
		          l, cid, api_agent_write_done, w, &err);
	} else if (strcmp(m, "check_update") == 0) {
		const char *cid = str_param(params, "CheckID", &bad);
		const char *st = str_param(params, "Status", &bad);
		const char *out = str_param(params, "Output", &bad);

		rc = cid == NULL || st == NULL || bad
		    ? dsc_errorf(&err, DSC_EINVAL,
		          "CheckID and Status are required strings")
		    : local_check_ttl(
		          l, cid, st, out, api_agent_write_done, w, &err);
	} else if (strcmp(m, "maintenance") == 0) {
		const char *sid = str_param(params, "ServiceID", &bad);
		const char *why = str_param(params, "Reason", &bad);

		v = api_get_ci(params, "Enable");
		rc = !json_is_boolean(v) || bad
		    ? dsc_errorf(&err, DSC_EINVAL,
		          "Enable (bool) is required; ServiceID and Reason "
		          "are strings")
		    : local_maintenance(l, sid, json_is_true(v), why,
		          api_agent_write_done, w, &err);
	} else { /* agent_methods[] lists no other */
		rc = dsc_errorf(&err, DSC_EINVAL, "no such method");
	}
	api_agent_write_started(w, rc, &err);
}

static const char *const agent_methods[] = { "self", "services", "checks",
	"reload", "service_register", "service_deregister", "check_register",
	"check_deregister", "check_update", "maintenance", NULL };

void
api_rpc(struct api *api, struct httpd_req *req)
{
	static const struct httpd_header allow[] = { { "Allow", "POST" } };
	struct dsc_err err = DSC_ERR_INIT;
	struct api_fwd f = { .shape = SHAPE_RPC };
	char msg[DSC_ERRMSG_MAX];
	const char *method = NULL;
	json_t *root, *id = NULL, *params = NULL;
	json_error_t je;
	const uint8_t *body;
	size_t len, i;
	int rc;

	if (strcmp(httpd_req_method(req), "POST") != 0) {
		httpd_respond(req, 405, API_TEXT, "use POST\n", 9, allow, 1);
		return;
	}
	rc = rpcs_authenticate(&api->auth, req, &err);
	if (rc != 0) {
		rpcs_send(req, rc == DSC_EBUSY ? 503 : 401, false,
		    rpcs_error(NULL,
		        rc == DSC_EBUSY ? rpcs_dsc_code(rc) : RPCS_E_AUTH,
		        dsc_err_msg(&err), rpcs_dsc_data(rc, NULL)));
		return;
	}
	if (!rpcs_json_content_type(httpd_req_header(req, "Content-Type"))) {
		rpcs_send(req, 415, false,
		    rpcs_error(NULL, RPCS_E_INVALID_REQUEST,
		        "Content-Type must be " RPCS_JSON_TYPE, NULL));
		return;
	}
	body = httpd_req_body(req, &len);
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		snprintf(msg, sizeof(msg), "parse error at line %d: %s",
		    je.line, je.text);
		rpcs_send(
		    req, 200, false, rpcs_error(NULL, RPCS_E_PARSE, msg, NULL));
		return;
	}
	rc = rpcs_take_envelope(root, &id, &method, &params, msg, sizeof(msg));
	if (rc != 0) {
		rpcs_send(req, 200, id == NULL, rpcs_error(id, rc, msg, NULL));
	} else if (strncmp(method, AGENT_PREFIX, strlen(AGENT_PREFIX)) == 0) {
		const char *m = method + strlen(AGENT_PREFIX);

		for (i = 0; agent_methods[i] != NULL; i++)
			if (strcmp(m, agent_methods[i]) == 0)
				break;
		if (agent_methods[i] == NULL) {
			snprintf(
			    msg, sizeof(msg), "no such method '%.64s'", method);
			rpcs_send(req, 200, id == NULL,
			    rpcs_error(id, RPCS_E_NO_METHOD, msg, NULL));
		} else if (params != NULL && !json_is_object(params)) {
			invalid_params(req, id, "params must be an object");
		} else {
			json_t *p = params != NULL ? params : json_object();

			agent_method(api, req, id, m, p);
			if (params == NULL)
				json_decref(p);
		}
	} else {
		log_debug("api: rpc %s forwarded", method);
		f.rpc_id = id;
		api_forward(api, req, method,
		    params != NULL ? json_incref(params) : json_object(), 0,
		    &f);
	}
	json_decref(id);
	json_decref(root);
}

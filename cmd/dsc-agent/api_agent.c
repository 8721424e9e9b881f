/*
 * api_agent.c - /v1/agent/...: the agent's own services and checks
 * (local.h), its identity, and the members the servers know.
 *
 * Writes answer once local state holds the change and the cluster was
 * told (local.h's done callback). When that sync fails the change stays
 * in local state and anti-entropy retries it, so the answer is still 200,
 * as Consul's agent answers before it syncs; the failure is logged.
 * python-consul 0.7.1 calls deregister and pass/warn/fail with GET, so
 * those accept GET besides PUT (consul-api.md 2.1.7).
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "local.h"
#include "log.h"

/* An agent write waiting for local.h's done. */
struct agent_write {
	struct api *api;
	struct httpd_req *req; /* NULL once the client went away */
	json_t *rpc_id;        /* POST /rpc: the request's id */
	bool rpc;
};

static void
write_gone(struct httpd_req *req, void *arg)
{
	struct agent_write *w = arg;

	httpd_req_drop(req);
	w->req = NULL;
}

void
api_agent_write_done(int rc, const struct dsc_err *err, void *arg)
{
	struct agent_write *w = arg;

	if (rc != 0)
		log_warn(
		    "api: local change not synced yet: %s", dsc_err_msg(err));
	if (w->req != NULL) {
		httpd_on_close(w->req, NULL, NULL);
		if (w->rpc)
			api_rpc_result(w->req, w->rpc_id,
			    json_pack("{s:b, s:i}", "ok", 1, "index", 0));
		else
			api_reply(w->req, 200, API_JSON, "", 0);
	}
	json_decref(w->rpc_id);
	free(w);
}

struct agent_write *
api_agent_write_new(struct api *api, struct httpd_req *req, json_t *rpc_id)
{
	struct agent_write *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->api = api;
	w->req = req;
	w->rpc = rpc_id != NULL;
	w->rpc_id = rpc_id != NULL ? json_incref(rpc_id) : NULL;
	return w;
}

void
api_agent_write_started(
    struct agent_write *w, int rc, const struct dsc_err *err)
{
	if (rc == 0) {
		httpd_on_close(w->req, write_gone, w);
		return;
	}
	if (w->rpc)
		api_rpc_error(w->req, w->rpc_id, err);
	else if (rc == DSC_ENOTFOUND &&
	    strstr(dsc_err_msg(err), "does not have associated TTL") != NULL)
		api_reply_text(w->req, 500, dsc_err_msg(err));
	else
		api_reply_err(w->req, err);
	json_decref(w->rpc_id);
	free(w);
}

json_t *
api_agent_self(struct api *api)
{
	const struct agent_config *c = &api->a->cfg;
	struct httpd_stats hs;

	/* Stats values are objects of strings and numbers, as Consul's. */
	httpd_stats(api->h, &hs);
	return json_pack("{s:{s:s, s:s, s:s, s:b, s:s, s:s, s:s}, "
	                 "s:{s:s, s:s, s:i, s:{s:s, s:s, s:s}, s:i}, "
	                 "s:n, s:{}, s:{s:{s:s, s:b, s:i}, s:{s:I, s:I, s:I, "
	                 "s:I, s:I}}, s:{}}",
	    "Config", "Datacenter", c->datacenter, "NodeName", c->name,
	    "NodeID", c->node_id, "Server", 0, "Version", "1.0.0-dsc",
	    "Revision", "", "PrimaryDatacenter", c->datacenter, "Member",
	    "Name", c->name, "Addr", c->bind, "Port", 8301, "Tags", "role",
	    "node", "dc", c->datacenter, "id", c->node_id, "Status", 1, "Coord",
	    "Meta", "Stats", "agent", "current_server",
	    rpca_current_server(api->a->up), "in_sync",
	    local_in_sync(api->a->local), "pending_calls",
	    (int)rpca_pending(api->a->up), "http", "open_conns",
	    (json_int_t)hs.conns_open, "requests", (json_int_t)hs.requests,
	    "parked", (json_int_t)hs.parked, "client_gone",
	    (json_int_t)hs.client_gone, "forwarded", (json_int_t)api->forwarded,
	    "DebugConfig");
}

static bool
is(struct httpd_req *req, const char *m)
{
	return strcmp(httpd_req_method(req), m) == 0;
}

static bool
want(struct httpd_req *req, bool get_ok)
{
	if (is(req, "PUT") || is(req, "POST") || (get_ok && is(req, "GET")))
		return true;
	api_reply_405(req, get_ok ? "GET, PUT, POST" : "PUT, POST");
	return false;
}

static void
reads(struct api *api, struct httpd_req *req, const char *path)
{
	struct api_fwd f = { .shape = SHAPE_MEMBERS };
	char id[API_NAME_MAX];
	json_t *j;

	if (!is(req, "GET") && !is(req, "HEAD")) {
		api_reply_405(req, "GET, HEAD");
		return;
	}
	if (strcmp(path, "/v1/agent/self") == 0) {
		api_reply_json(req, 200, api_agent_self(api));
	} else if (strcmp(path, "/v1/agent/members") == 0) {
		api_forward(api, req, "status.members", json_object(), 0, &f);
	} else if (strcmp(path, "/v1/agent/services") == 0) {
		api_reply_json(req, 200, local_services(api->a->local));
	} else if (strcmp(path, "/v1/agent/checks") == 0) {
		api_reply_json(req, 200, local_checks(api->a->local));
	} else if (strncmp(path, "/v1/agent/service/", 18) == 0) {
		if (!api_path_arg(
		        req, "/v1/agent/service/", id, sizeof(id), false))
			return;
		if ((j = local_service(api->a->local, id)) == NULL)
			api_reply_text(req, 404, "unknown service ID");
		else
			api_reply_json(req, 200, j);
	} else {
		api_reply_text(req, 404, "no such path");
	}
}

/* ?enable= for maintenance: required, Go ParseBool; -1 answered 400. */
static int
enable_flag(struct httpd_req *req)
{
	char v[16];

	if (httpd_query_get(httpd_req_query(req), "enable", v, sizeof(v)) !=
	    0) {
		api_reply_text(req, 400, "Missing value for enable");
		return -1;
	}
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	    strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0 ||
	    strcmp(v, "t") == 0 || strcmp(v, "T") == 0)
		return 1;
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 ||
	    strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0 ||
	    strcmp(v, "f") == 0 || strcmp(v, "F") == 0)
		return 0;
	api_reply_text(req, 400, "Invalid value for enable");
	return -1;
}

static const struct {
	const char *prefix, *status;
} ttl_paths[] = {
	{ "/v1/agent/check/pass/", "passing" },
	{ "/v1/agent/check/warn/", "warning" },
	{ "/v1/agent/check/fail/", "critical" },
};

void
api_v1_agent(struct api *api, struct httpd_req *req)
{
	const char *path = httpd_req_path(req), *q = httpd_req_query(req);
	struct local *l = api->a->local;
	struct dsc_err err = DSC_ERR_INIT;
	char id[API_NAME_MAX], note[1024];
	struct agent_write *w;
	json_t *body = NULL;
	int rc, en;

	if (strcmp(path, "/v1/agent/reload") == 0) {
		if (!want(req, false))
			return;
		if (local_reload(l, &err) != 0)
			api_reply_err(req, &err);
		else
			api_reply(req, 200, API_JSON, "", 0);
		return;
	}
	if (strcmp(path, "/v1/agent/service/register") == 0 ||
	    strcmp(path, "/v1/agent/check/register") == 0 ||
	    strncmp(path, "/v1/agent/check/update/", 23) == 0) {
		if (!want(req, false) ||
		    (body = api_body_json(req, false)) == NULL)
			return;
	} else if (strncmp(path, "/v1/agent/service/deregister/", 29) == 0 ||
	    strncmp(path, "/v1/agent/check/deregister/", 27) == 0 ||
	    strncmp(path, "/v1/agent/check/pass/", 21) == 0 ||
	    strncmp(path, "/v1/agent/check/warn/", 21) == 0 ||
	    strncmp(path, "/v1/agent/check/fail/", 21) == 0) {
		if (!want(req, true))
			return;
	} else if (strncmp(path, "/v1/agent/service/maintenance/", 30) == 0 ||
	    strcmp(path, "/v1/agent/maintenance") == 0) {
		if (!want(req, false))
			return;
	} else {
		reads(api, req, path);
		return;
	}
	if ((w = api_agent_write_new(api, req, NULL)) == NULL) {
		json_decref(body);
		api_reply_text(req, 500, "out of memory");
		return;
	}
	if (strcmp(path, "/v1/agent/service/register") == 0) {
		rc = local_service_register(l, body,
		    api_flag(q, "replace-existing-checks"),
		    api_agent_write_done, w, &err);
	} else if (strcmp(path, "/v1/agent/check/register") == 0) {
		rc = local_check_register(
		    l, body, api_agent_write_done, w, &err);
	} else if (strncmp(path, "/v1/agent/check/update/", 23) == 0) {
		json_t *st = api_get_ci(body, "Status");
		json_t *out = api_get_ci(body, "Output");

		if (!api_unescape(path + 23, id, sizeof(id)) ||
		    !json_is_string(st) ||
		    (out != NULL && !json_is_string(out)))
			rc = dsc_errorf(&err, DSC_EINVAL,
			    "Request decode failed: want Status and Output "
			    "strings");
		else
			rc = local_check_ttl(l, id, json_string_value(st),
			    json_string_value(out), api_agent_write_done, w,
			    &err);
	} else if (strncmp(path, "/v1/agent/service/deregister/", 29) == 0) {
		rc = api_unescape(path + 29, id, sizeof(id))
		    ? local_service_deregister(
		          l, id, api_agent_write_done, w, &err)
		    : dsc_errorf(&err, DSC_EINVAL, "Invalid service ID");
	} else if (strncmp(path, "/v1/agent/check/deregister/", 27) == 0) {
		rc = api_unescape(path + 27, id, sizeof(id))
		    ? local_check_deregister(
		          l, id, api_agent_write_done, w, &err)
		    : dsc_errorf(&err, DSC_EINVAL, "Invalid check ID");
	} else if (strncmp(path, "/v1/agent/check/", 16) == 0) {
		size_t i;

		for (i = 0; strncmp(path, ttl_paths[i].prefix, 21) != 0; i++)
			;
		if (httpd_query_get(q, "note", note, sizeof(note)) != 0)
			note[0] = '\0';
		rc = api_unescape(path + 21, id, sizeof(id))
		    ? local_check_ttl(l, id, ttl_paths[i].status, note,
		          api_agent_write_done, w, &err)
		    : dsc_errorf(&err, DSC_EINVAL, "Invalid check ID");
	} else {
		bool svc = strcmp(path, "/v1/agent/maintenance") != 0;

		if ((en = enable_flag(req)) < 0) {
			json_decref(w->rpc_id);
			free(w);
			return;
		}
		if (httpd_query_get(q, "reason", note, sizeof(note)) != 0)
			note[0] = '\0';
		rc = svc && !api_unescape(path + 30, id, sizeof(id))
		    ? dsc_errorf(&err, DSC_EINVAL, "Invalid service ID")
		    : local_maintenance(l, svc ? id : NULL, en == 1,
		          note[0] != '\0' ? note : NULL, api_agent_write_done,
		          w, &err);
	}
	json_decref(body);
	api_agent_write_started(w, rc, &err);
}

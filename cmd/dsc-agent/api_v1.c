/*
 * api_v1.c - /v1/catalog, /v1/health, /v1/kv and /v1/status: each request
 * becomes one server method (cmd/dsc-server/README.md) with the read
 * options of consul-api.md 2.1-2.2 (consistency, index, wait), and its
 * answer becomes Consul's shape in api.c.
 *
 * Consistency (consul-api.md 5.10): the client's choice is passed on;
 * the default is the leader's linearizable read, as in Consul.
 */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api_internal.h"
#include "duration.h"

#define QV_MAX API_NAME_MAX

static bool
is(struct httpd_req *req, const char *method)
{
	return strcmp(httpd_req_method(req), method) == 0;
}

/* GET (and HEAD) only; false when it answered 405. */
static bool
get_only(struct httpd_req *req)
{
	if (is(req, "GET") || is(req, "HEAD"))
		return true;
	api_reply_405(req, "GET, HEAD");
	return false;
}

/* A uint64 of digits only; false on anything else or overflow. */
static bool
parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return true;
}

/* Go's strconv.ParseBool. */
static int
parse_bool(const char *s)
{
	static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True",
		NULL };
	static const char *const f[] = { "0", "f", "F", "FALSE", "false",
		"False", NULL };

	for (size_t i = 0; t[i] != NULL; i++) {
		if (strcmp(s, t[i]) == 0)
			return 1;
		if (strcmp(s, f[i]) == 0)
			return 0;
	}
	return -1;
}

/*
 * The read options of @req as server params, @f's consistency set; NULL
 * when it answered (400 for bad input, 500 for another datacenter).
 */
static json_t *
read_params(struct api *api, struct httpd_req *req, struct api_fwd *f)
{
	const char *q = httpd_req_query(req);
	char v[QV_MAX];
	bool stale = api_flag(q, "stale"),
	     consistent = api_flag(q, "consistent");
	uint64_t index = 0, wait_ms = 0;
	json_t *p;
	int rc;

	f->read = true;
	if (httpd_query_get(q, "dc", v, sizeof(v)) == 0 && v[0] != '\0' &&
	    strcmp(v, api->a->cfg.datacenter) != 0) {
		api_reply_text(req, 500, "No path to datacenter");
		return NULL;
	}
	if (stale && consistent) {
		api_reply_text(req, 400,
		    "Cannot specify ?stale with ?consistent, conflicting "
		    "semantics.");
		return NULL;
	}
	rc = httpd_query_get(q, "index", v, sizeof(v));
	if (rc == 0 && !parse_u64(v, &index)) {
		api_reply_text(req, 400, "Invalid index");
		return NULL;
	}
	rc = httpd_query_get(q, "wait", v, sizeof(v));
	if (rc == 0 && dur_parse_ms(v, &wait_ms, NULL) != 0) {
		api_reply_text(req, 400, "Invalid wait time");
		return NULL;
	}
	if (rc != 0 && rc != DSC_ENOTFOUND) {
		api_reply_text(req, 400, "Invalid query string");
		return NULL;
	}
	if (wait_ms == 0 || wait_ms > API_WAIT_MAX_MS)
		wait_ms = wait_ms == 0 ? API_WAIT_DEFAULT_MS : API_WAIT_MAX_MS;
	f->stale_ok = stale;
	f->pretty = api_flag(q, "pretty");
	f->consistency = stale ? "stale" : consistent ? "consistent" : "leader";
	p = json_pack("{s:s}", "consistency",
	    stale            ? "stale"
	        : consistent ? "consistent"
	                     : "default");
	if (p != NULL && index > 0 &&
	    (json_object_set_new(p, "index", json_integer((json_int_t)index)) ||
	        json_object_set_new(
	            p, "wait", json_integer((json_int_t)wait_ms)))) {
		json_decref(p);
		p = NULL;
	}
	if (p == NULL)
		api_reply_text(req, 500, "out of memory");
	return p;
}

/* Adds every ?tag= to @p as "Tags"; false when it answered. */
static bool
add_tags(struct httpd_req *req, json_t *p)
{
	const char *cur = httpd_req_query(req);
	char name[QV_MAX], v[QV_MAX];
	json_t *tags = json_array();
	int rc;

	while ((rc = httpd_query_next(
	            &cur, name, sizeof(name), v, sizeof(v))) != DSC_ENOTFOUND) {
		if (rc != 0) { /* a bad escape, or a tag over API_NAME_MAX */
			json_decref(tags);
			json_decref(p);
			api_reply_text(req, 400, "Invalid query string");
			return false;
		}
		if (strcmp(name, "tag") == 0)
			json_array_append_new(tags, json_string(v));
	}
	if (json_array_size(tags) > 0)
		json_object_set_new(p, "Tags", tags);
	else
		json_decref(tags);
	return true;
}

/* ---- /v1/catalog -----------------------------------------------------------
 */

/* Copies the keys of @in (any case, snake_case) to their canonical
 * @names in a new object; unknown keys are dropped. */
static json_t *
canon(json_t *in, const char *const *names)
{
	json_t *out = json_object(), *v;

	for (size_t i = 0; out != NULL && names[i] != NULL; i++)
		if ((v = api_get_ci(in, names[i])) != NULL && !json_is_null(v))
			json_object_set(out, names[i], v);
	return out;
}

static const char *const reg_keys[] = { "ID", "Node", "Address", "Datacenter",
	"TaggedAddresses", "NodeMeta", "SkipNodeUpdate", NULL };
static const char *const svc_keys[] = { "ID", "Service", "Tags", "Address",
	"Port", "Meta", "Weights", "TaggedAddresses", "EnableTagOverride",
	NULL };
static const char *const check_keys[] = { "Node", "CheckID", "Name", "Notes",
	"Status", "ServiceID", "Output", "Definition", "Type", NULL };

/* A CatalogRegistration, any key case, as catalog.register params. */
static json_t *
catalog_registration(json_t *body, const char **why)
{
	json_t *out = canon(body, reg_keys), *v, *checks, *c;
	size_t i;

	*why = NULL;
	if (out == NULL)
		return NULL;
	if ((v = api_get_ci(body, "Service")) != NULL && !json_is_null(v)) {
		if (!json_is_object(v))
			*why = "Service must be an object";
		else
			json_object_set_new(out, "Service", canon(v, svc_keys));
	}
	if ((v = api_get_ci(body, "Check")) != NULL && !json_is_null(v)) {
		if (!json_is_object(v))
			*why = "Check must be an object";
		else
			json_object_set_new(out, "Check", canon(v, check_keys));
	}
	if ((v = api_get_ci(body, "Checks")) != NULL && !json_is_null(v)) {
		if (!json_is_array(v)) {
			*why = "Checks must be an array";
		} else {
			checks = json_array();
			json_array_foreach(v, i, c)
			{
				if (!json_is_object(c)) {
					*why = "Checks must hold objects";
					break;
				}
				json_array_append_new(
				    checks, canon(c, check_keys));
			}
			json_object_set_new(out, "Checks", checks);
		}
	}
	if (*why == NULL && !json_is_string(json_object_get(out, "Node")))
		*why = "Missing node name";
	else if (*why == NULL &&
	    !json_is_string(json_object_get(out, "Address")))
		*why = "Missing node address";
	if (*why != NULL) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static void
catalog_write(struct api *api, struct httpd_req *req, bool reg)
{
	static const char *const dereg_keys[] = { "Node", "ServiceID",
		"CheckID", NULL };
	struct api_fwd f = { .shape = SHAPE_TRUE };
	const char *why = NULL;
	json_t *body, *p;

	if (!is(req, "PUT") && !is(req, "POST")) {
		api_reply_405(req, "PUT, POST");
		return;
	}
	if ((body = api_body_json(req, false)) == NULL)
		return;
	if (reg) {
		p = catalog_registration(body, &why);
	} else {
		p = canon(body, dereg_keys);
		if (!json_is_string(json_object_get(p, "Node")))
			why = "Missing node name";
	}
	json_decref(body);
	if (why != NULL) {
		json_decref(p);
		api_reply_text(req, 400, why);
		return;
	}
	api_forward(api, req, reg ? "catalog.register" : "catalog.deregister",
	    p, RPCC_WRITE, &f);
}

void
api_v1_catalog(struct api *api, struct httpd_req *req)
{
	const char *path = httpd_req_path(req);
	struct api_fwd f = { .shape = SHAPE_MEMBER };
	char name[API_NAME_MAX];
	const char *method;
	json_t *p;

	if (strcmp(path, "/v1/catalog/register") == 0) {
		catalog_write(api, req, true);
		return;
	}
	if (strcmp(path, "/v1/catalog/deregister") == 0) {
		catalog_write(api, req, false);
		return;
	}
	if (!get_only(req))
		return;
	if (strcmp(path, "/v1/catalog/datacenters") == 0) {
		api_reply_json(
		    req, 200, json_pack("[s]", api->a->cfg.datacenter));
		return;
	}
	if (strcmp(path, "/v1/catalog/services") == 0) {
		method = "catalog.services";
		f.member = "services";
		name[0] = '\0';
	} else if (strcmp(path, "/v1/catalog/nodes") == 0) {
		method = "catalog.nodes";
		f.member = "nodes";
		name[0] = '\0';
	} else if (strncmp(path, "/v1/catalog/service/", 20) == 0) {
		if (!api_path_arg(
		        req, "/v1/catalog/service/", name, sizeof(name), false))
			return;
		method = "catalog.service";
		f.member = "instances";
	} else if (strncmp(path, "/v1/catalog/node/", 17) == 0) {
		if (!api_path_arg(
		        req, "/v1/catalog/node/", name, sizeof(name), false))
			return;
		method = "catalog.node";
		f.shape = SHAPE_NODE;
	} else {
		api_reply_text(req, 404, "no such path");
		return;
	}
	if ((p = read_params(api, req, &f)) == NULL)
		return;
	if (strcmp(method, "catalog.service") == 0) {
		json_object_set_new(p, "Service", json_string(name));
		if (!add_tags(req, p))
			return;
	} else if (strcmp(method, "catalog.node") == 0) {
		json_object_set_new(p, "Node", json_string(name));
	}
	api_forward(api, req, method, p, 0, &f);
}

/* ---- /v1/health ------------------------------------------------------------
 */

void
api_v1_health(struct api *api, struct httpd_req *req)
{
	const char *path = httpd_req_path(req), *q = httpd_req_query(req);
	struct api_fwd f = { .shape = SHAPE_MEMBER, .member = "checks" };
	char name[API_NAME_MAX], v[16];
	json_t *p;
	int rc, b;

	if (!get_only(req))
		return;
	if (strncmp(path, "/v1/health/service/", 19) == 0) {
		if (!api_path_arg(
		        req, "/v1/health/service/", name, sizeof(name), false))
			return;
		rc = httpd_query_get(q, "passing", v, sizeof(v));
		b = rc == DSC_ENOTFOUND ? 0
		    : rc == 0           ? (v[0] == '\0' ? 1 : parse_bool(v))
		                        : -1;
		if (b < 0) {
			api_reply_text(req, 400, "Invalid value for ?passing");
			return;
		}
		if ((p = read_params(api, req, &f)) == NULL)
			return;
		f.member = "instances";
		json_object_set_new(p, "Service", json_string(name));
		json_object_set_new(p, "Passing", json_boolean(b));
		if (!add_tags(req, p))
			return;
		api_forward(api, req, "health.service", p, 0, &f);
	} else if (strncmp(path, "/v1/health/checks/", 18) == 0) {
		if (!api_path_arg(
		        req, "/v1/health/checks/", name, sizeof(name), false) ||
		    (p = read_params(api, req, &f)) == NULL)
			return;
		json_object_set_new(p, "Service", json_string(name));
		api_forward(api, req, "health.checks", p, 0, &f);
	} else if (strncmp(path, "/v1/health/state/", 17) == 0) {
		if (!api_path_arg(
		        req, "/v1/health/state/", name, sizeof(name), false))
			return;
		if (strcmp(name, "any") != 0 && strcmp(name, "passing") != 0 &&
		    strcmp(name, "warning") != 0 &&
		    strcmp(name, "critical") != 0) {
			api_reply_text(req, 400, "Invalid check state");
			return;
		}
		if ((p = read_params(api, req, &f)) == NULL)
			return;
		json_object_set_new(p, "State", json_string(name));
		api_forward(api, req, "health.state", p, 0, &f);
	} else if (strncmp(path, "/v1/health/node/", 16) == 0) {
		if (!api_path_arg(
		        req, "/v1/health/node/", name, sizeof(name), false) ||
		    (p = read_params(api, req, &f)) == NULL)
			return;
		json_object_set_new(p, "Node", json_string(name));
		api_forward(api, req, "health.node", p, 0, &f);
	} else {
		api_reply_text(req, 404, "no such path");
	}
}

/* ---- /v1/kv
 * ------------------------------------------------------------------ */

/* ?name=N as a uint64; 0 absent, 1 good, -1 bad (answered 400). */
static int
query_u64(struct httpd_req *req, const char *name, uint64_t *out)
{
	char v[32], msg[64];
	int rc = httpd_query_get(httpd_req_query(req), name, v, sizeof(v));

	if (rc == DSC_ENOTFOUND)
		return 0;
	if (rc == 0 && parse_u64(v, out))
		return 1;
	snprintf(msg, sizeof(msg), "Invalid %s", name);
	api_reply_text(req, 400, msg);
	return -1;
}

static void
kv_get(struct api *api, struct httpd_req *req, const char *key)
{
	const char *q = httpd_req_query(req);
	struct api_fwd f = { .shape = SHAPE_KV };
	char sep[64];
	json_t *p;
	int rc;

	if ((p = read_params(api, req, &f)) == NULL)
		return;
	if (api_flag(q, "keys")) {
		f.shape = SHAPE_KV_KEYS;
		json_object_set_new(p, "Prefix", json_string(key));
		rc = httpd_query_get(q, "separator", sep, sizeof(sep));
		if (rc == 0 && sep[0] != '\0') {
			json_object_set_new(p, "Separator", json_string(sep));
		} else if (rc != 0 && rc != DSC_ENOTFOUND) {
			json_decref(p);
			api_reply_text(req, 400, "Invalid separator");
			return;
		}
		api_forward(api, req, "kv.keys", p, 0, &f);
		return;
	}
	if (api_flag(q, "raw"))
		f.shape = SHAPE_KV_RAW;
	json_object_set_new(p, "Key", json_string(key));
	json_object_set_new(p, "Recurse", json_boolean(api_flag(q, "recurse")));
	api_forward(api, req, "kv.get", p, 0, &f);
}

static void
kv_put(struct api *api, struct httpd_req *req, const char *key)
{
	struct api_fwd f = { .shape = SHAPE_OK };
	uint64_t flags = 0, cas = 0;
	const uint8_t *body;
	size_t len;
	char *b64;
	json_t *p;
	int has_cas;

	if (key[0] == '\0') {
		api_reply_text(req, 400, "Missing key name");
		return;
	}
	body = httpd_req_body(req, &len);
	if (len > API_KV_VALUE_MAX) {
		api_reply_text(req, 413, "Value exceeds 524288 byte limit");
		return;
	}
	if (query_u64(req, "flags", &flags) < 0 ||
	    (has_cas = query_u64(req, "cas", &cas)) < 0)
		return;
	if ((b64 = malloc(sodium_base64_ENCODED_LEN(
	         len, sodium_base64_VARIANT_ORIGINAL))) == NULL) {
		api_reply_text(req, 500, "out of memory");
		return;
	}
	sodium_bin2base64(b64,
	    sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL),
	    body, len, sodium_base64_VARIANT_ORIGINAL);
	p = json_pack("{s:s, s:s, s:I}", "Key", key, "Value", b64, "Flags",
	    (json_int_t)flags);
	free(b64);
	if (p != NULL && has_cas)
		json_object_set_new(p, "Cas", json_integer((json_int_t)cas));
	api_forward(api, req, "kv.put", p, RPCC_WRITE, &f);
}

static void
kv_delete(struct api *api, struct httpd_req *req, const char *key)
{
	struct api_fwd f = { .shape = SHAPE_OK };
	uint64_t cas = 0;
	int has_cas;
	json_t *p;

	if ((has_cas = query_u64(req, "cas", &cas)) < 0)
		return;
	if (has_cas && cas == 0) {
		api_reply_text(req, 400, "Invalid cas: must be above 0");
		return;
	}
	p = json_pack("{s:s, s:b}", "Key", key, "Recurse",
	    api_flag(httpd_req_query(req), "recurse"));
	if (p != NULL && has_cas)
		json_object_set_new(p, "Cas", json_integer((json_int_t)cas));
	api_forward(api, req, "kv.delete", p, RPCC_WRITE, &f);
}

void
api_v1_kv(struct api *api, struct httpd_req *req)
{
	char key[API_NAME_MAX];
	const char *path = httpd_req_path(req);

	if (strcmp(path, "/v1/kv") == 0)
		key[0] = '\0';
	else if (!api_path_arg(req, "/v1/kv/", key, sizeof(key), true))
		return;
	if (is(req, "GET") || is(req, "HEAD"))
		kv_get(api, req, key);
	else if (is(req, "PUT") || is(req, "POST"))
		kv_put(api, req, key);
	else if (is(req, "DELETE"))
		kv_delete(api, req, key);
	else
		api_reply_405(req, "GET, HEAD, PUT, POST, DELETE");
}

/* ---- /v1/status
 * -------------------------------------------------------------- */

void
api_v1_status(struct api *api, struct httpd_req *req)
{
	const char *path = httpd_req_path(req);
	struct api_fwd f = { .shape = SHAPE_LEADER };

	if (!get_only(req))
		return;
	if (strcmp(path, "/v1/status/leader") == 0) {
		api_forward(api, req, "status.leader", json_object(), 0, &f);
	} else if (strcmp(path, "/v1/status/peers") == 0) {
		f.shape = SHAPE_PEERS;
		api_forward(api, req, "status.peers", json_object(), 0, &f);
	} else {
		api_reply_text(req, 404, "no such path");
	}
}

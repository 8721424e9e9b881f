/*
 * rpc_methods.c - the JSON-RPC methods of README.md's table.
 *
 * Reads: the method checks its params and names the watch key of what it
 * reads (catalog.h, "WATCH KEYS AND INDEXES"); with "index" > 0 the call
 * first waits for that key's index to pass it (server_watch, a blocking
 * query), then, unless "stale", for a read barrier (ReadIndex), then reads
 * the local catalog and answers with the key's index, known_leader and
 * last_contact_ms. A not-found answer is an error that carries the same
 * three, so a client can block on a key that does not exist yet.
 *
 * Writes: params become a catalog command ("Op" added, keys sorted,
 * compact), checked with catalog_validate() so an invalid write is refused
 * (-32602, the catalog's message) before anything is proposed, then
 * proposed; the answer comes once it was applied: the catalog's result and
 * the Raft index. A command the state machine refused (an unknown check, a
 * stale Seq) is an error with that index.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "catalog.h"
#include "liveness.h"
#include "log.h"
#include "raft.h"
#include "rpc_internal.h"
#include "server.h"

/* Params every read takes besides its own. */
static const char *const read_options[] = { "consistency", "index", "wait",
	NULL };

enum rpc_kind {
	RPC_READ,  /* watch, barrier, read the catalog */
	RPC_WRITE, /* a catalog command */
	RPC_OTHER, /* status and operator: run() answers */
};

struct rpc_method {
	const char *name;
	enum rpc_kind kind;
	/* Params allowed (NULL-terminated); NULL: any (the catalog checks). */
	const char *const *params;
	/* Reads: check params, set the watch key. */
	int (*prepare)(struct rpc_call *call, struct dsc_err *err);
	/* Reads: the answer from the local catalog (new reference). */
	json_t *(*read)(struct rpc_call *call, struct dsc_err *err);
	/* Writes: the catalog op. */
	const char *op;
	/* Others: does everything. */
	void (*run)(struct rpc_call *call);
};

/* ---- params ------------------------------------------------------------- */

static int
bad_param(struct dsc_err *err, const char *name, const char *what)
{
	return dsc_errorf(err, DSC_EINVAL, "param '%s' %s", name, what);
}

static bool
listed(const char *const *list, const char *key)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/* Every param is one @m takes (or a read option, for reads). */
static int
check_names(const struct rpc_call *call, struct dsc_err *err)
{
	const char *key;
	json_t *v;

	if (call->m->params == NULL)
		return 0;
	json_object_foreach(call->params, key, v) {
		if (listed(call->m->params, key) ||
		    (call->m->kind == RPC_READ && listed(read_options, key)))
			continue;
		return dsc_errorf(
		    err, DSC_EINVAL, "unknown param '%.64s'", key);
	}
	return 0;
}

int
rpc_str_param(const struct rpc_call *call, const char *name, bool required,
    bool empty_ok, size_t max, const char **out, struct dsc_err *err)
{
	json_t *v = json_object_get(call->params, name);
	size_t len;

	*out = NULL;
	if (v == NULL)
		return required ? bad_param(err, name, "is required") : 0;
	if (!json_is_string(v))
		return bad_param(err, name, "must be a string");
	len = json_string_length(v);
	if (len == 0 && !empty_ok)
		return bad_param(err, name, "must not be empty");
	if (len > max || strlen(json_string_value(v)) != len)
		return dsc_errorf(err, DSC_EINVAL,
		    "param '%s' longer than %zu bytes or holds NUL", name, max);
	*out = json_string_value(v);
	return 0;
}

static int
bool_param(const struct rpc_call *call, const char *name, bool *out,
    struct dsc_err *err)
{
	json_t *v = json_object_get(call->params, name);

	*out = false;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return bad_param(err, name, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

/* A non-negative integer param; 0 when absent. */
static int
uint_param(const struct rpc_call *call, const char *name, uint64_t *out,
    struct dsc_err *err)
{
	json_t *v = json_object_get(call->params, name);

	*out = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad_param(err, name, "must be an integer >= 0");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int
tags_param(struct rpc_call *call, struct dsc_err *err)
{
	json_t *v = json_object_get(call->params, "Tags"), *t;
	size_t i;

	call->n_tags = 0;
	if (v == NULL)
		return 0;
	if (!json_is_array(v) || json_array_size(v) > CATALOG_TAGS_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "param 'Tags' must be an array of at most %d strings",
		    CATALOG_TAGS_MAX);
	json_array_foreach(v, i, t) {
		if (!json_is_string(t) ||
		    json_string_length(t) > CATALOG_TAG_MAX)
			return dsc_errorf(err, DSC_EINVAL,
			    "param 'Tags' holds a non-string or a tag over %d "
			    "bytes",
			    CATALOG_TAG_MAX);
		call->tags[call->n_tags++] = json_string_value(t);
	}
	return 0;
}

/* consistency, index, wait. */
static int
read_options_parse(struct rpc_call *call, struct dsc_err *err)
{
	const char *c;
	uint64_t v;
	int rc;

	if ((rc = rpc_str_param(
	         call, "consistency", false, false, 16, &c, err)))
		return rc;
	if (c == NULL || strcmp(c, "default") == 0)
		call->consistency = RPC_CONSISTENCY_DEFAULT;
	else if (strcmp(c, "consistent") == 0)
		call->consistency = RPC_CONSISTENCY_CONSISTENT;
	else if (strcmp(c, "stale") == 0)
		call->consistency = RPC_CONSISTENCY_STALE;
	else
		return bad_param(err, "consistency",
		    "must be \"default\", \"consistent\" or \"stale\"");
	if ((rc = uint_param(call, "index", &call->min_index, err)) ||
	    (rc = uint_param(call, "wait", &v, err)))
		return rc;
	if (json_object_get(call->params, "wait") == NULL || v == 0)
		v = RPC_WAIT_DEFAULT_MS;
	if (v > RPC_WAIT_MAX_MS)
		v = RPC_WAIT_MAX_MS;
	/* Jitter, as Consul does, so watchers woken together spread out. */
	call->wait_ms = (unsigned)v + randombytes_uniform((uint32_t)v / 16 + 1);
	return 0;
}

/* ---- reads: what each one checks and reads ------------------------------ */

static int
watch_name(struct rpc_call *call, const char *prefix, const char *param,
    struct dsc_err *err)
{
	int rc = rpc_str_param(
	    call, param, true, false, CATALOG_NAME_MAX, &call->name, err);

	if (rc == 0)
		snprintf(call->watch_key, sizeof(call->watch_key), "%s%s",
		    prefix, call->name);
	return rc;
}

static int
prep_services(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	snprintf(call->watch_key, sizeof(call->watch_key), "services");
	return 0;
}

static int
prep_nodes(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	snprintf(call->watch_key, sizeof(call->watch_key), "nodes");
	return 0;
}

static int
prep_service(struct rpc_call *call, struct dsc_err *err)
{
	int rc = watch_name(call, "service:", "Service", err);

	if (rc == 0)
		rc = tags_param(call, err);
	if (rc == 0)
		rc = bool_param(call, "Passing", &call->flag, err);
	return rc;
}

static int
prep_checks(struct rpc_call *call, struct dsc_err *err)
{
	return watch_name(call, "service:", "Service", err);
}

static int
prep_node(struct rpc_call *call, struct dsc_err *err)
{
	return watch_name(call, "node:", "Node", err);
}

static int
prep_state(struct rpc_call *call, struct dsc_err *err)
{
	static const char *const names[] = { "any", "passing", "warning",
		"critical" };
	const char *v;
	int rc = rpc_str_param(call, "State", true, false, 16, &v, err);

	if (rc == 0 && catalog_state_parse(v, &call->state) != 0)
		rc = bad_param(
		    err, "State", "must be any, passing, warning or critical");
	if (rc == 0)
		snprintf(call->watch_key, sizeof(call->watch_key), "checks:%s",
		    names[call->state]);
	return rc;
}

static int
prep_kv_get(struct rpc_call *call, struct dsc_err *err)
{
	int rc = bool_param(call, "Recurse", &call->flag, err);

	if (rc == 0)
		rc = rpc_str_param(call, "Key", !call->flag, call->flag,
		    CATALOG_KEY_MAX, &call->name, err);
	if (rc == 0 && call->name == NULL)
		call->name = "";
	if (rc == 0)
		snprintf(call->watch_key, sizeof(call->watch_key), "%s%s",
		    call->flag ? "kvp:" : "kv:", call->name);
	return rc;
}

static int
prep_kv_keys(struct rpc_call *call, struct dsc_err *err)
{
	int rc = rpc_str_param(
	    call, "Prefix", false, true, CATALOG_KEY_MAX, &call->name, err);

	if (rc == 0)
		rc = rpc_str_param(call, "Separator", false, true,
		    CATALOG_KEY_MAX, &call->sep, err);
	if (call->name == NULL)
		call->name = "";
	if (call->sep == NULL)
		call->sep = "";
	if (rc == 0)
		snprintf(call->watch_key, sizeof(call->watch_key), "kvp:%s",
		    call->name);
	return rc;
}

static int
prep_digest(struct rpc_call *call, struct dsc_err *err)
{
	if (call->min_index > 0)
		return bad_param(err, "index", "is refused: a digest never blocks");
	call->watch_key[0] = '\0'; /* the applied index */
	return 0;
}

static void
filter_of(const struct rpc_call *call, struct catalog_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->tags = call->tags;
	f->n_tags = call->n_tags;
	f->health = call->flag ? CATALOG_HEALTH_PASSING : CATALOG_HEALTH_ANY;
}

/* {@name: @v}, taking @v; NULL when out of memory. */
static json_t *
wrap(const char *name, json_t *v)
{
	return v != NULL ? json_pack("{s:o}", name, v) : NULL;
}

static json_t *
read_services(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap("services", catalog_services(call->s->catalog, NULL));
}

static json_t *
read_service(struct rpc_call *call, struct dsc_err *err)
{
	struct catalog_filter f;

	(void)err;
	filter_of(call, &f);
	return wrap(
	    "instances", catalog_service(call->s->catalog, call->name, &f));
}

static json_t *
read_health_service(struct rpc_call *call, struct dsc_err *err)
{
	struct catalog_filter f;

	(void)err;
	filter_of(call, &f);
	return wrap("instances",
	    catalog_health_service(call->s->catalog, call->name, &f));
}

static json_t *
read_health_checks(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap(
	    "checks", catalog_health_checks(call->s->catalog, call->name));
}

static json_t *
read_state(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap("checks",
	    catalog_checks_in_state(call->s->catalog, call->state, NULL));
}

static json_t *
read_nodes(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap("nodes", catalog_nodes(call->s->catalog, NULL));
}

static json_t *
read_node(struct rpc_call *call, struct dsc_err *err)
{
	json_t *v = catalog_node(call->s->catalog, call->name), *res;

	if (v == NULL)
		return NULL;
	if (json_is_null(v)) {
		json_decref(v);
		dsc_errorf(err, DSC_ENOTFOUND, "no node '%s'", call->name);
		return NULL;
	}
	res = json_pack("{s:O, s:O}", "node", json_object_get(v, "Node"),
	    "services", json_object_get(v, "Services"));
	json_decref(v);
	return res;
}

/* An unknown node has no checks: [] (Consul's /v1/health/node), with the
 * index to block on until it appears. */
static json_t *
read_health_node(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap("checks", catalog_node_checks(call->s->catalog, call->name));
}

static json_t *
read_kv_get(struct rpc_call *call, struct dsc_err *err)
{
	json_t *v = catalog_kv_get(call->s->catalog, call->name, call->flag);

	if (v != NULL && json_array_size(v) == 0) {
		json_decref(v);
		dsc_errorf(err, DSC_ENOTFOUND, "no key %s'%s'",
		    call->flag ? "under " : "", call->name);
		return NULL;
	}
	return wrap("entries", v);
}

static json_t *
read_kv_keys(struct rpc_call *call, struct dsc_err *err)
{
	(void)err;
	return wrap(
	    "keys", catalog_kv_keys(call->s->catalog, call->name, call->sep));
}

static json_t *
read_digest(struct rpc_call *call, struct dsc_err *err)
{
	char hex[65];

	if (catalog_digest(call->s->catalog, hex) != 0) {
		dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return NULL;
	}
	return json_pack("{s:s}", "digest", hex);
}

/* ---- reads: the sequence ------------------------------------------------ */

static void
read_answer(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct catalog *c = call->s->catalog;
	uint64_t index = call->watch_key[0] != '\0'
	    ? catalog_index(c, call->watch_key)
	    : catalog_applied_index(c);
	json_t *res = call->m->read(call, &err), *meta;

	if (res == NULL && err.code == 0)
		dsc_errorf(&err, DSC_ENOMEM, "out of memory");
	if (res == NULL) {
		meta = json_object();
		if (meta != NULL && rpc_add_read_meta(call, meta, index) != 0) {
			json_decref(meta);
			meta = NULL;
		}
		rpc_reply_dsc(call, &err, meta);
		return;
	}
	if (rpc_add_read_meta(call, res, index) != 0) {
		json_decref(res);
		res = NULL;
	}
	rpc_reply(call, res);
}

static void
read_done(void *arg, int rv)
{
	struct rpc_call *call = arg;
	struct dsc_err err = DSC_ERR_INIT;

	call->wait = NULL;
	if (rv != 0) {
		dsc_errorf(&err, rv, "unable to read consistently: %s",
		    dsc_strerror(rv));
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	read_answer(call);
}

/* After any blocking: a barrier unless stale, then the answer. */
static void
read_barrier(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (call->consistency == RPC_CONSISTENCY_STALE) {
		read_answer(call);
		return;
	}
	call->wait =
	    server_read_barrier(call->s, RPC_TIMEOUT_MS, read_done, call, &err);
	if (call->wait == NULL)
		rpc_reply_dsc(call, &err, NULL);
}

static void
watch_done(void *arg, int rv)
{
	struct rpc_call *call = arg;
	struct dsc_err err = DSC_ERR_INIT;

	call->wait = NULL;
	/* Timing out is a normal end of a blocking query: same index. */
	if (rv != 0 && rv != DSC_ETIMEDOUT) {
		dsc_errorf(
		    &err, rv, "blocking query ended: %s", dsc_strerror(rv));
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	read_barrier(call);
}

static void
read_start(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (read_options_parse(call, &err) != 0 ||
	    call->m->prepare(call, &err) != 0) {
		rpc_reply_error(
		    call, RPC_E_INVALID_PARAMS, dsc_err_msg(&err), NULL);
		return;
	}
	if (call->min_index == 0) {
		read_barrier(call);
		return;
	}
	call->wait = server_watch(call->s, call->watch_key, call->min_index,
	    call->wait_ms, watch_done, call);
	if (call->wait == NULL) {
		dsc_errorf(&err, DSC_ENOMEM, "unable to wait: out of memory");
		rpc_reply_dsc(call, &err, NULL);
	}
}

/* ---- writes ------------------------------------------------------------- */

/* The numeric code of a DSC_E* name, DSC_EIO when unknown. */
static int
code_of(const char *name)
{
	int c;

	for (c = 1; name != NULL && c < DSC_E_MAX; c++)
		if (strcmp(dsc_errname(c), name) == 0)
			return c;
	return DSC_EIO;
}

/* A proposal's outcome (writes and operator changes). */
void
rpc_write_done(void *arg, int rv, uint64_t index, json_t *result)
{
	struct rpc_call *call = arg;
	struct dsc_err err = DSC_ERR_INIT;
	const char *msg;
	json_t *res;

	call->wait = NULL;
	if (rv == DSC_ETIMEDOUT) {
		dsc_errorf(&err, rv,
		    "write not confirmed within %d ms; it "
		    "may still be applied",
		    RPC_TIMEOUT_MS);
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	if (rv != 0) {
		dsc_errorf(&err, rv, "write not applied: %s", dsc_strerror(rv));
		rpc_reply_dsc(call, &err, NULL);
		return;
	}
	if ((msg = json_string_value(json_object_get(result, "error")))) {
		dsc_errorf(&err,
		    code_of(json_string_value(json_object_get(result, "code"))),
		    "%s", msg);
		rpc_reply_dsc(
		    call, &err, json_pack("{s:I}", "index", (json_int_t)index));
		return;
	}
	res = json_is_object(result) ? json_copy(result)
	                             : json_pack("{s:b}", "ok", 1);
	if (res != NULL &&
	    json_object_set_new(
	        res, "index", json_integer((json_int_t)index))) {
		json_decref(res);
		res = NULL;
	}
	rpc_reply(call, res);
}

static void
write_start(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;
	const char *op = call->m->op;
	json_t *cmd = NULL;
	char *text = NULL;
	size_t len;

	if (json_object_get(call->params, "Op") != NULL) {
		rpc_reply_error(call, RPC_E_INVALID_PARAMS,
		    "'Op' is not a param: the method names the operation",
		    NULL);
		return;
	}
	if (strcmp(op, "kv_set") == 0 &&
	    json_object_get(call->params, "Cas") != NULL)
		op = "kv_cas";
	if ((cmd = json_copy(call->params)) == NULL ||
	    json_object_set_new(cmd, "Op", json_string(op)) != 0 ||
	    (text = json_dumps(cmd, JSON_SORT_KEYS | JSON_COMPACT)) == NULL) {
		json_decref(cmd);
		rpc_reply(call, NULL);
		return;
	}
	json_decref(cmd);
	len = strlen(text);
	if (len > CATALOG_CMD_MAX)
		dsc_errorf(&err, DSC_ETOOBIG, "command of %zu bytes over %d",
		    len, CATALOG_CMD_MAX);
	else
		catalog_validate(text, len, &err);
	if (err.code != 0) {
		free(text);
		rpc_reply_error(call, RPC_E_INVALID_PARAMS, dsc_err_msg(&err),
		    json_pack("{s:s, s:i}", "name", dsc_errname(err.code),
		        "exit", dsc_exit_class(err.code)));
		return;
	}
	call->wait = server_propose(
	    call->s, text, len, RPC_TIMEOUT_MS, rpc_write_done, call, &err);
	free(text);
	if (call->wait == NULL)
		rpc_reply_dsc(call, &err, NULL);
}

/* ---- the table ---------------------------------------------------------- */

static const char *const p_none[] = { NULL };
static const char *const p_service[] = { "Service", "Tags", NULL };
static const char *const p_health_service[] = { "Service", "Tags", "Passing",
	NULL };
static const char *const p_health_checks[] = { "Service", NULL };
static const char *const p_state[] = { "State", NULL };
static const char *const p_node[] = { "Node", NULL };
static const char *const p_kv_get[] = { "Key", "Recurse", NULL };
static const char *const p_kv_keys[] = { "Prefix", "Separator", NULL };
static const char *const p_kv_put[] = { "Key", "Value", "Flags", "Cas",
	"ClientID", "Seq", NULL };
static const char *const p_kv_delete[] = { "Key", "Recurse", "Cas", "ClientID",
	"Seq", NULL };
static const char *const p_add[] = { "Name", "Address", NULL };
static const char *const p_remove[] = { "Name", NULL };
static const char *const p_leader[] = { "Leader", NULL };
static const char *const p_heartbeat[] = { "Node", "Address", "ID", NULL };

#define READ(n, p, prep, rd)                                                   \
	{                                                                      \
		n, RPC_READ, p, prep, rd, NULL, NULL                           \
	}
#define WRITE(n, p, op)                                                        \
	{                                                                      \
		n, RPC_WRITE, p, NULL, NULL, op, NULL                          \
	}
#define OTHER(n, p, fn)                                                        \
	{                                                                      \
		n, RPC_OTHER, p, NULL, NULL, NULL, fn                          \
	}

static const struct rpc_method methods[] = {
	WRITE("catalog.register", NULL, "register"),
	WRITE("catalog.deregister", NULL, "deregister"),
	WRITE("catalog.check_update", NULL, "check_update"),
	READ("catalog.services", p_none, prep_services, read_services),
	READ("catalog.service", p_service, prep_service, read_service),
	READ("health.service", p_health_service, prep_service,
	    read_health_service),
	READ("health.checks", p_health_checks, prep_checks,
	    read_health_checks),
	READ("health.state", p_state, prep_state, read_state),
	READ("health.node", p_node, prep_node, read_health_node),
	READ("catalog.nodes", p_none, prep_nodes, read_nodes),
	READ("catalog.node", p_node, prep_node, read_node),
	READ("kv.get", p_kv_get, prep_kv_get, read_kv_get),
	READ("kv.keys", p_kv_keys, prep_kv_keys, read_kv_keys),
	WRITE("kv.put", p_kv_put, "kv_set"),
	WRITE("kv.delete", p_kv_delete, "kv_delete"),
	OTHER("status.leader", p_none, rpc_status_leader),
	OTHER("status.peers", p_leader, rpc_status_peers),
	OTHER("status.members", p_leader, rpc_status_members),
	OTHER("node.heartbeat", p_heartbeat, rpc_node_heartbeat),
	OTHER("status.stats", p_none, rpc_status_stats),
	READ("status.digest", p_none, prep_digest, read_digest),
	OTHER("operator.add_server", p_add, rpc_operator_add),
	OTHER("operator.remove_server", p_remove, rpc_operator_remove),
	OTHER("operator.snapshot", p_none, rpc_operator_snapshot),
};

const struct rpc_method *
rpc_method_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(methods[i].name, name) == 0)
			return &methods[i];
	return NULL;
}

void
rpc_method_start(struct rpc_call *call)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (check_names(call, &err) != 0) {
		rpc_reply_error(
		    call, RPC_E_INVALID_PARAMS, dsc_err_msg(&err), NULL);
		return;
	}
	switch (call->m->kind) {
	case RPC_READ:
		read_start(call);
		break;
	case RPC_WRITE:
		write_start(call);
		break;
	case RPC_OTHER:
		call->m->run(call);
		break;
	}
}

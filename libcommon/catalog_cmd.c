/*
 * catalog_cmd.c - decoding and validating catalog commands, and building
 * the immutable bodies that apply swaps in.
 *
 * Everything here looks only at the command, never at catalog state, so
 * catalog_validate() (the server's check before proposing) and apply refuse
 * exactly the same commands with exactly the same messages. Messages never
 * quote jansson's own error text, which could differ between jansson
 * versions on different servers and end up in the replicated client table.
 */
#include "catalog_internal.h"

#include <string.h>

#include <sodium.h>

#include "mem.h"

#define INVAL(err, ...) dsc_errorf((err), DSC_EINVAL, __VA_ARGS__)

/* ---- character classes ---------------------------------------------- */

static bool
is_alnum(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9');
}

static int
lower(int ch)
{
	return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

int
cat_strcasecmp(const char *a, const char *b)
{
	int ca, cb;

	do {
		ca = lower((unsigned char)*a++);
		cb = lower((unsigned char)*b++);
	} while (ca == cb && ca != '\0');
	return ca - cb;
}

bool
cat_lower(const char *s, char *out)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i == CATALOG_NAME_MAX)
			return false;
		out[i] = (char)lower((unsigned char)s[i]);
	}
	out[i] = '\0';
	return true;
}

/* Node and service names: 1..CATALOG_NAME_MAX of [A-Za-z0-9._-]. */
int
cat_check_name(const char *what, const char *s, struct dsc_err *err)
{
	size_t n = strlen(s);

	if (n == 0)
		return INVAL(err, "missing %s", what);
	if (n > CATALOG_NAME_MAX)
		return INVAL(err, "%s longer than %d bytes", what,
		    CATALOG_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)s[i];

		if (!is_alnum(ch) && ch != '.' && ch != '_' && ch != '-')
			return INVAL(err, "invalid %s '%s': only letters, "
			    "digits, '.', '_' and '-' are allowed", what, s);
	}
	return 0;
}

/* Ids: 1..@max printable ASCII bytes, no space. */
int
cat_check_id(const char *what, const char *s, size_t max, struct dsc_err *err)
{
	size_t n = strlen(s);

	if (n == 0)
		return INVAL(err, "missing %s", what);
	if (n > max)
		return INVAL(err, "%s longer than %zu bytes", what, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return INVAL(err, "invalid %s '%s': only printable "
			    "ASCII without spaces is allowed", what, s);
	return 0;
}

static int
check_addr(const char *what, const char *s, struct dsc_err *err)
{
	size_t n = strlen(s);

	if (n > CATALOG_ADDR_MAX)
		return INVAL(err, "%s longer than %d bytes", what,
		    CATALOG_ADDR_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return INVAL(err, "invalid %s: control character",
			    what);
	return 0;
}

/* Meta and tagged-address keys: Consul's ^[a-zA-Z0-9_-]+$. */
static int
check_map_key(const char *what, const char *k, size_t max,
    struct dsc_err *err)
{
	size_t n = strlen(k);

	if (n == 0)
		return INVAL(err, "empty key in %s", what);
	if (n > max)
		return INVAL(err, "key in %s longer than %zu bytes", what, max);
	for (size_t i = 0; i < n; i++)
		if (!is_alnum((unsigned char)k[i]) && k[i] != '_' &&
		    k[i] != '-')
			return INVAL(err, "invalid key '%s' in %s: only "
			    "letters, digits, '_' and '-' are allowed", k,
			    what);
	return 0;
}

static bool
is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		int ch = (unsigned char)s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (ch != '-')
				return false;
		} else if (!((ch >= '0' && ch <= '9') ||
			       (ch >= 'a' && ch <= 'f') ||
			       (ch >= 'A' && ch <= 'F'))) {
			return false;
		}
	}
	return true;
}

/* ---- field getters -------------------------------------------------- */

static int
only_keys(json_t *o, const char *what, const char *const *allowed,
    struct dsc_err *err)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		size_t i;

		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(k, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return INVAL(err, "unknown field '%s' in %s", k, what);
	}
	return 0;
}

/* Absent or null: @def. Otherwise a string of at most @max bytes. */
static int
get_str(json_t *o, const char *key, size_t max, const char **out,
    struct dsc_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = "";
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return INVAL(err, "field '%s' must be a string", key);
	if (json_string_length(v) > max)
		return dsc_errorf(err, DSC_ETOOBIG,
		    "field '%s' longer than %zu bytes", key, max);
	*out = json_string_value(v);
	return 0;
}

static int
get_bool(json_t *o, const char *key, bool *out, struct dsc_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return INVAL(err, "field '%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

/* Absent or null: *@present false, *@out @lo. Else an integer in range. */
static int
get_uint(json_t *o, const char *key, uint64_t lo, uint64_t hi, uint64_t *out,
    bool *present, struct dsc_err *err)
{
	json_t *v = json_object_get(o, key);
	json_int_t x;

	*out = lo;
	if (present != NULL)
		*present = false;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return INVAL(err, "field '%s' must be an integer", key);
	x = json_integer_value(v);
	if (x < 0 || (uint64_t)x < lo || (uint64_t)x > hi)
		return INVAL(err, "field '%s' out of range %ju..%ju", key,
		    (uintmax_t)lo, (uintmax_t)hi);
	*out = (uint64_t)x;
	if (present != NULL)
		*present = true;
	return 0;
}

/* Absent or null: NULL. Else must be an object. */
static int
get_obj(json_t *o, const char *key, json_t **out, struct dsc_err *err)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return INVAL(err, "field '%s' must be an object", key);
	*out = v;
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A {str:str} object into @pairs (room for @max), sorted by key, with keys
 * checked as map keys and values limited to @vmax bytes (addresses when
 * @addr).
 */
static int
get_pairs(json_t *o, const char *field, size_t max, size_t kmax, size_t vmax,
    bool addr, struct cat_pair *pairs, uint16_t *n, struct dsc_err *err)
{
	const char *keys[CATALOG_META_MAX];
	json_t *obj, *v;
	const char *k;
	size_t i = 0;
	int rc;

	*n = 0;
	if ((rc = get_obj(o, field, &obj, err)) != 0 || obj == NULL)
		return rc;
	if (json_object_size(obj) > max)
		return INVAL(err, "more than %zu entries in '%s'", max, field);
	json_object_foreach(obj, k, v) {
		if ((rc = check_map_key(field, k, kmax, err)) != 0)
			return rc;
		if (!json_is_string(v))
			return INVAL(err, "value of '%s' in '%s' must be a "
			    "string", k, field);
		if (json_string_length(v) > vmax)
			return dsc_errorf(err, DSC_ETOOBIG, "value of '%s' in "
			    "'%s' longer than %zu bytes", k, field, vmax);
		if (addr && (rc = check_addr(field, json_string_value(v),
				 err)) != 0)
			return rc;
		keys[i++] = k;
	}
	qsort(keys, i, sizeof(keys[0]), cmp_str);
	for (size_t j = 0; j < i; j++) {
		pairs[j].k = keys[j];
		pairs[j].v = json_string_value(json_object_get(obj, keys[j]));
	}
	*n = (uint16_t)i;
	return 0;
}

/* ---- register ------------------------------------------------------- */

static int
decode_node(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	struct cat_pair tagged[CATALOG_TADDRS_MAX], meta[CATALOG_META_MAX];
	struct node_body t = { 0 };
	const char *dc;
	int rc;

	if ((rc = get_str(o, "Node", CATALOG_NAME_MAX, &cmd->node, err)) ||
	    (rc = cat_check_name("node name", cmd->node, err)) ||
	    (rc = get_str(o, "Address", CATALOG_ADDR_MAX, &t.address, err)) ||
	    (rc = check_addr("node address", t.address, err)) ||
	    (rc = get_str(o, "ID", 64, &t.id, err)) ||
	    (rc = get_str(o, "Datacenter", CATALOG_NAME_MAX, &dc, err)) ||
	    (rc = get_bool(o, "SkipNodeUpdate", &cmd->skip_node_update,
		 err)) ||
	    (rc = get_pairs(o, "TaggedAddresses", CATALOG_TADDRS_MAX,
		 CATALOG_TADDR_KEY_MAX, CATALOG_ADDR_MAX, true, tagged,
		 &t.n_tagged, err)) ||
	    (rc = get_pairs(o, "NodeMeta", CATALOG_META_MAX,
		 CATALOG_META_KEY_MAX, CATALOG_META_VALUE_MAX, false, meta,
		 &t.n_meta, err)))
		return rc;
	if (t.id[0] != '\0' && !is_uuid(t.id))
		return INVAL(err, "node ID '%s' is not a UUID", t.id);
	if (t.address[0] == '\0') {
		if (!cmd->skip_node_update)
			return INVAL(err, "missing node address");
		return 0;
	}
	t.name = cmd->node;
	t.tagged = tagged;
	t.meta = meta;
	if ((cmd->nb = node_body_new(&t)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	return 0;
}

static int
decode_taddrs(json_t *o, struct cat_taddr *ta, uint16_t *n,
    struct dsc_err *err)
{
	static const char *const keys[] = { "Address", "Port", NULL };
	const char *names[CATALOG_TADDRS_MAX];
	json_t *obj, *v;
	const char *k;
	size_t i = 0;
	int rc;

	*n = 0;
	if ((rc = get_obj(o, "TaggedAddresses", &obj, err)) != 0 ||
	    obj == NULL)
		return rc;
	if (json_object_size(obj) > CATALOG_TADDRS_MAX)
		return INVAL(err, "more than %d service tagged addresses",
		    CATALOG_TADDRS_MAX);
	json_object_foreach(obj, k, v) {
		if ((rc = check_map_key("service tagged addresses", k,
			 CATALOG_TADDR_KEY_MAX, err)) != 0)
			return rc;
		if (!json_is_object(v))
			return INVAL(err, "tagged address '%s' must be an "
			    "object", k);
		if ((rc = only_keys(v, "service tagged address", keys, err)))
			return rc;
		names[i++] = k;
	}
	qsort(names, i, sizeof(names[0]), cmp_str);
	for (size_t j = 0; j < i; j++) {
		uint64_t port;

		v = json_object_get(obj, names[j]);
		ta[j].k = names[j];
		if ((rc = get_str(v, "Address", CATALOG_ADDR_MAX, &ta[j].addr,
			 err)) ||
		    (rc = check_addr("tagged address", ta[j].addr, err)) ||
		    (rc = get_uint(v, "Port", 0, 65535, &port, NULL, err)))
			return rc;
		ta[j].port = (uint32_t)port;
	}
	*n = (uint16_t)i;
	return 0;
}

static int
decode_service(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const keys[] = { "ID", "Service", "Tags",
		"Address", "Port", "Meta", "Weights", "EnableTagOverride",
		"TaggedAddresses", "Kind", NULL };
	static const char *const wkeys[] = { "Passing", "Warning", NULL };
	const char *tags[CATALOG_TAGS_MAX];
	struct cat_pair meta[CATALOG_META_MAX];
	struct cat_taddr ta[CATALOG_TADDRS_MAX];
	struct svc_body t = { 0 };
	json_t *jt, *w, *v;
	uint64_t port, wp = 1, ww = 1;
	size_t i;
	int rc;

	if ((rc = only_keys(o, "Service", keys, err)) ||
	    (rc = get_str(o, "Service", CATALOG_NAME_MAX, &t.name, err)) ||
	    (rc = cat_check_name("service name", t.name, err)) ||
	    (rc = get_str(o, "ID", CATALOG_ID_MAX, &t.id, err)) ||
	    (rc = get_str(o, "Address", CATALOG_ADDR_MAX, &t.address, err)) ||
	    (rc = check_addr("service address", t.address, err)) ||
	    (rc = get_uint(o, "Port", 0, 65535, &port, NULL, err)) ||
	    (rc = get_bool(o, "EnableTagOverride", &t.eto, err)) ||
	    (rc = get_str(o, "Kind", CATALOG_KIND_MAX, &t.kind, err)) ||
	    (rc = get_pairs(o, "Meta", CATALOG_META_MAX, CATALOG_META_KEY_MAX,
		 CATALOG_META_VALUE_MAX, false, meta, &t.n_meta, err)) ||
	    (rc = decode_taddrs(o, ta, &t.n_taddrs, err)) ||
	    (rc = get_obj(o, "Weights", &w, err)))
		return rc;
	if (t.id[0] == '\0')
		t.id = t.name;
	if ((rc = cat_check_id("service ID", t.id, CATALOG_ID_MAX, err)))
		return rc;
	if (t.kind[0] != '\0' && (rc = cat_check_name("service kind", t.kind,
				      err)))
		return rc;
	if (w != NULL &&
	    ((rc = only_keys(w, "Weights", wkeys, err)) ||
		(rc = get_uint(w, "Passing", 1, 65535, &wp, NULL, err)) ||
		(rc = get_uint(w, "Warning", 0, 65535, &ww, NULL, err))))
		return rc;
	if (w != NULL && json_object_get(w, "Warning") == NULL)
		ww = 1;
	jt = json_object_get(o, "Tags");
	if (jt != NULL && !json_is_null(jt)) {
		if (!json_is_array(jt))
			return INVAL(err, "field 'Tags' must be an array");
		if (json_array_size(jt) > CATALOG_TAGS_MAX)
			return INVAL(err, "more than %d tags",
			    CATALOG_TAGS_MAX);
		json_array_foreach(jt, i, v) {
			if (!json_is_string(v))
				return INVAL(err, "tags must be strings");
			if (json_string_length(v) > CATALOG_TAG_MAX)
				return dsc_errorf(err, DSC_ETOOBIG,
				    "tag longer than %d bytes",
				    CATALOG_TAG_MAX);
			tags[i] = json_string_value(v);
		}
		t.n_tags = (uint16_t)json_array_size(jt);
	}
	t.tags = tags;
	t.meta = meta;
	t.taddrs = ta;
	t.port = (uint32_t)port;
	t.w_passing = (uint32_t)wp;
	t.w_warning = (uint32_t)ww;
	if ((cmd->sb = svc_body_new(&t)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	return 0;
}

static int
parse_status(const char *s, int *out, struct dsc_err *err)
{
	for (int i = 0; i < CAT_STATUS_MAX; i++)
		if (strcmp(s, cat_status_names[i]) == 0) {
			*out = i;
			return 0;
		}
	if (strcmp(s, "maintenance") == 0)
		return INVAL(err, "status 'maintenance' is stored as a "
		    "critical check '_node_maintenance' or "
		    "'_service_maintenance:<id>'");
	return INVAL(err, "invalid check status '%s': want passing, warning "
	    "or critical", s);
}

/*
 * Go's api decodes these Definition fields as durations: "" would fail the
 * whole response in Prometheus and consul-template (consul-api.md 2.5).
 */
static int
check_definition(json_t *def, struct dsc_err *err)
{
	static const char *const durs[] = { "Interval", "Timeout",
		"DeregisterCriticalServiceAfter", NULL };

	for (int i = 0; durs[i] != NULL; i++) {
		json_t *v = json_object_get(def, durs[i]);

		if (v != NULL && json_is_string(v) &&
		    json_string_length(v) == 0)
			return INVAL(err, "Definition field '%s' must not be "
			    "empty", durs[i]);
	}
	return 0;
}

static int
decode_check(struct check_spec *cs, json_t *o, struct dsc_err *err)
{
	static const char *const keys[] = { "Node", "CheckID", "Name",
		"Status", "Notes", "Output", "ServiceID", "ServiceName",
		"ServiceTags", "Type", "Interval", "Timeout", "Definition",
		NULL };
	const size_t dflags = JSON_SORT_KEYS | JSON_COMPACT;
	struct check_body t = { 0 };
	const char *status;
	json_t *def;
	char *text = NULL;
	int rc;

	if (!json_is_object(o))
		return INVAL(err, "a check must be an object");
	if ((rc = only_keys(o, "Check", keys, err)) ||
	    (rc = get_str(o, "Node", CATALOG_NAME_MAX, &cs->node, err)) ||
	    (rc = get_str(o, "CheckID", CATALOG_ID_MAX, &t.id, err)) ||
	    (rc = get_str(o, "Name", CATALOG_TEXT_MAX, &t.name, err)) ||
	    (rc = get_str(o, "Status", 16, &status, err)) ||
	    (rc = get_str(o, "Notes", CATALOG_NOTES_MAX, &t.notes, err)) ||
	    (rc = get_str(o, "Output", CATALOG_OUTPUT_MAX, &cs->output,
		 err)) ||
	    (rc = get_str(o, "ServiceID", CATALOG_ID_MAX, &t.service_id,
		 err)) ||
	    (rc = get_str(o, "Type", CATALOG_TEXT_MAX, &t.type, err)) ||
	    (rc = get_str(o, "Interval", CATALOG_TEXT_MAX, &t.interval,
		 err)) ||
	    (rc = get_str(o, "Timeout", CATALOG_TEXT_MAX, &t.timeout, err)) ||
	    (rc = get_obj(o, "Definition", &def, err)))
		return rc;
	if (t.id[0] == '\0')
		t.id = t.name;
	if ((rc = cat_check_id("check ID", t.id, CATALOG_ID_MAX, err)))
		return rc;
	if (t.service_id[0] != '\0' &&
	    (rc = cat_check_id("check service ID", t.service_id,
		 CATALOG_ID_MAX, err)))
		return rc;
	cs->status = CAT_CRITICAL;	/* consul-api.md 2.7 */
	if (status[0] != '\0' && (rc = parse_status(status, &cs->status, err)))
		return rc;
	t.definition = "";
	if (def != NULL) {
		size_t n;

		if ((rc = check_definition(def, err)) != 0)
			return rc;
		if ((n = json_dumpb(def, NULL, 0, dflags)) == 0)
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		if (n > CATALOG_DEFINITION_MAX)
			return dsc_errorf(err, DSC_ETOOBIG, "check Definition "
			    "longer than %d bytes", CATALOG_DEFINITION_MAX);
		if ((text = dsc_malloc(n + 1)) == NULL)
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		if (json_dumpb(def, text, n, dflags) != n) {
			dsc_free(text);
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		}
		text[n] = '\0';
		t.definition = text;
	}
	cs->b = check_body_new(&t);
	dsc_free(text);
	if (cs->b == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	return 0;
}

static int
add_check(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	struct check_spec *cs;
	int rc;

	if (cmd->n_checks == CATALOG_REG_CHECKS_MAX)
		return INVAL(err, "more than %d checks in one registration",
		    CATALOG_REG_CHECKS_MAX);
	cs = &cmd->checks[cmd->n_checks];
	if ((rc = decode_check(cs, o, err)) != 0)
		return rc;
	cmd->n_checks++;
	if (cs->node[0] != '\0' && cat_strcasecmp(cs->node, cmd->node) != 0)
		return INVAL(err, "check '%s' is for node '%s', not '%s'",
		    cs->b->id, cs->node, cmd->node);
	for (size_t i = 0; i + 1 < cmd->n_checks; i++)
		if (strcmp(cmd->checks[i].b->id, cs->b->id) == 0)
			return INVAL(err, "duplicate check ID '%s'",
			    cs->b->id);
	return 0;
}

static int
decode_register(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const keys[] = { "Op", "ClientID", "Seq", "Node",
		"ID", "Address", "Datacenter", "TaggedAddresses", "NodeMeta",
		"SkipNodeUpdate", "Service", "Check", "Checks", NULL };
	json_t *svc, *chk, *chks, *v;
	size_t i;
	int rc;

	if ((rc = only_keys(o, "register", keys, err)) ||
	    (rc = decode_node(cmd, o, err)) ||
	    (rc = get_obj(o, "Service", &svc, err)) ||
	    (rc = get_obj(o, "Check", &chk, err)))
		return rc;
	if (svc != NULL && (rc = decode_service(cmd, svc, err)) != 0)
		return rc;
	if (chk != NULL && (rc = add_check(cmd, chk, err)) != 0)
		return rc;
	chks = json_object_get(o, "Checks");
	if (chks != NULL && !json_is_null(chks)) {
		if (!json_is_array(chks))
			return INVAL(err, "field 'Checks' must be an array");
		json_array_foreach(chks, i, v)
			if ((rc = add_check(cmd, v, err)) != 0)
				return rc;
	}
	return 0;
}

/* ---- the other ops -------------------------------------------------- */

static int
decode_deregister(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const keys[] = { "Op", "ClientID", "Seq", "Node",
		"ServiceID", "CheckID", "Datacenter", NULL };
	const char *dc;
	int rc;

	if ((rc = only_keys(o, "deregister", keys, err)) ||
	    (rc = get_str(o, "Node", CATALOG_NAME_MAX, &cmd->node, err)) ||
	    (rc = cat_check_name("node name", cmd->node, err)) ||
	    (rc = get_str(o, "Datacenter", CATALOG_NAME_MAX, &dc, err)) ||
	    (rc = get_str(o, "ServiceID", CATALOG_ID_MAX, &cmd->service_id,
		 err)) ||
	    (rc = get_str(o, "CheckID", CATALOG_ID_MAX, &cmd->check_id, err)))
		return rc;
	return 0;
}

static int
decode_check_update(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const keys[] = { "Op", "ClientID", "Seq", "Node",
		"CheckID", "Status", "Output", NULL };
	const char *status;
	int rc;

	if ((rc = only_keys(o, "check_update", keys, err)) ||
	    (rc = get_str(o, "Node", CATALOG_NAME_MAX, &cmd->node, err)) ||
	    (rc = cat_check_name("node name", cmd->node, err)) ||
	    (rc = get_str(o, "CheckID", CATALOG_ID_MAX, &cmd->check_id,
		 err)) ||
	    (rc = cat_check_id("check ID", cmd->check_id, CATALOG_ID_MAX,
		 err)) ||
	    (rc = get_str(o, "Status", 16, &status, err)))
		return rc;
	if (status[0] == '\0')
		return INVAL(err, "missing check status");
	if ((rc = parse_status(status, &cmd->status, err)) != 0)
		return rc;
	cmd->output = NULL;
	if (json_object_get(o, "Output") != NULL &&
	    (rc = get_str(o, "Output", CATALOG_OUTPUT_MAX, &cmd->output,
		 err)))
		return rc;
	return 0;
}

static int
decode_value(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	/* Longest base64 text of a CATALOG_VALUE_MAX value. */
	const size_t b64max = (CATALOG_VALUE_MAX + 2) / 3 * 4;
	const char *b64;
	size_t n, cap;
	int rc;

	if ((rc = get_str(o, "Value", b64max, &b64, err)) != 0)
		return rc;
	n = strlen(b64);
	if (n == 0)
		return 0;
	cap = n / 4 * 3 + 3;
	if ((cmd->val = dsc_malloc(cap)) == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	if (sodium_base642bin(cmd->val, cap, b64, n, NULL, &cmd->vlen, NULL,
		sodium_base64_VARIANT_ORIGINAL) != 0)
		return INVAL(err, "field 'Value' is not base64");
	if (cmd->vlen > CATALOG_VALUE_MAX)
		return dsc_errorf(err, DSC_ETOOBIG, "value longer than %d "
		    "bytes", CATALOG_VALUE_MAX);
	if (cmd->vlen == 0) {
		dsc_free(cmd->val);
		cmd->val = NULL;
	}
	return 0;
}

static int
decode_kv(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const set_keys[] = { "Op", "ClientID", "Seq", "Key",
		"Value", "Flags", NULL };
	static const char *const cas_keys[] = { "Op", "ClientID", "Seq", "Key",
		"Value", "Flags", "Cas", NULL };
	static const char *const del_keys[] = { "Op", "ClientID", "Seq", "Key",
		"Recurse", "Cas", NULL };
	const char *const *keys = cmd->op == CAT_OP_KV_SET ? set_keys :
	    cmd->op == CAT_OP_KV_CAS			   ? cas_keys :
							     del_keys;
	const uint64_t imax = INT64_MAX;
	int rc;

	if ((rc = only_keys(o, "kv command", keys, err)) ||
	    (rc = get_str(o, "Key", CATALOG_KEY_MAX, &cmd->key, err)))
		return rc;
	if (cmd->op == CAT_OP_KV_DELETE) {
		if ((rc = get_bool(o, "Recurse", &cmd->recurse, err)) ||
		    (rc = get_uint(o, "Cas", 1, imax, &cmd->cas, &cmd->has_cas,
			 err)))
			return rc;
		if (cmd->recurse && cmd->has_cas)
			return INVAL(err, "Cas cannot be combined with "
			    "Recurse");
		if (cmd->key[0] == '\0' && !cmd->recurse)
			return INVAL(err, "missing key");
		return 0;
	}
	if (cmd->key[0] == '\0')
		return INVAL(err, "missing key");
	if ((rc = get_uint(o, "Flags", 0, imax, &cmd->flags, NULL, err)))
		return rc;
	if (cmd->op == CAT_OP_KV_CAS) {
		if ((rc = get_uint(o, "Cas", 0, imax, &cmd->cas, &cmd->has_cas,
			 err)))
			return rc;
		if (!cmd->has_cas)
			return INVAL(err, "missing field 'Cas'");
	}
	return decode_value(cmd, o, err);
}

static int
decode_simple(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	static const char *const reap_keys[] = { "Op", "ClientID", "Seq",
		"Index", NULL };
	static const char *const noop_keys[] = { "Op", "ClientID", "Seq",
		NULL };
	bool present;
	int rc;

	if (cmd->op == CAT_OP_NOOP)
		return only_keys(o, "noop", noop_keys, err);
	if ((rc = only_keys(o, "reap", reap_keys, err)) ||
	    (rc = get_uint(o, "Index", 1, INT64_MAX, &cmd->reap_index,
		 &present, err)))
		return rc;
	if (!present)
		return INVAL(err, "missing field 'Index'");
	return 0;
}

/* ---- entry point ---------------------------------------------------- */

static const struct {
	const char *name;
	enum cat_op op;
} ops[] = {
	{ "register", CAT_OP_REGISTER },
	{ "deregister", CAT_OP_DEREGISTER },
	{ "check_update", CAT_OP_CHECK_UPDATE },
	{ "kv_set", CAT_OP_KV_SET },
	{ "kv_cas", CAT_OP_KV_CAS },
	{ "kv_delete", CAT_OP_KV_DELETE },
	{ "reap", CAT_OP_REAP },
	{ "noop", CAT_OP_NOOP },
};

static int
decode_header(struct cat_cmd *cmd, json_t *o, struct dsc_err *err)
{
	const char *op;
	bool has_seq;
	size_t i;
	int rc;

	if ((rc = get_str(o, "Op", 32, &op, err)) != 0)
		return rc;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0)
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return op[0] == '\0' ? INVAL(err, "missing field 'Op'") :
				       INVAL(err, "unknown op '%s'", op);
	cmd->op = ops[i].op;
	if ((rc = get_str(o, "ClientID", CATALOG_CLIENT_ID_MAX, &cmd->client,
		 err)) ||
	    (rc = get_uint(o, "Seq", 1, INT64_MAX, &cmd->seq, &has_seq, err)))
		return rc;
	if (cmd->client[0] == '\0') {
		cmd->client = NULL;
		if (has_seq)
			return INVAL(err, "field 'Seq' needs 'ClientID'");
		cmd->header_ok = true;
		return 0;
	}
	if ((rc = cat_check_id("client ID", cmd->client, CATALOG_CLIENT_ID_MAX,
		 err)))
		return rc;
	if (!has_seq)
		return INVAL(err, "field 'ClientID' needs 'Seq'");
	cmd->header_ok = true;
	return 0;
}

int
cat_cmd_decode(struct cat_cmd *cmd, const void *data, size_t len,
    struct dsc_err *err)
{
	json_error_t jerr;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	if (len > CATALOG_CMD_MAX)
		return dsc_errorf(err, DSC_ETOOBIG, "command longer than %d "
		    "bytes", CATALOG_CMD_MAX);
	cmd->root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
	if (cmd->root == NULL) {
		if (json_error_code(&jerr) == json_error_out_of_memory)
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		return INVAL(err, "command is not valid JSON");
	}
	if (!json_is_object(cmd->root))
		return INVAL(err, "command is not a JSON object");
	if ((rc = decode_header(cmd, cmd->root, err)) != 0)
		return rc;
	switch (cmd->op) {
	case CAT_OP_REGISTER:
		return decode_register(cmd, cmd->root, err);
	case CAT_OP_DEREGISTER:
		return decode_deregister(cmd, cmd->root, err);
	case CAT_OP_CHECK_UPDATE:
		return decode_check_update(cmd, cmd->root, err);
	case CAT_OP_KV_SET:
	case CAT_OP_KV_CAS:
	case CAT_OP_KV_DELETE:
		return decode_kv(cmd, cmd->root, err);
	case CAT_OP_REAP:
	case CAT_OP_NOOP:
		return decode_simple(cmd, cmd->root, err);
	}
	return INVAL(err, "unknown op");
}

void
cat_cmd_release(struct cat_cmd *cmd)
{
	dsc_free(cmd->nb);
	dsc_free(cmd->sb);
	for (size_t i = 0; i < cmd->n_checks; i++)
		dsc_free(cmd->checks[i].b);
	dsc_free(cmd->val);
	json_decref(cmd->root);
	memset(cmd, 0, sizeof(*cmd));
}

int
catalog_validate(const void *data, size_t len, struct dsc_err *err)
{
	struct cat_cmd cmd;
	int rc;

	rc = cat_cmd_decode(&cmd, data, len, err);
	cat_cmd_release(&cmd);
	return rc;
}

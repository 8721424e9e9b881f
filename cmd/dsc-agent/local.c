/*
 * local.c - the agent's own services and checks: the registrations made
 * through the API, the definitions of the config dir, the data-dir file
 * that keeps the former across restarts, and the reads of /v1/agent.
 *
 * Installing a service or check is two-phased: "prepare" decodes, builds
 * the entries and starts their check runners, and may fail (a script check
 * on an agent without --enable-script-checks); "commit" links them in and
 * cannot fail. So an invalid registration or config dir changes nothing.
 * Syncing the result into the catalog is local_sync.c's.
 */
#include "local_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "checks.h"
#include "clock.h"
#include "fileio.h"
#include "log.h"
#include "mem.h"

#define NODE_MAINT_NAME "Node Maintenance Mode"
#define SVC_MAINT_NAME  "Service Maintenance Mode"
#define NODE_MAINT_NOTES                                                       \
	"Maintenance mode is enabled for this node, but no reason was "        \
	"provided. This is a default message."
#define SVC_MAINT_NOTES                                                        \
	"Maintenance mode is enabled for this service, but no reason was "     \
	"provided. This is a default message."
#define STATE_VERSION 1

static const char *
svc_key(const void *p)
{
	return ((const struct lsvc *)p)->def.id;
}

static const char *
check_key(const void *p)
{
	return ((const struct lcheck *)p)->def.id;
}

static const char *
str_key(const void *p)
{
	return p;
}

struct lsvc *
local_svc(struct local *l, const char *id)
{
	return hmap_get(&l->svcs, id);
}

struct lcheck *
local_check(struct local *l, const char *id)
{
	return hmap_get(&l->checks, id);
}

const char *
local_node_address(const struct local *l)
{
	return l->a->cfg.bind != NULL ? l->a->cfg.bind : "127.0.0.1";
}

static int
nomem(struct dsc_err *err)
{
	return dsc_errorf(err, DSC_ENOMEM, "out of memory");
}

/* ---- ownership --------------------------------------------------------- */

static int
own(struct hmap *m, const char *id)
{
	char *s;

	if (hmap_get(m, id) != NULL)
		return 0;
	if ((s = dsc_strdup(id)) == NULL)
		return DSC_ENOMEM;
	if (hmap_put(m, s, NULL) != 0) {
		dsc_free(s);
		return DSC_ENOMEM;
	}
	return 0;
}

static void
own_clear(struct hmap *m)
{
	size_t it = 0;
	char *s;

	while ((s = hmap_next(m, &it)) != NULL)
		dsc_free(s);
	hmap_release(m);
}

/* ---- entries ------------------------------------------------------------ */

static void
lcheck_free(struct lcheck *c)
{
	if (c == NULL)
		return;
	check_run_stop(c->run);
	svc_check_release(&c->def);
	json_decref(c->raw);
	dsc_free(c->status);
	dsc_free(c->output);
	dsc_free(c);
}

static void
lsvc_free(struct lsvc *s)
{
	if (s == NULL)
		return;
	svc_def_release(&s->def);
	json_decref(s->raw);
	dsc_free(s);
}

static int
set_str(char **dst, const char *s)
{
	char *n = dsc_strdup(s != NULL ? s : "");

	if (n == NULL)
		return DSC_ENOMEM;
	dsc_free(*dst);
	*dst = n;
	return 0;
}

static void
on_report(const char *status, const char *output, void *arg)
{
	struct lcheck *c = arg;
	struct local *l = c->l;

	if (output == NULL)
		output = "";
	if (c->status != NULL && strcmp(c->status, status) == 0 &&
	    c->output != NULL && strcmp(c->output, output) == 0)
		return;
	if (c->status == NULL || strcmp(c->status, status) != 0)
		log_info("check '%s' is now %s", c->def.id, status);
	if (set_str(&c->status, status) != 0 ||
	    set_str(&c->output, output) != 0) {
		log_err(
		    "check '%s': out of memory keeping its status", c->def.id);
		return;
	}
	if (strcmp(status, "critical") != 0)
		c->critical_since = 0;
	else if (c->critical_since == 0)
		c->critical_since = dsc_mono_ms();
	c->st_gen = ++l->gen;
	local_sync_request(l, false);
}

/* A new check entry for @def (moved in on success), its runner started. */
static struct lcheck *
check_prepare(struct local *l, struct svc_check *def, enum local_origin origin,
    struct dsc_err *err)
{
	struct lcheck *c;

	if (strcmp(def->id, LOCAL_SERF_CHECK) == 0) {
		dsc_errorf(err, DSC_EINVAL,
		    "check ID '%s' is reserved for "
		    "the servers' liveness check",
		    LOCAL_SERF_CHECK);
		return NULL;
	}
	if ((c = dsc_calloc(1, sizeof(*c))) == NULL ||
	    set_str(&c->status, def->def.initial_status) != 0 ||
	    set_str(&c->output, "") != 0) {
		if (c != NULL) {
			dsc_free(c->status);
			dsc_free(c);
		}
		nomem(err);
		return NULL;
	}
	c->l = l;
	c->origin = origin;
	c->def = *def;
	if (strcmp(c->status, "critical") == 0)
		c->critical_since = dsc_mono_ms();
	c->run = checker_start(l->a->checker, &c->def.def, on_report, c, err);
	if (c->run == NULL) {
		dsc_err_wrap(err, "check '%s'", def->id);
		memset(&c->def, 0, sizeof(c->def));
		lcheck_free(c);
		return NULL;
	}
	memset(def, 0, sizeof(*def));
	c->def_gen = c->st_gen = ++l->gen;
	return c;
}

/* A service and its checks, prepared and not yet linked in. */
struct prepared {
	struct lsvc *svc;
	struct lcheck **checks;
	size_t n;
};

static void
prepared_free(struct prepared *p)
{
	for (size_t i = 0; i < p->n; i++)
		lcheck_free(p->checks[i]);
	dsc_free(p->checks);
	lsvc_free(p->svc);
	memset(p, 0, sizeof(*p));
}

/* Builds a service entry from @def (moved in on success) and @raw
 * (borrowed; kept as a copy for API registrations). */
static int
svc_prepare(struct local *l, struct svc_def *def, enum local_origin origin,
    json_t *raw, struct prepared *p, struct dsc_err *err)
{
	struct prepared n = { 0 };

	if ((n.svc = dsc_calloc(1, sizeof(*n.svc))) == NULL ||
	    (def->n_checks > 0 &&
	        (n.checks = dsc_calloc(def->n_checks, sizeof(*n.checks))) ==
	            NULL) ||
	    (raw != NULL && (n.svc->raw = json_deep_copy(raw)) == NULL)) {
		prepared_free(&n);
		return nomem(err);
	}
	for (size_t i = 0; i < def->n_checks; i++) {
		n.checks[i] = check_prepare(l, &def->checks[i], origin, err);
		if (n.checks[i] == NULL) {
			prepared_free(&n);
			return err->code;
		}
		n.checks[i]->in_service = true;
		n.n++;
	}
	for (size_t i = 0; i < def->n_checks; i++)
		svc_check_release(&def->checks[i]);
	dsc_free(def->checks);
	def->checks = NULL;
	def->n_checks = 0;
	n.svc->def = *def;
	n.svc->origin = origin;
	n.svc->def_gen = ++l->gen;
	memset(def, 0, sizeof(*def));
	*p = n;
	return 0;
}

/* Links @c in, replacing a check with its ID. Room was reserved. */
static void
check_commit(struct local *l, struct lcheck *c)
{
	void *old = NULL;

	hmap_put(&l->checks, c, &old);
	lcheck_free(old);
	if (own(&l->owned_checks, c->def.id) != 0)
		log_warn("out of memory: check '%s' may be left behind in "
		         "the catalog if removed",
		    c->def.id);
}

/* Which of a service's existing checks a new registration removes. */
enum replace {
	REPLACE_NONE, /* Consul's default: every existing check stays */
	REPLACE_OWN,  /* the checks its previous definition brought */
	REPLACE_ALL,  /* ?replace-existing-checks: all but maintenance */
};

static void
svc_commit(struct local *l, struct prepared *p, enum replace replace)
{
	const char *id = p->svc->def.id;
	void *old = NULL;

	if (replace != REPLACE_NONE) {
		size_t it = 0;
		struct lcheck *c;

		while ((c = hmap_next(&l->checks, &it)) != NULL)
			if (strcmp(c->def.service_id, id) == 0 && !c->maint &&
			    (replace == REPLACE_ALL || c->in_service)) {
				hmap_take(&l->checks, &it);
				lcheck_free(c);
			}
	}
	hmap_put(&l->svcs, p->svc, &old);
	lsvc_free(old);
	if (own(&l->owned_svcs, id) != 0)
		log_warn("out of memory: service '%s' may be left behind in "
		         "the catalog if removed",
		    id);
	for (size_t i = 0; i < p->n; i++)
		check_commit(l, p->checks[i]);
	dsc_free(p->checks);
	memset(p, 0, sizeof(*p));
}

static int
reserve(struct local *l, size_t svcs, size_t checks, struct dsc_err *err)
{
	if (hmap_reserve(&l->svcs, svcs) != 0 ||
	    hmap_reserve(&l->checks, checks) != 0 ||
	    hmap_reserve(&l->owned_svcs, svcs) != 0 ||
	    hmap_reserve(&l->owned_checks, checks) != 0)
		return nomem(err);
	return 0;
}

void
local_svc_remove(struct local *l, const char *id)
{
	struct lsvc *s = hmap_del(&l->svcs, id);
	size_t it = 0;
	struct lcheck *c;

	lsvc_free(s);
	while ((c = hmap_next(&l->checks, &it)) != NULL)
		if (strcmp(c->def.service_id, id) == 0) {
			hmap_take(&l->checks, &it);
			lcheck_free(c);
		}
}

/* A maintenance check: critical, no runner, Notes the reason. */
static struct lcheck *
maint_new(struct local *l, const char *service_id, const char *reason)
{
	char id[CATALOG_ID_MAX + sizeof(LOCAL_SVC_MAINT)];
	struct lcheck *c = dsc_calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	if (service_id == NULL)
		snprintf(id, sizeof(id), "%s", LOCAL_NODE_MAINT);
	else
		snprintf(id, sizeof(id), "%s%s", LOCAL_SVC_MAINT, service_id);
	if (reason == NULL || *reason == '\0')
		reason =
		    service_id == NULL ? NODE_MAINT_NOTES : SVC_MAINT_NOTES;
	c->l = l;
	c->maint = true;
	c->origin = ORIGIN_API;
	c->critical_since = 0; /* maintenance never reaps its service */
	c->def.id = dsc_strdup(id);
	c->def.name =
	    dsc_strdup(service_id == NULL ? NODE_MAINT_NAME : SVC_MAINT_NAME);
	c->def.service_id = dsc_strdup(service_id != NULL ? service_id : "");
	c->def.catalog = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "CheckID",
	    id, "Name", c->def.name ? c->def.name : "", "Notes", reason,
	    "Status", "critical", "ServiceID",
	    service_id != NULL ? service_id : "", "Type", "");
	if (c->def.id == NULL || c->def.name == NULL ||
	    c->def.service_id == NULL || c->def.catalog == NULL ||
	    set_str(&c->status, "critical") != 0 ||
	    set_str(&c->output, "") != 0) {
		lcheck_free(c);
		return NULL;
	}
	c->def_gen = c->st_gen = ++l->gen;
	return c;
}

/* ---- the data-dir file --------------------------------------------------- */

static int
state_path(const struct local *l, const char *suffix, char *out, size_t n)
{
	if ((size_t)snprintf(out, n, "%s/%s%s", l->a->cfg.data_dir,
	        LOCAL_STATE_FILE, suffix) >= n)
		return DSC_EINVAL;
	return 0;
}

static json_t *
state_json(struct local *l)
{
	json_t *st, *svcs, *checks, *smaint, *osvcs, *ochecks;
	size_t it = 0;
	struct lsvc *s;
	struct lcheck *c;
	const char *id;

	st = json_pack("{s:i, s:[], s:[], s:n, s:{}, s:[], s:[]}", "version",
	    STATE_VERSION, "services", "checks", "node_maintenance",
	    "service_maintenance", "owned_services", "owned_checks");
	if (st == NULL)
		return NULL;
	svcs = json_object_get(st, "services");
	checks = json_object_get(st, "checks");
	smaint = json_object_get(st, "service_maintenance");
	osvcs = json_object_get(st, "owned_services");
	ochecks = json_object_get(st, "owned_checks");
	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		if (s->origin == ORIGIN_API && s->raw != NULL &&
		    json_array_append(svcs, s->raw) != 0)
			goto fail;
	it = 0;
	while ((c = hmap_next(&l->checks, &it)) != NULL) {
		const char *notes =
		    json_string_value(json_object_get(c->def.catalog, "Notes"));

		if (c->maint && *c->def.service_id == '\0') {
			if (json_object_set_new(st, "node_maintenance",
			        json_string(notes)) != 0)
				goto fail;
		} else if (c->maint) {
			if (json_object_set_new(smaint, c->def.service_id,
			        json_string(notes)) != 0)
				goto fail;
		} else if (c->origin == ORIGIN_API && c->raw != NULL &&
		    json_array_append(checks, c->raw) != 0) {
			goto fail;
		}
	}
	it = 0;
	while ((id = hmap_next(&l->owned_svcs, &it)) != NULL)
		if (json_array_append_new(osvcs, json_string(id)) != 0)
			goto fail;
	it = 0;
	while ((id = hmap_next(&l->owned_checks, &it)) != NULL)
		if (json_array_append_new(ochecks, json_string(id)) != 0)
			goto fail;
	return st;
fail:
	json_decref(st);
	return NULL;
}

/*
 * Writes the API registrations and the owned IDs: a temp file, fsync,
 * rename over the old one, fsync of the directory, so a crash leaves the
 * old file or the new one, never a mix.
 */
int
local_persist(struct local *l)
{
	struct dsc_err err = DSC_ERR_INIT;
	char path[4096];
	json_t *st = state_json(l);
	char *text = NULL;
	int rc;

	if (st == NULL ||
	    (text = json_dumps(st, JSON_SORT_KEYS | JSON_INDENT(1))) == NULL) {
		json_decref(st);
		log_err("unable to save local state: out of memory");
		return DSC_ENOMEM;
	}
	json_decref(st);
	if (state_path(l, "", path, sizeof(path)) != 0)
		rc = DSC_EIO;
	else if ((rc = fileio_replace(path, text, strlen(text), 0600, &err)) !=
	    0)
		log_err("unable to save local state: %s", dsc_err_msg(&err));
	free(text);
	return rc;
}

static void
restore_owned(struct hmap *m, json_t *list)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v)
	{
		const char *id = json_string_value(v);

		if (id == NULL || *id == '\0' || strlen(id) > CATALOG_ID_MAX ||
		    strcmp(id, LOCAL_SERF_CHECK) == 0)
			continue;
		if (own(m, id) != 0)
			log_warn("out of memory restoring owned IDs");
	}
}

/* Installs the persisted API registrations; an entry that no longer
 * decodes (or may no longer run) is dropped with a warning, since
 * refusing to start would keep every other service down. */
static int
restore(struct local *l, struct dsc_err *err)
{
	char path[4096];
	json_error_t jerr;
	json_t *st, *v;
	const char *k;
	size_t i;

	if (state_path(l, "", path, sizeof(path)) != 0)
		return dsc_errorf(err, DSC_EINVAL, "data dir path too long");
	st = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (st == NULL) {
		if (access(path, F_OK) != 0 && errno == ENOENT)
			return 0;
		return dsc_errorf(err, DSC_ECORRUPT, "%s:%d:%d: %s", path,
		    jerr.line, jerr.column, jerr.text);
	}
	if (!json_is_object(st) ||
	    json_integer_value(json_object_get(st, "version")) !=
	        STATE_VERSION) {
		json_decref(st);
		return dsc_errorf(err, DSC_ECORRUPT,
		    "%s: not a version %d state file", path, STATE_VERSION);
	}
	restore_owned(&l->owned_svcs, json_object_get(st, "owned_services"));
	restore_owned(&l->owned_checks, json_object_get(st, "owned_checks"));
	json_array_foreach(json_object_get(st, "services"), i, v)
	{
		struct dsc_err e = DSC_ERR_INIT;
		struct svc_def def;
		struct prepared p;

		if (svcdef_service(v, &def, &e) != 0) {
			log_warn(
			    "%s: dropping a saved service: %s", path, e.msg);
			continue;
		}
		if (svc_prepare(l, &def, ORIGIN_API, v, &p, &e) != 0) {
			log_warn("%s: dropping saved service '%s': %s", path,
			    def.id, e.msg);
			svc_def_release(&def);
			continue;
		}
		if (reserve(l, 1, p.n, &e) != 0) {
			prepared_free(&p);
			json_decref(st);
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		}
		svc_commit(l, &p, REPLACE_ALL);
	}
	json_array_foreach(json_object_get(st, "checks"), i, v)
	{
		struct dsc_err e = DSC_ERR_INIT;
		struct svc_check def;
		struct lcheck *c;

		if (svcdef_check(v, &def, &e) != 0) {
			log_warn("%s: dropping a saved check: %s", path, e.msg);
			continue;
		}
		if (*def.service_id != '\0' &&
		    local_svc(l, def.service_id) == NULL) {
			log_warn("%s: dropping saved check '%s': service '%s' "
			         "is gone",
			    path, def.id, def.service_id);
			svc_check_release(&def);
			continue;
		}
		if ((c = check_prepare(l, &def, ORIGIN_API, &e)) == NULL) {
			log_warn("%s: dropping saved check '%s': %s", path,
			    def.id, e.msg);
			svc_check_release(&def);
			continue;
		}
		if ((c->raw = json_deep_copy(v)) == NULL ||
		    reserve(l, 0, 1, &e) != 0) {
			lcheck_free(c);
			json_decref(st);
			return dsc_errorf(err, DSC_ENOMEM, "out of memory");
		}
		check_commit(l, c);
	}
	if (json_is_string(json_object_get(st, "node_maintenance"))) {
		struct lcheck *c = maint_new(l, NULL,
		    json_string_value(json_object_get(st, "node_maintenance")));

		if (c == NULL || reserve(l, 0, 1, err) != 0) {
			lcheck_free(c);
			json_decref(st);
			return nomem(err);
		}
		check_commit(l, c);
	}
	json_object_foreach(json_object_get(st, "service_maintenance"), k, v)
	{
		struct lcheck *c;

		if (local_svc(l, k) == NULL || !json_is_string(v))
			continue;
		if ((c = maint_new(l, k, json_string_value(v))) == NULL ||
		    reserve(l, 0, 1, err) != 0) {
			lcheck_free(c);
			json_decref(st);
			return nomem(err);
		}
		check_commit(l, c);
	}
	json_decref(st);
	return 0;
}

/* ---- the config dir ------------------------------------------------------ */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
is_json_name(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 5 && strcmp(n + len - 5, ".json") == 0;
}

/* The *.json file names of @dir, sorted bytewise (lexical, locale-free). */
static int
list_dir(const char *dir, char ***names, size_t *n, struct dsc_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t k = 0;

	if (d == NULL)
		return dsc_errorf(err, DSC_EINVAL,
		    "unable to open config "
		    "dir '%s': %s",
		    dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char **nv;

		if (!is_json_name(e->d_name))
			continue;
		if (k >= LOCAL_FILES_MAX) {
			closedir(d);
			goto toomany;
		}
		if ((nv = dsc_reallocarray(v, k + 1, sizeof(*v))) == NULL ||
		    (nv[k] = dsc_strdup(e->d_name)) == NULL) {
			if (nv != NULL)
				v = nv;
			closedir(d);
			goto oom;
		}
		v = nv;
		k++;
	}
	closedir(d);
	if (k > 0)
		qsort(v, k, sizeof(*v), cmp_str);
	*names = v;
	*n = k;
	return 0;
toomany:
	for (size_t i = 0; i < k; i++)
		dsc_free(v[i]);
	dsc_free(v);
	return dsc_errorf(err, DSC_EINVAL,
	    "config dir '%s': more than %d "
	    "files",
	    dir, LOCAL_FILES_MAX);
oom:
	for (size_t i = 0; i < k; i++)
		dsc_free(v[i]);
	dsc_free(v);
	return nomem(err);
}

/* What a config-dir load found: entries that changed, prepared, and the
 * IDs of those that did not (their runners keep going). */
struct loaded {
	struct prepared *svcs;
	size_t n_svcs;
	struct lcheck **checks;
	size_t n_checks;
	json_t *kept_svcs, *kept_checks; /* ID -> true */
};

static void
loaded_free(struct loaded *ld)
{
	for (size_t i = 0; i < ld->n_svcs; i++)
		prepared_free(&ld->svcs[i]);
	for (size_t i = 0; i < ld->n_checks; i++)
		lcheck_free(ld->checks[i]);
	dsc_free(ld->svcs);
	dsc_free(ld->checks);
	json_decref(ld->kept_svcs);
	json_decref(ld->kept_checks);
	memset(ld, 0, sizeof(*ld));
}

static bool
same_runner(const struct svc_check *a, const struct svc_check *b)
{
	return json_equal(a->catalog, b->catalog) &&
	    a->def.success_before_passing == b->def.success_before_passing &&
	    a->def.failures_before_warning == b->def.failures_before_warning &&
	    a->def.failures_before_critical ==
	    b->def.failures_before_critical &&
	    a->def.output_max == b->def.output_max &&
	    a->deregister_after_ms == b->deregister_after_ms;
}

/* A file service is unchanged when its catalog form and every check's
 * catalog form and thresholds are equal: then its runners keep going. */
static bool
svc_unchanged(struct local *l, const struct svc_def *def)
{
	struct lsvc *old = local_svc(l, def->id);

	if (old == NULL || old->origin != ORIGIN_FILE ||
	    !json_equal(old->def.catalog, def->catalog))
		return false;
	for (size_t i = 0; i < def->n_checks; i++) {
		struct lcheck *c = local_check(l, def->checks[i].id);

		if (c == NULL || c->origin != ORIGIN_FILE || !c->in_service ||
		    !same_runner(&c->def, &def->checks[i]))
			return false;
	}
	/* Checks the old definition had and the new one lacks. */
	size_t it = 0, n = 0;
	struct lcheck *c;

	while ((c = hmap_next(&l->checks, &it)) != NULL)
		if (c->in_service && c->origin == ORIGIN_FILE &&
		    strcmp(c->def.service_id, def->id) == 0)
			n++;
	return n == def->n_checks;
}

static bool
check_unchanged(struct local *l, const struct svc_check *def)
{
	struct lcheck *c = local_check(l, def->id);

	return c != NULL && c->origin == ORIGIN_FILE && !c->in_service &&
	    same_runner(&c->def, def);
}

/* Reads every file, checks IDs across files, and prepares what changed.
 * Unchanged entries are marked by a NULL svc / check. */
static int
load_dir(struct local *l, struct loaded *ld, struct dsc_err *err)
{
	const char *dir = l->a->cfg.config_dir;
	struct svcdef_file *files = NULL;
	char **names = NULL, path[4096];
	size_t n = 0, ns = 0, nc = 0;
	int rc;

	memset(ld, 0, sizeof(*ld));
	if ((ld->kept_svcs = json_object()) == NULL ||
	    (ld->kept_checks = json_object()) == NULL) {
		loaded_free(ld);
		return nomem(err);
	}
	if (dir == NULL)
		return 0;
	if ((rc = list_dir(dir, &names, &n, err)) != 0) {
		loaded_free(ld);
		return rc;
	}
	if (n > 0 && (files = dsc_calloc(n, sizeof(*files))) == NULL) {
		rc = nomem(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if ((rc = svcdef_file_load(path, &files[i], err)) != 0)
			goto out;
		ns += files[i].n_services;
		nc += files[i].n_checks;
	}
	/* IDs across files, and checks naming a service that exists. */
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < files[i].n_services; j++) {
			const char *id = files[i].services[j].id;

			for (size_t a = 0; a <= i; a++)
				for (size_t b = 0; b < files[a].n_services &&
				     !(a == i && b >= j);
				     b++)
					if (strcmp(files[a].services[b].id,
					        id) == 0) {
						rc = dsc_errorf(err, DSC_EINVAL,
						    "%s/%s: service ID '%s' "
						    "also defined in '%s'",
						    dir, names[i], id,
						    names[a]);
						goto out;
					}
		}
		for (size_t j = 0; j < files[i].n_checks; j++) {
			const char *sid = files[i].checks[j].service_id;
			bool found = *sid == '\0' ||
			    (local_svc(l, sid) != NULL &&
			        local_svc(l, sid)->origin == ORIGIN_API);

			for (size_t a = 0; a < n && !found; a++)
				for (size_t b = 0; b < files[a].n_services; b++)
					if (strcmp(files[a].services[b].id,
					        sid) == 0)
						found = true;
			if (!found) {
				rc = dsc_errorf(err, DSC_EINVAL,
				    "%s/%s: check '%s': ServiceID '%s' does "
				    "not exist",
				    dir, names[i], files[i].checks[j].id, sid);
				goto out;
			}
		}
	}
	if ((ns > 0 &&
	        (ld->svcs = dsc_calloc(ns, sizeof(*ld->svcs))) == NULL) ||
	    (nc > 0 &&
	        (ld->checks = dsc_calloc(nc, sizeof(*ld->checks))) == NULL)) {
		rc = nomem(err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < files[i].n_services; j++) {
			struct svc_def *d = &files[i].services[j];
			struct prepared *p = &ld->svcs[ld->n_svcs];

			if (svc_unchanged(l, d)) {
				if (json_object_set_new(ld->kept_svcs, d->id,
				        json_true()) != 0) {
					rc = nomem(err);
					goto out;
				}
				continue;
			}
			if ((rc = svc_prepare(
			         l, d, ORIGIN_FILE, NULL, p, err)) != 0) {
				dsc_err_wrap(err, "%s/%s", dir, names[i]);
				goto out;
			}
			ld->n_svcs++;
		}
		for (size_t j = 0; j < files[i].n_checks; j++) {
			struct svc_check *d = &files[i].checks[j];
			struct lcheck *c;

			if (check_unchanged(l, d)) {
				if (json_object_set_new(ld->kept_checks, d->id,
				        json_true()) != 0) {
					rc = nomem(err);
					goto out;
				}
				continue;
			}
			if ((c = check_prepare(l, d, ORIGIN_FILE, err)) ==
			    NULL) {
				rc = err->code;
				dsc_err_wrap(err, "%s/%s", dir, names[i]);
				goto out;
			}
			ld->checks[ld->n_checks++] = c;
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		svcdef_file_release(&files[i]);
		dsc_free(names[i]);
	}
	dsc_free(files);
	dsc_free(names);
	if (rc != 0)
		loaded_free(ld);
	return rc;
}

static bool
loaded_has_svc(const struct loaded *ld, const char *id)
{
	if (json_object_get(ld->kept_svcs, id) != NULL)
		return true;
	for (size_t i = 0; i < ld->n_svcs; i++)
		if (strcmp(ld->svcs[i].svc->def.id, id) == 0)
			return true;
	return false;
}

static bool
loaded_has_check(const struct loaded *ld, const char *id)
{
	if (json_object_get(ld->kept_checks, id) != NULL)
		return true;
	for (size_t i = 0; i < ld->n_checks; i++)
		if (strcmp(ld->checks[i]->def.id, id) == 0)
			return true;
	return false;
}

/* Replaces what came from files with @ld; cannot fail once room is
 * reserved. */
static void
apply_dir(struct local *l, struct loaded *ld)
{
	size_t it = 0;
	struct lsvc *s;
	struct lcheck *c;

	/* File entries that are gone from the files. */
	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		if (s->origin == ORIGIN_FILE &&
		    !loaded_has_svc(ld, s->def.id)) {
			char *id = dsc_strdup(s->def.id);

			if (id == NULL)
				continue; /* kept: better than lost */
			local_svc_remove(l, id);
			dsc_free(id);
			it = 0;
		}
	it = 0;
	while ((c = hmap_next(&l->checks, &it)) != NULL)
		if (c->origin == ORIGIN_FILE && !c->in_service &&
		    !loaded_has_check(ld, c->def.id)) {
			hmap_take(&l->checks, &it);
			lcheck_free(c);
		}
	for (size_t i = 0; i < ld->n_svcs; i++)
		svc_commit(l, &ld->svcs[i], REPLACE_OWN);
	for (size_t i = 0; i < ld->n_checks; i++) {
		check_commit(l, ld->checks[i]);
		ld->checks[i] = NULL;
	}
	loaded_free(ld);
}

static int
load_and_apply(struct local *l, struct dsc_err *err)
{
	struct loaded ld;
	size_t nc = 0;
	int rc;

	if ((rc = load_dir(l, &ld, err)) != 0)
		return rc;
	for (size_t i = 0; i < ld.n_svcs; i++)
		nc += ld.svcs[i].n;
	if ((rc = reserve(l, ld.n_svcs, nc + ld.n_checks, err)) != 0) {
		loaded_free(&ld);
		return rc;
	}
	apply_dir(l, &ld);
	return 0;
}

int
local_reload(struct local *l, struct dsc_err *err)
{
	int rc = load_and_apply(l, err);

	/* The caller reports the outcome (a log line, an HTTP answer). */
	if (rc != 0)
		return rc;
	log_debug("config dir reloaded: %zu services, %zu checks", l->svcs.n,
	    l->checks.n);
	local_persist(l);
	local_sync_request(l, true);
	return 0;
}

/* ---- lifecycle ------------------------------------------------------------
 */

struct local *
local_new(struct agent *a, struct dsc_err *err)
{
	struct local *l = dsc_calloc(1, sizeof(*l));

	if (l == NULL) {
		nomem(err);
		return NULL;
	}
	l->a = a;
	hmap_init(&l->svcs, svc_key);
	hmap_init(&l->checks, check_key);
	hmap_init(&l->owned_svcs, str_key);
	hmap_init(&l->owned_checks, str_key);
	l->waiters_tail = &l->waiters;
	if (restore(l, err) != 0 || load_and_apply(l, err) != 0 ||
	    local_sync_start(l, err) != 0) {
		local_free(l);
		return NULL;
	}
	log_info(
	    "local state: %zu services, %zu checks", l->svcs.n, l->checks.n);
	local_persist(l);
	local_sync_request(l, true);
	return l;
}

void
local_free(struct local *l)
{
	size_t it = 0;
	struct lsvc *s;
	struct lcheck *c;

	if (l == NULL)
		return;
	local_sync_stop(l);
	while ((c = hmap_next(&l->checks, &it)) != NULL)
		lcheck_free(c);
	it = 0;
	while ((s = hmap_next(&l->svcs, &it)) != NULL)
		lsvc_free(s);
	hmap_release(&l->svcs);
	hmap_release(&l->checks);
	own_clear(&l->owned_svcs);
	own_clear(&l->owned_checks);
	dsc_free(l);
}

/* ---- API writes ------------------------------------------------------------
 */

/* After a change: save, then run @done after the next pass. */
static int
changed(struct local *l, local_done_fn *done, void *arg, struct dsc_err *err)
{
	local_persist(l);
	if (done != NULL && local_sync_wait(l, done, arg, err) != 0)
		return err->code;
	local_sync_request(l, false);
	return 0;
}

int
local_service_register(struct local *l, json_t *reg, bool replace_checks,
    local_done_fn *done, void *arg, struct dsc_err *err)
{
	struct svc_def def;
	struct prepared p;
	struct lsvc *old;
	int rc;

	if ((rc = svcdef_service(reg, &def, err)) != 0)
		return rc;
	if ((rc = svc_prepare(l, &def, ORIGIN_API, reg, &p, err)) != 0) {
		svc_def_release(&def);
		return rc;
	}
	if ((rc = reserve(l, 1, p.n, err)) != 0) {
		prepared_free(&p);
		return rc;
	}
	old = local_svc(l, p.svc->def.id);
	if (old != NULL && old->origin == ORIGIN_FILE)
		log_info("service '%s' from the config dir replaced through "
		         "the API until the next reload",
		    old->def.id);
	svc_commit(l, &p, replace_checks ? REPLACE_ALL : REPLACE_NONE);
	return changed(l, done, arg, err);
}

int
local_service_deregister(struct local *l, const char *service_id,
    local_done_fn *done, void *arg, struct dsc_err *err)
{
	if (local_svc(l, service_id) == NULL)
		return dsc_errorf(err, DSC_ENOTFOUND,
		    "unknown service ID "
		    "'%s'",
		    service_id);
	local_svc_remove(l, service_id);
	return changed(l, done, arg, err);
}

int
local_check_register(struct local *l, json_t *reg, local_done_fn *done,
    void *arg, struct dsc_err *err)
{
	struct svc_check def;
	struct lcheck *c;
	int rc;

	if ((rc = svcdef_check(reg, &def, err)) != 0)
		return rc;
	if (*def.service_id != '\0' && local_svc(l, def.service_id) == NULL) {
		rc = dsc_errorf(err, DSC_EINVAL,
		    "ServiceID \"%s\" does not "
		    "exist",
		    def.service_id);
		svc_check_release(&def);
		return rc;
	}
	if ((c = check_prepare(l, &def, ORIGIN_API, err)) == NULL) {
		svc_check_release(&def);
		return err->code;
	}
	if ((c->raw = json_deep_copy(reg)) == NULL ||
	    (rc = reserve(l, 0, 1, err)) != 0) {
		lcheck_free(c);
		return nomem(err);
	}
	check_commit(l, c);
	return changed(l, done, arg, err);
}

int
local_check_deregister(struct local *l, const char *check_id,
    local_done_fn *done, void *arg, struct dsc_err *err)
{
	struct lcheck *c = local_check(l, check_id);

	if (c == NULL)
		return dsc_errorf(
		    err, DSC_ENOTFOUND, "unknown check ID '%s'", check_id);
	hmap_del(&l->checks, check_id);
	lcheck_free(c);
	return changed(l, done, arg, err);
}

int
local_check_ttl(struct local *l, const char *check_id, const char *status,
    const char *output, local_done_fn *done, void *arg, struct dsc_err *err)
{
	struct lcheck *c = local_check(l, check_id);
	int rc;

	if (c == NULL || c->run == NULL || c->def.def.kind != CHECK_TTL)
		return dsc_errorf(err, DSC_ENOTFOUND,
		    "CheckID \"%s\" does not have associated TTL", check_id);
	if ((rc = check_run_ttl(c->run, status, output, err)) != 0)
		return rc;
	/* The runner reports later, from the loop; record it now so the
	 * pass @done waits for carries this very status. */
	on_report(check_run_status(c->run), check_run_output(c->run), c);
	if (done != NULL && local_sync_wait(l, done, arg, err) != 0)
		return err->code;
	local_sync_request(l, false);
	return 0;
}

int
local_maintenance(struct local *l, const char *service_id, bool enable,
    const char *reason, local_done_fn *done, void *arg, struct dsc_err *err)
{
	char id[CATALOG_ID_MAX + sizeof(LOCAL_SVC_MAINT)];
	struct lcheck *c;

	if (service_id != NULL && local_svc(l, service_id) == NULL)
		return dsc_errorf(err, DSC_ENOTFOUND,
		    "unknown service ID "
		    "'%s'",
		    service_id);
	if (reason != NULL && strlen(reason) > CATALOG_NOTES_MAX)
		return dsc_errorf(err, DSC_EINVAL,
		    "reason longer than %d "
		    "bytes",
		    CATALOG_NOTES_MAX);
	if (service_id == NULL)
		snprintf(id, sizeof(id), "%s", LOCAL_NODE_MAINT);
	else
		snprintf(id, sizeof(id), "%s%s", LOCAL_SVC_MAINT, service_id);
	if (enable) {
		if ((c = maint_new(l, service_id, reason)) == NULL ||
		    reserve(l, 0, 1, err) != 0) {
			lcheck_free(c);
			return nomem(err);
		}
		check_commit(l, c);
		log_info("maintenance on for %s%s",
		    service_id ? "service " : "the node",
		    service_id ? service_id : "");
	} else if ((c = hmap_del(&l->checks, id)) != NULL) {
		lcheck_free(c);
		log_info("maintenance off for %s%s",
		    service_id ? "service " : "the node",
		    service_id ? service_id : "");
	}
	return changed(l, done, arg, err);
}

/* ---- reads -----------------------------------------------------------------
 */

static json_t *
agent_service(struct local *l, const struct lsvc *s)
{
	json_t *v = json_deep_copy(s->def.catalog);

	if (v != NULL &&
	    json_object_set_new(v, "Datacenter",
	        json_string(l->a->cfg.datacenter ? l->a->cfg.datacenter
	                                         : AGENT_DC_DEFAULT)) != 0) {
		json_decref(v);
		return NULL;
	}
	return v;
}

json_t *
local_services(struct local *l)
{
	json_t *out = json_object();
	size_t it = 0;
	struct lsvc *s;

	while (out != NULL && (s = hmap_next(&l->svcs, &it)) != NULL)
		if (json_object_set_new(out, s->def.id, agent_service(l, s)) !=
		    0) {
			json_decref(out);
			out = NULL;
		}
	return out;
}

json_t *
local_service(struct local *l, const char *service_id)
{
	struct lsvc *s = local_svc(l, service_id);

	return s != NULL ? agent_service(l, s) : NULL;
}

json_t *
local_checks(struct local *l)
{
	json_t *out = json_object();
	size_t it = 0;
	struct lcheck *c;

	while (out != NULL && (c = hmap_next(&l->checks, &it)) != NULL) {
		json_t *v = local_check_json(c);
		struct lsvc *s = local_svc(l, c->def.service_id);

		if (v == NULL ||
		    json_object_set_new(
		        v, "Node", json_string(l->a->cfg.name)) != 0 ||
		    json_object_set_new(v, "ServiceName",
		        json_string(s != NULL ? s->def.name : "")) != 0 ||
		    json_object_set_new(v, "ServiceTags",
		        s != NULL ? json_incref(
		                        json_object_get(s->def.catalog, "Tags"))
		                  : json_array()) != 0 ||
		    json_object_set_new(out, c->def.id, v) != 0) {
			json_decref(out);
			out = NULL;
		}
	}
	return out;
}

bool
local_in_sync(const struct local *l)
{
	return l->in_sync;
}

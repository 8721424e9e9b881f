/*
 * test_catalog.c - the replicated catalog: registration round trips,
 * per-resource indexes and change lists, idempotent retries, validation,
 * health filtering, KV, snapshot/restore/digest, determinism over random
 * logs, and allocation failures that must leave the state unchanged.
 *
 * Commands are written with ' for " so they read like JSON; app() turns
 * them into real JSON and applies them at the next index.
 */
#include "catalog.h"

#include <stdio.h>

#include "catalog_internal.h"
#include "mem.h"
#include "prng.h"
#include "t.h"

/* ---- fixture ------------------------------------------------------- */

static struct catalog *cat;
static uint64_t idx;

/* jansson allocates through dsc_malloc too, so failures reach it. */
__attribute__((constructor)) static void
route_jansson(void)
{
	json_set_alloc_funcs(dsc_malloc, dsc_free);
}

/* JSON values a test keeps around; dropped at teardown. */
static json_t *kept[256];
static size_t n_kept;

static json_t *
G(json_t *j)
{
	T_ASSERT(j != NULL);
	T_ASSERT(n_kept < sizeof(kept) / sizeof(kept[0]));
	kept[n_kept++] = j;
	return j;
}

static void
teardown(void)
{
	while (n_kept > 0)
		json_decref(kept[--n_kept]);
	catalog_free(cat);
	cat = NULL;
}

static void
setup(void)
{
	dsc_mem_fail_after(-1);
	teardown();
	cat = catalog_new();
	T_ASSERT(cat != NULL);
	idx = 0;
}

/* String field @key of element @i of array @a ("" when missing). */
static const char *
str_at(json_t *a, size_t i, const char *key)
{
	const char *s = json_string_value(json_object_get(
	    json_array_get(a, i), key));

	return s != NULL ? s : "";
}

static json_int_t
int_at(json_t *a, size_t i, const char *key)
{
	return json_integer_value(json_object_get(json_array_get(a, i), key));
}

/* @sq with every ' turned into ", in a static buffer. */
static const char *
dq(const char *sq)
{
	static char b[16384];
	size_t i;

	for (i = 0; sq[i] != '\0' && i + 1 < sizeof(b); i++)
		b[i] = sq[i] == '\'' ? '"' : sq[i];
	b[i] = '\0';
	return b;
}

static struct catalog_result
app_on(struct catalog *c, uint64_t at, const char *sq)
{
	struct catalog_result r;
	const char *s = dq(sq);
	int rc = catalog_apply(c, at, s, strlen(s), &r);

	if (rc != 0)
		T_FAIL("catalog_apply returned %s", dsc_errname(rc));
	return r;
}

static struct catalog_result
app(const char *sq)
{
	return app_on(cat, ++idx, sq);
}

#define OK(sq)                                                                 \
	do {                                                                   \
		struct catalog_result r_ = app(sq);                            \
		if (r_.err.code != 0)                                          \
			T_FAIL("refused: %s", r_.err.msg);                     \
		T_ASSERT(r_.ok);                                               \
	} while (0)

#define NOT_OK(sq)                                                             \
	do {                                                                   \
		struct catalog_result r_ = app(sq);                            \
		T_EQ(r_.err.code, 0);                                          \
		T_ASSERT(!r_.ok);                                              \
	} while (0)

#define REFUSED(sq, want)                                                      \
	do {                                                                   \
		struct catalog_result r_ = app(sq);                            \
		T_EQ(r_.err.code, want);                                       \
		T_ASSERT(!r_.ok);                                              \
	} while (0)

/* Compact, sorted JSON of @j (consumed), in a static buffer. */
static const char *
js(json_t *j)
{
	static char b[65536];
	char *d;

	T_ASSERT(j != NULL);
	d = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(j);
	T_ASSERT(d != NULL);
	snprintf(b, sizeof(b), "%s", d);
	dsc_free(d);
	return b;
}

static uint64_t
ix(const char *key)
{
	return catalog_index(cat, key);
}

static void
digest_of(const struct catalog *c, char hex[65])
{
	T_EQ(catalog_digest(c, hex), 0);
}

/* A watch key is in the last apply's change list. */
static bool
changed(const char *key)
{
	struct catalog_changes ch;

	catalog_changes(cat, &ch);
	if (ch.all)
		return true;
	for (size_t i = 0; i < ch.n; i++)
		if (strcmp(ch.keys[i], key) == 0)
			return true;
	return false;
}

static size_t
n_changes(void)
{
	struct catalog_changes ch;

	catalog_changes(cat, &ch);
	T_ASSERT(!ch.all);
	return ch.n;
}

#define WEB1                                                                   \
	"{'Op':'register','Node':'n1','Address':'10.0.0.1',"                   \
	"'Service':{'ID':'web-1','Service':'web','Port':80,'Tags':['v1']},"    \
	"'Check':{'CheckID':'service:web-1','ServiceID':'web-1',"              \
	"'Status':'passing'}}"
#define DB1                                                                    \
	"{'Op':'register','Node':'n2','Address':'10.0.0.2',"                   \
	"'Service':{'ID':'db-1','Service':'db','Port':5432}}"

/* ---- registration round trips -------------------------------------- */

TEST(register_round_trip)
{
	json_t *rows;

	setup();
	OK(WEB1);
	T_STREQ(js(catalog_services(cat, NULL)), "{\"web\":[\"v1\"]}");
	rows = catalog_service(cat, "web", NULL);
	T_EQ(json_array_size(rows), 1);
	T_STREQ(json_string_value(json_object_get(json_array_get(rows, 0),
			"ServiceID")),
	    "web-1");
	T_STREQ(json_string_value(json_object_get(json_array_get(rows, 0),
			"Address")),
	    "10.0.0.1");
	T_EQ(json_integer_value(json_object_get(json_array_get(rows, 0),
		 "ServicePort")),
	    80);
	json_decref(rows);
	T_STREQ(js(catalog_node_checks(cat, "n1")),
	    "[{\"CheckID\":\"service:web-1\",\"CreateIndex\":1,"
	    "\"Definition\":{},\"ExposedPort\":0,\"Interval\":\"\","
	    "\"ModifyIndex\":1,\"Name\":\"\",\"Node\":\"n1\",\"Notes\":\"\","
	    "\"Output\":\"\",\"ServiceID\":\"web-1\",\"ServiceName\":\"web\","
	    "\"ServiceTags\":[\"v1\"],\"Status\":\"passing\",\"Timeout\":\"\","
	    "\"Type\":\"\"}]");
	T_STREQ(js(catalog_node(cat, "N1")),
	    "{\"Node\":{\"Address\":\"10.0.0.1\",\"CreateIndex\":1,"
	    "\"Datacenter\":\"dc1\",\"ID\":\"\",\"Meta\":{},\"ModifyIndex\":1,"
	    "\"Node\":\"n1\",\"TaggedAddresses\":{}},\"Services\":{\"web-1\":"
	    "{\"Address\":\"\",\"CreateIndex\":1,\"EnableTagOverride\":false,"
	    "\"ID\":\"web-1\",\"Meta\":{},\"ModifyIndex\":1,\"Port\":80,"
	    "\"Service\":\"web\",\"Tags\":[\"v1\"],\"Weights\":{\"Passing\":1,"
	    "\"Warning\":1}}}}");
	T_STREQ(js(catalog_node(cat, "nope")), "null");
	T_STREQ(js(catalog_service(cat, "nope", NULL)), "[]");
	teardown();
}

TEST(register_full_shapes)
{
	json_t *row;

	setup();
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'ID':'0b6d1f3e-3a35-4d3e-9a3c-6ad0c39f2b1a','Datacenter':'dc1',"
	   "'TaggedAddresses':{'wan':'1.2.3.4','lan':'10.0.0.1'},"
	   "'NodeMeta':{'rack':'r1'},"
	   "'Service':{'Service':'api','Address':'10.9.9.9','Port':8443,"
	   "'Meta':{'version':'1.2'},'Weights':{'Passing':10,'Warning':2},"
	   "'EnableTagOverride':true,'Kind':'typical',"
	   "'TaggedAddresses':{'lan':{'Address':'10.9.9.9','Port':8443}}},"
	   "'Checks':[{'Name':'alive','Status':'warning','Output':'slow',"
	   "'Definition':{'HTTP':'http://x/','Interval':'10s'},"
	   "'Interval':'10s','Timeout':'1s','Type':'http','ServiceID':'api',"
	   "'Notes':'n','ServiceName':'ignored','ServiceTags':['x']}]}");
	row = catalog_health_service(cat, "api", NULL);
	T_EQ(json_array_size(row), 1);
	T_STREQ(js(json_incref(json_object_get(json_array_get(row, 0),
		    "Service"))),
	    "{\"Address\":\"10.9.9.9\",\"CreateIndex\":1,"
	    "\"EnableTagOverride\":true,\"ID\":\"api\",\"Kind\":\"typical\","
	    "\"Meta\":{\"version\":\"1.2\"},\"ModifyIndex\":1,\"Port\":8443,"
	    "\"Service\":\"api\",\"TaggedAddresses\":{\"lan\":"
	    "{\"Address\":\"10.9.9.9\",\"Port\":8443}},\"Tags\":[],"
	    "\"Weights\":{\"Passing\":10,\"Warning\":2}}");
	T_STREQ(js(json_incref(json_object_get(json_array_get(row, 0),
		    "Checks"))),
	    "[{\"CheckID\":\"alive\",\"CreateIndex\":1,\"Definition\":"
	    "{\"HTTP\":\"http://x/\",\"Interval\":\"10s\"},\"ExposedPort\":0,"
	    "\"Interval\":\"10s\",\"ModifyIndex\":1,\"Name\":\"alive\","
	    "\"Node\":\"n1\",\"Notes\":\"n\",\"Output\":\"slow\",\"ServiceID\":"
	    "\"api\",\"ServiceName\":\"api\",\"ServiceTags\":[],\"Status\":"
	    "\"warning\",\"Timeout\":\"1s\",\"Type\":\"http\"}]");
	T_STREQ(js(json_incref(json_object_get(json_array_get(row, 0),
		    "Node"))),
	    "{\"Address\":\"10.0.0.1\",\"CreateIndex\":1,\"Datacenter\":"
	    "\"dc1\",\"ID\":\"0b6d1f3e-3a35-4d3e-9a3c-6ad0c39f2b1a\",\"Meta\":"
	    "{\"rack\":\"r1\"},\"ModifyIndex\":1,\"Node\":\"n1\","
	    "\"TaggedAddresses\":{\"lan\":\"10.0.0.1\",\"wan\":\"1.2.3.4\"}}");
	json_decref(row);
	row = catalog_service(cat, "api", NULL);
	T_STREQ(json_string_value(json_object_get(json_array_get(row, 0),
			"ServiceKind")),
	    "typical");
	T_ASSERT(json_object_get(json_array_get(row, 0),
		     "ServiceTaggedAddresses") != NULL);
	json_decref(row);
	T_EQ(catalog_set_datacenter(cat, "eu-1"), 0);
	row = catalog_nodes(cat, NULL);
	T_STREQ(json_string_value(json_object_get(json_array_get(row, 0),
			"Datacenter")),
	    "eu-1");
	json_decref(row);
	teardown();
}

TEST(new_checks_default_to_critical)
{
	setup();
	OK("{'Op':'register','Node':'n1','Address':'a',"
	   "'Check':{'CheckID':'c1'}}");
	T_STREQ(str_at(G(catalog_node_checks(cat, "n1")), 0, "Status"),
	    "critical");
	teardown();
}

TEST(deregister_service_removes_its_checks)
{
	setup();
	OK(WEB1);
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'Check':{'CheckID':'serfHealth','Status':'passing'}}");
	OK("{'Op':'deregister','Node':'n1','ServiceID':'web-1'}");
	T_STREQ(js(catalog_service(cat, "web", NULL)), "[]");
	T_STREQ(js(catalog_services(cat, NULL)), "{}");
	T_EQ(json_array_size(G(catalog_node_checks(cat, "n1"))), 1);
	T_STREQ(str_at(G(catalog_node_checks(cat, "n1")), 0, "CheckID"),
	    "serfHealth");
	/* Removing what is not there succeeds and changes nothing. */
	OK("{'Op':'deregister','Node':'n1','ServiceID':'web-1'}");
	T_EQ(n_changes(), 0);
	OK("{'Op':'deregister','Node':'zz'}");
	T_EQ(n_changes(), 0);
	OK("{'Op':'deregister','Node':'n1','CheckID':'serfHealth'}");
	T_STREQ(js(catalog_node_checks(cat, "n1")), "[]");
	teardown();
}

TEST(deregister_node_removes_everything)
{
	setup();
	OK(WEB1);
	OK(DB1);
	OK("{'Op':'deregister','Node':'N1'}");
	T_STREQ(js(catalog_node(cat, "n1")), "null");
	T_STREQ(js(catalog_services(cat, NULL)), "{\"db\":[]}");
	T_EQ(json_array_size(G(catalog_nodes(cat, NULL))), 1);
	T_STREQ(js(catalog_checks_in_state(cat, CATALOG_STATE_ANY, NULL)),
	    "[]");
	/* The name can be registered again, with fresh indexes. */
	OK(WEB1);
	T_EQ(int_at(G(catalog_nodes(cat, NULL)), 0, "CreateIndex"), 4);
	teardown();
}

TEST(reregistering_the_same_moves_no_index)
{
	setup();
	OK(WEB1);
	OK(DB1);
	OK(WEB1);	/* an anti-entropy resync */
	T_EQ(n_changes(), 0);
	T_EQ(ix("service:web"), 1);
	T_EQ(ix("node:n1"), 1);
	T_EQ(ix("services"), 2);
	T_EQ(int_at(G(catalog_service(cat, "web", NULL)), 0, "ModifyIndex"),
	    1);
	teardown();
}

TEST(create_and_modify_indexes)
{
	json_t *r;

	setup();
	OK(WEB1);
	OK(DB1);
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'Service':{'ID':'web-1','Service':'web','Port':81,'Tags':['v1']}}");
	r = G(catalog_service(cat, "web", NULL));
	T_EQ(int_at(r, 0, "CreateIndex"), 1);
	T_EQ(int_at(r, 0, "ModifyIndex"), 3);
	/* Node untouched by SkipNodeUpdate, even with another address. */
	OK("{'Op':'register','Node':'n1','Address':'9.9.9.9',"
	   "'SkipNodeUpdate':true}");
	T_EQ(n_changes(), 0);
	T_STREQ(str_at(G(catalog_nodes(cat, NULL)), 0, "Address"), "10.0.0.1");
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.9'}");
	r = G(catalog_nodes(cat, NULL));
	T_EQ(int_at(r, 0, "CreateIndex"), 1);
	T_EQ(int_at(r, 0, "ModifyIndex"), 5);
	T_STREQ(str_at(G(catalog_service(cat, "web", NULL)), 0, "Address"),
	    "10.0.0.9");
	teardown();
}

/* ---- watch indexes and change lists -------------------------------- */

TEST(service_index_moves_only_for_that_service)
{
	setup();
	OK(WEB1);
	OK(DB1);
	T_EQ(ix("service:web"), 1);
	T_EQ(ix("service:db"), 2);
	T_EQ(ix("services"), 2);
	T_ASSERT(changed("service:db"));
	T_ASSERT(!changed("service:web"));
	T_ASSERT(changed("services"));
	T_ASSERT(changed("nodes"));
	T_ASSERT(changed("node:n2"));
	OK("{'Op':'check_update','Node':'n1','CheckID':'service:web-1',"
	   "'Status':'critical','Output':'down'}");
	T_EQ(ix("service:web"), 3);
	T_EQ(ix("service:db"), 2);
	T_EQ(ix("services"), 2);
	T_EQ(ix("nodes"), 2);
	T_EQ(ix("node:n1"), 3);
	T_ASSERT(changed("service:web"));
	T_ASSERT(!changed("service:db"));
	T_ASSERT(!changed("services"));
	/* Names are case-insensitive; unknown names answer at least 1. */
	T_EQ(ix("service:WEB"), 3);
	T_EQ(ix("service:nope"), 1);
	T_EQ(ix("node:nope"), 1);
	teardown();
}

TEST(node_level_checks_move_every_service_on_the_node)
{
	setup();
	OK(WEB1);
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'Service':{'ID':'api','Service':'api'}}");
	OK(DB1);
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'Check':{'CheckID':'serfHealth','Status':'passing'}}");
	T_EQ(ix("service:web"), 4);
	T_EQ(ix("service:api"), 4);
	T_EQ(ix("service:db"), 3);
	/* A node field change shows in every row of its services too. */
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.7'}");
	T_EQ(ix("service:web"), 5);
	T_EQ(ix("service:api"), 5);
	T_EQ(ix("nodes"), 5);
	T_EQ(ix("services"), 3);
	teardown();
}

TEST(check_state_indexes)
{
	setup();
	OK(WEB1);	/* passing */
	T_EQ(ix("checks:passing"), 1);
	T_EQ(ix("checks:critical"), 1);	/* never moved: clamped */
	OK("{'Op':'check_update','Node':'n1','CheckID':'service:web-1',"
	   "'Status':'critical'}");
	T_EQ(ix("checks:passing"), 2);
	T_EQ(ix("checks:critical"), 2);
	T_EQ(ix("checks:warning"), 1);
	T_EQ(ix("checks:any"), 2);
	/* Same status, no output given: nothing moves. */
	OK("{'Op':'check_update','Node':'n1','CheckID':'service:web-1',"
	   "'Status':'critical'}");
	T_EQ(n_changes(), 0);
	OK("{'Op':'check_update','Node':'n1','CheckID':'service:web-1',"
	   "'Status':'critical','Output':'x'}");
	T_EQ(ix("checks:critical"), 4);
	T_EQ(ix("checks:passing"), 2);
	T_STREQ(str_at(G(catalog_checks_in_state(cat, CATALOG_STATE_CRITICAL,
			   NULL)),
		    0, "Output"),
	    "x");
	T_STREQ(js(catalog_checks_in_state(cat, CATALOG_STATE_PASSING, NULL)),
	    "[]");
	REFUSED("{'Op':'check_update','Node':'n1','CheckID':'nope',"
		"'Status':'passing'}",
	    DSC_ENOTFOUND);
	teardown();
}

TEST(removed_names_keep_their_index)
{
	setup();
	OK(WEB1);
	OK(DB1);
	OK("{'Op':'deregister','Node':'n1','ServiceID':'web-1'}");
	/* A watcher at index 1 must wake and see the empty answer. */
	T_EQ(ix("service:web"), 3);
	T_ASSERT(changed("service:web"));
	OK("{'Op':'deregister','Node':'n1'}");
	T_EQ(ix("node:n1"), 4);
	T_EQ(ix("service:web"), 3);
	teardown();
}

TEST(renaming_a_service_moves_both_names)
{
	setup();
	OK(WEB1);
	OK("{'Op':'register','Node':'n1','Address':'10.0.0.1',"
	   "'Service':{'ID':'web-1','Service':'www','Port':80}}");
	T_EQ(ix("service:web"), 2);
	T_EQ(ix("service:www"), 2);
	T_STREQ(js(catalog_service(cat, "web", NULL)), "[]");
	T_EQ(json_array_size(G(catalog_health_service(cat, "www", NULL))), 1);
	/* The check followed its service and shows the new name. */
	T_STREQ(str_at(G(catalog_health_checks(cat, "www")), 0, "ServiceName"),
	    "www");
	teardown();
}

TEST(change_list_is_sorted_and_unique)
{
	struct catalog_changes ch;

	setup();
	OK("{'Op':'register','Node':'n1','Address':'a','Service':"
	   "{'Service':'web'},'Checks':[{'CheckID':'a','ServiceID':'web'},"
	   "{'CheckID':'b','ServiceID':'web'},{'CheckID':'c'}]}");
	catalog_changes(cat, &ch);
	T_ASSERT(!ch.all);
	for (size_t i = 1; i < ch.n; i++)
		T_ASSERT(strcmp(ch.keys[i - 1], ch.keys[i]) < 0);
	T_ASSERT(changed("checks:any"));
	T_ASSERT(changed("checks:critical"));
	T_ASSERT(!changed("checks:passing"));
	T_ASSERT(changed("nodes"));
	T_ASSERT(changed("services"));
	T_ASSERT(changed("service:web"));
	T_ASSERT(changed("node:n1"));
	T_EQ(ch.n, 6);
	teardown();
}

TEST(watch_matches)
{
	T_ASSERT(catalog_watch_matches("service:Web", "service:web"));
	T_ASSERT(!catalog_watch_matches("service:web", "service:webx"));
	T_ASSERT(catalog_watch_matches("kvp:a/", "kv:a/b"));
	T_ASSERT(catalog_watch_matches("kvp:", "kv:x"));
	T_ASSERT(!catalog_watch_matches("kvp:a/", "kv:ab"));
	T_ASSERT(catalog_watch_matches("kv:a", "kv:a"));
	T_ASSERT(!catalog_watch_matches("kv:a", "kv:a/b"));
	T_ASSERT(catalog_watch_matches("nodes", "nodes"));
	T_ASSERT(!catalog_watch_matches("nodes", "node:n1"));
}

TEST(apply_index_must_increase)
{
	struct catalog_result r;
	const char *noop = "{\"Op\":\"noop\"}";

	setup();
	T_EQ(catalog_apply(cat, 0, noop, strlen(noop), &r), DSC_EINVAL);
	T_EQ(catalog_apply(cat, 5, noop, strlen(noop), &r), 0);
	T_EQ(catalog_apply(cat, 5, noop, strlen(noop), &r), DSC_EINVAL);
	T_EQ(catalog_apply(cat, 4, noop, strlen(noop), &r), DSC_EINVAL);
	T_EQ(catalog_applied_index(cat), 5);
	/* Unknown keys answer the applied index; never 0. */
	T_EQ(ix("whatever"), 5);
	teardown();
	cat = catalog_new();
	T_EQ(ix("whatever"), 1);
	T_EQ(ix("services"), 1);
	teardown();
}

/* ---- idempotency --------------------------------------------------- */

TEST(retry_is_applied_once)
{
	const char *put = "{'Op':'kv_cas','ClientID':'agent-a','Seq':1,"
			  "'Key':'k','Value':'YQ==','Cas':0}";

	setup();
	OK(put);
	T_EQ(ix("kv:k"), 1);
	/* A retry after a leader change: same result, not applied again
	 * (were it applied, cas=0 would now fail). */
	OK(put);
	T_EQ(ix("kv:k"), 1);
	T_EQ(n_changes(), 0);
	/* Another client with the same Seq is independent. */
	NOT_OK("{'Op':'kv_cas','ClientID':'agent-b','Seq':1,'Key':'k',"
	       "'Cas':0}");
	NOT_OK("{'Op':'kv_cas','ClientID':'agent-b','Seq':1,'Key':'k',"
	       "'Cas':0}");
	OK("{'Op':'kv_set','ClientID':'agent-a','Seq':2,'Key':'k'}");
	T_EQ(ix("kv:k"), 5);
	/* Older Seq: refused, nothing applied. */
	REFUSED("{'Op':'kv_set','ClientID':'agent-a','Seq':1,'Key':'k'}",
	    DSC_EINVAL);
	T_EQ(ix("kv:k"), 5);
	teardown();
}

TEST(refusals_are_remembered_too)
{
	struct catalog_result r1, r2;
	const char *bad = "{'Op':'register','ClientID':'c','Seq':3,"
			  "'Node':'n 1','Address':'a'}";

	setup();
	r1 = app(bad);
	T_EQ(r1.err.code, DSC_EINVAL);
	OK(WEB1);
	r2 = app(bad);
	T_EQ(r2.err.code, DSC_EINVAL);
	T_STREQ(r1.err.msg, r2.err.msg);
	teardown();
}

TEST(client_table_forgets_least_recently_used)
{
	char cmd[128];

	setup();
	catalog_set_clients_max(cat, 3);
	for (int i = 0; i < 4; i++) {
		snprintf(cmd, sizeof(cmd), "{'Op':'noop','ClientID':'c%d',"
		    "'Seq':1}", i);
		if (i == 3) {
			/* c0 used again (a retry counts): c1 is the oldest. */
			OK("{'Op':'noop','ClientID':'c0','Seq':1}");
		}
		OK(cmd);
	}
	T_EQ(cat->clients.n, 3);
	T_ASSERT(hmap_get(&cat->clients, "c1") == NULL);
	T_ASSERT(hmap_get(&cat->clients, "c0") != NULL);
	/* A forgotten client's retry is applied again. */
	OK("{'Op':'kv_set','ClientID':'c1','Seq':1,'Key':'x'}");
	T_EQ(ix("kv:x"), idx);
	teardown();
}

/* ---- validation ---------------------------------------------------- */

static const char *const invalid[] = {
	"",
	"[]",
	"{",
	"{'Op':'register','Node':'n1','Node':'n2','Address':'a'}",
	"{'Op':'nope'}",
	"{'Node':'n1'}",
	"{'Op':'noop','Seq':1}",
	"{'Op':'noop','ClientID':'c'}",
	"{'Op':'noop','ClientID':'c','Seq':0}",
	"{'Op':'noop','ClientID':'c d','Seq':1}",
	"{'Op':'noop','Extra':1}",
	"{'Op':'register','Address':'a'}",
	"{'Op':'register','Node':'n1'}",
	"{'Op':'register','Node':'n 1','Address':'a'}",
	"{'Op':'register','Node':'n1','Address':'a','ID':'nope'}",
	"{'Op':'register','Node':'n1','Address':'a','NodeMeta':{'k':1}}",
	"{'Op':'register','Node':'n1','Address':'a','NodeMeta':{'a b':'v'}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':{}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Port':65536}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Port':-1}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Port':80.0}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Tags':'v1'}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Weights':{'Passing':0}}}",
	"{'Op':'register','Node':'n1','Address':'a','Service':"
	"{'Service':'web','Unknown':1}}",
	"{'Op':'register','Node':'n1','Address':'a','Check':"
	"{'CheckID':'c','Status':'maintenance'}}",
	"{'Op':'register','Node':'n1','Address':'a','Check':"
	"{'CheckID':'c','Status':'bad'}}",
	"{'Op':'register','Node':'n1','Address':'a','Check':{}}",
	"{'Op':'register','Node':'n1','Address':'a','Check':"
	"{'CheckID':'c','Node':'n2'}}",
	"{'Op':'register','Node':'n1','Address':'a','Checks':"
	"[{'CheckID':'c'},{'CheckID':'c'}]}",
	"{'Op':'register','Node':'n1','Address':'a','Check':"
	"{'CheckID':'c','Definition':{'Interval':''}}}",
	"{'Op':'check_update','Node':'n1','CheckID':'c'}",
	"{'Op':'kv_set','Key':''}",
	"{'Op':'kv_set','Key':'k','Value':'***'}",
	"{'Op':'kv_set','Key':'k','Flags':-1}",
	"{'Op':'kv_cas','Key':'k'}",
	"{'Op':'kv_delete','Key':''}",
	"{'Op':'kv_delete','Key':'k','Cas':0}",
	"{'Op':'kv_delete','Key':'k','Recurse':true,'Cas':3}",
	"{'Op':'reap'}",
};

TEST(invalid_commands_are_refused_and_change_nothing)
{
	char before[65], after[65];
	struct catalog *other;
	struct dsc_err err;

	setup();
	OK(WEB1);
	other = catalog_new();
	T_ASSERT(app_on(other, 1, WEB1).ok);
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		struct catalog_result r, r2;
		const char *s = dq(invalid[i]);

		digest_of(cat, before);
		r = app(invalid[i]);
		if (r.err.code == 0)
			T_FAIL("accepted: %s", invalid[i]);
		T_ASSERT(!r.ok);
		T_EQ(n_changes(), 0);
		/* The server's pre-check says exactly the same. */
		dsc_err_clear(&err);
		T_EQ(catalog_validate(s, strlen(s), &err), r.err.code);
		T_STREQ(err.msg, r.err.msg);
		/* Another replica refuses it identically. */
		r2 = app_on(other, idx, invalid[i]);
		T_EQ(r2.err.code, r.err.code);
		T_STREQ(r2.err.msg, r.err.msg);
		digest_of(cat, after);
		/* Only the applied index moved. */
		cat->applied = idx - 1;
		digest_of(cat, after);
		cat->applied = idx;
		T_STREQ(before, after);
	}
	catalog_free(other);
	teardown();
}

TEST(unknown_check_service_is_refused_atomically)
{
	char before[65], after[65];

	setup();
	OK(WEB1);
	digest_of(cat, before);
	/* The service part is fine, the second check is not: nothing. */
	REFUSED("{'Op':'register','Node':'n1','Address':'10.0.0.5',"
		"'Service':{'Service':'api'},'Checks':[{'CheckID':'x',"
		"'ServiceID':'api'},{'CheckID':'y','ServiceID':'nope'}]}",
	    DSC_EINVAL);
	cat->applied--;
	digest_of(cat, after);
	cat->applied++;
	T_STREQ(before, after);
	REFUSED("{'Op':'register','Node':'n9','SkipNodeUpdate':true,"
		"'Service':{'Service':'api'}}",
	    DSC_EINVAL);
	teardown();
}

TEST(limits_are_enforced)
{
	char *big = malloc(CATALOG_CMD_MAX + 64), tags[4096];
	struct catalog_result r;
	size_t n = 0;

	setup();
	memset(big, ' ', CATALOG_CMD_MAX + 1);
	T_EQ(catalog_apply(cat, ++idx, big, CATALOG_CMD_MAX + 1, &r), 0);
	T_EQ(r.err.code, DSC_ETOOBIG);
	free(big);
	n += (size_t)snprintf(tags, sizeof(tags), "{'Op':'register','Node':"
	    "'n1','Address':'a','Service':{'Service':'w','Tags':[");
	for (int i = 0; i <= CATALOG_TAGS_MAX; i++)
		n += (size_t)snprintf(tags + n, sizeof(tags) - n, "%s't%d'",
		    i ? "," : "", i);
	snprintf(tags + n, sizeof(tags) - n, "]}}");
	REFUSED(tags, DSC_EINVAL);
	teardown();
}

/* ---- health -------------------------------------------------------- */

TEST(health_filters)
{
	struct catalog_filter passing = { .health = CATALOG_HEALTH_PASSING };
	struct catalog_filter dns = { .health =
					  CATALOG_HEALTH_NOT_CRITICAL };
	json_t *rows;

	setup();
	/* n1: passing; n2: warning; n3: critical node check. */
	OK("{'Op':'register','Node':'n1','Address':'a1','Service':"
	   "{'ID':'w','Service':'web'},'Check':{'CheckID':'c','ServiceID':'w',"
	   "'Status':'passing'}}");
	OK("{'Op':'register','Node':'n2','Address':'a2','Service':"
	   "{'ID':'w','Service':'web'},'Check':{'CheckID':'c','ServiceID':'w',"
	   "'Status':'warning'}}");
	OK("{'Op':'register','Node':'n3','Address':'a3','Service':"
	   "{'ID':'w','Service':'web'},'Checks':[{'CheckID':'c','ServiceID':"
	   "'w','Status':'passing'},{'CheckID':'serfHealth','Status':"
	   "'critical'}]}");
	rows = G(catalog_health_service(cat, "web", NULL));
	T_EQ(json_array_size(rows), 3);
	/* The node-level check is in n3's entry, sorted by CheckID. */
	T_EQ(json_array_size(json_object_get(json_array_get(rows, 2),
		 "Checks")),
	    2);
	T_STREQ(catalog_aggregate_status(json_object_get(
		    json_array_get(rows, 2), "Checks")),
	    "critical");
	T_STREQ(catalog_aggregate_status(json_object_get(
		    json_array_get(rows, 1), "Checks")),
	    "warning");
	rows = G(catalog_health_service(cat, "web", &passing));
	T_EQ(json_array_size(rows), 1);
	T_STREQ(json_string_value(json_object_get(json_object_get(
		    json_array_get(rows, 0), "Node"), "Node")),
	    "n1");
	rows = G(catalog_health_service(cat, "web", &dns));
	T_EQ(json_array_size(rows), 2);
	/* Maintenance: a critical check with the reserved id. */
	OK("{'Op':'register','Node':'n1','Address':'a1','Check':{'CheckID':"
	   "'_service_maintenance:w','ServiceID':'w','Status':'critical'}}");
	rows = G(catalog_health_service(cat, "web", NULL));
	T_STREQ(catalog_aggregate_status(json_object_get(
		    json_array_get(rows, 0), "Checks")),
	    "maintenance");
	T_EQ(json_array_size(G(catalog_health_service(cat, "web", &passing))),
	    0);
	T_STREQ(catalog_aggregate_status(G(json_array())), "passing");
	/* No checks at all: passing. */
	OK(DB1);
	T_EQ(json_array_size(G(catalog_health_service(cat, "db", &passing))),
	    1);
	teardown();
}

TEST(tag_and_node_meta_filters)
{
	const char *v1[] = { "V1" }, *both[] = { "v1", "canary" };
	struct catalog_meta rack = { "rack", "r2" };
	struct catalog_filter f1 = { .tags = v1, .n_tags = 1 };
	struct catalog_filter f2 = { .tags = both, .n_tags = 2 };
	struct catalog_filter fm = { .node_meta = &rack, .n_node_meta = 1 };
	json_t *rows;

	setup();
	OK("{'Op':'register','Node':'n1','Address':'a','NodeMeta':{'rack':"
	   "'r1'},'Service':{'Service':'web','Tags':['v1','canary']}}");
	OK("{'Op':'register','Node':'n2','Address':'a','NodeMeta':{'rack':"
	   "'r2'},'Service':{'Service':'Web','Tags':['v1']}}");
	OK("{'Op':'register','Node':'n3','Address':'a','Service':"
	   "{'Service':'web','Tags':['v2']}}");
	T_EQ(json_array_size(G(catalog_service(cat, "web", &f1))), 2);
	T_EQ(json_array_size(G(catalog_service(cat, "WEB", &f2))), 1);
	T_EQ(json_array_size(G(catalog_health_service(cat, "web", &f2))), 1);
	rows = G(catalog_service(cat, "web", &fm));
	T_EQ(json_array_size(rows), 1);
	T_STREQ(str_at(rows, 0, "Node"), "n2");
	T_EQ(json_array_size(G(catalog_nodes(cat, &fm))), 1);
	/* Services keep each registered spelling; tags sorted, unique. */
	T_STREQ(js(catalog_services(cat, NULL)),
	    "{\"Web\":[\"v1\"],\"web\":[\"canary\",\"v1\",\"v2\"]}");
	T_STREQ(js(catalog_services(cat, &fm)), "{\"Web\":[\"v1\"]}");
	/* Rows sorted by node, then service id. */
	rows = G(catalog_service(cat, "web", NULL));
	T_STREQ(str_at(rows, 0, "Node"), "n1");
	T_STREQ(str_at(rows, 2, "Node"), "n3");
	teardown();
}

TEST(health_checks_and_state_lists)
{
	json_t *rows;
	enum catalog_state st;

	setup();
	OK("{'Op':'register','Node':'b','Address':'a','Service':{'ID':'w',"
	   "'Service':'web'},'Checks':[{'CheckID':'z','ServiceID':'w',"
	   "'Status':'passing'},{'CheckID':'serfHealth','Status':"
	   "'passing'}]}");
	OK("{'Op':'register','Node':'a','Address':'a','Service':{'ID':'w',"
	   "'Service':'web'},'Check':{'CheckID':'y','ServiceID':'w'}}");
	rows = G(catalog_health_checks(cat, "web"));
	/* Service checks only, by node then CheckID. */
	T_EQ(json_array_size(rows), 2);
	T_STREQ(str_at(rows, 0, "Node"), "a");
	T_STREQ(str_at(rows, 1, "CheckID"), "z");
	rows = G(catalog_checks_in_state(cat, CATALOG_STATE_ANY, NULL));
	T_EQ(json_array_size(rows), 3);
	T_STREQ(str_at(rows, 1, "CheckID"), "serfHealth");
	T_EQ(catalog_state_parse("warning", &st), 0);
	T_EQ(st, CATALOG_STATE_WARNING);
	T_EQ(catalog_state_parse("maintenance", &st), DSC_EINVAL);
	teardown();
}

/* What catalog_each_node_check() reported, sorted "name=state" lines. */
static char seen[1024];

static bool
collect(void *arg, const char *node, enum catalog_state st)
{
	size_t *left = arg, n = strlen(seen);

	snprintf(seen + n, sizeof(seen) - n, "%s=%d;", node, (int)st);
	return --*left > 0;
}

TEST(check_state_and_node_check_walk)
{
	size_t left;

	setup();
	OK("{'Op':'register','Node':'Alpha','Address':'a','Check':"
	   "{'CheckID':'serfHealth','Status':'passing'}}");
	OK("{'Op':'register','Node':'b','Address':'b','Service':{'ID':'w',"
	   "'Service':'web'},'Check':{'CheckID':'serfHealth','ServiceID':"
	   "'w','Status':'passing'}}");
	OK("{'Op':'register','Node':'c','Address':'c','Check':"
	   "{'CheckID':'other','Status':'passing'}}");
	T_EQ(catalog_check_state(cat, "alpha", "serfHealth"),
	    CATALOG_STATE_PASSING);
	T_EQ(catalog_check_state(cat, "alpha", "serfhealth"),
	    CATALOG_STATE_ANY);
	T_EQ(catalog_check_state(cat, "nobody", "serfHealth"),
	    CATALOG_STATE_ANY);
	T_EQ(catalog_check_state(cat, "b", "serfHealth"),
	    CATALOG_STATE_PASSING);
	OK("{'Op':'check_update','Node':'alpha','CheckID':'serfHealth',"
	   "'Status':'critical'}");
	T_EQ(catalog_check_state(cat, "ALPHA", "serfHealth"),
	    CATALOG_STATE_CRITICAL);
	/* Node-level checks only, with the node's own spelling. */
	seen[0] = '\0';
	left = 10;
	catalog_each_node_check(cat, "serfHealth", collect, &left);
	T_STREQ(seen, "Alpha=3;");
	T_EQ(left, 9);
	OK("{'Op':'register','Node':'c','Address':'c','Check':"
	   "{'CheckID':'serfHealth','Status':'warning'}}");
	left = 1; /* the walk stops when told */
	seen[0] = '\0';
	catalog_each_node_check(cat, "serfHealth", collect, &left);
	T_EQ(left, 0);
	T_ASSERT(strcmp(seen, "Alpha=3;") == 0 || strcmp(seen, "c=2;") == 0);
	/* A removed node is no longer walked. */
	OK("{'Op':'deregister','Node':'alpha'}");
	left = 10;
	seen[0] = '\0';
	catalog_each_node_check(cat, "serfHealth", collect, &left);
	T_STREQ(seen, "c=2;");
	T_EQ(catalog_check_state(cat, "alpha", "serfHealth"),
	    CATALOG_STATE_ANY);
	teardown();
}

/* ---- KV ------------------------------------------------------------ */

TEST(kv_set_get_raw)
{
	const uint8_t *v;
	uint64_t flags;
	size_t n;

	setup();
	OK("{'Op':'kv_set','Key':'cfg/a','Value':'aGVsbG8=','Flags':42}");
	OK("{'Op':'kv_set','Key':'cfg/empty'}");
	T_STREQ(js(catalog_kv_get(cat, "cfg/a", false)),
	    "[{\"CreateIndex\":1,\"Flags\":42,\"Key\":\"cfg/a\","
	    "\"LockIndex\":0,\"ModifyIndex\":1,\"Value\":\"aGVsbG8=\"}]");
	T_ASSERT(catalog_kv_raw(cat, "cfg/a", &v, &n, &flags));
	T_EQ(n, 5);
	T_MEMEQ(v, "hello", 5);
	T_EQ(flags, 42);
	T_STREQ(str_at(G(catalog_kv_get(cat, "cfg/empty", false)), 0, "Key"),
	    "cfg/empty");
	T_ASSERT(json_is_null(json_object_get(json_array_get(
		G(catalog_kv_get(cat, "cfg/empty", false)), 0), "Value")));
	T_STREQ(js(catalog_kv_get(cat, "cfg", false)), "[]");
	T_EQ(json_array_size(G(catalog_kv_get(cat, "cfg", true))), 2);
	T_ASSERT(!catalog_kv_raw(cat, "nope", &v, &n, NULL));
	/* Every set bumps ModifyIndex, even with the same value. */
	OK("{'Op':'kv_set','Key':'cfg/a','Value':'aGVsbG8=','Flags':42}");
	T_EQ(ix("kv:cfg/a"), 3);
	T_EQ(int_at(G(catalog_kv_get(cat, "cfg/a", false)), 0, "CreateIndex"),
	    1);
	teardown();
}

TEST(kv_cas)
{
	setup();
	OK("{'Op':'kv_cas','Key':'k','Cas':0}");	/* create only */
	NOT_OK("{'Op':'kv_cas','Key':'k','Cas':0}");
	T_EQ(n_changes(), 0);
	NOT_OK("{'Op':'kv_cas','Key':'k','Cas':7}");
	OK("{'Op':'kv_cas','Key':'k','Cas':1,'Value':'eA=='}");
	NOT_OK("{'Op':'kv_cas','Key':'k','Cas':1}");
	NOT_OK("{'Op':'kv_cas','Key':'missing','Cas':5}");
	NOT_OK("{'Op':'kv_delete','Key':'k','Cas':1}");
	OK("{'Op':'kv_delete','Key':'k','Cas':4}");
	T_STREQ(js(catalog_kv_get(cat, "k", false)), "[]");
	/* Consul: a CAS delete of a missing key is true. */
	OK("{'Op':'kv_delete','Key':'k','Cas':4}");
	/* A tombstone counts as absent for cas=0. */
	OK("{'Op':'kv_cas','Key':'k','Cas':0}");
	T_EQ(int_at(G(catalog_kv_get(cat, "k", false)), 0, "CreateIndex"),
	    idx);
	teardown();
}

TEST(kv_prefix_index_moves_on_deletes)
{
	setup();
	OK("{'Op':'kv_set','Key':'web/a'}");
	OK("{'Op':'kv_set','Key':'web/b'}");
	OK("{'Op':'kv_set','Key':'db/a'}");
	OK("{'Op':'kv_set','Key':'webx'}");
	T_EQ(ix("kvp:web/"), 2);
	T_EQ(ix("kvp:web"), 4);
	T_EQ(ix("kvp:"), 4);
	T_EQ(ix("kvp:zzz"), 1);
	OK("{'Op':'kv_delete','Key':'web/a'}");
	T_EQ(ix("kvp:web/"), 5);
	T_EQ(ix("kv:web/a"), 5);	/* the tombstone's index */
	T_ASSERT(changed("kv:web/a"));
	T_ASSERT(catalog_watch_matches("kvp:web/", "kv:web/a"));
	OK("{'Op':'kv_delete','Key':'web/','Recurse':true}");
	T_EQ(ix("kvp:web/"), 6);
	T_EQ(ix("kvp:db/"), 3);
	T_ASSERT(changed("kv:web/b"));
	T_ASSERT(!changed("kv:web/a"));	/* already gone */
	T_STREQ(js(catalog_kv_get(cat, "web/", true)), "[]");
	T_EQ(json_array_size(G(catalog_kv_get(cat, "", true))), 2);
	/* Deleting nothing is true and moves nothing. */
	OK("{'Op':'kv_delete','Key':'nope'}");
	T_EQ(n_changes(), 0);
	OK("{'Op':'kv_delete','Key':'','Recurse':true}");
	T_STREQ(js(catalog_kv_keys(cat, "", NULL)), "[]");
	T_EQ(ix("kvp:"), 8);
	teardown();
}

TEST(kv_keys_with_separator)
{
	static const char *const keys[] = { "web/bar", "web/subdir/a",
		"web/subdir/b", "web/subdir/c/d", "web/z", "webx", "a" };
	char cmd[128];

	setup();
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(cmd, sizeof(cmd), "{'Op':'kv_set','Key':'%s'}",
		    keys[i]);
		OK(cmd);
	}
	T_STREQ(js(catalog_kv_keys(cat, "web/", "/")),
	    "[\"web/bar\",\"web/subdir/\",\"web/z\"]");
	T_STREQ(js(catalog_kv_keys(cat, "web", "/")),
	    "[\"web/\",\"webx\"]");
	T_STREQ(js(catalog_kv_keys(cat, "", "/")),
	    "[\"a\",\"web/\",\"webx\"]");
	T_STREQ(js(catalog_kv_keys(cat, "web/s", NULL)),
	    "[\"web/subdir/a\",\"web/subdir/b\",\"web/subdir/c/d\"]");
	T_STREQ(js(catalog_kv_keys(cat, "web/", "dir/")),
	    "[\"web/bar\",\"web/subdir/\",\"web/z\"]");
	T_STREQ(js(catalog_kv_keys(cat, "q", "/")), "[]");
	teardown();
}

TEST(reap_keeps_indexes_from_going_back)
{
	size_t kv_before;

	setup();
	OK("{'Op':'kv_set','Key':'a/1'}");
	OK("{'Op':'kv_set','Key':'a/2'}");
	OK("{'Op':'kv_delete','Key':'a/1'}");	/* 3 */
	OK(WEB1);				/* 4 */
	OK("{'Op':'deregister','Node':'n1'}");	/* 5 */
	OK("{'Op':'kv_delete','Key':'a/2'}");	/* 6 */
	kv_before = cat->kv_n;
	OK("{'Op':'reap','Index':6}");		/* 7: 3 and 5 go, not 6 */
	T_ASSERT(changed("anything"));		/* floors rose: all */
	T_EQ(cat->kv_n, kv_before - 1);
	T_ASSERT(cat_kv_find(cat, "a/1") == NULL);
	T_ASSERT(cat_kv_find(cat, "a/2") != NULL);
	T_ASSERT(hmap_get(&cat->nodes, "n1") == NULL);
	T_ASSERT(hmap_get(&cat->groups, "web") == NULL);
	T_EQ(ix("kv:a/1"), 3);		/* the floor */
	T_EQ(ix("kvp:a/"), 6);
	T_EQ(ix("node:n1"), 5);
	T_EQ(ix("service:web"), 5);
	T_EQ(ix("service:other"), 5);
	OK("{'Op':'reap','Index':100}");
	T_EQ(cat->kv_n, 0);
	T_EQ(ix("kvp:a/"), 6);
	T_EQ(ix("kv:zzz"), 6);
	OK("{'Op':'reap','Index':100}");	/* nothing left to reap */
	T_EQ(n_changes(), 0);
	teardown();
}

/* ---- snapshot, restore, digest ------------------------------------- */

static void
populate(void)
{
	OK(WEB1);
	OK(DB1);
	OK("{'Op':'register','Node':'n3','Address':'10.0.0.3','NodeMeta':"
	   "{'k':'v'},'TaggedAddresses':{'wan':'1.1.1.1'},'Service':{'ID':"
	   "'w3','Service':'web','Tags':['a','b'],'Meta':{'m':'1'},"
	   "'TaggedAddresses':{'lan':{'Address':'x','Port':1}}},'Checks':[{"
	   "'CheckID':'serfHealth','Status':'passing','Output':'ok'},{"
	   "'CheckID':'h','ServiceID':'w3','Definition':{'HTTP':'u'}}]}");
	OK("{'Op':'kv_set','ClientID':'c1','Seq':1,'Key':'a','Value':'AAE='}");
	OK("{'Op':'kv_set','ClientID':'c2','Seq':9,'Key':'b'}");
	OK("{'Op':'kv_delete','Key':'b'}");
	OK("{'Op':'deregister','Node':'n2'}");
	REFUSED("{'Op':'check_update','ClientID':'c1','Seq':2,'Node':'n1',"
		"'CheckID':'nope','Status':'passing'}",
	    DSC_ENOTFOUND);
}

TEST(snapshot_restore_round_trip)
{
	struct buf a = BUF_INIT, b = BUF_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	char d1[65], d2[65];
	struct catalog *r;
	struct catalog_changes ch;

	setup();
	populate();
	T_EQ(catalog_snapshot(cat, &a), 0);
	r = catalog_new();
	T_EQ(catalog_restore(r, a.p, a.len, &err), 0);
	catalog_changes(r, &ch);
	T_ASSERT(ch.all);
	T_EQ(catalog_snapshot(r, &b), 0);
	T_EQ(a.len, b.len);
	T_MEMEQ(a.p, b.p, a.len);
	digest_of(cat, d1);
	digest_of(r, d2);
	T_STREQ(d1, d2);
	/* Reads and indexes agree. */
	T_STREQ(js(catalog_health_service(r, "web", NULL)),
	    js(catalog_health_service(cat, "web", NULL)));
	T_EQ(catalog_index(r, "node:n2"), ix("node:n2"));
	T_EQ(catalog_index(r, "kvp:"), ix("kvp:"));
	/* The client table came along: a retry is still answered. */
	T_EQ(app_on(r, idx + 1, "{'Op':'check_update','ClientID':'c1',"
				"'Seq':2,'Node':'n1','CheckID':'nope',"
				"'Status':'passing'}")
		 .err.code,
	    DSC_ENOTFOUND);
	T_ASSERT(app_on(r, idx + 2, "{'Op':'kv_set','ClientID':'c1','Seq':1,"
				    "'Key':'zz'}")
		     .err.code == DSC_EINVAL);
	/* And both keep applying identically. */
	T_ASSERT(app_on(r, idx + 3, WEB1).ok);
	T_ASSERT(app_on(cat, idx + 3, WEB1).ok);
	buf_release(&a);
	buf_release(&b);
	catalog_free(r);
	teardown();
}

TEST(digest_tells_states_apart)
{
	char d1[65], d2[65], d3[65];

	setup();
	digest_of(cat, d1);
	T_EQ(strlen(d1), 64);
	OK("{'Op':'kv_set','Key':'a'}");
	digest_of(cat, d2);
	T_ASSERT(strcmp(d1, d2) != 0);
	/* Refused: only the applied index moves. */
	REFUSED("{'Op':'check_update','Node':'x','CheckID':'y','Status':"
		"'passing'}",
	    DSC_ENOTFOUND);
	digest_of(cat, d3);
	T_ASSERT(strcmp(d2, d3) != 0);
	teardown();
}

TEST(restore_refuses_damage_and_keeps_state)
{
	struct buf a = BUF_INIT;
	char before[65], after[65];
	struct dsc_err err;

	setup();
	populate();
	T_EQ(catalog_snapshot(cat, &a), 0);
	digest_of(cat, before);
	/* Every truncation is refused. */
	for (size_t n = 0; n < a.len; n++) {
		int rc = catalog_restore(cat, a.p, n, &err);

		T_EQ(rc, DSC_ECORRUPT);
	}
	/* Flipped bytes: refused or accepted, never a crash or a leak. */
	for (size_t i = 0; i < a.len; i++) {
		a.p[i] ^= 0x41;
		(void)catalog_restore(cat, a.p, a.len, &err);
		a.p[i] ^= 0x41;
	}
	T_EQ(catalog_restore(cat, a.p, a.len, &err), 0);
	digest_of(cat, after);
	T_STREQ(before, after);
	/* Trailing garbage is refused. */
	T_EQ(buf_addch(&a, 0), 0);
	T_EQ(catalog_restore(cat, a.p, a.len, &err), DSC_ECORRUPT);
	buf_release(&a);
	teardown();
}

/* ---- determinism over random logs ---------------------------------- */

/* A random but valid-ish command over a small name space. */
static void
random_cmd(struct prng *p, char *out, size_t cap)
{
	static const char *const st[] = { "passing", "warning", "critical" };
	int node = (int)prng_below(p, 6), svc = (int)prng_below(p, 4);
	int kind = (int)prng_below(p, 10);

	switch (kind) {
	case 0:
	case 1:
	case 2:
		snprintf(out, cap, "{'Op':'register','Node':'n%d','Address':"
		    "'10.0.0.%d','Service':{'ID':'s%d','Service':'svc%d',"
		    "'Port':%d,'Tags':['t%d']},'Checks':[{'CheckID':'c%d',"
		    "'ServiceID':'s%d','Status':'%s'},{'CheckID':'serfHealth',"
		    "'Status':'%s'}]}",
		    node, (int)prng_below(p, 3), svc, (int)prng_below(p, 3),
		    (int)prng_below(p, 3), (int)prng_below(p, 2), svc, svc,
		    st[prng_below(p, 3)], st[prng_below(p, 3)]);
		break;
	case 3:
		snprintf(out, cap, "{'Op':'deregister','Node':'n%d',"
		    "'ServiceID':'s%d'}", node, svc);
		break;
	case 4:
		snprintf(out, cap, "{'Op':'deregister','Node':'n%d'}", node);
		break;
	case 5:
		snprintf(out, cap, "{'Op':'check_update','Node':'n%d',"
		    "'CheckID':'c%d','Status':'%s','Output':'o%d'}", node, svc,
		    st[prng_below(p, 3)], (int)prng_below(p, 3));
		break;
	case 6:
		snprintf(out, cap, "{'Op':'kv_set','ClientID':'cl%d','Seq':%d,"
		    "'Key':'k/%d/%d','Value':'YWJj'}", (int)prng_below(p, 3),
		    (int)prng_below(p, 40) + 1, node, svc);
		break;
	case 7:
		snprintf(out, cap, "{'Op':'kv_cas','Key':'k/%d/%d','Cas':%d}",
		    node, svc, (int)prng_below(p, 30));
		break;
	case 8:
		snprintf(out, cap, "{'Op':'kv_delete','Key':'k/%d','Recurse':"
		    "true}", node);
		break;
	default:
		snprintf(out, cap, "{'Op':'reap','Index':%d}",
		    (int)prng_below(p, 200) + 1);
		break;
	}
}

TEST(same_log_same_digest)
{
	struct catalog *b = catalog_new(), *c3 = NULL;
	struct buf snap = BUF_INIT;
	struct dsc_err err;
	char d1[65], d2[65], d3[65], cmd[1024];
	struct prng p;

	setup();
	prng_seed(&p, 20240601);
	for (int i = 1; i <= 600; i++) {
		struct catalog_result r1, r2;

		random_cmd(&p, cmd, sizeof(cmd));
		r1 = app(cmd);
		r2 = app_on(b, idx, cmd);
		T_EQ(r1.ok, r2.ok);
		T_EQ(r1.err.code, r2.err.code);
		if (i == 300) {
			/* A third replica joins from a snapshot. */
			T_EQ(catalog_snapshot(cat, &snap), 0);
			c3 = catalog_new();
			T_EQ(catalog_restore(c3, snap.p, snap.len, &err), 0);
		} else if (i > 300) {
			(void)app_on(c3, idx, cmd);
		}
		if (i % 50 == 0) {
			digest_of(cat, d1);
			digest_of(b, d2);
			T_STREQ(d1, d2);
		}
	}
	digest_of(cat, d1);
	digest_of(c3, d3);
	T_STREQ(d1, d3);
	buf_release(&snap);
	catalog_free(b);
	catalog_free(c3);
	teardown();
}

/* Valid commands with random bytes changed: refused or applied, the
 * same way on two replicas, and never a crash. */
TEST(mutated_commands_agree)
{
	static const char *const seeds[] = { WEB1, DB1,
		"{'Op':'kv_cas','ClientID':'c','Seq':4,'Key':'a/b','Cas':0,"
		"'Value':'AAEC','Flags':7}",
		"{'Op':'register','Node':'n1','Address':'a','NodeMeta':{'k':"
		"'v'},'Checks':[{'CheckID':'x','Definition':{'TCP':'a:1'}}]}",
		"{'Op':'kv_delete','Key':'a/','Recurse':true}" };
	struct catalog *b = catalog_new();
	char d1[65], d2[65], buf[1024];
	struct prng p;

	setup();
	prng_seed(&p, 7);
	for (int i = 0; i < 3000; i++) {
		const char *s = dq(seeds[prng_below(&p, 5)]);
		size_t n = strlen(s);
		struct catalog_result r1, r2;

		memcpy(buf, s, n);
		for (int k = (int)prng_below(&p, 3); k >= 0; k--)
			buf[prng_below(&p, n)] = (char)prng_below(&p, 256);
		idx++;
		T_EQ(catalog_apply(cat, idx, buf, n, &r1), 0);
		T_EQ(catalog_apply(b, idx, buf, n, &r2), 0);
		T_EQ(r1.ok, r2.ok);
		T_EQ(r1.err.code, r2.err.code);
		T_STREQ(r1.err.msg, r2.err.msg);
	}
	digest_of(cat, d1);
	digest_of(b, d2);
	T_STREQ(d1, d2);
	catalog_free(b);
	teardown();
}

/* ---- allocation failures ------------------------------------------- */

/*
 * Applies @sq with the Nth allocation failing, for every N: each attempt
 * either fails with DSC_ENOMEM leaving the digest as it was, or succeeds
 * with the same result and digest as an unfailed apply.
 *
 * jansson's own allocations are kept out of it: its parser does not report
 * every failed allocation (load.c drops lex_save() failures), so under
 * jansson OOM a command may parse wrong. The catalog cannot fix that; the
 * server treats malloc failure as fatal (see catalog.h).
 */
static void
apply_under_failures(const char *sq)
{
	struct buf snap = BUF_INIT;
	struct dsc_err err;
	char before[65], want[65], got[65];
	struct catalog_result want_r, r;
	const char *s;
	int rc;

	T_EQ(catalog_snapshot(cat, &snap), 0);
	digest_of(cat, before);
	want_r = app(sq);
	digest_of(cat, want);
	for (long n = 0;; n++) {
		T_EQ(catalog_restore(cat, snap.p, snap.len, &err), 0);
		s = dq(sq);
		json_set_alloc_funcs(malloc, free);
		dsc_mem_fail_after(n);
		rc = catalog_apply(cat, idx, s, strlen(s), &r);
		dsc_mem_fail_after(-1);
		json_set_alloc_funcs(dsc_malloc, dsc_free);
		digest_of(cat, got);
		if (rc == DSC_ENOMEM) {
			T_STREQ(got, before);
			continue;
		}
		T_EQ(rc, 0);
		if (r.ok != want_r.ok || r.err.code != want_r.err.code)
			T_FAIL("fail after %ld: %s (%s)", n, sq, r.err.msg);
		T_EQ(r.ok, want_r.ok);
		T_EQ(r.err.code, want_r.err.code);
		T_STREQ(got, want);
		break;
	}
	buf_release(&snap);
}

TEST(allocation_failures_are_all_or_nothing)
{
	setup();
	apply_under_failures(WEB1);
	apply_under_failures(DB1);
	apply_under_failures(
	    "{'Op':'register','Node':'n1','Address':'10.0.0.9','NodeMeta':{"
	    "'a':'b'},'Service':{'ID':'web-1','Service':'www','Tags':['x']},"
	    "'Checks':[{'CheckID':'service:web-1','ServiceID':'web-1',"
	    "'Output':'moved'},{'CheckID':'new','Definition':{'a':[1]}}]}");
	apply_under_failures("{'Op':'check_update','ClientID':'c','Seq':1,"
			     "'Node':'n1','CheckID':'new','Status':'passing',"
			     "'Output':'fine'}");
	apply_under_failures("{'Op':'check_update','ClientID':'c','Seq':2,"
			     "'Node':'n1','CheckID':'zz','Status':'passing'}");
	apply_under_failures("{'Op':'kv_set','Key':'a/b','Value':'AAEC'}");
	apply_under_failures("{'Op':'kv_set','Key':'a/c','Value':'AAEC'}");
	apply_under_failures("{'Op':'kv_delete','Key':'a','Recurse':true}");
	apply_under_failures("{'Op':'deregister','Node':'n1','ServiceID':"
			     "'web-1'}");
	apply_under_failures("{'Op':'deregister','Node':'n2'}");
	apply_under_failures("{'Op':'reap','Index':1000}");
	apply_under_failures("{'Op':'register','Node':'bad name'}");
	teardown();
}

TEST(reads_survive_allocation_failures)
{
	struct buf b = BUF_INIT;
	char hex[65];

	setup();
	populate();
	for (long n = 0; n < 400; n++) {
		json_t *j[8];

		dsc_mem_fail_after(n);
		j[0] = catalog_services(cat, NULL);
		j[1] = catalog_service(cat, "web", NULL);
		j[2] = catalog_health_service(cat, "web", NULL);
		j[3] = catalog_nodes(cat, NULL);
		j[4] = catalog_node(cat, "n3");
		j[5] = catalog_checks_in_state(cat, CATALOG_STATE_ANY, NULL);
		j[6] = catalog_kv_get(cat, "", true);
		j[7] = catalog_kv_keys(cat, "", "/");
		(void)catalog_digest(cat, hex);
		(void)catalog_snapshot(cat, &b);
		dsc_mem_fail_after(-1);
		buf_release(&b);
		for (int i = 0; i < 8; i++)
			json_decref(j[i]);
	}
	teardown();
}

TEST(restore_survives_allocation_failures)
{
	struct buf a = BUF_INIT;
	struct dsc_err err;
	char before[65], after[65];
	struct catalog *r = NULL;
	int rc;

	setup();
	populate();
	T_EQ(catalog_snapshot(cat, &a), 0);
	digest_of(cat, before);
	for (long n = 0;; n++) {
		catalog_free(r);
		r = catalog_new();
		dsc_mem_fail_after(n);
		rc = catalog_restore(r, a.p, a.len, &err);
		dsc_mem_fail_after(-1);
		if (rc == 0)
			break;
		T_EQ(rc, DSC_ENOMEM);
		digest_of(r, after);
		T_ASSERT(strcmp(after, before) != 0);
	}
	digest_of(r, after);
	T_STREQ(before, after);
	catalog_free(r);
	buf_release(&a);
	teardown();
}

TEST(result_json)
{
	struct catalog_result r = { .ok = true };

	T_STREQ(js(catalog_result_json(&r)), "{\"ok\":true}");
	r.ok = false;
	T_STREQ(js(catalog_result_json(&r)), "{\"ok\":false}");
	dsc_errorf(&r.err, DSC_EINVAL, "missing node address");
	T_STREQ(js(catalog_result_json(&r)),
	    "{\"code\":\"DSC_EINVAL\",\"error\":\"missing node address\","
	    "\"ok\":false}");
}

T_MAIN()

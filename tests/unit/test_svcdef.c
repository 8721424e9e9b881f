/*
 * test_svcdef.c - service and check definitions: Consul's defaults, key
 * spellings, auto IDs, the catalog form, the checker form, what is refused
 * and with which message, files, and allocation failures.
 */
#include "svcdef.h"

#include <stdio.h>
#include <unistd.h>

#include "catalog.h"
#include "mem.h"
#include "t.h"

/* ---- helpers ------------------------------------------------------- */

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &e);

	if (v == NULL)
		T_FAIL("bad test JSON: %s: %s", e.text, text);
	return v;
}

/* Decodes a service that must be accepted. */
#define SVC_OK(text, s)                                                        \
	do {                                                                   \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		json_t *j_ = J(text);                                          \
		int rc_ = svcdef_service(j_, (s), &e_);                        \
		json_decref(j_);                                               \
		if (rc_ != 0)                                                  \
			T_FAIL("refused: %s", e_.msg);                         \
	} while (0)

/* Decodes a service that must be refused with a message containing @m. */
#define SVC_ERR(text, m)                                                       \
	do {                                                                   \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		struct svc_def s_ = { 0 };                                     \
		json_t *j_ = J(text);                                          \
		int rc_ = svcdef_service(j_, &s_, &e_);                        \
		json_decref(j_);                                               \
		T_EQ(rc_, DSC_EINVAL);                                         \
		T_ASSERT(s_.catalog == NULL);                                  \
		if (strstr(e_.msg, (m)) == NULL)                               \
			T_FAIL("message '%s' lacks '%s'", e_.msg, (m));        \
	} while (0)

#define CHECK_ERR(text, m)                                                     \
	do {                                                                   \
		struct dsc_err e_ = DSC_ERR_INIT;                              \
		struct svc_check c_ = { 0 };                                   \
		json_t *j_ = J(text);                                          \
		int rc_ = svcdef_check(j_, &c_, &e_);                          \
		json_decref(j_);                                               \
		T_EQ(rc_, DSC_EINVAL);                                         \
		T_ASSERT(c_.catalog == NULL);                                  \
		if (strstr(e_.msg, (m)) == NULL)                               \
			T_FAIL("message '%s' lacks '%s'", e_.msg, (m));        \
	} while (0)

/* @v serialised with sorted keys equals @want. */
#define JSON_IS(v, want)                                                       \
	do {                                                                   \
		char *s_ = json_dumps((v), JSON_SORT_KEYS | JSON_COMPACT);     \
		T_ASSERT(s_ != NULL);                                          \
		if (strcmp(s_, (want)) != 0) {                                 \
			fprintf(stderr, "got:  %s\nwant: %s\n", s_, (want));   \
			free(s_);                                              \
			T_FAIL("JSON differs");                                \
		}                                                              \
		free(s_);                                                      \
	} while (0)

/* The catalog accepts a registration built from @s: proves the keys are
 * exactly the ones catalog.register wants. */
static void
catalog_accepts(const struct svc_def *s)
{
	struct dsc_err e = DSC_ERR_INIT;
	json_t *cmd, *checks = json_array();
	char *text;

	for (size_t i = 0; i < s->n_checks; i++)
		json_array_append(checks, s->checks[i].catalog);
	cmd = json_pack("{s:s, s:s, s:s, s:O, s:o}", "Op", "register", "Node",
	    "n1", "Address", "127.0.0.1", "Service", s->catalog, "Checks",
	    checks);
	text = json_dumps(cmd, JSON_SORT_KEYS | JSON_COMPACT);
	if (catalog_validate(text, strlen(text), &e) != 0)
		T_FAIL("catalog refuses %s: %s", text, e.msg);
	free(text);
	json_decref(cmd);
}

static void
setup(void)
{
	dsc_mem_fail_after(-1);
}

/* ---- services ------------------------------------------------------ */

TEST(service_defaults_are_consuls)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"Name\":\"web\"}", &s);
	T_STREQ(s.id, "web");
	T_STREQ(s.name, "web");
	T_EQ(s.n_checks, 0);
	JSON_IS(s.catalog,
	    "{\"Address\":\"\",\"EnableTagOverride\":false,\"ID\":\"web\","
	    "\"Meta\":{},\"Port\":0,\"Service\":\"web\",\"Tags\":[],"
	    "\"Weights\":{\"Passing\":1,\"Warning\":1}}");
	catalog_accepts(&s);
	svc_def_release(&s);
	T_ASSERT(s.catalog == NULL && s.id == NULL);
	svc_def_release(&s);
}

TEST(service_keys_any_case_and_snake_case)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"name\":\"web\",\"id\":\"web-1\",\"tags\":[\"v1\",\"b\"],"
	       "\"address\":\"10.0.0.5\",\"port\":8080,\"meta\":"
	       "{\"Version\":\"1.2\"},\"enable_tag_override\":true,"
	       "\"weights\":{\"passing\":10,\"warning\":2},"
	       "\"tagged_addresses\":{\"lan\":{\"address\":\"10.0.0.5\","
	       "\"port\":80}},\"Kind\":\"\",\"Unknown\":[1,2],"
	       "\"connect\":{\"native\":true}}",
	    &s);
	T_STREQ(s.id, "web-1");
	JSON_IS(s.catalog,
	    "{\"Address\":\"10.0.0.5\",\"EnableTagOverride\":true,"
	    "\"ID\":\"web-1\",\"Meta\":{\"Version\":\"1.2\"},\"Port\":8080,"
	    "\"Service\":\"web\",\"TaggedAddresses\":{\"lan\":"
	    "{\"Address\":\"10.0.0.5\",\"Port\":80}},"
	    "\"Tags\":[\"v1\",\"b\"],\"Weights\":{\"Passing\":10,\"Warning\":2}"
	    "}");
	catalog_accepts(&s);
	svc_def_release(&s);
}

TEST(service_refusals_name_the_field)
{
	setup();
	SVC_ERR("{}", "missing service name");
	SVC_ERR("{\"Name\":\"\"}", "missing service name");
	SVC_ERR("[]", "must be a JSON object");
	SVC_ERR("{\"Name\":7}", "invalid 'Name': want a string");
	SVC_ERR("{\"Name\":\"a\\u0001b\"}", "control character");
	SVC_ERR("{\"Name\":\"web\",\"Port\":-1}", "invalid 'Port'");
	SVC_ERR("{\"Name\":\"web\",\"Port\":65536}", "0..65535");
	SVC_ERR("{\"Name\":\"web\",\"Port\":\"80\"}", "invalid 'Port'");
	SVC_ERR("{\"Name\":\"web\",\"Port\":80.5}", "invalid 'Port'");
	SVC_ERR("{\"Name\":\"web\",\"name\":\"x\"}", "duplicate key");
	SVC_ERR("{\"Name\":\"web\",\"Tags\":\"v1\"}", "invalid 'Tags'");
	SVC_ERR("{\"Name\":\"web\",\"Tags\":[1]}", "invalid 'Tags'");
	SVC_ERR("{\"Name\":\"web\",\"Meta\":{\"k\":1}}", "invalid 'Meta'");
	SVC_ERR("{\"Name\":\"web\",\"Weights\":{\"Passing\":0}}",
	    "invalid 'Weights'");
	SVC_ERR(
	    "{\"Name\":\"web\",\"EnableTagOverride\":1}", "want true or false");
	SVC_ERR("{\"Name\":\"web\",\"Checks\":{}}", "invalid 'Checks'");
	SVC_ERR("{\"Name\":\"web\",\"Check\":{\"TTL\":\"1x\"}}",
	    "service 'web': check: invalid 'TTL': invalid duration '1x'");
}

TEST(service_name_length_is_bounded)
{
	char text[CATALOG_NAME_MAX + 64];

	setup();
	snprintf(
	    text, sizeof(text), "{\"Name\":\"%0*d\"}", CATALOG_NAME_MAX + 1, 0);
	SVC_ERR(text, "longer than");
}

/* ---- checks in a service ------------------------------------------- */

TEST(single_check_gets_service_id_and_default_name)
{
	struct svc_def s;
	const struct svc_check *c;

	setup();
	SVC_OK(
	    "{\"Name\":\"web\",\"ID\":\"web-1\",\"Check\":{\"TTL\":\"30s\"}}",
	    &s);
	T_EQ(s.n_checks, 1);
	c = &s.checks[0];
	T_STREQ(c->id, "service:web-1");
	T_STREQ(c->name, "Service 'web' check");
	T_STREQ(c->service_id, "web-1");
	T_EQ(c->def.kind, CHECK_TTL);
	T_EQ(c->def.ttl_ms, 30000);
	T_STREQ(c->def.initial_status, "critical");
	JSON_IS(c->catalog,
	    "{\"CheckID\":\"service:web-1\",\"Definition\":"
	    "{\"DeregisterCriticalServiceAfter\":\"0s\",\"Interval\":\"0s\","
	    "\"Timeout\":\"0s\"},\"Name\":\"Service 'web' check\","
	    "\"Notes\":\"\",\"ServiceID\":\"web-1\",\"Status\":\"critical\","
	    "\"Type\":\"ttl\"}");
	catalog_accepts(&s);
	svc_def_release(&s);
}

TEST(several_checks_are_numbered_from_one)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"Name\":\"web\",\"Check\":{\"TTL\":\"1m\"},"
	       "\"checks\":[{\"tcp\":\"127.0.0.1:80\",\"interval\":\"5s\"},"
	       "{\"id\":\"web-hb\",\"ttl\":\"30s\",\"status\":\"passing\"}]}",
	    &s);
	T_EQ(s.n_checks, 3);
	T_STREQ(s.checks[0].id, "service:web:1");
	T_STREQ(s.checks[1].id, "service:web:2");
	T_STREQ(s.checks[2].id, "web-hb");
	T_STREQ(s.checks[2].def.initial_status, "passing");
	T_EQ(s.checks[1].def.kind, CHECK_TCP);
	T_STREQ(s.checks[1].def.tcp, "127.0.0.1:80");
	T_EQ(s.checks[1].def.interval_ms, 5000);
	T_EQ(s.checks[1].def.timeout_ms, SVCDEF_TIMEOUT_MS_DEFAULT);
	catalog_accepts(&s);
	svc_def_release(&s);
}

TEST(http_check_full)
{
	struct svc_def s;
	const struct check_def *d;

	setup();
	SVC_OK("{\"Name\":\"web\",\"Check\":{\"HTTP\":\"http://127.0.0.1/h\","
	       "\"Method\":\"POST\",\"Header\":{\"X-A\":[\"1\",\"2\"],"
	       "\"X-B\":\"3\"},\"Body\":\"{}\",\"tls_skip_verify\":true,"
	       "\"Interval\":\"10s\",\"Timeout\":\"1s\","
	       "\"DeregisterCriticalServiceAfter\":\"90m\","
	       "\"success_before_passing\":2,\"failures_before_critical\":3,"
	       "\"FailuresBeforeWarning\":1,\"OutputMaxSize\":100}}",
	    &s);
	d = &s.checks[0].def;
	T_EQ(d->kind, CHECK_HTTP);
	T_STREQ(d->http, "http://127.0.0.1/h");
	T_STREQ(d->method, "POST");
	T_STREQ(d->body, "{}");
	T_EQ(d->n_headers, 3);
	T_STREQ(d->headers[0], "X-A: 1");
	T_STREQ(d->headers[1], "X-A: 2");
	T_STREQ(d->headers[2], "X-B: 3");
	T_ASSERT(d->tls_skip_verify);
	T_EQ(d->interval_ms, 10000);
	T_EQ(d->timeout_ms, 1000);
	T_EQ(d->success_before_passing, 2);
	T_EQ(d->failures_before_critical, 3);
	T_EQ(d->failures_before_warning, 1);
	T_EQ(d->output_max, 100);
	T_EQ(s.checks[0].deregister_after_ms, 90 * 60 * 1000);
	JSON_IS(json_object_get(s.checks[0].catalog, "Definition"),
	    "{\"Body\":\"{}\",\"DeregisterCriticalServiceAfter\":\"1h30m0s\","
	    "\"HTTP\":\"http://127.0.0.1/h\",\"Header\":{\"X-A\":[\"1\",\"2\"],"
	    "\"X-B\":[\"3\"]},\"Interval\":\"10s\",\"Method\":\"POST\","
	    "\"TLSSkipVerify\":true,\"Timeout\":\"1s\"}");
	T_STREQ(
	    json_string_value(json_object_get(s.checks[0].catalog, "Interval")),
	    "10s");
	T_STREQ(json_string_value(json_object_get(s.checks[0].catalog, "Type")),
	    "http");
	catalog_accepts(&s);
	svc_def_release(&s);
}

TEST(script_args_and_script_and_nanoseconds)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"Name\":\"a\",\"Checks\":[{\"Args\":[\"/bin/true\",\"x\"],"
	       "\"Interval\":10000000000},{\"ScriptArgs\":[\"/bin/false\"],"
	       "\"Interval\":\"1m30s\"},{\"script\":\"exit 1\","
	       "\"interval\":\"500ms\"}]}",
	    &s);
	T_EQ(s.checks[0].def.kind, CHECK_SCRIPT);
	T_EQ(s.checks[0].def.n_args, 2);
	T_STREQ(s.checks[0].def.args[0], "/bin/true");
	T_STREQ(s.checks[0].def.args[1], "x");
	T_ASSERT(s.checks[0].def.args[2] == NULL);
	T_EQ(s.checks[0].def.interval_ms, 10000);
	T_EQ(s.checks[1].def.n_args, 1);
	T_EQ(s.checks[1].def.interval_ms, 90000);
	T_EQ(s.checks[2].def.n_args, 3);
	T_STREQ(s.checks[2].def.args[0], "/bin/sh");
	T_STREQ(s.checks[2].def.args[1], "-c");
	T_STREQ(s.checks[2].def.args[2], "exit 1");
	/* Consul's floor: intervals below a second run every second. */
	T_EQ(s.checks[2].def.interval_ms, SVCDEF_INTERVAL_MIN_MS);
	catalog_accepts(&s);
	svc_def_release(&s);
}

TEST(empty_strings_are_zero_values)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\",\"Interval\":\"\","
	       "\"Timeout\":\"\",\"HTTP\":\"\",\"TCP\":\"\",\"Script\":\"\","
	       "\"DeregisterCriticalServiceAfter\":\"\",\"GRPC\":\"\"}}",
	    &s);
	T_EQ(s.checks[0].def.kind, CHECK_TTL);
	T_EQ(s.checks[0].deregister_after_ms, 0);
	svc_def_release(&s);
}

TEST(deregister_after_has_consuls_floor)
{
	struct svc_def s;

	setup();
	SVC_OK("{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\","
	       "\"DeregisterCriticalServiceAfter\":\"10s\"}}",
	    &s);
	T_EQ(s.checks[0].deregister_after_ms, SVCDEF_DEREG_MIN_MS);
	svc_def_release(&s);
}

TEST(check_refusals_name_the_field)
{
	setup();
	SVC_ERR("{\"Name\":\"w\",\"Check\":{}}", "needs one of");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"0s\"}}", "needs one of");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"HTTP\":\"http://x/\"}}",
	    "'Interval' is required");
	SVC_ERR(
	    "{\"Name\":\"w\",\"Check\":{\"TTL\":\"1s\",\"Interval\":\"1s\"}}",
	    "cannot both");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"1s\",\"TCP\":\"a:1\"}}",
	    "more than one");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"-1s\"}}", "negative");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":-1}}", "negative");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"9000h\"}}",
	    "longer than 366 days");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":1.5}}", "invalid 'TTL'");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"GRPC\":\"x:1\","
	        "\"Interval\":\"1s\"}}",
	    "gRPC checks are not supported");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"UDP\":\"x:1\","
	        "\"Interval\":\"1s\"}}",
	    "UDP checks are not supported");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"docker_container_id\":\"c\","
	        "\"Args\":[\"a\"],\"Interval\":\"1s\"}}",
	    "Docker");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TCP\":\"nohost\","
	        "\"Interval\":\"1s\"}}",
	    "want host:port");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"HTTP\":\"ftp://x\","
	        "\"Interval\":\"1s\"}}",
	    "http:// or https://");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"1s\","
	        "\"Status\":\"maintenance\"}}",
	    "invalid 'Status'");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"HTTP\":\"http://x/\","
	        "\"Interval\":\"1s\",\"Header\":{\"A\":[\"x\\r\\nB: y\"]}}}",
	    "invalid 'Header'");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"HTTP\":\"http://x/\","
	        "\"Interval\":\"1s\",\"Method\":\"GET /x\"}}",
	    "invalid 'Method'");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"Args\":[\"a\"],\"ScriptArgs\":"
	        "[\"b\"],\"Interval\":\"1s\"}}",
	    "not both");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"1s\","
	        "\"SuccessBeforePassing\":-1}}",
	    "invalid 'SuccessBeforePassing'");
	SVC_ERR("{\"Name\":\"w\",\"Check\":{\"TTL\":\"1s\","
	        "\"OutputMaxSize\":0}}",
	    "invalid 'OutputMaxSize'");
	SVC_ERR("{\"Name\":\"w\",\"Checks\":[{\"TTL\":\"1s\",\"ID\":\"a\"},"
	        "{\"TTL\":\"1s\",\"ID\":\"a\"}]}",
	    "duplicate check ID 'a'");
}

TEST(too_many_args_and_checks)
{
	json_t *args = json_array(), *checks = json_array(), *reg;
	struct dsc_err e = DSC_ERR_INIT;
	struct svc_def s = { 0 };

	setup();
	for (int i = 0; i < CHECK_ARGS_MAX; i++)
		json_array_append_new(args, json_string("a"));
	reg = json_pack("{s:s, s:{s:o, s:s}}", "Name", "w", "Check", "Args",
	    args, "Interval", "1s");
	T_EQ(svcdef_service(reg, &s, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "more than") != NULL);
	json_decref(reg);
	for (int i = 0; i <= SVCDEF_CHECKS_MAX; i++)
		json_array_append_new(checks, json_pack("{s:s}", "TTL", "1s"));
	reg = json_pack("{s:s, s:o}", "Name", "w", "Checks", checks);
	T_EQ(svcdef_service(reg, &s, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "more than 64 checks") != NULL);
	json_decref(reg);
}

/* ---- check registrations ------------------------------------------- */

TEST(check_registration_needs_a_name_and_takes_id_aliases)
{
	struct dsc_err e = DSC_ERR_INIT;
	struct svc_check c;
	json_t *j;

	setup();
	CHECK_ERR("{\"TTL\":\"10s\"}", "missing check 'Name'");
	j = J("{\"Name\":\"mem\",\"TTL\":\"10s\",\"Notes\":\"n\"}");
	T_EQ(svcdef_check(j, &c, &e), 0);
	json_decref(j);
	T_STREQ(c.id, "mem");
	T_STREQ(c.service_id, "");
	T_STREQ(json_string_value(json_object_get(c.catalog, "Notes")), "n");
	svc_check_release(&c);
	j = J("{\"name\":\"mem\",\"id\":\"m1\",\"service_id\":\"web\","
	      "\"ttl\":\"10s\"}");
	T_EQ(svcdef_check(j, &c, &e), 0);
	json_decref(j);
	T_STREQ(c.id, "m1");
	T_STREQ(c.service_id, "web");
	svc_check_release(&c);
	j = J("{\"Name\":\"mem\",\"CheckID\":\"c1\",\"ID\":\"ignored\","
	      "\"TTL\":\"10s\"}");
	T_EQ(svcdef_check(j, &c, &e), 0);
	json_decref(j);
	T_STREQ(c.id, "c1");
	svc_check_release(&c);
	svc_check_release(&c);
}

/* ---- files --------------------------------------------------------- */

static char *
write_tmp(const char *text)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/test_svcdef.XXXXXX");
	T_ASSERT((fd = mkstemp(path)) >= 0);
	T_ASSERT((f = fdopen(fd, "w")) != NULL);
	fputs(text, f);
	fclose(f);
	return path;
}

TEST(file_with_services_and_node_checks)
{
	struct dsc_err e = DSC_ERR_INIT;
	struct svcdef_file f;
	char *path;

	setup();
	path =
	    write_tmp("{\"services\":[{\"name\":\"a\"},{\"name\":\"b\","
	              "\"port\":1,\"check\":{\"ttl\":\"5s\"}}],"
	              "\"service\":{\"name\":\"c\"},"
	              "\"checks\":[{\"name\":\"disk\",\"args\":[\"/bin/true\"],"
	              "\"interval\":\"30s\"}],\"log_level\":\"debug\"}");
	T_EQ(svcdef_file_load(path, &f, &e), 0);
	unlink(path);
	T_EQ(f.n_services, 3);
	T_STREQ(f.services[0].id, "c");
	T_STREQ(f.services[1].id, "a");
	T_STREQ(f.services[2].id, "b");
	T_STREQ(f.services[2].checks[0].id, "service:b");
	T_EQ(f.n_checks, 1);
	T_STREQ(f.checks[0].id, "disk");
	T_STREQ(f.checks[0].service_id, "");
	svcdef_file_release(&f);
	svcdef_file_release(&f);
}

TEST(file_errors_name_the_file_and_position)
{
	struct dsc_err e = DSC_ERR_INIT;
	struct svcdef_file f = { 0 };
	char want[128], *path;

	setup();
	path = write_tmp("{\"service\": {\n  \"name\": \"a\",\n  port: 1}}\n");
	T_EQ(svcdef_file_load(path, &f, &e), DSC_EINVAL);
	snprintf(want, sizeof(want), "%s:3:6: ", path);
	if (strncmp(e.msg, want, strlen(want)) != 0)
		T_FAIL("'%s' does not start with '%s'", e.msg, want);
	unlink(path);

	path = write_tmp("{\"service\":{\"name\":\"a\",\"port\":-5}}");
	T_EQ(svcdef_file_load(path, &f, &e), DSC_EINVAL);
	snprintf(want, sizeof(want), "%s: service 'a': invalid 'Port'", path);
	if (strncmp(e.msg, want, strlen(want)) != 0)
		T_FAIL("'%s' does not start with '%s'", e.msg, want);
	unlink(path);

	path = write_tmp("{\"services\":[{\"name\":\"a\"},{\"name\":\"a\"}]}");
	T_EQ(svcdef_file_load(path, &f, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "duplicate service ID 'a'") != NULL);
	unlink(path);

	path = write_tmp("{\"service\":{\"name\":\"a\"},\"service\":{}}");
	T_EQ(svcdef_file_load(path, &f, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "duplicate") != NULL);
	unlink(path);

	path = write_tmp("[1]");
	T_EQ(svcdef_file_load(path, &f, &e), DSC_EINVAL);
	T_ASSERT(strstr(e.msg, "must be a JSON object") != NULL);
	unlink(path);

	T_EQ(svcdef_file_load("/nonexistent/x.json", &f, &e), DSC_EIO);
	T_ASSERT(strstr(e.msg, "'/nonexistent/x.json'") != NULL);
	T_EQ(svcdef_file_load("/tmp", &f, &e), DSC_EINVAL);
	T_ASSERT(f.services == NULL && f.checks == NULL);
}

/* ---- allocation failures ------------------------------------------- */

TEST(every_allocation_failure_is_clean)
{
	static const char *text =
	    "{\"services\":[{\"name\":\"b\",\"checks\":[{\"ttl\":\"5s\"},"
	    "{\"http\":\"http://h/\",\"interval\":\"1s\"}]}],"
	    "\"check\":{\"name\":\"n\",\"tcp\":\"h:1\",\"interval\":\"1s\"}}";
	json_t *root = J(text);
	bool ok = false;

	for (long n = 0; n < 1000 && !ok; n++) {
		struct dsc_err e = DSC_ERR_INIT;
		struct svcdef_file f = { 0 };
		int rc;

		dsc_mem_fail_after(n);
		rc = svcdef_file_json(root, "t.json", &f, &e);
		dsc_mem_fail_after(-1);
		if (rc == 0) {
			T_EQ(f.n_services, 1);
			T_EQ(f.services[0].n_checks, 2);
			ok = true;
		} else {
			T_EQ(rc, DSC_ENOMEM);
			T_ASSERT(f.services == NULL);
		}
		svcdef_file_release(&f);
	}
	T_ASSERT(ok);
	json_decref(root);
}

T_MAIN()

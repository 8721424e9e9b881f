/*
 * dsc-register - register and deregister services, feed TTL checks, set
 * maintenance mode: one JSON-RPC call to the local agent (agent.*), or with
 * --server to the servers' catalog directly (catalog.*), where checks are
 * recorded but nobody runs them. Every definition is decoded and checked
 * here first (svcdef.h, the agent's own decoder), so a bad one is refused
 * before anything is sent. A write returns once the cluster committed it.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "catalog.h"
#include "cli.h"
#include "svcdef.h"

#define PROG "dsc-register"
#define USAGE                                                                  \
	"usage: dsc-register [options] NAME --port PORT [--id ID] "            \
	"[--address ADDR]\n"                                                   \
	"           [--tag TAG]... [--meta KEY=VALUE]...\n"                    \
	"           [--check-http URL | --check-tcp ADDR:PORT | "              \
	"--check-ttl DUR |\n"                                                  \
	"            --check-script CMD] [--interval DUR] [--timeout DUR]\n"   \
	"       dsc-register [options] --file DEFINITION.json\n"               \
	"       dsc-register [options] --deregister ID\n"                      \
	"       dsc-register [options] pass|warn|fail CHECK_ID [--note "       \
	"TEXT]\n"                                                              \
	"       dsc-register [options] maintenance on|off [ID] "               \
	"[--reason TEXT]\n"
#define HELP                                                                   \
	USAGE                                                                  \
	"Registers services with the local agent, which runs their checks "    \
	"and\n"                                                                \
	"returns once the cluster committed the change. With --server the\n"   \
	"catalog is written directly: checks are then recorded, not run.\n"    \
	"  --port PORT           the service's port (1-65535)\n"               \
	"  --id ID               instance id (default NAME)\n"                 \
	"  --address ADDR        the service's address (default the node's)\n" \
	"  --tag TAG             a tag (repeatable)\n"                         \
	"  --meta KEY=VALUE      a metadata pair (repeatable)\n"               \
	"  --check-http URL      check: HTTP GET, 2xx passing, 429 warning\n"  \
	"  --check-tcp ADDR:PORT check: a TCP connect\n"                       \
	"  --check-ttl DUR       check: critical unless fed within DUR\n"      \
	"  --check-script CMD    check: /bin/sh -c CMD, exit 0 passing, 1 "    \
	"warning\n"                                                            \
	"                        (agent only)\n"                               \
	"  --interval DUR        how often the check runs (default 10s)\n"     \
	"  --timeout DUR         bound on one check run (default 10s)\n"       \
	"  --file FILE           register the services of a definition file\n" \
	"  --deregister ID       remove the service instance ID\n"             \
	"  --note TEXT           output recorded with pass, warn or fail\n"    \
	"  --reason TEXT         why maintenance mode is on\n"                 \
	"  --node NAME           node to write, with --server (default the "   \
	"host name)\n" CLI_COMMON_HELP

#define INTERVAL_DEFAULT "10s"
#define NODE_MAX         CATALOG_NAME_MAX

enum {
	OPT_PORT = CLI_OPT_FIRST_FREE,
	OPT_ID,
	OPT_ADDRESS,
	OPT_TAG,
	OPT_META,
	OPT_HTTP,
	OPT_TCP,
	OPT_TTL,
	OPT_SCRIPT,
	OPT_INTERVAL,
	OPT_TIMEOUT,
	OPT_FILE,
	OPT_DEREGISTER,
	OPT_NOTE,
	OPT_REASON,
	OPT_NODE,
};

static const struct option longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "port", required_argument, NULL, OPT_PORT },
	{ "id", required_argument, NULL, OPT_ID },
	{ "address", required_argument, NULL, OPT_ADDRESS },
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "meta", required_argument, NULL, OPT_META },
	{ "check-http", required_argument, NULL, OPT_HTTP },
	{ "check-tcp", required_argument, NULL, OPT_TCP },
	{ "check-ttl", required_argument, NULL, OPT_TTL },
	{ "check-script", required_argument, NULL, OPT_SCRIPT },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "deregister", required_argument, NULL, OPT_DEREGISTER },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "reason", required_argument, NULL, OPT_REASON },
	{ "node", required_argument, NULL, OPT_NODE },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	struct cli cli;
	json_t *reg;   /* the ServiceRegistration the flags describe */
	json_t *check; /* its Check, when a --check-* was given */
	const char *check_opt, *interval, *timeout, *file, *deregister;
	const char *note, *reason, *node;
	bool service_flags;
	char node_buf[NODE_MAX + 1];
};

static struct cli *cli; /* for the helpers' messages */

static void
set(json_t *o, const char *key, json_t *v)
{
	if (v == NULL || json_object_set_new(o, key, v) != 0)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
}

static void
add_to(json_t *o, const char *key, json_t *v)
{
	json_t *a = json_object_get(o, key);

	if (a == NULL)
		set(o, key, a = json_array());
	if (v == NULL || json_array_append_new(a, v) != 0)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
}

static void
check_kind(struct opts *o, const char *opt, const char *key, const char *v)
{
	if (o->check_opt != NULL)
		cli_usage(cli, "can't combine %s and %s", o->check_opt, opt);
	o->check_opt = opt;
	o->check = json_object();
	if (o->check == NULL)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
	set(o->check, key, json_string(v));
}

static void
service_opt(struct opts *o, int ch, const char *arg)
{
	struct dsc_err err = DSC_ERR_INIT;
	unsigned port;
	const char *eq;

	o->service_flags = true;
	switch (ch) {
	case OPT_PORT:
		if (cli_parse_port(arg, &port, &err) != 0)
			cli_usage(cli, "--port: %s", dsc_err_msg(&err));
		set(o->reg, "Port", json_integer(port));
		break;
	case OPT_ID:
		set(o->reg, "ID", json_string(arg));
		break;
	case OPT_ADDRESS:
		set(o->reg, "Address", json_string(arg));
		break;
	case OPT_TAG:
		add_to(o->reg, "Tags", json_string(arg));
		break;
	case OPT_META:
		if ((eq = strchr(arg, '=')) == NULL || eq == arg)
			cli_usage(
			    cli, "invalid --meta '%s': want KEY=VALUE", arg);
		if (json_object_get(o->reg, "Meta") == NULL)
			set(o->reg, "Meta", json_object());
		if (json_object_setn_new(json_object_get(o->reg, "Meta"), arg,
		        (size_t)(eq - arg), json_string(eq + 1)) != 0)
			cli_usage(cli, "invalid --meta '%s'", arg);
		break;
	case OPT_HTTP:
		check_kind(o, "--check-http", "HTTP", arg);
		break;
	case OPT_TCP:
		check_kind(o, "--check-tcp", "TCP", arg);
		break;
	case OPT_TTL:
		if (cli_parse_dur(arg, &err) != 0)
			cli_usage(cli, "--check-ttl: %s", dsc_err_msg(&err));
		check_kind(o, "--check-ttl", "TTL", arg);
		break;
	case OPT_SCRIPT:
		check_kind(o, "--check-script", "Script", arg);
		break;
	case OPT_INTERVAL:
	case OPT_TIMEOUT:
		if (cli_parse_dur(arg, &err) != 0)
			cli_usage(cli, "%s: %s",
			    ch == OPT_INTERVAL ? "--interval" : "--timeout",
			    dsc_err_msg(&err));
		*(ch == OPT_INTERVAL ? &o->interval : &o->timeout) = arg;
		break;
	}
}

/* Writes the node name for --server: --node, else the host name. */
static void
pick_node(struct opts *o)
{
	if (o->node != NULL) {
		if (o->node[0] == '\0' || strlen(o->node) > NODE_MAX)
			cli_usage(cli, "invalid --node '%s'", o->node);
		return;
	}
	if (gethostname(o->node_buf, sizeof(o->node_buf)) != 0 ||
	    o->node_buf[0] == '\0')
		cli_fatal(cli, DSC_EINVAL,
		    "unable to learn the host name: give --node");
	o->node_buf[NODE_MAX] = '\0';
	o->node = o->node_buf;
}

/* One call: a write, numbered for exactly-once retries when it goes to
 * the catalog; the agent's methods are idempotent as they are. */
static void
call(struct opts *o, struct rpcc *r, const char *method, json_t *params)
{
	struct dsc_err err = DSC_ERR_INIT;
	json_t *res = NULL;

	if (params == NULL)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
	if (cli_call(&o->cli, r, method, params,
	        o->cli.n_servers > 0 ? RPCC_WRITE : 0, &res, NULL, &err) != 0)
		cli_die(&o->cli, &err);
	json_decref(res);
	json_decref(params);
}

/* catalog.register of one decoded service and its checks (--server). */
static json_t *
catalog_reg(struct opts *o, const struct svc_def *s)
{
	const char *addr =
	    json_string_value(json_object_get(s->catalog, "Address"));
	json_t *p = json_pack("{s:s, s:b, s:O}", "Node", o->node,
	    "SkipNodeUpdate", 1, "Service", s->catalog);

	if (p == NULL)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
	/* Used only when the node is new: an existing node keeps its own. */
	if (addr != NULL && addr[0] != '\0')
		set(p, "Address", json_string(addr));
	for (size_t i = 0; i < s->n_checks; i++)
		add_to(p, "Checks", json_incref(s->checks[i].catalog));
	return p;
}

/* Registers each service of @regs (borrowed ServiceRegistrations). */
static void
register_all(struct opts *o, struct rpcc *r, json_t *const *regs, size_t n,
    const struct svc_def *defs)
{
	for (size_t i = 0; i < n; i++) {
		if (o->cli.n_servers > 0)
			call(
			    o, r, "catalog.register", catalog_reg(o, &defs[i]));
		else
			call(o, r, "agent.service_register",
			    json_incref(regs[i]));
	}
}

/* The ServiceRegistrations of a definition file's @root, as written. */
static size_t
file_regs(json_t *root, json_t **regs, size_t max)
{
	const char *key;
	json_t *v, *e;
	size_t n = 0, i;

	json_object_foreach(root, key, v)
	{
		if (strcasecmp(key, "service") == 0 && n < max)
			regs[n++] = v;
		if (strcasecmp(key, "services") != 0)
			continue;
		json_array_foreach(v, i, e)
		{
			if (n < max)
				regs[n++] = e;
		}
	}
	return n;
}

static void
run_file(struct opts *o, struct rpcc **r)
{
	static json_t *regs[SVCDEF_FILE_ENTRIES_MAX];
	struct dsc_err err = DSC_ERR_INIT;
	struct svcdef_file f = { 0 };
	json_error_t jerr;
	struct stat st;
	json_t *root;
	size_t n;

	if (stat(o->file, &st) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size > SVCDEF_FILE_MAX)
		cli_fatal(cli, DSC_EINVAL, "%s: larger than %d bytes", o->file,
		    SVCDEF_FILE_MAX);
	root = json_load_file(o->file, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL && jerr.line < 0)
		cli_fatal(cli, DSC_EINVAL, "%s: %s", o->file, jerr.text);
	if (root == NULL)
		cli_fatal(cli, DSC_EINVAL, "%s:%d:%d: %s", o->file, jerr.line,
		    jerr.column, jerr.text);
	if (svcdef_file_json(root, o->file, &f, &err) != 0)
		cli_die(cli, &err);
	if (f.n_checks > 0)
		cli_fatal(cli, DSC_EINVAL,
		    "%s: top-level checks are not supported; put them in a "
		    "service",
		    o->file);
	n = file_regs(root, regs, SVCDEF_FILE_ENTRIES_MAX);
	if (n != f.n_services || n == 0)
		cli_fatal(
		    cli, DSC_EINVAL, "%s: no service definition", o->file);
	if (o->cli.n_servers > 0)
		pick_node(o);
	*r = cli_connect(&o->cli);
	register_all(o, *r, regs, n, f.services);
	svcdef_file_release(&f);
	json_decref(root);
}

static void
run_register(struct opts *o, struct rpcc **r)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct svc_def def = { 0 };

	if (json_object_get(o->reg, "Port") == NULL)
		cli_usage(cli, "missing --port");
	if ((o->interval || o->timeout) &&
	    (o->check == NULL || json_object_get(o->check, "TTL") != NULL))
		cli_usage(cli,
		    "--interval and --timeout need --check-http, --check-tcp "
		    "or --check-script");
	if (o->check != NULL && json_object_get(o->check, "TTL") == NULL)
		set(o->check, "Interval",
		    json_string(o->interval ? o->interval : INTERVAL_DEFAULT));
	if (o->timeout != NULL)
		set(o->check, "Timeout", json_string(o->timeout));
	if (o->check != NULL)
		set(o->reg, "Check", o->check);
	o->check = NULL;
	if (svcdef_service(o->reg, &def, &err) != 0)
		cli_fatal(cli, DSC_EUSAGE, "%s", dsc_err_msg(&err));
	if (o->cli.n_servers > 0)
		pick_node(o);
	*r = cli_connect(&o->cli);
	register_all(o, *r, &o->reg, 1, &def);
	svc_def_release(&def);
}

static const char *
check_status(const char *verb)
{
	static const char *const map[][2] = { { "pass", "passing" },
		{ "warn", "warning" }, { "fail", "critical" } };

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(verb, map[i][0]) == 0)
			return map[i][1];
	return NULL;
}

/* Maintenance through the catalog: Consul's critical check (catalog.h). */
static void
maint_catalog(struct opts *o, struct rpcc *r, bool on, const char *sid)
{
	char id[CATALOG_ID_MAX + 1];

	if (sid != NULL &&
	    snprintf(id, sizeof(id), "_service_maintenance:%s", sid) >=
	        (int)sizeof(id))
		cli_usage(cli, "service id '%s' too long", sid);
	if (!on) {
		call(o, r, "catalog.deregister",
		    json_pack("{s:s, s:s}", "Node", o->node, "CheckID",
		        sid ? id : "_node_maintenance"));
		return;
	}
	call(o, r, "catalog.register",
	    json_pack("{s:s, s:b, s:{s:s, s:s, s:s, s:s, s:s}}", "Node",
	        o->node, "SkipNodeUpdate", 1, "Check", "CheckID",
	        sid ? id : "_node_maintenance", "Name",
	        sid ? "Service Maintenance Mode" : "Node Maintenance Mode",
	        "Status", "critical", "Notes", o->reason ? o->reason : "",
	        "ServiceID", sid ? sid : ""));
}

static void
run_verb(struct opts *o, struct rpcc **r, int argc, char **argv)
{
	const char *status = check_status(argv[0]), *sid;
	bool srv = o->cli.n_servers > 0, on;

	if (o->service_flags || o->file || o->deregister)
		cli_usage(cli, "'%s' takes no service options", argv[0]);
	if (status != NULL) {
		if (argc != 2)
			cli_usage(
			    cli, "usage: %s CHECK_ID [--note TEXT]", argv[0]);
		if (o->reason)
			cli_usage(cli, "--reason goes with maintenance");
		if (srv)
			pick_node(o);
		*r = cli_connect(&o->cli);
		call(o, *r, srv ? "catalog.check_update" : "agent.check_update",
		    json_pack("{s:s, s:s, s:s, s:s*}", "CheckID", argv[1],
		        "Status", status, "Output", o->note ? o->note : "",
		        "Node", srv ? o->node : NULL));
		return;
	}
	if (argc < 2 || argc > 3 ||
	    (strcmp(argv[1], "on") != 0 && strcmp(argv[1], "off") != 0))
		cli_usage(
		    cli, "usage: maintenance on|off [ID] [--reason TEXT]");
	if (o->note)
		cli_usage(cli, "--note goes with pass, warn or fail");
	on = strcmp(argv[1], "on") == 0;
	sid = argc == 3 ? argv[2] : NULL;
	if (srv) {
		pick_node(o);
		*r = cli_connect(&o->cli);
		maint_catalog(o, *r, on, sid);
		return;
	}
	*r = cli_connect(&o->cli);
	call(o, *r, "agent.maintenance",
	    json_pack("{s:b, s:s, s:s*}", "Enable", on, "Reason",
	        o->reason ? o->reason : "", "ServiceID", sid));
}

int
main(int argc, char *argv[])
{
	struct opts o = { .reg = json_object() };
	struct rpcc *r = NULL;
	int ch, nargs;

	cli = &o.cli;
	cli_init(cli, PROG, HELP);
	if (o.reg == NULL)
		cli_fatal(cli, DSC_ENOMEM, "out of memory");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":" CLI_COMMON_SHORTOPTS, longopts,
	            NULL)) != -1) {
		if (cli_option(cli, ch, optarg, argc, argv))
			continue;
		switch (ch) {
		case OPT_FILE:
			o.file = optarg;
			break;
		case OPT_DEREGISTER:
			o.deregister = optarg;
			break;
		case OPT_NOTE:
			o.note = optarg;
			break;
		case OPT_REASON:
			o.reason = optarg;
			break;
		case OPT_NODE:
			o.node = optarg;
			break;
		default:
			service_opt(&o, ch, optarg);
		}
	}
	cli_finish(cli);
	nargs = argc - optind;
	argv += optind;
	if (o.node != NULL && cli->n_servers == 0)
		cli_usage(cli, "--node goes with --server");
	if (nargs > 0 &&
	    (check_status(argv[0]) != NULL ||
	        strcmp(argv[0], "maintenance") == 0)) {
		run_verb(&o, &r, nargs, argv);
	} else if (o.file != NULL || o.deregister != NULL) {
		if (nargs > 0 || o.service_flags || o.note || o.reason ||
		    (o.file && o.deregister))
			cli_usage(cli, "%s takes no other arguments",
			    o.file ? "--file" : "--deregister");
		if (o.file != NULL) {
			run_file(&o, &r);
		} else {
			if (cli->n_servers > 0)
				pick_node(&o);
			r = cli_connect(cli);
			call(&o, r,
			    cli->n_servers ? "catalog.deregister"
			                   : "agent.service_deregister",
			    cli->n_servers
			        ? json_pack("{s:s, s:s}", "Node", o.node,
			              "ServiceID", o.deregister)
			        : json_pack(
			              "{s:s}", "ServiceID", o.deregister));
		}
	} else {
		if (nargs == 0)
			cli_usage(cli, "missing service NAME");
		if (nargs > 1)
			cli_usage(cli, "unexpected argument '%s'", argv[1]);
		if (o.note || o.reason)
			cli_usage(cli,
			    "--note and --reason go with check "
			    "updates and maintenance");
		if (o.check != NULL && cli->n_servers > 0 &&
		    json_object_get(o.check, "Script") != NULL)
			cli_usage(cli,
			    "--check-script needs the agent, not "
			    "--server");
		set(o.reg, "Name", json_string(argv[0]));
		run_register(&o, &r);
	}
	rpcc_free(r);
	json_decref(o.reg);
	json_decref(o.check);
	return 0;
}

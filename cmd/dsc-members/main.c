/*
 * dsc-members - the servers and agents of the cluster, like `consul
 * members` (status.members), the Raft peers (--raft, status.peers), and a
 * one-line health verdict for cron and monitoring (--check). --check asks
 * the leader itself ("Leader": true), the one server that knows which
 * voters are reachable; when no leader answers within -t there is none.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cli.h"

#define PROG "dsc-members"
#define USAGE                                                                  \
	"usage: dsc-members [options] [--raft] [--format table|json]\n"        \
	"       dsc-members [options] --check\n"
#define HELP                                                                   \
	USAGE                                                                  \
	"Lists the servers, then the agents' nodes: Node, Address, Status,\n"  \
	"Type, Build, DC.\n"                                                   \
	"  --raft                the Raft peers: State, Voter, Term, "         \
	"LastIndex\n"                                                          \
	"  --format FORMAT       table (default) or json\n"                    \
	"  --check               one line; exit 0 when a leader exists and "   \
	"every\n"                                                              \
	"                        voter is reachable, 1 when degraded but "     \
	"with\n"                                                               \
	"                        quorum, 3 when there is no leader or "        \
	"quorum\n" CLI_COMMON_HELP

enum {
	OPT_RAFT = CLI_OPT_FIRST_FREE,
	OPT_FORMAT,
	OPT_CHECK,
};

static const struct option longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "raft", no_argument, NULL, OPT_RAFT },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ NULL, 0, NULL, 0 },
};

#define MEMBERS_COLS 6
#define PEERS_COLS   7
/* Rows a table may have: more members than this is hostile. */
#define ROWS_MAX     100000
/* Bytes of one cell; a longer value is cut. */
#define CELL_MAX     512

struct opts {
	struct cli cli;
	bool raft, json, check;
};

static const char *
str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "";
}

static json_t *
call(const struct opts *o, struct rpcc *r, const char *method, bool leader)
{
	struct dsc_err err = DSC_ERR_INIT;
	json_t *res = NULL,
	       *p = leader ? json_pack("{s:b}", "Leader", 1) : json_object();

	if (p == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	if (cli_call(&o->cli, r, method, p, 0, &res, NULL, &err) != 0)
		cli_die(&o->cli, &err);
	json_decref(p);
	return res;
}

static int
servers_first(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a;
	const json_t *y = *(const json_t *const *)b;
	int sx = strcmp(str(x, "Type"), "server") == 0;
	int sy = strcmp(str(y, "Type"), "server") == 0;

	return sx != sy ? sy - sx : strcasecmp(str(x, "Name"), str(y, "Name"));
}

/* Prints @rows rows of @ncols cells, each row a strdup'ed string array. */
static void
print_table(const struct opts *o, char **cells, size_t rows, size_t ncols)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf out = BUF_INIT;

	if (cli_table(&out, (const char *const *)cells, rows, ncols) != 0)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	if (cli_write(stdout, &out, &err) != 0)
		cli_die(&o->cli, &err);
	buf_release(&out);
	for (size_t i = 0; i < rows * ncols; i++)
		free(cells[i]);
	free(cells);
}

static char **
table_new(const struct opts *o, size_t rows, size_t ncols)
{
	char **cells;

	if (rows > ROWS_MAX ||
	    (cells = calloc(rows * ncols, sizeof(*cells))) == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	return cells;
}

static void cell(const struct opts *o, char **slot, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cell(const struct opts *o, char **slot, const char *fmt, ...)
{
	char text[CELL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if ((*slot = strdup(text)) == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
}

/* Prints @v as one JSON line, then drops @res. */
static int
print_json(const struct opts *o, const json_t *v, json_t *res)
{
	struct buf out = BUF_INIT;
	struct dsc_err err = DSC_ERR_INIT;

	if (cli_json_line(&out, v) != 0)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	if (cli_write(stdout, &out, &err) != 0)
		cli_die(&o->cli, &err);
	buf_release(&out);
	json_decref(res);
	return DSC_EXIT_OK;
}

static int
members(const struct opts *o, struct rpcc *r)
{
	static const char *const head[MEMBERS_COLS] = { "Node", "Address",
		"Status", "Type", "Build", "DC" };
	json_t *res = call(o, r, "status.members", false);
	json_t *list = json_object_get(res, "members");
	size_t n = json_array_size(list);
	const json_t **m;
	char **cells;

	if (!json_is_array(list))
		cli_fatal(&o->cli, DSC_EPROTO, "status.members: no members");
	if (o->json)
		return print_json(o, list, res);
	cells = table_new(o, n + 1, MEMBERS_COLS);
	if ((m = calloc(n + 1, sizeof(*m))) == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		m[i] = json_array_get(list, i);
	qsort(m, n, sizeof(*m), servers_first);
	for (size_t k = 0; k < MEMBERS_COLS; k++)
		cell(o, &cells[k], "%s", head[k]);
	for (size_t i = 0; i < n; i++) {
		char **row = cells + (i + 1) * MEMBERS_COLS;
		json_int_t port =
		    json_integer_value(json_object_get(m[i], "Port"));

		cell(o, &row[0], "%s", str(m[i], "Name"));
		if (port > 0)
			cell(o, &row[1],
			    strchr(str(m[i], "Addr"), ':') ? "[%s]:%lld"
			                                   : "%s:%lld",
			    str(m[i], "Addr"), (long long)port);
		else
			cell(o, &row[1], "%s", str(m[i], "Addr"));
		cell(o, &row[2], "%s", str(m[i], "Status"));
		cell(o, &row[3], "%s", str(m[i], "Type"));
		cell(o, &row[4], "%s", str(m[i], "Build"));
		cell(o, &row[5], "%s", str(m[i], "DC"));
	}
	free(m);
	print_table(o, cells, n + 1, MEMBERS_COLS);
	json_decref(res);
	return DSC_EXIT_OK;
}

static int
peers(const struct opts *o, struct rpcc *r)
{
	static const char *const head[PEERS_COLS] = { "Node", "ID", "Address",
		"State", "Voter", "Term", "LastIndex" };
	json_t *res = call(o, r, "status.peers", false);
	json_t *list = json_object_get(res, "peers"), *p, *match;
	json_int_t term = json_integer_value(json_object_get(res, "term"));
	size_t n = json_array_size(list), i;
	char **cells;

	if (!json_is_array(list))
		cli_fatal(&o->cli, DSC_EPROTO, "status.peers: no peers");
	if (o->json)
		return print_json(o, res, res);
	cells = table_new(o, n + 1, PEERS_COLS);
	for (size_t k = 0; k < PEERS_COLS; k++)
		cell(o, &cells[k], "%s", head[k]);
	json_array_foreach(list, i, p)
	{
		char **row = cells + (i + 1) * PEERS_COLS;

		cell(o, &row[0], "%s", str(p, "name"));
		cell(o, &row[1], "%s", str(p, "id"));
		cell(o, &row[2], "%s", str(p, "addr"));
		cell(o, &row[3], "%s",
		    json_is_true(json_object_get(p, "leader")) ? "leader"
		                                               : "follower");
		cell(o, &row[4], "%s",
		    strcmp(str(p, "suffrage"), "voter") == 0 ? "true"
		                                             : "false");
		cell(o, &row[5], "%lld", (long long)term);
		/* Only the leader knows each peer's log ("match"). */
		match = json_object_get(p, "match");
		if (json_is_integer(match))
			cell(o, &row[6], "%lld",
			    (long long)json_integer_value(match));
		else
			cell(o, &row[6], "-");
	}
	print_table(o, cells, n + 1, PEERS_COLS);
	json_decref(res);
	return DSC_EXIT_OK;
}

static int
check(const struct opts *o, struct rpcc *r)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct rpcc_meta meta = { 0 };
	struct buf down = BUF_INIT;
	json_t *res = NULL, *p, *list;
	const char *leader = "";
	size_t voters = 0, up = 0, i;
	json_t *params = json_pack("{s:b}", "Leader", 1);
	int rc, status;

	if (params == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	rc = cli_call(&o->cli, r, "status.peers", params, 0, &res, &meta, &err);
	json_decref(params);
	/* Nobody answered: the agent or server is down, not the cluster. */
	if (rc != 0 &&
	    (meta.server == NULL || dsc_exit_class(rc) != DSC_EXIT_TEMP))
		cli_die(&o->cli, &err);
	if (rc != 0) {
		printf("no leader: %s\n", dsc_err_msg(&err));
		return DSC_EXIT_TEMP;
	}
	list = json_object_get(res, "peers");
	json_array_foreach(list, i, p)
	{
		bool reach = json_is_true(json_object_get(p, "reachable"));

		if (json_is_true(json_object_get(p, "leader")))
			leader = str(p, "name");
		if (strcmp(str(p, "suffrage"), "voter") != 0)
			continue;
		voters++;
		if (reach)
			up++;
		else if (buf_addf(&down, "%s%s", down.len ? "," : "",
		             str(p, "name")) != 0)
			cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	}
	status = voters > 0 && up == voters ? DSC_EXIT_OK
	    : up * 2 > voters               ? DSC_EXIT_NO
	                                    : DSC_EXIT_TEMP;
	printf("%s: leader %s, %zu of %zu voters reachable%s%s\n",
	    status == DSC_EXIT_OK       ? "ok"
	        : status == DSC_EXIT_NO ? "degraded"
	                                : "no quorum",
	    leader[0] ? leader : "?", up, voters,
	    down.len ? "; unreachable: " : "", down.len ? (char *)down.p : "");
	buf_release(&down);
	json_decref(res);
	if (fflush(stdout) != 0)
		cli_fatal(&o->cli, DSC_EIO, "unable to write output");
	return status;
}

int
main(int argc, char *argv[])
{
	struct opts o = { .json = false };
	struct rpcc *r;
	int ch, rc;

	cli_init(&o.cli, PROG, HELP);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":" CLI_COMMON_SHORTOPTS, longopts,
	            NULL)) != -1) {
		if (cli_option(&o.cli, ch, optarg, argc, argv))
			continue;
		switch (ch) {
		case OPT_RAFT:
			o.raft = true;
			break;
		case OPT_CHECK:
			o.check = true;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "table") != 0)
				cli_usage(&o.cli,
				    "invalid --format '%s': want "
				    "table or json",
				    optarg);
			o.json = strcmp(optarg, "json") == 0;
			break;
		default:
			cli_usage(
			    &o.cli, "unknown option '%s'", argv[optind - 1]);
		}
	}
	cli_finish(&o.cli);
	if (optind < argc)
		cli_usage(&o.cli, "unexpected argument '%s'", argv[optind]);
	if (o.check && (o.raft || o.json))
		cli_usage(
		    &o.cli, "can't combine --check with --raft or --format");
	r = cli_connect(&o.cli);
	rc = o.check ? check(&o, r) : o.raft ? peers(&o, r) : members(&o, r);
	rpcc_free(r);
	return rc;
}

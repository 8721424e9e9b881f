/*
 * dsc-lookup - print the instances of a service, one per line, for
 * $(dsc-lookup web) in scripts: health.service through the local agent (or
 * --server), formatted by cli_fmt_instances(). Nothing printed means exit
 * 1, with the reason on stderr unless -q. --wait is a blocking query: the
 * first answer gives the index, and calls with that index block until the
 * answer changes or -t runs out.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "catalog.h"
#include "cli.h"

#define PROG "dsc-lookup"
#define USAGE                                                                  \
	"usage: dsc-lookup [options] [--tag TAG]... [--all] [--one] "          \
	"[--wait] [--stale]\n"                                                 \
	"                  [--format addr|json|srv|env] NAME\n"                \
	"       dsc-lookup [options] --list [--format addr|json]\n"
#define HELP                                                                   \
	USAGE                                                                  \
	"Prints the healthy instances of service NAME, one ADDRESS:PORT per\n" \
	"line; exits 1 when the service is unknown or nothing is healthy.\n"   \
	"  --tag TAG             only instances with this tag (repeatable: "   \
	"all)\n"                                                               \
	"  --all                 unhealthy instances too, with a status "      \
	"column\n"                                                             \
	"  --one                 one instance chosen at random\n"              \
	"  --format FORMAT       addr (ADDRESS:PORT), json (an array of "      \
	"objects),\n"                                                          \
	"                        srv (priority weight port target),\n"         \
	"                        env (NAME_ADDR=... lines for eval)\n"         \
	"  --wait                block until the answer changes (bounded by "  \
	"-t)\n"                                                                \
	"  --stale               let any server answer, even a lagging one\n"  \
	"  -l, --list            every service name, a tab, its "              \
	"tags\n" CLI_COMMON_HELP

enum {
	OPT_TAG = CLI_OPT_FIRST_FREE,
	OPT_ALL,
	OPT_ONE,
	OPT_FORMAT,
	OPT_WAIT,
	OPT_STALE,
};

static const struct option longopts[] = {
	CLI_COMMON_LONGOPTS,
	{ "tag", required_argument, NULL, OPT_TAG },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "one", no_argument, NULL, OPT_ONE },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "wait", no_argument, NULL, OPT_WAIT },
	{ "stale", no_argument, NULL, OPT_STALE },
	{ "list", no_argument, NULL, 'l' },
	{ NULL, 0, NULL, 0 },
};

/* Below this much of -t left, a blocking call is not worth starting. */
#define WAIT_MIN_MS 20

struct opts {
	struct cli cli;
	const char *name;
	json_t *tags;
	int fmt;
	bool all, one, wait, stale, list;
};

static json_t *
query(const struct opts *o, bool passing)
{
	json_t *p =
	    json_pack("{s:s, s:b}", "Service", o->name, "Passing", passing);

	if (p != NULL && json_array_size(o->tags) > 0 &&
	    json_object_set(p, "Tags", o->tags) != 0) {
		json_decref(p);
		p = NULL;
	}
	if (p != NULL && o->stale &&
	    json_object_set_new(p, "consistency", json_string("stale")) != 0) {
		json_decref(p);
		p = NULL;
	}
	if (p == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	return p;
}

/* Calls @method with @params (taken); returns the result's @key. */
static json_t *
call(const struct opts *o, struct rpcc *r, const char *method, json_t *params,
    const char *key, uint64_t *index)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct rpcc_meta meta;
	json_t *res = NULL, *v;

	if (cli_call(&o->cli, r, method, params, 0, &res, &meta, &err) != 0)
		cli_die(&o->cli, &err);
	json_decref(params);
	v = json_incref(json_object_get(res, key));
	json_decref(res);
	if (v == NULL)
		cli_fatal(&o->cli, DSC_EPROTO, "%s: no '%s' in the answer",
		    method, key);
	if (index != NULL)
		*index = meta.index;
	return v;
}

static void
format(const struct opts *o, const json_t *inst, struct buf *out)
{
	struct dsc_err err = DSC_ERR_INIT;

	buf_clear(out);
	if (cli_fmt_instances(
	        out, inst, o->name, (enum cli_fmt)o->fmt, o->all, &err) != 0)
		cli_die(&o->cli, &err);
}

/* Blocks until the formatted answer differs from @out (then replaces
 * @inst and @out) or -t runs out (exit 3). */
static void
wait_change(const struct opts *o, struct rpcc *r, json_t **inst, uint64_t index,
    struct buf *out)
{
	struct buf now = BUF_INIT;
	uint64_t left;
	json_t *p, *next;

	while ((left = cli_remaining_ms(&o->cli)) >= WAIT_MIN_MS) {
		p = query(o, !o->all);
		/* The server adds up to wait/16 of jitter: stay within -t. */
		if (json_object_set_new(
		        p, "index", json_integer((json_int_t)index)) ||
		    json_object_set_new(
		        p, "wait", json_integer((json_int_t)(left * 16 / 17))))
			cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
		next = call(o, r, "health.service", p, "instances", &index);
		format(o, next, &now);
		if (now.len != out->len ||
		    memcmp(now.p, out->p, now.len) != 0) {
			json_decref(*inst);
			*inst = next;
			buf_release(out);
			*out = now;
			return;
		}
		json_decref(next);
	}
	buf_release(&now);
	cli_fatal(&o->cli, DSC_ETIMEDOUT,
	    "service '%s' did not change within %llu ms", o->name,
	    (unsigned long long)o->cli.timeout_ms);
}

/* Why nothing was printed: unknown, or nothing healthy. */
static void
explain(const struct opts *o, struct rpcc *r)
{
	size_t total = 0;
	json_t *all;

	if (o->cli.quiet)
		return;
	if (!o->all) {
		all = call(
		    o, r, "health.service", query(o, false), "instances", NULL);
		total = json_array_size(all);
		json_decref(all);
	}
	if (total > 0)
		cli_note(&o->cli,
		    "no healthy instance of service '%s' (%zu "
		    "not passing)",
		    o->name, total);
	else if (json_array_size(o->tags) > 0)
		cli_note(&o->cli,
		    "no instance of service '%s' has every tag "
		    "given",
		    o->name);
	else
		cli_note(&o->cli, "unknown service '%s'", o->name);
}

static int
lookup(const struct opts *o, struct rpcc *r)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf out = BUF_INIT;
	uint64_t index;
	json_t *inst, *one;
	size_t n;

	inst = call(
	    o, r, "health.service", query(o, !o->all), "instances", &index);
	if (o->wait) {
		format(o, inst, &out);
		wait_change(o, r, &inst, index, &out);
	}
	if ((n = json_array_size(inst)) == 0) {
		explain(o, r);
		json_decref(inst);
		buf_release(&out);
		return DSC_EXIT_NO;
	}
	if (o->one) {
		one = json_pack("[O]",
		    json_array_get(inst, randombytes_uniform((uint32_t)n)));
		if (one == NULL)
			cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
		json_decref(inst);
		inst = one;
	}
	format(o, inst, &out);
	json_decref(inst);
	if (cli_write(stdout, &out, &err) != 0)
		cli_die(&o->cli, &err);
	buf_release(&out);
	return DSC_EXIT_OK;
}

static int
by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
list(const struct opts *o, struct rpcc *r)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf out = BUF_INIT;
	json_t *svcs = call(o, r, "catalog.services",
	    o->stale ? json_pack("{s:s}", "consistency", "stale")
	             : json_object(),
	    "services", NULL);
	const char **names;
	size_t n = json_object_size(svcs), i = 0, k;
	const char *name;
	json_t *tags, *t;
	int rc = 0;

	if ((names = calloc(n + 1, sizeof(*names))) == NULL)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	json_object_foreach(svcs, name, tags)
	{
		names[i++] = name;
	}
	qsort(names, n, sizeof(*names), by_name);
	if (o->fmt == CLI_FMT_JSON)
		rc = cli_json_line(&out, svcs);
	for (i = 0; rc == 0 && o->fmt != CLI_FMT_JSON && i < n; i++) {
		rc = buf_addstr(&out, names[i]);
		tags = json_object_get(svcs, names[i]);
		json_array_foreach(tags, k, t)
		{
			if (rc == 0 && json_is_string(t))
				rc = buf_addf(&out, "%c%s", k == 0 ? '\t' : ',',
				    json_string_value(t));
		}
		if (rc == 0)
			rc = buf_addch(&out, '\n');
	}
	if (rc != 0)
		cli_fatal(&o->cli, DSC_ENOMEM, "out of memory");
	if (cli_write(stdout, &out, &err) != 0)
		cli_die(&o->cli, &err);
	if (n == 0)
		cli_note(&o->cli, "no services registered");
	free(names);
	buf_release(&out);
	json_decref(svcs);
	return n > 0 ? DSC_EXIT_OK : DSC_EXIT_NO;
}

int
main(int argc, char *argv[])
{
	struct opts o = { .tags = json_array() };
	struct rpcc *r;
	int ch, rc;

	cli_init(&o.cli, PROG, HELP);
	if (o.tags == NULL)
		cli_fatal(&o.cli, DSC_ENOMEM, "out of memory");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l" CLI_COMMON_SHORTOPTS,
	            longopts, NULL)) != -1) {
		if (cli_option(&o.cli, ch, optarg, argc, argv))
			continue;
		switch (ch) {
		case OPT_TAG:
			if (json_array_append_new(o.tags, json_string(optarg)))
				cli_fatal(&o.cli, DSC_ENOMEM, "out of memory");
			break;
		case OPT_FORMAT:
			if ((o.fmt = cli_fmt_parse(optarg)) < 0)
				cli_usage(&o.cli,
				    "invalid --format '%s': want "
				    "addr, json, srv or env",
				    optarg);
			break;
		case OPT_ALL:
		case OPT_ONE:
		case OPT_WAIT:
		case OPT_STALE:
		case 'l':
			*(ch == OPT_ALL          ? &o.all
			        : ch == OPT_ONE  ? &o.one
			        : ch == OPT_WAIT ? &o.wait
			        : ch == 'l'      ? &o.list
			                         : &o.stale) = true;
			break;
		default:
			cli_usage(
			    &o.cli, "unknown option '%s'", argv[optind - 1]);
		}
	}
	cli_finish(&o.cli);
	if (o.list &&
	    (optind < argc || o.all || o.one || o.wait ||
	        json_array_size(o.tags) > 0))
		cli_usage(&o.cli,
		    "--list takes no NAME, --tag, --all, --one "
		    "or --wait");
	if (o.list && o.fmt != CLI_FMT_ADDR && o.fmt != CLI_FMT_JSON)
		cli_usage(&o.cli, "--list prints addr or json only");
	if (!o.list && argc - optind != 1)
		cli_usage(&o.cli,
		    argc == optind ? "missing service NAME"
		                   : "more than one service NAME");
	o.name = o.list ? "" : argv[optind];
	if (!o.list && (o.name[0] == '\0' || strlen(o.name) > CATALOG_NAME_MAX))
		cli_usage(&o.cli, "invalid service name '%s'", o.name);
	r = cli_connect(&o.cli);
	rc = o.list ? list(&o, r) : lookup(&o, r);
	rpcc_free(r);
	json_decref(o.tags);
	return rc;
}

/*
 * cli_fmt.c - the output of the command-line tools (cli.h): lines and
 * tables for `while read` loops, JSON for programs, shell assignments for
 * eval. What is printed comes from the catalog, which anyone holding the
 * key can write: values for eval are always quoted.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "mem.h"

static const char *const fmt_names[CLI_FMT_MAX] = {
	[CLI_FMT_ADDR] = "addr",
	[CLI_FMT_JSON] = "json",
	[CLI_FMT_SRV] = "srv",
	[CLI_FMT_ENV] = "env",
};

int
cli_fmt_parse(const char *s)
{
	for (int i = 0; i < CLI_FMT_MAX; i++)
		if (strcmp(s, fmt_names[i]) == 0)
			return i;
	return -1;
}

int
cli_shell_quote(struct buf *b, const char *s)
{
	int rc = buf_addch(b, '\'');

	for (; rc == 0 && *s != '\0'; s++)
		rc = *s == '\'' ? buf_addstr(b, "'\\''") : buf_addch(b, *s);
	return rc != 0 ? rc : buf_addch(b, '\'');
}

int
cli_hostport(struct buf *b, const char *host, json_int_t port)
{
	if (strchr(host, ':') != NULL && host[0] != '[')
		return buf_addf(b, "[%s]:%lld", host, (long long)port);
	return buf_addf(b, "%s:%lld", host, (long long)port);
}

int
cli_env_name(struct buf *b, const char *name)
{
	int rc = 0;

	if (name[0] >= '0' && name[0] <= '9')
		rc = buf_addch(b, '_');
	for (const char *p = name; rc == 0 && *p != '\0'; p++) {
		char ch = *p;

		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		else if (!(ch >= 'A' && ch <= 'Z') && !(ch >= '0' && ch <= '9'))
			ch = '_';
		rc = buf_addch(b, ch);
	}
	return rc;
}

int
cli_table(struct buf *b, const char *const *cells, size_t nrows, size_t ncols)
{
	size_t width[16] = { 0 };
	int rc = 0;

	if (ncols == 0 || ncols > sizeof(width) / sizeof(width[0]))
		return DSC_EINVAL;
	for (size_t r = 0; r < nrows; r++)
		for (size_t k = 0; k < ncols; k++) {
			size_t n = strlen(cells[r * ncols + k]);

			if (n > width[k])
				width[k] = n;
		}
	for (size_t r = 0; rc == 0 && r < nrows; r++) {
		size_t last = ncols;

		/* Empty trailing cells would leave trailing blanks. */
		while (last > 1 && cells[r * ncols + last - 1][0] == '\0')
			last--;
		for (size_t k = 0; rc == 0 && k < last; k++)
			rc = k + 1 < last ? buf_addf(b, "%-*s  ", (int)width[k],
			                        cells[r * ncols + k])
			                  : buf_addstr(b, cells[r * ncols + k]);
		if (rc == 0)
			rc = buf_addch(b, '\n');
	}
	return rc;
}

int
cli_json_line(struct buf *b, const json_t *v)
{
	char *text =
	    json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	int rc;

	if (text == NULL)
		return DSC_ENOMEM;
	rc = buf_addstr(b, text);
	free(text);
	return rc != 0 ? rc : buf_addch(b, '\n');
}

int
cli_write(FILE *f, const struct buf *b, struct dsc_err *err)
{
	if ((b->len > 0 && fwrite(b->p, 1, b->len, f) != b->len) ||
	    fflush(f) != 0 || ferror(f))
		return dsc_errorf(err, DSC_EIO, "unable to write output");
	return 0;
}

/* ---- instances ---------------------------------------------------------- */

/* What one health.service row says, borrowed from it. */
struct inst {
	const char *node, *id, *address, *status;
	json_int_t port, weight;
	const json_t *service;
};

static const char *
str_member(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

static int
inst_read(const json_t *row, size_t i, struct inst *in, struct dsc_err *err)
{
	const json_t *node = json_object_get(row, "Node");
	const json_t *svc = json_object_get(row, "Service");
	const json_t *port = json_object_get(svc, "Port");
	const json_t *weights = json_object_get(svc, "Weights");
	const json_t *w;

	if (!json_is_object(node) || !json_is_object(svc))
		return dsc_errorf(err, DSC_EPROTO,
		    "instance %zu: no Node or Service object", i);
	in->service = svc;
	in->node = str_member(node, "Node");
	in->id = str_member(svc, "ID");
	in->address = str_member(svc, "Address");
	if (in->address[0] == '\0')
		in->address = str_member(node, "Address");
	in->port = json_integer_value(port);
	/* A line per record: a control character would forge another. */
	for (const char *p = in->address; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return dsc_errorf(err, DSC_EPROTO,
			    "instance '%s' on node '%s': control character in "
			    "its address",
			    in->id, in->node);
	if (in->address[0] == '\0' || !json_is_integer(port) || in->port < 0 ||
	    in->port > 65535)
		return dsc_errorf(err, DSC_EPROTO,
		    "instance '%s' on node '%s': no address or bad port",
		    in->id, in->node);
	in->status = catalog_aggregate_status(json_object_get(row, "Checks"));
	if (in->status[0] == '\0')
		in->status = "unknown";
	/* DNS's rule: warning instances get the Warning weight. */
	w = json_object_get(weights,
	    strcmp(in->status, "warning") == 0 ? "Warning" : "Passing");
	in->weight = json_is_integer(w) ? json_integer_value(w) : 1;
	return 0;
}

static int
fmt_json(struct buf *b, const struct inst *in, size_t n)
{
	json_t *arr = json_array();
	int rc = arr == NULL ? DSC_ENOMEM : 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		json_t *tags = json_object_get(in[i].service, "Tags");
		json_t *meta = json_object_get(in[i].service, "Meta");
		/* "o" steals, on failure too: a reference each. */
		json_t *o = json_pack(
		    "{s:s, s:s, s:s, s:s, s:I, s:o, s:o, s:s}", "ID", in[i].id,
		    "Service", str_member(in[i].service, "Service"), "Node",
		    in[i].node, "Address", in[i].address, "Port", in[i].port,
		    "Tags",
		    json_is_array(tags) ? json_incref(tags) : json_array(),
		    "Meta",
		    json_is_object(meta) ? json_incref(meta) : json_object(),
		    "Status", in[i].status);

		if (o == NULL || json_array_append_new(arr, o) != 0)
			rc = DSC_ENOMEM;
	}
	if (rc == 0)
		rc = cli_json_line(b, arr);
	json_decref(arr);
	return rc;
}

/* One NAME_SUFFIX='value' line. */
static int
env_line(struct buf *b, const char *name, const char *suffix, const char *value)
{
	int rc = cli_env_name(b, name);

	if (rc == 0)
		rc = buf_addf(b, "_%s=", suffix);
	if (rc == 0)
		rc = cli_shell_quote(b, value);
	return rc != 0 ? rc : buf_addch(b, '\n');
}

static int
fmt_env(struct buf *b, const struct inst *in, size_t n, const char *name,
    bool with_status)
{
	struct buf v = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (i > 0)
			rc = buf_addch(&v, ' ');
		if (rc == 0)
			rc = cli_hostport(&v, in[i].address, in[i].port);
	}
	if (rc == 0)
		rc = env_line(b, name, "ADDRS", n > 0 ? (char *)v.p : "");
	buf_clear(&v);
	if (rc == 0)
		rc = buf_addf(&v, "%zu", n);
	if (rc == 0)
		rc = env_line(b, name, "COUNT", (char *)v.p);
	if (rc == 0 && n > 0) {
		buf_clear(&v);
		rc = cli_hostport(&v, in[0].address, in[0].port);
		if (rc == 0)
			rc = env_line(b, name, "ADDR", (char *)v.p);
		if (rc == 0)
			rc = env_line(b, name, "HOST", in[0].address);
		buf_clear(&v);
		if (rc == 0)
			rc = buf_addf(&v, "%lld", (long long)in[0].port);
		if (rc == 0)
			rc = env_line(b, name, "PORT", (char *)v.p);
		if (rc == 0 && with_status)
			rc = env_line(b, name, "STATUS", in[0].status);
	}
	buf_release(&v);
	return rc;
}

int
cli_fmt_instances(struct buf *b, const json_t *instances, const char *name,
    enum cli_fmt fmt, bool with_status, struct dsc_err *err)
{
	size_t n = json_array_size(instances);
	struct inst *in;
	int rc = 0;

	if (!json_is_array(instances))
		return dsc_errorf(err, DSC_EPROTO, "instances: not an array");
	in = dsc_calloc(n > 0 ? n : 1, sizeof(*in));
	if (in == NULL)
		return dsc_errorf(err, DSC_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = inst_read(json_array_get(instances, i), i, &in[i], err);
	if (rc == 0 && fmt == CLI_FMT_JSON)
		rc = fmt_json(b, in, n);
	else if (rc == 0 && fmt == CLI_FMT_ENV)
		rc = fmt_env(b, in, n, name, with_status);
	for (size_t i = 0;
	     rc == 0 && i < n && (fmt == CLI_FMT_ADDR || fmt == CLI_FMT_SRV);
	     i++) {
		if (fmt == CLI_FMT_SRV)
			rc = buf_addf(b, "1 %lld %lld %s",
			    (long long)in[i].weight, (long long)in[i].port,
			    in[i].address);
		else
			rc = cli_hostport(b, in[i].address, in[i].port);
		if (rc == 0 && with_status)
			rc = buf_addf(b, "\t%s", in[i].status);
		if (rc == 0)
			rc = buf_addch(b, '\n');
	}
	dsc_free(in);
	if (rc == DSC_ENOMEM)
		return dsc_errorf(err, rc, "out of memory");
	return rc;
}

/*
 * cli.c - the common options, the environment, the error shape and the
 * connection of the command-line tools (cli.h). The output formats live in
 * cli_fmt.c.
 */
#include "cli.h"
#include "clock.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "duration.h"

#define SCHEME_HTTP  "http://"
#define SCHEME_HTTPS "https://"

void
cli_init(struct cli *c, const char *prog, const char *help)
{
	memset(c, 0, sizeof(*c));
	c->prog = prog;
	c->help = help;
	c->timeout_ms = CLI_TIMEOUT_MS_DEFAULT;
}

/* ---- messages ---------------------------------------------------------- */

static void vmessage(const struct cli *c, const char *kind, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));

static void
vmessage(const struct cli *c, const char *kind, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "%s: %s", c->prog, kind);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

_Noreturn void
cli_die(const struct cli *c, const struct dsc_err *err)
{
	cli_fatal(c, err->code, "%s", dsc_err_msg(err));
}

_Noreturn void
cli_fatal(const struct cli *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(c, "error: ", fmt, ap);
	va_end(ap);
	exit(code == DSC_OK ? DSC_EXIT_PERM : dsc_exit_class(code));
}

_Noreturn void
cli_usage(const struct cli *c, const char *fmt, ...)
{
	char msg[DSC_ERRMSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(
	    stderr, "%s: error: %s (see '%s --help')\n", c->prog, msg, c->prog);
	exit(DSC_EXIT_USAGE);
}

void
cli_note(const struct cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	vmessage(c, "", fmt, ap);
	va_end(ap);
}

/* ---- argument parsers -------------------------------------------------- */

int
cli_parse_port(const char *text, unsigned *port, struct dsc_err *err)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 ||
	    v < 1 || v > 65535)
		return dsc_errorf(err, DSC_EUSAGE,
		    "invalid port '%s': want 1 to 65535", text);
	*port = (unsigned)v;
	return 0;
}

int
cli_parse_addr(const char *text, char out[RPCC_ADDR_MAX], struct dsc_err *err)
{
	const char *hp = text, *colon;
	size_t len, hostlen;
	char portbuf[8];
	unsigned port;

	if (strncmp(hp, SCHEME_HTTPS, strlen(SCHEME_HTTPS)) == 0)
		return dsc_errorf(err, DSC_EUSAGE,
		    "invalid address '%s': https is not supported", text);
	if (strncmp(hp, SCHEME_HTTP, strlen(SCHEME_HTTP)) == 0)
		hp += strlen(SCHEME_HTTP);
	len = strlen(hp);
	if (len > 0 && hp[len - 1] == '/')
		len--;
	if (len == 0 || len >= RPCC_ADDR_MAX)
		goto bad;
	if (hp[0] == '[') {
		const char *rb = memchr(hp, ']', len);

		if (rb == NULL || rb == hp + 1 || rb + 1 >= hp + len ||
		    rb[1] != ':')
			goto bad;
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *p = hp; p < hp + len; p++)
			if (*p == ':')
				colon = p;
		if (colon == NULL || colon == hp ||
		    memchr(hp, ':', (size_t)(colon - hp)) != NULL)
			goto bad;
	}
	hostlen = (size_t)(colon - hp);
	for (size_t i = 0; i < hostlen; i++)
		if ((unsigned char)hp[i] <= ' ' || hp[i] == '/' ||
		    (unsigned char)hp[i] >= 0x7f)
			goto bad;
	if (len - hostlen - 1 >= sizeof(portbuf) || len - hostlen - 1 == 0)
		goto bad;
	memcpy(portbuf, colon + 1, len - hostlen - 1);
	portbuf[len - hostlen - 1] = '\0';
	if (cli_parse_port(portbuf, &port, NULL) != 0)
		goto bad;
	memcpy(out, hp, len);
	out[len] = '\0';
	return 0;
bad:
	return dsc_errorf(
	    err, DSC_EUSAGE, "invalid address '%s': want HOST:PORT", text);
}

int
cli_parse_secs(const char *text, uint64_t *ms, struct dsc_err *err)
{
	uint64_t v;
	char *end;
	double secs;

	if (text[0] >= '0' && text[0] <= '9') {
		errno = 0;
		secs = strtod(text, &end);
		if (*end == '\0' && errno == 0) {
			if (!(secs > 0) || secs > CLI_TIMEOUT_MS_MAX / 1000)
				goto range;
			v = (uint64_t)(secs * 1000);
			*ms = v < secs * 1000 || v == 0 ? v + 1 : v;
			return 0;
		}
	}
	if (dur_parse_ms(text, &v, NULL) != 0)
		return dsc_errorf(err, DSC_EUSAGE,
		    "invalid timeout '%s': want seconds or a duration such "
		    "as 500ms",
		    text);
	if (v == 0 || v > CLI_TIMEOUT_MS_MAX)
		goto range;
	*ms = v;
	return 0;
range:
	return dsc_errorf(err, DSC_EUSAGE,
	    "invalid timeout '%s': want more than 0 and at most %us", text,
	    CLI_TIMEOUT_MS_MAX / 1000);
}

int
cli_parse_dur(const char *text, struct dsc_err *err)
{
	int64_t ns;

	if (dur_parse(text, &ns, err) != 0) {
		if (err != NULL)
			err->code = DSC_EUSAGE;
		return DSC_EUSAGE;
	}
	if (ns <= 0)
		return dsc_errorf(err, DSC_EUSAGE,
		    "invalid duration '%s': must be positive", text);
	return 0;
}

/* ---- options and environment ------------------------------------------- */

static void
set_addr(
    struct cli *c, char out[RPCC_ADDR_MAX], const char *text, const char *from)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (cli_parse_addr(text, out, &err) != 0) {
		if (from[0] == '-')
			cli_usage(c, "%s: %s", from, dsc_err_msg(&err));
		cli_usage(c, "$%s: %s", from, dsc_err_msg(&err));
	}
}

/* getopt_long's '?' or ':' (optstring starts with ':', opterr is 0). */
static _Noreturn void
bad_option(const struct cli *c, int ch, int argc, char *const argv[])
{
	const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	bool is_long = strncmp(word, "--", 2) == 0;

	if (ch == ':' && is_long)
		cli_usage(c, "option '%s' needs an argument", word);
	if (ch == ':')
		cli_usage(c, "option '-%c' needs an argument", optopt);
	if (is_long && strchr(word, '=') != NULL && optopt != 0)
		cli_usage(c, "option '%.*s' takes no argument",
		    (int)strcspn(word, "="), word);
	if (!is_long && optopt != 0 && optopt < 0x100)
		cli_usage(c, "unknown option '-%c'", optopt);
	cli_usage(c, "unknown option '%.*s'", (int)strcspn(word, "="), word);
}

bool
cli_option(struct cli *c, int ch, const char *arg, int argc, char *const argv[])
{
	struct dsc_err err = DSC_ERR_INIT;

	switch (ch) {
	case CLI_OPT_AGENT:
		set_addr(c, c->agent, arg, "--agent");
		c->agent_given = true;
		c->agent_from = "--agent";
		return true;
	case CLI_OPT_SERVER:
		if (c->n_servers == RPCC_MAX_SERVERS)
			cli_usage(c, "more than %d --server options",
			    RPCC_MAX_SERVERS);
		set_addr(c, c->servers[c->n_servers], arg, "--server");
		c->n_servers++;
		return true;
	case CLI_OPT_KEY_FILE:
		c->key_file = arg;
		return true;
	case 't':
		if (cli_parse_secs(arg, &c->timeout_ms, &err) != 0)
			cli_usage(c, "%s", dsc_err_msg(&err));
		return true;
	case 'q':
		c->quiet = true;
		return true;
	case 'h':
		fputs(c->help, stdout);
		exit(fflush(stdout) == 0 ? DSC_EXIT_OK : DSC_EXIT_TEMP);
	case 'V':
		printf("%s %s\n", c->prog, CLI_VERSION);
		exit(fflush(stdout) == 0 ? DSC_EXIT_OK : DSC_EXIT_TEMP);
	case '?':
	case ':':
		bad_option(c, ch, argc, argv);
	default:
		return false;
	}
}

void
cli_finish(struct cli *c)
{
	static const char *const vars[] = { "DSC_HTTP_ADDR",
		"CONSUL_HTTP_ADDR" };
	const char *v;

	if (c->agent_given && c->n_servers > 0)
		cli_usage(c, "can't combine --agent and --server");
	if (c->key_file == NULL && (v = getenv("DSC_KEY_FILE")) != NULL &&
	    v[0] != '\0')
		c->key_file = v;
	if (c->agent_given || c->n_servers > 0)
		return;
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((v = getenv(vars[i])) != NULL && v[0] != '\0') {
			set_addr(c, c->agent, v, vars[i]);
			c->agent_from = vars[i];
			return;
		}
	snprintf(c->agent, sizeof(c->agent), "%s", CLI_AGENT_DEFAULT);
	c->agent_from = "default";
}

/* ---- calls -------------------------------------------------------------- */

uint64_t
cli_remaining_ms(const struct cli *c)
{
	uint64_t now = dsc_mono_ms();

	return now >= c->deadline_ms ? 0 : c->deadline_ms - now;
}

struct rpcc *
cli_connect(struct cli *c)
{
	struct rpcc_options opt = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t key[AUTH_KEY_SIZE];
	const char *servers[RPCC_MAX_SERVERS];
	size_t n = 0;
	struct rpcc *r;

	c->deadline_ms = dsc_mono_ms() + c->timeout_ms;
	if (c->key_file == NULL)
		cli_fatal(c, DSC_EINVAL,
		    "no key file: give --key-file or set DSC_KEY_FILE");
	/* A key we cannot use is configuration to fix, never worth a retry. */
	if (auth_key_load(c->key_file, key, &err) != 0)
		cli_fatal(c, DSC_EINVAL, "%s", dsc_err_msg(&err));
	if (c->n_servers == 0)
		servers[n++] = c->agent;
	for (size_t i = 0; i < c->n_servers; i++)
		servers[n++] = c->servers[i];
	opt.timeout_ms = (unsigned)c->timeout_ms;
	opt.connect_ms =
	    (unsigned)(c->timeout_ms < CLI_CONNECT_MS_MAX ? c->timeout_ms
	                                                  : CLI_CONNECT_MS_MAX);
	r = rpcc_new(key, servers, n, &opt, &err);
	sodium_memzero(key, sizeof(key));
	if (r == NULL)
		cli_die(c, &err);
	return r;
}

/*
 * rpcc names whoever it talked to a server; when that was our agent, say
 * agent. Only a mention of the agent's own address is changed: errors the
 * agent relays from the servers name the servers.
 */
static void
name_agent(const struct cli *c, struct dsc_err *err)
{
	char needle[RPCC_ADDR_MAX + 16], msg[DSC_ERRMSG_MAX];
	char *p;

	snprintf(needle, sizeof(needle), "server '%s'", c->agent);
	if ((p = strstr(err->msg, needle)) == NULL)
		return;
	snprintf(msg, sizeof(msg), "%.*sagent '%s", (int)(p - err->msg),
	    err->msg, p + strlen("server '"));
	memcpy(err->msg, msg, sizeof(msg));
}

int
cli_call(const struct cli *c, struct rpcc *r, const char *method,
    json_t *params, unsigned flags, json_t **result, struct rpcc_meta *meta,
    struct dsc_err *err)
{
	struct rpcc_meta m = { 0 };
	int rc;

	rc = rpcc_call(r, method, params, flags, result, &m, err);
	if (rc != 0 && c->n_servers == 0 && err != NULL)
		name_agent(c, err);
	if (meta != NULL)
		*meta = m;
	return rc;
}

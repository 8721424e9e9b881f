/*
 * cli.h - what dsc-register, dsc-lookup and dsc-members share: the common
 * options, where the agent and the key come from, one error shape, the
 * exit-status table, and the output formats scripts rely on.
 *
 * Unlike the rest of libcommon, the cli_* functions documented as dying
 * print to stderr and exit: they exist so a tool's main() reads top to
 * bottom (STYLE.md 2.7). Every message has one shape,
 *
 *	dsc-lookup: error: unable to reach agent '127.0.0.1:8500': connection
 *	refused
 *
 * and the exit status comes from err.h's table: 0 success, 1 negative
 * answer, 2 usage error, 3 temporary failure, 4 permanent failure.
 *
 * The common options (CLI_COMMON_LONGOPTS, CLI_COMMON_SHORTOPTS):
 *	--agent ADDR:PORT   the agent's HTTP address (default $DSC_HTTP_ADDR,
 *	                    then $CONSUL_HTTP_ADDR, then 127.0.0.1:8500;
 *	                    "http://host:port" accepted)
 *	--server ADDR:PORT  a server instead of the agent (repeatable: failover)
 *	--key-file FILE     the cluster key (default $DSC_KEY_FILE)
 *	-t SECS             bound on every network wait (default 5; seconds,
 *	                    fractions allowed, or a Go duration such as 500ms);
 *	                    short only: dsc-register's --timeout is a check's
 *	-q, --quiet         no warnings, no reason for a negative answer
 *	-h, --help          the help on stdout, exit 0
 *	-V, --version       the version on stdout, exit 0
 */
#ifndef DSC_CLI_H
#define DSC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "buf.h"
#include "err.h"
#include "rpcc.h"

#define CLI_VERSION            "0.1.0"
#define CLI_AGENT_DEFAULT      "127.0.0.1:8500"
#define CLI_TIMEOUT_MS_DEFAULT 5000
/* -t above an hour is a typo, not a plan. */
#define CLI_TIMEOUT_MS_MAX     (3600u * 1000u)
/* The connect bound within -t: a dead agent costs at most this much. */
#define CLI_CONNECT_MS_MAX     2000u

/* getopt_long values of the common long-only options. */
enum cli_opt {
	CLI_OPT_AGENT = 0x100,
	CLI_OPT_SERVER,
	CLI_OPT_KEY_FILE,
	CLI_OPT_FIRST_FREE, /* tools number their own long-only options here */
};

#define CLI_COMMON_SHORTOPTS "hqt:V"
#define CLI_COMMON_LONGOPTS                                                    \
	{ "agent", required_argument, NULL, CLI_OPT_AGENT },                   \
	    { "server", required_argument, NULL, CLI_OPT_SERVER },             \
	    { "key-file", required_argument, NULL, CLI_OPT_KEY_FILE },         \
	    { "quiet", no_argument, NULL, 'q' },                               \
	    { "help", no_argument, NULL, 'h' },                                \
	{                                                                      \
		"version", no_argument, NULL, 'V'                              \
	}

/* The common options' help lines, for each tool's --help. */
#define CLI_COMMON_HELP                                                        \
	"  --agent ADDR:PORT     agent to ask (default $DSC_HTTP_ADDR, then\n" \
	"                        $CONSUL_HTTP_ADDR, then " CLI_AGENT_DEFAULT   \
	")\n"                                                                  \
	"  --server ADDR:PORT    ask a server instead (repeat for failover)\n" \
	"  --key-file FILE       cluster key (default $DSC_KEY_FILE)\n"        \
	"  -t SECS               bound on every network wait (default 5)\n"    \
	"  -q, --quiet           no warnings, no reason for a negative "       \
	"answer\n"                                                             \
	"  -h, --help            print this help and exit\n"                   \
	"  -V, --version         print the version and exit\n"                 \
	"Exit status: 0 success, 1 negative answer, 2 usage error,\n"          \
	"3 temporary failure (retry may help), 4 permanent failure.\n"

struct cli {
	const char *prog; /* "dsc-lookup": the prefix of every message */
	const char *help; /* --help text, usage line first */
	/* Where to send calls: the agent, or the servers when n_servers. */
	char agent[RPCC_ADDR_MAX];
	const char *agent_from; /* "--agent", "DSC_HTTP_ADDR", ... */
	char servers[RPCC_MAX_SERVERS][RPCC_ADDR_MAX];
	size_t n_servers;
	const char *key_file; /* borrowed from argv or the environment */
	uint64_t timeout_ms;
	uint64_t deadline_ms; /* dsc_mono_ms() + timeout_ms at cli_connect */
	bool quiet;
	bool agent_given;
};

/* Defaults of every field; @prog and @help are borrowed for the run. */
void cli_init(struct cli *c, const char *prog, const char *help);

/*
 * Handles one getopt_long result @ch with @arg when it is a common option:
 * returns true, having stored it (-h and -V print and exit 0; a bad value
 * dies with exit 2). Returns false for anything else; '?' and ':' die with
 * a usage error naming argv's offending word.
 */
bool cli_option(
    struct cli *c, int ch, const char *arg, int argc, char *const argv[]);

/*
 * After the options: the agent from the environment when --agent was not
 * given (DSC_HTTP_ADDR, then CONSUL_HTTP_ADDR, then CLI_AGENT_DEFAULT),
 * the key file from DSC_KEY_FILE. Dies with exit 2 on --agent with
 * --server, or a bad address in the environment.
 */
void cli_finish(struct cli *c);

/*
 * Loads the key (dies with exit 4: missing, unreadable, group- or
 * world-readable, malformed; the key is wiped after use) and returns a
 * client bound by -t. Starts the -t clock.
 */
struct rpcc *cli_connect(struct cli *c);

/*
 * rpcc_call; when the agent is who we talk to, a message naming its
 * address calls it the agent ("unable to reach agent 'ADDR': ...").
 */
int cli_call(const struct cli *c, struct rpcc *r, const char *method,
    json_t *params, unsigned flags, json_t **result, struct rpcc_meta *meta,
    struct dsc_err *err);

/* Milliseconds of -t left, 0 once it has passed. */
uint64_t cli_remaining_ms(const struct cli *c);

/* "prog: error: MSG" and exit with @err's class. */
_Noreturn void cli_die(const struct cli *c, const struct dsc_err *err);
/* "prog: error: MSG (see 'prog --help')" and exit 2. */
_Noreturn void cli_usage(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "prog: error: MSG" and exit with the class of @code. */
_Noreturn void cli_fatal(const struct cli *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "prog: MSG" unless -q: the reason for a negative answer, a warning. */
void cli_note(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- argument parsers: 0, or DSC_EUSAGE with a message --------------- */

/*
 * "host:port", "[v6]:port" or "http://" followed by either (a trailing
 * "/" allowed) into @out as "host:port"; port 1..65535. https:// is
 * refused: the tools speak plain HTTP to the local agent.
 */
int cli_parse_addr(
    const char *text, char out[RPCC_ADDR_MAX], struct dsc_err *err);
/* A decimal port 1..65535. */
int cli_parse_port(const char *text, unsigned *port, struct dsc_err *err);
/* -t: decimal seconds ("5", "0.5") or a Go duration ("500ms"), > 0 and at
 * most CLI_TIMEOUT_MS_MAX; rounded up to whole milliseconds. */
int cli_parse_secs(const char *text, uint64_t *ms, struct dsc_err *err);
/* A positive Go duration ("10s"), for check intervals and TTLs. */
int cli_parse_dur(const char *text, struct dsc_err *err);

/* ---- output ------------------------------------------------------------ */

/* Appends @s single-quoted for sh ('it'\''s'), safe for eval. */
int cli_shell_quote(struct buf *b, const char *s);
/* Appends "host:port", bracketing a host with a ':' (IPv6). */
int cli_hostport(struct buf *b, const char *host, json_int_t port);
/* Appends @name as an environment variable prefix: upper case, every
 * character but [A-Z0-9] as '_', a leading digit prefixed with '_'. */
int cli_env_name(struct buf *b, const char *name);

/*
 * A table: @ncols columns, @nrows rows of strings (row-major in @cells,
 * row 0 the header), left aligned in columns two spaces apart, no
 * trailing blanks, one line per row.
 */
int cli_table(
    struct buf *b, const char *const *cells, size_t nrows, size_t ncols);

/* Output formats of dsc-lookup. */
enum cli_fmt {
	CLI_FMT_ADDR = 0, /* ADDRESS:PORT */
	CLI_FMT_JSON,     /* an array of objects */
	CLI_FMT_SRV,      /* priority weight port target */
	CLI_FMT_ENV,      /* NAME_ADDR=... lines for eval */
	CLI_FMT_MAX
};

/* "addr" -> CLI_FMT_ADDR ...; -1 when unknown. */
int cli_fmt_parse(const char *s);

/*
 * Formats @instances (borrowed: health.service's array of {Node, Service,
 * Checks}) of service @name into @b. @with_status adds each instance's
 * aggregated status as a tab-separated last column in addr and srv, and
 * NAME_STATUS in env; json always has "Status". The address is
 * Service.Address, else Node.Address. DSC_EPROTO for an instance without an
 * address or a port in range, DSC_ENOMEM; @b may hold part of the output on
 * error.
 */
int cli_fmt_instances(struct buf *b, const json_t *instances, const char *name,
    enum cli_fmt fmt, bool with_status, struct dsc_err *err);

/* Compact JSON with sorted keys and a newline. DSC_ENOMEM. */
int cli_json_line(struct buf *b, const json_t *v);

/* Writes @b to @f; DSC_EIO when it fails (a closed pipe, a full disk). */
int cli_write(FILE *f, const struct buf *b, struct dsc_err *err);

#endif

/*
 * main.c - dsc-agent's command line: settings from --config, then flags
 * (later wins), the cluster key, the node id kept in the data dir, the
 * parts wired together (agent.h), signals, and the exit status (0 clean
 * stop, 2 usage, 3 temporary such as a busy port, 4 permanent such as bad
 * config or a bad key).
 */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>
#include <sodium.h>

#include "api.h"
#include "checks.h"
#include "cli.h"
#include "local.h"
#include "log.h"

#define PROG                  "dsc-agent"
#define VERSION               "0.1.0"
#define NODE_ID_FILE          "node-id"
/* Bound on one forwarded call, blocking queries' wait on top. */
#define AGENT_CALL_TIMEOUT_MS 15000
/* Bytes of a --config file read. */
#define CONFIG_MAX            (1024 * 1024)
#define USAGE                                                                  \
	"usage: dsc-agent [--config FILE] --name NAME --bind ADDR\n"           \
	"                 [--http ADDR:PORT] --server ADDR:PORT...\n"          \
	"                 --data-dir DIR [--config-dir DIR] --key-file FILE\n" \
	"                 [--enable-script-checks] [--log-level LEVEL]\n"      \
	"                 [-h|--help] [-V|--version]\n"

enum opt {
	OPT_NAME = 256,
	OPT_BIND,
	OPT_HTTP,
	OPT_SERVER,
	OPT_DATA_DIR,
	OPT_CONFIG_DIR,
	OPT_KEY_FILE,
	OPT_SCRIPTS,
	OPT_CONFIG,
	OPT_LOG_LEVEL,
};

static const struct option longopts[] = {
	{ "name", required_argument, NULL, OPT_NAME },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "http", required_argument, NULL, OPT_HTTP },
	{ "server", required_argument, NULL, OPT_SERVER },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "config-dir", required_argument, NULL, OPT_CONFIG_DIR },
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },
	{ "enable-script-checks", no_argument, NULL, OPT_SCRIPTS },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/* Messages and exit statuses in the tools' one shape (cli.h). */
static struct cli cli;

#define die(code, ...) cli_fatal(&cli, code, __VA_ARGS__)

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		die(DSC_EIO, "out of memory");
	return p;
}

static void
set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = xstrdup(s);
}

static void
add_server(struct agent_config *c, const char *s)
{
	if (c->n_servers == AGENT_SERVERS_MAX)
		die(DSC_EUSAGE, "at most %d --server addresses",
		    AGENT_SERVERS_MAX);
	c->servers[c->n_servers++] = xstrdup(s);
}

static int
parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* --config: the same settings as the flags, under snake_case keys. */
static void
read_config(struct agent_config *c, const char *path, int *level)
{
	static const char *const strs[] = { "name", "bind", "http", "data_dir",
		"config_dir", "key_file", "datacenter", NULL };
	char **dsts[] = { &c->name, &c->bind, &c->http, &c->data_dir,
		&c->config_dir, &c->key_file, &c->datacenter };
	json_error_t je;
	const char *k;
	json_t *j, *v, *s;
	size_t i;

	j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL)
		die(DSC_EINVAL, "'%s':%d:%d: %s", path, je.line, je.column,
		    je.text);
	if (!json_is_object(j))
		die(DSC_EINVAL, "'%s': not a JSON object", path);
	json_object_foreach(j, k, v)
	{
		for (i = 0; strs[i] != NULL; i++)
			if (strcmp(k, strs[i]) == 0)
				break;
		if (strs[i] != NULL) {
			if (!json_is_string(v))
				die(DSC_EINVAL, "'%s': '%s' must be a string",
				    path, k);
			set_str(dsts[i], json_string_value(v));
		} else if (strcmp(k, "servers") == 0 && json_is_array(v)) {
			json_array_foreach(v, i, s)
			{
				if (!json_is_string(s))
					die(DSC_EINVAL,
					    "'%s': servers must be strings",
					    path);
				add_server(c, json_string_value(s));
			}
		} else if (strcmp(k, "enable_script_checks") == 0 &&
		    json_is_boolean(v)) {
			c->enable_script_checks = json_is_true(v);
		} else if (strcmp(k, "log_level") == 0 && json_is_string(v) &&
		    parse_level(json_string_value(v)) >= 0) {
			*level = parse_level(json_string_value(v));
		} else {
			die(DSC_EINVAL, "'%s': unknown or invalid key '%s'",
			    path, k);
		}
	}
	json_decref(j);
}

static void
check_config(struct agent_config *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char host[256];
	struct in6_addr a;

	if (c->name == NULL) {
		if (gethostname(host, sizeof(host)) != 0)
			die(DSC_EUSAGE, "no --name and no host name");
		host[sizeof(host) - 1] = '\0';
		c->name = xstrdup(host);
	}
	if (c->name[0] == '\0' || strlen(c->name) > 128 ||
	    strspn(c->name,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789-_.") != strlen(c->name))
		die(DSC_EUSAGE, "invalid --name '%s'", c->name);
	if (c->bind == NULL)
		c->bind = xstrdup("127.0.0.1");
	if (inet_pton(AF_INET, c->bind, &a) != 1 &&
	    inet_pton(AF_INET6, c->bind, &a) != 1)
		die(DSC_EUSAGE, "--bind '%s' is not an IP address", c->bind);
	if (c->http == NULL)
		c->http = xstrdup(AGENT_HTTP_DEFAULT);
	if (evutil_parse_sockaddr_port(c->http, (struct sockaddr *)&ss, &len) !=
	        0 ||
	    strchr(c->http, ':') == NULL)
		die(DSC_EUSAGE, "--http '%s' is not ADDR:PORT", c->http);
	if (c->n_servers == 0)
		die(DSC_EUSAGE, "at least one --server is needed");
	if (c->data_dir == NULL)
		die(DSC_EUSAGE, "--data-dir is needed");
	if (c->key_file == NULL)
		die(DSC_EUSAGE, "--key-file is needed");
	if (c->datacenter == NULL)
		c->datacenter = xstrdup(AGENT_DC_DEFAULT);
	if (c->heartbeat_ms == 0)
		c->heartbeat_ms = AGENT_HEARTBEAT_MS_DEFAULT;
	if (c->sync_ms == 0)
		c->sync_ms = AGENT_SYNC_MS_DEFAULT;
}

/* The node id: made once, kept in the data dir (a UUID, as Consul's). */
static void
load_node_id(struct agent_config *c)
{
	char path[4096], text[64];
	uint8_t r[16];
	ssize_t n;
	int fd;

	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
		die(DSC_EINVAL, "unable to create '%s': %s", c->data_dir,
		    strerror(errno));
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", c->data_dir,
	        NODE_ID_FILE) >= sizeof(path))
		die(DSC_EUSAGE, "--data-dir '%s' is too long", c->data_dir);
	if ((fd = open(path, O_RDONLY)) >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
		if (n == 36 || (n == 37 && text[36] == '\n')) {
			text[36] = '\0';
			c->node_id = xstrdup(text);
			return;
		}
		die(DSC_EINVAL, "'%s': not a node id", path);
	}
	randombytes_buf(r, sizeof(r));
	r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
	r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
	snprintf(text, sizeof(text),
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
	    r[11], r[12], r[13], r[14], r[15]);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, text, 36) != 36 || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0)
		die(DSC_EINVAL, "unable to write '%s': %s", path,
		    strerror(errno));
	close(fd);
	c->node_id = xstrdup(text);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;

	(void)what;
	log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(a->base, NULL);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	struct dsc_err err = DSC_ERR_INIT;

	(void)sig;
	(void)what;
	if (local_reload(a->local, &err) != 0)
		log_warn("SIGHUP: %s; nothing changed", dsc_err_msg(&err));
	else
		log_info("SIGHUP: config dir reloaded");
}

static void
free_config(struct agent_config *c)
{
	free(c->name);
	free(c->node_id);
	free(c->bind);
	free(c->http);
	for (size_t i = 0; i < c->n_servers; i++)
		free(c->servers[i]);
	free(c->data_dir);
	free(c->config_dir);
	free(c->key_file);
	free(c->datacenter);
}

int
main(int argc, char **argv)
{
	struct agent a;
	struct agent_config flags = { 0 };
	struct rpcc_options ro = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	struct event *sig[3];
	const char *config = NULL;
	int ch, level = LOG_INFO, flag_level = -1, rc = 0;

	memset(&a, 0, sizeof(a));
	cli_init(&cli, PROG, USAGE);
	while ((ch = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_NAME:
			set_str(&flags.name, optarg);
			break;
		case OPT_BIND:
			set_str(&flags.bind, optarg);
			break;
		case OPT_HTTP:
			set_str(&flags.http, optarg);
			break;
		case OPT_SERVER:
			add_server(&flags, optarg);
			break;
		case OPT_DATA_DIR:
			set_str(&flags.data_dir, optarg);
			break;
		case OPT_CONFIG_DIR:
			set_str(&flags.config_dir, optarg);
			break;
		case OPT_KEY_FILE:
			set_str(&flags.key_file, optarg);
			break;
		case OPT_SCRIPTS:
			flags.enable_script_checks = true;
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_LOG_LEVEL:
			if ((flag_level = parse_level(optarg)) < 0)
				die(DSC_EUSAGE,
				    "--log-level '%s': want error, warn, info "
				    "or debug",
				    optarg);
			break;
		case 'h':
			fputs(USAGE, stdout);
			return 0;
		case 'V':
			printf(PROG " " VERSION "\n");
			return 0;
		default:
			cli_usage(&cli, "bad option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		cli_usage(&cli, "unexpected argument '%s'", argv[optind]);
	if (config != NULL)
		read_config(&a.cfg, config, &level);
		/* Flags win over the file. */
#define TAKE(f)                                                                \
	do {                                                                   \
		if (flags.f != NULL) {                                         \
			free(a.cfg.f);                                         \
			a.cfg.f = flags.f;                                     \
		}                                                              \
	} while (0)
	TAKE(name);
	TAKE(bind);
	TAKE(http);
	TAKE(data_dir);
	TAKE(config_dir);
	TAKE(key_file);
#undef TAKE
	if (flags.n_servers > 0) {
		for (size_t i = 0; i < a.cfg.n_servers; i++)
			free(a.cfg.servers[i]);
		memcpy(a.cfg.servers, flags.servers, sizeof(flags.servers));
		a.cfg.n_servers = flags.n_servers;
	}
	a.cfg.enable_script_checks |= flags.enable_script_checks;
	if (flag_level >= 0)
		level = flag_level;
	log_init(PROG, (enum log_level)level, false);
	check_config(&a.cfg);

	if (auth_init(&err) != 0)
		die(DSC_EIO, "%s", dsc_err_msg(&err));
	if (auth_key_load(a.cfg.key_file, a.key, &err) != 0)
		die(DSC_EINVAL, "%s", dsc_err_msg(&err));
	load_node_id(&a.cfg);
	signal(SIGPIPE, SIG_IGN);

	if ((a.base = event_base_new()) == NULL)
		die(DSC_EIO, "unable to start the event loop");
	ro.bind_ip = a.cfg.bind;
	/* A server confirms a write within 10 s or says it timed out; give
	 * it that, and a failover, before giving up. */
	ro.timeout_ms = AGENT_CALL_TIMEOUT_MS;
	a.up = rpca_new(a.base, a.key, (const char *const *)a.cfg.servers,
	    a.cfg.n_servers, &ro, &err);
	if (a.up == NULL)
		die(dsc_exit_class(err.code) == DSC_EXIT_TEMP ? DSC_EIO
		                                              : DSC_EUSAGE,
		    "%s", dsc_err_msg(&err));
	a.checker =
	    checker_new(a.base, a.cfg.bind, a.cfg.enable_script_checks, &err);
	if (a.checker == NULL)
		die(DSC_EIO, "%s", dsc_err_msg(&err));
	/* The port first: a busy port must fail before anything syncs. */
	if ((a.api = api_new(&a, &err)) == NULL)
		cli_die(&cli, &err);
	if ((a.local = local_new(&a, &err)) == NULL)
		cli_die(&cli, &err);

	sig[0] = evsignal_new(a.base, SIGTERM, on_stop, &a);
	sig[1] = evsignal_new(a.base, SIGINT, on_stop, &a);
	sig[2] = evsignal_new(a.base, SIGHUP, on_hup, &a);
	for (int i = 0; i < 3; i++)
		if (sig[i] == NULL || evsignal_add(sig[i], NULL) != 0)
			die(DSC_EIO, "unable to watch signals");
	log_info("node '%s' (%s) serving http://%s, %zu servers", a.cfg.name,
	    a.cfg.node_id, a.cfg.http, a.cfg.n_servers);
	if (event_base_dispatch(a.base) < 0)
		rc = DSC_EXIT_TEMP;

	api_free(a.api);
	local_free(a.local);
	checker_free(a.checker);
	rpca_free(a.up);
	for (int i = 0; i < 3; i++)
		event_free(sig[i]);
	event_base_free(a.base);
	sodium_memzero(a.key, sizeof(a.key));
	free_config(&a.cfg);
	log_info("stopped");
	return rc;
}

/*
 * main.c - dsc-server's command line: settings from --config, the data dir's
 * server.json and flags (in that order, later wins), the cluster key, the
 * signals, and the exit status (0 clean stop, 2 usage, 3 temporary such as
 * a busy port, 4 permanent such as bad config, corrupt data or a bad key).
 */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <sodium.h>

#include "duration.h"
#include "fileio.h"
#include "log.h"

#define PROG "dsc-server"
#define VERSION SERVER_VERSION
#define STATE_FILE "server.json"
#define USAGE                                                                  \
	"usage: dsc-server keygen FILE\n"                                      \
	"       dsc-server [--config FILE] --name NAME --bind ADDR[:PORT]\n"   \
	"                  --data-dir DIR --key-file FILE\n"                   \
	"                  [--bootstrap-expect N] [--join ADDR[:PORT]]...\n"   \
	"                  [--peer NAME=ADDR:PORT]... [--tick-ms MS]\n"        \
	"                  [--election-ticks N] [--snapshot-every N]\n"        \
	"                  [--snapshot-trailing N] [--wal-segment-size BYTES]\n"\
	"                  [--node-ttl DURATION] [-v]... [--log-time]\n"      \
	"       dsc-server --data-dir DIR --key-file FILE   (restart)\n"

enum opt {
	OPT_NAME = 256, OPT_BIND, OPT_DATA_DIR, OPT_KEY_FILE, OPT_EXPECT,
	OPT_JOIN, OPT_CONFIG, OPT_PEER, OPT_TICK_MS, OPT_ELECTION_TICKS,
	OPT_SNAP_EVERY, OPT_SNAP_TRAILING, OPT_SEGMENT_SIZE, OPT_LOG_TIME,
	OPT_NODE_TTL,
};

static const struct option longopts[] = {
	{ "name", required_argument, NULL, OPT_NAME },
	{ "bind", required_argument, NULL, OPT_BIND },
	{ "data-dir", required_argument, NULL, OPT_DATA_DIR },
	{ "key-file", required_argument, NULL, OPT_KEY_FILE },
	{ "bootstrap-expect", required_argument, NULL, OPT_EXPECT },
	{ "join", required_argument, NULL, OPT_JOIN },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "peer", required_argument, NULL, OPT_PEER },
	{ "tick-ms", required_argument, NULL, OPT_TICK_MS },
	{ "election-ticks", required_argument, NULL, OPT_ELECTION_TICKS },
	{ "snapshot-every", required_argument, NULL, OPT_SNAP_EVERY },
	{ "snapshot-trailing", required_argument, NULL, OPT_SNAP_TRAILING },
	{ "wal-segment-size", required_argument, NULL, OPT_SEGMENT_SIZE },
	{ "node-ttl", required_argument, NULL, OPT_NODE_TTL },
	{ "log-time", no_argument, NULL, OPT_LOG_TIME },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn))
usage(void)
{
	fputs(USAGE, stderr);
	exit(DSC_EXIT_USAGE);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void __attribute__((noreturn))
die_err(const struct dsc_err *err)
{
	die(dsc_exit_class(err->code), "%s", dsc_err_msg(err));
}

static bool
copy(char *dst, size_t cap, const char *src)
{
	if (src == NULL || strlen(src) >= cap)
		return false;
	strcpy(dst, src);
	return true;
}

static unsigned long
number(const char *what, const char *s, unsigned long lo, unsigned long hi)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo ||
	    v > hi)
		die(DSC_EXIT_USAGE, "%s '%s' must be a number from %lu to %lu",
		    what, s, lo, hi);
	return v;
}

/* "ADDR" or "ADDR:PORT"; the port defaults to 8300. */
static void
set_addr(char *dst, const char *what, const char *s)
{
	char buf[SERVER_ADDR_MAX];
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (strchr(s, ':') == NULL || (s[0] == '[' && strstr(s, "]:") == NULL))
		snprintf(buf, sizeof(buf), "%s:%d", s, SERVER_DEFAULT_PORT);
	else if (!copy(buf, sizeof(buf), s))
		die(DSC_EXIT_USAGE, "%s '%s' is too long", what, s);
	if (evutil_parse_sockaddr_port(buf, (struct sockaddr *)&ss, &len) != 0)
		die(DSC_EXIT_USAGE, "%s '%s' is not ADDR:PORT", what, s);
	strcpy(dst, buf);
}

static void
add_join(struct server_config *c, const char *s)
{
	if (c->n_joins == SERVER_MAX_JOINS)
		die(DSC_EXIT_USAGE, "at most %d --join addresses",
		    SERVER_MAX_JOINS);
	set_addr(c->joins[c->n_joins++], "join address", s);
}

static void
add_peer(struct server_config *c, const char *s)
{
	const char *eq = strchr(s, '=');
	struct server_peer_addr *p;

	if (eq == NULL || eq == s || (size_t)(eq - s) >= SERVER_NAME_MAX ||
	    c->n_peer_addrs == RAFT_MAX_SERVERS)
		die(DSC_EXIT_USAGE, "--peer '%s' must be NAME=ADDR:PORT", s);
	p = &c->peer_addrs[c->n_peer_addrs++];
	memcpy(p->name, s, (size_t)(eq - s));
	p->name[eq - s] = '\0';
	set_addr(p->addr, "peer address", eq + 1);
}

static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= SERVER_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

/*
 * A node TTL from a flag (@text) or the config file (@v, a Go duration
 * string or integer nanoseconds); DSC_EINVAL when it is not a duration
 * from SERVER_NODE_TTL_MIN_MS to SERVER_NODE_TTL_MAX_MS.
 */
static int
node_ttl(const char *text, const json_t *v, unsigned *out, struct dsc_err *err)
{
	int64_t ns;
	int rv = text != NULL ? dur_parse(text, &ns, err) : dur_json(v, &ns, err);

	if (rv != 0)
		return rv;
	if (ns < (int64_t)SERVER_NODE_TTL_MIN_MS * DUR_NS_PER_MS ||
	    ns > (int64_t)SERVER_NODE_TTL_MAX_MS * DUR_NS_PER_MS)
		return dsc_errorf(err, DSC_EINVAL,
				  "node TTL must be from %ds to %dh",
				  SERVER_NODE_TTL_MIN_MS / 1000,
				  SERVER_NODE_TTL_MAX_MS / 3600000);
	*out = (unsigned)(ns / DUR_NS_PER_MS);
	return 0;
}

static char config_path[4096];	/* --config, for SIGHUP */
static int verbose;		/* -v count; beats the files' log_level */

/*
 * The settings a running server can take again on SIGHUP: "peers" (an
 * object NAME: "ADDR:PORT", replacing the per-peer address overrides) and
 * "log_level" (error, warn, info, debug). Other keys are left to
 * apply_json. Returns 0, or DSC_EINVAL with @err saying what is wrong.
 */
static int
apply_reloadable(struct server_config *c, const char *k, const json_t *v,
		 struct dsc_err *err)
{
	static const char *const levels[] = { "error", "warn", "info",
					      "debug" };
	struct sockaddr_storage ss;
	const char *name;
	json_t *addr;

	if (strcmp(k, "log_level") == 0) {
		for (int i = 0; i < 4; i++)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), levels[i]) == 0) {
				c->log_level = i;
				return 0;
			}
		return dsc_errorf(err, DSC_EINVAL,
				  "log_level must be error, warn, info or debug");
	}
	if (!json_is_object(v) || json_object_size(v) > RAFT_MAX_SERVERS)
		return dsc_errorf(err, DSC_EINVAL,
				  "peers must be an object of at most %d "
				  "NAME: \"ADDR:PORT\" pairs", RAFT_MAX_SERVERS);
	c->n_peer_addrs = 0;
	json_object_foreach((json_t *)v, name, addr) {
		struct server_peer_addr *p = &c->peer_addrs[c->n_peer_addrs];
		int len = sizeof(ss);

		if (!json_is_string(addr) || !valid_name(name) ||
		    !copy(p->addr, sizeof(p->addr), json_string_value(addr)) ||
		    evutil_parse_sockaddr_port(p->addr, (struct sockaddr *)&ss,
					       &len) != 0)
			return dsc_errorf(err, DSC_EINVAL,
					  "peers: '%s' must map to \"ADDR:PORT\"",
					  name);
		strcpy(p->name, name);
		c->n_peer_addrs++;
	}
	return 0;
}

/* Settings from a JSON object: dsc.conf(5) server keys, or server.json. */
static void
apply_json(struct server_config *c, const json_t *j, const char *file)
{
	const char *k;
	json_t *v;
	size_t i;
	json_t *e;

	json_object_foreach((json_t *)j, k, v) {
		if (strcmp(k, "name") == 0 && json_is_string(v)) {
			if (!copy(c->name, sizeof(c->name), json_string_value(v)))
				die(DSC_EXIT_PERM, "%s: name too long", file);
		} else if (strcmp(k, "bind") == 0 && json_is_string(v)) {
			set_addr(c->bind, "bind address", json_string_value(v));
		} else if (strcmp(k, "data_dir") == 0 && json_is_string(v)) {
			if (!copy(c->data_dir, sizeof(c->data_dir),
				  json_string_value(v)))
				die(DSC_EXIT_PERM, "%s: data_dir too long", file);
		} else if (strcmp(k, "key_file") == 0 && json_is_string(v)) {
			if (!copy(c->key_file, sizeof(c->key_file),
				  json_string_value(v)))
				die(DSC_EXIT_PERM, "%s: key_file too long", file);
		} else if (strcmp(k, "bootstrap_expect") == 0 &&
			   json_is_integer(v) && json_integer_value(v) >= 0 &&
			   json_integer_value(v) <= RAFT_MAX_SERVERS) {
			c->bootstrap_expect = (unsigned)json_integer_value(v);
		} else if (strcmp(k, "join") == 0 && json_is_array(v)) {
			c->n_joins = 0;
			json_array_foreach(v, i, e) {
				if (!json_is_string(e))
					die(DSC_EXIT_PERM, "%s: join: strings only",
					    file);
				add_join(c, json_string_value(e));
			}
		} else if (strcmp(k, "tick_ms") == 0 && json_is_integer(v) &&
			   json_integer_value(v) >= 5 &&
			   json_integer_value(v) <= 10000) {
			c->tick_ms = (unsigned)json_integer_value(v);
		} else if (strcmp(k, "election_ticks") == 0 &&
			   json_is_integer(v) && json_integer_value(v) >= 3 &&
			   json_integer_value(v) <= 1000) {
			c->election_ticks = (unsigned)json_integer_value(v);
		} else if (strcmp(k, "snapshot_every") == 0 &&
			   json_is_integer(v) && json_integer_value(v) >= 0) {
			c->snapshot_every = (uint64_t)json_integer_value(v);
		} else if (strcmp(k, "snapshot_trailing") == 0 &&
			   json_is_integer(v) && json_integer_value(v) >= 0) {
			c->snapshot_trailing = (uint64_t)json_integer_value(v);
		} else if (strcmp(k, "wal_segment_size") == 0 &&
			   json_is_integer(v) &&
			   json_integer_value(v) >= 4096 &&
			   json_integer_value(v) <= (1 << 30)) {
			c->segment_size = (size_t)json_integer_value(v);
		} else if (strcmp(k, "node_ttl") == 0) {
			struct dsc_err err = DSC_ERR_INIT;

			if (node_ttl(NULL, v, &c->node_ttl_ms, &err) != 0)
				die(DSC_EXIT_PERM, "%s: node_ttl: %s", file,
				    err.msg);
		} else if (strcmp(k, "peers") == 0 ||
			   strcmp(k, "log_level") == 0) {
			struct dsc_err err = DSC_ERR_INIT;

			if (apply_reloadable(c, k, v, &err) != 0)
				die(DSC_EXIT_PERM, "%s: %s", file, err.msg);
		} else if (strcmp(k, "id") == 0) {
			/* server.json only; read by load_identity */
		} else {
			die(DSC_EXIT_PERM, "%s: unknown or invalid setting '%s'",
			    file, k);
		}
	}
}

static json_t *
load_json(const char *path, bool must_exist)
{
	json_error_t je;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);

	if (j == NULL && (must_exist || errno != ENOENT)) {
		if (!must_exist && access(path, F_OK) != 0)
			return NULL;
		die(DSC_EXIT_PERM, "%s:%d:%d: %s", path, je.line, je.column,
		    je.text);
	}
	if (j != NULL && !json_is_object(j))
		die(DSC_EXIT_PERM, "%s: expected a JSON object", path);
	return j;
}

/* The Raft id is chosen once, at random, and kept with the data. */
static uint64_t
load_identity(struct server_config *c, const json_t *state)
{
	const char *t = json_string_value(json_object_get(state, "id"));
	uint64_t id = 0;
	char *end;

	if (t != NULL) {
		id = strtoull(t, &end, 16);
		if (*end != '\0' || id == 0)
			die(DSC_EXIT_PERM, "%s/" STATE_FILE ": bad id", c->data_dir);
		return id;
	}
	while (id == 0)
		randombytes_buf(&id, sizeof(id));
	return id;
}

static void
save_state(const struct server_config *c, uint64_t id)
{
	struct dsc_err err = DSC_ERR_INIT;
	char path[4200], hex[17], *text;
	json_t *j, *joins = json_array();

	for (size_t i = 0; i < c->n_joins; i++)
		json_array_append_new(joins, json_string(c->joins[i]));
	snprintf(hex, sizeof(hex), "%016" PRIx64, id);
	j = json_pack("{s:s, s:s, s:s, s:i, s:o}", "id", hex, "name", c->name,
		      "bind", c->bind, "bootstrap_expect",
		      (int)c->bootstrap_expect, "join", joins);
	snprintf(path, sizeof(path), "%s/" STATE_FILE, c->data_dir);
	if (j == NULL || (text = json_dumps(j, JSON_INDENT(1))) == NULL)
		die(DSC_EXIT_TEMP, "unable to write '%s': out of memory", path);
	if (fileio_replace(path, text, strlen(text), 0600, &err) != 0)
		die_err(&err);
	free(text);
	json_decref(j);
}

static int
keygen(int argc, char **argv)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (argc != 3)
		usage();
	if (auth_init(&err) != 0 || auth_keygen(argv[2], &err) != 0)
		die_err(&err);
	return 0;
}

/*
 * SIGHUP: read the --config file again and take what can change while
 * running (apply_reloadable); a file that does not parse changes nothing.
 * Everything else needs a restart.
 */
static void
reload(struct server *s)
{
	struct server_config c = s->cfg;
	struct dsc_err err = DSC_ERR_INIT;
	json_error_t je;
	const char *k;
	json_t *j, *v;

	if (config_path[0] == '\0') {
		log_info("SIGHUP: no --config file to reload");
		return;
	}
	j = json_load_file(config_path, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL || !json_is_object(j)) {
		log_warn("SIGHUP: '%s':%d:%d: %s; nothing changed", config_path,
			 je.line, je.column, j == NULL ? je.text : "not an object");
		json_decref(j);
		return;
	}
	json_object_foreach(j, k, v) {
		if ((strcmp(k, "peers") == 0 || strcmp(k, "log_level") == 0) &&
		    apply_reloadable(&c, k, v, &err) != 0) {
			log_warn("SIGHUP: '%s': %s; nothing changed", config_path,
				 err.msg);
			json_decref(j);
			return;
		}
	}
	json_decref(j);
	s->cfg.n_peer_addrs = c.n_peer_addrs;
	memcpy(s->cfg.peer_addrs, c.peer_addrs, sizeof(c.peer_addrs));
	s->cfg.log_level = c.log_level;
	log_set_level((enum log_level)c.log_level);
	cluster_on_conf(s);	/* re-applies the peer addresses */
	log_info("SIGHUP: reloaded '%s' (%zu peer address overrides, log "
		 "level %s)", config_path, c.n_peer_addrs,
		 log_level_name((enum log_level)c.log_level));
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)what;
	if (sig == SIGHUP) {
		reload(s);
		return;
	}
	log_info("signal %d: stopping", (int)sig);
	server_stop(s, DSC_EXIT_OK);
}

static void
parse_args(int argc, char **argv, struct server_config *c, json_t **cfg_file)
{
	int ch;

	while ((ch = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CONFIG:
			json_decref(*cfg_file);
			*cfg_file = load_json(optarg, true);
			if (!copy(config_path, sizeof(config_path), optarg))
				die(DSC_EXIT_USAGE, "config path too long");
			break;
		case OPT_DATA_DIR:
			if (!copy(c->data_dir, sizeof(c->data_dir), optarg))
				die(DSC_EXIT_USAGE, "data dir path too long");
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			fputs(USAGE, stdout);
			exit(0);
		case 'V':
			puts(PROG " " VERSION);
			exit(0);
		case '?':
			usage();
		default:
			break;
		}
	}
	c->log_level = LOG_INFO + verbose;
}

/* Flags last: they override the config file and the data dir's state. */
static void
apply_flags(int argc, char **argv, struct server_config *c)
{
	bool joins = false, peers = false;
	int ch;

	optind = 0;	/* glibc: rescan from the start */
	while ((ch = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_NAME:
			if (!valid_name(optarg))
				die(DSC_EXIT_USAGE, "invalid name '%s'", optarg);
			strcpy(c->name, optarg);
			break;
		case OPT_BIND:
			set_addr(c->bind, "bind address", optarg);
			break;
		case OPT_DATA_DIR:
			if (!copy(c->data_dir, sizeof(c->data_dir), optarg))
				die(DSC_EXIT_USAGE, "data dir path too long");
			break;
		case OPT_KEY_FILE:
			if (!copy(c->key_file, sizeof(c->key_file), optarg))
				die(DSC_EXIT_USAGE, "key file path too long");
			break;
		case OPT_EXPECT:
			c->bootstrap_expect = (unsigned)number(
				"--bootstrap-expect", optarg, 1, RAFT_MAX_SERVERS);
			break;
		case OPT_JOIN:
			if (!joins)
				c->n_joins = 0;	/* flags replace the files' */
			joins = true;
			add_join(c, optarg);
			break;
		case OPT_PEER:
			if (!peers)
				c->n_peer_addrs = 0;
			peers = true;
			add_peer(c, optarg);
			break;
		case OPT_TICK_MS:
			c->tick_ms = (unsigned)number("--tick-ms", optarg, 5, 10000);
			break;
		case OPT_ELECTION_TICKS:
			c->election_ticks = (unsigned)number("--election-ticks",
							     optarg, 3, 1000);
			break;
		case OPT_SNAP_EVERY:
			c->snapshot_every = number("--snapshot-every", optarg, 0,
						   UINT32_MAX);
			break;
		case OPT_SNAP_TRAILING:
			c->snapshot_trailing = number("--snapshot-trailing",
						      optarg, 0, UINT32_MAX);
			break;
		case OPT_SEGMENT_SIZE:
			/* Small segments are for tests that fill a disk. */
			c->segment_size = number("--wal-segment-size", optarg,
						 4096, 1ul << 30);
			break;
		case OPT_NODE_TTL: {
			struct dsc_err err = DSC_ERR_INIT;

			if (node_ttl(optarg, NULL, &c->node_ttl_ms, &err) != 0)
				die(DSC_EXIT_USAGE, "--node-ttl: %s", err.msg);
			break;
		}
		case OPT_LOG_TIME:
			c->log_time = true;
			break;
		default:
			break;
		}
	}
	if (optind != argc)
		usage();
}

int
main(int argc, char **argv)
{
	static struct server s;
	struct server_config *c = &s.cfg;
	struct dsc_err err = DSC_ERR_INIT;
	json_t *cfg_file = NULL, *state = NULL;
	char path[4200];
	int rv;

	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return keygen(argc, argv);
	c->tick_ms = 100;
	c->election_ticks = 10;
	c->snapshot_every = 16384;
	c->snapshot_trailing = 1024;
	c->node_ttl_ms = SERVER_NODE_TTL_DEFAULT_MS;
	snprintf(c->bind, sizeof(c->bind), "127.0.0.1:%d", SERVER_DEFAULT_PORT);
	/* Settings: defaults, then the data dir's server.json, then --config,
	 * then flags. The data dir may itself come from --config. */
	parse_args(argc, argv, c, &cfg_file);
	if (c->data_dir[0] == '\0' && cfg_file != NULL)
		apply_json(c, cfg_file, "config");
	if (c->data_dir[0] == '\0')
		die(DSC_EXIT_USAGE, "--data-dir is required");
	if (mkdir(c->data_dir, 0700) != 0 && errno != EEXIST)
		die(DSC_EXIT_PERM, "unable to create '%s': %s", c->data_dir,
		    strerror(errno));
	snprintf(path, sizeof(path), "%s/" STATE_FILE, c->data_dir);
	state = load_json(path, false);
	if (state != NULL)
		apply_json(c, state, path);
	if (cfg_file != NULL)
		apply_json(c, cfg_file, "config");
	apply_flags(argc, argv, c);
	if (verbose > 0)
		c->log_level = LOG_INFO + verbose;
	if (c->name[0] == '\0' || c->key_file[0] == '\0')
		die(DSC_EXIT_USAGE, "--name and --key-file are required on "
				    "first start");
	log_init(PROG, (enum log_level)c->log_level, c->log_time);
	if (auth_init(&err) != 0 || auth_key_load(c->key_file, s.key, &err) != 0)
		die_err(&err);
	s.id = load_identity(c, state);
	save_state(c, s.id);
	json_decref(state);
	json_decref(cfg_file);

	signal(SIGPIPE, SIG_IGN);
	s.base = event_base_new();
	if (s.base == NULL)
		die(DSC_EXIT_TEMP, "unable to create the event loop");
	rv = server_start(&s, &err);
	if (rv != 0) {
		log_err("%s", dsc_err_msg(&err));
		return dsc_exit_class(rv);
	}
	s.sigterm_ev = evsignal_new(s.base, SIGTERM, on_signal, &s);
	s.sigint_ev = evsignal_new(s.base, SIGINT, on_signal, &s);
	s.sighup_ev = evsignal_new(s.base, SIGHUP, on_signal, &s);
	event_add(s.sigterm_ev, NULL);
	event_add(s.sigint_ev, NULL);
	event_add(s.sighup_ev, NULL);
	event_base_dispatch(s.base);
	log_info("stopped");
	server_release(&s);
	event_free(s.sigterm_ev);
	event_free(s.sigint_ev);
	event_free(s.sighup_ev);
	event_base_free(s.base);
	return s.exit_code;
}

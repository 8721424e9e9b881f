/*
 * dsc-rpc - call one JSON-RPC method on dsc servers, for tests and by hand.
 *
 * Sends METHOD with the JSON object PARAMS (default {}) to the -s servers
 * (in order, failing over; default 127.0.0.1:8300) through libcommon/rpcc,
 * signed with the key in -k (default $DSC_KEY_FILE), and prints the result
 * as compact JSON with sorted keys. -w marks a write (ClientID and Seq are
 * added); -t bounds the call (default 5 s); -b binds outgoing connections
 * to a local address (TESTING.md 4). Hidden options for the authentication
 * tests, one attempt on the first server each: --replay sends one signed
 * request twice, reporting both outcomes; --tamper flips a bit of the body
 * (the id's first digit: the JSON stays valid) after signing; --no-auth
 * sends no authentication headers; --skew SECS signs with a shifted clock.
 * Exit status is STYLE.md 2.7's (with --replay, the last send's).
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "auth.h"
#include "buf.h"
#include "err.h"
#include "rpcc.h"

#define USAGE                                                                  \
	"usage: dsc-rpc [-hw] [-b bind-ip] [-k keyfile] [-s addr:port]... "    \
	"[-t secs] method [json-params]\n(-k defaults to $DSC_KEY_FILE)\n"
#define TIMEOUT_MAX_SECS 3600

struct opts {
	const char *servers[RPCC_MAX_SERVERS];
	size_t n_servers;
	const char *key_file, *method, *params;
	struct rpcc_options rpcc;
	unsigned flags;
	bool replay, tamper, no_auth, raw;
	long skew;
};

static const struct option longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "replay", no_argument, NULL, 'R' },
	{ "tamper", no_argument, NULL, 'T' },
	{ "no-auth", no_argument, NULL, 'N' },
	{ "skew", required_argument, NULL, 'S' },
	{ NULL, 0, NULL, 0 },
};

static _Noreturn void
usage(int code)
{
	fputs(USAGE, code == 0 ? stdout : stderr);
	exit(code);
}

/* Prints one outcome, result or error, and takes @res; returns its status. */
static int
report(int rc, json_t **res, const struct dsc_err *err)
{
	char *text = rc == 0 ? json_dumps(*res, JSON_COMPACT | JSON_SORT_KEYS |
					  JSON_ENCODE_ANY) : NULL;

	json_decref(*res);
	*res = NULL;
	if (text == NULL) {
		fprintf(stderr, "dsc-rpc: error: %s\n",
		    rc != 0 ? dsc_err_msg(err) : "out of memory");
		return dsc_exit_class(rc != 0 ? rc : DSC_ENOMEM);
	}
	printf("%s\n", text);
	fflush(stdout);
	free(text);
	return 0;
}

/* The hidden test modes: one signed request, sent as asked. */
static int
run_raw(struct rpcc *c, const struct opts *o, json_t *params)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct buf body = BUF_INIT;
	struct auth_req_sig sig;
	struct auth_req_hdrs h;
	json_t *res = NULL;
	char *id;
	int rc, status = 0;

	if ((rc = rpcc_build(c, o->method, params, o->flags, &body, &err)) ||
	    (rc = rpcc_sign(c, time(NULL) + o->skew, body.p, body.len, &sig,
		 &err)))
		exit(report(rc, &res, &err));
	auth_req_sig_hdrs(&sig, &h);
	if (o->tamper && (id = strstr((char *)body.p, "\"id\":")) != NULL)
		id[5] ^= 1;
	for (int i = 0; i < (o->replay ? 2 : 1); i++) {
		rc = rpcc_send(c, 0, body.p, body.len, o->no_auth ? NULL : &h,
		    &res, &err);
		status = report(rc, &res, &err);
	}
	buf_release(&body);
	return status;
}

static void
parse(int argc, char *argv[], struct opts *o)
{
	char *end;
	double secs;
	int ch;

	while ((ch = getopt_long(argc, argv, "b:hk:s:t:w", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'b':
			o->rpcc.bind_ip = optarg;
			break;
		case 'h':
			usage(0);
		case 'k':
			o->key_file = optarg;
			break;
		case 's':
			if (o->n_servers == RPCC_MAX_SERVERS)
				usage(2);
			o->servers[o->n_servers++] = optarg;
			break;
		case 't':
			secs = strtod(optarg, &end);
			if (*end != '\0' || !(secs >= 0.001) ||
			    secs > TIMEOUT_MAX_SECS)
				usage(2);
			o->rpcc.timeout_ms = (unsigned)(secs * 1000);
			break;
		case 'w':
			o->flags |= RPCC_WRITE;
			break;
		case 'R': case 'T': case 'N':
			o->replay |= ch == 'R';
			o->tamper |= ch == 'T';
			o->no_auth |= ch == 'N';
			o->raw = true;
			break;
		case 'S':
			o->skew = strtol(optarg, &end, 10);
			o->raw = true;
			if (*optarg == '\0' || *end != '\0')
				usage(2);
			break;
		default:
			usage(2);
		}
	}
	if (argc - optind < 1 || argc - optind > 2)
		usage(2);
	o->method = argv[optind];
	o->params = argc - optind == 2 ? argv[optind + 1] : NULL;
	if (!o->key_file && !(o->key_file = getenv("DSC_KEY_FILE")))
		usage(2); /* USAGE says where the key comes from */
	if (o->n_servers == 0)
		o->servers[o->n_servers++] = "127.0.0.1:8300";
}

int
main(int argc, char *argv[])
{
	struct opts o = { .rpcc = RPCC_OPTIONS_INIT };
	struct dsc_err err = DSC_ERR_INIT;
	uint8_t key[AUTH_KEY_SIZE];
	json_t *params = NULL, *res = NULL;
	json_error_t jerr;
	struct rpcc *c;
	int status;

	parse(argc, argv, &o);
	if (o.params != NULL) {
		params = json_loads(o.params, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(params)) {
			fprintf(stderr, "dsc-rpc: bad params: %s\n",
			    params == NULL ? jerr.text : "not an object");
			usage(2);
		}
	}
	if (auth_key_load(o.key_file, key, &err) != 0)
		exit(report(err.code, &res, &err));
	c = rpcc_new(key, o.servers, o.n_servers, &o.rpcc, &err);
	sodium_memzero(key, sizeof(key));
	if (c == NULL)
		exit(report(err.code, &res, &err));
	status = o.raw ? run_raw(c, &o, params) :
	    report(rpcc_call(c, o.method, params, o.flags, &res, NULL, &err),
		&res, &err);
	rpcc_free(c);
	json_decref(params);
	return status;
}

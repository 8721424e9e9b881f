/*
 * dsc-load.c - a closed-loop load generator for dsc-server's JSON-RPC: C
 * client threads, each with its own keep-alive connection (rpcc), send
 * requests back to back for a fixed time and record every latency. Prints
 * one JSON line: ops, errors, ops/s, p50/p99/max latency in ms. Errors are
 * never counted as throughput.
 *
 * Workloads: `register` (each request registers a distinct instance of
 * service "web" with a ~225-byte Consul-shaped body, as the benchmark
 * issue asks), `lookup` (health.service web, default consistency) and
 * `lookup-stale`.
 *
 * Usage: dsc-load -k KEYFILE -s ADDR:PORT [-s ...] [-c CLIENTS] [-d SECS]
 *                 [-b BIND_IP] register|lookup|lookup-stale
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "auth.h"
#include "rpcc.h"

#define USAGE                                                                  \
	"usage: dsc-load -k KEYFILE -s ADDR:PORT [-s ...] [-c CLIENTS] "       \
	"[-d SECS] [-b BIND_IP]\n                register|lookup|lookup-stale\n"
#define MAX_CLIENTS 1024
#define MAX_SERVERS 8
#define MAX_SAMPLES (1u << 22)

struct shared {
	uint8_t key[AUTH_KEY_SIZE];
	const char *servers[MAX_SERVERS];
	size_t n_servers;
	const char *bind_ip;
	const char *work;
	double deadline;
	double *lat;		/* all clients' latencies, ms */
	size_t n_lat;
	unsigned long errors;
	pthread_mutex_t mu;
};

struct client {
	struct shared *sh;
	unsigned id;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static json_t *
request(const struct client *c, unsigned long n, const char **method)
{
	char id[64], node[64], addr[32];

	if (strcmp(c->sh->work, "register") == 0) {
		*method = "catalog.register";
		snprintf(id, sizeof(id), "web-%u-%lu", c->id, n);
		snprintf(node, sizeof(node), "node-%u-%lu", c->id, n % 1000);
		snprintf(addr, sizeof(addr), "10.%u.%lu.%lu", c->id % 250,
			 (n / 250) % 250, n % 250 + 1);
		return json_pack("{s:s, s:s, s:{s:s, s:s, s:[s,s], s:s, s:i, "
				 "s:{s:s, s:s}}}",
				 "Node", node, "Address", addr, "Service",
				 "Service", "web", "ID", id, "Tags", "primary",
				 "v1", "Address", addr, "Port", 8080, "Meta",
				 "version", "1.2.3", "zone", "eu-west-1a");
	}
	*method = "health.service";
	return json_pack("{s:s, s:s}", "Service", "web", "consistency",
			 strcmp(c->sh->work, "lookup-stale") == 0 ? "stale"
								  : "default");
}

static void *
run(void *arg)
{
	struct client *c = arg;
	struct shared *sh = c->sh;
	struct rpcc_options o = RPCC_OPTIONS_INIT;
	struct dsc_err err = DSC_ERR_INIT;
	unsigned long n = 0, errors = 0;
	double *lat = malloc(sizeof(double) * (MAX_SAMPLES / MAX_CLIENTS));
	size_t n_lat = 0;
	struct rpcc *r;

	o.bind_ip = sh->bind_ip;
	o.timeout_ms = 5000;
	r = rpcc_new(sh->key, sh->servers, sh->n_servers, &o, &err);
	if (r == NULL || lat == NULL) {
		fprintf(stderr, "dsc-load: error: %s\n", dsc_err_msg(&err));
		exit(3);
	}
	while (now_s() < sh->deadline) {
		const char *method;
		json_t *params = request(c, n++, &method), *res = NULL;
		double t0 = now_s();
		int rv = rpcc_call(r, method, params,
				   strcmp(sh->work, "register") == 0 ? RPCC_WRITE
								     : 0,
				   &res, NULL, &err);

		json_decref(params);
		json_decref(res);
		if (rv != 0)
			errors++;
		else if (n_lat < MAX_SAMPLES / MAX_CLIENTS)
			lat[n_lat++] = (now_s() - t0) * 1000;
	}
	rpcc_free(r);
	pthread_mutex_lock(&sh->mu);
	memcpy(sh->lat + sh->n_lat, lat, n_lat * sizeof(*lat));
	sh->n_lat += n_lat;
	sh->errors += errors;
	pthread_mutex_unlock(&sh->mu);
	free(lat);
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	static struct shared sh = { .mu = PTHREAD_MUTEX_INITIALIZER };
	static struct client clients[MAX_CLIENTS];
	pthread_t th[MAX_CLIENTS];
	struct dsc_err err = DSC_ERR_INIT;
	const char *keyfile = NULL;
	unsigned n = 1, secs = 5;
	double t0, el;
	int ch;

	while ((ch = getopt(argc, argv, "k:s:c:d:b:")) != -1) {
		switch (ch) {
		case 'k':
			keyfile = optarg;
			break;
		case 's':
			if (sh.n_servers == MAX_SERVERS)
				goto usage;
			sh.servers[sh.n_servers++] = optarg;
			break;
		case 'c':
			n = (unsigned)atoi(optarg);
			break;
		case 'd':
			secs = (unsigned)atoi(optarg);
			break;
		case 'b':
			sh.bind_ip = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || keyfile == NULL || sh.n_servers == 0 ||
	    n == 0 || n > MAX_CLIENTS || secs == 0 || secs > 3600)
		goto usage;
	sh.work = argv[optind];
	if (strcmp(sh.work, "register") != 0 && strcmp(sh.work, "lookup") != 0 &&
	    strcmp(sh.work, "lookup-stale") != 0)
		goto usage;
	if (auth_init(&err) != 0 || auth_key_load(keyfile, sh.key, &err) != 0) {
		fprintf(stderr, "dsc-load: error: %s\n", dsc_err_msg(&err));
		return dsc_exit_class(err.code);
	}
	sh.lat = malloc(sizeof(double) * MAX_SAMPLES);
	if (sh.lat == NULL)
		return 3;
	t0 = now_s();
	sh.deadline = t0 + secs;
	for (unsigned i = 0; i < n; i++) {
		clients[i] = (struct client){ &sh, i };
		if (pthread_create(&th[i], NULL, run, &clients[i]) != 0)
			return 3;
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	el = now_s() - t0;
	qsort(sh.lat, sh.n_lat, sizeof(double), cmp_double);
	printf("{\"work\":\"%s\",\"clients\":%u,\"secs\":%.2f,\"ops\":%zu,"
	       "\"errors\":%lu,\"ops_per_s\":%.1f,\"p50_ms\":%.3f,"
	       "\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
	       sh.work, n, el, sh.n_lat, sh.errors, (double)sh.n_lat / el,
	       sh.n_lat ? sh.lat[sh.n_lat / 2] : 0,
	       sh.n_lat ? sh.lat[(size_t)((double)sh.n_lat * 0.99)] : 0,
	       sh.n_lat ? sh.lat[sh.n_lat - 1] : 0);
	free(sh.lat);
	return sh.errors > 0 && sh.n_lat == 0 ? 3 : 0;
usage:
	fputs(USAGE, stderr);
	return 2;
}

/*
 * client.c - the clients: unique proposals and linearizable reads.
 *
 * Each client proposes payloads no one else writes ("c<client>-<seq>" plus
 * random padding) at the node it believes leads, moving on when told
 * DSC_ENOTLEADER. A proposal is acknowledged when the node it went to
 * applies an entry with the index and term raft_propose() returned; that
 * entry must carry the client's payload, and from then on it must be
 * durable (check.c). If that node applies a different term at the index
 * the proposal failed; if it crashes, restores a snapshot past the index
 * or the proposal times out, the outcome is unknown and nothing is
 * claimed. Reads go to any node, deposed leaders included, and record the
 * highest acknowledged index at request time for check 6.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define U(x) ((unsigned long long)(x))
/* Padding bytes added to a payload, at most. */
#define CLIENT_PAD_MAX 48
/* How long a client waits for an outcome before giving up on it. */
#define CLIENT_TIMEOUT_US (10 * SIM_ELECTION_US)
/* Proposals the bench client keeps outstanding, and their size. */
#define BENCH_WINDOW 256
#define BENCH_PAYLOAD 100

static void
drop_prop(struct sim *g, struct sim_node *n, size_t i)
{
	struct sim_prop *p = &n->props[i];

	if (p->client >= 0 && g->clients[p->client].outstanding > 0)
		g->clients[p->client].outstanding--;
	free(p->data);
	memmove(p, p + 1, (n->n_props - i - 1) * sizeof(*p));
	n->n_props--;
}

static void
add_prop(struct sim_node *n, const struct sim_prop *p)
{
	size_t i;

	sim_grow((void **)&n->props, &n->cap_props, n->n_props + 1,
		 sizeof(*n->props));
	i = n->n_props++;
	while (i > 0 && n->props[i - 1].index > p->index) {
		n->props[i] = n->props[i - 1];
		i--;
	}
	n->props[i] = *p;
}

static void
drop_read(struct sim *g, struct sim_node *n, size_t i)
{
	struct sim_readreq *r = &n->reads[i];

	if (r->client >= 0 && g->clients[r->client].reading > 0)
		g->clients[r->client].reading--;
	*r = n->reads[--n->n_reads];
}

static struct sim_node *
random_up(struct sim *g)
{
	int up[SIM_MAX_NODES], k = 0;

	for (int i = 0; i < g->n_slots; i++)
		if (sim_active(g, &g->nodes[i]))
			up[k++] = i;
	return k > 0 ? &g->nodes[up[prng_below(&g->rng, (uint64_t)k)]] : NULL;
}

static struct sim_node *
target(struct sim *g, struct sim_client *c)
{
	int s = cluster_slot(g, c->guess);

	if (s >= 0 && sim_active(g, &g->nodes[s]))
		return &g->nodes[s];
	return random_up(g);
}

/*
 * Proposes @len bytes at @n for client @ci (-1: none); returns the raft
 * error. *@at (if not NULL) gets the proposal's index and term.
 */
static int
propose(struct sim *g, struct sim_node *n, int ci, const uint8_t *data,
	uint32_t len, bool drain, struct sim_prop *at)
{
	struct sim_prop p = { 0 };
	int rv;

	rv = raft_propose(n->r, data, len, &p.index, &p.term);
	if (rv != 0)
		return rv;
	if (at != NULL)
		*at = p;
	p.client = ci;
	p.len = len;
	p.data = xmemdup(data, len);
	p.deadline = g->now + CLIENT_TIMEOUT_US;
	add_prop(n, &p);
	if (ci >= 0)
		g->clients[ci].outstanding++;
	g->st.proposals++;
	if (drain)
		cluster_drain(g, n);
	return 0;
}

static void
do_propose(struct sim *g, int ci)
{
	struct sim_client *c = &g->clients[ci];
	uint8_t buf[64 + CLIENT_PAD_MAX];
	struct sim_node *n;
	struct sim_prop at;
	int len, rv;

	len = snprintf((char *)buf, 64, "c%d-%llu", ci, U(c->seq));
	for (uint64_t i = prng_below(&g->rng, CLIENT_PAD_MAX + 1); i > 0; i--)
		buf[len++] = (uint8_t)('a' + prng_below(&g->rng, 26));
	for (int tries = 0; tries < 3; tries++) {
		if ((n = target(g, c)) == NULL)
			return;
		rv = propose(g, n, ci, buf, (uint32_t)len, true, &at);
		if (rv == 0) {
			sim_trace(g, "client %d: proposed c%d-%llu at n%llu "
				     "-> %llu/t%llu",
				  ci, ci, U(c->seq), U(n->id), U(at.index),
				  U(at.term));
			c->seq++;
			c->guess = n->id;
			return;
		}
		if (rv == DSC_EBUSY)
			return;
		if (rv != DSC_ENOTLEADER) {
			sim_violation(g, "n%llu: raft_propose failed: %s",
				      U(n->id), dsc_strerror(rv));
			return;
		}
		c->guess = raft_leader(n->r);
		if (c->guess == n->id || c->guess == 0)
			c->guess = random_up(g) != NULL ? random_up(g)->id : 0;
	}
}

static void
do_read(struct sim *g, int ci)
{
	struct sim_node *n = random_up(g);
	struct sim_readreq rq;

	if (n == NULL)
		return;
	rq.ctx = ++g->next_ctx;
	rq.required = g->chk.acked_index;
	rq.deadline = g->now + CLIENT_TIMEOUT_US;
	rq.client = ci;
	if (raft_read_index(n->r, rq.ctx) != 0)
		return;
	sim_grow((void **)&n->reads, &n->cap_reads, n->n_reads + 1,
		 sizeof(*n->reads));
	n->reads[n->n_reads++] = rq;
	g->clients[ci].reading++;
	sim_trace(g, "client %d: read %llu at n%llu (acknowledged so far: "
		     "%llu)",
		  ci, U(rq.ctx), U(n->id), U(rq.required));
	cluster_drain(g, n);
}

/* Bench: keep BENCH_WINDOW proposals in flight at the leader. */
static void
bench_fill(struct sim *g)
{
	struct sim_node *n = sim_leader(g);
	struct sim_client *c = &g->clients[0];
	uint8_t buf[BENCH_PAYLOAD];

	if (n == NULL || !sim_active(g, n))
		return;
	memset(buf, 'b', sizeof(buf));
	while (c->outstanding < BENCH_WINDOW) {
		snprintf((char *)buf, sizeof(buf), "b%llu", U(c->seq));
		if (propose(g, n, 0, buf, sizeof(buf), false, NULL) != 0)
			break;
		c->seq++;
	}
	cluster_drain(g, n);
}

void
client_event(struct sim *g, const struct sim_event *ev)
{
	const struct sim_profile *p = &g->prof;
	int ci = (int)ev->arg;

	if (g->phase != PHASE_FAULTS)
		return;
	if (g->opt.mode == SIM_MODE_BENCH) {
		bench_fill(g);
		sim_schedule(g, g->now + p->client_mean, EV_CLIENT, -1, ci);
		return;
	}
	if (ci == 0)
		client_expire(g);
	if (g->clients[ci].reading == 0 && prng_chance(&g->rng, p->read_pm))
		do_read(g, ci);
	else if (g->clients[ci].outstanding < p->window)
		do_propose(g, ci);
	sim_schedule(g, g->now + prng_range(&g->rng, p->client_mean / 2,
					    p->client_mean * 3 / 2),
		     EV_CLIENT, -1, ci);
}

void
client_start(struct sim *g)
{
	for (int i = 0; i < g->prof.n_clients; i++)
		sim_schedule(g, prng_range(&g->rng, 1, g->prof.client_mean),
			     EV_CLIENT, -1, i);
}

static void
ack(struct sim *g, struct sim_node *n, const struct sim_prop *p,
    const struct raft_entry *e)
{
	if (e->type != RAFT_ENTRY_NORMAL || e->len != p->len ||
	    (p->len > 0 && memcmp(e->data, p->data, p->len) != 0)) {
		sim_violation(g, "n%llu applied %llu/t%llu, the index and term "
				 "raft_propose returned, with another payload",
			      U(n->id), U(e->index), U(e->term));
		return;
	}
	g->st.acks++;
	if (p->client < 0)
		sim_trace(g, "liveness proposal acknowledged %llu/t%llu at "
			     "n%llu",
			  U(e->index), U(e->term), U(n->id));
	else if (g->opt.mode != SIM_MODE_BENCH)
		sim_trace(g, "client %d: acknowledged %llu/t%llu at n%llu",
			  p->client, U(e->index), U(e->term), U(n->id));
	check_acked(g, e->index, e->term);
}

void
client_on_apply(struct sim *g, struct sim_node *n, const struct raft_entry *e)
{
	while (n->n_props > 0 && n->props[0].index <= e->index) {
		if (n->props[0].index == e->index &&
		    n->props[0].term == e->term)
			ack(g, n, &n->props[0], e);
		drop_prop(g, n, 0);
	}
}

void
client_on_read(struct sim *g, struct sim_node *n, const struct raft_read *rd)
{
	for (size_t i = 0; i < n->n_reads; i++) {
		struct sim_readreq *r = &n->reads[i];

		if (r->ctx != rd->context)
			continue;
		if (rd->ok) {
			g->st.reads_ok++;
			sim_trace(g, "client %d: read %llu at n%llu -> index "
				     "%llu",
				  r->client, U(r->ctx), U(n->id),
				  U(rd->index));
			check_read(g, n, r->ctx, rd->index, r->required);
		} else {
			g->st.reads_failed++;
			sim_trace(g, "client %d: read %llu at n%llu failed",
				  r->client, U(r->ctx), U(n->id));
		}
		drop_read(g, n, i);
		return;
	}
}

void
client_on_restore(struct sim *g, struct sim_node *n, uint64_t index)
{
	while (n->n_props > 0 && n->props[0].index <= index)
		drop_prop(g, n, 0);
}

void
client_node_lost(struct sim *g, struct sim_node *n)
{
	while (n->n_props > 0)
		drop_prop(g, n, n->n_props - 1);
	while (n->n_reads > 0)
		drop_read(g, n, n->n_reads - 1);
}

void
client_expire(struct sim *g)
{
	for (int s = 0; s < g->n_slots; s++) {
		struct sim_node *n = &g->nodes[s];

		for (size_t i = n->n_props; i-- > 0;)
			if (n->props[i].deadline < g->now)
				drop_prop(g, n, i);
		for (size_t i = n->n_reads; i-- > 0;)
			if (n->reads[i].deadline < g->now)
				drop_read(g, n, i);
	}
}

/* The liveness phase's proposal, outside any client's window. */
int
client_propose_live(struct sim *g, struct sim_node *n, uint64_t *index,
		    uint64_t *term)
{
	static const uint8_t live[] = "liveness";
	struct sim_prop at;
	int rv = propose(g, n, -1, live, sizeof(live) - 1, true, &at);

	if (rv == 0) {
		*index = at.index;
		*term = at.term;
	}
	return rv;
}

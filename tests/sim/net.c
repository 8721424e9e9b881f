/*
 * net.c - the simulated network.
 *
 * A message leaves a node through net_send(), which deep-copies it (the
 * ready it came from is borrowed until raft_advance()) into an envelope
 * and schedules its delivery after a random latency. The seed's profile
 * decides how often a message is dropped, delayed by up to a few election
 * timeouts, or duplicated; random latencies reorder messages on their own.
 * Partitions are a matrix of cut directed links, checked both when a
 * message is sent and when it arrives, so a cut also loses what was in
 * flight, as a dead TCP connection would.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct sim_env {
	struct raft_msg m;
	struct raft_entry ents[];	/* then the payload bytes */
};

/* A deep copy of @m in one allocation. */
static struct sim_env *
env_new(const struct raft_msg *m)
{
	size_t bytes = m->snapshot.len, hdr;
	struct sim_env *env;
	uint8_t *p;

	for (size_t i = 0; i < m->n_entries; i++)
		bytes += m->entries[i].len;
	hdr = sizeof(*env) + m->n_entries * sizeof(env->ents[0]);
	env = xmalloc(hdr + bytes);
	env->m = *m;
	p = (uint8_t *)env + hdr;
	for (size_t i = 0; i < m->n_entries; i++) {
		env->ents[i] = m->entries[i];
		env->ents[i].data = NULL;
		if (m->entries[i].len > 0) {
			memcpy(p, m->entries[i].data, m->entries[i].len);
			env->ents[i].data = p;
			p += m->entries[i].len;
		}
	}
	env->m.entries = m->n_entries > 0 ? env->ents : NULL;
	env->m.snapshot.data = NULL;
	if (m->snapshot.len > 0) {
		memcpy(p, m->snapshot.data, m->snapshot.len);
		env->m.snapshot.data = p;
	}
	return env;
}

void
net_env_free(struct sim_env *env)
{
	free(env);
}

const char *
net_msg_str(const struct raft_msg *m, char *buf, size_t cap)
{
	const char *name = raft_msg_type_name((enum raft_msg_type)m->type);
	int k;

	k = snprintf(buf, cap, "n%llu->n%llu %s t%llu",
		     (unsigned long long)m->from, (unsigned long long)m->to,
		     name, (unsigned long long)m->term);
	if (k < 0 || (size_t)k >= cap)
		return buf;
	switch (m->type) {
	case RAFT_MSG_APPEND:
		snprintf(buf + k, cap - (size_t)k, " prev=%llu/t%llu +%zu c%llu",
			 (unsigned long long)m->index,
			 (unsigned long long)m->log_term, m->n_entries,
			 (unsigned long long)m->commit);
		break;
	case RAFT_MSG_APPEND_RESP:
		snprintf(buf + k, cap - (size_t)k, " %s idx=%llu hint=%llu",
			 m->reject ? "REJECT" : "ok",
			 (unsigned long long)m->index,
			 (unsigned long long)m->hint);
		break;
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		snprintf(buf + k, cap - (size_t)k, " last=%llu/t%llu%s",
			 (unsigned long long)m->index,
			 (unsigned long long)m->log_term,
			 m->transfer ? " transfer" : "");
		break;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		snprintf(buf + k, cap - (size_t)k, " %s",
			 m->reject ? "REJECT" : "granted");
		break;
	case RAFT_MSG_HEARTBEAT:
	case RAFT_MSG_HEARTBEAT_RESP:
		snprintf(buf + k, cap - (size_t)k, " c%llu round=%llu",
			 (unsigned long long)m->commit,
			 (unsigned long long)m->context);
		break;
	case RAFT_MSG_SNAPSHOT:
		snprintf(buf + k, cap - (size_t)k, " snap=%llu/t%llu %zu bytes",
			 (unsigned long long)m->snapshot.meta.index,
			 (unsigned long long)m->snapshot.meta.term,
			 m->snapshot.len);
		break;
	case RAFT_MSG_READ_INDEX:
	case RAFT_MSG_READ_INDEX_RESP:
		snprintf(buf + k, cap - (size_t)k, " ctx=%llu idx=%llu%s",
			 (unsigned long long)m->context,
			 (unsigned long long)m->index,
			 m->reject ? " REJECT" : "");
		break;
	default:
		break;
	}
	return buf;
}

static void
schedule(struct sim *g, struct sim_env *env, int to, uint64_t after)
{
	struct sim_event ev = { 0 };

	ev.at = g->now + after;
	ev.kind = EV_MSG;
	ev.node = (int16_t)to;
	ev.env = env;
	queue_push(&g->q, &ev);
}

void
net_send(struct sim *g, const struct raft_msg *m)
{
	const struct sim_profile *p = &g->prof;
	int from = cluster_slot(g, m->from), to = cluster_slot(g, m->to);
	uint64_t lat;
	char buf[160];

	if (from < 0 || to < 0)
		return;
	if (g->net.cut[from][to]) {
		if (m->type != RAFT_MSG_HEARTBEAT &&
		    m->type != RAFT_MSG_HEARTBEAT_RESP)
			sim_trace(g, "  cut   %s",
				  net_msg_str(m, buf, sizeof(buf)));
		return;
	}
	if (g->net.faulty && prng_chance(&g->rng, p->drop_pm)) {
		g->st.drops++;
		sim_trace(g, "  DROP  %s", net_msg_str(m, buf, sizeof(buf)));
		return;
	}
	lat = prng_range(&g->rng, p->lat_min, p->lat_max);
	if (g->net.faulty && prng_chance(&g->rng, p->delay_pm)) {
		lat += prng_range(&g->rng, 1, p->delay_max);
		g->st.delays++;
		sim_trace(g, "  DELAY %s by %llu us",
			  net_msg_str(m, buf, sizeof(buf)),
			  (unsigned long long)lat);
	}
	schedule(g, env_new(m), to, lat);
	if (g->net.faulty && prng_chance(&g->rng, p->dup_pm)) {
		g->st.dups++;
		lat = prng_range(&g->rng, p->lat_min, p->lat_max + p->delay_max);
		sim_trace(g, "  DUP   %s after %llu us",
			  net_msg_str(m, buf, sizeof(buf)),
			  (unsigned long long)lat);
		schedule(g, env_new(m), to, lat);
	}
}

/* Delivers an EV_MSG event; the envelope is consumed. */
void
net_deliver(struct sim *g, struct sim_event *ev)
{
	struct sim_node *n = &g->nodes[ev->node];
	struct sim_env *env = ev->env;
	const struct raft_msg *m = &env->m;
	int from = cluster_slot(g, m->from), rv;
	char buf[160];

	if (n->state != NODE_UP || from < 0 || g->net.cut[from][ev->node]) {
		net_env_free(env);
		return;
	}
	if (n->paused_until > g->now) {
		/* A paused process reads its socket when it wakes. */
		schedule(g, env, ev->node,
			 n->paused_until - g->now +
				 prng_range(&g->rng, 0, g->prof.lat_min));
		return;
	}
	/* Heartbeats go to the status lines, except a new read round. */
	if ((m->type == RAFT_MSG_HEARTBEAT ||
	     m->type == RAFT_MSG_HEARTBEAT_RESP) &&
	    m->context <= g->net.round_traced[from]) {
		g->net.heartbeats++;
	} else {
		if (m->type == RAFT_MSG_HEARTBEAT ||
		    m->type == RAFT_MSG_HEARTBEAT_RESP)
			g->net.round_traced[from] = m->context;
		sim_trace(g, "  recv  %s", net_msg_str(m, buf, sizeof(buf)));
	}
	rv = raft_step(n->r, m);
	if (rv == DSC_EINVAL)
		sim_violation(g, "n%llu rejected as malformed a message a core "
				 "sent: %s",
			      (unsigned long long)n->id,
			      net_msg_str(m, buf, sizeof(buf)));
	else if (rv != 0)
		sim_violation(g, "n%llu: raft_step failed: %s",
			      (unsigned long long)n->id, dsc_strerror(rv));
	net_env_free(env);
	cluster_drain(g, n);
}

void
net_cut(struct sim *g, int from, int to)
{
	if (from != to) {
		g->net.cut[from][to] = true;
		g->net.partitioned = true;
	}
}

void
net_heal(struct sim *g)
{
	memset(g->net.cut, 0, sizeof(g->net.cut));
	g->net.partitioned = false;
}

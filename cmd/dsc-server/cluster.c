/*
 * cluster.c - who the servers are and how they come together.
 *
 * Every link starts with an INTRO: the sender's id, name, address, its
 * --bootstrap-expect, whether it already has a configuration, the servers it
 * knows (so addresses spread to everyone) and the set it would bootstrap
 * with. Addresses are not in the Raft configuration (which holds ids only);
 * they travel in INTROs and are cached in the data dir, so a restarted
 * server finds its peers with nothing but --data-dir.
 *
 * Bootstrap (--bootstrap-expect N): a server with no configuration forms
 * one only when it sees exactly N such servers, itself included, and every
 * one of them reports the very same set. Two servers can then never
 * bootstrap different configurations, the mistake that makes two clusters
 * with conflicting first entries; with more than N candidates nobody
 * bootstraps and the log says why.
 *
 * Joining: a server with no configuration and no bootstrap (or one that
 * found a cluster) sends JOIN to the servers it reaches; they pass it to the
 * leader, which adds it as a learner (§4.2.1) and promotes it once it has
 * caught up with the commit index -- raft_propose_conf() refuses until then.
 */
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "log.h"
#include "peers.h"

#define JOIN_EVERY_TICKS 10
#define MEMBERS_FILE "members.json"

static char intro_text[16384];

static struct server_member *
member_get(struct server *s, uint64_t id, bool create)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i].id == id)
			return &s->members[i];
	if (!create || s->n_members == sizeof(s->members) / sizeof(s->members[0]))
		return NULL;
	memset(&s->members[s->n_members], 0, sizeof(s->members[0]));
	s->members[s->n_members].id = id;
	return &s->members[s->n_members++];
}

const struct server_member *
cluster_member_by_id(const struct server *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (s->members[i].id == id)
			return &s->members[i];
	return NULL;
}

const struct server_member *
cluster_member_by_name(const struct server *s, const char *name)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (strcmp(s->members[i].name, name) == 0)
			return &s->members[i];
	return NULL;
}

static bool
in_cluster(const struct server *s)
{
	return raft_conf(s->raft)->n > 0;
}

static const char *
addr_for(const struct server *s, const struct server_member *m)
{
	/* A per-peer override (a delay proxy in tests) wins. */
	for (size_t i = 0; i < s->cfg.n_peer_addrs; i++)
		if (strcmp(s->cfg.peer_addrs[i].name, m->name) == 0)
			return s->cfg.peer_addrs[i].addr;
	return m->addr;
}

static void
id_hex(uint64_t id, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, id);
}

static bool
parse_id(const json_t *j, uint64_t *id)
{
	const char *t = json_string_value(j);
	char *end;

	if (t == NULL || strlen(t) != 16)
		return false;
	*id = strtoull(t, &end, 16);
	return *end == '\0' && *id != RAFT_NONE;
}

/* ---- the bootstrap view -------------------------------------------------- */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The servers this one would bootstrap with, sorted; returns how many. */
static size_t
candidates(const struct server *s, uint64_t *ids)
{
	size_t n = 0;

	if (s->cfg.bootstrap_expect == 0 || in_cluster(s))
		return 0;
	ids[n++] = s->id;
	for (size_t i = 0; i < s->n_members; i++) {
		const struct server_member *m = &s->members[i];

		if (m->link_up && !m->in_cluster &&
		    m->expect == s->cfg.bootstrap_expect &&
		    n < RAFT_MAX_SERVERS * 2)
			ids[n++] = m->id;
	}
	qsort(ids, n, sizeof(*ids), cmp_u64);
	return n;
}

/* Each member's last reported view, kept beside the table. */
static struct {
	uint64_t id;
	uint64_t ids[RAFT_MAX_SERVERS * 2];
	size_t n;
} views[RAFT_MAX_SERVERS * 2];
static size_t n_views;

static void
view_set(uint64_t id, const uint64_t *ids, size_t n)
{
	size_t i;

	for (i = 0; i < n_views && views[i].id != id; i++)
		;
	if (i == n_views) {
		if (n_views == sizeof(views) / sizeof(views[0]))
			return;
		n_views++;
	}
	views[i].id = id;
	views[i].n = n;
	memcpy(views[i].ids, ids, n * sizeof(*ids));
}

static bool
view_equals(uint64_t id, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n_views; i++)
		if (views[i].id == id)
			return views[i].n == n &&
			       memcmp(views[i].ids, ids, n * sizeof(*ids)) == 0;
	return false;
}

/* ---- INTRO ----------------------------------------------------------------- */

const char *
cluster_intro(struct server *s)
{
	uint64_t ids[RAFT_MAX_SERVERS * 2];
	size_t n = candidates(s, ids);
	json_t *j, *cands, *members;
	char hex[17];
	char *text;

	cands = json_array();
	members = json_array();
	for (size_t i = 0; i < n; i++) {
		id_hex(ids[i], hex);
		json_array_append_new(cands, json_string(hex));
	}
	for (size_t i = 0; i < s->n_members; i++) {
		const struct server_member *m = &s->members[i];

		if (m->addr[0] == '\0')
			continue;
		id_hex(m->id, hex);
		json_array_append_new(members,
				      json_pack("{s:s, s:s, s:s}", "id", hex,
						"name", m->name, "addr",
						m->addr));
	}
	id_hex(s->id, hex);
	j = json_pack("{s:s, s:s, s:s, s:i, s:b, s:o, s:o, s:s}", "id", hex,
		      "name", s->cfg.name, "addr", s->cfg.bind, "expect",
		      (int)s->cfg.bootstrap_expect, "cluster", in_cluster(s),
		      "candidates", cands, "members", members, "build",
		      SERVER_VERSION);
	text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (text == NULL || strlen(text) >= sizeof(intro_text)) {
		free(text);
		return "{}";
	}
	strcpy(intro_text, text);
	free(text);
	return intro_text;
}

static void
save_members(const struct server *s)
{
	struct dsc_err err = DSC_ERR_INIT;
	char path[4200], hex[17], *text;
	json_t *arr = json_array();

	for (size_t i = 0; i < s->n_members; i++) {
		const struct server_member *m = &s->members[i];

		if (m->addr[0] == '\0')
			continue;
		id_hex(m->id, hex);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "id",
						     hex, "name", m->name,
						     "addr", m->addr));
	}
	snprintf(path, sizeof(path), "%s/" MEMBERS_FILE, s->cfg.data_dir);
	text = arr != NULL ? json_dumps(arr, JSON_INDENT(1)) : NULL;
	if (text == NULL ||
	    fileio_replace(path, text, strlen(text), 0600, &err) != 0)
		log_warn("unable to save '%s' (a cache: not fatal): %s", path,
			 text == NULL ? "out of memory" : dsc_err_msg(&err));
	free(text);
	json_decref(arr);
}

/* Learns @id's name and address; returns true when something changed. */
static bool
learn(struct server *s, uint64_t id, const char *name, const char *addr)
{
	struct server_member *m;
	bool changed = false;

	if (id == s->id || name == NULL || addr == NULL ||
	    strlen(name) >= SERVER_NAME_MAX || strlen(addr) >= SERVER_ADDR_MAX)
		return false;
	m = member_get(s, id, true);
	if (m == NULL)
		return false;
	if (strcmp(m->name, name) != 0) {
		strcpy(m->name, name);
		changed = true;
	}
	if (strcmp(m->addr, addr) != 0) {
		strcpy(m->addr, addr);
		peers_set_addr(s->peers, id, addr_for(s, m));
		changed = true;
	}
	return changed;
}

void
cluster_load(struct server *s)
{
	char path[4200];
	json_t *arr, *e;
	size_t i;
	uint64_t id;

	snprintf(path, sizeof(path), "%s/" MEMBERS_FILE, s->cfg.data_dir);
	arr = json_load_file(path, JSON_REJECT_DUPLICATES, NULL);
	json_array_foreach(arr, i, e) {
		if (parse_id(json_object_get(e, "id"), &id))
			learn(s, id,
			      json_string_value(json_object_get(e, "name")),
			      json_string_value(json_object_get(e, "addr")));
	}
	json_decref(arr);
	for (i = 0; i < s->cfg.n_joins; i++)
		peers_join(s->peers, s->cfg.joins[i]);
	peers_set_intro(s->peers, cluster_intro(s));
}

void
cluster_on_intro(void *arg, uint64_t from, const char *text, size_t len)
{
	struct server *s = arg;
	uint64_t id, ids[RAFT_MAX_SERVERS * 2];
	struct server_member *m;
	json_t *j, *e;
	size_t i, n = 0;
	bool changed;

	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL || !parse_id(json_object_get(j, "id"), &id) ||
	    id != from) {
		log_warn("ignored a malformed INTRO from %016" PRIx64, from);
		json_decref(j);
		return;
	}
	changed = learn(s, id, json_string_value(json_object_get(j, "name")),
			json_string_value(json_object_get(j, "addr")));
	m = member_get(s, id, false);
	if (m != NULL) {
		const char *build =
			json_string_value(json_object_get(j, "build"));

		/* Older servers send none: their build stays unknown. */
		snprintf(m->build, sizeof(m->build), "%s",
			 build != NULL ? build : "");
		m->expect = (unsigned)json_integer_value(
			json_object_get(j, "expect"));
		m->in_cluster = json_is_true(json_object_get(j, "cluster"));
		m->link_up = true;
	}
	json_array_foreach(json_object_get(j, "candidates"), i, e) {
		if (n < RAFT_MAX_SERVERS * 2 && parse_id(e, &ids[n]))
			n++;
	}
	view_set(from, ids, n);
	json_array_foreach(json_object_get(j, "members"), i, e) {
		uint64_t mid;

		if (parse_id(json_object_get(e, "id"), &mid))
			changed |= learn(
				s, mid,
				json_string_value(json_object_get(e, "name")),
				json_string_value(json_object_get(e, "addr")));
	}
	json_decref(j);
	if (changed)
		save_members(s);
	peers_set_intro(s->peers, cluster_intro(s));
}

void
cluster_heard(struct server *s, uint64_t id)
{
	struct server_member *m = member_get(s, id, false);

	if (m != NULL) {
		m->heard_tick = s->ticks;
		m->heard = true;
	}
}

void
cluster_on_link(void *arg, uint64_t id, bool up)
{
	struct server *s = arg;
	struct server_member *m = member_get(s, id, false);

	if (m == NULL || m->link_up == up)
		return;
	m->link_up = up;
	/* A killed leader's links fail at once: campaign soon instead of
	 * after a whole election timeout (raft.h). */
	if (!up)
		raft_leader_lost(s->raft, id);
	peers_set_intro(s->peers, cluster_intro(s));
}

/* ---- bootstrap and join ------------------------------------------------------ */

static void
maybe_bootstrap(struct server *s)
{
	uint64_t ids[RAFT_MAX_SERVERS * 2];
	struct dsc_err err = DSC_ERR_INIT;
	struct raft_conf conf = { 0 };
	size_t n = candidates(s, ids);

	if (n != s->cfg.bootstrap_expect || n > RAFT_MAX_SERVERS)
		return;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != s->id && !view_equals(ids[i], ids, n))
			return;
	for (size_t i = 0; i < n; i++) {
		conf.servers[conf.n].id = ids[i];
		conf.servers[conf.n].suffrage = RAFT_VOTER;
		conf.n++;
	}
	if (server_bootstrap(s, &conf, &err) != 0) {
		log_err("%s", dsc_err_msg(&err));
		return;
	}
	log_info("bootstrapped a cluster of %zu servers", n);
	peers_set_intro(s->peers, cluster_intro(s));
}

static void
send_join(struct server *s)
{
	const char *intro = cluster_intro(s);

	for (size_t i = 0; i < s->n_members; i++) {
		const struct server_member *m = &s->members[i];

		if (m->link_up && m->in_cluster)
			(void)peers_send(s->peers, m->id, PEER_FRAME_JOIN, intro,
					 strlen(intro));
	}
}

void
cluster_on_join(struct server *s, uint64_t from, const uint8_t *p, size_t len)
{
	uint64_t id, lead = raft_leader(s->raft);
	json_t *j = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES,
			       NULL);
	int rv;

	if (j == NULL || !parse_id(json_object_get(j, "id"), &id)) {
		json_decref(j);
		return;
	}
	if (learn(s, id, json_string_value(json_object_get(j, "name")),
		  json_string_value(json_object_get(j, "addr"))))
		save_members(s);
	json_decref(j);
	if (raft_role(s->raft) != RAFT_LEADER) {
		if (lead != RAFT_NONE && lead != from)
			(void)peers_send(s->peers, lead, PEER_FRAME_JOIN, p, len);
		return;
	}
	if (raft_conf_find(raft_conf(s->raft), id) >= 0)
		return;
	rv = raft_propose_conf(s->raft, RAFT_CONF_ADD_LEARNER, id, NULL);
	if (rv == 0)
		log_info("adding server %016" PRIx64 " as a learner", id);
	server_kick(s);
}

/* On the leader: learners become voters once caught up (§4.2.1). */
static void
promote_learners(struct server *s)
{
	const struct raft_conf *c = raft_conf(s->raft);

	for (uint32_t i = 0; i < c->n; i++) {
		if (c->servers[i].suffrage != RAFT_LEARNER)
			continue;
		if (raft_propose_conf(s->raft, RAFT_CONF_PROMOTE,
				      c->servers[i].id, NULL) == 0) {
			log_info("promoting server %016" PRIx64 " to voter",
				 c->servers[i].id);
			return;	/* one change at a time */
		}
	}
}

void
cluster_tick(struct server *s)
{
	if (!in_cluster(s)) {
		if (s->cfg.bootstrap_expect > 0)
			maybe_bootstrap(s);
		if (!in_cluster(s) && s->ticks % JOIN_EVERY_TICKS == 0)
			send_join(s);
		return;
	}
	if (raft_role(s->raft) == RAFT_LEADER && !s->stopping)
		promote_learners(s);
}

void
cluster_on_conf(struct server *s)
{
	const struct raft_conf *c = raft_conf(s->raft);

	if (raft_conf_find(c, s->id) < 0 && c->n > 0)
		log_warn("this server is no longer in the configuration");
	for (uint32_t i = 0; i < c->n; i++) {
		struct server_member *m = member_get(s, c->servers[i].id, false);

		if (m != NULL && m->addr[0] != '\0')
			peers_set_addr(s->peers, m->id, addr_for(s, m));
	}
	peers_set_intro(s->peers, cluster_intro(s));
}

/* ---- operator requests --------------------------------------------------------- */

struct server_wait *
cluster_add_server(struct server *s, const char *name, const char *addr,
		   server_propose_fn *fn, void *arg, struct dsc_err *err)
{
	const struct server_member *m = cluster_member_by_name(s, name);

	if (raft_role(s->raft) != RAFT_LEADER) {
		dsc_errorf(err, DSC_ENOTLEADER, "not the leader");
		return NULL;
	}
	if (m == NULL) {
		/* Not met yet: reach out; it joins when the link is up. */
		peers_join(s->peers, addr);
		return server_defer_result(s, fn, arg, 0, "joining");
	}
	return server_propose_conf(s, RAFT_CONF_ADD_LEARNER, m->id, fn, arg,
				   err);
}

struct server_wait *
cluster_remove_server(struct server *s, const char *name,
		      server_propose_fn *fn, void *arg, struct dsc_err *err)
{
	const struct server_member *m = cluster_member_by_name(s, name);
	uint64_t id = m != NULL ? m->id : (name != NULL && strcmp(name, s->cfg.name) == 0 ? s->id : RAFT_NONE);

	if (id == RAFT_NONE ||
	    raft_conf_find(raft_conf(s->raft), id) < 0) {
		dsc_errorf(err, DSC_ENOTFOUND, "no server named '%s'",
			   name != NULL ? name : "");
		return NULL;
	}
	return server_propose_conf(s, RAFT_CONF_REMOVE, id, fn, arg, err);
}

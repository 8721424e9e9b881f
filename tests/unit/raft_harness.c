/*
 * raft_harness.c - the in-memory cluster behind the raft unit tests.
 *
 * See raft_harness.h for the model. Everything here allocates with libc
 * and dies on exhaustion: the harness must keep working while a test arms
 * dsc_mem_fail_after() against the cores.
 */
#include "raft_harness.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "t.h"

#define H_MAX_ID      RAFT_MAX_SERVERS
#define H_MAX_ROUNDS  10000
#define H_MAX_READIES 10000
#define H_DUMP_TAIL   400

/* ------------------------------------------------------------------------
 * Small things
 * ------------------------------------------------------------------------ */

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n == 0 ? 1 : n);
	if (p == NULL) {
		fprintf(stderr, "raft_harness: out of memory\n");
		abort();
	}
	return p;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

	if (p == NULL) {
		fprintf(stderr, "raft_harness: out of memory\n");
		abort();
	}
	return p;
}

static uint8_t *
xmemdup(const void *p, size_t n)
{
	uint8_t *q;

	if (n == 0)
		return NULL;
	q = xrealloc(NULL, n);
	memcpy(q, p, n);
	return q;
}

static char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

static char *
xvasprintf(const char *fmt, va_list ap)
{
	va_list aq;
	char probe[1], *s;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(probe, sizeof(probe), fmt, aq);
	va_end(aq);
	if (n < 0)
		n = 0;
	s = xrealloc(NULL, (size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* A string builder that never fails. */
struct sb {
	char *s;
	size_t len, cap;
};

static void sb_addf(struct sb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sb_addf(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t n;

	va_start(ap, fmt);
	s = xvasprintf(fmt, ap);
	va_end(ap);
	n = strlen(s);
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
	free(s);
}

static const char *
sb_str(struct sb *b)
{
	if (b->s == NULL)
		sb_addf(b, "%s", "");
	return b->s;
}

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* ------------------------------------------------------------------------
 * Entries and messages, deep copies
 * ------------------------------------------------------------------------ */

static void
entry_copy(struct raft_entry *dst, const struct raft_entry *src)
{
	*dst = *src;
	dst->data = xmemdup(src->data, src->len);
}

static struct raft_entry *
entries_copy(const struct raft_entry *src, size_t n)
{
	struct raft_entry *e;

	if (n == 0)
		return NULL;
	e = xcalloc(n, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		entry_copy(&e[i], &src[i]);
	return e;
}

static void
entries_free(struct raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].data);
	free(e);
}

static void
msg_copy(struct raft_msg *dst, const struct raft_msg *src)
{
	*dst = *src;
	dst->entries = entries_copy(src->entries, src->n_entries);
	dst->snapshot.data = xmemdup(src->snapshot.data, src->snapshot.len);
}

static void
msg_free(struct raft_msg *m)
{
	entries_free((struct raft_entry *)m->entries, m->n_entries);
	free((void *)m->snapshot.data);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------------
 * Rendering
 * ------------------------------------------------------------------------ */

static const char *
conf_op_name(enum raft_conf_op op)
{
	switch (op) {
	case RAFT_CONF_ADD_LEARNER:
		return "add_learner";
	case RAFT_CONF_PROMOTE:
		return "promote";
	case RAFT_CONF_REMOVE:
		return "remove";
	case RAFT_CONF_DEMOTE:
		return "demote";
	}
	return "?";
}

static bool
plain_payload(const uint8_t *p, size_t n)
{
	if (n > 24)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] <= ' ' || p[i] > '~' || p[i] == ',' || p[i] == '[' ||
		    p[i] == ']')
			return false;
	return true;
}

static void
render_entry(struct sb *b, const struct raft_entry *e)
{
	enum raft_conf_op op;
	uint64_t id;

	sb_addf(b, "%" PRIu64 "@%" PRIu64 ":", e->index, e->term);
	switch (e->type) {
	case RAFT_ENTRY_NOOP:
		sb_addf(b, "noop");
		break;
	case RAFT_ENTRY_CONF:
		if (raft_conf_decode(e->data, e->len, &op, &id) == 0)
			sb_addf(
			    b, "conf(%s,%" PRIu64 ")", conf_op_name(op), id);
		else
			sb_addf(b, "conf");
		break;
	case RAFT_ENTRY_NORMAL:
		if (plain_payload(e->data, e->len))
			sb_addf(b, "%.*s", (int)e->len, (const char *)e->data);
		else
			sb_addf(b, "<%" PRIu32 "B>", e->len);
		break;
	default:
		sb_addf(b, "type%u", e->type);
	}
}

static void
render_msg(struct sb *b, const struct raft_msg *m, bool dropped)
{
	const char *name = m->type < RAFT_MSG_TYPE_MAX
	    ? raft_msg_type_name(m->type)
	    : "UNKNOWN";

	sb_addf(b, "%" PRIu64 "%s%" PRIu64 " %s term=%" PRIu64, m->from,
	    dropped ? "-x" : "->", m->to, name, m->term);
	switch (m->type) {
	case RAFT_MSG_APPEND:
		sb_addf(b,
		    " index=%" PRIu64 " log_term=%" PRIu64 " commit=%" PRIu64
		    " entries=[",
		    m->index, m->log_term, m->commit);
		for (size_t i = 0; i < m->n_entries; i++) {
			if (i == 6 && m->n_entries > 8) {
				sb_addf(b, "...+%zu", m->n_entries - i);
				break;
			}
			if (i > 0)
				sb_addf(b, ",");
			render_entry(b, &m->entries[i]);
		}
		sb_addf(b, "]");
		break;
	case RAFT_MSG_APPEND_RESP:
		sb_addf(b, " index=%" PRIu64 " reject=%d", m->index, m->reject);
		if (m->reject)
			sb_addf(b, " hint=%" PRIu64 " log_term=%" PRIu64,
			    m->hint, m->log_term);
		break;
	case RAFT_MSG_VOTE:
	case RAFT_MSG_PREVOTE:
		sb_addf(b, " index=%" PRIu64 " log_term=%" PRIu64, m->index,
		    m->log_term);
		if (m->transfer)
			sb_addf(b, " transfer=1");
		break;
	case RAFT_MSG_VOTE_RESP:
	case RAFT_MSG_PREVOTE_RESP:
		sb_addf(b, " reject=%d", m->reject);
		break;
	case RAFT_MSG_HEARTBEAT:
		sb_addf(b, " commit=%" PRIu64 " context=%" PRIu64, m->commit,
		    m->context);
		break;
	case RAFT_MSG_HEARTBEAT_RESP:
		sb_addf(b, " context=%" PRIu64, m->context);
		break;
	case RAFT_MSG_SNAPSHOT:
		sb_addf(b, " snapshot=%" PRIu64 "@%" PRIu64,
		    m->snapshot.meta.index, m->snapshot.meta.term);
		break;
	case RAFT_MSG_TIMEOUT_NOW:
		break;
	case RAFT_MSG_READ_INDEX:
		sb_addf(b, " context=%" PRIu64, m->context);
		break;
	case RAFT_MSG_READ_INDEX_RESP:
		sb_addf(b, " context=%" PRIu64 " index=%" PRIu64 " reject=%d",
		    m->context, m->index, m->reject);
		break;
	default:
		sb_addf(b, " type=%u", m->type);
	}
}

void
h_render_msg(const struct raft_msg *m, bool dropped, char *out, size_t size)
{
	struct sb b = { 0 };

	render_msg(&b, m, dropped);
	snprintf(out, size, "%s", sb_str(&b));
	free(b.s);
}

/* ------------------------------------------------------------------------
 * Pattern matching on rendered lines
 * ------------------------------------------------------------------------ */

#define MAX_WORDS 64

static size_t
split_words(char *s, char **w, size_t max)
{
	size_t n = 0;

	for (char *p = strtok(s, " "); p != NULL && n < max;
	     p = strtok(NULL, " "))
		w[n++] = p;
	return n;
}

/* "1->2", "*->2", "1-x*"... against a rendered arrow word. */
static bool
arrow_match(const char *pat, const char *got)
{
	char pf[32], pt[32], gf[32], gt[32], pa[3], ga[3];

	if (sscanf(pat, "%31[^-]%2[-x>]%31s", pf, pa, pt) != 3 ||
	    sscanf(got, "%31[^-]%2[-x>]%31s", gf, ga, gt) != 3)
		return strcmp(pat, got) == 0;
	if (strcmp(pa, ga) != 0)
		return false;
	if (strcmp(pf, "*") != 0 && strcmp(pf, gf) != 0)
		return false;
	if (strcmp(pt, "*") != 0 && strcmp(pt, gt) != 0)
		return false;
	return true;
}

static bool
line_matches(const char *pattern, const char *line)
{
	char *p = strdup(pattern), *l = strdup(line);
	char *pw[MAX_WORDS], *lw[MAX_WORDS];
	size_t np, nl;
	bool ok = true;

	if (p == NULL || l == NULL)
		abort();
	np = split_words(p, pw, MAX_WORDS);
	nl = split_words(l, lw, MAX_WORDS);
	if (np < 2 || nl < 2 || !arrow_match(pw[0], lw[0]) ||
	    strcmp(pw[1], lw[1]) != 0)
		ok = false;
	for (size_t i = 2; ok && i < np; i++) {
		bool found = false;

		for (size_t j = 2; j < nl && !found; j++)
			found = strcmp(pw[i], lw[j]) == 0;
		ok = found;
	}
	free(p);
	free(l);
	return ok;
}

/* ------------------------------------------------------------------------
 * The cluster
 * ------------------------------------------------------------------------ */

struct sm_item {
	uint64_t index;
	char *data;
};

struct h_node {
	bool exists, up, in_boot;
	struct raft *r;
	enum raft_role role;

	/* Saved storage. */
	struct raft_hard hard;
	bool has_snap;
	struct raft_snapshot_meta snap;
	uint8_t *snap_data;
	size_t snap_len;
	struct raft_entry *log; /* entries after the snapshot */
	size_t n_log;

	/* State machine. */
	struct sm_item *sm;
	size_t n_sm;
	uint64_t applied;

	struct raft_read *reads;
	size_t n_reads;
};

struct h_line {
	char *text;
	bool msg; /* a moved message (EXPECT_MSGS sees these) */
};

struct h_commit {
	bool set;
	uint64_t term;
	uint64_t hash;
};

struct h_term_leader {
	uint64_t term, leader;
};

struct harness {
	struct h_opts opts;
	struct raft_conf boot;
	struct h_node node[H_MAX_ID + 1];

	struct raft_msg *q;
	size_t nq;

	bool cut[H_MAX_ID + 1][H_MAX_ID + 1];

	struct h_line *lines;
	size_t n_lines, mark;
	struct h_moved *moved;
	size_t n_moved, moved_mark;
	bool verbose;

	struct h_commit *committed; /* by index */
	size_t n_committed;

	struct h_term_leader *leaders;
	size_t n_leaders;

	struct sb scratch;
};

static void
add_line(struct harness *h, bool msg, char *text)
{
	h->lines = xrealloc(h->lines, (h->n_lines + 1) * sizeof(*h->lines));
	h->lines[h->n_lines].text = text;
	h->lines[h->n_lines].msg = msg;
	h->n_lines++;
	if (h->verbose)
		fprintf(stderr, "%s%s\n", msg ? "" : "  # ", text);
}

void
h_note(struct harness *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_line(h, false, xvasprintf(fmt, ap));
	va_end(ap);
}

static void
add_msg_line(struct harness *h, const struct raft_msg *m, bool dropped)
{
	struct sb b = { 0 };
	struct h_moved *mv;

	h->moved = xrealloc(h->moved, (h->n_moved + 1) * sizeof(*h->moved));
	mv = &h->moved[h->n_moved++];
	memset(mv, 0, sizeof(*mv));
	mv->from = m->from;
	mv->to = m->to;
	mv->type = m->type;
	mv->dropped = dropped;
	mv->reject = m->reject;
	mv->n_entries = m->n_entries;
	for (size_t i = 0; i < m->n_entries; i++)
		mv->bytes += m->entries[i].len;

	render_msg(&b, m, dropped);
	add_line(h, true, b.s);
}

void
h_dump(const struct harness *h)
{
	size_t from = 0;

	if (getenv("H_FULL") == NULL && h->n_lines > H_DUMP_TAIL)
		from = h->n_lines - H_DUMP_TAIL;
	fprintf(stderr, "  ---- transcript (%zu lines%s) ----\n", h->n_lines,
	    from > 0 ? ", tail; H_FULL=1 for all" : "");
	for (size_t i = from; i < h->n_lines; i++)
		fprintf(stderr, "  %s%s\n", h->lines[i].msg ? "" : "# ",
		    h->lines[i].text);
	fprintf(stderr, "  ---- end of transcript ----\n");
}

_Noreturn void
h_fail_at(struct harness *h, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	/* A test that fails with the allocator armed must not take the
	 * tests after it down too. */
	dsc_mem_fail_after(-1);
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (h != NULL) {
		h_dump(h);
		h_free(h);
	}
	/* t_fail_at formats into its own buffer; hand it a copy. */
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s", msg);
	free(msg);
	t_fail_at(file, line, "%s", buf);
}

#define FAIL(h, ...) h_fail_at((h), __FILE__, __LINE__, __VA_ARGS__)

static struct h_node *
node_of(struct harness *h, uint64_t id)
{
	if (id == 0 || id > H_MAX_ID || !h->node[id].exists)
		FAIL(h, "no node %" PRIu64 " in the harness", id);
	return &h->node[id];
}

struct raft *
h_raft(struct harness *h, uint64_t id)
{
	struct h_node *n = node_of(h, id);

	if (!n->up)
		FAIL(h, "node %" PRIu64 " is down", id);
	return n->r;
}

bool
h_is_up(const struct harness *h, uint64_t id)
{
	return id > 0 && id <= H_MAX_ID && h->node[id].exists && h->node[id].up;
}

unsigned
h_election_ticks(const struct harness *h)
{
	return h->opts.election_ticks;
}

/* ------------------------------------------------------------------------
 * Storage
 * ------------------------------------------------------------------------ */

static uint64_t
store_last(const struct h_node *n)
{
	if (n->n_log > 0)
		return n->log[n->n_log - 1].index;
	return n->has_snap ? n->snap.index : 0;
}

static bool
store_term(const struct h_node *n, uint64_t index, uint64_t *term)
{
	if (n->has_snap && index == n->snap.index) {
		*term = n->snap.term;
		return true;
	}
	for (size_t i = 0; i < n->n_log; i++)
		if (n->log[i].index == index) {
			*term = n->log[i].term;
			return true;
		}
	if (index == 0) {
		*term = 0;
		return true;
	}
	return false;
}

/* Drops saved entries with index < @first. */
static void
store_drop_before(struct h_node *n, uint64_t first)
{
	size_t k = 0;

	while (k < n->n_log && n->log[k].index < first)
		free(n->log[k++].data);
	memmove(n->log, n->log + k, (n->n_log - k) * sizeof(*n->log));
	n->n_log -= k;
}

static void
store_truncate_from(struct h_node *n, uint64_t index)
{
	while (n->n_log > 0 && n->log[n->n_log - 1].index >= index)
		free(n->log[--n->n_log].data);
}

static void
store_set_snapshot(struct h_node *n, const struct raft_snapshot_meta *meta,
    const void *data, size_t len)
{
	free(n->snap_data);
	n->has_snap = true;
	n->snap = *meta;
	n->snap_data = xmemdup(data, len);
	n->snap_len = len;
}

static void
store_clear(struct h_node *n)
{
	entries_free(n->log, n->n_log);
	n->log = NULL;
	n->n_log = 0;
	free(n->snap_data);
	n->snap_data = NULL;
	n->snap_len = 0;
	n->has_snap = false;
	memset(&n->snap, 0, sizeof(n->snap));
	memset(&n->hard, 0, sizeof(n->hard));
}

static void
sm_clear(struct h_node *n)
{
	for (size_t i = 0; i < n->n_sm; i++)
		free(n->sm[i].data);
	free(n->sm);
	n->sm = NULL;
	n->n_sm = 0;
	n->applied = 0;
}

static void
sm_push(struct h_node *n, uint64_t index, const void *data, size_t len)
{
	char *s = xrealloc(NULL, len + 1);

	memcpy(s, data, len);
	s[len] = '\0';
	n->sm = xrealloc(n->sm, (n->n_sm + 1) * sizeof(*n->sm));
	n->sm[n->n_sm].index = index;
	n->sm[n->n_sm].data = s;
	n->n_sm++;
}

/* State machine image: payloads joined by newlines. */
static void
sm_restore(struct h_node *n, const uint8_t *data, size_t len, uint64_t index)
{
	size_t start = 0;

	sm_clear(n);
	for (size_t i = 0; i <= len && len > 0; i++) {
		if (i == len || data[i] == '\n') {
			sm_push(n, index, data + start, i - start);
			start = i + 1;
		}
	}
	n->applied = index;
}

static char *
sm_image(const struct h_node *n, uint64_t upto, size_t *len)
{
	struct sb b = { 0 };
	bool first = true;

	for (size_t i = 0; i < n->n_sm; i++) {
		if (n->sm[i].index > upto)
			break;
		sb_addf(&b, "%s%s", first ? "" : "\n", n->sm[i].data);
		first = false;
	}
	sb_str(&b);
	*len = b.len;
	return b.s;
}

/* The configuration as of @index, from the saved snapshot and log. */
static void
store_conf_at(const struct harness *h, const struct h_node *n, uint64_t index,
    struct raft_conf *c)
{
	enum raft_conf_op op;
	uint64_t id;

	if (n->has_snap)
		*c = n->snap.conf;
	else if (n->in_boot)
		*c = h->boot;
	else
		memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n->n_log && n->log[i].index <= index; i++) {
		const struct raft_entry *e = &n->log[i];

		if (e->type != RAFT_ENTRY_CONF)
			continue;
		/* A single change, or the bootstrap entry: the whole
		 * configuration, which is the harness's boot one. */
		if (raft_conf_decode(e->data, e->len, &op, &id) == 0)
			(void)raft_conf_apply(c, op, id);
		else
			*c = h->boot;
	}
}

/* ------------------------------------------------------------------------
 * Node lifecycle
 * ------------------------------------------------------------------------ */

static void
trace_cb(void *ctx, uint64_t id, const char *event)
{
	struct harness *h = ctx;

	h_note(h, "  %" PRIu64 ": %s", id, event);
}

static void
config_for(const struct harness *h, uint64_t id, struct raft_config *c)
{
	const struct h_opts *o = &h->opts;

	raft_config_init(c, id, o->seed * 1000 + id);
	c->election_ticks = o->election_ticks;
	c->heartbeat_ticks = o->heartbeat_ticks;
	c->pre_vote = o->pre_vote;
	c->check_quorum = o->check_quorum;
	if (o->max_inflight != 0)
		c->max_inflight = o->max_inflight;
	if (o->max_msg_bytes != 0)
		c->max_msg_bytes = o->max_msg_bytes;
	c->max_uncommitted_bytes = o->max_uncommitted_bytes;
}

static void
node_start(struct harness *h, uint64_t id)
{
	struct h_node *n = &h->node[id];
	struct raft_config c;
	struct raft_snapshot snap;
	struct raft_state st;
	int err = 0;

	config_for(h, id, &c);
	c.trace = trace_cb;
	c.trace_ctx = h;
	memset(&st, 0, sizeof(st));
	st.hard = n->hard;
	if (n->has_snap) {
		snap.meta = n->snap;
		snap.len = n->snap_len;
		snap.data = n->snap_data;
		st.snapshot = &snap;
	}
	st.n_entries = n->n_log;
	st.entries = n->log;
	st.bootstrap = n->in_boot ? &h->boot : NULL;
	/* The state machine restarts from the saved snapshot. */
	if (n->has_snap)
		sm_restore(n, n->snap_data, n->snap_len, n->snap.index);
	else
		sm_clear(n);
	st.applied = n->applied;
	n->r = raft_new(&c, &st, &err);
	if (n->r == NULL)
		FAIL(h, "raft_new(%" PRIu64 "): %s", id, dsc_errname(err));
	n->up = true;
	n->role = raft_role(n->r);
}

struct harness *
h_new(unsigned nvoters, const struct h_opts *o)
{
	struct harness *h = xcalloc(1, sizeof(*h));
	unsigned total;

	if (o != NULL)
		h->opts = *o;
	if (h->opts.election_ticks == 0)
		h->opts.election_ticks = 10;
	if (h->opts.heartbeat_ticks == 0)
		h->opts.heartbeat_ticks = 1;
	if (h->opts.seed == 0)
		h->opts.seed = 1;
	h->verbose = getenv("H_VERBOSE") != NULL;
	total = nvoters + h->opts.learners;
	if (total == 0 || total > H_MAX_ID) {
		fprintf(stderr, "h_new: bad cluster size %u\n", total);
		abort();
	}
	for (unsigned i = 1; i <= total; i++) {
		h->boot.servers[h->boot.n].id = i;
		h->boot.servers[h->boot.n].suffrage =
		    i <= nvoters ? RAFT_VOTER : RAFT_LEARNER;
		h->boot.n++;
	}
	h_note(h, "new cluster: %u voters, %u learners%s%s", nvoters,
	    h->opts.learners, h->opts.pre_vote ? ", pre-vote" : "",
	    h->opts.check_quorum ? ", check-quorum" : "");
	for (unsigned i = 1; i <= total; i++) {
		h->node[i].exists = true;
		h->node[i].in_boot = true;
		node_start(h, i);
	}
	return h;
}

void
h_add_node(struct harness *h, uint64_t id)
{
	if (id == 0 || id > H_MAX_ID || h->node[id].exists)
		FAIL(h, "h_add_node(%" PRIu64 "): bad or existing id", id);
	h_note(h, "add node %" PRIu64 " (empty, no configuration)", id);
	h->node[id].exists = true;
	node_start(h, id);
}

static void
node_destroy(struct h_node *n)
{
	if (n->up)
		raft_free(n->r);
	n->r = NULL;
	n->up = false;
	store_clear(n);
	sm_clear(n);
	free(n->reads);
	n->reads = NULL;
	n->n_reads = 0;
}

void
h_free(struct harness *h)
{
	if (h == NULL)
		return;
	for (unsigned i = 1; i <= H_MAX_ID; i++)
		if (h->node[i].exists)
			node_destroy(&h->node[i]);
	for (size_t i = 0; i < h->nq; i++)
		msg_free(&h->q[i]);
	free(h->q);
	for (size_t i = 0; i < h->n_lines; i++)
		free(h->lines[i].text);
	free(h->lines);
	free(h->moved);
	free(h->committed);
	free(h->leaders);
	free(h->scratch.s);
	free(h);
}

void
crash(struct harness *h, uint64_t id)
{
	struct h_node *n = node_of(h, id);

	h_note(h, "crash %" PRIu64, id);
	if (n->up)
		raft_free(n->r);
	n->r = NULL;
	n->up = false;
}

void
restart(struct harness *h, uint64_t id)
{
	struct h_node *n = node_of(h, id);

	if (n->up)
		crash(h, id);
	h_note(h,
	    "restart %" PRIu64 " (term=%" PRIu64 " vote=%" PRIu64
	    " commit=%" PRIu64 " snapshot=%" PRIu64 " last=%" PRIu64 ")",
	    id, n->hard.term, n->hard.vote, n->hard.commit,
	    n->has_snap ? n->snap.index : 0, store_last(n));
	node_start(h, id);
}

void
set_log(struct harness *h, uint64_t id, uint64_t term, const char *terms)
{
	struct h_node *n = node_of(h, id);
	struct raft_snapshot_meta meta;
	uint64_t t[4096];
	size_t k = 0;
	const char *p = terms;
	char *end;

	while (*p != '\0' && k < sizeof(t) / sizeof(t[0])) {
		unsigned long long v = strtoull(p, &end, 10);

		if (end == p)
			break;
		t[k++] = v;
		p = end;
	}
	if (k == 0)
		FAIL(h, "set_log: no terms in '%s'", terms);
	if (n->up) {
		raft_free(n->r);
		n->up = false;
	}
	store_clear(n);
	sm_clear(n);
	memset(&meta, 0, sizeof(meta));
	meta.index = 1;
	meta.term = t[0];
	meta.conf = h->boot;
	store_set_snapshot(n, &meta, "", 0);
	n->log = xcalloc(k, sizeof(*n->log));
	for (size_t i = 1; i < k; i++) {
		char buf[64];
		int len =
		    snprintf(buf, sizeof(buf), "%zu@%" PRIu64, i + 1, t[i]);

		n->log[n->n_log].index = i + 1;
		n->log[n->n_log].term = t[i];
		n->log[n->n_log].type = RAFT_ENTRY_NORMAL;
		n->log[n->n_log].len = (uint32_t)len;
		n->log[n->n_log].data = xmemdup(buf, (size_t)len);
		n->n_log++;
	}
	n->hard.term = term;
	n->hard.vote = 0;
	n->hard.commit = 1;
	h_note(
	    h, "set_log %" PRIu64 ": term=%" PRIu64 " log=%s", id, term, terms);
	node_start(h, id);
}

/* ------------------------------------------------------------------------
 * Ready handling and invariants
 * ------------------------------------------------------------------------ */

static void
note_leader(struct harness *h, uint64_t id, uint64_t term)
{
	for (size_t i = 0; i < h->n_leaders; i++) {
		if (h->leaders[i].term != term)
			continue;
		if (h->leaders[i].leader != id)
			FAIL(h,
			    "election safety: %" PRIu64 " and %" PRIu64
			    " both leaders in term %" PRIu64,
			    h->leaders[i].leader, id, term);
		return;
	}
	h->leaders =
	    xrealloc(h->leaders, (h->n_leaders + 1) * sizeof(*h->leaders));
	h->leaders[h->n_leaders].term = term;
	h->leaders[h->n_leaders].leader = id;
	h->n_leaders++;
}

static void
check_committed(struct harness *h, uint64_t id, const struct raft_entry *e)
{
	uint64_t hash = fnv1a(e->data, e->len) ^ e->type;

	if (e->index >= h->n_committed) {
		size_t n = (size_t)e->index * 2 + 16;

		h->committed =
		    xrealloc(h->committed, n * sizeof(*h->committed));
		memset(h->committed + h->n_committed, 0,
		    (n - h->n_committed) * sizeof(*h->committed));
		h->n_committed = n;
	}
	struct h_commit *c = &h->committed[e->index];
	if (!c->set) {
		c->set = true;
		c->term = e->term;
		c->hash = hash;
	} else if (c->term != e->term || c->hash != hash) {
		FAIL(h,
		    "state machine safety: %" PRIu64 " applied %" PRIu64
		    "@%" PRIu64 " but %" PRIu64 "@%" PRIu64
		    " was applied elsewhere",
		    id, e->index, e->term, e->index, c->term);
	}
}

static void
save_snapshot(struct harness *h, struct h_node *n, uint64_t id,
    const struct raft_snapshot *s)
{
	uint64_t t;
	bool keep = store_term(n, s->meta.index, &t) && t == s->meta.term;

	h_note(h, "%" PRIu64 " saves snapshot %" PRIu64 "@%" PRIu64, id,
	    s->meta.index, s->meta.term);
	if (n->has_snap && s->meta.index < n->snap.index)
		FAIL(h,
		    "%" PRIu64 ": snapshot %" PRIu64
		    " older than saved %" PRIu64,
		    id, s->meta.index, n->snap.index);
	store_set_snapshot(n, &s->meta, s->data, s->len);
	if (keep)
		store_drop_before(n, s->meta.index + 1);
	else
		store_truncate_from(n, 0);
}

static void
save_entries(struct harness *h, struct h_node *n, uint64_t id,
    const struct raft_entry *e, size_t count)
{
	uint64_t first = e[0].index, last = store_last(n);

	for (size_t i = 1; i < count; i++)
		if (e[i].index != e[i - 1].index + 1 ||
		    e[i].term < e[i - 1].term)
			FAIL(h,
			    "%" PRIu64 ": ready entries not consecutive at %zu",
			    id, i);
	if (first > last + 1)
		FAIL(h,
		    "%" PRIu64 ": ready entries start at %" PRIu64
		    " after saved last %" PRIu64,
		    id, first, last);
	if (n->has_snap && first <= n->snap.index)
		FAIL(h,
		    "%" PRIu64 ": ready entries start at %" PRIu64
		    " inside snapshot %" PRIu64,
		    id, first, n->snap.index);
	store_truncate_from(n, first);
	n->log = xrealloc(n->log, (n->n_log + count) * sizeof(*n->log));
	for (size_t i = 0; i < count; i++)
		entry_copy(&n->log[n->n_log++], &e[i]);
}

static void check_msg_rules(
    struct harness *h, struct h_node *n, uint64_t id, const struct raft_msg *m);

static void
check_msg(
    struct harness *h, struct h_node *n, uint64_t id, const struct raft_msg *m)
{
	struct sb b = { 0 };

	render_msg(&b, m, false);
	h_note(h, "%" PRIu64 " sends %s", id, b.s);
	free(b.s);
	check_msg_rules(h, n, id, m);
}

static void
check_msg_rules(
    struct harness *h, struct h_node *n, uint64_t id, const struct raft_msg *m)
{
	if (m->from != id)
		FAIL(
		    h, "%" PRIu64 " sent a message from %" PRIu64, id, m->from);
	/* A granted vote leaves only once the vote is saved (Figure 3.1), or
	 * a later term, which rules out any other vote in that one. */
	if (m->type == RAFT_MSG_VOTE_RESP && !m->reject &&
	    n->hard.term <= m->term &&
	    (n->hard.term != m->term || n->hard.vote != m->to))
		FAIL(h,
		    "%" PRIu64 " grants a vote to %" PRIu64 " in term %" PRIu64
		    " but saved term=%" PRIu64 " vote=%" PRIu64,
		    id, m->to, m->term, n->hard.term, n->hard.vote);
	/*
	 * An acknowledgement covers only saved entries. Exception: an ack
	 * queued to an older-term leader before a newer leader truncated the
	 * entries in the same batch. That leader cannot gather a majority with
	 * it: the newer leader's voters refuse its term, and had a majority
	 * held the entries, the newer leader would have them too.
	 */
	if (m->type == RAFT_MSG_APPEND_RESP && !m->reject &&
	    m->term >= n->hard.term && m->index > store_last(n))
		FAIL(h,
		    "%" PRIu64 " acknowledges index %" PRIu64
		    " but saved only up to %" PRIu64,
		    id, m->index, store_last(n));
	if (m->term > n->hard.term && m->type != RAFT_MSG_PREVOTE &&
	    m->type != RAFT_MSG_PREVOTE_RESP)
		FAIL(h,
		    "%" PRIu64 " sends term %" PRIu64
		    " before saving it (%" PRIu64 ")",
		    id, m->term, n->hard.term);
}

static void
queue_push(struct harness *h, const struct raft_msg *m)
{
	h->q = xrealloc(h->q, (h->nq + 1) * sizeof(*h->q));
	msg_copy(&h->q[h->nq++], m);
}

static void
apply_entry(struct harness *h, struct h_node *n, uint64_t id,
    const struct raft_entry *e)
{
	uint64_t t;

	if (e->index != n->applied + 1)
		FAIL(h, "%" PRIu64 " applies %" PRIu64 " after %" PRIu64, id,
		    e->index, n->applied);
	if (e->index > store_last(n) || !store_term(n, e->index, &t) ||
	    t != e->term)
		FAIL(h,
		    "%" PRIu64 " applies %" PRIu64 "@%" PRIu64
		    " which it has not saved",
		    id, e->index, e->term);
	check_committed(h, id, e);
	if (e->type == RAFT_ENTRY_NORMAL)
		sm_push(n, e->index, e->data, e->len);
	n->applied = e->index;
}

static void
handle_ready(struct harness *h, uint64_t id, const struct raft_ready *rd)
{
	struct h_node *n = &h->node[id];

	/* 1. snapshot */
	if (rd->snapshot != NULL)
		save_snapshot(h, n, id, rd->snapshot);
	/* 2. hard state and entries */
	if (rd->hard_changed) {
		if (rd->hard.term < n->hard.term)
			FAIL(h,
			    "%" PRIu64 ": term goes back %" PRIu64
			    " -> %" PRIu64,
			    id, n->hard.term, rd->hard.term);
		if (rd->hard.term == n->hard.term && n->hard.vote != 0 &&
		    rd->hard.vote != n->hard.vote)
			FAIL(h,
			    "%" PRIu64 ": vote changes %" PRIu64 " -> %" PRIu64
			    " in term %" PRIu64,
			    id, n->hard.vote, rd->hard.vote, rd->hard.term);
		n->hard = rd->hard;
	}
	if (rd->n_entries > 0)
		save_entries(h, n, id, rd->entries, rd->n_entries);
	/* 3. messages */
	for (size_t i = 0; i < rd->n_msgs; i++) {
		check_msg(h, n, id, &rd->msgs[i]);
		queue_push(h, &rd->msgs[i]);
	}
	/* 4. state machine */
	if (rd->snapshot != NULL)
		sm_restore(n, rd->snapshot->data, rd->snapshot->len,
		    rd->snapshot->meta.index);
	for (size_t i = 0; i < rd->n_committed; i++)
		apply_entry(h, n, id, &rd->committed[i]);
	/* 5. reads */
	for (size_t i = 0; i < rd->n_reads; i++) {
		n->reads =
		    xrealloc(n->reads, (n->n_reads + 1) * sizeof(*n->reads));
		n->reads[n->n_reads++] = rd->reads[i];
		h_note(h,
		    "%" PRIu64 " read context=%" PRIu64 " index=%" PRIu64 " %s",
		    id, rd->reads[i].context, rd->reads[i].index,
		    rd->reads[i].ok ? "ok" : "failed");
	}
}

static void
process_node(struct harness *h, uint64_t id)
{
	struct h_node *n = &h->node[id];
	struct raft_ready rd;
	unsigned rounds = 0;

	if (!n->exists || !n->up)
		return;
	while (raft_ready(n->r, &rd)) {
		if (++rounds > H_MAX_READIES)
			FAIL(h, "%" PRIu64 ": ready never runs dry", id);
		handle_ready(h, id, &rd);
		raft_advance(n->r, &rd);
	}
	enum raft_role role = raft_role(n->r);
	if (role != n->role) {
		h_note(h, "%" PRIu64 " is %s term=%" PRIu64 " leader=%" PRIu64,
		    id, raft_role_name(role), raft_term(n->r),
		    raft_leader(n->r));
		n->role = role;
	}
	if (role == RAFT_LEADER)
		note_leader(h, id, raft_term(n->r));
}

void
process(struct harness *h)
{
	for (uint64_t id = 1; id <= H_MAX_ID; id++)
		process_node(h, id);
}

/* ------------------------------------------------------------------------
 * Network
 * ------------------------------------------------------------------------ */

static bool
link_up(const struct harness *h, uint64_t from, uint64_t to)
{
	if (to == 0 || to > H_MAX_ID || from == 0 || from > H_MAX_ID)
		return false;
	if (!h->node[to].exists || !h->node[to].up)
		return false;
	return !h->cut[from][to];
}

static void
move_msg(struct harness *h, const struct raft_msg *m, bool force_drop)
{
	int rc;

	if (force_drop || !link_up(h, m->from, m->to)) {
		add_msg_line(h, m, true);
		return;
	}
	add_msg_line(h, m, false);
	rc = raft_step(h->node[m->to].r, m);
	if (rc != 0)
		h_note(
		    h, "  %" PRIu64 " refused it: %s", m->to, dsc_errname(rc));
}

static bool
selects(const struct raft_msg *m, uint64_t from, uint64_t to)
{
	return (from == 0 || m->from == from) && (to == 0 || m->to == to);
}

static size_t
round_of(struct harness *h, uint64_t from, uint64_t to, bool dropping)
{
	struct raft_msg *batch;
	size_t nb = 0, keep = 0;

	process(h);
	batch = xcalloc(h->nq, sizeof(*batch));
	for (size_t i = 0; i < h->nq; i++) {
		if (selects(&h->q[i], from, to))
			batch[nb++] = h->q[i];
		else
			h->q[keep++] = h->q[i];
	}
	h->nq = keep;
	for (size_t i = 0; i < nb; i++) {
		move_msg(h, &batch[i], dropping);
		msg_free(&batch[i]);
	}
	free(batch);
	process(h);
	return nb;
}

size_t
deliver(struct harness *h)
{
	return round_of(h, 0, 0, false);
}

size_t
deliver_only(struct harness *h, uint64_t from, uint64_t to)
{
	return round_of(h, from, to, false);
}

size_t
drop(struct harness *h, uint64_t from, uint64_t to)
{
	return round_of(h, from, to, true);
}

void
stabilize(struct harness *h)
{
	for (unsigned i = 0; i < H_MAX_ROUNDS; i++) {
		process(h);
		if (h->nq == 0)
			return;
		deliver(h);
	}
	FAIL(h, "stabilize: still busy after %d rounds", H_MAX_ROUNDS);
}

void
cut(struct harness *h, uint64_t a, uint64_t b)
{
	h_note(h, "cut %" PRIu64 " <-> %" PRIu64, a, b);
	h->cut[a][b] = h->cut[b][a] = true;
}

void
isolate(struct harness *h, uint64_t id)
{
	h_note(h, "isolate %" PRIu64, id);
	for (uint64_t i = 1; i <= H_MAX_ID; i++)
		if (i != id)
			h->cut[id][i] = h->cut[i][id] = true;
}

void
heal(struct harness *h)
{
	h_note(h, "heal");
	memset(h->cut, 0, sizeof(h->cut));
}

/* ------------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------------ */

static void
note_rc(struct harness *h, const char *what, int rc)
{
	if (rc == 0)
		h_note(h, "%s", what);
	else
		h_note(h, "%s -> %s", what, dsc_errname(rc));
}

int
campaign(struct harness *h, uint64_t id)
{
	char what[64];
	int rc = raft_campaign(h_raft(h, id));

	snprintf(what, sizeof(what), "campaign %" PRIu64, id);
	note_rc(h, what, rc);
	return rc;
}

void
tick(struct harness *h, uint64_t id, unsigned n)
{
	struct raft *r = h_raft(h, id);

	h_note(h, "tick %" PRIu64 " x%u", id, n);
	for (unsigned i = 0; i < n; i++) {
		raft_tick(r);
		process_node(h, id);
	}
}

void
tick_all(struct harness *h, unsigned n)
{
	h_note(h, "tick all x%u", n);
	for (unsigned i = 0; i < n; i++) {
		for (uint64_t id = 1; id <= H_MAX_ID; id++)
			if (h_is_up(h, id))
				raft_tick(h->node[id].r);
		process(h);
	}
}

unsigned
tick_until_role(
    struct harness *h, uint64_t id, enum raft_role role, unsigned max)
{
	struct raft *r = h_raft(h, id);

	h_note(h, "tick %" PRIu64 " until %s", id, raft_role_name(role));
	for (unsigned i = 0; i < max; i++) {
		if (raft_role(r) == role)
			return i;
		raft_tick(r);
		process_node(h, id);
	}
	if (raft_role(r) == role)
		return max;
	FAIL(h, "%" PRIu64 " not %s after %u ticks (%s)", id,
	    raft_role_name(role), max, raft_role_name(raft_role(r)));
}

unsigned
tick_until_term(struct harness *h, uint64_t id, uint64_t term, unsigned max)
{
	struct raft *r = h_raft(h, id);

	h_note(h, "tick %" PRIu64 " until term %" PRIu64, id, term);
	for (unsigned i = 0; i < max; i++) {
		if (raft_term(r) >= term)
			return i;
		raft_tick(r);
		process_node(h, id);
	}
	if (raft_term(r) >= term)
		return max;
	FAIL(h,
	    "%" PRIu64 " not at term %" PRIu64 " after %u ticks (%" PRIu64 ")",
	    id, term, max, raft_term(r));
}

int
propose_n(struct harness *h, uint64_t id, const void *data, size_t len,
    uint64_t *index)
{
	uint64_t idx = 0, term = 0;
	int rc = raft_propose(h_raft(h, id), data, len, &idx, &term);

	if (rc == 0) {
		if (plain_payload(data, len))
			h_note(h,
			    "propose %" PRIu64 " %.*s -> %" PRIu64 "@%" PRIu64,
			    id, (int)len, (const char *)data, idx, term);
		else
			h_note(h,
			    "propose %" PRIu64 " <%zuB> -> %" PRIu64
			    "@%" PRIu64,
			    id, len, idx, term);
		if (index != NULL)
			*index = idx;
	} else {
		h_note(h, "propose %" PRIu64 " <%zuB> -> %s", id, len,
		    dsc_errname(rc));
	}
	return rc;
}

int
propose(struct harness *h, uint64_t id, const char *data)
{
	return propose_n(h, id, data, strlen(data), NULL);
}

int
read_index(struct harness *h, uint64_t id, uint64_t ctx)
{
	char what[64];
	int rc = raft_read_index(h_raft(h, id), ctx);

	snprintf(what, sizeof(what), "read_index %" PRIu64 " context=%" PRIu64,
	    id, ctx);
	note_rc(h, what, rc);
	return rc;
}

int
transfer(struct harness *h, uint64_t from, uint64_t to)
{
	char what[64];
	int rc = raft_transfer_leader(h_raft(h, from), to);

	snprintf(
	    what, sizeof(what), "transfer %" PRIu64 " -> %" PRIu64, from, to);
	note_rc(h, what, rc);
	return rc;
}

static int
conf_change(
    struct harness *h, uint64_t leader, enum raft_conf_op op, uint64_t id)
{
	char what[96];
	uint64_t index = 0;
	int rc = raft_propose_conf(h_raft(h, leader), op, id, &index);

	snprintf(what, sizeof(what),
	    "%s %" PRIu64 " on %" PRIu64 " -> index %" PRIu64, conf_op_name(op),
	    id, leader, index);
	note_rc(h, what, rc);
	return rc;
}

int
add_learner(struct harness *h, uint64_t leader, uint64_t id)
{
	if (id > 0 && id <= H_MAX_ID && !h->node[id].exists)
		h_add_node(h, id);
	return conf_change(h, leader, RAFT_CONF_ADD_LEARNER, id);
}

int
promote(struct harness *h, uint64_t leader, uint64_t id)
{
	return conf_change(h, leader, RAFT_CONF_PROMOTE, id);
}

int
demote(struct harness *h, uint64_t leader, uint64_t id)
{
	return conf_change(h, leader, RAFT_CONF_DEMOTE, id);
}

int
remove_server(struct harness *h, uint64_t leader, uint64_t id)
{
	return conf_change(h, leader, RAFT_CONF_REMOVE, id);
}

int
compact(struct harness *h, uint64_t id, uint64_t index)
{
	struct h_node *n = node_of(h, id);
	struct raft *r = h_raft(h, id);
	struct raft_snapshot_meta meta, old_meta;
	uint8_t *old_data;
	size_t old_len, len;
	bool had_snap;
	char *image;
	int rc;

	process_node(h, id);
	memset(&meta, 0, sizeof(meta));
	if (index > n->applied || (n->has_snap && index <= n->snap.index) ||
	    !store_term(n, index, &meta.term)) {
		/* Let the core judge a request the harness cannot save. */
		rc = raft_snapshot(r, index, "", 0, 0);
		h_note(h, "compact %" PRIu64 " at %" PRIu64 " -> %s", id, index,
		    dsc_errname(rc));
		return rc;
	}
	meta.index = index;
	store_conf_at(h, n, index, &meta.conf);
	image = sm_image(n, index, &len);
	had_snap = n->has_snap;
	old_meta = n->snap;
	old_data = n->snap_data;
	old_len = n->snap_len;
	n->snap_data = NULL;
	store_set_snapshot(n, &meta, image, len);
	rc = raft_snapshot(r, index, image, len, 0);
	free(image);
	h_note(h, "compact %" PRIu64 " at %" PRIu64 "@%" PRIu64 " -> %s", id,
	    index, meta.term, dsc_errname(rc));
	if (rc != 0) {
		free(n->snap_data);
		n->has_snap = had_snap;
		n->snap = old_meta;
		n->snap_data = old_data;
		n->snap_len = old_len;
		return rc;
	}
	free(old_data);
	store_drop_before(n, raft_first_index(r));
	store_drop_before(n, index + 1);
	return 0;
}

int
h_step(struct harness *h, uint64_t to, const struct raft_msg *m)
{
	struct sb b = { 0 };
	int rc;

	render_msg(&b, m, false);
	rc = raft_step(h_raft(h, to), m);
	h_note(h, "inject %s -> %s", b.s, rc == 0 ? "ok" : dsc_errname(rc));
	free(b.s);
	return rc;
}

void
elect(struct harness *h, uint64_t id)
{
	campaign(h, id);
	stabilize(h);
	if (raft_role(h_raft(h, id)) != RAFT_LEADER)
		FAIL(h, "elect: %" PRIu64 " did not become leader", id);
	h_mark(h);
}

/* ------------------------------------------------------------------------
 * Views
 * ------------------------------------------------------------------------ */

void
h_mark(struct harness *h)
{
	h->mark = h->n_lines;
	h->moved_mark = h->n_moved;
}

const struct h_moved *
h_moved(const struct harness *h, size_t *n)
{
	*n = h->n_moved - h->moved_mark;
	return h->moved + h->moved_mark;
}

size_t
h_count(const struct harness *h, const char *pattern)
{
	size_t n = 0;

	for (size_t i = h->mark; i < h->n_lines; i++)
		if (h->lines[i].msg && line_matches(pattern, h->lines[i].text))
			n++;
	return n;
}

long
h_find(const struct harness *h, const char *pattern)
{
	long pos = 0;

	for (size_t i = h->mark; i < h->n_lines; i++) {
		if (!h->lines[i].msg)
			continue;
		if (line_matches(pattern, h->lines[i].text))
			return pos;
		pos++;
	}
	return -1;
}

size_t
h_count_queued(struct harness *h, const char *pattern)
{
	size_t n = 0;

	process(h);
	for (size_t i = 0; i < h->nq; i++) {
		struct sb b = { 0 };

		render_msg(&b, &h->q[i], false);
		if (line_matches(pattern, b.s))
			n++;
		free(b.s);
	}
	return n;
}

size_t
h_queue_len(struct harness *h)
{
	process(h);
	return h->nq;
}

static const char *
scratch_reset(struct harness *h)
{
	h->scratch.len = 0;
	if (h->scratch.s != NULL)
		h->scratch.s[0] = '\0';
	return sb_str(&h->scratch);
}

const char *
h_applied(struct harness *h, uint64_t id)
{
	struct h_node *n = node_of(h, id);

	scratch_reset(h);
	for (size_t i = 0; i < n->n_sm; i++)
		sb_addf(&h->scratch, "%s%s", i == 0 ? "" : ",", n->sm[i].data);
	return sb_str(&h->scratch);
}

const char *
h_log(struct harness *h, uint64_t id)
{
	struct h_node *n = node_of(h, id);
	uint64_t first;
	bool sp = false;

	scratch_reset(h);
	first =
	    n->has_snap ? n->snap.index : (n->n_log > 0 ? n->log[0].index : 1);
	if (first != 1)
		sb_addf(&h->scratch, "%" PRIu64 ":", first);
	if (n->has_snap && n->snap.index > 0) {
		sb_addf(&h->scratch, "%s%" PRIu64, first != 1 ? " " : "",
		    n->snap.term);
		sp = true;
	}
	for (size_t i = 0; i < n->n_log; i++) {
		sb_addf(&h->scratch, "%s%" PRIu64, sp || first != 1 ? " " : "",
		    n->log[i].term);
		sp = true;
	}
	return sb_str(&h->scratch);
}

const char *
h_conf(struct harness *h, uint64_t id)
{
	const struct raft_conf *c = raft_conf(h_raft(h, id));
	uint64_t v[RAFT_MAX_SERVERS], l[RAFT_MAX_SERVERS];
	size_t nv = 0, nl = 0;

	for (uint32_t i = 0; i < c->n; i++) {
		if (c->servers[i].suffrage == RAFT_VOTER)
			v[nv++] = c->servers[i].id;
		else
			l[nl++] = c->servers[i].id;
	}
	/* Sorted, so the text does not depend on the order of changes. */
	for (size_t i = 1; i < nv; i++)
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	for (size_t i = 1; i < nl; i++)
		for (size_t j = i; j > 0 && l[j - 1] > l[j]; j--) {
			uint64_t t = l[j];
			l[j] = l[j - 1];
			l[j - 1] = t;
		}
	scratch_reset(h);
	sb_addf(&h->scratch, "voters=");
	for (size_t i = 0; i < nv; i++)
		sb_addf(&h->scratch, "%s%" PRIu64, i ? "," : "", v[i]);
	if (nl > 0) {
		sb_addf(&h->scratch, " learners=");
		for (size_t i = 0; i < nl; i++)
			sb_addf(&h->scratch, "%s%" PRIu64, i ? "," : "", l[i]);
	}
	return sb_str(&h->scratch);
}

uint64_t
h_vote(struct harness *h, uint64_t id)
{
	struct raft_status st;

	raft_status(h_raft(h, id), &st);
	return st.vote;
}

const char *
pat(const char *fmt, ...)
{
	static char bufs[32][512];
	static unsigned next;
	char *b = bufs[next++ % 32];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof(bufs[0]), fmt, ap);
	va_end(ap);
	return b;
}

struct raft_hard
h_saved_hard(const struct harness *h, uint64_t id)
{
	return h->node[id].hard;
}

const struct raft_read *
h_read(const struct harness *h, uint64_t id, uint64_t ctx)
{
	const struct h_node *n = &h->node[id];

	for (size_t i = n->n_reads; i > 0; i--)
		if (n->reads[i - 1].context == ctx)
			return &n->reads[i - 1];
	return NULL;
}

/* ------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------ */

static void
print_list(const char *title, const char *const *items, size_t n)
{
	fprintf(stderr, "  %s (%zu):\n", title, n);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "    %s\n", items[i]);
}

/* Prints the difference and returns false when @got does not match. */
static bool
compare_lines(const char *file, int line, const char *what,
    const char *const *want, const char *const *got, size_t ngot)
{
	size_t nwant = 0;
	bool ok;

	while (want[nwant] != NULL)
		nwant++;
	ok = nwant == ngot;
	for (size_t i = 0; ok && i < nwant; i++)
		ok = line_matches(want[i], got[i]);
	if (!ok) {
		fprintf(stderr, "  %s:%d: %s differ\n", file, line, what);
		print_list("want", want, nwant);
		print_list("got", got, ngot);
	}
	return ok;
}

void
h_expect_msgs(
    struct harness *h, const char *file, int line, const char *const *want)
{
	const char **got = xcalloc(h->n_lines - h->mark + 1, sizeof(*got));
	size_t ngot = 0;
	bool ok;

	for (size_t i = h->mark; i < h->n_lines; i++)
		if (h->lines[i].msg)
			got[ngot++] = h->lines[i].text;
	ok = compare_lines(file, line, "moved messages", want, got, ngot);
	free(got);
	if (!ok)
		h_fail_at(h, file, line, "moved messages differ (see above)");
	h_mark(h);
}

void
h_expect_queued(
    struct harness *h, const char *file, int line, const char *const *want)
{
	char **got;
	size_t ngot;
	bool ok;

	process(h);
	ngot = h->nq;
	got = xcalloc(ngot + 1, sizeof(*got));
	for (size_t i = 0; i < ngot; i++) {
		struct sb b = { 0 };

		render_msg(&b, &h->q[i], false);
		got[i] = b.s;
	}
	ok = compare_lines(file, line, "queued messages", want,
	    (const char *const *)got, ngot);
	for (size_t i = 0; i < ngot; i++)
		free(got[i]);
	free(got);
	if (!ok)
		h_fail_at(h, file, line, "queued messages differ (see above)");
}

void
h_expect_role(struct harness *h, const char *file, int line, uint64_t id,
    enum raft_role role)
{
	enum raft_role got = raft_role(h_raft(h, id));

	if (got != role)
		h_fail_at(h, file, line, "role of %" PRIu64 ": %s, want %s", id,
		    raft_role_name(got), raft_role_name(role));
}

void
h_expect_u64(struct harness *h, const char *file, int line, const char *what,
    uint64_t got, uint64_t want)
{
	if (got != want)
		h_fail_at(h, file, line, "%s: %" PRIu64 ", want %" PRIu64, what,
		    got, want);
}

void
h_expect_str(struct harness *h, const char *file, int line, const char *what,
    const char *got, const char *want)
{
	if (strcmp(got, want) != 0) {
		char *g = strdup(got);

		if (g == NULL)
			abort();
		fprintf(stderr, "  %s:%d: %s: \"%s\", want \"%s\"\n", file,
		    line, what, g, want);
		free(g);
		h_fail_at(h, file, line, "%s differs (see above)", what);
	}
}

void
h_expect_read(struct harness *h, const char *file, int line, uint64_t id,
    uint64_t ctx, int ok, uint64_t index)
{
	const struct raft_read *r = h_read(h, id, ctx);

	if (ok < 0) {
		if (r != NULL)
			h_fail_at(h, file, line,
			    "read %" PRIu64 " on %" PRIu64
			    " answered (%s, index %" PRIu64 "), want none",
			    ctx, id, r->ok ? "ok" : "failed", r->index);
		return;
	}
	if (r == NULL)
		h_fail_at(h, file, line,
		    "read %" PRIu64 " on %" PRIu64 " not answered", ctx, id);
	if (r->ok != (ok == 1))
		h_fail_at(h, file, line,
		    "read %" PRIu64 " on %" PRIu64 ": %s, want %s", ctx, id,
		    r->ok ? "ok" : "failed", ok ? "ok" : "failed");
	if (ok == 1 && index != 0 && r->index != index)
		h_fail_at(h, file, line,
		    "read %" PRIu64 " on %" PRIu64 ": index %" PRIu64
		    ", want %" PRIu64,
		    ctx, id, r->index, index);
}

void
h_expect_logs_match(
    struct harness *h, const char *file, int line, uint64_t a, uint64_t b)
{
	struct h_node *na = node_of(h, a), *nb = node_of(h, b);
	uint64_t la = store_last(na), lb = store_last(nb);

	if (la != lb)
		h_fail_at(h, file, line,
		    "logs of %" PRIu64 " and %" PRIu64 ": last index %" PRIu64
		    " vs %" PRIu64,
		    a, b, la, lb);
	for (size_t i = 0; i < na->n_log; i++) {
		const struct raft_entry *e = &na->log[i];

		for (size_t j = 0; j < nb->n_log; j++) {
			const struct raft_entry *f = &nb->log[j];

			if (f->index != e->index)
				continue;
			if (f->term != e->term || f->type != e->type ||
			    f->len != e->len ||
			    (e->len > 0 &&
			        memcmp(e->data, f->data, e->len) != 0))
				h_fail_at(h, file, line,
				    "logs of %" PRIu64 " and %" PRIu64
				    " differ at %" PRIu64 ": %" PRIu64
				    "@%" PRIu64 " vs %" PRIu64 "@%" PRIu64,
				    a, b, e->index, e->index, e->term, f->index,
				    f->term);
		}
	}
	uint64_t ta, tb;
	if (!store_term(na, la, &ta) || !store_term(nb, lb, &tb) || ta != tb)
		h_fail_at(h, file, line,
		    "logs of %" PRIu64 " and %" PRIu64 ": last terms differ", a,
		    b);
}

/* ------------------------------------------------------------------------
 * Bare cores
 * ------------------------------------------------------------------------ */

struct raft *
h_core_new(uint64_t id, unsigned n, const struct h_opts *o)
{
	struct harness tmp;
	struct raft_config c;
	struct raft_conf boot;
	struct raft_state st;
	struct raft *r;
	int err = 0;

	memset(&tmp, 0, sizeof(tmp));
	if (o != NULL)
		tmp.opts = *o;
	if (tmp.opts.election_ticks == 0)
		tmp.opts.election_ticks = 10;
	if (tmp.opts.heartbeat_ticks == 0)
		tmp.opts.heartbeat_ticks = 1;
	if (tmp.opts.seed == 0)
		tmp.opts.seed = 1;
	config_for(&tmp, id, &c);
	memset(&boot, 0, sizeof(boot));
	for (unsigned i = 1; i <= n; i++) {
		boot.servers[boot.n].id = i;
		boot.servers[boot.n].suffrage = RAFT_VOTER;
		boot.n++;
	}
	memset(&st, 0, sizeof(st));
	st.bootstrap = &boot;
	r = raft_new(&c, &st, &err);
	if (r == NULL)
		t_fail_at(__FILE__, __LINE__, "raft_new: %s", dsc_errname(err));
	return r;
}

unsigned
h_core_drain(struct raft *r)
{
	struct raft_ready rd;
	unsigned n = 0;

	while (raft_ready(r, &rd) && n < H_MAX_READIES) {
		raft_advance(r, &rd);
		n++;
	}
	return n;
}

/*
 * server.c - the Raft driver: ticks, draining the core's ready (save, send,
 * apply, advance), and everything that waits for the cluster -- proposals,
 * forwarded proposals, read barriers and watches.
 *
 * Group commit falls out of libevent priorities: input handlers (peer
 * frames, RPC requests, the tick) run at priority 0 and only kick the drain
 * event, which runs at priority 1, after every input of the batch has been
 * stepped into the core. One drain, one raft_ready(), one fdatasync for all
 * of them, as Redis fsyncs in beforesleep.
 *
 * No acknowledgement ever precedes the save: a proposal's callback runs
 * from the apply step, which comes after wal_save() returned for the same
 * ready. When a save fails with ENOSPC the core is not advanced at all
 * (its ready is still owed) and the server stops stepping it until a retry
 * succeeds; a failed fsync stops the server, since after one the page
 * cache's state is unknown.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "buf.h"
#include "dsc_assert.h"
#include "liveness.h"
#include "log.h"
#include "peers.h"
#include "rpc.h"

#define PROPOSE_TIMEOUT_MS 10000
#define RETRY_SAVE_MS 1000

enum wait_kind { WAIT_PROPOSE, WAIT_FORWARD, WAIT_READ, WAIT_WATCH };

struct server_wait {
	struct server_wait *prev, *next;
	struct server *s;
	enum wait_kind kind;
	uint64_t index, term;	/* PROPOSE: the entry; FORWARD, READ: apply target */
	uint64_t id;		/* FORWARD: request id; READ: context */
	bool known;		/* FORWARD: result in; READ: read index in */
	bool deferred;		/* outcome decided, delivered by the timer */
	bool conf;		/* PROPOSE: a configuration change */
	int rv;
	json_t *result;
	char *watch_key;
	struct event *timer;
	server_propose_fn *propose_fn;
	server_read_fn *read_fn;
	server_watch_fn *watch_fn;
	void *arg;
};

static void __attribute__((noreturn))
die_nomem(void)
{
	log_err("out of memory");
	exit(DSC_EXIT_TEMP);
}

/* ---- waits ---------------------------------------------------------------- */

static void wait_timer_cb(evutil_socket_t fd, short what, void *arg);

static struct server_wait *
wait_new(struct server *s, enum wait_kind kind, unsigned timeout_ms)
{
	struct server_wait *w = calloc(1, sizeof(*w));
	struct timeval tv;

	if (w == NULL)
		die_nomem();
	w->s = s;
	w->kind = kind;
	w->timer = evtimer_new(s->base, wait_timer_cb, w);
	if (w->timer == NULL)
		die_nomem();
	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
		evtimer_add(w->timer, &tv);
	}
	return w;
}

/* Links @w into its list; proposals stay sorted by index. */
static void
wait_link(struct server *s, struct server_wait *w)
{
	struct server_wait **head = &s->waits[w->kind], *at = NULL;

	if (w->kind == WAIT_PROPOSE) {
		for (at = *head; at != NULL && at->next != NULL; at = at->next)
			;
		while (at != NULL && at->index > w->index)
			at = at->prev;
	}
	if (at == NULL) {
		w->prev = NULL;
		w->next = *head;
		if (*head != NULL)
			(*head)->prev = w;
		*head = w;
	} else {
		w->prev = at;
		w->next = at->next;
		if (at->next != NULL)
			at->next->prev = w;
		at->next = w;
	}
}

static void
wait_unlink(struct server *s, struct server_wait *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		s->waits[w->kind] = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
}

static void
wait_free(struct server_wait *w)
{
	event_free(w->timer);
	json_decref(w->result);
	free(w->watch_key);
	free(w);
}

/* Delivers the outcome and frees @w. Only ever called from the loop. */
static void
wait_finish(struct server_wait *w, int rv, uint64_t index, json_t *result)
{
	struct server *s = w->s;

	wait_unlink(s, w);
	switch (w->kind) {
	case WAIT_PROPOSE:
	case WAIT_FORWARD:
		w->propose_fn(w->arg, rv, index, rv == 0 ? result : NULL);
		break;
	case WAIT_READ:
		w->read_fn(w->arg, rv);
		break;
	case WAIT_WATCH:
		w->watch_fn(w->arg, rv);
		break;
	}
	wait_free(w);
}

/* Decides the outcome now, delivers it from the loop. */
static void
wait_defer(struct server_wait *w, int rv)
{
	w->deferred = true;
	w->rv = rv;
	event_active(w->timer, EV_TIMEOUT, 1);
}

static void
wait_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server_wait *w = arg;

	(void)fd;
	(void)what;
	if (w->deferred)
		wait_finish(w, w->rv, w->index, w->result);
	else
		wait_finish(w, DSC_ETIMEDOUT, 0, NULL);
}

void
server_wait_cancel(struct server *s, struct server_wait *w)
{
	if (w == NULL)
		return;
	wait_unlink(s, w);
	wait_free(w);
}

/* ---- proposals -------------------------------------------------------------- */

static struct server_wait *
propose_local(struct server *s, const void *cmd, size_t len,
	      unsigned timeout_ms, server_propose_fn *fn, void *arg,
	      struct dsc_err *err)
{
	struct server_wait *w;
	uint64_t index, term;
	int rv = raft_propose(s->raft, cmd, len, &index, &term);

	if (rv != 0) {
		dsc_errorf(err, rv, "unable to propose: %s", dsc_strerror(rv));
		return NULL;
	}
	w = wait_new(s, WAIT_PROPOSE, timeout_ms);
	w->index = index;
	w->term = term;
	w->propose_fn = fn;
	w->arg = arg;
	wait_link(s, w);
	s->stats.proposals++;
	server_kick(s);
	return w;
}

static struct server_wait *
propose_forward(struct server *s, uint64_t leader, const void *cmd,
		size_t len, unsigned timeout_ms, server_propose_fn *fn,
		void *arg, struct dsc_err *err)
{
	struct buf b = BUF_INIT;
	struct server_wait *w;
	uint64_t id = ++s->next_forward;
	bool sent;

	if (buf_add_u64le(&b, id) != 0 || buf_add(&b, cmd, len) != 0)
		die_nomem();
	sent = peers_send(s->peers, leader, PEER_FRAME_PROPOSE, b.p, b.len);
	buf_release(&b);
	if (!sent) {
		dsc_errorf(err, DSC_ENOLEADER, "leader unreachable");
		return NULL;
	}
	w = wait_new(s, WAIT_FORWARD, timeout_ms);
	w->id = id;
	w->propose_fn = fn;
	w->arg = arg;
	wait_link(s, w);
	s->stats.forwarded++;
	return w;
}

struct server_wait *
server_propose(struct server *s, const void *cmd, size_t len,
	       unsigned timeout_ms, server_propose_fn *fn, void *arg,
	       struct dsc_err *err)
{
	uint64_t leader = raft_leader(s->raft);
	int rv;

	if (timeout_ms == 0)
		timeout_ms = PROPOSE_TIMEOUT_MS;
	if ((rv = catalog_validate(cmd, len, err)) != 0)
		return NULL;
	if (s->wal_failed || s->disk_stalled) {
		dsc_errorf(err, DSC_ENOSPC,
			   "this server cannot write its log; retry elsewhere");
		return NULL;
	}
	if (s->stopping) {
		dsc_errorf(err, DSC_ENOLEADER, "server is shutting down");
		return NULL;
	}
	if (raft_role(s->raft) == RAFT_LEADER)
		return propose_local(s, cmd, len, timeout_ms, fn, arg, err);
	if (leader == RAFT_NONE) {
		dsc_errorf(err, DSC_ENOLEADER, "cluster has no leader");
		return NULL;
	}
	return propose_forward(s, leader, cmd, len, timeout_ms, fn, arg, err);
}

/* Called for every applied entry, in order. */
static void
proposals_applied(struct server *s, const struct raft_entry *e,
		  const struct catalog_result *res)
{
	struct server_wait *w;
	json_t *j;

	while ((w = s->waits[WAIT_PROPOSE]) != NULL && w->index <= e->index) {
		bool same = w->index == e->index && w->term == e->term &&
			    (w->conf ? e->type == RAFT_ENTRY_CONF
				     : e->type == RAFT_ENTRY_NORMAL && res != NULL);

		if (!same) {
			/* Another leader's entry took the slot: not applied,
			 * so a retry is safe. */
			wait_finish(w, DSC_ENOLEADER, 0, NULL);
			continue;
		}
		j = w->conf ? json_pack("{s:b}", "ok", 1)
			    : catalog_result_json(res);
		if (j == NULL)
			die_nomem();
		wait_finish(w, 0, e->index, j);
		json_decref(j);
	}
}

struct server_wait *
server_propose_conf(struct server *s, enum raft_conf_op op, uint64_t id,
		    server_propose_fn *fn, void *arg, struct dsc_err *err)
{
	struct server_wait *w;
	uint64_t index;
	int rv;

	if (raft_role(s->raft) != RAFT_LEADER) {
		dsc_errorf(err, DSC_ENOTLEADER, "not the leader");
		return NULL;
	}
	rv = raft_propose_conf(s->raft, op, id, &index);
	if (rv != 0) {
		dsc_errorf(err, rv, "unable to change the configuration: %s",
			   rv == DSC_EBUSY ? "a change is in progress, or the "
					     "leader has not settled yet"
					   : dsc_strerror(rv));
		return NULL;
	}
	w = wait_new(s, WAIT_PROPOSE, PROPOSE_TIMEOUT_MS);
	w->index = index;
	w->term = raft_term(s->raft);
	w->conf = true;
	w->propose_fn = fn;
	w->arg = arg;
	wait_link(s, w);
	server_kick(s);
	return w;
}

struct server_wait *
server_defer_result(struct server *s, server_propose_fn *fn, void *arg,
		    int rv, const char *note)
{
	struct server_wait *w = wait_new(s, WAIT_FORWARD, 0);

	w->propose_fn = fn;
	w->arg = arg;
	w->result = json_pack("{s:b, s:s}", "ok", rv == 0, "note", note);
	wait_link(s, w);
	wait_defer(w, rv);
	return w;
}

/* A forwarded proposal from a follower, answered once applied here. */
struct fwd_reply {
	struct server *s;
	uint64_t to, id;
};

static void
send_propose_result(struct server *s, uint64_t to, uint64_t id, int rv,
		    uint64_t index, json_t *result)
{
	struct buf b = BUF_INIT;
	json_t *err = NULL;
	char *text;

	if (rv != 0) {
		err = json_pack("{s:s, s:i}", "error", dsc_strerror(rv),
				"code", rv);
		result = err;
	}
	text = result != NULL ? json_dumps(result, JSON_COMPACT) : NULL;
	if (text == NULL || buf_add_u64le(&b, id) != 0 ||
	    buf_add_u64le(&b, index) != 0 || buf_addstr(&b, text) != 0)
		die_nomem();
	(void)peers_send(s->peers, to, PEER_FRAME_PROPOSE_RESULT, b.p, b.len);
	buf_release(&b);
	free(text);
	json_decref(err);
}

static void
fwd_done(void *arg, int rv, uint64_t index, json_t *result)
{
	struct fwd_reply *f = arg;

	send_propose_result(f->s, f->to, f->id, rv, index, result);
	free(f);
}

static void
on_propose_frame(struct server *s, uint64_t from, const uint8_t *p,
		 size_t len)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct fwd_reply *f;
	uint64_t id;

	if (len < 8)
		return;
	id = get_u64le(p);
	if (raft_role(s->raft) != RAFT_LEADER) {
		send_propose_result(s, from, id, DSC_ENOLEADER, 0, NULL);
		return;
	}
	f = malloc(sizeof(*f));
	if (f == NULL)
		die_nomem();
	*f = (struct fwd_reply){ s, from, id };
	if (propose_local(s, p + 8, len - 8, PROPOSE_TIMEOUT_MS, fwd_done, f,
			  &err) == NULL) {
		send_propose_result(s, from, id, err.code, 0, NULL);
		free(f);
	}
}

static void
on_propose_result(struct server *s, const uint8_t *p, size_t len)
{
	struct server_wait *w;
	json_t *j, *code;
	uint64_t id, index;

	if (len < 16)
		return;
	id = get_u64le(p);
	index = get_u64le(p + 8);
	for (w = s->waits[WAIT_FORWARD]; w != NULL && w->id != id; w = w->next)
		;
	if (w == NULL || w->known)
		return;
	j = json_loadb((const char *)p + 16, len - 16, JSON_REJECT_DUPLICATES,
		       NULL);
	code = j != NULL ? json_object_get(j, "code") : NULL;
	if (j == NULL || (code != NULL && json_is_integer(code))) {
		int rv = j != NULL ? (int)json_integer_value(code) : DSC_EPROTO;

		json_decref(j);
		if (rv <= 0 || rv >= DSC_E_MAX)
			rv = DSC_EPROTO;
		wait_defer(w, rv);
		return;
	}
	/* Read-your-writes here too: answer once this server applied it. */
	w->known = true;
	w->index = index;
	w->result = j;
	if (raft_applied_index(s->raft) >= index)
		wait_defer(w, 0);
}

/* ---- reads and watches ---------------------------------------------------- */

struct server_wait *
server_read_barrier(struct server *s, unsigned timeout_ms, server_read_fn *fn,
		    void *arg, struct dsc_err *err)
{
	struct server_wait *w;
	uint64_t ctx = ++s->next_context;
	int rv;

	if (timeout_ms == 0)
		timeout_ms = PROPOSE_TIMEOUT_MS;
	if (s->disk_stalled) {
		dsc_errorf(err, DSC_ENOSPC, "this server is stalled on its disk");
		return NULL;
	}
	rv = raft_read_index(s->raft, ctx);
	if (rv != 0) {
		dsc_errorf(err, rv, "unable to confirm the leader: %s",
			   dsc_strerror(rv));
		return NULL;
	}
	w = wait_new(s, WAIT_READ, timeout_ms);
	w->id = ctx;
	w->read_fn = fn;
	w->arg = arg;
	wait_link(s, w);
	s->stats.reads++;
	server_kick(s);
	return w;
}

struct server_wait *
server_watch(struct server *s, const char *watch_key, uint64_t index,
	     unsigned wait_ms, server_watch_fn *fn, void *arg)
{
	struct server_wait *w;

	DSC_ASSERT(wait_ms > 0);	/* wait_new() takes 0 as "no deadline" */
	w = wait_new(s, WAIT_WATCH, wait_ms);
	w->watch_key = strdup(watch_key);
	if (w->watch_key == NULL)
		die_nomem();
	w->index = index;
	w->watch_fn = fn;
	w->arg = arg;
	wait_link(s, w);
	s->stats.watches++;
	if (catalog_index(s->catalog, watch_key) > index)
		wait_defer(w, 0);
	return w;
}

static void
reads_answered(struct server *s, const struct raft_read *rd, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct server_wait *w;

		for (w = s->waits[WAIT_READ]; w != NULL && w->id != rd[i].context;
		     w = w->next)
			;
		if (w == NULL || w->known)
			continue;
		if (!rd[i].ok) {
			wait_finish(w, DSC_ENOLEADER, 0, NULL);
			continue;
		}
		w->known = true;
		w->index = rd[i].index;
	}
}

/* After applying: release what the applied index now allows. */
static void
release_applied(struct server *s, bool catalog_moved)
{
	uint64_t applied = raft_applied_index(s->raft);
	struct server_wait *w, *next;

	for (w = s->waits[WAIT_READ]; w != NULL; w = next) {
		next = w->next;
		if (w->known && w->index <= applied)
			wait_finish(w, 0, 0, NULL);
	}
	for (w = s->waits[WAIT_FORWARD]; w != NULL; w = next) {
		next = w->next;
		if (w->known && !w->deferred && w->index <= applied)
			wait_finish(w, 0, w->index, w->result);
	}
	if (!catalog_moved)
		return;
	for (w = s->waits[WAIT_WATCH]; w != NULL; w = next) {
		next = w->next;
		if (!w->deferred &&
		    catalog_index(s->catalog, w->watch_key) > w->index)
			wait_finish(w, 0, 0, NULL);
	}
}

/* ---- the drain ------------------------------------------------------------ */

static void
apply_committed(struct server *s, const struct raft_ready *rd, bool *moved)
{
	struct dsc_err err = DSC_ERR_INIT;

	if (rd->snapshot != NULL) {
		if (catalog_restore(s->catalog, rd->snapshot->data,
				    rd->snapshot->len, &err) != 0) {
			log_err("unable to restore snapshot at %llu: %s",
				(unsigned long long)rd->snapshot->meta.index,
				dsc_err_msg(&err));
			exit(DSC_EXIT_PERM);
		}
		s->last_snapshot_index = rd->snapshot->meta.index;
		log_info("restored snapshot at index %llu from the leader",
			 (unsigned long long)rd->snapshot->meta.index);
		cluster_on_conf(s);
		*moved = true;
	}
	for (size_t i = 0; i < rd->n_committed; i++) {
		const struct raft_entry *e = &rd->committed[i];
		struct catalog_result res;
		int rv;

		if (e->type != RAFT_ENTRY_NORMAL) {
			proposals_applied(s, e, NULL);
			if (e->type == RAFT_ENTRY_CONF)
				cluster_on_conf(s);
			continue;
		}
		rv = catalog_apply(s->catalog, e->index, e->data, e->len, &res);
		if (rv != 0) {
			/* Skipping an entry would make this replica diverge. */
			log_err("unable to apply entry %llu: %s",
				(unsigned long long)e->index, dsc_strerror(rv));
			exit(rv == DSC_ENOMEM ? DSC_EXIT_TEMP : DSC_EXIT_PERM);
		}
		proposals_applied(s, e, &res);
		*moved = true;
	}
}

/*
 * Thesis 10.2.1: a leader may send entries before its own write of them is
 * durable, because it counts itself in the commit quorum only after
 * raft_advance(). Sending its appends and heartbeats before the fsync lets
 * the followers write in parallel with it, so a commit waits for one fsync
 * instead of two in a row. Only while nothing in the batch must be durable
 * before anyone hears of it: no new term or vote, no snapshot.
 */
static bool
send_before_save(const struct raft_ready *rd)
{
	return rd->role == RAFT_LEADER && !rd->hard_changed &&
	       rd->snapshot == NULL && rd->must_sync;
}

static bool
sent_before_save(const struct raft_msg *m)
{
	return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

enum send_part { SEND_ALL, SEND_EARLY, SEND_REST };

static void
send_msgs(struct server *s, const struct raft_ready *rd, enum send_part part)
{
	for (size_t i = 0; i < rd->n_msgs; i++) {
		const struct raft_msg *m = &rd->msgs[i];

		if (part == SEND_ALL ||
		    (part == SEND_EARLY) == sent_before_save(m))
			peers_send_raft(s->peers, m);
	}
	if (part == SEND_EARLY)
		peers_flush(s->peers);
}

static void
note_role(struct server *s, const struct raft_ready *rd)
{
	const struct server_member *m;

	if (!rd->role_changed)
		return;
	liveness_on_role(s);
	if (rd->role == RAFT_LEADER) {
		log_info("became leader term=%llu index=%llu",
			 (unsigned long long)raft_term(s->raft),
			 (unsigned long long)raft_last_index(s->raft));
		return;
	}
	m = cluster_member_by_id(s, rd->leader);
	if (rd->leader != RAFT_NONE)
		log_info("following %s term=%llu",
			 m != NULL ? m->name : "an unknown server",
			 (unsigned long long)raft_term(s->raft));
	/* Forwarded writes went to a leader that may be gone; they time out
	 * or come back, but waiting local proposals may still commit. */
}

/* Returns false when the save failed and the ready is still owed. */
static bool
drain_once(struct server *s, bool *moved)
{
	struct dsc_err err = DSC_ERR_INIT;
	struct raft_ready rd;
	bool early;
	int rv;

	if (!raft_ready(s->raft, &rd))
		return false;
	/* A save that fails is retried with the same ready, sending these
	 * again: duplicates are harmless to Raft. */
	if ((early = send_before_save(&rd)))
		send_msgs(s, &rd, SEND_EARLY);
	rv = wal_save(s->wal, &rd, &err);
	if (rv != 0) {
		s->stats.wal_errors++;
		if (rv == DSC_ENOSPC || rv == DSC_ENOMEM) {
			if (!s->disk_stalled)
				log_err("unable to save the log: %s; refusing "
					"writes until it can",
					dsc_err_msg(&err));
			/* Proposals already in the core stay in it and
			 * commit once a save succeeds, so their waits run
			 * on (to their timeout: outcome unknown); only new
			 * ones are refused outright. */
			s->disk_stalled = true;
			struct timeval tv = { RETRY_SAVE_MS / 1000,
					      (RETRY_SAVE_MS % 1000) * 1000 };

			evtimer_add(s->retry_ev, &tv);
			return false;
		}
		/* After a failed fsync the page cache cannot be trusted
		 * (fsyncgate): stop, so a restart reads what is on disk. */
		log_err("unable to save the log: %s; stopping",
			dsc_err_msg(&err));
		s->wal_failed = true;
		server_stop(s, DSC_EXIT_TEMP);
		return false;
	}
	if (s->disk_stalled) {
		log_info("the log is writable again");
		s->disk_stalled = false;
	}
	if (rd.must_sync)
		s->stats.wal_syncs++;
	send_msgs(s, &rd, early ? SEND_REST : SEND_ALL);
	apply_committed(s, &rd, moved);
	reads_answered(s, rd.reads, rd.n_reads);
	note_role(s, &rd);
	raft_advance(s->raft, &rd);
	return true;
}

static void
maybe_snapshot(struct server *s)
{
	struct dsc_err err = DSC_ERR_INIT;
	uint64_t applied = raft_applied_index(s->raft);

	if (s->cfg.snapshot_every == 0 ||
	    applied < s->last_snapshot_index + s->cfg.snapshot_every)
		return;
	if (server_snapshot_now(s, &err) == 0 && err.code != 0)
		log_warn("unable to take a snapshot: %s", dsc_err_msg(&err));
}

uint64_t
server_snapshot_now(struct server *s, struct dsc_err *err)
{
	uint64_t applied = raft_applied_index(s->raft);
	struct buf b = BUF_INIT;
	int rv;

	if (applied <= s->last_snapshot_index)
		return s->last_snapshot_index;
	rv = catalog_snapshot(s->catalog, &b);
	if (rv == 0)
		rv = raft_snapshot(s->raft, applied, b.p, b.len,
				   s->cfg.snapshot_trailing);
	buf_release(&b);
	if (rv != 0) {
		dsc_errorf(err, rv, "unable to snapshot at %llu: %s",
			   (unsigned long long)applied, dsc_strerror(rv));
		return 0;
	}
	/* The core's log behind it is gone from memory only; the WAL keeps
	 * it until the snapshot file is safely in place. */
	rv = wal_save_snapshot(s->wal, raft_snapshot_get(s->raft), err);
	if (rv != 0)
		return 0;
	s->last_snapshot_index = applied;
	if (wal_release(s->wal, raft_first_index(s->raft), err) != 0)
		log_warn("unable to release old log segments: %s",
			 dsc_err_msg(err));
	log_info("snapshot taken at index %llu", (unsigned long long)applied);
	return applied;
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	bool moved = false;

	(void)fd;
	(void)what;
	if (s->disk_stalled)
		return;		/* the retry timer drains */
	while (drain_once(s, &moved))
		;
	if (moved || s->waits[WAIT_READ] != NULL ||
	    s->waits[WAIT_FORWARD] != NULL)
		release_applied(s, moved);
	if (!s->disk_stalled && !s->wal_failed)
		maybe_snapshot(s);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	bool moved = false;

	(void)fd;
	(void)what;
	/* drain_once() clears the stall (and says so) when the owed ready
	 * is saved at last, or re-arms this timer when it is not. */
	(void)drain_once(s, &moved);
	if (!s->disk_stalled) {
		if (moved)
			release_applied(s, true);
		drain_cb(-1, 0, s);
	}
}

void
server_kick(struct server *s)
{
	if (!s->disk_stalled)
		event_active(s->drain_ev, EV_TIMEOUT, 1);
}

/* ---- inputs ------------------------------------------------------------- */

void
server_on_raft(void *arg, const struct raft_msg *m)
{
	struct server *s = arg;
	int rv;

	if (s->disk_stalled)
		return;		/* as if lost: the core owes a save */
	if (m->from == raft_leader(s->raft))
		s->last_contact_tick = s->ticks;
	cluster_heard(s, m->from);
	rv = raft_step(s->raft, m);
	if (rv != 0 && rv != DSC_ENOMEM)
		log_debug("dropped %s from %llu: %s",
			  raft_msg_type_name(m->type),
			  (unsigned long long)m->from, dsc_strerror(rv));
	server_kick(s);
}

void
server_on_frame(void *arg, uint64_t from, uint8_t kind, const uint8_t *p,
		size_t len)
{
	struct server *s = arg;

	switch (kind) {
	case PEER_FRAME_INTRO:
		cluster_on_intro(s, from, (const char *)p, len);
		break;
	case PEER_FRAME_PROPOSE:
		if (!s->disk_stalled)
			on_propose_frame(s, from, p, len);
		break;
	case PEER_FRAME_PROPOSE_RESULT:
		on_propose_result(s, p, len);
		break;
	case PEER_FRAME_JOIN:
		cluster_on_join(s, from, p, len);
		break;
	default:
		log_debug("ignored frame kind %u from %llu", kind,
			  (unsigned long long)from);
		break;
	}
	server_kick(s);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	if (s->disk_stalled)
		return;
	s->ticks++;
	if (raft_role(s->raft) == RAFT_LEADER)
		s->last_contact_tick = s->ticks;
	raft_tick(s->raft);
	cluster_tick(s);
	if (s->stopping && (raft_role(s->raft) != RAFT_LEADER ||
			    s->ticks >= s->stop_deadline)) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	server_kick(s);
}

const struct server_member *
server_leader(const struct server *s)
{
	uint64_t id = raft_leader(s->raft);

	if (id == s->id)
		return &s->self;
	return id == RAFT_NONE ? NULL : cluster_member_by_id(s, id);
}

uint64_t
server_last_contact_ms(const struct server *s)
{
	if (raft_role(s->raft) == RAFT_LEADER)
		return 0;
	return (s->ticks - s->last_contact_tick) * s->cfg.tick_ms;
}

/* ---- life cycle --------------------------------------------------------- */

/* The voter most caught up, to hand leadership to on shutdown. */
static uint64_t
best_successor(const struct server *s)
{
	struct raft_status st;
	uint64_t best = RAFT_NONE, match = 0;

	raft_status(s->raft, &st);
	for (uint32_t i = 0; i < st.n_progress; i++) {
		const struct raft_progress_view *v = &st.progress[i];

		if (v->id == s->id || v->suffrage != RAFT_VOTER ||
		    !v->recent_active)
			continue;
		if (best == RAFT_NONE || v->match > match) {
			best = v->id;
			match = v->match;
		}
	}
	return best;
}

void
server_stop(struct server *s, int exit_code)
{
	uint64_t to;

	if (s->stopping)
		return;
	s->stopping = true;
	s->exit_code = exit_code;
	to = raft_role(s->raft) == RAFT_LEADER && !s->wal_failed
		     ? best_successor(s)
		     : RAFT_NONE;
	if (to == RAFT_NONE) {
		event_base_loopexit(s->base, NULL);
		return;
	}
	log_info("transferring leadership before stopping");
	/* A successor that has just gone away never takes over; the core
	 * drops the transfer after an election timeout, and we go anyway. */
	s->stop_deadline = s->ticks + 2 * s->cfg.election_ticks;
	if (raft_transfer_leader(s->raft, to) != 0)
		event_base_loopexit(s->base, NULL);
	server_kick(s);
}

int
server_bootstrap(struct server *s, const struct raft_conf *conf,
		 struct dsc_err *err)
{
	struct raft_config rc;
	struct raft_state st = { .bootstrap = conf };
	struct raft *r;
	int rv = 0;

	raft_config_init(&rc, s->id, s->id ^ (uint64_t)s->ticks);
	rc.election_ticks = s->cfg.election_ticks;
	r = raft_new(&rc, &st, &rv);
	if (r == NULL)
		return dsc_errorf(err, rv, "unable to bootstrap: %s",
				  dsc_strerror(rv));
	raft_free(s->raft);
	s->raft = r;
	server_kick(s);
	return 0;
}

static int
load_state(struct server *s, struct dsc_err *err)
{
	struct wal_options wo = { .segment_size = s->cfg.segment_size };
	struct wal_loaded ld = { 0 };
	struct raft_config rc;
	struct raft_state st = { 0 };
	int rv;

	rv = wal_open(s->cfg.data_dir, &wo, &s->wal, &ld, err);
	if (rv != 0)
		return rv;
	if (ld.repair[0] != '\0')
		log_warn("%s", ld.repair);
	if (ld.snapshot.meta.index > 0) {
		rv = catalog_restore(s->catalog, ld.snapshot.data,
				     ld.snapshot.len, err);
		if (rv != 0) {
			dsc_err_wrap(err, "unable to restore the snapshot at "
					  "%llu",
				     (unsigned long long)ld.snapshot.meta.index);
			goto out;
		}
		st.snapshot = &ld.snapshot;
		st.applied = ld.snapshot.meta.index;
		s->last_snapshot_index = ld.snapshot.meta.index;
	}
	st.hard = ld.hard;
	st.entries = ld.entries;
	st.n_entries = ld.n_entries;
	raft_config_init(&rc, s->id, s->id);
	rc.election_ticks = s->cfg.election_ticks;
	s->raft = raft_new(&rc, &st, &rv);
	if (s->raft == NULL)
		dsc_errorf(err, rv == DSC_EINVAL ? DSC_ECORRUPT : rv,
			   "the saved Raft state in '%s' is inconsistent: %s",
			   s->cfg.data_dir, dsc_strerror(rv));
	else
		log_info("loaded term=%llu commit=%llu entries=%zu "
			 "snapshot=%llu",
			 (unsigned long long)ld.hard.term,
			 (unsigned long long)ld.hard.commit, ld.n_entries,
			 (unsigned long long)ld.snapshot.meta.index);
out:
	wal_loaded_release(&ld);
	return s->raft == NULL ? (rv != 0 ? rv : DSC_ECORRUPT) : 0;
}

int
server_start(struct server *s, struct dsc_err *err)
{
	struct peers_config pc = { 0 };
	struct timeval tv;
	int rv;

	/* Three levels: I/O at the default (1), the drain after it (2). */
	s->self.id = s->id;
	strcpy(s->self.name, s->cfg.name);
	strcpy(s->self.addr, s->cfg.bind);
	s->self.link_up = true;
	if (event_base_priority_init(s->base, 3) != 0)
		return dsc_errorf(err, DSC_EIO, "unable to set up event priorities");
	s->catalog = catalog_new();
	if (s->catalog == NULL)
		die_nomem();
	if ((rv = load_state(s, err)) != 0)
		return rv;
	if ((rv = auth_rpc_key_init(&s->rpc_key, s->key, NULL, err)) != 0 ||
	    (rv = replay_cache_init(&s->replay, AUTH_REPLAY_DEFAULT_CAP, err)) != 0)
		return rv;
	s->drain_ev = event_new(s->base, -1, 0, drain_cb, s);
	s->retry_ev = evtimer_new(s->base, retry_cb, s);
	s->tick_ev = event_new(s->base, -1, EV_PERSIST, tick_cb, s);
	if (s->drain_ev == NULL || s->retry_ev == NULL || s->tick_ev == NULL)
		die_nomem();
	event_priority_set(s->drain_ev, 2);
	pc.self_id = s->id;
	pc.bind_addr = s->cfg.bind;
	pc.key = s->key;
	pc.cb = (struct peers_callbacks){ s, server_on_raft, server_on_frame,
					   cluster_on_link };
	s->peers = peers_new(s->base, &pc, err);
	if (s->peers == NULL)
		return err->code;
	cluster_load(s);
	s->rpc = rpc_new(s, err);
	if (s->rpc == NULL)
		return err->code;
	if ((rv = liveness_start(s, err)) != 0)
		return rv;
	if ((rv = listener_start(s, err)) != 0)
		return rv;
	tv.tv_sec = s->cfg.tick_ms / 1000;
	tv.tv_usec = (s->cfg.tick_ms % 1000) * 1000;
	event_add(s->tick_ev, &tv);
	server_kick(s);
	log_info("%s (id %016llx) serving on %s", s->cfg.name,
		 (unsigned long long)s->id, s->cfg.bind);
	return 0;
}

void
server_release(struct server *s)
{
	/* The RPC layer cancels what its connections wait for; what is left
	 * belongs to peers that will not hear back. */
	rpc_free(s->rpc);
	s->rpc = NULL;
	liveness_free(s);
	for (int k = 0; k < 4; k++)
		while (s->waits[k] != NULL)
			server_wait_cancel(s, s->waits[k]);
	listener_free(s->listener);
	peers_free(s->peers);
	raft_free(s->raft);
	wal_close(s->wal);
	catalog_free(s->catalog);
	auth_rpc_key_release(&s->rpc_key);
	replay_cache_release(&s->replay);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	if (s->retry_ev != NULL)
		event_free(s->retry_ev);
	if (s->tick_ev != NULL)
		event_free(s->tick_ev);
	sodium_memzero(s->key, sizeof(s->key));
}

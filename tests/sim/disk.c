/*
 * disk.c - a node's simulated disk and its replicated state machine.
 *
 * The disk holds what the driver saved from readies: the hard state, the
 * latest snapshot (meta and data) and a log suffix. Writes of a ready that
 * did not ask for an fsync (must_sync false) are "unsynced" until the next
 * synced ready; a crash may lose them, which tests that the core asks for
 * a sync whenever it must. Two simplifications, both on the side of
 * keeping data: a ready without must_sync that rewrites synced entries or
 * installs a snapshot is treated as synced, and so is a snapshot the
 * simulator takes itself (a real WAL fsyncs before releasing its log).
 *
 * The state machine is a hash chain over every applied (index, term, type,
 * data), plus the configuration as of the applied index, which the
 * simulator needs to write a snapshot's meta. Its snapshot is those fields
 * serialized little-endian.
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define SM_MAGIC 0x31534d53435344ull	/* "DSCSMS1" */

/* ---- state machine -------------------------------------------------- */

static void
put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t
sm_encode(const struct sim_sm *s, uint8_t out[SIM_SM_SNAP_MAX])
{
	uint8_t *p = out;

	put_u64(p, SM_MAGIC);
	put_u64(p + 8, s->applied);
	put_u64(p + 16, s->term);
	put_u64(p + 24, s->chain);
	put_u64(p + 32, s->count);
	put_u64(p + 40, s->conf.n);
	p += 48;
	for (uint32_t i = 0; i < s->conf.n; i++, p += 9) {
		put_u64(p, s->conf.servers[i].id);
		p[8] = s->conf.servers[i].suffrage;
	}
	return (size_t)(p - out);
}

bool
sm_decode(const uint8_t *data, size_t len, struct sim_sm *s)
{
	uint64_t n;

	memset(s, 0, sizeof(*s));
	if (len < 48 || get_u64(data) != SM_MAGIC)
		return false;
	n = get_u64(data + 40);
	if (n > RAFT_MAX_SERVERS || len != 48 + n * 9)
		return false;
	s->applied = get_u64(data + 8);
	s->term = get_u64(data + 16);
	s->chain = get_u64(data + 24);
	s->count = get_u64(data + 32);
	s->conf.n = (uint32_t)n;
	for (uint32_t i = 0; i < s->conf.n; i++) {
		s->conf.servers[i].id = get_u64(data + 48 + i * 9);
		s->conf.servers[i].suffrage = data[48 + i * 9 + 8];
	}
	return true;
}

/*
 * Applies a configuration entry: a single change (raft_conf_decode) or the
 * bootstrap entry's whole configuration (op 0, u32 count, then id and
 * suffrage per server, as raft_membership.c writes it). A change that does
 * not apply changes nothing, as in the core. Returns whether @c changed.
 */
bool
sm_conf_apply_entry(struct raft_conf *c, const struct raft_entry *e)
{
	enum raft_conf_op op;
	struct raft_conf full;
	uint64_t id;
	uint32_t n;

	if (e->len >= 5 && e->data[0] == 0) {
		n = (uint32_t)e->data[1] | (uint32_t)e->data[2] << 8 |
		    (uint32_t)e->data[3] << 16 | (uint32_t)e->data[4] << 24;
		if (n > RAFT_MAX_SERVERS || e->len != 5 + (size_t)n * 9)
			return false;
		memset(&full, 0, sizeof(full));
		full.n = n;
		for (uint32_t i = 0; i < n; i++) {
			full.servers[i].id = get_u64(e->data + 5 + i * 9);
			full.servers[i].suffrage = e->data[5 + i * 9 + 8];
		}
		*c = full;
		return true;
	}
	if (raft_conf_decode(e->data, e->len, &op, &id) != 0)
		return false;
	return raft_conf_apply(c, op, id) == 0;
}

/* ---- disk: lookups ---------------------------------------------------- */

uint64_t
disk_last(const struct sim_disk *d)
{
	if (d->n > 0)
		return d->base + d->n - 1;
	return d->has_snap ? d->snap.index : d->base - 1;
}

const struct raft_entry *
disk_entry(const struct sim_disk *d, uint64_t index)
{
	if (index < d->base || index >= d->base + d->n)
		return NULL;
	return &d->log[index - d->base];
}

/* The chain up to @index, which must be base - 1 or in the log. */
static uint64_t
chain_at(const struct sim_disk *d, uint64_t index)
{
	if (index + 1 == d->base)
		return d->base_chain;
	return d->chain[index - d->base];
}

/* ---- disk: writes ---------------------------------------------------- */

static void
truncate_from(struct sim_disk *d, uint64_t index)
{
	while (d->n > 0 && d->base + d->n - 1 >= index) {
		d->n--;
		free(d->log[d->n].data);
	}
}

/*
 * Saves a ready's entries: entries[0] may replace a saved suffix. Returns
 * false, with a violation recorded, when they would leave a gap or
 * rewrite what the snapshot covers.
 */
bool
disk_save_entries(struct sim *g, struct sim_node *n,
		  const struct raft_entry *ents, size_t cnt)
{
	struct sim_disk *d = &n->disk;
	uint64_t first = ents[0].index, chain;
	size_t old_cap = d->cap;

	if (first < d->base || first > disk_last(d) + 1) {
		sim_violation(g, "n%llu: ready entries start at %llu, but the "
				 "saved log is [%llu, %llu]",
			      (unsigned long long)n->id,
			      (unsigned long long)first,
			      (unsigned long long)d->base,
			      (unsigned long long)disk_last(d));
		return false;
	}
	truncate_from(d, first);
	chain = chain_at(d, first - 1);
	sim_grow((void **)&d->log, &d->cap, d->n + cnt, sizeof(*d->log));
	if (d->cap != old_cap)
		d->chain = xreallocarray(d->chain, d->cap, sizeof(*d->chain));
	for (size_t i = 0; i < cnt; i++) {
		struct raft_entry *e = &d->log[d->n];

		*e = ents[i];
		e->data = xmemdup(ents[i].data, ents[i].len);
		if (e->index != first + i) {
			sim_violation(g, "n%llu: ready entries not consecutive "
					 "at %llu",
				      (unsigned long long)n->id,
				      (unsigned long long)e->index);
			free(e->data);
			return false;
		}
		chain = sim_chain(chain, sim_hash_entry(e));
		d->chain[d->n++] = chain;
		check_saved(g, n, e->index, e->term, chain);
	}
	return true;
}

static void
set_snapshot(struct sim_disk *d, const struct raft_snapshot_meta *meta,
	     const uint8_t *data, size_t len, uint64_t chain)
{
	free(d->snap_data);
	d->has_snap = true;
	d->snap = *meta;
	d->snap_data = xmemdup(data, len);
	d->snap_len = len;
	d->snap_chain = chain;
}

/*
 * Saves a snapshot from a ready and drops the saved log up to its index.
 * If the log does not hold the snapshot's last entry, what follows belongs
 * to a superseded branch and goes too (the core drops it as well).
 */
void
disk_install_snapshot(struct sim_disk *d, const struct raft_snapshot *s,
		      uint64_t chain)
{
	const struct raft_entry *at = disk_entry(d, s->meta.index);
	size_t drop;

	set_snapshot(d, &s->meta, s->data, s->len, chain);
	if (at == NULL || at->term != s->meta.term) {
		truncate_from(d, d->base);
		d->base = s->meta.index + 1;
		d->base_chain = chain;
	} else {
		drop = (size_t)(s->meta.index + 1 - d->base);
		for (size_t i = 0; i < drop; i++)
			free(d->log[i].data);
		memmove(d->log, d->log + drop, (d->n - drop) * sizeof(*d->log));
		memmove(d->chain, d->chain + drop,
			(d->n - drop) * sizeof(*d->chain));
		d->n -= drop;
		d->base = s->meta.index + 1;
		d->base_chain = chain;
	}
}

/* A snapshot the simulator took: saved whole, the log is kept. */
void
disk_put_snapshot(struct sim_disk *d, const struct raft_snapshot_meta *meta,
		  const uint8_t *data, size_t len, uint64_t chain)
{
	set_snapshot(d, meta, data, len, chain);
	d->synced_hard = d->hard;
	d->synced_last = disk_last(d);
	d->unsynced = false;
}

/* Releases saved entries below @first (after raft_snapshot). */
void
disk_compact(struct sim_disk *d, uint64_t first)
{
	size_t drop;

	if (first <= d->base)
		return;
	if (first > disk_last(d) + 1)
		first = disk_last(d) + 1;
	drop = (size_t)(first - d->base);
	if (drop > d->n)
		drop = d->n;
	if (drop == 0)
		return;
	d->base_chain = d->chain[drop - 1];
	for (size_t i = 0; i < drop; i++)
		free(d->log[i].data);
	memmove(d->log, d->log + drop, (d->n - drop) * sizeof(*d->log));
	memmove(d->chain, d->chain + drop, (d->n - drop) * sizeof(*d->chain));
	d->n -= drop;
	d->base += drop;
}

/* Ends a ready's writes: @sync is its must_sync. */
void
disk_end_ready(struct sim_disk *d, bool wrote, bool sync)
{
	if (sync) {
		d->synced_hard = d->hard;
		d->synced_last = disk_last(d);
		d->unsynced = false;
	} else if (wrote) {
		d->unsynced = true;
	}
}

/* A crash that loses unsynced writes. Returns whether anything was lost. */
bool
disk_lose_unsynced(struct sim_disk *d)
{
	bool lost = d->unsynced;

	if (!d->unsynced)
		return false;
	d->hard = d->synced_hard;
	if (d->synced_last + 1 >= d->base)
		truncate_from(d, d->synced_last + 1);
	d->unsynced = false;
	return lost;
}

void
disk_init(struct sim_disk *d)
{
	memset(d, 0, sizeof(*d));
	d->base = 1;
}

void
disk_release(struct sim_disk *d)
{
	truncate_from(d, d->base);
	free(d->log);
	free(d->chain);
	free(d->snap_data);
	disk_init(d);
}

/*
 * raft_membership.c - configurations (chapter 4).
 *
 * A server uses the latest configuration in its log, committed or not
 * (§4.1), so every configuration entry takes effect when it is appended and
 * is undone when a conflicting leader truncates it away. The core keeps one
 * mark per configuration entry still in its log, plus the configuration as
 * of the compaction point, to answer "which configuration held at index i"
 * for snapshots and to roll back on truncation.
 *
 * A configuration entry's payload is either a single change (op 1..4, then
 * the id as 8 bytes little-endian) or, for the bootstrap entry at index 1, a
 * whole configuration (op 0, a 4-byte count, then id and suffrage per
 * server). A payload that does not apply cleanly to the configuration before
 * it changes nothing; that keeps every server's answer a function of the log
 * prefix alone, so they all agree.
 */
#include "raft.h"

#include <string.h>

#include "buf.h"
#include "err.h"
#include "mem.h"
#include "raft_internal.h"

#define CONF_OP_FULL 0

int
raft_conf_find(const struct raft_conf *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return (int)i;
	return -1;
}

uint32_t
raft_conf_voters(const struct raft_conf *c)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < c->n; i++)
		n += c->servers[i].suffrage == RAFT_VOTER;
	return n;
}

int
raft_conf_apply(struct raft_conf *c, enum raft_conf_op op, uint64_t id)
{
	int i = raft_conf_find(c, id);

	if (id == RAFT_NONE)
		return DSC_EINVAL;
	switch (op) {
	case RAFT_CONF_ADD_LEARNER:
		if (i >= 0 || c->n >= RAFT_MAX_SERVERS)
			return DSC_EINVAL;
		c->servers[c->n].id = id;
		c->servers[c->n].suffrage = RAFT_LEARNER;
		c->n++;
		return 0;
	case RAFT_CONF_PROMOTE:
		if (i < 0 || c->servers[i].suffrage != RAFT_LEARNER)
			return DSC_EINVAL;
		c->servers[i].suffrage = RAFT_VOTER;
		return 0;
	case RAFT_CONF_DEMOTE:
		if (i < 0 || c->servers[i].suffrage != RAFT_VOTER)
			return DSC_EINVAL;
		c->servers[i].suffrage = RAFT_LEARNER;
		return 0;
	case RAFT_CONF_REMOVE:
		if (i < 0)
			return DSC_EINVAL;
		memmove(&c->servers[i], &c->servers[i + 1],
			(c->n - (uint32_t)i - 1) * sizeof(c->servers[0]));
		c->n--;
		return 0;
	}
	return DSC_EINVAL;
}

void
raft_conf_encode(uint8_t out[RAFT_CONF_CHANGE_SIZE], enum raft_conf_op op,
		 uint64_t id)
{
	out[0] = (uint8_t)op;
	for (int i = 0; i < 8; i++)
		out[1 + i] = (uint8_t)(id >> (8 * i));
}

int
raft_conf_decode(const uint8_t *data, size_t len, enum raft_conf_op *op,
		 uint64_t *id)
{
	if (len != RAFT_CONF_CHANGE_SIZE || data[0] < RAFT_CONF_ADD_LEARNER ||
	    data[0] > RAFT_CONF_DEMOTE)
		return DSC_EINVAL;
	*op = (enum raft_conf_op)data[0];
	*id = get_u64le(data + 1);
	return *id == RAFT_NONE ? DSC_EINVAL : 0;
}

int
raft_conf_full_encode(const struct raft_conf *c, uint8_t *out, size_t cap,
		      size_t *len)
{
	size_t need = 5 + (size_t)c->n * 9;

	if (cap < need)
		return DSC_ETOOBIG;
	out[0] = CONF_OP_FULL;
	for (int i = 0; i < 4; i++)
		out[1 + i] = (uint8_t)(c->n >> (8 * i));
	for (uint32_t s = 0; s < c->n; s++) {
		uint8_t *p = out + 5 + s * 9;

		for (int i = 0; i < 8; i++)
			p[i] = (uint8_t)(c->servers[s].id >> (8 * i));
		p[8] = c->servers[s].suffrage;
	}
	*len = need;
	return 0;
}

/* Applies entry @e's change to @c; @c is unchanged unless all of it is valid. */
int
raft_conf_entry_decode(const struct raft_entry *e, struct raft_conf *c)
{
	struct raft_conf next;
	enum raft_conf_op op;
	uint64_t id;
	uint32_t n;

	if (e->len >= 5 && e->data[0] == CONF_OP_FULL) {
		n = get_u32le(e->data + 1);
		if (n > RAFT_MAX_SERVERS || e->len != 5 + (size_t)n * 9)
			return DSC_EINVAL;
		memset(&next, 0, sizeof(next));
		for (uint32_t s = 0; s < n; s++) {
			const uint8_t *p = e->data + 5 + s * 9;

			id = get_u64le(p);
			if (id == RAFT_NONE || p[8] > RAFT_LEARNER ||
			    raft_conf_find(&next, id) >= 0)
				return DSC_EINVAL;
			next.servers[next.n].id = id;
			next.servers[next.n].suffrage = p[8];
			next.n++;
		}
		*c = next;
		return 0;
	}
	if (raft_conf_decode(e->data, e->len, &op, &id) != 0)
		return DSC_EINVAL;
	next = *c;
	if (raft_conf_apply(&next, op, id) != 0)
		return DSC_EINVAL;
	*c = next;
	return 0;
}

int
raft_marks_reserve(struct raft *r, size_t extra)
{
	struct conf_mark *p;
	size_t cap;

	if (r->n_marks + extra <= r->cap_marks)
		return 0;
	cap = r->cap_marks != 0 ? r->cap_marks : 4;
	while (cap < r->n_marks + extra)
		cap *= 2;
	p = dsc_reallocarray(r->marks, cap, sizeof(*p));
	if (p == NULL)
		return DSC_ENOMEM;
	r->marks = p;
	r->cap_marks = cap;
	return 0;
}

/*
 * Reserves room first, so the caller can do this before touching the log;
 * a second call for the same entries then cannot fail.
 */
int
raft_marks_append(struct raft *r, const struct raft_entry *ents, size_t n)
{
	size_t confs = 0;

	for (size_t i = 0; i < n; i++)
		confs += ents[i].type == RAFT_ENTRY_CONF;
	if (raft_marks_reserve(r, confs) != 0)
		return DSC_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (ents[i].type != RAFT_ENTRY_CONF)
			continue;
		(void)raft_conf_entry_decode(&ents[i], &r->conf);
		r->marks[r->n_marks].index = ents[i].index;
		r->marks[r->n_marks].conf = r->conf;
		r->n_marks++;
	}
	return 0;
}

void
raft_marks_truncate(struct raft *r, uint64_t after)
{
	while (r->n_marks > 0 && r->marks[r->n_marks - 1].index > after)
		r->n_marks--;
	r->conf = r->n_marks > 0 ? r->marks[r->n_marks - 1].conf
				 : r->base_conf;
}

void
raft_conf_at(const struct raft *r, uint64_t index, struct raft_conf *c)
{
	*c = r->base_conf;
	for (size_t i = 0; i < r->n_marks && r->marks[i].index <= index; i++)
		*c = r->marks[i].conf;
}

void
raft_marks_compact(struct raft *r, uint64_t upto)
{
	size_t drop = 0;

	raft_conf_at(r, upto, &r->base_conf);
	while (drop < r->n_marks && r->marks[drop].index <= upto)
		drop++;
	if (drop == 0)
		return;
	memmove(r->marks, r->marks + drop,
		(r->n_marks - drop) * sizeof(*r->marks));
	r->n_marks -= drop;
}

uint64_t
raft_conf_last_index(const struct raft *r)
{
	return r->n_marks > 0 ? r->marks[r->n_marks - 1].index : 0;
}

void
raft_marks_release(struct raft *r)
{
	dsc_free(r->marks);
	r->marks = NULL;
	r->n_marks = r->cap_marks = 0;
}

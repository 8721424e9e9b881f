/*
 * raft_log.c - the core's in-memory log: lookup, append with conflict
 * truncation, compaction and restore. Pure: no I/O, no clock.
 */
#include "raft_log.h"

#include <string.h>

#include "err.h"
#include "mem.h"

void
rlog_init(struct raft_log *l)
{
	memset(l, 0, sizeof(*l));
}

static void
free_range(struct raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dsc_free(e[i].data);
}

void
rlog_release(struct raft_log *l)
{
	free_range(l->ents, l->n);
	dsc_free(l->ents);
	rlog_init(l);
}

bool
rlog_term(const struct raft_log *l, uint64_t i, uint64_t *term)
{
	if (i == l->offset) {
		*term = l->offset_term;
		return true;
	}
	if (i < l->offset || i > rlog_last_index(l))
		return false;
	*term = l->ents[i - l->offset - 1].term;
	return true;
}

uint64_t
rlog_term_or0(const struct raft_log *l, uint64_t i)
{
	uint64_t t;

	return rlog_term(l, i, &t) ? t : 0;
}

uint64_t
rlog_last_term(const struct raft_log *l)
{
	return rlog_term_or0(l, rlog_last_index(l));
}

bool
rlog_match_term(const struct raft_log *l, uint64_t i, uint64_t term)
{
	uint64_t t;

	return rlog_term(l, i, &t) && t == term;
}

bool
rlog_is_up_to_date(const struct raft_log *l, uint64_t index, uint64_t term)
{
	uint64_t last_term = rlog_last_term(l);

	return term > last_term ||
	       (term == last_term && index >= rlog_last_index(l));
}

const struct raft_entry *
rlog_entry(const struct raft_log *l, uint64_t i)
{
	return &l->ents[i - l->offset - 1];
}

static int
reserve(struct raft_log *l, size_t need)
{
	struct raft_entry *p;
	size_t cap;

	if (need <= l->cap)
		return 0;
	cap = l->cap != 0 ? l->cap : 64;
	while (cap < need)
		cap *= 2;
	p = dsc_reallocarray(l->ents, cap, sizeof(*p));
	if (p == NULL)
		return DSC_ENOMEM;
	l->ents = p;
	l->cap = cap;
	return 0;
}

/* Drops entries after @after; the caller ensures offset <= @after <= last. */
static void
truncate_after(struct raft_log *l, uint64_t after)
{
	size_t keep = (size_t)(after - l->offset);

	if (keep >= l->n)
		return;
	free_range(l->ents + keep, l->n - keep);
	l->n = keep;
	if (l->stable > after)
		l->stable = after;
	l->epoch++;
}

int
rlog_append_after(struct raft_log *l, uint64_t after,
		  const struct raft_entry *ents, size_t n)
{
	uint8_t **copies;
	size_t keep;

	if (n == 0)
		return 0;
	keep = (size_t)(after - l->offset);
	copies = dsc_calloc(n, sizeof(*copies));
	if (copies == NULL)
		return DSC_ENOMEM;
	if (reserve(l, keep + n) != 0)
		goto nomem;
	for (size_t i = 0; i < n; i++) {
		if (ents[i].len == 0)
			continue;
		copies[i] = dsc_malloc(ents[i].len);
		if (copies[i] == NULL)
			goto nomem;
		memcpy(copies[i], ents[i].data, ents[i].len);
	}
	truncate_after(l, after);
	for (size_t i = 0; i < n; i++) {
		l->ents[keep + i] = ents[i];
		l->ents[keep + i].data = copies[i];
	}
	l->n = keep + n;
	dsc_free(copies);
	return 0;
nomem:
	for (size_t i = 0; i < n; i++)
		dsc_free(copies[i]);
	dsc_free(copies);
	return DSC_ENOMEM;
}

int
rlog_append_one(struct raft_log *l, uint64_t term, uint8_t type,
		const void *data, size_t len)
{
	struct raft_entry e = {
		.term = term,
		.index = rlog_last_index(l) + 1,
		.type = type,
		.len = (uint32_t)len,
		.data = (uint8_t *)(uintptr_t)data,
	};

	return rlog_append_after(l, rlog_last_index(l), &e, 1);
}

uint64_t
rlog_find_conflict(const struct raft_log *l, const struct raft_entry *ents,
		   size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!rlog_match_term(l, ents[i].index, ents[i].term))
			return ents[i].index;
	return 0;
}

uint64_t
rlog_find_conflict_by_term(const struct raft_log *l, uint64_t index,
			   uint64_t term)
{
	uint64_t t;

	if (index > rlog_last_index(l))
		index = rlog_last_index(l);
	for (; index > l->offset; index--) {
		if (rlog_term(l, index, &t) && t <= term)
			break;
	}
	return index;
}

void
rlog_compact(struct raft_log *l, uint64_t i)
{
	size_t drop;

	if (i <= l->offset || i > rlog_last_index(l))
		return;
	drop = (size_t)(i - l->offset);
	l->offset_term = l->ents[drop - 1].term;
	free_range(l->ents, drop);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
	l->n -= drop;
	l->offset = i;
	l->epoch++;
}

void
rlog_restore(struct raft_log *l, uint64_t index, uint64_t term)
{
	free_range(l->ents, l->n);
	l->n = 0;
	l->offset = index;
	l->offset_term = term;
	l->committed = index;
	l->stable = index;
	l->epoch++;
}

size_t
rlog_count_within(const struct raft_log *l, uint64_t lo, size_t max_bytes)
{
	uint64_t last = rlog_last_index(l);
	size_t n = 0, bytes = 0;

	for (uint64_t i = lo; i <= last && n < RAFT_MAX_MSG_ENTRIES; i++) {
		bytes += rlog_entry(l, i)->len + 32;
		if (n > 0 && bytes > max_bytes)
			break;
		n++;
	}
	return n;
}

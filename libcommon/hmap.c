/*
 * hmap.c - the open-addressing string map of hmap.h.
 *
 * One allocation holds both arrays: cap item pointers, then cap 32-bit
 * hashes. A slot is empty when its item is NULL. Lookups compare the cached
 * hash before the key, so a probe rarely touches an item. Deletion shifts
 * the following cluster back (Knuth 6.4, Algorithm R), so no slot is ever
 * "deleted but occupied".
 */
#include "hmap.h"

#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "mem.h"

#define HMAP_MIN_CAP 8

uint32_t
hmap_hash(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (*p != '\0') {
		h ^= *p++;
		h *= 0x100000001b3ULL;
	}
	/* murmur3's fmix64: FNV's low bits alone cluster on similar keys. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

void
hmap_init(struct hmap *m, hmap_key_fn *key)
{
	m->items = NULL;
	m->hashes = NULL;
	m->cap = 0;
	m->n = 0;
	m->key = key;
}

void
hmap_release(struct hmap *m)
{
	dsc_free(m->items);
	hmap_init(m, m->key);
}

/*
 * The slot holding @key, or the empty slot where it would go; @found says
 * which. The table must have at least one empty slot (load <= 3/4).
 */
static size_t
probe(const struct hmap *m, const char *key, uint32_t h, bool *found)
{
	size_t mask = m->cap - 1, i = h & mask;

	for (;; i = (i + 1) & mask) {
		if (m->items[i] == NULL) {
			*found = false;
			return i;
		}
		if (m->hashes[i] == h &&
		    strcmp(m->key(m->items[i]), key) == 0) {
			*found = true;
			return i;
		}
	}
}

void *
hmap_get(const struct hmap *m, const char *key)
{
	bool found;
	size_t i;

	if (m->n == 0)
		return NULL;
	i = probe(m, key, hmap_hash(key), &found);
	return found ? m->items[i] : NULL;
}

static int
resize(struct hmap *m, size_t cap)
{
	void **items;
	uint32_t *hashes;
	size_t mask = cap - 1;

	items = dsc_calloc(cap, sizeof(*items) + sizeof(*hashes));
	if (items == NULL)
		return DSC_ENOMEM;
	hashes = (uint32_t *)(items + cap);
	for (size_t i = 0; i < m->cap; i++) {
		size_t j;

		if (m->items[i] == NULL)
			continue;
		for (j = m->hashes[i] & mask; items[j] != NULL;
		     j = (j + 1) & mask)
			;
		items[j] = m->items[i];
		hashes[j] = m->hashes[i];
	}
	dsc_free(m->items);
	m->items = items;
	m->hashes = hashes;
	m->cap = cap;
	return 0;
}

int
hmap_reserve(struct hmap *m, size_t extra)
{
	size_t need, cap;

	if (extra > SIZE_MAX / 8 - m->n)
		return DSC_ENOMEM;
	need = m->n + extra;
	if (need * 4 <= m->cap * 3 && m->cap != 0)
		return 0;
	cap = m->cap != 0 ? m->cap : HMAP_MIN_CAP;
	while (need * 4 > cap * 3)
		cap *= 2;
	return resize(m, cap);
}

int
hmap_put(struct hmap *m, void *item, void **old)
{
	const char *key = m->key(item);
	uint32_t h = hmap_hash(key);
	bool found = false;
	size_t i = 0;
	int rc;

	if (m->n != 0)
		i = probe(m, key, h, &found);
	if (found) {
		if (old != NULL)
			*old = m->items[i];
		m->items[i] = item;
		return 0;
	}
	if ((rc = hmap_reserve(m, 1)) != 0)
		return rc;
	i = probe(m, key, h, &found);
	m->items[i] = item;
	m->hashes[i] = h;
	m->n++;
	if (old != NULL)
		*old = NULL;
	return 0;
}

void *
hmap_del(struct hmap *m, const char *key)
{
	size_t mask, i, j;
	bool found;
	void *item;

	if (m->n == 0)
		return NULL;
	i = probe(m, key, hmap_hash(key), &found);
	if (!found)
		return NULL;
	item = m->items[i];
	mask = m->cap - 1;
	/* Shift back every later item of the cluster whose home allows it. */
	for (j = (i + 1) & mask; m->items[j] != NULL; j = (j + 1) & mask) {
		size_t home = m->hashes[j] & mask;
		bool movable;

		if (i <= j)
			movable = home <= i || home > j;
		else
			movable = home <= i && home > j;
		if (movable) {
			m->items[i] = m->items[j];
			m->hashes[i] = m->hashes[j];
			i = j;
		}
	}
	m->items[i] = NULL;
	m->n--;
	return item;
}

void *
hmap_take(struct hmap *m, size_t *it)
{
	void *item = m->items[*it - 1];

	(*it)--;
	return hmap_del(m, m->key(item));
}

void *
hmap_next(const struct hmap *m, size_t *it)
{
	while (*it < m->cap) {
		void *item = m->items[(*it)++];

		if (item != NULL)
			return item;
	}
	return NULL;
}

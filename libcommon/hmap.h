/*
 * hmap.h - an open-addressing hash map from strings to items that carry
 * their own key.
 *
 * The map stores item pointers only. A key function given at init returns
 * an item's key, so the key lives inside the item (one allocation, no copy)
 * and stays right when the item's contents change, as long as the key itself
 * does not. Linear probing with backward-shift deletion: no deleted markers,
 * so a map that churns never degrades. Load is kept at or below 3/4.
 *
 * The hash is FNV-1a with a 64-bit finalizer and no seed: the same on every
 * platform and run, so pure modules stay deterministic. It is not resistant
 * to chosen-key flooding; keep keys to authenticated writers.
 *
 * Iteration order depends on insertion history and capacity: callers that
 * need a deterministic order sort what they collect. Items are never owned
 * by the map: hmap_release() frees the table only.
 *
 * Errors: functions that may allocate return 0 or DSC_ENOMEM; on failure
 * the map is unchanged. After hmap_reserve(m, k) succeeds, the next k
 * insertions of new keys cannot fail (that is how callers make a multi-step
 * update all-or-nothing: reserve everything first, then commit).
 */
#ifndef DSC_HMAP_H
#define DSC_HMAP_H

#include <stddef.h>
#include <stdint.h>

/* Returns the NUL-terminated key of @item; must not change while mapped. */
typedef const char *hmap_key_fn(const void *item);

struct hmap {
	void **items;		/* cap slots; NULL = empty */
	uint32_t *hashes;	/* cap cached hashes, same block as items */
	size_t cap;		/* 0 or a power of two */
	size_t n;
	hmap_key_fn *key;
};

#define HMAP_INIT(keyfn) { NULL, NULL, 0, 0, (keyfn) }

void hmap_init(struct hmap *m, hmap_key_fn *key);
/* Frees the table (not the items) and leaves @m empty and reusable. */
void hmap_release(struct hmap *m);

/* The item whose key equals @key, or NULL. */
void *hmap_get(const struct hmap *m, const char *key);

/* Makes room so that @extra more new keys can be inserted without failing. */
int hmap_reserve(struct hmap *m, size_t extra);

/*
 * Inserts @item (not NULL). An item with an equal key is replaced and
 * returned through @old (which may be NULL), else *@old is set to NULL.
 * Fails with DSC_ENOMEM only when a new key needs a bigger table.
 */
int hmap_put(struct hmap *m, void *item, void **old);

/* Removes and returns the item with key @key, or returns NULL. */
void *hmap_del(struct hmap *m, const char *key);

/*
 * Iteration: set *@it to 0, then call until NULL. The map must not change
 * while iterating.
 */
void *hmap_next(const struct hmap *m, size_t *it);

/*
 * Removes the item hmap_next() returned last and rewinds *@it, so that a
 * loop deleting as it goes skips no item. An item that deletion moves back
 * across the end of the table may be returned a second time.
 */
void *hmap_take(struct hmap *m, size_t *it);

/* The hash used for @key (exposed for tests). */
uint32_t hmap_hash(const char *key);

#endif

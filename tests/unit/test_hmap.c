/*
 * test_hmap.c - the string map: put/get/replace/delete, growth, deletion
 * inside clusters that wrap around the table's end, reserve-then-insert never
 * failing, allocation failures leaving the map unchanged.
 */
#include "hmap.h"

#include <stdio.h>

#include "err.h"
#include "mem.h"
#include "prng.h"
#include "t.h"

/* ---- fixture ------------------------------------------------------- */

struct item {
	int val;
	char key[24];
};

static const char *
item_key(const void *p)
{
	return ((const struct item *)p)->key;
}

static struct item *
mk(const char *key, int val)
{
	struct item *it = calloc(1, sizeof(*it));

	snprintf(it->key, sizeof(it->key), "%s", key);
	it->val = val;
	return it;
}

static void
setup(void)
{
	dsc_mem_fail_after(-1);
}

/* Every stored item is findable from its slot and counted once. */
static void
check_sane(const struct hmap *m)
{
	size_t it = 0, n = 0;
	struct item *x;

	while ((x = hmap_next(m, &it)) != NULL) {
		T_ASSERT(hmap_get(m, x->key) == x);
		n++;
	}
	T_EQ(n, m->n);
	T_ASSERT(m->n * 4 <= m->cap * 3 || m->cap == 0);
}

static void
free_all(struct hmap *m)
{
	size_t it = 0;
	void *x;

	while ((x = hmap_next(m, &it)) != NULL)
		free(x);
	hmap_release(m);
}

/* ---- basics -------------------------------------------------------- */

TEST(empty_map_finds_nothing)
{
	struct hmap m = HMAP_INIT(item_key);
	size_t it = 0;

	setup();
	T_ASSERT(hmap_get(&m, "a") == NULL);
	T_ASSERT(hmap_del(&m, "a") == NULL);
	T_ASSERT(hmap_next(&m, &it) == NULL);
	hmap_release(&m);
	hmap_release(&m);
}

TEST(put_get_replace_del)
{
	struct hmap m;
	struct item *a = mk("a", 1), *a2 = mk("a", 2), *b = mk("b", 3);
	void *old = a;

	setup();
	hmap_init(&m, item_key);
	T_EQ(hmap_put(&m, a, &old), 0);
	T_ASSERT(old == NULL);
	T_EQ(hmap_put(&m, b, NULL), 0);
	T_ASSERT(hmap_get(&m, "a") == a);
	T_EQ(hmap_put(&m, a2, &old), 0);
	T_ASSERT(old == a);
	T_EQ(m.n, 2);
	T_ASSERT(hmap_get(&m, "a") == a2);
	T_ASSERT(hmap_del(&m, "a") == a2);
	T_ASSERT(hmap_get(&m, "a") == NULL);
	T_ASSERT(hmap_get(&m, "b") == b);
	check_sane(&m);
	free(a);
	free(a2);
	free_all(&m);
}

TEST(empty_key_is_a_key)
{
	struct hmap m = HMAP_INIT(item_key);
	struct item *e = mk("", 7);

	setup();
	T_EQ(hmap_put(&m, e, NULL), 0);
	T_ASSERT(hmap_get(&m, "") == e);
	T_ASSERT(hmap_get(&m, "x") == NULL);
	free_all(&m);
}

/* ---- growth and churn ---------------------------------------------- */

TEST(many_keys_grow_and_shrink)
{
	struct hmap m = HMAP_INIT(item_key);
	char k[24];

	setup();
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "key-%d", i);
		T_EQ(hmap_put(&m, mk(k, i), NULL), 0);
	}
	T_EQ(m.n, 5000);
	check_sane(&m);
	for (int i = 0; i < 5000; i += 2) {
		snprintf(k, sizeof(k), "key-%d", i);
		free(hmap_del(&m, k));
	}
	T_EQ(m.n, 2500);
	for (int i = 0; i < 5000; i++) {
		struct item *x;

		snprintf(k, sizeof(k), "key-%d", i);
		x = hmap_get(&m, k);
		if (i % 2 == 0)
			T_ASSERT(x == NULL);
		else
			T_ASSERT(x != NULL && x->val == i);
	}
	check_sane(&m);
	free_all(&m);
}

/*
 * A small table churned at random against a reference array exercises
 * deletion in clusters that wrap around the end of the table.
 */
TEST(random_churn_matches_reference)
{
	struct hmap m = HMAP_INIT(item_key);
	struct item *ref[64] = { 0 };
	struct prng r;
	char k[24];

	setup();
	prng_seed(&r, 42);
	for (int step = 0; step < 20000; step++) {
		int i = (int)prng_below(&r, 64);

		snprintf(k, sizeof(k), "%d", i);
		if (ref[i] == NULL) {
			ref[i] = mk(k, i);
			T_EQ(hmap_put(&m, ref[i], NULL), 0);
		} else {
			T_ASSERT(hmap_del(&m, k) == ref[i]);
			free(ref[i]);
			ref[i] = NULL;
		}
		if (step % 97 == 0)
			check_sane(&m);
	}
	for (int i = 0; i < 64; i++) {
		snprintf(k, sizeof(k), "%d", i);
		T_ASSERT(hmap_get(&m, k) == ref[i]);
	}
	free_all(&m);
}

/*
 * Deleting while iterating: every item is seen, the chosen ones go, the
 * rest stay. Small tables with many keys make clusters wrap the end.
 */
TEST(take_while_iterating_skips_nothing)
{
	struct prng r;
	char k[24];

	setup();
	prng_seed(&r, 9);
	for (int round = 0; round < 200; round++) {
		struct hmap m = HMAP_INIT(item_key);
		int n = (int)prng_below(&r, 40) + 1, seen[40] = { 0 };
		struct item *x;
		size_t it = 0;

		for (int i = 0; i < n; i++) {
			snprintf(k, sizeof(k), "%d.%d", round, i);
			T_EQ(hmap_put(&m, mk(k, i), NULL), 0);
		}
		while ((x = hmap_next(&m, &it)) != NULL) {
			seen[x->val]++;
			if (x->val % 3 == 0)
				free(hmap_take(&m, &it));
		}
		for (int i = 0; i < n; i++) {
			T_ASSERT(seen[i] >= 1);
			snprintf(k, sizeof(k), "%d.%d", round, i);
			T_EQ(hmap_get(&m, k) != NULL, i % 3 != 0);
		}
		check_sane(&m);
		free_all(&m);
	}
}

/* ---- reserve and allocation failure -------------------------------- */

TEST(reserve_then_put_never_allocates)
{
	struct hmap m = HMAP_INIT(item_key);
	char k[24];

	setup();
	T_EQ(hmap_reserve(&m, 100), 0);
	dsc_mem_fail_after(0);
	for (int i = 0; i < 100; i++) {
		snprintf(k, sizeof(k), "r%d", i);
		T_EQ(hmap_put(&m, mk(k, i), NULL), 0);
	}
	dsc_mem_fail_after(-1);
	check_sane(&m);
	free_all(&m);
}

TEST(failed_growth_leaves_map_unchanged)
{
	struct hmap m = HMAP_INIT(item_key);
	struct item *x;
	char k[24];
	int i;

	setup();
	for (i = 0; i < 6; i++) {
		snprintf(k, sizeof(k), "f%d", i);
		T_EQ(hmap_put(&m, mk(k, i), NULL), 0);
	}
	/* The 7th key passes 3/4 of 8 slots and needs a new table. */
	x = mk("f6", 6);
	dsc_mem_fail_after(0);
	T_EQ(hmap_put(&m, x, NULL), DSC_ENOMEM);
	dsc_mem_fail_after(-1);
	T_EQ(m.n, 6);
	T_ASSERT(hmap_get(&m, "f6") == NULL);
	free(x);
	check_sane(&m);
	/* Replacing an existing key never needs memory. */
	dsc_mem_fail_after(0);
	T_EQ(hmap_put(&m, mk("f0", 9), (void **)&x), 0);
	dsc_mem_fail_after(-1);
	free(x);
	T_EQ(((struct item *)hmap_get(&m, "f0"))->val, 9);
	free_all(&m);
}

TEST(hash_is_stable)
{
	/* Pinned so a change of hash (and of on-disk expectations) is seen. */
	T_EQ(hmap_hash(""), hmap_hash(""));
	T_NE(hmap_hash("web"), hmap_hash("Web"));
	T_NE(hmap_hash("a"), hmap_hash("b"));
}

T_MAIN()

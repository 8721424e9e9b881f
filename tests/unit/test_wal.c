/*
 * test_wal.c - the WAL and snapshot files: round trips, suffix replacement,
 * rolling and release, the damaged-file table (TESTING.md 5 L0, modelled on
 * canonical/raft's test_uv_load.c), ENOSPC, fsync failure and allocation
 * failure.
 *
 * Every test works in its own directory under $TMPDIR (or /tmp) and removes
 * it. A model of the log the test saved (term and size per index) lets each
 * check compare what a reopen returns entry by entry, data included.
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"
#include "mem.h"
#include "prng.h"
#include "raft.h"
#include "snap.h"
#include "t.h"
#include "wal_internal.h"

/* ---- fixture ----------------------------------------------------------- */

/* snprintf into an array, failing the test if it does not fit. */
#define PATHF(buf, ...)                                                        \
	T_ASSERT(snprintf((buf), sizeof(buf), __VA_ARGS__) <                   \
	    (int)sizeof(buf))

#define MAX_INDEX 4096
#define MAX_BATCH 256
#define SMALL_SEG 4096
/* Big enough never to roll in the tests that use it, small to read. */
#define MED_SEG ((size_t)1 << 20)

/* The log as the test saved it: what a reopen must give back. */
struct model_log {
	uint64_t term[MAX_INDEX + 1];
	uint32_t size[MAX_INDEX + 1];
	uint64_t last;
};

static struct model_log model;

static char dir[512];
static struct wal *w;
static struct wal_loaded ld;
static struct dsc_err err;
static struct wal_options opts;

static void
rm_tree(const char *path)
{
	struct dirent *de;
	char sub[1024];
	struct stat st;
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			PATHF(sub, "%s/%s", path, de->d_name);
			rm_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

/* A tmpfs the current test mounted, unmounted by teardown. */
static char mounted[600];

static void
teardown(void)
{
	wal_close(w);
	w = NULL;
	wal_loaded_release(&ld);
	dsc_mem_fail_after(-1);
	if (mounted[0] != '\0') {
		umount(mounted);
		PATHF(dir, "%s", mounted);
		*strrchr(dir, '/') = '\0';
		strcat(dir, "/data");
		mounted[0] = '\0';
	}
	if (dir[0] != '\0') {
		/* The parent mkdtemp made; dir is its "data" child. */
		char *slash = strrchr(dir, '/');

		*slash = '\0';
		rm_tree(dir);
		dir[0] = '\0';
	}
}

/* Where setup() makes directories; NULL for $TMPDIR or /tmp. */
static const char *setup_base;

/* A fresh, not yet existing data dir; tears down the previous test. */
static void
setup(size_t segment_size)
{
	const char *tmp = setup_base != NULL ? setup_base : getenv("TMPDIR");

	teardown();
	memset(&model, 0, sizeof(model));
	memset(&opts, 0, sizeof(opts));
	opts.segment_size = segment_size;
	dsc_err_clear(&err);
	PATHF(dir, "%s/dsc-wal-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	T_ASSERT(mkdtemp(dir) != NULL);
	strcat(dir, "/data");
}

static int
reopen(void)
{
	wal_close(w);
	w = NULL;
	wal_loaded_release(&ld);
	dsc_err_clear(&err);
	return wal_open(dir, &opts, &w, &ld, &err);
}

#define OPEN() T_EQ(reopen(), 0)
#define OPEN_ERROR(code, substr)                                               \
	do {                                                                   \
		T_EQ(reopen(), (code));                                        \
		T_ASSERT(w == NULL);                                           \
		if (strstr(err.msg, (substr)) == NULL)                         \
			T_FAIL("message \"%s\" lacks \"%s\"", err.msg,         \
			    (substr));                                         \
	} while (0)

/* ---- entries ----------------------------------------------------------- */

static uint8_t pool[MAX_BATCH][8192];

static void
fill_data(uint8_t *p, uint64_t index, uint64_t term, uint32_t size)
{
	for (uint32_t i = 0; i < size; i++)
		p[i] = (uint8_t)(index * 31 + term * 7 + i);
}

/* Saves entries @first..@first+@n-1 of @term, @size bytes each, with a hard
 * state of that term; updates the model on success. */
static int
save_n(uint64_t first, size_t n, uint64_t term, uint32_t size, bool sync)
{
	static struct raft_entry e[MAX_BATCH];
	struct raft_ready rd = { 0 };
	int rv;

	T_ASSERT(n <= MAX_BATCH && size <= sizeof(pool[0]));
	for (size_t i = 0; i < n; i++) {
		e[i] = (struct raft_entry){ .term = term, .index = first + i,
			.type = RAFT_ENTRY_NORMAL, .len = size,
			.data = size > 0 ? pool[i] : NULL };
		fill_data(pool[i], first + i, term, size);
	}
	rd.hard_changed = true;
	rd.hard = (struct raft_hard){ term, 1, first > 1 ? first - 1 : 0 };
	rd.entries = e;
	rd.n_entries = n;
	rd.must_sync = sync;
	rv = wal_save(w, &rd, &err);
	if (rv == 0 && n > 0) {
		for (size_t i = 0; i < n; i++) {
			model.term[first + i] = term;
			model.size[first + i] = size;
		}
		model.last = first + n - 1;
	}
	return rv;
}

#define SAVE(first, n, term, size) T_EQ(save_n(first, n, term, size, true), 0)

/* The loaded entries are exactly the model's after the snapshot. */
static void
check_log(void)
{
	static uint8_t want[8192];
	uint64_t from = ld.snapshot.meta.index + 1;

	T_EQ(ld.n_entries, model.last >= from ? model.last - from + 1 : 0);
	for (size_t i = 0; i < ld.n_entries; i++) {
		const struct raft_entry *e = &ld.entries[i];

		T_EQ(e->index, from + i);
		T_EQ(e->term, model.term[e->index]);
		T_EQ(e->len, model.size[e->index]);
		fill_data(want, e->index, e->term, e->len);
		if (e->len > 0)
			T_MEMEQ(e->data, want, e->len);
	}
}

static struct raft_snapshot
make_snap(uint64_t index, uint64_t term, size_t len)
{
	static uint8_t data[65536];
	struct raft_snapshot s = { 0 };

	for (size_t i = 0; i < len; i++)
		data[i] = (uint8_t)(i * 13 + index);
	s.meta.index = index;
	s.meta.term = term;
	s.meta.conf.n = 3;
	for (uint32_t i = 0; i < 3; i++)
		s.meta.conf.servers[i] = (struct raft_server){ i + 1,
			i == 2 ? RAFT_LEARNER : RAFT_VOTER };
	s.len = len;
	s.data = len > 0 ? data : NULL;
	return s;
}

static void
check_snap(uint64_t index, uint64_t term, size_t len)
{
	struct raft_snapshot want = make_snap(index, term, len);

	T_EQ(ld.snapshot.meta.index, index);
	T_EQ(ld.snapshot.meta.term, term);
	T_EQ(ld.snapshot.meta.conf.n, 3);
	T_EQ(ld.snapshot.meta.conf.servers[2].id, 3);
	T_EQ(ld.snapshot.meta.conf.servers[2].suffrage, RAFT_LEARNER);
	T_EQ(ld.snapshot.len, len);
	if (len > 0)
		T_MEMEQ(ld.snapshot.data, want.data, len);
}

/* ---- files ------------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names in @sub ("wal" or "snap"), sorted, into @names; returns count. */
static size_t
list(const char *sub, char names[][64], size_t max)
{
	char path[1024], *ptr[64];
	char tmp[64][64];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	PATHF(path, "%s/%s", dir, sub);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && n < 64) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(tmp[n], 64, "%s", de->d_name) >= 64)
			continue;
		ptr[n] = tmp[n];
		n++;
	}
	closedir(d);
	qsort(ptr, n, sizeof(ptr[0]), cmp_str);
	for (size_t i = 0; i < n && i < max; i++)
		memcpy(names[i], ptr[i], 64);
	return n;
}

static size_t
segments(char names[][64], size_t max)
{
	char all[64][64];
	size_t n = list("wal", all, 64), k = 0;

	for (size_t i = 0; i < n; i++)
		if (strstr(all[i], ".wal") != NULL && k < max)
			memcpy(names[k++], all[i], 64);
	return k;
}

static void
path_of(char *out, size_t size, const char *sub, const char *name)
{
	snprintf(out, size, "%s/%s/%s", dir, sub, name);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *p;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0)
		T_FAIL("unable to read '%s'", path);
	p = malloc((size_t)st.st_size + 1);
	T_ASSERT(p != NULL);
	T_EQ(pread(fd, p, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void
poke(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY);

	T_ASSERT(fd >= 0);
	T_EQ(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void
flip(const char *path, uint64_t off)
{
	size_t len;
	uint8_t *p = slurp(path, &len), b;

	T_ASSERT(off < len);
	b = p[off] ^ 0x5a;
	free(p);
	poke(path, off, &b, 1);
}

static void
zero_range(const char *path, uint64_t from, uint64_t to)
{
	static const uint8_t z[65536];

	while (from < to) {
		size_t n = to - from < sizeof(z) ? to - from : sizeof(z);

		poke(path, from, z, n);
		from += n;
	}
}

static void
write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	T_ASSERT(fd >= 0);
	T_EQ(write(fd, p, n), (ssize_t)n);
	close(fd);
}

/* A checksum of every file's name and bytes under wal/ and snap/. */
static uint32_t
dir_digest(void)
{
	const char *subs[] = { "wal", "snap" };
	char names[64][64], path[1024];
	uint32_t crc = 0;

	for (size_t s = 0; s < 2; s++) {
		size_t n = list(subs[s], names, 64);

		for (size_t i = 0; i < n; i++) {
			size_t len;
			uint8_t *p;

			path_of(path, sizeof(path), subs[s], names[i]);
			p = slurp(path, &len);
			crc = crc32c(crc, names[i], strlen(names[i]));
			crc = crc32c(crc, p, len);
			free(p);
		}
	}
	return crc;
}

/* Opening must fail with @code naming @substr and change no file. */
#define OPEN_CORRUPT(substr)                                                   \
	do {                                                                   \
		uint32_t d0_ = dir_digest();                                   \
		OPEN_ERROR(DSC_ECORRUPT, (substr));                            \
		T_EQ(dir_digest(), d0_);                                       \
		OPEN_ERROR(DSC_ECORRUPT, (substr));                            \
	} while (0)

static void
last_segment(char *path, size_t size)
{
	char names[64][64];
	size_t n = segments(names, 64);

	T_ASSERT(n > 0);
	path_of(path, size, "wal", names[n - 1]);
}

/* Writes a segment by hand: header, hard state, entries (index, term) of
 * @size bytes each, zeros to @fill bytes. */
static void
craft_segment(uint64_t seq, uint64_t first, const uint64_t (*ents)[2],
    size_t n, size_t fill)
{
	static uint8_t buf[1 << 16];
	struct raft_hard h = { 5, 1, 0 };
	char name[WAL_NAME_LEN + 1], path[1024];
	size_t off = 0;

	memset(buf, 0, sizeof(buf));
	off += wal_enc_segment(buf + off, seq, first);
	off += wal_enc_hard(buf + off, &h);
	for (size_t i = 0; i < n; i++) {
		struct raft_entry e = { .term = ents[i][1],
			.index = ents[i][0], .len = 8, .data = pool[0] };

		fill_data(pool[0], e.index, e.term, 8);
		off += wal_enc_entry(buf + off, &e);
	}
	T_ASSERT(off <= fill && fill <= sizeof(buf));
	wal_seg_name(name, seq, first);
	path_of(path, sizeof(path), "wal", name);
	write_file(path, buf, fill);
}

/* ---- basics ------------------------------------------------------------ */

TEST(empty_dir_creates_layout)
{
	char names[64][64];
	struct stat st;
	char path[1024];

	setup(0);
	OPEN();
	T_EQ(ld.n_entries, 0);
	T_EQ(ld.hard.term, 0);
	T_EQ(ld.snapshot.meta.index, 0);
	T_STREQ(ld.repair, "");
	T_EQ(segments(names, 64), 1);
	T_STREQ(names[0], "0000000000000000-0000000000000001.wal");
	path_of(path, sizeof(path), "wal", names[0]);
	T_EQ(stat(path, &st), 0);
	T_EQ(st.st_size, (off_t)WAL_SEGMENT_SIZE);
	PATHF(path, "%s/snap", dir);
	T_EQ(stat(path, &st), 0);
	T_ASSERT(S_ISDIR(st.st_mode));
	OPEN();
	T_EQ(ld.n_entries, 0);
	T_EQ(segments(names, 64), 1);
	teardown();
}

TEST(round_trip_entries_and_hard_state)
{
	struct raft_ready rd = { 0 };

	setup(0);
	OPEN();
	SAVE(1, 10, 1, 250);
	SAVE(11, 1, 2, 0);
	SAVE(12, 64, 2, 100);
	rd.hard_changed = true;
	rd.hard = (struct raft_hard){ 3, 2, 40 };
	rd.must_sync = true;
	T_EQ(wal_save(w, &rd, &err), 0);
	OPEN();
	check_log();
	T_EQ(ld.hard.term, 3);
	T_EQ(ld.hard.vote, 2);
	T_EQ(ld.hard.commit, 40);
	T_STREQ(ld.repair, "");
	/* And again, after appending to the reopened segment. */
	SAVE(76, 5, 3, 10);
	OPEN();
	check_log();
	teardown();
}

TEST(loaded_state_feeds_raft_new)
{
	struct raft_config c;
	struct raft_state st = { 0 };
	struct raft *r;
	int rv = 0;

	setup(MED_SEG);
	OPEN();
	SAVE(1, 20, 1, 30);
	OPEN();
	st.hard = ld.hard;
	st.entries = ld.entries;
	st.n_entries = ld.n_entries;
	raft_config_init(&c, 1, 42);
	r = raft_new(&c, &st, &rv);
	T_ASSERT(r != NULL);
	T_EQ(raft_last_index(r), 20);
	raft_free(r);
	teardown();
}

TEST(commit_is_clamped_to_the_last_index)
{
	struct raft_ready rd = { 0 };

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	/* A hard state saved ahead of entries a crash then lost. */
	rd.hard_changed = true;
	rd.hard = (struct raft_hard){ 1, 1, 9 };
	rd.must_sync = true;
	T_EQ(wal_save(w, &rd, &err), 0);
	OPEN();
	T_EQ(ld.hard.commit, 5);
	teardown();
}

TEST(hard_state_term_follows_a_newer_snapshot)
{
	struct raft_snapshot s = make_snap(100, 4, 10);
	struct raft_config c;
	struct raft_state st = { 0 };
	struct raft *r;
	int rv = 0;

	setup(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 10);	/* hard state: term 1, vote 1 */
	/* A leader's snapshot of term 4 is in place; the batch with term 4
	 * never made it. */
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	OPEN();
	T_EQ(ld.hard.term, 4);
	T_EQ(ld.hard.vote, 0);
	st.hard = ld.hard;
	st.snapshot = &ld.snapshot;
	st.applied = 100;
	raft_config_init(&c, 1, 42);
	r = raft_new(&c, &st, &rv);
	T_ASSERT(r != NULL);
	T_EQ(raft_last_index(r), 100);
	raft_free(r);
	teardown();
}

TEST(round_trip_snapshot)
{
	struct raft_snapshot s = make_snap(10, 1, 5000);
	struct wal_stat st;
	char names[64][64];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 20, 1, 40);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	SAVE(21, 3, 1, 40);
	OPEN();
	check_snap(10, 1, 5000);
	check_log();
	wal_stat(w, &st);
	T_EQ(st.snapshot_index, 10);
	T_EQ(list("snap", names, 64), 1);
	T_STREQ(names[0],
	    "snap-000000000000000a-0000000000000001.snap");
	teardown();
}

TEST(snapshots_keep_the_newest_two)
{
	char names[64][64];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 40, 1, 8);
	for (uint64_t i = 5; i <= 30; i += 5) {
		struct raft_snapshot s = make_snap(i, 1, 100);

		T_EQ(wal_save_snapshot(w, &s, &err), 0);
	}
	T_EQ(list("snap", names, 64), 2);
	T_STREQ(names[0], "snap-0000000000000019-0000000000000001.snap");
	T_STREQ(names[1], "snap-000000000000001e-0000000000000001.snap");
	{
		struct raft_snapshot old = make_snap(20, 1, 0);

		T_EQ(wal_save_snapshot(w, &old, &err), DSC_EINVAL);
	}
	OPEN();
	check_snap(30, 1, 100);
	check_log();
	teardown();
}

TEST(suffix_replacement)
{
	setup(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 20);
	SAVE(6, 3, 2, 30);	/* a new leader's entries replace 6..10 */
	T_EQ(model.last, 8);
	OPEN();
	check_log();
	T_EQ(ld.n_entries, 8);
	T_EQ(ld.entries[5].term, 2);
	SAVE(9, 4, 2, 5);
	SAVE(3, 1, 3, 5);	/* down to 3 */
	OPEN();
	check_log();
	T_EQ(ld.n_entries, 3);
	teardown();
}

TEST(suffix_replacement_across_segments)
{
	struct wal_stat st;

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 200; i += 10)
		SAVE(i, 10, 1, 100);
	wal_stat(w, &st);
	T_ASSERT(st.n_segments > 3);
	/* Replace from an index that lives in the first segment. */
	SAVE(5, 3, 2, 100);
	OPEN();
	check_log();
	T_EQ(ld.n_entries, 7);
	teardown();
}

TEST(invalid_batches_are_refused)
{
	static struct raft_entry e[2];
	struct raft_ready rd = { 0 };
	struct wal_stat a, b;

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	wal_stat(w, &a);
	T_EQ(save_n(7, 2, 1, 10, true), DSC_EINVAL);	/* gap after 5 */
	T_EQ(save_n(0, 1, 1, 10, true), DSC_EINVAL);	/* index 0 */
	e[0] = (struct raft_entry){ .term = 1, .index = 6 };
	e[1] = (struct raft_entry){ .term = 1, .index = 8 };
	rd.entries = e;
	rd.n_entries = 2;
	T_EQ(wal_save(w, &rd, &err), DSC_EINVAL);	/* not consecutive */
	wal_stat(w, &b);
	T_EQ(b.offset, a.offset);
	OPEN();
	check_log();
	teardown();
}

/* ---- group commit ------------------------------------------------------ */

TEST(one_write_and_one_sync_per_batch)
{
	struct wal_stat a, b;

	setup(MED_SEG);
	OPEN();
	wal_stat(w, &a);
	SAVE(1, 64, 1, 250);
	wal_stat(w, &b);
	T_EQ(b.n_writes - a.n_writes, 1);
	T_EQ(b.n_syncs - a.n_syncs, 1);
	T_EQ(b.durable, b.offset);
	T_EQ(save_n(65, 16, 1, 250, false), 0);	/* must_sync off */
	wal_stat(w, &a);
	T_EQ(a.n_writes - b.n_writes, 1);
	T_EQ(a.n_syncs, b.n_syncs);
	T_ASSERT(a.durable < a.offset);
	teardown();
}

TEST(power_loss_keeps_what_was_synced)
{
	struct wal_stat st;
	char path[1024];
	uint64_t last_synced;

	setup(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 100);
	last_synced = model.last;
	T_EQ(save_n(11, 10, 1, 100, false), 0);
	wal_stat(w, &st);
	T_ASSERT(st.durable < st.offset);
	/* Power loss: what was not synced never reached the disk. */
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	zero_range(path, st.durable, st.offset);
	model.last = last_synced;
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	teardown();
}

TEST(power_loss_mid_record_is_a_torn_tail)
{
	struct wal_stat st;
	char path[1024];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 100);
	T_EQ(save_n(11, 10, 1, 100, false), 0);
	wal_stat(w, &st);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	/* Only the first 7 bytes of the unsynced batch made it. */
	zero_range(path, st.durable + 7, st.offset);
	model.last = 10;
	OPEN();
	check_log();
	T_ASSERT(strstr(ld.repair, "torn tail") != NULL);
	/* Writing goes on from the repaired offset. */
	SAVE(11, 2, 1, 10);
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	teardown();
}

/* ---- rolling and release ----------------------------------------------- */

TEST(many_segments_roll)
{
	char names[64][64];
	struct wal_stat st;
	uint64_t seq, first;

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 700; i += 7)
		SAVE(i, 7, 1 + i / 100, 90);
	wal_stat(w, &st);
	T_ASSERT(st.n_segments > 20);
	OPEN();
	check_log();
	T_EQ(segments(names, 64), st.n_segments);
	for (size_t i = 0; i < st.n_segments; i++) {
		T_ASSERT(wal_seg_parse_name(names[i], &seq, &first));
		T_EQ(seq, i);
	}
	teardown();
}

TEST(record_larger_than_a_segment)
{
	setup(WAL_MIN_SEGMENT_SIZE);
	OPEN();
	SAVE(1, 2, 1, 10);
	SAVE(3, 3, 1, 5000);	/* each record alone exceeds a segment */
	SAVE(6, 1, 1, 10);
	OPEN();
	check_log();
	teardown();
}

TEST(prepare_ahead_makes_the_roll_a_rename)
{
	char names[64][64], path[1024];
	struct stat st;

	setup(SMALL_SEG);
	OPEN();
	T_EQ(wal_prepare(w, &err), 0);
	path_of(path, sizeof(path), "wal", "next.tmp");
	T_EQ(stat(path, &st), 0);
	T_EQ(st.st_size, SMALL_SEG);
	for (uint64_t i = 1; i <= 60; i += 6)
		SAVE(i, 6, 1, 100);
	T_ASSERT(segments(names, 64) >= 2);
	OPEN();	/* a prepared segment left behind is an orphan */
	T_ASSERT(stat(path, &st) != 0);
	check_log();
	teardown();
}

TEST(release_drops_segments_below_the_snapshot)
{
	struct raft_snapshot s = make_snap(300, 1, 200);
	char names[64][64];
	struct wal_stat st;
	size_t before, after;

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 400; i += 8)
		SAVE(i, 8, 1, 60);
	before = segments(names, 64);
	/* Without a snapshot nothing can go. */
	T_EQ(wal_release(w, 1000, &err), 0);
	T_EQ(segments(names, 64), before);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	T_EQ(wal_release(w, 1000, &err), 0);	/* capped at 301 */
	after = segments(names, 64);
	T_ASSERT(after < before);
	wal_stat(w, &st);
	T_EQ(st.n_segments, after);
	OPEN();
	check_snap(300, 1, 200);
	check_log();
	/* Releasing everything keeps the open segment. */
	s = make_snap(400, 1, 10);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	T_EQ(wal_release(w, 401, &err), 0);
	T_EQ(segments(names, 64), 1);
	OPEN();
	check_snap(400, 1, 10);
	T_EQ(ld.n_entries, 0);
	SAVE(401, 3, 2, 10);
	OPEN();
	check_log();
	teardown();
}

/* ---- snapshots from the leader ----------------------------------------- */

static int
save_leader_snapshot(uint64_t index, uint64_t term, uint64_t n_after)
{
	static struct raft_entry e[MAX_BATCH];
	struct raft_snapshot s = make_snap(index, term, 300);
	struct raft_ready rd = { 0 };
	int rv;

	for (size_t i = 0; i < n_after; i++) {
		e[i] = (struct raft_entry){ .term = term,
			.index = index + 1 + i, .len = 16, .data = pool[i] };
		fill_data(pool[i], index + 1 + i, term, 16);
	}
	rd.snapshot = &s;
	rd.hard_changed = true;
	rd.hard = (struct raft_hard){ term, 0, index };
	rd.entries = e;
	rd.n_entries = n_after;
	rd.must_sync = true;
	rv = wal_save(w, &rd, &err);
	if (rv == 0) {
		for (size_t i = 0; i < n_after; i++) {
			model.term[index + 1 + i] = term;
			model.size[index + 1 + i] = 16;
		}
		model.last = index + n_after;
	}
	return rv;
}

TEST(leader_snapshot_replaces_the_log)
{
	char names[64][64];

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 200; i += 10)
		SAVE(i, 10, 1, 60);
	T_ASSERT(segments(names, 64) > 2);
	/* A snapshot that conflicts with our log at 150 (term 1 vs 3):
	 * everything after it goes, including 151..200. */
	T_EQ(save_leader_snapshot(150, 3, 4), 0);
	T_EQ(segments(names, 64), 1);	/* the rest was released */
	OPEN();
	check_snap(150, 3, 300);
	check_log();
	T_EQ(ld.n_entries, 4);
	T_EQ(ld.hard.term, 3);
	SAVE(155, 2, 3, 16);
	OPEN();
	check_log();
	teardown();
}

TEST(snapshot_newer_than_the_log)
{
	struct raft_snapshot s = make_snap(100, 2, 64);

	setup(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 20);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	OPEN();
	check_snap(100, 2, 64);
	T_EQ(ld.n_entries, 0);
	/* The log resumes after the snapshot. */
	SAVE(101, 5, 2, 20);
	OPEN();
	check_snap(100, 2, 64);
	check_log();
	T_EQ(ld.n_entries, 5);
	teardown();
}

TEST(crash_between_leader_snapshot_and_reset)
{
	struct raft_snapshot s = make_snap(30, 2, 64);

	setup(MED_SEG);
	OPEN();
	SAVE(1, 50, 1, 20);
	/* The snapshot file is in place, the RESET record never made it:
	 * our 31..50 conflict with it (term 1 at 30, not 2). */
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	OPEN();
	check_snap(30, 2, 64);
	T_EQ(ld.n_entries, 0);
	SAVE(31, 3, 2, 20);
	model.last = 33;
	OPEN();
	check_log();
	T_EQ(ld.n_entries, 3);
	T_EQ(ld.entries[0].term, 2);
	teardown();
}

/* ---- random operations against the model ------------------------------ */

/*
 * Appends, suffix replacements, application and leader snapshots, releases
 * and reopens in a random order on tiny segments, checked against the model
 * after every reopen: the interplay of RESET, release and replacement is
 * where a loader goes wrong.
 */
/* Durability is not the subject here: skip the fsyncs to run more. */
static int
no_sync(void *ctx, int fd, bool is_dir)
{
	(void)ctx;
	(void)fd;
	(void)is_dir;
	return 0;
}

static const struct wal_io no_sync_io = { NULL, no_sync, NULL, NULL };

static long random_counts[8];

/*
 * Power loss in the random run. Since the last point where everything was
 * synced, the run remembers the model after each unsynced batch and where
 * that batch ended in the open segment; a crash cuts the segment at one of
 * those ends plus a few stray bytes of the next record (a torn tail), and
 * the reopened log must be exactly the model remembered there.
 */
#define MAX_MARKS 6

static struct mark {
	uint64_t off, term;
	struct model_log m;
} marks[MAX_MARKS];
static int n_marks;		/* 0: no crash point known */
static uint64_t marks_seq;

static void
mark_after_op(bool unsynced_save, uint64_t term)
{
	struct wal_stat st;

	wal_stat(w, &st);
	if (st.durable == st.offset) {
		n_marks = 0;
	} else if (!unsynced_save || n_marks == 0 || n_marks == MAX_MARKS ||
	    st.seq != marks_seq) {
		n_marks = -1;	/* unknown until the next sync */
		return;
	}
	if (n_marks < 0)
		return;
	marks_seq = st.seq;
	marks[n_marks].off = st.offset;
	marks[n_marks].term = term;
	memcpy(&marks[n_marks].m, &model, sizeof(model));
	n_marks++;
}

/* Returns true when it crashed and reopened; updates *@term. */
static bool
random_crash(struct prng *r, uint64_t *term, uint64_t *commit)
{
	struct wal_stat st;
	struct mark *m;
	char path[1024];
	uint64_t cut, stray;

	if (n_marks <= 1)
		return false;
	wal_stat(w, &st);
	m = &marks[prng_below(r, (uint64_t)n_marks)];
	stray = m->off < st.offset ? prng_below(r, 24) : 0;
	cut = m->off + stray;
	path_of(path, sizeof(path), "wal", st.segment);
	wal_close(w);
	w = NULL;
	zero_range(path, cut, st.offset);
	memcpy(&model, &m->m, sizeof(model));
	*term = m->term;
	if (*commit > model.last)
		*commit = model.last;
	OPEN();
	T_EQ(ld.repair[0] != '\0', stray > 0);
	return true;
}

static void
random_run(uint64_t seed)
{
	uint64_t snap_i = 0, snap_t = 0, commit = 0, term = 1;
	struct prng r;

	/* On tmpfs when there is one: unlinking preallocated files on a
	 * journaling file system costs a millisecond each. */
	if (access("/dev/shm", W_OK) == 0)
		setup_base = "/dev/shm";
	setup(SMALL_SEG);
	setup_base = NULL;
	opts.io = &no_sync_io;
	prng_seed(&r, seed);
	n_marks = -1;
	OPEN();
	for (int op = 0; op < 250 && model.last < MAX_INDEX - 300; op++) {
		uint64_t k = prng_below(&r, 100), floor, i;
		bool sync = prng_chance(&r, 400000), save = false;
		bool opened = false;

		floor = commit > snap_i ? commit : snap_i;
		if (k < 50 || model.last == floor) {
			random_counts[0]++;
			T_EQ(save_n(model.last + 1, prng_range(&r, 1, 20), term,
			    (uint32_t)prng_below(&r, 400), sync), 0);
			save = true;
		} else if (k < 62) {
			/* A new leader replaces an uncommitted suffix. */
			random_counts[1]++;
			i = prng_range(&r, floor + 1, model.last);
			term++;
			T_EQ(save_n(i, prng_range(&r, 1, 10), term,
			    (uint32_t)prng_below(&r, 400), sync), 0);
			save = true;
		} else if (k < 70) {
			commit = prng_range(&r, commit, model.last);
		} else if (k < 78 && commit > snap_i) {
			/* The application snapshots what it applied. */
			struct raft_snapshot s;

			random_counts[2]++;
			i = prng_range(&r, snap_i + 1, commit);
			s = make_snap(i, model.term[i], 50);
			T_EQ(wal_save_snapshot(w, &s, &err), 0);
			snap_i = i;
			snap_t = model.term[i];
			i = snap_i + 1 - prng_below(&r, snap_i < 20 ? snap_i : 20);
			T_EQ(wal_release(w, i, &err), 0);
		} else if (k < 83) {
			/* A leader's snapshot, maybe beyond our log. */
			random_counts[3]++;
			term++;
			i = prng_range(&r, commit + 1, model.last + 40);
			T_EQ(save_leader_snapshot(i, term, prng_below(&r, 5)),
			    0);
			snap_i = commit = i;
			snap_t = term;
		} else if (k < 92 && random_crash(&r, &term, &commit)) {
			random_counts[5]++;
			opened = true;
		} else {
			random_counts[4]++;
			OPEN();
			opened = true;
		}
		if (opened) {
			T_EQ(ld.snapshot.meta.index, snap_i);
			T_EQ(ld.snapshot.meta.term, snap_t);
			T_EQ(ld.hard.term, term);
			check_log();
		}
		mark_after_op(save && !sync, term);
	}
	OPEN();
	T_EQ(ld.snapshot.meta.index, snap_i);
	check_log();
	teardown();
}

TEST(random_operations_match_the_model)
{
	const char *env = getenv("WAL_RANDOM_SEEDS");
	uint64_t seeds = env != NULL ? strtoull(env, NULL, 10) : 40;

	for (uint64_t seed = 1; seed <= seeds; seed++)
		random_run(seed);
	if (getenv("WAL_TEST_VERBOSE") != NULL)
		printf("# appends %ld, replacements %ld, app snapshots %ld, "
		    "leader snapshots %ld, reopens %ld, crashes %ld\n",
		    random_counts[0], random_counts[1], random_counts[2],
		    random_counts[3], random_counts[4], random_counts[5]);
}

/* ---- the damaged-file table -------------------------------------------- */

TEST(empty_segment_alone_is_removed)
{
	char path[1024], names[64][64];

	setup(MED_SEG);
	OPEN();
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	zero_range(path, 0, 8192);
	OPEN();
	T_EQ(ld.n_entries, 0);
	T_ASSERT(strstr(ld.repair, "removed empty last segment") != NULL);
	T_EQ(segments(names, 64), 1);
	SAVE(1, 2, 1, 5);
	OPEN();
	check_log();
	teardown();
}

TEST(empty_sealed_segment_is_corrupt)
{
	char names[64][64], path[1024];

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 100; i += 10)
		SAVE(i, 10, 1, 100);
	T_ASSERT(segments(names, 64) >= 3);
	path_of(path, sizeof(path), "wal", names[1]);
	zero_range(path, 0, SMALL_SEG);
	OPEN_CORRUPT("empty sealed segment");
	teardown();
}

/* Saves three batches and returns the offset where the last one starts. */
static uint64_t
three_batches(char *path, size_t size)
{
	struct wal_stat st;

	OPEN();
	SAVE(1, 5, 1, 50);
	SAVE(6, 5, 1, 50);
	wal_stat(w, &st);
	SAVE(11, 1, 1, 50);
	last_segment(path, size);
	wal_close(w);
	w = NULL;
	return st.offset;
}

TEST(torn_header_in_the_open_segment)
{
	char path[1024];
	uint64_t off;

	setup(MED_SEG);
	off = three_batches(path, sizeof(path));
	/* The last batch is a hard state then entry 11: cut inside the
	 * hard state's header. */
	T_EQ(truncate(path, (off_t)(off + 6)), 0);
	model.last = 10;
	OPEN();
	check_log();
	T_ASSERT(strstr(ld.repair, "torn tail") != NULL);
	T_ASSERT(strstr(ld.repair, "at offset") != NULL);
	SAVE(11, 1, 1, 50);
	OPEN();
	check_log();
	teardown();
}

TEST(torn_header_inside_preallocated_space)
{
	struct wal_stat st;
	char path[1024];
	uint64_t off;

	setup(MED_SEG);
	off = three_batches(path, sizeof(path));
	/* Only the length and half the checksum reached the disk. */
	zero_range(path, off + 6, MED_SEG);
	model.last = 10;
	OPEN();
	check_log();
	T_ASSERT(strstr(ld.repair, "torn tail") != NULL);
	wal_stat(w, &st);
	T_EQ(st.offset, off);
	teardown();
}

TEST(torn_payload_in_the_open_segment)
{
	char path[1024];
	uint64_t off;

	setup(MED_SEG);
	off = three_batches(path, sizeof(path));
	/* Keep the hard state (36 bytes), cut entry 11 inside its data. */
	T_EQ(truncate(path, (off_t)(off + 36 + 12 + 30)), 0);
	model.last = 10;
	OPEN();
	check_log();
	T_EQ(ld.hard.term, 1);
	T_ASSERT(strstr(ld.repair, "torn tail") != NULL);
	teardown();
}

TEST(checksum_mismatch_in_the_last_record_is_repaired)
{
	char path[1024], want[256];
	uint64_t off;
	size_t len;
	uint8_t *p;

	setup(MED_SEG);
	off = three_batches(path, sizeof(path));
	flip(path, off + 36 + 12 + 40);	/* inside entry 11's data */
	model.last = 10;
	OPEN();
	check_log();
	PATHF(want, "at offset %" PRIu64, off + 36);
	T_ASSERT(strstr(ld.repair, want) != NULL);
	/* The bad record is zeroed on disk. */
	p = slurp(path, &len);
	for (size_t i = off + 36; i < off + 36 + 12 + 24 + 50; i++)
		T_EQ(p[i], 0);
	free(p);
	teardown();
}

TEST(zero_filled_tail_is_normal)
{
	char path[1024];
	size_t len;
	uint8_t *p;

	setup(WAL_MIN_SEGMENT_SIZE);
	OPEN();
	SAVE(1, 2, 1, 20);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	p = slurp(path, &len);
	free(p);
	T_EQ(truncate(path, (off_t)(len + 4096)), 0);
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	teardown();
}

TEST(checksum_mismatch_in_a_sealed_segment)
{
	char names[64][64], path[1024], want[256];

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 100; i += 10)
		SAVE(i, 10, 1, 100);
	T_ASSERT(segments(names, 64) >= 3);
	path_of(path, sizeof(path), "wal", names[0]);
	/* The first entry record starts after the header and hard state
	 * (80 bytes) and the batch's hard state (36). */
	flip(path, WAL_SEGMENT_START + 36 + 12 + 30);
	PATHF(want, "checksum mismatch in '%s' at offset %d", path,
	    WAL_SEGMENT_START + 36);
	OPEN_CORRUPT(want);
	teardown();
}

TEST(bad_record_followed_by_data_in_the_open_segment)
{
	char path[1024];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 50);
	SAVE(6, 5, 1, 50);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	flip(path, WAL_SEGMENT_START + 36 + 12 + 30);
	OPEN_CORRUPT("followed by data");
	teardown();
}

TEST(huge_length_is_damage_not_an_allocation)
{
	uint8_t bad[4] = { 0xff, 0xff, 0xff, 0x7f };
	char path[1024];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 50);
	SAVE(6, 5, 1, 50);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	poke(path, WAL_SEGMENT_START + 36, bad, 4);
	OPEN_CORRUPT("record length over the limit");
	teardown();
}

TEST(data_after_the_end_of_the_log)
{
	uint8_t junk = 0x42;
	char path[1024];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 50);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	poke(path, 100000, &junk, 1);
	OPEN_CORRUPT("data after the end of the log");
	teardown();
}

TEST(missing_segment_in_the_middle)
{
	char names[64][64], path[1024];

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 100; i += 10)
		SAVE(i, 10, 1, 100);
	T_ASSERT(segments(names, 64) >= 3);
	wal_close(w);
	w = NULL;
	path_of(path, sizeof(path), "wal", names[1]);
	T_EQ(unlink(path), 0);
	OPEN_CORRUPT("missing segment");
	teardown();
}

TEST(index_gap_between_segments)
{
	static const uint64_t a[][2] = { { 1, 1 }, { 2, 1 }, { 3, 1 } };
	static const uint64_t b[][2] = { { 5, 1 }, { 6, 1 } };

	setup(MED_SEG);
	OPEN();
	wal_close(w);
	w = NULL;
	rm_tree(dir);
	OPEN();	/* fresh layout */
	wal_close(w);
	w = NULL;
	craft_segment(0, 1, a, 3, 4096);
	craft_segment(1, 5, b, 2, 4096);
	OPEN_CORRUPT("index gap");
	teardown();
}

TEST(index_gap_inside_a_segment)
{
	static const uint64_t a[][2] = { { 1, 1 }, { 2, 1 }, { 4, 1 } };
	char path[1024];

	setup(MED_SEG);
	OPEN();
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	unlink(path);
	craft_segment(0, 1, a, 3, 4096);
	OPEN_CORRUPT("entry 4 where 3 was expected");
	teardown();
}

TEST(segment_header_must_match_its_name)
{
	static const uint64_t a[][2] = { { 1, 1 } };
	char path[1024], names[64][64];

	setup(MED_SEG);
	OPEN();
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	unlink(path);
	craft_segment(0, 1, a, 1, 4096);
	segments(names, 64);
	path_of(path, sizeof(path), "wal", names[0]);
	{
		char to[1024];

		path_of(to, sizeof(to), "wal",
		    "0000000000000000-0000000000000002.wal");
		T_EQ(rename(path, to), 0);
	}
	OPEN_CORRUPT("does not match its name");
	teardown();
}

TEST(entries_missing_between_snapshot_and_log)
{
	static const uint64_t a[][2] = { { 10, 1 }, { 11, 1 } };
	struct raft_snapshot s = make_snap(5, 1, 10);
	char path[1024];

	setup(MED_SEG);
	OPEN();
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	unlink(path);
	craft_segment(0, 10, a, 2, 4096);
	OPEN_CORRUPT("entries 6..9 missing");
	teardown();
}

TEST(no_segments_but_a_snapshot)
{
	struct raft_snapshot s = make_snap(5, 1, 10);
	char path[1024];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	unlink(path);
	OPEN_CORRUPT("hard state is lost");
	teardown();
}

static void
snapshot_damage_setup(char *path, size_t size)
{
	struct raft_snapshot s = make_snap(20, 1, 1000);
	char names[64][64];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 30, 1, 10);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	wal_close(w);
	w = NULL;
	T_EQ(list("snap", names, 64), 1);
	path_of(path, size, "snap", names[0]);
}

TEST(snapshot_with_a_flipped_byte)
{
	char path[1024], want[1100];

	snapshot_damage_setup(path, sizeof(path));
	flip(path, SNAP_HEADER + 3 * SNAP_SERVER + 500);
	PATHF(want, "checksum mismatch in '%s' at offset", path);
	OPEN_CORRUPT(want);
	teardown();
}

TEST(snapshot_header_with_a_flipped_byte)
{
	char path[1024];

	snapshot_damage_setup(path, sizeof(path));
	flip(path, 34);	/* the data length: sizes no longer add up */
	OPEN_CORRUPT("snap-0000000000000014-0000000000000001.snap");
	teardown();
}

TEST(truncated_snapshot)
{
	char path[1024];

	snapshot_damage_setup(path, sizeof(path));
	T_EQ(truncate(path, 700), 0);
	OPEN_CORRUPT("truncated snapshot");
	teardown();
}

TEST(corrupt_newest_snapshot_does_not_fall_back)
{
	struct raft_snapshot s = make_snap(25, 1, 100);
	char names[64][64], path[1024];

	snapshot_damage_setup(path, sizeof(path));
	OPEN();
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	wal_close(w);
	w = NULL;
	T_EQ(list("snap", names, 64), 2);
	path_of(path, sizeof(path), "snap", names[1]);
	flip(path, 60);
	OPEN_CORRUPT(names[1]);
	teardown();
}

TEST(orphan_temp_files_are_removed)
{
	char path[1024], names[64][64];

	setup(MED_SEG);
	OPEN();
	SAVE(1, 3, 1, 10);
	wal_close(w);
	w = NULL;
	path_of(path, sizeof(path), "snap",
	    "tmp-0000000000000003-0000000000000001.snap");
	write_file(path, "partial", 7);
	path_of(path, sizeof(path), "wal", "next.tmp");
	write_file(path, "", 0);
	path_of(path, sizeof(path), "wal", "keep-me.txt");
	write_file(path, "x", 1);
	OPEN();
	check_log();
	T_EQ(list("snap", names, 64), 0);
	T_EQ(list("wal", names, 64), 2);	/* segment and keep-me.txt */
	T_STREQ(names[1], "keep-me.txt");
	teardown();
}

TEST(check_reads_without_changing_anything)
{
	struct wal_loaded cl;
	struct wal_stat st;
	char path[1024];
	uint32_t d0;
	uint64_t off;

	setup(MED_SEG);
	T_EQ(wal_check(dir, &cl, &st, &err), DSC_ENOTFOUND);
	off = three_batches(path, sizeof(path));
	T_EQ(truncate(path, (off_t)(off + 40)), 0);
	d0 = dir_digest();
	T_EQ(wal_check(dir, &cl, &st, &err), 0);
	T_EQ(dir_digest(), d0);
	T_EQ(cl.n_entries, 10);
	T_ASSERT(strstr(cl.repair, "torn tail") != NULL);
	T_EQ(st.n_segments, 1);
	T_EQ(st.offset, off + 36);	/* the batch's hard state survived */
	T_EQ(st.next_index, 11);
	wal_loaded_release(&cl);
	flip(path, WAL_SEGMENT_START + 36 + 20);
	d0 = dir_digest();
	T_EQ(wal_check(dir, &cl, NULL, &err), DSC_ECORRUPT);
	T_ASSERT(cl.entries == NULL);
	T_EQ(dir_digest(), d0);
	teardown();
}

TEST(second_open_is_refused)
{
	struct wal *w2 = NULL;
	struct wal_loaded ld2;

	setup(MED_SEG);
	OPEN();
	T_EQ(wal_open(dir, &opts, &w2, &ld2, &err), DSC_EBUSY);
	T_ASSERT(w2 == NULL);
	T_ASSERT(strstr(err.msg, "in use") != NULL);
	teardown();
}

/* ---- injected faults --------------------------------------------------- */

static struct fault {
	long pwrites, syncs, fallocs;
	long pwrite_fail_at;	/* 1-based call to fail; 0 = none */
	bool partial;		/* write half of it first */
	int pwrite_errno;
	bool no_space;		/* every pwrite and fallocate: ENOSPC */
	long sync_fail_at;
	long falloc_fail_at;
} fault;

static ssize_t
f_pwrite(void *ctx, int fd, const void *b, size_t n, off_t off)
{
	struct fault *f = ctx;

	f->pwrites++;
	if (f->no_space) {
		errno = ENOSPC;
		return -1;
	}
	if (f->pwrite_fail_at > 0 && f->pwrites == f->pwrite_fail_at) {
		if (f->partial && n > 1) {
			f->pwrite_fail_at++;
			f->partial = false;
			return pwrite(fd, b, n / 2, off);
		}
		errno = f->pwrite_errno;
		return -1;
	}
	return pwrite(fd, b, n, off);
}

static int
f_sync(void *ctx, int fd, bool is_dir)
{
	struct fault *f = ctx;

	f->syncs++;
	if (f->sync_fail_at > 0 && f->syncs == f->sync_fail_at) {
		errno = EIO;
		return -1;
	}
	return is_dir ? fsync(fd) : fdatasync(fd);
}

static int
f_fallocate(void *ctx, int fd, off_t len)
{
	struct fault *f = ctx;

	f->fallocs++;
	if (f->no_space ||
	    (f->falloc_fail_at > 0 && f->fallocs == f->falloc_fail_at))
		return ENOSPC;
	return posix_fallocate(fd, 0, len);
}

static const struct wal_io fault_io = { f_pwrite, f_sync, f_fallocate,
	&fault };

static void
setup_faults(size_t segment_size)
{
	setup(segment_size);
	memset(&fault, 0, sizeof(fault));
	fault.pwrite_errno = ENOSPC;
	opts.io = &fault_io;
}

/* After a failed save: nothing beyond the append offset is non-zero. */
static void
check_clean_tail(void)
{
	struct wal_stat st;
	char path[1024];
	size_t len;
	uint8_t *p;

	wal_stat(w, &st);
	path_of(path, sizeof(path), "wal", st.segment);
	p = slurp(path, &len);
	for (size_t i = st.offset; i < len; i++)
		if (p[i] != 0)
			T_FAIL("byte %zu of '%s' is %u after a failed write",
			    i, path, p[i]);
	free(p);
}

TEST(enospc_on_write_is_recoverable)
{
	struct wal_stat a, b;

	setup_faults(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 100);
	wal_stat(w, &a);
	fault.pwrite_fail_at = fault.pwrites + 1;
	T_EQ(save_n(11, 16, 1, 250, true), DSC_ENOSPC);
	wal_stat(w, &b);
	T_EQ(b.offset, a.offset);
	T_ASSERT(!b.failed);
	check_clean_tail();
	/* Space returns: the same batch goes through. */
	SAVE(11, 16, 1, 250);
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	teardown();
}

TEST(enospc_after_a_partial_write_leaves_no_records)
{
	setup_faults(MED_SEG);
	OPEN();
	SAVE(1, 10, 1, 100);
	fault.pwrite_fail_at = fault.pwrites + 1;
	fault.partial = true;
	T_EQ(save_n(11, 64, 1, 250, true), DSC_ENOSPC);
	check_clean_tail();
	/* Reopening now must see 1..10 only, and no repair. */
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	SAVE(11, 64, 1, 250);
	OPEN();
	check_log();
	teardown();
}

TEST(enospc_past_the_preallocation_cuts_the_file_back)
{
	struct wal_stat st;
	struct stat sb;
	char path[1024];

	setup_faults(WAL_MIN_SEGMENT_SIZE);
	OPEN();
	SAVE(1, 1, 1, 10);
	SAVE(2, 1, 1, 3000);	/* rolls: a fresh segment for a big record */
	fault.pwrite_fail_at = fault.pwrites + 1;
	fault.partial = true;	/* half of it lands past the preallocation */
	T_EQ(save_n(3, 1, 1, 5000, true), DSC_ENOSPC);
	wal_stat(w, &st);
	path_of(path, sizeof(path), "wal", st.segment);
	T_EQ(stat(path, &sb), 0);
	T_ASSERT((uint64_t)sb.st_size <= st.offset + WAL_MIN_SEGMENT_SIZE);
	check_clean_tail();
	SAVE(3, 1, 1, 5000);
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	teardown();
}

TEST(enospc_while_rolling_is_recoverable)
{
	uint64_t i = 1;
	int rv = 0;

	setup_faults(SMALL_SEG);
	OPEN();
	fault.no_space = false;
	fault.falloc_fail_at = fault.fallocs + 1;
	/* Fill the first segment until the roll's allocation fails. */
	for (; i < 400; i += 5)
		if ((rv = save_n(i, 5, 1, 100, true)) != 0)
			break;
	T_EQ(rv, DSC_ENOSPC);
	check_clean_tail();
	SAVE(i, 5, 1, 100);
	OPEN();
	check_log();
	teardown();
}

TEST(enospc_everywhere_then_space_returns)
{
	setup_faults(SMALL_SEG);
	OPEN();
	SAVE(1, 5, 1, 100);
	fault.no_space = true;
	for (int k = 0; k < 3; k++)
		T_EQ(save_n(6, 60, 1, 100, true), DSC_ENOSPC);
	fault.no_space = false;
	SAVE(6, 60, 1, 100);
	OPEN();
	check_log();
	teardown();
}

TEST(fsync_failure_stops_the_wal)
{
	struct raft_snapshot s = make_snap(1, 1, 10);
	struct wal_stat st;

	setup_faults(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	fault.sync_fail_at = fault.syncs + 1;
	T_EQ(save_n(6, 5, 1, 10, true), DSC_EIO);
	wal_stat(w, &st);
	T_ASSERT(st.failed);
	/* Healed or not, it never writes again. */
	T_EQ(save_n(6, 5, 1, 10, true), DSC_EIO);
	T_ASSERT(strstr(err.msg, "stopped") != NULL);
	T_EQ(save_n(11, 1, 1, 10, false), DSC_EIO);
	T_EQ(wal_save_snapshot(w, &s, &err), DSC_EIO);
	T_EQ(wal_release(w, 1, &err), DSC_EIO);
	T_EQ(wal_prepare(w, &err), DSC_EIO);
	teardown();
}

TEST(snapshot_sync_failure_stops_the_wal)
{
	struct raft_snapshot s = make_snap(3, 1, 10);
	char names[64][64];

	setup_faults(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	fault.sync_fail_at = fault.syncs + 1;
	T_EQ(wal_save_snapshot(w, &s, &err), DSC_EIO);
	T_EQ(save_n(6, 1, 1, 10, true), DSC_EIO);
	/* The temporary file is gone or will be on the next open. */
	OPEN();
	T_EQ(list("snap", names, 64), 0);
	check_log();
	teardown();
}

TEST(enospc_writing_a_snapshot)
{
	struct raft_snapshot s = make_snap(3, 1, 5000);
	char names[64][64];

	setup_faults(MED_SEG);
	OPEN();
	SAVE(1, 5, 1, 10);
	fault.pwrite_fail_at = fault.pwrites + 2;
	T_EQ(wal_save_snapshot(w, &s, &err), DSC_ENOSPC);
	T_EQ(list("snap", names, 64), 0);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	OPEN();
	check_snap(3, 1, 5000);
	check_log();
	teardown();
}

/* ---- a real full disk -------------------------------------------------- */

TEST(enospc_on_a_small_tmpfs)
{
	char parent[512], filler[700];
	uint64_t i = 1;
	int rv = 0, fd;

	setup(32768);
	PATHF(parent, "%s", dir);
	*strrchr(parent, '/') = '\0';
	PATHF(mounted, "%s/mnt", parent);
	T_EQ(mkdir(mounted, 0700), 0);
	if (mount("dscwal", mounted, "tmpfs", 0, "size=512k") != 0) {
		printf("# enospc_on_a_small_tmpfs: skipped, mount: %s\n",
		    strerror(errno));
		mounted[0] = '\0';
		teardown();
		return;
	}
	PATHF(dir, "%s/data", mounted);
	OPEN();
	/* Leave room for a few segments only. */
	PATHF(filler, "%s/filler", mounted);
	fd = open(filler, O_WRONLY | O_CREAT, 0600);
	T_ASSERT(fd >= 0);
	T_EQ(posix_fallocate(fd, 0, 300 * 1024), 0);
	close(fd);
	for (; i < 4000; i += 8)
		if ((rv = save_n(i, 8, 1, 200, true)) != 0)
			break;
	T_EQ(rv, DSC_ENOSPC);
	T_ASSERT(i > 8);
	check_clean_tail();
	T_EQ(unlink(filler), 0);	/* space returns */
	SAVE(i, 8, 1, 200);
	OPEN();
	check_log();
	T_STREQ(ld.repair, "");
	PATHF(dir, "%s/data", parent);
	teardown();
}

/* ---- allocation failure ------------------------------------------------ */

TEST(allocation_failure_on_open)
{
	struct raft_snapshot s = make_snap(10, 1, 100);
	char path[1024];
	struct wal_stat st;
	uint32_t d0;
	long n;

	setup(SMALL_SEG);
	OPEN();
	for (uint64_t i = 1; i <= 120; i += 10)
		SAVE(i, 10, 1, 100);
	T_EQ(wal_save_snapshot(w, &s, &err), 0);
	T_EQ(save_n(121, 3, 1, 100, false), 0);
	wal_stat(w, &st);
	last_segment(path, sizeof(path));
	wal_close(w);
	w = NULL;
	zero_range(path, st.offset - 20, st.offset);	/* a torn tail */
	model.last = 122;
	d0 = dir_digest();
	for (n = 0;; n++) {
		int rv;

		dsc_mem_fail_after(n);
		rv = reopen();
		dsc_mem_fail_after(-1);
		if (rv == 0)
			break;
		T_EQ(rv, DSC_ENOMEM);
		T_ASSERT(w == NULL && ld.entries == NULL);
		T_EQ(dir_digest(), d0);	/* nothing repaired halfway */
	}
	T_ASSERT(n > 5);
	check_snap(10, 1, 100);
	check_log();
	T_ASSERT(strstr(ld.repair, "torn tail") != NULL);
	teardown();
}

TEST(allocation_failure_on_save)
{
	long n;

	for (n = 0;; n++) {
		int rv;

		setup(SMALL_SEG);
		OPEN();
		SAVE(1, 3, 1, 10);
		dsc_mem_fail_after(n);
		rv = save_leader_snapshot(50, 2, 20);
		dsc_mem_fail_after(-1);
		if (rv == 0)
			break;
		T_EQ(rv, DSC_ENOMEM);
		/* Still usable: the retry goes through. */
		T_EQ(save_leader_snapshot(50, 2, 20), 0);
		OPEN();
		check_snap(50, 2, 300);
		check_log();
	}
	T_ASSERT(n > 0);
	OPEN();
	check_log();
	teardown();
}

TEST(options_are_checked)
{
	setup(100);
	T_EQ(reopen(), DSC_EINVAL);
	teardown();
}

T_MAIN()

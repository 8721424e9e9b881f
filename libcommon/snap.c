/*
 * snap.c - snapshot files: write durably, list, read and check, prune.
 *
 * Reading trusts nothing in the file: the header's lengths must add up to the
 * file's size exactly before anything is allocated, so a damaged length can
 * neither make us allocate gigabytes nor read past the end, and the CRC is
 * checked before any field is believed.
 */
#include "snap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "crc32c.h"
#include "mem.h"
#include "wal_internal.h"

#define SNAP_PREFIX "snap-"
#define SNAP_TMP_PREFIX "tmp-"
#define SNAP_SUFFIX ".snap"

void
snap_name(char out[64], struct snap_id id, bool tmp)
{
	snprintf(out, 64, "%s%016" PRIx64 "-%016" PRIx64 "%s",
	    tmp ? SNAP_TMP_PREFIX : SNAP_PREFIX, id.index, id.term,
	    SNAP_SUFFIX);
}

static bool
parse_name(const char *name, struct snap_id *id)
{
	size_t pl = strlen(SNAP_PREFIX);

	if (strlen(name) != pl + 33 + strlen(SNAP_SUFFIX) ||
	    strncmp(name, SNAP_PREFIX, pl) != 0 || name[pl + 16] != '-' ||
	    strcmp(name + pl + 33, SNAP_SUFFIX) != 0)
		return false;
	return wal_parse_hex16(name + pl, &id->index) &&
	    wal_parse_hex16(name + pl + 17, &id->term) && id->index > 0;
}

static int
cmp_id(const void *a, const void *b)
{
	const struct snap_id *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	if (x->term != y->term)
		return x->term < y->term ? -1 : 1;
	return 0;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dsc_free(names[i]);
	dsc_free(names);
}

/* Appends a copy of @name to (*@names, *@n). */
static int
add_name(char ***names, size_t *n, const char *name)
{
	char **p, *copy;

	copy = dsc_strdup(name);
	if (copy == NULL)
		return DSC_ENOMEM;
	p = dsc_reallocarray(*names, *n + 1, sizeof(*p));
	if (p == NULL) {
		dsc_free(copy);
		return DSC_ENOMEM;
	}
	p[(*n)++] = copy;
	*names = p;
	return 0;
}

int
snap_list(int fd, const char *path, struct snap_id **ids, size_t *n,
    char ***orphans, size_t *n_orphans, struct dsc_err *err)
{
	struct snap_id *v = NULL, *p, id;
	char **tmps = NULL;
	size_t nv = 0, nt = 0;
	struct dirent *de;
	DIR *d;
	int dfd, rv = 0;

	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
		rv = dsc_errorf(err, wal_errno_code(errno),
		    "unable to list '%s': %s", path, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return rv;
	}
	while (rv == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (parse_name(de->d_name, &id)) {
			p = dsc_reallocarray(v, nv + 1, sizeof(*v));
			if (p == NULL) {
				rv = DSC_ENOMEM;
				break;
			}
			v = p;
			v[nv++] = id;
		} else if (orphans != NULL &&
		    strncmp(de->d_name, SNAP_TMP_PREFIX,
			strlen(SNAP_TMP_PREFIX)) == 0) {
			rv = add_name(&tmps, &nt, de->d_name);
		}
	}
	if (rv == 0 && errno != 0)
		rv = dsc_errorf(err, DSC_EIO, "unable to list '%s': %s", path,
		    strerror(errno));
	closedir(d);
	if (rv == DSC_ENOMEM)
		dsc_errorf(err, rv, "out of memory listing '%s'", path);
	if (rv != 0) {
		dsc_free(v);
		free_names(tmps, nt);
		return rv;
	}
	if (nv > 1)
		qsort(v, nv, sizeof(*v), cmp_id);
	*ids = v;
	*n = nv;
	if (orphans != NULL) {
		*orphans = tmps;
		*n_orphans = nt;
	}
	return 0;
}

static int
read_at(int fd, const char *path, const char *name, void *buf, size_t n,
    uint64_t off, struct dsc_err *err)
{
	if (wal_io_pread_all(fd, buf, n, off) == 0)
		return 0;
	if (errno == 0)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "truncated snapshot '%s/%s' at offset %" PRIu64, path,
		    name, off);
	return dsc_errorf(err, DSC_EIO, "unable to read '%s/%s': %s", path,
	    name, strerror(errno));
}

/* Checks the 40-byte header against the file size; *@want gets data len. */
static int
check_header(const uint8_t *h, uint64_t size, const char *path,
    const char *name, uint64_t *want, struct dsc_err *err)
{
	uint32_t version = get_u32le(h + 8), n = get_u32le(h + 12);
	uint64_t len = get_u64le(h + 32), total;

	if (memcmp(h, SNAP_MAGIC, 8) != 0)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "bad magic in snapshot '%s/%s' at offset 0", path, name);
	if (version != SNAP_VERSION)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "unsupported snapshot version %" PRIu32
		    " in '%s/%s' at offset 8", version, path, name);
	if (n > RAFT_MAX_SERVERS)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "%" PRIu32 " servers in snapshot '%s/%s' at offset 12, "
		    "more than %d", n, path, name, RAFT_MAX_SERVERS);
	if (len > SNAP_MAX_DATA)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "data length %" PRIu64 " in snapshot '%s/%s' at offset 32 "
		    "is over the limit", len, path, name);
	total = SNAP_HEADER + (uint64_t)n * SNAP_SERVER + len + 4;
	if (size < total)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "truncated snapshot '%s/%s': %" PRIu64 " bytes, "
		    "header at offset 0 says %" PRIu64, path, name, size,
		    total);
	if (size > total)
		return dsc_errorf(err, DSC_ECORRUPT,
		    "trailing bytes in snapshot '%s/%s' at offset %" PRIu64,
		    path, name, total);
	*want = len;
	return 0;
}

int
snap_read(int fd, const char *path, struct snap_id id,
    struct raft_snapshot *s, struct dsc_err *err)
{
	uint8_t hdr[SNAP_HEADER + RAFT_MAX_SERVERS * SNAP_SERVER], tail[4];
	uint8_t *data = NULL;
	uint64_t len = 0, size, off;
	uint32_t n, crc;
	char name[64];
	struct stat st;
	int f, rv;

	snap_name(name, id, false);
	f = openat(fd, name, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to open '%s/%s': %s", path, name, strerror(errno));
	if (fstat(f, &st) != 0) {
		rv = dsc_errorf(err, DSC_EIO, "unable to stat '%s/%s': %s",
		    path, name, strerror(errno));
		goto out;
	}
	size = (uint64_t)st.st_size;
	if (size < SNAP_HEADER + 4) {
		rv = dsc_errorf(err, DSC_ECORRUPT,
		    "truncated snapshot '%s/%s': %" PRIu64 " bytes", path,
		    name, size);
		goto out;
	}
	if ((rv = read_at(f, path, name, hdr, SNAP_HEADER, 0, err)) != 0 ||
	    (rv = check_header(hdr, size, path, name, &len, err)) != 0)
		goto out;
	n = get_u32le(hdr + 12);
	off = SNAP_HEADER + (uint64_t)n * SNAP_SERVER;
	if ((rv = read_at(f, path, name, hdr + SNAP_HEADER,
		 (size_t)n * SNAP_SERVER, SNAP_HEADER, err)) != 0)
		goto out;
	if (len > 0 && (data = dsc_malloc((size_t)len)) == NULL) {
		rv = dsc_errorf(err, DSC_ENOMEM,
		    "out of memory reading '%s/%s'", path, name);
		goto out;
	}
	if ((rv = read_at(f, path, name, data, (size_t)len, off, err)) != 0 ||
	    (rv = read_at(f, path, name, tail, 4, off + len, err)) != 0)
		goto out;
	crc = crc32c(crc32c(0, hdr, (size_t)off), data, (size_t)len);
	if (crc != get_u32le(tail)) {
		rv = dsc_errorf(err, DSC_ECORRUPT,
		    "checksum mismatch in '%s/%s' at offset %" PRIu64, path,
		    name, off + len);
		goto out;
	}
	if (get_u64le(hdr + 16) != id.index || get_u64le(hdr + 24) != id.term) {
		rv = dsc_errorf(err, DSC_ECORRUPT,
		    "snapshot '%s/%s' holds index %" PRIu64 " term %" PRIu64
		    " at offset 16", path, name, get_u64le(hdr + 16),
		    get_u64le(hdr + 24));
		goto out;
	}
	memset(s, 0, sizeof(*s));
	s->meta.index = id.index;
	s->meta.term = id.term;
	s->meta.conf.n = n;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *p = hdr + SNAP_HEADER + i * SNAP_SERVER;

		if (p[8] > RAFT_LEARNER) {
			rv = dsc_errorf(err, DSC_ECORRUPT,
			    "bad suffrage in snapshot '%s/%s' at offset %zu",
			    path, name, (size_t)(p + 8 - hdr));
			goto out;
		}
		s->meta.conf.servers[i].id = get_u64le(p);
		s->meta.conf.servers[i].suffrage = p[8];
	}
	s->len = (size_t)len;
	s->data = data;
	data = NULL;
	rv = 0;
out:
	dsc_free(data);
	close(f);
	return rv;
}

/* Writes the whole file @name in @fd: header, data, CRC; then syncs it. */
static int
write_file(int f, const char *path, const char *name, const struct wal_io *io,
    const struct raft_snapshot *s, bool *fatal, struct dsc_err *err)
{
	uint8_t hdr[SNAP_HEADER + RAFT_MAX_SERVERS * SNAP_SERVER], tail[4];
	const struct raft_conf *c = &s->meta.conf;
	size_t hl = SNAP_HEADER + (size_t)c->n * SNAP_SERVER, done;
	uint32_t crc;

	memset(hdr, 0, hl);
	memcpy(hdr, SNAP_MAGIC, 8);
	hdr[8] = SNAP_VERSION;
	for (int i = 0; i < 4; i++) {
		hdr[12 + i] = (uint8_t)(c->n >> (8 * i));
		hdr[32 + i] = (uint8_t)((uint64_t)s->len >> (8 * i));
		hdr[36 + i] = (uint8_t)((uint64_t)s->len >> (8 * (i + 4)));
	}
	for (int i = 0; i < 8; i++) {
		hdr[16 + i] = (uint8_t)(s->meta.index >> (8 * i));
		hdr[24 + i] = (uint8_t)(s->meta.term >> (8 * i));
	}
	for (uint32_t k = 0; k < c->n; k++) {
		uint8_t *p = hdr + SNAP_HEADER + k * SNAP_SERVER;

		for (int i = 0; i < 8; i++)
			p[i] = (uint8_t)(c->servers[k].id >> (8 * i));
		p[8] = c->servers[k].suffrage;
	}
	crc = crc32c(crc32c(0, hdr, hl), s->data, s->len);
	for (int i = 0; i < 4; i++)
		tail[i] = (uint8_t)(crc >> (8 * i));
	if (wal_io_pwrite_all(io, f, hdr, hl, 0, &done) != 0 ||
	    wal_io_pwrite_all(io, f, s->data, s->len, hl, &done) != 0 ||
	    wal_io_pwrite_all(io, f, tail, 4, hl + s->len, &done) != 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to write '%s/%s': %s", path, name,
		    strerror(errno));
	if (wal_io_sync(io, f, false) != 0) {
		*fatal = true;
		return dsc_errorf(err, DSC_EIO, "unable to sync '%s/%s': %s",
		    path, name, strerror(errno));
	}
	return 0;
}

int
snap_write(int fd, const char *path, const struct wal_io *io,
    const struct raft_snapshot *s, bool *fatal, struct dsc_err *err)
{
	struct snap_id id = { s->meta.index, s->meta.term };
	char tmp[64], name[64];
	int f, rv;

	*fatal = false;
	if (s->meta.conf.n > RAFT_MAX_SERVERS || s->meta.index == 0 ||
	    (s->len > 0 && s->data == NULL) || (uint64_t)s->len > SNAP_MAX_DATA)
		return dsc_errorf(err, DSC_EINVAL,
		    "invalid snapshot at index %" PRIu64, s->meta.index);
	snap_name(tmp, id, true);
	snap_name(name, id, false);
	f = openat(fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (f < 0)
		return dsc_errorf(err, wal_errno_code(errno),
		    "unable to create '%s/%s': %s", path, tmp,
		    strerror(errno));
	rv = write_file(f, path, tmp, io, s, fatal, err);
	if (close(f) != 0 && rv == 0)
		rv = dsc_errorf(err, wal_errno_code(errno),
		    "unable to close '%s/%s': %s", path, tmp, strerror(errno));
	if (rv == 0 && renameat(fd, tmp, fd, name) != 0)
		rv = dsc_errorf(err, wal_errno_code(errno),
		    "unable to rename '%s/%s': %s", path, tmp,
		    strerror(errno));
	if (rv != 0) {
		unlinkat(fd, tmp, 0);
		return rv;
	}
	if (wal_io_sync(io, fd, true) != 0) {
		*fatal = true;
		return dsc_errorf(err, DSC_EIO, "unable to sync '%s': %s",
		    path, strerror(errno));
	}
	return 0;
}

int
snap_prune(int fd, const char *path, struct dsc_err *err)
{
	struct snap_id *ids = NULL;
	char name[64];
	size_t n = 0;
	int rv;

	rv = snap_list(fd, path, &ids, &n, NULL, NULL, err);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i + SNAP_KEEP < n; i++) {
		snap_name(name, ids[i], false);
		if (unlinkat(fd, name, 0) != 0 && errno != ENOENT) {
			rv = dsc_errorf(err, DSC_EIO,
			    "unable to remove '%s/%s': %s", path, name,
			    strerror(errno));
			break;
		}
	}
	dsc_free(ids);
	return rv;
}

/*
 * fsync-probe.c - the floor under every replicated write: how long one
 * fdatasync takes on the filesystem of DIR (tests/bench/README.md).
 *
 * A Raft commit costs at least one fdatasync on the leader and one on a
 * follower, so no write latency can beat this. Two shapes, as WALs write:
 * "append" grows the file with each write (the size changes, so the inode
 * is flushed too) and "overwrite" rewrites blocks of a file allocated and
 * synced beforehand (data only). COUNT writes of SIZE bytes each; prints one
 * JSON line with p50, p99 and max in ms per shape. The file is removed.
 *
 * Usage: fsync-probe [-n count] [-s size] dir
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define USAGE      "usage: fsync-probe [-n count] [-s size] dir\n"
#define MAX_COUNT  100000
#define MAX_SIZE   (1024 * 1024)
#define PATH_BYTES 4096

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static long
number(const char *what, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "fsync-probe: error: %s '%s' not in %ld..%ld\n",
		    what, s, lo, hi);
		exit(2);
	}
	return v;
}

/* Times @n writes of @size bytes at offsets 0, size, 2 size... */
static int
probe(int fd, const char *buf, size_t size, size_t n, double *lat)
{
	for (size_t i = 0; i < n; i++) {
		double t0 = now_ms();

		if (pwrite(fd, buf, size, (off_t)(i * size)) != (ssize_t)size ||
		    fdatasync(fd) != 0)
			return -1;
		lat[i] = now_ms() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t n = 500, size = 512;
	char path[PATH_BYTES], *buf;
	double *lat[2];
	int ch, fd;

	while ((ch = getopt(argc, argv, "n:s:")) != -1) {
		switch (ch) {
		case 'n':
			n = (size_t)number("count", optarg, 1, MAX_COUNT);
			break;
		case 's':
			size = (size_t)number("size", optarg, 1, MAX_SIZE);
			break;
		default:
			fputs(USAGE, stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fputs(USAGE, stderr);
		return 2;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/fsync-probe.%ld",
	        argv[optind], (long)getpid()) >= sizeof(path)) {
		fprintf(
		    stderr, "fsync-probe: error: directory name too long\n");
		return 2;
	}
	buf = malloc(size);
	lat[0] = calloc(n, sizeof(double));
	lat[1] = calloc(n, sizeof(double));
	if (buf == NULL || lat[0] == NULL || lat[1] == NULL) {
		fprintf(stderr, "fsync-probe: error: out of memory\n");
		return 3;
	}
	memset(buf, 'x', size);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "fsync-probe: error: cannot create '%s': %s\n",
		    path, strerror(errno));
		return 3;
	}
	/* First pass appends; the second overwrites what is now allocated
	 * and already on disk. */
	if (probe(fd, buf, size, n, lat[0]) != 0 || fsync(fd) != 0 ||
	    probe(fd, buf, size, n, lat[1]) != 0) {
		fprintf(stderr,
		    "fsync-probe: error: write or sync of '%s': %s\n", path,
		    strerror(errno));
		close(fd);
		unlink(path);
		return 3;
	}
	close(fd);
	unlink(path);
	printf("{\"count\":%zu,\"size\":%zu,\"append_p50_ms\":%.3f,"
	       "\"append_p99_ms\":%.3f,\"append_max_ms\":%.3f,"
	       "\"overwrite_p50_ms\":%.3f,\"overwrite_p99_ms\":%.3f,"
	       "\"overwrite_max_ms\":%.3f}\n",
	    n, size, lat[0][n / 2], lat[0][n * 99 / 100], lat[0][n - 1],
	    lat[1][n / 2], lat[1][n * 99 / 100], lat[1][n - 1]);
	free(buf);
	free(lat[0]);
	free(lat[1]);
	return 0;
}

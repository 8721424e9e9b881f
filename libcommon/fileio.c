#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
fileio_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fsync of @path's directory, so the rename itself survives a crash. */
static int
sync_dir(const char *path, struct dsc_err *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return dsc_errorf(err, DSC_EIO, "unable to open '%s': %s",
		    dir, strerror(errno));
	if (fsync(fd) != 0)
		rc = dsc_errorf(err, DSC_EIO, "unable to fsync '%s': %s", dir,
		    strerror(errno));
	close(fd);
	return rc;
}

int
fileio_replace(const char *path, const void *data, size_t len, mode_t mode,
    struct dsc_err *err)
{
	char tmp[PATH_MAX];
	int fd, e;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return dsc_errorf(err, DSC_EINVAL, "path '%s' is too long",
		    path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return dsc_errorf(err, DSC_EIO, "unable to create '%s': %s",
		    tmp, strerror(errno));
	if (fileio_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		e = errno;
		close(fd);
		unlink(tmp);
		return dsc_errorf(err, DSC_EIO, "unable to write '%s': %s",
		    tmp, strerror(e));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		e = errno;
		unlink(tmp);
		return dsc_errorf(err, DSC_EIO, "unable to replace '%s': %s",
		    path, strerror(e));
	}
	return sync_dir(path, err);
}

/*
 * fileio.h - writing small files so that a crash leaves the old contents or
 * the new, never a mix: the state files servers and agents keep beside
 * their logs (server.json, members, the agent's local.json).
 */
#ifndef DSC_FILEIO_H
#define DSC_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/* Writes all @n bytes of @p to @fd, retrying short writes and EINTR.
 * Returns 0, or -1 with errno set. */
int fileio_write_all(int fd, const void *p, size_t n);

/*
 * Replaces @path with the @len bytes of @data, mode @mode: written to
 * "@path.tmp", fsynced, renamed over @path, and the directory fsynced.
 * DSC_EIO (the message names the file and the reason) or DSC_EINVAL for a
 * path too long; on failure @path is untouched and the temp file removed.
 */
int fileio_replace(const char *path, const void *data, size_t len,
    mode_t mode, struct dsc_err *err);

#endif

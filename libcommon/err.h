/*
 * err.h - error codes, their messages and exit classes, in one table.
 *
 * Library code never prints or exits: it returns 0 or a DSC_E* code and
 * fills an optional struct dsc_err with a one-line message that names the
 * subject (git's "error first, subject in quotes"). Programs map a code to an
 * exit status through dsc_exit_class(), so every tool and daemon shares one
 * exit-status table.
 */
#ifndef DSC_ERR_H
#define DSC_ERR_H

#include <stddef.h>

/* The exit-status table shared by every dsc program (STYLE.md 2.7). */
enum dsc_exit {
	DSC_EXIT_OK = 0,	/* success */
	DSC_EXIT_NO = 1,	/* negative answer */
	DSC_EXIT_USAGE = 2,	/* usage error */
	DSC_EXIT_TEMP = 3,	/* temporary failure: retrying may help */
	DSC_EXIT_PERM = 4,	/* permanent failure: retrying won't help */
};

#define DSC_ERRORS(X)                                                          \
	X(DSC_OK, "success", DSC_EXIT_OK)                                      \
	X(DSC_ENOMEM, "out of memory", DSC_EXIT_TEMP)                          \
	X(DSC_EINVAL, "invalid argument", DSC_EXIT_PERM)                       \
	X(DSC_EUSAGE, "usage error", DSC_EXIT_USAGE)                           \
	X(DSC_ENOTFOUND, "not found", DSC_EXIT_NO)                             \
	X(DSC_ETOOBIG, "too large", DSC_EXIT_PERM)                             \
	X(DSC_ENOTLEADER, "not the leader", DSC_EXIT_TEMP)                     \
	X(DSC_ENOLEADER, "cluster has no leader", DSC_EXIT_TEMP)               \
	X(DSC_EBUSY, "busy, try again", DSC_EXIT_TEMP)                         \
	X(DSC_ETIMEDOUT, "timed out", DSC_EXIT_TEMP)                           \
	X(DSC_EUNREACH, "no server reachable", DSC_EXIT_TEMP)                  \
	X(DSC_EIO, "input/output error", DSC_EXIT_TEMP)                        \
	X(DSC_ENOSPC, "no space left on device", DSC_EXIT_TEMP)                \
	X(DSC_ECORRUPT, "persisted data corrupted", DSC_EXIT_PERM)             \
	X(DSC_EAUTH, "authentication failed", DSC_EXIT_PERM)                   \
	X(DSC_EPROTO, "protocol error", DSC_EXIT_PERM)                         \
	X(DSC_EEXIST, "already exists", DSC_EXIT_PERM)                         \
	X(DSC_ESTOPPED, "stopped", DSC_EXIT_TEMP)

enum dsc_code {
#define DSC_ERR_ENUM(code, msg, exit) code,
	DSC_ERRORS(DSC_ERR_ENUM)
#undef DSC_ERR_ENUM
	DSC_E_MAX
};

/* Size of struct dsc_err's message, including the NUL. */
#define DSC_ERRMSG_MAX 256

struct dsc_err {
	int code;
	char msg[DSC_ERRMSG_MAX];
};

#define DSC_ERR_INIT { 0, { 0 } }

/* The table's message for @code ("out of memory"); never NULL. */
const char *dsc_strerror(int code);

/* The symbolic name of @code ("DSC_ENOMEM"); never NULL. */
const char *dsc_errname(int code);

/* The exit class of @code; unknown codes are DSC_EXIT_PERM. */
int dsc_exit_class(int code);

/*
 * Sets @err (which may be NULL) to @code and the formatted message, truncated
 * to fit, and returns @code, so callers write `return dsc_errorf(...)`.
 */
int dsc_errorf(struct dsc_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Prefixes @err's message with the formatted context and ": ", keeping the
 * code ("unable to open 'x': permission denied"). No-op when @err is NULL.
 * An empty message is replaced by dsc_strerror(code) before prefixing.
 */
void dsc_err_wrap(struct dsc_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Resets @err to DSC_OK with an empty message. */
void dsc_err_clear(struct dsc_err *err);

/* @err's message, or the code's table message when the message is empty. */
const char *dsc_err_msg(const struct dsc_err *err);

#endif

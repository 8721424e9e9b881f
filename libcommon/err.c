/*
 * err.c - error codes, messages and exit classes from the DSC_ERRORS table.
 *
 * Every lookup is driven by the one X-macro table in err.h, so a code can
 * never have a message without an exit class or the other way round. Messages
 * live in a fixed buffer inside struct dsc_err: formatting truncates instead
 * of allocating, because the error we most need to report is out of memory.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_row {
	const char *name;
	const char *msg;
	int exit_class;
};

static const struct err_row table[DSC_E_MAX] = {
#define DSC_ERR_ROW(code, msg, exit) [code] = { #code, msg, exit },
	DSC_ERRORS(DSC_ERR_ROW)
#undef DSC_ERR_ROW
};

/* Marks a message that did not fit, so a reader knows text is missing. */
#define TRUNC_MARK "..."

static const struct err_row *
row(int code)
{
	if (code < 0 || code >= DSC_E_MAX)
		return NULL;
	return &table[code];
}

const char *
dsc_strerror(int code)
{
	const struct err_row *r = row(code);

	return r != NULL ? r->msg : "unknown error";
}

const char *
dsc_errname(int code)
{
	const struct err_row *r = row(code);

	return r != NULL ? r->name : "DSC_E_UNKNOWN";
}

int
dsc_exit_class(int code)
{
	const struct err_row *r = row(code);

	return r != NULL ? r->exit_class : DSC_EXIT_PERM;
}

/*
 * vsnprintf into @dst, replacing the tail with TRUNC_MARK when the text did
 * not fit. A formatting error leaves an empty string, which dsc_err_msg()
 * later shows as the code's table message.
 */
static void format_into(char *, size_t, const char *, va_list)
	__attribute__((format(printf, 3, 0)));

static void
format_into(char *dst, size_t size, const char *fmt, va_list ap)
{
	int n;

	n = vsnprintf(dst, size, fmt, ap);
	if (n < 0)
		dst[0] = '\0';
	else if ((size_t)n >= size && size > sizeof(TRUNC_MARK))
		memcpy(dst + size - sizeof(TRUNC_MARK), TRUNC_MARK,
		    sizeof(TRUNC_MARK));
}

int
dsc_errorf(struct dsc_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	va_start(ap, fmt);
	format_into(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

void
dsc_err_wrap(struct dsc_err *err, const char *fmt, ...)
{
	char tmp[DSC_ERRMSG_MAX];
	const char *old;
	size_t used, room, olen;
	va_list ap;

	if (err == NULL)
		return;
	old = dsc_err_msg(err);
	va_start(ap, fmt);
	format_into(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Context, ": ", then as much of the old message as fits. */
	used = strlen(tmp);
	room = sizeof(tmp) - 1 - used;
	olen = strlen(old);
	if (room >= 2 + olen) {
		memcpy(tmp + used, ": ", 2);
		memcpy(tmp + used + 2, old, olen + 1);
	} else {
		if (room >= 2) {
			memcpy(tmp + used, ": ", 2);
			memcpy(tmp + used + 2, old, room - 2);
		}
		memcpy(tmp + sizeof(tmp) - sizeof(TRUNC_MARK), TRUNC_MARK,
		    sizeof(TRUNC_MARK));
	}
	memcpy(err->msg, tmp, sizeof(err->msg));
}

void
dsc_err_clear(struct dsc_err *err)
{
	if (err == NULL)
		return;
	err->code = DSC_OK;
	err->msg[0] = '\0';
}

const char *
dsc_err_msg(const struct dsc_err *err)
{
	if (err == NULL)
		return dsc_strerror(DSC_OK);
	if (err->msg[0] == '\0')
		return dsc_strerror(err->code);
	return err->msg;
}

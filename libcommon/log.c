/*
 * log.c - one line per event on stderr: "prog[pid]: level: message".
 *
 * The line is built in a fixed buffer and leaves in a single write(2), so
 * lines from several processes sharing a pipe to the supervisor do not
 * interleave (writes up to PIPE_BUF are atomic). Control characters in the
 * message become '?': messages quote names that came off the network, and a
 * newline in a service name must not be able to forge a second log line.
 * Logging never allocates and never fails loudly: if stderr is gone there is
 * nobody to tell.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Longest line written, newline included; longer messages end in "...". */
#define LOG_LINE_MAX 2048

int log_current_level = LOG_INFO;

static const char *log_prog = "dsc";
static bool log_with_time;

static const char *const level_names[] = {
	[LOG_ERR] = "error",
	[LOG_WARN] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void
log_init(const char *prog, enum log_level level, bool with_time)
{
	if (prog != NULL)
		log_prog = prog;
	log_with_time = with_time;
	log_set_level(level);
}

/* Levels past the ends are clamped: "-vvvv" simply means debug. */
void
log_set_level(enum log_level level)
{
	int l = (int)level;

	if (l < LOG_ERR)
		l = LOG_ERR;
	if (l > LOG_DEBUG)
		l = LOG_DEBUG;
	log_current_level = l;
}

const char *
log_level_name(enum log_level level)
{
	int l = (int)level;

	if (l < LOG_ERR || l > LOG_DEBUG)
		return "unknown";
	return level_names[l];
}

/* "2026-11-25T12:22:28.123Z " into @dst; empty if the clock fails. */
static size_t
format_time(char *dst, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;
	int m;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
	    gmtime_r(&ts.tv_sec, &tm) == NULL)
		return 0;
	n = strftime(dst, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (n == 0)
		return 0;
	m = snprintf(dst + n, size - n, ".%03ldZ ", ts.tv_nsec / 1000000L);
	if (m < 0 || (size_t)m >= size - n)
		return 0;
	return n + (size_t)m;
}

static void
write_all(const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDERR_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

void
log_write(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t n = 0, start, end;
	int saved_errno = errno;
	va_list ap;
	int m;

	if ((int)level > log_current_level)
		return;
	if (log_with_time)
		n = format_time(line, sizeof(line));
	m = snprintf(line + n, sizeof(line) - n, "%s[%ld]: %s: ", log_prog,
	    (long)getpid(), log_level_name(level));
	if (m < 0)
		return;
	/* A prog name too long for the line is not worth a special case. */
	n = (size_t)m < sizeof(line) - n ? n + (size_t)m : sizeof(line) - 1;
	start = n;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	/* Room for the message and its "\n" is sizeof(line) - 1 - start. */
	if ((size_t)m > sizeof(line) - 1 - start) {
		end = sizeof(line) - 1;
		if (end - start >= 3)
			memcpy(line + end - 3, "...", 3);
	} else
		end = start + (size_t)m;
	while (end > start && line[end - 1] == '\n')
		end--;
	for (size_t i = start; i < end; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			line[i] = '?';
	}
	line[end++] = '\n';
	write_all(line, end);
	errno = saved_errno;
}

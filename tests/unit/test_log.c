/*
 * test_log.c - the line shape, level filtering before formatting, optional
 * timestamps, and what happens to hostile or huge messages.
 *
 * stderr is pointed at a temporary file for each capture and put back after.
 */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <unistd.h>

#include "t.h"

/* ---- capture ------------------------------------------------------- */

static char captured[8192];

static void
capture_begin(int *saved)
{
	FILE *f = tmpfile();

	T_ASSERT(f != NULL);
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	T_ASSERT(*saved >= 0);
	T_ASSERT(dup2(fileno(f), STDERR_FILENO) == STDERR_FILENO);
	fclose(f);	/* fd 2 keeps the file open */
}

/* Restores stderr and returns what was written meanwhile. */
static const char *
capture_end(int saved)
{
	ssize_t n;

	T_ASSERT(lseek(STDERR_FILENO, 0, SEEK_SET) == 0);
	n = read(STDERR_FILENO, captured, sizeof(captured) - 1);
	T_ASSERT(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(saved);
	T_ASSERT(n >= 0);
	captured[n] = '\0';
	return captured;
}

/* "PROG[PID]: " for this process. */
static const char *
prefix(void)
{
	static char s[64];

	snprintf(s, sizeof(s), "test-log[%ld]: ", (long)getpid());
	return s;
}

static int evaluated;

static int
side_effect(void)
{
	evaluated++;
	return 1;
}

/* ---- tests --------------------------------------------------------- */

TEST(line_shape)
{
	char want[512];
	int saved;

	log_init("test-log", LOG_INFO, false);
	capture_begin(&saved);
	log_info("became leader term=%d index=%d", 7, 42);
	log_err("unable to open '%s'", "x");
	log_warn("slow fsync");
	snprintf(want, sizeof(want),
	    "%sinfo: became leader term=7 index=42\n"
	    "%serror: unable to open 'x'\n"
	    "%swarning: slow fsync\n", prefix(), prefix(), prefix());
	T_STREQ(capture_end(saved), want);
}

TEST(level_is_checked_before_formatting)
{
	char want[512];
	int saved;

	log_init("test-log", LOG_INFO, false);
	evaluated = 0;
	capture_begin(&saved);
	log_debug("hidden %d", side_effect());
	T_STREQ(capture_end(saved), "");
	T_EQ(evaluated, 0);

	log_set_level(LOG_DEBUG);
	capture_begin(&saved);
	log_debug("shown %d", side_effect());
	snprintf(want, sizeof(want), "%sdebug: shown 1\n", prefix());
	T_STREQ(capture_end(saved), want);
	T_EQ(evaluated, 1);

	log_set_level(LOG_ERR);
	capture_begin(&saved);
	log_warn("hidden");
	log_info("hidden");
	log_write(LOG_INFO, "direct calls are filtered too");
	T_STREQ(capture_end(saved), "");
}

TEST(levels_clamp_and_name)
{
	log_set_level((enum log_level)99);
	T_EQ(log_current_level, LOG_DEBUG);
	log_set_level((enum log_level)-3);
	T_EQ(log_current_level, LOG_ERR);
	T_STREQ(log_level_name(LOG_ERR), "error");
	T_STREQ(log_level_name(LOG_WARN), "warning");
	T_STREQ(log_level_name(LOG_INFO), "info");
	T_STREQ(log_level_name(LOG_DEBUG), "debug");
	T_STREQ(log_level_name((enum log_level)17), "unknown");
}

/* "2026-11-25T12:22:28.123Z test-log[1]: info: tick" */
TEST(utc_timestamp_prefix)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ ";
	const char *out;
	int saved;

	log_init("test-log", LOG_INFO, true);
	capture_begin(&saved);
	log_info("tick");
	out = capture_end(saved);
	log_init("test-log", LOG_INFO, false);
	T_ASSERT(strlen(out) > sizeof(shape));
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		bool ok = shape[i] == 'd' ? isdigit((unsigned char)out[i]) != 0
					  : out[i] == shape[i];

		if (!ok)
			T_FAIL("timestamp differs at %zu: '%s'", i, out);
	}
	T_ASSERT(strncmp(out + sizeof(shape) - 1, prefix(),
	    strlen(prefix())) == 0);
	T_ASSERT(strcmp(out + strlen(out) - 11, "info: tick\n") == 0);
}

TEST(control_characters_cannot_forge_lines)
{
	char want[512];
	int saved;

	log_init("test-log", LOG_INFO, false);
	capture_begin(&saved);
	log_info("service '%s'", "web\ndsc-server[1]: error: fake\x1b[0m");
	log_info("tab\tkept, trailing newline dropped\n");
	snprintf(want, sizeof(want),
	    "%sinfo: service 'web?dsc-server[1]: error: fake?[0m'\n"
	    "%sinfo: tab\tkept, trailing newline dropped\n", prefix(),
	    prefix());
	T_STREQ(capture_end(saved), want);
}

TEST(long_messages_are_cut_to_one_line)
{
	static char big[5000];
	const char *out;
	size_t n;
	int saved;

	memset(big, 'L', sizeof(big) - 1);
	log_init("test-log", LOG_INFO, false);
	capture_begin(&saved);
	log_info("%s", big);
	out = capture_end(saved);
	n = strlen(out);
	T_EQ(n, 2048);
	T_ASSERT(strcmp(out + n - 4, "...\n") == 0);
	T_ASSERT(strchr(out, '\n') == out + n - 1);
}

TEST(errno_is_preserved)
{
	int saved;

	log_init("test-log", LOG_INFO, false);
	capture_begin(&saved);
	errno = ERANGE;
	log_info("x");
	T_EQ(errno, ERANGE);
	capture_end(saved);
}

T_MAIN()

/*
 * log.h - one line per event on stderr, for daemons and tools.
 *
 * Shape: "dsc-server[1234]: info: became leader term=7 index=42", with an
 * optional ISO-8601 UTC timestamp in front (--log-time, for bare runs; under
 * a supervisor the supervisor adds time). The level is checked before any
 * formatting (redis serverLog). Pure modules (raft*, catalog*) never log.
 */
#ifndef DSC_LOG_H
#define DSC_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_ERR = 0,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
};

extern int log_current_level;

/* @prog is borrowed and must outlive logging. */
void log_init(const char *prog, enum log_level level, bool with_time);
void log_set_level(enum log_level level);
const char *log_level_name(enum log_level level);
void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                                                       \
	do {                                                                   \
		if ((int)(lvl) <= log_current_level)                           \
			log_write((lvl), __VA_ARGS__);                         \
	} while (0)
#define log_err(...) log_at(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_at(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_at(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_at(LOG_DEBUG, __VA_ARGS__)

#endif

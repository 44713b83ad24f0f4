/* log: leveled, line-at-a-time logging to stderr.
 *
 * One line per event, written with a single fprintf so lines from different threads never interleave.
 * The level is set once at start, before any thread exists.
 *
 * Lines carry what clients sent (paths, header values, CivetWeb's messages quoting requests), so
 * every line is escaped as a whole (log_escape) before it is written: whatever a field holds, one
 * call is one line, and no client can forge a line or send escape sequences to a terminal. */
#ifndef SB_LOG_H
#define SB_LOG_H

#include <stddef.h>

enum sb_log_level { SB_LOG_ERROR, SB_LOG_WARN, SB_LOG_INFO, SB_LOG_DEBUG };

void log_set_level(enum sb_log_level level);
int log_enabled(enum sb_log_level level);
/* Parses "error", "warn", "info" or "debug"; returns 0, or -1 for anything else. */
int log_level_parse(const char *text, enum sb_log_level *out);
/* Copies `in` into out (cap bytes, NUL-terminated, cut at an escape boundary) with backslash, control
 * characters (below 0x20, DEL, and the C1 range U+0080-U+009F) and bytes that are not UTF-8 escaped:
 * \\ \n \r \t, else \xHH per byte. Returns out. */
char *log_escape(const char *in, char *out, size_t cap);
void log_msg(enum sb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(SB_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(SB_LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(SB_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(SB_LOG_DEBUG, __VA_ARGS__)

#endif

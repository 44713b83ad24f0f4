/* log: leveled logging to stderr, one line per call (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum sb_log_level current_level = SB_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum sb_log_level level) { current_level = level; }

int log_enabled(enum sb_log_level level) { return level <= current_level; }

int log_level_parse(const char *text, enum sb_log_level *out) {
    for (int i = SB_LOG_ERROR; i <= SB_LOG_DEBUG; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (enum sb_log_level)i;
            return 0;
        }
    }
    return -1;
}

void log_msg(enum sb_log_level level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, level_names[level], text);
}

/* log: leveled logging to stderr, one line per call, escaped (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

#define LOG_LINE_MAX 1024 /* a message's bytes before escaping; escaped, at most 4 times as many */

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

/* Bytes of the UTF-8 sequence at p that may be written as they are: 0 when p[0] must be escaped. */
static size_t printable_utf8(const unsigned char *p) {
    size_t n = p[0] < 0x80 ? 1 : p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : 2;
    if (n == 1) return p[0] >= 0x20 && p[0] != 0x7F && p[0] != '\\';
    for (size_t i = 1; i < n; i++)
        if (!p[i]) return 0; /* the string ends inside the sequence */
    if (!utf8_valid(p, n)) return 0;
    return p[0] == 0xC2 && p[1] < 0xA0 ? 0 : n; /* C1 controls: 0x9B is a CSI to some terminals */
}

/* The letter of a byte's short escape (\\n for a newline), or 0. */
static char named_escape(unsigned char c) {
    switch (c) {
    case '\\': return '\\';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
    }
}

char *log_escape(const char *in, char *out, size_t cap) {
    size_t o = 0;
    if (cap == 0) return out;
    for (const unsigned char *p = (const unsigned char *)in; *p;) {
        char esc[5];
        size_t keep = printable_utf8(p), n = keep;
        if (!keep && named_escape(*p)) n = (size_t)snprintf(esc, sizeof esc, "\\%c", named_escape(*p));
        else if (!keep) n = (size_t)snprintf(esc, sizeof esc, "\\x%02x", *p);
        if (o + n >= cap) break;
        memcpy(out + o, keep ? (const char *)p : esc, n);
        o += n;
        p += keep ? keep : 1;
    }
    out[o] = '\0';
    return out;
}

void log_msg(enum sb_log_level level, const char *fmt, ...) {
    if (!log_enabled(level)) return;
    char text[LOG_LINE_MAX], line[4 * LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);

    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900, tm.tm_mon + 1,
            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000, level_names[level],
            log_escape(text, line, sizeof line));
}

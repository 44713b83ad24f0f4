/* head: finding and parsing a request head (see head.h). */
#include "head.h"

#include <string.h>
#include <strings.h>

size_t head_scan(struct head_scan *scan, const char *buf, size_t len) {
    for (size_t i = scan->pos; i < len; i++) {
        char c = buf[i];
        if (!scan->started) {
            if (c == '\r' || c == '\n') continue;
            scan->started = 1;
            scan->blank = 0;
        } else if (c == '\n') {
            if (scan->blank) {
                scan->pos = i + 1;
                return i + 1;
            }
            scan->blank = 1;
        } else if (c != '\r') {
            scan->blank = 0;
        }
    }
    scan->pos = len;
    return 0;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c) {
    if (c >= '0' && c <= '9') return 1;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s)) return 0;
    return 1;
}

/* Cuts the line starting at *at (it ends with LF before `end`, as head_scan made sure), dropping
 * its CR; returns it NUL-terminated and moves *at past it. */
static char *cut_line(char **at, char *end) {
    char *line = *at, *lf = memchr(line, '\n', (size_t)(end - line));
    if (!lf) return NULL;
    *at = lf + 1;
    if (lf > line && lf[-1] == '\r') lf--;
    *lf = '\0';
    return line;
}

/* METHOD SP target SP HTTP/1.x */
static int parse_request_line(char *line, struct head *h) {
    char *sp1 = strchr(line, ' ');
    if (!sp1) return -1;
    *sp1 = '\0';
    char *target = sp1 + 1, *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target || *target == '?') return -1; /* a target needs a path, if only "/" */
    *sp2 = '\0';
    const char *version = sp2 + 1;
    if (!is_token(line) || strncmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1') ||
        version[8])
        return -1;
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f) return -1;
    h->method = line;
    h->minor = version[7] - '0';
    h->path = target;
    char *q = strchr(target, '?');
    h->query = NULL;
    if (q) {
        *q = '\0';
        h->query = q + 1;
    }
    return 0;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* name ":" OWS value, in place; -1 when it is not one. Spaces after the value are kept, as CivetWeb
 * kept them: "Authorization: Bearer " is a Bearer token that is empty (auth.h), not no token at all. */
static int parse_field(char *line, struct head_field *f) {
    char *colon = strchr(line, ':');
    if (!colon) return -1;
    *colon = '\0';
    if (!is_token(line)) return -1;
    char *v = colon + 1;
    while (is_ows(*v)) v++;
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f) return -1;
    f->name = line;
    f->value = v;
    return 0;
}

enum head_result head_parse(char *buf, size_t len, struct head *h) {
    char *at = buf, *end = buf + len;
    while (at < end && (*at == '\r' || *at == '\n')) at++;
    if (memchr(at, '\0', (size_t)(end - at))) return HEAD_BAD;
    char *line = cut_line(&at, end);
    if (!line || parse_request_line(line, h) < 0) return HEAD_BAD;
    h->nfields = 0;
    while ((line = cut_line(&at, end)) != NULL && *line) {
        if (h->nfields == HEAD_FIELDS_MAX) return HEAD_TOO_MANY;
        if (parse_field(line, &h->fields[h->nfields]) < 0) return HEAD_BAD;
        h->nfields++;
    }
    return line ? HEAD_OK : HEAD_BAD;
}

const char *head_field(const struct head *h, const char *name) {
    for (size_t i = 0; i < h->nfields; i++)
        if (strcasecmp(h->fields[i].name, name) == 0) return h->fields[i].value;
    return NULL;
}

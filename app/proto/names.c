/* names: name rules and query-string reading (see names.h). */
#include "names.h"

#include <string.h>

#include "hex.h"

static int name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int name_valid(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len > SB_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i])) return 0;
    return 1;
}

int name_claimable(const char *name) {
    return name_valid(name) && strncmp(name, SB_ID_PREFIX, strlen(SB_ID_PREFIX)) != 0;
}

/* Decodes the value that runs from `v` to the next '&' or the end. */
static int decode_value(const char *v, char *out, size_t cap) {
    size_t n = 0;
    for (; *v && *v != '&'; v++) {
        int c = (unsigned char)*v;
        if (c == '+') c = ' ';
        else if (c == '%') {
            int hi = hex_value(v[1]), lo = hi < 0 ? -1 : hex_value(v[2]);
            if (lo < 0) return QUERY_BAD;
            c = hi * 16 + lo;
            v += 2;
        }
        if (c == 0 || n + 1 >= cap) return QUERY_BAD;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

int query_param(const char *query, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key);
    for (const char *p = query; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') return decode_value(p + klen + 1, out, cap);
    }
    return QUERY_ABSENT;
}

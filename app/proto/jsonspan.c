/* jsonspan: a member's value in a JSON object's text, by bytes (see jsonspan.h).
 *
 * Two scanners. The object around the member was accepted by cJSON, which is lenient (any byte up
 * to 0x20 is whitespace, numbers like 01 or -.5, raw control characters in strings), so it is
 * walked the way cJSON reads it. The value found is relayed byte for byte to other clients, whose
 * parsers are strict, so it is checked against RFC 8259 itself. */
#include "jsonspan.h"

#include <stdint.h>
#include <string.h>

#include "hex.h"

#define JSONSPAN_MAX_DEPTH 128 /* nesting the strict check follows; the router allows 64 */

/* cJSON's whitespace: every byte up to and including the space. */
static size_t lenient_ws(const char *s, size_t len, size_t i) {
    while (i < len && (unsigned char)s[i] <= 32) i++;
    return i;
}

static size_t strict_ws(const char *s, size_t len, size_t i) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* The index after the string whose opening quote is at i, skipping escapes unread; 0 if unclosed. */
static size_t string_end(const char *s, size_t len, size_t i) {
    for (i++; i < len; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return 0;
}

/* The index after the value at i, as cJSON accepted it, without checking it; 0 if it runs off the end. */
static size_t lenient_value_end(const char *s, size_t len, size_t i) {
    if (i >= len) return 0;
    if (s[i] == '"') return string_end(s, len, i);
    if (s[i] != '{' && s[i] != '[') {
        size_t start = i;
        while (i < len && (unsigned char)s[i] > 32 && s[i] != ',' && s[i] != '}' && s[i] != ']') i++;
        return i > start ? i : 0;
    }
    long depth = 0;
    while (i < len) {
        if (s[i] == '"') {
            if (!(i = string_end(s, len, i))) return 0;
            continue;
        }
        if (s[i] == '{' || s[i] == '[') depth++;
        else if ((s[i] == '}' || s[i] == ']') && --depth == 0) return i + 1;
        i++;
    }
    return 0;
}

/* The value of the 4 hex digits at s[i, i+4), or -1. */
static long hex4(const char *s, size_t len, size_t i) {
    if (i + 4 > len) return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int d = hex_value(s[i + k]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes the escape at raw[*i] (a backslash) into UTF-8 in out and advances *i past it; returns
 * the byte count, 0 for an escape cJSON would have refused. */
static size_t decode_escape(const char *raw, size_t n, size_t *i, unsigned char out[4]) {
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (*i + 1 >= n) return 0;
    const char *e = strchr(from, raw[*i + 1]);
    if (e && *e) {
        out[0] = (unsigned char)to[e - from];
        *i += 2;
        return 1;
    }
    if (raw[*i + 1] != 'u' || *i + 6 > n) return 0;
    long cp = hex4(raw, n, *i + 2);
    if (cp < 0) cp = 0; /* cJSON reads \u with a non-hex digit as U+0000 */
    if (cp >= 0xDC00 && cp <= 0xDFFF) return 0;
    *i += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = *i + 1 < n && raw[*i] == '\\' && raw[*i + 1] == 'u' ? hex4(raw, n, *i + 2) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) return 0;
        *i += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    if (cp < 0x80) return out[0] = (unsigned char)cp, 1;
    if (cp < 0x800) return out[0] = (unsigned char)(0xC0 | cp >> 6), out[1] = (unsigned char)(0x80 | (cp & 0x3F)), 2;
    size_t bytes = cp < 0x10000 ? 3 : 4;
    out[0] = (unsigned char)(bytes == 3 ? 0xE0 | cp >> 12 : 0xF0 | cp >> 18);
    for (size_t k = 1; k < bytes; k++) out[k] = (unsigned char)(0x80 | ((cp >> (6 * (bytes - 1 - k))) & 0x3F));
    return bytes;
}

/* 1 if the string body raw[0, n) decodes to `key` as C strings compare: up to a decoded NUL. */
static int key_equals(const char *raw, size_t n, const char *key) {
    size_t i = 0, k = 0;
    while (i < n) {
        unsigned char out[4];
        size_t olen = 1;
        if (raw[i] == '\\') olen = decode_escape(raw, n, &i, out);
        else out[0] = (unsigned char)raw[i++];
        if (olen == 0) return 0;
        if (out[0] == 0) break;
        for (size_t j = 0; j < olen; j++, k++)
            if ((unsigned char)key[k] != out[j]) return 0;
    }
    return key[k] == '\0';
}

/* RFC 8259 string at s[i] (the opening quote): the index after it, or 0. UTF-8 was checked before. */
static size_t strict_string(const char *s, size_t len, size_t i) {
    for (i++; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') return i + 1;
        if (c < 0x20) return 0;
        if (c != '\\') continue;
        if (i + 1 >= len) return 0;
        if (s[i + 1] == 'u') {
            /* A surrogate only as a high-low pair: a lone one is no character (cJSON refuses it too). */
            long cp = hex4(s, len, i + 2);
            if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return 0;
            i += 5;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                long lo = i + 2 < len && s[i + 1] == '\\' && s[i + 2] == 'u' ? hex4(s, len, i + 3) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                i += 6;
            }
        } else if (strchr("\"\\/bfnrt", s[i + 1]) && s[i + 1]) i++;
        else return 0;
    }
    return 0;
}

static size_t digits(const char *s, size_t len, size_t i) {
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    return i;
}

/* RFC 8259 number at s[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; the index after it, or 0. */
static size_t strict_number(const char *s, size_t len, size_t i) {
    if (i < len && s[i] == '-') i++;
    if (i >= len || s[i] < '0' || s[i] > '9') return 0;
    i = s[i] == '0' ? i + 1 : digits(s, len, i);
    if (i < len && s[i] == '.') {
        size_t j = digits(s, len, i + 1);
        if (j == i + 1) return 0;
        i = j;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        if (i + 1 < len && (s[i + 1] == '+' || s[i + 1] == '-')) i++;
        size_t j = digits(s, len, i + 1);
        if (j == i + 1) return 0;
        i = j;
    }
    return i;
}

/* A string, number or literal at s[i]: the index after it, or 0. */
static size_t strict_scalar(const char *s, size_t len, size_t i) {
    static const char *const literals[] = {"true", "false", "null"};
    if (s[i] == '"') return strict_string(s, len, i);
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(literals[k]);
        if (i + n <= len && memcmp(s + i, literals[k], n) == 0) return i + n;
    }
    return strict_number(s, len, i);
}

/* RFC 8259 value at s[i]: the index after it (no trailing whitespace), or 0. A state machine over
 * an explicit stack of open containers (1 = object), so that depth costs no C stack. *top (when not
 * NULL) counts the values directly inside the outermost container: an object's members. */
static size_t strict_value(const char *s, size_t len, size_t i, size_t *top) {
    uint8_t stack[JSONSPAN_MAX_DEPTH];
    size_t depth = 0;
    enum { VALUE, AFTER_VALUE, KEY } state = VALUE;
    for (;;) {
        i = strict_ws(s, len, i);
        if (i >= len) return 0;
        switch (state) {
        case VALUE:
            if (depth == 1 && top) (*top)++;
            if (s[i] == '{' || s[i] == '[') {
                if (depth == JSONSPAN_MAX_DEPTH) return 0;
                stack[depth++] = s[i] == '{';
                i = strict_ws(s, len, i + 1);
                if (i < len && s[i] == (stack[depth - 1] ? '}' : ']')) {
                    if (--depth == 0) return i + 1;
                    i++;
                    state = AFTER_VALUE;
                } else state = stack[depth - 1] ? KEY : VALUE;
                break;
            }
            if (!(i = strict_scalar(s, len, i))) return 0;
            if (depth == 0) return i;
            state = AFTER_VALUE;
            break;
        case KEY:
            if (s[i] != '"' || !(i = strict_string(s, len, i))) return 0;
            i = strict_ws(s, len, i);
            if (i >= len || s[i] != ':') return 0;
            i++;
            state = VALUE;
            break;
        case AFTER_VALUE: /* inside a container: depth > 0 */
            if (s[i] == ',') {
                i++;
                state = stack[depth - 1] ? KEY : VALUE;
            } else if (s[i] == (stack[depth - 1] ? '}' : ']')) {
                if (--depth == 0) return i + 1;
                i++;
            } else return 0;
            break;
        }
    }
}

int jsonspan_member(const char *text, size_t len, const char *key, const char **value, size_t *value_len) {
    size_t i = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* cJSON skips a BOM */
    i = lenient_ws(text, len, i);
    if (i >= len || text[i] != '{') return 0;
    for (i++;;) {
        i = lenient_ws(text, len, i);
        if (i >= len || text[i] != '"') return 0;
        size_t key_at = i + 1;
        if (!(i = string_end(text, len, i))) return 0;
        size_t key_len = i - 1 - key_at;
        i = lenient_ws(text, len, i);
        if (i >= len || text[i] != ':') return 0;
        i = lenient_ws(text, len, i + 1);
        if (key_equals(text + key_at, key_len, key)) {
            size_t end = strict_value(text, len, i, NULL), next = end ? lenient_ws(text, len, end) : 0;
            if (!end || next >= len || (text[next] != ',' && text[next] != '}')) return -1; /* 01: "0", then 1 */
            *value = text + i;
            *value_len = end - i;
            return 1;
        }
        if (!(i = lenient_value_end(text, len, i))) return 0;
        i = lenient_ws(text, len, i);
        if (i >= len || text[i] != ',') return 0;
        i++;
    }
}

int jsonspan_strict(const char *text, size_t len, size_t *members) {
    size_t top = 0, end = strict_value(text, len, 0, &top);
    if (!end || strict_ws(text, len, end) != len) return 0;
    if (members) *members = top;
    return 1;
}

static int escaped_nul(const char *s, size_t left) {
    return left >= 5 && s[0] == 'u' && memcmp(s + 1, "0000", 4) == 0;
}

int jsonspan_shape_ok(const char *text, size_t len, int max_depth, int flags) {
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\' && (flags & JSONSPAN_NO_ESCAPED_NUL) && escaped_nul(text + i + 1, len - i - 1)) return 0;
            if (ch == '\\') i++;
            else if (ch == '"') in_string = 0;
        } else if (ch == '"') in_string = 1;
        else if ((ch == '[' || ch == '{') && ++depth > max_depth) return 0;
        else if (ch == ']' || ch == '}') depth--;
    }
    return 1;
}

/* fuzz_names: query_param and the name rules (app/proto/names.c), against a reference decoder.
 *
 * Input: byte 0 picks the output capacity (1..80), byte 1 picks the key ("user", "u", "" or "a=b"),
 * the rest is the query string (cut at its first NUL, as a C string would be). query_param must agree
 * with the straightforward decoder below on the result and the decoded bytes, never write past `cap`
 * (the buffer is exactly that size), and the name predicates must agree with their definition. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "names.h"

static int hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes one value (up to '&' or the end) into out; QUERY_BAD as query_param defines it. */
static int ref_decode(const char *v, char *out, size_t cap) {
    size_t n = 0;
    while (*v && *v != '&') {
        int c = (unsigned char)*v++;
        if (c == '+') c = ' ';
        else if (c == '%') {
            if (hex(v[0]) < 0 || hex(v[1]) < 0) return QUERY_BAD;
            c = hex(v[0]) * 16 + hex(v[1]);
            v += 2;
        }
        if (c == 0 || n + 1 >= cap) return QUERY_BAD;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

static int ref_query(const char *q, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key);
    for (const char *seg = q;; seg++) {
        if (strncmp(seg, key, klen) == 0 && seg[klen] == '=') return ref_decode(seg + klen + 1, out, cap);
        seg = strchr(seg, '&');
        if (!seg) return QUERY_ABSENT;
    }
}

static int ref_name_valid(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > SB_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", s[i])) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const keys[] = {"user", "u", "", "a=b"};
    if (size < 2) return 0;
    size_t cap = 1 + data[0] % 80;
    const char *key = keys[data[1] % 4];
    char *q = malloc(size - 1);
    memcpy(q, data + 2, size - 2);
    q[size - 2] = '\0';
    char *out = malloc(cap), *want = malloc(cap);
    int got = query_param(q, key, out, cap), expect = ref_query(q, key, want, cap);
    FUZZ_CHECK(got == expect);
    if (got >= 0) {
        FUZZ_CHECK((size_t)got < cap && strlen(out) == (size_t)got && memcmp(out, want, (size_t)got) == 0);
        FUZZ_CHECK(name_valid(out) == ref_name_valid(out));
    }
    FUZZ_CHECK(name_valid(q) == ref_name_valid(q));
    FUZZ_CHECK(name_claimable(q) == (ref_name_valid(q) && strncmp(q, "conn-", 5) != 0));
    free(q);
    free(out);
    free(want);
    return 0;
}

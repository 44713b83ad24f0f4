/* fuzz_utf8: the incremental UTF-8 validator (app/io/utf8.c) against an independent reference.
 *
 * Input: 2 bytes choose two split points, the rest is the text. The text is fed in three chunks cut
 * there, and byte by byte, and must get the same verdict as utf8_valid of the whole and as the
 * reference below, which decodes code points arithmetically instead of by lead-byte tables. Byte by
 * byte, the first rejection must come exactly at the first byte that no valid text can continue. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "utf8.h"

enum { REF_BAD, REF_COMPLETE, REF_PREFIX };

/* Could a sequence of `n` continuation bytes after `lead`, `have` of them known (value `cp` so far),
 * still decode to a valid code point? */
static int ref_reachable(uint32_t cp, int have, int n) {
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    static const uint32_t max[] = {0, 0x7FF, 0xFFFF, 0x10FFFF};
    int missing = n - have;
    uint32_t lo = cp << (6 * missing), hi = lo | ((1u << (6 * missing)) - 1);
    if (lo < min[n]) lo = min[n];
    if (hi > max[n]) hi = max[n];
    if (lo > hi) return 0;
    return !(lo >= 0xD800 && hi <= 0xDFFF); /* not only surrogates */
}

static int ref_status(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        int n = b < 0x80 ? 0 : b < 0xC0 ? -1 : b < 0xE0 ? 1 : b < 0xF0 ? 2 : b < 0xF8 ? 3 : -1;
        if (n < 0) return REF_BAD;
        uint32_t cp = n == 0 ? b : b & (0x3F >> n);
        int have = 0;
        for (i++; have < n && i < len; have++, i++) {
            if ((s[i] & 0xC0) != 0x80) return REF_BAD;
            cp = cp << 6 | (s[i] & 0x3F);
        }
        if (n > 0 && !ref_reachable(cp, have, n)) return REF_BAD;
        if (have < n) return REF_PREFIX;
    }
    return REF_COMPLETE;
}

static void check_chunks(const uint8_t *t, size_t len, size_t c1, size_t c2, int want) {
    struct utf8_state st;
    utf8_init(&st);
    int ok = utf8_feed(&st, t, c1) == 0 && utf8_feed(&st, t + c1, c2 - c1) == 0 &&
             utf8_feed(&st, t + c2, len - c2) == 0 && utf8_complete(&st);
    FUZZ_CHECK(ok == (want == REF_COMPLETE));
}

static void check_bytewise(const uint8_t *t, size_t len) {
    struct utf8_state st;
    utf8_init(&st);
    for (size_t i = 0; i < len; i++) {
        int fed = utf8_feed(&st, t + i, 1);
        int ref = ref_status(t, i + 1);
        FUZZ_CHECK((fed == 0) == (ref != REF_BAD));
        if (fed < 0) return;
        FUZZ_CHECK(utf8_complete(&st) == (ref == REF_COMPLETE));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t len = size - 2;
    uint8_t *t = malloc(len ? len : 1);
    memcpy(t, data + 2, len);
    size_t c1 = len ? data[0] % (len + 1) : 0, c2 = len ? data[1] % (len + 1) : 0;
    if (c1 > c2) {
        size_t x = c1;
        c1 = c2, c2 = x;
    }
    int want = ref_status(t, len);
    FUZZ_CHECK(utf8_valid(t, len) == (want == REF_COMPLETE));
    check_chunks(t, len, c1, c2, want);
    check_bytewise(t, len);
    free(t);
    return 0;
}

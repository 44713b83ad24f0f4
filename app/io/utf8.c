/* utf8: incremental UTF-8 validator (see utf8.h).
 *
 * The lead byte fixes how many continuation bytes follow and the range of the first of them; that
 * range is what excludes overlongs (E0, F0), surrogates (ED) and values past U+10FFFF (F4). */
#include "utf8.h"

void utf8_init(struct utf8_state *st) {
    st->need = 0;
    st->lo = 0x80;
    st->hi = 0xBF;
}

/* Sets up the state for the continuation bytes after `lead`; -1 if `lead` cannot start a code point. */
static int utf8_lead(struct utf8_state *st, uint8_t lead) {
    st->lo = 0x80;
    st->hi = 0xBF;
    if (lead < 0x80) st->need = 0;
    else if (lead >= 0xC2 && lead <= 0xDF) st->need = 1;
    else if (lead >= 0xE0 && lead <= 0xEF) {
        st->need = 2;
        if (lead == 0xE0) st->lo = 0xA0;
        if (lead == 0xED) st->hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        st->need = 3;
        if (lead == 0xF0) st->lo = 0x90;
        if (lead == 0xF4) st->hi = 0x8F;
    } else return -1;
    return 0;
}

int utf8_feed(struct utf8_state *st, const uint8_t *bytes, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint8_t b = bytes[i];
        if (st->need == 0) {
            if (b < 0x80) continue;
            if (utf8_lead(st, b) < 0) return -1;
            continue;
        }
        if (b < st->lo || b > st->hi) return -1;
        st->need--;
        st->lo = 0x80;
        st->hi = 0xBF;
    }
    return 0;
}

int utf8_complete(const struct utf8_state *st) { return st->need == 0; }

int utf8_valid(const uint8_t *bytes, size_t len) {
    struct utf8_state st;
    utf8_init(&st);
    return utf8_feed(&st, bytes, len) == 0 && utf8_complete(&st);
}

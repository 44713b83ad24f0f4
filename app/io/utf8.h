/* utf8: incremental UTF-8 validation (RFC 3629), for text messages that arrive in fragments.
 *
 * A text message may be split anywhere, even inside a code point, so the validator carries its state
 * from one chunk to the next. It rejects overlongs, surrogates and code points above U+10FFFF at the
 * first byte that proves the input invalid, so a bad message is refused before it is complete. */
#ifndef SB_UTF8_H
#define SB_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* State between chunks. Zero-initialise (or utf8_init) before the first chunk. */
struct utf8_state {
    uint8_t need;  /* continuation bytes still expected in the current code point */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
};

void utf8_init(struct utf8_state *st);
/* Feeds a chunk. Returns 0 while the input so far can still be valid, -1 once it cannot. */
int utf8_feed(struct utf8_state *st, const uint8_t *bytes, size_t len);
/* True when the input fed so far ends on a code point boundary (a complete message is valid). */
int utf8_complete(const struct utf8_state *st);
/* One-shot check of a whole buffer: 1 if valid UTF-8, else 0. */
int utf8_valid(const uint8_t *bytes, size_t len);

#endif

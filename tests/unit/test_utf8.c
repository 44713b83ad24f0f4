/* test_utf8: the incremental UTF-8 validator (app/io/utf8.c).
 *
 * Text messages arrive in fragments split at arbitrary bytes, and RFC 6455 wants a bad one refused
 * (1007) as soon as it is provably bad. So beside whole-buffer checks of the classic traps (overlongs,
 * surrogates, > U+10FFFF, F5..FF, stray continuations, truncation), every multi-byte sample is also
 * fed in two and three pieces at every split point, and must give the same verdict as one piece. */
#include <stdint.h>

#include "check.h"
#include "utf8.h"

struct sample {
    const char *bytes;
    size_t len;
    int valid;
};

#define S(lit, v) {lit, sizeof lit - 1, v}

static const struct sample samples[] = {
    S("", 1),
    S("plain ascii", 1),
    S("\x00", 1),                   /* NUL is a valid code point */
    S("\x7F", 1),
    S("\xC2\x80", 1),               /* U+0080, smallest two-byte */
    S("\xDF\xBF", 1),               /* U+07FF */
    S("\xE0\xA0\x80", 1),           /* U+0800, smallest three-byte */
    S("\xED\x9F\xBF", 1),           /* U+D7FF, just below the surrogates */
    S("\xEE\x80\x80", 1),           /* U+E000, just above them */
    S("\xEF\xBF\xBF", 1),           /* U+FFFF */
    S("\xF0\x90\x80\x80", 1),       /* U+10000, smallest four-byte */
    S("\xF4\x8F\xBF\xBF", 1),       /* U+10FFFF, the last code point */
    S("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80!", 1), /* "héllo € 😀!" */
    S("\xC0\x80", 0),               /* overlong NUL */
    S("\xC1\xBF", 0),               /* overlong U+007F */
    S("\xE0\x80\x80", 0),           /* overlong three-byte */
    S("\xE0\x9F\xBF", 0),           /* overlong U+07FF */
    S("\xF0\x80\x80\x80", 0),       /* overlong four-byte */
    S("\xF0\x8F\xBF\xBF", 0),       /* overlong U+FFFF */
    S("\xED\xA0\x80", 0),           /* U+D800, a surrogate */
    S("\xED\xBF\xBF", 0),           /* U+DFFF */
    S("\xF4\x90\x80\x80", 0),       /* U+110000 */
    S("\xF5\x80\x80\x80", 0),       /* F5 can never start a sequence */
    S("\xF8\x88\x80\x80\x80", 0),   /* old five-byte form */
    S("\xFE", 0),
    S("\xFF", 0),
    S("\x80", 0),                   /* a lone continuation */
    S("a\xBF", 0),
    S("\xC2", 0),                   /* truncated two-byte */
    S("\xE2\x82", 0),               /* truncated three-byte */
    S("\xF0\x9F\x98", 0),           /* truncated four-byte */
    S("\xC2\x41", 0),               /* lead followed by ASCII */
    S("\xE2\x28\xA1", 0),
    S("\xC3\xA9\xC3", 0),           /* good, then truncated */
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

static void test_whole(void) {
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        if (!CHECK_EQ_INT(utf8_valid((const uint8_t *)s->bytes, s->len), s->valid))
            fprintf(stderr, "    sample %zu\n", i);
    }
}

/* Feeds bytes in pieces cut at `cut1` and `cut2`; returns the verdict a whole feed would give. */
static int feed_split(const struct sample *s, size_t cut1, size_t cut2) {
    struct utf8_state st;
    const uint8_t *b = (const uint8_t *)s->bytes;
    utf8_init(&st);
    if (utf8_feed(&st, b, cut1) < 0) return 0;
    if (utf8_feed(&st, b + cut1, cut2 - cut1) < 0) return 0;
    if (utf8_feed(&st, b + cut2, s->len - cut2) < 0) return 0;
    return utf8_complete(&st);
}

static void test_split_everywhere(void) {
    for (size_t i = 0; i < NSAMPLES; i++) {
        const struct sample *s = &samples[i];
        int wrong = 0;
        for (size_t a = 0; a <= s->len; a++)
            for (size_t b = a; b <= s->len; b++) wrong += feed_split(s, a, b) != s->valid;
        if (!CHECK_EQ_INT(wrong, 0)) fprintf(stderr, "    sample %zu\n", i);
    }
}

/* A zero-initialised state is as good as utf8_init (the header allows either). */
static void test_zero_state(void) {
    struct utf8_state st = {0};
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xE2\x82", 2), 0);
    CHECK(!utf8_complete(&st));
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xAC", 1), 0);
    CHECK(utf8_complete(&st));
}

/* The first byte that proves the input bad fails the feed: the rest need not arrive. */
static void test_early_reject(void) {
    struct utf8_state st;
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"ok \xED", 4), 0);
    CHECK(!utf8_complete(&st));
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xA0", 1), -1); /* surrogate known at its 2nd byte */
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xF4", 1), 0);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\x90", 1), -1);
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xE0", 1), 0);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\x80", 1), -1);
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xC0", 1), -1);
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xF5", 1), -1);
}

/* An empty chunk changes nothing, even in the middle of a code point. */
static void test_empty_chunks(void) {
    struct utf8_state st;
    utf8_init(&st);
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"", 0), 0);
    CHECK(utf8_complete(&st));
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\xF0\x9F", 2), 0);
    CHECK_EQ_INT(utf8_feed(&st, NULL, 0), 0);
    CHECK(!utf8_complete(&st));
    CHECK_EQ_INT(utf8_feed(&st, (const uint8_t *)"\x98\x80", 2), 0);
    CHECK(utf8_complete(&st));
}

/* Every two-byte lead/continuation pair against the RFC 3629 table. */
static void test_all_pairs(void) {
    int wrong = 0;
    for (int lead = 0x80; lead <= 0xFF; lead++) {
        for (int cont = 0; cont <= 0xFF; cont++) {
            uint8_t b[2] = {(uint8_t)lead, (uint8_t)cont};
            int expect = lead >= 0xC2 && lead <= 0xDF && cont >= 0x80 && cont <= 0xBF;
            wrong += utf8_valid(b, 2) != expect;
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

int main(void) {
    test_whole();
    test_split_everywhere();
    test_zero_state();
    test_early_reject();
    test_empty_chunks();
    test_all_pairs();
    return check_done();
}

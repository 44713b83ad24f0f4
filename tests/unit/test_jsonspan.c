/* test_jsonspan: finding a member's value by bytes (app/proto/jsonspan.c).
 *
 * The span is what a delivery carries, so each case checks the exact bytes found: every kind of
 * value, nesting, whitespace around and inside, the first of duplicate keys, keys written with
 * escapes (compared decoded, as cJSON does), the lenient text cJSON accepts around the member, the
 * values that are not RFC 8259 JSON (-1), and every prefix of a message (never a read past it:
 * each text is in a buffer of exactly its length, so ASan sees one). */
#include <stdlib.h>

#include "check.h"
#include "jsonspan.h"

/* jsonspan_member over an exact-length copy of text; the span as a string in out (or "" if none). */
static int span_of(const char *text, size_t len, const char *key, char *out, size_t cap) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    const char *v = NULL;
    size_t vlen = 0;
    int r = jsonspan_member(copy, len, key, &v, &vlen);
    out[0] = '\0';
    if (r == 1) {
        CHECK(v >= copy && v + vlen <= copy + len);
        snprintf(out, cap, "%.*s", (int)vlen, v);
    }
    free(copy);
    return r;
}

/* The result for text, and when it is 1 the span, checked and reported at the caller's line. */
static void expect_at(const char *file, int line, const char *text, const char *key, int want, const char *span) {
    char got[256];
    check_int(span_of(text, strlen(text), key, got, sizeof got), want, file, line, text, "the expected result");
    if (want == 1) check_str(got, span, file, line, "the span found", "the span expected");
}

#define EXPECT_SPAN(text, key, span) expect_at(__FILE__, __LINE__, (text), (key), 1, (span))
#define EXPECT_RESULT(text, key, want) expect_at(__FILE__, __LINE__, (text), (key), (want), NULL)

static void test_value_kinds(void) {
    EXPECT_SPAN("{\"data\":\"hi\"}", "data", "\"hi\"");
    EXPECT_SPAN("{\"data\":12345678901234567890}", "data", "12345678901234567890");
    EXPECT_SPAN("{\"data\":9007199254740993,\"x\":1}", "data", "9007199254740993");
    EXPECT_SPAN("{\"data\":1e400}", "data", "1e400");
    EXPECT_SPAN("{\"data\":-0.5E-7}", "data", "-0.5E-7");
    EXPECT_SPAN("{\"data\":0}", "data", "0");
    EXPECT_SPAN("{\"data\":true}", "data", "true");
    EXPECT_SPAN("{\"data\":false}", "data", "false");
    EXPECT_SPAN("{\"data\":null}", "data", "null");
    EXPECT_SPAN("{\"data\":[]}", "data", "[]");
    EXPECT_SPAN("{\"data\":{}}", "data", "{}");
    EXPECT_SPAN("{\"data\":[1, 2 ,{\"a\" : null}]}", "data", "[1, 2 ,{\"a\" : null}]");
    EXPECT_SPAN("{\"data\":{\"s\":\"}]\\\"\",\"n\":[[[]]]},\"to\":\"bob\"}", "data",
                "{\"s\":\"}]\\\"\",\"n\":[[[]]]}");
    EXPECT_SPAN("{\"data\":\"\\u00e9\\ud83d\\ude00 \\\\ \\/ \\b\\f\\n\\r\\t\"}", "data",
                "\"\\u00e9\\ud83d\\ude00 \\\\ \\/ \\b\\f\\n\\r\\t\"");
    EXPECT_SPAN("{\"data\":\"\xc3\xa9\xf0\x9f\x98\x80\"}", "data", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
}

static void test_where_the_member_is(void) {
    EXPECT_SPAN("{\"type\":\"send\",\"to\":[\"a\",\"b\"],\"data\":1}", "data", "1");
    EXPECT_SPAN("{\"type\":\"send\",\"to\":\"bob\",\"data\":\"x\"}", "to", "\"bob\"");
    EXPECT_SPAN("  {  \"data\"  :  [ 1 ]  ,\"x\":2 }  ", "data", "[ 1 ]");
    EXPECT_SPAN("{\"x\":{\"data\":1},\"data\":2}", "data", "2");   /* a nested key is not the member */
    EXPECT_SPAN("{\"x\":\"\\\"data\\\":3\",\"data\":4}", "data", "4"); /* nor is one inside a string */
    EXPECT_SPAN("{\"data\":1,\"data\":2}", "data", "1");             /* the first, as cJSON */
    EXPECT_SPAN("{\"d\\u0061ta\":5}", "data", "5");                  /* keys compare decoded */
    EXPECT_SPAN("{\"data\\u0000junk\":6}", "data", "6");             /* ... as C strings */
    EXPECT_SPAN("{\"data\\uzz00junk\":6}", "data", "6");             /* cJSON: bad hex is U+0000 */
    EXPECT_SPAN("{\"\\u00e9\":7}", "\xc3\xa9", "7");
    EXPECT_SPAN("{\"\\ud83d\\ude00\":8}", "\xf0\x9f\x98\x80", "8");
    EXPECT_SPAN("\xEF\xBB\xBF{\"data\":9}", "data", "9");             /* cJSON skips a BOM */
    EXPECT_SPAN("\x01{\x02\"id\":01,\"x\":-.5,\"data\"\x1f:\x1f" "1}", "data", "1"); /* cJSON's leniency around it */
    EXPECT_RESULT("{\"datum\":1}", "data", 0);
    EXPECT_RESULT("{\"Data\":1}", "data", 0);
    EXPECT_RESULT("{\"dat\":1}", "data", 0);
    EXPECT_RESULT("{}", "data", 0);
    EXPECT_RESULT("[{\"data\":1}]", "data", 0);
    EXPECT_RESULT("\"data\"", "data", 0);
    EXPECT_RESULT("", "data", 0);
}

/* What cJSON accepts but RFC 8259 does not: relaying it would break strict clients. */
static void test_not_strict(void) {
    static const char *const values[] = {
        "01", "-.5", "1.", "1e", "1e+", "+1", ".5", "-", "0x10", "\"a\x01z\"", "\"\\x\"", "\"\\u12\"",
        "[1,]", "[,1]", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{1:2}", "[1 2]", "tru", "nul", "[\x01]", "\x7f",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "{\"data\":%s}", values[i]);
        EXPECT_RESULT(text, "data", -1);
    }
}

/* The strict check follows nesting with an explicit stack: deep is fine up to its limit, past it
 * the value is refused, and nothing deeper touches the C stack. */
static void test_depth(void) {
    char *text = malloc(20000);
    for (size_t depth = 100; depth <= 5000; depth += 4900) {
        size_t n = (size_t)sprintf(text, "{\"data\":");
        for (size_t i = 0; i < depth; i++) text[n++] = '[';
        for (size_t i = 0; i < depth; i++) text[n++] = ']';
        text[n++] = '}';
        char out[256];
        CHECK_EQ_INT(span_of(text, n, "data", out, sizeof out), depth == 100 ? 1 : -1);
    }
    free(text);
}

static int shape(const char *text, int max_depth, int flags) {
    return jsonspan_shape_ok(text, strlen(text), max_depth, flags);
}

/* The shape check before cJSON: brackets inside strings are not nesting, escaped quotes do not end a
 * string, and \u0000 is refused only when asked. */
static void test_shape(void) {
    CHECK(shape("[[[]]]", 3, 0));
    CHECK(!shape("[[[[]]]]", 3, 0));
    CHECK(shape("\"[[[[\"", 1, 0));
    CHECK(shape("\"\\\"[[[[\"", 1, 0));
    CHECK(shape("{\"sub\":\"al\\u0000x\"}", 4, 0));
    CHECK(!shape("{\"sub\":\"al\\u0000x\"}", 4, JSONSPAN_NO_ESCAPED_NUL));
    CHECK(shape("{\"sub\":\"al\\\\u0000x\"}", 4, JSONSPAN_NO_ESCAPED_NUL));
    CHECK(shape("\"\\", 1, JSONSPAN_NO_ESCAPED_NUL));
}

/* Every prefix of a message: no read past the end, and a value not yet followed by , or } is never found. */
/* jsonspan_strict: a whole text as one RFC 8259 value, with the outermost container's member count. */
static int strict(const char *text, size_t *members) { return jsonspan_strict(text, strlen(text), members); }

static void test_strict_text(void) {
    size_t n = 99;
    CHECK(strict(" {\"a\":1, \"b\":{\"c\":[1,2,3]},\"d\":[]}\r\n", &n) && n == 3);
    CHECK(strict("{}", &n) && n == 0);
    CHECK(strict("[1,[2,3],{\"x\":4}]", &n) && n == 3);
    CHECK(strict("\"\\u00e9\"", &n) && n == 0);
    CHECK(strict("{\"a\":1}", NULL));
    CHECK(!strict("{\"a\":\"\\uZZZZ\"}", &n)); /* cJSON reads it as U+0000 */
    CHECK(!strict("{\"a\":\"\\u00\"}", &n));
    CHECK(!strict("{\"a\":01}", &n));
    CHECK(!strict("{\"a\":1} x", &n));
    CHECK(!strict("{\"a\":1}{}", &n));
    CHECK(!strict("\x01{\"a\":1}", &n)); /* cJSON's whitespace, not RFC 8259's */
    CHECK(!strict("{\"a\":\"t\tb\"}", &n));
    CHECK(!strict("", &n));
    CHECK(!strict("{\"a\" 1}", &n));
}

static void test_prefixes(void) {
    const char *full = "{\"type\":\"send\",\"d\\u0061ta\":{\"k\":[1,\"x\\\"y\",null]},\"to\":\"bob\"}";
    size_t len = strlen(full), value_end = strlen("{\"type\":\"send\",\"d\\u0061ta\":{\"k\":[1,\"x\\\"y\",null]}");
    for (size_t n = 0; n <= len; n++) {
        char out[256];
        int r = span_of(full, n, "data", out, sizeof out);
        CHECK(n > value_end ? r == 1 : r != 1); /* found once the comma after it is there */
        if (r == 1) CHECK_EQ_STR(out, "{\"k\":[1,\"x\\\"y\",null]}");
    }
}

int main(void) {
    test_value_kinds();
    test_where_the_member_is();
    test_not_strict();
    test_depth();
    test_shape();
    test_prefixes();
    test_strict_text();
    return check_done();
}

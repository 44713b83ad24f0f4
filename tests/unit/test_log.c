/* test_log: escaping of log lines (app/core/log.c): what a client sent cannot end a line, forge another,
 * or reach a terminal as an escape sequence; UTF-8 text stays readable; a cut never splits an escape. */
#include "check.h"

#include "log.h"

static const char *esc(const char *in, char *out, size_t cap) { return log_escape(in, out, cap); }

int main(void) {
    char out[256];
    CHECK_EQ_STR(esc("http GET /index.html 200 127.0.0.1", out, sizeof out), "http GET /index.html 200 127.0.0.1");
    CHECK_EQ_STR(esc("/x\r\n2026-12-07T11:00:00.000Z info  ws open conn-99 user=admin", out, sizeof out),
                 "/x\\r\\n2026-12-07T11:00:00.000Z info  ws open conn-99 user=admin");
    CHECK_EQ_STR(esc("a\tb\\c", out, sizeof out), "a\\tb\\\\c");
    CHECK_EQ_STR(esc("\x1b[2J\x01\x7f", out, sizeof out), "\\x1b[2J\\x01\\x7f");
    /* UTF-8 as it is; C1 controls (U+009B is a CSI) and bytes that are not UTF-8 escaped byte by byte */
    CHECK_EQ_STR(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", out, sizeof out), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK_EQ_STR(esc("\xc2\x9b" "31m", out, sizeof out), "\\xc2\\x9b" "31m");
    CHECK_EQ_STR(esc("\xc2\xa0", out, sizeof out), "\xc2\xa0");
    CHECK_EQ_STR(esc("\xff\xc3(\xed\xa0\x80", out, sizeof out), "\\xff\\xc3(\\xed\\xa0\\x80");
    CHECK_EQ_STR(esc("end\xe2\x82", out, sizeof out), "end\\xe2\\x82");
    CHECK_EQ_STR(esc("", out, sizeof out), "");
    /* a cut stops before an escape that would not fit whole */
    char small[6];
    CHECK_EQ_STR(esc("ab\ncd", small, sizeof small), "ab\\nc");
    CHECK_EQ_STR(esc("abc\x1b", small, sizeof small), "abc");
    CHECK_EQ_STR(esc("abcd\xc3\xa9", small, sizeof small), "abcd");
    char one[1];
    CHECK_EQ_STR(esc("x", one, sizeof one), "");
    return check_done();
}

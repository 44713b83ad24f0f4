/* test_redact: tokens out of log lines (app/core/redact.c): query parameters, Bearer credentials, several
 * in one line, other text untouched, and a buffer too small for the result (cut, terminated). */
#include "check.h"

#include "redact.h"

static const char *r(const char *in, char *out, size_t cap) { return redact_secrets(in, out, cap); }

int main(void) {
    char out[256];
    CHECK_EQ_STR(r("/ws?user=alice", out, sizeof out), "/ws?user=alice");
    CHECK_EQ_STR(r("/ws?token=eyJ.abc.def&user=bob", out, sizeof out), "/ws?token=" REDACT_MARK "&user=bob");
    CHECK_EQ_STR(r("/ws?user=bob&token=eyJ.abc.def", out, sizeof out), "/ws?user=bob&token=" REDACT_MARK);
    CHECK_EQ_STR(r("/x?access_token=a.b.c&id_token=d", out, sizeof out),
                 "/x?access_token=" REDACT_MARK "&id_token=" REDACT_MARK);
    CHECK_EQ_STR(r("/ws?TOKEN=abc", out, sizeof out), "/ws?TOKEN=" REDACT_MARK);
    CHECK_EQ_STR(r("Authorization: Bearer   eyJ.abc.def\r\n", out, sizeof out), "Authorization: Bearer " REDACT_MARK "\r\n");
    CHECK_EQ_STR(r("bad request \"GET /ws?token=x.y.z HTTP/1.1\"", out, sizeof out),
                 "bad request \"GET /ws?token=" REDACT_MARK " HTTP/1.1\"");
    CHECK_EQ_STR(r("", out, sizeof out), "");
    char small[12];
    CHECK_EQ_STR(r("/ws?token=secretsecret", small, sizeof small), "/ws?token=[");
    CHECK_EQ_STR(r("abcdefghijklmnop", small, sizeof small), "abcdefghijk");
    char one[1];
    CHECK_EQ_STR(r("token=x", one, sizeof one), "");
    return check_done();
}

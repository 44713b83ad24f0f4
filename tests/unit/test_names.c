/* test_names: user/room name rules and ?user= reading (app/proto/names.c).
 *
 * Names end up in JSON, URLs and log lines, and the "conn-" prefix is what keeps one connection from
 * claiming another's anonymous identity, so the edges matter: 64 vs 65 characters, the empty name,
 * every character outside the alphabet, and query strings that are malformed or try to smuggle a
 * NUL, an overlong value or a look-alike key past query_param. */
#include "check.h"
#include "names.h"

static void fill(char *buf, char c, size_t n) {
    memset(buf, c, n);
    buf[n] = '\0';
}

static void test_name_length(void) {
    char name[SB_NAME_MAX + 2];
    CHECK(!name_valid(""));
    CHECK(name_valid("a"));
    fill(name, 'x', SB_NAME_MAX);
    CHECK(name_valid(name));
    CHECK(name_claimable(name));
    fill(name, 'x', SB_NAME_MAX + 1);
    CHECK(!name_valid(name));
    CHECK(!name_claimable(name));
}

static void test_name_charset(void) {
    CHECK(name_valid("Az09_.-"));
    CHECK(name_valid("..."));
    CHECK(name_valid("-"));
    int wrong = 0;
    for (int c = 1; c < 256; c++) {
        char name[4] = {'a', (char)c, 'b', '\0'};
        int allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.' || c == '-';
        if (name_valid(name) != allowed) {
            wrong++;
            fprintf(stderr, "    char 0x%02x\n", c);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(!name_valid("no spaces"));
    CHECK(!name_valid("caf\xC3\xA9")); /* non-ASCII */
    CHECK(!name_valid("a/b"));
}

static void test_claimable(void) {
    CHECK(name_valid("conn-5"));
    CHECK(!name_claimable("conn-5"));
    CHECK(!name_claimable("conn-"));
    CHECK(!name_claimable("conn-alice"));
    CHECK(name_claimable("conn"));
    CHECK(name_claimable("conn5"));
    CHECK(name_claimable("Conn-5")); /* the reserved prefix is the exact lower-case one ids use */
    CHECK(name_claimable("xconn-5"));
    CHECK(name_claimable("alice"));
    CHECK(!name_claimable(""));
    CHECK(!name_claimable("bad name"));
}

static void test_query_absent(void) {
    char out[SB_NAME_MAX + 1];
    CHECK_EQ_INT(query_param("", "user", out, sizeof out), QUERY_ABSENT);
    CHECK_EQ_INT(query_param("a=1&b=2", "user", out, sizeof out), QUERY_ABSENT);
    CHECK_EQ_INT(query_param("user", "user", out, sizeof out), QUERY_ABSENT);       /* no '=' */
    CHECK_EQ_INT(query_param("users=bob", "user", out, sizeof out), QUERY_ABSENT);  /* key is a prefix */
    CHECK_EQ_INT(query_param("xuser=bob", "user", out, sizeof out), QUERY_ABSENT);  /* key is a suffix */
    CHECK_EQ_INT(query_param("a=user=bob", "user", out, sizeof out), QUERY_ABSENT); /* inside a value */
}

static void test_query_found(void) {
    char out[SB_NAME_MAX + 1];
    CHECK_EQ_INT(query_param("user=bob", "user", out, sizeof out), 3);
    CHECK_EQ_STR(out, "bob");
    CHECK_EQ_INT(query_param("a=1&user=carol&b=2", "user", out, sizeof out), 5);
    CHECK_EQ_STR(out, "carol");
    CHECK_EQ_INT(query_param("xuser=a&user=b", "user", out, sizeof out), 1);
    CHECK_EQ_STR(out, "b");
    CHECK_EQ_INT(query_param("user=first&user=second", "user", out, sizeof out), 5);
    CHECK_EQ_STR(out, "first");
    CHECK_EQ_INT(query_param("a=1&&user=d", "user", out, sizeof out), 1);
    CHECK_EQ_STR(out, "d");
    CHECK_EQ_INT(query_param("user=", "user", out, sizeof out), 0);
    CHECK_EQ_STR(out, "");
    CHECK_EQ_INT(query_param("user=&x=1", "user", out, sizeof out), 0);
}

static void test_query_decoding(void) {
    char out[SB_NAME_MAX + 1];
    CHECK_EQ_INT(query_param("user=a%62c", "user", out, sizeof out), 3);
    CHECK_EQ_STR(out, "abc");
    CHECK_EQ_INT(query_param("user=%4a%4A", "user", out, sizeof out), 2); /* both hex cases */
    CHECK_EQ_STR(out, "JJ");
    CHECK_EQ_INT(query_param("user=a+b", "user", out, sizeof out), 3);
    CHECK_EQ_STR(out, "a b");
    CHECK_EQ_INT(query_param("user=a%2Bb", "user", out, sizeof out), 3);
    CHECK_EQ_STR(out, "a+b");
    CHECK_EQ_INT(query_param("user=a%26b&c=d", "user", out, sizeof out), 3); /* encoded '&' is data */
    CHECK_EQ_STR(out, "a&b");
    CHECK_EQ_INT(query_param("user=%C3%A9", "user", out, sizeof out), 2);
    CHECK_EQ_STR(out, "\xC3\xA9");
}

static void test_query_bad(void) {
    char out[SB_NAME_MAX + 1];
    CHECK_EQ_INT(query_param("user=%", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=%4", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=%4&a=1", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=%zz", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=%g1", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=ab%00cd", "user", out, sizeof out), QUERY_BAD);
    CHECK_EQ_INT(query_param("user=%00", "user", out, sizeof out), QUERY_BAD);
}

static void test_query_length(void) {
    char out[SB_NAME_MAX + 1], query[256];
    snprintf(query, sizeof query, "user=");
    fill(query + 5, 'x', SB_NAME_MAX);
    CHECK_EQ_INT(query_param(query, "user", out, sizeof out), SB_NAME_MAX); /* fills out exactly */
    CHECK_EQ_INT(strlen(out), SB_NAME_MAX);
    fill(query + 5, 'x', SB_NAME_MAX + 1);
    CHECK_EQ_INT(query_param(query, "user", out, sizeof out), QUERY_BAD);
    /* 64 characters once decoded, longer encoded: the limit is on the decoded value */
    char enc[256] = "user=";
    for (int i = 0; i < SB_NAME_MAX; i++) strcat(enc, "%41");
    CHECK_EQ_INT(query_param(enc, "user", out, sizeof out), SB_NAME_MAX);
    char tiny[4];
    CHECK_EQ_INT(query_param("user=abc", "user", tiny, sizeof tiny), 3);
    CHECK_EQ_STR(tiny, "abc");
    CHECK_EQ_INT(query_param("user=abcd", "user", tiny, sizeof tiny), QUERY_BAD);
}

int main(void) {
    test_name_length();
    test_name_charset();
    test_claimable();
    test_query_absent();
    test_query_found();
    test_query_decoding();
    test_query_bad();
    test_query_length();
    return check_done();
}

/* test_head: finding a request head in bytes that come in pieces, and parsing it (app/front/head.c).
 *
 * A head found too early hands a half request on; one found too late (or never) holds a client until
 * --header-timeout; a wrong parse sends a request down the wrong path. So: a head fed byte by byte is
 * found at exactly its end, with LF-only lines too and empty lines before it skipped; what follows it
 * is not part of it; and the parse keeps what CivetWeb kept (spaces after a value) and refuses what is
 * not HTTP/1.x. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "head.h"

/* The head's length when `text` is fed one byte at a time, 0 if never whole. */
static size_t scan_bytewise(const char *text) {
    struct head_scan sc = {0};
    size_t len = strlen(text);
    for (size_t i = 1; i <= len; i++) {
        size_t n = head_scan(&sc, text, i);
        if (n) return n;
    }
    return 0;
}

static void test_scan(void) {
    const char *get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_EQ_INT(scan_bytewise(get), strlen(get));
    CHECK_EQ_INT(scan_bytewise("GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY"), strlen(get));
    CHECK_EQ_INT(scan_bytewise("GET / HTTP/1.0\nHost: a\n\n"), 24);
    CHECK_EQ_INT(scan_bytewise("\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 22);
    CHECK_EQ_INT(scan_bytewise("GET / HTTP/1.1\r\nHost: a\r\n"), 0);
    CHECK_EQ_INT(scan_bytewise("\r\n\r\n\r\n"), 0); /* only the empty lines a client may send first */
    struct head_scan sc = {0};
    CHECK_EQ_INT(head_scan(&sc, get, 10), 0);
    CHECK_EQ_INT(head_scan(&sc, get, strlen(get)), strlen(get)); /* the rest in one piece */
}

static enum head_result parse(const char *text, char *buf, struct head *h) {
    size_t len = strlen(text);
    memcpy(buf, text, len + 1);
    return head_parse(buf, len, h);
}

static void test_parse(void) {
    static char buf[HEAD_MAX];
    static struct head h;
    CHECK_EQ_INT(parse("GET /ws?user=ann&x=1 HTTP/1.1\r\nHost: a:8080\r\nAuthorization: Bearer \r\n"
                       "X-Empty:\r\nsec-websocket-key:\tk==\r\n\r\n", buf, &h), HEAD_OK);
    CHECK_EQ_STR(h.method, "GET");
    CHECK_EQ_STR(h.path, "/ws");
    CHECK_EQ_STR(h.query, "user=ann&x=1");
    CHECK_EQ_INT(h.minor, 1);
    CHECK_EQ_INT(h.nfields, 4);
    CHECK_EQ_STR(head_field(&h, "host"), "a:8080");
    CHECK_EQ_STR(head_field(&h, "AUTHORIZATION"), "Bearer ");
    CHECK_EQ_STR(head_field(&h, "X-Empty"), "");
    CHECK_EQ_STR(head_field(&h, "Sec-WebSocket-Key"), "k==");
    CHECK(head_field(&h, "Origin") == NULL);
    CHECK_EQ_INT(parse("\r\nPOST /api/send HTTP/1.0\n\n", buf, &h), HEAD_OK);
    CHECK_EQ_STR(h.path, "/api/send");
    CHECK(h.query == NULL);
    CHECK_EQ_INT(h.minor, 0);
    const char *bad[] = {
        "GET /\r\n\r\n",                       /* HTTP/0.9 */
        "GET / HTTP/2.0\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",             /* an empty target */
        "G(T / HTTP/1.1\r\n\r\n",              /* not a token */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",      /* no colon */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",  /* space before the colon */
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nX: a\x01\r\n\r\n",  /* a control character */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!CHECK_EQ_INT(parse(bad[i], buf, &h), HEAD_BAD)) fprintf(stderr, "    head %zu\n", i);
    char many[HEAD_MAX];
    size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HEAD_FIELDS_MAX; i++) n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: v\r\n", i);
    snprintf(many + n, sizeof many - n, "\r\n");
    CHECK_EQ_INT(parse(many, buf, &h), HEAD_TOO_MANY);
}

int main(void) {
    test_scan();
    test_parse();
    return check_done();
}

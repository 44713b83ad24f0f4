/* test_proxyhead: who the client is, from a trusted proxy's PROXY header or X-Forwarded-For, and from
 * anyone else the peer (proxyhead.h). */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "proxyhead.h"

static struct realip_list trusted;
static char parsed[HEAD_MAX], join[HEAD_MAX];
static struct head head;

static struct sockaddr_in peer(const char *ip, unsigned port) {
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static const struct head *parse(const char *text) {
    size_t len = strlen(text);
    memcpy(parsed, text, len);
    CHECK_EQ_INT(head_parse(parsed, len, &head), HEAD_OK);
    return &head;
}

static long take(struct proxyhead *ph, const char *bytes, size_t len) { return proxyhead_take(ph, (const uint8_t *)bytes, len); }

/* The client of a connection from `from` that sent `bytes` (a PROXY header or not, then a head). */
static struct client_addr client_of(const char *from, const char *bytes, size_t len) {
    struct sockaddr_in sa = peer(from, 40000);
    struct proxyhead ph;
    struct client_addr c;
    proxyhead_begin(&ph, &trusted, &sa);
    long cut = proxyhead_pending(&ph) ? take(&ph, bytes, len) : 0;
    CHECK(cut >= 0);
    proxyhead_client(&ph, &trusted, &sa, parse(bytes + (cut > 0 ? cut : 0)), join, &c);
    return c;
}

static void test_who_is_looked_at(void) {
    struct proxyhead ph;
    struct sockaddr_in a = peer("10.1.2.3", 1), b = peer("192.0.2.1", 1);
    proxyhead_begin(&ph, &trusted, &a);
    CHECK(proxyhead_trusted(&ph) && proxyhead_pending(&ph));
    proxyhead_begin(&ph, &trusted, &b);
    CHECK(!proxyhead_trusted(&ph) && !proxyhead_pending(&ph));
    struct realip_list none = {0};
    proxyhead_begin(&ph, &none, &a);
    CHECK(!proxyhead_trusted(&ph));
}

static void test_take(void) {
    struct proxyhead ph;
    struct sockaddr_in a = peer("127.0.0.1", 1);
    const char *v1 = "PROXY TCP4 203.0.113.9 127.0.0.1 51234 8080\r\nGET / HTTP/1.1\r\n\r\n";
    proxyhead_begin(&ph, &trusted, &a);
    CHECK_EQ_INT(take(&ph, v1, 4), PROXYHEAD_MORE);
    CHECK_EQ_INT(take(&ph, v1, 20), PROXYHEAD_MORE); /* no CRLF yet */
    CHECK(proxyhead_pending(&ph));
    CHECK_EQ_INT(take(&ph, v1, strlen(v1)), 45);
    CHECK(!proxyhead_pending(&ph));
    proxyhead_begin(&ph, &trusted, &a);
    CHECK_EQ_INT(take(&ph, "GET / HTTP/1.1\r\n", 16), 0); /* no header: the request starts at once */
    CHECK(!proxyhead_pending(&ph) && proxyhead_trusted(&ph));
    proxyhead_begin(&ph, &trusted, &a);
    CHECK_EQ_INT(take(&ph, "PROXY TCP4 nobody\r\nGET / HTTP/1.1\r\n", 35), PROXYHEAD_BAD);
}

static void test_client(void) {
    char bytes[256];
    /* untrusted: the peer, whatever it wrote */
    const char *forged = "GET / HTTP/1.1\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n";
    struct client_addr c = client_of("192.0.2.7", forged, strlen(forged));
    CHECK_EQ_STR(c.ip, "192.0.2.7");
    CHECK(c.port == 40000 && c.sa.sa.sa_family == AF_INET && c.len == sizeof(struct sockaddr_in));
    /* trusted, X-Forwarded-For in two fields (HAProxy adds its own): one list, rightmost untrusted */
    const char *two = "GET / HTTP/1.1\r\nX-Forwarded-For: 6.6.6.6, 198.51.100.2\r\nHost: a\r\nx-forwarded-for: 10.0.0.5\r\n\r\n";
    c = client_of("127.0.0.1", two, strlen(two));
    CHECK_EQ_STR(c.ip, "198.51.100.2");
    CHECK(c.port == 0 && ntohs(c.sa.v4.sin_port) == 0);
    CHECK_EQ_INT(memcmp(&c.sa.v4.sin_addr, "\xc6\x33\x64\x02", 4), 0);
    /* trusted without X-Forwarded-For, or with one that is not an address: the peer */
    const char *plain = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    c = client_of("127.0.0.1", plain, strlen(plain));
    CHECK_EQ_STR(c.ip, "127.0.0.1");
    const char *junk = "GET / HTTP/1.1\r\nX-Forwarded-For: 1.2.3.4, unknown\r\n\r\n";
    c = client_of("127.0.0.1", junk, strlen(junk));
    CHECK_EQ_STR(c.ip, "127.0.0.1");
    /* a PROXY header wins over X-Forwarded-For (in TCP mode that is the client's own) */
    int n = snprintf(bytes, sizeof bytes, "PROXY TCP4 203.0.113.9 127.0.0.1 51234 8080\r\n%s", forged);
    c = client_of("127.0.0.1", bytes, (size_t)n);
    CHECK_EQ_STR(c.ip, "203.0.113.9");
    CHECK(c.port == 51234 && ntohs(c.sa.v4.sin_port) == 51234);
    /* IPv6, as the sockaddr CivetWeb gets and the text the limits count */
    n = snprintf(bytes, sizeof bytes, "PROXY TCP6 2001:db8::9 ::1 443 8080\r\n%s", plain);
    c = client_of("10.9.9.9", bytes, (size_t)n);
    CHECK_EQ_STR(c.ip, "2001:db8::9");
    CHECK(c.sa.sa.sa_family == AF_INET6 && c.len == sizeof(struct sockaddr_in6) && c.port == 443);
    /* a header naming nobody (UNKNOWN; v2 LOCAL likewise) leaves the proxy, and X-Forwarded-For unread */
    n = snprintf(bytes, sizeof bytes, "PROXY UNKNOWN\r\n%s", forged);
    c = client_of("127.0.0.1", bytes, (size_t)n);
    CHECK_EQ_STR(c.ip, "127.0.0.1");
}

int main(void) {
    char err[200];
    CHECK_EQ_INT(realip_list_parse("127.0.0.1,10.0.0.0/8", &trusted, err, sizeof err), 0);
    test_who_is_looked_at();
    test_take();
    test_client();
    return check_done();
}

/* test_realip: trusted-proxy lists, PROXY protocol v1 and v2 headers (as HAProxy's send-proxy and
 * send-proxy-v2 write them), and the X-Forwarded-For pick (realip.h). */
#include <string.h>

#include "check.h"
#include "realip.h"

static struct realip_list list(const char *text) {
    struct realip_list l;
    char err[200];
    CHECK_EQ_INT(realip_list_parse(text, &l, err, sizeof err), 0);
    return l;
}

static int in(const struct realip_list *l, const char *addr) {
    struct realip_addr a;
    return realip_addr_parse(addr, strlen(addr), &a) == 0 && realip_list_match(l, &a);
}

static void test_lists(void) {
    struct realip_list l = list("10.0.0.0/8, 192.168.1.7 ,fd00::/8,127.0.0.1/32");
    CHECK_EQ_INT(l.n, 4);
    CHECK(in(&l, "10.255.1.2") && in(&l, "192.168.1.7") && in(&l, "127.0.0.1") && in(&l, "fd12::1"));
    CHECK(!in(&l, "11.0.0.1") && !in(&l, "192.168.1.8") && !in(&l, "fe80::1") && !in(&l, "127.0.0.2"));
    CHECK(in(&l, "::ffff:10.1.2.3")); /* a v4-mapped peer is the IPv4 address */
    struct realip_list any = list("0.0.0.0/0,::/0");
    CHECK(in(&any, "8.8.8.8") && in(&any, "2001:db8::1"));
    struct realip_list odd = list("172.16.0.0/12");
    CHECK(in(&odd, "172.31.255.255") && !in(&odd, "172.32.0.0"));
    struct realip_list bad;
    char err[200];
    const char *bads[] = {"", "10.0.0.0/33", "10.0.0.1/8", "10.0.0.0/", "10.0.0.0/08", "fd00::/129", "host.example",
                          "10.0.0.0/8,", "1.2.3.4:80", "[::1]"};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) CHECK_EQ_INT(realip_list_parse(bads[i], &bad, err, sizeof err), -1);
    CHECK(strstr(err, "[::1]") != NULL);
}

static long proxy(const char *bytes, size_t len, struct realip_proxy *p) { return realip_proxy_parse((const uint8_t *)bytes, len, p); }

static void test_proxy_v1(void) {
    struct realip_proxy p;
    char addr[REALIP_TEXT_MAX];
    const char *h = "PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\nGET / HTTP/1.1\r\n";
    long n = proxy(h, strlen(h), &p);
    CHECK_EQ_INT(n, (long)strlen("PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\n"));
    realip_addr_format(&p.src, addr);
    CHECK(p.has_addr && p.version == 1 && p.src_port == 51234);
    CHECK_EQ_STR(addr, "203.0.113.9");
    h = "PROXY TCP6 2001:db8::9 2001:db8::1 1 2\r\n";
    CHECK_EQ_INT(proxy(h, strlen(h), &p), (long)strlen(h));
    realip_addr_format(&p.src, addr);
    CHECK_EQ_STR(addr, "2001:db8::9");
    h = "PROXY UNKNOWN\r\n";
    CHECK_EQ_INT(proxy(h, strlen(h), &p), (long)strlen(h));
    CHECK(!p.has_addr);
    h = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    CHECK_EQ_INT(proxy(h, strlen(h), &p), (long)strlen(h));
    /* a prefix: more is needed, at every length */
    h = "PROXY TCP4 203.0.113.9 10.0.0.1 51234 443\r\n";
    for (size_t i = 0; i < strlen(h); i++) CHECK_EQ_INT(proxy(h, i, &p), REALIP_NEED_MORE);
    const char *bad[] = {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
                         "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                         "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "PROXYTCP4\r\n",
                         "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK_EQ_INT(proxy(bad[i], strlen(bad[i]), &p), REALIP_INVALID);
    char longline[200] = "PROXY TCP4 ";
    memset(longline + strlen(longline), '1', 150);
    CHECK_EQ_INT(proxy(longline, strlen(longline), &p), REALIP_INVALID); /* no CRLF within 107 bytes */
}

static const char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static size_t v2(char *out, unsigned char cmd, unsigned char fam, const unsigned char *addr, size_t alen, size_t tlv) {
    memcpy(out, sig, 12);
    out[12] = (char)(0x20 | cmd);
    out[13] = (char)fam;
    out[14] = (char)((alen + tlv) >> 8);
    out[15] = (char)((alen + tlv) & 0xff);
    memcpy(out + 16, addr, alen);
    memset(out + 16 + alen, 0x04, tlv); /* a TLV's bytes: skipped */
    return 16 + alen + tlv;
}

static void test_proxy_v2(void) {
    struct realip_proxy p;
    char h[128], addr[REALIP_TEXT_MAX];
    const unsigned char v4[12] = {198, 51, 100, 7, 10, 0, 0, 1, 0xC8, 0x01, 0x01, 0xBB};
    size_t n = v2(h, 1, 0x11, v4, sizeof v4, 7);
    memcpy(h + n, "GET", 3);
    CHECK_EQ_INT(proxy(h, n + 3, &p), (long)n);
    realip_addr_format(&p.src, addr);
    CHECK(p.has_addr && p.version == 2 && p.src_port == 0xC801);
    CHECK_EQ_STR(addr, "198.51.100.7");
    for (size_t i = 0; i < n; i++) CHECK_EQ_INT(proxy(h, i, &p), REALIP_NEED_MORE);
    unsigned char v6[36] = {0x20, 0x01, 0x0d, 0xb8};
    v6[15] = 9;
    n = v2(h, 1, 0x21, v6, sizeof v6, 0);
    CHECK_EQ_INT(proxy(h, n, &p), (long)n);
    realip_addr_format(&p.src, addr);
    CHECK_EQ_STR(addr, "2001:db8::9");
    n = v2(h, 0, 0x00, v4, 0, 0); /* LOCAL: HAProxy's own health check */
    CHECK_EQ_INT(proxy(h, n, &p), 16);
    CHECK(!p.has_addr);
    n = v2(h, 1, 0x11, v4, 8, 0); /* too short for TCP4 */
    CHECK_EQ_INT(proxy(h, n, &p), REALIP_INVALID);
    n = v2(h, 2, 0x11, v4, sizeof v4, 0); /* no such command */
    CHECK_EQ_INT(proxy(h, n, &p), REALIP_INVALID);
    n = v2(h, 1, 0x11, v4, sizeof v4, 0);
    h[12] = 0x11; /* version 1 in the binary form */
    CHECK_EQ_INT(proxy(h, n, &p), REALIP_INVALID);
    h[0] = 'X';
    CHECK_EQ_INT(proxy(h, 1, &p), REALIP_INVALID);
}

static enum realip_sniff sniff(const char *bytes, size_t len) { return realip_proxy_sniff((const uint8_t *)bytes, len); }

/* A trusted peer may send a PROXY header or not: the sniff tells them apart from a request's first bytes. */
static void test_sniff(void) {
    CHECK_EQ_INT(sniff("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 33), REALIP_IS_PROXY);
    CHECK_EQ_INT(sniff("PROXY ", 6), REALIP_IS_PROXY);
    CHECK_EQ_INT(sniff("PROX", 4), REALIP_MAYBE_PROXY);
    CHECK_EQ_INT(sniff("", 0), REALIP_MAYBE_PROXY);
    CHECK_EQ_INT(sniff(sig, 12), REALIP_IS_PROXY);
    CHECK_EQ_INT(sniff(sig, 5), REALIP_MAYBE_PROXY);
    CHECK_EQ_INT(sniff("\r\n", 2), REALIP_MAYBE_PROXY);              /* a request's empty line, or v2 */
    CHECK_EQ_INT(sniff("\r\n\r\nGET / HTTP/1.1", 18), REALIP_NOT_PROXY);
    CHECK_EQ_INT(sniff("POST /api/send HTTP/1.1", 23), REALIP_NOT_PROXY);
    CHECK_EQ_INT(sniff("PUT", 3), REALIP_NOT_PROXY);
    CHECK_EQ_INT(sniff("GET / HTTP/1.1", 14), REALIP_NOT_PROXY);
    CHECK_EQ_INT(sniff("PROXYTCP4", 9), REALIP_NOT_PROXY);
}

static void test_xff(void) {
    struct realip_list trusted = list("10.0.0.0/8,127.0.0.1");
    struct realip_addr a;
    char addr[REALIP_TEXT_MAX];
    /* the client wrote "6.6.6.6" itself; the edge proxy appended 203.0.113.5, an inner one 10.1.1.1 */
    CHECK_EQ_INT(realip_xff_pick("6.6.6.6, 203.0.113.5, 10.1.1.1", &trusted, &a), 1);
    realip_addr_format(&a, addr);
    CHECK_EQ_STR(addr, "203.0.113.5");
    CHECK_EQ_INT(realip_xff_pick("203.0.113.5", &trusted, &a), 1);
    CHECK_EQ_INT(realip_xff_pick("10.0.0.2,127.0.0.1", &trusted, &a), 1); /* all trusted: the leftmost */
    realip_addr_format(&a, addr);
    CHECK_EQ_STR(addr, "10.0.0.2");
    CHECK_EQ_INT(realip_xff_pick("2001:db8::1 ,\t10.0.0.9", &trusted, &a), 1);
    realip_addr_format(&a, addr);
    CHECK_EQ_STR(addr, "2001:db8::1");
    CHECK_EQ_INT(realip_xff_pick("", &trusted, &a), 0);
    CHECK_EQ_INT(realip_xff_pick(" , ", &trusted, &a), 0);
    CHECK_EQ_INT(realip_xff_pick("1.2.3.4, unknown", &trusted, &a), -1);
    CHECK_EQ_INT(realip_xff_pick("garbage, 203.0.113.5", &trusted, &a), 1); /* left of the client: ignored */
}

int main(void) {
    test_lists();
    test_proxy_v1();
    test_proxy_v2();
    test_sniff();
    test_xff();
    return check_done();
}

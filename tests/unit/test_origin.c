/* test_origin: the cross-site WebSocket hijacking check (app/front/origin.c).
 *
 * A false "allowed" lets any web page drive a user's socket; a false "refused" breaks the demo page
 * served by the server itself. So both directions are pinned: same host:port (with default ports and
 * case folding), the allow list (exact, trailing slash, "*"), and malformed Origin or Host values,
 * which must never compare equal to each other by accident. */
#include "check.h"
#include "origin.h"

#define ALLOWED(o, h) origin_allowed((o), (h), NULL, 0)

static void test_no_origin(void) {
    CHECK(ALLOWED(NULL, "localhost:8080"));
    CHECK(ALLOWED(NULL, NULL));
}

static void test_same_host_port(void) {
    CHECK(ALLOWED("http://localhost:8080", "localhost:8080"));
    CHECK(ALLOWED("http://127.0.0.1:8080", "127.0.0.1:8080"));
    CHECK(ALLOWED("https://chat.example.com:8443", "chat.example.com:8443"));
    CHECK(!ALLOWED("http://localhost:8081", "localhost:8080"));
    CHECK(!ALLOWED("http://localhost:8080", "localhost:8081"));
    CHECK(!ALLOWED("http://evil.example:8080", "localhost:8080"));
    CHECK(!ALLOWED("http://localhost.evil.example:8080", "localhost:8080"));
    CHECK(!ALLOWED("http://localhost:8080", NULL)); /* no Host to compare with */
    CHECK(!ALLOWED("http://localhost:8080", ""));
}

static void test_default_ports(void) {
    CHECK(ALLOWED("http://example.com", "example.com"));
    CHECK(ALLOWED("http://example.com", "example.com:80"));
    CHECK(ALLOWED("http://example.com:80", "example.com"));
    CHECK(ALLOWED("https://example.com", "example.com"));   /* behind a TLS proxy */
    CHECK(ALLOWED("https://example.com", "example.com:443"));
    CHECK(ALLOWED("https://example.com:443", "example.com"));
    CHECK(!ALLOWED("https://example.com", "example.com:80"));
    CHECK(!ALLOWED("http://example.com", "example.com:443"));
    CHECK(!ALLOWED("http://example.com:443", "example.com"));
    CHECK(!ALLOWED("http://example.com", "example.com:8080"));
    CHECK(!ALLOWED("http://example.com:8080", "example.com"));
}

static void test_case(void) {
    CHECK(ALLOWED("HTTP://LocalHost:8080", "localhost:8080"));
    CHECK(ALLOWED("http://localhost:8080", "LOCALHOST:8080"));
    CHECK(ALLOWED("HttpS://Example.COM", "example.com"));
}

static void test_ipv6(void) {
    CHECK(ALLOWED("http://[::1]:8080", "[::1]:8080"));
    CHECK(ALLOWED("http://[::1]", "[::1]"));
    CHECK(ALLOWED("http://[::1]", "[::1]:80"));
    CHECK(!ALLOWED("http://[::1]:8080", "[::1]:8081"));
    CHECK(!ALLOWED("http://[::2]:8080", "[::1]:8080"));
    CHECK(!ALLOWED("http://[::1:8080", "[::1:8080")); /* unclosed bracket */
    CHECK(!ALLOWED("http://[::1]x:8080", "[::1]x:8080"));
}

/* Malformed values are refused, even when Origin and Host are malformed in the same way. */
static void test_malformed(void) {
    CHECK(!ALLOWED("null", "localhost:8080"));
    CHECK(!ALLOWED("null", "null"));
    CHECK(!ALLOWED("file://", "localhost:8080"));
    CHECK(!ALLOWED("file:///etc/passwd", ""));
    CHECK(!ALLOWED("http://", ""));
    CHECK(!ALLOWED("http://", "localhost:8080"));
    CHECK(!ALLOWED("", ""));
    CHECK(!ALLOWED("localhost:8080", "localhost:8080")); /* no scheme */
    CHECK(!ALLOWED("ftp://localhost:8080", "localhost:8080"));
    CHECK(!ALLOWED("http://a:99999", "a:99999"));
    CHECK(!ALLOWED("http://a:65536", "a:65536"));
    CHECK(!ALLOWED("http://a:", "a:"));
    CHECK(!ALLOWED("http://a:80x", "a:80x"));
    CHECK(!ALLOWED("http://:8080", ":8080"));
    CHECK(!ALLOWED("http://localhost:8080/chat", "localhost:8080")); /* origins have no path */
    CHECK(!ALLOWED("http://attacker@localhost:8080", "localhost:8080"));
    CHECK(ALLOWED("http://a:65535", "a:65535"));
}

static void test_allow_list(void) {
    const char *allow[] = {"http://localhost:3000", "https://app.example.com/"};
    const char *host = "localhost:8080";
    CHECK(origin_allowed("http://localhost:3000", host, allow, 2));
    CHECK(origin_allowed("http://localhost:3000/", host, allow, 2));     /* slash on the origin */
    CHECK(origin_allowed("https://app.example.com", host, allow, 2));   /* slash on the entry */
    CHECK(origin_allowed("HTTP://LOCALHOST:3000", host, allow, 2));
    CHECK(!origin_allowed("http://localhost:3001", host, allow, 2));
    CHECK(!origin_allowed("http://localhost:300", host, allow, 2));     /* a prefix of an entry */
    CHECK(!origin_allowed("http://localhost:30000", host, allow, 2));   /* an entry is a prefix */
    CHECK(!origin_allowed("https://localhost:3000", host, allow, 2));   /* other scheme */
    CHECK(!origin_allowed("http://app.example.com", host, allow, 2));
    CHECK(!origin_allowed("null", host, allow, 2));
    CHECK(origin_allowed("http://localhost:8080", host, allow, 2));     /* same origin still works */
    CHECK(!origin_allowed("http://localhost:3000", host, allow, 0));    /* nallow bounds the list */
}

static void test_allow_any(void) {
    const char *any[] = {"http://localhost:3000", "*"};
    CHECK(origin_allowed("http://evil.example", "localhost:8080", any, 2));
    CHECK(origin_allowed("null", "localhost:8080", any, 2));
    CHECK(origin_allowed("file://", NULL, any, 2));
    CHECK(!origin_allowed("http://evil.example", "localhost:8080", any, 1));
}

/* --allowed-hosts (issue 18): a page on a name that rebinds to this server's address sends its own name
 * in Host and a matching Origin, so the Origin check passes; only the Host tells. */
static void test_allowed_hosts(void) {
    const char *hosts[] = {"localhost", "127.0.0.1", "chat.example.com:8443", "[::1]"};
    CHECK(origin_host_allowed("rebind.evil.example:8080", hosts, 0)); /* not configured: every host */
    CHECK(origin_host_allowed(NULL, hosts, 0));
    CHECK(origin_host_allowed("localhost:8080", hosts, 4));            /* an entry without a port: any port */
    CHECK(origin_host_allowed("localhost", hosts, 4));
    CHECK(origin_host_allowed("LocalHost:1", hosts, 4));
    CHECK(origin_host_allowed("127.0.0.1:8080", hosts, 4));
    CHECK(origin_host_allowed("chat.example.com:8443", hosts, 4));     /* with a port: that port only */
    CHECK(!origin_host_allowed("chat.example.com:443", hosts, 4));
    CHECK(!origin_host_allowed("chat.example.com", hosts, 4));
    CHECK(origin_host_allowed("[::1]:8080", hosts, 4));
    CHECK(!origin_host_allowed("rebind.evil.example:8080", hosts, 4));
    CHECK(!origin_host_allowed("localhost.evil.example", hosts, 4));
    CHECK(!origin_host_allowed("evil.localhost", hosts, 4));
    CHECK(!origin_host_allowed("127.0.0.1.nip.io:8080", hosts, 4));
    CHECK(!origin_host_allowed("localhost.", hosts, 4));
    CHECK(!origin_host_allowed(NULL, hosts, 4));                      /* no Host: no name to trust */
    CHECK(!origin_host_allowed("", hosts, 4));
    CHECK(!origin_host_allowed("localhost:", hosts, 4));
    CHECK(!origin_host_allowed("localhost:80x", hosts, 4));
    CHECK(!origin_host_allowed("localhost:8080", hosts + 1, 3));       /* nhosts bounds the list */
    /* what --allowed-hosts takes */
    CHECK(origin_host_entry_valid("localhost"));
    CHECK(origin_host_entry_valid("chat.example.com:8443"));
    CHECK(origin_host_entry_valid("[::1]:80"));
    CHECK(origin_host_entry_valid("10.0.0.7"));
    CHECK(!origin_host_entry_valid(""));
    CHECK(!origin_host_entry_valid("http://chat.example.com"));
    CHECK(!origin_host_entry_valid("a b"));
    CHECK(!origin_host_entry_valid("a:99999"));
    CHECK(!origin_host_entry_valid("a:"));
    CHECK(!origin_host_entry_valid("[::1"));
    CHECK(!origin_host_entry_valid("*"));
}

int main(void) {
    test_no_origin();
    test_same_host_port();
    test_default_ports();
    test_case();
    test_ipv6();
    test_malformed();
    test_allow_list();
    test_allow_any();
    test_allowed_hosts();
    return check_done();
}

/* fuzz_realip: what a trusted proxy's peer sends before a request (app/front/realip.c).
 *
 * Input: the bytes of a connection's start, sniffed and parsed as a PROXY v1/v2 header; and, split at NUL bytes,
 * a --trusted-proxies list and an X-Forwarded-For value. Beyond not crashing: a header's length is
 * within the bytes and parsing just those bytes gives the same; every shorter prefix of a header is
 * "need more"; the sniff agrees with the parse (not a header: invalid; maybe: need more); an address found formats to text that parses back to it; the address XFF picks is
 * untrusted unless every entry was trusted. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "realip.h"

static void check_addr(const struct realip_addr *a) {
    char text[REALIP_TEXT_MAX];
    struct realip_addr back;
    realip_addr_format(a, text);
    FUZZ_CHECK(realip_addr_parse(text, strlen(text), &back) == 0);
    FUZZ_CHECK(back.v6 == a->v6 && memcmp(back.b, a->b, a->v6 ? 16 : 4) == 0);
}

static void check_proxy(const uint8_t *data, size_t size) {
    struct realip_proxy p, q;
    long n = realip_proxy_parse(data, size, &p);
    FUZZ_CHECK(n == REALIP_NEED_MORE || n == REALIP_INVALID || (n >= 15 && (size_t)n <= size));
    enum realip_sniff sniff = realip_proxy_sniff(data, size);
    FUZZ_CHECK(sniff != REALIP_NOT_PROXY || n == REALIP_INVALID);   /* a request is never taken for a header */
    FUZZ_CHECK(sniff != REALIP_MAYBE_PROXY || n == REALIP_NEED_MORE);
    FUZZ_CHECK(n <= 0 || sniff == REALIP_IS_PROXY);
    if (n <= 0) return;
    FUZZ_CHECK(realip_proxy_parse(data, (size_t)n, &q) == n && q.has_addr == p.has_addr);
    FUZZ_CHECK(p.version == 1 || p.version == 2);
    if (p.has_addr) check_addr(&p.src);
    for (size_t cut = 0; cut < (size_t)n; cut += 1 + (size_t)n / 16)
        FUZZ_CHECK(realip_proxy_parse(data, cut, &q) == REALIP_NEED_MORE);
}

static void check_xff(char *const *part, size_t nparts) {
    static struct realip_list trusted;
    char err[256];
    if (nparts < 2 || realip_list_parse(part[0], &trusted, err, sizeof err) < 0) return;
    FUZZ_CHECK(trusted.n >= 1 && trusted.n <= REALIP_MAX_CIDRS);
    for (size_t i = 0; i < trusted.n; i++) check_addr(&trusted.v[i].net);
    struct realip_addr a;
    int r = realip_xff_pick(part[1], &trusted, &a);
    FUZZ_CHECK(r >= -1 && r <= 1);
    if (r == 1) check_addr(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_proxy(data, size);
    char *part[2] = {0};
    size_t nparts = fuzz_split(data, size, part, 2);
    check_xff(part, nparts);
    for (size_t i = 0; i < nparts; i++) free(part[i]);
    return 0;
}

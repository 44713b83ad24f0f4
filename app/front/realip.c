/* realip: trusted proxies, PROXY protocol v1/v2 and X-Forwarded-For (see realip.h). */
#include "realip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- addresses and networks ---- */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static void from_v6(const uint8_t b[16], struct realip_addr *out) {
    memset(out, 0, sizeof *out);
    if (memcmp(b, v4_mapped, sizeof v4_mapped) == 0) memcpy(out->b, b + 12, 4);
    else {
        out->v6 = 1;
        memcpy(out->b, b, 16);
    }
}

int realip_addr_parse(const char *text, size_t len, struct realip_addr *out) {
    char buf[REALIP_TEXT_MAX];
    uint8_t b[16];
    if (len == 0 || len >= sizeof buf || memchr(text, '\0', len)) return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->b) == 1) return 0;
    if (inet_pton(AF_INET6, buf, b) != 1) return -1;
    from_v6(b, out);
    return 0;
}

void realip_addr_format(const struct realip_addr *a, char *out) {
    if (!inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->b, out, REALIP_TEXT_MAX)) snprintf(out, REALIP_TEXT_MAX, "?");
}

/* 1 if the first `bits` bits of a and b are equal. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits) {
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, whole) != 0) return 0;
    if (!rest) return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* One "ADDR[/BITS]" of len bytes. */
static int parse_cidr(const char *s, size_t len, struct realip_cidr *out) {
    const char *slash = memchr(s, '/', len);
    if (realip_addr_parse(s, slash ? (size_t)(slash - s) : len, &out->net) < 0) return -1;
    unsigned max = out->net.v6 ? 128 : 32, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3) return -1;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max || (slash[1] == '0' && len - (size_t)(slash - s) > 2)) return -1;
    }
    out->bits = bits;
    /* host bits must be zero: the network and its prefix agree with a copy masked to it */
    uint8_t masked[16] = {0};
    memcpy(masked, out->net.b, bits / 8);
    if (bits % 8) masked[bits / 8] = (uint8_t)(out->net.b[bits / 8] & (0xff << (8 - bits % 8)));
    return memcmp(masked, out->net.b, out->net.v6 ? 16 : 4) == 0 ? 0 : -1;
}

int realip_list_parse(const char *text, struct realip_list *out, char *err, size_t cap) {
    out->n = 0;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        const char *s = p, *next = p[len] ? p + len + 1 : NULL;
        while (len && *s == ' ') s++, len--;
        while (len && s[len - 1] == ' ') len--;
        if (out->n == REALIP_MAX_CIDRS || parse_cidr(s, len, &out->v[out->n]) < 0) {
            snprintf(err, cap, "'%.*s' is not an address or a network like 10.0.0.0/8 or fd00::/8 (host bits zero; "
                               "at most %d)", (int)(len > 60 ? 60 : len), s, REALIP_MAX_CIDRS);
            return -1;
        }
        out->n++;
        if (!next) return 0;
        p = next;
    }
}

int realip_list_match(const struct realip_list *l, const struct realip_addr *a) {
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].net.v6 == a->v6 && prefix_equal(l->v[i].net.b, a->b, l->v[i].bits)) return 1;
    return 0;
}

/* ---- PROXY protocol ---- */

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A decimal port of 1-5 digits without a leading zero (the spec's form), into *port. */
static int parse_port(const char *s, size_t len, uint16_t *port) {
    if (len == 0 || len > 5 || (len > 1 && s[0] == '0')) return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535) return -1;
    *port = (uint16_t)v;
    return 0;
}

/* "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n". */
static long parse_v1(const uint8_t *buf, size_t len, struct realip_proxy *out) {
    static const char head[] = "PROXY ";
    size_t n = len < sizeof head - 1 ? len : sizeof head - 1;
    if (memcmp(buf, head, n) != 0) return REALIP_INVALID;
    const uint8_t *crlf = NULL;
    for (size_t i = 0; i + 1 < len && i + 2 <= REALIP_PROXY_V1_MAX; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
            crlf = buf + i;
            break;
        }
    if (!crlf) return len >= REALIP_PROXY_V1_MAX ? REALIP_INVALID : REALIP_NEED_MORE;
    size_t line_len = (size_t)(crlf - buf);
    char line[REALIP_PROXY_V1_MAX];
    memcpy(line, buf, line_len);
    line[line_len] = '\0';
    if (memchr(line, '\0', line_len)) return REALIP_INVALID;
    memset(out, 0, sizeof *out);
    out->version = 1;
    if (strncmp(line + 6, "UNKNOWN", 7) == 0 && (line[13] == '\0' || line[13] == ' ')) return (long)line_len + 2;
    char *f[7], *save = NULL;
    int nf = 0;
    for (char *t = strtok_r(line, " ", &save); t && nf < 7; t = strtok_r(NULL, " ", &save)) f[nf++] = t;
    struct realip_addr dst;
    uint16_t dport;
    int v6 = nf == 6 && strcmp(f[1], "TCP6") == 0;
    if (nf != 6 || (strcmp(f[1], "TCP4") != 0 && !v6) ||
        realip_addr_parse(f[2], strlen(f[2]), &out->src) < 0 || realip_addr_parse(f[3], strlen(f[3]), &dst) < 0 ||
        parse_port(f[4], strlen(f[4]), &out->src_port) < 0 || parse_port(f[5], strlen(f[5]), &dport) < 0 ||
        (!v6 && (out->src.v6 || strchr(f[2], ':'))) || (v6 && !strchr(f[2], ':')))
        return REALIP_INVALID;
    out->has_addr = 1;
    return (long)line_len + 2;
}

/* The 16-byte v2 head, then the addresses (TLVs after them are skipped). */
static long parse_v2(const uint8_t *buf, size_t len, struct realip_proxy *out) {
    if (len < 16) return REALIP_NEED_MORE;
    unsigned ver = buf[12] >> 4, cmd = buf[12] & 0x0f, fam = buf[13];
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (ver != 2 || cmd > 1) return REALIP_INVALID;
    if (len < 16 + body) return REALIP_NEED_MORE;
    memset(out, 0, sizeof *out);
    out->version = 2;
    const uint8_t *a = buf + 16;
    if (cmd == 0) return (long)(16 + body); /* LOCAL: the proxy's own connection (health checks) */
    if (fam == 0x11) { /* TCP over IPv4 */
        if (body < 12) return REALIP_INVALID;
        memcpy(out->src.b, a, 4);
        out->src_port = (uint16_t)(a[8] << 8 | a[9]);
        out->has_addr = 1;
    } else if (fam == 0x21) { /* TCP over IPv6 */
        if (body < 36) return REALIP_INVALID;
        from_v6(a, &out->src);
        out->src_port = (uint16_t)(a[32] << 8 | a[33]);
        out->has_addr = 1;
    } else if (fam != 0x00 && fam != 0x12 && fam != 0x22 && fam != 0x31 && fam != 0x32) {
        return REALIP_INVALID;
    }
    return (long)(16 + body); /* UNSPEC, UDP or UNIX: no address to take */
}

/* How buf compares with a signature: REALIP_IS_PROXY when it starts with all of it. */
static enum realip_sniff match_signature(const uint8_t *buf, size_t len, const void *sig, size_t siglen) {
    size_t n = len < siglen ? len : siglen;
    if (memcmp(buf, sig, n) != 0) return REALIP_NOT_PROXY;
    return n == siglen ? REALIP_IS_PROXY : REALIP_MAYBE_PROXY;
}

enum realip_sniff realip_proxy_sniff(const uint8_t *buf, size_t len) {
    enum realip_sniff v1 = match_signature(buf, len, "PROXY ", 6);
    enum realip_sniff v2 = match_signature(buf, len, v2_sig, sizeof v2_sig);
    return v1 > v2 ? v1 : v2;
}

long realip_proxy_parse(const uint8_t *buf, size_t len, struct realip_proxy *out) {
    if (len == 0) return REALIP_NEED_MORE;
    if (buf[0] == 'P') return parse_v1(buf, len, out);
    size_t n = len < sizeof v2_sig ? len : sizeof v2_sig;
    if (memcmp(buf, v2_sig, n) != 0) return REALIP_INVALID;
    return n < sizeof v2_sig ? REALIP_NEED_MORE : parse_v2(buf, len, out);
}

/* ---- X-Forwarded-For ---- */

int realip_xff_pick(const char *xff, const struct realip_list *trusted, struct realip_addr *out) {
    const char *end = xff + strlen(xff);
    int seen = 0;
    while (end > xff) {
        const char *start = end;
        while (start > xff && start[-1] != ',') start--;
        const char *s = start, *e = end;
        while (s < e && (*s == ' ' || *s == '\t')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        end = start > xff ? start - 1 : xff;
        if (s == e) continue;
        if (realip_addr_parse(s, (size_t)(e - s), out) < 0) return -1;
        seen = 1;
        if (!realip_list_match(trusted, out)) return 1;
    }
    return seen; /* every entry trusted: *out holds the leftmost */
}

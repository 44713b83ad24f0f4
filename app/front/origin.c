/* origin: Origin against Host and the allow list, Host against --allowed-hosts (see origin.h). */
#include "origin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ORIGIN_HOST_MAX 256

struct authority {
    char host[ORIGIN_HOST_MAX];
    long port; /* -1 when the text named none */
};

/* Splits "host[:port]" or "[v6]:port" (up to `end`) into host and port. Returns 0, or -1 if malformed. */
static int parse_authority(const char *s, const char *end, struct authority *out) {
    const char *host = s, *host_end, *colon;
    if (*s == '[') {
        host_end = memchr(s, ']', (size_t)(end - s));
        if (!host_end) return -1;
        host_end++;
        colon = host_end < end && *host_end == ':' ? host_end : NULL;
        if (!colon && host_end != end) return -1;
    } else {
        colon = memchr(s, ':', (size_t)(end - s));
        host_end = colon ? colon : end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof out->host) return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = -1;
    if (colon) {
        char *stop;
        out->port = strtol(colon + 1, &stop, 10);
        if (stop != end || colon + 1 == end || out->port < 0 || out->port > 65535) return -1;
    }
    return 0;
}

/* Parses "scheme://authority" into the authority with its port made explicit. */
static int parse_origin(const char *origin, struct authority *out) {
    long default_port;
    const char *rest;
    if (strncasecmp(origin, "http://", 7) == 0) default_port = 80, rest = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0) default_port = 443, rest = origin + 8;
    else return -1;
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '/') len--;
    if (parse_authority(rest, rest + len, out) < 0) return -1;
    if (out->port < 0) out->port = default_port;
    return 0;
}

/* Same-origin: the Host header names the host and port the Origin names. A Host without a port
 * means the Origin scheme's default port (e.g. behind a TLS proxy on 443). */
static int same_origin(const char *origin, const char *host) {
    struct authority o, h;
    if (!host || parse_origin(origin, &o) < 0) return 0;
    if (parse_authority(host, host + strlen(host), &h) < 0) return 0;
    if (h.port < 0) h.port = strncasecmp(origin, "https:", 6) == 0 ? 443 : 80;
    return strcasecmp(o.host, h.host) == 0 && o.port == h.port;
}

static int listed(const char *origin, const char *const *allow, size_t nallow) {
    size_t olen = strlen(origin);
    if (olen > 0 && origin[olen - 1] == '/') olen--;
    for (size_t i = 0; i < nallow; i++) {
        const char *a = allow[i];
        size_t alen = strlen(a);
        if (alen > 0 && a[alen - 1] == '/') alen--;
        if (strcmp(a, "*") == 0) return 1;
        if (alen == olen && strncasecmp(a, origin, olen) == 0) return 1;
    }
    return 0;
}

int origin_allowed(const char *origin, const char *host, const char *const *allow, size_t nallow) {
    if (!origin) return 1;
    return same_origin(origin, host) || listed(origin, allow, nallow);
}

/* A host name, an IPv4 address, or a bracketed IPv6 address: nothing a Host header could smuggle. */
static int host_chars_ok(const char *host) {
    const char *ok = host[0] == '[' ? "0123456789abcdefABCDEF:.[]" : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
    return host[0] && host[strspn(host, ok)] == '\0';
}

int origin_host_entry_valid(const char *entry) {
    struct authority a;
    return parse_authority(entry, entry + strlen(entry), &a) == 0 && host_chars_ok(a.host);
}

int origin_host_allowed(const char *host, const char *const *allowed, size_t nallowed) {
    struct authority h, a;
    if (nallowed == 0) return 1;
    if (!host || parse_authority(host, host + strlen(host), &h) < 0) return 0;
    for (size_t i = 0; i < nallowed; i++) {
        if (parse_authority(allowed[i], allowed[i] + strlen(allowed[i]), &a) < 0) continue;
        if (strcasecmp(a.host, h.host) == 0 && (a.port < 0 || a.port == h.port)) return 1;
    }
    return 0;
}

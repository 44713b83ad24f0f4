/* realip: the client's real address behind trusted proxies (--trusted-proxies), as pure functions.
 *
 * Behind a proxy every connection comes from the proxy's address, so per-address limits (--max-per-ip)
 * and logs would see one client. A proxy says who its client is in a PROXY protocol header before the
 * request (HAProxy's send-proxy / send-proxy-v2: v1 text or v2 binary) or in X-Forwarded-For. Both
 * are believed only from a peer in the trusted list; from anyone else they are ignored, or a client
 * could name any address. In X-Forwarded-For each proxy appends the address it saw, so the client is
 * the rightmost entry that is not itself a trusted proxy (anything left of it was written by the
 * client and proves nothing).
 *
 * No sockets, no state: the front door (which reads request heads itself) feeds these its bytes and
 * its headers. Outside input: fuzzed (fuzz/fuzz_realip.c). */
#ifndef SB_REALIP_H
#define SB_REALIP_H

#include <stddef.h>
#include <stdint.h>

#define REALIP_MAX_CIDRS 64
#define REALIP_TEXT_MAX 46        /* an address as text, NUL included (INET6_ADDRSTRLEN) */
#define REALIP_PROXY_V1_MAX 107   /* the longest v1 header, CRLF included (the spec's bound) */
#define REALIP_PROXY_V2_MAX (16 + 65535)

/* An IPv4 or IPv6 address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is stored as IPv4. */
struct realip_addr {
    int v6;           /* 0: IPv4 in b[0..4) */
    uint8_t b[16];
};

struct realip_cidr {
    struct realip_addr net;
    unsigned bits;    /* prefix length: 0-32 or 0-128 */
};

struct realip_list {
    struct realip_cidr v[REALIP_MAX_CIDRS];
    size_t n;
};

/* Parses an address (no brackets, no port); 0, or -1. */
int realip_addr_parse(const char *text, size_t len, struct realip_addr *out);
/* Writes the address as text into out (REALIP_TEXT_MAX bytes). */
void realip_addr_format(const struct realip_addr *a, char *out);

/* Parses "CIDR,CIDR,..." (an address alone is a /32 or /128; spaces around entries are allowed);
 * 0, or -1 with the reason in err. Host bits set in a CIDR (10.0.0.1/8) are refused: a typo. */
int realip_list_parse(const char *text, struct realip_list *out, char *err, size_t cap);
/* 1 if a is inside one of the list's networks. */
int realip_list_match(const struct realip_list *l, const struct realip_addr *a);

/* What a PROXY protocol header says. */
struct realip_proxy {
    int has_addr;             /* 0: v1 UNKNOWN, v2 LOCAL or an unsupported family: keep the peer's address */
    struct realip_addr src;   /* the client's address */
    uint16_t src_port;
    int version;              /* 1 or 2 */
};
#define REALIP_NEED_MORE 0
#define REALIP_INVALID (-1)
/* Reads a PROXY v1 or v2 header at the start of buf[0..len). Returns the header's length (the
 * request starts after it) with *out filled, REALIP_NEED_MORE when buf is a prefix of a header that
 * may still be valid, or REALIP_INVALID when it is not a PROXY header (the connection must then be
 * refused: a trusted proxy that sends the protocol always does). */
long realip_proxy_parse(const uint8_t *buf, size_t len, struct realip_proxy *out);

/* Whether buf[0..len) starts with a PROXY header's signature ("PROXY " or v2's 12 bytes), for a
 * trusted peer that may send one or not (HAProxy with send-proxy, nginx without): REALIP_IS_PROXY (then
 * realip_proxy_parse decides the rest), REALIP_NOT_PROXY (the bytes are something else: a request), or
 * REALIP_MAYBE_PROXY while they are a prefix of a signature and more are needed to tell. */
enum realip_sniff { REALIP_NOT_PROXY, REALIP_MAYBE_PROXY, REALIP_IS_PROXY };
enum realip_sniff realip_proxy_sniff(const uint8_t *buf, size_t len);

/* The client's address from an X-Forwarded-For value: the rightmost entry that is not in trusted,
 * or the leftmost when every entry is trusted. 1 with *out filled; 0 when the header names no
 * address; -1 when the entry chosen is not an address (then keep the peer's). */
int realip_xff_pick(const char *xff, const struct realip_list *trusted, struct realip_addr *out);

#endif

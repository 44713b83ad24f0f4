/* proxyhead: a connection's client behind a trusted proxy (see proxyhead.h). */
#include "proxyhead.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static void peer_addr(const struct sockaddr_in *peer, struct realip_addr *out) {
    memset(out, 0, sizeof *out);
    memcpy(out->b, &peer->sin_addr, 4);
}

void proxyhead_begin(struct proxyhead *ph, const struct realip_list *trusted, const struct sockaddr_in *peer) {
    struct realip_addr a;
    peer_addr(peer, &a);
    memset(ph, 0, sizeof *ph);
    ph->stage = realip_list_match(trusted, &a) ? PROXYHEAD_SNIFF : PROXYHEAD_UNTRUSTED;
}

int proxyhead_pending(const struct proxyhead *ph) { return ph->stage == PROXYHEAD_SNIFF; }

int proxyhead_trusted(const struct proxyhead *ph) { return ph->stage != PROXYHEAD_UNTRUSTED; }

long proxyhead_take(struct proxyhead *ph, const uint8_t *buf, size_t len) {
    enum realip_sniff sniff = realip_proxy_sniff(buf, len);
    if (sniff == REALIP_NOT_PROXY) {
        ph->stage = PROXYHEAD_NONE;
        return 0;
    }
    if (sniff == REALIP_MAYBE_PROXY) return PROXYHEAD_MORE;
    long n = realip_proxy_parse(buf, len, &ph->hdr);
    if (n == REALIP_NEED_MORE) return PROXYHEAD_MORE;
    if (n == REALIP_INVALID) return PROXYHEAD_BAD;
    ph->stage = PROXYHEAD_SEEN;
    return n;
}

static void set_client(const struct realip_addr *a, unsigned port, struct client_addr *out) {
    memset(out, 0, sizeof *out);
    if (a->v6) {
        out->sa.v6.sin6_family = AF_INET6;
        out->sa.v6.sin6_port = htons((uint16_t)port);
        memcpy(&out->sa.v6.sin6_addr, a->b, 16);
        out->len = sizeof out->sa.v6;
    } else {
        out->sa.v4.sin_family = AF_INET;
        out->sa.v4.sin_port = htons((uint16_t)port);
        memcpy(&out->sa.v4.sin_addr, a->b, 4);
        out->len = sizeof out->sa.v4;
    }
    realip_addr_format(a, out->ip);
    out->port = port;
}

/* Every X-Forwarded-For field's value, in order, as one comma-separated list in join (HEAD_MAX bytes:
 * the values and their commas are shorter than the head they come from); NULL when there is none. */
static const char *xff_join(const struct head *h, char *join) {
    size_t n = 0;
    int any = 0;
    for (size_t i = 0; i < h->nfields; i++) {
        if (strcasecmp(h->fields[i].name, "X-Forwarded-For") != 0) continue;
        size_t len = strlen(h->fields[i].value);
        if (n + len + 2 > HEAD_MAX) break;
        if (any) join[n++] = ',';
        memcpy(join + n, h->fields[i].value, len);
        n += len;
        any = 1;
    }
    join[n] = '\0';
    return any ? join : NULL;
}

void proxyhead_client(const struct proxyhead *ph, const struct realip_list *trusted, const struct sockaddr_in *peer,
                      const struct head *h, char *join, struct client_addr *out) {
    struct realip_addr a;
    if (ph->stage == PROXYHEAD_SEEN && ph->hdr.has_addr) {
        set_client(&ph->hdr.src, ph->hdr.src_port, out);
        return;
    }
    const char *xff = ph->stage == PROXYHEAD_NONE ? xff_join(h, join) : NULL;
    if (xff && realip_xff_pick(xff, trusted, &a) == 1) {
        set_client(&a, 0, out);
        return;
    }
    peer_addr(peer, &a);
    set_client(&a, ntohs(peer->sin_port), out);
}

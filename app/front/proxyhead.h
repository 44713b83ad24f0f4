/* proxyhead: who the client of a connection is, as the front door reads its request head.
 *
 * Behind a proxy every connection comes from the proxy's address (realip.h says how a proxy names its
 * client). For a connection from a --trusted-proxies peer the acceptor (acceptor.h) hands the first
 * bytes to proxyhead_take before it looks for a request head: a PROXY protocol header there (HAProxy's
 * send-proxy / send-proxy-v2) names the client and is cut off, so that neither the head parser nor
 * CivetWeb ever sees it; any other start is the request itself (a trusted nginx or Caddy sends none, and
 * neither do HAProxy's health checks without check-send-proxy). Once the head is whole, proxyhead_client
 * says who the client is: the PROXY header's address; else, from a trusted peer, X-Forwarded-For's (its
 * fields in order as one list: HAProxy's `option forwardfor` adds a field of its own where nginx
 * appends to the one it got); else the peer. A PROXY header settles it even when it names no address
 * (LOCAL, UNKNOWN): a proxy that speaks it may be in TCP mode, passing on untouched an X-Forwarded-For
 * the client wrote itself.
 *
 * From any other peer neither is looked at: a PROXY header is then no HTTP request (400) and
 * X-Forwarded-For just a header. Pure: no sockets, no locks; the state is the connection's own. */
#ifndef SB_PROXYHEAD_H
#define SB_PROXYHEAD_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "head.h"
#include "realip.h"

/* The client's address, as the rest of the server gets it (acceptor.h's front_request). */
struct client_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } sa;                        /* the port is 0 when unknown (X-Forwarded-For names none) */
    socklen_t len;
    char ip[REALIP_TEXT_MAX];    /* the address as text: the key of the per-address counts, and the logs' */
    unsigned port;
};

/* One connection's proxy stage. */
struct proxyhead {
    uint8_t stage;               /* enum below */
    struct realip_proxy hdr;     /* PROXYHEAD_SEEN: what the header said */
};
enum { PROXYHEAD_UNTRUSTED, PROXYHEAD_SNIFF, PROXYHEAD_NONE, PROXYHEAD_SEEN };

/* Starts a connection from peer: its first bytes go to proxyhead_take when proxyhead_pending says so. */
void proxyhead_begin(struct proxyhead *ph, const struct realip_list *trusted, const struct sockaddr_in *peer);
/* 1 while the connection may still start with a PROXY header (a trusted peer, not decided yet). */
int proxyhead_pending(const struct proxyhead *ph);
/* 1 for a connection from a trusted proxy. */
int proxyhead_trusted(const struct proxyhead *ph);

#define PROXYHEAD_MORE (-1)   /* not enough bytes to tell yet */
#define PROXYHEAD_BAD (-2)    /* a PROXY header that is not valid: refuse the connection (400) */
/* Looks at everything received so far, buf[0..len), while proxyhead_pending: the length of a PROXY
 * header to cut off its start (0 when there is none: the request starts at once), PROXYHEAD_MORE or
 * PROXYHEAD_BAD. */
long proxyhead_take(struct proxyhead *ph, const uint8_t *buf, size_t len);

/* The client of a connection from peer whose whole head is h (parsed). join: HEAD_MAX bytes of room
 * to put X-Forwarded-For's fields together in. */
void proxyhead_client(const struct proxyhead *ph, const struct realip_list *trusted, const struct sockaddr_in *peer,
                      const struct head *h, char *join, struct client_addr *out);

#endif

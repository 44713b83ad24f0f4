/* acceptor: the front door. switchboard's own listening socket, and every request head read on the
 * event loops, so that no thread ever waits for a client to finish its request.
 *
 * CivetWeb read each head with blocking reads on one of its few workers, so a handful of sockets that
 * sent nothing (a browser's speculative preconnects do that) held every worker until its 10 s request
 * timeout, and nobody else got in. Now one listening socket is watched by every loop (EPOLLEXCLUSIVE:
 * the kernel wakes one loop per connection, whichever waits); the loop that accepts a connection reads
 * its head as the bytes arrive, without blocking, and hands the whole head on (acceptor_head_fn) on
 * that same loop's thread: a WebSocket upgrade stays on that loop (ws.h), anything else goes to
 * CivetWeb's workers (server.h). One socket rather than SO_REUSEPORT per loop: a second server
 * started on the same port fails with "address in use" instead of silently sharing the traffic, and a
 * connection goes to a loop that is free to take it rather than to the one its addresses hash to.
 *
 * Bounds, so that what a client sends costs the server no more than this however it sends it:
 * - a head is at most HEAD_MAX bytes (16 KiB, head.h says why), else 431 and the connection is closed;
 * - it must be whole within --header-timeout seconds of the accept, else 408 (or, when nothing was
 *   received at all, just the close), on a per-loop list in accept order and one timerfd per loop;
 * - with --max-per-ip, at most that many heads pending from one address; more get 429 and the close
 *   (not counted for a --trusted-proxies peer, whose connections are many clients': acceptor.c says why);
 * - a pending connection costs its descriptor, one small record and an epoll entry, and a buffer only
 *   while part of a head is held (1 KiB, doubling up to HEAD_MAX): nothing while the client is silent.
 * Counted in /metrics: switchboard_request_heads_timed_out_total, _refused_total by reason.
 *
 * Behind a proxy: from a --trusted-proxies peer, a PROXY protocol header before the request is read and
 * cut off, and the client it names, or else X-Forwarded-For's, is the one handed on (proxyhead.h);
 * a PROXY header that is not valid gets 400 (counted as a bad head).
 *
 * Threads: the listening socket and every pending head live on the loops' threads; a pending head
 * belongs to the loop that accepted it, its record freed there or by acceptor_free. The per-address
 * counts are shared by the loops under a lock. */
#ifndef SB_ACCEPTOR_H
#define SB_ACCEPTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "head.h"

struct loop;
struct loops;

/* A whole request head, on the thread of the loop that read it. Valid during the call only. */
struct front_request {
    int fd;                        /* the connection, non-blocking; the callee owns it */
    struct loop *loop;             /* the loop whose thread this is */
    const struct sockaddr *peer;   /* the client: the peer, or the one a trusted proxy named (proxyhead.h); */
    socklen_t peer_len;            /* IPv4, or IPv6 behind a proxy */
    const char *ip;                /* the client's address as text: what per-address limits count, logs show */
    unsigned port;                 /* 0 when unknown (named by X-Forwarded-For) */
    const struct head *head;       /* the head parsed (from a copy: `bytes` is as received) */
    uint8_t *bytes;                /* everything read so far: the head (head_len bytes), then what the */
    size_t head_len, len;          /* client sent after it (a body's start, a WebSocket frame) */
};

typedef void (*acceptor_head_fn)(void *ctx, const struct front_request *rq);

struct acceptor_settings {
    const char *port;        /* --port: "8080" or "IPV4:PORT" */
    long header_timeout;     /* seconds */
    long max_per_ip;         /* heads pending from one address; 0 = off */
    const char *trusted_proxies; /* --trusted-proxies, "CIDR,..." (realip.h); NULL or "" = none */
};

struct acceptor;

/* Binds and listens (nothing is accepted before acceptor_start). NULL and the reason in err when the
 * port cannot be had. */
struct acceptor *acceptor_new(const struct acceptor_settings *s, char *err, size_t cap);
/* Starts accepting on every loop; each whole head goes to on_head(ctx, ...). -1 when out of resources. */
int acceptor_start(struct acceptor *a, struct loops *ls, acceptor_head_fn on_head, void *ctx);
/* Closes the listening socket and every connection whose head is still pending. After loops_stop. */
void acceptor_free(struct acceptor *a);
/* Answers `status` (http_send_text) on a connection no one serves and closes it, lingering (loop_linger). */
void front_refuse(struct loop *lp, int fd, int status, const char *headers, const char *detail);

#endif

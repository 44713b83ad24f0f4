/* redisev: hiredis's asynchronous API on an epoll set of switchboard's own.
 *
 * hiredis (Debian's libhiredis 0.14) parses RESP and keeps the reply callbacks; it leaves waiting for
 * its socket to the caller through five hooks (addRead, delRead, addWrite, delWrite, cleanup). This
 * adapter turns them into epoll_ctl calls on one epoll set, level-triggered, and dispatches that
 * set's events back into hiredis. It is what hiredis's adapters/ae.h does for Redis's own loop.
 *
 * Ownership: a struct redis_ev lives in its owner (the cluster engine), outlives the context it is
 * attached to, and is the epoll event's data.ptr. hiredis frees the context (after a disconnect or
 * redisAsyncFree); the cleanup hook then unregisters the socket and clears ev->ac, so a stale event
 * for it is ignored. One thread: the one that runs the epoll set. */
#ifndef SB_REDISEV_H
#define SB_REDISEV_H

#include <hiredis/async.h>
#include <stdint.h>

struct redis_ev {
    int epfd;
    int fd;
    uint32_t events;      /* EPOLLIN / EPOLLOUT hiredis wants now */
    int registered;
    redisAsyncContext *ac; /* NULL once hiredis has let go of it */
};

/* Hooks ac to epfd through ev. Returns 0, or -1 if ac already has an adapter. */
int redis_ev_attach(struct redis_ev *ev, int epfd, redisAsyncContext *ac);
/* Hands epoll's events for ev's socket to hiredis (which may free the context: ev->ac is then NULL). */
void redis_ev_handle(struct redis_ev *ev, uint32_t events);

#endif

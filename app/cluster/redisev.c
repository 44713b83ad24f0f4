/* redisev: hiredis's asynchronous hooks as epoll_ctl calls (see redisev.h). */
#include "redisev.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "log.h"

static void update(struct redis_ev *ev, uint32_t events) {
    if (events == ev->events && ev->registered == (events != 0)) return;
    struct epoll_event e = {.events = events, .data.ptr = ev};
    int op = !events ? EPOLL_CTL_DEL : ev->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ev->epfd, op, ev->fd, &e) < 0 && op != EPOLL_CTL_DEL)
        log_warn("redis: cannot watch the Redis socket: %s", strerror(errno));
    ev->registered = events != 0;
    ev->events = events;
}

static void add_read(void *p) { struct redis_ev *ev = p; update(ev, ev->events | EPOLLIN); }
static void del_read(void *p) { struct redis_ev *ev = p; update(ev, ev->events & ~(uint32_t)EPOLLIN); }
static void add_write(void *p) { struct redis_ev *ev = p; update(ev, ev->events | EPOLLOUT); }
static void del_write(void *p) { struct redis_ev *ev = p; update(ev, ev->events & ~(uint32_t)EPOLLOUT); }

static void cleanup(void *p) {
    struct redis_ev *ev = p;
    update(ev, 0);
    ev->ac = NULL;
}

int redis_ev_attach(struct redis_ev *ev, int epfd, redisAsyncContext *ac) {
    if (ac->ev.data) return -1;
    ev->epfd = epfd;
    ev->fd = ac->c.fd;
    ev->events = 0;
    ev->registered = 0;
    ev->ac = ac;
    ac->ev.data = ev;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

void redis_ev_handle(struct redis_ev *ev, uint32_t events) {
    if (ev->ac && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) redisAsyncHandleRead(ev->ac);
    if (ev->ac && (events & (EPOLLOUT | EPOLLERR))) redisAsyncHandleWrite(ev->ac);
}

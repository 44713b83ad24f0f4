/* linger: lingering close (see linger.h). */
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define LINGER_EVENTS 64
#define LINGER_STACK (128 * 1024)

struct lingering {
    int fd;
    size_t bytes;    /* read and dropped so far; the linger thread only */
    int64_t until_ms;
    struct lingering *prev, *next; /* the list, oldest first: deadlines in order */
};

struct linger_set {
    int epfd, wakefd;
    pthread_t thread;
    pthread_mutex_t lock;         /* guards the list, n and stopping */
    struct lingering *head, *tail;
    size_t n;
    int stopping;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unlink_locked(struct linger_set *l, struct lingering *e) {
    if (e->prev) e->prev->next = e->next;
    else l->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else l->tail = e->prev;
    l->n--;
}

/* Closes and frees e, which is off the list. The linger thread only (or linger_stop after it). */
static void finish(struct linger_set *l, struct lingering *e, int cut) {
    if (cut) metrics_add(M_LINGER_CUT, 1); /* counted before the close a watcher may see first */
    epoll_ctl(l->epfd, EPOLL_CTL_DEL, e->fd, NULL);
    close(e->fd);
    free(e);
}

/* Reads and drops what arrived; 1 once e is to be closed (the peer closed, the socket broke, or the
 * size bound was passed: *cut). */
static int drain(struct lingering *e, int *cut) {
    char buf[16384];
    for (;;) {
        ssize_t n = recv(e->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            e->bytes += (size_t)n;
            if (e->bytes > LINGER_BYTES) return *cut = 1;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        }
    }
}

static void on_event(struct linger_set *l, struct lingering *e) {
    int cut = 0;
    if (!drain(e, &cut)) return;
    pthread_mutex_lock(&l->lock);
    unlink_locked(l, e);
    pthread_mutex_unlock(&l->lock);
    finish(l, e, cut);
}

/* Closes those whose time is up; returns the wait until the next deadline (-1: none). */
static int expire(struct linger_set *l) {
    int64_t now = now_ms();
    struct lingering *done = NULL;
    pthread_mutex_lock(&l->lock);
    while (l->head && l->head->until_ms <= now) {
        struct lingering *e = l->head;
        unlink_locked(l, e);
        e->next = done;
        done = e;
    }
    int wait = l->head ? (int)(l->head->until_ms - now) : -1;
    pthread_mutex_unlock(&l->lock);
    while (done) {
        struct lingering *e = done;
        done = e->next;
        finish(l, e, 1);
    }
    return wait;
}

static int stopping(struct linger_set *l) {
    pthread_mutex_lock(&l->lock);
    int s = l->stopping;
    pthread_mutex_unlock(&l->lock);
    return s;
}

static void *linger_main(void *arg) {
    struct linger_set *l = arg;
    struct epoll_event evs[LINGER_EVENTS];
    while (!stopping(l)) {
        int n = epoll_wait(l->epfd, evs, LINGER_EVENTS, expire(l));
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                on_event(l, evs[i].data.ptr);
            } else {
                uint64_t v;
                if (read(l->wakefd, &v, sizeof v) < 0 && errno != EAGAIN) log_warn("linger: eventfd: %s", strerror(errno));
            }
        }
    }
    return NULL;
}

struct linger_set *linger_start(void) {
    struct linger_set *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, LINGER_STACK);
    int ok = l->epfd >= 0 && l->wakefd >= 0 && epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) == 0 &&
             pthread_create(&l->thread, &attr, linger_main, l) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        if (l->epfd >= 0) close(l->epfd);
        if (l->wakefd >= 0) close(l->wakefd);
        pthread_mutex_destroy(&l->lock);
        free(l);
        log_warn("linger: cannot start its thread: sockets close at once");
        return NULL;
    }
    pthread_setname_np(l->thread, "sb-linger");
    return l;
}

void linger_stop(struct linger_set *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stopping = 1;
    pthread_mutex_unlock(&l->lock);
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof one) < 0) log_warn("linger: eventfd: %s", strerror(errno));
    pthread_join(l->thread, NULL);
    while (l->head) {
        struct lingering *e = l->head;
        unlink_locked(l, e);
        finish(l, e, 0);
    }
    close(l->epfd);
    close(l->wakefd);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void linger_add(struct linger_set *l, int fd) {
    if (!l) return;
    struct lingering *e = malloc(sizeof *e);
    int copy = e ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    pthread_mutex_lock(&l->lock);
    int ok = copy >= 0 && !l->stopping && l->n < LINGER_MAX;
    int was_empty = !l->head;
    if (ok) {
        shutdown(copy, SHUT_WR); /* our FIN, after what was written */
        e->fd = copy;
        e->bytes = 0;
        e->until_ms = now_ms() + LINGER_MS;
        e->next = NULL;
        e->prev = l->tail;
        if (l->tail) l->tail->next = e;
        else l->head = e;
        l->tail = e;
        l->n++;
        /* under the lock: the thread may close it the moment it is watched, but not before it is listed */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = e};
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, copy, &ev) < 0) log_warn("linger: epoll: %s", strerror(errno));
    }
    pthread_mutex_unlock(&l->lock);
    if (!ok) {
        metrics_add(M_LINGER_CUT, 1);
        if (copy >= 0) close(copy);
        free(e);
        return;
    }
    metrics_add(M_LINGER_CLOSES, 1);
    uint64_t one = 1;
    if (was_empty && write(l->wakefd, &one, sizeof one) < 0 && errno != EAGAIN) log_warn("linger: eventfd: %s", strerror(errno));
}

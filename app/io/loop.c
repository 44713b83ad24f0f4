/* loop: epoll threads for open WebSockets (see loop.h).
 *
 * Each loop has its own epoll set, in edge-triggered mode: a socket is read until it would block (or
 * until LOOP_READ_BUDGET, after which it waits its turn on the `again` list so one busy client cannot
 * starve the rest), and its EPOLLOUT edge says a full socket has drained. A turn: wait, read and
 * handle every ready connection inside one outbox batch, end the batch (the writes), then flush and
 * check each connection the turn touched, ending those that are done. New connections and kicks
 * arrive through a mailbox and an eventfd, so only the loop's own thread changes its lists; a kick
 * cannot ride on epoll itself, because a connection worth kicking may have a full socket and nothing
 * to read, and so no readiness to report. */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linger.h"
#include "log.h"
#include "wsframe.h"

#define LOOP_EVENTS 256             /* epoll events taken per turn */
#define LOOP_RBUF (64 * 1024)       /* bytes per recv */
#define LOOP_READ_BUDGET (256 * 1024) /* bytes read from one connection per turn */
#define LOOP_STACK (256 * 1024)
#define LOOP_GATHER_MIN 64          /* queues a turn must be about to write before it gathers more input */
#define LOOP_GATHER_FANOUT 8        /* ... and at least this many per input event */
#define LOOP_GATHER_ROUNDS 4        /* and how many times it looks */

struct loop {
    struct loops *ls;
    int epfd, wakefd;
    pthread_t thread;
    pthread_mutex_t mail_lock;     /* guards mail, kicks, stopping and every connection's `kicked` */
    struct loop_conn *mail;        /* handed over, not yet registered */
    struct loop_conn *kicks;       /* to be looked at */
    int stopping;
    /* The loop's thread only: */
    struct loop_conn *conns;       /* every registered connection */
    struct loop_conn *touched;     /* this turn's */
    struct loop_conn *again;       /* input left to read */
    struct outbox_batch batch;
    uint8_t rbuf[LOOP_RBUF];
};

struct loops {
    struct outbox *ob;
    struct linger_set *linger;         /* where an ending socket the peer has not closed goes (linger.h) */
    size_t n;
    unsigned next;                 /* atomic: round-robin for loops_adopt */
    struct loop *loop[];
};

static void touch(struct loop *lp, struct loop_conn *c) {
    if (c->touched) return;
    c->touched = 1;
    c->touch_next = lp->touched;
    lp->touched = c;
}

/* Appends data to the carried-over input; -1 when out of memory. */
static int keep(struct loop_conn *c, const uint8_t *data, size_t n) {
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + n) cap *= 2;
        uint8_t *in = realloc(c->in, cap);
        if (!in) return -1;
        c->in = in;
        c->in_cap = cap;
    }
    memcpy(c->in + c->in_len, data, n);
    c->in_len += n;
    return 0;
}

static void release_input(struct loop_conn *c) {
    free(c->in);
    c->in = NULL;
    c->in_len = c->in_cap = 0;
}

/* Hands every whole frame in buf to the handler; returns the bytes used. */
static size_t parse(struct loop_conn *c, uint8_t *buf, size_t len) {
    size_t off = 0;
    while (!c->discard && off < len) {
        struct wsframe f;
        enum wsframe_result r = wsframe_decode(buf + off, len - off, c->max_payload, &f);
        if (r == WSFRAME_MORE) return off;
        if (r == WSFRAME_FAIL) {
            c->discard = 1;
            c->h->violation(c->ctx, f.close_code, f.reason);
            break;
        }
        off += f.size;
        if (!c->h->frame(c->ctx, f.bits, f.payload, f.len)) c->discard = 1;
    }
    return len;
}

static void consume(struct loop_conn *c, uint8_t *data, size_t n) {
    if (c->discard) return;
    if (!c->in_len) {
        size_t used = parse(c, data, n);
        if (used < n && keep(c, data + used, n - used) < 0) {
            c->discard = 1;
            c->h->violation(c->ctx, 1011, "out of memory");
        }
        return;
    }
    if (keep(c, data, n) < 0) {
        c->discard = 1;
        c->h->violation(c->ctx, 1011, "out of memory");
        return;
    }
    size_t used = parse(c, c->in, c->in_len);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (!c->in_len || c->discard) release_input(c);
}

/* Reads until the socket would block, it ends, or the turn's budget for it is spent. `events` are
 * epoll's for it: after a hang-up, a short read is no sign that the end has been read too. */
static void read_input(struct loop *lp, struct loop_conn *c, uint32_t events) {
    int hangup = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    size_t budget = LOOP_READ_BUDGET;
    while (!c->eof) {
        if (budget == 0) {
            if (!c->again) {
                c->again = 1;
                c->again_next = lp->again;
                lp->again = c;
            }
            return;
        }
        ssize_t n = recv(c->fd, lp->rbuf, LOOP_RBUF, MSG_DONTWAIT);
        if (n > 0) {
            consume(c, lp->rbuf, (size_t)n);
            if (n < LOOP_RBUF && !hangup) return; /* drained: more data makes a new edge */
            budget -= (size_t)n < budget ? (size_t)n : budget;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            c->eof = 1;
        }
    }
}

static void unlink_again(struct loop *lp, struct loop_conn *c) {
    for (struct loop_conn **p = &lp->again; *p; p = &(*p)->again_next)
        if (*p == c) {
            *p = c->again_next;
            return;
        }
}

/* Takes c off the kick list for good: `kicked` stays set, so a kick that comes while `ended` runs
 * (allowed until outbox_detach) cannot queue it again. */
static void unlink_kick(struct loop *lp, struct loop_conn *c) {
    pthread_mutex_lock(&lp->mail_lock);
    for (struct loop_conn **p = &lp->kicks; c->kicked && *p; p = &(*p)->kick_next)
        if (*p == c) {
            *p = c->kick_next;
            break;
        }
    c->kicked = 1;
    pthread_mutex_unlock(&lp->mail_lock);
}

static void end(struct loop *lp, struct loop_conn *c) {
    epoll_ctl(lp->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    unlink_kick(lp, c);
    if (c->again) unlink_again(lp, c);
    if (c->prev) c->prev->next = c->next;
    else lp->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    release_input(c);
    if (!c->eof) linger_add(lp->ls->linger, c->fd); /* the peer may still be sending */
    c->h->ended(c->ctx);
}

static void add(struct loop *lp, struct loop_conn *c) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
    c->prev = NULL;
    c->next = lp->conns;
    if (lp->conns) lp->conns->prev = c;
    lp->conns = c;
    if (epoll_ctl(lp->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        log_warn("loop: cannot watch a WebSocket: %s", strerror(errno));
        c->eof = 1;
    }
    touch(lp, c); /* whatever happened to it before it got here is settled this turn */
}

/* Registers what the mailbox holds; returns 1 once the loop is to stop. */
static int take_mail(struct loop *lp) {
    uint64_t n;
    if (read(lp->wakefd, &n, sizeof n) < 0 && errno != EAGAIN) log_warn("loop: eventfd: %s", strerror(errno));
    pthread_mutex_lock(&lp->mail_lock);
    struct loop_conn *mail = lp->mail;
    lp->mail = NULL;
    /* under the lock: once `kicked` is clear, a kick from another thread rewrites kick_next */
    for (struct loop_conn *c = lp->kicks; c; c = c->kick_next) {
        c->kicked = 0;
        touch(lp, c);
    }
    lp->kicks = NULL;
    int stopping = lp->stopping;
    pthread_mutex_unlock(&lp->mail_lock);
    while (mail) {
        struct loop_conn *c = mail;
        mail = c->mail_next;
        add(lp, c);
    }
    return stopping;
}

/* After the batch's writes: flushes what each touched connection still has queued, ends the done. */
static void settle(struct loop *lp) {
    while (lp->touched) {
        struct loop_conn *c = lp->touched;
        lp->touched = c->touch_next;
        c->touched = 0;
        if (c->eof || c->h->flush(c->ctx)) end(lp, c);
    }
}

#define LOOP_WATCH_TAG 1u /* the low bit of a loop_watch's address in epoll's data (loop.h) */

/* The watch an event names, or NULL when it names a connection or the mailbox. */
static struct loop_watch *watch_of(const struct epoll_event *ev) {
    uintptr_t v = (uintptr_t)ev->data.u64;
    return v & LOOP_WATCH_TAG ? (struct loop_watch *)(v & ~(uintptr_t)LOOP_WATCH_TAG) : NULL;
}

/* Reads what the events say; returns how many there were. A late watch's event is kept at the front
 * of evs (slots already read) and run after the others: the others' watches may have been freed by
 * then, so the second pass must not look at their events again. */
static int handle(struct loop *lp, struct epoll_event *evs, int n, int *stop) {
    int late = 0;
    for (int i = 0; i < n; i++) {
        struct loop_watch *w = watch_of(&evs[i]);
        if (w) {
            if (w->late) evs[late++] = evs[i];
            else w->ready(w, evs[i].events);
            continue;
        }
        struct loop_conn *c = evs[i].data.ptr;
        if (!c) {
            *stop |= take_mail(lp);
            continue;
        }
        touch(lp, c);
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_input(lp, c, evs[i].events);
    }
    for (int i = 0; i < late; i++) {
        struct loop_watch *w = watch_of(&evs[i]);
        w->ready(w, evs[i].events);
    }
    return n;
}

static void turn(struct loop *lp, struct epoll_event *evs, int n, int *stop) {
    struct loop_conn *again = lp->again;
    lp->again = NULL;
    outbox_batch_begin(&lp->batch);
    while (again) {
        struct loop_conn *c = again;
        again = c->again_next;
        c->again = 0;
        touch(lp, c);
        read_input(lp, c, EPOLLRDHUP); /* whatever its last event said: read to the end */
    }
    size_t handled = (size_t)handle(lp, evs, n, stop);
    /* A turn about to fan out (write to many connections for few inputs) first takes what has arrived
     * meanwhile: the writes are the costly part, and each queue goes out in one write however much it
     * gathered. A turn with as many inputs as outputs gains nothing by waiting, only latency. */
    for (int round = 0; round < LOOP_GATHER_ROUNDS && !*stop; round++) {
        if (lp->batch.n < LOOP_GATHER_MIN || lp->batch.n < LOOP_GATHER_FANOUT * handled) break;
        n = epoll_wait(lp->epfd, evs, LOOP_EVENTS, 0);
        if (n <= 0) break;
        handled += (size_t)handle(lp, evs, n, stop);
    }
    outbox_batch_end(lp->ls->ob);
    settle(lp);
}

static void *loop_main(void *arg) {
    struct loop *lp = arg;
    struct epoll_event evs[LOOP_EVENTS];
    int stop = 0;
    while (!stop) {
        int n = epoll_wait(lp->epfd, evs, LOOP_EVENTS, lp->again ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            log_error("loop: epoll_wait: %s", strerror(errno));
            break;
        }
        turn(lp, evs, n < 0 ? 0 : n, &stop);
    }
    pthread_mutex_lock(&lp->mail_lock);
    lp->stopping = 1;
    pthread_mutex_unlock(&lp->mail_lock);
    take_mail(lp);
    while (lp->conns) end(lp, lp->conns);
    return NULL;
}

static void loop_free(struct loop *lp) {
    if (!lp) return;
    if (lp->epfd >= 0) close(lp->epfd);
    if (lp->wakefd >= 0) close(lp->wakefd);
    pthread_mutex_destroy(&lp->mail_lock);
    free(lp);
}

static struct loop *loop_new(struct loops *ls, size_t i) {
    struct loop *lp = calloc(1, sizeof *lp);
    if (!lp) return NULL;
    lp->ls = ls;
    pthread_mutex_init(&lp->mail_lock, NULL);
    lp->epfd = epoll_create1(EPOLL_CLOEXEC);
    lp->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, LOOP_STACK);
    int ok = lp->epfd >= 0 && lp->wakefd >= 0 && epoll_ctl(lp->epfd, EPOLL_CTL_ADD, lp->wakefd, &ev) == 0 &&
             pthread_create(&lp->thread, &attr, loop_main, lp) == 0;
    pthread_attr_destroy(&attr);
    if (!ok) {
        loop_free(lp);
        return NULL;
    }
    char name[16];
    snprintf(name, sizeof name, "sb-loop-%u", (unsigned)(i % 100));
    pthread_setname_np(lp->thread, name);
    return lp;
}

static void wake(struct loop *lp) {
    uint64_t one = 1;
    if (write(lp->wakefd, &one, sizeof one) < 0 && errno != EAGAIN) log_warn("loop: eventfd: %s", strerror(errno));
}

struct loops *loops_start(size_t n, struct outbox *ob) {
    struct loops *ls = n ? calloc(1, sizeof *ls + n * sizeof ls->loop[0]) : NULL;
    if (!ls) return NULL;
    ls->ob = ob;
    ls->linger = linger_start();
    for (; ls->n < n; ls->n++) {
        ls->loop[ls->n] = loop_new(ls, ls->n);
        if (!ls->loop[ls->n]) {
            loops_stop(ls);
            loops_free(ls);
            return NULL;
        }
    }
    return ls;
}

void loops_stop(struct loops *ls) {
    if (!ls) return;
    for (size_t i = 0; i < ls->n; i++) {
        struct loop *lp = ls->loop[i];
        pthread_mutex_lock(&lp->mail_lock);
        lp->stopping = 1;
        pthread_mutex_unlock(&lp->mail_lock);
        wake(lp);
    }
    for (size_t i = 0; i < ls->n; i++) pthread_join(ls->loop[i]->thread, NULL);
    linger_stop(ls->linger);
    ls->linger = NULL;
}

void loops_free(struct loops *ls) {
    if (!ls) return;
    for (size_t i = 0; i < ls->n; i++) loop_free(ls->loop[i]);
    free(ls);
}

int loops_adopt(struct loops *ls, struct loop_conn *c, int fd, const struct loop_handler *h, void *ctx,
                uint64_t max_payload) {
    struct loop *lp = ls->loop[__atomic_fetch_add(&ls->next, 1, __ATOMIC_RELAXED) % ls->n];
    c->fd = fd; /* the rest of c is zero: its connection was calloc'd */
    c->h = h;
    c->ctx = ctx;
    c->max_payload = max_payload;
    pthread_mutex_lock(&lp->mail_lock);
    int ok = !lp->stopping;
    int wake_it = ok && !lp->mail && !lp->kicks; /* else a wake is already on its way (as in loop_kick) */
    if (ok) {
        __atomic_store_n(&c->loop, lp, __ATOMIC_RELEASE);
        c->mail_next = lp->mail;
        lp->mail = c;
    }
    pthread_mutex_unlock(&lp->mail_lock);
    if (!ok) return -1;
    if (wake_it) wake(lp);
    return 0;
}

void loop_kick(struct loop_conn *c) {
    struct loop *lp = __atomic_load_n(&c->loop, __ATOMIC_ACQUIRE);
    if (!lp) return; /* not adopted yet: `add` settles it anyway */
    pthread_mutex_lock(&lp->mail_lock);
    int wake_it = !lp->kicks && !lp->mail; /* else a wake is already on its way */
    if (!c->kicked) {
        c->kicked = 1;
        c->kick_next = lp->kicks;
        lp->kicks = c;
    } else {
        wake_it = 0;
    }
    pthread_mutex_unlock(&lp->mail_lock);
    if (wake_it) wake(lp);
}

size_t loops_threads(const struct loops *ls) { return ls->n; }

struct loop *loops_get(struct loops *ls, size_t i) { return ls->loop[i]; }

int loop_watch(struct loop *lp, int fd, uint32_t events, struct loop_watch *w) {
    struct epoll_event ev = {.events = events, .data.u64 = (uintptr_t)w | LOOP_WATCH_TAG};
    return epoll_ctl(lp->epfd, EPOLL_CTL_ADD, fd, &ev);
}

void loop_unwatch(struct loop *lp, int fd) { epoll_ctl(lp->epfd, EPOLL_CTL_DEL, fd, NULL); }

void loop_adopt_here(struct loop *lp, struct loop_conn *c, int fd, const struct loop_handler *h, void *ctx,
                     uint64_t max_payload, uint8_t *early, size_t n) {
    c->fd = fd;
    c->h = h;
    c->ctx = ctx;
    c->max_payload = max_payload;
    __atomic_store_n(&c->loop, lp, __ATOMIC_RELEASE);
    add(lp, c);
    if (n) consume(c, early, n);
}

void loop_linger(struct loop *lp, int fd) { linger_add(lp->ls->linger, fd); }

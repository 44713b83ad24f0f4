/* acceptor: the listening socket and the request heads, read on the loops (see acceptor.h). */
#include "acceptor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "dict.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "proxyhead.h"

#define ACCEPT_BACKLOG 4096   /* the kernel caps it at net.core.somaxconn */
#define ACCEPT_BATCH 64       /* connections one loop accepts per event before it serves the rest */
#define ACCEPT_PAUSE_MS 100   /* out of descriptors: this loop stops accepting for this long */
#define HEAD_BUF_MIN 1024     /* a held partial head's first buffer */

struct door_loop;

/* A connection whose head is not whole yet. Allocated at accept by its loop, freed by it (or by
 * acceptor_free once the loops have stopped). */
struct pending {
    struct loop_watch w;      /* first: what epoll reports */
    struct door_loop *dl;
    int fd;
    int64_t deadline_ms;
    struct pending *prev, *next; /* the loop's list, oldest (earliest deadline) first */
    uint8_t *buf;             /* what has arrived of the head; NULL while nothing has */
    size_t len, cap;
    struct head_scan scan;
    struct sockaddr_in peer;
    struct proxyhead ph;      /* a trusted proxy's: the PROXY header, and who the client is */
    int counted;              /* holds a --max-per-ip count of pending heads for peer */
};

/* One loop's side of the door; its loop's thread only, after acceptor_start. */
struct door_loop {
    struct acceptor *a;
    struct loop *lp;
    struct loop_watch listen_w, timer_w;
    int tfd;                  /* timerfd: the oldest pending head's deadline, or a pause's end */
    int64_t resume_ms;        /* when a pause for lack of descriptors ends; 0 = none */
    int64_t armed_ms;         /* when the timer fires; 0 = not set */
    struct pending *first, *last;
    uint8_t scratch[HEAD_MAX];
    char parsed[HEAD_MAX];    /* the head being parsed (head_parse writes into it) */
    char xff[HEAD_MAX];       /* its X-Forwarded-For fields put together (proxyhead_client) */
    struct head head;
};

struct acceptor {
    int fd;
    long timeout_ms, max_per_ip;
    struct realip_list trusted; /* --trusted-proxies; read-only once made */
    acceptor_head_fn on_head;
    void *ctx;
    pthread_mutex_t ip_lock;  /* guards per_ip */
    struct dict *per_ip;      /* address -> heads pending from it (intptr_t), with --max-per-ip */
    size_t nloops;
    struct door_loop *loops;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void front_refuse(struct loop *lp, int fd, int status, const char *headers, const char *detail) {
    http_send_text(fd, status, headers, detail);
    loop_linger(lp, fd); /* the request is unread: a close would reset it, and the answer with it */
    close(fd);
}

static int parse_port(const char *spec, struct sockaddr_in *sa) {
    const char *colon = strrchr(spec, ':');
    char host[64] = "0.0.0.0";
    if (colon) snprintf(host, sizeof host, "%.*s", (int)(colon - spec), spec);
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon ? colon + 1 : spec));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

struct acceptor *acceptor_new(const struct acceptor_settings *s, char *err, size_t cap) {
    struct sockaddr_in sa;
    if (parse_port(s->port, &sa) < 0) {
        snprintf(err, cap, "cannot listen on '%s': not IPV4:PORT", s->port);
        return NULL;
    }
    struct acceptor *a = calloc(1, sizeof *a);
    if (!a || !(a->per_ip = dict_new())) {
        free(a);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->ip_lock, NULL);
    a->fd = -1;
    char why[200];
    const char *trusted = s->trusted_proxies;
    if (trusted && trusted[0] && realip_list_parse(trusted, &a->trusted, why, sizeof why) < 0) {
        snprintf(err, cap, "--trusted-proxies: %s", why);
        acceptor_free(a);
        return NULL;
    }
    a->timeout_ms = s->header_timeout * 1000;
    a->max_per_ip = s->max_per_ip;
    int one = 1;
    a->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* accepted sockets inherit TCP_NODELAY: small messages go out at once, as CivetWeb's tcp_nodelay did */
    if (a->fd < 0 || setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        bind(a->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(a->fd, ACCEPT_BACKLOG) < 0) {
        snprintf(err, cap, "cannot listen on %s: %s", s->port, strerror(errno));
        acceptor_free(a);
        return NULL;
    }
    return a;
}

/* The peer's address as text, for the per-address counts and the log. */
static void peer_ip(const struct sockaddr_in *peer, char *out, size_t cap) {
    if (!inet_ntop(AF_INET, &peer->sin_addr, out, (socklen_t)cap)) snprintf(out, cap, "?");
}

/* Counts one more head pending from ip; 0 when --max-per-ip are already pending. */
static int take_ip(struct acceptor *a, const char *ip) {
    pthread_mutex_lock(&a->ip_lock);
    intptr_t n = (intptr_t)dict_remove(a->per_ip, ip);
    int ok = n < a->max_per_ip;
    if (ok) n++;
    if (n && dict_add(a->per_ip, ip, (void *)n) < 0) ok = 0;
    pthread_mutex_unlock(&a->ip_lock);
    return ok;
}

static void release_ip(struct acceptor *a, const struct sockaddr_in *peer) {
    char ip[INET_ADDRSTRLEN];
    peer_ip(peer, ip, sizeof ip);
    pthread_mutex_lock(&a->ip_lock);
    intptr_t n = (intptr_t)dict_remove(a->per_ip, ip) - 1;
    if (n > 0) dict_add(a->per_ip, ip, (void *)n);
    pthread_mutex_unlock(&a->ip_lock);
}

/* Sets the loop's timer to its next deadline: the oldest head's, or the end of a pause. */
static void arm(struct door_loop *dl) {
    int64_t at = dl->first ? dl->first->deadline_ms : 0;
    if (dl->resume_ms && (!at || dl->resume_ms < at)) at = dl->resume_ms;
    struct itimerspec its = {{0, 0}, {at / 1000, (at % 1000) * 1000000}}; /* 0: disarmed */
    timerfd_settime(dl->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    dl->armed_ms = at;
}

/* A new head's deadline is later than every other's: the timer needs setting only when it is not
 * set at all. Heads that leave early do not reset it (a system call per connection): it fires at a
 * deadline that no longer ends anything, and on_timer sets it again. */
static void arm_for(struct door_loop *dl, int64_t deadline) {
    if (!dl->armed_ms || dl->armed_ms > deadline) arm(dl);
}

/* Takes p off its loop: unwatched, uncounted, off the list. Its socket stays open. */
static void unlist(struct pending *p) {
    struct door_loop *dl = p->dl;
    loop_unwatch(dl->lp, p->fd);
    if (p->counted) release_ip(dl->a, &p->peer);
    if (p->prev) p->prev->next = p->next;
    else dl->first = p->next;
    if (p->next) p->next->prev = p->prev;
    else dl->last = p->prev;
}

static void pending_free(struct pending *p) {
    free(p->buf);
    free(p);
}

/* Ends a pending connection, answering `status` first unless it is 0. */
static void drop(struct pending *p, int status, const char *detail) {
    unlist(p);
    if (status) front_refuse(p->dl->lp, p->fd, status, "", detail);
    else close(p->fd);
    pending_free(p);
}

/* The whole head: parsed from a copy (bytes stay as received, for CivetWeb) and handed on. */
static void deliver(struct pending *p, uint8_t *bytes, size_t len, size_t head_len) {
    struct door_loop *dl = p->dl;
    struct acceptor *a = dl->a;
    unlist(p);
    memcpy(dl->parsed, bytes, head_len);
    enum head_result r = head_parse(dl->parsed, head_len, &dl->head);
    if (r != HEAD_OK) {
        metrics_head_refused(r == HEAD_TOO_MANY ? HEAD_REFUSED_TOO_LARGE : HEAD_REFUSED_BAD);
        front_refuse(p->dl->lp, p->fd, r == HEAD_TOO_MANY ? 431 : 400, "",
                     r == HEAD_TOO_MANY ? "too many header fields" : "not an HTTP/1.x request");
    } else {
        struct client_addr c;
        proxyhead_client(&p->ph, &a->trusted, &p->peer, &dl->head, dl->xff, &c);
        struct front_request rq = {p->fd, dl->lp, &c.sa.sa, c.len, c.ip, c.port, &dl->head, bytes, head_len, len};
        a->on_head(a->ctx, &rq);
    }
    pending_free(p);
}

/* Keeps n more bytes of a head that is not whole; -1 when out of memory. */
static int hold(struct pending *p, const uint8_t *data, size_t n) {
    if (p->len + n > p->cap) {
        size_t cap = p->cap ? p->cap : HEAD_BUF_MIN;
        while (cap < p->len + n) cap *= 2;
        uint8_t *buf = realloc(p->buf, cap);
        if (!buf) return -1;
        p->buf = buf;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, data, n);
    p->len += n;
    return 0;
}

/* A trusted proxy's connection, while it may start with a PROXY header: cuts a whole one off what is
 * held (the request starts after it). -1 when the header is not valid and the connection was refused. */
static int take_proxy_header(struct pending *p) {
    long n = proxyhead_take(&p->ph, p->buf, p->len);
    if (n == PROXYHEAD_BAD) {
        metrics_head_refused(HEAD_REFUSED_BAD);
        drop(p, 400, "not a valid PROXY protocol header");
        return -1;
    }
    if (n > 0) {
        p->len -= (size_t)n;
        memmove(p->buf, p->buf + n, p->len);
    }
    return 0;
}

/* loop_watch.ready for a pending connection: reads what has come, until the head is whole, the socket
 * would block, or the head is too long. Bytes that arrive in one read with a whole head are handed on
 * from the loop's scratch buffer, never copied: the usual case. A trusted proxy's first bytes are held
 * until proxyhead says whether a PROXY header starts them; it counts within the 16 KiB and the
 * --header-timeout of the head. */
static void on_readable(struct loop_watch *w, uint32_t events) {
    struct pending *p = (struct pending *)w;
    struct door_loop *dl = p->dl;
    for (;;) {
        ssize_t n = recv(p->fd, dl->scratch, HEAD_MAX - p->len, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            drop(p, 0, NULL); /* the client left, or the socket broke */
            return;
        }
        if (!p->len && !proxyhead_pending(&p->ph)) {
            size_t whole = head_scan(&p->scan, (const char *)dl->scratch, (size_t)n);
            if (whole) {
                deliver(p, dl->scratch, (size_t)n, whole);
                return;
            }
        }
        if (hold(p, dl->scratch, (size_t)n) < 0) {
            drop(p, 503, "out of memory");
            return;
        }
        if (proxyhead_pending(&p->ph) && take_proxy_header(p) < 0) return;
        /* (bytes the scan above saw in scratch are not looked at again: it resumes where it stopped) */
        size_t whole = proxyhead_pending(&p->ph) ? 0 : head_scan(&p->scan, (const char *)p->buf, p->len);
        if (whole) {
            deliver(p, p->buf, p->len, whole);
            return;
        }
        if (p->len == HEAD_MAX) {
            metrics_head_refused(HEAD_REFUSED_TOO_LARGE);
            drop(p, 431, "the request head is larger than 16 KiB");
            return;
        }
    }
}

/* Opens the pending record of a new connection and starts watching it. */
static void admit(struct door_loop *dl, int fd, const struct sockaddr_in *peer) {
    struct acceptor *a = dl->a;
    struct proxyhead ph;
    proxyhead_begin(&ph, &a->trusted, peer);
    /* A trusted proxy is one address for all its clients: counting its pending heads would let the
     * proxy's --max-per-ip slowest clients lock the whole site out. They are not counted per address
     * (the client is named in what they send, by X-Forwarded-For only in the whole head, when it is no
     * longer pending; ws.c's --max-per-ip counts that client's WebSockets), and are bounded like every
     * head: by --header-timeout and 16 KiB each, and by the proxy's own limits (its maxconn, its
     * timeout for a client's request). */
    int counted = a->max_per_ip > 0 && !proxyhead_trusted(&ph);
    if (counted) {
        char ip[INET_ADDRSTRLEN];
        peer_ip(peer, ip, sizeof ip);
        if (!take_ip(a, ip)) {
            metrics_head_refused(HEAD_REFUSED_PER_IP);
            front_refuse(dl->lp, fd, 429, "", "too many connections from this address");
            return;
        }
    }
    struct pending *p = calloc(1, sizeof *p);
    if (!p) {
        if (counted) release_ip(a, peer);
        front_refuse(dl->lp, fd, 503, "", "out of memory");
        return;
    }
    p->w.ready = on_readable;
    p->dl = dl;
    p->fd = fd;
    p->peer = *peer;
    p->ph = ph;
    p->counted = counted;
    p->deadline_ms = now_ms() + a->timeout_ms;
    p->prev = dl->last;
    if (dl->last) dl->last->next = p;
    else dl->first = p;
    dl->last = p;
    arm_for(dl, p->deadline_ms);
    if (loop_watch(dl->lp, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, &p->w) < 0) drop(p, 503, "cannot watch the connection");
}

/* Out of descriptors: the connection waiting cannot be accepted, and the listening socket would
 * report it again at once; this loop stops watching it for ACCEPT_PAUSE_MS. */
static void pause_accepting(struct door_loop *dl) {
    static int64_t last_warned; /* atomic: every loop's, so the log gets one line per 10 s */
    int64_t now = now_ms(), then = __atomic_load_n(&last_warned, __ATOMIC_RELAXED);
    if (now - then > 10000 && __atomic_compare_exchange_n(&last_warned, &then, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        log_warn("accept: %s; pausing %d ms (raise the open-file limit)", strerror(errno), ACCEPT_PAUSE_MS);
    loop_unwatch(dl->lp, dl->a->fd);
    dl->resume_ms = now + ACCEPT_PAUSE_MS;
    arm(dl);
}

/* loop_watch.ready for the listening socket (level-triggered: what this batch leaves is reported again). */
static void on_listen(struct loop_watch *w, uint32_t events) {
    struct door_loop *dl = (struct door_loop *)((char *)w - offsetof(struct door_loop, listen_w));
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(dl->a->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            admit(dl, fd, &peer);
            continue;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) pause_accepting(dl);
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            log_warn("accept: %s", strerror(errno));
        if (errno != EINTR && errno != ECONNABORTED) return;
    }
}

static int watch_listener(struct door_loop *dl) {
    return loop_watch(dl->lp, dl->a->fd, EPOLLIN | EPOLLEXCLUSIVE, &dl->listen_w);
}

/* loop_watch.ready for the timer, after the batch's other events (late): ends the heads past their
 * deadline (408 when something had come) and ends a pause. */
static void on_timer(struct loop_watch *w, uint32_t events) {
    struct door_loop *dl = (struct door_loop *)((char *)w - offsetof(struct door_loop, timer_w));
    uint64_t ticks;
    if (read(dl->tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN) log_warn("acceptor: timerfd: %s", strerror(errno));
    int64_t now = now_ms();
    while (dl->first && dl->first->deadline_ms <= now) {
        struct pending *p = dl->first;
        metrics_add(M_HEADS_TIMED_OUT, 1);
        drop(p, p->len ? 408 : 0, "the request head was not complete in time");
    }
    if (dl->resume_ms && dl->resume_ms <= now) {
        dl->resume_ms = 0;
        if (watch_listener(dl) < 0) dl->resume_ms = now + ACCEPT_PAUSE_MS;
    }
    arm(dl);
}

int acceptor_start(struct acceptor *a, struct loops *ls, acceptor_head_fn on_head, void *ctx) {
    a->on_head = on_head;
    a->ctx = ctx;
    a->loops = calloc(loops_threads(ls), sizeof *a->loops);
    if (!a->loops) return -1;
    for (size_t i = 0; i < loops_threads(ls); i++) {
        struct door_loop *dl = &a->loops[i];
        dl->a = a;
        dl->lp = loops_get(ls, i);
        dl->listen_w.ready = on_listen;
        dl->timer_w.ready = on_timer;
        dl->timer_w.late = 1;
        dl->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        a->nloops++;
        if (dl->tfd < 0 || loop_watch(dl->lp, dl->tfd, EPOLLIN, &dl->timer_w) < 0 || watch_listener(dl) < 0) return -1;
    }
    return 0;
}

void acceptor_free(struct acceptor *a) {
    if (!a) return;
    for (size_t i = 0; i < a->nloops; i++) {
        struct door_loop *dl = &a->loops[i];
        while (dl->first) {
            struct pending *p = dl->first;
            dl->first = p->next;
            close(p->fd);
            pending_free(p);
        }
        if (dl->tfd >= 0) close(dl->tfd);
    }
    free(a->loops);
    if (a->fd >= 0) close(a->fd);
    dict_free(a->per_ip);
    pthread_mutex_destroy(&a->ip_lock);
    free(a);
}

/* peer.h: in-memory connections for the hub and router tests.
 *
 * A peer is a struct conn whose outbox sink is a memory buffer that takes every byte, like a socket
 * with room to spare: the real outbox writes the real encoded frames into it, and the test reads them
 * back as a client would (server frames are unmasked: opcode byte, 7/16/64-bit length, payload). The
 * tests open no outbox batch, so each push is written before it returns and the buffer always holds
 * everything queued so far. The outbox's kicks (asking the connection's event loop to end it) are
 * counted; whether a connection is over is outbox_done (peer_done).
 * Header-only, like check.h and memsink.h (the buffer's append); include check.h first. */
#ifndef SB_TEST_PEER_H
#define SB_TEST_PEER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "frame.h"
#include "hub.h"
#include "memsink.h"
#include "outbox.h"

#define PEER_OUTBOX (1 << 20)

struct peer {
    struct conn c;
    pthread_mutex_t lock; /* guards the fields below; the outbox writes from whichever thread pushes */
    uint8_t *buf;
    size_t len, cap, rd;  /* rd: how far the test has read */
    int kicks;            /* io->kick calls */
};

static ssize_t peer_write(void *sink, const struct iovec *iov, int iovcnt) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    ssize_t n = memsink_writev(&p->buf, &p->len, &p->cap, iov, iovcnt);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static void peer_kick(void *sink) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    p->kicks++;
    pthread_mutex_unlock(&p->lock);
}

static const struct outbox_io peer_io = {peer_write, peer_kick, 0} /* writes at once: no loop */;

/* A hub over a fresh outbox, with or without presence. */
struct world {
    struct outbox *ob;
    struct hub *hub;
};

/* With `history` messages kept per stream (history.h), 0 for none. */
static inline void world_start_history(struct world *w, int presence, long history) {
    struct hub_options opt = {presence, 20000, 0, 0, {history, 120000, 1 << 24}};
    w->ob = outbox_new(&peer_io);
    w->hub = hub_new(w->ob, &opt);
}

static inline void world_start(struct world *w, int presence) { world_start_history(w, presence, 0); }

static inline void world_stop(struct world *w) {
    hub_free(w->hub);
    outbox_free(w->ob);
}

/* Initialises p as ws.c does (user NULL = anonymous) and registers it; returns hub_add's status. */
static inline enum hub_status peer_open_limit(struct world *w, struct peer *p, const char *user, int echo,
                                              size_t limit) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(w->hub, &p->c, user, echo, p, limit);
    return hub_add(w->hub, &p->c);
}

static inline enum hub_status peer_open(struct world *w, struct peer *p, const char *user) {
    return peer_open_limit(w, p, user, 0, PEER_OUTBOX);
}

/* Tears p down in the order ws.c ends a connection: detach the queue, leave the hub, free. */
static inline void peer_close(struct world *w, struct peer *p, int registered) {
    outbox_detach(&p->c.out);
    if (registered) hub_remove(w->hub, &p->c);
    outq_destroy(&p->c.out);
    free(p->buf);
    pthread_mutex_destroy(&p->lock);
}

/* The next frame the peer received, as opcode and a NUL-terminated copy of its payload (free it).
 * Returns 0 when nothing more has arrived. */
static inline int peer_next(struct peer *p, int *op, char **payload, size_t *plen) {
    pthread_mutex_lock(&p->lock);
    int got = 0;
    if (p->len - p->rd >= 2) {
        const uint8_t *b = p->buf + p->rd;
        size_t avail = p->len - p->rd, hlen = 2, len = b[1] & 0x7F;
        if (len == 126) hlen = 4, len = avail >= 4 ? (size_t)b[2] << 8 | b[3] : 0;
        else if (len == 127) {
            hlen = 10, len = 0;
            for (int i = 0; i < 8 && avail >= 10; i++) len = len << 8 | b[2 + i];
        }
        if (avail >= hlen && avail - hlen >= len) {
            *op = b[0];
            *plen = len;
            *payload = malloc(len + 1);
            memcpy(*payload, b + hlen, len);
            (*payload)[len] = '\0';
            p->rd += hlen + len;
            got = 1;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return got;
}

/* The connection is over (outbox_done): its loop would end it now. */
static inline int peer_done(struct peer *p) { return outbox_done(&p->c.out); }

/* Reads and drops everything the peer has received so far (welcomes, presence). */
static inline void drain(struct peer *p) {
    int op;
    char *s;
    size_t n;
    while (peer_next(p, &op, &s, &n)) free(s);
}

/* A text frame holding s, for hub_send and the like (the caller owns one reference). */
static inline struct frame *text(const char *s) { return frame_new(WS_OP_TEXT, s, strlen(s)); }

/* How many times the outbox asked the connection's loop to look at it. */
static inline int peer_kicks(struct peer *p) {
    pthread_mutex_lock(&p->lock);
    int n = p->kicks;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* The next frame is a text frame holding exactly the printf-formatted JSON. */
__attribute__((format(printf, 4, 5))) static inline int peer_expect_at(const char *file, int line, struct peer *p,
                                                                        const char *fmt, ...) {
    char want[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    int op = 0;
    char *got = NULL;
    size_t len;
    if (!peer_next(p, &op, &got, &len)) return check_str(NULL, want, file, line, "(nothing received)", "expected");
    int ok = check_int(op, 0x81, file, line, "opcode", "text FIN");
    ok &= check_str(got, want, file, line, "received", "expected");
    free(got);
    return ok;
}

/* Nothing (more) arrived. */
static inline int peer_expect_none_at(const char *file, int line, struct peer *p) {
    int op;
    char *got = NULL;
    size_t len;
    int none = !peer_next(p, &op, &got, &len);
    if (!none) fprintf(stderr, "%s:%d: unexpected frame 0x%02x \"%s\"\n", file, line, op, got);
    free(got);
    return check_record(none, file, line, "no more frames");
}

/* The next frame is a close with `code`. (The connection is done later: when the peer answers, or
 * when outbox_expire finds it has not.) */
static inline int peer_expect_close_at(const char *file, int line, struct peer *p, unsigned code) {
    int op = 0;
    char *got = NULL;
    size_t len = 0;
    int ok = peer_next(p, &op, &got, &len);
    ok = ok && check_int(op, 0x88, file, line, "opcode", "close") && len >= 2 &&
         check_int(((unsigned)(uint8_t)got[0] << 8) | (uint8_t)got[1], code, file, line, "close code", "expected");
    free(got);
    return check_record(ok, file, line, "close frame");
}

/* When the server began closing p (0 = not yet), read under its queue's lock. */
static inline int64_t peer_close_started(struct peer *p) {
    pthread_mutex_lock(&p->c.out.lock);
    int64_t t = p->c.out.close_started_ms;
    pthread_mutex_unlock(&p->c.out.lock);
    return t;
}

#define EXPECT(p, ...) peer_expect_at(__FILE__, __LINE__, (p), __VA_ARGS__)
#define EXPECT_NONE(p) peer_expect_none_at(__FILE__, __LINE__, (p))
#define EXPECT_CLOSE(p, code) peer_expect_close_at(__FILE__, __LINE__, (p), (code))

#endif

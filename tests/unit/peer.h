/* peer.h: in-memory connections for the hub and router tests.
 *
 * A peer is a struct conn whose outbox sink is a memory buffer: the real outbox writer threads write
 * the real encoded frames into it, and the test reads them back as a client would (server frames are
 * unmasked: opcode byte, 7/16/64-bit length, payload). Reading first waits (bounded) until the
 * connection's queue is idle, so everything the server has queued so far is in the buffer.
 * Header-only, like check.h; include check.h first. */
#ifndef SB_TEST_PEER_H
#define SB_TEST_PEER_H

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>

#include "hub.h"
#include "outbox.h"

#define PEER_WAIT_MS 5000
#define PEER_OUTBOX (1 << 20)

struct peer {
    struct conn c;
    pthread_mutex_t lock; /* guards the fields below; written by outbox writer threads */
    uint8_t *buf;
    size_t len, cap, rd;  /* rd: how far the test has read */
    int closes;           /* io->close calls */
};

static int peer_write(void *sink, const void *data, size_t len) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    if (p->len + len > p->cap) {
        p->cap = (p->len + len) * 2;
        p->buf = realloc(p->buf, p->cap);
    }
    memcpy(p->buf + p->len, data, len);
    p->len += len;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void peer_io_close(void *sink) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    p->closes++;
    pthread_mutex_unlock(&p->lock);
}

static const struct outbox_io peer_io = {peer_write, peer_io_close};

/* A hub over a fresh writer pool, with or without presence. */
struct world {
    struct outbox *ob;
    struct hub *hub;
};

static inline void world_start(struct world *w, int presence) {
    struct hub_options opt = {presence, 20000, 0, 0};
    w->ob = outbox_start(&peer_io, 2, 16);
    w->hub = hub_new(w->ob, &opt);
}

static inline void world_stop(struct world *w) {
    hub_free(w->hub);
    outbox_stop(w->ob);
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

/* Tears p down in ws.c's close-handler order: detach the queue, leave the hub, free. */
static inline void peer_close(struct world *w, struct peer *p, int registered) {
    outbox_detach(&p->c.out);
    if (registered) hub_remove(w->hub, &p->c);
    outq_destroy(&p->c.out);
    free(p->buf);
    pthread_mutex_destroy(&p->lock);
}

/* The next frame the peer received, as opcode and a NUL-terminated copy of its payload (free it).
 * Returns 0 when nothing more has arrived once the queue is idle. */
static inline int peer_next(struct peer *p, int *op, char **payload, size_t *plen) {
    outbox_wait_idle(&p->c.out, PEER_WAIT_MS);
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

static inline int peer_closes(struct peer *p) {
    pthread_mutex_lock(&p->lock);
    int n = p->closes;
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

/* The next frame is a close with `code`. (The connection itself is ended later: by the peer's
 * answer, or by outbox_expire when there is none.) */
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

/* When the peer's close frame was written (0 = not yet), read under its queue's lock. */
static inline int64_t peer_close_sent(struct peer *p) {
    pthread_mutex_lock(&p->c.out.lock);
    int64_t t = p->c.out.close_sent_ms;
    pthread_mutex_unlock(&p->c.out.lock);
    return t;
}

#define EXPECT(p, ...) peer_expect_at(__FILE__, __LINE__, (p), __VA_ARGS__)
#define EXPECT_NONE(p) peer_expect_none_at(__FILE__, __LINE__, (p))
#define EXPECT_CLOSE(p, code) peer_expect_close_at(__FILE__, __LINE__, (p), (code))

#endif

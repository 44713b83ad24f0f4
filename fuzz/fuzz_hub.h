/* fuzz_hub.h: the hub and in-memory connections that the router and API fuzz targets share.
 *
 * One hub with presence, over one outbox, is made on the first input and kept for the whole run (it
 * holds no connection between inputs: each input opens its peers and closes them again). A peer is a
 * struct conn whose outbox sink takes every byte into a memory buffer (memsink.h, the unit tests'
 * sink): no batch is open, so the real outbox writes each frame into it before the push returns. The
 * outbox's kicks (asking a loop to end the connection) are counted. fuzz_frame walks the server
 * frames a peer got and checks each one is whole and unmasked; what a frame may hold is each target's
 * own check. Header-only, included by one target per program; include fuzz_check.h first. */
#ifndef SB_FUZZ_HUB_H
#define SB_FUZZ_HUB_H

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hub.h"
#include "memsink.h" /* tests/unit: the same in-memory sink as the unit tests' peers */

struct peer {
    struct conn c;
    pthread_mutex_t lock; /* guards the fields below; the outbox writes from whichever thread pushes */
    uint8_t *buf;
    size_t len, cap;
    int kicks; /* io->kick calls */
};

static inline ssize_t peer_write(void *sink, const struct iovec *iov, int iovcnt) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    ssize_t n = memsink_writev(&p->buf, &p->len, &p->cap, iov, iovcnt);
    pthread_mutex_unlock(&p->lock);
    return n;
}

static inline void peer_kick(void *sink) {
    struct peer *p = sink;
    pthread_mutex_lock(&p->lock);
    p->kicks++;
    pthread_mutex_unlock(&p->lock);
}

static const struct outbox_io peer_io = {peer_write, peer_kick, 0} /* writes at once: no loop */;
static struct outbox *ob;
static struct hub *hub;

/* Makes the hub on the first call; later calls find it made. */
static inline void start_once(void) {
    /* rooms presence (the default) and history: members, watch lists and recovery fields are fuzzed too */
    static struct hub_options opt = {PRESENCE_ROOMS, 20000, 0, 0, {8, 120000, 1 << 20}};
    if (hub) return;
    ob = outbox_new(&peer_io);
    hub = hub_new(ob, &opt);
}

/* Initialises p as ws.c does (user NULL = anonymous; positions: protocol 2, docs/PROTOCOL.md
 * "Recovery"), registers it and joins `room` unless NULL. */
static inline void peer_open_as(struct peer *p, const char *user, const char *room, int positions) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(hub, &p->c, user, 0, p, 1 << 20);
    p->c.positions = positions;
    FUZZ_CHECK(hub_add(hub, &p->c) == HUB_OK);
    if (room) FUZZ_CHECK(hub_join(hub, &p->c, room, NULL) == HUB_OK);
}

static inline void peer_open(struct peer *p, const char *user, const char *room) { peer_open_as(p, user, room, 0); }

/* Tears p down in the order ws.c ends a connection: detach the queue, leave the hub, free. */
static inline void peer_close(struct peer *p) {
    outbox_detach(&p->c.out);
    hub_remove(hub, &p->c);
    outq_destroy(&p->c.out);
    free(p->buf);
    pthread_mutex_destroy(&p->lock);
}

/* The frame at *off in what p received, if any: checks it is whole and unmasked (a server frame),
 * sets its first byte (FIN, opcode), payload and length, and moves *off past it. 0 at the end. */
static inline int fuzz_frame(const struct peer *p, size_t *off, uint8_t *head, const uint8_t **payload,
                             size_t *len) {
    if (*off >= p->len) return 0;
    const uint8_t *b = p->buf + *off;
    size_t avail = p->len - *off, hlen = 2;
    FUZZ_CHECK(avail >= 2 && !(b[1] & 0x80));
    size_t n = b[1];
    if (n == 126) {
        hlen = 4;
        FUZZ_CHECK(avail >= hlen);
        n = (size_t)b[2] << 8 | b[3];
    } else if (n == 127) {
        hlen = 10;
        FUZZ_CHECK(avail >= hlen);
        n = 0;
        for (int i = 0; i < 8; i++) n = n << 8 | b[2 + i];
    }
    FUZZ_CHECK(avail - hlen >= n);
    *head = b[0];
    *payload = b + hlen;
    *len = n;
    *off += hlen + n;
    return 1;
}

#endif

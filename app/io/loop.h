/* loop: the event loops that carry every open WebSocket.
 *
 * CivetWeb 1.15 serves each connection on a thread of its own and calls back once per frame, so a
 * message from one client to another would cost a thread wake-up to read it and another to write it.
 * Once a WebSocket is open, its socket moves to one of a few epoll threads (one per CPU). A loop reads
 * what has arrived on many connections in one turn, decodes their frames (wsframe.h), hands each to
 * the connection's handler (ws.c), and the deliveries those cause are written at the end of the turn,
 * coalesced per recipient (outbox.h batches). Writes never block, so a loop waits on nothing but
 * epoll; a recipient's socket that is full is written by its own loop when it drains.
 *
 * Ownership: a struct loop_conn is embedded in its connection, which ws.c allocates. From
 * loops_adopt until the handler's `ended` callback the loop owns the socket's reading and its epoll
 * registration; `ended` is the last call, made on the loop's thread, and the connection may be freed
 * after it. The socket itself is the connection's: `ended` closes it.
 *
 * A loop also watches descriptors that are not WebSockets for other modules (struct loop_watch: the
 * acceptor's listening socket, timer and request heads still being read, acceptor.h), calling them
 * back on its thread inside a turn, so what they start (a WebSocket's welcome) joins the turn's batch.
 *
 * An idle connection holds no buffer here: `in` is allocated only while a frame is incomplete and
 * freed as soon as it is whole. */
#ifndef SB_LOOP_H
#define SB_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

struct loop;
struct loops;

struct loop_handler {
    /* One frame from the client, its payload unmasked and valid during the call only. Returns 0 when
     * no further frame is wanted (the peer has closed): the rest of the input is then read and dropped. */
    int (*frame)(void *ctx, uint8_t bits, uint8_t *payload, size_t len);
    /* The bytes are not a frame any client may send: close with `code`; the input is dropped from here. */
    void (*violation)(void *ctx, uint16_t code, const char *reason);
    /* Writes what is queued; returns 1 when the connection is finished (outbox_flush). */
    int (*flush)(void *ctx);
    /* The loop has let go of the connection, on the loop's thread with no batch open: no call follows. */
    void (*ended)(void *ctx);
};

/* A descriptor watched for another module: `ready` runs on the loop's thread with epoll's events.
 * Its owner keeps it alive until it is unwatched and the loop can no longer report it (loops_stop).
 * (epoll names it by its address with the low bit set, a connection by its plain address: a
 * connection carries no tag, so an idle WebSocket is no bigger for it.) */
struct loop_watch {
    void (*ready)(struct loop_watch *w, uint32_t events);
    /* 1: called after every other event that the same epoll_wait returned, so it may free watches
     * those events name (a timer that ends what waited too long). */
    int late;
};

struct loop_conn {
    int fd;
    struct loop *loop;   /* atomic: the loop it was handed to */
    const struct loop_handler *h;
    void *ctx;
    uint64_t max_payload; /* the largest data frame accepted (wsframe.h) */
    int kicked;          /* on the loop's kick list; guarded by the loop's mail lock, hence no bit-field */
    /* The rest: the loop's thread only. */
    uint8_t *in;         /* the start of a frame not yet whole, kept between reads; owned */
    size_t in_len, in_cap;
    unsigned discard : 1; /* no frame is wanted: input is read and dropped */
    unsigned eof : 1;     /* the peer closed the socket, or it broke */
    unsigned touched : 1; /* on this turn's list, to be flushed and checked */
    unsigned again : 1;   /* on the list of connections with input left to read */
    struct loop_conn *prev, *next;  /* the loop's connections */
    struct loop_conn *touch_next, *again_next, *mail_next, *kick_next;
};

/* Starts n loops; the deliveries they cause go through ob. */
struct loops *loops_start(size_t n, struct outbox *ob);
/* Ends every connection still open (each handler's `ended` runs) and joins the threads. A connection
 * handed over while it runs is ended too. */
void loops_stop(struct loops *ls);
/* Frees the loops, after loops_stop, once no thread can call loops_adopt any more. */
void loops_free(struct loops *ls);
/* Hands an open WebSocket's non-blocking socket to a loop. Any thread. Returns -1 (and does nothing)
 * once loops_stop has returned. */
int loops_adopt(struct loops *ls, struct loop_conn *c, int fd, const struct loop_handler *h, void *ctx,
                uint64_t max_payload);
/* Asks the connection's loop to flush it and see whether it is done, soon. Any thread, between
 * loops_adopt and `ended` (outbox.h calls it under the queue lock, before outbox_detach). */
void loop_kick(struct loop_conn *c);
size_t loops_threads(const struct loops *ls);
/* The i-th loop, i < loops_threads. */
struct loop *loops_get(struct loops *ls, size_t i);
/* Watches fd on lp (epoll flags `events`); any thread. -1 with errno when epoll refuses. */
int loop_watch(struct loop *lp, int fd, uint32_t events, struct loop_watch *w);
/* Stops watching fd; any thread. Events already taken by the loop's current turn are still reported. */
void loop_unwatch(struct loop *lp, int fd);
/* A socket ended with input the server did not read: lingers on a copy of fd (linger.h) so that what
 * was written before survives; the caller still closes fd. */
void loop_linger(struct loop *lp, int fd);
/* loops_adopt for a socket on lp's own thread, from a watch's `ready`: the connection joins lp at
 * once, and `early` (n bytes the client sent right after its request head) is its first input. */
void loop_adopt_here(struct loop *lp, struct loop_conn *c, int fd, const struct loop_handler *h, void *ctx,
                     uint64_t max_payload, uint8_t *early, size_t n);

#endif

/* outbox: per-connection send queues and the writer threads that drain them.
 *
 * CivetWeb's writes block while a peer is not reading, so no thread that serves one connection may
 * write to another: the router only queues frames here, and a pool of writer threads does the socket
 * writes, coalescing what is queued for one connection into one write. A peer that stops reading
 * stalls only the writer that is writing to it; a watchdog adds writers so that `base` of them are
 * always free to serve everyone else. Each queue is bounded in bytes (--outbox): a connection whose
 * queue would pass it is a slow consumer and is closed with 1008.
 *
 * Locks, always taken in this order: the hub's lock, then a queue's `lock`, then the pool's lock.
 * A writer is woken only after its waker has dropped the queue and pool locks.
 * Ownership: the pool owns its threads; a queue is embedded in its connection, and outbox_detach
 * returns only when no writer will touch the queue or its sink again, so the connection may then be
 * freed. Frames are shared by reference (frame.h); a queue holds one reference per queued frame. */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* How a writer reaches a socket; CivetWeb's in ws.c, a memory sink in the unit tests. */
struct outbox_io {
    /* Writes all of buf or fails: returns 0, or -1 when the connection is broken. */
    int (*write)(void *sink, const void *buf, size_t len);
    /* Ends the connection: its peer did not answer our close frame in time, or the sink broke.
     * Called under the queue lock, never after outbox_detach began. */
    void (*close)(void *sink);
};

struct outq {
    pthread_mutex_t lock; /* guards every field below */
    pthread_cond_t idle;  /* broadcast when a writer lets go of the queue */
    void *sink;           /* handed to io->write/close; never used once `detached` */
    size_t limit;         /* bytes; the --outbox bound */
    struct frame **ring;  /* queued frames, oldest at head; owned references */
    size_t head, count, cap;
    size_t bytes;         /* sum of queued frames' lengths */
    struct frame *close_frame; /* the close frame queued last, if closing */
    struct outq *next;    /* link in the pool's ready list */
    uint16_t close_code;  /* the code of the close this side sent, 0 = none yet */
    int64_t close_sent_ms; /* when the close frame was written (monotonic), 0 = not yet */
    unsigned scheduled : 1; /* in the ready list, or being drained */
    unsigned draining : 1;  /* a writer is writing to the sink */
    unsigned closing : 1;   /* a close frame is queued or sent: nothing more is accepted */
    unsigned detached : 1;  /* the connection is gone: drop everything */
};

struct outbox;

/* Starts the pool with `base` writer threads kept free; it never has more than max_threads. */
struct outbox *outbox_start(const struct outbox_io *io, size_t base, size_t max_threads);
/* Stops and joins every writer. Every queue must be detached first. */
void outbox_stop(struct outbox *ob);
size_t outbox_threads(struct outbox *ob);

void outq_init(struct outq *q, void *sink, size_t limit);
void outq_destroy(struct outq *q);
size_t outq_bytes(struct outq *q);

enum outq_result { OUTQ_QUEUED, OUTQ_CLOSED, OUTQ_OVERFLOW };
/* Queues a reference to f (the caller keeps its own). OUTQ_OVERFLOW: the queue would pass its limit,
 * so the connection is now being closed 1008 and f was not queued. OUTQ_CLOSED: already closing. */
enum outq_result outbox_push(struct outbox *ob, struct outq *q, struct frame *f);
/* outbox_push for a protocol message: also counts it in switchboard_messages_out_total, before any
 * writer can send it, so the count is never behind what the peer has received. */
enum outq_result outbox_push_message(struct outbox *ob, struct outq *q, struct frame *f);
/* Queues a close frame after what is already queued and accepts nothing more. The peer then answers
 * with its own close, which ends the connection cleanly; outbox_expire ends it if it does not.
 * Any thread. Returns 1, or 0 (and does nothing) if the queue was already closing. */
int outbox_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason);
/* Ends the connection (io->close) if its close frame was written, or its socket broke, more than
 * grace_ms ago. Closing the socket before the peer's answer would reset the connection and lose what
 * it had not yet read, so the peer gets this long to answer. This is the only caller of io->close:
 * CivetWeb's mg_close_connection is safe only while the worker is inside its read loop, which it
 * enters just after the ready handler; grace_ms later it surely has. */
void outbox_expire(struct outbox *ob, struct outq *q, int64_t now_ms, long grace_ms);
/* 1 once the queue has started closing (a close frame queued or sent) or was detached. */
int outq_closing(struct outq *q);
/* Waits up to timeout_ms until no writer holds the queue (what was queued has been written).
 * Returns 1 if it is idle, 0 on timeout. */
int outbox_wait_idle(struct outq *q, long timeout_ms);
/* Marks the queue gone, drops what is queued and waits until no writer holds it. The connection's
 * close handler calls this first; afterwards the sink is never used again, and io->close is never
 * called once it has begun (io->close runs under the queue lock and checks for it). */
void outbox_detach(struct outq *q);

#endif

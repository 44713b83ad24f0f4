/* outbox: per-connection send queues, written out without ever blocking.
 *
 * Sockets are non-blocking, so any thread may write to any connection: a push appends a shared frame
 * to the connection's queue and writes what the socket takes at once, under the queue's lock; what it
 * does not take stays queued until the connection's event loop (loop.h) sees the socket writable
 * again. A client that stops reading therefore holds up nobody: its queue grows, and when it would
 * pass --outbox the client is a slow consumer and is closed with 1008.
 *
 * Batches coalesce: an event-loop thread opens a batch for each turn, pushes made during it only
 * queue, and the batch's end writes each touched queue with one writev. A broadcast of k messages
 * to n clients costs n writes, not k * n. A thread without a batch (a CivetWeb worker announcing a
 * join, the tick's pings) leaves the write to the connection's loop, which coalesces what many such
 * pushes queued between two of its turns; or, for a sink without a loop, writes at once.
 *
 * A connection ends (outbox_done) when its closing handshake is complete (our close frame written and
 * the peer's received), when its socket broke, or when the peer left our close frame unanswered for
 * the grace period (outbox_expire). Whichever thread notices first kicks the connection's loop
 * (io->kick), which then ends it.
 *
 * Locks, always taken in this order: the hub's lock, then a queue's `lock`. io->kick runs under the
 * queue lock; io->write runs without it, one thread at a time per queue (`writing`).
 * Ownership: a queue is embedded in its connection; outbox_detach returns only when no other
 * thread's batch or write still holds the queue and nothing will touch its sink again, so the
 * connection may then be freed. Frames are shared by reference (frame.h); a queue holds one
 * reference per queued frame, a write in progress one per frame it is writing. */
#ifndef SB_OUTBOX_H
#define SB_OUTBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "frame.h"

#define OUTBOX_BATCH_MAX 4096 /* queues one batch defers; past it, a push goes as if without a batch */

/* How the outbox reaches a connection; a socket in ws.c, memory in the unit tests. */
struct outbox_io {
    /* Writes what fits without blocking: bytes written (0 when the socket is full), or -1 when the
     * connection is broken. */
    ssize_t (*write)(void *sink, const struct iovec *iov, int iovcnt);
    /* Asks the connection's loop to look at it soon: flush what is queued, end it if outbox_done. */
    void (*kick)(void *sink);
    /* 1: a push from a thread without a batch kicks the loop instead of writing; 0: it writes. */
    int loop_writes;
};

struct outq {
    pthread_mutex_t lock; /* guards every field below */
    pthread_cond_t idle;  /* broadcast when a batch lets go of the queue */
    void *sink;           /* handed to io; never used once `detached` */
    size_t limit;         /* bytes; the --outbox bound */
    struct frame **ring;  /* queued frames, oldest at head; owned references; NULL while empty */
    size_t head, count, cap;
    size_t bytes;         /* queued bytes not yet written */
    size_t head_done;     /* bytes of the head frame already written */
    struct frame *close_frame; /* the close frame queued last, if closing */
    uint16_t close_code;  /* the code of the close this side sent, 0 = none yet */
    int64_t close_started_ms; /* when closing began (monotonic), for outbox_expire */
    unsigned deferred : 1;    /* in some thread's batch, which will write it */
    unsigned kick_pending : 1; /* the loop was kicked to write it */
    unsigned writing : 1;     /* a thread is in io->write for it, without the lock */
    unsigned again : 1;       /* a flush came during that write: a short write is tried once more */
    size_t inflight;          /* frames handed to that write: kept if the rest is dropped */
    unsigned closing : 1;     /* a close frame is queued or sent: nothing more is accepted */
    unsigned close_sent : 1;  /* the close frame is written */
    unsigned peer_closed : 1; /* the peer's close frame arrived */
    unsigned broken : 1;      /* a write failed */
    unsigned expired : 1;     /* the peer did not answer our close in time */
    unsigned detached : 1;    /* the connection is gone: drop everything */
    unsigned held : 1;        /* queue but write nothing (a welcome waiting for the cluster, hub.c) */
};

struct outbox;

struct outbox *outbox_new(const struct outbox_io *io);
void outbox_free(struct outbox *ob);

void outq_init(struct outq *q, void *sink, size_t limit);
void outq_destroy(struct outq *q);
size_t outq_bytes(struct outq *q);

/* This thread's pushes are deferred until outbox_batch_end, which writes every queue they touched.
 * A batch is per thread and must end before the thread waits on anything (outbox_detach included). */
struct outbox_batch {
    struct outq *q[OUTBOX_BATCH_MAX];
    size_t n;
};
void outbox_batch_begin(struct outbox_batch *b);
void outbox_batch_end(struct outbox *ob);

enum outq_result { OUTQ_QUEUED, OUTQ_CLOSED, OUTQ_OVERFLOW };
/* Queues a reference to f (the caller keeps its own). OUTQ_OVERFLOW: the queue would pass its limit,
 * so the connection is now being closed 1008 and f was not queued. OUTQ_CLOSED: already closing. */
enum outq_result outbox_push(struct outbox *ob, struct outq *q, struct frame *f);
/* outbox_push for a protocol message: also counts it in switchboard_messages_out_total. */
enum outq_result outbox_push_message(struct outbox *ob, struct outq *q, struct frame *f);
/* Queues a close frame after what is already queued and accepts nothing more; the peer's answer
 * (outbox_peer_closed) then completes the handshake. Returns 1, or 0 (and does nothing) if the queue
 * was already closing. */
int outbox_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason);
/* The peer's close frame arrived. If we had not closed yet, our answer, carrying `code` (0 = an empty
 * close) and `reason`, is queued after what is already queued. */
void outbox_peer_closed(struct outbox *ob, struct outq *q, uint16_t code, const char *reason);
/* Writes what is queued as far as the socket takes it. Returns outbox_done. */
int outbox_flush(struct outbox *ob, struct outq *q);
/* 1 when the connection should end: the closing handshake is complete, the socket broke, or the peer
 * did not answer within the grace period. */
int outbox_done(struct outq *q);
/* Marks the connection expired (and kicks it) if it began closing grace_ms or more ago and is not
 * done: the peer has not answered our close frame, or has not read it. */
void outbox_expire(struct outbox *ob, struct outq *q, int64_t now_ms, long grace_ms);
/* 1 once the queue has started closing (a close frame queued or sent), broke, or was detached. */
int outq_closing(struct outq *q);
/* Holds the queue: pushes queue in order, nothing is written until outbox_release, which then
 * writes (or has the connection's loop write) what accumulated. */
void outbox_hold(struct outq *q);
void outbox_release(struct outbox *ob, struct outq *q);
/* A slot: the place of a frame not known yet (an ack that waits for the cluster, pendsend.h), reserved
 * in order. Nothing queued after it is written until outbox_fill puts the frame in its place, so the
 * connection's replies keep the order of its requests. The slot is a frame of no bytes; the caller owns
 * the reference returned (NULL when the queue is closing or out of memory) and gives it to outbox_fill.
 * A slot counts no bytes against the limit; the frame that fills it does not either (it is small, and
 * was promised). A close frame queued after a slot waits behind it, as behind any queued frame
 * (bounded: whoever holds a slot fills it within a bounded time); a slow consumer's close drops slots
 * with the rest. */
struct frame *outbox_reserve(struct outbox *ob, struct outq *q);
/* Puts f (the caller keeps its reference) in slot's place and writes what waited behind it; f NULL
 * (out of memory) just frees the place. Takes the caller's reference to slot. A slot no longer queued
 * (the queue was dropped) is only released. */
void outbox_fill(struct outbox *ob, struct outq *q, struct frame *slot, struct frame *f);
/* Marks the queue gone, drops what is queued and waits until no batch holds it and no write is in
 * progress. */
void outbox_detach(struct outq *q);

#endif

/* outbox: bounded send queues written without blocking (see outbox.h).
 *
 * A write takes up to OUTBOX_IOV frames from the head of a queue in one writev; a frame the socket
 * took only part of stays at the head with head_done marking how far it got. */
#include "outbox.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"

#define OUTBOX_IOV 64 /* frames per writev */

struct outbox {
    const struct outbox_io *io;
};

/* The batch this thread is in, if any: its pushes are written when the batch ends. */
static __thread struct outbox_batch *thread_batch;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct outbox *outbox_new(const struct outbox_io *io) {
    struct outbox *ob = calloc(1, sizeof *ob);
    if (ob) ob->io = io;
    return ob;
}

void outbox_free(struct outbox *ob) { free(ob); }

/* An empty queue gives its ring back, so an idle connection holds none. */
static void ring_release_if_empty(struct outq *q) {
    if (q->count || !q->ring) return;
    free(q->ring);
    q->ring = NULL;
    q->head = q->cap = 0;
}

/* A slot (outbox_reserve) is the one frame of no bytes: every real frame has a header. */
static int is_slot(const struct frame *f) { return f->len == 0; }

static struct frame *ring_pop(struct outq *q) {
    struct frame *f = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    return f;
}

static int ring_push(struct outq *q, struct frame *f) {
    if (q->count == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 16;
        struct frame **ring = malloc(cap * sizeof *ring);
        if (!ring) return -1;
        for (size_t i = 0; i < q->count; i++) ring[i] = q->ring[(q->head + i) % q->cap];
        free(q->ring);
        q->ring = ring;
        q->cap = cap;
        q->head = 0;
    }
    q->ring[(q->head + q->count) % q->cap] = frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return 0;
}

static void drop_queued(struct outq *q) {
    if (q->count) metrics_add(M_OUTBOX_FRAMES_DROPPED, q->count);
    while (q->count) frame_unref(ring_pop(q));
    ring_release_if_empty(q);
    q->bytes = 0;
    q->head_done = 0;
    q->close_frame = NULL;
}

/* Drops every frame not yet begun. A frame the socket took part of, or may be taking right now,
 * stays: the stream must remain well framed for the close frame that follows. */
static void drop_unbegun(struct outq *q) {
    size_t keep = q->inflight ? q->inflight : q->head_done ? 1 : 0;
    if (q->count > keep) metrics_add(M_OUTBOX_FRAMES_DROPPED, q->count - keep);
    while (q->count > keep) {
        struct frame *f = q->ring[(q->head + --q->count) % q->cap];
        q->bytes -= f->len;
        frame_unref(f);
    }
}

static int done_locked(const struct outq *q) {
    return !q->detached && (q->broken || q->expired || (q->close_sent && q->peer_closed));
}

/* Releases the n bytes the socket took from the head of the queue. */
static void advance(struct outq *q, size_t n) {
    q->bytes -= n;
    metrics_add(M_BYTES_OUT, n);
    n += q->head_done;
    while (q->count && !is_slot(q->ring[q->head]) && n >= q->ring[q->head]->len) {
        struct frame *f = ring_pop(q);
        n -= f->len;
        if (f == q->close_frame) q->close_sent = 1;
        frame_unref(f);
    }
    ring_release_if_empty(q);
    q->head_done = n;
}

/* Points iov at the head frames up to the first slot, taking a reference to each (pushes and drops
 * go on meanwhile); returns how many, and their unwritten bytes in *want. Called with q->lock held. */
static int take_head(struct outq *q, struct iovec *iov, struct frame **held, size_t *want) {
    int n = 0;
    *want = 0;
    for (size_t i = 0; i < q->count && n < OUTBOX_IOV && !is_slot(q->ring[(q->head + i) % q->cap]); i++, n++) {
        struct frame *f = held[n] = frame_ref(q->ring[(q->head + i) % q->cap]);
        size_t skip = i == 0 ? q->head_done : 0;
        iov[n] = (struct iovec){f->bytes + skip, f->len - skip};
        *want += f->len - skip;
    }
    q->inflight = (size_t)n;
    return n;
}

/* Writes until the queue is empty or the socket is full. Called with q->lock held, which it lets go
 * of during each write so that pushes to this queue never wait on a system call; one thread writes
 * at a time (`writing`), and goes on with what the others queued meanwhile. */
static void write_locked(struct outbox *ob, struct outq *q) {
    int was_done = done_locked(q);
    q->kick_pending = 0;
    if (q->held) return; /* outbox_release writes it */
    if (q->writing) { /* the writer may have found the socket full just before this flush's edge */
        q->again = 1;
        return;
    }
    q->writing = 1;
    while (q->count && !q->broken && !q->detached) {
        q->again = 0;
        struct iovec iov[OUTBOX_IOV];
        struct frame *held[OUTBOX_IOV];
        size_t want;
        int n = take_head(q, iov, held, &want);
        if (n == 0) break; /* a slot at the head: outbox_fill writes on */
        pthread_mutex_unlock(&q->lock);
        ssize_t put = ob->io->write(q->sink, iov, n);
        pthread_mutex_lock(&q->lock);
        q->inflight = 0;
        for (int i = 0; i < n; i++) frame_unref(held[i]);
        if (q->detached) break; /* everything was dropped meanwhile */
        if (put < 0) {
            q->broken = 1;
            q->closing = 1;
            drop_queued(q);
            break;
        }
        advance(q, (size_t)put);
        if ((size_t)put < want && !q->again) break; /* full: the loop writes the rest when it drains */
    }
    q->writing = 0;
    if (q->detached) pthread_cond_broadcast(&q->idle);
    if (!was_done && done_locked(q)) ob->io->kick(q->sink);
}

/* A push wants q written: now, or when this thread's batch ends. Called with q->lock held. */
static void schedule(struct outbox *ob, struct outq *q) {
    struct outbox_batch *b = thread_batch;
    if (q->deferred) return; /* a batch will write it */
    if (b && b->n < OUTBOX_BATCH_MAX) {
        q->deferred = 1;
        b->q[b->n++] = q;
    } else if (ob->io->loop_writes) {
        if (!q->kick_pending) ob->io->kick(q->sink);
        q->kick_pending = 1;
    } else {
        write_locked(ob, q);
    }
}

void outbox_batch_begin(struct outbox_batch *b) {
    b->n = 0;
    thread_batch = b;
}

void outbox_batch_end(struct outbox *ob) {
    struct outbox_batch *b = thread_batch;
    thread_batch = NULL;
    for (size_t i = 0; b && i < b->n; i++) {
        struct outq *q = b->q[i];
        pthread_mutex_lock(&q->lock);
        q->deferred = 0;
        write_locked(ob, q);
        if (q->detached) pthread_cond_broadcast(&q->idle);
        pthread_mutex_unlock(&q->lock);
    }
}

void outq_init(struct outq *q, void *sink, size_t limit) {
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->idle, NULL);
    q->sink = sink;
    q->limit = limit;
}

void outq_destroy(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    drop_queued(q);
    pthread_mutex_unlock(&q->lock);
    free(q->ring);
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->idle);
}

size_t outq_bytes(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    size_t n = q->bytes;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Queues the close frame as the last thing this queue sends, after what is queued unless `drop`
 * (a slow consumer: what is queued would never be read). Called with q->lock held. */
static void queue_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason, int drop) {
    struct frame *f = frame_close(code, reason);
    q->closing = 1;
    q->close_code = code;
    q->close_started_ms = now_ms();
    if (drop) drop_unbegun(q);
    metrics_close(code);
    if (f && ring_push(q, f) == 0) q->close_frame = f;
    else q->close_sent = 1; /* out of memory: end without it */
    frame_unref(f);
    schedule(ob, q);
}

static enum outq_result push(struct outbox *ob, struct outq *q, struct frame *f, int message) {
    enum outq_result r = OUTQ_QUEUED;
    pthread_mutex_lock(&q->lock);
    if (q->closing || q->detached) r = OUTQ_CLOSED;
    else if (q->bytes + f->len > q->limit || ring_push(q, f) < 0) {
        r = OUTQ_OVERFLOW;
        metrics_add(M_SLOW_CONSUMERS, 1);
        queue_close(ob, q, 1008, "slow consumer: outbox full", 1);
    } else {
        if (message) metrics_add(M_MESSAGES_OUT, 1); /* before it is written: never behind the peer */
        schedule(ob, q);
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

enum outq_result outbox_push(struct outbox *ob, struct outq *q, struct frame *f) { return push(ob, q, f, 0); }

enum outq_result outbox_push_message(struct outbox *ob, struct outq *q, struct frame *f) { return push(ob, q, f, 1); }

int outbox_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason) {
    pthread_mutex_lock(&q->lock);
    int started = !q->closing && !q->detached;
    if (started) queue_close(ob, q, code, reason, 0);
    pthread_mutex_unlock(&q->lock);
    return started;
}

void outbox_peer_closed(struct outbox *ob, struct outq *q, uint16_t code, const char *reason) {
    pthread_mutex_lock(&q->lock);
    int was_done = done_locked(q);
    q->peer_closed = 1;
    if (!q->closing && !q->detached) queue_close(ob, q, code, reason, 0);
    if (!was_done && done_locked(q)) ob->io->kick(q->sink); /* at worst a second kick: harmless */
    pthread_mutex_unlock(&q->lock);
}

void outbox_hold(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    q->held = 1;
    pthread_mutex_unlock(&q->lock);
}

void outbox_release(struct outbox *ob, struct outq *q) {
    pthread_mutex_lock(&q->lock);
    q->held = 0;
    if (q->count && !q->detached) schedule(ob, q);
    pthread_mutex_unlock(&q->lock);
}

struct frame *outbox_reserve(struct outbox *ob, struct outq *q) {
    struct frame *slot = malloc(sizeof *slot);
    if (!slot) return NULL;
    slot->refs = 1;
    slot->len = 0;
    pthread_mutex_lock(&q->lock);
    int ok = !q->closing && !q->detached && ring_push(q, slot) == 0;
    pthread_mutex_unlock(&q->lock);
    if (ok) return slot;
    free(slot);
    return NULL;
}

/* Where slot is in the ring, counted from the head; q->count when it is not there. */
static size_t slot_index(const struct outq *q, const struct frame *slot) {
    size_t i = 0;
    while (i < q->count && q->ring[(q->head + i) % q->cap] != slot) i++;
    return i;
}

void outbox_fill(struct outbox *ob, struct outq *q, struct frame *slot, struct frame *f) {
    pthread_mutex_lock(&q->lock);
    size_t i = slot_index(q, slot);
    int found = i < q->count;
    if (found && f) {
        q->ring[(q->head + i) % q->cap] = frame_ref(f);
        q->bytes += f->len;
        metrics_add(M_MESSAGES_OUT, 1);
    } else if (found) { /* nothing to put there: the ones behind move up */
        for (; i + 1 < q->count; i++) q->ring[(q->head + i) % q->cap] = q->ring[(q->head + i + 1) % q->cap];
        q->count--;
        ring_release_if_empty(q);
    }
    if (found) frame_unref(slot); /* the queue's reference */
    if (found && !q->detached) schedule(ob, q);
    pthread_mutex_unlock(&q->lock);
    frame_unref(slot);
}

int outbox_flush(struct outbox *ob, struct outq *q) {
    pthread_mutex_lock(&q->lock);
    write_locked(ob, q);
    int done = done_locked(q);
    pthread_mutex_unlock(&q->lock);
    return done;
}

int outbox_done(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    int done = done_locked(q);
    pthread_mutex_unlock(&q->lock);
    return done;
}

void outbox_expire(struct outbox *ob, struct outq *q, int64_t now, long grace_ms) {
    pthread_mutex_lock(&q->lock);
    if (q->closing && !q->detached && !done_locked(q) && now - q->close_started_ms >= grace_ms) {
        q->expired = 1;
        ob->io->kick(q->sink);
    }
    pthread_mutex_unlock(&q->lock);
}

int outq_closing(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    int closing = q->closing;
    pthread_mutex_unlock(&q->lock);
    return closing;
}

void outbox_detach(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    q->detached = 1;
    q->closing = 1;
    drop_queued(q);
    while (q->deferred || q->writing) pthread_cond_wait(&q->idle, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

/* outbox: bounded send queues drained by an elastic pool of writer threads (see outbox.h).
 *
 * A writer pops a queue from the ready list, takes a batch of its frames, copies them into one
 * buffer and writes that with one call. A watchdog counts writers stuck in a write for longer than
 * OUTBOX_STUCK_NS (a peer not reading) and starts new ones so that `base` writers are never stuck;
 * writers beyond `base` leave after OUTBOX_SPARE_IDLE_S idle seconds. */
#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define OUTBOX_COALESCE (64 * 1024)     /* bytes copied into one write */
#define OUTBOX_BATCH 256                /* frames taken from a queue per drain */
#define OUTBOX_STUCK_NS (100 * 1000000L) /* a write this old waits on its peer, not on a busy CPU */
#define OUTBOX_WATCH_NS (10 * 1000000L) /* watchdog period */
#define OUTBOX_SPARE_IDLE_S 5
#define OUTBOX_STACK (256 * 1024)

struct writer {
    int64_t write_started; /* atomic; monotonic ns when the current write began, 0 when not writing */
    int in_use;            /* the slot belongs to a live thread (guarded by the pool lock) */
};

struct outbox {
    const struct outbox_io *io;
    pthread_mutex_t lock;  /* guards the ready list, the counters and the slots' in_use */
    pthread_cond_t wake;   /* work arrived, or stopping */
    pthread_cond_t gone;   /* a writer exited */
    pthread_cond_t tick;   /* wakes the watchdog early, to stop */
    struct outq *ready_head, *ready_tail;
    size_t base, max_threads, nthreads, idle;
    size_t waking;         /* signals sent that no idle writer has taken yet */
    int stopping;
    struct writer *slots;  /* max_threads of them */
    pthread_t watchdog;
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct writer_start {
    struct outbox *ob;
    struct writer *slot;
};

static void *writer_main(void *arg);

/* Starts one writer. Called with the pool lock held. */
static int spawn_writer(struct outbox *ob) {
    size_t i = 0;
    while (i < ob->max_threads && ob->slots[i].in_use) i++;
    struct writer_start *ws = malloc(sizeof *ws);
    if (i == ob->max_threads || !ws) {
        free(ws);
        return -1;
    }
    *ws = (struct writer_start){ob, &ob->slots[i]};
    pthread_attr_t attr;
    pthread_t tid;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, OUTBOX_STACK);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, writer_main, ws);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(ws);
        log_warn("outbox: cannot start a writer thread: %s", strerror(rc));
        return -1;
    }
    ob->slots[i].in_use = 1;
    ob->slots[i].write_started = 0;
    ob->nthreads++;
    return 0;
}

/* Waits for a ready queue. Returns NULL when the writer should exit: stopping, or a spare idle too long. */
static struct outq *next_ready(struct outbox *ob) {
    pthread_mutex_lock(&ob->lock);
    while (!ob->ready_head && !ob->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += OUTBOX_SPARE_IDLE_S;
        ob->idle++;
        int rc = pthread_cond_timedwait(&ob->wake, &ob->lock, &until);
        ob->idle--;
        if (ob->waking) ob->waking--;
        if (rc == ETIMEDOUT && !ob->ready_head && ob->nthreads > ob->base) break;
    }
    struct outq *q = ob->stopping ? NULL : ob->ready_head;
    if (q) {
        ob->ready_head = q->next;
        if (!ob->ready_head) ob->ready_tail = NULL;
        q->next = NULL;
    }
    pthread_mutex_unlock(&ob->lock);
    return q;
}

/* Appends q to the ready list. Called with q->lock held and q->scheduled just set. Returns 1 when
 * an idle writer must be woken: the caller does it with wake_writer once it holds no lock, so the
 * woken writer does not run only to block on a lock its waker still holds. */
static int make_ready(struct outbox *ob, struct outq *q) {
    pthread_mutex_lock(&ob->lock);
    if (ob->ready_tail) ob->ready_tail->next = q;
    else ob->ready_head = q;
    ob->ready_tail = q;
    int wake = ob->idle > ob->waking;
    if (wake) ob->waking++;
    else if (ob->idle == 0 && ob->nthreads < ob->base) spawn_writer(ob);
    pthread_mutex_unlock(&ob->lock);
    return wake;
}

static void wake_writer(struct outbox *ob, int wake) {
    if (wake) pthread_cond_signal(&ob->wake);
}

static struct frame *ring_pop(struct outq *q) {
    struct frame *f = q->ring[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    q->bytes -= f->len;
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

/* Empties the queue. Called with q->lock held; the frames are released by the caller. */
static size_t take_all(struct outq *q, struct frame **out, size_t max) {
    size_t n = 0;
    while (q->count && n < max) out[n++] = ring_pop(q);
    return n;
}

static void drop_queued(struct outq *q) {
    struct frame *batch[OUTBOX_BATCH];
    size_t n;
    while ((n = take_all(q, batch, OUTBOX_BATCH)) > 0) {
        metrics_add(M_OUTBOX_FRAMES_DROPPED, n);
        for (size_t i = 0; i < n; i++) frame_unref(batch[i]);
    }
    q->close_frame = NULL;
}

/* Writes a batch, coalescing small frames. Returns 0, or -1 when the sink is broken. */
static int write_batch(struct outbox *ob, struct writer *self, void *sink, struct frame **batch, size_t n,
                       uint8_t *buf) {
    size_t used = 0;
    int rc = 0;
    __atomic_store_n(&self->write_started, now_ns(), __ATOMIC_RELAXED);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct frame *f = batch[i];
        if (used + f->len > OUTBOX_COALESCE && used) {
            rc = ob->io->write(sink, buf, used);
            used = 0;
        }
        if (rc == 0 && f->len > OUTBOX_COALESCE) rc = ob->io->write(sink, f->bytes, f->len);
        else if (rc == 0) {
            memcpy(buf + used, f->bytes, f->len);
            used += f->len;
        }
        if (rc == 0) metrics_add(M_BYTES_OUT, f->len);
    }
    if (rc == 0 && used) rc = ob->io->write(sink, buf, used);
    __atomic_store_n(&self->write_started, 0, __ATOMIC_RELAXED);
    return rc;
}

/* One drain of one queue: take a batch, write it, then requeue or release the queue. */
static void drain(struct outbox *ob, struct writer *self, struct outq *q, uint8_t *buf) {
    struct frame *batch[OUTBOX_BATCH];
    pthread_mutex_lock(&q->lock);
    size_t n = q->detached ? 0 : take_all(q, batch, OUTBOX_BATCH);
    int ends = n > 0 && batch[n - 1] == q->close_frame;
    q->draining = n > 0;
    pthread_mutex_unlock(&q->lock);

    int broken = n > 0 && write_batch(ob, self, q->sink, batch, n, buf) < 0;

    pthread_mutex_lock(&q->lock);
    if (ends || broken) q->close_sent_ms = now_ns() / 1000000; /* outbox_expire takes it from here */
    if (broken) { /* nothing more can be written, not even a queued close frame */
        q->closing = 1;
        drop_queued(q);
    }
    q->draining = 0;
    int wake = 0;
    if (q->count && !q->detached) wake = make_ready(ob, q);
    else q->scheduled = 0;
    pthread_cond_broadcast(&q->idle);
    pthread_mutex_unlock(&q->lock);
    wake_writer(ob, wake);
    for (size_t i = 0; i < n; i++) frame_unref(batch[i]);
}

static void writer_exit(struct outbox *ob, struct writer *self) {
    pthread_mutex_lock(&ob->lock);
    self->in_use = 0;
    ob->nthreads--;
    pthread_cond_broadcast(&ob->gone);
    pthread_mutex_unlock(&ob->lock);
}

static void *writer_main(void *arg) {
    struct writer_start ws = *(struct writer_start *)arg;
    free(arg);
    pthread_setname_np(pthread_self(), "sb-writer");
    uint8_t *buf = malloc(OUTBOX_COALESCE);
    struct outq *q;
    while (buf && (q = next_ready(ws.ob)) != NULL) drain(ws.ob, ws.slot, q, buf);
    free(buf);
    writer_exit(ws.ob, ws.slot);
    return NULL;
}

/* Keeps `base` writers free of stuck writes while there is work waiting. */
static void *watchdog_main(void *arg) {
    struct outbox *ob = arg;
    pthread_mutex_lock(&ob->lock);
    while (!ob->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += OUTBOX_WATCH_NS;
        if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&ob->tick, &ob->lock, &until);
        size_t stuck = 0;
        int64_t limit = now_ns() - OUTBOX_STUCK_NS;
        for (size_t i = 0; i < ob->max_threads; i++) {
            int64_t t = __atomic_load_n(&ob->slots[i].write_started, __ATOMIC_RELAXED);
            if (ob->slots[i].in_use && t && t < limit) stuck++;
        }
        while (ob->ready_head && !ob->stopping && ob->nthreads - stuck < ob->base && spawn_writer(ob) == 0) {}
    }
    pthread_mutex_unlock(&ob->lock);
    return NULL;
}

struct outbox *outbox_start(const struct outbox_io *io, size_t base, size_t max_threads) {
    struct outbox *ob = calloc(1, sizeof *ob);
    if (!ob) return NULL;
    ob->slots = calloc(max_threads ? max_threads : 1, sizeof *ob->slots);
    if (!ob->slots) goto fail;
    ob->io = io;
    ob->base = base < max_threads ? base : max_threads;
    ob->max_threads = max_threads;
    pthread_mutex_init(&ob->lock, NULL);
    pthread_cond_init(&ob->wake, NULL);
    pthread_cond_init(&ob->gone, NULL);
    pthread_cond_init(&ob->tick, NULL);
    if (max_threads && pthread_create(&ob->watchdog, NULL, watchdog_main, ob) != 0) goto fail;
    return ob;
fail:
    free(ob->slots);
    free(ob);
    return NULL;
}

void outbox_stop(struct outbox *ob) {
    if (!ob) return;
    pthread_mutex_lock(&ob->lock);
    ob->stopping = 1;
    pthread_cond_broadcast(&ob->wake);
    pthread_cond_signal(&ob->tick);
    while (ob->nthreads > 0) pthread_cond_wait(&ob->gone, &ob->lock);
    pthread_mutex_unlock(&ob->lock);
    if (ob->max_threads) pthread_join(ob->watchdog, NULL);
    pthread_mutex_destroy(&ob->lock);
    pthread_cond_destroy(&ob->wake);
    pthread_cond_destroy(&ob->gone);
    pthread_cond_destroy(&ob->tick);
    free(ob->slots);
    free(ob);
}

size_t outbox_threads(struct outbox *ob) {
    pthread_mutex_lock(&ob->lock);
    size_t n = ob->nthreads;
    pthread_mutex_unlock(&ob->lock);
    return n;
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

/* Queues the close frame as the last thing this queue will send, after what is queued unless `drop`
 * (a slow consumer: what is queued would never be read). Called with q->lock held; returns
 * make_ready's verdict. */
static int queue_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason, int drop) {
    struct frame *f = frame_close(code, reason);
    q->closing = 1;
    q->close_code = code;
    if (drop) drop_queued(q);
    metrics_close(code);
    if (f && ring_push(q, f) == 0) q->close_frame = f;
    frame_unref(f);
    if (q->scheduled || !q->count) return 0;
    q->scheduled = 1;
    return make_ready(ob, q);
}

static enum outq_result push(struct outbox *ob, struct outq *q, struct frame *f, int message) {
    enum outq_result r = OUTQ_QUEUED;
    int wake = 0;
    pthread_mutex_lock(&q->lock);
    if (q->closing || q->detached) r = OUTQ_CLOSED;
    else if (q->bytes + f->len > q->limit || ring_push(q, f) < 0) {
        r = OUTQ_OVERFLOW;
        metrics_add(M_SLOW_CONSUMERS, 1);
        wake = queue_close(ob, q, 1008, "slow consumer: outbox full", 1);
    } else {
        if (message) metrics_add(M_MESSAGES_OUT, 1); /* before a writer can take it: never behind the peer */
        if (!q->scheduled) {
            q->scheduled = 1;
            wake = make_ready(ob, q);
        }
    }
    pthread_mutex_unlock(&q->lock);
    wake_writer(ob, wake);
    return r;
}

enum outq_result outbox_push(struct outbox *ob, struct outq *q, struct frame *f) { return push(ob, q, f, 0); }

enum outq_result outbox_push_message(struct outbox *ob, struct outq *q, struct frame *f) { return push(ob, q, f, 1); }

int outbox_close(struct outbox *ob, struct outq *q, uint16_t code, const char *reason) {
    pthread_mutex_lock(&q->lock);
    int started = !q->closing && !q->detached, wake = 0;
    if (started) wake = queue_close(ob, q, code, reason, 0);
    pthread_mutex_unlock(&q->lock);
    wake_writer(ob, wake);
    return started;
}

void outbox_expire(struct outbox *ob, struct outq *q, int64_t now_ms, long grace_ms) {
    pthread_mutex_lock(&q->lock);
    if (q->close_sent_ms && now_ms - q->close_sent_ms >= grace_ms && !q->detached) {
        ob->io->close(q->sink);
        q->close_sent_ms = 0;
    }
    pthread_mutex_unlock(&q->lock);
}

int outq_closing(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    int closing = q->closing;
    pthread_mutex_unlock(&q->lock);
    return closing;
}

int outbox_wait_idle(struct outq *q, long timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&q->lock);
    int rc = 0;
    while (q->scheduled && rc == 0) rc = pthread_cond_timedwait(&q->idle, &q->lock, &until);
    int idle = !q->scheduled;
    pthread_mutex_unlock(&q->lock);
    return idle;
}

void outbox_detach(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    q->detached = 1;
    q->closing = 1;
    drop_queued(q);
    while (q->scheduled) pthread_cond_wait(&q->idle, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

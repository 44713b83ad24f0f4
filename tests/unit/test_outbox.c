/* test_outbox: per-connection send queues written without blocking (app/io/outbox.c).
 *
 * The outbox is what keeps one client that stops reading from stalling anyone else, what closes it
 * 1008 when its queue passes --outbox, what coalesces a loop turn's deliveries into one writev per
 * connection, and what decides when a connection is over (outbox_done: the closing handshake is
 * complete, the socket broke, or the peer left our close unanswered; outbox_expire). The sink here is
 * memory standing in for a non-blocking socket: it can be told how many more bytes it takes (a full
 * socket takes 0, and a small allowance cuts a frame anywhere, header included) or to fail (-1, a
 * broken socket), and it counts writes, kicks, and any call made after the test declared the
 * connection gone. Its gate holds writes inside the sink, as a long system call would, until the test
 * opens it: that is how the tests see other threads push, flush, overflow or detach while a write is in
 * progress without the queue's lock. Nothing asserts on timing: expiry is driven with explicit clock
 * values, and where another thread holds a batch or a write the test sleeps only to make detach likely
 * to wait, while the check is an ordering flag. Every wait is bounded in time and in rounds (a gate
 * left shut opens by itself after WAIT_MS and is counted as a failure). Under ASan the shared-frame
 * tests also prove every reference is released once. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "memsink.h"
#include "metrics.h"
#include "outbox.h"

#define WAIT_MS 5000

struct sink {
    pthread_mutex_t lock;
    uint8_t *buf;
    size_t len, cap;
    long room;        /* bytes the socket still takes; -1 = any amount */
    int fail;         /* writes return -1: the socket is broken */
    int gone;         /* the connection is freed: any io call now is a use after detach */
    int writes, kicks, after_gone, last_iovcnt;
    pthread_cond_t changed; /* broadcast when a write enters or leaves, or the gate opens */
    int gated;         /* writes wait inside until sink_gate(s, 0): a long system call */
    int inside;        /* writes in the sink now */
    int returned;      /* writes that have returned */
    int gate_timeouts; /* the gate opened by itself after WAIT_MS: the test never opened it */
};

static void sink_init(struct sink *s, long room) {
    pthread_condattr_t attr;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->changed, &attr);
    pthread_condattr_destroy(&attr);
    s->room = room;
}

static void sink_free(struct sink *s) {
    free(s->buf);
    pthread_cond_destroy(&s->changed);
    pthread_mutex_destroy(&s->lock);
}

/* `ms` from now on the monotonic clock, for pthread_cond_timedwait on a sink. */
static struct timespec deadline_in(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    return ts;
}

/* Waits, under the sink's lock, while a write is held at the closed gate; gives up after WAIT_MS. */
static void gate_wait_locked(struct sink *s) {
    struct timespec until = deadline_in(WAIT_MS);
    for (int rounds = 0; s->gated && rounds < 100000; rounds++)
        if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) {
            s->gate_timeouts++;
            break;
        }
}

/* Takes what the room allows, front to back, as a non-blocking writev would. */
static ssize_t mem_write(void *arg, const struct iovec *iov, int iovcnt) {
    struct sink *s = arg;
    pthread_mutex_lock(&s->lock);
    s->writes++;
    s->last_iovcnt = iovcnt;
    s->after_gone += s->gone;
    s->inside++;
    pthread_cond_broadcast(&s->changed);
    gate_wait_locked(s); /* the room is read once the gate opens, as a socket drains meanwhile */
    ssize_t put = -1;
    if (!s->fail) {
        size_t avail = s->room < 0 ? SIZE_MAX : (size_t)s->room, took = 0;
        for (int i = 0; i < iovcnt && took < avail; i++) {
            size_t n = iov[i].iov_len < avail - took ? iov[i].iov_len : avail - took;
            if (memsink_append(&s->buf, &s->len, &s->cap, iov[i].iov_base, n) < 0) break;
            took += n;
        }
        if (s->room >= 0) s->room -= (long)took;
        put = (ssize_t)took;
    }
    s->inside--;
    s->returned++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return put;
}

static void mem_kick(void *arg) {
    struct sink *s = arg;
    pthread_mutex_lock(&s->lock);
    s->kicks++;
    s->after_gone += s->gone;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static const struct outbox_io mem_io = {mem_write, mem_kick, 0};
/* A sink with a loop: pushes from a thread without a batch kick it, and its outbox_flush writes. */
static const struct outbox_io loop_io = {mem_write, mem_kick, 1};

/* The socket drains: it takes `room` more bytes (-1: any amount). */
static void sink_room(struct sink *s, long room) {
    pthread_mutex_lock(&s->lock);
    s->room = room;
    pthread_mutex_unlock(&s->lock);
}

static void sink_flag(struct sink *s, int *flag) {
    pthread_mutex_lock(&s->lock);
    *flag = 1;
    pthread_mutex_unlock(&s->lock);
}

static int sink_get(struct sink *s, const int *field) {
    pthread_mutex_lock(&s->lock);
    int v = *field;
    pthread_mutex_unlock(&s->lock);
    return v;
}

/* Closes (1) or opens (0) the gate; opening lets the held write take what the room then allows. */
static void sink_gate(struct sink *s, int closed) {
    pthread_mutex_lock(&s->lock);
    s->gated = closed;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

/* Waits until *field reaches at least `want` (a write entered, returned...); 0 if it did not within
 * WAIT_MS. */
static int sink_wait(struct sink *s, const int *field, int want) {
    struct timespec until = deadline_in(WAIT_MS);
    pthread_mutex_lock(&s->lock);
    for (int rounds = 0; *field < want && rounds < 100000; rounds++)
        if (pthread_cond_timedwait(&s->changed, &s->lock, &until) == ETIMEDOUT) break;
    int reached = *field >= want;
    pthread_mutex_unlock(&s->lock);
    return reached;
}

static size_t sink_len(struct sink *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->len;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* The sink holds exactly these bytes. */
static int sink_equals(struct sink *s, const uint8_t *want, size_t len) {
    pthread_mutex_lock(&s->lock);
    int same = s->len == len && (len == 0 || memcmp(s->buf, want, len) == 0);
    pthread_mutex_unlock(&s->lock);
    return same;
}

/* What a sink should hold: frames appended in the order they were pushed. */
struct expect {
    uint8_t *buf;
    size_t len;
};

static void expect_add(struct expect *e, const struct frame *f) {
    e->buf = realloc(e->buf, e->len + f->len);
    memcpy(e->buf + e->len, f->bytes, f->len);
    e->len += f->len;
}

static void expect_close(struct expect *e, uint16_t code, const char *reason) {
    struct frame *f = frame_close(code, reason);
    expect_add(e, f);
    frame_unref(f);
}

static int sink_is(struct sink *s, const struct expect *e) { return sink_equals(s, e->buf, e->len); }

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A text frame "<tag><n>" padded with 'x' to `size` payload bytes. */
static struct frame *numbered(const char *tag, int n, size_t size) {
    char *p = malloc(size + 32);
    int k = snprintf(p, size + 32, "%s%d", tag, n);
    if ((size_t)k < size) memset(p + k, 'x', size - (size_t)k);
    struct frame *f = frame_new(WS_OP_TEXT, p, size > (size_t)k ? size : (size_t)k);
    free(p);
    return f;
}

/* Pushes a fresh numbered frame and records it as expected; returns the push's result. */
static enum outq_result push_new(struct outbox *ob, struct outq *q, struct expect *e, int n, size_t size) {
    struct frame *f = numbered("m", n, size);
    enum outq_result r = outbox_push(ob, q, f);
    if (r == OUTQ_QUEUED) expect_add(e, f);
    frame_unref(f);
    return r;
}

/* When the queue began closing, read under its lock. */
static int64_t close_started(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    int64_t t = q->close_started_ms;
    pthread_mutex_unlock(&q->lock);
    return t;
}

static void finish(struct outq *q) {
    outbox_detach(q);
    outq_destroy(q);
}

/* A connection: a queue of `limit` bytes onto a fresh sink that takes `room` bytes (-1: any amount). */
static void open_conn(struct outq *q, struct sink *s, long room, size_t limit) {
    sink_init(s, room);
    outq_init(q, s, limit);
}

/* Ends a connection opened by open_conn as ws.c does (finish), then frees its sink. */
static void close_conn(struct outq *q, struct sink *s) {
    finish(q);
    sink_free(s);
}

/* Mostly small frames and some bigger than any socket buffer: all of it, in order, byte-exact. */
static void test_order(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    int queued = 0;
    uint64_t out_before = metrics_get(M_BYTES_OUT);
    open_conn(&q, &s, -1, 1 << 22);
    for (int i = 0; i < 300; i++)
        queued += push_new(ob, &q, &e, i, i % 50 == 7 ? 100000 : (size_t)(i % 40)) == OUTQ_QUEUED;
    CHECK_EQ_INT(queued, 300);
    CHECK(sink_is(&s, &e)); /* no batch: every push was written before it returned */
    CHECK_EQ_INT(s.writes, 300);
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(metrics_get(M_BYTES_OUT) - out_before, e.len);
    CHECK(!outq_closing(&q) && !outbox_done(&q));
    CHECK_EQ_INT(s.kicks, 0);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* A socket that takes a few bytes at a time: frames are cut anywhere (in a header, in a payload,
 * between frames), new pushes queue behind the cut one, and outbox_flush resumes exactly where the
 * socket stopped. */
static void test_partial_writes(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    int n = 0, rounds = 0, done = 0;
    open_conn(&q, &s, 3, 1 << 22); /* the first frame is cut inside its header */
    for (; n < 40; n++) push_new(ob, &q, &e, n, n % 9 == 0 ? 70000 : (size_t)(n * 13 % 300));
    CHECK_EQ_INT(sink_len(&s), 3);
    CHECK_EQ_INT(outq_bytes(&q), e.len - 3);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0); /* still full: nothing moves */
    CHECK_EQ_INT(sink_len(&s), 3);
    for (long slice = 1; sink_len(&s) < e.len && rounds < 100000; rounds++) {
        sink_room(&s, slice);
        done |= outbox_flush(ob, &q);
        if (rounds % 2 == 0) push_new(ob, &q, &e, n, (size_t)(n * 7 % 200)), n++;
        slice = slice * 7 % 4099 + 1;
    }
    CHECK(sink_is(&s, &e));
    CHECK(n > 80 && rounds > 100); /* many cuts, many pushes behind them */
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(done, 0);
    CHECK_EQ_INT(s.kicks, 0);
    /* a backlog longer than one writev takes: flush keeps writing while the socket takes it all */
    sink_room(&s, 0);
    for (int i = 0; i < 500; i++) push_new(ob, &q, &e, n++, 5);
    int before = sink_get(&s, &s.writes);
    sink_room(&s, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    CHECK(sink_get(&s, &s.writes) - before > 1);
    CHECK(sink_is(&s, &e));
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* A client that stops reading holds up nobody: pushes to its full socket return at once, queued,
 * and another connection gets every frame as it is pushed, in the same batch or not. */
static void test_full_sink_isolated(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink stuck, fine;
    struct outq qs, qf;
    struct expect es = {0}, ef = {0};
    struct outbox_batch b;
    open_conn(&qs, &stuck, 0, 1 << 20), open_conn(&qf, &fine, -1, 1 << 20);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ_INT(push_new(ob, &qs, &es, i, 16), OUTQ_QUEUED);
        push_new(ob, &qf, &ef, i, 16);
    }
    CHECK(sink_is(&fine, &ef));
    outbox_batch_begin(&b);
    for (int i = 0; i < 20; i++) push_new(ob, &qs, &es, i, 16), push_new(ob, &qf, &ef, i, 16);
    outbox_batch_end(ob);
    CHECK(sink_is(&fine, &ef));
    CHECK_EQ_INT(sink_len(&stuck), 0);
    CHECK_EQ_INT(outq_bytes(&qs), es.len);
    CHECK(!outq_closing(&qs) && !outbox_done(&qs));
    sink_room(&stuck, -1); /* it reads again: everything, in order */
    CHECK_EQ_INT(outbox_flush(ob, &qs), 0);
    CHECK(sink_is(&stuck, &es));
    close_conn(&qs, &stuck), close_conn(&qf, &fine);
    outbox_free(ob);
    free(es.buf), free(ef.buf);
}

/* A batch defers this thread's pushes; its end writes each touched queue once, all of its frames in
 * one writev. What the socket does not take stays queued for outbox_flush. */
static void test_batch(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s1, s2;
    struct outq q1, q2;
    struct expect e1 = {0}, e2 = {0};
    struct outbox_batch b;
    open_conn(&q1, &s1, -1, 1 << 20), open_conn(&q2, &s2, 40, 1 << 20);
    outbox_batch_begin(&b);
    for (int i = 0; i < 5; i++) push_new(ob, &q1, &e1, i, 10);
    for (int i = 0; i < 3; i++) push_new(ob, &q2, &e2, i, 30);
    CHECK(sink_get(&s1, &s1.writes) == 0 && sink_get(&s2, &s2.writes) == 0);
    CHECK_EQ_INT(outq_bytes(&q1), e1.len);
    CHECK_EQ_INT(outbox_close(ob, &q1, 1000, NULL), 1); /* deferred like any push */
    expect_close(&e1, 1000, NULL);
    CHECK_EQ_INT(sink_len(&s1), 0);
    outbox_batch_end(ob);
    CHECK(sink_get(&s1, &s1.writes) == 1 && sink_get(&s1, &s1.last_iovcnt) == 6);
    CHECK(sink_is(&s1, &e1));
    CHECK(sink_get(&s2, &s2.writes) == 1 && sink_get(&s2, &s2.last_iovcnt) == 3);
    CHECK_EQ_INT(sink_len(&s2), 40);
    CHECK_EQ_INT(outq_bytes(&q2), e2.len - 40);
    sink_room(&s2, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q2), 0);
    CHECK(sink_is(&s2, &e2));
    /* the batch is over: pushes write at once again */
    push_new(ob, &q2, &e2, 9, 1);
    CHECK(sink_is(&s2, &e2));
    close_conn(&q1, &s1), close_conn(&q2, &s2);
    outbox_free(ob);
    free(e1.buf), free(e2.buf);
}

/* A batch holds at most OUTBOX_BATCH_MAX queues; a push to one more queue is written at once. */
static void test_batch_full(void) {
    enum { N = OUTBOX_BATCH_MAX + 1 };
    struct outbox *ob = outbox_new(&mem_io);
    struct sink *s = malloc(N * sizeof *s);
    struct outq *q = malloc(N * sizeof *q);
    struct outbox_batch *b = malloc(sizeof *b);
    struct frame *f = numbered("f", 0, 4);
    int early = 0, late = 0;
    for (int i = 0; i < N; i++) open_conn(&q[i], &s[i], -1, 1 << 10);
    outbox_batch_begin(b);
    for (int i = 0; i < N; i++) outbox_push(ob, &q[i], f);
    for (int i = 0; i < N - 1; i++) early += s[i].writes;
    CHECK_EQ_INT(early, 0);
    CHECK_EQ_INT(s[N - 1].writes, 1);
    outbox_batch_end(ob);
    for (int i = 0; i < N; i++) late += s[i].writes == 1 && sink_equals(&s[i], f->bytes, f->len);
    CHECK_EQ_INT(late, N);
    for (int i = 0; i < N; i++) close_conn(&q[i], &s[i]);
    CHECK_EQ_INT(f->refs, 1);
    frame_unref(f);
    free(s), free(q), free(b);
    outbox_free(ob);
}

/* One frame queued on many queues is one allocation with one reference per queue, released as each
 * queue writes it, or drops it, or is destroyed with it. */
static void test_shared_frames(void) {
    enum { NQ = 16, PER = 40 };
    struct outbox *ob = outbox_new(&mem_io);
    static struct sink s[NQ];
    static struct outq q[NQ];
    struct frame *frames[PER];
    struct expect e = {0};
    int wrong = 0;
    for (int i = 0; i < NQ; i++) open_conn(&q[i], &s[i], 0, 1 << 20);
    for (int k = 0; k < PER; k++) frames[k] = numbered("f", k, (size_t)k * 5), expect_add(&e, frames[k]);
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < NQ; i++) outbox_push(ob, &q[i], frames[k]);
    for (int k = 0; k < PER; k++) wrong += frames[k]->refs != 1 + NQ;
    CHECK_EQ_INT(wrong, 0);
    for (int i = 0; i < NQ / 2; i++) sink_room(&s[i], -1), outbox_flush(ob, &q[i]);
    for (int k = 0; k < PER; k++) wrong += frames[k]->refs != 1 + NQ / 2;
    CHECK_EQ_INT(wrong, 0);
    for (int i = NQ / 2; i < NQ - 2; i++) /* a socket draining unevenly */
        for (int r = 0; sink_len(&s[i]) < e.len && r < 10000; r++)
            sink_room(&s[i], 1 + (i * r) % 97), outbox_flush(ob, &q[i]);
    outbox_close(ob, &q[NQ - 2], 1001, NULL); /* a close keeps what is queued */
    outbox_detach(&q[NQ - 1]);                /* a detach drops it */
    for (int k = 0; k < PER; k++) wrong += frames[k]->refs != 2;
    CHECK_EQ_INT(wrong, 0);
    for (int i = 0; i < NQ - 2; i++) wrong += !sink_is(&s[i], &e);
    CHECK_EQ_INT(wrong, 0);
    outq_destroy(&q[NQ - 1]);
    outq_destroy(&q[NQ - 2]); /* still holding every frame and the close */
    for (int i = 0; i < NQ - 2; i++) finish(&q[i]);
    for (int k = 0; k < PER; k++) wrong += frames[k]->refs != 1;
    CHECK_EQ_INT(wrong, 0); /* only ours is left */
    for (int k = 0; k < PER; k++) frame_unref(frames[k]);
    for (int i = 0; i < NQ; i++) wrong += s[i].kicks, sink_free(&s[i]);
    CHECK_EQ_INT(wrong, 0);
    outbox_free(ob);
    free(e.buf);
}

/* Past --outbox a client is a slow consumer: what is queued is dropped (it would never be read), the
 * close 1008 is queued alone, and the queue accepts nothing more. */
static void test_overflow(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    enum outq_result r[5];
    uint64_t slow_before = metrics_get(M_SLOW_CONSUMERS), dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED);
    open_conn(&q, &s, 300, 1200); /* takes the first frame whole, then is full */
    CHECK_EQ_INT(push_new(ob, &q, &e, 0, 296), OUTQ_QUEUED); /* 300 bytes with its header */
    CHECK(sink_is(&s, &e));
    for (int i = 0; i < 5; i++) r[i] = push_new(ob, &q, &e, i + 1, 296);
    CHECK(r[0] == OUTQ_QUEUED && r[1] == OUTQ_QUEUED && r[2] == OUTQ_QUEUED);
    CHECK_EQ_INT(r[3], OUTQ_QUEUED);   /* 1200 queued: exactly the limit is still fine */
    CHECK_EQ_INT(r[4], OUTQ_OVERFLOW); /* 1500 > 1200 */
    CHECK_EQ_INT(metrics_get(M_SLOW_CONSUMERS) - slow_before, 1);
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 4);
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(q.close_code, 1008);
    CHECK_EQ_INT(push_new(ob, &q, &e, 9, 1), OUTQ_CLOSED);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 0);
    e.len = 300; /* the four queued frames will never be sent */
    expect_close(&e, 1008, "slow consumer: outbox full");
    CHECK_EQ_INT(outq_bytes(&q), e.len - 300);
    sink_room(&s, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0); /* the peer's answer, or outbox_expire, ends it */
    CHECK(sink_is(&s, &e));
    CHECK_EQ_INT(s.kicks, 0);
    outbox_peer_closed(ob, &q, 1008, NULL);
    CHECK(outbox_done(&q));
    CHECK_EQ_INT(s.kicks, 1);
    CHECK(sink_is(&s, &e)); /* the answer needs no answer */
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* A close goes after everything queued, even behind a full socket; only the first close counts. */
static void test_close_after_queued(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    open_conn(&q, &s, 25, 1 << 20); /* takes the first frame (22 bytes), cuts the second in its payload */
    for (int i = 0; i < 4; i++) push_new(ob, &q, &e, i, 20);
    CHECK_EQ_INT(outbox_close(ob, &q, 1001, "going away"), 1);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, "again"), 0);
    CHECK_EQ_INT(push_new(ob, &q, &e, 9, 4), OUTQ_CLOSED);
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(q.close_code, 1001);
    CHECK_EQ_INT(sink_len(&s), 25);
    sink_room(&s, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    expect_close(&e, 1001, "going away");
    CHECK(sink_is(&s, &e));
    CHECK(!outbox_done(&q));
    CHECK_EQ_INT(s.kicks, 0);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

struct peer_close_args {
    struct outbox *ob;
    struct outq *q;
    uint16_t code;
    int batch; /* inside a batch of its own */
    int kicks_before_end; /* read by the thread just before its batch ends */
    struct sink *s;
};

/* The peer's close arrives on some other thread than the test's (another connection's loop). */
static void *peer_closes(void *arg) {
    struct peer_close_args *a = arg;
    struct outbox_batch b;
    if (a->batch) outbox_batch_begin(&b);
    outbox_peer_closed(a->ob, a->q, a->code, "bye");
    a->kicks_before_end = sink_get(a->s, &a->s->kicks);
    if (a->batch) outbox_batch_end(a->ob);
    return NULL;
}

static void peer_closes_on_thread(struct peer_close_args *a) {
    pthread_t t;
    pthread_create(&t, NULL, peer_closes, a);
    pthread_join(t, NULL);
}

/* We close first: done once our close is written and the peer's has arrived, in either order, with
 * exactly one kick, made by the thread that completed it. */
static void test_we_close_first(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s, t;
    struct outq q, r;
    struct expect e = {0};
    open_conn(&q, &s, -1, 1 << 20), open_conn(&r, &t, 0, 1 << 20);
    /* written at once, answered later from another thread */
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, "bye"), 1);
    expect_close(&e, 1000, "bye");
    CHECK(sink_is(&s, &e));
    CHECK(!outbox_done(&q) && s.kicks == 0);
    peer_closes_on_thread(&(struct peer_close_args){ob, &q, 1000, 0, 0, &s});
    CHECK(outbox_done(&q));
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 1);
    CHECK(sink_is(&s, &e)); /* no second close */
    CHECK_EQ_INT(outbox_flush(ob, &q), 1);
    outbox_peer_closed(ob, &q, 1000, NULL);
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 1);
    /* answered before our close could be written: done only when it is */
    CHECK_EQ_INT(outbox_close(ob, &r, 1001, NULL), 1);
    outbox_peer_closed(ob, &r, 1001, NULL);
    CHECK(!outbox_done(&r) && t.kicks == 0 && t.len == 0);
    sink_room(&t, -1);
    CHECK_EQ_INT(outbox_flush(ob, &r), 1);
    CHECK_EQ_INT(t.kicks, 1);
    free(e.buf);
    e = (struct expect){0};
    expect_close(&e, 1001, NULL);
    CHECK(sink_is(&t, &e));
    close_conn(&q, &s), close_conn(&r, &t);
    outbox_free(ob);
    free(e.buf);
}

/* The peer closes first: our answer carries its code (an empty close when it sent none), goes after
 * what is queued, and completes the handshake when written, even from another thread's batch. */
static void test_peer_closes_first(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s, t;
    struct outq q, r;
    struct expect e = {0}, et = {0};
    open_conn(&q, &s, -1, 1 << 20), open_conn(&r, &t, -1, 1 << 20);
    push_new(ob, &q, &e, 0, 10);
    struct peer_close_args a = {ob, &q, 1001, 1, -1, &s};
    peer_closes_on_thread(&a);
    CHECK_EQ_INT(a.kicks_before_end, 0); /* the answer waited for the batch's end */
    expect_close(&e, 1001, "bye");
    CHECK(sink_is(&s, &e));
    CHECK(outbox_done(&q));
    CHECK_EQ_INT(s.kicks, 1);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 0);
    CHECK_EQ_INT(push_new(ob, &q, &e, 1, 1), OUTQ_CLOSED);
    /* a close without a code is answered with an empty close */
    sink_room(&t, 0);
    push_new(ob, &r, &et, 0, 10);
    outbox_peer_closed(ob, &r, 0, NULL);
    CHECK(!outbox_done(&r) && t.kicks == 0);
    sink_room(&t, -1);
    CHECK_EQ_INT(outbox_flush(ob, &r), 1);
    CHECK_EQ_INT(t.kicks, 1);
    static const uint8_t empty_close[] = {0x88, 0x00};
    CHECK(t.len == et.len + 2 && memcmp(t.buf, et.buf, et.len) == 0 && memcmp(t.buf + et.len, empty_close, 2) == 0);
    close_conn(&q, &s), close_conn(&r, &t);
    outbox_free(ob);
    free(e.buf), free(et.buf);
}

/* A failed write ends the connection at once: done, one kick, what was queued dropped, nothing
 * more accepted or written; whether the write came from a push, a flush or a batch's end. */
static void test_broken(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s[3];
    struct outq q[3];
    struct outbox_batch b;
    uint64_t dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED);
    struct expect e = {0};
    for (int i = 0; i < 3; i++) open_conn(&q[i], &s[i], 0, 1 << 20);
    s[0].fail = 1;
    CHECK_EQ_INT(push_new(ob, &q[0], &e, 0, 8), OUTQ_QUEUED); /* the push itself finds it broken */
    for (int i = 0; i < 3; i++) push_new(ob, &q[1], &e, i, 8);
    sink_flag(&s[1], &s[1].fail);
    CHECK_EQ_INT(outbox_flush(ob, &q[1]), 1);
    outbox_batch_begin(&b);
    push_new(ob, &q[2], &e, 0, 8);
    sink_flag(&s[2], &s[2].fail);
    CHECK(!outbox_done(&q[2]));
    outbox_batch_end(ob);
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 5);
    for (int i = 0; i < 3; i++) {
        int writes = s[i].writes;
        CHECK(outbox_done(&q[i]) && outq_closing(&q[i]));
        CHECK_EQ_INT(s[i].kicks, 1);
        CHECK_EQ_INT(outq_bytes(&q[i]), 0);
        CHECK_EQ_INT(push_new(ob, &q[i], &e, 9, 1), OUTQ_CLOSED);
        CHECK_EQ_INT(outbox_close(ob, &q[i], 1000, NULL), 0);
        outbox_peer_closed(ob, &q[i], 1000, NULL);
        outbox_expire(ob, &q[i], INT64_MAX / 2, 0);
        CHECK_EQ_INT(outbox_flush(ob, &q[i]), 1);
        CHECK(s[i].kicks == 1 && s[i].writes == writes && s[i].len == 0);
        close_conn(&q[i], &s[i]);
    }
    outbox_free(ob);
    free(e.buf);
}

/* A peer that never answers our close (or never reads it) is ended grace_ms after the close began:
 * marked done and kicked once. Clock values are explicit, relative to when closing began. */
static void test_expire(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s, t, u;
    struct outq q, quiet, unread, answered;
    struct expect eu = {0};
    sink_init(&s, -1), sink_init(&t, -1), sink_init(&u, 0);
    outq_init(&q, &s, 1 << 20);
    outq_init(&quiet, &t, 1 << 20);
    outq_init(&answered, &t, 1 << 20);
    outq_init(&unread, &u, 1 << 20);
    outbox_expire(ob, &quiet, INT64_MAX / 2, 0); /* never closed: nothing to expire */
    CHECK(!outbox_done(&quiet) && !outq_closing(&quiet));
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 1);
    int64_t began = close_started(&q);
    CHECK(began > 0);
    outbox_expire(ob, &q, began + 1999, 2000);
    CHECK(!outbox_done(&q) && s.kicks == 0);
    outbox_expire(ob, &q, began + 2000, 2000);
    CHECK(outbox_done(&q) && s.kicks == 1);
    outbox_expire(ob, &q, began + 99000, 2000); /* ended once */
    CHECK_EQ_INT(s.kicks, 1);
    /* the close is still queued behind a full socket: it expires all the same */
    push_new(ob, &unread, &eu, 0, 8);
    outbox_close(ob, &unread, 1001, NULL);
    began = close_started(&unread);
    outbox_expire(ob, &unread, began + 1999, 2000);
    CHECK(!outbox_done(&unread) && u.kicks == 0);
    outbox_expire(ob, &unread, began + 2000, 2000);
    CHECK(outbox_done(&unread) && u.kicks == 1);
    /* a completed handshake has nothing left to expire */
    outbox_close(ob, &answered, 1000, NULL);
    outbox_peer_closed(ob, &answered, 1000, NULL);
    CHECK_EQ_INT(t.kicks, 1);
    outbox_expire(ob, &answered, INT64_MAX / 2, 0);
    CHECK_EQ_INT(t.kicks, 1);
    CHECK_EQ_INT(outbox_done(&quiet), 0);
    finish(&q), finish(&quiet), finish(&answered), finish(&unread);
    outbox_free(ob);
    sink_free(&s), sink_free(&t), sink_free(&u);
    free(eu.buf);
}

/* After outbox_detach the connection may be freed: nothing reaches its sink any more, whatever
 * is called on the queue. */
static void test_detach(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s, t;
    struct outq q, r;
    struct expect e = {0};
    struct outbox_batch b;
    uint64_t dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED);
    open_conn(&q, &s, 0, 1 << 20), open_conn(&r, &t, -1, 1 << 20);
    for (int i = 0; i < 3; i++) push_new(ob, &q, &e, i, 8);
    outbox_close(ob, &q, 1000, NULL);
    outbox_detach(&q);
    sink_flag(&s, &s.gone);
    sink_room(&s, -1);
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 4); /* with the close */
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(push_new(ob, &q, &e, 9, 1), OUTQ_CLOSED);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 0);
    outbox_peer_closed(ob, &q, 1000, NULL);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    outbox_expire(ob, &q, INT64_MAX / 2, 0);
    outbox_batch_begin(&b);
    push_new(ob, &q, &e, 10, 1);
    outbox_batch_end(ob);
    CHECK_EQ_INT(outbox_done(&q), 0); /* gone is not done: there is nothing left to end */
    CHECK_EQ_INT(s.after_gone, 0);
    CHECK_EQ_INT(s.len, 0);
    /* our close was written; the answer that would complete the handshake comes too late to kick */
    outbox_close(ob, &r, 1000, NULL);
    outbox_detach(&r);
    sink_flag(&t, &t.gone);
    outbox_peer_closed(ob, &r, 1000, NULL);
    outbox_expire(ob, &r, INT64_MAX / 2, 0);
    CHECK(!outbox_done(&r) && t.kicks == 0 && t.after_gone == 0);
    outq_destroy(&q), outq_destroy(&r);
    outbox_free(ob);
    sink_free(&s), sink_free(&t);
    free(e.buf);
}

struct holder {
    struct outbox *ob;
    struct outq *q;
    struct frame *f;
    int holding, ending; /* atomics */
};

/* Another loop's turn: a batch that has pushed to the queue and ends a while later. */
static void *hold_batch(void *arg) {
    struct holder *h = arg;
    struct outbox_batch *b = malloc(sizeof *b);
    outbox_batch_begin(b);
    outbox_push(h->ob, h->q, h->f);
    __atomic_store_n(&h->holding, 1, __ATOMIC_RELEASE);
    sleep_ms(200);
    __atomic_store_n(&h->ending, 1, __ATOMIC_RELEASE);
    outbox_batch_end(h->ob);
    free(b);
    return NULL;
}

/* Detach waits for another thread's batch holding the queue to end; that batch then writes nothing. */
static void test_detach_waits_for_batch(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    pthread_t t;
    open_conn(&q, &s, -1, 1 << 20);
    struct holder h = {ob, &q, numbered("held", 0, 8), 0, 0};
    pthread_create(&t, NULL, hold_batch, &h);
    for (int waited = 0; !__atomic_load_n(&h.holding, __ATOMIC_ACQUIRE) && waited < WAIT_MS; waited++) sleep_ms(1);
    CHECK(__atomic_load_n(&h.holding, __ATOMIC_ACQUIRE));
    outbox_detach(&q);
    CHECK_EQ_INT(__atomic_load_n(&h.ending, __ATOMIC_ACQUIRE), 1); /* returned only after the batch ended */
    sink_flag(&s, &s.gone);
    outq_destroy(&q); /* the connection is freed */
    pthread_join(t, NULL);
    CHECK_EQ_INT(s.writes, 0);
    CHECK_EQ_INT(s.after_gone, 0);
    CHECK_EQ_INT(h.f->refs, 1);
    frame_unref(h.f);
    outbox_free(ob);
    sink_free(&s);
}

/* Messages are counted when queued, other frames (pings, pongs, closes) are not. */
static void test_message_count(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    open_conn(&q, &s, 0, 1 << 20);
    struct frame *f = numbered("msg", 0, 8);
    uint64_t before = metrics_get(M_MESSAGES_OUT);
    CHECK_EQ_INT(outbox_push_message(ob, &q, f), OUTQ_QUEUED);
    CHECK_EQ_INT(outbox_push(ob, &q, f), OUTQ_QUEUED);
    CHECK_EQ_INT(metrics_get(M_MESSAGES_OUT) - before, 1); /* not yet written, already counted */
    outbox_close(ob, &q, 1000, NULL);
    CHECK_EQ_INT(outbox_push_message(ob, &q, f), OUTQ_CLOSED);
    CHECK_EQ_INT(metrics_get(M_MESSAGES_OUT) - before, 1);
    frame_unref(f);
    close_conn(&q, &s);
    outbox_free(ob);
}

/* What a server byte stream holds, read as WebSocket frames (unmasked, one frame per message). */
struct stream {
    int frames;     /* whole frames */
    int torn;       /* bytes at the end that are not a whole frame: a cut the close could land in */
    int bad;        /* frames with RSV bits, no FIN, a mask, or a control payload over 125 */
    int closes;     /* close frames among them */
    int last_close; /* the code of the last frame if it is a close, else -1 */
};

static struct stream parse_stream(const uint8_t *p, size_t len) {
    struct stream st = {0, 0, 0, 0, -1};
    size_t at = 0;
    while (at < len) {
        size_t head = 2, n;
        if (len - at < 2) break;
        uint8_t op = p[at] & 0x0f;
        n = p[at + 1] & 0x7f;
        if (n == 126) head = 4;
        if (n == 127) head = 10;
        if (len - at < head) break;
        if (n >= 126) {
            n = 0;
            for (size_t i = 2; i < head; i++) n = n << 8 | p[at + i];
        }
        if (len - at - head < n) break;
        st.bad += (p[at] & 0xf0) != 0x80 || (p[at + 1] & 0x80) || (op >= WS_OP_CLOSE && n > WS_CONTROL_MAX);
        st.frames++;
        st.last_close = -1;
        if (op == WS_OP_CLOSE) st.closes++, st.last_close = n >= 2 ? p[at + head] << 8 | p[at + head + 1] : 0;
        at += head + n;
    }
    st.torn = at < len;
    return st;
}

/* The sink's bytes read as frames, under its lock. */
static struct stream sink_stream(struct sink *s) {
    pthread_mutex_lock(&s->lock);
    struct stream st = parse_stream(s->buf, s->len);
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Whether the queue has been detached, read under its lock. */
static int queue_detached(struct outq *q) {
    pthread_mutex_lock(&q->lock);
    int detached = q->detached;
    pthread_mutex_unlock(&q->lock);
    return detached;
}

/* Joins t, waiting at most WAIT_MS. A thread that does not end still uses the test's stack, so the
 * run cannot go on: it stops here with what it found. */
static void join_within(pthread_t t) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WAIT_MS / 1000 + 1;
    if (!CHECK(pthread_timedjoin_np(t, NULL, &until) == 0)) exit(check_done() | 1);
}

/* A call into the outbox on another thread, without a batch: a push of f, or (f NULL) a flush. */
struct caller {
    struct outbox *ob;
    struct outq *q;
    struct frame *f;
    int result;   /* the push's outq_result, or the flush's outbox_done */
    int returned; /* atomic: the call has returned */
    pthread_t t;
};

static void *call(void *arg) {
    struct caller *c = arg;
    c->result = c->f ? (int)outbox_push(c->ob, c->q, c->f) : outbox_flush(c->ob, c->q);
    __atomic_store_n(&c->returned, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void call_start(struct caller *c) { pthread_create(&c->t, NULL, call, c); }

static int call_returned(struct caller *c) { return __atomic_load_n(&c->returned, __ATOMIC_ACQUIRE); }

/* With a loop (loop_writes): a push from a thread without a batch only queues and kicks the loop, once
 * until the loop's next write; the loop's outbox_flush writes all of it in one writev. A batch still
 * defers to its end, and kicks nobody. */
static void test_loop_writes(void) {
    struct outbox *ob = outbox_new(&loop_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    struct outbox_batch b;
    open_conn(&q, &s, -1, 1 << 20);
    CHECK_EQ_INT(push_new(ob, &q, &e, 0, 10), OUTQ_QUEUED);
    CHECK(sink_get(&s, &s.writes) == 0 && sink_get(&s, &s.kicks) == 1);
    for (int i = 1; i < 4; i++) push_new(ob, &q, &e, i, (size_t)i * 30);
    CHECK(sink_get(&s, &s.writes) == 0 && sink_get(&s, &s.kicks) == 1); /* the loop is already asked */
    CHECK_EQ_INT(outq_bytes(&q), e.len);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0); /* the loop's turn */
    CHECK(sink_get(&s, &s.writes) == 1 && sink_get(&s, &s.last_iovcnt) == 4);
    CHECK(sink_is(&s, &e));
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 1);
    push_new(ob, &q, &e, 4, 5); /* after a write, the next push kicks again */
    push_new(ob, &q, &e, 5, 5);
    CHECK(sink_get(&s, &s.writes) == 1 && sink_get(&s, &s.kicks) == 2);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    CHECK(sink_get(&s, &s.writes) == 2 && sink_get(&s, &s.last_iovcnt) == 2);
    CHECK(sink_is(&s, &e));
    /* inside a batch: deferred to its end, no kick, even for another thread's push meanwhile */
    outbox_batch_begin(&b);
    for (int i = 6; i < 9; i++) push_new(ob, &q, &e, i, 12);
    struct caller other = {ob, &q, numbered("m", 9, 7), -1, 0, 0};
    call_start(&other);
    join_within(other.t);
    CHECK_EQ_INT(other.result, OUTQ_QUEUED);
    expect_add(&e, other.f);
    CHECK(sink_get(&s, &s.writes) == 2 && sink_get(&s, &s.kicks) == 2);
    outbox_batch_end(ob);
    CHECK(sink_get(&s, &s.writes) == 3 && sink_get(&s, &s.last_iovcnt) == 4);
    CHECK(sink_is(&s, &e));
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 2);
    /* the batch's end was a write: a close from a thread without a batch kicks again, once */
    CHECK_EQ_INT(outbox_close(ob, &q, 1001, NULL), 1);
    push_new(ob, &q, &e, 10, 1); /* refused: closing */
    CHECK(sink_get(&s, &s.writes) == 3 && sink_get(&s, &s.kicks) == 3);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    expect_close(&e, 1001, NULL);
    CHECK(sink_is(&s, &e));
    CHECK_EQ_INT(other.f->refs, 1);
    frame_unref(other.f);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* A write runs without the queue's lock: while thread A is in a long write, this thread's pushes,
 * flush and batch end return at once without writing (one writer per queue), and A goes on with
 * what was queued meanwhile, in order, in one more writev. */
static void test_push_during_write(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    struct outbox_batch b;
    int queued = 0;
    open_conn(&q, &s, -1, 1 << 20);
    sink_gate(&s, 1);
    struct caller a = {ob, &q, numbered("a", 0, 200), -1, 0, 0};
    expect_add(&e, a.f);
    call_start(&a);
    CHECK(sink_wait(&s, &s.inside, 1)); /* A is in the write */
    for (int i = 1; i <= 10; i++) queued += push_new(ob, &q, &e, i, (size_t)(i * 37 % 200)) == OUTQ_QUEUED;
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    outbox_batch_begin(&b);
    queued += push_new(ob, &q, &e, 11, 70000) == OUTQ_QUEUED;
    outbox_batch_end(ob);
    CHECK_EQ_INT(queued, 11);
    CHECK_EQ_INT(sink_get(&s, &s.inside), 1); /* all of that returned while A was still held */
    CHECK_EQ_INT(call_returned(&a), 0);
    CHECK_EQ_INT(sink_get(&s, &s.writes), 1); /* nobody else wrote */
    CHECK_EQ_INT(sink_len(&s), 0);
    CHECK_EQ_INT(outq_bytes(&q), e.len);
    sink_gate(&s, 0);
    join_within(a.t);
    CHECK_EQ_INT(a.result, OUTQ_QUEUED);
    CHECK(sink_is(&s, &e)); /* A's frame, then the others in push order, byte-exact */
    CHECK(sink_get(&s, &s.writes) == 2 && sink_get(&s, &s.last_iovcnt) == 11);
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(sink_get(&s, &s.gate_timeouts), 0);
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 0);
    CHECK_EQ_INT(a.f->refs, 1); /* the write let go of its reference */
    frame_unref(a.f);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

struct detacher {
    struct outq *q;
    struct sink *s;
    int write_returned; /* whether the held write had returned when detach did */
    int returned;       /* atomic: outbox_detach has returned */
    pthread_t t;
};

/* The connection's own thread ends it while another thread is writing to it; once detach returns the
 * connection counts as freed. */
static void *detach_on_thread(void *arg) {
    struct detacher *d = arg;
    outbox_detach(d->q);
    d->write_returned = sink_get(d->s, &d->s->returned);
    sink_flag(d->s, &d->s->gone);
    __atomic_store_n(&d->returned, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Detach waits for a write in progress to return; the writer then leaves the sink alone (the frames
 * queued meanwhile are dropped, not written) and the frame it wrote outlived every other reference. */
static void test_detach_during_write(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    open_conn(&q, &s, -1, 1 << 20);
    sink_gate(&s, 1);
    struct expect written = {0}, later = {0};
    struct caller a = {ob, &q, numbered("a", 0, 300), -1, 0, 0};
    expect_add(&written, a.f);
    call_start(&a);
    CHECK(sink_wait(&s, &s.inside, 1));
    for (int i = 1; i <= 3; i++) push_new(ob, &q, &later, i, 20);
    CHECK_EQ_INT(a.f->refs, 3); /* ours, the queue's, the write's */
    frame_unref(a.f); /* the queue's goes with the detach: then only the write's keeps it (ASan) */
    struct detacher d = {&q, &s, 0, 0, 0};
    pthread_create(&d.t, NULL, detach_on_thread, &d);
    for (int waited = 0; !queue_detached(&q) && waited < WAIT_MS; waited++) sleep_ms(1);
    CHECK(queue_detached(&q));
    sleep_ms(50); /* only to give a detach that does not wait the time to return: the check is a flag */
    CHECK_EQ_INT(__atomic_load_n(&d.returned, __ATOMIC_ACQUIRE), 0);
    CHECK_EQ_INT(call_returned(&a), 0);
    sink_gate(&s, 0);
    join_within(d.t);
    join_within(a.t);
    CHECK_EQ_INT(d.write_returned, 1); /* detach returned after the write did */
    CHECK_EQ_INT(a.result, OUTQ_QUEUED);
    CHECK(sink_is(&s, &written)); /* what the write took, nothing after: the rest was dropped */
    CHECK_EQ_INT(sink_get(&s, &s.writes), 1);
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 0);
    CHECK_EQ_INT(sink_get(&s, &s.after_gone), 0);
    CHECK_EQ_INT(sink_get(&s, &s.gate_timeouts), 0);
    outq_destroy(&q);
    outbox_free(ob);
    sink_free(&s);
    free(written.buf), free(later.buf);
}

/* Regression: the 1008 close must not land inside a frame the socket took part of. The head frame
 * stays when the rest is dropped, and the peer receives it whole, then the close, nothing else. */
static void test_overflow_partial_head(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    enum outq_result r[3];
    uint64_t dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED), slow_before = metrics_get(M_SLOW_CONSUMERS);
    open_conn(&q, &s, 100, 1000); /* takes 100 of the first frame's 300 bytes, then is full */
    CHECK_EQ_INT(push_new(ob, &q, &e, 0, 296), OUTQ_QUEUED);
    CHECK_EQ_INT(e.len, 300);
    CHECK_EQ_INT(sink_len(&s), 100);
    for (int i = 0; i < 3; i++) r[i] = push_new(ob, &q, &e, i + 1, 296);
    CHECK(r[0] == OUTQ_QUEUED && r[1] == OUTQ_QUEUED && r[2] == OUTQ_OVERFLOW); /* 500, 800, 1100 */
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 2);
    CHECK_EQ_INT(metrics_get(M_SLOW_CONSUMERS) - slow_before, 1);
    e.len = 300; /* the first frame whole, then the close */
    expect_close(&e, 1008, "slow consumer: outbox full");
    CHECK_EQ_INT(outq_bytes(&q), e.len - 100);
    sink_room(&s, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    CHECK(sink_is(&s, &e));
    struct stream st = sink_stream(&s);
    CHECK(st.frames == 2 && st.torn == 0 && st.bad == 0);
    CHECK(st.closes == 1 && st.last_close == 1008);
    CHECK_EQ_INT(outq_bytes(&q), 0);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* An overflow while a write is in progress keeps the frames handed to that write (one of them already
 * cut), drops the rest, and the close 1008 follows them: the peer gets whole frames, then the close. */
static void test_overflow_during_write(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    enum outq_result r[3];
    uint64_t dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED);
    open_conn(&q, &s, 100, 1500);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(push_new(ob, &q, &e, i, 296), OUTQ_QUEUED);
    CHECK_EQ_INT(sink_len(&s), 100); /* the head frame is cut; 800 bytes queued */
    sink_gate(&s, 1);
    sink_room(&s, 200 + 150); /* when it is let go, the write ends the head and cuts the second */
    struct caller a = {ob, &q, NULL, -1, 0, 0}; /* the loop's flush, on the socket drained */
    call_start(&a);
    CHECK(sink_wait(&s, &s.inside, 1));
    for (int i = 0; i < 3; i++) r[i] = push_new(ob, &q, &e, 3 + i, 296);
    CHECK(r[0] == OUTQ_QUEUED && r[1] == OUTQ_QUEUED && r[2] == OUTQ_OVERFLOW); /* 1100, 1400, 1700 */
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 2); /* not those being written */
    CHECK_EQ_INT(sink_get(&s, &s.inside), 1);
    CHECK_EQ_INT(sink_get(&s, &s.writes), 4); /* three pushes and the held write */
    e.len = 900; /* the three frames handed to the write, then the close */
    expect_close(&e, 1008, "slow consumer: outbox full");
    CHECK_EQ_INT(outq_bytes(&q), e.len - 100);
    sink_gate(&s, 0);
    join_within(a.t);
    CHECK_EQ_INT(a.result, 0);
    CHECK_EQ_INT(sink_len(&s), 450);
    CHECK_EQ_INT(outq_bytes(&q), e.len - 450);
    sink_room(&s, -1);
    CHECK_EQ_INT(outbox_flush(ob, &q), 0);
    CHECK(sink_is(&s, &e));
    struct stream st = sink_stream(&s);
    CHECK(st.frames == 4 && st.torn == 0 && st.bad == 0);
    CHECK(st.closes == 1 && st.last_close == 1008);
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(sink_get(&s, &s.gate_timeouts), 0);
    outbox_peer_closed(ob, &q, 1008, NULL);
    CHECK(outbox_done(&q));
    CHECK_EQ_INT(sink_get(&s, &s.kicks), 1);
    close_conn(&q, &s);
    outbox_free(ob);
    free(e.buf);
}

/* A slot keeps a reply's place: frames before it go out, frames after it wait until it is filled,
 * then everything goes in order; a slot filled with nothing gives its place up; a close waits behind
 * a slot; a slot of a dropped queue is only released (under ASan: every frame freed once). */
static void test_slots(void) {
    struct outbox *ob = outbox_new(&mem_io);
    struct sink s;
    struct outq q;
    struct expect e = {0};
    open_conn(&q, &s, -1, 1 << 20);
    push_new(ob, &q, &e, 0, 10);
    struct frame *slot = outbox_reserve(ob, &q), *empty = outbox_reserve(ob, &q);
    CHECK(slot && empty);
    struct frame *later = numbered("later", 1, 10), *answer = numbered("answer", 1, 10);
    CHECK_EQ_INT(outbox_push(ob, &q, later), OUTQ_QUEUED);
    CHECK(sink_is(&s, &e)); /* only what came before the slot */
    outbox_fill(ob, &q, slot, answer);
    expect_add(&e, answer);
    CHECK(sink_is(&s, &e)); /* the answer; the empty slot still holds `later` */
    outbox_fill(ob, &q, empty, NULL);
    expect_add(&e, later);
    CHECK(sink_is(&s, &e));
    CHECK_EQ_INT(outq_bytes(&q), 0);
    /* a close queued behind a slot is written once the slot is filled */
    slot = outbox_reserve(ob, &q);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, "bye"), 1);
    CHECK(outbox_reserve(ob, &q) == NULL); /* closing: no new place */
    CHECK(sink_is(&s, &e));
    outbox_fill(ob, &q, slot, answer);
    expect_add(&e, answer);
    CHECK(sink_len(&s) > e.len); /* the answer, then the close frame */
    CHECK_EQ_INT(memcmp(s.buf, e.buf, e.len), 0);
    close_conn(&q, &s);
    /* a queue dropped with its slot: filling it later only releases it */
    open_conn(&q, &s, -1, 1 << 20);
    slot = outbox_reserve(ob, &q);
    outbox_detach(&q);
    outbox_fill(ob, &q, slot, answer);
    CHECK_EQ_INT(s.writes, 0);
    outq_destroy(&q);
    sink_free(&s);
    frame_unref(later);
    frame_unref(answer);
    outbox_free(ob);
    free(e.buf);
}

int main(void) {
    test_order();
    test_slots();
    test_partial_writes();
    test_full_sink_isolated();
    test_batch();
    test_batch_full();
    test_shared_frames();
    test_overflow();
    test_close_after_queued();
    test_we_close_first();
    test_peer_closes_first();
    test_broken();
    test_expire();
    test_detach();
    test_detach_waits_for_batch();
    test_message_count();
    test_loop_writes();
    test_push_during_write();
    test_detach_during_write();
    test_overflow_partial_head();
    test_overflow_during_write();
    return check_done();
}

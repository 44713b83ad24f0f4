/* test_outbox: per-connection send queues and the writer pool (app/outbox.c).
 *
 * The outbox is what keeps one client that stops reading from stalling everyone else, what closes it
 * 1008 when its queue passes --outbox, and what ends a connection whose peer never answers our close
 * frame (outbox_expire). The sink here is memory: io->write appends to a buffer under a mutex, and can
 * be made to block (a gate the test opens) or to fail, which stands in for a peer that does not read
 * or a broken socket. Waits are bounded (5 s) and nothing asserts on timing: expiry is driven with
 * explicit clock values. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "metrics.h"
#include "outbox.h"

#define WAIT_MS 5000

struct sink {
    pthread_mutex_t lock;
    uint8_t *buf;
    size_t len, cap;
    int writes, closes;
    int gate_closed; /* writes wait here until the test opens it */
    int blocked;     /* a write is waiting at the gate */
    int fail;        /* writes fail (a broken socket) */
    pthread_cond_t gate;
};

static void sink_init(struct sink *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->gate, NULL);
}

static void sink_free(struct sink *s) {
    free(s->buf);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->gate);
}

static int mem_write(void *arg, const void *buf, size_t len) {
    struct sink *s = arg;
    pthread_mutex_lock(&s->lock);
    s->writes++;
    while (s->gate_closed) {
        s->blocked = 1;
        pthread_cond_wait(&s->gate, &s->lock);
    }
    s->blocked = 0;
    int rc = s->fail ? -1 : 0;
    if (!s->fail) {
        if (s->len + len > s->cap) {
            s->cap = (s->len + len) * 2;
            s->buf = realloc(s->buf, s->cap);
        }
        memcpy(s->buf + s->len, buf, len);
        s->len += len;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void mem_close(void *arg) {
    struct sink *s = arg;
    pthread_mutex_lock(&s->lock);
    s->closes++;
    pthread_mutex_unlock(&s->lock);
}

static const struct outbox_io mem_io = {mem_write, mem_close};

static void gate(struct sink *s, int closed) {
    pthread_mutex_lock(&s->lock);
    s->gate_closed = closed;
    pthread_cond_broadcast(&s->gate);
    pthread_mutex_unlock(&s->lock);
}

/* Reads one int field of the sink under its lock. */
static int sink_get(struct sink *s, const int *field) {
    pthread_mutex_lock(&s->lock);
    int v = *field;
    pthread_mutex_unlock(&s->lock);
    return v;
}

static size_t sink_len(struct sink *s) {
    pthread_mutex_lock(&s->lock);
    size_t n = s->len;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls until *field reaches want, up to WAIT_MS. Returns 1 if it did. */
static int wait_field(struct sink *s, const int *field, int want) {
    for (int waited = 0; waited < WAIT_MS; waited++) {
        if (sink_get(s, field) >= want) return 1;
        sleep_ms(1);
    }
    return 0;
}

static int wait_len(struct sink *s, size_t want) {
    for (int waited = 0; waited < WAIT_MS; waited++) {
        if (sink_len(s) >= want) return 1;
        sleep_ms(1);
    }
    return 0;
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

/* Appends f's bytes to an expected-output buffer. */
static void expect_append(uint8_t **buf, size_t *len, const struct frame *f) {
    *buf = realloc(*buf, *len + f->len);
    memcpy(*buf + *len, f->bytes, f->len);
    *len += f->len;
}

/* The sink holds exactly `want` bytes. */
static int sink_equals(struct sink *s, const uint8_t *want, size_t len) {
    pthread_mutex_lock(&s->lock);
    int same = s->len == len && (len == 0 || memcmp(s->buf, want, len) == 0);
    pthread_mutex_unlock(&s->lock);
    return same;
}

/* The bytes at `off` in the sink are a close frame with `code`; and nothing follows it. */
static int close_frame_at(struct sink *s, size_t off, unsigned code) {
    pthread_mutex_lock(&s->lock);
    const uint8_t *b = s->buf + off;
    int ok = s->len >= off + 4 && b[0] == 0x88 && b[1] >= 2 && b[1] <= 125 && s->len == off + 2 + b[1] &&
             ((unsigned)b[2] << 8 | b[3]) == code;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static void finish(struct outq *q) {
    outbox_detach(q);
    outq_destroy(q);
}

static void test_order(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    uint8_t *want = NULL;
    size_t want_len = 0;
    int queued = 0;
    sink_init(&s);
    outq_init(&q, &s, 1 << 22);
    for (int i = 0; i < 300; i++) {
        /* mostly small frames, some larger than the 64 KiB write coalescing buffer */
        struct frame *f = numbered("m", i, i % 50 == 7 ? 100000 : (size_t)(i % 40));
        expect_append(&want, &want_len, f);
        queued += outbox_push(ob, &q, f) == OUTQ_QUEUED;
        frame_unref(f);
    }
    CHECK_EQ_INT(queued, 300);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(sink_equals(&s, want, want_len));
    CHECK_EQ_INT(outq_bytes(&q), 0);
    CHECK_EQ_INT(s.closes, 0);
    CHECK(!outq_closing(&q));
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
    free(want);
}

static void test_overflow(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    uint64_t slow_before = metrics_get(M_SLOW_CONSUMERS), dropped_before = metrics_get(M_OUTBOX_FRAMES_DROPPED);
    sink_init(&s);
    outq_init(&q, &s, 1024);
    gate(&s, 1);
    struct frame *first = numbered("first", 0, 296); /* 300 bytes with its header */
    CHECK_EQ_INT(outbox_push(ob, &q, first), OUTQ_QUEUED);
    CHECK(wait_field(&s, &s.blocked, 1)); /* a writer holds it, stuck in write */
    enum outq_result r[4];
    for (int i = 0; i < 4; i++) {
        struct frame *f = numbered("more", i, 296);
        r[i] = outbox_push(ob, &q, f);
        frame_unref(f);
    }
    CHECK(r[0] == OUTQ_QUEUED && r[1] == OUTQ_QUEUED && r[2] == OUTQ_QUEUED); /* 900 bytes queued */
    CHECK_EQ_INT(r[3], OUTQ_OVERFLOW);                                      /* 1200 > 1024 */
    CHECK_EQ_INT(outbox_push(ob, &q, first), OUTQ_CLOSED);
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(metrics_get(M_SLOW_CONSUMERS) - slow_before, 1);
    CHECK_EQ_INT(metrics_get(M_OUTBOX_FRAMES_DROPPED) - dropped_before, 3);
    gate(&s, 0);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    /* the frame already taken, then the 1008 close; the queued three were dropped, never to be read */
    CHECK(sink_len(&s) > first->len && memcmp(s.buf, first->bytes, first->len) == 0);
    CHECK(close_frame_at(&s, first->len, 1008));
    CHECK_EQ_INT(q.close_code, 1008);
    CHECK(q.close_sent_ms > 0);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0); /* the peer's answer, or outbox_expire, ends it */
    frame_unref(first);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
}

static void test_close_last(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    uint8_t *want = NULL;
    size_t want_len = 0;
    sink_init(&s);
    outq_init(&q, &s, 1 << 20);
    for (int i = 0; i < 3; i++) {
        struct frame *f = numbered("m", i, 10);
        expect_append(&want, &want_len, f);
        outbox_push(ob, &q, f);
        frame_unref(f);
    }
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, "bye"), 1);
    CHECK_EQ_INT(outbox_close(ob, &q, 1001, "again"), 0); /* only the first close counts */
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(sink_len(&s) == want_len + 7 && memcmp(s.buf, want, want_len) == 0);
    CHECK(close_frame_at(&s, want_len, 1000));
    CHECK(s.len == want_len + 7 && memcmp(s.buf + want_len + 4, "bye", 3) == 0);
    struct frame *late = numbered("late", 0, 4);
    CHECK_EQ_INT(outbox_push(ob, &q, late), OUTQ_CLOSED);
    frame_unref(late);
    CHECK_EQ_INT(q.close_code, 1000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
    free(want);
}

/* A close while a writer is busy goes after everything already queued: nothing is dropped. */
static void test_close_after_queued(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    sink_init(&s);
    outq_init(&q, &s, 1 << 20);
    gate(&s, 1);
    uint8_t *want = NULL;
    size_t want_len = 0;
    struct frame *taken = numbered("taken", 0, 20);
    expect_append(&want, &want_len, taken);
    outbox_push(ob, &q, taken);
    CHECK(wait_field(&s, &s.blocked, 1));
    CHECK_EQ_INT(outbox_wait_idle(&q, 20), 0); /* the writer is stuck: not idle */
    for (int i = 0; i < 5; i++) {
        struct frame *f = numbered("queued", i, 20);
        expect_append(&want, &want_len, f);
        outbox_push(ob, &q, f);
        frame_unref(f);
    }
    CHECK_EQ_INT(outbox_close(ob, &q, 1001, "going away"), 1);
    gate(&s, 0);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(sink_len(&s) > want_len && memcmp(s.buf, want, want_len) == 0);
    CHECK(close_frame_at(&s, want_len, 1001));
    frame_unref(taken);
    free(want);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
}

static void *detach_thread(void *arg) {
    outbox_detach(arg);
    return NULL;
}

/* Detach waits for the writer to let go; after it nothing touches the sink, not even io->close. */
static void test_detach(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    pthread_t t;
    sink_init(&s);
    outq_init(&q, &s, 1 << 20);
    gate(&s, 1);
    struct frame *taken = numbered("taken", 0, 20), *later = numbered("later", 0, 20);
    outbox_push(ob, &q, taken);
    CHECK(wait_field(&s, &s.blocked, 1));
    outbox_push(ob, &q, later);
    pthread_create(&t, NULL, detach_thread, &q);
    sleep_ms(20); /* let it start waiting; correctness does not depend on it */
    gate(&s, 0);
    pthread_join(t, NULL);
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(outbox_push(ob, &q, later), OUTQ_CLOSED);
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 0);
    CHECK(sink_equals(&s, taken->bytes, taken->len)); /* `later` was dropped */
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    outq_destroy(&q);
    outbox_stop(ob);
    frame_unref(taken);
    frame_unref(later);
    sink_free(&s);
}

/* Our close frame is out: the peer has grace_ms to answer before outbox_expire ends the connection,
 * once. Clock values are explicit, relative to when the close frame was written. */
static void test_expire(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s, t;
    struct outq q, quiet, gone;
    sink_init(&s), sink_init(&t);
    outq_init(&q, &s, 1 << 20);
    outq_init(&quiet, &t, 1 << 20);
    outq_init(&gone, &t, 1 << 20);
    outbox_expire(ob, &quiet, INT64_MAX / 2, 0); /* never closed: nothing to expire */
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 1);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(close_frame_at(&s, 0, 1000));
    int64_t sent = q.close_sent_ms;
    CHECK(sent > 0);
    outbox_expire(ob, &q, sent + 1999, 2000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    outbox_expire(ob, &q, sent + 2000, 2000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 1);
    outbox_expire(ob, &q, sent + 99000, 2000); /* ended once */
    CHECK_EQ_INT(sink_get(&s, &s.closes), 1);
    /* a detached queue's sink is never touched again, expiry included */
    CHECK_EQ_INT(outbox_close(ob, &gone, 1001, NULL), 1);
    CHECK(outbox_wait_idle(&gone, WAIT_MS));
    outbox_detach(&gone);
    outbox_expire(ob, &gone, INT64_MAX / 2, 0);
    CHECK_EQ_INT(sink_get(&t, &t.closes), 0);
    outq_destroy(&gone);
    finish(&quiet);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s), sink_free(&t);
}

/* A close frame not yet written (the writer is stuck on the peer) has nothing to expire from. */
static void test_expire_unsent(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    sink_init(&s);
    outq_init(&q, &s, 1 << 20);
    gate(&s, 1);
    struct frame *f = numbered("x", 0, 8);
    outbox_push(ob, &q, f);
    frame_unref(f);
    CHECK(wait_field(&s, &s.blocked, 1));
    outbox_close(ob, &q, 1000, NULL);
    outbox_expire(ob, &q, INT64_MAX / 2, 0);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    gate(&s, 0);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(q.close_sent_ms > 0);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
}

/* A failing write refuses further frames, and outbox_expire ends the connection once, grace_ms
 * after the failure (io->close is never called from a writer). */
static void test_broken_sink(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    sink_init(&s);
    s.fail = 1;
    outq_init(&q, &s, 1 << 20);
    struct frame *f = numbered("x", 0, 8);
    CHECK_EQ_INT(outbox_push(ob, &q, f), OUTQ_QUEUED);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK(outq_closing(&q));
    CHECK_EQ_INT(outbox_push(ob, &q, f), OUTQ_CLOSED);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    int64_t broke = q.close_sent_ms;
    CHECK(broke > 0);
    outbox_expire(ob, &q, broke + 1999, 2000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 0);
    outbox_expire(ob, &q, broke + 2000, 2000);
    outbox_expire(ob, &q, broke + 9000, 2000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 1);
    frame_unref(f);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
}

/* The socket breaks while our close frame is queued behind the write in progress: nothing more is
 * written to the broken sink, and outbox_expire ends the connection once. */
static void test_broken_while_closing(void) {
    struct outbox *ob = outbox_start(&mem_io, 2, 8);
    struct sink s;
    struct outq q;
    sink_init(&s);
    outq_init(&q, &s, 1 << 20);
    gate(&s, 1);
    struct frame *f = numbered("x", 0, 8);
    outbox_push(ob, &q, f);
    CHECK(wait_field(&s, &s.blocked, 1));
    CHECK_EQ_INT(outbox_close(ob, &q, 1000, NULL), 1);
    pthread_mutex_lock(&s.lock);
    s.fail = 1;
    pthread_mutex_unlock(&s.lock);
    gate(&s, 0);
    CHECK(outbox_wait_idle(&q, WAIT_MS));
    CHECK_EQ_INT(sink_get(&s, &s.writes), 1);
    CHECK(q.close_sent_ms > 0);
    outbox_expire(ob, &q, q.close_sent_ms + 2000, 2000);
    outbox_expire(ob, &q, q.close_sent_ms + 9000, 2000);
    CHECK_EQ_INT(sink_get(&s, &s.closes), 1);
    frame_unref(f);
    finish(&q);
    outbox_stop(ob);
    sink_free(&s);
}

/* One peer not reading must not hold up another's frames. */
static void test_stuck_sink_isolated(void) {
    struct outbox *ob = outbox_start(&mem_io, 1, 4);
    struct sink stuck, fine;
    struct outq qs, qf;
    uint8_t *want = NULL;
    size_t want_len = 0;
    sink_init(&stuck);
    sink_init(&fine);
    outq_init(&qs, &stuck, 1 << 20);
    outq_init(&qf, &fine, 1 << 20);
    gate(&stuck, 1);
    struct frame *f = numbered("stuck", 0, 16);
    outbox_push(ob, &qs, f);
    frame_unref(f);
    CHECK(wait_field(&stuck, &stuck.blocked, 1));
    for (int i = 0; i < 20; i++) {
        f = numbered("fine", i, 16);
        expect_append(&want, &want_len, f);
        outbox_push(ob, &qf, f);
        frame_unref(f);
    }
    CHECK(wait_len(&fine, want_len));
    CHECK(sink_equals(&fine, want, want_len));
    CHECK_EQ_INT(sink_get(&stuck, &stuck.blocked), 1); /* all of it while the other is still stuck */
    CHECK(outbox_threads(ob) >= 2);
    gate(&stuck, 0);
    CHECK(outbox_wait_idle(&qs, WAIT_MS));
    CHECK_EQ_INT(sink_len(&stuck), 18);
    finish(&qs);
    finish(&qf);
    outbox_stop(ob);
    sink_free(&stuck);
    sink_free(&fine);
    free(want);
}

/* Many queues, each with its own frames in order, written concurrently by the pool. */
static void test_many_queues(void) {
    enum { NQ = 16, PER = 50 };
    struct outbox *ob = outbox_start(&mem_io, 3, 8);
    static struct sink s[NQ];
    static struct outq q[NQ];
    for (int i = 0; i < NQ; i++) {
        sink_init(&s[i]);
        outq_init(&q[i], &s[i], 1 << 20);
    }
    struct frame *frames[PER];
    for (int k = 0; k < PER; k++) frames[k] = numbered("f", k, (size_t)k);
    for (int k = 0; k < PER; k++)
        for (int i = 0; i < NQ; i++) outbox_push(ob, &q[i], frames[k]); /* one frame, shared */
    uint8_t *want = NULL;
    size_t want_len = 0;
    for (int k = 0; k < PER; k++) expect_append(&want, &want_len, frames[k]);
    int wrong = 0;
    for (int i = 0; i < NQ; i++) {
        wrong += !outbox_wait_idle(&q[i], WAIT_MS) || !sink_equals(&s[i], want, want_len);
        finish(&q[i]);
        sink_free(&s[i]);
    }
    CHECK_EQ_INT(wrong, 0);
    outbox_stop(ob); /* writers release a batch's references just after letting go of the queue */
    for (int k = 0; k < PER; k++) CHECK_EQ_INT(frames[k]->refs, 1); /* only ours is left */
    for (int k = 0; k < PER; k++) frame_unref(frames[k]);
    free(want);
}

int main(void) {
    test_order();
    test_overflow();
    test_close_last();
    test_close_after_queued();
    test_expire();
    test_expire_unsent();
    test_detach();
    test_broken_sink();
    test_broken_while_closing();
    test_stuck_sink_isolated();
    test_many_queues();
    return check_done();
}

/* test_history: each stream's epoch, offsets and bounded history (app/hub/history.c).
 *
 * Recovery is all or nothing: a client asking from a position gets every later message, in order,
 * or "not recovered"; never a hole. Checked here against each way history is lost: the ring's size,
 * the TTL, the memory cap and a stream freed when idle (which gives its key a new epoch), and from
 * several threads at once (offsets unique and in order per stream; run under TSan). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "history.h"

static struct frame *msg(int i) {
    char s[32];
    int n = snprintf(s, sizeof s, "m%d", i);
    return frame_new(WS_OP_TEXT, s, (size_t)n);
}

/* Appends message i to key at time t; returns its offset, the position in *pos. */
static uint64_t add(struct history *hs, const char *key, int i, int64_t t, struct hist_pos *pos) {
    struct frame *f = msg(i);
    struct hist_stream *s = history_append(hs, key, f, t, pos);
    CHECK(s != NULL);
    if (s) history_unlock(s);
    frame_unref(f);
    return pos->offset;
}

/* The payload of replay frame k is "m<i>". */
static int replay_is(const struct hist_replay *r, size_t k, int i) {
    size_t len;
    const uint8_t *p = frame_payload(r->frames[k], &len);
    char want[32];
    int n = snprintf(want, sizeof want, "m%d", i);
    return len == (size_t)n && memcmp(p, want, len) == 0;
}

static int never(void *arg, const char *key) { return 0; }
static int always(void *arg, const char *key) { return 1; }

static void test_offsets_and_replay(void) {
    struct history_options o = {100, 60000, 1 << 20};
    struct history *hs = history_new(&o);
    struct hist_pos p, first, now;
    struct hist_replay r;
    CHECK(history_new(&(struct history_options){0, 1000, 1000}) == NULL); /* size 0: off */
    CHECK_EQ_INT(add(hs, "u:alice", 1, 0, &first), 1);
    for (int i = 2; i <= 5; i++) CHECK_EQ_INT(add(hs, "u:alice", i, 0, &p), i);
    CHECK_EQ_STR(p.epoch, first.epoch);
    CHECK_EQ_INT(strlen(p.epoch), HIST_EPOCH_LEN);
    CHECK_EQ_INT(add(hs, "u:bob", 1, 0, &p), 1); /* each stream counts its own */
    CHECK(strcmp(p.epoch, first.epoch) != 0);     /* and has its own epoch */
    /* from offset 2: messages 3, 4, 5 in order */
    struct hist_pos since = first;
    since.offset = 2;
    CHECK_EQ_INT(history_resume(hs, "u:alice", &since, 0, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(now.offset, 5);
    CHECK_EQ_INT(r.n, 3);
    CHECK_EQ_INT(r.first, 3);
    CHECK_EQ_STR(r.epoch, first.epoch);
    if (r.n == 3) CHECK(replay_is(&r, 0, 3) && replay_is(&r, 1, 4) && replay_is(&r, 2, 5));
    history_replay_free(&r);
    /* from the top: recovered, nothing to send */
    since.offset = 5;
    CHECK_EQ_INT(history_resume(hs, "u:alice", &since, 0, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(r.n, 0);
    /* past the top, or another epoch: not recovered, nothing sent */
    since.offset = 6;
    CHECK_EQ_INT(history_resume(hs, "u:alice", &since, 0, &now, &r), HIST_NOT_RECOVERED);
    CHECK_EQ_INT(r.n, 0);
    since.offset = 0;
    memcpy(since.epoch, "AAAAAAAA", HIST_EPOCH_LEN + 1);
    CHECK_EQ_INT(history_resume(hs, "u:alice", &since, 0, &now, &r), HIST_NOT_RECOVERED);
    /* no since: the position only; an unknown stream is created at offset 0 */
    CHECK_EQ_INT(history_resume(hs, "r:lobby", NULL, 0, &now, &r), HIST_FRESH);
    CHECK_EQ_INT(now.offset, 0);
    struct history_stats st;
    history_stats(hs, &st);
    CHECK_EQ_INT(st.streams, 3);
    CHECK_EQ_INT(st.messages, 6);
    history_free(hs);
}

static void test_ring_size(void) {
    struct history *hs = history_new(&(struct history_options){3, 60000, 1 << 20});
    struct hist_pos p, since, now;
    struct hist_replay r;
    for (int i = 1; i <= 5; i++) add(hs, "b", i, 0, &p);
    since = p;
    since.offset = 1; /* needs 2..5; 3..5 are kept */
    CHECK_EQ_INT(history_resume(hs, "b", &since, 0, &now, &r), HIST_NOT_RECOVERED);
    CHECK_EQ_INT(r.n, 0);
    since.offset = 2;
    CHECK_EQ_INT(history_resume(hs, "b", &since, 0, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(r.n, 3);
    if (r.n == 3) CHECK(replay_is(&r, 0, 3) && replay_is(&r, 2, 5));
    history_replay_free(&r);
    struct history_stats st;
    history_stats(hs, &st);
    CHECK_EQ_INT(st.messages, 3);
    history_free(hs);
}

/* A ring starts small and doubles as messages come, up to --history-size: the order survives each
 * growth and the bound is still exact. */
static void test_ring_growth(void) {
    struct history *hs = history_new(&(struct history_options){10, 60000, 1 << 20});
    struct hist_pos p, since, now;
    struct hist_replay r;
    struct history_stats before, after;
    add(hs, "r:grow", 1, 0, &p);
    history_stats(hs, &before);
    for (int i = 2; i <= 25; i++) add(hs, "r:grow", i, 0, &p);
    history_stats(hs, &after);
    CHECK(after.bytes > before.bytes); /* the grown ring counts against the cap */
    CHECK_EQ_INT(after.messages, 10);
    since = p;
    since.offset = 15;
    CHECK_EQ_INT(history_resume(hs, "r:grow", &since, 0, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(r.n, 10);
    int ok = r.n == 10;
    for (size_t k = 0; ok && k < r.n; k++) ok = replay_is(&r, k, 16 + (int)k);
    CHECK(ok);
    history_replay_free(&r);
    since.offset = 14;
    CHECK_EQ_INT(history_resume(hs, "r:grow", &since, 0, &now, &r), HIST_NOT_RECOVERED);
    history_free(hs);
}

static void test_ttl_and_epochs(void) {
    struct history *hs = history_new(&(struct history_options){100, 1000, 1 << 20});
    struct hist_pos p1, p2, since, now;
    struct hist_replay r;
    add(hs, "u:a", 1, 0, &p1);
    add(hs, "u:a", 2, 500, &p2);
    since = p1;
    since.offset = 0; /* message 1 is past its TTL at 1200 */
    CHECK_EQ_INT(history_resume(hs, "u:a", &since, 1200, &now, &r), HIST_NOT_RECOVERED);
    since.offset = 1;
    CHECK_EQ_INT(history_resume(hs, "u:a", &since, 1200, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(r.n, 1);
    history_replay_free(&r);
    /* a subscriber keeps the stream (its position) past the TTL, its messages expire */
    history_tick(hs, 3000, always, NULL);
    since.offset = 2;
    CHECK_EQ_INT(history_resume(hs, "u:a", &since, 3000, &now, &r), HIST_RECOVERED);
    CHECK_EQ_STR(now.epoch, p1.epoch);
    since.offset = 1;
    CHECK_EQ_INT(history_resume(hs, "u:a", &since, 3000, &now, &r), HIST_NOT_RECOVERED);
    struct history_stats st;
    history_stats(hs, &st);
    CHECK_EQ_INT(st.messages, 0);
    /* idle and unsubscribed for a TTL: freed, costs nothing; the key starts again under a new epoch */
    history_tick(hs, 5000, never, NULL);
    history_stats(hs, &st);
    CHECK_EQ_INT(st.streams, 0);
    CHECK_EQ_INT(st.bytes, 0);
    CHECK_EQ_INT(add(hs, "u:a", 3, 5100, &p2), 1);
    CHECK(strcmp(p2.epoch, p1.epoch) != 0);
    since = p1;
    since.offset = 2; /* the old epoch's client: told it cannot be recovered */
    CHECK_EQ_INT(history_resume(hs, "u:a", &since, 5100, &now, &r), HIST_NOT_RECOVERED);
    /* a stream touched within the TTL stays */
    history_tick(hs, 5500, never, NULL);
    history_stats(hs, &st);
    CHECK_EQ_INT(st.streams, 1);
    history_free(hs);
}

static void test_memory_cap(void) {
    struct history *hs = history_new(&(struct history_options){100, 60000, 1 << 20});
    struct history_stats st;
    history_stats(hs, &st);
    history_free(hs);
    /* room for two streams' fixed cost and a few messages */
    struct hist_pos pa, pb, since, now;
    struct hist_replay r;
    char big[2000];
    memset(big, 'x', sizeof big);
    hs = history_new(&(struct history_options){100, 60000, 2 * 1700 + 3 * 2010});
    for (int i = 0; i < 3; i++) {
        struct frame *f = frame_new(WS_OP_TEXT, big, sizeof big);
        history_unlock(history_append(hs, "u:old", f, i, &pa));
        frame_unref(f);
    }
    for (int i = 0; i < 2; i++) {
        struct frame *f = frame_new(WS_OP_TEXT, big, sizeof big);
        history_unlock(history_append(hs, "u:new", f, 10 + i, &pb));
        frame_unref(f);
    }
    history_stats(hs, &st);
    CHECK(st.bytes <= 2 * 1700 + 3 * 2010);
    /* the oldest stream lost its messages, not its position: asking from before says so */
    since = pa;
    since.offset = 0;
    CHECK_EQ_INT(history_resume(hs, "u:old", &since, 20, &now, &r), HIST_NOT_RECOVERED);
    CHECK_EQ_INT(now.offset, 3);
    CHECK_EQ_STR(now.epoch, pa.epoch);
    since = pb;
    since.offset = 0; /* the newest kept both */
    CHECK_EQ_INT(history_resume(hs, "u:new", &since, 20, &now, &r), HIST_RECOVERED);
    CHECK_EQ_INT(r.n, 2);
    history_replay_free(&r);
    history_free(hs);
}

/* Several threads append to two streams; each records the offsets it got while holding the stream,
 * in the order it delivered them: per stream they must come out 1, 2, 3, ... */
#define THREADS 4
#define PER_THREAD 2000
static struct history *shared;
static uint64_t order[2][THREADS * PER_THREAD];
static size_t norder[2];

static void *appender(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int k = (int)((id + i) % 2);
        struct hist_pos p;
        struct frame *f = msg(i);
        struct hist_stream *s = history_append(shared, k ? "r:one" : "r:two", f, i, &p);
        order[k][norder[k]++] = p.offset; /* under the stream's lock, as a delivery is */
        history_unlock(s);
        frame_unref(f);
        if (i % 100 == 0) {
            struct history_stats st;
            history_stats(shared, &st);
        }
    }
    return NULL;
}

static void test_threads(void) {
    shared = history_new(&(struct history_options){50, 60000, 1 << 16}); /* small: trims run too */
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, appender, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(norder[0] + norder[1], THREADS * PER_THREAD);
    for (int k = 0; k < 2; k++) {
        int ok = 1;
        for (size_t i = 0; i < norder[k]; i++) ok &= order[k][i] == i + 1;
        CHECK(ok);
    }
    history_free(shared);
}

int main(void) {
    test_offsets_and_replay();
    test_ring_size();
    test_ring_growth();
    test_ttl_and_epochs();
    test_memory_cap();
    test_threads();
    return check_done();
}

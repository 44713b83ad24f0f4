/* test_hubsync: a protocol 2 connection's gates while history lives in Redis (app/hub/hubsync.c), with a
 * fake engine that records each read and answers only when the test says.
 *
 * The welcome (and a join's `joined`) waits for the read, and what the connection was sent meanwhile
 * waits behind it; the answer's replay comes right after it, in order. Live messages of a stream are
 * left out while its read is out; one past the read's position makes another read, so every offset
 * arrives once; once open, an offset already delivered is dropped, and a jump is read like a recovery
 * (not held any more: the connection is closed 1013). Redis down: the positions are unknown ("" and
 * 0, recovered false) and nothing waits. An answer for a connection that went is dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hubremote.h"
#include "peer.h"

#define ASKS_MAX 8

static struct {
    char conn[HUB_ID_MAX];
    struct hub_stream_want w[HUB_WANTS_MAX];
    size_t n;
} asks[ASKS_MAX];
static size_t nasks;
static int down;

static long no_send(void *ctx, const char *user, const struct frame *f, int *echo) { return 0; }
static long no_broadcast(void *ctx, const struct frame *f, const char *except, int *echo) { return 0; }
static long no_publish(void *ctx, const char *room, const struct frame *f, const char *except, int *echo) { return 0; }
static void no_local(void *ctx, const char *name, int up) {}
static int is_up(void *ctx) { return !down; }
static void no_gauges(void *ctx, struct metrics_gauges *g) {}

static int read_streams(void *ctx, const char *conn_id, const struct hub_stream_want *w, size_t n) {
    if (down || nasks == ASKS_MAX) return -1;
    snprintf(asks[nasks].conn, sizeof asks[nasks].conn, "%s", conn_id);
    memcpy(asks[nasks].w, w, n * sizeof *w);
    asks[nasks++].n = n;
    return 0;
}

static const struct hub_engine engine = {.send_user = no_send, .broadcast = no_broadcast, .publish = no_publish,
                                         .user_local = no_local, .room_local = no_local, .redis_up = is_up,
                                         .gauges = no_gauges, .first_id = 1, .read_streams = read_streams};

static void start(struct world *w) {
    world_start(w, 0);
    hub_set_engine(w->hub, &engine);
    nasks = 0;
    down = 0;
}

/* A protocol 2 connection of `user` recovering its user's stream from (epoch, offset) (epoch NULL: no). */
static void open_v2(struct world *w, struct peer *p, const char *user, const char *epoch, uint64_t offset) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(w->hub, &p->c, user, 0, p, PEER_OUTBOX);
    p->c.positions = 1;
    if (epoch) {
        p->c.since.has_user = 1;
        snprintf(p->c.since.user.epoch, sizeof p->c.since.user.epoch, "%s", epoch);
        p->c.since.user.offset = offset;
    }
    CHECK(hub_add(w->hub, &p->c) == HUB_OK);
}

static const char *data_text(int i) {
    static char t[128];
    snprintf(t, sizeof t, "{\"type\":\"message\",\"from\":\"bob\",\"to\":\"alice\",\"data\":%d}", i);
    return t;
}

static const char *stamped(const char *epoch, int i) {
    static char t[160];
    snprintf(t, sizeof t, "{\"type\":\"message\",\"epoch\":\"%s\",\"offset\":%d,\"from\":\"bob\",\"to\":\"alice\",\"data\":%d}",
             epoch, i, i);
    return t;
}

/* Message i of alice's stream, live from Redis at offset i. */
static void live(struct world *w, const char *epoch, int i) {
    struct hist_pos pos = {.offset = (uint64_t)i};
    snprintf(pos.epoch, sizeof pos.epoch, "%s", epoch);
    struct frame *f = text(data_text(i));
    hub_deliver_local_user_at(w->hub, "alice", f, &pos, NULL);
    frame_unref(f);
}

/* Answers ask k's stream 0 with r at (epoch, top) and, when recovered, messages from..top; a second
 * stream (a welcome's broadcast) is answered fresh at ("BBBBBBBB", 0). */
static void answer(struct world *w, size_t k, enum hist_resume r, const char *epoch, int top, int from) {
    struct hub_stream_got g[HUB_WANTS_MAX] = {{.r = r, .now.offset = (uint64_t)top}, {.r = HIST_FRESH}};
    snprintf(g[0].now.epoch, sizeof g[0].now.epoch, "%s", epoch);
    snprintf(g[1].now.epoch, sizeof g[1].now.epoch, "BBBBBBBB");
    if (r == HIST_RECOVERED && top >= from) {
        g[0].replay.n = (size_t)(top - from + 1);
        g[0].replay.first = (uint64_t)from;
        memcpy(g[0].replay.epoch, g[0].now.epoch, sizeof g[0].replay.epoch);
        g[0].replay.frames = calloc(g[0].replay.n, sizeof *g[0].replay.frames);
        for (int i = from; i <= top; i++) g[0].replay.frames[i - from] = text(data_text(i));
    }
    hub_streams_read(w->hub, asks[k].conn, asks[k].w, g, asks[k].n);
}

/* The next frame p got contains `part`. */
static int next_has(struct peer *p, const char *part) {
    int op;
    char *got = NULL;
    size_t len;
    int yes = peer_next(p, &op, &got, &len) && strstr(got, part) != NULL;
    if (!yes) fprintf(stderr, "  wanted %s, got %s\n", part, got ? got : "(nothing)");
    free(got);
    return yes;
}

static void test_welcome_recovers_and_live_adds_up(void) {
    struct world w;
    struct peer a;
    start(&w);
    open_v2(&w, &a, "alice", "EEEEEEEE", 2);
    EXPECT_NONE(&a); /* the welcome waits for Redis */
    CHECK_EQ_INT((long long)nasks, 1);
    CHECK_EQ_INT((long long)asks[0].n, 2);
    CHECK(asks[0].w[0].kind == 'u' && strcmp(asks[0].w[0].name, "alice") == 0 && asks[0].w[0].has_since);
    CHECK_EQ_INT((long long)asks[0].w[0].since.offset, 2);
    CHECK(asks[0].w[1].kind == 'b' && !asks[0].w[1].has_since);
    live(&w, "EEEEEEEE", 5); /* published after the read: left out, read again */
    EXPECT_NONE(&a);
    answer(&w, 0, HIST_RECOVERED, "EEEEEEEE", 4, 3);
    CHECK(next_has(&a, "\"streams\":{\"user\":{\"epoch\":\"EEEEEEEE\",\"offset\":4,\"recovered\":true},"
                       "\"broadcast\":{\"epoch\":\"BBBBBBBB\",\"offset\":0}}"));
    EXPECT(&a, stamped("EEEEEEEE", 3));
    EXPECT(&a, stamped("EEEEEEEE", 4));
    EXPECT_NONE(&a);
    CHECK_EQ_INT((long long)nasks, 2); /* 5 was left out: read from 4 */
    CHECK(asks[1].n == 1 && asks[1].w[0].has_since && asks[1].w[0].since.offset == 4);
    live(&w, "EEEEEEEE", 6);
    answer(&w, 1, HIST_RECOVERED, "EEEEEEEE", 6, 5);
    EXPECT(&a, stamped("EEEEEEEE", 5));
    EXPECT(&a, stamped("EEEEEEEE", 6));
    live(&w, "EEEEEEEE", 6); /* read already: not twice */
    live(&w, "EEEEEEEE", 7);
    EXPECT(&a, stamped("EEEEEEEE", 7));
    EXPECT_NONE(&a);
    CHECK_EQ_INT((long long)nasks, 2);
    /* a hole (8 never came): read; history no longer has it: closed, never a silent hole */
    live(&w, "EEEEEEEE", 9);
    EXPECT_NONE(&a);
    CHECK(nasks == 3 && asks[2].w[0].since.offset == 7);
    answer(&w, 2, HIST_NOT_RECOVERED, "EEEEEEEE", 9, 0);
    EXPECT_CLOSE(&a, 1013);
    peer_close(&w, &a, 1);
    world_stop(&w);
}

static void test_join_waits_for_its_read(void) {
    struct world w;
    struct peer a;
    start(&w);
    open_v2(&w, &a, "alice", NULL, 0);
    answer(&w, 0, HIST_FRESH, "EEEEEEEE", 0, 0);
    CHECK(next_has(&a, "\"streams\":{\"user\":{\"epoch\":\"EEEEEEEE\",\"offset\":0},"));
    struct hist_pos since = {.epoch = "RRRRRRRR", .offset = 1};
    CHECK(hub_join_from(w.hub, &a.c, "lobby", &since, NULL) == HUB_OK);
    struct frame *ack = text("{\"type\":\"ack\",\"id\":1}"); /* what the router sends next */
    outbox_push(w.ob, &a.c.out, ack);
    frame_unref(ack);
    EXPECT_NONE(&a);
    CHECK(nasks == 2 && asks[1].w[0].kind == 'r' && strcmp(asks[1].w[0].name, "lobby") == 0);
    answer(&w, 1, HIST_RECOVERED, "RRRRRRRR", 2, 2);
    EXPECT(&a, "{\"type\":\"joined\",\"room\":\"lobby\",\"epoch\":\"RRRRRRRR\",\"offset\":2,\"recovered\":true}");
    EXPECT(&a, stamped("RRRRRRRR", 2));
    EXPECT(&a, "{\"type\":\"ack\",\"id\":1}");
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
    world_stop(&w);
}

static void test_redis_down_and_stale_answers(void) {
    struct world w;
    struct peer a, b;
    start(&w);
    down = 1;
    open_v2(&w, &a, "alice", "EEEEEEEE", 2);
    CHECK(next_has(&a, "\"streams\":{\"user\":{\"epoch\":\"\",\"offset\":0,\"recovered\":false},"
                       "\"broadcast\":{\"epoch\":\"\",\"offset\":0}}"));
    live(&w, "EEEEEEEE", 3); /* positions unknown: whatever comes goes through */
    EXPECT(&a, stamped("EEEEEEEE", 3));
    down = 0;
    open_v2(&w, &b, "alice", NULL, 0);
    CHECK_EQ_INT((long long)nasks, 1);
    peer_close(&w, &b, 1);
    answer(&w, 0, HIST_RECOVERED, "EEEEEEEE", 3, 1); /* b went: dropped, its replay freed */
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
    world_stop(&w);
}

int main(void) {
    test_welcome_recovers_and_live_adds_up();
    test_join_waits_for_its_read();
    test_redis_down_and_stale_answers();
    return check_done();
}

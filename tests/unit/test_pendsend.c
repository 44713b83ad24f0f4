/* test_pendsend: a send's answers collected, the loop never waiting (app/proto/pendsend.c).
 *
 * With a fake engine that records what it is asked and answers when the test says: a send to users
 * this node lists is answered at once; one to a user it does not list is answered when the engine's
 * answer comes, in its place among the sender's replies (what followed it waits behind it); the
 * answers of several targets add up to one reply, `not_found` naming the missing ones in the order
 * they were sent to; a sender gone before the answer loses it and nothing else; past the bound of
 * sends waiting per connection, a further one is refused at once, counted, and handed over all the
 * same (its user's stream keeps it) with nobody waiting for its answer; the server API waits for the
 * same answers. */
#include <pthread.h>
#include <stdio.h>

#include "check.h"
#include "peer.h"
#include "pendsend.h"
#include "router.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>


/* The fake engine: what it was asked, in order; `down` refuses at once. */
struct ask {
    char user[SB_NAME_MAX + 1];
    void (*answer)(void *arg, long nodes);
    void *arg;
};
static struct ask asks[64];
static size_t nasks;
static int down;

static long remote_send(void *ctx, const char *user, const struct frame *f, int *echo) { return 0; }
static long no_broadcast(void *ctx, const struct frame *f, const char *except, int *echo) { return 0; }
static long no_publish(void *ctx, const char *room, const struct frame *f, const char *except, int *echo) { return 0; }
static void no_local(void *ctx, const char *name, int up) {}
static int is_up(void *ctx) { return 1; }
static void no_gauges(void *ctx, struct metrics_gauges *g) {}
static int send_unlisted(void *ctx, const char *user, const struct frame *f, void (*answer)(void *arg, long nodes),
                         void *arg) {
    if (down || nasks == sizeof asks / sizeof asks[0]) return -1;
    snprintf(asks[nasks].user, sizeof asks[nasks].user, "%s", user);
    asks[nasks].answer = answer;
    asks[nasks++].arg = arg;
    return 0;
}

static void start(struct world *w) {
    world_start(w, 0);
    struct hub_engine e = {.send_user = remote_send, .broadcast = no_broadcast, .publish = no_publish,
                           .user_local = no_local, .room_local = no_local, .redis_up = is_up,
                           .gauges = no_gauges, .first_id = 1, .send_unlisted = send_unlisted};
    hub_set_engine(w->hub, &e);
    nasks = 0;
    down = 0;
}

/* A hub with the fake engine, and alice and bob connected, their welcomes read. */
static void open_pair(struct world *w, struct peer *a, struct peer *b) {
    start(w);
    peer_open(w, a, "alice");
    peer_open(w, b, "bob");
    drain(a);
    drain(b);
}

static void close_pair(struct world *w, struct peer *a, struct peer *b) {
    peer_close(w, a, 1);
    peer_close(w, b, 1);
    world_stop(w);
}

static void say(struct world *w, struct peer *p, const char *text) { router_handle(w->hub, &p->c, text, strlen(text)); }

static void engine_answers(size_t i, long nodes) { asks[i].answer(asks[i].arg, nodes); }

static void test_listed_at_once(void) {
    struct world w;
    struct peer a, b;
    open_pair(&w, &a, &b);
    say(&w, &a, "{\"type\":\"send\",\"to\":\"bob\",\"data\":1,\"id\":1}");
    EXPECT(&b, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":1}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    CHECK_EQ_INT(nasks, 0);
    CHECK_EQ_INT(pendsend_waiting(), 0);
    close_pair(&w, &a, &b);
}

/* The ack waits for the engine, in its place: the pong asked after it comes after it, while another
 * connection is served at once. */
static void test_answer_keeps_its_place(void) {
    struct world w;
    struct peer a, b;
    open_pair(&w, &a, &b);
    say(&w, &a, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":1,\"id\":1}");
    CHECK_EQ_INT(nasks, 1);
    CHECK_EQ_STR(asks[0].user, "zoe");
    CHECK_EQ_INT(pendsend_waiting(), 1);
    say(&w, &a, "{\"type\":\"ping\"}");
    say(&w, &a, "{\"type\":\"send\",\"to\":\"bob\",\"data\":2,\"id\":2}");
    say(&w, &b, "{\"type\":\"ping\"}");
    EXPECT(&b, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":2}");
    EXPECT(&b, "{\"type\":\"pong\"}");
    EXPECT_NONE(&a);
    engine_answers(0, 2);
    EXPECT(&a, "{\"type\":\"ack\",\"id\":1,\"delivered\":2}");
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":2,\"delivered\":1}");
    CHECK_EQ_INT(pendsend_waiting(), 0);
    /* without an id, a send found somewhere has no reply: the place is given up */
    say(&w, &a, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":3}");
    say(&w, &a, "{\"type\":\"ping\"}");
    EXPECT_NONE(&a);
    engine_answers(1, 1);
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT_NONE(&a);
    close_pair(&w, &a, &b);
}

/* Several targets: one reply once all are in; not_found names the missing in the order sent to. */
static void test_targets_add_up(void) {
    struct world w;
    struct peer a, b;
    open_pair(&w, &a, &b);
    say(&w, &a, "{\"type\":\"send\",\"to\":[\"xena\",\"bob\",\"yann\",\"zoe\"],\"data\":1,\"id\":\"s\"}");
    CHECK_EQ_INT(nasks, 3);
    engine_answers(2, 1); /* zoe, on one node */
    engine_answers(0, -1); /* xena nowhere */
    EXPECT_NONE(&a);
    engine_answers(1, -1); /* yann nowhere */
    EXPECT(&a, "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"not online: xena, yann\",\"id\":\"s\"}");
    /* all found: the ack counts this node's connections and the nodes that took it */
    say(&w, &a, "{\"type\":\"send\",\"to\":[\"xena\",\"bob\",\"zoe\"],\"data\":1,\"id\":3}");
    engine_answers(3, 2);
    engine_answers(4, 1);
    EXPECT(&a, "{\"type\":\"ack\",\"id\":3,\"delivered\":4}");
    /* the engine cannot ask (Redis down): not found, at once */
    down = 1;
    say(&w, &a, "{\"type\":\"send\",\"to\":[\"xena\",\"bob\"],\"data\":1,\"id\":4}");
    EXPECT(&a, "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"not online: xena\",\"id\":4}");
    CHECK_EQ_INT(pendsend_waiting(), 0);
    close_pair(&w, &a, &b);
}

/* The sender leaves before the answer: the answer is dropped, nobody else gets it. */
static void test_sender_gone(void) {
    struct world w;
    struct peer a, b;
    open_pair(&w, &a, &b);
    say(&w, &a, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":1,\"id\":1}");
    peer_close(&w, &a, 1);
    engine_answers(0, -1);
    EXPECT_NONE(&b);
    CHECK_EQ_INT(pendsend_waiting(), 0);
    peer_close(&w, &b, 1);
    world_stop(&w);
}

/* PENDSEND_PER_CONN sends wait; the next is refused at once, counted, and handed over without an
 * answer to wait for; another connection still has its own share. */
static void test_bound(void) {
    struct world w;
    struct peer a, b;
    open_pair(&w, &a, &b);
    uint64_t refused = metrics_get(M_CLUSTER_SENDS_REFUSED);
    for (int i = 0; i < PENDSEND_PER_CONN; i++) say(&w, &a, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":1}");
    CHECK_EQ_INT(nasks, PENDSEND_PER_CONN);
    CHECK_EQ_INT(pendsend_waiting(), PENDSEND_PER_CONN);
    say(&w, &a, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":1,\"id\":9}");
    CHECK_EQ_INT(nasks, PENDSEND_PER_CONN + 1);
    CHECK(asks[PENDSEND_PER_CONN].answer == NULL);
    CHECK_EQ_INT(pendsend_waiting(), PENDSEND_PER_CONN);
    CHECK_EQ_INT(metrics_get(M_CLUSTER_SENDS_REFUSED), refused + 1);
    say(&w, &b, "{\"type\":\"send\",\"to\":\"zoe\",\"data\":1,\"id\":1}");
    CHECK_EQ_INT(nasks, PENDSEND_PER_CONN + 2);
    engine_answers(PENDSEND_PER_CONN + 1, 1);
    EXPECT(&b, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    EXPECT_NONE(&a); /* the refusal waits behind the sends before it */
    for (int i = 0; i < PENDSEND_PER_CONN; i++) engine_answers((size_t)i, 1);
    EXPECT(&a, "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"not online: zoe\",\"id\":9}");
    CHECK_EQ_INT(pendsend_waiting(), 0);
    close_pair(&w, &a, &b);
}

static void *answer_later(void *arg) {
    engine_answers(0, 3);
    return NULL;
}

/* The server API collects the same answers and waits for them (here from another thread). */
static void test_api_waits(void) {
    struct world w;
    struct peer b;
    start(&w);
    peer_open(&w, &b, "bob");
    drain(&b);
    struct pendsend *ps = pendsend_new(w.hub, NULL, 3);
    struct frame *f = text("{\"m\":1}");
    pendsend_to(ps, "zoe", f);
    pendsend_to(ps, "bob", f);
    down = 1;
    pendsend_to(ps, "yann", f);
    frame_unref(f);
    EXPECT(&b, "{\"m\":1}");
    pthread_t t;
    pthread_create(&t, NULL, answer_later, NULL);
    struct pendsend_tally tl;
    pendsend_wait(ps, &tl);
    pthread_join(t, NULL);
    CHECK_EQ_INT(tl.delivered, 4);
    CHECK_EQ_INT(tl.nmissing, 1);
    if (tl.nmissing == 1) CHECK_EQ_STR(tl.missing[0], "yann");
    pendsend_free(ps);
    CHECK_EQ_INT(pendsend_waiting(), 0); /* the API's wait is its worker's, not the table's */
    peer_close(&w, &b, 1);
    world_stop(&w);
}

int main(void) {
    test_listed_at_once();
    test_answer_keeps_its_place();
    test_targets_add_up();
    test_sender_gone();
    test_bound();
    test_api_waits();
    return check_done();
}

/* test_hub: who is connected, presence, rooms and delivery (app/hub/hub.c).
 *
 * The hub is the server's one shared table; these tests drive its API directly with in-memory peers
 * (peer.h) and read back the exact frames each connection got: the welcome and presence events and
 * their order, several connections of one user, echo connections kept out of routing, rooms and their
 * 64-per-connection bound, the 64-connections-per-user bound, renaming, pings and the silence timeout,
 * shutdown, and a recipient whose outbox overflows. A connection the hub closes is over (outbox_done,
 * with a kick to its loop) only once the peer answers or the tick finds the grace period passed. */
#include "check.h"
#include "peer.h"

static void test_welcome_and_presence(void) {
    struct world w;
    struct peer alice, bob, bob2;
    world_start(&w, 1);
    CHECK_EQ_INT(peer_open(&w, &alice, "alice"), HUB_OK);
    CHECK(strncmp(alice.c.id, "conn-", 5) == 0);
    CHECK_EQ_STR(alice.c.user, "alice");
    CHECK(alice.c.named);
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\"]}", alice.c.id);
    CHECK_EQ_INT(peer_open(&w, &bob, "bob"), HUB_OK);
    CHECK(strcmp(bob.c.id, alice.c.id) != 0);
    EXPECT(&bob, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"users\":[\"alice\",\"bob\"]}", bob.c.id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\"}");
    EXPECT_NONE(&bob); /* no presence about yourself */
    /* a second connection of bob: a welcome, but no presence, since bob was already online */
    CHECK_EQ_INT(peer_open(&w, &bob2, "bob"), HUB_OK);
    EXPECT(&bob2, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"users\":[\"alice\",\"bob\"]}", bob2.c.id);
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    CHECK_EQ_INT(hub_count(w.hub), 3);
    /* closing one of bob's connections says nothing; closing the last one is a leave */
    hub_remove(w.hub, &bob2.c);
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    hub_remove(w.hub, &bob.c);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    CHECK_EQ_INT(hub_count(w.hub), 1);
    peer_close(&w, &bob2, 0);
    peer_close(&w, &bob, 0);
    peer_close(&w, &alice, 1);
    CHECK_EQ_INT(hub_count(w.hub), 0);
    world_stop(&w);
}

static void test_delivery(void) {
    struct world w;
    struct peer alice, bob, bob2, echo;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &bob, "bob");
    peer_open(&w, &bob2, "bob");
    CHECK_EQ_INT(peer_open_limit(&w, &echo, NULL, 1, PEER_OUTBOX), HUB_OK);
    EXPECT_NONE(&echo); /* echo connections get no welcome */
    drain(&alice), drain(&bob), drain(&bob2);
    struct frame *f = text("to-bob");
    uint64_t out_before = metrics_get(M_MESSAGES_OUT);
    CHECK_EQ_INT(hub_send_user(w.hub, "bob", f), 2);
    CHECK_EQ_INT(metrics_get(M_MESSAGES_OUT) - out_before, 2);
    CHECK_EQ_INT(hub_send_user(w.hub, "nobody", f), -1);
    CHECK_EQ_INT(hub_send_user(w.hub, echo.c.user, f), -1); /* echo connections have no user */
    frame_unref(f);
    f = text("everyone");
    CHECK_EQ_INT(hub_broadcast(w.hub, &alice.c, f), 2); /* bob, bob2; not alice, not echo */
    frame_unref(f);
    f = text("me");
    hub_reply(w.hub, &echo.c, f);
    frame_unref(f);
    EXPECT_NONE(&alice);
    EXPECT(&echo, "me");
    EXPECT_NONE(&echo);
    struct peer *bobs[] = {&bob, &bob2};
    for (int i = 0; i < 2; i++) {
        EXPECT(bobs[i], "to-bob");
        EXPECT(bobs[i], "everyone");
        EXPECT_NONE(bobs[i]);
    }
    peer_close(&w, &echo, 1);
    peer_close(&w, &bob2, 1);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_rooms(void) {
    struct world w;
    struct peer alice, bob, carol;
    struct metrics_gauges g;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &bob, "bob");
    peer_open(&w, &carol, "carol");
    drain(&alice), drain(&bob), drain(&carol);
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "lobby", NULL), HUB_OK);
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "lobby", NULL), HUB_OK); /* joining twice is harmless */
    CHECK_EQ_INT(alice.c.nrooms, 1);
    CHECK_EQ_INT(hub_join(w.hub, &bob.c, "lobby", NULL), HUB_OK);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.rooms, 1);
    struct frame *f = text("in lobby");
    CHECK_EQ_INT(hub_publish(w.hub, &alice.c, "lobby", f), 1); /* bob only: not the sender, not carol */
    CHECK_EQ_INT(hub_publish(w.hub, &carol.c, "lobby", f), -1); /* carol is not a member */
    CHECK_EQ_INT(hub_publish(w.hub, &alice.c, "elsewhere", f), -1);
    EXPECT(&bob, "in lobby");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&carol);
    CHECK_EQ_INT(hub_leave(w.hub, &bob.c, "lobby"), HUB_OK);
    CHECK_EQ_INT(hub_leave(w.hub, &bob.c, "lobby"), HUB_NOT_MEMBER);
    CHECK_EQ_INT(hub_leave(w.hub, &carol.c, "lobby"), HUB_NOT_MEMBER);
    CHECK_EQ_INT(hub_publish(w.hub, &alice.c, "lobby", f), 0);
    EXPECT_NONE(&bob);
    CHECK_EQ_INT(hub_leave(w.hub, &alice.c, "lobby"), HUB_OK);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.rooms, 0); /* an empty room is freed */
    CHECK_EQ_INT(hub_join(w.hub, &carol.c, "lobby", NULL), HUB_OK); /* and can be made again */
    CHECK_EQ_INT(hub_publish(w.hub, &carol.c, "lobby", f), 0);
    frame_unref(f);
    peer_close(&w, &carol, 1);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.rooms, 0); /* leaving the hub leaves its rooms */
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_room_limit(void) {
    struct world w;
    struct peer alice, bob;
    struct metrics_gauges g;
    char name[16];
    int failed = 0;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &bob, "bob");
    drain(&alice), drain(&bob);
    for (int i = 0; i < HUB_MAX_ROOMS_PER_CONN; i++) {
        snprintf(name, sizeof name, "room%d", i);
        failed += hub_join(w.hub, &alice.c, name, NULL) != HUB_OK;
    }
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "one-more", NULL), HUB_TOO_MANY_ROOMS);
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "room7", NULL), HUB_OK); /* already a member: still fine */
    CHECK_EQ_INT(hub_join(w.hub, &bob.c, "room63", NULL), HUB_OK);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.rooms, HUB_MAX_ROOMS_PER_CONN);
    CHECK_EQ_INT(hub_leave(w.hub, &alice.c, "room0"), HUB_OK);
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "one-more", NULL), HUB_OK); /* a free slot again */
    struct frame *f = text("x");
    CHECK_EQ_INT(hub_publish(w.hub, &alice.c, "room63", f), 1);
    frame_unref(f);
    peer_close(&w, &alice, 1);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.rooms, 1); /* bob's room63 remains */
    peer_close(&w, &bob, 1);
    world_stop(&w);
}

static void test_rename(void) {
    struct world w;
    struct peer alice, anon, anon2;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    drain(&alice);
    CHECK_EQ_INT(peer_open(&w, &anon, NULL), HUB_OK);
    CHECK_EQ_STR(anon.c.user, anon.c.id); /* anonymous: its user is its id */
    CHECK(!anon.c.named);
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"%s\",\"users\":[\"alice\",\"%s\"]}", anon.c.id,
           anon.c.id, anon.c.id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"%s\"}", anon.c.id);
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "carol"), HUB_OK);
    CHECK_EQ_STR(anon.c.user, "carol");
    CHECK(anon.c.named);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"%s\"}", anon.c.id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"carol\"}");
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"carol\",\"users\":[\"alice\",\"carol\"]}",
           anon.c.id);
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "dave"), HUB_ALREADY_NAMED);
    CHECK_EQ_INT(hub_rename(w.hub, &alice.c, "dave"), HUB_ALREADY_NAMED);
    CHECK_EQ_STR(anon.c.user, "carol");
    EXPECT_NONE(&anon);
    EXPECT_NONE(&alice);
    struct frame *f = text("for carol");
    CHECK_EQ_INT(hub_send_user(w.hub, "carol", f), 1);
    CHECK_EQ_INT(hub_send_user(w.hub, anon.c.id, f), -1); /* the id is no longer a user */
    frame_unref(f);
    EXPECT(&anon, "for carol");
    /* naming yourself as a user who is online already: a second connection, no join event */
    peer_open(&w, &anon2, NULL);
    drain(&anon2), drain(&alice), drain(&anon);
    CHECK_EQ_INT(hub_rename(w.hub, &anon2.c, "alice"), HUB_OK);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"%s\"}", anon2.c.id);
    EXPECT_NONE(&alice);
    EXPECT(&anon2, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\",\"carol\"]}",
           anon2.c.id);
    f = text("both alices");
    CHECK_EQ_INT(hub_send_user(w.hub, "alice", f), 2);
    frame_unref(f);
    peer_close(&w, &anon2, 1);
    peer_close(&w, &anon, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_user_limit(void) {
    static struct peer dave[HUB_MAX_CONNS_PER_USER + 1];
    struct world w;
    struct peer alice, anon;
    int failed = 0;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    for (int i = 0; i < HUB_MAX_CONNS_PER_USER; i++) failed += peer_open(&w, &dave[i], "dave") != HUB_OK;
    CHECK_EQ_INT(failed, 0);
    drain(&alice);
    size_t before = hub_count(w.hub);
    CHECK_EQ_INT(peer_open(&w, &dave[HUB_MAX_CONNS_PER_USER], "dave"), HUB_USER_FULL);
    /* listed without a user, so the tick can end it, and closed 1008 with no welcome */
    CHECK_EQ_INT(hub_count(w.hub), before + 1);
    EXPECT_CLOSE(&dave[HUB_MAX_CONNS_PER_USER], 1008);
    EXPECT_NONE(&alice);
    peer_close(&w, &dave[HUB_MAX_CONNS_PER_USER], 1);
    CHECK_EQ_INT(hub_count(w.hub), before);
    EXPECT_NONE(&alice); /* no presence leave: it never was a user */
    peer_open(&w, &anon, NULL);
    drain(&anon), drain(&alice);
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "dave"), HUB_USER_FULL);
    CHECK_EQ_STR(anon.c.user, anon.c.id); /* unchanged, and may still pick another name */
    CHECK(!anon.c.named);
    EXPECT_NONE(&anon);
    EXPECT_NONE(&alice);
    hub_remove(w.hub, &dave[0].c);
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "dave"), HUB_OK);
    struct frame *f = text("all of dave");
    CHECK_EQ_INT(hub_send_user(w.hub, "dave", f), HUB_MAX_CONNS_PER_USER);
    frame_unref(f);
    peer_close(&w, &dave[0], 0);
    for (int i = 1; i < HUB_MAX_CONNS_PER_USER; i++) peer_close(&w, &dave[i], 1);
    peer_close(&w, &anon, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_users_and_gauges(void) {
    struct world w;
    struct peer zed, amy, amy2, anon;
    struct metrics_gauges g;
    world_start(&w, 1);
    peer_open(&w, &zed, "zed");
    peer_open(&w, &amy, "amy");
    peer_open(&w, &amy2, "amy");
    peer_open(&w, &anon, NULL);
    drain(&zed), drain(&amy);
    hub_reply_users(w.hub, &zed.c, NULL);
    EXPECT(&zed, "{\"type\":\"users\",\"users\":[\"amy\",\"%s\",\"zed\"]}", anon.c.id);
    EXPECT_NONE(&amy);
    hub_gauges(w.hub, &g);
    CHECK_EQ_INT(g.connections_open, 4);
    CHECK_EQ_INT(g.users_online, 3);
    CHECK_EQ_INT(g.rooms, 0);
    CHECK_EQ_INT(g.outbox_bytes, 0); /* every frame was taken by its socket at once */
    peer_close(&w, &anon, 1);
    peer_close(&w, &amy2, 1);
    peer_close(&w, &amy, 1);
    peer_close(&w, &zed, 1);
    hub_gauges(w.hub, &g);
    CHECK(g.connections_open == 0 && g.users_online == 0);
    world_stop(&w);
}

static void test_presence_off(void) {
    struct world w;
    struct peer alice, bob;
    world_start(&w, 0);
    peer_open(&w, &alice, "alice");
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\"}", alice.c.id);
    peer_open(&w, &bob, NULL);
    EXPECT(&bob, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"%s\"}", bob.c.id, bob.c.id);
    CHECK_EQ_INT(hub_rename(w.hub, &bob.c, "bob"), HUB_OK);
    EXPECT(&bob, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\"}", bob.c.id);
    hub_remove(w.hub, &bob.c);
    EXPECT_NONE(&alice); /* no join, rename or leave events */
    peer_close(&w, &bob, 0);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

/* The next frame is a ping with an empty payload. */
static int is_ping(struct peer *p) {
    int op = 0;
    char *s = NULL;
    size_t n = 1;
    int got = peer_next(p, &op, &s, &n);
    free(s);
    return got && op == 0x89 && n == 0;
}

static void test_tick(void) {
    struct world w;
    struct peer quiet, chatty;
    struct hub_options opt = {1, 1000, 0, 0, {0, 0, 0}};
    w.ob = outbox_new(&peer_io);
    w.hub = hub_new(w.ob, &opt);
    peer_open(&w, &quiet, "quiet");
    peer_open(&w, &chatty, "chatty");
    drain(&quiet), drain(&chatty);
    int64_t t0 = hub_now_ms(); /* both last heard from, and pinged, at t0 (no other thread runs hub_tick) */
    struct peer *both[] = {&quiet, &chatty};
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&both[i]->c.last_rx_ms, t0, __ATOMIC_RELAXED);
        both[i]->c.last_ping_ms = t0;
    }
    uint64_t timeouts = metrics_get(M_PING_TIMEOUTS);
    hub_tick(w.hub, t0 + 999);
    EXPECT_NONE(&quiet);
    hub_tick(w.hub, t0 + 1000);
    CHECK(is_ping(&quiet));
    hub_tick(w.hub, t0 + 1500); /* pinged half an interval ago: not again yet */
    EXPECT_NONE(&quiet);
    hub_tick(w.hub, t0 + 2000);
    CHECK(is_ping(&quiet));
    drain(&chatty);
    __atomic_store_n(&chatty.c.last_rx_ms, t0 + 2500, __ATOMIC_RELAXED); /* chatty said something */
    hub_tick(w.hub, t0 + 3000);
    EXPECT_CLOSE(&quiet, 1001);
    EXPECT_NONE(&chatty);
    CHECK_EQ_INT(metrics_get(M_PING_TIMEOUTS) - timeouts, 1);
    /* the connection stays open HUB_CLOSE_GRACE_MS for the peer's answer, then a tick ends it */
    CHECK(!peer_done(&quiet) && peer_kicks(&quiet) == 0);
    int64_t began = peer_close_started(&quiet);
    CHECK(began > 0);
    hub_tick(w.hub, began + HUB_CLOSE_GRACE_MS - 1);
    CHECK(!peer_done(&quiet) && peer_kicks(&quiet) == 0);
    hub_tick(w.hub, began + HUB_CLOSE_GRACE_MS);
    CHECK(peer_done(&quiet) && peer_kicks(&quiet) == 1);
    __atomic_store_n(&chatty.c.last_rx_ms, t0 + 9000, __ATOMIC_RELAXED);
    hub_tick(w.hub, t0 + 9000); /* already closing and ended: counted and ended once */
    CHECK_EQ_INT(metrics_get(M_PING_TIMEOUTS) - timeouts, 1);
    CHECK_EQ_INT(peer_kicks(&quiet), 1);
    CHECK(!peer_done(&chatty) && peer_kicks(&chatty) == 0);
    EXPECT_NONE(&quiet); /* nothing after the close */
    peer_close(&w, &chatty, 1);
    peer_close(&w, &quiet, 1);
    world_stop(&w);
}

static void test_shutdown(void) {
    struct world w;
    struct peer alice, bob, late;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &bob, "bob");
    drain(&alice), drain(&bob);
    hub_shutdown(w.hub, 1001, "server shutting down");
    EXPECT_CLOSE(&alice, 1001);
    EXPECT_CLOSE(&bob, 1001);
    CHECK(!peer_done(&alice) && !peer_done(&bob)); /* waiting for their answers */
    outbox_peer_closed(w.ob, &alice.c.out, 1001, NULL); /* alice answers: over at once */
    CHECK(peer_done(&alice) && peer_kicks(&alice) == 1);
    EXPECT_NONE(&alice); /* her answer needs none */
    int64_t began = peer_close_started(&bob);
    hub_tick(w.hub, began + HUB_CLOSE_GRACE_MS - 1);
    CHECK(!peer_done(&bob) && peer_kicks(&bob) == 0);
    hub_tick(w.hub, began + HUB_CLOSE_GRACE_MS);
    CHECK(peer_done(&bob) && peer_kicks(&bob) == 1); /* no answer in time: ended */
    CHECK_EQ_INT(peer_kicks(&alice), 1);
    CHECK_EQ_INT(peer_open(&w, &late, "late"), HUB_SHUTTING_DOWN);
    CHECK_EQ_INT(hub_count(w.hub), 2);
    EXPECT_NONE(&late);
    EXPECT_NONE(&alice); /* no presence for the refused one */
    peer_close(&w, &late, 0);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

/* A frame bigger than a recipient's whole outbox closes that recipient 1008 and is not counted. */
static void test_overflowing_recipient(void) {
    struct world w;
    struct peer small, big;
    world_start(&w, 1);
    peer_open_limit(&w, &small, "slow", 0, 1024);
    peer_open(&w, &big, "fast");
    drain(&small), drain(&big);
    char payload[2000];
    memset(payload, 'z', sizeof payload);
    struct frame *f = frame_new(WS_OP_TEXT, payload, sizeof payload);
    CHECK_EQ_INT(hub_broadcast(w.hub, NULL, f), 1);
    frame_unref(f);
    EXPECT_CLOSE(&small, 1008);
    CHECK(outq_closing(&small.c.out));
    CHECK(!peer_done(&small)); /* closed, waiting for its answer */
    CHECK(!outq_closing(&big.c.out) && !peer_done(&big) && peer_kicks(&big) == 0);
    int op;
    char *s = NULL;
    size_t n = 0;
    CHECK(peer_next(&big, &op, &s, &n) && n == sizeof payload);
    free(s);
    peer_close(&w, &big, 1);
    peer_close(&w, &small, 1);
    world_stop(&w);
}

int main(void) {
    test_welcome_and_presence();
    test_delivery();
    test_rooms();
    test_room_limit();
    test_rename();
    test_user_limit();
    test_users_and_gauges();
    test_presence_off();
    test_tick();
    test_shutdown();
    test_overflowing_recipient();
    return check_done();
}

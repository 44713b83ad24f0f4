/* test_hubremote: what the cluster engine brings into the hub from other nodes (app/hub/hubremote.c).
 *
 * A user online on another node is listed here and announced once (a join when it first appears in
 * the union of this node and the others, a leave when it leaves that union, never while it still has
 * a connection here); deliveries from other nodes reach this node's connections only, a room's only
 * its members here; another node's disconnect closes this node's connections of the user only. A
 * welcome waits for the engine's route to its user (hub_route_ready), with what followed it, in order;
 * the tick lets it go after HUB_WELCOME_WAIT_MS. With
 * --presence rooms, another node's users arrive unannounced but for their watchers, and a room's
 * members here hear another node's user enter and leave the room once across the cluster. */
#include <stdio.h>

#include "check.h"
#include "hubremote.h"
#include "peer.h"

#include <stdlib.h>
#include <string.h>

static void test_remote_users(void) {
    struct world w;
    struct peer a, b;
    world_start(&w, 1);
    peer_open(&w, &a, "alice");
    drain(&a);
    hub_remote_user(w.hub, "zed", 1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"zed\"}");
    hub_remote_user(w.hub, "zed", 1); /* a second node: no news */
    EXPECT_NONE(&a);
    hub_remote_user(w.hub, "zed", -1);
    EXPECT_NONE(&a);
    hub_remote_user(w.hub, "zed", -1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"zed\"}");
    /* bob here and elsewhere: his last connection here closing is no leave while the other node has him */
    hub_remote_user(w.hub, "bob", 1);
    drain(&a);
    peer_open(&w, &b, "bob");
    EXPECT_NONE(&a);
    peer_close(&w, &b, 1);
    EXPECT_NONE(&a);
    hub_remote_user(w.hub, "bob", -1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    peer_close(&w, &a, 1);
    world_stop(&w);
}

static void test_local_deliveries(void) {
    struct world w;
    struct peer a, b, c;
    world_start(&w, 0);
    peer_open(&w, &a, "alice");
    peer_open(&w, &b, "bob");
    peer_open(&w, &c, "bob");
    hub_join(w.hub, &a.c, "lobby", NULL);
    drain(&a);
    drain(&b);
    drain(&c);
    struct frame *f = text("{\"x\":1}");
    CHECK_EQ_INT((long long)hub_deliver_local_user(w.hub, "bob", f), 2);
    CHECK_EQ_INT((long long)hub_deliver_local_user(w.hub, "nobody", f), 0);
    CHECK_EQ_INT((long long)hub_deliver_local_room(w.hub, "lobby", f), 1);
    CHECK_EQ_INT((long long)hub_deliver_local_all(w.hub, f), 3);
    frame_unref(f);
    EXPECT(&a, "{\"x\":1}");
    EXPECT(&a, "{\"x\":1}");
    EXPECT(&b, "{\"x\":1}");
    EXPECT(&b, "{\"x\":1}");
    CHECK_EQ_INT((long long)hub_close_local_user(w.hub, "bob", 4003, "from elsewhere"), 2);
    EXPECT_CLOSE(&b, 4003);
    EXPECT(&c, "{\"x\":1}");
    EXPECT(&c, "{\"x\":1}");
    EXPECT_CLOSE(&c, 4003);
    EXPECT_NONE(&a); /* alice stays */
    peer_close(&w, &a, 1);
    peer_close(&w, &b, 1);
    peer_close(&w, &c, 1);
    world_stop(&w);
}

/* A fake engine whose route to "carol" is confirmed only when `routed` says so. */
static int routed;
static long no_send(void *ctx, const char *user, const struct frame *f, int *echo) { return 0; }
static long no_broadcast(void *ctx, const struct frame *f, const char *except, int *echo) { return 0; }
static long no_publish(void *ctx, const char *room, const struct frame *f, const char *except, int *echo) { return 0; }
static void no_local(void *ctx, const char *name, int up) {}
static int is_up(void *ctx) { return 1; }
static void no_gauges(void *ctx, struct metrics_gauges *g) {}
static int user_routed(void *ctx, const char *user) { return routed || strcmp(user, "carol") != 0; }

/* 1 if the next frame p received is its welcome. */
static int next_is_welcome(struct peer *p) {
    int op;
    char *got = NULL;
    size_t len;
    int yes = peer_next(p, &op, &got, &len) && strstr(got, "\"type\":\"welcome\"") != NULL;
    free(got);
    return yes;
}

static void test_welcome_waits_for_route(void) {
    struct world w;
    struct peer a, c1, c2;
    world_start(&w, 0);
    struct hub_engine e = {.send_user = no_send, .broadcast = no_broadcast, .publish = no_publish,
                           .user_local = no_local, .room_local = no_local, .redis_up = is_up,
                           .gauges = no_gauges, .first_id = 1000, .user_routed = user_routed};
    hub_set_engine(w.hub, &e);
    routed = 0;
    peer_open(&w, &a, "alice");
    peer_open(&w, &c1, "carol");
    peer_open(&w, &c2, "carol");
    CHECK(next_is_welcome(&a)); /* alice's route is there: at once */
    EXPECT_NONE(&c1); /* carol's: not yet, nor what is sent to her meanwhile */
    struct frame *f = text("{\"m\":1}");
    CHECK_EQ_INT((long long)hub_send_user(w.hub, "carol", f), 2);
    frame_unref(f);
    EXPECT_NONE(&c1);
    EXPECT_NONE(&c2);
    routed = 1;
    hub_route_ready(w.hub, "carol");
    CHECK(next_is_welcome(&c1));
    EXPECT(&c1, "{\"m\":1}");
    CHECK(next_is_welcome(&c2));
    EXPECT(&c2, "{\"m\":1}");
    peer_close(&w, &c2, 1);
    /* a route that never comes: the tick lets the welcome go, counted */
    routed = 0;
    uint64_t unrouted = metrics_get(M_CLUSTER_WELCOMES_UNROUTED);
    struct peer d;
    hub_remove(w.hub, &c1.c); /* carol's last connection: her route goes with it */
    peer_open(&w, &d, "carol");
    EXPECT_NONE(&d);
    hub_tick(w.hub, hub_now_ms() + HUB_WELCOME_WAIT_MS);
    CHECK(next_is_welcome(&d));
    CHECK_EQ_INT((long long)(metrics_get(M_CLUSTER_WELCOMES_UNROUTED) - unrouted), 1);
    peer_close(&w, &c1, 0);
    peer_close(&w, &d, 1);
    peer_close(&w, &a, 1);
    world_stop(&w);
}

/* The engine's table of room members on other nodes, as the hooks see it: "ROOM USER" -> nodes. */
static struct {
    const char *key;
    size_t nodes;
} remote_members[4];

static size_t room_user_nodes(void *ctx, const char *room, const char *user) {
    char key[160];
    snprintf(key, sizeof key, "%s %s", room, user);
    for (size_t i = 0; i < 4; i++)
        if (remote_members[i].key && strcmp(remote_members[i].key, key) == 0) return remote_members[i].nodes;
    return 0;
}

static void test_rooms_mode(void) {
    struct world w;
    struct peer a, b, watcher;
    world_start(&w, PRESENCE_ROOMS);
    struct hub_engine e = {.send_user = no_send, .broadcast = no_broadcast, .publish = no_publish,
                           .user_local = no_local, .room_local = no_local, .redis_up = is_up,
                           .gauges = no_gauges, .first_id = 1000, .room_user_nodes = room_user_nodes};
    hub_set_engine(w.hub, &e);
    peer_open(&w, &a, "alice");
    peer_open(&w, &watcher, "walt");
    hub_join(w.hub, &a.c, "lobby", NULL);
    const char *zed[] = {"zed"};
    presence_watch(w.hub, &watcher.c, zed, 1, "{\"type\":\"ack\"");
    drain(&a), drain(&watcher);
    hub_remote_user(w.hub, "zed", 1);
    EXPECT(&watcher, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"zed\"}");
    EXPECT_NONE(&a); /* not watching: a user elsewhere arrives unannounced */
    /* zed enters the lobby on one node, then a second: the room hears it once */
    remote_members[0].key = "lobby zed", remote_members[0].nodes = 1;
    hub_remote_room_user(w.hub, "lobby", "zed", 1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"zed\",\"room\":\"lobby\"}");
    remote_members[0].nodes = 2;
    hub_remote_room_user(w.hub, "lobby", "zed", 1);
    EXPECT_NONE(&a);
    remote_members[0].nodes = 1;
    hub_remote_room_user(w.hub, "lobby", "zed", 0);
    EXPECT_NONE(&a);
    remote_members[0].nodes = 0;
    hub_remote_room_user(w.hub, "lobby", "zed", 0);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"zed\",\"room\":\"lobby\"}");
    EXPECT_NONE(&watcher); /* not in the room */
    hub_remote_room_user(w.hub, "attic", "zed", 1); /* nobody here in that room */
    /* bob is in the lobby here and elsewhere: neither side's coming or going is news to the room */
    peer_open(&w, &b, "bob");
    remote_members[1].key = "lobby bob", remote_members[1].nodes = 1;
    hub_remote_room_user(w.hub, "lobby", "bob", 1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\",\"room\":\"lobby\"}");
    hub_join(w.hub, &b.c, "lobby", NULL);
    EXPECT_NONE(&a);
    hub_leave(w.hub, &b.c, "lobby");
    EXPECT_NONE(&a);
    hub_join(w.hub, &b.c, "lobby", NULL);
    remote_members[1].nodes = 0;
    hub_remote_room_user(w.hub, "lobby", "bob", 0); /* still here */
    EXPECT_NONE(&a);
    peer_close(&w, &b, 1);
    EXPECT(&a, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\",\"room\":\"lobby\"}");
    hub_remote_user(w.hub, "zed", -1);
    EXPECT(&watcher, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"zed\"}");
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
    peer_close(&w, &watcher, 1);
    world_stop(&w);
}

/* A fake engine with streams in Redis: it takes every send to bring it back with its position. */
static long echo_send(void *ctx, const char *user, const struct frame *f, int *echo) {
    *echo = 1;
    return 0;
}

#define PLAIN "{\"type\":\"message\",\"from\":\"a\",\"to\":\"bob\",\"data\":1}"
#define STAMPED "{\"type\":\"message\",\"epoch\":\"Ab3dE9xZ\",\"offset\":7,\"from\":\"a\",\"to\":\"bob\",\"data\":1}"

/* With streams in Redis, a send reaches this node's protocol 1 connections at once and its protocol 2
 * ones through the cluster, with the position Redis gave it; one from another node reaches both. */
static void test_positions_from_the_cluster(void) {
    struct world w;
    struct peer v2, v1;
    world_start(&w, 0);
    struct hub_engine e = {.send_user = echo_send, .broadcast = no_broadcast, .publish = no_publish,
                           .user_local = no_local, .room_local = no_local, .redis_up = is_up,
                           .gauges = no_gauges, .first_id = 1000};
    hub_set_engine(w.hub, &e);
    memset(&v2, 0, sizeof v2);
    pthread_mutex_init(&v2.lock, NULL);
    hub_conn_init(w.hub, &v2.c, "bob", 0, &v2, PEER_OUTBOX);
    v2.c.positions = 1;
    CHECK_EQ_INT(hub_add(w.hub, &v2.c), HUB_OK);
    peer_open(&w, &v1, "bob");
    drain(&v2);
    drain(&v1);
    struct frame *f = text(PLAIN);
    CHECK_EQ_INT((long long)hub_send_user(w.hub, "bob", f), 2); /* both counted */
    EXPECT(&v1, PLAIN);
    EXPECT_NONE(&v2); /* left to the cluster */
    struct hist_pos pos = {"Ab3dE9xZ", 7};
    CHECK_EQ_INT((long long)hub_deliver_local_user_at(w.hub, "bob", f, &pos, ""), 1); /* its echo */
    EXPECT(&v2, STAMPED);
    EXPECT_NONE(&v1);
    CHECK_EQ_INT((long long)hub_deliver_local_user_at(w.hub, "bob", f, &pos, NULL), 2); /* from another node */
    EXPECT(&v2, STAMPED);
    EXPECT(&v1, PLAIN);
    CHECK_EQ_INT((long long)hub_deliver_local_user_at(w.hub, "nobody", f, &pos, NULL), 0);
    frame_unref(f);
    /* a room's and the broadcast stream's: the sender left out of its own node's echo */
    hub_join(w.hub, &v2.c, "lobby", NULL);
    hub_join(w.hub, &v1.c, "lobby", NULL);
    drain(&v2);
    drain(&v1);
    f = text(PLAIN);
    CHECK_EQ_INT((long long)hub_deliver_local_room_at(w.hub, "lobby", f, &pos, v2.c.id), 0);
    CHECK_EQ_INT((long long)hub_deliver_local_all_at(w.hub, f, &pos, v2.c.id), 0);
    EXPECT_NONE(&v2);
    EXPECT_NONE(&v1);
    CHECK_EQ_INT((long long)hub_deliver_local_room_at(w.hub, "lobby", f, &pos, ""), 1);
    EXPECT(&v2, STAMPED);
    CHECK_EQ_INT((long long)hub_deliver_local_all_at(w.hub, f, &pos, NULL), 2);
    EXPECT(&v2, STAMPED);
    EXPECT(&v1, PLAIN);
    CHECK_EQ_INT((long long)hub_deliver_local_room_at(w.hub, "attic", f, &pos, NULL), 0);
    frame_unref(f);
    peer_close(&w, &v2, 1);
    peer_close(&w, &v1, 1);
    world_stop(&w);
}

int main(void) {
    test_rooms_mode();
    test_remote_users();
    test_local_deliveries();
    test_positions_from_the_cluster();
    test_welcome_waits_for_route();
    return check_done();
}

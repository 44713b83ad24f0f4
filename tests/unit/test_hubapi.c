/* test_hubapi: the hub's server-API side (app/hub/hubapi.c), and the room members the hub tells a cluster
 * engine about for it.
 *
 * Alone, a room's listing is the distinct users of its members, sorted, and a disconnect closes every
 * connection of the user with the code and reason, counting them. With an engine (a fake one here,
 * recording the hooks), the listing adds the users the engine reports for other nodes, still distinct
 * and sorted; `closed` adds the nodes the engine says have the user; and the engine hears of a user
 * entering a room on its first connection there and leaving on its last, whatever the rename. */
#include "check.h"
#include "hubapi.h"
#include "peer.h"

static char *json_room(struct hub *h, const char *room) {
    size_t len = 0;
    char *s = hub_room_users_json(h, room, &len);
    CHECK(s && strlen(s) == len);
    return s;
}

static void check_room(struct hub *h, const char *room, const char *want) {
    char *s = json_room(h, room);
    CHECK_EQ_STR(s, want);
    free(s);
}

static void test_alone(void) {
    struct world w;
    struct peer a, b1, b2;
    world_start(&w, 0);
    peer_open(&w, &a, "alice");
    peer_open(&w, &b1, "bob");
    peer_open(&w, &b2, "bob");
    check_room(w.hub, "lobby", "[]");
    hub_join(w.hub, &b1.c, "lobby", NULL);
    hub_join(w.hub, &b2.c, "lobby", NULL);
    hub_join(w.hub, &a.c, "lobby", NULL);
    check_room(w.hub, "lobby", "[\"alice\",\"bob\"]");
    size_t len = 0;
    char *users = hub_users_json(w.hub, &len);
    CHECK_EQ_STR(users, "[\"alice\",\"bob\"]");
    free(users);
    drain(&b1);
    drain(&b2);
    CHECK_EQ_INT((long long)hub_close_user(w.hub, "bob", 4001, "bye"), 2);
    EXPECT_CLOSE(&b1, 4001);
    EXPECT_CLOSE(&b2, 4001);
    CHECK_EQ_INT((long long)hub_close_user(w.hub, "nobody", 4001, "bye"), 0);
    peer_close(&w, &b1, 1);
    peer_close(&w, &b2, 1);
    peer_close(&w, &a, 1);
    world_stop(&w);
}

/* ---- a fake engine ---- */

static char hook_log[1024];

static long no_send(void *ctx, const char *user, const struct frame *f, int *echo) { return 0; }
static long no_broadcast(void *ctx, const struct frame *f, const char *except, int *echo) { return 0; }
static long no_publish(void *ctx, const char *room, const struct frame *f, const char *except, int *echo) { return 0; }
static void no_local(void *ctx, const char *name, int up) {}
static int up(void *ctx) { return 1; }
static void no_gauges(void *ctx, struct metrics_gauges *g) {}

static void member(void *ctx, const char *room, const char *user, int in) {
    size_t n = strlen(hook_log);
    snprintf(hook_log + n, sizeof hook_log - n, "%c%s/%s ", in ? '+' : '-', room, user);
}

static long close_elsewhere(void *ctx, const char *user, uint16_t code, const char *reason) {
    return strcmp(user, "bob") == 0 ? 2 : 0; /* bob is online on two other nodes */
}

static void remote_members(void *ctx, const char *room, void (*add)(void *arg, const char *user), void *arg) {
    if (strcmp(room, "lobby") != 0) return;
    add(arg, "zed"); /* on one node */
    add(arg, "alice"); /* here and on another node: listed once */
    add(arg, "zed"); /* on a third */
}

static char subscribe_log[256];

static long subscribe_elsewhere(void *ctx, const char *user, const char *room, int join) {
    size_t n = strlen(subscribe_log);
    snprintf(subscribe_log + n, sizeof subscribe_log - n, "%c%s/%s ", join ? '+' : '-', room, user);
    return strcmp(user, "bob") == 0 ? 2 : 0;
}

/* An engine whose hooks record what the hub asked of the other nodes. */
static const struct hub_engine fake_engine = {
    .send_user = no_send, .broadcast = no_broadcast, .publish = no_publish, .user_local = no_local,
    .room_local = no_local, .redis_up = up, .gauges = no_gauges, .first_id = 1000,
    .room_user_local = member, .close_user = close_elsewhere, .room_users = remote_members,
    .subscribe = subscribe_elsewhere};

static void test_with_engine(void) {
    struct world w;
    struct peer a1, a2, b, anon;
    world_start(&w, 0);
    hub_set_engine(w.hub, &fake_engine);
    hook_log[0] = '\0';
    peer_open(&w, &a1, "alice");
    peer_open(&w, &a2, "alice");
    peer_open(&w, &b, "bob");
    peer_open(&w, &anon, NULL);
    hub_join(w.hub, &a1.c, "lobby", NULL);
    hub_join(w.hub, &a2.c, "lobby", NULL); /* alice is in the room already */
    hub_join(w.hub, &anon.c, "lobby", NULL);
    char want[256];
    snprintf(want, sizeof want, "+lobby/alice +lobby/%s ", anon.c.id);
    CHECK_EQ_STR(hook_log, want);
    hook_log[0] = '\0';
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "carol"), HUB_OK); /* the room's user changes */
    snprintf(want, sizeof want, "-lobby/%s +lobby/carol ", anon.c.id);
    CHECK_EQ_STR(hook_log, want);
    check_room(w.hub, "lobby", "[\"alice\",\"carol\",\"zed\"]");
    check_room(w.hub, "empty", "[]");
    hook_log[0] = '\0';
    hub_leave(w.hub, &a1.c, "lobby"); /* a2 is still in it */
    CHECK_EQ_STR(hook_log, "");
    peer_close(&w, &a2, 1);
    CHECK_EQ_STR(hook_log, "-lobby/alice ");
    drain(&b);
    CHECK_EQ_INT((long long)hub_close_user(w.hub, "bob", 4002, "kicked"), 3); /* one here, two nodes */
    EXPECT_CLOSE(&b, 4002);
    peer_close(&w, &a1, 1);
    peer_close(&w, &b, 1);
    peer_close(&w, &anon, 1);
    world_stop(&w);
}

/* Server-side subscriptions: every connection of the user, here; the engine told; --max-rooms holds. */
static void test_subscribe(void) {
    struct world w;
    struct peer a1, a2, b;
    world_start(&w, 0);
    hub_set_engine(w.hub, &fake_engine);
    peer_open(&w, &a1, "alice");
    peer_open(&w, &a2, "alice");
    peer_open(&w, &b, "bob");
    hub_join(w.hub, &a2.c, "news", NULL); /* already in: not counted again */
    hook_log[0] = subscribe_log[0] = '\0';
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "alice", "news", 1), 1);
    CHECK_EQ_STR(subscribe_log, "+news/alice ");
    CHECK_EQ_INT(a1.c.nrooms, 1);
    CHECK_EQ_INT(a2.c.nrooms, 1);
    CHECK_EQ_STR(hook_log, ""); /* alice was a member of news already, through a2 */
    struct frame *f = frame_new(WS_OP_TEXT, "x", 1);
    CHECK_EQ_INT((long long)hub_publish_server(w.hub, "news", f), 2); /* both of alice's connections */
    frame_unref(f);
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "bob", "news", 1), 3); /* one here, two nodes */
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "alice", "news", 0), 2);
    CHECK_EQ_INT(a1.c.nrooms + a2.c.nrooms, 0);
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "alice", "news", 0), 0);
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "nobody", "news", 1), 0);
    char big[16];
    for (int i = 0; i < 64; i++) { /* --max-rooms (64 in world_start) */
        snprintf(big, sizeof big, "r%d", i);
        hub_join(w.hub, &a1.c, big, NULL);
    }
    CHECK_EQ_INT((long long)hub_subscribe_user(w.hub, "alice", "news", 1), 1); /* a1 is full, a2 joins */
    CHECK_EQ_INT(a1.c.nrooms, 64);
    peer_close(&w, &a1, 1);
    peer_close(&w, &a2, 1);
    peer_close(&w, &b, 1);
    world_stop(&w);
}

int main(void) {
    test_alone();
    test_subscribe();
    test_with_engine();
    return check_done();
}

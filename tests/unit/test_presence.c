/* test_presence: the presence modes' fan-out and the rooms-mode commands (app/hub/presence.c).
 *
 * Driven through the hub's API with in-memory peers (peer.h), reading back the exact frames each
 * connection gets. With --presence rooms: a welcome lists nobody and an arrival tells nobody; a room's
 * members hear who enters and leaves it (a user's first and last connection there, by leave, close or
 * rename), the joiner gets the members in its ack; watchers hear of the users they watch and of no one
 * else, with the WATCH_MAX bound all-or-nothing; `users` is a bounded page. The mode names parse, `on`
 * as global's old name. Global mode is test_hub's. */
#include <stdio.h>

#include "check.h"
#include "hubremote.h"
#include "peer.h"

#define ACK1 "{\"type\":\"ack\",\"id\":1,\"delivered\":0"

static void test_mode_names(void) {
    enum presence_mode m;
    CHECK_EQ_INT(presence_mode_parse("rooms", &m), 0);
    CHECK_EQ_INT(m, PRESENCE_ROOMS);
    CHECK_EQ_INT(presence_mode_parse("global", &m), 0);
    CHECK_EQ_INT(m, PRESENCE_GLOBAL);
    CHECK_EQ_INT(presence_mode_parse("on", &m), 0);
    CHECK_EQ_INT(m, PRESENCE_GLOBAL);
    CHECK_EQ_INT(presence_mode_parse("off", &m), 0);
    CHECK_EQ_INT(m, PRESENCE_OFF);
    CHECK_EQ_INT(presence_mode_parse("Rooms", &m), -1);
    CHECK_EQ_INT(presence_mode_parse("", &m), -1);
}

static void test_room_presence(void) {
    struct world w;
    struct peer alice, bob, bob2, carol;
    world_start(&w, PRESENCE_ROOMS);
    peer_open(&w, &alice, "alice");
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\"}", alice.c.id); /* nobody listed */
    peer_open(&w, &bob, "bob");
    peer_open(&w, &bob2, "bob");
    peer_open(&w, &carol, "carol");
    drain(&bob), drain(&bob2), drain(&carol);
    EXPECT_NONE(&alice); /* an arrival tells nobody */
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "lobby", ACK1), HUB_OK);
    EXPECT(&alice, ACK1 ",\"members\":[\"alice\"]}");
    CHECK_EQ_INT(hub_join(w.hub, &bob.c, "lobby", ACK1), HUB_OK);
    EXPECT(&bob, ACK1 ",\"members\":[\"alice\",\"bob\"]}");
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\",\"room\":\"lobby\"}");
    EXPECT_NONE(&bob); /* not about yourself */
    /* bob's second tab: bob was in the room already, so the room hears nothing */
    CHECK_EQ_INT(hub_join(w.hub, &bob2.c, "lobby", ACK1), HUB_OK);
    EXPECT(&bob2, ACK1 ",\"members\":[\"alice\",\"bob\"]}");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    /* joining again still answers with the members; without an ack head, no reply at all */
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "lobby", ACK1), HUB_OK);
    EXPECT(&alice, ACK1 ",\"members\":[\"alice\",\"bob\"]}");
    CHECK_EQ_INT(hub_join(w.hub, &carol.c, "other", NULL), HUB_OK);
    EXPECT_NONE(&carol);
    EXPECT_NONE(&alice); /* another room: not alice's business */
    CHECK_EQ_INT(hub_leave(w.hub, &bob2.c, "lobby"), HUB_OK);
    EXPECT_NONE(&alice);
    /* bob's last connection in the room closes: a leave, to the room only */
    hub_remove(w.hub, &bob.c);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\",\"room\":\"lobby\"}");
    EXPECT_NONE(&carol);
    EXPECT_NONE(&bob2); /* bob's other tab left the room before, and is not told of itself */
    peer_close(&w, &bob, 0);
    peer_close(&w, &bob2, 1);
    peer_close(&w, &carol, 1);
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_rename_in_a_room(void) {
    struct world w;
    struct peer alice, anon;
    world_start(&w, PRESENCE_ROOMS);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &anon, NULL);
    hub_join(w.hub, &alice.c, "lobby", NULL);
    hub_join(w.hub, &anon.c, "lobby", NULL);
    drain(&alice), drain(&anon);
    CHECK_EQ_INT(hub_rename(w.hub, &anon.c, "carol"), HUB_OK);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"%s\",\"room\":\"lobby\"}", anon.c.id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"carol\",\"room\":\"lobby\"}");
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"carol\"}", anon.c.id);
    peer_close(&w, &anon, 1);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"carol\",\"room\":\"lobby\"}");
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

static void test_watch(void) {
    struct world w;
    struct peer carol, bob, dave, eve;
    world_start(&w, PRESENCE_ROOMS);
    peer_open(&w, &carol, "carol");
    peer_open(&w, &bob, "bob");
    drain(&carol), drain(&bob);
    const char *names[] = {"dave", "bob", "bob"};
    CHECK_EQ_INT(presence_watch(w.hub, &carol.c, names, 3, ACK1), PRESENCE_DONE);
    EXPECT(&carol, ACK1 ",\"online\":[\"bob\"]}");
    CHECK_EQ_INT(carol.c.watching.n, 2);
    peer_open(&w, &dave, "dave");
    peer_open(&w, &eve, "eve");
    drain(&dave), drain(&eve);
    EXPECT(&carol, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"dave\"}"); /* eve: not watched */
    EXPECT_NONE(&carol);
    peer_close(&w, &bob, 1);
    EXPECT(&carol, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    presence_unwatch(w.hub, &carol.c, names, 1);
    peer_close(&w, &dave, 1);
    EXPECT_NONE(&carol); /* unwatched */
    EXPECT_NONE(&eve);   /* nobody hears of anybody they do not watch */
    /* the bound: a command that would pass it changes nothing */
    static char many[WATCH_MAX][16];
    const char *list[WATCH_MAX];
    for (int i = 0; i < WATCH_MAX; i++) {
        snprintf(many[i], sizeof many[i], "u%d", i);
        list[i] = many[i];
    }
    CHECK_EQ_INT(presence_watch(w.hub, &carol.c, list, WATCH_MAX, ACK1), PRESENCE_TOO_MANY);
    CHECK_EQ_INT(carol.c.watching.n, 1); /* still bob */
    EXPECT_NONE(&carol);
    CHECK_EQ_INT(presence_watch(w.hub, &carol.c, list, WATCH_MAX - 1, ACK1), PRESENCE_DONE);
    EXPECT(&carol, ACK1 ",\"online\":[]}");
    CHECK_EQ_INT(carol.c.watching.n, WATCH_MAX);
    peer_close(&w, &carol, 1); /* its watches go with it */
    peer_close(&w, &eve, 1);
    world_stop(&w);
}

/* users in rooms mode: a page of PRESENCE_USERS_PAGE names, then the rest after the last one. */
static void test_users_page(void) {
    struct world w;
    struct peer alice;
    char name[16];
    world_start(&w, PRESENCE_ROOMS);
    peer_open(&w, &alice, "a");
    drain(&alice);
    for (int i = 0; i < PRESENCE_USERS_PAGE + 2; i++) {
        snprintf(name, sizeof name, "u%04d", i);
        hub_remote_user(w.hub, name, 1); /* online elsewhere: listed like a local user */
    }
    EXPECT_NONE(&alice); /* rooms mode: other nodes' users arrive unannounced too */
    hub_reply_users(w.hub, &alice.c, NULL);
    char *page = NULL;
    int op;
    size_t len;
    CHECK(peer_next(&alice, &op, &page, &len));
    CHECK(page && strncmp(page, "{\"type\":\"users\",\"users\":[\"a\",\"u0000\",", 36) == 0);
    CHECK(page && strstr(page, "\"u0998\"],\"more\":true}") != NULL);
    free(page);
    hub_reply_users(w.hub, &alice.c, "u0998");
    EXPECT(&alice, "{\"type\":\"users\",\"users\":[\"u0999\",\"u1000\",\"u1001\"]}");
    hub_reply_users(w.hub, &alice.c, "zzz");
    EXPECT(&alice, "{\"type\":\"users\",\"users\":[]}");
    peer_close(&w, &alice, 1);
    world_stop(&w);
}

int main(void) {
    test_mode_names();
    test_room_presence();
    test_rename_in_a_room();
    test_watch();
    test_users_page();
    return check_done();
}

/* test_hubremote: what the cluster engine brings into the hub from other nodes (app/hub/hubremote.c).
 *
 * A user online on another node is listed here and announced once (a join when it first appears in
 * the union of this node and the others, a leave when it leaves that union, never while it still has
 * a connection here); deliveries from other nodes reach this node's connections only, a room's only
 * its members here; another node's disconnect closes this node's connections of the user only. */
#include "check.h"
#include "hubremote.h"
#include "peer.h"

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

int main(void) {
    test_remote_users();
    test_local_deliveries();
    return check_done();
}

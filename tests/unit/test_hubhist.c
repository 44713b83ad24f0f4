/* test_hubhist: streams and recovery on the hub's side (app/hub/hubhist.c), through the hub's API.
 *
 * A protocol 2 connection sees each delivery with its stream position, a protocol 1 connection the
 * same bytes as before; a welcome and a join say where their streams stand and replay what a
 * reconnecting client missed, before any live message of the stream. The last test reconnects a user
 * over and over while another thread sends to it without pause: every message must arrive exactly
 * once and in order across the reconnects (the replay is atomic with the subscription; run under
 * TSan). */
#include <cjson/cJSON.h>

#include "check.h"
#include "peer.h"

/* The next frame, parsed (cJSON_Delete it); NULL when none. */
static cJSON *next_json(struct peer *p) {
    int op;
    char *s;
    size_t n;
    if (!peer_next(p, &op, &s, &n)) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static const char *str(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* Opens `user` speaking protocol 2, recovering its user stream from `since` if not NULL. */
static enum hub_status open_v2(struct world *w, struct peer *p, const char *user, const struct hist_pos *since) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(w->hub, &p->c, user, 0, p, PEER_OUTBOX);
    p->c.positions = 1;
    if (since) {
        p->c.since.user = *since;
        p->c.since.has_user = 1;
    }
    return hub_add(w->hub, &p->c);
}

/* The welcome's user stream position into *pos; its "recovered" (-1 when absent). */
static int welcome_user(struct peer *p, struct hist_pos *pos) {
    cJSON *w = next_json(p);
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(w, "streams"), "user");
    CHECK_EQ_STR(str(w, "type"), "welcome");
    snprintf(pos->epoch, sizeof pos->epoch, "%s", str(u, "epoch"));
    pos->offset = (uint64_t)num(u, "offset");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(u, "recovered");
    int rec = r ? cJSON_IsTrue(r) : -1;
    cJSON_Delete(w);
    return rec;
}

static void test_positions_and_offline_recovery(void) {
    struct world w;
    struct peer alice, old, bob, back;
    struct hist_pos pos;
    world_start_history(&w, 0, 100);
    CHECK_EQ_INT(open_v2(&w, &alice, "alice", NULL), HUB_OK);
    CHECK_EQ_INT(welcome_user(&alice, &pos), -1);
    CHECK_EQ_INT(pos.offset, 0);
    CHECK_EQ_INT(peer_open(&w, &old, "alice"), HUB_OK); /* protocol 1: unchanged frames */
    drain(&old);
    struct frame *f = text("{\"type\":\"message\",\"from\":\"bob\",\"to\":\"alice\",\"data\":1}");
    CHECK_EQ_INT(hub_send_user(w.hub, "alice", f), 2);
    frame_unref(f);
    EXPECT(&alice, "{\"type\":\"message\",\"epoch\":\"%s\",\"offset\":1,\"from\":\"bob\",\"to\":\"alice\",\"data\":1}", pos.epoch);
    EXPECT(&old, "{\"type\":\"message\",\"from\":\"bob\",\"to\":\"alice\",\"data\":1}");
    pos.offset = 1;
    peer_close(&w, &alice, 1);
    peer_close(&w, &old, 1);
    /* alice has no connection: the send answers "not online" (-1), and the message is kept */
    f = text("{\"type\":\"message\",\"from\":\"bob\",\"to\":\"alice\",\"data\":2}");
    CHECK_EQ_INT(hub_send_user(w.hub, "alice", f), -1);
    frame_unref(f);
    CHECK_EQ_INT(open_v2(&w, &back, "alice", &pos), HUB_OK);
    struct hist_pos now;
    CHECK_EQ_INT(welcome_user(&back, &now), 1);
    CHECK_EQ_INT(now.offset, 2);
    EXPECT(&back, "{\"type\":\"message\",\"epoch\":\"%s\",\"offset\":2,\"from\":\"bob\",\"to\":\"alice\",\"data\":2}", pos.epoch);
    EXPECT_NONE(&back);
    /* a position from another epoch: recovered false, nothing replayed */
    struct hist_pos wrong = {"ZZZZZZZZ", 1};
    CHECK_EQ_INT(open_v2(&w, &bob, "alice", &wrong), HUB_OK);
    CHECK_EQ_INT(welcome_user(&bob, &now), 0);
    EXPECT_NONE(&bob);
    peer_close(&w, &bob, 1);
    peer_close(&w, &back, 1);
    world_stop(&w);
}

static void test_join_recovery(void) {
    struct world w;
    struct peer alice, bob;
    struct hist_pos pos;
    world_start_history(&w, 0, 100);
    CHECK_EQ_INT(open_v2(&w, &alice, "alice", NULL), HUB_OK);
    CHECK_EQ_INT(peer_open(&w, &bob, "bob"), HUB_OK);
    drain(&alice);
    drain(&bob);
    CHECK_EQ_INT(hub_join(w.hub, &bob.c, "lobby", NULL), HUB_OK);
    EXPECT_NONE(&bob); /* protocol 1: no joined */
    CHECK_EQ_INT(hub_join(w.hub, &alice.c, "lobby", NULL), HUB_OK);
    cJSON *j = next_json(&alice);
    CHECK_EQ_STR(str(j, "type"), "joined");
    CHECK_EQ_STR(str(j, "room"), "lobby");
    CHECK_EQ_INT(num(j, "offset"), 0);
    CHECK(cJSON_GetObjectItemCaseSensitive(j, "recovered") == NULL);
    snprintf(pos.epoch, sizeof pos.epoch, "%s", str(j, "epoch"));
    pos.offset = 0;
    cJSON_Delete(j);
    CHECK_EQ_INT(hub_leave(w.hub, &alice.c, "lobby"), HUB_OK);
    for (int i = 1; i <= 2; i++) {
        char s[96];
        snprintf(s, sizeof s, "{\"type\":\"message\",\"from\":\"bob\",\"room\":\"lobby\",\"data\":%d}", i);
        struct frame *f = text(s);
        CHECK_EQ_INT(hub_publish(w.hub, &bob.c, "lobby", f), 0);
        frame_unref(f);
    }
    CHECK_EQ_INT(hub_join_from(w.hub, &alice.c, "lobby", &pos, NULL), HUB_OK);
    EXPECT(&alice, "{\"type\":\"joined\",\"room\":\"lobby\",\"epoch\":\"%s\",\"offset\":2,\"recovered\":true}", pos.epoch);
    EXPECT(&alice, "{\"type\":\"message\",\"epoch\":\"%s\",\"offset\":1,\"from\":\"bob\",\"room\":\"lobby\",\"data\":1}", pos.epoch);
    EXPECT(&alice, "{\"type\":\"message\",\"epoch\":\"%s\",\"offset\":2,\"from\":\"bob\",\"room\":\"lobby\",\"data\":2}", pos.epoch);
    EXPECT_NONE(&alice);
    peer_close(&w, &alice, 1);
    peer_close(&w, &bob, 1);
    world_stop(&w);
}

/* ---- exactly once across reconnects, with a sender that never pauses ---- */

#define BLINK_MESSAGES 20000
static struct world blink;
static int sender_done;

static void *sender(void *arg) {
    for (int i = 1; i <= BLINK_MESSAGES; i++) {
        char s[96];
        snprintf(s, sizeof s, "{\"type\":\"message\",\"from\":\"bob\",\"to\":\"alice\",\"data\":%d}", i);
        struct frame *f = text(s);
        hub_send_user(blink.hub, "alice", f);
        frame_unref(f);
    }
    __atomic_store_n(&sender_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Reads what a connection got after its welcome; each message must be the next one. Returns how many
 * it checked, or -1 at the first out of place. */
static long read_in_order(struct peer *p, struct hist_pos *pos, int *expect) {
    long n = 0;
    cJSON *j;
    while ((j = next_json(p))) {
        int ok = strcmp(str(j, "type"), "message") == 0 && num(j, "data") == *expect &&
                 (uint64_t)num(j, "offset") == pos->offset + 1 && strcmp(str(j, "epoch"), pos->epoch) == 0;
        cJSON_Delete(j);
        if (!ok) return -1;
        pos->offset++;
        (*expect)++;
        n++;
    }
    return n;
}

/* Drops the connection as a blink does (what was queued and not yet written is lost with it), then
 * reads what had arrived. */
static long drop_and_read(struct peer *p, struct hist_pos *pos, int *expect) {
    outbox_detach(&p->c.out);
    hub_remove(blink.hub, &p->c);
    long n = read_in_order(p, pos, expect);
    outq_destroy(&p->c.out);
    free(p->buf);
    pthread_mutex_destroy(&p->lock);
    return n;
}

static void test_exactly_once_across_reconnects(void) {
    world_start_history(&blink, 0, BLINK_MESSAGES); /* enough history that every reconnect recovers */
    struct peer p;
    struct hist_pos pos;
    CHECK_EQ_INT(open_v2(&blink, &p, "alice", NULL), HUB_OK);
    welcome_user(&p, &pos);
    pthread_t t;
    pthread_create(&t, NULL, sender, NULL);
    int expect = 1, reconnects = 0, ok = 1, recovered = 1;
    for (;;) {
        int done = __atomic_load_n(&sender_done, __ATOMIC_ACQUIRE);
        ok &= drop_and_read(&p, &pos, &expect) >= 0;
        struct hist_pos at = pos, now;
        CHECK_EQ_INT(open_v2(&blink, &p, "alice", &at), HUB_OK);
        recovered &= welcome_user(&p, &now) == 1;
        reconnects++;
        if (done || !ok) break;
    }
    pthread_join(t, NULL);
    ok &= drop_and_read(&p, &pos, &expect) >= 0;
    CHECK(ok);
    CHECK(recovered);
    CHECK_EQ_INT(expect, BLINK_MESSAGES + 1); /* each one, once, in order */
    CHECK(reconnects > 1);
    world_stop(&blink);
}

int main(void) {
    test_positions_and_offline_recovery();
    test_join_recovery();
    test_exactly_once_across_reconnects();
    return check_done();
}

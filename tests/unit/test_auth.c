/* test_auth: who a connection is (app/identity/auth.c), with the hub's pending connections and deadlines.
 *
 * Tokens are minted with jwt_mint_hs256 for a verifier over the same secret (test_jwt checks the
 * verifier itself against independently minted tokens; the integration tests use PyJWT). Covers: open
 * mode, the handshake's token sources (?token=, Authorization: Bearer, which wins, other schemes
 * ignored), refusals and their metric, a pending connection (listed but invisible, then named by
 * hello, with exp in its welcome), the 4408 and 4401 deadlines fired by hub_tick, refresh (same user
 * and later only), and the rooms claim. */
#include <time.h>

#include "check.h"
#include "peer.h"

#include "auth.h"

#define SECRET "unit-test-secret-0123456789abcdef"

static struct jwt_verifier *verifier(void) {
    struct jwt_settings s = {SECRET, strlen(SECRET), NULL, NULL, NULL};
    char err[128] = "";
    struct jwt_verifier *v = jwt_verifier_new(&s, err, sizeof err);
    CHECK(v != NULL);
    return v;
}

/* A token for sub, expiring in `exp_in` seconds, with up to two rooms. */
static const char *mint(char *out, size_t cap, const char *sub, int64_t exp_in, const char *room1, const char *room2) {
    const char *rooms[] = {room1, room2};
    int64_t now = (int64_t)time(NULL);
    int n = jwt_mint_hs256(SECRET, strlen(SECRET), sub, now, now + exp_in, rooms, room2 ? 2 : room1 ? 1 : 0, out, cap);
    CHECK(n > 0);
    return out;
}

static void test_open_mode(void) {
    struct auth_conn *a = (struct auth_conn *)1;
    enum jwt_error why = JWT_EXPIRED;
    CHECK_EQ_INT(auth_handshake(NULL, "token=x", "Bearer y", &a, &why), AUTH_OPEN);
    CHECK(a == NULL);
    CHECK_EQ_INT(why, JWT_OK);
    struct conn c = {0};
    CHECK(auth_attach(&c, NULL) == NULL);
    CHECK(!c.pending && c.deadline.at_ms == 0);
    CHECK(auth_room_allowed(&c, "anything"));
}

static void test_handshake_sources(void) {
    struct jwt_verifier *v = verifier();
    char tok[1024], query[1200], header[1200];
    struct auth_conn *a;
    enum jwt_error why;
    mint(tok, sizeof tok, "alice", 300, NULL, NULL);
    CHECK_EQ_INT(auth_handshake(v, NULL, NULL, &a, &why), AUTH_PENDING);
    auth_conn_free(a);
    CHECK_EQ_INT(auth_handshake(v, "user=bob", "Basic YWxpY2U6eA==", &a, &why), AUTH_PENDING); /* not Bearer */
    auth_conn_free(a);
    snprintf(query, sizeof query, "user=bob&token=%s&x=1", tok);
    CHECK_EQ_INT(auth_handshake(v, query, NULL, &a, &why), AUTH_VERIFIED);
    struct conn c = {0};
    CHECK_EQ_STR(auth_attach(&c, a), "alice"); /* ?user=bob does not count */
    CHECK(c.exp_s > (int64_t)time(NULL));
    CHECK_EQ_INT(c.deadline.code, AUTH_CLOSE_EXPIRED);
    auth_conn_free(c.auth);
    snprintf(header, sizeof header, "bearer  %s", tok);
    CHECK_EQ_INT(auth_handshake(v, "token=garbage", header, &a, &why), AUTH_VERIFIED); /* the header wins */
    auth_conn_free(a);
    CHECK_EQ_INT(auth_handshake(v, "token=", NULL, &a, &why), AUTH_REFUSED);
    CHECK(a == NULL);
    CHECK_EQ_INT(why, JWT_TOO_LARGE);
    mint(tok, sizeof tok, "alice", -60, NULL, NULL);
    snprintf(header, sizeof header, "Bearer %s", tok);
    CHECK_EQ_INT(auth_handshake(v, NULL, header, &a, &why), AUTH_REFUSED);
    CHECK_EQ_INT(why, JWT_EXPIRED);
    CHECK_EQ_INT(auth_handshake(v, "token=%zz", NULL, &a, &why), AUTH_REFUSED);
    CHECK_EQ_INT(why, JWT_MALFORMED);
    jwt_verifier_free(v);
}

static void test_pending_then_hello(void) {
    struct jwt_verifier *v = verifier();
    struct world w;
    struct peer alice, anon;
    struct auth_conn *a;
    enum jwt_error why;
    char tok[1024], msg[AUTH_MESSAGE_MAX];
    enum sb_error code;
    world_start(&w, 1);
    CHECK_EQ_INT(peer_open(&w, &alice, "alice"), HUB_OK);
    drain(&alice);
    memset(&anon, 0, sizeof anon);
    pthread_mutex_init(&anon.lock, NULL);
    hub_conn_init(w.hub, &anon.c, NULL, 0, &anon, PEER_OUTBOX);
    CHECK_EQ_INT(auth_handshake(v, NULL, NULL, &a, &why), AUTH_PENDING);
    CHECK(auth_attach(&anon.c, a) == NULL);
    CHECK(anon.c.pending);
    CHECK_EQ_INT(anon.c.deadline.code, AUTH_CLOSE_TIMEOUT);
    int64_t left = anon.c.deadline.at_ms - hub_now_ms();
    CHECK(left > AUTH_TIMEOUT_MS - 1000 && left <= AUTH_TIMEOUT_MS);
    CHECK_EQ_INT(hub_add(w.hub, &anon.c), HUB_OK);
    EXPECT_NONE(&anon);  /* no welcome */
    EXPECT_NONE(&alice); /* no presence */
    CHECK_EQ_INT(hub_count(w.hub), 2);
    struct frame *f = frame_new(WS_OP_TEXT, "all", 3);
    CHECK_EQ_INT(hub_broadcast(w.hub, &alice.c, f), 0);
    frame_unref(f);
    f = frame_new(WS_OP_TEXT, "x", 1);
    CHECK_EQ_INT(hub_send_user(w.hub, anon.c.user, f), -1);
    frame_unref(f);
    hub_reply_users(w.hub, &alice.c, NULL);
    EXPECT(&alice, "{\"type\":\"users\",\"users\":[\"alice\"]}");
    /* a bad token: unauthorized with the reason, still pending */
    mint(tok, sizeof tok, "carol", -60, NULL, NULL);
    CHECK_EQ_INT(auth_hello(w.hub, &anon.c, tok, strlen(tok), &code, msg, sizeof msg), -1);
    CHECK_EQ_INT(code, ERR_UNAUTHORIZED);
    CHECK_EQ_STR(msg, jwt_error_text(JWT_EXPIRED));
    CHECK(anon.c.pending);
    EXPECT_NONE(&anon);
    /* a good one: welcome with exp, presence to the others, the deadline becomes the expiry */
    mint(tok, sizeof tok, "carol", 300, NULL, NULL);
    CHECK_EQ_INT(auth_hello(w.hub, &anon.c, tok, strlen(tok), &code, msg, sizeof msg), 0);
    CHECK(!anon.c.pending && anon.c.named);
    CHECK_EQ_STR(anon.c.user, "carol");
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"carol\",\"exp\":%lld,\"users\":[\"alice\",\"carol\"]}",
           anon.c.id, (long long)anon.c.exp_s);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"carol\"}");
    CHECK_EQ_INT(anon.c.deadline.code, AUTH_CLOSE_EXPIRED);
    CHECK(anon.c.deadline.at_ms > hub_now_ms() + 300 * 1000);
    /* hello again: refused, nothing changes */
    CHECK_EQ_INT(auth_hello(w.hub, &anon.c, tok, strlen(tok), &code, msg, sizeof msg), -1);
    CHECK_EQ_INT(code, ERR_BAD_REQUEST);
    peer_close(&w, &anon, 1);
    auth_conn_free(anon.c.auth);
    peer_close(&w, &alice, 1);
    world_stop(&w);
    jwt_verifier_free(v);
}

/* A connection registered the way ws.c does, from a handshake with `query`. */
static void open_with(struct world *w, struct peer *p, const struct jwt_verifier *v, const char *query) {
    struct auth_conn *a;
    enum jwt_error why;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(w->hub, &p->c, NULL, 0, p, PEER_OUTBOX);
    CHECK(auth_handshake(v, query, NULL, &a, &why) != AUTH_REFUSED);
    const char *user = auth_attach(&p->c, a);
    if (user) {
        snprintf(p->c.user, sizeof p->c.user, "%s", user);
        p->c.named = 1;
    }
    CHECK_EQ_INT(hub_add(w->hub, &p->c), HUB_OK);
}

static void close_with(struct world *w, struct peer *p) {
    peer_close(w, p, 1);
    auth_conn_free(p->c.auth);
}

static void test_deadlines(void) {
    struct jwt_verifier *v = verifier();
    struct world w;
    struct peer anon, alice;
    char tok[1024], query[1100];
    world_start(&w, 1);
    open_with(&w, &anon, v, NULL);
    snprintf(query, sizeof query, "token=%s", mint(tok, sizeof tok, "alice", 2, NULL, NULL));
    open_with(&w, &alice, v, query);
    drain(&alice);
    int64_t now = hub_now_ms();
    hub_tick(w.hub, now + 2000);
    CHECK(!outq_closing(&anon.c.out));
    CHECK(!outq_closing(&alice.c.out)); /* exp, but not exp + 5 s leeway */
    hub_tick(w.hub, now + (2 + JWT_LEEWAY_S) * 1000 + 1000);
    CHECK(outq_closing(&alice.c.out));
    CHECK_EQ_INT(alice.c.out.close_code, AUTH_CLOSE_EXPIRED);
    CHECK(!outq_closing(&anon.c.out));
    hub_tick(w.hub, now + AUTH_TIMEOUT_MS + 10);
    CHECK(outq_closing(&anon.c.out));
    CHECK_EQ_INT(anon.c.out.close_code, AUTH_CLOSE_TIMEOUT);
    close_with(&w, &anon);
    close_with(&w, &alice);
    world_stop(&w);
    jwt_verifier_free(v);
}

static void test_refresh(void) {
    struct jwt_verifier *v = verifier();
    struct world w;
    struct peer bob;
    char tok[1024], query[1100], msg[AUTH_MESSAGE_MAX];
    world_start(&w, 1);
    snprintf(query, sizeof query, "token=%s", mint(tok, sizeof tok, "bob", 2, NULL, NULL));
    open_with(&w, &bob, v, query);
    struct hub_deadline first = bob.c.deadline;
    mint(tok, sizeof tok, "dave", 600, NULL, NULL);
    CHECK_EQ_INT(auth_refresh(w.hub, &bob.c, tok, strlen(tok), msg, sizeof msg), -1);
    CHECK_EQ_STR(msg, "the token is for another user");
    mint(tok, sizeof tok, "bob", 1, NULL, NULL);
    CHECK_EQ_INT(auth_refresh(w.hub, &bob.c, tok, strlen(tok), msg, sizeof msg), -1);
    CHECK_EQ_STR(msg, "the token must expire later than the current one");
    CHECK_EQ_INT(auth_refresh(w.hub, &bob.c, "x.y.z", 5, msg, sizeof msg), -1);
    CHECK_EQ_INT(bob.c.deadline.at_ms, first.at_ms);
    mint(tok, sizeof tok, "bob", 600, "lobby", NULL);
    CHECK(auth_room_allowed(&bob.c, "elsewhere"));
    CHECK_EQ_INT(auth_refresh(w.hub, &bob.c, tok, strlen(tok), msg, sizeof msg), 0);
    CHECK(bob.c.deadline.at_ms > first.at_ms + 500 * 1000);
    CHECK(!auth_room_allowed(&bob.c, "elsewhere")); /* the new rooms claim applies */
    CHECK(auth_room_allowed(&bob.c, "lobby"));
    hub_tick(w.hub, first.at_ms + 1000);
    CHECK(!outq_closing(&bob.c.out));
    close_with(&w, &bob);
    world_stop(&w);
    jwt_verifier_free(v);
}

static void test_rooms_claim(void) {
    struct jwt_verifier *v = verifier();
    struct world w;
    struct peer p;
    char tok[1024], query[1100];
    world_start(&w, 1);
    snprintf(query, sizeof query, "token=%s", mint(tok, sizeof tok, "erin", 300, "lobby", "team-7.*"));
    open_with(&w, &p, v, query);
    CHECK(auth_room_allowed(&p.c, "lobby"));
    CHECK(auth_room_allowed(&p.c, "team-7.alpha"));
    CHECK(!auth_room_allowed(&p.c, "team-8"));
    CHECK(!auth_room_allowed(&p.c, "lobby2"));
    close_with(&w, &p);
    world_stop(&w);
    jwt_verifier_free(v);
}

static void test_expiry_deadline(void) {
    int64_t now = (int64_t)time(NULL);
    struct hub_deadline d = auth_expiry_deadline(now + 10);
    int64_t left = d.at_ms - hub_now_ms();
    CHECK(left > (10 + JWT_LEEWAY_S - 2) * 1000 && left <= (10 + JWT_LEEWAY_S + 1) * 1000);
    CHECK_EQ_INT(d.code, AUTH_CLOSE_EXPIRED);
    CHECK_EQ_STR(d.reason, "token expired");
    d = auth_expiry_deadline(now - 3600); /* long gone: due at once, never 0 (= none) */
    CHECK(d.at_ms != 0 && d.at_ms <= hub_now_ms());
}

int main(void) {
    test_open_mode();
    test_handshake_sources();
    test_pending_then_hello();
    test_deadlines();
    test_refresh();
    test_rooms_claim();
    test_expiry_deadline();
    return check_done();
}

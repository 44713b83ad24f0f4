/* test_router: the JSON command protocol of docs/PROTOCOL.md (app/proto/router.c).
 *
 * The router runs over a real hub and outbox; each connection is an in-memory peer (peer.h) and
 * the tests assert the exact JSON frames every connection receives, in order. First the session blocks
 * of PROTOCOL.md, one test each; then every command's edge and every error code: bad_json (including
 * nesting, and data that is not strict JSON), bad_request in all its causes, unknown_type, not_found,
 * too_large, rate_limited (produced by ws.c, so router_error is called directly), unauthorized; acks
 * with number and string ids; data relayed byte for byte; last, --presence rooms's commands. Each
 * message is handed to the router in a buffer of exactly its length, with no NUL after it, as CivetWeb
 * does, so a read past the end shows up under ASan. */
#include <cjson/cJSON.h>

#include <time.h>

#include "auth.h"
#include "check.h"
#include "metrics.h"
#include "peer.h"
#include "router.h"
#include "utf8.h"

static struct world w;

static void say_len(struct peer *p, const char *text, size_t len) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, text, len);
    router_handle(w.hub, &p->c, copy, len);
    free(copy);
}

static void say(struct peer *p, const char *json) { say_len(p, json, strlen(json)); }

/* Opens a named connection and reads away its welcome (and everyone else's presence). */
static void open_quiet(struct peer *p, const char *user, struct peer **others, size_t n) {
    CHECK_EQ_INT(peer_open(&w, p, user), HUB_OK);
    drain(p);
    for (size_t i = 0; i < n; i++) drain(others[i]);
}

/* An error reply that echoes an id (given as its JSON text). */
#define ERR_ID(code, msg, id) "{\"type\":\"error\",\"code\":\"" code "\",\"message\":\"" msg "\",\"id\":" id "}"

/* ---- The session blocks of docs/PROTOCOL.md ---- */

/* The opening every two-user example of docs/PROTOCOL.md shares: alice, then bob, with the welcomes
 * and alice's presence event they bring. */
static void open_alice_bob(struct peer *alice, struct peer *bob) {
    peer_open(&w, alice, "alice");
    EXPECT(alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\"]}", alice->c.id);
    peer_open(&w, bob, "bob");
    EXPECT(bob, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"users\":[\"alice\",\"bob\"]}", bob->c.id);
    EXPECT(alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\"}");
}

static void test_doc_targeted_send(void) {
    struct peer alice, bob;
    open_alice_bob(&alice, &bob);
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":{\"text\":\"hi bob\"},\"from\":\"mallory\"}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"text\":\"hi bob\"}}");
    EXPECT_NONE(&alice); /* no id, no ack */
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":\"again\",\"id\":7}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":\"again\"}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":7,\"delivered\":1}");
    peer_close(&w, &bob, 1);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    EXPECT_NONE(&alice);
    peer_close(&w, &alice, 1);
}

static void test_doc_data(void) {
    struct peer alice, bob;
    open_alice_bob(&alice, &bob);
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":{\"order\":9007199254740993,\"price\":\"12.30\"}}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":{\"order\":9007199254740993,\"price\":\"12.30\"}}");
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":{\"qty\":01},\"id\":8}");
    EXPECT(&alice, ERR_ID("bad_json", "send data is not strict JSON (RFC 8259)", "8"));
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_doc_two_tabs(void) {
    struct peer bob, bob2, alice;
    peer_open(&w, &bob, "bob");
    EXPECT(&bob, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"users\":[\"bob\"]}", bob.c.id);
    peer_open(&w, &bob2, "bob");
    EXPECT(&bob2, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"users\":[\"bob\"]}", bob2.c.id);
    peer_open(&w, &alice, "alice");
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\",\"bob\"]}",
           alice.c.id);
    EXPECT(&bob, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"alice\"}");
    EXPECT(&bob2, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"alice\"}");
    say(&alice, "{\"type\":\"send\",\"to\":[\"bob\"],\"data\":\"to both tabs\",\"id\":\"m1\"}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":\"to both tabs\"}");
    EXPECT(&bob2, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":\"to both tabs\"}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":\"m1\",\"delivered\":2}");
    EXPECT_NONE(&bob);
    EXPECT_NONE(&bob2);
    peer_close(&w, &alice, 1);
    peer_close(&w, &bob2, 1);
    peer_close(&w, &bob, 1);
}

static void test_doc_broadcast_users_ping(void) {
    struct peer alice, bob;
    open_alice_bob(&alice, &bob);
    say(&bob, "{\"type\":\"broadcast\",\"data\":\"hello all\",\"id\":1}");
    EXPECT(&alice, "{\"type\":\"message\",\"from\":\"bob\",\"data\":\"hello all\"}");
    EXPECT(&bob, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    say(&bob, "{\"type\":\"users\"}");
    EXPECT(&bob, "{\"type\":\"users\",\"users\":[\"alice\",\"bob\"]}");
    say(&bob, "{\"type\":\"ping\",\"id\":2}");
    EXPECT(&bob, "{\"type\":\"pong\"}");
    EXPECT(&bob, "{\"type\":\"ack\",\"id\":2,\"delivered\":0}");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_doc_rooms(void) {
    struct peer alice, bob;
    open_alice_bob(&alice, &bob);
    say(&alice, "{\"type\":\"join\",\"room\":\"lobby\",\"id\":1}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":1,\"delivered\":0}");
    say(&bob, "{\"type\":\"join\",\"room\":\"lobby\",\"id\":5}");
    EXPECT(&bob, "{\"type\":\"ack\",\"id\":5,\"delivered\":0}");
    say(&alice, "{\"type\":\"publish\",\"room\":\"lobby\",\"data\":\"hi room\",\"id\":2}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"room\":\"lobby\",\"data\":\"hi room\"}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":2,\"delivered\":1}");
    say(&bob, "{\"type\":\"leave\",\"room\":\"lobby\"}");
    say(&bob, "{\"type\":\"publish\",\"room\":\"lobby\",\"data\":\"still here?\",\"id\":3}");
    EXPECT(&bob, "{\"type\":\"error\",\"code\":\"unauthorized\",\"message\":\"not a member of room lobby\",\"id\":3}");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&bob);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_doc_hello(void) {
    struct peer alice, anon;
    peer_open(&w, &alice, "alice");
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\"]}", alice.c.id);
    peer_open(&w, &anon, NULL);
    const char *id = anon.c.id;
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"%s\",\"users\":[\"alice\",\"%s\"]}", id, id, id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"%s\"}", id);
    say(&anon, "{\"type\":\"hello\",\"user\":\"carol\"}");
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"%s\"}", id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"carol\"}");
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"carol\",\"users\":[\"alice\",\"carol\"]}", id);
    say(&anon, "{\"type\":\"hello\",\"user\":\"dave\",\"id\":9}");
    EXPECT(&anon, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"this connection already has a name\","
                  "\"id\":9}");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&anon);
    peer_close(&w, &anon, 1);
    peer_close(&w, &alice, 1);
}

static void test_doc_errors(void) {
    struct peer alice;
    peer_open(&w, &alice, "alice");
    EXPECT(&alice, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"alice\",\"users\":[\"alice\"]}", alice.c.id);
    say(&alice, "not json");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"bad_json\",\"message\":\"message is not valid JSON\"}");
    say(&alice, "[1,2]");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"message must be a JSON object\"}");
    say(&alice, "{\"type\":\"dance\",\"id\":1}");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"unknown_type\",\"message\":\"unknown type dance\",\"id\":1}");
    say(&alice, "{\"type\":\"send\",\"data\":\"x\",\"id\":2}");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"send needs to: a user name or an "
                   "array of them\",\"id\":2}");
    say(&alice, "{\"type\":\"send\",\"to\":\"nobody\",\"data\":\"x\",\"id\":3}");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"not_found\",\"message\":\"not online: nobody\",\"id\":3}");
    say(&alice, "{\"type\":\"join\",\"room\":\"no spaces\"}");
    EXPECT(&alice, "{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"invalid room name\"}");
    say(&alice, "{\"type\":\"ping\"}");
    EXPECT(&alice, "{\"type\":\"pong\"}");
    EXPECT_NONE(&alice);
    peer_close(&w, &alice, 1);
}

/* ---- Beyond the examples ---- */

#define ERR(code, msg) "{\"type\":\"error\",\"code\":\"" code "\",\"message\":\"" msg "\"}"

static void test_bad_json(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    const char *bad[] = {"", " ", "{", "{\"type\":\"ping\"", "{'type':'ping'}", "{\"type\":ping}", "nul",
                         "{\"type\":\"ping\",}", "\"unterminated"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        say(&a, bad[i]);
        if (!EXPECT(&a, ERR("bad_json", "message is not valid JSON"))) fprintf(stderr, "    input '%s'\n", bad[i]);
    }
    say_len(&a, "", 0);
    EXPECT(&a, ERR("bad_json", "message is not valid JSON"));
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

/* "Each message is one JSON object in one text message": anything after the object is not JSON. */
static void test_trailing_data(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    const char *bad[] = {"{\"type\":\"ping\"} x", "{\"type\":\"ping\"}{\"type\":\"ping\"}", "{\"type\":\"ping\"}]",
                         "[1,2]garbage"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        say(&a, bad[i]);
        if (!EXPECT(&a, ERR("bad_json", "message is not valid JSON"))) fprintf(stderr, "    input '%s'\n", bad[i]);
        drain(&a);
    }
    say_len(&a, "{\"type\":\"ping\"}\0", 16); /* a NUL is valid UTF-8, and not JSON */
    EXPECT(&a, ERR("bad_json", "message is not valid JSON"));
    drain(&a);
    say(&a, " \t\r\n{\"type\":\"ping\"}\r\n "); /* whitespace around the object is fine */
    EXPECT(&a, "{\"type\":\"pong\"}");
    say_len(&a, "{\"type\":\"ping\"}GARBAGE", 15); /* only `len` bytes are the message */
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

/* Nesting `depth` levels: {"type":"ping","d":[[...]]} with the object as level 1. */
static char *nested(int depth, const char *type) {
    size_t cap = 2 * (size_t)depth + 64;
    char *s = malloc(cap);
    int n = snprintf(s, cap, "{\"type\":\"%s\",\"data\":", type);
    for (int i = 1; i < depth; i++) s[n++] = '[';
    s[n++] = '1';
    for (int i = 1; i < depth; i++) s[n++] = ']';
    s[n++] = '}';
    s[n] = '\0';
    return s;
}

static void test_nesting(void) {
    struct peer a, b;
    open_quiet(&a, "alice", NULL, 0);
    open_quiet(&b, "bob", (struct peer *[]){&a}, 1);
    char *s = nested(100, "broadcast");
    say(&a, s);
    EXPECT(&a, ERR("bad_json", "message is nested more than 64 levels deep"));
    free(s);
    s = nested(ROUTER_MAX_DEPTH + 1, "broadcast");
    say(&a, s);
    EXPECT(&a, ERR("bad_json", "message is nested more than 64 levels deep"));
    free(s);
    EXPECT_NONE(&b);
    s = nested(ROUTER_MAX_DEPTH, "broadcast"); /* exactly the limit: delivered */
    say(&a, s);
    char *inner = strstr(s, "\"data\":") + 7;
    inner[strlen(inner) - 1] = '\0';
    EXPECT(&b, "{\"type\":\"message\",\"from\":\"alice\",\"data\":%s}", inner);
    free(s);
    /* brackets inside strings are not nesting */
    char text[400] = "{\"type\":\"ping\",\"x\":\"";
    for (int i = 0; i < 100; i++) strcat(text, "[{");
    strcat(text, "\\\"]\"}");
    say(&a, text);
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT_NONE(&a);
    peer_close(&w, &b, 1);
    peer_close(&w, &a, 1);
}

static void test_bad_request(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    const char *not_object[] = {"[]", "\"text\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++) {
        say(&a, not_object[i]);
        EXPECT(&a, ERR("bad_request", "message must be a JSON object"));
    }
    say(&a, "{}");
    EXPECT(&a, ERR("bad_request", "type must be a string"));
    say(&a, "{\"type\":5,\"id\":\"t\"}");
    EXPECT(&a, ERR_ID("bad_request", "type must be a string", "\"t\""));
    say(&a, "{\"type\":\"PING\"}"); /* types are case-sensitive */
    EXPECT(&a, ERR("unknown_type", "unknown type PING"));
    say(&a, "{\"type\":\"send\",\"to\":5,\"data\":1}");
    EXPECT(&a, ERR("bad_request", "send needs to: a user name or an array of them"));
    say(&a, "{\"type\":\"send\",\"to\":[],\"data\":1}");
    EXPECT(&a, ERR("bad_request", "send needs to: a user name or an array of them"));
    say(&a, "{\"type\":\"send\",\"to\":[\"alice\",3],\"data\":1}");
    EXPECT(&a, ERR("bad_request", "send needs to: a user name or an array of them"));
    say(&a, "{\"type\":\"send\",\"to\":{\"user\":\"alice\"},\"data\":1}");
    EXPECT(&a, ERR("bad_request", "send needs to: a user name or an array of them"));
    say(&a, "{\"type\":\"send\",\"to\":\"bad name\",\"data\":1,\"id\":4}");
    EXPECT(&a, ERR_ID("bad_request", "invalid user name", "4"));
    say(&a, "{\"type\":\"send\",\"to\":[\"ok\",\"\"],\"data\":1}");
    EXPECT(&a, ERR("bad_request", "invalid user name"));
    say(&a, "{\"type\":\"send\",\"to\":\"alice\"}");
    EXPECT(&a, ERR("bad_request", "send needs data"));
    say(&a, "{\"type\":\"broadcast\",\"id\":5}");
    EXPECT(&a, ERR_ID("bad_request", "broadcast needs data", "5"));
    say(&a, "{\"type\":\"join\"}");
    EXPECT(&a, ERR("bad_request", "invalid room name"));
    say(&a, "{\"type\":\"join\",\"room\":7}");
    EXPECT(&a, ERR("bad_request", "invalid room name"));
    say(&a, "{\"type\":\"leave\",\"room\":\"\"}");
    EXPECT(&a, ERR("bad_request", "invalid room name"));
    say(&a, "{\"type\":\"publish\",\"room\":\"r/1\",\"data\":1}");
    EXPECT(&a, ERR("bad_request", "invalid room name"));
    say(&a, "{\"type\":\"join\",\"room\":\"lobby\"}");
    say(&a, "{\"type\":\"publish\",\"room\":\"lobby\"}");
    EXPECT(&a, ERR("bad_request", "publish needs data"));
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

static void test_ids(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    say(&a, "{\"type\":\"ping\",\"id\":\"req-1\"}");
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":\"req-1\",\"delivered\":0}");
    say(&a, "{\"type\":\"ping\",\"id\":-3.5}");
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":-3.5,\"delivered\":0}");
    say(&a, "{\"type\":\"ping\",\"id\":0}");
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":0,\"delivered\":0}");
    say(&a, "{\"type\":\"ping\",\"id\":\"\"}");
    EXPECT(&a, "{\"type\":\"pong\"}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":\"\",\"delivered\":0}");
    char msg[256], id64[ROUTER_MAX_ID + 2];
    memset(id64, 'i', ROUTER_MAX_ID);
    id64[ROUTER_MAX_ID] = '\0';
    snprintf(msg, sizeof msg, "{\"type\":\"users\",\"id\":\"%s\"}", id64);
    say(&a, msg);
    EXPECT(&a, "{\"type\":\"users\",\"users\":[\"alice\"]}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":\"%s\",\"delivered\":0}", id64);
    strcat(id64, "i"); /* 65 characters */
    snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"id\":\"%s\"}", id64);
    say(&a, msg);
    EXPECT(&a, ERR("bad_request", "id must be a number or a string of at most 64 characters"));
    const char *bad_ids[] = {"true", "null", "[1]", "{\"n\":1}"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"ping\",\"id\":%s}", bad_ids[i]);
        say(&a, msg);
        EXPECT(&a, ERR("bad_request", "id must be a number or a string of at most 64 characters"));
    }
    say(&a, "{\"type\":\"nope\",\"id\":true}"); /* the id is checked first */
    EXPECT(&a, ERR("bad_request", "id must be a number or a string of at most 64 characters"));
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

static void test_unknown_type(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    char msg[400], longtype[201];
    memset(longtype, 't', 200);
    longtype[200] = '\0';
    snprintf(msg, sizeof msg, "{\"type\":\"%s\",\"id\":\"x\"}", longtype);
    say(&a, msg);
    longtype[64] = '\0'; /* the message quotes at most 64 characters of it */
    EXPECT(&a, "{\"type\":\"error\",\"code\":\"unknown_type\",\"message\":\"unknown type %s\",\"id\":\"x\"}", longtype);
    say(&a, "{\"type\":\"\"}");
    EXPECT(&a, ERR("unknown_type", "unknown type "));
    /* cut to 64 bytes inside a two-byte character: the reply must still be UTF-8, or a browser
     * fails the connection (1007) on it */
    memset(longtype, 't', 63);
    strcpy(longtype + 63, "\xC3\xA9");
    snprintf(msg, sizeof msg, "{\"type\":\"%s\"}", longtype);
    say(&a, msg);
    int op;
    char *s = NULL;
    size_t n = 0;
    CHECK(peer_next(&a, &op, &s, &n) && strstr(s, "\"code\":\"unknown_type\""));
    CHECK(s && utf8_valid((const uint8_t *)s, n));
    free(s);
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

static void test_send_partial(void) {
    struct peer alice, bob;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    say(&alice, "{\"type\":\"send\",\"to\":[\"ghost\",\"bob\",\"spook\"],\"data\":[1,{\"k\":null}],\"id\":5}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":[1,{\"k\":null}]}");
    EXPECT(&alice, ERR_ID("not_found", "not online: ghost, spook", "5")); /* and no ack */
    EXPECT_NONE(&alice);
    /* duplicates in the list are delivered once; sending to yourself reaches you */
    say(&alice, "{\"type\":\"send\",\"to\":[\"bob\",\"bob\",\"alice\"],\"data\":true,\"id\":\"d\"}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":true}");
    EXPECT_NONE(&bob);
    EXPECT(&alice, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"alice\",\"data\":true}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":\"d\",\"delivered\":2}");
    /* `data` may be any JSON, null included */
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":null}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":null}");
    /* an anonymous connection is reachable by its id */
    struct peer anon;
    open_quiet(&anon, NULL, (struct peer *[]){&alice, &bob}, 2);
    char msg[200];
    snprintf(msg, sizeof msg, "{\"type\":\"send\",\"to\":\"%s\",\"data\":1,\"id\":1}", anon.c.id);
    say(&alice, msg);
    EXPECT(&anon, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"%s\",\"data\":1}", anon.c.id);
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    peer_close(&w, &anon, 1);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_too_large(void) {
    struct peer alice, bob;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    char *msg = malloc(4096);
    for (int n = ROUTER_MAX_TARGETS; n <= ROUTER_MAX_TARGETS + 1; n++) {
        strcpy(msg, "{\"type\":\"send\",\"data\":\"x\",\"id\":1,\"to\":[");
        for (int i = 0; i < n; i++) strcat(msg, i ? ",\"bob\"" : "\"bob\"");
        strcat(msg, "]}");
        say(&alice, msg);
    }
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":\"x\"}"); /* 100: fine */
    EXPECT_NONE(&bob);
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    EXPECT(&alice, ERR_ID("too_large", "send to at most 100 users", "1"));
    free(msg);
    EXPECT_NONE(&alice);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_broadcast(void) {
    struct peer alice, bob, echo;
    open_quiet(&alice, "alice", NULL, 0);
    say(&alice, "{\"type\":\"broadcast\",\"data\":{},\"id\":1}"); /* nobody else: delivered 0 */
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":1,\"delivered\":0}");
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    peer_open_limit(&w, &echo, NULL, 1, PEER_OUTBOX);
    say(&bob, "{\"type\":\"broadcast\",\"data\":[\"x\"],\"from\":\"root\",\"to\":\"alice\",\"room\":\"r\"}");
    EXPECT(&alice, "{\"type\":\"message\",\"from\":\"bob\",\"data\":[\"x\"]}");
    EXPECT_NONE(&bob);
    EXPECT_NONE(&echo); /* echo connections are not in routing */
    peer_close(&w, &echo, 1);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

/* `data` reaches the recipients byte for byte as the sender wrote it: numbers past a double's
 * precision or range, whitespace and escapes included. Data that is not RFC 8259 JSON (cJSON takes
 * it) is refused with bad_json, delivered to nobody, and the connection carries on. */
static void test_data_verbatim(void) {
    static const char *const kept[] = {
        "9007199254740993", "12345678901234567890", "1e400", "-0", "1.0", "[1, 2 ,{\"a\" : null}]",
        "\"\\u00e9\\ud83d\\ude00\"", "{\"n\":100000000000000000000000000000}",
    };
    struct peer alice, bob;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    char msg[256];
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"send\",\"to\":\"bob\",\"data\":%s }", kept[i]);
        say(&alice, msg);
        EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":%s}", kept[i]);
    }
    say(&alice, "{\"type\":\"join\",\"room\":\"r\"}");
    say(&bob, "{\"type\":\"join\",\"room\":\"r\"}");
    say(&alice, "{\"type\":\"publish\",\"room\":\"r\",\"data\":[ 1e400 ]}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"room\":\"r\",\"data\":[ 1e400 ]}");
    say(&bob, "{\"data\":{ \"big\": 9007199254740993 },\"type\":\"broadcast\"}");
    EXPECT(&alice, "{\"type\":\"message\",\"from\":\"bob\",\"data\":{ \"big\": 9007199254740993 }}");
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":01,\"id\":4}");
    EXPECT(&alice, ERR_ID("bad_json", "send data is not strict JSON (RFC 8259)", "4"));
    say(&alice, "{\"type\":\"broadcast\",\"data\":[-.5],\"id\":5}");
    EXPECT(&alice, ERR_ID("bad_json", "broadcast data is not strict JSON (RFC 8259)", "5"));
    say(&alice, "{\"type\":\"publish\",\"room\":\"r\",\"data\":\"tab\tinside\",\"id\":6}");
    EXPECT(&alice, ERR_ID("bad_json", "publish data is not strict JSON (RFC 8259)", "6"));
    EXPECT_NONE(&bob);
    say(&alice, "{\"type\":\"send\",\"to\":\"bob\",\"data\":0.5,\"id\":7}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"alice\",\"to\":\"bob\",\"data\":0.5}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":7,\"delivered\":1}");
    EXPECT_NONE(&alice);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

/* The longest names fit every envelope: from and to, from and room. */
static void test_long_names(void) {
    char a64[SB_NAME_MAX + 1], b64[SB_NAME_MAX + 1], r64[SB_NAME_MAX + 1], msg[512];
    memset(a64, 'a', SB_NAME_MAX), memset(b64, 'b', SB_NAME_MAX), memset(r64, 'r', SB_NAME_MAX);
    a64[SB_NAME_MAX] = b64[SB_NAME_MAX] = r64[SB_NAME_MAX] = '\0';
    struct peer a, b;
    open_quiet(&a, a64, NULL, 0);
    open_quiet(&b, b64, (struct peer *[]){&a}, 1);
    snprintf(msg, sizeof msg, "{\"type\":\"send\",\"to\":\"%s\",\"data\":1,\"id\":1}", b64);
    say(&a, msg);
    EXPECT(&b, "{\"type\":\"message\",\"from\":\"%s\",\"to\":\"%s\",\"data\":1}", a64, b64);
    EXPECT(&a, "{\"type\":\"ack\",\"id\":1,\"delivered\":1}");
    snprintf(msg, sizeof msg, "{\"type\":\"join\",\"room\":\"%s\"}", r64);
    say(&a, msg);
    say(&b, msg);
    snprintf(msg, sizeof msg, "{\"type\":\"publish\",\"room\":\"%s\",\"data\":2,\"id\":2}", r64);
    say(&a, msg);
    EXPECT(&b, "{\"type\":\"message\",\"from\":\"%s\",\"room\":\"%s\",\"data\":2}", a64, r64);
    EXPECT(&a, "{\"type\":\"ack\",\"id\":2,\"delivered\":1}");
    EXPECT_NONE(&a);
    EXPECT_NONE(&b);
    peer_close(&w, &b, 1);
    peer_close(&w, &a, 1);
}

static void test_rooms(void) {
    struct peer alice, bob, carol;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    open_quiet(&carol, "carol", (struct peer *[]){&alice, &bob}, 2);
    say(&alice, "{\"type\":\"join\",\"room\":\"r1\",\"id\":1}");
    say(&alice, "{\"type\":\"join\",\"room\":\"r1\",\"id\":2}"); /* again: fine */
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":1,\"delivered\":0}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":2,\"delivered\":0}");
    say(&bob, "{\"type\":\"join\",\"room\":\"r1\"}");
    say(&carol, "{\"type\":\"publish\",\"room\":\"r1\",\"data\":1}");
    EXPECT(&carol, ERR("unauthorized", "not a member of room r1"));
    say(&bob, "{\"type\":\"publish\",\"room\":\"r1\",\"data\":{\"n\":2},\"id\":\"p\"}");
    EXPECT(&alice, "{\"type\":\"message\",\"from\":\"bob\",\"room\":\"r1\",\"data\":{\"n\":2}}");
    EXPECT(&bob, "{\"type\":\"ack\",\"id\":\"p\",\"delivered\":1}");
    EXPECT_NONE(&carol);
    say(&carol, "{\"type\":\"leave\",\"room\":\"r1\",\"id\":3}");
    EXPECT(&carol, ERR_ID("not_found", "not a member of room r1", "3"));
    say(&alice, "{\"type\":\"leave\",\"room\":\"r1\",\"id\":4}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":4,\"delivered\":0}");
    say(&bob, "{\"type\":\"publish\",\"room\":\"r1\",\"data\":1,\"id\":5}");
    EXPECT(&bob, "{\"type\":\"ack\",\"id\":5,\"delivered\":0}");
    EXPECT_NONE(&alice);
    peer_close(&w, &carol, 1);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

static void test_room_limit(void) {
    struct peer a;
    char msg[128];
    open_quiet(&a, "alice", NULL, 0);
    for (int i = 0; i < HUB_MAX_ROOMS_PER_CONN; i++) {
        snprintf(msg, sizeof msg, "{\"type\":\"join\",\"room\":\"room%d\"}", i);
        say(&a, msg);
    }
    EXPECT_NONE(&a);
    say(&a, "{\"type\":\"join\",\"room\":\"one-more\",\"id\":65}");
    EXPECT(&a, ERR_ID("bad_request", "at most 64 rooms per connection", "65"));
    say(&a, "{\"type\":\"publish\",\"room\":\"room63\",\"data\":1,\"id\":1}");
    EXPECT(&a, "{\"type\":\"ack\",\"id\":1,\"delivered\":0}");
    peer_close(&w, &a, 1);
}

static void test_hello_errors(void) {
    struct peer alice, anon;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&anon, NULL, (struct peer *[]){&alice}, 1);
    say(&anon, "{\"type\":\"hello\"}");
    EXPECT(&anon, ERR("bad_request", "invalid user name"));
    say(&anon, "{\"type\":\"hello\",\"user\":\"two words\",\"id\":1}");
    EXPECT(&anon, ERR_ID("bad_request", "invalid user name", "1"));
    say(&anon, "{\"type\":\"hello\",\"user\":\"conn-1\",\"id\":2}");
    EXPECT(&anon, ERR_ID("bad_request", "user names starting with conn- are reserved", "2"));
    EXPECT_NONE(&alice); /* no presence for refused hellos */
    CHECK_EQ_STR(anon.c.user, anon.c.id);
    say(&anon, "{\"type\":\"hello\",\"user\":\"carol\",\"id\":3}"); /* the welcome, then the ack */
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"carol\",\"users\":[\"alice\",\"carol\"]}",
           anon.c.id);
    EXPECT(&anon, "{\"type\":\"ack\",\"id\":3,\"delivered\":0}");
    say(&alice, "{\"type\":\"hello\",\"user\":\"zoe\"}"); /* named by ?user=: already has a name */
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"%s\"}", anon.c.id);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"carol\"}");
    EXPECT(&alice, ERR("bad_request", "this connection already has a name"));
    peer_close(&w, &anon, 1);
    peer_close(&w, &alice, 1);
}

/* PROTOCOL.md Limits: "a hello naming a full user gets bad_request". */
static void test_hello_full_user(void) {
    static struct peer eve[HUB_MAX_CONNS_PER_USER];
    struct peer anon;
    for (int i = 0; i < HUB_MAX_CONNS_PER_USER; i++) peer_open(&w, &eve[i], "eve");
    open_quiet(&anon, NULL, NULL, 0);
    say(&anon, "{\"type\":\"hello\",\"user\":\"eve\",\"id\":1}");
    int op;
    char *s = NULL;
    size_t n;
    CHECK(peer_next(&anon, &op, &s, &n) && strstr(s, "\"code\":\"bad_request\"") && strstr(s, "\"id\":1}"));
    free(s);
    EXPECT_NONE(&anon);
    say(&anon, "{\"type\":\"hello\",\"user\":\"eve2\"}"); /* still anonymous: may pick another name */
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"eve2\",\"users\":[\"eve\",\"eve2\"]}", anon.c.id);
    peer_close(&w, &anon, 1);
    for (int i = 0; i < HUB_MAX_CONNS_PER_USER; i++) peer_close(&w, &eve[i], 1);
}

static void test_router_error(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    router_error(w.hub, &a.c, ERR_RATE_LIMITED, "more than --rate-limit messages per second", NULL);
    EXPECT(&a, ERR("rate_limited", "more than --rate-limit messages per second"));
    cJSON *id = cJSON_CreateString("r9");
    router_error(w.hub, &a.c, ERR_RATE_LIMITED, "slow down", id);
    cJSON_Delete(id);
    EXPECT(&a, ERR_ID("rate_limited", "slow down", "\"r9\""));
    const char *names[] = {"bad_json", "bad_request", "unknown_type", "not_found", "too_large", "rate_limited",
                           "unauthorized"};
    CHECK_EQ_INT(ERR__COUNT, 7);
    for (int e = 0; e < ERR__COUNT; e++) {
        router_error(w.hub, &a.c, (enum sb_error)e, "m", NULL);
        EXPECT(&a, "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"m\"}", names[e]);
    }
    peer_close(&w, &a, 1);
}

/* rate_limited as ws.c sends it: the refused command is not acted on, but its id is echoed. */
static void test_router_refuse(void) {
    struct peer alice, bob;
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", (struct peer *[]){&alice}, 1);
    const char *slow = "more than --rate-limit messages per second";
    const char *send = "{\"type\":\"send\",\"to\":\"bob\",\"data\":1,\"id\":\"r1\"}";
    router_refuse(w.hub, &alice.c, send, strlen(send), ERR_RATE_LIMITED, slow);
    EXPECT(&alice, ERR_ID("rate_limited", "more than --rate-limit messages per second", "\"r1\""));
    EXPECT_NONE(&bob); /* not delivered */
    const char *cases[] = {"{\"type\":\"ping\"}", "not json", "[1]", "{\"type\":\"ping\",\"id\":true}", ""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        router_refuse(w.hub, &alice.c, cases[i], strlen(cases[i]), ERR_RATE_LIMITED, slow);
        EXPECT(&alice, ERR("rate_limited", "more than --rate-limit messages per second")); /* no id to echo */
    }
    router_refuse(w.hub, &alice.c, "{\"id\":12}", 9, ERR_RATE_LIMITED, "x"); /* a binary message: len 0 */
    router_refuse(w.hub, &alice.c, "{\"id\":12}", 0, ERR_RATE_LIMITED, "x");
    EXPECT(&alice, ERR_ID("rate_limited", "x", "12"));
    EXPECT(&alice, ERR("rate_limited", "x"));
    char *deep = nested(100, "ping");
    router_refuse(w.hub, &alice.c, deep, strlen(deep), ERR_RATE_LIMITED, "x");
    EXPECT(&alice, ERR("rate_limited", "x"));
    free(deep);
    EXPECT_NONE(&alice);
    peer_close(&w, &bob, 1);
    peer_close(&w, &alice, 1);
}

/* Errors are counted by code in /metrics. */
static unsigned long long error_count(const char *code) {
    static char text[16384];
    struct metrics_gauges g = {0};
    char key[96];
    metrics_render(text, sizeof text, &g, 0);
    snprintf(key, sizeof key, "switchboard_errors_total{code=\"%s\"} ", code);
    const char *p = strstr(text, key);
    return p ? strtoull(p + strlen(key), NULL, 10) : ~0ULL;
}

static void test_error_metrics(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    unsigned long long before = error_count("unauthorized");
    say(&a, "{\"type\":\"publish\",\"room\":\"nowhere\",\"data\":1}");
    say(&a, "{\"type\":\"publish\",\"room\":\"nowhere\",\"data\":1}");
    drain(&a);
    CHECK_EQ_INT(error_count("unauthorized") - before, 2);
    peer_close(&w, &a, 1);
}

/* ---- A server with a key (auth.h): the router's side of identity ---- */

#define TOKEN_SECRET "router-test-secret-0123456789abcdef"

static const char *mint_for(char *out, size_t cap, const char *sub, const char *room) {
    int64_t now = (int64_t)time(NULL);
    const char *rooms[] = {room};
    CHECK(jwt_mint_hs256(TOKEN_SECRET, strlen(TOKEN_SECRET), sub, now, now + 300, rooms, room ? 1 : 0, out, cap) > 0);
    return out;
}

/* A connection as ws.c registers it on a server with verifier v, from a handshake with `query`. */
static void open_token(struct peer *p, const struct jwt_verifier *v, const char *query) {
    struct auth_conn *a;
    enum jwt_error why;
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    hub_conn_init(w.hub, &p->c, NULL, 0, p, PEER_OUTBOX);
    CHECK_EQ_INT(auth_handshake(v, query, NULL, &a, &why), query ? AUTH_VERIFIED : AUTH_PENDING);
    const char *user = auth_attach(&p->c, a);
    if (user) snprintf(p->c.user, sizeof p->c.user, "%s", user), p->c.named = 1;
    CHECK_EQ_INT(hub_add(w.hub, &p->c), HUB_OK);
}

static void test_token_mode(void) {
    struct jwt_settings set = {TOKEN_SECRET, strlen(TOKEN_SECRET), NULL, NULL, NULL};
    char err[128], tok[1024], query[1100];
    struct jwt_verifier *v = jwt_verifier_new(&set, err, sizeof err);
    struct peer alice, anon;
    snprintf(query, sizeof query, "token=%s", mint_for(tok, sizeof tok, "alice", "lobby"));
    open_token(&alice, v, query);
    drain(&alice);
    open_token(&anon, v, NULL);
    EXPECT_NONE(&anon);
    /* pending: everything but hello is unauthorized, also unknown types and refresh */
    static const char *const cmds[] = {"{\"type\":\"users\",\"id\":1}", "{\"type\":\"ping\",\"id\":1}",
                                       "{\"type\":\"dance\",\"id\":1}", "{\"type\":\"refresh\",\"token\":\"x\",\"id\":1}",
                                       "{\"type\":\"join\",\"room\":\"lobby\",\"id\":1}"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        say(&anon, cmds[i]);
        EXPECT(&anon, ERR_ID("unauthorized", "authenticate first: send {\\\"type\\\":\\\"hello\\\",\\\"token\\\":JWT}", "1"));
    }
    say(&anon, "{\"type\":\"hello\",\"user\":\"bob\",\"id\":2}");
    EXPECT(&anon, ERR_ID("unauthorized", "this server takes the user from a token: send hello with token only", "2"));
    say(&anon, "{\"type\":\"hello\",\"id\":3}");
    EXPECT(&anon, ERR_ID("bad_request", "hello needs token: a JWT", "3"));
    say(&anon, "{\"type\":\"hello\",\"token\":\"a.b.c\",\"id\":4}");
    EXPECT(&anon, ERR_ID("unauthorized", "%s", "4"), jwt_error_text(JWT_MALFORMED));
    EXPECT_NONE(&alice);
    char hello[1200];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"token\":\"%s\",\"id\":5}", mint_for(tok, sizeof tok, "bob", NULL));
    say(&anon, hello);
    EXPECT(&anon, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"bob\",\"exp\":%lld,\"users\":[\"alice\",\"bob\"]}",
           anon.c.id, (long long)anon.c.exp_s);
    EXPECT(&anon, "{\"type\":\"ack\",\"id\":5,\"delivered\":0}");
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\"}");
    /* the rooms claim: alice may use lobby only */
    say(&alice, "{\"type\":\"join\",\"room\":\"lobby\",\"id\":6}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":6,\"delivered\":0}");
    say(&alice, "{\"type\":\"join\",\"room\":\"vault\",\"id\":7}");
    EXPECT(&alice, ERR_ID("unauthorized", "your token does not allow room vault", "7"));
    say(&alice, "{\"type\":\"publish\",\"room\":\"vault\",\"data\":1,\"id\":8}");
    EXPECT(&alice, ERR_ID("unauthorized", "your token does not allow room vault", "8"));
    say(&alice, "{\"type\":\"refresh\",\"id\":9}");
    EXPECT(&alice, ERR_ID("bad_request", "refresh needs token: a JWT", "9"));
    EXPECT_NONE(&anon);
    peer_close(&w, &anon, 1);
    auth_conn_free(anon.c.auth);
    peer_close(&w, &alice, 1);
    auth_conn_free(alice.c.auth);
    jwt_verifier_free(v);
}

/* Without a key, refresh is an unknown type and hello ignores a token, as before identity existed. */
static void test_open_mode_refresh_and_token(void) {
    struct peer a;
    open_quiet(&a, "alice", NULL, 0);
    say(&a, "{\"type\":\"refresh\",\"token\":\"x\",\"id\":1}");
    EXPECT(&a, ERR_ID("unknown_type", "unknown type refresh", "1"));
    EXPECT_NONE(&a);
    peer_close(&w, &a, 1);
}

#define WATCH_USAGE(cmd) cmd " needs users: an array of 1 to 1000 user names"

/* --presence rooms: a join's ack lists the members, with an id or without; watch, unwatch and their
 * checks; users after a name. Under global (the world until now) watch is refused. */
static void test_presence_rooms_mode(void) {
    struct peer alice, bob;
    open_quiet(&alice, "alice", NULL, 0);
    say(&alice, "{\"type\":\"watch\",\"users\":[\"bob\"],\"id\":1}");
    EXPECT(&alice, ERR_ID("bad_request", "watch needs a server with --presence rooms", "1"));
    peer_close(&w, &alice, 1);
    world_stop(&w);
    world_start(&w, PRESENCE_ROOMS);
    open_quiet(&alice, "alice", NULL, 0);
    open_quiet(&bob, "bob", NULL, 0);
    EXPECT_NONE(&alice); /* bob's arrival: nobody watches him */
    say(&alice, "{\"type\":\"join\",\"room\":\"r1\",\"id\":\"j\"}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":\"j\",\"delivered\":0,\"members\":[\"alice\"]}");
    say(&bob, "{\"type\":\"join\",\"room\":\"r1\"}");
    EXPECT(&bob, "{\"type\":\"ack\",\"delivered\":0,\"members\":[\"alice\",\"bob\"]}");
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"join\",\"user\":\"bob\",\"room\":\"r1\"}");
    static const char *const bad[] = {"\"bob\"", "[]", "[\"bob\",\"no spaces\"]", "[\"bob\",7]", "{}"};
    char cmd[160];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "{\"type\":\"watch\",\"users\":%s,\"id\":2}", bad[i]);
        say(&alice, cmd);
        EXPECT(&alice, ERR_ID("bad_request", WATCH_USAGE("watch"), "2"));
    }
    say(&alice, "{\"type\":\"watch\",\"id\":2}");
    EXPECT(&alice, ERR_ID("bad_request", WATCH_USAGE("watch"), "2"));
    say(&alice, "{\"type\":\"watch\",\"users\":[\"carol\",\"bob\"]}"); /* answered without an id too */
    EXPECT(&alice, "{\"type\":\"ack\",\"delivered\":0,\"online\":[\"bob\"]}");
    say(&alice, "{\"type\":\"unwatch\",\"users\":[\"carol\",\"nobody\"],\"id\":3}");
    EXPECT(&alice, "{\"type\":\"ack\",\"id\":3,\"delivered\":0}");
    say(&alice, "{\"type\":\"unwatch\",\"users\":\"bob\",\"id\":4}");
    EXPECT(&alice, ERR_ID("bad_request", WATCH_USAGE("unwatch"), "4"));
    say(&alice, "{\"type\":\"users\",\"after\":\"alice\"}");
    EXPECT(&alice, "{\"type\":\"users\",\"users\":[\"bob\"]}");
    say(&alice, "{\"type\":\"users\",\"after\":1,\"id\":5}");
    EXPECT(&alice, ERR_ID("bad_request", "invalid after name", "5"));
    peer_close(&w, &bob, 1);
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\",\"room\":\"r1\"}");
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}"); /* watched too */
    EXPECT_NONE(&alice);
    peer_close(&w, &alice, 1);
}

int main(void) {
    world_start(&w, 1);
    test_doc_targeted_send();
    test_doc_data();
    test_doc_two_tabs();
    test_doc_broadcast_users_ping();
    test_doc_rooms();
    test_doc_hello();
    test_doc_errors();
    test_bad_json();
    test_trailing_data();
    test_nesting();
    test_bad_request();
    test_ids();
    test_unknown_type();
    test_send_partial();
    test_too_large();
    test_broadcast();
    test_data_verbatim();
    test_long_names();
    test_rooms();
    test_room_limit();
    test_hello_errors();
    test_hello_full_user();
    test_router_error();
    test_router_refuse();
    test_error_metrics();
    test_token_mode();
    test_open_mode_refresh_and_token();
    test_presence_rooms_mode(); /* last: it restarts the world in rooms mode */
    world_stop(&w);
    return check_done();
}

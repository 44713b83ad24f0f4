/* test_api: the server API's request parsing (api_parse, no CivetWeb) and its calls on a real hub.
 *
 * First api_parse on its own: the order of its checks (key, path, method, size, body), each status and
 * error code with its headers, and what it extracts from a valid body (targets, room, data bytes,
 * disconnect code and reason). Bodies are handed over in buffers of exactly their length, with no NUL
 * after them, as the HTTP layer does, so a read past the end shows up under ASan. Then api_handle over
 * a hub of in-memory peers (peer.h): the exact frames each connection receives and each response body,
 * including the hub's server-side functions (publish without membership, user and room lists, closing
 * every connection of a user). */
#include <cjson/cJSON.h>

#include "api.h"
#include "check.h"
#include "envelope.h"
#include "peer.h"

#define KEY "k3y-for-tests"

static struct world w;


/* A request with `body` copied into a buffer of exactly its length (NULL: no body). */
static struct api_http req(const char *method, const char *path, const char *auth, const char *body, char **owned) {
    size_t len = body ? strlen(body) : 0;
    *owned = body ? malloc(len ? len : 1) : NULL;
    if (body) memcpy(*owned, body, len);
    return (struct api_http){method, path, auth, *owned, len, 0, 65536};
}

/* api_parse's status and error code for a request ("" when it parsed). */
static int parse_status(const char *method, const char *path, const char *auth, const char *body, char *code,
                        size_t cap) {
    char *owned;
    struct api_http r = req(method, path, auth, body, &owned);
    struct api_call call;
    struct api_response resp;
    int rc = api_parse(KEY, &r, &call, &resp);
    int status = rc == 0 ? 0 : resp.status;
    code[0] = '\0';
    if (rc != 0) {
        cJSON *j = cJSON_Parse(resp.body);
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
        CHECK(cJSON_IsString(c) && cJSON_IsString(m));
        if (cJSON_IsString(c)) snprintf(code, cap, "%s", c->valuestring);
        cJSON_Delete(j);
    }
    api_call_free(&call);
    api_response_free(&resp);
    free(owned);
    return status;
}

#define AUTH "Bearer " KEY
#define EXPECT_PARSE(method, path, auth, body, status, code)                                      \
    do {                                                                                          \
        char got_code[64];                                                                        \
        CHECK_EQ_INT(parse_status(method, path, auth, body, got_code, sizeof got_code), status); \
        CHECK_EQ_STR(got_code, code);                                                             \
    } while (0)

/* Deliveries from the API say "@server", which no client can be called. */
static void test_server_is_no_user(void) {
    CHECK(!name_valid(ENVELOPE_SERVER));
    CHECK(!name_claimable(ENVELOPE_SERVER));
}

static void test_key_equal(void) {
    CHECK(api_key_equal(KEY, strlen(KEY), KEY));
    CHECK(!api_key_equal(KEY, strlen(KEY) - 1, KEY));
    CHECK(!api_key_equal(KEY "x", strlen(KEY) + 1, KEY));
    CHECK(!api_key_equal("", 0, KEY));
    CHECK(!api_key_equal("k3y-for-tesT", 12, KEY));
    /* a given key whose first bytes match but that is shorter than the key, padded with NUL */
    CHECK(!api_key_equal("k3y\0for-tests", 13, KEY));
}

static void test_auth_first(void) {
    EXPECT_PARSE("GET", "/api/users", NULL, NULL, 401, "unauthorized");
    EXPECT_PARSE("GET", "/api/users", "Bearer wrong", NULL, 401, "unauthorized");
    EXPECT_PARSE("GET", "/api/users", "Basic " KEY, NULL, 401, "unauthorized");
    EXPECT_PARSE("GET", "/api/users", "Bearer", NULL, 401, "unauthorized");
    EXPECT_PARSE("GET", "/api/nowhere", "Bearer x", NULL, 401, "unauthorized");
    EXPECT_PARSE("GET", "/api/users", AUTH, NULL, 0, "");
    EXPECT_PARSE("GET", "/api/users", "bearer  " KEY "  ", NULL, 0, "");
    char *owned;
    struct api_http r = req("GET", "/api/users", NULL, NULL, &owned);
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), -1);
    CHECK(resp.challenge && !resp.allow);
    api_response_free(&resp);
}

static void test_paths_and_methods(void) {
    EXPECT_PARSE("GET", "/api/", AUTH, NULL, 404, "not_found");
    EXPECT_PARSE("GET", "/api/users/", AUTH, NULL, 400, "bad_request"); /* a user with no name */
    EXPECT_PARSE("POST", "/api/sendx", AUTH, "{}", 404, "not_found");
    EXPECT_PARSE("GET", "/api/send", AUTH, NULL, 405, "method_not_allowed");
    EXPECT_PARSE("HEAD", "/api/users", AUTH, NULL, 405, "method_not_allowed");
    EXPECT_PARSE("POST", "/api/rooms/r", AUTH, "{}", 405, "method_not_allowed");
    char *owned;
    struct api_http r = req("POST", "/api/users", AUTH, "{}", &owned);
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), -1);
    CHECK_EQ_STR(resp.allow, "GET");
    CHECK(!resp.challenge);
    api_response_free(&resp);
    free(owned);
    EXPECT_PARSE("GET", "/api/rooms/lobby", AUTH, NULL, 0, "");
    EXPECT_PARSE("GET", "/api/rooms/", AUTH, NULL, 400, "bad_request");
    EXPECT_PARSE("GET", "/api/rooms/a b", AUTH, NULL, 400, "bad_request");
    EXPECT_PARSE("GET", "/api/rooms/a/b", AUTH, NULL, 400, "bad_request");
    EXPECT_PARSE("GET", "/api/users/bob", AUTH, NULL, 0, "");
    EXPECT_PARSE("GET", "/api/users/a b", AUTH, NULL, 400, "bad_request");
    EXPECT_PARSE("POST", "/api/users/bob", AUTH, "{}", 405, "method_not_allowed");
    /* 65 characters: not cut down to a valid 64 */
    EXPECT_PARSE("GET", "/api/rooms/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", AUTH, NULL, 400,
                 "bad_request");
}

static void test_too_large(void) {
    char *owned;
    struct api_http r = req("POST", "/api/broadcast", AUTH, NULL, &owned);
    r.body_too_large = 1;
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), -1);
    CHECK_EQ_INT(resp.status, 413);
    CHECK(resp.body && strstr(resp.body, "\"too_large\"") && strstr(resp.body, "65536"));
    api_response_free(&resp);
    r.authorization = NULL; /* the key is checked before the size */
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), -1);
    CHECK_EQ_INT(resp.status, 401);
    api_response_free(&resp);
}

static void test_bodies(void) {
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, NULL, 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "nope", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{\"data\":1} {}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "[1]", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{}", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{\"data\":01}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, " {\"data\":1}\r\n", 0, "");
    /* UTF-8 only (issue 18): a lone 0xFF, a cut sequence, a surrogate, an overlong, even outside data */
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{\"data\":\"\xff\"}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":\"bob\",\"data\":\"a\xc3\"}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/publish", AUTH, "{\"room\":\"r\",\"data\":\"\xed\xa0\x80\"}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{\"data\":1,\"x\":\"\xc0\xaf\"}", 400, "bad_json");
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, "{\"data\":\"\xc3\xa9\xf0\x9f\x98\x80\"}", 0, "");
    char deep[200];
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    EXPECT_PARSE("POST", "/api/broadcast", AUTH, deep, 400, "bad_json");
    /* a NUL inside the body: cJSON would stop there and take the rest for nothing */
    char *owned;
    struct api_http r = req("POST", "/api/broadcast", AUTH, "{\"data\":1}xx", &owned);
    owned[10] = '\0';
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), -1);
    CHECK_EQ_INT(resp.status, 400);
    api_response_free(&resp);
    free(owned);
}

static void test_send_parse(void) {
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":\"bob\",\"data\":1}", 0, "");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":[\"bob\",\"bob\"],\"data\":1}", 0, "");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":[],\"data\":1}", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":[1],\"data\":1}", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":\"b c\",\"data\":1}", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/send", AUTH, "{\"to\":\"bob\"}", 400, "bad_request");
    char big[2048] = "{\"data\":1,\"to\":[";
    for (int i = 0; i < 101; i++) snprintf(big + strlen(big), sizeof big - strlen(big), "%s\"u%d\"", i ? "," : "", i);
    strcat(big, "]}");
    EXPECT_PARSE("POST", "/api/send", AUTH, big, 400, "too_large");

    char *owned;
    struct api_http r = req("POST", "/api/send", AUTH, "{\"data\" : [1.0, 9007199254740993] ,\"to\":\"bob\"}", &owned);
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), 0);
    CHECK_EQ_INT(call.kind, API_SEND);
    CHECK_EQ_INT(call.ntargets, 1);
    CHECK(call.data.len == strlen("[1.0, 9007199254740993]") &&
          memcmp(call.data.bytes, "[1.0, 9007199254740993]", call.data.len) == 0);
    api_call_free(&call);
    free(owned);
}

static void test_publish_and_disconnect_parse(void) {
    EXPECT_PARSE("POST", "/api/publish", AUTH, "{\"room\":\"r\",\"data\":null}", 0, "");
    EXPECT_PARSE("POST", "/api/publish", AUTH, "{\"room\":\"\",\"data\":null}", 400, "bad_request");
    EXPECT_PARSE("POST", "/api/publish", AUTH, "{\"room\":7,\"data\":null}", 400, "bad_request");
    static const char *const bad[] = {
        "{\"user\":\"u\",\"code\":999}",   "{\"user\":\"u\",\"code\":1001}", "{\"user\":\"u\",\"code\":3999}",
        "{\"user\":\"u\",\"code\":5000}",  "{\"user\":\"u\",\"code\":4000.5}", "{\"user\":\"u\",\"code\":\"4000\"}",
        "{\"user\":\"u\",\"reason\":1}",   "{\"code\":4000}",
        "{\"user\":\"u\",\"code\":1e300}", "{\"user\":\"u\",\"code\":-4000}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) EXPECT_PARSE("POST", "/api/disconnect", AUTH, bad[i], 400, "bad_request");
    /* cJSON refuses a lone surrogate: the body is not JSON */
    EXPECT_PARSE("POST", "/api/disconnect", AUTH, "{\"user\":\"u\",\"reason\":\"\\udc00\"}", 400, "bad_json");
    char reason[200];
    snprintf(reason, sizeof reason, "{\"user\":\"u\",\"reason\":\"%0123d\"}", 0);
    EXPECT_PARSE("POST", "/api/disconnect", AUTH, reason, 0, "");
    snprintf(reason, sizeof reason, "{\"user\":\"u\",\"reason\":\"%0124d\"}", 0);
    EXPECT_PARSE("POST", "/api/disconnect", AUTH, reason, 400, "bad_request");

    char *owned;
    struct api_http r = req("POST", "/api/disconnect", AUTH, "{\"user\":\"conn-7\"}", &owned);
    struct api_call call;
    struct api_response resp;
    CHECK_EQ_INT(api_parse(KEY, &r, &call, &resp), 0);
    CHECK_EQ_STR(call.name, "conn-7");
    CHECK_EQ_INT(call.code, API_DEFAULT_CLOSE);
    CHECK_EQ_STR(call.reason, API_DEFAULT_REASON);
    api_call_free(&call);
    free(owned);
}

/* A body reader that counts its calls and hands over `body`. */
struct counted_read {
    int calls;
    const char *body;
};

static void counted_reader(void *ctx, struct api_http *r) {
    struct counted_read *c = ctx;
    c->calls++;
    r->body = c->body;
    r->body_len = strlen(c->body);
}

/* The head decides 401, 404, 405 and an announced 413 before the body is read (issue 18: the body was
 * read first, so a caller without the key held a worker with a body it never sent). */
static void test_head_before_body(void) {
    static const struct {
        const char *method, *path, *auth;
        int too_large, status, reads;
    } cases[] = {
        {"POST", "/api/broadcast", NULL, 0, 401, 0},  {"POST", "/api/broadcast", "Bearer x", 1, 401, 0},
        {"POST", "/api/nowhere", AUTH, 0, 404, 0},    {"PUT", "/api/broadcast", AUTH, 0, 405, 0},
        {"POST", "/api/broadcast", AUTH, 1, 413, 0},  {"GET", "/api/users", AUTH, 0, 200, 0},
        {"POST", "/api/broadcast", AUTH, 0, 200, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct api_http r = {cases[i].method, cases[i].path, cases[i].auth, NULL, 0, cases[i].too_large, 65536};
        struct counted_read c = {0, "{\"data\":1}"};
        struct api_response resp;
        api_handle(w.hub, KEY, &r, counted_reader, &c, &resp);
        CHECK_EQ_INT(resp.status, cases[i].status);
        CHECK_EQ_INT(c.calls, cases[i].reads);
        api_response_free(&resp);
    }
}

/* api_handle's response body for a request; the status into *status. Free the result. */
static char *handle(const char *method, const char *path, const char *body, int *status) {
    char *owned;
    struct api_http r = req(method, path, AUTH, body, &owned);
    struct api_response resp;
    api_handle(w.hub, KEY, &r, NULL, NULL, &resp);
    free(owned);
    *status = resp.status;
    return resp.body;
}

#define EXPECT_HANDLE(method, path, body, want_status, want_body)       \
    do {                                                                \
        int st = 0;                                                     \
        char *got = handle(method, path, body, &st);                    \
        CHECK_EQ_INT(st, want_status);                                  \
        CHECK_EQ_STR(got, want_body);                                   \
        free(got);                                                      \
    } while (0)

static void test_calls_on_the_hub(void) {
    struct peer alice, bob, bob2, anon, echo;
    world_start(&w, 1);
    peer_open(&w, &alice, "alice");
    peer_open(&w, &bob, "bob");
    peer_open(&w, &bob2, "bob");
    peer_open(&w, &anon, NULL);
    peer_open_limit(&w, &echo, NULL, 1, PEER_OUTBOX);
    struct peer *all[] = {&alice, &bob, &bob2, &anon, &echo};
    for (int i = 0; i < 5; i++) drain(all[i]);

    EXPECT_HANDLE("POST", "/api/send", "{\"to\":[\"bob\",\"carol\",\"bob\"],\"data\":{\"n\":1.0}}", 200,
                  "{\"delivered\":2,\"not_found\":[\"carol\"]}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"@server\",\"to\":\"bob\",\"data\":{\"n\":1.0}}");
    EXPECT(&bob2, "{\"type\":\"message\",\"from\":\"@server\",\"to\":\"bob\",\"data\":{\"n\":1.0}}");
    EXPECT_NONE(&bob);
    EXPECT_NONE(&alice);

    EXPECT_HANDLE("POST", "/api/broadcast", "{\"data\":\"x\"}", 200, "{\"delivered\":4}");
    for (int i = 0; i < 4; i++) EXPECT(all[i], "{\"type\":\"message\",\"from\":\"@server\",\"data\":\"x\"}");
    EXPECT_NONE(&echo);

    EXPECT_HANDLE("GET", "/api/rooms/lobby", NULL, 200, "{\"room\":\"lobby\",\"users\":[]}");
    EXPECT_HANDLE("GET", "/api/users/nobody", NULL, 200, "{\"user\":\"nobody\",\"online\":false}");
    CHECK_EQ_INT(hub_join(w.hub, &bob.c, "lobby", NULL), HUB_OK);
    CHECK_EQ_INT(hub_join(w.hub, &bob2.c, "lobby", NULL), HUB_OK);
    CHECK_EQ_INT(hub_join(w.hub, &anon.c, "lobby", NULL), HUB_OK);
    EXPECT_HANDLE("POST", "/api/publish", "{\"room\":\"lobby\",\"data\":[]}", 200, "{\"delivered\":3}");
    EXPECT(&bob, "{\"type\":\"message\",\"from\":\"@server\",\"room\":\"lobby\",\"data\":[]}");
    EXPECT(&bob2, "{\"type\":\"message\",\"from\":\"@server\",\"room\":\"lobby\",\"data\":[]}");
    EXPECT(&anon, "{\"type\":\"message\",\"from\":\"@server\",\"room\":\"lobby\",\"data\":[]}");
    EXPECT_NONE(&alice);
    EXPECT_HANDLE("POST", "/api/publish", "{\"room\":\"attic\",\"data\":[]}", 200, "{\"delivered\":0}");

    char want[256];
    snprintf(want, sizeof want, "{\"users\":[\"alice\",\"bob\",\"%s\"]}", anon.c.id);
    EXPECT_HANDLE("GET", "/api/users", NULL, 200, want);
    snprintf(want, sizeof want, "{\"room\":\"lobby\",\"users\":[\"bob\",\"%s\"]}", anon.c.id);
    EXPECT_HANDLE("GET", "/api/rooms/lobby", NULL, 200, want);
    EXPECT_HANDLE("GET", "/api/users/bob", NULL, 200, "{\"user\":\"bob\",\"online\":true}");

    EXPECT_HANDLE("POST", "/api/disconnect", "{\"user\":\"bob\",\"code\":4001,\"reason\":\"bye\"}", 200, "{\"closed\":2}");
    EXPECT_CLOSE(&bob, 4001);
    EXPECT_CLOSE(&bob2, 4001);
    /* bob is gone at once, before his connections answer the close (hub_close_user) */
    EXPECT(&alice, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    EXPECT(&anon, "{\"type\":\"presence\",\"event\":\"leave\",\"user\":\"bob\"}");
    snprintf(want, sizeof want, "{\"users\":[\"alice\",\"%s\"]}", anon.c.id);
    EXPECT_HANDLE("GET", "/api/users", NULL, 200, want);
    snprintf(want, sizeof want, "{\"room\":\"lobby\",\"users\":[\"%s\"]}", anon.c.id);
    EXPECT_HANDLE("GET", "/api/rooms/lobby", NULL, 200, want);
    EXPECT_HANDLE("POST", "/api/disconnect", "{\"user\":\"bob\"}", 200, "{\"closed\":0}"); /* gone already */
    EXPECT_HANDLE("POST", "/api/disconnect", "{\"user\":\"nobody\"}", 200, "{\"closed\":0}");
    EXPECT_NONE(&alice);

    test_head_before_body();
    for (int i = 0; i < 5; i++) drain(all[i]);
    /* text frames carry UTF-8 only: a body that is not UTF-8 is bad_json, and delivers nothing */
    EXPECT_HANDLE("POST", "/api/broadcast", "{\"data\":\"\xff\"}", 400,
                  "{\"error\":{\"code\":\"bad_json\",\"message\":\"the body is not UTF-8\"}}");
    EXPECT_NONE(&alice);
    EXPECT_NONE(&anon);

    for (int i = 4; i >= 0; i--) peer_close(&w, all[i], 1);
    world_stop(&w);
}

int main(void) {
    test_server_is_no_user();
    test_key_equal();
    test_auth_first();
    test_paths_and_methods();
    test_too_large();
    test_bodies();
    test_send_parse();
    test_publish_and_disconnect_parse();
    test_calls_on_the_hub();
    return check_done();
}

/* fuzz_api: one server API request (app/http/api.c) through api_handle and the hub.
 *
 * Input: byte 0 picks the method and path (the six calls, a room path, unknown ones), byte 1 the
 * Authorization header (the key, a wrong one, none, other schemes), the rest is the body, in a buffer
 * of exactly its size. The hub holds "alice", "bob" (two connections, one in room "lobby") and an
 * anonymous connection in "lobby", each with an in-memory sink that takes every byte. Checked, beside
 * ASan/UBSan's own checks:
 *  - the status is one api.h documents; the body is one JSON object: on 200 the call's own answer, else
 *    {"error":{"code":STRING,"message":STRING}}; 401 exactly when the key is wrong, with the challenge;
 *    405 with Allow, and no other status with either header;
 *  - every frame anyone receives is a whole, unmasked frame: a text frame holding a message from
 *    "@server" (valid UTF-8 when the body was) or the presence leave of a user disconnect closed, or a
 *    close frame with a code disconnect allows;
 *  - a send, broadcast or publish that answered 200 delivered as many frames as its `delivered` says,
 *    and nothing arrives after a refused request; a POST whose body is not UTF-8 is refused;
 *  - nothing is left queued. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "fuzz_check.h"
#include "fuzz_hub.h"
#include "utf8.h"

#define KEY "fuzz-key"
#define NPEERS 4

static const struct {
    const char *method, *path;
} targets[] = {
    {"POST", "/api/send"},  {"POST", "/api/broadcast"},     {"POST", "/api/publish"},  {"GET", "/api/users"},
    {"GET", "/api/rooms/lobby"}, {"POST", "/api/disconnect"}, {"GET", "/api/rooms/a b"}, {"GET", "/api/nope"},
    {"GET", "/api/send"},   {"POST", "/api/users"},         {"GET", "/api/rooms/"},    {"PUT", "/api/publish"},
    {"POST", "/api/subscribe"}, {"POST", "/api/unsubscribe"},
};
#define NTARGETS (sizeof targets / sizeof targets[0])
static const char *const auths[] = {"Bearer " KEY, "Bearer fuzz-kez", NULL, "Basic " KEY, "bearer " KEY " ", "Bearer"};
#define NAUTHS (sizeof auths / sizeof auths[0])

static int close_code_ok(unsigned code) { return code == 1000 || code == 1008 || (code >= 4000 && code <= 4999); }

/* Checks every frame from `from` on; returns how many text frames there were. */
static size_t check_frames(struct peer *p, size_t from, int want_utf8) {
    FUZZ_CHECK(outq_bytes(&p->c.out) == 0);
    size_t n = 0, off = from, len;
    uint8_t head;
    const uint8_t *payload;
    while (fuzz_frame(p, &off, &head, &payload, &len)) {
        FUZZ_CHECK(head == 0x81 || head == 0x88);
        if (head == 0x88) {
            FUZZ_CHECK(len >= 2 && len <= 125 && close_code_ok((unsigned)payload[0] << 8 | payload[1]));
            FUZZ_CHECK(utf8_valid(payload + 2, len - 2));
        } else {
            if (want_utf8) FUZZ_CHECK(utf8_valid(payload, len));
            cJSON *msg = cJSON_ParseWithLength((const char *)payload, len);
            const cJSON *from_field = cJSON_GetObjectItemCaseSensitive(msg, "from");
            const cJSON *event = cJSON_GetObjectItemCaseSensitive(msg, "event");
            if (cJSON_IsString(event)) { /* a disconnect's user leaves at once (hub_close_user) */
                FUZZ_CHECK(strcmp(event->valuestring, "leave") == 0 && from_field == NULL);
            } else {
                FUZZ_CHECK(cJSON_IsString(from_field) && strcmp(from_field->valuestring, "@server") == 0);
                n++;
            }
            cJSON_Delete(msg);
        }
    }
    return n;
}

/* The response: a JSON object of the right shape for its status. Returns `delivered`, or -1. */
static long check_response(const struct api_response *resp, int key_ok) {
    static const int statuses[] = {200, 400, 401, 404, 405, 413};
    int known = 0;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) known |= resp->status == statuses[i];
    FUZZ_CHECK(known && resp->body && strlen(resp->body) == resp->len);
    FUZZ_CHECK((resp->status == 401) == !key_ok && resp->challenge == (resp->status == 401));
    FUZZ_CHECK((resp->allow != NULL) == (resp->status == 405));
    cJSON *body = cJSON_Parse(resp->body);
    FUZZ_CHECK(cJSON_IsObject(body));
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    const cJSON *delivered = cJSON_GetObjectItemCaseSensitive(body, "delivered");
    if (resp->status != 200)
        FUZZ_CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "code")) &&
                   cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")));
    else FUZZ_CHECK(err == NULL);
    long n = cJSON_IsNumber(delivered) ? (long)delivered->valuedouble : -1;
    cJSON_Delete(body);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    struct peer peers[NPEERS];
    start_once();
    peer_open(&peers[0], "alice", NULL);
    peer_open(&peers[1], "bob", "lobby");
    peer_open(&peers[2], "bob", NULL);
    peer_open(&peers[3], NULL, "lobby");
    size_t seen[NPEERS];
    for (int i = 0; i < NPEERS; i++) seen[i] = peers[i].len;

    size_t t = data[0] % NTARGETS, a = data[1] % NAUTHS;
    char *body = malloc(size - 2 ? size - 2 : 1); /* exactly the body, no NUL after it */
    memcpy(body, data + 2, size - 2);
    struct api_http req = {targets[t].method, targets[t].path, auths[a], body, size - 2, 0, 65536};
    struct api_response resp;
    api_handle(hub, KEY, &req, NULL, NULL, &resp);
    free(body);

    long delivered = check_response(&resp, a == 0 || a == 4);
    size_t frames = 0;
    for (int i = 0; i < NPEERS; i++) frames += check_frames(&peers[i], seen[i], utf8_valid(data + 2, size - 2));
    if (resp.status != 200) FUZZ_CHECK(frames == 0);
    if (resp.status == 200 && strcmp(targets[t].method, "POST") == 0) FUZZ_CHECK(utf8_valid(data + 2, size - 2));
    if (delivered >= 0) FUZZ_CHECK((size_t)delivered == frames);
    api_response_free(&resp);
    for (int i = NPEERS - 1; i >= 0; i--) peer_close(&peers[i]);
    return 0;
}

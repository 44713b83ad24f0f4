/* fuzz_router: one client text message through the JSON router (app/proto/router.c) and the hub.
 *
 * Each input is one message from "alice" to a hub that also holds "bob" (two connections) and an
 * anonymous connection; alice and one of bob's speak protocol 2 (stream positions, joins that recover
 * from a `since`, over a history of 8 messages per stream that lasts across inputs), each with an in-memory sink that takes every byte: no batch is open, so the
 * real outbox writes each delivery into it before the push returns. Checked after each message,
 * beside ASan/UBSan's own checks:
 *  - alice hears back (a reply, an ack or an error) unless the message was a successful send,
 *    broadcast, join, leave or publish without an id, the only commands that answer nothing;
 *  - every frame anyone receives is a whole, unmasked text frame holding a JSON object with a string
 *    "type", and, when the message was valid UTF-8 (ws.c guarantees it), valid UTF-8 itself, since a
 *    browser fails the connection (1007) on a text frame that is not;
 *  - nothing is left queued, and no connection is closing or ended (router.h: no failure closes). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "fuzz_hub.h"
#include "router.h"
#include "utf8.h"

/* Checks every frame from `from` on and returns how many there were. */
static size_t check_frames(struct peer *p, size_t from, int want_utf8) {
    FUZZ_CHECK(outq_bytes(&p->c.out) == 0 && !outq_closing(&p->c.out));
    FUZZ_CHECK(!outbox_done(&p->c.out) && p->kicks == 0);
    size_t n = 0, off = from, len;
    uint8_t head;
    const uint8_t *payload;
    while (fuzz_frame(p, &off, &head, &payload, &len)) {
        FUZZ_CHECK(head == 0x81);
        if (want_utf8) FUZZ_CHECK(utf8_valid(payload, len));
        cJSON *msg = cJSON_ParseWithLength((const char *)payload, len);
        FUZZ_CHECK(cJSON_IsObject(msg) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "type")));
        cJSON_Delete(msg);
        n++;
    }
    return n;
}

/* May this message get no answer at all? Only a command that succeeds silently. */
static int may_be_silent(const uint8_t *data, size_t size) {
    cJSON *msg = cJSON_ParseWithLength((const char *)data, size);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(msg, "type");
    static const char *const silent[] = {"send", "broadcast", "join", "leave", "publish", "unwatch"};
    int ok = 0;
    if (cJSON_IsObject(msg) && cJSON_IsString(type) && !cJSON_GetObjectItemCaseSensitive(msg, "id"))
        for (size_t i = 0; i < sizeof silent / sizeof silent[0]; i++) ok |= strcmp(type->valuestring, silent[i]) == 0;
    cJSON_Delete(msg);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct peer alice, bob, bob2, anon;
    start_once();
    peer_open_as(&alice, "alice", NULL, 1);
    peer_open(&bob, "bob", NULL);
    peer_open_as(&bob2, "bob", NULL, 1);
    peer_open(&anon, NULL, NULL);
    struct peer *all[] = {&alice, &bob, &bob2, &anon};
    size_t seen[4];
    for (int i = 0; i < 4; i++) seen[i] = (check_frames(all[i], 0, 1), all[i]->len);

    char *text = malloc(size ? size : 1); /* exactly the message, no NUL after it */
    memcpy(text, data, size);
    router_handle(hub, &alice.c, text, size);
    free(text);

    int valid_utf8 = utf8_valid(data, size);
    for (int i = 0; i < 4; i++) {
        size_t n = check_frames(all[i], seen[i], valid_utf8);
        if (all[i] == &alice && n == 0) FUZZ_CHECK(may_be_silent(data, size));
    }
    for (int i = 3; i >= 0; i--) peer_close(all[i]);
    return 0;
}

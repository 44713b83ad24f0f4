/* test_frame: server-to-client frame encoding and sharing (app/io/frame.c).
 *
 * One encoded frame is queued to many connections, so its header must be right for every payload
 * size class of RFC 6455 5.2 (7-bit, 16-bit and 64-bit lengths, at their boundaries), server frames
 * must be unmasked with FIN set, close frames must carry the code big-endian (or nothing for code 0)
 * and a reason cut to the 125-byte control limit, and the refcount must free exactly once. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "check.h"
#include "frame.h"

/* Header length and declared payload length of an encoded frame, per RFC 6455 5.2. */
static size_t parse_header(const struct frame *f, uint64_t *payload) {
    uint8_t b1 = f->bytes[1];
    if ((b1 & 0x7F) < 126) {
        *payload = b1 & 0x7F;
        return 2;
    }
    if ((b1 & 0x7F) == 126) {
        *payload = (uint64_t)f->bytes[2] << 8 | f->bytes[3];
        return 4;
    }
    *payload = 0;
    for (int i = 0; i < 8; i++) *payload = *payload << 8 | f->bytes[2 + i];
    return 10;
}

static void check_size(size_t len, size_t want_header, uint8_t want_b1) {
    uint8_t *payload = malloc(len ? len : 1);
    for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)(i * 7 + 3);
    struct frame *f = frame_new(WS_OP_BINARY, payload, len);
    uint64_t declared;
    if (CHECK(f != NULL)) {
        CHECK_EQ_INT(f->bytes[0], 0x82); /* FIN, no RSV, binary */
        CHECK_EQ_INT(f->bytes[1], want_b1); /* mask bit clear */
        CHECK_EQ_INT(parse_header(f, &declared), want_header);
        CHECK_EQ_INT(declared, len);
        CHECK_EQ_INT(f->len, want_header + len);
        CHECK(len == 0 || memcmp(f->bytes + want_header, payload, len) == 0);
        CHECK_EQ_INT(f->refs, 1);
    }
    frame_unref(f);
    free(payload);
}

static void test_sizes(void) {
    check_size(0, 2, 0);
    check_size(1, 2, 1);
    check_size(125, 2, 125);
    check_size(126, 4, 126);
    check_size(65535, 4, 126);
    check_size(65536, 10, 127);
    check_size(70000, 10, 127);
}

static void test_16bit_bytes(void) {
    struct frame *f = frame_new(WS_OP_TEXT, NULL, 0);
    CHECK_EQ_INT(f->bytes[0], 0x81);
    CHECK_EQ_INT(f->len, 2);
    frame_unref(f);
    uint8_t *p = calloc(1, 65536);
    f = frame_new(WS_OP_TEXT, p, 300);
    CHECK(f->bytes[1] == 126 && f->bytes[2] == 0x01 && f->bytes[3] == 0x2C); /* 300 big-endian */
    frame_unref(f);
    f = frame_new(WS_OP_TEXT, p, 65536);
    static const uint8_t want[10] = {0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    CHECK(memcmp(f->bytes, want, 10) == 0);
    frame_unref(f);
    free(p);
}

static void test_opcodes(void) {
    const enum ws_opcode ops[] = {WS_OP_TEXT, WS_OP_BINARY, WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        struct frame *f = frame_new(ops[i], "ab", 2);
        CHECK_EQ_INT(f->bytes[0], 0x80 | ops[i]);
        CHECK(f->len == 4 && memcmp(f->bytes + 2, "ab", 2) == 0);
        frame_unref(f);
    }
}

static void test_close(void) {
    struct frame *f = frame_close(1000, NULL);
    static const uint8_t normal[] = {0x88, 2, 0x03, 0xE8};
    CHECK(f->len == sizeof normal && memcmp(f->bytes, normal, sizeof normal) == 0);
    frame_unref(f);
    f = frame_close(1008, "slow");
    static const uint8_t slow[] = {0x88, 6, 0x03, 0xF0, 's', 'l', 'o', 'w'};
    CHECK(f->len == sizeof slow && memcmp(f->bytes, slow, sizeof slow) == 0);
    frame_unref(f);
    f = frame_close(4999, "");
    CHECK(f->len == 4 && f->bytes[2] == 0x13 && f->bytes[3] == 0x87);
    frame_unref(f);
    f = frame_close(0, "ignored"); /* the answer to a close without a code: empty */
    CHECK(f->len == 2 && f->bytes[0] == 0x88 && f->bytes[1] == 0);
    frame_unref(f);
}

static void test_close_reason_cut(void) {
    char reason[300];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    struct frame *f = frame_close(1001, reason);
    CHECK_EQ_INT(f->bytes[1], WS_CONTROL_MAX);
    CHECK_EQ_INT(f->len, 2 + WS_CONTROL_MAX);
    CHECK(f->bytes[2] == 0x03 && f->bytes[3] == 0xE9 && f->bytes[4] == 'r' && f->bytes[f->len - 1] == 'r');
    frame_unref(f);
    reason[123] = '\0'; /* exactly fits: 2 + 123 = 125 */
    f = frame_close(1001, reason);
    CHECK_EQ_INT(f->bytes[1], 125);
    frame_unref(f);
}

static void test_json(void) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "pong");
    cJSON_AddNumberToObject(o, "n", 3);
    struct frame *f = frame_json(o);
    const char *want = "{\"type\":\"pong\",\"n\":3}";
    CHECK_EQ_INT(f->bytes[0], 0x81);
    CHECK_EQ_INT(f->bytes[1], strlen(want));
    CHECK(f->len == 2 + strlen(want) && memcmp(f->bytes + 2, want, strlen(want)) == 0);
    frame_unref(f);
    cJSON_Delete(o);
}

static void test_refcount(void) {
    struct frame *f = frame_new(WS_OP_TEXT, "x", 1);
    CHECK(frame_ref(f) == f);
    CHECK_EQ_INT(f->refs, 2);
    frame_ref(f);
    CHECK_EQ_INT(f->refs, 3);
    frame_unref(f);
    frame_unref(f);
    CHECK_EQ_INT(f->refs, 1);
    CHECK_EQ_INT(f->bytes[2], 'x'); /* still alive: ASan would flag a use after free */
    frame_unref(f);                 /* the last one frees (LeakSanitizer checks it did) */
    frame_unref(NULL);
}

int main(void) {
    test_sizes();
    test_16bit_bytes();
    test_opcodes();
    test_close();
    test_close_reason_cut();
    test_json();
    test_refcount();
    return check_done();
}

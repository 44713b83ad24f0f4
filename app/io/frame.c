/* frame: encoded, refcounted server frames (see frame.h). */
#include "frame.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static size_t header_len(size_t payload) {
    if (payload < 126) return 2;
    if (payload <= 0xFFFF) return 4;
    return 10;
}

static void write_header(uint8_t *h, enum ws_opcode opcode, size_t payload) {
    h[0] = (uint8_t)(0x80 | opcode);
    if (payload < 126) {
        h[1] = (uint8_t)payload;
    } else if (payload <= 0xFFFF) {
        h[1] = 126;
        h[2] = (uint8_t)(payload >> 8);
        h[3] = (uint8_t)payload;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)payload >> (56 - 8 * i));
    }
}

const uint8_t *frame_payload(const struct frame *f, size_t *len) {
    size_t hlen = f->bytes[1] < 126 ? 2 : f->bytes[1] == 126 ? 4 : 10;
    *len = f->len - hlen;
    return f->bytes + hlen;
}

struct frame *frame_parts(enum ws_opcode opcode, const struct frame_part *parts, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += parts[i].len;
    size_t hlen = header_len(len);
    struct frame *f = malloc(sizeof *f + hlen + len);
    if (!f) return NULL;
    f->refs = 1;
    f->len = hlen + len;
    write_header(f->bytes, opcode, len);
    uint8_t *at = f->bytes + hlen;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len) memcpy(at, parts[i].bytes, parts[i].len);
        at += parts[i].len;
    }
    return f;
}

struct frame *frame_concat(struct frame *const *a, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += a[i]->len;
    struct frame *f = malloc(sizeof *f + len);
    if (!f) return NULL;
    f->refs = 1;
    f->len = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(f->bytes + f->len, a[i]->bytes, a[i]->len);
        f->len += a[i]->len;
    }
    return f;
}

struct frame *frame_new(enum ws_opcode opcode, const void *payload, size_t len) {
    struct frame_part one = {payload, len};
    return frame_parts(opcode, &one, 1);
}

struct frame *frame_close(uint16_t code, const char *reason) {
    uint8_t payload[WS_CONTROL_MAX];
    if (code == 0) return frame_new(WS_OP_CLOSE, NULL, 0);
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > sizeof payload - 2) rlen = sizeof payload - 2;
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rlen) memcpy(payload + 2, reason, rlen);
    return frame_new(WS_OP_CLOSE, payload, rlen + 2);
}

struct frame *frame_json(const cJSON *obj) {
    char *text = cJSON_PrintUnformatted(obj);
    if (!text) return NULL;
    struct frame *f = frame_new(WS_OP_TEXT, text, strlen(text));
    cJSON_free(text);
    return f;
}

struct frame *frame_ref(struct frame *f) {
    __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
    return f;
}

void frame_unref(struct frame *f) {
    if (f && __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) == 0) free(f);
}

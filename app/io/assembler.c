/* assembler: client frame validation and reassembly (see assembler.h).
 *
 * States: idle (no message in progress) and in_progress (a text/binary frame without FIN arrived;
 * only continuations, and control frames between them, may follow until one has FIN). */
#include "assembler.h"

#include <stdlib.h>
#include <string.h>

#define FRAME_FIN 0x80
#define FRAME_RSV 0x70
#define FRAME_OPCODE 0x0F

void assembler_init(struct assembler *a, size_t max_message) {
    memset(a, 0, sizeof *a);
    a->max_message = max_message;
}

void assembler_free(struct assembler *a) {
    free(a->buf);
    a->buf = NULL;
    a->len = a->cap = 0;
}

void assembler_trim(struct assembler *a) {
    if (!a->in_progress) assembler_free(a);
}

static void fail(struct asm_event *ev, uint16_t code, const char *reason) {
    ev->kind = ASM_FAIL;
    ev->close_code = code;
    ev->reason = reason;
}

int ws_close_code_valid(unsigned code) {
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    return code >= 3000 && code <= 4999;
}

static void control_frame(enum ws_opcode op, const uint8_t *data, size_t len, struct asm_event *ev) {
    ev->data = data;
    ev->len = len;
    if (op == WS_OP_PING) {
        ev->kind = ASM_PING;
        return;
    }
    if (op == WS_OP_PONG) {
        ev->kind = ASM_PONG;
        return;
    }
    if (len == 0) {
        ev->kind = ASM_CLOSE;
        ev->close_code = 0;
        return;
    }
    unsigned code = len >= 2 ? (unsigned)data[0] << 8 | data[1] : 0;
    if (len == 1 || !ws_close_code_valid(code)) return fail(ev, WS_CLOSE_PROTOCOL, "invalid close code");
    if (!utf8_valid(data + 2, len - 2)) return fail(ev, WS_CLOSE_BAD_DATA, "close reason is not UTF-8");
    ev->kind = ASM_CLOSE;
    ev->close_code = (uint16_t)code;
}

/* Appends a fragment to the message in progress, within max_message. */
static int append(struct assembler *a, const uint8_t *data, size_t len) {
    if (len == 0) return 0; /* an empty fragment; buf may still be NULL */
    if (a->len + len > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->len + len) cap *= 2;
        if (cap > a->max_message) cap = a->max_message;
        uint8_t *buf = realloc(a->buf, cap);
        if (!buf) return -1;
        a->buf = buf;
        a->cap = cap;
    }
    memcpy(a->buf + a->len, data, len);
    a->len += len;
    return 0;
}

/* Text must be UTF-8 fragment by fragment, and whole at the end. */
static int text_ok(struct assembler *a, enum ws_opcode op, const uint8_t *data, size_t len, int fin) {
    if (op != WS_OP_TEXT) return 1;
    if (utf8_feed(&a->utf8, data, len) < 0) return 0;
    return !fin || utf8_complete(&a->utf8);
}

static void data_frame(struct assembler *a, enum ws_opcode op, int fin, const uint8_t *data, size_t len,
                       struct asm_event *ev) {
    if (op == WS_OP_CONT && !a->in_progress) return fail(ev, WS_CLOSE_PROTOCOL, "continuation with no message");
    if (op != WS_OP_CONT && a->in_progress) return fail(ev, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
    if (op != WS_OP_CONT) {
        a->opcode = op;
        a->len = 0;
        utf8_init(&a->utf8);
    }
    if (len > a->max_message - a->len) return fail(ev, WS_CLOSE_TOO_BIG, "message too big");
    if (!text_ok(a, a->opcode, data, len, fin)) return fail(ev, WS_CLOSE_BAD_DATA, "text is not UTF-8");

    if (fin && !a->in_progress) { /* the common case: one frame, no copy */
        ev->kind = ASM_MESSAGE;
        ev->opcode = a->opcode;
        ev->data = data;
        ev->len = len;
        return;
    }
    if (append(a, data, len) < 0) return fail(ev, WS_CLOSE_TOO_BIG, "out of memory");
    a->in_progress = !fin;
    ev->kind = fin ? ASM_MESSAGE : ASM_MORE;
    ev->opcode = a->opcode;
    ev->data = a->buf;
    ev->len = a->len;
}

void assembler_feed(struct assembler *a, uint8_t bits, const uint8_t *data, size_t len, struct asm_event *ev) {
    enum ws_opcode op = (enum ws_opcode)(bits & FRAME_OPCODE);
    int fin = (bits & FRAME_FIN) != 0;
    memset(ev, 0, sizeof *ev);
    if (bits & FRAME_RSV) return fail(ev, WS_CLOSE_PROTOCOL, "reserved bits set");
    switch (op) {
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!fin) return fail(ev, WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (len > WS_CONTROL_MAX) return fail(ev, WS_CLOSE_PROTOCOL, "control frame too long");
        return control_frame(op, data, len, ev);
    case WS_OP_CONT:
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        return data_frame(a, op, fin, data, len, ev);
    default:
        return fail(ev, WS_CLOSE_PROTOCOL, "reserved opcode");
    }
}

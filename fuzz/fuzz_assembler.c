/* fuzz_assembler: client frames through the RFC 6455 assembler (app/io/assembler.c).
 *
 * Input: byte 0 picks --max-message (0xFF: 65536, else 1 + 4 * byte), then frames, each one header
 * byte as CivetWeb passes it (FIN, RSV, opcode), a 2-byte big-endian payload length (clamped to what
 * is left) and the payload. Every payload is fed from a buffer of exactly its size, so ASan sees any
 * read out of bounds. Each event is compared with a small reference model of the Frames table of
 * docs/PROTOCOL.md written here from the RFC; once a frame fails (the connection would close) the
 * rest is still fed, for robustness, but no longer compared. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "assembler.h"
#include "fuzz_check.h"

struct model {
    size_t max;
    int in_progress;
    int opcode;
    uint8_t *buf;
    size_t len;
};

static int code_ok(unsigned c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

/* Is buf[0..len) a prefix of some valid UTF-8 text (complete = 0) or valid text (complete = 1)? */
static int utf8_ok(const uint8_t *buf, size_t len, int complete) {
    struct utf8_state st;
    utf8_init(&st);
    return utf8_feed(&st, buf, len) == 0 && (!complete || utf8_complete(&st));
}

/* The expected event for a control frame. */
static void model_control(int op, int fin, const uint8_t *p, size_t len, struct asm_event *want) {
    if (!fin || len > 125) {
        want->kind = ASM_FAIL, want->close_code = 1002;
    } else if (op == WS_OP_PING) {
        want->kind = ASM_PING;
    } else if (op == WS_OP_PONG) {
        want->kind = ASM_PONG;
    } else if (len == 0) {
        want->kind = ASM_CLOSE, want->close_code = 0;
    } else if (len == 1 || !code_ok((unsigned)p[0] << 8 | p[1])) {
        want->kind = ASM_FAIL, want->close_code = 1002;
    } else if (!utf8_ok(p + 2, len - 2, 1)) {
        want->kind = ASM_FAIL, want->close_code = 1007;
    } else {
        want->kind = ASM_CLOSE, want->close_code = (uint16_t)((unsigned)p[0] << 8 | p[1]);
    }
}

/* The expected event for a data frame; updates the model. */
static void model_data(struct model *m, int op, int fin, const uint8_t *p, size_t len, struct asm_event *want) {
    want->kind = ASM_FAIL, want->close_code = 1002;
    if ((op == WS_OP_CONT) != m->in_progress) return;
    if (op != WS_OP_CONT) m->opcode = op, m->len = 0;
    want->close_code = 1009;
    if (m->len + len > m->max) return;
    m->buf = realloc(m->buf, m->len + len + 1);
    memcpy(m->buf + m->len, p, len);
    m->len += len;
    want->close_code = 1007;
    if (m->opcode == WS_OP_TEXT && !utf8_ok(m->buf, m->len, fin)) return;
    m->in_progress = !fin;
    want->kind = fin ? ASM_MESSAGE : ASM_MORE;
    want->opcode = (enum ws_opcode)m->opcode;
}

static void model_feed(struct model *m, uint8_t bits, const uint8_t *p, size_t len, struct asm_event *want) {
    int op = bits & 0x0F, fin = (bits & 0x80) != 0;
    memset(want, 0, sizeof *want);
    if (bits & 0x70) want->kind = ASM_FAIL, want->close_code = 1002;
    else if (op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG) model_control(op, fin, p, len, want);
    else if (op <= WS_OP_BINARY) model_data(m, op, fin, p, len, want);
    else want->kind = ASM_FAIL, want->close_code = 1002;
}

static void compare(const struct model *m, const struct asm_event *got, const struct asm_event *want,
                    const uint8_t *p, size_t len) {
    FUZZ_CHECK(got->kind == want->kind);
    if (got->kind == ASM_FAIL || got->kind == ASM_CLOSE) FUZZ_CHECK(got->close_code == want->close_code);
    if (got->kind == ASM_FAIL) FUZZ_CHECK(got->reason != NULL);
    if (got->kind == ASM_PING || got->kind == ASM_PONG)
        FUZZ_CHECK(got->len == len && (len == 0 || memcmp(got->data, p, len) == 0));
    if (got->kind == ASM_MESSAGE) {
        FUZZ_CHECK(got->opcode == want->opcode);
        FUZZ_CHECK(got->len == m->len && got->len <= m->max);
        FUZZ_CHECK(got->len == 0 || memcmp(got->data, m->buf, got->len) == 0); /* reads every byte */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    struct assembler a;
    struct model m = {data[0] == 0xFF ? 65536 : 1 + 4 * (size_t)data[0], 0, 0, NULL, 0};
    int comparing = 1;
    assembler_init(&a, m.max);
    for (size_t off = 1; off + 3 <= size;) {
        uint8_t bits = data[off];
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (len > size - off) len = size - off;
        uint8_t *payload = malloc(len ? len : 1);
        memcpy(payload, data + off, len);
        off += len;
        struct asm_event got, want;
        assembler_feed(&a, bits, payload, len, &got);
        if (comparing) {
            model_feed(&m, bits, payload, len, &want);
            compare(&m, &got, &want, payload, len);
            comparing = got.kind != ASM_FAIL;
        }
        free(payload);
    }
    assembler_free(&a);
    free(m.buf);
    return 0;
}

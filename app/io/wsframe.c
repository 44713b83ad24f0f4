/* wsframe: client frame headers and unmasking (see wsframe.h). */
#include "wsframe.h"

#include <string.h>

#include "assembler.h"

static enum wsframe_result fail(struct wsframe *f, uint16_t code, const char *reason) {
    f->close_code = code;
    f->reason = reason;
    return WSFRAME_FAIL;
}

/* XORs the 4-byte key over the payload, a word at a time where it can. */
static void unmask(uint8_t *p, size_t len, const uint8_t key[4]) {
    uint8_t k8[8];
    for (int i = 0; i < 8; i++) k8[i] = key[i & 3];
    uint64_t k;
    memcpy(&k, k8, 8);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        w ^= k;
        memcpy(p + i, &w, 8);
    }
    for (; i < len; i++) p[i] ^= key[i & 3];
}

enum wsframe_result wsframe_decode(uint8_t *buf, size_t avail, uint64_t max_payload, struct wsframe *f) {
    memset(f, 0, sizeof *f);
    if (avail < 2) return WSFRAME_MORE;
    uint8_t opcode = buf[0] & 0x0F;
    if (!(buf[1] & 0x80)) return fail(f, WS_CLOSE_PROTOCOL, "client frames must be masked");
    uint64_t len = buf[1] & 0x7F;
    size_t hlen = 2;
    if (len == 126) hlen = 4;
    else if (len == 127) hlen = 10;
    if (opcode & 0x08 && len > WS_CONTROL_MAX) return fail(f, WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
    if (avail < hlen + 4) return WSFRAME_MORE;
    if (hlen == 4) len = (uint64_t)buf[2] << 8 | buf[3];
    if (hlen == 10) {
        len = 0;
        for (int i = 0; i < 8; i++) len = len << 8 | buf[2 + i];
        if (len >> 63) return fail(f, WS_CLOSE_PROTOCOL, "frame length has its top bit set");
    }
    if (!(opcode & 0x08) && len > max_payload) return fail(f, WS_CLOSE_TOO_BIG, "message too big");
    hlen += 4;
    f->need = hlen + (size_t)len;
    if (avail < f->need) return WSFRAME_MORE;
    f->bits = buf[0];
    f->payload = buf + hlen;
    f->len = (size_t)len;
    f->size = f->need;
    unmask(f->payload, f->len, buf + hlen - 4);
    return WSFRAME_OK;
}

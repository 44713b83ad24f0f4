/* frame: server-to-client WebSocket frames, encoded once and shared.
 *
 * Server frames are unmasked, so one encoding is right for every recipient: a broadcast to N
 * connections builds one frame and queues N references to it (the send path's main saving).
 * A frame is immutable once built; the last frame_unref frees it. Refcounts are atomic because
 * the frame is released by whichever thread writes it out last. */
#ifndef SB_FRAME_H
#define SB_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

#define WS_CONTROL_MAX 125 /* largest control-frame payload (RFC 6455 5.5) */

struct frame {
    int refs;      /* atomic; starts at 1 for the creator */
    size_t len;    /* bytes[] length: header + payload */
    uint8_t bytes[];
};

/* A FIN frame with `opcode` and a copy of the payload; NULL when out of memory. */
struct frame *frame_new(enum ws_opcode opcode, const void *payload, size_t len);
/* The same, with the payload copied from n pieces in order: an envelope built around a client's
 * bytes without assembling it first. */
struct frame_part {
    const void *bytes;
    size_t len;
};
struct frame *frame_parts(enum ws_opcode opcode, const struct frame_part *parts, size_t n);
/* Frames a[0..n) written one after the other, as one: what an outbox slot (outbox.h) is filled with
 * when its answer is several messages (a welcome and its replay). NULL when out of memory. */
struct frame *frame_concat(struct frame *const *a, size_t n);
/* A close frame carrying `code` and a reason (cut to fit the 125-byte control limit); code 0 gives
 * an empty close, the answer to a close that carried no code. */
struct frame *frame_close(uint16_t code, const char *reason);
/* A text frame holding `obj` serialized without whitespace. */
struct cJSON;
struct frame *frame_json(const struct cJSON *obj);
/* The payload of f (its bytes after the header), *len its length. */
const uint8_t *frame_payload(const struct frame *f, size_t *len);
struct frame *frame_ref(struct frame *f);
void frame_unref(struct frame *f);

#endif

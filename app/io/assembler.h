/* assembler: the RFC 6455 rules for frames from a client, and message reassembly.
 *
 * CivetWeb 1.15 hands the application one callback per frame and checks none of the protocol: not
 * RSV bits, opcodes, control-frame limits, fragment order, close codes or UTF-8. Every frame from a
 * client goes through assembler_feed, which says what it amounts to: nothing yet (a fragment), a
 * whole message, a ping, a pong, a close to answer, or a violation and the close code it earns.
 * Pure and per connection (no locks, no CivetWeb): the connection's event loop (loop.h) feeds it. */
#ifndef SB_ASSEMBLER_H
#define SB_ASSEMBLER_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "utf8.h"

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
};

enum asm_kind {
    ASM_MORE,    /* a fragment was stored; the message is not complete */
    ASM_MESSAGE, /* data/len is a whole text or binary message */
    ASM_PING,    /* data/len is the ping payload, to be echoed in a pong */
    ASM_PONG,    /* nothing to do but note the peer is alive */
    ASM_CLOSE,   /* the peer closes: answer with close_code (0 = an empty close) */
    ASM_FAIL,    /* a violation: close with close_code, reason says why */
};

struct asm_event {
    enum asm_kind kind;
    enum ws_opcode opcode; /* ASM_MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
    const uint8_t *data;   /* valid until the next assembler call */
    size_t len;
    uint16_t close_code;
    const char *reason;
};

struct assembler {
    size_t max_message;    /* the --max-message limit */
    int in_progress;       /* a fragmented message has started and not finished */
    enum ws_opcode opcode; /* of the message in progress */
    uint8_t *buf;          /* fragments so far; owned, grows up to max_message */
    size_t len, cap;
    struct utf8_state utf8;
};

void assembler_init(struct assembler *a, size_t max_message);
void assembler_free(struct assembler *a);
/* Gives back the reassembly buffer unless a fragmented message is in progress, so an idle connection
 * holds none. Call it after using an event (whose data may point into the buffer). */
void assembler_trim(struct assembler *a);
/* `bits` is the frame's first header byte as CivetWeb passes it (FIN, RSV1-3, opcode). */
void assembler_feed(struct assembler *a, uint8_t bits, const uint8_t *data, size_t len, struct asm_event *ev);
/* 1 if a close frame may carry `code` (RFC 6455 7.4), else 0. */
int ws_close_code_valid(unsigned code);

#endif

/* wsframe: the frames a client sends, decoded from the bytes as they arrive.
 *
 * The event loops (loop.h) read raw bytes from a WebSocket; this says whether a whole frame is there
 * yet, where its payload is, and unmasks the payload in place. It refuses what RFC 6455 forbids in a
 * header before a byte of payload is stored: an unmasked client frame, a control frame over 125
 * bytes, a 64-bit length with its top bit set, and (1009) a payload over the caller's limit. The
 * rest of the rules (RSV bits, opcodes, fragment order, UTF-8, close codes) are the assembler's
 * (assembler.h), which takes the frames this finds. Pure: no allocation, no locks. */
#ifndef SB_WSFRAME_H
#define SB_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

#define WSFRAME_HEADER_MAX 14 /* 2 + 8-byte length + 4-byte mask */

enum wsframe_result {
    WSFRAME_MORE, /* not all there yet: `need` says how much the whole frame takes, once known */
    WSFRAME_OK,   /* a whole frame: bits, payload, len and size are set */
    WSFRAME_FAIL, /* a header no client may send: close with close_code, reason says why */
};

struct wsframe {
    uint8_t bits;       /* the first header byte: FIN, RSV1-3, opcode */
    uint8_t *payload;   /* inside the caller's buffer, unmasked */
    size_t len;         /* payload bytes */
    size_t size;        /* header + payload: what the frame took from the buffer */
    size_t need;        /* WSFRAME_MORE: bytes the whole frame needs, 0 while the header is short */
    uint16_t close_code;
    const char *reason;
};

/* Decodes the frame at the start of buf[0..avail), unmasking its payload in place once it is all
 * there. max_payload bounds a data frame's payload (the --max-message limit). */
enum wsframe_result wsframe_decode(uint8_t *buf, size_t avail, uint64_t max_payload, struct wsframe *f);

#endif

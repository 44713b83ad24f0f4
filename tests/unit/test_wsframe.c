/* test_wsframe: decoding client frames from raw bytes (app/io/wsframe.c).
 *
 * The event loops hand wsframe_decode whatever a read brought, so it must be right at every length a
 * read can stop at: each prefix of a frame is "more", with `need` exact once the header is whole, and
 * the payload is unmasked only when all of it is there. Headers no client may send are refused from
 * the header alone, before the payload is stored: an unmasked frame, a control frame over 125 bytes
 * (the 126 and 127 length encodings included), a 64-bit length with its top bit set (1002), and a
 * data frame over max_payload (1009). Frames are built here with the 7-, 16- and 64-bit length forms,
 * and unmasking is compared with a plain byte loop at every length up to 40 and some large ones, at
 * every alignment. */
#include <stdlib.h>

#include "check.h"
#include "frame.h"
#include "wsframe.h"

#define FIN 0x80
#define NO_LIMIT UINT64_MAX

enum len_form { LEN_AUTO, LEN_7, LEN_16, LEN_64 };

static const uint8_t KEY[4] = {0x37, 0xFA, 0x21, 0x3D};

/* Bytes the header of a frame takes, mask included. */
static size_t header_size(size_t len, enum len_form form) {
    if (form == LEN_AUTO) form = len < 126 ? LEN_7 : len < 65536 ? LEN_16 : LEN_64;
    return form == LEN_7 ? 6 : form == LEN_16 ? 8 : 14;
}

/* Writes a client frame to out: header with the given length form, then `payload` masked with KEY
 * (unmasked when masked == 0: no key either). Returns the frame's size. */
static size_t build(uint8_t *out, uint8_t bits, const uint8_t *payload, uint64_t len, enum len_form form, int masked) {
    if (form == LEN_AUTO) form = len < 126 ? LEN_7 : len < 65536 ? LEN_16 : LEN_64;
    size_t h = 0;
    out[h++] = bits;
    uint8_t mask_bit = masked ? 0x80 : 0;
    if (form == LEN_7) out[h++] = mask_bit | (uint8_t)len;
    if (form == LEN_16) {
        out[h++] = mask_bit | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    if (form == LEN_64) {
        out[h++] = mask_bit | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (uint8_t)(len >> (8 * i));
    }
    if (masked) {
        memcpy(out + h, KEY, 4);
        h += 4;
    }
    for (uint64_t i = 0; payload && i < len; i++) out[h + i] = payload[i] ^ (masked ? KEY[i & 3] : 0);
    return h + (size_t)(payload ? len : 0);
}

/* A reproducible payload: not all one byte, so a wrong key offset shows. */
static void fill(uint8_t *p, size_t len, unsigned seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static int is_fail(enum wsframe_result r, const struct wsframe *f, uint16_t code) {
    return r == WSFRAME_FAIL && f->close_code == code && f->reason != NULL;
}

/* A whole frame of `len` bytes in the given length form decodes to the original payload. */
static void check_round_trip(size_t len, enum len_form form) {
    uint8_t *payload = malloc(len + 1), *buf = malloc(len + 14);
    fill(payload, len, (unsigned)len);
    size_t size = build(buf, FIN | WS_OP_BINARY, payload, len, form, 1);
    struct wsframe f;
    CHECK_EQ_INT(wsframe_decode(buf, size, NO_LIMIT, &f), WSFRAME_OK);
    CHECK_EQ_INT(f.bits, FIN | WS_OP_BINARY);
    CHECK_EQ_INT(f.len, len);
    CHECK_EQ_INT(f.size, size);
    CHECK(f.payload == buf + header_size(len, form));
    CHECK(len == 0 || memcmp(f.payload, payload, len) == 0);
    free(payload);
    free(buf);
}

static void test_length_forms(void) {
    static const size_t lens7[] = {0, 1, 2, 3, 4, 5, 17, 124, 125};
    static const size_t lens16[] = {126, 127, 128, 255, 256, 1000, 65535};
    static const size_t lens64[] = {65536, 65537, 70001};
    for (size_t i = 0; i < sizeof lens7 / sizeof *lens7; i++) check_round_trip(lens7[i], LEN_7);
    for (size_t i = 0; i < sizeof lens16 / sizeof *lens16; i++) check_round_trip(lens16[i], LEN_16);
    for (size_t i = 0; i < sizeof lens64 / sizeof *lens64; i++) check_round_trip(lens64[i], LEN_64);
}

/* Every prefix of a frame is "more", with need 0 until the header (mask included) is there and the
 * frame's size after; the bytes are left as they were (no unmasking yet). */
static void check_prefixes(size_t len, enum len_form form) {
    uint8_t *payload = malloc(len + 1), *buf = malloc(len + 14), *orig = malloc(len + 14);
    fill(payload, len, 7);
    size_t size = build(buf, FIN | WS_OP_TEXT, payload, len, form, 1), hsize = header_size(len, form);
    memcpy(orig, buf, size);
    int more = 1, need = 1, kept = 1;
    for (size_t avail = 0; avail < size; avail++) {
        /* small frames: each prefix in a block of exactly its size, so ASan sees a read past it */
        uint8_t *view = size <= 4096 ? memcpy(malloc(avail + !avail), buf, avail) : buf;
        struct wsframe f;
        more &= wsframe_decode(view, avail, NO_LIMIT, &f) == WSFRAME_MORE;
        need &= f.need == (avail < hsize ? 0 : size);
        kept &= memcmp(view, orig, avail) == 0;
        if (view != buf) free(view);
    }
    kept &= memcmp(buf, orig, size) == 0;
    CHECK(more);
    CHECK(need);
    CHECK(kept);
    struct wsframe f;
    CHECK_EQ_INT(wsframe_decode(buf, size, NO_LIMIT, &f), WSFRAME_OK);
    CHECK(f.len == len && (len == 0 || memcmp(f.payload, payload, len) == 0));
    free(payload);
    free(buf);
    free(orig);
}

static void test_prefixes_need_more(void) {
    check_prefixes(0, LEN_7);
    check_prefixes(5, LEN_7);
    check_prefixes(125, LEN_7);
    check_prefixes(126, LEN_16);
    check_prefixes(3000, LEN_16);
    check_prefixes(65536, LEN_64);
    /* a length the client need not have spelled out this long is still read right */
    check_prefixes(9, LEN_64);
}

/* A 64-bit length far beyond what is buffered: the need says so, without waiting for the payload. */
static void test_need_huge(void) {
    uint8_t buf[14];
    struct wsframe f;
    size_t size = build(buf, FIN | WS_OP_BINARY, NULL, UINT64_C(1) << 40, LEN_64, 1);
    CHECK_EQ_INT(size, 14);
    CHECK_EQ_INT(wsframe_decode(buf, size, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK(f.need == 14 + (UINT64_C(1) << 40));
}

/* Several frames in one buffer, as one read brings them: each decodes from where the last ended. */
static void test_back_to_back(void) {
    static const struct {
        uint8_t bits;
        size_t len;
    } fs[] = {{WS_OP_TEXT, 3}, {FIN | WS_OP_PING, 0}, {FIN | WS_OP_CONT, 200}, {FIN | WS_OP_BINARY, 70000},
              {FIN | WS_OP_CLOSE, 2}, {FIN | WS_OP_TEXT, 1}};
    size_t n = sizeof fs / sizeof *fs, total = 0;
    uint8_t *buf = malloc(80000), *payload = malloc(70000);
    for (size_t i = 0; i < n; i++) {
        fill(payload, fs[i].len, (unsigned)i);
        total += build(buf + total, fs[i].bits, payload, fs[i].len, LEN_AUTO, 1);
    }
    total += 3; /* the start of one more frame */
    buf[total - 3] = FIN | WS_OP_TEXT, buf[total - 2] = 0x80 | 4, buf[total - 1] = 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct wsframe f;
        if (!CHECK_EQ_INT(wsframe_decode(buf + off, total - off, NO_LIMIT, &f), WSFRAME_OK)) break;
        fill(payload, fs[i].len, (unsigned)i);
        CHECK_EQ_INT(f.bits, fs[i].bits);
        CHECK_EQ_INT(f.len, fs[i].len);
        CHECK(f.len == 0 || memcmp(f.payload, payload, f.len) == 0);
        off += f.size;
    }
    struct wsframe f;
    CHECK_EQ_INT(off, total - 3);
    CHECK_EQ_INT(wsframe_decode(buf + off, total - off, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK_EQ_INT(f.need, 0); /* 3 of the 6 header bytes */
    CHECK_EQ_INT(wsframe_decode(buf + total, 0, NO_LIMIT, &f), WSFRAME_MORE);
    free(buf);
    free(payload);
}

/* Unmasking (a word at a time inside wsframe.c) against a byte loop, at every alignment of the
 * payload in memory, with the bytes either side left alone. */
static int unmask_matches(size_t len, size_t align) {
    uint8_t *payload = calloc(1, len + 1), *buf = malloc(len + 14 + align + 1);
    fill(payload, len, (unsigned)(len * 8 + align));
    size_t size = build(buf + align, FIN | WS_OP_BINARY, payload, len, LEN_AUTO, 1);
    buf[align + size] = 0xA5; /* a guard byte just after the frame */
    uint8_t *masked = malloc(len + 1), *want = malloc(len + 1);
    memcpy(masked, buf + align + size - len, len);
    for (size_t i = 0; i < len; i++) want[i] = masked[i] ^ KEY[i % 4];
    struct wsframe f;
    int ok = wsframe_decode(buf + align, size, NO_LIMIT, &f) == WSFRAME_OK && f.len == len &&
             (len == 0 || memcmp(f.payload, want, len) == 0) && memcmp(want, payload, len) == 0 &&
             buf[align + size] == 0xA5 && memcmp(buf + align + size - len - 4, KEY, 4) == 0;
    free(payload);
    free(buf);
    free(masked);
    free(want);
    return ok;
}

static void test_unmask_every_length_and_alignment(void) {
    static const size_t large[] = {125, 126, 1023, 4097, 65535, 65536, 100003};
    int ok = 1;
    for (size_t len = 0; len <= 40; len++)
        for (size_t align = 0; align < 8; align++) ok &= unmask_matches(len, align);
    CHECK(ok);
    for (size_t i = 0; i < sizeof large / sizeof *large; i++)
        for (size_t align = 0; align < 8; align++) CHECK(unmask_matches(large[i], align));
}

/* A client frame without a mask is refused from its second byte, whatever follows. */
static void test_unmasked(void) {
    uint8_t buf[64], payload[5] = "hello";
    struct wsframe f;
    size_t size = build(buf, FIN | WS_OP_TEXT, payload, 5, LEN_7, 0);
    CHECK_EQ_INT(wsframe_decode(buf, 1, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
    CHECK(is_fail(wsframe_decode(buf, size, NO_LIMIT, &f), &f, 1002));
    CHECK(memcmp(buf + 2, "hello", 5) == 0); /* nothing was "unmasked" */
    build(buf, FIN | WS_OP_PING, NULL, 0, LEN_7, 0);
    CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
    build(buf, FIN | WS_OP_BINARY, NULL, 300, LEN_16, 0);
    CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
}

/* Control frames (opcodes 8-15) carry at most 125 bytes: 126 and 127 in the 7-bit field are already
 * too long, whatever the extended length says, so two bytes decide. */
static void test_control_too_long(void) {
    static const uint8_t ops[] = {WS_OP_CLOSE, WS_OP_PING, WS_OP_PONG, 0xB, 0xF};
    uint8_t buf[300] = {0};
    struct wsframe f;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        uint8_t bits = FIN | ops[i];
        build(buf, bits, NULL, 126, LEN_16, 1);
        CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
        build(buf, bits, NULL, 5, LEN_16, 1); /* a short length in the 16-bit form */
        CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
        build(buf, bits, NULL, 5, LEN_64, 1);
        CHECK(is_fail(wsframe_decode(buf, 2, NO_LIMIT, &f), &f, 1002));
        build(buf, bits, NULL, 70000, LEN_64, 1);
        CHECK(is_fail(wsframe_decode(buf, 14, NO_LIMIT, &f), &f, 1002));
        uint8_t payload[125];
        fill(payload, 125, i);
        size_t size = build(buf, bits, payload, 125, LEN_7, 1); /* the limit itself is fine */
        CHECK(wsframe_decode(buf, size, NO_LIMIT, &f) == WSFRAME_OK && f.len == 125 && memcmp(f.payload, payload, 125) == 0);
    }
    /* a data frame may use the long forms for 126 bytes */
    build(buf, FIN | WS_OP_TEXT, NULL, 126, LEN_16, 1);
    CHECK_EQ_INT(wsframe_decode(buf, 8, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK_EQ_INT(f.need, 8 + 126);
}

/* RFC 6455 5.2: the most significant bit of a 64-bit length must be 0. */
static void test_length_top_bit(void) {
    uint8_t buf[14];
    struct wsframe f;
    build(buf, FIN | WS_OP_BINARY, NULL, UINT64_C(1) << 63, LEN_64, 1);
    CHECK_EQ_INT(wsframe_decode(buf, 13, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK(is_fail(wsframe_decode(buf, 14, NO_LIMIT, &f), &f, 1002));
    CHECK(is_fail(wsframe_decode(buf, 14, 100, &f), &f, 1002)); /* a protocol error, not a size */
    build(buf, FIN | WS_OP_BINARY, NULL, UINT64_MAX, LEN_64, 1);
    CHECK(is_fail(wsframe_decode(buf, 14, NO_LIMIT, &f), &f, 1002));
    build(buf, FIN | WS_OP_BINARY, NULL, UINT64_MAX >> 1, LEN_64, 1); /* the largest allowed */
    CHECK_EQ_INT(wsframe_decode(buf, 14, NO_LIMIT, &f), WSFRAME_MORE);
    CHECK(f.need == 14 + (UINT64_MAX >> 1));
    CHECK(is_fail(wsframe_decode(buf, 14, 65536, &f), &f, 1009));
}

/* A data frame over max_payload is refused as soon as its header is whole: no payload is waited for. */
static void test_over_max_payload(void) {
    uint8_t buf[200];
    struct wsframe f;
    static const enum len_form forms[] = {LEN_7, LEN_16, LEN_64};
    for (size_t i = 0; i < 3; i++) {
        size_t h = header_size(0, forms[i]);
        build(buf, FIN | WS_OP_TEXT, NULL, 101, forms[i], 1);
        CHECK_EQ_INT(wsframe_decode(buf, h - 1, 100, &f), WSFRAME_MORE);
        CHECK(is_fail(wsframe_decode(buf, h, 100, &f), &f, 1009));
        build(buf, WS_OP_CONT, NULL, 101, forms[i], 1);
        CHECK(is_fail(wsframe_decode(buf, h, 100, &f), &f, 1009));
        build(buf, FIN | WS_OP_BINARY, NULL, 100, forms[i], 1); /* exactly the limit: wait for it */
        CHECK_EQ_INT(wsframe_decode(buf, h, 100, &f), WSFRAME_MORE);
        CHECK_EQ_INT(f.need, h + 100);
    }
    uint8_t one = 'x';
    size_t size = build(buf, FIN | WS_OP_TEXT, &one, 1, LEN_7, 1);
    CHECK(is_fail(wsframe_decode(buf, size, 0, &f), &f, 1009));
    size = build(buf, FIN | WS_OP_TEXT, NULL, 0, LEN_7, 1);
    CHECK(wsframe_decode(buf, size, 0, &f) == WSFRAME_OK && f.len == 0 && f.size == 6);
}

/* max_payload is the --max-message limit, which wsframe.h says bounds a data frame; control frames
 * are bounded by 125 alone (the assembler and docs/PROTOCOL.md agree: 1009 is for a message). So
 * with a limit of 10, a 20-byte ping or a close with a 20-byte reason is still a frame. */
static void test_control_within_125_over_max_payload(void) {
    uint8_t buf[200], payload[125];
    struct wsframe f;
    fill(payload, sizeof payload, 3);
    size_t size = build(buf, FIN | WS_OP_PING, payload, 20, LEN_7, 1);
    CHECK(wsframe_decode(buf, size, 10, &f) == WSFRAME_OK && f.len == 20 && memcmp(f.payload, payload, 20) == 0);
    memcpy(payload, "\x03\xE8" "a reason of 20 bytes", 22);
    size = build(buf, FIN | WS_OP_CLOSE, payload, 22, LEN_7, 1);
    CHECK_EQ_INT(wsframe_decode(buf, size, 10, &f), WSFRAME_OK);
    size = build(buf, FIN | WS_OP_PONG, payload, 125, LEN_7, 1);
    CHECK_EQ_INT(wsframe_decode(buf, size, 1, &f), WSFRAME_OK);
}

/* RSV bits and opcodes are the assembler's to judge: the first byte is passed on as it came. */
static void test_bits_passed_through(void) {
    uint8_t buf[16];
    struct wsframe f;
    size_t size = build(buf, 0x70 | 0x3, NULL, 0, LEN_7, 1);
    CHECK(wsframe_decode(buf, size, NO_LIMIT, &f) == WSFRAME_OK && f.bits == 0x73);
}

int main(void) {
    test_length_forms();
    test_prefixes_need_more();
    test_need_huge();
    test_back_to_back();
    test_unmask_every_length_and_alignment();
    test_unmasked();
    test_control_too_long();
    test_length_top_bit();
    test_over_max_payload();
    test_control_within_125_over_max_payload();
    test_bits_passed_through();
    return check_done();
}

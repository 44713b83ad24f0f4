/* test_assembler: RFC 6455 rules for client frames and message reassembly (app/io/assembler.c).
 *
 * CivetWeb checks none of the protocol, so the assembler is the server's whole defence. Every row of
 * the "Frames" table in docs/PROTOCOL.md that is decided per frame is driven here: whole and
 * fragmented messages with control frames between fragments, orphan continuations, a new message
 * inside a fragmented one, RSV bits, reserved opcodes, oversized or fragmented control frames, close
 * codes and reasons, --max-message at the exact limit and one past it (single frame and fragments),
 * and UTF-8 that is invalid or incomplete across fragment boundaries. */
#include <stdlib.h>

#include "assembler.h"
#include "check.h"

#define FIN 0x80
#define MAX 64 /* --max-message for most tests */

static struct asm_event feed(struct assembler *a, uint8_t bits, const void *data, size_t len) {
    struct asm_event ev;
    assembler_feed(a, bits, data, len, &ev);
    return ev;
}

#define FEED(a, bits, lit) feed((a), (bits), (lit), sizeof(lit) - 1)

/* The event is a whole message of `op` holding exactly `want`. */
static int is_message(struct asm_event ev, enum ws_opcode op, const char *want, size_t len) {
    return ev.kind == ASM_MESSAGE && ev.opcode == op && ev.len == len && (len == 0 || memcmp(ev.data, want, len) == 0);
}

#define IS_MESSAGE(ev, op, lit) is_message((ev), (op), (lit), sizeof(lit) - 1)
#define IS_FAIL(ev, code) ((ev).kind == ASM_FAIL && (ev).close_code == (code) && (ev).reason != NULL)

static void test_single_frames(void) {
    struct assembler a;
    assembler_init(&a, MAX);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_TEXT, "{\"type\":\"ping\"}"), WS_OP_TEXT, "{\"type\":\"ping\"}"));
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_TEXT, ""), WS_OP_TEXT, ""));
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_BINARY, "\xFF\x00\xC0"), WS_OP_BINARY, "\xFF\x00\xC0")); /* not UTF-8: fine */
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_TEXT, "h\xC3\xA9"), WS_OP_TEXT, "h\xC3\xA9"));
    assembler_free(&a);
}

static void test_fragments_with_control_between(void) {
    struct assembler a;
    struct asm_event ev;
    assembler_init(&a, MAX);
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "hel").kind, ASM_MORE);
    ev = FEED(&a, FIN | WS_OP_PING, "are you there");
    CHECK(ev.kind == ASM_PING && ev.len == 13 && memcmp(ev.data, "are you there", 13) == 0);
    CHECK_EQ_INT(FEED(&a, WS_OP_CONT, "lo").kind, ASM_MORE);
    CHECK_EQ_INT(FEED(&a, FIN | WS_OP_PONG, "").kind, ASM_PONG);
    CHECK_EQ_INT(FEED(&a, WS_OP_CONT, "").kind, ASM_MORE); /* empty fragments are allowed */
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, " world"), WS_OP_TEXT, "hello world"));
    /* the next message starts from scratch */
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_TEXT, "again"), WS_OP_TEXT, "again"));
    CHECK_EQ_INT(FEED(&a, WS_OP_BINARY, "\x01").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, "\x02"), WS_OP_BINARY, "\x01\x02"));
    assembler_free(&a);
}

/* A message whose first fragment is empty: the buffer has nothing in it yet when the rest arrives. */
static void test_empty_first_fragment(void) {
    struct assembler a;
    assembler_init(&a, MAX);
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, "ab"), WS_OP_TEXT, "ab"));
    CHECK_EQ_INT(FEED(&a, WS_OP_BINARY, "").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, ""), WS_OP_BINARY, ""));
    assembler_free(&a);
}

static void test_close_inside_fragmented(void) {
    struct assembler a;
    assembler_init(&a, MAX);
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "part").kind, ASM_MORE);
    struct asm_event ev = FEED(&a, FIN | WS_OP_CLOSE, "\x03\xE8");
    CHECK(ev.kind == ASM_CLOSE && ev.close_code == 1000);
    assembler_free(&a);
}

static void test_orphan_continuation(void) {
    struct assembler a;
    assembler_init(&a, MAX);
    CHECK(IS_FAIL(FEED(&a, FIN | WS_OP_CONT, "x"), WS_CLOSE_PROTOCOL));
    assembler_free(&a);
    assembler_init(&a, MAX);
    CHECK(IS_FAIL(FEED(&a, WS_OP_CONT, "x"), WS_CLOSE_PROTOCOL));
    assembler_free(&a);
    assembler_init(&a, MAX); /* a continuation after a message already finished */
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "a").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, "b"), WS_OP_TEXT, "ab"));
    CHECK(IS_FAIL(FEED(&a, FIN | WS_OP_CONT, "c"), WS_CLOSE_PROTOCOL));
    assembler_free(&a);
}

static void test_new_message_inside_fragmented(void) {
    const uint8_t starts[] = {WS_OP_TEXT, FIN | WS_OP_TEXT, WS_OP_BINARY, FIN | WS_OP_BINARY};
    for (size_t i = 0; i < sizeof starts; i++) {
        struct assembler a;
        assembler_init(&a, MAX);
        CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "first").kind, ASM_MORE);
        CHECK(IS_FAIL(FEED(&a, starts[i], "second"), WS_CLOSE_PROTOCOL));
        assembler_free(&a);
    }
}

static void test_rsv_bits(void) {
    const uint8_t rsv[] = {0x10, 0x20, 0x40, 0x70};
    const uint8_t ops[] = {FIN | WS_OP_TEXT, FIN | WS_OP_BINARY, FIN | WS_OP_PING, FIN | WS_OP_CLOSE, WS_OP_TEXT};
    int wrong = 0;
    for (size_t r = 0; r < sizeof rsv; r++) {
        for (size_t o = 0; o < sizeof ops; o++) {
            struct assembler a;
            assembler_init(&a, MAX);
            wrong += !IS_FAIL(FEED(&a, rsv[r] | ops[o], "x"), WS_CLOSE_PROTOCOL);
            assembler_free(&a);
        }
    }
    CHECK_EQ_INT(wrong, 0);
    struct assembler a; /* on a continuation too */
    assembler_init(&a, MAX);
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "a").kind, ASM_MORE);
    CHECK(IS_FAIL(FEED(&a, FIN | 0x40 | WS_OP_CONT, "b"), WS_CLOSE_PROTOCOL));
    assembler_free(&a);
}

static void test_reserved_opcodes(void) {
    const uint8_t ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF};
    int wrong = 0;
    for (size_t i = 0; i < sizeof ops; i++) {
        for (int fin = 0; fin <= FIN; fin += FIN) {
            struct assembler a;
            assembler_init(&a, MAX);
            wrong += !IS_FAIL(FEED(&a, (uint8_t)(fin | ops[i]), ""), WS_CLOSE_PROTOCOL);
            assembler_free(&a);
        }
    }
    CHECK_EQ_INT(wrong, 0);
}

static void test_control_limits(void) {
    struct assembler a;
    uint8_t big[126];
    memset(big, 'p', sizeof big);
    assembler_init(&a, 1024);
    struct asm_event ev = feed(&a, FIN | WS_OP_PING, big, 125);
    CHECK(ev.kind == ASM_PING && ev.len == 125);
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_PING, big, 126), WS_CLOSE_PROTOCOL));
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_PONG, big, 126), WS_CLOSE_PROTOCOL));
    big[0] = 0x03, big[1] = 0xE8; /* a valid code, then 124 bytes of reason */
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_CLOSE, big, 126), WS_CLOSE_PROTOCOL));
    ev = feed(&a, FIN | WS_OP_CLOSE, big, 125);
    CHECK(ev.kind == ASM_CLOSE && ev.close_code == 1000);
    assembler_free(&a);
}

static void test_fragmented_control(void) {
    const uint8_t ops[] = {WS_OP_PING, WS_OP_PONG, WS_OP_CLOSE};
    for (size_t i = 0; i < sizeof ops; i++) {
        struct assembler a;
        assembler_init(&a, MAX);
        CHECK(IS_FAIL(feed(&a, ops[i], "\x03\xE8", 2), WS_CLOSE_PROTOCOL));
        assembler_free(&a);
    }
}

/* RFC 6455 7.4: what a peer may send. Written out independently of the code under test. */
static int code_ok(unsigned c) {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

static void test_close_code_table(void) {
    int wrong = 0;
    for (unsigned c = 0; c <= 0xFFFF; c++) wrong += ws_close_code_valid(c) != code_ok(c);
    CHECK_EQ_INT(wrong, 0);
    CHECK(!ws_close_code_valid(70000));
}

static struct asm_event close_with(unsigned code, const char *reason) {
    struct assembler a;
    uint8_t p[WS_CONTROL_MAX] = {(uint8_t)(code >> 8), (uint8_t)code};
    size_t rlen = strlen(reason);
    memcpy(p + 2, reason, rlen);
    assembler_init(&a, MAX);
    struct asm_event ev = feed(&a, FIN | WS_OP_CLOSE, p, 2 + rlen);
    assembler_free(&a);
    return ev;
}

static void test_close_codes(void) {
    const unsigned good[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999};
    const unsigned bad[] = {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct asm_event ev = close_with(good[i], "bye");
        if (!CHECK(ev.kind == ASM_CLOSE && ev.close_code == good[i])) fprintf(stderr, "    code %u\n", good[i]);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!CHECK(IS_FAIL(close_with(bad[i], ""), WS_CLOSE_PROTOCOL))) fprintf(stderr, "    code %u\n", bad[i]);
    struct assembler a;
    assembler_init(&a, MAX);
    struct asm_event ev = feed(&a, FIN | WS_OP_CLOSE, NULL, 0);
    CHECK(ev.kind == ASM_CLOSE && ev.close_code == 0); /* empty close: answered with an empty close */
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_CLOSE, "\x03", 1), WS_CLOSE_PROTOCOL)); /* 1-byte payload */
    assembler_free(&a);
}

static void test_close_reason_utf8(void) {
    struct asm_event ev = close_with(1000, "caf\xC3\xA9");
    CHECK(ev.kind == ASM_CLOSE && ev.close_code == 1000);
    CHECK(IS_FAIL(close_with(1000, "caf\xC3"), WS_CLOSE_BAD_DATA));        /* truncated */
    CHECK(IS_FAIL(close_with(1001, "\xED\xA0\x80"), WS_CLOSE_BAD_DATA));   /* surrogate */
    CHECK(IS_FAIL(close_with(4000, "\xFF"), WS_CLOSE_BAD_DATA));
    CHECK(IS_FAIL(close_with(999, "\xFF"), WS_CLOSE_PROTOCOL)); /* a bad code is reported as such */
}

static void test_max_single_frame(void) {
    struct assembler a;
    uint8_t buf[MAX + 1];
    memset(buf, 'm', sizeof buf);
    assembler_init(&a, MAX);
    struct asm_event ev = feed(&a, FIN | WS_OP_TEXT, buf, MAX);
    CHECK(ev.kind == ASM_MESSAGE && ev.len == MAX);
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_TEXT, buf, MAX + 1), WS_CLOSE_TOO_BIG));
    assembler_free(&a);
    assembler_init(&a, MAX);
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_BINARY, buf, MAX + 1), WS_CLOSE_TOO_BIG));
    assembler_free(&a);
}

static void test_max_fragments(void) {
    struct assembler a;
    uint8_t buf[MAX + 1];
    memset(buf, 'f', sizeof buf);
    assembler_init(&a, MAX); /* exactly MAX in three fragments */
    CHECK_EQ_INT(feed(&a, WS_OP_TEXT, buf, 30).kind, ASM_MORE);
    CHECK_EQ_INT(feed(&a, WS_OP_CONT, buf, 30).kind, ASM_MORE);
    struct asm_event ev = feed(&a, FIN | WS_OP_CONT, buf, MAX - 60);
    CHECK(ev.kind == ASM_MESSAGE && ev.len == MAX && memcmp(ev.data, buf, MAX) == 0);
    assembler_free(&a);
    assembler_init(&a, MAX); /* MAX + 1: refused at the fragment that crosses, before FIN */
    CHECK_EQ_INT(feed(&a, WS_OP_TEXT, buf, 30).kind, ASM_MORE);
    CHECK_EQ_INT(feed(&a, WS_OP_CONT, buf, 30).kind, ASM_MORE);
    CHECK(IS_FAIL(feed(&a, WS_OP_CONT, buf, MAX - 59), WS_CLOSE_TOO_BIG));
    assembler_free(&a);
    assembler_init(&a, MAX); /* filled exactly, then one more byte in the final fragment */
    CHECK_EQ_INT(feed(&a, WS_OP_BINARY, buf, MAX).kind, ASM_MORE);
    CHECK(IS_FAIL(feed(&a, FIN | WS_OP_CONT, buf, 1), WS_CLOSE_TOO_BIG));
    assembler_free(&a);
    assembler_init(&a, MAX); /* the limit is per message: a second full one is fine */
    CHECK_EQ_INT(feed(&a, WS_OP_TEXT, buf, MAX).kind, ASM_MORE);
    CHECK_EQ_INT(feed(&a, FIN | WS_OP_CONT, buf, 0).kind, ASM_MESSAGE);
    CHECK_EQ_INT(feed(&a, WS_OP_TEXT, buf, MAX).kind, ASM_MORE);
    CHECK_EQ_INT(feed(&a, FIN | WS_OP_CONT, buf, 0).kind, ASM_MESSAGE);
    assembler_free(&a);
}

/* A limit far above the buffer's first allocation: the buffer must grow to hold it all. */
static void test_large_reassembly(void) {
    struct assembler a;
    size_t total = 200000, chunk = 999;
    uint8_t *buf = malloc(total);
    for (size_t i = 0; i < total; i++) buf[i] = (uint8_t)('a' + i % 26);
    assembler_init(&a, total);
    int more = 1;
    size_t off = 0;
    for (; off + chunk < total; off += chunk) {
        uint8_t op = off ? WS_OP_CONT : WS_OP_TEXT;
        more &= feed(&a, op, buf + off, chunk).kind == ASM_MORE;
    }
    CHECK(more);
    struct asm_event ev = feed(&a, FIN | WS_OP_CONT, buf + off, total - off);
    CHECK(ev.kind == ASM_MESSAGE && ev.len == total && memcmp(ev.data, buf, total) == 0);
    assembler_free(&a);
    free(buf);
}

static void test_utf8_across_fragments(void) {
    struct assembler a;
    assembler_init(&a, MAX); /* a code point split over three fragments is fine */
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "\xF0\x9F").kind, ASM_MORE);
    CHECK_EQ_INT(FEED(&a, WS_OP_CONT, "\x98").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, "\x80"), WS_OP_TEXT, "\xF0\x9F\x98\x80"));
    assembler_free(&a);
    assembler_init(&a, MAX); /* invalid once joined: refused at the fragment that proves it, before FIN */
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "ok \xE2\x82").kind, ASM_MORE);
    CHECK(IS_FAIL(FEED(&a, WS_OP_CONT, "\x28"), WS_CLOSE_BAD_DATA));
    assembler_free(&a);
    assembler_init(&a, MAX); /* a surrogate split after its lead byte */
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "\xED").kind, ASM_MORE);
    CHECK(IS_FAIL(FEED(&a, FIN | WS_OP_CONT, "\xA0\x80"), WS_CLOSE_BAD_DATA));
    assembler_free(&a);
    assembler_init(&a, MAX); /* bad in the first fragment: refused at once */
    CHECK(IS_FAIL(FEED(&a, WS_OP_TEXT, "\xC0\x80"), WS_CLOSE_BAD_DATA));
    assembler_free(&a);
}

static void test_utf8_incomplete_at_fin(void) {
    struct assembler a;
    assembler_init(&a, MAX);
    CHECK(IS_FAIL(FEED(&a, FIN | WS_OP_TEXT, "abc\xE2\x82"), WS_CLOSE_BAD_DATA));
    assembler_free(&a);
    assembler_init(&a, MAX);
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "abc").kind, ASM_MORE);
    CHECK_EQ_INT(FEED(&a, WS_OP_CONT, "\xE2").kind, ASM_MORE);
    CHECK(IS_FAIL(FEED(&a, FIN | WS_OP_CONT, ""), WS_CLOSE_BAD_DATA));
    assembler_free(&a);
    assembler_init(&a, MAX); /* an earlier incomplete text message leaves no state behind */
    CHECK_EQ_INT(FEED(&a, WS_OP_TEXT, "\xE2\x82").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, "\xAC"), WS_OP_TEXT, "\xE2\x82\xAC"));
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_TEXT, "\x41"), WS_OP_TEXT, "A"));
    assembler_free(&a);
    assembler_init(&a, MAX); /* binary is never checked */
    CHECK_EQ_INT(FEED(&a, WS_OP_BINARY, "\xE2").kind, ASM_MORE);
    CHECK(IS_MESSAGE(FEED(&a, FIN | WS_OP_CONT, ""), WS_OP_BINARY, "\xE2"));
    assembler_free(&a);
}

int main(void) {
    test_single_frames();
    test_fragments_with_control_between();
    test_empty_first_fragment();
    test_close_inside_fragmented();
    test_orphan_continuation();
    test_new_message_inside_fragmented();
    test_rsv_bits();
    test_reserved_opcodes();
    test_control_limits();
    test_fragmented_control();
    test_close_code_table();
    test_close_codes();
    test_close_reason_utf8();
    test_max_single_frame();
    test_max_fragments();
    test_large_reassembly();
    test_utf8_across_fragments();
    test_utf8_incomplete_at_fin();
    return check_done();
}

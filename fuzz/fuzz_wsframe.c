/* fuzz_wsframe: client frame decoding and unmasking (app/io/wsframe.c), as the event loops drive it.
 *
 * Input: byte 0 picks max_payload (0xFF: no limit, 0xFE: 65536, else the byte itself, so that 1009
 * is common), the rest is what a client sent. It is decoded frame after frame from a buffer of
 * exactly its size, and every answer is compared with a reference decode of RFC 6455 5.2 written here
 * (result, close code, need, size, bits, payload unmasked byte by byte); "more" must leave the bytes
 * untouched and report a need beyond what is there. Then the same bytes are decoded again as if they
 * came in two reads, split at every point (1024 points spread over longer inputs): the frames, and
 * how the stream ends (more, with the same need, or the same failure), must be the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "wsframe.h"

#define SPLITS_MAX 1024

struct ref {
    enum wsframe_result r;
    uint16_t code;
    uint64_t need; /* MORE: 0 until the header is whole; OK: the frame's size */
    size_t hlen;   /* header bytes, mask included */
    uint64_t len;
};

/* The header rules read from the RFC: a mask on every client frame, control frames (opcode bit 3) of
 * at most 125 bytes in the 7-bit form, a 64-bit length below 2^63, data frames within max. */
static struct ref ref_decode(const uint8_t *b, size_t avail, uint64_t max) {
    struct ref x = {WSFRAME_MORE, 0, 0, 0, 0};
    if (avail < 2) return x;
    int control = (b[0] & 0x0F) >= 8;
    uint8_t len7 = b[1] & 0x7F;
    if (!(b[1] & 0x80) || (control && len7 > 125)) return x.r = WSFRAME_FAIL, x.code = 1002, x;
    size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    x.hlen = 2 + ext + 4;
    if (avail < x.hlen) return x;
    x.len = len7 < 126 ? len7 : 0;
    for (size_t i = 0; i < ext; i++) x.len = x.len * 256 + b[2 + i];
    if (x.len >= UINT64_C(1) << 63) return x.r = WSFRAME_FAIL, x.code = 1002, x;
    if (!control && x.len > max) return x.r = WSFRAME_FAIL, x.code = 1009, x;
    x.need = x.hlen + x.len;
    if (avail >= x.need) x.r = WSFRAME_OK;
    return x;
}

struct seen {
    size_t off, size, len;
    uint8_t bits;
};

struct run {
    struct seen *frames; /* the whole-buffer decode's frames */
    size_t n;
    enum wsframe_result end; /* how it stopped: MORE or FAIL */
    uint16_t code;
    size_t need;
    uint8_t *unmasked; /* the whole-buffer decode's buffer afterwards */
};

/* One decode at buf[0..avail) (orig is what those bytes were), checked against the reference. */
static enum wsframe_result decode_checked(uint8_t *buf, const uint8_t *orig, size_t avail, uint64_t max,
                                          struct wsframe *f) {
    struct ref want = ref_decode(orig, avail, max);
    enum wsframe_result r = wsframe_decode(buf, avail, max, f);
    FUZZ_CHECK(r == want.r);
    if (r == WSFRAME_FAIL) {
        FUZZ_CHECK(f->close_code == 1002 || f->close_code == 1009);
        FUZZ_CHECK(f->close_code == want.code && f->reason != NULL);
    } else if (r == WSFRAME_MORE) {
        FUZZ_CHECK(f->need == want.need);
        FUZZ_CHECK(f->need == 0 || f->need > avail);
        FUZZ_CHECK(avail == 0 || memcmp(buf, orig, avail) == 0); /* nothing unmasked yet */
    } else {
        FUZZ_CHECK(f->size == want.need && f->size <= avail && f->len == want.len && f->bits == orig[0]);
        FUZZ_CHECK(f->payload == buf + want.hlen && f->payload + f->len == buf + f->size);
        const uint8_t *key = orig + want.hlen - 4;
        for (size_t i = 0; i < f->len; i++) FUZZ_CHECK(f->payload[i] == (orig[want.hlen + i] ^ key[i & 3]));
    }
    return r;
}

/* Decodes frame after frame through the whole buffer, as one read would bring it. */
static void run_whole(const uint8_t *orig, size_t n, uint64_t max, struct run *w) {
    w->unmasked = malloc(n ? n : 1);
    memcpy(w->unmasked, orig, n);
    w->frames = malloc((n / 6 + 1) * sizeof *w->frames); /* a frame takes 6 bytes at least */
    w->n = 0;
    size_t off = 0;
    for (;;) {
        struct wsframe f;
        enum wsframe_result r = decode_checked(w->unmasked + off, orig + off, n - off, max, &f);
        if (r != WSFRAME_OK) {
            w->end = r, w->code = f.close_code, w->need = f.need;
            return;
        }
        w->frames[w->n++] = (struct seen){off, f.size, f.len, f.bits};
        off += f.size;
    }
}

/* The same bytes in two reads, [0, split) then the rest: the same frames, the same end. */
static void run_split(const uint8_t *orig, size_t n, uint64_t max, size_t split, const struct run *w,
                      uint8_t *buf) {
    memcpy(buf, orig, n);
    size_t off = 0, k = 0, have = split;
    for (;;) {
        struct wsframe f;
        enum wsframe_result r = decode_checked(buf + off, orig + off, have - off, max, &f);
        if (r == WSFRAME_OK) {
            FUZZ_CHECK(k < w->n && w->frames[k].off == off && w->frames[k].size == f.size);
            FUZZ_CHECK(w->frames[k].bits == f.bits && w->frames[k].len == f.len);
            FUZZ_CHECK(f.len == 0 || memcmp(f.payload, w->unmasked + off + f.size - f.len, f.len) == 0);
            off += f.size, k++;
            continue;
        }
        if (r == WSFRAME_MORE && have < n) { /* the second read arrives */
            if (f.need) FUZZ_CHECK(k < w->n ? f.need == w->frames[k].size : w->end == WSFRAME_MORE && f.need == w->need);
            have = n;
            continue;
        }
        FUZZ_CHECK(k == w->n && r == w->end);
        FUZZ_CHECK(r == WSFRAME_MORE ? f.need == w->need : f.close_code == w->code);
        return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint64_t max = data[0] == 0xFF ? UINT64_MAX : data[0] == 0xFE ? 65536 : data[0];
    size_t n = size - 1;
    uint8_t *orig = malloc(n ? n : 1), *buf = malloc(n ? n : 1); /* exactly the input: ASan sees overreads */
    memcpy(orig, data + 1, n);
    struct run w;
    run_whole(orig, n, max, &w);
    size_t step = n > SPLITS_MAX ? n / SPLITS_MAX : 1;
    for (size_t split = 0; split < n; split += step) run_split(orig, n, max, split, &w, buf);
    free(w.frames);
    free(w.unmasked);
    free(orig);
    free(buf);
    return 0;
}

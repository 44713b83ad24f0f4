/* fuzz_head: the request head reader (app/front/head.c), which sees every byte a client sends before
 * anything else does.
 *
 * Input: byte 0 picks where the bytes are cut into two pieces (as two reads would bring them), the
 * rest is what the client sent. Beyond not crashing or reading past the buffer (each piece and the
 * parsed head are copies of exactly their size): the head is found at the same place however the bytes
 * are cut; it ends with a line feed; a head parsed OK has a method of token characters, a path and
 * fields with no control characters, and head_field finds its first field's value. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "head.h"

static size_t scan_whole(const uint8_t *data, size_t size) {
    struct head_scan sc = {0};
    char *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    size_t n = head_scan(&sc, buf, size);
    free(buf);
    return n;
}

static size_t scan_cut(const uint8_t *data, size_t size, size_t cut) {
    struct head_scan sc = {0};
    char *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, cut);
    size_t n = head_scan(&sc, buf, cut);
    if (!n) {
        memcpy(buf + cut, data + cut, size - cut);
        n = head_scan(&sc, buf, size);
    }
    free(buf);
    return n;
}

static void check_parsed(const struct head *h) {
    FUZZ_CHECK(h->method[0] && h->path[0]);
    FUZZ_CHECK(h->minor == 0 || h->minor == 1);
    for (const char *p = h->path; *p; p++) FUZZ_CHECK((unsigned char)*p > ' ' && *p != 0x7f && *p != '?');
    FUZZ_CHECK(h->nfields <= HEAD_FIELDS_MAX);
    for (size_t i = 0; i < h->nfields; i++) {
        FUZZ_CHECK(h->fields[i].name[0] && !strchr(h->fields[i].name, ':'));
        FUZZ_CHECK(h->fields[i].value[0] != ' ' && h->fields[i].value[0] != '\t');
        for (const char *p = h->fields[i].value; *p; p++) FUZZ_CHECK((unsigned char)*p >= ' ' || *p == '\t');
    }
    if (h->nfields) FUZZ_CHECK(head_field(h, h->fields[0].name) == h->fields[0].value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t cut = size > 1 ? data[0] % size : 0;
    data++, size--;
    if (cut > size) cut = size;
    size_t whole = scan_whole(data, size);
    FUZZ_CHECK(whole == scan_cut(data, size, cut));
    if (!whole) return 0;
    FUZZ_CHECK(whole <= size && data[whole - 1] == '\n');
    char *buf = malloc(whole);
    if (!buf) abort();
    memcpy(buf, data, whole);
    static struct head h;
    if (head_parse(buf, whole, &h) == HEAD_OK) check_parsed(&h);
    free(buf);
    return 0;
}

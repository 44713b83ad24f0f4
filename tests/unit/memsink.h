/* memsink.h: a growing memory buffer that stands in for a client's socket.
 *
 * The unit tests' peers (peer.h) and the router and API fuzz targets' peers (fuzz/fuzz_hub.h) collect a
 * connection's frames in memory: their outbox sink takes every byte the real outbox writes and appends
 * it to a (buf, len, cap) buffer, which the test then reads back as a client would. test_outbox's sink
 * and test_loop's handler keep what they are handed the same way. The append lives here once so that
 * they all grow the buffer alike and fail alike when memory runs out: nothing is appended and the
 * caller gets -1 (for a writev sink, what a broken socket returns), never a NULL dereference.
 * Header-only, like check.h, so a fuzz target can include it without linking any test code. */
#ifndef SB_TEST_MEMSINK_H
#define SB_TEST_MEMSINK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* Makes room for `more` bytes past `len`, doubling what is needed; 0, or -1 with *buf left as it was. */
static inline int memsink_reserve(uint8_t **buf, size_t len, size_t *cap, size_t more) {
    if (more <= *cap - len) return 0;
    if (more > SIZE_MAX / 2 - len) return -1;
    size_t want = (len + more) * 2;
    uint8_t *grown = realloc(*buf, want);
    if (!grown) return -1;
    *buf = grown;
    *cap = want;
    return 0;
}

/* Appends n bytes of data: 0, or -1 (nothing appended) when memory runs out. */
static inline int memsink_append(uint8_t **buf, size_t *len, size_t *cap, const void *data, size_t n) {
    if (memsink_reserve(buf, *len, cap, n) < 0) return -1;
    if (n) memcpy(*buf + *len, data, n);
    *len += n;
    return 0;
}

/* Appends every buffer of iov, in order, as a socket with room for all of them takes a writev: returns
 * the byte count, or -1 (nothing appended) when memory runs out. */
static inline ssize_t memsink_writev(uint8_t **buf, size_t *len, size_t *cap, const struct iovec *iov, int iovcnt) {
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    if (memsink_reserve(buf, *len, cap, total) < 0) return -1;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len) memcpy(*buf + *len, iov[i].iov_base, iov[i].iov_len);
        *len += iov[i].iov_len;
    }
    return (ssize_t)total;
}

#endif

/* test_loop: the epoll threads that carry open WebSockets (app/io/loop.c).
 *
 * Each connection is a socketpair: the loop gets one end (non-blocking, as ws.c hands it over) and the
 * test plays the client on the other, writing masked frames many at once, in odd pieces, and a byte
 * at a time (waiting until the loop has read each byte, so every read really is one byte). The
 * handler records every call under one lock, and the test waits on a condition variable, each wait
 * bounded by WAIT_MS: nothing is asserted on timing. Covered: frames arrive whole and in order; an
 * unmasked frame or one over the limit is a violation and nothing after it is delivered; a frame
 * callback returning 0 stops delivery; the peer closing (also right behind its last frames), a flush
 * reporting done after loop_kick, and loops_stop each end a connection, with `ended` called exactly
 * once and nothing after it, even when a kick lands while `ended` runs; and loops_adopt refuses once
 * loops_stop has returned. One test goes through a real outbox writing to the socket, echoing more than
 * the socket holds while the client does not read, so the loop must finish the writes when the
 * socket drains, then completes a closing handshake. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"
#include "loop.h"
#include "memsink.h"
#include "outbox.h"

#define WAIT_MS 5000
#define FIN 0x80
#define MAX_PAYLOAD (1 << 20)
#define MAX_FRAMES 512 /* frames whose bits and length are recorded; no test sends more */

struct tconn {
    struct loop_conn lc; /* zeroed, as loops_adopt wants */
    int fd;              /* the loop's end */
    int peer;            /* the test's end: the client */
    int echo;            /* frames are echoed through the outbox, and a close is answered */
    struct outq q;       /* echo only */
    /* What the handler saw, under `lock`: */
    uint8_t *got;        /* every payload delivered, end to end */
    size_t got_len, got_cap;
    uint8_t bits[MAX_FRAMES];
    size_t lens[MAX_FRAMES];
    int frames, violations, flushes, ended, after_end;
    uint16_t code;
    const char *reason;
    /* Set by the test, under `lock`: */
    int stop_after;       /* the frame callback returns 0 on this frame (1 = the first); 0 = never */
    int finished;         /* what flush returns when not echoing */
    struct loops *late_ls; /* `ended` then tries to hand `late` to these loops... */
    struct tconn *late;
    int late_rc;          /* ...and keeps what loops_adopt said */
    int kick_in_ended;    /* `ended` waits for another thread to call loop_kick (as outbox.c may) */
    int ending, kicked;   /* the handshake for that */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed; /* broadcast on every handler call; CLOCK_MONOTONIC */
static struct outbox *ob;

/* ---- the handler ---- */

static void record(struct tconn *c, uint8_t bits, const uint8_t *payload, size_t len) {
    memsink_append(&c->got, &c->got_len, &c->got_cap, payload, len); /* out of memory: saw_script fails */
    if (c->frames < MAX_FRAMES) c->bits[c->frames] = bits, c->lens[c->frames] = len;
    c->frames++;
}

static void echo(struct tconn *c, uint8_t bits, const uint8_t *payload, size_t len) {
    if ((bits & 0x0F) == WS_OP_CLOSE) {
        outbox_peer_closed(ob, &c->q, 1000, NULL);
        return;
    }
    struct frame *f = frame_new(WS_OP_BINARY, payload, len);
    if (f) outbox_push(ob, &c->q, f);
    frame_unref(f);
}

static int on_frame(void *ctx, uint8_t bits, uint8_t *payload, size_t len) {
    struct tconn *c = ctx;
    pthread_mutex_lock(&lock);
    c->after_end += c->ended;
    record(c, bits, payload, len);
    int more = !(c->stop_after && c->frames >= c->stop_after);
    if (c->echo && (bits & 0x0F) == WS_OP_CLOSE) more = 0;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    if (c->echo) echo(c, bits, payload, len);
    return more;
}

static void on_violation(void *ctx, uint16_t code, const char *reason) {
    struct tconn *c = ctx;
    pthread_mutex_lock(&lock);
    c->after_end += c->ended;
    c->violations++;
    c->code = code;
    c->reason = reason;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static int on_flush(void *ctx) {
    struct tconn *c = ctx;
    int done = c->echo ? outbox_flush(ob, &c->q) : 0;
    pthread_mutex_lock(&lock);
    c->after_end += c->ended;
    c->flushes++;
    if (!c->echo) done = c->finished;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return done;
}

static const struct loop_handler handler;

/* ws.c's `ended` calls outbox_detach, which waits for the queue lock, under which a writer thread may
 * be kicking the connection right then (outbox.h: loop_kick comes "before outbox_detach"). */
static void wait_for_kick(struct tconn *c) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += WAIT_MS / 1000;
    c->ending = 1;
    pthread_cond_broadcast(&changed);
    int rc = 0;
    while (!c->kicked && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&changed, &lock, &until);
}

static void on_ended(void *ctx) {
    struct tconn *c = ctx;
    if (c->echo) outbox_detach(&c->q);
    pthread_mutex_lock(&lock);
    if (c->kick_in_ended && !c->ended) wait_for_kick(c);
    c->after_end += c->ended;
    struct loops *ls = c->late_ls;
    struct tconn *late = c->late;
    pthread_mutex_unlock(&lock);
    int rc = ls ? loops_adopt(ls, &late->lc, late->fd, &handler, late, MAX_PAYLOAD) : 0;
    pthread_mutex_lock(&lock);
    c->late_rc = rc;
    c->ended++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static const struct loop_handler handler = {on_frame, on_violation, on_flush, on_ended};

/* ---- the outbox's io: the loop's end of the socketpair ---- */

static ssize_t sock_write(void *sink, const struct iovec *iov, int iovcnt) {
    struct tconn *c = sink;
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n = sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
    return n;
}

static void sock_kick(void *sink) { loop_kick(&((struct tconn *)sink)->lc); }

static const struct outbox_io io = {.write = sock_write, .kick = sock_kick};

/* ---- waiting ---- */

enum what { FRAMES, VIOLATIONS, FLUSHES, ENDED, ENDING };

static int count_of(const struct tconn *c, enum what w) {
    return w == FRAMES ? c->frames : w == VIOLATIONS ? c->violations : w == FLUSHES ? c->flushes :
           w == ENDED ? c->ended : c->ending;
}

/* Waits until the count reaches n, for WAIT_MS at most; returns whether it did. */
static int wait_count(const struct tconn *c, enum what w, int n) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&lock);
    int rc = 0;
    while (count_of(c, w) < n && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&changed, &lock, &until);
    int ok = count_of(c, w) >= n;
    pthread_mutex_unlock(&lock);
    return ok;
}

static int get(const struct tconn *c, enum what w) {
    pthread_mutex_lock(&lock);
    int n = count_of(c, w);
    pthread_mutex_unlock(&lock);
    return n;
}

/* Waits until the loop has read everything sent to its end (polled, WAIT_MS at most). */
static int wait_drained(const struct tconn *c) {
    struct timespec tick = {0, 50 * 1000};
    for (long waited_us = 0; waited_us < WAIT_MS * 1000L; waited_us += 50) {
        int queued = 0;
        if (ioctl(c->fd, FIONREAD, &queued) < 0) return 0;
        if (queued == 0) return 1;
        nanosleep(&tick, NULL);
    }
    return 0;
}

/* ---- connections and frames ---- */

static struct tconn *conn_new(int echoing) {
    int sv[2];
    struct tconn *c = calloc(1, sizeof *c);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) abort();
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    struct timeval bound = {WAIT_MS / 1000, 0}; /* the test's own reads and writes cannot hang */
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound);
    c->fd = sv[0];
    c->peer = sv[1];
    c->echo = echoing;
    if (echoing) outq_init(&c->q, c, 64u << 20);
    return c;
}

static int adopt(struct loops *ls, struct tconn *c, uint64_t max_payload) {
    return loops_adopt(ls, &c->lc, c->fd, &handler, c, max_payload);
}

/* Only once the connection has ended (or was never adopted): the socket is the owner's to close. */
static void conn_free(struct tconn *c) {
    if (!c) return;
    if (c->echo) outq_destroy(&c->q);
    if (c->peer >= 0) close(c->peer);
    close(c->fd);
    free(c->got);
    free(c);
}

/* The client hangs up: the loop sees the end of input. */
static void hang_up(struct tconn *c) {
    close(c->peer);
    c->peer = -1;
}

/* Stops and frees the loops, then checks what loop.h promises every connection listed (up to NULL):
 * `ended` was called exactly once, and no handler call came after it. */
static void stop_and_check_ended_at(const char *file, int line, struct loops *ls, ...) {
    va_list ap;
    loops_stop(ls);
    loops_free(ls);
    va_start(ap, ls);
    for (struct tconn *c = va_arg(ap, struct tconn *); c; c = va_arg(ap, struct tconn *)) {
        check_int(c->ended, 1, file, line, "ended", "once");
        check_int(c->after_end, 0, file, line, "after_end", "no call after ended");
    }
    va_end(ap);
}

#define STOP_AND_CHECK_ENDED(ls, ...) \
    stop_and_check_ended_at(__FILE__, __LINE__, (ls), __VA_ARGS__, (struct tconn *)NULL)

static void fill(uint8_t *p, size_t len, unsigned seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

/* Appends a masked client frame to out; returns its size. The key changes with the frame. */
static size_t build(uint8_t *out, uint8_t bits, const uint8_t *payload, size_t len, int masked) {
    size_t h = 0;
    out[h++] = bits;
    uint8_t m = masked ? 0x80 : 0;
    if (len < 126) out[h++] = m | (uint8_t)len;
    else if (len < 65536) {
        out[h++] = m | 126;
        out[h++] = (uint8_t)(len >> 8), out[h++] = (uint8_t)len;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t key[4] = {(uint8_t)(len * 7 + 1), 0x5A, (uint8_t)bits, 0xC3};
    if (masked) memcpy(out + h, key, 4), h += 4;
    for (size_t i = 0; i < len; i++) out[h + i] = payload[i] ^ (masked ? key[i & 3] : 0);
    return h + len;
}

/* A run of frames and what the handler must then have seen. */
struct script {
    uint8_t *wire, *want;
    size_t wire_len, want_len;
    uint8_t bits[MAX_FRAMES];
    size_t lens[MAX_FRAMES];
    int n;
};

static void script_add(struct script *s, uint8_t bits, size_t len) {
    s->wire = realloc(s->wire, s->wire_len + len + 14);
    s->want = realloc(s->want, s->want_len + len + 1);
    fill(s->want + s->want_len, len, (unsigned)(s->n * 31 + len));
    s->wire_len += build(s->wire + s->wire_len, bits, s->want + s->want_len, len, 1);
    s->want_len += len;
    s->bits[s->n] = bits;
    s->lens[s->n++] = len;
}

static void script_free(struct script *s) {
    free(s->wire);
    free(s->want);
}

/* Frames of every length form, a few around each boundary, data and control mixed. */
static void script_mixed(struct script *s, int large) {
    static const size_t lens[] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 17, 124, 125, 126, 127, 1000, 65535, 65536, 70001};
    size_t n = sizeof lens / sizeof *lens;
    for (size_t i = 0; i < n; i++) {
        if (!large && lens[i] > 1000) continue;
        uint8_t bits = lens[i] <= 125 && i % 3 == 1 ? FIN | WS_OP_PING : i % 2 ? FIN | WS_OP_BINARY : WS_OP_TEXT;
        script_add(s, bits, lens[i]);
    }
}

static int send_all(int fd, const uint8_t *p, size_t len) {
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0) return -1;
        p += n, len -= (size_t)n;
    }
    return 0;
}

/* The handler saw exactly the script's frames (from frame `from` of its record on), in order. */
static int saw_script(const struct tconn *c, const struct script *s, int from, size_t got_from) {
    pthread_mutex_lock(&lock);
    int ok = c->frames == from + s->n && c->got_len == got_from + s->want_len &&
             memcmp(c->got + got_from, s->want, s->want_len) == 0;
    for (int i = 0; ok && i < s->n; i++) ok = c->bits[from + i] == s->bits[i] && c->lens[from + i] == s->lens[i];
    pthread_mutex_unlock(&lock);
    return ok;
}

/* ---- the tests ---- */

/* Frames sent all at once, in odd pieces and byte by byte reach the handler whole and in order. */
static void test_frames_intact(void) {
    struct loops *ls = loops_start(2, ob);
    struct tconn *c = conn_new(0);
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    struct script all = {0}, pieces = {0}, bytes = {0}, many = {0};

    script_mixed(&all, 1); /* one write */
    CHECK_EQ_INT(send_all(c->peer, all.wire, all.wire_len), 0);
    CHECK(wait_count(c, FRAMES, all.n));
    CHECK(saw_script(c, &all, 0, 0));

    script_mixed(&pieces, 1); /* pieces of odd sizes, not waited for */
    static const size_t sizes[] = {1, 2, 3, 5, 13, 100, 1001, 4097};
    for (size_t off = 0, i = 0; off < pieces.wire_len; i++) {
        size_t n = sizes[i % 8] < pieces.wire_len - off ? sizes[i % 8] : pieces.wire_len - off;
        if (send_all(c->peer, pieces.wire + off, n) < 0) break;
        off += n;
    }
    CHECK(wait_count(c, FRAMES, all.n + pieces.n));
    CHECK(saw_script(c, &pieces, all.n, all.want_len));

    script_mixed(&bytes, 0); /* one byte per read: each is read before the next is sent */
    int drained = 1;
    for (size_t i = 0; i < bytes.wire_len && drained; i++)
        drained = send_all(c->peer, bytes.wire + i, 1) == 0 && wait_drained(c);
    CHECK(drained);
    CHECK(wait_count(c, FRAMES, all.n + pieces.n + bytes.n));
    CHECK(saw_script(c, &bytes, all.n + pieces.n, all.want_len + pieces.want_len));

    for (int i = 0; i < 300; i++) script_add(&many, i % 2 ? FIN | WS_OP_TEXT : FIN | WS_OP_BINARY, (size_t)i % 40);
    CHECK_EQ_INT(send_all(c->peer, many.wire, many.wire_len), 0);
    int before = all.n + pieces.n + bytes.n;
    CHECK(wait_count(c, FRAMES, before + many.n));
    CHECK(saw_script(c, &many, before, all.want_len + pieces.want_len + bytes.want_len));

    hang_up(c);
    CHECK(wait_count(c, ENDED, 1));
    STOP_AND_CHECK_ENDED(ls, c);
    CHECK_EQ_INT(c->violations, 0);
    conn_free(c);
    script_free(&all), script_free(&pieces), script_free(&bytes), script_free(&many);
}

/* An unmasked frame is a violation (1002): what came before it is delivered, nothing after it. */
static void test_unmasked_violation(void) {
    struct loops *ls = loops_start(1, ob);
    struct tconn *c = conn_new(0);
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    uint8_t wire[64];
    size_t len = build(wire, FIN | WS_OP_TEXT, (const uint8_t *)"a", 1, 1);
    len += build(wire + len, FIN | WS_OP_TEXT, (const uint8_t *)"bad", 3, 0);
    len += build(wire + len, FIN | WS_OP_TEXT, (const uint8_t *)"c", 1, 1);
    CHECK_EQ_INT(send_all(c->peer, wire, len), 0);
    CHECK(wait_count(c, VIOLATIONS, 1));
    len = build(wire, FIN | WS_OP_TEXT, (const uint8_t *)"d", 1, 1); /* a later read: dropped too */
    CHECK_EQ_INT(send_all(c->peer, wire, len), 0);
    CHECK(wait_drained(c)); /* read (and dropped) before the end of input: see test_data_then_eof */
    shutdown(c->peer, SHUT_WR);
    CHECK(wait_count(c, ENDED, 1)); /* the last call: everything sent was read by now */
    pthread_mutex_lock(&lock);
    CHECK(c->frames == 1 && c->got_len == 1 && c->got[0] == 'a');
    CHECK_EQ_INT(c->violations, 1);
    CHECK_EQ_INT(c->code, 1002);
    CHECK(c->reason != NULL);
    pthread_mutex_unlock(&lock);
    STOP_AND_CHECK_ENDED(ls, c);
    conn_free(c);
}

/* A data frame over the limit is a violation (1009) as soon as its header is in: the loop does not
 * wait for (or store) a payload it will never take. */
static void test_too_big_violation(void) {
    struct loops *ls = loops_start(1, ob);
    struct tconn *c = conn_new(0);
    CHECK_EQ_INT(adopt(ls, c, 100), 0);
    uint8_t wire[300], payload[101] = {0};
    size_t len = build(wire, FIN | WS_OP_BINARY, payload, 100, 1); /* the limit itself */
    CHECK_EQ_INT(send_all(c->peer, wire, len), 0);
    CHECK(wait_count(c, FRAMES, 1));
    build(wire, FIN | WS_OP_BINARY, payload, 101, 1);
    CHECK_EQ_INT(send_all(c->peer, wire, 6), 0); /* the header alone */
    CHECK(wait_count(c, VIOLATIONS, 1));
    CHECK_EQ_INT(c->code, 1009);
    hang_up(c);
    CHECK(wait_count(c, ENDED, 1));
    STOP_AND_CHECK_ENDED(ls, c);
    CHECK_EQ_INT(c->frames, 1);
    CHECK_EQ_INT(c->violations, 1);
    conn_free(c);
}

/* The frame callback returning 0 means no more frames: not those in the same read, not later ones. */
static void test_frame_returns_zero(void) {
    struct loops *ls = loops_start(1, ob);
    struct tconn *a = conn_new(0), *b = conn_new(0);
    a->stop_after = 2;
    b->stop_after = 1;
    CHECK_EQ_INT(adopt(ls, a, MAX_PAYLOAD), 0);
    CHECK_EQ_INT(adopt(ls, b, MAX_PAYLOAD), 0);
    struct script s = {0}, late = {0};
    for (int i = 0; i < 4; i++) script_add(&s, FIN | WS_OP_TEXT, 10 + (size_t)i);
    script_add(&late, FIN | WS_OP_TEXT, 5);
    /* a: four frames in one write, then one more */
    CHECK_EQ_INT(send_all(a->peer, s.wire, s.wire_len), 0);
    CHECK(wait_count(a, FRAMES, 2));
    CHECK_EQ_INT(send_all(a->peer, late.wire, late.wire_len), 0);
    CHECK(wait_drained(a));
    shutdown(a->peer, SHUT_WR);
    /* b: the first frame and half the second, so the loop holds a partial frame when told to stop */
    size_t first = s.wire_len - (s.lens[1] + s.lens[2] + s.lens[3] + 3 * 6), half = first + 4;
    CHECK_EQ_INT(send_all(b->peer, s.wire, half), 0);
    CHECK(wait_count(b, FRAMES, 1));
    CHECK(wait_drained(b));
    CHECK_EQ_INT(send_all(b->peer, s.wire + half, s.wire_len - half), 0);
    CHECK(wait_drained(b));
    shutdown(b->peer, SHUT_WR);
    CHECK(wait_count(a, ENDED, 1));
    CHECK(wait_count(b, ENDED, 1));
    STOP_AND_CHECK_ENDED(ls, a, b);
    CHECK(a->frames == 2 && a->got_len == s.lens[0] + s.lens[1] && memcmp(a->got, s.want, a->got_len) == 0);
    CHECK(b->frames == 1 && b->got_len == s.lens[0] && memcmp(b->got, s.want, b->got_len) == 0);
    CHECK(a->violations == 0 && b->violations == 0);
    conn_free(a), conn_free(b);
    script_free(&s), script_free(&late);
}

/* The peer closing ends the connection once, also with a partial frame held and on a busy loop. */
static void test_peer_close_ends_once(void) {
    struct loops *ls = loops_start(2, ob);
    struct tconn *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = conn_new(0);
        CHECK_EQ_INT(adopt(ls, c[i], MAX_PAYLOAD), 0);
    }
    uint8_t wire[200], payload[150] = {0};
    size_t len = build(wire, FIN | WS_OP_BINARY, payload, 150, 1);
    CHECK_EQ_INT(send_all(c[1]->peer, wire, 3), 0);       /* half a header */
    CHECK_EQ_INT(send_all(c[2]->peer, wire, len - 1), 0); /* all but the last byte */
    CHECK(wait_drained(c[1]) && wait_drained(c[2]));
    for (int i = 0; i < 3; i++) hang_up(c[i]);
    for (int i = 0; i < 3; i++) CHECK(wait_count(c[i], ENDED, 1));
    CHECK_EQ_INT(get(c[3], ENDED), 0); /* the others are still open */
    STOP_AND_CHECK_ENDED(ls, c[0], c[1], c[2], c[3]);
    for (int i = 0; i < 4; i++) {
        CHECK(c[i]->frames == 0 && c[i]->violations == 0);
        conn_free(c[i]);
    }
}

/* Frames and the end of input that arrive together (a client that sends its last message and hangs
 * up; here both are waiting before the loop even registers the socket) are all taken: the frames are
 * delivered and the connection ends, without waiting for an edge that will never come. */
static void test_data_then_eof(void) {
    struct loops *ls = loops_start(1, ob);
    struct tconn *c = conn_new(0), *d = conn_new(0);
    struct script s = {0};
    script_add(&s, FIN | WS_OP_TEXT, 5);
    script_add(&s, FIN | WS_OP_BINARY, 300);
    CHECK_EQ_INT(send_all(c->peer, s.wire, s.wire_len), 0);
    shutdown(c->peer, SHUT_WR);
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    CHECK(wait_count(c, FRAMES, 2));
    CHECK(saw_script(c, &s, 0, 0));
    CHECK(wait_count(c, ENDED, 1));
    /* the same once registered: data and hang-up sent back to back, maybe seen as one edge */
    CHECK_EQ_INT(adopt(ls, d, MAX_PAYLOAD), 0);
    CHECK(wait_count(d, FLUSHES, 1));
    CHECK_EQ_INT(send_all(d->peer, s.wire, s.wire_len), 0);
    shutdown(d->peer, SHUT_WR);
    CHECK(wait_count(d, ENDED, 1));
    STOP_AND_CHECK_ENDED(ls, c, d);
    CHECK(d->frames == 2);
    script_free(&s);
    conn_free(c), conn_free(d);
}

/* A flush that reports the connection done ends it once loop_kick asks the loop to look; one that is
 * done before the loop has even registered it is ended as it arrives. */
static void test_kick_ends_finished(void) {
    struct loops *ls = loops_start(2, ob);
    struct tconn *c = conn_new(0), *early = conn_new(0);
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    CHECK(wait_count(c, FLUSHES, 1)); /* registered (and settled once) */
    int flushes = get(c, FLUSHES);
    CHECK_EQ_INT(get(c, ENDED), 0);
    pthread_mutex_lock(&lock);
    c->finished = 1;
    pthread_mutex_unlock(&lock);
    loop_kick(&c->lc);
    CHECK(wait_count(c, ENDED, 1));
    CHECK(get(c, FLUSHES) > flushes);

    early->finished = 1; /* no kick: it could come after `ended`, which loop.h forbids */
    CHECK_EQ_INT(adopt(ls, early, MAX_PAYLOAD), 0);
    CHECK(wait_count(early, ENDED, 1));
    STOP_AND_CHECK_ENDED(ls, c, early);
    conn_free(c), conn_free(early);
}

/* A kick that lands while `ended` runs (another thread's write failed, or outbox_expire fired, just as
 * the loop let go; the handler's outbox_detach has not returned yet) must not bring the connection
 * back: no flush and no second `ended` after the first, which in ws.c would be on freed memory. */
static void test_kick_while_ending(void) {
    struct loops *ls = loops_start(1, ob);
    struct tconn *c = conn_new(0), *barrier = conn_new(0);
    c->kick_in_ended = 1;
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    CHECK(wait_count(c, FLUSHES, 1));
    hang_up(c); /* the loop ends it on eof */
    CHECK(wait_count(c, ENDING, 1));
    loop_kick(&c->lc); /* still inside `ended`: allowed */
    pthread_mutex_lock(&lock);
    c->kicked = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    CHECK(wait_count(c, ENDED, 1));
    /* the same loop takes its mail after the kick, so once this one is settled the kick was seen */
    CHECK_EQ_INT(adopt(ls, barrier, MAX_PAYLOAD), 0);
    CHECK(wait_count(barrier, FLUSHES, 1));
    STOP_AND_CHECK_ENDED(ls, c, barrier);
    conn_free(c), conn_free(barrier);
}

/* loops_stop ends every connection still open, registered or still in the mailbox. An `ended` it
 * causes tries loops_adopt (as ws.c's ws_upgrade may, on another thread, while the server stops): with
 * one loop that is already stopping, so it is refused and the connection never hears from the loop. */
static void check_stop_ends_all(size_t loops) {
    enum { N = 7 };
    struct loops *ls = loops_start(loops, ob);
    struct tconn *c[N], *late = conn_new(0);
    uint8_t wire[32];
    size_t len = build(wire, FIN | WS_OP_TEXT, (const uint8_t *)"hello", 5, 1);
    for (int i = 0; i < N; i++) {
        c[i] = conn_new(0);
        if (i == 0) c[0]->late_ls = ls, c[0]->late = late;
        CHECK_EQ_INT(adopt(ls, c[i], MAX_PAYLOAD), 0);
    }
    CHECK_EQ_INT(send_all(c[1]->peer, wire, len - 2), 0); /* a partial frame held at the end */
    CHECK_EQ_INT(send_all(c[2]->peer, wire, len), 0);
    CHECK(wait_count(c[2], FRAMES, 1));
    for (int i = 0; i < 3; i++) CHECK(wait_count(c[i], FLUSHES, 1));
    struct tconn *last = conn_new(0); /* not waited for: may still be in the mailbox */
    CHECK_EQ_INT(adopt(ls, last, MAX_PAYLOAD), 0);
    loops_stop(ls);
    for (int i = 0; i < N; i++) CHECK(c[i]->ended == 1 && c[i]->after_end == 0);
    CHECK(last->ended == 1 && last->after_end == 0);
    if (loops == 1) CHECK_EQ_INT(c[0]->late_rc, -1);
    /* with several loops, one not yet told to stop may still take it (loops_stop tells them one by
     * one), and must then end it too before loops_stop returns */
    if (c[0]->late_rc == -1) CHECK(late->ended == 0 && late->flushes == 0 && late->frames == 0);
    else CHECK(c[0]->late_rc == 0 && late->ended == 1 && late->after_end == 0);
    struct tconn *after = conn_new(0); /* once loops_stop has returned, every loop refuses */
    CHECK_EQ_INT(adopt(ls, after, MAX_PAYLOAD), -1);
    CHECK(after->ended == 0 && after->flushes == 0);
    loops_free(ls);
    for (int i = 0; i < N; i++) conn_free(c[i]);
    conn_free(last), conn_free(late), conn_free(after);
}

static void test_stop_ends_all(void) {
    check_stop_ends_all(1);
    check_stop_ends_all(3);
}

/* Reads one server frame (unmasked, FIN) from fd; returns its payload length, or -1. */
static long read_server_frame(int fd, uint8_t *op, uint8_t *payload, size_t cap) {
    uint8_t h[10];
    if (recv(fd, h, 2, MSG_WAITALL) != 2) return -1;
    size_t len = h[1] & 0x7F, ext = len == 126 ? 2 : len == 127 ? 8 : 0;
    if (ext && recv(fd, h + 2, ext, MSG_WAITALL) != (ssize_t)ext) return -1;
    if (ext) len = 0;
    for (size_t i = 0; i < ext; i++) len = len << 8 | h[2 + i];
    if (len > cap || (len && recv(fd, payload, len, MSG_WAITALL) != (ssize_t)len)) return -1;
    *op = h[0];
    return (long)len;
}

/* Through a real outbox: echoes of more than the socket holds, sent while the client is not reading,
 * all arrive once it reads (the loop writes the rest as the socket drains); then a close from the
 * client is answered and the connection ends without the client hanging up. */
static void test_echo_through_outbox(void) {
    enum { N = 64, SIZE = 16 * 1024 };
    struct loops *ls = loops_start(2, ob);
    struct tconn *c = conn_new(1);
    CHECK_EQ_INT(adopt(ls, c, MAX_PAYLOAD), 0);
    struct script s = {0};
    for (int i = 0; i < N; i++) script_add(&s, FIN | WS_OP_BINARY, SIZE);
    CHECK_EQ_INT(send_all(c->peer, s.wire, s.wire_len), 0);
    CHECK(wait_count(c, FRAMES, N));
    CHECK(outq_bytes(&c->q) > 0); /* the socket took only part: the rest waits for it to drain */
    uint8_t *payload = malloc(SIZE);
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        uint8_t op = 0;
        ok = read_server_frame(c->peer, &op, payload, SIZE) == SIZE && op == (FIN | WS_OP_BINARY) &&
             memcmp(payload, s.want + (size_t)i * SIZE, SIZE) == 0;
    }
    CHECK(ok);
    uint8_t wire[16], op = 0;
    size_t len = build(wire, FIN | WS_OP_CLOSE, (const uint8_t *)"\x03\xE8", 2, 1);
    CHECK_EQ_INT(send_all(c->peer, wire, len), 0);
    CHECK(read_server_frame(c->peer, &op, payload, SIZE) == 2 && op == (FIN | WS_OP_CLOSE) &&
          memcmp(payload, "\x03\xE8", 2) == 0);
    CHECK(wait_count(c, ENDED, 1)); /* the handshake is complete: outbox_done, kicked, flushed */
    STOP_AND_CHECK_ENDED(ls, c);
    CHECK_EQ_INT(c->violations, 0);
    free(payload);
    script_free(&s);
    conn_free(c);
}

int main(void) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&changed, &ca);
    pthread_condattr_destroy(&ca);
    ob = outbox_new(&io);
    test_frames_intact();
    test_unmasked_violation();
    test_too_big_violation();
    test_frame_returns_zero();
    test_peer_close_ends_once();
    test_data_then_eof();
    test_kick_ends_finished();
    test_kick_while_ending();
    test_stop_ends_all();
    test_echo_through_outbox();
    outbox_free(ob);
    pthread_cond_destroy(&changed);
    return check_done();
}

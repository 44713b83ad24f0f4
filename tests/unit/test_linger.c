/* test_linger: the lingering close (app/io/linger.c) on real socket pairs.
 *
 * A socket handed over is shut down for writing at once (the peer reads the end of the stream while it
 * may still send), what the peer sends is read away, and it is closed when the peer closes, when the
 * peer has sent more than LINGER_BYTES, or after LINGER_MS; the caller's own descriptor is its own to
 * close. Whether the copy is closed shows in this process's open descriptors; the bounds in the
 * counters. Every wait is bounded. */
#include "check.h"
#include "linger.h"
#include "metrics.h"

#include <dirent.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS (LINGER_MS + 3000)

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
    if (d) closedir(d);
    return n - 1; /* the directory's own */
}

/* Waits (bounded) until this process has `want` descriptors open; returns how many it had. */
static int wait_fds(int want) {
    int n = open_fds();
    for (int waited = 0; n != want && waited < WAIT_MS; waited += 10, n = open_fds()) sleep_ms(10);
    return n;
}

/* The peer's end of a pair whose other end lingers (and is closed by its owner, as loop.c's does). */
static int lingering_pair(struct linger_set *l) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    linger_add(l, sv[0]);
    close(sv[0]);
    return sv[1];
}

/* 1 if the peer reads the end of the stream (our FIN) within a bounded wait. */
static int peer_sees_end(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    return poll(&p, 1, WAIT_MS) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) == 0;
}

static void test_peer_closes(void) {
    struct linger_set *l = linger_start();
    int base = open_fds();
    uint64_t closes = metrics_get(M_LINGER_CLOSES), cut = metrics_get(M_LINGER_CUT);
    int peer = lingering_pair(l);
    CHECK(peer_sees_end(peer));
    CHECK_EQ_INT(send(peer, "late bytes", 10, MSG_NOSIGNAL), 10); /* still accepted: no reset */
    CHECK_EQ_INT(open_fds(), base + 2);                           /* the peer's end and the lingering copy */
    close(peer);
    CHECK_EQ_INT(wait_fds(base), base); /* the copy went with the peer's close */
    CHECK_EQ_INT((long long)(metrics_get(M_LINGER_CLOSES) - closes), 1);
    CHECK_EQ_INT((long long)(metrics_get(M_LINGER_CUT) - cut), 0);
    linger_stop(l);
}

static void test_size_bound(void) {
    struct linger_set *l = linger_start();
    int base = open_fds();
    uint64_t cut = metrics_get(M_LINGER_CUT);
    int peer = lingering_pair(l);
    static char junk[LINGER_BYTES / 4];
    size_t sent = 0; /* blocking sends: the set reads as they come, and closes past the bound */
    for (ssize_t n = 1; n > 0 && sent <= LINGER_BYTES; sent += n > 0 ? (size_t)n : 0)
        n = send(peer, junk, sizeof junk, MSG_NOSIGNAL);
    CHECK(sent > LINGER_BYTES);
    CHECK_EQ_INT(wait_fds(base + 1), base + 1); /* cut: only the peer's end is left */
    CHECK_EQ_INT((long long)(metrics_get(M_LINGER_CUT) - cut), 1);
    close(peer);
    linger_stop(l);
}

static void test_time_bound(void) {
    struct linger_set *l = linger_start();
    int base = open_fds();
    uint64_t cut = metrics_get(M_LINGER_CUT);
    int peer = lingering_pair(l); /* a peer that neither sends nor closes */
    CHECK_EQ_INT(wait_fds(base + 1), base + 1);
    CHECK_EQ_INT((long long)(metrics_get(M_LINGER_CUT) - cut), 1);
    close(peer);
    linger_stop(l);
}

static void test_stop_closes_all(void) {
    struct linger_set *l = linger_start();
    int base = open_fds();
    int a = lingering_pair(l), b = lingering_pair(l);
    CHECK_EQ_INT(open_fds(), base + 4);
    linger_stop(l);
    CHECK_EQ_INT(open_fds(), base + 2 - 2); /* the peers' ends are left; the set's own two went too */
    CHECK(peer_sees_end(a) && peer_sees_end(b));
    close(a);
    close(b);
    linger_add(NULL, 0); /* no lingering set (it could not start): nothing happens */
}

int main(void) {
    test_peer_closes();
    test_size_bound();
    test_time_bound();
    test_stop_closes_all();
    return check_done();
}

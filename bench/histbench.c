/* histbench: what history (app/hub/history.c) costs a delivery, in the hub itself, history on against off.
 *
 * bench/run measures whole servers through sockets, which on a shared machine says as much about the
 * neighbours as about the server. This measures the hub's delivery calls alone, in one process, on
 * connections whose sink takes every byte at once (no socket, no loop): a fan-out (hub_broadcast to N
 * connections) and pairs (hub_send_user to one of P users in turn), each in rounds that alternate a hub
 * with the default history (100 messages, 120 s, 64 MiB) and one with --history-size 0, so both see the
 * same machine. Prints per case the median ns per call of each and their ratio:
 *   RESULT case=fanout-1000 on_ns=... off_ns=... on_over_off=...
 *
 * usage: histbench [--rounds R] [--calls C] [--only CASE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "frame.h"
#include "hub.h"
#include "outbox.h"

static ssize_t null_write(void *sink, const struct iovec *iov, int iovcnt) {
    (void)sink;
    ssize_t n = 0;
    for (int i = 0; i < iovcnt; i++) n += (ssize_t)iov[i].iov_len;
    return n;
}
static void null_kick(void *sink) { (void)sink; }
static const struct outbox_io null_io = {null_write, null_kick, 0};

struct world {
    struct outbox *ob;
    struct hub *hub;
    struct conn *conns;
    size_t n;
};

static void world_open(struct world *w, long history, size_t n, size_t users) {
    struct hub_options opt = {0, 20000, 0, 0, {history, 120000, 64u << 20}};
    w->ob = outbox_new(&null_io);
    w->hub = hub_new(w->ob, &opt);
    w->conns = calloc(n, sizeof *w->conns);
    w->n = n;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "u%zu", users ? i % users : i);
        hub_conn_init(w->hub, &w->conns[i], name, 0, &w->conns[i], 1 << 20);
        if (hub_add(w->hub, &w->conns[i]) != HUB_OK) abort();
    }
}

static void world_close(struct world *w) {
    for (size_t i = 0; i < w->n; i++) {
        outbox_detach(&w->conns[i].out);
        hub_remove(w->hub, &w->conns[i]);
        outq_destroy(&w->conns[i].out);
    }
    free(w->conns);
    hub_free(w->hub);
    outbox_free(w->ob);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* ns per call of `calls` deliveries on w: broadcasts when users == 0, else sends to u0..u(users-1). */
static double run(struct world *w, size_t users, long calls, const char *body) {
    char text[256];
    double t0 = now_ns();
    for (long i = 0; i < calls; i++) {
        char to[32];
        snprintf(to, sizeof to, "u%ld", users ? i % (long)users : 0);
        int n = snprintf(text, sizeof text, "{\"type\":\"message\",\"from\":\"x\",\"to\":\"%s\",\"data\":%s}", to, body);
        struct frame *f = frame_new(WS_OP_TEXT, text, (size_t)n);
        if (users) hub_send_user(w->hub, to, f);
        else hub_broadcast(w->hub, NULL, f);
        frame_unref(f);
    }
    return (now_ns() - t0) / (double)calls;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *only; /* --only CASE */

static void bench_case(const char *name, size_t conns, size_t users, long calls, int rounds) {
    if (only && strcmp(only, name) != 0) return;
    static const char body[] = "\"0123456789012345678901234567890123456789012345678901234567890123\"";
    double on[64], off[64];
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            int with = (r + k) % 2; /* alternate which goes first */
            struct world w;
            world_open(&w, with ? 100 : 0, conns, users);
            /* warm-up: every stream's ring full, as on a server that has run a while */
            long fill = (long)users * 110;
            run(&w, users, fill > calls / 10 ? fill : calls / 10, body);
            double ns = run(&w, users, calls, body);
            world_close(&w);
            (with ? on : off)[r] = ns;
        }
    }
    double a = median(on, rounds), b = median(off, rounds);
    printf("RESULT case=%s on_ns=%.0f off_ns=%.0f on_over_off=%.3f rounds=%d calls=%ld\n", name, a, b, a / b, rounds, calls);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int rounds = 7;
    long calls = 20000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--calls") == 0) calls = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--only") == 0) only = argv[i + 1];
    }
    if (rounds < 1 || rounds > 64 || calls < 10) {
        fprintf(stderr, "usage: histbench [--rounds 1-64] [--calls N>=10]\n");
        return 2;
    }
    bench_case("fanout-100", 100, 0, calls, rounds);
    bench_case("fanout-1000", 1000, 0, calls / 10, rounds);
    bench_case("pairs-100", 100, 100, calls * 10, rounds);
    bench_case("pairs-1000", 1000, 1000, calls * 10, rounds);
    return 0;
}

/* test_sockfind: finding a connection's socket by its addresses (app/front/sockfind.c).
 *
 * Real TCP connections on 127.0.0.1 (and ::1 where the host has it), so the descriptors are the kind
 * CivetWeb holds: a listener on port 0, clients connected to it and their accepted ends. A claim by
 * a client's (ip, port) and the server port must give that client's accepted descriptor, once, until
 * released; anything else (another port, another server port, another address, the client's own end
 * whose peer is the listener) gives -1. Enough connections are made that claimed descriptors fill a
 * whole 64-bit word of the claimed set, which the scan skips. Four threads racing to claim the same
 * connections must share them out, each to exactly one. A take swaps the number CivetWeb holds for
 * one that reads EOF and gives the caller the connection under a new number. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "sockfind.h"

#define CONNS 70 /* 140 descriptors and more: past the first two words of the claimed set */
#define RACERS 4

struct net {
    int family;
    const char *ip;
    int listener, server_port;
    int client[CONNS], accepted[CONNS], client_port[CONNS];
};

static int port_of(int fd, int peer) {
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername(fd, (struct sockaddr *)&a, &len) : getsockname(fd, (struct sockaddr *)&a, &len)) < 0) return -1;
    return a.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&a)->sin_port)
                                  : ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
}

/* Fills a loopback address of the net's family with `port`; returns its length. */
static socklen_t loopback(const struct net *n, struct sockaddr_storage *a, int port) {
    memset(a, 0, sizeof *a);
    if (n->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)a;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return sizeof *in;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)a;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    in6->sin6_addr = in6addr_loopback;
    return sizeof *in6;
}

/* A listener and `count` connections to it, each accepted; 0, or -1 when the family is unavailable. */
static int net_open(struct net *n, int family, int count) {
    struct sockaddr_storage a;
    n->family = family;
    n->ip = family == AF_INET ? "127.0.0.1" : "::1";
    n->listener = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    socklen_t alen = loopback(n, &a, 0);
    if (n->listener < 0 || bind(n->listener, (struct sockaddr *)&a, alen) < 0 || listen(n->listener, CONNS) < 0) {
        if (n->listener >= 0) close(n->listener);
        return -1;
    }
    n->server_port = port_of(n->listener, 0);
    for (int i = 0; i < count; i++) {
        n->client[i] = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        alen = loopback(n, &a, n->server_port);
        if (n->client[i] < 0 || connect(n->client[i], (struct sockaddr *)&a, alen) < 0) return -1;
        n->client_port[i] = port_of(n->client[i], 0);
    }
    for (int i = 0; i < count; i++) {
        int fd = accept(n->listener, NULL, NULL);
        int port = port_of(fd, 1), j = 0;
        while (j < count && n->client_port[j] != port) j++;
        if (fd < 0 || j == count) return -1;
        n->accepted[j] = fd;
    }
    return 0;
}

static void net_close(struct net *n, int count) {
    for (int i = 0; i < count; i++) {
        close(n->client[i]);
        close(n->accepted[i]);
    }
    close(n->listener);
}

/* Claims find the accepted end, once; release makes it findable again. */
static void test_claim_release(void) {
    struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, 3), 0)) return;
    struct sockfind *sf = sockfind_new();
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[i], n.server_port), n.accepted[i]);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[i], n.server_port), -1);
    sockfind_release(sf, n.accepted[1]);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[1], n.server_port), n.accepted[1]);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[1], n.server_port), -1);
    sockfind_free(sf);
    net_close(&n, 3);
}

/* Nothing but the exact pair of endpoints matches. */
static void test_wrong_addresses(void) {
    struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, 2), 0)) return;
    struct sockfind *sf = sockfind_new();
    int other_port = n.client_port[0] == 65535 ? 1 : n.client_port[0] + 1;
    if (other_port == n.client_port[1] || other_port == n.server_port) other_port = 1;
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, other_port, n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[0], n.server_port ^ 1), -1);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[0], 0), -1);
    CHECK_EQ_INT(sockfind_claim(sf, "127.0.0.2", n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, "::1", n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, "::ffff:127.0.0.1", n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, "", n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, 0, n.server_port), -1); /* the listener has no peer */
    /* the failed claims took nothing */
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[0], n.server_port), n.accepted[0]);
    sockfind_free(sf);
    net_close(&n, 2);
}

/* The client's own end has the client's port too, but as its local port: its peer is the listener.
 * It is found only when asked for as what it is, a connection from the server port. */
static void test_client_ends_not_taken(void) {
    struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, 2), 0)) return;
    struct sockfind *sf = sockfind_new();
    for (int i = 0; i < 2; i++) CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[i], n.server_port), n.accepted[i]);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[i], n.server_port), -1); /* not the client's end */
        CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[i], n.client_port[i]), -1);
    }
    for (int i = 0; i < 2; i++) CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.server_port, n.client_port[i]), n.client[i]);
    sockfind_free(sf);
    net_close(&n, 2);
}

/* Many descriptors: every one is found, including past a word of the claimed set that is all taken. */
static void test_many(void) {
    static struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, CONNS), 0)) return;
    struct sockfind *sf = sockfind_new();
    int ok = 1;
    for (int i = CONNS - 1; i >= 0; i--) ok &= sockfind_claim(sf, n.ip, n.client_port[i], n.server_port) == n.accepted[i];
    for (int i = 0; i < CONNS; i++) ok &= sockfind_claim(sf, n.ip, n.server_port, n.client_port[i]) == n.client[i];
    CHECK(ok);
    /* every descriptor from 64 to 127 is now claimed (they are all ours: stdio, the listener and
     * the first clients lie below), so the new connection is found past a word the scan skips */
    int low = n.listener < 64, mine = 0;
    for (int i = 0; i < CONNS; i++) mine += (n.client[i] >= 64 && n.client[i] < 128) + (n.accepted[i] >= 64 && n.accepted[i] < 128);
    if (!low || mine != 64) printf("test_many: descriptors 64-127 are not all ours here: no full word to skip\n");
    struct net extra;
    if (CHECK_EQ_INT(net_open(&extra, AF_INET, 1), 0)) {
        CHECK_EQ_INT(sockfind_claim(sf, extra.ip, extra.client_port[0], extra.server_port), extra.accepted[0]);
        net_close(&extra, 1);
    }
    sockfind_free(sf);
    net_close(&n, CONNS);
}

struct race {
    struct sockfind *sf;
    const struct net *n;
    int got[CONNS]; /* the descriptor this thread claimed for each connection, or -1 */
};

static void *racer(void *arg) {
    struct race *r = arg;
    for (int i = 0; i < CONNS; i++) r->got[i] = sockfind_claim(r->sf, r->n->ip, r->n->client_port[i], r->n->server_port);
    return NULL;
}

/* Threads claiming the same connections at once: each accepted end goes to exactly one of them. */
static void test_concurrent_claims(void) {
    static struct net n;
    static struct race races[RACERS];
    pthread_t t[RACERS];
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, CONNS), 0)) return;
    struct sockfind *sf = sockfind_new();
    for (int i = 0; i < RACERS; i++) {
        races[i] = (struct race){.sf = sf, .n = &n};
        pthread_create(&t[i], NULL, racer, &races[i]);
    }
    for (int i = 0; i < RACERS; i++) pthread_join(t[i], NULL);
    int ok = 1;
    for (int c = 0; c < CONNS; c++) {
        int winners = 0;
        for (int i = 0; i < RACERS; i++) {
            if (races[i].got[c] == -1) continue;
            winners++;
            ok &= races[i].got[c] == n.accepted[c];
        }
        ok &= winners == 1;
    }
    CHECK(ok);
    sockfind_free(sf);
    net_close(&n, CONNS);
}

/* The same over IPv6 loopback, when the host has it. */
static void test_ipv6(void) {
    struct net n;
    if (net_open(&n, AF_INET6, 2) < 0) {
        printf("test_ipv6: no ::1 here, skipped\n");
        return;
    }
    struct sockfind *sf = sockfind_new();
    CHECK_EQ_INT(sockfind_claim(sf, "127.0.0.1", n.client_port[0], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, "::1", n.client_port[0], n.server_port), n.accepted[0]);
    CHECK_EQ_INT(sockfind_claim(sf, "::1", n.client_port[1], n.server_port), n.accepted[1]);
    CHECK_EQ_INT(sockfind_claim(sf, "::1", n.client_port[1], n.server_port), -1);
    sockfind_free(sf);
    net_close(&n, 2);
}

/* Taking a connection: the caller gets the TCP connection under a new descriptor, and the number
 * CivetWeb held reads EOF at once while the connection itself goes on; whatever happens to the old
 * number (written, shut down, closed) does not reach the client. sockfind_close ends it. */
static void test_take(void) {
    struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, 2), 0)) return;
    struct sockfind *sf = sockfind_new();
    int eof = sockfind_eof_socket();
    CHECK(eof >= 0);
    int old = n.accepted[0];
    int mine = sockfind_take(sf, n.ip, n.client_port[0], n.server_port, eof);
    CHECK(mine >= 0 && mine != old);
    CHECK_EQ_INT(sockfind_take(sf, n.ip, n.client_port[0], n.server_port, eof), -1); /* taken: claimed, and the old number is the dummy */
    char c = 0;
    CHECK_EQ_INT((int)recv(old, &c, 1, MSG_DONTWAIT), 0);   /* the old number: EOF at once */
    CHECK_EQ_INT((int)send(old, "x", 1, MSG_NOSIGNAL), -1); /* and writes go nowhere */
    shutdown(old, SHUT_RDWR);
    close(old);
    CHECK_EQ_INT((int)send(n.client[0], "hi", 2, 0), 2);
    char buf[4] = "";
    CHECK_EQ_INT((int)recv(mine, buf, sizeof buf, 0), 2);
    CHECK(memcmp(buf, "hi", 2) == 0);
    CHECK_EQ_INT((int)send(mine, "ok", 2, MSG_NOSIGNAL), 2);
    CHECK_EQ_INT((int)recv(n.client[0], buf, sizeof buf, 0), 2);
    CHECK(memcmp(buf, "ok", 2) == 0);
    /* the other connection is untouched and still found */
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[1], n.server_port), n.accepted[1]);
    sockfind_close(sf, mine);
    CHECK_EQ_INT((int)recv(n.client[0], buf, sizeof buf, 0), 0); /* the client sees the end only now */
    close(n.client[0]);
    close(n.client[1]);
    close(n.accepted[1]);
    close(n.listener);
    close(eof);
    sockfind_free(sf);
}

/* A search remembers what it saw at each descriptor, to skip it next time; a number closed and reused
 * by another connection behind its back (no take, no release) is still found, and so is a connection
 * whose number a failed search saw as a dummy or as not open at all. */
static void test_stale_hints(void) {
    struct net n;
    if (!CHECK_EQ_INT(net_open(&n, AF_INET, 3), 0)) return;
    struct sockfind *sf = sockfind_new();
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, 1, n.server_port), -1); /* looks at everything, remembers it */
    struct sockaddr_storage a;
    socklen_t alen = loopback(&n, &a, n.server_port);
    int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ_INT(connect(client, (struct sockaddr *)&a, alen), 0);
    int reused = n.accepted[1];
    close(n.accepted[1]); /* behind sockfind's back: its hint still names client 1 */
    int accepted = accept(n.listener, NULL, NULL);
    CHECK_EQ_INT(accepted, reused); /* the lowest free number */
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, port_of(client, 0), n.server_port), accepted);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[1], n.server_port), -1);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[2], n.server_port), n.accepted[2]);
    CHECK_EQ_INT(sockfind_claim(sf, n.ip, n.client_port[0], n.server_port), n.accepted[0]);
    sockfind_free(sf);
    close(client);
    close(accepted);
    n.accepted[1] = -1;
    net_close(&n, 3);
}

/* A claim that finds nothing tries every descriptor number below RLIMIT_NOFILE, which sockfind_new
 * reads; containers often allow a million, which would make the failing claims here take minutes. */
static void limit_descriptors(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1024) {
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(void) {
    limit_descriptors();
    test_claim_release();
    test_wrong_addresses();
    test_client_ends_not_taken();
    test_many();
    test_concurrent_claims();
    test_ipv6();
    test_take();
    test_stale_hints();
    return check_done();
}

/* sockfind: finding a connection's socket by its addresses, and taking it (see sockfind.h). */
#include "sockfind.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SOCKFIND_SLACK 256 /* descriptors scanned past the highest ever claimed before listing them all */
#define SOCKFIND_HINTS_MAX 65536 /* descriptors below this remember what a search last saw there */

/* A hint: what the last look at a descriptor saw (see sockfind.h). Anything else is a peer's tag. */
#define HINT_UNKNOWN 0   /* look at it: closed, new, a dummy, or never looked at */
#define HINT_NOT_PEER 1  /* a socket without a peer (a listener), or not a socket */

/* The claimed set: one bit per descriptor number below `limit`, and one bit per word of those that is
 * set when the word is full, so a search skips 4096 claimed numbers with one test. */
struct sockfind {
    pthread_mutex_t lock; /* guards claimed, full, top and hint */
    uint64_t *claimed;
    uint64_t *full;
    size_t words;         /* of claimed */
    int limit;            /* RLIMIT_NOFILE when created; a descriptor at or above it is not claimed */
    int top;              /* the highest descriptor ever claimed */
    uint64_t *hint;       /* per descriptor below nhints */
    int nhints;
};

/* The remote end a search looks for, parsed once. */
struct wanted {
    int family;
    unsigned char addr[16];
    int port, server_port;
    uint64_t tag;
};

struct sockfind *sockfind_new(void) {
    struct rlimit rl;
    struct sockfind *sf = calloc(1, sizeof *sf);
    if (!sf) return NULL;
    sf->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 24) ? (int)rl.rlim_cur : 1 << 24;
    sf->words = (size_t)sf->limit / 64 + 1;
    sf->claimed = calloc(sf->words, sizeof *sf->claimed);
    sf->full = calloc(sf->words / 64 + 1, sizeof *sf->full);
    sf->nhints = sf->limit < SOCKFIND_HINTS_MAX ? sf->limit : SOCKFIND_HINTS_MAX;
    sf->hint = calloc((size_t)sf->nhints, sizeof *sf->hint);
    if (!sf->claimed || !sf->full || !sf->hint) {
        free(sf->claimed);
        free(sf->full);
        free(sf->hint);
        free(sf);
        return NULL;
    }
    pthread_mutex_init(&sf->lock, NULL);
    return sf;
}

void sockfind_free(struct sockfind *sf) {
    if (!sf) return;
    pthread_mutex_destroy(&sf->lock);
    free(sf->claimed);
    free(sf->full);
    free(sf->hint);
    free(sf);
}

static int port_of(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

/* A peer's address and port in 64 bits: all of an IPv4 peer, a digest of an IPv6 one. Equal tags
 * only say "look closer"; different tags say "a different peer". Never HINT_UNKNOWN or HINT_NOT_PEER. */
static uint64_t tag_of(int family, const unsigned char *addr, int port) {
    uint64_t h = family == AF_INET ? UINT64_C(1) << 63 : UINT64_C(1) << 62;
    if (family == AF_INET) {
        uint32_t a;
        memcpy(&a, addr, 4);
        return h | (uint64_t)a << 16 | (uint64_t)port;
    }
    uint32_t d = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++) d = (d ^ addr[i]) * 16777619u;
    return h | (uint64_t)d << 16 | (uint64_t)port;
}

static const unsigned char *addr_of(const struct sockaddr_storage *a) {
    return a->ss_family == AF_INET ? (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr
                                   : (const unsigned char *)&((const struct sockaddr_in6 *)a)->sin6_addr;
}

/* 0 when `ip` is not an address of either family: nothing can match it. */
static int wanted_init(struct wanted *w, const char *ip, int port, int server_port) {
    w->family = inet_pton(AF_INET, ip, w->addr) == 1 ? AF_INET : inet_pton(AF_INET6, ip, w->addr) == 1 ? AF_INET6 : 0;
    w->port = port;
    w->server_port = server_port;
    w->tag = w->family ? tag_of(w->family, w->addr, port) : 0;
    return w->family != 0;
}

/* getpeername and, if the peer is the one wanted, getsockname: 1 on a match. Leaves in *hint what a
 * later search may skip the descriptor for: its peer's tag, HINT_NOT_PEER, or HINT_UNKNOWN for what
 * is about to change (a closed number, a dummy socket: both are soon a new connection). */
static int look(int fd, const struct wanted *w, uint64_t *hint) {
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    *hint = HINT_UNKNOWN;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
        if (errno == ENOTSOCK || errno == ENOTCONN) *hint = HINT_NOT_PEER;
        return 0;
    }
    if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6) return 0;
    int port = port_of(&peer);
    *hint = tag_of(peer.ss_family, addr_of(&peer), port);
    if (peer.ss_family != w->family || port != w->port ||
        memcmp(addr_of(&peer), w->addr, w->family == AF_INET ? 4 : 16) != 0)
        return 0;
    return getsockname(fd, (struct sockaddr *)&local, &llen) == 0 && port_of(&local) == w->server_port;
}

/* look, keeping the hint of a descriptor that has one. */
static int look_hinted(struct sockfind *sf, int fd, const struct wanted *w) {
    uint64_t hint;
    int found = look(fd, w, &hint);
    if (fd < sf->nhints) sf->hint[fd] = found ? HINT_UNKNOWN : hint;
    return found;
}

/* Whether the first pass looks at fd: its hint does not rule it out. */
static int maybe(const struct sockfind *sf, int fd, const struct wanted *w) {
    return fd >= sf->nhints || sf->hint[fd] == HINT_UNKNOWN || sf->hint[fd] == w->tag;
}

static int is_claimed(const struct sockfind *sf, int fd) { return sf->claimed[fd / 64] >> (fd % 64) & 1; }

static void set_claimed(struct sockfind *sf, int fd) {
    size_t w = (size_t)fd / 64;
    if (fd < sf->nhints) sf->hint[fd] = HINT_UNKNOWN; /* looked at again once released, if ever */
    sf->claimed[w] |= UINT64_C(1) << (fd % 64);
    if (sf->claimed[w] == UINT64_MAX) sf->full[w / 64] |= UINT64_C(1) << (w % 64);
    if (fd > sf->top) sf->top = fd;
}

static void clear_claimed(struct sockfind *sf, int fd) {
    size_t w = (size_t)fd / 64;
    sf->claimed[w] &= ~(UINT64_C(1) << (fd % 64));
    sf->full[w / 64] &= ~(UINT64_C(1) << (w % 64));
}

static int below_limit(const struct sockfind *sf, size_t n) { return n < (size_t)sf->limit ? (int)n : sf->limit; }

/* The lowest unclaimed number at or above `from`, or `limit`. */
static int next_unclaimed(const struct sockfind *sf, int from) {
    if (from >= sf->limit) return sf->limit;
    size_t w = (size_t)from / 64;
    uint64_t open = ~sf->claimed[w] & (UINT64_MAX << (from % 64));
    if (open) return below_limit(sf, w * 64 + (size_t)__builtin_ctzll(open));
    for (w++; w < sf->words;) {
        uint64_t not_full = ~sf->full[w / 64] & (UINT64_MAX << (w % 64));
        if (!not_full) {
            w = (w / 64 + 1) * 64;
            continue;
        }
        w = w / 64 * 64 + (size_t)__builtin_ctzll(not_full);
        if (w >= sf->words) break;
        return below_limit(sf, w * 64 + (size_t)__builtin_ctzll(~sf->claimed[w]));
    }
    return sf->limit;
}

/* The first unclaimed match in [from, to) among the descriptors whose hints say maybe == want, or -1. */
static int scan(struct sockfind *sf, int from, int to, const struct wanted *w, int want) {
    for (int fd = next_unclaimed(sf, from); fd < to && fd < sf->limit; fd = next_unclaimed(sf, fd + 1))
        if (maybe(sf, fd, w) == want && look_hinted(sf, fd, w)) return fd;
    return -1;
}

/* The same over every open descriptor, as /proc lists them: a search that finds nothing near the
 * others must not try every number up to the limit (a million in a container) under the lock. */
static int scan_open(struct sockfind *sf, int from, const struct wanted *w) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        int found = scan(sf, from, sf->limit, w, 1);
        return found >= 0 ? found : scan(sf, from, sf->limit, w, 0);
    }
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= from && fd < sf->limit && !is_claimed(sf, fd) &&
            look_hinted(sf, fd, w))
            found = fd;
    }
    closedir(d);
    return found;
}

/* Called with the lock held. The hints first: only the descriptors they do not rule out; then, in case
 * one is stale (its number was closed and reused without a take), the rest near; then the far ones. */
static int find_locked(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port) {
    struct wanted w;
    if (!wanted_init(&w, remote_ip, remote_port, server_port)) return -1;
    int near = sf->top + SOCKFIND_SLACK;
    int found = scan(sf, 0, near, &w, 1);
    if (found < 0) found = scan(sf, 0, near, &w, 0);
    return found >= 0 ? found : scan_open(sf, near, &w);
}

int sockfind_claim(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port) {
    pthread_mutex_lock(&sf->lock);
    int found = find_locked(sf, remote_ip, remote_port, server_port);
    if (found >= 0) set_claimed(sf, found);
    pthread_mutex_unlock(&sf->lock);
    return found;
}

void sockfind_release(struct sockfind *sf, int fd) {
    if (fd < 0 || fd >= sf->limit) return;
    pthread_mutex_lock(&sf->lock);
    clear_claimed(sf, fd);
    pthread_mutex_unlock(&sf->lock);
}

int sockfind_take(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port, int eof_fd) {
    pthread_mutex_lock(&sf->lock);
    int mine = -1, fd = find_locked(sf, remote_ip, remote_port, server_port);
    if (fd >= 0) mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0 && fd < sf->nhints) sf->hint[fd] = HINT_UNKNOWN; /* a dummy now, soon a new connection */
    if (mine >= sf->limit || (mine >= 0 && dup3(eof_fd, fd, O_CLOEXEC) < 0)) {
        close(mine); /* the limit was raised since sockfind_new, or dup3 failed: CivetWeb keeps it */
        mine = -1;
    }
    if (mine >= 0) set_claimed(sf, mine);
    pthread_mutex_unlock(&sf->lock);
    return mine;
}

void sockfind_close(struct sockfind *sf, int fd) {
    if (fd < 0) return;
    pthread_mutex_lock(&sf->lock);
    if (fd < sf->limit) clear_claimed(sf, fd);
    close(fd);
    pthread_mutex_unlock(&sf->lock);
}

int sockfind_eof_socket(void) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -1;
    close(sv[1]);
    return sv[0];
}

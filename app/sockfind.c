/* sockfind: finding a connection's socket by its addresses, and taking it (see sockfind.h). */
#include "sockfind.h"

#include <arpa/inet.h>
#include <dirent.h>
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

/* The claimed set: one bit per descriptor number below `limit`, and one bit per word of those that is
 * set when the word is full, so a search skips 4096 claimed numbers with one test. */
struct sockfind {
    pthread_mutex_t lock; /* guards claimed, full and top */
    uint64_t *claimed;
    uint64_t *full;
    size_t words;         /* of claimed */
    int limit;            /* RLIMIT_NOFILE when created; a descriptor at or above it is not claimed */
    int top;              /* the highest descriptor ever claimed */
};

struct sockfind *sockfind_new(void) {
    struct rlimit rl;
    struct sockfind *sf = calloc(1, sizeof *sf);
    if (!sf) return NULL;
    sf->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 24) ? (int)rl.rlim_cur : 1 << 24;
    sf->words = (size_t)sf->limit / 64 + 1;
    sf->claimed = calloc(sf->words, sizeof *sf->claimed);
    sf->full = calloc(sf->words / 64 + 1, sizeof *sf->full);
    if (!sf->claimed || !sf->full) {
        free(sf->claimed);
        free(sf->full);
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
    free(sf);
}

static int port_of(const struct sockaddr_storage *a) {
    if (a->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static int ip_is(const struct sockaddr_storage *a, const char *ip) {
    char text[INET6_ADDRSTRLEN];
    const void *raw = a->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)a)->sin_addr
                                              : (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr;
    return inet_ntop(a->ss_family, raw, text, sizeof text) && strcmp(text, ip) == 0;
}

static int matches(int fd, const char *ip, int port, int server_port) {
    struct sockaddr_storage peer, local;
    socklen_t plen = sizeof peer, llen = sizeof local;
    if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) return 0;
    if (port_of(&peer) != port || !ip_is(&peer, ip)) return 0;
    return getsockname(fd, (struct sockaddr *)&local, &llen) == 0 && port_of(&local) == server_port;
}

static int is_claimed(const struct sockfind *sf, int fd) { return sf->claimed[fd / 64] >> (fd % 64) & 1; }

static void set_claimed(struct sockfind *sf, int fd) {
    size_t w = (size_t)fd / 64;
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

/* The first unclaimed match in [from, to), or -1. */
static int scan(const struct sockfind *sf, int from, int to, const char *ip, int port, int server_port) {
    for (int fd = next_unclaimed(sf, from); fd < to && fd < sf->limit; fd = next_unclaimed(sf, fd + 1))
        if (matches(fd, ip, port, server_port)) return fd;
    return -1;
}

/* The same over every open descriptor, as /proc lists them: a search that finds nothing near the
 * others must not try every number up to the limit (a million in a container) under the lock. */
static int scan_open(const struct sockfind *sf, int from, const char *ip, int port, int server_port) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return scan(sf, from, sf->limit, ip, port, server_port);
    int found = -1;
    for (struct dirent *e; found < 0 && (e = readdir(d)) != NULL;) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd >= from && fd < sf->limit && !is_claimed(sf, fd) &&
            matches(fd, ip, port, server_port))
            found = fd;
    }
    closedir(d);
    return found;
}

/* Called with the lock held. */
static int find_locked(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port) {
    int near = sf->top + SOCKFIND_SLACK;
    int found = scan(sf, 0, near, remote_ip, remote_port, server_port);
    return found >= 0 ? found : scan_open(sf, near, remote_ip, remote_port, server_port);
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

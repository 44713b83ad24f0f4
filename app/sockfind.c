/* sockfind: finding a connection's socket by its addresses (see sockfind.h). */
#include "sockfind.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#define SOCKFIND_SLACK 256 /* descriptors scanned past the highest ever claimed before listing them all */

struct sockfind {
    pthread_mutex_t lock; /* guards claimed and top */
    uint64_t *claimed;    /* one bit per descriptor number below `limit` */
    int limit;            /* RLIMIT_NOFILE when created; a descriptor at or above it is not claimed */
    int top;              /* the highest descriptor ever claimed */
};

struct sockfind *sockfind_new(void) {
    struct rlimit rl;
    struct sockfind *sf = calloc(1, sizeof *sf);
    if (!sf) return NULL;
    sf->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 24) ? (int)rl.rlim_cur : 1 << 24;
    sf->claimed = calloc((size_t)sf->limit / 64 + 1, sizeof *sf->claimed);
    if (!sf->claimed) {
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

/* The first unclaimed match in [from, to), or -1. */
static int scan(const struct sockfind *sf, int from, int to, const char *ip, int port, int server_port) {
    for (int fd = from; fd < to && fd < sf->limit; fd++) {
        if (sf->claimed[fd / 64] == UINT64_MAX) {
            fd |= 63;
            continue;
        }
        if (!is_claimed(sf, fd) && matches(fd, ip, port, server_port)) return fd;
    }
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

int sockfind_claim(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port) {
    pthread_mutex_lock(&sf->lock);
    int near = sf->top + SOCKFIND_SLACK;
    int found = scan(sf, 0, near, remote_ip, remote_port, server_port);
    if (found < 0) found = scan_open(sf, near, remote_ip, remote_port, server_port);
    if (found >= 0) {
        sf->claimed[found / 64] |= UINT64_C(1) << (found % 64);
        if (found > sf->top) sf->top = found;
    }
    pthread_mutex_unlock(&sf->lock);
    return found;
}

void sockfind_release(struct sockfind *sf, int fd) {
    if (fd < 0 || fd >= sf->limit) return;
    pthread_mutex_lock(&sf->lock);
    sf->claimed[fd / 64] &= ~(UINT64_C(1) << (fd % 64));
    pthread_mutex_unlock(&sf->lock);
}

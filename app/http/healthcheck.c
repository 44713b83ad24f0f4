/* healthcheck: one bounded HTTP GET (see healthcheck.h). */
#include "healthcheck.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define URL_PART_MAX 256

struct url {
    char host[URL_PART_MAX], port[8], path[URL_PART_MAX];
};

static int parse_url(const char *text, struct url *u) {
    if (strncmp(text, "http://", 7) != 0) return -1;
    const char *host = text + 7, *slash = strchr(host, '/'), *end = slash ? slash : host + strlen(host);
    const char *colon = memchr(host, ':', (size_t)(end - host));
    size_t hlen = (size_t)((colon ? colon : end) - host), plen = colon ? (size_t)(end - colon - 1) : 2;
    if (hlen == 0 || hlen >= sizeof u->host || plen == 0 || plen >= sizeof u->port) return -1;
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    memcpy(u->port, colon ? colon + 1 : "80", plen);
    u->port[plen] = '\0';
    snprintf(u->path, sizeof u->path, "%s", slash ? slash : "/");
    return 0;
}

/* Waits for fd to be ready for `events`, within the timeout. */
static int wait_fd(int fd, short events) {
    struct pollfd p = {fd, events, 0};
    return poll(&p, 1, HEALTHCHECK_TIMEOUT_MS) == 1 ? 0 : -1;
}

static int connect_to(const struct url *u) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(u->host, u->port, &hints, &res) != 0 || !res) return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int rc = fd < 0 ? -1 : connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (fd >= 0 && rc < 0 && errno == EINPROGRESS && wait_fd(fd, POLLOUT) == 0 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
        rc = 0;
    if (rc < 0 && fd >= 0) close(fd);
    return rc < 0 ? -1 : fd;
}

int healthcheck_run(const char *url) {
    struct url u;
    if (parse_url(url, &u) < 0) {
        fprintf(stderr, "healthcheck: '%s' is not an http://HOST[:PORT][/PATH] URL\n", url);
        return 1;
    }
    int fd = connect_to(&u);
    if (fd < 0) {
        fprintf(stderr, "healthcheck: cannot connect to %s:%s\n", u.host, u.port);
        return 1;
    }
    char buf[512];
    int n = snprintf(buf, sizeof buf, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", u.path, u.host, u.port);
    ssize_t got = -1;
    if (wait_fd(fd, POLLOUT) == 0 && write(fd, buf, (size_t)n) == n && wait_fd(fd, POLLIN) == 0)
        got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0) {
        fprintf(stderr, "healthcheck: no answer from %s\n", url);
        return 1;
    }
    buf[got] = '\0';
    int ok = strncmp(buf, "HTTP/1.1 200 ", 13) == 0 || strncmp(buf, "HTTP/1.0 200 ", 13) == 0;
    if (!ok) fprintf(stderr, "healthcheck: %s answered %.40s\n", url, buf);
    return ok ? 0 : 1;
}

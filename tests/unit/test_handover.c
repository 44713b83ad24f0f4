/* test_handover: CivetWeb's mg_handover_connection (third_party/civetweb/patches/0001-handover.patch).
 *
 * The test plays switchboard's front door: a CivetWeb context with no listening port of its own
 * ("listening_ports" ""), a loopback listener of the test's, a client socket connected to it, and the
 * accepted end handed to CivetWeb after the test has read some or all of the request itself. What is
 * checked is what the client gets back: the response to the request as if CivetWeb had read it all,
 * with the client's address and the local port; a body split between the bytes read before the hand-over
 * and the socket; a second request on a kept-alive connection, and two pipelined in the bytes read
 * before; an IPv6 client named over an IPv4 socket; a refusal (full queue, stopping, too long, bad
 * address) that leaves the socket open and the caller's, so it can still answer; a socket queued when
 * the context stops, closed without an answer. */
#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define IO_TIMEOUT_S 5 /* every socket read in the test gives up after this */

static int listener = -1;

/* /block's gate: its handler says it entered, then waits until the test opens the gate. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int blocked, gate_open;

/* Replies "METHOD URI REMOTE_ADDR REMOTE_PORT SERVER_PORT|BODY", the body as CivetWeb read it. */
static int handle_echo(struct mg_connection *conn, void *cbdata) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    char body[512], reply[768];
    size_t got = 0;
    int n;
    while (got < sizeof body && (n = mg_read(conn, body + got, sizeof body - got)) > 0) got += (size_t)n;
    int len = snprintf(reply, sizeof reply, "%s %s %s %d %d|%.*s", ri->request_method, ri->local_uri, ri->remote_addr,
                       ri->remote_port, ri->server_port, (int)got, body);
    mg_send_http_ok(conn, "text/plain", len);
    mg_write(conn, reply, (size_t)len);
    return 200;
}

static int handle_block(struct mg_connection *conn, void *cbdata) {
    pthread_mutex_lock(&gate_lock);
    blocked++;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open) pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    mg_send_http_ok(conn, "text/plain", 7);
    mg_write(conn, "waited\n", 7);
    return 200;
}

/* Waits (bounded) until `n` requests sit in /block. */
static int wait_blocked(int n) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += IO_TIMEOUT_S;
    pthread_mutex_lock(&gate_lock);
    int r = 0;
    while (blocked < n && r == 0) r = pthread_cond_timedwait(&gate_cond, &gate_lock, &until);
    int ok = blocked >= n;
    pthread_mutex_unlock(&gate_lock);
    return ok;
}

static void open_gate(void) {
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static struct mg_context *start(const char *threads, const char *keep_alive) {
    const char *options[] = {
        "listening_ports", "",  /* no listener: hand-overs only */
        "num_threads", threads,
        "connection_queue", "1",
        "enable_keep_alive", keep_alive,
        "keep_alive_timeout_ms", "5000",
        "request_timeout_ms", "5000",
        "max_request_size", "4096",
        NULL,
    };
    struct mg_callbacks callbacks = {0};
    struct mg_init_data init = {&callbacks, NULL, options};
    char err[256] = "";
    unsigned code = 0;
    struct mg_error_data error = {&code, err, sizeof err};
    struct mg_context *ctx = mg_start2(&init, &error);
    if (!CHECK(ctx != NULL)) {
        fprintf(stderr, "    mg_start2: %s\n", err);
        return NULL;
    }
    mg_set_request_handler(ctx, "/echo$", handle_echo, NULL);
    mg_set_request_handler(ctx, "/block$", handle_block, NULL);
    return ctx;
}

static void timeouts(int fd) {
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int port_of(int fd, int peer) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if ((peer ? getpeername(fd, (struct sockaddr *)&a, &len) : getsockname(fd, (struct sockaddr *)&a, &len)) < 0) return -1;
    return ntohs(a.sin_port);
}

/* A connection to the test's listener: the client's end, and the accepted end with its peer address. */
struct conn {
    int client, server;
    struct sockaddr_in peer;
};

static int conn_open(struct conn *c) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(listener, 0)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof c->peer;
    c->server = -1;
    c->client = socket(AF_INET, SOCK_STREAM, 0);
    if (c->client < 0 || connect(c->client, (struct sockaddr *)&a, sizeof a) < 0) return 0;
    timeouts(c->client);
    c->server = accept(listener, (struct sockaddr *)&c->peer, &len);
    if (c->server < 0) return 0;
    timeouts(c->server);
    return 1;
}

static int send_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return 0;
        s += w;
        n -= (size_t)w;
    }
    return 1;
}

/* What the front door does: reads exactly `n` bytes from the accepted socket. */
static int pre_read(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) return 0;
        got += (size_t)r;
    }
    return 1;
}

/* One response on the client's end: its status, and its body (Content-Length) in `body`. Returns the
 * status, 0 on EOF before a complete response, -1 on a timeout or error. */
static int read_response(int fd, char *body, size_t cap) {
    char buf[4096];
    size_t got = 0;
    char *end = NULL;
    body[0] = '\0';
    while (!end) {
        if (got == sizeof buf - 1) return -1;
        ssize_t r = recv(fd, buf + got, 1, 0); /* byte by byte: the next response stays in the socket */
        if (r == 0) return 0;
        if (r < 0) return -1;
        got++;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t len = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if (len >= cap || !pre_read(fd, body, len)) return -1;
    body[len] = '\0';
    return status;
}

static int handover(struct mg_context *ctx, struct conn *c, const char *head, size_t len) {
    return mg_handover_connection(ctx, c->server, (const struct sockaddr *)&c->peer, sizeof c->peer, head, len);
}

static void expect_echo(const struct conn *c, const char *method, const char *uri, const char *body_sent) {
    char body[1024], want[1024];
    snprintf(want, sizeof want, "%s %s 127.0.0.1 %d %d|%s", method, uri, port_of(c->client, 0), port_of(listener, 0),
             body_sent);
    CHECK_EQ_INT(read_response(c->client, body, sizeof body), 200);
    CHECK_EQ_STR(body, want);
}

static void test_whole_head(struct mg_context *ctx) {
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct conn c;
    char head[sizeof req];
    if (!CHECK(conn_open(&c))) return;
    CHECK(send_all(c.client, req, strlen(req)));
    CHECK(pre_read(c.server, head, strlen(req)));
    CHECK_EQ_INT(handover(ctx, &c, head, strlen(req)), 0);
    expect_echo(&c, "GET", "/echo", "");
    char byte;
    CHECK_EQ_INT(recv(c.client, &byte, 1, 0), 0); /* Connection: close: CivetWeb closed its socket */
    close(c.client);
}

/* The door read only part of the head: CivetWeb reads the rest itself. */
static void test_part_of_head(struct mg_context *ctx) {
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct conn c;
    char head[16];
    if (!CHECK(conn_open(&c))) return;
    CHECK(send_all(c.client, req, 10));
    CHECK(pre_read(c.server, head, 10));
    CHECK_EQ_INT(handover(ctx, &c, head, 10), 0);
    CHECK(send_all(c.client, req + 10, strlen(req) - 10));
    expect_echo(&c, "GET", "/echo", "");
    close(c.client);
}

/* The head and the first bytes of the body were read before the hand-over, the rest of the body
 * arrives afterwards on the socket. */
static void test_body_split(struct mg_context *ctx) {
    static const char head_text[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\nConnection: close\r\n\r\n";
    struct conn c;
    char head[sizeof head_text + 4];
    size_t n = strlen(head_text) + 4;
    if (!CHECK(conn_open(&c))) return;
    CHECK(send_all(c.client, head_text, strlen(head_text)));
    CHECK(send_all(c.client, "0123", 4));
    CHECK(pre_read(c.server, head, n));
    CHECK_EQ_INT(handover(ctx, &c, head, n), 0);
    CHECK(send_all(c.client, "456789", 6));
    expect_echo(&c, "POST", "/echo", "0123456789");
    close(c.client);
}

/* Keep-alive on: a second request on the same socket, read by CivetWeb alone; then two requests that
 * were both in the bytes read before the hand-over (pipelined). */
static void test_keep_alive(struct mg_context *ctx) {
    static const char req1[] = "GET /echo?one HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char req2[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
    struct conn c;
    char head[256];
    if (!CHECK(conn_open(&c))) return;
    CHECK(send_all(c.client, req1, strlen(req1)));
    CHECK(pre_read(c.server, head, strlen(req1)));
    CHECK_EQ_INT(handover(ctx, &c, head, strlen(req1)), 0);
    expect_echo(&c, "GET", "/echo", "");
    CHECK(send_all(c.client, req2, strlen(req2)));
    expect_echo(&c, "POST", "/echo", "abc");
    close(c.client);

    if (!CHECK(conn_open(&c))) return;
    CHECK(send_all(c.client, req1, strlen(req1)));
    CHECK(send_all(c.client, req2, strlen(req2)));
    size_t n = strlen(req1) + strlen(req2);
    CHECK(pre_read(c.server, head, n));
    CHECK_EQ_INT(handover(ctx, &c, head, n), 0);
    expect_echo(&c, "GET", "/echo", "");
    expect_echo(&c, "POST", "/echo", "abc");
    close(c.client);
}

/* A refused socket is still the caller's: open, and it can answer on it itself. */
static void expect_still_ours(struct conn *c) {
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy\n";
    char body[64];
    CHECK(fcntl(c->server, F_GETFD) >= 0);
    CHECK(send_all(c->server, busy, strlen(busy)));
    CHECK_EQ_INT(read_response(c->client, body, sizeof body), 503);
    CHECK_EQ_STR(body, "busy\n");
    close(c->server);
    close(c->client);
}

static void test_refusals(struct mg_context *ctx) {
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    struct conn c;
    if (!CHECK(conn_open(&c))) return;
    char *big = calloc(1, 4097);
    CHECK_EQ_INT(handover(ctx, &c, big, 4097), -EMSGSIZE); /* max_request_size 4096 */
    free(big);
    CHECK_EQ_INT(mg_handover_connection(ctx, c.server, NULL, 0, req, strlen(req)), -EINVAL);
    CHECK_EQ_INT(handover(ctx, &c, NULL, 5), -EINVAL);
    struct sockaddr_storage other = {.ss_family = AF_UNIX};
    CHECK_EQ_INT(mg_handover_connection(ctx, c.server, (struct sockaddr *)&other, sizeof(struct sockaddr_in6), req,
                                        strlen(req)),
                 -EAFNOSUPPORT);
    expect_still_ours(&c);
}

/* The address handed over is the one CivetWeb reports, IPv6 too (built with USE_IPV6): the front door
 * names the client a trusted proxy named (app/front/proxyhead.h), whatever the socket's own peer. */
static void test_client_named(struct mg_context *ctx) {
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(4445)};
    char body[1024], want[256];
    struct conn c;
    inet_pton(AF_INET6, "2001:db8::7", &v6.sin6_addr);
    if (!CHECK(conn_open(&c))) return;
    CHECK_EQ_INT(mg_handover_connection(ctx, c.server, (struct sockaddr *)&v6, sizeof v6, req, strlen(req)), 0);
    snprintf(want, sizeof want, "GET /echo 2001:db8::7 4445 %d|", port_of(listener, 0));
    CHECK_EQ_INT(read_response(c.client, body, sizeof body), 200);
    CHECK_EQ_STR(body, want);
    close(c.client);
}

/* One worker, a queue of one: the worker held in /block, a second socket queued, a third refused at
 * once with -EAGAIN (the door answers 503 on it). Opening the gate serves the first two. */
static void test_queue_full(struct mg_context *ctx) {
    static const char block[] = "GET /block HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char echo[] = "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct conn a, b, c;
    char body[64];
    if (!CHECK(conn_open(&a) && conn_open(&b) && conn_open(&c))) return;
    CHECK_EQ_INT(handover(ctx, &a, block, strlen(block)), 0);
    if (!CHECK(wait_blocked(1))) return;
    CHECK_EQ_INT(handover(ctx, &b, echo, strlen(echo)), 0);
    CHECK_EQ_INT(handover(ctx, &c, echo, strlen(echo)), -EAGAIN);
    expect_still_ours(&c);
    open_gate();
    CHECK_EQ_INT(read_response(a.client, body, sizeof body), 200);
    CHECK_EQ_STR(body, "waited\n");
    expect_echo(&b, "GET", "/echo", "");
    close(a.client);
    close(b.client);
}

static void *stop_thread(void *ctx) {
    mg_stop(ctx);
    return NULL;
}

/* mg_stop while a socket waits in the queue: hand-overs are refused with -ESHUTDOWN from then on,
 * and the queued socket is closed without an answer once the worker is free. */
static void test_stop_with_queued(void) {
    static const char block[] = "GET /block HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    static const char echo[] = "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    struct mg_context *ctx = start("1", "no");
    struct conn a, b, c;
    char body[64];
    if (!ctx || !CHECK(conn_open(&a) && conn_open(&b) && conn_open(&c))) return;
    pthread_mutex_lock(&gate_lock);
    blocked = gate_open = 0;
    pthread_mutex_unlock(&gate_lock);
    CHECK_EQ_INT(handover(ctx, &a, block, strlen(block)), 0);
    if (!CHECK(wait_blocked(1))) return;
    CHECK_EQ_INT(handover(ctx, &b, echo, strlen(echo)), 0);
    pthread_t stopper;
    pthread_create(&stopper, NULL, stop_thread, ctx);
    int r = -EAGAIN; /* the queue is full until the stop begins */
    for (int i = 0; i < IO_TIMEOUT_S * 1000 && r == -EAGAIN; i++) {
        r = handover(ctx, &c, echo, strlen(echo));
        if (r == -EAGAIN) usleep(1000);
    }
    CHECK_EQ_INT(r, -ESHUTDOWN);
    expect_still_ours(&c);
    open_gate();
    /* A's handler ends after the stop began: CivetWeb writes nothing more, and closes. */
    CHECK_EQ_INT(read_response(a.client, body, sizeof body), 0);
    CHECK_EQ_INT(read_response(b.client, body, sizeof body), 0); /* closed, never served (not left open) */
    pthread_join(stopper, NULL);
    close(a.client);
    close(b.client);
}

int main(void) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (!CHECK(listener >= 0 && bind(listener, (struct sockaddr *)&a, sizeof a) == 0 && listen(listener, 16) == 0))
        return check_done();

    struct mg_context *ctx = start("2", "yes");
    if (ctx) {
        test_whole_head(ctx);
        test_part_of_head(ctx);
        test_body_split(ctx);
        test_keep_alive(ctx);
        test_refusals(ctx);
        test_client_named(ctx);
        mg_stop(ctx);
    }
    ctx = start("1", "no");
    if (ctx) {
        test_queue_full(ctx);
        mg_stop(ctx);
    }
    test_stop_with_queued();
    close(listener);
    return check_done();
}

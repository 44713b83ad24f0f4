/* ws: the WebSocket endpoints (see ws.h).
 *
 * Connections without threads. The acceptor (acceptor.h) reads a connection's request head on an
 * event loop; when it is an upgrade for "/ws" or "/", ws_upgrade checks it, writes the 101 and hands
 * the socket to that same loop, on its thread, all in one go: no other thread ever sees the socket, and
 * the welcome and the presence it causes go out with the loop's turn.
 *
 * Invariants:
 * - A session exists only from ws_upgrade's slot checks on. Until loop_adopt_here, ws_upgrade owns it
 *   and every failure frees it there (session_free), closing the socket.
 * - After loop_adopt_here the session, its socket, its --max-connections and --max-per-ip slots belong
 *   to the loop, and on_ended frees them all, on the loop's thread, after the session left the hub and
 *   its outbox let go. No code of this file touches a session after handing it to the loop, except
 *   through the loop's callbacks.
 * No thread waits for a connection, so the process's thread count does not depend on how many are
 * open: CivetWeb's pool is --http-threads, the loops --threads. */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "acceptor.h"
#include "assembler.h"
#include "auth.h"
#include "dict.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "names.h"
#include "origin.h"
#include "redact.h"
#include "router.h"
#include "since.h"
#include "upgrade.h"

#define WS_RATE_STRIKES 20      /* rate_limited replies in a row before the connection is closed */
#define WS_SUBPROTOCOL_ECHO "echo-protocol"
#define WS_PROTOCOL_HEADERS_MAX 8 /* Sec-WebSocket-Protocol headers of one request looked at */

/* One WebSocket connection. Allocated by ws_upgrade on the loop that read its handshake; freed by the
 * loop's `ended` callback once it was handed over, or by ws_upgrade if it never was (see the
 * invariants above). `conn` is what the rest of the server sees. */
struct session {
    struct conn conn;
    struct loop_conn lc;      /* the socket's reading, once a loop has it */
    struct ws_server *ws;
    int fd;                   /* the TCP connection, owned */
    unsigned inited : 1;      /* conn and the assembler are set up */
    unsigned registered : 1;  /* in the hub */
    unsigned ip_counted : 1;  /* holds a --max-per-ip slot for remote_addr */
    unsigned remote_v6 : 1;   /* remote_addr is IPv6 (a client behind a trusted proxy, acceptor.h) */
    unsigned peer_close : 16; /* the code the peer closed with, 0 = none; the loop's thread only */
    uint16_t remote_port;
    uint16_t strikes;         /* rate-limited messages in a row (closed at WS_RATE_STRIKES) */
    uint8_t remote_addr[16];  /* the client's (IPv4 in the first 4 bytes): text only when logged or released */
    struct assembler in;      /* the loop's thread only */
    double tokens;            /* rate limiter: the loop's thread only */
    int64_t tokens_at_ms;
};
/* (Packed: an idle connection's memory is mostly this record, docs/BENCHMARKS.md.) */

struct ws_server {
    struct hub *hub;
    struct outbox *ob;
    struct ws_settings set;
    long active;    /* atomic: handshakes accepted and not yet closed, for --max-connections */
    int stopping;   /* atomic */
    pthread_mutex_t ip_lock; /* guards per_ip */
    struct dict *per_ip;     /* client address -> WebSockets open from it (as intptr_t), for --max-per-ip */
};

/* Never blocks: the socket takes what fits (the acceptor made it non-blocking). */
static ssize_t io_write(void *sink, const struct iovec *iov, int iovcnt) {
    struct session *s = sink;
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t put = sendmsg(s->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (put >= 0) return put;
        if (errno != EINTR) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
}

static void io_kick(void *sink) { loop_kick(&((struct session *)sink)->lc); }

static const struct outbox_io socket_io = {io_write, io_kick, 1};

const struct outbox_io *ws_outbox_io(void) { return &socket_io; }

struct ws_server *ws_new(struct hub *h, struct outbox *ob, const struct ws_settings *set) {
    struct ws_server *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->per_ip = dict_new();
    if (!ws->per_ip) {
        free(ws);
        return NULL;
    }
    pthread_mutex_init(&ws->ip_lock, NULL);
    ws->hub = h;
    ws->ob = ob;
    ws->set = *set;
    return ws;
}

void ws_free(struct ws_server *ws) {
    if (!ws) return;
    dict_free(ws->per_ip);
    pthread_mutex_destroy(&ws->ip_lock);
    free(ws);
}

int ws_wants_tokens(const struct ws_server *ws) { return ws->set.verifier != NULL; }

void ws_stop_accepting(struct ws_server *ws) { __atomic_store_n(&ws->stopping, 1, __ATOMIC_RELEASE); }

/* Takes a connection slot; 0 when --max-connections are already open. */
static int take_slot(struct ws_server *ws) {
    long n = __atomic_load_n(&ws->active, __ATOMIC_RELAXED);
    do {
        if (n >= ws->set.max_connections) return 0;
    } while (!__atomic_compare_exchange_n(&ws->active, &n, n + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return 1;
}

static void release_slot(struct ws_server *ws) { __atomic_sub_fetch(&ws->active, 1, __ATOMIC_ACQ_REL); }

/* Counts one more WebSocket from `ip`; 0 when it already has --max-per-ip of them. */
static int take_ip_slot(struct ws_server *ws, const char *ip) {
    pthread_mutex_lock(&ws->ip_lock);
    intptr_t n = (intptr_t)dict_remove(ws->per_ip, ip);
    int ok = n < ws->set.max_per_ip;
    if (ok) n++;
    if (n && dict_add(ws->per_ip, ip, (void *)n) < 0) ok = 0;
    pthread_mutex_unlock(&ws->ip_lock);
    return ok;
}

static void release_ip_slot(struct ws_server *ws, const char *ip) {
    pthread_mutex_lock(&ws->ip_lock);
    intptr_t n = (intptr_t)dict_remove(ws->per_ip, ip) - 1;
    if (n > 0) dict_add(ws->per_ip, ip, (void *)n);
    pthread_mutex_unlock(&ws->ip_lock);
}

/* Logs and counts a refusal; the path is redacted, as any that may carry a token. */
static void log_refusal(const struct front_request *rq, enum reject_reason why, int status, const char *detail) {
    char uri[256];
    metrics_reject(why);
    log_info("ws refused %s %s %d (%s)", rq->ip, redact_secrets(rq->head->path, uri, sizeof uri), status, detail);
}

/* Answers a refused handshake with `headers` ("" or lines) and closes it; returns the status. */
static int refuse_with(const struct front_request *rq, enum reject_reason why, int status, const char *headers,
                       const char *detail) {
    log_refusal(rq, why, status, detail);
    front_refuse(rq->loop, rq->fd, status, headers, detail);
    return status;
}

static int refuse(const struct front_request *rq, enum reject_reason why, int status, const char *detail) {
    return refuse_with(rq, why, status, "", detail);
}

/* The token of a router connection (auth.h): 0 and *out set (NULL when there is nothing to prove:
 * no key, or echo-protocol, which routes nothing), else the status of the refusal it answered. */
static int check_token(struct ws_server *ws, const struct front_request *rq, int echo, struct auth_conn **out) {
    enum jwt_error why;
    *out = NULL;
    if (echo) return 0;
    enum auth_result r = auth_handshake(ws->set.verifier, rq->head->query, head_field(rq->head, "Authorization"), out, &why);
    if (r == AUTH_NO_MEMORY) return refuse(rq, REJECT_CAPACITY, 503, "out of memory");
    if (r != AUTH_REFUSED) return 0;
    return refuse_with(rq, REJECT_TOKEN, 401, "WWW-Authenticate: Bearer\r\n", jwt_error_text(why));
}

/* The ?user= name: 1 and out filled (or "" when absent), 0 when it is not a usable name. */
static int query_user(const struct head *h, char *out, size_t cap) {
    out[0] = '\0';
    if (!h->query) return 1;
    int n = query_param(h->query, "user", out, cap);
    if (n == QUERY_ABSENT) return 1;
    return n > 0 && name_claimable(out);
}

/* The subprotocol accepted for this request: the first offered of "json" and "echo-protocol" (a client
 * may send several Sec-WebSocket-Protocol headers), or NULL for none. */
static const char *pick_protocol(const struct head *h) {
    static const char *const known[] = {"json", WS_SUBPROTOCOL_ECHO};
    const char *offers[WS_PROTOCOL_HEADERS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < h->nfields && n < WS_PROTOCOL_HEADERS_MAX; i++)
        if (strcasecmp(h->fields[i].name, "Sec-WebSocket-Protocol") == 0) offers[n++] = h->fields[i].value;
    return upgrade_pick_protocol(offers, n, known, sizeof known / sizeof *known);
}

/* What a handshake that passed its checks carries into its session. */
struct handshake {
    const char *key;
    const char *protocol;     /* accepted subprotocol, NULL for none */
    int echo;
    char user[SB_NAME_MAX + 1]; /* from ?user=, "" if none */
    int positions;            /* ?v=2 (since.h) */
    struct hub_since since;   /* ?since_user=, ?since_broadcast= */
    struct auth_conn *auth;   /* the token (auth.h), NULL without a key or in echo mode */
    int per_ip;               /* holds a --max-per-ip slot */
};

/* Every check of an upgrade request, in the order a client learns of them; each refusal is a real HTTP
 * response. 0 when the handshake may proceed, with hs filled and the slots taken; else the status. */
static int check_handshake(struct ws_server *ws, const struct front_request *rq, struct handshake *hs) {
    const struct head *h = rq->head;
    hs->key = head_field(h, "Sec-WebSocket-Key");
    if (strcmp(h->method, "GET") != 0) return refuse(rq, REJECT_BAD_REQUEST, 400, "a WebSocket upgrade is a GET request");
    if (!upgrade_key_valid(hs->key))
        return refuse(rq, REJECT_BAD_REQUEST, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
    if (!upgrade_version_ok(head_field(h, "Sec-WebSocket-Version")))
        return refuse_with(rq, REJECT_BAD_REQUEST, 426, "Sec-WebSocket-Version: 13\r\n", "only WebSocket version 13");
    if (__atomic_load_n(&ws->stopping, __ATOMIC_ACQUIRE)) return refuse(rq, REJECT_SHUTDOWN, 503, "server shutting down");
    if (!origin_host_allowed(head_field(h, "Host"), ws->set.hosts, ws->set.nhosts))
        return refuse(rq, REJECT_HOST, 421, "this server does not answer for that host name");
    if (!origin_allowed(head_field(h, "Origin"), head_field(h, "Host"), ws->set.origins, ws->set.norigins))
        return refuse(rq, REJECT_ORIGIN, 403, "origin not allowed");
    if (!query_user(h, hs->user, sizeof hs->user))
        return refuse(rq, REJECT_BAD_USER, 400, "user must be 1-64 of A-Z a-z 0-9 _ . - and not start with conn-");
    const char *why;
    if (since_query(h->query, &hs->positions, &hs->since, &why) < 0) return refuse(rq, REJECT_BAD_REQUEST, 400, why);
    hs->protocol = pick_protocol(h);
    hs->echo = hs->protocol && strcmp(hs->protocol, WS_SUBPROTOCOL_ECHO) == 0;
    int status = check_token(ws, rq, hs->echo, &hs->auth);
    if (status) return status;
    hs->per_ip = ws->set.max_per_ip > 0;
    if (hs->per_ip && !take_ip_slot(ws, rq->ip)) {
        auth_conn_free(hs->auth);
        return refuse(rq, REJECT_PER_IP, 429, "too many connections from this address");
    }
    if (!take_slot(ws)) {
        auth_conn_free(hs->auth);
        if (hs->per_ip) release_ip_slot(ws, rq->ip);
        return refuse(rq, REJECT_CAPACITY, 503, "too many connections");
    }
    return 0;
}

/* Writes the 101 on the session's fresh socket: it is a few hundred bytes into an empty send buffer,
 * so one non-blocking send takes all of it unless the peer is already gone. 0 on success. */
static int send_upgrade(struct session *s, const struct handshake *hs) {
    char head[UPGRADE_RESPONSE_MAX];
    size_t n = upgrade_response(head, hs->key, hs->protocol);
    if (!n) return -1; /* cannot happen with the server's own short subprotocol names */
    ssize_t put;
    do put = send(s->fd, head, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (put < 0 && errno == EINTR);
    return put == (ssize_t)n ? 0 : -1;
}

/* Token bucket of --rate-limit messages per second, burst the same. 1 = may proceed. */
static int rate_ok(struct session *s) {
    long rate = s->ws->set.rate_limit;
    if (rate <= 0) return 1;
    int64_t now = hub_now_ms();
    s->tokens += (double)(now - s->tokens_at_ms) * (double)rate / 1000.0;
    if (s->tokens > (double)rate) s->tokens = (double)rate;
    s->tokens_at_ms = now;
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        s->strikes = 0;
        return 1;
    }
    s->strikes++;
    return 0;
}

/* A whole message: echoed, or routed. */
static void on_message(struct session *s, const struct asm_event *ev) {
    struct ws_server *ws = s->ws;
    metrics_add(M_MESSAGES_IN, 1);
    metrics_add(M_BYTES_IN, ev->len);
    if (s->conn.echo) {
        struct frame *f = frame_new(ev->opcode, ev->data, ev->len);
        if (f) hub_reply(ws->hub, &s->conn, f);
        frame_unref(f);
        return;
    }
    if (!rate_ok(s)) {
        if (s->strikes >= WS_RATE_STRIKES) {
            metrics_add(M_RATE_LIMIT_CLOSES, 1);
            outbox_close(ws->ob, &s->conn.out, WS_CLOSE_POLICY, "rate limit exceeded");
            return;
        }
        router_refuse(ws->hub, &s->conn, (const char *)ev->data, ev->opcode == WS_OP_TEXT ? ev->len : 0,
                      ERR_RATE_LIMITED, "more than --rate-limit messages per second");
        return;
    }
    if (ev->opcode == WS_OP_BINARY)
        router_error(ws->hub, &s->conn, ERR_BAD_REQUEST, "binary messages are not supported; send JSON text", NULL);
    else router_handle(ws->hub, &s->conn, (const char *)ev->data, ev->len);
}

/* loop_handler.frame: one frame from the client. After our close only the peer's answer matters; a
 * violation starts our close and keeps reading for that answer. */
static int on_frame(void *ctx, uint8_t bits, uint8_t *data, size_t len) {
    struct session *s = ctx;
    struct outq *q = &s->conn.out;
    struct asm_event ev;
    __atomic_store_n(&s->conn.last_rx_ms, hub_now_ms(), __ATOMIC_RELAXED);
    assembler_feed(&s->in, bits, data, len, &ev);
    if (outq_closing(q)) {
        if (ev.kind != ASM_CLOSE && ev.kind != ASM_FAIL) return 1;
        outbox_peer_closed(s->ws->ob, q, 0, NULL);
        return 0;
    }
    switch (ev.kind) {
    case ASM_MORE:
    case ASM_PONG:
        return 1;
    case ASM_PING: {
        struct frame *pong = frame_new(WS_OP_PONG, ev.data, ev.len);
        if (pong) outbox_push(s->ws->ob, q, pong);
        frame_unref(pong);
        return 1;
    }
    case ASM_CLOSE:
        s->peer_close = ev.close_code;
        outbox_peer_closed(s->ws->ob, q, ev.close_code, NULL);
        return 0;
    case ASM_FAIL:
        log_debug("ws %s protocol error: %s (close %u)", s->conn.id, ev.reason, ev.close_code);
        if ((bits & 0x0F) == WS_OP_CLOSE) { /* the peer has closed, badly: answer and end */
            outbox_peer_closed(s->ws->ob, q, ev.close_code, ev.reason);
            return 0;
        }
        outbox_close(s->ws->ob, q, ev.close_code, ev.reason);
        return 1;
    case ASM_MESSAGE:
        on_message(s, &ev);
        assembler_trim(&s->in);
        return 1;
    }
    return 1;
}

/* loop_handler.violation: no frame can be found in what follows, so no answer to our close either:
 * the connection ends once our close is written. */
static void on_violation(void *ctx, uint16_t code, const char *reason) {
    struct session *s = ctx;
    log_debug("ws %s protocol error: %s (close %u)", s->conn.id, reason, code);
    outbox_peer_closed(s->ws->ob, &s->conn.out, code, reason);
}

static int on_flush(void *ctx) {
    struct session *s = ctx;
    return outbox_flush(s->ws->ob, &s->conn.out);
}

/* The session's client address as text, in out (INET6_ADDRSTRLEN bytes): the same text as the
 * front_request's ip its --max-per-ip slot was taken with. */
static const char *remote_ip(const struct session *s, char *out) {
    if (!inet_ntop(s->remote_v6 ? AF_INET6 : AF_INET, s->remote_addr, out, INET6_ADDRSTRLEN))
        snprintf(out, INET6_ADDRSTRLEN, "?");
    return out;
}

/* Frees a session and gives back its slots. */
static void session_free(struct session *s) {
    struct ws_server *ws = s->ws;
    if (s->inited) {
        outq_destroy(&s->conn.out);
        assembler_free(&s->in);
        auth_conn_free(s->conn.auth);
    }
    if (s->ip_counted) {
        char ip[INET6_ADDRSTRLEN];
        release_ip_slot(ws, remote_ip(s, ip));
    }
    free(s);
    release_slot(ws);
}

/* Takes a handed-over connection out of the server, closes its socket and frees it. */
static void end_session(struct session *s) {
    struct ws_server *ws = s->ws;
    outbox_detach(&s->conn.out);
    if (s->registered) hub_remove(ws->hub, &s->conn);
    unsigned code = s->conn.out.close_code ? s->conn.out.close_code : s->peer_close ? s->peer_close : 1006;
    char ip[INET6_ADDRSTRLEN];
    log_info("ws close %s user=%s remote=%s:%u code=%u", s->conn.id, s->conn.user, remote_ip(s, ip),
             (unsigned)s->remote_port, code);
    close(s->fd);
    session_free(s);
}

/* loop_handler.ended: the loop is done with the connection, which ends here. */
static void on_ended(void *ctx) { end_session(ctx); }

static const struct loop_handler session_handler = {on_frame, on_violation, on_flush, on_ended};

/* A session for a handshake that passed check_handshake, holding its slots and owning the socket;
 * NULL (slots given back) when out of memory. */
static struct session *session_new(struct ws_server *ws, const struct front_request *rq, const struct handshake *hs) {
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        if (hs->per_ip) release_ip_slot(ws, rq->ip);
        release_slot(ws);
        return NULL;
    }
    s->ws = ws;
    s->fd = rq->fd;
    s->ip_counted = hs->per_ip;
    s->remote_port = (uint16_t)rq->port;
    s->remote_v6 = rq->peer->sa_family == AF_INET6;
    if (s->remote_v6) memcpy(s->remote_addr, &((const struct sockaddr_in6 *)rq->peer)->sin6_addr, 16);
    else memcpy(s->remote_addr, &((const struct sockaddr_in *)rq->peer)->sin_addr, 4);
    return s;
}

/* Registers the upgraded session with the hub (welcome, presence) and hands it to the loop that read
 * its head, with whatever the client sent after the head; the session belongs to the loop from then on.
 * Takes hs->auth. */
static void session_start(struct session *s, struct handshake *hs, const struct front_request *rq) {
    struct ws_server *ws = s->ws;
    assembler_init(&s->in, (size_t)ws->set.max_message);
    s->tokens = (double)ws->set.rate_limit;
    s->tokens_at_ms = hub_now_ms();
    hub_conn_init(ws->hub, &s->conn, hs->user[0] ? hs->user : NULL, hs->echo, s, (size_t)ws->set.outbox);
    if (hs->auth) { /* the token names the user; ?user= does not count */
        const char *user = auth_attach(&s->conn, hs->auth);
        snprintf(s->conn.user, sizeof s->conn.user, "%s", user ? user : s->conn.id);
        s->conn.named = user != NULL;
    }
    s->conn.positions = hs->positions;
    s->conn.since = hs->since;
    s->inited = 1;
    enum hub_status st = hub_add(ws->hub, &s->conn);
    s->registered = st == HUB_OK || st == HUB_USER_FULL; /* the hub closes the latter itself */
    if (st == HUB_SHUTTING_DOWN) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "server shutting down");
    else if (!s->registered) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "out of memory");
    log_info("ws open %s user=%s remote=%s:%u protocol=%s", s->conn.id, s->conn.user, rq->ip,
             (unsigned)s->remote_port, hs->echo ? WS_SUBPROTOCOL_ECHO : "json");
    loop_adopt_here(rq->loop, &s->lc, s->fd, &session_handler, s, (uint64_t)ws->set.max_message,
                    rq->bytes + rq->head_len, rq->len - rq->head_len);
}

/* An accepted handshake: writes the 101 and starts the session. Returns 101, or the status of the
 * refusal it answered. */
static int open_session(struct ws_server *ws, const struct front_request *rq, struct handshake *hs) {
    struct session *s = session_new(ws, rq, hs);
    if (!s) {
        auth_conn_free(hs->auth);
        return refuse(rq, REJECT_CAPACITY, 503, "out of memory");
    }
    if (send_upgrade(s, hs) < 0) {
        log_debug("ws %s:%u: left during the handshake", rq->ip, (unsigned)s->remote_port);
        close(s->fd);
        session_free(s);
        auth_conn_free(hs->auth);
        return 101;
    }
    session_start(s, hs, rq);
    return 101;
}

int ws_upgrade(struct ws_server *ws, const struct front_request *rq) {
    const struct head *h = rq->head;
    if (strcmp(h->path, "/ws") != 0 && strcmp(h->path, "/") != 0) return 0;
    if (!upgrade_requested(head_field(h, "Connection"), head_field(h, "Upgrade"))) return 0;
    struct handshake hs = {0};
    int status = check_handshake(ws, rq, &hs);
    return status ? status : open_session(ws, rq, &hs);
}

/* ws: CivetWeb's WebSocket callbacks (see ws.h).
 *
 * Connections without threads. CivetWeb 1.15 serves a WebSocket on the worker thread that did its
 * handshake until the connection ends; switchboard's event loops (loop.h) carry the connection instead,
 * so the worker must go back to its pool as soon as the ready handler returns, without CivetWeb ever
 * touching the connection again. The ready handler takes the socket (sockfind_take): the TCP
 * connection gets a second descriptor, owned by the session, and CivetWeb's number is atomically
 * turned into a socket that reads EOF (ws->eof_fd, one end of a socketpair whose other end is
 * closed). CivetWeb's read loop then sees the end at once, calls the close handler, and closes the
 * dummy; its writes and shutdowns on that path (if any) go to the dummy too.
 *
 * Invariants:
 * - Before the take, CivetWeb owns the session: on_close (or ws_connection_closed, when CivetWeb gives
 *   up an upgrade without calling either handler) frees it, found through worker_session.
 * - After a successful take, worker_session is cleared: CivetWeb's close handler, which runs at once
 *   on the worker, sees no session and frees nothing. The session, its socket (closed through
 *   sockfind_close), its --max-connections and --max-per-ip slots belong to the loop, and on_ended frees
 *   them all, on the loop's thread, after the session left the hub and its outbox let go.
 * - No code of this file touches a session after handing it to loops_adopt, except through the loop's
 *   callbacks: the loop may end and free it before on_ready returns.
 * - Only if loops_adopt refuses (the loops have stopped: shutdown) does on_ready end the session
 *   itself, the same way on_ended would.
 * No thread waits for a connection, so the process's thread count does not depend on how many are
 * open: CivetWeb's pool is --http-threads, the loops --threads. */
#include "ws.h"

#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "assembler.h"
#include "auth.h"
#include "dict.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "names.h"
#include "origin.h"
#include "redact.h"
#include "router.h"
#include "sockfind.h"

#define WS_RATE_STRIKES 20      /* rate_limited replies in a row before the connection is closed */
#define WS_SUBPROTOCOL_ECHO "echo-protocol"

/* One WebSocket connection. Allocated by the connect handler on the connection's CivetWeb worker; freed
 * by its loop's `ended` callback once the ready handler handed it over, or by CivetWeb's close handler
 * if it never was (see the invariants above). `conn` is what the rest of the server sees. */
struct session {
    struct conn conn;
    struct loop_conn lc;      /* the socket's reading, once a loop has it */
    struct ws_server *ws;
    int fd;                   /* the TCP connection, taken from CivetWeb in the ready handler; -1 before */
    char user[SB_NAME_MAX + 1]; /* from ?user=, "" if none */
    struct auth_conn *auth;   /* the handshake's token (auth.h), until conn owns it; NULL without a key */
    unsigned echo : 1;
    unsigned inited : 1;      /* conn and the assembler are set up */
    unsigned registered : 1;  /* in the hub */
    unsigned ip_counted : 1;  /* holds a --max-per-ip slot for remote_ip */
    uint16_t remote_port;
    char remote_ip[48];       /* mg_request_info.remote_addr */
    struct assembler in;      /* the loop's thread only */
    double tokens;            /* rate limiter: the loop's thread only */
    int64_t tokens_at_ms;
    unsigned strikes;
    unsigned peer_close;      /* the code the peer closed with, 0 = none */
};

struct ws_server {
    struct hub *hub;
    struct outbox *ob;
    struct loops *loops;
    struct sockfind *socks;
    int eof_fd;     /* what CivetWeb's descriptor of a taken connection becomes (sockfind_take) */
    struct ws_settings set;
    long active;    /* atomic: handshakes accepted and not yet closed, for --max-connections */
    int stopping;   /* atomic */
    pthread_mutex_t ip_lock; /* guards per_ip */
    struct dict *per_ip;     /* client address -> WebSockets open from it (as intptr_t), for --max-per-ip */
};

/* The session of the connection this worker thread serves: CivetWeb runs all four callbacks of a
 * connection on its one worker, and a worker serves one connection at a time. Set by the connect
 * handler, cleared when the ready handler hands the session to a loop or by the close handler. */
static __thread struct session *worker_session;

/* Never blocks: the socket takes what fits (CivetWeb made it non-blocking). */
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

struct ws_server *ws_new(struct hub *h, struct outbox *ob, struct loops *loops, const struct ws_settings *set) {
    struct ws_server *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->per_ip = dict_new();
    ws->socks = sockfind_new();
    ws->eof_fd = sockfind_eof_socket();
    if (!ws->per_ip || !ws->socks || ws->eof_fd < 0) {
        dict_free(ws->per_ip);
        sockfind_free(ws->socks);
        if (ws->eof_fd >= 0) close(ws->eof_fd);
        free(ws);
        return NULL;
    }
    pthread_mutex_init(&ws->ip_lock, NULL);
    ws->hub = h;
    ws->ob = ob;
    ws->loops = loops;
    ws->set = *set;
    return ws;
}

void ws_free(struct ws_server *ws) {
    if (!ws) return;
    dict_free(ws->per_ip);
    sockfind_free(ws->socks);
    close(ws->eof_fd);
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

/* Logs and counts a refusal; the URI is redacted, as any that may carry a token. */
static void log_refusal(struct mg_connection *mg, enum reject_reason why, int status, const char *detail) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    char uri[256];
    metrics_reject(why);
    log_info("ws refused %s %s %d (%s)", ri->remote_addr, redact_secrets(ri->local_uri, uri, sizeof uri), status,
             detail);
}

static int refuse(struct mg_connection *mg, enum reject_reason why, int status, const char *detail) {
    log_refusal(mg, why, status, detail);
    http_reply_text(mg, status, detail);
    return 1;
}

/* The token of a router connection (auth.h): 0 after a 401 for a bad one, else 1 with *out set
 * (NULL when there is nothing to prove: no key, or echo-protocol, which routes nothing). */
static int check_token(struct ws_server *ws, struct mg_connection *mg, struct auth_conn **out) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    const char *proto = ri->acceptedWebSocketSubprotocol;
    enum jwt_error why;
    *out = NULL;
    if (proto && strcmp(proto, WS_SUBPROTOCOL_ECHO) == 0) return 1;
    enum auth_result r = auth_handshake(ws->set.verifier, ri->query_string, mg_get_header(mg, "Authorization"), out, &why);
    if (r == AUTH_NO_MEMORY) {
        refuse(mg, REJECT_CAPACITY, 503, "out of memory");
        return 0;
    }
    if (r != AUTH_REFUSED) return 1;
    log_refusal(mg, REJECT_TOKEN, 401, jwt_error_text(why));
    http_reply_text_headers(mg, 401, "WWW-Authenticate: Bearer\r\n", jwt_error_text(why));
    return 0;
}

/* The ?user= name: 1 and out filled (or "" when absent), 0 when it is not a usable name. */
static int query_user(const struct mg_request_info *ri, char *out, size_t cap) {
    out[0] = '\0';
    if (!ri->query_string) return 1;
    int n = query_param(ri->query_string, "user", out, cap);
    if (n == QUERY_ABSENT) return 1;
    return n > 0 && name_claimable(out);
}

/* RFC 6455 4.2.1: the key is 16 random bytes in base64, 24 characters ending in "==". CivetWeb
 * 1.15 fails the upgrade without calling the ready or close handler when a key is 64 characters or
 * longer, after the connect handler has accepted it, so anything else is refused here first. */
static int key_valid(const char *key) {
    if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0) return 0;
    for (int i = 0; i < 22; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '+' && key[i] != '/') return 0;
    return 1;
}

/* CivetWeb 1.15 keeps the subprotocol a worker accepted for an earlier connection (#1091) and
 * would send it to a client that offered none; such a client (a browser) then fails the handshake. */
static void clear_stale_subprotocol(const struct mg_connection *mg) {
    if (!mg_get_header(mg, "Sec-WebSocket-Protocol"))
        ((struct mg_request_info *)mg_get_request_info(mg))->acceptedWebSocketSubprotocol = NULL;
}

static int on_connect(const struct mg_connection *cmg, void *cbdata) {
    struct ws_server *ws = cbdata;
    struct mg_connection *mg = (struct mg_connection *)cmg; /* CivetWeb documents writing a refusal here */
    const struct mg_request_info *ri = mg_get_request_info(mg);
    char user[SB_NAME_MAX + 1];
    worker_session = NULL;
    if (__atomic_load_n(&ws->stopping, __ATOMIC_ACQUIRE))
        return refuse(mg, REJECT_SHUTDOWN, 503, "server shutting down");
    if (!origin_allowed(mg_get_header(mg, "Origin"), mg_get_header(mg, "Host"), ws->set.origins, ws->set.norigins))
        return refuse(mg, REJECT_ORIGIN, 403, "origin not allowed");
    if (!key_valid(mg_get_header(mg, "Sec-WebSocket-Key")))
        return refuse(mg, REJECT_BAD_REQUEST, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
    if (!query_user(ri, user, sizeof user))
        return refuse(mg, REJECT_BAD_USER, 400, "user must be 1-64 of A-Z a-z 0-9 _ . - and not start with conn-");
    clear_stale_subprotocol(mg);
    struct auth_conn *auth;
    if (!check_token(ws, mg, &auth)) return 1;
    int per_ip = ws->set.max_per_ip > 0;
    if (per_ip && !take_ip_slot(ws, ri->remote_addr)) {
        auth_conn_free(auth);
        return refuse(mg, REJECT_PER_IP, 429, "too many connections from this address");
    }
    if (!take_slot(ws)) {
        auth_conn_free(auth);
        if (per_ip) release_ip_slot(ws, ri->remote_addr);
        return refuse(mg, REJECT_CAPACITY, 503, "too many connections");
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        auth_conn_free(auth);
        if (per_ip) release_ip_slot(ws, ri->remote_addr);
        release_slot(ws);
        return refuse(mg, REJECT_CAPACITY, 503, "out of memory");
    }
    s->auth = auth;
    s->ip_counted = per_ip;
    s->fd = -1;
    snprintf(s->remote_ip, sizeof s->remote_ip, "%s", ri->remote_addr);
    const char *proto = ri->acceptedWebSocketSubprotocol;
    s->ws = ws;
    s->echo = proto && strcmp(proto, WS_SUBPROTOCOL_ECHO) == 0;
    snprintf(s->user, sizeof s->user, "%s", user);
    s->remote_port = (uint16_t)ri->remote_port;
    worker_session = s;
    return 0;
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
    if (s->echo) {
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

/* Frees a session and gives back its slots. */
static void session_free(struct session *s) {
    struct ws_server *ws = s->ws;
    if (s->inited) {
        outq_destroy(&s->conn.out);
        assembler_free(&s->in);
        auth_conn_free(s->conn.auth);
    }
    auth_conn_free(s->auth);
    if (s->ip_counted) release_ip_slot(ws, s->remote_ip);
    free(s);
    release_slot(ws);
}

/* Takes a handed-over connection out of the server, closes its socket and frees it. */
static void end_session(struct session *s) {
    struct ws_server *ws = s->ws;
    outbox_detach(&s->conn.out);
    if (s->registered) hub_remove(ws->hub, &s->conn);
    unsigned code = s->conn.out.close_code ? s->conn.out.close_code : s->peer_close ? s->peer_close : 1006;
    log_info("ws close %s user=%s remote=%s:%u code=%u", s->conn.id, s->conn.user, s->remote_ip,
             (unsigned)s->remote_port, code);
    sockfind_close(ws->socks, s->fd);
    session_free(s);
}

/* loop_handler.ended: the loop is done with the connection, which ends here. */
static void on_ended(void *ctx) { end_session(ctx); }

static const struct loop_handler session_handler = {on_frame, on_violation, on_flush, on_ended};

/* Takes the connection from CivetWeb (see the top of this file), registers it (welcome, presence) and
 * hands it to a loop. The worker returns to CivetWeb's pool as soon as this returns. */
static void on_ready(struct mg_connection *mg, void *cbdata) {
    struct ws_server *ws = cbdata;
    struct session *s = worker_session;
    const struct mg_request_info *ri = mg_get_request_info(mg);
    s->fd = sockfind_take(ws->socks, ri->remote_addr, ri->remote_port, ri->server_port, ws->eof_fd);
    if (s->fd < 0) {
        log_error("ws %s:%u: cannot take the connection's socket: %s", s->remote_ip, (unsigned)s->remote_port,
                  errno == EMFILE ? "no descriptor left" : "not found");
        mg_websocket_write(mg, WS_OP_CLOSE, "\x03\xf3", 2); /* 1011: CivetWeb ends it on the answer */
        return;
    }
    worker_session = NULL; /* the session is the loop's now: CivetWeb's close handler must not free it */
    assembler_init(&s->in, (size_t)ws->set.max_message);
    s->tokens = (double)ws->set.rate_limit;
    s->tokens_at_ms = hub_now_ms();
    hub_conn_init(ws->hub, &s->conn, s->user[0] ? s->user : NULL, s->echo, s, (size_t)ws->set.outbox);
    if (s->auth) { /* the token names the user; ?user= does not count */
        const char *user = auth_attach(&s->conn, s->auth);
        s->auth = NULL;
        snprintf(s->conn.user, sizeof s->conn.user, "%s", user ? user : s->conn.id);
        s->conn.named = user != NULL;
    }
    s->inited = 1;
    enum hub_status st = hub_add(ws->hub, &s->conn);
    s->registered = st == HUB_OK || st == HUB_USER_FULL; /* the hub closes the latter itself */
    if (st == HUB_SHUTTING_DOWN) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "server shutting down");
    else if (!s->registered) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "out of memory");
    log_info("ws open %s user=%s remote=%s:%u protocol=%s", s->conn.id, s->conn.user, s->remote_ip,
             (unsigned)s->remote_port, s->echo ? WS_SUBPROTOCOL_ECHO : "json");
    if (loops_adopt(ws->loops, &s->lc, s->fd, &session_handler, s, (uint64_t)ws->set.max_message) < 0)
        end_session(s); /* the loops are stopping: only a shutdown gets here */
}

/* CivetWeb reads a connection only when on_ready could not take it (or, after a take, the dummy's EOF,
 * which ends the read loop before any frame): whatever comes ends the connection. */
static int on_data(struct mg_connection *mg, int bits, char *data, size_t len, void *cbdata) { return 0; }

/* Frees the session if CivetWeb still owns it, that is on_ready did not hand it to a loop. */
static void on_close(const struct mg_connection *mg, void *cbdata) {
    struct session *s = worker_session;
    worker_session = NULL;
    if (s) session_free(s);
}

/* Frees the session of an upgrade that failed after on_connect accepted it, if CivetWeb found a
 * reason to give up that key_valid did not foresee: it then calls neither on_ready nor on_close. */
void ws_connection_closed(void) {
    struct session *s = worker_session;
    worker_session = NULL;
    if (s) session_free(s);
}

void ws_register(struct ws_server *ws, struct mg_context *ctx) {
    static const char *protocols[] = {"json", WS_SUBPROTOCOL_ECHO};
    static struct mg_websocket_subprotocols list = {2, protocols};
    mg_set_websocket_handler_with_subprotocols(ctx, "/ws$", &list, on_connect, on_ready, on_data, on_close, ws);
    mg_set_websocket_handler_with_subprotocols(ctx, "/$", &list, on_connect, on_ready, on_data, on_close, ws);
}

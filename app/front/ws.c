/* ws: the WebSocket endpoints (see ws.h).
 *
 * Connections without threads. CivetWeb 1.15 would serve a WebSocket on the worker thread that did
 * its handshake until the connection ends; switchboard's event loops (loop.h) carry the connection
 * instead, and the worker goes back to its pool as soon as the handshake is answered. The upgrade is
 * answered from CivetWeb's begin_request callback, before CivetWeb's own WebSocket handling: ws_upgrade
 * checks the request, takes the socket (sockfind_take: the TCP connection gets a second descriptor,
 * owned by the session, and CivetWeb's number is atomically turned into a socket that reads EOF,
 * ws->eof_fd, one end of a socketpair whose other end is closed), writes the 101 on it and hands it to
 * a loop, then tells CivetWeb the request is done. CivetWeb then closes the dummy; whatever it reads,
 * writes or shuts down on that path goes to the dummy.
 *
 * Invariants:
 * - A session exists only from ws_upgrade's slot checks on. Until loops_adopt, ws_upgrade owns it and
 *   every failure frees it there (session_free), closing the socket if it was taken.
 * - After loops_adopt the session, its socket (closed through sockfind_close), its --max-connections
 *   and --max-per-ip slots belong to the loop, and on_ended frees them all, on the loop's thread,
 *   after the session left the hub and its outbox let go. No code of this file touches a session
 *   after handing it to loops_adopt, except through the loop's callbacks: the loop may end and free it
 *   before ws_upgrade returns.
 * - Only if loops_adopt refuses (the loops have stopped: shutdown) does ws_upgrade end the session
 *   itself, the same way on_ended would.
 * No thread waits for a connection, so the process's thread count does not depend on how many are
 * open: CivetWeb's pool is --http-threads, the loops --threads. */
#include "ws.h"

#include <civetweb.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "since.h"
#include "sockfind.h"
#include "upgrade.h"

#define WS_RATE_STRIKES 20      /* rate_limited replies in a row before the connection is closed */
#define WS_SUBPROTOCOL_ECHO "echo-protocol"
#define WS_PROTOCOL_HEADERS_MAX 8 /* Sec-WebSocket-Protocol headers of one request looked at */

/* One WebSocket connection. Allocated by ws_upgrade on the CivetWeb worker that answers the handshake;
 * freed by its loop's `ended` callback once it was handed over, or by ws_upgrade if it never was (see
 * the invariants above). `conn` is what the rest of the server sees. */
struct session {
    struct conn conn;
    struct loop_conn lc;      /* the socket's reading, once a loop has it */
    struct ws_server *ws;
    int fd;                   /* the TCP connection, taken from CivetWeb by ws_upgrade; -1 before */
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

/* Answers a refused handshake; returns the status, for CivetWeb's end_request and log. */
static int refuse(struct mg_connection *mg, enum reject_reason why, int status, const char *detail) {
    log_refusal(mg, why, status, detail);
    http_reply_text(mg, status, detail);
    return status;
}

/* The token of a router connection (auth.h): 0 and *out set (NULL when there is nothing to prove:
 * no key, or echo-protocol, which routes nothing), else the status of the refusal it answered. */
static int check_token(struct ws_server *ws, struct mg_connection *mg, int echo, struct auth_conn **out) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    enum jwt_error why;
    *out = NULL;
    if (echo) return 0;
    enum auth_result r = auth_handshake(ws->set.verifier, ri->query_string, mg_get_header(mg, "Authorization"), out, &why);
    if (r == AUTH_NO_MEMORY) return refuse(mg, REJECT_CAPACITY, 503, "out of memory");
    if (r != AUTH_REFUSED) return 0;
    log_refusal(mg, REJECT_TOKEN, 401, jwt_error_text(why));
    http_reply_text_headers(mg, 401, "WWW-Authenticate: Bearer\r\n", jwt_error_text(why));
    return 401;
}

/* The ?user= name: 1 and out filled (or "" when absent), 0 when it is not a usable name. */
static int query_user(const struct mg_request_info *ri, char *out, size_t cap) {
    out[0] = '\0';
    if (!ri->query_string) return 1;
    int n = query_param(ri->query_string, "user", out, cap);
    if (n == QUERY_ABSENT) return 1;
    return n > 0 && name_claimable(out);
}

/* The subprotocol accepted for this request: the first offered of "json" and "echo-protocol" (a client
 * may send several Sec-WebSocket-Protocol headers), or NULL for none. */
static const char *pick_protocol(const struct mg_request_info *ri) {
    static const char *const known[] = {"json", WS_SUBPROTOCOL_ECHO};
    const char *offers[WS_PROTOCOL_HEADERS_MAX];
    size_t n = 0;
    for (int i = 0; i < ri->num_headers && n < WS_PROTOCOL_HEADERS_MAX; i++)
        if (strcasecmp(ri->http_headers[i].name, "Sec-WebSocket-Protocol") == 0) offers[n++] = ri->http_headers[i].value;
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
static int check_handshake(struct ws_server *ws, struct mg_connection *mg, struct handshake *hs) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    hs->key = mg_get_header(mg, "Sec-WebSocket-Key");
    if (strcmp(ri->request_method, "GET") != 0)
        return refuse(mg, REJECT_BAD_REQUEST, 400, "a WebSocket upgrade is a GET request");
    if (!upgrade_key_valid(hs->key))
        return refuse(mg, REJECT_BAD_REQUEST, 400, "Sec-WebSocket-Key must be 16 bytes in base64");
    if (!upgrade_version_ok(mg_get_header(mg, "Sec-WebSocket-Version"))) {
        log_refusal(mg, REJECT_BAD_REQUEST, 426, "only WebSocket version 13");
        http_reply_text_headers(mg, 426, "Sec-WebSocket-Version: 13\r\n", "only WebSocket version 13");
        return 426;
    }
    if (__atomic_load_n(&ws->stopping, __ATOMIC_ACQUIRE)) return refuse(mg, REJECT_SHUTDOWN, 503, "server shutting down");
    if (!origin_host_allowed(mg_get_header(mg, "Host"), ws->set.hosts, ws->set.nhosts))
        return refuse(mg, REJECT_HOST, 421, "this server does not answer for that host name");
    if (!origin_allowed(mg_get_header(mg, "Origin"), mg_get_header(mg, "Host"), ws->set.origins, ws->set.norigins))
        return refuse(mg, REJECT_ORIGIN, 403, "origin not allowed");
    if (!query_user(ri, hs->user, sizeof hs->user))
        return refuse(mg, REJECT_BAD_USER, 400, "user must be 1-64 of A-Z a-z 0-9 _ . - and not start with conn-");
    const char *why;
    if (since_query(ri->query_string, &hs->positions, &hs->since, &why) < 0) return refuse(mg, REJECT_BAD_REQUEST, 400, why);
    hs->protocol = pick_protocol(ri);
    hs->echo = hs->protocol && strcmp(hs->protocol, WS_SUBPROTOCOL_ECHO) == 0;
    int status = check_token(ws, mg, hs->echo, &hs->auth);
    if (status) return status;
    hs->per_ip = ws->set.max_per_ip > 0;
    if (hs->per_ip && !take_ip_slot(ws, ri->remote_addr)) {
        auth_conn_free(hs->auth);
        return refuse(mg, REJECT_PER_IP, 429, "too many connections from this address");
    }
    if (!take_slot(ws)) {
        auth_conn_free(hs->auth);
        if (hs->per_ip) release_ip_slot(ws, ri->remote_addr);
        return refuse(mg, REJECT_CAPACITY, 503, "too many connections");
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

/* Frees a session and gives back its slots. */
static void session_free(struct session *s) {
    struct ws_server *ws = s->ws;
    if (s->inited) {
        outq_destroy(&s->conn.out);
        assembler_free(&s->in);
        auth_conn_free(s->conn.auth);
    }
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

/* A session for a handshake that passed check_handshake, holding its slots; NULL (slots given back)
 * when out of memory. */
static struct session *session_new(struct ws_server *ws, const struct mg_request_info *ri, const struct handshake *hs) {
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        if (hs->per_ip) release_ip_slot(ws, ri->remote_addr);
        release_slot(ws);
        return NULL;
    }
    s->ws = ws;
    s->fd = -1;
    s->ip_counted = hs->per_ip;
    s->remote_port = (uint16_t)ri->remote_port;
    snprintf(s->remote_ip, sizeof s->remote_ip, "%s", ri->remote_addr);
    return s;
}

/* Registers the upgraded session with the hub (welcome, presence) and hands it to a loop; the
 * session belongs to the loop from loops_adopt on. Takes hs->auth. */
static void session_start(struct session *s, struct handshake *hs) {
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
    log_info("ws open %s user=%s remote=%s:%u protocol=%s", s->conn.id, s->conn.user, s->remote_ip,
             (unsigned)s->remote_port, hs->echo ? WS_SUBPROTOCOL_ECHO : "json");
    if (loops_adopt(ws->loops, &s->lc, s->fd, &session_handler, s, (uint64_t)ws->set.max_message) < 0)
        end_session(s); /* the loops are stopping: only a shutdown gets here */
}

/* An accepted handshake: takes the socket from CivetWeb (see the top of this file), writes the 101 and
 * starts the session. Returns the status for CivetWeb's log: 101, or that of the refusal it answered. */
static int open_session(struct ws_server *ws, struct mg_connection *mg, struct handshake *hs) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    struct session *s = session_new(ws, ri, hs);
    if (!s) {
        auth_conn_free(hs->auth);
        return refuse(mg, REJECT_CAPACITY, 503, "out of memory");
    }
    s->fd = sockfind_take(ws->socks, ri->remote_addr, ri->remote_port, ri->server_port, ws->eof_fd);
    if (s->fd < 0) {
        const char *why = errno == EMFILE ? "no descriptor left" : "cannot find the connection's socket";
        log_error("ws %s:%u: %s", s->remote_ip, (unsigned)s->remote_port, why);
        session_free(s);
        auth_conn_free(hs->auth);
        return refuse(mg, REJECT_CAPACITY, 503, why);
    }
    if (send_upgrade(s, hs) < 0) {
        log_debug("ws %s:%u: left during the handshake", s->remote_ip, (unsigned)s->remote_port);
        sockfind_close(ws->socks, s->fd);
        session_free(s);
        auth_conn_free(hs->auth);
        return 101;
    }
    session_start(s, hs);
    return 101;
}

int ws_upgrade(struct ws_server *ws, struct mg_connection *mg) {
    const char *uri = mg_get_request_info(mg)->local_uri;
    if (!uri || (strcmp(uri, "/ws") != 0 && strcmp(uri, "/") != 0)) return 0;
    if (!upgrade_requested(mg_get_header(mg, "Connection"), mg_get_header(mg, "Upgrade"))) return 0;
    struct handshake hs = {0};
    int status = check_handshake(ws, mg, &hs);
    return status ? status : open_session(ws, mg, &hs);
}

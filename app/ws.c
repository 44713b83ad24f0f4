/* ws: CivetWeb's WebSocket callbacks (see ws.h). */
#include "ws.h"

#include <civetweb.h>
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "assembler.h"
#include "dict.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "names.h"
#include "origin.h"
#include "router.h"

#define WS_CLOSE_WAIT_MS 2000   /* how long the worker waits for its answering close to go out */
#define WS_RATE_STRIKES 20      /* rate_limited replies in a row before the connection is closed */
#define WS_SUBPROTOCOL_ECHO "echo-protocol"

/* One WebSocket connection. Allocated by the connect handler, freed by the close handler;
 * `conn` is what the rest of the server sees. */
struct session {
    struct conn conn;
    struct mg_connection *mg; /* the worker's; see ws.h for who may use it */
    struct ws_server *ws;
    char user[SB_NAME_MAX + 1]; /* from ?user=, "" if none */
    int echo;
    int registered;           /* in the hub */
    int ip_counted;           /* holds a --max-per-ip slot for remote_ip */
    char remote_ip[48];
    struct assembler in;      /* worker thread only */
    double tokens;            /* rate limiter: worker thread only */
    int64_t tokens_at_ms;
    unsigned strikes;
    unsigned peer_close;      /* the code the peer closed with, 0 = none */
    char remote[64];
};

struct ws_server {
    struct hub *hub;
    struct outbox *ob;
    struct ws_settings set;
    long active;    /* atomic: handshakes accepted and not yet closed, for --max-connections */
    int stopping;   /* atomic */
    pthread_mutex_t ip_lock; /* guards per_ip */
    struct dict *per_ip;     /* client address -> WebSockets open from it (as intptr_t), for --max-per-ip */
};

/* The session of the connection this worker thread serves: CivetWeb runs all four callbacks of a
 * connection on its one worker, and a worker serves one connection at a time. Set by the connect
 * handler, cleared by the close handler. */
static __thread struct session *worker_session;

static int io_write(void *sink, const void *buf, size_t len) {
    struct session *s = sink;
    mg_lock_connection(s->mg);
    int n = mg_write(s->mg, buf, len);
    mg_unlock_connection(s->mg);
    return n == (int)len ? 0 : -1;
}

/* Called by outbox_expire only, seconds after the read loop began. While the worker is in its read
 * loop, CivetWeb only flags the connection here, and the worker ends it after its next read poll
 * (websocket_timeout_ms). The loop may end on its own just before this call (peer EOF, and the close
 * handler not yet at outbox_detach); CivetWeb then closes the socket here, once (it marks it
 * closed), and clears its user data, which is why sessions are found through worker_session, never
 * through CivetWeb's user connection data. */
static void io_close(void *sink) {
    struct session *s = sink;
    mg_close_connection(s->mg);
}

static const struct outbox_io civetweb_io = {io_write, io_close};

const struct outbox_io *ws_outbox_io(void) { return &civetweb_io; }

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

static int refuse(struct mg_connection *mg, enum reject_reason why, int status, const char *detail) {
    const struct mg_request_info *ri = mg_get_request_info(mg);
    metrics_reject(why);
    log_info("ws refused %s %s %d (%s)", ri->remote_addr, ri->local_uri, status, detail);
    http_reply_text(mg, status, detail);
    return 1;
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
    int per_ip = ws->set.max_per_ip > 0;
    if (per_ip && !take_ip_slot(ws, ri->remote_addr))
        return refuse(mg, REJECT_PER_IP, 429, "too many connections from this address");
    if (!take_slot(ws)) {
        if (per_ip) release_ip_slot(ws, ri->remote_addr);
        return refuse(mg, REJECT_CAPACITY, 503, "too many connections");
    }
    struct session *s = calloc(1, sizeof *s);
    if (!s) {
        if (per_ip) release_ip_slot(ws, ri->remote_addr);
        release_slot(ws);
        return refuse(mg, REJECT_CAPACITY, 503, "out of memory");
    }
    s->ip_counted = per_ip;
    snprintf(s->remote_ip, sizeof s->remote_ip, "%s", ri->remote_addr);
    clear_stale_subprotocol(mg);
    const char *proto = ri->acceptedWebSocketSubprotocol;
    s->ws = ws;
    s->echo = proto && strcmp(proto, WS_SUBPROTOCOL_ECHO) == 0;
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->remote, sizeof s->remote, "%s:%d", ri->remote_addr, ri->remote_port);
    worker_session = s;
    return 0;
}

static void on_ready(struct mg_connection *mg, void *cbdata) {
    struct ws_server *ws = cbdata;
    struct session *s = worker_session;
    s->mg = mg;
    assembler_init(&s->in, (size_t)ws->set.max_message);
    s->tokens = (double)ws->set.rate_limit;
    s->tokens_at_ms = hub_now_ms();
    hub_conn_init(ws->hub, &s->conn, s->user[0] ? s->user : NULL, s->echo, s, (size_t)ws->set.outbox);
    enum hub_status st = hub_add(ws->hub, &s->conn);
    s->registered = st == HUB_OK || st == HUB_USER_FULL; /* the hub closes the latter itself */
    if (st == HUB_SHUTTING_DOWN) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "server shutting down");
    else if (!s->registered) outbox_close(ws->ob, &s->conn.out, WS_CLOSE_GOING_AWAY, "out of memory");
    log_info("ws open %s user=%s remote=%s protocol=%s", s->conn.id, s->conn.user, s->remote,
             s->echo ? WS_SUBPROTOCOL_ECHO : "json");
}

/* Answers the peer's close: sends ours after what is queued and returns 0, which tells CivetWeb to
 * end the connection once this handler returns. The peer's close was the last frame it sends, so
 * nothing unread is left to turn the socket's close into a reset. */
static int answer_close(struct session *s, uint16_t code, const char *reason) {
    outbox_close(s->ws->ob, &s->conn.out, code, reason);
    outbox_wait_idle(&s->conn.out, WS_CLOSE_WAIT_MS);
    return 0;
}

/* Starts the closing handshake from our side and keeps reading until the peer answers (on_data
 * then returns 0) or the hub's tick gives up on it (outbox_expire). */
static int start_close(struct session *s, uint16_t code, const char *reason) {
    outbox_close(s->ws->ob, &s->conn.out, code, reason);
    return 1;
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

/* A whole message: echoed, or routed. Returns 1 to keep the connection, 0 to end it. */
static int on_message(struct session *s, const struct asm_event *ev) {
    struct ws_server *ws = s->ws;
    metrics_add(M_MESSAGES_IN, 1);
    metrics_add(M_BYTES_IN, ev->len);
    if (s->echo) {
        struct frame *f = frame_new(ev->opcode, ev->data, ev->len);
        if (f) hub_reply(ws->hub, &s->conn, f);
        frame_unref(f);
        return 1;
    }
    if (!rate_ok(s)) {
        if (s->strikes >= WS_RATE_STRIKES) {
            metrics_add(M_RATE_LIMIT_CLOSES, 1);
            return start_close(s, WS_CLOSE_POLICY, "rate limit exceeded");
        }
        router_refuse(ws->hub, &s->conn, (const char *)ev->data, ev->opcode == WS_OP_TEXT ? ev->len : 0,
                      ERR_RATE_LIMITED, "more than --rate-limit messages per second");
        return 1;
    }
    if (ev->opcode == WS_OP_BINARY)
        router_error(ws->hub, &s->conn, ERR_BAD_REQUEST, "binary messages are not supported; send JSON text", NULL);
    else router_handle(ws->hub, &s->conn, (const char *)ev->data, ev->len);
    return 1;
}

static int on_data(struct mg_connection *mg, int bits, char *data, size_t len, void *cbdata) {
    struct session *s = worker_session;
    struct asm_event ev;
    __atomic_store_n(&s->conn.last_rx_ms, hub_now_ms(), __ATOMIC_RELAXED);
    assembler_feed(&s->in, (uint8_t)bits, (const uint8_t *)data, len, &ev);
    if (outq_closing(&s->conn.out)) /* our close is out: only its answer matters now */
        return ev.kind != ASM_CLOSE && ev.kind != ASM_FAIL;
    switch (ev.kind) {
    case ASM_MORE:
    case ASM_PONG:
        return 1;
    case ASM_PING: {
        struct frame *pong = frame_new(WS_OP_PONG, ev.data, ev.len);
        if (pong) outbox_push(s->ws->ob, &s->conn.out, pong);
        frame_unref(pong);
        return 1;
    }
    case ASM_CLOSE:
        s->peer_close = ev.close_code;
        return answer_close(s, ev.close_code, NULL);
    case ASM_FAIL:
        log_debug("ws %s protocol error: %s (close %u)", s->conn.id, ev.reason, ev.close_code);
        if ((bits & 0x0F) == WS_OP_CLOSE) /* CivetWeb ends the connection after any close frame */
            return answer_close(s, ev.close_code, ev.reason);
        return start_close(s, ev.close_code, ev.reason);
    case ASM_MESSAGE:
        return on_message(s, &ev);
    }
    return 1;
}

static void on_close(const struct mg_connection *mg, void *cbdata) {
    struct ws_server *ws = cbdata;
    struct session *s = worker_session;
    worker_session = NULL;
    if (!s) return;
    if (s->mg) {
        outbox_detach(&s->conn.out);
        if (s->registered) hub_remove(ws->hub, &s->conn);
        unsigned code = s->conn.out.close_code ? s->conn.out.close_code : s->peer_close ? s->peer_close : 1006;
        log_info("ws close %s user=%s remote=%s code=%u", s->conn.id, s->conn.user, s->remote, code);
        outq_destroy(&s->conn.out);
        assembler_free(&s->in);
    }
    if (s->ip_counted) release_ip_slot(ws, s->remote_ip);
    free(s);
    release_slot(ws);
}

/* Frees the session of an upgrade that failed after on_connect accepted it, if CivetWeb found a
 * reason to give up that key_valid did not foresee: it then calls neither on_ready nor on_close. */
void ws_connection_closed(void) {
    struct session *s = worker_session;
    worker_session = NULL;
    if (!s) return;
    if (s->ip_counted) release_ip_slot(s->ws, s->remote_ip);
    release_slot(s->ws);
    free(s);
}

void ws_register(struct ws_server *ws, struct mg_context *ctx) {
    static const char *protocols[] = {"json", WS_SUBPROTOCOL_ECHO};
    static struct mg_websocket_subprotocols list = {2, protocols};
    mg_set_websocket_handler_with_subprotocols(ctx, "/ws$", &list, on_connect, on_ready, on_data, on_close, ws);
    mg_set_websocket_handler_with_subprotocols(ctx, "/$", &list, on_connect, on_ready, on_data, on_close, ws);
}

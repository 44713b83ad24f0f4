/* cluster: the Redis engine (see cluster.h). Sections: the hub's hooks (any thread, queue only),
 * inbound messages, the queue, connection life, the engine thread. The presence protocol (this
 * node's hash and the others' read back) is clusterpresence.c; the pipelined commands both send,
 * clustercmd.c; the state they share, clusterpriv.h. */
#include "cluster.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clustercmd.h"
#include "clusterhist.h"
#include "clustermsg.h"
#include "clusterpresence.h"
#include "clusterpriv.h"
#include "dict.h"
#include "hubremote.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "redisev.h"
#include "userroute.h"

#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 5000
#define CLUSTER_STOP_WAIT_MS 1000 /* how long a stopping node waits for its goodbye to reach Redis */
#define CLUSTER_EVENTS 16
#define CLUSTER_STACK (256 * 1024)

static int64_t now_ms(void) { return hub_now_ms(); }

static void wake(struct cluster *c) {
    uint64_t one = 1;
    if (write(c->wakefd, &one, sizeof one) < 0 && errno != EAGAIN) log_warn("cluster: eventfd: %s", strerror(errno));
}

/* ---- the hub's hooks: any thread, under the hub lock; they queue and return ---- */

/* The payload of a server frame (frame.h): after its 2-, 4- or 10-byte header. */
static const char *frame_text(const struct frame *f, size_t *len) {
    uint8_t b1 = f->bytes[1] & 0x7f;
    size_t head = b1 < 126 ? 2 : b1 == 126 ? 4 : 10;
    *len = f->len - head;
    return (const char *)f->bytes + head;
}

/* Appends it to the queue unless the engine is down or the queue full (then frees it, not its ask).
 * 0 or -1. */
static int enqueue(struct cluster *c, struct item *it) {
    size_t size = sizeof *it + it->a_len + it->b_len;
    pthread_mutex_lock(&c->lock);
    int ok = c->up && c->q_bytes + size <= CLUSTER_QUEUE_MAX;
    int was_empty = !c->q_head;
    if (ok) {
        if (it->ask) uroute_ask_link(c, it->ask); /* its deadline runs from here */
        it->next = NULL;
        if (c->q_tail) c->q_tail->next = it;
        else c->q_head = it;
        c->q_tail = it;
        c->q_bytes += size;
    }
    pthread_mutex_unlock(&c->lock);
    if (!ok) free(it);
    else if (was_empty) wake(c);
    return ok ? 0 : -1;
}

static struct item *item_new(enum item_kind kind, const char *a, size_t a_len, const char *head, size_t head_len,
                             const char *text, size_t text_len) {
    struct item *it = malloc(sizeof *it + a_len + head_len + text_len);
    if (!it) return NULL;
    *it = (struct item){.kind = kind, .a_len = a_len, .b_len = head_len + text_len};
    memcpy(it->buf, a, a_len);
    if (head_len) memcpy(it->buf + a_len, head, head_len); /* head and text may be NULL when empty */
    if (text_len) memcpy(it->buf + a_len + head_len, text, text_len);
    return it;
}

/* A PUBLISH of message kind K (about `target`, or none) to `channel`, NULL when out of memory. */
static struct item *publish_item(struct cluster *c, const char *channel, char kind, const char *target, const struct frame *f) {
    char head[CLUSTER_HEAD_MAX];
    size_t hlen = cluster_msg_head(head, kind, 0, c->node, target), tlen;
    const char *text = frame_text(f, &tlen);
    return item_new(IT_PUBLISH, channel, strlen(channel), head, hlen, text, tlen);
}

/* Queues a message's item (NULL: out of memory); *echo (when asked) says whether it is a stream's,
 * which Redis brings back to this node with its position (clusterhist.h). 0, or -1 when dropped
 * (counted). */
static int queue_message(struct cluster *c, struct item *it, int *echo) {
    int stream = it && it->stream;
    if (it && enqueue(c, it) == 0) {
        if (echo) *echo = stream;
        return 0;
    }
    metrics_add(M_CLUSTER_DROPPED, 1);
    return -1;
}

static int engine_up(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    int up = c->up;
    pthread_mutex_unlock(&c->lock);
    return up;
}

/* A message to `user` on the user's channel (userroute.h): with streams (clusterhist.h) through the
 * script that gives it its position in the user's stream, else a plain PUBLISH. NULL: out of memory. */
static struct item *user_item(struct cluster *c, const char *user, const struct frame *f) {
    char channel[CLUSTER_CHANNEL_MAX];
    uroute_channel(c, user, channel);
    if (!c->history_ttl_s) return publish_item(c, channel, 'U', user, f);
    char key[HIST_KEY_MAX + 1];
    size_t tlen;
    const char *text = frame_text(f, &tlen);
    snprintf(key, sizeof key, "u:%s", user);
    return chist_item(c, 'u', user, NULL, key, channel, text, tlen);
}

/* A room's message (R, room given) or a broadcast (B) on PREFIX.all from connection `except` (NULL:
 * the HTTP API): with streams through the script (as r or b), else a plain PUBLISH. NULL: out of
 * memory. */
static struct item *all_item(struct cluster *c, char kind, const char *room, const char *except, const struct frame *f) {
    if (!c->history_ttl_s) return publish_item(c, c->ch_all, kind, room, f);
    char key[HIST_KEY_MAX + 1];
    size_t tlen;
    const char *text = frame_text(f, &tlen);
    snprintf(key, sizeof key, "%s%s", room ? "r:" : "b", room ? room : "");
    return chist_item(c, room ? 'r' : 'b', room, except ? except : "", key, c->ch_all, text, tlen);
}

/* A send to a user this node lists: one message on the user's channel, which reaches every node
 * holding the user, including one that welcomed it a moment ago and is not in the table yet;
 * `delivered` counts the other nodes the table knows have the user. A user only here costs it too
 * (another node may have just welcomed it, and the stream's position is Redis's to give), but counts
 * no drop while Redis is down. With streams, Redis brings it back to this node's protocol 2
 * connections with its position (*echo). */
static long hook_send_user(void *ctx, const char *user, const struct frame *f, int *echo) {
    struct cluster *c = ctx;
    long known = (long)peers_having(c->peers, 0, user, NULL, 0);
    if (!known && !engine_up(c)) return 0;
    return queue_message(c, user_item(c, user, f), echo) == 0 ? known : -1;
}

/* A send to a user this node does not list: the PUBLISH's reply says how many nodes hold it, told to
 * `answer` on the engine thread (userroute.h: within UROUTE_ASK_WAIT_MS); nobody waits for it. -1 at
 * once (no answer follows) while Redis is known to be down or the queue is full. Without `answer`, a
 * plain message to the user (as hook_send_user's). */
static int hook_send_unlisted(void *ctx, const char *user, const struct frame *f, void (*answer)(void *arg, long nodes),
                              void *arg) {
    struct cluster *c = ctx;
    if (!engine_up(c)) return -1;
    if (!answer) return queue_message(c, user_item(c, user, f), NULL);
    struct item *it = user_item(c, user, f);
    struct uroute_ask *a = it ? uroute_ask_new(answer, arg) : NULL;
    if (!a) {
        free(it);
        return -1;
    }
    it->kind = IT_ASK;
    it->ask = a;
    if (enqueue(c, it) < 0) { /* not linked: the engine never sees the ask */
        free(a);
        metrics_add(M_CLUSTER_DROPPED, 1);
        return -1;
    }
    return 0;
}

static int hook_user_routed(void *ctx, const char *user) { return uroute_confirmed(ctx, user); }

/* A connection's streams read from Redis (clusterhist.h), answered on this thread. */
static int hook_read_streams(void *ctx, const char *conn_id, const struct hub_stream_want *w, size_t n) {
    struct cluster *c = ctx;
    if (!engine_up(c)) return -1;
    struct item *it = chist_read_item(conn_id, w, n);
    return it ? enqueue(c, it) : -1; /* enqueue frees what it refuses */
}

/* A room message goes to every node on PREFIX.all, and each delivers it to its own members, as
 * Socket.IO's adapter does: a member who joined on another node a moment ago gets it even before the
 * presence table here has heard of the join. `delivered` counts the nodes the table knows have members. */
static long hook_publish(void *ctx, const char *room, const struct frame *f, const char *except, int *echo) {
    struct cluster *c = ctx;
    if (queue_message(c, all_item(c, 'R', room, except, f), echo) < 0) return -1;
    return (long)peers_having(c->peers, 1, room, NULL, 0);
}

/* A broadcast goes to every node on one channel; it counts the other nodes with a user. */
static long hook_broadcast(void *ctx, const struct frame *f, const char *except, int *echo) {
    struct cluster *c = ctx;
    if (queue_message(c, all_item(c, 'B', NULL, except, f), echo) < 0) return -1;
    return peers_with_users(c->peers);
}

/* Mirrors a presence change of this node and queues it for Redis. */
static void local_change(struct cluster *c, struct dict *mirror, enum item_kind kind, const char *name, int up) {
    size_t len = strlen(name);
    struct item *it = item_new(kind, name, len, NULL, 0, NULL, 0);
    pthread_mutex_lock(&c->lock);
    if (up && dict_add(mirror, name, c) < 0) log_warn("cluster: out of memory: %s is not announced", name);
    if (!up) dict_remove(mirror, name);
    int queued = 0, was_empty = !c->q_head;
    if (c->up && it && c->q_bytes + sizeof *it + len <= CLUSTER_QUEUE_MAX) {
        it->next = NULL;
        if (c->q_tail) c->q_tail->next = it;
        else c->q_head = it;
        c->q_tail = it;
        c->q_bytes += sizeof *it + len;
        queued = 1;
    } else if (c->up) {
        c->reregister = 1; /* the mirror has it: registering everything again catches up */
    }
    pthread_mutex_unlock(&c->lock);
    if (!queued) free(it);
    else if (was_empty) wake(c);
}

static void hook_user_local(void *ctx, const char *user, int up) {
    struct cluster *c = ctx;
    local_change(c, c->local, up ? IT_USER_UP : IT_USER_DOWN, user, up);
}

static void hook_room_local(void *ctx, const char *room, int up) {
    struct cluster *c = ctx;
    local_change(c, c->local_rooms, up ? IT_ROOM_UP : IT_ROOM_DOWN, room, up);
}

static void hook_room_user_local(void *ctx, const char *room, const char *user, int up) {
    struct cluster *c = ctx;
    char key[MEMBER_KEY_MAX];
    snprintf(key, sizeof key, "%s %s", room, user);
    local_change(c, c->local_members, up ? IT_MEMBER_UP : IT_MEMBER_DOWN, key, up);
}

/* The API's disconnect goes to every node on PREFIX.all; `closed` counts the nodes the table knows
 * have the user. */
static long hook_close_user(void *ctx, const char *user, uint16_t code, const char *reason) {
    struct cluster *c = ctx;
    char head[CLUSTER_HEAD_MAX], body[CLUSTER_REASON_MAX + 8];
    size_t hlen = cluster_msg_head(head, 'D', 0, c->node, user), blen = cluster_close_body(body, code, reason);
    struct item *it = item_new(IT_PUBLISH, c->ch_all, strlen(c->ch_all), head, hlen, body, blen);
    if (!it || enqueue(c, it) < 0) {
        metrics_add(M_CLUSTER_DROPPED, 1);
        return -1;
    }
    return (long)peers_having(c->peers, 0, user, NULL, 0);
}

/* The API's subscribe/unsubscribe goes to every node on PREFIX.all, as a disconnect does. */
static long hook_subscribe(void *ctx, const char *user, const char *room, int join) {
    struct cluster *c = ctx;
    char head[CLUSTER_HEAD_MAX];
    size_t hlen = cluster_msg_head(head, join ? 'G' : 'Q', 0, c->node, user);
    struct item *it = item_new(IT_PUBLISH, c->ch_all, strlen(c->ch_all), head, hlen, room, strlen(room));
    if (!it || enqueue(c, it) < 0) {
        metrics_add(M_CLUSTER_DROPPED, 1);
        return -1;
    }
    return (long)peers_having(c->peers, 0, user, NULL, 0);
}

static void hook_room_users(void *ctx, const char *room, void (*add)(void *arg, const char *user), void *arg) {
    struct cluster *c = ctx;
    peers_room_users(c->peers, room, add, arg);
}

static size_t hook_room_user_nodes(void *ctx, const char *room, const char *user) {
    struct cluster *c = ctx;
    return peers_having_member(c->peers, room, user);
}

static int hook_redis_up(void *ctx) {
    struct cluster *c = ctx;
    pthread_mutex_lock(&c->lock);
    int up = c->up;
    pthread_mutex_unlock(&c->lock);
    return up;
}

static void hook_gauges(void *ctx, struct metrics_gauges *g) {
    struct cluster *c = ctx;
    g->cluster = 1;
    pthread_mutex_lock(&c->lock);
    g->redis_up = c->up;
    g->cluster_queue_bytes = c->q_bytes;
    pthread_mutex_unlock(&c->lock);
    g->nodes_alive = peers_count(c->peers);
    g->cluster_inflight = __atomic_load_n(&c->inflight, __ATOMIC_RELAXED);
}

/* ---- inbound: messages from the subscriber connection ---- */

/* The API's disconnect, from another node: this node closes the user's connections here. */
static void close_local(struct cluster *c, const struct cluster_msg *m) {
    uint16_t code;
    char reason[CLUSTER_REASON_MAX + 1];
    if (cluster_close_parse(m->body, m->body_len, &code, reason) == 0) hub_close_local_user(c->hub, m->target, code, reason);
}

/* The API's subscribe (G) or unsubscribe (Q), from another node: on this node's connections. */
static void subscribe_local(struct cluster *c, const struct cluster_msg *m) {
    char room[SB_NAME_MAX + 1];
    snprintf(room, sizeof room, "%.*s", (int)m->body_len, m->body); /* parse checked the name */
    hub_subscribe_local_user(c->hub, m->target, room, m->kind == 'G');
}

/* own: this node sent it (a stream's message, which Redis hands back with its position). */
static void deliver_message(struct cluster *c, const struct cluster_msg *m, int own) {
    /* the body is UTF-8: cluster_msg_parse refuses a delivery whose body is not */
    struct frame *f = frame_new(WS_OP_TEXT, m->body, m->body_len); /* once per node, shared by all */
    if (!f) return;
    if (!own) metrics_add(M_CLUSTER_MESSAGES_IN, 1);
    struct hist_pos pos = {.offset = m->seq};
    memcpy(pos.epoch, m->epoch, sizeof pos.epoch);
    const char *except = own ? m->except : NULL; /* "" for a send */
    if (m->kind == 'u') hub_deliver_local_user_at(c->hub, m->target, f, &pos, except);
    else if (m->kind == 'r') hub_deliver_local_room_at(c->hub, m->target, f, &pos, except);
    else if (m->kind == 'b') hub_deliver_local_all_at(c->hub, f, &pos, except);
    else if (m->kind == 'U') hub_deliver_local_user(c->hub, m->target, f);
    else if (m->kind == 'R') hub_deliver_local_room(c->hub, m->target, f);
    else hub_deliver_local_all(c->hub, f);
    frame_unref(f);
}

static void on_message(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *type = reply->element[0], *channel = reply->element[1], *payload = reply->element[2];
    if (type->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING) return;
    if (strcmp(type->str, "subscribe") == 0 || strcmp(type->str, "unsubscribe") == 0) {
        uroute_on_reply(c, channel->str, channel->len, type->str[0] == 's');
        return;
    }
    if (strcmp(type->str, "message") != 0 || payload->type != REDIS_REPLY_STRING) return;
    struct cluster_msg m;
    if (cluster_msg_parse(payload->str, payload->len, &m) < 0) {
        log_debug("cluster: ignored a malformed message on %s", reply->element[1]->str ? reply->element[1]->str : "?");
        return;
    }
    int own = strcmp(m.node, c->node) == 0;
    if (own && !strchr(CLUSTER_POSITIONED_KINDS, m.kind)) return; /* ours: delivered locally already */
    if (strchr("JLEXMN", m.kind)) cpres_node_event(c, &m);
    else if (m.kind == 'S') cpres_fetch_node(c, m.node);
    else if (m.kind == 'D') close_local(c, &m);
    else if (m.kind == 'G' || m.kind == 'Q') subscribe_local(c, &m);
    else deliver_message(c, &m, own);
}

/* ---- the queue, into Redis commands (clustercmd.h) ---- */

/* Sends what the hooks queued, as far as the in-flight bound allows. */
static void drain(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    struct item *take = NULL, **tail = &take;
    size_t inflight = __atomic_load_n(&c->inflight, __ATOMIC_RELAXED);
    size_t room = inflight < CLUSTER_INFLIGHT_MAX ? CLUSTER_INFLIGHT_MAX - inflight : 0;
    while (c->q_head && room) {
        struct item *it = c->q_head;
        c->q_head = it->next;
        c->q_bytes -= sizeof *it + it->a_len + it->b_len;
        *tail = it;
        tail = &it->next;
        room -= it->kind == IT_PUBLISH || it->kind == IT_ASK || it->kind == IT_READ ? 1 : 5; /* a presence change is up to 5 commands */
        if (room > CLUSTER_INFLIGHT_MAX) room = 0; /* wrapped */
    }
    *tail = NULL; /* the last one taken still points at what stays queued */
    if (!c->q_head) c->q_tail = NULL;
    int rereg = c->reregister && !c->q_head;
    pthread_mutex_unlock(&c->lock);
    while (take) {
        struct item *it = take;
        take = it->next;
        if (it->stream) {
            chist_send(c, it); /* takes it */
            continue;
        }
        if (it->kind == IT_READ) {
            chist_read_send(c, it); /* takes it */
            continue;
        }
        if (it->kind == IT_PUBLISH || it->kind == IT_ASK) {
            char channel[CLUSTER_CHANNEL_MAX];
            snprintf(channel, sizeof channel, "%.*s", (int)it->a_len, it->buf);
            const char *argv[] = {"PUBLISH", channel, it->buf + it->a_len};
            size_t lens[] = {7, strlen(channel), it->b_len};
            if (cluster_command(c, it->ask ? uroute_on_publish : NULL, it->ask, 3, argv, lens) < 0 && it->ask)
                uroute_ask_drop(c, it->ask);
            metrics_add(M_CLUSTER_PUBLISHES, 1);
        } else {
            char name[MEMBER_KEY_MAX];
            int member = it->kind == IT_MEMBER_UP || it->kind == IT_MEMBER_DOWN;
            snprintf(name, sizeof name, "%.*s", (int)it->a_len, it->buf);
            cpres_change(c, name, member ? PEERS_MEMBER : it->kind == IT_ROOM_UP || it->kind == IT_ROOM_DOWN,
                            it->kind == IT_USER_UP || it->kind == IT_ROOM_UP || it->kind == IT_MEMBER_UP);
            if (it->kind == IT_USER_UP || it->kind == IT_USER_DOWN) uroute_sync(c, name);
        }
        free(it);
    }
    if (rereg) {
        cpres_register(c);
        uroute_all(c);
    }
}

/* ---- connection life ---- */

/* Takes everything queued; messages among it are counted as dropped. Engine thread. */
static void drop_queue(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    struct item *q = c->q_head;
    c->q_head = c->q_tail = NULL;
    c->q_bytes = 0;
    pthread_mutex_unlock(&c->lock);
    while (q) {
        struct item *it = q;
        q = it->next;
        if (it->kind == IT_PUBLISH) metrics_add(M_CLUSTER_DROPPED, 1);
        if (it->kind == IT_ASK) uroute_ask_drop(c, it->ask);
        if (it->kind == IT_READ) chist_read_drop(c, it); /* takes it */
        else free(it);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    struct cluster *c = ac->data;
    if (ac == c->cmd) c->cmd = NULL;
    if (ac == c->sub) c->sub = NULL;
    c->reset = 1;
}

static void on_up(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    c->up = 1;
    pthread_mutex_unlock(&c->lock);
    const char *argv[] = {"SUBSCRIBE", c->ch_all, c->ch_presence};
    size_t lens[] = {9, strlen(c->ch_all), strlen(c->ch_presence)};
    redisAsyncCommandArgv(c->sub, on_message, NULL, 3, argv, lens);
    if (c->history_ttl_s) chist_load(c);
    uroute_all(c);
    cpres_register(c);
    cpres_tick(c);
    c->next_tick = now_ms() + CLUSTER_TICK_MS;
    c->last_reply_ms = now_ms();
    c->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
    log_info("cluster: connected to redis %s:%d as node %s", c->url.host, c->url.port, c->node);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    struct cluster *c = ac->data;
    if (status != REDIS_OK) {
        log_debug("cluster: cannot connect to redis %s:%d: %s", c->url.host, c->url.port, ac->errstr);
        on_disconnect(ac, status); /* hiredis frees it after this call */
        return;
    }
    if (ac == c->cmd) c->cmd_ready = 1;
    if (ac == c->sub) c->sub_ready = 1;
    if (c->cmd_ready && c->sub_ready) on_up(c);
}

static redisAsyncContext *open_connection(struct cluster *c, struct redis_ev *ev, int select_db) {
    redisAsyncContext *ac = redisAsyncConnect(c->url.host, c->url.port);
    if (!ac) return NULL;
    if (ac->err) {
        log_debug("cluster: cannot connect to redis %s:%d: %s", c->url.host, c->url.port, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = c;
    redis_ev_attach(ev, c->epfd, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (c->url.password[0] && c->url.user[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", c->url.user, c->url.password);
    else if (c->url.password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", c->url.password);
    if (select_db && c->url.db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", c->url.db);
    /* so that CLIENT LIST tells an operator (and the tests) which node and which connection is which */
    redisAsyncCommand(ac, NULL, NULL, "CLIENT SETNAME switchboard-%s-%s", c->node, select_db ? "cmd" : "sub");
    return ac;
}

static void connect_both(struct cluster *c) {
    if (c->attempts++) metrics_add(M_CLUSTER_RECONNECTS, 1);
    c->cmd_ready = c->sub_ready = 0;
    c->cmd = open_connection(c, &c->cmd_ev, 1);
    c->sub = c->cmd ? open_connection(c, &c->sub_ev, 0) : NULL;
    if (!c->sub) c->reset = 1;
}

/* After a connection broke or failed: closes the other, drops what waited, and schedules a retry. */
static void reset(struct cluster *c) {
    if (c->cmd) redisAsyncFree(c->cmd); /* its pending callbacks run with no reply: inflight unwinds */
    if (c->sub) redisAsyncFree(c->sub);
    c->cmd = c->sub = NULL;
    c->cmd_ready = c->sub_ready = 0;
    __atomic_store_n(&c->inflight, 0, __ATOMIC_RELAXED);
    uroute_reset(c);
    pthread_mutex_lock(&c->lock);
    int was_up = c->up;
    c->up = 0;
    c->reregister = 0;
    pthread_mutex_unlock(&c->lock);
    drop_queue(c);
    if (was_up) log_warn("cluster: lost redis %s:%d: serving this node's clients only, reconnecting", c->url.host, c->url.port);
    c->retry_at = now_ms() + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > CLUSTER_BACKOFF_MAX_MS ? CLUSTER_BACKOFF_MAX_MS : c->backoff_ms * 2;
    c->reset = 0;
}

/* ---- the engine thread ---- */

static void take_wakeups(struct cluster *c) {
    uint64_t n;
    if (read(c->wakefd, &n, sizeof n) < 0 && errno != EAGAIN) log_warn("cluster: eventfd: %s", strerror(errno));
}

/* One epoll wait and what it brought; inbound deliveries are written in one outbox batch. */
static void turn(struct cluster *c, int timeout_ms) {
    struct epoll_event evs[CLUSTER_EVENTS];
    int n = epoll_wait(c->epfd, evs, CLUSTER_EVENTS, timeout_ms);
    outbox_batch_begin(&c->batch);
    for (int i = 0; i < n; i++) {
        if (!evs[i].data.ptr) take_wakeups(c);
        else redis_ev_handle(evs[i].data.ptr, evs[i].events);
    }
    outbox_batch_end(c->ob);
}

static int stopping(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    int s = c->stopping;
    pthread_mutex_unlock(&c->lock);
    return s;
}

/* Leaving: sends what is queued and removes this node from the presence table, waiting a bounded
 * time for Redis to take it. */
static void goodbye(struct cluster *c) {
    if (!c->cmd_ready || !c->sub_ready || c->reset) return;
    drain(c);
    const char *del[] = {"DEL", c->key}, *srem[] = {"SREM", c->nodes_key, c->node};
    cluster_command(c, NULL, NULL, 2, del, NULL);
    cluster_command(c, NULL, NULL, 3, srem, NULL);
    cpres_announce(c, 'S', NULL);
    redisAsyncDisconnect(c->cmd);
    int64_t until = now_ms() + CLUSTER_STOP_WAIT_MS;
    while (c->cmd && now_ms() < until) turn(c, 50);
}

static void *engine_main(void *arg) {
    struct cluster *c = arg;
    c->backoff_ms = CLUSTER_BACKOFF_MIN_MS;
    while (!stopping(c)) {
        int64_t now = now_ms();
        if (c->reset) reset(c); /* first: it sets when to retry */
        if (!c->cmd && !c->sub && now >= c->retry_at) connect_both(c);
        int up = c->cmd_ready && c->sub_ready;
        if (up) drain(c);
        if (up && __atomic_load_n(&c->inflight, __ATOMIC_RELAXED) && now - c->last_reply_ms > c->ttl_ms) {
            log_warn("cluster: redis has not answered for %ld ms: reconnecting", (long)(now - c->last_reply_ms));
            c->reset = 1;
            continue;
        }
        if (up && now >= c->next_tick) {
            cpres_tick(c);
            c->next_tick = now + CLUSTER_TICK_MS;
        }
        int64_t next = up ? c->next_tick : c->cmd || c->sub ? now + CLUSTER_TICK_MS : c->retry_at;
        int64_t ask_due = uroute_ask_expire(c, now);
        if (ask_due < next) next = ask_due;
        turn(c, next > now ? (int)(next - now) : 0);
    }
    goodbye(c);
    pthread_mutex_lock(&c->lock);
    c->up = 0; /* from here no hook queues an ask that nobody would answer */
    pthread_mutex_unlock(&c->lock);
    c->reset = 0;
    if (c->cmd) redisAsyncFree(c->cmd);
    if (c->sub) redisAsyncFree(c->sub);
    drop_queue(c);
    return NULL;
}

static void cluster_free(struct cluster *c) {
    if (c->epfd >= 0) close(c->epfd);
    if (c->wakefd >= 0) close(c->wakefd);
    peers_free(c->peers);
    dict_free(c->local);
    dict_free(c->local_rooms);
    dict_free(c->local_members);
    dict_free(c->routed);
    dict_free(c->routes);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int set_names(struct cluster *c, const struct cluster_options *o, char *err, size_t cap) {
    if (!name_valid(o->node_id)) {
        snprintf(err, cap, "--node-id '%s' is not 1-64 of [A-Za-z0-9_.-]", o->node_id);
        return -1;
    }
    if (!name_valid(o->prefix) || strlen(o->prefix) > CLUSTER_PREFIX_MAX) {
        snprintf(err, cap, "--redis-prefix '%s' is not 1-64 of [A-Za-z0-9_.-]", o->prefix);
        return -1;
    }
    snprintf(c->node, sizeof c->node, "%s", o->node_id);
    snprintf(c->prefix, sizeof c->prefix, "%s", o->prefix);
    snprintf(c->key, sizeof c->key, "%s.node.%s", c->prefix, c->node);
    snprintf(c->nodes_key, sizeof c->nodes_key, "%s.nodes", c->prefix);
    snprintf(c->ch_all, sizeof c->ch_all, "%s.all", c->prefix);
    snprintf(c->ch_presence, sizeof c->ch_presence, "%s.presence", c->prefix);
    return 0;
}

static uint64_t first_id(void) {
    uint32_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r) r = (uint32_t)getpid() ^ (uint32_t)now_ms();
    return (uint64_t)(r & 0x7fffffff) << 24; /* 16 million ids per node before ranges could meet */
}

struct cluster *cluster_start(struct hub *h, struct outbox *ob, const struct cluster_options *o, char *err, size_t cap) {
    struct cluster *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    c->hub = h;
    c->ob = ob;
    c->epfd = c->wakefd = -1;
    pthread_mutex_init(&c->lock, NULL);
    c->on_message = on_message;
    c->ttl_ms = o->node_ttl_s * 1000;
    c->history_ttl_s = o->history_ttl_s;
    c->history_size = o->history_size;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* a restarted node with the same id starts past its old states */
    c->seq = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int ok = redis_url_parse(o->url, &c->url, err, cap) == 0 && set_names(c, o, err, cap) == 0;
    if (ok && chist_init(c) < 0) {
        snprintf(err, cap, "cluster: cannot set up its streams (SHA-1, getrandom)");
        ok = 0;
    }
    if (ok && (!(c->peers = peers_new()) || !(c->local = dict_new()) || !(c->local_rooms = dict_new()) ||
               !(c->local_members = dict_new()) || !(c->routed = dict_new()) || !(c->routes = dict_new()) || (c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
               (c->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
               epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev) < 0)) {
        snprintf(err, cap, "cluster: %s", strerror(errno ? errno : ENOMEM));
        ok = 0;
    }
    if (ok) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, CLUSTER_STACK);
        ok = pthread_create(&c->thread, &attr, engine_main, c) == 0;
        pthread_attr_destroy(&attr);
        if (!ok) snprintf(err, cap, "cluster: cannot start its thread");
    }
    if (!ok) {
        cluster_free(c);
        return NULL;
    }
    c->started = 1;
    pthread_setname_np(c->thread, "sb-cluster");
    struct hub_engine e = {.ctx = c, .send_user = hook_send_user, .broadcast = hook_broadcast,
                           .publish = hook_publish, .user_local = hook_user_local,
                           .room_local = hook_room_local, .redis_up = hook_redis_up, .gauges = hook_gauges,
                           .first_id = first_id(), .room_user_local = hook_room_user_local,
                           .close_user = hook_close_user, .room_users = hook_room_users,
                           .user_routed = hook_user_routed, .send_unlisted = hook_send_unlisted,
                           .room_user_nodes = hook_room_user_nodes, .subscribe = hook_subscribe,
                           .read_streams = o->history_ttl_s ? hook_read_streams : NULL};
    hub_set_engine(h, &e);
    return c;
}

void cluster_stop(struct cluster *c) {
    if (!c) return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_mutex_unlock(&c->lock);
    wake(c);
    if (c->started) pthread_join(c->thread, NULL);
    cluster_free(c);
}

/* cluster: the Redis engine (see cluster.h). Sections: the hub's hooks (any thread, queue only), the
 * peer table, inbound messages, Redis commands, connection life, the engine thread. */
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

#include "clustermsg.h"
#include "dict.h"
#include "hubremote.h"
#include "log.h"
#include "metrics.h"
#include "peers.h"
#include "redisev.h"
#include "utf8.h"

#define CLUSTER_BACKOFF_MIN_MS 100
#define CLUSTER_BACKOFF_MAX_MS 5000
#define CLUSTER_STOP_WAIT_MS 1000 /* how long a stopping node waits for its goodbye to reach Redis */
#define CLUSTER_EVENTS 16
#define CLUSTER_STACK (256 * 1024)
#define CLUSTER_ROUTE_MAX 32 /* nodes one targeted message is published to; past it, dropped and counted */

enum item_kind { IT_PUBLISH, IT_USER_UP, IT_USER_DOWN, IT_ROOM_UP, IT_ROOM_DOWN, IT_MEMBER_UP, IT_MEMBER_DOWN };
#define MEMBER_KEY_MAX (2 * SB_NAME_MAX + 2) /* "ROOM USER" and its NUL */

/* One thing for the engine thread to tell Redis. IT_PUBLISH: buf holds the channel then the payload;
 * the others: buf holds the user's or room's name, or a member's "ROOM USER". */
struct item {
    struct item *next;
    enum item_kind kind;
    size_t a_len, b_len;
    char buf[];
};

struct cluster {
    struct hub *hub;
    struct outbox *ob;
    char prefix[CLUSTER_PREFIX_MAX + 1];
    char node[SB_NAME_MAX + 1];
    char key[CLUSTER_CHANNEL_MAX], nodes_key[CLUSTER_CHANNEL_MAX];
    char ch_self[CLUSTER_CHANNEL_MAX], ch_all[CLUSTER_CHANNEL_MAX], ch_presence[CLUSTER_CHANNEL_MAX];
    long ttl_ms;
    struct redis_url url;
    int epfd, wakefd;
    pthread_t thread;
    int started;

    pthread_mutex_t lock; /* guards the fields down to `local_members` */
    struct item *q_head, *q_tail;
    size_t q_bytes;
    int up;               /* both connections ready: hooks queue; else they drop */
    int stopping;
    int reregister;       /* a presence change was not queued: register every local user again */
    struct dict *local;   /* this node's users; values unused */
    struct dict *local_rooms; /* this node's rooms with members; values unused */
    struct dict *local_members; /* "ROOM USER" for each user with a connection in ROOM here; values unused */

    struct peers *peers;  /* the other nodes' presence; its own lock */
    size_t inflight;      /* atomic reads (gauges); written by the engine thread */

    /* The engine thread only: */
    redisAsyncContext *cmd, *sub;
    struct redis_ev cmd_ev, sub_ev;
    int cmd_ready, sub_ready, reset, attempts;
    int64_t retry_at, backoff_ms, next_tick;
    int64_t last_reply_ms;  /* when Redis last answered a command: a Redis that stops answering for
                             * --node-ttl is treated as gone (reconnect), not waited for */
    uint64_t seq;
    struct outbox_batch batch;
};

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

/* Appends it to the queue unless the engine is down or the queue full (then frees it). 0 or -1. */
static int enqueue(struct cluster *c, struct item *it) {
    size_t size = sizeof *it + it->a_len + it->b_len;
    pthread_mutex_lock(&c->lock);
    int ok = c->up && c->q_bytes + size <= CLUSTER_QUEUE_MAX;
    int was_empty = !c->q_head;
    if (ok) {
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
    it->kind = kind;
    it->a_len = a_len;
    it->b_len = head_len + text_len;
    memcpy(it->buf, a, a_len);
    if (head_len) memcpy(it->buf + a_len, head, head_len); /* head and text may be NULL when empty */
    if (text_len) memcpy(it->buf + a_len + head_len, text, text_len);
    return it;
}

/* Queues a PUBLISH of message kind K (about `target`, or none) to `channel`. */
static int publish_frame(struct cluster *c, const char *channel, char kind, const char *target, const struct frame *f) {
    char head[CLUSTER_HEAD_MAX];
    size_t hlen = cluster_msg_head(head, kind, 0, c->node, target), tlen;
    const char *text = frame_text(f, &tlen);
    struct item *it = item_new(IT_PUBLISH, channel, strlen(channel), head, hlen, text, tlen);
    if (it && enqueue(c, it) == 0) return 0;
    metrics_add(M_CLUSTER_DROPPED, 1);
    return -1;
}

/* Publishes f to the node channel of every other node that has user `name` per the presence table;
 * returns how many took it, or -1 if every one was dropped. */
static long route(struct cluster *c, char kind, const char *name, const struct frame *f) {
    peer_id ids[CLUSTER_ROUTE_MAX];
    size_t total = peers_having(c->peers, 0, name, ids, CLUSTER_ROUTE_MAX);
    size_t n = total < CLUSTER_ROUTE_MAX ? total : CLUSTER_ROUTE_MAX;
    if (total > n) metrics_add(M_CLUSTER_DROPPED, total - n);
    long sent = 0;
    for (size_t i = 0; i < n; i++) {
        char channel[CLUSTER_CHANNEL_MAX];
        snprintf(channel, sizeof channel, "%s.node.%s", c->prefix, ids[i]);
        sent += publish_frame(c, channel, kind, name, f) == 0;
    }
    return sent || !total ? sent : -1;
}

static long hook_send_user(void *ctx, const char *user, const struct frame *f) {
    return route(ctx, 'U', user, f);
}

/* A room message goes to every node on PREFIX.all, and each delivers it to its own members, as
 * Socket.IO's adapter does: a member who joined on another node a moment ago gets it even before the
 * presence table here has heard of the join. `delivered` counts the nodes the table knows have members. */
static long hook_publish(void *ctx, const char *room, const struct frame *f) {
    struct cluster *c = ctx;
    if (publish_frame(c, c->ch_all, 'R', room, f) < 0) return -1;
    return (long)peers_having(c->peers, 1, room, NULL, 0);
}

/* A broadcast goes to every node on one channel; it counts the other nodes with a user. */
static long hook_broadcast(void *ctx, const struct frame *f) {
    struct cluster *c = ctx;
    if (publish_frame(c, c->ch_all, 'B', NULL, f) < 0) return -1;
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

static void hook_room_users(void *ctx, const char *room, void (*add)(void *arg, const char *user), void *arg) {
    struct cluster *c = ctx;
    peers_room_users(c->peers, room, add, arg);
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

/* ---- the peer table (peers.h): the engine thread changes it, then tells the hub ---- */

/* Tells the hub that each name gained (delta 1) or lost (-1) a node, then frees the list. */
static void names_apply(struct cluster *c, struct names *x, int delta) {
    for (size_t i = 0; i < x->n; i++) hub_remote_user(c->hub, x->v[i], delta);
    names_free(x);
}

/* Node `id` is dead or gone: its users leave. */
static void forget_node(struct cluster *c, const char *id) {
    struct names gone = {0};
    if (peers_drop(c->peers, id, &gone)) log_info("cluster: node %s left (%zu users)", id, gone.n);
    names_apply(c, &gone, -1);
}

static void node_event(struct cluster *c, const struct cluster_msg *m) {
    int room = m->kind == 'E' || m->kind == 'X', up = m->kind == 'J' || m->kind == 'E' || m->kind == 'M';
    if (m->kind == 'M' || m->kind == 'N') {
        char key[MEMBER_KEY_MAX];
        snprintf(key, sizeof key, "%s %.*s", m->target, (int)m->body_len, m->body); /* parse checked the name */
        peers_event(c->peers, m->node, m->seq, key, PEERS_MEMBER, up);
        return;
    }
    if (peers_event(c->peers, m->node, m->seq, m->target, room, up) && !room) hub_remote_user(c->hub, m->target, up ? 1 : -1);
}

static void node_snapshot(struct cluster *c, const char *id, uint64_t seq, struct dict *users, struct dict *rooms,
                          struct dict *members) {
    struct names joined = {0}, left = {0};
    peers_snapshot(c->peers, id, seq, users, rooms, members, &joined, &left);
    names_apply(c, &joined, 1);
    names_apply(c, &left, -1);
}

/* ---- inbound: messages from the subscriber connection ---- */

/* The API's disconnect, from another node: this node closes the user's connections here. */
static void close_local(struct cluster *c, const struct cluster_msg *m) {
    uint16_t code;
    char reason[CLUSTER_REASON_MAX + 1];
    if (cluster_close_parse(m->body, m->body_len, &code, reason) == 0) hub_close_local_user(c->hub, m->target, code, reason);
}

static void deliver_message(struct cluster *c, const struct cluster_msg *m) {
    if (!utf8_valid((const uint8_t *)m->body, m->body_len)) return; /* a text frame must be UTF-8 */
    struct frame *f = frame_new(WS_OP_TEXT, m->body, m->body_len); /* once per node, shared by all */
    if (!f) return;
    metrics_add(M_CLUSTER_MESSAGES_IN, 1);
    if (m->kind == 'U') hub_deliver_local_user(c->hub, m->target, f);
    else if (m->kind == 'R') hub_deliver_local_room(c->hub, m->target, f);
    else hub_deliver_local_all(c->hub, f);
    frame_unref(f);
}

static void fetch_node(struct cluster *c, const char *id);

static void on_message(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    redisReply *type = reply->element[0], *payload = reply->element[2];
    if (type->type != REDIS_REPLY_STRING || strcmp(type->str, "message") != 0 || payload->type != REDIS_REPLY_STRING)
        return;
    struct cluster_msg m;
    if (cluster_msg_parse(payload->str, payload->len, &m) < 0) {
        log_debug("cluster: ignored a malformed message on %s", reply->element[1]->str ? reply->element[1]->str : "?");
        return;
    }
    if (strcmp(m.node, c->node) == 0) return; /* ours: delivered locally already */
    if (strchr("JLEXMN", m.kind)) node_event(c, &m);
    else if (m.kind == 'S') fetch_node(c, m.node);
    else if (m.kind == 'D') close_local(c, &m);
    else deliver_message(c, &m);
}

/* ---- Redis commands, on the command connection, pipelined ---- */

static void inflight_add(struct cluster *c, long d) {
    __atomic_store_n(&c->inflight, (size_t)((long)__atomic_load_n(&c->inflight, __ATOMIC_RELAXED) + d), __ATOMIC_RELAXED);
}

static void on_node(redisAsyncContext *ac, void *r, void *privdata);

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    inflight_add(c, -1);
    if (reply) c->last_reply_ms = now_ms();
    if (reply && reply->type == REDIS_REPLY_ERROR) log_warn("cluster: redis: %s", reply->str);
}

/* Sends a command; the argument lengths are strlen's where lens is NULL. */
static void command(struct cluster *c, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                    const size_t *lens) {
    size_t own[8];
    if (!lens) {
        for (int i = 0; i < argc && i < 8; i++) own[i] = strlen(argv[i]);
        lens = own;
    }
    if (!c->cmd || redisAsyncCommandArgv(c->cmd, fn ? fn : on_reply, privdata, argc, argv, lens) != REDIS_OK) {
        if (fn == on_node) free(privdata);
        return;
    }
    inflight_add(c, 1);
}

static void announce(struct cluster *c, char kind, const char *user) {
    char head[CLUSTER_HEAD_MAX];
    cluster_msg_head(head, kind, c->seq, c->node, user);
    const char *argv[] = {"PUBLISH", c->ch_presence, head};
    command(c, NULL, NULL, 3, argv, NULL);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
}

/* An M or N event for "ROOM USER": the room is the target, the user the body. */
static void announce_member(struct cluster *c, const char *key, int up) {
    char payload[CLUSTER_HEAD_MAX + SB_NAME_MAX + 1], room[SB_NAME_MAX + 1];
    const char *space = strchr(key, ' ');
    if (!space) return;
    snprintf(room, sizeof room, "%.*s", (int)(space - key), key);
    size_t n = cluster_msg_head(payload, up ? 'M' : 'N', c->seq, c->node, room);
    snprintf(payload + n, sizeof payload - n, "%s", space + 1);
    const char *argv[] = {"PUBLISH", c->ch_presence, payload};
    command(c, NULL, NULL, 3, argv, NULL);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
}

/* A user, room or room member ("ROOM USER", room = PEERS_MEMBER) of this node came or went: the
 * hash, atomically, then the event. */
static void presence_change(struct cluster *c, const char *name, int room, int up) {
    char seq[24], field[MEMBER_KEY_MAX + 1];
    snprintf(field, sizeof field, "%s%s", room ? "#" : "", name);
    const char *user = field;
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)++c->seq);
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *hset_up[] = {"HSET", c->key, user, "1", "", seq};
    const char *hdel[] = {"HDEL", c->key, user}, *hset_seq[] = {"HSET", c->key, "", seq};
    command(c, NULL, NULL, 1, multi, NULL);
    if (up) command(c, NULL, NULL, 6, hset_up, NULL);
    else {
        command(c, NULL, NULL, 3, hdel, NULL);
        command(c, NULL, NULL, 4, hset_seq, NULL);
    }
    command(c, NULL, NULL, 1, exec, NULL);
    if (room == PEERS_MEMBER) announce_member(c, name, up);
    else announce(c, room ? (up ? 'E' : 'X') : (up ? 'J' : 'L'), name);
}

static void pexpire(struct cluster *c, redisCallbackFn *fn) {
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", c->ttl_ms > 2000 ? c->ttl_ms - 1000 : c->ttl_ms / 2);
    const char *argv[] = {"PEXPIRE", c->key, ttl};
    command(c, fn, NULL, 3, argv, NULL);
}

struct fields {
    char **v;
    size_t n, cap;
    const char *prefix;
};

static void field_add(const char *key, void *value, void *arg) {
    struct fields *f = arg;
    char *s = f->n < f->cap ? malloc(strlen(f->prefix) + strlen(key) + 1) : NULL;
    if (!s) return;
    sprintf(s, "%s%s", f->prefix, key);
    f->v[f->n++] = s;
}

/* This node's users, rooms and members as fields of its hash ("NAME", "#ROOM", "#ROOM USER"), copies; NULL when out of
 * memory. Takes the lock. */
static char **local_fields(struct cluster *c, size_t *n) {
    pthread_mutex_lock(&c->lock);
    size_t cap = dict_size(c->local) + dict_size(c->local_rooms) + dict_size(c->local_members);
    struct fields f = {malloc((cap + 1) * sizeof(char *)), 0, cap, ""};
    if (f.v) {
        dict_each(c->local, field_add, &f);
        f.prefix = "#";
        dict_each(c->local_rooms, field_add, &f);
        dict_each(c->local_members, field_add, &f);
    }
    pthread_mutex_unlock(&c->lock);
    *n = f.n;
    return f.v;
}

static void set_reregister(struct cluster *c, int on) {
    pthread_mutex_lock(&c->lock);
    c->reregister = on;
    pthread_mutex_unlock(&c->lock);
}

/* Writes this node's whole presence again (after a reconnect, or when a change could not be queued):
 * the hash, atomically, then an S event so that the others read it at once. A change made after the
 * flag is cleared is either in the snapshot or sets the flag again. */
static void register_node(struct cluster *c) {
    set_reregister(c, 0);
    size_t n = 0;
    char **fields = local_fields(c, &n);
    const char **argv = fields ? malloc((4 + 2 * n) * sizeof *argv) : NULL;
    size_t *lens = argv ? malloc((4 + 2 * n) * sizeof *lens) : NULL;
    if (lens) {
        char seq[24];
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)++c->seq);
        int argc = 0;
        argv[argc++] = "HSET";
        argv[argc++] = c->key;
        argv[argc++] = "";
        argv[argc++] = seq;
        for (size_t i = 0; i < n; i++) {
            argv[argc++] = fields[i];
            argv[argc++] = "1";
        }
        for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
        const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"}, *del[] = {"DEL", c->key};
        const char *sadd[] = {"SADD", c->nodes_key, c->node};
        command(c, NULL, NULL, 1, multi, NULL);
        command(c, NULL, NULL, 2, del, NULL);
        command(c, NULL, NULL, argc, argv, lens);
        pexpire(c, NULL);
        command(c, NULL, NULL, 1, exec, NULL);
        command(c, NULL, NULL, 3, sadd, NULL);
        announce(c, 'S', NULL);
    } else {
        set_reregister(c, 1); /* out of memory: the next turn tries again */
    }
    for (size_t i = 0; fields && i < n; i++) free(fields[i]);
    free(fields);
    free(argv);
    free(lens);
}

static void on_pexpire(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    on_reply(ac, r, privdata);
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        log_warn("cluster: this node's presence vanished from Redis: registering it again");
        register_node(c);
    }
}

/* A field of a node's hash naming a user or a room (len bytes at name): into d if it is a valid name. */
static void take_field(struct dict *d, const char *name, size_t len) {
    if (len <= SB_NAME_MAX && strlen(name) == len && name_valid(name) && !dict_get(d, name)) dict_add(d, name, d);
}

/* A "ROOM USER" field (after its '#'): into d if both are valid names. */
static void take_member(struct dict *d, const char *key, size_t len) {
    const char *space = memchr(key, ' ', len);
    char room[SB_NAME_MAX + 1], user[SB_NAME_MAX + 1], both[MEMBER_KEY_MAX];
    size_t rlen = (size_t)(space - key), ulen = len - rlen - 1;
    if (strlen(key) != len || rlen > SB_NAME_MAX || ulen > SB_NAME_MAX) return;
    snprintf(room, sizeof room, "%.*s", (int)rlen, key);
    snprintf(user, sizeof user, "%.*s", (int)ulen, space + 1);
    if (!name_valid(room) || !name_valid(user)) return;
    snprintf(both, sizeof both, "%s %s", room, user);
    if (!dict_get(d, both)) dict_add(d, both, d);
}

/* A node's hash arrived (privdata: its id, owned). */
static void on_node(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    char *id = privdata;
    on_reply(ac, r, NULL);
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0) { /* expired: the node is dead */
            const char *srem[] = {"SREM", c->nodes_key, id};
            command(c, NULL, NULL, 3, srem, NULL);
            forget_node(c, id);
        } else {
            struct dict *users = dict_new(), *rooms = dict_new(), *members = dict_new();
            uint64_t seq = 0;
            for (size_t i = 0; users && rooms && members && i + 1 < reply->elements; i += 2) {
                redisReply *k = reply->element[i], *v = reply->element[i + 1];
                if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
                if (k->len == 0) seq = strtoull(v->str, NULL, 10);
                else if (k->str[0] == '#' && memchr(k->str, ' ', k->len)) take_member(members, k->str + 1, k->len - 1);
                else take_field(k->str[0] == '#' ? rooms : users, k->str + (k->str[0] == '#'), k->len - (k->str[0] == '#'));
            }
            if (users && rooms && members) node_snapshot(c, id, seq, users, rooms, members);
            else {
                dict_free(users);
                dict_free(rooms);
                dict_free(members);
            }
        }
    }
    free(id);
}

static void fetch_node(struct cluster *c, const char *id) {
    char key[CLUSTER_CHANNEL_MAX];
    snprintf(key, sizeof key, "%s.node.%s", c->prefix, id);
    const char *argv[] = {"HGETALL", key};
    char *copy = strdup(id);
    if (copy) command(c, on_node, copy, 2, argv, NULL);
}

/* The node set arrived: read each other node's hash; forget those no longer listed. */
static void on_members(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    on_reply(ac, r, privdata);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return;
    const char **ids = malloc((reply->elements + 1) * sizeof *ids);
    size_t n = 0;
    for (size_t i = 0; ids && i < reply->elements; i++) {
        redisReply *e = reply->element[i];
        if (e->type == REDIS_REPLY_STRING && e->len <= SB_NAME_MAX && strlen(e->str) == e->len && name_valid(e->str) &&
            strcmp(e->str, c->node) != 0)
            ids[n++] = e->str;
    }
    if (!ids) return;
    struct names gone = {0};
    peers_unlisted(c->peers, ids, n, &gone);
    for (size_t i = 0; i < gone.n; i++) forget_node(c, gone.v[i]);
    names_free(&gone);
    for (size_t i = 0; i < n; i++) fetch_node(c, ids[i]);
    free(ids);
}

/* Once a second while connected: keep this node alive, and re-read everybody's presence. */
static void tick(struct cluster *c) {
    const char *sadd[] = {"SADD", c->nodes_key, c->node}, *smembers[] = {"SMEMBERS", c->nodes_key};
    pexpire(c, on_pexpire);
    command(c, NULL, NULL, 3, sadd, NULL);
    command(c, on_members, NULL, 2, smembers, NULL);
}

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
        room -= it->kind == IT_PUBLISH ? 1 : 5; /* a presence change is up to 5 commands */
        if (room > CLUSTER_INFLIGHT_MAX) room = 0; /* wrapped */
    }
    if (!c->q_head) c->q_tail = NULL;
    int rereg = c->reregister && !c->q_head;
    pthread_mutex_unlock(&c->lock);
    while (take) {
        struct item *it = take;
        take = it->next;
        if (it->kind == IT_PUBLISH) {
            char channel[CLUSTER_CHANNEL_MAX];
            snprintf(channel, sizeof channel, "%.*s", (int)it->a_len, it->buf);
            const char *argv[] = {"PUBLISH", channel, it->buf + it->a_len};
            size_t lens[] = {7, strlen(channel), it->b_len};
            command(c, NULL, NULL, 3, argv, lens);
            metrics_add(M_CLUSTER_PUBLISHES, 1);
        } else {
            char name[MEMBER_KEY_MAX];
            int member = it->kind == IT_MEMBER_UP || it->kind == IT_MEMBER_DOWN;
            snprintf(name, sizeof name, "%.*s", (int)it->a_len, it->buf);
            presence_change(c, name, member ? PEERS_MEMBER : it->kind == IT_ROOM_UP || it->kind == IT_ROOM_DOWN,
                            it->kind == IT_USER_UP || it->kind == IT_ROOM_UP || it->kind == IT_MEMBER_UP);
        }
        free(it);
    }
    if (rereg) register_node(c);
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
        free(it);
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
    const char *argv[] = {"SUBSCRIBE", c->ch_self, c->ch_all, c->ch_presence};
    size_t lens[] = {9, strlen(c->ch_self), strlen(c->ch_all), strlen(c->ch_presence)};
    redisAsyncCommandArgv(c->sub, on_message, NULL, 4, argv, lens);
    register_node(c);
    tick(c);
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
    command(c, NULL, NULL, 2, del, NULL);
    command(c, NULL, NULL, 3, srem, NULL);
    announce(c, 'S', NULL);
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
            tick(c);
            c->next_tick = now + CLUSTER_TICK_MS;
        }
        int64_t next = up ? c->next_tick : c->cmd || c->sub ? now + CLUSTER_TICK_MS : c->retry_at;
        turn(c, next > now ? (int)(next - now) : 0);
    }
    goodbye(c);
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
    snprintf(c->ch_self, sizeof c->ch_self, "%s.node.%s", c->prefix, c->node);
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
    c->ttl_ms = o->node_ttl_s * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* a restarted node with the same id starts past its old states */
    c->seq = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int ok = redis_url_parse(o->url, &c->url, err, cap) == 0 && set_names(c, o, err, cap) == 0;
    if (ok && (!(c->peers = peers_new()) || !(c->local = dict_new()) || !(c->local_rooms = dict_new()) ||
               !(c->local_members = dict_new()) || (c->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
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
    struct hub_engine e = {c, hook_send_user, hook_broadcast, hook_publish, hook_user_local,
                           hook_room_local, hook_redis_up, hook_gauges, first_id(),
                           hook_room_user_local, hook_close_user, hook_room_users};
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

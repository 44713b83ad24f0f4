/* clusterpresence: the cluster's presence table kept in Redis and mirrored here (see
 * clusterpresence.h). */
#include "clusterpresence.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustercmd.h"
#include "clusterpriv.h"
#include "dict.h"
#include "hubremote.h"
#include "log.h"
#include "metrics.h"

/* ---- the peer table (peers.h): the engine thread changes it, then tells the hub ---- */

/* Tells the hub that each name gained (delta 1) or lost (-1) a node, then frees the list. */
static void names_apply(struct cluster *c, struct names *x, int delta) {
    for (size_t i = 0; i < x->n; i++) hub_remote_user(c->hub, x->v[i], delta);
    names_free(x);
}

/* Room member "ROOM USER" came (up) or went on another node: the hub's room presence. Between
 * hub_remote_members_begin and _end, with the table's change (hubremote.h). */
static void member_changed(struct cluster *c, const char *key, int up) {
    const char *space = strchr(key, ' ');
    char room[SB_NAME_MAX + 1];
    if (!space || (size_t)(space - key) >= sizeof room) return;
    snprintf(room, sizeof room, "%.*s", (int)(space - key), key);
    hub_remote_room_user(c->hub, room, space + 1, up);
}

/* With --presence rooms: the hub hears of each of node `id`'s members in `now` not in `before` (up)
 * and of each in `before` not in `now` (gone), then both lists are freed. */
static void members_apply(struct cluster *c, struct names *before, struct names *now) {
    struct dict *b = dict_new(), *n = dict_new();
    for (size_t i = 0; b && i < before->n; i++) dict_add(b, before->v[i], b);
    for (size_t i = 0; n && i < now->n; i++) dict_add(n, now->v[i], n);
    for (size_t i = 0; b && n && i < now->n; i++)
        if (!dict_get(b, now->v[i])) member_changed(c, now->v[i], 1);
    for (size_t i = 0; b && n && i < before->n; i++)
        if (!dict_get(n, before->v[i])) member_changed(c, before->v[i], 0);
    dict_free(b);
    dict_free(n);
    names_free(before);
    names_free(now);
}

static int rooms_presence(const struct cluster *c) { return presence_mode(c->hub) == PRESENCE_ROOMS; }

/* Node `id` is dead or gone: its room members and its users leave. */
static void forget_node(struct cluster *c, const char *id) {
    struct names gone = {0}, members = {0}, none = {0};
    hub_remote_members_begin(c->hub);
    if (rooms_presence(c)) peers_members_of(c->peers, id, &members);
    int known = peers_drop(c->peers, id, &gone);
    members_apply(c, &members, &none);
    hub_remote_members_end(c->hub);
    if (known) log_info("cluster: node %s left (%zu users)", id, gone.n);
    names_apply(c, &gone, -1);
}

void cpres_node_event(struct cluster *c, const struct cluster_msg *m) {
    metrics_add(M_CLUSTER_PRESENCE_IN, 1);
    int room = m->kind == 'E' || m->kind == 'X', up = m->kind == 'J' || m->kind == 'E' || m->kind == 'M';
    if (m->kind == 'M' || m->kind == 'N') {
        char key[MEMBER_KEY_MAX];
        snprintf(key, sizeof key, "%s %.*s", m->target, (int)m->body_len, m->body); /* parse checked the name */
        hub_remote_members_begin(c->hub);
        if (peers_event(c->peers, m->node, m->seq, key, PEERS_MEMBER, up) && rooms_presence(c)) member_changed(c, key, up);
        hub_remote_members_end(c->hub);
        return;
    }
    if (peers_event(c->peers, m->node, m->seq, m->target, room, up) && !room) hub_remote_user(c->hub, m->target, up ? 1 : -1);
}

static void node_snapshot(struct cluster *c, const char *id, uint64_t seq, struct dict *users, struct dict *rooms,
                          struct dict *members) {
    struct names joined = {0}, left = {0}, before = {0}, now = {0};
    hub_remote_members_begin(c->hub);
    if (rooms_presence(c)) peers_members_of(c->peers, id, &before);
    peers_snapshot(c->peers, id, seq, users, rooms, members, &joined, &left);
    if (rooms_presence(c)) peers_members_of(c->peers, id, &now);
    members_apply(c, &before, &now);
    hub_remote_members_end(c->hub);
    names_apply(c, &joined, 1);
    names_apply(c, &left, -1);
}

/* ---- this node's presence in Redis, and the others' read back ---- */

void cpres_announce(struct cluster *c, char kind, const char *user) {
    char head[CLUSTER_HEAD_MAX];
    cluster_msg_head(head, kind, c->seq, c->node, user);
    const char *argv[] = {"PUBLISH", c->ch_presence, head};
    cluster_command(c, NULL, NULL, 3, argv, NULL);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
    if (kind != 'S') metrics_add(M_CLUSTER_PRESENCE_OUT, 1); /* a resync request is not a change */
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
    cluster_command(c, NULL, NULL, 3, argv, NULL);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
    metrics_add(M_CLUSTER_PRESENCE_OUT, 1);
}

/* A user, room or room member ("ROOM USER", room = PEERS_MEMBER) of this node came or went: the
 * hash, atomically, then the event. */
void cpres_change(struct cluster *c, const char *name, int room, int up) {
    char seq[24], field[MEMBER_KEY_MAX + 1];
    snprintf(field, sizeof field, "%s%s", room ? "#" : "", name);
    const char *user = field;
    snprintf(seq, sizeof seq, "%llu", (unsigned long long)++c->seq);
    const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    const char *hset_up[] = {"HSET", c->key, user, "1", "", seq};
    const char *hdel[] = {"HDEL", c->key, user}, *hset_seq[] = {"HSET", c->key, "", seq};
    cluster_command(c, NULL, NULL, 1, multi, NULL);
    if (up) cluster_command(c, NULL, NULL, 6, hset_up, NULL);
    else {
        cluster_command(c, NULL, NULL, 3, hdel, NULL);
        cluster_command(c, NULL, NULL, 4, hset_seq, NULL);
    }
    cluster_command(c, NULL, NULL, 1, exec, NULL);
    if (room == PEERS_MEMBER) announce_member(c, name, up);
    else cpres_announce(c, room ? (up ? 'E' : 'X') : (up ? 'J' : 'L'), name);
}

static void pexpire(struct cluster *c, redisCallbackFn *fn) {
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%ld", c->ttl_ms > 2000 ? c->ttl_ms - 1000 : c->ttl_ms / 2);
    const char *argv[] = {"PEXPIRE", c->key, ttl};
    cluster_command(c, fn, NULL, 3, argv, NULL);
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
void cpres_register(struct cluster *c) {
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
        cluster_command(c, NULL, NULL, 1, multi, NULL);
        cluster_command(c, NULL, NULL, 2, del, NULL);
        cluster_command(c, NULL, NULL, argc, argv, lens);
        pexpire(c, NULL);
        cluster_command(c, NULL, NULL, 1, exec, NULL);
        cluster_command(c, NULL, NULL, 3, sadd, NULL);
        cpres_announce(c, 'S', NULL);
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
    cluster_on_reply(ac, r, privdata);
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        log_warn("cluster: this node's presence vanished from Redis: registering it again");
        cpres_register(c);
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
    cluster_on_reply(ac, r, NULL);
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        if (reply->elements == 0) { /* expired: the node is dead */
            const char *srem[] = {"SREM", c->nodes_key, id};
            cluster_command(c, NULL, NULL, 3, srem, NULL);
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

void cpres_fetch_node(struct cluster *c, const char *id) {
    char key[CLUSTER_CHANNEL_MAX];
    snprintf(key, sizeof key, "%s.node.%s", c->prefix, id);
    const char *argv[] = {"HGETALL", key};
    char *copy = strdup(id);
    if (copy && cluster_command(c, on_node, copy, 2, argv, NULL) < 0) free(copy);
}

/* The node set arrived: read each other node's hash; forget those no longer listed. */
static void on_members(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    cluster_on_reply(ac, r, privdata);
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
    for (size_t i = 0; i < n; i++) cpres_fetch_node(c, ids[i]);
    free(ids);
}

/* Once a second while connected: keep this node alive, and re-read everybody's presence. */
void cpres_tick(struct cluster *c) {
    const char *sadd[] = {"SADD", c->nodes_key, c->node}, *smembers[] = {"SMEMBERS", c->nodes_key};
    pexpire(c, on_pexpire);
    cluster_command(c, NULL, NULL, 3, sadd, NULL);
    cluster_command(c, on_members, NULL, 2, smembers, NULL);
}

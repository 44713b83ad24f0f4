/* hub: connections, users, rooms, presence and delivery (see hub.h); the cluster-inbound side is
 * hubremote.c, the server API's is hubapi.c, the tables they share hubpriv.h. */
#include "hub.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dict.h"
#include "hubhist.h"
#include "hubsync.h"
#include "hubpriv.h"
#include "log.h"

long hub_max_rooms(const struct hub *h) { return h->opt.max_rooms; }
long hub_max_user_conns(const struct hub *h) { return h->opt.max_user_conns; }

int64_t hub_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set_add(struct conn_set *s, struct conn *c) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        struct conn **items = realloc(s->items, cap * sizeof *items);
        if (!items) return -1;
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = c;
    return 0;
}

static int set_remove(struct conn_set *s, const struct conn *c) {
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i] == c) {
            s->items[i] = s->items[--s->n];
            return 1;
        }
    }
    return 0;
}

struct hub *hub_new(struct outbox *ob, const struct hub_options *opt) {
    struct hub *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->users = dict_new();
    h->rooms = dict_new();
    h->ids = dict_new();
    h->watches = watch_new();
    h->hist = history_new(&opt->history);
    if (!h->users || !h->rooms || !h->ids || !h->watches || (opt->history.size > 0 && !h->hist)) {
        hub_free(h);
        return NULL;
    }
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* joins and leaves must not starve behind a steady stream of sends */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    h->ob = ob;
    h->opt = *opt;
    h->hist_clock_ms = hub_now_ms();
    if (h->opt.max_rooms <= 0) h->opt.max_rooms = HUB_MAX_ROOMS_PER_CONN;
    if (h->opt.max_user_conns <= 0) h->opt.max_user_conns = HUB_MAX_CONNS_PER_USER;
    return h;
}

size_t hubp_index_find(const struct name_index *x, const char *name) {
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(x->names[mid], name) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int index_add(struct name_index *x, const char *name) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 64;
        const char **names = realloc(x->names, cap * sizeof *names);
        if (!names) return -1;
        x->names = names;
        x->cap = cap;
    }
    size_t i = hubp_index_find(x, name);
    memmove(x->names + i + 1, x->names + i, (x->n - i) * sizeof *x->names);
    x->names[i] = name;
    x->n++;
    x->text_len += strlen(name);
    return 0;
}

static void index_remove(struct name_index *x, const char *name) {
    size_t i = hubp_index_find(x, name);
    if (i == x->n || strcmp(x->names[i], name) != 0) return;
    memmove(x->names + i, x->names + i + 1, (x->n - i - 1) * sizeof *x->names);
    x->n--;
    x->text_len -= strlen(name);
}

static void free_user(const char *key, void *value, void *arg) {
    struct user *u = value;
    free(u->conns.items);
    free(u);
}

static void free_room(const char *key, void *value, void *arg) {
    struct room *r = value;
    free(r->members.items);
    free(r);
}

void hub_free(struct hub *h) {
    if (!h) return;
    if (h->users) dict_each(h->users, free_user, NULL);
    if (h->rooms) dict_each(h->rooms, free_room, NULL);
    dict_free(h->users);
    dict_free(h->rooms);
    dict_free(h->ids);
    watch_free(h->watches);
    free(h->online.names);
    history_free(h->hist);
    pthread_rwlock_destroy(&h->lock);
    free(h);
}

void hub_conn_init(struct hub *h, struct conn *c, const char *user, int echo, void *sink, size_t outbox_limit) {
    uint64_t n = __atomic_add_fetch(&h->next_id, 1, __ATOMIC_RELAXED);
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, SB_ID_PREFIX "%llu", (unsigned long long)n);
    snprintf(c->user, sizeof c->user, "%s", user ? user : c->id);
    c->named = user != NULL;
    c->echo = echo;
    c->last_rx_ms = c->last_ping_ms = hub_now_ms();
    outq_init(&c->out, sink, outbox_limit);
}

/* Queues f to c. Called with the hub lock held. Returns 1 if queued. */
int hubp_deliver(struct hub *h, struct conn *c, struct frame *f) {
    return outbox_push_message(h->ob, &c->out, f) == OUTQ_QUEUED;
}

/* To every router connection but `except`. Called with the hub lock held. */
size_t hubp_deliver_all(struct hub *h, const struct conn *except, struct frame *f) {
    size_t n = 0;
    for (struct conn *c = h->head; c; c = c->next)
        if (c != except && !c->echo && !c->pending) n += (size_t)hubp_deliver(h, c, f);
    return n;
}

/* Appends `"name"` for each online user, comma-separated, in order. Names need no JSON escaping
 * (names.h). Called with the hub lock held; out has room for index_text_size(). */
static char *index_render(const struct name_index *x, char *out) {
    for (size_t i = 0; i < x->n; i++) {
        size_t len = strlen(x->names[i]);
        if (i) *out++ = ',';
        *out++ = '"';
        memcpy(out, x->names[i], len);
        out += len;
        *out++ = '"';
    }
    return out;
}

static size_t index_text_size(const struct name_index *x) { return x->text_len + 3 * x->n; }

/* `head` (an unfinished JSON object), then ,"users":[...] if with_users, then }, as a frame (NULL when
 * out of memory). Written directly, not with cJSON: the list can be thousands of names long, and names
 * need no escaping. Called with the hub lock held. */
static struct frame *with_users_frame(struct hub *h, const char *head, int with_users) {
    static const char key[] = ",\"users\":[";
    size_t hlen = strlen(head);
    char *text = malloc(hlen + sizeof key + index_text_size(&h->online) + 2), *end = text;
    if (!text) return NULL;
    memcpy(end, head, hlen);
    end += hlen;
    if (with_users) {
        memcpy(end, key, sizeof key - 1);
        end = index_render(&h->online, end + sizeof key - 1);
        *end++ = ']';
    }
    *end++ = '}';
    struct frame *f = frame_new(WS_OP_TEXT, text, (size_t)(end - text));
    free(text);
    return f;
}

static void send_with_users(struct hub *h, struct conn *c, const char *head, int with_users) {
    struct frame *f = with_users_frame(h, head, with_users);
    if (f) hubp_deliver(h, c, f);
    frame_unref(f);
}

struct frame *hubp_welcome_frame(struct hub *h, const struct conn *c, const char *streams) {
    char head[96 + HUB_ID_MAX + SB_NAME_MAX];
    int n = snprintf(head, sizeof head, "{\"type\":\"welcome\",\"id\":\"%s\",\"user\":\"%s\"", c->id, c->user);
    if (c->exp_s && n > 0 && (size_t)n < sizeof head)
        n += snprintf(head + n, sizeof head - (size_t)n, ",\"exp\":%lld", (long long)c->exp_s);
    char full[sizeof head + HUB_STREAMS_TEXT_MAX];
    snprintf(full, sizeof full, "%s%s", head, streams);
    return with_users_frame(h, full, presence_mode(h) == PRESENCE_GLOBAL);
}

/* The welcome, and for a protocol 2 connection its streams' positions and what it recovers (hubhist.h). */
static void send_welcome(struct hub *h, struct conn *c) {
    char streams[HUB_STREAMS_TEXT_MAX];
    struct hubh_resume r;
    hubh_welcome_streams(h, c, streams, sizeof streams, &r);
    struct frame *f = hubp_welcome_frame(h, c, streams);
    if (f) hubp_deliver(h, c, f);
    frame_unref(f);
    hubh_welcome_replay(h, c, &r);
}

/* The welcome is a promise that a send from any node reaches c: with an engine whose route to c's
 * user on this node is not confirmed yet, c's outbox holds the welcome, and what follows it, until
 * hub_route_ready (hubremote.h) or the tick's bound (HUB_WELCOME_WAIT_MS) lets it go. The hold comes
 * first: the loop may write a queued welcome the moment it is pushed. Called with the lock held. */
static void welcome(struct hub *h, struct conn *c) {
    if (!c->held_ms && h->engine && h->engine->user_routed && !h->engine->user_routed(h->engine->ctx, c->user)) {
        outbox_hold(&c->out);
        c->held_ms = hub_now_ms();
    }
    if (hubs_on(h, c)) hubs_welcome(h, c, !c->held_ms);
    else send_welcome(h, c);
}

void hubp_release(struct hub *h, struct conn *c) {
    c->held_ms = 0;
    outbox_release(h->ob, &c->out);
    hubs_released(h, c);
}

/* A user online under `name`, listed in the users table and the name index; NULL when out of memory. */
struct user *hubp_user_new(struct hub *h, const char *name) {
    struct user *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    snprintf(u->name, sizeof u->name, "%s", name);
    if (dict_add(h->users, u->name, u) < 0) {
        free(u);
        return NULL;
    }
    if (index_add(&h->online, u->name) < 0) {
        dict_remove(h->users, u->name);
        free(u);
        return NULL;
    }
    return u;
}

void hubp_user_free(struct hub *h, struct user *u) {
    index_remove(&h->online, u->name);
    dict_remove(h->users, u->name);
    free_user(NULL, u, NULL);
}

/* Adds c to its user's connections; 1 if it is the user's first, 0 if not, -1 when the user is
 * full or out of memory. */
static int user_attach(struct hub *h, struct conn *c) {
    struct user *u = dict_get(h->users, c->user);
    int first = u == NULL;
    if (u && u->conns.n >= (size_t)h->opt.max_user_conns) return -1;
    if (first && !(u = hubp_user_new(h, c->user))) return -1;
    if (set_add(&u->conns, c) < 0) {
        if (first) hubp_user_free(h, u);
        return -1;
    }
    c->u = u;
    if (h->engine && u->conns.n == 1) h->engine->user_local(h->engine->ctx, u->name, 1);
    return first;
}

/* Removes c from its user; returns 1 if that was the user's last connection. */
static int user_detach(struct hub *h, struct conn *c) {
    struct user *u = c->u;
    c->u = NULL;
    if (!u) return 0;
    set_remove(&u->conns, c);
    if (u->conns.n) return 0;
    if (h->engine) h->engine->user_local(h->engine->ctx, u->name, 0);
    if (u->remote) return 0; /* still online on another node */
    hubp_user_free(h, u);
    return 1;
}

/* Why user_attach failed. Called with the hub lock held. */
static enum hub_status attach_failure(struct hub *h, const char *user) {
    struct user *u = dict_get(h->users, user);
    return u && u->conns.n >= (size_t)h->opt.max_user_conns ? HUB_USER_FULL : HUB_NO_MEMORY;
}

enum hub_status hub_add(struct hub *h, struct conn *c) {
    pthread_rwlock_wrlock(&h->lock);
    int first = 0;
    enum hub_status s = h->shutting_down ? HUB_SHUTTING_DOWN : HUB_OK;
    int routed = !c->echo && !c->pending;
    if (s == HUB_OK && dict_add(h->ids, c->id, c) < 0) s = HUB_NO_MEMORY;
    if (s == HUB_OK && routed && (first = user_attach(h, c)) < 0 && (s = attach_failure(h, c->user)) != HUB_USER_FULL)
        dict_remove(h->ids, c->id);
    if (s != HUB_OK && s != HUB_USER_FULL) {
        pthread_rwlock_unlock(&h->lock);
        return s;
    }
    c->prev = NULL;
    c->next = h->head;
    if (h->head) h->head->prev = c;
    h->head = c;
    __atomic_add_fetch(&h->count, 1, __ATOMIC_RELAXED);
    if (s == HUB_USER_FULL) { /* listed without a user, so the tick ends it if the peer never answers */
        metrics_add(M_USER_LIMIT_REFUSALS, 1);
        outbox_close(h->ob, &c->out, 1008, "too many connections for this user");
        pthread_rwlock_unlock(&h->lock);
        return s;
    }
    if (routed) welcome(h, c);
    if (first) presence_user(h, c, "join", c->user);
    pthread_rwlock_unlock(&h->lock);
    metrics_add(M_CONNECTIONS_TOTAL, 1);
    return HUB_OK;
}

/* c's index in its room list, or -1. Called with the hub lock held. */
static long member_index(const struct conn *c, const char *room) {
    for (size_t i = 0; i < c->nrooms; i++)
        if (strcmp(c->rooms[i]->name, room) == 0) return (long)i;
    return -1;
}

/* c's user enters (up) or leaves room r, unless another of its connections is in it: the engine and
 * the room's presence hear of it. A user's connections are few (max_user_conns) and each has few
 * rooms, so this stays short however large the room. Called with the hub lock held, exclusive. */
static void member_change(struct hub *h, const struct conn *c, const struct room *r, int up) {
    if (!c->u) return;
    for (size_t i = 0; i < c->u->conns.n; i++)
        if (c->u->conns.items[i] != c && member_index(c->u->conns.items[i], r->name) >= 0) return;
    if (h->engine && h->engine->room_user_local) h->engine->room_user_local(h->engine->ctx, r->name, c->u->name, up);
    presence_room_local(h, c, r, up);
}

static void room_drop_member(struct hub *h, struct room *r, struct conn *c) {
    member_change(h, c, r, 0);
    set_remove(&r->members, c);
    if (r->members.n == 0) {
        if (h->engine) h->engine->room_local(h->engine->ctx, r->name, 0);
        dict_remove(h->rooms, r->name);
        free_room(NULL, r, NULL);
    }
}

/* Takes c out of its rooms and off its user (the user leaves with its last connection). Exclusive lock. */
static void unseat(struct hub *h, struct conn *c) {
    while (c->nrooms) room_drop_member(h, c->rooms[--c->nrooms], c);
    free(c->rooms);
    c->rooms = NULL;
    c->rooms_cap = 0;
    watch_clear(h->watches, &c->watching, c);
    if (user_detach(h, c)) presence_user(h, c, "leave", c->user);
}

void hub_remove(struct hub *h, struct conn *c) {
    pthread_rwlock_wrlock(&h->lock);
    if (c->prev) c->prev->next = c->next;
    else if (h->head == c) h->head = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    dict_remove(h->ids, c->id);
    __atomic_sub_fetch(&h->count, 1, __ATOMIC_RELAXED);
    unseat(h, c);
    hubs_free(h, c);
    pthread_rwlock_unlock(&h->lock);
}

long hub_send_user(struct hub *h, const char *user, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    struct user *u = dict_get(h->users, user);
    long n = u ? 0 : -1;
    /* delivered counts each other node the engine handed it to (hub.h) */
    int echo = 0;
    long remote = u && h->engine ? h->engine->send_user(h->engine->ctx, user, f, &echo) : 0;
    struct hubh_msg m; /* kept for the user's recovery even when offline here (docs/PROTOCOL.md) */
    hubh_begin(h, &m, 'u', user, f);
    m.echo = echo;
    for (size_t i = 0; u && i < u->conns.n; i++) n += hubh_deliver(h, u->conns.items[i], &m);
    hubh_end(&m);
    if (remote > 0) n += remote;
    pthread_rwlock_unlock(&h->lock);
    return !u && h->engine && h->engine->send_unlisted ? HUB_UNLISTED : n;
}

int hub_ask_user(struct hub *h, const char *user, struct frame *f, void (*answer)(void *arg, long nodes), void *arg) {
    return h->engine && h->engine->send_unlisted ? h->engine->send_unlisted(h->engine->ctx, user, f, answer, arg) : -1;
}

struct frame *hub_reserve_reply(struct hub *h, struct conn *c) {
    pthread_rwlock_rdlock(&h->lock);
    struct frame *slot = outbox_reserve(h->ob, &c->out);
    pthread_rwlock_unlock(&h->lock);
    return slot;
}

void hub_fill_reply(struct hub *h, const char *id, struct frame *slot, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    struct conn *c = dict_get(h->ids, id);
    if (c) outbox_fill(h->ob, &c->out, slot, f);
    pthread_rwlock_unlock(&h->lock);
    if (!c) frame_unref(slot);
}

size_t hub_broadcast(struct hub *h, const struct conn *from, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    size_t n = 0;
    int echo = 0;
    long remote = h->engine ? h->engine->broadcast(h->engine->ctx, f, from ? from->id : NULL, &echo) : 0;
    struct hubh_msg m;
    hubh_begin(h, &m, 'b', NULL, f);
    m.echo = echo;
    for (struct conn *c = h->head; c; c = c->next)
        if (c != from && !c->echo && !c->pending) n += (size_t)hubh_deliver(h, c, &m);
    hubh_end(&m);
    if (remote > 0) n += (size_t)remote;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

long hub_publish(struct hub *h, const struct conn *from, const char *room, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    long i = member_index(from, room), n = 0;
    struct conn_set *m = i < 0 ? NULL : &from->rooms[i]->members;
    int echo = 0;
    long remote = m && h->engine ? h->engine->publish(h->engine->ctx, room, f, from->id, &echo) : 0;
    struct hubh_msg hm;
    if (m) hubh_begin(h, &hm, 'r', room, f);
    hm.echo = echo;
    for (size_t k = 0; m && k < m->n; k++)
        if (m->items[k] != from) n += hubh_deliver(h, m->items[k], &hm);
    if (m) hubh_end(&hm);
    if (remote > 0) n += remote;
    pthread_rwlock_unlock(&h->lock);
    return i < 0 ? -1 : n;
}

void hub_reply(struct hub *h, struct conn *c, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    hubp_deliver(h, c, f);
    pthread_rwlock_unlock(&h->lock);
}

static enum hub_status join_locked(struct hub *h, struct conn *c, const char *name) {
    if (member_index(c, name) >= 0) return HUB_OK;
    if (c->nrooms >= (size_t)h->opt.max_rooms) {
        metrics_add(M_ROOM_LIMIT_REFUSALS, 1);
        return HUB_TOO_MANY_ROOMS;
    }
    if (c->nrooms == c->rooms_cap) {
        size_t cap = c->rooms_cap ? c->rooms_cap * 2 : 4;
        struct room **rooms = realloc(c->rooms, cap * sizeof *rooms);
        if (!rooms) return HUB_NO_MEMORY;
        c->rooms = rooms;
        c->rooms_cap = cap;
    }
    struct room *r = dict_get(h->rooms, name);
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return HUB_NO_MEMORY;
        snprintf(r->name, sizeof r->name, "%s", name);
        if (dict_add(h->rooms, name, r) < 0) {
            free(r);
            return HUB_NO_MEMORY;
        }
    }
    if (set_add(&r->members, c) < 0) {
        if (r->members.n == 0) {
            dict_remove(h->rooms, r->name);
            free_room(NULL, r, NULL);
        }
        return HUB_NO_MEMORY;
    }
    if (h->engine && r->members.n == 1) h->engine->room_local(h->engine->ctx, r->name, 1);
    member_change(h, c, r, 1);
    c->rooms[c->nrooms++] = r;
    return HUB_OK;
}

enum hub_status hub_join(struct hub *h, struct conn *c, const char *room, const char *ack_head) {
    return hub_join_from(h, c, room, NULL, ack_head);
}

/* Under one exclusive hold of the lock, so nothing of the room comes between: the join, protocol 2's
 * `joined` and replay, then the ack with the members, then the room's later traffic. */
enum hub_status hub_join_from(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since,
                              const char *ack_head) {
    pthread_rwlock_wrlock(&h->lock);
    enum hub_status s = join_locked(h, c, room);
    if (s == HUB_OK && hubs_on(h, c)) hubs_joined(h, c, room, since);
    else if (s == HUB_OK) hubh_joined(h, c, room, since);
    long i = s == HUB_OK && ack_head && presence_mode(h) == PRESENCE_ROOMS ? member_index(c, room) : -1;
    if (i >= 0) presence_members_reply(h, c, c->rooms[i], ack_head);
    pthread_rwlock_unlock(&h->lock);
    return s;
}

static enum hub_status leave_locked(struct hub *h, struct conn *c, const char *room) {
    long i = member_index(c, room);
    if (i < 0) return HUB_NOT_MEMBER;
    struct room *r = c->rooms[i];
    c->rooms[i] = c->rooms[--c->nrooms];
    room_drop_member(h, r, c);
    hubs_left(c, room);
    return HUB_OK;
}

enum hub_status hub_leave(struct hub *h, struct conn *c, const char *room) {
    pthread_rwlock_wrlock(&h->lock);
    enum hub_status s = leave_locked(h, c, room);
    pthread_rwlock_unlock(&h->lock);
    return s;
}

size_t hubp_subscribe_user(struct hub *h, const char *user, const char *room, int join) {
    struct user *u = dict_get(h->users, user);
    size_t n = 0;
    for (size_t i = 0; u && i < u->conns.n; i++) {
        struct conn *c = u->conns.items[i];
        int member = member_index(c, room) >= 0;
        if (join ? !member && join_locked(h, c, room) == HUB_OK : member && leave_locked(h, c, room) == HUB_OK) n++;
    }
    return n;
}

enum hub_status hub_rename(struct hub *h, struct conn *c, const char *user) {
    pthread_rwlock_wrlock(&h->lock);
    struct user *target = dict_get(h->users, user);
    enum hub_status s = c->named ? HUB_ALREADY_NAMED : HUB_OK;
    if (s == HUB_OK && target && target->conns.n >= (size_t)h->opt.max_user_conns) {
        s = HUB_USER_FULL;
        metrics_add(M_USER_LIMIT_REFUSALS, 1);
    }
    if (s == HUB_OK) {
        for (size_t i = 0; i < c->nrooms; i++) member_change(h, c, c->rooms[i], 0);
        if (user_detach(h, c)) presence_user(h, c, "leave", c->user);
        snprintf(c->user, sizeof c->user, "%s", user);
        c->named = 1;
        int first = user_attach(h, c);
        for (size_t i = 0; first >= 0 && i < c->nrooms; i++) member_change(h, c, c->rooms[i], 1);
        if (first < 0) s = HUB_NO_MEMORY;
        if (first > 0) presence_user(h, c, "join", c->user);
        welcome(h, c);
    }
    pthread_rwlock_unlock(&h->lock);
    return s;
}

enum hub_status hub_authenticate(struct hub *h, struct conn *c, const char *user, const struct hub_deadline *d) {
    pthread_rwlock_wrlock(&h->lock);
    struct user *target = dict_get(h->users, user);
    enum hub_status s = c->pending ? HUB_OK : HUB_ALREADY_NAMED;
    if (s == HUB_OK && target && target->conns.n >= (size_t)h->opt.max_user_conns) {
        s = HUB_USER_FULL;
        metrics_add(M_USER_LIMIT_REFUSALS, 1);
    }
    if (s == HUB_OK) {
        char id_name[sizeof c->user];
        snprintf(id_name, sizeof id_name, "%s", c->user);
        snprintf(c->user, sizeof c->user, "%s", user);
        int first = user_attach(h, c);
        if (first < 0) {
            snprintf(c->user, sizeof c->user, "%s", id_name);
            s = HUB_NO_MEMORY;
        } else {
            c->pending = 0;
            c->named = 1;
            c->deadline = *d;
            if (first > 0) presence_user(h, c, "join", c->user);
            welcome(h, c);
        }
    }
    pthread_rwlock_unlock(&h->lock);
    return s;
}

void hub_set_deadline(struct hub *h, struct conn *c, const struct hub_deadline *d) {
    pthread_rwlock_wrlock(&h->lock);
    c->deadline = *d;
    pthread_rwlock_unlock(&h->lock);
}

void hub_reply_users(struct hub *h, struct conn *c, const char *after) {
    if (presence_mode(h) == PRESENCE_ROOMS) {
        presence_reply_users_page(h, c, after);
        return;
    }
    pthread_rwlock_rdlock(&h->lock);
    send_with_users(h, c, "{\"type\":\"users\"", 1);
    pthread_rwlock_unlock(&h->lock);
}

void hub_tick(struct hub *h, int64_t now_ms) {
    long interval = h->opt.ping_interval_ms;
    struct frame *ping = frame_new(WS_OP_PING, NULL, 0);
    pthread_rwlock_wrlock(&h->lock);
    for (struct conn *c = h->head; c && ping; c = c->next) {
        outbox_expire(h->ob, &c->out, now_ms, HUB_CLOSE_GRACE_MS);
        if (c->held_ms && now_ms - c->held_ms >= HUB_WELCOME_WAIT_MS) { /* the engine never confirmed */
            hubp_release(h, c);
            metrics_add(M_CLUSTER_WELCOMES_UNROUTED, 1);
        }
        if (c->deadline.at_ms && now_ms >= c->deadline.at_ms) {
            outbox_close(h->ob, &c->out, c->deadline.code, c->deadline.reason);
            c->deadline.at_ms = 0;
            continue;
        }
        int64_t silent = now_ms - __atomic_load_n(&c->last_rx_ms, __ATOMIC_RELAXED);
        if (silent >= 3 * interval) {
            if (outbox_close(h->ob, &c->out, 1001, "ping timeout")) metrics_add(M_PING_TIMEOUTS, 1);
        } else if (silent >= interval && now_ms - c->last_ping_ms >= interval) {
            c->last_ping_ms = now_ms;
            outbox_push(h->ob, &c->out, ping);
        }
    }
    __atomic_store_n(&h->hist_clock_ms, now_ms, __ATOMIC_RELAXED);
    hubh_tick(h, now_ms);
    pthread_rwlock_unlock(&h->lock);
    frame_unref(ping);
}

void hub_shutdown(struct hub *h, uint16_t code, const char *reason) {
    pthread_rwlock_wrlock(&h->lock);
    h->shutting_down = 1;
    for (struct conn *c = h->head; c; c = c->next) {
        if (c->held_ms) hubp_release(h, c); /* its close must not wait for a route */
        outbox_close(h->ob, &c->out, code, reason);
    }
    pthread_rwlock_unlock(&h->lock);
}

size_t hub_count(struct hub *h) { return __atomic_load_n(&h->count, __ATOMIC_RELAXED); }

void hub_gauges(struct hub *h, struct metrics_gauges *g) {
    pthread_rwlock_rdlock(&h->lock);
    g->connections_open = h->count;
    g->users_online = dict_size(h->users);
    g->rooms = dict_size(h->rooms);
    g->outbox_bytes = 0;
    for (struct conn *c = h->head; c; c = c->next) g->outbox_bytes += outq_bytes(&c->out);
    pthread_rwlock_unlock(&h->lock);
    struct history_stats hs = {0};
    if (h->hist) history_stats(h->hist, &hs);
    g->history_streams = hs.streams;
    g->history_bytes = hs.bytes;
    g->history_messages = hs.messages;
    g->cluster = g->redis_up = 0;
    g->nodes_alive = g->cluster_queue_bytes = g->cluster_inflight = 0;
    if (h->engine) h->engine->gauges(h->engine->ctx, g);
}

/* ---- the cluster engine's side (hub.h) ---- */

void hub_set_engine(struct hub *h, const struct hub_engine *e) {
    h->engine_copy = *e;
    h->engine = &h->engine_copy;
    h->next_id = e->first_id;
}

int hub_engine_state(struct hub *h) { return h->engine ? h->engine->redis_up(h->engine->ctx) : -1; }

/* Each connection also leaves its user and rooms at once (unseat), while it stays listed until its close
 * is done: a backend that disconnects a user means the user is gone now, not once the client answers.
 * Exclusive lock. */
size_t hubp_close_user(struct hub *h, const char *user, uint16_t code, const char *reason) {
    struct user *u;
    size_t n = 0;
    while ((u = dict_get(h->users, user)) != NULL && u->conns.n) {
        struct conn *c = u->conns.items[u->conns.n - 1];
        n += (size_t)outbox_close(h->ob, &c->out, code, reason);
        unseat(h, c);
    }
    return n;
}

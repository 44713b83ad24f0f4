/* presence: the presence modes' fan-out and the rooms-mode commands (see presence.h). */
#include "presence.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "hubpriv.h"
#include "watch.h"

int presence_mode_parse(const char *s, enum presence_mode *mode) {
    static const struct {
        const char *name;
        enum presence_mode mode;
    } modes[] = {{"off", PRESENCE_OFF}, {"global", PRESENCE_GLOBAL}, {"on", PRESENCE_GLOBAL}, {"rooms", PRESENCE_ROOMS}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        if (strcmp(s, modes[i].name) == 0) {
            *mode = modes[i].mode;
            return 0;
        }
    }
    return -1;
}

enum presence_mode presence_mode(const struct hub *h) { return (enum presence_mode)h->opt.presence; }

/* {"type":"presence","event":E,"user":U} or, for a room, with ,"room":R. Names need no escaping
 * (names.h). */
static struct frame *event_frame(const char *event, const char *user, const char *room) {
    char text[96 + 2 * SB_NAME_MAX];
    int n = snprintf(text, sizeof text, "{\"type\":\"presence\",\"event\":\"%s\",\"user\":\"%s\"%s%s%s}", event, user,
                     room ? ",\"room\":\"" : "", room ? room : "", room ? "\"" : "");
    return n > 0 && (size_t)n < sizeof text ? frame_new(WS_OP_TEXT, text, (size_t)n) : NULL;
}

void presence_user(struct hub *h, const struct conn *except, const char *event, const char *user) {
    enum presence_mode mode = presence_mode(h);
    if (mode == PRESENCE_OFF) return;
    struct frame *f = event_frame(event, user, NULL);
    if (f && mode == PRESENCE_GLOBAL) hubp_deliver_all(h, except, f);
    size_t n = 0;
    struct conn *const *watchers = f && mode == PRESENCE_ROOMS ? watch_watchers(h->watches, user, &n) : NULL;
    for (size_t i = 0; i < n; i++)
        if (watchers[i] != except) hubp_deliver(h, watchers[i], f);
    frame_unref(f);
}

void presence_room_local(struct hub *h, const struct conn *c, const struct room *r, int up) {
    if (presence_mode(h) != PRESENCE_ROOMS || !c->u) return;
    /* another node has the user in the room: to the room, the user neither came nor went */
    if (h->engine && h->engine->room_user_nodes && h->engine->room_user_nodes(h->engine->ctx, r->name, c->u->name) > 0)
        return;
    hubp_room_event(h, r, c, up ? "join" : "leave", c->u->name);
}

/* 1 if one of r's member connections here is `user`'s. */
static int user_in_room(const struct room *r, const char *user) {
    for (size_t k = 0; k < r->members.n; k++)
        if (r->members.items[k]->u && strcmp(r->members.items[k]->u->name, user) == 0) return 1;
    return 0;
}

void presence_room_remote(struct hub *h, const char *room, const char *user, int up) {
    struct room *r = presence_mode(h) == PRESENCE_ROOMS ? dict_get(h->rooms, room) : NULL;
    if (!r || user_in_room(r, user) || !h->engine || !h->engine->room_user_nodes) return;
    /* the first node to have the user in the room, or the last to lose it */
    if (h->engine->room_user_nodes(h->engine->ctx, room, user) == (up ? 1u : 0u))
        hubp_room_event(h, r, NULL, up ? "join" : "leave", user);
}

void hubp_room_event(struct hub *h, const struct room *r, const struct conn *except, const char *event, const char *user) {
    struct frame *f = event_frame(event, user, r->name);
    for (size_t k = 0; f && k < r->members.n; k++)
        if (r->members.items[k] != except) hubp_deliver(h, r->members.items[k], f);
    frame_unref(f);
}

/* Queues head, then ,"KEY":LIST}, to c: a reply whose list the hub built. Frees nothing. */
static void reply_with_list(struct hub *h, struct conn *c, const char *head, const char *key, const char *list, size_t len) {
    size_t hlen = strlen(head), klen = strlen(key);
    char *text = malloc(hlen + klen + len + 8), *end = text;
    if (!text) return;
    end += sprintf(end, "%s,\"%s\":", head, key);
    memcpy(end, list, len);
    end += len;
    *end++ = '}';
    struct frame *f = frame_new(WS_OP_TEXT, text, (size_t)(end - text));
    free(text);
    if (f) hubp_deliver(h, c, f);
    frame_unref(f);
}

void presence_members_reply(struct hub *h, struct conn *c, const struct room *r, const char *ack_head) {
    size_t len = 0;
    char *list = hubp_room_users(h, r->name, r, &len);
    if (list) reply_with_list(h, c, ack_head, "members", list, len);
    free(list);
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The distinct names of names[0..n) that are online (here or, per the engine, elsewhere), sorted, as
 * a JSON array; NULL when out of memory. Called with the hub lock held. */
static char *online_json(struct hub *h, const char *const *names, size_t n, size_t *len) {
    const char **on = malloc((n + 1) * sizeof *on);
    size_t k = 0, kept = 0, text_len = 0;
    if (!on) return NULL;
    for (size_t i = 0; i < n; i++)
        if (dict_get(h->users, names[i])) on[k++] = names[i];
    qsort(on, k, sizeof *on, by_name);
    for (size_t i = 0; i < k; i++) {
        if (kept && strcmp(on[kept - 1], on[i]) == 0) continue;
        on[kept++] = on[i];
        text_len += strlen(on[i]);
    }
    char *text = hubp_names_json(on, kept, text_len, len);
    free(on);
    return text;
}

/* Unwatches the first n of names, the ones one command added before it failed. */
static void undo_watches(struct hub *h, struct conn *c, const char *const *names, const int *added, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (added[i]) watch_remove(h->watches, &c->watching, c, names[i]);
}

enum presence_status presence_watch(struct hub *h, struct conn *c, const char *const *names, size_t n,
                                    const char *ack_head) {
    int *added = calloc(n + 1, sizeof *added);
    if (!added) return PRESENCE_NO_MEMORY;
    pthread_rwlock_wrlock(&h->lock);
    enum presence_status s = PRESENCE_DONE;
    size_t i = 0;
    for (; i < n && s == PRESENCE_DONE; i++) {
        added[i] = watch_add(h->watches, &c->watching, c, names[i]);
        if (added[i] < 0) s = PRESENCE_NO_MEMORY, added[i] = 0;
        else if (c->watching.n > WATCH_MAX) s = PRESENCE_TOO_MANY;
    }
    size_t len = 0;
    char *list = s == PRESENCE_DONE ? online_json(h, names, n, &len) : NULL;
    if (s == PRESENCE_DONE && !list) s = PRESENCE_NO_MEMORY;
    if (s != PRESENCE_DONE) undo_watches(h, c, names, added, i);
    else reply_with_list(h, c, ack_head, "online", list, len);
    pthread_rwlock_unlock(&h->lock);
    free(list);
    free(added);
    return s;
}

void presence_unwatch(struct hub *h, struct conn *c, const char *const *names, size_t n) {
    pthread_rwlock_wrlock(&h->lock);
    for (size_t i = 0; i < n; i++) watch_remove(h->watches, &c->watching, c, names[i]);
    pthread_rwlock_unlock(&h->lock);
}

void presence_reply_users_page(struct hub *h, struct conn *c, const char *after) {
    pthread_rwlock_rdlock(&h->lock);
    const struct name_index *x = &h->online;
    size_t from = after ? hubp_index_find(x, after) : 0;
    if (after && from < x->n && strcmp(x->names[from], after) == 0) from++;
    size_t n = x->n - from < PRESENCE_USERS_PAGE ? x->n - from : PRESENCE_USERS_PAGE, text_len = 0, len = 0;
    for (size_t i = 0; i < n; i++) text_len += strlen(x->names[from + i]);
    char *list = hubp_names_json(x->names + from, n, text_len, &len);
    /* ,"more":true goes after the list, before the brace reply_with_list closes the object with */
    if (list && from + n < x->n) {
        char *more = realloc(list, len + 16);
        if (more) {
            list = more;
            len += (size_t)sprintf(list + len, ",\"more\":true");
        }
    }
    if (list) reply_with_list(h, c, "{\"type\":\"users\"", "users", list, len);
    pthread_rwlock_unlock(&h->lock);
    free(list);
}

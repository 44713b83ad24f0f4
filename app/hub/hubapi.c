/* hubapi: the server API's side of the hub (see hubapi.h). */
#include "hubapi.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "hubhist.h"
#include "hubpriv.h"

size_t hub_publish_server(struct hub *h, const char *room, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    struct room *r = dict_get(h->rooms, room);
    size_t n = 0;
    int echo = 0;
    long remote = h->engine ? h->engine->publish(h->engine->ctx, room, f, NULL, &echo) : 0;
    struct hubh_msg m; /* kept even with nobody in the room here: members recover it on rejoining */
    hubh_begin(h, &m, 'r', room, f);
    m.echo = echo;
    for (size_t k = 0; r && k < r->members.n; k++) n += (size_t)hubh_deliver(h, r->members.items[k], &m);
    hubh_end(&m);
    if (remote > 0) n += (size_t)remote;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

char *hubp_names_json(const char *const *names, size_t n, size_t text_len, size_t *len) {
    char *text = malloc(text_len + 3 * n + 3), *end = text;
    if (!text) return NULL;
    *end++ = '[';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        if (i) *end++ = ',';
        *end++ = '"';
        memcpy(end, names[i], l);
        end += l;
        *end++ = '"';
    }
    *end++ = ']';
    *end = '\0';
    *len = (size_t)(end - text);
    return text;
}

char *hub_users_json(struct hub *h, size_t *len) {
    pthread_rwlock_rdlock(&h->lock);
    char *text = hubp_names_json(h->online.names, h->online.n, h->online.text_len, len);
    pthread_rwlock_unlock(&h->lock);
    return text;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The users other nodes have in a room, copied: the engine's table may change once its hook returns. */
struct remote_names {
    char **v;
    size_t n, cap;
    int failed; /* out of memory: a name is missing */
};

static void remote_add(void *arg, const char *user) {
    struct remote_names *x = arg;
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        char **v = realloc(x->v, cap * sizeof *v);
        if (!v) {
            x->failed = 1;
            return;
        }
        x->v = v;
        x->cap = cap;
    }
    if ((x->v[x->n] = strdup(user))) x->n++;
    else x->failed = 1;
}

char *hubp_room_users(struct hub *h, const char *room, const struct room *r, size_t *len) {
    struct remote_names remote = {0};
    if (h->engine && h->engine->room_users) h->engine->room_users(h->engine->ctx, room, remote_add, &remote);
    size_t local = r ? r->members.n : 0, n = 0, kept = 0, text_len = 0;
    const char **names = remote.failed ? NULL : malloc((local + remote.n + 1) * sizeof *names);
    char *text = NULL;
    if (names) {
        for (size_t k = 0; k < local; k++) names[n++] = r->members.items[k]->user;
        for (size_t k = 0; k < remote.n; k++) names[n++] = remote.v[k];
        qsort(names, n, sizeof *names, by_name);
        for (size_t k = 0; k < n; k++) {
            if (kept && strcmp(names[kept - 1], names[k]) == 0) continue;
            names[kept++] = names[k];
            text_len += strlen(names[k]);
        }
        text = hubp_names_json(names, kept, text_len, len);
    }
    free(names);
    for (size_t k = 0; k < remote.n; k++) free(remote.v[k]);
    free(remote.v);
    return text;
}

char *hub_room_users_json(struct hub *h, const char *room, size_t *len) {
    pthread_rwlock_rdlock(&h->lock);
    char *text = hubp_room_users(h, room, dict_get(h->rooms, room), len);
    pthread_rwlock_unlock(&h->lock);
    return text;
}

size_t hub_subscribe_user(struct hub *h, const char *user, const char *room, int join) {
    pthread_rwlock_wrlock(&h->lock);
    size_t n = hubp_subscribe_user(h, user, room, join);
    /* Told to every node, as a disconnect is; the count adds the nodes the table knows have the user. */
    long remote = h->engine && h->engine->subscribe ? h->engine->subscribe(h->engine->ctx, user, room, join) : 0;
    if (remote > 0) n += (size_t)remote;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

int hub_user_online(struct hub *h, const char *user) {
    pthread_rwlock_rdlock(&h->lock);
    int online = dict_get(h->users, user) != NULL;
    pthread_rwlock_unlock(&h->lock);
    return online;
}

size_t hub_close_user(struct hub *h, const char *user, uint16_t code, const char *reason) {
    pthread_rwlock_wrlock(&h->lock);
    size_t n = hubp_close_user(h, user, code, reason);
    /* Told to every node whatever the table says, so a connection made elsewhere a moment ago closes
     * too; `closed` counts the nodes the table knows have the user, as `delivered` does for a send. */
    long remote = h->engine && h->engine->close_user ? h->engine->close_user(h->engine->ctx, user, code, reason) : 0;
    if (remote > 0) n += (size_t)remote;
    pthread_rwlock_unlock(&h->lock);
    return n;
}

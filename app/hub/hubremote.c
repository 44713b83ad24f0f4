/* hubremote: the cluster engine's inbound side of the hub (see hubremote.h). */
#include "hubremote.h"

#include <pthread.h>
#include <string.h>

#include "dict.h"
#include "hubhist.h"
#include "hubsync.h"
#include "hubpriv.h"

size_t hub_deliver_local_user(struct hub *h, const char *user, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    struct user *u = dict_get(h->users, user);
    size_t n = 0;
    for (size_t i = 0; u && i < u->conns.n; i++) n += (size_t)hubp_deliver(h, u->conns.items[i], f);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

/* Whether c gets a stream's message that came back with its position (hubremote.h's except). */
static int gets_echo(const struct conn *c, const char *except) {
    return !except || (c->positions && strcmp(c->id, except) != 0);
}

/* To those of set s (NULL: none) that gets_echo and their gate (hubsync.h) say, a message of stream
 * (kind, name); hub lock held. */
static size_t deliver_set_at(struct hub *h, const struct conn_set *s, char kind, const char *name, struct frame *f,
                             const struct hist_pos *pos, const char *except) {
    size_t n = 0;
    struct hubh_msg m;
    hubh_begin_at(&m, f, pos);
    for (size_t i = 0; s && i < s->n; i++)
        if (hubs_pass(h, s->items[i], kind, name, pos) && gets_echo(s->items[i], except))
            n += (size_t)hubh_deliver(h, s->items[i], &m);
    hubh_end(&m);
    return n;
}

size_t hub_deliver_local_user_at(struct hub *h, const char *user, struct frame *f, const struct hist_pos *pos,
                                 const char *except) {
    pthread_rwlock_rdlock(&h->lock);
    struct user *u = dict_get(h->users, user);
    size_t n = deliver_set_at(h, u ? &u->conns : NULL, 'u', user, f, pos, except);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_deliver_local_room_at(struct hub *h, const char *room, struct frame *f, const struct hist_pos *pos,
                                 const char *except) {
    pthread_rwlock_rdlock(&h->lock);
    struct room *r = dict_get(h->rooms, room);
    size_t n = deliver_set_at(h, r ? &r->members : NULL, 'r', room, f, pos, except);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_deliver_local_all_at(struct hub *h, struct frame *f, const struct hist_pos *pos, const char *except) {
    pthread_rwlock_rdlock(&h->lock);
    size_t n = 0;
    struct hubh_msg m;
    hubh_begin_at(&m, f, pos);
    for (struct conn *c = h->head; c; c = c->next)
        if (!c->echo && !c->pending && hubs_pass(h, c, 'b', NULL, pos) && gets_echo(c, except))
            n += (size_t)hubh_deliver(h, c, &m);
    hubh_end(&m);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_deliver_local_all(struct hub *h, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    size_t n = hubp_deliver_all(h, NULL, f);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_deliver_local_room(struct hub *h, const char *room, struct frame *f) {
    pthread_rwlock_rdlock(&h->lock);
    struct room *r = dict_get(h->rooms, room);
    size_t n = 0;
    for (size_t k = 0; r && k < r->members.n; k++) n += (size_t)hubp_deliver(h, r->members.items[k], f);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_close_local_user(struct hub *h, const char *user, uint16_t code, const char *reason) {
    pthread_rwlock_wrlock(&h->lock);
    size_t n = hubp_close_user(h, user, code, reason);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

size_t hub_subscribe_local_user(struct hub *h, const char *user, const char *room, int join) {
    pthread_rwlock_wrlock(&h->lock);
    size_t n = hubp_subscribe_user(h, user, room, join);
    pthread_rwlock_unlock(&h->lock);
    return n;
}

void hub_remote_members_begin(struct hub *h) { pthread_rwlock_rdlock(&h->lock); }

void hub_remote_members_end(struct hub *h) { pthread_rwlock_unlock(&h->lock); }

void hub_remote_room_user(struct hub *h, const char *room, const char *user, int up) {
    presence_room_remote(h, room, user, up);
}

void hub_remote_user(struct hub *h, const char *user, int delta) {
    pthread_rwlock_wrlock(&h->lock);
    struct user *u = dict_get(h->users, user);
    if (delta > 0 && !u && (u = hubp_user_new(h, user))) presence_user(h, NULL, "join", user);
    if (u && delta > 0) u->remote++;
    if (u && delta < 0 && u->remote > 0 && --u->remote == 0 && u->conns.n == 0) {
        hubp_user_free(h, u);
        presence_user(h, NULL, "leave", user);
    }
    pthread_rwlock_unlock(&h->lock);
}

void hub_route_ready(struct hub *h, const char *user) {
    pthread_rwlock_wrlock(&h->lock);
    struct user *u = dict_get(h->users, user);
    for (size_t i = 0; u && i < u->conns.n; i++)
        if (u->conns.items[i]->held_ms) hubp_release(h, u->conns.items[i]);
    pthread_rwlock_unlock(&h->lock);
}

/* peers: the cluster's presence table (see peers.h). */
#include "peers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct peer {
    struct peer *next;
    peer_id id;
    struct dict *users;   /* names online there; values unused */
    struct dict *rooms;   /* rooms with members there; values unused */
    struct dict *members; /* "ROOM USER": USER has a connection in ROOM there; values unused */
    struct dict *by_room; /* ROOM -> a dict of its USERs there (values unused): `members` by room, so
                           * that listing a room costs its members, not every member of the node */
    uint64_t seq;         /* the newest presence state applied */
};

struct peers {
    pthread_mutex_t lock; /* guards everything below */
    struct peer *head;
    size_t count;
    long with_users;
};

void names_push(struct names *x, const char *name) {
    if (x->n == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 16;
        char **v = realloc(x->v, cap * sizeof *v);
        if (!v) return;
        x->v = v;
        x->cap = cap;
    }
    if ((x->v[x->n] = strdup(name))) x->n++;
}

void names_free(struct names *x) {
    for (size_t i = 0; i < x->n; i++) free(x->v[i]);
    free(x->v);
    *x = (struct names){0};
}

struct peers *peers_new(void) {
    struct peers *p = calloc(1, sizeof *p);
    if (p) pthread_mutex_init(&p->lock, NULL);
    return p;
}

static void free_room_index(const char *key, void *value, void *arg) { dict_free(value); }

/* Empties e->by_room: a new, empty index (NULL when out of memory: rooms then list no one there). */
static void index_clear(struct peer *e) {
    if (e->by_room) dict_each(e->by_room, free_room_index, NULL);
    dict_free(e->by_room);
    e->by_room = dict_new();
}

/* Splits "ROOM USER" into room (a buffer of SB_NAME_MAX + 1) and the returned user; NULL if malformed. */
static const char *member_split(const char *key, char *room) {
    const char *space = strchr(key, ' ');
    if (!space || (size_t)(space - key) > SB_NAME_MAX) return NULL;
    memcpy(room, key, (size_t)(space - key));
    room[space - key] = '\0';
    return space + 1;
}

static void index_add(const char *key, void *value, void *arg) {
    struct peer *e = arg;
    char room[SB_NAME_MAX + 1];
    const char *user = member_split(key, room);
    struct dict *users = user && e->by_room ? dict_get(e->by_room, room) : NULL;
    if (user && e->by_room && !users && (users = dict_new()) && dict_add(e->by_room, room, users) < 0) {
        dict_free(users);
        users = NULL;
    }
    if (users && !dict_get(users, user)) dict_add(users, user, e);
}

static void index_remove(struct peer *e, const char *key) {
    char room[SB_NAME_MAX + 1];
    const char *user = member_split(key, room);
    struct dict *users = user && e->by_room ? dict_get(e->by_room, room) : NULL;
    if (users) dict_remove(users, user);
    if (users && dict_size(users) == 0) dict_free(dict_remove(e->by_room, room));
}

static void peer_free(struct peer *n) {
    dict_free(n->users);
    dict_free(n->rooms);
    dict_free(n->members);
    if (n->by_room) dict_each(n->by_room, free_room_index, NULL);
    dict_free(n->by_room);
    free(n);
}

void peers_free(struct peers *p) {
    if (!p) return;
    while (p->head) {
        struct peer *n = p->head;
        p->head = n->next;
        peer_free(n);
    }
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* Under the lock. */
static void recount(struct peers *p) {
    long n = 0;
    size_t all = 0;
    for (struct peer *e = p->head; e; e = e->next, all++) n += dict_size(e->users) > 0;
    p->with_users = n;
    p->count = all;
}

/* Under the lock. */
static struct peer *find(struct peers *p, const char *id) {
    for (struct peer *e = p->head; e; e = e->next)
        if (strcmp(e->id, id) == 0) return e;
    return NULL;
}

/* Under the lock; NULL when out of memory. */
static struct peer *get(struct peers *p, const char *id) {
    struct peer *e = find(p, id);
    if (e) return e;
    if (!(e = calloc(1, sizeof *e)) || !(e->users = dict_new()) || !(e->rooms = dict_new()) ||
        !(e->members = dict_new()) || !(e->by_room = dict_new())) {
        if (e) peer_free(e);
        return NULL;
    }
    snprintf(e->id, sizeof e->id, "%s", id);
    e->next = p->head;
    p->head = e;
    return e;
}

size_t peers_having(struct peers *p, int rooms, const char *name, peer_id *ids, size_t max) {
    size_t total = 0;
    pthread_mutex_lock(&p->lock);
    for (struct peer *e = p->head; e; e = e->next) {
        if (!dict_get(rooms ? e->rooms : e->users, name)) continue;
        if (total < max) memcpy(ids[total], e->id, sizeof e->id);
        total++;
    }
    pthread_mutex_unlock(&p->lock);
    return total;
}

size_t peers_having_member(struct peers *p, const char *room, const char *user) {
    char key[2 * SB_NAME_MAX + 2];
    snprintf(key, sizeof key, "%s %s", room, user);
    size_t total = 0;
    pthread_mutex_lock(&p->lock);
    for (struct peer *e = p->head; e; e = e->next) total += dict_get(e->members, key) != NULL;
    pthread_mutex_unlock(&p->lock);
    return total;
}

size_t peers_count(struct peers *p) {
    pthread_mutex_lock(&p->lock);
    size_t n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

long peers_with_users(struct peers *p) {
    pthread_mutex_lock(&p->lock);
    long n = p->with_users;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int peers_event(struct peers *p, const char *id, uint64_t seq, const char *name, int room, int up) {
    int changed = 0;
    pthread_mutex_lock(&p->lock);
    struct peer *e = up ? get(p, id) : find(p, id);
    if (e && seq > e->seq) {
        struct dict *d = room == PEERS_MEMBER ? e->members : room ? e->rooms : e->users;
        e->seq = seq;
        if (up && !dict_get(d, name)) changed = dict_add(d, name, e) == 0;
        if (!up) changed = dict_remove(d, name) != NULL;
        if (changed && room == PEERS_MEMBER) up ? index_add(name, NULL, e) : index_remove(e, name);
    }
    recount(p);
    pthread_mutex_unlock(&p->lock);
    return changed;
}

struct diff {
    const struct dict *other; /* NULL: every key is missing from it */
    struct names *out;
};

static void collect_missing(const char *key, void *value, void *arg) {
    struct diff *d = arg;
    if (!d->other || !dict_get(d->other, key)) names_push(d->out, key);
}

void peers_snapshot(struct peers *p, const char *id, uint64_t seq, struct dict *users, struct dict *rooms,
                    struct dict *members, struct names *joined, struct names *left) {
    struct dict *old_users = users, *old_rooms = rooms, *old_members = members; /* what is freed at the end */
    pthread_mutex_lock(&p->lock);
    struct peer *e = get(p, id);
    if (e && seq >= e->seq) {
        dict_each(users, collect_missing, &(struct diff){e->users, joined});
        dict_each(e->users, collect_missing, &(struct diff){users, left});
        old_users = e->users;
        old_rooms = e->rooms;
        old_members = e->members;
        e->users = users;
        e->rooms = rooms;
        e->members = members;
        e->seq = seq;
        index_clear(e);
        dict_each(members, index_add, e);
    }
    recount(p);
    pthread_mutex_unlock(&p->lock);
    dict_free(old_users);
    dict_free(old_rooms);
    dict_free(old_members);
}

struct member_call {
    void (*add)(void *arg, const char *user);
    void *arg;
};

static void member_call(const char *key, void *value, void *arg) {
    struct member_call *m = arg;
    m->add(m->arg, key);
}

void peers_room_users(struct peers *p, const char *room, void (*add)(void *arg, const char *user), void *arg) {
    struct member_call m = {add, arg};
    pthread_mutex_lock(&p->lock);
    for (struct peer *e = p->head; e; e = e->next) {
        struct dict *users = e->by_room ? dict_get(e->by_room, room) : NULL;
        if (users) dict_each(users, member_call, &m);
    }
    pthread_mutex_unlock(&p->lock);
}

void peers_members_of(struct peers *p, const char *id, struct names *out) {
    pthread_mutex_lock(&p->lock);
    struct peer *e = find(p, id);
    if (e) dict_each(e->members, collect_missing, &(struct diff){NULL, out});
    pthread_mutex_unlock(&p->lock);
}

int peers_drop(struct peers *p, const char *id, struct names *gone) {
    pthread_mutex_lock(&p->lock);
    struct peer **pp = &p->head;
    while (*pp && strcmp((*pp)->id, id) != 0) pp = &(*pp)->next;
    struct peer *e = *pp;
    if (e) {
        *pp = e->next;
        dict_each(e->users, collect_missing, &(struct diff){NULL, gone});
    }
    recount(p);
    pthread_mutex_unlock(&p->lock);
    if (e) peer_free(e);
    return e != NULL;
}

void peers_unlisted(struct peers *p, const char *const *ids, size_t n, struct names *out) {
    pthread_mutex_lock(&p->lock);
    for (struct peer *e = p->head; e; e = e->next) {
        size_t i = 0;
        while (i < n && strcmp(ids[i], e->id) != 0) i++;
        if (i == n) names_push(out, e->id);
    }
    pthread_mutex_unlock(&p->lock);
}

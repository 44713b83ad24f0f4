/* hubpriv: the hub's tables, shared by its four files and no other module.
 *
 * The hub (hub.h) is one lock and one set of tables, carried out by four files: hub.c (registration,
 * rooms, delivery, the tick), presence.c (who hears of whose comings and goings, presence.h),
 * hubremote.c (what the cluster engine brings in from other nodes, hubremote.h) and hubapi.c (the
 * server API, hubapi.h). This header is what they share: the
 * structures and the core's helpers. Every field below is guarded by hub->lock as hub.h says; each
 * helper is called with that lock held (shared for deliveries, exclusive where it changes a table).
 * Other modules use hub.h, hubremote.h and hubapi.h only. */
#ifndef SB_HUBPRIV_H
#define SB_HUBPRIV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"

struct dict;

/* A set of connections: a user's, or a room's members. */
struct conn_set {
    struct conn **items;
    size_t n, cap;
};

struct user {
    struct conn_set conns;
    long remote;          /* other nodes where the user is online (cluster engine); 0 alone */
    char name[SB_NAME_MAX + 1];
};

/* The online users' names in order, kept as users come and go, so that a welcome's list is a copy,
 * not a sort: a join storm of n users would otherwise sort n lists of up to n names. */
struct name_index {
    const char **names; /* each a struct user's `name` */
    size_t n, cap;
    size_t text_len;    /* sum of the names' lengths */
};

struct room {
    char name[SB_NAME_MAX + 1];
    struct conn_set members;
};

struct hub {
    pthread_rwlock_t lock; /* guards everything below and the hub fields of each conn; delivery only
                            * reads the tables, so concurrent senders share it */
    struct outbox *ob;
    struct hub_options opt;
    struct dict *users;   /* name -> struct user */
    struct name_index online;
    struct dict *rooms;   /* name -> struct room */
    struct watch_table *watches; /* who watches whom (watch.h), --presence rooms */
    struct conn *head;    /* every registered connection */
    struct dict *ids;     /* c->id -> c, every registered connection: how another thread names one
                           * (hub_fill_reply), never by a pointer it keeps */
    size_t count;         /* atomic reads: /healthz must not wait behind joins for the lock */
    uint64_t next_id;
    int shutting_down;
    const struct hub_engine *engine; /* NULL without --redis; set before any connection */
    struct hub_engine engine_copy;
    struct history *hist;  /* NULL without history (--history-size 0); its own locks, under this one */
    int64_t hist_clock_ms; /* atomic: hub_now_ms() at the last tick, history's clock: a message's age
                            * to the second is enough for a TTL in seconds, and reading the clock per
                            * message costs ~0.3 µs on a virtual machine */
};

/* Queues f to c; 1 if queued. */
int hubp_deliver(struct hub *h, struct conn *c, struct frame *f);
/* To every router connection but `except` (NULL: all); how many were queued to. */
size_t hubp_deliver_all(struct hub *h, const struct conn *except, struct frame *f);
/* {"type":"presence","event":E,"user":U,"room":R} to r's members but `except`. */
void hubp_room_event(struct hub *h, const struct room *r, const struct conn *except, const char *event, const char *user);
/* Where `name` is or would go in the sorted index. */
size_t hubp_index_find(const struct name_index *x, const char *name);
/* A JSON array of `n` names (which need no escaping, names.h), text_len their total length:
 * malloc'd, NUL-terminated; NULL when out of memory. */
char *hubp_names_json(const char *const *names, size_t n, size_t text_len, size_t *len);
/* The distinct users of room `room`'s members (r: its local members, or NULL) here and, with an
 * engine, on the other nodes, sorted, as hubp_names_json; NULL when out of memory. */
char *hubp_room_users(struct hub *h, const char *room, const struct room *r, size_t *len);
/* A user online under `name`, listed in the users table and the name index; NULL when out of memory.
 * Exclusive lock. */
struct user *hubp_user_new(struct hub *h, const char *name);
/* Unlists and frees u. Exclusive lock. */
void hubp_user_free(struct hub *h, struct user *u);
/* c's welcome with `streams` (",\"streams\":{...}" or ""), as a frame; NULL when out of memory. */
#define HUB_STREAMS_TEXT_MAX 256
struct frame *hubp_welcome_frame(struct hub *h, const struct conn *c, const char *streams);
/* Lets c's held welcome (and what followed it) go out. */
void hubp_release(struct hub *h, struct conn *c);
/* Close `code`, `reason` to every connection of `user` here, each leaving the user and its rooms at
 * once (presence `leave` with the last); how many began closing. Exclusive lock. */
size_t hubp_close_user(struct hub *h, const char *user, uint16_t code, const char *reason);

/* Joins (join = 1) or removes (0) every connection of `user` on this node to or from `room`, as if
 * each had sent join or leave (--max-rooms holds; the rooms claim does not: the backend decides).
 * Returns how many connections changed. Called with the hub lock held exclusively. */
size_t hubp_subscribe_user(struct hub *h, const char *user, const char *room, int join);

#endif

/* watch: who watches whom, the contact lists of --presence rooms.
 *
 * A connection may watch up to WATCH_MAX users: it then hears when each comes online or goes offline,
 * and nothing about anyone else. The table maps a watched user's name to the connections watching it,
 * so an arrival costs its watchers, never the number of connections; each connection keeps its own
 * list (struct watch_list, inside struct conn) so that closing it unwatches in proportion to what it
 * watched. A module of its own so the hub's core does not grow a second set of tables.
 *
 * Lock: none inside. The hub calls it under its lock (exclusive to change, shared to read), and a
 * connection is only ever a pointer here, never dereferenced. */
#ifndef SB_WATCH_H
#define SB_WATCH_H

#include <stddef.h>

#define WATCH_MAX 1000 /* users one connection may watch; more get bad_request */

struct conn;
struct watchers;
struct watch_table;

/* One connection's watched users (pointers to the table's entries); zeroed = empty. */
struct watch_list {
    struct watchers **items;
    size_t n, cap;
};

struct watch_table *watch_new(void);
/* Frees the table; every list must have been cleared. */
void watch_free(struct watch_table *t);
/* c (whose list is l) watches `name`: 1 if added, 0 if it already did, -1 when out of memory. The
 * WATCH_MAX bound is the caller's, which knows how many names one command adds. */
int watch_add(struct watch_table *t, struct watch_list *l, struct conn *c, const char *name);
/* c stops watching `name`: 1 if it did, 0 if not. */
int watch_remove(struct watch_table *t, struct watch_list *l, struct conn *c, const char *name);
/* c stops watching everyone (it is closing). */
void watch_clear(struct watch_table *t, struct watch_list *l, struct conn *c);
/* 1 if the list has `name`. */
int watch_has(const struct watch_list *l, const char *name);
/* The connections watching `name` (*n of them), or NULL when none; valid until the table changes. */
struct conn *const *watch_watchers(const struct watch_table *t, const char *name, size_t *n);

#endif

/* dict: a string-keyed hash table, for the hub's users and rooms.
 *
 * Lookups by name are on the hot path of every targeted send, so they are O(1): chained buckets,
 * doubled when the load passes 1. The dict owns copies of its keys; it never owns the values.
 * Not thread-safe: the hub's lock guards every dict it has. */
#ifndef SB_DICT_H
#define SB_DICT_H

#include <stddef.h>

struct dict;

struct dict *dict_new(void);
/* Frees the table and its keys, not the values. */
void dict_free(struct dict *d);
void *dict_get(const struct dict *d, const char *key);
/* Adds key -> value; the key must not be present. Returns 0, or -1 when out of memory. */
int dict_add(struct dict *d, const char *key, void *value);
/* Removes key and returns its value (NULL if absent). */
void *dict_remove(struct dict *d, const char *key);
size_t dict_size(const struct dict *d);
/* Calls fn for every entry, in no particular order; fn must not change the dict. */
void dict_each(const struct dict *d, void (*fn)(const char *key, void *value, void *arg), void *arg);

#endif

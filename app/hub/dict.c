/* dict: chained string hash table (see dict.h). */
#include "dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DICT_INITIAL_BUCKETS 16

struct entry {
    struct entry *next;
    void *value;
    char key[]; /* owned copy */
};

struct dict {
    struct entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t size;
};

/* FNV-1a: names are short, so a simple hash is fast and spreads well enough. */
static uint64_t hash(const char *key) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 1099511628211ULL;
    return h;
}

struct dict *dict_new(void) {
    struct dict *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->buckets = calloc(DICT_INITIAL_BUCKETS, sizeof *d->buckets);
    if (!d->buckets) {
        free(d);
        return NULL;
    }
    d->nbuckets = DICT_INITIAL_BUCKETS;
    return d;
}

void dict_free(struct dict *d) {
    if (!d) return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        for (struct entry *e = d->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(d->buckets);
    free(d);
}

static struct entry **find(const struct dict *d, const char *key) {
    struct entry **slot = &d->buckets[hash(key) & (d->nbuckets - 1)];
    while (*slot && strcmp((*slot)->key, key) != 0) slot = &(*slot)->next;
    return slot;
}

void *dict_get(const struct dict *d, const char *key) {
    struct entry *e = *find(d, key);
    return e ? e->value : NULL;
}

/* Doubles the bucket array; on allocation failure the dict just stays denser. */
static void grow(struct dict *d) {
    size_t n = d->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        for (struct entry *e = d->buckets[i], *next; e; e = next) {
            next = e->next;
            struct entry **slot = &b[hash(e->key) & (n - 1)];
            e->next = *slot;
            *slot = e;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

int dict_add(struct dict *d, const char *key, void *value) {
    size_t klen = strlen(key);
    struct entry *e = malloc(sizeof *e + klen + 1);
    if (!e) return -1;
    memcpy(e->key, key, klen + 1);
    e->value = value;
    if (d->size >= d->nbuckets) grow(d);
    struct entry **slot = find(d, key);
    e->next = NULL;
    *slot = e;
    d->size++;
    return 0;
}

void *dict_remove(struct dict *d, const char *key) {
    struct entry **slot = find(d, key);
    struct entry *e = *slot;
    if (!e) return NULL;
    void *value = e->value;
    *slot = e->next;
    free(e);
    d->size--;
    return value;
}

size_t dict_size(const struct dict *d) { return d->size; }

void dict_each(const struct dict *d, void (*fn)(const char *key, void *value, void *arg), void *arg) {
    for (size_t i = 0; i < d->nbuckets; i++)
        for (struct entry *e = d->buckets[i]; e; e = e->next) fn(e->key, e->value, arg);
}

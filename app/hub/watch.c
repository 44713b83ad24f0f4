/* watch: who watches whom (see watch.h). */
#include "watch.h"

#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "names.h"

/* A watched user and the connections watching it; freed with its last watcher. */
struct watchers {
    char name[SB_NAME_MAX + 1];
    struct conn **items;
    size_t n, cap;
};

struct watch_table {
    struct dict *by_name; /* name -> struct watchers */
};

struct watch_table *watch_new(void) {
    struct watch_table *t = calloc(1, sizeof *t);
    if (t && !(t->by_name = dict_new())) {
        free(t);
        t = NULL;
    }
    return t;
}

static void free_watchers(const char *key, void *value, void *arg) {
    struct watchers *w = value;
    free(w->items);
    free(w);
}

void watch_free(struct watch_table *t) {
    if (!t) return;
    dict_each(t->by_name, free_watchers, NULL);
    dict_free(t->by_name);
    free(t);
}

static int grow(void **items, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = realloc(*items, ncap * size);
    if (!p) return -1;
    *items = p;
    *cap = ncap;
    return 0;
}

static long list_index(const struct watch_list *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i]->name, name) == 0) return (long)i;
    return -1;
}

int watch_has(const struct watch_list *l, const char *name) { return list_index(l, name) >= 0; }

int watch_add(struct watch_table *t, struct watch_list *l, struct conn *c, const char *name) {
    if (watch_has(l, name)) return 0;
    if (grow((void **)&l->items, &l->cap, l->n, sizeof *l->items) < 0) return -1;
    struct watchers *w = dict_get(t->by_name, name);
    int fresh = w == NULL;
    if (fresh) {
        if (!(w = calloc(1, sizeof *w))) return -1;
        memcpy(w->name, name, strnlen(name, SB_NAME_MAX));
        if (dict_add(t->by_name, w->name, w) < 0) {
            free(w);
            return -1;
        }
    }
    if (grow((void **)&w->items, &w->cap, w->n, sizeof *w->items) < 0) {
        if (fresh) free_watchers(NULL, dict_remove(t->by_name, w->name), NULL);
        return -1;
    }
    w->items[w->n++] = c;
    l->items[l->n++] = w;
    return 1;
}

/* Takes c off w's watchers, and w out of the table when it was the last. */
static void drop_watcher(struct watch_table *t, struct watchers *w, const struct conn *c) {
    for (size_t i = 0; i < w->n; i++) {
        if (w->items[i] == c) {
            w->items[i] = w->items[--w->n];
            break;
        }
    }
    if (w->n == 0) free_watchers(NULL, dict_remove(t->by_name, w->name), NULL);
}

int watch_remove(struct watch_table *t, struct watch_list *l, struct conn *c, const char *name) {
    long i = list_index(l, name);
    if (i < 0) return 0;
    struct watchers *w = l->items[i];
    l->items[i] = l->items[--l->n];
    drop_watcher(t, w, c);
    return 1;
}

void watch_clear(struct watch_table *t, struct watch_list *l, struct conn *c) {
    while (l->n) drop_watcher(t, l->items[--l->n], c);
    free(l->items);
    memset(l, 0, sizeof *l);
}

struct conn *const *watch_watchers(const struct watch_table *t, const char *name, size_t *n) {
    const struct watchers *w = dict_get(t->by_name, name);
    *n = w ? w->n : 0;
    return w ? w->items : NULL;
}

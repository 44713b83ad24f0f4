/* test_watch: who watches whom (app/hub/watch.c).
 *
 * The table answers "who watches bob" in proportion to bob's watchers, and each connection's own list
 * lets it unwatch everyone when it closes; a watcher left behind in the table would be a pointer to a
 * freed connection, so every path (remove, clear, a user watched by many) is checked for what is left. */
#include <stdio.h>

#include "check.h"
#include "watch.h"

/* Stand-ins for connections: the table never dereferences them. */
static char conn_a, conn_b;
#define A ((struct conn *)&conn_a)
#define B ((struct conn *)&conn_b)

static void test_add_remove(void) {
    struct watch_table *t = watch_new();
    struct watch_list la = {0}, lb = {0};
    size_t n = 9;
    CHECK(watch_watchers(t, "bob", &n) == NULL);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(watch_add(t, &la, A, "bob"), 1);
    CHECK_EQ_INT(watch_add(t, &la, A, "bob"), 0); /* twice is once */
    CHECK_EQ_INT(watch_add(t, &lb, B, "bob"), 1);
    CHECK_EQ_INT(watch_add(t, &la, A, "carol"), 1);
    CHECK_EQ_INT(la.n, 2);
    CHECK(watch_has(&la, "carol"));
    CHECK(!watch_has(&lb, "carol"));
    struct conn *const *w = watch_watchers(t, "bob", &n);
    CHECK_EQ_INT(n, 2);
    CHECK((w[0] == A && w[1] == B) || (w[0] == B && w[1] == A));
    CHECK_EQ_INT(watch_remove(t, &la, A, "bob"), 1);
    CHECK_EQ_INT(watch_remove(t, &la, A, "bob"), 0);
    CHECK_EQ_INT(watch_remove(t, &la, A, "nobody"), 0);
    w = watch_watchers(t, "bob", &n);
    CHECK_EQ_INT(n, 1);
    CHECK(w[0] == B);
    watch_clear(t, &lb, B); /* bob's last watcher: bob leaves the table */
    CHECK(watch_watchers(t, "bob", &n) == NULL);
    CHECK_EQ_INT(lb.n, 0);
    CHECK_EQ_INT(watch_watchers(t, "carol", &n) != NULL, 1);
    watch_clear(t, &la, A);
    CHECK(watch_watchers(t, "carol", &n) == NULL);
    watch_free(t);
}

/* A full contact list, and a user watched by many: clearing one list leaves the others whole. */
static void test_many(void) {
    struct watch_table *t = watch_new();
    struct watch_list la = {0}, lb = {0};
    char name[16];
    for (int i = 0; i < WATCH_MAX; i++) {
        snprintf(name, sizeof name, "u%d", i);
        CHECK_EQ_INT(watch_add(t, &la, A, name), 1);
        if (i % 2) CHECK_EQ_INT(watch_add(t, &lb, B, name), 1);
    }
    CHECK_EQ_INT(la.n, WATCH_MAX);
    size_t n = 0;
    watch_watchers(t, "u1", &n);
    CHECK_EQ_INT(n, 2);
    watch_clear(t, &la, A);
    CHECK(watch_watchers(t, "u0", &n) == NULL);
    struct conn *const *w = watch_watchers(t, "u1", &n);
    CHECK_EQ_INT(n, 1);
    CHECK(w[0] == B);
    CHECK_EQ_INT(lb.n, WATCH_MAX / 2);
    watch_clear(t, &lb, B);
    CHECK(watch_watchers(t, "u1", &n) == NULL);
    watch_free(t);
}

int main(void) {
    test_add_remove();
    test_many();
    return check_done();
}

/* test_dict: the string-keyed hash table behind the hub's users and rooms (app/hub/dict.c).
 *
 * The dict owns copies of its keys but never its values, grows by rehashing every chain, and is walked
 * by dict_each for user lists; a lost or duplicated entry after growth would show up as a missing
 * user or a double presence event. Checked here directly, with enough keys to force several doublings. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "dict.h"

#define MANY 5000

static void test_basic(void) {
    struct dict *d = dict_new();
    int a = 1, b = 2;
    char key[8] = "alice";
    CHECK(d != NULL);
    CHECK_EQ_INT(dict_size(d), 0);
    CHECK(dict_get(d, "alice") == NULL);
    CHECK_EQ_INT(dict_add(d, key, &a), 0);
    strcpy(key, "XXXXX"); /* the dict keeps its own copy */
    CHECK_EQ_INT(dict_add(d, "bob", &b), 0);
    CHECK_EQ_INT(dict_size(d), 2);
    CHECK(dict_get(d, "alice") == &a);
    CHECK(dict_get(d, "bob") == &b);
    CHECK(dict_get(d, "XXXXX") == NULL);
    CHECK(dict_get(d, "Alice") == NULL); /* keys are case-sensitive */
    CHECK(dict_get(d, "") == NULL);
    CHECK(dict_remove(d, "alice") == &a);
    CHECK(dict_get(d, "alice") == NULL);
    CHECK(dict_remove(d, "alice") == NULL);
    CHECK(dict_remove(d, "nobody") == NULL);
    CHECK_EQ_INT(dict_size(d), 1);
    CHECK_EQ_INT(dict_add(d, "alice", &b), 0); /* re-add after remove */
    CHECK(dict_get(d, "alice") == &b);
    CHECK_EQ_INT(dict_add(d, "", &a), 0);     /* the empty key is a key like any other */
    CHECK(dict_get(d, "") == &a);
    dict_free(d);
    dict_free(NULL);
}

/* Values are the key's index, cast to a pointer (never dereferenced: the dict does not own them). */
static void *value_of(size_t i) { return (void *)(uintptr_t)(i + 1); }

static void test_growth(void) {
    struct dict *d = dict_new();
    char key[32];
    int missing = 0;
    for (size_t i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "user-%zu", i);
        if (dict_add(d, key, value_of(i)) != 0) missing++;
        if (i % 97 == 0) /* every earlier key still there while the table doubles */
            for (size_t j = 0; j <= i; j += 13) {
                snprintf(key, sizeof key, "user-%zu", j);
                missing += dict_get(d, key) != value_of(j);
            }
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(dict_size(d), MANY);
    for (size_t i = 0; i < MANY; i += 2) {
        snprintf(key, sizeof key, "user-%zu", i);
        missing += dict_remove(d, key) != value_of(i);
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(dict_size(d), MANY / 2);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "user-%zu", i);
        missing += dict_get(d, key) != (i % 2 ? value_of(i) : NULL);
    }
    CHECK_EQ_INT(missing, 0);
    dict_free(d);
}

struct tally {
    size_t calls;
    unsigned char *seen; /* per index: how many times each key was visited */
    int bad;
};

static void visit(const char *key, void *value, void *arg) {
    struct tally *t = arg;
    size_t i;
    t->calls++;
    if (sscanf(key, "k%zu", &i) != 1 || i >= MANY || value != value_of(i)) {
        t->bad++;
        return;
    }
    t->seen[i]++;
}

static void test_each(void) {
    struct dict *d = dict_new();
    struct tally t = {0, calloc(MANY, 1), 0};
    char key[32];
    dict_each(d, visit, &t);
    CHECK_EQ_INT(t.calls, 0);
    for (size_t i = 0; i < MANY; i++) {
        snprintf(key, sizeof key, "k%zu", i);
        dict_add(d, key, value_of(i));
    }
    for (size_t i = 0; i < MANY; i += 3) {
        snprintf(key, sizeof key, "k%zu", i);
        dict_remove(d, key);
    }
    dict_each(d, visit, &t);
    CHECK_EQ_INT(t.calls, dict_size(d));
    CHECK_EQ_INT(t.bad, 0);
    int wrong = 0;
    for (size_t i = 0; i < MANY; i++) wrong += t.seen[i] != (i % 3 ? 1 : 0);
    CHECK_EQ_INT(wrong, 0);
    free(t.seen);
    dict_free(d);
}

int main(void) {
    test_basic();
    test_growth();
    test_each();
    return check_done();
}

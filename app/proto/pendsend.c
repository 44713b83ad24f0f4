/* pendsend: a send's answers, collected (see pendsend.h). */
#include "pendsend.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "metrics.h"

struct target {
    struct pendsend *ps;
    long got; /* hub_send_user's count, or -1: found nowhere; an answer's thread writes it before it
               * lets go of its share */
    char name[SB_NAME_MAX + 1];
};

struct pendsend {
    struct hub *h;
    int shares;                /* atomic: the sender's one, and one per answer awaited; whoever lets go
                                * of the last one completes the send */
    int api;                   /* the server API's: its worker waits (pendsend_wait) */
    int counted;               /* holds a place in the table */
    struct conn *c;            /* the sender: used on its own thread, until pendsend_reply returns */
    char conn_id[HUB_ID_MAX];  /* the sender, as other threads name it */
    struct frame *slot;        /* owned: the reply's place in the sender's outbox */
    pendsend_reply_fn reply;
    cJSON *id;                 /* owned: a copy of the command's id, for a reply that comes later */
    pthread_mutex_t lock;      /* the API's only: guards `done` */
    pthread_cond_t cond;       /* signalled when done */
    int done;
    size_t n, cap;
    struct target t[];
};

/* The sends waiting for the cluster's answer (pendsend.h's bounds). */
static struct {
    pthread_mutex_t lock;  /* guards the fields below */
    struct dict *per_conn; /* conn id -> its sends waiting (intptr_t, > 0); made at the first use */
    size_t waiting;        /* all connections' */
} table = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Sets id's count in the table (0 removes it). The table's lock held; 0 or -1 (out of memory). */
static int table_set(const char *id, intptr_t n) {
    dict_remove(table.per_conn, id);
    return n ? dict_add(table.per_conn, id, (void *)n) : 0;
}

/* A place for one more send of connection `id`: 1, or 0 when a bound is reached. */
static int table_take(const char *id) {
    pthread_mutex_lock(&table.lock);
    if (!table.per_conn) table.per_conn = dict_new();
    intptr_t mine = table.per_conn ? (intptr_t)dict_get(table.per_conn, id) : PENDSEND_PER_CONN;
    int ok = mine < PENDSEND_PER_CONN && table.waiting < PENDSEND_MAX && table_set(id, mine + 1) == 0;
    if (ok) table.waiting++;
    pthread_mutex_unlock(&table.lock);
    return ok;
}

static void table_give_back(const char *id) {
    pthread_mutex_lock(&table.lock);
    intptr_t mine = (intptr_t)dict_get(table.per_conn, id);
    if (mine > 0) table_set(id, mine - 1); /* removing cannot fail */
    table.waiting--;
    pthread_mutex_unlock(&table.lock);
}

size_t pendsend_waiting(void) {
    pthread_mutex_lock(&table.lock);
    size_t n = table.waiting;
    pthread_mutex_unlock(&table.lock);
    return n;
}

struct pendsend *pendsend_new(struct hub *h, struct conn *c, size_t n) {
    struct pendsend *ps = malloc(sizeof *ps + n * sizeof ps->t[0]); /* the sender's (pendsend.h) */
    if (!ps) return NULL;
    memset(ps, 0, sizeof *ps);
    ps->h = h;
    ps->shares = 1;
    ps->api = c == NULL;
    ps->c = c;
    ps->cap = n;
    if (c) memcpy(ps->conn_id, c->id, sizeof ps->conn_id);
    if (ps->api) {
        pthread_mutex_init(&ps->lock, NULL);
        pthread_cond_init(&ps->cond, NULL);
    }
    return ps;
}

void pendsend_free(struct pendsend *ps) {
    if (!ps) return;
    if (ps->counted) table_give_back(ps->conn_id);
    cJSON_Delete(ps->id);
    if (ps->api) {
        pthread_mutex_destroy(&ps->lock);
        pthread_cond_destroy(&ps->cond);
    }
    free(ps);
}

static void tally(struct pendsend *ps, struct pendsend_tally *t) {
    t->delivered = 0;
    t->nmissing = 0;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->t[i].got >= 0) t->delivered += ps->t[i].got;
        else t->missing[t->nmissing++] = ps->t[i].name;
    }
}

/* The reply, once every answer is in. */
static struct frame *make_reply(struct pendsend *ps, const cJSON *id) {
    struct pendsend_tally t;
    tally(ps, &t);
    return ps->reply(&t, id);
}

/* Every answer is in, and the sender let go: the reply goes in its slot (a connection's send), or
 * the waiting worker is woken (the API's). */
static void complete(struct pendsend *ps) {
    if (ps->api) {
        pthread_mutex_lock(&ps->lock);
        ps->done = 1;
        pthread_cond_broadcast(&ps->cond);
        pthread_mutex_unlock(&ps->lock); /* the worker frees ps: not touched from here */
        return;
    }
    struct frame *f = make_reply(ps, ps->id);
    if (ps->slot) hub_fill_reply(ps->h, ps->conn_id, ps->slot, f);
    frame_unref(f);
    pendsend_free(ps);
}

static void let_go(struct pendsend *ps) {
    if (__atomic_sub_fetch(&ps->shares, 1, __ATOMIC_ACQ_REL) == 0) complete(ps);
}

/* The engine's answer for one target (hub_ask_user), on its thread. */
static void answered(void *arg, long nodes) {
    struct target *t = arg;
    t->got = nodes;
    let_go(t->ps);
}

void pendsend_to(struct pendsend *ps, const char *user, struct frame *f) {
    if (ps->n == ps->cap) return;
    struct target *t = &ps->t[ps->n++];
    t->ps = ps;
    t->got = -1;
    snprintf(t->name, sizeof t->name, "%s", user);
    long got = hub_send_user(ps->h, user, f);
    if (got != HUB_UNLISTED) {
        t->got = got;
        return;
    }
    if (!ps->api && !ps->counted && !(ps->counted = table_take(ps->conn_id))) {
        metrics_add(M_CLUSTER_SENDS_REFUSED, 1); /* counts as found nowhere, as when Redis is slow */
        hub_ask_user(ps->h, user, f, NULL, NULL); /* but still goes: its user's stream keeps it */
        return;
    }
    __atomic_add_fetch(&ps->shares, 1, __ATOMIC_ACQ_REL);
    if (hub_ask_user(ps->h, user, f, answered, t) < 0) __atomic_sub_fetch(&ps->shares, 1, __ATOMIC_ACQ_REL);
}

void pendsend_reply(struct pendsend *ps, pendsend_reply_fn reply, const cJSON *id) {
    ps->reply = reply;
    if (__atomic_load_n(&ps->shares, __ATOMIC_ACQUIRE) == 1) { /* nothing awaited, and nothing can be */
        struct frame *f = make_reply(ps, id);
        if (f) hub_reply(ps->h, ps->c, f);
        frame_unref(f);
        pendsend_free(ps);
        return;
    }
    ps->id = id ? cJSON_Duplicate(id, 1) : NULL;
    ps->slot = hub_reserve_reply(ps->h, ps->c); /* NULL: c is closing, the reply would be dropped */
    ps->c = NULL;
    let_go(ps);
}

void pendsend_wait(struct pendsend *ps, struct pendsend_tally *t) {
    if (__atomic_sub_fetch(&ps->shares, 1, __ATOMIC_ACQ_REL) != 0) {
        pthread_mutex_lock(&ps->lock);
        while (!ps->done) pthread_cond_wait(&ps->cond, &ps->lock);
        pthread_mutex_unlock(&ps->lock);
    }
    tally(ps, t);
}

/* userroute: Redis routing by user (see userroute.h). */
#include "userroute.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustercmd.h"
#include "clusterpriv.h"
#include "dict.h"
#include "hubremote.h"
#include "log.h"
#include "metrics.h"

/* A user's route, the value of c->routes (engine thread): absent means not subscribed. */
enum { R_SUBSCRIBING = 1, R_SUBSCRIBED, R_UNSUBSCRIBING };

void uroute_channel(const struct cluster *c, const char *user, char *out) {
    snprintf(out, CLUSTER_CHANNEL_MAX, "%s.user.%s", c->prefix, user);
}

int uroute_confirmed(struct cluster *c, const char *user) {
    pthread_mutex_lock(&c->lock);
    int yes = !c->up || dict_get(c->routed, user) != NULL;
    pthread_mutex_unlock(&c->lock);
    return yes;
}

static int state_of(struct cluster *c, const char *user) { return (int)(intptr_t)dict_get(c->routes, user); }

static void set_state(struct cluster *c, const char *user, int state) {
    dict_remove(c->routes, user);
    if (state && dict_add(c->routes, user, (void *)(intptr_t)state) < 0) log_warn("cluster: out of memory: route of %s", user);
}

/* SUBSCRIBE or UNSUBSCRIBE on the subscriber connection; its reply comes to c->on_message. */
static int sub_command(struct cluster *c, const char *verb, const char *user) {
    char channel[CLUSTER_CHANNEL_MAX];
    uroute_channel(c, user, channel);
    const char *argv[] = {verb, channel};
    size_t lens[] = {strlen(verb), strlen(channel)};
    return c->sub && redisAsyncCommandArgv(c->sub, c->on_message, NULL, 2, argv, lens) == REDIS_OK ? 0 : -1;
}

void uroute_sync(struct cluster *c, const char *user) {
    if (!c->sub_ready) return; /* uroute_all subscribes the mirror once connected */
    pthread_mutex_lock(&c->lock);
    int want = dict_get(c->local, user) != NULL;
    pthread_mutex_unlock(&c->lock);
    int state = state_of(c, user);
    if (want && !state) {
        if (sub_command(c, "SUBSCRIBE", user) == 0) set_state(c, user, R_SUBSCRIBING);
        else hub_route_ready(c->hub, user); /* the tick would let it go anyway: no need to wait */
    } else if (!want && state == R_SUBSCRIBED) {
        pthread_mutex_lock(&c->lock);
        dict_remove(c->routed, user);
        pthread_mutex_unlock(&c->lock);
        if (sub_command(c, "UNSUBSCRIBE", user) == 0) set_state(c, user, R_UNSUBSCRIBING);
    } /* else settled, or a reply is awaited: uroute_on_reply syncs again */
}

static void sync_each(const char *key, void *value, void *arg) {
    struct names *x = arg;
    char *copy = x->n < x->cap ? strdup(key) : NULL;
    if (copy) x->v[x->n++] = copy;
}

void uroute_all(struct cluster *c) {
    pthread_mutex_lock(&c->lock);
    size_t cap = dict_size(c->local);
    struct names x = {malloc((cap + 1) * sizeof(char *)), 0, cap};
    if (x.v) dict_each(c->local, sync_each, &x);
    pthread_mutex_unlock(&c->lock);
    if (!x.v) log_warn("cluster: out of memory: users are not routed again");
    for (size_t i = 0; i < x.n; i++) uroute_sync(c, x.v[i]);
    names_free(&x);
}

static void collect_waiting(const char *key, void *value, void *arg) {
    struct names *x = arg;
    char *copy = (intptr_t)value == R_SUBSCRIBING && x->n < x->cap ? strdup(key) : NULL;
    if (copy) x->v[x->n++] = copy;
}

void uroute_reset(struct cluster *c) {
    size_t cap = dict_size(c->routes);
    struct names waiting = {malloc((cap + 1) * sizeof(char *)), 0, cap};
    if (waiting.v) dict_each(c->routes, collect_waiting, &waiting);
    struct dict *fresh = dict_new(), *fresh_routed = dict_new();
    if (fresh && fresh_routed) {
        dict_free(c->routes);
        c->routes = fresh;
        pthread_mutex_lock(&c->lock);
        dict_free(c->routed);
        c->routed = fresh_routed;
        pthread_mutex_unlock(&c->lock);
    } else {
        dict_free(fresh);
        dict_free(fresh_routed);
        log_warn("cluster: out of memory: stale routes kept");
    }
    for (size_t i = 0; i < waiting.n; i++) hub_route_ready(c->hub, waiting.v[i]);
    names_free(&waiting);
}

void uroute_on_reply(struct cluster *c, const char *channel, size_t len, int sub) {
    char head[CLUSTER_CHANNEL_MAX], user[SB_NAME_MAX + 1];
    int hlen = snprintf(head, sizeof head, "%s.user.", c->prefix);
    if (hlen < 0 || len <= (size_t)hlen || len - (size_t)hlen > SB_NAME_MAX || memcmp(channel, head, (size_t)hlen) != 0)
        return; /* one of the node's own channels */
    snprintf(user, sizeof user, "%.*s", (int)(len - (size_t)hlen), channel + hlen);
    if (sub) {
        set_state(c, user, R_SUBSCRIBED);
        pthread_mutex_lock(&c->lock);
        if (!dict_get(c->routed, user) && dict_add(c->routed, user, c) < 0) log_warn("cluster: out of memory: %s", user);
        pthread_mutex_unlock(&c->lock);
        hub_route_ready(c->hub, user);
    } else {
        set_state(c, user, 0);
    }
    uroute_sync(c, user); /* the user may have left or come back meanwhile */
}

/* ---- a send to a user not listed here ---- */

struct uroute_ask {
    struct uroute_ask *prev, *next; /* c->asks while `listed`; the engine's lock */
    int listed;                     /* not answered yet; the engine's lock */
    int64_t deadline_ms;            /* hub_now_ms() by which Redis must have answered; set once */
    void (*answer)(void *arg, long nodes);
    void *arg;
};

struct uroute_ask *uroute_ask_new(void (*answer)(void *arg, long nodes), void *arg) {
    struct uroute_ask *a = calloc(1, sizeof *a); /* the caller's, then the engine's (userroute.h) */
    if (!a) return NULL;
    a->answer = answer;
    a->arg = arg;
    return a;
}

/* The engine's lock held. All deadlines are the same delay after their ask's link, so the list is in
 * deadline order. */
void uroute_ask_link(struct cluster *c, struct uroute_ask *a) {
    a->deadline_ms = hub_now_ms() + UROUTE_ASK_WAIT_MS;
    a->listed = 1;
    a->prev = c->asks_tail;
    a->next = NULL;
    if (c->asks_tail) c->asks_tail->next = a;
    else c->asks = a;
    c->asks_tail = a;
}

static void unlink_ask(struct cluster *c, struct uroute_ask *a) {
    if (a->prev) a->prev->next = a->next;
    else c->asks = a->next;
    if (a->next) a->next->prev = a->prev;
    else c->asks_tail = a->prev;
    a->prev = a->next = NULL;
    a->listed = 0;
}

/* Tells a's answer unless it was told already (it expired). Engine thread, without the lock. */
static void tell(struct cluster *c, struct uroute_ask *a, long nodes) {
    pthread_mutex_lock(&c->lock);
    int listed = a->listed;
    if (listed) unlink_ask(c, a);
    pthread_mutex_unlock(&c->lock);
    if (!listed) return;
    if (nodes == UROUTE_UNANSWERED) metrics_add(M_CLUSTER_ASKS_UNANSWERED, 1);
    a->answer(a->arg, nodes > 0 ? nodes : -1);
}

void uroute_ask_drop(struct cluster *c, struct uroute_ask *a) {
    tell(c, a, UROUTE_UNANSWERED);
    free(a);
}

void uroute_on_publish(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    struct uroute_ask *a = privdata;
    cluster_on_reply(ac, r, NULL);
    /* hiredis calls this once, with no reply when the connection went */
    uroute_ask_done(c, a, reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : UROUTE_UNANSWERED);
}

void uroute_ask_done(struct cluster *c, struct uroute_ask *a, long nodes) {
    tell(c, a, nodes);
    free(a);
}

/* Only the engine thread frees an ask, so one expired here stays valid until its reply frees it. */
int64_t uroute_ask_expire(struct cluster *c, int64_t now_ms) {
    for (;;) {
        pthread_mutex_lock(&c->lock);
        struct uroute_ask *a = c->asks;
        int64_t due = a ? a->deadline_ms : INT64_MAX;
        pthread_mutex_unlock(&c->lock);
        if (due > now_ms) return due;
        tell(c, a, UROUTE_UNANSWERED);
    }
}

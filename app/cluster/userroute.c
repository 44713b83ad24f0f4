/* userroute: Redis routing by user (see userroute.h). */
#include "userroute.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    int refs;    /* the caller's and the engine's; the engine's lock */
    int done;
    long nodes;
};

struct uroute_ask *uroute_ask_new(void) {
    struct uroute_ask *a = calloc(1, sizeof *a);
    if (a) a->refs = 2;
    return a;
}

/* Drops one reference; the engine's lock held. */
static void ask_unref(struct uroute_ask *a) {
    if (--a->refs == 0) free(a);
}

long uroute_ask_wait(struct cluster *c, struct uroute_ask *a) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)UROUTE_ASK_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&c->lock);
    int r = 0;
    while (!a->done && r != ETIMEDOUT) r = pthread_cond_timedwait(&c->asked, &c->lock, &until);
    long nodes = a->done ? a->nodes : UROUTE_UNANSWERED;
    if (nodes == UROUTE_UNANSWERED) metrics_add(M_CLUSTER_ASKS_UNANSWERED, 1);
    ask_unref(a);
    pthread_mutex_unlock(&c->lock);
    return nodes > 0 ? nodes : -1;
}

void uroute_ask_done(struct cluster *c, struct uroute_ask *a, long nodes) {
    pthread_mutex_lock(&c->lock);
    a->done = 1;
    a->nodes = nodes;
    pthread_cond_broadcast(&c->asked);
    ask_unref(a);
    pthread_mutex_unlock(&c->lock);
}

void uroute_on_publish(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    cluster_on_reply(ac, r, NULL);
    uroute_ask_done(c, privdata, reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : UROUTE_UNANSWERED);
}

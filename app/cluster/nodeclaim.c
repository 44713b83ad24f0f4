/* nodeclaim: is this node's id free in the cluster (see nodeclaim.h). */
#include "nodeclaim.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define NODECLAIM_TIMEOUT_S 2       /* to connect, and for each command */
#define NODECLAIM_POLL_MS 200       /* between two readings of the hash's PTTL */
#define NODECLAIM_REFRESH_MS 100    /* a PTTL that rose by more than this was refreshed: its node lives */
#define NODECLAIM_NO_KEY (-2)       /* PTTL's answer for a missing key */
#define NODECLAIM_FAILED (-3)       /* ours: the command failed */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One command whose answer must not be an error; 0 or -1 with the reason in err. */
static int command_ok(redisContext *rc, char *err, size_t cap, int argc, const char **argv) {
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok) snprintf(err, cap, "%s: %s", argv[0], r ? r->str : rc->errstr);
    if (r) freeReplyObject(r);
    return ok ? 0 : -1;
}

static redisContext *open_redis(const struct redis_url *u, char *err, size_t cap) {
    struct timeval tv = {NODECLAIM_TIMEOUT_S, 0};
    redisContext *rc = redisConnectWithTimeout(u->host, u->port, tv);
    if (!rc || rc->err) {
        snprintf(err, cap, "%s", rc ? rc->errstr : "out of memory");
        if (rc) redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    char db[16];
    snprintf(db, sizeof db, "%d", u->db);
    const char *auth2[] = {"AUTH", u->password}, *auth3[] = {"AUTH", u->user, u->password};
    const char *select[] = {"SELECT", db}, *ping[] = {"PING"};
    int ok = !u->password[0] || (u->user[0] ? command_ok(rc, err, cap, 3, auth3) : command_ok(rc, err, cap, 2, auth2)) == 0;
    ok = ok && (!u->db || command_ok(rc, err, cap, 2, select) == 0) && command_ok(rc, err, cap, 1, ping) == 0;
    if (!ok) {
        redisFree(rc);
        return NULL;
    }
    return rc;
}

static long long pttl(redisContext *rc, const char *key) {
    const char *argv[] = {"PTTL", key};
    redisReply *r = redisCommandArgv(rc, 2, argv, NULL);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : NODECLAIM_FAILED;
    if (r) freeReplyObject(r);
    return v;
}

/* Watches a held id's hash until it vanishes, is refreshed, or outlives its TTL. */
static enum nodeclaim_result watch(redisContext *rc, const char *key, const char *node, long long first, long ttl_s,
                                   char *err, size_t cap) {
    long long prev = first, cur = first;
    long long until = now_ms() + (first >= 0 && first < ttl_s * 1000 ? first : ttl_s * 1000) + 1000;
    log_warn("cluster: node id %s is held in Redis (%s expires in %lld ms): waiting for it to expire; "
             "refusing to start if its node is alive", node, key, first);
    while (cur >= 0 && cur <= prev + NODECLAIM_REFRESH_MS && now_ms() < until) {
        usleep(NODECLAIM_POLL_MS * 1000);
        prev = cur;
        cur = pttl(rc, key);
    }
    if (cur == NODECLAIM_NO_KEY) {
        log_info("cluster: node id %s: the previous holder's presence expired: taking the id over", node);
        return NODECLAIM_FREE;
    }
    if (cur == NODECLAIM_FAILED) {
        snprintf(err, cap, "PTTL: %s", rc->err ? rc->errstr : "unexpected reply");
        return NODECLAIM_UNREACHABLE;
    }
    snprintf(err, cap, "--node-id %s is in use by a live node of this cluster (its presence %s is being "
                       "refreshed): give each node its own --node-id", node, key);
    return NODECLAIM_TAKEN;
}

enum nodeclaim_result nodeclaim_check(const struct redis_url *u, const char *prefix, const char *node, long node_ttl_s,
                                      char *err, size_t cap) {
    char key[256];
    snprintf(key, sizeof key, "%s.node.%s", prefix, node);
    redisContext *rc = open_redis(u, err, cap);
    if (!rc) return NODECLAIM_UNREACHABLE;
    long long first = pttl(rc, key);
    enum nodeclaim_result r = NODECLAIM_FREE;
    if (first == NODECLAIM_FAILED) {
        snprintf(err, cap, "PTTL: %s", rc->err ? rc->errstr : "unexpected reply");
        r = NODECLAIM_UNREACHABLE;
    } else if (first != NODECLAIM_NO_KEY) {
        r = watch(rc, key, node, first, node_ttl_s, err, cap);
    }
    redisFree(rc);
    return r;
}

/* clustercmd: the engine's pipelined Redis commands (see clustercmd.h). */
#include "clustercmd.h"

#include <hiredis/hiredis.h>
#include <string.h>

#include "clusterpriv.h"
#include "hub.h"
#include "log.h"

static void inflight_add(struct cluster *c, long d) {
    __atomic_store_n(&c->inflight, (size_t)((long)__atomic_load_n(&c->inflight, __ATOMIC_RELAXED) + d), __ATOMIC_RELAXED);
}

void cluster_on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    redisReply *reply = r;
    inflight_add(c, -1);
    if (reply) c->last_reply_ms = hub_now_ms();
    if (reply && reply->type == REDIS_REPLY_ERROR) log_warn("cluster: redis: %s", reply->str);
}

int cluster_command(struct cluster *c, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                    const size_t *lens) {
    size_t own[8];
    if (!lens) {
        for (int i = 0; i < argc && i < 8; i++) own[i] = strlen(argv[i]);
        lens = own;
    }
    if (!c->cmd || redisAsyncCommandArgv(c->cmd, fn ? fn : cluster_on_reply, privdata, argc, argv, lens) != REDIS_OK)
        return -1;
    inflight_add(c, 1);
    return 0;
}

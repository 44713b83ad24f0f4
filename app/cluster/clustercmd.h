/* clustercmd: the cluster engine's Redis commands, pipelined on its command connection and counted.
 *
 * Both halves of the engine send commands: cluster.c (publishes, its goodbye) and clusterpresence.c
 * (this node's hash, the others' read back). This is the one place that sends them, counts those
 * waiting for a reply (the engine bounds them: CLUSTER_INFLIGHT_MAX) and notes when Redis last
 * answered (a Redis that stops answering is treated as gone). Split from cluster.c so that the
 * presence protocol needs the command connection only, not the engine that uses it: cluster.c calls
 * clusterpresence.c, and both call this, never the other way round.
 *
 * Threads: the engine thread only (it owns the connection); `inflight` is also read as a gauge. */
#ifndef SB_CLUSTERCMD_H
#define SB_CLUSTERCMD_H

#include <hiredis/async.h>
#include <stddef.h>

struct cluster;

/* Sends a command on the command connection, pipelined, counted in flight until answered; fn NULL
 * means cluster_on_reply. Argument lengths are strlen's where lens is NULL. 0, or -1 when it could not
 * be sent (no connection): fn is then never called, and privdata is still the caller's. */
int cluster_command(struct cluster *c, redisCallbackFn *fn, void *privdata, int argc, const char **argv,
                    const size_t *lens);
/* The default reply callback: counts the reply, notes that Redis answers, logs an error reply. Reply
 * callbacks of their own call it first. */
void cluster_on_reply(redisAsyncContext *ac, void *r, void *privdata);

#endif

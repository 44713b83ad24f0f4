/* nodeclaim: at start, before a node joins, is its --node-id free in the cluster's Redis?
 *
 * Two live nodes under one id would overwrite each other's presence hash and each take the other's
 * messages, silently. So a node whose id is still held refuses to start, unless the holder is dead:
 * a live node refreshes its hash's expiry every second, a dead one (killed, crashed, cut off) lets it
 * run out within --node-ttl. The check watches the hash's PTTL: it vanishes (dead holder: take over),
 * or it goes up (a refresh: a live holder, refuse), or it is still there after its own TTL (refuse).
 * A restart after a crash therefore waits at most --node-ttl; after a normal stop (which deletes the
 * hash) not at all. Synchronous hiredis, bounded: each command times out, the whole wait is bounded by
 * the TTL. An unreachable Redis is not fatal: the node starts degraded and keeps reconnecting. */
#ifndef SB_NODECLAIM_H
#define SB_NODECLAIM_H

#include <stddef.h>

#include "clustermsg.h"

enum nodeclaim_result {
    NODECLAIM_FREE,        /* nobody holds the id, or its dead holder's hash expired */
    NODECLAIM_UNREACHABLE, /* Redis did not answer: err says why */
    NODECLAIM_TAKEN,       /* a live node holds the id: err says so */
};

/* Checks PREFIX.node.NODE in the Redis at u, waiting up to node_ttl_s + 1 s for a dead holder. */
enum nodeclaim_result nodeclaim_check(const struct redis_url *u, const char *prefix, const char *node,
                                      long node_ttl_s, char *err, size_t cap);

#endif

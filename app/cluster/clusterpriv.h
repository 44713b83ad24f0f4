/* clusterpriv: the cluster engine's state, shared by the engine's files and no other module.
 *
 * The engine (cluster.h) is one structure carried out by a few files: cluster.c (the hub's hooks, the
 * queue, inbound messages, the Redis connections and the engine thread), clusterpresence.c (this
 * node's presence in Redis and the other nodes' read back into the peer table), clusterhist.c (streams'
 * positions in Redis) and clustercmd.c (the commands they send). Locks as cluster.h
 * says: `lock` guards the fields marked so; the fields under "The engine thread only" are touched by
 * that thread alone, which is the one calling everything declared here. */
#ifndef SB_CLUSTERPRIV_H
#define SB_CLUSTERPRIV_H

#include <hiredis/async.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "clustermsg.h"
#include "dict.h"
#include "outbox.h"
#include "peers.h"
#include "redisev.h"
#include "userroute.h"

enum item_kind { IT_PUBLISH, IT_ASK, IT_USER_UP, IT_USER_DOWN, IT_ROOM_UP, IT_ROOM_DOWN, IT_MEMBER_UP, IT_MEMBER_DOWN, IT_READ };
#define MEMBER_KEY_MAX (2 * SB_NAME_MAX + 2) /* "ROOM USER" and its NUL */

/* One thing for the engine thread to tell Redis. IT_PUBLISH and IT_ASK (a PUBLISH whose reply `ask`
 * is told, userroute.h): buf holds the channel then the payload; with `stream` (a message of a
 * stream, clusterhist.h) the channel, then its stream's key (k_len), the payload's "NODE\nTARGET\n"
 * (h_len) and the message's text, b_len covering all three. IT_READ: buf holds clusterhist.c's
 * read_ask. The others: buf holds the user's or room's
 * name, or a member's "ROOM USER". */
struct item {
    struct item *next;
    enum item_kind kind;
    struct uroute_ask *ask;
    size_t a_len, b_len;
    char stream;          /* 0, or the message kind its stream's script publishes (clustermsg.h's u) */
    size_t k_len, h_len;  /* with `stream` */
    char buf[];
};

struct cluster {
    struct hub *hub;
    struct outbox *ob;
    char prefix[CLUSTER_PREFIX_MAX + 1];
    char node[SB_NAME_MAX + 1];
    char key[CLUSTER_CHANNEL_MAX], nodes_key[CLUSTER_CHANNEL_MAX];
    char ch_all[CLUSTER_CHANNEL_MAX], ch_presence[CLUSTER_CHANNEL_MAX];
    long ttl_ms;
    long history_ttl_s;   /* 0: no streams in Redis (clusterhist.h) */
    char script_sha[41];  /* the stream script's SHA1, hex (clusterhist.h) */
    char read_sha[41];    /* the read script's */
    long history_size;    /* messages kept per stream */
    struct redis_url url;
    int epfd, wakefd;
    pthread_t thread;
    int started;

    pthread_mutex_t lock; /* guards the fields down to `asks_tail` */
    struct item *q_head, *q_tail;
    size_t q_bytes;
    int up;               /* both connections ready: hooks queue; else they drop */
    int stopping;
    int reregister;       /* a presence change was not queued: register every local user again */
    struct dict *local;   /* this node's users; values unused */
    struct dict *local_rooms; /* this node's rooms with members; values unused */
    struct dict *local_members; /* "ROOM USER" for each user with a connection in ROOM here; values unused */
    struct dict *routed;  /* the users whose channel Redis confirmed subscribed (userroute.h); values unused */
    struct uroute_ask *asks, *asks_tail; /* the asks not answered yet, oldest first (userroute.h) */

    struct peers *peers;  /* the other nodes' presence; its own lock */
    size_t inflight;      /* atomic reads (gauges); written by the engine thread */

    /* The engine thread only: */
    redisAsyncContext *cmd, *sub;
    redisCallbackFn *on_message; /* the subscriber connection's callback, for every channel */
    struct dict *routes;  /* user -> its route's state (userroute.c) */
    struct redis_ev cmd_ev, sub_ev;
    int cmd_ready, sub_ready, reset, attempts;
    int64_t retry_at, backoff_ms, next_tick;
    int64_t last_reply_ms;  /* when Redis last answered a command: a Redis that stops answering for
                             * --node-ttl is treated as gone (reconnect), not waited for */
    uint64_t seq;
    uint64_t rng;         /* the epochs drawn for new streams (clusterhist.c) */
    struct outbox_batch batch;
};

#endif

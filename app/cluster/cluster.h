/* cluster: the Redis engine that makes several switchboard nodes one server (--redis).
 *
 * The hub calls it through struct hub_engine (hub.h) at its few delivery and presence points; it calls
 * the hub back (hub_deliver_local_*, hub_remote_user) with what other nodes sent. Design, after
 * Socket.IO's Redis adapter and Centrifugo's Redis engine:
 *   - channels: PREFIX.user.NAME, one per user, subscribed by the nodes holding the user, carries
 *     the messages sent to that user: one PUBLISH reaches exactly those nodes, and the welcome waits
 *     for the subscription (userroute.h), so it reaches a connection from its welcome on; PREFIX.all
 *     carries broadcasts and room messages (every node delivers a room message to its own members, as
 *     Socket.IO's adapter does, so a member who just joined elsewhere misses nothing while the join
 *     crosses Redis) and the HTTP API's disconnects (each node closes the user's connections it has);
 *     PREFIX.presence carries users, rooms and room members coming to and going from nodes (the rooms
 *     for `delivered`, the members for the API's cluster-wide room listing). Payloads: clustermsg.h. The receiving node builds the frame once for
 *     all its recipients.
 *   - presence: a hash PREFIX.node.ID per node (field "" = its presence sequence number, one field per
 *     user online there, one "#ROOM" per room with members there, one "#ROOM USER" per user with a
 *     connection in that room there) that expires --node-ttl minus a second after the node last refreshed it, and a
 *     set PREFIX.nodes of node ids. Every second each node refreshes its hash, re-reads every other
 *     node's hash (a node whose hash expired is dead: its users leave) and applies the J/L events in
 *     between, ordered by the sequence numbers. The table is kept here and in the hub, so a `users`
 *     never waits on Redis; it also counts the nodes in `delivered`.
 *   - streams (history on): a message goes through a Lua script (clusterhist.h) that gives it its
 *     position in its stream (the user's, the room's, the broadcast one) and publishes it on its
 *     channel as above, to the sender's node too, which delivers it to its protocol 2 connections
 *     then.
 *   - ordering: one command connection publishes, one subscriber connection per node receives, and
 *     Redis keeps the order of one connection's publishes at each subscriber, so each sender's messages
 *     arrive in order at every receiver.
 *
 * Threads: one engine thread runs its own epoll set with both Redis connections (hiredis's async API,
 * redisev.h), pipelined, plus an eventfd and the once-a-second timer. The hub's hooks run on the
 * client loops and only queue (bounded: CLUSTER_QUEUE_MAX bytes, then dropped and counted), so a slow
 * or stopped Redis never holds up a client's reads or local deliveries; even a send to a user this
 * node does not list, whose answer is PUBLISH's reply, is answered later from this thread (or when
 * UROUTE_ASK_WAIT_MS passes), never waited for (userroute.h, pendsend.h). Redis commands waiting for a
 * reply are bounded too (CLUSTER_INFLIGHT_MAX): past it the queue fills instead. While Redis is down
 * cross-node messages are dropped (counted) and the node serves its own clients; it reconnects with
 * backoff (100 ms doubling to 5 s), subscribes again and registers its users again.
 *
 * Locks: the engine's `lock` guards its queue, its up/down state and the mirror of this node's users
 * and rooms, and the asks not answered yet; the other nodes' presence is a table of its own (peers.h, its own lock). Both are taken
 * after the hub's lock (the hooks run under it) and never held while calling the hub. */
#ifndef SB_CLUSTER_H
#define SB_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "outbox.h"

#define CLUSTER_QUEUE_MAX (8u << 20)     /* bytes queued for Redis; past it messages are dropped */
#define CLUSTER_INFLIGHT_MAX 10000       /* commands sent to Redis and not yet answered */
#define CLUSTER_TICK_MS 1000             /* presence refresh and resync period */

struct cluster_options {
    const char *url;      /* redis://[[user]:password@]host[:port][/db] */
    const char *prefix;   /* key and channel prefix */
    const char *node_id;  /* a name (names.h), unique in the cluster */
    long node_ttl_s;      /* a silent node's users leave within this */
    long history_ttl_s;   /* --history-ttl; 0 (--history-size 0): messages carry no stream positions */
    long history_size;    /* --history-size: messages each stream keeps in Redis */
};

struct cluster;

/* Starts the engine thread (inbound deliveries go through ob) (it connects in the background: a node starts even if Redis is down) and
 * hooks it into the hub. NULL with a reason in err on a bad option or out of memory. */
struct cluster *cluster_start(struct hub *h, struct outbox *ob, const struct cluster_options *o, char *err, size_t cap);
/* Sends what is queued, removes this node from the presence table (bounded wait), stops the thread and
 * frees everything. Call once no hub hook can run any more (after loops_stop and server_stop) and
 * before the hub and the outbox are freed. */
void cluster_stop(struct cluster *c);

#endif

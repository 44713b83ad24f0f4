/* clusterpresence: the cluster's presence in Redis, this node's written and the others' read back.
 *
 * Each node keeps a hash PREFIX.node.ID (cluster.h says its fields) that expires unless refreshed, is
 * listed in the set PREFIX.nodes, and announces each change on PREFIX.presence. This file writes this
 * node's part (a change, the whole state again after a reconnect, the once-a-second refresh) and
 * applies the others' (events, hashes read back, nodes that expired or left) to the peer table
 * (peers.h), telling the hub (hubremote.h) about users that appear or disappear. Split from cluster.c,
 * which keeps the queue, the message routing and the connections: this is the presence protocol. It
 * sends its commands through clustercmd.h and never calls cluster.c.
 *
 * Threads: every function runs on the engine thread, which owns the Redis connections; they take the
 * engine's lock only to read this node's mirror, and never hold it while calling the hub. */
#ifndef SB_CLUSTERPRESENCE_H
#define SB_CLUSTERPRESENCE_H

#include <hiredis/async.h>
#include <stdint.h>

#include "clustermsg.h"

struct cluster;

/* A J, L, E, X, M or N event from another node, into the peer table (and the hub for a user). */
void cpres_node_event(struct cluster *c, const struct cluster_msg *m);
/* Reads node `id`'s hash (after its S event, or on the tick) and takes it as its whole state. */
void cpres_fetch_node(struct cluster *c, const char *id);
/* A user, room (room = 1) or room member ("ROOM USER", room = PEERS_MEMBER) of this node came (up)
 * or went: the hash, atomically, then the event. */
void cpres_change(struct cluster *c, const char *name, int room, int up);
/* Writes this node's whole presence again (after a reconnect, or when a change could not be queued). */
void cpres_register(struct cluster *c);
/* Once a second while connected: keeps this node alive, re-reads every other node's presence. */
void cpres_tick(struct cluster *c);
/* Publishes a presence event of kind K about `user` (or none) at this node's current sequence number. */
void cpres_announce(struct cluster *c, char kind, const char *user);

#endif

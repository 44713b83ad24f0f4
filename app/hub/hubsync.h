/* hubsync: a protocol 2 connection's place in its streams while history lives in Redis (--redis with
 * history on), so that what it recovers and what it gets live add up to each message exactly once.
 *
 * With one node, the hub's exclusive lock makes a replay atomic with its subscription (hubhist.h).
 * Across nodes the positions and the history are Redis's (clusterhist.h), read asynchronously, while
 * live messages keep arriving from Redis on another connection. So each stream of such a connection
 * (its user's, the broadcast one, each room it joins) has a gate. From the welcome or the join until
 * Redis answers, the gate is shut: the welcome's or `joined`'s place is reserved in the outbox (a slot,
 * outbox.h) so the connection's order holds, and live messages of that stream are left out, remembering
 * the highest offset left out. The read answers with the stream's position and, when asked, every
 * message after the client's `since`; they fill the slot (welcome or joined, then the replay). Every
 * message Redis published before the read is in what it read (the script that positions a message also
 * stores it), so only messages past the read's position can have been left out: if one was, the gate
 * reads again from there (at most HUBS_REREADS_MAX times, then the connection is closed 1013 and comes
 * back), else it opens at that position and lets through only later offsets, so a live message read
 * already is never delivered twice; and an open gate that sees an offset jump (a message lost between
 * Redis and this node: its subscriber connection dropped and came back) reads the hole the same way. The user's stream is read only once this node's route to the user
 * is confirmed (hub.c's held welcome): from then on every later message of the user reaches this node.
 *
 * Threads and locks: all of it runs under the hub lock: exclusive for the welcome, joins, leaves,
 * removal and the engine's answers (hub_streams_read, hubremote.h), shared for hubs_pass, which only
 * the engine thread calls (it is the one thread that delivers positioned messages), so a gate has one
 * writer at a time. Other threads name the connection by its id (the engine's answer), never by a
 * pointer. */
#ifndef SB_HUBSYNC_H
#define SB_HUBSYNC_H

#include "hubpriv.h"

#define HUBS_REREADS_MAX 16 /* reads after the first before a stream that never settles gives up */

/* 1 when c's streams go through gates: history in Redis and a protocol 2 connection. */
int hubs_on(const struct hub *h, const struct conn *c);
/* In place of the welcome: reserves its place, shuts the user's and broadcast gates and reads them
 * (now if `routed`, else at hubs_released). Exclusive lock. */
void hubs_welcome(struct hub *h, struct conn *c, int routed);
/* c's held welcome was let go (hubp_release): its read, if it waited for that. Exclusive lock. */
void hubs_released(struct hub *h, struct conn *c);
/* After c joined `room`: reserves `joined`'s place, shuts the room's gate and reads it. Exclusive lock. */
void hubs_joined(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since);
/* c left `room`. Exclusive lock. */
void hubs_left(struct conn *c, const char *room);
/* Whether a message of stream (kind, name) at `pos` goes to c now (its own publish and broadcast too,
 * which the caller then leaves out: the gate sees every offset). A hole (an offset past the next, which
 * only a message lost on its way from Redis makes: Redis hands every node every message of the streams
 * it serves) is read from Redis like a recovery. Shared lock, engine thread. */
int hubs_pass(struct hub *h, struct conn *c, char kind, const char *name, const struct hist_pos *pos);
/* Frees c's gates, letting go of the places they reserved. Exclusive lock. */
void hubs_free(struct hub *h, struct conn *c);

#endif

/* userroute: Redis routing by user, so that a welcome is a promise cluster-wide.
 *
 * Each node SUBSCRIBEs to PREFIX.user.NAME for every user it holds a connection of, and a send to a
 * user is one PUBLISH to that channel: Redis delivers it to exactly the nodes subscribed, however
 * late the senders' presence tables (peers.h) learn of them. A node welcomes the first connection of
 * a user only once Redis confirmed its SUBSCRIBE (the hub holds the welcome, hub.h's user_routed, and
 * hub_route_ready lets it go), so from the welcome on, every PUBLISH to the user reaches this node.
 * PUBLISH's reply, the number of subscribers, is the number of nodes holding the user: a send to a
 * user the sender's node does not list asks it (uroute_ask_*) and answers `not_found` only when no
 * node holds the user. Centrifugo routes its channels through Redis the same way.
 *
 * One SUBSCRIBE or UNSUBSCRIBE per user is in flight at a time: hiredis keeps one callback per channel
 * and drops it at an UNSUBSCRIBE's reply, so an UNSUBSCRIBE then SUBSCRIBE in flight together would
 * leave the channel without one. The state per user settles toward what this node's mirror of its
 * users (struct cluster's `local`) wants each time a reply comes.
 *
 * Threads: uroute_confirmed and the ask's caller side run on any thread (the engine's lock); the rest
 * on the engine thread, which owns the subscriber connection and calls the hub without that lock. */
#ifndef SB_USERROUTE_H
#define SB_USERROUTE_H

#include <hiredis/async.h>
#include <stddef.h>

struct cluster;
struct uroute_ask;

#define UROUTE_ASK_WAIT_MS 200 /* how long a send to a user not listed here waits for PUBLISH's reply */

/* PREFIX.user.NAME into out (CLUSTER_CHANNEL_MAX bytes). */
void uroute_channel(const struct cluster *c, const char *user, char *out);
/* 1 when `user`'s channel is confirmed subscribed here, or the engine is not up (no promise to keep
 * waiting for: the welcome goes at once, degraded). Any thread; takes the engine's lock. */
int uroute_confirmed(struct cluster *c, const char *user);

/* Engine thread: subscribe or unsubscribe `user` as the local mirror now wants. */
void uroute_sync(struct cluster *c, const char *user);
/* Engine thread: after a (re)connect, subscribes every user of the local mirror. */
void uroute_all(struct cluster *c);
/* Engine thread: the subscriber connection is gone: every route is forgotten, and the welcomes that
 * waited for one go out now (degraded). */
void uroute_reset(struct cluster *c);
/* Engine thread: a subscribe (sub = 1) or unsubscribe (0) reply for `channel` came. */
void uroute_on_reply(struct cluster *c, const char *channel, size_t len, int sub);

/* A send to a user not listed here, waiting for PUBLISH's reply: the caller makes it (NULL when out of
 * memory), the engine thread sends the PUBLISH with uroute_on_publish as its callback (privdata: the
 * ask) or calls uroute_ask_done(UROUTE_UNANSWERED) when it cannot, and the caller waits (bounded) with
 * uroute_ask_wait, which returns the nodes that took it, or -1 (none, or no answer in time). */
#define UROUTE_UNANSWERED (-2L) /* Redis did not tell: counted in switchboard_cluster_asks_unanswered_total */
struct uroute_ask *uroute_ask_new(void);
long uroute_ask_wait(struct cluster *c, struct uroute_ask *a);
void uroute_ask_done(struct cluster *c, struct uroute_ask *a, long nodes);
void uroute_on_publish(redisAsyncContext *ac, void *r, void *privdata);

#endif

/* userroute: Redis routing by user, so that a welcome is a promise cluster-wide.
 *
 * Each node SUBSCRIBEs to PREFIX.user.NAME for every user it holds a connection of, and a send to a
 * user is one PUBLISH to that channel: Redis delivers it to exactly the nodes subscribed, however
 * late the senders' presence tables (peers.h) learn of them. A node welcomes the first connection of
 * a user only once Redis confirmed its SUBSCRIBE (the hub holds the welcome, hub.h's user_routed, and
 * hub_route_ready lets it go), so from the welcome on, every PUBLISH to the user reaches this node.
 * PUBLISH's reply, the number of subscribers, is the number of nodes holding the user: a send to a
 * user the sender's node does not list asks it (uroute_ask_*), and its sender is told `not_found`
 * only when no node holds the user. Nobody waits for that reply: it is told to a callback on the
 * engine thread (pendsend.h puts the sender's ack in its place then), or UROUTE_ASK_WAIT_MS after the
 * send if Redis did not answer by then. Centrifugo routes its channels through Redis the same way.
 *
 * One SUBSCRIBE or UNSUBSCRIBE per user is in flight at a time: hiredis keeps one callback per channel
 * and drops it at an UNSUBSCRIBE's reply, so an UNSUBSCRIBE then SUBSCRIBE in flight together would
 * leave the channel without one. The state per user settles toward what this node's mirror of its
 * users (struct cluster's `local`) wants each time a reply comes.
 *
 * Threads: uroute_confirmed, uroute_ask_new and uroute_ask_link run on any thread (the engine's lock);
 * the rest on the engine thread, which owns the subscriber connection and calls the hub and the asks'
 * callbacks without that lock. */
#ifndef SB_USERROUTE_H
#define SB_USERROUTE_H

#include <hiredis/async.h>
#include <stddef.h>
#include <stdint.h>

struct cluster;
struct uroute_ask;

#define UROUTE_ASK_WAIT_MS 200 /* how long a send to a user not listed here is given for PUBLISH's reply */

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

/* A send to a user not listed here, whose PUBLISH's reply `answer(arg, nodes)` is told exactly once,
 * on the engine thread: the nodes that took it, or -1 (none, or Redis did not tell within
 * UROUTE_ASK_WAIT_MS of uroute_ask_new, counted in switchboard_cluster_asks_unanswered_total).
 * The caller makes it (NULL when out of memory) and links it, with the engine's lock held, as it queues
 * the PUBLISH's item. From then on the engine owns it: the engine thread sends the PUBLISH with
 * uroute_on_publish as its callback (privdata: the ask), which frees it; an ask whose PUBLISH is never
 * sent (it failed, or the queue was dropped) is given to uroute_ask_drop. */
#define UROUTE_UNANSWERED (-2L) /* Redis did not tell */
struct uroute_ask *uroute_ask_new(void (*answer)(void *arg, long nodes), void *arg);
void uroute_ask_link(struct cluster *c, struct uroute_ask *a);
void uroute_ask_drop(struct cluster *c, struct uroute_ask *a);
void uroute_on_publish(redisAsyncContext *ac, void *r, void *privdata);
/* Engine thread: what uroute_on_publish does, for a PUBLISH made inside a script (clusterhist.h). */
void uroute_ask_done(struct cluster *c, struct uroute_ask *a, long nodes);
/* Engine thread: tells the asks older than UROUTE_ASK_WAIT_MS that Redis did not answer; returns when
 * the next one is due (INT64_MAX: none waits). */
int64_t uroute_ask_expire(struct cluster *c, int64_t now_ms);

#endif

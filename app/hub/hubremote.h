/* hubremote: what the cluster engine (cluster.h) brings into the hub from other nodes.
 *
 * The engine's outbound hooks (struct hub_engine, hub.h) hand this node's deliveries and presence to
 * Redis; these functions are the way back: messages other nodes published, which go to this node's
 * connections only, and other nodes' users coming and going, which change the users listed here.
 * A separate file from hub.c because it is a second concern: the core serves this node's clients,
 * this side mirrors the rest of the cluster into it.
 *
 * Threads and locks: called on the engine thread; each takes the hub lock itself (shared for
 * deliveries and closes, exclusive for hub_remote_user and subscriptions) and never calls the engine
 * back, except that a subscription's joins and leaves announce this node's room members as any join
 * does: those hooks only queue (cluster.c's local_change), never wait for the engine thread. */
#ifndef SB_HUBREMOTE_H
#define SB_HUBREMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

/* The engine's inbound side: deliveries from other nodes go to this node's connections only. */
size_t hub_deliver_local_user(struct hub *h, const char *user, struct frame *f);
/* A message of `user`'s stream with the position Redis gave it (clusterhist.h): protocol 2
 * connections get it stamped with pos. except: NULL when another node sent it; else this node did,
 * its protocol 1 connections had it at once (hub_send_user), and only its protocol 2 ones get it now,
 * but the one with id `except` (the sender of a publish or broadcast; "" for none). The same for a
 * room's stream (to its members here) and the broadcast stream (to every router connection here). */
size_t hub_deliver_local_user_at(struct hub *h, const char *user, struct frame *f, const struct hist_pos *pos,
                                 const char *except);
size_t hub_deliver_local_room_at(struct hub *h, const char *room, struct frame *f, const struct hist_pos *pos,
                                 const char *except);
size_t hub_deliver_local_all_at(struct hub *h, struct frame *f, const struct hist_pos *pos, const char *except);
size_t hub_deliver_local_all(struct hub *h, struct frame *f);
/* The answer to hub_engine.read_streams, one per stream asked, in order: where it stands (`now`), and
 * with a `since` whether the messages after it were all held (r: HIST_RECOVERED, with them in
 * `replay`, texts as delivered without a position) or not; HIST_FAILED when Redis could not tell.
 * Takes the replays. Implemented by hubsync.c. */
struct hub_stream_got {
    enum hist_resume r;
    struct hist_pos now;
    struct hist_replay replay;
};
void hub_streams_read(struct hub *h, const char *conn_id, const struct hub_stream_want *w, struct hub_stream_got *g,
                      size_t n);
size_t hub_deliver_local_room(struct hub *h, const char *room, struct frame *f);
/* Another node's API disconnect: hub_close_user on this node's connections only. */
size_t hub_close_local_user(struct hub *h, const char *user, uint16_t code, const char *reason);
/* One more (delta 1) or one fewer (-1) other node has `user` online. The user is listed (users,
 * welcome) while it has a connection here or on another node; this node's connections get a presence
 * join when it appears in that union and a leave when it disappears from it. */
/* Another node's API subscribe or unsubscribe: on this node's connections only. */
size_t hub_subscribe_local_user(struct hub *h, const char *user, const char *room, int join);
void hub_remote_user(struct hub *h, const char *user, int delta);
/* The engine's route to `user` on this node is confirmed (or given up): the welcomes held for it
 * (hub_engine.user_routed) go out. */
void hub_route_ready(struct hub *h, const char *user);

/* With --presence rooms, the engine changes its table of other nodes' room members between
 * hub_remote_members_begin and _end (the hub lock, shared) and tells the hub each change there with
 * hub_remote_room_user. A join lists the members from that table under the hub lock, exclusive, so it
 * comes wholly before a change (does not list the user, and hears of it) or wholly after (lists the
 * user, and does not hear of it): never both, never neither. Between the two, nothing else of the hub
 * may be called (hub_remote_user takes the lock itself). */
void hub_remote_members_begin(struct hub *h);
void hub_remote_members_end(struct hub *h);
/* Another node's `user` entered (up) or left `room` (the engine's table says so already); this node's
 * members of the room hear it if the user is in the room nowhere else. Between _begin and _end only. */
void hub_remote_room_user(struct hub *h, const char *room, const char *user, int up);

#endif

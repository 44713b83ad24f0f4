/* presence: who hears about whom, in one of three modes (--presence, docs/PROTOCOL.md "Presence").
 *
 *   global  every connection hears every user's first connection open and last one close, and each
 *           welcome lists every user (presence as it was before the modes: fine for a few hundred
 *           users, O(users^2) beyond);
 *   rooms   presence is scoped, as Centrifugo scopes it to channels: a room's members hear who enters
 *           and leaves that room, a connection that joins learns the room's members (in the join's
 *           ack), and a connection may watch up to WATCH_MAX users (watch.h) to hear of those only;
 *           an arrival or departure costs its rooms' members and its watchers, never the server's
 *           connection count; `users` is a bounded page;
 *   off     no presence at all.
 *
 * This module is the hub's presence fan-out and the rooms-mode commands (watch, unwatch, the bounded
 * users page, a join's member list). It works on the hub's tables (hubpriv.h) under the hub's lock:
 * every function below that takes a struct hub takes or expects that lock as it says. */
#ifndef SB_PRESENCE_H
#define SB_PRESENCE_H

#include <stddef.h>

enum presence_mode { PRESENCE_OFF, PRESENCE_GLOBAL, PRESENCE_ROOMS };

#define PRESENCE_USERS_PAGE 1000 /* names in one `users` reply in rooms mode */

/* "off", "global" or "rooms" ("on" is global's old name); 0, or -1 if s is none of them. */
int presence_mode_parse(const char *s, enum presence_mode *mode);

struct hub;
struct conn;
struct room;

/* The hub's mode (fixed at hub_new). */
enum presence_mode presence_mode(const struct hub *h);

/* ---- the fan-out: each is called with the hub lock held, exclusive ---- */

/* `user` came online (event "join": its first connection anywhere) or went offline ("leave"): global
 * tells every router connection but `except`, rooms tells those watching the user. */
void presence_user(struct hub *h, const struct conn *except, const char *event, const char *user);
/* c's user has just entered (up) or left room r with its first or last connection on this node: in
 * rooms mode, the room's other members hear it, unless another node has the user in the room too. */
void presence_room_local(struct hub *h, const struct conn *c, const struct room *r, int up);
/* Another node's `user` entered (up) or left `room`, as the engine's table already says: in rooms mode
 * the room's members here hear it if the user is in it on no other node and has no connection in it
 * here. Called with the hub lock held (shared is enough: it only delivers). */
void presence_room_remote(struct hub *h, const char *room, const char *user, int up);
/* In rooms mode, after c joined r: queues `ack_head` (an ack's JSON without its closing brace)
 * followed by the room's members, cluster-wide, sorted: ,"members":[...]}. */
void presence_members_reply(struct hub *h, struct conn *c, const struct room *r, const char *ack_head);

/* ---- rooms-mode commands: each takes the hub lock itself ---- */

enum presence_status { PRESENCE_DONE, PRESENCE_TOO_MANY, PRESENCE_NO_MEMORY };
/* c watches names[0..n): with more than WATCH_MAX watched in all nothing changes (PRESENCE_TOO_MANY);
 * else queues ack_head followed by ,"online":[those of them online, sorted]}. */
enum presence_status presence_watch(struct hub *h, struct conn *c, const char *const *names, size_t n,
                                    const char *ack_head);
/* c stops watching names[0..n) (those it did not watch are ignored). */
void presence_unwatch(struct hub *h, struct conn *c, const char *const *names, size_t n);
/* Queues {"type":"users","users":[up to PRESENCE_USERS_PAGE online users after `after` (NULL: from
 * the first), sorted],"more":true} to c; "more" only when the page is not the last. */
void presence_reply_users_page(struct hub *h, struct conn *c, const char *after);

#endif

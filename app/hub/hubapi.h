/* hubapi: the hub's side of the HTTP API (api.h), the server acting on no connection's behalf.
 *
 * A separate file from hub.c because it is a second concern: the core registers connections and
 * delivers on their behalf; these read the tables for a backend (lists as JSON text, a room publish
 * from nobody, a user's connections closed).
 *
 * Threads and locks: called from CivetWeb worker threads. Each takes the hub lock itself, shared:
 * these only read the tables (a close is queued on the connection's outbox, which its loop then
 * carries out). A server broadcast is hub_broadcast(h, NULL, f). A cluster engine makes these
 * cluster-wide like the others. Lists are malloc'd text the caller frees. */
#ifndef SB_HUBAPI_H
#define SB_HUBAPI_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"

/* To every member connection of `room`; 0 when nobody is in it. */
size_t hub_publish_server(struct hub *h, const char *room, struct frame *f);
/* The online users, sorted, as the text of a JSON array of strings: malloc'd and NUL-terminated
 * (*len is its length), the caller frees it; NULL when out of memory. */
char *hub_users_json(struct hub *h, size_t *len);
/* The same for the distinct users with a connection in `room` ("[]" when nobody is in it); with a
 * cluster engine, on any node (per its presence table). */
char *hub_room_users_json(struct hub *h, const char *room, size_t *len);
/* 1 if `user` has a connection here or, with a cluster engine, on another node (per its presence
 * table), else 0. */
int hub_user_online(struct hub *h, const char *user);
/* Sends close `code` and `reason` (at most 123 bytes) to every connection of `user`; returns how
 * many began closing here (0 when the user is offline, or its connections were closing already),
 * plus, with a cluster engine, the other nodes where the user is online (each closes its own). The
 * user leaves at once: GET /api/users, `users` replies and presence no longer count those connections,
 * though they stay open until the client answers the close or the grace period ends. */
size_t hub_close_user(struct hub *h, const char *user, uint16_t code, const char *reason);

/* Server-side subscriptions: joins (join = 1) or removes (0) every connection of `user`, on every
 * node, to or from `room`. Returns the connections changed here plus the other nodes that have the
 * user per the engine's table. */
size_t hub_subscribe_user(struct hub *h, const char *user, const char *room, int join);

#endif

/* peers: the cluster's presence table, which users and rooms every other node has.
 *
 * The cluster engine (cluster.h) fills it from Redis: J/L/E/X/M/N events apply one change, a node's hash
 * replaces its whole state (a snapshot), a node whose hash expired or left the node set is dropped.
 * Each node's state carries its presence sequence number, and what is older than what was applied is
 * ignored, so a snapshot read just before an event cannot undo it. The hub's hooks read it on the
 * client loops to route a message to the nodes that have a recipient.
 *
 * Lock: `lock` inside guards the whole table; calls take it and return without it, never calling
 * out. Callers hear about changes through `struct names` lists and tell the hub after. */
#ifndef SB_PEERS_H
#define SB_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "dict.h"
#include "names.h"

/* A list of names (copies), for what a change did. */
struct names {
    char **v;
    size_t n, cap;
};
void names_push(struct names *x, const char *name); /* out of memory: the name is left out */
void names_free(struct names *x);

struct peers;
typedef char peer_id[SB_NAME_MAX + 1];

struct peers *peers_new(void);
void peers_free(struct peers *p);

/* The nodes that have `name` (a user, or a room when rooms): up to max of their ids into ids (NULL
 * when max is 0); returns how many have it, which may be more than max. */
size_t peers_having(struct peers *p, int rooms, const char *name, peer_id *ids, size_t max);
/* The nodes that have `user` in `room`. */
size_t peers_having_member(struct peers *p, const char *room, const char *user);
/* Nodes known (seen alive), and those of them with at least one user. */
size_t peers_count(struct peers *p);
long peers_with_users(struct peers *p);

#define PEERS_MEMBER 2 /* peers_event's `room` for a room member: name is "ROOM USER" */

/* Node `id` gained (up) or lost a user (room = 0), a room (1) or a room member (PEERS_MEMBER) at
 * state `seq`: 1 if that changed what the table says (the caller then tells the hub about a user),
 * 0 if not or if seq is not newer. */
int peers_event(struct peers *p, const char *id, uint64_t seq, const char *name, int room, int up);
/* Node `id`'s whole state at `seq` (users, rooms and members ("ROOM USER" keys) are taken over, or
 * freed if seq is older than what the table has). The users it gained go to joined, those it lost to
 * left. */
void peers_snapshot(struct peers *p, const char *id, uint64_t seq, struct dict *users, struct dict *rooms,
                    struct dict *members, struct names *joined, struct names *left);
/* Calls add(arg, user) for every user another node has in `room` (once per node that has it), under
 * the table's lock: add must not call back into the table. */
void peers_room_users(struct peers *p, const char *room, void (*add)(void *arg, const char *user), void *arg);
/* Node `id`'s room members ("ROOM USER") into out (copies), to compare before and after a change. */
void peers_members_of(struct peers *p, const char *id, struct names *out);
/* Forgets node `id`; its users go to gone. 1 if it was known. */
int peers_drop(struct peers *p, const char *id, struct names *gone);
/* The known nodes whose id is not among ids[0..n): they go to out (to be dropped). */
void peers_unlisted(struct peers *p, const char *const *ids, size_t n, struct names *out);

#endif

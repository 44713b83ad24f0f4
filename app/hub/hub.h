/* hub: who is connected, under which user, in which rooms, and delivery to them.
 *
 * The hub is the one shared table of the server. It maps user names to their connections (a user may
 * have several: tabs, devices), room names to member connections, and keeps every connection in a
 * list for pings and shutdown. Delivery never writes to a socket: it queues a shared frame on each
 * recipient's outbox (outbox.h), so no caller ever waits on another client.
 *
 * Lock: `lock`, a read-write lock, guards every table and the hub fields of every registered
 * connection (user, named, pending, rooms, links, last_ping_ms, deadline). Delivery only reads them,
 * so senders share it; registration, rooms, renames and the tick take it exclusively. The thread that
 * serves a connection's messages (its event loop, loop.h) may read its own `user` and `pending`
 * without the lock, because only that thread changes them (hello), and it does so under the
 * exclusive lock.
 *
 * Ownership: the caller (ws.c) allocates a struct conn, registers it with hub_add and frees it after
 * hub_remove and outbox_detach; other threads reach it only through the hub's tables under the lock,
 * so a pointer found there is valid while the lock is held. */
#ifndef SB_HUB_H
#define SB_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "metrics.h"
#include "names.h"
#include "outbox.h"
#include "presence.h"
#include "watch.h"

#define HUB_ID_MAX 32
#define HUB_MAX_ROOMS_PER_CONN 64 /* default of --max-rooms */
#define HUB_MAX_CONNS_PER_USER 64 /* default of --max-user-connections */
#define HUB_CLOSE_GRACE_MS 2000 /* how long a peer has to answer our close frame */
#define HUB_WELCOME_WAIT_MS 1000 /* how long a welcome waits for the cluster's route (then the tick lets
                                  * it go unrouted, counted): a Redis that is up but slow */

struct room;
struct user;
struct auth_conn;

/* When the tick closes a connection, and how (auth.h sets them: the 10 s to authenticate, a token's
 * expiry). */
struct hub_deadline {
    int64_t at_ms;      /* hub_now_ms() time; 0 = none */
    uint16_t code;      /* close code */
    const char *reason; /* close reason, a static string */
};

/* The positions a reconnecting client last saw of its user's and the broadcast stream (docs/PROTOCOL.md
 * "Recovery"): what its next welcome recovers. */
struct hub_since {
    struct hist_pos user, broadcast;
    int has_user, has_broadcast;
};

struct conn {
    char id[HUB_ID_MAX];          /* "conn-N", unique for the life of the process */
    char user[SB_NAME_MAX + 1];   /* the user's name, or the id while anonymous */
    int named;                    /* the user came from ?user= or hello */
    int echo;                     /* echo-protocol: no user, no presence, no routing */
    int pending;                  /* hub lock: waits to authenticate (auth.h): listed, but no user, no
                                   * welcome, no presence, no deliveries but its own replies */
    struct outq out;
    int64_t last_rx_ms;           /* atomic: when the peer last sent anything */
    int64_t last_ping_ms;         /* hub lock: when the hub last pinged it */
    struct conn *prev, *next;     /* hub lock: every registered connection */
    struct user *u;               /* hub lock */
    struct room **rooms;          /* hub lock: the rooms joined; owned, freed by hub_remove */
    size_t nrooms, rooms_cap;
    int64_t exp_s;                /* the token's exp for the welcome, 0 = none; the connection's own thread */
    struct hub_deadline deadline; /* hub lock */
    int64_t held_ms;              /* hub lock: when its outbox began holding its welcome for the
                                   * cluster's route (hub_engine.user_routed); 0 = not held */
    struct watch_list watching;   /* hub lock: the users it watches (watch.h), --presence rooms */
    int positions;                /* protocol 2 (?v=2): deliveries, welcome and joins carry stream
                                   * positions; set before hub_add */
    struct hub_since since;       /* recovered by the next welcome, then cleared; set by the connection's
                                   * own thread before hub_add, hello */
    struct hub_sync *sync;        /* hub lock: where it stands in each stream while history lives in
                                   * Redis (hubsync.h); owned, freed by hub_remove; NULL otherwise */
    struct auth_conn *auth;       /* what the token said, NULL without a key (auth.h); set before hub_add,
                                   * then used by the connection's own thread only */
};

/* A stream whose position a connection takes, and what `since` (has_since) recovers of it, asked of
 * the engine when history lives in Redis (hub_engine.read_streams, hubsync.h). */
struct hub_stream_want {
    char kind;                  /* 'u' (name: a user), 'r' (a room) or 'b' (the broadcast stream) */
    char name[SB_NAME_MAX + 1]; /* "" for b */
    int has_since;
    struct hist_pos since;
    uint32_t seq;               /* the asker's, given back with the answer */
};
#define HUB_WANTS_MAX 2 /* a welcome asks for the user's stream and the broadcast stream at once */

struct hub_options {
    int presence;          /* enum presence_mode (presence.h) */
    long ping_interval_ms;
    long max_rooms;        /* rooms per connection; 0 = HUB_MAX_ROOMS_PER_CONN */
    long max_user_conns;   /* connections per user; 0 = HUB_MAX_CONNS_PER_USER */
    struct history_options history; /* size 0: no history, no positions */
};

struct hub;

struct hub *hub_new(struct outbox *ob, const struct hub_options *opt);
void hub_free(struct hub *h);

/* Fills c->id and c->user (the id unless `user` is given) and prepares its outbox queue. */
void hub_conn_init(struct hub *h, struct conn *c, const char *user, int echo, void *sink, size_t outbox_limit);
enum hub_status {
    HUB_OK,
    HUB_NOT_MEMBER,
    HUB_TOO_MANY_ROOMS,
    HUB_ALREADY_NAMED,
    HUB_USER_FULL,     /* the user has max_user_conns connections already */
    HUB_SHUTTING_DOWN,
    HUB_NO_MEMORY,
};

/* Registers c: a router connection gets its welcome and the others a presence join, atomically; a
 * pending one (c->pending) is only listed, for the tick, shutdown and the counts.
 * HUB_USER_FULL: c is listed (hub_remove it as usual) but has no user, and is being closed 1008.
 * Anything else but HUB_OK means nothing was registered. */
enum hub_status hub_add(struct hub *h, struct conn *c);
/* Unregisters c: leaves its rooms, and others get a presence leave if it was its user's last. */
void hub_remove(struct hub *h, struct conn *c);

/* Delivery. Each returns the number of connections the frame was queued to. */
/* To every connection of `user`; -1 if the user is not online. With an engine, HUB_UNLISTED when
 * this node does not list the user: another node may have welcomed it a moment ago, so the caller
 * asks the cluster (hub_ask_user) or counts it not found. */
#define HUB_UNLISTED (-2L)
long hub_send_user(struct hub *h, const char *user, struct frame *f);
/* After HUB_UNLISTED: hands f to whichever nodes hold `user` (hub_engine.send_unlisted). 0, and
 * answer(arg, nodes) comes once, later, on the engine's thread: the nodes that took it, or -1 (none, or
 * Redis did not tell in time, counted); or -1 at once, and no answer, when it could not be handed over
 * (no engine, Redis down, the engine's queue full). Never waits. answer NULL: handed over the same,
 * nobody told how it went. */
int hub_ask_user(struct hub *h, const char *user, struct frame *f, void (*answer)(void *arg, long nodes), void *arg);
/* A reply to c that is not known yet keeps its place among c's replies: a slot reserved now in c's
 * outbox (outbox_reserve), filled later by hub_fill_reply. c's own thread; NULL when c is closing or
 * out of memory. The caller owns the reference returned. */
struct frame *hub_reserve_reply(struct hub *h, struct conn *c);
/* Puts f (NULL: nothing) in `slot`'s place in the outbox of the connection named `id` (c->id) and
 * writes what waited behind it; if that connection is gone, only lets go of slot. Any thread; takes
 * the caller's reference to slot. */
void hub_fill_reply(struct hub *h, const char *id, struct frame *slot, struct frame *f);
/* To every router connection except `from`. */
size_t hub_broadcast(struct hub *h, const struct conn *from, struct frame *f);
/* To every member of `room` except `from`; -1 if `from` is not a member. */
long hub_publish(struct hub *h, const struct conn *from, const char *room, struct frame *f);
/* To c itself (replies, errors, echo). */
void hub_reply(struct hub *h, struct conn *c, struct frame *f);

/* With --presence rooms and an ack_head (an ack's JSON without its closing brace), c's ack with the
 * room's members is queued too (presence.h), before any later presence event of the room. */
enum hub_status hub_join(struct hub *h, struct conn *c, const char *room, const char *ack_head);
/* The same, and atomically, under one hold of the hub lock: for a protocol 2 connection (with
 * history) first a `joined` with the room stream's position (recovered or not when `since` is given)
 * and the messages after `since`, then (rooms mode, ack_head given) the ack with the members. */
enum hub_status hub_join_from(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since,
                              const char *ack_head);
enum hub_status hub_leave(struct hub *h, struct conn *c, const char *room);
/* Names an anonymous connection: presence leave of the id, join of the name, a new welcome. */
enum hub_status hub_rename(struct hub *h, struct conn *c, const char *user);
/* Names a pending connection (hub_add with c->pending): its welcome, a presence join, and `d` as its
 * new deadline, atomically. HUB_USER_FULL and HUB_NO_MEMORY leave it pending. */
enum hub_status hub_authenticate(struct hub *h, struct conn *c, const char *user, const struct hub_deadline *d);
/* Moves c's deadline (a refreshed token). */
void hub_set_deadline(struct hub *h, struct conn *c, const struct hub_deadline *d);
/* Queues {"type":"users","users":[...]} to c: every user, or with --presence rooms a page of those
 * after `after` (NULL: from the first; presence.h). */
void hub_reply_users(struct hub *h, struct conn *c, const char *after);

/* Once a second: pings connections silent for a ping interval, closes those silent for three or past
 * their deadline, and ends those that did not answer our close frame within HUB_CLOSE_GRACE_MS. */
void hub_tick(struct hub *h, int64_t now_ms);
/* Refuses new connections and sends close `code` to every open one. */
void hub_shutdown(struct hub *h, uint16_t code, const char *reason);
size_t hub_count(struct hub *h);
void hub_gauges(struct hub *h, struct metrics_gauges *g);
int64_t hub_now_ms(void);
/* The limits in force, for error messages. */
long hub_max_rooms(const struct hub *h);
long hub_max_user_conns(const struct hub *h);

/* The cluster engine (cluster.h), set only with --redis: without it every hook below is one NULL
 * check. Each callback runs on the calling thread with the hub lock held (read for deliveries, write
 * for presence), so it must not block and must not call the hub; it may take its own lock (hub lock
 * first, then the engine's). A delivery hook returns how many other nodes it handed the frame to
 * (those that have a recipient, per the cluster's presence table), which `delivered` counts, or -1
 * when it dropped it (Redis down or the engine's queue full; the engine counts it). */
struct hub_engine {
    void *ctx;
    /* With streams in Redis (clusterhist.h) it sets *echo: Redis brings the message back to this
     * node with its stream position (hub_deliver_local_user_at), and the hub leaves this node's
     * protocol 2 connections to that delivery. */
    long (*send_user)(void *ctx, const char *user, const struct frame *f, int *echo);
    /* except: the sending connection's id (NULL: the server API), which the sender's node leaves out
     * when the message comes back with its position; *echo as send_user's. */
    long (*broadcast)(void *ctx, const struct frame *f, const char *except, int *echo);
    long (*publish)(void *ctx, const char *room, const struct frame *f, const char *except, int *echo);
    /* This node's first connection of `user` (up = 1) or its last (up = 0); the same for a room's
     * members. */
    void (*user_local)(void *ctx, const char *user, int up);
    void (*room_local)(void *ctx, const char *room, int up);
    /* 1 when Redis is connected, 0 when not: /healthz and /metrics. */
    int (*redis_up)(void *ctx);
    void (*gauges)(void *ctx, struct metrics_gauges *g);
    uint64_t first_id; /* connection ids count from here: anonymous users are named by their ids, which
                        * must not collide across nodes */
    /* User `user` got its first connection in `room` here (up = 1) or lost its last (0): what the
     * cluster-wide room listing (hub_room_users_json) reads on the other nodes. */
    void (*room_user_local)(void *ctx, const char *room, const char *user, int up);
    /* The server API's disconnect: every other node closes user's connections there with code and
     * reason. Returns how many other nodes have the user per the presence table, or -1 when dropped. */
    long (*close_user)(void *ctx, const char *user, uint16_t code, const char *reason);
    /* Calls add(arg, name) for each user that other nodes have in `room` (duplicates possible), from
     * the engine's mirror, never waiting on Redis. */
    void (*room_users)(void *ctx, const char *room, void (*add)(void *arg, const char *user), void *arg);
    /* 1 when a send from any node reaches this node's connections of `user` already (its route is
     * confirmed), or when the engine cannot promise it (Redis down: welcomes go at once, degraded);
     * 0 when the route is being set up: the welcome is held until hub_route_ready (hubremote.h). */
    int (*user_routed)(void *ctx, const char *user);
    /* A send to a user this node does not list (called WITHOUT the hub lock): handed to whichever
     * nodes hold it. Returns 0, and answer(arg, nodes) comes once, later, on the engine's thread,
     * within a bound of the engine's (userroute.h): that number of nodes, or -1 when none did (the user
     * is online nowhere) or Redis did not tell in time (counted). -1 at once, and no answer, when it
     * cannot hand it over (Redis down, its queue full). Never waits. */
    int (*send_unlisted)(void *ctx, const char *user, const struct frame *f, void (*answer)(void *arg, long nodes),
                         void *arg);
    /* How many other nodes have `user` in `room` (--presence rooms: a room hears a user come and go
     * only once across the cluster), from the engine's mirror. */
    size_t (*room_user_nodes)(void *ctx, const char *room, const char *user);
    /* The server API's subscribe (join = 1) or unsubscribe: every other node joins or removes user's
     * connections there. Returns how many other nodes have the user, or -1 when dropped. */
    long (*subscribe)(void *ctx, const char *user, const char *room, int join);
    /* With history in Redis (clusterhist.h; NULL without): reads where the n streams stand, and what
     * their `since` recovers, for connection `conn_id`; hub_streams_read (hubremote.h) brings the
     * answer on the engine's thread, once, always (a failure too). -1 at once, and no answer, when it
     * cannot ask (Redis down, its queue full). Never waits. */
    int (*read_streams)(void *ctx, const char *conn_id, const struct hub_stream_want *w, size_t n);
};
/* Before the first connection; e is copied. */
void hub_set_engine(struct hub *h, const struct hub_engine *e);
/* -1 without an engine, else engine->redis_up. */
int hub_engine_state(struct hub *h);

/* The engine's inbound side (deliveries from other nodes, their presence): hubremote.h. The server
 * API (the server acting on no connection's behalf): hubapi.h. */

#endif

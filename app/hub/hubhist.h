/* hubhist: the hub's side of history (history.h), shared by hub.c and hubapi.c only.
 *
 * Which stream a delivery belongs to (a user's "u:NAME", a room's "r:NAME", the broadcast stream "b"),
 * its position, and who sees it: protocol 2 connections (conn.positions) get the delivery stamped with
 * its position (envelope_stamp), the others the frame as it was, byte for byte. The welcome's and a
 * join's stream positions and the replays of a recovery are queued here too, under the hub lock that
 * the caller holds, so a replay is atomic with the subscription it precedes. Without history (the
 * hub's `hist` NULL) each is a pass-through. */
#ifndef SB_HUBHIST_H
#define SB_HUBHIST_H

#include "hubpriv.h"

/* One delivery on its way: begun (the stream locked, its position given), delivered, ended. */
struct hubh_msg {
    struct frame *f, *stamped; /* stamped: made for the first protocol 2 recipient */
    struct hist_stream *s;     /* NULL: no history here, or none could be kept */
    int positioned;            /* pos is the message's: protocol 2 recipients get it stamped */
    int echo;                  /* the cluster brings it back with its position (hub_engine.send_user's
                                * echo): protocol 2 recipients are counted, and left to that delivery */
    struct hist_pos pos;
};

/* kind: 'u' (name a user), 'r' (name a room) or 'b' (name NULL). Shared hub lock. */
void hubh_begin(struct hub *h, struct hubh_msg *m, char kind, const char *name, struct frame *f);
/* A message whose position the cluster's streams gave (hubremote.h): delivered as hubh_begin's, kept
 * in no history here. */
void hubh_begin_at(struct hubh_msg *m, struct frame *f, const struct hist_pos *pos);
/* Queues m to c as its protocol wants; 1 if queued (or left to the cluster's echo). */
int hubh_deliver(struct hub *h, struct conn *c, struct hubh_msg *m);
void hubh_end(struct hubh_msg *m);

/* What a welcome recovers: filled by hubh_welcome_streams, sent by hubh_welcome_replay. */
struct hubh_resume {
    struct hist_replay user, broadcast;
};
/* Writes ,"streams":{...} for c's welcome into out (cap bytes; "" without history or for a protocol 1
 * connection), recovering what c->since asks (then clears it). Exclusive hub lock. */
void hubh_welcome_streams(struct hub *h, struct conn *c, char *out, size_t cap, struct hubh_resume *r);
/* After the welcome: the messages recovered, in order. */
void hubh_welcome_replay(struct hub *h, struct conn *c, struct hubh_resume *r);
/* After c joined `room`: `joined` and what `since` recovers. Exclusive hub lock. */
void hubh_joined(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since);
/* history_tick, with the hub's tables saying which streams have subscribers. Exclusive hub lock. */
void hubh_tick(struct hub *h, int64_t now_ms);

#endif

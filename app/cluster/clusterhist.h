/* clusterhist: streams and their history in Redis (--redis with history on): the Lua scripts that give
 * each message of a stream its position and keep it, and that read where a connection's streams stand
 * and what it recovers; the commands that run them.
 *
 * Per stream (a user's "u:NAME", a room's "r:NAME", the broadcast stream "b": history.h's keys) a hash
 * PREFIX.meta.KEY holds the stream's epoch ("e", drawn by the node that created the stream) and the
 * offset of its last message ("o"), and a Redis stream PREFIX.hist.KEY its last --history-size messages,
 * each entry's id its offset. The positioning script, which Redis runs atomically, reads or creates the
 * epoch, adds one to the offset, appends the message (XADD MAXLEN), renews both keys' TTL
 * (--history-ttl: an idle stream costs nothing after it, and its next message starts a new epoch) and
 * PUBLISHes the message with its position (clustermsg.h's kind u) on the stream's channel, to every
 * node subscribed to it, the sender's too. So every node gets one stream's messages in one order with
 * the same positions (two tabs of a user on two nodes see the same offsets), live delivery is in
 * offset order, and whatever a read finds in the history was published before it, whatever it does
 * not find after it (hubsync.h builds on that). The read script gives, per stream, the epoch (created
 * if need be), the last offset and, for a `since`, every message after it or "not recovered": all or
 * nothing, as history.h. After Centrifugo's Redis engine.
 *
 * The scripts are loaded (SCRIPT LOAD) on each new connection ahead of any EVALSHA, pipelined, so
 * nothing waits for them; a NOSCRIPT (a SCRIPT FLUSH meanwhile) is answered by running that command
 * again with EVAL, which loads the script again. A message Redis refuses or never answers is counted
 * dropped; a read it cannot answer is answered failed to the hub, always once.
 *
 * Threads: chist_item on any thread (pure); the rest on the engine thread, like clustercmd.h. */
#ifndef SB_CLUSTERHIST_H
#define SB_CLUSTERHIST_H

#include <stddef.h>

#include "hub.h"
#include "hubremote.h"

struct cluster;
struct item;

/* Fills the engine's script SHA1 (hex) and seeds its epoch generator. 0, or -1 when it cannot. */
int chist_init(struct cluster *c);
/* After a (re)connect: SCRIPT LOAD, ahead of every EVALSHA on the command connection. */
void chist_load(struct cluster *c);
/* A message of kind `kind` (u, r, b) about `target` (NULL for b), from connection `except` (r, b: ""
 * for none; NULL for u), in stream `key`, published on `channel`, for the engine's queue (its kind
 * IT_PUBLISH; the caller may make it an IT_ASK). NULL when out of memory. */
struct item *chist_item(const struct cluster *c, char kind, const char *target, const char *except, const char *key,
                        const char *channel, const char *text, size_t text_len);
/* A read of where streams stand for a connection (hub_engine.read_streams), for the engine's queue (its
 * kind IT_READ). NULL when out of memory or n is not 1..HUB_WANTS_MAX. */
struct item *chist_read_item(const char *conn_id, const struct hub_stream_want *w, size_t n);
/* Runs the read script for it; the answer goes to the hub (hub_streams_read), a failure too. Takes it. */
void chist_read_send(struct cluster *c, struct item *it);
/* A read that will not be sent (its queue dropped): answered failed. Takes it. */
void chist_read_drop(struct cluster *c, struct item *it);
/* The read script's reply for wants w[0..n) into g[0..n) (outside input: fuzz/fuzz_histread.c).
 * 0, or -1 with every g failed when the reply is not what the script returns. */
struct redisReply;
int chist_parse_read(const struct redisReply *r, const struct hub_stream_want *w, size_t n,
                     struct hub_stream_got *g);
/* Runs the script for it (EVALSHA). Takes it: freed when Redis answered, or at once when it cannot be
 * sent (an ask among it answered UROUTE_UNANSWERED, the message counted dropped). */
void chist_send(struct cluster *c, struct item *it);

#endif

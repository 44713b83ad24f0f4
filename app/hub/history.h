/* history: the recent messages of each stream, so that a client that lost its connection gets what it
 * missed (recovery, docs/PROTOCOL.md "Recovery").
 *
 * Every delivery belongs to one stream, named by a key the hub chooses (a user's, a room's, the
 * broadcast stream). A stream has an epoch, a random word drawn when the stream is created, and an
 * offset that grows by exactly one per message: (epoch, offset) is a message's position. A client
 * that saw position P asks for what followed; the answer is all of it, in order, or "not recovered"
 * (all or nothing), never a silent hole. History is lost in three ways, each of which a later request
 * sees: a stream keeps at most `size` messages, none older than `ttl_ms`, and past `memory` bytes in
 * all the oldest streams lose their messages first (their position stays, so asking from before it
 * answers "not recovered"); a stream with no message and no subscriber here for `ttl_ms` is freed
 * whole, and the next one under that key has a new epoch.
 *
 * Locks: `table` (inside) guards the stream table, the age list and the totals; each stream's own
 * mutex guards its messages and its offset. history_append returns the stream locked, so that the
 * caller delivers the message before any later one of that stream (offset order is delivery order).
 * Order: a stream's mutex, then `table`; `table` only try-locks other streams. A stream is freed only
 * by history_tick, which the hub calls under its exclusive lock, while appends run under its shared
 * lock: so a stream returned by history_append or used by history_resume stays valid meanwhile.
 *
 * Messages are kept as the frames delivered (shared references, frame.h): a replay sends the same
 * bytes again, so keeping costs one reference, not a copy. */
#ifndef SB_HISTORY_H
#define SB_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define HIST_EPOCH_LEN 8
#define HIST_KEY_MAX 72 /* "u:" or "r:" and a name (names.h) */

struct hist_pos {
    char epoch[HIST_EPOCH_LEN + 1];
    uint64_t offset; /* of the stream's last message; 0 before the first */
};

struct history_options {
    long size;     /* messages per stream; 0: no history (history_new returns NULL) */
    int64_t ttl_ms;
    size_t memory; /* bytes of kept messages in all streams */
};

struct history;
struct hist_stream;

struct history *history_new(const struct history_options *o);
void history_free(struct history *hs);

/* Keeps `f` as the next message of stream `key` (created if need be) and gives its position. Returns
 * the stream locked: the caller delivers f, then calls history_unlock. NULL when out of memory (f is
 * then delivered without a position and kept nowhere). */
struct hist_stream *history_append(struct history *hs, const char *key, struct frame *f, int64_t now_ms,
                                   struct hist_pos *pos);
void history_unlock(struct hist_stream *s);

/* The messages after a position, for history_resume. */
struct hist_replay {
    struct frame **frames;
    char epoch[HIST_EPOCH_LEN + 1];
    uint64_t first; /* offset of frames[0] */
    size_t n;
};

enum hist_resume { HIST_FRESH, HIST_RECOVERED, HIST_NOT_RECOVERED, HIST_FAILED };

/* Where a new subscriber of `key` starts: *now is the stream's position (the stream is created if
 * need be). With `since` (NULL: nothing to recover), HIST_RECOVERED if every message after it is held,
 * with those in *out (references the caller drops with history_replay_free), else HIST_NOT_RECOVERED
 * and nothing. HIST_FAILED: out of memory. Call under the hub's exclusive lock, so no append runs
 * between the answer and the subscription. */
enum hist_resume history_resume(struct history *hs, const char *key, const struct hist_pos *since, int64_t now_ms,
                                struct hist_pos *now, struct hist_replay *out);
void history_replay_free(struct hist_replay *r);

/* Drops messages past their TTL and frees streams idle for it: those with no message for ttl_ms and
 * for which in_use(arg, key) says no subscriber is here (one in use is looked at again a TTL later).
 * Call under the hub's exclusive lock. */
void history_tick(struct history *hs, int64_t now_ms, int (*in_use)(void *arg, const char *key), void *arg);

struct history_stats {
    size_t streams;
    size_t bytes; /* of the frames kept */
    size_t messages;
};
void history_stats(struct history *hs, struct history_stats *st);

#endif

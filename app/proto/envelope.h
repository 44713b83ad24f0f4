/* envelope: the shape of a delivery, shared by the client protocol (router.h) and the server API
 * (api.h).
 *
 * A delivery is {"type":"message","from":FROM[,"to"|"room":NAME],"data":DATA}, with DATA the
 * sender's own bytes (jsonspan.h says why), and a send names its targets the same way whoever sends
 * it: a user name or an array of 1..ENVELOPE_MAX_TARGETS of them. Keeping both here means a client
 * and a backend cannot drift apart in what they deliver or accept.
 *
 * Pure: no locks, no hub. Errors are returned as a code and a static message for the caller to
 * report in its own way (an error frame, an HTTP response). */
#ifndef SB_ENVELOPE_H
#define SB_ENVELOPE_H

#include <stddef.h>

#include "frame.h"
#include "metrics.h"
#include "names.h"

#define ENVELOPE_MAX_TARGETS 100 /* users in one send */
#define ENVELOPE_HEAD_MAX (64 + 2 * SB_NAME_MAX) /* a delivery's {"type":"message",...,"data": part */
#define ENVELOPE_SERVER "@server" /* `from` of the server API's deliveries; never a user name (names.h) */

struct cJSON;

/* The text frame of a delivery from `from` (a user name, or ENVELOPE_SERVER); `key` is "to" or
 * "room" with `value` a name, or NULL for a broadcast. The names need no JSON escaping (names.h).
 * One allocation, the frame; NULL when out of memory or a name is too long. */
struct frame *envelope_frame(const char *from, const char *key, const char *value, const struct frame_part *data);

/* The same delivery with its stream position (history.h) for protocol 2 clients:
 * {"type":"message","epoch":E,"offset":N,...the rest of f}. A frame that is not a delivery comes back
 * as it is (one more reference). NULL when out of memory. */
struct hist_pos;
struct frame *envelope_stamp(struct frame *f, const struct hist_pos *pos);

/* Checks a send's `to` (a name, or an array of 1..ENVELOPE_MAX_TARGETS names). Returns how many
 * entries it has (duplicates included), or -1 with *code and *why (a static string) set. */
int envelope_targets(const struct cJSON *to, enum sb_error *code, const char **why);
/* 1 if an entry of the array `to` before `t` has the same name: each target is delivered once. */
int envelope_seen_before(const struct cJSON *to, const struct cJSON *t);

#endif

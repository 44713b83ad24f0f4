/* router: one JSON command from a client in, hub actions and replies out.
 *
 * The router is the protocol of docs/PROTOCOL.md: it parses a text message, checks its fields,
 * calls the hub (send, broadcast, rooms, hello) and queues the reply, ack or error to the sender.
 * Every failure is an error reply; none closes the connection. It knows nothing of CivetWeb or
 * sockets, so the unit tests and the fuzzer drive it with a hub and an in-memory outbox.
 *
 * Runs on the sender's event-loop thread (loop.h, a 256 KiB stack): cJSON parses and prints
 * recursively, so input nested deeper than ROUTER_MAX_DEPTH is refused before it is parsed. */
#ifndef SB_ROUTER_H
#define SB_ROUTER_H

#include <stddef.h>

#include "envelope.h"
#include "hub.h"
#include "metrics.h"

#define ROUTER_MAX_DEPTH 64   /* JSON nesting accepted */
#define ROUTER_MAX_TARGETS ENVELOPE_MAX_TARGETS /* users in one send */
#define ROUTER_MAX_ID 64       /* characters in a string id */

struct cJSON;

/* Handles one complete text message from c. */
void router_handle(struct hub *h, struct conn *c, const char *text, size_t len);
/* Queues {"type":"error",...} to c; `id` (may be NULL) is echoed. Counts the error in metrics. */
void router_error(struct hub *h, struct conn *c, enum sb_error code, const char *message, const struct cJSON *id);
/* Refuses a text message without acting on it (e.g. rate_limited): an error that echoes its id. */
void router_refuse(struct hub *h, struct conn *c, const char *text, size_t len, enum sb_error code, const char *message);

#endif

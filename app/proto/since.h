/* since: the stream positions a reconnecting client sends, read and checked (docs/PROTOCOL.md,
 * "Recovery"). Outside input: fuzzed through the router target and fuzz_since.
 *
 * A position is an epoch (HIST_EPOCH_LEN letters and digits, as the server hands them out) and an
 * offset (an integer from 0 to 2^53, what a JSON number carries exactly). In a handshake's query
 * (`?v=2&since_user=EPOCH:OFFSET&since_broadcast=EPOCH:OFFSET`) it is written EPOCH:OFFSET; in a
 * command, {"epoch":EPOCH,"offset":OFFSET}. Pure: no hub, no locks. */
#ifndef SB_SINCE_H
#define SB_SINCE_H

#include "hub.h"

struct cJSON;

#define SINCE_OFFSET_MAX 9007199254740992.0 /* 2^53 */

/* The handshake's protocol version and positions: 0 with *positions (1 for v=2) and *out filled,
 * -1 with *why (a static string) when `v` or a since_ value is malformed. query may be NULL. */
int since_query(const char *query, int *positions, struct hub_since *out, const char **why);
/* A command's position object: 1 and *out filled, 0 when v is NULL (absent), -1 when malformed. */
int since_json_pos(const struct cJSON *v, struct hist_pos *out);
/* hello's since, {"user":POS,"broadcast":POS} (either may be absent): 1, 0 when absent, -1 when
 * malformed. */
int since_json(const struct cJSON *v, struct hub_since *out);

#endif

/* perms: which client commands a connection may use, and whom its `send` may reach.
 *
 * A token's `rooms` claim says which rooms; these say which commands (`allow`: any of send,
 * broadcast, publish, join, users; ping, hello, refresh and leave are always allowed) and which users
 * a send may target (`send_to`: names or prefix patterns like `support-*`). A token without a claim,
 * and every connection in open mode, has the server's defaults (--client-allow, --client-send-to),
 * which allow everything unless set. As Centrifugo's channel permissions, a refusal is an error reply
 * (`unauthorized`) and nothing is done; the connection stays. Counted in
 * switchboard_permission_refusals_total.
 *
 * The defaults are set once at start, before any thread; afterwards everything here only reads. */
#ifndef SB_PERMS_H
#define SB_PERMS_H

#include <stddef.h>

#include "jwt.h"

#define PERMS_SEND_TO_MAX JWT_MAX_ROOMS /* patterns in --client-send-to */

/* Parses a comma list of commands (jwt_allow_names) or "none" into JWT_ALLOW_* bits; -1 with the
 * reason in err. */
int perms_parse_allow(const char *list, unsigned *out, char *err, size_t cap);
/* Checks a comma list of user names or patterns ("*" = anyone); -1 with the reason in err. */
int perms_check_send_to(const char *list, char *err, size_t cap);
/* Sets the server's defaults (lists as above, already checked). Returns -1 when out of memory. */
int perms_set_defaults(const char *allow, const char *send_to);

/* 1 if a connection with these claims (NULL: no token) may use the command `type`. */
int perms_command_allowed(const struct jwt_claims *claims, const char *type);
/* 1 if its send may target `user`. */
int perms_send_allowed(const struct jwt_claims *claims, const char *user);

#endif

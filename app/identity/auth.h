/* auth: who a connection is: the handshake's token, hello and refresh, the rooms claim, the deadlines.
 *
 * On a server with a key (a jwt_verifier, jwt.h) every router connection proves its user with a
 * token, and the token's `sub` is its user: `?user=` and hello's `user` cannot name it. A token comes
 * at the handshake (`?token=` or `Authorization: Bearer`), where a bad one is a 401, or later in
 * {"type":"hello","token":...}; a connection with no token is pending until then (hub.h: listed, but
 * nobody sees it) and is closed AUTH_CLOSE_TIMEOUT after AUTH_TIMEOUT_MS. An authenticated one is
 * closed AUTH_CLOSE_EXPIRED once its token expires (exp + JWT_LEEWAY_S), unless a refresh brought a
 * token for the same user that expires later. Both limits are the connection's hub deadline, which
 * hub_tick enforces. Without a key nothing here applies: every function says "open" and allows all.
 *
 * Each connection's struct auth_conn is reached through its conn->auth; it holds the claims (the
 * rooms claim is a pointer, most connections have none). It is made on the handshake's CivetWeb
 * worker before the connection is registered, then used only by the connection's event-loop thread
 * (hello, refresh, join, publish), and freed by ws.c after the connection left the hub: no lock.
 *
 * Errors: the handshake and hello/refresh return a jwt_error (or the AUTH_* statuses below) and fill
 * a short message for the client; the token itself is never copied into a message or a log. */
#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "jwt.h"
#include "metrics.h"

#define AUTH_TIMEOUT_MS 10000     /* a pending connection's time to send a good hello */
#define AUTH_CLOSE_EXPIRED 4401   /* the token expired and no refresh came */
#define AUTH_CLOSE_TIMEOUT 4408   /* no token within AUTH_TIMEOUT_MS */
#define AUTH_MESSAGE_MAX 160      /* an error message for the client */

/* Where a token was refused, a label of switchboard_token_refusals_total. */
enum auth_where { AUTH_AT_HANDSHAKE, AUTH_AT_HELLO, AUTH_AT_REFRESH, AUTH__WHERE };
extern const char *const auth_where_names[AUTH__WHERE];
/* Why a token was refused: a jwt_error, or one of these (a refresh's token is good but not usable),
 * labels of the same metric. */
enum { AUTH_OTHER_SUBJECT = JWT__COUNT, AUTH_NOT_LATER, AUTH__REASON_END };
#define AUTH__REASONS (AUTH__REASON_END - JWT__COUNT)
extern const char *const auth_reason_names[AUTH__REASONS];

/* What the handshake said. */
enum auth_result {
    AUTH_OPEN,     /* no key configured, or an echo-protocol connection: nothing to prove */
    AUTH_PENDING,  /* no token offered: upgrade, and wait for hello */
    AUTH_VERIFIED, /* a good token: *out holds its claims */
    AUTH_REFUSED,  /* a bad token: 401 with jwt_error_text(*why) */
    AUTH_NO_MEMORY,
};

struct auth_conn;

/* Reads the token of a handshake from its query string (may be NULL) or its Authorization header
 * (may be NULL; only the Bearer scheme counts, and it wins over ?token=) and checks it with v (NULL:
 * AUTH_OPEN). On AUTH_PENDING and AUTH_VERIFIED *out is the connection's new auth_conn (free it with
 * auth_conn_free). Counts a refusal in the metrics. */
enum auth_result auth_handshake(const struct jwt_verifier *v, const char *query, const char *authorization,
                                struct auth_conn **out, enum jwt_error *why);
void auth_conn_free(struct auth_conn *a);

/* Prepares c (hub_conn_init done, not yet hub_add-ed) from its auth_conn, which c now owns through
 * c->auth: the user and exp of a verified token and its deadline, or pending with AUTH_TIMEOUT_MS.
 * Returns the user name to register under, or NULL while pending. */
const char *auth_attach(struct conn *c, struct auth_conn *a);

/* hello with a token on a pending connection: names it (welcome, presence) or fills msg and
 * returns -1 with *code set. */
int auth_hello(struct hub *h, struct conn *c, const char *token, size_t len, enum sb_error *code, char *msg,
               size_t cap);
/* refresh on an authenticated connection: a token for the same user expiring later moves its
 * deadline and replaces its rooms claim; anything else fills msg and returns -1, changing nothing. */
int auth_refresh(struct hub *h, struct conn *c, const char *token, size_t len, char *msg, size_t cap);
/* The claims of c's token in force, or NULL (open mode, or not authenticated yet). */
const struct jwt_claims *auth_claims(const struct conn *c);
/* 1 if c may join and publish to `room` (always, without a key or a rooms claim). */
int auth_room_allowed(const struct conn *c, const char *room);

/* The deadline of a token expiring at exp_s (seconds since the epoch), on hub_now_ms()'s clock. */
struct hub_deadline auth_expiry_deadline(int64_t exp_s);

#endif

/* ws: the WebSocket endpoints "/ws" and "/": the handshake and the framing rules after it.
 *
 * upgrade: on the event loop that read the request head (acceptor.h, ws_upgrade): the handshake
 *          checks (method, key, version, shutdown, Origin, ?user=, token, capacity), each refusal a
 *          real HTTP response; the subprotocol choice (echo-protocol or the router); then the session
 *          writes the 101, registers with the hub (welcome, presence) and stays on that loop (loop.h).
 * frames:  on the loop's thread, every frame goes through the assembler (assembler.h); whole messages
 *          go to the router, or straight back in echo mode; pings are answered, closes completed,
 *          violations closed.
 * end:     the loop's `ended` callback takes the session out of the hub, closes its socket and frees it.
 *
 * Other threads never hold a session's socket: they reach a connection through the hub and write
 * through the outbox, until the loop's `ended` callback detaches it. */
#ifndef SB_WS_H
#define SB_WS_H

#include <stddef.h>

#include "hub.h"
#include "outbox.h"

struct jwt_verifier;

struct ws_settings {
    long max_message;     /* bytes */
    long max_connections; /* WebSockets at once */
    long outbox;          /* bytes per connection */
    long rate_limit;      /* messages per second per connection; 0 = off */
    long max_per_ip;      /* WebSockets per client address; 0 = off */
    const char *const *origins; /* --allow-origin list */
    size_t norigins;
    const char *const *hosts;   /* --allowed-hosts list (origin_host_allowed); none = every Host */
    size_t nhosts;
    const struct jwt_verifier *verifier; /* NULL: no key, names are claimed (auth.h) */
};

struct ws_server;

/* The outbox's way to reach a WebSocket's socket. */
const struct outbox_io *ws_outbox_io(void);
struct ws_server *ws_new(struct hub *h, struct outbox *ob, const struct ws_settings *s);
void ws_free(struct ws_server *ws);
/* A whole request head, on the thread of the loop that read it: 0 when it is not a WebSocket upgrade
 * for "/ws" or "/" (the caller still owns the socket), else the request is answered (101 and the
 * connection stays on rq->loop, or a refusal and the close) and the status is returned. */
struct front_request;
int ws_upgrade(struct ws_server *ws, const struct front_request *rq);
/* 1 if router connections must prove their user with a token (a key is configured). */
int ws_wants_tokens(const struct ws_server *ws);
/* From now on every handshake gets 503. */
void ws_stop_accepting(struct ws_server *ws);

#endif

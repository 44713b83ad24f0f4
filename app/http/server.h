/* server: CivetWeb's setup and switchboard's own HTTP endpoints.
 *
 * One CivetWeb context, without a listening socket of its own, serves static files from the root,
 * /healthz, /metrics, /auth and the server API: the acceptor (acceptor.h) reads each request head on an
 * event loop and server_serve hands the connection to CivetWeb's queue with that head already read
 * (mg_handover_connection, third_party/civetweb), unless it is a WebSocket upgrade (ws.h). CivetWeb's
 * unsafe defaults are turned off here (CGI, SSI, directory listing, CORS "*", keep-alive: a worker
 * would read the next head itself), its error responses are replaced by complete ones (http.h), and
 * each request is logged; a request whose Host --allowed-hosts does not name gets 421 (begin_request).
 * Its worker pool is --http-threads, for plain HTTP only.
 *
 * Startup: the acceptor starts after server_start has registered every handler, so no request can
 * find a path that exists unserved (a 404). */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include <stddef.h>

#include "config.h"
#include "hub.h"
#include "ws.h"

struct server;

/* Starts listening. Returns NULL and an explanation in err on failure (port busy, bad root). */
struct server *server_start(const struct config *cfg, struct ws_server *ws, struct hub *h, char *err, size_t cap);
/* The acceptor's acceptor_head_fn (ctx: the server): a WebSocket upgrade is ws.h's, any other request
 * goes to CivetWeb's workers with its head already read; when their queue is full it gets 503. */
struct front_request;
void server_serve(void *ctx, const struct front_request *rq);
/* Stops CivetWeb: closes every connection (close handlers run) and joins its threads. */
void server_stop(struct server *srv);

#endif

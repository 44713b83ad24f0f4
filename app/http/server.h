/* server: CivetWeb's setup and switchboard's own HTTP endpoints.
 *
 * One CivetWeb context serves static files from the root, /healthz, /metrics and the WebSocket
 * endpoints (ws.h). CivetWeb's unsafe defaults are turned off here (CGI, SSI, directory listing,
 * CORS "*"), its error responses are replaced by complete ones (http.h), and each request is logged.
 * Its worker pool is --http-threads, for HTTP requests and WebSocket handshakes only: an open
 * WebSocket belongs to an event loop and holds no worker (ws.c).
 *
 * Startup: CivetWeb accepts as soon as mg_start2 runs, before the handlers are registered; until they
 * are, every request gets 503 (begin_request), never a 404 for a path that exists. */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include <stddef.h>

#include "config.h"
#include "hub.h"
#include "ws.h"

struct server;

/* Starts listening. Returns NULL and an explanation in err on failure (port busy, bad root). */
struct server *server_start(const struct config *cfg, struct ws_server *ws, struct hub *h, char *err, size_t cap);
/* Stops CivetWeb: closes every connection (close handlers run) and joins its threads. */
void server_stop(struct server *srv);

#endif

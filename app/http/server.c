/* server: CivetWeb options, /healthz, /metrics, error pages and the request log (see server.h). */
#include "server.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acceptor.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "pendsend.h"
#include "metrics.h"
#include "origin.h"
#include "redact.h"

#define SERVER_METRICS_MAX (16 * 1024)

struct server {
    struct mg_context *ctx;
    struct hub *hub;
    struct ws_server *ws;
    int64_t started_ms;
    struct api *api; /* the server API, when --api-key is set */
    const char *hosts[CONFIG_MAX_HOSTS]; /* --allowed-hosts, into the config (which outlives the server) */
    size_t nhosts;
};

static double uptime_s(const struct server *srv) { return (double)(hub_now_ms() - srv->started_ms) / 1000.0; }

static int method_is_get(struct mg_connection *conn) {
    const char *m = mg_get_request_info(conn)->request_method;
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) return 1;
    http_reply_text(conn, 405, "use GET");
    return 0;
}

static int handle_healthz(struct mg_connection *conn, void *cbdata) {
    struct server *srv = cbdata;
    if (!method_is_get(conn)) return 405;
    char body[160];
    int redis = hub_engine_state(srv->hub); /* -1: not clustered, the body as before */
    int n = snprintf(body, sizeof body, "{\"status\":\"%s\",\"connections\":%zu,\"uptime_s\":%.0f%s}\n",
                     redis == 0 ? "degraded" : "ok", hub_count(srv->hub), uptime_s(srv),
                     redis < 0 ? "" : redis ? ",\"redis\":\"up\"" : ",\"redis\":\"down\"");
    http_reply(conn, 200, "application/json", body, (size_t)n);
    return 200;
}

/* How router connections say who they are, for clients such as the demo page: "token" when a key
 * is configured (auth.h), else "open" (names are claimed). */
static int handle_auth(struct mg_connection *conn, void *cbdata) {
    struct server *srv = cbdata;
    if (!method_is_get(conn)) return 405;
    char body[64];
    int n = snprintf(body, sizeof body, "{\"auth\":\"%s\"}\n", ws_wants_tokens(srv->ws) ? "token" : "open");
    http_reply(conn, 200, "application/json", body, (size_t)n);
    return 200;
}

static int handle_metrics(struct mg_connection *conn, void *cbdata) {
    struct server *srv = cbdata;
    if (!method_is_get(conn)) return 405;
    char *body = malloc(SERVER_METRICS_MAX);
    if (!body) {
        http_reply_text(conn, 500, "out of memory");
        return 500;
    }
    struct metrics_gauges g;
    hub_gauges(srv->hub, &g);
    g.sends_waiting = pendsend_waiting();
    size_t n = metrics_render(body, SERVER_METRICS_MAX, &g, uptime_s(srv));
    http_reply(conn, 200, "text/plain; version=0.0.4; charset=utf-8", body, n);
    free(body);
    return 200;
}

/* Replaces every CivetWeb error response with a complete one. A directory without an index is
 * 403 in CivetWeb; it is reported as 404 like any other path that serves nothing. */
static int on_http_error(struct mg_connection *conn, int status, const char *msg) {
    if (status == 403) status = 404;
    http_reply_text(conn, status, NULL);
    return 0;
}

/* Probes (/healthz, /metrics) come every few seconds from load balancers and scrapers: at info they
 * would drown the log, so they are logged at debug. */
static int is_probe(const char *uri) { return uri && (strcmp(uri, "/healthz") == 0 || strcmp(uri, "/metrics") == 0); }

static void on_end_request(const struct mg_connection *conn, int status) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (status <= 0 || status == 101) return; /* a WebSocket: ws.c logs its open and close */
    metrics_add(M_HTTP_REQUESTS, 1);
    char uri[256];
    log_msg(is_probe(ri->local_uri) ? SB_LOG_DEBUG : SB_LOG_INFO, "http %s %s %d %s", ri->request_method,
            ri->local_uri ? redact_secrets(ri->local_uri, uri, sizeof uri) : "-", status, ri->remote_addr);
}

void server_serve(void *ctx, const struct front_request *rq) {
    struct server *srv = ctx;
    if (ws_upgrade(srv->ws, rq)) return;
    int r = mg_handover_connection(srv->ctx, rq->fd, rq->peer, rq->peer_len, (const char *)rq->bytes, rq->len);
    if (r == 0) return; /* CivetWeb's now */
    if (r == -EAGAIN) {
        metrics_head_refused(HEAD_REFUSED_BUSY);
        front_refuse(rq->loop, rq->fd, 503, "", "every HTTP worker is busy");
        return;
    }
    log_warn("http %s: cannot hand the request to CivetWeb: %s", rq->ip, strerror(-r));
    front_refuse(rq->loop, rq->fd, r == -ESHUTDOWN ? 503 : 500, "", r == -ESHUTDOWN ? "server shutting down" : NULL);
}

/* A plain request whose Host is not one --allowed-hosts names gets 421 (origin.h); WebSocket
 * upgrades never get here: ws.h checks their Host itself. */
static int on_begin_request(struct mg_connection *conn) {
    struct server *srv = mg_get_user_data(mg_get_context(conn));
    if (origin_host_allowed(mg_get_header(conn, "Host"), srv->hosts, srv->nhosts)) return 0;
    http_reply_text(conn, 421, "this server does not answer for that host name");
    return 421;
}

static int on_log_message(const struct mg_connection *conn, const char *message) {
    char text[512];
    log_warn("civetweb: %s", redact_secrets(message, text, sizeof text));
    return 1;
}

struct server *server_start(const struct config *cfg, struct ws_server *ws, struct hub *h, char *err, size_t cap) {
    char threads[32];
    snprintf(threads, sizeof threads, "%ld", cfg->http_threads);
    const char *options[] = {
        "listening_ports", "", /* none: the acceptor hands each request over (server_serve) */
        "document_root", cfg->root,
        "num_threads", threads,
        "index_files", "index.html",
        "enable_directory_listing", "no",
        "cgi_pattern", "",
        "ssi_pattern", "",
        "access_control_allow_origin", "",
        "additional_header", "X-Content-Type-Options: nosniff",
        "static_file_cache_control", "no-cache",
        "tcp_nodelay", "1",
        "enable_keep_alive", "no", /* a worker would read the next head itself: the acceptor reads them */
        "request_timeout_ms", "10000", /* a request body's reads, on the worker */
        NULL,
    };
    struct server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    srv->hub = h;
    srv->ws = ws;
    srv->started_ms = hub_now_ms();
    config_host_list(cfg, srv->hosts);
    srv->nhosts = cfg->nhosts;
    struct mg_callbacks callbacks = {0};
    callbacks.http_error = on_http_error;
    callbacks.end_request = on_end_request;
    callbacks.log_message = on_log_message;
    callbacks.begin_request = on_begin_request;
    struct mg_init_data init = {&callbacks, srv, options};
    unsigned code = 0;
    struct mg_error_data error = {&code, err, cap};
    srv->ctx = mg_start2(&init, &error);
    if (!srv->ctx) {
        free(srv);
        return NULL;
    }
    mg_set_request_handler(srv->ctx, "/healthz$", handle_healthz, srv);
    mg_set_request_handler(srv->ctx, "/metrics$", handle_metrics, srv);
    mg_set_request_handler(srv->ctx, "/auth$", handle_auth, srv);
    if (cfg->api_key[0] && !(srv->api = api_start(srv->ctx, h, cfg->api_key, cfg->max_message))) {
        snprintf(err, cap, "out of memory");
        server_stop(srv);
        return NULL;
    }
    return srv;
}

void server_stop(struct server *srv) {
    if (!srv) return;
    mg_stop(srv->ctx);
    api_free(srv->api);
    free(srv);
}

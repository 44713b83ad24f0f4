/* api: the HTTP API for backends (docs/API.md).
 *
 * A backend pushes to users over HTTP, like Centrifugo's server API or Pusher's REST trigger: send to
 * users, broadcast, publish to a room, list users and a room's users, disconnect a user. Every call
 * carries `Authorization: Bearer KEY` (--api-key); deliveries reach clients as
 * {"type":"message","from":"@server",...}, built by envelope.h like a client's and queued by the hub
 * like a client's, so they share its frames, bounds and metrics, and become cluster-wide with it.
 *
 * Two layers. api_parse and api_execute know nothing of CivetWeb: a request is its method, path,
 * Authorization header and body, so the unit tests and the fuzz target drive them directly. api_start
 * registers the CivetWeb handler for /api/ that reads a request into that form and writes the answer.
 *
 * Threads: the handler runs on CivetWeb worker threads (a 100 KiB stack: bodies nested deeper than
 * ROUTER_MAX_DEPTH are refused before cJSON's recursive parser sees them). The hub functions it calls
 * take the hub lock themselves; a push from a worker kicks the recipient's loop (outbox.h).
 * Errors: every refusal is an HTTP status with {"error":{"code":CODE,"message":TEXT}}. */
#ifndef SB_API_H
#define SB_API_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "hub.h"
#include "metrics.h"
#include "names.h"

#define API_REASON_MAX 123        /* bytes of a disconnect reason: a close frame's payload is 125 */
#define API_DEFAULT_CLOSE 4403    /* disconnect's code when none is given */
#define API_DEFAULT_REASON "disconnected by the server"

/* One request, as the HTTP layer read it. */
struct api_http {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* decoded, without the query: "/api/send" */
    const char *authorization; /* the header's value, or NULL */
    const char *body;          /* body_len bytes (POST); need not be NUL-terminated */
    size_t body_len;
    int body_too_large;        /* more than --max-message bytes were announced or sent: body is NULL */
    long max_body;             /* --max-message, for the 413's message */
};

/* What a valid request asks for. Pointers point into the request's body or into `json`. */
struct api_call {
    enum api_call_kind kind;
    struct cJSON *json;          /* the parsed body, owned (api_call_free) */
    const struct cJSON *to;      /* send: a name or an array of names, checked */
    int ntargets;                /* entries of `to`, duplicates included */
    char name[SB_NAME_MAX + 1];  /* publish's and GET /api/rooms/R's room; disconnect's, subscribe's user */
    char room[SB_NAME_MAX + 1];  /* subscribe's and unsubscribe's room */
    struct frame_part data;      /* send, broadcast, publish: `data` as the backend wrote it */
    uint16_t code;               /* disconnect */
    char reason[API_REASON_MAX + 1];
};

struct api_response {
    int status;
    const char *allow;  /* 405: the methods the path takes, for the Allow header */
    int challenge;      /* 401: send WWW-Authenticate: Bearer */
    char *body;         /* JSON text, malloc'd (api_response_free); NULL only when out of memory */
    size_t len;
};

/* Decides what `req` asks for, checking in this order: the API key (401), the path (404), the method
 * (405), the body's size (413), then the body (400). Returns 0 with *call filled (free it with
 * api_call_free), or -1 with *resp the error response; call->kind is set either way (API_OTHER for an
 * unknown path). `key` is the configured key. api_parse_head runs the checks the request's head
 * decides (through the announced size), before a body is read; api_parse_body the rest, after it;
 * api_parse both. */
int api_parse(const char *key, const struct api_http *req, struct api_call *call, struct api_response *resp);
int api_parse_head(const char *key, const struct api_http *req, struct api_call *call, struct api_response *resp);
int api_parse_body(const struct api_http *req, struct api_call *call, struct api_response *resp);
/* Carries out a parsed call on the hub and fills *resp: 200, or 500 when out of memory. */
void api_execute(struct hub *h, const struct api_call *call, struct api_response *resp);
/* Fills req's body, body_len and body_too_large from wherever the body comes from. */
typedef void (*api_body_reader)(void *ctx, struct api_http *req);
/* What the CivetWeb handler runs: api_parse_head, then (a POST whose head passed) read(ctx, req) when
 * read is not NULL, api_parse_body and api_execute, counted in metrics
 * (switchboard_api_requests_total). */
void api_handle(struct hub *h, const char *key, struct api_http *req, api_body_reader read, void *ctx,
                struct api_response *resp);
void api_call_free(struct api_call *call);
void api_response_free(struct api_response *resp);
/* 1 if `given` (given_len bytes) equals `key`, in a time that depends on neither's content nor on
 * where they differ, nor on given_len. */
int api_key_equal(const char *given, size_t given_len, const char *key);

struct api;
struct mg_context;
/* Registers the handler for /api/ on ctx. The key is copied; NULL when out of memory. */
struct api *api_start(struct mg_context *ctx, struct hub *h, const char *key, long max_message);
/* After CivetWeb has stopped (no handler can still run). */
void api_free(struct api *a);

#endif

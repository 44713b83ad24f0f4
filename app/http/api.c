/* api: the HTTP API for backends (see api.h and docs/API.md). */
#include "api.h"

#include <civetweb.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "http.h"
#include "hubapi.h"
#include "jsonspan.h"
#include "pendsend.h"
#include "router.h"
#include "utf8.h"

#define API_PREFIX "/api/"
#define API_ROOMS_PREFIX "/api/rooms/"
#define API_USERS_PREFIX "/api/users/"
#define API_TEXT_MAX 256 /* an error message */
/* {"delivered":N,"not_found":["a",...]}: every target listed at worst */
#define API_SEND_REPLY_MAX (64 + ENVELOPE_MAX_TARGETS * (SB_NAME_MAX + 3))

/* ---- Responses ---- */

static void set_body(struct api_response *resp, int status, const char *text, size_t len) {
    resp->status = status;
    resp->body = malloc(len + 1);
    resp->len = resp->body ? len : 0;
    if (resp->body) memcpy(resp->body, text, len + 1);
}

/* {"error":{"code":CODE,"message":TEXT}}; returns -1 for the caller to pass on. */
static int fail(struct api_response *resp, int status, const char *code, const char *message) {
    cJSON *e = cJSON_CreateObject(), *inner = cJSON_AddObjectToObject(e, "error");
    cJSON_AddStringToObject(inner, "code", code);
    cJSON_AddStringToObject(inner, "message", message);
    char *text = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    if (text) set_body(resp, status, text, strlen(text));
    else resp->status = status;
    free(text);
    return -1;
}

static int fail_protocol(struct api_response *resp, enum sb_error code, const char *message) {
    return fail(resp, 400, sb_error_names[code], message);
}

/* ---- Parsing a request ---- */

int api_key_equal(const char *given, size_t given_len, const char *key) {
    size_t key_len = strlen(key);
    volatile unsigned char diff = given_len != key_len;
    for (size_t i = 0; i < key_len; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
    return diff == 0;
}

/* 1 if the header is "Bearer KEY" (the scheme in any case, RFC 7235) with the configured key. */
static int authorized(const char *key, const char *header) {
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) return 0;
    const char *token = header + 7;
    while (*token == ' ') token++;
    size_t len = strlen(token);
    while (len && token[len - 1] == ' ') len--;
    return api_key_equal(token, len, key);
}

static const struct {
    const char *path;
    enum api_call_kind kind;
    const char *method;
} calls[] = {
    {"/api/send", API_SEND, "POST"},       {"/api/broadcast", API_BROADCAST, "POST"},
    {"/api/publish", API_PUBLISH, "POST"}, {"/api/users", API_USERS, "GET"},
    {"/api/disconnect", API_DISCONNECT, "POST"}, {"/api/subscribe", API_SUBSCRIBE, "POST"},
    {"/api/unsubscribe", API_UNSUBSCRIBE, "POST"},
};

/* Which call the path names; GET /api/rooms/R and /api/users/U copy R or U into call->name. */
static enum api_call_kind find_call(const char *path, struct api_call *call, const char **method) {
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        if (strcmp(path, calls[i].path) == 0) {
            *method = calls[i].method;
            return calls[i].kind;
        }
    }
    int room = strncmp(path, API_ROOMS_PREFIX, strlen(API_ROOMS_PREFIX)) == 0;
    if (!room && strncmp(path, API_USERS_PREFIX, strlen(API_USERS_PREFIX)) != 0) return API_OTHER;
    const char *name = path + strlen(room ? API_ROOMS_PREFIX : API_USERS_PREFIX);
    if (strlen(name) < sizeof call->name) memcpy(call->name, name, strlen(name) + 1); /* else "": invalid */
    *method = "GET";
    return room ? API_ROOM : API_USER;
}

/* The body as one JSON object, into call->json. */
static int parse_body(const struct api_http *req, struct api_call *call, struct api_response *resp) {
    if (!req->body || req->body_len == 0) return fail(resp, 400, "bad_json", "the body must be a JSON object");
    if (memchr(req->body, '\0', req->body_len)) return fail(resp, 400, "bad_json", "the body is not valid JSON");
    /* data goes out in text frames, and jsonspan's strict check takes UTF-8 as given */
    if (!utf8_valid((const uint8_t *)req->body, req->body_len)) return fail(resp, 400, "bad_json", "the body is not UTF-8");
    if (!jsonspan_shape_ok(req->body, req->body_len, ROUTER_MAX_DEPTH, 0))
        return fail(resp, 400, "bad_json", "the body is nested more than 64 levels deep");
    const char *end = NULL;
    call->json = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
    while (call->json && end < req->body + req->body_len && strchr(" \t\r\n", *end)) end++;
    if (!call->json || end != req->body + req->body_len) return fail(resp, 400, "bad_json", "the body is not valid JSON");
    if (!cJSON_IsObject(call->json)) return fail(resp, 400, "bad_request", "the body must be a JSON object");
    return 0;
}

/* `data`, as the backend wrote it. */
static int data_member(const struct api_http *req, struct api_call *call, struct api_response *resp) {
    const char *bytes = NULL;
    size_t len = 0;
    int found = jsonspan_member(req->body, req->body_len, "data", &bytes, &len);
    call->data = (struct frame_part){bytes, len};
    if (found > 0) return 0;
    return found < 0 ? fail_protocol(resp, ERR_BAD_JSON, "data is not strict JSON (RFC 8259)")
                     : fail_protocol(resp, ERR_BAD_REQUEST, "the body needs data");
}

/* A member that must be a user or room name, into call->name. */
static int name_member(struct api_call *call, const char *field, struct api_response *resp) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(call->json, field);
    if (cJSON_IsString(v) && name_valid(v->valuestring)) {
        snprintf(call->name, sizeof call->name, "%s", v->valuestring);
        return 0;
    }
    char text[API_TEXT_MAX];
    snprintf(text, sizeof text, "%s must be a %s name (1-64 of A-Z a-z 0-9 _ . -)", field, strcmp(field, "room") ? "user" : "room");
    return fail_protocol(resp, ERR_BAD_REQUEST, text);
}

static int parse_send(const struct api_http *req, struct api_call *call, struct api_response *resp) {
    enum sb_error code;
    const char *why;
    call->to = cJSON_GetObjectItemCaseSensitive(call->json, "to");
    call->ntargets = envelope_targets(call->to, &code, &why);
    if (call->ntargets < 0) return fail_protocol(resp, code, why);
    return data_member(req, call, resp);
}

static int close_code_ok(double code) {
    return code == 1000 || code == 1008 || (code >= 4000 && code <= 4999 && code == (double)(long)code);
}

static int parse_disconnect(struct api_call *call, struct api_response *resp) {
    if (name_member(call, "user", resp) < 0) return -1;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(call->json, "code");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(call->json, "reason");
    if (code && !(cJSON_IsNumber(code) && close_code_ok(code->valuedouble)))
        return fail_protocol(resp, ERR_BAD_REQUEST, "code must be 1000, 1008 or 4000-4999");
    if (reason && !(cJSON_IsString(reason) && strlen(reason->valuestring) <= API_REASON_MAX &&
                    utf8_valid((const uint8_t *)reason->valuestring, strlen(reason->valuestring))))
        return fail_protocol(resp, ERR_BAD_REQUEST, "reason must be a string of at most 123 bytes of UTF-8");
    call->code = code ? (uint16_t)code->valuedouble : API_DEFAULT_CLOSE;
    snprintf(call->reason, sizeof call->reason, "%s", reason ? reason->valuestring : API_DEFAULT_REASON);
    return 0;
}

/* {"user":U,"room":R}: the user into call->name, the room into call->room. */
static int parse_subscribe(struct api_call *call, struct api_response *resp) {
    if (name_member(call, "room", resp) < 0) return -1;
    memcpy(call->room, call->name, sizeof call->room);
    return name_member(call, "user", resp);
}

static int parse_call(const struct api_http *req, struct api_call *call, struct api_response *resp) {
    if (call->kind == API_USERS) return 0;
    if (call->kind == API_ROOM)
        return name_valid(call->name) ? 0 : fail_protocol(resp, ERR_BAD_REQUEST, "invalid room name");
    if (call->kind == API_USER)
        return name_valid(call->name) ? 0 : fail_protocol(resp, ERR_BAD_REQUEST, "invalid user name");
    if (parse_body(req, call, resp) < 0) return -1;
    switch (call->kind) {
    case API_SEND: return parse_send(req, call, resp);
    case API_BROADCAST: return data_member(req, call, resp);
    case API_PUBLISH: return name_member(call, "room", resp) < 0 ? -1 : data_member(req, call, resp);
    case API_DISCONNECT: return parse_disconnect(call, resp);
    case API_SUBSCRIBE:
    case API_UNSUBSCRIBE: return parse_subscribe(call, resp);
    default: return fail(resp, 404, "not_found", "no such API call");
    }
}

static int too_large(const struct api_http *req, struct api_response *resp) {
    char text[API_TEXT_MAX];
    snprintf(text, sizeof text, "the body is larger than --max-message (%ld bytes)", req->max_body);
    return fail(resp, 413, "too_large", text);
}

int api_parse_head(const char *key, const struct api_http *req, struct api_call *call, struct api_response *resp) {
    const char *method = NULL;
    memset(call, 0, sizeof *call);
    memset(resp, 0, sizeof *resp);
    call->kind = find_call(req->path ? req->path : "", call, &method);
    if (!authorized(key, req->authorization)) {
        resp->challenge = 1;
        return fail(resp, 401, "unauthorized", "Authorization: Bearer KEY with the server's API key is required");
    }
    if (call->kind == API_OTHER) return fail(resp, 404, "not_found", "no such API call");
    if (!req->method || strcmp(req->method, method) != 0) {
        char text[API_TEXT_MAX];
        snprintf(text, sizeof text, "use %s", method);
        resp->allow = method;
        return fail(resp, 405, "method_not_allowed", text);
    }
    return req->body_too_large ? too_large(req, resp) : 0;
}

int api_parse_body(const struct api_http *req, struct api_call *call, struct api_response *resp) {
    return req->body_too_large ? too_large(req, resp) : parse_call(req, call, resp);
}

int api_parse(const char *key, const struct api_http *req, struct api_call *call, struct api_response *resp) {
    return api_parse_head(key, req, call, resp) < 0 ? -1 : api_parse_body(req, call, resp);
}

void api_call_free(struct api_call *call) {
    cJSON_Delete(call->json);
    call->json = NULL;
}

void api_response_free(struct api_response *resp) {
    free(resp->body);
    resp->body = NULL;
}

/* ---- Carrying out a call ---- */

static void reply_count(struct api_response *resp, const char *field, size_t n) {
    char text[64];
    int len = snprintf(text, sizeof text, "{\"%s\":%zu}", field, n);
    set_body(resp, 200, text, (size_t)len);
}

/* Appends ,"name" (or "name" first) to a JSON array's items in buf. */
static size_t list_add(char *buf, size_t len, const char *name) {
    return len + (size_t)sprintf(buf + len, "%s\"%s\"", buf[len - 1] == '[' ? "" : ",", name);
}

/* A worker thread may wait: it collects the answers the router's sends collect (pendsend.h) and
 * waits for them, the engine bounding each. */
static void exec_send(struct hub *h, const struct api_call *call, struct api_response *resp) {
    struct pendsend *ps = pendsend_new(h, NULL, (size_t)call->ntargets);
    if (!ps) {
        fail(resp, 500, "internal", "out of memory");
        return;
    }
    const cJSON *t = cJSON_IsArray(call->to) ? call->to->child : call->to;
    for (int i = 0; i < call->ntargets; i++, t = t->next) {
        if (cJSON_IsArray(call->to) && envelope_seen_before(call->to, t)) continue;
        struct frame *f = envelope_frame(ENVELOPE_SERVER, "to", t->valuestring, &call->data);
        if (f) pendsend_to(ps, t->valuestring, f);
        frame_unref(f);
    }
    struct pendsend_tally tl;
    pendsend_wait(ps, &tl);
    char missing[API_SEND_REPLY_MAX] = "[";
    size_t mlen = 1;
    for (size_t i = 0; i < tl.nmissing; i++) mlen = list_add(missing, mlen, tl.missing[i]);
    pendsend_free(ps);
    char text[API_SEND_REPLY_MAX + 64];
    int len = snprintf(text, sizeof text, "{\"delivered\":%ld,\"not_found\":%s]}", tl.delivered, missing);
    set_body(resp, 200, text, (size_t)len);
}

static void exec_broadcast(struct hub *h, const struct api_call *call, struct api_response *resp) {
    struct frame *f = envelope_frame(ENVELOPE_SERVER, NULL, NULL, &call->data);
    size_t n = f ? hub_broadcast(h, NULL, f) : 0;
    frame_unref(f);
    if (f) reply_count(resp, "delivered", n);
    else fail(resp, 500, "internal", "out of memory");
}

static void exec_publish(struct hub *h, const struct api_call *call, struct api_response *resp) {
    struct frame *f = envelope_frame(ENVELOPE_SERVER, "room", call->name, &call->data);
    size_t n = f ? hub_publish_server(h, call->name, f) : 0;
    frame_unref(f);
    if (f) reply_count(resp, "delivered", n);
    else fail(resp, 500, "internal", "out of memory");
}

/* {HEAD[...]}: `head` is {"users": or {"room":"R","users":. */
static void reply_list(struct api_response *resp, const char *head, char *list, size_t len) {
    size_t hlen = strlen(head);
    char *text = list ? malloc(hlen + len + 2) : NULL;
    if (!text) {
        free(list);
        fail(resp, 500, "internal", "out of memory");
        return;
    }
    memcpy(text, head, hlen);
    memcpy(text + hlen, list, len);
    memcpy(text + hlen + len, "}", 2);
    free(list);
    resp->status = 200;
    resp->body = text;
    resp->len = hlen + len + 1;
}

void api_execute(struct hub *h, const struct api_call *call, struct api_response *resp) {
    char head[64 + SB_NAME_MAX];
    size_t len = 0;
    memset(resp, 0, sizeof *resp);
    switch (call->kind) {
    case API_SEND: exec_send(h, call, resp); break;
    case API_BROADCAST: exec_broadcast(h, call, resp); break;
    case API_PUBLISH: exec_publish(h, call, resp); break;
    case API_USERS: {
        char *list = hub_users_json(h, &len);
        reply_list(resp, "{\"users\":", list, len);
        break;
    }
    case API_ROOM: {
        char *list = hub_room_users_json(h, call->name, &len);
        snprintf(head, sizeof head, "{\"room\":\"%s\",\"users\":", call->name);
        reply_list(resp, head, list, len);
        break;
    }
    case API_USER: {
        char text[64 + SB_NAME_MAX];
        int n = snprintf(text, sizeof text, "{\"user\":\"%s\",\"online\":%s}", call->name,
                         hub_user_online(h, call->name) ? "true" : "false");
        set_body(resp, 200, text, (size_t)n);
        break;
    }
    case API_DISCONNECT: reply_count(resp, "closed", hub_close_user(h, call->name, call->code, call->reason)); break;
    case API_SUBSCRIBE: reply_count(resp, "subscribed", hub_subscribe_user(h, call->name, call->room, 1)); break;
    case API_UNSUBSCRIBE: reply_count(resp, "unsubscribed", hub_subscribe_user(h, call->name, call->room, 0)); break;
    default: fail(resp, 404, "not_found", "no such API call");
    }
}

void api_handle(struct hub *h, const char *key, struct api_http *req, api_body_reader read, void *ctx,
                struct api_response *resp) {
    struct api_call call;
    int ok = api_parse_head(key, req, &call, resp) == 0;
    if (ok && read && req->method && strcmp(req->method, "POST") == 0) read(ctx, req);
    if (ok) ok = api_parse_body(req, &call, resp) == 0;
    if (ok) api_execute(h, &call, resp);
    metrics_api(call.kind, resp->status);
    api_call_free(&call);
}

/* ---- CivetWeb glue ---- */

struct api {
    struct hub *hub;
    long max_message;
    char key[];
};

/* Reads the body into *out (malloc'd, *len bytes). Returns 0, 1 when it is over `max` bytes (what
 * is left unread is drained by CivetWeb's closing), or -1 when it could not be read. Runs only once
 * api_parse_head passed, which refuses an announced length over `max` before anything is allocated. */
static int read_body(struct mg_connection *conn, long max, char **out, size_t *len) {
    long long announced = mg_get_request_info(conn)->content_length;
    *out = NULL;
    *len = 0;
    size_t cap = announced >= 0 ? (size_t)announced + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    int got = buf ? 1 : -1;
    while (got > 0 && n <= (size_t)max) {
        if (n == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                got = -1;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        got = mg_read(conn, buf + n, cap - n);
        if (got > 0) n += (size_t)got;
    }
    *out = buf;
    *len = n;
    return n > (size_t)max ? 1 : got < 0 ? -1 : 0;
}

static void write_response(struct mg_connection *conn, const struct api_response *resp) {
    char extra[64] = "";
    if (resp->challenge) snprintf(extra, sizeof extra, "WWW-Authenticate: Bearer\r\n");
    if (resp->allow) snprintf(extra, sizeof extra, "Allow: %s\r\n", resp->allow);
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    const char *body = resp->body ? resp->body : oom;
    http_reply_headers(conn, resp->body ? resp->status : 500, "application/json", extra, body,
                       resp->body ? resp->len : sizeof oom - 1);
}

/* What the body reader needs, and the body it read (the handler frees it). */
struct body_read {
    struct mg_connection *conn;
    long max;
    char *body;
};

static void read_into(void *ctx, struct api_http *req) {
    struct body_read *b = ctx;
    size_t len = 0;
    int read = read_body(b->conn, b->max, &b->body, &len);
    if (read == 0) { /* a body that could not be read is no body: bad_json */
        req->body = b->body;
        req->body_len = len;
    }
    req->body_too_large = read == 1;
}

/* The key, path, method and announced length are checked from the head before any byte of the body
 * is read or allocated: a caller without the key cannot hold a worker by announcing a body it never
 * sends. */
static int handle(struct mg_connection *conn, void *cbdata) {
    struct api *a = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct api_http req = {ri->request_method, ri->local_uri, mg_get_header(conn, "Authorization"), NULL, 0,
                           ri->content_length > a->max_message, a->max_message};
    struct body_read b = {conn, a->max_message, NULL};
    struct api_response resp;
    api_handle(a->hub, a->key, &req, read_into, &b, &resp);
    free(b.body);
    write_response(conn, &resp);
    int status = resp.status;
    api_response_free(&resp);
    return status;
}

struct api *api_start(struct mg_context *ctx, struct hub *h, const char *key, long max_message) {
    size_t klen = strlen(key);
    struct api *a = malloc(sizeof *a + klen + 1);
    if (!a) return NULL;
    a->hub = h;
    a->max_message = max_message;
    memcpy(a->key, key, klen + 1);
    mg_set_request_handler(ctx, API_PREFIX, handle, a);
    return a;
}

void api_free(struct api *a) { free(a); }

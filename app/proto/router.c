/* router: the JSON command protocol (see router.h and docs/PROTOCOL.md). */
#include "router.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "envelope.h"
#include "jsonspan.h"
#include "names.h"
#include "pendsend.h"
#include "perms.h"
#include "since.h"

#define ROUTER_TEXT_MAX 512 /* error message text */

/* One command: its text as received, and cJSON's reading of it (the text's `data` is relayed). */
struct request {
    const cJSON *msg, *id;
    const char *text;
    size_t len;
};

/* A command handler returns the ack's `delivered` count, or -1 when it already replied (an error, an
 * ack the hub completed with a list, or a send's reply, which pendsend.h may queue later). */
typedef long (*command_fn)(struct hub *h, struct conn *c, const struct request *r);

static void reply(struct hub *h, struct conn *c, cJSON *obj) {
    struct frame *f = frame_json(obj);
    if (f) hub_reply(h, c, f);
    frame_unref(f);
    cJSON_Delete(obj);
}

/* An error's frame (counted), NULL when out of memory. */
static struct frame *error_frame(enum sb_error code, const char *message, const cJSON *id) {
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "type", "error");
    cJSON_AddStringToObject(e, "code", sb_error_names[code]);
    cJSON_AddStringToObject(e, "message", message);
    if (id) cJSON_AddItemToObject(e, "id", cJSON_Duplicate(id, 0));
    metrics_error(code);
    struct frame *f = frame_json(e);
    cJSON_Delete(e);
    return f;
}

void router_error(struct hub *h, struct conn *c, enum sb_error code, const char *message, const cJSON *id) {
    struct frame *f = error_frame(code, message, id);
    if (f) hub_reply(h, c, f);
    frame_unref(f);
}

static cJSON *ack_object(const cJSON *id, long delivered) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "type", "ack");
    if (id) cJSON_AddItemToObject(a, "id", cJSON_Duplicate(id, 0));
    cJSON_AddNumberToObject(a, "delivered", (double)delivered);
    return a;
}

static void ack(struct hub *h, struct conn *c, const cJSON *id, long delivered) { reply(h, c, ack_object(id, delivered)); }

/* The ack of a command (with its id, if any) without the closing brace, for the hub to complete with
 * a list under its lock (presence.h); malloc'd, NULL when out of memory. */
static char *ack_head(const cJSON *id) {
    cJSON *a = ack_object(id, 0);
    char *text = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    if (text) text[strlen(text) - 1] = '\0';
    return text;
}

/* The frame of a delivery from c (envelope.h): `key` ("to" or "room", or NULL for a broadcast) names
 * where it went. */
static struct frame *message_frame(const struct conn *from, const char *key, const char *value,
                                   const struct frame_part *data) {
    return envelope_frame(from->user, key, value, data);
}

/* A field that must be a valid name; sends bad_request and returns NULL otherwise. */
static const char *name_field(struct hub *h, struct conn *c, const cJSON *msg, const char *field,
                              const char *what, const cJSON *id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, field);
    if (cJSON_IsString(v) && name_valid(v->valuestring)) return v->valuestring;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "invalid %s name", what);
    router_error(h, c, ERR_BAD_REQUEST, text, id);
    return NULL;
}

/* The command's `data` as the sender wrote it, into *data; 0 after an error if it is missing or
 * not strict JSON. */
static int data_field(struct hub *h, struct conn *c, const struct request *r, const char *cmd, struct frame_part *data) {
    const char *bytes = NULL;
    size_t len = 0;
    int found = jsonspan_member(r->text, r->len, "data", &bytes, &len);
    *data = (struct frame_part){bytes, len};
    if (found > 0) return 1;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, found < 0 ? "%s data is not strict JSON (RFC 8259)" : "%s needs data", cmd);
    router_error(h, c, found < 0 ? ERR_BAD_JSON : ERR_BAD_REQUEST, text, r->id);
    return 0;
}

/* Checks `to` (envelope.h); returns the count, or -1 after an error. */
static int check_targets(struct hub *h, struct conn *c, const cJSON *to, const cJSON *id) {
    enum sb_error code;
    const char *why;
    int n = envelope_targets(to, &code, &why);
    if (n < 0) router_error(h, c, code, why, id);
    return n;
}

/* A refusal by the permissions (perms.h): unauthorized, counted. */
static void refuse_permission(struct hub *h, struct conn *c, const char *text, const cJSON *id) {
    metrics_add(M_PERMISSION_REFUSALS, 1);
    router_error(h, c, ERR_UNAUTHORIZED, text, id);
}

/* 1 if c's send may reach every one of its n targets; else 0 after an error naming the first that not. */
static int targets_allowed(struct hub *h, struct conn *c, const cJSON *to, int n, const cJSON *id) {
    const cJSON *t = cJSON_IsArray(to) ? to->child : to;
    for (int i = 0; i < n; i++, t = t->next) {
        if (perms_send_allowed(auth_claims(c), t->valuestring)) continue;
        char text[ROUTER_TEXT_MAX];
        snprintf(text, sizeof text, "you may not send to %s", t->valuestring);
        refuse_permission(h, c, text, id);
        return 0;
    }
    return 1;
}

/* A send's one reply (pendsend.h): not_found naming the targets found nowhere, else the ack if the
 * command had an id. Any thread. */
static struct frame *send_reply(const struct pendsend_tally *t, const cJSON *id) {
    if (!t->nmissing) {
        cJSON *a = id ? ack_object(id, t->delivered) : NULL;
        struct frame *f = a ? frame_json(a) : NULL;
        cJSON_Delete(a);
        return f;
    }
    char missing[ROUTER_TEXT_MAX] = "not online: ";
    for (size_t i = 0; i < t->nmissing; i++) {
        size_t len = strlen(missing);
        snprintf(missing + len, sizeof missing - len, "%s%s", i ? ", " : "", t->missing[i]);
    }
    return error_frame(ERR_NOT_FOUND, missing, id);
}

/* Replies itself (pendsend.h): later, without the loop waiting, when a target is asked of the cluster. */
static long cmd_send(struct hub *h, struct conn *c, const struct request *r) {
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(r->msg, "to");
    struct frame_part data;
    int n = check_targets(h, c, to, r->id);
    if (n < 0 || !targets_allowed(h, c, to, n, r->id) || !data_field(h, c, r, "send", &data)) return -1;
    struct pendsend *ps = pendsend_new(h, c, (size_t)n);
    if (!ps) {
        router_error(h, c, ERR_BAD_REQUEST, "out of memory", r->id);
        return -1;
    }
    const cJSON *t = cJSON_IsArray(to) ? to->child : to;
    for (int i = 0; i < n; i++, t = t->next) {
        if (cJSON_IsArray(to) && envelope_seen_before(to, t)) continue;
        struct frame *f = message_frame(c, "to", t->valuestring, &data);
        if (f) pendsend_to(ps, t->valuestring, f);
        frame_unref(f);
    }
    pendsend_reply(ps, send_reply, r->id);
    return -1;
}

static long cmd_broadcast(struct hub *h, struct conn *c, const struct request *r) {
    struct frame_part data;
    if (!data_field(h, c, r, "broadcast", &data)) return -1;
    struct frame *f = message_frame(c, NULL, NULL, &data);
    long n = f ? (long)hub_broadcast(h, c, f) : 0;
    frame_unref(f);
    return n;
}

/* 1 if the token's rooms claim lets c use `room` (auth.h); else 0 after an error. */
static int room_allowed(struct hub *h, struct conn *c, const char *room, const cJSON *id) {
    if (auth_room_allowed(c, room)) return 1;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "your token does not allow room %s", room);
    router_error(h, c, ERR_UNAUTHORIZED, text, id);
    return 0;
}

static long cmd_publish(struct hub *h, struct conn *c, const struct request *r) {
    const char *room = name_field(h, c, r->msg, "room", "room", r->id);
    struct frame_part data;
    if (!room || !room_allowed(h, c, room, r->id) || !data_field(h, c, r, "publish", &data)) return -1;
    struct frame *f = message_frame(c, "room", room, &data);
    long n = f ? hub_publish(h, c, room, f) : 0;
    frame_unref(f);
    if (n >= 0) return n;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "not a member of room %s", room);
    router_error(h, c, ERR_UNAUTHORIZED, text, r->id);
    return -1;
}

#define SINCE_WHY "since must be {\"epoch\":EPOCH,\"offset\":N}"

static long cmd_join(struct hub *h, struct conn *c, const struct request *r) {
    const char *room = name_field(h, c, r->msg, "room", "room", r->id);
    struct hist_pos since;
    int has_since = room ? since_json_pos(cJSON_GetObjectItemCaseSensitive(r->msg, "since"), &since) : 0;
    if (has_since < 0) router_error(h, c, ERR_BAD_REQUEST, SINCE_WHY, r->id);
    if (!room || has_since < 0 || !room_allowed(h, c, room, r->id)) return -1;
    /* rooms presence: every join is acked, with the room's members (docs/PROTOCOL.md) */
    char *head = presence_mode(h) == PRESENCE_ROOMS ? ack_head(r->id) : NULL;
    int acked = head != NULL;
    enum hub_status s = hub_join_from(h, c, room, has_since ? &since : NULL, head);
    free(head);
    if (s == HUB_OK) return acked ? -1 : 0;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "at most %ld rooms per connection", hub_max_rooms(h));
    router_error(h, c, ERR_BAD_REQUEST, s == HUB_TOO_MANY_ROOMS ? text : "out of memory", r->id);
    return -1;
}

static long cmd_leave(struct hub *h, struct conn *c, const struct request *r) {
    const char *room = name_field(h, c, r->msg, "room", "room", r->id);
    if (!room) return -1;
    if (hub_leave(h, c, room) == HUB_OK) return 0;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "not a member of room %s", room);
    router_error(h, c, ERR_NOT_FOUND, text, r->id);
    return -1;
}

static long cmd_users(struct hub *h, struct conn *c, const struct request *r) {
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(r->msg, "after");
    if (after && !name_field(h, c, r->msg, "after", "after", r->id)) return -1;
    hub_reply_users(h, c, after ? after->valuestring : NULL);
    return 0;
}

/* watch and unwatch exist with --presence rooms only; 0 after an error elsewhere. */
static int watch_allowed(struct hub *h, struct conn *c, const char *cmd, const cJSON *id) {
    if (presence_mode(h) == PRESENCE_ROOMS) return 1;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "%s needs a server with --presence rooms", cmd);
    router_error(h, c, ERR_BAD_REQUEST, text, id);
    return 0;
}

/* The command's `users`: an array of 1 to WATCH_MAX valid names, into a malloc'd *names pointing
 * into the message; the count, or -1 after an error. */
static int users_field(struct hub *h, struct conn *c, const struct request *r, const char *cmd, const char ***names) {
    const cJSON *users = cJSON_GetObjectItemCaseSensitive(r->msg, "users"), *u;
    int n = cJSON_IsArray(users) ? cJSON_GetArraySize(users) : 0;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "%s needs users: an array of 1 to %d user names", cmd, WATCH_MAX);
    *names = n > 0 && n <= WATCH_MAX ? malloc((size_t)n * sizeof **names) : NULL;
    int k = 0;
    const cJSON *list = *names ? users : NULL;
    cJSON_ArrayForEach(u, list) {
        if (!cJSON_IsString(u) || !name_valid(u->valuestring)) break;
        (*names)[k++] = u->valuestring;
    }
    if (*names && k == n) return n;
    free(*names);
    *names = NULL;
    router_error(h, c, ERR_BAD_REQUEST, text, r->id);
    return -1;
}

static long cmd_watch(struct hub *h, struct conn *c, const struct request *r) {
    const char **names = NULL;
    int n = watch_allowed(h, c, "watch", r->id) ? users_field(h, c, r, "watch", &names) : -1;
    char *head = n > 0 ? ack_head(r->id) : NULL;
    enum presence_status s = head ? presence_watch(h, c, names, (size_t)n, head) : PRESENCE_NO_MEMORY;
    free(head);
    free(names);
    if (n < 0 || s == PRESENCE_DONE) return -1;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "at most %d watched users per connection", WATCH_MAX);
    router_error(h, c, ERR_BAD_REQUEST, s == PRESENCE_TOO_MANY ? text : "out of memory", r->id);
    return -1;
}

static long cmd_unwatch(struct hub *h, struct conn *c, const struct request *r) {
    const char **names = NULL;
    int n = watch_allowed(h, c, "unwatch", r->id) ? users_field(h, c, r, "unwatch", &names) : -1;
    if (n > 0) presence_unwatch(h, c, names, (size_t)n);
    free(names);
    return n > 0 ? 0 : -1;
}

static long cmd_ping(struct hub *h, struct conn *c, const struct request *r) {
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "type", "pong");
    reply(h, c, p);
    return 0;
}

/* The command's `token`, a string; NULL after an error otherwise. */
static const cJSON *token_field(struct hub *h, struct conn *c, const struct request *r, const char *cmd) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r->msg, "token");
    if (cJSON_IsString(t)) return t;
    char text[ROUTER_TEXT_MAX];
    snprintf(text, sizeof text, "%s needs token: a JWT", cmd);
    router_error(h, c, ERR_BAD_REQUEST, text, r->id);
    return NULL;
}

/* hello on a server with a key: the token names the connection, never `user`. */
static long hello_token(struct hub *h, struct conn *c, const struct request *r) {
    if (cJSON_GetObjectItemCaseSensitive(r->msg, "user")) {
        router_error(h, c, ERR_UNAUTHORIZED, "this server takes the user from a token: send hello with token only", r->id);
        return -1;
    }
    const cJSON *t = token_field(h, c, r, "hello");
    if (!t) return -1;
    char text[AUTH_MESSAGE_MAX];
    enum sb_error code;
    if (auth_hello(h, c, t->valuestring, strlen(t->valuestring), &code, text, sizeof text) == 0) return 0;
    router_error(h, c, code, text, r->id);
    return -1;
}

static long cmd_hello(struct hub *h, struct conn *c, const struct request *r) {
    /* what the welcome this hello brings recovers (hub.h) */
    if (since_json(cJSON_GetObjectItemCaseSensitive(r->msg, "since"), &c->since) < 0) {
        router_error(h, c, ERR_BAD_REQUEST, "since must be {\"user\":POSITION,\"broadcast\":POSITION}, each "
                     "{\"epoch\":EPOCH,\"offset\":N}", r->id);
        return -1;
    }
    if (c->auth) return hello_token(h, c, r);
    const char *user = name_field(h, c, r->msg, "user", "user", r->id);
    if (!user) return -1;
    if (!name_claimable(user)) {
        router_error(h, c, ERR_BAD_REQUEST, "user names starting with " SB_ID_PREFIX " are reserved", r->id);
        return -1;
    }
    enum hub_status s = hub_rename(h, c, user);
    if (s == HUB_OK) return 0;
    char full[ROUTER_TEXT_MAX];
    snprintf(full, sizeof full, "that user has too many connections (%ld)", hub_max_user_conns(h));
    router_error(h, c, ERR_BAD_REQUEST,
                 s == HUB_ALREADY_NAMED ? "this connection already has a name" : s == HUB_USER_FULL ? full : "out of memory",
                 r->id);
    return -1;
}

static long unknown_type(struct hub *h, struct conn *c, const char *type, const cJSON *id);

/* refresh exists only on a server with a key; elsewhere it is an unknown type, as before. */
static long cmd_refresh(struct hub *h, struct conn *c, const struct request *r) {
    if (!c->auth) return unknown_type(h, c, "refresh", r->id);
    const cJSON *t = token_field(h, c, r, "refresh");
    if (!t) return -1;
    char text[AUTH_MESSAGE_MAX];
    if (auth_refresh(h, c, t->valuestring, strlen(t->valuestring), text, sizeof text) == 0) return 0;
    router_error(h, c, ERR_UNAUTHORIZED, text, r->id);
    return -1;
}

static const struct {
    const char *type;
    command_fn fn;
} commands[] = {
    {"send", cmd_send}, {"broadcast", cmd_broadcast}, {"publish", cmd_publish}, {"join", cmd_join},
    {"leave", cmd_leave}, {"users", cmd_users}, {"ping", cmd_ping}, {"hello", cmd_hello},
    {"refresh", cmd_refresh}, {"watch", cmd_watch}, {"unwatch", cmd_unwatch},
};

/* The length of s cut to at most max bytes without splitting a UTF-8 character. */
static int utf8_prefix(const char *s, size_t max) {
    size_t n = strnlen(s, max);
    while (n > 0 && s[n] && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return (int)n;
}

static command_fn find_command(const char *type) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].type, type) == 0) return commands[i].fn;
    return NULL;
}

static long unknown_type(struct hub *h, struct conn *c, const char *type, const cJSON *id) {
    char why[ROUTER_TEXT_MAX];
    snprintf(why, sizeof why, "unknown type %.*s", utf8_prefix(type, 64), type);
    router_error(h, c, ERR_UNKNOWN_TYPE, why, id);
    return -1;
}

static int id_valid(const cJSON *id) {
    return cJSON_IsNumber(id) || (cJSON_IsString(id) && strlen(id->valuestring) <= ROUTER_MAX_ID);
}

/* An id must be a number or a short string; returns 0, or -1 after an error. */
static int check_id(struct hub *h, struct conn *c, const cJSON *id) {
    if (!id || id_valid(id)) return 0;
    router_error(h, c, ERR_BAD_REQUEST, "id must be a number or a string of at most 64 characters", NULL);
    return -1;
}

static void dispatch(struct hub *h, struct conn *c, const cJSON *msg, const char *text, size_t len) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(msg, "type");
    if (check_id(h, c, id) < 0) return;
    if (!cJSON_IsString(type)) {
        router_error(h, c, ERR_BAD_REQUEST, "type must be a string", id);
        return;
    }
    if (c->pending && strcmp(type->valuestring, "hello") != 0) {
        router_error(h, c, ERR_UNAUTHORIZED, "authenticate first: send {\"type\":\"hello\",\"token\":JWT}", id);
        return;
    }
    command_fn fn = find_command(type->valuestring);
    if (!fn) {
        unknown_type(h, c, type->valuestring, id);
        return;
    }
    if (!perms_command_allowed(auth_claims(c), type->valuestring)) {
        char why[ROUTER_TEXT_MAX];
        snprintf(why, sizeof why, "%s is not allowed on this connection", type->valuestring);
        refuse_permission(h, c, why, id);
        return;
    }
    struct request r = {msg, id, text, len};
    long delivered = fn(h, c, &r);
    if (delivered >= 0 && id) ack(h, c, id, delivered);
}

/* Parses exactly one JSON value that fills the text (cJSON alone would ignore what follows it). */
static cJSON *parse_whole(const char *text, size_t len) {
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    while (v && end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
    if (v && end != text + len) {
        cJSON_Delete(v);
        v = NULL;
    }
    return v;
}

void router_handle(struct hub *h, struct conn *c, const char *text, size_t len) {
    if (!jsonspan_shape_ok(text, len, ROUTER_MAX_DEPTH, 0)) {
        router_error(h, c, ERR_BAD_JSON, "message is nested more than 64 levels deep", NULL);
        return;
    }
    cJSON *msg = parse_whole(text, len);
    if (!msg) router_error(h, c, ERR_BAD_JSON, "message is not valid JSON", NULL);
    else if (!cJSON_IsObject(msg)) router_error(h, c, ERR_BAD_REQUEST, "message must be a JSON object", NULL);
    else dispatch(h, c, msg, text, len);
    cJSON_Delete(msg);
}

void router_refuse(struct hub *h, struct conn *c, const char *text, size_t len, enum sb_error code, const char *message) {
    cJSON *msg = jsonspan_shape_ok(text, len, ROUTER_MAX_DEPTH, 0) ? parse_whole(text, len) : NULL;
    const cJSON *id = cJSON_IsObject(msg) ? cJSON_GetObjectItemCaseSensitive(msg, "id") : NULL;
    router_error(h, c, code, message, id_valid(id) ? id : NULL);
    cJSON_Delete(msg);
}

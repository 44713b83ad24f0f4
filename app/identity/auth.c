/* auth: tokens at the handshake, hello and refresh; the rooms claim; the deadlines (see auth.h). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "names.h"

const char *const auth_where_names[AUTH__WHERE] = {"handshake", "hello", "refresh"};

const char *const auth_reason_names[AUTH__REASONS] = {
    [AUTH_OTHER_SUBJECT - JWT__COUNT] = "other_subject",
    [AUTH_NOT_LATER - JWT__COUNT] = "not_later",
};

struct auth_conn {
    const struct jwt_verifier *v;
    int verified;             /* claims hold a checked token */
    struct jwt_claims claims; /* the token in force */
};

static const struct hub_deadline auth_timeout = {0, AUTH_CLOSE_TIMEOUT, "authentication timeout"};

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct hub_deadline auth_expiry_deadline(int64_t exp_s) {
    int64_t left = (exp_s + JWT_LEEWAY_S) * 1000 - wall_ms();
    int64_t at = hub_now_ms() + (left > 0 ? left : 0);
    return (struct hub_deadline){at > 0 ? at : 1, AUTH_CLOSE_EXPIRED, "token expired"};
}

static void count_refusal(enum auth_where where, int reason) { metrics_token_refusal((int)where, reason); }

/* Checks a token, counting a refusal at `where`. */
static enum jwt_error verify(const struct jwt_verifier *v, const char *token, size_t len, enum auth_where where,
                             struct jwt_claims *out) {
    enum jwt_error e = jwt_verify(v, token, len, (int64_t)time(NULL), out);
    if (e != JWT_OK) count_refusal(where, (int)e);
    return e;
}

/* The token of an `Authorization: Bearer TOKEN` header, or NULL for none or another scheme. */
static const char *bearer(const char *authorization) {
    static const char scheme[] = "Bearer";
    if (!authorization || strncasecmp(authorization, scheme, sizeof scheme - 1) != 0) return NULL;
    const char *t = authorization + sizeof scheme - 1;
    if (*t != ' ') return NULL;
    while (*t == ' ') t++;
    return t;
}

/* Checks the handshake's token, from the header or else ?token= (decoded into a buffer of its own:
 * a token may be up to JWT_MAX_TOKEN bytes). 1 if a token was offered, 0 if none. */
static int handshake_token(const struct jwt_verifier *v, const char *query, const char *authorization,
                           struct jwt_claims *claims, enum jwt_error *why) {
    const char *header = bearer(authorization);
    if (header) {
        size_t len = strlen(header);
        while (len && header[len - 1] == ' ') len--;
        *why = verify(v, header, len, AUTH_AT_HANDSHAKE, claims);
        return 1;
    }
    char *buf = query ? malloc(JWT_MAX_TOKEN + 2) : NULL;
    int n = buf ? query_param(query, "token", buf, JWT_MAX_TOKEN + 2) : QUERY_ABSENT;
    if (n == QUERY_BAD) {
        *why = strlen(query) > JWT_MAX_TOKEN ? JWT_TOO_LARGE : JWT_MALFORMED;
        count_refusal(AUTH_AT_HANDSHAKE, (int)*why);
    } else if (n >= 0) {
        *why = verify(v, buf, (size_t)n, AUTH_AT_HANDSHAKE, claims);
    }
    free(buf);
    return n != QUERY_ABSENT;
}

enum auth_result auth_handshake(const struct jwt_verifier *v, const char *query, const char *authorization,
                                struct auth_conn **out, enum jwt_error *why) {
    *out = NULL;
    *why = JWT_OK;
    if (!v) return AUTH_OPEN;
    struct auth_conn *a = calloc(1, sizeof *a);
    if (!a) return AUTH_NO_MEMORY;
    a->v = v;
    if (!handshake_token(v, query, authorization, &a->claims, why)) {
        *out = a;
        return AUTH_PENDING;
    }
    if (*why != JWT_OK) {
        free(a);
        return AUTH_REFUSED;
    }
    a->verified = 1;
    *out = a;
    return AUTH_VERIFIED;
}

void auth_conn_free(struct auth_conn *a) {
    if (!a) return;
    jwt_claims_free(&a->claims);
    free(a);
}

const char *auth_attach(struct conn *c, struct auth_conn *a) {
    c->auth = a;
    if (!a) return NULL;
    if (a->verified) {
        c->exp_s = a->claims.exp;
        c->deadline = auth_expiry_deadline(a->claims.exp);
        return a->claims.sub;
    }
    c->pending = 1;
    c->deadline = auth_timeout;
    c->deadline.at_ms = hub_now_ms() + AUTH_TIMEOUT_MS;
    return NULL;
}

int auth_hello(struct hub *h, struct conn *c, const char *token, size_t len, enum sb_error *code, char *msg,
               size_t cap) {
    struct jwt_claims claims;
    *code = ERR_BAD_REQUEST;
    if (!c->pending) {
        snprintf(msg, cap, "this connection is already authenticated; send refresh with a new token");
        return -1;
    }
    enum jwt_error e = verify(c->auth->v, token, len, AUTH_AT_HELLO, &claims);
    if (e != JWT_OK) {
        *code = ERR_UNAUTHORIZED;
        snprintf(msg, cap, "%s", jwt_error_text(e));
        return -1;
    }
    struct hub_deadline d = auth_expiry_deadline(claims.exp);
    c->exp_s = claims.exp; /* the welcome shows it */
    enum hub_status s = hub_authenticate(h, c, claims.sub, &d);
    if (s != HUB_OK) {
        c->exp_s = 0;
        jwt_claims_free(&claims);
        if (s == HUB_USER_FULL) snprintf(msg, cap, "that user has too many connections (%ld)", hub_max_user_conns(h));
        else snprintf(msg, cap, "out of memory");
        return -1;
    }
    jwt_claims_free(&c->auth->claims);
    c->auth->claims = claims;
    c->auth->verified = 1;
    return 0;
}

int auth_refresh(struct hub *h, struct conn *c, const char *token, size_t len, char *msg, size_t cap) {
    struct jwt_claims claims;
    if (!c->auth->verified) {
        snprintf(msg, cap, "authenticate first: send hello with a token");
        return -1;
    }
    enum jwt_error e = verify(c->auth->v, token, len, AUTH_AT_REFRESH, &claims);
    if (e != JWT_OK) {
        snprintf(msg, cap, "%s", jwt_error_text(e));
        return -1;
    }
    int why = strcmp(claims.sub, c->auth->claims.sub) != 0 ? AUTH_OTHER_SUBJECT
              : claims.exp <= c->auth->claims.exp      ? AUTH_NOT_LATER
                                                       : 0;
    if (why) {
        count_refusal(AUTH_AT_REFRESH, why);
        snprintf(msg, cap, why == AUTH_OTHER_SUBJECT ? "the token is for another user"
                                                     : "the token must expire later than the current one");
        jwt_claims_free(&claims);
        return -1;
    }
    struct hub_deadline d = auth_expiry_deadline(claims.exp);
    hub_set_deadline(h, c, &d);
    c->exp_s = claims.exp;
    jwt_claims_free(&c->auth->claims);
    c->auth->claims = claims;
    return 0;
}

const struct jwt_claims *auth_claims(const struct conn *c) {
    return c->auth && c->auth->verified ? &c->auth->claims : NULL;
}

int auth_room_allowed(const struct conn *c, const char *room) {
    return !c->auth || jwt_room_allowed(&c->auth->claims, room);
}

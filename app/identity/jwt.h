/* jwt: verifying the signed tokens that prove who a user is (RFC 7519 JWTs in RFC 7515 compact form).
 *
 * A verifier holds the one key the operator configured (an HS256 secret, or an RSA or EC P-256 public
 * key for RS256 or ES256) and the required audience and issuer. The algorithm a token may use follows
 * from the key alone, never from the token's header, so a token cannot choose how it is checked (alg
 * confusion, alg "none"). Verification keeps nothing allocated on success but the claims' room list
 * (cJSON's parse trees live only during the call), never recurses deeper than a fixed nesting bound
 * checked before parsing, and reads at most JWT_MAX_TOKEN bytes: tokens come from anyone.
 *
 * Thread-safe: a verifier is immutable after jwt_verifier_new and may be shared by every thread. */
#ifndef SB_JWT_H
#define SB_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

#define JWT_MAX_TOKEN 8192 /* bytes of a compact token; longer ones are refused unread */
#define JWT_LEEWAY_S 5     /* clock skew allowed on exp and nbf */
#define JWT_MAX_ROOMS 64   /* entries of a `rooms` claim */
#define JWT_MAX_HEADER_MEMBERS 32 /* members of the header object (RFC 7515 registers 11) */
#define JWT_MAX_CLAIMS 128        /* members of the claims object */

/* Why a token was refused. Each has a metric label (jwt_error_names) and a short reason for a 401 or
 * an error message (jwt_error_text). */
enum jwt_error {
    JWT_OK,
    JWT_TOO_LARGE,      /* over JWT_MAX_TOKEN, or empty */
    JWT_MALFORMED,      /* not three base64url parts, or header/claims not an RFC 8259 JSON object in
                         * UTF-8 (also: nested too deep, too many or duplicate member names, a string with
                         * \u0000, nbf/iat present but not a number) */
    JWT_ALG_NONE,       /* alg "none" (or missing) */
    JWT_ALG_MISMATCH,   /* alg is not the one the configured key implies */
    JWT_CRIT,           /* a "crit" header: no extension is understood */
    JWT_BAD_SIGNATURE,
    JWT_NO_EXP,         /* exp missing or not a number */
    JWT_EXPIRED,
    JWT_NOT_YET_VALID,  /* nbf in the future */
    JWT_BAD_AUDIENCE,
    JWT_BAD_ISSUER,
    JWT_BAD_SUBJECT,    /* sub missing, or not a valid user name (names.h) */
    JWT_BAD_ROOMS,      /* rooms not an array of room names or patterns */
    JWT_BAD_PERMS,      /* allow not an array of client commands, or send_to not one of user patterns */
    JWT__COUNT
};
extern const char *const jwt_error_names[JWT__COUNT];
const char *jwt_error_text(enum jwt_error e);

struct jwt_settings {
    const char *secret;         /* HS256 secret, or NULL */
    size_t secret_len;
    const char *public_key_pem; /* PEM text of an RSA (RS256) or EC P-256 (ES256) public key, or NULL */
    const char *audience;       /* required `aud` (a string, or one entry of an array), or NULL; with
                                 * NULL a token that names an audience is refused (RFC 7519 4.1.3) */
    const char *issuer;         /* required `iss`, or NULL */
};

struct jwt_verifier;

/* Exactly one of secret and public_key_pem must be set. NULL with err filled when the key is unusable. */
struct jwt_verifier *jwt_verifier_new(const struct jwt_settings *s, char *err, size_t cap);
void jwt_verifier_free(struct jwt_verifier *v);
/* "HS256", "RS256" or "ES256". */
const char *jwt_verifier_alg(const struct jwt_verifier *v);

/* The client commands an `allow` claim may grant, as bits; a token without the claim has the server's
 * defaults (perms.h). ping, hello, refresh and leave are always allowed. */
enum {
    JWT_ALLOW_SEND = 1,
    JWT_ALLOW_BROADCAST = 2,
    JWT_ALLOW_PUBLISH = 4,
    JWT_ALLOW_JOIN = 8,
    JWT_ALLOW_USERS = 16,
    JWT_ALLOW_ALL = 31,
};
#define JWT_ALLOW_COMMANDS 5
/* The command of each bit, in bit order: "send", "broadcast", "publish", "join", "users". */
extern const char *const jwt_allow_names[JWT_ALLOW_COMMANDS];
/* The bit of a command name, or 0 when the claim cannot name it. */
unsigned jwt_allow_bit(const char *name);

/* What a valid token says. `rooms` and `send_to` are owned by the claims: free them with
 * jwt_claims_free. */
struct jwt_claims {
    char sub[SB_NAME_MAX + 1];
    int64_t exp;     /* seconds since the epoch */
    int64_t iat;     /* 0 when absent */
    char **rooms;    /* NULL: any room; else nrooms names or prefix patterns ending in '*' */
    size_t nrooms;
    int has_allow;   /* the token has an allow claim: `allow` replaces the server's default */
    unsigned allow;  /* JWT_ALLOW_* bits */
    char **send_to;  /* NULL: the server's default; else the users (names or patterns) a send may target */
    size_t nsend_to;
};

/* Checks token[0..len) at time now_s (seconds since the epoch). JWT_OK fills *out; anything else
 * leaves *out empty (nothing to free). */
enum jwt_error jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now_s,
                          struct jwt_claims *out);
void jwt_claims_free(struct jwt_claims *c);
/* 1 if `entry` may stand in a rooms claim: a room name (names.h), "*" (any room), or a name followed
 * by '*' (rooms starting with that name, e.g. "team-7.*"). */
int jwt_room_pattern_valid(const char *entry);
/* 1 if `name` is one of the n names or prefix patterns of list (see jwt_room_pattern_valid). */
int jwt_patterns_match(char *const *list, size_t n, const char *name);
/* 1 if the claims let their user join and publish to `room`. */
int jwt_room_allowed(const struct jwt_claims *c, const char *room);

/* Mints an HS256 token for `sub` valid from iat to exp, with an optional rooms claim (nrooms 0 = none),
 * into out. Returns its length, or -1 if it does not fit or a name is invalid. */
int jwt_mint_hs256(const char *secret, size_t secret_len, const char *sub, int64_t iat, int64_t exp,
                   const char *const *rooms, size_t nrooms, char *out, size_t cap);

/* The claims of a minted token; aud and iss are left out when NULL or "". */
struct jwt_mint {
    const char *sub;
    int64_t iat, exp;
    const char *const *rooms;
    size_t nrooms;
    const char *aud, *iss;
};
/* The same with every claim the server may require (switchboard token uses it). */
int jwt_mint_hs256_claims(const char *secret, size_t secret_len, const struct jwt_mint *m, char *out, size_t cap);

#endif

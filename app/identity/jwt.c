/* jwt: compact JWS verification with OpenSSL's libcrypto (see jwt.h).
 *
 * The steps run in a fixed order so a refused token says the first thing wrong with it and nothing
 * of an unauthenticated token is believed: size, structure (three strict base64url parts, header and
 * claims strict JSON objects in UTF-8, bounded nesting and member counts, no duplicate members), the header's alg against the key's,
 * crit, the signature, and only then the claims. Decoding uses one stack buffer sized by
 * JWT_MAX_TOKEN; cJSON allocates while parsing and everything is freed before returning. */
#include "jwt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonspan.h"
#include "utf8.h"

#define JWT_MAX_DEPTH 16        /* nesting of arrays/objects in the header or the claims */
#define JWT_RSA_MIN_BITS 2048   /* smaller RSA keys are refused when configured */
#define JWT_HS256_LEN 32
#define JWT_ES256_LEN 64        /* raw R || S, 32 bytes each (RFC 7518 3.4) */
#define JWT_NUMERIC_MAX 9007199254740991.0 /* 2^53 - 1: NumericDates beyond are refused, not truncated */

enum jwt_alg { ALG_HS256, ALG_RS256, ALG_ES256 };
static const char *const alg_names[] = {"HS256", "RS256", "ES256"};

struct jwt_verifier {
    enum jwt_alg alg;
    unsigned char *secret;
    size_t secret_len;
    EVP_PKEY *pkey;
    char *audience, *issuer;
};

const char *const jwt_error_names[JWT__COUNT] = {
    [JWT_OK] = "ok",
    [JWT_TOO_LARGE] = "too_large",
    [JWT_MALFORMED] = "malformed",
    [JWT_ALG_NONE] = "alg_none",
    [JWT_ALG_MISMATCH] = "alg_mismatch",
    [JWT_CRIT] = "crit",
    [JWT_BAD_SIGNATURE] = "bad_signature",
    [JWT_NO_EXP] = "no_exp",
    [JWT_EXPIRED] = "expired",
    [JWT_NOT_YET_VALID] = "not_yet_valid",
    [JWT_BAD_AUDIENCE] = "bad_audience",
    [JWT_BAD_ISSUER] = "bad_issuer",
    [JWT_BAD_SUBJECT] = "bad_subject",
    [JWT_BAD_ROOMS] = "bad_rooms",
    [JWT_BAD_PERMS] = "bad_perms",
};

static const char *const error_texts[JWT__COUNT] = {
    [JWT_OK] = "token is valid",
    [JWT_TOO_LARGE] = "token is empty or too large",
    [JWT_MALFORMED] = "token is malformed",
    [JWT_ALG_NONE] = "unsigned tokens (alg none) are refused",
    [JWT_ALG_MISMATCH] = "token algorithm does not match the configured key",
    [JWT_CRIT] = "token has critical extensions (crit) that are not supported",
    [JWT_BAD_SIGNATURE] = "token signature is invalid",
    [JWT_NO_EXP] = "token has no expiry (exp)",
    [JWT_EXPIRED] = "token expired",
    [JWT_NOT_YET_VALID] = "token is not valid yet (nbf)",
    [JWT_BAD_AUDIENCE] = "token audience (aud) is not this server",
    [JWT_BAD_ISSUER] = "token issuer (iss) is not trusted",
    [JWT_BAD_SUBJECT] = "token subject (sub) is missing or not a valid user name",
    [JWT_BAD_ROOMS] = "token rooms claim is not a list of room names or patterns",
    [JWT_BAD_PERMS] = ("token allow claim is not a list of send, broadcast, publish, join, users, or its send_to "
                       "claim is not a list of user names or patterns"),
};

const char *jwt_error_text(enum jwt_error e) {
    return (unsigned)e < JWT__COUNT ? error_texts[e] : "token refused";
}

/* ---- base64url (RFC 4648 section 5, no padding) ---- */

static int b64url_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes in[0..len) into out (room for len * 3 / 4 bytes); returns the length, or -1 when a character
 * is outside the alphabet, the length cannot be unpadded base64, or the unused low bits of the last
 * character are not zero (so each byte string has exactly one encoding and signatures are not
 * malleable). */
static long b64url_decode(const char *in, size_t len, unsigned char *out) {
    if (len % 4 == 1) return -1;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc ? -1 : (long)n;
}

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes in[0..len) into out (cap bytes, NUL-terminated); returns the length, or -1 if it does not fit. */
static long b64url_encode(const unsigned char *in, size_t len, char *out, size_t cap) {
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (need + 1 > cap) return -1;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = b64url_alphabet[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits) out[n++] = b64url_alphabet[(acc << (6 - bits)) & 63];
    out[n] = '\0';
    return (long)n;
}

/* ---- keys ---- */

static int ec_is_p256(EVP_PKEY *pkey) {
    char group[64];
    size_t glen = 0;
    if (!EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen)) return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* Reads a PEM public key and picks the algorithm it implies. */
static int load_public_key(struct jwt_verifier *v, const char *pem, char *err, size_t cap) {
    BIO *bio = BIO_new_mem_buf(pem, -1);
    v->pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!v->pkey) {
        snprintf(err, cap, "not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
        return -1;
    }
    int type = EVP_PKEY_get_base_id(v->pkey);
    if (type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(v->pkey) < JWT_RSA_MIN_BITS) {
            snprintf(err, cap, "RSA key of %d bits: at least %d are required", EVP_PKEY_get_bits(v->pkey),
                     JWT_RSA_MIN_BITS);
            return -1;
        }
        v->alg = ALG_RS256;
        return 0;
    }
    if (type == EVP_PKEY_EC && ec_is_p256(v->pkey)) {
        v->alg = ALG_ES256;
        return 0;
    }
    snprintf(err, cap, "the public key is neither RSA (RS256) nor EC P-256 (ES256)");
    return -1;
}

static char *dup_or_null(const char *s, int *failed) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *failed = 1;
    return d;
}

struct jwt_verifier *jwt_verifier_new(const struct jwt_settings *s, char *err, size_t cap) {
    if (cap) err[0] = '\0';
    if (!s->secret == !s->public_key_pem) {
        snprintf(err, cap, "configure exactly one of a secret and a public key");
        return NULL;
    }
    if (s->secret && s->secret_len == 0) {
        snprintf(err, cap, "the secret is empty");
        return NULL;
    }
    struct jwt_verifier *v = calloc(1, sizeof *v);
    int failed = !v;
    if (v && s->secret) {
        v->alg = ALG_HS256;
        v->secret = malloc(s->secret_len);
        failed = !v->secret;
        if (v->secret) memcpy(v->secret, s->secret, s->secret_len);
        v->secret_len = s->secret_len;
    } else if (v && load_public_key(v, s->public_key_pem, err, cap) < 0) {
        jwt_verifier_free(v);
        return NULL;
    }
    if (v) v->audience = dup_or_null(s->audience, &failed);
    if (v) v->issuer = dup_or_null(s->issuer, &failed);
    if (failed) {
        snprintf(err, cap, "out of memory");
        jwt_verifier_free(v);
        return NULL;
    }
    return v;
}

void jwt_verifier_free(struct jwt_verifier *v) {
    if (!v) return;
    if (v->secret) OPENSSL_cleanse(v->secret, v->secret_len);
    free(v->secret);
    EVP_PKEY_free(v->pkey);
    free(v->audience);
    free(v->issuer);
    free(v);
}

const char *jwt_verifier_alg(const struct jwt_verifier *v) {
    return alg_names[v->alg];
}

/* ---- signatures ---- */

static int hs256(const unsigned char *key, size_t key_len, const char *input, size_t len,
                 unsigned char mac[JWT_HS256_LEN]) {
    unsigned mac_len = 0;
    return HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)input, len, mac, &mac_len) &&
           mac_len == JWT_HS256_LEN;
}

static int digest_verify(EVP_PKEY *pkey, const char *input, size_t len, const unsigned char *sig, size_t sig_len) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)input, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* JWS carries ECDSA as fixed-width R || S; libcrypto wants a DER ECDSA-Sig-Value. */
static int es256_verify(EVP_PKEY *pkey, const char *input, size_t len, const unsigned char *sig) {
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char der[80], *p = der;
    int der_len = -1;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        if (i2d_ECDSA_SIG(es, NULL) <= (int)sizeof der) der_len = i2d_ECDSA_SIG(es, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return der_len > 0 && digest_verify(pkey, input, len, der, (size_t)der_len);
}

static int signature_ok(const struct jwt_verifier *v, const char *input, size_t len, const unsigned char *sig,
                        size_t sig_len) {
    unsigned char mac[JWT_HS256_LEN];
    switch (v->alg) {
    case ALG_HS256:
        return sig_len == JWT_HS256_LEN && hs256(v->secret, v->secret_len, input, len, mac) &&
               CRYPTO_memcmp(mac, sig, JWT_HS256_LEN) == 0;
    case ALG_RS256:
        return sig_len == (size_t)EVP_PKEY_get_size(v->pkey) && digest_verify(v->pkey, input, len, sig, sig_len);
    case ALG_ES256:
        return sig_len == JWT_ES256_LEN && es256_verify(v->pkey, input, len, sig);
    }
    return 0;
}

/* ---- JSON ---- */

static int name_order(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* 1 if no two members of obj (at most max_members) share a name: parsers differ on which one wins
 * (RFC 7515 4). Sorted, so a pair is found in n log n, not n^2. */
static int members_unique(const cJSON *obj, size_t max_members) {
    const char *names[JWT_MAX_CLAIMS > JWT_MAX_HEADER_MEMBERS ? JWT_MAX_CLAIMS : JWT_MAX_HEADER_MEMBERS];
    size_t n = 0;
    for (const cJSON *m = obj->child; m; m = m->next) {
        if (n == max_members || n == sizeof names / sizeof *names) return 0;
        names[n++] = m->string;
    }
    qsort(names, n, sizeof *names, name_order);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return 0;
    return 1;
}

/* Parses text[0..len) (NUL at text[len]) as one JSON object of at most max_members members, or returns
 * NULL. Before cJSON builds a tree, one linear pass each: UTF-8, strict RFC 8259 (cJSON would read
 * "\uZZZZ" as U+0000, 01 as 1) with the member count, nesting, no \u0000. So a token costs what its
 * bytes cost, whatever their shape, and nothing of an unauthenticated header is believed loosely. */
static cJSON *parse_object(const char *text, size_t len, size_t max_members) {
    size_t members = 0;
    if (memchr(text, '\0', len) || !utf8_valid((const uint8_t *)text, len) || !jsonspan_strict(text, len, &members) ||
        members > max_members || !jsonspan_shape_ok(text, len, JWT_MAX_DEPTH, JSONSPAN_NO_ESCAPED_NUL))
        return NULL;
    const char *end = NULL;
    cJSON *obj = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (obj && (!cJSON_IsObject(obj) || !members_unique(obj, max_members))) {
        cJSON_Delete(obj);
        obj = NULL;
    }
    return obj;
}

/* ---- claims ---- */

/* A NumericDate member: 1 when present and a usable number (into *out), 0 when absent, -1 otherwise. */
static int numeric_date(const cJSON *claims, const char *name, double *out) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!n) return 0;
    if (!cJSON_IsNumber(n) || !isfinite(n->valuedouble) || fabs(n->valuedouble) > JWT_NUMERIC_MAX) return -1;
    *out = n->valuedouble;
    return 1;
}

static enum jwt_error check_times(const cJSON *claims, int64_t now_s, struct jwt_claims *out) {
    double exp = 0, nbf = 0, iat = 0;
    if (numeric_date(claims, "exp", &exp) != 1) return JWT_NO_EXP;
    int has_nbf = numeric_date(claims, "nbf", &nbf), has_iat = numeric_date(claims, "iat", &iat);
    if (has_nbf < 0 || has_iat < 0) return JWT_MALFORMED;
    if ((double)now_s > exp + JWT_LEEWAY_S) return JWT_EXPIRED;
    if (has_nbf && (double)now_s + JWT_LEEWAY_S < nbf) return JWT_NOT_YET_VALID;
    out->exp = (int64_t)floor(exp);
    out->iat = (int64_t)floor(iat);
    return JWT_OK;
}

/* RFC 7519 4.1.3: a token naming audiences must name ours; one naming none passes only when we
 * require none. */
static int audience_ok(const cJSON *claims, const char *want) {
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(claims, "aud");
    if (!aud) return want == NULL;
    if (!want) return 0;
    if (cJSON_IsString(aud)) return strcmp(aud->valuestring, want) == 0;
    if (!cJSON_IsArray(aud)) return 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, aud) if (cJSON_IsString(e) && strcmp(e->valuestring, want) == 0) return 1;
    return 0;
}

static int issuer_ok(const cJSON *claims, const char *want) {
    if (!want) return 1;
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");
    return cJSON_IsString(iss) && strcmp(iss->valuestring, want) == 0;
}

/* A room name, or a prefix pattern: "*" (any room) or "<name>*". */
int jwt_room_pattern_valid(const char *s) {
    size_t len = strlen(s);
    if (len == 0 || len > SB_NAME_MAX) return 0;
    if (s[len - 1] != '*') return name_valid(s);
    if (len == 1) return 1;
    char prefix[SB_NAME_MAX + 1];
    memcpy(prefix, s, len - 1);
    prefix[len - 1] = '\0';
    return name_valid(prefix);
}

const char *const jwt_allow_names[JWT_ALLOW_COMMANDS] = {"send", "broadcast", "publish", "join", "users"};

unsigned jwt_allow_bit(const char *name) {
    for (unsigned i = 0; i < JWT_ALLOW_COMMANDS; i++)
        if (strcmp(name, jwt_allow_names[i]) == 0) return 1u << i;
    return 0;
}

/* Copies an array of names or patterns (rooms, send_to) into one allocation: the pointer array, then
 * the strings. Absent: *list stays NULL. */
static enum jwt_error take_patterns(const cJSON *claims, const char *key, enum jwt_error bad, char ***list_out,
                                    size_t *n_out) {
    const cJSON *array = cJSON_GetObjectItemCaseSensitive(claims, key), *e;
    if (!array) return JWT_OK;
    if (!cJSON_IsArray(array)) return bad;
    size_t n = 0, bytes = 0;
    cJSON_ArrayForEach(e, array) {
        if (++n > JWT_MAX_ROOMS || !cJSON_IsString(e) || !jwt_room_pattern_valid(e->valuestring)) return bad;
        bytes += strlen(e->valuestring) + 1;
    }
    char **list = malloc(n * sizeof *list + bytes + 1);
    if (!list) return bad; /* out of memory: refuse rather than grant everything */
    char *p = (char *)(list + n);
    size_t i = 0;
    cJSON_ArrayForEach(e, array) {
        size_t len = strlen(e->valuestring) + 1;
        list[i++] = memcpy(p, e->valuestring, len);
        p += len;
    }
    *list_out = list;
    *n_out = n;
    return JWT_OK;
}

/* The allow claim: an array of command names (jwt_allow_names), possibly empty (receive-only). */
static enum jwt_error take_allow(const cJSON *claims, struct jwt_claims *out) {
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(claims, "allow"), *e;
    if (!allow) return JWT_OK;
    if (!cJSON_IsArray(allow)) return JWT_BAD_PERMS;
    cJSON_ArrayForEach(e, allow) {
        unsigned bit = cJSON_IsString(e) ? jwt_allow_bit(e->valuestring) : 0;
        if (!bit) return JWT_BAD_PERMS;
        out->allow |= bit;
    }
    out->has_allow = 1;
    return JWT_OK;
}

static enum jwt_error take_permissions(const cJSON *claims, struct jwt_claims *out) {
    enum jwt_error e = take_patterns(claims, "rooms", JWT_BAD_ROOMS, &out->rooms, &out->nrooms);
    if (e == JWT_OK) e = take_allow(claims, out);
    if (e == JWT_OK) e = take_patterns(claims, "send_to", JWT_BAD_PERMS, &out->send_to, &out->nsend_to);
    return e;
}

static enum jwt_error check_claims(const struct jwt_verifier *v, const cJSON *claims, int64_t now_s,
                                   struct jwt_claims *out) {
    enum jwt_error e = check_times(claims, now_s, out);
    if (e != JWT_OK) return e;
    if (!audience_ok(claims, v->audience)) return JWT_BAD_AUDIENCE;
    if (!issuer_ok(claims, v->issuer)) return JWT_BAD_ISSUER;
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(claims, "sub");
    if (!cJSON_IsString(sub) || !name_claimable(sub->valuestring)) return JWT_BAD_SUBJECT;
    snprintf(out->sub, sizeof out->sub, "%s", sub->valuestring);
    return take_permissions(claims, out);
}

/* ---- the token ---- */

/* The three parts of a compact token: where each starts and how long it is. */
struct parts {
    size_t start[3], len[3];
};

static int split(const char *token, size_t len, struct parts *p) {
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token))) return -1;
    p->start[0] = 0;
    p->len[0] = (size_t)(dot1 - token);
    p->start[1] = p->len[0] + 1;
    p->len[1] = (size_t)(dot2 - dot1 - 1);
    p->start[2] = (size_t)(dot2 + 1 - token);
    p->len[2] = len - p->start[2];
    return p->len[0] && p->len[1] && p->len[2] ? 0 : -1;
}

static enum jwt_error check_header(const struct jwt_verifier *v, const cJSON *header) {
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    if (!alg || (cJSON_IsString(alg) && strcasecmp(alg->valuestring, "none") == 0)) return JWT_ALG_NONE;
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, alg_names[v->alg]) != 0) return JWT_ALG_MISMATCH;
    if (cJSON_GetObjectItemCaseSensitive(header, "crit")) return JWT_CRIT;
    return JWT_OK;
}

/* Decoded parts, each NUL-terminated, in one buffer: a token of JWT_MAX_TOKEN characters decodes to
 * at most 3/4 of that plus the three NULs. */
struct decoded {
    unsigned char buf[JWT_MAX_TOKEN / 4 * 3 + 8];
    char *header, *claims;
    unsigned char *sig;
    size_t header_len, claims_len, sig_len;
};

static int decode_parts(const char *token, const struct parts *p, struct decoded *d) {
    unsigned char *at = d->buf;
    long n[3];
    for (int i = 0; i < 3; i++) {
        n[i] = b64url_decode(token + p->start[i], p->len[i], at);
        if (n[i] < 0) return -1;
        at[n[i]] = '\0';
        if (i == 0) d->header = (char *)at;
        if (i == 1) d->claims = (char *)at;
        if (i == 2) d->sig = at;
        at += n[i] + 1;
    }
    d->header_len = (size_t)n[0];
    d->claims_len = (size_t)n[1];
    d->sig_len = (size_t)n[2];
    return 0;
}

static enum jwt_error verify_parsed(const struct jwt_verifier *v, const char *token, const struct parts *p,
                                    const struct decoded *d, cJSON *header, int64_t now_s, struct jwt_claims *out) {
    enum jwt_error e = check_header(v, header);
    if (e != JWT_OK) return e;
    if (!signature_ok(v, token, p->len[0] + 1 + p->len[1], d->sig, d->sig_len)) return JWT_BAD_SIGNATURE;
    cJSON *claims = parse_object(d->claims, d->claims_len, JWT_MAX_CLAIMS);
    e = claims ? check_claims(v, claims, now_s, out) : JWT_MALFORMED;
    cJSON_Delete(claims);
    return e;
}

enum jwt_error jwt_verify(const struct jwt_verifier *v, const char *token, size_t len, int64_t now_s,
                          struct jwt_claims *out) {
    memset(out, 0, sizeof *out);
    if (len == 0 || len > JWT_MAX_TOKEN) return JWT_TOO_LARGE;
    struct parts p;
    static _Thread_local struct decoded d; /* 6 KiB: off the (possibly small) thread stack */
    if (split(token, len, &p) < 0 || decode_parts(token, &p, &d) < 0) return JWT_MALFORMED;
    cJSON *header = parse_object(d.header, d.header_len, JWT_MAX_HEADER_MEMBERS);
    enum jwt_error e = header ? verify_parsed(v, token, &p, &d, header, now_s, out) : JWT_MALFORMED;
    cJSON_Delete(header);
    if (e != JWT_OK) jwt_claims_free(out);
    return e;
}

void jwt_claims_free(struct jwt_claims *c) {
    free(c->rooms);
    free(c->send_to);
    memset(c, 0, sizeof *c);
}

int jwt_patterns_match(char *const *list, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++) {
        const char *r = list[i];
        size_t len = strlen(r);
        if (len && r[len - 1] == '*' ? strncmp(name, r, len - 1) == 0 : strcmp(name, r) == 0) return 1;
    }
    return 0;
}

int jwt_room_allowed(const struct jwt_claims *c, const char *room) {
    return !c->rooms || jwt_patterns_match(c->rooms, c->nrooms, room);
}

/* ---- minting ---- */

#define JWT_HS256_HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" /* {"alg":"HS256","typ":"JWT"} */

/* Appends ,"key":"value" with value escaped as JSON (aud and iss are free text). */
static int append_string(char *json, size_t cap, int n, const char *key, const char *value) {
    cJSON *str = cJSON_CreateString(value);
    char *text = str ? cJSON_PrintUnformatted(str) : NULL;
    int m = text ? snprintf(json + n, cap - (size_t)n, ",\"%s\":%s", key, text) : -1;
    cJSON_free(text);
    cJSON_Delete(str);
    return m < 0 || (size_t)m >= cap - (size_t)n ? -1 : n + m;
}

/* Writes the claims JSON; names are checked first, so none needs escaping. */
static int mint_claims(char *json, size_t cap, const struct jwt_mint *m) {
    if (!name_claimable(m->sub) || m->nrooms > JWT_MAX_ROOMS) return -1;
    int n = snprintf(json, cap, "{\"sub\":\"%s\",\"iat\":%lld,\"exp\":%lld", m->sub, (long long)m->iat,
                     (long long)m->exp);
    for (size_t i = 0; i < m->nrooms && n > 0 && (size_t)n < cap; i++) {
        if (!jwt_room_pattern_valid(m->rooms[i])) return -1;
        n += snprintf(json + n, cap - (size_t)n, "%s\"%s\"", i ? "," : ",\"rooms\":[", m->rooms[i]);
    }
    if (n > 0 && (size_t)n < cap && m->nrooms) n += snprintf(json + n, cap - (size_t)n, "]");
    if (n > 0 && (size_t)n < cap && m->aud && m->aud[0]) n = append_string(json, cap, n, "aud", m->aud);
    if (n > 0 && (size_t)n < cap && m->iss && m->iss[0]) n = append_string(json, cap, n, "iss", m->iss);
    if (n > 0 && (size_t)n < cap) n += snprintf(json + n, cap - (size_t)n, "}");
    return n > 0 && (size_t)n < cap ? n : -1;
}

int jwt_mint_hs256_claims(const char *secret, size_t secret_len, const struct jwt_mint *m, char *out, size_t cap) {
    char json[JWT_MAX_TOKEN];
    unsigned char mac[JWT_HS256_LEN];
    int jlen = mint_claims(json, sizeof json, m);
    size_t hlen = sizeof JWT_HS256_HEADER - 1;
    if (jlen < 0 || secret_len == 0 || cap < hlen + 2) return -1;
    memcpy(out, JWT_HS256_HEADER ".", hlen + 1);
    long clen = b64url_encode((const unsigned char *)json, (size_t)jlen, out + hlen + 1, cap - hlen - 1);
    if (clen < 0) return -1;
    size_t signed_len = hlen + 1 + (size_t)clen;
    if (signed_len + 2 > cap || !hs256((const unsigned char *)secret, secret_len, out, signed_len, mac)) return -1;
    out[signed_len] = '.';
    long slen = b64url_encode(mac, sizeof mac, out + signed_len + 1, cap - signed_len - 1);
    return slen < 0 ? -1 : (int)(signed_len + 1 + (size_t)slen);
}

int jwt_mint_hs256(const char *secret, size_t secret_len, const char *sub, int64_t iat, int64_t exp,
                   const char *const *rooms, size_t nrooms, char *out, size_t cap) {
    struct jwt_mint m = {sub, iat, exp, rooms, nrooms, NULL, NULL};
    return jwt_mint_hs256_claims(secret, secret_len, &m, out, cap);
}

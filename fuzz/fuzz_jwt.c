/* fuzz_jwt: jwt_verify (app/identity/jwt.c) on anything, with an HMAC oracle.
 *
 * Input: byte 0 picks the mode, byte 1 the clock (now = 1700000000 + 8 * (byte - 128) seconds, so exp,
 * nbf and the leeway edges are reachable), the rest is:
 *   mode 0: a compact token for an HS256 verifier (fixed secret)
 *   mode 1: a compact token for an ES256 verifier (RFC 7515 A.3's public key; the A.3 token is a seed)
 *   mode 2: a header JSON text, a NUL, a claims JSON text: the target encodes and signs them HS256
 *           itself, so the fuzzer reaches the claim checks past the signature (verifier with an
 *           audience and an issuer configured)
 * Checks beyond not crashing: a result in range; over JWT_MAX_TOKEN is always too_large; any result past
 * the signature step (ok or a claim error) in modes 0 and 2 means the last part is exactly the
 * base64url HMAC of the rest, recomputed here independently; mode 2 never fails the signature; OK claims
 * hold a claimable sub, an unexpired exp, at most JWT_MAX_ROOMS valid room entries; a refusal leaves
 * the claims empty. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "jwt.h"

static const char secret[] = "fuzz-secret-0123456789abcdef0123";
static const char es_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                             "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                             "-----END PUBLIC KEY-----\n";

static struct jwt_verifier *hs, *hs_aud, *es;

static void setup(void) {
    char err[256];
    struct jwt_settings s1 = {secret, sizeof secret - 1, NULL, NULL, NULL};
    struct jwt_settings s2 = {secret, sizeof secret - 1, NULL, "switchboard", "https://id.example"};
    struct jwt_settings s3 = {NULL, 0, es_pem, NULL, NULL};
    hs = jwt_verifier_new(&s1, err, sizeof err);
    hs_aud = jwt_verifier_new(&s2, err, sizeof err);
    es = jwt_verifier_new(&s3, err, sizeof err);
    FUZZ_CHECK(hs && hs_aud && es);
}

/* Plain base64url, written separately from jwt.c's. */
static size_t enc(const unsigned char *in, size_t len, char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[n++] = a[v >> 18 & 63];
        out[n++] = a[v >> 12 & 63];
        if (i + 1 < len) out[n++] = a[v >> 6 & 63];
        if (i + 2 < len) out[n++] = a[v & 63];
    }
    return n;
}

/* 1 if token's last part is the HMAC of everything before the last dot under the fuzz secret. */
static int hmac_matches(const char *token, size_t len) {
    const char *dot = NULL;
    for (size_t i = 0; i < len; i++)
        if (token[i] == '.') dot = token + i;
    if (!dot) return 0;
    unsigned char mac[32];
    unsigned mlen = 0;
    char want[64];
    HMAC(EVP_sha256(), secret, (int)sizeof secret - 1, (const unsigned char *)token, (size_t)(dot - token), mac, &mlen);
    size_t n = enc(mac, mlen, want);
    return (size_t)(token + len - dot - 1) == n && memcmp(dot + 1, want, n) == 0;
}

/* Mode 2: header NUL claims -> a signed token in out; returns its length. */
static size_t sign(const uint8_t *data, size_t size, char *out) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t hlen = nul ? (size_t)(nul - data) : size;
    size_t n = enc(data, hlen, out);
    out[n++] = '.';
    if (nul) n += enc(nul + 1, size - hlen - 1, out + n);
    unsigned char mac[32];
    unsigned mlen = 0;
    HMAC(EVP_sha256(), secret, (int)sizeof secret - 1, (const unsigned char *)out, n, mac, &mlen);
    out[n++] = '.';
    return n + enc(mac, mlen, out + n);
}

static void check_claims(enum jwt_error e, const struct jwt_claims *c, int64_t now) {
    if (e != JWT_OK) {
        FUZZ_CHECK(c->rooms == NULL && c->nrooms == 0 && c->sub[0] == '\0');
        return;
    }
    FUZZ_CHECK(name_claimable(c->sub));
    FUZZ_CHECK(now <= c->exp + JWT_LEEWAY_S + 1);
    FUZZ_CHECK(c->nrooms <= JWT_MAX_ROOMS && (c->rooms != NULL || c->nrooms == 0));
    for (size_t i = 0; i < c->nrooms; i++) {
        FUZZ_CHECK(jwt_room_pattern_valid(c->rooms[i]));
        FUZZ_CHECK(jwt_room_allowed(c, c->rooms[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char signed_token[4 * (JWT_MAX_TOKEN + 64)];
    if (!hs) setup();
    if (size < 2) return 0;
    int mode = data[0] % 3;
    int64_t now = 1700000000 + 8 * ((int64_t)data[1] - 128);
    const char *token = (const char *)data + 2;
    size_t len = size - 2;
    if (mode == 2) {
        if (len > 2 * JWT_MAX_TOKEN) return 0;
        len = sign(data + 2, size - 2, signed_token);
        token = signed_token;
    }
    const struct jwt_verifier *v = mode == 0 ? hs : mode == 1 ? es : hs_aud;
    struct jwt_claims c;
    enum jwt_error e = jwt_verify(v, token, len, now, &c);
    FUZZ_CHECK((unsigned)e < JWT__COUNT && jwt_error_names[e] && jwt_error_text(e)[0]);
    if (len > JWT_MAX_TOKEN || len == 0) FUZZ_CHECK(e == JWT_TOO_LARGE);
    if (mode != 1 && (e == JWT_OK || e >= JWT_NO_EXP)) FUZZ_CHECK(hmac_matches(token, len));
    if (mode == 2) FUZZ_CHECK(e != JWT_BAD_SIGNATURE);
    check_claims(e, &c, now);
    jwt_claims_free(&c);
    return 0;
}

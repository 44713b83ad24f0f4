/* test_jwt: token verification (app/identity/jwt.c).
 *
 * RFC 7515 appendix A's examples prove each algorithm agrees with the standard: A.1 (HS256, the JWK's
 * key bytes), A.2 (RS256) and A.3 (ES256) with public keys derived from the appendix's n/e and x/y
 * (PEM made once with Python's cryptography, which also checked the signatures). The appendix's claims
 * have no `sub`, so a verifier that reaches the claims answers JWT_BAD_SUBJECT, and with an issuer
 * other than "joe" JWT_BAD_ISSUER: both prove the signature passed. Then each refusal reason, each with
 * a token that is wrong in that one way only (signed properly, so only that check can refuse it). */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "jwt.h"

#define NOW 1700000000LL /* the tests' clock */

static const char secret[] = "0123456789abcdef0123456789abcdef"; /* 32 bytes */

/* ---- RFC 7515 appendix A ---- */

static const unsigned char a1_key[] = {
    3,   35,  53,  75,  43,  15,  165, 188, 131, 126, 6,   101, 119, 123, 166, 143, 90,  179, 40,  230, 240, 84,
    201, 40,  169, 15,  132, 178, 210, 80,  46,  191, 211, 251, 90,  146, 210, 6,   71,  239, 150, 138, 180, 195,
    119, 98,  61,  34,  61,  46,  33,  114, 5,   46,  79,  8,   192, 205, 154, 245, 103, 208, 128, 163};
#define A_CLAIMS "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A_EXP 1300819380LL
static const char a1_token[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." A_CLAIMS
                               ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char a2_token[] =
    "eyJhbGciOiJSUzI1NiJ9." A_CLAIMS
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr"
    "7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi1"
    "2jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlU"
    "PQGe77Rw";
static const char a3_token[] = "eyJhbGciOiJFUzI1NiJ9." A_CLAIMS
                               ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/* A.2's n and e (65537) as SubjectPublicKeyInfo. */
static const char a2_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAofgWCuLjybRlzo0tZWJj\n"
                             "NiuSfb4p4fAkd/wWJcyQoTbji9k0l8W26mPddxHmfHQp+Vaw+4qPCJrcS2mJPMEz\n"
                             "P1Pt0Bm4d4QlL+yRT+SFd2lZS+pCgNMsD1W/YpRPEwOWvG6b32690r2jZ47soMZo\n"
                             "9wGzjb/7OMg0LOL+bSf63kpaSHSXndS5z5rexMdbBYUsLA9e+KXBdQOS+UTo7WTB\n"
                             "EMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6/I5IhlJH7aGhyxX\n"
                             "FvUK+DWNmoudF8NAco9/h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXp\n"
                             "oQIDAQAB\n"
                             "-----END PUBLIC KEY-----\n";
/* A.3's x and y on P-256. */
static const char a3_pem[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
                             "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
                             "-----END PUBLIC KEY-----\n";

/* ---- helpers ---- */

static struct jwt_verifier *verifier(const char *sec, size_t sec_len, const char *pem, const char *aud,
                                     const char *iss) {
    struct jwt_settings s = {sec, sec_len, pem, aud, iss};
    char err[256];
    struct jwt_verifier *v = jwt_verifier_new(&s, err, sizeof err);
    if (!v) fprintf(stderr, "verifier: %s\n", err);
    return v;
}

static size_t b64url(const unsigned char *in, size_t len, char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) |
                     (i + 2 < len ? in[i + 2] : 0);
        out[n++] = a[v >> 18 & 63];
        out[n++] = a[v >> 12 & 63];
        if (i + 1 < len) out[n++] = a[v >> 6 & 63];
        if (i + 2 < len) out[n++] = a[v & 63];
    }
    out[n] = '\0';
    return n;
}

/* header.claims, base64url-encoded, into out; returns its length. */
static size_t signing_input(const char *header, const char *claims, char *out) {
    size_t n = b64url((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    return n + b64url((const unsigned char *)claims, strlen(claims), out + n);
}

static char tok[16384];

/* An HS256-signed (whatever the header says) token with the given JSON texts. */
static const char *hs(const char *header, const char *claims, const void *key, size_t key_len) {
    unsigned char mac[32];
    unsigned mlen = 0;
    size_t n = signing_input(header, claims, tok);
    HMAC(EVP_sha256(), key, (int)key_len, (unsigned char *)tok, n, mac, &mlen);
    tok[n++] = '.';
    b64url(mac, mlen, tok + n);
    return tok;
}

static const char *hsc(const char *claims) {
    return hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", claims, secret, strlen(secret));
}

static enum jwt_error verify_at(const struct jwt_verifier *v, const char *t, long long now) {
    struct jwt_claims c;
    enum jwt_error e = jwt_verify(v, t, strlen(t), now, &c);
    jwt_claims_free(&c);
    return e;
}

static enum jwt_error verify(const struct jwt_verifier *v, const char *t) {
    return verify_at(v, t, NOW);
}

/* ---- the appendix ---- */

static void test_rfc7515_a1(void) {
    struct jwt_verifier *v = verifier((const char *)a1_key, sizeof a1_key, NULL, NULL, NULL);
    struct jwt_verifier *joe = verifier((const char *)a1_key, sizeof a1_key, NULL, NULL, "joe");
    struct jwt_verifier *bob = verifier((const char *)a1_key, sizeof a1_key, NULL, NULL, "bob");
    CHECK_EQ_STR(jwt_verifier_alg(v), "HS256");
    CHECK_EQ_INT(verify_at(v, a1_token, A_EXP - 100), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify_at(joe, a1_token, A_EXP - 100), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify_at(bob, a1_token, A_EXP - 100), JWT_BAD_ISSUER);
    CHECK_EQ_INT(verify_at(v, a1_token, A_EXP + JWT_LEEWAY_S + 1), JWT_EXPIRED);
    char bad[sizeof a1_token];
    memcpy(bad, a1_token, sizeof a1_token);
    bad[sizeof a1_token - 3] = bad[sizeof a1_token - 3] == 'A' ? 'B' : 'A';
    CHECK_EQ_INT(verify_at(v, bad, A_EXP - 100), JWT_BAD_SIGNATURE);
    struct jwt_verifier *other = verifier(secret, strlen(secret), NULL, NULL, NULL);
    CHECK_EQ_INT(verify_at(other, a1_token, A_EXP - 100), JWT_BAD_SIGNATURE);
    jwt_verifier_free(v);
    jwt_verifier_free(joe);
    jwt_verifier_free(bob);
    jwt_verifier_free(other);
}

static void test_rfc7515_a2_a3(void) {
    struct jwt_verifier *rs = verifier(NULL, 0, a2_pem, NULL, "bob");
    struct jwt_verifier *es = verifier(NULL, 0, a3_pem, NULL, "bob");
    if (!CHECK(rs && es)) return;
    CHECK_EQ_STR(jwt_verifier_alg(rs), "RS256");
    CHECK_EQ_STR(jwt_verifier_alg(es), "ES256");
    CHECK_EQ_INT(verify_at(rs, a2_token, A_EXP), JWT_BAD_ISSUER);
    CHECK_EQ_INT(verify_at(es, a3_token, A_EXP), JWT_BAD_ISSUER);
    CHECK_EQ_INT(verify_at(rs, a3_token, A_EXP), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify_at(es, a2_token, A_EXP), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify_at(rs, a1_token, A_EXP), JWT_ALG_MISMATCH);
    /* Another message under the same signatures. */
    char swapped[sizeof a2_token];
    memcpy(swapped, a2_token, sizeof a2_token);
    swapped[30] = swapped[30] == 'a' ? 'b' : 'a';
    CHECK_EQ_INT(verify_at(rs, swapped, A_EXP), JWT_BAD_SIGNATURE);
    char es_bad[sizeof a3_token];
    memcpy(es_bad, a3_token, sizeof a3_token);
    es_bad[sizeof a3_token - 2] = es_bad[sizeof a3_token - 2] == 'Q' ? 'A' : 'Q';
    CHECK_EQ_INT(verify_at(es, es_bad, A_EXP), JWT_BAD_SIGNATURE);
    jwt_verifier_free(rs);
    jwt_verifier_free(es);
}

#define GOOD "{\"sub\":\"alice\",\"exp\":1700000100}"

static void test_valid_claims(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    struct jwt_claims c;
    const char *t = hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"iat\":1699999000,\"extra\":{\"a\":[1,2]}}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) {
        CHECK_EQ_STR(c.sub, "alice");
        CHECK_EQ_INT(c.exp, 1700000100);
        CHECK_EQ_INT(c.iat, 1699999000);
        CHECK(c.rooms == NULL && c.nrooms == 0);
        CHECK(jwt_room_allowed(&c, "anything"));
    }
    jwt_claims_free(&c);
    jwt_verifier_free(v);
}

/* Claims nesting `depth` levels: the object and depth - 1 arrays around a 1. */
static const char *nested(int depth) {
    static char c[16384];
    int n = snprintf(c, sizeof c, "{\"sub\":\"alice\",\"exp\":1700000100,\"x\":");
    for (int i = 1; i < depth; i++) c[n++] = '[';
    c[n++] = '1';
    for (int i = 1; i < depth; i++) c[n++] = ']';
    snprintf(c + n, sizeof c - (size_t)n, "}");
    return c;
}

static void test_refusals_structure(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    CHECK_EQ_INT(verify(v, hsc(GOOD)), JWT_OK);
    CHECK_EQ_INT(verify(v, ""), JWT_TOO_LARGE);
    /* size: a valid token padded past the limit with an ignored claim is refused unread */
    static char big[JWT_MAX_TOKEN + 64], claims[JWT_MAX_TOKEN];
    snprintf(claims, sizeof claims, "{\"sub\":\"alice\",\"exp\":1700000100,\"pad\":\"%0*d\"}", 6200, 0);
    snprintf(big, sizeof big, "%s", hsc(claims));
    CHECK(strlen(big) > JWT_MAX_TOKEN);
    CHECK_EQ_INT(verify(v, big), JWT_TOO_LARGE);
    snprintf(claims, sizeof claims, "{\"sub\":\"alice\",\"exp\":1700000100,\"pad\":\"%0*d\"}", 5900, 0);
    CHECK(strlen(hsc(claims)) <= JWT_MAX_TOKEN);
    CHECK_EQ_INT(verify(v, tok), JWT_OK);
    /* part count */
    char t[1024];
    snprintf(t, sizeof t, "%s", hsc(GOOD));
    char *last_dot = strrchr(t, '.');
    *last_dot = '\0';
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    snprintf(t, sizeof t, "%s.x", hsc(GOOD));
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    snprintf(t, sizeof t, "%s.", hsc(GOOD));
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, ".."), JWT_MALFORMED);
    /* base64url: padding, the standard alphabet, whitespace, a non-canonical last character */
    snprintf(t, sizeof t, "%s=", hsc(GOOD));
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    snprintf(t, sizeof t, "%s", hsc(GOOD));
    t[5] = '+';
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    t[5] = ' ';
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    snprintf(t, sizeof t, "%s", hsc(GOOD));
    size_t len = strlen(t); /* 43 characters carry 32 bytes: the last has 2 unused bits */
    t[len - 1] = (char)(t[len - 1] == 'A' ? 'B' : t[len - 1] + 1);
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    /* JSON: not JSON, not an object, duplicate members, too deep, trailing bytes */
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\"", GOOD, secret, strlen(secret))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hs("[\"HS256\"]", GOOD, secret, strlen(secret))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD, secret, strlen(secret))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\"} x", GOOD, secret, strlen(secret))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("\"alice\"")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"sub\":\"bob\"}")), JWT_MALFORMED);
    /* an escaped NUL would cut the string in cJSON: "alice\u0000x" must not read as "alice" */
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\\u0000x\",\"exp\":1700000100}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"note\":\"\\\\u0000\"}")), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"al\\u0069ce\",\"exp\":1700000100}")), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc(nested(16))), JWT_OK); /* the claims object and 15 arrays */
    CHECK_EQ_INT(verify(v, hsc(nested(17))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc(nested(5000))), JWT_TOO_LARGE);
    jwt_verifier_free(v);
}

/* n distinct two-character members "XY":0 after the given prefix, closed: {PREFIX,"aa":0,...}. */
static const char *with_members(const char *prefix, int n) {
    static char text[JWT_MAX_TOKEN];
    static const char a[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = (size_t)snprintf(text, sizeof text, "{%s", prefix);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, ",\"%c%c\":0", a[i / 62], a[i % 62]);
    snprintf(text + len, sizeof text - len, "}");
    return text;
}

/* Members are bounded before cJSON builds its tree, and duplicates found by sorting: a header of
 * 875 short members once cost a quadratic comparison before alg or the signature was looked at. */
static void test_member_bounds(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    static char header[JWT_MAX_TOKEN];
    snprintf(header, sizeof header, "%s", with_members("\"alg\":\"HS256\"", JWT_MAX_HEADER_MEMBERS - 1));
    CHECK_EQ_INT(verify(v, hs(header, GOOD, secret, strlen(secret))), JWT_OK);
    snprintf(header, sizeof header, "%s", with_members("\"alg\":\"HS256\"", JWT_MAX_HEADER_MEMBERS));
    CHECK_EQ_INT(verify(v, hs(header, GOOD, secret, strlen(secret))), JWT_MALFORMED);
    snprintf(header, sizeof header, "%s", with_members("\"alg\":\"HS256\"", 860)); /* issue 18's shape, as many as fit */
    CHECK(strlen(hs(header, GOOD, secret, strlen(secret))) <= JWT_MAX_TOKEN);
    CHECK_EQ_INT(verify(v, tok), JWT_MALFORMED);
    const char *claims = "\"sub\":\"alice\",\"exp\":1700000100";
    CHECK_EQ_INT(verify(v, hsc(with_members(claims, JWT_MAX_CLAIMS - 2))), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc(with_members(claims, JWT_MAX_CLAIMS - 1))), JWT_MALFORMED);
    /* a duplicate is still found when the members are many and the pair far apart */
    snprintf(header, sizeof header, "%s", with_members("\"alg\":\"HS256\",\"zz\":1", JWT_MAX_HEADER_MEMBERS - 3));
    snprintf(header + strlen(header) - 1, sizeof header - strlen(header) + 1, ",\"zz\":2}");
    CHECK_EQ_INT(verify(v, hs(header, GOOD, secret, strlen(secret))), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"a\":1,\"b\":2,\"c\":3,\"exp\":1700000100,\"b\":4}")), JWT_MALFORMED);
    jwt_verifier_free(v);
}

/* Claims are RFC 8259 JSON in UTF-8, not what cJSON's lenient parser takes: cJSON reads "\uZZZZ" as
 * U+0000, which cut "alice\uZZZZ" to alice. */
static void test_claims_strict_json(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\\uZZZZ\",\"exp\":1700000100}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\\u00\",\"exp\":1700000100}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"x\":\"\\q\"}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"x\":01}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"x\":\"a\tb\"}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"x\":\"\xff\"}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"x\":\"\xc3\xa9\\u00e9\"}")), JWT_OK);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\",\"kid\":\"\\uZZZZ\"}", GOOD, secret, strlen(secret))), JWT_MALFORMED);
    jwt_verifier_free(v);
}

static void test_refusals_header(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    struct jwt_verifier *rs = verifier(NULL, 0, a2_pem, NULL, NULL);
    struct jwt_verifier *es = verifier(NULL, 0, a3_pem, NULL, NULL);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"none\"}", GOOD, secret, strlen(secret))), JWT_ALG_NONE);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"NoNe\"}", GOOD, secret, strlen(secret))), JWT_ALG_NONE);
    CHECK_EQ_INT(verify(v, hs("{\"typ\":\"JWT\"}", GOOD, secret, strlen(secret))), JWT_ALG_NONE);
    char t[1024];
    snprintf(t, sizeof t, "%s", hs("{\"alg\":\"none\"}", GOOD, secret, strlen(secret)));
    *(strrchr(t, '.') + 1) = '\0'; /* the unsecured form: empty signature */
    CHECK_EQ_INT(verify(v, t), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS512\"}", GOOD, secret, strlen(secret))), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"hs256\"}", GOOD, secret, strlen(secret))), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":256}", GOOD, secret, strlen(secret))), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"RS256\"}", GOOD, secret, strlen(secret))), JWT_ALG_MISMATCH);
    /* The classic confusion: HS256 keyed with the RSA public key's PEM, which a verifier that let the
     * token choose would check with the PEM text as the HMAC secret. */
    CHECK_EQ_INT(verify(rs, hs("{\"alg\":\"HS256\"}", GOOD, a2_pem, strlen(a2_pem))), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify(es, hs("{\"alg\":\"HS256\"}", GOOD, a3_pem, strlen(a3_pem))), JWT_ALG_MISMATCH);
    CHECK_EQ_INT(verify(rs, hs("{\"alg\":\"none\"}", GOOD, a2_pem, strlen(a2_pem))), JWT_ALG_NONE);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOOD, secret, strlen(secret))), JWT_CRIT);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\",\"crit\":[]}", GOOD, secret, strlen(secret))), JWT_CRIT);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", GOOD, secret, strlen(secret))),
                 JWT_OK);
    /* signature: another key, and a good signature on other claims */
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\"}", GOOD, "another secret", 14)), JWT_BAD_SIGNATURE);
    char good[1024], spliced[2048];
    snprintf(good, sizeof good, "%s", hsc(GOOD));
    hsc("{\"sub\":\"mallory\",\"exp\":1700000100}");
    snprintf(spliced, sizeof spliced, "%.*s%s", (int)(strrchr(tok, '.') - tok), tok, strrchr(good, '.'));
    CHECK_EQ_INT(verify(v, spliced), JWT_BAD_SIGNATURE);
    /* a signature failure wins over every claim problem: claims of unsigned data are never read */
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\"}", "{\"exp\":1}", "wrong", 5)), JWT_BAD_SIGNATURE);
    CHECK_EQ_INT(verify(v, hs("{\"alg\":\"HS256\"}", "not json", "wrong", 5)), JWT_BAD_SIGNATURE);
    jwt_verifier_free(v);
    jwt_verifier_free(rs);
    jwt_verifier_free(es);
}

static void test_refusals_claims(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    struct jwt_verifier *aud = verifier(secret, strlen(secret), NULL, "switchboard", "https://id.example");
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\"}")), JWT_NO_EXP);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":\"1700000100\"}")), JWT_NO_EXP);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1e400}")), JWT_NO_EXP);
    /* expiry: within the leeway passes, beyond it fails */
    CHECK_EQ_INT(verify_at(v, hsc(GOOD), 1700000100 + JWT_LEEWAY_S), JWT_OK);
    CHECK_EQ_INT(verify_at(v, hsc(GOOD), 1700000100 + JWT_LEEWAY_S + 1), JWT_EXPIRED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1699999990}")), JWT_EXPIRED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":1700000005}")), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":1700000006}")), JWT_NOT_YET_VALID);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"nbf\":\"soon\"}")), JWT_MALFORMED);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"iat\":null}")), JWT_MALFORMED);
    /* audience and issuer */
    const char *both = "{\"sub\":\"alice\",\"exp\":1700000100,\"iss\":\"https://id.example\",\"aud\":%s}";
    char c[512];
    snprintf(c, sizeof c, both, "\"switchboard\"");
    CHECK_EQ_INT(verify(aud, hsc(c)), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc(c)), JWT_BAD_AUDIENCE); /* aimed at a named audience we did not configure */
    snprintf(c, sizeof c, both, "[\"other\",\"switchboard\"]");
    CHECK_EQ_INT(verify(aud, hsc(c)), JWT_OK);
    snprintf(c, sizeof c, both, "[\"other\"]");
    CHECK_EQ_INT(verify(aud, hsc(c)), JWT_BAD_AUDIENCE);
    snprintf(c, sizeof c, both, "\"switchboard2\"");
    CHECK_EQ_INT(verify(aud, hsc(c)), JWT_BAD_AUDIENCE);
    snprintf(c, sizeof c, both, "1");
    CHECK_EQ_INT(verify(aud, hsc(c)), JWT_BAD_AUDIENCE);
    CHECK_EQ_INT(verify(aud, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"iss\":\"https://id.example\"}")),
                 JWT_BAD_AUDIENCE);
    CHECK_EQ_INT(verify(aud, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"aud\":\"switchboard\"}")),
                 JWT_BAD_ISSUER);
    CHECK_EQ_INT(verify(aud, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"aud\":\"switchboard\",\"iss\":\"evil\"}")),
                 JWT_BAD_ISSUER);
    /* subject */
    CHECK_EQ_INT(verify(v, hsc("{\"exp\":1700000100}")), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"\",\"exp\":1700000100}")), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"al ice\",\"exp\":1700000100}")), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"conn-7\",\"exp\":1700000100}")), JWT_BAD_SUBJECT);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":42,\"exp\":1700000100}")), JWT_BAD_SUBJECT);
    /* rooms */
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":\"lobby\"}")), JWT_BAD_ROOMS);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"lo bby\"]}")), JWT_BAD_ROOMS);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"a*b\"]}")), JWT_BAD_ROOMS);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"**\"]}")), JWT_BAD_ROOMS);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[1]}")), JWT_BAD_ROOMS);
    CHECK_EQ_INT(verify(v, hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"\"]}")), JWT_BAD_ROOMS);
    char many[2048] = "{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[";
    for (int i = 0; i < JWT_MAX_ROOMS; i++) snprintf(many + strlen(many), sizeof many - strlen(many), "%s\"r%d\"", i ? "," : "", i);
    char more[sizeof many + 16]; /* room for many and the extra room: no truncation */
    snprintf(more, sizeof more, "%s,\"one-more\"]}", many);
    strcat(many, "]}");
    CHECK_EQ_INT(verify(v, hsc(many)), JWT_OK);
    CHECK_EQ_INT(verify(v, hsc(more)), JWT_BAD_ROOMS);
    jwt_verifier_free(v);
    jwt_verifier_free(aud);
}

static void test_rooms(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    struct jwt_claims c;
    const char *t = hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"lobby\",\"team-7.*\"]}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK) && CHECK_EQ_INT(c.nrooms, 2)) {
        CHECK_EQ_STR(c.rooms[0], "lobby");
        CHECK_EQ_STR(c.rooms[1], "team-7.*");
        CHECK(jwt_room_allowed(&c, "lobby"));
        CHECK(!jwt_room_allowed(&c, "lobby2"));
        CHECK(!jwt_room_allowed(&c, "lob"));
        CHECK(jwt_room_allowed(&c, "team-7.general"));
        CHECK(jwt_room_allowed(&c, "team-7."));
        CHECK(!jwt_room_allowed(&c, "team-70"));
        CHECK(!jwt_room_allowed(&c, "team-8.general"));
    }
    jwt_claims_free(&c);
    t = hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[\"*\"]}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) CHECK(jwt_room_allowed(&c, "anything"));
    jwt_claims_free(&c);
    t = hsc("{\"sub\":\"alice\",\"exp\":1700000100,\"rooms\":[]}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) {
        CHECK(c.rooms != NULL && c.nrooms == 0);
        CHECK(!jwt_room_allowed(&c, "lobby"));
    }
    jwt_claims_free(&c);
    jwt_verifier_free(v);
}

static void test_permission_claims(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    struct jwt_claims c;
    const char *t = hsc("{\"sub\":\"v\",\"exp\":1700000100,\"allow\":[\"send\",\"join\"],\"send_to\":[\"support-*\",\"bob\"]}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) {
        CHECK(c.has_allow && c.allow == (JWT_ALLOW_SEND | JWT_ALLOW_JOIN));
        CHECK(c.nsend_to == 2 && jwt_patterns_match(c.send_to, c.nsend_to, "support-12"));
        CHECK(jwt_patterns_match(c.send_to, c.nsend_to, "bob") && !jwt_patterns_match(c.send_to, c.nsend_to, "bobby"));
    }
    jwt_claims_free(&c);
    t = hsc("{\"sub\":\"v\",\"exp\":1700000100,\"allow\":[]}"); /* receive-only */
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) CHECK(c.has_allow && c.allow == 0 && !c.send_to);
    jwt_claims_free(&c);
    t = hsc("{\"sub\":\"v\",\"exp\":1700000100}");
    if (CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_OK)) CHECK(!c.has_allow && !c.send_to);
    jwt_claims_free(&c);
    const char *bad[] = {"\"allow\":[\"sned\"]", "\"allow\":\"send\"", "\"allow\":[1]", "\"send_to\":[\"a b\"]",
                         "\"send_to\":\"bob\"", "\"send_to\":[\"b*b\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[256];
        snprintf(json, sizeof json, "{\"sub\":\"v\",\"exp\":1700000100,%s}", bad[i]);
        t = hsc(json);
        CHECK_EQ_INT(jwt_verify(v, t, strlen(t), NOW, &c), JWT_BAD_PERMS);
    }
    CHECK_EQ_INT(jwt_allow_bit("users"), JWT_ALLOW_USERS);
    CHECK_EQ_INT(jwt_allow_bit("leave"), 0);
    jwt_verifier_free(v);
}

static void test_mint(void) {
    struct jwt_verifier *v = verifier(secret, strlen(secret), NULL, NULL, NULL);
    const char *rooms[] = {"lobby", "team-7.*"};
    char t[1024];
    struct jwt_claims c;
    int n = jwt_mint_hs256(secret, strlen(secret), "bob", NOW - 10, NOW + 3600, rooms, 2, t, sizeof t);
    if (CHECK(n > 0) && CHECK_EQ_INT(strlen(t), n) && CHECK_EQ_INT(jwt_verify(v, t, (size_t)n, NOW, &c), JWT_OK)) {
        CHECK_EQ_STR(c.sub, "bob");
        CHECK_EQ_INT(c.exp, NOW + 3600);
        CHECK_EQ_INT(c.iat, NOW - 10);
        CHECK_EQ_INT(c.nrooms, 2);
        CHECK(jwt_room_allowed(&c, "team-7.x") && !jwt_room_allowed(&c, "hall"));
    }
    jwt_claims_free(&c);
    n = jwt_mint_hs256(secret, strlen(secret), "bob", NOW, NOW + 60, NULL, 0, t, sizeof t);
    if (CHECK(n > 0) && CHECK_EQ_INT(jwt_verify(v, t, (size_t)n, NOW, &c), JWT_OK)) CHECK(c.rooms == NULL);
    jwt_claims_free(&c);
    CHECK_EQ_INT(jwt_verify(v, t, (size_t)n, NOW + 60 + JWT_LEEWAY_S + 1, &c), JWT_EXPIRED);
    CHECK_EQ_INT(jwt_mint_hs256(secret, strlen(secret), "conn-1", NOW, NOW + 60, NULL, 0, t, sizeof t), -1);
    CHECK_EQ_INT(jwt_mint_hs256(secret, strlen(secret), "a\"b", NOW, NOW + 60, NULL, 0, t, sizeof t), -1);
    const char *bad_rooms[] = {"ok", "no\"pe"};
    CHECK_EQ_INT(jwt_mint_hs256(secret, strlen(secret), "bob", NOW, NOW + 60, bad_rooms, 2, t, sizeof t), -1);
    CHECK_EQ_INT(jwt_mint_hs256(secret, strlen(secret), "bob", NOW, NOW + 60, NULL, 0, t, 40), -1);
    CHECK_EQ_INT(jwt_mint_hs256(secret, 0, "bob", NOW, NOW + 60, NULL, 0, t, sizeof t), -1);
    jwt_verifier_free(v);
}

/* Signatures made here with a fresh P-256 key, converted from DER to R || S: covers R or S with leading
 * zero bytes (about 1 in 128 each), which a careless conversion gets wrong. */
static void test_es256_generated(void) {
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!CHECK(key)) return;
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char pem[512] = "";
    BIO_read(bio, pem, sizeof pem - 1);
    BIO_free(bio);
    struct jwt_verifier *es = verifier(NULL, 0, pem, NULL, NULL);
    int ok = 0, der_refused = 0, short_refused = 0;
    for (int i = 0; i < 300 && es; i++) {
        char claims[128];
        snprintf(claims, sizeof claims, "{\"sub\":\"u%d\",\"exp\":1700000100}", i);
        size_t n = signing_input("{\"alg\":\"ES256\"}", claims, tok);
        unsigned char der[80], raw[64];
        size_t der_len = sizeof der;
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
        EVP_DigestSign(ctx, der, &der_len, (unsigned char *)tok, n);
        EVP_MD_CTX_free(ctx);
        const unsigned char *p = der;
        ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32);
        ECDSA_SIG_free(sig);
        tok[n] = '.';
        b64url(raw, 64, tok + n + 1);
        ok += verify(es, tok) == JWT_OK;
        b64url(raw, 63, tok + n + 1);
        short_refused += verify(es, tok) == JWT_BAD_SIGNATURE;
        b64url(der, der_len, tok + n + 1);
        der_refused += verify(es, tok) == JWT_BAD_SIGNATURE;
    }
    CHECK_EQ_INT(ok, 300);
    CHECK_EQ_INT(short_refused, 300);
    CHECK_EQ_INT(der_refused, 300);
    jwt_verifier_free(es);
    EVP_PKEY_free(key);
}

static void test_keys_and_names(void) {
    char err[256];
    struct jwt_settings none = {0}, both = {secret, strlen(secret), a2_pem, NULL, NULL};
    struct jwt_settings empty = {"", 0, NULL, NULL, NULL}, junk = {NULL, 0, "-----BEGIN PUBLIC KEY-----\nAAAA\n", NULL, NULL};
    CHECK(jwt_verifier_new(&none, err, sizeof err) == NULL && err[0]);
    CHECK(jwt_verifier_new(&both, err, sizeof err) == NULL && err[0]);
    CHECK(jwt_verifier_new(&empty, err, sizeof err) == NULL && err[0]);
    CHECK(jwt_verifier_new(&junk, err, sizeof err) == NULL && err[0]);
    /* a P-384 key is an EC key, but not ES256's */
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, p384);
    char pem[1024] = "";
    BIO_read(bio, pem, sizeof pem - 1);
    BIO_free(bio);
    EVP_PKEY_free(p384);
    struct jwt_settings s384 = {NULL, 0, pem, NULL, NULL};
    CHECK(jwt_verifier_new(&s384, err, sizeof err) == NULL && strstr(err, "P-256"));
    for (int e = 0; e < JWT__COUNT; e++) CHECK(jwt_error_names[e] && jwt_error_text((enum jwt_error)e)[0]);
    CHECK_EQ_STR(jwt_error_names[JWT_OK], "ok");
    CHECK_EQ_STR(jwt_error_names[JWT_EXPIRED], "expired");
    CHECK_EQ_STR(jwt_error_text(JWT_EXPIRED), "token expired");
    CHECK_EQ_STR(jwt_error_text(JWT_BAD_SIGNATURE), "token signature is invalid");
}

int main(void) {
    test_rfc7515_a1();
    test_rfc7515_a2_a3();
    test_valid_claims();
    test_refusals_structure();
    test_refusals_header();
    test_refusals_claims();
    test_member_bounds();
    test_claims_strict_json();
    test_rooms();
    test_permission_claims();
    test_mint();
    test_es256_generated();
    test_keys_and_names();
    return check_done();
}

/* jwtbench: how long jwt_verify takes per token, for HS256, RS256 and ES256.
 *
 * Makes one key of each kind (a 32-byte secret, RSA 2048, EC P-256) and one token per algorithm with the
 * same claims, writes keys and tokens into DIR (for the peer, bench/peers/jose-verify.mjs, which verifies
 * the very same tokens), then verifies each token repeatedly: a warm-up, then up to --iterations times or
 * --seconds, whichever comes first. Every verification must return JWT_OK, or the run fails.
 * Prints one line per algorithm: "RESULT impl=switchboard alg=HS256 n=... us_per_verify=...".
 * Then token shapes, HS256, every token SHAPE_LEN characters: a valid one (claims padded with a
 * string), one whose header holds as many short distinct members as fit, one whose signed claims do;
 * "SHAPE ... shape=NAME result=... us_per_verify=..." each, then the worst shapes' cost as ratios to the
 * valid token's (issue 18: a token's shape must not cost more than its bytes, so both stay under 2).
 * The three take turns in SHAPE_ROUNDS slices of the time, so the ratios hold on a busy machine.
 *
 * usage: jwtbench DIR [--iterations N] [--seconds S] */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"

#define CLAIMS "{\"sub\":\"alice\",\"iat\":1700000000,\"exp\":4102444800,\"rooms\":[\"lobby\",\"team-7.*\"]}"
#define NOW 1700000000

static size_t b64url(const unsigned char *in, size_t len, char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < len ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[n++] = a[v >> 18 & 63];
        out[n++] = a[v >> 12 & 63];
        if (i + 1 < len) out[n++] = a[v >> 6 & 63];
        if (i + 2 < len) out[n++] = a[v & 63];
    }
    out[n] = '\0';
    return n;
}

static size_t signing_input(const char *alg, char *out) {
    char header[64];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    size_t n = b64url((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    return n + b64url((const unsigned char *)CLAIMS, strlen(CLAIMS), out + n);
}

/* Signs with a private key; ES256 signatures go from DER to JWS's R || S. */
static void sign_pkey(EVP_PKEY *key, int es, char *tok) {
    size_t n = signing_input(es ? "ES256" : "RS256", tok);
    unsigned char sig[512], raw[64];
    size_t slen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(ctx, sig, &slen, (unsigned char *)tok, n) != 1) {
        fprintf(stderr, "jwtbench: signing failed\n");
        exit(1);
    }
    EVP_MD_CTX_free(ctx);
    tok[n++] = '.';
    if (!es) {
        b64url(sig, slen, tok + n);
        return;
    }
    const unsigned char *p = sig;
    ECDSA_SIG *es_sig = d2i_ECDSA_SIG(NULL, &p, (long)slen);
    BN_bn2binpad(ECDSA_SIG_get0_r(es_sig), raw, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(es_sig), raw + 32, 32);
    ECDSA_SIG_free(es_sig);
    b64url(raw, 64, tok + n);
}

static void write_file(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "jwtbench: cannot write %s\n", path);
        exit(1);
    }
}

static void public_pem(EVP_PKEY *key, char *out, size_t cap) {
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    int n = BIO_read(bio, out, (int)cap - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(bio);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Verifies tok repeatedly after a warm-up: up to `iterations` times or `seconds`. Returns µs per
 * verification and sets *done to how many ran; *result is what every verification answered (the run
 * fails if they disagree). */
static double time_verify(const struct jwt_verifier *v, const char *tok, long iterations, double seconds,
                          enum jwt_error *result, long *done) {
    size_t len = strlen(tok);
    struct jwt_claims c;
    long n = 0;
    *result = jwt_verify(v, tok, len, NOW, &c);
    jwt_claims_free(&c);
    for (int i = 0; i < 100; i++) { /* warm-up */
        if (jwt_verify(v, tok, len, NOW, &c) != *result) exit(1);
        jwt_claims_free(&c);
    }
    double start = now_s(), end = start;
    while (n < iterations && (n % 64 || (end = now_s()) - start < seconds)) {
        if (jwt_verify(v, tok, len, NOW, &c) != *result) exit(1);
        jwt_claims_free(&c);
        n++;
    }
    end = now_s();
    *done = n;
    return (end - start) * 1e6 / (double)n;
}

static struct jwt_verifier *verifier(const char *alg, const struct jwt_settings *s) {
    char err[256];
    struct jwt_verifier *v = jwt_verifier_new(s, err, sizeof err);
    if (!v) {
        fprintf(stderr, "jwtbench: %s verifier: %s\n", alg, err);
        exit(1);
    }
    return v;
}

static void bench(const char *alg, const struct jwt_settings *s, const char *tok, long iterations, double seconds) {
    struct jwt_verifier *v = verifier(alg, s);
    enum jwt_error e;
    long n;
    double us = time_verify(v, tok, iterations, seconds, &e, &n);
    if (e != JWT_OK) {
        fprintf(stderr, "jwtbench: %s token refused\n", alg);
        exit(1);
    }
    printf("RESULT impl=switchboard alg=%s n=%ld us_per_verify=%.2f\n", alg, n, us);
    jwt_verifier_free(v);
}

/* ---- token shapes (issue 18): parsing must cost what the bytes cost, not what their shape does ---- */

#define SHAPE_LEN 8175 /* characters of every shaped token */

/* An HS256 token of header.claims signed with secret, into out. */
static size_t hs_token(const char *secret, const char *header, const char *claims, char *out) {
    size_t n = b64url((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += b64url((const unsigned char *)claims, strlen(claims), out + n);
    unsigned char mac[32];
    unsigned mlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, n, mac, &mlen);
    out[n++] = '.';
    return n + b64url(mac, mlen, out + n);
}

/* {PREFIX,"aa":0,"ab":0,...}: distinct two-character members until the JSON is `len` bytes or less. */
static void members_json(const char *prefix, size_t len, char *out) {
    static const char a[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t n = (size_t)sprintf(out, "{%s", prefix);
    for (int i = 0; n + 8 <= len && i < 62 * 62; i++) n += (size_t)sprintf(out + n, ",\"%c%c\":0", a[i / 62], a[i % 62]);
    strcpy(out + n, "}");
}

/* The claims of a valid token, padded with a "pad" string until the token is SHAPE_LEN characters. */
static void padded_token(const char *secret, const char *header, char *claims, char *tok) {
    size_t pad = 0;
    for (;;) {
        sprintf(claims, "{\"sub\":\"alice\",\"iat\":1700000000,\"exp\":4102444800,\"pad\":\"%0*d\"}", (int)pad, 0);
        if (hs_token(secret, header, claims, tok) >= SHAPE_LEN) return;
        pad++;
    }
}

/* A token of at most SHAPE_LEN characters whose header (in_header) or claims are {PREFIX,"aa":0,...}
 * with as many members as fit, the other part `other`. */
static void members_token(const char *secret, int in_header, const char *prefix, const char *other, char *tok) {
    static char json[JWT_MAX_TOKEN];
    for (size_t len = SHAPE_LEN;; len--) {
        members_json(prefix, len, json);
        if (hs_token(secret, in_header ? json : other, in_header ? other : json, tok) <= SHAPE_LEN) return;
    }
}

#define SHAPE_ROUNDS 20 /* the shapes take turns, so a change in the machine's load hits all three alike */

/* A valid token of SHAPE_LEN characters against the two worst shapes of the same length: a header of
 * as many short members as fit (refused before alg or the signature are read), and signed claims of
 * as many (read after the signature passes). */
static void bench_shapes(const char *secret, long iterations, double seconds) {
    static const char *const names[] = {"normal", "header-members", "claims-members"};
    struct jwt_settings s = {secret, strlen(secret), NULL, NULL, NULL};
    struct jwt_verifier *v = verifier("HS256", &s);
    static char claims[JWT_MAX_TOKEN], tok[3][2 * JWT_MAX_TOKEN];
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    padded_token(secret, header, claims, tok[0]);
    members_token(secret, 1, "\"alg\":\"HS256\"", "{\"sub\":\"alice\",\"exp\":4102444800}", tok[1]);
    members_token(secret, 0, "\"sub\":\"alice\",\"exp\":4102444800", header, tok[2]);
    double us_sum[3] = {0};
    long n_sum[3] = {0};
    enum jwt_error e[3];
    for (int r = 0; r < SHAPE_ROUNDS; r++) {
        for (int k = 0; k < 3; k++) {
            long n;
            double us = time_verify(v, tok[k], iterations / SHAPE_ROUNDS + 1, seconds / SHAPE_ROUNDS, &e[k], &n);
            us_sum[k] += us * (double)n;
            n_sum[k] += n;
        }
    }
    double us[3];
    for (int k = 0; k < 3; k++) {
        us[k] = us_sum[k] / (double)n_sum[k];
        printf("SHAPE impl=switchboard shape=%s len=%zu result=%s n=%ld us_per_verify=%.2f\n", names[k],
               strlen(tok[k]), jwt_error_names[e[k]], n_sum[k], us[k]);
    }
    printf("SHAPE ratio header-members/normal=%.2f claims-members/normal=%.2f\n", us[1] / us[0], us[2] / us[0]);
    jwt_verifier_free(v);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: jwtbench DIR [--iterations N] [--seconds S]\n");
        return 2;
    }
    const char *dir = argv[1];
    long iterations = 200000;
    double seconds = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--iterations") == 0) iterations = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);
    }
    static const char secret[] = "bench-secret-0123456789abcdef012"; /* 32 bytes */
    static char hs[1024], rs[2048], es[1024], rs_pem[1024], es_pem[512];
    unsigned char mac[32];
    unsigned mlen = 0;
    size_t n = signing_input("HS256", hs);
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)hs, n, mac, &mlen);
    hs[n++] = '.';
    b64url(mac, mlen, hs + n);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    sign_pkey(rsa, 0, rs);
    sign_pkey(ec, 1, es);
    public_pem(rsa, rs_pem, sizeof rs_pem);
    public_pem(ec, es_pem, sizeof es_pem);
    write_file(dir, "hs256.secret", secret);
    write_file(dir, "hs256.jwt", hs);
    write_file(dir, "rs256.pem", rs_pem);
    write_file(dir, "rs256.jwt", rs);
    write_file(dir, "es256.pem", es_pem);
    write_file(dir, "es256.jwt", es);
    struct jwt_settings shs = {secret, strlen(secret), NULL, NULL, NULL};
    struct jwt_settings srs = {NULL, 0, rs_pem, NULL, NULL};
    struct jwt_settings ses = {NULL, 0, es_pem, NULL, NULL};
    bench("HS256", &shs, hs, iterations, seconds);
    bench("RS256", &srs, rs, iterations, seconds);
    bench("ES256", &ses, es, iterations, seconds);
    bench_shapes(secret, iterations, seconds);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}

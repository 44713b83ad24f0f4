/* keys: from the key settings to a jwt verifier (see keys.h). */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Reads a regular file of at most cap - 1 bytes into out, NUL-terminated; returns its length or -1. */
static long read_small_file(const char *flag, const char *path, char *out, size_t cap, char *err, size_t errcap) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errcap, "%s: cannot read '%s': %s", flag, path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || st.st_size >= (off_t)cap) {
        snprintf(err, errcap, "%s: '%s' is not a regular file of under %zu bytes", flag, path, cap);
        close(fd);
        return -1;
    }
    size_t n = 0;
    ssize_t got;
    while (n < cap - 1 && (got = read(fd, out + n, cap - 1 - n)) > 0) n += (size_t)got;
    close(fd);
    out[n] = '\0';
    return (long)n;
}

static int settings_conflict(const struct config *cfg, char *err, size_t cap) {
    int secret = cfg->jwt_secret[0] || cfg->jwt_secret_file[0];
    if (cfg->jwt_secret[0] && cfg->jwt_secret_file[0])
        snprintf(err, cap, "--jwt-secret and --jwt-secret-file exclude each other: give one");
    else if (secret && cfg->jwt_public_key[0])
        snprintf(err, cap, "--jwt-public-key and an HS256 secret (--jwt-secret/--jwt-secret-file) exclude each "
                           "other: the key decides the algorithm, give one");
    else return 0;
    return -1;
}

long keys_jwt_secret(const struct config *cfg, unsigned char *out, size_t cap, char *err, size_t errcap) {
    if (errcap) err[0] = '\0';
    if (settings_conflict(cfg, err, errcap) < 0) return -1;
    size_t len = strlen(cfg->jwt_secret);
    if (len) {
        if (len > cap) {
            snprintf(err, errcap, "--jwt-secret: longer than %zu bytes", cap);
            return -1;
        }
        memcpy(out, cfg->jwt_secret, len);
        return (long)len;
    }
    if (!cfg->jwt_secret_file[0]) return 0;
    static char text[KEYS_FILE_MAX];
    long n = read_small_file("--jwt-secret-file", cfg->jwt_secret_file, text, sizeof text, err, errcap);
    if (n < 0) return -1;
    if (n > 0 && text[n - 1] == '\n') n--;
    if (n > 0 && text[n - 1] == '\r') n--;
    if (n == 0 || (size_t)n > cap) {
        snprintf(err, errcap, "--jwt-secret-file: '%s' holds %s", cfg->jwt_secret_file,
                 n ? "a secret too long" : "an empty secret");
        n = -1;
    } else memcpy(out, text, (size_t)n);
    memset(text, 0, sizeof text);
    return n;
}

static struct jwt_verifier *from_public_key(const struct config *cfg, struct jwt_settings *s, char *err,
                                            size_t cap) {
    static char pem[KEYS_FILE_MAX];
    if (read_small_file("--jwt-public-key", cfg->jwt_public_key, pem, sizeof pem, err, cap) < 0) return NULL;
    s->public_key_pem = pem;
    char why[256];
    struct jwt_verifier *v = jwt_verifier_new(s, why, sizeof why);
    if (!v) snprintf(err, cap, "--jwt-public-key: '%s': %s", cfg->jwt_public_key, why);
    return v;
}

struct jwt_verifier *keys_jwt_verifier(const struct config *cfg, char *err, size_t cap) {
    unsigned char secret[KEYS_FILE_MAX];
    long n = keys_jwt_secret(cfg, secret, sizeof secret, err, cap);
    if (n < 0) return NULL;
    struct jwt_settings s = {NULL, 0, NULL, cfg->jwt_audience[0] ? cfg->jwt_audience : NULL,
                             cfg->jwt_issuer[0] ? cfg->jwt_issuer : NULL};
    struct jwt_verifier *v = NULL;
    if (n > 0) {
        s.secret = (const char *)secret;
        s.secret_len = (size_t)n;
        char why[256];
        v = jwt_verifier_new(&s, why, sizeof why);
        if (!v) snprintf(err, cap, "--jwt-secret: %s", why);
        memset(secret, 0, (size_t)n);
    } else if (cfg->jwt_public_key[0]) v = from_public_key(cfg, &s, err, cap);
    return v;
}

int keys_check(const struct config *cfg, char *err, size_t cap) {
    struct jwt_verifier *v = keys_jwt_verifier(cfg, err, cap);
    if (!v && !err[0] && (cfg->jwt_audience[0] || cfg->jwt_issuer[0]))
        snprintf(err, cap, "--jwt-audience and --jwt-issuer need a key (--jwt-secret, --jwt-secret-file or "
                           "--jwt-public-key): without one no token is asked for");
    if (!v) return err[0] ? -1 : 0;
    if (strcmp(jwt_verifier_alg(v), "HS256") == 0) {
        unsigned char secret[KEYS_FILE_MAX];
        long n = keys_jwt_secret(cfg, secret, sizeof secret, err, cap);
        memset(secret, 0, sizeof secret);
        if (n > 0 && n < KEYS_SECRET_WARN_LEN)
            log_warn("the HS256 secret is %ld bytes: use at least %d random bytes (RFC 7518 3.2)", n,
                     KEYS_SECRET_WARN_LEN);
    }
    jwt_verifier_free(v);
    return 0;
}

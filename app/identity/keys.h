/* keys: the token key the operator configured (--jwt-secret, --jwt-secret-file, --jwt-public-key),
 * read from the configuration and its files into a jwt verifier.
 *
 * Files are read once, at start, bounded (KEYS_FILE_MAX) and only if they are regular files (a FIFO or
 * a device would block or never end). Nothing here is kept: the verifier owns copies of what it needs.
 * Error convention: a message in err (cap bytes) saying which flag and what is wrong. Not thread-safe
 * in the sense that it is meant for the start-up thread; the verifier it returns is (jwt.h). */
#ifndef SB_KEYS_H
#define SB_KEYS_H

#include <stddef.h>

#include "config.h"
#include "jwt.h"

#define KEYS_FILE_MAX 16384     /* bytes of a secret file or a PEM file */
#define KEYS_SECRET_WARN_LEN 32 /* an HS256 secret shorter than this is accepted with a warning */

/* The verifier for the configured key: NULL with err[0] == 0 when no key is configured (open mode),
 * NULL with err set when the key cannot be used. Free it with jwt_verifier_free. */
struct jwt_verifier *keys_jwt_verifier(const struct config *cfg, char *err, size_t cap);
/* The HS256 secret (from --jwt-secret or the file, trailing newline stripped) into out (cap bytes, not
 * NUL-terminated). Returns its length, 0 when no secret is configured, -1 with err set on failure. */
long keys_jwt_secret(const struct config *cfg, unsigned char *out, size_t cap, char *err, size_t errcap);
/* Checks the key settings at load (config_load calls it): flags that exclude each other, unreadable
 * files, a PEM that is not an RSA or P-256 public key, an empty secret, an audience or issuer without a
 * key. Warns (log_warn) about a secret under KEYS_SECRET_WARN_LEN bytes. Returns 0, or -1 with err set. */
int keys_check(const struct config *cfg, char *err, size_t cap);

#endif

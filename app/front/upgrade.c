/* upgrade: the WebSocket opening handshake's decisions and its 101 (see upgrade.h). */
#include "upgrade.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define UPGRADE_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 1.3 */
#define UPGRADE_KEY_LEN 24

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* The next token of a comma-separated header list, trimmed: sets *at and *len, returns where the
 * rest of the list starts, or NULL when the list is done. */
static const char *next_token(const char *list, const char **at, size_t *len) {
    while (is_space(*list) || *list == ',') list++;
    if (!*list) return NULL;
    const char *end = list;
    while (*end && *end != ',') end++;
    size_t n = (size_t)(end - list);
    while (n && is_space(list[n - 1])) n--;
    *at = list;
    *len = n;
    return end;
}

/* Whether the list `header` holds `token`, case-insensitively. */
static int lists(const char *header, const char *token) {
    size_t want = strlen(token), len;
    const char *at;
    for (const char *p = header; p && (p = next_token(p, &at, &len)) != NULL;)
        if (len == want && strncasecmp(at, token, len) == 0) return 1;
    return 0;
}

int upgrade_requested(const char *connection, const char *upgrade) {
    return connection && upgrade && lists(connection, "upgrade") && lists(upgrade, "websocket");
}

int upgrade_key_valid(const char *key) {
    if (!key || strlen(key) != UPGRADE_KEY_LEN || strcmp(key + 22, "==") != 0) return 0;
    for (int i = 0; i < 22; i++)
        if (!isalnum((unsigned char)key[i]) && key[i] != '+' && key[i] != '/') return 0;
    return 1;
}

int upgrade_version_ok(const char *version) {
    if (!version) return 0;
    while (is_space(*version)) version++;
    if (strncmp(version, "13", 2) != 0) return 0;
    for (version += 2; is_space(*version);) version++;
    return *version == '\0';
}

/* The name in `known` spelled exactly as at[0..len), or NULL. */
static const char *known_as(const char *at, size_t len, const char *const *known, size_t nknown) {
    for (size_t i = 0; i < nknown; i++)
        if (strlen(known[i]) == len && memcmp(known[i], at, len) == 0) return known[i];
    return NULL;
}

const char *upgrade_pick_protocol(const char *const *offers, size_t n, const char *const *known, size_t nknown) {
    for (size_t i = 0; i < n; i++) {
        const char *at, *found;
        size_t len;
        for (const char *p = offers[i]; p && (p = next_token(p, &at, &len)) != NULL;)
            if ((found = known_as(at, len, known, nknown)) != NULL) return found;
    }
    return NULL;
}

size_t upgrade_response(char *out, const char *key, const char *protocol) {
    char joined[UPGRADE_KEY_LEN + sizeof UPGRADE_GUID];
    unsigned char digest[SHA_DIGEST_LENGTH];
    char accept[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    snprintf(joined, sizeof joined, "%s%s", key, UPGRADE_GUID);
    SHA1((const unsigned char *)joined, strlen(joined), digest);
    EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
    int n = snprintf(out, UPGRADE_RESPONSE_MAX,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
                     accept, protocol ? "Sec-WebSocket-Protocol: " : "", protocol ? protocol : "", protocol ? "\r\n" : "");
    return n > 0 && n < UPGRADE_RESPONSE_MAX ? (size_t)n : 0;
}

/* upgrade: the server's side of the WebSocket opening handshake (RFC 6455 4.2), on parsed headers.
 *
 * switchboard answers an upgrade itself, on the event loop that read the request head (acceptor.h,
 * ws.c); CivetWeb never sees it. This module decides what an upgrade request is and renders the 101;
 * it is pure (no sockets), so the parsing of these outside inputs is unit-tested and fuzzed. */
#ifndef SB_UPGRADE_H
#define SB_UPGRADE_H

#include <stddef.h>

#define UPGRADE_RESPONSE_MAX 256 /* the longest 101 upgrade_response renders (with a subprotocol) */

/* Whether a request asks for a WebSocket: its Connection header lists the token "upgrade" and its
 * Upgrade header "websocket" (both case-insensitive, comma-separated lists). Either may be NULL. */
int upgrade_requested(const char *connection, const char *upgrade);

/* RFC 6455 4.2.1: Sec-WebSocket-Key is 16 bytes in base64, 24 characters ending in "==". */
int upgrade_key_valid(const char *key);

/* Sec-WebSocket-Version: only 13 is spoken; anything else gets 426 with "Sec-WebSocket-Version: 13". */
int upgrade_version_ok(const char *version);

/* The subprotocol to accept: the first of the client's offers (the values of its n
 * Sec-WebSocket-Protocol headers, each a comma-separated list, in order) that is one of the server's
 * `nknown` names. Returns that name from `known`, or NULL when the client offered none of them. */
const char *upgrade_pick_protocol(const char *const *offers, size_t n, const char *const *known, size_t nknown);

/* Renders the 101 for `key` (valid per upgrade_key_valid), naming `protocol` if not NULL, into out
 * (UPGRADE_RESPONSE_MAX bytes); returns its length, 0 if it does not fit (a protocol name too long). */
size_t upgrade_response(char *out, const char *key, const char *protocol);

#endif

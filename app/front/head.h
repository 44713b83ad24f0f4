/* head: an HTTP/1.x request head, found in bytes that arrive in pieces, and parsed in place.
 *
 * The acceptor (acceptor.h) reads each new connection's request head on an event loop, a few bytes at
 * a time if the client sends them so, and must know after every read whether the head is whole: it
 * is, once an empty line ends it. head_scan answers that without looking at a byte twice, whatever
 * the pieces. head_parse then splits the whole head into the request line and its header fields,
 * writing NULs into the buffer, for the WebSocket handshake (ws.h) and the log. The head comes from
 * anyone on the network: every length is bounded by the buffer, nothing is assumed about its bytes,
 * and a head that is not HTTP gets 400 (fuzz/fuzz_head.c). Pure: no sockets. */
#ifndef SB_HEAD_H
#define SB_HEAD_H

#include <stddef.h>

/* The largest head read; a longer one gets 431. CivetWeb's bound (max_request_size) was 16 KiB, and a
 * handshake may carry a token of up to JWT_MAX_TOKEN (8 KiB) bytes plus its other fields: a longer
 * token is refused as too large with 401 (auth.h), not with 431. */
#define HEAD_MAX 16384
#define HEAD_FIELDS_MAX 64 /* header fields kept; a head with more gets 431 */

/* Where a scan has got to, between two pieces of the same head. Zero it for a new head. */
struct head_scan {
    size_t pos;   /* bytes looked at */
    int started;  /* the request line has begun (empty lines before it are skipped, RFC 9112 2.2) */
    int blank;    /* the current line has no byte yet but its CR */
};

/* Looks at buf[scan->pos..len) (buf holds the whole head so far): returns the head's length (its
 * empty line included) once it is whole, else 0. */
size_t head_scan(struct head_scan *scan, const char *buf, size_t len);

struct head_field {
    const char *name, *value; /* NUL-terminated, the value without the spaces before it */
};

struct head {
    const char *method;
    const char *path;   /* the target up to '?' */
    const char *query;  /* after '?', NULL when there is none */
    int minor;          /* HTTP/1.minor */
    size_t nfields;
    struct head_field fields[HEAD_FIELDS_MAX];
};

enum head_result { HEAD_OK, HEAD_BAD, HEAD_TOO_MANY };

/* Parses the whole head buf[0..len) (len from head_scan), in place. */
enum head_result head_parse(char *buf, size_t len, struct head *h);

/* The value of the first field named `name` (case-insensitive), NULL when absent. */
const char *head_field(const struct head *h, const char *name);

#endif

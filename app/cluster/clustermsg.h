/* clustermsg: what the nodes of a cluster say to each other through Redis, and the Redis URL.
 *
 * Every pub/sub payload is `K SEQ NODE\n[NAME\n][SENDER\n]BODY`:
 *   K     U a message for user NAME (on the user's channel, PREFIX.user.NAME), u the same with its
 *         position in the user's stream (clusterhist.h: Redis assigned it, and published it to every
 *         node holding the user, the sender's too), r and b the same for R and B, R a
 *         message for room NAME and B a broadcast (both on PREFIX.all),
 *         J / L user NAME got its first / lost its last connection on NODE, E / X room NAME got its
 *         first / lost its last member on NODE, M / N user BODY got its first / lost its last connection
 *         in room NAME on NODE (for the cluster-wide room listing), S NODE registered its users and rooms
 *         again (the seven on PREFIX.presence),
 *         D every connection of user NAME is to close with the code and reason in BODY (on PREFIX.all:
 *         the HTTP API's disconnect, carried out by every node on its own connections),
 *         G / Q every connection of user NAME is to join / leave room BODY (on PREFIX.all: the HTTP
 *         API's subscribe and unsubscribe);
 *   SEQ   NODE's presence sequence number (J, L, E, X, M, N, S), the message's offset in its stream
 *         (u, r, b, from 1), 0 for the others, decimal;
 *   NODE  the sender's node id, a name (names.h);
 *   SENDER for r and b only: the id of the connection that sent it (which its node leaves out, as it
 *         does its own `publish` and `broadcast`), empty when the HTTP API did;
 *   BODY  for U, R and B the message frame's text (UTF-8), sent once per node whatever the recipients;
 *         for u, r and b the stream's epoch (HIST_EPOCH_LEN letters and digits), a newline and that text;
 *         for M and N the user's name; for G and Q the room's name; for D "CODE REASON"
 *         (cluster_close_parse); empty for the others.
 * These parsers read what Redis hands over, which any Redis client could have published, so they check
 * everything and are fuzzed (fuzz/fuzz_cluster.c). Pure functions, no state. */
#ifndef SB_CLUSTERMSG_H
#define SB_CLUSTERMSG_H

#include <stddef.h>
#include <stdint.h>

#include "history.h"
#include "names.h"

#define CLUSTER_HEAD_MAX (6 + 20 + 2 * SB_NAME_MAX) /* "K SEQ NODE\nNAME\n" at its longest */
#define CLUSTER_PREFIX_MAX 64
#define CLUSTER_CHANNEL_MAX (CLUSTER_PREFIX_MAX + 16 + SB_NAME_MAX)
#define CLUSTER_KINDS "URBurbJLEXSMNDGQ"
#define CLUSTER_TARGETED_KINDS "URurJLEXMNDGQ" /* the kinds whose head names a target (user or room) */
#define CLUSTER_POSITIONED_KINDS "urb" /* the kinds whose body starts with the stream's epoch */
#define CLUSTER_EXCEPT_KINDS "rb" /* the kinds whose head names the sending connection */
#define CLUSTER_REASON_MAX 123 /* bytes of a D's reason: a close frame's payload is 125 */

struct cluster_msg {
    char kind;                        /* one of CLUSTER_KINDS */
    uint64_t seq;
    char node[SB_NAME_MAX + 1];
    char target[SB_NAME_MAX + 1];     /* U, R, J, L, E, X, M, N, D, G, Q: the user's or room's name; else "" */
    char except[SB_NAME_MAX + 1];     /* r, b: the sending connection's id, which its node leaves out
                                       * ("" for none: the HTTP API); else "" */
    char epoch[HIST_EPOCH_LEN + 1];   /* u, r, b: the stream's epoch (seq is the offset); else "" */
    const char *body;                 /* into the parsed payload: for u, r, b, the text after the epoch */
    size_t body_len;
};

/* 0 and *m filled when p[0..len) is a well-formed payload, else -1. */
int cluster_msg_parse(const char *p, size_t len, struct cluster_msg *m);
/* Writes "K SEQ NODE\n" and, when target is not NULL, "TARGET\n" into out (CLUSTER_HEAD_MAX bytes at
 * least); returns its length. */
size_t cluster_msg_head(char *out, char kind, uint64_t seq, const char *node, const char *target);

/* A D's body: "CODE REASON", CODE 1000, 1008 or 4000-4999 in one spelling, REASON at most
 * CLUSTER_REASON_MAX bytes of UTF-8 without NUL (may be empty). 0 with *code and reason (a
 * CLUSTER_REASON_MAX + 1 buffer) filled, or -1. */
int cluster_close_parse(const char *body, size_t len, uint16_t *code, char *reason);
/* The body for cluster_close_parse into out (CLUSTER_REASON_MAX + 8 bytes); returns its length. */
size_t cluster_close_body(char *out, uint16_t code, const char *reason);

/* The one form of a Redis URL, in --help, errors and docs (test_cli checks the docs). rediss:// (TLS)
 * is refused with a message until it is supported. */
#define REDIS_URL_FORM "redis://[[user]:password@]host[:port][/db]"
struct redis_url {
    char host[256];
    int port;
    char user[128], password[256];
    int db;
};
/* 0 and *u filled, or -1 with a reason in err. */
int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t cap);

#endif

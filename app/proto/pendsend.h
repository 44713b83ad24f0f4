/* pendsend: a send's answers, collected, for a send whose targets the cluster may have to be asked about.
 *
 * A send to a user this node does not list is asked of the cluster (hub_ask_user): Redis's reply says
 * how many nodes took it, and comes later, on the engine's thread. The event loop that carries the
 * sender serves thousands of other connections, so it never waits for it: the send's one ack (or its
 * `not_found` error) gets a slot in the sender's outbox (hub_reserve_reply), in the place where it
 * would have been queued, and whoever brings the last answer (the engine thread, or at the latest when
 * UROUTE_ASK_WAIT_MS passed) fills the slot. What the connection is sent after the slot waits behind it,
 * so its replies keep the order of its requests (docs/PROTOCOL.md). The HTTP API (a CivetWeb worker,
 * which may block) collects the same way and waits (pendsend_wait).
 *
 * The sends waiting are a queue: at most PENDSEND_PER_CONN per connection and PENDSEND_MAX in all
 * (each holds its sender's later replies, and a few hundred bytes). Past either bound a target this
 * node does not list counts as not found, at once, counted in switchboard_cluster_sends_refused_total,
 * and the message is handed over all the same, nobody waiting for its answer: the user's stream keeps
 * it for recovery (a reconnecting user would otherwise be told recovered: true over a hole).
 * switchboard_cluster_sends_waiting is the number of sends waiting.
 *
 * Threads and ownership: the sender's thread makes a pendsend, sends through it and ends it (reply or
 * wait); from pendsend_reply on, it belongs to the answers: the thread that brings the last one fills
 * the slot and frees it. Another thread names the sender by its id (c->id, hub_fill_reply), never by
 * its pointer: a connection gone by then only lets go of the slot. */
#ifndef SB_PENDSEND_H
#define SB_PENDSEND_H

#include <stddef.h>

#include "envelope.h"
#include "hub.h"

#define PENDSEND_PER_CONN 32 /* a connection's sends waiting for the cluster */
#define PENDSEND_MAX 8192    /* all connections' */

struct cJSON;
struct pendsend;

/* What a send's targets added up to: `delivered` (hub.h), and the targets found nowhere, in the
 * order they were sent to. The names live as long as the pendsend. */
struct pendsend_tally {
    long delivered;
    const char *missing[ENVELOPE_MAX_TARGETS];
    size_t nmissing;
};

/* The reply to a send, from its tally and its id (NULL: none): a frame, or NULL for no reply. Any thread. */
typedef struct frame *(*pendsend_reply_fn)(const struct pendsend_tally *t, const struct cJSON *id);

/* A send from connection c (NULL: the server API) to at most n targets (n <= ENVELOPE_MAX_TARGETS);
 * NULL when out of memory. */
struct pendsend *pendsend_new(struct hub *h, struct conn *c, size_t n);
/* f to every connection of `user`; a user this node does not list is asked of the cluster. At most
 * n calls. */
void pendsend_to(struct pendsend *ps, const char *user, struct frame *f);
/* c's send is done: reply(t, id) is queued to c now, or if the cluster's answer is awaited, in a
 * slot reserved now, when it comes. Takes ps. */
void pendsend_reply(struct pendsend *ps, pendsend_reply_fn reply, const struct cJSON *id);
/* The server API's send is done: waits for every answer (the engine bounds each), and fills *t. The
 * caller frees ps after using *t. */
void pendsend_wait(struct pendsend *ps, struct pendsend_tally *t);
void pendsend_free(struct pendsend *ps);
/* Sends waiting for the cluster's answer now (the gauge). */
size_t pendsend_waiting(void);

#endif

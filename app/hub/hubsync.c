/* hubsync: gates between Redis's history and live delivery, per connection and stream (see hubsync.h). */
#include "hubsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "envelope.h"
#include "hubremote.h"
#include "metrics.h"

/* One stream of one connection. */
struct gate {
    char kind; /* 'u', 'b', 'r' */
    char name[SB_NAME_MAX + 1];
    struct hist_pos at;      /* the last position read or let through; epoch "" while unknown */
    struct hist_pos skipped; /* the highest left out while shut (offset 0: none) */
    int has_since;           /* what the next read is to recover, until it is asked */
    struct hist_pos since;
    struct frame *slot;      /* `joined`'s place until the first read answers (rooms); owned */
    uint32_t seq;            /* of the read out; an answer to an older one is stale */
    unsigned rereads;
    unsigned shut : 1;       /* a read is out: live messages are left out */
    unsigned left : 1;       /* the room was left meanwhile: dropped once the read answers */
};

/* Owned by its connection (struct conn.sync), allocated by its first welcome. Gates 0 and 1 are the
 * user's and the broadcast stream's, then the rooms'. */
struct hub_sync {
    struct frame *welcome; /* the welcome's place until its read answers; owned */
    int ask_on_release;    /* the welcome's read waits for the user's route (hub.c's hold) */
    uint32_t seq;
    struct gate *g;
    size_t n, cap;
};

int hubs_on(const struct hub *h, const struct conn *c) {
    return h->engine && h->engine->read_streams && c->positions;
}

static struct gate *find(struct hub_sync *s, char kind, const char *name) {
    for (size_t i = 0; s && i < s->n; i++)
        if (s->g[i].kind == kind && strcmp(s->g[i].name, name) == 0) return &s->g[i];
    return NULL;
}

/* The gate of (kind, name), added shut if new; NULL when out of memory. */
static struct gate *gate_for(struct hub_sync *s, char kind, const char *name) {
    struct gate *g = find(s, kind, name);
    if (g) return g;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4;
        struct gate *more = realloc(s->g, cap * sizeof *more);
        if (!more) return NULL;
        s->g = more;
        s->cap = cap;
    }
    g = &s->g[s->n++];
    *g = (struct gate){.kind = kind};
    snprintf(g->name, sizeof g->name, "%s", name);
    return g;
}

/* Drops a room's gate (never 0 or 1: rooms come after them). */
static void gate_drop(struct hub *h, struct conn *c, struct gate *g) {
    if (g->slot) outbox_fill(h->ob, &c->out, g->slot, NULL);
    *g = c->sync->g[--c->sync->n];
}

/* Shuts g for a new read recovering `since` (NULL: none). */
static void gate_shut(struct hub_sync *s, struct gate *g, const struct hist_pos *since) {
    g->shut = 1;
    g->left = 0;
    g->rereads = 0;
    g->skipped = (struct hist_pos){0};
    g->has_since = since != NULL;
    if (since) g->since = *since;
    g->seq = ++s->seq;
}

static void answer_locked(struct hub *h, struct conn *c, const struct hub_stream_want *w, struct hub_stream_got *got,
                          size_t n);

/* Asks the engine to read gates gs[0..n); when it cannot, answers them as failed at once. */
static void ask(struct hub *h, struct conn *c, struct gate *const *gs, size_t n) {
    struct hub_stream_want w[HUB_WANTS_MAX];
    for (size_t i = 0; i < n; i++) {
        w[i] = (struct hub_stream_want){.kind = gs[i]->kind, .has_since = gs[i]->has_since,
                                        .since = gs[i]->since, .seq = gs[i]->seq};
        snprintf(w[i].name, sizeof w[i].name, "%s", gs[i]->name);
        gs[i]->has_since = 0;
    }
    if (h->engine->read_streams(h->engine->ctx, c->id, w, n) == 0) return;
    struct hub_stream_got got[HUB_WANTS_MAX] = {{.r = HIST_FAILED}, {.r = HIST_FAILED}};
    answer_locked(h, c, w, got, n);
}

/* With the user's and the broadcast stream's gates, 0 and 1; NULL when out of memory. */
static struct hub_sync *sync_new(void) {
    struct hub_sync *s = calloc(1, sizeof *s);
    if (s && !(s->g = calloc(2, sizeof *s->g))) {
        free(s);
        return NULL;
    }
    if (!s) return NULL;
    s->cap = 2;
    s->n = 2;
    s->g[0].kind = 'u';
    s->g[1].kind = 'b';
    return s;
}

void hubs_welcome(struct hub *h, struct conn *c, int routed) {
    struct hub_sync *s = c->sync ? c->sync : (c->sync = sync_new());
    if (!s) { /* out of memory: a welcome without positions, as with Redis down */
        struct frame *f = hubp_welcome_frame(h, c, "");
        if (f) hubp_deliver(h, c, f);
        frame_unref(f);
        return;
    }
    struct gate *u = &s->g[0], *b = &s->g[1];
    snprintf(u->name, sizeof u->name, "%s", c->user); /* anew after a rename (hello) */
    if (s->welcome) outbox_fill(h->ob, &c->out, s->welcome, NULL); /* a welcome before it never went */
    gate_shut(s, u, c->since.has_user ? &c->since.user : NULL);
    gate_shut(s, b, c->since.has_broadcast ? &c->since.broadcast : NULL);
    c->since = (struct hub_since){0};
    if (!(s->welcome = outbox_reserve(h->ob, &c->out))) return;
    s->ask_on_release = !routed;
    if (routed) ask(h, c, (struct gate *[]){u, b}, 2);
}

void hubs_released(struct hub *h, struct conn *c) {
    struct hub_sync *s = c->sync;
    if (!s || !s->ask_on_release) return;
    s->ask_on_release = 0;
    ask(h, c, (struct gate *[]){&s->g[0], &s->g[1]}, 2);
}

void hubs_joined(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since) {
    struct gate *g = c->sync ? gate_for(c->sync, 'r', room) : NULL;
    if (!g) return;
    if (g->slot) outbox_fill(h->ob, &c->out, g->slot, NULL); /* joined again before the first answer */
    gate_shut(c->sync, g, since);
    if ((g->slot = outbox_reserve(h->ob, &c->out))) ask(h, c, &g, 1);
}

void hubs_left(struct conn *c, const char *room) {
    struct gate *g = find(c->sync, 'r', room);
    if (!g) return;
    if (g->shut) g->left = 1;
    else *g = c->sync->g[--c->sync->n];
}

int hubs_pass(struct hub *h, struct conn *c, char kind, const char *name, const struct hist_pos *pos) {
    struct gate *g = find(c->sync, kind, name ? name : "");
    if (!g) return 1;
    if (g->shut) {
        if (pos->offset > g->skipped.offset || strcmp(pos->epoch, g->skipped.epoch) != 0) g->skipped = *pos;
        return 0;
    }
    int same = g->at.epoch[0] && strcmp(g->at.epoch, pos->epoch) == 0;
    if (same && pos->offset <= g->at.offset) return 0;
    if (same && pos->offset > g->at.offset + 1) { /* a hole: read it, and leave this one to the read */
        metrics_add(M_CLUSTER_GAPS_READ, 1);
        struct hist_pos at = g->at;
        gate_shut(c->sync, g, &at);
        g->skipped = *pos;
        ask(h, c, &g, 1);
        return 0;
    }
    g->at = *pos;
    return 1;
}

void hubs_free(struct hub *h, struct conn *c) {
    struct hub_sync *s = c->sync;
    if (!s) return;
    if (s->welcome) outbox_fill(h->ob, &c->out, s->welcome, NULL);
    for (size_t i = 0; i < s->n; i++)
        if (s->g[i].slot) outbox_fill(h->ob, &c->out, s->g[i].slot, NULL);
    free(s->g);
    free(s);
    c->sync = NULL;
}

/* ---- answers ---- */

/* `"epoch":E,"offset":N` and `,"recovered":B` when it was asked. Failed: epoch "" (unknown). */
static void position_text(char *out, size_t cap, const struct hub_stream_want *w, const struct hub_stream_got *g) {
    int n = snprintf(out, cap, "\"epoch\":\"%s\",\"offset\":%llu", g->r == HIST_FAILED ? "" : g->now.epoch,
                     g->r == HIST_FAILED ? 0ULL : (unsigned long long)g->now.offset);
    if (w->has_since && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, ",\"recovered\":%s", g->r == HIST_RECOVERED ? "true" : "false");
    if (w->has_since) metrics_add(g->r == HIST_RECOVERED ? M_HISTORY_RECOVERED : M_HISTORY_NOT_RECOVERED, 1);
}

#define POS_TEXT_MAX (80 + HIST_EPOCH_LEN)

/* The answer's first frame: the welcome (two streams) or `joined` (a room). */
static struct frame *answer_head(struct hub *h, struct conn *c, const struct hub_stream_want *w,
                                 const struct hub_stream_got *g, size_t n) {
    char a[POS_TEXT_MAX], b[POS_TEXT_MAX] = "";
    position_text(a, sizeof a, &w[0], &g[0]);
    if (n == 2) {
        char streams[HUB_STREAMS_TEXT_MAX];
        position_text(b, sizeof b, &w[1], &g[1]);
        snprintf(streams, sizeof streams, ",\"streams\":{\"user\":{%s},\"broadcast\":{%s}}", a, b);
        return hubp_welcome_frame(h, c, streams);
    }
    char text[POS_TEXT_MAX + 64 + SB_NAME_MAX];
    int len = snprintf(text, sizeof text, "{\"type\":\"joined\",\"room\":\"%s\",%s}", w[0].name, a);
    return len > 0 && (size_t)len < sizeof text ? frame_new(WS_OP_TEXT, text, (size_t)len) : NULL;
}

/* Adds the replay's messages, stamped with their positions, to out (which has room); returns the
 * new count. */
static size_t add_replay(struct frame **out, size_t k, struct hist_replay *r) {
    for (size_t i = 0; i < r->n; i++) {
        struct hist_pos pos = {.offset = r->first + i};
        memcpy(pos.epoch, r->epoch, sizeof pos.epoch);
        if ((out[k] = envelope_stamp(r->frames[i], &pos))) k++;
    }
    metrics_add(M_HISTORY_REPLAYED, r->n);
    return k;
}

/* After an answer: g opens at the position read, or reads again if it left out a later message. A
 * read of what the connection missed while live (reread: a hole, or what its gate left out) that Redis
 * no longer holds, or cannot tell, would be a silent hole: the connection is closed instead, and its
 * client, coming back from its position, is told `recovered: false`. */
static void settle(struct hub *h, struct conn *c, struct gate *g, const struct hub_stream_got *got, int reread) {
    if (reread && got->r != HIST_RECOVERED) {
        g->shut = 0;
        outbox_close(h->ob, &c->out, 1013, "messages lost on their way: reconnect to recover");
        return;
    }
    if (got->r == HIST_FAILED) { /* Redis could not tell: live messages go through as they come */
        g->at = (struct hist_pos){0};
        g->shut = 0;
        return;
    }
    g->at = got->now;
    int behind = g->skipped.offset > g->at.offset && strcmp(g->skipped.epoch, g->at.epoch) == 0;
    if (!behind) {
        g->shut = 0;
        return;
    }
    if (g->rereads++ >= HUBS_REREADS_MAX) {
        g->shut = 0;
        outbox_close(h->ob, &c->out, 1013, "stream did not settle: reconnect");
        return;
    }
    g->has_since = 1;
    g->since = g->at;
    g->seq = ++c->sync->seq;
    g->skipped = (struct hist_pos){0};
    ask(h, c, &g, 1);
}

/* The gates an answer is for, or 0 when it is stale (the connection went, or asked again since). */
static int match(struct conn *c, const struct hub_stream_want *w, size_t n, struct gate **gs) {
    for (size_t i = 0; i < n; i++) {
        gs[i] = find(c ? c->sync : NULL, w[i].kind, w[i].name);
        if (!gs[i] || !gs[i]->shut || gs[i]->seq != w[i].seq) return 0;
    }
    return 1;
}

static void answer_locked(struct hub *h, struct conn *c, const struct hub_stream_want *w, struct hub_stream_got *got,
                          size_t n) {
    struct gate *gs[HUB_WANTS_MAX] = {NULL};
    if (n == 0 || !match(c, w, n, gs)) return;
    struct hub_sync *s = c->sync;
    if (got[0].r == HIST_FAILED) metrics_add(M_CLUSTER_READS_FAILED, 1);
    struct frame **slot = n == 2 && s->welcome ? &s->welcome : gs[0]->slot ? &gs[0]->slot : NULL;
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += got[i].replay.n;
    struct frame **out = malloc(total * sizeof *out);
    size_t k = 0;
    if (out && slot && (out[k] = answer_head(h, c, w, got, n))) k++;
    for (size_t i = 0; out && i < n; i++) k = add_replay(out, k, &got[i].replay);
    struct frame *all = slot && k ? frame_concat(out, k) : NULL;
    if (slot) {
        outbox_fill(h->ob, &c->out, *slot, all);
        *slot = NULL;
    }
    for (size_t i = 0; !slot && i < k; i++) outbox_push_message(h->ob, &c->out, out[i]);
    for (size_t i = 0; i < k; i++) frame_unref(out[i]);
    frame_unref(all);
    free(out);
    for (size_t i = n; i-- > 0;) { /* backwards: dropping a left room's gate moves the last one */
        settle(h, c, gs[i], &got[i], slot == NULL);
        if (gs[i]->left && !gs[i]->shut) gate_drop(h, c, gs[i]);
    }
}

void hub_streams_read(struct hub *h, const char *conn_id, const struct hub_stream_want *w, struct hub_stream_got *g,
                      size_t n) {
    pthread_rwlock_wrlock(&h->lock);
    answer_locked(h, dict_get(h->ids, conn_id), w, g, n);
    pthread_rwlock_unlock(&h->lock);
    for (size_t i = 0; i < n; i++) history_replay_free(&g[i].replay);
}

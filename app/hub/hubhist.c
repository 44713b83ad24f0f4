/* hubhist: streams, positions and replays on the hub's side (see hubhist.h). */
#include "hubhist.h"

#include <stdio.h>
#include <string.h>

#include "dict.h"
#include "envelope.h"

/* "K:NAME", or "K" without a name; cut to fit cap. (Written by hand: snprintf was a fifth of what
 * history costs a send.) */
static void stream_key(char *out, size_t cap, char kind, const char *name) {
    size_t len = name ? strnlen(name, cap - 3) : 0;
    out[0] = kind;
    if (name) {
        out[1] = ':';
        memcpy(out + 2, name, len);
        out[2 + len] = '\0';
    } else {
        out[1] = '\0';
    }
}

void hubh_begin(struct hub *h, struct hubh_msg *m, char kind, const char *name, struct frame *f) {
    *m = (struct hubh_msg){.f = f};
    if (!h->hist) return;
    char key[HIST_KEY_MAX + 1];
    stream_key(key, sizeof key, kind, name);
    m->s = history_append(h->hist, key, f, __atomic_load_n(&h->hist_clock_ms, __ATOMIC_RELAXED), &m->pos);
    m->positioned = m->s != NULL;
}

void hubh_begin_at(struct hubh_msg *m, struct frame *f, const struct hist_pos *pos) {
    *m = (struct hubh_msg){.f = f, .positioned = 1, .pos = *pos};
}

int hubh_deliver(struct hub *h, struct conn *c, struct hubh_msg *m) {
    if (m->echo && c->positions) return 1;
    if (!m->positioned || !c->positions) return hubp_deliver(h, c, m->f);
    if (!m->stamped && !(m->stamped = envelope_stamp(m->f, &m->pos))) return 0;
    return hubp_deliver(h, c, m->stamped);
}

void hubh_end(struct hubh_msg *m) {
    if (m->s) history_unlock(m->s);
    frame_unref(m->stamped);
}

/* Where c starts in stream `key`: its position, written as {"epoch":..,"offset":..[,"recovered":..]}
 * into out, and what since recovers into *replay. */
static void resume(struct hub *h, const char *key, const struct hist_pos *since, char *out, size_t cap,
                   struct hist_replay *replay) {
    struct hist_pos now = {0};
    enum hist_resume r = history_resume(h->hist, key, since, hub_now_ms(), &now, replay);
    int n = snprintf(out, cap, "\"epoch\":\"%s\",\"offset\":%llu", now.epoch, (unsigned long long)now.offset);
    if (!since || n < 0 || (size_t)n >= cap) return;
    snprintf(out + n, cap - (size_t)n, ",\"recovered\":%s", r == HIST_RECOVERED ? "true" : "false");
    metrics_add(r == HIST_RECOVERED ? M_HISTORY_RECOVERED : M_HISTORY_NOT_RECOVERED, 1);
}

#define POS_TEXT_MAX (64 + HIST_EPOCH_LEN)

void hubh_welcome_streams(struct hub *h, struct conn *c, char *out, size_t cap, struct hubh_resume *r) {
    *r = (struct hubh_resume){0};
    out[0] = '\0';
    if (!h->hist || !c->positions) return;
    char key[HIST_KEY_MAX + 1], user[POS_TEXT_MAX], all[POS_TEXT_MAX];
    stream_key(key, sizeof key, 'u', c->user);
    resume(h, key, c->since.has_user ? &c->since.user : NULL, user, sizeof user, &r->user);
    resume(h, "b", c->since.has_broadcast ? &c->since.broadcast : NULL, all, sizeof all, &r->broadcast);
    c->since = (struct hub_since){0};
    snprintf(out, cap, ",\"streams\":{\"user\":{%s},\"broadcast\":{%s}}", user, all);
}

/* The messages of a replay, each stamped with its position, then the replay released. */
static void replay(struct hub *h, struct conn *c, struct hist_replay *r) {
    for (size_t i = 0; i < r->n; i++) {
        struct hist_pos pos = {.offset = r->first + i};
        memcpy(pos.epoch, r->epoch, sizeof pos.epoch);
        struct frame *f = envelope_stamp(r->frames[i], &pos);
        if (f) hubp_deliver(h, c, f);
        frame_unref(f);
    }
    metrics_add(M_HISTORY_REPLAYED, r->n);
    history_replay_free(r);
}

void hubh_welcome_replay(struct hub *h, struct conn *c, struct hubh_resume *r) {
    if (!h->hist) return;
    replay(h, c, &r->user);
    replay(h, c, &r->broadcast);
}

void hubh_joined(struct hub *h, struct conn *c, const char *room, const struct hist_pos *since) {
    if (!h->hist || !c->positions) return;
    char key[HIST_KEY_MAX + 1], pos[POS_TEXT_MAX], text[POS_TEXT_MAX + 64 + SB_NAME_MAX];
    struct hist_replay r;
    stream_key(key, sizeof key, 'r', room);
    resume(h, key, since, pos, sizeof pos, &r);
    int n = snprintf(text, sizeof text, "{\"type\":\"joined\",\"room\":\"%s\",%s}", room, pos);
    struct frame *f = n > 0 && (size_t)n < sizeof text ? frame_new(WS_OP_TEXT, text, (size_t)n) : NULL;
    if (f) hubp_deliver(h, c, f);
    frame_unref(f);
    replay(h, c, &r);
}

/* Whether stream `key` has a subscriber on this node. */
static int in_use(void *arg, const char *key) {
    struct hub *h = arg;
    if (key[0] == 'b') return h->head != NULL;
    if (key[0] == 'r') return dict_get(h->rooms, key + 2) != NULL;
    const struct user *u = dict_get(h->users, key + 2);
    return u && u->conns.n;
}

void hubh_tick(struct hub *h, int64_t now_ms) {
    if (h->hist) history_tick(h->hist, now_ms, in_use, h);
}

/* history: each stream's recent messages, epochs and offsets (see history.h). */
#include "history.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dict.h"

struct entry {
    struct frame *f;
    int64_t at_ms;
};

struct hist_stream {
    pthread_mutex_t mu;         /* guards ring, head, count, top, bytes */
    struct entry *ring;         /* `cap` slots, grown by doubling up to `size` as messages come */
    size_t cap, head, count;    /* slots, oldest kept message, how many */
    uint64_t top;               /* offset of the last message */
    size_t bytes;               /* of its kept frames */
    char epoch[HIST_EPOCH_LEN + 1];
    int64_t last_ms;            /* table: last message or last time seen in use */
    struct hist_stream *older, *newer; /* table: the age list, by last_ms */
    char key[HIST_KEY_MAX + 1];
};

struct history {
    struct history_options opt;
    pthread_mutex_t table;      /* guards streams, the age list (oldest, newest) */
    struct dict *streams;       /* key -> struct hist_stream */
    struct hist_stream *oldest, *newest;
    size_t bytes, messages;     /* atomic: totals of every stream's */
};

#define RING_FIRST 4 /* slots of a new stream's ring: most streams hold few messages */

/* What a stream costs besides its messages' frames, counted against --history-memory like them. */
static size_t stream_cost(size_t cap) { return sizeof(struct hist_stream) + cap * sizeof(struct entry); }

struct history *history_new(const struct history_options *o) {
    if (o->size <= 0) return NULL;
    struct history *hs = calloc(1, sizeof *hs);
    if (!hs || !(hs->streams = dict_new())) {
        free(hs);
        return NULL;
    }
    hs->opt = *o;
    pthread_mutex_init(&hs->table, NULL);
    return hs;
}

static void drop_oldest(struct history *hs, struct hist_stream *s) {
    struct entry *e = &s->ring[s->head];
    size_t len = e->f->len;
    frame_unref(e->f);
    e->f = NULL;
    s->head = (s->head + 1) % s->cap;
    s->count--;
    s->bytes -= len;
    __atomic_sub_fetch(&hs->bytes, len, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&hs->messages, 1, __ATOMIC_RELAXED);
}

static void drop_expired(struct history *hs, struct hist_stream *s, int64_t now_ms) {
    while (s->count && now_ms - s->ring[s->head].at_ms >= hs->opt.ttl_ms) drop_oldest(hs, s);
}

static void drop_all(struct history *hs, struct hist_stream *s) {
    while (s->count) drop_oldest(hs, s);
}

static void age_unlink(struct history *hs, struct hist_stream *s) {
    if (s->older) s->older->newer = s->newer;
    else hs->oldest = s->newer;
    if (s->newer) s->newer->older = s->older;
    else hs->newest = s->older;
    s->older = s->newer = NULL;
}

static void age_append(struct history *hs, struct hist_stream *s) {
    s->older = hs->newest;
    s->newer = NULL;
    if (hs->newest) hs->newest->newer = s;
    else hs->oldest = s;
    hs->newest = s;
}

/* A new epoch: 8 random letters and digits, so a stream created again under a key is told apart. */
static void new_epoch(char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[HIST_EPOCH_LEN];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) { /* never on Linux for 8 bytes; still distinct */
        static uint64_t fallback;
        uint64_t n = __atomic_add_fetch(&fallback, 0x9E3779B97F4A7C15ull, __ATOMIC_RELAXED);
        memcpy(r, &n, sizeof r);
    }
    for (size_t i = 0; i < HIST_EPOCH_LEN; i++) out[i] = alphabet[r[i] % (sizeof alphabet - 1)];
    out[HIST_EPOCH_LEN] = '\0';
}

static void stream_free(struct history *hs, struct hist_stream *s) {
    drop_all(hs, s);
    __atomic_sub_fetch(&hs->bytes, stream_cost(s->cap), __ATOMIC_RELAXED);
    pthread_mutex_destroy(&s->mu);
    free(s->ring);
    free(s);
}

/* The stream of `key`, created if absent, made the newest. Called with `table` held. */
static struct hist_stream *stream_get(struct history *hs, const char *key, int64_t now_ms) {
    struct hist_stream *s = dict_get(hs->streams, key);
    if (s) {
        age_unlink(hs, s);
    } else {
        if (strlen(key) > HIST_KEY_MAX || !(s = calloc(1, sizeof *s))) return NULL;
        s->cap = (size_t)hs->opt.size < RING_FIRST ? (size_t)hs->opt.size : RING_FIRST;
        if (!(s->ring = calloc(s->cap, sizeof *s->ring)) || dict_add(hs->streams, key, s) < 0) {
            free(s->ring);
            free(s);
            return NULL;
        }
        pthread_mutex_init(&s->mu, NULL);
        strcpy(s->key, key);
        new_epoch(s->epoch);
        __atomic_add_fetch(&hs->bytes, stream_cost(s->cap), __ATOMIC_RELAXED);
    }
    s->last_ms = now_ms;
    age_append(hs, s);
    return s;
}

/* Over --history-memory: the oldest streams lose their messages first, `self` (locked by the caller)
 * last, down to its newest message. Streams busy on another thread are passed over (try-lock: the
 * order is stream, then table). */
static void trim_memory(struct history *hs, struct hist_stream *self) {
    pthread_mutex_lock(&hs->table);
    for (struct hist_stream *s = hs->oldest; s && __atomic_load_n(&hs->bytes, __ATOMIC_RELAXED) > hs->opt.memory; s = s->newer) {
        if (s == self || !s->count || pthread_mutex_trylock(&s->mu) != 0) continue;
        drop_all(hs, s);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&hs->table);
    while (self->count > 1 && __atomic_load_n(&hs->bytes, __ATOMIC_RELAXED) > hs->opt.memory) drop_oldest(hs, self);
}

/* Room for one more message: the ring doubles (up to `size`), or its oldest message goes. */
static void make_room(struct history *hs, struct hist_stream *s) {
    if (s->count < s->cap) return;
    size_t cap = s->cap * 2 > (size_t)hs->opt.size ? (size_t)hs->opt.size : s->cap * 2;
    struct entry *ring = cap > s->cap ? malloc(cap * sizeof *ring) : NULL;
    if (!ring) {
        drop_oldest(hs, s);
        return;
    }
    for (size_t i = 0; i < s->count; i++) ring[i] = s->ring[(s->head + i) % s->cap];
    free(s->ring);
    __atomic_add_fetch(&hs->bytes, stream_cost(cap) - stream_cost(s->cap), __ATOMIC_RELAXED);
    s->ring = ring;
    s->cap = cap;
    s->head = 0;
}

/* The stream of `key` (created if absent), locked, its expired messages dropped; NULL when out of
 * memory. The table is let go before the stream is locked (the order is stream, then table). */
static struct hist_stream *stream_lock(struct history *hs, const char *key, int64_t now_ms) {
    pthread_mutex_lock(&hs->table);
    struct hist_stream *s = stream_get(hs, key, now_ms);
    pthread_mutex_unlock(&hs->table);
    if (!s) return NULL;
    pthread_mutex_lock(&s->mu);
    drop_expired(hs, s, now_ms);
    return s;
}

struct hist_stream *history_append(struct history *hs, const char *key, struct frame *f, int64_t now_ms,
                                   struct hist_pos *pos) {
    struct hist_stream *s = stream_lock(hs, key, now_ms);
    if (!s) return NULL;
    make_room(hs, s);
    s->ring[(s->head + s->count) % s->cap] = (struct entry){frame_ref(f), now_ms};
    s->count++;
    s->top++;
    s->bytes += f->len;
    __atomic_add_fetch(&hs->bytes, f->len, __ATOMIC_RELAXED);
    __atomic_add_fetch(&hs->messages, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&hs->bytes, __ATOMIC_RELAXED) > hs->opt.memory) trim_memory(hs, s);
    memcpy(pos->epoch, s->epoch, sizeof pos->epoch);
    pos->offset = s->top;
    return s;
}

void history_unlock(struct hist_stream *s) { pthread_mutex_unlock(&s->mu); }

/* 1 if every message after `since` is held in s. */
static int holds_after(const struct hist_stream *s, const struct hist_pos *since) {
    if (strcmp(since->epoch, s->epoch) != 0 || since->offset > s->top) return 0;
    return s->top - since->offset <= s->count;
}

enum hist_resume history_resume(struct history *hs, const char *key, const struct hist_pos *since, int64_t now_ms,
                                struct hist_pos *now, struct hist_replay *out) {
    *out = (struct hist_replay){0};
    struct hist_stream *s = stream_lock(hs, key, now_ms);
    if (!s) return HIST_FAILED;
    memcpy(now->epoch, s->epoch, sizeof now->epoch);
    now->offset = s->top;
    enum hist_resume r = !since ? HIST_FRESH : holds_after(s, since) ? HIST_RECOVERED : HIST_NOT_RECOVERED;
    size_t n = r == HIST_RECOVERED ? (size_t)(s->top - since->offset) : 0;
    if (n && !(out->frames = malloc(n * sizeof *out->frames))) r = HIST_FAILED;
    for (size_t i = 0; r == HIST_RECOVERED && i < n; i++)
        out->frames[i] = frame_ref(s->ring[(s->head + s->count - n + i) % s->cap].f);
    if (r == HIST_RECOVERED) {
        out->n = n;
        out->first = since->offset + 1;
        memcpy(out->epoch, s->epoch, sizeof out->epoch);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

void history_replay_free(struct hist_replay *r) {
    for (size_t i = 0; i < r->n; i++) frame_unref(r->frames[i]);
    free(r->frames);
    *r = (struct hist_replay){0};
}

void history_tick(struct history *hs, int64_t now_ms, int (*in_use)(void *arg, const char *key), void *arg) {
    pthread_mutex_lock(&hs->table);
    struct hist_stream *s;
    while ((s = hs->oldest) && (now_ms - s->last_ms >= hs->opt.ttl_ms || __atomic_load_n(&hs->bytes, __ATOMIC_RELAXED) > hs->opt.memory)) {
        age_unlink(hs, s);
        /* the hub's exclusive lock keeps appends out, so the stream's own mutex is not needed here */
        drop_expired(hs, s, now_ms);
        if (in_use(arg, s->key)) {
            if (__atomic_load_n(&hs->bytes, __ATOMIC_RELAXED) > hs->opt.memory) drop_all(hs, s);
            s->last_ms = now_ms;
            age_append(hs, s);
            if (hs->oldest == s) break; /* every stream is in use: nothing more to free */
            continue;
        }
        dict_remove(hs->streams, s->key);
        stream_free(hs, s);
    }
    pthread_mutex_unlock(&hs->table);
}

void history_stats(struct history *hs, struct history_stats *st) {
    pthread_mutex_lock(&hs->table);
    st->streams = dict_size(hs->streams);
    pthread_mutex_unlock(&hs->table);
    st->bytes = __atomic_load_n(&hs->bytes, __ATOMIC_RELAXED);
    st->messages = __atomic_load_n(&hs->messages, __ATOMIC_RELAXED);
}

void history_free(struct history *hs) {
    if (!hs) return;
    while (hs->oldest) {
        struct hist_stream *s = hs->oldest;
        age_unlink(hs, s);
        stream_free(hs, s);
    }
    dict_free(hs->streams);
    pthread_mutex_destroy(&hs->table);
    free(hs);
}

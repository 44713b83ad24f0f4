/* clusterhist: stream positions assigned in Redis by a Lua script (see clusterhist.h). */
#include "clusterhist.h"

#include <ctype.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clustercmd.h"
#include "clusterpriv.h"
#include "hubremote.h"
#include "metrics.h"
#include "since.h"
#include "utf8.h"

/* KEYS[1] the stream's hash, KEYS[2] its history (a Redis stream whose entry ids are the offsets);
 * ARGV: channel, kind, "NODE\nTARGET\n", text, TTL in seconds, the epoch for a new stream, the
 * history's length. Returns PUBLISH's reply: how many nodes the message reached. Lua writes numbers
 * below 10^14 as integers. */
static const char SCRIPT[] =
    "local epoch = redis.call('hget', KEYS[1], 'e')\n"
    "if not epoch then\n"
    "  epoch = ARGV[6]\n"
    "  redis.call('hset', KEYS[1], 'e', epoch)\n"
    "  redis.call('del', KEYS[2])\n"
    "end\n"
    "local offset = redis.call('hincrby', KEYS[1], 'o', 1)\n"
    "local t = redis.call('time')\n"
    "redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[7], offset .. '-0', 't', t[1] * 1000 + math.floor(t[2] / 1000), 'm', ARGV[4])\n"
    "redis.call('expire', KEYS[1], ARGV[5])\n"
    "redis.call('expire', KEYS[2], ARGV[5])\n"
    "return redis.call('publish', ARGV[1], ARGV[2] .. ' ' .. offset .. ' ' .. ARGV[3] .. epoch .. '\\n' .. ARGV[4])\n";

/* KEYS: the hash and the history of each stream read; ARGV: TTL in seconds, then per stream the epoch
 * for a new stream, the epoch of `since` ("" for none) and its offset. Returns per stream {epoch, top
 * offset, status}: 0 no since, 1 recovered (then the texts after since, in order), 2 not recovered
 * (another epoch, a position not reached, a message trimmed or older than the TTL). */
static const char READ_SCRIPT[] =
    "local t = redis.call('time')\n"
    "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
    "local ttl = tonumber(ARGV[1])\n"
    "local out = {}\n"
    "for i = 1, #KEYS / 2 do\n"
    "  local meta, hist, a = KEYS[2 * i - 1], KEYS[2 * i], 3 * i - 1\n"
    "  local epoch = redis.call('hget', meta, 'e')\n"
    "  local top = 0\n"
    "  if not epoch then\n"
    "    epoch = ARGV[a]\n"
    "    redis.call('hset', meta, 'e', epoch, 'o', 0)\n"
    "    redis.call('del', hist)\n"
    "  else\n"
    "    top = tonumber(redis.call('hget', meta, 'o') or '0')\n"
    "  end\n"
    "  redis.call('expire', meta, ttl)\n"
    "  local r = {epoch, top, 0}\n"
    "  if ARGV[a + 1] ~= '' then\n"
    "    local since = tonumber(ARGV[a + 2])\n"
    "    r[3] = 2\n"
    "    if ARGV[a + 1] == epoch and since <= top then\n"
    "      local want = top - since\n"
    "      local got = {}\n"
    "      if want > 0 then got = redis.call('xrange', hist, (since + 1) .. '-0', '+', 'COUNT', want) end\n"
    "      if #got == want and (want == 0 or (got[1][1] == (since + 1) .. '-0' and tonumber(got[1][2][2]) >= now - ttl * 1000)) then\n"
    "        r[3] = 1\n"
    "        for _, e in ipairs(got) do r[#r + 1] = e[2][4] end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  out[i] = r\n"
    "end\n"
    "return out\n";

static int sha1_hex(const char *text, size_t len, char *out) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(text, len, md, &n, EVP_sha1(), NULL) || n != 20) return -1;
    for (unsigned i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int chist_init(struct cluster *c) {
    if (sha1_hex(SCRIPT, sizeof SCRIPT - 1, c->script_sha) < 0 ||
        sha1_hex(READ_SCRIPT, sizeof READ_SCRIPT - 1, c->read_sha) < 0)
        return -1;
    if (getrandom(&c->rng, sizeof c->rng, 0) != sizeof c->rng) return -1;
    c->rng |= 1; /* xorshift's state must not be 0 */
    return 0;
}

void chist_load(struct cluster *c) {
    const char *argv[] = {"SCRIPT", "LOAD", SCRIPT}, *read[] = {"SCRIPT", "LOAD", READ_SCRIPT};
    size_t lens[] = {6, 4, sizeof SCRIPT - 1}, read_lens[] = {6, 4, sizeof READ_SCRIPT - 1};
    cluster_command(c, NULL, NULL, 3, argv, lens);
    cluster_command(c, NULL, NULL, 3, read, read_lens);
}

struct item *chist_item(const struct cluster *c, char kind, const char *target, const char *except, const char *key,
                        const char *channel, const char *text, size_t text_len) {
    char h[3 * SB_NAME_MAX + 4];
    const char *k = key;
    int kl = (int)strlen(key);
    int hl = snprintf(h, sizeof h, "%s\n%s%s%s%s", c->node, target ? target : "", target ? "\n" : "",
                      except ? except : "", except ? "\n" : "");
    size_t cl = strlen(channel);
    if (kl > HIST_KEY_MAX || hl < 0 || (size_t)hl >= sizeof h) return NULL;
    struct item *it = malloc(sizeof *it + cl + (size_t)kl + (size_t)hl + text_len);
    if (!it) return NULL;
    *it = (struct item){.kind = IT_PUBLISH, .a_len = cl, .b_len = (size_t)kl + (size_t)hl + text_len,
                        .stream = kind, .k_len = (size_t)kl, .h_len = (size_t)hl};
    memcpy(it->buf, channel, cl);
    memcpy(it->buf + cl, k, (size_t)kl);
    memcpy(it->buf + cl + kl, h, (size_t)hl);
    if (text_len) memcpy(it->buf + cl + kl + hl, text, text_len);
    return it;
}

/* A new stream's epoch: HIST_EPOCH_LEN letters and digits (xorshift64: unpredictable enough for a
 * stream's generation, seeded from getrandom). */
static void draw_epoch(struct cluster *c, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    for (int i = 0; i < HIST_EPOCH_LEN; i++, x >>= 6) out[i] = alphabet[(x & 63) % (sizeof alphabet - 1)];
    out[HIST_EPOCH_LEN] = '\0';
}

static void on_script_reply(redisAsyncContext *ac, void *r, void *privdata);

/* EVALSHA (sha = 1) or EVAL of the script for it; 0, or -1 when it could not be sent. */
/* A stream's hash (PREFIX.meta.KEY) and history (PREFIX.hist.KEY) names; their lengths. */
struct stream_keys {
    char meta[CLUSTER_CHANNEL_MAX], hist[CLUSTER_CHANNEL_MAX];
    size_t meta_len, hist_len;
};

static void stream_keys(const struct cluster *c, const char *key, size_t key_len, struct stream_keys *k) {
    int m = snprintf(k->meta, sizeof k->meta, "%s.meta.%.*s", c->prefix, (int)key_len, key);
    int h = snprintf(k->hist, sizeof k->hist, "%s.hist.%.*s", c->prefix, (int)key_len, key);
    k->meta_len = m > 0 && (size_t)m < sizeof k->meta ? (size_t)m : strlen(k->meta);
    k->hist_len = h > 0 && (size_t)h < sizeof k->hist ? (size_t)h : strlen(k->hist);
}

static int run(struct cluster *c, struct item *it, int sha) {
    char ttl[24], size[24], kind[2] = {it->stream, '\0'}, epoch[HIST_EPOCH_LEN + 1];
    snprintf(ttl, sizeof ttl, "%ld", c->history_ttl_s);
    snprintf(size, sizeof size, "%ld", c->history_size);
    draw_epoch(c, epoch);
    const char *ch = it->buf, *key = ch + it->a_len, *head = key + it->k_len, *text = head + it->h_len;
    struct stream_keys k;
    stream_keys(c, key, it->k_len, &k);
    const char *argv[] = {sha ? "EVALSHA" : "EVAL", sha ? c->script_sha : SCRIPT, "2", k.meta, k.hist, ch, kind,
                          head, text, ttl, epoch, size};
    size_t lens[] = {sha ? 7 : 4, sha ? 40 : sizeof SCRIPT - 1, 1, k.meta_len, k.hist_len, it->a_len, 1, it->h_len,
                     it->b_len - it->k_len - it->h_len, strlen(ttl), HIST_EPOCH_LEN, strlen(size)};
    return cluster_command(c, on_script_reply, it, 12, argv, lens);
}

/* Done with it: its ask answered with `nodes` (or UROUTE_UNANSWERED), a message Redis did not take
 * counted dropped. */
static void done(struct cluster *c, struct item *it, long nodes) {
    if (nodes < 0) metrics_add(M_CLUSTER_DROPPED, 1);
    if (it->ask) uroute_ask_done(c, it->ask, nodes);
    free(it);
}

/* A script's reply taken (counted in flight); 1 when it was NOSCRIPT and `again` (the EVAL, which loads
 * the script anew) went out in its place, so there is nothing more to do with it. */
static int reply_taken(redisAsyncContext *ac, redisReply *reply, struct item *it,
                       int (*again)(struct cluster *c, struct item *it, int sha)) {
    int noscript = reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
    cluster_on_reply(ac, noscript ? NULL : reply, NULL);
    return noscript && again(ac->data, it, 0) == 0;
}

static void on_script_reply(redisAsyncContext *ac, void *r, void *privdata) {
    redisReply *reply = r;
    if (reply_taken(ac, reply, privdata, run)) return;
    done(ac->data, privdata, reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : UROUTE_UNANSWERED);
}

void chist_send(struct cluster *c, struct item *it) {
    if (run(c, it, 1) < 0) done(c, it, UROUTE_UNANSWERED);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
}

/* ---- reads ---- */

/* What a read asks, kept in its item's buf until Redis answers. */
struct read_ask {
    char conn[HUB_ID_MAX];
    size_t n;
    struct hub_stream_want w[HUB_WANTS_MAX];
};

struct item *chist_read_item(const char *conn_id, const struct hub_stream_want *w, size_t n) {
    if (n == 0 || n > HUB_WANTS_MAX) return NULL;
    struct item *it = malloc(sizeof *it + sizeof(struct read_ask));
    if (!it) return NULL;
    *it = (struct item){.kind = IT_READ, .a_len = sizeof(struct read_ask)};
    struct read_ask ra = {.n = n};
    snprintf(ra.conn, sizeof ra.conn, "%s", conn_id);
    memcpy(ra.w, w, n * sizeof *w);
    memcpy(it->buf, &ra, sizeof ra);
    return it;
}

/* The stream key of a want: history.h's "u:NAME", "r:NAME" or "b". */
static size_t want_key(const struct hub_stream_want *w, char *out, size_t cap) {
    int n = w->kind == 'b' ? snprintf(out, cap, "b") : snprintf(out, cap, "%c:%s", w->kind, w->name);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void on_read_reply(redisAsyncContext *ac, void *r, void *privdata);

/* EVALSHA (sha = 1) or EVAL of the read script for it; 0, or -1 when it could not be sent. */
static int run_read(struct cluster *c, struct item *it, int sha) {
    struct read_ask ra;
    memcpy(&ra, it->buf, sizeof ra);
    struct stream_keys k[HUB_WANTS_MAX];
    char ttl[24], epochs[HUB_WANTS_MAX][HIST_EPOCH_LEN + 1], offsets[HUB_WANTS_MAX][24];
    const char *argv[4 + 2 * HUB_WANTS_MAX + 3 * HUB_WANTS_MAX];
    size_t lens[sizeof argv / sizeof *argv];
    int argc = 0;
    argv[argc] = sha ? "EVALSHA" : "EVAL", lens[argc++] = sha ? 7 : 4;
    argv[argc] = sha ? c->read_sha : READ_SCRIPT, lens[argc++] = sha ? 40 : sizeof READ_SCRIPT - 1;
    argv[argc] = ra.n == 2 ? "4" : "2", lens[argc++] = 1;
    for (size_t i = 0; i < ra.n; i++) {
        char key[HIST_KEY_MAX + 1];
        stream_keys(c, key, want_key(&ra.w[i], key, sizeof key), &k[i]);
        argv[argc] = k[i].meta, lens[argc++] = k[i].meta_len;
        argv[argc] = k[i].hist, lens[argc++] = k[i].hist_len;
    }
    snprintf(ttl, sizeof ttl, "%ld", c->history_ttl_s);
    argv[argc] = ttl, lens[argc++] = strlen(ttl);
    for (size_t i = 0; i < ra.n; i++) {
        draw_epoch(c, epochs[i]);
        snprintf(offsets[i], sizeof offsets[i], "%llu", (unsigned long long)ra.w[i].since.offset);
        argv[argc] = epochs[i], lens[argc++] = HIST_EPOCH_LEN;
        argv[argc] = ra.w[i].has_since ? ra.w[i].since.epoch : "", lens[argc++] = ra.w[i].has_since ? strlen(ra.w[i].since.epoch) : 0;
        argv[argc] = offsets[i], lens[argc++] = strlen(offsets[i]);
    }
    return cluster_command(c, on_read_reply, it, argc, argv, lens);
}

/* Answers it (g NULL: failed) to the hub and frees it. */
static void read_done(struct cluster *c, struct item *it, struct hub_stream_got *g) {
    struct read_ask ra;
    memcpy(&ra, it->buf, sizeof ra);
    struct hub_stream_got failed[HUB_WANTS_MAX] = {{.r = HIST_FAILED}, {.r = HIST_FAILED}};
    hub_streams_read(c->hub, ra.conn, ra.w, g ? g : failed, ra.n);
    free(it);
}

static void on_read_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    struct item *it = privdata;
    redisReply *reply = r;
    if (reply_taken(ac, reply, it, run_read)) return;
    struct read_ask ra;
    memcpy(&ra, it->buf, sizeof ra);
    struct hub_stream_got g[HUB_WANTS_MAX];
    read_done(c, it, chist_parse_read(reply, ra.w, ra.n, g) == 0 ? g : NULL);
}

void chist_read_send(struct cluster *c, struct item *it) {
    if (run_read(c, it, 1) < 0) read_done(c, it, NULL);
}

void chist_read_drop(struct cluster *c, struct item *it) { read_done(c, it, NULL); }

/* An epoch as the scripts draw them. */
static int epoch_ok(const redisReply *e) {
    if (e->type != REDIS_REPLY_STRING || e->len != HIST_EPOCH_LEN) return 0;
    for (size_t i = 0; i < e->len; i++)
        if (!isalnum((unsigned char)e->str[i])) return 0;
    return 1;
}

/* One stream's answer {epoch, top, status, texts...} into *g; 0, or -1 when malformed. */
static int parse_one(const redisReply *e, const struct hub_stream_want *w, struct hub_stream_got *g) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || !epoch_ok(e->element[0]) ||
        e->element[1]->type != REDIS_REPLY_INTEGER || e->element[1]->integer < 0 ||
        (double)e->element[1]->integer > SINCE_OFFSET_MAX || e->element[2]->type != REDIS_REPLY_INTEGER)
        return -1;
    memcpy(g->now.epoch, e->element[0]->str, HIST_EPOCH_LEN);
    g->now.epoch[HIST_EPOCH_LEN] = '\0';
    g->now.offset = (uint64_t)e->element[1]->integer;
    long long status = e->element[2]->integer;
    size_t texts = e->elements - 3;
    if (status == 0 || status == 2) {
        g->r = status == 0 ? HIST_FRESH : HIST_NOT_RECOVERED;
        return texts == 0 && (status == 0) == !w->has_since ? 0 : -1;
    }
    if (status != 1 || !w->has_since || strcmp(w->since.epoch, g->now.epoch) != 0 || w->since.offset > g->now.offset ||
        texts != g->now.offset - w->since.offset)
        return -1;
    g->r = HIST_RECOVERED;
    g->replay = (struct hist_replay){.first = w->since.offset + 1};
    memcpy(g->replay.epoch, g->now.epoch, sizeof g->replay.epoch);
    if (texts && !(g->replay.frames = calloc(texts, sizeof *g->replay.frames))) return -1;
    for (size_t i = 0; i < texts; i++) {
        const redisReply *t = e->element[3 + i];
        if (t->type != REDIS_REPLY_STRING || !utf8_valid((const uint8_t *)t->str, t->len)) return -1;
        if (!(g->replay.frames[i] = frame_new(WS_OP_TEXT, t->str, t->len))) return -1;
        g->replay.n++;
    }
    return 0;
}

int chist_parse_read(const redisReply *r, const struct hub_stream_want *w, size_t n, struct hub_stream_got *g) {
    for (size_t i = 0; i < n; i++) g[i] = (struct hub_stream_got){.r = HIST_FAILED};
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == n;
    for (size_t i = 0; ok && i < n; i++) ok = parse_one(r->element[i], &w[i], &g[i]) == 0;
    if (ok) return 0;
    for (size_t i = 0; i < n; i++) {
        history_replay_free(&g[i].replay);
        g[i].r = HIST_FAILED;
    }
    return -1;
}

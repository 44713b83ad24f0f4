/* clusterhist: stream positions assigned in Redis by a Lua script (see clusterhist.h). */
#include "clusterhist.h"

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clustercmd.h"
#include "clusterpriv.h"
#include "metrics.h"

/* KEYS[1] the stream's hash; ARGV: channel, kind, "NODE\nTARGET\n", text, TTL in seconds, the epoch
 * for a new stream. Returns PUBLISH's reply: how many nodes the message reached. Lua formats the
 * offset as an integer below 10^14. */
static const char SCRIPT[] =
    "local epoch = redis.call('hget', KEYS[1], 'e')\n"
    "if not epoch then\n"
    "  epoch = ARGV[6]\n"
    "  redis.call('hset', KEYS[1], 'e', epoch)\n"
    "end\n"
    "local offset = redis.call('hincrby', KEYS[1], 'o', 1)\n"
    "redis.call('expire', KEYS[1], ARGV[5])\n"
    "return redis.call('publish', ARGV[1], ARGV[2] .. ' ' .. offset .. ' ' .. ARGV[3] .. epoch .. '\\n' .. ARGV[4])\n";

int chist_init(struct cluster *c) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (!EVP_Digest(SCRIPT, sizeof SCRIPT - 1, md, &len, EVP_sha1(), NULL) || len != 20) return -1;
    for (unsigned i = 0; i < len; i++) snprintf(c->script_sha + 2 * i, 3, "%02x", md[i]);
    if (getrandom(&c->rng, sizeof c->rng, 0) != sizeof c->rng) return -1;
    c->rng |= 1; /* xorshift's state must not be 0 */
    return 0;
}

void chist_load(struct cluster *c) {
    const char *argv[] = {"SCRIPT", "LOAD", SCRIPT};
    size_t lens[] = {6, 4, sizeof SCRIPT - 1};
    cluster_command(c, NULL, NULL, 3, argv, lens);
}

struct item *chist_item(const struct cluster *c, char kind, const char *target, const char *except, const char *key,
                        const char *channel, const char *text, size_t text_len) {
    char k[CLUSTER_CHANNEL_MAX], h[3 * SB_NAME_MAX + 4];
    int kl = snprintf(k, sizeof k, "%s.meta.%s", c->prefix, key);
    int hl = snprintf(h, sizeof h, "%s\n%s%s%s%s", c->node, target ? target : "", target ? "\n" : "",
                      except ? except : "", except ? "\n" : "");
    size_t cl = strlen(channel);
    if (kl < 0 || (size_t)kl >= sizeof k || hl < 0 || (size_t)hl >= sizeof h) return NULL;
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
static int run(struct cluster *c, struct item *it, int sha) {
    char ttl[24], kind[2] = {it->stream, '\0'}, epoch[HIST_EPOCH_LEN + 1];
    snprintf(ttl, sizeof ttl, "%ld", c->history_ttl_s);
    draw_epoch(c, epoch);
    const char *ch = it->buf, *key = ch + it->a_len, *head = key + it->k_len, *text = head + it->h_len;
    const char *argv[] = {sha ? "EVALSHA" : "EVAL", sha ? c->script_sha : SCRIPT, "1", key, ch, kind, head, text, ttl, epoch};
    size_t lens[] = {sha ? 7 : 4, sha ? 40 : sizeof SCRIPT - 1, 1, it->k_len, it->a_len, 1, it->h_len,
                     it->b_len - it->k_len - it->h_len, strlen(ttl), HIST_EPOCH_LEN};
    return cluster_command(c, on_script_reply, it, 10, argv, lens);
}

/* Done with it: its ask answered with `nodes` (or UROUTE_UNANSWERED), a message Redis did not take
 * counted dropped. */
static void done(struct cluster *c, struct item *it, long nodes) {
    if (nodes < 0) metrics_add(M_CLUSTER_DROPPED, 1);
    if (it->ask) uroute_ask_done(c, it->ask, nodes);
    free(it);
}

static void on_script_reply(redisAsyncContext *ac, void *r, void *privdata) {
    struct cluster *c = ac->data;
    struct item *it = privdata;
    redisReply *reply = r;
    int noscript = reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0;
    cluster_on_reply(ac, noscript ? NULL : r, NULL);
    if (noscript && run(c, it, 0) == 0) return;
    done(c, it, reply && reply->type == REDIS_REPLY_INTEGER ? (long)reply->integer : UROUTE_UNANSWERED);
}

void chist_send(struct cluster *c, struct item *it) {
    if (run(c, it, 1) < 0) done(c, it, UROUTE_UNANSWERED);
    metrics_add(M_CLUSTER_PUBLISHES, 1);
}

/* fuzz_histread: the read script's reply as Redis hands it over (app/cluster/clusterhist.c's
 * chist_parse_read), through hiredis's own reply reader, as the engine gets it.
 *
 * Input: byte 0 says what was asked: bit 0 one stream or two, bits 1 and 2 whether each asked to
 * recover; bytes 1..8 the asked epoch, 9..10 its offset (little-endian); the rest is RESP. A reply that
 * parses must give, per stream, a well-formed position, "fresh" only when nothing was asked to recover,
 * and for a recovery exactly the messages from the asked offset to the stream's last, each a UTF-8 text
 * frame; one that does not parse leaves every stream failed, with no messages. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <string.h>

#include "clusterhist.h"
#include "frame.h"
#include "fuzz_check.h"
#include "utf8.h"

static void check(const struct hub_stream_want *w, const struct hub_stream_got *g, int ok) {
    if (!ok) {
        FUZZ_CHECK(g->r == HIST_FAILED && g->replay.n == 0 && g->replay.frames == NULL);
        return;
    }
    FUZZ_CHECK(strlen(g->now.epoch) == HIST_EPOCH_LEN);
    FUZZ_CHECK(g->r == HIST_RECOVERED || g->r == HIST_NOT_RECOVERED || g->r == HIST_FRESH);
    FUZZ_CHECK((g->r == HIST_FRESH) == !w->has_since);
    if (g->r != HIST_RECOVERED) {
        FUZZ_CHECK(g->replay.n == 0);
        return;
    }
    FUZZ_CHECK(strcmp(g->now.epoch, w->since.epoch) == 0 && g->replay.first == w->since.offset + 1);
    FUZZ_CHECK(g->replay.n == g->now.offset - w->since.offset);
    for (size_t i = 0; i < g->replay.n; i++) {
        size_t len;
        const uint8_t *p = frame_payload(g->replay.frames[i], &len);
        FUZZ_CHECK((g->replay.frames[i]->bytes[0] & 0x0f) == WS_OP_TEXT && utf8_valid(p, len));
    }
}

/* hiredis 0.14's reader allocates whatever an aggregate's count says before it has the elements (a
 * trusted Redis never says a billion): inputs with a count past 5 digits are left out. */
static int huge_count(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '*' && p[i] != '$') continue;
        size_t d = 0;
        while (i + 1 + d < n && p[i + 1 + d] >= '0' && p[i + 1 + d] <= '9') d++;
        if (d > 5) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 11 || huge_count(data + 11, size - 11)) return 0;
    struct hub_stream_want w[HUB_WANTS_MAX] = {{.kind = 'u', .name = "alice"}, {.kind = 'b'}};
    size_t n = 1 + (data[0] & 1);
    for (size_t i = 0; i < n; i++) {
        w[i].has_since = (data[0] >> (1 + i)) & 1;
        memcpy(w[i].since.epoch, data + 1, HIST_EPOCH_LEN);
        w[i].since.epoch[HIST_EPOCH_LEN] = '\0';
        w[i].since.offset = (uint64_t)data[9] | (uint64_t)data[10] << 8;
    }
    redisReader *r = redisReaderCreate();
    if (!r) return 0;
    void *reply = NULL;
    if (redisReaderFeed(r, (const char *)data + 11, size - 11) == REDIS_OK && redisReaderGetReply(r, &reply) == REDIS_OK &&
        reply) {
        struct hub_stream_got g[HUB_WANTS_MAX];
        int ok = chist_parse_read(reply, w, n, g) == 0;
        for (size_t i = 0; i < n; i++) {
            check(&w[i], &g[i], ok);
            history_replay_free(&g[i].replay);
        }
        freeReplyObject(reply);
    }
    redisReaderFree(r);
    return 0;
}

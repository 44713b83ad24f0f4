/* fuzz_cluster: the cluster's pub/sub payloads and the Redis URL (app/cluster/clustermsg.c), the parsers of
 * what arrives from Redis and from --redis.
 *
 * Input: byte 0 picks the parser (even: a payload, odd: a URL), the rest is its text. A payload that
 * parses must have a valid node and target, a body inside the input, and encode back to the same head
 * (cluster_msg_head) followed, for r and b, by the sending connection's line (empty or a name) and, for a
 * positioned kind (u, r, b), by its epoch line, a delivery's (U, R, B, u) body must
 * be UTF-8, and a D's body must give a valid close
 * code and a short UTF-8 reason; a URL that parses must give a non-empty host, a port in 1..65535 and fields that
 * fit their buffers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clustermsg.h"
#include "fuzz_check.h"
#include "names.h"
#include "utf8.h"

static void check_payload(const char *p, size_t len) {
    struct cluster_msg m;
    if (cluster_msg_parse(p, len, &m) < 0) return;
    FUZZ_CHECK(strchr(CLUSTER_KINDS, m.kind) && m.kind != '\0');
    FUZZ_CHECK(name_valid(m.node));
    FUZZ_CHECK(m.body >= p && m.body + m.body_len == p + len);
    int targeted = strchr(CLUSTER_TARGETED_KINDS, m.kind) != NULL;
    FUZZ_CHECK(targeted ? name_valid(m.target) : m.target[0] == '\0');
    char head[CLUSTER_HEAD_MAX];
    size_t n = cluster_msg_head(head, m.kind, m.seq, m.node, targeted ? m.target : NULL);
    size_t except = strchr(CLUSTER_EXCEPT_KINDS, m.kind) ? strlen(m.except) + 1 : 0;
    FUZZ_CHECK(except ? m.except[0] == '\0' || name_valid(m.except) : m.except[0] == '\0');
    FUZZ_CHECK(!except || (memcmp(p + n, m.except, except - 1) == 0 && p[n + except - 1] == '\n'));
    n += except;
    size_t epoch = strchr(CLUSTER_POSITIONED_KINDS, m.kind) ? HIST_EPOCH_LEN + 1 : 0;
    FUZZ_CHECK(n + epoch == (size_t)(m.body - p) && memcmp(head, p, n - except) == 0); /* one spelling per payload */
    FUZZ_CHECK(epoch ? m.seq > 0 && strlen(m.epoch) == HIST_EPOCH_LEN && memcmp(m.epoch, p + n, HIST_EPOCH_LEN) == 0
                     : m.epoch[0] == '\0');
    if (m.kind == 'D') {
        uint16_t code;
        char reason[CLUSTER_REASON_MAX + 1], body[CLUSTER_REASON_MAX + 8];
        FUZZ_CHECK(cluster_close_parse(m.body, m.body_len, &code, reason) == 0);
        FUZZ_CHECK(code == 1000 || code == 1008 || (code >= 4000 && code <= 4999));
        size_t blen = cluster_close_body(body, code, reason);
        FUZZ_CHECK(blen == m.body_len && memcmp(body, m.body, blen) == 0);
    }
    if (strchr("URBurb", m.kind)) FUZZ_CHECK(utf8_valid((const uint8_t *)m.body, m.body_len)); /* a text frame's */
}

static void check_url(const char *url) {
    struct redis_url u;
    char err[256];
    if (redis_url_parse(url, &u, err, sizeof err) < 0) {
        FUZZ_CHECK(strlen(err) > 0);
        return;
    }
    FUZZ_CHECK(u.host[0] && strlen(u.host) < sizeof u.host);
    FUZZ_CHECK(u.port >= 1 && u.port <= 65535);
    FUZZ_CHECK(strlen(u.password) < sizeof u.password && strlen(u.user) < sizeof u.user);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    if (data[0] % 2 == 0) check_payload(text, size - 1);
    else check_url(text);
    free(text);
    return 0;
}

/* test_clustermsg: the cluster's pub/sub payloads and the Redis URL (app/cluster/clustermsg.c).
 *
 * What one node publishes another must read back exactly (kind, sequence number, node, target, body),
 * and what does not follow the format, which any Redis client could publish, must be refused rather
 * than half-read: a bad node id, a target that is not a name, a presence event with a body, a
 * sequence number that would overflow or has two spellings. URLs: every form --redis documents. */
#include "check.h"
#include "clustermsg.h"

static int parse(const char *s, struct cluster_msg *m) { return cluster_msg_parse(s, strlen(s), m); }

static void test_round_trip(void) {
    char buf[CLUSTER_HEAD_MAX + 32];
    size_t n = cluster_msg_head(buf, 'U', 0, "node-1", "alice");
    CHECK_EQ_STR(buf, "U 0 node-1\nalice\n");
    memcpy(buf + n, "{\"x\":1}", 8);
    struct cluster_msg m;
    CHECK_EQ_INT(cluster_msg_parse(buf, n + 7, &m), 0);
    CHECK_EQ_INT(m.kind, 'U');
    CHECK_EQ_STR(m.node, "node-1");
    CHECK_EQ_STR(m.target, "alice");
    CHECK_EQ_INT((long long)m.body_len, 7);
    CHECK(memcmp(m.body, "{\"x\":1}", 7) == 0);
    cluster_msg_head(buf, 'S', 12345678901234ULL, "n", NULL);
    CHECK_EQ_STR(buf, "S 12345678901234 n\n");
    CHECK_EQ_INT(parse(buf, &m), 0);
    CHECK(m.seq == 12345678901234ULL);
    CHECK_EQ_STR(m.target, "");
}

/* A message with its stream position, as the stream script publishes it (clusterhist.c): the offset
 * in the sequence number's place (from 1), the epoch on a line of its own before the text. */
static void test_positioned(void) {
    struct cluster_msg m;
    CHECK_EQ_INT(parse("u 42 node-1\nbob\nAb3dE9xZ\n{\"x\":1}", &m), 0);
    CHECK_EQ_INT(m.kind, 'u');
    CHECK(m.seq == 42);
    CHECK_EQ_STR(m.target, "bob");
    CHECK_EQ_STR(m.epoch, "Ab3dE9xZ");
    CHECK_EQ_INT((long long)m.body_len, 7);
    CHECK(memcmp(m.body, "{\"x\":1}", 7) == 0);
    CHECK_EQ_INT(parse("U 0 n\nbob\n1", &m), 0);
    CHECK_EQ_STR(m.epoch, ""); /* no position */
    CHECK_EQ_INT(parse("u 0 n\nbob\nAb3dE9xZ\n1", &m), -1);  /* offsets start at 1 */
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3dE9x\n1", &m), -1);   /* an epoch is 8 long */
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3d-9xZ\n1", &m), -1);  /* of letters and digits */
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3dE9xZ\n", &m), -1);   /* and a text after it */
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3dE9xZ1", &m), -1);     /* on a line of its own */
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3dE9xZ\n\"a\xc3\"", &m), -1); /* UTF-8 */
    /* a room's and the broadcast stream's: the sending connection's id (or nothing) before the epoch */
    CHECK_EQ_INT(parse("r 3 n\nlobby\nconn-12\nAb3dE9xZ\n1", &m), 0);
    CHECK_EQ_STR(m.target, "lobby");
    CHECK_EQ_STR(m.except, "conn-12");
    CHECK_EQ_STR(m.epoch, "Ab3dE9xZ");
    CHECK(m.seq == 3 && m.body_len == 1 && m.body[0] == '1');
    CHECK_EQ_INT(parse("b 9 n\n\nAb3dE9xZ\n1", &m), 0);
    CHECK_EQ_STR(m.except, "");
    CHECK_EQ_STR(m.target, "");
    CHECK(m.seq == 9);
    CHECK_EQ_INT(parse("u 1 n\nbob\nAb3dE9xZ\n1", &m), 0);
    CHECK_EQ_STR(m.except, "");
    CHECK_EQ_INT(parse("b 9 n\nAb3dE9xZ\n1", &m), -1);      /* no sender line */
    CHECK_EQ_INT(parse("r 3 n\nlobby\nco nn\nAb3dE9xZ\n1", &m), -1); /* not a name */
}

static void test_kinds(void) {
    struct cluster_msg m;
    CHECK_EQ_INT(parse("B 0 n\n\"hi\"", &m), 0);
    CHECK_EQ_INT(parse("R 0 n\nlobby\n1", &m), 0);
    CHECK_EQ_STR(m.target, "lobby");
    CHECK_EQ_INT(parse("J 5 n\nbob\n", &m), 0);
    CHECK_EQ_INT(parse("L 6 n\nbob\n", &m), 0);
    CHECK_EQ_INT(parse("E 7 n\nroom\n", &m), 0);
    CHECK_EQ_INT(parse("X 8 n\nroom\n", &m), 0);
    CHECK_EQ_INT(parse("Q 0 n\n1", &m), -1);   /* unknown kind */
    CHECK_EQ_INT(parse("B 0 n\n", &m), -1);    /* a delivery needs a body */
    CHECK_EQ_INT(parse("J 5 n\nbob\nx", &m), -1); /* presence has none */
    CHECK_EQ_INT(parse("S 5 n\nx", &m), -1);
    /* a delivery's body becomes a text frame: anything that is not UTF-8 is refused (issue 18), or
     * every receiving client would fail its connection with 1007 */
    CHECK_EQ_INT(parse("B 0 n\n\"\xc3\xa9\"", &m), 0);
    CHECK_EQ_INT(parse("B 0 n\n\"\xff\"", &m), -1);
    CHECK_EQ_INT(parse("U 0 n\nalice\n\"a\xc3\"", &m), -1);
    CHECK_EQ_INT(parse("R 0 n\nlobby\n\"\xed\xa0\x80\"", &m), -1);
}

static void test_malformed(void) {
    struct cluster_msg m;
    CHECK_EQ_INT(parse("", &m), -1);
    CHECK_EQ_INT(parse("U", &m), -1);
    CHECK_EQ_INT(parse("U 0 node 1\nalice\n1", &m), -1);   /* a space in the node id */
    CHECK_EQ_INT(parse("U 0 n\nal ice\n1", &m), -1);       /* the target is not a name */
    CHECK_EQ_INT(parse("U 0 n\nalice", &m), -1);           /* no newline after the target */
    CHECK_EQ_INT(parse("U x n\nalice\n1", &m), -1);        /* no number */
    CHECK_EQ_INT(parse("J 07 n\nbob\n", &m), -1);          /* two spellings of 7 */
    CHECK_EQ_INT(parse("J 99999999999999999999 n\nbob\n", &m), -1); /* past 64 bits */
    CHECK_EQ_INT(cluster_msg_parse("U 0 n\0\nalice\n1", 14, &m), -1); /* a NUL in the node id */
}

/* M / N carry a room member (the user's name as the body); D the API's disconnect. */
static void test_members_and_disconnect(void) {
    struct cluster_msg m;
    CHECK_EQ_INT(parse("M 9 n\nlobby\nbob", &m), 0);
    CHECK_EQ_STR(m.target, "lobby");
    CHECK_EQ_INT((long long)m.body_len, 3);
    CHECK_EQ_INT(parse("N 10 n\nlobby\nbob", &m), 0);
    CHECK_EQ_INT(parse("M 9 n\nlobby\n", &m), -1);      /* no user */
    CHECK_EQ_INT(parse("M 9 n\nlobby\nbo b", &m), -1);  /* not a name */
    CHECK_EQ_INT(parse("M 9 n\nlobby\nbob\n", &m), -1);
    char body[CLUSTER_REASON_MAX + 8], reason[CLUSTER_REASON_MAX + 1];
    uint16_t code = 0;
    size_t n = cluster_close_body(body, 4001, "bye now");
    CHECK_EQ_STR(body, "4001 bye now");
    CHECK_EQ_INT(cluster_close_parse(body, n, &code, reason), 0);
    CHECK_EQ_INT(code, 4001);
    CHECK_EQ_STR(reason, "bye now");
    CHECK_EQ_INT(parse("D 0 n\nbob\n1000 ", &m), 0);     /* an empty reason */
    CHECK_EQ_STR(m.target, "bob");
    CHECK_EQ_INT(parse("D 0 n\nbob\n3000 x", &m), -1);   /* not a code the API sends */
    CHECK_EQ_INT(parse("D 0 n\nbob\n4001", &m), -1);     /* no space */
    CHECK_EQ_INT(parse("D 0 n\nbob\n4001 \xff", &m), -1); /* not UTF-8 */
    char longer[200] = "D 0 n\nbob\n4001 ";
    memset(longer + strlen(longer), 'x', CLUSTER_REASON_MAX + 1);
    CHECK_EQ_INT(parse(longer, &m), -1);                  /* a close frame could not carry it */
    /* G / Q: the API's subscribe / unsubscribe, the body a room's name */
    if (CHECK_EQ_INT(parse("G 0 n\nbob\nnews", &m), 0)) {
        CHECK(m.kind == 'G' && strcmp(m.target, "bob") == 0 && m.body_len == 4 && memcmp(m.body, "news", 4) == 0);
    }
    CHECK_EQ_INT(parse("Q 0 n\nbob\nnews", &m), 0);
    CHECK_EQ_INT(parse("G 0 n\nbob\n", &m), -1);          /* no room */
    CHECK_EQ_INT(parse("G 0 n\nbob\nno room", &m), -1);   /* not a name */
    CHECK_EQ_INT(parse("Q 0 n\nbob", &m), -1);             /* no user line */
}

static void test_urls(void) {
    struct redis_url u;
    char err[256];
    CHECK_EQ_INT(redis_url_parse("redis://127.0.0.1", &u, err, sizeof err), 0);
    CHECK_EQ_STR(u.host, "127.0.0.1");
    CHECK_EQ_INT(u.port, 6379);
    CHECK_EQ_INT(u.db, 0);
    CHECK_EQ_INT(redis_url_parse("redis://:s3cret@redis:6380/2", &u, err, sizeof err), 0);
    CHECK_EQ_STR(u.host, "redis");
    CHECK_EQ_STR(u.password, "s3cret");
    CHECK_EQ_STR(u.user, "");
    CHECK_EQ_INT(u.port, 6380);
    CHECK_EQ_INT(u.db, 2);
    CHECK_EQ_INT(redis_url_parse("redis://app:pw@h:1", &u, err, sizeof err), 0);
    CHECK_EQ_STR(u.user, "app");
    CHECK_EQ_INT(redis_url_parse("http://h", &u, err, sizeof err), -1);
    CHECK(strstr(err, "redis://") != NULL);
    CHECK_EQ_INT(redis_url_parse("redis://h:0", &u, err, sizeof err), -1);
    CHECK_EQ_INT(redis_url_parse("redis://h:65536", &u, err, sizeof err), -1);
    CHECK_EQ_INT(redis_url_parse("redis://", &u, err, sizeof err), -1);
    CHECK_EQ_INT(redis_url_parse("redis://pw@h", &u, err, sizeof err), -1); /* credentials need the colon */
    CHECK_EQ_INT(redis_url_parse("redis://h/x", &u, err, sizeof err), -1);
}

int main(void) {
    test_round_trip();
    test_kinds();
    test_positioned();
    test_malformed();
    test_members_and_disconnect();
    test_urls();
    return check_done();
}

/* clustermsg: the cluster's pub/sub payloads, channels and the Redis URL (see clustermsg.h). */
#include "clustermsg.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Copies a name of n bytes into out if it is valid; 0 or -1. */
static int take_name(const char *p, size_t n, char *out) {
    if (n == 0 || n > SB_NAME_MAX || memchr(p, '\0', n)) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return name_valid(out) ? 0 : -1;
}

/* Reads "NAME\n" at *p (n bytes left) into out; advances *p. 0 or -1. */
static int take_line(const char **p, size_t n, char *out) {
    const char *nl = memchr(*p, '\n', n);
    if (!nl || take_name(*p, (size_t)(nl - *p), out) < 0) return -1;
    *p = nl + 1;
    return 0;
}

/* "[NAME]\n" at *p (n bytes left): an empty line or a name. */
static int take_except(const char **p, size_t n, char *out) {
    if (n && **p == '\n') {
        out[0] = '\0';
        (*p)++;
        return 0;
    }
    return take_line(p, n, out);
}

/* "EPOCH\n" at *p (n bytes left), the epoch as history hands them out, and an offset from 1. */
static int take_epoch(const char **p, size_t n, struct cluster_msg *m) {
    if (m->seq == 0 || n <= HIST_EPOCH_LEN || (*p)[HIST_EPOCH_LEN] != '\n') return -1;
    for (size_t i = 0; i < HIST_EPOCH_LEN; i++)
        if (!isalnum((unsigned char)(*p)[i])) return -1;
    memcpy(m->epoch, *p, HIST_EPOCH_LEN);
    m->epoch[HIST_EPOCH_LEN] = '\0';
    *p += HIST_EPOCH_LEN + 1;
    return 0;
}

int cluster_msg_parse(const char *p, size_t len, struct cluster_msg *m) {
    if (len < 2 || p[0] == '\0' || !strchr(CLUSTER_KINDS, p[0]) || p[1] != ' ') return -1;
    const char *end = p + len, *q = p + 2;
    uint64_t seq = 0;
    size_t digits = 0;
    for (; q < end && *q >= '0' && *q <= '9'; q++, digits++) {
        if (digits == 19) return -1; /* keeps seq inside 64 bits */
        seq = seq * 10 + (uint64_t)(*q - '0');
    }
    if (digits == 0 || (digits > 1 && p[2] == '0') || q == end || *q != ' ') return -1; /* one spelling per number */
    q++;
    m->kind = p[0];
    m->seq = seq;
    m->target[0] = '\0';
    m->epoch[0] = '\0';
    if (take_line(&q, (size_t)(end - q), m->node) < 0) return -1;
    if (strchr(CLUSTER_TARGETED_KINDS, m->kind) && take_line(&q, (size_t)(end - q), m->target) < 0) return -1;
    m->except[0] = '\0';
    if (strchr(CLUSTER_EXCEPT_KINDS, m->kind) && take_except(&q, (size_t)(end - q), m->except) < 0) return -1;
    if (strchr(CLUSTER_POSITIONED_KINDS, m->kind) && take_epoch(&q, (size_t)(end - q), m) < 0) return -1;
    m->body = q;
    m->body_len = (size_t)(end - q);
    if (strchr("JLEXS", m->kind)) return m->body_len ? -1 : 0;
    if (strchr("MNGQ", m->kind)) { /* the body is a user's name (M, N) or a room's (G, Q) */
        char user[SB_NAME_MAX + 1];
        return m->body_len <= SB_NAME_MAX && take_name(m->body, m->body_len, user) == 0 ? 0 : -1;
    }
    if (m->kind == 'D') {
        uint16_t code;
        char reason[CLUSTER_REASON_MAX + 1];
        return cluster_close_parse(m->body, m->body_len, &code, reason);
    }
    /* U, R, B, u, r, b: the body goes out as a text frame, which must be UTF-8 (RFC 6455 5.6) */
    return m->body_len && utf8_valid((const uint8_t *)m->body, m->body_len) ? 0 : -1;
}

int cluster_close_parse(const char *body, size_t len, uint16_t *code, char *reason) {
    if (len < 5 || body[4] != ' ' || len - 5 > CLUSTER_REASON_MAX) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (body[i] < '0' || body[i] > '9') return -1;
        v = v * 10 + (unsigned)(body[i] - '0');
    }
    if (!(v == 1000 || v == 1008 || (v >= 4000 && v <= 4999))) return -1;
    const char *r = body + 5;
    size_t rlen = len - 5;
    if (memchr(r, '\0', rlen) || !utf8_valid((const uint8_t *)r, rlen)) return -1;
    *code = (uint16_t)v;
    memcpy(reason, r, rlen);
    reason[rlen] = '\0';
    return 0;
}

size_t cluster_close_body(char *out, uint16_t code, const char *reason) {
    int n = snprintf(out, CLUSTER_REASON_MAX + 8, "%04u %.*s", (unsigned)code, CLUSTER_REASON_MAX, reason);
    return n < 0 ? 0 : (size_t)n > CLUSTER_REASON_MAX + 7 ? CLUSTER_REASON_MAX + 7 : (size_t)n;
}

size_t cluster_msg_head(char *out, char kind, uint64_t seq, const char *node, const char *target) {
    int n = snprintf(out, CLUSTER_HEAD_MAX, "%c %llu %.*s\n%.*s%s", kind, (unsigned long long)seq, SB_NAME_MAX, node,
                     SB_NAME_MAX, target ? target : "", target ? "\n" : "");
    return n < 0 ? 0 : (size_t)n;
}

/* Copies [p, end) into out (cap bytes); -1 if it does not fit. */
static int copy_part(const char *p, const char *end, char *out, size_t cap) {
    size_t n = (size_t)(end - p);
    if (n >= cap) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

static int parse_number(const char *p, const char *end, long max, int *out) {
    long v = 0;
    if (p == end) return -1;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || (v = v * 10 + (*p - '0')) > max) return -1;
    }
    *out = (int)v;
    return 0;
}

int redis_url_parse(const char *url, struct redis_url *u, char *err, size_t cap) {
    static const char scheme[] = "redis://";
    memset(u, 0, sizeof *u);
    u->port = 6379;
    const char *p = url, *end = url + strlen(url);
    if (strncmp(p, "rediss://", 9) == 0) {
        snprintf(err, cap, "'%.200s': TLS to Redis (rediss://) is not supported yet: use redis:// on a private "
                           "network, or a local TLS tunnel (stunnel, spiped) to the Redis server", url);
        return -1;
    }
    if (strncmp(p, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, cap, "'%.200s' does not start with redis://", url);
        return -1;
    }
    p += sizeof scheme - 1;
    const char *slash = memchr(p, '/', (size_t)(end - p));
    const char *hostend = slash ? slash : end;
    const char *at = NULL;
    for (const char *q = p; q < hostend; q++)
        if (*q == '@') at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || copy_part(p, colon, u->user, sizeof u->user) < 0 ||
            copy_part(colon + 1, at, u->password, sizeof u->password) < 0 || !u->password[0]) {
            snprintf(err, cap, "the credentials in '%.200s' are not [user]:password@ (" REDIS_URL_FORM ")", url);
            return -1;
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(hostend - p));
    int bad = copy_part(p, colon ? colon : hostend, u->host, sizeof u->host) < 0 || !u->host[0];
    if (!bad && colon) bad = parse_number(colon + 1, hostend, 65535, &u->port) < 0 || u->port == 0;
    if (!bad && slash && slash + 1 < end) bad = parse_number(slash + 1, end, 1000000, &u->db) < 0;
    if (bad) snprintf(err, cap, "'%.200s' is not " REDIS_URL_FORM, url);
    return bad ? -1 : 0;
}

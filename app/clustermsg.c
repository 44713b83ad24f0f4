/* clustermsg: the cluster's pub/sub payloads, channels and the Redis URL (see clustermsg.h). */
#include "clustermsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int cluster_msg_parse(const char *p, size_t len, struct cluster_msg *m) {
    if (len < 2 || p[0] == '\0' || !strchr("URBJLEXS", p[0]) || p[1] != ' ') return -1;
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
    if (take_line(&q, (size_t)(end - q), m->node) < 0) return -1;
    if (strchr("URJLEX", m->kind) && take_line(&q, (size_t)(end - q), m->target) < 0) return -1;
    m->body = q;
    m->body_len = (size_t)(end - q);
    if (strchr("JLEXS", m->kind)) return m->body_len ? -1 : 0;
    return m->body_len ? 0 : -1;
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
            snprintf(err, cap, "the credentials in '%.200s' are not [user]:password@", url);
            return -1;
        }
        p = at + 1;
    }
    const char *colon = memchr(p, ':', (size_t)(hostend - p));
    int bad = copy_part(p, colon ? colon : hostend, u->host, sizeof u->host) < 0 || !u->host[0];
    if (!bad && colon) bad = parse_number(colon + 1, hostend, 65535, &u->port) < 0 || u->port == 0;
    if (!bad && slash && slash + 1 < end) bad = parse_number(slash + 1, end, 1000000, &u->db) < 0;
    if (bad) snprintf(err, cap, "'%.200s' is not redis://[:password@]host[:port][/db]", url);
    return bad ? -1 : 0;
}

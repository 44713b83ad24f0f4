/* loadgen: the load generator of switchboard's benchmark (bench/run).
 *
 * One thread carries the load: one epoll loop, non-blocking sockets, and a minimal RFC 6455 client: the handshake with
 * Sec-WebSocket-Key (the server's Sec-WebSocket-Accept is checked), masked client frames, server
 * frames parsed (text and fragments, ping answered with pong, close echoed). It speaks switchboard's
 * protocol subset (docs/PROTOCOL.md: welcome, send, broadcast), which the peer servers in bench/peers
 * speak too, so the same run measures every server the same way. With --framing socketio each of those
 * messages travels as a Socket.IO event over Engine.IO's WebSocket transport (the Socket.IO peer).
 *
 * Scenarios (one per run; `loadgen --help`):
 *   fanout  N receivers and one sender; the sender broadcasts as fast as the server delivers, with at
 *           most --window messages in flight (a message is in flight until all N got it). Reports
 *           deliveries/s and latency p50/p99/max over the measured interval, and loss.
 *   pairs   P sender->receiver pairs doing targeted `send` at a paced total rate; steps the rate up
 *           (doubling, then bisecting) and reports the highest step whose p99 stayed under
 *           --p99-limit-us with zero loss. A step that fails on latency alone is tried once more.
 *   conns   opens N idle connections; reports the connect rate and the server's RSS and threads, once
 *           the connections are open and again after holding them --hold seconds. With --rooms-of K,
 *           connection i joins room g<i/K> as soon as it is welcomed, and with --watch W it watches
 *           users c<i+1>..c<i+W> (mod N); it counts as connected once those are answered too, and the
 *           presence the server sends is checked against what the scenario implies (--presence rooms):
 *           every pair of a room's members makes exactly one room join event (to the earlier) and
 *           one name in a join's `members` (of the later), n(K-1)/2 of each; every watched user is
 *           either in the watch's `online` or announced by one join event later, N*W in all.
 *   hold    one of several generators against one cluster (bench/presence-cluster): like conns with
 *           --rooms-of/--watch, but the users of --stride generators interleave (room members on every
 *           node) and the connections are held while a driver sends commands on stdin: broadcast from a
 *           client or POST /api/broadcast (deliveries counted, time to the last one), SIGKILL a node,
 *           and count the leaves its users cause against the room layout (see scenario_hold).
 *
 * Every message's data string carries its sequence number and send time (CLOCK_MONOTONIC, µs), padded
 * with 'x' to --size bytes: "s:123:t:1700000000123456:xxxx...". A delivery whose data string is not
 * exactly --size bytes counts as truncated. welcome and presence frames are counted and skipped.
 *
 * Throughout a scenario a second thread probes GET /healthz once a second (a new connection each
 * time; on its own thread so that a saturated load loop does not delay reading the answer), and the
 * load loop samples /proc/PID/status of --pid (VmRSS, Threads). Every phase has a time cap and the whole run a
 * global --deadline: the generator always exits by itself.
 *
 * Output: progress on stderr, and one line on stdout, "RESULT key=value ...", that bench/run collects.
 *
 * Build: gcc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -pthread -o loadgen bench/loadgen.c -lm */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAX_EVENTS 1024
#define LG_READ_MIN 4096             /* a read gets at least this much free buffer */
#define LG_READ_MAX (256 * 1024)     /* a connection's buffer grows up to this while reads fill it */
#define LG_OUT_BACKLOG (1024 * 1024) /* a sender stops queueing frames above this many unsent bytes */
#define LG_PROBE_PERIOD_US 1000000
#define LG_PROBE_TIMEOUT_US 5000000
#define LG_STALE_US 2000000          /* fanout: a message not complete after this leaves the window */
#define LG_MAX_DATA 65000
#define LG_TOKEN_MAX 4096            /* --tokens: longest token line */
/* Connections to a loopback server come from this many source addresses (127.0.0.1, .2, ...): from one
 * address, 18,000 connections to one port fill most of the ephemeral port range, and the kernel's
 * search for a free port (__inet_hash_connect, __inet_check_established) then took ~45 % of the
 * generator's CPU, making it, not the server, the limit of the conns cases. */
#define LG_SOURCES 16

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/*---- time, random, output ----*/

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t rng_state = 88172645463325252ULL;

static uint32_t rng32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory (%zu bytes)", n);
    return q;
}

/*---- SHA-1 and base64, for Sec-WebSocket-Accept ----*/

static uint32_t rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
        else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
        else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
        else f = b ^ c ^ d, k = 0xCA62C1D6;
        uint32_t t = rol32(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol32(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

/* One-shot SHA-1 of a short input (the handshake's 60 bytes). */
static void sha1(const uint8_t *data, size_t len, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    uint8_t block[128] = {0};
    size_t full = len / 64 * 64;
    for (size_t i = 0; i < full; i += 64) sha1_block(h, data + i);
    size_t rest = len - full, padded = rest + 9 <= 64 ? 64 : 128;
    memcpy(block, data + full, rest);
    block[rest] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (size_t i = 0; i < 8; i++) block[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < padded; i += 64) sha1_block(h, block + i);
    for (int i = 0; i < 20; i++) out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const uint8_t *in, size_t len, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/*---- latency histogram: 1 µs buckets to 10 ms, 100 µs to 1 s, 10 ms to 61 s ----*/

#define H_FINE 10000
#define H_MID 9900
#define H_COARSE 6000
#define H_BUCKETS (H_FINE + H_MID + H_COARSE + 1)

struct hist {
    uint32_t b[H_BUCKETS];
    uint64_t n;
    int64_t max;
};

static void hist_add(struct hist *h, int64_t us) {
    if (us < 0) us = 0;
    size_t i;
    if (us < 10000) i = (size_t)us;
    else if (us < 1000000) i = H_FINE + (size_t)(us - 10000) / 100;
    else i = H_FINE + H_MID + (size_t)(us - 1000000) / 10000;
    if (i >= H_BUCKETS) i = H_BUCKETS - 1;
    h->b[i]++;
    h->n++;
    if (us > h->max) h->max = us;
}

static int64_t bucket_floor(size_t i) {
    if (i < H_FINE) return (int64_t)i;
    if (i < H_FINE + H_MID) return 10000 + (int64_t)(i - H_FINE) * 100;
    return 1000000 + (int64_t)(i - H_FINE - H_MID) * 10000;
}

/* The p-quantile (0 < p < 1) in µs, at bucket resolution; -1 when empty. */
static int64_t hist_quantile(const struct hist *h, double p) {
    if (!h->n) return -1;
    uint64_t rank = (uint64_t)ceil(p * (double)h->n), seen = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i < H_BUCKETS; i++)
        if ((seen += h->b[i]) >= rank) return bucket_floor(i) < h->max ? bucket_floor(i) : h->max;
    return h->max;
}

/*---- connections ----*/

enum ws_state { WS_IDLE, WS_CONNECTING, WS_HANDSHAKE, WS_OPEN, WS_CLOSING, WS_DONE };
enum role { ROLE_RECEIVER, ROLE_SENDER, ROLE_IDLE };

struct buf {
    uint8_t *p;
    size_t off, len, cap; /* the data is p[off..len) */
};

struct ws {
    int fd;
    enum ws_state state;
    enum role role;
    int index;         /* within its role */
    int welcomed;
    int replies;       /* --rooms-of/--watch commands not answered yet */
    int out_armed;     /* EPOLLOUT is in the interest set */
    int frag_op;       /* opcode of the fragmented message in `frag`, 0 = none */
    char name[32];
    char accept[32];   /* the Sec-WebSocket-Accept the server must answer */
    struct buf in, out, frag;
    int64_t last_seq;  /* receivers: the highest sequence number seen, for the order check */
    /* which members of its room (bit: place in the room) and which watched users (bit: distance - 1)
     * this connection heard of (named in an ack or a join event), and heard leave; see user_bit */
    uint64_t room_known, watch_known, room_left, watch_left;
};


struct stats {
    uint64_t refused, failed, closes, eofs, errors, truncated, misordered, misrouted;
    uint64_t welcomes, presence, other, frames, pings;
    uint64_t room_events, watch_events, members_listed, online_listed, refused_commands; /* joins */
    uint64_t bad_joins, dup_joins;                        /* see on_join, on_setup_reply */
    uint64_t room_leaves, watch_leaves, bad_leaves, dup_leaves; /* leaves; see on_leave */
};

/* How a protocol message (one JSON object) travels in WebSocket text frames; see app_send. */
enum framing { FRAMING_PLAIN, FRAMING_SOCKETIO };

struct options {
    const char *scenario, *host, *path, *tokens;
    enum framing framing;
    int port, pid;
    int pid2;         /* the --port2 node's pid: its CPU is reported too */
    int port2;        /* receivers connect here when set: cross-node runs against a cluster */
    long n, pairs, size, window, concurrency;
    long rooms_of, watch; /* conns: room size and users watched per connection, 0 = none */
    long stride, offset;  /* hold: generator `offset` of `stride` making one population (see user_no) */
    const char *api_key_file; /* hold: the key for POST /api/broadcast */
    double duration_s, warmup_s, deadline_s, step_s, settle_cap_s, hold_s;
    long start_rate, max_rate, p99_limit_us, bisections;
};

static struct {
    struct options o;
    int ep;
    int64_t t0, deadline;
    struct sockaddr_in addr, addr2;
    struct ws *conns;
    size_t nconns, connecting, open;
    char **tokens;                 /* --tokens: connection i sends tokens[i % ntokens] */
    size_t ntokens;
    int64_t last_rx;  /* when the last byte of any connection arrived */
    int64_t first_leave_at, last_leave_at; /* when the first and the last presence leave arrived */
    struct stats st;
    int64_t next_sample;           /* when /proc is read next */
    int64_t rss_kb, rss_peak_kb, threads, threads_peak;
    /* message accounting, indexed by sequence number */
    uint32_t *got;
    int64_t *sent_at;
    size_t seq_cap;
    uint64_t next_seq;
    uint64_t expected;             /* deliveries per message: N for fanout, 1 for pairs */
    int64_t route_mod;             /* pairs: message seq must reach receiver seq % route_mod */
    uint64_t lat_lo, lat_hi;       /* sequence numbers whose latency goes into `lat` */
    int64_t win_from, win_to;      /* deliveries received in this interval are counted in win_count */
    uint64_t win_count, delivered;
    struct hist *lat;
    char *payload;                 /* scratch for building a message */
} G;

static void ep_ctl(int op, int fd, uint32_t events, void *ptr) {
    struct epoll_event ev = {.events = events, .data.ptr = ptr};
    if (epoll_ctl(G.ep, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) die("epoll_ctl: %s", strerror(errno));
}

static void buf_reserve(struct buf *b, size_t more) {
    if (b->off && b->len + more > b->cap) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len + more > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + more) cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
}

/* Also for the buffers of an idle connection (ROLE_IDLE) once they are drained: the generator then
 * holds a few hundred buffers at a time, reused hot, instead of two per open connection, each a fresh
 * page to fault in (20 % of its CPU at 18,000 connections, CPU the server on the same machine lacked). */
static void buf_free(struct buf *b) {
    free(b->p);
    *b = (struct buf){0};
}

static void ws_finish(struct ws *c) {
    if (c->fd >= 0) {
        ep_ctl(EPOLL_CTL_DEL, c->fd, 0, NULL);
        close(c->fd);
    }
    if (c->state == WS_CONNECTING || c->state == WS_HANDSHAKE) G.connecting--;
    if (c->state == WS_OPEN || c->state == WS_CLOSING) G.open--;
    c->fd = -1;
    c->state = WS_DONE;
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->frag);
}

/* The connection broke: the server closed it or the socket failed. */
static void ws_lost(struct ws *c, const char *why) {
    if (c->state == WS_OPEN) {
        G.st.eofs++;
        if (G.st.eofs <= 5) say("%s: connection lost (%s)", c->name, why);
    } else if (c->state == WS_CONNECTING || c->state == WS_HANDSHAKE) {
        G.st.failed++;
        if (G.st.failed <= 5) say("%s: connect failed (%s)", c->name, why);
    }
    ws_finish(c);
}

static void ws_arm(struct ws *c, int want_out) {
    if (c->out_armed == want_out) return;
    c->out_armed = want_out;
    ep_ctl(EPOLL_CTL_MOD, c->fd, EPOLLIN | (want_out ? EPOLLOUT : 0), c);
}

static void ws_flush(struct ws *c) {
    while (c->out.off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out.off, c->out.len - c->out.off, MSG_NOSIGNAL);
        if (n > 0) c->out.off += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ws_arm(c, 1);
            return;
        } else {
            ws_lost(c, n < 0 ? strerror(errno) : "write returned 0");
            return;
        }
    }
    c->out.off = c->out.len = 0;
    if (c->role == ROLE_IDLE) buf_free(&c->out);
    if (c->state != WS_CONNECTING) ws_arm(c, 0);
}

/* A piece of a frame's payload: a frame is sent from up to three pieces without copying them first. */
struct piece {
    const void *p;
    size_t len;
};

/* Appends one masked client frame (FIN set) whose payload is the n pieces, in order, to c's output;
 * the caller flushes. */
static void ws_queue_pieces(struct ws *c, int opcode, const struct piece *pieces, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += pieces[i].len;
    uint8_t hdr[14];
    size_t h = 0;
    hdr[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) hdr[h++] = (uint8_t)(0x80 | len);
    else if (len < 65536) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (uint8_t)(len >> 8);
        hdr[h++] = (uint8_t)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t key = rng32();
    uint8_t mask[4] = {(uint8_t)key, (uint8_t)(key >> 8), (uint8_t)(key >> 16), (uint8_t)(key >> 24)};
    memcpy(hdr + h, mask, 4);
    h += 4;
    buf_reserve(&c->out, h + len);
    uint8_t *o = c->out.p + c->out.len;
    memcpy(o, hdr, h);
    o += h;
    size_t at = 0;
    for (int k = 0; k < n; k++) {
        const uint8_t *in = pieces[k].p;
        for (size_t i = 0; i < pieces[k].len; i++, at++) o[at] = in[i] ^ mask[at & 3];
    }
    c->out.len += h + len;
}

static void ws_send_pieces(struct ws *c, int opcode, const struct piece *pieces, int n) {
    if (c->state != WS_OPEN) return;
    int idle = c->out.off == c->out.len;
    ws_queue_pieces(c, opcode, pieces, n);
    if (idle) ws_flush(c);
}

static void ws_send(struct ws *c, int opcode, const void *data, size_t len) {
    struct piece one = {data, len};
    ws_send_pieces(c, opcode, &one, 1);
}

/* Binds connection i to loopback source address 127.0.0.(1 + i % LG_SOURCES) when the server is on
 * loopback; the port is still chosen by connect (IP_BIND_ADDRESS_NO_PORT), per source address. */
static void bind_source(int fd, const struct sockaddr_in *to, size_t i) {
    if ((ntohl(to->sin_addr.s_addr) >> 24) != 127) return;
    int one = 1;
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % LG_SOURCES));
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&from, sizeof from) < 0) die("bind 127.0.0.x: %s", strerror(errno));
}

static void ws_start(struct ws *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket: %s (raise ulimit -n)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = WS_CONNECTING;
    G.connecting++;
    const struct sockaddr_in *to = c->role == ROLE_RECEIVER && G.o.port2 ? &G.addr2 : &G.addr;
    bind_source(c->fd, to, (size_t)(c - G.conns));
    if (connect(c->fd, (const struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS) {
        ep_ctl(EPOLL_CTL_ADD, c->fd, 0, c);
        ws_lost(c, strerror(errno));
        return;
    }
    c->out_armed = 1;
    ep_ctl(EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLOUT, c);
}

/* The socket connected: send the upgrade request. */
static void ws_connected(struct ws *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        ws_lost(c, strerror(err));
        return;
    }
    uint8_t nonce[16], digest[20];
    char key[32], cat[128];
    for (int i = 0; i < 16; i++) nonce[i] = (uint8_t)rng32();
    base64(nonce, sizeof nonce, key);
    snprintf(cat, sizeof cat, "%s%s", key, ws_guid);
    sha1((const uint8_t *)cat, strlen(cat), digest);
    base64(digest, sizeof digest, c->accept);
    char req[LG_TOKEN_MAX + 512];
    const char *param = G.ntokens ? "token" : "user";
    const char *transport = G.o.framing == FRAMING_SOCKETIO ? "EIO=4&transport=websocket&" : "";
    const char *value = G.ntokens ? G.tokens[(size_t)(c - G.conns) % G.ntokens] : c->name;
    int n = snprintf(req, sizeof req,
                     "GET %s?%s%s=%s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     G.o.path, transport, param, value, G.o.host, G.o.port, key);
    c->state = WS_HANDSHAKE;
    buf_reserve(&c->out, (size_t)n);
    memcpy(c->out.p + c->out.len, req, (size_t)n);
    c->out.len += (size_t)n;
    ws_flush(c);
}

/* Finds `name` among the header lines [p, end) (case-insensitively); its trimmed value, or NULL. */
static const char *header_value(const char *p, const char *end, const char *name, size_t *vlen) {
    size_t nl = strlen(name);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ') v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Parses the handshake answer once it is complete; 1 when the connection is open. */
static int ws_handshake_done(struct ws *c) {
    const char *start = (const char *)c->in.p + c->in.off;
    size_t avail = c->in.len - c->in.off;
    const char *end = memmem(start, avail, "\r\n\r\n", 4);
    if (!end) {
        if (avail > 16384) ws_lost(c, "handshake answer too long");
        return 0;
    }
    int status = avail > 12 && strncmp(start, "HTTP/1.1 ", 9) == 0 ? atoi(start + 9) : 0;
    size_t vlen = 0;
    const char *accept = header_value(start, end, "Sec-WebSocket-Accept", &vlen);
    if (status != 101 || !accept || vlen != strlen(c->accept) || memcmp(accept, c->accept, vlen) != 0) {
        if (status == 503) {
            G.st.refused++;
            ws_finish(c);
        } else {
            char why[64];
            snprintf(why, sizeof why, status == 101 ? "bad Sec-WebSocket-Accept" : "HTTP status %d", status);
            ws_lost(c, why);
        }
        return 0;
    }
    c->in.off += (size_t)(end + 4 - start);
    c->state = WS_OPEN;
    G.connecting--;
    G.open++;
    return 1;
}

/* Parses a non-negative decimal at *p, advancing it; -1 if there is none. */
static int64_t parse_num(const char **p, const char *end) {
    int64_t v = 0;
    const char *s = *p;
    while (s < end && *s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    if (s == *p) return -1;
    *p = s;
    return v;
}

/* A `message` delivery: checks its data string and accounts for it. */
static void on_delivery(struct ws *c, const char *msg, size_t len, int64_t now) {
    const char *end = msg + len;
    const char *d = memmem(msg, len, "\"data\":\"", 8);
    if (!d) {
        G.st.truncated++;
        return;
    }
    const char *data = d + 8, *p = data;
    const char *q = memchr(data, '"', (size_t)(end - data));
    if (!q || end - p < 4 || memcmp(p, "s:", 2) != 0) {
        G.st.truncated++;
        return;
    }
    p += 2;
    int64_t seq = parse_num(&p, q);
    if (seq < 0 || q - p < 3 || memcmp(p, ":t:", 3) != 0) {
        G.st.truncated++;
        return;
    }
    p += 3;
    int64_t ts = parse_num(&p, q);
    if (ts < 0 || (long)(q - data) != G.o.size || q[-1] != 'x' || (uint64_t)seq >= G.next_seq) {
        G.st.truncated++;
        return;
    }
    if (seq <= c->last_seq) G.st.misordered++;
    c->last_seq = seq;
    if (G.route_mod && (int64_t)c->index != seq % G.route_mod) G.st.misrouted++;
    G.got[seq]++;
    G.delivered++;
    if ((uint64_t)seq >= G.lat_lo && (uint64_t)seq < G.lat_hi) hist_add(G.lat, now - ts);
    if (now >= G.win_from && now < G.win_to) G.win_count++;
}

/* How many names the JSON array after `key` (e.g. "\"members\":[") holds; names have no quotes. */
static uint64_t list_count(const char *msg, size_t len, const char *key) {
    const char *p = memmem(msg, len, key, strlen(key)), *end = msg + len;
    uint64_t quotes = 0;
    for (p = p ? p + strlen(key) : end; p < end && *p != ']'; p++) quotes += *p == '"';
    return quotes / 2;
}

static void app_send(struct ws *c, const char *json, size_t len);

/* The user number of a conns or hold connection: it is user c<user_no>. One generator's population is
 * c0..c<n-1>; with --stride P --offset O (hold) it is one of P generators whose users together make
 * c0..c<nP-1>, this one's being O, O+P, O+2P...: rooms g<u/K> of consecutive users then have members
 * in every generator, so on every node of the cluster. */
static long user_no(const struct ws *c) { return (long)c->index * G.o.stride + G.o.offset; }
static long population(void) { return G.o.n * G.o.stride; }

/* --rooms-of, --watch: connection u's join (room g<u/K>) and watch (users c<u+1>..c<u+W>, modulo the
 * population), sent when it is welcomed. */
static void presence_setup(struct ws *c) {
    char cmd[64 + 40 * 64];
    long u = user_no(c);
    if (G.o.rooms_of > 0) {
        int n = snprintf(cmd, sizeof cmd, "{\"type\":\"join\",\"room\":\"g%ld\",\"id\":1}", u / G.o.rooms_of);
        app_send(c, cmd, (size_t)n);
        c->replies++;
    }
    if (G.o.watch > 0) {
        int n = snprintf(cmd, sizeof cmd, "{\"type\":\"watch\",\"id\":2,\"users\":[");
        for (long j = 1; j <= G.o.watch && (size_t)n < sizeof cmd - 40; j++)
            n += snprintf(cmd + n, sizeof cmd - (size_t)n, "%s\"c%ld\"", j > 1 ? "," : "", (u + j) % population());
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, "]}");
        app_send(c, cmd, (size_t)n);
        c->replies++;
    }
}

/* Which bit user c<v> is on connection c's masks (struct ws): its place in c's room (room), or its
 * distance - 1 among the users c watches (!room); -1 if it is neither, or c itself. */
static long user_bit(const struct ws *c, int64_t v, int room) {
    long me = user_no(c), total = population(), k = G.o.rooms_of;
    if (v < 0 || v >= total || v == me) return -1;
    if (room) return k > 0 && k <= 64 && v / k == me / k ? v % k : -1;
    long j = (long)((v - me + total) % total);
    return G.o.watch <= 64 && j >= 1 && j <= G.o.watch ? j - 1 : -1;
}

/* The user number of the name "c<digits>" at *p (after its opening quote), advancing *p past the
 * closing quote; -1 if it is not such a name. */
static int64_t user_name(const char **p, const char *end) {
    const char *s = *p;
    if (s >= end || *s != 'c') return -1;
    s++;
    int64_t v = parse_num(&s, end);
    if (v < 0 || s >= end || *s != '"') return -1;
    *p = s + 1;
    return v;
}

/* Sets user v's bit in *mask (user_bit): *bad when it is nobody c should hear of, *dup when it is set. */
static void mark(const struct ws *c, uint64_t *mask, int64_t v, int room, uint64_t *bad, uint64_t *dup) {
    long bit = user_bit(c, v, room);
    if (bit < 0) (*bad)++;
    else if (*mask >> bit & 1) (*dup)++;
    else *mask |= (uint64_t)1 << bit;
}

/* The user in a presence event, -1 if there is none (or it is not one of the generators' names). */
static int64_t event_user(const char *msg, size_t len) {
    const char *u = memmem(msg, len, "\"user\":\"", 8), *p = u ? u + 8 : msg + len;
    return user_name(&p, msg + len);
}

/* A room join or leave event for c names c's room, "g<u/K>". */
static int own_room(const struct ws *c, const char *msg, size_t len) {
    char name[48];
    int nl = snprintf(name, sizeof name, "\"room\":\"g%ld\"", G.o.rooms_of > 0 ? user_no(c) / G.o.rooms_of : -1);
    return memmem(msg, len, name, (size_t)nl) != NULL;
}

/* A reply to presence_setup's commands: the names it lists are counted for the check, and each one
 * marked known on the connection (the join's `members`, itself aside, and the watch's `online`). */
static void on_setup_reply(struct ws *c, const char *msg, size_t len, int error) {
    if (c->replies > 0) c->replies--;
    if (error) G.st.refused_commands++; /* --presence off or global: no watch */
    G.st.members_listed += list_count(msg, len, "\"members\":[");
    G.st.online_listed += list_count(msg, len, "\"online\":[");
    for (int room = 1; room >= 0; room--) {
        const char *key = room ? "\"members\":[" : "\"online\":[", *end = msg + len;
        const char *p = memmem(msg, len, key, strlen(key));
        for (p = p ? p + strlen(key) : end; p < end && *p != ']';) {
            if (*p++ != '"') continue;
            int64_t v = user_name(&p, end);
            if (!(room && v == user_no(c))) mark(c, room ? &c->room_known : &c->watch_known, v, room, &G.st.bad_joins, &G.st.dup_joins);
        }
    }
}

/* A presence `join`: the user is marked known, as one named in an ack. */
static void on_join(struct ws *c, const char *msg, size_t len, int room) {
    if (room) G.st.room_events++;
    else G.st.watch_events++;
    int64_t v = room && !own_room(c, msg, len) ? -1 : event_user(msg, len);
    mark(c, room ? &c->room_known : &c->watch_known, v, room, &G.st.bad_joins, &G.st.dup_joins);
}

/* A presence `leave` (hold): which member of c's room or which of its watched users left, one bit
 * each, checked against the dead node's users once the node is killed (hold_leaves_poll). Any other
 * user, a room other than c's, or the same bit twice is counted as a bad or duplicate leave. */
static void on_leave(struct ws *c, const char *msg, size_t len, int room, int64_t now) {
    if (room) G.st.room_leaves++;
    else G.st.watch_leaves++;
    if (!G.first_leave_at) G.first_leave_at = now;
    G.last_leave_at = now;
    int64_t v = room && !own_room(c, msg, len) ? -1 : event_user(msg, len);
    mark(c, room ? &c->room_left : &c->watch_left, v, room, &G.st.bad_leaves, &G.st.dup_leaves);
}

/* One complete text message from the server. */
static void on_text(struct ws *c, const char *msg, size_t len, int64_t now) {
    static const char prefix[] = "{\"type\":\"";
    const char *type = len > sizeof prefix && memcmp(msg, prefix, sizeof prefix - 1) == 0 ? msg + sizeof prefix - 1 : NULL;
    if (!type) { /* another key order: look for the type anywhere */
        const char *t = memmem(msg, len, "\"type\":\"", 8);
        type = t ? t + 8 : "";
    }
    if (strncmp(type, "message\"", 8) == 0) on_delivery(c, msg, len, now);
    else if (strncmp(type, "welcome\"", 8) == 0) {
        if (!c->welcomed) {
            G.st.welcomes++;
            c->welcomed = 1;
            if (c->role == ROLE_IDLE) presence_setup(c);
        }
    } else if (strncmp(type, "presence\"", 9) == 0) {
        G.st.presence++;
        int room = memmem(msg, len, "\"room\":", 7) != NULL;
        if (memmem(msg, len, "\"event\":\"leave\"", 15)) on_leave(c, msg, len, room, now);
        else on_join(c, msg, len, room);
    } else if (c->replies && (strncmp(type, "ack\"", 4) == 0 || strncmp(type, "error\"", 6) == 0))
        on_setup_reply(c, msg, len, type[0] == 'e');
    else if (strncmp(type, "error\"", 6) == 0) {
        if (++G.st.errors <= 5) say("%s: error from server: %.*s", c->name, (int)(len < 200 ? len : 200), msg);
    } else G.st.other++;
}

/*---- framing: protocol messages in WebSocket text frames ----*/

/* plain: a text frame is one protocol message (switchboard, the ws and websocket peers).
 * socketio: Engine.IO v4 and Socket.IO v5 packets over the WebSocket transport (the Socket.IO peer,
 * bench/peers/socketio-redis-server.js, either adapter). The server opens with `0{"sid":..}` (Engine.IO open), the
 * client answers `40` (Socket.IO CONNECT to the namespace "/") and the server acknowledges with
 * `40{"sid":..}`; a protocol message is the event `42["msg",{..}]` in either direction; the server's
 * Engine.IO ping `2` must get a pong `3` within its pingTimeout. The peer's welcome arrives as such an
 * event once its connection handler has run (the socket has joined its user's room), which is when
 * switchboard's welcome arrives too: registered and reachable. */
static const char sio_event_head[] = "42[\"msg\",", sio_event_tail[] = "]";

/* Sends the protocol message `json` on c. */
static void app_send(struct ws *c, const char *json, size_t len) {
    if (G.o.framing == FRAMING_PLAIN) {
        ws_send(c, 0x1, json, len);
        return;
    }
    struct piece event[3] = {{sio_event_head, sizeof sio_event_head - 1}, {json, len}, {sio_event_tail, 1}};
    ws_send_pieces(c, 0x1, event, 3);
}

/* The length of an event's argument list `{..}` or `{..},"OFFSET"` without the offset: with connection
 * state recovery on, the server appends each broadcast's stream offset (`1700000000000-0`) as a last
 * argument, which is no part of the protocol message. */
static size_t sio_strip_offset(const char *a, size_t len) {
    if (len < 4 || a[len - 1] != '"') return len;
    size_t i = len - 1;
    while (i > 0 && a[i - 1] != '"') i--;
    return i >= 3 && a[i - 2] == ',' && a[i - 3] == '}' ? i - 2 : len;
}

/* A Socket.IO packet (after the Engine.IO message type `4`) from the server. */
static void sio_packet(struct ws *c, const char *p, size_t len, int64_t now) {
    const char *args = sio_event_head + 2; /* `["msg",`: what follows the EVENT packet type 2 */
    size_t head = strlen(args);
    if (len > 1 + head + 1 && p[0] == '2' && memcmp(p + 1, args, head) == 0 && p[len - 1] == ']') {
        on_text(c, p + 1 + head, sio_strip_offset(p + 1 + head, len - 1 - head - 1), now);
    } else if (len >= 1 && (p[0] == '1' || p[0] == '4')) { /* DISCONNECT, CONNECT_ERROR: the session is over */
        if (++G.st.errors <= 5) say("%s: Socket.IO %s: %.*s", c->name, p[0] == '1' ? "disconnect" : "connect error",
                                    (int)(len < 200 ? len : 200), p);
    } else G.st.other++; /* CONNECT's acknowledgement, other events */
}

/* One complete text message from the server, unwrapped according to --framing. */
static void app_text(struct ws *c, const char *msg, size_t len, int64_t now) {
    if (G.o.framing == FRAMING_PLAIN) {
        on_text(c, msg, len, now);
        return;
    }
    switch (len ? msg[0] : '\0') {
    case '0': /* Engine.IO open: join the default namespace */
        ws_send(c, 0x1, "40", 2);
        break;
    case '2': /* Engine.IO ping */
        G.st.pings++;
        ws_send(c, 0x1, "3", 1);
        break;
    case '4':
        sio_packet(c, msg + 1, len - 1, now);
        break;
    default: /* Engine.IO close (the WebSocket close follows), noop, anything else */
        G.st.other++;
    }
}

/* One complete frame from the server. Returns 0 if the connection was closed. */
static int on_frame(struct ws *c, int fin, int op, const uint8_t *data, size_t len, int64_t now) {
    G.st.frames++;
    switch (op) {
    case 0x0: /* continuation */
    case 0x1:
    case 0x2:
        if (op && c->frag_op) G.st.truncated++; /* a new message inside a fragmented one */
        if (op && fin) {
            if (op == 1) app_text(c, (const char *)data, len, now);
            return 1;
        }
        if (op) c->frag_op = op, c->frag.len = c->frag.off = 0;
        if (!c->frag_op) return 1; /* an orphan continuation */
        buf_reserve(&c->frag, len);
        memcpy(c->frag.p + c->frag.len, data, len);
        c->frag.len += len;
        if (fin) {
            if (c->frag_op == 1) app_text(c, (const char *)c->frag.p, c->frag.len, now);
            c->frag_op = 0;
        }
        return 1;
    case 0x8: /* close: echo the code, then the server ends the TCP connection */
        if (c->state == WS_OPEN) {
            unsigned code = len >= 2 ? (unsigned)data[0] << 8 | data[1] : 1005;
            if (++G.st.closes <= 5) say("%s: server closed with %u %.*s", c->name, code, (int)(len > 2 ? len - 2 : 0), data + 2);
            ws_send(c, 0x8, data, len >= 2 ? 2 : 0);
            if (c->state == WS_OPEN) c->state = WS_CLOSING;
        }
        return 1;
    case 0x9:
        G.st.pings++;
        ws_send(c, 0xA, data, len);
        return c->state != WS_DONE;
    default:
        return 1;
    }
}

/* Parses every complete frame in c->in. */
static void ws_parse(struct ws *c, int64_t now) {
    while (c->state == WS_OPEN || c->state == WS_CLOSING) {
        const uint8_t *p = c->in.p + c->in.off;
        size_t avail = c->in.len - c->in.off;
        if (avail < 2) break;
        size_t hdr = 2;
        uint64_t len = p[1] & 0x7F;
        if (len == 126) {
            if (avail < 4) break;
            len = (uint64_t)p[2] << 8 | p[3];
            hdr = 4;
        } else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
            hdr = 10;
        }
        if (p[1] & 0x80) { /* servers must not mask */
            ws_lost(c, "masked server frame");
            return;
        }
        if (len > (uint64_t)64 << 20) {
            ws_lost(c, "frame over 64 MiB");
            return;
        }
        if (avail < hdr + len) {
            buf_reserve(&c->in, hdr + (size_t)len - avail); /* room for the whole frame */
            break;
        }
        c->in.off += hdr + (size_t)len;
        if (!on_frame(c, p[0] & 0x80, p[0] & 0x0F, p + hdr, (size_t)len, now)) return;
    }
    if (c->state != WS_DONE && c->in.off == c->in.len) c->in.off = c->in.len = 0;
}

static void ws_readable(struct ws *c) {
    if (c->in.cap - c->in.len < LG_READ_MIN) buf_reserve(&c->in, LG_READ_MIN);
    size_t room = c->in.cap - c->in.len;
    ssize_t n = recv(c->fd, c->in.p + c->in.len, room, 0);
    if (n == 0) {
        if (c->state == WS_CLOSING) ws_finish(c);
        else ws_lost(c, "EOF");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) ws_lost(c, strerror(errno));
        return;
    }
    c->in.len += (size_t)n;
    if ((size_t)n == room && c->in.cap < LG_READ_MAX) buf_reserve(&c->in, c->in.cap); /* a busy one: read more at once */
    int64_t now = now_us();
    G.last_rx = now;
    if (c->state == WS_HANDSHAKE && !ws_handshake_done(c)) return;
    ws_parse(c, now);
    if (c->role == ROLE_IDLE && c->state != WS_DONE && c->in.off == c->in.len) buf_free(&c->in);
}

static void ws_event(struct ws *c, uint32_t events) {
    if (c->state == WS_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        ws_connected(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ws_readable(c);
    if (c->state != WS_DONE && (events & EPOLLOUT)) ws_flush(c);
}

/*---- /healthz probe (its own thread) and /proc sampling ----*/

/* The probe runs on a thread of its own: at the top rates the load loop fills its core, and a probe
 * answered by the server but read late by that loop would time the generator, not the server. The
 * thread sleeps between probes, so the load still has one core to itself. */
enum probe_result { PROBE_OK, PROBE_FAIL, PROBE_ABANDONED };

static struct {
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* CLOCK_MONOTONIC: signalled to stop */
    int started, stop;
    int64_t run_from;     /* probes started from then on count in run_max_us too */
    uint64_t probes, fail, ok;
    int64_t max_us, run_max_us;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int probe_stopping(void) {
    pthread_mutex_lock(&P.lock);
    int stop = P.stop;
    pthread_mutex_unlock(&P.lock);
    return stop;
}

/* Waits until fd has `events` or `until`; 1 ready, 0 timed out, -1 asked to stop. */
static int probe_wait(int fd, short events, int64_t until) {
    for (;;) {
        int64_t left = until - now_us();
        if (left <= 0) return 0;
        if (probe_stopping()) return -1;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 50000 ? 50 : (int)(left / 1000) + 1);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return 0;
    }
}

/* The request `req` (with Connection: close) on fd, a fresh non-blocking socket, to the server; the
 * reply's first bytes go to buf (NUL-terminated). PROBE_OK when the answer is 200. */
static enum probe_result http_exchange(int fd, const char *req, size_t n, int64_t until, char *buf, size_t cap) {
    int w = connect(fd, (struct sockaddr *)&G.addr, sizeof G.addr) == 0 || errno == EINPROGRESS
                ? probe_wait(fd, POLLOUT, until) : 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (w <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) return w < 0 ? PROBE_ABANDONED : PROBE_FAIL;
    if (send(fd, req, n, MSG_NOSIGNAL) != (ssize_t)n) return PROBE_FAIL;
    size_t got = 0;
    while (got < cap - 1) {
        if ((w = probe_wait(fd, POLLIN, until)) <= 0) return w < 0 ? PROBE_ABANDONED : PROBE_FAIL;
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r == 0) break;
        if (r < 0 && errno != EAGAIN && errno != EINTR) return PROBE_FAIL;
        if (r > 0) buf[got += (size_t)r] = '\0';
    }
    return strncmp(buf, "HTTP/1.1 200", 12) == 0 || strncmp(buf, "HTTP/1.0 200", 12) == 0 ? PROBE_OK : PROBE_FAIL;
}

/* GET /healthz on a fresh connection. */
static enum probe_result probe_exchange(int fd, int64_t until, char *buf, size_t cap) {
    char req[256];
    int n = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", G.o.host, G.o.port);
    return http_exchange(fd, req, (size_t)n, until, buf, cap);
}

/* One probe within LG_PROBE_TIMEOUT_US; *took_us is how long it took. A probe cut short by the end
 * of the run fails if it was already unanswered for a probe period, else it does not count. */
static enum probe_result probe_once(int64_t *took_us, int quiet) {
    int64_t start = now_us();
    char buf[1024] = "";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s", strerror(errno));
    enum probe_result r = probe_exchange(fd, start + LG_PROBE_TIMEOUT_US, buf, sizeof buf);
    close(fd);
    *took_us = now_us() - start;
    if (r == PROBE_ABANDONED && *took_us > LG_PROBE_PERIOD_US) r = PROBE_FAIL;
    if (r == PROBE_FAIL && !quiet) say("healthz probe failed after %.1f ms: %.60s", (double)*took_us / 1000, buf);
    return r;
}

static void probe_record(enum probe_result r, int64_t started, int64_t took) {
    if (r == PROBE_ABANDONED) return;
    P.probes++;
    if (r == PROBE_FAIL) {
        P.fail++;
        return;
    }
    P.ok++;
    if (took > P.max_us) P.max_us = took;
    if (P.run_from && started >= P.run_from && took > P.run_max_us) P.run_max_us = took;
}

static void *probe_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&P.lock);
    while (!P.stop) {
        pthread_mutex_unlock(&P.lock);
        int64_t started = now_us(), took = 0;
        enum probe_result r = probe_once(&took, 0);
        pthread_mutex_lock(&P.lock);
        probe_record(r, started, took);
        int64_t next = started + LG_PROBE_PERIOD_US;
        struct timespec at = {.tv_sec = next / 1000000, .tv_nsec = (long)(next % 1000000) * 1000};
        while (!P.stop && pthread_cond_timedwait(&P.wake, &P.lock, &at) != ETIMEDOUT) continue;
    }
    pthread_mutex_unlock(&P.lock);
    return NULL;
}

static void probe_thread_start(void) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&P.wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&P.thread, NULL, probe_main, NULL) != 0) die("pthread_create failed");
    P.started = 1;
}

static void probe_thread_stop(void) {
    if (!P.started) return;
    pthread_mutex_lock(&P.lock);
    P.stop = 1;
    pthread_cond_signal(&P.wake);
    pthread_mutex_unlock(&P.lock);
    pthread_join(P.thread, NULL);
    P.started = 0;
}

/* From now on the probes also count in healthz_run_max_ms: the connect phase is over. */
static void probe_mark_run(void) {
    pthread_mutex_lock(&P.lock);
    P.run_from = now_us();
    pthread_mutex_unlock(&P.lock);
}

/* VmRSS (kB) and Threads of the server, from /proc/PID/status. */
static void sample_server(void) {
    if (!G.o.pid) return;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", G.o.pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) G.rss_kb = atol(line + 6);
        else if (strncmp(line, "Threads:", 8) == 0) G.threads = atol(line + 8);
    }
    fclose(f);
    if (G.rss_kb > G.rss_peak_kb) G.rss_peak_kb = G.rss_kb;
    if (G.threads > G.threads_peak) G.threads_peak = G.threads;
}

/* A server's CPU time (utime + stime) in seconds, from /proc/PID/stat; -1 if unknown. */
static double server_cpu_s(int pid) {
    if (!pid) return -1;
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* fields after the command name */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds all processes of the machine have run (user, nice, system), from /proc/stat. Interrupt
 * and softirq time (loopback TCP delivery) and steal are left out: they are not charged to processes. */
static double machine_busy_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7])
              : 0;
    if (f) fclose(f);
    if (n != 8) return -1;
    return (double)(v[0] + v[1] + v[2]) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU use over an interval: the server's, this generator's and everything else's (100 = one core). */
struct cpu_mark {
    double server, server2, self, machine, steal;
    int64_t t;
};

/* CPU seconds the hypervisor gave to others (steal), from /proc/stat. */
static double steal_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                       &v[6], &v[7])
              : 0;
    if (f) fclose(f);
    return n == 8 ? (double)v[7] / (double)sysconf(_SC_CLK_TCK) : 0;
}

static struct cpu_mark cpu_mark(void) {
    return (struct cpu_mark){server_cpu_s(G.o.pid), server_cpu_s(G.o.pid2), self_cpu_s(), machine_busy_s(), steal_s(), now_us()};
}

static void print_cpu(const struct cpu_mark *a, const struct cpu_mark *b) {
    double secs = (double)(b->t - a->t) / 1e6;
    if (secs <= 0) secs = 1e-9;
    double server = a->server >= 0 && b->server >= 0 ? b->server - a->server : 0, self = b->self - a->self;
    double server2 = a->server2 >= 0 && b->server2 >= 0 ? b->server2 - a->server2 : 0;
    double others = a->machine >= 0 && b->machine >= 0 ? b->machine - a->machine - server - server2 - self : -secs;
    printf(" server_cpu_pct=%.0f gen_cpu_pct=%.0f others_cpu_pct=%.0f steal_pct=%.0f", 100 * server / secs,
           100 * self / secs, others < 0 ? 0 : 100 * others / secs, 100 * (b->steal - a->steal) / secs);
    if (G.o.pid2) printf(" server2_cpu_pct=%.0f", 100 * server2 / secs);
}

/*---- the loop ----*/

/* hold: the commands arriving on stdin. The loop only buffers them; scenario_hold runs each complete
 * line, so that no command runs inside another's wait. */
static struct {
    char buf[4096];
    size_t len;
    int eof;
} CMD;

static void cmd_readable(void) {
    while (CMD.len < sizeof CMD.buf) {
        ssize_t n = read(0, CMD.buf + CMD.len, sizeof CMD.buf - CMD.len);
        if (n > 0) CMD.len += (size_t)n;
        else if (n < 0 && errno == EINTR) continue;
        else {
            if (n == 0) { /* the driver is gone: stop listening (a FIFO's hang-up would wake every turn) */
                CMD.eof = 1;
                ep_ctl(EPOLL_CTL_DEL, 0, 0, NULL);
            }
            return;
        }
    }
}

/* Waits up to timeout_ms for events and handles them, then reads /proc if a second has passed. */
static void loop_once(int timeout_ms) {
    static struct epoll_event evs[LG_MAX_EVENTS];
    int n = epoll_wait(G.ep, evs, LG_MAX_EVENTS, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == &CMD) cmd_readable();
        else ws_event(evs[i].data.ptr, evs[i].events);
    }
    int64_t now = now_us();
    if (now >= G.next_sample) {
        G.next_sample = now + LG_PROBE_PERIOD_US;
        sample_server();
    }
}

static int past_deadline(void) { return now_us() >= G.deadline; }

/* Welcomed, and its --rooms-of/--watch commands answered. */
static int ready(const struct ws *c) { return c->welcomed && c->replies == 0; }

/* Opens conns [from, to) with at most --concurrency handshakes at once, until each is open and
 * welcomed or failed, or cap_us passes. Returns the time it took in µs. */
static int64_t connect_range(size_t from, size_t to, int64_t cap_us) {
    int64_t start = now_us(), until = start + cap_us;
    size_t next = from, settled = from; /* every connection below `settled` is welcomed or done, for good */
    for (;;) {
        while (next < to && G.connecting < (size_t)G.o.concurrency) ws_start(&G.conns[next++]);
        while (settled < next && (G.conns[settled].state == WS_DONE || ready(&G.conns[settled]))) settled++;
        size_t pending = to - next;
        for (size_t i = settled; i < next; i++) { /* not from `from`: that made 18,000 connections quadratic */
            struct ws *c = &G.conns[i];
            if (c->state != WS_DONE && !ready(c)) pending++;
        }
        if (!pending || now_us() >= until || past_deadline()) break;
        loop_once(2);
    }
    return now_us() - start;
}

/* Handles traffic until nothing has arrived for quiet_ms (welcome and presence floods), or cap_us. */
static int64_t settle(long quiet_ms, int64_t cap_us) {
    int64_t start = now_us(), until = start + cap_us;
    G.last_rx = start;
    while (now_us() - G.last_rx < quiet_ms * 1000 && now_us() < until && !past_deadline()) loop_once(5);
    return now_us() - start;
}

static void seq_reserve(uint64_t seq) {
    if (seq < G.seq_cap) return;
    size_t cap = G.seq_cap ? G.seq_cap * 2 : 65536;
    while (cap <= seq) cap *= 2;
    G.got = xrealloc(G.got, cap * sizeof *G.got);
    G.sent_at = xrealloc(G.sent_at, cap * sizeof *G.sent_at);
    memset(G.got + G.seq_cap, 0, (cap - G.seq_cap) * sizeof *G.got);
    G.seq_cap = cap;
}

/* Writes message seq's data string, sent at `now`, to data: "s:SEQ:t:NOW:" padded with 'x' to --size. */
static void message_data(char *data, uint64_t seq, int64_t now) {
    int d = snprintf(data, 64, "s:%" PRIu64 ":t:%" PRId64 ":", seq, now);
    memset(data + d, 'x', (size_t)(G.o.size - d));
}

/* Sends message number seq from `from`: a broadcast, or a send to user `to`. */
static void send_seq(struct ws *from, const char *to, uint64_t seq) {
    seq_reserve(seq);
    int64_t now = now_us();
    G.sent_at[seq] = now;
    int head = to ? snprintf(G.payload, 128, "{\"type\":\"send\",\"to\":\"%s\",\"data\":\"", to)
                  : snprintf(G.payload, 128, "{\"type\":\"broadcast\",\"data\":\"");
    char *data = G.payload + head;
    message_data(data, seq, now);
    memcpy(data + G.o.size, "\"}", 2);
    app_send(from, G.payload, (size_t)head + (size_t)G.o.size + 2);
}

static void send_message(struct ws *from, const char *to) { send_seq(from, to, G.next_seq++); }

static uint64_t lost_deliveries(uint64_t lo, uint64_t hi) {
    uint64_t lost = 0;
    for (uint64_t s = lo; s < hi; s++) lost += G.got[s] < G.expected ? G.expected - G.got[s] : 0;
    return lost;
}

/* Connection-level summary fields common to every scenario. */
static void print_common(void) {
    probe_thread_stop();
    char max_all[32] = "none", max_run[32] = "none"; /* "none": no probe was answered */
    if (P.ok) snprintf(max_all, sizeof max_all, "%.1f", (double)P.max_us / 1000.0);
    if (P.run_max_us) snprintf(max_run, sizeof max_run, "%.1f", (double)P.run_max_us / 1000.0);
    printf(" refused=%" PRIu64 " connect_failed=%" PRIu64 " server_closes=%" PRIu64 " eofs=%" PRIu64 " errors=%" PRIu64
           " truncated=%" PRIu64 " misordered=%" PRIu64 " misrouted=%" PRIu64 " presence_frames=%" PRIu64 " pings=%" PRIu64
           " healthz_probes=%" PRIu64 " healthz_fail=%" PRIu64 " healthz_max_ms=%s healthz_run_max_ms=%s"
           " rss_peak_kb=%" PRId64
           " threads_peak=%" PRId64 " timed_out=%d",
           G.st.refused, G.st.failed, G.st.closes, G.st.eofs, G.st.errors, G.st.truncated, G.st.misordered,
           G.st.misrouted, G.st.presence, G.st.pings, P.probes, P.fail, max_all, max_run, G.rss_peak_kb,
           G.threads_peak, past_deadline());
}

/* Opens `count` connections named prefix0.. with `role`, appended to G.conns. */
static void add_conns(const char *prefix, size_t count, enum role role) {
    G.conns = xrealloc(G.conns, (G.nconns + count) * sizeof *G.conns);
    for (size_t i = 0; i < count; i++) {
        struct ws *c = &G.conns[G.nconns + i];
        *c = (struct ws){.fd = -1, .role = role, .index = (int)i, .last_seq = -1};
        snprintf(c->name, sizeof c->name, "%s%zu", prefix, i);
    }
    G.nconns += count;
}

static size_t count_open(void) {
    size_t n = 0;
    for (size_t i = 0; i < G.nconns; i++) n += G.conns[i].state == WS_OPEN;
    return n;
}

static size_t count_welcomed(void) {
    size_t n = 0;
    for (size_t i = 0; i < G.nconns; i++) n += G.conns[i].welcomed && G.conns[i].state == WS_OPEN;
    return n;
}

/*---- scenarios ----*/

static int scenario_fanout(void) {
    long n = G.o.n;
    add_conns("r", (size_t)n, ROLE_RECEIVER);
    add_conns("s", 1, ROLE_SENDER);
    struct ws *sender = &G.conns[n];
    int64_t took = connect_range(0, (size_t)n + 1, 8000000);
    size_t ok = count_welcomed();
    int64_t settled = settle(200, 3000000);
    probe_mark_run();
    say("fanout: %zu/%ld connected in %.0f ms, settled in %.0f ms", ok, n + 1, (double)took / 1000, (double)settled / 1000);
    if (ok != (size_t)n + 1) {
        printf("RESULT scenario=fanout n=%ld size=%ld ok=0 connected=%zu", n, G.o.size, ok);
        print_common();
        printf("\n");
        return 1;
    }
    G.expected = (uint64_t)n;
    uint64_t oldest = 0;
    int64_t start = now_us(), t_measure = start + (int64_t)(G.o.warmup_s * 1e6);
    int64_t t_end = t_measure + (int64_t)(G.o.duration_s * 1e6);
    G.lat_lo = UINT64_MAX;
    G.lat_hi = UINT64_MAX;
    G.win_from = t_measure;
    G.win_to = t_end;
    struct cpu_mark cpu0 = {0};
    uint64_t stale = 0;
    int measuring = 0;
    while (!past_deadline()) {
        int64_t now = now_us();
        if (!measuring && now >= t_measure) {
            measuring = 1;
            G.lat_lo = G.next_seq;
            cpu0 = cpu_mark();
        }
        if (now >= t_end) break;
        while (oldest < G.next_seq && (G.got[oldest] >= G.expected || now - G.sent_at[oldest] > LG_STALE_US)) {
            if (G.got[oldest] < G.expected) stale++;
            oldest++;
        }
        while (sender->state == WS_OPEN && G.next_seq - oldest < (uint64_t)G.o.window &&
               sender->out.len - sender->out.off < LG_OUT_BACKLOG)
            send_message(sender, NULL);
        if (sender->state != WS_OPEN) break;
        loop_once(1);
    }
    int64_t t_stop = now_us();
    struct cpu_mark cpu1 = cpu_mark();
    G.lat_hi = G.next_seq;
    uint64_t sent = G.next_seq, measured_msgs = G.lat_hi - G.lat_lo;
    /* drain: wait for what is in flight */
    int64_t drain_until = now_us() + 3000000;
    while (oldest < G.next_seq && now_us() < drain_until && !past_deadline()) {
        while (oldest < G.next_seq && G.got[oldest] >= G.expected) oldest++;
        loop_once(2);
    }
    double secs = (double)((t_stop < t_end ? t_stop : t_end) - t_measure) / 1e6;
    uint64_t lost = lost_deliveries(0, sent);
    say("fanout %ld x %ld B: %.0f deliveries/s, p99 %.2f ms, lost %" PRIu64, n, G.o.size,
        (double)G.win_count / secs, (double)hist_quantile(G.lat, 0.99) / 1000, lost);
    printf("RESULT scenario=fanout n=%ld size=%ld window=%ld ok=%d seconds=%.2f messages_sent=%" PRIu64
           " messages_measured=%" PRIu64 " deliveries=%" PRIu64 " deliveries_per_s=%.0f p50_ms=%.3f p99_ms=%.3f"
           " max_ms=%.3f lost=%" PRIu64 " stale=%" PRIu64 " connect_ms=%.0f settle_ms=%.0f",
           n, G.o.size, G.o.window, lost == 0 && secs > 0, secs, sent, measured_msgs, G.win_count,
           secs > 0 ? (double)G.win_count / secs : 0, (double)hist_quantile(G.lat, 0.5) / 1000,
           (double)hist_quantile(G.lat, 0.99) / 1000, (double)G.lat->max / 1000, lost, stale, (double)took / 1000,
           (double)settled / 1000);
    print_cpu(&cpu0, &cpu1);
    print_common();
    printf("\n");
    return 0;
}

struct step {
    long rate;
    int64_t p50, p99, max;
    uint64_t sent, late;
    double achieved;
    int pass;
};

/* One pairs step at `rate` messages/s in total for step_s seconds, then a drain. */
static struct step pairs_step(long rate, double step_s, struct hist *h) {
    long p = G.o.pairs;
    struct step s = {.rate = rate};
    memset(h, 0, sizeof *h);
    G.lat = h;
    uint64_t lo = G.next_seq;
    G.lat_lo = lo;
    G.lat_hi = UINT64_MAX;
    int64_t start = now_us(), end = start + (int64_t)(step_s * 1e6);
    uint64_t due = 0, sent = 0;
    while (!past_deadline()) {
        int64_t now = now_us();
        if (now >= end) break;
        due = (uint64_t)((double)(now - start) * (double)rate / 1e6) + 1;
        while (sent < due) {
            struct ws *from = &G.conns[G.next_seq % (uint64_t)p];
            struct ws *to = &G.conns[(size_t)p + G.next_seq % (uint64_t)p];
            if (from->out.len - from->out.off > LG_OUT_BACKLOG) break; /* the server is not reading */
            send_message(from, to->name);
            sent++;
        }
        loop_once(1);
    }
    uint64_t hi = G.next_seq;
    G.lat_hi = hi;
    s.sent = hi - lo;
    s.achieved = (double)s.sent / step_s;
    int64_t drain_until = now_us() + 3000000;
    while (h->n < hi - lo && now_us() < drain_until && !past_deadline()) loop_once(2); /* h counts [lo, hi) */
    s.late = lost_deliveries(lo, hi);
    s.p50 = hist_quantile(h, 0.5);
    s.p99 = hist_quantile(h, 0.99);
    s.max = h->max;
    s.pass = s.late == 0 && s.p99 >= 0 && s.p99 < G.o.p99_limit_us && s.achieved >= 0.95 * (double)rate &&
             G.st.eofs == 0 && G.st.closes == 0;
    say("pairs step %ld/s: sent %" PRIu64 " (%.0f/s) p50 %.2f p99 %.2f max %.2f ms, late %" PRIu64 " -> %s", rate, s.sent,
        s.achieved, (double)s.p50 / 1000, (double)s.p99 / 1000, (double)s.max / 1000, s.late, s.pass ? "pass" : "fail");
    return s;
}

static int scenario_pairs(void) {
    long p = G.o.pairs;
    add_conns("a", (size_t)p, ROLE_SENDER);
    add_conns("b", (size_t)p, ROLE_RECEIVER);
    int64_t took = connect_range(0, (size_t)p * 2, 8000000);
    size_t ok = count_welcomed();
    int64_t settled = settle(200, 3000000);
    probe_mark_run();
    say("pairs: %zu/%ld connected in %.0f ms, settled in %.0f ms", ok, 2 * p, (double)took / 1000, (double)settled / 1000);
    if (ok != (size_t)p * 2) {
        printf("RESULT scenario=pairs pairs=%ld size=%ld ok=0 connected=%zu", p, G.o.size, ok);
        print_common();
        printf("\n");
        return 1;
    }
    G.expected = 1;
    G.route_mod = p;
    struct hist *h = G.lat;
    pairs_step(G.o.start_rate, 0.3, h); /* warm-up, not reported */
    struct step best = {0}, fail = {0}, steps[64];
    int nsteps = 0, bisections = 0;
    long rate = G.o.start_rate;
    struct cpu_mark cpu0 = cpu_mark();
    while (nsteps < 64 && now_us() + (int64_t)(G.o.step_s * 1e6) + 500000 < G.deadline) {
        struct step s = pairs_step(rate, G.o.step_s, h);
        steps[nsteps++] = s;
        if (!s.pass && s.late == 0 && nsteps < 64) { /* one more try: a single scheduling hiccup is not a limit */
            s = pairs_step(rate, G.o.step_s, h);
            steps[nsteps++] = s;
        }
        if (s.pass && s.rate > best.rate) best = s;
        if (!s.pass && (!fail.rate || s.rate < fail.rate)) fail = s;
        if (!fail.rate) {
            if (rate >= G.o.max_rate) break;
            rate = rate * 2 > G.o.max_rate ? G.o.max_rate : rate * 2;
        } else {
            if (bisections++ >= G.o.bisections || fail.rate - best.rate <= best.rate / 20) break;
            rate = (best.rate + fail.rate) / 2;
        }
    }
    struct cpu_mark cpu1 = cpu_mark();
    /* final drain: whatever never arrived is lost */
    int64_t drain_until = now_us() + 1000000;
    while (G.delivered < G.next_seq && now_us() < drain_until && !past_deadline()) loop_once(5);
    uint64_t lost = lost_deliveries(0, G.next_seq);
    printf("RESULT scenario=pairs pairs=%ld size=%ld ok=%d best_rate=%ld p50_ms=%.3f p99_ms=%.3f max_ms=%.3f"
           " first_fail_rate=%ld first_fail_p99_ms=%.3f first_fail_late=%" PRIu64 " messages_sent=%" PRIu64
           " lost=%" PRIu64 " connect_ms=%.0f",
           p, G.o.size, best.rate > 0, best.rate, (double)best.p50 / 1000, (double)best.p99 / 1000,
           (double)best.max / 1000, fail.rate, (double)fail.p99 / 1000, fail.late, G.next_seq, lost, (double)took / 1000);
    print_cpu(&cpu0, &cpu1);
    printf(" steps=");
    for (int i = 0; i < nsteps; i++)
        printf("%s%ld:%.2f:%" PRIu64 "%s", i ? "," : "", steps[i].rate, (double)steps[i].p99 / 1000, steps[i].late,
               steps[i].pass ? "" : "!");
    print_common();
    printf("\n");
    return 0;
}

static void print_presence_check(uint64_t ok);

static int scenario_conns(void) {
    long n = G.o.n;
    add_conns("c", (size_t)n, ROLE_IDLE);
    sample_server();
    int64_t rss0 = G.rss_kb, threads0 = G.threads;
    struct cpu_mark cpu0 = cpu_mark();
    int64_t took = connect_range(0, (size_t)n, (int64_t)(G.o.settle_cap_s * 1e6));
    size_t ok = count_welcomed(), upgraded = count_open();
    int64_t settled = settle(300, (int64_t)(G.o.settle_cap_s * 1e6) - took);
    int quiet = now_us() - G.last_rx >= 300000;
    probe_mark_run();
    sample_server();
    int64_t rss1 = G.rss_kb, threads1 = G.threads;
    struct cpu_mark cpu1 = cpu_mark();
    /* hold them open: probes keep running, nothing may close */
    int64_t hold_until = now_us() + (int64_t)(G.o.hold_s * 1e6);
    while (now_us() < hold_until && !past_deadline()) loop_once(20);
    size_t still = count_welcomed();
    sample_server(); /* after the hold: a server that gives freed memory back has had time to */
    int64_t rss2 = G.rss_kb;
    double rate = took > 0 ? (double)ok / ((double)took / 1e6) : 0;
    say("conns: %zu/%ld open in %.0f ms (%.0f/s), settle %.0f ms%s, rss %" PRId64 " -> %" PRId64 " kB, threads %" PRId64
        " -> %" PRId64 ", %zu still open after %.1f s",
        ok, n, (double)took / 1000, rate, (double)settled / 1000, quiet ? "" : " (not quiet)", rss0, rss1, threads0,
        threads1, still, G.o.hold_s);
    printf("RESULT scenario=conns n=%ld ok=%d upgraded=%zu opened=%zu still_open=%zu connect_ms=%.0f connect_per_s=%.0f settle_ms=%.0f"
           " settled=%d rss0_kb=%" PRId64 " rss_kb=%" PRId64 " rss_per_1000_kb=%.0f threads0=%" PRId64 " threads=%" PRId64
           " threads_per_1000=%.1f rss_held_kb=%" PRId64 " rss_held_per_1000_kb=%.0f server_cpu_us_per_conn=%.1f",
           n, ok == (size_t)n && still == (size_t)n, upgraded, ok, still, (double)took / 1000, rate, (double)settled / 1000, quiet,
           rss0, rss1, ok ? (double)(rss1 - rss0) * 1000.0 / (double)ok : 0, threads0, threads1,
           ok ? (double)(threads1 - threads0) * 1000.0 / (double)ok : 0, rss2,
           ok ? (double)(rss2 - rss0) * 1000.0 / (double)ok : 0,
           ok && cpu0.server >= 0 && cpu1.server >= 0 ? (cpu1.server - cpu0.server) * 1e6 / (double)ok : 0);
    print_cpu(&cpu0, &cpu1);
    if (G.o.rooms_of > 0 || G.o.watch > 0) print_presence_check((uint64_t)ok);
    print_common();
    printf("\n");
    return 0;
}

/* conns with --rooms-of/--watch: what the server sent against what the scenario implies (see the top
 * comment); presence_ok=1 when every count is exact. Rooms are whole only when K divides N. */
static void print_presence_check(uint64_t ok) {
    uint64_t n = (uint64_t)G.o.n, k = (uint64_t)(G.o.rooms_of > 0 ? G.o.rooms_of : 1), w = (uint64_t)G.o.watch;
    uint64_t pairs = G.o.rooms_of > 0 ? n / k * (k * (k - 1) / 2) : 0;
    /* each join's members include the joiner: the others are what the pairs imply */
    uint64_t others = G.o.rooms_of > 0 && G.st.members_listed >= n ? G.st.members_listed - n : G.st.members_listed;
    int exact = ok == n && G.st.room_events == pairs && others == pairs && G.st.watch_events + G.st.online_listed == n * w;
    say("presence: %" PRIu64 " room events and %" PRIu64 " other members listed (expected %" PRIu64 " each), %" PRIu64
        " watch events + %" PRIu64 " listed online (expected %" PRIu64 "), %" PRIu64 " commands refused",
        G.st.room_events, others,
        pairs, G.st.watch_events, G.st.online_listed, n * w, G.st.refused_commands);
    printf(" rooms_of=%ld watch=%ld room_events=%" PRIu64 " members_listed=%" PRIu64 " room_pairs=%" PRIu64
           " watch_events=%" PRIu64 " online_listed=%" PRIu64 " watch_expected=%" PRIu64 " refused_commands=%" PRIu64
           " presence_ok=%d",
           G.o.rooms_of, G.o.watch, G.st.room_events, G.st.members_listed, pairs, G.st.watch_events, G.st.online_listed,
           n * w, G.st.refused_commands, exact);
}

/*---- hold: one of several generators against one cluster, driven by commands ----*/

/* hold (bench/presence-cluster): --n connections, users c<u> (user_no: --stride generators with
 * --offset 0.. make one population), each joining its room and watching as conns does once it is
 * welcomed, all held open while a driver sends commands on stdin, one per line. Each command is
 * answered by one line on stdout, "WORD key=value ...":
 *   connect CAP_S        open them all, at most CAP_S s                                  CONNECTED
 *   presence CAP_S       wait until the presence adds up (below), or CAP_S s, then 0.5 s PRESENCE
 *                        more for anything extra
 *   expect ws|api COUNT CAP_S  count the deliveries of the clients' broadcast (sequence   DELIVERIES
 *                        0) or of the POST /api/broadcast (sequence 1) until COUNT arrived
 *                        and 0.3 s more, or CAP_S s; other commands run meanwhile
 *   broadcast            connection 0 broadcasts sequence 0                               SENT
 *   api-broadcast        POST /api/broadcast of sequence 1 to --port, with --api-key-file API
 *   kill PID             SIGKILL to PID (a node); t_us is when, CLOCK_MONOTONIC           KILLED
 *   leaves D T_US CAP_S  the leaves generator D's users must cause here (their node was   LEAVES
 *                        killed at T_US): until all arrived and 1 s more, or T_US + CAP_S;
 *                        other commands run meanwhile
 *   quit                 the summary, then exit                                           RESULT
 * Presence is exact when, on each connection, every other member of its room is either named in the
 * join's `members` or announced by one room join event (K - 1 in all), and every watched user either
 * named in the watch's `online` or announced by one watch join event (W), each exactly once (a bit per
 * user and connection, user_bit), and nobody else: which of the two a connection gets depends on who
 * came first, on any node (two members joining on two nodes at once may both get an event). After a kill, each connection
 * must hear exactly one room leave per member of its room on the dead node and one watch leave per
 * watched user there (on_leave, users_due), and nothing else. */

#define HOLD_SEQ_WS 0  /* the clients' broadcast */
#define HOLD_SEQ_API 1 /* POST /api/broadcast */

static struct {
    int expecting;                 /* a DELIVERIES line is due */
    const char *which;
    uint64_t seq, count;
    int64_t until, reached_at;     /* reached_at: when the count was reached, 0 = not yet */
    int leaving;                   /* a LEAVES line is due */
    long dead;
    uint64_t due;                  /* leaves expected in all */
    int64_t killed_at, leave_until, leaves_done_at;
} H;

/* The POST /api/broadcast, on a thread of its own so that the loop keeps reading deliveries. */
static struct {
    pthread_mutex_t lock;          /* guards done, status, delivered, took_us */
    pthread_t thread;
    int started, done, status;
    long delivered;
    int64_t took_us;
    char req[LG_MAX_DATA + 1024];  /* written before the thread starts, then only read */
    size_t len;
    char key[512];                 /* --api-key-file's first line */
} A = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *api_main(void *arg) {
    (void)arg;
    char buf[1024] = "";
    int64_t start = now_us();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        http_exchange(fd, A.req, A.len, start + 10000000, buf, sizeof buf);
        close(fd);
    }
    const char *d = strstr(buf, "\"delivered\":");
    pthread_mutex_lock(&A.lock);
    A.status = strncmp(buf, "HTTP/1.", 7) == 0 ? atoi(buf + 9) : 0;
    A.delivered = d ? atol(d + 12) : -1;
    A.took_us = now_us() - start;
    A.done = 1;
    pthread_mutex_unlock(&A.lock);
    return NULL;
}

static void api_broadcast(void) {
    if (A.started) {
        printf("API ok=0 busy=1\n");
        return;
    }
    if (!A.key[0]) die("api-broadcast needs --api-key-file");
    int64_t now = now_us();
    int head = snprintf(G.payload, 64, "{\"data\":\"");
    message_data(G.payload + head, HOLD_SEQ_API, now);
    int body = head + (int)G.o.size + snprintf(G.payload + head + G.o.size, 8, "\"}");
    A.len = (size_t)snprintf(A.req, sizeof A.req,
                             "POST /api/broadcast HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                             "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%.*s",
                             G.o.host, G.o.port, A.key, body, body, G.payload);
    A.done = 0;
    if (pthread_create(&A.thread, NULL, api_main, NULL) != 0) die("pthread_create failed");
    A.started = 1;
}

/* The API call's answer, once it is in. */
static void api_poll(void) {
    if (!A.started) return;
    pthread_mutex_lock(&A.lock);
    int done = A.done;
    pthread_mutex_unlock(&A.lock);
    if (!done) return;
    pthread_join(A.thread, NULL);
    A.started = 0;
    printf("API ok=%d status=%d delivered=%ld ms=%.1f\n", A.status == 200 && A.delivered >= 0, A.status, A.delivered,
           (double)A.took_us / 1000);
}

static void read_api_key(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f || !fgets(A.key, sizeof A.key, f)) die("--api-key-file %s: cannot read it", path);
    fclose(f);
    A.key[strcspn(A.key, "\r\n")] = '\0';
}

static void hold_expect(const char *which, uint64_t count, double cap_s) {
    H.expecting = 1;
    H.reached_at = 0;
    H.which = strcmp(which, "api") == 0 ? "api" : "ws";
    H.seq = H.which[0] == 'a' ? HOLD_SEQ_API : HOLD_SEQ_WS;
    H.count = count;
    H.until = now_us() + (int64_t)(cap_s * 1e6);
    memset(G.lat, 0, sizeof *G.lat);
    G.lat_lo = H.seq;
    G.lat_hi = H.seq + 1;
}

/* DELIVERIES: time from the send (stamped in the data) to the first, the median and the last
 * delivery here; the sender's clock is this machine's CLOCK_MONOTONIC, as ours. */
static void hold_deliveries_poll(void) {
    if (!H.expecting) return;
    int64_t now = now_us();
    uint64_t got = G.got[H.seq];
    if (got >= H.count && !H.reached_at) H.reached_at = now;
    if (!(H.reached_at && now - H.reached_at >= 300000) && now < H.until) return;
    H.expecting = 0;
    printf("DELIVERIES which=%s seq=%" PRIu64 " got=%" PRIu64 " expected=%" PRIu64 " ok=%d first_ms=%.1f p50_ms=%.1f"
           " last_ms=%.1f truncated=%" PRIu64 " misordered=%" PRIu64 "\n",
           H.which, H.seq, got, H.count, got == H.count && G.st.truncated == 0,
           (double)hist_quantile(G.lat, 1e-9) / 1000, (double)hist_quantile(G.lat, 0.5) / 1000,
           (double)G.lat->max / 1000, G.st.truncated, G.st.misordered);
}

/* The users connection c must hear of, as user_bit's bits: the other members of its room (room) or
 * the users it watches (!room); with gen >= 0, only those of generator `gen` (on its node). */
static uint64_t users_due(const struct ws *c, int room, long gen) {
    long me = user_no(c), total = population(), k = G.o.rooms_of;
    uint64_t due = 0;
    if (room)
        for (long b = 0; k > 0 && b < k; b++) {
            long v = me / k * k + b;
            if (v < total && v != me && (gen < 0 || v % G.o.stride == gen)) due |= (uint64_t)1 << b;
        }
    else
        for (long j = 1; j <= G.o.watch; j++) {
            long v = (me + j) % total;
            if (v != me && (gen < 0 || v % G.o.stride == gen)) due |= (uint64_t)1 << (j - 1);
        }
    return due;
}

static void hold_leaves(long dead, int64_t killed_at, double cap_s) {
    H.leaving = 1;
    H.dead = dead;
    H.killed_at = killed_at;
    H.leave_until = killed_at + (int64_t)(cap_s * 1e6);
    H.leaves_done_at = 0;
    H.due = 0;
    for (size_t i = 0; i < G.nconns; i++)
        H.due += (uint64_t)__builtin_popcountll(users_due(&G.conns[i], 1, dead)) +
                 (uint64_t)__builtin_popcountll(users_due(&G.conns[i], 0, dead));
}

/* LEAVES: what arrived against what the layout implies, per connection and user. */
static void hold_leaves_poll(void) {
    if (!H.leaving) return;
    int64_t now = now_us();
    if (G.st.room_leaves + G.st.watch_leaves >= H.due && !H.leaves_done_at) H.leaves_done_at = now;
    if (!(H.leaves_done_at && now - H.leaves_done_at >= 1000000) && now < H.leave_until) return;
    H.leaving = 0;
    uint64_t due_room = 0, due_watch = 0, got = 0, missing = 0, extra = 0, closed = 0;
    for (size_t i = 0; i < G.nconns; i++) {
        const struct ws *c = &G.conns[i];
        closed += c->state != WS_OPEN;
        for (int room = 0; room <= 1; room++) {
            uint64_t due = users_due(c, room, H.dead), have = room ? c->room_left : c->watch_left;
            *(room ? &due_room : &due_watch) += (uint64_t)__builtin_popcountll(due);
            got += (uint64_t)__builtin_popcountll(have & due);
            missing += (uint64_t)__builtin_popcountll(due & ~have);
            extra += (uint64_t)__builtin_popcountll(have & ~due);
        }
    }
    int early = G.first_leave_at && G.first_leave_at < H.killed_at;
    int ok = missing == 0 && extra == 0 && G.st.bad_leaves == 0 && G.st.dup_leaves == 0 && !early && closed == 0;
    printf("LEAVES dead=%ld expected_room=%" PRIu64 " expected_watch=%" PRIu64 " room_leaves=%" PRIu64
           " watch_leaves=%" PRIu64 " right=%" PRIu64 " missing=%" PRIu64 " extra=%" PRIu64 " bad=%" PRIu64
           " duplicate=%" PRIu64 " early=%d closed_here=%" PRIu64 " first_ms=%.1f last_ms=%.1f ok=%d\n",
           H.dead, due_room, due_watch, G.st.room_leaves, G.st.watch_leaves, got, missing, extra, G.st.bad_leaves,
           G.st.dup_leaves, early, closed, G.first_leave_at ? (double)(G.first_leave_at - H.killed_at) / 1000 : -1,
           G.last_leave_at ? (double)(G.last_leave_at - H.killed_at) / 1000 : -1, ok);
}

static void hold_connect(double cap_s) {
    struct cpu_mark cpu0 = cpu_mark();
    int64_t took = connect_range(0, G.nconns, (int64_t)(cap_s * 1e6));
    size_t ok = count_welcomed(), upgraded = count_open(), done = 0;
    for (size_t i = 0; i < G.nconns; i++) done += G.conns[i].state == WS_OPEN && ready(&G.conns[i]);
    printf("CONNECTED n=%ld offset=%ld stride=%ld ok=%d opened=%zu upgraded=%zu answered=%zu refused=%" PRIu64
           " connect_failed=%" PRIu64 " connect_ms=%.0f connect_per_s=%.0f",
           G.o.n, G.o.offset, G.o.stride, done == G.nconns && G.st.refused == 0 && G.st.failed == 0, ok, upgraded, done,
           G.st.refused, G.st.failed, (double)took / 1000, took > 0 ? (double)ok / ((double)took / 1e6) : 0);
    struct cpu_mark cpu1 = cpu_mark();
    print_cpu(&cpu0, &cpu1);
    printf("\n");
}

static void hold_presence(double cap_s) {
    uint64_t exp_room = 0, exp_watch = 0, n = G.nconns;
    long k = G.o.rooms_of, total = population();
    for (size_t i = 0; i < G.nconns && k > 0; i++) {
        long r = user_no(&G.conns[i]) / k, members = total - r * k < k ? total - r * k : k;
        exp_room += (uint64_t)(members - 1);
    }
    exp_watch = n * (uint64_t)G.o.watch;
    int64_t start = now_us(), until = start + (int64_t)(cap_s * 1e6), quiet_until = 0;
    for (;;) {
        uint64_t others = G.st.members_listed >= n ? G.st.members_listed - n : 0;
        int full = G.st.room_events + others >= exp_room && G.st.watch_events + G.st.online_listed >= exp_watch;
        if (full && !quiet_until) quiet_until = now_us() + 500000;
        if ((quiet_until && now_us() >= quiet_until) || now_us() >= until || past_deadline()) break;
        loop_once(5);
    }
    uint64_t others = k > 0 && G.st.members_listed >= n ? G.st.members_listed - n : 0, missing = 0;
    for (size_t i = 0; i < G.nconns; i++) { /* per connection and user: each known exactly once */
        const struct ws *c = &G.conns[i];
        missing += (uint64_t)__builtin_popcountll(users_due(c, 1, -1) & ~c->room_known) +
                   (uint64_t)__builtin_popcountll(users_due(c, 0, -1) & ~c->watch_known);
    }
    printf("PRESENCE rooms_of=%ld watch=%ld room_events=%" PRIu64 " members_listed=%" PRIu64 " others_listed=%" PRIu64
           " room_expected=%" PRIu64 " watch_events=%" PRIu64 " online_listed=%" PRIu64 " watch_expected=%" PRIu64
           " unknown=%" PRIu64 " bad=%" PRIu64 " duplicate=%" PRIu64 " refused_commands=%" PRIu64 " leaves_before=%" PRIu64
           " settle_ms=%.0f presence_ok=%d\n",
           k, G.o.watch, G.st.room_events, G.st.members_listed, others, exp_room, G.st.watch_events, G.st.online_listed,
           exp_watch, missing, G.st.bad_joins, G.st.dup_joins, G.st.refused_commands, G.st.room_leaves + G.st.watch_leaves,
           (double)(now_us() - start) / 1000,
           missing == 0 && G.st.bad_joins == 0 && G.st.dup_joins == 0 && G.st.room_events + others == exp_room &&
               G.st.watch_events + G.st.online_listed == exp_watch && G.st.refused_commands == 0 &&
               G.st.room_leaves + G.st.watch_leaves == 0);
}

/* Runs one command line; 1 for quit. */
static int hold_command(const char *line) {
    char word[32] = "", which[8] = "";
    double cap = 0;
    long a = 0;
    long long t = 0;
    unsigned long long count = 0;
    if (sscanf(line, "%31s", word) != 1) return 0;
    if (strcmp(word, "quit") == 0) return 1;
    if (strcmp(word, "connect") == 0 && sscanf(line, "%*s %lf", &cap) == 1) hold_connect(cap);
    else if (strcmp(word, "presence") == 0 && sscanf(line, "%*s %lf", &cap) == 1) hold_presence(cap);
    else if (strcmp(word, "expect") == 0 && sscanf(line, "%*s %7s %llu %lf", which, &count, &cap) == 3)
        hold_expect(which, count, cap);
    else if (strcmp(word, "broadcast") == 0) {
        struct ws *c = &G.conns[0];
        int ok = c->state == WS_OPEN && c->welcomed;
        if (ok) send_seq(c, NULL, HOLD_SEQ_WS);
        printf("SENT seq=%d from=%s ok=%d\n", HOLD_SEQ_WS, c->name, ok);
    } else if (strcmp(word, "api-broadcast") == 0) api_broadcast();
    else if (strcmp(word, "kill") == 0 && sscanf(line, "%*s %ld", &a) == 1 && a > 1) {
        int rc = kill((pid_t)a, SIGKILL);
        printf("KILLED pid=%ld ok=%d t_us=%" PRId64 "\n", a, rc == 0, now_us());
    } else if (strcmp(word, "leaves") == 0 && sscanf(line, "%*s %ld %lld %lf", &a, &t, &cap) == 3)
        hold_leaves(a, (int64_t)t, cap);
    else printf("BAD command=%.60s\n", line);
    return 0;
}

/* The next complete command line from CMD into line (NUL-terminated); 0 if there is none yet. */
static int next_command(char *line, size_t cap) {
    char *nl = memchr(CMD.buf, '\n', CMD.len);
    if (!nl) return 0;
    size_t len = (size_t)(nl - CMD.buf);
    snprintf(line, cap, "%.*s", (int)len, CMD.buf);
    memmove(CMD.buf, nl + 1, CMD.len - len - 1);
    CMD.len -= len + 1;
    return 1;
}

static int scenario_hold(void) {
    if (G.o.stride < 1 || G.o.offset < 0 || G.o.offset >= G.o.stride) die("hold: --offset must be 0..--stride - 1");
    if (G.o.rooms_of > 64 || G.o.watch > 64 || G.o.watch >= population()) die("hold: --rooms-of and --watch at most 64, and under the population");
    if (G.o.api_key_file) read_api_key(G.o.api_key_file);
    add_conns("c", (size_t)G.o.n, ROLE_IDLE);
    for (size_t i = 0; i < G.nconns; i++) snprintf(G.conns[i].name, sizeof G.conns[i].name, "c%ld", user_no(&G.conns[i]));
    G.next_seq = HOLD_SEQ_API + 1; /* deliveries of both sequences are accepted from the start */
    seq_reserve(HOLD_SEQ_API);
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &CMD};
    if (epoll_ctl(G.ep, EPOLL_CTL_ADD, 0, &ev) < 0) die("hold reads commands on stdin, a pipe or a terminal: %s", strerror(errno));
    say("hold: %ld connections (c%ld, c%ld, ...), waiting for commands on stdin", G.o.n, G.o.offset, G.o.offset + G.o.stride);
    char line[sizeof CMD.buf];
    int quit = 0;
    while (!quit) {
        while (!quit && next_command(line, sizeof line)) {
            quit = hold_command(line);
            fflush(stdout);
        }
        if (quit || (CMD.eof && !memchr(CMD.buf, '\n', CMD.len)) || past_deadline()) break;
        hold_deliveries_poll();
        hold_leaves_poll();
        api_poll();
        fflush(stdout);
        loop_once(5);
    }
    if (!quit) say("hold: %s", past_deadline() ? "past --deadline" : "stdin closed");
    if (A.started) pthread_join(A.thread, NULL);
    printf("RESULT scenario=hold n=%ld offset=%ld stride=%ld still_open=%zu room_events=%" PRIu64 " watch_events=%" PRIu64
           " room_leaves=%" PRIu64 " watch_leaves=%" PRIu64 " deliveries=%" PRIu64,
           G.o.n, G.o.offset, G.o.stride, count_welcomed(), G.st.room_events, G.st.watch_events, G.st.room_leaves,
           G.st.watch_leaves, G.delivered);
    print_common();
    printf("\n");
    return 0;
}

/* Makes the connections still open end with a reset (SO_LINGER 0) when the process exits, not a FIN:
 * the generator closes first, so a FIN would leave each of its ports in TIME_WAIT for a minute, and the
 * next run (conns-18000 after conns-10000) would search a nearly full ephemeral port range on every
 * connect, measuring the kernel's port allocation instead of the server. */
static void reset_at_exit(void) {
    struct linger hard = {1, 0};
    for (size_t i = 0; i < G.nconns; i++)
        if (G.conns[i].fd >= 0) setsockopt(G.conns[i].fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
}

/*---- command line ----*/

/* --tokens FILE: one token per line (blank lines skipped), sent as ?token= instead of ?user=. */
static void read_tokens(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("--tokens %s: %s", path, strerror(errno));
    char line[LG_TOKEN_MAX + 2];
    while (fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0) continue;
        if (len > LG_TOKEN_MAX) die("--tokens %s: a token longer than %d bytes", path, LG_TOKEN_MAX);
        line[len] = '\0';
        G.tokens = xrealloc(G.tokens, (G.ntokens + 1) * sizeof *G.tokens);
        G.tokens[G.ntokens] = xrealloc(NULL, len + 1);
        memcpy(G.tokens[G.ntokens++], line, len + 1);
    }
    fclose(f);
    if (!G.ntokens) die("--tokens %s: no token in it", path);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: loadgen --port PORT --scenario fanout|pairs|conns|hold [options]\n"
            "       loadgen --free-port          print a free 127.0.0.1 port\n"
            "       loadgen --port PORT --wait-ready SECONDS   wait until GET /healthz answers 200\n"
            "options:\n"
            "  --host ADDR         server address (127.0.0.1)\n"
            "  --port2 PORT        receivers connect to this port (another node of a cluster), senders to --port\n"
            "  --path PATH         WebSocket path (/ws; /socket.io/ with --framing socketio)\n"
            "  --framing F         plain: a text frame is one JSON message (default); socketio: Socket.IO 4's\n"
            "                      packets over Engine.IO 4's WebSocket transport, each message the event \"msg\"\n"
            "  --pid PID           the server's pid, for RSS, threads and CPU from /proc\n"
            "  --pid2 PID          the --port2 node's pid, for its CPU (server2_cpu_pct; others_cpu_pct leaves it out)\n"
            "  --n N               fanout receivers, or conns connections (100)\n"
            "  --pairs P           pairs: sender->receiver pairs (100)\n"
            "  --size BYTES        data string length of each message (64)\n"
            "  --window M          fanout: messages in flight (16)\n"
            "  --duration S        fanout: measured seconds (5)\n"
            "  --warmup S          fanout: unmeasured seconds first (1)\n"
            "  --step S            pairs: seconds per rate step (1)\n"
            "  --start-rate R      pairs: first rate, messages/s in total (2000)\n"
            "  --max-rate R        pairs: highest rate tried (1000000)\n"
            "  --bisections K      pairs: bisection steps after the first failing rate (3)\n"
            "  --p99-limit-us U    pairs: a step passes with p99 under this (10000)\n"
            "  --hold S            conns: seconds to hold the connections open (1)\n"
            "  --settle-cap S      conns: cap on connecting plus settling (12)\n"
            "  --rooms-of K        conns, hold: connection i joins room g<i/K> once welcomed (0 = none)\n"
            "  --watch W           conns, hold: connection i watches c<i+1>..c<i+W> once welcomed (0 = none)\n"
            "  --stride P          hold: P generators make one population of n*P users (1)\n"
            "  --offset O          hold: this generator's users are cO, cO+P, cO+2P, ... (0)\n"
            "  --api-key-file F    hold: the server's API key, for api-broadcast\n"
            "  --concurrency K     handshakes in progress at once (200)\n"
            "  --tokens FILE       send ?token=LINE instead of ?user=NAME: connection i (c<i> in conns) gets\n"
            "                      line i modulo the count (mint each with the connection's name as sub)\n"
            "  --deadline S        the whole run's cap; loadgen exits by then (20)\n");
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        die("cannot find a free port: %s", strerror(errno));
    close(fd);
    printf("%d\n", ntohs(a.sin_port));
    return 0;
}

/* Probes /healthz until it answers 200 or `secs` pass. */
static int wait_ready(double secs) {
    int64_t until = now_us() + (int64_t)(secs * 1e6), took;
    while (now_us() < until) {
        if (probe_once(&took, 1) == PROBE_OK) return 0;
        usleep(50000);
    }
    say("server on port %d not ready after %.0f s", G.o.port, secs);
    return 1;
}

static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv) {
    struct options o = {.scenario = NULL, .host = "127.0.0.1", .path = NULL, .n = 100, .pairs = 100, .size = 64,
                        .window = 16, .concurrency = 200, .duration_s = 5, .warmup_s = 1, .deadline_s = 20,
                        .step_s = 1, .settle_cap_s = 12, .hold_s = 1, .start_rate = 2000, .max_rate = 1000000,
                        .p99_limit_us = 10000, .bisections = 3, .stride = 1};
    double ready_s = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--free-port") == 0) return free_port();
        else if (!v) used = 0;
        else if (strcmp(a, "--scenario") == 0) o.scenario = v;
        else if (strcmp(a, "--host") == 0) o.host = v;
        else if (strcmp(a, "--path") == 0) o.path = v;
        else if (strcmp(a, "--tokens") == 0) o.tokens = v;
        else if (strcmp(a, "--framing") == 0) {
            if (strcmp(v, "plain") != 0 && strcmp(v, "socketio") != 0) die("--framing must be plain or socketio, not %s", v);
            o.framing = strcmp(v, "socketio") == 0 ? FRAMING_SOCKETIO : FRAMING_PLAIN;
        }
        else if (strcmp(a, "--port") == 0) o.port = atoi(v);
        else if (strcmp(a, "--port2") == 0) o.port2 = atoi(v);
        else if (strcmp(a, "--pid") == 0) o.pid = atoi(v);
        else if (strcmp(a, "--pid2") == 0) o.pid2 = atoi(v);
        else if (strcmp(a, "--n") == 0) o.n = atol(v);
        else if (strcmp(a, "--pairs") == 0) o.pairs = atol(v);
        else if (strcmp(a, "--size") == 0) o.size = atol(v);
        else if (strcmp(a, "--window") == 0) o.window = atol(v);
        else if (strcmp(a, "--duration") == 0) o.duration_s = atof(v);
        else if (strcmp(a, "--warmup") == 0) o.warmup_s = atof(v);
        else if (strcmp(a, "--step") == 0) o.step_s = atof(v);
        else if (strcmp(a, "--start-rate") == 0) o.start_rate = atol(v);
        else if (strcmp(a, "--max-rate") == 0) o.max_rate = atol(v);
        else if (strcmp(a, "--bisections") == 0) o.bisections = atol(v);
        else if (strcmp(a, "--p99-limit-us") == 0) o.p99_limit_us = atol(v);
        else if (strcmp(a, "--hold") == 0) o.hold_s = atof(v);
        else if (strcmp(a, "--settle-cap") == 0) o.settle_cap_s = atof(v);
        else if (strcmp(a, "--rooms-of") == 0) o.rooms_of = atol(v);
        else if (strcmp(a, "--watch") == 0) o.watch = atol(v);
        else if (strcmp(a, "--stride") == 0) o.stride = atol(v);
        else if (strcmp(a, "--offset") == 0) o.offset = atol(v);
        else if (strcmp(a, "--api-key-file") == 0) o.api_key_file = v;
        else if (strcmp(a, "--concurrency") == 0) o.concurrency = atol(v);
        else if (strcmp(a, "--deadline") == 0) o.deadline_s = atof(v);
        else if (strcmp(a, "--wait-ready") == 0) ready_s = atof(v);
        else used = 0;
        if (!used) {
            fprintf(stderr, "loadgen: bad argument %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (o.port <= 0 || o.port > 65535) die("--port is required");
    if (!o.path) o.path = o.framing == FRAMING_SOCKETIO ? "/socket.io/" : "/ws";
    if (o.size < 48 || o.size > LG_MAX_DATA) die("--size must be 48..%d", LG_MAX_DATA);
    if (o.n < 1 || o.pairs < 1 || o.window < 1 || o.concurrency < 1) die("counts must be positive");
    G.o = o;
    if (o.tokens) read_tokens(o.tokens);
    raise_nofile();
    rng_state ^= (uint64_t)now_us() * 2654435761u ^ (uint64_t)getpid();
    G.t0 = now_us();
    G.deadline = G.t0 + (int64_t)(o.deadline_s * 1e6);
    G.addr2.sin_family = AF_INET;
    G.addr2.sin_port = htons((uint16_t)o.port2);
    if (o.port2 && inet_pton(AF_INET, o.host, &G.addr2.sin_addr) != 1) die("--host must be an IPv4 address");
    G.addr.sin_family = AF_INET;
    G.addr.sin_port = htons((uint16_t)o.port);
    if (inet_pton(AF_INET, o.host, &G.addr.sin_addr) != 1) die("--host must be an IPv4 address");
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0) die("epoll_create1: %s", strerror(errno));
    if (ready_s > 0) return wait_ready(ready_s);
    if (!o.scenario) die("--scenario is required");
    G.payload = xrealloc(NULL, (size_t)o.size + 256);
    G.lat = calloc(1, sizeof *G.lat);
    if (!G.lat) die("out of memory");
    G.next_sample = now_us();
    probe_thread_start();
    int rc;
    if (strcmp(o.scenario, "fanout") == 0) rc = scenario_fanout();
    else if (strcmp(o.scenario, "pairs") == 0) rc = scenario_pairs();
    else if (strcmp(o.scenario, "conns") == 0) rc = scenario_conns();
    else if (strcmp(o.scenario, "hold") == 0) rc = scenario_hold();
    else die("unknown scenario %s", o.scenario);
    reset_at_exit();
    fflush(stdout);
    return rc;
}

/* metrics: counters and their Prometheus rendering (see metrics.h). */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth.h"

const char *const sb_error_names[ERR__COUNT] = {
    "bad_json", "bad_request", "unknown_type", "not_found", "too_large", "rate_limited", "unauthorized",
};

const char *const api_call_names[API__CALLS] = {"send", "broadcast", "publish", "users", "room", "user", "disconnect",
                                                   "subscribe", "unsubscribe", "other"};
static const int api_statuses[] = {200, 400, 401, 404, 405, 413, 500};
#define NAPI_STATUS (sizeof api_statuses / sizeof api_statuses[0])

static const struct {
    const char *name, *help;
} metric_info[M__COUNT] = {
    [M_CONNECTIONS_TOTAL] = {"switchboard_connections_total", "WebSocket connections accepted since start"},
    [M_MESSAGES_IN] = {"switchboard_messages_in_total", "Whole messages received from clients"},
    [M_MESSAGES_OUT] = {"switchboard_messages_out_total", "Messages queued to clients (one per recipient)"},
    [M_BYTES_IN] = {"switchboard_bytes_in_total", "Message payload bytes received"},
    [M_BYTES_OUT] = {"switchboard_bytes_out_total", "Frame bytes written to sockets"},
    [M_SLOW_CONSUMERS] = {"switchboard_slow_consumers_total", "Connections closed 1008 because their outbox overflowed"},
    [M_PING_TIMEOUTS] = {"switchboard_ping_timeouts_total", "Connections closed after 3 silent ping intervals"},
    [M_RATE_LIMIT_CLOSES] = {"switchboard_rate_limit_closes_total", "Connections closed 1008 for ignoring rate_limited"},
    [M_OUTBOX_FRAMES_DROPPED] = {"switchboard_outbox_frames_dropped_total", "Queued frames discarded when their connection closed"},
    [M_HTTP_REQUESTS] = {"switchboard_http_requests_total", "HTTP requests answered (not WebSocket upgrades)"},
    [M_ROOM_LIMIT_REFUSALS] = {"switchboard_room_limit_refusals_total", "joins refused by --max-rooms"},
    [M_USER_LIMIT_REFUSALS] = {"switchboard_user_limit_refusals_total",
                               "connections or hellos refused by --max-user-connections"},
    [M_PERMISSION_REFUSALS] = {"switchboard_permission_refusals_total",
                               "Client commands refused by the allow or send_to permissions"},
    [M_LINGER_CLOSES] = {"switchboard_lingering_closes_total",
                         "Sockets shut down for writing and read until the peer closed, instead of closed at once"},
    [M_LINGER_CUT] = {"switchboard_lingering_cut_total",
                      "Lingering closes cut short: 2 s, 64 KiB of input, or too many lingering at once"},
    [M_HEADS_TIMED_OUT] = {"switchboard_request_heads_timed_out_total",
                           "Connections closed because their request head was not whole within --header-timeout"},
    [M_HISTORY_RECOVERED] = {"switchboard_history_recovered_total",
                             "Streams a reconnecting client asked to recover and got whole"},
    [M_HISTORY_NOT_RECOVERED] = {"switchboard_history_not_recovered_total",
                                 "Streams a client asked to recover that history no longer held (recovered false)"},
    [M_HISTORY_REPLAYED] = {"switchboard_history_replayed_total", "Messages sent again by recoveries"},
    [M_CLUSTER_PUBLISHES] = {"switchboard_cluster_publishes_total", "Messages and presence changes published to Redis"},
    [M_CLUSTER_MESSAGES_IN] = {"switchboard_cluster_messages_in_total", "Messages received from other nodes through Redis"},
    [M_CLUSTER_PRESENCE_OUT] = {"switchboard_cluster_presence_out_total",
                                "Presence changes (users, rooms, room members) announced to the other nodes"},
    [M_CLUSTER_PRESENCE_IN] = {"switchboard_cluster_presence_in_total", "Presence changes heard from other nodes"},
    [M_CLUSTER_DROPPED] = {"switchboard_cluster_dropped_total",
                           "Cross-node messages dropped: Redis down or the engine's queue full"},
    [M_CLUSTER_WELCOMES_UNROUTED] = {"switchboard_cluster_welcomes_unrouted_total",
                                     "Welcomes sent before Redis confirmed the user's route (Redis slow)"},
    [M_CLUSTER_ASKS_UNANSWERED] = {"switchboard_cluster_asks_unanswered_total",
                                   "Sends to a user not listed here that Redis did not answer in time or at all"},
    [M_CLUSTER_READS_FAILED] = {"switchboard_cluster_history_reads_failed_total",
                                "Stream positions and recoveries Redis could not read (the answer: not recovered)"},
    [M_CLUSTER_GAPS_READ] = {"switchboard_cluster_gaps_read_total",
                             "Holes in a stream's live offsets (messages lost between Redis and this node), read from Redis"},
    [M_CLUSTER_SENDS_REFUSED] = {"switchboard_cluster_sends_refused_total",
                                 "Sends to a user not listed here answered not_found at once: too many sends waited for Redis's answer"},
    [M_CLUSTER_RECONNECTS] = {"switchboard_cluster_reconnects_total", "Attempts to connect to Redis after the first"},
};

static const char *const head_refusal_names[HEAD_REFUSED__COUNT] = {"too_large", "bad_request", "per_ip", "busy"};

static int is_cluster_metric(int m) { return m >= M_CLUSTER_PUBLISHES && m <= M_CLUSTER_RECONNECTS; }

static const char *const reject_names[REJECT__COUNT] = {"origin", "capacity", "bad_user", "shutdown", "per_ip", "bad_request",
                                                        "token", "host"};
static const uint16_t close_codes[] = {1000, 1001, 1002, 1007, 1008, 1009, AUTH_CLOSE_EXPIRED, AUTH_CLOSE_TIMEOUT};
#define NCLOSE (sizeof close_codes / sizeof close_codes[0])

/* The enum metric counters, one shard per thread that bumps them: they count every message and
 * every write, from every loop thread at once, and one shared atomic per counter would bounce its
 * cache line between the cores each time. A shard is made on its thread's first bump and kept for
 * the life of the process (threads here are long-lived: the loops and CivetWeb's workers); a read
 * sums the shards. Each shard is written by its own thread only, read by any. */
struct shard {
    uint64_t v[M__COUNT];
    struct shard *next; /* set before the shard is published, never changed after */
};
static pthread_mutex_t shards_lock = PTHREAD_MUTEX_INITIALIZER; /* serialises publishing */
static struct shard *shards;          /* atomic: the newest shard */
static __thread struct shard *mine;   /* this thread's */
static uint64_t unsharded[M__COUNT];  /* bumps from a thread whose shard could not be allocated */

static uint64_t rejects[REJECT__COUNT];
static uint64_t head_refusals[HEAD_REFUSED__COUNT];
static uint64_t errors[ERR__COUNT];
static uint64_t closes[NCLOSE + 1]; /* the last slot: any other code */
static uint64_t api_requests[API__CALLS][NAPI_STATUS + 1]; /* the last slot: any other status */
static uint64_t token_refusals[AUTH__WHERE][AUTH__REASON_END];

static void bump(uint64_t *c, uint64_t n) { __atomic_add_fetch(c, n, __ATOMIC_RELAXED); }
static uint64_t load(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

static struct shard *new_shard(void) {
    struct shard *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_lock(&shards_lock);
    s->next = shards;
    __atomic_store_n(&shards, s, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&shards_lock);
    return mine = s;
}

void metrics_add(enum metric m, uint64_t n) {
    struct shard *s = mine ? mine : new_shard();
    if (s) __atomic_store_n(&s->v[m], s->v[m] + n, __ATOMIC_RELAXED);
    else bump(&unsharded[m], n);
}
void metrics_reject(enum reject_reason r) { bump(&rejects[r], 1); }
void metrics_head_refused(enum head_refusal r) { bump(&head_refusals[r], 1); }
void metrics_error(enum sb_error e) { bump(&errors[e], 1); }
void metrics_token_refusal(int where, int reason) {
    if (where >= 0 && where < AUTH__WHERE && reason > JWT_OK && reason < AUTH__REASON_END)
        bump(&token_refusals[where][reason], 1);
}
uint64_t metrics_get(enum metric m) {
    uint64_t sum = load(&unsharded[m]);
    for (struct shard *s = __atomic_load_n(&shards, __ATOMIC_ACQUIRE); s; s = s->next) sum += load(&s->v[m]);
    return sum;
}

void metrics_api(enum api_call_kind call, int status) {
    size_t i = 0;
    while (i < NAPI_STATUS && api_statuses[i] != status) i++;
    bump(&api_requests[call][i], 1);
}

void metrics_close(uint16_t code) {
    size_t i = 0;
    while (i < NCLOSE && close_codes[i] != code) i++;
    bump(&closes[i], 1);
}

/* A bounded appender: once buf is full the rest is dropped, never overrun. */
struct out {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...) {
    if (o->len + 1 >= o->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0) o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

static void put_gauge(struct out *o, const char *name, const char *help, double v) {
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void put_labelled(struct out *o, const char *name, const char *help, const char *label,
                         const char *const *keys, const uint64_t *vals, size_t n) {
    put(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < n; i++)
        put(o, "%s{%s=\"%s\"} %llu\n", name, label, keys[i], (unsigned long long)load(&vals[i]));
}

static void put_closes(struct out *o) {
    const char *name = "switchboard_closes_sent_total";
    put(o, "# HELP %s Close frames sent by the server, by code\n# TYPE %s counter\n", name, name);
    for (size_t i = 0; i < NCLOSE; i++)
        put(o, "%s{code=\"%u\"} %llu\n", name, close_codes[i], (unsigned long long)load(&closes[i]));
    put(o, "%s{code=\"other\"} %llu\n", name, (unsigned long long)load(&closes[NCLOSE]));
}

/* Only the pairs seen so far: most of the 7 x 8 never happen. */
static void put_api(struct out *o) {
    const char *name = "switchboard_api_requests_total";
    put(o, "# HELP %s Server API requests (/api/), by call and HTTP status\n# TYPE %s counter\n", name, name);
    for (int c = 0; c < API__CALLS; c++) {
        for (size_t i = 0; i <= NAPI_STATUS; i++) {
            uint64_t v = load(&api_requests[c][i]);
            if (!v) continue;
            if (i < NAPI_STATUS) put(o, "%s{call=\"%s\",status=\"%d\"} %llu\n", name, api_call_names[c], api_statuses[i], (unsigned long long)v);
            else put(o, "%s{call=\"%s\",status=\"other\"} %llu\n", name, api_call_names[c], (unsigned long long)v);
        }
    }
}

static const char *reason_name(int r) { return r < JWT__COUNT ? jwt_error_names[r] : auth_reason_names[r - JWT__COUNT]; }

static void put_token_refusals(struct out *o) {
    const char *name = "switchboard_token_refusals_total";
    put(o, "# HELP %s Tokens refused, by where (handshake, hello, refresh) and why\n# TYPE %s counter\n", name, name);
    for (int w = 0; w < AUTH__WHERE; w++)
        for (int r = JWT_OK + 1; r < AUTH__REASON_END; r++)
            put(o, "%s{where=\"%s\",reason=\"%s\"} %llu\n", name, auth_where_names[w], reason_name(r),
                (unsigned long long)load(&token_refusals[w][r]));
}

static long limit_connections, limit_open_files; /* written once before any scrape */

void metrics_set_limits(long connections, long open_files) {
    limit_connections = connections;
    limit_open_files = open_files;
}

size_t metrics_render(char *buf, size_t cap, const struct metrics_gauges *g, double uptime_s) {
    struct out o = {buf, cap, 0};
    if (cap) buf[0] = '\0';
    put_gauge(&o, "switchboard_connections_open", "WebSocket connections open now", (double)g->connections_open);
    put_gauge(&o, "switchboard_users_online", "Distinct users with a connection", (double)g->users_online);
    put_gauge(&o, "switchboard_rooms", "Rooms with at least one member", (double)g->rooms);
    put_gauge(&o, "switchboard_outbox_bytes", "Bytes queued in all outboxes", (double)g->outbox_bytes);
    put_gauge(&o, "switchboard_history_streams", "Streams with a history (--history-size)", (double)g->history_streams);
    put_gauge(&o, "switchboard_history_bytes", "Bytes of messages kept in history, with each stream's fixed cost "
              "(--history-memory)", (double)g->history_bytes);
    put_gauge(&o, "switchboard_history_messages", "Messages kept in history", (double)g->history_messages);
    put_gauge(&o, "switchboard_uptime_seconds", "Seconds since start", uptime_s);
    put_gauge(&o, "switchboard_connections_limit", "WebSockets the server accepts at once (--max-connections, "
              "bounded by the open-file limit)", (double)limit_connections);
    put_gauge(&o, "switchboard_open_files_limit", "The process's open-file limit (RLIMIT_NOFILE, soft)",
              (double)limit_open_files);
    for (int m = 0; m < M__COUNT; m++) {
        if (is_cluster_metric(m) && !g->cluster) continue;
        put(&o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", metric_info[m].name, metric_info[m].help,
            metric_info[m].name, metric_info[m].name, (unsigned long long)metrics_get((enum metric)m));
    }
    put_labelled(&o, "switchboard_handshakes_rejected_total", "WebSocket handshakes refused, by reason",
                 "reason", reject_names, rejects, REJECT__COUNT);
    put_labelled(&o, "switchboard_request_heads_refused_total",
                 "Request heads refused before anything served them (431, 400, 429, 503), by reason", "reason",
                 head_refusal_names, head_refusals, HEAD_REFUSED__COUNT);
    put_labelled(&o, "switchboard_errors_total", "Error replies sent, by code", "code", sb_error_names, errors,
                 ERR__COUNT);
    put_closes(&o);
    put_api(&o);
    put_token_refusals(&o);
    if (g->cluster) {
        put_gauge(&o, "switchboard_redis_up", "1 when the cluster's Redis is connected", g->redis_up);
        put_gauge(&o, "switchboard_cluster_nodes_alive", "Other nodes seen alive in Redis", (double)g->nodes_alive);
        put_gauge(&o, "switchboard_cluster_queue_bytes", "Bytes waiting for the Redis connection", (double)g->cluster_queue_bytes);
        put_gauge(&o, "switchboard_cluster_inflight", "Redis commands sent and not yet answered", (double)g->cluster_inflight);
        put_gauge(&o, "switchboard_cluster_sends_waiting", "Sends whose ack waits for Redis's answer (a user not listed here)",
                  (double)g->sends_waiting);
    }
    return o.len;
}

/* metrics: process-wide counters, rendered as Prometheus text at GET /metrics.
 *
 * Every limit and every failure path has a counter here, so an operator can see what the server
 * refused and why. Any thread bumps them without a lock (the per-message ones in a shard of its own),
 * and a scrape reads each one independently (a scrape is not a snapshot of all of them at one
 * instant). */
#ifndef SB_METRICS_H
#define SB_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum metric {
    M_CONNECTIONS_TOTAL,
    M_MESSAGES_IN,
    M_MESSAGES_OUT,
    M_BYTES_IN,
    M_BYTES_OUT,
    M_SLOW_CONSUMERS,
    M_PING_TIMEOUTS,
    M_RATE_LIMIT_CLOSES,
    M_OUTBOX_FRAMES_DROPPED,
    M_HTTP_REQUESTS,
    M_ROOM_LIMIT_REFUSALS,
    M_USER_LIMIT_REFUSALS,
    M_PERMISSION_REFUSALS, /* client commands refused by allow / send_to (perms.h) */
    M_LINGER_CLOSES,
    M_LINGER_CUT,
    M_HEADS_TIMED_OUT,
    M_HISTORY_RECOVERED,   /* recovery (history.h): streams recovered whole, or not */
    M_HISTORY_NOT_RECOVERED,
    M_HISTORY_REPLAYED,    /* messages sent again by a recovery */
    M_CLUSTER_PUBLISHES,   /* the cluster ones are rendered only with --redis */
    M_CLUSTER_MESSAGES_IN,
    M_CLUSTER_PRESENCE_OUT,
    M_CLUSTER_PRESENCE_IN,
    M_CLUSTER_DROPPED,
    M_CLUSTER_WELCOMES_UNROUTED,
    M_CLUSTER_ASKS_UNANSWERED,
    M_CLUSTER_READS_FAILED,  /* clusterhist.h: a connection's streams Redis could not read */
    M_CLUSTER_GAPS_READ,     /* hubsync.h: holes in a stream's live offsets, read from Redis */
    M_CLUSTER_SENDS_REFUSED, /* pendsend.h: a send to an unlisted user past the bound of waiting ones */
    M_CLUSTER_RECONNECTS,
    M__COUNT
};

enum reject_reason {
    REJECT_ORIGIN,
    REJECT_CAPACITY,
    REJECT_BAD_USER,
    REJECT_SHUTDOWN,
    REJECT_PER_IP,
    REJECT_BAD_REQUEST,
    REJECT_TOKEN,
    REJECT_HOST,
    REJECT__COUNT
};

/* Why a request head was refused before anything served it (acceptor.h). */
enum head_refusal {
    HEAD_REFUSED_TOO_LARGE, /* 431: past HEAD_MAX (head.h), or too many header fields */
    HEAD_REFUSED_BAD,       /* 400: not an HTTP/1.x request head, or a trusted proxy's PROXY header not valid */
    HEAD_REFUSED_PER_IP,    /* 429: --max-per-ip heads already pending from its address */
    HEAD_REFUSED_BUSY,      /* 503: CivetWeb's queue was full */
    HEAD_REFUSED__COUNT
};

/* The protocol's error codes (docs/PROTOCOL.md), counted by code. */
enum sb_error {
    ERR_BAD_JSON,
    ERR_BAD_REQUEST,
    ERR_UNKNOWN_TYPE,
    ERR_NOT_FOUND,
    ERR_TOO_LARGE,
    ERR_RATE_LIMITED,
    ERR_UNAUTHORIZED,
    ERR__COUNT
};
extern const char *const sb_error_names[ERR__COUNT];

/* The server API's calls (api.h), counted by call and HTTP status; API_OTHER: an unknown path. */
enum api_call_kind {
    API_SEND, API_BROADCAST, API_PUBLISH, API_USERS, API_ROOM, API_USER, API_DISCONNECT, API_SUBSCRIBE, API_UNSUBSCRIBE,
    API_OTHER, API__CALLS
};
extern const char *const api_call_names[API__CALLS];

void metrics_add(enum metric m, uint64_t n);
void metrics_reject(enum reject_reason r);
void metrics_head_refused(enum head_refusal r);
void metrics_error(enum sb_error e);
/* Counts one server API request by call and the HTTP status it was answered with. */
void metrics_api(enum api_call_kind call, int status);
/* Counts a token refused (auth.h): `where` an enum auth_where, `reason` a jwt_error or an AUTH_* reason. */
void metrics_token_refusal(int where, int reason);
/* Counts a close frame the server sent, by code. */
void metrics_close(uint16_t code);
uint64_t metrics_get(enum metric m);

/* Live values the hub owns; passed in so metrics does not depend on the hub. */
struct metrics_gauges {
    size_t connections_open;
    size_t users_online;
    size_t rooms;
    size_t outbox_bytes;
    size_t history_streams; /* history.h: streams kept, bytes and messages they hold */
    size_t history_bytes;
    size_t history_messages;
    int cluster;            /* the rest is filled by the cluster engine, with --redis only */
    int redis_up;
    size_t nodes_alive;     /* other nodes seen alive, this one excluded */
    size_t cluster_queue_bytes;
    size_t cluster_inflight;
    size_t sends_waiting;   /* pendsend.h: sends whose ack waits for the cluster's answer */
};
/* The limits in force, shown as gauges: --max-connections as the descriptors allow it, and the
 * process's open-file limit. Set once at start, before the server accepts. */
void metrics_set_limits(long connections, long open_files);
/* Writes the Prometheus text into buf; returns its length (cut at cap - 1). */
size_t metrics_render(char *buf, size_t cap, const struct metrics_gauges *g, double uptime_s);

#endif

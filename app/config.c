/* config: the option table and what reads it (see config.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clustermsg.h"
#include "keys.h"
#include "names.h"
#include "origin.h"
#include "perms.h"
#include "presence.h"
#include "realip.h"

enum opt_type { OPT_PORT, OPT_PATH, OPT_ORIGIN, OPT_HOSTS, OPT_LONG, OPT_LEVEL, OPT_PRESENCE, OPT_TEXT, OPT_REDIS, OPT_NAME };

struct option_def {
    const char *flag, *env;
    enum opt_type type;
    size_t offset;  /* of the field in struct config */
    long min, max;  /* OPT_LONG bounds; OPT_TEXT: max is the field's size */
    const char *def; /* NULL: no default value to apply */
    const char *metavar, *help;
};

#define FIELD(f) offsetof(struct config, f)
static const struct option_def options[] = {
    {"--port", "SWITCHBOARD_PORT", OPT_PORT, FIELD(port), 0, 0, "8080", "N|HOST:PORT",
     "where to listen (all interfaces when no HOST)"},
    {"--root", "SWITCHBOARD_ROOT", OPT_PATH, FIELD(root), 0, 0, NULL, "DIR",
     "static files (default: www beside the build dir, then ./www)"},
    {"--allow-origin", "SWITCHBOARD_ALLOW_ORIGINS", OPT_ORIGIN, FIELD(allow_origins), 0, 0, NULL, "ORIGIN",
     "also accept WebSockets from this page origin; repeatable, '*' = any (env: comma list)"},
    {"--allowed-hosts", "SWITCHBOARD_ALLOWED_HOSTS", OPT_HOSTS, FIELD(allowed_hosts), 0, 0, NULL, "HOST[:PORT],...",
     "answer only requests whose Host is listed, others get 421 (against DNS rebinding); repeatable"},
    {"--max-message", "SWITCHBOARD_MAX_MESSAGE", OPT_LONG, FIELD(max_message), 1, 1L << 30, "65536", "BYTES",
     "largest message accepted; bigger ones are closed 1009"},
    {"--max-connections", "SWITCHBOARD_MAX_CONNECTIONS", OPT_LONG, FIELD(max_connections), 1, 1000000, "10000", "N",
     "WebSockets open at once; more get HTTP 503 (also bounded by the open-file limit)"},
    {"--http-threads", "SWITCHBOARD_HTTP_THREADS", OPT_LONG, FIELD(http_threads), 0, 1024, "0", "N",
     "threads serving HTTP requests, each with its head already read (WebSockets hold none); 0 = two per CPU, 8 to 16"},
    {"--header-timeout", "SWITCHBOARD_HEADER_TIMEOUT", OPT_LONG, FIELD(header_timeout), 1, 3600, "10", "SECONDS",
     "a connection's request head must be whole this long after it is accepted; else 408 and the close"},
    {"--outbox", "SWITCHBOARD_OUTBOX", OPT_LONG, FIELD(outbox), 1024, 1L << 32, "1048576", "BYTES",
     "unsent bytes per connection before it is closed 1008"},
    {"--ping-interval", "SWITCHBOARD_PING_INTERVAL", OPT_LONG, FIELD(ping_interval), 1, 86400, "20", "SECONDS",
     "server ping period; 3 silent periods close 1001"},
    {"--rate-limit", "SWITCHBOARD_RATE_LIMIT", OPT_LONG, FIELD(rate_limit), 0, 1000000, "0", "N",
     "messages per second per connection, 0 = off"},
    {"--max-per-ip", "SWITCHBOARD_MAX_PER_IP", OPT_LONG, FIELD(max_per_ip), 0, 60000, "0", "N",
     "WebSockets per client address, 0 = off; more get HTTP 429"},
    {"--max-rooms", "SWITCHBOARD_MAX_ROOMS", OPT_LONG, FIELD(max_rooms), 1, 100000, "64", "N",
     "rooms one connection may join; more get bad_request"},
    {"--max-user-connections", "SWITCHBOARD_MAX_USER_CONNECTIONS", OPT_LONG, FIELD(max_user_conns), 1, 60000, "64", "N",
     "connections one user may hold; more are closed 1008"},
    {"--threads", "SWITCHBOARD_THREADS", OPT_LONG, FIELD(threads), 0, 64, "0", "N",
     "event-loop threads carrying the WebSockets, 0 = one per CPU"},
    {"--presence", "SWITCHBOARD_PRESENCE", OPT_PRESENCE, FIELD(presence), 0, 0, "rooms", "global|rooms|off",
     "who hears who comes and goes: everyone (global; on is its old name), rooms and watch lists, or nobody"},
    {"--history-size", "SWITCHBOARD_HISTORY_SIZE", OPT_LONG, FIELD(history_size), 0, 100000, "100", "N",
     "messages kept per stream (a user's, a room's, the broadcast) for recovery after a reconnect; 0 = off"},
    {"--history-ttl", "SWITCHBOARD_HISTORY_TTL", OPT_LONG, FIELD(history_ttl), 1, 86400, "120", "SECONDS",
     "how long a kept message lasts, and a stream with no message and no subscriber"},
    {"--history-memory", "SWITCHBOARD_HISTORY_MEMORY", OPT_LONG, FIELD(history_memory), 65536, 1L << 40, "67108864", "BYTES",
     "history in all streams; past it the oldest streams lose their messages first"},
    {"--redis", "SWITCHBOARD_REDIS", OPT_REDIS, FIELD(redis), 0, 0, NULL, "URL",
     "run as one node of a cluster through this Redis: " REDIS_URL_FORM " (no TLS: rediss:// is refused)"},
    {"--redis-prefix", "SWITCHBOARD_REDIS_PREFIX", OPT_NAME, FIELD(redis_prefix), 0, 0, "switchboard", "P",
     "prefix of the cluster's Redis keys and channels (several clusters can share one Redis)"},
    {"--node-id", "SWITCHBOARD_NODE_ID", OPT_NAME, FIELD(node_id), 0, 0, NULL, "ID",
     "this node's name in the cluster, unique: an id a live node holds is refused (default: hostname-pid)"},
    {"--node-ttl", "SWITCHBOARD_NODE_TTL", OPT_LONG, FIELD(node_ttl), 2, 3600, "15", "SECONDS",
     "a node that stops refreshing its presence is dead after this: its users leave"},
    {"--log-level", "SWITCHBOARD_LOG_LEVEL", OPT_LEVEL, FIELD(log_level), 0, 0, "info", "LEVEL",
     "error, warn, info or debug"},
    {"--jwt-secret", "SWITCHBOARD_JWT_SECRET", OPT_TEXT, FIELD(jwt_secret), 0, CONFIG_TEXT_MAX,
     NULL, "SECRET", "require tokens signed HS256 with this secret (prefer --jwt-secret-file)"},
    {"--jwt-secret-file", "SWITCHBOARD_JWT_SECRET_FILE", OPT_TEXT, FIELD(jwt_secret_file), 0, PATH_MAX, NULL, "FILE",
     "require HS256 tokens; the secret is this file's content (one trailing newline dropped)"},
    {"--jwt-public-key", "SWITCHBOARD_JWT_PUBLIC_KEY", OPT_TEXT, FIELD(jwt_public_key), 0, PATH_MAX, NULL, "FILE",
     "require tokens signed with this PEM public key's algorithm: RSA = RS256, EC P-256 = ES256"},
    {"--jwt-audience", "SWITCHBOARD_JWT_AUDIENCE", OPT_TEXT, FIELD(jwt_audience), 0, CONFIG_TEXT_MAX, NULL, "AUD",
     "tokens must name this audience (aud)"},
    {"--jwt-issuer", "SWITCHBOARD_JWT_ISSUER", OPT_TEXT, FIELD(jwt_issuer), 0, CONFIG_TEXT_MAX, NULL, "ISS",
     "tokens must come from this issuer (iss)"},
    {"--trusted-proxies", "SWITCHBOARD_TRUSTED_PROXIES", OPT_TEXT, FIELD(trusted_proxies), 0, CONFIG_TEXT_MAX, NULL,
     "CIDR,...", "proxies allowed to name the client: from these peers only, a PROXY protocol header (v1, v2) or "
     "X-Forwarded-For gives the address that --max-per-ip and the logs see"},
    {"--client-allow", "SWITCHBOARD_CLIENT_ALLOW", OPT_TEXT, FIELD(client_allow), 0, CONFIG_TEXT_MAX,
     "send,broadcast,publish,join,users", "LIST",
     "client commands a connection may use unless its token has an allow claim: some of send, broadcast, publish, "
     "join, users, or none (receive-only); ping, hello, refresh, leave are always allowed"},
    {"--client-send-to", "SWITCHBOARD_CLIENT_SEND_TO", OPT_TEXT, FIELD(client_send_to), 0, CONFIG_TEXT_MAX, "*",
     "LIST", "users a send may target unless the token has a send_to claim: names or patterns like support-*, "
     "'*' = anyone"},
    {"--api-key", "SWITCHBOARD_API_KEY", OPT_TEXT, FIELD(api_key), 0, CONFIG_TEXT_MAX, NULL, "KEY",
     "enable the HTTP API for backends at /api/ with this bearer key (prefer --api-key-file)"},
    {"--api-key-file", "SWITCHBOARD_API_KEY_FILE", OPT_TEXT, FIELD(api_key_file), 0, PATH_MAX, NULL, "FILE",
     "the same, the key read from FILE (one trailing newline stripped)"},
};
#define NOPTIONS (sizeof options / sizeof options[0])

void config_usage(FILE *out) {
    fprintf(out, "usage: switchboard [OPTIONS]\n\nA WebSocket message hub: static files, JSON routing to "
                 "users, rooms and everyone.\n\nOptions (each also read from its environment variable):\n");
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct option_def *o = &options[i];
        fprintf(out, "  %s %s\n      %s [%s%s%s]\n", o->flag, o->metavar, o->help, o->env,
                o->def ? ", default " : "", o->def ? o->def : "");
    }
    fprintf(out, "  --healthcheck [URL]\n      probe a running server's /healthz; exit 0 if it answers 200\n"
                 "  --help, --version\n");
    fprintf(out, "\nswitchboard token --user NAME [--ttl 1h] [--rooms a,b] [--jwt-secret SECRET|--jwt-secret-file FILE]\n"
                 "      print an HS256 token for NAME signed with the secret, with the configured aud and iss\n"
                 "      (switchboard token --help)\n");
}

static int set_long(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < o->min || n > o->max) {
        snprintf(err, cap, "%s: '%s' is not a whole number from %ld to %ld", o->flag, v, o->min, o->max);
        return -1;
    }
    *(long *)((char *)cfg + o->offset) = n;
    return 0;
}

static int port_number_ok(const char *s) {
    char *end;
    long n = strtol(s, &end, 10);
    return *s && !*end && n >= 1 && n <= 65535;
}

static int set_port(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    const char *colon = strrchr(v, ':');
    char host[64];
    struct in_addr addr;
    int ok = strlen(v) < sizeof cfg->port;
    if (ok && colon) {
        size_t hlen = (size_t)(colon - v);
        ok = hlen < sizeof host && port_number_ok(colon + 1);
        if (ok) {
            memcpy(host, v, hlen);
            host[hlen] = '\0';
            ok = inet_pton(AF_INET, host, &addr) == 1;
        }
    } else if (ok) ok = port_number_ok(v);
    if (!ok) {
        snprintf(err, cap, "%s: '%s' is not a port (1-65535) or IPV4:PORT", o->flag, v);
        return -1;
    }
    snprintf(cfg->port, sizeof cfg->port, "%s", v);
    return 0;
}

static int set_path(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    struct stat st;
    if (strlen(v) >= sizeof cfg->root || stat(v, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, cap, "%s: '%s' is not a directory", o->flag, v);
        return -1;
    }
    snprintf(cfg->root, sizeof cfg->root, "%s", v);
    return 0;
}

/* 1 if v[0..len) is scheme://host[:port] and nothing more: anything else could never match an Origin. */
static int bare_origin(const char *v, size_t len) {
    size_t scheme = strncmp(v, "http://", 7) == 0 ? 7 : strncmp(v, "https://", 8) == 0 ? 8 : 0;
    if (!scheme || len == scheme) return 0;
    for (size_t i = scheme; i < len; i++)
        if (strchr("/?#@ \\", v[i])) return 0;
    return 1;
}

static int add_origin(struct config *cfg, const struct option_def *o, const char *v, size_t len, char *err,
                      size_t cap) {
    if (len == 0) return 0;
    if (cfg->nallow == CONFIG_MAX_ORIGINS || len >= CONFIG_TEXT_MAX) {
        snprintf(err, cap, "%s: at most %d origins of under %d characters", o->flag, CONFIG_MAX_ORIGINS,
                 CONFIG_TEXT_MAX);
        return -1;
    }
    if (!(len == 1 && v[0] == '*') && !bare_origin(v, len)) {
        snprintf(err, cap, "%s: '%.*s' is not '*' or an origin like http://example.com:8080 (scheme, host and "
                           "port only: a browser's Origin never has a path or a trailing slash)",
                 o->flag, (int)len, v);
        return -1;
    }
    memcpy(cfg->allow_origins[cfg->nallow], v, len);
    cfg->allow_origins[cfg->nallow++][len] = '\0';
    return 0;
}

static int add_host(struct config *cfg, const struct option_def *o, const char *v, size_t len, char *err,
                    size_t cap) {
    char entry[CONFIG_HOST_MAX];
    if (len == 0) return 0;
    if (cfg->nhosts == CONFIG_MAX_HOSTS || len >= sizeof entry) {
        snprintf(err, cap, "%s: at most %d hosts of under %d characters", o->flag, CONFIG_MAX_HOSTS, CONFIG_HOST_MAX);
        return -1;
    }
    memcpy(entry, v, len);
    entry[len] = '\0';
    if (!origin_host_entry_valid(entry)) {
        snprintf(err, cap, "%s: '%s' is not a host name or address with an optional :port", o->flag, entry);
        return -1;
    }
    memcpy(cfg->allowed_hosts[cfg->nhosts++], entry, len + 1);
    return 0;
}

/* Adds each entry of a comma-separated list (a flag usually carries one; the variable, several). */
static int set_list(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    for (const char *p = v;; p++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && *p == ' ') p++, len--;
        while (len && p[len - 1] == ' ') len--;
        int rc = o->type == OPT_HOSTS ? add_host(cfg, o, p, len, err, cap) : add_origin(cfg, o, p, len, err, cap);
        if (rc < 0) return -1;
        if (!comma) return 0;
        p = comma;
    }
}

static int set_level(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    if (log_level_parse(v, &cfg->log_level) == 0) return 0;
    snprintf(err, cap, "%s: '%s' is not one of error, warn, info, debug", o->flag, v);
    return -1;
}

static int set_presence(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    enum presence_mode mode;
    if (presence_mode_parse(v, &mode) == 0) {
        *(int *)((char *)cfg + o->offset) = (int)mode;
        return 0;
    }
    snprintf(err, cap, "%s: '%s' is not global, rooms or off (or on, global's old name)", o->flag, v);
    return -1;
}

static int set_redis(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    struct redis_url u;
    char why[CONFIG_TEXT_MAX];
    if (strlen(v) < sizeof cfg->redis && (!*v || redis_url_parse(v, &u, why, sizeof why) == 0)) {
        snprintf(cfg->redis, sizeof cfg->redis, "%s", v);
        return 0;
    }
    snprintf(err, cap, "%s: %s", o->flag, strlen(v) < sizeof cfg->redis ? why : "the URL is too long");
    return -1;
}

static int set_name(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    if (!name_valid(v)) {
        snprintf(err, cap, "%s: '%s' is not 1-64 of A-Z a-z 0-9 _ . -", o->flag, v);
        return -1;
    }
    snprintf((char *)cfg + o->offset, SB_NAME_MAX + 1, "%s", v);
    return 0;
}

/* An empty value is refused rather than read as "not set": an empty secret must not mean open mode. */
static int set_text(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    size_t len = strlen(v);
    if (len == 0 || len >= (size_t)o->max) {
        snprintf(err, cap, "%s: %s: the value must be 1 to %ld characters", o->flag, len ? "too long" : "empty",
                 o->max - 1);
        return -1;
    }
    memcpy((char *)cfg + o->offset, v, len + 1);
    return 0;
}

static int set_option(struct config *cfg, const struct option_def *o, const char *v, char *err, size_t cap) {
    switch (o->type) {
    case OPT_REDIS: return set_redis(cfg, o, v, err, cap);
    case OPT_NAME: return set_name(cfg, o, v, err, cap);
    case OPT_PORT: return set_port(cfg, o, v, err, cap);
    case OPT_PATH: return set_path(cfg, o, v, err, cap);
    case OPT_ORIGIN:
    case OPT_HOSTS: return set_list(cfg, o, v, err, cap);
    case OPT_LONG: return set_long(cfg, o, v, err, cap);
    case OPT_LEVEL: return set_level(cfg, o, v, err, cap);
    case OPT_PRESENCE: return set_presence(cfg, o, v, err, cap);
    case OPT_TEXT: return set_text(cfg, o, v, err, cap);
    }
    return -1;
}

static const struct option_def *find_flag(const char *arg, size_t len) {
    for (size_t i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].flag) == len && strncmp(arg, options[i].flag, len) == 0) return &options[i];
    return NULL;
}

static int load_defaults_and_env(struct config *cfg, char *err, size_t cap) {
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTIONS; i++)
        if (options[i].def && set_option(cfg, &options[i], options[i].def, err, cap) < 0) return -1;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const char *v = getenv(options[i].env);
        if (v && set_option(cfg, &options[i], v, err, cap) < 0) {
            snprintf(err + strlen(err), cap - strlen(err), " (from %s)", options[i].env);
            return -1;
        }
    }
    return 0;
}

/* --healthcheck takes an optional URL: the next argument, unless it is another flag. */
static int take_healthcheck(struct config *cfg, int argc, char **argv, int i) {
    cfg->healthcheck = 1;
    if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
        snprintf(cfg->healthcheck_url, sizeof cfg->healthcheck_url, "%s", argv[i + 1]);
        return i + 1;
    }
    return i;
}

/* Returns CONFIG_RUN, or what main should exit with after --help/--version or an error. */
static enum config_result parse_args(struct config *cfg, int argc, char **argv, char *err, size_t cap) {
    int origin_flags = 0, host_flags = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            config_usage(stdout);
            return CONFIG_EXIT_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("switchboard %s\n", SB_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (strcmp(arg, "--healthcheck") == 0) {
            i = take_healthcheck(cfg, argc, argv, i);
            continue;
        }
        const struct option_def *o = find_flag(arg, eq ? (size_t)(eq - arg) : strlen(arg));
        if (!o) {
            snprintf(err, cap, "unknown option '%s'", arg);
            return CONFIG_EXIT_USAGE;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, cap, "%s needs a value (%s)", o->flag, o->metavar);
            return CONFIG_EXIT_USAGE;
        }
        /* flags replace the variable's list */
        if (o->type == OPT_ORIGIN && origin_flags++ == 0) cfg->nallow = 0;
        if (o->type == OPT_HOSTS && host_flags++ == 0) cfg->nhosts = 0;
        if (set_option(cfg, o, v, err, cap) < 0) return CONFIG_EXIT_USAGE;
    }
    return CONFIG_RUN;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The default root: www beside the directory holding the binary (build/ in a checkout), then ./www. */
static void default_root(struct config *cfg) {
    char exe[PATH_MAX], candidate[PATH_MAX + 8];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        snprintf(candidate, sizeof candidate, "%s/../www", dirname(exe));
        if (is_dir(candidate) && realpath(candidate, exe)) {
            snprintf(cfg->root, sizeof cfg->root, "%s", exe);
            return;
        }
    }
    snprintf(cfg->root, sizeof cfg->root, "www");
}

/* hostname-pid, with whatever a name may not hold replaced by '-'. */
static void default_node_id(struct config *cfg) {
    char host[64] = "node";
    if (gethostname(host, sizeof host) < 0) snprintf(host, sizeof host, "node");
    host[sizeof host - 1] = '\0';
    snprintf(cfg->node_id, sizeof cfg->node_id, "%.40s-%ld", host, (long)getpid());
    for (char *p = cfg->node_id; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", *p)) *p = '-';
}

static void default_healthcheck_url(struct config *cfg) {
    const char *colon = strrchr(cfg->port, ':');
    if (!colon || strncmp(cfg->port, "0.0.0.0:", 8) == 0)
        snprintf(cfg->healthcheck_url, sizeof cfg->healthcheck_url, "http://127.0.0.1:%s/healthz",
                 colon ? colon + 1 : cfg->port);
    else snprintf(cfg->healthcheck_url, sizeof cfg->healthcheck_url, "http://%s/healthz", cfg->port);
}

/* Why `text` (n bytes read from the key file, newline stripped) is no key, or NULL if it is one. */
static const char *bad_key(const char *text, size_t n, size_t cap) {
    if (n >= cap) return "longer than 511 bytes";
    if (n == 0) return "empty";
    if (memchr(text, '\0', n) || memchr(text, '\n', n) || memchr(text, '\r', n)) return "not a single line";
    return NULL;
}

/* The API key from --api-key-file: its content without one trailing newline. */
static int read_api_key(struct config *cfg, char *err, size_t cap) {
    char text[CONFIG_TEXT_MAX + 2];
    FILE *f = fopen(cfg->api_key_file, "r");
    const char *why = f ? NULL : strerror(errno);
    size_t n = f ? fread(text, 1, sizeof text, f) : 0;
    if (f && ferror(f)) why = "cannot be read";
    if (f) fclose(f);
    if (n && text[n - 1] == '\n') n--;
    if (n && text[n - 1] == '\r') n--;
    if (!why) why = bad_key(text, n, sizeof cfg->api_key);
    if (why) {
        snprintf(err, cap, "--api-key-file: '%.300s': %s", cfg->api_key_file, why);
        return -1;
    }
    memcpy(cfg->api_key, text, n);
    cfg->api_key[n] = '\0';
    return 0;
}

/* --http-threads 0: two workers per CPU, at least CONFIG_HTTP_THREADS_MIN_AUTO (a few slow clients, each
 * holding a worker up to request_timeout_ms, must not stall every handshake: test_limits' slowloris
 * case holds 6), at most CONFIG_HTTP_THREADS_MAX_AUTO: a handshake is ~100 µs of CPU, and workers
 * beyond the CPUs only add wake-ups and context switches to each one (docs/BENCHMARKS.md). */
static int resolve_http_threads(struct config *cfg, char *err, size_t cap) {
    if (cfg->http_threads == 1) {
        snprintf(err, cap, "--http-threads: '1' is not 0 (two per CPU) or a whole number from 2 to 1024");
        return -1;
    }
    if (cfg->http_threads == 0) {
        long n = 2 * sysconf(_SC_NPROCESSORS_ONLN);
        cfg->http_threads = n < CONFIG_HTTP_THREADS_MIN_AUTO ? CONFIG_HTTP_THREADS_MIN_AUTO
                            : n > CONFIG_HTTP_THREADS_MAX_AUTO ? CONFIG_HTTP_THREADS_MAX_AUTO : n;
    }
    return 0;
}

static int resolve_api_key(struct config *cfg, char *err, size_t cap) {
    if (!cfg->api_key_file[0]) return 0;
    if (cfg->api_key[0]) {
        snprintf(err, cap, "--api-key and --api-key-file (or their variables) both given: use one");
        return -1;
    }
    return read_api_key(cfg, err, cap);
}

static int check_trusted_proxies(const struct config *cfg, char *err, size_t cap) {
    static struct realip_list list; /* only checked here: 2 KiB, off the stack */
    char why[CONFIG_TEXT_MAX];
    if (!cfg->trusted_proxies[0] || realip_list_parse(cfg->trusted_proxies, &list, why, sizeof why) == 0) return 0;
    snprintf(err, cap, "--trusted-proxies: %s", why);
    return -1;
}

static int check_permissions(const struct config *cfg, char *err, size_t cap) {
    char why[CONFIG_TEXT_MAX];
    unsigned allow;
    if (perms_parse_allow(cfg->client_allow, &allow, why, sizeof why) < 0) {
        snprintf(err, cap, "--client-allow: %s", why);
        return -1;
    }
    if (perms_check_send_to(cfg->client_send_to, why, sizeof why) < 0) {
        snprintf(err, cap, "--client-send-to: %s", why);
        return -1;
    }
    return 0;
}

enum config_result config_load(struct config *cfg, int argc, char **argv) {
    char err[CONFIG_TEXT_MAX + 256] = "";
    enum config_result r = load_defaults_and_env(cfg, err, sizeof err) < 0
                               ? CONFIG_EXIT_USAGE
                               : parse_args(cfg, argc, argv, err, sizeof err);
    if (r == CONFIG_RUN && resolve_api_key(cfg, err, sizeof err) < 0) r = CONFIG_EXIT_USAGE;
    if (r == CONFIG_RUN && resolve_http_threads(cfg, err, sizeof err) < 0) r = CONFIG_EXIT_USAGE;
    if (r == CONFIG_RUN && check_permissions(cfg, err, sizeof err) < 0) r = CONFIG_EXIT_USAGE;
    if (r == CONFIG_RUN && check_trusted_proxies(cfg, err, sizeof err) < 0) r = CONFIG_EXIT_USAGE;
    if (r == CONFIG_RUN && !cfg->root[0]) default_root(cfg);
    if (r == CONFIG_RUN && !cfg->node_id[0]) default_node_id(cfg);
    if (r == CONFIG_RUN && cfg->healthcheck && !cfg->healthcheck_url[0]) default_healthcheck_url(cfg);
    if (r == CONFIG_RUN && !cfg->healthcheck && keys_check(cfg, err, sizeof err) < 0) r = CONFIG_EXIT_USAGE;
    if (r == CONFIG_EXIT_USAGE) {
        fprintf(stderr, "switchboard: %s\n\n", err);
        config_usage(stderr);
    }
    return r;
}

int config_check_root(const struct config *cfg, char *err, size_t cap) {
    if (is_dir(cfg->root)) return 0;
    snprintf(err, cap, "the static files' directory '%.300s' does not exist: give --root DIR (or SWITCHBOARD_ROOT)",
             cfg->root);
    return -1;
}

void config_origin_list(const struct config *cfg, const char **out) {
    for (size_t i = 0; i < cfg->nallow; i++) out[i] = cfg->allow_origins[i];
}

void config_host_list(const struct config *cfg, const char **out) {
    for (size_t i = 0; i < cfg->nhosts; i++) out[i] = cfg->allowed_hosts[i];
}

int config_loopback_only(const struct config *cfg) {
    return strchr(cfg->port, ':') && strncmp(cfg->port, "127.", 4) == 0; /* --port is N or IPV4:PORT */
}

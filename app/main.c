/* main: the process's lifetime: configuration, start, the tick loop, signals and shutdown.
 *
 * Signals are blocked in every thread and taken synchronously by the main thread with
 * sigtimedwait, which doubles as the once-a-second tick that drives server pings. Shutdown runs on
 * this ordinary thread, never in a signal handler: refuse new handshakes, send 1001 to every client,
 * give them a moment to answer, then stop the event loops (which end and close every connection
 * still open) and CivetWeb (which ends the requests and handshakes in flight). */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acceptor.h"
#include "cluster.h"
#include "config.h"
#include "fdlimit.h"
#include "healthcheck.h"
#include "hub.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "nodeclaim.h"
#include "outbox.h"
#include "perms.h"
#include "server.h"
#include "tokencmd.h"
#include "ws.h"

#define SHUTDOWN_DRAIN_MS 2500  /* wait for clients to answer our 1001; mg_stop takes up to 2 s more */
#define LOOPS_PER_CPU_MAX 16    /* --threads 0: one event loop per CPU, up to this many */
#define MAIN_TRIM_QUIET_BYTES (1024 * 1024) /* traffic in a second under which the heap is trimmed */

struct app {
    struct outbox *ob;
    struct loops *loops;
    struct hub *hub;
    struct cluster *cluster; /* with --redis only */
    struct ws_server *ws;
    struct server *srv;
    struct acceptor *door;
    struct jwt_verifier *verifier; /* NULL: no key, identity is claimed, not proven */
};

static void block_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static size_t loop_count(long threads) {
    long n = threads > 0 ? threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0 && n > LOOPS_PER_CPU_MAX) n = LOOPS_PER_CPU_MAX;
    return n < 1 ? 1 : (size_t)n;
}

/* Raises the open-file limit for --max-connections, or lowers --max-connections to what the hard limit
 * allows (saying so once): every WebSocket holds a descriptor, each HTTP worker one more, CivetWeb
 * queues up to 20 handed-over sockets, each loop an epoll set, an eventfd and a timerfd. Connections
 * whose head is pending hold one each too, for at most --header-timeout. */
static void fit_descriptors(struct config *cfg) {
    long reserve = FDLIMIT_RESERVE + cfg->http_threads + 20 + 3 * (long)loop_count(cfg->threads);
    struct fdlimit fl;
    if (!fdlimit_raise(cfg->max_connections, reserve, &fl))
        log_warn("open-file limit: the hard limit of %ld descriptors holds %ld WebSockets, not --max-connections "
                 "%ld: handshakes beyond %ld get 503 (raise the limit, e.g. ulimit -Hn or LimitNOFILE=)",
                 fl.hard, fl.connections, cfg->max_connections, fl.connections);
    cfg->max_connections = fl.connections;
    metrics_set_limits(fl.connections, fl.open_files);
}

/* What would make this start a mistake, said before anything listens: no static root (fatal), a root
 * without index.html (the page at / is a 404: a warning), a --node-id a live node holds (fatal), an
 * unreachable Redis (one warning: the node starts degraded and keeps reconnecting). Returns 0 or -1. */
static int preflight(const struct config *cfg) {
    char err[CONFIG_TEXT_MAX + 256], index[PATH_MAX + 16];
    if (config_check_root(cfg, err, sizeof err) < 0) {
        log_error("cannot start: %s", err);
        return -1;
    }
    snprintf(index, sizeof index, "%s/index.html", cfg->root);
    if (access(index, R_OK) != 0)
        log_warn("--root %s has no readable index.html: / answers 404 (only the files under it are served)", cfg->root);
    struct redis_url u;
    if (!cfg->redis[0] || redis_url_parse(cfg->redis, &u, err, sizeof err) < 0) return 0; /* config checked it */
    enum nodeclaim_result r = nodeclaim_check(&u, cfg->redis_prefix, cfg->node_id, cfg->node_ttl, err, sizeof err);
    if (r == NODECLAIM_TAKEN) log_error("cannot start: %s", err);
    if (r == NODECLAIM_UNREACHABLE)
        log_warn("cluster: redis %s:%d is unreachable (%s): starting degraded, serving this node's clients only "
                 "(/healthz \"redis\":\"down\"); reconnecting in the background", u.host, u.port, err);
    return r == NODECLAIM_TAKEN ? -1 : 0;
}

/* The ws settings point at these for the whole run; the strings live in the config. */
static const char *origins[CONFIG_MAX_ORIGINS];
static const char *hosts[CONFIG_MAX_HOSTS];

static int app_start(struct app *a, const struct config *cfg) {
    config_origin_list(cfg, origins);
    config_host_list(cfg, hosts);
    /* With --redis, history lives in Redis (clusterhist.h), so that a client recovers on whichever node it
     * lands; this node's own history (history.h) is off. */
    struct history_options history = {cfg->redis[0] ? 0 : cfg->history_size, cfg->history_ttl * 1000, (size_t)cfg->history_memory};
    struct hub_options hopt = {cfg->presence, cfg->ping_interval * 1000, cfg->max_rooms, cfg->max_user_conns, history};
    struct ws_settings wset = {cfg->max_message, cfg->max_connections, cfg->outbox, cfg->rate_limit,
                               cfg->max_per_ip, origins, cfg->nallow, hosts, cfg->nhosts, NULL};
    char err[256] = "";
    struct acceptor_settings aset = {cfg->port, cfg->header_timeout, cfg->max_per_ip, cfg->trusted_proxies};
    if (!(a->door = acceptor_new(&aset, err, sizeof err))) {
        log_error("cannot start: %s", err);
        return -1;
    }
    a->verifier = keys_jwt_verifier(cfg, err, sizeof err);
    if (!a->verifier && err[0]) {
        log_error("cannot start: %s", err);
        return -1;
    }
    if (!a->verifier)
        log_warn("identity is not verified: no --jwt-secret or --jwt-public-key; any client may claim any user name");
    if (!a->verifier && !cfg->nhosts && !config_loopback_only(cfg))
        log_warn("open mode on a non-loopback address without --allowed-hosts: a page on any site whose name is "
                 "rebound to this server's address passes the Origin check (docs/SECURITY.md, DNS rebinding)");
    wset.verifier = a->verifier;
    a->ob = outbox_new(ws_outbox_io());
    a->loops = a->ob ? loops_start(loop_count(cfg->threads), a->ob) : NULL;
    a->hub = a->loops ? hub_new(a->ob, &hopt) : NULL;
    struct cluster_options copt = {cfg->redis, cfg->redis_prefix, cfg->node_id, cfg->node_ttl,
                                   cfg->history_size ? cfg->history_ttl : 0, cfg->history_size};
    int clustered = !cfg->redis[0] || (a->hub && (a->cluster = cluster_start(a->hub, a->ob, &copt, err, sizeof err)));
    a->ws = a->hub && clustered ? ws_new(a->hub, a->ob, &wset) : NULL;
    a->srv = a->ws ? server_start(cfg, a->ws, a->hub, err, sizeof err) : NULL;
    if (!a->srv) {
        log_error("cannot start: %s", err[0] ? err : "out of memory");
        return -1;
    }
    /* last: every handler is in place before the first connection is accepted, so none gets a 404 */
    if (acceptor_start(a->door, a->loops, server_serve, a->srv) < 0) {
        log_error("cannot start: cannot accept on the event loops");
        return -1;
    }
    return 0;
}

static void app_stop(struct app *a) {
    if (a->ws) ws_stop_accepting(a->ws);
    if (a->hub) {
        hub_shutdown(a->hub, 1001, "server shutting down");
        int64_t until = hub_now_ms() + SHUTDOWN_DRAIN_MS;
        while (hub_count(a->hub) > 0 && hub_now_ms() < until) usleep(20 * 1000);
    }
    loops_stop(a->loops); /* no head is read or handed to CivetWeb from here on */
    server_stop(a->srv);
    acceptor_free(a->door);
    cluster_stop(a->cluster);
    loops_free(a->loops);
    outbox_free(a->ob);
    ws_free(a->ws);
    hub_free(a->hub);
    jwt_verifier_free(a->verifier);
}

/* A burst (a join storm with presence: every join goes to everyone, every welcome lists everyone)
 * leaves glibc's arenas holding the freed queues and frames, tens of MiB for 10,000 connections, which
 * malloc would keep until the next burst. Once a second passes with under MAIN_TRIM_QUIET_BYTES of
 * traffic, whole free pages go back to the system (once per quiet spell), so RSS follows what the
 * connections hold, about a kilobyte each when idle (docs/BENCHMARKS.md). Never while traffic flows:
 * the pages given back would be faulted in again at once (measured: fan-out lost 10-30 %). */
static void give_back_memory(void) {
    static uint64_t last_bytes;
    static int trimmed;
    uint64_t bytes = metrics_get(M_BYTES_IN) + metrics_get(M_BYTES_OUT);
    int quiet = bytes - last_bytes < MAIN_TRIM_QUIET_BYTES;
    last_bytes = bytes;
    if (quiet && !trimmed) malloc_trim(0);
    trimmed = quiet;
}

/* Ticks once a second until SIGINT or SIGTERM. */
static void run(struct app *a, const sigset_t *signals) {
    struct timespec second = {1, 0};
    for (;;) {
        int sig = sigtimedwait(signals, NULL, &second);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("signal %d: shutting down", sig);
            return;
        }
        hub_tick(a->hub, hub_now_ms());
        give_back_memory();
    }
}

int main(int argc, char **argv) {
    static struct config cfg;
    if (argc > 1 && strcmp(argv[1], "token") == 0) return tokencmd_main(argc - 1, argv + 1);
    enum config_result r = config_load(&cfg, argc, argv);
    if (r == CONFIG_EXIT_OK) return 0;
    if (r == CONFIG_EXIT_USAGE) return 2;
    if (cfg.healthcheck) return healthcheck_run(cfg.healthcheck_url);
    log_set_level(cfg.log_level);

    sigset_t signals;
    block_signals(&signals);
    struct app a = {0};
    if (preflight(&cfg) < 0) return 2;
    if (perms_set_defaults(cfg.client_allow, cfg.client_send_to) < 0) return 1; /* config checked them */
    fit_descriptors(&cfg);
    if (app_start(&a, &cfg) < 0) {
        app_stop(&a);
        return 1;
    }
    log_info("switchboard %s listening on http://%s%s/ (root %s)", SB_VERSION, strchr(cfg.port, ':') ? "" : "0.0.0.0:",
             cfg.port, cfg.root);
    run(&a, &signals);
    app_stop(&a);
    log_info("stopped");
    return 0;
}

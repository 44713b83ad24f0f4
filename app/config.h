/* config: every setting of the server, from one declarative table.
 *
 * The table in config.c names each option once (flag, environment variable, type, default, bounds,
 * help) and drives --flag parsing, the SWITCHBOARD_* environment, --help and validation, so a new
 * option is one row. Precedence: default, then environment, then command line. */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_MAX_ORIGINS 32
#define CONFIG_MAX_HOSTS 32
#define CONFIG_HOST_MAX 256
#define CONFIG_TEXT_MAX 512

#define CONFIG_HTTP_THREADS_MIN_AUTO 8  /* --http-threads 0: at least this many */
#define CONFIG_HTTP_THREADS_MAX_AUTO 16 /* and at most this many */

struct config {
    char port[64];               /* where the acceptor listens: "8080" or "127.0.0.1:8080" */
    char root[PATH_MAX];         /* static files; "" until config_load picks the default */
    char allow_origins[CONFIG_MAX_ORIGINS][CONFIG_TEXT_MAX];
    size_t nallow;
    char allowed_hosts[CONFIG_MAX_HOSTS][CONFIG_HOST_MAX]; /* --allowed-hosts; none = every Host */
    size_t nhosts;
    long max_message;            /* bytes */
    long max_connections;
    long outbox;                 /* bytes per connection */
    long ping_interval;          /* seconds */
    long rate_limit;             /* messages per second per connection; 0 = off */
    long max_per_ip;             /* WebSockets per client address; 0 = off */
    long max_rooms;              /* rooms per connection */
    long max_user_conns;         /* connections per user */
    long threads;                /* event loops; 0 = one per CPU */
    long http_threads;           /* CivetWeb's worker pool; config_load resolves 0 (two per CPU) */
    long header_timeout;         /* seconds from accept to a whole request head */
    int presence;                /* enum presence_mode (presence.h) */
    long history_size;           /* messages kept per stream for recovery (history.h); 0 = off */
    long history_ttl;            /* seconds a kept message and an idle stream last */
    long history_memory;         /* bytes of history in all streams */
    enum sb_log_level log_level;
    char redis[CONFIG_TEXT_MAX]; /* redis://... : run as a node of a cluster; "" = alone */
    char redis_prefix[65];       /* key and channel prefix in Redis */
    char node_id[65];            /* this node's name in the cluster; default hostname-pid */
    long node_ttl;               /* seconds: a silent node's users leave within this */
    int healthcheck;             /* run as a health probe instead of a server */
    char healthcheck_url[CONFIG_TEXT_MAX];
    char jwt_secret[CONFIG_TEXT_MAX];      /* HS256 secret; "" = none (keys.h reads the key settings) */
    char jwt_secret_file[PATH_MAX];        /* file holding the HS256 secret */
    char jwt_public_key[PATH_MAX];         /* PEM file of an RSA (RS256) or EC P-256 (ES256) public key */
    char jwt_audience[CONFIG_TEXT_MAX];    /* required aud; "" = none */
    char jwt_issuer[CONFIG_TEXT_MAX];      /* required iss; "" = none */
    char trusted_proxies[CONFIG_TEXT_MAX]; /* CIDR list (realip.h); "" = none */
    char client_allow[CONFIG_TEXT_MAX];   /* default allowed client commands (perms.h) */
    char client_send_to[CONFIG_TEXT_MAX]; /* default users a send may target (perms.h) */
    char api_key[CONFIG_TEXT_MAX];  /* the server API's bearer key (api.h); "" = the API is off */
    char api_key_file[PATH_MAX];    /* where api_key was read from, if it came from a file */
};

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_EXIT_USAGE };

/* Fills cfg from the environment and argv. On CONFIG_EXIT_OK (--help, --version) the text is already
 * printed to stdout; on CONFIG_EXIT_USAGE the error and the usage are printed to stderr. */
enum config_result config_load(struct config *cfg, int argc, char **argv);
/* Prints the usage, generated from the option table. */
void config_usage(FILE *out);
/* -1 with the reason in err when cfg->root (given or the default) is no directory: nothing could be
 * served. Not part of config_load: a health probe or the token command has no use for a root. */
int config_check_root(const struct config *cfg, char *err, size_t cap);
/* The origins as a pointer array, for origin_allowed(). */
void config_origin_list(const struct config *cfg, const char **out);
/* The allowed hosts as a pointer array, for origin_host_allowed(). */
void config_host_list(const struct config *cfg, const char **out);
/* 1 if the server listens on a loopback address only (--port 127.x.x.x:N), so no other machine, and
 * no page through another machine's name, reaches it. */
int config_loopback_only(const struct config *cfg);

#endif

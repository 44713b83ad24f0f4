/* fuzz_config: command lines through config_load (app/config.c).
 *
 * Input: argv words separated by NUL, space or newline (argv[0] is "switchboard"), each in a buffer
 * of exactly its size. stdout and stderr are pointed at /dev/null during the call (usage and errors
 * are printed) and restored after. Beyond not crashing: the result is one of the three, and a
 * configuration accepted to run holds only values inside the documented bounds. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_check.h"
#include "presence.h"

#define MAX_WORDS 64

static struct config cfg;

static enum config_result load_quietly(int argc, char **argv) {
    static int devnull = -1;
    if (devnull < 0) devnull = open("/dev/null", O_WRONLY);
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    dup2(devnull, 1);
    dup2(devnull, 2);
    enum config_result r = config_load(&cfg, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    return r;
}

static void check_bounds(void) {
    FUZZ_CHECK(memchr(cfg.port, '\0', sizeof cfg.port) && cfg.port[0]);
    FUZZ_CHECK(cfg.root[0] != '\0');
    FUZZ_CHECK(cfg.max_message >= 1 && cfg.max_message <= 1L << 30);
    FUZZ_CHECK(cfg.max_connections >= 1 && cfg.max_connections <= 1000000);
    FUZZ_CHECK(cfg.http_threads >= 2 && cfg.http_threads <= 1024);
    FUZZ_CHECK(cfg.outbox >= 1024 && cfg.ping_interval >= 1 && cfg.rate_limit >= 0 && cfg.max_per_ip >= 0);
    FUZZ_CHECK(cfg.presence == PRESENCE_OFF || cfg.presence == PRESENCE_GLOBAL || cfg.presence == PRESENCE_ROOMS);
    FUZZ_CHECK(cfg.history_size >= 0 && cfg.history_size <= 100000);
    FUZZ_CHECK(cfg.history_ttl >= 1 && cfg.history_ttl <= 86400);
    FUZZ_CHECK(cfg.history_memory >= 65536 && cfg.history_memory <= 1L << 40);
    FUZZ_CHECK(cfg.log_level >= SB_LOG_ERROR && cfg.log_level <= SB_LOG_DEBUG);
    FUZZ_CHECK(cfg.nallow <= CONFIG_MAX_ORIGINS);
    for (size_t i = 0; i < cfg.nallow; i++) {
        const char *o = cfg.allow_origins[i];
        FUZZ_CHECK(strcmp(o, "*") == 0 || strncmp(o, "http://", 7) == 0 || strncmp(o, "https://", 8) == 0);
    }
    FUZZ_CHECK(!cfg.healthcheck || cfg.healthcheck_url[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *argv[MAX_WORDS + 2] = {"switchboard"};
    int argc = 1;
    size_t start = 0;
    for (size_t i = 0; i <= size && argc <= MAX_WORDS; i++) {
        if (i < size && data[i] != 0 && data[i] != ' ' && data[i] != '\n') continue;
        if (i > start) {
            argv[argc] = malloc(i - start + 1);
            memcpy(argv[argc], data + start, i - start);
            argv[argc++][i - start] = '\0';
        }
        start = i + 1;
    }
    argv[argc] = NULL;
    enum config_result r = load_quietly(argc, argv);
    FUZZ_CHECK(r == CONFIG_RUN || r == CONFIG_EXIT_OK || r == CONFIG_EXIT_USAGE);
    if (r == CONFIG_RUN) check_bounds();
    for (int i = 1; i < argc; i++) free(argv[i]);
    return 0;
}

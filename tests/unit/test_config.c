/* test_config: option parsing from argv and the SWITCHBOARD_* environment (app/config.c).
 *
 * Docker users configure through the environment, everyone else through flags, and docs/CLI.md
 * promises: defaults, then environment, then flags (a flag wins over its variable); a bad value is a
 * usage error (exit 2) reported on stderr; --help and --version print to stdout and exit 0. Each
 * call's stdout and stderr are captured into temporary files so the tests can say which stream got
 * what, and the terminal stays quiet. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "presence.h"

static const char *const env_names[] = {
    "SWITCHBOARD_PORT", "SWITCHBOARD_ROOT", "SWITCHBOARD_ALLOW_ORIGINS", "SWITCHBOARD_MAX_MESSAGE",
    "SWITCHBOARD_MAX_CONNECTIONS", "SWITCHBOARD_OUTBOX", "SWITCHBOARD_PING_INTERVAL", "SWITCHBOARD_RATE_LIMIT",
    "SWITCHBOARD_MAX_PER_IP", "SWITCHBOARD_THREADS", "SWITCHBOARD_PRESENCE", "SWITCHBOARD_LOG_LEVEL",
    "SWITCHBOARD_JWT_SECRET", "SWITCHBOARD_JWT_SECRET_FILE", "SWITCHBOARD_JWT_PUBLIC_KEY", "SWITCHBOARD_JWT_AUDIENCE",
    "SWITCHBOARD_JWT_ISSUER", "SWITCHBOARD_ALLOWED_HOSTS",
};

static void clear_env(void) {
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++) unsetenv(env_names[i]);
}

static struct config cfg; /* large (PATH_MAX + 32 origins): not on the stack */
static char out_text[16384], err_text[16384];

/* Points fd at a fresh temporary file; returns the saved original. */
static int capture_start(FILE *stream, FILE **tmp) {
    fflush(stream);
    *tmp = tmpfile();
    int saved = dup(fileno(stream));
    dup2(fileno(*tmp), fileno(stream));
    return saved;
}

static void capture_end(FILE *stream, FILE *tmp, int saved, char *text, size_t cap) {
    fflush(stream);
    dup2(saved, fileno(stream));
    close(saved);
    rewind(tmp);
    size_t n = fread(text, 1, cap - 1, tmp);
    text[n] = '\0';
    fclose(tmp);
}

/* Runs config_load on a NULL-terminated argv (argv[0] included), capturing what it prints. */
static enum config_result load(const char *const *argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    FILE *out, *err;
    int saved_out = capture_start(stdout, &out), saved_err = capture_start(stderr, &err);
    enum config_result r = config_load(&cfg, argc, (char **)argv);
    capture_end(stdout, out, saved_out, out_text, sizeof out_text);
    capture_end(stderr, err, saved_err, err_text, sizeof err_text);
    return r;
}

#define LOAD(...) load((const char *const[]){"switchboard", __VA_ARGS__, NULL})
#define LOAD_NONE() load((const char *const[]){"switchboard", NULL})

static void test_defaults(void) {
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_STR(cfg.port, "8080");
    CHECK(cfg.root[0] != '\0');
    CHECK_EQ_INT(cfg.nallow, 0);
    CHECK_EQ_INT(cfg.max_message, 65536);
    CHECK_EQ_INT(cfg.max_connections, 10000);
    long auto_threads = 2 * sysconf(_SC_NPROCESSORS_ONLN); /* --http-threads 0: two per CPU, 8 to 16 */
    CHECK_EQ_INT(cfg.http_threads, auto_threads < 8 ? 8 : auto_threads > 16 ? 16 : auto_threads);
    CHECK_EQ_INT(cfg.outbox, 1048576);
    CHECK_EQ_INT(cfg.ping_interval, 20);
    CHECK_EQ_INT(cfg.rate_limit, 0);
    CHECK_EQ_INT(cfg.max_per_ip, 0);
    CHECK_EQ_INT(cfg.presence, PRESENCE_ROOMS);
    CHECK_EQ_INT(cfg.threads, 0);
    CHECK_EQ_INT(cfg.log_level, SB_LOG_INFO);
    CHECK_EQ_INT(cfg.healthcheck, 0);
    CHECK_EQ_STR(out_text, "");
    CHECK_EQ_STR(err_text, "");
}

static void test_each_flag(void) {
    CHECK_EQ_INT(LOAD("--port", "9000", "--root", "/tmp", "--allow-origin", "http://localhost:3000",
                      "--max-message", "100", "--max-connections", "5", "--outbox", "2048", "--ping-interval", "7",
                      "--rate-limit", "10", "--max-per-ip", "3", "--threads", "2", "--http-threads", "4", "--presence", "off", "--log-level", "debug"),
                 CONFIG_RUN);
    CHECK_EQ_STR(cfg.port, "9000");
    CHECK_EQ_STR(cfg.root, "/tmp");
    CHECK_EQ_INT(cfg.nallow, 1);
    CHECK_EQ_STR(cfg.allow_origins[0], "http://localhost:3000");
    CHECK_EQ_INT(cfg.max_message, 100);
    CHECK_EQ_INT(cfg.max_connections, 5);
    CHECK_EQ_INT(cfg.outbox, 2048);
    CHECK_EQ_INT(cfg.ping_interval, 7);
    CHECK_EQ_INT(cfg.rate_limit, 10);
    CHECK_EQ_INT(cfg.max_per_ip, 3);
    CHECK_EQ_INT(cfg.http_threads, 4);
    CHECK_EQ_INT(cfg.threads, 2);
    CHECK_EQ_INT(cfg.presence, PRESENCE_OFF);
    CHECK_EQ_INT(cfg.log_level, SB_LOG_DEBUG);
    CHECK_EQ_STR(err_text, "");
}

static void test_equals_form(void) {
    CHECK_EQ_INT(LOAD("--port=127.0.0.1:9001", "--max-message=1", "--log-level=error", "--presence=on",
                      "--allow-origin=*", "--outbox=1024"),
                 CONFIG_RUN);
    CHECK_EQ_STR(cfg.port, "127.0.0.1:9001");
    CHECK_EQ_INT(cfg.max_message, 1);
    CHECK_EQ_INT(cfg.log_level, SB_LOG_ERROR);
    CHECK_EQ_INT(cfg.presence, PRESENCE_GLOBAL); /* on: global's old name */
    CHECK(cfg.nallow == 1 && strcmp(cfg.allow_origins[0], "*") == 0);
    CHECK_EQ_INT(cfg.outbox, 1024);
    CHECK_EQ_INT(LOAD("--root=/"), CONFIG_RUN);
    CHECK_EQ_STR(cfg.root, "/");
}

static void test_env(void) {
    setenv("SWITCHBOARD_PORT", "7000", 1);
    setenv("SWITCHBOARD_MAX_MESSAGE", "4096", 1);
    setenv("SWITCHBOARD_RATE_LIMIT", "50", 1);
    setenv("SWITCHBOARD_PRESENCE", "off", 1);
    setenv("SWITCHBOARD_LOG_LEVEL", "warn", 1);
    setenv("SWITCHBOARD_ROOT", "/tmp", 1);
    setenv("SWITCHBOARD_MAX_PER_IP", "9", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_STR(cfg.port, "7000");
    CHECK_EQ_INT(cfg.max_message, 4096);
    CHECK_EQ_INT(cfg.rate_limit, 50);
    CHECK_EQ_INT(cfg.presence, PRESENCE_OFF);
    CHECK_EQ_INT(cfg.log_level, SB_LOG_WARN);
    CHECK_EQ_STR(cfg.root, "/tmp");
    CHECK_EQ_INT(cfg.max_per_ip, 9);
    CHECK_EQ_INT(cfg.max_connections, 10000); /* untouched ones keep their default */
    /* a flag wins over its variable */
    CHECK_EQ_INT(LOAD("--port", "7001", "--max-message=5", "--presence", "on", "--log-level", "info"), CONFIG_RUN);
    CHECK_EQ_STR(cfg.port, "7001");
    CHECK_EQ_INT(cfg.max_message, 5);
    CHECK_EQ_INT(cfg.presence, PRESENCE_GLOBAL); /* on: global's old name */
    CHECK_EQ_INT(cfg.log_level, SB_LOG_INFO);
    CHECK_EQ_INT(LOAD("--presence", "global"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.presence, PRESENCE_GLOBAL);
    CHECK_EQ_INT(LOAD("--presence=rooms"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.presence, PRESENCE_ROOMS);
    CHECK_EQ_INT(cfg.rate_limit, 50);
    clear_env();
}

static void test_origins(void) {
    CHECK_EQ_INT(LOAD("--allow-origin", "http://a.example", "--allow-origin", "https://b.example:8443"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nallow, 2);
    CHECK_EQ_STR(cfg.allow_origins[0], "http://a.example");
    CHECK_EQ_STR(cfg.allow_origins[1], "https://b.example:8443");
    const char *list[CONFIG_MAX_ORIGINS];
    config_origin_list(&cfg, list);
    CHECK(list[0] == cfg.allow_origins[0] && list[1] == cfg.allow_origins[1]);

    setenv("SWITCHBOARD_ALLOW_ORIGINS", "http://one, https://two:1 ,*,,http://three", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nallow, 4);
    CHECK_EQ_STR(cfg.allow_origins[0], "http://one");
    CHECK_EQ_STR(cfg.allow_origins[1], "https://two:1");
    CHECK_EQ_STR(cfg.allow_origins[2], "*");
    CHECK_EQ_STR(cfg.allow_origins[3], "http://three");
    /* a flag wins over its variable (docs/CLI.md): --allow-origin replaces the environment's list */
    CHECK_EQ_INT(LOAD("--allow-origin", "http://flag"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nallow, 1);
    CHECK_EQ_STR(cfg.allow_origins[0], "http://flag");
    setenv("SWITCHBOARD_ALLOW_ORIGINS", "ftp://nope", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_EXIT_USAGE);
    CHECK(strstr(err_text, "SWITCHBOARD_ALLOW_ORIGINS") != NULL);
    clear_env();
}

static void test_too_many_origins(void) {
    const char *argv[2 * CONFIG_MAX_ORIGINS + 4] = {"switchboard"};
    char origins[CONFIG_MAX_ORIGINS + 1][32];
    int argc = 1;
    for (int i = 0; i < CONFIG_MAX_ORIGINS; i++) {
        snprintf(origins[i], sizeof origins[i], "http://h%d.example", i);
        argv[argc++] = "--allow-origin";
        argv[argc++] = origins[i];
    }
    CHECK_EQ_INT(load(argv), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nallow, CONFIG_MAX_ORIGINS);
    argv[argc++] = "--allow-origin";
    argv[argc++] = "http://one-too-many";
    CHECK_EQ_INT(load(argv), CONFIG_EXIT_USAGE);
}

/* Each bad value is a usage error with the message and the usage on stderr, nothing on stdout. */
static void check_usage_error(const char *const *argv) {
    enum config_result r = load(argv);
    if (!CHECK_EQ_INT(r, CONFIG_EXIT_USAGE)) fprintf(stderr, "    argv[1..] = %s %s\n", argv[1], argv[2] ? argv[2] : "");
    CHECK(strstr(err_text, "usage:") != NULL);
    CHECK_EQ_STR(out_text, "");
}

#define BAD(...) check_usage_error((const char *const[]){"switchboard", __VA_ARGS__, NULL})

static void test_bad_values(void) {
    BAD("--port", "0");
    BAD("--port", "65536");
    BAD("--port", "http");
    BAD("--port", "80x");
    BAD("--port", "");
    BAD("--port", "localhost:8080");
    BAD("--port", "1.2.3.4.5:80");
    BAD("--port", "127.0.0.1:");
    BAD("--port", "127.0.0.1:0");
    BAD("--max-message", "0");
    BAD("--max-message", "-1");
    BAD("--max-message", "12k");
    BAD("--max-message", "");
    BAD("--max-message", "99999999999999999999999");
    BAD("--max-message", "1073741825");
    BAD("--max-connections", "0");
    BAD("--max-connections", "1000001");
    BAD("--http-threads", "1");
    BAD("--http-threads", "1025");
    BAD("--outbox", "1023");
    BAD("--ping-interval", "0");
    BAD("--ping-interval", "86401");
    BAD("--rate-limit", "-1");
    BAD("--max-per-ip", "-1");
    BAD("--presence", "yes");
    BAD("--presence", "room");
    BAD("--threads", "-1");
    BAD("--threads", "65");
    BAD("--presence", "");
    BAD("--log-level", "loud");
    BAD("--log-level", "INFO");
    BAD("--root", "/nonexistent/switchboard/www");
    BAD("--root", "/etc/passwd"); /* a file, not a directory */
    BAD("--allow-origin", "example.com");
    BAD("--allow-origin", "ftp://example.com");
    BAD("--bogus");
    BAD("--bogus=1");
    BAD("-p", "80");
    BAD("--port");               /* no value */
    BAD("--max-message");
    BAD("--port9000");
}

static void test_bad_env(void) {
    setenv("SWITCHBOARD_MAX_MESSAGE", "lots", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_EXIT_USAGE);
    CHECK(strstr(err_text, "SWITCHBOARD_MAX_MESSAGE") != NULL);
    clear_env();
    setenv("SWITCHBOARD_PORT", "0", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_EXIT_USAGE);
    clear_env();
    setenv("SWITCHBOARD_PRESENCE", "maybe", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_EXIT_USAGE);
    clear_env();
}

static void test_help_version(void) {
    CHECK_EQ_INT(LOAD("--help"), CONFIG_EXIT_OK);
    CHECK(strncmp(out_text, "usage: switchboard", 18) == 0);
    const char *flags[] = {"--port", "--root", "--allow-origin", "--max-message", "--max-connections", "--outbox",
                           "--ping-interval", "--rate-limit", "--max-per-ip", "--threads", "--http-threads", "--presence", "--log-level",
                           "--healthcheck", "SWITCHBOARD_PORT"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!CHECK(strstr(out_text, flags[i]) != NULL)) fprintf(stderr, "    missing %s\n", flags[i]);
    CHECK_EQ_STR(err_text, "");
    CHECK_EQ_INT(LOAD("-h"), CONFIG_EXIT_OK);
    CHECK(strncmp(out_text, "usage:", 6) == 0);
    CHECK_EQ_INT(LOAD("--version"), CONFIG_EXIT_OK);
    CHECK_EQ_STR(out_text, "switchboard " SB_VERSION "\n");
    CHECK_EQ_INT(LOAD("--port", "9000", "--help", "--bogus"), CONFIG_EXIT_OK); /* stops at --help */
}

static void test_healthcheck(void) {
    CHECK_EQ_INT(LOAD("--healthcheck"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.healthcheck, 1);
    CHECK_EQ_STR(cfg.healthcheck_url, "http://127.0.0.1:8080/healthz");
    CHECK_EQ_INT(LOAD("--healthcheck", "http://10.0.0.2:9/healthz"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.healthcheck, 1);
    CHECK_EQ_STR(cfg.healthcheck_url, "http://10.0.0.2:9/healthz");
    CHECK_EQ_INT(LOAD("--healthcheck", "--port", "9000"), CONFIG_RUN); /* the next flag is not its URL */
    CHECK_EQ_STR(cfg.port, "9000");
    CHECK_EQ_STR(cfg.healthcheck_url, "http://127.0.0.1:9000/healthz");
    CHECK_EQ_INT(LOAD("--port", "127.0.0.2:9100", "--healthcheck"), CONFIG_RUN);
    CHECK_EQ_STR(cfg.healthcheck_url, "http://127.0.0.2:9100/healthz");
    CHECK_EQ_INT(LOAD("--port", "0.0.0.0:9200", "--healthcheck"), CONFIG_RUN);
    CHECK_EQ_STR(cfg.healthcheck_url, "http://127.0.0.1:9200/healthz");
    setenv("SWITCHBOARD_PORT", "9300", 1);
    CHECK_EQ_INT(LOAD("--healthcheck"), CONFIG_RUN);
    CHECK_EQ_STR(cfg.healthcheck_url, "http://127.0.0.1:9300/healthz");
    clear_env();
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN); /* every load starts afresh */
    CHECK_EQ_INT(cfg.healthcheck, 0);
}

/* The key settings (keys.c checks them at load): values land in their fields; combinations and files
 * that cannot work are usage errors, so the server never starts open by mistake. */
static void test_jwt_settings(void) {
    char secret_file[] = "/tmp/sb-test-config-XXXXXX";
    int fd = mkstemp(secret_file);
    CHECK(fd >= 0 && write(fd, "0123456789abcdef0123456789abcdef\n", 33) == 33);
    close(fd);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK(!cfg.jwt_secret[0] && !cfg.jwt_secret_file[0] && !cfg.jwt_public_key[0] && !cfg.jwt_audience[0] &&
          !cfg.jwt_issuer[0]);
    CHECK_EQ_INT(LOAD("--jwt-secret", "0123456789abcdef0123456789abcdef", "--jwt-audience", "sb", "--jwt-issuer=me"),
                 CONFIG_RUN);
    CHECK_EQ_STR(cfg.jwt_secret, "0123456789abcdef0123456789abcdef");
    CHECK_EQ_STR(cfg.jwt_audience, "sb");
    CHECK_EQ_STR(cfg.jwt_issuer, "me");
    CHECK_EQ_STR(err_text, "");
    CHECK_EQ_INT(LOAD("--jwt-secret", "short"), CONFIG_RUN); /* accepted, with a warning */
    CHECK(strstr(err_text, "5 bytes") != NULL);
    setenv("SWITCHBOARD_JWT_SECRET_FILE", secret_file, 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_STR(cfg.jwt_secret_file, secret_file);
    CHECK_EQ_STR(err_text, "");
    BAD("--jwt-secret", "x"); /* and the file from the environment */
    CHECK(strstr(err_text, "--jwt-secret-file") != NULL);
    BAD("--jwt-public-key", secret_file);
    clear_env();
    BAD("--jwt-secret", "");
    BAD("--jwt-public-key", secret_file); /* not a PEM */
    CHECK(strstr(err_text, "PEM") != NULL);
    BAD("--jwt-public-key", "/nonexistent/key.pem");
    CHECK(strstr(err_text, "/nonexistent/key.pem") != NULL);
    BAD("--jwt-secret-file", "/tmp");
    BAD("--jwt-audience", "sb"); /* meaningless without a key: said, not ignored */
    CHECK(strstr(err_text, "need a key") != NULL);
    BAD("--jwt-issuer", "me");
    setenv("SWITCHBOARD_JWT_AUDIENCE", "", 1);
    BAD("--port", "9000");
    CHECK(strstr(err_text, "SWITCHBOARD_JWT_AUDIENCE") != NULL);
    clear_env();
    unlink(secret_file);
}

static void test_usage_text(void) {
    FILE *f = tmpfile();
    char text[8192];
    config_usage(f);
    rewind(f);
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    CHECK(strstr(text, "--max-message BYTES") != NULL);
    CHECK(strstr(text, "default 65536") != NULL);
    CHECK(strstr(text, "SWITCHBOARD_ALLOW_ORIGINS") != NULL);
}

/* --allowed-hosts (issue 18): the names this server answers for, against DNS rebinding. */
static void test_allowed_hosts(void) {
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nhosts, 0);
    CHECK_EQ_INT(LOAD("--allowed-hosts", "localhost, chat.example.com:8443", "--allowed-hosts", "[::1]"), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nhosts, 3);
    CHECK_EQ_STR(cfg.allowed_hosts[0], "localhost");
    CHECK_EQ_STR(cfg.allowed_hosts[1], "chat.example.com:8443");
    CHECK_EQ_STR(cfg.allowed_hosts[2], "[::1]");
    const char *list[CONFIG_MAX_HOSTS];
    config_host_list(&cfg, list);
    CHECK(list[0] == cfg.allowed_hosts[0] && list[2] == cfg.allowed_hosts[2]);
    setenv("SWITCHBOARD_ALLOWED_HOSTS", "a.example,b.example:1", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_RUN);
    CHECK_EQ_INT(cfg.nhosts, 2);
    CHECK_EQ_INT(LOAD("--allowed-hosts", "flag.example"), CONFIG_RUN); /* the flag replaces the variable's list */
    CHECK_EQ_INT(cfg.nhosts, 1);
    CHECK_EQ_STR(cfg.allowed_hosts[0], "flag.example");
    setenv("SWITCHBOARD_ALLOWED_HOSTS", "http://nope", 1);
    CHECK_EQ_INT(LOAD_NONE(), CONFIG_EXIT_USAGE);
    CHECK(strstr(err_text, "SWITCHBOARD_ALLOWED_HOSTS") != NULL);
    clear_env();
    BAD("--allowed-hosts", "a b");
    BAD("--allowed-hosts", "*");
    BAD("--allowed-hosts", "host:0x");
}

/* The warning at start: open mode (no key) reachable beyond loopback without --allowed-hosts. */
static void test_loopback_only(void) {
    CHECK_EQ_INT(LOAD("--port", "127.0.0.1:8080"), CONFIG_RUN);
    CHECK(config_loopback_only(&cfg));
    CHECK_EQ_INT(LOAD("--port", "127.1.2.3:8080"), CONFIG_RUN);
    CHECK(config_loopback_only(&cfg));
    CHECK_EQ_INT(LOAD("--port", "8080"), CONFIG_RUN); /* every interface */
    CHECK(!config_loopback_only(&cfg));
    CHECK_EQ_INT(LOAD("--port", "0.0.0.0:8080"), CONFIG_RUN);
    CHECK(!config_loopback_only(&cfg));
    CHECK_EQ_INT(LOAD("--port", "10.0.0.7:8080"), CONFIG_RUN);
    CHECK(!config_loopback_only(&cfg));
}

int main(void) {
    clear_env();
    test_defaults();
    test_each_flag();
    test_equals_form();
    test_env();
    test_origins();
    test_too_many_origins();
    test_bad_values();
    test_bad_env();
    test_help_version();
    test_healthcheck();
    test_usage_text();
    test_jwt_settings();
    test_allowed_hosts();
    test_loopback_only();
    return check_done();
}

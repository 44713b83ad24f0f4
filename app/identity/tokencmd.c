/* tokencmd: `switchboard token` (see tokencmd.h). */
#include "tokencmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "jwt.h"
#include "keys.h"

#define TOKENCMD_MAX_ARGS 64

struct request {
    const char *user;
    long ttl;
    char rooms_text[CONFIG_TEXT_MAX];
    const char *rooms[JWT_MAX_ROOMS];
    size_t nrooms;
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: switchboard token --user NAME [--ttl 1h] [--rooms a,b] [--jwt-secret SECRET | "
            "--jwt-secret-file FILE]\n"
            "                         [--jwt-audience AUD] [--jwt-issuer ISS]\n\n"
            "Prints an HS256 token for NAME, signed with the server's secret (flags or SWITCHBOARD_JWT_SECRET,\n"
            "SWITCHBOARD_JWT_SECRET_FILE), with the aud and iss the server requires (flags or\n"
            "SWITCHBOARD_JWT_AUDIENCE, SWITCHBOARD_JWT_ISSUER). Server options (--port, --redis, ...) are refused.\n"
            "  --user NAME    the token's sub: 1-64 of A-Z a-z 0-9 _ . - (not conn-...)\n"
            "  --ttl TIME     lifetime: seconds, or 90s, 30m, 1h, 2d (default 1h, at most 366d)\n"
            "  --rooms LIST   comma-separated rooms the user may join and publish to; a name, or a prefix\n"
            "                 pattern like team-7.* ('*' = any); without it, any room\n");
}

long tokencmd_parse_ttl(const char *text) {
    char *end;
    errno = 0;
    long n = strtol(text, &end, 10);
    long unit = 1;
    if (errno || end == text || *text == '-' || *text == '+' || n <= 0) return -1;
    if (*end == 's') unit = 1, end++;
    else if (*end == 'm') unit = 60, end++;
    else if (*end == 'h') unit = 3600, end++;
    else if (*end == 'd') unit = 86400, end++;
    if (*end || n > TOKENCMD_TTL_MAX / unit) return -1;
    return n * unit;
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "switchboard token: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n");
    usage(stderr);
    return 2;
}

static int split_rooms(struct request *r, const char *list) {
    if (strlen(list) >= sizeof r->rooms_text) return fail("--rooms: the list is over %d characters", CONFIG_TEXT_MAX - 1);
    snprintf(r->rooms_text, sizeof r->rooms_text, "%s", list);
    for (char *save = NULL, *p = strtok_r(r->rooms_text, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (r->nrooms == JWT_MAX_ROOMS) return fail("--rooms: more than %d rooms", JWT_MAX_ROOMS);
        if (!jwt_room_pattern_valid(p)) return fail("--rooms: '%s' is not a room name or a pattern like team-7.*", p);
        r->rooms[r->nrooms++] = p;
    }
    if (r->nrooms == 0) return fail("--rooms: no room in '%s'", list);
    return 0;
}

/* The server's options that say how tokens are signed and checked; any other server option given to
 * this command is a mistake (the token would not depend on it), refused rather than ignored. */
static int key_option(const char *arg) {
    static const char *const keys[] = {"--jwt-secret", "--jwt-secret-file", "--jwt-public-key", "--jwt-audience",
                                       "--jwt-issuer"};
    size_t len = strcspn(arg, "=");
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (strlen(keys[k]) == len && strncmp(arg, keys[k], len) == 0) return 1;
    return 0;
}

/* Takes --user, --ttl and --rooms (as "--x V" or "--x=V"); the key options go to config_load in rest. */
static int parse(struct request *r, int argc, char **argv, char **rest, int *nrest) {
    static const char *const own[] = {"--user", "--ttl", "--rooms"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '='), *v = NULL;
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int which = -1;
        for (int k = 0; k < 3; k++)
            if (strlen(own[k]) == len && strncmp(arg, own[k], len) == 0) which = k;
        if (which < 0 && !key_option(arg))
            return fail("'%s' is not an option of the token command (server options such as --port or --redis "
                        "do not go here)", arg);
        if (which < 0) {
            if (*nrest + 1 >= TOKENCMD_MAX_ARGS) return fail("more than %d arguments", TOKENCMD_MAX_ARGS);
            rest[(*nrest)++] = argv[i];
            if (!eq && i + 1 < argc) rest[(*nrest)++] = argv[++i]; /* its value, even one starting with -- */
            continue;
        }
        v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return fail("%s needs a value", own[which]);
        if (which == 0) r->user = v;
        if (which == 1 && (r->ttl = tokencmd_parse_ttl(v)) < 0)
            return fail("--ttl: '%s' is not a lifetime like 90s, 30m, 1h, 2d or whole seconds (at most 366d)", v);
        if (which == 2 && split_rooms(r, v) != 0) return 2;
    }
    if (!r->user) return fail("--user NAME is required");
    if (!name_claimable(r->user)) return fail("--user: '%s' is not a valid user name", r->user);
    return 0;
}

static int mint(const struct config *cfg, const struct request *r) {
    static unsigned char secret[KEYS_FILE_MAX];
    char err[CONFIG_TEXT_MAX + 256], token[JWT_MAX_TOKEN + 1];
    if (cfg->jwt_public_key[0]) {
        fprintf(stderr, "switchboard token: --jwt-public-key is configured: RS256/ES256 tokens are minted by "
                        "whoever holds the private key; this command signs HS256 with --jwt-secret only\n");
        return 2;
    }
    long n = keys_jwt_secret(cfg, secret, sizeof secret, err, sizeof err);
    if (n <= 0) {
        fprintf(stderr, "switchboard token: %s\n", n < 0 ? err
                        : "no secret configured: give --jwt-secret, --jwt-secret-file, or SWITCHBOARD_JWT_SECRET(_FILE)");
        return 2;
    }
    int64_t now = (int64_t)time(NULL);
    struct jwt_mint m = {r->user, now, now + r->ttl, r->rooms, r->nrooms, cfg->jwt_audience, cfg->jwt_issuer};
    int len = jwt_mint_hs256_claims((const char *)secret, (size_t)n, &m, token, sizeof token);
    memset(secret, 0, (size_t)n);
    if (len < 0) {
        fprintf(stderr, "switchboard token: the token would be over %d bytes\n", JWT_MAX_TOKEN);
        return 2;
    }
    printf("%s\n", token);
    return 0;
}

int tokencmd_main(int argc, char **argv) {
    static struct config cfg;
    struct request r = {.ttl = TOKENCMD_TTL_DEFAULT};
    char *rest[TOKENCMD_MAX_ARGS + 1] = {argv[0]};
    int nrest = 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    if (parse(&r, argc, argv, rest, &nrest) != 0) return 2;
    enum config_result cr = config_load(&cfg, nrest, rest);
    if (cr != CONFIG_RUN) return cr == CONFIG_EXIT_OK ? 0 : 2;
    return mint(&cfg, &r);
}

/* perms: the allow and send_to permissions (see perms.h). */
#include "perms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The server's defaults: set by perms_set_defaults before any thread starts, read-only after. */
static unsigned default_allow = JWT_ALLOW_ALL;
static char *default_send_to_text;            /* owns the strings default_send_to points into */
static char *default_send_to[PERMS_SEND_TO_MAX];
static size_t default_nsend_to;               /* 0 with default_send_to_text NULL: anyone */

int perms_parse_allow(const char *list, unsigned *out, char *err, size_t cap) {
    *out = 0;
    if (strcmp(list, "none") == 0) return 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        char name[16];
        unsigned bit = 0;
        if (len < sizeof name) {
            memcpy(name, p, len);
            name[len] = '\0';
            bit = jwt_allow_bit(name);
        }
        if (!bit) {
            snprintf(err, cap, "'%.*s' is not one of send, broadcast, publish, join, users (or 'none' alone)",
                     (int)(len > 64 ? 64 : len), p);
            return -1;
        }
        *out |= bit;
        p += len + (p[len] == ',');
    }
    return 0;
}

int perms_check_send_to(const char *list, char *err, size_t cap) {
    size_t n = 0;
    for (const char *p = list;; n++) {
        size_t len = strcspn(p, ",");
        char pattern[SB_NAME_MAX + 2];
        int ok = len > 0 && len < sizeof pattern && n < PERMS_SEND_TO_MAX;
        if (ok) {
            memcpy(pattern, p, len);
            pattern[len] = '\0';
            ok = jwt_room_pattern_valid(pattern);
        }
        if (!ok) {
            snprintf(err, cap, "'%.*s' is not a user name or a pattern like support-* ('*' = anyone; at most %d)",
                     (int)(len > 64 ? 64 : len), p, PERMS_SEND_TO_MAX);
            return -1;
        }
        if (!p[len]) return 0;
        p += len + 1;
    }
}

int perms_set_defaults(const char *allow, const char *send_to) {
    char err[160];
    if (perms_parse_allow(allow, &default_allow, err, sizeof err) < 0) return -1;
    free(default_send_to_text);
    default_send_to_text = NULL;
    default_nsend_to = 0;
    if (strcmp(send_to, "*") == 0) return 0;
    if (!(default_send_to_text = strdup(send_to))) return -1;
    for (char *save = NULL, *p = strtok_r(default_send_to_text, ",", &save); p && default_nsend_to < PERMS_SEND_TO_MAX;
         p = strtok_r(NULL, ",", &save))
        default_send_to[default_nsend_to++] = p;
    return 0;
}

int perms_command_allowed(const struct jwt_claims *claims, const char *type) {
    for (unsigned i = 0; i < JWT_ALLOW_COMMANDS; i++)
        if (strcmp(type, jwt_allow_names[i]) == 0)
            return ((claims && claims->has_allow ? claims->allow : default_allow) >> i) & 1;
    return 1; /* ping, hello, refresh, leave, and unknown types (which get unknown_type) */
}

int perms_send_allowed(const struct jwt_claims *claims, const char *user) {
    if (claims && claims->send_to) return jwt_patterns_match(claims->send_to, claims->nsend_to, user);
    return !default_send_to_text || jwt_patterns_match(default_send_to, default_nsend_to, user);
}

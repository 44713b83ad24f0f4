/* fuzz_origin: the handshake's Origin check (app/front/origin.c).
 *
 * Input: Origin, Host and up to four allow-list entries, separated by NUL bytes (a missing Host means
 * the header is absent). Each string is copied to a buffer of exactly its size. Beyond not crashing:
 * no Origin is always allowed; "*" allows everything; adding allow-list entries never refuses what was
 * allowed; and an Origin allowed as same-origin must be an http(s) origin with a host. The same
 * entries as --allowed-hosts against the Host (origin_host_allowed): no list allows every Host; more
 * entries never refuse; a Host allowed by a list is non-empty and begins with one entry's host
 * (case-insensitively); a valid entry allows itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "origin.h"

#define MAX_PARTS 6

/* 1 if host's host part (before a port) starts some entry, case-insensitively. */
static int like_an_entry(const char *host, const char *const *allow, size_t n) {
    size_t hlen = strcspn(host, host[0] == '[' ? "]" : ":");
    for (size_t i = 0; i < n; i++)
        if (strncasecmp(host, allow[i], hlen) == 0) return 1;
    return 0;
}

static void check_hosts(const char *host, const char *const *allow, size_t nallow) {
    FUZZ_CHECK(origin_host_allowed(host, allow, 0) == 1);
    int ok = origin_host_allowed(host, allow, nallow);
    for (size_t n = 1; n < nallow; n++)
        if (origin_host_allowed(host, allow, n)) FUZZ_CHECK(ok);
    if (ok && nallow) FUZZ_CHECK(host && host[0] && like_an_entry(host, allow, nallow));
    for (size_t i = 0; i < nallow; i++)
        if (origin_host_entry_valid(allow[i])) FUZZ_CHECK(origin_host_allowed(allow[i], allow + i, 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *part[MAX_PARTS] = {0};
    size_t nparts = fuzz_split(data, size, part, MAX_PARTS);
    const char *origin = part[0], *host = nparts > 1 ? part[1] : NULL;
    const char *const *allow = (const char *const *)part + 2;
    size_t nallow = nparts > 2 ? nparts - 2 : 0;

    int same = origin_allowed(origin, host, NULL, 0);
    int listed = origin_allowed(origin, host, allow, nallow);
    FUZZ_CHECK(origin_allowed(NULL, host, allow, nallow) == 1);
    FUZZ_CHECK(!same || listed);
    FUZZ_CHECK(same == origin_allowed(origin, host, NULL, 0));
    if (same) {
        FUZZ_CHECK(strncasecmp(origin, "http://", 7) == 0 || strncasecmp(origin, "https://", 8) == 0);
        FUZZ_CHECK(strcasecmp(origin, "http://") != 0 && strcasecmp(origin, "https://") != 0);
        FUZZ_CHECK(host && host[0]);
    }
    const char *any[] = {"*"};
    FUZZ_CHECK(origin_allowed(origin, host, any, 1) == 1);
    check_hosts(host, allow, nallow);
    for (size_t i = 0; i < nparts; i++) free(part[i]);
    return 0;
}

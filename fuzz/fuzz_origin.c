/* fuzz_origin: the handshake's Origin check (app/front/origin.c).
 *
 * Input: Origin, Host and up to four allow-list entries, separated by NUL bytes (a missing Host means
 * the header is absent). Each string is copied to a buffer of exactly its size. Beyond not crashing:
 * no Origin is always allowed; "*" allows everything; adding allow-list entries never refuses what was
 * allowed; and an Origin allowed as same-origin must be an http(s) origin with a host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "origin.h"

#define MAX_PARTS 6

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
    for (size_t i = 0; i < nparts; i++) free(part[i]);
    return 0;
}

/* fuzz_upgrade: the WebSocket handshake's header decisions and its 101 (app/front/upgrade.c).
 *
 * Input: the Connection, Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version values and up to four
 * Sec-WebSocket-Protocol values, separated by NUL bytes (each copied to a buffer of exactly its size).
 * Beyond not crashing: a chosen subprotocol is one of the server's names and was offered; a valid key
 * always gives a complete 101 that ends the head, names the chosen protocol and nothing else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "upgrade.h"

#define MAX_PARTS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *part[MAX_PARTS] = {0};
    size_t nparts = fuzz_split(data, size, part, MAX_PARTS);
    const char *get[4];
    for (size_t i = 0; i < 4; i++) get[i] = i < nparts ? part[i] : NULL;
    int requested = upgrade_requested(get[0], get[1]);
    FUZZ_CHECK(requested == 0 || requested == 1);
    (void)upgrade_version_ok(get[3]);
    static const char *const known[] = {"json", "echo-protocol"};
    const char *const *offers = (const char *const *)part + 4;
    size_t noffers = nparts > 4 ? nparts - 4 : 0;
    const char *proto = upgrade_pick_protocol(offers, noffers, known, 2);
    if (proto) {
        FUZZ_CHECK(proto == known[0] || proto == known[1]);
        int offered = 0;
        for (size_t i = 0; i < noffers; i++) offered |= strstr(offers[i], proto) != NULL;
        FUZZ_CHECK(offered);
    }
    if (upgrade_key_valid(get[2])) {
        char out[UPGRADE_RESPONSE_MAX];
        size_t n = upgrade_response(out, get[2], proto);
        FUZZ_CHECK(n > 0 && n == strlen(out));
        FUZZ_CHECK(strncmp(out, "HTTP/1.1 101 ", 13) == 0);
        FUZZ_CHECK(n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0 && strstr(out, "\r\n\r\n") == out + n - 4);
        FUZZ_CHECK((strstr(out, "Sec-WebSocket-Protocol: ") != NULL) == (proto != NULL));
    }
    for (size_t i = 0; i < nparts; i++) free(part[i]);
    return 0;
}

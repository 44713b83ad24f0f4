/* test_upgrade: the WebSocket opening handshake's decisions and its 101 (app/front/upgrade.c).
 *
 * A wrong "is an upgrade" sends a plain request down the WebSocket path (or the reverse); a wrong
 * accept value makes every client fail the handshake; a wrong subprotocol choice puts a client in the
 * wrong mode. So each is pinned: RFC 6455's own example key, header token lists with case, spaces and
 * several values, and the 101's exact bytes. */
#include <string.h>

#include "check.h"
#include "upgrade.h"

static void test_requested(void) {
    CHECK(upgrade_requested("Upgrade", "websocket"));
    CHECK(upgrade_requested("keep-alive, Upgrade", "WebSocket"));
    CHECK(upgrade_requested("upgrade ,keep-alive", " websocket "));
    CHECK(upgrade_requested("UPGRADE", "h2c, websocket"));
    CHECK(!upgrade_requested(NULL, "websocket"));
    CHECK(!upgrade_requested("Upgrade", NULL));
    CHECK(!upgrade_requested("keep-alive", "websocket"));
    CHECK(!upgrade_requested("Upgrade", "h2c"));
    CHECK(!upgrade_requested("Upgrade-Insecure", "websocket")); /* a token, not a prefix */
    CHECK(!upgrade_requested("Upgrade", "websockets"));
    CHECK(!upgrade_requested("", ""));
    CHECK(!upgrade_requested(",,, ,", "websocket"));
}

static void test_key(void) {
    CHECK(upgrade_key_valid("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK(upgrade_key_valid("AAAAAAAAAAAAAAAAAAAA+/==")); /* 16 bytes: the last 2 bits are 0 in real keys, but any fits */
    CHECK(!upgrade_key_valid(NULL));
    CHECK(!upgrade_key_valid(""));
    CHECK(!upgrade_key_valid("dGhlIHNhbXBsZSBub25jZQ="));   /* 23 */
    CHECK(!upgrade_key_valid("dGhlIHNhbXBsZSBub25jZQ===")); /* 25 */
    CHECK(!upgrade_key_valid("dGhlIHNhbXBsZSBub25jZQAA"));  /* not 16 bytes */
    CHECK(!upgrade_key_valid("dGhlIHNhbXBsZSBub25j-Q==")); /* base64url is not base64 */
    CHECK(!upgrade_key_valid("dGhlIHNhbXBsZSBub25j ZQ=="));
}

static void test_version(void) {
    CHECK(upgrade_version_ok("13"));
    CHECK(upgrade_version_ok(" 13 "));
    CHECK(!upgrade_version_ok(NULL));
    CHECK(!upgrade_version_ok(""));
    CHECK(!upgrade_version_ok("8"));
    CHECK(!upgrade_version_ok("130"));
    CHECK(!upgrade_version_ok("13, 8"));
    CHECK(!upgrade_version_ok("1"));
}

static void test_protocol(void) {
    const char *known[] = {"json", "echo-protocol"};
    const char *one[] = {"echo-protocol"};
    const char *list[] = {"chat, json ,echo-protocol"};
    const char *two[] = {"chat", "echo-protocol, json"};
    const char *none[] = {"chat, superchat"};
    const char *almost[] = {"JSON, echo, json2, ech o-protocol"};
    const char *empty[] = {" , ,"};
    CHECK(upgrade_pick_protocol(one, 1, known, 2) == known[1]);
    CHECK(upgrade_pick_protocol(list, 1, known, 2) == known[0]); /* the client's first known offer */
    CHECK(upgrade_pick_protocol(two, 2, known, 2) == known[1]);  /* later headers count too */
    CHECK(upgrade_pick_protocol(two, 1, known, 2) == NULL);      /* n bounds the headers */
    CHECK(upgrade_pick_protocol(none, 1, known, 2) == NULL);
    CHECK(upgrade_pick_protocol(almost, 1, known, 2) == NULL);   /* names are case-sensitive tokens */
    CHECK(upgrade_pick_protocol(empty, 1, known, 2) == NULL);
    CHECK(upgrade_pick_protocol(NULL, 0, known, 2) == NULL);
}

static void test_response(void) {
    char out[UPGRADE_RESPONSE_MAX];
    /* RFC 6455 1.3: this key's accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo= */
    size_t n = upgrade_response(out, "dGhlIHNhbXBsZSBub25jZQ==", NULL);
    const char *want = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    CHECK(n == strlen(want));
    CHECK(strcmp(out, want) == 0);
    n = upgrade_response(out, "dGhlIHNhbXBsZSBub25jZQ==", "json");
    CHECK(n > 0 && strstr(out, "\r\nSec-WebSocket-Protocol: json\r\n\r\n") != NULL);
    CHECK(n == strlen(out) && strncmp(out, want, strlen(want) - 2) == 0);
    char name[UPGRADE_RESPONSE_MAX];
    memset(name, 'p', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK(upgrade_response(out, "dGhlIHNhbXBsZSBub25jZQ==", name) == 0); /* does not fit: refused, not cut */
}

int main(void) {
    test_requested();
    test_key();
    test_version();
    test_protocol();
    test_response();
    return check_done();
}

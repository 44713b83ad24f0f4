/* test_perms: the allow and send_to permissions (perms.h): the server's defaults as flags give them,
 * a token's claims replacing them, and what is always allowed. */
#include <string.h>

#include "check.h"
#include "perms.h"

static void test_parse(void) {
    unsigned bits = 99;
    char err[256];
    CHECK_EQ_INT(perms_parse_allow("send,broadcast,publish,join,users", &bits, err, sizeof err), 0);
    CHECK_EQ_INT(bits, JWT_ALLOW_ALL);
    CHECK_EQ_INT(perms_parse_allow("none", &bits, err, sizeof err), 0);
    CHECK_EQ_INT(bits, 0);
    CHECK_EQ_INT(perms_parse_allow("users,send", &bits, err, sizeof err), 0);
    CHECK_EQ_INT(bits, JWT_ALLOW_USERS | JWT_ALLOW_SEND);
    CHECK_EQ_INT(perms_parse_allow("send,leave", &bits, err, sizeof err), -1);
    CHECK(strstr(err, "'leave'") != NULL);
    CHECK_EQ_INT(perms_parse_allow("send,", &bits, err, sizeof err), 0); /* a trailing comma names nothing */
    CHECK_EQ_INT(perms_parse_allow("send,,join", &bits, err, sizeof err), -1);
    CHECK_EQ_INT(perms_parse_allow("none,send", &bits, err, sizeof err), -1);
    CHECK_EQ_INT(perms_check_send_to("*", err, sizeof err), 0);
    CHECK_EQ_INT(perms_check_send_to("support-*,bob", err, sizeof err), 0);
    CHECK_EQ_INT(perms_check_send_to("bo b", err, sizeof err), -1);
    CHECK_EQ_INT(perms_check_send_to("bob,", err, sizeof err), -1);
    CHECK_EQ_INT(perms_check_send_to("b*b", err, sizeof err), -1);
}

static void test_defaults_and_claims(void) {
    /* out of the box: everything, to anyone */
    CHECK(perms_command_allowed(NULL, "broadcast") && perms_send_allowed(NULL, "anyone"));
    CHECK_EQ_INT(perms_set_defaults("send,users", "support-*"), 0);
    CHECK(perms_command_allowed(NULL, "send") && perms_command_allowed(NULL, "users"));
    CHECK(!perms_command_allowed(NULL, "broadcast") && !perms_command_allowed(NULL, "publish"));
    CHECK(!perms_command_allowed(NULL, "join"));
    for (const char *always = "ping\0hello\0refresh\0leave\0"; *always; always += strlen(always) + 1)
        CHECK(perms_command_allowed(NULL, always));
    CHECK(perms_send_allowed(NULL, "support-7") && !perms_send_allowed(NULL, "mallory"));

    /* a token's claims replace the defaults, each on its own */
    char *to[] = {"bob"};
    struct jwt_claims c = {.has_allow = 1, .allow = JWT_ALLOW_BROADCAST, .send_to = to, .nsend_to = 1};
    CHECK(perms_command_allowed(&c, "broadcast") && !perms_command_allowed(&c, "send"));
    CHECK(perms_send_allowed(&c, "bob") && !perms_send_allowed(&c, "support-7"));
    struct jwt_claims none = {0}; /* a token without the claims: the defaults */
    CHECK(!perms_command_allowed(&none, "broadcast") && perms_send_allowed(&none, "support-1"));
    struct jwt_claims receive_only = {.has_allow = 1, .allow = 0};
    CHECK(!perms_command_allowed(&receive_only, "send") && perms_command_allowed(&receive_only, "ping"));

    CHECK_EQ_INT(perms_set_defaults("none", "*"), 0);
    CHECK(!perms_command_allowed(NULL, "send") && perms_send_allowed(NULL, "x"));
    CHECK_EQ_INT(perms_set_defaults("send,broadcast,publish,join,users", "*"), 0);
    CHECK(perms_command_allowed(NULL, "users"));
}

int main(void) {
    test_parse();
    test_defaults_and_claims();
    return check_done();
}

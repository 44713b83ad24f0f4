/* fuzz_since: the recovery positions a client sends (app/proto/since.c), in both forms.
 *
 * Input: byte 0 even = a handshake query string, odd = a JSON text (a hello's or a join's `since`),
 * the rest the text (cut at its first NUL). Whatever it is, a position accepted has an 8-character
 * alphanumeric epoch and an offset a JSON number carries exactly, and a refusal leaves nothing set. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "since.h"

static void check_pos(const struct hist_pos *p) {
    FUZZ_CHECK(strlen(p->epoch) == HIST_EPOCH_LEN);
    for (size_t i = 0; i < HIST_EPOCH_LEN; i++) FUZZ_CHECK(isalnum((unsigned char)p->epoch[i]));
    FUZZ_CHECK((double)p->offset <= SINCE_OFFSET_MAX);
}

static void check_since(const struct hub_since *s) {
    if (s->has_user) check_pos(&s->user);
    if (s->has_broadcast) check_pos(&s->broadcast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    struct hub_since s;
    if (data[0] % 2 == 0) {
        int positions = -1;
        const char *why = NULL;
        int r = since_query(text, &positions, &s, &why);
        FUZZ_CHECK(r == 0 || (r == -1 && why != NULL));
        FUZZ_CHECK(positions == 0 || positions == 1);
        if (r == 0) check_since(&s);
    } else {
        cJSON *j = cJSON_Parse(text);
        int r = since_json(j, &s);
        FUZZ_CHECK(r >= -1 && r <= 1);
        if (r == 1) check_since(&s);
        if (r < 0) FUZZ_CHECK(!s.has_user && !s.has_broadcast);
        struct hist_pos p;
        if (since_json_pos(j, &p) == 1) check_pos(&p);
        cJSON_Delete(j);
    }
    free(text);
    return 0;
}

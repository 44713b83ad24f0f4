/* fuzz_redact: redact_secrets (app/core/redact.c), the filter between clients' URLs and the log.
 *
 * Input: byte 0 picks the output capacity (1..256), the rest is the text (cut at its first NUL). The
 * output must be NUL-terminated within cap and be a prefix of the whole result (a cut, never garbage);
 * in the whole result every `token=` and `Bearer ` (any case) is followed by the mark, so no value
 * survives; and filtering the result again changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "redact.h"

/* Every secret name in s is followed by the mark (after the spaces a Bearer may have). */
static int all_marked(const char *s) {
    size_t mark = strlen(REDACT_MARK);
    for (const char *p = s; *p; p++) {
        size_t name = strncasecmp(p, "token=", 6) == 0 ? 6 : strncasecmp(p, "bearer ", 7) == 0 ? 7 : 0;
        if (!name) continue;
        const char *v = p + name;
        while (*v == ' ') v++;
        if (strncmp(v, REDACT_MARK, mark) != 0) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t cap = 1 + data[0] % 256;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    size_t whole_cap = 1 + strlen(text) * (1 + strlen(REDACT_MARK)) + strlen(REDACT_MARK);
    char *whole = malloc(whole_cap), *again = malloc(whole_cap), *out = malloc(cap);
    redact_secrets(text, whole, whole_cap);
    redact_secrets(text, out, cap);
    FUZZ_CHECK(strlen(out) < cap);
    FUZZ_CHECK(strncmp(out, whole, strlen(out)) == 0);
    FUZZ_CHECK(strlen(out) == cap - 1 || strcmp(out, whole) == 0);
    FUZZ_CHECK(all_marked(whole));
    redact_secrets(whole, again, whole_cap);
    FUZZ_CHECK(strcmp(again, whole) == 0);
    free(text);
    free(whole);
    free(again);
    free(out);
    return 0;
}

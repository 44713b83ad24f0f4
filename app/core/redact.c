/* redact: token values and Bearer credentials out of log text (see redact.h). */
#include "redact.h"

#include <string.h>
#include <strings.h>

/* Where a secret's value ends: the end of a query parameter, a header value or a quoted string. */
static size_t value_len(const char *v) { return strcspn(v, "& \t\r\n\"'<>;,"); }

/* If text starts a secret's name ("token=" or "Bearer "), the length of that name, else 0. */
static size_t secret_name(const char *text) {
    if (strncasecmp(text, "token=", 6) == 0) return 6;
    if (strncasecmp(text, "bearer ", 7) == 0) return 7;
    return 0;
}

char *redact_secrets(const char *text, char *out, size_t cap) {
    size_t n = 0;
    while (*text && n + 1 < cap) {
        size_t name = secret_name(text);
        if (!name) {
            out[n++] = *text++;
            continue;
        }
        size_t keep = name < cap - 1 - n ? name : cap - 1 - n;
        memcpy(out + n, text, keep);
        n += keep;
        text += name;
        while (*text == ' ') text++;
        text += value_len(text);
        size_t mark = strlen(REDACT_MARK);
        if (mark > cap - 1 - n) mark = cap - 1 - n;
        memcpy(out + n, REDACT_MARK, mark);
        n += mark;
    }
    out[n] = '\0';
    return out;
}

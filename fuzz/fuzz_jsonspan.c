/* fuzz_jsonspan: a member's value by bytes (app/proto/jsonspan.c), against cJSON's own reading.
 *
 * Input: byte 0 picks the key ("data", "to", "\xc3\xa9" or ""), the rest is the text, in a buffer of
 * exactly its length. Checked, beside ASan/UBSan's own checks:
 *  - a span found lies inside the text;
 *  - when cJSON parses the text as an object, jsonspan finds a member (1 or -1) exactly when
 *    cJSON_GetObjectItemCaseSensitive does: the router decides "needs data" by jsonspan alone;
 *  - a span found (1) is one whole JSON value that cJSON reads as the member's value: both print the
 *    same. So a delivery carries what the sender's message meant, byte for byte;
 *  - jsonspan_strict (the JWT's header and claims) accepts only what cJSON parses too, whole, and
 *    counts the members (or elements) cJSON finds in the outermost container. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "jsonspan.h"

/* cJSON's compact print of v, compared as strings (both NULL only if both failed). */
static int same_print(const cJSON *a, const cJSON *b) {
    char *pa = cJSON_PrintUnformatted(a), *pb = cJSON_PrintUnformatted(b);
    int same = pa && pb ? strcmp(pa, pb) == 0 : pa == pb;
    cJSON_free(pa);
    cJSON_free(pb);
    return same;
}

static void check_span(const char *text, size_t len, const char *v, size_t vlen, const cJSON *item) {
    FUZZ_CHECK(v >= text && v + vlen <= text + len && vlen > 0);
    if (!item) return;
    const char *end = NULL;
    cJSON *alone = cJSON_ParseWithLengthOpts(v, vlen, &end, 0);
    FUZZ_CHECK(alone && end == v + vlen);
    FUZZ_CHECK(same_print(alone, item));
    cJSON_Delete(alone);
}

/* Strict JSON is a subset of what cJSON takes (depth aside: strict stops at 128 levels, cJSON at 1000). */
static void check_strict(const char *text, size_t len) {
    size_t members = 0;
    if (!jsonspan_strict(text, len, &members)) return;
    const char *end = NULL;
    cJSON *whole = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    FUZZ_CHECK(whole != NULL);
    while (end && end < text + len && strchr(" \t\r\n", *end)) end++;
    FUZZ_CHECK(end == text + len);
    if (cJSON_IsObject(whole) || cJSON_IsArray(whole)) FUZZ_CHECK((size_t)cJSON_GetArraySize(whole) == members);
    cJSON_Delete(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const keys[] = {"data", "to", "\xc3\xa9", ""};
    if (size < 1) return 0;
    const char *key = keys[data[0] % 4];
    size_t len = size - 1;
    char *text = malloc(len ? len : 1);
    memcpy(text, data + 1, len);
    const char *v = NULL;
    size_t vlen = 0;
    int r = jsonspan_member(text, len, key, &v, &vlen);
    FUZZ_CHECK(r >= -1 && r <= 1);
    cJSON *obj = cJSON_ParseWithLength(text, len);
    const cJSON *item = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (cJSON_IsObject(obj)) FUZZ_CHECK((r != 0) == (item != NULL));
    if (r == 1) check_span(text, len, v, vlen, item);
    check_strict(text, len);
    cJSON_Delete(obj);
    free(text);
    return 0;
}

/* since: a client's recovery positions, from a query string or JSON (see since.h). */
#include "since.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

static int epoch_valid(const char *s, size_t len) {
    if (len != HIST_EPOCH_LEN) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i])) return 0;
    return 1;
}

/* EPOCH:OFFSET, the offset in decimal digits only. */
static int parse_text(const char *text, struct hist_pos *out) {
    const char *colon = strchr(text, ':');
    if (!colon || !epoch_valid(text, (size_t)(colon - text))) return -1;
    const char *digits = colon + 1;
    size_t n = strlen(digits);
    if (n == 0 || n > 16) return -1;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)digits[i])) return -1;
    unsigned long long v = strtoull(digits, NULL, 10);
    if ((double)v > SINCE_OFFSET_MAX) return -1;
    memcpy(out->epoch, text, HIST_EPOCH_LEN);
    out->epoch[HIST_EPOCH_LEN] = '\0';
    out->offset = v;
    return 0;
}

/* One since_ parameter: 1 when present and valid, 0 when absent, -1 when malformed. */
static int query_pos(const char *query, const char *key, struct hist_pos *out) {
    char text[64];
    int n = query_param(query, key, text, sizeof text);
    if (n == QUERY_ABSENT) return 0;
    return n > 0 && parse_text(text, out) == 0 ? 1 : -1;
}

int since_query(const char *query, int *positions, struct hub_since *out, const char **why) {
    *positions = 0;
    *out = (struct hub_since){0};
    if (!query) return 0;
    char v[8];
    int n = query_param(query, "v", v, sizeof v);
    if (n != QUERY_ABSENT && !(n == 1 && (v[0] == '1' || v[0] == '2'))) {
        *why = "v must be 1 or 2";
        return -1;
    }
    *positions = n == 1 && v[0] == '2';
    if ((out->has_user = query_pos(query, "since_user", &out->user)) < 0 ||
        (out->has_broadcast = query_pos(query, "since_broadcast", &out->broadcast)) < 0) {
        *why = "since_user and since_broadcast must be EPOCH:OFFSET";
        return -1;
    }
    return 0;
}

int since_json_pos(const cJSON *v, struct hist_pos *out) {
    if (!v) return 0;
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(v, "epoch");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(v, "offset");
    if (!cJSON_IsObject(v) || !cJSON_IsString(epoch) || !cJSON_IsNumber(offset)) return -1;
    if (!epoch_valid(epoch->valuestring, strlen(epoch->valuestring))) return -1;
    double d = offset->valuedouble;
    if (!(d >= 0 && d <= SINCE_OFFSET_MAX) || d != (double)(unsigned long long)d) return -1;
    memcpy(out->epoch, epoch->valuestring, HIST_EPOCH_LEN + 1);
    out->offset = (uint64_t)d;
    return 1;
}

int since_json(const cJSON *v, struct hub_since *out) {
    *out = (struct hub_since){0};
    if (!v) return 0;
    if (!cJSON_IsObject(v)) return -1;
    if ((out->has_user = since_json_pos(cJSON_GetObjectItemCaseSensitive(v, "user"), &out->user)) < 0 ||
        (out->has_broadcast = since_json_pos(cJSON_GetObjectItemCaseSensitive(v, "broadcast"), &out->broadcast)) < 0) {
        *out = (struct hub_since){0};
        return -1;
    }
    return 1;
}

/* envelope: a delivery's frame and a send's targets (see envelope.h). */
#include "envelope.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "history.h"

struct frame *envelope_frame(const char *from, const char *key, const char *value, const struct frame_part *data) {
    char head[ENVELOPE_HEAD_MAX];
    int n = key ? snprintf(head, sizeof head, "{\"type\":\"message\",\"from\":\"%s\",\"%s\":\"%s\",\"data\":", from, key, value)
                : snprintf(head, sizeof head, "{\"type\":\"message\",\"from\":\"%s\",\"data\":", from);
    if (n < 0 || (size_t)n >= sizeof head) return NULL;
    struct frame_part parts[] = {{head, (size_t)n}, *data, {"}", 1}};
    return frame_parts(WS_OP_TEXT, parts, 3);
}

struct frame *envelope_stamp(struct frame *f, const struct hist_pos *pos) {
    static const char head[] = "{\"type\":\"message\",";
    size_t len;
    const uint8_t *p = frame_payload(f, &len);
    if (len < sizeof head - 1 || memcmp(p, head, sizeof head - 1) != 0) return frame_ref(f);
    char stamp[sizeof head + 48 + HIST_EPOCH_LEN];
    int n = snprintf(stamp, sizeof stamp, "%s\"epoch\":\"%s\",\"offset\":%llu,", head, pos->epoch,
                     (unsigned long long)pos->offset);
    struct frame_part parts[] = {{stamp, (size_t)n}, {p + sizeof head - 1, len - (sizeof head - 1)}};
    return frame_parts(WS_OP_TEXT, parts, 2);
}

int envelope_targets(const cJSON *to, enum sb_error *code, const char **why) {
    int n = cJSON_IsArray(to) ? cJSON_GetArraySize(to) : cJSON_IsString(to) ? 1 : 0;
    if (n > ENVELOPE_MAX_TARGETS) {
        *code = ERR_TOO_LARGE;
        *why = "send to at most 100 users";
        return -1;
    }
    const cJSON *t = cJSON_IsArray(to) ? to->child : to;
    for (int i = 0; i < n; i++, t = t->next) {
        if (!cJSON_IsString(t)) n = 0;
        else if (!name_valid(t->valuestring)) {
            *code = ERR_BAD_REQUEST;
            *why = "invalid user name";
            return -1;
        }
    }
    if (n > 0) return n;
    *code = ERR_BAD_REQUEST;
    *why = "send needs to: a user name or an array of them";
    return -1;
}

int envelope_seen_before(const cJSON *to, const cJSON *t) {
    for (const cJSON *p = to->child; p && p != t; p = p->next)
        if (strcmp(p->valuestring, t->valuestring) == 0) return 1;
    return 0;
}

/* jsonspan: where a member's value sits in the text of a JSON object, as bytes.
 *
 * A delivery carries the sender's `data` as the sender wrote it. Printing it back from cJSON's tree
 * would change it: numbers become doubles (9007199254740993 arrives as 9.00719925474099e+15, 1e400
 * as null) and it costs a print per message. The router parses the message with cJSON, which
 * decides it is valid, and then copies the value's bytes out of the text with this.
 *
 * Pure and iterative: no allocation, no recursion, every index checked against `len`, so any input
 * is safe; on text that is not a valid object the answer is "not found". Keys are compared after
 * their escapes are decoded and up to a decoded NUL, as cJSON's C strings compare, so the member
 * found is the one cJSON_GetObjectItemCaseSensitive finds: the first of that name. */
#ifndef SB_JSONSPAN_H
#define SB_JSONSPAN_H

#include <stddef.h>

/* Finds the first member named `key` of the top-level object in text[0, len). When its value is
 * RFC 8259 JSON, sets *value to its first byte and *value_len to its length (no surrounding
 * whitespace) and returns 1. Returns 0 when there is no such member, -1 when its value is not
 * strict JSON (cJSON also takes 01, -.5, 1., raw control characters in strings): relaying it would
 * hand other clients text their parsers refuse. */
int jsonspan_member(const char *text, size_t len, const char *key, const char **value, size_t *value_len);

/* 1 if text[0, len) is one RFC 8259 value, whitespace around it allowed, else 0. *members (when not
 * NULL) is set to the number of members (or elements) of the outermost object (or array). The text
 * must be valid UTF-8 (utf8.h), which this does not check. Linear in len, nesting up to 128 levels. */
int jsonspan_strict(const char *text, size_t len, size_t *members);

#define JSONSPAN_NO_ESCAPED_NUL 1 /* jsonspan_shape_ok: also refuse \u0000 in a string */
/* 1 if text nests arrays and objects no deeper than max_depth, strings skipped, else 0: cJSON parses
 * recursively, so deep input is refused before it reaches cJSON. With JSONSPAN_NO_ESCAPED_NUL, also 0
 * when a string holds \u0000, where cJSON would cut the string ("alice\u0000x" would read "alice").
 * One pass, no validation beyond that. */
int jsonspan_shape_ok(const char *text, size_t len, int max_depth, int flags);

#endif

/* names: what a user or room name may be, and reading one from a query string.
 *
 * Names travel in JSON, in URLs and in log lines, so they are a small safe alphabet: 1-64 of
 * [A-Za-z0-9_.-]. Names starting with "conn-" are reserved for anonymous connections, whose user
 * is their id, so nobody can claim another connection's identity. */
#ifndef SB_NAMES_H
#define SB_NAMES_H

#include <stddef.h>

#define SB_NAME_MAX 64
#define SB_ID_PREFIX "conn-"

/* 1 if `name` (NUL-terminated) has the allowed length and alphabet, else 0. */
int name_valid(const char *name);
/* 1 if `name` is valid and not reserved for connection ids: usable in ?user= and hello. */
int name_claimable(const char *name);

enum { QUERY_ABSENT = -1, QUERY_BAD = -2 };
/* Finds `key` in a query string ("a=1&user=bob"), percent-decodes its value into out (cap bytes,
 * NUL-terminated) and returns its length; QUERY_ABSENT if the key is not there; QUERY_BAD if the
 * value is too long for out, badly encoded, or decodes to a NUL. */
int query_param(const char *query, const char *key, char *out, size_t cap);

#endif

/* hex: one hexadecimal digit's value, for the decoders that meet them (names.c's %XX in query
 * strings, jsonspan.c's \uXXXX in JSON keys and strings). Header-only: it is one comparison chain. */
#ifndef SB_HEX_H
#define SB_HEX_H

/* 0-15 for [0-9a-fA-F], else -1. */
static inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

#endif

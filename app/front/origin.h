/* origin: the cross-site WebSocket hijacking check, done at the handshake.
 *
 * Browsers send Origin on every WebSocket handshake and let any page open a socket to any server, so
 * the server must refuse pages it does not trust. A request is allowed when it has no Origin (not a
 * browser), when the Origin names the same host and port as the Host header (the page was served by
 * this server), or when the Origin is in the allow list ("*" allows any). Pure: no CivetWeb. */
#ifndef SB_ORIGIN_H
#define SB_ORIGIN_H

#include <stddef.h>

/* `origin` and `host` may be NULL (header absent). `allow` holds `nallow` origins as given by
 * --allow-origin. Returns 1 if the handshake may proceed, 0 if it must get 403. */
int origin_allowed(const char *origin, const char *host, const char *const *allow, size_t nallow);

#endif

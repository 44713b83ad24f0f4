/* origin: the cross-site WebSocket hijacking check, done at the handshake.
 *
 * Browsers send Origin on every WebSocket handshake and let any page open a socket to any server, so
 * the server must refuse pages it does not trust. A request is allowed when it has no Origin (not a
 * browser), when the Origin names the same host and port as the Host header (the page was served by
 * this server), or when the Origin is in the allow list ("*" allows any). Pure: no CivetWeb.
 *
 * The Origin check cannot see DNS rebinding: a page at http://rebind.evil.example:8080, whose name the
 * attacker then points at this server's address (127.0.0.1, or an internal one), sends that name in
 * both Host and Origin, so it looks same-origin. What gives it away is a Host this server was never
 * meant to be reached by. With --allowed-hosts, origin_host_allowed is the one decision on every
 * request, HTTP and WebSocket alike: a Host not listed gets 421 Misdirected Request. */
#ifndef SB_ORIGIN_H
#define SB_ORIGIN_H

#include <stddef.h>

/* `origin` and `host` may be NULL (header absent). `allow` holds `nallow` origins as given by
 * --allow-origin. Returns 1 if the handshake may proceed, 0 if it must get 403. */
int origin_allowed(const char *origin, const char *host, const char *const *allow, size_t nallow);

/* 1 if the request's Host (NULL: absent) is one of the `nallowed` --allowed-hosts entries, or when
 * none is configured (nallowed 0); else 0, for a 421. An entry "name" matches that name on any port,
 * "name:port" that port only; names compare without case. A request without a Host (HTTP/1.0) names
 * no host and is refused when a list is configured. */
int origin_host_allowed(const char *host, const char *const *allowed, size_t nallowed);
/* 1 if `entry` is something --allowed-hosts takes: a host name, an IPv4 address or a bracketed IPv6
 * address, optionally with :port. */
int origin_host_entry_valid(const char *entry);

#endif

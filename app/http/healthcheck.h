/* healthcheck: `switchboard --healthcheck [URL]`, a probe of a running server.
 *
 * Docker's HEALTHCHECK runs a command inside the container; the slim image has no curl or wget, so
 * the binary probes itself: one GET over a plain socket, bounded by a timeout. */
#ifndef SB_HEALTHCHECK_H
#define SB_HEALTHCHECK_H

#define HEALTHCHECK_TIMEOUT_MS 3000

/* GETs an http:// URL. Returns 0 if it answered 200, 1 otherwise (and says why on stderr). */
int healthcheck_run(const char *url);

#endif

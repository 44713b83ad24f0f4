/* linger: closing a socket the way nginx's lingering close does, so that our last frame survives.
 *
 * When the server ends a connection while the peer is still sending (an oversized message is closed
 * with 1009 from its header while its payload keeps arriving; a 1002, 1007, 1008 or 4401 likewise),
 * close() with unread input makes the kernel answer with a reset, and a reset may overtake the close
 * frame written just before: the peer, or a proxy between (HAProxy drops what it had not forwarded
 * yet), never sees why. So instead of closing, the loop hands the socket here: it is shut down for
 * writing (our FIN goes after the close frame), then what still arrives is read and dropped until the
 * peer closes too, or for at most LINGER_MS and LINGER_BYTES, and only then closed.
 *
 * Bounds and policy: LINGER_MAX sockets linger at once; past it, or when no descriptor is left for
 * the copy, a socket is closed at once as before. Both counted: switchboard_lingering_closes_total,
 * switchboard_lingering_cut_total (closed at a bound: time, size, or too many).
 *
 * Threads: one thread of its own with its own epoll set; linger_add from any thread. Ownership: a
 * lingering socket is a duplicate descriptor owned here, so the caller closes its own as usual (the
 * socket stays open while the copy does). */
#ifndef SB_LINGER_H
#define SB_LINGER_H

#define LINGER_MS 2000          /* longest a socket lingers */
#define LINGER_BYTES (64 * 1024) /* most input read and dropped from one socket */
#define LINGER_MAX 4096          /* sockets lingering at once */

struct linger_set;

/* NULL when out of memory or threads (sockets are then closed at once, as before). */
struct linger_set *linger_start(void);
/* Closes every socket still lingering, stops the thread, frees l. NULL is fine. */
void linger_stop(struct linger_set *l);
/* Lingers on a copy of fd (see above); the caller still closes fd itself. l NULL: does nothing. */
void linger_add(struct linger_set *l, int fd);

#endif

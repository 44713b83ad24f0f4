/* sockfind: the socket behind a CivetWeb connection, and taking it away from CivetWeb.
 *
 * CivetWeb 1.15 gives an application no way to reach a connection's socket, and switchboard hands
 * each WebSocket's socket to its event loops once the handshake is done (loop.h). The socket is
 * found by its addresses: among the descriptors not already claimed, the one whose peer is the
 * request's remote address and port and whose local port is the request's server port. That pair
 * of endpoints names one TCP connection.
 *
 * Taking (sockfind_take), under the lock:
 *   mine = fcntl(fd, F_DUPFD_CLOEXEC)   the TCP connection under a second number, which the caller owns
 *   dup3(eof_fd, fd)                    CivetWeb's number now names a socket that only says EOF
 * so when the request is done (ws.c answers the upgrade from begin_request) CivetWeb's worker closes
 * ITS number, that is the dummy: whatever CivetWeb reads, writes, shuts down or closes from then on
 * never reaches the TCP connection, and its worker is free for the next request. `mine` is claimed
 * until sockfind_close, which releases and closes it under the lock, so no search ever sees a claimed
 * number that is already free (a fresh accept could take it) or an unclaimed one still ours.
 *
 * Cost of a search, independent of how many WebSockets are open: descriptors take the lowest free
 * number, so when CivetWeb accepted the connection every number below it was open; the search visits
 * the unclaimed numbers from 0 up and stops at the connection. Claimed numbers (the loops' sockets)
 * are skipped a 64-bit word at a time, and runs of full words 4096 numbers at a time through a second
 * level of the bitmap. What is left: the server's own descriptors (listener, epoll, eventfds, log
 * files), HTTP connections in flight (at most --http-threads plus CivetWeb's queue), dummies not yet
 * closed, and numbers freed by WebSockets that closed since the accept. Each search remembers what it
 * saw at each of those (a hint per descriptor below SOCKFIND_HINTS_MAX: the peer's address and port as
 * a 64-bit tag, or "no peer" for a listener or a non-socket, or "unknown" for a closed number or a
 * dummy, both about to become a new connection), so the next search calls getpeername only where the
 * hint is unknown or names the wanted peer: about one call per new connection instead of one per
 * descriptor in the way. Hints are only an order: a number closed and reused behind sockfind's back
 * (an HTTP connection's) keeps a stale hint, so a first pass that finds nothing is followed by a second
 * over the descriptors the hints ruled out, which refreshes them. A take or a release resets its
 * numbers' hints. A connection found nowhere below the highest number ever claimed plus SOCKFIND_SLACK
 * (only when far more requests are in flight than that) is looked for in /proc/self/fd, which lists
 * every open descriptor: correct, and O(open descriptors), so it is the exception.
 *
 * Thread-safe: `lock` guards the claimed set and the hints. */
#ifndef SB_SOCKFIND_H
#define SB_SOCKFIND_H

struct sockfind;

/* Reads RLIMIT_NOFILE: numbers at or above it are never claimed. */
struct sockfind *sockfind_new(void);
void sockfind_free(struct sockfind *sf);
/* The descriptor connected from remote_ip:remote_port to local port server_port, now claimed, or -1. */
int sockfind_claim(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port);
void sockfind_release(struct sockfind *sf, int fd);
/* Finds the connection like sockfind_claim and takes it (see above): returns a new close-on-exec
 * descriptor of the TCP connection, claimed and owned by the caller, while the number CivetWeb holds
 * now names eof_fd's socket. -1 when it is not found or no descriptor is left (errno EMFILE). */
int sockfind_take(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port, int eof_fd);
/* Releases a descriptor from sockfind_take and closes it, atomically for every search. */
void sockfind_close(struct sockfind *sf, int fd);
/* A socket that reads EOF at once, forever, for sockfind_take: one end of a socketpair whose other end
 * is closed. -1 on failure. The caller closes it. */
int sockfind_eof_socket(void);

#endif

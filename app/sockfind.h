/* sockfind: the socket behind a CivetWeb connection.
 *
 * CivetWeb 1.15 gives an application no way to reach a connection's socket, and switchboard hands
 * each WebSocket's socket to its event loops once the handshake is done (loop.h). The socket is
 * found by its addresses: among the descriptors not already claimed, the one whose peer is the
 * request's remote address and port and whose local port is the request's server port. That pair
 * of endpoints names one TCP connection, and new descriptors take the lowest free number, so the scan
 * passes few others (listening sockets, files, HTTP requests in flight); past the highest descriptor
 * ever claimed it looks only at the open ones.
 *
 * Thread-safe: `lock` guards the claimed set. A claim lasts until sockfind_release, which the
 * connection's owner calls before CivetWeb can close the descriptor. */
#ifndef SB_SOCKFIND_H
#define SB_SOCKFIND_H

struct sockfind;

struct sockfind *sockfind_new(void);
void sockfind_free(struct sockfind *sf);
/* The descriptor connected from remote_ip:remote_port to local port server_port, now claimed, or -1. */
int sockfind_claim(struct sockfind *sf, const char *remote_ip, int remote_port, int server_port);
void sockfind_release(struct sockfind *sf, int fd);

#endif

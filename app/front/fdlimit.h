/* fdlimit: the open-file limit, raised to what --max-connections needs.
 *
 * Every open WebSocket holds one descriptor, so the process's RLIMIT_NOFILE bounds how many it can
 * hold. At start the soft limit is raised as far as --max-connections needs (never past the hard
 * limit, which only the administrator can raise), and when even the hard limit cannot cover it the
 * server says so once and uses what it can hold: handshakes past that get 503 instead of failing at
 * accept. Called from main before any thread starts; not thread-safe. */
#ifndef SB_FDLIMIT_H
#define SB_FDLIMIT_H

#define FDLIMIT_RESERVE 64 /* descriptors for listeners, epoll sets, eventfds, logs, files being served */

struct fdlimit {
    long connections; /* WebSockets the descriptors allow, at most the wanted number */
    long open_files;  /* the soft limit now in force */
    long hard;        /* the hard limit */
};

/* Raises the soft limit for `connections` WebSockets plus `reserve` other descriptors and fills out.
 * Returns 1 when the limit covers them, 0 when out->connections is fewer than asked. */
int fdlimit_raise(long connections, long reserve, struct fdlimit *out);

#endif

/* fdlimit: raising RLIMIT_NOFILE for the connections (see fdlimit.h). */
#include "fdlimit.h"

#include <sys/resource.h>

int fdlimit_raise(long connections, long reserve, struct fdlimit *out) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        rl.rlim_cur = rl.rlim_max = 1024;
    }
    rlim_t want = (rlim_t)connections + (rlim_t)reserve;
    if (rl.rlim_cur < want) {
        struct rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl.rlim_cur = raised.rlim_cur;
    }
    long soft = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)1 << 30 ? 1L << 30 : (long)rl.rlim_cur;
    out->open_files = soft;
    out->hard = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (rlim_t)1 << 30 ? 1L << 30 : (long)rl.rlim_max;
    long room = soft - reserve;
    out->connections = room < connections ? (room > 1 ? room : 1) : connections;
    return out->connections == connections;
}

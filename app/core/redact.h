/* redact: tokens out of log lines.
 *
 * A token in a log is a credential anyone reading the log can use until it expires, so every log line
 * that may carry a client's URL or headers (handshake refusals, the request log, CivetWeb's own
 * messages) goes through redact_secrets first: the value of each `token=` parameter (also
 * `access_token=` and the like) and each `Bearer` credential becomes REDACT_MARK. Pure function,
 * thread-safe, bounded by the caller's buffer. */
#ifndef SB_REDACT_H
#define SB_REDACT_H

#include <stddef.h>

#define REDACT_MARK "[redacted]"

/* Copies text into out (cap > 0 bytes, always NUL-terminated, cut when full) with secrets replaced;
 * returns out. */
char *redact_secrets(const char *text, char *out, size_t cap);

#endif

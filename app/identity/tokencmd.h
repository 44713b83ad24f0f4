/* tokencmd: `switchboard token`, minting an HS256 token for a user with the configured secret.
 *
 * For development and for issuers that can run the binary (like `centrifugo gentoken`): prints one
 * token on stdout and exits 0; bad arguments, no secret, or a public key configured (we cannot sign
 * RS256/ES256 without the private key) print a message on stderr and exit 2. The key settings come
 * from the same flags and SWITCHBOARD_JWT_* variables as the server (config.h, keys.h). */
#ifndef SB_TOKENCMD_H
#define SB_TOKENCMD_H

#define TOKENCMD_TTL_DEFAULT 3600           /* seconds */
#define TOKENCMD_TTL_MAX (366L * 24 * 3600) /* a year and a day */

/* argv[0] is "token"; returns the process exit code. */
int tokencmd_main(int argc, char **argv);
/* Parses a lifetime: whole seconds, or a number followed by s, m, h or d. Returns the seconds, or -1
 * when malformed, zero, or over TOKENCMD_TTL_MAX. */
long tokencmd_parse_ttl(const char *text);

#endif

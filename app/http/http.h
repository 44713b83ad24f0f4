/* http: complete HTTP responses written by hand.
 *
 * CivetWeb 1.15's own error path (mg_send_http_error) writes a body with no status line when the
 * request is a WebSocket upgrade, and its error_pages option answers 200. Every response switchboard
 * makes itself (handshake refusals, 404s, /healthz, /metrics) goes through http_reply, which writes
 * the status line, headers and body in one piece and closes the connection. */
#ifndef SB_HTTP_H
#define SB_HTTP_H

#include <stddef.h>

#define HTTP_HEAD_MAX 1024 /* a response head http_reply writes: status line, fixed headers, `extra` */

struct mg_connection;

/* Writes the response; `body` of `len` bytes; `content_type` e.g. "text/plain; charset=utf-8". */
void http_reply(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len);
/* The same with `extra` header lines ("Name: value\r\n" each, "" for none) before the blank line. */
void http_reply_headers(struct mg_connection *conn, int status, const char *content_type, const char *extra,
                        const char *body, size_t len);
/* A short text/plain response: the reason phrase and `detail` (may be NULL) as the body. */
void http_reply_text(struct mg_connection *conn, int status, const char *detail);
/* http_reply_text with extra header lines, as for http_reply_headers (e.g. "WWW-Authenticate: Bearer\r\n"). */
void http_reply_text_headers(struct mg_connection *conn, int status, const char *headers, const char *detail);
/* http_reply_text_headers on a socket that no CivetWeb connection holds (the acceptor's and the
 * handshake's refusals, acceptor.h), in one send that does not block: a response this short fits an
 * idle socket's buffer. 0 when all of it was taken. The caller closes the socket. */
int http_send_text(int fd, int status, const char *headers, const char *detail);
const char *http_reason(int status);

#endif

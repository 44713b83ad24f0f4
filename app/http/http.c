/* http: hand-written complete responses (see http.h). */
#include "http.h"

#include <civetweb.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

const char *http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void http_reply(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len) {
    http_reply_headers(conn, status, content_type, "", body, len);
}

/* The status line and headers; returns their length (the caller's buffer is large enough). */
static size_t render_head(char *out, size_t cap, int status, const char *content_type, const char *extra, size_t len) {
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "X-Content-Type-Options: nosniff\r\n"
                     "%s"
                     "Connection: close\r\n\r\n",
                     status, http_reason(status), content_type, len, extra);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* A text/plain body: the reason phrase and `detail`. */
static size_t render_text(char *body, size_t cap, int status, const char *detail) {
    int n = snprintf(body, cap, "%d %s%s%s\n", status, http_reason(status), detail ? ": " : "", detail ? detail : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

void http_reply_headers(struct mg_connection *conn, int status, const char *content_type, const char *extra,
                        const char *body, size_t len) {
    char head[HTTP_HEAD_MAX];
    size_t n = render_head(head, sizeof head, status, content_type, extra, len);
    mg_write(conn, head, n);
    if (len) mg_write(conn, body, len);
}

void http_reply_text(struct mg_connection *conn, int status, const char *detail) {
    http_reply_text_headers(conn, status, "", detail);
}

void http_reply_text_headers(struct mg_connection *conn, int status, const char *headers, const char *detail) {
    char body[512];
    size_t n = render_text(body, sizeof body, status, detail);
    http_reply_headers(conn, status, "text/plain; charset=utf-8", headers, body, n);
}

int http_send_text(int fd, int status, const char *headers, const char *detail) {
    char out[HTTP_HEAD_MAX + 512];
    char body[512];
    size_t blen = render_text(body, sizeof body, status, detail);
    size_t n = render_head(out, HTTP_HEAD_MAX, status, "text/plain; charset=utf-8", headers, blen);
    memcpy(out + n, body, blen);
    ssize_t put;
    do put = send(fd, out, n + blen, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (put < 0 && errno == EINTR);
    return put == (ssize_t)(n + blen) ? 0 : -1;
}

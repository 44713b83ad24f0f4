/* http: hand-written complete responses (see http.h). */
#include "http.h"

#include <civetweb.h>
#include <stdio.h>
#include <string.h>

const char *http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 421: return "Misdirected Request";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void http_reply(struct mg_connection *conn, int status, const char *content_type, const char *body, size_t len) {
    http_reply_headers(conn, status, content_type, "", body, len);
}

void http_reply_headers(struct mg_connection *conn, int status, const char *content_type, const char *extra,
                        const char *body, size_t len) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\n"
              "Content-Type: %s\r\n"
              "Content-Length: %zu\r\n"
              "Cache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\n"
              "%s"
              "Connection: close\r\n\r\n",
              status, http_reason(status), content_type, len, extra);
    if (len) mg_write(conn, body, len);
}

void http_reply_text(struct mg_connection *conn, int status, const char *detail) {
    http_reply_text_headers(conn, status, "", detail);
}

void http_reply_text_headers(struct mg_connection *conn, int status, const char *headers, const char *detail) {
    char body[512];
    int n = snprintf(body, sizeof body, "%d %s%s%s\n", status, http_reason(status), detail ? ": " : "",
                     detail ? detail : "");
    if (n < 0) n = 0;
    http_reply_headers(conn, status, "text/plain; charset=utf-8", headers, body,
                       (size_t)n < sizeof body ? (size_t)n : sizeof body - 1);
}

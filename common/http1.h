/*
 * http1.h: strict, sans-I/O HTTP/1.1 message head parser and chunked
 * body decoder (RFC 9112).
 *
 * The parser is stateless: give it the bytes received so far (contiguous)
 * and it either finds a complete head, asks for more, or refuses with the
 * HTTP status to answer. Parsed fields point into the caller's buffer; no
 * allocation. It is strict where leniency lets requests be smuggled:
 * CRLF line ends only, no obs-fold, no whitespace before ':', token header
 * names, one Content-Length at most, never Content-Length together with
 * Transfer-Encoding.
 */
#ifndef S3EDGE_HTTP1_H
#define S3EDGE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http1_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading/trailing OWS removed */
    size_t value_len;
};

struct http1_limits {
    size_t max_request_line; /* bytes of request line (w/o CRLF) -> 414 */
    size_t max_head_bytes;   /* whole head incl. request line -> 431 */
    unsigned max_headers;    /* number of header fields -> 431 */
};

enum http1_method {
    HTTP1_M_OTHER = 0,
    HTTP1_M_GET,
    HTTP1_M_HEAD,
    HTTP1_M_POST,
    HTTP1_M_PUT,
    HTTP1_M_DELETE,
    HTTP1_M_OPTIONS,
    HTTP1_M_PATCH,
    HTTP1_M_CONNECT,
    HTTP1_M_TRACE,
};

struct http1_request {
    enum http1_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* request-target as sent */
    size_t target_len;
    const char *path;   /* path part of target (origin-form or from absolute-form) */
    size_t path_len;
    const char *query;  /* after '?', NULL if none */
    size_t query_len;
    int version_minor;  /* 0 or 1 (HTTP/1.x only) */
    struct http1_header *headers; /* caller's array, limits.max_headers entries */
    unsigned nheaders;
    /* derived */
    const char *host;   /* Host value (or authority of absolute-form) */
    size_t host_len;
    int64_t content_length; /* -1: none */
    bool chunked;
    bool keep_alive;    /* after version + Connection rules */
    bool expect_continue;
    size_t head_len;    /* bytes of the head, incl. final CRLF CRLF */
};

struct http1_response {
    int status;
    int version_minor;
    const char *reason;
    size_t reason_len;
    struct http1_header *headers;
    unsigned nheaders;
    int64_t content_length; /* -1: none */
    bool chunked;
    bool keep_alive;
    size_t head_len;
};

/*
 * Parse a request head from buf[0..len).
 * `req->headers` must point to an array of lim->max_headers entries; every
 * other field of *req is overwritten. Call again from the start of the
 * buffer when more bytes arrive. Nothing past buf[len] is read; nothing at
 * or past max_head_bytes is used (a head that is not complete there is 431).
 * Returns the head length (> 0) when complete, EDGE_EAGAIN when more bytes
 * are needed (and no limit is exceeded yet), or another negative EDGE_E*
 * code with *status set to the HTTP status to answer:
 *   400 (EDGE_EINVAL) malformed / smuggling attempt / missing or repeated
 *       Host on 1.1 / repeated or invalid Host on any version / an empty
 *       Host / Transfer-Encoding with chunked not last or twice
 *       (RFC 9112 6.3: the length is then unknown) / Transfer-Encoding on
 *       1.0 / Transfer-Encoding with Content-Length / a request-target
 *       that is not origin-form, absolute-form or "*" with OPTIONS,
 *   414 (EDGE_ETOOLONG) request line over max_request_line bytes, decided
 *       as soon as max_request_line + 1 bytes arrived without a line end,
 *   431 (EDGE_ETOOLONG, EDGE_ETOOMANY) head over max_head_bytes or more
 *       than max_headers fields, decided as soon as it is certain,
 *   501 (EDGE_ENOTSUP) a transfer coding other than chunked,
 *   505 (EDGE_ENOTSUP) a well-formed HTTP/x.y other than 1.0 and 1.1.
 * Bytes are judged in order, so a refusal does not depend on how the
 * input was split into reads: a malformed byte within the limits is 400
 * even if a limit is exceeded further on, and a prefix refused with some
 * status is refused with the same status once more bytes arrive.
 * Leading empty lines (RFC 9112 2.2) are skipped and counted in head_len.
 * On error the fields of *req are unspecified.
 */
int http1_parse_request(const char *buf, size_t len,
                        const struct http1_limits *lim,
                        struct http1_request *req, int *status);

/*
 * Parse a response head (from an origin). Same return convention and the
 * same field rules; there is no status out-parameter: any error means the
 * origin answered garbage (502). EDGE_EINVAL: malformed, duplicate
 * Content-Length, Content-Length with Transfer-Encoding, Transfer-Encoding
 * on 1.0; EDGE_ETOOLONG: status line over max_request_line or head over
 * max_head_bytes; EDGE_ETOOMANY: too many fields; EDGE_ENOTSUP: not
 * HTTP/1.x, or a transfer coding other than a lone chunked.
 * 1xx interim responses are returned as parsed; the caller skips them.
 * content_length is reported as parsed whatever the status (1xx, 204, 304
 * and responses to HEAD have no body: the caller decides). keep_alive only
 * reflects version and Connection; a body delimited by close (neither
 * chunked nor Content-Length) also ends the connection.
 */
int http1_parse_response(const char *buf, size_t len,
                         const struct http1_limits *lim,
                         struct http1_response *resp);

/* Case-insensitive header lookup: the first match, or NULL. */
const struct http1_header *http1_find(const struct http1_header *h, unsigned n,
                                      const char *name);

/* Whether a comma-separated header value lists token (case-insensitive). */
bool http1_has_token(const char *value, size_t len, const char *token);

/* Chunked transfer-coding decoder (RFC 9112 7.1), sans I/O. */
#define HTTP1_CHUNK_LINE_MAX 4096      /* size line with extensions, or one trailer line */
#define HTTP1_CHUNK_TRAILERS_MAX 16384 /* all trailer lines together */

struct http1_chunked {
    unsigned state;
    uint64_t remaining; /* data bytes left in the current chunk */
    unsigned line_len;  /* bytes of the current size/trailer line */
};

void http1_chunked_init(struct http1_chunked *c);

/*
 * Feed in[0..len). On return, *consumed input bytes were used; if
 * *data_len > 0 then in[*data_off .. *data_off + *data_len) is body data
 * (at most one span per call; the call returns right after it, so call
 * again with in + *consumed while *consumed < len). Returns 0 to go on,
 * 1 when the last chunk and trailers are complete (nothing past them is
 * consumed; feeding again returns 1 and consumes nothing), or EDGE_EINVAL
 * on a malformed stream, EDGE_ETOOLONG on an overlong size/trailer line,
 * trailers over HTTP1_CHUNK_TRAILERS_MAX or a chunk size over 2^62.
 * Errors are sticky. Chunk extensions and trailer fields are checked for
 * syntax and dropped.
 */
int http1_chunked_feed(struct http1_chunked *c, const char *in, size_t len,
                       size_t *consumed, size_t *data_off, size_t *data_len);

#endif

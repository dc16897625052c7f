/*
 * fuzz_http1_request.c: libFuzzer target for http1_parse_request().
 *
 * The input is the bytes a client sent. Each is parsed under roomy limits
 * and under tight limits derived from its length, from an exact-size heap
 * copy (so that ASan sees any read past the end), and the result is checked
 * against what the header promises:
 *   - a complete head: every pointer inside the buffer, every field
 *     syntactically clean, limits honoured, framing unambiguous; the same
 *     head alone parses to the same length, and each shorter prefix of it
 *     asks for more;
 *   - a refusal: a status the header lists, with the matching error code,
 *     and a refusal decided early on a prefix is the same refusal on the
 *     whole input.
 * A broken promise traps.
 */
#include "err.h"
#include "http1.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(x)                                                         \
    do {                                                                       \
        if (!(x))                                                              \
            __builtin_trap();                                                  \
    } while (0)

#define MAXH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http1_header hdrs[MAXH];

static bool inside(const char *p, size_t n, const char *b, size_t len)
{
    return p != NULL && p >= b && n <= len && (size_t)(p - b) <= len - n;
}

static bool is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

static int parse(const char *src, size_t len, const struct http1_limits *lim,
                 struct http1_request *req, int *st, char **copy)
{
    char *b = malloc(len ? len : 1);

    FUZZ_ASSERT(b != NULL);
    memcpy(b, src, len);
    req->headers = hdrs;
    *st = -1;
    *copy = b;
    return http1_parse_request(b, len, lim, req, st);
}

static void check_complete(const char *b, size_t len,
                           const struct http1_limits *lim,
                           const struct http1_request *req, int r, int st)
{
    unsigned i;
    size_t k;

    FUZZ_ASSERT(st == 0);
    FUZZ_ASSERT((size_t)r <= len);
    FUZZ_ASSERT(req->head_len == (size_t)r);
    FUZZ_ASSERT(req->head_len <= lim->max_head_bytes);
    FUZZ_ASSERT(r >= 4 && memcmp(b + r - 4, "\r\n\r\n", 4) == 0);
    FUZZ_ASSERT(req->version_minor == 0 || req->version_minor == 1);
    FUZZ_ASSERT(inside(req->method_str, req->method_len, b, (size_t)r));
    FUZZ_ASSERT(req->method_len > 0);
    for (k = 0; k < req->method_len; k++)
        FUZZ_ASSERT(is_tchar((unsigned char)req->method_str[k]));
    FUZZ_ASSERT(inside(req->target, req->target_len, b, (size_t)r));
    FUZZ_ASSERT(req->target_len > 0);
    FUZZ_ASSERT((size_t)(req->target - req->method_str) == req->method_len + 1);
    FUZZ_ASSERT(req->method_len + 1 + req->target_len + 9 <= lim->max_request_line);
    for (k = 0; k < req->target_len; k++) {
        unsigned char c = (unsigned char)req->target[k];

        FUZZ_ASSERT(c >= 0x21 && c <= 0x7e && c != '#');
    }
    /* the path is in the target (or "/" for an absolute-form without one) */
    FUZZ_ASSERT(inside(req->path, req->path_len, req->target, req->target_len) ||
                (req->path_len == 1 && req->path[0] == '/'));
    FUZZ_ASSERT(req->path_len > 0);
    FUZZ_ASSERT(req->path[0] == '/' || (req->path[0] == '*' && req->method == HTTP1_M_OPTIONS));
    FUZZ_ASSERT(memchr(req->path, '?', req->path_len) == NULL);
    if (req->query != NULL) {
        FUZZ_ASSERT(inside(req->query, req->query_len, req->target, req->target_len));
        FUZZ_ASSERT(req->query[-1] == '?');
        FUZZ_ASSERT(req->query + req->query_len == req->target + req->target_len);
    }
    if (req->version_minor == 1)
        FUZZ_ASSERT(req->host != NULL && req->host_len > 0);
    if (req->host != NULL) {
        FUZZ_ASSERT(inside(req->host, req->host_len, b, (size_t)r));
        for (k = 0; k < req->host_len; k++) {
            unsigned char c = (unsigned char)req->host[k];

            FUZZ_ASSERT(c > 0x20 && c < 0x7f && c != '@' && c != '/' &&
                        c != '\\' && c != '?' && c != '#');
        }
    }
    FUZZ_ASSERT(req->nheaders <= lim->max_headers);
    for (i = 0; i < req->nheaders; i++) {
        const struct http1_header *h = &req->headers[i];

        FUZZ_ASSERT(inside(h->name, h->name_len, b, (size_t)r));
        FUZZ_ASSERT(inside(h->value, h->value_len, b, (size_t)r));
        FUZZ_ASSERT(h->name_len > 0);
        for (k = 0; k < h->name_len; k++)
            FUZZ_ASSERT(is_tchar((unsigned char)h->name[k]));
        FUZZ_ASSERT(h->name[h->name_len] == ':');
        for (k = 0; k < h->value_len; k++) {
            unsigned char c = (unsigned char)h->value[k];

            FUZZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value_len > 0) {
            FUZZ_ASSERT(h->value[0] != ' ' && h->value[0] != '\t');
            FUZZ_ASSERT(h->value[h->value_len - 1] != ' ' &&
                        h->value[h->value_len - 1] != '\t');
        }
    }
    /* framing: one of chunked, a length, or none; never both */
    if (req->chunked) {
        FUZZ_ASSERT(req->content_length == -1);
        FUZZ_ASSERT(req->version_minor == 1);
        FUZZ_ASSERT(http1_find(req->headers, req->nheaders, "content-length") == NULL);
    } else {
        FUZZ_ASSERT(http1_find(req->headers, req->nheaders, "transfer-encoding") == NULL);
    }
    FUZZ_ASSERT(req->content_length >= -1);
    if (req->content_length >= 0)
        FUZZ_ASSERT(http1_find(req->headers, req->nheaders, "content-length") != NULL);
    if (req->expect_continue)
        FUZZ_ASSERT(req->version_minor == 1);
}

static void check_refusal(int r, int st)
{
    switch (st) {
    case 400:
        FUZZ_ASSERT(r == EDGE_EINVAL);
        break;
    case 414:
        FUZZ_ASSERT(r == EDGE_ETOOLONG);
        break;
    case 431:
        FUZZ_ASSERT(r == EDGE_ETOOLONG || r == EDGE_ETOOMANY);
        break;
    case 501:
    case 505:
        FUZZ_ASSERT(r == EDGE_ENOTSUP);
        break;
    default:
        __builtin_trap();
    }
}

static void run(const char *data, size_t size, const struct http1_limits *lim)
{
    struct http1_request req, req2;
    char *b, *b2;
    size_t k, step;
    int st, st2, r, r2;

    r = parse(data, size, lim, &req, &st, &b);
    if (r > 0) {
        check_complete(b, size, lim, &req, r, st);
        /* the head alone is the same head */
        r2 = parse(data, (size_t)r, lim, &req2, &st2, &b2);
        FUZZ_ASSERT(r2 == r);
        FUZZ_ASSERT(req2.nheaders == req.nheaders);
        FUZZ_ASSERT(req2.chunked == req.chunked);
        FUZZ_ASSERT(req2.content_length == req.content_length);
        FUZZ_ASSERT(req2.keep_alive == req.keep_alive);
        free(b2);
    } else if (r == EDGE_EAGAIN) {
        FUZZ_ASSERT(size < lim->max_head_bytes);
    } else {
        check_refusal(r, st);
    }

    /* Prefixes: of a complete head they all ask for more; of anything, a
     * refusal decided early stands on the whole input. All of them for
     * short inputs, about 60 spread out for long ones. */
    step = size <= 128 ? 1 : size / 61 + 1;
    for (k = 0; k < (r > 0 ? (size_t)r : size); k += step) {
        r2 = parse(data, k, lim, &req2, &st2, &b2);
        free(b2);
        if (r > 0) {
            FUZZ_ASSERT(r2 == EDGE_EAGAIN);
        } else if (r2 != EDGE_EAGAIN) {
            FUZZ_ASSERT(r2 < 0);
            FUZZ_ASSERT(r < 0 && r != EDGE_EAGAIN);
            FUZZ_ASSERT(st2 == st);
        }
    }
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct http1_limits roomy = {8192, 16384, MAXH};
    struct http1_limits tight;

    run((const char *)data, size, &roomy);
    /* tight limits around this input's own size reach the limit paths:
     * the request line first, then the head before the line */
    tight.max_request_line = size / 3 + 1;
    tight.max_head_bytes = size / 2 + 8;
    tight.max_headers = (unsigned)(size % 5);
    run((const char *)data, size, &tight);
    tight.max_request_line = 8192;
    tight.max_head_bytes = size / 4 + 2;
    tight.max_headers = MAXH;
    run((const char *)data, size, &tight);
    return 0;
}

/*
 * test_http1.c: byte scripts through the HTTP/1.1 head parser and the
 * chunked decoder. Every input is copied into a heap buffer of exactly its
 * length, so that a sanitizer build catches any read past the end.
 */
#include "err.h"
#include "http1.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests"
#endif

#define MAXH 64
#define S(lit) (lit), (sizeof(lit) - 1)

static const struct http1_limits lim_std = {8192, 32768, MAXH};

static struct http1_header hdrs[MAXH];
static struct http1_request req;
static struct http1_response resp;
static char *owned;

/* an exact-size private copy of s[0..n) */
static const char *own(const char *s, size_t n)
{
    free(owned);
    owned = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(owned);
    memcpy(owned, s, n);
    return owned;
}

static int preq_lim(const char *s, size_t n, const struct http1_limits *lim,
                    int *st)
{
    const char *b = own(s, n);

    req.headers = hdrs;
    *st = -1;
    return http1_parse_request(b, n, lim, &req, st);
}

static int preq(const char *s, size_t n, int *st)
{
    return preq_lim(s, n, &lim_std, st);
}

static int presp_lim(const char *s, size_t n, const struct http1_limits *lim)
{
    const char *b = own(s, n);

    resp.headers = hdrs;
    return http1_parse_response(b, n, lim, &resp);
}

static bool span_eq(const char *p, size_t n, const char *want)
{
    return p != NULL && n == strlen(want) && memcmp(p, want, n) == 0;
}

#define ck_span(p, n, want)                                                    \
    ck_assert_msg(span_eq((p), (n), (want)), "%s is \"%.*s\", want \"%s\"",   \
                  #p, (int)(n), (p) ? (p) : "(null)", (want))

/* A valid request: whole it parses to its full length, and every proper
 * prefix asks for more. */
static void accept_req_lim(const char *s, size_t n,
                           const struct http1_limits *lim, int line)
{
    size_t k;
    int st, r;

    for (k = 0; k < n; k++) {
        r = preq_lim(s, k, lim, &st);
        ck_assert_msg(r == EDGE_EAGAIN,
                      "line %d: prefix %zu of %zu gave %d (status %d)", line,
                      k, n, r, st);
    }
    r = preq_lim(s, n, lim, &st);
    ck_assert_msg(r == (int)n, "line %d: parse gave %d (status %d), want %zu",
                  line, r, st, n);
    ck_assert_uint_eq(req.head_len, n);
}
#define ACCEPT(lit) accept_req_lim(S(lit), &lim_std, __LINE__)

/* A refused request: whole it gives `status`; no prefix gives anything
 * but EDGE_EAGAIN or that same status. */
static void refuse_req_lim(const char *s, size_t n,
                           const struct http1_limits *lim, int status,
                           int line)
{
    size_t k;
    int st, r;

    for (k = 0; k < n; k++) {
        r = preq_lim(s, k, lim, &st);
        ck_assert_msg(r == EDGE_EAGAIN || (r < 0 && st == status),
                      "line %d: prefix %zu gave %d (status %d), want %d", line,
                      k, r, st, status);
    }
    r = preq_lim(s, n, lim, &st);
    ck_assert_msg(r < 0 && r != EDGE_EAGAIN && st == status,
                  "line %d: parse gave %d (status %d), want status %d", line,
                  r, st, status);
}
#define REFUSE(lit, status) refuse_req_lim(S(lit), &lim_std, (status), __LINE__)

/* ------------------------------------------------------------ requests */

START_TEST(req_basic_get)
{
    static const char r[] = "GET /a/b?x=1&y HTTP/1.1\r\n"
                            "Host: example.com\r\n"
                            "User-Agent: t/1\r\n"
                            "\r\n";
    int st;

    ck_assert_int_eq(preq(S(r), &st), (int)strlen(r));
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(req.method, HTTP1_M_GET);
    ck_span(req.method_str, req.method_len, "GET");
    ck_span(req.target, req.target_len, "/a/b?x=1&y");
    ck_span(req.path, req.path_len, "/a/b");
    ck_span(req.query, req.query_len, "x=1&y");
    ck_assert_int_eq(req.version_minor, 1);
    ck_assert_uint_eq(req.nheaders, 2);
    ck_span(req.headers[0].name, req.headers[0].name_len, "Host");
    ck_span(req.headers[0].value, req.headers[0].value_len, "example.com");
    ck_span(req.headers[1].name, req.headers[1].name_len, "User-Agent");
    ck_span(req.headers[1].value, req.headers[1].value_len, "t/1");
    ck_span(req.host, req.host_len, "example.com");
    ck_assert(req.content_length == -1);
    ck_assert(!req.chunked);
    ck_assert(req.keep_alive);
    ck_assert(!req.expect_continue);
    ck_assert_uint_eq(req.head_len, strlen(r));
    /* pointers are into the caller's buffer */
    ck_assert_ptr_eq(req.method_str, owned);
    ck_assert_ptr_eq(req.target, owned + 4);
}
END_TEST

START_TEST(req_head_ows_and_empty_value)
{
    static const char r[] = "HEAD /x HTTP/1.1\r\n"
                            "Host: \t h:8080 \t \r\n"
                            "X-Empty:\r\n"
                            "X-Spaces:    \r\n"
                            "X-Inner: a  b\tc\r\n"
                            "X-Obs: caf\xc3\xa9\r\n"
                            "\r\n";
    int st;

    ck_assert_int_eq(preq(S(r), &st), (int)strlen(r));
    ck_assert_int_eq(req.method, HTTP1_M_HEAD);
    ck_assert_ptr_null(req.query);
    ck_span(req.path, req.path_len, "/x");
    ck_span(req.host, req.host_len, "h:8080");
    ck_assert_uint_eq(req.nheaders, 5);
    ck_assert_uint_eq(req.headers[1].value_len, 0);
    ck_assert_uint_eq(req.headers[2].value_len, 0);
    ck_span(req.headers[3].value, req.headers[3].value_len, "a  b\tc");
    ck_span(req.headers[4].value, req.headers[4].value_len, "caf\xc3\xa9");
}
END_TEST

START_TEST(req_methods)
{
    static const struct {
        const char *m;
        enum http1_method e;
    } cases[] = {
        {"GET", HTTP1_M_GET},         {"HEAD", HTTP1_M_HEAD},
        {"POST", HTTP1_M_POST},       {"PUT", HTTP1_M_PUT},
        {"DELETE", HTTP1_M_DELETE},   {"OPTIONS", HTTP1_M_OPTIONS},
        {"PATCH", HTTP1_M_PATCH},     {"CONNECT", HTTP1_M_CONNECT},
        {"TRACE", HTTP1_M_TRACE},     {"get", HTTP1_M_OTHER},
        {"PURGE", HTTP1_M_OTHER},     {"GETX", HTTP1_M_OTHER},
        {"GE", HTTP1_M_OTHER},        {"M-SEARCH", HTTP1_M_OTHER},
    };
    char buf[128];
    size_t i;
    int st, n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = snprintf(buf, sizeof(buf), "%s /p HTTP/1.1\r\nHost: h\r\n\r\n",
                     cases[i].m);
        ck_assert_int_eq(preq(buf, (size_t)n, &st), n);
        ck_assert_msg(req.method == cases[i].e, "method %s", cases[i].m);
        ck_span(req.method_str, req.method_len, cases[i].m);
    }
}
END_TEST

START_TEST(req_prefixes_eagain)
{
    ACCEPT("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ACCEPT("GET /a%20b?q=%2F HTTP/1.1\r\nHost: example.com:443\r\n"
           "Accept: */*\r\nRange: bytes=0-99\r\n\r\n");
    ACCEPT("\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    ACCEPT("POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    ACCEPT("PUT /up HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n"
           "Expect: 100-continue\r\n\r\n");
    ACCEPT("GET http://h.example/x?y HTTP/1.1\r\nHost: h.example\r\n\r\n");
    ACCEPT("OPTIONS * HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n");
}
END_TEST

START_TEST(req_leading_crlf)
{
    static const char r[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    int st;

    ck_assert_int_eq(preq(S(r), &st), (int)strlen(r));
    ck_assert_uint_eq(req.head_len, strlen(r));
    ck_span(req.method_str, req.method_len, "GET");
    REFUSE("\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("\r\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("\r\n \r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}
END_TEST

START_TEST(req_pipelined)
{
    static const char r[] = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
                            "PUT /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
                            "hello"
                            "HEAD /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                            "GET /fo";
    size_t total = strlen(r), off;
    const char *b;
    int st, n1, n2, n3;

    b = own(r, total);
    req.headers = hdrs;
    n1 = http1_parse_request(b, total, &lim_std, &req, &st);
    ck_assert_int_eq(n1, (int)strlen("GET /one HTTP/1.1\r\nHost: h\r\n\r\n"));
    ck_span(req.path, req.path_len, "/one");
    ck_assert(req.keep_alive);

    off = (size_t)n1;
    n2 = http1_parse_request(b + off, total - off, &lim_std, &req, &st);
    ck_assert_int_gt(n2, 0);
    ck_span(req.path, req.path_len, "/two");
    ck_assert(req.content_length == 5);
    ck_assert(memcmp(b + off + (size_t)n2, "hello", 5) == 0);

    off += (size_t)n2 + 5;
    n3 = http1_parse_request(b + off, total - off, &lim_std, &req, &st);
    ck_assert_int_gt(n3, 0);
    ck_assert_int_eq(req.method, HTTP1_M_HEAD);
    ck_span(req.path, req.path_len, "/three");
    ck_assert(!req.keep_alive);

    off += (size_t)n3;
    ck_assert_int_eq(http1_parse_request(b + off, total - off, &lim_std, &req,
                                         &st),
                     EDGE_EAGAIN);
    ck_assert_uint_eq(total - off, strlen("GET /fo"));
}
END_TEST

START_TEST(req_versions_keepalive)
{
    int st;

    ck_assert_int_gt(preq(S("GET / HTTP/1.0\r\n\r\n"), &st), 0);
    ck_assert_int_eq(req.version_minor, 0);
    ck_assert(!req.keep_alive);
    ck_assert_ptr_null(req.host);

    ck_assert_int_gt(preq(S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), &st), 0);
    ck_assert(req.keep_alive);
    ck_assert_int_gt(preq(S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), &st), 0);
    ck_assert(!req.keep_alive);
    ck_assert_int_gt(preq(S("GET / HTTP/1.0\r\nHost: h\r\nConnection: x\r\n"
                            "Connection: keep-alive\r\n\r\n"), &st), 0);
    ck_assert(req.keep_alive);
    ck_span(req.host, req.host_len, "h");

    ck_assert_int_gt(preq(S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_assert(req.keep_alive);
    ck_assert_int_gt(preq(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"), &st), 0);
    ck_assert(!req.keep_alive);
    ck_assert_int_gt(preq(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n"), &st), 0);
    ck_assert(!req.keep_alive);
    ck_assert_int_gt(preq(S("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n"), &st), 0);
    ck_assert(req.keep_alive);
}
END_TEST

START_TEST(req_expect)
{
    int st;

    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                            "Expect: 100-continue\r\n\r\n"), &st), 0);
    ck_assert(req.expect_continue);
    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n\r\n"), &st), 0);
    ck_assert(req.expect_continue);
    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), &st), 0);
    ck_assert(!req.expect_continue);
    /* RFC 9110 10.1.1: ignored on 1.0 */
    ck_assert_int_gt(preq(S("PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), &st), 0);
    ck_assert(!req.expect_continue);
}
END_TEST

START_TEST(req_content_length)
{
    int st;

    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), &st), 0);
    ck_assert(req.content_length == 0);
    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\ncontent-length:00012 \r\n\r\n"), &st), 0);
    ck_assert(req.content_length == 12);
    ck_assert_int_gt(preq(S("PUT / HTTP/1.1\r\nHost: h\r\n"
                            "Content-Length: 9223372036854775807\r\n\r\n"), &st), 0);
    ck_assert(req.content_length == INT64_MAX);

    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5.0\r\n\r\n", 400);
    /* a second field line, equal or not */
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", 400);
    /* whitespace before the colon hides the name from some parsers */
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n", 400);
    REFUSE("PUT / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n", 400);
}
END_TEST

START_TEST(req_transfer_encoding)
{
    int st;

    ck_assert_int_gt(preq(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), &st), 0);
    ck_assert(req.chunked);
    ck_assert(req.content_length == -1);
    ck_assert_int_gt(preq(S("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding:  CHUNKED \r\n\r\n"), &st), 0);
    ck_assert(req.chunked);
    /* a look-alike name is just another field */
    ck_assert_int_gt(preq(S("POST / HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n"), &st), 0);
    ck_assert(!req.chunked);

    /* smuggling: both framings */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n", 400);
    /* chunked not last, or twice: length unknown (RFC 9112 6.3) */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    /* empty values and elements */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n", 400);
    /* codings we do not implement */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunkedx\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 501);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 501);
    /* RFC 9112 6.1: never on 1.0 */
    REFUSE("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
    /* obs-fold continuing the value */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", 400);
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\t, chunked\r\n\r\n", 400);
    /* whitespace before the colon */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400);
    /* a control byte in the value */
    REFUSE("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0b" "chunked\r\n\r\n", 400);
}
END_TEST

START_TEST(req_line_endings)
{
    REFUSE("GET / HTTP/1.1\nHost: h\n\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\rHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\n\rX", 400);
    REFUSE("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 400);
    /* the byte after a bare CR is not an LF to skip */
    REFUSE("GET / HTTP/1.0\rX\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.0\r\nA: b\rX\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.0\r\n\rX", 400);
}
END_TEST

START_TEST(req_fields)
{
    /* obs-fold, and whitespace before the first field (RFC 9112 2.2) */
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\n\tX: a\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
    /* names: tokens, non-empty, colon straight after */
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX\"y: v\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX(y): v\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX Y: v\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX\x80: v\r\n\r\n", 400);
    /* values: no CTL but HTAB */
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f" "b\r\n\r\n", 400);
    refuse_req_lim("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35, &lim_std,
                   400, __LINE__);
    refuse_req_lim("GET / HTTP/1.1\r\nHost: h\0\r\n\r\n", 29, &lim_std, 400,
                   __LINE__);
}
END_TEST

START_TEST(req_request_line)
{
    REFUSE("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /  HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE(" GET / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / http/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/11.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.10\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /\r\n\r\n", 400);
    REFUSE("GET\r\n\r\n", 400);
    REFUSE("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* TLS handshake on the plain port: refused on the first byte */
    REFUSE("\x16\x03\x01\x02\x00\x01\x00\x01", 400);
    /* versions */
    REFUSE("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
    REFUSE("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505);
    REFUSE("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
    REFUSE("GET / HTTP/0.9\r\nHost: h\r\n\r\n", 505);
    REFUSE("GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505);
}
END_TEST

START_TEST(req_targets)
{
    int st;

    /* fragments and non-visible bytes */
    REFUSE("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /# HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* forms */
    REFUSE("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 400);
    REFUSE("GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET http:/h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET http://u@h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET http://u:p@h/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET http://h:99999/x HTTP/1.1\r\nHost: h\r\n\r\n", 400);
    /* absolute-form still needs Host on 1.1 */
    REFUSE("GET http://h/x HTTP/1.1\r\n\r\n", 400);

    ck_assert_int_gt(preq(S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_assert_int_eq(req.method, HTTP1_M_OPTIONS);
    ck_span(req.path, req.path_len, "*");
    ck_assert_ptr_null(req.query);

    /* RFC 9112 3.2.2: the authority of absolute-form is the host */
    ck_assert_int_gt(preq(S("GET http://Example.COM:8080/p/q?x=/y HTTP/1.1\r\n"
                            "Host: other\r\n\r\n"), &st), 0);
    ck_span(req.host, req.host_len, "Example.COM:8080");
    ck_span(req.path, req.path_len, "/p/q");
    ck_span(req.query, req.query_len, "x=/y");
    ck_span(req.target, req.target_len, "http://Example.COM:8080/p/q?x=/y");

    ck_assert_int_gt(preq(S("GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_span(req.host, req.host_len, "h");
    ck_span(req.path, req.path_len, "/");
    ck_assert_ptr_null(req.query);

    ck_assert_int_gt(preq(S("GET http://h?a HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_span(req.path, req.path_len, "/");
    ck_span(req.query, req.query_len, "a");

    ck_assert_int_gt(preq(S("GET http://[::1]:80/ HTTP/1.0\r\n\r\n"), &st), 0);
    ck_span(req.host, req.host_len, "[::1]:80");

    /* an empty query is there, empty */
    ck_assert_int_gt(preq(S("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_span(req.path, req.path_len, "/a");
    ck_assert_ptr_nonnull(req.query);
    ck_assert_uint_eq(req.query_len, 0);
    /* only the first '?' splits */
    ck_assert_int_gt(preq(S("GET /a?b?c HTTP/1.1\r\nHost: h\r\n\r\n"), &st), 0);
    ck_span(req.query, req.query_len, "b?c");
}
END_TEST

START_TEST(req_host)
{
    static const char *good[] = {
        "h", "example.com", "EXAMPLE.com.", "h:1", "h:65535", "h:080",
        "1.2.3.4", "1.2.3.4:8080", "[::1]", "[::1]:443",
        "[2001:db8::ffff:1.2.3.4]", "xn--bcher-kva.example", "a_b-c~d",
        "ex%41mple", "a!$&'()*+,;=b",
    };
    static const char *bad[] = {
        "", "a b", "a@b", "u@h:80", "a/b", "h:", "h:65536", "h:99999",
        "h:123456", "h:80:80", "h:8a", ":80", "[::1", "::1", "[zz]", "[]",
        "[v1.x]", "[fe80::1%25eth0]", "[1.2.3.4]", "ex%4", "ex%zzample",
        "a\"b", "a<b", "[::1]x", "[::1]:", "a[b]", "h\\x",
    };
    char buf[512];
    size_t i;
    int st, n;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n",
                     good[i]);
        ck_assert_msg(preq(buf, (size_t)n, &st) == n, "Host %s refused (%d)",
                      good[i], st);
        ck_span(req.host, req.host_len, good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n",
                     bad[i]);
        refuse_req_lim(buf, (size_t)n, &lim_std, 400, __LINE__);
        /* same rule on 1.0, where Host is optional */
        n = snprintf(buf, sizeof(buf), "GET / HTTP/1.0\r\nHost: %s\r\n\r\n",
                     bad[i]);
        refuse_req_lim(buf, (size_t)n, &lim_std, 400, __LINE__);
    }
    /* an overlong host */
    memset(buf, 'a', sizeof(buf));
    n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: ");
    memset(buf + n, 'a', 300);
    memcpy(buf + n + 300, "\r\n\r\n", 4);
    refuse_req_lim(buf, (size_t)n + 304, &lim_std, 400, __LINE__);

    /* missing on 1.1, repeated anywhere */
    REFUSE("GET / HTTP/1.1\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: h\r\nHost: h\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.0\r\nHost: a\r\nHOST: a\r\n\r\n", 400);
    REFUSE("GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400);
}
END_TEST

START_TEST(req_limit_request_line)
{
    /* its request line is 31 bytes */
    static const char r[] = "GET /aaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http1_limits lim = {31, 4096, 8};
    int st;

    ck_assert_uint_eq(strchr(r, '\r') - r, 31);
    accept_req_lim(S(r), &lim, __LINE__);
    lim.max_request_line = 30;
    refuse_req_lim(S(r), &lim, 414, __LINE__);
    /* decided before the line end arrives: 31 bytes > 30 */
    ck_assert_int_eq(preq_lim(r, 31, &lim, &st), EDGE_ETOOLONG);
    ck_assert_int_eq(st, 414);
    ck_assert_int_eq(preq_lim(r, 30, &lim, &st), EDGE_EAGAIN);
    /* garbage past the first 31 bytes: the length decides first */
    ck_assert_int_eq(preq_lim(S("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\x01"), &lim, &st),
                     EDGE_ETOOLONG);
    ck_assert_int_eq(st, 414);
    /* garbage inside the first 31 bytes is 400 whichever way the bytes
     * arrive (a prefix already shows it) */
    refuse_req_lim(S("GET /aa\x01" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), &lim, 400,
                   __LINE__);
    refuse_req_lim(S("GET http://h.e\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4"
                     "\xd4\xd4\xd4\xd4\xd4\xd4\xd4\xd4 HTTP/1.1\r\nHost: h\r\n\r\n"),
                   &lim, 400, __LINE__);
    /* leading empty lines do not count against the line */
    lim.max_request_line = 31;
    accept_req_lim(S("\r\n\r\nGET /aaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n"),
                   &lim, __LINE__);
}
END_TEST

START_TEST(req_limit_head_bytes)
{
    static const char r[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: 0123456789\r\n\r\n";
    struct http1_limits lim = {1024, sizeof(r) - 1, 8};
    int st;

    accept_req_lim(S(r), &lim, __LINE__);
    lim.max_head_bytes = sizeof(r) - 2;
    refuse_req_lim(S(r), &lim, 431, __LINE__);
    /* decided as soon as it is certain: with the limit's worth of bytes
     * in and the head not complete (the final LF would be one past it) */
    ck_assert_int_eq(preq_lim(r, lim.max_head_bytes - 1, &lim, &st), EDGE_EAGAIN);
    ck_assert_int_eq(preq_lim(r, lim.max_head_bytes, &lim, &st), EDGE_ETOOLONG);
    ck_assert_int_eq(st, 431);
    /* a stream of empty lines is a head too: 8 bytes of them leave no
     * room for a request line */
    lim.max_head_bytes = 8;
    ck_assert_int_eq(preq_lim(S("\r\n\r\n\r\n\r"), &lim, &st), EDGE_EAGAIN);
    ck_assert_int_eq(preq_lim(S("\r\n\r\n\r\n\r\n"), &lim, &st), EDGE_ETOOLONG);
    ck_assert_int_eq(st, 431);
    ck_assert_int_eq(preq_lim(S("\r\n\r\n\r\n\r\n\r\n"), &lim, &st), EDGE_ETOOLONG);
    ck_assert_int_eq(st, 431);
    /* a byte past the limit is never looked at, so the answer cannot
     * depend on where the reads were split */
    lim.max_head_bytes = 3;
    refuse_req_lim(S("\r\n\rET /"), &lim, 431, __LINE__);
    refuse_req_lim(S("\r\n\r\n"), &lim, 431, __LINE__);
    refuse_req_lim(S("\r\r"), &lim, 400, __LINE__);
    /* head limit smaller than the request line: 431 once it is reached,
     * whatever follows; garbage before it is still 400 */
    lim.max_head_bytes = 10;
    ck_assert_int_eq(preq_lim(S("GET / HTTP"), &lim, &st), EDGE_ETOOLONG);
    ck_assert_int_eq(st, 431);
    ck_assert_int_eq(preq_lim(S("GET / HTT"), &lim, &st), EDGE_EAGAIN);
    refuse_req_lim(S("GET / HTTP/2.0\r\n\r\n"), &lim, 431, __LINE__);
    refuse_req_lim(S("GET / HTTP/1.1\r\n"), &lim, 431, __LINE__);
    refuse_req_lim(S("GET /\x01 HTTP/1.1\r\n"), &lim, 400, __LINE__);
    /* the CRLF of the request line must fit too */
    lim.max_head_bytes = 15;
    refuse_req_lim(S("GET / HTTP/1.1\r\n\r\n"), &lim, 431, __LINE__);
    ck_assert_int_eq(preq_lim(S("GET / HTTP/1.1"), &lim, &st), EDGE_EAGAIN);
}
END_TEST

START_TEST(req_limit_headers)
{
    static const char r3[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    static const char r4[] = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    struct http1_limits lim = {1024, 4096, 3};
    int st;

    accept_req_lim(S(r3), &lim, __LINE__);
    ck_assert_uint_eq(req.nheaders, 3);
    refuse_req_lim(S(r4), &lim, 431, __LINE__);
    /* decided on the first byte of the fourth field */
    ck_assert_int_eq(preq_lim(r4, strlen(r3) - 2, &lim, &st), EDGE_EAGAIN);
    ck_assert_int_eq(preq_lim(r4, strlen(r3) - 1, &lim, &st), EDGE_ETOOMANY);
    ck_assert_int_eq(st, 431);
    /* no fields allowed at all */
    lim.max_headers = 0;
    accept_req_lim(S("GET / HTTP/1.0\r\n\r\n"), &lim, __LINE__);
    refuse_req_lim(S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &lim, 431, __LINE__);
}
END_TEST

START_TEST(find_and_tokens)
{
    int st;
    const struct http1_header *h;

    ck_assert_int_gt(preq(S("GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n"
                            "x-a: two\r\nCache-Control: no-cache\r\n\r\n"), &st), 0);
    h = http1_find(req.headers, req.nheaders, "x-A");
    ck_assert_ptr_nonnull(h);
    ck_span(h->value, h->value_len, "one");
    h = http1_find(req.headers, req.nheaders, "CACHE-CONTROL");
    ck_assert_ptr_nonnull(h);
    ck_span(h->value, h->value_len, "no-cache");
    ck_assert_ptr_null(http1_find(req.headers, req.nheaders, "X"));
    ck_assert_ptr_null(http1_find(req.headers, req.nheaders, "X-A-"));
    ck_assert_ptr_null(http1_find(req.headers, req.nheaders, "Hos"));
    ck_assert_ptr_null(http1_find(req.headers, 0, "Host"));

    ck_assert(http1_has_token(S("close"), "close"));
    ck_assert(http1_has_token(S("Close"), "close"));
    ck_assert(http1_has_token(S(" keep-alive , close "), "close"));
    ck_assert(http1_has_token(S(" keep-alive , close "), "keep-alive"));
    ck_assert(http1_has_token(S(",,close,,"), "close"));
    ck_assert(http1_has_token(S("a,\tclose\t"), "close"));
    ck_assert(!http1_has_token(S("closed"), "close"));
    ck_assert(!http1_has_token(S("xclose"), "close"));
    ck_assert(!http1_has_token(S("clo se"), "close"));
    ck_assert(!http1_has_token(S(""), "close"));
    ck_assert(!http1_has_token(S(", ,"), "close"));
    /* the length bounds the value, not a NUL */
    ck_assert(!http1_has_token("closex", 4, "close"));
    ck_assert(http1_has_token("close, x", 5, "close"));
}
END_TEST

/* ------------------------------------------------------------ responses */

static void accept_resp_lim(const char *s, size_t n,
                            const struct http1_limits *lim, int line)
{
    size_t k;
    int r;

    for (k = 0; k < n; k++) {
        r = presp_lim(s, k, lim);
        ck_assert_msg(r == EDGE_EAGAIN, "line %d: prefix %zu gave %d", line, k,
                      r);
    }
    r = presp_lim(s, n, lim);
    ck_assert_msg(r == (int)n, "line %d: parse gave %d, want %zu", line, r, n);
    ck_assert_uint_eq(resp.head_len, n);
}
#define ACCEPT_RESP(lit) accept_resp_lim(S(lit), &lim_std, __LINE__)

static void refuse_resp_lim(const char *s, size_t n,
                            const struct http1_limits *lim, int err, int line)
{
    size_t k;
    int r;

    for (k = 0; k < n; k++) {
        r = presp_lim(s, k, lim);
        ck_assert_msg(r == EDGE_EAGAIN || r == err,
                      "line %d: prefix %zu gave %d, want %d", line, k, r, err);
    }
    r = presp_lim(s, n, lim);
    ck_assert_msg(r == err, "line %d: parse gave %d, want %d", line, r, err);
}
#define REFUSE_RESP(lit, err) refuse_resp_lim(S(lit), &lim_std, (err), __LINE__)

START_TEST(resp_basic)
{
    ACCEPT_RESP("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nETag: \"abc\"\r\n"
                "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n");
    ck_assert_int_eq(resp.status, 200);
    ck_assert_int_eq(resp.version_minor, 1);
    ck_span(resp.reason, resp.reason_len, "OK");
    ck_assert_uint_eq(resp.nheaders, 3);
    ck_assert(resp.content_length == 12);
    ck_assert(!resp.chunked);
    ck_assert(resp.keep_alive);
    ck_span(resp.headers[1].value, resp.headers[1].value_len, "\"abc\"");

    ACCEPT_RESP("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\n"
                "Content-Length: 10\r\n\r\n");
    ck_assert_int_eq(resp.status, 206);
    ck_span(resp.reason, resp.reason_len, "Partial Content");

    /* reason phrase: lenient */
    ACCEPT_RESP("HTTP/1.1 204\r\n\r\n");
    ck_assert_int_eq(resp.status, 204);
    ck_assert_uint_eq(resp.reason_len, 0);
    ACCEPT_RESP("HTTP/1.1 404 \r\n\r\n");
    ck_assert_int_eq(resp.status, 404);
    ck_assert_uint_eq(resp.reason_len, 0);
    ACCEPT_RESP("HTTP/1.1 500 Intern\xc3\xa4l\tError \x01!\r\n\r\n");
    ck_span(resp.reason, resp.reason_len, "Intern\xc3\xa4l\tError \x01!");
    refuse_resp_lim("HTTP/1.1 200 O\0K\r\n\r\n", 19, &lim_std, EDGE_EINVAL,
                    __LINE__);

    /* 304 and 1xx: Content-Length reported as sent */
    ACCEPT_RESP("HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n");
    ck_assert(resp.content_length == 100);

    ACCEPT_RESP("HTTP/1.0 200 OK\r\n\r\n");
    ck_assert_int_eq(resp.version_minor, 0);
    ck_assert(!resp.keep_alive);
    ck_assert(resp.content_length == -1);
    ACCEPT_RESP("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n");
    ck_assert(resp.keep_alive);
    ACCEPT_RESP("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    ck_assert(!resp.keep_alive);
}
END_TEST

START_TEST(resp_interim_then_final)
{
    static const char r[] = "HTTP/1.1 100 Continue\r\n\r\n"
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\n\r\n";
    const char *b = own(r, strlen(r));
    int n1, n2;

    resp.headers = hdrs;
    n1 = http1_parse_response(b, strlen(r), &lim_std, &resp);
    ck_assert_int_eq(n1, 25);
    ck_assert_int_eq(resp.status, 100);
    n2 = http1_parse_response(b + n1, strlen(r) - (size_t)n1, &lim_std, &resp);
    ck_assert_int_gt(n2, 0);
    ck_assert_int_eq(resp.status, 200);
    ck_assert(resp.chunked);
    ck_assert(resp.content_length == -1);
    ck_assert_uint_eq(strlen(r) - (size_t)(n1 + n2), 5);
    ck_assert(memcmp(b + n1 + n2, "0\r\n\r\n", 5) == 0);
}
END_TEST

START_TEST(resp_refusals)
{
    REFUSE_RESP("HTTP/2.0 200 OK\r\n\r\n", EDGE_ENOTSUP);
    REFUSE_RESP("HTTP/1.2 200 OK\r\n\r\n", EDGE_ENOTSUP);
    REFUSE_RESP("http/1.1 200 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("ICY 200 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 20 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 2000 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 099 X\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 600 X\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 2x0 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1  200 OK\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\nContent-Length: 1\n\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\rX\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nA: b\rX\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
                EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                EDGE_EINVAL);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                EDGE_ENOTSUP);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                EDGE_ENOTSUP);
    REFUSE_RESP("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
                EDGE_ENOTSUP);
}
END_TEST

START_TEST(resp_limits)
{
    static const char r[] = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n";
    struct http1_limits lim = {15, sizeof(r) - 1, 2};

    accept_resp_lim(S(r), &lim, __LINE__);
    lim.max_request_line = 14;
    refuse_resp_lim(S(r), &lim, EDGE_ETOOLONG, __LINE__);
    lim.max_request_line = 15;
    lim.max_head_bytes = sizeof(r) - 2;
    refuse_resp_lim(S(r), &lim, EDGE_ETOOLONG, __LINE__);
    lim.max_head_bytes = sizeof(r) - 1;
    lim.max_headers = 1;
    refuse_resp_lim(S(r), &lim, EDGE_ETOOMANY, __LINE__);
}
END_TEST

/* ------------------------------------------------------------ chunked */

struct dec {
    char data[1 << 16];
    size_t len;
    size_t consumed; /* input bytes used in all, up to the end or the error */
    int ret;         /* 1, 0 (input ran out) or the error */
};

/* Feed s[0..n) in pieces of `step` bytes, each in an exact-size copy. */
static void decode(const char *s, size_t n, size_t step, struct dec *o)
{
    struct http1_chunked c;
    size_t pos = 0;

    http1_chunked_init(&c);
    o->len = 0;
    o->ret = 0;
    while (pos < n) {
        size_t piece = n - pos < step ? n - pos : step;
        char *b = malloc(piece);
        size_t off = 0;

        ck_assert_ptr_nonnull(b);
        memcpy(b, s + pos, piece);
        while (off < piece) {
            size_t used, doff, dlen;
            int r = http1_chunked_feed(&c, b + off, piece - off, &used, &doff,
                                       &dlen);

            ck_assert_uint_le(used, piece - off);
            if (dlen > 0) {
                ck_assert_uint_le(doff + dlen, used);
                ck_assert_uint_le(o->len + dlen, sizeof(o->data));
                memcpy(o->data + o->len, b + off + doff, dlen);
                o->len += dlen;
            }
            off += used;
            if (r != 0) {
                o->ret = r;
                o->consumed = pos + off;
                free(b);
                return;
            }
            /* 0 means "more input, please" only when all was used */
            ck_assert_msg(used > 0 || off == piece, "decoder stalled");
        }
        free(b);
        pos += piece;
    }
    o->consumed = pos;
}

/* Whole, byte by byte and at every two-piece split: the same answer. */
static void decode_all_ways(const char *s, size_t n, struct dec *want)
{
    static struct dec o;
    size_t step;

    decode(s, n, n ? n : 1, want);
    for (step = 1; step < n; step++) {
        decode(s, n, step, &o);
        ck_assert_int_eq(o.ret, want->ret);
        ck_assert_uint_eq(o.consumed, want->consumed);
        ck_assert_uint_eq(o.len, want->len);
        ck_assert(memcmp(o.data, want->data, o.len) == 0);
    }
}

#define DECODE(lit, o) decode_all_ways(S(lit), (o))

START_TEST(chunked_good)
{
    static struct dec o;

    DECODE("5\r\nhello\r\n6;ext=1;q=\"a b\"\r\n world\r\n0\r\n\r\nNEXT", &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.len, 11);
    ck_assert(memcmp(o.data, "hello world", 11) == 0);
    /* stops right after the final CRLF */
    ck_assert_uint_eq(o.consumed, strlen("5\r\nhello\r\n6;ext=1;q=\"a b\"\r\n world\r\n0\r\n\r\n"));

    DECODE("A\r\n0123456789\r\na\r\nabcdefghij\r\n0000\r\nX-Sum: 1\r\nY:\r\n\r\n", &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.len, 20);
    ck_assert(memcmp(o.data, "0123456789abcdefghij", 20) == 0);

    DECODE("0005 ; a=b\r\nhe\r\nl\r\n0;last\r\n\r\n", &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.len, 5);
    ck_assert(memcmp(o.data, "he\r\nl", 5) == 0);

    DECODE("0\r\n\r\n", &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.len, 0);
    ck_assert_uint_eq(o.consumed, 5);

    /* not finished yet */
    DECODE("5\r\nhel", &o);
    ck_assert_int_eq(o.ret, 0);
    ck_assert_uint_eq(o.len, 3);
    DECODE("0\r\nX: y\r\n", &o);
    ck_assert_int_eq(o.ret, 0);
}
END_TEST

START_TEST(chunked_after_done_and_sticky)
{
    struct http1_chunked c;
    size_t used, doff, dlen;

    http1_chunked_init(&c);
    ck_assert_int_eq(http1_chunked_feed(&c, S("0\r\n\r\nGET"), &used, &doff, &dlen), 1);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(http1_chunked_feed(&c, S("GET"), &used, &doff, &dlen), 1);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(dlen, 0);

    http1_chunked_init(&c);
    ck_assert_int_eq(http1_chunked_feed(&c, S("5\r\nhelloX"), &used, &doff, &dlen), 0);
    ck_assert_uint_eq(dlen, 5);
    ck_assert_uint_eq(doff, 3);
    ck_assert_uint_eq(used, 8);
    ck_assert_int_eq(http1_chunked_feed(&c, S("X"), &used, &doff, &dlen), EDGE_EINVAL);
    ck_assert_int_eq(http1_chunked_feed(&c, S("\r\n0\r\n\r\n"), &used, &doff, &dlen),
                     EDGE_EINVAL);
    ck_assert_int_eq(http1_chunked_feed(&c, "", 0, &used, &doff, &dlen), EDGE_EINVAL);

    /* a large chunk, fed in parts: the size is not capped by the input */
    http1_chunked_init(&c);
    ck_assert_int_eq(http1_chunked_feed(&c, S("4000000000000000\r\n"), &used, &doff, &dlen), 0);
    ck_assert_uint_eq(used, 18);
    ck_assert_int_eq(http1_chunked_feed(&c, S("abc"), &used, &doff, &dlen), 0);
    ck_assert_uint_eq(dlen, 3);
    ck_assert(c.remaining == ((uint64_t)1 << 62) - 3);
}
END_TEST

START_TEST(chunked_bad)
{
    static struct dec o;
    static const struct {
        const char *s;
        int err;
    } cases[] = {
        {"\r\n", EDGE_EINVAL},                 /* empty size */
        {";x\r\n", EDGE_EINVAL},
        {"x\r\n", EDGE_EINVAL},
        {"-5\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"+5\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"0x5\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {" 5\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"5 \r\nhello\r\n0\r\n\r\n", EDGE_EINVAL}, /* BWS only before ';' */
        {"5 x\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"5\nhello\r\n0\r\n\r\n", EDGE_EINVAL},   /* bare LF */
        {"5\rhello\r\n0\r\n\r\n", EDGE_EINVAL},   /* bare CR */
        {"5;a\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"5;a\x01\r\nhello\r\n0\r\n\r\n", EDGE_EINVAL},
        {"5\r\nhelloX\r\n0\r\n\r\n", EDGE_EINVAL}, /* no CRLF after data */
        {"5\r\nhello\n0\r\n\r\n", EDGE_EINVAL},
        {"5\r\nhello\r0\r\n\r\n", EDGE_EINVAL},
        {"5\r\nhell\r\n0\r\n\r\n", EDGE_EINVAL}, /* short chunk */
        {"0\r\nX\r\n\r\n", EDGE_EINVAL},         /* trailer without colon */
        {"0\r\n: v\r\n\r\n", EDGE_EINVAL},
        {"0\r\nX : v\r\n\r\n", EDGE_EINVAL},
        {"0\r\nX: a\r\n b\r\n\r\n", EDGE_EINVAL}, /* obs-fold */
        {"0\r\nX: a\x7f\r\n\r\n", EDGE_EINVAL},
        {"0\r\nX: a\n\r\n", EDGE_EINVAL},
        {"0\r\n\n", EDGE_EINVAL},
        {"0\r\n\rX", EDGE_EINVAL},
        {"4000000000000001\r\n", EDGE_ETOOLONG}, /* over 2^62 */
        {"FFFFFFFFFFFFFFFFFFFF\r\n", EDGE_ETOOLONG},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        decode_all_ways(cases[i].s, strlen(cases[i].s), &o);
        ck_assert_msg(o.ret == cases[i].err, "case %zu gave %d", i, o.ret);
    }
    /* NUL in the size line */
    decode_all_ways("5\0\r\nhello\r\n0\r\n\r\n", 16, &o);
    ck_assert_int_eq(o.ret, EDGE_EINVAL);
}
END_TEST

/* "0\r\n" and a trailer section of exactly `total` bytes (>= 6), made of
 * lines no longer than 4000 bytes */
static size_t trailers(char *buf, size_t total)
{
    size_t n = 3, rem = total - 2;

    memcpy(buf, "0\r\n", 3);
    while (rem > 0) {
        size_t line = rem < 4000 ? rem : 4000;

        if (rem - line > 0 && rem - line < 4)
            line -= 4;
        memcpy(buf + n, "X:", 2);
        memset(buf + n + 2, 'v', line - 4);
        memcpy(buf + n + line - 2, "\r\n", 2);
        n += line;
        rem -= line;
    }
    memcpy(buf + n, "\r\n", 2);
    return n + 2;
}

START_TEST(chunked_line_limits)
{
    static char buf[3 * HTTP1_CHUNK_TRAILERS_MAX];
    static struct dec o;
    size_t n;

    /* size line with extension: exactly the limit, then one over */
    n = 0;
    memcpy(buf, "1;", 2);
    memset(buf + 2, 'a', HTTP1_CHUNK_LINE_MAX - 2);
    n = HTTP1_CHUNK_LINE_MAX;
    memcpy(buf + n, "\r\nZ\r\n0\r\n\r\n", 10);
    decode(buf, n + 10, n + 10, &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.len, 1);
    ck_assert_int_eq(o.data[0], 'Z');
    memset(buf + 2, 'a', HTTP1_CHUNK_LINE_MAX - 1);
    n = HTTP1_CHUNK_LINE_MAX + 1;
    memcpy(buf + n, "\r\nZ\r\n0\r\n\r\n", 10);
    decode(buf, n + 10, n + 10, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);
    decode(buf, n + 10, 7, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);

    /* leading zeros count too: not an endless size line */
    memset(buf, '0', HTTP1_CHUNK_LINE_MAX + 1);
    decode(buf, HTTP1_CHUNK_LINE_MAX + 1, 100, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);

    /* one trailer line: exactly the limit, then one over */
    memcpy(buf, "0\r\nX:", 5);
    memset(buf + 5, 'v', HTTP1_CHUNK_LINE_MAX - 2);
    n = 5 + HTTP1_CHUNK_LINE_MAX - 2;
    memcpy(buf + n, "\r\n\r\n", 4);
    decode(buf, n + 4, n + 4, &o);
    ck_assert_int_eq(o.ret, 1);
    memset(buf + 5, 'v', HTTP1_CHUNK_LINE_MAX - 1);
    n = 5 + HTTP1_CHUNK_LINE_MAX - 1;
    memcpy(buf + n, "\r\n\r\n", 4);
    decode(buf, n + 4, n + 4, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);

    /* the trailer section in all: exactly the limit, then one over */
    n = trailers(buf, HTTP1_CHUNK_TRAILERS_MAX);
    decode(buf, n, 1000, &o);
    ck_assert_int_eq(o.ret, 1);
    ck_assert_uint_eq(o.consumed, n);
    n = trailers(buf, HTTP1_CHUNK_TRAILERS_MAX + 1);
    decode(buf, n, 1000, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);
    n = trailers(buf, 3 * HTTP1_CHUNK_TRAILERS_MAX - 100);
    decode(buf, n, n, &o);
    ck_assert_int_eq(o.ret, EDGE_ETOOLONG);
}
END_TEST

/* ------------------------------------------------------------ no malloc */

/*
 * The parsers must not allocate. Outside sanitizer builds this binary
 * interposes the allocator and counts calls around each parser call;
 * sanitizer builds own malloc and skip that part.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif

#ifndef NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long nalloc;

void *malloc(size_t n)
{
    nalloc++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    nalloc++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    nalloc++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

START_TEST(no_allocation)
{
#ifndef NO_INTERPOSE
    static const char r[] = "GET http://h/x?y HTTP/1.1\r\nHost: [::1]:80\r\n"
                            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    static const char rs[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    static const char ck[] = "3;x\r\nabc\r\n0\r\nT: v\r\n\r\n";
    struct http1_chunked c;
    size_t used, doff, dlen, off = 0;
    unsigned long before, after;
    static void *volatile probe;
    int st, r1, r2, r3 = 0;

    /* the counter sees this binary's allocations */
    before = nalloc;
    probe = malloc(16);
    free(probe);
    after = nalloc;
    ck_assert_uint_eq(after, before + 1);

    req.headers = hdrs;
    resp.headers = hdrs;
    before = nalloc;
    r1 = http1_parse_request(r, strlen(r), &lim_std, &req, &st);
    r2 = http1_parse_response(rs, strlen(rs), &lim_std, &resp);
    http1_chunked_init(&c);
    while (off < strlen(ck) && r3 == 0) {
        r3 = http1_chunked_feed(&c, ck + off, strlen(ck) - off, &used, &doff, &dlen);
        off += used;
    }
    (void)http1_has_token(S("a, close"), "close");
    (void)http1_find(hdrs, 1, "host");
    after = nalloc;
    ck_assert_uint_eq(after, before);
    ck_assert_int_eq(r1, (int)strlen(r));
    ck_assert_int_eq(r2, (int)strlen(rs));
    ck_assert_int_eq(r3, 1);
#endif
}
END_TEST

/* And by design: the source names no allocator at all. */
START_TEST(no_allocator_in_source)
{
    static const char *const words[] = {"malloc", "calloc", "realloc",
                                        "strdup", "strndup", "free("};
    char path[1024], text[1 << 17];
    size_t n, i;
    FILE *f;

    snprintf(path, sizeof(path), "%s/../common/http1.c", TEST_SRCDIR);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(text, 1, sizeof(text) - 1, f);
    ck_assert(feof(f));
    fclose(f);
    text[n] = '\0';
    ck_assert_uint_gt(n, 1000);
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        ck_assert_msg(strstr(text, words[i]) == NULL, "%s in http1.c", words[i]);
}
END_TEST

static Suite *http1_suite(void)
{
    Suite *s = suite_create("http1");
    TCase *tc = tcase_create("request");

    tcase_add_test(tc, req_basic_get);
    tcase_add_test(tc, req_head_ows_and_empty_value);
    tcase_add_test(tc, req_methods);
    tcase_add_test(tc, req_prefixes_eagain);
    tcase_add_test(tc, req_leading_crlf);
    tcase_add_test(tc, req_pipelined);
    tcase_add_test(tc, req_versions_keepalive);
    tcase_add_test(tc, req_expect);
    tcase_add_test(tc, req_content_length);
    tcase_add_test(tc, req_transfer_encoding);
    tcase_add_test(tc, req_line_endings);
    tcase_add_test(tc, req_fields);
    tcase_add_test(tc, req_request_line);
    tcase_add_test(tc, req_targets);
    tcase_add_test(tc, req_host);
    tcase_add_test(tc, req_limit_request_line);
    tcase_add_test(tc, req_limit_head_bytes);
    tcase_add_test(tc, req_limit_headers);
    tcase_add_test(tc, find_and_tokens);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_test(tc, resp_basic);
    tcase_add_test(tc, resp_interim_then_final);
    tcase_add_test(tc, resp_refusals);
    tcase_add_test(tc, resp_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("chunked");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, chunked_good);
    tcase_add_test(tc, chunked_after_done_and_sticky);
    tcase_add_test(tc, chunked_bad);
    tcase_add_test(tc, chunked_line_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_test(tc, no_allocation);
    tcase_add_test(tc, no_allocator_in_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(http1_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

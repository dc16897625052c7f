/*
 * http1.c: strict HTTP/1.1 head parser and chunked body decoder
 * (RFC 9112, RFC 9110).
 *
 * Lifecycle: the head parsers keep no state. The connection calls them
 * again from the first byte each time more bytes arrive; heads are bounded
 * by struct http1_limits and every scan stops at those bounds, so a slow
 * client costs at most max_head_bytes of rescanning per read. The chunked
 * decoder is the one stateful part: http1_chunked_init() once per body,
 * then http1_chunked_feed() until it returns 1 or an error. An error is
 * sticky: feeding again returns it again.
 *
 * Nothing here allocates, and nothing reads at or past buf[len].
 */
#include "http1.h"

#include "err.h"
#include "vas.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>

/* RFC 1035 name length plus room for ":65535"; longer is not a host. */
#define HOST_MAX 262

/* ------------------------------------------------------------ chars */

/* RFC 9110 5.6.2: tchar */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/* RFC 9110 5.5: field-vchar / SP / HTAB; obs-text is accepted, CTLs
 * (NUL, bare CR and LF among them) and DEL are not. */
static bool is_field_char(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* a[0..alen) equals NUL-terminated b, ASCII case-insensitively */
static bool eq_ci(const char *a, size_t alen, const char *b)
{
    size_t i;

    for (i = 0; i < alen; i++) {
        if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    }
    return b[alen] == '\0';
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* ------------------------------------------------------------ host */

/* RFC 3986 3.2.2 reg-name characters other than pct-encoded */
static bool is_regname_char(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
        (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '-': case '.': case '_': case '~':                     /* unreserved */
    case '!': case '$': case '&': case '\'': case '(': case ')': /* sub-delims */
    case '*': case '+': case ',': case ';': case '=':
        return true;
    default:
        return false;
    }
}

/*
 * RFC 9110 7.2: Host = uri-host [ ":" port ], uri-host being an
 * IP-literal, an IPv4 address or a reg-name (RFC 3986 3.2.2). An empty
 * host is refused: an "http" URI must have one (RFC 9110 4.2.1), and
 * there would be nothing to route on. An empty port ("host:") is refused
 * too; no client sends one.
 */
static bool valid_host(const char *h, size_t n)
{
    size_t i = 0;
    unsigned port;

    if (n == 0 || n > HOST_MAX)
        return false;
    if (h[0] == '[') {
        char tmp[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        size_t j = 1;

        /* IPv6 only; IPvFuture and zone ids are refused. Check the
         * bytes first so that inet_pton never sees a NUL or junk. */
        while (j < n && (hex_val((unsigned char)h[j]) >= 0 || h[j] == ':' ||
                         h[j] == '.'))
            j++;
        if (j == n || h[j] != ']' || j - 1 == 0 || j - 1 >= sizeof(tmp))
            return false;
        memcpy(tmp, h + 1, j - 1);
        tmp[j - 1] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return false;
        i = j + 1;
    } else {
        while (i < n) {
            unsigned char c = (unsigned char)h[i];

            if (c == '%') {
                if (i + 2 >= n || hex_val((unsigned char)h[i + 1]) < 0 ||
                    hex_val((unsigned char)h[i + 2]) < 0)
                    return false;
                i += 3;
            } else if (is_regname_char(c)) {
                i++;
            } else {
                break;
            }
        }
        if (i == 0)
            return false;
    }
    if (i == n)
        return true;
    if (h[i] != ':' || i + 1 == n || n - (i + 1) > 5)
        return false;
    port = 0;
    for (i++; i < n; i++) {
        if (!is_digit((unsigned char)h[i]))
            return false;
        port = port * 10 + (unsigned)(h[i] - '0');
    }
    return port <= 65535;
}

/* ------------------------------------------------------------ lists */

bool http1_has_token(const char *value, size_t len, const char *token)
{
    size_t i = 0;

    AN(token);
    if (value == NULL)
        return false;
    while (i < len) {
        size_t s, e;

        while (i < len && (is_ows((unsigned char)value[i]) || value[i] == ','))
            i++;
        s = i;
        while (i < len && value[i] != ',')
            i++;
        e = i;
        while (e > s && is_ows((unsigned char)value[e - 1]))
            e--;
        if (e > s && eq_ci(value + s, e - s, token))
            return true;
    }
    return false;
}

const struct http1_header *http1_find(const struct http1_header *h, unsigned n,
                                      const char *name)
{
    unsigned i;

    AN(name);
    for (i = 0; i < n; i++) {
        if (eq_ci(h[i].name, h[i].name_len, name))
            return &h[i];
    }
    return NULL;
}

/*
 * RFC 9110 8.6: Content-Length = 1*DIGIT. Nothing else is accepted: no
 * sign, no inner whitespace, no list ("5, 5"), no value past INT64_MAX.
 */
static bool parse_content_length(const char *v, size_t n, int64_t *out)
{
    uint64_t x = 0;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        unsigned d;

        if (!is_digit((unsigned char)v[i]))
            return false;
        d = (unsigned)(v[i] - '0');
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            return false;
        x = x * 10 + d;
    }
    *out = (int64_t)x;
    return true;
}

/* What the Transfer-Encoding field lines of one message say, combined as
 * one list (RFC 9110 5.3). */
struct te_state {
    bool seen;
    bool empty_elem;   /* empty value or empty list element */
    bool unknown;      /* a coding other than chunked */
    bool last_chunked; /* the last coding so far is chunked */
    unsigned nchunked;
};

static void te_add(struct te_state *te, const char *v, size_t n)
{
    size_t i = 0;

    te->seen = true;
    if (n == 0) {
        te->empty_elem = true;
        return;
    }
    for (;;) {
        size_t s, e;

        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (s < e && is_ows((unsigned char)v[s]))
            s++;
        while (e > s && is_ows((unsigned char)v[e - 1]))
            e--;
        /* Strict on purpose: an empty element is legal list syntax
         * (RFC 9110 5.6.1) but only ever seen in smuggling probes. */
        if (e == s) {
            te->empty_elem = true;
        } else if (eq_ci(v + s, e - s, "chunked")) {
            te->nchunked++;
            te->last_chunked = true;
        } else {
            /* any other coding, and "chunked" with parameters */
            te->unknown = true;
            te->last_chunked = false;
        }
        if (i == n)
            break;
        i++; /* past ',' */
    }
}

/* ------------------------------------------------------------ fields */

/*
 * Parse field lines from buf[pos..) up to and including the empty line
 * that ends the head. Nothing at or past max_head is looked at: if the
 * head is not complete by then it is too large, whether or not more bytes
 * have arrived. Returns 0 with *head_len
 * set, EDGE_EAGAIN, EDGE_EINVAL (malformed), EDGE_ETOOLONG (head over
 * max_head) or EDGE_ETOOMANY (more than max_headers fields).
 */
static int parse_fields(const char *buf, size_t len, size_t max_head,
                        unsigned max_headers, size_t pos,
                        struct http1_header *h, unsigned *nh, size_t *head_len)
{
    size_t end = len < max_head ? len : max_head;
    unsigned n = 0;

    *nh = 0;
    for (;;) {
        size_t name, name_len, vs, ve;

        if (pos >= end)
            goto out;
        if (buf[pos] == '\r') {
            if (pos + 1 >= end)
                goto out;
            if (buf[pos + 1] != '\n')
                return EDGE_EINVAL;
            *head_len = pos + 2;
            *nh = n;
            return 0;
        }
        /* RFC 9112 5.2: obs-fold is refused, and 2.2: so is whitespace
         * between the start-line and the first field. A bare LF and any
         * non-token byte fall here too. */
        if (!is_tchar((unsigned char)buf[pos]))
            return EDGE_EINVAL;
        if (n >= max_headers)
            return EDGE_ETOOMANY;
        name = pos;
        while (pos < end && is_tchar((unsigned char)buf[pos]))
            pos++;
        if (pos >= end)
            goto out;
        /* RFC 9112 5.1: no whitespace between field name and colon */
        if (buf[pos] != ':')
            return EDGE_EINVAL;
        name_len = pos - name;
        pos++;
        while (pos < end && is_ows((unsigned char)buf[pos]))
            pos++;
        vs = pos;
        while (pos < end && is_field_char((unsigned char)buf[pos]))
            pos++;
        if (pos >= end)
            goto out;
        /* CRLF only (RFC 9112 2.2: a bare CR is refused, and we refuse
         * a bare LF as well: the framing must be unambiguous) */
        if (buf[pos] != '\r')
            return EDGE_EINVAL;
        if (pos + 1 >= end)
            goto out;
        if (buf[pos + 1] != '\n')
            return EDGE_EINVAL;
        ve = pos;
        while (ve > vs && is_ows((unsigned char)buf[ve - 1]))
            ve--;
        h[n].name = buf + name;
        h[n].name_len = name_len;
        h[n].value = buf + vs;
        h[n].value_len = ve - vs;
        n++;
        pos += 2;
    }
out:
    /* out of bytes: at max_head that means the head cannot fit */
    *nh = n;
    return end == max_head ? EDGE_ETOOLONG : EDGE_EAGAIN;
}

/* The framing and connection facts both message kinds derive. */
struct derived {
    unsigned nhost;
    const char *host;
    size_t host_len;
    bool host_ok;
    unsigned ncl;
    bool cl_ok;
    int64_t cl;
    struct te_state te;
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
};

static void derive(const struct http1_header *h, unsigned n, struct derived *d)
{
    unsigned i;

    memset(d, 0, sizeof(*d));
    d->host_ok = true;
    d->cl_ok = true;
    d->cl = -1;
    for (i = 0; i < n; i++) {
        const char *v = h[i].value;
        size_t vl = h[i].value_len;

        switch (h[i].name_len) {
        case 4:
            if (eq_ci(h[i].name, 4, "host")) {
                d->nhost++;
                d->host = v;
                d->host_len = vl;
                if (!valid_host(v, vl))
                    d->host_ok = false;
            }
            break;
        case 6:
            if (eq_ci(h[i].name, 6, "expect")) {
                /* RFC 9110 10.1.1: the expectation is case-insensitive */
                if (eq_ci(v, vl, "100-continue"))
                    d->expect_continue = true;
            }
            break;
        case 10:
            if (eq_ci(h[i].name, 10, "connection")) {
                if (http1_has_token(v, vl, "close"))
                    d->conn_close = true;
                if (http1_has_token(v, vl, "keep-alive"))
                    d->conn_keep_alive = true;
            }
            break;
        case 14:
            if (eq_ci(h[i].name, 14, "content-length")) {
                d->ncl++;
                if (!parse_content_length(v, vl, &d->cl))
                    d->cl_ok = false;
            }
            break;
        case 17:
            if (eq_ci(h[i].name, 17, "transfer-encoding"))
                te_add(&d->te, v, vl);
            break;
        default:
            break;
        }
    }
}

/* RFC 9112 9.3: persistence by version and Connection options */
static bool keep_alive(int minor, const struct derived *d)
{
    if (d->conn_close)
        return false;
    return minor >= 1 || d->conn_keep_alive;
}

/*
 * Where the start line ends. The scan never goes past max_line + 1 bytes
 * of line nor past max_head bytes of head, so that every answer depends on
 * those bytes only, however they were split into reads: a prefix that is
 * refused is refused for the same reason once more bytes arrive.
 */
enum line_scan {
    LINE_FOUND,     /* CR or LF at *end */
    LINE_PARTIAL,   /* no line end in buf[ls..len) yet */
    LINE_OVER_LINE, /* max_line + 1 bytes and no line end: too long */
    LINE_OVER_HEAD, /* no line end before max_head: the head cannot fit */
};

static enum line_scan scan_start_line(const char *buf, size_t len, size_t ls,
                                      size_t max_line, size_t max_head,
                                      size_t *end)
{
    enum line_scan cut = LINE_PARTIAL;
    size_t w = len, e;

    if (max_head <= w) {
        w = max_head;
        cut = LINE_OVER_HEAD;
    }
    AN(w >= ls);
    if (w - ls > max_line) {
        w = ls + max_line + 1;
        cut = LINE_OVER_LINE;
    }
    for (e = ls; e < w; e++) {
        if (buf[e] == '\r' || buf[e] == '\n') {
            *end = e;
            return LINE_FOUND;
        }
    }
    *end = w;
    return cut;
}

/* The head length is returned as an int: never let it grow past that. */
static size_t head_limit(const struct http1_limits *lim)
{
    return lim->max_head_bytes < INT_MAX ? lim->max_head_bytes : INT_MAX;
}

/* ------------------------------------------------------------ request */

static int set_status(int *status, int code, int err)
{
    *status = code;
    return err;
}

/* RFC 9110 9.1: method names are case-sensitive */
static enum http1_method method_of(const char *m, size_t n)
{
    static const struct {
        const char *s;
        enum http1_method m;
    } methods[] = {
        {"GET", HTTP1_M_GET},         {"HEAD", HTTP1_M_HEAD},
        {"POST", HTTP1_M_POST},       {"PUT", HTTP1_M_PUT},
        {"DELETE", HTTP1_M_DELETE},   {"OPTIONS", HTTP1_M_OPTIONS},
        {"PATCH", HTTP1_M_PATCH},     {"CONNECT", HTTP1_M_CONNECT},
        {"TRACE", HTTP1_M_TRACE},
    };
    size_t i;

    for (i = 0; i < ARRAY_LEN(methods); i++) {
        if (strlen(methods[i].s) == n && memcmp(methods[i].s, m, n) == 0)
            return methods[i].m;
    }
    return HTTP1_M_OTHER;
}

/*
 * RFC 9112 3.2: the request-target forms. Sets path, query and, for
 * absolute-form, host. Returns 0 or 400.
 */
static int parse_target(struct http1_request *req)
{
    const char *tg = req->target;
    size_t tl = req->target_len, s, ae;
    const char *q;

    if (tg[0] == '/') {
        /* origin-form */
        q = memchr(tg, '?', tl);
        req->path = tg;
        req->path_len = q ? (size_t)(q - tg) : tl;
    } else if (tl == 1 && tg[0] == '*') {
        /* asterisk-form, OPTIONS only (RFC 9112 3.2.4) */
        if (req->method != HTTP1_M_OPTIONS)
            return 400;
        req->path = tg;
        req->path_len = 1;
        q = NULL;
    } else {
        /* absolute-form (RFC 9112 3.2.2); authority-form (CONNECT) and
         * anything else is not something an edge serves */
        if (tl >= 7 && eq_ci(tg, 7, "http://"))
            s = 7;
        else if (tl >= 8 && eq_ci(tg, 8, "https://"))
            s = 8;
        else
            return 400;
        ae = s;
        while (ae < tl && tg[ae] != '/' && tg[ae] != '?')
            ae++;
        /* no userinfo (RFC 9110 4.2.4), a real host */
        if (!valid_host(tg + s, ae - s))
            return 400;
        req->host = tg + s;
        req->host_len = ae - s;
        q = memchr(tg + ae, '?', tl - ae);
        if (ae < tl && tg[ae] == '/') {
            req->path = tg + ae;
            req->path_len = q ? (size_t)(q - (tg + ae)) : tl - ae;
        } else {
            /* RFC 9112 3.2.1: an empty path is "/" */
            req->path = "/";
            req->path_len = 1;
        }
    }
    if (q != NULL) {
        req->query = q + 1;
        req->query_len = tl - (size_t)(q + 1 - tg);
    }
    return 0;
}

/*
 * Check a request-line, whole (complete) or the part received so far.
 * Returns 0, or the status to answer. Fills req only when complete.
 * RFC 9112 3: request-line = method SP request-target SP HTTP-version,
 * single spaces, nothing else.
 */
static int parse_request_line(const char *b, size_t n, bool complete,
                              struct http1_request *req)
{
    static const char http[] = "HTTP/";
    size_t i = 0, t, tl, v, k;
    int major, minor;

    while (i < n && is_tchar((unsigned char)b[i]))
        i++;
    if (i == n)
        return complete ? 400 : 0;
    if (i == 0 || b[i] != ' ')
        return 400;
    req->method_str = b;
    req->method_len = i;
    i++;
    t = i;
    /* request-target bytes: visible ASCII (RFC 3986), no fragment
     * (RFC 9112 3.2: the target never carries one) */
    while (i < n && b[i] >= 0x21 && b[i] <= 0x7e && b[i] != '#')
        i++;
    if (i == n)
        return complete ? 400 : 0;
    if (b[i] != ' ' || i == t)
        return 400;
    tl = i - t;
    i++;
    v = n - i;
    for (k = 0; k < v && k < 8; k++) {
        unsigned char c = (unsigned char)b[i + k];
        bool ok;

        if (k < 5)
            ok = c == (unsigned char)http[k];
        else if (k == 6)
            ok = c == '.';
        else
            ok = is_digit(c);
        if (!ok)
            return 400;
    }
    if (v > 8)
        return 400;
    if (!complete)
        return 0;
    if (v < 8)
        return 400;
    major = b[i + 5] - '0';
    minor = b[i + 7] - '0';
    /* RFC 9110 15.6.6: a well-formed version we do not speak */
    if (major != 1 || minor > 1)
        return 505;

    req->version_minor = minor;
    req->target = b + t;
    req->target_len = tl;
    req->method = method_of(b, req->method_len);
    return parse_target(req);
}

int http1_parse_request(const char *buf, size_t len,
                        const struct http1_limits *lim,
                        struct http1_request *req, int *status)
{
    struct http1_header *hdrs;
    struct derived d;
    size_t pos = 0, e, head_len = 0, max_head;
    enum line_scan sc;
    int st, r;

    AN(lim);
    AN(req);
    AN(status);
    AN(buf != NULL || len == 0);

    max_head = head_limit(lim);
    hdrs = req->headers;
    memset(req, 0, sizeof(*req));
    req->headers = hdrs;
    req->content_length = -1;
    *status = 0;

    /* RFC 9112 2.2: empty lines before the request-line are ignored;
     * they still count against the head size. */
    while (pos < len && pos < max_head && buf[pos] == '\r') {
        /* the LF would be past the head limit: do not even look */
        if (pos + 2 > max_head)
            return set_status(status, 431, EDGE_ETOOLONG);
        if (pos + 1 >= len)
            return EDGE_EAGAIN;
        if (buf[pos + 1] != '\n')
            return set_status(status, 400, EDGE_EINVAL);
        pos += 2;
    }

    /* The request-line. Garbage in what was scanned is 400 before the
     * line or the head is too long. */
    sc = scan_start_line(buf, len, pos, lim->max_request_line, max_head, &e);
    if (sc != LINE_FOUND) {
        st = parse_request_line(buf + pos, e - pos, false, req);
        if (st != 0)
            return set_status(status, st, EDGE_EINVAL);
        if (sc == LINE_OVER_LINE)
            return set_status(status, 414, EDGE_ETOOLONG);
        if (sc == LINE_OVER_HEAD)
            return set_status(status, 431, EDGE_ETOOLONG);
        return EDGE_EAGAIN;
    }
    st = parse_request_line(buf + pos, e - pos, true, req);
    if (st != 0)
        return set_status(status, st, st == 505 ? EDGE_ENOTSUP : EDGE_EINVAL);
    /* CRLF only: a bare LF or CR ends nothing (RFC 9112 2.2) */
    if (buf[e] != '\r')
        return set_status(status, 400, EDGE_EINVAL);
    if (e + 2 > max_head)
        return set_status(status, 431, EDGE_ETOOLONG);
    if (e + 1 >= len)
        return EDGE_EAGAIN;
    if (buf[e + 1] != '\n')
        return set_status(status, 400, EDGE_EINVAL);
    pos = e + 2;

    r = parse_fields(buf, len, max_head, lim->max_headers, pos,
                     req->headers, &req->nheaders, &head_len);
    switch (r) {
    case 0:
        break;
    case EDGE_EAGAIN:
        return r;
    case EDGE_ETOOLONG:
    case EDGE_ETOOMANY:
        return set_status(status, 431, r);
    default:
        return set_status(status, 400, EDGE_EINVAL);
    }

    derive(req->headers, req->nheaders, &d);

    /* RFC 9112 3.2: one valid Host on 1.1; never two, never invalid */
    if (d.nhost > 1 || !d.host_ok)
        return set_status(status, 400, EDGE_EINVAL);
    if (d.nhost == 0 && req->version_minor == 1)
        return set_status(status, 400, EDGE_EINVAL);
    /* RFC 9112 3.2.2: absolute-form's authority wins over Host */
    if (req->host == NULL) {
        req->host = d.host;
        req->host_len = d.host_len;
    }

    /* RFC 9110 8.6: one Content-Length, digits only. Two field lines are
     * refused even when equal: a peer may have read the other one. */
    if (d.ncl > 1 || !d.cl_ok)
        return set_status(status, 400, EDGE_EINVAL);
    if (d.te.seen) {
        /* RFC 9112 6.1: Transfer-Encoding in 1.0 means faulty framing */
        if (req->version_minor == 0)
            return set_status(status, 400, EDGE_EINVAL);
        /* RFC 9112 6.3 item 3: both framings is a smuggling attempt */
        if (d.ncl > 0)
            return set_status(status, 400, EDGE_EINVAL);
        /* RFC 9112 6.3 item 4: chunked not last (or twice, RFC 9112 7)
         * leaves the length unknown: 400 */
        if (d.te.empty_elem || d.te.nchunked > 1 ||
            (d.te.nchunked == 1 && !d.te.last_chunked))
            return set_status(status, 400, EDGE_EINVAL);
        /* RFC 9112 6.1: a coding we do not implement */
        if (d.te.unknown)
            return set_status(status, 501, EDGE_ENOTSUP);
        req->chunked = true;
    } else {
        req->content_length = d.cl;
    }

    req->keep_alive = keep_alive(req->version_minor, &d);
    /* RFC 9110 10.1.1: a 1.0 request's 100-continue is ignored */
    req->expect_continue = d.expect_continue && req->version_minor == 1;
    req->head_len = head_len;
    return (int)head_len;
}

/* ------------------------------------------------------------ response */

/*
 * RFC 9112 4: status-line = HTTP-version SP status-code SP [reason-phrase].
 * Whole (complete) or the part received so far. The reason phrase is
 * informational: any byte but NUL goes, and a missing SP before an empty
 * reason is tolerated (RFC 9112 4 asks recipients to accept it).
 */
static int parse_status_line(const char *b, size_t n, bool complete,
                             struct http1_response *resp)
{
    static const char http[] = "HTTP/";
    size_t k;

    for (k = 0; k < n && k < 13; k++) {
        unsigned char c = (unsigned char)b[k];
        bool ok;

        if (k < 5)
            ok = c == (unsigned char)http[k];
        else if (k == 6)
            ok = c == '.';
        else if (k == 8 || k == 12)
            ok = c == ' ';
        else
            ok = is_digit(c);
        if (!ok)
            return EDGE_EINVAL;
    }
    for (; k < n; k++) {
        if (b[k] == '\0')
            return EDGE_EINVAL;
    }
    if (!complete)
        return 0;
    if (n < 12)
        return EDGE_EINVAL;
    if (b[5] != '1' || b[7] > '1')
        return EDGE_ENOTSUP;
    resp->version_minor = b[7] - '0';
    resp->status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    /* RFC 9110 15: codes outside 100..599 are invalid */
    if (resp->status < 100 || resp->status > 599)
        return EDGE_EINVAL;
    if (n > 12) {
        resp->reason = b + 13;
        resp->reason_len = n - 13;
    } else {
        resp->reason = b + 12;
        resp->reason_len = 0;
    }
    return 0;
}

int http1_parse_response(const char *buf, size_t len,
                         const struct http1_limits *lim,
                         struct http1_response *resp)
{
    struct http1_header *hdrs;
    struct derived d;
    size_t e, pos, head_len = 0, max_head;
    enum line_scan sc;
    int r;

    AN(lim);
    AN(resp);
    AN(buf != NULL || len == 0);

    max_head = head_limit(lim);
    hdrs = resp->headers;
    memset(resp, 0, sizeof(*resp));
    resp->headers = hdrs;
    resp->content_length = -1;

    /* The status line shares the request-line limit. */
    sc = scan_start_line(buf, len, 0, lim->max_request_line, max_head, &e);
    if (sc != LINE_FOUND) {
        r = parse_status_line(buf, e, false, resp);
        if (r != 0)
            return r;
        return sc == LINE_PARTIAL ? EDGE_EAGAIN : EDGE_ETOOLONG;
    }
    r = parse_status_line(buf, e, true, resp);
    if (r != 0)
        return r;
    if (buf[e] != '\r')
        return EDGE_EINVAL;
    if (e + 2 > max_head)
        return EDGE_ETOOLONG;
    if (e + 1 >= len)
        return EDGE_EAGAIN;
    if (buf[e + 1] != '\n')
        return EDGE_EINVAL;
    pos = e + 2;

    r = parse_fields(buf, len, max_head, lim->max_headers, pos,
                     resp->headers, &resp->nheaders, &head_len);
    if (r != 0)
        return r;

    derive(resp->headers, resp->nheaders, &d);
    if (d.ncl > 1 || !d.cl_ok)
        return EDGE_EINVAL;
    if (d.te.seen) {
        if (resp->version_minor == 0 || d.ncl > 0 || d.te.empty_elem ||
            d.te.nchunked > 1)
            return EDGE_EINVAL;
        /* RFC 9112 6.3 item 4 would have us read a non-chunked coded body
         * until close and keep the coding: not something we pass on. */
        if (d.te.unknown || !d.te.last_chunked)
            return EDGE_ENOTSUP;
        resp->chunked = true;
    } else {
        resp->content_length = d.cl;
    }
    resp->keep_alive = keep_alive(resp->version_minor, &d);
    resp->head_len = head_len;
    return (int)head_len;
}

/* ------------------------------------------------------------ chunked */

enum chunked_state {
    CK_SIZE_FIRST = 0, /* first hex digit of chunk-size */
    CK_SIZE,           /* more hex digits */
    CK_SIZE_BWS,       /* whitespace after the size, before ';' */
    CK_EXT,            /* chunk-ext, skipped */
    CK_SIZE_LF,        /* LF ending the size line */
    CK_DATA,
    CK_DATA_CR,        /* CRLF after chunk-data */
    CK_DATA_LF,
    CK_TRAILER_START,  /* start of a trailer line, or the final CRLF */
    CK_TRAILER_NAME,
    CK_TRAILER_VALUE,
    CK_TRAILER_LF,
    CK_FINAL_LF,
    CK_DONE,
    CK_ERR_INVAL,
    CK_ERR_TOOLONG,
};

#define CHUNK_SIZE_MAX ((uint64_t)1 << 62)

void http1_chunked_init(struct http1_chunked *c)
{
    AN(c);
    memset(c, 0, sizeof(*c));
    c->state = CK_SIZE_FIRST;
}

static int chunked_fail(struct http1_chunked *c, int err, size_t i,
                        size_t *consumed)
{
    c->state = err == EDGE_ETOOLONG ? CK_ERR_TOOLONG : CK_ERR_INVAL;
    *consumed = i;
    return err;
}

int http1_chunked_feed(struct http1_chunked *c, const char *in, size_t len,
                       size_t *consumed, size_t *data_off, size_t *data_len)
{
    size_t i = 0;

    AN(c);
    AN(consumed);
    AN(data_off);
    AN(data_len);
    AN(in != NULL || len == 0);
    *consumed = 0;
    *data_off = 0;
    *data_len = 0;

    switch (c->state) {
    case CK_ERR_INVAL:
        return EDGE_EINVAL;
    case CK_ERR_TOOLONG:
        return EDGE_ETOOLONG;
    case CK_DONE:
        return 1;
    default:
        break;
    }

    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        int d;

        /* bound every line we skip: size lines with their extensions,
         * each trailer line, and all trailers together */
        switch (c->state) {
        case CK_SIZE_FIRST:
        case CK_SIZE:
        case CK_SIZE_BWS:
        case CK_EXT:
        case CK_TRAILER_START:
        case CK_TRAILER_NAME:
        case CK_TRAILER_VALUE:
            if (ch == '\r')
                break;
            if (c->line_len >= HTTP1_CHUNK_LINE_MAX)
                return chunked_fail(c, EDGE_ETOOLONG, i, consumed);
            c->line_len++;
            break;
        default:
            break;
        }
        /* and the whole trailer section, line ends included */
        if (c->state >= CK_TRAILER_START && c->state <= CK_FINAL_LF) {
            if (c->remaining >= HTTP1_CHUNK_TRAILERS_MAX)
                return chunked_fail(c, EDGE_ETOOLONG, i, consumed);
            c->remaining++;
        }

        switch (c->state) {
        case CK_SIZE_FIRST:
            /* RFC 9112 7.1: chunk-size = 1*HEXDIG */
            d = hex_val(ch);
            if (d < 0)
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->remaining = (uint64_t)d;
            c->state = CK_SIZE;
            break;
        case CK_SIZE:
            d = hex_val(ch);
            if (d >= 0) {
                if (c->remaining > (CHUNK_SIZE_MAX - (uint64_t)d) / 16)
                    return chunked_fail(c, EDGE_ETOOLONG, i, consumed);
                c->remaining = c->remaining * 16 + (uint64_t)d;
            } else if (ch == ';') {
                c->state = CK_EXT;
            } else if (is_ows(ch)) {
                c->state = CK_SIZE_BWS;
            } else if (ch == '\r') {
                c->state = CK_SIZE_LF;
            } else {
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            }
            break;
        case CK_SIZE_BWS:
            /* RFC 9112 7.1.1: BWS is only allowed before ';' */
            if (ch == ';')
                c->state = CK_EXT;
            else if (!is_ows(ch))
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            break;
        case CK_EXT:
            /* RFC 9112 7.1.1: extensions are ignored; we only make sure
             * they hold no line break or control byte */
            if (ch == '\r')
                c->state = CK_SIZE_LF;
            else if (!is_field_char(ch))
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            break;
        case CK_SIZE_LF:
            if (ch != '\n')
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->line_len = 0;
            if (c->remaining == 0) {
                /* last-chunk; remaining now counts trailer bytes */
                c->state = CK_TRAILER_START;
            } else {
                c->state = CK_DATA;
            }
            break;
        case CK_DATA: {
            size_t n = len - i;

            if ((uint64_t)n > c->remaining)
                n = (size_t)c->remaining;
            *data_off = i;
            *data_len = n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = CK_DATA_CR;
            *consumed = i + n;
            return 0;
        }
        case CK_DATA_CR:
            if (ch != '\r')
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (ch != '\n')
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->line_len = 0;
            c->state = CK_SIZE_FIRST;
            break;
        case CK_TRAILER_START:
        case CK_TRAILER_NAME:
        case CK_TRAILER_VALUE:
            if (c->state == CK_TRAILER_START) {
                /* RFC 9112 7.1.2: trailer fields, then CRLF; no obs-fold */
                if (ch == '\r')
                    c->state = CK_FINAL_LF;
                else if (is_tchar(ch))
                    c->state = CK_TRAILER_NAME;
                else
                    return chunked_fail(c, EDGE_EINVAL, i, consumed);
            } else if (c->state == CK_TRAILER_NAME) {
                if (ch == ':')
                    c->state = CK_TRAILER_VALUE;
                else if (!is_tchar(ch))
                    return chunked_fail(c, EDGE_EINVAL, i, consumed);
            } else {
                if (ch == '\r')
                    c->state = CK_TRAILER_LF;
                else if (!is_field_char(ch))
                    return chunked_fail(c, EDGE_EINVAL, i, consumed);
            }
            break;
        case CK_TRAILER_LF:
            if (ch != '\n')
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->line_len = 0;
            c->state = CK_TRAILER_START;
            break;
        case CK_FINAL_LF:
            if (ch != '\n')
                return chunked_fail(c, EDGE_EINVAL, i, consumed);
            c->state = CK_DONE;
            *consumed = i + 1;
            return 1;
        default:
            WRONG("bad chunked decoder state");
        }
        i++;
    }
    *consumed = i;
    return 0;
}

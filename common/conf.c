/*
 * conf.c: the YAML configuration, checked against a fixed schema and
 * turned into the structs of conf.h.
 *
 * Lifecycle: conf_new() sets the defaults; conf_add_*() (command line) and
 * conf_load_file()/conf_load_string() append to it; conf_finish() checks
 * what needs the whole picture (required keys, names, references, hosts)
 * and derives the origin fields; after that the conf is read-only until
 * conf_free().
 *
 * The loader walks libyaml's event stream against tables of fields rather
 * than building a document tree. Each value's type is checked on its first
 * event, so nothing nests deeper than the schema (four levels) before it
 * is refused, anchors and aliases are refused where they appear, and every
 * message knows its key path and line. The first error stops the load:
 * nothing is skipped, nothing is guessed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <yaml.h>

#include "conf.h"
#include "err.h"
#include "vas.h"

#define KiB (UINT64_C(1) << 10)
#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define TiB (UINT64_C(1) << 40)

#define SEC_MS UINT64_C(1000)
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

#define DEFAULT_REGION "us-east-1"
#define MAX_NAME 64        /* origin and distribution names */
#define MAX_HOSTNAME 253   /* RFC 1035 2.3.4, without the trailing dot */
#define KEY_PATH_MAX 192   /* bytes of a key path like "origins[3].credentials.source" */
#define MAX_SECRET 8192    /* session tokens run to a few KiB */
#define MAX_PEM_BYTES (1024 * 1024) /* a certificate chain or a key file */

/* ------------------------------------------------------------ helpers */

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

static int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_alnum(int ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool streq_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return false;
    return *a == *b;
}

/*
 * Make room for element n of an array holding n elements. Capacity is
 * implied by the count (0, then powers of two from 4), so the structs of
 * conf.h need no capacity fields and appends stay amortised O(1).
 */
static int grow(void *arrp, size_t n, size_t size)
{
    void **arr = arrp;
    size_t cap;
    void *p;

    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return 0;
    cap = n == 0 ? 4 : n * 2;
    if (cap > SIZE_MAX / size)
        return EDGE_ENOMEM;
    p = realloc(*arr, cap * size);
    if (p == NULL)
        return EDGE_ENOMEM;
    *arr = p;
    return 0;
}

/*
 * Write "FILE:LINE: " (only when both are known) and the message into err.
 * Always returns -1, the failure value of the public calls.
 */
static int vfail(char *err, const char *file, unsigned line, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));
static int vfail(char *err, const char *file, unsigned line, const char *fmt,
                 va_list ap)
{
    int n = 0;

    if (err == NULL)
        return -1;
    if (file != NULL && line != 0)
        n = snprintf(err, CONF_ERR_MAX, "%.200s:%u: ", file, line);
    if (n < 0 || n >= CONF_ERR_MAX)
        n = 0;
    vsnprintf(err + n, CONF_ERR_MAX - (size_t)n, fmt, ap);
    return -1;
}

static int fail(char *err, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, const char *file, unsigned line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(err, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------ numbers */

/* Decimal digits into *out; stops at the first non-digit (*end). */
static int parse_digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t n = 0;
    int err = 0;

    if (!is_digit((unsigned char)*s))
        return EDGE_EINVAL;
    for (; is_digit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            err = EDGE_ERANGE; /* keep scanning: "99...9x" is malformed */
        else
            n = n * 10 + d;
    }
    *end = s;
    *out = n;
    return err;
}

int conf_parse_size(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", 1},        {"b", 1},
        {"k", KiB},     {"kb", KiB},   {"kib", KiB},
        {"m", MiB},     {"mb", MiB},   {"mib", MiB},
        {"g", GiB},     {"gb", GiB},   {"gib", GiB},
        {"t", TiB},     {"tb", TiB},   {"tib", TiB},
    };
    const char *end;
    uint64_t n;
    size_t i;
    int rc;

    AN(s);
    AN(out);
    rc = parse_digits(s, &n, &end);
    if (rc == EDGE_EINVAL)
        return rc;
    for (i = 0; i < ARRAY_LEN(units); i++)
        if (streq_nocase(end, units[i].unit))
            break;
    if (i == ARRAY_LEN(units))
        return EDGE_EINVAL;
    if (rc != 0 || n > UINT64_MAX / units[i].mult)
        return EDGE_ERANGE;
    *out = n * units[i].mult;
    return 0;
}

int conf_parse_duration_ms(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {
        {"", SEC_MS}, {"ms", 1}, {"s", SEC_MS}, {"m", MIN_MS},
        {"h", HOUR_MS}, {"d", DAY_MS},
    };
    const char *end;
    uint64_t n;
    size_t i;
    int rc;

    AN(s);
    AN(out);
    rc = parse_digits(s, &n, &end);
    if (rc == EDGE_EINVAL)
        return rc;
    /* Case matters: "m" is minutes, and "M" would read as months. */
    for (i = 0; i < ARRAY_LEN(units); i++)
        if (strcmp(end, units[i].unit) == 0)
            break;
    if (i == ARRAY_LEN(units))
        return EDGE_EINVAL;
    if (rc != 0 || n > UINT64_MAX / units[i].mult)
        return EDGE_ERANGE;
    *out = n * units[i].mult;
    return 0;
}

/* "256MiB", "1000" for messages */
static void fmt_size(char *buf, size_t cap, uint64_t v)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}};
    size_t i;

    for (i = 0; i < ARRAY_LEN(units); i++) {
        if (v != 0 && v % units[i].mult == 0) {
            snprintf(buf, cap, "%llu%s",
                     (unsigned long long)(v / units[i].mult), units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%llu", (unsigned long long)v);
}

static void fmt_duration(char *buf, size_t cap, uint64_t ms)
{
    static const struct {
        const char *unit;
        uint64_t mult;
    } units[] = {{"d", DAY_MS}, {"h", HOUR_MS}, {"m", MIN_MS}, {"s", SEC_MS}};
    size_t i;

    for (i = 0; i < ARRAY_LEN(units); i++) {
        if (ms != 0 && ms % units[i].mult == 0) {
            snprintf(buf, cap, "%llu%s",
                     (unsigned long long)(ms / units[i].mult), units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%llums", (unsigned long long)ms);
}

/* ------------------------------------------------------------ names */

/* letters, digits, '.', '-', '_' (also DNS-ish host names) */
static bool is_name_char(int ch)
{
    return is_alnum(ch) || ch == '.' || ch == '-' || ch == '_';
}

static bool all_name_chars(const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (!is_name_char((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_ipv6_literal(const char *s, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    struct in6_addr a;

    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool is_ipv4_literal(const char *s)
{
    struct in_addr a;

    return inet_pton(AF_INET, s, &a) == 1;
}

/* A DNS name as far as we can tell without resolving it: labels of
 * letters, digits, '-' and '_' (RFC 1035 2.3.1, plus the '_' that real
 * names carry), 1-63 bytes each, at most 253 in all, no trailing dot. */
static bool is_dns_name(const char *s, size_t n)
{
    size_t i, label = 0;

    if (n == 0 || n > MAX_HOSTNAME)
        return false;
    for (i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (is_alnum(ch) || ch == '-' || ch == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label != 0;
}

/* Port: digits only, 1-65535. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    uint32_t v = 0;
    size_t i;

    if (n == 0)
        return EDGE_EINVAL;
    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return EDGE_EINVAL;
        if (v <= 65535)
            v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return EDGE_ERANGE;
    *port = (uint16_t)v;
    return 0;
}

int conf_split_hostport(const char *s, char *host, size_t host_cap, uint16_t *port)
{
    const char *h, *colon;
    size_t hlen;
    int rc;

    AN(s);
    AN(host);
    AN(port);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return EDGE_EINVAL;
        h = s + 1;
        hlen = (size_t)(rb - h);
        if (!is_ipv6_literal(h, hlen))
            return EDGE_EINVAL;
        colon = rb + 1;
    } else {
        colon = strchr(s, ':');
        if (colon == NULL)
            return EDGE_EINVAL;
        h = s;
        hlen = (size_t)(colon - s);
        /* An IPv6 address needs brackets: "::1:80" is ambiguous. */
        if (strchr(colon + 1, ':') != NULL)
            return EDGE_EINVAL;
        if (hlen != 0 && !is_dns_name(h, hlen))
            return EDGE_EINVAL;
    }
    rc = parse_port(colon + 1, strlen(colon + 1), port);
    if (rc != 0)
        return rc;
    if (hlen + 1 > host_cap)
        return EDGE_ETOOLONG;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

/* ------------------------------------------------------------ URLs */

struct url {
    bool tls;
    bool v6;
    bool has_port;
    uint16_t port;          /* explicit, or 80/443 */
    const char *host;       /* without brackets */
    size_t host_len;
    const char *path;       /* from the first '/', or "" */
};

/* http(s)://host[:port][/path]: NULL, or what was expected. */
static const char *url_parse(const char *s, struct url *u)
{
    const char *a, *end;

    memset(u, 0, sizeof *u);
    if (strncasecmp(s, "https://", 8) == 0) {
        u->tls = true;
        a = s + 8;
    } else if (strncasecmp(s, "http://", 7) == 0) {
        a = s + 7;
    } else {
        return "expected a URL starting with http:// or https://";
    }
    if (strpbrk(a, "?#") != NULL)
        return "expected a URL without query or fragment";
    end = a + strcspn(a, "/");
    if (memchr(a, '@', (size_t)(end - a)) != NULL)
        return "expected a URL without user info (credentials go under credentials:)";
    u->path = end;
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(end - a));
        if (rb == NULL || !is_ipv6_literal(a + 1, (size_t)(rb - a - 1)))
            return "expected an IPv6 address between [ and ]";
        u->v6 = true;
        u->host = a + 1;
        u->host_len = (size_t)(rb - a - 1);
        a = rb + 1;
        if (a != end && *a != ':')
            return "expected ':' and a port after ]";
    } else {
        u->host = a;
        u->host_len = strcspn(a, ":/");
        if (!is_dns_name(a, u->host_len))
            return "expected a host name in the URL";
        a += u->host_len;
    }
    u->port = u->tls ? 443 : 80;
    if (*a == ':') {
        int rc = parse_port(a + 1, (size_t)(end - a - 1), &u->port);
        if (rc == EDGE_ERANGE)
            return "expected a port from 1 to 65535 in the URL";
        if (rc != 0)
            return "expected a port number after ':' in the URL";
        u->has_port = true;
    }
    return NULL;
}

struct span {
    const char *p;
    size_t n;
};

static bool span_is(struct span s, const char *lit)
{
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/*
 * Amazon S3 host names (lowercase):
 *   [BUCKET.]s3.amazonaws.com            us-east-1
 *   [BUCKET.]s3.REGION.amazonaws.com
 *   [BUCKET.]s3.dualstack.REGION.amazonaws.com
 *   [BUCKET.]s3-REGION.amazonaws.com     legacy dash form
 * Gives the bucket (may be empty), the region (empty: us-east-1) and
 * where the "s3" part starts, or false for any other host.
 */
static bool aws_host_split(const char *h, size_t n, struct span *bucket,
                           struct span *region, size_t *s3_at)
{
    static const char sfx[] = ".amazonaws.com";
    const size_t sfxlen = sizeof sfx - 1;
    struct span lab[3] = {{NULL, 0}, {NULL, 0}, {NULL, 0}}; /* last labels, rightmost first */
    size_t end, i, nl = 0, start = 0;

    if (n <= sfxlen || strncasecmp(h + n - sfxlen, sfx, sfxlen) != 0)
        return false;
    end = n - sfxlen;
    for (i = end; nl < 3; i--) {
        if (i == 0 || h[i - 1] == '.') {
            lab[nl].p = h + i;
            lab[nl].n = end - i;
            nl++;
            end = i == 0 ? 0 : i - 1;
            if (i == 0)
                break;
        }
    }
    region->p = NULL;
    region->n = 0;
    if (span_is(lab[0], "s3")) {
        start = (size_t)(lab[0].p - h);
    } else if (lab[0].n > 3 && memcmp(lab[0].p, "s3-", 3) == 0 &&
               (lab[0].n < 10 || memcmp(lab[0].p, "s3-website", 10) != 0)) {
        start = (size_t)(lab[0].p - h);
        /* s3-external-1 is the old name of us-east-1 */
        if (!span_is(lab[0], "s3-external-1")) {
            region->p = lab[0].p + 3;
            region->n = lab[0].n - 3;
        }
    } else if (nl >= 2 && span_is(lab[1], "s3")) {
        start = (size_t)(lab[1].p - h);
        *region = lab[0];
    } else if (nl >= 3 && span_is(lab[1], "dualstack") && span_is(lab[2], "s3")) {
        start = (size_t)(lab[2].p - h);
        *region = lab[0];
    } else {
        return false;
    }
    bucket->p = h;
    bucket->n = start == 0 ? 0 : start - 1;
    *s3_at = start;
    return true;
}

/* ------------------------------------------------------------ checks */

/* Each returns NULL when the value is fine, else what was expected. */
typedef const char *str_check_f(const char *s);

static const char *check_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_NAME || !all_name_chars(s, n))
        return "expected a name of 1-64 letters, digits, '.', '-' or '_'";
    return NULL;
}

static const char *check_endpoint(const char *s)
{
    struct url u;
    const char *msg = url_parse(s, &u);

    if (msg != NULL)
        return msg;
    if (u.path[0] != '\0' && strcmp(u.path, "/") != 0)
        return "expected scheme://host[:port] without a path (the bucket goes under bucket:)";
    return NULL;
}

/* S3 bucket names: 3-63 lowercase letters, digits, '.', '-' for new
 * buckets; older us-east-1 buckets and S3-compatible servers allow more,
 * so accept what can stand in a path segment and a host label unescaped. */
static const char *check_bucket(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255 || !all_name_chars(s, n))
        return "expected a bucket name of letters, digits, '.', '-' or '_'";
    return NULL;
}

static const char *check_region(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > MAX_NAME)
        return "expected a region like eu-west-1";
    for (i = 0; i < n; i++)
        if (!is_alnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return "expected a region like eu-west-1";
    return NULL;
}

/* Keys and tokens travel in HTTP headers: visible ASCII only. */
static const char *check_secret(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > MAX_SECRET)
        return "expected a non-empty string of visible ASCII characters";
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "expected a non-empty string of visible ASCII characters";
    return NULL;
}

static const char *check_file(const char *s)
{
    if (s[0] == '\0')
        return "expected a file path";
    return NULL;
}

static const char *check_error_log(const char *s)
{
    if (s[0] == '\0')
        return "expected stderr or a file path";
    return NULL;
}

static const char *check_access_log(const char *s)
{
    if (s[0] == '\0')
        return "expected stderr, off or a file path";
    return NULL;
}

static const char *check_path_prefix(const char *s)
{
    size_t i;

    if (s[0] != '/')
        return "expected a URL path starting with /";
    for (i = 0; s[i] != '\0'; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f ||
            s[i] == '?' || s[i] == '#')
            return "expected a URL path starting with / (visible ASCII, no ? or #)";
    return NULL;
}

static const char *check_key_prefix(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return "expected a key prefix without control characters";
    return NULL;
}

static const char *check_listen(const char *s)
{
    char host[MAX_HOSTNAME + 1];
    uint16_t port;
    int rc = conf_split_hostport(s, host, sizeof host, &port);

    if (rc == EDGE_ERANGE)
        return "expected host:port with a port from 1 to 65535";
    if (rc != 0)
        return "expected host:port, [IPv6]:port or :port";
    return NULL;
}

/* OpenSSL's TLS 1.2 cipher-list syntax is checked by OpenSSL in
 * conf_finish; here only what it could never take. */
static const char *check_cipher_string(const char *s)
{
    size_t i;

    if (s[0] == '\0')
        return "expected an OpenSSL cipher list like ECDHE-RSA-AES128-GCM-SHA256:...";
    for (i = 0; s[i] != '\0'; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "expected an OpenSSL cipher list without spaces or control characters";
    return NULL;
}

/* TLS 1.3 suites by their RFC 8446 B.4 names, ':'-separated. OpenSSL
 * skips names it does not know, which could leave TLS 1.3 without a
 * suite, so every name is checked here. */
static const char *check_ciphersuites(const char *s)
{
    static const char *const known[] = {
        "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",   "TLS_CHACHA20_POLY1305_SHA256",
        "TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256",
    };
    size_t i, n;

    do {
        n = strcspn(s, ":");
        for (i = 0; i < ARRAY_LEN(known); i++)
            if (strlen(known[i]) == n && memcmp(known[i], s, n) == 0)
                break;
        if (i == ARRAY_LEN(known))
            return "expected TLS 1.3 suites separated by ':' (TLS_AES_128_GCM_SHA256, "
                   "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, "
                   "TLS_AES_128_CCM_SHA256, TLS_AES_128_CCM_8_SHA256)";
        s += n;
    } while (*s++ == ':');
    return NULL;
}

/* "*", "*.example.com", "example.com", "192.0.2.1", "[2001:db8::1]" */
static const char *check_host_pattern(const char *s)
{
    size_t n = strlen(s);

    if (strcmp(s, "*") == 0)
        return NULL;
    if (n > 2 && s[0] == '[' && s[n - 1] == ']' && is_ipv6_literal(s + 1, n - 2))
        return NULL;
    if (n > 2 && s[0] == '*' && s[1] == '.')
        s += 2, n -= 2;
    if (!is_dns_name(s, n))
        return "expected a host name, \"*.domain\" or \"*\" (no port)";
    return NULL;
}

/* ------------------------------------------------------------ objects */

static void origin_init(struct conf_origin *o)
{
    memset(o, 0, sizeof *o);
    o->addressing = CONF_ADDR_PATH;
    o->cred_source = CONF_CRED_ENV;
    o->unsigned_payload = false;
    o->tls_verify = true;
    o->connect_timeout_ms = 5000;
    o->first_byte_timeout_ms = 30000;
    o->idle_timeout_ms = 30000;
    o->keepalive_timeout_ms = 60000;
    o->max_connections = 256;
    o->max_idle_connections = 64;
}

static void origin_fini(struct conf_origin *o)
{
    free(o->name);
    free(o->endpoint);
    free(o->host);
    free(o->vhost);
    free(o->authority);
    free(o->bucket);
    free(o->region);
    free(o->access_key_id);
    free(o->secret_access_key);
    free(o->session_token);
    free(o->ca_file);
}

static void dist_init(struct conf_distribution *d)
{
    memset(d, 0, sizeof *d);
    d->query = CONF_QUERY_IGNORE;
    d->default_ttl_s = 86400;
    d->max_ttl_s = UINT_MAX; /* unset: 365 days, or default_ttl if longer */
    d->negative_ttl_404_s = 10;
    d->negative_ttl_403_s = 10;
    d->pass_amz_meta = true;
    d->methods = CONF_METHODS_GET_HEAD;
    d->max_request_body = 100 * MiB;
}

static void dist_fini(struct conf_distribution *d)
{
    size_t i;

    free(d->name);
    for (i = 0; i < d->nhosts; i++)
        free(d->hosts[i]);
    free(d->hosts);
    free(d->host_lines);
    free(d->origin_name);
    free(d->path_prefix);
    free(d->key_prefix);
    for (i = 0; i < d->nquery_keys; i++)
        free(d->query_keys[i]);
    free(d->query_keys);
}

struct conf *conf_new(void)
{
    struct conf *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->magic = CONF_MAGIC;
    c->log_level = LOG_LVL_INFO;
    c->memory_cache_bytes = 256 * MiB;
    c->max_object_bytes = 64 * MiB;
    c->sendfile = true;
    c->block_bytes = MiB;
    c->readahead_blocks = 8;
    c->orphan_fill_bytes = 8 * MiB;
    c->reader_timeout_ms = 30000;
    c->max_ranges = 16;
    c->disk_size_bytes = 10 * GiB;
    c->disk_threads = 2;
    c->disk_fsync = false;
    c->max_request_line = 8192;
    c->max_head_bytes = 32768;
    c->max_headers = 100;
    c->client_header_timeout_ms = 10000;
    c->client_idle_timeout_ms = 60000;
    c->client_send_timeout_ms = 60000;
    c->max_keepalive_requests = 10000;
    c->max_connections = 100000;
    c->max_pipeline = 16;
    c->redis_stream_maxlen = 100000;
    c->heartbeat_ms = 250;
    c->workers = 0;
    return c;
}

static struct conf_tls *tls_new(void)
{
    struct conf_tls *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->protocols = CONF_TLS_V12 | CONF_TLS_V13;
    t->session_tickets = true;
    t->ticket_key_rotation_s = 12 * 3600;
    t->session_cache = 20000;
    t->alpn[0] = CONF_ALPN_H2;
    t->alpn[1] = CONF_ALPN_HTTP11;
    t->nalpn = 2;
    t->handshake_timeout_ms = 10000;
    t->ktls = CONF_KTLS_OFF;
    return t;
}

static void tls_free(struct conf_tls *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->ncerts; i++) {
        free(t->certs[i].cert);
        free(t->certs[i].key);
        free(t->certs[i].ocsp);
    }
    free(t->certs);
    free(t->ciphers);
    free(t->ciphersuites);
    free(t->ticket_key_file);
    free(t);
}

static struct conf_tls_cert *tls_cert_append(struct conf_tls *t)
{
    struct conf_tls_cert *e;

    if (grow(&t->certs, t->ncerts, sizeof *t->certs) != 0)
        return NULL;
    e = &t->certs[t->ncerts++];
    memset(e, 0, sizeof *e);
    return e;
}

void conf_free(struct conf *c)
{
    size_t i;

    if (c == NULL)
        return;
    CHECK_OBJ(c, CONF_MAGIC);
    for (i = 0; i < c->nlistens; i++) {
        free(c->listens[i].address);
        tls_free(c->listens[i].tls);
    }
    free(c->listens);
    for (i = 0; i < c->norigins; i++)
        origin_fini(&c->origins[i]);
    free(c->origins);
    for (i = 0; i < c->ndists; i++)
        dist_fini(&c->dists[i]);
    free(c->dists);
    free(c->path);
    free(c->error_log);
    free(c->access_log);
    free(c->state_dir);
    free(c->node_id);
    free(c->pop);
    free(c->admin_listen);
    for (i = 0; i < c->nadmin_tokens; i++)
        free(c->admin_tokens[i]);
    free(c->admin_tokens);
    free(c->admin_token_file);
    free(c->redis_url);
    free(c->redis_username);
    free(c->redis_password);
    free(c->admin_tls_cert);
    free(c->admin_tls_key);
    free(c->redis_sentinel_master);
    for (i = 0; i < c->nredis_sentinel_addrs; i++)
        free(c->redis_sentinel_addrs[i]);
    free(c->redis_sentinel_addrs);
    free(c->disk_path);
    c->magic = 0;
    free(c);
}

/* A new listen entry; address may be NULL (a mapping sets it later). */
static struct conf_listen *listen_append(struct conf *c, const char *address, unsigned line)
{
    struct conf_listen *l;
    char *a = NULL;

    if (grow(&c->listens, c->nlistens, sizeof *c->listens) != 0)
        return NULL;
    if (address != NULL && (a = xstrdup(address)) == NULL)
        return NULL;
    l = &c->listens[c->nlistens++];
    memset(l, 0, sizeof *l);
    l->address = a;
    l->line = line;
    return l;
}

static struct conf_origin *origin_append(struct conf *c)
{
    struct conf_origin *o;

    if (grow(&c->origins, c->norigins, sizeof *c->origins) != 0)
        return NULL;
    o = &c->origins[c->norigins++];
    origin_init(o);
    return o;
}

static struct conf_distribution *dist_append(struct conf *c)
{
    struct conf_distribution *d;

    if (grow(&c->dists, c->ndists, sizeof *c->dists) != 0)
        return NULL;
    d = &c->dists[c->ndists++];
    dist_init(d);
    return d;
}

/* Takes a lowercased copy of host. */
static int dist_add_host(struct conf_distribution *d, const char *host, unsigned line)
{
    char *h;
    size_t i;

    if (grow(&d->hosts, d->nhosts, sizeof *d->hosts) != 0 ||
        grow(&d->host_lines, d->nhosts, sizeof *d->host_lines) != 0)
        return EDGE_ENOMEM;
    h = xstrdup(host);
    if (h == NULL)
        return EDGE_ENOMEM;
    /* Host names compare case-insensitively (RFC 9110 4.2.3). */
    for (i = 0; h[i] != '\0'; i++)
        h[i] = (char)lower((unsigned char)h[i]);
    d->hosts[d->nhosts] = h;
    d->host_lines[d->nhosts] = line;
    d->nhosts++;
    return 0;
}

/* ------------------------------------------------------------ YAML walk */

struct yp {
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    struct conf *c;
    char *err;
    const char *input;
    size_t input_len;
    char path[KEY_PATH_MAX];
    size_t pathlen;
};

struct field;
typedef int field_parse_f(struct yp *y, void *obj, const struct field *f);

struct field {
    const char *key;
    field_parse_f *parse;
    size_t off;                 /* of the value in obj */
    uint64_t min, max;          /* numbers, sizes, durations (ms) */
    const void *spec;           /* struct enum_spec or struct map_spec */
    str_check_f *check;         /* strings: NULL or the value's check */
};

struct map_spec {
    const struct field *fields;
    size_t n;
};

struct enum_spec {
    const char *expected;
    struct {
        const char *name;
        int value;
    } names[5];
};

static unsigned ev_line(const struct yp *y)
{
    return (unsigned)y->ev.start_mark.line + 1;
}

static int yfail(struct yp *y, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int yfail(struct yp *y, unsigned line, const char *fmt, ...)
{
    char msg[CONF_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (y->pathlen == 0)
        return fail(y->err, y->c->path, line, "%s", msg);
    return fail(y->err, y->c->path, line, "%s: %s", y->path, msg);
}

static int yfail_oom(struct yp *y)
{
    return fail(y->err, y->c->path, 0, "%s%sout of memory",
                y->c->path ? y->c->path : "", y->c->path ? ": " : "");
}

static void path_add(struct yp *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_add(struct yp *y, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(y->path + y->pathlen, sizeof y->path - y->pathlen, fmt, ap);
    va_end(ap);
    if (n > 0)
        y->pathlen += (size_t)n;
    if (y->pathlen >= sizeof y->path)
        y->pathlen = sizeof y->path - 1;
}

/* Keys come from the file: show at most 64 bytes, control bytes as '?'. */
static void path_push_key(struct yp *y, const char *key, size_t len)
{
    char shown[64 + 4];
    size_t i, n = len > 64 ? 64 : len;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        shown[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (len > n)
        memcpy(shown + n, "...", 3), n += 3;
    shown[n] = '\0';
    path_add(y, "%s%s", y->pathlen ? "." : "", shown);
}

static void path_pop(struct yp *y, size_t len)
{
    y->pathlen = len;
    y->path[len] = '\0';
}

static int syntax_error(struct yp *y)
{
    yaml_parser_t *p = &y->parser;
    unsigned line = 1;
    size_t i;

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return yfail_oom(y);
    case YAML_READER_ERROR:
        /* The reader decodes ahead of the scanner: count lines up to the
         * offending byte. */
        for (i = 0; i < p->problem_offset && i < y->input_len; i++)
            if (y->input[i] == '\n')
                line++;
        return fail(y->err, y->c->path, line, "invalid input: %s",
                    p->problem ? p->problem : "unreadable");
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        line = (unsigned)p->problem_mark.line + 1;
        if (p->context != NULL)
            return fail(y->err, y->c->path, line, "YAML syntax error: %s (%s at line %u)",
                        p->problem ? p->problem : "?", p->context,
                        (unsigned)p->context_mark.line + 1);
        return fail(y->err, y->c->path, line, "YAML syntax error: %s",
                    p->problem ? p->problem : "?");
    default:
        return fail(y->err, y->c->path, (unsigned)p->mark.line + 1, "YAML syntax error");
    }
}

/* Advance to the next event, refusing what the schema never uses. */
static int yp_next(struct yp *y)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;

    if (y->have_ev) {
        yaml_event_delete(&y->ev);
        y->have_ev = false;
    }
    if (!yaml_parser_parse(&y->parser, &y->ev))
        return syntax_error(y);
    y->have_ev = true;
    switch (y->ev.type) {
    case YAML_ALIAS_EVENT:
        return yfail(y, ev_line(y), "aliases (*name) are not supported");
    case YAML_SCALAR_EVENT:
        anchor = y->ev.data.scalar.anchor;
        tag = y->ev.data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = y->ev.data.sequence_start.anchor;
        tag = y->ev.data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = y->ev.data.mapping_start.anchor;
        tag = y->ev.data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor != NULL)
        return yfail(y, ev_line(y), "anchors (&name) are not supported");
    if (tag != NULL)
        return yfail(y, ev_line(y), "tags (!tag) are not supported");
    return 0;
}

/* YAML 1.2 core schema nulls; only unquoted. */
static bool ev_is_null(const struct yp *y)
{
    const char *v = (const char *)y->ev.data.scalar.value;

    return y->ev.type == YAML_SCALAR_EVENT &&
           y->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
            strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0);
}

/* The current event as a string, or a "expected ..." failure. */
static int want_scalar(struct yp *y, const char *expected, const char **out)
{
    if (y->ev.type != YAML_SCALAR_EVENT || ev_is_null(y))
        return yfail(y, ev_line(y), "%s", expected);
    /* "\0" in a quoted scalar would cut every later use short */
    if (strlen((const char *)y->ev.data.scalar.value) != y->ev.data.scalar.length)
        return yfail(y, ev_line(y), "%s (without NUL bytes)", expected);
    *out = (const char *)y->ev.data.scalar.value;
    return 0;
}

static void *field_ptr(void *obj, const struct field *f)
{
    return (char *)obj + f->off;
}

static int set_string(struct yp *y, char **dst, const char *s)
{
    char *v = xstrdup(s);

    if (v == NULL)
        return yfail_oom(y);
    free(*dst);
    *dst = v;
    return 0;
}

static int f_string(struct yp *y, void *obj, const struct field *f)
{
    const char *s, *msg;

    if (want_scalar(y, "expected a string", &s) != 0)
        return -1;
    if (f->check != NULL && (msg = f->check(s)) != NULL)
        return yfail(y, ev_line(y), "%s", msg);
    if (set_string(y, field_ptr(obj, f), s) != 0)
        return -1;
    return yp_next(y);
}

static int f_bool(struct yp *y, void *obj, const struct field *f)
{
    static const char *const t[] = {"true", "True", "TRUE"};
    static const char *const fa[] = {"false", "False", "FALSE"};
    const char *s;
    size_t i;

    if (want_scalar(y, "expected true or false", &s) != 0)
        return -1;
    /* Quoted "true" is a string in YAML; yes/no/on/off are YAML 1.1 only. */
    if (y->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        for (i = 0; i < ARRAY_LEN(t); i++) {
            if (strcmp(s, t[i]) == 0 || strcmp(s, fa[i]) == 0) {
                *(bool *)field_ptr(obj, f) = strcmp(s, t[i]) == 0;
                return yp_next(y);
            }
        }
    }
    return yfail(y, ev_line(y), "expected true or false");
}

static int f_count(struct yp *y, void *obj, const struct field *f)
{
    const char *s, *end;
    uint64_t v;
    int rc;

    if (want_scalar(y, "expected a number", &s) != 0)
        return -1;
    rc = parse_digits(s, &v, &end);
    if (rc == EDGE_EINVAL || *end != '\0')
        return yfail(y, ev_line(y), "expected a number");
    if (rc != 0 || v < f->min || v > f->max)
        return yfail(y, ev_line(y), "expected a number from %llu to %llu",
                     (unsigned long long)f->min, (unsigned long long)f->max);
    AZ(f->max > UINT_MAX);
    *(unsigned *)field_ptr(obj, f) = (unsigned)v;
    return yp_next(y);
}

static int get_size(struct yp *y, const struct field *f, uint64_t *v)
{
    char lo[32], hi[32];
    const char *s;
    int rc;

    if (want_scalar(y, "expected a size like 256MiB", &s) != 0)
        return -1;
    rc = conf_parse_size(s, v);
    if (rc == EDGE_EINVAL)
        return yfail(y, ev_line(y), "expected a size like 256MiB");
    if (rc != 0 || *v < f->min || *v > f->max) {
        fmt_size(lo, sizeof lo, f->min);
        fmt_size(hi, sizeof hi, f->max);
        return yfail(y, ev_line(y), "expected a size from %s to %s", lo, hi);
    }
    return 0;
}

static int f_size64(struct yp *y, void *obj, const struct field *f)
{
    uint64_t v;

    if (get_size(y, f, &v) != 0)
        return -1;
    *(uint64_t *)field_ptr(obj, f) = v;
    return yp_next(y);
}

static int f_size(struct yp *y, void *obj, const struct field *f)
{
    uint64_t v;

    AZ(f->max > UINT_MAX);
    if (get_size(y, f, &v) != 0)
        return -1;
    *(unsigned *)field_ptr(obj, f) = (unsigned)v;
    return yp_next(y);
}

static int get_duration(struct yp *y, const struct field *f, uint64_t *v)
{
    char lo[32], hi[32];
    const char *s;
    int rc;

    if (want_scalar(y, "expected a duration like 30s", &s) != 0)
        return -1;
    rc = conf_parse_duration_ms(s, v);
    if (rc == EDGE_EINVAL)
        return yfail(y, ev_line(y), "expected a duration like 30s");
    if (rc != 0 || *v < f->min || *v > f->max) {
        fmt_duration(lo, sizeof lo, f->min);
        fmt_duration(hi, sizeof hi, f->max);
        return yfail(y, ev_line(y), "expected a duration from %s to %s", lo, hi);
    }
    return 0;
}

static int f_duration_ms(struct yp *y, void *obj, const struct field *f)
{
    uint64_t v;

    AZ(f->max > UINT_MAX);
    if (get_duration(y, f, &v) != 0)
        return -1;
    *(unsigned *)field_ptr(obj, f) = (unsigned)v;
    return yp_next(y);
}

static int f_duration_s(struct yp *y, void *obj, const struct field *f)
{
    uint64_t v;

    AZ(f->max / SEC_MS > UINT_MAX);
    if (get_duration(y, f, &v) != 0)
        return -1;
    if (v % SEC_MS != 0)
        return yfail(y, ev_line(y), "expected a duration in whole seconds");
    *(unsigned *)field_ptr(obj, f) = (unsigned)(v / SEC_MS);
    return yp_next(y);
}

static int f_enum(struct yp *y, void *obj, const struct field *f)
{
    const struct enum_spec *e = f->spec;
    const char *s;
    size_t i;

    if (want_scalar(y, e->expected, &s) != 0)
        return -1;
    for (i = 0; i < ARRAY_LEN(e->names) && e->names[i].name != NULL; i++) {
        if (strcmp(s, e->names[i].name) == 0) {
            int v = e->names[i].value;
            /* every enum of conf.h is int-sized; the table holds ints */
            memcpy(field_ptr(obj, f), &v, sizeof v);
            return yp_next(y);
        }
    }
    return yfail(y, ev_line(y), "%s", e->expected);
}

/*
 * A mapping whose keys are the fields of m, each at most once, into obj.
 * Called on the MAPPING-START event; returns past the MAPPING-END.
 */
static int parse_map(struct yp *y, const struct map_spec *m, void *obj)
{
    size_t base = y->pathlen;
    uint64_t seen = 0;

    AN(m->n <= 64);
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys");
    if (yp_next(y) != 0)
        return -1;
    while (y->ev.type != YAML_MAPPING_END_EVENT) {
        const struct field *f = NULL;
        const char *key;
        size_t i, klen;

        if (y->ev.type != YAML_SCALAR_EVENT)
            return yfail(y, ev_line(y), "expected a plain key");
        key = (const char *)y->ev.data.scalar.value;
        klen = y->ev.data.scalar.length;
        for (i = 0; i < m->n; i++) {
            if (strlen(m->fields[i].key) == klen &&
                memcmp(m->fields[i].key, key, klen) == 0) {
                f = &m->fields[i];
                break;
            }
        }
        path_push_key(y, key, klen);
        if (f == NULL)
            return yfail(y, ev_line(y), "unknown key");
        if (seen & (UINT64_C(1) << i))
            return yfail(y, ev_line(y), "duplicate key");
        seen |= UINT64_C(1) << i;
        if (yp_next(y) != 0 || f->parse(y, obj, f) != 0)
            return -1;
        path_pop(y, base);
    }
    return yp_next(y);
}

static int f_map(struct yp *y, void *obj, const struct field *f)
{
    return parse_map(y, f->spec, obj);
}

typedef int item_parse_f(struct yp *y, void *obj, size_t idx);

/*
 * A non-empty list; item() is called on each item's first event and
 * returns past it.
 */
static int parse_list(struct yp *y, void *obj, item_parse_f *item, const char *what,
                      const char *one)
{
    size_t base = y->pathlen, i;
    unsigned line = ev_line(y);

    if (y->ev.type != YAML_SEQUENCE_START_EVENT)
        return yfail(y, line, "expected a list of %s", what);
    if (yp_next(y) != 0)
        return -1;
    for (i = 0; y->ev.type != YAML_SEQUENCE_END_EVENT; i++) {
        path_add(y, "[%zu]", i);
        if (item(y, obj, i) != 0)
            return -1;
        path_pop(y, base);
    }
    if (i == 0)
        return yfail(y, line, "expected at least one %s", one);
    return yp_next(y);
}

/* Wrappers that note the line of a value, for the checks of conf_finish. */
#define F_AT_LINE(name, type, linefield, inner)                                                    \
    static int name(struct yp *y, void *obj, const struct field *f)                                \
    {                                                                                              \
        ((type *)obj)->linefield = ev_line(y);                                                     \
        return inner(y, obj, f);                                                                   \
    }
F_AT_LINE(f_cert_cert, struct conf_tls_cert, cert_line, f_string)
F_AT_LINE(f_cert_key, struct conf_tls_cert, key_line, f_string)
F_AT_LINE(f_cert_ocsp, struct conf_tls_cert, ocsp_line, f_string)
F_AT_LINE(f_tls_ciphers, struct conf_tls, ciphers_line, f_string)
F_AT_LINE(f_tls_ciphersuites, struct conf_tls, ciphersuites_line, f_string)
F_AT_LINE(f_tls_tickets, struct conf_tls, tickets_line, f_bool)
F_AT_LINE(f_tls_ticket_file, struct conf_tls, ticket_key_file_line, f_string)
#undef F_AT_LINE

static const struct field cert_fields[] = {
    {"cert", f_cert_cert, offsetof(struct conf_tls_cert, cert), 0, 0, NULL, check_file},
    {"key", f_cert_key, offsetof(struct conf_tls_cert, key), 0, 0, NULL, check_file},
    {"ocsp", f_cert_ocsp, offsetof(struct conf_tls_cert, ocsp), 0, 0, NULL, check_file},
};
static const struct map_spec cert_map = {cert_fields, ARRAY_LEN(cert_fields)};

static int cert_item(struct yp *y, void *obj, size_t idx)
{
    struct conf_tls_cert *e;

    (void)idx;
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys (cert, key, ocsp)");
    e = tls_cert_append(obj);
    if (e == NULL)
        return yfail_oom(y);
    e->line = ev_line(y);
    return parse_map(y, &cert_map, e);
}

static int f_tls_certs(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, cert_item, "certificates", "certificate");
}

/* One scalar out of names[] (the list items of protocols and alpn), each
 * at most once: its value, or -1 after a failure. */
static int pick_once(struct yp *y, const char *const *names, const int *values, size_t n,
                     const char *expected, unsigned *seen)
{
    const char *s = NULL;
    size_t i;

    if (want_scalar(y, expected, &s) != 0)
        return -1;
    for (i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            break;
    if (i == n)
        return yfail(y, ev_line(y), "%s", expected);
    if (*seen & (1u << i))
        return yfail(y, ev_line(y), "%s is listed twice", names[i]);
    *seen |= 1u << i;
    return yp_next(y) == 0 ? values[i] : -1;
}

static int protocol_item(struct yp *y, void *obj, size_t idx)
{
    static const char *const names[] = {"TLSv1.2", "TLSv1.3"};
    static const int values[] = {CONF_TLS_V12, CONF_TLS_V13};
    struct conf_tls *t = obj;
    int v;

    (void)idx;
    /* RFC 8996: TLS 1.0 and 1.1 are deprecated; they are not offered. */
    v = pick_once(y, names, values, ARRAY_LEN(names), "expected TLSv1.2 or TLSv1.3", &t->protocols);
    return v < 0 ? -1 : 0;
}

static int f_tls_protocols(struct yp *y, void *obj, const struct field *f)
{
    struct conf_tls *t = obj;

    (void)f;
    t->protocols_line = ev_line(y);
    t->protocols = 0; /* the list replaces the default; its bits are the values */
    return parse_list(y, obj, protocol_item, "TLS versions", "version");
}

static int alpn_item(struct yp *y, void *obj, size_t idx)
{
    static const char *const names[] = {"h2", "http/1.1"};
    static const int values[] = {CONF_ALPN_H2, CONF_ALPN_HTTP11};
    struct conf_tls *t = obj;
    unsigned seen = 0;
    size_t i;
    int v;

    (void)idx;
    for (i = 0; i < t->nalpn; i++)
        seen |= 1u << (t->alpn[i] - 1);
    v = pick_once(y, names, values, ARRAY_LEN(names), "expected h2 or http/1.1", &seen);
    if (v < 0)
        return -1;
    AN(t->nalpn < CONF_ALPN_MAX);
    t->alpn[t->nalpn++] = (enum conf_alpn)v;
    return 0;
}

static int f_tls_alpn(struct yp *y, void *obj, const struct field *f)
{
    struct conf_tls *t = obj;

    (void)f;
    t->nalpn = 0;
    return parse_list(y, obj, alpn_item, "protocols (h2, http/1.1)", "protocol");
}

static const struct enum_spec ktls_modes = {
    "expected auto, on or off",
    {{"off", CONF_KTLS_OFF}, {"auto", CONF_KTLS_AUTO}, {"on", CONF_KTLS_ON}},
};

static const struct field tls_fields[] = {
    {"certificates", f_tls_certs, 0, 0, 0, NULL, NULL},
    {"protocols", f_tls_protocols, 0, 0, 0, NULL, NULL},
    {"ciphers", f_tls_ciphers, offsetof(struct conf_tls, ciphers), 0, 0, NULL, check_cipher_string},
    {"ciphersuites", f_tls_ciphersuites, offsetof(struct conf_tls, ciphersuites), 0, 0, NULL,
     check_ciphersuites},
    {"session_tickets", f_tls_tickets, offsetof(struct conf_tls, session_tickets), 0, 0, NULL,
     NULL},
    {"ticket_key_file", f_tls_ticket_file, offsetof(struct conf_tls, ticket_key_file), 0, 0, NULL,
     check_file},
    /* RFC 8446 4.6.1: a ticket lives at most seven days */
    {"ticket_key_rotation", f_duration_s, offsetof(struct conf_tls, ticket_key_rotation_s), MIN_MS,
     7 * DAY_MS, NULL, NULL},
    {"session_cache", f_count, offsetof(struct conf_tls, session_cache), 0, 10000000, NULL, NULL},
    {"alpn", f_tls_alpn, 0, 0, 0, NULL, NULL},
    {"handshake_timeout", f_duration_ms, offsetof(struct conf_tls, handshake_timeout_ms), 1,
     10 * MIN_MS, NULL, NULL},
    {"ktls", f_enum, offsetof(struct conf_tls, ktls), 0, 0, &ktls_modes, NULL},
};
static const struct map_spec tls_map = {tls_fields, ARRAY_LEN(tls_fields)};

static int f_tls(struct yp *y, void *obj, const struct field *f)
{
    struct conf_listen *l = obj;

    (void)f;
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys");
    AZ(l->tls); /* parse_map refuses a second tls key */
    l->tls = tls_new();
    if (l->tls == NULL)
        return yfail_oom(y);
    l->tls->line = ev_line(y);
    return parse_map(y, &tls_map, l->tls);
}

static const struct field listen_fields[] = {
    {"address", f_string, offsetof(struct conf_listen, address), 0, 0, NULL, check_listen},
    {"tls", f_tls, 0, 0, 0, NULL, NULL},
};
static const struct map_spec listen_map = {listen_fields, ARRAY_LEN(listen_fields)};

/* "host:port", or {address: "host:port", tls: {...}} */
static int listen_item(struct yp *y, void *obj, size_t idx)
{
    struct conf *c = obj;
    struct conf_listen *l;
    const char *s, *msg;

    (void)idx;
    if (y->ev.type == YAML_MAPPING_START_EVENT) {
        l = listen_append(c, NULL, ev_line(y));
        if (l == NULL)
            return yfail_oom(y);
        return parse_map(y, &listen_map, l);
    }
    if (want_scalar(y, "expected host:port, or a mapping with address and tls", &s) != 0)
        return -1;
    if ((msg = check_listen(s)) != NULL)
        return yfail(y, ev_line(y), "%s", msg);
    if (listen_append(c, s, ev_line(y)) == NULL)
        return yfail_oom(y);
    return yp_next(y);
}

static int f_listen(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, listen_item, "host:port addresses", "address");
}

static const struct enum_spec cred_sources = {
    "expected env, static or anonymous",
    {{"env", CONF_CRED_ENV}, {"static", CONF_CRED_STATIC}, {"anonymous", CONF_CRED_ANONYMOUS}},
};

static const struct field cred_fields[] = {
    {"source", f_enum, offsetof(struct conf_origin, cred_source), 0, 0, &cred_sources, NULL},
    {"access_key_id", f_string, offsetof(struct conf_origin, access_key_id), 0, 0, NULL,
     check_secret},
    {"secret_access_key", f_string, offsetof(struct conf_origin, secret_access_key), 0, 0,
     NULL, check_secret},
    {"session_token", f_string, offsetof(struct conf_origin, session_token), 0, 0, NULL,
     check_secret},
};
static const struct map_spec cred_map = {cred_fields, ARRAY_LEN(cred_fields)};

/* bucket, region, addressing, credentials and unsigned_payload are S3's:
 * remember where the first one was, conf_finish() refuses them on a plain
 * origin */
static void note_s3_opt(struct yp *y, void *obj, const struct field *f)
{
    struct conf_origin *o = obj;

    (void)y;
    if (o->s3_opt_line == 0) {
        o->s3_opt_line = ev_line(y);
        o->s3_opt_key = f->key;
    }
}

static int f_s3_string(struct yp *y, void *obj, const struct field *f)
{
    note_s3_opt(y, obj, f);
    return f_string(y, obj, f);
}

static int f_s3_enum(struct yp *y, void *obj, const struct field *f)
{
    note_s3_opt(y, obj, f);
    return f_enum(y, obj, f);
}

static int f_s3_map(struct yp *y, void *obj, const struct field *f)
{
    note_s3_opt(y, obj, f);
    return f_map(y, obj, f);
}

static int f_s3_bool(struct yp *y, void *obj, const struct field *f)
{
    note_s3_opt(y, obj, f);
    return f_bool(y, obj, f);
}

static const struct enum_spec origin_types = {
    "expected s3 or http",
    {{"s3", CONF_ORIGIN_S3}, {"http", CONF_ORIGIN_HTTP}},
};

static const struct enum_spec addressings = {
    "expected path or virtual",
    {{"path", CONF_ADDR_PATH}, {"virtual", CONF_ADDR_VIRTUAL}},
};

#define TIMEOUT_MAX (30 * DAY_MS)

static const struct field origin_fields[] = {
    {"name", f_string, offsetof(struct conf_origin, name), 0, 0, NULL, check_name},
    {"endpoint", f_string, offsetof(struct conf_origin, endpoint), 0, 0, NULL, check_endpoint},
    {"type", f_enum, offsetof(struct conf_origin, type), 0, 0, &origin_types, NULL},
    {"bucket", f_s3_string, offsetof(struct conf_origin, bucket), 0, 0, NULL, check_bucket},
    {"region", f_s3_string, offsetof(struct conf_origin, region), 0, 0, NULL, check_region},
    {"addressing", f_s3_enum, offsetof(struct conf_origin, addressing), 0, 0, &addressings, NULL},
    {"credentials", f_s3_map, 0, 0, 0, &cred_map, NULL},
    {"unsigned_payload", f_s3_bool, offsetof(struct conf_origin, unsigned_payload), 0, 0, NULL,
     NULL},
    {"tls_verify", f_bool, offsetof(struct conf_origin, tls_verify), 0, 0, NULL, NULL},
    {"ca_file", f_string, offsetof(struct conf_origin, ca_file), 0, 0, NULL, check_file},
    {"connect_timeout", f_duration_ms, offsetof(struct conf_origin, connect_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"first_byte_timeout", f_duration_ms, offsetof(struct conf_origin, first_byte_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"idle_timeout", f_duration_ms, offsetof(struct conf_origin, idle_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"keepalive_timeout", f_duration_ms, offsetof(struct conf_origin, keepalive_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"max_connections", f_count, offsetof(struct conf_origin, max_connections),
     1, UINT_MAX, NULL, NULL},
    {"max_idle_connections", f_count, offsetof(struct conf_origin, max_idle_connections),
     0, UINT_MAX, NULL, NULL},
};
static const struct map_spec origin_map = {origin_fields, ARRAY_LEN(origin_fields)};

static int origin_item(struct yp *y, void *obj, size_t idx)
{
    struct conf_origin *o;

    (void)idx;
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys");
    o = origin_append(obj);
    if (o == NULL)
        return yfail_oom(y);
    o->line = ev_line(y);
    return parse_map(y, &origin_map, o);
}

static int f_origins(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, origin_item, "origins", "origin");
}

static int host_item(struct yp *y, void *obj, size_t idx)
{
    const char *s, *msg;

    (void)idx;
    if (want_scalar(y, "expected a host name", &s) != 0)
        return -1;
    if ((msg = check_host_pattern(s)) != NULL)
        return yfail(y, ev_line(y), "%s", msg);
    if (dist_add_host(obj, s, ev_line(y)) != 0)
        return yfail_oom(y);
    return yp_next(y);
}

static int f_hosts(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, host_item, "host names", "host name");
}

static int f_dist_origin(struct yp *y, void *obj, const struct field *f)
{
    struct conf_distribution *d = obj;

    d->origin_line = ev_line(y);
    return f_string(y, obj, f);
}

static int query_key_item(struct yp *y, void *obj, size_t idx)
{
    struct conf_distribution *d = obj;
    const char *s;
    char **v;

    (void)idx;
    if (want_scalar(y, "expected a query parameter name", &s) != 0)
        return -1;
    /* a name as it appears before '=' on the wire: no separators */
    if (s[0] == '\0' || strlen(s) > 256 || strpbrk(s, "&=# ") != NULL)
        return yfail(y, ev_line(y), "expected a query parameter name without '&', '=', '#' or spaces");
    v = realloc(d->query_keys, (d->nquery_keys + 1) * sizeof *v);
    if (v == NULL)
        return yfail_oom(y);
    d->query_keys = v;
    if ((v[d->nquery_keys] = xstrdup(s)) == NULL)
        return yfail_oom(y);
    d->nquery_keys++;
    return yp_next(y);
}

static int f_query_keys(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, query_key_item, "query parameter names", "query parameter name");
}

const char *conf_methods_allow(enum conf_methods m)
{
    switch (m) {
    case CONF_METHODS_GET_HEAD: return "GET, HEAD";
    case CONF_METHODS_GET_HEAD_OPTIONS: return "GET, HEAD, OPTIONS";
    case CONF_METHODS_ALL: return "GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE";
    }
    WRONG("bad conf_methods");
}

#define METHODS_EXPECTED                                                                           \
    "expected [GET, HEAD], [GET, HEAD, OPTIONS] or [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]"

static int method_item(struct yp *y, void *obj, size_t idx)
{
    static const char *const names[] = {"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"};
    unsigned *mask = obj;
    const char *s;
    size_t i;

    (void)idx;
    if (want_scalar(y, "expected a method name", &s) != 0)
        return -1;
    for (i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(s, names[i]) == 0)
            break;
    if (i == ARRAY_LEN(names))
        return yfail(y, ev_line(y), "expected GET, HEAD, OPTIONS, PUT, POST, PATCH or DELETE");
    if (*mask & (1u << i))
        return yfail(y, ev_line(y), "%s given twice", names[i]);
    *mask |= 1u << i;
    return yp_next(y);
}

/* One of CloudFront's three sets, in any order. */
static int f_methods(struct yp *y, void *obj, const struct field *f)
{
    struct conf_distribution *d = obj;
    unsigned mask = 0, line = ev_line(y);

    (void)f;
    if (y->ev.type != YAML_SEQUENCE_START_EVENT)
        return yfail(y, line, METHODS_EXPECTED);
    if (parse_list(y, &mask, method_item, "method names", "method name") != 0)
        return -1;
    switch (mask) {
    case 0x3: d->methods = CONF_METHODS_GET_HEAD; break;
    case 0x7: d->methods = CONF_METHODS_GET_HEAD_OPTIONS; break;
    case 0x7f: d->methods = CONF_METHODS_ALL; break;
    default: return yfail(y, line, METHODS_EXPECTED);
    }
    return 0;
}

static const struct enum_spec query_policies = {
    "expected ignore, all or allow",
    {{"ignore", CONF_QUERY_IGNORE}, {"all", CONF_QUERY_ALL}, {"allow", CONF_QUERY_ALLOW}},
};

static const struct field dist_fields[] = {
    {"name", f_string, offsetof(struct conf_distribution, name), 0, 0, NULL, check_name},
    {"hosts", f_hosts, 0, 0, 0, NULL, NULL},
    {"origin", f_dist_origin, offsetof(struct conf_distribution, origin_name), 0, 0,
     NULL, check_name},
    {"path_prefix", f_string, offsetof(struct conf_distribution, path_prefix), 0, 0,
     NULL, check_path_prefix},
    {"key_prefix", f_string, offsetof(struct conf_distribution, key_prefix), 0, 0,
     NULL, check_key_prefix},
    {"query_string", f_enum, offsetof(struct conf_distribution, query), 0, 0, &query_policies, NULL},
    {"query_keys", f_query_keys, 0, 0, 0, NULL, NULL},
    {"default_ttl", f_duration_s, offsetof(struct conf_distribution, default_ttl_s),
     0, 3650 * DAY_MS, NULL, NULL},
    {"min_ttl", f_duration_s, offsetof(struct conf_distribution, min_ttl_s),
     0, 3650 * DAY_MS, NULL, NULL},
    {"max_ttl", f_duration_s, offsetof(struct conf_distribution, max_ttl_s),
     0, 3650 * DAY_MS, NULL, NULL},
    {"heuristic_max_ttl", f_duration_s, offsetof(struct conf_distribution, heuristic_max_s),
     0, 3650 * DAY_MS, NULL, NULL},
    {"negative_ttl_404", f_duration_s, offsetof(struct conf_distribution, negative_ttl_404_s),
     0, 1 * DAY_MS, NULL, NULL},
    {"negative_ttl_403", f_duration_s, offsetof(struct conf_distribution, negative_ttl_403_s),
     0, 1 * DAY_MS, NULL, NULL},
    {"pass_amz_meta", f_bool, offsetof(struct conf_distribution, pass_amz_meta), 0, 0, NULL, NULL},
    {"allowed_methods", f_methods, 0, 0, 0, NULL, NULL},
    {"max_request_body", f_size64, offsetof(struct conf_distribution, max_request_body), 0,
     16 * TiB, NULL, NULL},
};
static const struct map_spec dist_map = {dist_fields, ARRAY_LEN(dist_fields)};

static int dist_item(struct yp *y, void *obj, size_t idx)
{
    struct conf_distribution *d;

    (void)idx;
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys");
    d = dist_append(obj);
    if (d == NULL)
        return yfail_oom(y);
    d->line = ev_line(y);
    return parse_map(y, &dist_map, d);
}

static int f_dists(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, dist_item, "distributions", "distribution");
}

static const struct enum_spec log_levels = {
    "expected error, warn, info or debug",
    {{"error", LOG_LVL_ERROR}, {"warn", LOG_LVL_WARN}, {"info", LOG_LVL_INFO},
     {"debug", LOG_LVL_DEBUG}},
};

static const struct field log_fields[] = {
    {"level", f_enum, offsetof(struct conf, log_level), 0, 0, &log_levels, NULL},
    {"error_log", f_string, offsetof(struct conf, error_log), 0, 0, NULL, check_error_log},
    {"access_log", f_string, offsetof(struct conf, access_log), 0, 0, NULL, check_access_log},
};
static const struct map_spec log_map = {log_fields, ARRAY_LEN(log_fields)};

/* disk_size, disk_threads and disk_fsync mean nothing without disk_path:
 * remember where the first one was, conf_finish() says so */
static void note_disk_opt(struct yp *y, const struct field *f)
{
    if (y->c->disk_opt_line == 0) {
        y->c->disk_opt_line = ev_line(y);
        y->c->disk_opt_key = f->key;
    }
}

static int f_disk_size(struct yp *y, void *obj, const struct field *f)
{
    note_disk_opt(y, f);
    return f_size64(y, obj, f);
}

static int f_disk_count(struct yp *y, void *obj, const struct field *f)
{
    note_disk_opt(y, f);
    return f_count(y, obj, f);
}

static int f_disk_bool(struct yp *y, void *obj, const struct field *f)
{
    note_disk_opt(y, f);
    return f_bool(y, obj, f);
}

/* the disk cache's files go to DIR/XX/NAME and DIR/tmp/NAME */
#define DISK_PATH_MAX 3800

static const char *check_disk_path(const char *s)
{
    if (s[0] == '\0')
        return "expected a directory path";
    if (strlen(s) > DISK_PATH_MAX)
        return "expected a directory path of at most 3800 bytes";
    return NULL;
}

static const struct field cache_fields[] = {
    {"memory_size", f_size64, offsetof(struct conf, memory_cache_bytes), MiB, 16 * TiB, NULL, NULL},
    {"max_object_size", f_size64, offsetof(struct conf, max_object_bytes), 1, 16 * TiB, NULL, NULL},
    {"memory_max_object_size", f_size64, offsetof(struct conf, memory_max_object_bytes), 1,
     16 * TiB, NULL, NULL},
    {"sendfile", f_bool, offsetof(struct conf, sendfile), 0, 0, NULL, NULL},
    {"disk_path", f_string, offsetof(struct conf, disk_path), 0, 0, NULL, check_disk_path},
    {"disk_size", f_disk_size, offsetof(struct conf, disk_size_bytes), MiB, 1024 * TiB, NULL, NULL},
    {"disk_threads", f_disk_count, offsetof(struct conf, disk_threads), 1, 64, NULL, NULL},
    {"disk_fsync", f_disk_bool, offsetof(struct conf, disk_fsync), 0, 0, NULL, NULL},
    {"block_size", f_size, offsetof(struct conf, block_bytes), 64 * KiB, 64 * MiB, NULL, NULL},
    {"readahead_blocks", f_count, offsetof(struct conf, readahead_blocks), 0, 1024, NULL, NULL},
    {"orphan_fill_max", f_size64, offsetof(struct conf, orphan_fill_bytes), 0, 16 * TiB, NULL,
     NULL},
    {"reader_timeout", f_duration_ms, offsetof(struct conf, reader_timeout_ms), 1, TIMEOUT_MAX,
     NULL, NULL},
};
static const struct map_spec cache_map = {cache_fields, ARRAY_LEN(cache_fields)};

static const struct field limit_fields[] = {
    {"max_request_line", f_size, offsetof(struct conf, max_request_line), 64, MiB, NULL, NULL},
    {"max_head_bytes", f_size, offsetof(struct conf, max_head_bytes), 256, 64 * MiB, NULL, NULL},
    {"max_headers", f_count, offsetof(struct conf, max_headers), 1, 10000, NULL, NULL},
    {"max_ranges", f_count, offsetof(struct conf, max_ranges), 1, 1000, NULL, NULL},
    {"client_header_timeout", f_duration_ms, offsetof(struct conf, client_header_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"client_idle_timeout", f_duration_ms, offsetof(struct conf, client_idle_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"client_send_timeout", f_duration_ms, offsetof(struct conf, client_send_timeout_ms),
     1, TIMEOUT_MAX, NULL, NULL},
    {"max_keepalive_requests", f_count, offsetof(struct conf, max_keepalive_requests),
     1, UINT_MAX, NULL, NULL},
    {"max_connections", f_count, offsetof(struct conf, max_connections), 1, UINT_MAX, NULL, NULL},
    {"max_pipeline", f_count, offsetof(struct conf, max_pipeline), 1, 1024, NULL, NULL},
};
static const struct map_spec limit_map = {limit_fields, ARRAY_LEN(limit_fields)};

/* ---- fleet-wide invalidation: node, admin, redis, heartbeat ---- */

/* node ids name Redis keys and appear in JSON: a plain name */
static const char *check_node_id(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONF_NODE_ID_MAX || !all_name_chars(s, n))
        return "expected a name of 1-100 letters, digits, '.', '-' or '_'";
    return NULL;
}

static const char *check_pop(const char *s)
{
    size_t i, n = strlen(s);

    if (n > MAX_NAME)
        return "expected a label of at most 64 visible ASCII characters";
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            return "expected a label of at most 64 visible ASCII characters";
    return NULL;
}

static const char *check_state_dir(const char *s)
{
    if (s[0] == '\0')
        return "expected a directory path";
    if (strlen(s) > DISK_PATH_MAX)
        return "expected a directory path of at most 3800 bytes";
    return NULL;
}

static const char *check_token(const char *s)
{
    size_t i, n = strlen(s);

    if (n == 0 || n > CONF_ADMIN_TOKEN_MAX)
        return "expected a token of 1-512 visible ASCII characters";
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return "expected a token of 1-512 visible ASCII characters";
    return NULL;
}

/* redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]; fleet.c takes it apart */
static const char *check_redis_url(const char *s)
{
    static const char expected[] = "expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]";
    const char *p, *at, *slash, *hp;
    char host[MAX_HOSTNAME + 1];
    uint16_t port;
    size_t n;

    if (strncmp(s, "redis://", 8) != 0)
        return expected;
    p = s + 8;
    for (const char *q = p; *q != '\0'; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return expected;
    slash = strchr(p, '/');
    n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    at = memchr(p, '@', n);
    hp = at != NULL ? at + 1 : p;
    n -= (size_t)(hp - p);
    if (n == 0 || n > MAX_HOSTNAME + 8)
        return expected;
    char buf[MAX_HOSTNAME + 16];
    memcpy(buf, hp, n);
    buf[n] = '\0';
    /* a bare host gets the default port */
    if (strchr(buf, ':') == NULL || (buf[0] == '[' && buf[n - 1] == ']')) {
        if (n + 6 >= sizeof buf)
            return expected;
        memcpy(buf + n, ":6379", 6);
    }
    int rc = conf_split_hostport(buf, host, sizeof host, &port);
    if (rc == EDGE_ERANGE)
        return "expected redis://HOST:PORT with a port from 1 to 65535";
    if (rc != 0 || host[0] == '\0')
        return expected;
    if (slash != NULL && slash[1] != '\0') {
        uint64_t db;
        const char *end;
        if (parse_digits(slash + 1, &db, &end) != 0 || *end != '\0' || db > 100000)
            return "expected a database number from 0 to 100000 after the /";
    }
    return NULL;
}

static int token_item(struct yp *y, void *obj, size_t idx)
{
    struct conf *c = obj;
    const char *s, *msg;

    (void)idx;
    if (want_scalar(y, "expected a token string", &s) != 0)
        return -1;
    if ((msg = check_token(s)) != NULL)
        return yfail(y, ev_line(y), "%s", msg);
    if (c->nadmin_tokens == CONF_ADMIN_TOKENS_MAX)
        return yfail(y, ev_line(y), "at most 64 tokens");
    if (grow(&c->admin_tokens, c->nadmin_tokens, sizeof *c->admin_tokens) != 0 ||
        (c->admin_tokens[c->nadmin_tokens] = xstrdup(s)) == NULL)
        return yfail_oom(y);
    c->nadmin_tokens++;
    return yp_next(y);
}

static int f_admin_tokens(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, token_item, "tokens", "token");
}

#define F_AT_LINE(name, linefield, inner)                                                          \
    static int name(struct yp *y, void *obj, const struct field *f)                                \
    {                                                                                              \
        ((struct conf *)obj)->linefield = ev_line(y);                                              \
        return inner(y, obj, f);                                                                   \
    }
F_AT_LINE(f_node_id, node_id_line, f_string)
F_AT_LINE(f_admin_listen, admin_listen_line, f_string)
F_AT_LINE(f_redis_url, redis_url_line, f_string)
#undef F_AT_LINE

static const struct field node_fields[] = {
    {"id", f_node_id, offsetof(struct conf, node_id), 0, 0, NULL, check_node_id},
    {"pop", f_string, offsetof(struct conf, pop), 0, 0, NULL, check_pop},
    {"state_dir", f_string, offsetof(struct conf, state_dir), 0, 0, NULL, check_state_dir},
};
static const struct map_spec node_map = {node_fields, ARRAY_LEN(node_fields)};

static const struct field admin_tls_fields[] = {
    {"cert", f_string, offsetof(struct conf, admin_tls_cert), 0, 0, NULL, check_file},
    {"key", f_string, offsetof(struct conf, admin_tls_key), 0, 0, NULL, check_file},
};
static const struct map_spec admin_tls_map = {admin_tls_fields, ARRAY_LEN(admin_tls_fields)};

static int f_admin_tls(struct yp *y, void *obj, const struct field *f)
{
    ((struct conf *)obj)->admin_tls_line = ev_line(y);
    return f_map(y, obj, f);
}

static const struct field admin_fields[] = {
    {"listen", f_admin_listen, offsetof(struct conf, admin_listen), 0, 0, NULL, check_listen},
    {"tokens", f_admin_tokens, 0, 0, 0, NULL, NULL},
    {"token_file", f_string, offsetof(struct conf, admin_token_file), 0, 0, NULL, check_file},
    {"tls", f_admin_tls, 0, 0, 0, &admin_tls_map, NULL},
};
static const struct map_spec admin_map = {admin_fields, ARRAY_LEN(admin_fields)};

static int sentinel_item(struct yp *y, void *obj, size_t idx)
{
    struct conf *c = obj;
    const char *s, *msg;
    char host[MAX_HOSTNAME + 1];
    uint16_t port;

    (void)idx;
    if (want_scalar(y, "expected host:port", &s) != 0)
        return -1;
    if ((msg = check_listen(s)) != NULL)
        return yfail(y, ev_line(y), "%s", msg);
    if (conf_split_hostport(s, host, sizeof host, &port) != 0 || host[0] == '\0')
        return yfail(y, ev_line(y), "expected host:port with a host");
    if (c->nredis_sentinel_addrs == CONF_SENTINELS_MAX)
        return yfail(y, ev_line(y), "at most 16 Sentinels");
    if (grow(&c->redis_sentinel_addrs, c->nredis_sentinel_addrs,
             sizeof *c->redis_sentinel_addrs) != 0 ||
        (c->redis_sentinel_addrs[c->nredis_sentinel_addrs] = xstrdup(s)) == NULL)
        return yfail_oom(y);
    c->nredis_sentinel_addrs++;
    return yp_next(y);
}

static int f_sentinel_addrs(struct yp *y, void *obj, const struct field *f)
{
    (void)f;
    return parse_list(y, obj, sentinel_item, "Sentinel addresses (host:port)",
                      "Sentinel address");
}

static const struct field sentinel_fields[] = {
    {"master", f_string, offsetof(struct conf, redis_sentinel_master), 0, 0, NULL, check_name},
    {"addrs", f_sentinel_addrs, 0, 0, 0, NULL, NULL},
};
static const struct map_spec sentinel_map = {sentinel_fields, ARRAY_LEN(sentinel_fields)};

static int f_sentinel(struct yp *y, void *obj, const struct field *f)
{
    ((struct conf *)obj)->sentinel_line = ev_line(y);
    return f_map(y, obj, f);
}

static const struct field redis_fields[] = {
    {"url", f_redis_url, offsetof(struct conf, redis_url), 0, 0, NULL, check_redis_url},
    {"username", f_string, offsetof(struct conf, redis_username), 0, 0, NULL, check_secret},
    {"password", f_string, offsetof(struct conf, redis_password), 0, 0, NULL, check_secret},
    {"stream_maxlen", f_count, offsetof(struct conf, redis_stream_maxlen), 100, 1000000000, NULL,
     NULL},
    {"sentinel", f_sentinel, 0, 0, 0, &sentinel_map, NULL},
};
static const struct map_spec redis_map = {redis_fields, ARRAY_LEN(redis_fields)};

static int f_node(struct yp *y, void *obj, const struct field *f)
{
    ((struct conf *)obj)->node_line = ev_line(y);
    return f_map(y, obj, f);
}

static int f_admin(struct yp *y, void *obj, const struct field *f)
{
    ((struct conf *)obj)->admin_line = ev_line(y);
    return f_map(y, obj, f);
}

static int f_redis(struct yp *y, void *obj, const struct field *f)
{
    ((struct conf *)obj)->redis_line = ev_line(y);
    return f_map(y, obj, f);
}

static const struct field root_fields[] = {
    {"listen", f_listen, 0, 0, 0, NULL, NULL},
    {"log", f_map, 0, 0, 0, &log_map, NULL},
    {"cache", f_map, 0, 0, 0, &cache_map, NULL},
    {"limits", f_map, 0, 0, 0, &limit_map, NULL},
    {"origins", f_origins, 0, 0, 0, NULL, NULL},
    {"distributions", f_dists, 0, 0, 0, NULL, NULL},
    {"workers", f_count, offsetof(struct conf, workers), 0, 1024, NULL, NULL},
    {"node", f_node, 0, 0, 0, &node_map, NULL},
    {"admin", f_admin, 0, 0, 0, &admin_map, NULL},
    {"redis", f_redis, 0, 0, 0, &redis_map, NULL},
    /* a node is gone after 4 missed heartbeats */
    {"heartbeat", f_duration_ms, offsetof(struct conf, heartbeat_ms), 10, 60 * SEC_MS, NULL,
     NULL},
};
static const struct map_spec root_map = {root_fields, ARRAY_LEN(root_fields)};

_Static_assert(sizeof(enum conf_addressing) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_cred_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_query_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_ktls) == sizeof(int), "enum size");

/* One YAML document holding one mapping. */
static int parse_stream(struct yp *y)
{
    if (yp_next(y) != 0) /* STREAM-START */
        return -1;
    if (yp_next(y) != 0)
        return -1;
    /* An empty file has no meaningful line: say 1. */
    if (y->ev.type == YAML_STREAM_END_EVENT)
        return yfail(y, 1, "empty configuration, expected a mapping of keys");
    /* DOCUMENT-START, then the root node */
    if (yp_next(y) != 0)
        return -1;
    if (ev_is_null(y))
        return yfail(y, 1, "empty configuration, expected a mapping of keys");
    if (y->ev.type != YAML_MAPPING_START_EVENT)
        return yfail(y, ev_line(y), "expected a mapping of keys at the top level");
    y->c->line = ev_line(y);
    if (parse_map(y, &root_map, y->c) != 0)
        return -1;
    /* past DOCUMENT-END: the stream must end here */
    if (yp_next(y) != 0)
        return -1;
    if (y->ev.type != YAML_STREAM_END_EVENT)
        return yfail(y, ev_line(y), "expected a single YAML document");
    return 0;
}

static int load(struct conf *c, const char *yaml, size_t len, char *err)
{
    struct yp y;
    int rc;

    if (len > CONF_MAX_FILE_BYTES)
        return fail(err, NULL, 0, "%.200s: larger than %u bytes", c->path,
                    (unsigned)CONF_MAX_FILE_BYTES);
    memset(&y, 0, sizeof y);
    y.c = c;
    y.err = err;
    y.input = yaml;
    y.input_len = len;
    if (!yaml_parser_initialize(&y.parser))
        return yfail_oom(&y);
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)yaml, len);
    rc = parse_stream(&y);
    if (y.have_ev)
        yaml_event_delete(&y.ev);
    yaml_parser_delete(&y.parser);
    if (rc != 0)
        return -1;
    return conf_finish(c, err);
}

static int set_path(struct conf *c, const char *name, char *err)
{
    char *p = xstrdup(name != NULL ? name : "<config>");

    if (p == NULL)
        return fail(err, NULL, 0, "out of memory");
    free(c->path);
    c->path = p;
    return 0;
}

int conf_load_string(struct conf *c, const char *name, const char *yaml, size_t len,
                     char *err)
{
    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(yaml || len == 0);
    if (set_path(c, name, err) != 0)
        return -1;
    return load(c, yaml != NULL ? yaml : "", len, err);
}

int conf_load_file(struct conf *c, const char *path, char *err)
{
    size_t len = 0, cap = CONF_MAX_FILE_BYTES + 1;
    char *buf;
    int fd, rc, e;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(path);
    if (set_path(c, path, err) != 0)
        return -1;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, NULL, 0, "%.200s: cannot open: %s", path, strerror(errno));
    /* Read one byte more than allowed to tell "too large" apart. */
    buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return fail(err, NULL, 0, "%.200s: out of memory", path);
    }
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            free(buf);
            close(fd);
            return fail(err, NULL, 0, "%.200s: cannot read: %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    rc = load(c, buf, len, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ command line */

int conf_add_listen(struct conf *c, const char *address, char *err)
{
    const char *msg;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(address);
    if ((msg = check_listen(address)) != NULL)
        return fail(err, NULL, 0, "listen address \"%.200s\": %s", address, msg);
    if (listen_append(c, address, 0) == NULL)
        return fail(err, NULL, 0, "out of memory");
    return 0;
}

int conf_add_tls_listen(struct conf *c, const char *address, const char *const *certs,
                        const char *const *keys, size_t n, char *err)
{
    struct conf_listen *l;
    struct conf_tls_cert *e;
    const char *msg;
    size_t i;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(address);
    if ((msg = check_listen(address)) != NULL)
        return fail(err, NULL, 0, "listen address \"%.200s\": %s", address, msg);
    l = listen_append(c, address, 0);
    if (l == NULL || (l->tls = tls_new()) == NULL)
        return fail(err, NULL, 0, "out of memory");
    for (i = 0; i < n; i++) {
        AN(certs[i]);
        AN(keys[i]);
        e = tls_cert_append(l->tls);
        if (e == NULL || (e->cert = xstrdup(certs[i])) == NULL ||
            (e->key = xstrdup(keys[i])) == NULL)
            return fail(err, NULL, 0, "out of memory");
    }
    return 0;
}

int conf_add_origin_url(struct conf *c, const char *url, char *err)
{
    struct span bucket = {NULL, 0}, region = {NULL, 0}, pbucket;
    struct conf_origin *o;
    struct conf_distribution *d;
    struct url u;
    const char *msg, *host, *p;
    char *ep = NULL, *b = NULL, *r = NULL, hbuf[MAX_HOSTNAME + 1];
    size_t hlen, s3_at = 0, eplen, i;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(url);
#define URL_FAIL(m) fail(err, NULL, 0, "origin URL \"%.200s\": %s", url, (m))
    if ((msg = url_parse(url, &u)) != NULL)
        return URL_FAIL(msg);
    /* Host names are case-insensitive (RFC 3986 3.2.2); match lowercase. */
    hlen = u.host_len;
    AN(hlen < sizeof hbuf);
    for (i = 0; i < hlen; i++)
        hbuf[i] = (char)lower((unsigned char)u.host[i]);
    hbuf[hlen] = '\0';
    host = hbuf;
    if (u.v6 || !aws_host_split(host, hlen, &bucket, &region, &s3_at))
        bucket.n = region.n = s3_at = 0;

    /* Path: "", "/", "/BUCKET" or "/BUCKET/" */
    p = u.path[0] == '/' ? u.path + 1 : u.path;
    pbucket.p = p;
    pbucket.n = strcspn(p, "/");
    if (p[pbucket.n] == '/' && p[pbucket.n + 1] != '\0')
        return URL_FAIL("expected at most one path segment, the bucket");
    if (bucket.n != 0 && pbucket.n != 0)
        return URL_FAIL("expected the bucket in the host name or in the path, not both");
    if (bucket.n == 0 && pbucket.n == 0)
        return URL_FAIL("expected a bucket: http(s)://host[:port]/BUCKET or "
                        "https://BUCKET.s3.REGION.amazonaws.com");
    if (bucket.n == 0)
        bucket = pbucket;
    else
        host += s3_at, hlen -= s3_at; /* the endpoint is the host without "BUCKET." */
    if (region.n == 0) {
        region.p = DEFAULT_REGION;
        region.n = strlen(DEFAULT_REGION);
    }

    /* "https://" + "[" host "]" + ":65535" */
    eplen = 8 + hlen + 2 + 6 + 1;
    ep = malloc(eplen);
    b = xstrndup(bucket.p, bucket.n);
    r = xstrndup(region.p, region.n);
    if (ep == NULL || b == NULL || r == NULL)
        goto oom;
    if ((msg = check_bucket(b)) != NULL || (msg = check_region(r)) != NULL) {
        free(ep), free(b), free(r);
        return URL_FAIL(msg);
    }
    if (u.has_port)
        snprintf(ep, eplen, "%s://%s%.*s%s:%u", u.tls ? "https" : "http", u.v6 ? "[" : "",
                 (int)hlen, host, u.v6 ? "]" : "", u.port);
    else
        snprintf(ep, eplen, "%s://%s%.*s%s", u.tls ? "https" : "http", u.v6 ? "[" : "",
                 (int)hlen, host, u.v6 ? "]" : "");

    o = origin_append(c);
    if (o == NULL)
        goto oom;
    o->name = xstrdup("default");
    o->endpoint = ep;
    o->bucket = b;
    o->region = r;
    ep = b = r = NULL;
    o->addressing = pbucket.n != 0 ? CONF_ADDR_PATH : CONF_ADDR_VIRTUAL;
    o->cred_source = CONF_CRED_ENV;
    if (o->name == NULL)
        goto oom;

    d = dist_append(c);
    if (d == NULL)
        goto oom;
    d->name = xstrdup("default");
    d->origin_name = xstrdup("default");
    if (d->name == NULL || d->origin_name == NULL || dist_add_host(d, "*", 0) != 0)
        goto oom;
    return 0;
oom:
    free(ep);
    free(b);
    free(r);
    return fail(err, NULL, 0, "out of memory");
#undef URL_FAIL
}

int conf_add_plain_origin_url(struct conf *c, const char *url, char *err)
{
    struct conf_origin *o;
    struct conf_distribution *d;
    struct url u;
    const char *msg;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(url);
    if ((msg = url_parse(url, &u)) != NULL)
        return fail(err, NULL, 0, "plain origin URL \"%.200s\": %s", url, msg);
    if (u.path[0] != '\0' && strcmp(u.path, "/") != 0)
        return fail(err, NULL, 0,
                    "plain origin URL \"%.200s\": expected http(s)://host[:port] without a "
                    "path (requests keep their own path)",
                    url);
    o = origin_append(c);
    if (o == NULL)
        return fail(err, NULL, 0, "out of memory");
    o->type = CONF_ORIGIN_HTTP;
    o->name = xstrdup("default");
    o->endpoint = xstrndup(url, strlen(url) - (u.path[0] == '/' ? 1 : 0));
    d = dist_append(c);
    if (o->name == NULL || o->endpoint == NULL || d == NULL)
        return fail(err, NULL, 0, "out of memory");
    d->name = xstrdup("default");
    d->origin_name = xstrdup("default");
    if (d->name == NULL || d->origin_name == NULL || dist_add_host(d, "*", 0) != 0)
        return fail(err, NULL, 0, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ TLS files */

/*
 * Read a whole file of at most max bytes. NULL, or what went wrong (in
 * why[], or a static string); *len may exceed max to say "too large".
 */
static unsigned char *slurp(const char *path, size_t max, size_t *len, char *why, size_t cap)
{
    unsigned char *buf;
    struct stat st;
    int fd, e;

    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, cap, "cannot read %.200s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, cap, "cannot read %.200s: not a regular file", path);
        close(fd);
        return NULL;
    }
    buf = malloc(max + 1);
    if (buf == NULL) {
        snprintf(why, cap, "out of memory");
        close(fd);
        return NULL;
    }
    while (*len < max + 1) {
        ssize_t n = read(fd, buf + *len, max + 1 - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            snprintf(why, cap, "cannot read %.200s: %s", path, strerror(e));
            OPENSSL_cleanse(buf, max + 1);
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    close(fd);
    return buf;
}

/* Never ask for a passphrase: a daemon has no one to ask. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* The last OpenSSL error, for messages; clears the queue. */
static const char *ossl_why(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

void conf_tls_material_fini(struct conf_tls_material *m)
{
    if (m == NULL)
        return;
    X509_free(m->leaf);
    sk_X509_pop_free(m->chain, X509_free);
    EVP_PKEY_free(m->key);
    free(m->ocsp);
    memset(m, 0, sizeof *m);
}

static int load_chain(const struct conf_tls_cert *e, struct conf_tls_material *m, char *why,
                      size_t cap)
{
    unsigned char *buf;
    size_t len;
    BIO *bio;
    X509 *x;

    buf = slurp(e->cert, MAX_PEM_BYTES, &len, why, cap);
    if (buf == NULL)
        return -1;
    if (len > MAX_PEM_BYTES) {
        snprintf(why, cap, "%.200s is larger than %u bytes", e->cert, (unsigned)MAX_PEM_BYTES);
        free(buf);
        return -1;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    m->chain = sk_X509_new_null();
    if (bio == NULL || m->chain == NULL) {
        snprintf(why, cap, "out of memory");
        goto fail;
    }
    m->leaf = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
    if (m->leaf == NULL) {
        ERR_clear_error();
        snprintf(why, cap, "expected a PEM certificate in %.200s", e->cert);
        goto fail;
    }
    /* the rest of the file is the chain, up to the end of the PEM blocks */
    while ((x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (!sk_X509_push(m->chain, x)) {
            X509_free(x);
            snprintf(why, cap, "out of memory");
            goto fail;
        }
    }
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        snprintf(why, cap, "certificate %d of the chain in %.200s is not valid PEM (%s)",
                 sk_X509_num(m->chain) + 2, e->cert, ossl_why());
        goto fail;
    }
    ERR_clear_error();
    BIO_free(bio);
    free(buf);
    return 0;
fail:
    BIO_free(bio);
    free(buf);
    return -1;
}

static int load_key(const struct conf_tls_cert *e, struct conf_tls_material *m, char *why,
                    size_t cap)
{
    unsigned char *buf;
    unsigned long oe;
    size_t len;
    BIO *bio;

    buf = slurp(e->key, MAX_PEM_BYTES, &len, why, cap);
    if (buf == NULL)
        return -1;
    if (len > MAX_PEM_BYTES) {
        snprintf(why, cap, "%.200s is larger than %u bytes", e->key, (unsigned)MAX_PEM_BYTES);
        OPENSSL_cleanse(buf, MAX_PEM_BYTES + 1);
        free(buf);
        return -1;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL)
        m->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (m->key != NULL) {
        ERR_clear_error();
        return 0;
    }
    oe = ERR_peek_last_error();
    if (ERR_GET_LIB(oe) == ERR_LIB_PEM && (ERR_GET_REASON(oe) == PEM_R_BAD_PASSWORD_READ ||
                                           ERR_GET_REASON(oe) == PEM_R_PROBLEMS_GETTING_PASSWORD)) {
        ERR_clear_error();
        snprintf(why, cap,
                 "the key in %.200s is encrypted; expected an unencrypted key "
                 "(readable by s3edge's user only)",
                 e->key);
    } else {
        ERR_clear_error();
        snprintf(why, cap, "expected a PEM private key in %.200s", e->key);
    }
    return -1;
}

static int load_ocsp(const struct conf_tls_cert *e, struct conf_tls_material *m, char *why,
                     size_t cap)
{
    OCSP_CERTID *id = NULL;
    OCSP_BASICRESP *basic = NULL;
    OCSP_RESPONSE *resp = NULL;
    const unsigned char *p;
    X509 *issuer = NULL;
    int status = -1, i, rc = -1;
    size_t len;

    m->ocsp = slurp(e->ocsp, CONF_OCSP_MAX_BYTES, &len, why, cap);
    if (m->ocsp == NULL)
        return -1;
    m->ocsp_len = len;
    if (len > CONF_OCSP_MAX_BYTES) {
        snprintf(why, cap, "%.200s is larger than %u bytes", e->ocsp,
                 (unsigned)CONF_OCSP_MAX_BYTES);
        return -1;
    }
    p = m->ocsp;
    resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (resp == NULL || p != m->ocsp + len) {
        ERR_clear_error();
        snprintf(why, cap, "expected a DER OCSP response in %.200s", e->ocsp);
        goto out;
    }
    status = OCSP_response_status(resp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(why, cap, "the OCSP response in %.200s has status %s, expected successful",
                 e->ocsp, OCSP_response_status_str(status));
        goto out;
    }
    basic = OCSP_response_get1_basic(resp);
    if (basic == NULL) {
        ERR_clear_error();
        snprintf(why, cap, "expected a basic OCSP response in %.200s", e->ocsp);
        goto out;
    }
    /* With the issuer at hand, the response must speak of this certificate
     * (RFC 6960 4.1.1, CertID); without it that cannot be told here. */
    for (i = 0; i < sk_X509_num(m->chain); i++)
        if (X509_check_issued(sk_X509_value(m->chain, i), m->leaf) == X509_V_OK)
            issuer = sk_X509_value(m->chain, i);
    if (issuer != NULL) {
        id = OCSP_cert_to_id(NULL, m->leaf, issuer);
        if (id == NULL) {
            snprintf(why, cap, "out of memory");
            goto out;
        }
        if (!OCSP_resp_find_status(basic, id, &status, NULL, NULL, NULL, NULL)) {
            snprintf(why, cap, "the OCSP response in %.200s is not for the certificate in %.200s",
                     e->ocsp, e->cert);
            goto out;
        }
        if (status == V_OCSP_CERTSTATUS_REVOKED) {
            snprintf(why, cap,
                     "the OCSP response in %.200s says the certificate in %.200s is "
                     "revoked",
                     e->ocsp, e->cert);
            goto out;
        }
    }
    rc = 0;
out:
    ERR_clear_error();
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(basic);
    OCSP_RESPONSE_free(resp);
    return rc;
}

int conf_tls_cert_load(const struct conf *c, size_t li, size_t ci, struct conf_tls_material *m,
                       char *err)
{
    const struct conf_tls_cert *e;
    char why[CONF_ERR_MAX];

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(li < c->nlistens);
    AN(c->listens[li].tls);
    AN(ci < c->listens[li].tls->ncerts);
    e = &c->listens[li].tls->certs[ci];
    memset(m, 0, sizeof *m);
#define CERT_FAIL(what, at)                                                                        \
    do {                                                                                           \
        conf_tls_material_fini(m);                                                                 \
        return fail(err, c->path, (at) ? (at) : e->line,                                           \
                    "listen[%zu].tls.certificates[%zu].%s: %s", li, ci, (what), why);              \
    } while (0)
    if (e->cert == NULL) {
        snprintf(why, sizeof why, "missing, expected a PEM certificate file");
        CERT_FAIL("cert", e->line);
    }
    if (e->key == NULL) {
        snprintf(why, sizeof why, "missing, expected a PEM private key file");
        CERT_FAIL("key", e->line);
    }
    if (load_chain(e, m, why, sizeof why) != 0)
        CERT_FAIL("cert", e->cert_line);
    if (load_key(e, m, why, sizeof why) != 0)
        CERT_FAIL("key", e->key_line);
    if (X509_check_private_key(m->leaf, m->key) != 1) {
        ERR_clear_error();
        snprintf(why, sizeof why, "the key in %.200s does not match the certificate in %.200s",
                 e->key, e->cert);
        CERT_FAIL("key", e->key_line);
    }
    if (e->ocsp != NULL && load_ocsp(e, m, why, sizeof why) != 0)
        CERT_FAIL("ocsp", e->ocsp_line);
#undef CERT_FAIL
    return 0;
}

int conf_tls_ticket_keys_load(const struct conf *c, size_t li, unsigned char **keys, size_t *n,
                              char *err)
{
    const size_t max = CONF_TICKET_KEYS_MAX * CONF_TICKET_KEY_LEN;
    const struct conf_tls *t;
    char why[CONF_ERR_MAX];
    unsigned char *buf;
    size_t len, i, j;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    AN(li < c->nlistens);
    t = c->listens[li].tls;
    AN(t);
    AN(t->ticket_key_file);
    *keys = NULL;
    *n = 0;
#define KEYS_FAIL()                                                                                \
    fail(err, c->path, t->ticket_key_file_line ? t->ticket_key_file_line : t->line,                \
         "listen[%zu].tls.ticket_key_file: %s", li, why)
    buf = slurp(t->ticket_key_file, max, &len, why, sizeof why);
    if (buf == NULL)
        return KEYS_FAIL();
    if (len == 0 || len % CONF_TICKET_KEY_LEN != 0 || len > max) {
        if (len > max)
            snprintf(why, sizeof why, "expected at most %u keys of %u bytes in %.200s",
                     (unsigned)CONF_TICKET_KEYS_MAX, (unsigned)CONF_TICKET_KEY_LEN,
                     t->ticket_key_file);
        else
            snprintf(why, sizeof why,
                     "expected %u bytes per key in %.200s (made with "
                     "openssl rand %u), found %zu bytes",
                     (unsigned)CONF_TICKET_KEY_LEN, t->ticket_key_file,
                     (unsigned)CONF_TICKET_KEY_LEN, len);
        OPENSSL_cleanse(buf, max + 1);
        free(buf);
        return KEYS_FAIL();
    }
    /* a ticket names its key by the first 16 bytes */
    for (i = 0; i < len / CONF_TICKET_KEY_LEN; i++) {
        for (j = 0; j < i; j++) {
            if (memcmp(buf + i * CONF_TICKET_KEY_LEN, buf + j * CONF_TICKET_KEY_LEN, 16) == 0) {
                snprintf(why, sizeof why,
                         "keys %zu and %zu in %.200s have the same name (their "
                         "first 16 bytes)",
                         j + 1, i + 1, t->ticket_key_file);
                OPENSSL_cleanse(buf, max + 1);
                free(buf);
                return KEYS_FAIL();
            }
        }
    }
#undef KEYS_FAIL
    *keys = buf;
    *n = len / CONF_TICKET_KEY_LEN;
    return 0;
}

/* ------------------------------------------------------------ finish */

struct dupent {
    const char *key;
    size_t a, b; /* position: list index, item index */
};

static int dupent_cmp(const void *pa, const void *pb)
{
    const struct dupent *x = pa, *y = pb;
    int r = strcmp(x->key, y->key);

    if (r != 0)
        return r;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    if (x->b != y->b)
        return x->b < y->b ? -1 : 1;
    return 0;
}

static int dupent_key_cmp(const void *pa, const void *pb)
{
    const struct dupent *x = pa, *y = pb;

    return strcmp(x->key, y->key);
}

static bool pos_before(const struct dupent *x, const struct dupent *y)
{
    return x->a < y->a || (x->a == y->a && x->b < y->b);
}

/*
 * Sort v by key and position; if some key repeats, give the repetition
 * that comes first in the file and the entry it repeats. O(n log n): a
 * 1 MiB file can hold a quarter million host names.
 */
static bool dup_find(struct dupent *v, size_t n, struct dupent *first, struct dupent *again)
{
    size_t i, g = 0;
    bool found = false;

    if (n < 2)
        return false;
    qsort(v, n, sizeof *v, dupent_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(v[i].key, v[g].key) != 0) {
            g = i;
            continue;
        }
        if (i == g + 1 && (!found || pos_before(&v[i], again))) {
            *first = v[g];
            *again = v[i];
            found = true;
        }
    }
    return found;
}

static int finish_origin(struct conf *c, size_t i, char *err)
{
    struct conf_origin *o = &c->origins[i];
    const char *file = c->path, *msg;
    struct span bucket, region;
    size_t s3_at, n;
    struct url u;
    bool dflt;

    if (o->name == NULL)
        return fail(err, file, o->line, "origins[%zu].name: missing, expected a name", i);
    if (o->endpoint == NULL)
        return fail(err, file, o->line,
                    "origins[%zu].endpoint: missing, expected http(s)://host[:port]", i);
    if ((msg = check_endpoint(o->endpoint)) != NULL)
        return fail(err, file, o->line, "origins[%zu].endpoint: %s", i, msg);
    AZ(url_parse(o->endpoint, &u));

    free(o->host);
    free(o->vhost);
    free(o->authority);
    o->vhost = o->authority = NULL;
    o->host = xstrndup(u.host, u.host_len);
    if (o->host == NULL)
        return fail(err, NULL, 0, "out of memory");
    for (n = 0; o->host[n] != '\0'; n++)
        o->host[n] = (char)lower((unsigned char)o->host[n]);
    o->tls = u.tls;
    o->port = u.port;
    dflt = o->port == (o->tls ? 443 : 80);

    if (o->type == CONF_ORIGIN_HTTP) {
        /* a plain origin: requests go to the endpoint as they came */
        if (o->s3_opt_line != 0)
            return fail(err, file, o->s3_opt_line,
                        "origins[%zu].%s: only for type s3 origins, this one is type http", i,
                        o->s3_opt_key);
        o->vhost = xstrdup(o->host);
        n = strlen(o->host) + 2 + 7;
        o->authority = malloc(n);
        if (o->vhost == NULL || o->authority == NULL)
            return fail(err, NULL, 0, "out of memory");
        snprintf(o->authority, n, "%s%s%s", u.v6 ? "[" : "", o->vhost, u.v6 ? "]" : "");
        if (!dflt)
            snprintf(o->authority + strlen(o->authority), 7, ":%u", o->port);
        return 0;
    }

    if (o->region == NULL) {
        /* s3.eu-west-1.amazonaws.com names its region */
        if (!u.v6 && aws_host_split(o->host, u.host_len, &bucket, &region, &s3_at) &&
            region.n != 0)
            o->region = xstrndup(region.p, region.n);
        else
            o->region = xstrdup(DEFAULT_REGION);
        if (o->region == NULL)
            return fail(err, NULL, 0, "out of memory");
    }

    if (o->addressing == CONF_ADDR_PATH && o->bucket == NULL)
        return fail(err, file, o->line,
                    "origins[%zu].bucket: missing, path addressing needs a bucket", i);
    if (o->addressing == CONF_ADDR_VIRTUAL && o->bucket != NULL) {
        /* The bucket becomes a DNS label in front of the endpoint host. */
        if (u.v6 || is_ipv4_literal(o->host))
            return fail(err, file, o->line,
                        "origins[%zu].addressing: virtual needs a host name in the "
                        "endpoint, not an IP address; use path",
                        i);
        for (n = 0; o->bucket[n] != '\0'; n++)
            if (o->bucket[n] == '_' || (o->bucket[n] >= 'A' && o->bucket[n] <= 'Z'))
                break;
        if (o->bucket[n] != '\0' || !is_dns_name(o->bucket, n))
            return fail(err, file, o->line,
                        "origins[%zu].bucket: virtual addressing needs a lowercase "
                        "DNS-compatible bucket name; use path",
                        i);
    }
    if (o->addressing == CONF_ADDR_VIRTUAL && o->bucket != NULL) {
        n = strlen(o->bucket) + 1 + strlen(o->host) + 1;
        o->vhost = malloc(n);
        if (o->vhost != NULL)
            snprintf(o->vhost, n, "%s.%s", o->bucket, o->host);
    } else {
        o->vhost = xstrdup(o->host);
    }
    if (o->vhost == NULL)
        return fail(err, NULL, 0, "out of memory");
    n = strlen(o->vhost) + 2 + 7;
    o->authority = malloc(n);
    if (o->authority == NULL)
        return fail(err, NULL, 0, "out of memory");
    snprintf(o->authority, n, "%s%s%s", u.v6 ? "[" : "", o->vhost, u.v6 ? "]" : "");
    if (!dflt)
        snprintf(o->authority + strlen(o->authority), 7, ":%u", o->port);

    if (o->cred_source == CONF_CRED_STATIC) {
        if (o->access_key_id == NULL)
            return fail(err, file, o->line,
                        "origins[%zu].credentials.access_key_id: missing, source static needs it",
                        i);
        if (o->secret_access_key == NULL)
            return fail(err, file, o->line,
                        "origins[%zu].credentials.secret_access_key: missing, source static "
                        "needs it",
                        i);
    } else if (o->access_key_id != NULL || o->secret_access_key != NULL ||
               o->session_token != NULL) {
        /* Keys that would be silently ignored are a mistake waiting. */
        return fail(err, file, o->line,
                    "origins[%zu].credentials.source: keys are given, expected static", i);
    }
    return 0;
}

/* Everything a TLS listener's files and settings must satisfy before the
 * daemon builds its contexts from them. */
static int finish_tls(struct conf *c, size_t i, char *err)
{
    const struct conf_tls *t = c->listens[i].tls;
    struct conf_tls_material m;
    unsigned char *keys;
    SSL_CTX *ctx;
    size_t j, n;
    int ok;

    if (t->ncerts == 0)
        return fail(err, c->path, t->line,
                    "listen[%zu].tls.certificates: missing, expected at least one "
                    "certificate with its key",
                    i);
    for (j = 0; j < t->ncerts; j++) {
        if (conf_tls_cert_load(c, i, j, &m, err) != 0)
            return -1;
        conf_tls_material_fini(&m);
    }
    if (t->ciphers != NULL && !(t->protocols & CONF_TLS_V12))
        return fail(err, c->path, t->ciphers_line,
                    "listen[%zu].tls.ciphers: set for TLSv1.2, which protocols leaves out", i);
    if (t->ciphersuites != NULL && !(t->protocols & CONF_TLS_V13))
        return fail(err, c->path, t->ciphersuites_line,
                    "listen[%zu].tls.ciphersuites: set for TLSv1.3, which protocols leaves out", i);
    if (t->ciphers != NULL) {
        ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == NULL)
            return fail(err, NULL, 0, "out of memory");
        /* fails when no TLS 1.2 cipher is left */
        ok = SSL_CTX_set_cipher_list(ctx, t->ciphers);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        if (!ok)
            return fail(err, c->path, t->ciphers_line,
                        "listen[%zu].tls.ciphers: OpenSSL knows no TLS 1.2 cipher in \"%.200s\"", i,
                        t->ciphers);
    }
    if (t->ticket_key_file != NULL) {
        if (!t->session_tickets)
            return fail(err, c->path, t->ticket_key_file_line ? t->ticket_key_file_line : t->line,
                        "listen[%zu].tls.ticket_key_file: given, but session_tickets is false", i);
        if (conf_tls_ticket_keys_load(c, i, &keys, &n, err) != 0)
            return -1;
        OPENSSL_cleanse(keys, n * CONF_TICKET_KEY_LEN);
        free(keys);
    }
    return 0;
}

static int finish_listens(struct conf *c, char *err)
{
    struct dupent *v, first, again;
    const char *msg;
    size_t i;

    if (c->nlistens == 0)
        return fail(err, c->path, c->line, "listen: at least one address required");
    for (i = 0; i < c->nlistens; i++) {
        if (c->listens[i].address == NULL)
            return fail(err, c->path, c->listens[i].line,
                        "listen[%zu].address: missing, expected host:port", i);
        if ((msg = check_listen(c->listens[i].address)) != NULL)
            return fail(err, c->path, c->listens[i].line, "listen[%zu]: %s", i, msg);
    }
    v = calloc(c->nlistens, sizeof *v);
    if (v == NULL)
        return fail(err, NULL, 0, "out of memory");
    for (i = 0; i < c->nlistens; i++)
        v[i] = (struct dupent){c->listens[i].address, i, 0};
    if (dup_find(v, c->nlistens, &first, &again)) {
        free(v);
        return fail(err, c->path, c->listens[again.a].line,
                    "listen[%zu]: \"%s\" is already listed", again.a, again.key);
    }
    free(v);
    for (i = 0; i < c->nlistens; i++)
        if (c->listens[i].tls != NULL && finish_tls(c, i, err) != 0)
            return -1;
    return 0;
}

static int finish_dists(struct conf *c, struct dupent *onames, char *err)
{
    struct dupent *v, first, again, probe, *hit;
    const char *file = c->path;
    size_t i, j, n;

    if (c->ndists == 0)
        return fail(err, file, c->line, "distributions: at least one distribution required");
    for (i = 0; i < c->ndists; i++) {
        struct conf_distribution *d = &c->dists[i];

        if (d->name == NULL)
            return fail(err, file, d->line, "distributions[%zu].name: missing, expected a name",
                        i);
        if (d->origin_name == NULL)
            return fail(err, file, d->line,
                        "distributions[%zu].origin: missing, expected an origin name", i);
        probe.key = d->origin_name;
        hit = NULL;
        if (c->norigins != 0)
            hit = bsearch(&probe, onames, c->norigins, sizeof *onames, dupent_key_cmp);
        if (hit == NULL)
            return fail(err, file, d->origin_line ? d->origin_line : d->line,
                        "distributions[%zu].origin: unknown origin \"%s\"", i, d->origin_name);
        d->origin = &c->origins[hit->a];
        if (d->path_prefix == NULL && (d->path_prefix = xstrdup("/")) == NULL)
            return fail(err, NULL, 0, "out of memory");
        if (d->key_prefix == NULL && (d->key_prefix = xstrdup("")) == NULL)
            return fail(err, NULL, 0, "out of memory");
        if (d->nhosts == 0 && dist_add_host(d, "*", d->line) != 0)
            return fail(err, NULL, 0, "out of memory");
        if (d->query == CONF_QUERY_ALLOW && d->nquery_keys == 0)
            return fail(err, file, d->line,
                        "distributions[%zu].query_keys: expected at least one parameter name "
                        "with query_string: allow",
                        i);
        if (d->query != CONF_QUERY_ALLOW && d->nquery_keys > 0)
            return fail(err, file, d->line,
                        "distributions[%zu].query_keys: only with query_string: allow", i);
        if (d->max_ttl_s == UINT_MAX)
            d->max_ttl_s = d->default_ttl_s > 365u * 86400 ? d->default_ttl_s : 365u * 86400;
        if (d->min_ttl_s > d->default_ttl_s || d->default_ttl_s > d->max_ttl_s)
            return fail(err, file, d->line,
                        "distributions[%zu]: expected min_ttl <= default_ttl <= max_ttl "
                        "(%u, %u, %u seconds)",
                        i, d->min_ttl_s, d->default_ttl_s, d->max_ttl_s);
    }

    v = calloc(c->ndists, sizeof *v);
    if (v == NULL)
        return fail(err, NULL, 0, "out of memory");
    for (i = 0; i < c->ndists; i++)
        v[i] = (struct dupent){c->dists[i].name, i, 0};
    if (dup_find(v, c->ndists, &first, &again)) {
        free(v);
        return fail(err, file, c->dists[again.a].line,
                    "distributions[%zu].name: \"%s\" is already the name of distributions[%zu]",
                    again.a, again.key, first.a);
    }
    free(v);

    for (n = 0, i = 0; i < c->ndists; i++)
        n += c->dists[i].nhosts;
    v = calloc(n, sizeof *v);
    if (v == NULL)
        return fail(err, NULL, 0, "out of memory");
    for (n = 0, i = 0; i < c->ndists; i++)
        for (j = 0; j < c->dists[i].nhosts; j++)
            v[n++] = (struct dupent){c->dists[i].hosts[j], i, j};
    if (dup_find(v, n, &first, &again)) {
        const struct conf_distribution *d = &c->dists[again.a];
        unsigned line = d->host_lines[again.b] ? d->host_lines[again.b] : d->line;
        int rc;

        if (first.a == again.a)
            rc = fail(err, file, line, "distributions[%zu].hosts[%zu]: \"%s\" is listed twice",
                      again.a, again.b, again.key);
        else
            rc = fail(err, file, line,
                      "distributions[%zu].hosts[%zu]: \"%s\" is already served by "
                      "distribution \"%s\"",
                      again.a, again.b, again.key, c->dists[first.a].name);
        free(v);
        return rc;
    }
    free(v);
    return 0;
}

int conf_admin_tls_load(const struct conf *c, struct conf_tls_material *m, char *err)
{
    struct conf_tls_cert e;
    char why[CONF_ERR_MAX];
    unsigned line;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    memset(m, 0, sizeof *m);
    line = c->admin_tls_line ? c->admin_tls_line : c->admin_line;
    if (c->admin_tls_cert == NULL || c->admin_tls_key == NULL)
        return fail(err, c->path, line, "admin.tls.%s: missing, expected a PEM %s file",
                    c->admin_tls_cert == NULL ? "cert" : "key",
                    c->admin_tls_cert == NULL ? "certificate" : "private key");
    memset(&e, 0, sizeof e);
    e.cert = c->admin_tls_cert;
    e.key = c->admin_tls_key;
    if (load_chain(&e, m, why, sizeof why) != 0) {
        conf_tls_material_fini(m);
        return fail(err, c->path, line, "admin.tls.cert: %s", why);
    }
    if (load_key(&e, m, why, sizeof why) != 0) {
        conf_tls_material_fini(m);
        return fail(err, c->path, line, "admin.tls.key: %s", why);
    }
    if (X509_check_private_key(m->leaf, m->key) != 1) {
        ERR_clear_error();
        conf_tls_material_fini(m);
        return fail(err, c->path, line,
                    "admin.tls.key: the key in %.200s does not match the certificate in %.200s",
                    e.key, e.cert);
    }
    return 0;
}

/* node, admin, redis: also what the command line set (no line then) */
static int finish_fleet(struct conf *c, char *err)
{
    const char *file = c->path, *msg;
    struct conf_tls_material m;

    if (c->node_id != NULL && (msg = check_node_id(c->node_id)) != NULL)
        return fail(err, file, c->node_id_line, "node.id: %s", msg);
    if (c->pop != NULL && (msg = check_pop(c->pop)) != NULL)
        return fail(err, file, c->node_line, "node.pop: %s", msg);
    if (c->admin_listen == NULL) {
        if (c->nadmin_tokens > 0 || c->admin_token_file != NULL || c->admin_tls_cert != NULL ||
            c->admin_tls_key != NULL)
            return fail(err, file, c->admin_line,
                        "admin.listen: missing, expected host:port (tokens and tls are for "
                        "the admin listener)");
    } else {
        if ((msg = check_listen(c->admin_listen)) != NULL)
            return fail(err, file, c->admin_listen_line, "admin.listen: %s", msg);
        if (c->nadmin_tokens == 0 && c->admin_token_file == NULL)
            return fail(err, file, c->admin_line ? c->admin_line : c->admin_listen_line,
                        "admin.tokens: missing, expected tokens or a token_file (the admin API "
                        "takes bearer tokens only)");
        for (size_t i = 0; i < c->nlistens; i++)
            if (c->listens[i].address != NULL &&
                strcmp(c->listens[i].address, c->admin_listen) == 0)
                return fail(err, file, c->admin_listen_line,
                            "admin.listen: \"%s\" is already listen[%zu]", c->admin_listen, i);
        if (c->admin_tls_cert != NULL || c->admin_tls_key != NULL) {
            if (conf_admin_tls_load(c, &m, err) != 0)
                return -1;
            conf_tls_material_fini(&m);
        }
    }
    if (c->redis_url != NULL && (msg = check_redis_url(c->redis_url)) != NULL)
        return fail(err, file, c->redis_url_line, "redis.url: %s", msg);
    if (c->redis_sentinel_master != NULL || c->nredis_sentinel_addrs > 0) {
        if (c->redis_sentinel_master == NULL)
            return fail(err, file, c->sentinel_line,
                        "redis.sentinel.master: missing, expected the master's name");
        if (c->nredis_sentinel_addrs == 0)
            return fail(err, file, c->sentinel_line,
                        "redis.sentinel.addrs: missing, expected Sentinel host:port addresses");
        if (c->redis_url != NULL)
            return fail(err, file, c->redis_url_line ? c->redis_url_line : c->sentinel_line,
                        "redis.url: give url or sentinel, not both (credentials go under "
                        "username and password)");
    } else if (c->redis_url == NULL && c->redis_line != 0) {
        return fail(err, file, c->redis_line,
                    "redis.url: missing, expected redis://HOST:PORT or a sentinel mapping");
    }
    return 0;
}

int conf_finish(struct conf *c, char *err)
{
    struct dupent *onames = NULL, first, again;
    size_t i;
    int rc;

    CHECK_OBJ_NOTNULL(c, CONF_MAGIC);
    if (finish_listens(c, err) != 0)
        return -1;
    for (i = 0; i < c->norigins; i++)
        if (finish_origin(c, i, err) != 0)
            return -1;
    if (c->norigins != 0) {
        onames = calloc(c->norigins, sizeof *onames);
        if (onames == NULL)
            return fail(err, NULL, 0, "out of memory");
        for (i = 0; i < c->norigins; i++)
            onames[i] = (struct dupent){c->origins[i].name, i, 0};
        if (dup_find(onames, c->norigins, &first, &again)) {
            rc = fail(err, c->path, c->origins[again.a].line,
                      "origins[%zu].name: \"%s\" is already the name of origins[%zu]", again.a,
                      again.key, first.a);
            free(onames);
            return rc;
        }
    }
    rc = finish_dists(c, onames, err);
    free(onames);
    if (rc != 0)
        return -1;
    if (c->disk_path == NULL && c->disk_opt_line != 0)
        return fail(err, c->path, c->disk_opt_line, "cache.%s: needs cache.disk_path",
                    c->disk_opt_key);
    if (finish_fleet(c, err) != 0)
        return -1;
    /* An object larger than the whole cache could never stay in it: the
     * memory store bounds what is kept in memory, the disk cache (when
     * there is one) what is cached at all. */
    uint64_t room = c->disk_path != NULL ? c->disk_size_bytes : c->memory_cache_bytes;
    if (c->max_object_bytes > room)
        c->max_object_bytes = room;
    uint64_t mem_max = c->max_object_bytes < c->memory_cache_bytes ? c->max_object_bytes
                                                                    : c->memory_cache_bytes;
    if (c->memory_max_object_bytes == 0 || c->memory_max_object_bytes > mem_max)
        c->memory_max_object_bytes = mem_max;
    return 0;
}

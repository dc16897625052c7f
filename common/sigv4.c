/*
 * sigv4.c: AWS Signature Version 4, header authentication.
 *
 * Every call works on the stack and on caller memory only: a bounded string
 * builder (struct sbuf) refuses to grow past its buffer, and any overflow
 * turns into EDGE_ETOOLONG instead of a truncated, wrongly signed request.
 * The only state that outlives a call is the caller's sigv4_key_cache.
 *
 * References: AWS General Reference, "Create a canonical request" /
 * "Create a string to sign" / "Calculate the signature"; Amazon S3 API
 * Reference, "Signature Calculations for the Authorization Header". RFC
 * numbers are cited where a rule comes from HTTP or URI syntax.
 */
#include "sigv4.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "err.h"
#include "vas.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define SCOPE_TERM "aws4_request"

/* ------------------------------------------------------------ sbuf */

struct sbuf {
    char *p;
    size_t cap; /* bytes at p, including room for the NUL */
    size_t len;
    bool overflow;
};

static void sb_init(struct sbuf *sb, char *p, size_t cap)
{
    AN(p);
    AN(cap);
    sb->p = p;
    sb->cap = cap;
    sb->len = 0;
    sb->overflow = false;
    p[0] = '\0';
}

static void sb_put(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->overflow)
        return;
    if (n >= sb->cap - sb->len) {
        sb->overflow = true;
        return;
    }
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = '\0';
}

static void sb_putc(struct sbuf *sb, char c)
{
    sb_put(sb, &c, 1);
}

static void sb_puts(struct sbuf *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

static const char hexdig_upper[] = "0123456789ABCDEF";
static const char hexdig_lower[] = "0123456789abcdef";

static void sb_put_pct(struct sbuf *sb, unsigned char c)
{
    char e[3] = {'%', hexdig_upper[c >> 4], hexdig_upper[c & 0xf]};

    sb_put(sb, e, 3);
}

static void hex_lower(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig_lower[in[i] >> 4];
        out[2 * i + 1] = hexdig_lower[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* ------------------------------------------------------------ char classes */

/* RFC 3986 2.3 */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static unsigned char lc(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* Credential scope parts and the access key id end up between '/' and ','
 * in the Authorization value: refuse what would change its structure. */
static bool is_scope_part(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == ',' || c == ';' ||
            c == '=')
            return false;
    }
    return true;
}

/* A header value may hold anything but CR and LF: a CR or LF would let the
 * value smuggle another header line (RFC 9110 5.5). */
static bool is_field_value(const char *s)
{
    if (s == NULL)
        return false;
    return strpbrk(s, "\r\n") == NULL;
}

static bool is_payload_hash(const char *s)
{
    size_t n = strlen(s);

    if (strcmp(s, SIGV4_UNSIGNED_PAYLOAD) == 0)
        return true;
    if (strncmp(s, "STREAMING-", 10) == 0 && n < 65) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-'))
                return false;
        }
        return true;
    }
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ------------------------------------------------------------ crypto */

static int sha256_hex(const char *data, size_t len, char hex[65])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32)
        return EDGE_ECRYPTO;
    hex_lower(md, 32, hex);
    return 0;
}

static int hmac256(const uint8_t *key, size_t keylen, const void *data,
                   size_t len, uint8_t out[32])
{
    unsigned int outlen = 0;

    if (keylen > (size_t)INT_MAX)
        return EDGE_ETOOLONG;
    if (HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &outlen) ==
            NULL ||
        outlen != 32)
        return EDGE_ECRYPTO;
    return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, uint8_t key[32])
{
    uint8_t k0[4 + SIGV4_SECRET_MAX];
    uint8_t k[32];
    size_t slen;
    int r;

    if (secret == NULL || *secret == '\0' || date8 == NULL ||
        strlen(date8) != 8 || !is_scope_part(region) ||
        !is_scope_part(service) || key == NULL)
        return EDGE_EINVAL;
    for (int i = 0; i < 8; i++)
        if (date8[i] < '0' || date8[i] > '9')
            return EDGE_EINVAL;
    slen = strlen(secret);
    if (slen > SIGV4_SECRET_MAX)
        return EDGE_ETOOLONG;

    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, slen);
    r = hmac256(k0, 4 + slen, date8, 8, k);
    if (r == 0)
        r = hmac256(k, 32, region, strlen(region), k);
    if (r == 0)
        r = hmac256(k, 32, service, strlen(service), k);
    if (r == 0)
        r = hmac256(k, 32, SCOPE_TERM, strlen(SCOPE_TERM), key);
    OPENSSL_cleanse(k0, sizeof(k0));
    OPENSSL_cleanse(k, sizeof(k));
    return r;
}

/* ------------------------------------------------------------ time */

static int format_time(time_t now, char amz_date[17], char date8[9])
{
    struct tm tm;

    if (gmtime_r(&now, &tm) == NULL)
        return EDGE_ERANGE;
    if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return EDGE_ERANGE;
    /* ISO 8601 basic format, UTC */
    if (strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return EDGE_ERANGE;
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';
    return 0;
}

/* ------------------------------------------------------------ canonical URI */

/*
 * S3: sign the path as it is sent. An escape stays one escape (hex made
 * uppercase, RFC 3986 2.1 and 6.2.2.1: the same octet), a byte left raw
 * that needs encoding gets its one encoding. Nothing is decoded, so "%20"
 * never becomes "%2520", and "//" or "/./" stay: they are part of S3 keys.
 */
static int canon_uri_s3(struct sbuf *sb, const char *path)
{
    for (const unsigned char *s = (const unsigned char *)path; *s != '\0';
         s++) {
        if (*s == '%') {
            int hi = hexval(s[1]);
            int lo = hi < 0 ? -1 : hexval(s[2]);
            if (hi < 0 || lo < 0)
                return EDGE_EINVAL; /* RFC 3986 2.4: '%' starts an escape */
            sb_put_pct(sb, (unsigned char)(hi << 4 | lo));
            s += 2;
        } else if (is_unreserved(*s) || *s == '/') {
            sb_putc(sb, (char)*s);
        } else {
            sb_put_pct(sb, *s);
        }
    }
    return 0;
}

/*
 * Generic services: RFC 3986 5.2.4 dot-segment removal plus collapsing of
 * empty segments, then every byte but unreserved and '/' encoded (a '%' as
 * well, hence "encoded twice"). Written straight into sb: each kept segment
 * is "/" + encoded bytes, so ".." pops back to the last '/' written.
 */
static void canon_uri_normalized(struct sbuf *sb, const char *path)
{
    size_t start = sb->len;
    size_t plen = strlen(path);
    const char *s = path;

    while (*s != '\0') {
        const char *e;
        size_t n;

        while (*s == '/')
            s++;
        e = strchr(s, '/');
        n = e != NULL ? (size_t)(e - s) : strlen(s);
        if (n == 0)
            break;
        if (n == 1 && s[0] == '.') {
            /* skip */
        } else if (n == 2 && s[0] == '.' && s[1] == '.') {
            size_t l = sb->len;
            while (l > start && sb->p[l - 1] != '/')
                l--;
            if (l > start)
                l--; /* the '/' that opened the popped segment */
            if (!sb->overflow) {
                sb->len = l;
                sb->p[l] = '\0';
            }
        } else {
            sb_putc(sb, '/');
            for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (is_unreserved(c))
                    sb_putc(sb, (char)c);
                else
                    sb_put_pct(sb, c);
            }
        }
        s += n;
    }
    if (sb->len == start)
        sb_putc(sb, '/');
    else if (plen > 0 && path[plen - 1] == '/')
        sb_putc(sb, '/');
}

/* ------------------------------------------------------------ canonical query */

struct qparam {
    size_t name_off, name_len;
    size_t value_off, value_len;
};

/* Decode %XX once, then encode every byte but unreserved: the canonical
 * form of a query component ('/' becomes %2F, '+' stays a plus and becomes
 * %2B, a space is %20). */
static int query_component(struct sbuf *qb, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;

            if (n - i < 3) /* RFC 3986 2.4: '%' starts an escape */
                return EDGE_EINVAL;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return EDGE_EINVAL;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (is_unreserved(c))
            sb_putc(qb, (char)c);
        else
            sb_put_pct(qb, c);
    }
    return 0;
}

static int qparam_cmp(const char *base, const struct qparam *a,
                      const struct qparam *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(base + a->name_off, base + b->name_off, n);

    if (c != 0)
        return c;
    if (a->name_len != b->name_len)
        return a->name_len < b->name_len ? -1 : 1;
    n = a->value_len < b->value_len ? a->value_len : b->value_len;
    c = memcmp(base + a->value_off, base + b->value_off, n);
    if (c != 0)
        return c;
    if (a->value_len != b->value_len)
        return a->value_len < b->value_len ? -1 : 1;
    return 0;
}

static int canon_query(struct sbuf *sb, const char *query)
{
    char qbuf[SIGV4_CANON_MAX];
    struct qparam qp[SIGV4_MAX_QUERY_PARAMS];
    struct sbuf qb;
    size_t nq = 0;
    const char *s = query;
    int r;

    if (query == NULL || *query == '\0')
        return 0;
    sb_init(&qb, qbuf, sizeof(qbuf));
    while (*s != '\0') {
        const char *amp = strchr(s, '&');
        size_t n = amp != NULL ? (size_t)(amp - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        size_t nlen = eq != NULL ? (size_t)(eq - s) : n;

        if (n > 0) { /* "a&&b": an empty piece names no parameter */
            if (nq == SIGV4_MAX_QUERY_PARAMS)
                return EDGE_ETOOMANY;
            qp[nq].name_off = qb.len;
            r = query_component(&qb, s, nlen);
            if (r < 0)
                return r;
            qp[nq].name_len = qb.len - qp[nq].name_off;
            /* a parameter without '=' signs as "key=" (S3 "?lifecycle") */
            qp[nq].value_off = qb.len;
            if (eq != NULL) {
                r = query_component(&qb, eq + 1, n - nlen - 1);
                if (r < 0)
                    return r;
            }
            qp[nq].value_len = qb.len - qp[nq].value_off;
            if (qb.overflow)
                return EDGE_ETOOLONG;
            nq++;
        }
        s += n;
        if (*s == '&')
            s++;
    }

    /* sorted by encoded name, then by encoded value; insertion sort, the
     * count is bounded by SIGV4_MAX_QUERY_PARAMS */
    for (size_t i = 1; i < nq; i++) {
        struct qparam t = qp[i];
        size_t j = i;
        while (j > 0 && qparam_cmp(qbuf, &qp[j - 1], &t) > 0) {
            qp[j] = qp[j - 1];
            j--;
        }
        qp[j] = t;
    }
    for (size_t i = 0; i < nq; i++) {
        if (i > 0)
            sb_putc(sb, '&');
        sb_put(sb, qbuf + qp[i].name_off, qp[i].name_len);
        sb_putc(sb, '=');
        sb_put(sb, qbuf + qp[i].value_off, qp[i].value_len);
    }
    return 0;
}

/* ------------------------------------------------------------ canonical headers */

struct hent {
    const char *name;
    const char *value;
};

static int name_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char ca = lc((unsigned char)*a), cb = lc((unsigned char)*b);
        if (ca != cb || ca == '\0')
            return (int)ca - (int)cb;
    }
}

static bool is_reserved_name(const char *name)
{
    static const char *const reserved[] = {
        "host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token",
    };

    for (size_t i = 0; i < ARRAY_LEN(reserved); i++)
        if (name_cmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* "Trimall": leading and trailing blanks removed, inner runs of SP/HTAB
 * folded to one SP (RFC 9110 5.5 allows either as whitespace). */
static void put_trimmed(struct sbuf *sb, const char *v)
{
    bool blank = false;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v != '\0'; v++) {
        if (*v == ' ' || *v == '\t') {
            blank = true;
            continue;
        }
        if (blank)
            sb_putc(sb, ' ');
        blank = false;
        sb_putc(sb, *v);
    }
}

static int canon_headers(struct sbuf *sb, struct sbuf *sh,
                         const struct sigv4_creds *creds,
                         const struct sigv4_request *req, const char *amz_date,
                         const char *payload)
{
    struct hent h[SIGV4_MAX_HEADERS + 4];
    size_t nh = 0;

    if (req->nheaders > SIGV4_MAX_HEADERS)
        return EDGE_ETOOMANY;
    if (req->nheaders > 0 && req->headers == NULL)
        return EDGE_EINVAL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sigv4_header *x = &req->headers[i];
        if (!is_token(x->name) || !is_field_value(x->value))
            return EDGE_EINVAL;
        /* the signer owns these; a second copy would sign two values */
        if (is_reserved_name(x->name))
            return EDGE_EINVAL;
        h[nh++] = (struct hent){x->name, x->value};
    }
    h[nh++] = (struct hent){"host", req->host};
    h[nh++] = (struct hent){"x-amz-date", amz_date};
    if (req->add_content_sha256)
        h[nh++] = (struct hent){"x-amz-content-sha256", payload};
    if (creds->session_token != NULL)
        h[nh++] = (struct hent){"x-amz-security-token", creds->session_token};

    /* stable sort on the lowercased name: repeated headers keep their
     * order, which is the order their values are joined in */
    for (size_t i = 1; i < nh; i++) {
        struct hent t = h[i];
        size_t j = i;
        while (j > 0 && name_cmp(h[j - 1].name, t.name) > 0) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = t;
    }

    for (size_t i = 0; i < nh; i++) {
        if (i > 0 && name_cmp(h[i - 1].name, h[i].name) == 0) {
            sb_putc(sb, ',');
        } else {
            if (i > 0) {
                sb_putc(sb, '\n');
                sb_putc(sh, ';');
            }
            for (const char *n = h[i].name; *n != '\0'; n++) {
                char c = (char)lc((unsigned char)*n);
                sb_putc(sb, c);
                sb_putc(sh, c);
            }
            sb_putc(sb, ':');
        }
        put_trimmed(sb, h[i].value);
    }
    sb_putc(sb, '\n');
    return 0;
}

/* ------------------------------------------------------------ assembly */

static int check_input(const struct sigv4_creds *creds,
                       const struct sigv4_request *req)
{
    if (creds == NULL || req == NULL)
        return EDGE_EINVAL;
    if (!is_scope_part(creds->access_key_id) ||
        creds->secret_access_key == NULL ||
        *creds->secret_access_key == '\0')
        return EDGE_EINVAL;
    if (creds->session_token != NULL &&
        (*creds->session_token == '\0' ||
         !is_field_value(creds->session_token)))
        return EDGE_EINVAL;
    if (!is_token(req->method) || req->host == NULL || *req->host == '\0' ||
        !is_field_value(req->host) || req->path == NULL ||
        req->path[0] != '/')
        return EDGE_EINVAL;
    if (!is_scope_part(req->region) || !is_scope_part(req->service))
        return EDGE_EINVAL;
    if (req->payload_hash != NULL && !is_payload_hash(req->payload_hash))
        return EDGE_EINVAL;
    return 0;
}

/*
 * CanonicalRequest =
 *   Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n
 *   SignedHeaders \n HashedPayload
 * (CanonicalHeaders ends with its own \n, hence the empty line.)
 */
static int build_creq(const struct sigv4_creds *creds,
                      const struct sigv4_request *req, const char *amz_date,
                      struct sbuf *creq, struct sbuf *sh)
{
    const char *payload =
        req->payload_hash != NULL ? req->payload_hash : SIGV4_EMPTY_SHA256;
    int r;

    sb_puts(creq, req->method);
    sb_putc(creq, '\n');
    if (req->normalize_path) {
        canon_uri_normalized(creq, req->path);
    } else {
        r = canon_uri_s3(creq, req->path);
        if (r < 0)
            return r;
    }
    sb_putc(creq, '\n');
    r = canon_query(creq, req->query);
    if (r < 0)
        return r;
    sb_putc(creq, '\n');
    r = canon_headers(creq, sh, creds, req, amz_date, payload);
    if (r < 0)
        return r;
    sb_putc(creq, '\n');
    sb_put(creq, sh->p, sh->len);
    sb_putc(creq, '\n');
    sb_puts(creq, payload);
    if (creq->overflow || sh->overflow)
        return EDGE_ETOOLONG;
    return 0;
}

/* StringToSign = Algorithm \n RequestDateTime \n CredentialScope \n
 *                HexEncode(Hash(CanonicalRequest)) */
static int build_sts(const struct sigv4_request *req, const char *amz_date,
                     const char *date8, const struct sbuf *creq,
                     struct sbuf *sts)
{
    char hex[65];
    int r = sha256_hex(creq->p, creq->len, hex);

    if (r < 0)
        return r;
    sb_puts(sts, ALGORITHM "\n");
    sb_puts(sts, amz_date);
    sb_putc(sts, '\n');
    sb_puts(sts, date8);
    sb_putc(sts, '/');
    sb_puts(sts, req->region);
    sb_putc(sts, '/');
    sb_puts(sts, req->service);
    sb_puts(sts, "/" SCOPE_TERM "\n");
    sb_puts(sts, hex);
    return sts->overflow ? EDGE_ETOOLONG : 0;
}

int sigv4_canonical_request(const struct sigv4_creds *creds,
                            const struct sigv4_request *req, char *out,
                            size_t cap)
{
    char amz_date[17], date8[9], shbuf[SIGV4_AUTH_MAX];
    struct sbuf creq, sh;
    int r;

    if (out == NULL || cap == 0)
        return EDGE_EINVAL;
    out[0] = '\0';
    r = check_input(creds, req);
    if (r == 0)
        r = format_time(req->now, amz_date, date8);
    if (r < 0)
        return r;
    /* the same bound as sigv4_sign(), so that what prints here signs */
    sb_init(&creq, out, cap < SIGV4_CANON_MAX ? cap : SIGV4_CANON_MAX);
    sb_init(&sh, shbuf, sizeof(shbuf));
    r = build_creq(creds, req, amz_date, &creq, &sh);
    if (r < 0) {
        out[0] = '\0';
        return r;
    }
    return (int)creq.len;
}

int sigv4_string_to_sign(const struct sigv4_creds *creds,
                         const struct sigv4_request *req, char *out, size_t cap)
{
    char amz_date[17], date8[9], shbuf[SIGV4_AUTH_MAX];
    char creqbuf[SIGV4_CANON_MAX];
    struct sbuf creq, sh, sts;
    int r;

    if (out == NULL || cap == 0)
        return EDGE_EINVAL;
    out[0] = '\0';
    r = check_input(creds, req);
    if (r == 0)
        r = format_time(req->now, amz_date, date8);
    if (r < 0)
        return r;
    sb_init(&creq, creqbuf, sizeof(creqbuf));
    sb_init(&sh, shbuf, sizeof(shbuf));
    sb_init(&sts, out, cap);
    r = build_creq(creds, req, amz_date, &creq, &sh);
    if (r == 0)
        r = build_sts(req, amz_date, date8, &creq, &sts);
    if (r < 0) {
        out[0] = '\0';
        return r;
    }
    return (int)sts.len;
}

/* The derived key for this date, region, service and secret: from the
 * cache when it holds exactly that, else derived (and cached when the
 * names fit the cache's fields). */
static int get_signing_key(const struct sigv4_creds *creds,
                           const struct sigv4_request *req, const char *date8,
                           struct sigv4_key_cache *cache, uint8_t key[32])
{
    uint8_t fp[32];
    unsigned int fplen = 0;
    int r;

    if (cache == NULL || strlen(req->region) >= sizeof(cache->region) ||
        strlen(req->service) >= sizeof(cache->service))
        return sigv4_signing_key(creds->secret_access_key, date8, req->region,
                                 req->service, key);

    if (EVP_Digest(creds->secret_access_key,
                   strlen(creds->secret_access_key), fp, &fplen,
                   EVP_sha256(), NULL) != 1 ||
        fplen != 32)
        return EDGE_ECRYPTO;
    if (strcmp(cache->date, date8) == 0 &&
        strcmp(cache->region, req->region) == 0 &&
        strcmp(cache->service, req->service) == 0 &&
        CRYPTO_memcmp(cache->secret_fp, fp, 32) == 0) {
        memcpy(key, cache->key, 32);
        return 0;
    }

    r = sigv4_signing_key(creds->secret_access_key, date8, req->region,
                          req->service, key);
    if (r < 0)
        return r;
    memcpy(cache->key, key, 32);
    memcpy(cache->secret_fp, fp, 32);
    memcpy(cache->date, date8, 9);
    /* lengths checked above */
    memcpy(cache->region, req->region, strlen(req->region) + 1);
    memcpy(cache->service, req->service, strlen(req->service) + 1);
    return 0;
}

int sigv4_sign(const struct sigv4_creds *creds, const struct sigv4_request *req,
               struct sigv4_key_cache *cache, struct sigv4_result *out)
{
    char amz_date[17], date8[9], shbuf[SIGV4_AUTH_MAX];
    char creqbuf[SIGV4_CANON_MAX], stsbuf[SIGV4_AUTH_MAX];
    struct sbuf creq, sh, sts, az;
    uint8_t key[32], sig[32];
    char sighex[65];
    int r;

    if (out == NULL)
        return EDGE_EINVAL;
    memset(out, 0, sizeof(*out));
    r = check_input(creds, req);
    if (r == 0)
        r = format_time(req->now, amz_date, date8);
    if (r < 0)
        return r;

    sb_init(&creq, creqbuf, sizeof(creqbuf));
    sb_init(&sh, shbuf, sizeof(shbuf));
    sb_init(&sts, stsbuf, sizeof(stsbuf));
    r = build_creq(creds, req, amz_date, &creq, &sh);
    if (r == 0)
        r = build_sts(req, amz_date, date8, &creq, &sts);
    if (r == 0)
        r = get_signing_key(creds, req, date8, cache, key);
    if (r < 0)
        return r;
    r = hmac256(key, 32, sts.p, sts.len, sig);
    OPENSSL_cleanse(key, sizeof(key));
    if (r < 0)
        return r;
    hex_lower(sig, 32, sighex);

    sb_init(&az, out->authorization, sizeof(out->authorization));
    sb_puts(&az, ALGORITHM " Credential=");
    sb_puts(&az, creds->access_key_id);
    sb_putc(&az, '/');
    sb_puts(&az, date8);
    sb_putc(&az, '/');
    sb_puts(&az, req->region);
    sb_putc(&az, '/');
    sb_puts(&az, req->service);
    sb_puts(&az, "/" SCOPE_TERM ", SignedHeaders=");
    sb_put(&az, sh.p, sh.len);
    sb_puts(&az, ", Signature=");
    sb_puts(&az, sighex);
    if (az.overflow) {
        memset(out, 0, sizeof(*out));
        return EDGE_ETOOLONG;
    }
    memcpy(out->amz_date, amz_date, sizeof(out->amz_date));
    memcpy(out->signature, sighex, sizeof(out->signature));
    if (req->add_content_sha256) {
        const char *p = req->payload_hash != NULL ? req->payload_hash
                                                  : SIGV4_EMPTY_SHA256;
        /* is_payload_hash() bounds it to 64 bytes */
        memcpy(out->content_sha256, p, strlen(p) + 1);
    }
    return 0;
}

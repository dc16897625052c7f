/*
 * freshness.c: RFC 9111 freshness for a shared cache, CloudFront-style TTL
 * clamps, and RFC 9110 preconditions. See freshness.h for the rules and
 * the choices made where the RFCs leave room.
 *
 * Stateless: every function reads its arguments and writes its outputs.
 */
#include "freshness.h"

#include <string.h>
#include <strings.h>

#include "err.h"
#include "timeutil.h"
#include "vas.h"

/* ------------------------------------------------------------ lexing */

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool eq_ci(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* RFC 9111 1.2.2 delta-seconds = 1*DIGIT, capped at 2^31. -1: invalid. */
static int64_t parse_delta(const char *s, size_t len)
{
    int64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < FRESH_DELTA_MAX)
            v = v * 10 + (s[i] - '0');
    }
    return v > FRESH_DELTA_MAX ? FRESH_DELTA_MAX : v;
}

/* Skip a quoted-string starting at s[i] == '"' (RFC 9110 5.6.4). Returns the
 * index after the closing quote; *closed is false when it is unterminated
 * (the index is then len). */
static size_t skip_quoted(const char *s, size_t len, size_t i, bool *closed)
{
    *closed = false;
    for (i++; i < len; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }
        if (s[i] == '"') {
            *closed = true;
            return i + 1;
        }
    }
    return len;
}

/* Index of the next ',' outside quoted-strings at or after i, or len. */
static size_t next_comma(const char *s, size_t len, size_t i)
{
    bool closed;

    while (i < len && s[i] != ',') {
        if (s[i] == '"')
            i = skip_quoted(s, len, i, &closed);
        else
            i++;
    }
    return i;
}

/* --------------------------------------------------- Cache-Control */

void fresh_cc_init(struct fresh_cc *cc)
{
    AN(cc);
    memset(cc, 0, sizeof(*cc));
    cc->max_age = -1;
    cc->s_maxage = -1;
    cc->stale_while_revalidate = -1;
    cc->stale_if_error = -1;
}

/* RFC 9111 4.2.1: of conflicting values the most restrictive (smallest). */
static void merge_delta(int64_t *slot, int64_t v)
{
    if (*slot < 0 || v < *slot)
        *slot = v;
}

/*
 * One list member: name, and its argument when there is one. ok is false
 * when the member does not follow cache-directive = token [ "=" ( token /
 * quoted-string ) ]. BWS around "=" is tolerated (as for parameters, RFC
 * 9110 5.6.6), nothing else.
 */
struct cc_member {
    const char *name;
    size_t name_len;
    const char *arg; /* token, or the inside of the quoted-string */
    size_t arg_len;
    bool has_arg;
    bool arg_escaped; /* the quoted-string held a quoted-pair */
    bool ok;
};

static void cc_apply(struct fresh_cc *cc, const struct cc_member *m)
{
    const char *n = m->name;
    size_t nl = m->name_len;
    int64_t d;

    /* a malformed or missing argument of a valued directive is invalid
     * freshness information: stale (RFC 9111 4.2.1) */
    d = (m->ok && m->has_arg && !m->arg_escaped) ? parse_delta(m->arg, m->arg_len) : -1;
    if (d < 0)
        d = 0;

    if (eq_ci(n, nl, "max-age")) {
        merge_delta(&cc->max_age, d);
    } else if (eq_ci(n, nl, "s-maxage")) {
        merge_delta(&cc->s_maxage, d);
    } else if (eq_ci(n, nl, "stale-while-revalidate")) {
        merge_delta(&cc->stale_while_revalidate, d);
    } else if (eq_ci(n, nl, "stale-if-error")) {
        merge_delta(&cc->stale_if_error, d);
    } else if (eq_ci(n, nl, "no-store")) {
        /* restrictive directives count even when malformed */
        cc->no_store = true;
    } else if (eq_ci(n, nl, "no-cache")) {
        cc->no_cache = true; /* qualified form treated as unqualified, 5.2.2.4 */
    } else if (eq_ci(n, nl, "private")) {
        cc->is_private = true; /* likewise, 5.2.2.7 */
    } else if (eq_ci(n, nl, "must-revalidate")) {
        cc->must_revalidate = true;
    } else if (eq_ci(n, nl, "proxy-revalidate")) {
        cc->proxy_revalidate = true;
    } else if (m->ok && eq_ci(n, nl, "public")) {
        /* permissive directives only when well-formed */
        cc->is_public = true;
    } else if (m->ok && eq_ci(n, nl, "immutable")) {
        cc->immutable = true;
    } else if (m->ok && eq_ci(n, nl, "must-understand")) {
        cc->must_understand = true;
    }
    /* anything else: unknown extension, ignored (RFC 9111 5.2.3) */
}

void fresh_cc_parse(struct fresh_cc *cc, const char *v, size_t len)
{
    size_t i = 0;

    AN(cc);
    if (v == NULL)
        return;
    while (i < len) {
        struct cc_member m;
        size_t start;

        /* #rule: empty members and OWS are allowed (RFC 9110 5.6.1) */
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ','))
            i++;
        if (i >= len)
            break;
        memset(&m, 0, sizeof(m));
        m.ok = true;
        start = i;
        while (i < len && is_tchar((unsigned char)v[i]))
            i++;
        m.name = v + start;
        m.name_len = i - start;
        if (m.name_len == 0) {
            i = next_comma(v, len, i);
            continue; /* no name: nothing to apply */
        }
        size_t j = i;
        while (j < len && is_ows((unsigned char)v[j]))
            j++;
        if (j < len && v[j] == '=') {
            j++;
            while (j < len && is_ows((unsigned char)v[j]))
                j++;
            m.has_arg = true;
            if (j < len && v[j] == '"') {
                bool closed;
                size_t end = skip_quoted(v, len, j, &closed);
                if (!closed) {
                    m.ok = false; /* unterminated */
                } else {
                    m.arg = v + j + 1;
                    m.arg_len = end - j - 2;
                    m.arg_escaped = memchr(m.arg, '\\', m.arg_len) != NULL;
                }
                j = end;
            } else {
                size_t as = j;
                while (j < len && is_tchar((unsigned char)v[j]))
                    j++;
                m.arg = v + as;
                m.arg_len = j - as;
                if (m.arg_len == 0)
                    m.ok = false;
            }
            i = j;
        }
        /* the member must end here: OWS then ',' or the end */
        while (i < len && is_ows((unsigned char)v[i]))
            i++;
        if (i < len && v[i] != ',') {
            m.ok = false;
            i = next_comma(v, len, i);
        }
        cc_apply(cc, &m);
    }
}

/* --------------------------------------------------- response head */

static bool hdr_is(const struct http1_header *h, const char *name)
{
    return eq_ci(h->name, h->name_len, name);
}

void fresh_resp_parse(struct fresh_resp *r, int status,
                      const struct http1_header *h, unsigned n)
{
    AN(r);
    memset(r, 0, sizeof(*r));
    r->status = status;
    fresh_cc_init(&r->cc);
    for (unsigned i = 0; i < n; i++) {
        const struct http1_header *f = &h[i];
        time_t t;

        if (hdr_is(f, "cache-control")) {
            r->has_cc = true;
            fresh_cc_parse(&r->cc, f->value, f->value_len);
        } else if (hdr_is(f, "expires")) {
            /* RFC 9111 5.3: an invalid date, e.g. "0", is in the past */
            if (http_date_parse(f->value, f->value_len, &t) != 0) {
                r->expires_invalid = true;
            } else if (!r->has_expires || (int64_t)t < r->expires) {
                r->expires = (int64_t)t;
            }
            r->has_expires = true;
        } else if (hdr_is(f, "date")) {
            if (!r->has_date && http_date_parse(f->value, f->value_len, &t) == 0) {
                r->has_date = true;
                r->date = (int64_t)t;
            }
        } else if (hdr_is(f, "age")) {
            int64_t a = parse_delta(f->value, f->value_len);
            if (a >= 0 && (!r->has_age || a > r->age)) {
                r->has_age = true;
                r->age = a;
            }
        } else if (hdr_is(f, "last-modified")) {
            if (http_date_parse(f->value, f->value_len, &t) == 0 &&
                (!r->has_last_modified || (int64_t)t > r->last_modified)) {
                r->has_last_modified = true;
                r->last_modified = (int64_t)t;
            }
        } else if (hdr_is(f, "etag")) {
            if (fresh_etag_valid(f->value, f->value_len))
                r->has_etag = true;
        }
    }
}

void fresh_resp_update(struct fresh_resp *stored, const struct fresh_resp *r304)
{
    AN(stored);
    AN(r304);
    if (r304->has_cc) {
        stored->has_cc = true;
        stored->cc = r304->cc;
    }
    if (r304->has_expires) {
        stored->has_expires = true;
        stored->expires_invalid = r304->expires_invalid;
        stored->expires = r304->expires;
    }
    if (r304->has_last_modified) {
        stored->has_last_modified = true;
        stored->last_modified = r304->last_modified;
    }
    if (r304->has_etag)
        stored->has_etag = true;
    /* RFC 9110 6.6.1: a 304 without Date is dated on receipt, which
     * fresh_decide() does when has_date is false */
    stored->has_date = r304->has_date;
    stored->date = r304->date;
    stored->has_age = r304->has_age;
    stored->age = r304->age;
}

/* ------------------------------------------------------- decision */

int fresh_policy_check(const struct fresh_policy *p)
{
    if (p == NULL || p->min_ttl < 0 || p->default_ttl < p->min_ttl ||
        p->max_ttl < p->default_ttl || p->heuristic_max < 0)
        return EDGE_EINVAL;
    return 0;
}

/* RFC 9110 15.1: status codes heuristically cacheable by default */
static bool status_heuristic(int s)
{
    switch (s) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return true;
    default:
        return false;
    }
}

/* Status codes whose caching semantics this cache implements, for
 * must-understand (RFC 9111 5.2.2.3): the final statuses it knows. */
static bool status_understood(int s)
{
    return status_heuristic(s) || s == 302 || s == 307;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

int fresh_decide(const struct fresh_resp *r, const struct fresh_policy *p,
                 int64_t request_time, int64_t response_time,
                 bool req_authorization, struct fresh_decision *d)
{
    const struct fresh_cc *cc;
    int64_t date, apparent, corrected;
    bool explicit_fresh, no_store, forbidden;

    AN(r);
    AN(d);
    memset(d, 0, sizeof(*d));
    d->source = FRESH_SRC_NONE;
    d->origin_lifetime = -1;
    if (fresh_policy_check(p) != 0)
        return EDGE_EINVAL;
    cc = &r->cc;

    /* RFC 9111 4.2.3. A response without Date is dated on receipt (RFC
     * 9110 6.6.1). */
    date = r->has_date ? r->date : response_time;
    apparent = max64(0, response_time - date);
    corrected = (r->has_age ? r->age : 0) + max64(0, response_time - request_time);
    d->initial_age = max64(apparent, corrected);

    /* RFC 9111 3: a final status; a 304 is never stored as such */
    if (r->status < 200 || r->status > 999 || r->status == 304)
        return 0;
    /* RFC 9111 5.2.2.3: must-understand limits storing to caches that
     * understand the status, and lets those ignore no-store */
    if (cc->must_understand && !status_understood(r->status))
        return 0;
    /* RFC 9111 3.5: viewer credentials, unless explicitly shareable */
    if (req_authorization && !cc->is_public && !cc->must_revalidate &&
        cc->s_maxage < 0)
        return 0;

    explicit_fresh = cc->s_maxage >= 0 || cc->max_age >= 0 || r->has_expires;
    if (!explicit_fresh && !cc->is_public && !status_heuristic(r->status))
        return 0; /* RFC 9111 3: nothing makes it storable */
    no_store = cc->no_store && !cc->must_understand;
    forbidden = no_store || cc->is_private; /* RFC 9111 5.2.2.5, 5.2.2.7 */
    if ((forbidden || cc->no_cache) && p->min_ttl > 0 && !req_authorization) {
        /* CloudFront: min_ttl > 0 caches anyway, see freshness.h */
        d->storable = true;
        d->source = FRESH_SRC_MIN_TTL;
        d->min_ttl_override = true;
        d->ttl = p->min_ttl;
        d->lifetime = d->initial_age + d->ttl;
        d->no_stale = true;
        return 0;
    }
    if (forbidden)
        return 0;
    d->storable = true;

    /* RFC 9111 4.2.1: s-maxage (shared caches), max-age, Expires - Date */
    if (cc->s_maxage >= 0) {
        d->source = FRESH_SRC_S_MAXAGE;
        d->origin_lifetime = cc->s_maxage;
    } else if (cc->max_age >= 0) {
        d->source = FRESH_SRC_MAX_AGE;
        d->origin_lifetime = cc->max_age;
    } else if (r->has_expires) {
        d->source = FRESH_SRC_EXPIRES;
        d->origin_lifetime = r->expires_invalid ? 0 : max64(0, r->expires - date);
    } else if (p->heuristic_max > 0 && r->has_last_modified) {
        /* RFC 9111 4.2.2: a fraction of the time since the last change; a
         * Last-Modified after Date counts as Date (RFC 9110 8.8.2.1) */
        d->source = FRESH_SRC_HEURISTIC;
        d->origin_lifetime = max64(0, date - r->last_modified) / 10;
        if (d->origin_lifetime > p->heuristic_max)
            d->origin_lifetime = p->heuristic_max;
    } else {
        d->source = FRESH_SRC_DEFAULT_TTL;
    }

    if (d->source == FRESH_SRC_DEFAULT_TTL) {
        /* CloudFront: the greater of min and default TTL; max not applied */
        d->ttl = max64(p->default_ttl, p->min_ttl);
    } else {
        /* CloudFront: min_ttl <= time in cache <= max_ttl. Without a
         * minimum, a response already stale on arrival keeps its negative
         * ttl, so that its staleness counts from when it really expired. */
        d->ttl = d->origin_lifetime - d->initial_age;
        if (p->min_ttl > 0 && d->ttl < p->min_ttl)
            d->ttl = p->min_ttl;
        if (d->ttl > p->max_ttl)
            d->ttl = p->max_ttl;
    }
    d->lifetime = d->initial_age + d->ttl;

    if (cc->no_cache) {
        /* RFC 9111 5.2.2.4: stored, but validated before each reuse */
        d->revalidate = true;
        d->no_stale = true;
        d->lifetime = 0;
        d->ttl = -d->initial_age;
        return 0;
    }
    if (cc->must_revalidate || cc->proxy_revalidate) {
        /* RFC 9111 5.2.2.2, 5.2.2.8; the most restrictive wins (4.2.1) */
        d->no_stale = true;
        return 0;
    }
    d->swr = max64(0, cc->stale_while_revalidate);
    d->sie = max64(0, cc->stale_if_error);
    return 0;
}

int64_t fresh_age(const struct fresh_decision *d, int64_t resident)
{
    AN(d);
    return d->initial_age + max64(0, resident);
}

enum fresh_state fresh_state(const struct fresh_decision *d, int64_t resident)
{
    int64_t age;

    AN(d);
    if (!d->storable || d->revalidate)
        return FRESH_STALE;
    age = fresh_age(d, resident);
    if (d->lifetime > age)
        return FRESH_FRESH;
    if (!d->no_stale && age - d->lifetime < d->swr)
        return FRESH_STALE_SWR;
    return FRESH_STALE;
}

bool fresh_stale_if_error(const struct fresh_decision *d, int64_t resident)
{
    int64_t age;

    AN(d);
    if (!d->storable || d->revalidate)
        return false;
    age = fresh_age(d, resident);
    if (d->lifetime > age)
        return true;
    return !d->no_stale && age - d->lifetime < d->sie;
}

/* ------------------------------------------------------ entity-tags */

/*
 * Parse one entity-tag at s[*i] (RFC 9110 8.8.3):
 *   entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE
 *   etagc      = %x21 / %x23-7E / obs-text
 * On success *i is past it and the opaque-tag (with quotes) is returned.
 */
static bool etag_scan(const char *s, size_t len, size_t *i, bool *weak,
                      const char **op, size_t *op_len)
{
    size_t k = *i;

    *weak = false;
    if (len - k >= 2 && s[k] == 'W' && s[k + 1] == '/') {
        *weak = true;
        k += 2;
    }
    if (k >= len || s[k] != '"')
        return false;
    size_t start = k++;
    while (k < len && s[k] != '"') {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x21 || c == 0x7f)
            return false;
        k++;
    }
    if (k >= len)
        return false;
    k++;
    *op = s + start;
    *op_len = k - start;
    *i = k;
    return true;
}

bool fresh_etag_valid(const char *v, size_t len)
{
    size_t i = 0;
    bool weak;
    const char *op;
    size_t ol;

    if (v == NULL)
        return false;
    return etag_scan(v, len, &i, &weak, &op, &ol) && i == len;
}

bool fresh_etag_match(const char *a, size_t alen, const char *b, size_t blen,
                      bool strong)
{
    size_t ia = 0, ib = 0;
    bool wa, wb;
    const char *oa, *ob;
    size_t la, lb;

    if (a == NULL || b == NULL)
        return false;
    if (!etag_scan(a, alen, &ia, &wa, &oa, &la) || ia != alen ||
        !etag_scan(b, blen, &ib, &wb, &ob, &lb) || ib != blen)
        return false;
    if (strong && (wa || wb))
        return false;
    return la == lb && memcmp(oa, ob, la) == 0;
}

/*
 * Whether the If-Match / If-None-Match field lines named `name` match the
 * stored entity-tag: "*" matches any representation (we have one), a list
 * matches when one member does. *present tells whether the field was there.
 */
static bool etag_list_match(const struct http1_header *h, unsigned n,
                            const char *name, const struct fresh_validators *v,
                            bool strong, bool *present)
{
    bool match = false;

    *present = false;
    for (unsigned f = 0; f < n; f++) {
        const char *s = h[f].value;
        size_t len = h[f].value_len, i = 0;

        if (!hdr_is(&h[f], name))
            continue;
        *present = true;
        while (i < len) {
            bool weak;
            const char *op;
            size_t ol;

            while (i < len && (is_ows((unsigned char)s[i]) || s[i] == ','))
                i++;
            if (i >= len)
                break;
            if (s[i] == '*') {
                size_t k = i + 1;
                while (k < len && is_ows((unsigned char)s[k]))
                    k++;
                if (k == len || s[k] == ',') {
                    match = true;
                    i = k;
                    continue;
                }
            }
            size_t start = i;
            if (etag_scan(s, len, &i, &weak, &op, &ol)) {
                size_t k = i;
                while (k < len && is_ows((unsigned char)s[k]))
                    k++;
                if (k == len || s[k] == ',') {
                    if (v->etag != NULL &&
                        fresh_etag_match(s + start, i - start, v->etag,
                                         v->etag_len, strong))
                        match = true;
                    i = k;
                    continue;
                }
            }
            /* not an entity-tag: it matches nothing; skip the member */
            while (i < len && s[i] != ',')
                i++;
        }
    }
    return match;
}

/*
 * The date of If-Modified-Since / If-Unmodified-Since: valid only as one
 * field line holding one HTTP-date (RFC 9110 13.1.3, 13.1.4).
 */
static bool cond_date(const struct http1_header *h, unsigned n, const char *name,
                      int64_t *out)
{
    const struct http1_header *found = NULL;
    time_t t;

    for (unsigned f = 0; f < n; f++) {
        if (!hdr_is(&h[f], name))
            continue;
        if (found != NULL)
            return false; /* more than one member */
        found = &h[f];
    }
    if (found == NULL || http_date_parse(found->value, found->value_len, &t) != 0)
        return false;
    *out = (int64_t)t;
    return true;
}

enum fresh_cond fresh_cond_eval(enum http1_method method,
                                const struct http1_header *h, unsigned n,
                                const struct fresh_validators *v)
{
    bool get_head = method == HTTP1_M_GET || method == HTTP1_M_HEAD;
    bool present, match;
    int64_t t;

    AN(v);
    /* no selected representation for these (RFC 9110 13.2.1) */
    if (method == HTTP1_M_CONNECT || method == HTTP1_M_OPTIONS ||
        method == HTTP1_M_TRACE)
        return FRESH_COND_PROCEED;
    if (h == NULL)
        n = 0;

    /* step 1: If-Match, strong comparison (RFC 9110 13.1.1) */
    match = etag_list_match(h, n, "if-match", v, true, &present);
    if (present) {
        if (!match)
            return FRESH_COND_PRECONDITION_FAILED;
    } else if (v->has_last_modified && cond_date(h, n, "if-unmodified-since", &t)) {
        /* step 2: If-Unmodified-Since (13.1.4): false when modified after */
        if (v->last_modified > t)
            return FRESH_COND_PRECONDITION_FAILED;
    }

    /* step 3: If-None-Match, weak comparison (13.1.2) */
    match = etag_list_match(h, n, "if-none-match", v, false, &present);
    if (present) {
        if (match)
            return get_head ? FRESH_COND_NOT_MODIFIED
                            : FRESH_COND_PRECONDITION_FAILED;
    } else if (get_head && v->has_last_modified &&
               cond_date(h, n, "if-modified-since", &t)) {
        /* step 4: If-Modified-Since (13.1.3): false when not modified after */
        if (v->last_modified <= t)
            return FRESH_COND_NOT_MODIFIED;
    }
    return FRESH_COND_PROCEED;
}

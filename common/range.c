/*
 * range.c: RFC 9110 14.1 ranges-specifier = range-unit "=" range-set, with
 * range-unit "bytes" (case-insensitive), range-set = 1#range-spec,
 * range-spec = int-range / suffix-range / other-range. Anything else makes
 * the whole field ignored: a cache must not guess.
 */

#include "range.h"

#include <stdbool.h>
#include <stdlib.h>
#include <strings.h>

/* digits at *p: 0 or -1 (none, or more than 2^63) */
static int parse_u64(const char **pp, const char *end, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (p >= end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX / 2 - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *pp = p;
    *out = v;
    return 0;
}

static const char *skip_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* "bytes" "=" after optional whitespace; returns the position after '=' */
static const char *unit(const char *value, size_t len)
{
    const char *p = value, *end = value + len;

    p = skip_ows(p, end);
    if ((size_t)(end - p) < 6 || strncasecmp(p, "bytes=", 6) != 0)
        return NULL;
    return p + 6;
}

struct spec {
    bool suffix;
    uint64_t a, b; /* int-range: a-b (b = UINT64_MAX when open); suffix: b = length */
};

/* one range-spec at *pp; 0 or -1 on bad syntax */
static int parse_spec(const char **pp, const char *end, struct spec *s)
{
    const char *p = *pp;

    if (p < end && *p == '-') {
        p++;
        s->suffix = true;
        if (parse_u64(&p, end, &s->b) < 0)
            return -1;
        s->a = 0;
    } else {
        s->suffix = false;
        if (parse_u64(&p, end, &s->a) < 0 || p >= end || *p != '-')
            return -1;
        p++;
        s->b = UINT64_MAX;
        if (p < end && *p >= '0' && *p <= '9') {
            if (parse_u64(&p, end, &s->b) < 0 || s->b < s->a)
                return -1;
        }
    }
    *pp = p;
    return 0;
}

static int cmp_span(const void *x, const void *y)
{
    const struct range_span *a = x, *b = y;

    return a->first < b->first ? -1 : a->first > b->first ? 1 : 0;
}

enum range_result range_parse(const char *value, size_t len, uint64_t length,
                              unsigned max_ranges, struct range_span *out, unsigned *n)
{
    const char *p, *end;
    unsigned nspec = 0, nok = 0;
    bool suffix_seen = false;

    *n = 0;
    if (value == NULL || (p = unit(value, len)) == NULL || max_ranges == 0)
        return RANGE_IGNORE;
    end = value + len;
    for (;;) {
        struct spec s;
        /* empty list elements (",,") are allowed by the list rule */
        p = skip_ows(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p >= end)
            break;
        if (parse_spec(&p, end, &s) < 0)
            return RANGE_IGNORE;
        p = skip_ows(p, end);
        if (p < end && *p != ',')
            return RANGE_IGNORE;
        if (++nspec > max_ranges)
            return RANGE_IGNORE;
        if (s.suffix) {
            suffix_seen = true;
            if (s.b == 0 || length == 0)
                continue; /* unsatisfiable (a zero suffix), or nothing to send */
            out[nok].first = s.b >= length ? 0 : length - s.b;
            out[nok].last = length - 1;
        } else {
            if (s.a >= length)
                continue;
            out[nok].first = s.a;
            out[nok].last = s.b >= length ? length - 1 : s.b;
        }
        nok++;
    }
    if (nspec == 0)
        return RANGE_IGNORE;
    if (nok == 0) {
        /* RFC 9110 14.1.1: for an empty body only a suffix range is
         * satisfiable, and it selects nothing: the whole (empty) body */
        return length == 0 && suffix_seen ? RANGE_IGNORE : RANGE_UNSATISFIABLE;
    }
    if (nok > 1) {
        bool merge = false;
        for (unsigned i = 0; i < nok && !merge; i++)
            for (unsigned j = i + 1; j < nok && !merge; j++) {
                const struct range_span *x = &out[i], *y = &out[j];
                uint64_t lo = x->first < y->first ? x->last : y->last;
                uint64_t hi = x->first < y->first ? y->first : x->first;
                if (hi <= lo || hi - lo <= RANGE_GAP_MIN)
                    merge = true;
            }
        if (merge) {
            unsigned k = 0;
            qsort(out, nok, sizeof(*out), cmp_span);
            for (unsigned i = 1; i < nok; i++) {
                if (out[i].first <= out[k].last ||
                    out[i].first - out[k].last <= RANGE_GAP_MIN) {
                    if (out[i].last > out[k].last)
                        out[k].last = out[i].last;
                } else {
                    out[++k] = out[i];
                }
            }
            nok = k + 1;
        }
    }
    *n = nok;
    return RANGE_OK;
}

uint64_t range_first_hint(const char *value, size_t len)
{
    const char *p;
    struct spec s;

    if (value == NULL || (p = unit(value, len)) == NULL)
        return 0;
    p = skip_ows(p, value + len);
    if (parse_spec(&p, value + len, &s) < 0 || s.suffix)
        return 0;
    return s.a;
}

/*
 * test_freshness.c: RFC 9111 freshness (Cache-Control, Expires, Age,
 * heuristics), CloudFront-style TTL clamps, stale windows, and RFC 9110
 * preconditions. Test names carry the RFC section they check. Header
 * values are copied into heap buffers of exactly their length, so that a
 * sanitizer build catches any read past a value.
 */
#include "err.h"
#include "freshness.h"
#include "timeutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tue, 14 Nov 2023 22:13:20 GMT */
#define T0 ((int64_t)1700000000)

#define MAXH 16

static struct http1_header hv[MAXH];
static char *owned[2 * MAXH];
static unsigned nh, nowned;

static char *own(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(p);
    ck_assert_uint_lt(nowned, 2 * MAXH);
    memcpy(p, s, n);
    owned[nowned++] = p;
    return p;
}

static void reset(void)
{
    for (unsigned i = 0; i < nowned; i++)
        free(owned[i]);
    nowned = 0;
    nh = 0;
}

static void add(const char *name, const char *value)
{
    ck_assert_uint_lt(nh, MAXH);
    hv[nh].name = own(name, strlen(name));
    hv[nh].name_len = strlen(name);
    hv[nh].value = own(value, strlen(value));
    hv[nh].value_len = strlen(value);
    nh++;
}

static void add_date(const char *name, int64_t t)
{
    char buf[HTTP_DATE_LEN + 1];

    http_date_format((time_t)t, buf);
    add(name, buf);
}

static void setup(void)
{
    nh = 0;
    nowned = 0;
}

static void teardown(void)
{
    reset();
}

static struct fresh_cc cc_of(const char *v)
{
    struct fresh_cc cc;
    char *p = own(v, strlen(v));

    fresh_cc_init(&cc);
    fresh_cc_parse(&cc, p, strlen(v));
    return cc;
}

/* CloudFront's defaults with min_ttl 0; heuristics off unless a test turns
 * them on */
static const struct fresh_policy pol_cf = {0, 86400, 31536000, 0};

/* Parse the headers added so far as a response of `status` received at
 * T0 for a request sent at T0, and decide. */
static struct fresh_decision decide_at(int status, const struct fresh_policy *p,
                                       int64_t req_t, int64_t resp_t, bool authz)
{
    struct fresh_resp r;
    struct fresh_decision d;

    fresh_resp_parse(&r, status, hv, nh);
    ck_assert_int_eq(fresh_decide(&r, p, req_t, resp_t, authz, &d), 0);
    return d;
}

static struct fresh_decision decide(int status, const struct fresh_policy *p)
{
    return decide_at(status, p, T0, T0, false);
}

/* ================================================= Cache-Control parsing */

START_TEST(cc_5_2_absent_is_unset)
{
    struct fresh_cc cc = cc_of("");

    ck_assert_int_eq(cc.max_age, -1);
    ck_assert_int_eq(cc.s_maxage, -1);
    ck_assert_int_eq(cc.stale_while_revalidate, -1);
    ck_assert_int_eq(cc.stale_if_error, -1);
    ck_assert(!cc.no_store && !cc.no_cache && !cc.is_private && !cc.is_public);
    ck_assert(!cc.must_revalidate && !cc.proxy_revalidate && !cc.immutable);
    ck_assert(!cc.must_understand);
}
END_TEST

START_TEST(cc_5_2_2_every_directive)
{
    struct fresh_cc cc = cc_of(
        "max-age=60, s-maxage=120, no-store, no-cache, private, "
        "must-revalidate, proxy-revalidate, public, immutable, "
        "stale-while-revalidate=30, stale-if-error=600, must-understand");

    ck_assert_int_eq(cc.max_age, 60);
    ck_assert_int_eq(cc.s_maxage, 120);
    ck_assert_int_eq(cc.stale_while_revalidate, 30);
    ck_assert_int_eq(cc.stale_if_error, 600);
    ck_assert(cc.no_store && cc.no_cache && cc.is_private && cc.is_public);
    ck_assert(cc.must_revalidate && cc.proxy_revalidate && cc.immutable);
    ck_assert(cc.must_understand);
}
END_TEST

START_TEST(cc_5_2_names_case_insensitive)
{
    struct fresh_cc cc = cc_of("MAX-AGE=5, No-Store, S-MaxAge=7, PUBLIC");

    ck_assert_int_eq(cc.max_age, 5);
    ck_assert_int_eq(cc.s_maxage, 7);
    ck_assert(cc.no_store && cc.is_public);
}
END_TEST

START_TEST(cc_5_2_quoted_argument_accepted)
{
    /* RFC 9111 5.2: recipients accept token and quoted-string forms */
    struct fresh_cc cc = cc_of("max-age=\"60\", s-maxage=\"0\"");

    ck_assert_int_eq(cc.max_age, 60);
    ck_assert_int_eq(cc.s_maxage, 0);
}
END_TEST

START_TEST(cc_5_2_2_4_qualified_no_cache_and_private)
{
    /* field-name forms are treated as the unqualified directives, and the
     * commas inside the quoted list are not member separators */
    struct fresh_cc cc = cc_of("no-cache=\"Set-Cookie, max-age=5, public\", "
                               "private=\"X-User\", max-age=100");

    ck_assert(cc.no_cache);
    ck_assert(cc.is_private);
    ck_assert(!cc.is_public);
    ck_assert_int_eq(cc.max_age, 100);

    cc = cc_of("no-cache=Set-Cookie");
    ck_assert(cc.no_cache);
    cc = cc_of("private=\"a\\\"b, c\"");
    ck_assert(cc.is_private);
}
END_TEST

START_TEST(cc_5_2_3_unknown_extensions_ignored)
{
    struct fresh_cc cc = cc_of("community=\"UCI, max-age=1\", foo, bar=baz, "
                               "max-age=10, x-y=\"\"");

    ck_assert_int_eq(cc.max_age, 10);
    ck_assert(!cc.no_store && !cc.is_public);
}
END_TEST

START_TEST(cc_4_2_1_duplicate_most_restrictive)
{
    struct fresh_cc cc = cc_of("max-age=60, max-age=30, max-age=90");

    ck_assert_int_eq(cc.max_age, 30);
    /* one list over two field lines (RFC 9110 5.3) */
    fresh_cc_parse(&cc, "s-maxage=20", 11);
    fresh_cc_parse(&cc, "s-maxage=10, stale-if-error=5", 29);
    fresh_cc_parse(&cc, "stale-if-error=50", 17);
    ck_assert_int_eq(cc.s_maxage, 10);
    ck_assert_int_eq(cc.stale_if_error, 5);
    /* equal duplicates, as when two layers add the same directive */
    cc = cc_of("max-age=60, max-age=60");
    ck_assert_int_eq(cc.max_age, 60);
}
END_TEST

START_TEST(cc_4_2_1_invalid_value_is_stale)
{
    static const char *bad[] = {
        "max-age=abc", "max-age=", "max-age", "max-age=-1", "max-age=1.5",
        "max-age=60s", "max-age=+60", "max-age=60 s", "max-age=\"6\\0\"",
        "max-age=\"60", "max-age=\"\"", "max-age=0x10",
    };

    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct fresh_cc cc = cc_of(bad[i]);
        ck_assert_msg(cc.max_age == 0, "%s -> %lld", bad[i], (long long)cc.max_age);
    }
    /* invalid beats a valid duplicate: stale is the most restrictive */
    struct fresh_cc cc = cc_of("max-age=600, max-age=x");
    ck_assert_int_eq(cc.max_age, 0);
}
END_TEST

START_TEST(cc_1_2_2_delta_seconds_overflow_capped)
{
    struct fresh_cc cc = cc_of("max-age=99999999999999999999999999, s-maxage=2147483648");

    ck_assert_int_eq(cc.max_age, FRESH_DELTA_MAX);
    ck_assert_int_eq(cc.s_maxage, FRESH_DELTA_MAX);
    cc = cc_of("max-age=2147483647");
    ck_assert_int_eq(cc.max_age, 2147483647);
}
END_TEST

START_TEST(cc_list_syntax_leniency)
{
    /* empty members and OWS (RFC 9110 5.6.1); BWS around '=' tolerated */
    struct fresh_cc cc = cc_of(" , ,max-age = 5,,\tpublic ,");

    ck_assert_int_eq(cc.max_age, 5);
    ck_assert(cc.is_public);
}
END_TEST

START_TEST(cc_malformed_members)
{
    /* an unterminated quoted-string swallows the rest of the field */
    struct fresh_cc cc = cc_of("no-cache=\"foo, max-age=5");

    ck_assert(cc.no_cache);
    ck_assert_int_eq(cc.max_age, -1);
    /* restrictive directives count even malformed; permissive ones not */
    cc = cc_of("no-store;x, public;y, immutable=\"a");
    ck_assert(cc.no_store);
    ck_assert(!cc.is_public);
    ck_assert(!cc.immutable);
    /* a member without a name is skipped */
    cc = cc_of("=5, \"x\", max-age=7");
    ck_assert_int_eq(cc.max_age, 7);
    /* NULL value: nothing */
    fresh_cc_init(&cc);
    fresh_cc_parse(&cc, NULL, 10);
    ck_assert_int_eq(cc.max_age, -1);
}
END_TEST

/* ====================================================== response fields */

START_TEST(resp_fields_parsed)
{
    struct fresh_resp r;

    add_date("Date", T0);
    add_date("Expires", T0 + 300);
    add("Age", "12");
    add_date("Last-Modified", T0 - 1000);
    add("ETag", "\"0123abcd\"");
    add("cache-control", "max-age=60");
    add("Cache-Control", "stale-if-error=9");
    add("X-Other", "1");
    fresh_resp_parse(&r, 200, hv, nh);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.has_date && r.date == T0);
    ck_assert(r.has_expires && !r.expires_invalid && r.expires == T0 + 300);
    ck_assert(r.has_age && r.age == 12);
    ck_assert(r.has_last_modified && r.last_modified == T0 - 1000);
    ck_assert(r.has_etag);
    ck_assert(r.has_cc);
    ck_assert_int_eq(r.cc.max_age, 60);
    ck_assert_int_eq(r.cc.stale_if_error, 9);
}
END_TEST

START_TEST(resp_5_3_invalid_expires)
{
    struct fresh_resp r;

    add("Expires", "0");
    fresh_resp_parse(&r, 200, hv, nh);
    ck_assert(r.has_expires && r.expires_invalid);
}
END_TEST

START_TEST(resp_4_2_1_duplicate_fields)
{
    struct fresh_resp r;

    add_date("Date", T0);
    add_date("Date", T0 + 50);        /* first Date */
    add_date("Expires", T0 + 600);
    add_date("Expires", T0 + 300);    /* earliest Expires */
    add("Age", "5");
    add("Age", "40");                 /* largest Age */
    add("Age", "x");                  /* invalid: ignored */
    add_date("Last-Modified", T0 - 900);
    add_date("Last-Modified", T0 - 100); /* latest Last-Modified */
    fresh_resp_parse(&r, 200, hv, nh);
    ck_assert_int_eq(r.date, T0);
    ck_assert_int_eq(r.expires, T0 + 300);
    ck_assert_int_eq(r.age, 40);
    ck_assert_int_eq(r.last_modified, T0 - 100);
}
END_TEST

START_TEST(resp_invalid_values_ignored)
{
    struct fresh_resp r;

    add("Date", "yesterday");
    add("Age", "-5");
    add("Last-Modified", "Sun, 06 Nov 1994");
    add("ETag", "abc");
    fresh_resp_parse(&r, 200, hv, nh);
    ck_assert(!r.has_date && !r.has_age && !r.has_last_modified && !r.has_etag);
    ck_assert(!r.has_cc && !r.has_expires);
    reset();
    add("Age", "99999999999999999999");
    fresh_resp_parse(&r, 200, hv, nh);
    ck_assert(r.has_age && r.age == FRESH_DELTA_MAX);
}
END_TEST

/* =============================================== lifetime (RFC 9111 4.2.1) */

START_TEST(life_4_2_1_s_maxage_over_max_age_over_expires)
{
    struct fresh_decision d;

    add_date("Date", T0);
    add_date("Expires", T0 + 1000);
    add("Cache-Control", "max-age=60, s-maxage=120");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.source, FRESH_SRC_S_MAXAGE);
    ck_assert_int_eq(d.origin_lifetime, 120);
    ck_assert_int_eq(d.lifetime, 120);
    ck_assert_int_eq(d.ttl, 120);

    reset();
    add_date("Date", T0);
    add_date("Expires", T0 + 1000);
    add("Cache-Control", "max-age=60");
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.source, FRESH_SRC_MAX_AGE);
    ck_assert_int_eq(d.lifetime, 60);

    reset();
    add_date("Date", T0);
    add_date("Expires", T0 + 1000);
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.source, FRESH_SRC_EXPIRES);
    ck_assert_int_eq(d.lifetime, 1000);
}
END_TEST

START_TEST(life_5_3_expires_minus_date)
{
    struct fresh_decision d;

    /* Expires - Date, not Expires - now: a skewed origin clock does not
     * matter */
    add_date("Date", T0 - 5000);
    add_date("Expires", T0 - 5000 + 300);
    d = decide_at(200, &pol_cf, T0, T0, false);
    ck_assert_int_eq(d.origin_lifetime, 300);
    /* ... but apparent age does (Date 5000 s before receipt) */
    ck_assert_int_eq(d.initial_age, 5000);
    ck_assert_int_lt(d.ttl, 0);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);

    /* no Date: the receipt time stands in (RFC 9110 6.6.1) */
    reset();
    add_date("Expires", T0 + 300);
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.lifetime, 300);
    ck_assert_int_eq(fresh_state(&d, 299), FRESH_FRESH);
    ck_assert_int_eq(fresh_state(&d, 300), FRESH_STALE);

    /* Expires in the past, and an invalid Expires: already expired */
    reset();
    add_date("Date", T0);
    add_date("Expires", T0 - 10);
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.source, FRESH_SRC_EXPIRES);
    ck_assert_int_eq(d.lifetime, 0);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);
    reset();
    add_date("Date", T0);
    add("Expires", "-1");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.source, FRESH_SRC_EXPIRES);
    ck_assert_int_eq(d.lifetime, 0);
}
END_TEST

START_TEST(life_5_3_max_age_zero_beats_expires)
{
    struct fresh_decision d;

    add_date("Date", T0);
    add_date("Expires", T0 + 3600);
    add("Cache-Control", "max-age=0");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.source, FRESH_SRC_MAX_AGE);
    ck_assert_int_eq(d.lifetime, 0);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);
}
END_TEST

START_TEST(life_4_2_2_heuristic_ten_percent_capped)
{
    struct fresh_policy p = pol_cf;
    struct fresh_decision d;

    p.heuristic_max = 3600;
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 10000);
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_HEURISTIC);
    ck_assert_int_eq(d.origin_lifetime, 1000);
    ck_assert_int_eq(d.lifetime, 1000);

    /* capped */
    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 10 * 86400);
    d = decide(200, &p);
    ck_assert_int_eq(d.origin_lifetime, 3600);

    /* just modified: zero, and a Last-Modified after Date counts as Date
     * (RFC 9110 8.8.2.1) */
    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0);
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_HEURISTIC);
    ck_assert_int_eq(d.lifetime, 0);
    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0 + 500);
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 0);

    /* no Date: measured from receipt */
    reset();
    add_date("Last-Modified", T0 - 2000);
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 200);

    /* disabled: default_ttl, as CloudFront */
    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 10000);
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.source, FRESH_SRC_DEFAULT_TTL);
    ck_assert_int_eq(d.lifetime, 86400);

    /* no Last-Modified: default_ttl */
    reset();
    add_date("Date", T0);
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_DEFAULT_TTL);
}
END_TEST

START_TEST(life_4_2_2_no_heuristic_with_explicit)
{
    struct fresh_policy p = pol_cf;
    struct fresh_decision d;

    p.heuristic_max = 3600;
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 10000);
    add("Cache-Control", "max-age=5");
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_MAX_AGE);
    ck_assert_int_eq(d.lifetime, 5);

    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 10000);
    add("Expires", "garbage");
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_EXPIRES);
    ck_assert_int_eq(d.lifetime, 0);
}
END_TEST

/* ==================================================== age (RFC 9111 4.2.3) */

START_TEST(age_4_2_3_corrected_with_age_and_delay)
{
    struct fresh_decision d;

    /* request sent at T0+2, response at T0+5 dated T0, Age: 10:
     * apparent_age = 5, corrected_age_value = 10 + 3 = 13 */
    add_date("Date", T0);
    add("Age", "10");
    add("Cache-Control", "max-age=60");
    d = decide_at(200, &pol_cf, T0 + 2, T0 + 5, false);
    ck_assert_int_eq(d.initial_age, 13);
    ck_assert_int_eq(d.lifetime, 60);
    ck_assert_int_eq(d.ttl, 47);
    ck_assert_int_eq(fresh_age(&d, 0), 13);
    ck_assert_int_eq(fresh_age(&d, 20), 33);
    ck_assert_int_eq(fresh_age(&d, -5), 13); /* a clock step back */
    ck_assert_int_eq(fresh_state(&d, 46), FRESH_FRESH);
    ck_assert_int_eq(fresh_state(&d, 47), FRESH_STALE);
}
END_TEST

START_TEST(age_4_2_3_apparent_age_wins)
{
    struct fresh_decision d;

    add_date("Date", T0 - 100);
    add("Age", "3");
    add("Cache-Control", "max-age=60");
    d = decide_at(200, &pol_cf, T0 - 1, T0, false);
    ck_assert_int_eq(d.initial_age, 100);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);

    /* a Date in the future (origin clock ahead): apparent age 0 */
    reset();
    add_date("Date", T0 + 100);
    add("Cache-Control", "max-age=60");
    d = decide_at(200, &pol_cf, T0, T0, false);
    ck_assert_int_eq(d.initial_age, 0);
    ck_assert_int_eq(d.ttl, 60);
}
END_TEST

/* ================================================ CloudFront TTL clamps */

START_TEST(clamp_min_0_lesser_of_origin_and_max)
{
    struct fresh_policy p = {0, 100, 1000, 0};
    struct fresh_decision d;

    add("Cache-Control", "max-age=5000");
    d = decide(200, &p);
    ck_assert_int_eq(d.origin_lifetime, 5000);
    ck_assert_int_eq(d.lifetime, 1000);
    reset();
    add("Cache-Control", "max-age=10");
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 10);
    reset();
    add("Cache-Control", "max-age=0");
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 0);
    /* no information: default_ttl */
    reset();
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_DEFAULT_TTL);
    ck_assert_int_eq(d.lifetime, 100);
}
END_TEST

START_TEST(clamp_min_positive_between_min_and_max)
{
    struct fresh_policy p = {100, 500, 1000, 0};
    struct fresh_decision d;

    add("Cache-Control", "max-age=10");
    d = decide(200, &p);
    ck_assert_int_eq(d.origin_lifetime, 10);
    ck_assert_int_eq(d.lifetime, 100);
    reset();
    add("Cache-Control", "s-maxage=300");
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 300);
    reset();
    add("Cache-Control", "max-age=5000");
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 1000);
    reset();
    add_date("Date", T0);
    add_date("Expires", T0 - 60);
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 100);
    reset();
    d = decide(200, &p);
    ck_assert_int_eq(d.lifetime, 500);
}
END_TEST

START_TEST(clamp_applies_to_time_in_cache)
{
    /* CloudFront's TTLs are times in the cache: with Age 300 and max-age
     * 400, min_ttl 200 keeps the response fresh here for 200 s */
    struct fresh_policy p = {200, 500, 1000, 0};
    struct fresh_decision d;

    add("Age", "300");
    add("Cache-Control", "max-age=400");
    d = decide(200, &p);
    ck_assert_int_eq(d.initial_age, 300);
    ck_assert_int_eq(d.ttl, 200);
    ck_assert_int_eq(d.lifetime, 500);
    ck_assert_int_eq(fresh_state(&d, 199), FRESH_FRESH);
    ck_assert_int_eq(fresh_state(&d, 200), FRESH_STALE);
    /* max_ttl likewise */
    p = (struct fresh_policy){0, 10, 50, 0};
    reset();
    add("Age", "300");
    add("Cache-Control", "max-age=400");
    d = decide(200, &p);
    ck_assert_int_eq(d.ttl, 50);
    ck_assert_int_eq(d.lifetime, 350);
}
END_TEST

START_TEST(clamp_heuristic_like_origin_freshness)
{
    struct fresh_policy p = {60, 500, 1000, 86400};
    struct fresh_decision d;

    add_date("Date", T0);
    add_date("Last-Modified", T0 - 100);
    d = decide(200, &p);
    ck_assert_int_eq(d.source, FRESH_SRC_HEURISTIC);
    ck_assert_int_eq(d.origin_lifetime, 10);
    ck_assert_int_eq(d.lifetime, 60);
    reset();
    add_date("Date", T0);
    add_date("Last-Modified", T0 - 100000);
    d = decide(200, &p);
    ck_assert_int_eq(d.origin_lifetime, 10000);
    ck_assert_int_eq(d.lifetime, 1000);
}
END_TEST

START_TEST(clamp_policy_checked)
{
    static const struct fresh_policy bad[] = {
        {-1, 0, 0, 0}, {10, 5, 100, 0}, {0, 100, 50, 0}, {0, 0, 0, -1},
    };
    struct fresh_resp r;
    struct fresh_decision d;

    fresh_resp_parse(&r, 200, NULL, 0);
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(fresh_policy_check(&bad[i]), EDGE_EINVAL);
        ck_assert_int_eq(fresh_decide(&r, &bad[i], T0, T0, false, &d), EDGE_EINVAL);
        ck_assert(!d.storable);
        ck_assert_int_eq(d.source, FRESH_SRC_NONE);
    }
    ck_assert_int_eq(fresh_policy_check(NULL), EDGE_EINVAL);
    ck_assert_int_eq(fresh_policy_check(&pol_cf), 0);
    ck_assert_int_eq(fresh_policy_check(&(struct fresh_policy){5, 5, 5, 0}), 0);
}
END_TEST

/* ========================================= storability (RFC 9111 3, 5.2.2) */

START_TEST(store_5_2_2_5_no_store)
{
    struct fresh_policy p = {30, 500, 1000, 0};
    struct fresh_decision d;

    add("Cache-Control", "no-store, max-age=600");
    d = decide(200, &pol_cf);
    ck_assert(!d.storable);
    ck_assert_int_eq(d.source, FRESH_SRC_NONE);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);
    ck_assert(!fresh_stale_if_error(&d, 0));
    /* CloudFront: min_ttl > 0 caches for min_ttl anyway */
    d = decide(200, &p);
    ck_assert(d.storable);
    ck_assert(d.min_ttl_override);
    ck_assert_int_eq(d.source, FRESH_SRC_MIN_TTL);
    ck_assert_int_eq(d.ttl, 30);
    ck_assert(d.no_stale);
    ck_assert_int_eq(fresh_state(&d, 29), FRESH_FRESH);
    ck_assert_int_eq(fresh_state(&d, 30), FRESH_STALE);
}
END_TEST

START_TEST(store_5_2_2_7_private)
{
    struct fresh_policy p = {30, 500, 1000, 0};
    struct fresh_decision d;

    add("Cache-Control", "private, max-age=600");
    d = decide(200, &pol_cf);
    ck_assert(!d.storable);
    d = decide(200, &p);
    ck_assert(d.storable && d.min_ttl_override);
    reset();
    add("Cache-Control", "private=\"Set-Cookie\", max-age=600");
    d = decide(200, &pol_cf);
    ck_assert(!d.storable);
}
END_TEST

START_TEST(store_5_2_2_4_no_cache_revalidates_every_time)
{
    struct fresh_policy p = {30, 500, 1000, 0};
    struct fresh_decision d;

    add_date("Date", T0);
    add("ETag", "\"v1\"");
    add("Cache-Control", "no-cache, max-age=600, stale-while-revalidate=60, "
                         "stale-if-error=600");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert(d.revalidate && d.no_stale);
    ck_assert_int_eq(d.lifetime, 0);
    ck_assert_int_eq(d.swr, 0);
    ck_assert_int_eq(d.sie, 0);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE);
    ck_assert(!fresh_stale_if_error(&d, 1));
    /* qualified form: the same */
    reset();
    add("Cache-Control", "no-cache=\"Set-Cookie\", max-age=600");
    d = decide(200, &pol_cf);
    ck_assert(d.storable && d.revalidate);
    /* min_ttl > 0: cached for min_ttl */
    d = decide(200, &p);
    ck_assert(d.min_ttl_override && !d.revalidate);
    ck_assert_int_eq(fresh_state(&d, 10), FRESH_FRESH);
}
END_TEST

START_TEST(store_3_5_authorization)
{
    struct fresh_policy p = {30, 500, 1000, 0};
    struct fresh_decision d;

    add("Cache-Control", "max-age=60");
    d = decide_at(200, &pol_cf, T0, T0, true);
    ck_assert(!d.storable);
    reset();
    add("Cache-Control", "max-age=60, public");
    d = decide_at(200, &pol_cf, T0, T0, true);
    ck_assert(d.storable);
    reset();
    add("Cache-Control", "s-maxage=60");
    d = decide_at(200, &pol_cf, T0, T0, true);
    ck_assert(d.storable);
    reset();
    add("Cache-Control", "must-revalidate, max-age=60");
    d = decide_at(200, &pol_cf, T0, T0, true);
    ck_assert(d.storable);
    /* min_ttl never stores a credentialed response the origin forbade */
    reset();
    add("Cache-Control", "public, no-store");
    d = decide_at(200, &p, T0, T0, true);
    ck_assert(!d.storable);
}
END_TEST

START_TEST(store_3_status_codes)
{
    /* RFC 9110 15.1 heuristically cacheable statuses store without
     * freshness information; others need it */
    static const int heur[] = {200, 203, 204, 206, 300, 301, 308, 404, 405,
                               410, 414, 501};
    static const int other[] = {201, 302, 303, 307, 400, 403, 500, 502, 503};
    struct fresh_decision d;

    for (unsigned i = 0; i < sizeof(heur) / sizeof(heur[0]); i++) {
        d = decide(heur[i], &pol_cf);
        ck_assert_msg(d.storable, "%d", heur[i]);
        ck_assert_int_eq(d.source, FRESH_SRC_DEFAULT_TTL);
    }
    for (unsigned i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        d = decide(other[i], &pol_cf);
        ck_assert_msg(!d.storable, "%d", other[i]);
    }
    add("Cache-Control", "max-age=60");
    for (unsigned i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        d = decide(other[i], &pol_cf);
        ck_assert_msg(d.storable, "%d with max-age", other[i]);
    }
    /* public makes any final status storable (RFC 9111 5.2.2.9) */
    reset();
    add("Cache-Control", "public");
    d = decide(403, &pol_cf);
    ck_assert(d.storable);
    /* never: interim, 304, nonsense */
    reset();
    add("Cache-Control", "max-age=60");
    ck_assert(!decide(100, &pol_cf).storable);
    ck_assert(!decide(304, &pol_cf).storable);
    ck_assert(!decide(1000, &pol_cf).storable);
    /* no min_ttl override for a status that nothing makes storable */
    reset();
    add("Cache-Control", "no-store");
    d = decide(500, &(struct fresh_policy){30, 500, 1000, 0});
    ck_assert(!d.storable);
}
END_TEST

START_TEST(store_5_2_2_3_must_understand)
{
    struct fresh_decision d;

    add("Cache-Control", "must-understand, no-store, max-age=60");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.lifetime, 60);
    d = decide(299, &pol_cf);
    ck_assert(!d.storable);
    d = decide(299, &(struct fresh_policy){30, 500, 1000, 0});
    ck_assert(!d.storable);
}
END_TEST

START_TEST(store_immutable_no_effect_on_lifetime)
{
    struct fresh_decision d;

    /* RFC 8246 concerns clients' reloads; a shared cache keeps max-age */
    add("Cache-Control", "max-age=60, immutable");
    d = decide(200, &pol_cf);
    ck_assert(d.storable);
    ck_assert_int_eq(d.lifetime, 60);
}
END_TEST

/* ============================================ stale serving (RFC 5861) */

START_TEST(stale_5861_windows)
{
    struct fresh_decision d;

    add("Cache-Control", "max-age=60, stale-while-revalidate=30, stale-if-error=300");
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.swr, 30);
    ck_assert_int_eq(d.sie, 300);
    ck_assert_int_eq(fresh_state(&d, 59), FRESH_FRESH);
    ck_assert_int_eq(fresh_state(&d, 60), FRESH_STALE_SWR);
    ck_assert_int_eq(fresh_state(&d, 89), FRESH_STALE_SWR);
    ck_assert_int_eq(fresh_state(&d, 90), FRESH_STALE);
    ck_assert(fresh_stale_if_error(&d, 10));
    ck_assert(fresh_stale_if_error(&d, 359));
    ck_assert(!fresh_stale_if_error(&d, 360));
    /* zero windows are no windows */
    reset();
    add("Cache-Control", "max-age=60, stale-while-revalidate=0, stale-if-error=0");
    d = decide(200, &pol_cf);
    ck_assert_int_eq(fresh_state(&d, 60), FRESH_STALE);
    ck_assert(!fresh_stale_if_error(&d, 60));
    ck_assert(fresh_stale_if_error(&d, 59));
}
END_TEST

START_TEST(stale_5_2_2_2_must_revalidate_closes_windows)
{
    static const char *cc[] = {
        "max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=300",
        "max-age=60, proxy-revalidate, stale-while-revalidate=30, stale-if-error=300",
    };
    struct fresh_decision d;

    for (unsigned i = 0; i < 2; i++) {
        reset();
        add("Cache-Control", cc[i]);
        d = decide(200, &pol_cf);
        ck_assert(d.no_stale);
        ck_assert_int_eq(d.swr, 0);
        ck_assert_int_eq(d.sie, 0);
        ck_assert_int_eq(fresh_state(&d, 59), FRESH_FRESH);
        ck_assert_int_eq(fresh_state(&d, 60), FRESH_STALE);
        ck_assert(!fresh_stale_if_error(&d, 60));
    }
}
END_TEST

START_TEST(stale_5_2_2_10_s_maxage_with_explicit_windows)
{
    struct fresh_decision d;

    add("Cache-Control", "s-maxage=60, stale-while-revalidate=600");
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.lifetime, 60);
    ck_assert_int_eq(fresh_state(&d, 100), FRESH_STALE_SWR);
}
END_TEST

START_TEST(stale_window_counts_from_real_expiry)
{
    /* already stale on arrival by 20 s (Age 30 > max-age 10) */
    struct fresh_decision d;

    add("Age", "30");
    add("Cache-Control", "max-age=10, stale-while-revalidate=25, stale-if-error=21");
    d = decide(200, &pol_cf);
    ck_assert_int_eq(d.ttl, -20);
    ck_assert_int_eq(fresh_state(&d, 0), FRESH_STALE_SWR);
    ck_assert_int_eq(fresh_state(&d, 4), FRESH_STALE_SWR);
    ck_assert_int_eq(fresh_state(&d, 5), FRESH_STALE);
    ck_assert(fresh_stale_if_error(&d, 0));
    ck_assert(!fresh_stale_if_error(&d, 1));
}
END_TEST

/* ==================================== revalidation update (RFC 9111 4.3.4) */

START_TEST(update_4_3_4_304_refreshes)
{
    struct fresh_resp stored, r304;
    struct fresh_decision d;

    add_date("Date", T0);
    add("Age", "50");
    add("ETag", "\"v1\"");
    add("Cache-Control", "max-age=60");
    fresh_resp_parse(&stored, 200, hv, nh);
    ck_assert_int_eq(fresh_decide(&stored, &pol_cf, T0, T0, false, &d), 0);
    ck_assert_int_eq(d.ttl, 10);

    /* a 304 at T0+1000 with a new Cache-Control and no Date, no Age */
    reset();
    add("Cache-Control", "max-age=120");
    fresh_resp_parse(&r304, 304, hv, nh);
    fresh_resp_update(&stored, &r304);
    ck_assert_int_eq(stored.status, 200);
    ck_assert(stored.has_etag);
    ck_assert(!stored.has_age);
    ck_assert(!stored.has_date);
    ck_assert_int_eq(fresh_decide(&stored, &pol_cf, T0 + 999, T0 + 1000, false, &d), 0);
    ck_assert(d.storable);
    ck_assert_int_eq(d.initial_age, 1);
    ck_assert_int_eq(d.lifetime, 120);
    ck_assert_int_eq(d.ttl, 119);

    /* a 304 without Cache-Control keeps the stored one; its Date counts */
    reset();
    add_date("Date", T0 + 2000);
    add_date("Expires", T0 + 2030);
    fresh_resp_parse(&r304, 304, hv, nh);
    fresh_resp_update(&stored, &r304);
    ck_assert_int_eq(stored.cc.max_age, 120);
    ck_assert(stored.has_expires);
    ck_assert_int_eq(fresh_decide(&stored, &pol_cf, T0 + 2000, T0 + 2000, false, &d), 0);
    ck_assert_int_eq(d.source, FRESH_SRC_MAX_AGE);
    ck_assert_int_eq(d.lifetime, 120);

    /* Last-Modified carried over */
    reset();
    add_date("Last-Modified", T0 + 1500);
    fresh_resp_parse(&r304, 304, hv, nh);
    fresh_resp_update(&stored, &r304);
    ck_assert(stored.has_last_modified);
    ck_assert_int_eq(stored.last_modified, T0 + 1500);
}
END_TEST

/* ========================================== entity-tags (RFC 9110 8.8.3) */

START_TEST(etag_8_8_3_syntax)
{
    ck_assert(fresh_etag_valid("\"abc\"", 5));
    ck_assert(fresh_etag_valid("W/\"abc\"", 7));
    ck_assert(fresh_etag_valid("\"\"", 2));
    ck_assert(fresh_etag_valid("\"\xe9\"", 3));                  /* obs-text */
    ck_assert(fresh_etag_valid("\"d41d8cd98f00b204e9800998ecf8427e-12\"", 37));
    ck_assert(!fresh_etag_valid("w/\"abc\"", 7));                /* W/ is case-sensitive */
    ck_assert(!fresh_etag_valid("abc", 3));
    ck_assert(!fresh_etag_valid("\"ab\"c\"", 6));
    ck_assert(!fresh_etag_valid("\"a b\"", 5));
    ck_assert(!fresh_etag_valid("\"abc", 4));
    ck_assert(!fresh_etag_valid("W/", 2));
    ck_assert(!fresh_etag_valid("", 0));
    ck_assert(!fresh_etag_valid(NULL, 0));
    ck_assert(!fresh_etag_valid("\"abc\" ", 6));
}
END_TEST

START_TEST(etag_8_8_3_2_comparison_table)
{
    /* the table of RFC 9110 8.8.3.2 */
    ck_assert(!fresh_etag_match("W/\"1\"", 5, "W/\"1\"", 5, true));
    ck_assert(fresh_etag_match("W/\"1\"", 5, "W/\"1\"", 5, false));
    ck_assert(!fresh_etag_match("W/\"1\"", 5, "W/\"2\"", 5, true));
    ck_assert(!fresh_etag_match("W/\"1\"", 5, "W/\"2\"", 5, false));
    ck_assert(!fresh_etag_match("W/\"1\"", 5, "\"1\"", 3, true));
    ck_assert(fresh_etag_match("W/\"1\"", 5, "\"1\"", 3, false));
    ck_assert(fresh_etag_match("\"1\"", 3, "\"1\"", 3, true));
    ck_assert(fresh_etag_match("\"1\"", 3, "\"1\"", 3, false));
    /* octet-exact, and invalid values match nothing */
    ck_assert(!fresh_etag_match("\"a\"", 3, "\"A\"", 3, false));
    ck_assert(!fresh_etag_match("abc", 3, "abc", 3, false));
    ck_assert(!fresh_etag_match(NULL, 0, "\"1\"", 3, false));
}
END_TEST

/* ======================================== preconditions (RFC 9110 13.2.2) */

static const struct fresh_validators val_strong = {"\"abc\"", 5, true, T0};
static const struct fresh_validators val_weak = {"W/\"abc\"", 7, true, T0};
static const struct fresh_validators val_none = {NULL, 0, false, 0};

static enum fresh_cond cond(enum http1_method m, const struct fresh_validators *v)
{
    return fresh_cond_eval(m, hv, nh, v);
}

START_TEST(cond_none_proceeds)
{
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    ck_assert_int_eq(fresh_cond_eval(HTTP1_M_GET, NULL, 3, &val_strong),
                     FRESH_COND_PROCEED);
    add("Range", "bytes=0-1");
    add("If-Range", "\"zzz\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
}
END_TEST

START_TEST(cond_13_1_1_if_match_strong)
{
    static const struct {
        const char *value;
        const struct fresh_validators *v;
        enum fresh_cond want;
    } t[] = {
        {"\"abc\"", &val_strong, FRESH_COND_PROCEED},
        {"\"xyz\"", &val_strong, FRESH_COND_PRECONDITION_FAILED},
        {"*", &val_strong, FRESH_COND_PROCEED},
        {" * ", &val_strong, FRESH_COND_PROCEED},
        {"\"xyz\", \"abc\"", &val_strong, FRESH_COND_PROCEED},
        {"\"xyz\",\"abc\" ,", &val_strong, FRESH_COND_PROCEED},
        {"W/\"abc\"", &val_strong, FRESH_COND_PRECONDITION_FAILED},
        {"\"abc\"", &val_weak, FRESH_COND_PRECONDITION_FAILED},
        {"W/\"abc\"", &val_weak, FRESH_COND_PRECONDITION_FAILED},
        {"\"abc\"", &val_none, FRESH_COND_PRECONDITION_FAILED},
        {"*", &val_none, FRESH_COND_PROCEED},
        {"abc", &val_strong, FRESH_COND_PRECONDITION_FAILED},
        {"abc, \"abc\"", &val_strong, FRESH_COND_PROCEED},
        {"\"abc\"x", &val_strong, FRESH_COND_PRECONDITION_FAILED},
        {"", &val_strong, FRESH_COND_PRECONDITION_FAILED},
        {"\"ABC\"", &val_strong, FRESH_COND_PRECONDITION_FAILED},
    };

    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        reset();
        add("If-Match", t[i].value);
        ck_assert_msg(cond(HTTP1_M_GET, t[i].v) == t[i].want, "If-Match: %s (#%u)",
                      t[i].value, i);
        /* the outcome does not depend on the method */
        ck_assert(cond(HTTP1_M_PUT, t[i].v) == t[i].want);
    }
}
END_TEST

START_TEST(cond_13_1_2_if_none_match_weak)
{
    static const struct {
        const char *value;
        const struct fresh_validators *v;
        bool match;
    } t[] = {
        {"\"abc\"", &val_strong, true},
        {"W/\"abc\"", &val_strong, true},
        {"\"abc\"", &val_weak, true},
        {"W/\"abc\"", &val_weak, true},
        {"*", &val_strong, true},
        {"*", &val_none, true},
        {"\"x\", W/\"abc\"", &val_strong, true},
        {"\"xyz\"", &val_strong, false},
        {"\"abc\"", &val_none, false},
        {"abc", &val_strong, false},
        {"\"ab", &val_strong, false},
        {"", &val_strong, false},
    };

    for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        reset();
        add("If-None-Match", t[i].value);
        enum fresh_cond g = t[i].match ? FRESH_COND_NOT_MODIFIED : FRESH_COND_PROCEED;
        enum fresh_cond o = t[i].match ? FRESH_COND_PRECONDITION_FAILED
                                       : FRESH_COND_PROCEED;
        ck_assert_msg(cond(HTTP1_M_GET, t[i].v) == g, "If-None-Match: %s", t[i].value);
        ck_assert(cond(HTTP1_M_HEAD, t[i].v) == g);
        /* other methods: 412 (RFC 9110 13.1.2) */
        ck_assert(cond(HTTP1_M_POST, t[i].v) == o);
        ck_assert(cond(HTTP1_M_DELETE, t[i].v) == o);
    }
    /* one list over several field lines */
    reset();
    add("If-None-Match", "\"x\"");
    add("If-None-Match", "\"y\", \"abc\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
}
END_TEST

START_TEST(cond_13_1_3_if_modified_since)
{
    add_date("If-Modified-Since", T0);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    ck_assert_int_eq(cond(HTTP1_M_HEAD, &val_strong), FRESH_COND_NOT_MODIFIED);
    /* only for GET and HEAD */
    ck_assert_int_eq(cond(HTTP1_M_POST, &val_strong), FRESH_COND_PROCEED);
    ck_assert_int_eq(cond(HTTP1_M_PUT, &val_strong), FRESH_COND_PROCEED);
    reset();
    add_date("If-Modified-Since", T0 + 10);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    reset();
    add_date("If-Modified-Since", T0 - 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    /* invalid date, two members, no stored Last-Modified: ignored */
    reset();
    add("If-Modified-Since", "yesterday");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    reset();
    add_date("If-Modified-Since", T0 + 10);
    add_date("If-Modified-Since", T0 + 10);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    reset();
    add("If-Modified-Since", "Tue, 14 Nov 2023 22:13:20 GMT, Tue, 14 Nov 2023 22:13:20 GMT");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    reset();
    add_date("If-Modified-Since", T0 + 10);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_none), FRESH_COND_PROCEED);
    /* the obsolete date forms are dates too (RFC 9110 5.6.7) */
    reset();
    add("If-Modified-Since", "Tuesday, 14-Nov-23 22:13:20 GMT");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    reset();
    add("If-Modified-Since", "Tue Nov 14 22:13:20 2023");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
}
END_TEST

START_TEST(cond_13_1_3_ims_ignored_with_inm)
{
    /* If-None-Match present (not matching): If-Modified-Since is ignored */
    add("If-None-Match", "\"other\"");
    add_date("If-Modified-Since", T0 + 10);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    /* and an invalid If-None-Match still counts as present */
    reset();
    add("If-None-Match", "garbage");
    add_date("If-Modified-Since", T0 + 10);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    /* matching: 304 whatever If-Modified-Since says */
    reset();
    add("If-None-Match", "\"abc\"");
    add_date("If-Modified-Since", T0 - 100);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
}
END_TEST

START_TEST(cond_13_1_4_if_unmodified_since)
{
    add_date("If-Unmodified-Since", T0 - 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PRECONDITION_FAILED);
    ck_assert_int_eq(cond(HTTP1_M_PUT, &val_strong), FRESH_COND_PRECONDITION_FAILED);
    reset();
    add_date("If-Unmodified-Since", T0);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    /* invalid date, list of dates, no stored Last-Modified: ignored */
    reset();
    add("If-Unmodified-Since", "0");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    reset();
    add_date("If-Unmodified-Since", T0 - 1);
    add_date("If-Unmodified-Since", T0 - 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
    reset();
    add_date("If-Unmodified-Since", T0 - 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_none), FRESH_COND_PROCEED);
    /* ignored when If-Match is present */
    reset();
    add("If-Match", "\"abc\"");
    add_date("If-Unmodified-Since", T0 - 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PROCEED);
}
END_TEST

START_TEST(cond_13_2_2_evaluation_order)
{
    /* step 1 before step 3: a failed If-Match is 412 even if
     * If-None-Match would give 304 */
    add("If-Match", "\"xyz\"");
    add("If-None-Match", "\"abc\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PRECONDITION_FAILED);
    /* step 1 passes, step 3 matches: 304 */
    reset();
    add("If-Match", "\"abc\"");
    add("If-None-Match", "\"abc\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    /* step 2 fails before step 4 could give 304 */
    reset();
    add_date("If-Unmodified-Since", T0 - 1);
    add_date("If-Modified-Since", T0 + 1);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PRECONDITION_FAILED);
    /* step 2 passes, step 4 gives 304 */
    reset();
    add_date("If-Unmodified-Since", T0);
    add_date("If-Modified-Since", T0);
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    /* all four, all passing the precondition and matching: 304 */
    reset();
    add("If-Match", "*");
    add_date("If-Unmodified-Since", T0 - 1000); /* ignored: If-Match present */
    add("If-None-Match", "W/\"abc\"");
    add_date("If-Modified-Since", T0 - 1000);   /* ignored: If-None-Match */
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    ck_assert_int_eq(cond(HTTP1_M_PUT, &val_strong), FRESH_COND_PRECONDITION_FAILED);
}
END_TEST

START_TEST(cond_13_2_1_no_representation_methods)
{
    add("If-Match", "\"xyz\"");
    add("If-None-Match", "*");
    ck_assert_int_eq(cond(HTTP1_M_OPTIONS, &val_strong), FRESH_COND_PROCEED);
    ck_assert_int_eq(cond(HTTP1_M_CONNECT, &val_strong), FRESH_COND_PROCEED);
    ck_assert_int_eq(cond(HTTP1_M_TRACE, &val_strong), FRESH_COND_PROCEED);
}
END_TEST

START_TEST(cond_header_names_case_insensitive)
{
    add("if-none-match", "\"abc\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_NOT_MODIFIED);
    reset();
    add("IF-MATCH", "\"nope\"");
    ck_assert_int_eq(cond(HTTP1_M_GET, &val_strong), FRESH_COND_PRECONDITION_FAILED);
}
END_TEST

static Suite *freshness_suite(void)
{
    Suite *s = suite_create("freshness");
    TCase *tc;

    tc = tcase_create("cache-control");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, cc_5_2_absent_is_unset);
    tcase_add_test(tc, cc_5_2_2_every_directive);
    tcase_add_test(tc, cc_5_2_names_case_insensitive);
    tcase_add_test(tc, cc_5_2_quoted_argument_accepted);
    tcase_add_test(tc, cc_5_2_2_4_qualified_no_cache_and_private);
    tcase_add_test(tc, cc_5_2_3_unknown_extensions_ignored);
    tcase_add_test(tc, cc_4_2_1_duplicate_most_restrictive);
    tcase_add_test(tc, cc_4_2_1_invalid_value_is_stale);
    tcase_add_test(tc, cc_1_2_2_delta_seconds_overflow_capped);
    tcase_add_test(tc, cc_list_syntax_leniency);
    tcase_add_test(tc, cc_malformed_members);
    suite_add_tcase(s, tc);

    tc = tcase_create("response");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, resp_fields_parsed);
    tcase_add_test(tc, resp_5_3_invalid_expires);
    tcase_add_test(tc, resp_4_2_1_duplicate_fields);
    tcase_add_test(tc, resp_invalid_values_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("lifetime");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, life_4_2_1_s_maxage_over_max_age_over_expires);
    tcase_add_test(tc, life_5_3_expires_minus_date);
    tcase_add_test(tc, life_5_3_max_age_zero_beats_expires);
    tcase_add_test(tc, life_4_2_2_heuristic_ten_percent_capped);
    tcase_add_test(tc, life_4_2_2_no_heuristic_with_explicit);
    tcase_add_test(tc, age_4_2_3_corrected_with_age_and_delay);
    tcase_add_test(tc, age_4_2_3_apparent_age_wins);
    suite_add_tcase(s, tc);

    tc = tcase_create("clamps");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, clamp_min_0_lesser_of_origin_and_max);
    tcase_add_test(tc, clamp_min_positive_between_min_and_max);
    tcase_add_test(tc, clamp_applies_to_time_in_cache);
    tcase_add_test(tc, clamp_heuristic_like_origin_freshness);
    tcase_add_test(tc, clamp_policy_checked);
    suite_add_tcase(s, tc);

    tc = tcase_create("storable");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, store_5_2_2_5_no_store);
    tcase_add_test(tc, store_5_2_2_7_private);
    tcase_add_test(tc, store_5_2_2_4_no_cache_revalidates_every_time);
    tcase_add_test(tc, store_3_5_authorization);
    tcase_add_test(tc, store_3_status_codes);
    tcase_add_test(tc, store_5_2_2_3_must_understand);
    tcase_add_test(tc, store_immutable_no_effect_on_lifetime);
    suite_add_tcase(s, tc);

    tc = tcase_create("stale");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, stale_5861_windows);
    tcase_add_test(tc, stale_5_2_2_2_must_revalidate_closes_windows);
    tcase_add_test(tc, stale_5_2_2_10_s_maxage_with_explicit_windows);
    tcase_add_test(tc, stale_window_counts_from_real_expiry);
    tcase_add_test(tc, update_4_3_4_304_refreshes);
    suite_add_tcase(s, tc);

    tc = tcase_create("conditionals");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, etag_8_8_3_syntax);
    tcase_add_test(tc, etag_8_8_3_2_comparison_table);
    tcase_add_test(tc, cond_none_proceeds);
    tcase_add_test(tc, cond_13_1_1_if_match_strong);
    tcase_add_test(tc, cond_13_1_2_if_none_match_weak);
    tcase_add_test(tc, cond_13_1_3_if_modified_since);
    tcase_add_test(tc, cond_13_1_3_ims_ignored_with_inm);
    tcase_add_test(tc, cond_13_1_4_if_unmodified_since);
    tcase_add_test(tc, cond_13_2_2_evaluation_order);
    tcase_add_test(tc, cond_13_2_1_no_representation_methods);
    tcase_add_test(tc, cond_header_names_case_insensitive);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(freshness_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Unit tests for common/range: RFC 9110 14 Range parsing and resolution. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "range.h"

static enum range_result rp(const char *v, uint64_t len, unsigned max, struct range_span *o,
                            unsigned *n)
{
    return range_parse(v, strlen(v), len, max, o, n);
}

START_TEST(single_forms)
{
    struct range_span o[16];
    unsigned n;

    ck_assert_int_eq(rp("bytes=0-499", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(o[0].first, 0);
    ck_assert_uint_eq(o[0].last, 499);
    ck_assert_int_eq(rp("bytes=9500-", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(o[0].first, 9500);
    ck_assert_uint_eq(o[0].last, 9999);
    ck_assert_int_eq(rp("bytes=-500", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(o[0].first, 9500);
    ck_assert_uint_eq(o[0].last, 9999);
    /* a last-pos beyond the end is clipped */
    ck_assert_int_eq(rp("bytes=100-999999", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(o[0].last, 9999);
    /* a suffix longer than the body: all of it */
    ck_assert_int_eq(rp("bytes=-20000", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(o[0].first, 0);
    ck_assert_uint_eq(o[0].last, 9999);
    /* unit is case-insensitive, OWS around list elements */
    ck_assert_int_eq(rp("Bytes=1-2 , 5-6", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 1); /* gap of 2 bytes: merged */
    ck_assert_uint_eq(o[0].first, 1);
    ck_assert_uint_eq(o[0].last, 6);
}
END_TEST

START_TEST(unsatisfiable)
{
    struct range_span o[16];
    unsigned n;

    ck_assert_int_eq(rp("bytes=10000-", 10000, 16, o, &n), RANGE_UNSATISFIABLE);
    ck_assert_int_eq(rp("bytes=20000-30000", 10000, 16, o, &n), RANGE_UNSATISFIABLE);
    ck_assert_int_eq(rp("bytes=-0", 10000, 16, o, &n), RANGE_UNSATISFIABLE);
    /* one satisfiable range is enough */
    ck_assert_int_eq(rp("bytes=20000-,0-0", 10000, 16, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(o[0].last, 0);
    /* zero-length body: int-ranges are unsatisfiable, a suffix selects
     * nothing and the whole empty body is sent */
    ck_assert_int_eq(rp("bytes=0-", 0, 16, o, &n), RANGE_UNSATISFIABLE);
    ck_assert_int_eq(rp("bytes=0-0", 0, 16, o, &n), RANGE_UNSATISFIABLE);
    ck_assert_int_eq(rp("bytes=-5", 0, 16, o, &n), RANGE_IGNORE);
}
END_TEST

START_TEST(ignored)
{
    static const char *const bad[] = {
        "", "bytes", "bytes=", "bytes=,", "items=0-1", "bytes 0-1", "bytes=a-1",
        "bytes=1-0", "bytes=5-2", "bytes=--1", "bytes=1--2", "bytes=0-1;x",
        "bytes=0-1 2", "bytes=-", "bytes=0x1-2", "bytes=99999999999999999999-",
        "bytes=1-2,x", "bytes=+1-2",
    };
    struct range_span o[16];
    unsigned n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(rp(bad[i], 10000, 16, o, &n) == RANGE_IGNORE, "%s", bad[i]);
}
END_TEST

START_TEST(many_and_merge)
{
    struct range_span o[4];
    unsigned n;

    /* disjoint ranges keep their order */
    ck_assert_int_eq(rp("bytes=500-599,0-99", 10000, 4, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(o[0].first, 500);
    ck_assert_uint_eq(o[1].first, 0);
    /* overlapping ones are merged and sorted */
    ck_assert_int_eq(rp("bytes=500-599,0-99,50-550", 10000, 4, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(o[0].first, 0);
    ck_assert_uint_eq(o[0].last, 599);
    /* more specs than allowed: the whole body (counted before merging) */
    ck_assert_int_eq(rp("bytes=0-0,0-0,0-0,0-0,0-0", 10000, 4, o, &n), RANGE_IGNORE);
    ck_assert_int_eq(rp("bytes=0-0,,,0-0", 10000, 4, o, &n), RANGE_OK);
    ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(first_hint)
{
    ck_assert_uint_eq(range_first_hint("bytes=943718400-944766975", 25), 943718400);
    ck_assert_uint_eq(range_first_hint("bytes=-10", 9), 0);
    ck_assert_uint_eq(range_first_hint("junk", 4), 0);
    ck_assert_uint_eq(range_first_hint(NULL, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("range");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int nf;

    tcase_add_test(tc, single_forms);
    tcase_add_test(tc, unsatisfiable);
    tcase_add_test(tc, ignored);
    tcase_add_test(tc, many_and_merge);
    tcase_add_test(tc, first_hint);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

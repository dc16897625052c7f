/*
 * test_purge.c: the invalidation rule set (edge/purge.c): exact, prefix and
 * tag matching against the fetch start time, hard over soft, the millisecond
 * of the rule itself, expiry, the journal surviving a restart (torn lines
 * skipped), and that a lookup costs the same with 100,000 rules.
 */
#include "err.h"
#include "purge.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DAY_MS (86400LL * 1000)

static struct purge *mem_set(void)
{
    char err[256];
    struct purge *p = purge_new(NULL, DAY_MS, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    return p;
}

static enum purge_verdict m(struct purge *p, const char *path, const char *tags, int64_t fetch)
{
    const char *t[1] = {tags};
    int64_t soft = 0;
    return purge_match(p, path, strlen(path), t, tags ? 1 : 0, fetch, &soft);
}

START_TEST(empty_set_is_valid)
{
    struct purge *p = mem_set();
    ck_assert_int_eq(m(p, "/a", NULL, 1), PURGE_VALID);
    ck_assert_uint_eq(purge_count(p), 0);
    purge_free(p);
}
END_TEST

START_TEST(exact_path_against_fetch_time)
{
    struct purge *p = mem_set();
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, "/videos/a.mp4", 13, false, 1000), 0);
    ck_assert_int_eq(m(p, "/videos/a.mp4", NULL, 999), PURGE_HARD);
    /* the rule's own millisecond: the fetch may have started before it */
    ck_assert_int_eq(m(p, "/videos/a.mp4", NULL, 1000), PURGE_HARD);
    ck_assert_int_eq(m(p, "/videos/a.mp4", NULL, 1001), PURGE_VALID);
    /* exact means exact */
    ck_assert_int_eq(m(p, "/videos/a.mp", NULL, 1), PURGE_VALID);
    ck_assert_int_eq(m(p, "/videos/a.mp4x", NULL, 1), PURGE_VALID);
    ck_assert_int_eq(m(p, "/videos/A.mp4", NULL, 1), PURGE_VALID);
    purge_free(p);
}
END_TEST

START_TEST(prefix_is_bytewise)
{
    struct purge *p = mem_set();
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/releases/2.1/", 14, false, 500), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/img", 4, false, 700), 0);
    ck_assert_int_eq(m(p, "/releases/2.1/x.tar", NULL, 10), PURGE_HARD);
    ck_assert_int_eq(m(p, "/releases/2.1/", NULL, 10), PURGE_HARD);
    ck_assert_int_eq(m(p, "/releases/2.10/x", NULL, 10), PURGE_VALID);
    ck_assert_int_eq(m(p, "/releases/2.1", NULL, 10), PURGE_VALID);
    ck_assert_int_eq(m(p, "/imgs/b.png", NULL, 600), PURGE_HARD); /* "/img*" is not a folder */
    ck_assert_int_eq(m(p, "/images/b.png", NULL, 600), PURGE_VALID);
    ck_assert_int_eq(m(p, "/img", NULL, 701), PURGE_VALID);
    ck_assert_int_eq(m(p, "/releases/2.1/x.tar", NULL, 501), PURGE_VALID);
    purge_free(p);
}
END_TEST

START_TEST(everything_prefix)
{
    struct purge *p = mem_set();
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "", 0, false, 100), 0);
    ck_assert_int_eq(m(p, "/", NULL, 50), PURGE_HARD);
    ck_assert_int_eq(m(p, "/any/thing", NULL, 50), PURGE_HARD);
    ck_assert_int_eq(m(p, "/any/thing", NULL, 101), PURGE_VALID);
    purge_free(p);
}
END_TEST

START_TEST(tags_space_separated)
{
    struct purge *p = mem_set();
    ck_assert_int_eq(purge_add(p, PURGE_TAG, "release-2.1", 11, false, 100), 0);
    ck_assert_int_eq(m(p, "/x", "a release-2.1 b", 50), PURGE_HARD);
    ck_assert_int_eq(m(p, "/x", "release-2.1", 50), PURGE_HARD);
    ck_assert_int_eq(m(p, "/x", "  release-2.1  ", 50), PURGE_HARD);
    ck_assert_int_eq(m(p, "/x", "release-2.10 release-2", 50), PURGE_VALID);
    ck_assert_int_eq(m(p, "/x", "", 50), PURGE_VALID);
    ck_assert_int_eq(m(p, "/x", NULL, 50), PURGE_VALID);
    /* a tag rule does not match a path of the same bytes */
    ck_assert_int_eq(m(p, "release-2.1", NULL, 50), PURGE_VALID);
    /* two header values */
    const char *two[2] = {"a b", "c release-2.1"};
    int64_t soft;
    ck_assert_int_eq(purge_match(p, "/x", 2, two, 2, 50, &soft), PURGE_HARD);
    purge_free(p);
}
END_TEST

START_TEST(soft_and_hard)
{
    struct purge *p = mem_set();
    const char *none[1] = {NULL};
    int64_t soft = 0;
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, "/a", 2, true, 300), 0);
    ck_assert_int_eq(purge_match(p, "/a", 2, none, 0, 200, &soft), PURGE_SOFT);
    ck_assert_int_eq(soft, 300);
    ck_assert_int_eq(m(p, "/a", NULL, 301), PURGE_VALID);
    /* a later hard rule on a prefix wins over the soft one */
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/", 1, false, 250), 0);
    ck_assert_int_eq(m(p, "/a", NULL, 200), PURGE_HARD);
    ck_assert_int_eq(m(p, "/a", NULL, 260), PURGE_SOFT);
    /* stamps only move forward */
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, "/a", 2, true, 100), 0);
    soft = 0;
    ck_assert_int_eq(purge_match(p, "/a", 2, none, 0, 260, &soft), PURGE_SOFT);
    ck_assert_int_eq(soft, 300);
    ck_assert_uint_eq(purge_count(p), 2);
    purge_free(p);
}
END_TEST

START_TEST(too_long_refused)
{
    struct purge *p = mem_set();
    char *big = malloc(PURGE_PATTERN_MAX + 2);
    memset(big, 'a', PURGE_PATTERN_MAX + 1);
    big[0] = '/';
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, big, PURGE_PATTERN_MAX + 1, false, 5),
                     EDGE_ETOOLONG);
    ck_assert_uint_eq(purge_count(p), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, big, PURGE_PATTERN_MAX, false, 5), 0);
    ck_assert_int_eq(purge_match(p, big, PURGE_PATTERN_MAX + 1, NULL, 0, 1, NULL), PURGE_HARD);
    free(big);
    purge_free(p);
}
END_TEST

START_TEST(expiry_drops_old_entries)
{
    char err[256];
    struct purge *p = purge_new(NULL, 1000, err, sizeof(err));
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/old/", 5, false, 100), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/new/", 5, false, 5000), 0);
    purge_expire(p, 5500);
    ck_assert_uint_eq(purge_count(p), 1);
    ck_assert_int_eq(m(p, "/old/x", NULL, 50), PURGE_VALID);
    ck_assert_int_eq(m(p, "/new/x", NULL, 50), PURGE_HARD);
    purge_expire(p, 10000);
    ck_assert_uint_eq(purge_count(p), 0);
    ck_assert_int_eq(m(p, "/new/x", NULL, 50), PURGE_VALID);
    purge_free(p);
}
END_TEST

START_TEST(journal_survives_restart)
{
    char dir[] = "/tmp/test_purge.XXXXXX", path[512], err[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int64_t now = purge_clock_ms();
    struct purge *p = purge_new(dir, DAY_MS, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, "/a b%c\n", 7, false, now - 10), 0);
    ck_assert_int_eq(purge_add(p, PURGE_TAG, "t1", 2, true, now - 5), 0);
    ck_assert_int_eq(purge_add(p, PURGE_EXACT, "/v/a.mp4", 8, false, now - 10), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/rel/2.1.", 9, false, now - 10), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "", 0, false, now - 20), 0);
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/gone/", 6, false, now - 2 * DAY_MS), 0);
    purge_free(p);
    /* a torn last line, as a crash during a write leaves it */
    snprintf(path, sizeof(path), "%s/purge.rules", dir);
    FILE *f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    fputs("123456 H E /torn", f);
    fclose(f);

    p = purge_new(dir, DAY_MS, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert_uint_eq(purge_count(p), 5); /* "/gone/" expired at load */
    ck_assert_int_eq(m(p, "/v/a.mp4", NULL, now - 15), PURGE_HARD);
    ck_assert_int_eq(m(p, "/v/a.mp4", NULL, now - 9), PURGE_VALID);
    ck_assert_int_eq(m(p, "/rel/2.1.x", NULL, now - 15), PURGE_HARD);
    ck_assert_int_eq(m(p, "/rel/2.1", NULL, now - 15), PURGE_VALID); /* not the prefix */
    ck_assert_int_eq(m(p, "/a b%c\n", NULL, now - 15), PURGE_HARD);
    ck_assert_int_eq(m(p, "/a b%c\n", NULL, now - 9), PURGE_VALID);
    ck_assert_int_eq(m(p, "/x", "t1", now - 6), PURGE_SOFT);
    ck_assert_int_eq(m(p, "/torn", NULL, 1), PURGE_HARD); /* by "" only */
    ck_assert_int_eq(m(p, "/torn", NULL, now - 19), PURGE_VALID);
    /* the clock after a load is past every loaded stamp */
    ck_assert(purge_clock_ms() > now - 5);
    purge_free(p);
    /* compacted: the torn line is gone */
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    unsigned lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        ck_assert(strstr(line, "torn") == NULL);
        lines++;
    }
    fclose(f);
    ck_assert_uint_eq(lines, 5);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(clock_floor_moves_forward)
{
    int64_t a = purge_clock_ms();
    purge_clock_floor(a + 100000);
    ck_assert(purge_clock_ms() > a + 100000);
    int64_t b = purge_clock_ms();
    purge_clock_floor(a); /* never backwards */
    ck_assert(purge_clock_ms() >= b);
}
END_TEST

START_TEST(many_rules_lookup_unaffected)
{
    struct purge *p = mem_set();
    char buf[64];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof(buf), "/dir%d/file%d", i % 100, i);
        ck_assert_int_eq(purge_add(p, PURGE_EXACT, buf, (size_t)n, false, 1000 + i), 0);
        n = snprintf(buf, sizeof(buf), "tag%d", i);
        ck_assert_int_eq(purge_add(p, PURGE_TAG, buf, (size_t)n, false, 1000 + i), 0);
    }
    ck_assert_int_eq(purge_add(p, PURGE_PREFIX, "/dir7/", 6, false, 50), 0);
    ck_assert_uint_eq(purge_count(p), 200001);
    ck_assert_int_eq(m(p, "/dir5/file99905", NULL, 1000 + 99905), PURGE_HARD);
    ck_assert_int_eq(m(p, "/dir5/file99905", NULL, 1000 + 99906), PURGE_VALID);
    ck_assert_int_eq(m(p, "/dir7/zzz", NULL, 49), PURGE_HARD);
    ck_assert_int_eq(m(p, "/nope", "tag77 x", 1077), PURGE_HARD);
    ck_assert_int_eq(m(p, "/nope", "tag77 x", 1078), PURGE_VALID);
    purge_free(p);
}
END_TEST

static Suite *purge_suite(void)
{
    Suite *s = suite_create("purge");
    TCase *tc = tcase_create("rules");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, empty_set_is_valid);
    tcase_add_test(tc, exact_path_against_fetch_time);
    tcase_add_test(tc, prefix_is_bytewise);
    tcase_add_test(tc, everything_prefix);
    tcase_add_test(tc, tags_space_separated);
    tcase_add_test(tc, soft_and_hard);
    tcase_add_test(tc, too_long_refused);
    tcase_add_test(tc, expiry_drops_old_entries);
    tcase_add_test(tc, journal_survives_restart);
    tcase_add_test(tc, clock_floor_moves_forward);
    tcase_add_test(tc, many_rules_lookup_unaffected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(purge_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

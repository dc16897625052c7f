/* Unit tests for common/chunk: publication, refcounts, allocation failure. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "chunk.h"

static int fail_after = -1; /* allocations left before failing; -1 never */
static int allocs, frees;

static void *count_alloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    allocs++;
    return malloc(n);
}

static void count_free(void *p)
{
    frees++;
    free(p);
}

static void setup(void)
{
    fail_after = -1;
    allocs = frees = 0;
    chunk_set_allocator(count_alloc, count_free);
}

static void teardown(void)
{
    chunk_set_allocator(NULL, NULL);
}

START_TEST(append_and_publish)
{
    struct chunk *c = chunk_new(8);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chunk_len(c), 0);
    ck_assert_uint_eq(chunk_room(c), 8);
    ck_assert_uint_eq(chunk_append(c, "abcdef", 6), 6);
    ck_assert_uint_eq(chunk_len(c), 6);
    /* only what fits is taken */
    ck_assert_uint_eq(chunk_append(c, "ghijk", 5), 2);
    ck_assert_uint_eq(chunk_len(c), 8);
    ck_assert_uint_eq(chunk_room(c), 0);
    ck_assert_int_eq(memcmp(c->data, "abcdefgh", 8), 0);
    ck_assert_uint_eq(chunk_append(c, "x", 1), 0);
    chunk_unref(c);
    ck_assert_int_eq(allocs, 1);
    ck_assert_int_eq(frees, 1);
}
END_TEST

START_TEST(direct_write_then_publish)
{
    struct chunk *c = chunk_new(4);
    memcpy(c->data, "wxyz", 4);
    ck_assert_uint_eq(chunk_len(c), 0); /* written but not yet visible */
    chunk_publish(c, 3);
    ck_assert_uint_eq(chunk_len(c), 3);
    chunk_publish(c, 1);
    ck_assert_uint_eq(chunk_len(c), 4);
    chunk_unref(c);
}
END_TEST

START_TEST(refcount_keeps_bytes_alive)
{
    struct chunk *c = chunk_new(16);
    chunk_append(c, "payload", 7);
    struct chunk *r1 = chunk_ref(c);
    ck_assert_ptr_eq(r1, c);
    chunk_ref(c);
    chunk_unref(c); /* the list holder lets go */
    ck_assert_int_eq(frees, 0);
    ck_assert_int_eq(memcmp(r1->data, "payload", 7), 0);
    chunk_unref_cb(r1->data, 7, r1); /* evbuffer cleanup path */
    ck_assert_int_eq(frees, 0);
    chunk_unref(r1);
    ck_assert_int_eq(frees, 1);
}
END_TEST

START_TEST(allocation_failure_is_reported)
{
    fail_after = 0;
    ck_assert_ptr_null(chunk_new(100));
    ck_assert_ptr_null(chunk_new((size_t)-1)); /* overflow never reaches malloc */
    ck_assert_int_eq(allocs, 0);
}
END_TEST

START_TEST(fail_nth_allocation)
{
    /* a sequence of allocations where the Nth fails: every other one is
     * freed, nothing leaks */
    for (int n = 0; n < 5; n++) {
        setup();
        fail_after = n;
        struct chunk *cs[5];
        int got = 0;
        for (int i = 0; i < 5; i++) {
            cs[i] = chunk_new(32);
            if (cs[i])
                got++;
        }
        ck_assert_int_eq(got, n);
        for (int i = 0; i < 5; i++)
            if (cs[i])
                chunk_unref(cs[i]);
        ck_assert_int_eq(allocs, frees);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chunk");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, append_and_publish);
    tcase_add_test(tc, direct_write_then_publish);
    tcase_add_test(tc, refcount_keeps_bytes_alive);
    tcase_add_test(tc, allocation_failure_is_reported);
    tcase_add_test(tc, fail_nth_allocation);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

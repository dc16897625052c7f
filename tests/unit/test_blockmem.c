/*
 * Unit tests for edge/blockmem: slots of the memfd arena as chunks, their
 * file offsets, reuse, the fall-back to malloc, and the property sendfile
 * needs: bytes the kernel took from a slot (spliced into a pipe, as
 * sendfile does into a socket) stay what they were after the slot is
 * released and written again.
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockmem.h"
#include "chunk.h"

#define SLOT (64u * 1024)

static void setup(void)
{
    char err[256];

    ck_assert_int_eq(blockmem_init(SLOT, 4 * SLOT, err, sizeof(err)), 0);
}

static void teardown(void)
{
    blockmem_fini();
}

static void fill(struct chunk *c, int byte)
{
    memset(c->data, byte, c->cap);
    chunk_publish(c, c->cap);
}

START_TEST(slots_are_file_backed)
{
    struct chunk *c = blockmem_chunk(SLOT);
    struct blockmem_stats st;
    uint8_t buf[16];

    ck_assert_ptr_nonnull(c);
    ck_assert_int_ge(c->fd, 0);
    ck_assert_uint_eq(c->foff % SLOT, 0);
    fill(c, 0x5a);
    /* what the file holds at foff is what the mapping holds */
    ck_assert_int_eq(pread(c->fd, buf, sizeof(buf), (off_t)c->foff + 100), (ssize_t)sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        ck_assert_uint_eq(buf[i], 0x5a);
    blockmem_get_stats(&st);
    ck_assert_uint_eq(st.slots, 4);
    ck_assert_uint_eq(st.used, 1);
    chunk_unref(c);
    blockmem_get_stats(&st);
    ck_assert_uint_eq(st.used, 0);
}
END_TEST

START_TEST(small_and_overflow_come_from_malloc)
{
    struct chunk *cs[5];
    struct blockmem_stats st;

    /* at most half a slot: malloc; more than a slot: malloc */
    struct chunk *small = blockmem_chunk(SLOT / 2);
    struct chunk *big = blockmem_chunk(SLOT + 1);
    ck_assert_int_eq(small->fd, -1);
    ck_assert_int_eq(big->fd, -1);
    chunk_unref(small);
    chunk_unref(big);
    /* a last block a little shorter than a slot takes one */
    for (int i = 0; i < 4; i++) {
        cs[i] = blockmem_chunk(SLOT - 1000 * (size_t)i);
        ck_assert_int_ge(cs[i]->fd, 0);
    }
    /* the arena is full: malloc, counted */
    cs[4] = blockmem_chunk(SLOT);
    ck_assert_ptr_nonnull(cs[4]);
    ck_assert_int_eq(cs[4]->fd, -1);
    blockmem_get_stats(&st);
    ck_assert_uint_eq(st.used, 4);
    ck_assert_uint_eq(st.fallbacks, 1);
    for (int i = 0; i < 5; i++)
        chunk_unref(cs[i]);
}
END_TEST

START_TEST(spliced_bytes_survive_reuse)
{
    int p[2];
    uint8_t got[4096];
    struct chunk *c = blockmem_chunk(SLOT);

    ck_assert_int_ge(c->fd, 0);
    fill(c, 0x11);
    ck_assert_int_eq(pipe(p), 0);
    /* the kernel takes page references, as sendfile does for a socket */
    loff_t off = (loff_t)c->foff;
    ck_assert_int_eq(splice(c->fd, &off, p[1], NULL, sizeof(got), 0), (ssize_t)sizeof(got));
    uint64_t foff = c->foff;
    chunk_unref(c);
    /* the slot is taken again (the arena hands back the freed slot) and
     * written with other bytes */
    struct chunk *d = blockmem_chunk(SLOT);
    ck_assert_uint_eq(d->foff, foff);
    fill(d, 0x22);
    ck_assert_int_eq(read(p[0], got, sizeof(got)), (ssize_t)sizeof(got));
    for (size_t i = 0; i < sizeof(got); i++)
        ck_assert_uint_eq(got[i], 0x11);
    chunk_unref(d);
    close(p[0]);
    close(p[1]);
}
END_TEST

START_TEST(released_slot_reads_zero)
{
    struct chunk *c = blockmem_chunk(SLOT);
    uint8_t b = 0xff;
    uint64_t foff = c->foff;
    int fd = c->fd;

    fill(c, 0x77);
    chunk_unref(c);
    /* the pages went with the release */
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)foff + 10), 1);
    ck_assert_uint_eq(b, 0);
}
END_TEST

START_TEST(no_arena_means_malloc)
{
    char err[256];

    blockmem_fini();
    struct chunk *c = blockmem_chunk(SLOT);
    ck_assert_int_eq(c->fd, -1);
    chunk_unref(c);
    ck_assert_int_ne(blockmem_init(1000, SLOT, err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "1000"));
    ck_assert_int_eq(blockmem_init(SLOT, 2 * SLOT, err, sizeof(err)), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("blockmem");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, slots_are_file_backed);
    tcase_add_test(tc, small_and_overflow_come_from_malloc);
    tcase_add_test(tc, spliced_bytes_survive_reuse);
    tcase_add_test(tc, released_slot_reads_zero);
    tcase_add_test(tc, no_arena_means_malloc);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

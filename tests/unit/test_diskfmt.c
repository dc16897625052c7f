/*
 * test_diskfmt.c: the disk cache's file format (common/diskfmt): CRC32C
 * against RFC 3720's vectors and between its two implementations, header
 * round trips, short input, every single-byte corruption of a header, a
 * forged header with a valid CRC, block checksums bound to their file and
 * position, and a pinned encoding so that a format change cannot go
 * unnoticed (files of earlier runs must stay readable or be refused by
 * version).
 *
 * The .c is included to reach the software CRC next to the SSE 4.2 one.
 */
#include "../../common/diskfmt.c"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"

/* the CRC of the sample header below (the whole header with its CRC would
 * give CRC32C's constant residue, which pins nothing) */
#define DISKFMT_PINNED_CRC 0xc2a14db1u

/* ============================================================ CRC32C */

START_TEST(crc_rfc3720_vectors)
{
    uint8_t b[32];

    ck_assert_uint_eq(crc32c(0, "123456789", 9), 0xe3069283u);
    ck_assert_uint_eq(crc32c(0, "", 0), 0);
    memset(b, 0, sizeof(b));
    ck_assert_uint_eq(crc32c(0, b, 32), 0x8a9136aau); /* RFC 3720 B.4 */
    memset(b, 0xff, sizeof(b));
    ck_assert_uint_eq(crc32c(0, b, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)i;
    ck_assert_uint_eq(crc32c(0, b, 32), 0x46dd794eu);
    for (int i = 0; i < 32; i++)
        b[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(crc32c(0, b, 32), 0x113fdb5cu);
}
END_TEST

START_TEST(crc_chaining_and_implementations_agree)
{
    enum { N = 5000 };
    uint8_t *buf = malloc(N + 8);
    unsigned bad_chain = 0, bad_impl = 0;

    ck_assert_ptr_nonnull(buf);
    srandom(7);
    for (size_t i = 0; i < N + 8; i++)
        buf[i] = (uint8_t)random();
    (void)crc32c(0, "", 0); /* tables ready */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len < N; len += 1 + len / 3) {
            const uint8_t *p = buf + off;
            uint32_t whole = crc32c(0, p, len);
            size_t cut = len / 3;
            if (crc32c(crc32c(0, p, cut), p + cut, len - cut) != whole)
                bad_chain++;
            if (~crc_sw(~0u, p, len) != whole)
                bad_impl++;
        }
    }
    free(buf);
    ck_assert_uint_eq(bad_chain, 0);
    ck_assert_uint_eq(bad_impl, 0);
}
END_TEST

/* ============================================================ headers */

static const char HDRS[] = "content-type\0application/octet-stream\0etag\0\"abc123\"\0"
                           "x-amz-meta-owner\0e2e\0";

static void sample(struct diskfmt_meta *m, uint64_t body_len)
{
    memset(m, 0, sizeof(*m));
    m->gen = 0x0123456789abcdefULL;
    m->body_len = body_len;
    m->block_size = 1024 * 1024;
    m->status = 200;
    m->key = "dist\nsome/key.bin";
    m->key_len = strlen(m->key);
    m->etag = "\"abc123\"";
    m->etag_len = strlen(m->etag);
    m->hdrs = HDRS;
    m->hdrs_len = sizeof(HDRS) - 1;
    m->nhdrs = 3;
    m->response_time_ms = 1764100000123LL;
    m->fetch_ms = 1764100000001LL;
    m->fresp.status = 200;
    m->fresp.has_cc = true;
    m->fresp.cc.max_age = 3600;
    m->fresp.cc.s_maxage = -1;
    m->fresp.cc.stale_while_revalidate = 30;
    m->fresp.cc.stale_if_error = -1;
    m->fresp.cc.is_public = true;
    m->fresp.cc.must_understand = true;
    m->fresp.has_date = true;
    m->fresp.date = 1764100000;
    m->fresp.has_last_modified = true;
    m->fresp.last_modified = 1764000000;
    m->fresp.has_etag = true;
    m->fresp.age = -5; /* any value goes through unchanged */
    m->fd.storable = true;
    m->fd.source = FRESH_SRC_MAX_AGE;
    m->fd.origin_lifetime = 3600;
    m->fd.lifetime = 3600;
    m->fd.initial_age = 2;
    m->fd.ttl = 3598;
    m->fd.swr = 30;
    m->fd.no_stale = true;
}

/* An encoded, sealed header with the block CRCs i * 7 + 1. */
static uint8_t *encode(struct diskfmt_meta *m)
{
    uint32_t len = diskfmt_header_len(m);
    uint8_t *buf;

    ck_assert_uint_gt(len, 0);
    buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(diskfmt_encode(m, buf, len), (int)len);
    for (uint32_t i = 0; i < m->nblocks; i++)
        diskfmt_put_block_crc(buf, m, i, i * 7 + 1);
    diskfmt_seal(buf, len);
    return buf;
}

START_TEST(round_trip)
{
    struct diskfmt_meta m, d;
    size_t need = 0;
    uint8_t *buf;

    sample(&m, 2 * 1024 * 1024 + 512 * 1024);
    buf = encode(&m);
    ck_assert_uint_eq(m.nblocks, 3);
    ck_assert_uint_eq(m.header_len, DISKFMT_FIXED_LEN + m.key_len + m.etag_len + m.hdrs_len +
                                        3 * 4 + 4);
    ck_assert_uint_eq(m.data_off, 4096);
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), 0);
    ck_assert_uint_eq(d.gen, m.gen);
    ck_assert_uint_eq(d.body_len, m.body_len);
    ck_assert_uint_eq(d.block_size, m.block_size);
    ck_assert_uint_eq(d.nblocks, 3);
    ck_assert_int_eq(d.status, 200);
    ck_assert_uint_eq(d.key_len, m.key_len);
    ck_assert_mem_eq(d.key, m.key, m.key_len);
    ck_assert_uint_eq(d.etag_len, m.etag_len);
    ck_assert_mem_eq(d.etag, m.etag, m.etag_len);
    ck_assert_uint_eq(d.nhdrs, 3);
    ck_assert_uint_eq(d.hdrs_len, m.hdrs_len);
    ck_assert_mem_eq(d.hdrs, HDRS, m.hdrs_len);
    ck_assert_int_eq(d.response_time_ms, m.response_time_ms);
    ck_assert_int_eq(d.fetch_ms, m.fetch_ms);
    ck_assert_mem_eq(&d.fresp.cc, &m.fresp.cc, sizeof(m.fresp.cc));
    ck_assert(d.fresp.has_cc && d.fresp.has_date && d.fresp.has_last_modified &&
              d.fresp.has_etag && !d.fresp.has_expires && !d.fresp.expires_invalid &&
              !d.fresp.has_age);
    ck_assert_int_eq(d.fresp.status, 200);
    ck_assert_int_eq(d.fresp.date, m.fresp.date);
    ck_assert_int_eq(d.fresp.last_modified, m.fresp.last_modified);
    ck_assert_int_eq(d.fresp.age, -5);
    ck_assert(d.fd.storable && d.fd.no_stale && !d.fd.revalidate && !d.fd.min_ttl_override);
    ck_assert_int_eq(d.fd.source, FRESH_SRC_MAX_AGE);
    ck_assert_int_eq(d.fd.origin_lifetime, 3600);
    ck_assert_int_eq(d.fd.lifetime, 3600);
    ck_assert_int_eq(d.fd.initial_age, 2);
    ck_assert_int_eq(d.fd.ttl, 3598);
    ck_assert_int_eq(d.fd.swr, 30);
    ck_assert_int_eq(d.fd.sie, 0);
    for (uint32_t i = 0; i < 3; i++)
        ck_assert_uint_eq(diskfmt_block_crc_at(&d, i), i * 7 + 1);
    ck_assert_uint_eq(d.header_len, m.header_len);
    ck_assert_uint_eq(d.data_off, 4096);
    ck_assert_uint_eq(diskfmt_file_size(&d), 4096 + m.body_len);
    ck_assert_uint_eq(diskfmt_block_len(&d, 2), 512 * 1024);
    ck_assert_uint_eq(diskfmt_block_off(&d, 2), 2 * 1024 * 1024);
    free(buf);
}
END_TEST

START_TEST(empty_body_no_etag_no_headers)
{
    struct diskfmt_meta m, d;
    size_t need;
    uint8_t *buf;

    sample(&m, 0);
    m.etag = NULL;
    m.etag_len = 0;
    m.hdrs = NULL;
    m.hdrs_len = 0;
    m.nhdrs = 0;
    buf = encode(&m);
    ck_assert_uint_eq(m.nblocks, 0);
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), 0);
    ck_assert_ptr_null(d.etag);
    ck_assert_uint_eq(d.nhdrs, 0);
    ck_assert_uint_eq(diskfmt_file_size(&d), 4096);
    free(buf);
}
END_TEST

START_TEST(short_input_asks_for_more)
{
    struct diskfmt_meta m, d;
    uint8_t *buf;
    unsigned wrong = 0;

    sample(&m, 5 * 1024 * 1024);
    buf = encode(&m);
    for (size_t len = 0; len < m.header_len; len++) {
        size_t need = 0;
        int rc = diskfmt_decode(buf, len, &d, &need);
        if (rc != EDGE_EAGAIN || need <= len || need > m.header_len)
            wrong++;
    }
    ck_assert_uint_eq(wrong, 0);
    free(buf);
}
END_TEST

START_TEST(every_byte_flip_is_refused)
{
    struct diskfmt_meta m, d;
    uint8_t *buf;
    unsigned accepted = 0;

    sample(&m, 3 * 1024 * 1024);
    buf = encode(&m);
    for (size_t i = 0; i < m.header_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            size_t need = 0;
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = diskfmt_decode(buf, m.header_len, &d, &need);
            /* a longer header_len legitimately asks for more bytes */
            if (rc == 0 || (rc == EDGE_EAGAIN && !(i >= 12 && i < 16)))
                accepted++;
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_uint_eq(accepted, 0);
    free(buf);
}
END_TEST

/* A header whose CRC is right but whose fields do not add up (a bug, or a
 * deliberate forgery) is still refused. */
static uint8_t *forge(uint32_t off, uint32_t val, struct diskfmt_meta *m)
{
    uint8_t *buf;

    sample(m, 3 * 1024 * 1024);
    buf = encode(m);
    for (int i = 0; i < 4; i++)
        buf[off + (uint32_t)i] = (uint8_t)(val >> (8 * i));
    diskfmt_seal(buf, m->header_len);
    return buf;
}

START_TEST(forged_fields_are_refused)
{
    static const struct {
        uint32_t off, val;
        int rc;
    } cases[] = {
        {8, 2, EDGE_ENOTSUP},          /* version */
        {36, 4, EDGE_EINVAL},          /* nblocks */
        {32, 512 * 1024, EDGE_EINVAL}, /* block_size: nblocks no longer adds up */
        {32, 100, EDGE_EINVAL},        /* block_size below the minimum */
        {40, 42, EDGE_EINVAL},         /* status */
        {44, 5, EDGE_EINVAL},          /* key_len: the lengths no longer add up */
        {52, 2, EDGE_EINVAL},          /* nhdrs: the blob holds 3 */
        {60, 1, EDGE_EINVAL},          /* flags */
        {84, 1u << 20, EDGE_EINVAL},    /* freshness flags beyond those defined */
        {156, 99, EDGE_EINVAL},        /* fresh_decision source */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diskfmt_meta m, d;
        size_t need = 0;
        uint8_t *buf = forge(cases[i].off, cases[i].val, &m);
        ck_assert_msg(diskfmt_decode(buf, m.header_len, &d, &need) == cases[i].rc,
                      "case %zu (offset %u)", i, cases[i].off);
        free(buf);
    }
}
END_TEST

START_TEST(bad_magic_and_bad_lengths)
{
    struct diskfmt_meta m, d;
    size_t need;
    uint8_t *buf;

    sample(&m, 10);
    buf = encode(&m);
    buf[0] = 'S';
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), EDGE_EINVAL);
    buf[0] = 's';
    /* a header_len below the fixed part or beyond the maximum */
    buf[12] = 10, buf[13] = 0, buf[14] = 0, buf[15] = 0;
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), EDGE_EINVAL);
    buf[12] = 0, buf[13] = 0, buf[14] = 0, buf[15] = 0x10;
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), EDGE_EINVAL);
    free(buf);
}
END_TEST

START_TEST(encode_refuses_out_of_bounds)
{
    struct diskfmt_meta m;
    uint8_t buf[8192];

    sample(&m, 1);
    m.key_len = 0;
    ck_assert_uint_eq(diskfmt_header_len(&m), 0);
    ck_assert_int_eq(diskfmt_encode(&m, buf, sizeof(buf)), EDGE_EINVAL);
    sample(&m, 1);
    m.key_len = DISKFMT_KEY_MAX + 1;
    ck_assert_int_eq(diskfmt_encode(&m, buf, sizeof(buf)), EDGE_EINVAL);
    sample(&m, 1);
    m.nhdrs = 2; /* the blob holds 3 */
    ck_assert_int_eq(diskfmt_encode(&m, buf, sizeof(buf)), EDGE_EINVAL);
    sample(&m, 1);
    m.hdrs_len -= 1; /* the last value loses its NUL */
    ck_assert_int_eq(diskfmt_encode(&m, buf, sizeof(buf)), EDGE_EINVAL);
    sample(&m, 1);
    m.block_size = 1024;
    ck_assert_int_eq(diskfmt_encode(&m, buf, sizeof(buf)), EDGE_EINVAL);
    sample(&m, (uint64_t)DISKFMT_BLOCK_MIN * (DISKFMT_HEADER_MAX / 4));
    m.block_size = DISKFMT_BLOCK_MIN; /* a block table beyond the header maximum */
    ck_assert_uint_eq(diskfmt_header_len(&m), 0);
    sample(&m, 1);
    ck_assert_int_eq(diskfmt_encode(&m, buf, 100), EDGE_ETOOLONG);
}
END_TEST

/* ============================================================ blocks */

START_TEST(block_checksums)
{
    struct diskfmt_meta m, d;
    size_t need;
    uint32_t bs = 64 * 1024;
    uint64_t body = 2 * (uint64_t)bs + 100;
    uint8_t *body_buf = malloc(body), *buf;

    ck_assert_ptr_nonnull(body_buf);
    for (uint64_t i = 0; i < body; i++)
        body_buf[i] = (uint8_t)(i * 31 + 7);
    memcpy(body_buf + bs, body_buf, bs); /* blocks 0 and 1 have the same bytes */
    sample(&m, body);
    m.block_size = bs;
    ck_assert_uint_gt(diskfmt_header_len(&m), 0);
    buf = malloc(m.header_len);
    ck_assert_int_eq(diskfmt_encode(&m, buf, m.header_len), (int)m.header_len);
    for (uint32_t i = 0; i < m.nblocks; i++) {
        uint32_t len = diskfmt_block_len(&m, i);
        const uint8_t *p = body_buf + diskfmt_block_off(&m, i);
        /* in two pieces, as the writer does across chunks */
        uint32_t crc = diskfmt_block_crc_init(m.gen, i);
        crc = crc32c(crc, p, len / 2);
        crc = crc32c(crc, p + len / 2, len - len / 2);
        diskfmt_put_block_crc(buf, &m, i, crc);
    }
    diskfmt_seal(buf, m.header_len);
    ck_assert_int_eq(diskfmt_decode(buf, m.header_len, &d, &need), 0);
    ck_assert_uint_eq(d.nblocks, 3);
    ck_assert(diskfmt_block_ok(&d, 0, body_buf, bs));
    ck_assert(diskfmt_block_ok(&d, 1, body_buf + bs, bs));
    ck_assert(diskfmt_block_ok(&d, 2, body_buf + 2 * bs, 100));
    /* other bytes of the right length */
    ck_assert(!diskfmt_block_ok(&d, 2, body_buf + 1, 100));
    /* truncated, or one flipped bit */
    ck_assert(!diskfmt_block_ok(&d, 2, body_buf + 2 * bs, 99));
    ck_assert(!diskfmt_block_ok(&d, 3, body_buf, 1));
    body_buf[bs + 1000] ^= 0x10;
    ck_assert(!diskfmt_block_ok(&d, 1, body_buf + bs, bs));
    body_buf[bs + 1000] ^= 0x10;
    /* the same block under another file's generation */
    d.gen ^= 1;
    ck_assert(!diskfmt_block_ok(&d, 0, body_buf, bs));
    free(buf);
    free(body_buf);
}
END_TEST

START_TEST(same_bytes_other_index_refused)
{
    struct diskfmt_meta m;
    uint8_t data[4096];

    memset(data, 0x5a, sizeof(data));
    sample(&m, 3 * sizeof(data));
    m.block_size = sizeof(data);
    ck_assert_uint_eq(diskfmt_block_crc_init(m.gen, 0) == diskfmt_block_crc_init(m.gen, 1), 0);
    ck_assert_uint_ne(crc32c(diskfmt_block_crc_init(m.gen, 0), data, sizeof(data)),
                      crc32c(diskfmt_block_crc_init(m.gen, 1), data, sizeof(data)));
}
END_TEST

/* ============================================================ stability */

/* The bytes of a sample header, pinned: if this fails, the format changed,
 * and DISKFMT_VERSION must change with it (old files are then refused and
 * discarded instead of misread). */
START_TEST(encoding_is_pinned)
{
    struct diskfmt_meta m;
    uint8_t *buf;

    sample(&m, 2 * 1024 * 1024 + 512 * 1024);
    buf = encode(&m);
    ck_assert_uint_eq(m.header_len, 322);
    ck_assert_mem_eq(buf, "s3edgeC\n\x01\x00\x00\x00", 12);
    ck_assert_uint_eq(crc32c(0, buf, m.header_len - 4), DISKFMT_PINNED_CRC);
    free(buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("diskfmt");
    TCase *tc = tcase_create("diskfmt");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crc_rfc3720_vectors);
    tcase_add_test(tc, crc_chaining_and_implementations_agree);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, empty_body_no_etag_no_headers);
    tcase_add_test(tc, short_input_asks_for_more);
    tcase_add_test(tc, every_byte_flip_is_refused);
    tcase_add_test(tc, forged_fields_are_refused);
    tcase_add_test(tc, bad_magic_and_bad_lengths);
    tcase_add_test(tc, encode_refuses_out_of_bounds);
    tcase_add_test(tc, block_checksums);
    tcase_add_test(tc, same_bytes_other_index_refused);
    tcase_add_test(tc, encoding_is_pinned);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/*
 * diskfmt.c: the disk cache's file format and CRC32C. See diskfmt.h.
 */
#include "diskfmt.h"

#include <pthread.h>
#include <string.h>

#include "err.h"
#include "vas.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* ---------------------------------------------------------------- CRC32C */

/* The reflected Castagnoli polynomial (RFC 3720 B.4). */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc_table[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    /* slicing by 8: table[k][i] is the CRC of byte i followed by k zeros */
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n > 0 && ((uintptr_t)p & 7u) != 0) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
            crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0)
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_x86(uint32_t c, const uint8_t *p,
                                                          size_t n)
{
    uint64_t c64;

    while (n > 0 && ((uintptr_t)p & 7u) != 0) {
        c = _mm_crc32_u8(c, *p++);
        n--;
    }
    c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n-- > 0)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t crc32c(uint32_t crc, const void *p, size_t n)
{
    uint32_t c = ~crc;

    AZ(pthread_once(&crc_once, crc_init));
#if defined(__x86_64__)
    if (crc_hw)
        return ~crc_x86(c, p, n);
#endif
    return ~crc_sw(c, p, n);
}

/* ---------------------------------------------------------------- bytes */

struct wr {
    uint8_t *p;
    size_t off;
};

static void put32(struct wr *w, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put64(struct wr *w, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void putb(struct wr *w, const void *p, size_t n)
{
    if (n > 0)
        memcpy(w->p + w->off, p, n);
    w->off += n;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---------------------------------------------------------------- freshness */

enum {
    F_HAS_CC = 1u << 0,
    F_HAS_DATE = 1u << 1,
    F_HAS_EXPIRES = 1u << 2,
    F_EXPIRES_INVALID = 1u << 3,
    F_HAS_AGE = 1u << 4,
    F_HAS_LM = 1u << 5,
    F_HAS_ETAG = 1u << 6,
    F_NO_STORE = 1u << 7,
    F_NO_CACHE = 1u << 8,
    F_PRIVATE = 1u << 9,
    F_MUST_REVALIDATE = 1u << 10,
    F_PROXY_REVALIDATE = 1u << 11,
    F_PUBLIC = 1u << 12,
    F_IMMUTABLE = 1u << 13,
    F_MUST_UNDERSTAND = 1u << 14,
    F_ALL_RESP = (1u << 15) - 1,
};

enum {
    D_STORABLE = 1u << 0,
    D_REVALIDATE = 1u << 1,
    D_NO_STALE = 1u << 2,
    D_MIN_TTL_OVERRIDE = 1u << 3,
    D_ALL = (1u << 4) - 1,
};

#define FLAG(cond, bit) ((cond) ? (uint32_t)(bit) : 0u)

static void put_fresh(struct wr *w, const struct fresh_resp *r, const struct fresh_decision *d)
{
    const struct fresh_cc *cc = &r->cc;

    put32(w, (uint32_t)r->status);
    put32(w, FLAG(r->has_cc, F_HAS_CC) | FLAG(r->has_date, F_HAS_DATE) |
                 FLAG(r->has_expires, F_HAS_EXPIRES) |
                 FLAG(r->expires_invalid, F_EXPIRES_INVALID) | FLAG(r->has_age, F_HAS_AGE) |
                 FLAG(r->has_last_modified, F_HAS_LM) | FLAG(r->has_etag, F_HAS_ETAG) |
                 FLAG(cc->no_store, F_NO_STORE) | FLAG(cc->no_cache, F_NO_CACHE) |
                 FLAG(cc->is_private, F_PRIVATE) |
                 FLAG(cc->must_revalidate, F_MUST_REVALIDATE) |
                 FLAG(cc->proxy_revalidate, F_PROXY_REVALIDATE) |
                 FLAG(cc->is_public, F_PUBLIC) | FLAG(cc->immutable, F_IMMUTABLE) |
                 FLAG(cc->must_understand, F_MUST_UNDERSTAND));
    put64(w, (uint64_t)cc->max_age);
    put64(w, (uint64_t)cc->s_maxage);
    put64(w, (uint64_t)cc->stale_while_revalidate);
    put64(w, (uint64_t)cc->stale_if_error);
    put64(w, (uint64_t)r->date);
    put64(w, (uint64_t)r->expires);
    put64(w, (uint64_t)r->age);
    put64(w, (uint64_t)r->last_modified);
    put32(w, FLAG(d->storable, D_STORABLE) | FLAG(d->revalidate, D_REVALIDATE) |
                 FLAG(d->no_stale, D_NO_STALE) |
                 FLAG(d->min_ttl_override, D_MIN_TTL_OVERRIDE));
    put32(w, (uint32_t)d->source);
    put64(w, (uint64_t)d->origin_lifetime);
    put64(w, (uint64_t)d->lifetime);
    put64(w, (uint64_t)d->initial_age);
    put64(w, (uint64_t)d->ttl);
    put64(w, (uint64_t)d->swr);
    put64(w, (uint64_t)d->sie);
}

/* p: 128 bytes. EDGE_EINVAL for flags or a source no build writes. */
static int get_fresh(const uint8_t *p, struct fresh_resp *r, struct fresh_decision *d)
{
    uint32_t f = get32(p + 4), df = get32(p + 72), src = get32(p + 76);

    if ((f & ~(uint32_t)F_ALL_RESP) != 0 || (df & ~(uint32_t)D_ALL) != 0 ||
        src > FRESH_SRC_MIN_TTL)
        return EDGE_EINVAL;
    memset(r, 0, sizeof(*r));
    memset(d, 0, sizeof(*d));
    r->status = (int)get32(p);
    r->has_cc = f & F_HAS_CC;
    r->has_date = f & F_HAS_DATE;
    r->has_expires = f & F_HAS_EXPIRES;
    r->expires_invalid = f & F_EXPIRES_INVALID;
    r->has_age = f & F_HAS_AGE;
    r->has_last_modified = f & F_HAS_LM;
    r->has_etag = f & F_HAS_ETAG;
    r->cc.no_store = f & F_NO_STORE;
    r->cc.no_cache = f & F_NO_CACHE;
    r->cc.is_private = f & F_PRIVATE;
    r->cc.must_revalidate = f & F_MUST_REVALIDATE;
    r->cc.proxy_revalidate = f & F_PROXY_REVALIDATE;
    r->cc.is_public = f & F_PUBLIC;
    r->cc.immutable = f & F_IMMUTABLE;
    r->cc.must_understand = f & F_MUST_UNDERSTAND;
    r->cc.max_age = (int64_t)get64(p + 8);
    r->cc.s_maxage = (int64_t)get64(p + 16);
    r->cc.stale_while_revalidate = (int64_t)get64(p + 24);
    r->cc.stale_if_error = (int64_t)get64(p + 32);
    r->date = (int64_t)get64(p + 40);
    r->expires = (int64_t)get64(p + 48);
    r->age = (int64_t)get64(p + 56);
    r->last_modified = (int64_t)get64(p + 64);
    d->storable = df & D_STORABLE;
    d->revalidate = df & D_REVALIDATE;
    d->no_stale = df & D_NO_STALE;
    d->min_ttl_override = df & D_MIN_TTL_OVERRIDE;
    d->source = (enum fresh_source)src;
    d->origin_lifetime = (int64_t)get64(p + 80);
    d->lifetime = (int64_t)get64(p + 88);
    d->initial_age = (int64_t)get64(p + 96);
    d->ttl = (int64_t)get64(p + 104);
    d->swr = (int64_t)get64(p + 112);
    d->sie = (int64_t)get64(p + 120);
    return 0;
}

/* ---------------------------------------------------------------- header */

uint32_t diskfmt_nblocks(uint64_t body_len, uint32_t block_size)
{
    uint64_t n = body_len / block_size + (body_len % block_size != 0);

    return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static bool hdr_blob_ok(const char *p, size_t len, unsigned n)
{
    size_t off = 0;

    if (len == 0 || p == NULL)
        return n == 0 && len == 0;
    for (unsigned i = 0; i < 2 * n; i++) {
        const char *z = memchr(p + off, '\0', len - off);
        if (z == NULL)
            return false;
        off = (size_t)(z - p) + 1;
        if (off > len)
            return false;
    }
    return off == len;
}

uint32_t diskfmt_header_len(struct diskfmt_meta *m)
{
    uint64_t n;

    if (m->key_len == 0 || m->key_len > DISKFMT_KEY_MAX || m->etag_len > DISKFMT_ETAG_MAX ||
        m->hdrs_len > DISKFMT_HDRS_MAX || m->nhdrs > DISKFMT_NHDRS_MAX ||
        m->block_size < DISKFMT_BLOCK_MIN || m->block_size > DISKFMT_BLOCK_MAX)
        return 0;
    m->nblocks = diskfmt_nblocks(m->body_len, m->block_size);
    n = DISKFMT_FIXED_LEN + m->key_len + m->etag_len + m->hdrs_len + 4ull * m->nblocks + 4;
    if (n > DISKFMT_HEADER_MAX)
        return 0;
    m->header_len = (uint32_t)n;
    m->data_off = (uint32_t)((n + DISKFMT_ALIGN - 1) / DISKFMT_ALIGN * DISKFMT_ALIGN);
    return m->header_len;
}

static size_t crc_table_off(const struct diskfmt_meta *m)
{
    return DISKFMT_FIXED_LEN + m->key_len + m->etag_len + m->hdrs_len;
}

int diskfmt_encode(struct diskfmt_meta *m, uint8_t *buf, size_t cap)
{
    struct wr w = {buf, 0};

    if (diskfmt_header_len(m) == 0 || (m->etag_len > 0 && m->etag == NULL) ||
        !hdr_blob_ok(m->hdrs, m->hdrs_len, m->nhdrs))
        return EDGE_EINVAL;
    if (cap < m->header_len)
        return EDGE_ETOOLONG;
    putb(&w, DISKFMT_MAGIC, 8);
    put32(&w, DISKFMT_VERSION);
    put32(&w, m->header_len);
    put64(&w, m->gen);
    put64(&w, m->body_len);
    put32(&w, m->block_size);
    put32(&w, m->nblocks);
    put32(&w, (uint32_t)m->status);
    put32(&w, (uint32_t)m->key_len);
    put32(&w, (uint32_t)m->etag_len);
    put32(&w, m->nhdrs);
    put32(&w, (uint32_t)m->hdrs_len);
    put32(&w, 0);
    put64(&w, (uint64_t)m->response_time_ms);
    put64(&w, (uint64_t)m->fetch_ms);
    put_fresh(&w, &m->fresp, &m->fd);
    AN(w.off == DISKFMT_FIXED_LEN);
    putb(&w, m->key, m->key_len);
    putb(&w, m->etag, m->etag_len);
    putb(&w, m->hdrs, m->hdrs_len);
    memset(buf + w.off, 0, 4ull * m->nblocks + 4);
    w.off += 4ull * m->nblocks + 4;
    AN(w.off == m->header_len);
    return (int)m->header_len;
}

void diskfmt_put_block_crc(uint8_t *hdr, const struct diskfmt_meta *m, uint32_t idx,
                           uint32_t crc)
{
    struct wr w = {hdr, crc_table_off(m) + 4ull * idx};

    assert_always(idx < m->nblocks);
    put32(&w, crc);
}

void diskfmt_seal(uint8_t *hdr, uint32_t header_len)
{
    struct wr w = {hdr, header_len - 4};

    AN(header_len > DISKFMT_FIXED_LEN);
    put32(&w, crc32c(0, hdr, header_len - 4));
}

int diskfmt_decode(const uint8_t *buf, size_t len, struct diskfmt_meta *m, size_t *need)
{
    uint32_t hl;
    struct diskfmt_meta t;

    if (len < 16)
        goto more16;
    if (memcmp(buf, DISKFMT_MAGIC, 8) != 0)
        return EDGE_EINVAL;
    if (get32(buf + 8) != DISKFMT_VERSION)
        return EDGE_ENOTSUP;
    hl = get32(buf + 12);
    if (hl < DISKFMT_FIXED_LEN + 1 + 4 || hl > DISKFMT_HEADER_MAX)
        return EDGE_EINVAL;
    if (len < hl) {
        *need = hl;
        return EDGE_EAGAIN;
    }
    /* the CRC first: nothing below is trusted before it */
    if (crc32c(0, buf, hl - 4) != get32(buf + hl - 4))
        return EDGE_EINVAL;
    memset(&t, 0, sizeof(t));
    t.gen = get64(buf + 16);
    t.body_len = get64(buf + 24);
    t.block_size = get32(buf + 32);
    t.nblocks = get32(buf + 36);
    t.status = (int)get32(buf + 40);
    t.key_len = get32(buf + 44);
    t.etag_len = get32(buf + 48);
    t.nhdrs = get32(buf + 52);
    t.hdrs_len = get32(buf + 56);
    if (get32(buf + 60) != 0)
        return EDGE_EINVAL;
    t.response_time_ms = (int64_t)get64(buf + 64);
    t.fetch_ms = (int64_t)get64(buf + 72);
    if (get_fresh(buf + 80, &t.fresp, &t.fd) < 0)
        return EDGE_EINVAL;
    if (t.status < 100 || t.status > 599 || t.body_len > INT64_MAX)
        return EDGE_EINVAL;
    uint32_t declared = t.nblocks;
    if (diskfmt_header_len(&t) != hl || t.nblocks != declared)
        return EDGE_EINVAL;
    t.key = (const char *)buf + DISKFMT_FIXED_LEN;
    t.etag = t.etag_len > 0 ? t.key + t.key_len : NULL;
    t.hdrs = t.key + t.key_len + t.etag_len;
    if (!hdr_blob_ok(t.hdrs, t.hdrs_len, t.nhdrs))
        return EDGE_EINVAL;
    t.crcs = buf + crc_table_off(&t);
    *m = t;
    return 0;
more16:
    *need = DISKFMT_FIXED_LEN;
    return EDGE_EAGAIN;
}

uint64_t diskfmt_block_off(const struct diskfmt_meta *m, uint32_t idx)
{
    return (uint64_t)idx * m->block_size;
}

uint32_t diskfmt_block_len(const struct diskfmt_meta *m, uint32_t idx)
{
    uint64_t off = diskfmt_block_off(m, idx);

    assert_always(idx < m->nblocks && off < m->body_len);
    return m->body_len - off < m->block_size ? (uint32_t)(m->body_len - off) : m->block_size;
}

uint32_t diskfmt_block_crc_init(uint64_t gen, uint32_t idx)
{
    uint8_t seed[12];
    struct wr w = {seed, 0};

    put64(&w, gen);
    put32(&w, idx);
    return crc32c(0, seed, sizeof(seed));
}

uint32_t diskfmt_block_crc_at(const struct diskfmt_meta *m, uint32_t idx)
{
    assert_always(idx < m->nblocks && m->crcs != NULL);
    return get32(m->crcs + 4ull * idx);
}

bool diskfmt_block_ok(const struct diskfmt_meta *m, uint32_t idx, const void *data,
                      size_t len)
{
    if (idx >= m->nblocks || len != diskfmt_block_len(m, idx))
        return false;
    return crc32c(diskfmt_block_crc_init(m->gen, idx), data, len) ==
           diskfmt_block_crc_at(m, idx);
}

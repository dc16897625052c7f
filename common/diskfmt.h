/*
 * diskfmt.h: the on-disk format of the disk cache, and CRC32C.
 *
 * Pure functions over byte buffers: no I/O, no allocation, no state, so
 * that the format is unit-tested on its own and the daemon's I/O threads
 * can call it.
 *
 * One file holds one complete object: a header, zero padding up to the
 * next 4 KiB boundary (data_off), then the body. All integers are
 * little-endian.
 *
 *   off  size  field
 *     0     8  magic "s3edgeC\n"
 *     8     4  version (1)
 *    12     4  header_len: bytes of the header, its CRC included
 *    16     8  gen: the file's generation (unique per file, higher is newer)
 *    24     8  body_len
 *    32     4  block_size (the body is checksummed per block)
 *    36     4  nblocks = ceil(body_len / block_size)
 *    40     4  status
 *    44     4  key_len (1..DISKFMT_KEY_MAX)
 *    48     4  etag_len (0: no ETag)
 *    52     4  nhdrs
 *    56     4  hdrs_len: bytes of the header blob, "name\0value\0" per field
 *    60     4  flags (0)
 *    64     8  response_time_ms: wall clock when the origin answered
 *    72     8  fetch_ms: when the fetch started, on the purge clock
 *              (edge/purge.h): invalidation rules compare against it
 *    80   128  freshness: struct fresh_resp (72 bytes) and struct
 *              fresh_decision (56 bytes), field by field
 *   208        key, ETag, header blob, then nblocks block CRCs (4 each),
 *              then the CRC32C of every header byte before it (4)
 *
 * Block i covers body bytes [i * block_size, min((i + 1) * block_size,
 * body_len)); its checksum is CRC32C over its bytes, seeded with the
 * file's gen and the block index (diskfmt_block_crc_init) so that a block
 * of another file or another position never passes. A header is checked
 * whole when decoded (magic, version, lengths, CRC); a block is checked
 * before any of its bytes is served. A file is only complete if its size
 * is exactly data_off + body_len.
 */
#ifndef S3EDGE_DISKFMT_H
#define S3EDGE_DISKFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freshness.h"

#define DISKFMT_MAGIC "s3edgeC\n"
#define DISKFMT_VERSION 1u
#define DISKFMT_FIXED_LEN 208u
#define DISKFMT_ALIGN 4096u
/* Bounds on what a header may declare: a header beyond them is corrupt. */
#define DISKFMT_KEY_MAX 8192u
#define DISKFMT_ETAG_MAX 1024u
#define DISKFMT_HDRS_MAX (256u * 1024)
#define DISKFMT_NHDRS_MAX 256u
#define DISKFMT_HEADER_MAX (4u * 1024 * 1024)
#define DISKFMT_BLOCK_MIN (4u * 1024)
#define DISKFMT_BLOCK_MAX (64u * 1024 * 1024)

/* CRC32C (Castagnoli, as in iSCSI and ext4), zlib-style chaining:
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b); crc32c(0, "123456789", 9)
 * is 0xe3069283. Uses the SSE 4.2 instruction where the CPU has it.
 * Why this and here: a CRC is made for catching torn and flipped bytes,
 * with a standard's test vectors (RFC 3720); the CPU instruction keeps it
 * at memory speed; and Debian 12 packages no CRC32C library (libxxhash
 * would be one more dependency for a hash that is no better at this). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

struct diskfmt_meta {
    uint64_t gen;
    uint64_t body_len;
    uint32_t block_size;
    uint32_t nblocks;
    int status;
    const char *key;
    size_t key_len;
    const char *etag; /* NULL or etag_len bytes */
    size_t etag_len;
    const char *hdrs; /* nhdrs "name\0value\0" pairs in hdrs_len bytes */
    size_t hdrs_len;
    unsigned nhdrs;
    int64_t response_time_ms;
    int64_t fetch_ms;
    struct fresh_resp fresp;
    struct fresh_decision fd;
    /* set by diskfmt_decode, or computed by diskfmt_header_len */
    uint32_t header_len;
    uint32_t data_off;
    const uint8_t *crcs; /* decode: the block CRC table inside the buffer */
};

/* Blocks of a body of body_len bytes. */
uint32_t diskfmt_nblocks(uint64_t body_len, uint32_t block_size);

/* Header bytes m needs (sets m->header_len, m->data_off and m->nblocks);
 * 0 when a field is out of the bounds above. */
uint32_t diskfmt_header_len(struct diskfmt_meta *m);

/* Write m's header into buf (cap >= diskfmt_header_len(m)), with a zero
 * block CRC table and no header CRC yet: fill the table with
 * diskfmt_put_block_crc, then diskfmt_seal. Returns the header length, or
 * EDGE_EINVAL / EDGE_ETOOLONG. */
int diskfmt_encode(struct diskfmt_meta *m, uint8_t *buf, size_t cap);
void diskfmt_put_block_crc(uint8_t *hdr, const struct diskfmt_meta *m, uint32_t idx,
                           uint32_t crc);
/* Compute and store the header CRC (the last 4 bytes of the header). */
void diskfmt_seal(uint8_t *hdr, uint32_t header_len);

/*
 * Decode and check a header from the first len bytes of a file. Returns
 * 0 (m's strings and crcs point into buf), EDGE_EAGAIN when more bytes
 * are needed (*need says how many in all), EDGE_ENOTSUP for a version of
 * another build, or EDGE_EINVAL when it is not a valid header (bad magic,
 * length, count or CRC).
 */
int diskfmt_decode(const uint8_t *buf, size_t len, struct diskfmt_meta *m, size_t *need);

/* The file size a complete file with this header has. */
static inline uint64_t diskfmt_file_size(const struct diskfmt_meta *m)
{
    return (uint64_t)m->data_off + m->body_len;
}

/* Body offset and length of block idx. */
uint64_t diskfmt_block_off(const struct diskfmt_meta *m, uint32_t idx);
uint32_t diskfmt_block_len(const struct diskfmt_meta *m, uint32_t idx);

/* Block checksums: start with diskfmt_block_crc_init, run crc32c over the
 * block's bytes (in as many pieces as wanted). */
uint32_t diskfmt_block_crc_init(uint64_t gen, uint32_t idx);
uint32_t diskfmt_block_crc_at(const struct diskfmt_meta *m, uint32_t idx);
/* Whether data (block idx, all its bytes) matches the stored checksum. */
bool diskfmt_block_ok(const struct diskfmt_meta *m, uint32_t idx, const void *data,
                      size_t len);

#endif

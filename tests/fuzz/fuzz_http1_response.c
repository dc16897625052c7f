/*
 * fuzz_http1_response.c: libFuzzer target for http1_parse_response() and
 * the chunked decoder.
 *
 * The input is what an origin sent. The head is parsed (from an exact-size
 * heap copy) and checked like a request head. Then the bytes after the
 * head (or the whole input, when it holds no head) go through the chunked
 * decoder twice: in one piece, and in pieces whose sizes a generator
 * seeded from the input picks, each piece in its own exact-size copy. Both
 * runs must agree on the data, the bytes used and the outcome, and every
 * data span must lie inside what the call was given. A broken promise
 * traps.
 */
#include "err.h"
#include "http1.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(x)                                                         \
    do {                                                                       \
        if (!(x))                                                              \
            __builtin_trap();                                                  \
    } while (0)

#define MAXH 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http1_header hdrs[MAXH];

static bool inside(const char *p, size_t n, const char *b, size_t len)
{
    return p != NULL && p >= b && n <= len && (size_t)(p - b) <= len - n;
}

static void check_head(const char *b, size_t len, const struct http1_limits *lim,
                       const struct http1_response *resp, int r)
{
    unsigned i;
    size_t k;

    FUZZ_ASSERT((size_t)r <= len && resp->head_len == (size_t)r);
    FUZZ_ASSERT(resp->head_len <= lim->max_head_bytes);
    FUZZ_ASSERT(memcmp(b + r - 4, "\r\n\r\n", 4) == 0);
    FUZZ_ASSERT(resp->status >= 100 && resp->status <= 599);
    FUZZ_ASSERT(resp->version_minor == 0 || resp->version_minor == 1);
    FUZZ_ASSERT(inside(resp->reason, resp->reason_len, b, (size_t)r));
    FUZZ_ASSERT(12 + (resp->reason_len ? 1 + resp->reason_len : 0) <=
                lim->max_request_line);
    for (k = 0; k < resp->reason_len; k++)
        FUZZ_ASSERT(resp->reason[k] != '\r' && resp->reason[k] != '\n' &&
                    resp->reason[k] != '\0');
    FUZZ_ASSERT(resp->nheaders <= lim->max_headers);
    for (i = 0; i < resp->nheaders; i++) {
        FUZZ_ASSERT(inside(resp->headers[i].name, resp->headers[i].name_len, b,
                           (size_t)r));
        FUZZ_ASSERT(inside(resp->headers[i].value, resp->headers[i].value_len,
                           b, (size_t)r));
        FUZZ_ASSERT(resp->headers[i].name_len > 0);
        for (k = 0; k < resp->headers[i].value_len; k++) {
            unsigned char c = (unsigned char)resp->headers[i].value[k];

            FUZZ_ASSERT(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
    if (resp->chunked)
        FUZZ_ASSERT(resp->content_length == -1 && resp->version_minor == 1);
    FUZZ_ASSERT(resp->content_length >= -1);
}

struct decoded {
    char *out;
    size_t len;
    size_t consumed;
    int ret;
};

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64 */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * Decode in[0..n). rng == NULL: one piece; otherwise pieces of 1..64
 * bytes (mostly small). Each piece is fed until it is used up or the
 * decoder stops.
 */
static void decode(const char *in, size_t n, uint64_t *rng, struct decoded *d)
{
    struct http1_chunked c;
    size_t pos = 0;
    unsigned guard = 0;

    http1_chunked_init(&c);
    d->len = 0;
    d->ret = 0;
    d->consumed = 0;
    while (pos < n) {
        size_t piece = n - pos, off = 0;
        char *b;

        if (rng != NULL) {
            uint64_t x = rng_next(rng);
            size_t want = (x & 3) ? (size_t)(x >> 8) % 4 + 1
                                  : (size_t)(x >> 8) % 64 + 1;

            if (want < piece)
                piece = want;
        }
        b = malloc(piece);
        FUZZ_ASSERT(b != NULL);
        memcpy(b, in + pos, piece);
        while (off < piece) {
            size_t used = 12345, doff = 12345, dlen = 12345;
            int r = http1_chunked_feed(&c, b + off, piece - off, &used, &doff,
                                       &dlen);

            FUZZ_ASSERT(++guard < 4 * n + 16);
            FUZZ_ASSERT(used <= piece - off);
            FUZZ_ASSERT(dlen == 0 || (doff < used && dlen <= used - doff));
            FUZZ_ASSERT(r == 0 || r == 1 || r == EDGE_EINVAL || r == EDGE_ETOOLONG);
            if (dlen > 0) {
                FUZZ_ASSERT(r == 0);
                memcpy(d->out + d->len, b + off + doff, dlen);
                d->len += dlen;
            }
            off += used;
            if (r != 0) {
                size_t u2, o2, l2;

                /* done stays done and consumes nothing; errors stick */
                FUZZ_ASSERT(http1_chunked_feed(&c, b + off, piece - off, &u2,
                                               &o2, &l2) == r);
                FUZZ_ASSERT(l2 == 0);
                if (r == 1)
                    FUZZ_ASSERT(u2 == 0);
                d->ret = r;
                d->consumed = pos + off;
                free(b);
                return;
            }
            FUZZ_ASSERT(used > 0 || off == piece);
        }
        free(b);
        pos += piece;
    }
    d->consumed = pos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct http1_limits lims[] = {
        {8192, 16384, MAXH},
        {40, 200, 4},
    };
    struct http1_response resp;
    struct decoded whole, split;
    const char *body;
    size_t body_len, i;
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char *b;
    int r = 0;

    for (i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
        b = malloc(size ? size : 1);
        FUZZ_ASSERT(b != NULL);
        memcpy(b, data, size);
        resp.headers = hdrs;
        r = http1_parse_response(b, size, &lims[i], &resp);
        if (r > 0)
            check_head(b, size, &lims[i], &resp, r);
        else
            FUZZ_ASSERT(r == EDGE_EAGAIN || r == EDGE_EINVAL ||
                        r == EDGE_ETOOLONG || r == EDGE_ETOOMANY ||
                        r == EDGE_ENOTSUP);
        if (r == EDGE_EAGAIN)
            FUZZ_ASSERT(size < lims[i].max_head_bytes);
        free(b);
        if (i == 0 && r > 0)
            break;
    }

    body = (const char *)data;
    body_len = size;
    if (r > 0) {
        body += r;
        body_len -= (size_t)r;
    }
    whole.out = malloc(body_len + 1);
    split.out = malloc(body_len + 1);
    FUZZ_ASSERT(whole.out != NULL && split.out != NULL);
    decode(body, body_len, NULL, &whole);
    FUZZ_ASSERT(whole.len <= whole.consumed);
    for (i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 0x100000001b3ULL;
    if (seed == 0)
        seed = 1;
    decode(body, body_len, &seed, &split);
    FUZZ_ASSERT(split.ret == whole.ret);
    FUZZ_ASSERT(split.consumed == whole.consumed);
    FUZZ_ASSERT(split.len == whole.len);
    FUZZ_ASSERT(memcmp(split.out, whole.out, whole.len) == 0);
    free(whole.out);
    free(split.out);
    return 0;
}

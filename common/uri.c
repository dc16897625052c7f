/*
 * uri.c: request path -> S3 key, S3 key -> wire path.
 *
 * No state and no allocation. uri_path_to_key() is the one place that
 * decides which S3 key a request may name, so it refuses everything that
 * could mean different keys to different readers (see uri.h for the rule):
 * the result is a plain byte string under key_prefix, with no "." or ".."
 * segment, no control byte, no backslash, valid UTF-8.
 */
#include "uri.h"

#include "err.h"
#include "vas.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 3986 2.3 */
static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/*
 * Incremental UTF-8 check (RFC 3629 4): `need` continuation bytes are
 * expected, the next one within [lo, hi]. The narrowed first ranges are
 * what rule out overlong forms (C0, C1, E0 80..9F, F0 80..8F), surrogates
 * (ED A0..BF) and code points past U+10FFFF (F4 90.., F5..FF).
 */
struct utf8 {
    unsigned need;
    unsigned char lo, hi;
};

static bool utf8_next(struct utf8 *u, unsigned char b)
{
    if (u->need > 0) {
        if (b < u->lo || b > u->hi)
            return false;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return true;
    }
    u->lo = 0x80;
    u->hi = 0xbf;
    if (b < 0x80)
        return true;
    if (b >= 0xc2 && b <= 0xdf) {
        u->need = 1;
    } else if (b == 0xe0) {
        u->need = 2;
        u->lo = 0xa0;
    } else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
        u->need = 2;
    } else if (b == 0xed) {
        u->need = 2;
        u->hi = 0x9f;
    } else if (b == 0xf0) {
        u->need = 3;
        u->lo = 0x90;
    } else if (b >= 0xf1 && b <= 0xf3) {
        u->need = 3;
    } else if (b == 0xf4) {
        u->need = 3;
        u->hi = 0x8f;
    } else {
        return false;
    }
    return true;
}

/* a "." or ".." segment, however it was spelled on the wire */
static bool is_dot_segment(const char *s, size_t n)
{
    return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

int uri_path_to_key(const char *path, size_t path_len, const char *path_prefix,
                    const char *key_prefix, char *out, size_t cap)
{
    struct utf8 u = {0, 0x80, 0xbf};
    size_t pl, kpl, limit, i, o, seg;

    AN(path != NULL || path_len == 0);
    AN(path_prefix);
    AN(key_prefix);
    AN(out);

    /* origin-form only: anything else ("*", a bare query) names no key */
    if (path_len == 0 || path[0] != '/')
        return EDGE_EINVAL;

    /* The prefix matches whole segments: "/dl" takes "/dl" and "/dl/x",
     * never "/dlx". It is compared as sent, before any decoding, so an
     * encoded spelling of the prefix does not match. "/" takes all. */
    pl = strlen(path_prefix);
    while (pl > 0 && path_prefix[pl - 1] == '/')
        pl--;
    if (path_len < pl || memcmp(path, path_prefix, pl) != 0)
        return EDGE_ENOENT;
    if (path_len > pl && path[pl] != '/')
        return EDGE_ENOENT;

    kpl = strlen(key_prefix);
    limit = URI_KEY_MAX;
    if (cap == 0)
        return EDGE_ETOOLONG;
    if (cap - 1 < limit)
        limit = cap - 1;
    if (kpl > limit)
        return EDGE_ETOOLONG;
    memcpy(out, key_prefix, kpl);
    o = kpl;
    seg = o;

    /* drop the '/' that ends the prefix (or starts the path) */
    i = pl < path_len ? pl + 1 : pl;
    while (i < path_len) {
        unsigned char b = (unsigned char)path[i];

        if (b == '%') {
            int h1, h2;

            if (path_len - i < 3)
                return EDGE_EINVAL;
            h1 = hex_val((unsigned char)path[i + 1]);
            h2 = hex_val((unsigned char)path[i + 2]);
            if (h1 < 0 || h2 < 0)
                return EDGE_EINVAL;
            b = (unsigned char)(h1 * 16 + h2);
            i += 3;
            /* An encoded '/' would hide a segment boundary from the
             * checks below and from anything that splits keys later. */
            if (b == '/')
                return EDGE_EINVAL;
        } else {
            /* Raw bytes are what RFC 3986 lets a path carry as is
             * (visible ASCII); '?' and '#' cannot be in a path at all. */
            if (b < 0x21 || b > 0x7e || b == '?' || b == '#')
                return EDGE_EINVAL;
            i++;
        }
        /* A backslash is a separator to some file systems and tools:
         * refused raw and encoded. So are control bytes, NUL first. */
        if (b == '\\' || b < 0x20 || b == 0x7f)
            return EDGE_EINVAL;
        if (!utf8_next(&u, b))
            return EDGE_EINVAL;
        if (b == '/') {
            if (is_dot_segment(out + seg, o - seg))
                return EDGE_EINVAL;
            seg = o + 1;
        }
        if (o >= limit)
            return EDGE_ETOOLONG;
        out[o++] = (char)b;
    }
    if (u.need > 0 || is_dot_segment(out + seg, o - seg))
        return EDGE_EINVAL;
    /* "/" or the bare prefix: there is nothing to serve at the root */
    if (o == kpl)
        return EDGE_ENOENT;
    out[o] = '\0';
    return (int)o;
}

static int encode(const char *in, size_t len, char *out, size_t cap,
                  bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0;

    AN(in != NULL || len == 0);
    AN(out != NULL || cap == 0);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (is_unreserved(c) || (keep_slash && c == '/')) {
            if (cap - o < 2)
                goto toolong;
            out[o++] = (char)c;
        } else {
            if (cap - o < 4)
                goto toolong;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0f];
        }
    }
    if (cap - o < 1 || o > INT_MAX)
        goto toolong;
    out[o] = '\0';
    return (int)o;

toolong:
    if (cap > 0)
        out[0] = '\0';
    return EDGE_ETOOLONG;
}

int uri_encode_path(const char *in, size_t len, char *out, size_t cap)
{
    return encode(in, len, out, cap, true);
}

int uri_encode_component(const char *in, size_t len, char *out, size_t cap)
{
    return encode(in, len, out, cap, false);
}

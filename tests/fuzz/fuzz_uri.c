/*
 * fuzz_uri.c: libFuzzer target for uri_path_to_key() and the encoders.
 *
 * Input: one byte picking the path prefix, one picking the key prefix
 * (printable seeds work: '0'..'3'), then the path. The mapping is checked
 * three ways:
 *   - against a plain reference implementation of the rule in uri.h, which
 *     must agree on accept/refuse and on the key;
 *   - against invariants of every accepted key: under the key prefix, no
 *     "." or ".." segment, no NUL, control byte or backslash, as many '/'
 *     as the path had raw, valid UTF-8, within URI_KEY_MAX;
 *   - by round trip: the key, encoded with uri_encode_path and put back
 *     under the path prefix, maps to the same key.
 * The encoders are also run into small buffers. A broken promise traps.
 */
#include "err.h"
#include "uri.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_ASSERT(x)                                                         \
    do {                                                                       \
        if (!(x))                                                              \
            __builtin_trap();                                                  \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const path_prefixes[] = {"/", "", "/dl", "/a/b/"};
static const char *const key_prefixes[] = {"", "k/", "pre", "a/b/"};

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* decode-then-check UTF-8 by code point, unlike the byte-range table in
 * uri.c */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        size_t len, k;

        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000))
            return false;
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/*
 * The rule, written out plainly: full decode first, then checks. Returns
 * the key length or -1 (refused: any reason).
 */
static int reference(const char *path, size_t n, const char *pp, const char *kp,
                     unsigned char *out)
{
    static unsigned char dec[8192];
    size_t pl = strlen(pp), kpl = strlen(kp), i, d = 0, s;

    if (n == 0 || path[0] != '/')
        return -1;
    while (pl > 0 && pp[pl - 1] == '/')
        pl--;
    if (n < pl || memcmp(path, pp, pl) != 0 || (n > pl && path[pl] != '/'))
        return -1;
    for (i = pl + (n > pl ? 1 : 0); i < n; i++) {
        unsigned char c = (unsigned char)path[i];

        if (c == '%') {
            if (i + 2 >= n || hexv((unsigned char)path[i + 1]) < 0 ||
                hexv((unsigned char)path[i + 2]) < 0)
                return -1;
            c = (unsigned char)(hexv((unsigned char)path[i + 1]) * 16 +
                                hexv((unsigned char)path[i + 2]));
            i += 2;
            if (c == '/')
                return -1;
        } else if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
            return -1;
        }
        if (c < 0x20 || c == 0x7f || c == '\\')
            return -1;
        dec[d++] = c;
    }
    if (d == 0 || !utf8_ok(dec, d) || kpl + d > URI_KEY_MAX)
        return -1;
    for (s = 0, i = 0; i <= d; i++) {
        if (i == d || dec[i] == '/') {
            if ((i - s == 1 && dec[s] == '.') ||
                (i - s == 2 && dec[s] == '.' && dec[s + 1] == '.'))
                return -1;
            s = i + 1;
        }
    }
    memcpy(out, kp, kpl);
    memcpy(out + kpl, dec, d);
    return (int)(kpl + d);
}

static void check_key(const char *key, size_t klen, const char *kp,
                      const char *path, size_t n, size_t pl)
{
    size_t kpl = strlen(kp), i, s, slashes_path = 0, slashes_key = 0;
    const char *rest = key + kpl;
    size_t rl = klen - kpl;

    FUZZ_ASSERT(klen <= URI_KEY_MAX);
    FUZZ_ASSERT(strlen(key) == klen);
    FUZZ_ASSERT(klen > kpl && memcmp(key, kp, kpl) == 0);
    for (i = 0; i < rl; i++) {
        unsigned char c = (unsigned char)rest[i];

        FUZZ_ASSERT(c >= 0x20 && c != 0x7f && c != '\\');
        if (c == '/')
            slashes_key++;
    }
    FUZZ_ASSERT(!(rl >= 3 && memcmp(rest, "../", 3) == 0));
    FUZZ_ASSERT(!(rl >= 2 && memcmp(rest, "./", 2) == 0));
    FUZZ_ASSERT(memmem(rest, rl, "/../", 4) == NULL);
    FUZZ_ASSERT(memmem(rest, rl, "/./", 3) == NULL);
    FUZZ_ASSERT(!(rl >= 3 && memcmp(rest + rl - 3, "/..", 3) == 0));
    FUZZ_ASSERT(!(rl >= 2 && memcmp(rest + rl - 2, "/.", 2) == 0));
    for (s = 0, i = 0; i <= rl; i++) {
        if (i == rl || rest[i] == '/') {
            FUZZ_ASSERT(!(i - s == 1 && rest[s] == '.'));
            FUZZ_ASSERT(!(i - s == 2 && rest[s] == '.' && rest[s + 1] == '.'));
            s = i + 1;
        }
    }
    FUZZ_ASSERT(utf8_ok((const unsigned char *)rest, rl));
    /* every '/' in the key was a raw '/' in the path (no %2F) */
    for (i = pl; i < n; i++)
        slashes_path += path[i] == '/';
    FUZZ_ASSERT(slashes_key + 1 == slashes_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char key[URI_KEY_MAX + 1], key2[URI_KEY_MAX + 1];
    static unsigned char ref[URI_KEY_MAX + 64];
    static char wire[3 * URI_KEY_MAX + 16], path2[3 * URI_KEY_MAX + 32];
    const char *pp, *kp;
    char *path;
    size_t n, pl;
    int r, rr, w, r2;

    if (size < 2)
        return 0;
    pp = path_prefixes[data[0] % 4];
    kp = key_prefixes[data[1] % 4];
    n = size - 2;
    if (n > 6000)
        return 0;
    path = malloc(n ? n : 1);
    FUZZ_ASSERT(path != NULL);
    memcpy(path, data + 2, n);

    r = uri_path_to_key(path, n, pp, kp, key, sizeof(key));
    FUZZ_ASSERT(r >= 0 || r == EDGE_EINVAL || r == EDGE_ENOENT ||
                r == EDGE_ETOOLONG);
    rr = reference(path, n, pp, kp, ref);
    FUZZ_ASSERT((r >= 0) == (rr >= 0));

    pl = strlen(pp);
    while (pl > 0 && pp[pl - 1] == '/')
        pl--;
    if (r >= 0) {
        FUZZ_ASSERT(r == rr && memcmp(key, ref, (size_t)r) == 0);
        check_key(key, (size_t)r, kp, path, n, pl);

        /* round trip through the wire form */
        w = uri_encode_path(key + strlen(kp), (size_t)r - strlen(kp), wire,
                            sizeof(wire));
        FUZZ_ASSERT(w > 0 && strlen(wire) == (size_t)w);
        for (size_t i = 0; i < (size_t)w; i++) {
            unsigned char c = (unsigned char)wire[i];

            if (c == '%') {
                FUZZ_ASSERT(i + 2 < (size_t)w);
                FUZZ_ASSERT(strchr("0123456789ABCDEF", wire[i + 1]) &&
                            strchr("0123456789ABCDEF", wire[i + 2]));
            } else {
                FUZZ_ASSERT((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                            c == '_' || c == '~' || c == '/');
            }
        }
        memcpy(path2, pp, pl);
        path2[pl] = '/';
        memcpy(path2 + pl + 1, wire, (size_t)w);
        r2 = uri_path_to_key(path2, pl + 1 + (size_t)w, pp, kp, key2,
                             sizeof(key2));
        FUZZ_ASSERT(r2 == r && memcmp(key, key2, (size_t)r + 1) == 0);
    }

    /* the same into an output buffer of a size the input picks: the same
     * key when it fits, a refusal when it does not */
    {
        size_t cap = (size_t)data[0] * 5 % 97;
        int rs = uri_path_to_key(path, n, pp, kp, key2, cap);

        if (r >= 0 && (size_t)r < cap)
            FUZZ_ASSERT(rs == r && memcmp(key2, key, (size_t)r + 1) == 0);
        else
            FUZZ_ASSERT(rs < 0);
        if (r >= 0 && (size_t)r >= cap)
            FUZZ_ASSERT(rs == EDGE_ETOOLONG);
    }

    /* encoders into a buffer of a size the input picks */
    {
        static char big[3 * 6000 + 1], small[64];
        size_t cap = (size_t)(data[0] ^ data[1]) % sizeof(small);
        int wb, ws;

        wb = uri_encode_component(path, n, big, sizeof(big));
        FUZZ_ASSERT(wb >= 0 && memchr(big, '/', (size_t)wb) == NULL);
        ws = uri_encode_component(path, n, small, cap);
        if ((size_t)wb < cap)
            FUZZ_ASSERT(ws == wb && memcmp(small, big, (size_t)wb + 1) == 0);
        else
            FUZZ_ASSERT(ws == EDGE_ETOOLONG && (cap == 0 || small[0] == '\0'));
    }
    free(path);
    return 0;
}

/*
 * test_uri.c: the request path -> S3 key rule, and key -> wire encoding.
 * Inputs are copied into exact-size heap buffers so that a sanitizer build
 * catches any read past the given length.
 */
#include "err.h"
#include "uri.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests"
#endif

static char *owned;
static char key[URI_KEY_MAX + 64];

static int map(const char *path, size_t n, const char *pp, const char *kp)
{
    free(owned);
    owned = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(owned);
    memcpy(owned, path, n);
    memset(key, 'Z', sizeof(key));
    return uri_path_to_key(owned, n, pp, kp, key, sizeof(key));
}

static void map_ok(const char *path, const char *pp, const char *kp,
                   const char *want, int line)
{
    int r = map(path, strlen(path), pp, kp);

    ck_assert_msg(r == (int)strlen(want),
                  "line %d: \"%s\" gave %d, want \"%s\"", line, path, r, want);
    ck_assert_msg(memcmp(key, want, strlen(want) + 1) == 0,
                  "line %d: \"%s\" gave \"%s\", want \"%s\"", line, path, key,
                  want);
}
#define MAP_OK(path, pp, kp, want) map_ok((path), (pp), (kp), (want), __LINE__)

static void map_err(const char *path, const char *pp, int err, int line)
{
    int r = map(path, strlen(path), pp, "k/");

    ck_assert_msg(r == err, "line %d: \"%s\" gave %d, want %d", line, path, r,
                  err);
}
#define MAP_ERR(path, pp, err) map_err((path), (pp), (err), __LINE__)
#define REFUSED(path) MAP_ERR((path), "/", EDGE_EINVAL)

START_TEST(map_basic)
{
    MAP_OK("/a/b.txt", "/", "", "a/b.txt");
    MAP_OK("/a/b.txt", "/", "site/", "site/a/b.txt");
    MAP_OK("/a/b.txt", "", "", "a/b.txt");
    MAP_OK("/a", "/", "pre-", "pre-a");
    /* repeated slashes are kept: S3 keys may hold "//" */
    MAP_OK("/a//b", "/", "", "a//b");
    MAP_OK("//a", "/", "", "/a");
    MAP_OK("/a/", "/", "", "a/");
    /* dots that are not whole segments are names */
    MAP_OK("/...", "/", "", "...");
    MAP_OK("/a/.../b", "/", "", "a/.../b");
    MAP_OK("/.a/..b/a.", "/", "", ".a/..b/a.");
    MAP_OK("/.well-known/x", "/", "", ".well-known/x");
    MAP_OK("/%2e%2e%2e", "/", "", "...");
    /* the raw sub-delims and friends RFC 3986 keeps in paths */
    MAP_OK("/a+b~c!$&'()*,;=:@", "/", "", "a+b~c!$&'()*,;=:@");
    MAP_OK("/[x]|^`{}\"<>", "/", "", "[x]|^`{}\"<>");
}
END_TEST

START_TEST(map_prefix)
{
    MAP_OK("/dl/x", "/dl", "", "x");
    MAP_OK("/dl/x/y", "/dl", "", "x/y");
    MAP_OK("/dl/x", "/dl/", "", "x");
    MAP_OK("/dl/x", "/dl//", "b/", "b/x");
    MAP_OK("/dl//x", "/dl", "", "/x");
    MAP_OK("/a/b/c", "/a/b", "", "c");
    MAP_OK("/dlx/y", "/dlx", "", "y");

    /* segment boundary */
    MAP_ERR("/dlx", "/dl", EDGE_ENOENT);
    MAP_ERR("/dlx/y", "/dl", EDGE_ENOENT);
    MAP_ERR("/d", "/dl", EDGE_ENOENT);
    MAP_ERR("/", "/dl", EDGE_ENOENT);
    MAP_ERR("/other/x", "/dl", EDGE_ENOENT);
    /* case and encoding are not folded for the prefix */
    MAP_ERR("/DL/x", "/dl", EDGE_ENOENT);
    MAP_ERR("/%64l/x", "/dl", EDGE_ENOENT);
    MAP_ERR("/d%6c/x", "/dl", EDGE_ENOENT);

    /* nothing to serve at the root: the prefix itself, with or without
     * its slash, and "/" */
    MAP_ERR("/dl", "/dl", EDGE_ENOENT);
    MAP_ERR("/dl/", "/dl", EDGE_ENOENT);
    MAP_ERR("/dl/", "/dl/", EDGE_ENOENT);
    MAP_ERR("/", "/", EDGE_ENOENT);
    MAP_ERR("/", "", EDGE_ENOENT);

    /* not origin-form */
    MAP_ERR("", "/", EDGE_EINVAL);
    MAP_ERR("*", "/", EDGE_EINVAL);
    MAP_ERR("a/b", "/", EDGE_EINVAL);
    MAP_ERR("http://h/a", "/", EDGE_EINVAL);
}
END_TEST

START_TEST(map_decode)
{
    MAP_OK("/a%20b", "/", "", "a b");
    MAP_OK("/%41%62%7e", "/", "", "Ab~");
    MAP_OK("/%7E%7e", "/", "", "~~");
    MAP_OK("/a+b", "/", "", "a+b");
    MAP_OK("/a%2Bb", "/", "", "a+b");
    MAP_OK("/100%25.txt", "/", "", "100%.txt");
    /* decoded once: %2541 is "%41", not "A" */
    MAP_OK("/%2541", "/", "", "%41");
    MAP_OK("/%252e%252e/x", "/", "", "%2e%2e/x");
    MAP_OK("/%3F%23", "/", "", "?#");
    MAP_OK("/caf%C3%A9/%E2%82%AC", "/", "", "caf\xc3\xa9/\xe2\x82\xac");
    MAP_OK("/%F0%9F%98%80", "/", "", "\xf0\x9f\x98\x80");
    MAP_OK("/%c2%80%ef%bf%bf%f4%8f%bf%bf", "/", "",
           "\xc2\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf");

    /* malformed escapes */
    REFUSED("/%");
    REFUSED("/a%");
    REFUSED("/%4");
    REFUSED("/a%4/b");
    REFUSED("/%zz");
    REFUSED("/%4g");
    REFUSED("/%g4");
    REFUSED("/% 41");
    REFUSED("/%%41");
}
END_TEST

START_TEST(map_traversal)
{
    static const char *const bad[] = {
        "/..", "/../x", "/a/../b", "/a/..", "/.", "/./x", "/a/.", "/a/./b",
        "/a/%2e%2e/b", "/a/%2E%2E/b", "/a/.%2E/b", "/a/%2E./b", "/a/.%2e/b",
        "/%2e/", "/%2e", "/%2E%2E", "/%2e%2e/", "/a/%2e", "/x/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        /* encoded separators */
        "/a%2fb", "/a%2Fb", "/..%2f..%2fx", "/%2F", "/%2f%2e%2e",
        "/a%5cb", "/a%5Cb", "/..%5c..%5cx", "/a\\b", "/..\\x",
        /* NUL and control bytes, encoded or raw */
        "/a%00b", "/%00", "/a%01b", "/a%09b", "/a%0a", "/a%0D%0A", "/a%1f",
        "/a%7f", "/a%7F", "/a\x01", "/a\x7f", "/a b", "/a\tb",
        /* bytes a path cannot carry raw */
        "/a?b", "/a#b", "/caf\xc3\xa9",
        /* invalid UTF-8 */
        "/%c0%ae%c0%ae/", "/%c0%ae", "/%c0%af", "/%c1%bf", "/%e0%80%ae",
        "/%e0%80%af", "/%f0%80%80%af", "/%ff", "/%fe", "/%80", "/%bf",
        "/%c3", "/%c3/", "/%c3%28", "/%e2%82", "/%f0%9f%98", "/%ed%a0%80",
        "/%ed%bf%bf", "/%f4%90%80%80", "/%f5%80%80%80", "/a%c3%a9%a9",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = map(bad[i], strlen(bad[i]), "/", "k/");

        ck_assert_msg(r == EDGE_EINVAL, "\"%s\" gave %d", bad[i], r);
    }
    /* with a prefix, traversal past it is refused the same way */
    MAP_ERR("/dl/../x", "/dl", EDGE_EINVAL);
    MAP_ERR("/dl/%2e%2e/secret", "/dl", EDGE_EINVAL);
    MAP_ERR("/dl/.%2e", "/dl", EDGE_EINVAL);
    MAP_ERR("/dl/..", "/dl", EDGE_EINVAL);
    /* NUL in the middle of the given length */
    ck_assert_int_eq(map("/a\0b", 4, "/", ""), EDGE_EINVAL);
}
END_TEST

START_TEST(map_length)
{
    static char path[4 * URI_KEY_MAX];
    size_t i;
    int r;

    /* exactly URI_KEY_MAX bytes of key, key prefix included */
    path[0] = '/';
    memset(path + 1, 'a', URI_KEY_MAX - 2);
    r = map(path, URI_KEY_MAX - 1, "/", "kp");
    ck_assert_int_eq(r, URI_KEY_MAX);
    ck_assert_uint_eq(strlen(key), URI_KEY_MAX);
    ck_assert(memcmp(key, "kpaaa", 5) == 0);
    /* one more */
    path[URI_KEY_MAX - 1] = 'a';
    r = map(path, URI_KEY_MAX, "/", "kp");
    ck_assert_int_eq(r, EDGE_ETOOLONG);

    /* the limit is on the decoded key, not the wire path */
    path[0] = '/';
    for (i = 0; i < URI_KEY_MAX; i++)
        memcpy(path + 1 + 3 * i, "%41", 3);
    r = map(path, 1 + 3 * URI_KEY_MAX, "/", "");
    ck_assert_int_eq(r, URI_KEY_MAX);
    ck_assert(key[0] == 'A' && key[URI_KEY_MAX - 1] == 'A' && key[URI_KEY_MAX] == '\0');
    memcpy(path + 1 + 3 * URI_KEY_MAX, "%41", 3);
    r = map(path, 1 + 3 * (URI_KEY_MAX + 1), "/", "");
    ck_assert_int_eq(r, EDGE_ETOOLONG);

    /* a key prefix over the limit */
    {
        static char kp[URI_KEY_MAX + 2];

        memset(kp, 'k', URI_KEY_MAX + 1);
        kp[URI_KEY_MAX + 1] = '\0';
        ck_assert_int_eq(map("/a", 2, "/", kp), EDGE_ETOOLONG);
        kp[URI_KEY_MAX - 1] = '\0';
        ck_assert_int_eq(map("/a", 2, "/", kp), URI_KEY_MAX);
    }
}
END_TEST

START_TEST(map_small_output)
{
    char out[8];

    memset(out, 'Z', sizeof(out));
    /* "abcdefg" and its NUL fit exactly */
    ck_assert_int_eq(uri_path_to_key("/abcdefg", 8, "/", "", out, 8), 7);
    ck_assert_str_eq(out, "abcdefg");
    ck_assert_int_eq(uri_path_to_key("/abcdefgh", 9, "/", "", out, 8),
                     EDGE_ETOOLONG);
    ck_assert_int_eq(uri_path_to_key("/abc", 4, "/", "kp/", out, 8), 6);
    ck_assert_str_eq(out, "kp/abc");
    ck_assert_int_eq(uri_path_to_key("/a", 2, "/", "12345678", out, 8),
                     EDGE_ETOOLONG);
    ck_assert_int_eq(uri_path_to_key("/a", 2, "/", "", out, 0), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_path_to_key("/a", 2, "/", "", out, 1), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_path_to_key("/a", 2, "/", "", out, 2), 1);
    ck_assert_str_eq(out, "a");
    /* the path length bounds the read, not a NUL */
    ck_assert_int_eq(uri_path_to_key("/abc/../x", 4, "/", "", out, 8), 3);
    ck_assert_str_eq(out, "abc");
}
END_TEST

static void encode_is(int (*fn)(const char *, size_t, char *, size_t),
                      const char *in, size_t n, const char *want, int line)
{
    char out[256];
    int r = fn(in, n, out, sizeof(out));

    ck_assert_msg(r == (int)strlen(want) && strcmp(out, want) == 0,
                  "line %d: gave %d \"%s\", want \"%s\"", line, r,
                  r >= 0 ? out : "", want);
}
#define ENC_PATH(lit, want) encode_is(uri_encode_path, (lit), sizeof(lit) - 1, (want), __LINE__)
#define ENC_COMP(lit, want) encode_is(uri_encode_component, (lit), sizeof(lit) - 1, (want), __LINE__)

START_TEST(encode)
{
    ENC_PATH("", "");
    ENC_PATH("AZaz09-._~/", "AZaz09-._~/");
    ENC_PATH("a b+c/d~e", "a%20b%2Bc/d~e");
    ENC_PATH("caf\xc3\xa9", "caf%C3%A9");
    ENC_PATH("100%.txt", "100%25.txt");
    ENC_PATH("a//b", "a//b");
    ENC_PATH("!*'();:@&=$,?#[]", "%21%2A%27%28%29%3B%3A%40%26%3D%24%2C%3F%23%5B%5D");
    ENC_PATH("a\0b\x7f\xff", "a%00b%7F%FF");
    ENC_COMP("a/b c", "a%2Fb%20c");
    ENC_COMP("AZaz09-._~", "AZaz09-._~");
    ENC_COMP("x=1&y=\xe2\x82\xac", "x%3D1%26y%3D%E2%82%AC");
}
END_TEST

START_TEST(encode_small_output)
{
    char out[8];

    /* "a%20b" is 5 bytes plus NUL */
    ck_assert_int_eq(uri_encode_path("a b", 3, out, 6), 5);
    ck_assert_str_eq(out, "a%20b");
    memset(out, 'Z', sizeof(out));
    ck_assert_int_eq(uri_encode_path("a b", 3, out, 5), EDGE_ETOOLONG);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(uri_encode_path("a b", 3, out, 3), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_encode_path("ab", 2, out, 3), 2);
    ck_assert_int_eq(uri_encode_path("ab", 2, out, 2), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_encode_component("", 0, out, 1), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(uri_encode_component("", 0, out, 0), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_encode_component("/", 1, out, 3), EDGE_ETOOLONG);
    ck_assert_int_eq(uri_encode_component("/", 1, out, 4), 3);
    ck_assert_str_eq(out, "%2F");
}
END_TEST

/* key -> wire path -> key gives the key back */
START_TEST(round_trip)
{
    static const char *const keys[] = {
        "a b.txt", "file+name.tar.gz", "~user/x", "caf\xc3\xa9/\xc3\xbc.bin",
        "a//b", "100%.txt", "x&y=z;w", "emoji \xf0\x9f\x98\x80.png",
        "dir/sub/", "quote\"s and 'ticks'", "semi;colon:and@at", "...",
        ".hidden/..x/x..", "%41", "%2e%2e", "[brackets]{braces}", "a?b#c",
        "tab-less path/with spaces/ and  double",
        "\xe4\xb8\xad\xe6\x96\x87/\xd1\x80\xd1\x83\xd1\x81",
    };
    char wire[4 * URI_KEY_MAX], path[4 * URI_KEY_MAX + 8];
    size_t i;
    int n, r;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        n = uri_encode_path(keys[i], strlen(keys[i]), wire, sizeof(wire));
        ck_assert_int_gt(n, 0);
        /* the wire form is all unreserved, '/' or %XX */
        ck_assert(strspn(wire, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789-._~/%") == (size_t)n);
        snprintf(path, sizeof(path), "/dl/%s", wire);
        r = map(path, strlen(path), "/dl", "bucket-prefix/");
        ck_assert_msg(r > 0, "key \"%s\" via \"%s\" gave %d", keys[i], path, r);
        ck_assert_str_eq(key + strlen("bucket-prefix/"), keys[i]);
        ck_assert(strncmp(key, "bucket-prefix/", 14) == 0);
    }
}
END_TEST

/*
 * Nothing here allocates. Outside sanitizer builds this binary interposes
 * the allocator and counts calls around the calls under test; sanitizer
 * builds own malloc and skip that part.
 */
#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif

#ifndef NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long nalloc;

void *malloc(size_t n)
{
    nalloc++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    nalloc++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    nalloc++;
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}
#endif

START_TEST(no_allocation)
{
#ifndef NO_INTERPOSE
    static void *volatile probe;
    char out[64];
    unsigned long before, after;
    int r1, r2, r3, r4;

    before = nalloc;
    probe = malloc(16);
    free(probe);
    after = nalloc;
    ck_assert_uint_eq(after, before + 1);

    before = nalloc;
    r1 = uri_path_to_key("/dl/caf%C3%A9/a%20b", 18, "/dl", "k/", key, sizeof(key));
    r2 = uri_path_to_key("/dl/%2e%2e/x", 12, "/dl", "k/", key, sizeof(key));
    r3 = uri_encode_path("a b/c", 5, out, sizeof(out));
    r4 = uri_encode_component("a b/c", 5, out, sizeof(out));
    after = nalloc;
    ck_assert_uint_eq(after, before);
    ck_assert_int_eq(r1, 10);
    ck_assert_int_eq(r2, EDGE_EINVAL);
    ck_assert_int_eq(r3, 7);
    ck_assert_int_eq(r4, 9);
#endif
}
END_TEST

/* By design: nothing in uri.c allocates. */
START_TEST(no_allocator_in_source)
{
    static const char *const words[] = {"malloc", "calloc", "realloc",
                                        "strdup", "strndup", "free("};
    char path[1024], text[1 << 16];
    size_t n, i;
    FILE *f;

    snprintf(path, sizeof(path), "%s/../common/uri.c", TEST_SRCDIR);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(text, 1, sizeof(text) - 1, f);
    ck_assert(feof(f));
    fclose(f);
    text[n] = '\0';
    ck_assert_uint_gt(n, 1000);
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        ck_assert_msg(strstr(text, words[i]) == NULL, "%s in uri.c", words[i]);
}
END_TEST

static Suite *uri_suite(void)
{
    Suite *s = suite_create("uri");
    TCase *tc = tcase_create("path_to_key");

    tcase_add_test(tc, map_basic);
    tcase_add_test(tc, map_prefix);
    tcase_add_test(tc, map_decode);
    tcase_add_test(tc, map_traversal);
    tcase_add_test(tc, map_length);
    tcase_add_test(tc, map_small_output);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, encode);
    tcase_add_test(tc, encode_small_output);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, no_allocation);
    tcase_add_test(tc, no_allocator_in_source);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(uri_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

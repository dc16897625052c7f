/*
 * test_sigv4.c: SigV4 header signing against AWS's published vectors and
 * S3-specific ones (tests/vectors/sigv4/, see its README), plus the key
 * cache, the path and query rules S3 depends on, and the error returns.
 *
 * Vector inputs come from the .req / request.txt files (request line,
 * headers, body) and, where a case's input is not in its request file
 * (payload mode, session token, region of the S3 cases), from the small
 * tables below, which mirror how the vectors were generated. Expected
 * outputs are always the files, compared byte for byte.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "err.h"
#include "sigv4.h"

#define FILE_MAX 16384
#define REQ_MAX_HEADERS 40

/* ------------------------------------------------------------ vector files */

static const char *vector_root(void)
{
    static char root[4096];
    const char *cands[3] = {NULL, NULL, "tests"};
    struct stat st;

#ifdef TEST_SRCDIR
    cands[0] = TEST_SRCDIR;
#endif
    cands[1] = getenv("TEST_SRCDIR");
    for (size_t i = 0; i < 3; i++) {
        if (cands[i] == NULL || *cands[i] == '\0')
            continue;
        snprintf(root, sizeof(root), "%s/vectors/sigv4", cands[i]);
        if (stat(root, &st) == 0 && S_ISDIR(st.st_mode))
            return root;
    }
    ck_abort_msg("sigv4 vectors not found (TEST_SRCDIR macro, $TEST_SRCDIR, "
                 "./tests)");
    return NULL;
}

/* Whole file into buf, NUL-terminated; returns its length or -1. */
static long read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    if (f == NULL)
        return -1;
    n = fread(buf, 1, cap - 1, f);
    if (!feof(f)) { /* larger than the buffer: refuse rather than truncate */
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

static void must_read(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_msg(read_file(path, buf, cap) >= 0, "cannot read %s", path);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* ------------------------------------------------------------ .req parser */

struct raw_header {
    char *name;
    char *value;
};

struct raw_req {
    char *method;
    char *path;
    char *query; /* NULL when the target has no '?' */
    struct raw_header h[REQ_MAX_HEADERS];
    size_t nh;
    const char *body;
    size_t body_len;
};

/* Cut the line at s; returns the next line or NULL at the end. */
static char *cut_line(char *s)
{
    char *nl = strchr(s, '\n');

    if (nl == NULL)
        return NULL;
    *nl = '\0';
    if (nl > s && nl[-1] == '\r')
        nl[-1] = '\0';
    return nl + 1;
}

/*
 * HTTP/1.1 message in the vectors' layout: request line (the target may
 * contain raw spaces, so the version is the last word), "Name:value"
 * header lines, obs-fold continuation lines (RFC 9112 5.2: replaced by
 * SP), an empty line, the body. Parsed in place.
 */
static void parse_req(char *text, struct raw_req *r)
{
    char *line = text, *next, *sp, *q;

    memset(r, 0, sizeof(*r));
    r->body = "";
    next = cut_line(line);
    sp = strchr(line, ' ');
    ck_assert_ptr_nonnull(sp);
    *sp = '\0';
    r->method = line;
    r->path = sp + 1;
    sp = strrchr(r->path, ' ');
    ck_assert_ptr_nonnull(sp);
    ck_assert_str_eq(sp + 1, "HTTP/1.1");
    *sp = '\0';
    q = strchr(r->path, '?');
    if (q != NULL) {
        *q = '\0';
        r->query = q + 1;
    }

    while ((line = next) != NULL) {
        char *colon;

        next = cut_line(line);
        if (*line == '\0') {
            if (next != NULL) {
                r->body = next;
                r->body_len = strlen(next);
            }
            return;
        }
        if (*line == ' ' || *line == '\t') {
            ck_assert_uint_gt(r->nh, 0);
            /* the previous value ends right before this line: join them */
            for (char *e = r->h[r->nh - 1].value; e < line; e++)
                if (*e == '\0')
                    *e = ' ';
            continue;
        }
        colon = strchr(line, ':');
        ck_assert_ptr_nonnull(colon);
        *colon = '\0';
        ck_assert_uint_lt(r->nh, REQ_MAX_HEADERS);
        r->h[r->nh].name = line;
        r->h[r->nh].value = colon + 1;
        r->nh++;
    }
}

/* ------------------------------------------------------------ helpers */

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char md[32];
    unsigned int n = 0;

    ck_assert_int_eq(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL), 1);
    ck_assert_uint_eq(n, 32);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static const char *trim(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static time_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};

    return timegm(&tm);
}

/* Value of "key" in a flat-enough JSON text: string (with \" \\ \/ escapes)
 * or true/false. Keys in context.json are unique at every level. */
static bool json_string(const char *json, const char *key, char *out,
                        size_t cap)
{
    char pat[128];
    const char *p;
    size_t n = 0;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    p = strstr(json, pat);
    if (p == NULL)
        return false;
    p = trim(p + strlen(pat));
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    ck_assert_int_eq(*p, ':');
    p++;
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
        p++;
    ck_assert_int_eq(*p, '"');
    for (p++; *p != '"'; p++) {
        ck_assert_int_ne(*p, '\0');
        if (*p == '\\') {
            p++;
            ck_assert_msg(*p == '"' || *p == '\\' || *p == '/',
                          "unsupported JSON escape in %s", key);
        }
        ck_assert_uint_lt(n + 1, cap);
        out[n++] = *p;
    }
    out[n] = '\0';
    return true;
}

static bool json_bool(const char *json, const char *key, bool dflt)
{
    char pat[128];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    p = strstr(json, pat);
    if (p == NULL)
        return dflt;
    p += strlen(pat);
    while (*p == ' ' || *p == ':' || *p == '\t')
        p++;
    if (strncmp(p, "true", 4) == 0)
        return true;
    ck_assert_msg(strncmp(p, "false", 5) == 0, "bad boolean for %s", key);
    return false;
}

/* ------------------------------------------------------------ one vector */

struct vcase {
    const char *name; /* for messages */
    struct sigv4_creds creds;
    struct sigv4_request req;
    struct sigv4_header extra[REQ_MAX_HEADERS];
    char body_hash[65];
    char token[2048];
    const char *expect_amz_date;
};

/* Map the parsed request's headers onto the signer's inputs: the headers
 * the signer adds itself are taken out (and checked or used as inputs). */
static void load_headers(struct vcase *vc, const struct raw_req *rr)
{
    vc->req.method = rr->method;
    vc->req.path = rr->path;
    vc->req.query = rr->query;
    vc->req.headers = vc->extra;
    vc->req.nheaders = 0;
    for (size_t i = 0; i < rr->nh; i++) {
        const char *n = rr->h[i].name, *v = trim(rr->h[i].value);
        if (strcasecmp(n, "host") == 0) {
            vc->req.host = v;
        } else if (strcasecmp(n, "x-amz-date") == 0) {
            ck_assert_str_eq(v, vc->expect_amz_date);
        } else if (strcasecmp(n, "x-amz-content-sha256") == 0) {
            vc->req.payload_hash = v;
            vc->req.add_content_sha256 = true;
        } else if (strcasecmp(n, "x-amz-security-token") == 0) {
            snprintf(vc->token, sizeof(vc->token), "%s", v);
            vc->creds.session_token = vc->token;
        } else {
            vc->extra[vc->req.nheaders].name = n;
            vc->extra[vc->req.nheaders].value = rr->h[i].value;
            vc->req.nheaders++;
        }
    }
    ck_assert_msg(vc->req.host != NULL, "%s: no Host", vc->name);
}

/* Sign vc three ways (intermediate strings, no cache, shared cache) and
 * compare with the expected files; expect_authz may be NULL. */
static void check_vector(struct vcase *vc, const char *expect_creq,
                         const char *expect_sts, const char *expect_authz,
                         const char *expect_sig, struct sigv4_key_cache *cache)
{
    static char buf[SIGV4_CANON_MAX];
    struct sigv4_result res, res2;
    int n;

    n = sigv4_canonical_request(&vc->creds, &vc->req, buf, sizeof(buf));
    ck_assert_msg(n >= 0, "%s: canonical request: %s", vc->name,
                  edge_strerror(n));
    ck_assert_msg(strcmp(buf, expect_creq) == 0,
                  "%s: canonical request\n--- got\n%s\n--- want\n%s",
                  vc->name, buf, expect_creq);
    ck_assert_int_eq(n, (int)strlen(expect_creq));

    n = sigv4_string_to_sign(&vc->creds, &vc->req, buf, sizeof(buf));
    ck_assert_msg(n >= 0, "%s: string to sign: %s", vc->name,
                  edge_strerror(n));
    ck_assert_msg(strcmp(buf, expect_sts) == 0,
                  "%s: string to sign\n--- got\n%s\n--- want\n%s", vc->name,
                  buf, expect_sts);

    ck_assert_int_eq(sigv4_sign(&vc->creds, &vc->req, NULL, &res), 0);
    ck_assert_msg(strcmp(res.signature, expect_sig) == 0,
                  "%s: signature %s, want %s", vc->name, res.signature,
                  expect_sig);
    if (expect_authz != NULL)
        ck_assert_msg(strcmp(res.authorization, expect_authz) == 0,
                      "%s: authorization\n got %s\nwant %s", vc->name,
                      res.authorization, expect_authz);
    ck_assert_str_eq(res.amz_date, vc->expect_amz_date);
    if (vc->req.add_content_sha256)
        ck_assert_str_eq(res.content_sha256, vc->req.payload_hash != NULL
                                                 ? vc->req.payload_hash
                                                 : SIGV4_EMPTY_SHA256);
    else
        ck_assert_str_eq(res.content_sha256, "");

    /* the same through a key cache shared by the whole suite */
    ck_assert_int_eq(sigv4_sign(&vc->creds, &vc->req, cache, &res2), 0);
    ck_assert_str_eq(res2.authorization, res.authorization);
}

/* "Signature=" part of an Authorization value */
static const char *authz_signature(const char *authz)
{
    const char *p = strstr(authz, "Signature=");

    ck_assert_ptr_nonnull(p);
    return p + strlen("Signature=");
}

/* ------------------------------------------------------------ suites */

/* Not header signing with our inputs: listed, printed, never run. */
static const struct {
    const char *suite, *name, *why;
} skipped[] = {
    {"s3", "doc-presigned-get-object",
     "presigned URL (query signing); s3edge signs with headers only; not "
     "copied"},
};

static bool is_skipped(const char *suite, const char *name)
{
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
        if (strcmp(skipped[i].suite, suite) == 0 &&
            strcmp(skipped[i].name, name) == 0)
            return true;
    return false;
}

static void print_skipped(const char *suite)
{
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
        if (strcmp(skipped[i].suite, suite) == 0)
            printf("sigv4: skipped %s/%s: %s\n", suite, skipped[i].name,
                   skipped[i].why);
}

static int only_dirs(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

typedef void case_f(const char *dir, const char *name,
                    struct sigv4_key_cache *cache);

/* Run fn on every case directory below root (sorted, so the log reads the
 * same every run); a directory that is not a case is descended into once. */
static int for_each_case(const char *suite, const char *root, int depth,
                         bool (*is_case)(const char *dir, const char *name),
                         case_f *fn, struct sigv4_key_cache *cache)
{
    struct dirent **list;
    int n = scandir(root, &list, only_dirs, alphasort);
    int count = 0;

    ck_assert_msg(n >= 0, "scandir %s: %s", root, strerror(errno));
    for (int i = 0; i < n; i++) {
        char dir[4096];
        struct stat st;

        snprintf(dir, sizeof(dir), "%s/%s", root, list[i]->d_name);
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (is_skipped(suite, list[i]->d_name)) {
                /* listed */
            } else if (is_case(dir, list[i]->d_name)) {
                fn(dir, list[i]->d_name, cache);
                count++;
            } else if (depth == 0) {
                count += for_each_case(suite, dir, 1, is_case, fn, cache);
            } else {
                ck_abort_msg("%s: neither a case nor a group", dir);
            }
        }
        free(list[i]);
    }
    free(list);
    return count;
}

/* --- aws4_testsuite: generic service, five-file layout */

static const char *const AWS4_AKID = "AKIDEXAMPLE";
static const char *const AWS4_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

static bool aws4_is_case(const char *dir, const char *name)
{
    char f[512];

    snprintf(f, sizeof(f), "%s.req", name);
    return file_exists(dir, f);
}

static void aws4_case(const char *dir, const char *name,
                      struct sigv4_key_cache *cache)
{
    static char reqt[FILE_MAX], creq[FILE_MAX], sts[FILE_MAX], authz[FILE_MAX];
    static struct vcase vc;
    struct raw_req rr;
    char f[512];

    memset(&vc, 0, sizeof(vc));
    vc.name = name;
    vc.expect_amz_date = "20150830T123600Z";
    snprintf(f, sizeof(f), "%s.req", name);
    must_read(dir, f, reqt, sizeof(reqt));
    snprintf(f, sizeof(f), "%s.creq", name);
    must_read(dir, f, creq, sizeof(creq));
    snprintf(f, sizeof(f), "%s.sts", name);
    must_read(dir, f, sts, sizeof(sts));
    snprintf(f, sizeof(f), "%s.authz", name);
    must_read(dir, f, authz, sizeof(authz));

    parse_req(reqt, &rr);
    vc.creds.access_key_id = AWS4_AKID;
    vc.creds.secret_access_key = AWS4_SECRET;
    load_headers(&vc, &rr);
    /* generic SigV4: the payload hash is always the body's SHA-256 and the
     * path is normalised and encoded by the signer */
    sha256_hex(rr.body, rr.body_len, vc.body_hash);
    if (vc.req.payload_hash == NULL)
        vc.req.payload_hash = vc.body_hash;
    vc.req.normalize_path = true;
    vc.req.region = "us-east-1";
    vc.req.service = "service";
    vc.req.now = utc(2015, 8, 30, 12, 36, 0);
    /* the token of this case is in its .creq only (the suite's README) */
    if (strcmp(name, "get-vanilla-with-session-token") == 0)
        vc.creds.session_token =
            "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

    check_vector(&vc, creq, sts, authz, authz_signature(authz), cache);
}

START_TEST(test_vectors_aws4_testsuite)
{
    char root[4096];
    struct sigv4_key_cache cache;
    int n;

    memset(&cache, 0, sizeof(cache));
    snprintf(root, sizeof(root), "%s/aws4_testsuite", vector_root());
    print_skipped("aws4_testsuite");
    n = for_each_case("aws4_testsuite", root, 0, aws4_is_case, aws4_case,
                      &cache);
    printf("sigv4: aws4_testsuite: %d vectors checked\n", n);
    ck_assert_int_ge(n, 34);
    ck_assert_str_eq(cache.date, "20150830");
}
END_TEST

/* --- aws-c-auth-v4: context.json + request.txt, header-signing outputs */

static bool crt_is_case(const char *dir, const char *name)
{
    (void)name;
    return file_exists(dir, "context.json");
}

static void crt_case(const char *dir, const char *name,
                     struct sigv4_key_cache *cache)
{
    static char ctx[FILE_MAX], reqt[FILE_MAX], creq[FILE_MAX], sts[FILE_MAX],
        sig[FILE_MAX];
    static char akid[128], secret[128], region[64], service[64], ts[64];
    static struct vcase vc;
    struct raw_req rr;
    int y, mo, d, h, mi, s;

    memset(&vc, 0, sizeof(vc));
    vc.name = name;
    must_read(dir, "context.json", ctx, sizeof(ctx));
    must_read(dir, "request.txt", reqt, sizeof(reqt));
    must_read(dir, "header-canonical-request.txt", creq, sizeof(creq));
    must_read(dir, "header-string-to-sign.txt", sts, sizeof(sts));
    must_read(dir, "header-signature.txt", sig, sizeof(sig));

    ck_assert(json_string(ctx, "access_key_id", akid, sizeof(akid)));
    ck_assert(json_string(ctx, "secret_access_key", secret, sizeof(secret)));
    ck_assert(json_string(ctx, "region", region, sizeof(region)));
    ck_assert(json_string(ctx, "service", service, sizeof(service)));
    ck_assert(json_string(ctx, "timestamp", ts, sizeof(ts)));
    ck_assert_int_eq(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2dZ", &y, &mo, &d, &h,
                            &mi, &s),
                     6);
    vc.expect_amz_date = "20150830T123600Z";
    ck_assert_int_eq(y, 2015);

    parse_req(reqt, &rr);
    vc.creds.access_key_id = akid;
    vc.creds.secret_access_key = secret;
    load_headers(&vc, &rr);
    /* "omit_session_token": the token is added after signing, unsigned
     * (post-sts-header-after); otherwise it is signed */
    if (json_string(ctx, "token", vc.token, sizeof(vc.token)) &&
        !json_bool(ctx, "omit_session_token", false))
        vc.creds.session_token = vc.token;
    sha256_hex(rr.body, rr.body_len, vc.body_hash);
    vc.req.payload_hash = vc.body_hash;
    vc.req.add_content_sha256 = json_bool(ctx, "sign_body", false);
    vc.req.normalize_path = json_bool(ctx, "normalize", true);
    vc.req.region = region;
    vc.req.service = service;
    vc.req.now = utc(y, mo, d, h, mi, s);

    check_vector(&vc, creq, sts, NULL, sig, cache);
}

START_TEST(test_vectors_aws_c_auth)
{
    char root[4096];
    struct sigv4_key_cache cache;
    int n;

    memset(&cache, 0, sizeof(cache));
    snprintf(root, sizeof(root), "%s/aws-c-auth-v4", vector_root());
    print_skipped("aws-c-auth-v4");
    n = for_each_case("aws-c-auth-v4", root, 0, crt_is_case, crt_case,
                      &cache);
    printf("sigv4: aws-c-auth-v4: %d vectors checked (header signing; "
           "their query-signing outputs are not copied)\n",
           n);
    ck_assert_int_ge(n, 38);
}
END_TEST

/* --- s3: S3 rules (no normalisation, x-amz-content-sha256 signed) */

/* Inputs of the S3 cases that their .req does not carry (the generator's
 * arguments): payload mode, region, session token. */
static const struct {
    const char *name;
    bool unsigned_payload;
    const char *region;
    const char *token;
} s3_inputs[] = {
    {"unsigned-payload-get", true, NULL, NULL},
    {"unsigned-payload-get-range", true, NULL, NULL},
    {"unsigned-payload-head", true, NULL, NULL},
    {"no-double-encode-space", true, NULL, NULL},
    {"no-double-encode-utf8", true, NULL, NULL},
    {"no-double-encode-plus-tilde", true, NULL, NULL},
    {"no-normalize-slashes", true, NULL, NULL},
    {"path-style-bucket", true, "us-west-2", NULL},
    {"session-token-get", true, NULL, "SESSIONTOKENEXAMPLE"},
};

/* AWS's documentation writes "…aws4_request,SignedHeaders=…,Signature=…"
 * in one example; the header value is the same with ", " separators,
 * which is what S3 and every SDK produce. */
static void authz_canonical_commas(const char *in, char *out, size_t cap)
{
    size_t n = 0;

    for (; *in != '\0'; in++) {
        ck_assert_uint_lt(n + 2, cap);
        out[n++] = *in;
        if (*in == ',' && in[1] != ' ')
            out[n++] = ' ';
    }
    out[n] = '\0';
}

static void s3_case(const char *dir, const char *name,
                    struct sigv4_key_cache *cache)
{
    static char reqt[FILE_MAX], creq[FILE_MAX], sts[FILE_MAX], authz[FILE_MAX],
        authz2[FILE_MAX];
    static struct vcase vc;
    struct raw_req rr;
    char f[512];

    memset(&vc, 0, sizeof(vc));
    vc.name = name;
    vc.expect_amz_date = "20130524T000000Z";
    snprintf(f, sizeof(f), "%s.req", name);
    must_read(dir, f, reqt, sizeof(reqt));
    snprintf(f, sizeof(f), "%s.creq", name);
    must_read(dir, f, creq, sizeof(creq));
    snprintf(f, sizeof(f), "%s.sts", name);
    must_read(dir, f, sts, sizeof(sts));
    snprintf(f, sizeof(f), "%s.authz", name);
    must_read(dir, f, authz, sizeof(authz));
    authz_canonical_commas(authz, authz2, sizeof(authz2));

    parse_req(reqt, &rr);
    vc.creds.access_key_id = "AKIAIOSFODNN7EXAMPLE";
    vc.creds.secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    load_headers(&vc, &rr);
    vc.req.add_content_sha256 = true;
    vc.req.normalize_path = false;
    vc.req.region = "us-east-1";
    vc.req.service = "s3";
    vc.req.now = utc(2013, 5, 24, 0, 0, 0);
    for (size_t i = 0; i < sizeof(s3_inputs) / sizeof(s3_inputs[0]); i++) {
        if (strcmp(s3_inputs[i].name, name) != 0)
            continue;
        if (s3_inputs[i].unsigned_payload)
            vc.req.payload_hash = SIGV4_UNSIGNED_PAYLOAD;
        if (s3_inputs[i].region != NULL)
            vc.req.region = s3_inputs[i].region;
        if (s3_inputs[i].token != NULL)
            vc.creds.session_token = s3_inputs[i].token;
    }
    if (vc.req.payload_hash == NULL) {
        sha256_hex(rr.body, rr.body_len, vc.body_hash);
        vc.req.payload_hash = vc.body_hash;
    }

    check_vector(&vc, creq, sts, authz2, authz_signature(authz2), cache);
}

START_TEST(test_vectors_s3)
{
    char root[4096];
    struct sigv4_key_cache cache;
    int n;

    memset(&cache, 0, sizeof(cache));
    snprintf(root, sizeof(root), "%s/s3", vector_root());
    print_skipped("s3");
    n = for_each_case("s3", root, 0, aws4_is_case, s3_case, &cache);
    printf("sigv4: s3: %d vectors checked\n", n);
    ck_assert_int_ge(n, 15);
}
END_TEST

/* ------------------------------------------------------------ direct cases */

static const struct sigv4_creds S3_CREDS = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};

static struct sigv4_request s3_get(const char *path, const char *query)
{
    struct sigv4_request r = {
        .method = "GET",
        .host = "examplebucket.s3.amazonaws.com",
        .path = path,
        .query = query,
        .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
        .add_content_sha256 = true,
        .region = "us-east-1",
        .service = "s3",
        .now = utc(2013, 5, 24, 0, 0, 0),
    };
    return r;
}

/* Line `idx` (0-based) of the canonical request of r. */
static void creq_line(const struct sigv4_request *r, int idx, char *out,
                      size_t cap)
{
    char buf[SIGV4_CANON_MAX];
    const char *p = buf;
    int n = sigv4_canonical_request(&S3_CREDS, r, buf, sizeof(buf));

    ck_assert_msg(n > 0, "canonical request: %s", edge_strerror(n));
    for (int i = 0; i < idx; i++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\n"), p);
}

static void assert_uri(const char *path, bool normalize, const char *want)
{
    struct sigv4_request r = s3_get(path, NULL);
    char line[SIGV4_CANON_MAX];

    r.normalize_path = normalize;
    creq_line(&r, 1, line, sizeof(line));
    ck_assert_msg(strcmp(line, want) == 0, "path %s (normalize=%d): %s, want %s",
                  path, normalize, line, want);
}

START_TEST(test_s3_path_signed_as_sent)
{
    /* encoded once on the wire, signed once: never %25-encoded again */
    assert_uri("/photos/my%20cat.jpg", false, "/photos/my%20cat.jpg");
    assert_uri("/%E1%88%B4/caf%C3%A9.txt", false, "/%E1%88%B4/caf%C3%A9.txt");
    assert_uri("/a%2Bb~c/file%3Dx.txt", false, "/a%2Bb~c/file%3Dx.txt");
    assert_uri("/100%25.txt", false, "/100%25.txt");  /* key "100%.txt" */
    assert_uri("/a//b/./c/../d", false, "/a//b/./c/../d"); /* S3 keys */
    assert_uri("//", false, "//");
    assert_uri("/", false, "/");
    /* the same octet: hex digits are made uppercase (RFC 3986 6.2.2.1) */
    assert_uri("/a%2bb%c3%a9", false, "/a%2Bb%C3%A9");
    /* bytes left raw get their one encoding */
    assert_uri("/test$file.text", false, "/test%24file.text");
    assert_uri("/my cat+1.jpg", false, "/my%20cat%2B1.jpg");
    assert_uri("/caf\xc3\xa9", false, "/caf%C3%A9");

    /* generic rules, for contrast: normalised and encoded a second time */
    assert_uri("/photos/my%20cat.jpg", true, "/photos/my%2520cat.jpg");
    assert_uri("/a//b/./c/../d", true, "/a/b/d");
    assert_uri("/a/b/..", true, "/a");
    assert_uri("/a/b/../", true, "/a/");
    assert_uri("/../..", true, "/");
    assert_uri("//example//", true, "/example/");
}
END_TEST

START_TEST(test_s3_path_bad_escape)
{
    char buf[SIGV4_CANON_MAX];
    struct sigv4_result res;
    const char *bad[] = {"/a%", "/a%2", "/a%zz", "/a%2g/b"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct sigv4_request r = s3_get(bad[i], NULL);
        ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &r, buf,
                                                 sizeof(buf)),
                         EDGE_EINVAL);
        ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_EINVAL);
        ck_assert_str_eq(res.authorization, "");
    }
}
END_TEST

static void assert_query(const char *query, const char *want)
{
    struct sigv4_request r = s3_get("/", query);
    char line[SIGV4_CANON_MAX];

    creq_line(&r, 2, line, sizeof(line));
    ck_assert_msg(strcmp(line, want) == 0, "query %s: %s, want %s", query,
                  line, want);
}

START_TEST(test_canonical_query)
{
    assert_query("lifecycle", "lifecycle=");
    assert_query("versioning&acl", "acl=&versioning=");
    assert_query("b=2&a=1&a=0", "a=0&a=1&b=2");
    assert_query("prefix=a/b c", "prefix=a%2Fb%20c");
    assert_query("prefix=a%2fb%20c", "prefix=a%2Fb%20c");
    assert_query("x=a+b", "x=a%2Bb"); /* '+' is a plus, not a space */
    assert_query("x=%7e%41", "x=~A");  /* unreserved escapes decoded */
    assert_query("x=*'()!", "x=%2A%27%28%29%21");
    assert_query("a&&b=", "a=&b=");
    assert_query("versionId=abc=def", "versionId=abc%3Ddef");
    assert_query("", "");
    /* sorted by encoded name: "%E1..." < "P" < "Param" < "Param-3" */
    assert_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
                 "%E1%88%B4=Value1&Param=Value2&Param-3=Value3");
    assert_query("max-keys=2&prefix=J", "max-keys=2&prefix=J");

    {
        struct sigv4_request r = s3_get("/", "x=%G1");
        char buf[SIGV4_CANON_MAX];
        ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &r, buf,
                                                 sizeof(buf)),
                         EDGE_EINVAL);
        r.query = "x=%4";
        ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &r, buf,
                                                 sizeof(buf)),
                         EDGE_EINVAL);
    }
}
END_TEST

START_TEST(test_canonical_headers)
{
    const struct sigv4_header hs[] = {
        {"If-None-Match", "  \"abc\"  "},
        {"Range", "bytes=0-9"},
        {"X-Multi", "a \t  b"},
        {"x-multi", "  c  "},
        {"X-Amz-Meta-Empty", ""},
    };
    struct sigv4_request r = s3_get("/k", NULL);
    struct sigv4_creds creds = S3_CREDS;
    char buf[SIGV4_CANON_MAX];
    struct sigv4_result res;
    const char *want =
        "GET\n/k\n\n"
        "host:examplebucket.s3.amazonaws.com\n"
        "if-none-match:\"abc\"\n"
        "range:bytes=0-9\n"
        "x-amz-content-sha256:UNSIGNED-PAYLOAD\n"
        "x-amz-date:20130524T000000Z\n"
        "x-amz-meta-empty:\n"
        "x-amz-security-token:TOKEN\n"
        "x-multi:a b,c\n"
        "\n"
        "host;if-none-match;range;x-amz-content-sha256;x-amz-date;"
        "x-amz-meta-empty;x-amz-security-token;x-multi\n"
        "UNSIGNED-PAYLOAD";
    int n;

    creds.session_token = "TOKEN";
    r.headers = hs;
    r.nheaders = sizeof(hs) / sizeof(hs[0]);
    n = sigv4_canonical_request(&creds, &r, buf, sizeof(buf));
    ck_assert_int_eq(n, (int)strlen(want));
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), 0);
    ck_assert_ptr_nonnull(strstr(res.authorization,
                                 ", SignedHeaders=host;if-none-match;range;"
                                 "x-amz-content-sha256;x-amz-date;"
                                 "x-amz-meta-empty;x-amz-security-token;"
                                 "x-multi, Signature="));
    ck_assert_str_eq(res.content_sha256, "UNSIGNED-PAYLOAD");
    ck_assert_uint_eq(strlen(res.signature), 64);

    /* without x-amz-content-sha256 (generic services) */
    r.add_content_sha256 = false;
    r.nheaders = 0;
    creds.session_token = NULL;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), 0);
    ck_assert_ptr_nonnull(
        strstr(res.authorization, "SignedHeaders=host;x-amz-date, "));
    ck_assert_str_eq(res.content_sha256, "");
}
END_TEST

START_TEST(test_header_refusals)
{
    struct sigv4_request r = s3_get("/k", NULL);
    struct sigv4_result res;
    char buf[SIGV4_CANON_MAX];
    const struct sigv4_header bad[][1] = {
        {{"X-Evil", "a\r\nInjected: 1"}},
        {{"X-Evil", "a\nb"}},
        {{"Bad Name", "v"}},
        {{"", "v"}},
        {{NULL, "v"}},
        {{"X-Null", NULL}},
        {{"Host", "other.example"}},       /* the signer owns these */
        {{"X-Amz-Date", "20130524T000000Z"}},
        {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}},
        {{"X-Amz-Security-Token", "t"}},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r.headers = bad[i];
        r.nheaders = 1;
        ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_EINVAL);
        ck_assert_str_eq(res.authorization, "");
        ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &r, buf,
                                                 sizeof(buf)),
                         EDGE_EINVAL);
    }
    r.headers = NULL;
    r.nheaders = 1;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_EINVAL);
    r.nheaders = 0;
    r.host = "a\r\nb";
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_EINVAL);
}
END_TEST

/* AWS General Reference, "Derive a signing key" example:
 * secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215/us-east-1/iam */
START_TEST(test_signing_key_published)
{
    static const uint8_t want[32] = {
        0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89, 0x5f, 0x9c, 0x67,
        0xb3, 0x2c, 0xe1, 0xba, 0xf0, 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0,
        0x00, 0xa1, 0xa9, 0xe0, 0x90, 0xd4, 0x14, 0xdb, 0x40, 0x4d};
    uint8_t key[32];

    ck_assert_int_eq(sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                       "20120215", "us-east-1", "iam", key),
                     0);
    ck_assert_mem_eq(key, want, 32);

    ck_assert_int_eq(sigv4_signing_key(NULL, "20120215", "r", "s", key),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_signing_key("x", "2012021", "r", "s", key),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_signing_key("x", "2012021a", "r", "s", key),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_signing_key("x", "20120215", "", "s", key),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_signing_key("x", "20120215", "r/x", "s", key),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_signing_key("x", "20120215", "r", NULL, key),
                     EDGE_EINVAL);
}
END_TEST

static void key_for(const char *secret, const char *date8, const char *region,
                    uint8_t key[32])
{
    ck_assert_int_eq(sigv4_signing_key(secret, date8, region, "s3", key), 0);
}

START_TEST(test_key_cache)
{
    struct sigv4_key_cache cache;
    struct sigv4_creds creds = S3_CREDS;
    struct sigv4_request r = s3_get("/test.txt", NULL);
    struct sigv4_result fresh, cached;
    time_t day1 = utc(2013, 5, 24, 0, 0, 0);
    uint8_t key[32];

    memset(&cache, 0, sizeof(cache));
    r.now = day1;
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);
    ck_assert_str_eq(cache.date, "20130524");
    ck_assert_str_eq(cache.region, "us-east-1");
    ck_assert_str_eq(cache.service, "s3");
    key_for(creds.secret_access_key, "20130524", "us-east-1", key);
    ck_assert_mem_eq(cache.key, key, 32);

    /* Same day, later: the cached key is used, not derived again. A
     * corrupted cached key proves it: the signature follows the cache. */
    cache.key[0] ^= 0xff;
    r.now = day1 + 23 * 3600 + 59 * 60 + 59;
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_ne(cached.signature, fresh.signature);
    cache.key[0] ^= 0xff;
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);

    /* Next day: derived again (the corruption does not survive). */
    cache.key[0] ^= 0xff;
    r.now = day1 + 86400;
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);
    ck_assert_str_eq(cache.date, "20130525");
    key_for(creds.secret_access_key, "20130525", "us-east-1", key);
    ck_assert_mem_eq(cache.key, key, 32);

    /* Rotated secret on the same day (temporary credentials): derived
     * again. */
    cache.key[0] ^= 0xff;
    creds.secret_access_key = "rotatedSECRETrotatedSECRETrotatedSECRET1";
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);
    key_for(creds.secret_access_key, "20130525", "us-east-1", key);
    ck_assert_mem_eq(cache.key, key, 32);

    /* Another region: derived again. */
    cache.key[0] ^= 0xff;
    r.region = "eu-west-1";
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);
    ck_assert_str_eq(cache.region, "eu-west-1");

    /* A region too long for the cache still signs, uncached. */
    memset(&cache, 0, sizeof(cache));
    r.region = "a-region-name-that-is-longer-than-the-sixty-three-bytes-a-"
               "cache-holds";
    ck_assert_int_eq(sigv4_sign(&creds, &r, &cache, &cached), 0);
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &fresh), 0);
    ck_assert_str_eq(cached.authorization, fresh.authorization);
    ck_assert_str_eq(cache.date, "");
}
END_TEST

START_TEST(test_too_long)
{
    struct sigv4_request r = s3_get("/test.txt", "max-keys=2&prefix=J");
    struct sigv4_creds creds = S3_CREDS;
    struct sigv4_result res;
    char small[16], full[SIGV4_CANON_MAX];
    static char big[SIGV4_CANON_MAX + 16];
    char secret[SIGV4_SECRET_MAX + 2];
    static char akid[SIGV4_AUTH_MAX];
    int n;

    /* tiny output buffers: refused, never truncated */
    ck_assert_int_eq(sigv4_canonical_request(&creds, &r, small, sizeof(small)),
                     EDGE_ETOOLONG);
    ck_assert_str_eq(small, "");
    ck_assert_int_eq(sigv4_string_to_sign(&creds, &r, small, sizeof(small)),
                     EDGE_ETOOLONG);
    ck_assert_str_eq(small, "");
    /* exactly fitting works, one byte less does not */
    n = sigv4_canonical_request(&creds, &r, full, sizeof(full));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(sigv4_canonical_request(&creds, &r, full, (size_t)n + 1),
                     n);
    ck_assert_int_eq(sigv4_canonical_request(&creds, &r, full, (size_t)n),
                     EDGE_ETOOLONG);

    /* a path longer than the canonical request buffer */
    big[0] = '/';
    memset(big + 1, 'a', sizeof(big) - 2);
    big[sizeof(big) - 1] = '\0';
    r.path = big;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), EDGE_ETOOLONG);
    {   /* the debug form refuses what sigv4_sign() refuses, whatever cap */
        static char huge[2 * SIGV4_CANON_MAX];
        ck_assert_int_eq(sigv4_canonical_request(&creds, &r, huge,
                                                 sizeof(huge)),
                         EDGE_ETOOLONG);
    }
    ck_assert_str_eq(res.authorization, "");
    ck_assert_str_eq(res.signature, "");
    r.normalize_path = true;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), EDGE_ETOOLONG);
    r.normalize_path = false;
    /* a query that grows past it once encoded (3 bytes per byte) */
    r.path = "/";
    memset(big, ' ', SIGV4_CANON_MAX / 2);
    big[0] = 'q';
    big[1] = '=';
    big[SIGV4_CANON_MAX / 2] = '\0';
    r.query = big;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), EDGE_ETOOLONG);
    r.query = NULL;

    /* an Authorization value that does not fit SIGV4_AUTH_MAX */
    memset(akid, 'A', sizeof(akid) - 1);
    akid[sizeof(akid) - 1] = '\0';
    creds.access_key_id = akid;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), EDGE_ETOOLONG);
    ck_assert_str_eq(res.authorization, "");
    creds.access_key_id = S3_CREDS.access_key_id;

    /* a secret over SIGV4_SECRET_MAX */
    memset(secret, 'k', sizeof(secret) - 1);
    secret[sizeof(secret) - 1] = '\0';
    creds.secret_access_key = secret;
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), EDGE_ETOOLONG);
    secret[SIGV4_SECRET_MAX] = '\0'; /* exactly the limit: fine */
    ck_assert_int_eq(sigv4_sign(&creds, &r, NULL, &res), 0);
}
END_TEST

START_TEST(test_too_many)
{
    struct sigv4_header hs[SIGV4_MAX_HEADERS + 1];
    char names[SIGV4_MAX_HEADERS + 1][16];
    static char query[SIGV4_MAX_QUERY_PARAMS * 8 + 8];
    struct sigv4_request r = s3_get("/k", NULL);
    struct sigv4_result res;
    size_t n = 0;

    for (size_t i = 0; i < SIGV4_MAX_HEADERS + 1; i++) {
        snprintf(names[i], sizeof(names[i]), "x-h%zu", i);
        hs[i] = (struct sigv4_header){names[i], "v"};
    }
    r.headers = hs;
    r.nheaders = SIGV4_MAX_HEADERS;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    r.nheaders = SIGV4_MAX_HEADERS + 1;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_ETOOMANY);
    r.nheaders = 0;

    for (size_t i = 0; i < SIGV4_MAX_QUERY_PARAMS; i++)
        n += (size_t)snprintf(query + n, sizeof(query) - n, "%sp%zu=1",
                              i ? "&" : "", i);
    r.query = query;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    snprintf(query + n, sizeof(query) - n, "&last");
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_ETOOMANY);
}
END_TEST

START_TEST(test_missing_fields)
{
    struct sigv4_request good = s3_get("/k", NULL);
    struct sigv4_request r;
    struct sigv4_creds c;
    struct sigv4_result res;
    char buf[SIGV4_CANON_MAX];

    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &good, NULL, &res), 0);
    ck_assert_int_eq(sigv4_sign(NULL, &good, NULL, &res), EDGE_EINVAL);
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, NULL, NULL, &res), EDGE_EINVAL);
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &good, NULL, NULL), EDGE_EINVAL);
    ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &good, NULL, 10),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_canonical_request(&S3_CREDS, &good, buf, 0),
                     EDGE_EINVAL);
    ck_assert_int_eq(sigv4_string_to_sign(NULL, &good, buf, sizeof(buf)),
                     EDGE_EINVAL);

#define EXPECT_EINVAL(cr, rq)                                                  \
    do {                                                                       \
        ck_assert_int_eq(sigv4_sign(cr, rq, NULL, &res), EDGE_EINVAL);         \
        ck_assert_str_eq(res.authorization, "");                               \
        ck_assert_int_eq(sigv4_canonical_request(cr, rq, buf, sizeof(buf)),    \
                         EDGE_EINVAL);                                         \
        ck_assert_int_eq(sigv4_string_to_sign(cr, rq, buf, sizeof(buf)),       \
                         EDGE_EINVAL);                                         \
    } while (0)

    c = S3_CREDS;
    c.access_key_id = NULL;
    EXPECT_EINVAL(&c, &good);
    c.access_key_id = "";
    EXPECT_EINVAL(&c, &good);
    c.access_key_id = "AKID/X";
    EXPECT_EINVAL(&c, &good);
    c = S3_CREDS;
    c.secret_access_key = NULL;
    EXPECT_EINVAL(&c, &good);
    c.secret_access_key = "";
    EXPECT_EINVAL(&c, &good);
    c = S3_CREDS;
    c.session_token = "";
    EXPECT_EINVAL(&c, &good);
    c.session_token = "tok\r\nen";
    EXPECT_EINVAL(&c, &good);

    r = good;
    r.method = NULL;
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.method = "";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.method = "G ET";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r = good;
    r.host = NULL;
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.host = "";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r = good;
    r.path = NULL;
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.path = "";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.path = "k";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r = good;
    r.region = NULL;
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.region = "";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.region = "us east";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r = good;
    r.service = NULL;
    EXPECT_EINVAL(&S3_CREDS, &r);
    r = good;
    r.payload_hash = "";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.payload_hash = "abc";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.payload_hash = /* uppercase hex */
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
    EXPECT_EINVAL(&S3_CREDS, &r);
    r.payload_hash = "UNSIGNED-PAYLOAD\n";
    EXPECT_EINVAL(&S3_CREDS, &r);
#undef EXPECT_EINVAL

    /* accepted payload forms */
    r.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    ck_assert_str_eq(res.content_sha256, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
    r.payload_hash = NULL;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    ck_assert_str_eq(res.content_sha256, SIGV4_EMPTY_SHA256);
}
END_TEST

START_TEST(test_dates)
{
    struct sigv4_request r = s3_get("/k", NULL);
    struct sigv4_result res;

    r.now = 0;
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    ck_assert_str_eq(res.amz_date, "19700101T000000Z");
    ck_assert_ptr_nonnull(strstr(res.authorization,
                                 "Credential=AKIAIOSFODNN7EXAMPLE/19700101/"
                                 "us-east-1/s3/aws4_request, "));
    r.now = utc(2024, 2, 29, 23, 59, 59);
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    ck_assert_str_eq(res.amz_date, "20240229T235959Z");
    r.now = utc(9999, 12, 31, 23, 59, 59);
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), 0);
    ck_assert_str_eq(res.amz_date, "99991231T235959Z");
    r.now += 1; /* year 10000 has no ISO 8601 basic form of 8 digits */
    ck_assert_int_eq(sigv4_sign(&S3_CREDS, &r, NULL, &res), EDGE_ERANGE);
    ck_assert_str_eq(res.amz_date, "");
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tv = tcase_create("vectors");
    TCase *tc = tcase_create("rules");

    tcase_add_test(tv, test_vectors_aws4_testsuite);
    tcase_add_test(tv, test_vectors_aws_c_auth);
    tcase_add_test(tv, test_vectors_s3);
    suite_add_tcase(s, tv);

    tcase_add_test(tc, test_s3_path_signed_as_sent);
    tcase_add_test(tc, test_s3_path_bad_escape);
    tcase_add_test(tc, test_canonical_query);
    tcase_add_test(tc, test_canonical_headers);
    tcase_add_test(tc, test_header_refusals);
    tcase_add_test(tc, test_signing_key_published);
    tcase_add_test(tc, test_key_cache);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_too_many);
    tcase_add_test(tc, test_missing_fields);
    tcase_add_test(tc, test_dates);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sigv4_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * test_conf.c: the configuration loader (common/conf.c).
 *
 * The shipped configs load; every kind of mistake gets its exact message
 * (file, line, key path, what was expected); sizes, durations, addresses
 * and origin URLs parse to the right values; defaults hold; allocation
 * failures anywhere end in "out of memory", never a crash or a leak.
 *
 * To add a bad-config case, add one line to bad_cases[].
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <check.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "err.h"

/* ------------------------------------------------------------ failmalloc */

/*
 * Make the Nth allocation fail, libyaml's included, by replacing the
 * allocator of the whole process (glibc supports that), and count live
 * allocations so that every failure path is also checked for leaks.
 * Sanitizers and valgrind bring their own allocator; under them the
 * failure tests are skipped (failmalloc_works() says so at run time).
 */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer) ||                 \
    __has_feature(memory_sanitizer)
#define HAVE_FAILMALLOC 0
#else
#define HAVE_FAILMALLOC 1
#endif

static long fail_countdown = -1; /* allocations left before one fails; -1: none */
static long live_allocs;         /* successful allocations not yet freed */

#if HAVE_FAILMALLOC
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

static int fail_now(void)
{
    if (fail_countdown < 0)
        return 0;
    if (fail_countdown-- == 0)
        return 1;
    return 0;
}

static void *counted(void *p)
{
    if (p != NULL)
        live_allocs++;
    return p;
}

void *malloc(size_t n)
{
    return fail_now() ? NULL : counted(__libc_malloc(n));
}

void *calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t n)
{
    void *q;

    if (p == NULL)
        return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    if (fail_now())
        return NULL;
    q = __libc_realloc(p, n);
    return q;
}

void free(void *p)
{
    if (p != NULL)
        live_allocs--;
    __libc_free(p);
}
#endif

/* Is our allocator the one in use? */
static bool failmalloc_works(void)
{
    void *p;

    if (!HAVE_FAILMALLOC)
        return false;
    fail_countdown = 0;
    p = malloc(16);
    fail_countdown = -1;
    free(p);
    return p == NULL;
}

/* ------------------------------------------------------------ helpers */

static char err[CONF_ERR_MAX];

static struct conf *load(const char *yaml)
{
    struct conf *c = conf_new();

    ck_assert_ptr_nonnull(c);
    err[0] = '\0';
    if (conf_load_string(c, "x.yaml", yaml, strlen(yaml), err) != 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}

static struct conf *load_ok(const char *yaml)
{
    struct conf *c = load(yaml);

    ck_assert_msg(c != NULL, "unexpected error: %s", err);
    return c;
}

/* TEST_SRCDIR is "<top srcdir>/tests", set by Makefile.am. */
static void conf_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("TEST_SRCDIR");

#ifdef TEST_SRCDIR
    dir = TEST_SRCDIR;
#endif
    if (dir == NULL)
        dir = "tests";
    snprintf(buf, cap, "%s/../conf/%s", dir, name);
}

static char *tmp_file(const char *content, size_t len)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof path, "/tmp/test_conf.XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

/* A valid skeleton: L is line 1, O lines 2-5 (after L), D 3 lines. */
#define L "listen: [127.0.0.1:8080]\n"
#define O "origins:\n- name: o\n  endpoint: http://127.0.0.1:9000\n  bucket: b\n"
#define D "distributions:\n- name: d\n  origin: o\n"
/* origin item start, for cases that vary origin keys: L, then lines 2-4 */
#define O_HEAD "origins:\n- name: o\n  endpoint: http://h.example:9000\n"

/* ------------------------------------------------------------ shipped configs */

START_TEST(shipped_s3edge_yaml)
{
    struct conf *c = conf_new();
    const struct conf_origin *o;
    const struct conf_distribution *d;
    char path[PATH_MAX];

    conf_path(path, sizeof path, "s3edge.yaml");
    ck_assert_msg(conf_load_file(c, path, err) == 0, "%s", err);
    ck_assert_str_eq(c->path, path);
    ck_assert_uint_eq(c->nlistens, 1);
    ck_assert_str_eq(c->listens[0].address, "127.0.0.1:8080");
    ck_assert_int_eq(c->log_level, LOG_LVL_INFO);
    ck_assert_str_eq(c->error_log, "stderr");
    ck_assert_str_eq(c->access_log, "stderr");
    ck_assert_uint_eq(c->memory_cache_bytes, 256u << 20);
    ck_assert_uint_eq(c->max_object_bytes, 64u << 20);
    ck_assert_uint_eq(c->max_request_line, 8192);
    ck_assert_uint_eq(c->max_head_bytes, 32768);
    ck_assert_uint_eq(c->max_headers, 100);
    ck_assert_uint_eq(c->client_header_timeout_ms, 10000);
    ck_assert_uint_eq(c->client_idle_timeout_ms, 60000);
    ck_assert_uint_eq(c->client_send_timeout_ms, 60000);
    ck_assert_uint_eq(c->max_keepalive_requests, 10000);
    ck_assert_uint_eq(c->max_connections, 100000);
    ck_assert_uint_eq(c->max_pipeline, 16);
    ck_assert_uint_eq(c->workers, 0);

    ck_assert_uint_eq(c->norigins, 1);
    o = &c->origins[0];
    ck_assert_str_eq(o->name, "media");
    ck_assert_str_eq(o->endpoint, "https://s3.eu-west-1.amazonaws.com");
    ck_assert(o->tls);
    ck_assert_str_eq(o->host, "s3.eu-west-1.amazonaws.com");
    ck_assert_uint_eq(o->port, 443);
    ck_assert_str_eq(o->bucket, "my-bucket");
    ck_assert_str_eq(o->region, "eu-west-1");
    ck_assert_int_eq(o->addressing, CONF_ADDR_VIRTUAL);
    ck_assert_str_eq(o->vhost, "my-bucket.s3.eu-west-1.amazonaws.com");
    ck_assert_str_eq(o->authority, "my-bucket.s3.eu-west-1.amazonaws.com");
    ck_assert_int_eq(o->cred_source, CONF_CRED_ENV);
    ck_assert_ptr_null(o->access_key_id);
    ck_assert(!o->unsigned_payload);
    ck_assert(o->tls_verify);
    ck_assert_ptr_null(o->ca_file);
    ck_assert_uint_eq(o->connect_timeout_ms, 5000);
    ck_assert_uint_eq(o->first_byte_timeout_ms, 30000);
    ck_assert_uint_eq(o->idle_timeout_ms, 30000);
    ck_assert_uint_eq(o->keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(o->max_connections, 256);
    ck_assert_uint_eq(o->max_idle_connections, 64);

    ck_assert_uint_eq(c->ndists, 1);
    d = &c->dists[0];
    ck_assert_str_eq(d->name, "downloads");
    ck_assert_uint_eq(d->nhosts, 2);
    ck_assert_str_eq(d->hosts[0], "downloads.example.com");
    ck_assert_str_eq(d->hosts[1], "*.cdn.example.com");
    ck_assert_str_eq(d->origin_name, "media");
    ck_assert_ptr_eq(d->origin, o);
    ck_assert_str_eq(d->path_prefix, "/");
    ck_assert_str_eq(d->key_prefix, "");
    ck_assert_int_eq(d->query, CONF_QUERY_IGNORE);
    ck_assert_uint_eq(d->default_ttl_s, 86400);
    ck_assert(d->pass_amz_meta);

    /* finishing again changes nothing */
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_str_eq(c->origins[0].authority, "my-bucket.s3.eu-west-1.amazonaws.com");
    ck_assert_uint_eq(c->dists[0].nhosts, 2);
    ck_assert_ptr_eq(c->dists[0].origin, &c->origins[0]);
    conf_free(c);
}
END_TEST

START_TEST(shipped_demo_yaml)
{
    struct conf *c = conf_new();
    const struct conf_origin *o;
    char path[PATH_MAX];

    conf_path(path, sizeof path, "demo.yaml");
    ck_assert_msg(conf_load_file(c, path, err) == 0, "%s", err);
    ck_assert_uint_eq(c->nlistens, 1);
    ck_assert_str_eq(c->listens[0].address, "127.0.0.1:8080");
    ck_assert_uint_eq(c->memory_cache_bytes, 128u << 20);
    ck_assert_str_eq(c->access_log, "stderr");
    ck_assert_uint_eq(c->norigins, 1);
    o = &c->origins[0];
    ck_assert_str_eq(o->endpoint, "http://127.0.0.1:9000");
    ck_assert(!o->tls);
    ck_assert_str_eq(o->host, "127.0.0.1");
    ck_assert_uint_eq(o->port, 9000);
    ck_assert_str_eq(o->authority, "127.0.0.1:9000");
    ck_assert_str_eq(o->bucket, "demo");
    ck_assert_str_eq(o->region, "us-east-1");
    ck_assert_int_eq(o->addressing, CONF_ADDR_PATH);
    ck_assert_int_eq(o->cred_source, CONF_CRED_STATIC);
    ck_assert_str_eq(o->access_key_id, "S3EDGEDEMOKEY");
    ck_assert_str_eq(o->secret_access_key, "s3edge-demo-secret-key-not-for-production");
    ck_assert_ptr_null(o->session_token);
    ck_assert_uint_eq(c->ndists, 1);
    ck_assert_uint_eq(c->dists[0].nhosts, 1);
    ck_assert_str_eq(c->dists[0].hosts[0], "*");
    ck_assert_ptr_eq(c->dists[0].origin, o);
    conf_free(c);
}
END_TEST

/* ------------------------------------------------------------ defaults */

START_TEST(defaults_minimal)
{
    struct conf *c = load_ok(L O D);
    const struct conf_origin *o = &c->origins[0];
    const struct conf_distribution *d = &c->dists[0];

    ck_assert_int_eq(c->log_level, LOG_LVL_INFO);
    ck_assert_ptr_null(c->error_log);
    ck_assert_ptr_null(c->access_log);
    ck_assert_uint_eq(c->memory_cache_bytes, 256u << 20);
    ck_assert_uint_eq(c->max_object_bytes, 64u << 20);
    ck_assert_uint_eq(c->max_request_line, 8192);
    ck_assert_uint_eq(c->max_head_bytes, 32768);
    ck_assert_uint_eq(c->max_headers, 100);
    ck_assert_uint_eq(c->client_header_timeout_ms, 10000);
    ck_assert_uint_eq(c->client_idle_timeout_ms, 60000);
    ck_assert_uint_eq(c->client_send_timeout_ms, 60000);
    ck_assert_uint_eq(c->max_keepalive_requests, 10000);
    ck_assert_uint_eq(c->max_connections, 100000);
    ck_assert_uint_eq(c->max_pipeline, 16);
    ck_assert_uint_eq(c->workers, 0);

    ck_assert_str_eq(o->region, "us-east-1");
    ck_assert_int_eq(o->addressing, CONF_ADDR_PATH);
    ck_assert_int_eq(o->cred_source, CONF_CRED_ENV);
    ck_assert(!o->unsigned_payload);
    ck_assert(o->tls_verify);
    ck_assert_ptr_null(o->ca_file);
    ck_assert_uint_eq(o->connect_timeout_ms, 5000);
    ck_assert_uint_eq(o->first_byte_timeout_ms, 30000);
    ck_assert_uint_eq(o->idle_timeout_ms, 30000);
    ck_assert_uint_eq(o->keepalive_timeout_ms, 60000);
    ck_assert_uint_eq(o->max_connections, 256);
    ck_assert_uint_eq(o->max_idle_connections, 64);
    ck_assert_str_eq(o->vhost, "127.0.0.1");
    ck_assert_str_eq(o->authority, "127.0.0.1:9000");
    ck_assert_uint_eq(o->line, 3);

    ck_assert_uint_eq(d->nhosts, 1);
    ck_assert_str_eq(d->hosts[0], "*");
    ck_assert_str_eq(d->path_prefix, "/");
    ck_assert_str_eq(d->key_prefix, "");
    ck_assert_int_eq(d->query, CONF_QUERY_IGNORE);
    ck_assert_uint_eq(d->default_ttl_s, 86400);
    ck_assert(d->pass_amz_meta);
    ck_assert_int_eq(d->methods, CONF_METHODS_GET_HEAD);
    ck_assert_uint_eq(d->max_request_body, 100u << 20);
    ck_assert_int_eq(o->type, CONF_ORIGIN_S3);
    ck_assert_uint_eq(d->line, 7);
    ck_assert_uint_eq(d->origin_line, 8);
    conf_free(c);
}
END_TEST

START_TEST(every_key_set)
{
    struct conf *c = load_ok(
        "listen: [\":8080\", \"[::1]:8443\"]\n"
        "log: {level: debug, error_log: /var/log/e.log, access_log: off}\n"
        "cache: {memory_size: 2g, max_object_size: 512KB}\n"
        "limits:\n"
        "  max_request_line: 4k\n"
        "  max_head_bytes: 65536\n"
        "  max_headers: 50\n"
        "  client_header_timeout: 1500ms\n"
        "  client_idle_timeout: 2m\n"
        "  client_send_timeout: 1h\n"
        "  max_keepalive_requests: 7\n"
        "  max_connections: 9\n"
        "  max_pipeline: 1\n"
        "workers: 4\n"
        "origins:\n"
        "- name: a.b-c_d\n"
        "  endpoint: \"HTTPS://Bucket-Host.Example:8443/\"\n"
        "  region: eu-central-1\n"
        "  addressing: virtual\n"
        "  credentials:\n"
        "    source: static\n"
        "    access_key_id: AKID\n"
        "    secret_access_key: \"se/cr+et\"\n"
        "    session_token: TOKEN\n"
        "  unsigned_payload: true\n"
        "  tls_verify: False\n"
        "  ca_file: ca.pem\n"
        "  connect_timeout: 1\n"
        "  first_byte_timeout: 2s\n"
        "  idle_timeout: 3s\n"
        "  keepalive_timeout: 4s\n"
        "  max_connections: 5\n"
        "  max_idle_connections: 0\n"
        "- name: plain\n"
        "  endpoint: https://s3.ap-south-1.amazonaws.com\n"
        "  bucket: data\n"
        "  credentials: {source: anonymous}\n"
        "distributions:\n"
        "- name: one\n"
        "  hosts: [Img.Example.COM, \"*.static.example.com\", \"[2001:db8::1]\", 192.0.2.7]\n"
        "  origin: a.b-c_d\n"
        "  path_prefix: /img/\n"
        "  key_prefix: \"public/\"\n"
        "  query_string: all\n"
        "  default_ttl: 0\n"
        "  pass_amz_meta: false\n"
        "- name: two\n"
        "  origin: plain\n"
        "  default_ttl: 3650d\n");
    const struct conf_origin *o = &c->origins[0];
    const struct conf_distribution *d = &c->dists[0];

    ck_assert_uint_eq(c->nlistens, 2);
    ck_assert_str_eq(c->listens[1].address, "[::1]:8443");
    ck_assert_int_eq(c->log_level, LOG_LVL_DEBUG);
    ck_assert_str_eq(c->error_log, "/var/log/e.log");
    ck_assert_str_eq(c->access_log, "off");
    ck_assert_uint_eq(c->memory_cache_bytes, 2ull << 30);
    ck_assert_uint_eq(c->max_object_bytes, 512u << 10);
    ck_assert_uint_eq(c->max_request_line, 4096);
    ck_assert_uint_eq(c->max_head_bytes, 65536);
    ck_assert_uint_eq(c->max_headers, 50);
    ck_assert_uint_eq(c->client_header_timeout_ms, 1500);
    ck_assert_uint_eq(c->client_idle_timeout_ms, 120000);
    ck_assert_uint_eq(c->client_send_timeout_ms, 3600000);
    ck_assert_uint_eq(c->max_keepalive_requests, 7);
    ck_assert_uint_eq(c->max_connections, 9);
    ck_assert_uint_eq(c->max_pipeline, 1);
    ck_assert_uint_eq(c->workers, 4);

    ck_assert_str_eq(o->name, "a.b-c_d");
    ck_assert(o->tls);
    ck_assert_str_eq(o->host, "bucket-host.example");
    ck_assert_uint_eq(o->port, 8443);
    ck_assert_ptr_null(o->bucket); /* the host already names it */
    ck_assert_str_eq(o->vhost, "bucket-host.example");
    ck_assert_str_eq(o->authority, "bucket-host.example:8443");
    ck_assert_str_eq(o->region, "eu-central-1");
    ck_assert_int_eq(o->addressing, CONF_ADDR_VIRTUAL);
    ck_assert_int_eq(o->cred_source, CONF_CRED_STATIC);
    ck_assert_str_eq(o->access_key_id, "AKID");
    ck_assert_str_eq(o->secret_access_key, "se/cr+et");
    ck_assert_str_eq(o->session_token, "TOKEN");
    ck_assert(o->unsigned_payload);
    ck_assert(!o->tls_verify);
    ck_assert_str_eq(o->ca_file, "ca.pem");
    ck_assert_uint_eq(o->connect_timeout_ms, 1000);
    ck_assert_uint_eq(o->first_byte_timeout_ms, 2000);
    ck_assert_uint_eq(o->idle_timeout_ms, 3000);
    ck_assert_uint_eq(o->keepalive_timeout_ms, 4000);
    ck_assert_uint_eq(o->max_connections, 5);
    ck_assert_uint_eq(o->max_idle_connections, 0);

    /* region from the endpoint's name; path addressing by default */
    ck_assert_str_eq(c->origins[1].region, "ap-south-1");
    ck_assert_str_eq(c->origins[1].authority, "s3.ap-south-1.amazonaws.com");
    ck_assert_int_eq(c->origins[1].cred_source, CONF_CRED_ANONYMOUS);

    ck_assert_uint_eq(d->nhosts, 4);
    ck_assert_str_eq(d->hosts[0], "img.example.com");
    ck_assert_str_eq(d->hosts[1], "*.static.example.com");
    ck_assert_str_eq(d->hosts[2], "[2001:db8::1]");
    ck_assert_str_eq(d->hosts[3], "192.0.2.7");
    ck_assert_ptr_eq(d->origin, o);
    ck_assert_str_eq(d->path_prefix, "/img/");
    ck_assert_str_eq(d->key_prefix, "public/");
    ck_assert_int_eq(d->query, CONF_QUERY_ALL);
    ck_assert_uint_eq(d->default_ttl_s, 0);
    ck_assert(!d->pass_amz_meta);
    ck_assert_ptr_eq(c->dists[1].origin, &c->origins[1]);
    ck_assert_uint_eq(c->dists[1].default_ttl_s, 3650u * 86400);
    ck_assert_str_eq(c->dists[1].hosts[0], "*");
    conf_free(c);
}
END_TEST

START_TEST(max_object_capped_by_memory)
{
    struct conf *c = load_ok(L "cache: {memory_size: 16MiB}\n" O D);

    ck_assert_uint_eq(c->memory_cache_bytes, 16u << 20);
    ck_assert_uint_eq(c->max_object_bytes, 16u << 20);
    ck_assert_uint_eq(c->memory_max_object_bytes, 16u << 20);
    conf_free(c);
}
END_TEST

/* With a disk cache, the disk bounds what is cached and the memory what is
 * kept in memory; memory_max_object_size defaults to the smaller of the
 * two limits and never goes beyond them. */
START_TEST(memory_max_object)
{
    struct conf *c = load_ok(L O D);

    ck_assert_uint_eq(c->max_object_bytes, 64u << 20);
    ck_assert_uint_eq(c->memory_max_object_bytes, 64u << 20);
    conf_free(c);
    c = load_ok(L "cache: {memory_size: 16MiB, max_object_size: 5GiB, disk_path: /d, "
                  "disk_size: 4GiB}\n" O D);
    ck_assert_uint_eq(c->max_object_bytes, (uint64_t)4 << 30);
    ck_assert_uint_eq(c->memory_max_object_bytes, 16u << 20);
    conf_free(c);
    c = load_ok(L "cache: {memory_size: 1GiB, max_object_size: 5GiB, disk_path: /d,\n"
                  "        memory_max_object_size: 8MiB}\n" O D);
    ck_assert_uint_eq(c->max_object_bytes, (uint64_t)5 << 30);
    ck_assert_uint_eq(c->memory_max_object_bytes, 8u << 20);
    conf_free(c);
    c = load_ok(L "cache: {memory_size: 1GiB, memory_max_object_size: 512MiB}\n" O D);
    ck_assert_uint_eq(c->memory_max_object_bytes, 64u << 20); /* max_object_size */
    conf_free(c);
}
END_TEST

START_TEST(disk_cache_keys)
{
    struct conf *c = load_ok(L O D);

    ck_assert_ptr_null(c->disk_path);
    ck_assert_uint_eq(c->disk_size_bytes, (uint64_t)10 << 30);
    ck_assert_uint_eq(c->disk_threads, 2);
    ck_assert(!c->disk_fsync);
    conf_free(c);
    c = load_ok(L "cache:\n  disk_path: /var/cache/s3edge/\n  disk_size: 2TiB\n"
                  "  disk_threads: 8\n  disk_fsync: true\n" O D);
    ck_assert_str_eq(c->disk_path, "/var/cache/s3edge/");
    ck_assert_uint_eq(c->disk_size_bytes, (uint64_t)2 << 40);
    ck_assert_uint_eq(c->disk_threads, 8);
    ck_assert(c->disk_fsync);
    conf_free(c);
}
END_TEST

START_TEST(block_keys)
{
    struct conf *c = load_ok(L O D);

    ck_assert_uint_eq(c->block_bytes, 1u << 20);
    ck_assert_uint_eq(c->readahead_blocks, 8);
    ck_assert_uint_eq(c->orphan_fill_bytes, 8u << 20);
    ck_assert_uint_eq(c->reader_timeout_ms, 30000);
    ck_assert_uint_eq(c->max_ranges, 16);
    conf_free(c);
    c = load_ok(L "cache:\n  block_size: 4MiB\n  readahead_blocks: 0\n"
                  "  orphan_fill_max: 0\n  reader_timeout: 1500ms\n"
                  "limits:\n  max_ranges: 1\n" O D);
    ck_assert_uint_eq(c->block_bytes, 4u << 20);
    ck_assert_uint_eq(c->readahead_blocks, 0);
    ck_assert_uint_eq(c->orphan_fill_bytes, 0);
    ck_assert_uint_eq(c->reader_timeout_ms, 1500);
    ck_assert_uint_eq(c->max_ranges, 1);
    conf_free(c);
}
END_TEST

START_TEST(fleet_keys)
{
    struct conf *c = load_ok(L O D);

    /* defaults: no admin API, no Redis, memory only */
    ck_assert_ptr_null(c->node_id);
    ck_assert_ptr_null(c->state_dir);
    ck_assert_ptr_null(c->admin_listen);
    ck_assert_uint_eq(c->nadmin_tokens, 0);
    ck_assert_ptr_null(c->redis_url);
    ck_assert_ptr_null(c->redis_sentinel_master);
    ck_assert_uint_eq(c->redis_stream_maxlen, 100000);
    ck_assert_uint_eq(c->heartbeat_ms, 250);
    conf_free(c);
    c = load_ok(L O D "node:\n  id: edge-fra1.a\n  pop: \"fra1 (eu-central)\"\n"
                      "  state_dir: /var/lib/s3edge\n"
                      "admin:\n  listen: 127.0.0.1:9090\n  tokens: [t0k3n-one, \"t0k3n:two\"]\n"
                      "  token_file: /etc/s3edge/tokens\n"
                      "redis:\n  url: redis://edge:s3cret@[::1]:6380/3\n  username: acl-user\n"
                      "  password: pw\n  stream_maxlen: 5000\n"
                      "heartbeat: 100ms\n");
    ck_assert_str_eq(c->node_id, "edge-fra1.a");
    ck_assert_str_eq(c->pop, "fra1 (eu-central)");
    ck_assert_str_eq(c->state_dir, "/var/lib/s3edge");
    ck_assert_str_eq(c->admin_listen, "127.0.0.1:9090");
    ck_assert_uint_eq(c->nadmin_tokens, 2);
    ck_assert_str_eq(c->admin_tokens[0], "t0k3n-one");
    ck_assert_str_eq(c->admin_tokens[1], "t0k3n:two");
    ck_assert_str_eq(c->admin_token_file, "/etc/s3edge/tokens");
    ck_assert_str_eq(c->redis_url, "redis://edge:s3cret@[::1]:6380/3");
    ck_assert_str_eq(c->redis_username, "acl-user");
    ck_assert_str_eq(c->redis_password, "pw");
    ck_assert_uint_eq(c->redis_stream_maxlen, 5000);
    ck_assert_uint_eq(c->heartbeat_ms, 100);
    conf_free(c);
    c = load_ok(L O D "redis:\n  sentinel:\n    master: mymaster\n"
                      "    addrs: [\"127.0.0.1:26379\", \"[::1]:26380\", \"s.example:26381\"]\n"
                      "  password: pw\n");
    ck_assert_ptr_null(c->redis_url);
    ck_assert_str_eq(c->redis_sentinel_master, "mymaster");
    ck_assert_uint_eq(c->nredis_sentinel_addrs, 3);
    ck_assert_str_eq(c->redis_sentinel_addrs[1], "[::1]:26380");
    ck_assert_str_eq(c->redis_sentinel_addrs[2], "s.example:26381");
    conf_free(c);
}
END_TEST

START_TEST(fleet_command_line)
{
    /* values the command line sets are checked by conf_finish too */
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_add_listen(c, "127.0.0.1:8080", err), 0);
    ck_assert_int_eq(conf_add_origin_url(c, "http://127.0.0.1:9000/b", err), 0);
    c->node_id = strdup("bad node");
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "node.id: expected a name of 1-100 letters, digits, '.', '-' or '_'");
    free(c->node_id);
    c->node_id = strdup("ok");
    c->admin_listen = strdup("127.0.0.1:9090");
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "admin.tokens: missing, expected tokens or a token_file (the admin "
                          "API takes bearer tokens only)");
    c->admin_token_file = strdup("tokens");
    c->redis_url = strdup("http://127.0.0.1:6379");
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "redis.url: expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]");
    free(c->redis_url);
    c->redis_url = strdup("redis://127.0.0.1");
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    conf_free(c);
}
END_TEST

START_TEST(admin_tls_keys)
{
    struct conf_tls_material m;
    struct conf *c = load_ok(L O D "admin:\n  listen: 127.0.0.1:9090\n  tokens: [t]\n"
                                   "  tls: {cert: a-chain.crt, key: a.key}\n");

    ck_assert_str_eq(c->admin_tls_cert, "a-chain.crt");
    ck_assert_str_eq(c->admin_tls_key, "a.key");
    ck_assert_int_eq(conf_admin_tls_load(c, &m, err), 0);
    ck_assert_ptr_nonnull(m.leaf);
    ck_assert_ptr_nonnull(m.key);
    ck_assert_int_eq(sk_X509_num(m.chain), 1);
    conf_tls_material_fini(&m);
    conf_free(c);
}
END_TEST

START_TEST(virtual_with_bucket_and_port)
{
    struct conf *c = load_ok(L "origins:\n- name: o\n  endpoint: http://s3.local:9000\n"
                               "  bucket: pics\n  addressing: virtual\n" D);

    ck_assert_str_eq(c->origins[0].host, "s3.local");
    ck_assert_str_eq(c->origins[0].vhost, "pics.s3.local");
    ck_assert_str_eq(c->origins[0].authority, "pics.s3.local:9000");
    conf_free(c);
}
END_TEST

/* ------------------------------------------------------------ TLS files */

/*
 * The TLS cases need real certificates, keys, OCSP responses and ticket
 * keys. They are made here with OpenSSL in a fresh temporary directory,
 * which the TLS and error cases run in (relative names keep the expected
 * messages fixed):
 *   ca.crt          a test CA
 *   a.crt a.key     leaf for a.test, signed by the CA; a-chain.crt: leaf + CA
 *   b.key           another key (matches nothing)
 *   enc.key         a.key, encrypted
 *   junk.pem        not PEM
 *   a.ocsp          "good" for a.crt;  revoked.ocsp: "revoked" for a.crt
 *   other.ocsp      "good" for another certificate of the CA
 *   trylater.ocsp   an unsuccessful response (tryLater)
 *   tk2.key         two ticket keys; tk50.key 50 bytes; tkdup.key two keys
 *                   with one name; tk17.key 17 keys
 */
static char tls_dir[64];
static char tls_old_cwd[PATH_MAX];

#define TLS_NEED(x)                                                                                \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: making the TLS test files: %s\n", __FILE__, __LINE__, #x);     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    char san[128];

    TLS_NEED(x != NULL);
    TLS_NEED(X509_set_version(x, 2));
    TLS_NEED(ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(random() & 0x7fffffff)));
    TLS_NEED(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
    TLS_NEED(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
    TLS_NEED(X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)cn, -1, -1, 0));
    TLS_NEED(
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : X509_get_subject_name(x)));
    TLS_NEED(X509_set_pubkey(x, key));
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    if (ca) {
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    } else {
        snprintf(san, sizeof san, "DNS:%s", cn);
        ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    }
    TLS_NEED(ext != NULL && X509_add_ext(x, ext, -1));
    X509_EXTENSION_free(ext);
    TLS_NEED(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_bytes(const char *name, const void *p, size_t n)
{
    FILE *f = fopen(name, "wb");

    TLS_NEED(f != NULL);
    TLS_NEED(fwrite(p, 1, n, f) == n);
    TLS_NEED(fclose(f) == 0);
}

static void write_certs(const char *name, X509 *a, X509 *b)
{
    FILE *f = fopen(name, "w");

    TLS_NEED(f != NULL);
    TLS_NEED(PEM_write_X509(f, a));
    if (b != NULL)
        TLS_NEED(PEM_write_X509(f, b));
    TLS_NEED(fclose(f) == 0);
}

static void write_key(const char *name, EVP_PKEY *k, bool encrypted)
{
    FILE *f = fopen(name, "w");

    TLS_NEED(f != NULL);
    if (encrypted)
        TLS_NEED(PEM_write_PrivateKey(f, k, EVP_aes_128_cbc(), (unsigned char *)"secret", 6, NULL,
                                      NULL));
    else
        TLS_NEED(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    TLS_NEED(fclose(f) == 0);
}

/* resp_status other than successful: a response without a body */
static void write_ocsp(const char *name, X509 *leaf, X509 *ca, EVP_PKEY *ca_key, int cert_status,
                       int resp_status)
{
    OCSP_RESPONSE *resp;
    OCSP_BASICRESP *basic = NULL;
    unsigned char *der = NULL;
    int n;

    if (resp_status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, ca);
        ASN1_TIME *now = X509_gmtime_adj(NULL, 0), *next = X509_gmtime_adj(NULL, 86400);
        bool revoked = cert_status == V_OCSP_CERTSTATUS_REVOKED;

        basic = OCSP_BASICRESP_new();
        TLS_NEED(id != NULL && now != NULL && next != NULL && basic != NULL);
        TLS_NEED(OCSP_basic_add1_status(basic, id, cert_status,
                                        revoked ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : 0,
                                        revoked ? now : NULL, now, next));
        TLS_NEED(OCSP_basic_sign(basic, ca, ca_key, EVP_sha256(), NULL, 0));
        OCSP_CERTID_free(id);
        ASN1_TIME_free(now);
        ASN1_TIME_free(next);
    }
    resp = OCSP_response_create(resp_status, basic);
    TLS_NEED(resp != NULL);
    n = i2d_OCSP_RESPONSE(resp, &der);
    TLS_NEED(n > 0);
    write_bytes(name, der, (size_t)n);
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(basic);
}

static void tls_files_make(void)
{
    EVP_PKEY *ca_key, *a_key, *b_key, *o_key;
    X509 *ca, *a, *o;
    unsigned char tk[17 * 80];

    TLS_NEED(getcwd(tls_old_cwd, sizeof tls_old_cwd) != NULL);
    snprintf(tls_dir, sizeof tls_dir, "/tmp/test_conf_tls.XXXXXX");
    TLS_NEED(mkdtemp(tls_dir) != NULL);
    TLS_NEED(chdir(tls_dir) == 0);
    ca_key = EVP_EC_gen("P-256");
    a_key = EVP_EC_gen("P-256");
    b_key = EVP_EC_gen("P-256");
    o_key = EVP_EC_gen("P-256");
    TLS_NEED(ca_key && a_key && b_key && o_key);
    ca = make_cert("Test CA", ca_key, NULL, NULL, true);
    a = make_cert("a.test", a_key, ca, ca_key, false);
    o = make_cert("o.test", o_key, ca, ca_key, false);
    write_certs("ca.crt", ca, NULL);
    write_certs("a.crt", a, NULL);
    write_certs("a-chain.crt", a, ca);
    write_key("a.key", a_key, false);
    write_key("b.key", b_key, false);
    write_key("enc.key", a_key, true);
    write_bytes("junk.pem", "not a certificate\n", 18);
    write_ocsp("a.ocsp", a, ca, ca_key, V_OCSP_CERTSTATUS_GOOD, OCSP_RESPONSE_STATUS_SUCCESSFUL);
    write_ocsp("revoked.ocsp", a, ca, ca_key, V_OCSP_CERTSTATUS_REVOKED,
               OCSP_RESPONSE_STATUS_SUCCESSFUL);
    write_ocsp("other.ocsp", o, ca, ca_key, V_OCSP_CERTSTATUS_GOOD,
               OCSP_RESPONSE_STATUS_SUCCESSFUL);
    write_ocsp("trylater.ocsp", NULL, NULL, NULL, 0, OCSP_RESPONSE_STATUS_TRYLATER);
    TLS_NEED(RAND_bytes(tk, sizeof tk) == 1);
    write_bytes("tk2.key", tk, 160);
    write_bytes("tk50.key", tk, 50);
    write_bytes("tk17.key", tk, sizeof tk);
    memcpy(tk + 80, tk, 16);
    write_bytes("tkdup.key", tk, 160);
    X509_free(ca);
    X509_free(a);
    X509_free(o);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(a_key);
    EVP_PKEY_free(b_key);
    EVP_PKEY_free(o_key);
}

static void tls_files_remove(void)
{
    static const char *const names[] = {
        "ca.crt",        "a.crt",    "a-chain.crt", "a.key",        "b.key",
        "enc.key",       "junk.pem", "a.ocsp",      "revoked.ocsp", "other.ocsp",
        "trylater.ocsp", "tk2.key",  "tk50.key",    "tk17.key",     "tkdup.key",
    };
    size_t i;

    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(names[i]);
    TLS_NEED(chdir(tls_old_cwd) == 0);
    rmdir(tls_dir);
}

/* A TLS listener (lines 1-6) whose tls mapping takes more keys at line 7,
 * 4 spaces in. */
#define T                                                                                          \
    "listen:\n- address: 127.0.0.1:8443\n  tls:\n    certificates:\n"                              \
    "    - cert: a.crt\n      key: a.key\n"
/* the same, the certificate entry open for more keys at line 7, 6 in */
#define T_CERT(cert, key)                                                                          \
    "listen:\n- address: 127.0.0.1:8443\n  tls:\n    certificates:\n"                              \
    "    - cert: " cert "\n      key: " key "\n"

START_TEST(tls_every_key_set)
{
    struct conf *c = load_ok("listen:\n"
                             "- \":8080\"\n"
                             "- address: \"[::1]:8443\"\n"
                             "  tls:\n"
                             "    certificates:\n"
                             "    - cert: a-chain.crt\n"
                             "      key: a.key\n"
                             "      ocsp: a.ocsp\n"
                             "    - {cert: a.crt, key: a.key}\n"
                             "    protocols: [TLSv1.3]\n"
                             "    ciphersuites: \"TLS_AES_256_GCM_SHA384:"
                             "TLS_CHACHA20_POLY1305_SHA256\"\n"
                             "    session_tickets: true\n"
                             "    ticket_key_file: tk2.key\n"
                             "    ticket_key_rotation: 1h\n"
                             "    session_cache: 0\n"
                             "    alpn: [http/1.1]\n"
                             "    handshake_timeout: 2500ms\n"
                             "    ktls: auto\n"
                             "- address: 127.0.0.1:9443\n" O D);
    const struct conf_tls *t = c->listens[1].tls;
    struct conf_tls_material m;
    unsigned char *keys;
    size_t n;

    ck_assert_uint_eq(c->nlistens, 3);
    ck_assert_ptr_null(c->listens[0].tls);
    ck_assert_ptr_null(c->listens[2].tls);
    ck_assert_str_eq(c->listens[2].address, "127.0.0.1:9443");
    ck_assert_str_eq(c->listens[1].address, "[::1]:8443");
    ck_assert_uint_eq(c->listens[1].line, 3);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->line, 5);
    ck_assert_uint_eq(t->ncerts, 2);
    ck_assert_str_eq(t->certs[0].cert, "a-chain.crt");
    ck_assert_str_eq(t->certs[0].key, "a.key");
    ck_assert_str_eq(t->certs[0].ocsp, "a.ocsp");
    ck_assert_uint_eq(t->certs[0].line, 6);
    ck_assert_uint_eq(t->certs[0].key_line, 7);
    ck_assert_uint_eq(t->certs[0].ocsp_line, 8);
    ck_assert_str_eq(t->certs[1].cert, "a.crt");
    ck_assert_ptr_null(t->certs[1].ocsp);
    ck_assert_uint_eq(t->protocols, CONF_TLS_V13);
    ck_assert_ptr_null(t->ciphers);
    ck_assert_str_eq(t->ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    ck_assert(t->session_tickets);
    ck_assert_str_eq(t->ticket_key_file, "tk2.key");
    ck_assert_uint_eq(t->ticket_key_rotation_s, 3600);
    ck_assert_uint_eq(t->session_cache, 0);
    ck_assert_uint_eq(t->nalpn, 1);
    ck_assert_int_eq(t->alpn[0], CONF_ALPN_HTTP11);
    ck_assert_uint_eq(t->handshake_timeout_ms, 2500);
    ck_assert_int_eq(t->ktls, CONF_KTLS_AUTO);

    /* what the daemon gets from the files */
    ck_assert_msg(conf_tls_cert_load(c, 1, 0, &m, err) == 0, "%s", err);
    ck_assert_ptr_nonnull(m.leaf);
    ck_assert_ptr_nonnull(m.key);
    ck_assert_int_eq(sk_X509_num(m.chain), 1);
    ck_assert_ptr_nonnull(m.ocsp);
    ck_assert_uint_gt(m.ocsp_len, 100);
    conf_tls_material_fini(&m);
    ck_assert_ptr_null(m.leaf);
    ck_assert_msg(conf_tls_cert_load(c, 1, 1, &m, err) == 0, "%s", err);
    ck_assert_int_eq(sk_X509_num(m.chain), 0);
    ck_assert_ptr_null(m.ocsp);
    conf_tls_material_fini(&m);
    ck_assert_msg(conf_tls_ticket_keys_load(c, 1, &keys, &n, err) == 0, "%s", err);
    ck_assert_uint_eq(n, 2);
    free(keys);

    /* finishing again reads the files again and changes nothing */
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_ptr_null(c->listens[1].tls->ciphers);
    conf_free(c);
}
END_TEST

START_TEST(tls_defaults)
{
    struct conf *c = load_ok(T O D);
    const struct conf_tls *t = c->listens[0].tls;

    ck_assert_uint_eq(t->ncerts, 1);
    ck_assert_uint_eq(t->certs[0].line, 5);
    ck_assert_uint_eq(t->certs[0].cert_line, 5);
    ck_assert_uint_eq(t->protocols, CONF_TLS_V12 | CONF_TLS_V13);
    ck_assert_ptr_null(t->ciphers);      /* CONF_TLS_CIPHERS */
    ck_assert_ptr_null(t->ciphersuites); /* CONF_TLS_CIPHERSUITES */
    ck_assert(t->session_tickets);
    ck_assert_ptr_null(t->ticket_key_file);
    ck_assert_uint_eq(t->ticket_key_rotation_s, 12 * 3600);
    ck_assert_uint_eq(t->session_cache, 20000);
    ck_assert_uint_eq(t->nalpn, 2);
    ck_assert_int_eq(t->alpn[0], CONF_ALPN_H2);
    ck_assert_int_eq(t->alpn[1], CONF_ALPN_HTTP11);
    ck_assert_uint_eq(t->handshake_timeout_ms, 10000);
    ck_assert_int_eq(t->ktls, CONF_KTLS_OFF);
    conf_free(c);
}
END_TEST

START_TEST(tls_default_lists_valid)
{
    /* the built-in lists pass the checks users' lists get */
    struct conf *c = load_ok(T "    ciphers: \"" CONF_TLS_CIPHERS "\"\n"
                               "    ciphersuites: \"" CONF_TLS_CIPHERSUITES "\"\n" O D);

    conf_free(c);
}
END_TEST

START_TEST(tls_command_line)
{
    static const char *const certs[] = {"a.crt", "a-chain.crt"};
    static const char *const keys[] = {"a.key", "a.key"};
    static const char *const bad_keys[] = {"a.key", "b.key"};
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_add_tls_listen(c, "127.0.0.1:8443", certs, keys, 2, err), 0);
    ck_assert_int_eq(conf_add_tls_listen(c, "8443", certs, keys, 2, err), -1);
    ck_assert_str_eq(err, "listen address \"8443\": expected host:port, [IPv6]:port or :port");
    ck_assert_int_eq(conf_add_origin_url(c, "http://127.0.0.1:9000/b", err), 0);
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_uint_eq(c->nlistens, 1);
    ck_assert_uint_eq(c->listens[0].tls->ncerts, 2);
    ck_assert_str_eq(c->listens[0].tls->certs[1].cert, "a-chain.crt");
    ck_assert_uint_eq(c->listens[0].tls->certs[1].line, 0);
    ck_assert_uint_eq(c->listens[0].tls->nalpn, 2);

    /* no file, no line: the message starts with the key */
    ck_assert_int_eq(conf_add_tls_listen(c, "127.0.0.1:9443", certs, bad_keys, 2, err), 0);
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "listen[1].tls.certificates[1].key: the key in b.key does not match "
                          "the certificate in a-chain.crt");
    conf_free(c);

    c = conf_new();
    ck_assert_int_eq(conf_add_tls_listen(c, "127.0.0.1:8443", certs, keys, 0, err), 0);
    ck_assert_int_eq(conf_add_origin_url(c, "http://127.0.0.1:9000/b", err), 0);
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "listen[0].tls.certificates: missing, expected at least one "
                          "certificate with its key");
    conf_free(c);
}
END_TEST

/* Replace every `from` in the NUL-terminated buf (room for cap bytes). */
static void replace_all(char *buf, size_t cap, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    char *p = buf;

    while ((p = strstr(p, from)) != NULL) {
        ck_assert_uint_lt(strlen(buf) - fl + tl, cap);
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
        memcpy(p, to, tl);
        p += tl;
    }
}

START_TEST(tls_shipped_example)
{
    /* conf/s3edge.yaml documents a TLS listener in comments: uncommented,
     * with this directory's files for its paths, it loads and holds the
     * defaults it claims */
    static const char start[] = "  # - address: \":443\"\n";
    char path[PATH_MAX], *buf, *out, *line, *save = NULL;
    size_t cap = 256 * 1024, o = 0;
    bool in_block = false, seen = false;
    struct conf *c;
    const struct conf_tls *t;
    FILE *f;
    size_t n;

    conf_path(path, sizeof path, "s3edge.yaml");
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    buf = calloc(1, cap);
    out = calloc(1, cap);
    ck_assert(buf != NULL && out != NULL);
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
    ck_assert_uint_lt(n, cap - 1);
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (!in_block && strncmp(line, start, sizeof start - 2) == 0 &&
            line[sizeof start - 2] == '\0')
            in_block = seen = true;
        else if (in_block && strncmp(line, "  #", 3) != 0)
            in_block = false;
        /* "  # - x" -> "  - x", "  #   y" -> "    y" */
        o += (size_t)snprintf(out + o, cap - o, "%s%s\n", in_block ? "  " : "",
                              in_block ? line + 4 : line);
        ck_assert_uint_lt(o, cap);
    }
    ck_assert_msg(seen, "no TLS example in s3edge.yaml");
    replace_all(out, cap, "/etc/s3edge/tls/downloads.example.com.pem", "a-chain.crt");
    replace_all(out, cap, "/etc/s3edge/tls/downloads.example.com.key", "a.key");
    replace_all(out, cap, "/etc/s3edge/tls/downloads.example.com.ocsp", "a.ocsp");
    replace_all(out, cap, "/etc/s3edge/tls/wildcard.cdn.example.com.pem", "a.crt");
    replace_all(out, cap, "/etc/s3edge/tls/wildcard.cdn.example.com.key", "a.key");
    c = conf_new();
    ck_assert_msg(conf_load_string(c, "s3edge.yaml", out, strlen(out), err) == 0, "%s\n%s", err,
                  out);
    ck_assert_uint_eq(c->nlistens, 2);
    t = c->listens[1].tls;
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(c->listens[1].address, ":443");
    ck_assert_uint_eq(t->ncerts, 2);
    ck_assert_str_eq(t->certs[0].ocsp, "a.ocsp");
    ck_assert_uint_eq(t->protocols, CONF_TLS_V12 | CONF_TLS_V13);
    ck_assert_str_eq(t->ciphers, CONF_TLS_CIPHERS);
    ck_assert_str_eq(t->ciphersuites, CONF_TLS_CIPHERSUITES);
    ck_assert(t->session_tickets);
    ck_assert_ptr_null(t->ticket_key_file);
    ck_assert_uint_eq(t->ticket_key_rotation_s, 12 * 3600);
    ck_assert_uint_eq(t->session_cache, 20000);
    ck_assert_uint_eq(t->nalpn, 2);
    ck_assert_int_eq(t->alpn[0], CONF_ALPN_H2);
    ck_assert_uint_eq(t->handshake_timeout_ms, 10000);
    ck_assert_int_eq(t->ktls, CONF_KTLS_OFF);
    conf_free(c);
    free(buf);
    free(out);
}
END_TEST

/* ------------------------------------------------------------ bad configs */

static const struct bad_case {
    const char *yaml;
    const char *msg;
} bad_cases[] = {
    /* the file itself */
    {"", "x.yaml:1: empty configuration, expected a mapping of keys"},
    {"# only a comment\n\n", "x.yaml:1: empty configuration, expected a mapping of keys"},
    {"---\n", "x.yaml:1: empty configuration, expected a mapping of keys"},
    {"hello\n", "x.yaml:1: expected a mapping of keys at the top level"},
    {"- listen\n", "x.yaml:1: expected a mapping of keys at the top level"},
    {L O D "---\n" L, "x.yaml:9: expected a single YAML document"},
    {"listen: [\n", "x.yaml:2: YAML syntax error: did not find expected node content "
                    "(while parsing a flow node at line 2)"},
    {"cache:\n\tmemory_size: 1\n", "x.yaml:2: YAML syntax error: found character that "
                                   "cannot start any token (while scanning for the next "
                                   "token at line 2)"},
    {"log:\n  level: \xff\n", "x.yaml:2: invalid input: invalid leading UTF-8 octet"},
    {"? [a]\n: b\n", "x.yaml:1: expected a plain key"},
    {"log: &a {level: info}\n", "x.yaml:1: log: anchors (&name) are not supported"},
    {"log: {}\ncache: *a\n", "x.yaml:2: cache: aliases (*name) are not supported"},
    {"cache: !!map {}\n", "x.yaml:1: cache: tags (!tag) are not supported"},
    {"log:\n  level: !!str info\n", "x.yaml:2: log.level: tags (!tag) are not supported"},
    /* keys */
    {"listn: []\n", "x.yaml:1: listn: unknown key"},
    {"cache:\n  memry_size: 1\n", "x.yaml:2: cache.memry_size: unknown key"},
    {L "origins:\n- name: o\n  endpiont: http://h\n", "x.yaml:4: origins[0].endpiont: unknown key"},
    {"log:\n  \"a\\tb\": 1\n", "x.yaml:2: log.a?b: unknown key"},
    {"log: {}\nlog: {}\n", "x.yaml:2: log: duplicate key"},
    {"log:\n  level: info\n  level: debug\n", "x.yaml:3: log.level: duplicate key"},
    {L O_HEAD "  bucket: b\n  credentials: {source: env, source: env}\n",
     "x.yaml:6: origins[0].credentials.source: duplicate key"},
    /* types */
    {"cache: [1]\n", "x.yaml:1: cache: expected a mapping of keys"},
    {"listen:\n  a: b\n", "x.yaml:2: listen: expected a list of host:port addresses"},
    {"listen: :80\n", "x.yaml:1: listen: expected a list of host:port addresses"},
    {"origins: {}\n", "x.yaml:1: origins: expected a list of origins"},
    {"origins: [a]\n", "x.yaml:1: origins[0]: expected a mapping of keys"},
    {"distributions: [[]]\n", "x.yaml:1: distributions[0]: expected a mapping of keys"},
    {L O_HEAD "  region: [a]\n", "x.yaml:5: origins[0].region: expected a string"},
    {L O_HEAD "  region:\n", "x.yaml:5: origins[0].region: expected a string"},
    {"log:\n  error_log: \"a\\0b\"\n",
     "x.yaml:2: log.error_log: expected a string (without NUL bytes)"},
    {L O_HEAD "  tls_verify: yes\n", "x.yaml:5: origins[0].tls_verify: expected true or false"},
    {L O_HEAD "  tls_verify: \"true\"\n",
     "x.yaml:5: origins[0].tls_verify: expected true or false"},
    {"listen: [[[[[[[[:80]]]]]]]]\n",
     "x.yaml:1: listen[0]: expected host:port, or a mapping with address and tls"},
    /* lists */
    {"listen: []\n", "x.yaml:1: listen: expected at least one address"},
    {"origins: []\n", "x.yaml:1: origins: expected at least one origin"},
    {"distributions: []\n", "x.yaml:1: distributions: expected at least one distribution"},
    {"distributions:\n- name: d\n  hosts: []\n",
     "x.yaml:3: distributions[0].hosts: expected at least one host name"},
    /* listen */
    {"listen: [\"1.2.3.4\"]\n", "x.yaml:1: listen[0]: expected host:port, [IPv6]:port or :port"},
    {"listen:\n  - \"::1:80\"\n", "x.yaml:2: listen[0]: expected host:port, [IPv6]:port or :port"},
    {"listen:\n  - 127.0.0.1:0\n",
     "x.yaml:2: listen[0]: expected host:port with a port from 1 to 65535"},
    {"listen:\n  - \":8080\"\n  - 127.0.0.1:65536\n",
     "x.yaml:3: listen[1]: expected host:port with a port from 1 to 65535"},
    {"listen: [\"[::1]:8080\", \"[::1]:8080\"]\n" O D,
     "x.yaml:1: listen[1]: \"[::1]:8080\" is already listed"},
    {O D, "x.yaml:1: listen: at least one address required"},
    /* log */
    {"log:\n  level: loud\n", "x.yaml:2: log.level: expected error, warn, info or debug"},
    {"log:\n  access_log: \"\"\n", "x.yaml:2: log.access_log: expected stderr, off or a file path"},
    /* sizes */
    {"cache:\n  memory_size: lots\n", "x.yaml:2: cache.memory_size: expected a size like 256MiB"},
    {"cache:\n  memory_size: -1\n", "x.yaml:2: cache.memory_size: expected a size like 256MiB"},
    {"cache:\n  memory_size: 1.5g\n", "x.yaml:2: cache.memory_size: expected a size like 256MiB"},
    {"cache:\n  memory_size: 17179869184GiB\n",
     "x.yaml:2: cache.memory_size: expected a size from 1MiB to 16TiB"},
    {"cache:\n  memory_size: 99999999999999999999999\n",
     "x.yaml:2: cache.memory_size: expected a size from 1MiB to 16TiB"},
    {"cache:\n  memory_size: 17TiB\n",
     "x.yaml:2: cache.memory_size: expected a size from 1MiB to 16TiB"},
    {"cache:\n  memory_size: 1k\n",
     "x.yaml:2: cache.memory_size: expected a size from 1MiB to 16TiB"},
    {"cache:\n  disk_path: /c\n  disk_size: 512KiB\n",
     "x.yaml:3: cache.disk_size: expected a size from 1MiB to 1024TiB"},
    {"cache:\n  disk_path: /c\n  disk_size: 2048TiB\n",
     "x.yaml:3: cache.disk_size: expected a size from 1MiB to 1024TiB"},
    {"cache:\n  disk_path: /c\n  disk_threads: 65\n",
     "x.yaml:3: cache.disk_threads: expected a number from 1 to 64"},
    {"cache:\n  disk_path: /c\n  disk_fsync: yes\n",
     "x.yaml:3: cache.disk_fsync: expected true or false"},
    {"cache:\n  block_size: 32KiB\n",
     "x.yaml:2: cache.block_size: expected a size from 64KiB to 64MiB"},
    {"cache:\n  block_size: 128MiB\n",
     "x.yaml:2: cache.block_size: expected a size from 64KiB to 64MiB"},
    {"cache:\n  block_size: big\n", "x.yaml:2: cache.block_size: expected a size like 256MiB"},
    {"cache:\n  readahead_blocks: 1025\n",
     "x.yaml:2: cache.readahead_blocks: expected a number from 0 to 1024"},
    {"cache:\n  readahead_blocks: -1\n", "x.yaml:2: cache.readahead_blocks: expected a number"},
    {"cache:\n  orphan_fill_max: lots\n",
     "x.yaml:2: cache.orphan_fill_max: expected a size like 256MiB"},
    {"cache:\n  memory_max_object_size: much\n",
     "x.yaml:2: cache.memory_max_object_size: expected a size like 256MiB"},
    {"cache:\n  memory_max_object_size: 0\n",
     "x.yaml:2: cache.memory_max_object_size: expected a size from 1 to 16TiB"},
    {"cache:\n  reader_timeout: 0s\n",
     "x.yaml:2: cache.reader_timeout: expected a duration from 1ms to 30d"},
    {"cache:\n  reader_timeout: soon\n",
     "x.yaml:2: cache.reader_timeout: expected a duration like 30s"},
    {"limits:\n  max_ranges: 0\n", "x.yaml:2: limits.max_ranges: expected a number from 1 to 1000"},
    {"limits:\n  max_ranges: 1001\n",
     "x.yaml:2: limits.max_ranges: expected a number from 1 to 1000"},
    {"cache:\n  disk_path: \"\"\n", "x.yaml:2: cache.disk_path: expected a directory path"},
    {"cache:\n  disk_path: [a]\n", "x.yaml:2: cache.disk_path: expected a string"},
    {L "cache:\n  disk_size: 1GiB\n  disk_threads: 4\n" O D,
     "x.yaml:3: cache.disk_size: needs cache.disk_path"},
    {L "cache:\n  disk_fsync: false\n" O D, "x.yaml:3: cache.disk_fsync: needs cache.disk_path"},
    {"limits:\n  max_head_bytes: 4g\n",
     "x.yaml:2: limits.max_head_bytes: expected a size from 256 to 64MiB"},
    /* numbers */
    {"limits:\n  max_headers: 0\n",
     "x.yaml:2: limits.max_headers: expected a number from 1 to 10000"},
    {"limits:\n  max_headers: -3\n", "x.yaml:2: limits.max_headers: expected a number"},
    {"limits:\n  max_headers: 1.5\n", "x.yaml:2: limits.max_headers: expected a number"},
    {"limits:\n  max_connections: 4294967296\n",
     "x.yaml:2: limits.max_connections: expected a number from 1 to 4294967295"},
    {"limits:\n  max_connections: 99999999999999999999999\n",
     "x.yaml:2: limits.max_connections: expected a number from 1 to 4294967295"},
    {"workers: 2000\n", "x.yaml:1: workers: expected a number from 0 to 1024"},
    /* durations */
    {"limits:\n  client_idle_timeout: 5x\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration like 30s"},
    {"limits:\n  client_idle_timeout: -5s\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration like 30s"},
    {"limits:\n  client_idle_timeout: 0s\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration from 1ms to 30d"},
    {"limits:\n  client_idle_timeout: 31d\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration from 1ms to 30d"},
    {"limits:\n  client_idle_timeout: 99999999999999999999d\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration from 1ms to 30d"},
    {"limits:\n  client_idle_timeout: 213503982335d\n",
     "x.yaml:2: limits.client_idle_timeout: expected a duration from 1ms to 30d"},
    {"distributions:\n- default_ttl: 1500ms\n",
     "x.yaml:2: distributions[0].default_ttl: expected a duration in whole seconds"},
    {L O "distributions:\n- name: d\n  origin: o\n  min_ttl: 2h\n  default_ttl: 1h\n",
     "x.yaml:7: distributions[0]: expected min_ttl <= default_ttl <= max_ttl (7200, 3600, 31536000 seconds)"},
    {"distributions:\n- negative_ttl_404: 2d\n",
     "x.yaml:2: distributions[0].negative_ttl_404: expected a duration from 0ms to 1d"},
    /* origins */
    {L "origins:\n- name: \"a b\"\n",
     "x.yaml:3: origins[0].name: expected a name of 1-64 letters, digits, '.', '-' or '_'"},
    {L "origins:\n- bucket: b\n  endpoint: http://h\n" D,
     "x.yaml:3: origins[0].name: missing, expected a name"},
    {L "origins:\n- name: o\n  bucket: b\n" D,
     "x.yaml:3: origins[0].endpoint: missing, expected http(s)://host[:port]"},
    {L "origins:\n- name: o\n  endpoint: http://h:9000/bucket\n",
     "x.yaml:4: origins[0].endpoint: expected scheme://host[:port] without a path (the bucket "
     "goes under bucket:)"},
    {L "origins:\n- name: o\n  endpoint: ftp://h\n",
     "x.yaml:4: origins[0].endpoint: expected a URL starting with http:// or https://"},
    {L "origins:\n- name: o\n  endpoint: h.example\n",
     "x.yaml:4: origins[0].endpoint: expected a URL starting with http:// or https://"},
    {L "origins:\n- name: o\n  endpoint: http://h:0\n",
     "x.yaml:4: origins[0].endpoint: expected a port from 1 to 65535 in the URL"},
    {L "origins:\n- name: o\n  endpoint: http://h:65536\n",
     "x.yaml:4: origins[0].endpoint: expected a port from 1 to 65535 in the URL"},
    {L "origins:\n- name: o\n  endpoint: http://h:x\n",
     "x.yaml:4: origins[0].endpoint: expected a port number after ':' in the URL"},
    {L "origins:\n- name: o\n  endpoint: http://u:p@h\n",
     "x.yaml:4: origins[0].endpoint: expected a URL without user info (credentials go under "
     "credentials:)"},
    {L "origins:\n- name: o\n  endpoint: http://h/?a\n",
     "x.yaml:4: origins[0].endpoint: expected a URL without query or fragment"},
    {L "origins:\n- name: o\n  endpoint: \"http://[::1/\"\n",
     "x.yaml:4: origins[0].endpoint: expected an IPv6 address between [ and ]"},
    {L "origins:\n- name: o\n  endpoint: http://a..b\n",
     "x.yaml:4: origins[0].endpoint: expected a host name in the URL"},
    {L O_HEAD D, "x.yaml:3: origins[0].bucket: missing, path addressing needs a bucket"},
    {L O_HEAD "  bucket: \"a/b\"\n",
     "x.yaml:5: origins[0].bucket: expected a bucket name of letters, digits, '.', '-' or '_'"},
    {L O_HEAD "  region: \"eu west\"\n",
     "x.yaml:5: origins[0].region: expected a region like eu-west-1"},
    {L O_HEAD "  addressing: sideways\n",
     "x.yaml:5: origins[0].addressing: expected path or virtual"},
    {L "origins:\n- name: o\n  endpoint: http://127.0.0.1:9000\n  bucket: b\n"
       "  addressing: virtual\n" D,
     "x.yaml:3: origins[0].addressing: virtual needs a host name in the endpoint, not an IP "
     "address; use path"},
    {L O_HEAD "  bucket: My_Bucket\n  addressing: virtual\n" D,
     "x.yaml:3: origins[0].bucket: virtual addressing needs a lowercase DNS-compatible bucket "
     "name; use path"},
    {L O_HEAD "  bucket: b\n  credentials: {source: magic}\n",
     "x.yaml:6: origins[0].credentials.source: expected env, static or anonymous"},
    {L O_HEAD "  bucket: b\n  credentials: static\n",
     "x.yaml:6: origins[0].credentials: expected a mapping of keys"},
    {L O_HEAD "  bucket: b\n  credentials: {source: static}\n" D,
     "x.yaml:3: origins[0].credentials.access_key_id: missing, source static needs it"},
    {L O_HEAD "  bucket: b\n  credentials: {source: static, access_key_id: K}\n" D,
     "x.yaml:3: origins[0].credentials.secret_access_key: missing, source static needs it"},
    {L O_HEAD "  bucket: b\n  credentials: {access_key_id: K, secret_access_key: S}\n" D,
     "x.yaml:3: origins[0].credentials.source: keys are given, expected static"},
    {L O_HEAD "  bucket: b\n  credentials: {source: static, access_key_id: \"A K\"}\n",
     "x.yaml:6: origins[0].credentials.access_key_id: expected a non-empty string of visible "
     "ASCII characters"},
    {L O_HEAD "  bucket: b\n  max_connections: 0\n",
     "x.yaml:6: origins[0].max_connections: expected a number from 1 to 4294967295"},
    {L O_HEAD "  bucket: b\n- name: o\n  endpoint: http://h2\n  bucket: c\n" D,
     "x.yaml:6: origins[1].name: \"o\" is already the name of origins[0]"},
    /* distributions */
    {"listen: [\":80\"]\norigins: [{name: o, endpoint: \"http://h\", bucket: b}]\n"
     "distributions:\n- {name: a, origin: o, hosts: [a]}\n- name: b\n  hosts: [b]\n"
     "  origin: foo\n",
     "x.yaml:7: distributions[1].origin: unknown origin \"foo\""},
    {L O "distributions:\n- name: d\n  hosts: [a]\n",
     "x.yaml:7: distributions[0].origin: missing, expected an origin name"},
    {L O "distributions:\n- origin: o\n",
     "x.yaml:7: distributions[0].name: missing, expected a name"},
    {L O "distributions:\n- name: d\n  origin: o\n  hosts: [a]\n- name: d\n  origin: o\n"
         "  hosts: [b]\n",
     "x.yaml:10: distributions[1].name: \"d\" is already the name of distributions[0]"},
    {L O "distributions:\n- name: d\n  origin: o\n  hosts: [a.example, b.example]\n"
         "- name: e\n  origin: o\n  hosts:\n  - c.example\n  - B.Example\n",
     "x.yaml:14: distributions[1].hosts[1]: \"b.example\" is already served by distribution "
     "\"d\""},
    {L O "distributions:\n- name: d\n  origin: o\n- name: e\n  origin: o\n",
     "x.yaml:9: distributions[1].hosts[0]: \"*\" is already served by distribution \"d\""},
    {L O "distributions:\n- name: d\n  origin: o\n  hosts:\n  - a.example\n  - A.EXAMPLE\n",
     "x.yaml:11: distributions[0].hosts[1]: \"a.example\" is listed twice"},
    {"distributions:\n- hosts: [\"a b\"]\n",
     "x.yaml:2: distributions[0].hosts[0]: expected a host name, \"*.domain\" or \"*\" (no port)"},
    {"distributions:\n- hosts: [\"example.com:8080\"]\n",
     "x.yaml:2: distributions[0].hosts[0]: expected a host name, \"*.domain\" or \"*\" (no port)"},
    {"distributions:\n- hosts: [\"*example.com\"]\n",
     "x.yaml:2: distributions[0].hosts[0]: expected a host name, \"*.domain\" or \"*\" (no port)"},
    {"distributions:\n- path_prefix: img\n",
     "x.yaml:2: distributions[0].path_prefix: expected a URL path starting with /"},
    {"distributions:\n- path_prefix: \"/a b\"\n",
     "x.yaml:2: distributions[0].path_prefix: expected a URL path starting with / (visible "
     "ASCII, no ? or #)"},
    {"distributions:\n- key_prefix: \"a\\nb\"\n",
     "x.yaml:2: distributions[0].key_prefix: expected a key prefix without control characters"},
    {"distributions:\n- query_string: some\n",
     "x.yaml:2: distributions[0].query_string: expected ignore, all or allow"},
    {L O "distributions:\n- name: d\n  origin: o\n  query_string: allow\n",
     "x.yaml:7: distributions[0].query_keys: expected at least one parameter name with query_string: allow"},
    {L O "distributions:\n- name: d\n  origin: o\n  query_keys: [v]\n",
     "x.yaml:7: distributions[0].query_keys: only with query_string: allow"},
    {L O "distributions:\n- name: d\n  origin: o\n  query_string: allow\n  query_keys: [\"a=b\"]\n",
     "x.yaml:10: distributions[0].query_keys[0]: expected a query parameter name without '&', '=', '#' or spaces"},
    {"distributions:\n- pass_amz_meta: 1\n",
     "x.yaml:2: distributions[0].pass_amz_meta: expected true or false"},
    /* allowed methods: CloudFront's three sets only */
    {"distributions:\n- allowed_methods: [GET]\n",
     "x.yaml:2: distributions[0].allowed_methods: expected [GET, HEAD], [GET, HEAD, OPTIONS] "
     "or [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]"},
    {"distributions:\n- allowed_methods: [GET, HEAD, PUT]\n",
     "x.yaml:2: distributions[0].allowed_methods: expected [GET, HEAD], [GET, HEAD, OPTIONS] "
     "or [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]"},
    {"distributions:\n- allowed_methods: GET\n",
     "x.yaml:2: distributions[0].allowed_methods: expected [GET, HEAD], [GET, HEAD, OPTIONS] "
     "or [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]"},
    {"distributions:\n- allowed_methods: []\n",
     "x.yaml:2: distributions[0].allowed_methods: expected at least one method name"},
    {"distributions:\n- allowed_methods: [GET, get]\n",
     "x.yaml:2: distributions[0].allowed_methods[1]: expected GET, HEAD, OPTIONS, PUT, POST, "
     "PATCH or DELETE"},
    {"distributions:\n- allowed_methods: [GET, HEAD, GET]\n",
     "x.yaml:2: distributions[0].allowed_methods[2]: GET given twice"},
    {"distributions:\n- allowed_methods: [GET, TRACE]\n",
     "x.yaml:2: distributions[0].allowed_methods[1]: expected GET, HEAD, OPTIONS, PUT, POST, "
     "PATCH or DELETE"},
    {"distributions:\n- allowed_methods: [[GET]]\n",
     "x.yaml:2: distributions[0].allowed_methods[0]: expected a method name"},
    {"distributions:\n- max_request_body: lots\n",
     "x.yaml:2: distributions[0].max_request_body: expected a size like 256MiB"},
    {"distributions:\n- max_request_body: -1\n",
     "x.yaml:2: distributions[0].max_request_body: expected a size like 256MiB"},
    /* plain origins */
    {L O_HEAD "  type: ftp\n", "x.yaml:5: origins[0].type: expected s3 or http"},
    {L O_HEAD "  type: http\n  bucket: b\n" D,
     "x.yaml:6: origins[0].bucket: only for type s3 origins, this one is type http"},
    {L O_HEAD "  region: eu-west-1\n  type: http\n" D,
     "x.yaml:5: origins[0].region: only for type s3 origins, this one is type http"},
    {L O_HEAD "  type: http\n  addressing: path\n" D,
     "x.yaml:6: origins[0].addressing: only for type s3 origins, this one is type http"},
    {L O_HEAD "  type: http\n  credentials: {source: anonymous}\n" D,
     "x.yaml:6: origins[0].credentials: only for type s3 origins, this one is type http"},
    {L O_HEAD "  type: http\n  unsigned_payload: true\n" D,
     "x.yaml:6: origins[0].unsigned_payload: only for type s3 origins, this one is type http"},
    {L "origins:\n- name: o\n  type: http\n  endpoint: http://h.example:9000/app\n" D,
     "x.yaml:5: origins[0].endpoint: expected scheme://host[:port] without a path (the bucket "
     "goes under bucket:)"},
    {L O, "x.yaml:1: distributions: at least one distribution required"},
    /* TLS listeners (files made by tls_files_make) */
    {"listen:\n- {address: \":443\", tsl: {}}\n", "x.yaml:2: listen[0].tsl: unknown key"},
    {"listen:\n- address: 8443\n",
     "x.yaml:2: listen[0].address: expected host:port, [IPv6]:port or :port"},
    {"listen:\n- tls: {certificates: [{cert: a.crt, key: a.key}]}\n" O D,
     "x.yaml:2: listen[0].address: missing, expected host:port"},
    {"listen:\n- address: \":443\"\n  tls: []\n",
     "x.yaml:3: listen[0].tls: expected a mapping of keys"},
    {"listen:\n- address: \":443\"\n  tls: {}\n  tls: {}\n",
     "x.yaml:4: listen[0].tls: duplicate key"},
    {"listen:\n- address: \":443\"\n  tls:\n    protocols: [TLSv1.3]\n" O D,
     "x.yaml:4: listen[0].tls.certificates: missing, expected at least one certificate with its "
     "key"},
    {"listen:\n- address: \":443\"\n  tls:\n    certificates: []\n",
     "x.yaml:4: listen[0].tls.certificates: expected at least one certificate"},
    {"listen:\n- address: \":443\"\n  tls:\n    certificates: [a.crt]\n",
     "x.yaml:4: listen[0].tls.certificates[0]: expected a mapping of keys (cert, key, ocsp)"},
    {T "      crt: a.crt\n", "x.yaml:7: listen[0].tls.certificates[0].crt: unknown key"},
    {T "    sesion_tickets: true\n", "x.yaml:7: listen[0].tls.sesion_tickets: unknown key"},
    {"listen:\n- address: \":443\"\n  tls:\n    certificates:\n    - cert: a.crt\n" O D,
     "x.yaml:5: listen[0].tls.certificates[0].key: missing, expected a PEM private key file"},
    {"listen:\n- address: \":443\"\n  tls:\n    certificates:\n    - key: a.key\n" O D,
     "x.yaml:5: listen[0].tls.certificates[0].cert: missing, expected a PEM certificate file"},
    {T_CERT("nosuch.pem", "a.key") O D,
     "x.yaml:5: listen[0].tls.certificates[0].cert: cannot read nosuch.pem: No such file or "
     "directory"},
    {T_CERT("\".\"", "a.key") O D,
     "x.yaml:5: listen[0].tls.certificates[0].cert: cannot read .: not a regular file"},
    {T_CERT("junk.pem", "a.key") O D,
     "x.yaml:5: listen[0].tls.certificates[0].cert: expected a PEM certificate in junk.pem"},
    {T_CERT("a.key", "a.key") O D,
     "x.yaml:5: listen[0].tls.certificates[0].cert: expected a PEM certificate in a.key"},
    {T_CERT("a.crt", "nosuch.key") O D,
     "x.yaml:6: listen[0].tls.certificates[0].key: cannot read nosuch.key: No such file or "
     "directory"},
    {T_CERT("a.crt", "a.crt") O D,
     "x.yaml:6: listen[0].tls.certificates[0].key: expected a PEM private key in a.crt"},
    {T_CERT("a.crt", "b.key") O D,
     "x.yaml:6: listen[0].tls.certificates[0].key: the key in b.key does not match the "
     "certificate in a.crt"},
    {T_CERT("a.crt", "enc.key") O D,
     "x.yaml:6: listen[0].tls.certificates[0].key: the key in enc.key is encrypted; expected an "
     "unencrypted key (readable by s3edge's user only)"},
    {T "    - {cert: a-chain.crt, key: b.key}\n" O D,
     "x.yaml:7: listen[0].tls.certificates[1].key: the key in b.key does not match the "
     "certificate in a-chain.crt"},
    {T_CERT("a-chain.crt", "a.key") "      ocsp: junk.pem\n" O D,
     "x.yaml:7: listen[0].tls.certificates[0].ocsp: expected a DER OCSP response in junk.pem"},
    {T_CERT("a-chain.crt", "a.key") "      ocsp: nosuch.ocsp\n" O D,
     "x.yaml:7: listen[0].tls.certificates[0].ocsp: cannot read nosuch.ocsp: No such file or "
     "directory"},
    {T_CERT("a-chain.crt", "a.key") "      ocsp: other.ocsp\n" O D,
     "x.yaml:7: listen[0].tls.certificates[0].ocsp: the OCSP response in other.ocsp is not for "
     "the certificate in a-chain.crt"},
    {T_CERT("a-chain.crt", "a.key") "      ocsp: revoked.ocsp\n" O D,
     "x.yaml:7: listen[0].tls.certificates[0].ocsp: the OCSP response in revoked.ocsp says the "
     "certificate in a-chain.crt is revoked"},
    {T_CERT("a-chain.crt", "a.key") "      ocsp: trylater.ocsp\n" O D,
     "x.yaml:7: listen[0].tls.certificates[0].ocsp: the OCSP response in trylater.ocsp has "
     "status trylater, expected successful"},
    {T "    protocols: [TLSv1.1, TLSv1.3]\n",
     "x.yaml:7: listen[0].tls.protocols[0]: expected TLSv1.2 or TLSv1.3"},
    {T "    protocols: [SSLv3]\n",
     "x.yaml:7: listen[0].tls.protocols[0]: expected TLSv1.2 or TLSv1.3"},
    {T "    protocols:\n    - TLSv1.3\n    - TLSv1.3\n",
     "x.yaml:9: listen[0].tls.protocols[1]: TLSv1.3 is listed twice"},
    {T "    protocols: []\n", "x.yaml:7: listen[0].tls.protocols: expected at least one version"},
    {T "    protocols: TLSv1.3\n",
     "x.yaml:7: listen[0].tls.protocols: expected a list of TLS versions"},
    {T "    alpn: [h3]\n", "x.yaml:7: listen[0].tls.alpn[0]: expected h2 or http/1.1"},
    {T "    alpn: [h2, h2]\n", "x.yaml:7: listen[0].tls.alpn[1]: h2 is listed twice"},
    {T "    ciphers: NOPE\n" O D,
     "x.yaml:7: listen[0].tls.ciphers: OpenSSL knows no TLS 1.2 cipher in \"NOPE\""},
    {T "    ciphers: \"ECDHE-RSA-AES128-GCM-SHA256 AES\"\n",
     "x.yaml:7: listen[0].tls.ciphers: expected an OpenSSL cipher list without spaces or control "
     "characters"},
    {T "    protocols: [TLSv1.3]\n    ciphers: ECDHE-RSA-AES128-GCM-SHA256\n" O D,
     "x.yaml:8: listen[0].tls.ciphers: set for TLSv1.2, which protocols leaves out"},
    {T "    protocols: [TLSv1.2]\n    ciphersuites: TLS_AES_128_GCM_SHA256\n" O D,
     "x.yaml:8: listen[0].tls.ciphersuites: set for TLSv1.3, which protocols leaves out"},
    {T "    ciphersuites: \"TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256\"\n",
     "x.yaml:7: listen[0].tls.ciphersuites: expected TLS 1.3 suites separated by ':' "
     "(TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, "
     "TLS_AES_128_CCM_SHA256, TLS_AES_128_CCM_8_SHA256)"},
    {T "    session_tickets: off\n",
     "x.yaml:7: listen[0].tls.session_tickets: expected true or false"},
    {T "    session_tickets: false\n    ticket_key_file: tk2.key\n" O D,
     "x.yaml:8: listen[0].tls.ticket_key_file: given, but session_tickets is false"},
    {T "    ticket_key_file: tk50.key\n" O D,
     "x.yaml:7: listen[0].tls.ticket_key_file: expected 80 bytes per key in tk50.key (made with "
     "openssl rand 80), found 50 bytes"},
    {T "    ticket_key_file: tk17.key\n" O D,
     "x.yaml:7: listen[0].tls.ticket_key_file: expected at most 16 keys of 80 bytes in tk17.key"},
    {T "    ticket_key_file: tkdup.key\n" O D,
     "x.yaml:7: listen[0].tls.ticket_key_file: keys 1 and 2 in tkdup.key have the same name "
     "(their first 16 bytes)"},
    {T "    ticket_key_file: nosuch.key\n" O D,
     "x.yaml:7: listen[0].tls.ticket_key_file: cannot read nosuch.key: No such file or directory"},
    {T "    ticket_key_rotation: 30s\n",
     "x.yaml:7: listen[0].tls.ticket_key_rotation: expected a duration from 1m to 7d"},
    {T "    ticket_key_rotation: 8d\n",
     "x.yaml:7: listen[0].tls.ticket_key_rotation: expected a duration from 1m to 7d"},
    {T "    session_cache: -1\n", "x.yaml:7: listen[0].tls.session_cache: expected a number"},
    {T "    handshake_timeout: 0s\n",
     "x.yaml:7: listen[0].tls.handshake_timeout: expected a duration from 1ms to 10m"},
    {T "    ktls: maybe\n", "x.yaml:7: listen[0].tls.ktls: expected auto, on or off"},
    {T "- address: 127.0.0.1:8443\n" O D,
     "x.yaml:7: listen[1]: \"127.0.0.1:8443\" is already listed"},
    /* node, admin, redis, heartbeat */
    {L O D "node: [a]\n", "x.yaml:9: node: expected a mapping of keys"},
    {L O D "node:\n  name: a\n", "x.yaml:10: node.name: unknown key"},
    {L O D "node:\n  id: \"a b\"\n",
     "x.yaml:10: node.id: expected a name of 1-100 letters, digits, '.', '-' or '_'"},
    {L O D "node:\n  id: \"\"\n",
     "x.yaml:10: node.id: expected a name of 1-100 letters, digits, '.', '-' or '_'"},
    {L O D "node:\n  pop: \"a\\tb\"\n",
     "x.yaml:10: node.pop: expected a label of at most 64 visible ASCII characters"},
    {L O D "node:\n  state_dir: \"\"\n", "x.yaml:10: node.state_dir: expected a directory path"},
    {L O D "node:\n  state_dir: [x]\n", "x.yaml:10: node.state_dir: expected a string"},
    {L O D "admin:\n  listen: 127.0.0.1\n",
     "x.yaml:10: admin.listen: expected host:port, [IPv6]:port or :port"},
    {L O D "admin:\n  listen: 127.0.0.1:0\n",
     "x.yaml:10: admin.listen: expected host:port with a port from 1 to 65535"},
    {L O D "admin:\n  listen: 127.0.0.1:9090\n",
     "x.yaml:10: admin.tokens: missing, expected tokens or a token_file (the admin API takes "
     "bearer tokens only)"},
    {L O D "admin:\n  tokens: [abc]\n",
     "x.yaml:10: admin.listen: missing, expected host:port (tokens and tls are for the admin "
     "listener)"},
    {L O D "admin:\n  listen: 127.0.0.1:8080\n  tokens: [abc]\n",
     "x.yaml:10: admin.listen: \"127.0.0.1:8080\" is already listen[0]"},
    {L O D "admin:\n  listen: :9090\n  tokens: []\n", "x.yaml:11: admin.tokens: expected at "
                                                      "least one token"},
    {L O D "admin:\n  listen: :9090\n  tokens: abc\n",
     "x.yaml:11: admin.tokens: expected a list of tokens"},
    {L O D "admin:\n  listen: :9090\n  tokens: [\"a b\"]\n",
     "x.yaml:11: admin.tokens[0]: expected a token of 1-512 visible ASCII characters"},
    {L O D "admin:\n  listen: :9090\n  tokens: [\"\"]\n",
     "x.yaml:11: admin.tokens[0]: expected a token of 1-512 visible ASCII characters"},
    {L O D "admin:\n  listen: :9090\n  tokens: [[a]]\n",
     "x.yaml:11: admin.tokens[0]: expected a token string"},
    {L O D "admin:\n  listen: :9090\n  token_file: \"\"\n",
     "x.yaml:11: admin.token_file: expected a file path"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {cert: a.crt}\n",
     "x.yaml:12: admin.tls.key: missing, expected a PEM private key file"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {key: a.key}\n",
     "x.yaml:12: admin.tls.cert: missing, expected a PEM certificate file"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {cert: a.crt, key: b.key}\n",
     "x.yaml:12: admin.tls.key: the key in b.key does not match the certificate in a.crt"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {cert: junk.pem, key: a.key}\n",
     "x.yaml:12: admin.tls.cert: expected a PEM certificate in junk.pem"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {cert: a.crt, key: nosuch.key}\n",
     "x.yaml:12: admin.tls.key: cannot read nosuch.key: No such file or directory"},
    {L O D "admin:\n  listen: :9090\n  tokens: [a]\n  tls: {cert: a.crt, key: a.key, x: 1}\n",
     "x.yaml:12: admin.tls.x: unknown key"},
    {L O D "redis: {}\n",
     "x.yaml:9: redis.url: missing, expected redis://HOST:PORT or a sentinel mapping"},
    {L O D "redis:\n  url: 127.0.0.1:6379\n",
     "x.yaml:10: redis.url: expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]"},
    {L O D "redis:\n  url: redis://\n",
     "x.yaml:10: redis.url: expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]"},
    {L O D "redis:\n  url: redis://h:99999\n",
     "x.yaml:10: redis.url: expected redis://HOST:PORT with a port from 1 to 65535"},
    {L O D "redis:\n  url: redis://h:6379/x\n",
     "x.yaml:10: redis.url: expected a database number from 0 to 100000 after the /"},
    {L O D "redis:\n  url: \"redis://h :6379\"\n",
     "x.yaml:10: redis.url: expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]"},
    {L O D "redis:\n  url: redis://h\n  password: \"\"\n",
     "x.yaml:11: redis.password: expected a non-empty string of visible ASCII characters"},
    {L O D "redis:\n  url: redis://h\n  username: \"a b\"\n",
     "x.yaml:11: redis.username: expected a non-empty string of visible ASCII characters"},
    {L O D "redis:\n  url: redis://h\n  stream_maxlen: 10\n",
     "x.yaml:11: redis.stream_maxlen: expected a number from 100 to 1000000000"},
    {L O D "redis:\n  sentinel: {master: m}\n",
     "x.yaml:10: redis.sentinel.addrs: missing, expected Sentinel host:port addresses"},
    {L O D "redis:\n  sentinel: {addrs: [\"h:1\"]}\n",
     "x.yaml:10: redis.sentinel.master: missing, expected the master's name"},
    {L O D "redis:\n  sentinel: {master: \"a b\", addrs: [\"h:1\"]}\n",
     "x.yaml:10: redis.sentinel.master: expected a name of 1-64 letters, digits, '.', '-' or "
     "'_'"},
    {L O D "redis:\n  sentinel: {master: m, addrs: []}\n",
     "x.yaml:10: redis.sentinel.addrs: expected at least one Sentinel address"},
    {L O D "redis:\n  sentinel: {master: m, addrs: [\"h\"]}\n",
     "x.yaml:10: redis.sentinel.addrs[0]: expected host:port, [IPv6]:port or :port"},
    {L O D "redis:\n  sentinel: {master: m, addrs: [\":26379\"]}\n",
     "x.yaml:10: redis.sentinel.addrs[0]: expected host:port with a host"},
    {L O D "redis:\n  url: redis://h\n  sentinel: {master: m, addrs: [\"h:1\"]}\n",
     "x.yaml:10: redis.url: give url or sentinel, not both (credentials go under username "
     "and password)"},
    {L O D "heartbeat: 5ms\n", "x.yaml:9: heartbeat: expected a duration from 10ms to 1m"},
    {L O D "heartbeat: 2m\n", "x.yaml:9: heartbeat: expected a duration from 10ms to 1m"},
    {L O D "heartbeat: soon\n", "x.yaml:9: heartbeat: expected a duration like 30s"},
};

START_TEST(bad_config)
{
    const struct bad_case *bc = &bad_cases[_i];
    struct conf *c = load(bc->yaml);

    ck_assert_msg(c == NULL, "case %d loaded: %s", _i, bc->yaml);
    ck_assert_msg(strcmp(err, bc->msg) == 0, "case %d:\n got  %s\n want %s", _i, err, bc->msg);
}
END_TEST

START_TEST(bad_deep_nesting)
{
    /* nesting far beyond the schema is refused at its first level */
    size_t n = 100000, i;
    char *y = malloc(n + 32);

    ck_assert_ptr_nonnull(y);
    strcpy(y, "listen: ");
    for (i = 0; i < n; i++)
        y[8 + i] = '[';
    y[8 + n] = '\0';
    ck_assert_ptr_null(load(y));
    ck_assert_str_eq(err,
                     "x.yaml:1: listen[0]: expected host:port, or a mapping with address and tls");
    free(y);
}
END_TEST

START_TEST(bad_long_key_is_cut)
{
    char y[256];

    snprintf(y, sizeof y, "cache:\n  %0100d: 1\n", 7);
    ck_assert_ptr_null(load(y));
    ck_assert_str_eq(err, "x.yaml:2: cache.0000000000000000000000000000000000000000000000000000"
                          "000000000000...: unknown key");
}
END_TEST

START_TEST(bad_too_large)
{
    size_t n = CONF_MAX_FILE_BYTES + 1;
    char *y = malloc(n);
    struct conf *c = conf_new();

    ck_assert_ptr_nonnull(y);
    memset(y, '#', n);
    ck_assert_int_eq(conf_load_string(c, "big.yaml", y, n, err), -1);
    ck_assert_str_eq(err, "big.yaml: larger than 1048576 bytes");
    conf_free(c);

    /* exactly the limit is fine as far as size goes */
    c = conf_new();
    ck_assert_int_eq(conf_load_string(c, "big.yaml", y, n - 1, err), -1);
    ck_assert_str_eq(err, "big.yaml:1: empty configuration, expected a mapping of keys");
    conf_free(c);
    free(y);
}
END_TEST

/* Forty thousand hosts: duplicates are found by sorting, not n^2. */
START_TEST(many_hosts_duplicate_found)
{
    size_t n = 40000, i, len = 0, cap = n * 32 + 256;
    char *y = malloc(cap);
    struct conf *c;

    ck_assert_ptr_nonnull(y);
    len += (size_t)snprintf(y + len, cap - len, L O "distributions:\n- name: d\n  origin: o\n"
                                                  "  hosts:\n");
    for (i = 0; i < n; i++)
        len += (size_t)snprintf(y + len, cap - len, "  - h%zu.example\n", i);
    c = load_ok(y);
    ck_assert_uint_eq(c->dists[0].nhosts, n);
    ck_assert_str_eq(c->dists[0].hosts[n - 1], "h39999.example");
    conf_free(c);

    len += (size_t)snprintf(y + len, cap - len, "  - h123.example\n");
    ck_assert_ptr_null(load(y));
    ck_assert_str_eq(err, "x.yaml:40010: distributions[0].hosts[40000]: \"h123.example\" is "
                          "listed twice");
    free(y);
}
END_TEST

/* ------------------------------------------------------------ files */

START_TEST(file_missing)
{
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_load_file(c, "/nonexistent/s3edge.yaml", err), -1);
    ck_assert_str_eq(err, "/nonexistent/s3edge.yaml: cannot open: No such file or directory");
    conf_free(c);
}
END_TEST

START_TEST(file_is_directory)
{
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_load_file(c, "/", err), -1);
    ck_assert_str_eq(err, "/: cannot read: Is a directory");
    conf_free(c);
}
END_TEST

START_TEST(file_unreadable)
{
    struct conf *c = conf_new();
    char *path = tmp_file(L O D, strlen(L O D)), want[CONF_ERR_MAX];

    if (geteuid() == 0) { /* root reads anything: nothing to test */
        unlink(path);
        conf_free(c);
        return;
    }
    ck_assert_int_eq(chmod(path, 0), 0);
    ck_assert_int_eq(conf_load_file(c, path, err), -1);
    snprintf(want, sizeof want, "%s: cannot open: %s", path, strerror(EACCES));
    ck_assert_str_eq(err, want);
    unlink(path);
    conf_free(c);
}
END_TEST

START_TEST(file_empty_and_bad)
{
    struct conf *c = conf_new();
    char *path = tmp_file("", 0), want[CONF_ERR_MAX];

    ck_assert_int_eq(conf_load_file(c, path, err), -1);
    snprintf(want, sizeof want, "%s:1: empty configuration, expected a mapping of keys", path);
    ck_assert_str_eq(err, want);
    unlink(path);
    conf_free(c);

    c = conf_new();
    path = tmp_file(L "cache:\n  memory_size: 9zz\n", strlen(L "cache:\n  memory_size: 9zz\n"));
    ck_assert_int_eq(conf_load_file(c, path, err), -1);
    snprintf(want, sizeof want, "%s:3: cache.memory_size: expected a size like 256MiB", path);
    ck_assert_str_eq(err, want);
    unlink(path);
    conf_free(c);

    c = conf_new();
    path = tmp_file(L O D, strlen(L O D));
    ck_assert_msg(conf_load_file(c, path, err) == 0, "%s", err);
    ck_assert_str_eq(c->path, path);
    unlink(path);
    conf_free(c);
}
END_TEST

/* ------------------------------------------------------------ sizes, durations */

static const struct num_case {
    const char *s;
    int rc;
    uint64_t v;
} size_cases[] = {
    {"0", 0, 0},
    {"1024", 0, 1024},
    {"007", 0, 7},
    {"7b", 0, 7},
    {"64k", 0, 64 << 10},
    {"64K", 0, 64 << 10},
    {"64KB", 0, 64 << 10},
    {"64KiB", 0, 64 << 10},
    {"64kib", 0, 64 << 10},
    {"2m", 0, 2 << 20},
    {"256MiB", 0, 256u << 20},
    {"3MB", 0, 3 << 20},
    {"1g", 0, 1u << 30},
    {"1GB", 0, 1u << 30},
    {"5GiB", 0, 5ull << 30},
    {"1t", 0, 1ull << 40},
    {"3TiB", 0, 3ull << 40},
    {"18446744073709551615", 0, UINT64_MAX},
    {"16777215TiB", 0, 16777215ull << 40},
    {"18446744073709551616", EDGE_ERANGE, 0},
    {"16777216TiB", EDGE_ERANGE, 0},
    {"17179869184g", EDGE_ERANGE, 0},
    {"99999999999999999999999k", EDGE_ERANGE, 0},
    {"", EDGE_EINVAL, 0},
    {"k", EDGE_EINVAL, 0},
    {"-1", EDGE_EINVAL, 0},
    {"+1", EDGE_EINVAL, 0},
    {" 1", EDGE_EINVAL, 0},
    {"1 k", EDGE_EINVAL, 0},
    {"1.5g", EDGE_EINVAL, 0},
    {"1kk", EDGE_EINVAL, 0},
    {"1KiBs", EDGE_EINVAL, 0},
    {"1p", EDGE_EINVAL, 0},
    {"0x10", EDGE_EINVAL, 0},
    {"99999999999999999999x", EDGE_EINVAL, 0},
};

START_TEST(sizes)
{
    const struct num_case *t = &size_cases[_i];
    uint64_t v = 12345;

    ck_assert_msg(conf_parse_size(t->s, &v) == t->rc, "\"%s\"", t->s);
    if (t->rc == 0)
        ck_assert_msg(v == t->v, "\"%s\" gave %llu", t->s, (unsigned long long)v);
    else
        ck_assert_msg(v == 12345, "\"%s\" wrote its output on failure", t->s);
}
END_TEST

static const struct num_case duration_cases[] = {
    {"0", 0, 0},
    {"30", 0, 30000},
    {"30s", 0, 30000},
    {"250ms", 0, 250},
    {"5m", 0, 300000},
    {"1h", 0, 3600000},
    {"1d", 0, 86400000},
    {"2d", 0, 172800000},
    {"18446744073709551615ms", 0, UINT64_MAX},
    {"18446744073709551s", 0, 18446744073709551000ull},
    {"213503982334d", 0, 213503982334ull * 86400000},
    {"18446744073709551616ms", EDGE_ERANGE, 0},
    {"18446744073709552s", EDGE_ERANGE, 0},
    {"213503982335d", EDGE_ERANGE, 0},
    {"", EDGE_EINVAL, 0},
    {"s", EDGE_EINVAL, 0},
    {"-5s", EDGE_EINVAL, 0},
    {"5M", EDGE_EINVAL, 0},
    {"5S", EDGE_EINVAL, 0},
    {"5 s", EDGE_EINVAL, 0},
    {"5sec", EDGE_EINVAL, 0},
    {"1.5s", EDGE_EINVAL, 0},
    {"1w", EDGE_EINVAL, 0},
    {"1h30m", EDGE_EINVAL, 0},
};

START_TEST(durations)
{
    const struct num_case *t = &duration_cases[_i];
    uint64_t v = 12345;

    ck_assert_msg(conf_parse_duration_ms(t->s, &v) == t->rc, "\"%s\"", t->s);
    if (t->rc == 0)
        ck_assert_msg(v == t->v, "\"%s\" gave %llu", t->s, (unsigned long long)v);
    else
        ck_assert_msg(v == 12345, "\"%s\" wrote its output on failure", t->s);
}
END_TEST

/* ------------------------------------------------------------ addresses */

static const struct hp_case {
    const char *s;
    int rc;
    const char *host;
    uint16_t port;
} hp_cases[] = {
    {"127.0.0.1:8080", 0, "127.0.0.1", 8080},
    {"[::1]:443", 0, "::1", 443},
    {"[2001:db8::7]:1", 0, "2001:db8::7", 1},
    {":80", 0, "", 80},
    {"localhost:65535", 0, "localhost", 65535},
    {"h:65536", EDGE_ERANGE, NULL, 0},
    {"h:0", EDGE_ERANGE, NULL, 0},
    {"h:00000", EDGE_ERANGE, NULL, 0},
    {"h:99999999999999999999", EDGE_ERANGE, NULL, 0},
    {"h", EDGE_EINVAL, NULL, 0},
    {"h:", EDGE_EINVAL, NULL, 0},
    {"", EDGE_EINVAL, NULL, 0},
    {"::1:80", EDGE_EINVAL, NULL, 0},
    {"[::1]", EDGE_EINVAL, NULL, 0},
    {"[::1]:", EDGE_EINVAL, NULL, 0},
    {"[::1]80", EDGE_EINVAL, NULL, 0},
    {"[1.2.3.4]:80", EDGE_EINVAL, NULL, 0},
    {"[zz]:80", EDGE_EINVAL, NULL, 0},
    {"*:80", EDGE_EINVAL, NULL, 0},
    {"a b:80", EDGE_EINVAL, NULL, 0},
    {"h:+80", EDGE_EINVAL, NULL, 0},
    {"h:8 0", EDGE_EINVAL, NULL, 0},
    {"h:80x", EDGE_EINVAL, NULL, 0},
};

START_TEST(hostports)
{
    const struct hp_case *t = &hp_cases[_i];
    char host[64] = "unchanged";
    uint16_t port = 7;

    ck_assert_msg(conf_split_hostport(t->s, host, sizeof host, &port) == t->rc, "\"%s\"", t->s);
    if (t->rc == 0) {
        ck_assert_str_eq(host, t->host);
        ck_assert_uint_eq(port, t->port);
    } else {
        ck_assert_str_eq(host, "unchanged");
    }
}
END_TEST

START_TEST(hostport_small_buffer)
{
    char host[5];
    uint16_t port;

    ck_assert_int_eq(conf_split_hostport("hello:80", host, sizeof host, &port), EDGE_ETOOLONG);
    ck_assert_int_eq(conf_split_hostport("hell:80", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "hell");
}
END_TEST

START_TEST(add_listen)
{
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_add_listen(c, ":8080", err), 0);
    ck_assert_int_eq(conf_add_listen(c, "[::1]:8080", err), 0);
    ck_assert_int_eq(conf_add_listen(c, "8080", err), -1);
    ck_assert_str_eq(err, "listen address \"8080\": expected host:port, [IPv6]:port or :port");
    ck_assert_int_eq(conf_add_listen(c, "h:70000", err), -1);
    ck_assert_str_eq(err, "listen address \"h:70000\": expected host:port with a port from 1 to "
                          "65535");
    ck_assert_uint_eq(c->nlistens, 2);
    ck_assert_str_eq(c->listens[0].address, ":8080");
    ck_assert_uint_eq(c->listens[0].line, 0);

    /* a file's listen addresses come after the command line's */
    ck_assert_msg(conf_load_string(c, "x.yaml", L O D, strlen(L O D), err) == 0, "%s", err);
    ck_assert_uint_eq(c->nlistens, 3);
    ck_assert_str_eq(c->listens[2].address, "127.0.0.1:8080");
    ck_assert_uint_eq(c->listens[2].line, 1);
    conf_free(c);
}
END_TEST

/* ------------------------------------------------------------ origin URLs */

static const struct url_case {
    const char *url;
    const char *endpoint, *host;
    uint16_t port;
    bool tls;
    const char *bucket, *region;
    enum conf_addressing addressing;
    const char *authority;
} url_cases[] = {
    {"http://127.0.0.1:9000/bucket", "http://127.0.0.1:9000", "127.0.0.1", 9000, false,
     "bucket", "us-east-1", CONF_ADDR_PATH, "127.0.0.1:9000"},
    {"http://127.0.0.1:9000/bucket/", "http://127.0.0.1:9000", "127.0.0.1", 9000, false,
     "bucket", "us-east-1", CONF_ADDR_PATH, "127.0.0.1:9000"},
    {"https://my-bucket.s3.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com",
     "s3.eu-west-1.amazonaws.com", 443, true, "my-bucket", "eu-west-1", CONF_ADDR_VIRTUAL,
     "my-bucket.s3.eu-west-1.amazonaws.com"},
    {"https://my-bucket.s3.amazonaws.com/", "https://s3.amazonaws.com", "s3.amazonaws.com", 443,
     true, "my-bucket", "us-east-1", CONF_ADDR_VIRTUAL, "my-bucket.s3.amazonaws.com"},
    {"https://logs.s3-eu-west-2.amazonaws.com", "https://s3-eu-west-2.amazonaws.com",
     "s3-eu-west-2.amazonaws.com", 443, true, "logs", "eu-west-2", CONF_ADDR_VIRTUAL,
     "logs.s3-eu-west-2.amazonaws.com"},
    {"https://logs.s3-external-1.amazonaws.com", "https://s3-external-1.amazonaws.com",
     "s3-external-1.amazonaws.com", 443, true, "logs", "us-east-1", CONF_ADDR_VIRTUAL,
     "logs.s3-external-1.amazonaws.com"},
    {"https://b.s3.dualstack.ap-south-1.amazonaws.com",
     "https://s3.dualstack.ap-south-1.amazonaws.com", "s3.dualstack.ap-south-1.amazonaws.com",
     443, true, "b", "ap-south-1", CONF_ADDR_VIRTUAL,
     "b.s3.dualstack.ap-south-1.amazonaws.com"},
    {"https://s3.eu-central-1.amazonaws.com/my-bucket", "https://s3.eu-central-1.amazonaws.com",
     "s3.eu-central-1.amazonaws.com", 443, true, "my-bucket", "eu-central-1", CONF_ADDR_PATH,
     "s3.eu-central-1.amazonaws.com"},
    {"https://s3.amazonaws.com/Old_Bucket", "https://s3.amazonaws.com", "s3.amazonaws.com", 443,
     true, "Old_Bucket", "us-east-1", CONF_ADDR_PATH, "s3.amazonaws.com"},
    {"HTTPS://S3.EU-WEST-1.AMAZONAWS.COM/b", "https://s3.eu-west-1.amazonaws.com",
     "s3.eu-west-1.amazonaws.com", 443, true, "b", "eu-west-1", CONF_ADDR_PATH,
     "s3.eu-west-1.amazonaws.com"},
    {"http://[::1]:9000/b", "http://[::1]:9000", "::1", 9000, false, "b", "us-east-1",
     CONF_ADDR_PATH, "[::1]:9000"},
    {"https://minio.example.com/data", "https://minio.example.com", "minio.example.com", 443,
     true, "data", "us-east-1", CONF_ADDR_PATH, "minio.example.com"},
    {"http://localhost:80/b", "http://localhost:80", "localhost", 80, false, "b", "us-east-1",
     CONF_ADDR_PATH, "localhost"},
    {"https://website.s3-website-eu-west-1.amazonaws.com/b",
     "https://website.s3-website-eu-west-1.amazonaws.com",
     "website.s3-website-eu-west-1.amazonaws.com", 443, true, "b", "us-east-1", CONF_ADDR_PATH,
     "website.s3-website-eu-west-1.amazonaws.com"},
};

START_TEST(origin_urls)
{
    const struct url_case *t = &url_cases[_i];
    struct conf *c = conf_new();
    const struct conf_origin *o;

    ck_assert_msg(conf_add_origin_url(c, t->url, err) == 0, "%s: %s", t->url, err);
    ck_assert_int_eq(conf_add_listen(c, ":8080", err), 0);
    ck_assert_msg(conf_finish(c, err) == 0, "%s: %s", t->url, err);
    ck_assert_uint_eq(c->norigins, 1);
    o = &c->origins[0];
    ck_assert_str_eq(o->name, "default");
    ck_assert_str_eq(o->endpoint, t->endpoint);
    ck_assert_str_eq(o->host, t->host);
    ck_assert_uint_eq(o->port, t->port);
    ck_assert_int_eq(o->tls, t->tls);
    ck_assert_str_eq(o->bucket, t->bucket);
    ck_assert_str_eq(o->region, t->region);
    ck_assert_int_eq(o->addressing, t->addressing);
    ck_assert_str_eq(o->authority, t->authority);
    ck_assert_int_eq(o->cred_source, CONF_CRED_ENV);
    ck_assert_uint_eq(c->ndists, 1);
    ck_assert_str_eq(c->dists[0].name, "default");
    ck_assert_uint_eq(c->dists[0].nhosts, 1);
    ck_assert_str_eq(c->dists[0].hosts[0], "*");
    ck_assert_ptr_eq(c->dists[0].origin, o);
    conf_free(c);
}
END_TEST

static const struct bad_url_case {
    const char *url;
    const char *msg;
} bad_url_cases[] = {
    {"ftp://h/b", "origin URL \"ftp://h/b\": expected a URL starting with http:// or https://"},
    {"http://h:9000", "origin URL \"http://h:9000\": expected a bucket: "
                      "http(s)://host[:port]/BUCKET or https://BUCKET.s3.REGION.amazonaws.com"},
    {"https://s3.eu-west-1.amazonaws.com/",
     "origin URL \"https://s3.eu-west-1.amazonaws.com/\": expected a bucket: "
     "http(s)://host[:port]/BUCKET or https://BUCKET.s3.REGION.amazonaws.com"},
    {"http://h/b/c", "origin URL \"http://h/b/c\": expected at most one path segment, the bucket"},
    {"https://b.s3.amazonaws.com/c", "origin URL \"https://b.s3.amazonaws.com/c\": expected the "
                                     "bucket in the host name or in the path, not both"},
    {"http://h:0/b", "origin URL \"http://h:0/b\": expected a port from 1 to 65535 in the URL"},
    {"http://u:p@h/b", "origin URL \"http://u:p@h/b\": expected a URL without user info "
                       "(credentials go under credentials:)"},
    {"http://h/b?x=1", "origin URL \"http://h/b?x=1\": expected a URL without query or fragment"},
    {"http://h/b%20", "origin URL \"http://h/b%20\": expected a bucket name of letters, digits, "
                      "'.', '-' or '_'"},
    {"", "origin URL \"\": expected a URL starting with http:// or https://"},
};

START_TEST(origin_urls_bad)
{
    const struct bad_url_case *t = &bad_url_cases[_i];
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_add_origin_url(c, t->url, err), -1);
    ck_assert_str_eq(err, t->msg);
    ck_assert_uint_eq(c->norigins, 0);
    ck_assert_uint_eq(c->ndists, 0);
    conf_free(c);
}
END_TEST

START_TEST(methods_and_plain_origins)
{
    struct conf *c = load_ok(L
                             "origins:\n- name: app\n  type: http\n  endpoint: http://[::1]:8081\n"
                             "- name: s3\n  type: s3\n  endpoint: http://127.0.0.1:9000\n"
                             "  bucket: b\n"
                             "distributions:\n- name: a\n  hosts: [a.example]\n  origin: app\n"
                             "  allowed_methods: [HEAD, GET, OPTIONS]\n"
                             "- name: b\n  hosts: [b.example]\n  origin: s3\n"
                             "  allowed_methods: [DELETE, PATCH, POST, PUT, OPTIONS, HEAD, GET]\n"
                             "  max_request_body: 0\n"
                             "- name: c\n  origin: s3\n  allowed_methods: [GET, HEAD]\n");
    const struct conf_origin *o = &c->origins[0];

    ck_assert_int_eq(o->type, CONF_ORIGIN_HTTP);
    ck_assert_str_eq(o->authority, "[::1]:8081");
    ck_assert_str_eq(o->vhost, "::1");
    ck_assert_ptr_null(o->region); /* no S3 defaults for a plain origin */
    ck_assert_ptr_null(o->bucket);
    ck_assert_int_eq(c->origins[1].type, CONF_ORIGIN_S3);
    ck_assert_int_eq(c->dists[0].methods, CONF_METHODS_GET_HEAD_OPTIONS);
    ck_assert_int_eq(c->dists[1].methods, CONF_METHODS_ALL);
    ck_assert_uint_eq(c->dists[1].max_request_body, 0);
    ck_assert_int_eq(c->dists[2].methods, CONF_METHODS_GET_HEAD);
    ck_assert_str_eq(conf_methods_allow(CONF_METHODS_GET_HEAD), "GET, HEAD");
    ck_assert_str_eq(conf_methods_allow(CONF_METHODS_GET_HEAD_OPTIONS), "GET, HEAD, OPTIONS");
    ck_assert_str_eq(conf_methods_allow(CONF_METHODS_ALL),
                     "GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE");
    conf_free(c);
}
END_TEST

START_TEST(plain_origin_url)
{
    struct conf *c = conf_new();

    ck_assert_int_eq(conf_add_plain_origin_url(c, "http://127.0.0.1:8081/x", err), -1);
    ck_assert_str_eq(err, "plain origin URL \"http://127.0.0.1:8081/x\": expected "
                          "http(s)://host[:port] without a path (requests keep their own path)");
    ck_assert_int_eq(conf_add_plain_origin_url(c, "ftp://h", err), -1);
    ck_assert_str_eq(err, "plain origin URL \"ftp://h\": expected a URL starting with http:// "
                          "or https://");
    ck_assert_int_eq(conf_add_listen(c, ":8080", err), 0);
    ck_assert_int_eq(conf_add_plain_origin_url(c, "https://App.Example:8443/", err), 0);
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_int_eq(c->origins[0].type, CONF_ORIGIN_HTTP);
    ck_assert(c->origins[0].tls);
    ck_assert_str_eq(c->origins[0].authority, "app.example:8443");
    ck_assert_str_eq(c->dists[0].hosts[0], "*");
    conf_free(c);
}
END_TEST

START_TEST(command_line_only)
{
    struct conf *c = conf_new();

    /* no file: messages start with the key */
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "listen: at least one address required");
    ck_assert_int_eq(conf_add_listen(c, ":8080", err), 0);
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "distributions: at least one distribution required");
    ck_assert_int_eq(conf_add_origin_url(c, "http://127.0.0.1:9000/b", err), 0);
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_msg(conf_finish(c, err) == 0, "%s", err);
    ck_assert_uint_eq(c->dists[0].nhosts, 1);

    ck_assert_int_eq(conf_add_origin_url(c, "http://127.0.0.1:9000/b", err), 0);
    ck_assert_int_eq(conf_finish(c, err), -1);
    ck_assert_str_eq(err, "origins[1].name: \"default\" is already the name of origins[0]");
    conf_free(c);
}
END_TEST

/* ------------------------------------------------------------ allocation failures */

static const char full_yaml[] =
    "listen: [\":8080\", \"[::1]:8443\", {address: \"127.0.0.1:9443\"}]\n"
    "log: {level: debug, error_log: /tmp/e.log, access_log: \"off\"}\n"
    "cache: {memory_size: 2g, max_object_size: 512KB}\n"
    "origins:\n"
    "- name: a\n"
    "  endpoint: https://s3.eu-west-1.amazonaws.com\n"
    "  bucket: b\n"
    "  addressing: virtual\n"
    "  credentials: {source: static, access_key_id: K, secret_access_key: S, session_token: T}\n"
    "- name: b\n"
    "  endpoint: http://[::1]:9000\n"
    "  bucket: c\n"
    "  ca_file: ca.pem\n"
    "distributions:\n"
    "- name: one\n"
    "  hosts: [a.example, b.example, c.example, d.example, e.example, \"*.f.example\"]\n"
    "  origin: a\n"
    "  path_prefix: /x/\n"
    "  key_prefix: y/\n"
    "- name: two\n"
    "  hosts: [g.example]\n"
    "  origin: b\n"
    "node: {id: n1, pop: p, state_dir: /var/lib/s3edge}\n"
    "admin: {listen: \"127.0.0.1:9091\", tokens: [t1, t2], token_file: tf}\n"
    "redis: {sentinel: {master: m, addrs: [\"h:1\", \"h:2\"]}, username: u, password: p}\n";

START_TEST(alloc_failures)
{
    long n;
    int rc = -1;

    if (!failmalloc_works())
        return;
    for (n = 0; n < 100000 && rc != 0; n++) {
        struct conf *c;
        char e[CONF_ERR_MAX] = "";
        long live = live_allocs;

        fail_countdown = n;
        c = conf_new();
        if (c == NULL) {
            fail_countdown = -1;
            continue;
        }
        rc = conf_load_string(c, "x.yaml", full_yaml, strlen(full_yaml), e);
        if (rc == 0)
            rc = conf_add_origin_url(c, "https://x.s3.amazonaws.com", e);
        if (rc == 0)
            rc = conf_add_listen(c, ":9090", e);
        if (rc == 0)
            rc = conf_finish(c, e);
        fail_countdown = -1;
        if (rc != 0)
            ck_assert_msg(strstr(e, "out of memory") != NULL, "failure %ld: %s", n, e);
        conf_free(c);
        ck_assert_msg(live_allocs == live, "failure %ld leaked %ld blocks", n, live_allocs - live);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_gt(n, 50);
}
END_TEST

START_TEST(alloc_failures_file)
{
    char *path = tmp_file(full_yaml, strlen(full_yaml));
    long n;
    int rc = -1;

    if (!failmalloc_works()) {
        unlink(path);
        return;
    }
    for (n = 0; n < 100000 && rc != 0; n++) {
        struct conf *c;
        char e[CONF_ERR_MAX] = "";
        long live = live_allocs;

        fail_countdown = n;
        c = conf_new();
        if (c == NULL) {
            fail_countdown = -1;
            continue;
        }
        rc = conf_load_file(c, path, e);
        fail_countdown = -1;
        if (rc != 0)
            ck_assert_msg(strstr(e, "out of memory") != NULL, "failure %ld: %s", n, e);
        conf_free(c);
        ck_assert_msg(live_allocs == live, "failure %ld leaked %ld blocks", n, live_allocs - live);
    }
    unlink(path);
    ck_assert_int_eq(rc, 0);
}
END_TEST

/* ------------------------------------------------------------ runner */

static Suite *conf_suite(void)
{
    Suite *s = suite_create("conf");
    TCase *tc;

    tc = tcase_create("shipped");
    tcase_add_test(tc, shipped_s3edge_yaml);
    tcase_add_test(tc, shipped_demo_yaml);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_test(tc, defaults_minimal);
    tcase_add_test(tc, every_key_set);
    tcase_add_test(tc, max_object_capped_by_memory);
    tcase_add_test(tc, memory_max_object);
    tcase_add_test(tc, disk_cache_keys);
    tcase_add_test(tc, block_keys);
    tcase_add_test(tc, virtual_with_bucket_and_port);
    tcase_add_test(tc, fleet_keys);
    tcase_add_test(tc, fleet_command_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, tls_files_make, tls_files_remove);
    tcase_add_test(tc, tls_every_key_set);
    tcase_add_test(tc, tls_defaults);
    tcase_add_test(tc, tls_default_lists_valid);
    tcase_add_test(tc, tls_command_line);
    tcase_add_test(tc, tls_shipped_example);
    tcase_add_test(tc, admin_tls_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    /* the TLS cases of bad_cases[] name files made in a temporary directory */
    tcase_add_unchecked_fixture(tc, tls_files_make, tls_files_remove);
    tcase_add_loop_test(tc, bad_config, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, bad_deep_nesting);
    tcase_add_test(tc, bad_long_key_is_cut);
    tcase_add_test(tc, bad_too_large);
    tcase_add_test(tc, many_hosts_duplicate_found);
    tcase_set_timeout(tc, 30);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_test(tc, file_missing);
    tcase_add_test(tc, file_is_directory);
    tcase_add_test(tc, file_unreadable);
    tcase_add_test(tc, file_empty_and_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("parsers");
    tcase_add_loop_test(tc, sizes, 0, (int)(sizeof size_cases / sizeof size_cases[0]));
    tcase_add_loop_test(tc, durations, 0, (int)(sizeof duration_cases / sizeof duration_cases[0]));
    tcase_add_loop_test(tc, hostports, 0, (int)(sizeof hp_cases / sizeof hp_cases[0]));
    tcase_add_test(tc, hostport_small_buffer);
    tcase_add_test(tc, add_listen);
    suite_add_tcase(s, tc);

    tc = tcase_create("origin_url");
    tcase_add_loop_test(tc, origin_urls, 0, (int)(sizeof url_cases / sizeof url_cases[0]));
    tcase_add_loop_test(tc, origin_urls_bad, 0,
                        (int)(sizeof bad_url_cases / sizeof bad_url_cases[0]));
    tcase_add_test(tc, command_line_only);
    tcase_add_test(tc, methods_and_plain_origins);
    tcase_add_test(tc, plain_origin_url);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_test(tc, alloc_failures);
    tcase_add_test(tc, alloc_failures_file);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(conf_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * fill.c: origin fetches -> obj (fill.h says what and why). Lifecycle of
 * one fill:
 *   fill_start | src_want -> on_head (first fetch: the object's headers, or
 *   an error answer of ours; block fill: its Content-Range checked)
 *   -> on_body* (bytes written at their place in the blocks)
 *   -> on_done -> blocks complete (object COMPLETE when whole) | block
 *   dropped | object FAILED -> free.
 * Abandon (no reader left, a handover, a stop) cancels the fetch and frees
 * the fill at once.
 */
#include "config.h"

#include "fill.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

#include "cache.h"
#include "chunk.h"
#include "disk.h"
#include "err.h"
#include "log.h"
#include "origin.h"
#include "purge.h"
#include "server.h"
#include "timeutil.h"
#include "vas.h"

/* An origin error body longer than this is not drained: the connection is
 * dropped instead. */
#define FILL_MAX_ERROR_BODY (64 * 1024)
#define FILL_MAX_PASSED_HEADERS 64
/* Readers are woken at least every this many bytes a fetch writes. */
#define FILL_NOTIFY_BYTES (128u * 1024)

struct fill;

/* What block fills of one object need; owned by the object (its source). */
struct fill_src {
    unsigned magic;
#define FILL_SRC_MAGIC 0x66737263U
    struct server *srv;
    const struct conf_distribution *dist;
    char *s3_key;
    char *query;
    char *path;          /* a plain origin's request path, or NULL */
    char *etag;          /* If-Match of every block fetch */
    char *last_modified; /* If-Unmodified-Since when there is no ETag */
};

struct fill {
    unsigned magic;
#define FILL_MAGIC 0x66696c6cU
    struct server *srv;
    struct server_task task; /* ended by server_free at a stop */
    const struct conf_distribution *dist;
    struct obj *o;
    struct origin_fetch *fetch;
    bool head;          /* a HEAD */
    bool learn;         /* the first fetch: its answer gives the headers */
    bool ranged;        /* a Range was sent */
    bool stream;        /* writing the whole body in order (a 200) */
    bool stream_range;  /* a block fill of several blocks for a pass-through */
    int restarts;       /* fetches started again after a 416 */
    uint64_t rfirst, rlast; /* the range asked for */
    uint64_t wpos, wend;    /* where the body goes */
    uint64_t notified;      /* wpos when readers were last woken, UINT64_MAX: never */
    struct obj_writer w;
    bool writing;
    struct obj *reval;  /* the stale object this fill revalidates, or NULL */
    struct fill_src *src; /* block fill: the object's source */
    time_t request_time;
    int64_t fetch_ms;   /* request_time on purge_clock_ms() */
    char *s3_key;       /* for logs and restarts */
    char *query;
    char *path;         /* a plain origin's request path, or NULL */
    uint64_t discarded; /* error body bytes thrown away */
};

static void fill_free(struct fill *fl)
{
    CHECK_OBJ_NOTNULL(fl, FILL_MAGIC);
    server_task_untrack(fl->srv, &fl->task);
    if (fl->writing)
        obj_writer_remove(fl->o, &fl->w);
    obj_fill_end(fl->o);
    obj_unref(fl->o);
    if (fl->reval) {
        fl->reval->revalidating = false;
        obj_unref(fl->reval);
    }
    free(fl->s3_key);
    free(fl->query);
    free(fl->path);
    fl->magic = 0;
    free(fl);
}

/* Which origin headers reach clients (S3-NOTES: metadata worth passing;
 * x-amz-request-id and friends are internal). */
static bool pass_header(const struct fill *fl, const char *name, size_t n)
{
    static const char *const pass[] = {
        "content-type", "content-encoding", "content-disposition",
        "content-language", "cache-control", "expires", "etag",
        "last-modified", "x-amz-version-id",
        "surrogate-key", /* tags of fleet invalidation (fleet.c) */
        "location",      /* a plain origin's redirects (plain_passes) */
    };
    for (size_t i = 0; i < ARRAY_LEN(pass); i++)
        if (strlen(pass[i]) == n && strncasecmp(pass[i], name, n) == 0)
            return true;
    if (fl->dist->pass_amz_meta && n > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0)
        return true;
    return false;
}

/* Answers of a plain origin passed to the client as they are. */
static bool plain_passes(int status)
{
    switch (status) {
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 410:
        return true;
    default:
        return false;
    }
}

/* The distribution's TTL policy (RFC 9111 with CloudFront-style clamps). */
static struct fresh_policy fill_policy(const struct conf_distribution *d)
{
    struct fresh_policy p = {
        .min_ttl = d->min_ttl_s,
        .default_ttl = d->default_ttl_s,
        .max_ttl = d->max_ttl_s,
        .heuristic_max = d->heuristic_max_s,
    };
    /* a command-line --default-ttl may exceed the configured maximum */
    if (p.max_ttl < p.default_ttl)
        p.max_ttl = p.default_ttl;
    if (p.min_ttl > p.default_ttl)
        p.min_ttl = p.default_ttl;
    return p;
}

static unsigned fill_negative_ttl(const struct conf_distribution *d, int status)
{
    return status == 404 ? d->negative_ttl_404_s : status == 403 ? d->negative_ttl_403_s : 0;
}

static void set_error(struct fill *fl, int status)
{
    fl->o->error_body = true;
    fl->o->transient = true;
    fl->o->cacheable = false;
    if (obj_set_headers(fl->o, status, 0, NULL, 0) < 0)
        WRONG("obj_set_headers without headers cannot fail");
}

static const struct obj_writer_ops fill_writer_ops;
static const struct obj_source_ops fill_src_ops;
static int fill_fetch(struct fill *fl);

static void fill_write_at(struct fill *fl, uint64_t wpos, uint64_t wend, bool stream)
{
    fl->wpos = wpos;
    fl->wend = wend;
    fl->notified = UINT64_MAX;
    obj_writer_add(fl->o, &fl->w, &fill_writer_ops, fl, wpos, wend, stream);
    fl->writing = true;
}

/* "bytes FIRST-LAST/TOTAL" or "bytes * /TOTAL" (first = UINT64_MAX) */
static int parse_content_range(const char *v, size_t n, uint64_t *first, uint64_t *last,
                               uint64_t *total)
{
    char buf[96];
    unsigned long long a, b, t;
    int used = 0;

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (sscanf(buf, "bytes */%llu%n", &t, &used) == 1 && (size_t)used == n) {
        *first = *last = UINT64_MAX;
        *total = t;
        return 0;
    }
    if (sscanf(buf, "bytes %llu-%llu/%llu%n", &a, &b, &t, &used) == 3 && (size_t)used == n &&
        a <= b && b < t && buf[6] >= '0' && buf[6] <= '9') {
        *first = a;
        *last = b;
        *total = t;
        return 0;
    }
    return -1;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static const struct http1_header *find_header(const struct origin_resp *r, const char *name)
{
    size_t n = strlen(name);

    for (unsigned i = 0; i < r->nheaders; i++)
        if (r->headers[i].name_len == n && strncasecmp(r->headers[i].name, name, n) == 0)
            return &r->headers[i];
    return NULL;
}

static char *dup_header(const struct origin_resp *r, const char *name)
{
    const struct http1_header *h = find_header(r, name);

    return h ? dupn(h->value, h->value_len) : NULL;
}

static void prod_abandon(void *arg);

/* the blocks a ranged fill was writing end unfinished */
static void fill_blocks_failed(struct fill *fl)
{
    struct obj *o = fl->o;

    if (o->state != OBJ_STREAMING || o->length < 0)
        return;
    /* before its head the fill's blocks are those it asked for (wpos and
     * wend are set when the answer is placed) */
    uint64_t first = fl->writing ? fl->wpos : fl->rfirst;
    uint64_t last = fl->writing ? (fl->wend > 0 ? fl->wend - 1 : 0) : fl->rlast;
    if (last >= (uint64_t)o->length)
        last = o->length > 0 ? (uint64_t)o->length - 1 : 0;
    for (uint64_t b = first / o->bsize; b <= last / o->bsize && b < o->nblk; b++)
        obj_block_failed(o, (uint32_t)b);
}

/* A block fill's answer: 206 of exactly the block asked for, of an object
 * of the same length. 412 (If-Match failed), 404 or a different length:
 * the object was replaced. */
static void on_head_block(struct fill *fl, const struct origin_resp *r)
{
    struct obj *o = fl->o;
    uint64_t a, b, t;

    if (o->state != OBJ_STREAMING) {
        prod_abandon(fl);
        return;
    }
    if (r->status == 206) {
        const struct http1_header *cr = find_header(r, "content-range");
        uint64_t want_last = fl->rlast < (uint64_t)o->length ? fl->rlast : (uint64_t)o->length - 1;
        if (cr != NULL && parse_content_range(cr->value, cr->value_len, &a, &b, &t) == 0 &&
            t == (uint64_t)o->length && a == fl->rfirst && b == want_last) {
            fill_write_at(fl, a, b + 1, fl->stream_range);
            return;
        }
        if (cr != NULL && parse_content_range(cr->value, cr->value_len, &a, &b, &t) == 0 &&
            t != (uint64_t)o->length) {
            LOG_I("\"%s\" changed size in the origin (%lld -> %llu): dropped", fl->s3_key,
                  (long long)o->length, (unsigned long long)t);
            obj_fail(o, "object changed");
        } else {
            LOG_W("origin %s: bad Content-Range for a block of \"%s\"", fl->dist->origin->name,
                  fl->s3_key);
            obj_block_failed(o, (uint32_t)(fl->rfirst / o->bsize));
        }
    } else if (r->status == 412 || r->status == 404 || r->status == 200) {
        /* If-Match failed (a new version), gone, or a 200 without Range:
         * the version these blocks belong to is not there any more */
        LOG_I("\"%s\" changed in the origin (%d on a block fetch): dropped", fl->s3_key,
              r->status);
        obj_fail(o, "object changed");
    } else {
        LOG_W("origin %s answered %d for a block of \"%s\"", fl->dist->origin->name, r->status,
              fl->s3_key);
        obj_block_failed(o, (uint32_t)(fl->rfirst / o->bsize));
    }
    origin_fetch_cancel(fl->fetch);
    fl->fetch = NULL;
    fill_free(fl);
}

static void src_set(struct server *s, struct obj *o, const struct conf_distribution *dist,
                    const char *s3_key, const char *query, const char *path, char *etag,
                    char *last_modified)
{
    struct fill_src *src = calloc(1, sizeof(*src));

    if (src == NULL) {
        free(etag);
        free(last_modified);
        return; /* no block fills: readers of other blocks end in error */
    }
    src->magic = FILL_SRC_MAGIC;
    src->srv = s;
    src->dist = dist;
    src->s3_key = strdup(s3_key);
    src->query = query ? strdup(query) : NULL;
    src->path = path ? strdup(path) : NULL;
    src->etag = etag;
    src->last_modified = etag == NULL ? last_modified : NULL;
    if (etag != NULL)
        free(last_modified);
    if (src->s3_key == NULL || (query && src->query == NULL) || (path && src->path == NULL)) {
        fill_src_ops.release(src);
        return;
    }
    obj_set_source(o, &fill_src_ops, src);
}

/* become the object's block source */
static void fill_set_source(struct fill *fl, const struct origin_resp *r)
{
    src_set(fl->srv, fl->o, fl->dist, fl->s3_key, fl->query, fl->path, dup_header(r, "etag"),
            dup_header(r, "last-modified"));
}

void fill_source_for(struct server *s, struct obj *o, const struct conf_distribution *dist,
                     const char *s3_key, const char *query, const char *path)
{
    const char *etag = obj_find_hdr(o, "etag"), *lm = obj_find_hdr(o, "last-modified");

    if (o->src == &fill_src_ops || o->src_fb != NULL || o->length < 0 ||
        (etag == NULL && lm == NULL))
        return; /* without a validator, blocks of two versions could mix */
    src_set(s, o, dist, s3_key, query, path, etag ? strdup(etag) : NULL,
            lm ? strdup(lm) : NULL);
}

/* The first fetch asks again (another Range, or none), from inside its
 * on_head. */
static void fill_restart(struct fill *fl)
{
    fl->restarts++;
    origin_fetch_cancel(fl->fetch);
    fl->fetch = NULL;
    if (fill_fetch(fl) < 0) {
        set_error(fl, 502);
        cache_unindex(fl->o);
        obj_complete(fl->o);
        fill_free(fl);
    }
}

static void on_head(void *arg, const struct origin_resp *r)
{
    struct fill *fl;
    struct obj_hdr hdrs[FILL_MAX_PASSED_HEADERS];
    char *owned[FILL_MAX_PASSED_HEADERS];
    unsigned nh = 0;
    int status = r->status;
    time_t now = time(NULL);
    struct obj *o;
    uint64_t cr_first = 0, cr_last = 0, cr_total = 0;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
    if (!fl->learn) {
        on_head_block(fl, r);
        return;
    }
    o->date = now;
    o->resp_mono_ms = time_mono_ms();

    if (status == 304 && fl->reval != NULL) {
        /* RFC 9111 4.3.4: the stored response is still good; take the new
         * freshness information and serve it */
        struct obj *old = fl->reval;
        struct fresh_resp r304;
        fresh_resp_parse(&r304, status, r->headers, r->nheaders);
        fresh_resp_update(&old->fresp, &r304);
        struct fresh_policy pol = fill_policy(fl->dist);
        (void)fresh_decide(&old->fresp, &pol, fl->request_time, now, false, &old->fd);
        old->resp_mono_ms = o->resp_mono_ms;
        old->resident_extra_ms = 0;
        old->date = now;
        old->fetch_ms = fl->fetch_ms; /* confirmed by the origin: newer than a soft purge */
        if (fl->srv->disk != NULL)
            disk_refresh(fl->srv->disk, old);
        o->not_modified = true;
        o->transient = true;
        if (obj_set_headers(o, 304, 0, NULL, 0) < 0)
            WRONG("obj_set_headers without headers cannot fail");
        cache_unindex(o);
        obj_notify(o);
        return;
    }

    const struct http1_header *crh = find_header(r, "content-range");
    bool cr_ok = status == 206 && crh != NULL &&
                 parse_content_range(crh->value, crh->value_len, &cr_first, &cr_last,
                                     &cr_total) == 0 &&
                 cr_first == fl->rfirst && cr_first != UINT64_MAX &&
                 cr_last == (fl->rlast < cr_total ? fl->rlast : cr_total - 1);
    if (status == 206 && !cr_ok && fl->ranged && fl->restarts < 2) {
        /* a 206 we cannot place (some S3-compatible servers get empty
         * objects wrong): ask again without a Range */
        LOG_D("origin %s: unusable Content-Range for \"%s\": fetching it whole",
              fl->dist->origin->name, fl->s3_key);
        fl->ranged = false;
        fill_restart(fl);
        return;
    }
    if (status == 416 && fl->ranged && fl->restarts < 2) {
        /* the block asked for starts at or past the end (a range beyond
         * it, or an empty object): ask for block 0, or without a Range,
         * which gives the headers of the object rather than of an error */
        if (crh != NULL && parse_content_range(crh->value, crh->value_len, &cr_first, &cr_last,
                                               &cr_total) == 0 &&
            cr_total > 0 && fl->rfirst > 0) {
            fl->rfirst = 0;
            fl->rlast = o->bsize - 1;
        } else {
            fl->ranged = false;
        }
        fill_restart(fl);
        return;
    }
    bool ok = status == 200 || (fl->ranged && status == 206);
    /* a plain origin's redirects and 410 are answers of the site, not
     * errors of an S3 API: they go to the client as they are (uncached) */
    bool pass_through = !ok && fl->dist->origin->type == CONF_ORIGIN_HTTP &&
                        plain_passes(status);
    if (ok && status == 206) {
        /* exactly the range asked for, or the object's tail */
        ok = cr_ok;
        if (!ok)
            LOG_W("origin %s: bad Content-Range for \"%s\"", fl->dist->origin->name, fl->s3_key);
        status = ok ? 206 : 502;
    }
    if (!ok && !pass_through) {
        /* S3 errors: 404 NoSuchKey, 403 AccessDenied (also for a missing
         * key without s3:ListBucket); anything else is the origin's fault */
        int mapped = (status == 404 || status == 403) ? status : 502;
        if (mapped == 502)
            LOG_W("origin %s answered %d for \"%s\"", fl->dist->origin->name, status,
                  fl->s3_key);
        set_error(fl, mapped);
        unsigned neg = fill_negative_ttl(fl->dist, mapped);
        if (neg > 0 && !fl->head && o->in_index) {
            /* negative caching, as CloudFront's error caching: S3's 404
             * and 403 carry no freshness, so they get a short TTL of ours */
            o->negative = true;
            o->fd.storable = true;
            o->fd.source = FRESH_SRC_DEFAULT_TTL;
            o->fd.origin_lifetime = -1;
            o->fd.lifetime = o->fd.ttl = neg;
            o->fd.no_stale = true;
            if (cache_admit(fl->srv->cache, o)) {
                o->cacheable = true;
                o->transient = false;
            }
        } else {
            cache_unindex(o);
        }
        obj_notify(o);
        return;
    }

    int out_status = pass_through ? status : 200;
    fresh_resp_parse(&o->fresp, out_status, r->headers, r->nheaders);
    struct fresh_policy pol = fill_policy(fl->dist);
    if (fresh_decide(&o->fresp, &pol, fl->request_time, now, false, &o->fd) < 0)
        o->fd.storable = false;
    int64_t length = status == 206 ? (int64_t)cr_total : r->content_length;
    bool cacheable = !fl->head && o->fd.storable &&
                     (o->fd.ttl > 0 || o->fd.swr > 0 || o->fd.sie > 0 ||
                      o->fresp.has_etag || o->fresp.has_last_modified);
    if (length > (int64_t)fl->srv->conf->max_object_bytes || pass_through)
        cacheable = false;
    for (unsigned i = 0; i < r->nheaders && nh < FILL_MAX_PASSED_HEADERS; i++) {
        const struct http1_header *h = &r->headers[i];
        if (!pass_header(fl, h->name, h->name_len))
            continue;
        /* copy into NUL-terminated strings for obj_set_headers */
        char *nm = malloc(h->name_len + h->value_len + 2);
        if (nm == NULL)
            break;
        memcpy(nm, h->name, h->name_len);
        nm[h->name_len] = '\0';
        memcpy(nm + h->name_len + 1, h->value, h->value_len);
        nm[h->name_len + 1 + h->value_len] = '\0';
        owned[nh] = nm;
        hdrs[nh].name = nm;
        hdrs[nh].value = nm + h->name_len + 1;
        nh++;
    }
    int rc = obj_set_headers(o, out_status, fl->head ? r->content_length : length, hdrs, nh);
    for (unsigned i = 0; i < nh; i++)
        free(owned[i]);
    if (rc < 0) {
        LOG_E("out of memory storing headers for \"%s\"", fl->s3_key);
        set_error(fl, 502);
        cache_unindex(o);
        obj_notify(o);
        return;
    }
    if (fl->head) {
        o->transient = true;
        obj_notify(o);
        return;
    }
    if (status == 206) {
        fill_write_at(fl, cr_first, cr_last + 1, false);
        obj_block_filling(o, (uint32_t)(cr_first / o->bsize), (uint32_t)(cr_last / o->bsize));
        fill_set_source(fl, r);
    } else {
        fl->stream = true;
        fill_write_at(fl, 0, UINT64_MAX, true);
        if (o->nblk > 0)
            obj_block_filling(o, 0, o->nblk - 1);
    }
    /* stored: admitted to the memory store (a revalidation's new version
     * replaces the stale copy); too large for it: kept in the index while
     * it streams to the disk cache; else out of the index, for its
     * readers */
    if (cacheable && (o->in_index || fl->reval != NULL)) {
        if (length > (int64_t)fl->srv->conf->memory_max_object_bytes) {
            cacheable = fl->srv->disk != NULL && status == 206 &&
                        disk_stream_begin(fl->srv->disk, o) == 0;
            if (cacheable)
                cache_keep_disk_bound(fl->srv->cache, o);
            else
                cache_unindex(o);
        } else {
            cacheable = cache_admit(fl->srv->cache, o);
        }
    } else {
        cache_unindex(o);
    }
    o->cacheable = cacheable;
    o->transient = !cacheable;
    if (o->had_reader && o->nreaders == 0 && fl->stream &&
        (o->transient || o->length < 0 || (uint64_t)o->length > o->orphan_max)) {
        /* the client left before the head came; a large body is not
         * fetched for nobody (see obj_reader_fini) */
        prod_abandon(fl);
        return;
    }
    obj_notify(o);
}

/* the body is whole: stored objects go to the disk cache */
static void fill_object_done(struct fill *fl)
{
    struct obj *o = fl->o;

    if (o->state != OBJ_STREAMING || !obj_whole(o))
        return;
    obj_complete(o);
    if (o->in_index && o->cacheable && !o->error_body && fl->srv->disk != NULL)
        disk_store(fl->srv->disk, o); /* write-through (disk.h says why) */
}

static void on_body(void *arg, struct evbuffer *buf)
{
    struct fill *fl;
    struct obj *o;
    bool block_done = false;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
    if (o->state == OBJ_FAILED) {
        /* another fetch found the object replaced: this one's bytes are
         * of no use */
        origin_fetch_cancel(fl->fetch);
        fl->fetch = NULL;
        fill_free(fl);
        return;
    }
    if (o->error_body || !fl->writing) {
        size_t n = evbuffer_get_length(buf);
        fl->discarded += n;
        evbuffer_drain(buf, n);
        if (fl->discarded > FILL_MAX_ERROR_BODY) {
            origin_fetch_cancel(fl->fetch);
            fl->fetch = NULL;
            if (o->state == OBJ_STREAMING)
                obj_complete(o);
            fill_free(fl);
        }
        return;
    }
    while (evbuffer_get_length(buf) > 0) {
        size_t room;
        if (fl->wpos >= fl->wend) {
            LOG_W("origin %s sent more than asked for \"%s\"", fl->dist->origin->name,
                  fl->s3_key);
            origin_fetch_cancel(fl->fetch);
            fl->fetch = NULL;
            if (fl->stream)
                obj_fail(o, ORIGIN_ERR_TRUNCATED);
            else
                fill_blocks_failed(fl);
            fill_free(fl);
            return;
        }
        uint8_t *w = obj_write_ptr(o, fl->wpos, &room);
        if (w == NULL) {
            LOG_E("out of memory filling \"%s\"", fl->s3_key);
            origin_fetch_cancel(fl->fetch);
            fl->fetch = NULL;
            if (fl->stream)
                obj_fail(o, ORIGIN_ERR_RESOURCES);
            else
                fill_blocks_failed(fl);
            fill_free(fl);
            return;
        }
        if (room > fl->wend - fl->wpos)
            room = (size_t)(fl->wend - fl->wpos);
        int n = evbuffer_remove(buf, w, room);
        if (n <= 0)
            break;
        block_done |= obj_commit(o, fl->wpos, (size_t)n);
        fl->wpos += (uint64_t)n;
        fl->w.wpos = fl->wpos;
    }
    if (fl->stream && o->cacheable && o->present > fl->srv->conf->max_object_bytes) {
        /* a body of unknown length outgrew the limit: pass it through */
        o->cacheable = false;
        cache_unindex(o);
        if (o->nreaders == 0) {
            prod_abandon(fl);
            return;
        }
    }
    if (block_done && !fl->stream)
        fill_object_done(fl);
    /* wake the readers for the first bytes (time to first byte), a
     * finished block, and every FILL_NOTIFY_BYTES: two hundred readers of
     * a stampede then send larger runs, and wake less often */
    if (block_done || fl->notified == UINT64_MAX || fl->wpos - fl->notified >= FILL_NOTIFY_BYTES) {
        fl->notified = fl->wpos;
        obj_notify(o);
    }
}

static void on_done(void *arg, const char *err)
{
    struct fill *fl;
    struct obj *o;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
    fl->fetch = NULL;
    if (err != NULL) {
        if (o->state == OBJ_FETCHING_HDRS) {
            bool timeout = err == ORIGIN_ERR_CONNECT_TIMEOUT ||
                           err == ORIGIN_ERR_FIRST_BYTE_TIMEOUT ||
                           err == ORIGIN_ERR_IDLE_TIMEOUT;
            LOG_W("fetch of \"%s\" failed: %s", fl->s3_key, err);
            set_error(fl, timeout ? 504 : 502);
            cache_unindex(o);
            obj_complete(o);
        } else if (!fl->learn) {
            LOG_W("block fetch of \"%s\" at %llu failed: %s", fl->s3_key,
                  (unsigned long long)fl->rfirst, err);
            fill_blocks_failed(fl);
        } else {
            LOG_W("fetch of \"%s\" failed after %llu bytes: %s", fl->s3_key,
                  (unsigned long long)fl->wpos, err);
            if (o->state == OBJ_STREAMING && (o->error_body || fl->head))
                obj_complete(o);
            else if (fl->stream)
                obj_fail(o, err);
            else
                fill_blocks_failed(fl);
        }
        fill_free(fl);
        return;
    }
    if (o->state != OBJ_STREAMING) {
        fill_free(fl); /* failed meanwhile (the object changed) */
        return;
    }
    if (o->error_body || fl->head) {
        obj_complete(o);
        fill_free(fl);
        return;
    }
    if (fl->stream) {
        if (o->length >= 0 && fl->wpos != (uint64_t)o->length) {
            LOG_W("fetch of \"%s\": %llu of %lld bytes", fl->s3_key,
                  (unsigned long long)fl->wpos, (long long)o->length);
            obj_fail(o, ORIGIN_ERR_TRUNCATED);
            fill_free(fl);
            return;
        }
        obj_complete(o);
        if (o->in_index && o->cacheable && fl->srv->disk != NULL)
            disk_store(fl->srv->disk, o);
        fill_free(fl);
        return;
    }
    if (fl->writing && fl->wpos != fl->wend) {
        LOG_W("block fetch of \"%s\": %llu of %llu bytes", fl->s3_key,
              (unsigned long long)(fl->wpos - fl->rfirst),
              (unsigned long long)(fl->wend - fl->rfirst));
        fill_blocks_failed(fl);
        fill_free(fl);
        return;
    }
    fill_object_done(fl);
    obj_notify(o);
    fill_free(fl);
}

static void prod_pause(void *arg)
{
    struct fill *fl;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    if (fl->fetch)
        origin_fetch_pause(fl->fetch);
}

static void prod_resume(void *arg)
{
    struct fill *fl;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    if (fl->fetch)
        origin_fetch_resume(fl->fetch);
}

static void prod_abandon(void *arg)
{
    struct fill *fl;
    struct obj *o;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
    if (fl->fetch) {
        origin_fetch_cancel(fl->fetch);
        fl->fetch = NULL;
    }
    if (o->state == OBJ_FETCHING_HDRS || (o->state == OBJ_STREAMING && fl->stream))
        obj_fail(o, "abandoned");
    else if (o->state == OBJ_STREAMING && !fl->learn)
        fill_blocks_failed(fl);
    else if (o->state == OBJ_STREAMING && fl->writing)
        fill_blocks_failed(fl);
    else if (o->state == OBJ_STREAMING && fl->head)
        obj_complete(o);
    fill_free(fl);
}

/* the process stops: end the fetch, fail the object for its readers */
static void fill_stop_now(struct server_task *t)
{
    struct fill *fl = (struct fill *)(void *)((char *)t - offsetof(struct fill, task));

    CHECK_OBJ_NOTNULL(fl, FILL_MAGIC);
    prod_abandon(fl);
}

static const struct obj_writer_ops fill_writer_ops = {
    .pause = prod_pause,
    .resume = prod_resume,
    .abandon = prod_abandon,
};

static const struct origin_cbs fill_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

static int fill_fetch(struct fill *fl)
{
    char range[64];
    struct origin_req oreq = {
        .method = fl->head ? "HEAD" : "GET",
        .key = fl->s3_key,
        .path = fl->path,
        .query = fl->query,
    };

    if (fl->ranged) {
        snprintf(range, sizeof(range), "bytes=%llu-%llu", (unsigned long long)fl->rfirst,
                 (unsigned long long)fl->rlast);
        oreq.range = range;
    }
    if (fl->reval != NULL) {
        oreq.if_none_match = obj_find_hdr(fl->reval, "etag");
        oreq.if_modified_since = obj_find_hdr(fl->reval, "last-modified");
    }
    if (fl->src != NULL) {
        oreq.if_match = fl->src->etag;
        oreq.if_unmodified_since = fl->src->last_modified;
    }
    fl->fetch = origin_fetch_start(server_origin(fl->srv, fl->dist), &oreq, &fill_cbs, fl);
    return fl->fetch != NULL ? 0 : EDGE_ENOMEM;
}

static struct fill *fill_new(struct server *s, const struct conf_distribution *dist,
                             struct obj *o, const char *s3_key, const char *query,
                             const char *path)
{
    struct fill *fl = calloc(1, sizeof(*fl));

    if (fl == NULL)
        return NULL;
    fl->magic = FILL_MAGIC;
    fl->srv = s;
    fl->dist = dist;
    fl->o = o;
    fl->request_time = time(NULL);
    fl->fetch_ms = purge_clock_ms();
    fl->s3_key = strdup(s3_key);
    fl->query = query ? strdup(query) : NULL;
    fl->path = path ? strdup(path) : NULL;
    if (fl->s3_key == NULL || (query != NULL && fl->query == NULL) ||
        (path != NULL && fl->path == NULL)) {
        free(fl->s3_key);
        free(fl->query);
        free(fl->path);
        free(fl);
        return NULL;
    }
    obj_ref(o); /* the fill's own */
    obj_fill_begin(o);
    server_task_track(s, &fl->task, SERVER_TASK_FILL, fill_stop_now);
    return fl;
}

/* the object's source: fetch block idx */
static int src_want(struct obj *o, uint32_t idx, uint32_t span_last, void *arg)
{
    struct fill_src *src;
    struct fill *fl;

    CAST_OBJ_NOTNULL(src, arg, FILL_SRC_MAGIC);
    assert_always(o->length >= 0 && idx < o->nblk);
    fl = fill_new(src->srv, src->dist, o, src->s3_key, src->query, src->path);
    if (fl == NULL)
        return EDGE_ENOMEM;
    fl->src = src;
    fl->ranged = true;
    fl->rfirst = (uint64_t)idx * o->bsize;
    uint32_t last = idx;
    if (o->transient) {
        /* a pass-through is not stored block by block: one open range up
         * to the next block that is there or coming, paced by its readers
         * (fewer origin requests) */
        while (last + 1 < o->nblk && last + 1 <= span_last && o->blk[last + 1] == NULL &&
               !(o->bflag[last + 1] & BLK_FILLING))
            last++;
        fl->stream_range = true;
    }
    fl->rlast = (uint64_t)last * o->bsize + obj_block_len(o, last) - 1;
    fl->fetch_ms = o->fetch_ms; /* the object's version: its first fetch */
    obj_block_filling(o, idx, last);
    if (fill_fetch(fl) < 0) {
        for (uint32_t i = idx; i <= last; i++)
            o->bflag[i] &= (uint8_t)~BLK_FILLING;
        fill_free(fl);
        return EDGE_ENOMEM;
    }
    return 0;
}

static void src_release(void *arg)
{
    struct fill_src *src;

    CAST_OBJ_NOTNULL(src, arg, FILL_SRC_MAGIC);
    free(src->s3_key);
    free(src->query);
    free(src->path);
    free(src->etag);
    free(src->last_modified);
    src->magic = 0;
    free(src);
}

static const struct obj_source_ops fill_src_ops = {
    .want = src_want,
    .release = src_release,
};

struct obj *fill_start(struct server *s, const struct fill_req *req)
{
    struct fill *fl;
    struct obj *o;
    const struct conf *cf = s->conf;

    o = obj_new(req->cache_key, req->cache_key_len, (uint32_t)cf->block_bytes);
    if (o == NULL)
        return NULL;
    o->orphan_max = cf->orphan_fill_bytes;
    /* a plain origin is asked with the client's path as sent (S3 with the
     * key) */
    fl = fill_new(s, req->dist, o, req->s3_key, req->query,
                  req->dist->origin->type == CONF_ORIGIN_HTTP ? req->path : NULL);
    if (fl == NULL) {
        obj_unref(o);
        return NULL;
    }
    fl->learn = true;
    fl->head = req->head;
    o->fetch_ms = fl->fetch_ms;
    /* a HEAD is never stored: its reader drives the fetch */
    o->transient = true;
    if (!req->head) {
        /* the block the client needs first, learning the size on the way */
        fl->ranged = true;
        fl->rfirst = req->first / o->bsize * o->bsize;
        fl->rlast = fl->rfirst + o->bsize - 1;
        if (req->index && req->reval == NULL)
            cache_add_pending(s->cache, o);
    }
    if (req->reval != NULL) {
        obj_ref(req->reval);
        fl->reval = req->reval;
        req->reval->revalidating = true;
    }
    if (fill_fetch(fl) < 0) {
        cache_unindex(o);
        fill_free(fl);
        obj_unref(o);
        return NULL;
    }
    return o;
}

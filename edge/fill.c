/*
 * fill.c: origin fetch -> obj. Lifecycle:
 *   fill_start -> on_head (obj STREAMING, or an error answer of ours)
 *   -> on_body* -> on_done -> obj COMPLETE (+ cache insert) | FAILED -> free.
 * Abandon (a transient object lost its reader) cancels the fetch and frees
 * the fill at once.
 */
#include "config.h"

#include "fill.h"

#include <stddef.h>
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

struct fill {
    unsigned magic;
#define FILL_MAGIC 0x66696c6cU
    struct server *srv;
    struct server_task task; /* ended by server_free at a stop */
    const struct conf_distribution *dist;
    struct obj *o;
    struct origin_fetch *fetch;
    bool head, range;
    struct obj *reval;  /* the stale object this fill revalidates, or NULL */
    uint64_t reserved;  /* bytes reserved in the memory budget while filling */
    time_t request_time;
    int64_t fetch_ms;   /* request_time on purge_clock_ms() */
    char *s3_key;       /* for logs */
    uint64_t discarded; /* error body bytes thrown away */
};

static void fill_free(struct fill *fl)
{
    CHECK_OBJ_NOTNULL(fl, FILL_MAGIC);
    server_task_untrack(fl->srv, &fl->task);
    if (fl->reserved)
        cache_inflight_release(fl->srv->cache, fl->reserved);
    obj_unref(fl->o);
    if (fl->reval) {
        fl->reval->revalidating = false;
        obj_unref(fl->reval);
    }
    free(fl->s3_key);
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
        "last-modified", "x-amz-version-id", "accept-ranges",
        "surrogate-key", /* tags of fleet invalidation (fleet.c) */
    };
    for (size_t i = 0; i < ARRAY_LEN(pass); i++)
        if (strlen(pass[i]) == n && strncasecmp(pass[i], name, n) == 0)
            return true;
    if (fl->range && n == 13 && strncasecmp(name, "content-range", 13) == 0)
        return true;
    if (fl->dist->pass_amz_meta && n > 11 && strncasecmp(name, "x-amz-meta-", 11) == 0)
        return true;
    return false;
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

static void prod_abandon(void *arg);

static void on_head(void *arg, const struct origin_resp *r)
{
    struct fill *fl;
    struct obj_hdr hdrs[FILL_MAX_PASSED_HEADERS];
    char *owned[FILL_MAX_PASSED_HEADERS];
    unsigned nh = 0;
    int status = r->status;
    time_t now = time(NULL);
    struct obj *o;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
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
        obj_notify(o);
        return;
    }

    bool ok = status == 200 || (fl->range && (status == 206 || status == 416));
    if (!ok) {
        /* S3 errors: 404 NoSuchKey, 403 AccessDenied (also for a missing
         * key without s3:ListBucket); anything else is the origin's fault */
        int mapped = (status == 404 || status == 403) ? status : 502;
        if (mapped == 502)
            LOG_W("origin %s answered %d for \"%s\"", fl->dist->origin->name,
                  status, fl->s3_key);
        set_error(fl, mapped);
        unsigned neg = fill_negative_ttl(fl->dist, mapped);
        if (neg > 0 && !fl->head && !fl->range) {
            /* negative caching, as CloudFront's error caching: S3's 404
             * and 403 carry no freshness, so they get a short TTL of ours */
            o->negative = true;
            o->cacheable = true;
            o->transient = false;
            o->fd.storable = true;
            o->fd.source = FRESH_SRC_DEFAULT_TTL;
            o->fd.origin_lifetime = -1;
            o->fd.lifetime = o->fd.ttl = neg;
            o->fd.no_stale = true;
        }
        obj_notify(o);
        return;
    }

    fresh_resp_parse(&o->fresp, status, r->headers, r->nheaders);
    struct fresh_policy pol = fill_policy(fl->dist);
    if (fresh_decide(&o->fresp, &pol, fl->request_time, now, false, &o->fd) < 0)
        o->fd.storable = false;
    bool cacheable = !fl->head && !fl->range && status == 200 && o->fd.storable &&
                     (o->fd.ttl > 0 || o->fd.swr > 0 || o->fd.sie > 0 ||
                      o->fresp.has_etag || o->fresp.has_last_modified);
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
    if (r->content_length > (int64_t)fl->srv->conf->max_object_bytes)
        cacheable = false;
    if (cacheable) {
        /* room in the memory budget for the whole body (or the largest
         * object allowed when S3 does not say); without it the object
         * passes through, bounded by the transit window */
        uint64_t need = r->content_length >= 0 ? (uint64_t)r->content_length
                                               : fl->srv->conf->max_object_bytes;
        if (cache_inflight_reserve(fl->srv->cache, need))
            fl->reserved = need;
        else
            cacheable = false;
    }
    o->cacheable = cacheable;
    o->transient = !cacheable;
    int64_t len = r->content_length;
    if (status == 416) {
        /* our own short body replaces S3's XML; Content-Range stays */
        o->error_body = true;
        len = 0;
    }
    int rc = obj_set_headers(o, status, len, hdrs, nh);
    for (unsigned i = 0; i < nh; i++)
        free(owned[i]);
    if (rc < 0) {
        set_error(fl, 502);
        LOG_E("out of memory storing headers for \"%s\"", fl->s3_key);
    }
    if (rc == 0 && o->had_reader && o->nreaders == 0 && !o->transient &&
        (o->length < 0 || (uint64_t)o->length > OBJ_ORPHAN_FINISH_MAX)) {
        /* the client left before the head came; a large body is not
         * fetched for nobody (see obj_reader_fini) */
        prod_abandon(fl);
        return;
    }
    obj_notify(o);
}

static void on_body(void *arg, struct evbuffer *buf)
{
    struct fill *fl;
    struct obj *o;

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    o = fl->o;
    if (o->error_body) {
        size_t n = evbuffer_get_length(buf);
        fl->discarded += n;
        evbuffer_drain(buf, n);
        if (fl->discarded > FILL_MAX_ERROR_BODY) {
            origin_fetch_cancel(fl->fetch);
            fl->fetch = NULL;
            obj_complete(o);
            fill_free(fl);
        }
        return;
    }
    while (evbuffer_get_length(buf) > 0) {
        size_t room, hint;
        hint = o->length > 0 && (uint64_t)o->length > o->published
                   ? (size_t)((uint64_t)o->length - o->published)
                   : evbuffer_get_length(buf);
        uint8_t *w = obj_write_ptr(o, hint, &room);
        if (w == NULL) {
            LOG_E("out of memory filling \"%s\"", fl->s3_key);
            origin_fetch_cancel(fl->fetch);
            fl->fetch = NULL;
            obj_fail(o, ORIGIN_ERR_RESOURCES);
            fill_free(fl);
            return;
        }
        int n = evbuffer_remove(buf, w, room);
        if (n <= 0)
            break;
        obj_commit(o, (size_t)n);
    }
    if (o->cacheable && o->published > fl->srv->conf->max_object_bytes) {
        /* a body of unknown length outgrew the limit: pass it through */
        o->cacheable = false;
        if (o->nreaders <= 1)
            o->transient = true;
        if (o->nreaders == 0) {
            prod_abandon(fl);
            return;
        }
    }
    obj_notify(o);
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
            obj_complete(o);
        } else {
            LOG_W("fetch of \"%s\" failed after %llu bytes: %s", fl->s3_key,
                  (unsigned long long)o->published, err);
            if (o->state == OBJ_STREAMING && o->error_body)
                obj_complete(o);
            else if (o->state == OBJ_STREAMING)
                obj_fail(o, err);
        }
        fill_free(fl);
        return;
    }
    if (o->state == OBJ_STREAMING && !o->error_body && !fl->head && o->length >= 0 &&
        o->published != (uint64_t)o->length) {
        LOG_W("fetch of \"%s\": %llu of %lld bytes", fl->s3_key,
              (unsigned long long)o->published, (long long)o->length);
        obj_fail(o, ORIGIN_ERR_TRUNCATED);
        fill_free(fl);
        return;
    }
    if (o->state == OBJ_STREAMING)
        obj_complete(o);
    if (o->state == OBJ_COMPLETE && o->cacheable && (!o->error_body || o->negative)) {
        if (!cache_insert(fl->srv->cache, o))
            LOG_D("\"%s\" (%zu bytes) does not fit the memory cache", fl->s3_key, o->mem);
        /* write-through (disk.h says why); negative entries stay in memory */
        if (fl->srv->disk != NULL && !o->error_body)
            disk_store(fl->srv->disk, o);
    }
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

    CAST_OBJ_NOTNULL(fl, arg, FILL_MAGIC);
    if (fl->fetch) {
        origin_fetch_cancel(fl->fetch);
        fl->fetch = NULL;
    }
    if (fl->o->state == OBJ_FETCHING_HDRS || fl->o->state == OBJ_STREAMING)
        obj_fail(fl->o, "abandoned");
    fill_free(fl);
}

/* the process stops: end the fetch, fail the object for its readers */
static void fill_stop_now(struct server_task *t)
{
    struct fill *fl = (struct fill *)(void *)((char *)t - offsetof(struct fill, task));

    CHECK_OBJ_NOTNULL(fl, FILL_MAGIC);
    prod_abandon(fl);
}

static const struct obj_producer_ops fill_prod_ops = {
    .pause = prod_pause,
    .resume = prod_resume,
    .abandon = prod_abandon,
};

static const struct origin_cbs fill_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
};

struct obj *fill_start(struct server *s, const struct fill_req *req)
{
    struct fill *fl;
    struct obj *o;

    o = obj_new(req->cache_key, req->cache_key_len);
    if (o == NULL)
        return NULL;
    fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        obj_unref(o);
        return NULL;
    }
    fl->magic = FILL_MAGIC;
    fl->srv = s;
    fl->dist = req->dist;
    fl->o = o;
    fl->head = req->head;
    fl->range = req->range != NULL;
    fl->request_time = time(NULL);
    fl->fetch_ms = purge_clock_ms();
    o->fetch_ms = fl->fetch_ms;
    fl->s3_key = strdup(req->s3_key);
    if (fl->s3_key == NULL) {
        free(fl);
        obj_unref(o);
        return NULL;
    }
    server_task_track(s, &fl->task, SERVER_TASK_FILL, fill_stop_now);
    /* a HEAD or a range is never stored: its reader drives the fetch */
    o->transient = fl->head || fl->range;
    obj_ref(o); /* the fill's own */
    struct origin_req oreq = {
        .method = req->head ? "HEAD" : "GET",
        .key = req->s3_key,
        .query = req->query,
        .range = req->range,
    };
    if (req->reval != NULL) {
        obj_ref(req->reval);
        fl->reval = req->reval;
        req->reval->revalidating = true;
        oreq.if_none_match = obj_find_hdr(req->reval, "etag");
        oreq.if_modified_since = obj_find_hdr(req->reval, "last-modified");
    }
    fl->fetch = origin_fetch_start(server_origin(s, req->dist), &oreq, &fill_cbs, fl);
    if (fl->fetch == NULL) {
        fill_free(fl);
        obj_unref(o);
        return NULL;
    }
    obj_set_producer(o, &fill_prod_ops, fl);
    return o;
}

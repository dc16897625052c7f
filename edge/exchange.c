/*
 * exchange.c: the protocol-neutral request steps. See exchange.h.
 *
 * Lifecycle: exchange_new -> exchange_set_request -> exchange_start
 *   (route, method, key, lookup: a hit attaches a reader to the cached
 *   object, a miss starts a fill and attaches a reader to the new object,
 *   a refusal sets an error status at once) -> the connection pulls head
 *   and body, woken through wake_ev -> exchange_free (access log, release).
 */
#include "config.h"

#include "exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "disk.h"
#include "err.h"
#include "fill.h"
#include "fleet.h"
#include "chunk.h"
#include "forward.h"
#include "log.h"
#include "range.h"
#include "route.h"
#include "server.h"
#include "timeutil.h"
#include "uri.h"
#include "vas.h"

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct exchange *x;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(x, arg, EXCHANGE_MAGIC);
    x->ops->wake(x->conn);
}

/* reader notification: defer to the loop so the fill's stack unwinds first */
static void reader_cb(struct obj_reader *rd, void *arg)
{
    struct exchange *x;

    (void)rd;
    CAST_OBJ_NOTNULL(x, arg, EXCHANGE_MAGIC);
    event_active(x->wake_ev, EV_TIMEOUT, 0);
}

struct exchange *exchange_new(struct server *s, const struct exchange_ops *ops,
                              void *conn)
{
    struct exchange *x = calloc(1, sizeof(*x));

    if (x == NULL)
        return NULL;
    x->magic = EXCHANGE_MAGIC;
    x->srv = s;
    x->ops = ops;
    x->conn = conn;
    x->start_us = time_mono_us();
    x->wake_ev = event_new(s->base, -1, 0, wake_cb, x);
    if (x->wake_ev == NULL) {
        free(x);
        return NULL;
    }
    return x;
}

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        if (n > 0)
            memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Keep the precondition fields (RFC 9110 13.1) for evaluation against the
 * response; everything else of the request head is gone after the step. */
static int copy_conditionals(struct exchange *x, const struct http1_header *h, unsigned n)
{
    static const char *const names[] = {"if-match", "if-none-match", "if-modified-since",
                                        "if-unmodified-since", "if-range"};
    size_t total = 0;
    unsigned i, j;

    for (i = 0; i < n; i++)
        for (j = 0; j < ARRAY_LEN(names); j++)
            if (h[i].name_len == strlen(names[j]) &&
                strncasecmp(h[i].name, names[j], h[i].name_len) == 0)
                total += h[i].value_len + 1;
    if (total == 0)
        return 0;
    x->cond_blob = malloc(total);
    if (x->cond_blob == NULL)
        return EDGE_ENOMEM;
    char *p = x->cond_blob;
    for (i = 0; i < n; i++)
        for (j = 0; j < ARRAY_LEN(names); j++) {
            if (h[i].name_len != strlen(names[j]) ||
                strncasecmp(h[i].name, names[j], h[i].name_len) != 0)
                continue;
            if (j == 4) {
                /* If-Range: evaluated with the Range (RFC 9110 13.1.5) */
                if (x->if_range != NULL)
                    break;
                memcpy(p, h[i].value, h[i].value_len);
                p[h[i].value_len] = '\0';
                x->if_range = p;
                p += h[i].value_len + 1;
                continue;
            }
            if (x->ncond == ARRAY_LEN(x->cond))
                break; /* one field line each is what clients send */
            memcpy(p, h[i].value, h[i].value_len);
            p[h[i].value_len] = '\0';
            x->cond[x->ncond].name = names[j];
            x->cond[x->ncond].name_len = strlen(names[j]);
            x->cond[x->ncond].value = p;
            x->cond[x->ncond].value_len = h[i].value_len;
            x->ncond++;
            p += h[i].value_len + 1;
        }
    return 0;
}

int exchange_set_fields(struct exchange *x, const struct exchange_req *r,
                        const char *proto, const char *client)
{
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    x->method = r->method;
    x->method_str = dupn(r->method_str, r->method_len);
    x->host = dupn(r->host ? r->host : "", r->host ? r->host_len : 0);
    x->path = dupn(r->path ? r->path : "", r->path ? r->path_len : 0);
    if (r->query != NULL)
        x->query = dupn(r->query, r->query_len);
    if (r->range != NULL)
        x->range = dupn(r->range, r->range_len);
    x->proto = proto;
    snprintf(x->client, sizeof(x->client), "%s", client);
    if (!x->method_str || !x->host || !x->path || (r->query && !x->query) ||
        (r->range && !x->range))
        return EDGE_ENOMEM;
    /* the methods a distribution may forward keep their header fields
     * (GET and HEAD allocate nothing more) */
    bool fwd = r->method == HTTP1_M_OPTIONS || r->method == HTTP1_M_PUT ||
               r->method == HTTP1_M_POST || r->method == HTTP1_M_PATCH ||
               r->method == HTTP1_M_DELETE;
    if (fwd && forward_prepare(x, r) < 0)
        return EDGE_ENOMEM;
    return copy_conditionals(x, r->headers, r->nheaders);
}

int exchange_set_request(struct exchange *x, const struct http1_request *req,
                         const char *proto, const char *client)
{
    const struct http1_header *rg = http1_find(req->headers, req->nheaders, "range");
    struct exchange_req r = {
        .method = req->method,
        .method_str = req->method_str,
        .method_len = req->method_len,
        .host = req->host,
        .host_len = req->host_len,
        .path = req->path,
        .path_len = req->path_len,
        .query = req->query,
        .query_len = req->query_len,
        .range = rg ? rg->value : NULL,
        .range_len = rg ? rg->value_len : 0,
        .headers = req->headers,
        .nheaders = req->nheaders,
        .body = req->content_length > 0 || req->chunked,
        .body_length = req->chunked ? -1 : req->content_length,
    };
    return exchange_set_fields(x, &r, proto, client);
}

const char *exchange_cache_name(const struct exchange *x)
{
    switch (x->cache) {
    case XC_HIT: return "HIT";
    case XC_MISS: return "MISS";
    case XC_PASS: return "PASS";
    case XC_ERROR: return "ERROR";
    case XC_REFRESH: return "REFRESH_HIT";
    default: return "-";
    }
}

const char *exchange_xcache(const struct exchange *x)
{
    switch (x->cache) {
    case XC_HIT: return "Hit from s3edge";
    case XC_MISS: return "Miss from s3edge";
    case XC_PASS: return "Pass from s3edge";
    case XC_REFRESH: return "RefreshHit from s3edge";
    default: return NULL;
    }
}

static void set_error(struct exchange *x, int status, const char *text)
{
    x->status = status;
    x->err_text = text;
    x->cache = XC_ERROR;
}

static const char *error_text(int status)
{
    switch (status) {
    case 400: return "400 Bad Request\n";
    case 403: return "403 Forbidden\n";
    case 404: return "404 Not Found\n";
    case 405: return "405 Method Not Allowed\n";
    case 408: return "408 Request Timeout\n";
    case 413: return "413 Content Too Large\n";
    case 414: return "414 URI Too Long\n";
    case 416: return "416 Range Not Satisfiable\n";
    case 500: return "500 Internal Server Error\n";
    case 502: return "502 Bad Gateway\n";
    case 503: return "503 Service Unavailable\n";
    case 504: return "504 Gateway Timeout\n";
    default: return "error\n";
    }
}

static void attach(struct exchange *x, struct obj *o)
{
    obj_reader_init(&x->rd, o, reader_cb, x);
    x->reading = true;
    x->o = o; /* the reader's reference keeps it */
    obj_unref(o);
}

static void detach(struct exchange *x)
{
    obj_reader_fini(&x->rd); /* may free x->o */
    x->reading = false;
    x->o = NULL;
}

/* The first body byte the client asks for, to fetch its block first. */
static uint64_t first_wanted(const struct exchange *x)
{
    if (x->range == NULL || x->method != HTTP1_M_GET)
        return 0;
    return range_first_hint(x->range, strlen(x->range));
}

/* Keep the keys for a later fill: a disk hit found bad, a joiner that
 * must fetch on its own. */
static int keep_keys(struct exchange *x, const char *ckey, size_t kl, const char *key)
{
    if (x->ckey != NULL)
        return 0;
    x->ckey = dupn(ckey, kl);
    x->ckey_len = kl;
    x->s3key = strdup(key);
    return x->ckey != NULL && x->s3key != NULL ? 0 : EDGE_ENOMEM;
}

/* The fill request of this exchange's object, from the keys kept. */
static struct fill_req kept_fill_req(const struct exchange *x)
{
    struct fill_req fr = {
        .dist = x->dist,
        .cache_key = x->ckey,
        .cache_key_len = x->ckey_len,
        .s3_key = x->s3key,
        .path = x->path,
        .query = x->query_sel,
        .first = first_wanted(x),
    };
    return fr;
}

/*
 * A disk hit's headers are in (or its load failed before them): decide as
 * for a memory hit. Fresh: serve it; within stale-while-revalidate: serve
 * it and refresh it in the background; stale: revalidate it with a
 * conditional GET (RFC 9111 4.3.1), keeping it for a 304 or
 * stale-if-error. A file found bad: fetch from the origin, the client
 * never knows.
 */
static void disk_decide(struct exchange *x)
{
    struct obj *o = x->o, *n;
    struct fill_req fr = kept_fill_req(x);
    uint64_t now_ms = time_mono_ms();

    enum fresh_state st = FRESH_STALE;
    struct obj *valid = NULL;
    if (o->state != OBJ_FAILED || o->status != 0) {
        /* invalidation rules, as for a memory hit (exchange_start) */
        st = obj_fresh_state(o, now_ms);
        obj_ref(o);
        valid = fleet_filter(x->srv, x->dist, x->s3key, o, &st);
        if (valid == NULL)
            disk_forget(x->srv->disk, o);
        else
            obj_unref(valid); /* the reader holds it */
    }
    if (valid == NULL) {
        /* a bad file, or an invalidated one: from the origin */
        detach(x);
        x->from_disk = false;
        fr.head = x->method == HTTP1_M_HEAD;
        fr.index = !fr.head;
        n = fill_start(x->srv, &fr);
        if (n == NULL) {
            set_error(x, 503, error_text(503));
            return;
        }
        attach(x, n);
        return;
    }
    if (st != FRESH_STALE) {
        if (st == FRESH_STALE_SWR && !o->revalidating) {
            fr.reval = o;
            n = fill_start(x->srv, &fr);
            if (n != NULL)
                obj_unref(n); /* the fill holds its own */
        }
        x->cache = XC_HIT;
        x->stale_served = st == FRESH_STALE_SWR;
        disk_count_hit(x->srv->disk);
        /* a block the file lost comes from the origin instead */
        fill_source_for(x->srv, o, x->dist, x->s3key, x->query_sel,
                        x->dist->origin->type == CONF_ORIGIN_HTTP ? x->path : NULL);
        return;
    }
    obj_ref(o);
    x->stale = o;
    detach(x);
    fr.reval = o;
    n = fill_start(x->srv, &fr);
    if (n == NULL) {
        set_error(x, 503, error_text(503));
        return;
    }
    attach(x, n);
}

/* The part of the query the distribution's policy keeps: none, all, or
 * the allowed parameters in the client's order (CloudFront's allow list;
 * names compared as sent, case-sensitive). 0 or EDGE_ENOMEM. */
static int select_query(struct exchange *x)
{
    const struct conf_distribution *d = x->dist;

    if (x->query == NULL || x->query[0] == '\0' || d->query == CONF_QUERY_IGNORE)
        return 0;
    size_t qlen = strlen(x->query);
    x->query_sel = malloc(qlen + 1);
    if (x->query_sel == NULL)
        return EDGE_ENOMEM;
    if (d->query == CONF_QUERY_ALL) {
        memcpy(x->query_sel, x->query, qlen + 1);
        return 0;
    }
    char *out = x->query_sel;
    const char *p = x->query;
    while (*p != '\0') {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        for (size_t i = 0; i < d->nquery_keys; i++) {
            if (strlen(d->query_keys[i]) == nlen && memcmp(d->query_keys[i], p, nlen) == 0) {
                if (out != x->query_sel)
                    *out++ = '&';
                memcpy(out, p, len);
                out += len;
                break;
            }
        }
        p += len;
        if (*p == '&')
            p++;
    }
    *out = '\0';
    if (out == x->query_sel) {
        free(x->query_sel);
        x->query_sel = NULL;
    }
    return 0;
}

void exchange_start(struct exchange *x)
{
    char key[URI_KEY_MAX + 1];
    char ckey[URI_KEY_MAX + 512];
    int n;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    x->srv->stats.requests++;

    x->dist = route_find(x->srv->conf, x->host, strlen(x->host));
    if (x->dist == NULL) {
        set_error(x, 404, "404 Not Found: no distribution for this host\n");
        return;
    }
    if (x->method != HTTP1_M_GET && x->method != HTTP1_M_HEAD) {
        if (forward_allowed(x->dist, x->method)) {
            /* never cached: to the origin and back (forward.c) */
            struct obj *fo = forward_start(x);
            if (fo != NULL)
                attach(x, fo);
            return;
        }
        set_error(x, 405, error_text(405));
        x->allow_hdr = true;
        return;
    }
    n = uri_path_to_key(x->path, strlen(x->path), x->dist->path_prefix,
                        x->dist->key_prefix ? x->dist->key_prefix : "", key, sizeof(key));
    if (n == EDGE_ENOENT) {
        set_error(x, 404, error_text(404));
        return;
    }
    if (n == EDGE_ETOOLONG) {
        set_error(x, 414, error_text(414));
        return;
    }
    if (n < 0) {
        set_error(x, 400, error_text(400));
        return;
    }
    if (select_query(x) < 0) {
        set_error(x, 503, error_text(503));
        return;
    }
    const char *query = x->query_sel;
    /* the cache key: distribution, key, and the query when it selects */
    int kl = snprintf(ckey, sizeof(ckey), "%s\n%s%s%s", x->dist->name, key,
                      query ? "?" : "", query ? query : "");
    if (kl < 0 || (size_t)kl >= sizeof(ckey)) {
        set_error(x, 414, error_text(414));
        return;
    }
    struct fill_req fr = {
        .dist = x->dist,
        .cache_key = ckey,
        .cache_key_len = (size_t)kl,
        .s3_key = key,
        .path = x->path,
        .query = query,
        .first = first_wanted(x),
    };
    uint64_t now_ms = time_mono_ms();
    struct obj *hit = cache_lookup(x->srv->cache, ckey, (size_t)kl, now_ms);
    if (hit != NULL && hit->state == OBJ_FETCHING_HDRS) {
        /* someone fetches it right now: wait for its headers instead of
         * fetching too (request coalescing); the keys are kept in case
         * the answer is not for sharing */
        if (keep_keys(x, ckey, (size_t)kl, key) < 0) {
            obj_unref(hit);
            set_error(x, 503, error_text(503));
            return;
        }
        x->joined = true;
        attach(x, hit);
        return;
    }
    enum fresh_state st = hit ? obj_fresh_state(hit, now_ms) : FRESH_STALE;
    bool in_memory = hit != NULL;
    /* invalidation rules (DESIGN.md, decision 6): a miss or stale */
    hit = fleet_filter(x->srv, x->dist, key, hit, &st);
    /* not in memory: on disk? (a copy invalidated in memory is on disk no
     * better) */
    if (!in_memory && x->srv->disk != NULL &&
        (hit = disk_lookup(x->srv->disk, ckey, (size_t)kl, now_ms)) != NULL) {
        /* being loaded from disk: exchange_head_ready decides when its
         * headers are in (disk_decide) */
        if (keep_keys(x, ckey, (size_t)kl, key) < 0) {
            obj_unref(hit);
            set_error(x, 503, error_text(503));
            return;
        }
        x->from_disk = true;
        x->disk_pending = true;
        attach(x, hit);
        return;
    }
    if (hit != NULL && (st != FRESH_STALE || hit->negative)) {
        if (st == FRESH_STALE_SWR && !hit->revalidating) {
            /* RFC 5861 3: serve the stale copy now, refresh it in the
             * background (one revalidation per object at a time) */
            fr.reval = hit;
            struct obj *bg = fill_start(x->srv, &fr);
            if (bg != NULL)
                obj_unref(bg); /* the fill holds its own */
            fr.reval = NULL;
        }
        x->cache = XC_HIT;
        x->stale_served = st == FRESH_STALE_SWR;
        attach(x, hit);
        return;
    }
    if (hit != NULL) {
        /* stale: revalidate with a conditional GET (RFC 9111 4.3.1); the
         * stored copy is kept for a 304 or for stale-if-error */
        fr.reval = hit;
        x->stale = hit;
    } else {
        fr.head = x->method == HTTP1_M_HEAD;
        fr.index = !fr.head;
    }
    struct obj *o = fill_start(x->srv, &fr);
    if (o == NULL) {
        set_error(x, 503, error_text(503));
        return;
    }
    attach(x, o);
}

/* If-Range (RFC 9110 13.1.5): the Range applies only to the version the
 * client has: a strong ETag match, or a date equal to Last-Modified. */
static bool if_range_ok(const struct exchange *x, const struct obj *o)
{
    const char *v = x->if_range;

    if (v == NULL)
        return true;
    if (v[0] == '"' || (v[0] == 'W' && v[1] == '/')) {
        const char *etag = obj_find_hdr(o, "etag");
        return v[0] == '"' && etag != NULL && etag[0] == '"' && strcmp(v, etag) == 0;
    }
    time_t t;
    return o->fresp.has_last_modified && http_date_parse(v, strlen(v), &t) == 0 &&
           t == o->fresp.last_modified;
}

static struct chunk *text_chunk(const char *p, size_t n)
{
    struct chunk *c = chunk_new(n ? n : 1);

    if (c != NULL && n > 0) {
        memcpy(c->data, p, n);
        chunk_publish(c, n);
    }
    return c;
}

/* The response to a Range the object can answer: 206 with one range, 206
 * multipart/byteranges, or 416. Returns false when out of memory (the
 * whole body is sent instead). */
static bool answer_range(struct exchange *x, struct obj *o)
{
    unsigned max = x->srv->conf->max_ranges, n = 0;
    uint64_t len = (uint64_t)o->length;

    x->spans = calloc(max, sizeof(*x->spans));
    if (x->spans == NULL)
        return false;
    enum range_result r = range_parse(x->range, strlen(x->range), len, max, x->spans, &n);
    if (r == RANGE_IGNORE)
        return true;
    if (r == RANGE_UNSATISFIABLE) {
        x->status = 416;
        x->err_text = error_text(416);
        snprintf(x->content_range, sizeof(x->content_range), "bytes */%llu",
                 (unsigned long long)len);
        x->xh[x->nxh++] = (struct obj_hdr){"Content-Range", x->content_range};
        return true;
    }
    x->nspans = n;
    x->status = 206;
    if (n == 1) {
        struct range_span *sp = &x->spans[0];
        x->body_mode = XB_RANGE;
        x->body_len = (int64_t)(sp->last - sp->first + 1);
        snprintf(x->content_range, sizeof(x->content_range), "bytes %llu-%llu/%llu",
                 (unsigned long long)sp->first, (unsigned long long)sp->last,
                 (unsigned long long)len);
        x->xh[x->nxh++] = (struct obj_hdr){"Content-Range", x->content_range};
        obj_reader_seek(&x->rd, sp->first, sp->last + 1);
        return true;
    }
    /* multipart/byteranges (RFC 9110 14.6): each part with the object's
     * Content-Type and its Content-Range, then the closing delimiter */
    char boundary[40], buf[512];
    const char *ctype = obj_find_hdr(o, "content-type");
    snprintf(boundary, sizeof(boundary), "s3edge%016llx",
             (unsigned long long)(time_mono_us() ^ (uintptr_t)x));
    x->part_hdr = calloc(n + 1, sizeof(*x->part_hdr));
    if (x->part_hdr == NULL)
        return false;
    uint64_t total = 0;
    for (unsigned i = 0; i <= n; i++) {
        int m;
        if (i < n) {
            m = snprintf(buf, sizeof(buf),
                         "%s--%s\r\n%s%s%sContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                         i == 0 ? "" : "\r\n", boundary, ctype ? "Content-Type: " : "",
                         ctype ? ctype : "", ctype ? "\r\n" : "",
                         (unsigned long long)x->spans[i].first,
                         (unsigned long long)x->spans[i].last, (unsigned long long)len);
            total += x->spans[i].last - x->spans[i].first + 1;
        } else {
            m = snprintf(buf, sizeof(buf), "\r\n--%s--\r\n", boundary);
        }
        if (m < 0 || (size_t)m >= sizeof(buf) || (x->part_hdr[i] = text_chunk(buf, (size_t)m)) == NULL)
            return false;
        total += (uint64_t)m;
    }
    x->body_mode = XB_MULTI;
    x->body_len = (int64_t)total;
    snprintf(x->content_type, sizeof(x->content_type), "multipart/byteranges; boundary=%s",
             boundary);
    x->xh[x->nxh++] = (struct obj_hdr){"Content-Type", x->content_type};
    return true;
}

/* Back to the whole body after a failed answer_range. */
static void whole_body(struct exchange *x)
{
    if (x->part_hdr != NULL) {
        for (unsigned i = 0; i <= x->nspans; i++)
            if (x->part_hdr[i] != NULL)
                chunk_unref(x->part_hdr[i]);
        free(x->part_hdr);
        x->part_hdr = NULL;
    }
    x->nspans = 0;
    x->nxh = 0;
    x->status = 200;
    x->err_text = NULL;
    x->body_mode = XB_WHOLE;
    x->body_len = x->o->length;
    obj_reader_seek(&x->rd, 0, UINT64_MAX);
}

bool exchange_head_ready(struct exchange *x)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    if (x->status != 0)
        return true;
    o = x->o;
    AN(o);
    if (o->state == OBJ_FETCHING_HDRS) {
        obj_reader_park(&x->rd);
        return false;
    }
    if (x->disk_pending) {
        x->disk_pending = false;
        disk_decide(x);
        if (x->status != 0)
            return true;
        o = x->o;
        if (o->state == OBJ_FETCHING_HDRS) {
            obj_reader_park(&x->rd);
            return false;
        }
    }
    if (x->joined) {
        x->joined = false;
        if (o->transient && !o->error_body && o->status != 304) {
            /* the answer is not for sharing (not cacheable, no room):
             * fetch on our own, as Varnish's hit-for-miss */
            struct fill_req fr = kept_fill_req(x);
            fr.head = x->method == HTTP1_M_HEAD;
            detach(x);
            struct obj *n = fill_start(x->srv, &fr);
            if (n == NULL) {
                set_error(x, 503, error_text(503));
                return true;
            }
            attach(x, n);
            obj_reader_park(&x->rd);
            return false;
        }
    }
    if (x->stale != NULL) {
        struct obj *st = x->stale;
        bool use_stale = o->not_modified;
        if (!use_stale && o->error_body && o->status >= 500) {
            /* RFC 5861 4: stale-if-error */
            use_stale = fresh_stale_if_error(&st->fd, obj_resident(st, time_mono_ms()));
            x->stale_served = use_stale;
        }
        if (use_stale) {
            bool refreshed = o->not_modified;
            obj_reader_fini(&x->rd); /* may free o */
            x->reading = false;
            x->stale = NULL;
            x->revalidated = refreshed;
            x->cache = refreshed ? XC_REFRESH : XC_HIT;
            attach(x, st); /* takes over the reference x->stale held */
            o = x->o;
        }
    }
    if (o->state == OBJ_FAILED && o->status == 0) {
        set_error(x, 502, error_text(502));
        return true;
    }
    x->status = o->status;
    x->body_len = o->length;
    if (o->error_body) {
        x->err_text = error_text(o->status);
        if (x->cache != XC_HIT) /* a cached 404/403 is a hit */
            x->cache = XC_ERROR;
        else
            x->srv->stats.hits++;
        return true;
    }
    if (x->ncond > 0 && o->status == 200 && x->fwd == NULL) {
        /* the client's preconditions against what we serve (RFC 9110
         * 13.2: evaluated by the cache for a stored response), before
         * the Range (13.2.2) */
        const char *etag = obj_find_hdr(o, "etag");
        struct fresh_validators v = {
            .etag = etag,
            .etag_len = etag ? strlen(etag) : 0,
            .has_last_modified = o->fresp.has_last_modified,
            .last_modified = o->fresp.last_modified,
        };
        enum fresh_cond c = fresh_cond_eval(x->method, x->cond, x->ncond, &v);
        if (c == FRESH_COND_NOT_MODIFIED) {
            x->status = 304;
        } else if (c == FRESH_COND_PRECONDITION_FAILED) {
            x->status = 412;
            x->err_text = "412 Precondition Failed\n";
        }
    }
    if (x->status == 200 && o->length >= 0 && x->fwd == NULL) {
        /* RFC 9110 14.3: a cache answers ranges of what it has; Range on
         * anything but GET is ignored (14.2) (a forwarded answer is the
         * origin's to describe) */
        x->xh[x->nxh++] = (struct obj_hdr){"Accept-Ranges", "bytes"};
        if (x->range != NULL && x->method == HTTP1_M_GET && if_range_ok(x, o) &&
            !answer_range(x, o)) {
            whole_body(x);
            x->xh[x->nxh++] = (struct obj_hdr){"Accept-Ranges", "bytes"};
        }
    }
    x->body_left = x->body_len >= 0 ? (uint64_t)x->body_len : 0;
    if (x->cache == XC_HIT && !x->from_disk && x->status != 416 && x->status != 412 &&
        x->status != 304) {
        /* a stored object without the blocks this response needs is a
         * miss for them (a disk load brings them all) */
        bool all = true;
        if (x->body_mode == XB_WHOLE)
            all = obj_span_present(o, 0, UINT64_MAX);
        for (unsigned i = 0; i < x->nspans && all; i++)
            all = obj_span_present(o, x->spans[i].first, x->spans[i].last + 1);
        if (!all && !x->stale_served)
            x->cache = XC_MISS;
    }
    if (x->cache == XC_HIT || x->cache == XC_REFRESH) {
        x->srv->stats.hits++;
    } else {
        /* a body we will not store passes; a HEAD miss is a miss even
         * though nothing is stored from it */
        bool pass = o->transient && x->method != HTTP1_M_HEAD;
        x->cache = pass ? XC_PASS : XC_MISS;
        if (x->cache == XC_MISS)
            x->srv->stats.misses++;
        else
            x->srv->stats.passes++;
    }
    return true;
}

int64_t exchange_body_length(const struct exchange *x)
{
    if (x->status == 304)
        return -1; /* RFC 9110 15.4.5: no Content-Length of the 200 */
    if (x->err_text != NULL)
        return (int64_t)strlen(x->err_text);
    if (x->o == NULL)
        return 0;
    return x->body_len;
}

bool exchange_has_body(const struct exchange *x)
{
    return x->method != HTTP1_M_HEAD && x->status != 204 && x->status != 304;
}

/* the reader waits for a block: give its fetch reader_timeout, then hand
 * the block over to a new fetch once, then give up */
static void rt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct exchange *x;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(x, arg, EXCHANGE_MAGIC);
    if (!x->reading || !x->rd.waiting)
        return;
    uint64_t timeout = x->srv->conf->reader_timeout_ms;
    uint64_t waited = time_mono_ms() - x->rd.wait_since_ms;
    if (waited + 5 < timeout) {
        struct timeval tv = {(time_t)((timeout - waited) / 1000),
                             (suseconds_t)((timeout - waited) % 1000) * 1000};
        evtimer_add(x->rt_ev, &tv);
        return;
    }
    if (!x->rt_expired && obj_reader_handover(&x->rd)) {
        LOG_W("block %u of \"%s\": no progress for %llu ms, fetching it again",
              x->rd.wait_blk, x->o->key, (unsigned long long)waited);
        x->rt_expired = true;
        return;
    }
    LOG_W("block %u of \"%s\": no progress for %llu ms, giving up", x->rd.wait_blk, x->o->key,
          (unsigned long long)waited);
    x->rt_expired = true;
    x->rt_gave_up = true; /* exchange_body_peek: ERROR */
    event_active(x->wake_ev, EV_TIMEOUT, 0);
}

static void rt_arm(struct exchange *x)
{
    if (x->rt_ev == NULL) {
        x->rt_ev = evtimer_new(x->srv->base, rt_cb, x);
        if (x->rt_ev == NULL)
            return;
    }
    if (evtimer_pending(x->rt_ev, NULL))
        return;
    uint64_t t = x->srv->conf->reader_timeout_ms;
    struct timeval tv = {(time_t)(t / 1000), (suseconds_t)(t % 1000) * 1000};
    evtimer_add(x->rt_ev, &tv);
}

static enum obj_read_status body_peek_obj(struct exchange *x, struct chunk **c, size_t *off,
                                          size_t *len)
{
    if (x->rt_gave_up)
        return OBJ_READ_ERROR;
    enum obj_read_status r = obj_reader_peek(&x->rd, c, off, len);
    if (r == OBJ_READ_WAIT && x->rd.waiting)
        rt_arm(x);
    return r;
}

enum obj_read_status exchange_body_peek(struct exchange *x, struct chunk **c, size_t *off,
                                        size_t *len)
{
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    if (x->body_mode != XB_MULTI)
        return body_peek_obj(x, c, off, len);
    for (;;) {
        if (x->in_part_data) {
            enum obj_read_status r = body_peek_obj(x, c, off, len);
            if (r != OBJ_READ_EOF)
                return r;
            x->in_part_data = false;
            x->part++;
            x->part_off = 0;
            continue;
        }
        struct chunk *h = x->part_hdr[x->part];
        if (x->part_off < chunk_len(h)) {
            *c = h;
            *off = x->part_off;
            *len = chunk_len(h) - x->part_off;
            return OBJ_READ_DATA;
        }
        if (x->part == x->nspans)
            return OBJ_READ_EOF;
        x->in_part_data = true;
        obj_reader_seek(&x->rd, x->spans[x->part].first, x->spans[x->part].last + 1);
    }
}

void exchange_body_advance(struct exchange *x, size_t n)
{
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    if (x->body_mode == XB_MULTI && !x->in_part_data)
        x->part_off += n;
    else
        obj_reader_advance(&x->rd, n);
    if (x->body_len >= 0) {
        assert_always(n <= x->body_left);
        x->body_left -= n;
    }
}

bool exchange_body_ends(const struct exchange *x, size_t n)
{
    return x->body_len >= 0 && x->body_left == n;
}

long exchange_age(const struct exchange *x)
{
    if ((x->cache != XC_HIT && x->cache != XC_REFRESH) || x->o == NULL)
        return -1;
    int64_t resident = obj_resident(x->o, time_mono_ms());
    /* RFC 9111 4.2.3 current_age, or residence for our own negative entries */
    int64_t age = x->o->negative ? resident : fresh_age(&x->o->fd, resident);
    return age > 0 ? (long)age : 0;
}

bool exchange_pass_header(const struct exchange *x, const struct obj_hdr *h)
{
    static const char *const keep304[] = {"etag", "last-modified", "cache-control",
                                          "expires"};
    if (x->status == 304) {
        for (size_t i = 0; i < ARRAY_LEN(keep304); i++)
            if (strcasecmp(h->name, keep304[i]) == 0)
                return true;
        return false;
    }
    if (x->err_text != NULL)
        return false; /* a 416's Content-Range is one of ours (xh) */
    if (x->body_mode == XB_MULTI && strcasecmp(h->name, "content-type") == 0)
        return false; /* it goes into the parts */
    return true;
}

/* logfmt value: quoted, with quotes, backslashes and controls escaped */
static int quote(char *out, size_t cap, const char *s)
{
    size_t j = 0;

    if (cap < 3)
        return 0;
    out[j++] = '"';
    for (; *s && j + 5 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[j++] = '\\';
            out[j++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            j += (size_t)snprintf(out + j, cap - j, "\\x%02x", ch);
        } else {
            out[j++] = (char)ch;
        }
    }
    out[j++] = '"';
    out[j] = '\0';
    return (int)j;
}

static void access_log(struct exchange *x)
{
    char line[4096], ts[32], path[2048], host[300];
    char full[1800];

    if (!log_access_enabled())
        return;
    time_iso8601_ms(ts, sizeof(ts));
    snprintf(full, sizeof(full), "%s%s%s", x->path ? x->path : "",
             x->query ? "?" : "", x->query ? x->query : "");
    quote(path, sizeof(path), full);
    quote(host, sizeof(host), x->host ? x->host : "");
    double ms = (double)(time_mono_us() - x->start_us) / 1000.0;
    int n = snprintf(line, sizeof(line),
                     "time=%s client=%s proto=%s method=%s host=%s path=%s status=%d "
                     "bytes=%llu cache=%s dur_ms=%.3f%s",
                     ts, x->client, x->proto ? x->proto : "-",
                     x->method_str ? x->method_str : "-", host, path, x->status,
                     (unsigned long long)x->bytes_sent, exchange_cache_name(x), ms,
                     x->body_incomplete ? " incomplete=1" : "");
    if (n > 0)
        log_access(line, n < (int)sizeof(line) ? n : (int)sizeof(line) - 1);
}

void exchange_free(struct exchange *x)
{
    if (x == NULL)
        return;
    CHECK_OBJ(x, EXCHANGE_MAGIC);
    if (x->status != 0)
        access_log(x);
    if (x->status >= 500)
        x->srv->stats.errors++;
    x->srv->stats.bytes_out += x->bytes_sent;
    if (x->reading)
        obj_reader_fini(&x->rd);
    forward_free(x);
    if (x->stale)
        obj_unref(x->stale);
    if (x->part_hdr != NULL) {
        for (unsigned i = 0; i <= x->nspans; i++)
            if (x->part_hdr[i] != NULL)
                chunk_unref(x->part_hdr[i]);
        free(x->part_hdr);
    }
    free(x->spans);
    if (x->rt_ev != NULL)
        event_free(x->rt_ev);
    free(x->cond_blob);
    free(x->ckey);
    free(x->s3key);
    event_free(x->wake_ev);
    free(x->method_str);
    free(x->host);
    free(x->path);
    free(x->query);
    free(x->query_sel);
    free(x->range);
    x->magic = 0;
    free(x);
}

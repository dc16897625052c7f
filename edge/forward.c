/*
 * forward.c: forwarded (uncached) requests. See forward.h.
 *
 * Lifecycle: forward_prepare (from exchange_set_fields: header fields
 * copied) -> forward_start (origin fetch started, transient response
 * object returned for the exchange's reader) -> the request body flows
 * forward_body_in* -> forward_body_end while the origin's answer flows
 * on_head -> on_body* -> on_done into the object -> forward_free (from
 * exchange_free). Either side may end first: an origin that answers
 * before the body is complete ends the body (the rest is dropped, an
 * HTTP/1.1 connection closes after the response); a client whose reader
 * leaves abandons the fetch (the origin connection is dropped).
 *
 * Backpressure: the connection hands body bytes only while the origin
 * fetch has room (origin_fetch_body_room) and is woken when it drains;
 * the answer is a transient object, so a slow client pauses the fetch.
 */
#include "config.h"

#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "cache.h"
#include "err.h"
#include "exchange.h"
#include "fleet.h"
#include "log.h"
#include "origin.h"
#include "server.h"
#include "timeutil.h"
#include "uri.h"
#include "vas.h"

/* Header fields forwarded either way, at most. */
#define FWD_MAX_HEADERS 64

struct fwd {
    unsigned magic;
#define FWD_MAGIC 0x66776431U
    struct exchange *x;
    struct http1_header hdrs[FWD_MAX_HEADERS]; /* into blob */
    unsigned nhdrs;
    char *blob;
    bool body;          /* the client sends a body */
    int64_t clen;       /* its announced length, -1: unknown */
    uint64_t got;       /* body bytes received */
    bool taking;        /* body bytes still go to the origin */
    bool unsafe;        /* PUT, POST, PATCH, DELETE: invalidates */
    char key[URI_KEY_MAX + 1];
    struct origin_fetch *fetch;
    struct obj *o;      /* the answer (our reference) */
    struct obj_writer w; /* writing the answer's body, once its head is in */
    bool writing;
    uint64_t wpos;      /* answer body bytes written */
    uint64_t discarded; /* body bytes dropped */
};

static const char *method_name(enum http1_method m)
{
    switch (m) {
    case HTTP1_M_OPTIONS: return "OPTIONS";
    case HTTP1_M_PUT: return "PUT";
    case HTTP1_M_POST: return "POST";
    case HTTP1_M_PATCH: return "PATCH";
    case HTTP1_M_DELETE: return "DELETE";
    default: return NULL;
    }
}

bool forward_allowed(const struct conf_distribution *d, enum http1_method m)
{
    switch (m) {
    case HTTP1_M_OPTIONS: return d->methods != CONF_METHODS_GET_HEAD;
    case HTTP1_M_PUT:
    case HTTP1_M_POST:
    case HTTP1_M_PATCH:
    case HTTP1_M_DELETE: return d->methods == CONF_METHODS_ALL;
    default: return false;
    }
}

static bool name_is(const char *n, size_t len, const char *s)
{
    return strlen(s) == len && strncasecmp(n, s, len) == 0;
}

/* Fields that describe one hop (RFC 9110 7.6.1), that we set ourselves,
 * or that must not reach an origin: never forwarded. */
static bool hop_field(const char *n, size_t len)
{
    static const char *const hop[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive",
        "proxy-connection", "te", "trailer", "upgrade", "expect", "proxy-authorization",
        "authorization", "http2-settings", "range",
    };
    if (len > 0 && n[0] == ':')
        return true;
    for (size_t i = 0; i < ARRAY_LEN(hop); i++)
        if (name_is(n, len, hop[i]))
            return true;
    return false;
}

/* An S3 origin gets the fields S3 reads on writes and preflights; its
 * x-amz-* fields are signed (the signer's own are ours). A plain origin
 * gets every end-to-end field. */
static bool forward_field(const struct conf_origin *co, const char *n, size_t len)
{
    static const char *const s3[] = {
        "content-type", "content-encoding", "content-language", "content-disposition",
        "content-md5", "cache-control", "expires", "if-match", "if-none-match",
        "if-modified-since", "if-unmodified-since", "origin", "access-control-request-method",
        "access-control-request-headers",
    };
    if (hop_field(n, len))
        return false;
    if (co->type == CONF_ORIGIN_HTTP)
        return true;
    if (len > 6 && strncasecmp(n, "x-amz-", 6) == 0)
        return !name_is(n, len, "x-amz-date") && !name_is(n, len, "x-amz-content-sha256") &&
               !name_is(n, len, "x-amz-security-token");
    for (size_t i = 0; i < ARRAY_LEN(s3); i++)
        if (name_is(n, len, s3[i]))
            return true;
    return false;
}

/* The origin's answer: everything end-to-end but S3's request ids. */
static bool answer_field(const char *n, size_t len)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
        "upgrade", "content-length", "date", "server", "x-amz-request-id", "x-amz-id-2",
    };
    for (size_t i = 0; i < ARRAY_LEN(drop); i++)
        if (name_is(n, len, drop[i]))
            return false;
    return true;
}

int forward_prepare(struct exchange *x, const struct exchange_req *r)
{
    struct fwd *fw;
    size_t total = 0;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    AZ(x->fwd);
    fw = calloc(1, sizeof(*fw));
    if (fw == NULL)
        return EDGE_ENOMEM;
    fw->magic = FWD_MAGIC;
    fw->x = x;
    x->fwd = fw;
    fw->body = r->body;
    fw->clen = r->body ? r->body_length : 0;
    fw->unsafe = r->method != HTTP1_M_OPTIONS;
    /* the fields are copied now (they point into the connection's
     * input); which ones go depends on the origin, chosen at start */
    for (unsigned i = 0; i < r->nheaders; i++)
        if (!hop_field(r->headers[i].name, r->headers[i].name_len))
            total += r->headers[i].name_len + r->headers[i].value_len;
    if (total == 0)
        return 0;
    fw->blob = malloc(total);
    if (fw->blob == NULL)
        return EDGE_ENOMEM;
    char *p = fw->blob;
    for (unsigned i = 0; i < r->nheaders && fw->nhdrs < FWD_MAX_HEADERS; i++) {
        const struct http1_header *h = &r->headers[i];
        if (hop_field(h->name, h->name_len))
            continue;
        struct http1_header *d = &fw->hdrs[fw->nhdrs++];
        memcpy(p, h->name, h->name_len);
        d->name = p;
        d->name_len = h->name_len;
        p += h->name_len;
        memcpy(p, h->value, h->value_len);
        d->value = p;
        d->value_len = h->value_len;
        p += h->value_len;
    }
    return 0;
}

static void set_error(struct exchange *x, int status, const char *text)
{
    x->status = status;
    x->err_text = text;
    x->cache = XC_ERROR;
}

static void wake(struct fwd *fw)
{
    event_active(fw->x->wake_ev, EV_TIMEOUT, 0);
}

static void writer_remove(struct fwd *fw)
{
    if (fw->writing) {
        obj_writer_remove(fw->o, &fw->w);
        fw->writing = false;
    }
}

/* End the origin side early: an answer of ours (`status`) when the
 * origin's has not begun, else a cut response. */
static void fwd_stop(struct fwd *fw, int status, const char *why)
{
    struct obj *o = fw->o;

    fw->taking = false;
    if (fw->fetch != NULL) {
        origin_fetch_cancel(fw->fetch);
        fw->fetch = NULL;
    }
    if (o == NULL)
        return;
    writer_remove(fw);
    if (o->state == OBJ_FETCHING_HDRS) {
        o->error_body = true;
        if (obj_set_headers(o, status, 0, NULL, 0) < 0)
            WRONG("obj_set_headers without headers cannot fail");
        obj_complete(o);
    } else if (o->state == OBJ_STREAMING) {
        obj_fail(o, why);
    }
}

/* ------------------------------------------------------------ origin side */

static const struct obj_writer_ops fwd_writer_ops;

static void on_head(void *arg, const struct origin_resp *r)
{
    struct fwd *fw;
    struct obj_hdr hdrs[FWD_MAX_HEADERS];
    char *owned[FWD_MAX_HEADERS];
    unsigned nh = 0;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    struct exchange *x = fw->x;
    struct obj *o = fw->o;
    o->date = time(NULL);
    o->resp_mono_ms = time_mono_ms();
    for (unsigned i = 0; i < r->nheaders && nh < FWD_MAX_HEADERS; i++) {
        const struct http1_header *h = &r->headers[i];
        if (!answer_field(h->name, h->name_len))
            continue;
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
    int rc = obj_set_headers(o, r->status, r->content_length, hdrs, nh);
    for (unsigned i = 0; i < nh; i++)
        free(owned[i]);
    if (rc < 0) {
        LOG_E("out of memory storing the headers of a %s answer", x->method_str);
        fwd_stop(fw, 502, ORIGIN_ERR_RESOURCES);
        return;
    }
    /* the body streams in order; a slow client pauses the fetch (the
     * transit window of a transient object) */
    obj_writer_add(o, &fw->w, &fwd_writer_ops, fw, 0, UINT64_MAX, true);
    fw->writing = true;
    if (o->nblk > 0)
        obj_block_filling(o, 0, o->nblk - 1); /* all of it comes from here */
    /* RFC 9111 4.4: a non-error answer to an unsafe method invalidates
     * the target URI; later fills (and fills in flight now, which started
     * before) do not bring the old object back */
    if (fw->unsafe && r->status >= 200 && r->status < 400) {
        int e = fleet_invalidate_local(x->srv, x->dist, fw->key);
        if (e < 0 && e != EDGE_EIO)
            LOG_W("%s \"%s\": cannot invalidate the stored copy: %s", x->method_str,
                  fw->key, edge_strerror(e));
        else
            x->srv->stats.forward_invalidations++; /* EIO: applied, not journalled */
    }
    obj_notify(o);
}

static void on_body(void *arg, struct evbuffer *buf)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    struct obj *o = fw->o;
    if (!fw->writing) {
        evbuffer_drain(buf, evbuffer_get_length(buf));
        return;
    }
    while (evbuffer_get_length(buf) > 0) {
        size_t room;
        uint8_t *w = obj_write_ptr(o, fw->wpos, &room);
        if (w == NULL) {
            LOG_E("out of memory passing a %s answer", fw->x->method_str);
            fwd_stop(fw, 502, ORIGIN_ERR_RESOURCES);
            return;
        }
        int n = evbuffer_remove(buf, w, room);
        if (n <= 0)
            break;
        (void)obj_commit(o, fw->wpos, (size_t)n);
        fw->wpos += (uint64_t)n;
        fw->w.wpos = fw->wpos;
    }
    obj_notify(o);
}

static void on_done(void *arg, const char *err)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    struct obj *o = fw->o;
    fw->fetch = NULL;
    fw->taking = false; /* whatever of the body is left is not wanted */
    if (err != NULL) {
        LOG_W("%s \"%s\" failed: %s", fw->x->method_str, fw->key, err);
        bool timeout = err == ORIGIN_ERR_CONNECT_TIMEOUT ||
                       err == ORIGIN_ERR_FIRST_BYTE_TIMEOUT || err == ORIGIN_ERR_IDLE_TIMEOUT;
        fwd_stop(fw, timeout ? 504 : 502, err);
    } else if (o->state == OBJ_STREAMING && o->length >= 0 &&
               fw->wpos != (uint64_t)o->length) {
        writer_remove(fw);
        obj_fail(o, ORIGIN_ERR_TRUNCATED);
    } else if (o->state == OBJ_STREAMING) {
        writer_remove(fw);
        obj_complete(o);
    }
    wake(fw); /* the connection learns the body is no longer taken */
}

static void on_send_ready(void *arg)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    wake(fw);
}

static const struct origin_cbs fwd_cbs = {
    .on_head = on_head,
    .on_body = on_body,
    .on_done = on_done,
    .on_send_ready = on_send_ready,
};

static void prod_pause(void *arg)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    if (fw->fetch)
        origin_fetch_pause(fw->fetch);
}

static void prod_resume(void *arg)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    if (fw->fetch)
        origin_fetch_resume(fw->fetch);
}

static void prod_abandon(void *arg)
{
    struct fwd *fw;

    CAST_OBJ_NOTNULL(fw, arg, FWD_MAGIC);
    fwd_stop(fw, 502, "abandoned");
}

static const struct obj_writer_ops fwd_writer_ops = {
    .pause = prod_pause,
    .resume = prod_resume,
    .abandon = prod_abandon,
};

/* ------------------------------------------------------------ start */

struct obj *forward_start(struct exchange *x)
{
    struct fwd *fw;
    const struct conf_distribution *d;
    const struct conf_origin *co;
    struct http1_header hs[FWD_MAX_HEADERS];
    unsigned nh = 0;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    CAST_OBJ_NOTNULL(fw, x->fwd, FWD_MAGIC);
    d = x->dist;
    co = d->origin;
    int n = uri_path_to_key(x->path, strlen(x->path), d->path_prefix,
                            d->key_prefix ? d->key_prefix : "", fw->key, sizeof(fw->key));
    if (n == EDGE_ENOENT) {
        set_error(x, 404, "404 Not Found\n");
        return NULL;
    }
    if (n == EDGE_ETOOLONG) {
        set_error(x, 414, "414 URI Too Long\n");
        return NULL;
    }
    if (n < 0) {
        set_error(x, 400, "400 Bad Request\n");
        return NULL;
    }
    if (fw->body && fw->clen >= 0 && (uint64_t)fw->clen > d->max_request_body) {
        /* nothing is sent to the origin */
        set_error(x, 413, "413 Content Too Large\n");
        return NULL;
    }
    if (fw->body && fw->clen < 0 && co->type == CONF_ORIGIN_S3) {
        /* S3 takes a body of a length known ahead (aws-chunked aside) */
        set_error(x, 411, "411 Length Required\n");
        return NULL;
    }
    if (!fw->body && x->method != HTTP1_M_DELETE && x->method != HTTP1_M_OPTIONS) {
        /* PUT, POST and PATCH say how long their (empty) body is */
        fw->body = true;
        fw->clen = 0;
    }
    for (unsigned i = 0; i < fw->nhdrs; i++)
        if (forward_field(co, fw->hdrs[i].name, fw->hdrs[i].name_len))
            hs[nh++] = fw->hdrs[i];

    struct obj *o = obj_new(x->path, strlen(x->path), (uint32_t)x->srv->conf->block_bytes);
    if (o == NULL) {
        set_error(x, 503, "503 Service Unavailable\n");
        return NULL;
    }
    o->transient = true;
    o->cacheable = false;
    struct origin_req oreq = {
        .method = method_name(x->method),
        .key = fw->key,
        .path = co->type == CONF_ORIGIN_HTTP ? x->path : NULL,
        .query = x->query, /* the whole query, whatever the cache key keeps */
        .headers = hs,
        .nheaders = nh,
        .body = fw->body,
        .body_length = fw->clen,
    };
    AN(oreq.method);
    fw->fetch = origin_fetch_start(server_origin(x->srv, d), &oreq, &fwd_cbs, fw);
    if (fw->fetch == NULL) {
        obj_unref(o);
        set_error(x, 503, "503 Service Unavailable\n");
        return NULL;
    }
    obj_ref(o);
    fw->o = o;
    x->srv->stats.forwards++;
    fw->taking = fw->body;
    if (fw->body && fw->clen == 0) {
        origin_fetch_body_end(fw->fetch);
        fw->taking = false;
    }
    return o;
}

/* ------------------------------------------------------------ request body */

ssize_t forward_body_room(const struct exchange *x)
{
    const struct fwd *fw = x->fwd;

    if (fw == NULL || !fw->taking || fw->fetch == NULL)
        return -1;
    return (ssize_t)origin_fetch_body_room(fw->fetch);
}

void forward_body_in(struct exchange *x, const void *p, size_t n)
{
    struct fwd *fw = x->fwd;

    CHECK_OBJ_NOTNULL(fw, FWD_MAGIC);
    if (!fw->taking || fw->fetch == NULL) {
        fw->discarded += n;
        return;
    }
    fw->got += n;
    if (fw->got > x->dist->max_request_body ||
        (fw->clen >= 0 && fw->got > (uint64_t)fw->clen)) {
        /* a body of unknown length outgrew the limit: the origin
         * connection is dropped, so the origin never takes a cut body as
         * complete */
        LOG_I("%s \"%s\": request body over %llu bytes, refused", x->method_str, fw->key,
              (unsigned long long)x->dist->max_request_body);
        fwd_stop(fw, 413, "request body too large");
        wake(fw);
        return;
    }
    if (origin_fetch_body_write(fw->fetch, p, n) < 0) {
        fwd_stop(fw, 503, ORIGIN_ERR_RESOURCES);
        wake(fw);
        return;
    }
    x->srv->stats.bytes_forwarded += n;
}

void forward_body_end(struct exchange *x)
{
    struct fwd *fw = x->fwd;

    CHECK_OBJ_NOTNULL(fw, FWD_MAGIC);
    if (!fw->taking || fw->fetch == NULL)
        return;
    fw->taking = false;
    if (fw->clen >= 0 && fw->got != (uint64_t)fw->clen) {
        /* HTTP/2 DATA that disagrees with content-length (nghttp2 checks
         * it too) */
        fwd_stop(fw, 400, "request body length mismatch");
        wake(fw);
        return;
    }
    origin_fetch_body_end(fw->fetch);
}

void forward_body_abort(struct exchange *x, int status)
{
    struct fwd *fw = x->fwd;

    if (fw == NULL || !fw->taking)
        return;
    CHECK_OBJ(fw, FWD_MAGIC);
    fwd_stop(fw, status, "request body incomplete");
    wake(fw);
}

void forward_free(struct exchange *x)
{
    struct fwd *fw = x->fwd;

    if (fw == NULL)
        return;
    CHECK_OBJ(fw, FWD_MAGIC);
    if (fw->fetch != NULL)
        origin_fetch_cancel(fw->fetch);
    if (fw->o != NULL) {
        writer_remove(fw);
        obj_unref(fw->o);
    }
    free(fw->blob);
    fw->magic = 0;
    free(fw);
    x->fwd = NULL;
}

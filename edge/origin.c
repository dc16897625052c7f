/*
 * origin.c: S3 origin client over HTTP/1.1, with a keep-alive pool.
 *
 * Lifecycle of a connection (struct oconn):
 *   CONNECTING -> BUSY (one fetch at a time) -> IDLE (in the pool)
 *   -> BUSY ... -> closed. A connection leaves the pool when it is reused,
 *   when the origin closes it, or when its keepalive timer fires.
 * Lifecycle of a fetch (struct origin_fetch):
 *   start -> (conn attached, request written) -> WAIT_HEAD -> BODY -> done.
 *   On a reused connection that fails before any response byte (the
 *   origin closed it while it sat in the pool) the fetch is retried once on
 *   a new connection: GET and HEAD are idempotent.
 *   Callbacks are never called from origin_fetch_start: the fetch begins
 *   from a deferred event, so callers never see re-entrant callbacks.
 */
#include "config.h"

#include "origin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "log.h"
#include "sigv4.h"
#include "uri.h"
#include "vas.h"

const char ORIGIN_ERR_CONNECT[] = "origin connection failed";
const char ORIGIN_ERR_CONNECT_TIMEOUT[] = "origin connect timeout";
const char ORIGIN_ERR_FIRST_BYTE_TIMEOUT[] = "origin first-byte timeout";
const char ORIGIN_ERR_IDLE_TIMEOUT[] = "origin idle timeout";
const char ORIGIN_ERR_PROTOCOL[] = "origin protocol error";
const char ORIGIN_ERR_TRUNCATED[] = "origin closed before the end of the body";
const char ORIGIN_ERR_RESOURCES[] = "out of resources for an origin fetch";

/* An origin response head larger than this is refused. */
#define ORIGIN_MAX_HEAD_BYTES (64 * 1024)
#define ORIGIN_MAX_HEADERS 128
#define ORIGIN_REQ_MAX 4096
#define ORIGIN_MAX_SINGLE_READ (256 * 1024)

enum oconn_state { OC_CONNECTING, OC_BUSY, OC_IDLE };

enum fetch_state {
    F_QUEUED,    /* waiting for a deferred start */
    F_WAIT_HEAD, /* request written, no complete head yet */
    F_BODY,
    F_DONE,
};

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct oconn {
    unsigned magic;
#define OCONN_MAGIC 0x6f636f6eU
    struct origin *o;
    struct bufferevent *bev;
    enum oconn_state state;
    unsigned uses;          /* requests sent on it */
    bool no_reuse;          /* the origin said Connection: close */
    struct origin_fetch *f; /* when BUSY or CONNECTING */
    struct event *timer;    /* connect / keepalive timer */
    TAILQ_ENTRY(oconn) link;
};

struct origin_fetch {
    unsigned magic;
#define FETCH_MAGIC 0x66657463U
    struct origin *o;
    struct oconn *c;
    enum fetch_state state;
    struct origin_cbs cbs;
    void *arg;
    char *method, *key, *query, *range;
    char *if_none_match, *if_modified_since, *if_match, *if_unmodified_since;
    char *path;             /* plain origins: the client's path */
    struct sigv4_header *xh; /* forwarded header fields (in xh_blob) */
    size_t nxh;
    char *xh_blob;
    bool has_body;          /* a request body follows the head */
    bool body_ended;        /* origin_fetch_body_end was called */
    bool head_written;      /* on this attempt's connection */
    bool fresh_conn;        /* not from the pool, never retried */
    int64_t body_length;    /* -1: chunked */
    struct evbuffer *sendq; /* body bytes before the connection is up */
    bool is_head;
    bool retried;
    bool got_bytes;   /* any response byte seen on this attempt */
    bool paused;
    short eof_pending; /* connection event seen while paused */
    bool in_cb;       /* inside a user callback */
    bool cancelled;   /* cancelled from inside a callback */
    enum body_mode mode;
    int64_t remaining;
    struct http1_chunked chunked;
    struct evbuffer *body; /* bytes handed to on_body */
    struct event *start_ev;
    struct event *timer; /* first-byte timer; while waiting, the connect deadline */
    bool waiting;        /* in o->waiting: no connection to be had yet */
    TAILQ_ENTRY(origin_fetch) wlink;
};

TAILQ_HEAD(fetch_list, origin_fetch);

TAILQ_HEAD(oconn_list, oconn);

struct origin {
    unsigned magic;
#define ORIGIN_MAGIC 0x6f726967U
    const struct conf_origin *conf;
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX *ssl_ctx;
    struct sigv4_creds creds;
    bool anonymous;
    char *akid, *secret, *token;
    struct sigv4_key_cache keycache;
    char host_hdr[512];   /* Host header value */
    char path_base[300];  /* "/bucket" for path style, "" for virtual */
    char *connect_host;   /* name to connect to */
    struct oconn_list idle;
    unsigned nconns;
    unsigned nidle;
    /* Fetches beyond max_connections wait here (FIFO) for a connection to
     * come back to the pool or close, up to the connect timeout: a burst
     * of block fetches (read-ahead of many readers) queues instead of
     * failing. */
    struct fetch_list waiting;
    unsigned nwaiting;
    struct event *kick_ev;
    struct origin_stats stats;
};

static void fetch_finish(struct origin_fetch *f, const char *err);
static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);
static void fetch_attach(struct origin_fetch *f);
static void fetch_on_conn_event(struct origin_fetch *f, short what);

/* ------------------------------------------------------------ origin */

static void kick_cb(evutil_socket_t fd, short what, void *arg);

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

struct origin *origin_new(struct event_base *base, struct evdns_base *dns,
                          const struct conf_origin *co, char *err, size_t errlen)
{
    struct origin *o = calloc(1, sizeof(*o));

    if (o == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->magic = ORIGIN_MAGIC;
    o->conf = co;
    o->base = base;
    o->dns = dns;
    TAILQ_INIT(&o->idle);
    TAILQ_INIT(&o->waiting);
    o->kick_ev = event_new(base, -1, 0, kick_cb, o);
    if (o->kick_ev == NULL) {
        snprintf(err, errlen, "out of memory");
        free(o);
        return NULL;
    }

    switch (co->cred_source) {
    case CONF_CRED_STATIC:
        o->akid = dup_or_null(co->access_key_id);
        o->secret = dup_or_null(co->secret_access_key);
        o->token = dup_or_null(co->session_token);
        break;
    case CONF_CRED_ENV: {
        const char *a = getenv("AWS_ACCESS_KEY_ID");
        const char *s = getenv("AWS_SECRET_ACCESS_KEY");
        const char *t = getenv("AWS_SESSION_TOKEN");
        if (a && *a && s && *s) {
            o->akid = strdup(a);
            o->secret = strdup(s);
            o->token = (t && *t) ? strdup(t) : NULL;
        }
        break;
    }
    case CONF_CRED_ANONYMOUS:
        break;
    }
    /* a plain origin is never signed for */
    o->anonymous = co->type == CONF_ORIGIN_HTTP || o->akid == NULL || o->secret == NULL;
    o->creds.access_key_id = o->akid;
    o->creds.secret_access_key = o->secret;
    o->creds.session_token = o->token;

    /* conf_finish derived the Host header (authority, "[v6]:port" form)
     * and the name to connect to (vhost: the bucket's name for
     * virtual-hosted buckets) */
    snprintf(o->host_hdr, sizeof(o->host_hdr), "%s", co->authority);
    if (co->addressing != CONF_ADDR_VIRTUAL && co->bucket)
        snprintf(o->path_base, sizeof(o->path_base), "/%s", co->bucket);
    o->connect_host = strdup(co->vhost);

    if (co->tls) {
        o->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (o->ssl_ctx == NULL) {
            snprintf(err, errlen, "origin %s: cannot create a TLS context", co->name);
            origin_free(o);
            return NULL;
        }
        SSL_CTX_set_min_proto_version(o->ssl_ctx, TLS1_2_VERSION);
        if (co->tls_verify) {
            SSL_CTX_set_verify(o->ssl_ctx, SSL_VERIFY_PEER, NULL);
            int ok = co->ca_file ? SSL_CTX_load_verify_locations(o->ssl_ctx, co->ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(o->ssl_ctx);
            if (!ok) {
                snprintf(err, errlen, "origin %s: cannot load CA certificates%s%s",
                         co->name, co->ca_file ? " from " : "",
                         co->ca_file ? co->ca_file : "");
                origin_free(o);
                return NULL;
            }
        }
    }
    if (o->connect_host == NULL) {
        snprintf(err, errlen, "out of memory");
        origin_free(o);
        return NULL;
    }
    return o;
}

const struct conf_origin *origin_conf(const struct origin *o)
{
    CHECK_OBJ_NOTNULL(o, ORIGIN_MAGIC);
    return o->conf;
}

void origin_get_stats(const struct origin *o, struct origin_stats *out)
{
    CHECK_OBJ_NOTNULL(o, ORIGIN_MAGIC);
    *out = o->stats;
}

static void conn_free(struct oconn *c)
{
    CHECK_OBJ_NOTNULL(c, OCONN_MAGIC);
    struct origin *o = c->o;
    if (c->state == OC_IDLE) {
        TAILQ_REMOVE(&o->idle, c, link);
        o->nidle--;
    }
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev);
    AN(o->nconns);
    o->nconns--;
    c->magic = 0;
    free(c);
    if (o->nwaiting > 0 && o->kick_ev != NULL)
        event_active(o->kick_ev, EV_TIMEOUT, 0); /* room for a waiting fetch */
}

void origin_free(struct origin *o)
{
    struct oconn *c;

    if (o == NULL)
        return;
    CHECK_OBJ(o, ORIGIN_MAGIC);
    AZ(o->nwaiting); /* every fetch was ended before */
    while ((c = TAILQ_FIRST(&o->idle)) != NULL)
        conn_free(c);
    if (o->kick_ev)
        event_free(o->kick_ev);
    if (o->ssl_ctx)
        SSL_CTX_free(o->ssl_ctx);
    free(o->akid);
    if (o->secret) {
        OPENSSL_cleanse(o->secret, strlen(o->secret));
        free(o->secret);
    }
    free(o->token);
    free(o->connect_host);
    o->magic = 0;
    free(o);
}

/* ------------------------------------------------------------ connections */

static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct oconn *c;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    if (c->state == OC_IDLE) {
        conn_free(c);
        return;
    }
    if (c->state == OC_CONNECTING) {
        struct origin_fetch *f = c->f;
        c->f = NULL;
        conn_free(c);
        if (f) {
            f->c = NULL;
            fetch_finish(f, ORIGIN_ERR_CONNECT_TIMEOUT);
        }
    }
}

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static void idle_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct oconn *c;

    (void)bev;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    conn_free(c); /* closed or broken while pooled */
}

static void idle_readcb(struct bufferevent *bev, void *arg)
{
    struct oconn *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    /* bytes on an idle connection: the origin is confused; drop it */
    conn_free(c);
}

static void conn_to_pool(struct oconn *c)
{
    struct origin *o = c->o;
    struct timeval tv;

    if (o->nidle >= o->conf->max_idle_connections) {
        conn_free(c);
        return;
    }
    c->state = OC_IDLE;
    c->f = NULL;
    bufferevent_setcb(c->bev, idle_readcb, NULL, idle_eventcb, c);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    bufferevent_enable(c->bev, EV_READ);
    ms_to_tv(o->conf->keepalive_timeout_ms, &tv);
    evtimer_add(c->timer, &tv);
    TAILQ_INSERT_HEAD(&o->idle, c, link); /* LIFO: warmest first */
    o->nidle++;
    if (o->nwaiting > 0)
        event_active(o->kick_ev, EV_TIMEOUT, 0); /* a waiting fetch takes it */
}

static struct oconn *conn_new(struct origin *o)
{
    struct oconn *c;
    SSL *ssl = NULL;

    if (o->nconns >= o->conf->max_connections)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->magic = OCONN_MAGIC;
    c->o = o;
    c->state = OC_CONNECTING;
    o->nconns++;
    c->timer = evtimer_new(o->base, idle_timer_cb, c);
    if (c->timer == NULL)
        goto fail;
    if (o->ssl_ctx) {
        ssl = SSL_new(o->ssl_ctx);
        if (ssl == NULL)
            goto fail;
        /* an IP-literal endpoint is checked against the certificate's IP
         * addresses and sends no SNI (RFC 6066 3: SNI names hosts only) */
        unsigned char ipbuf[16];
        bool is_ip = evutil_inet_pton(AF_INET, o->connect_host, ipbuf) == 1 ||
                     evutil_inet_pton(AF_INET6, o->connect_host, ipbuf) == 1;
        if (!is_ip)
            SSL_set_tlsext_host_name(ssl, o->connect_host);
        if (o->conf->tls_verify) {
            if (is_ip) {
                if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), o->connect_host))
                    goto fail;
            } else {
                SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (!SSL_set1_host(ssl, o->connect_host))
                    goto fail;
            }
        }
        c->bev = bufferevent_openssl_socket_new(
            o->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
            BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL)
            goto fail;
        ssl = NULL; /* owned by the bufferevent */
        /* S3 and its load balancers often close without close_notify */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(o->base, -1,
                                        BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (c->bev == NULL)
            goto fail;
    }
    /* libevent reads at most 16 KiB per call by default; S3 bodies come
     * in much faster than that */
    bufferevent_set_max_single_read(c->bev, ORIGIN_MAX_SINGLE_READ);
    o->stats.connects++;
    return c;
fail:
    if (ssl)
        SSL_free(ssl);
    conn_free(c);
    return NULL;
}

/* ------------------------------------------------------------ fetches */

static void fetch_unwait(struct origin_fetch *f)
{
    if (!f->waiting)
        return;
    TAILQ_REMOVE(&f->o->waiting, f, wlink);
    AN(f->o->nwaiting);
    f->o->nwaiting--;
    f->waiting = false;
    evtimer_del(f->timer);
}

static void fetch_free(struct origin_fetch *f)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    fetch_unwait(f);
    if (f->start_ev)
        event_free(f->start_ev);
    if (f->timer)
        event_free(f->timer);
    if (f->body)
        evbuffer_free(f->body);
    free(f->method);
    free(f->key);
    free(f->query);
    free(f->range);
    free(f->if_none_match);
    free(f->if_modified_since);
    free(f->if_match);
    free(f->if_unmodified_since);
    free(f->path);
    free(f->xh);
    free(f->xh_blob);
    if (f->sendq)
        evbuffer_free(f->sendq);
    f->magic = 0;
    free(f);
}

/* Detach the connection: back to the pool if it is clean, else closed. */
static void fetch_release_conn(struct origin_fetch *f, bool reusable)
{
    struct oconn *c = f->c;

    if (c == NULL)
        return;
    f->c = NULL;
    c->f = NULL;
    if (reusable && c->state == OC_BUSY && !c->no_reuse &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
        conn_to_pool(c);
    else
        conn_free(c);
}

static void fetch_finish(struct origin_fetch *f, const char *err)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    if (f->state == F_DONE)
        return;
    /* a request body cut short (the origin answered early) leaves the
     * connection in the middle of a request: not reusable */
    bool sent_all = !f->has_body ||
                    (f->body_ended && f->c != NULL &&
                     evbuffer_get_length(bufferevent_get_output(f->c->bev)) == 0);
    fetch_release_conn(f, err == NULL && f->mode != BODY_CLOSE && sent_all);
    f->state = F_DONE;
    if (err)
        f->o->stats.errors++;
    evtimer_del(f->timer);
    if (!f->cancelled && f->cbs.on_done) {
        f->in_cb = true;
        f->cbs.on_done(f->arg, err);
        f->in_cb = false;
    }
    fetch_free(f);
}

void origin_fetch_cancel(struct origin_fetch *f)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    if (f->in_cb) {
        /* finish after the callback returns, without calling back */
        f->cancelled = true;
        return;
    }
    f->cancelled = true;
    fetch_release_conn(f, false);
    f->state = F_DONE;
    fetch_free(f);
}

void origin_fetch_pause(struct origin_fetch *f)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    f->paused = true;
    if (f->c)
        bufferevent_disable(f->c->bev, EV_READ);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg);

void origin_fetch_resume(struct origin_fetch *f)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    if (!f->paused)
        return;
    f->paused = false;
    if (f->c && f->state != F_DONE) {
        bufferevent_enable(f->c->bev, EV_READ);
        /* bytes may already wait in the input buffer: run the read
         * handler from the loop, not from the caller's stack */
        event_active(f->start_ev, EV_TIMEOUT, 0);
    }
}

/* Where body bytes go now: behind the request head, or queued. */
static struct evbuffer *body_dst(const struct origin_fetch *f)
{
    if (f->c != NULL && f->head_written)
        return bufferevent_get_output(f->c->bev);
    return f->sendq;
}

size_t origin_fetch_body_room(const struct origin_fetch *f)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    size_t q = evbuffer_get_length(f->sendq);
    if (f->c != NULL && f->head_written)
        q += evbuffer_get_length(bufferevent_get_output(f->c->bev));
    return q >= ORIGIN_BODY_HIGH ? 0 : ORIGIN_BODY_HIGH - q;
}

int origin_fetch_body_write(struct origin_fetch *f, const void *p, size_t n)
{
    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    assert_always(f->has_body && !f->body_ended);
    if (n == 0)
        return 0;
    struct evbuffer *dst = body_dst(f);
    if (f->body_length < 0 && evbuffer_add_printf(dst, "%zx\r\n", n) < 0)
        return EDGE_ENOMEM;
    if (evbuffer_add(dst, p, n) < 0)
        return EDGE_ENOMEM;
    if (f->body_length < 0 && evbuffer_add(dst, "\r\n", 2) < 0)
        return EDGE_ENOMEM;
    return 0;
}

void origin_fetch_body_end(struct origin_fetch *f)
{
    struct timeval tv;

    CHECK_OBJ_NOTNULL(f, FETCH_MAGIC);
    assert_always(f->has_body && !f->body_ended);
    f->body_ended = true;
    if (f->body_length < 0)
        (void)evbuffer_add(body_dst(f), "0\r\n\r\n", 5); /* a failure shows as a timeout */
    if (f->head_written && f->state == F_WAIT_HEAD) {
        ms_to_tv(f->o->conf->first_byte_timeout_ms, &tv);
        evtimer_add(f->timer, &tv);
    }
}

static void first_byte_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct origin_fetch *f;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(f, arg, FETCH_MAGIC);
    if (f->waiting) {
        /* no connection came within the connect timeout */
        fetch_unwait(f);
        fetch_finish(f, ORIGIN_ERR_CONNECT_TIMEOUT);
    } else if (f->state == F_WAIT_HEAD) {
        fetch_finish(f, ORIGIN_ERR_FIRST_BYTE_TIMEOUT);
    }
}

/* Write the (signed) request head onto the connection. */
static int fetch_write_request(struct origin_fetch *f)
{
    struct origin *o = f->o;
    struct evbuffer *out = bufferevent_get_output(f->c->bev);
    char path[URI_KEY_MAX * 3 + 320], req[ORIGIN_REQ_MAX];
    const char *wire_path = path;
    int n, plen;

    if (o->conf->type == CONF_ORIGIN_HTTP && f->path != NULL) {
        wire_path = f->path; /* as the client sent it */
    } else {
        plen = snprintf(path, sizeof(path), "%s/", o->path_base);
        if (plen < 0 || (size_t)plen >= sizeof(path))
            return EDGE_ETOOLONG;
        n = uri_encode_path(f->key, strlen(f->key), path + plen, sizeof(path) - (size_t)plen);
        if (n < 0)
            return n;
    }

    const char *q = (f->query && *f->query) ? f->query : NULL;
    if (evbuffer_add_printf(out, "%s %s%s%s HTTP/1.1\r\n", f->method, wire_path, q ? "?" : "",
                            q ? q : "") < 0)
        return EDGE_ENOMEM;
    n = snprintf(req, sizeof(req), "Host: %s\r\nUser-Agent: s3edge/" PACKAGE_VERSION "\r\n",
                 o->host_hdr);
    if (n < 0 || (size_t)n >= sizeof(req))
        return EDGE_ETOOLONG;
    if (f->range) {
        int m = snprintf(req + n, sizeof(req) - (size_t)n, "Range: %s\r\n", f->range);
        if (m < 0 || (size_t)m >= sizeof(req) - (size_t)n)
            return EDGE_ETOOLONG;
        n += m;
    }
    /* conditional headers are sent unsigned: SigV4 requires only host and
     * the x-amz-* headers to be signed */
    if (f->if_none_match || f->if_modified_since || f->if_match || f->if_unmodified_since) {
        int m = snprintf(req + n, sizeof(req) - (size_t)n, "%s%s%s%s%s%s%s%s%s%s%s%s",
                         f->if_unmodified_since ? "If-Unmodified-Since: " : "",
                         f->if_unmodified_since ? f->if_unmodified_since : "",
                         f->if_unmodified_since ? "\r\n" : "",
                         f->if_match ? "If-Match: " : "", f->if_match ? f->if_match : "",
                         f->if_match ? "\r\n" : "",
                         f->if_none_match ? "If-None-Match: " : "",
                         f->if_none_match ? f->if_none_match : "",
                         f->if_none_match ? "\r\n" : "",
                         f->if_modified_since ? "If-Modified-Since: " : "",
                         f->if_modified_since ? f->if_modified_since : "",
                         f->if_modified_since ? "\r\n" : "");
        if (m < 0 || (size_t)m >= sizeof(req) - (size_t)n)
            return EDGE_ETOOLONG;
        n += m;
    }
    if (!o->anonymous) {
        struct sigv4_header hs[8], *h = hs;
        struct sigv4_result sr;
        size_t nh = 0;
        /* a forwarded request's x-amz-* fields must be signed (S3 refuses
         * unsigned ones) */
        if (f->nxh + 1 > ARRAY_LEN(hs) && (h = calloc(f->nxh + 1, sizeof(*h))) == NULL)
            return EDGE_ENOMEM;
        if (f->range) {
            h[nh].name = "range";
            h[nh].value = f->range;
            nh++;
        }
        for (size_t i = 0; i < f->nxh; i++)
            if (strncasecmp(f->xh[i].name, "x-amz-", 6) == 0)
                h[nh++] = f->xh[i];
        struct sigv4_request sq = {
            .method = f->method,
            .host = o->host_hdr,
            .path = path,
            .query = q,
            .headers = h,
            .nheaders = nh,
            /* a streamed body is not hashed ahead (UNSIGNED-PAYLOAD is
             * what S3 takes over TLS or plain HTTP alike) */
            .payload_hash = o->conf->unsigned_payload || f->has_body ? SIGV4_UNSIGNED_PAYLOAD
                                                                     : NULL,
            .add_content_sha256 = true,
            .normalize_path = false,
            .region = o->conf->region ? o->conf->region : "us-east-1",
            .service = "s3",
            .now = time(NULL),
        };
        int r = sigv4_sign(&o->creds, &sq, &o->keycache, &sr);
        if (h != hs)
            free(h);
        if (r < 0)
            return r;
        int m = snprintf(req + n, sizeof(req) - (size_t)n,
                         "x-amz-date: %s\r\nx-amz-content-sha256: %s\r\n%s%s%sAuthorization: %s\r\n",
                         sr.amz_date, sr.content_sha256,
                         o->token ? "x-amz-security-token: " : "",
                         o->token ? o->token : "", o->token ? "\r\n" : "",
                         sr.authorization);
        if (m < 0 || (size_t)m >= sizeof(req) - (size_t)n)
            return EDGE_ETOOLONG;
        n += m;
    }
    if (evbuffer_add(out, req, (size_t)n) < 0)
        return EDGE_ENOMEM;
    for (size_t i = 0; i < f->nxh; i++)
        if (evbuffer_add_printf(out, "%s: %s\r\n", f->xh[i].name, f->xh[i].value) < 0)
            return EDGE_ENOMEM;
    if (f->has_body && f->body_length >= 0) {
        if (evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)f->body_length) < 0)
            return EDGE_ENOMEM;
    } else if (f->has_body) {
        if (evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n") < 0)
            return EDGE_ENOMEM;
    }
    if (evbuffer_add(out, "\r\n", 2) < 0)
        return EDGE_ENOMEM;
    f->head_written = true;
    /* the body queued before the connection was up */
    if (f->has_body && evbuffer_add_buffer(out, f->sendq) < 0)
        return EDGE_ENOMEM;
    return 0;
}

static void fetch_send(struct origin_fetch *f)
{
    struct oconn *c = f->c;
    struct timeval tv;

    c->state = OC_BUSY;
    c->uses++;
    f->state = F_WAIT_HEAD;
    f->head_written = false;
    f->got_bytes = false;
    f->o->stats.requests++;
    evtimer_del(c->timer);
    bufferevent_setcb(c->bev, conn_readcb, f->has_body ? conn_writecb : NULL, conn_eventcb, c);
    /* the first-byte wait has its own timer; the idle timeout between
     * body reads is set once the head is in. While a request body goes
     * out, an origin that stops taking it is timed out by the write
     * timeout, and the output low watermark asks the sender for more. */
    ms_to_tv(f->o->conf->idle_timeout_ms, &tv);
    bufferevent_set_timeouts(c->bev, NULL, f->has_body ? &tv : NULL);
    bufferevent_setwatermark(c->bev, EV_WRITE, f->has_body ? ORIGIN_BODY_HIGH / 4 : 0, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    int r = fetch_write_request(f);
    if (r < 0) {
        LOG_W("origin %s: cannot build the request for key \"%s\": %s",
              f->o->conf->name, f->key, edge_strerror(r));
        fetch_finish(f, ORIGIN_ERR_RESOURCES);
        return;
    }
    if (!f->has_body || f->body_ended) {
        ms_to_tv(f->o->conf->first_byte_timeout_ms, &tv);
        evtimer_add(f->timer, &tv);
    }
}

static void connect_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct oconn *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    struct origin_fetch *f = c->f;
    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(c->timer);
        if (f == NULL) { /* fetch cancelled meanwhile: keep the conn */
            c->state = OC_BUSY;
            conn_to_pool(c);
            return;
        }
        fetch_send(f);
        return;
    }
    /* failed */
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    int dnserr = bufferevent_socket_get_dns_error(c->bev);
    if (e) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof(buf));
        LOG_W("origin %s: TLS to %s failed: %s", c->o->conf->name, c->o->connect_host, buf);
    } else if (dnserr) {
        LOG_W("origin %s: cannot resolve %s: %s", c->o->conf->name,
              c->o->connect_host, evutil_gai_strerror(dnserr));
    } else {
        LOG_W("origin %s: cannot connect to %s:%u: %s", c->o->conf->name,
              c->o->connect_host, (unsigned)c->o->conf->port,
              evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    c->f = NULL;
    conn_free(c);
    if (f) {
        f->c = NULL;
        fetch_finish(f, ORIGIN_ERR_CONNECT);
    }
}

static void fetch_attach(struct origin_fetch *f)
{
    struct origin *o = f->o;
    struct oconn *c;

    /* a pooled connection first, unless a failure on it could not be
     * retried (a body, or a method that is not idempotent) */
    while (!f->fresh_conn && (c = TAILQ_FIRST(&o->idle)) != NULL) {
        TAILQ_REMOVE(&o->idle, c, link);
        o->nidle--;
        c->state = OC_BUSY;
        c->f = f;
        f->c = c;
        o->stats.reused++;
        fetch_send(f);
        return;
    }
    if (o->nconns >= o->conf->max_connections && o->nidle > 0) {
        /* a fetch that needs a new connection: close the coldest idle one */
        conn_free(TAILQ_LAST(&o->idle, oconn_list));
    }
    if (o->nconns >= o->conf->max_connections) {
        /* at the limit: wait for one to come back, in order */
        struct timeval tv;
        if (o->nwaiting == 0)
            LOG_D("origin %s: all %u connections busy: fetches wait", o->conf->name,
                  o->nconns);
        o->stats.waited++;
        f->waiting = true;
        TAILQ_INSERT_TAIL(&o->waiting, f, wlink);
        o->nwaiting++;
        ms_to_tv(o->conf->connect_timeout_ms, &tv);
        evtimer_add(f->timer, &tv);
        return;
    }
    c = conn_new(o);
    if (c == NULL) {
        LOG_W("origin %s: out of memory for a connection", o->conf->name);
        fetch_finish(f, ORIGIN_ERR_RESOURCES);
        return;
    }
    c->f = f;
    f->c = c;
    bufferevent_setcb(c->bev, NULL, NULL, connect_eventcb, c);
    struct timeval tv;
    ms_to_tv(o->conf->connect_timeout_ms, &tv);
    evtimer_add(c->timer, &tv);
    if (bufferevent_socket_connect_hostname(c->bev, o->dns, AF_UNSPEC,
                                            o->connect_host, o->conf->port) < 0) {
        /* connect_eventcb has not run; fail from here */
        c->f = NULL;
        f->c = NULL;
        conn_free(c);
        fetch_finish(f, ORIGIN_ERR_CONNECT);
    }
}

/* room in the pool: the waiting fetches take it, first come first */
static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct origin *o;
    struct origin_fetch *f;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(o, arg, ORIGIN_MAGIC);
    while ((f = TAILQ_FIRST(&o->waiting)) != NULL &&
           (o->nconns < o->conf->max_connections || o->nidle > 0)) {
        fetch_unwait(f);
        fetch_attach(f);
    }
}

static bool fetch_read(struct origin_fetch *f);

static void start_cb(evutil_socket_t fd, short what, void *arg)
{
    struct origin_fetch *f;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(f, arg, FETCH_MAGIC);
    if (f->state == F_QUEUED)
        fetch_attach(f);
    else if (f->state == F_WAIT_HEAD || f->state == F_BODY) {
        /* resumed */
        if (fetch_read(f) && !f->paused && f->eof_pending) {
            short ev = f->eof_pending;
            f->eof_pending = 0;
            fetch_on_conn_event(f, ev);
        }
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    start_cb(fd, what, arg);
}

/* Forwarded header fields as NUL-terminated pairs in one blob. */
static int copy_headers(struct origin_fetch *f, const struct http1_header *h, unsigned n)
{
    size_t total = 0;

    for (unsigned i = 0; i < n; i++)
        total += h[i].name_len + h[i].value_len + 2;
    f->xh = calloc(n, sizeof(*f->xh));
    f->xh_blob = malloc(total);
    if (f->xh == NULL || f->xh_blob == NULL)
        return EDGE_ENOMEM;
    char *p = f->xh_blob;
    for (unsigned i = 0; i < n; i++) {
        memcpy(p, h[i].name, h[i].name_len);
        p[h[i].name_len] = '\0';
        f->xh[i].name = p;
        p += h[i].name_len + 1;
        memcpy(p, h[i].value, h[i].value_len);
        p[h[i].value_len] = '\0';
        f->xh[i].value = p;
        p += h[i].value_len + 1;
    }
    f->nxh = n;
    return 0;
}

struct origin_fetch *origin_fetch_start(struct origin *o,
                                        const struct origin_req *req,
                                        const struct origin_cbs *cbs, void *arg)
{
    struct origin_fetch *f;

    CHECK_OBJ_NOTNULL(o, ORIGIN_MAGIC);
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->magic = FETCH_MAGIC;
    f->o = o;
    f->cbs = *cbs;
    f->arg = arg;
    f->state = F_QUEUED;
    f->method = strdup(req->method);
    f->key = strdup(req->key);
    f->query = req->query ? strdup(req->query) : NULL;
    f->range = req->range ? strdup(req->range) : NULL;
    f->if_none_match = req->if_none_match ? strdup(req->if_none_match) : NULL;
    f->if_modified_since = req->if_modified_since ? strdup(req->if_modified_since) : NULL;
    f->if_match = req->if_match ? strdup(req->if_match) : NULL;
    f->if_unmodified_since = req->if_unmodified_since ? strdup(req->if_unmodified_since) : NULL;
    f->is_head = strcmp(req->method, "HEAD") == 0;
    f->path = req->path ? strdup(req->path) : NULL;
    f->has_body = req->body;
    f->body_length = req->body ? req->body_length : -1;
    f->fresh_conn = req->body || strcmp(req->method, "POST") == 0 ||
                    strcmp(req->method, "PATCH") == 0;
    f->sendq = req->body ? evbuffer_new() : NULL;
    if (req->nheaders > 0 && copy_headers(f, req->headers, req->nheaders) < 0) {
        fetch_free(f);
        return NULL;
    }
    f->body = evbuffer_new();
    f->start_ev = event_new(o->base, -1, 0, resume_cb, f);
    f->timer = evtimer_new(o->base, first_byte_timeout_cb, f);
    if (!f->method || !f->key || (req->query && !f->query) ||
        (req->range && !f->range) || (req->if_none_match && !f->if_none_match) ||
        (req->if_modified_since && !f->if_modified_since) ||
        (req->if_match && !f->if_match) ||
        (req->if_unmodified_since && !f->if_unmodified_since) || !f->body || !f->start_ev ||
        !f->timer || (req->path && !f->path) || (req->body && !f->sendq)) {
        fetch_free(f);
        return NULL;
    }
    event_active(f->start_ev, EV_TIMEOUT, 0);
    return f;
}

/* ------------------------------------------------------------ responses */

/* Call a user callback; returns false when the fetch went away. */
static bool fetch_deliver_body(struct origin_fetch *f)
{
    if (evbuffer_get_length(f->body) == 0)
        return true;
    f->o->stats.bytes_in += evbuffer_get_length(f->body);
    f->in_cb = true;
    f->cbs.on_body(f->arg, f->body);
    f->in_cb = false;
    if (f->cancelled) {
        fetch_release_conn(f, false);
        f->state = F_DONE;
        fetch_free(f);
        return false;
    }
    return true;
}

static int parse_head(struct origin_fetch *f, struct evbuffer *in)
{
    struct http1_header hdrs[ORIGIN_MAX_HEADERS];
    struct http1_limits lim = {
        .max_request_line = ORIGIN_MAX_HEAD_BYTES,
        .max_head_bytes = ORIGIN_MAX_HEAD_BYTES,
        .max_headers = ORIGIN_MAX_HEADERS,
    };
    size_t len = evbuffer_get_length(in);

    for (;;) {
        struct http1_response resp;
        size_t plen = len < ORIGIN_MAX_HEAD_BYTES ? len : ORIGIN_MAX_HEAD_BYTES;
        const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)plen);
        if (p == NULL && plen > 0)
            return EDGE_ENOMEM;
        memset(&resp, 0, sizeof(resp));
        resp.headers = hdrs;
        int r = http1_parse_response(p, plen, &lim, &resp);
        if (r == EDGE_EAGAIN)
            return plen >= ORIGIN_MAX_HEAD_BYTES ? EDGE_ETOOLONG : EDGE_EAGAIN;
        if (r < 0)
            return r;
        if (resp.status >= 100 && resp.status < 200) {
            /* interim response (100 Continue): skip it */
            evbuffer_drain(in, resp.head_len);
            len = evbuffer_get_length(in);
            continue;
        }
        evtimer_del(f->timer);
        if (f->is_head || resp.status == 204 || resp.status == 304) {
            f->mode = BODY_NONE;
        } else if (resp.chunked) {
            f->mode = BODY_CHUNKED;
            http1_chunked_init(&f->chunked);
        } else if (resp.content_length >= 0) {
            f->mode = BODY_LENGTH;
            f->remaining = resp.content_length;
        } else {
            f->mode = BODY_CLOSE;
        }
        struct origin_resp or = {
            .status = resp.status,
            .content_length = f->mode == BODY_LENGTH ? resp.content_length
                              : f->mode == BODY_NONE ? (f->is_head ? resp.content_length : 0)
                                                     : -1,
            .headers = hdrs,
            .nheaders = resp.nheaders,
        };
        f->state = F_BODY;
        if (f->c) {
            struct timeval tv;
            ms_to_tv(f->o->conf->idle_timeout_ms, &tv);
            bufferevent_set_timeouts(f->c->bev, &tv, NULL);
        }
        f->in_cb = true;
        f->cbs.on_head(f->arg, &or);
        f->in_cb = false;
        evbuffer_drain(in, resp.head_len);
        if (!resp.keep_alive && f->c)
            f->c->no_reuse = true;
        return 0;
    }
}

/* Process input; returns false when the fetch is gone (finished or
 * cancelled), true when it waits for more. */
static bool fetch_read(struct origin_fetch *f)
{
    struct oconn *c = f->c;
    struct evbuffer *in;

    if (c == NULL)
        return true;
    in = bufferevent_get_input(c->bev);
    if (evbuffer_get_length(in) > 0)
        f->got_bytes = true;

    if (f->state == F_WAIT_HEAD) {
        int r = parse_head(f, in);
        if (f->cancelled) {
            fetch_release_conn(f, false);
            f->state = F_DONE;
            fetch_free(f);
            return false;
        }
        if (r == EDGE_EAGAIN)
            return true;
        if (r < 0) {
            LOG_W("origin %s: bad response head for key \"%s\": %s",
                  f->o->conf->name, f->key, edge_strerror(r));
            fetch_finish(f, ORIGIN_ERR_PROTOCOL);
            return false;
        }
    }
    while (f->state == F_BODY && !f->paused) {
        size_t avail = evbuffer_get_length(in);
        switch (f->mode) {
        case BODY_NONE:
            fetch_finish(f, NULL);
            return false;
        case BODY_LENGTH: {
            size_t n = (uint64_t)f->remaining < avail ? (size_t)f->remaining : avail;
            if (n > 0) {
                evbuffer_remove_buffer(in, f->body, n);
                f->remaining -= (int64_t)n;
                if (!fetch_deliver_body(f))
                    return false;
            }
            if (f->remaining == 0) {
                fetch_finish(f, NULL);
                return false;
            }
            return true; /* wait for more */
        }
        case BODY_CLOSE:
            if (avail > 0) {
                evbuffer_remove_buffer(in, f->body, avail);
                if (!fetch_deliver_body(f))
                    return false;
            }
            return true; /* ends at EOF */
        case BODY_CHUNKED: {
            if (avail == 0)
                return true;
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                return true;
            size_t consumed = 0, off = 0, dlen = 0;
            int r = http1_chunked_feed(&f->chunked, v.iov_base, v.iov_len,
                                       &consumed, &off, &dlen);
            if (r < 0) {
                LOG_W("origin %s: bad chunked body for key \"%s\"",
                      f->o->conf->name, f->key);
                fetch_finish(f, ORIGIN_ERR_PROTOCOL);
                return false;
            }
            if (dlen > 0) {
                evbuffer_drain(in, off);
                evbuffer_remove_buffer(in, f->body, dlen);
                evbuffer_drain(in, consumed - off - dlen);
                if (!fetch_deliver_body(f))
                    return false;
            } else {
                evbuffer_drain(in, consumed);
            }
            if (r == 1) {
                fetch_finish(f, NULL);
                return false;
            }
            if (consumed == 0 && dlen == 0)
                return true;
            break;
        }
        }
    }
    return true;
}

/* The request body's output drained below the low watermark. */
static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct oconn *c;
    struct origin_fetch *f;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    f = c->f;
    if (f == NULL || !f->has_body || f->body_ended || f->state == F_DONE ||
        f->cbs.on_send_ready == NULL)
        return;
    f->in_cb = true;
    f->cbs.on_send_ready(f->arg);
    f->in_cb = false;
    if (f->cancelled) {
        fetch_release_conn(f, false);
        f->state = F_DONE;
        fetch_free(f);
    }
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    struct oconn *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    if (c->f)
        (void)fetch_read(c->f);
}

/* The connection ended (EOF, error) or timed out. */
static void fetch_on_conn_event(struct origin_fetch *f, short what)
{
    struct oconn *c = f->c;

    if (what & BEV_EVENT_TIMEOUT) {
        fetch_finish(f, f->state == F_WAIT_HEAD ? ORIGIN_ERR_FIRST_BYTE_TIMEOUT
                                                : ORIGIN_ERR_IDLE_TIMEOUT);
        return;
    }
    /* EOF or error: first deliver what was read */
    if (!fetch_read(f))
        return;
    if (f->paused) {
        f->eof_pending = what; /* handled when the reader resumes us */
        return;
    }
    if (f->state == F_BODY && f->mode == BODY_CLOSE) {
        fetch_release_conn(f, false);
        fetch_finish(f, NULL);
        return;
    }
    if (f->state == F_WAIT_HEAD && !f->got_bytes && c->uses > 1 && !f->retried) {
        /* the origin closed a pooled connection under us: retry once */
        f->retried = true;
        fetch_release_conn(f, false);
        fetch_attach(f);
        return;
    }
    fetch_finish(f, f->state == F_WAIT_HEAD && !f->got_bytes ? ORIGIN_ERR_CONNECT
                                                              : ORIGIN_ERR_TRUNCATED);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct oconn *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, OCONN_MAGIC);
    if (c->f == NULL) {
        conn_free(c);
        return;
    }
    fetch_on_conn_event(c->f, what);
}

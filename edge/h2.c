/*
 * h2.c: one HTTP/2 server connection (RFC 9113) and its streams, on nghttp2.
 *
 * Connection lifecycle (h2c_set_state asserts it):
 *   OPEN --SIGTERM (h2_conn_drain_all)--> DRAINING --> CLOSING -> freed
 *   OPEN/DRAINING --idle, stall, flood, protocol error, peer gone--> CLOSING
 * OPEN serves streams. DRAINING has sent a shutdown notice and, one
 * H2_DRAIN_NOTICE_MS later, a GOAWAY naming the last stream it serves
 * (RFC 9113 6.8); the streams in flight finish. CLOSING reads nothing more:
 * what nghttp2 still has to say (a GOAWAY) is flushed, bounded by the send
 * timeout; then the write side is shut and input dropped until the client
 * closes or H2_LINGER_MS pass (lingering), and the connection is freed from
 * its deferred `proc` event, never from inside an nghttp2 or bufferevent
 * callback that returns into it. A connection whose peer is gone (`dead`)
 * skips the flush and the lingering.
 *
 * Stream lifecycle (h2s_set_state):
 *   REQUEST --request complete--> HEAD --head known--> BODY --EOF/error--> DONE
 *                                    \--head without a body--------------/
 * REQUEST: the header block arrived (the exchange exists) but the request
 * may still have a body; GET/HEAD wait for END_STREAM, a body is a 400
 * as on HTTP/1.1. HEAD: the exchange runs, the response head is not known
 * yet. BODY: the response HEADERS are submitted and DATA comes from the
 * cache. A stream is freed, with its exchange, in nghttp2's stream-close
 * callback (END_STREAM both ways, RST_STREAM either way) or when the
 * connection ends; a client's reset releases the reader at once and
 * touches no other reader of the same object.
 *
 * I/O (DESIGN.md, "Wiring libevent + OpenSSL + nghttp2"): input is fed to
 * nghttp2 segment by segment (evbuffer_peek, no pullup). Output is written
 * once per loop turn from `proc`: nghttp2_session_send() until there is
 * nothing to send or the output holds OUT_HIGH bytes; the write callback
 * (output below OUT_LOW) resumes. DATA payloads go out by reference to the
 * cache chunks (NGHTTP2_DATA_FLAG_NO_COPY + send_data_callback); over TLS
 * each frame is copied whole into one buffer segment, sized to fill one
 * TLS record, so that records stay large.
 * A stream whose reader has caught up with the fill returns DEFERRED and
 * is resumed when the exchange wakes it.
 *
 * Defences: per-connection token buckets against floods of client resets
 * and the resets our protocol errors cause (CVE-2023-44487 "rapid reset",
 * and the reset-provoking variant), PINGs, SETTINGS, PRIORITY and empty
 * frames: past the budget the connection gets GOAWAY ENHANCE_YOUR_CALM.
 * nghttp2 bounds queued ACKs (max_outbound_ack) and SETTINGS entries;
 * header lists are bounded by the config's max_head_bytes and max_headers
 * (a larger list, e.g. an HPACK bomb, is answered 431 without being
 * stored) and CONTINUATION runs by H2_MAX_CONTINUATIONS. A connection with
 * no stream closes after client_idle_timeout; one whose streams wait on
 * the client (request unfinished, flow-control window closed, output not
 * read) without progress for client_send_timeout is closed too (the timer
 * samples progress, so that takes one to two send timeouts).
 */
#include "config.h"

#include "h2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include "chunk.h"
#include "err.h"
#include "exchange.h"
#include "forward.h"
#include "log.h"
#include "server.h"
#include "timeutil.h"
#include "vas.h"

/* Output watermarks: stop producing frames above OUT_HIGH, resume below
 * OUT_LOW (as h1.c). */
#define OUT_LOW (64 * 1024)
#define OUT_HIGH (256 * 1024)

/* Receive windows. Bodies we drop give their window back at once, so a
 * client with bodies we refuse is never stalled by us; a forwarded body
 * gets its window back as the origin takes it, so the window bounds what
 * a stream holds (H2_STREAM_WINDOW) and a connection (H2_CONN_WINDOW).
 * The download direction is flow-controlled by the client's own
 * SETTINGS_INITIAL_WINDOW_SIZE and WINDOW_UPDATEs. */
#define H2_STREAM_WINDOW (16 * 1024 * 1024)
#define H2_CONN_WINDOW (64 * 1024 * 1024)

/* Queued SETTINGS/PING ACKs before nghttp2 calls the peer a flooder
 * (it stops reading its ACKs), and SETTINGS entries per frame. */
#define H2_MAX_OUTBOUND_ACK 256
#define H2_MAX_SETTINGS_ENTRIES 32
/* CONTINUATION frames in one header block (CVE-2024-27316 class): a
 * block of max_head_bytes in frames of 4 KiB fits. */
#define H2_MAX_CONTINUATIONS 8
/* Between the shutdown notice and the real GOAWAY: about one RTT so that
 * requests already on the wire are not refused (RFC 9113 6.8). */
#define H2_DRAIN_NOTICE_MS 200
/* After our last bytes, input is read and dropped for up to this long
 * before the socket is closed (as h1.c's LINGER_MS). */
#define H2_LINGER_MS 2000

#define H2_PROTO "HTTP/2.0"

/* The largest TLS record plaintext (RFC 8446 5.1). */
#define H2_TLS_RECORD 16384

/* Response fields built on the stack; more take a malloc. */
#define H2_RESP_FIELDS 48

/* Request fields kept for a request that may be forwarded (forward.h). */
#define H2_FWD_FIELDS 64

/* ------------------------------------------------------------ floods */

enum h2_flood {
    FLOOD_RESET = 0, /* RST_STREAM from the client, or provoked by its errors */
    FLOOD_PING,
    FLOOD_SETTINGS,
    FLOOD_PRIORITY,
    FLOOD_EMPTY, /* DATA/HEADERS/CONTINUATION carrying and ending nothing */
    FLOOD_N
};

struct h2_flood_limit {
    unsigned burst;   /* bucket size */
    unsigned per_sec; /* refill rate */
    const char *what;
};

/* A browser leaving a page cancels up to MAX_CONCURRENT_STREAMS at once;
 * nothing legitimate keeps resetting at a high rate. */
static const struct h2_flood_limit flood_limits[FLOOD_N] = {
    [FLOOD_RESET] = {2 * H2_MAX_CONCURRENT_STREAMS, 32, "stream resets"},
    [FLOOD_PING] = {64, 10, "PING frames"},
    [FLOOD_SETTINGS] = {32, 4, "SETTINGS frames"},
    [FLOOD_PRIORITY] = {256, 64, "PRIORITY frames"},
    [FLOOD_EMPTY] = {64, 16, "empty frames"},
};

struct h2_bucket {
    uint64_t at_ms;
    unsigned tokens;
};

/* ------------------------------------------------------------ types */

enum h2c_state { H2C_OPEN = 0, H2C_DRAINING, H2C_CLOSING };
enum h2s_state { H2S_REQUEST = 0, H2S_HEAD, H2S_BODY, H2S_DONE };

struct h2c;

struct h2s {
    unsigned magic;
#define H2S_MAGIC 0x68327330U
    struct h2c *c;
    int32_t id;
    enum h2s_state state;
    struct exchange *x;
    /* the request's fields, held while its header block arrives */
    nghttp2_rcbuf *method, *path, *authority, *host, *range;
    /* preconditions (RFC 9110 13.1), evaluated by the exchange */
    nghttp2_rcbuf *if_match, *if_none_match, *if_modified_since, *if_unmodified_since;
    nghttp2_rcbuf *if_range;
    size_t hdr_bytes;
    unsigned nhdrs;
    bool too_large; /* over max_head_bytes / max_headers: 431 */
    bool host_twice;
    bool has_clen;       /* content-length > 0 announced */
    int64_t clen;        /* its value, -1: none */
    /* a method a distribution may forward: its other fields, kept until
     * the exchange copied them (name, value pairs) */
    nghttp2_rcbuf **fwd_fields;
    unsigned nfwd;
    /* request body bytes handed to the exchange but not yet given back
     * to the client's window (WINDOW_UPDATE): the origin has not taken
     * them yet, and the window is the backpressure */
    size_t unconsumed;
    bool deferred_cache; /* the data source waits for the fill */
    bool deferred_out;   /* the data source waits for the output to drain */
    bool end_sent;       /* END_STREAM went out: the response is complete */
    size_t err_off;      /* bytes of x->err_text sent */
    TAILQ_ENTRY(h2s) link;
    TAILQ_ENTRY(h2s) out_link;
};

TAILQ_HEAD(h2s_list, h2s);

struct h2c {
    unsigned magic;
#define H2C_MAGIC 0x6832630aU
    struct server *srv;
    struct bufferevent *bev;
    nghttp2_session *ngh;
    enum h2c_state state;
    bool tls;
    bool dead;           /* the peer is gone: free without flushing */
    bool lingering;      /* CLOSING, output flushed, write side shut */
    bool loop_draining;  /* counted by h2_conn_drain_all */
    struct event *proc;  /* deferred flush and free */
    struct event *timer; /* idle, stall, drain and close deadlines; always
                          * pending while the connection lives */
    struct h2s_list streams;
    struct h2s_list out_waiters;
    unsigned nstreams;
    unsigned ncont;         /* CONTINUATIONs of the current header block */
    uint64_t idle_since_ms; /* when the last stream ended */
    uint64_t progress_ms;   /* when the timer last saw streams move */
    bool progressed;        /* a frame moved a stream since then (a flag,
                             * not a clock read per frame) */
    uint64_t closing_ms;
    uint64_t linger_until_ms;
    uint64_t goaway_at_ms; /* DRAINING: when to send the final GOAWAY */
    struct h2_bucket buckets[FLOOD_N];
    char peer[64];
};

static void h2c_free(struct h2c *c);

/* ------------------------------------------------------------ states */

static const char *h2c_state_name(enum h2c_state st)
{
    switch (st) {
    case H2C_OPEN: return "open";
    case H2C_DRAINING: return "draining";
    case H2C_CLOSING: return "closing";
    }
    return "?";
}

static void h2c_set_state(struct h2c *c, enum h2c_state to)
{
    switch (to) {
    case H2C_DRAINING: assert_always(c->state == H2C_OPEN); break;
    case H2C_CLOSING: assert_always(c->state == H2C_OPEN || c->state == H2C_DRAINING); break;
    case H2C_OPEN:
    default: WRONG("bad h2c state");
    }
    LOG_D("h2 %s: %s -> %s", c->peer, h2c_state_name(c->state), h2c_state_name(to));
    c->state = to;
}

static void h2s_set_state(struct h2s *s, enum h2s_state to)
{
    switch (to) {
    case H2S_HEAD: assert_always(s->state == H2S_REQUEST); break;
    case H2S_BODY: assert_always(s->state == H2S_HEAD); break;
    case H2S_DONE: break;
    case H2S_REQUEST:
    default: WRONG("bad h2s state");
    }
    s->state = to;
}

/* ------------------------------------------------------------ helpers */

static struct evbuffer *out(struct h2c *c)
{
    return bufferevent_get_output(c->bev);
}

static void want_flush(struct h2c *c)
{
    event_active(c->proc, EV_TIMEOUT, 0);
}

static void arm_timer(struct h2c *c)
{
    const struct conf *cf = c->srv->conf;
    uint64_t now = time_mono_ms(), at;
    struct timeval tv;

    if (c->state == H2C_CLOSING && c->lingering)
        at = c->linger_until_ms;
    else if (c->state == H2C_CLOSING)
        at = c->closing_ms + cf->client_send_timeout_ms;
    else if (c->nstreams == 0)
        at = c->idle_since_ms + cf->client_idle_timeout_ms;
    else
        at = c->progress_ms + cf->client_send_timeout_ms;
    if (c->goaway_at_ms != 0 && c->goaway_at_ms < at)
        at = c->goaway_at_ms;
    if (at <= now)
        at = now + 1;
    tv.tv_sec = (time_t)((at - now) / 1000);
    tv.tv_usec = (long)((at - now) % 1000) * 1000;
    evtimer_add(c->timer, &tv);
}

/* Stop serving: flush what nghttp2 still has to say, then free. */
static void h2c_closing(struct h2c *c)
{
    if (c->state == H2C_CLOSING)
        return;
    h2c_set_state(c, H2C_CLOSING);
    c->closing_ms = time_mono_ms();
    c->goaway_at_ms = 0;
    /* the write callback now fires when the output is empty */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    arm_timer(c);
    want_flush(c);
}

/* The peer is gone or the session is broken: free without flushing. */
static void h2c_abort(struct h2c *c, const char *why)
{
    LOG_D("h2 %s: closing: %s", c->peer, why);
    c->dead = true;
    h2c_closing(c);
    arm_timer(c); /* pending until freed: h2c_walk() sees every live conn */
    want_flush(c);
}

/* Past a flood budget: GOAWAY ENHANCE_YOUR_CALM, then close. May be
 * called from nghttp2 callbacks: nghttp2 ignores the rest of the input
 * once the session is terminating. */
static void h2c_calm(struct h2c *c, const char *what)
{
    if (c->state == H2C_CLOSING)
        return;
    LOG_I("h2 %s: too many %s: GOAWAY ENHANCE_YOUR_CALM", c->peer, what);
    nghttp2_session_terminate_session(c->ngh, NGHTTP2_ENHANCE_YOUR_CALM);
    h2c_closing(c);
}

/* One event of a flood-prone kind; false (and a GOAWAY) past the budget. */
static bool spend(struct h2c *c, enum h2_flood kind)
{
    const struct h2_flood_limit *lim = &flood_limits[kind];
    struct h2_bucket *b = &c->buckets[kind];
    uint64_t now = time_mono_ms();

    if (now > b->at_ms) {
        uint64_t add = (now - b->at_ms) * lim->per_sec / 1000;
        if (add > 0) {
            b->tokens = b->tokens + add > lim->burst ? lim->burst : (unsigned)(b->tokens + add);
            b->at_ms = now;
        }
    }
    if (b->tokens == 0) {
        h2c_calm(c, lim->what);
        return false;
    }
    b->tokens--;
    return true;
}

static bool rcbuf_is(nghttp2_rcbuf *rc, const char *s)
{
    nghttp2_vec v = nghttp2_rcbuf_get_buf(rc);
    size_t n = strlen(s);
    return v.len == n && memcmp(v.base, s, n) == 0;
}

static void keep(nghttp2_rcbuf **slot, nghttp2_rcbuf *value)
{
    if (*slot != NULL)
        return; /* the first one counts, as in h1 */
    nghttp2_rcbuf_incref(value);
    *slot = value;
}

static void release_fields(struct h2s *s)
{
    nghttp2_rcbuf **f[] = {&s->method, &s->path, &s->authority, &s->host, &s->range,
                           &s->if_match, &s->if_none_match, &s->if_modified_since,
                           &s->if_unmodified_since, &s->if_range};

    for (size_t i = 0; i < ARRAY_LEN(f); i++) {
        if (*f[i] != NULL) {
            nghttp2_rcbuf_decref(*f[i]);
            *f[i] = NULL;
        }
    }
    for (unsigned i = 0; i < s->nfwd * 2; i++)
        nghttp2_rcbuf_decref(s->fwd_fields[i]);
    free(s->fwd_fields);
    s->fwd_fields = NULL;
    s->nfwd = 0;
}

/* Whether a method is one a distribution may forward. */
static bool forwardable(nghttp2_rcbuf *m)
{
    return m != NULL && (rcbuf_is(m, "PUT") || rcbuf_is(m, "POST") || rcbuf_is(m, "PATCH") ||
                         rcbuf_is(m, "DELETE") || rcbuf_is(m, "OPTIONS"));
}

/* Give the client's window back for the body bytes the origin has room
 * for again (all of them when the exchange takes no more). */
static void h2s_consume(struct h2s *s)
{
    if (s->unconsumed == 0 || s->x == NULL)
        return;
    ssize_t room = forward_body_room(s->x);
    size_t n = room < 0 || (size_t)room >= s->unconsumed ? s->unconsumed : (size_t)room;
    if (n == 0)
        return;
    s->unconsumed -= n;
    (void)nghttp2_session_consume(s->c->ngh, s->id, n);
}

static enum http1_method method_of(nghttp2_rcbuf *rc)
{
    static const struct {
        const char *s;
        enum http1_method m;
    } methods[] = {
        {"GET", HTTP1_M_GET},     {"HEAD", HTTP1_M_HEAD},       {"POST", HTTP1_M_POST},
        {"PUT", HTTP1_M_PUT},     {"DELETE", HTTP1_M_DELETE},   {"OPTIONS", HTTP1_M_OPTIONS},
        {"PATCH", HTTP1_M_PATCH}, {"CONNECT", HTTP1_M_CONNECT}, {"TRACE", HTTP1_M_TRACE},
    };

    if (rc == NULL)
        return HTTP1_M_OTHER;
    for (size_t i = 0; i < ARRAY_LEN(methods); i++)
        if (rcbuf_is(rc, methods[i].s))
            return methods[i].m;
    return HTTP1_M_OTHER;
}

/* ------------------------------------------------------------ streams */

static void h2s_free(struct h2s *s)
{
    struct h2c *c;

    CHECK_OBJ_NOTNULL(s, H2S_MAGIC);
    c = s->c;
    if (s->x != NULL) {
        /* as h1: a response cut before its end is logged as incomplete */
        if (!s->end_sent && s->x->status != 0)
            s->x->body_incomplete = true;
        exchange_free(s->x);
        s->x = NULL;
    }
    release_fields(s);
    if (s->deferred_out)
        TAILQ_REMOVE(&c->out_waiters, s, out_link);
    TAILQ_REMOVE(&c->streams, s, link);
    AN(c->nstreams);
    c->nstreams--;
    s->magic = 0;
    free(s);
}

static void h2s_reset(struct h2s *s, uint32_t code)
{
    nghttp2_submit_rst_stream(s->c->ngh, NGHTTP2_FLAG_NONE, s->id, code);
    h2s_set_state(s, H2S_DONE);
}

static void h2s_refuse(struct h2s *s, int status, const char *text)
{
    s->x->status = status;
    s->x->err_text = text;
    s->x->cache = XC_ERROR;
}

static ssize_t data_read_cb(nghttp2_session *ngh, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *arg);

/* Submit the response HEADERS once the exchange knows them. The same
 * fields as h1.c's write_head(), lower-cased (RFC 9113 8.2.1), without
 * the connection-specific ones (8.2.2). */
static void h2s_try_head(struct h2s *s)
{
    struct h2c *c = s->c;
    struct exchange *x = s->x;
    char status[8], clen[24], age[24];
    char names_stack[2048];
    char *names = names_stack;
    size_t used = 0, need = 0;
    unsigned n = 0;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    assert_always(s->state == H2S_HEAD);
    if (!exchange_head_ready(x))
        return; /* woken when the origin answers */

    unsigned nobj = x->o != NULL ? x->o->nhdrs : 0;
    nghttp2_nv nv_stack[H2_RESP_FIELDS];
    nghttp2_nv *nv = nv_stack;
    for (unsigned i = 0; i < nobj; i++)
        need += strlen(x->o->hdrs[i].name);
    for (unsigned i = 0; i < x->nxh; i++)
        need += strlen(x->xh[i].name);
    /* field names go out lower-cased: a copy, on the stack when it fits */
    if (nobj + x->nxh + 10 > H2_RESP_FIELDS)
        nv = calloc(nobj + x->nxh + 10, sizeof(*nv));
    if (need > sizeof(names_stack))
        names = malloc(need);
    if (nv == NULL || names == NULL) {
        if (nv != nv_stack)
            free(nv);
        if (names != names_stack)
            free(names);
        h2s_reset(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
#define NV(nm, nl, v, vl)                                                                          \
    do {                                                                                           \
        nv[n].name = (uint8_t *)(nm);                                                              \
        nv[n].namelen = (nl);                                                                      \
        nv[n].value = (uint8_t *)(v);                                                              \
        nv[n].valuelen = (vl);                                                                     \
        nv[n].flags = NGHTTP2_NV_FLAG_NONE;                                                        \
        n++;                                                                                       \
    } while (0)
#define NVS(nm, v) NV(nm, strlen(nm), v, strlen(v))

    snprintf(status, sizeof(status), "%d", x->status);
    NVS(":status", status);
    NVS("server", "s3edge");
    NVS("date", server_date(c->srv));
    for (unsigned i = 0; i < nobj; i++) {
        const struct obj_hdr *h = &x->o->hdrs[i];
        size_t nl = strlen(h->name);
        if (!exchange_pass_header(x, h))
            continue;
        for (size_t k = 0; k < nl; k++) {
            char ch = h->name[k];
            names[used + k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        }
        NV(names + used, nl, h->value, strlen(h->value));
        used += nl;
    }
    for (unsigned i = 0; i < x->nxh; i++) {
        const char *xn = x->xh[i].name;
        size_t nl = strlen(xn);
        for (size_t k = 0; k < nl; k++)
            names[used + k] = (char)(xn[k] >= 'A' && xn[k] <= 'Z' ? xn[k] + 32 : xn[k]);
        NV(names + used, nl, x->xh[i].value, strlen(x->xh[i].value));
        used += nl;
    }
    if (x->err_text)
        NVS("content-type", "text/plain; charset=utf-8");
    if (x->allow_hdr)
        NVS("allow", conf_methods_allow(x->dist->methods));
    int64_t len = exchange_body_length(x);
    if (len >= 0) {
        snprintf(clen, sizeof(clen), "%lld", (long long)len);
        NVS("content-length", clen);
    }
    long a = exchange_age(x);
    if (a >= 0) {
        snprintf(age, sizeof(age), "%ld", a);
        NVS("age", age);
    }
    const char *xc = exchange_xcache(x);
    if (xc != NULL)
        NVS("x-cache", xc);
#undef NVS
#undef NV

    /* no DATA at all when the body is known to be empty: END_STREAM
     * rides on the HEADERS */
    bool body = exchange_has_body(x) && len != 0;
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = data_read_cb};
    int rv = nghttp2_submit_response(c->ngh, s->id, nv, n, body ? &prd : NULL);
    if (nv != nv_stack)
        free(nv);
    if (names != names_stack)
        free(names);
    if (rv != 0) {
        LOG_D("h2 %s: stream %d: submit_response: %s", c->peer, s->id, nghttp2_strerror(rv));
        h2s_reset(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    h2s_set_state(s, body ? H2S_BODY : H2S_DONE);
}

static void h2s_start(struct h2s *s)
{
    h2s_set_state(s, H2S_HEAD);
    if (s->x->status == 0)
        exchange_start(s->x);
    h2s_try_head(s);
}

static void stream_wake(void *arg)
{
    struct h2s *s;
    struct h2c *c;

    CAST_OBJ_NOTNULL(s, arg, H2S_MAGIC);
    c = s->c;
    CHECK_OBJ_NOTNULL(c, H2C_MAGIC);
    if (c->state == H2C_CLOSING)
        return;
    if (s->state == H2S_HEAD) {
        h2s_try_head(s);
    } else if (s->state == H2S_BODY && s->deferred_cache) {
        s->deferred_cache = false;
        nghttp2_session_resume_data(c->ngh, s->id);
    }
    h2s_consume(s); /* the origin may take more of the request body */
    want_flush(c);
}

static const struct exchange_ops h2_exchange_ops = {
    .wake = stream_wake,
};

/* The request's header block is complete (RFC 9113 8.3.1). */
static void h2s_head_done(struct h2s *s, bool end_stream)
{
    struct h2c *c = s->c;
    struct exchange *x;
    nghttp2_vec m = {NULL, 0}, p = {NULL, 0}, h = {NULL, 0}, r = {NULL, 0};

    x = exchange_new(c->srv, &h2_exchange_ops, s);
    if (x == NULL) {
        h2s_reset(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    s->x = x;
    if (s->method)
        m = nghttp2_rcbuf_get_buf(s->method);
    if (s->path)
        p = nghttp2_rcbuf_get_buf(s->path);
    /* :authority, else Host (RFC 9113 8.3.1) */
    if (s->authority)
        h = nghttp2_rcbuf_get_buf(s->authority);
    else if (s->host)
        h = nghttp2_rcbuf_get_buf(s->host);
    if (s->range)
        r = nghttp2_rcbuf_get_buf(s->range);
    const char *q = p.len ? memchr(p.base, '?', p.len) : NULL;
    struct http1_header cond_stack[5 + 8], *cond = cond_stack;
    unsigned ncond = 0;
    if (s->nfwd + 5 > ARRAY_LEN(cond_stack) &&
        (cond = calloc(s->nfwd + 5, sizeof(*cond))) == NULL) {
        h2s_reset(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    for (unsigned i = 0; i < s->nfwd; i++) {
        nghttp2_vec fn = nghttp2_rcbuf_get_buf(s->fwd_fields[2 * i]);
        nghttp2_vec fv = nghttp2_rcbuf_get_buf(s->fwd_fields[2 * i + 1]);
        cond[ncond].name = (const char *)fn.base;
        cond[ncond].name_len = fn.len;
        cond[ncond].value = (const char *)fv.base;
        cond[ncond].value_len = fv.len;
        ncond++;
    }
    const struct {
        const char *name;
        nghttp2_rcbuf *v;
    } cf[] = {{"if-match", s->if_match},
              {"if-none-match", s->if_none_match},
              {"if-modified-since", s->if_modified_since},
              {"if-unmodified-since", s->if_unmodified_since},
              {"if-range", s->if_range}};
    /* (a request that may be forwarded has them among its fields) */
    for (size_t i = 0; i < ARRAY_LEN(cf) && s->nfwd == 0; i++) {
        if (cf[i].v == NULL)
            continue;
        nghttp2_vec cv = nghttp2_rcbuf_get_buf(cf[i].v);
        cond[ncond].name = cf[i].name;
        cond[ncond].name_len = strlen(cf[i].name);
        cond[ncond].value = (const char *)cv.base;
        cond[ncond].value_len = cv.len;
        ncond++;
    }
    struct exchange_req req = {
        .method = method_of(s->method),
        .method_str = (const char *)m.base,
        .method_len = m.len,
        .host = h.len ? (const char *)h.base : NULL,
        .host_len = h.len,
        .path = (const char *)p.base,
        .path_len = q ? (size_t)(q - (const char *)p.base) : p.len,
        .query = q ? q + 1 : NULL,
        .query_len = q ? p.len - (size_t)(q + 1 - (const char *)p.base) : 0,
        .range = s->range ? (const char *)r.base : NULL,
        .range_len = r.len,
        .headers = cond,
        .nheaders = ncond,
        .body = !end_stream,
        .body_length = s->clen,
    };
    bool mismatch = false;
    if (s->authority && s->host) {
        nghttp2_vec hv = nghttp2_rcbuf_get_buf(s->host);
        mismatch =
            hv.len != h.len || strncasecmp((const char *)hv.base, (const char *)h.base, h.len) != 0;
    }
    int rv = exchange_set_fields(x, &req, H2_PROTO, c->peer);
    release_fields(s);
    if (cond != cond_stack)
        free(cond);
    if (rv < 0) {
        h2s_reset(s, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    if (s->too_large) {
        h2s_refuse(s, 431, "431 Request Header Fields Too Large\n");
    } else if (h.len == 0 || s->host_twice || mismatch) {
        /* RFC 9113 8.3.1: Host that disagrees with :authority is
         * malformed; RFC 9110 7.2: no authority at all is a 400, as a
         * missing Host on HTTP/1.1 */
        h2s_refuse(s, 400, "400 Bad Request\n");
    } else if (!end_stream && (x->method == HTTP1_M_GET || x->method == HTTP1_M_HEAD)) {
        /* a request body on GET/HEAD has no meaning for us (RFC 9110
         * 9.3.1): 400 as h1; an empty one (END_STREAM on an empty DATA
         * frame) is fine, so wait for it */
        if (!s->has_clen)
            return;
        h2s_refuse(s, 400, "400 Bad Request: request body not allowed\n");
    }
    h2s_start(s);
}

/* ------------------------------------------------------------ nghttp2 callbacks */

static ssize_t send_cb(nghttp2_session *ngh, const uint8_t *data, size_t len, int flags, void *arg)
{
    struct h2c *c;

    (void)ngh;
    (void)flags;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (evbuffer_get_length(out(c)) >= OUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK; /* the write callback flushes again */
    if (evbuffer_add(out(c), data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

static ssize_t data_read_cb(nghttp2_session *ngh, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *arg)
{
    struct h2c *c;
    struct h2s *s;
    struct exchange *x;
    struct chunk *ch;
    size_t off, len;

    (void)ngh;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    CAST_OBJ_NOTNULL(s, src->ptr, H2S_MAGIC);
    assert_always(s->id == id && s->state == H2S_BODY);
    x = s->x;
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    if (x->err_text != NULL) {
        size_t total = strlen(x->err_text);
        size_t n = total - s->err_off < length ? total - s->err_off : length;
        memcpy(buf, x->err_text + s->err_off, n);
        s->err_off += n;
        x->bytes_sent += n;
        if (s->err_off == total)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (evbuffer_get_length(out(c)) >= OUT_HIGH) {
        if (!s->deferred_out) {
            s->deferred_out = true;
            TAILQ_INSERT_TAIL(&c->out_waiters, s, out_link);
        }
        return NGHTTP2_ERR_DEFERRED;
    }
    switch (exchange_body_peek(x, &ch, &off, &len)) {
    case OBJ_READ_DATA:
        if (len > length)
            len = length;
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (exchange_body_ends(x, len))
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)len;
    case OBJ_READ_WAIT:
        /* parked on the object: the exchange wakes us */
        s->deferred_cache = true;
        return NGHTTP2_ERR_DEFERRED;
    case OBJ_READ_EOF: *flags |= NGHTTP2_DATA_FLAG_EOF; return 0;
    case OBJ_READ_ERROR:
        /* the fill failed mid-body: the client must see a truncation
         * (RST_STREAM INTERNAL_ERROR), never END_STREAM */
        LOG_D("h2 %s: stream %d: fill failed mid-body", c->peer, s->id);
        x->body_incomplete = true;
        h2s_set_state(s, H2S_DONE);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    WRONG("obj_reader_peek");
}

/* The frame header, then the payload: by reference for cleartext. Over
 * TLS the frame is copied whole into one contiguous evbuffer extent:
 * bufferevent_openssl (libevent 2.1) makes one SSL_write, and so at least
 * one record, per buffer segment, so a header and payload in separate
 * segments (or a payload split across two) would go out as small records.
 * With tls_frame_len_cb a frame fills one record exactly. */
static int send_data_cb(nghttp2_session *ngh, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *src, void *arg)
{
    struct h2c *c;
    struct h2s *s;
    struct exchange *x;
    struct chunk *ch = NULL;
    size_t off = 0, len = 0;
    int rv;

    (void)ngh;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    CAST_OBJ_NOTNULL(s, src->ptr, H2S_MAGIC);
    x = s->x;
    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    AZ(frame->data.padlen); /* we never pad */
    if (length > 0) {
        /* nothing ran since data_read_cb returned this run: same chunk */
        assert_always(exchange_body_peek(x, &ch, &off, &len) == OBJ_READ_DATA);
        assert_always(len >= length);
    }
    if (c->tls) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out(c), (ev_ssize_t)(9 + length), &v, 1) != 1 ||
            v.iov_len < 9 + length)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        memcpy(v.iov_base, framehd, 9);
        if (length > 0)
            memcpy((uint8_t *)v.iov_base + 9, ch->data + off, length);
        v.iov_len = 9 + length;
        rv = evbuffer_commit_space(out(c), &v, 1);
    } else {
        rv = evbuffer_add(out(c), framehd, 9);
        if (rv == 0 && length > 0) {
            chunk_ref(ch);
            rv = evbuffer_add_reference(out(c), ch->data + off, length, chunk_unref_cb, ch);
            if (rv != 0)
                chunk_unref(ch);
        }
    }
    if (rv != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* the frame may be cut: close */
    if (length > 0) {
        exchange_body_advance(x, length);
        x->bytes_sent += length;
    }
    return 0;
}

/* TLS: DATA payloads of 16384 - 9 bytes, so that a frame and its header
 * fill one TLS record (RFC 8446 5.1: 2^14 bytes of plaintext at most). */
static ssize_t tls_frame_len_cb(nghttp2_session *ngh, uint8_t type, int32_t id, int32_t conn_window,
                                int32_t stream_window, uint32_t max_frame, void *arg)
{
    (void)ngh;
    (void)type;
    (void)id;
    (void)conn_window;
    (void)stream_window;
    (void)arg;
    return max_frame < H2_TLS_RECORD - 9 ? (ssize_t)max_frame : H2_TLS_RECORD - 9;
}

static int on_begin_frame_cb(nghttp2_session *ngh, const nghttp2_frame_hd *hd, void *arg)
{
    struct h2c *c;

    (void)ngh;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    switch (hd->type) {
    case NGHTTP2_DATA:
        if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM))
            spend(c, FLOOD_EMPTY);
        break;
    case NGHTTP2_HEADERS:
        c->ncont = 0;
        if (hd->length == 0)
            spend(c, FLOOD_EMPTY);
        break;
    case NGHTTP2_PRIORITY:
        /* counted here: with RFC 7540 priorities off nghttp2 drops
         * them before on_frame_recv */
        spend(c, FLOOD_PRIORITY);
        break;
    case NGHTTP2_CONTINUATION:
        if (++c->ncont > H2_MAX_CONTINUATIONS)
            h2c_calm(c, "CONTINUATION frames");
        else if (hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_HEADERS))
            spend(c, FLOOD_EMPTY);
        break;
    default: break;
    }
    return 0;
}

static int on_begin_headers_cb(nghttp2_session *ngh, const nghttp2_frame *frame, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (c->state == H2C_CLOSING)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST INTERNAL_ERROR */
    s->magic = H2S_MAGIC;
    s->c = c;
    s->id = frame->hd.stream_id;
    s->state = H2S_REQUEST;
    s->clen = -1;
    TAILQ_INSERT_TAIL(&c->streams, s, link);
    if (c->nstreams++ == 0) {
        c->progress_ms = time_mono_ms();
        arm_timer(c); /* from the idle deadline to the progress one */
    } else {
        c->progressed = true;
    }
    nghttp2_session_set_stream_user_data(ngh, s->id, s);
    return 0;
}

static int on_header_cb(nghttp2_session *ngh, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                        nghttp2_rcbuf *value, uint8_t flags, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    (void)flags;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: ignored */
    s = nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id);
    if (s == NULL)
        return 0;
    CHECK_OBJ(s, H2S_MAGIC);
    if (s->too_large)
        return 0;
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
    /* RFC 9113 6.5.2: the size of a field is name + value + 32 */
    s->hdr_bytes += n.len + v.len + 32;
    s->nhdrs++;
    if (s->hdr_bytes > c->srv->conf->max_head_bytes || s->nhdrs > c->srv->conf->max_headers) {
        /* an HPACK bomb decodes here field by field: nothing is kept
         * past the limit, and the request is answered 431 */
        s->too_large = true;
        return 0;
    }
    if (n.len > 0 && n.base[0] == ':') {
        if (rcbuf_is(name, ":method"))
            keep(&s->method, value);
        else if (rcbuf_is(name, ":path"))
            keep(&s->path, value);
        else if (rcbuf_is(name, ":authority"))
            keep(&s->authority, value);
        return 0;
    }
    if (rcbuf_is(name, "host")) {
        if (s->host != NULL)
            s->host_twice = true;
        keep(&s->host, value);
    } else if (rcbuf_is(name, "range")) {
        keep(&s->range, value);
    } else if (rcbuf_is(name, "if-match")) {
        keep(&s->if_match, value);
    } else if (rcbuf_is(name, "if-none-match")) {
        keep(&s->if_none_match, value);
    } else if (rcbuf_is(name, "if-modified-since")) {
        keep(&s->if_modified_since, value);
    } else if (rcbuf_is(name, "if-unmodified-since")) {
        keep(&s->if_unmodified_since, value);
    } else if (rcbuf_is(name, "if-range")) {
        keep(&s->if_range, value);
    } else if (rcbuf_is(name, "content-length")) {
        /* nghttp2 checked it is a number that DATA will match */
        s->has_clen = s->has_clen || !rcbuf_is(value, "0");
        nghttp2_vec cv = nghttp2_rcbuf_get_buf(value);
        int64_t cl = 0;
        for (size_t i = 0; i < cv.len && cl < INT64_MAX / 10 - 10; i++)
            cl = cl * 10 + (cv.base[i] - '0');
        s->clen = cl;
    }
    if (forwardable(s->method) && s->nfwd < H2_FWD_FIELDS) {
        /* every field of a request that may go to the origin; the
         * exchange picks what it forwards */
        if (s->fwd_fields == NULL &&
            (s->fwd_fields = calloc(2 * H2_FWD_FIELDS, sizeof(*s->fwd_fields))) == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        nghttp2_rcbuf_incref(name);
        nghttp2_rcbuf_incref(value);
        s->fwd_fields[2 * s->nfwd] = name;
        s->fwd_fields[2 * s->nfwd + 1] = value;
        s->nfwd++;
    }
    return 0;
}

static int on_data_chunk_cb(nghttp2_session *ngh, uint8_t flags, int32_t id, const uint8_t *data,
                            size_t len, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    (void)flags;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (len == 0)
        return 0;
    s = nghttp2_session_get_stream_user_data(ngh, id);
    if (s == NULL) {
        (void)nghttp2_session_consume(ngh, id, len);
        return 0;
    }
    CHECK_OBJ(s, H2S_MAGIC);
    /* a forwarded request's body goes on to the origin; its window comes
     * back as the origin takes it (h2s_consume) */
    if (s->x != NULL && forward_body_room(s->x) >= 0) {
        forward_body_in(s->x, data, len);
        s->unconsumed += len;
        h2s_consume(s);
        return 0;
    }
    (void)nghttp2_session_consume(ngh, id, len);
    /* a body on a GET/HEAD waiting for its end: 400 now; any other
     * request body is dropped */
    if (s->state == H2S_REQUEST && s->x != NULL) {
        h2s_refuse(s, 400, "400 Bad Request: request body not allowed\n");
        h2s_start(s);
    }
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *ngh, const nghttp2_frame *frame, void *arg)
{
    struct h2c *c;
    struct h2s *s;
    bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        s = nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id);
        if (s == NULL || c->state == H2C_CLOSING)
            break;
        CHECK_OBJ(s, H2S_MAGIC);
        c->progressed = true;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && s->x == NULL)
            h2s_head_done(s, end);
        else if (end && s->state == H2S_REQUEST && s->x != NULL)
            h2s_start(s); /* trailers ended a GET with no body */
        else if (end && s->x != NULL && forward_body_room(s->x) >= 0)
            forward_body_end(s->x); /* trailers (dropped) ended a body */
        break;
    case NGHTTP2_DATA:
        c->progressed = true;
        s = nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id);
        if (s == NULL || c->state == H2C_CLOSING)
            break;
        CHECK_OBJ(s, H2S_MAGIC);
        if (end && s->state == H2S_REQUEST && s->x != NULL)
            h2s_start(s);
        else if (end && s->x != NULL && forward_body_room(s->x) >= 0)
            forward_body_end(s->x);
        break;
    case NGHTTP2_RST_STREAM: spend(c, FLOOD_RESET); break;
    case NGHTTP2_PING:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            spend(c, FLOOD_PING);
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            spend(c, FLOOD_SETTINGS);
        break;
    case NGHTTP2_GOAWAY:
        LOG_D("h2 %s: GOAWAY from the client, error %u", c->peer, frame->goaway.error_code);
        break;
    default: break;
    }
    return 0;
}

static int on_frame_send_cb(nghttp2_session *ngh, const nghttp2_frame *frame, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    switch (frame->hd.type) {
    case NGHTTP2_DATA:
    case NGHTTP2_HEADERS:
        c->progressed = true;
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            break;
        s = nghttp2_session_get_stream_user_data(ngh, frame->hd.stream_id);
        if (s == NULL)
            break;
        CHECK_OBJ(s, H2S_MAGIC);
        s->end_sent = true;
        if (s->state != H2S_DONE)
            h2s_set_state(s, H2S_DONE);
        /* RFC 9113 8.1: a complete response to a request whose body is
         * still coming ends the stream with RST_STREAM NO_ERROR */
        if (nghttp2_session_get_stream_remote_close(ngh, s->id) == 0)
            nghttp2_submit_rst_stream(ngh, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
        break;
    case NGHTTP2_RST_STREAM:
        /* resets the client provoked with protocol errors cost as much as
         * its own (the reset-provoking variant of rapid reset) */
        switch (frame->rst_stream.error_code) {
        case NGHTTP2_NO_ERROR:
        case NGHTTP2_INTERNAL_ERROR:
        case NGHTTP2_CANCEL: break;
        default: spend(c, FLOOD_RESET);
        }
        break;
    case NGHTTP2_GOAWAY:
        LOG_D("h2 %s: GOAWAY sent, last stream %d, error %u", c->peer, frame->goaway.last_stream_id,
              frame->goaway.error_code);
        break;
    default: break;
    }
    return 0;
}

static int on_stream_close_cb(nghttp2_session *ngh, int32_t id, uint32_t code, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    s = nghttp2_session_get_stream_user_data(ngh, id);
    if (s == NULL)
        return 0;
    CHECK_OBJ(s, H2S_MAGIC);
    if (code != NGHTTP2_NO_ERROR)
        LOG_D("h2 %s: stream %d closed with error %u", c->peer, id, code);
    nghttp2_session_set_stream_user_data(ngh, id, NULL);
    /* the window of body bytes never given back, for the connection */
    if (s->unconsumed > 0)
        (void)nghttp2_session_consume_connection(ngh, s->unconsumed);
    h2s_free(s);
    if (c->nstreams == 0) {
        c->idle_since_ms = time_mono_ms();
        arm_timer(c);
    }
    return 0;
}

/* ------------------------------------------------------------ I/O */

/* nghttp2 refused the input as a whole. A client that does not read its
 * ACKs (FLOODED) or a session out of memory is dropped; otherwise the
 * client hears why in a GOAWAY (the other fatal errors are limits it
 * crossed, such as too many CONTINUATIONs) before the close. */
static void h2c_recv_failed(struct h2c *c, int err)
{
    uint32_t code = NGHTTP2_ENHANCE_YOUR_CALM;

    LOG_I("h2 %s: closing: %s", c->peer, nghttp2_strerror(err));
    if (err == NGHTTP2_ERR_FLOODED || err == NGHTTP2_ERR_NOMEM) {
        h2c_abort(c, nghttp2_strerror(err));
        return;
    }
    if (err == NGHTTP2_ERR_BAD_CLIENT_MAGIC)
        code = NGHTTP2_PROTOCOL_ERROR; /* RFC 9113 3.4 */
    else if (err == NGHTTP2_ERR_CALLBACK_FAILURE)
        code = NGHTTP2_INTERNAL_ERROR;
    nghttp2_session_terminate_session(c->ngh, code);
    h2c_closing(c);
}

/* Feed the input to nghttp2 segment by segment, without a pullup. */
static void h2c_recv(struct h2c *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_iovec v[8];

    if (c->state == H2C_CLOSING) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    /* each round consumes up to 8 segments; a bound, not a limit */
    for (unsigned round = 0; round < 1u << 20 && evbuffer_get_length(in) > 0; round++) {
        int n = evbuffer_peek(in, -1, NULL, v, 8);
        size_t used = 0;
        if (n <= 0)
            break;
        if (n > 8)
            n = 8;
        for (int i = 0; i < n; i++) {
            ssize_t r = nghttp2_session_mem_recv(c->ngh, v[i].iov_base, v[i].iov_len);
            if (r < 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                h2c_recv_failed(c, (int)r);
                return;
            }
            used += (size_t)r;
        }
        evbuffer_drain(in, used);
        if (c->state == H2C_CLOSING) {
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        }
    }
}

static void h2c_flush(struct h2c *c)
{
    if (c->dead)
        return;
    int rv = nghttp2_session_send(c->ngh);
    if (rv != 0) {
        h2c_abort(c, nghttp2_strerror(rv));
        return;
    }
    /* RFC 9113 6.8: after GOAWAY and the last stream, or after a
     * connection error, nghttp2 wants neither direction */
    if (!nghttp2_session_want_read(c->ngh) && !nghttp2_session_want_write(c->ngh))
        h2c_closing(c);
}

/* Everything is said: closing now with unread input would make the
 * kernel send a reset, which can destroy our GOAWAY before the client
 * has read it (RFC 9113 6.8, RFC 9112 9.6). Half-close, then drop input
 * until the client closes too, or H2_LINGER_MS pass. */
static void h2c_linger(struct h2c *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    c->lingering = true;
    if (fd < 0 || shutdown(fd, SHUT_WR) < 0) {
        h2c_abort(c, "shutdown failed");
        return;
    }
    c->linger_until_ms = time_mono_ms() + H2_LINGER_MS;
    arm_timer(c);
}

static void proc_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2c *c;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    h2c_flush(c);
    if (c->state != H2C_CLOSING)
        return;
    if (c->dead)
        h2c_free(c);
    else if (!c->lingering && evbuffer_get_length(out(c)) == 0)
        h2c_linger(c);
}

static void readcb(struct bufferevent *bev, void *arg)
{
    struct h2c *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    h2c_recv(c);
    want_flush(c);
}

static void writecb(struct bufferevent *bev, void *arg)
{
    struct h2c *c;
    struct h2s *s;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (c->state != H2C_CLOSING) {
        /* below OUT_LOW: the streams stopped by OUT_HIGH go on */
        while ((s = TAILQ_FIRST(&c->out_waiters)) != NULL) {
            TAILQ_REMOVE(&c->out_waiters, s, out_link);
            s->deferred_out = false;
            nghttp2_session_resume_data(c->ngh, s->id);
        }
    }
    want_flush(c);
}

static void eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct h2c *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    if (what & BEV_EVENT_TIMEOUT)
        LOG_I("h2 %s: send timeout", c->peer);
    h2c_abort(c, (what & BEV_EVENT_EOF) ? "peer closed" : "connection error");
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h2c *c;
    const struct conf *cf;
    uint64_t now = time_mono_ms();

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, H2C_MAGIC);
    cf = c->srv->conf;
    if (c->state == H2C_CLOSING) {
        if (c->lingering && now >= c->linger_until_ms) {
            h2c_abort(c, "lingering done");
            return;
        }
        if (!c->lingering && now >= c->closing_ms + cf->client_send_timeout_ms) {
            h2c_abort(c, "closing took too long");
            return;
        }
        arm_timer(c);
        return;
    }
    if (c->progressed) {
        c->progressed = false;
        c->progress_ms = now;
    }
    if (c->goaway_at_ms != 0 && now >= c->goaway_at_ms) {
        c->goaway_at_ms = 0;
        nghttp2_submit_goaway(c->ngh, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->ngh), NGHTTP2_NO_ERROR,
                              NULL, 0);
        want_flush(c);
    }
    if (c->nstreams == 0 && now >= c->idle_since_ms + cf->client_idle_timeout_ms) {
        LOG_D("h2 %s: idle", c->peer);
        nghttp2_session_terminate_session(c->ngh, NGHTTP2_NO_ERROR);
        h2c_closing(c);
        return;
    }
    if (c->nstreams > 0 && now >= c->progress_ms + cf->client_send_timeout_ms) {
        /* a stream waits on the client (its request is unfinished, its
         * window closed, or the output unread) and nothing moved */
        struct h2s *s;
        bool stalled = false;
        for (s = TAILQ_FIRST(&c->streams); s != NULL; s = TAILQ_NEXT(s, link)) {
            if (s->state == H2S_REQUEST || (s->state == H2S_BODY && !s->deferred_cache)) {
                stalled = true;
                break;
            }
        }
        if (stalled) {
            LOG_I("h2 %s: no progress for %u ms: closing", c->peer, cf->client_send_timeout_ms);
            nghttp2_session_terminate_session(c->ngh, NGHTTP2_ENHANCE_YOUR_CALM);
            h2c_closing(c);
            return;
        }
        c->progress_ms = now; /* waiting on the origin: its timeouts apply */
    }
    arm_timer(c);
}

/* ------------------------------------------------------------ lifetime */

/* Every live connection keeps its timer pending, so the loop itself lists
 * the connections of this server: no global registry to share between
 * loops. */
struct h2c_walk {
    struct h2c **v;
    size_t n, cap;
};

static int walk_cb(const struct event_base *base, const struct event *ev, void *arg)
{
    struct h2c_walk *w = arg;

    (void)base;
    if (event_get_callback(ev) != timer_cb)
        return 0;
    if (w->n < w->cap)
        w->v[w->n] = event_get_callback_arg(ev);
    w->n++;
    return 0;
}

static size_t h2c_walk(struct event_base *base, struct h2c **v, size_t cap)
{
    struct h2c_walk w = {v, 0, cap};

    event_base_foreach_event(base, walk_cb, &w);
    return w.n;
}

static void h2c_free(struct h2c *c)
{
    struct server *srv = c->srv;
    struct h2s *s, *next;
    bool draining = c->loop_draining;

    CHECK_OBJ_NOTNULL(c, H2C_MAGIC);
    LOG_D("h2 %s: closed", c->peer);
    /* nghttp2 calls nothing back from here; the streams go with us */
    for (s = TAILQ_FIRST(&c->streams); s != NULL; s = TAILQ_NEXT(s, link))
        release_fields(s);
    nghttp2_session_del(c->ngh);
    c->ngh = NULL;
    for (s = TAILQ_FIRST(&c->streams); s != NULL; s = next) {
        next = TAILQ_NEXT(s, link);
        h2s_free(s);
    }
    event_free(c->proc);
    event_free(c->timer);
    bufferevent_free(c->bev);
    c->magic = 0;
    free(c);
    server_conn_closed(srv);
    if (draining && h2c_walk(srv->base, NULL, 0) == 0) {
        LOG_I("the last HTTP/2 connection is closed");
        event_base_loopexit(srv->base, NULL);
    }
}

unsigned h2_conn_drain_all(struct server *s)
{
    struct h2c **v;
    size_t n;

    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    n = h2c_walk(s->base, NULL, 0);
    if (n == 0)
        return 0;
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        return (unsigned)n; /* the caller's deadline still ends the loop */
    n = h2c_walk(s->base, v, n);
    for (size_t i = 0; i < n; i++) {
        struct h2c *c;
        CAST_OBJ_NOTNULL(c, v[i], H2C_MAGIC);
        c->loop_draining = true;
        if (c->state != H2C_OPEN)
            continue;
        /* RFC 9113 6.8: a notice first, the GOAWAY with the last stream
         * id once requests already sent have arrived */
        nghttp2_submit_shutdown_notice(c->ngh);
        h2c_set_state(c, H2C_DRAINING);
        c->goaway_at_ms = time_mono_ms() + H2_DRAIN_NOTICE_MS;
        arm_timer(c);
        want_flush(c);
    }
    free(v);
    return (unsigned)n;
}

static nghttp2_session *session_new(struct h2c *c)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *ngh = NULL;
    int rv;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return NULL;
    }
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data_cb);
    if (c->tls)
        nghttp2_session_callbacks_set_data_source_read_length_callback(cb, tls_frame_len_cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback2(cb, on_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close_cb);
    nghttp2_option_set_max_outbound_ack(opt, H2_MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, H2_MAX_SETTINGS_ENTRIES);
    /* closed streams are kept only for RFC 7540 priorities, which we
     * turn off in SETTINGS */
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* request bodies are forwarded as the origin takes them: the window
     * goes back with nghttp2_session_consume (h2s_consume), and at once
     * for bodies we drop */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    rv = nghttp2_session_server_new2(&ngh, cb, c, opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (rv != 0)
        return NULL;

    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_CONCURRENT_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, c->srv->conf->max_head_bytes},
        /* RFC 9218 2.1: the RFC 7540 priority tree costs CPU per frame
         * and buys nothing for downloads */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    if (nghttp2_submit_settings(ngh, NGHTTP2_FLAG_NONE, iv, ARRAY_LEN(iv)) != 0 ||
        nghttp2_session_set_local_window_size(ngh, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(ngh);
        return NULL;
    }
    return ngh;
}

void h2_conn_attach(struct server *s, struct bufferevent *bev, const char *peer, bool tls)
{
    struct h2c *c = calloc(1, sizeof(*c));
    struct timeval tv;
    uint64_t now = time_mono_ms();

    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    if (c == NULL)
        goto fail;
    c->magic = H2C_MAGIC;
    c->srv = s;
    c->bev = bev;
    c->tls = tls;
    c->state = H2C_OPEN;
    TAILQ_INIT(&c->streams);
    TAILQ_INIT(&c->out_waiters);
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->idle_since_ms = c->progress_ms = now;
    for (unsigned i = 0; i < FLOOD_N; i++) {
        c->buckets[i].at_ms = now;
        c->buckets[i].tokens = flood_limits[i].burst;
    }
    c->proc = event_new(s->base, -1, 0, proc_cb, c);
    c->timer = evtimer_new(s->base, timer_cb, c);
    if (c->proc == NULL || c->timer == NULL)
        goto fail;
    c->ngh = session_new(c);
    if (c->ngh == NULL)
        goto fail;

    bufferevent_setcb(bev, readcb, writecb, eventcb, c);
    bufferevent_setwatermark(bev, EV_WRITE, OUT_LOW, 0);
    /* input is consumed as it arrives: no read watermark */
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    tv.tv_sec = s->conf->client_send_timeout_ms / 1000;
    tv.tv_usec = (long)(s->conf->client_send_timeout_ms % 1000) * 1000;
    bufferevent_set_timeouts(bev, NULL, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    arm_timer(c);
    LOG_D("h2 %s: session%s", c->peer, tls ? " over TLS" : " (h2c)");
    /* the preface (and more) may have come with the hand-over */
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        h2c_recv(c);
    want_flush(c); /* our SETTINGS */
    return;
fail:
    LOG_W("h2 %s: cannot set up the session (out of memory)", peer);
    if (c != NULL) {
        if (c->proc)
            event_free(c->proc);
        if (c->timer)
            event_free(c->timer);
        free(c);
    }
    bufferevent_free(bev);
    server_conn_closed(s);
}

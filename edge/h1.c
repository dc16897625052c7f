/*
 * h1.c: one HTTP/1.1 client connection.
 *
 * Lifecycle (h1_set_state asserts it):
 *   IDLE --bytes--> HEAD --complete head--> RESPONDING --done--> IDLE ...
 *   any state --error, EOF, timeout, Connection: close--> CLOSING -> freed
 *   once the output has drained (or at once when the peer is gone).
 * One exchange at a time: pipelined requests wait in the input buffer and
 * are answered in order. The input is bounded by a read watermark, so a
 * client that pipelines without reading makes us stop reading, not buffer.
 * The response body goes out as references to cache chunks; the output is
 * refilled from the write callback when it drains below OUT_LOW, so a slow
 * client holds at most OUT_HIGH bytes of output plus its chunk references.
 * The connection is never freed inside a call that returns into it: work
 * triggered by a finished response runs from the deferred `proc` event.
 */
#include "config.h"

#include "h1.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "chunk.h"
#include "err.h"
#include "exchange.h"
#include "forward.h"
#include "h2.h"
#include "log.h"
#include "server.h"
#include "vas.h"

/* After a response that closes the connection, input is read and
 * discarded for up to this long before the socket is closed: closing with
 * unread input makes the kernel send a reset, which can destroy the
 * response before the client has read it (RFC 9112 9.6). */
#define LINGER_MS 2000

/* Output watermarks: refill below OUT_LOW, stop adding above OUT_HIGH. */
#define OUT_LOW (64 * 1024)
#define OUT_HIGH (256 * 1024)

enum h1_state { H1_IDLE = 0, H1_HEAD, H1_RESPONDING, H1_CLOSING };

struct h1c {
    unsigned magic;
#define H1C_MAGIC 0x68316331U
    struct server *srv;
    struct server_task task; /* ended by server_free at a stop */
    struct bufferevent *bev;
    enum h1_state state;
    struct exchange *x;
    struct event *timer;  /* idle / header deadline */
    struct event *proc;   /* deferred processing */
    struct http1_header *hdrs;
    unsigned nreq;
    bool keep_alive;      /* for the current response */
    bool head_sent;
    bool chunked_out;
    bool peer_eof;        /* the client half-closed */
    bool lingering;       /* our side shut down, discarding input */
    bool http10;
    bool sendfile;        /* cleartext: block bytes in a file go by sendfile */
    /* a forwarded request's body still being read (forward.h): the
     * bytes left of a Content-Length, or the chunked decoder */
    bool body_pending;
    bool body_chunked;
    uint64_t body_left;
    struct http1_chunked body_dec;
    char peer[64];
};

static void h1_free(struct h1c *c);
static void h1_process(struct h1c *c);

static void h1_set_state(struct h1c *c, enum h1_state to)
{
    switch (to) {
    case H1_IDLE:
        assert_always(c->state == H1_RESPONDING || c->state == H1_IDLE);
        break;
    case H1_HEAD:
        assert_always(c->state == H1_IDLE);
        break;
    case H1_RESPONDING:
        assert_always(c->state == H1_HEAD || c->state == H1_IDLE);
        break;
    case H1_CLOSING:
        break;
    default:
        WRONG("bad h1 state");
    }
    c->state = to;
}

static void ms_tv(unsigned ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static void arm_timer(struct h1c *c, unsigned ms)
{
    struct timeval tv;

    ms_tv(ms, &tv);
    evtimer_add(c->timer, &tv);
}

static void schedule(struct h1c *c)
{
    event_active(c->proc, EV_TIMEOUT, 0);
}

static struct evbuffer *out(struct h1c *c)
{
    return bufferevent_get_output(c->bev);
}

/* Stop reading, answer what is queued, then close. */
static void h1_close_after_output(struct h1c *c)
{
    h1_set_state(c, H1_CLOSING);
    evtimer_del(c->timer);
    bufferevent_disable(c->bev, EV_READ);
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    if (evbuffer_get_length(out(c)) == 0)
        schedule(c); /* frees from the loop */
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* A refusal before any exchange exists (parse errors, timeouts). */
static void h1_refuse(struct h1c *c, int status)
{
    char body[64];
    int bl = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));

    evbuffer_add_printf(out(c),
                        "HTTP/1.1 %d %s\r\nServer: s3edge\r\nDate: %s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                        status, reason(status), server_date(c->srv), bl, body);
    LOG_D("client %s: refused with %d", c->peer, status);
    if (log_access_enabled()) {
        char line[256], ts[32];
        time_iso8601_ms(ts, sizeof(ts));
        int n = snprintf(line, sizeof(line),
                         "time=%s client=%s proto=HTTP/1.1 method=- host=\"\" path=\"\" "
                         "status=%d bytes=0 cache=ERROR dur_ms=0.000",
                         ts, c->peer, status);
        log_access(line, n);
    }
    h1_close_after_output(c);
}

static void write_head(struct h1c *c)
{
    struct exchange *x = c->x;
    struct evbuffer *o = out(c);
    int64_t len = exchange_body_length(x);
    bool body = exchange_has_body(x);

    evbuffer_add_printf(o, "HTTP/1.1 %d %s\r\nServer: s3edge\r\nDate: %s\r\n",
                        x->status, reason(x->status), server_date(c->srv));
    if (x->o != NULL) {
        for (unsigned i = 0; i < x->o->nhdrs; i++) {
            const struct obj_hdr *h = &x->o->hdrs[i];
            if (!exchange_pass_header(x, h))
                continue;
            evbuffer_add_printf(o, "%s: %s\r\n", h->name, h->value);
        }
    }
    for (unsigned i = 0; i < x->nxh; i++)
        evbuffer_add_printf(o, "%s: %s\r\n", x->xh[i].name, x->xh[i].value);
    if (x->err_text)
        evbuffer_add_printf(o, "Content-Type: text/plain; charset=utf-8\r\n");
    if (x->allow_hdr)
        evbuffer_add_printf(o, "Allow: %s\r\n", conf_methods_allow(x->dist->methods));
    if (len >= 0) {
        evbuffer_add_printf(o, "Content-Length: %lld\r\n", (long long)len);
    } else if (body && !c->http10) {
        evbuffer_add_printf(o, "Transfer-Encoding: chunked\r\n");
        c->chunked_out = true;
    } else if (body) {
        c->keep_alive = false; /* HTTP/1.0: the close delimits the body */
    }
    long age = exchange_age(x);
    if (age >= 0)
        evbuffer_add_printf(o, "Age: %ld\r\n", age);
    const char *xc = exchange_xcache(x);
    if (xc != NULL)
        evbuffer_add_printf(o, "X-Cache: %s\r\n", xc);
    if (!c->keep_alive)
        evbuffer_add_printf(o, "Connection: close\r\n");
    else if (c->http10)
        evbuffer_add_printf(o, "Connection: keep-alive\r\n");
    evbuffer_add(o, "\r\n", 2);
}

static void finish_response(struct h1c *c)
{
    if (c->body_pending) {
        /* answered before the request body was read (an error, or the
         * origin answered early): the rest of it cannot be told from a
         * next request without reading it, so the connection ends */
        c->body_pending = false;
        c->keep_alive = false;
    }
    exchange_free(c->x);
    c->x = NULL;
    c->nreq++;
    c->head_sent = false;
    c->chunked_out = false;
    if (!c->keep_alive || c->peer_eof) {
        h1_close_after_output(c);
        return;
    }
    h1_set_state(c, H1_IDLE);
    arm_timer(c, c->srv->conf->client_idle_timeout_ms);
    bufferevent_enable(c->bev, EV_READ);
    /* a pipelined request may already wait in the input */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        schedule(c);
}

/* Move response bytes into the output until it holds OUT_HIGH. */
static void segment_done(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    (void)seg;
    (void)flags;
    chunk_unref(arg);
}

/* Queue len bytes of ch from off: a file segment of its memfd when the
 * connection is cleartext (the kernel takes the pages: no copy here),
 * else a reference to them (copied into the socket or TLS). The output
 * holds a reference on ch until they are sent. */
static int add_body_bytes(struct h1c *c, struct chunk *ch, size_t off, size_t len)
{
    chunk_ref(ch);
    if (c->sendfile && ch->fd >= 0) {
        struct evbuffer_file_segment *seg = evbuffer_file_segment_new(
            ch->fd, (ev_off_t)(ch->foff + off), (ev_off_t)len,
            EVBUF_FS_DISABLE_MMAP | EVBUF_FS_DISABLE_LOCKING);
        if (seg != NULL) {
            evbuffer_file_segment_add_cleanup_cb(seg, segment_done, ch);
            int rc = evbuffer_add_file_segment(out(c), seg, 0, (ev_off_t)len);
            evbuffer_file_segment_free(seg); /* the output's reference keeps it */
            return rc;
        }
    }
    if (evbuffer_add_reference(out(c), ch->data + off, len, chunk_unref_cb, ch) < 0) {
        chunk_unref(ch);
        return -1;
    }
    return 0;
}

static void pump(struct h1c *c)
{
    struct exchange *x = c->x;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    if (!c->head_sent) {
        if (!exchange_head_ready(x))
            return; /* woken when the origin answers */
        write_head(c);
        c->head_sent = true;
    }
    if (!exchange_has_body(x)) {
        finish_response(c);
        return;
    }
    if (x->err_text != NULL) {
        evbuffer_add(out(c), x->err_text, strlen(x->err_text));
        x->bytes_sent += strlen(x->err_text);
        finish_response(c);
        return;
    }
    while (evbuffer_get_length(out(c)) < OUT_HIGH) {
        struct chunk *ch;
        size_t off, len;
        switch (exchange_body_peek(x, &ch, &off, &len)) {
        case OBJ_READ_DATA:
            if (c->chunked_out)
                evbuffer_add_printf(out(c), "%zx\r\n", len);
            if (add_body_bytes(c, ch, off, len) < 0) {
                x->body_incomplete = true;
                c->keep_alive = false;
                finish_response(c);
                return;
            }
            if (c->chunked_out)
                evbuffer_add(out(c), "\r\n", 2);
            exchange_body_advance(x, len);
            x->bytes_sent += len;
            break;
        case OBJ_READ_WAIT:
            return;
        case OBJ_READ_EOF:
            if (c->chunked_out)
                evbuffer_add(out(c), "0\r\n\r\n", 5);
            finish_response(c);
            return;
        case OBJ_READ_ERROR:
            /* the fill failed mid-body: the client must see a truncation,
             * never a short body that looks complete */
            x->body_incomplete = true;
            c->keep_alive = false;
            finish_response(c);
            return;
        }
    }
}

/*
 * Hand the request body in the input to a forwarded exchange, as far as
 * the origin takes it (forward_body_room); the rest waits in the input,
 * whose read watermark then stops reading from the client. A body the
 * exchange does not take (any more) is not read: the connection closes
 * after the response.
 */
static void feed_body(struct h1c *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct exchange *x = c->x;
    bool moved = false;

    CHECK_OBJ_NOTNULL(x, EXCHANGE_MAGIC);
    while (c->body_pending) {
        ssize_t room = forward_body_room(x);
        if (room < 0) {
            c->body_pending = false;
            c->keep_alive = false;
            break;
        }
        size_t avail = evbuffer_get_length(in);
        if (room == 0 || avail == 0)
            break;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        size_t len = v.iov_len < (size_t)room ? v.iov_len : (size_t)room;
        if (!c->body_chunked) {
            if (len > c->body_left)
                len = (size_t)c->body_left;
            forward_body_in(x, v.iov_base, len);
            evbuffer_drain(in, len);
            c->body_left -= len;
            moved = true;
            if (c->body_left == 0) {
                c->body_pending = false;
                forward_body_end(x);
            }
            continue;
        }
        size_t consumed = 0, off = 0, dlen = 0;
        int r = http1_chunked_feed(&c->body_dec, v.iov_base, len, &consumed, &off, &dlen);
        if (r < 0) {
            LOG_D("client %s: bad chunked request body", c->peer);
            c->body_pending = false;
            c->keep_alive = false;
            forward_body_abort(x, 400);
            break;
        }
        if (dlen > 0)
            forward_body_in(x, (const char *)v.iov_base + off, dlen);
        evbuffer_drain(in, consumed);
        moved = moved || consumed > 0;
        if (r == 1) {
            c->body_pending = false;
            forward_body_end(x);
        } else if (consumed == 0) {
            break;
        }
    }
    /* a client that stops sending its body is given up on after the send
     * timeout; an origin that stops taking it has its own timeouts */
    if (c->body_pending && evbuffer_get_length(in) == 0) {
        if (moved || !evtimer_pending(c->timer, NULL))
            arm_timer(c, c->srv->conf->client_send_timeout_ms);
    } else {
        evtimer_del(c->timer);
    }
}

static void exchange_wake(void *arg)
{
    struct h1c *c;

    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    if (c->state == H1_RESPONDING && c->x != NULL) {
        if (c->body_pending)
            feed_body(c);
        if (c->x != NULL)
            pump(c);
    }
}

static const struct exchange_ops h1_exchange_ops = {
    .wake = exchange_wake,
};

static void start_exchange(struct h1c *c, const struct http1_request *req)
{
    struct exchange *x;

    c->keep_alive = req->keep_alive &&
                    c->nreq + 1 < c->srv->conf->max_keepalive_requests;
    c->http10 = req->version_minor == 0;
    x = exchange_new(c->srv, &h1_exchange_ops, c);
    if (x == NULL) {
        h1_refuse(c, 503);
        return;
    }
    c->x = x;
    h1_set_state(c, H1_RESPONDING);
    if (exchange_set_request(x, req, c->http10 ? "HTTP/1.0" : "HTTP/1.1", c->peer) < 0) {
        exchange_free(x);
        c->x = NULL;
        h1_refuse(c, 503);
        return;
    }
    /* a request body on GET/HEAD has no meaning for us, and reading it
     * would cost a buffer: answer, then close (RFC 9110 9.3.1) */
    bool body = req->content_length > 0 || req->chunked;
    if (body && (req->method == HTTP1_M_GET || req->method == HTTP1_M_HEAD)) {
        c->keep_alive = false;
        x->status = 400;
        x->err_text = "400 Bad Request: request body not allowed\n";
        x->cache = XC_ERROR;
    }
    if (x->status == 0)
        exchange_start(x);
    if (body && forward_body_room(x) >= 0) {
        /* a forwarded request: its body is read as the origin takes it
         * (feed_body, once the head is drained from the input) */
        c->body_pending = true;
        c->body_chunked = req->chunked;
        c->body_left = req->chunked ? 0 : (uint64_t)req->content_length;
        if (req->chunked)
            http1_chunked_init(&c->body_dec);
        if (req->expect_continue && !c->http10)
            evbuffer_add_printf(out(c), "HTTP/1.1 100 Continue\r\n\r\n");
    } else if (body) {
        c->keep_alive = false; /* not read: answer, then close */
    }
    pump(c);
}

/* RFC 9113 3.4: a client with prior knowledge of HTTP/2 opens with this. */
static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN (sizeof(h2_preface) - 1)

/* 1: the input starts with the preface; 0: it is a proper prefix of it
 * (wait for more); -1: HTTP/1. */
static int sniff_h2(struct evbuffer *in, size_t len)
{
    char b[H2_PREFACE_LEN];
    size_t n = len < H2_PREFACE_LEN ? len : H2_PREFACE_LEN;

    if (evbuffer_copyout(in, b, n) != (ev_ssize_t)n || memcmp(b, h2_preface, n) != 0)
        return -1;
    return n == H2_PREFACE_LEN ? 1 : 0;
}

/* h2c (RFC 9113 3.3): the same connection, so it is not counted again;
 * the bufferevent and its input go to h2.c, the rest of us is freed. */
static void h1_to_h2(struct h1c *c)
{
    struct server *s = c->srv;
    struct bufferevent *bev = c->bev;
    char peer[sizeof(c->peer)];

    snprintf(peer, sizeof(peer), "%s", c->peer);
    bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
    event_free(c->timer);
    event_free(c->proc);
    free(c->hdrs);
    server_task_untrack(s, &c->task);
    c->magic = 0;
    free(c);
    h2_conn_attach(s, bev, peer, false);
}

/* Parse the next request head from the input, if complete. */
static void try_request(struct h1c *c)
{
    const struct conf *cf = c->srv->conf;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in);
    struct http1_limits lim = {
        .max_request_line = cf->max_request_line,
        .max_head_bytes = cf->max_head_bytes,
        .max_headers = cf->max_headers,
    };
    struct http1_request req;
    int status = 400;

    if (len == 0)
        return;
    if (c->nreq == 0 && c->state == H1_IDLE) {
        int h2 = sniff_h2(in, len);
        if (h2 > 0) {
            h1_to_h2(c); /* c is gone */
            return;
        }
        if (h2 == 0) {
            arm_timer(c, cf->client_header_timeout_ms);
            return;
        }
    }
    if (c->state == H1_IDLE) {
        h1_set_state(c, H1_HEAD);
        /* the whole head must arrive within this time (slow-loris) */
        arm_timer(c, cf->client_header_timeout_ms);
    }
    size_t plen = len > (size_t)cf->max_head_bytes + 1 ? (size_t)cf->max_head_bytes + 1 : len;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)plen);
    if (p == NULL) {
        h1_refuse(c, 503);
        return;
    }
    memset(&req, 0, sizeof(req));
    req.headers = c->hdrs;
    int r = http1_parse_request(p, plen, &lim, &req, &status);
    if (r == EDGE_EAGAIN) {
        if (plen > cf->max_head_bytes)
            h1_refuse(c, 431);
        return;
    }
    if (r < 0) {
        h1_refuse(c, status >= 400 ? status : 400);
        return;
    }
    evtimer_del(c->timer);
    /* the parsed fields point into the input: copy them out before the
     * head is drained */
    start_exchange(c, &req);
    if (c->state != H1_CLOSING)
        evbuffer_drain(in, req.head_len);
    if (c->body_pending && c->x != NULL)
        feed_body(c);
}

/* The output is flushed: half-close and drain the input until the client
 * closes too, or LINGER_MS pass. */
static void h1_linger(struct h1c *c)
{
    if (c->peer_eof || c->lingering) {
        if (c->peer_eof)
            h1_free(c);
        return;
    }
    c->lingering = true;
    /* over TLS the end of our data is a close_notify (RFC 8446 6.1);
     * without it strict clients see a truncation and drop the session.
     * The output is empty here, so nothing is written behind it. */
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (ssl != NULL)
        (void)SSL_shutdown(ssl);
    if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) < 0) {
        h1_free(c);
        return;
    }
    evbuffer_drain(bufferevent_get_input(c->bev),
                   evbuffer_get_length(bufferevent_get_input(c->bev)));
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    arm_timer(c, LINGER_MS);
}

static void h1_process(struct h1c *c)
{
    switch (c->state) {
    case H1_CLOSING:
        if (evbuffer_get_length(out(c)) == 0)
            h1_linger(c);
        return;
    case H1_RESPONDING:
        if (c->x)
            pump(c);
        return;
    case H1_IDLE:
    case H1_HEAD:
        if (c->peer_eof && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
            h1_free(c);
            return;
        }
        try_request(c);
        return;
    }
}

static void proc_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    h1_process(c);
}

static void readcb(struct bufferevent *bev, void *arg)
{
    struct h1c *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    if (c->state == H1_IDLE || c->state == H1_HEAD)
        try_request(c);
    else if (c->state == H1_CLOSING)
        evbuffer_drain(bufferevent_get_input(c->bev),
                       evbuffer_get_length(bufferevent_get_input(c->bev)));
    else if (c->state == H1_RESPONDING && c->body_pending && c->x != NULL)
        feed_body(c);
    /* RESPONDING: pipelined bytes wait; the read watermark bounds them */
}

static void writecb(struct bufferevent *bev, void *arg)
{
    struct h1c *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    if (c->state == H1_CLOSING) {
        if (evbuffer_get_length(out(c)) == 0)
            h1_linger(c);
        return;
    }
    if (c->state == H1_RESPONDING && c->x)
        pump(c);
}

static void eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct h1c *c;

    (void)bev;
    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == H1_CLOSING) {
        /* the client is done sending; our answer may still be queued */
        c->peer_eof = true;
        if (c->lingering || evbuffer_get_length(out(c)) == 0)
            h1_free(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        (c->state == H1_RESPONDING ||
         evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)) {
        /* a half-close after the request: answer it, then close */
        c->peer_eof = true;
        c->keep_alive = false;
        if (c->state != H1_RESPONDING)
            schedule(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT)
        LOG_D("client %s: send timeout", c->peer);
    h1_free(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct h1c *c;

    (void)fd;
    (void)what;
    CAST_OBJ_NOTNULL(c, arg, H1C_MAGIC);
    if (c->state == H1_HEAD) {
        h1_refuse(c, 408);
        return;
    }
    if (c->state == H1_RESPONDING && c->body_pending && c->x != NULL) {
        /* the request body stalled: stop forwarding it */
        LOG_D("client %s: request body timeout", c->peer);
        c->body_pending = false;
        c->keep_alive = false;
        forward_body_abort(c->x, 408);
        return;
    }
    if (c->state == H1_IDLE || c->lingering)
        h1_free(c); /* keep-alive idle, or lingering done: close quietly */
}

static void h1_free(struct h1c *c)
{
    CHECK_OBJ_NOTNULL(c, H1C_MAGIC);
    if (c->x != NULL) {
        if (c->head_sent || c->x->status != 0)
            c->x->body_incomplete = c->x->status != 0;
        exchange_free(c->x);
    }
    event_free(c->timer);
    event_free(c->proc);
    bufferevent_free(c->bev);
    free(c->hdrs);
    server_task_untrack(c->srv, &c->task);
    server_conn_closed(c->srv);
    c->magic = 0;
    free(c);
}

static void h1_stop_now(struct server_task *t)
{
    struct h1c *c = (struct h1c *)(void *)((char *)t - offsetof(struct h1c, task));

    CHECK_OBJ_NOTNULL(c, H1C_MAGIC);
    h1_free(c);
}

void h1_peer_name(const struct sockaddr *sa, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(out, cap, "%s:%u", a, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        snprintf(out, cap, "[%s]:%u", a, ntohs(s6->sin6_port));
    } else {
        snprintf(out, cap, "unix");
    }
}

void h1_conn_attach(struct server *s, struct bufferevent *bev, const char *peer)
{
    struct h1c *c = calloc(1, sizeof(*c));
    struct timeval tv;

    if (c == NULL) {
        bufferevent_free(bev);
        server_conn_closed(s);
        return;
    }
    c->magic = H1C_MAGIC;
    c->srv = s;
    c->bev = bev;
    c->sendfile = bufferevent_openssl_get_ssl(bev) == NULL;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->hdrs = calloc(s->conf->max_headers ? s->conf->max_headers : 1, sizeof(*c->hdrs));
    c->timer = evtimer_new(s->base, timer_cb, c);
    c->proc = event_new(s->base, -1, 0, proc_cb, c);
    if (c->hdrs == NULL || c->timer == NULL || c->proc == NULL) {
        if (c->timer)
            event_free(c->timer);
        if (c->proc)
            event_free(c->proc);
        free(c->hdrs);
        free(c);
        bufferevent_free(bev);
        server_conn_closed(s);
        return;
    }
    server_task_track(s, &c->task, SERVER_TASK_CONN, h1_stop_now);
    bufferevent_setcb(c->bev, readcb, writecb, eventcb, c);
    /* libevent writes at most 16 KiB per call by default: a large body
     * would cost a syscall per 16 KiB */
    bufferevent_set_max_single_write(c->bev, c->sendfile ? 4 * OUT_HIGH : OUT_HIGH);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
    /* bounded input: a head, plus what pipelining may queue behind it */
    bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)s->conf->max_head_bytes * 2);
    ms_tv(s->conf->client_send_timeout_ms, &tv);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->state = H1_IDLE;
    arm_timer(c, s->conf->client_idle_timeout_ms);
    /* bytes read before the hand-over (ALPN, sniffing) */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        schedule(c);
}

void h1_conn_new(struct server *s, evutil_socket_t fd, const struct sockaddr *sa,
                 int salen)
{
    struct bufferevent *bev;
    char peer[64];

    (void)salen;
    h1_peer_name(sa, peer, sizeof(peer));
    bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (bev == NULL) {
        evutil_closesocket(fd);
        server_conn_closed(s);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h1_conn_attach(s, bev, peer);
}

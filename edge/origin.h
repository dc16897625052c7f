/*
 * origin.h: the S3 (HTTP/1.1) origin client.
 *
 * One struct origin per configured origin: credentials, a SigV4 signing
 * key cache, a TLS context and a keep-alive connection pool. A fetch is
 * one request/response on one pooled connection.
 *
 * Callbacks run from the event loop, never from inside origin_fetch_start.
 * After on_done (or origin_fetch_cancel) the fetch is gone: no callback
 * follows, and the caller must drop its pointer. on_done's err is NULL on
 * success or one of the ORIGIN_ERR_* strings (compare pointers).
 */
#ifndef S3EDGE_ORIGIN_H
#define S3EDGE_ORIGIN_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "http1.h"

struct event_base;
struct evdns_base;
struct evbuffer;
struct origin;
struct origin_fetch;

extern const char ORIGIN_ERR_CONNECT[];       /* refused, unreachable, DNS, TLS */
extern const char ORIGIN_ERR_CONNECT_TIMEOUT[];
extern const char ORIGIN_ERR_FIRST_BYTE_TIMEOUT[];
extern const char ORIGIN_ERR_IDLE_TIMEOUT[];
extern const char ORIGIN_ERR_PROTOCOL[];      /* unparseable or oversized head, bad chunking */
extern const char ORIGIN_ERR_TRUNCATED[];     /* closed before the announced body end */
extern const char ORIGIN_ERR_RESOURCES[];     /* out of memory or connection limit */

struct origin_req {
    const char *method;  /* "GET", "HEAD", or a forwarded method */
    const char *key;     /* raw S3 key bytes, NUL-terminated */
    /* a plain (type http) origin: the request path as the client sent it,
     * escapes and all; the key is then only for logs */
    const char *path;
    const char *query;   /* wire query to send (no '?'), or NULL */
    const char *range;   /* Range header value to send, or NULL */
    /* validators of a stored copy, for a conditional GET (RFC 9111 4.3.1) */
    const char *if_none_match;
    const char *if_modified_since;
    /* pins a block fetch to the version whose ETag this is: S3 answers 412
     * when the object was replaced */
    const char *if_match;
    const char *if_unmodified_since; /* the same by date, for objects without an ETag */
    /* a forwarded request: more header fields to send (the caller chose
     * them; an S3 origin gets its x-amz-* fields signed), and whether a
     * body follows through origin_fetch_body_write() and _end(), of
     * body_length bytes or, -1, of a length unknown (sent chunked). A
     * fetch with a body, or a POST or PATCH, is never retried: it gets a
     * new connection rather than one from the pool. */
    const struct http1_header *headers;
    unsigned nheaders;
    bool body;
    int64_t body_length;
};

struct origin_resp {
    int status;
    int64_t content_length; /* -1: unknown (chunked or close-delimited) */
    const struct http1_header *headers; /* valid during on_head only */
    unsigned nheaders;
};

typedef void origin_head_f(void *arg, const struct origin_resp *resp);
/* Body bytes: the callee takes what it wants out of `buf` (evbuffer_remove
 * etc.) and must take everything unless it paused the fetch. */
typedef void origin_body_f(void *arg, struct evbuffer *buf);
typedef void origin_done_f(void *arg, const char *err);

/* The request body's buffer drained: origin_fetch_body_room() is
 * positive again. */
typedef void origin_send_ready_f(void *arg);

struct origin_cbs {
    origin_head_f *on_head;
    origin_body_f *on_body;
    origin_done_f *on_done;
    origin_send_ready_f *on_send_ready; /* may be NULL without a body */
};

struct origin *origin_new(struct event_base *base, struct evdns_base *dns,
                          const struct conf_origin *co, char *err, size_t errlen);
void origin_free(struct origin *o);
const struct conf_origin *origin_conf(const struct origin *o);

/* Start a fetch; NULL only on allocation failure. */
struct origin_fetch *origin_fetch_start(struct origin *o,
                                        const struct origin_req *req,
                                        const struct origin_cbs *cbs, void *arg);
/* Abandon a fetch: its connection is closed (mid-body) or kept; no more
 * callbacks. Safe from inside the fetch's own callbacks. */
void origin_fetch_cancel(struct origin_fetch *f);
/* Stop / restart reading the body (backpressure for pass-through). */
void origin_fetch_pause(struct origin_fetch *f);
void origin_fetch_resume(struct origin_fetch *f);

/* The request body (origin_req.body). Bytes are queued until the
 * connection is up and written behind the request head; the caller hands
 * at most origin_fetch_body_room() bytes at a time and waits for
 * on_send_ready otherwise, so the queue stays bounded. write moves n
 * bytes from p (0 or EDGE_ENOMEM); end says the body is complete (the
 * first-byte timeout starts then). Writing more than body_length is the
 * caller's bug. */
#define ORIGIN_BODY_HIGH (256 * 1024)
size_t origin_fetch_body_room(const struct origin_fetch *f);
int origin_fetch_body_write(struct origin_fetch *f, const void *p, size_t n);
void origin_fetch_body_end(struct origin_fetch *f);

/* counters, for logs and tests */
struct origin_stats {
    uint64_t requests;
    uint64_t connects;
    uint64_t reused;
    uint64_t waited;   /* fetches that waited for a connection (at max_connections) */
    uint64_t errors;
    uint64_t bytes_in;
};
void origin_get_stats(const struct origin *o, struct origin_stats *out);

#endif

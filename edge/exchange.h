/*
 * exchange.h: one request and its response, the same for every protocol.
 *
 * A protocol connection (h1 now, h2 later) fills in the request fields,
 * calls exchange_start(), and then pulls: exchange_head_ready() says when
 * the status and headers are known, the response fields and
 * exchange_body_*() give the body. When the exchange has news (headers
 * arrived, bytes published, the fill ended) it calls ops->wake(conn) — never
 * from inside a call the connection made, so connections see no
 * re-entrancy. exchange_free() writes the access-log line and releases
 * everything the exchange holds.
 *
 * Steps: route -> check method -> map path to key -> lookup -> hit | fill
 * -> deliver -> done (the step loop of later issues grows from here).
 */
#ifndef S3EDGE_EXCHANGE_H
#define S3EDGE_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "http1.h"
#include "range.h"

struct server;
struct event;
struct fwd;

struct exchange_ops {
    void (*wake)(void *conn);
};

/* REFRESH: a stale copy revalidated with the origin (304), CloudFront's
 * RefreshHit */
enum exchange_cache_status { XC_NONE = 0, XC_HIT, XC_MISS, XC_PASS, XC_ERROR, XC_REFRESH };

struct exchange {
    unsigned magic;
#define EXCHANGE_MAGIC 0x78636867U
    struct server *srv;
    const struct exchange_ops *ops;
    void *conn;
    struct event *wake_ev;

    /* request (owned copies) */
    enum http1_method method;
    char *method_str, *host, *path, *query, *range;
    char *query_sel;         /* the query the distribution keys and forwards, or NULL */
    const char *proto;       /* "HTTP/1.1" */
    char client[64];         /* "addr:port" */
    uint64_t start_us;

    /* response */
    const struct conf_distribution *dist;
    int status;              /* 0 until known */
    enum exchange_cache_status cache;
    const char *err_text;    /* body of an error of ours */
    bool allow_hdr;          /* 405: send Allow */
    struct obj *o;           /* the body source, or NULL for errors of ours */
    struct obj_reader rd;
    bool reading;
    struct obj *stale;       /* a stale stored copy being revalidated (ref) */
    bool revalidated;        /* served the stored copy after a 304 */
    bool stale_served;       /* served stale (stale-while-revalidate / -if-error) */
    /* a disk hit: its headers decide between hit and revalidation, and a
     * bad file sends the request to the origin with these keys */
    bool from_disk;
    bool disk_pending;
    char *ckey, *s3key;
    size_t ckey_len;
    /* the client's preconditions (RFC 9110 13), copied */
    struct http1_header cond[4];
    unsigned ncond;
    char *cond_blob;
    const char *if_range;    /* in cond_blob, or NULL */
    /* coalescing: attached to an object still waiting for its headers */
    bool joined;
    /* the response body: the whole object, one range, or several as
     * multipart/byteranges (part headers are chunks of their own) */
    enum { XB_WHOLE = 0, XB_RANGE, XB_MULTI } body_mode;
    int64_t body_len;        /* Content-Length, -1 unknown */
    uint64_t body_left;      /* bytes still to hand over, when the length is known */
    struct range_span *spans;
    unsigned nspans;
    struct chunk **part_hdr; /* nspans + 1 (the closing delimiter) */
    unsigned part;           /* multipart: the part being sent */
    bool in_part_data;
    size_t part_off;
    char content_range[80];
    char content_type[96];
    /* headers of ours besides the stored ones (Content-Range, ...) */
    struct obj_hdr xh[3];
    unsigned nxh;
    struct event *rt_ev;     /* reader timeout: waiting for a block too long */
    bool rt_expired;         /* handed its block over once */
    bool rt_gave_up;
    struct fwd *fwd;         /* a forwarded request (forward.h), or NULL */
    uint64_t bytes_sent;     /* body bytes handed to the transport */
    bool body_incomplete;    /* the response was cut short */
};

struct exchange *exchange_new(struct server *s, const struct exchange_ops *ops,
                              void *conn);
/* Copy the request fields; returns 0 or EDGE_ENOMEM. */
int exchange_set_request(struct exchange *x, const struct http1_request *req,
                         const char *proto, const char *client);

/* The same from separate fields (HTTP/2: :method, :authority, :path split
 * at '?', the range header). Strings need not be NUL-terminated; query and
 * range may be NULL. */
struct exchange_req {
    enum http1_method method;
    const char *method_str;
    size_t method_len;
    const char *host;
    size_t host_len;
    const char *path;
    size_t path_len;
    const char *query;
    size_t query_len;
    const char *range;
    size_t range_len;
    /* all request header fields (the exchange copies those it uses:
     * If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) */
    const struct http1_header *headers;
    unsigned nheaders;
    /* a request body follows, of body_length bytes (-1: unknown) */
    bool body;
    int64_t body_length;
};
int exchange_set_fields(struct exchange *x, const struct exchange_req *r,
                        const char *proto, const char *client);
void exchange_start(struct exchange *x);
/* true when status and headers are known (x->status is set) */
bool exchange_head_ready(struct exchange *x);
/* Content-Length of the response body (-1: unknown), and whether the
 * response carries a body at all (HEAD, 304, errors of ours on HEAD). */
int64_t exchange_body_length(const struct exchange *x);
bool exchange_has_body(const struct exchange *x);
/* The body, for the connection to send (any protocol): the same contract
 * as obj_reader_peek/obj_reader_advance, over the whole response body
 * (multipart part headers included). exchange_body_ends: whether handing
 * over n more bytes completes the body. */
enum obj_read_status exchange_body_peek(struct exchange *x, struct chunk **c, size_t *off,
                                        size_t *len);
void exchange_body_advance(struct exchange *x, size_t n);
bool exchange_body_ends(const struct exchange *x, size_t n);
/* Age header value for hits, -1 otherwise. */
long exchange_age(const struct exchange *x);
/* Whether a stored header goes into this response (errors of ours keep
 * only Content-Range; a 304 only the fields RFC 9110 15.4.5 names). */
bool exchange_pass_header(const struct exchange *x, const struct obj_hdr *h);
const char *exchange_cache_name(const struct exchange *x);
/* The X-Cache header value ("Hit from s3edge" ...), or NULL for none. */
const char *exchange_xcache(const struct exchange *x);
void exchange_free(struct exchange *x);

#endif

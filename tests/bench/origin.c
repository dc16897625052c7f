/*
 * origin.c - S3-like origin for the side-by-side benchmark.
 *
 * Serves generated objects of any size from one in-memory pattern block:
 * the last path segment names the size ("1K", "100M", "1G", "12345";
 * K/M/G are binary units), so /bucket/any/prefix/100M is a 100 MiB object.
 * Bytes, ETag and Last-Modified depend only on the key, so every request
 * for a key (and every range of it) returns the same bytes, as S3 does.
 *
 * Each listener (-l LABEL:DELAY_MS:RATE) has its own first-byte delay and
 * per-connection rate limit, and its own request/byte counters, so that
 * one process can front every proxy of the benchmark and still tell how
 * many requests and bytes each proxy pulled.  S3 answers in ~50 ms and
 * streams one connection at roughly 100 MiB/s; "-l x:50:104857600" mimics
 * that, "-l direct:0:0" is the no-delay, no-limit ceiling.
 *
 * Control requests (answered at once, never counted):
 *   GET /_bench/stats     JSON counters per listener
 *   GET /_bench/object/LABEL/PATH
 *                         JSON counters of one object as listener LABEL
 *                         served it: requests, body bytes written, and per
 *                         1 MiB block how many responses sent a byte of it
 *   GET /_bench/fast/1    no delay and no rate limit for new responses
 *   GET /_bench/fast/0    back to the configured delay and rate
 * Fast mode exists so that warming a cache before a timed "hot" run does not
 * cost minutes of 100 MiB/s transfers; it is never on while a run is timed.
 *
 * Supported: GET, HEAD, keep-alive, pipelining (answered in order), one
 * byte range (RFC 9110 section 14.1.2: a-b, a-, -n; several ranges are
 * ignored and the whole object sent, unsatisfiable ones get 416),
 * If-None-Match (304).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define PAT_SIZE        (1u << 20)      /* pattern period: 1 MiB */
#define CHUNK           (1u << 20)      /* one evbuffer reference */
#define OUT_LOW         (1u << 20)      /* refill below this much queued */
#define OUT_HIGH        (4u << 20)      /* queue up to this much */
#define MAX_HEAD        16384
#define MAX_LISTENERS   16
#define MAX_THREADS     16
#define TICK_MS         10
#define OBJ_SLOTS       (1u << 18)      /* objects counted (open addressing) */
#define OBJ_BLOCK       (1u << 20)      /* block of the per-block counts */
#define OBJ_MAX_BLOCKS  (1u << 16)      /* per-block counts up to 64 GiB */

struct listener_cfg {
    char label[32];
    unsigned delay_ms;
    uint64_t rate;                  /* bytes per second, 0 = unlimited */
    int port;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t bytes;
    atomic_int active;
};

struct worker {
    pthread_t tid;
    struct event_base *base;
    struct ev_token_bucket_cfg *bucket[MAX_LISTENERS];
    char date[64];
    time_t date_at;
};

/*
 * Counters of one object as one listener served it.  Keyed by a 64-bit
 * hash of "LABEL PATH" (a collision among the few hundred thousand keys of
 * a run is negligible); blocks[i] counts the responses that wrote at least
 * one byte of block i, so a block fetched twice shows as 2.
 */
struct objstat {
    uint64_t hash;                  /* 0: free slot */
    uint64_t size;
    uint64_t requests;
    uint64_t bytes;                 /* body bytes written to the socket */
    uint32_t nblocks;
    uint32_t *blocks;               /* NULL for a one-block object */
    uint32_t block0;                /* blocks[0] of a one-block object */
};

enum conn_state { ST_HEAD, ST_WAIT, ST_BODY };

struct conn {
    struct worker *w;
    struct listener_cfg *lc;
    int li;
    struct bufferevent *bev;
    struct event *timer;
    enum conn_state state;
    int keepalive;
    int is_head;
    int status;
    uint64_t seed;
    uint64_t pos;                   /* next object offset to queue */
    uint64_t end;                   /* one past the last offset to send */
    uint64_t resp_bytes;            /* bytes written for this response */
    uint64_t head_bytes;            /* of which the response head */
    uint64_t obj_size;              /* size of the object answered */
    uint64_t body_first;            /* object offset of the first body byte */
    int counted;                    /* an object response to count */
    struct timespec t_req;
    double ttfb_ms;
    char method[8];
    char path[512];
    char range[64];
    char inm[128];                  /* If-None-Match */
};

static uint8_t pattern[2 * PAT_SIZE];
static struct listener_cfg listeners[MAX_LISTENERS];
static int n_listeners;
static struct worker workers[MAX_THREADS];
static int n_workers = 2;
static atomic_int fast_mode;
static atomic_uint_fast64_t req_id;
static FILE *req_log;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static struct objstat *objstats;
static uint64_t objstats_used, objstats_dropped;
static pthread_mutex_t obj_mu = PTHREAD_MUTEX_INITIALIZER;
static const char last_modified[] = "Wed, 01 Jan 2025 00:00:00 GMT";

static void conn_free(struct conn *c);
static void conn_read_cb(struct bufferevent *bev, void *arg);

static double
ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
        (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static uint64_t
hash_key(const char *s)
{
    /* FNV-1a, then a final mix so that near keys differ in every byte. */
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 1099511628211ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static void
pattern_init(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t i;

    /* xorshift64: incompressible, so no layer gains by compressing */
    for (i = 0; i < PAT_SIZE; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(pattern + i, &x, 8);
    }
    memcpy(pattern + PAT_SIZE, pattern, PAT_SIZE);
}

/* Size from the last path segment: digits, optional K/M/G (binary units). */
static int
parse_size(const char *key, uint64_t *size)
{
    const char *seg = strrchr(key, '/');
    char *end;
    unsigned long long v;

    seg = seg != NULL ? seg + 1 : key;
    if (*seg < '0' || *seg > '9')
        return -1;
    errno = 0;
    v = strtoull(seg, &end, 10);
    if (errno != 0)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end != '\0' || v > (1ull << 40))
        return -1;
    *size = v;
    return 0;
}

static const char *
http_date(struct worker *w)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now != w->date_at) {
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof(w->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_at = now;
    }
    return w->date;
}

static void
log_request(struct conn *c, const char *how)
{
    struct timespec now;

    if (req_log == NULL)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&log_mu);
    fprintf(req_log, "%lld.%03ld %s %s %s range=%s status=%d bytes=%" PRIu64
        " ttfb_ms=%.3f dur_ms=%.3f %s\n", (long long)now.tv_sec,
        now.tv_nsec / 1000000, c->lc->label, c->method, c->path,
        c->range[0] != '\0' ? c->range : "-", c->status, c->resp_bytes,
        c->ttfb_ms, ms_since(&c->t_req), how);
    pthread_mutex_unlock(&log_mu);
}

static uint64_t
objstat_hash(const char *label, const char *path)
{
    char key[600];

    snprintf(key, sizeof(key), "%s %s", label, path);
    return hash_key(key) | 1;       /* never 0, the free mark */
}

/* The slot of this hash: found, or claimed when create; NULL otherwise. */
static struct objstat *
objstat_slot(uint64_t h, int create)
{
    uint64_t i, n;

    for (n = 0, i = h & (OBJ_SLOTS - 1); n < OBJ_SLOTS;
        n++, i = (i + 1) & (OBJ_SLOTS - 1)) {
        if (objstats[i].hash == h)
            return &objstats[i];
        if (objstats[i].hash == 0) {
            /* three quarters full at most: lookups stay short */
            if (!create || objstats_used >= OBJ_SLOTS / 4 * 3)
                return NULL;
            objstats_used++;
            objstats[i].hash = h;
            return &objstats[i];
        }
    }
    return NULL;
}

/* Adds one finished (or aborted) object response to its object's counts. */
static void
objstat_account(struct conn *c)
{
    struct objstat *o;
    uint64_t body, b, last;

    if (!c->counted || objstats == NULL)
        return;
    c->counted = 0;
    body = c->resp_bytes > c->head_bytes ? c->resp_bytes - c->head_bytes : 0;
    pthread_mutex_lock(&obj_mu);
    o = objstat_slot(objstat_hash(c->lc->label, c->path), 1);
    if (o == NULL) {
        objstats_dropped++;
        pthread_mutex_unlock(&obj_mu);
        return;
    }
    if (o->requests == 0) {
        o->size = c->obj_size;
        o->nblocks = (uint32_t)(c->obj_size / OBJ_BLOCK +
            (c->obj_size % OBJ_BLOCK != 0));
        if (o->nblocks > OBJ_MAX_BLOCKS)
            o->nblocks = OBJ_MAX_BLOCKS;
        if (o->nblocks > 1)
            o->blocks = calloc(o->nblocks, sizeof(*o->blocks));
    }
    o->requests++;
    o->bytes += body;
    if (body > 0) {
        last = (c->body_first + body - 1) / OBJ_BLOCK;
        for (b = c->body_first / OBJ_BLOCK; b <= last && b < o->nblocks;
            b++) {
            if (o->blocks != NULL)
                o->blocks[b]++;
            else if (b == 0)
                o->block0++;
        }
    }
    pthread_mutex_unlock(&obj_mu);
}

/* JSON of one object's counts into body (at most cap bytes). */
static void
objstat_json(const char *label, const char *path, char *body, size_t cap)
{
    struct objstat *o;
    uint64_t fetched = 0, twice = 0, total = 0, max = 0, v;
    uint32_t i;

    pthread_mutex_lock(&obj_mu);
    o = objstats != NULL ? objstat_slot(objstat_hash(label, path), 0) : NULL;
    if (o != NULL) {
        for (i = 0; i < o->nblocks; i++) {
            v = o->blocks != NULL ? o->blocks[i] : o->block0;
            fetched += v > 0;
            twice += v > 1;
            total += v;
            if (v > max)
                max = v;
        }
        snprintf(body, cap, "{\"requests\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"size\":%" PRIu64 ",\"blocks\":%" PRIu32
            ",\"blocks_fetched\":%" PRIu64 ",\"blocks_fetched_twice\":%"
            PRIu64 ",\"block_fetches\":%" PRIu64
            ",\"max_fetches_per_block\":%" PRIu64 "}\n", o->requests,
            o->bytes, o->size, o->nblocks, fetched, twice, total, max);
    } else
        snprintf(body, cap, "{\"requests\":0,\"bytes\":0,\"blocks\":0,"
            "\"blocks_fetched\":0,\"blocks_fetched_twice\":0,"
            "\"block_fetches\":0,\"max_fetches_per_block\":0,"
            "\"untracked\":%" PRIu64 "}\n", objstats_dropped);
    pthread_mutex_unlock(&obj_mu);
}

/* Counts every byte the kernel accepted for this connection. */
static void
out_drained_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
    struct conn *c = arg;

    (void)buf;
    if (info->n_deleted > 0) {
        c->resp_bytes += info->n_deleted;
        if (c->li >= 0)
            atomic_fetch_add(&c->lc->bytes, info->n_deleted);
    }
}

static void
queue_body(struct conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    while (c->pos < c->end && evbuffer_get_length(out) < OUT_HIGH) {
        uint64_t off = (c->pos + c->seed) % PAT_SIZE;
        uint64_t n = c->end - c->pos;

        if (n > CHUNK)
            n = CHUNK;
        evbuffer_add_reference(out, pattern + off, (size_t)n, NULL, NULL);
        c->pos += n;
    }
    /* Once everything is queued, wake up only when the buffer is empty. */
    bufferevent_setwatermark(c->bev, EV_WRITE,
        c->pos < c->end ? OUT_LOW : 0, 0);
}

static void
response_done(struct conn *c)
{
    log_request(c, "done");
    objstat_account(c);
    if (c->li >= 0)
        atomic_fetch_sub(&c->lc->active, 1);
    if (!c->keepalive) {
        conn_free(c);
        return;
    }
    c->state = ST_HEAD;
    c->range[0] = '\0';
    bufferevent_enable(c->bev, EV_READ);
    /* A pipelined request may already wait in the input buffer. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_read_cb(c->bev, c);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->state != ST_BODY)
        return;
    if (c->pos < c->end) {
        queue_body(c);
        return;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        response_done(c);
}

static void
send_simple(struct conn *c, int status, const char *reason, const char *ctype,
    const char *body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);

    c->status = status;
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
        "Server: bench-origin\r\nContent-Type: %s\r\n"
        "Content-Length: %zu\r\n%s\r\n%s", status, reason, http_date(c->w),
        ctype, strlen(body), c->keepalive ? "" : "Connection: close\r\n",
        body);
    c->pos = c->end = 0;
    c->state = ST_BODY;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

static void
start_response(struct conn *c, uint64_t size, const char *inm)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char etag[40], cr[96];
    uint64_t first = 0, last = size == 0 ? 0 : size - 1;
    int partial = 0;

    snprintf(etag, sizeof(etag), "\"%016" PRIx64 "%016" PRIx64 "\"",
        c->seed, (uint64_t)(c->seed * 0x9e3779b97f4a7c15ull));
    cr[0] = '\0';
    if (inm != NULL && (strcmp(inm, etag) == 0 || strcmp(inm, "*") == 0)) {
        c->status = 304;
        evbuffer_add_printf(out, "HTTP/1.1 304 Not Modified\r\nDate: %s\r\n"
            "Server: bench-origin\r\nETag: %s\r\nLast-Modified: %s\r\n%s\r\n",
            http_date(c->w), etag, last_modified,
            c->keepalive ? "" : "Connection: close\r\n");
        c->pos = c->end = 0;
        c->state = ST_BODY;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        return;
    }
    if (c->range[0] != '\0' && strncmp(c->range, "bytes=", 6) == 0 &&
        strchr(c->range, ',') == NULL) {
        const char *r = c->range + 6;
        char *e;
        unsigned long long a, b;

        if (*r == '-') {
            a = strtoull(r + 1, &e, 10);
            if (e != r + 1 && *e == '\0') {
                if (a == 0 || size == 0)
                    partial = -1;
                else {
                    first = a >= size ? 0 : size - a;
                    last = size - 1;
                    partial = 1;
                }
            }
        } else if (*r >= '0' && *r <= '9') {
            a = strtoull(r, &e, 10);
            if (*e == '-') {
                const char *bs = e + 1;

                if (*bs == '\0') {
                    b = size == 0 ? 0 : size - 1;
                    partial = 1;
                } else {
                    b = strtoull(bs, &e, 10);
                    partial = (*e == '\0' && b >= a) ? 1 : 0;
                }
                if (partial == 1) {
                    if (a >= size)
                        partial = -1;
                    else {
                        first = a;
                        last = b >= size ? size - 1 : b;
                    }
                }
            }
        }
    }
    if (partial < 0) {
        c->status = 416;
        evbuffer_add_printf(out, "HTTP/1.1 416 Requested Range Not Satisfiable"
            "\r\nDate: %s\r\nServer: bench-origin\r\nContent-Range: bytes */%"
            PRIu64 "\r\nContent-Length: 0\r\n%s\r\n", http_date(c->w), size,
            c->keepalive ? "" : "Connection: close\r\n");
        c->pos = c->end = 0;
        c->state = ST_BODY;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        return;
    }
    if (partial)
        snprintf(cr, sizeof(cr), "Content-Range: bytes %" PRIu64 "-%" PRIu64
            "/%" PRIu64 "\r\n", first, last, size);
    c->status = partial ? 206 : 200;
    evbuffer_add_printf(out, "HTTP/1.1 %s\r\nx-amz-request-id: %016" PRIx64
        "\r\nDate: %s\r\nLast-Modified: %s\r\nETag: %s\r\n"
        "Accept-Ranges: bytes\r\nContent-Type: application/octet-stream\r\n"
        "Server: bench-origin\r\n%sContent-Length: %" PRIu64 "\r\n%s\r\n",
        partial ? "206 Partial Content" : "200 OK",
        (uint64_t)atomic_fetch_add(&req_id, 1), http_date(c->w),
        last_modified, etag, cr,
        size == 0 ? 0 : last - first + 1,
        c->keepalive ? "" : "Connection: close\r\n");
    c->head_bytes = evbuffer_get_length(out);
    c->obj_size = size;
    c->body_first = first;
    c->counted = c->li >= 0;
    c->pos = first;
    c->end = (c->is_head || size == 0) ? first : last + 1;
    c->state = ST_BODY;
    queue_body(c);
}

static void
begin_body(struct conn *c)
{
    uint64_t size;
    const char *key = strchr(c->path + 1, '/');

    c->ttfb_ms = ms_since(&c->t_req);
    if (key == NULL || parse_size(key + 1, &size) != 0) {
        send_simple(c, 404, "Not Found", "application/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
            "NoSuchKey</Code><Message>The specified key does not exist."
            "</Message></Error>");
        return;
    }
    c->seed = hash_key(c->path);
    start_response(c, size, c->inm[0] != '\0' ? c->inm : NULL);
}

static void
delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    begin_body(c);
}

static void
control(struct conn *c)
{
    char body[4096];
    const char *q;
    size_t n = 0;
    int i;

    if (strcmp(c->path, "/_bench/fast/1") == 0) {
        atomic_store(&fast_mode, 1);
        send_simple(c, 200, "OK", "text/plain", "fast\n");
    } else if (strcmp(c->path, "/_bench/fast/0") == 0) {
        atomic_store(&fast_mode, 0);
        send_simple(c, 200, "OK", "text/plain", "normal\n");
    } else if (strcmp(c->path, "/_bench/stats") == 0) {
        n += (size_t)snprintf(body + n, sizeof(body) - n, "{\"fast\":%d",
            atomic_load(&fast_mode));
        for (i = 0; i < n_listeners && n < sizeof(body) - 200; i++)
            n += (size_t)snprintf(body + n, sizeof(body) - n,
                ",\"%s\":{\"requests\":%" PRIu64 ",\"bytes\":%" PRIu64
                ",\"active\":%d}", listeners[i].label,
                (uint64_t)atomic_load(&listeners[i].requests),
                (uint64_t)atomic_load(&listeners[i].bytes),
                atomic_load(&listeners[i].active));
        snprintf(body + n, sizeof(body) - n, "}\n");
        send_simple(c, 200, "OK", "application/json", body);
    } else if (strncmp(c->path, "/_bench/object/", 15) == 0 &&
        (q = strchr(c->path + 15, '/')) != NULL && q - c->path - 15 < 32) {
        char label[32];

        memcpy(label, c->path + 15, (size_t)(q - c->path - 15));
        label[q - c->path - 15] = '\0';
        objstat_json(label, q, body, sizeof(body));
        send_simple(c, 200, "OK", "application/json", body);
    } else
        send_simple(c, 404, "Not Found", "text/plain", "no such control\n");
}

/* Parses one request head; returns 1 if one was consumed, 0 if incomplete. */
static int
parse_head(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    char *head, *line, *save, *q;
    size_t len;
    int http10 = 0, first = 1;

    if (p.pos < 0) {
        if (evbuffer_get_length(in) > MAX_HEAD) {
            c->keepalive = 0;
            snprintf(c->method, sizeof(c->method), "-");
            snprintf(c->path, sizeof(c->path), "-");
            c->li = -1;
            send_simple(c, 431, "Request Header Fields Too Large",
                "text/plain", "too large\n");
            return 1;
        }
        return 0;
    }
    len = (size_t)p.pos + 4;
    head = malloc(len + 1);
    if (head == NULL)
        return -1;
    evbuffer_remove(in, head, len);
    head[len] = '\0';
    clock_gettime(CLOCK_MONOTONIC, &c->t_req);
    c->keepalive = 1;
    c->is_head = 0;
    c->range[0] = '\0';
    c->resp_bytes = 0;
    c->head_bytes = 0;
    c->counted = 0;
    c->ttfb_ms = 0;
    c->inm[0] = '\0';
    for (line = strtok_r(head, "\r\n", &save); line != NULL;
        line = strtok_r(NULL, "\r\n", &save)) {
        if (first) {
            char *sp1 = strchr(line, ' ');
            char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;

            first = 0;
            if (sp1 == NULL || sp2 == NULL) {
                c->method[0] = '\0';
                break;
            }
            *sp1 = *sp2 = '\0';
            snprintf(c->method, sizeof(c->method), "%s", line);
            snprintf(c->path, sizeof(c->path), "%s", sp1 + 1);
            http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
            if (http10)
                c->keepalive = 0;
            continue;
        }
        q = strchr(line, ':');
        if (q == NULL)
            continue;
        *q++ = '\0';
        while (*q == ' ' || *q == '\t')
            q++;
        if (strcasecmp(line, "Range") == 0)
            snprintf(c->range, sizeof(c->range), "%s", q);
        else if (strcasecmp(line, "If-None-Match") == 0)
            snprintf(c->inm, sizeof(c->inm), "%s", q);
        else if (strcasecmp(line, "Connection") == 0) {
            if (strcasestr(q, "close") != NULL)
                c->keepalive = 0;
            else if (http10 && strcasestr(q, "keep-alive") != NULL)
                c->keepalive = 1;
        }
    }
    free(head);
    q = strchr(c->path, '?');
    if (q != NULL)
        *q = '\0';

    bufferevent_disable(c->bev, EV_READ);
    if (strncmp(c->path, "/_bench/", 8) == 0) {
        c->li = -1;
        control(c);
        return 1;
    }
    c->li = (int)(c->lc - listeners);
    atomic_fetch_add(&c->lc->requests, 1);
    atomic_fetch_add(&c->lc->active, 1);
    if (strcmp(c->method, "GET") == 0)
        ;
    else if (strcmp(c->method, "HEAD") == 0)
        c->is_head = 1;
    else {
        c->keepalive = 0;
        send_simple(c, c->method[0] == '\0' ? 400 : 405,
            c->method[0] == '\0' ? "Bad Request" : "Method Not Allowed",
            "text/plain", "no\n");
        return 1;
    }
    /* Pace this response as the listener says, unless warming up. */
    if (atomic_load(&fast_mode) || c->lc->rate == 0)
        bufferevent_set_rate_limit(c->bev, NULL);
    else
        bufferevent_set_rate_limit(c->bev, c->w->bucket[c->li]);
    if (c->lc->delay_ms > 0 && !atomic_load(&fast_mode)) {
        struct timeval tv = {
            .tv_sec = c->lc->delay_ms / 1000,
            .tv_usec = (c->lc->delay_ms % 1000) * 1000,
        };

        c->state = ST_WAIT;
        evtimer_add(c->timer, &tv);
    } else
        begin_body(c);
    return 1;
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (c->state != ST_HEAD)
        return;
    if (parse_head(c) < 0)
        conn_free(c);
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (c->state != ST_HEAD) {
            log_request(c, "aborted");
            objstat_account(c);
            if (c->li >= 0)
                atomic_fetch_sub(&c->lc->active, 1);
        }
        conn_free(c);
    }
}

static void
conn_free(struct conn *c)
{
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
    struct listener_cfg *lc = arg;
    struct worker *w = NULL;
    struct event_base *base = evconnlistener_get_base(l);
    struct conn *c;
    int i, one = 1;

    (void)sa;
    (void)salen;
    for (i = 0; i < n_workers; i++)
        if (workers[i].base == base)
            w = &workers[i];
    c = calloc(1, sizeof(*c));
    if (c == NULL || w == NULL) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->w = w;
    c->lc = lc;
    c->li = -1;
    c->state = ST_HEAD;
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(base, delay_cb, c);
    if (c->bev == NULL || c->timer == NULL) {
        if (c->bev != NULL)
            bufferevent_free(c->bev);
        else
            evutil_closesocket(fd);
        if (c->timer != NULL)
            event_free(c->timer);
        free(c);
        return;
    }
    bufferevent_set_max_single_write(c->bev, OUT_HIGH);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 65536);
    evbuffer_add_cb(bufferevent_get_output(c->bev), out_drained_cb, c);
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int
listen_socket(int port)
{
    struct sockaddr_in sin;
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void
signal_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&log_mu);
    if (req_log != NULL)
        fflush(req_log);
    _exit(0);
}

static void __attribute__((noreturn))
usage(void)
{
    fprintf(stderr, "usage: origin [-w THREADS] [-o LOGFILE] [-p PORTFILE] "
        "[-T MAX_SECONDS] -l LABEL:DELAY_MS:RATE_BYTES_PER_S ...\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    const char *portfile = NULL, *logpath = NULL;
    unsigned max_seconds = 3600;
    struct event *sig_term, *sig_int, *lifetime;
    struct timeval life;
    FILE *pf;
    char tmp[4096];
    int opt, i, j;

    while ((opt = getopt(argc, argv, "w:o:p:T:l:")) != -1) {
        switch (opt) {
        case 'w':
            n_workers = atoi(optarg);
            if (n_workers < 1 || n_workers > MAX_THREADS)
                usage();
            break;
        case 'o':
            logpath = optarg;
            break;
        case 'p':
            portfile = optarg;
            break;
        case 'T':
            max_seconds = (unsigned)atoi(optarg);
            break;
        case 'l': {
            struct listener_cfg *lc = &listeners[n_listeners];
            unsigned long long rate = 0;

            if (n_listeners == MAX_LISTENERS ||
                sscanf(optarg, "%31[^:]:%u:%llu", lc->label, &lc->delay_ms,
                &rate) != 3)
                usage();
            lc->rate = rate;
            n_listeners++;
            break;
        }
        default:
            usage();
        }
    }
    if (n_listeners == 0)
        usage();
    signal(SIGPIPE, SIG_IGN);
    pattern_init();
    objstats = calloc(OBJ_SLOTS, sizeof(*objstats));
    if (objstats == NULL) {
        perror("calloc");
        return 1;
    }
    if (logpath != NULL) {
        req_log = fopen(logpath, "w");
        if (req_log == NULL) {
            perror(logpath);
            return 1;
        }
        setvbuf(req_log, NULL, _IOFBF, 1 << 16);
    }
    for (i = 0; i < n_workers; i++) {
        workers[i].base = event_base_new();
        if (workers[i].base == NULL)
            return 1;
    }
    for (j = 0; j < n_listeners; j++) {
        struct listener_cfg *lc = &listeners[j];

        for (i = 0; i < n_workers; i++) {
            struct timeval tick = { 0, TICK_MS * 1000 };
            int fd = listen_socket(i == 0 ? 0 : lc->port);

            if (fd < 0) {
                perror("listen");
                return 1;
            }
            if (i == 0) {
                struct sockaddr_in sin;
                socklen_t sl = sizeof(sin);

                getsockname(fd, (struct sockaddr *)&sin, &sl);
                lc->port = ntohs(sin.sin_port);
            }
            if (evconnlistener_new(workers[i].base, accept_cb, lc,
                LEV_OPT_CLOSE_ON_FREE, -1, fd) == NULL)
                return 1;
            if (lc->rate > 0) {
                size_t per_tick = (size_t)(lc->rate * TICK_MS / 1000);

                /* A 2-tick burst: late timer ticks do not lose rate. */
                workers[i].bucket[j] = ev_token_bucket_cfg_new(
                    EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, per_tick,
                    2 * per_tick, &tick);
            }
        }
    }
    if (portfile != NULL) {
        snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
        pf = fopen(tmp, "w");
        if (pf == NULL)
            return 1;
        for (j = 0; j < n_listeners; j++)
            fprintf(pf, "%s %d\n", listeners[j].label, listeners[j].port);
        fclose(pf);
        rename(tmp, portfile);
    } else {
        for (j = 0; j < n_listeners; j++)
            printf("%s %d\n", listeners[j].label, listeners[j].port);
        fflush(stdout);
    }
    sig_term = evsignal_new(workers[0].base, SIGTERM, signal_cb, NULL);
    sig_int = evsignal_new(workers[0].base, SIGINT, signal_cb, NULL);
    lifetime = evtimer_new(workers[0].base, signal_cb, NULL);
    life.tv_sec = max_seconds;
    life.tv_usec = 0;
    evsignal_add(sig_term, NULL);
    evsignal_add(sig_int, NULL);
    evtimer_add(lifetime, &life);
    for (i = 1; i < n_workers; i++)
        pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
    worker_main(&workers[0]);
    return 0;
}

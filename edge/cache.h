/*
 * cache.h: cached objects, their readers, and the memory cache index.
 *
 * An object (struct obj) is a response being fetched or already stored:
 * frozen metadata plus a list of append-only chunks (common/chunk.h). It is
 * the buffer between the origin and every client reading it: the fill
 * appends and publishes bytes, readers pull what is published and park
 * when they have caught up (read-while-write). Readers hold a reference on
 * the object and on each chunk they hand to a socket, so eviction never
 * frees bytes still being sent.
 *
 * Object lifecycle (obj_set_state asserts it):
 *   FETCHING_HDRS -> STREAMING -> COMPLETE
 *        \               \-----> FAILED  (truncated body: readers that sent
 *         \--------------------> FAILED   headers cut the response)
 * A complete, cacheable object is put in the index; the index holds one
 * reference, dropped on eviction or replacement.
 *
 * A transient object (not cacheable: too large, no-store, a range, an
 * error) keeps only the chunks its single reader has not consumed, and
 * its fill is paused when the reader falls behind by more than the
 * transit window, so a pass-through never buffers a whole object.
 */
#ifndef S3EDGE_CACHE_H
#define S3EDGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "freshness.h"
#include "s3fifo.h"

struct chunk;
struct obj;
struct obj_reader;

enum obj_state { OBJ_FETCHING_HDRS = 0, OBJ_STREAMING, OBJ_COMPLETE, OBJ_FAILED };

struct obj_hdr {
    const char *name;
    const char *value;
};

typedef void obj_notify_f(struct obj_reader *rd, void *arg);

struct obj_reader {
    unsigned magic;
#define OBJ_READER_MAGIC 0x6f62726dU
    struct obj *o;
    struct chunk *c;  /* current chunk, NULL before the first */
    size_t off;       /* offset in c */
    uint64_t pos;     /* body bytes consumed */
    obj_notify_f *cb;
    void *arg;
    bool parked;
    TAILQ_ENTRY(obj_reader) link;
};

TAILQ_HEAD(obj_reader_list, obj_reader);

/* Backpressure hook of a transient object's producer. */
struct obj_producer_ops {
    void (*pause)(void *arg);
    void (*resume)(void *arg);
    void (*abandon)(void *arg); /* no reader left: stop producing */
};

struct obj {
    unsigned magic;
#define OBJ_MAGIC 0x6f626a31U
    unsigned refcnt;
    enum obj_state state;
    const char *fail_reason; /* static string when FAILED */

    /* metadata, frozen once STREAMING */
    int status;              /* what the client gets */
    bool error_body;         /* status is an error of ours: body is not the origin's */
    int64_t length;          /* body length, -1 while unknown */
    struct obj_hdr *hdrs;    /* headers to pass on */
    unsigned nhdrs;
    char *hdr_blob;
    time_t date;             /* when the origin answered (wall clock) */
    /* freshness (RFC 9111, common/freshness.h): the parsed response, the
     * decision, and when the response arrived on the monotonic clock;
     * "resident" time is measured from there so a TTL of 1 s means 1 s */
    struct fresh_resp fresp;
    struct fresh_decision fd;
    uint64_t resp_mono_ms;
    bool negative;           /* a cached 404/403 (error_body, fd.lifetime = its TTL) */
    bool not_modified;       /* a 304 answering our revalidation */
    bool revalidating;       /* a revalidation of this object is in flight */
    /* when the fetch that stored it (or last revalidated it) started, on
     * purge_clock_ms(): invalidation rules compare against it (purge.h) */
    int64_t fetch_ms;
    /* a response that arrived before the monotonic clock's origin (loaded
     * from disk after a reboot) is older than resp_mono_ms can say */
    uint64_t resident_extra_ms;
    bool from_disk;          /* loaded from the disk cache: not written back */
    uint64_t disk_gen;       /* the disk file written from it or loaded into it, 0: none */

    /* body */
    struct chunk *head, *tail;
    uint64_t published;      /* bytes readers may read */
    uint64_t trimmed;        /* bytes dropped from the front (transient) */
    uint64_t rpos;           /* the transient reader's position */
    struct obj_reader_list waiters;
    unsigned nreaders;
    bool had_reader;         /* a client asked for it (not a background refresh) */

    /* caching */
    bool transient;
    bool cacheable;
    bool in_index;
    char *key;
    size_t key_len;
    uint64_t hash;
    size_t mem;              /* bytes accounted to the memory budget */
    struct obj *hnext;       /* hash chain */
    struct s3fifo_node node; /* the memory store's eviction policy */

    /* producer (the fill) */
    const struct obj_producer_ops *prod;
    void *prod_arg;
    bool prod_paused;
};

/* A fill whose last reader left goes on into the cache only if at most
 * this much is left to fetch (issue 6 makes it configurable); a large
 * object nobody reads any more is not worth the origin bytes. */
#define OBJ_ORPHAN_FINISH_MAX (8u * 1024 * 1024)

/* ---- objects ---- */

/* A new object at FETCHING_HDRS with one reference (the caller's). */
struct obj *obj_new(const char *key, size_t key_len);
void obj_ref(struct obj *o);
void obj_unref(struct obj *o);
void obj_set_producer(struct obj *o, const struct obj_producer_ops *ops, void *arg);

/* Fill side. obj_set_headers copies the headers and moves to STREAMING.
 * Returns 0 or EDGE_ENOMEM. */
int obj_set_headers(struct obj *o, int status, int64_t length,
                    const struct obj_hdr *hdrs, unsigned nhdrs);
/* Append body bytes (copied into chunks). Returns 0 or EDGE_ENOMEM. */
int obj_append(struct obj *o, const void *p, size_t n);
/* Room for a direct write: returns a pointer to at least 1 writable byte
 * (up to *room) in the tail chunk, or NULL on ENOMEM. size_hint sizes a new
 * chunk. Commit what was written with obj_commit(). */
uint8_t *obj_write_ptr(struct obj *o, size_t size_hint, size_t *room);
void obj_commit(struct obj *o, size_t n);
/* Append a chunk whose bytes are all written and published (a block read
 * from disk); the object takes over the caller's reference. */
void obj_append_chunk(struct obj *o, struct chunk *c);
/* Wake parked readers (once per origin read event, not per byte). */
void obj_notify(struct obj *o);
void obj_complete(struct obj *o);
void obj_fail(struct obj *o, const char *reason);
const char *obj_find_hdr(const struct obj *o, const char *name);

/* ---- readers ---- */

void obj_reader_init(struct obj_reader *rd, struct obj *o, obj_notify_f *cb, void *arg);
void obj_reader_fini(struct obj_reader *rd);
/* Park until the object changes (headers, bytes, end). */
void obj_reader_park(struct obj_reader *rd);

enum obj_read_status {
    OBJ_READ_DATA,   /* c, off and len give bytes; consume with obj_reader_advance */
    OBJ_READ_WAIT,   /* caught up: parked, cb will be called */
    OBJ_READ_EOF,    /* everything read */
    OBJ_READ_ERROR,  /* the fill failed: the body is incomplete */
};
/* The next run of published bytes. The chunk stays valid until
 * obj_reader_advance; take a chunk_ref() to keep it longer. */
enum obj_read_status obj_reader_peek(struct obj_reader *rd, struct chunk **c,
                                     size_t *off, size_t *len);
void obj_reader_advance(struct obj_reader *rd, size_t n);

/* ---- the memory cache index ---- */

struct cache;

struct cache_stats {
    uint64_t objects;
    uint64_t bytes;
    uint64_t budget;
    uint64_t hits;
    uint64_t misses;
    uint64_t inserts;
    uint64_t evictions;
    uint64_t inflight;       /* bytes reserved by fills that will be stored */
    uint64_t inflight_refused; /* fills passed through for want of room */
};

struct cache *cache_new(uint64_t budget_bytes);
/* A fill that will store its object reserves its size first, so that fills
 * in progress stay within the memory budget too (200 concurrent misses of
 * a 100 MiB object must not hold 20 GiB). false: no room, pass it through. */
bool cache_inflight_reserve(struct cache *c, uint64_t n);
void cache_inflight_release(struct cache *c, uint64_t n);
void cache_free(struct cache *c);
/* The stored object for key, with a reference for the caller, or NULL.
 * It may be stale (obj_fresh_state says how); an object that can be
 * neither served nor revalidated any more is dropped from the index.
 * now_ms: time_mono_ms(). */
struct obj *cache_lookup(struct cache *c, const char *key, size_t key_len, uint64_t now_ms);
/* Seconds since the response arrived, and its freshness state then. */
int64_t obj_resident(const struct obj *o, uint64_t now_ms);
/* When the response arrived on the wall clock (ms since the epoch), and
 * setting it from there (the disk cache keeps wall-clock times: the
 * monotonic clock restarts with the machine). now_ms: time_mono_ms(). */
int64_t obj_response_wall_ms(const struct obj *o, uint64_t now_ms);
void obj_set_response_wall_ms(struct obj *o, int64_t wall_ms, uint64_t now_ms);
enum fresh_state obj_fresh_state(const struct obj *o, uint64_t now_ms);
/* Whether a stale object can be revalidated (it has a validator). */
bool obj_has_validator(const struct obj *o);
/* Insert a complete object (takes a reference of its own); replaces an
 * older object under the same key; evicts least recently used objects to
 * stay within the budget. Returns false when the object cannot fit. */
bool cache_insert(struct cache *c, struct obj *o);
void cache_get_stats(const struct cache *c, struct cache_stats *out);
/* Whether key is in the index (no hit counted, no freshness checked). */
bool cache_contains(struct cache *c, const char *key, size_t key_len);

#endif

/*
 * cache.h: cached objects, their readers, and the memory cache index.
 *
 * An object (struct obj) is a response being fetched or already stored:
 * frozen metadata plus an array of fixed-size blocks (obj->bsize bytes
 * each, the last one shorter). Block i holds body bytes [i*bsize,
 * (i+1)*bsize); a block is absent (NULL), being filled (its chunk grows,
 * common/chunk.h), or complete. The object is the buffer between the
 * origin and every client reading it: fills write blocks and publish their
 * bytes, readers pull what is published and park when they have caught up
 * (read-while-write). Readers hold a reference on the object and on each
 * chunk they hand to a socket, so eviction never frees bytes still being
 * sent.
 *
 * Blocks are also the unit of filling (DESIGN decision 2): a reader that
 * reaches an absent block asks the object's source (the fill module) to
 * fetch it, and at most one fetch per block is in flight (BLK_FILLING), so
 * every other reader of that block just waits for its bytes. A sequential
 * reader asks for the next blocks ahead of it (read-ahead), which the
 * source fetches in parallel. A whole-object stream (an origin without
 * ranges, a disk load) marks every block filling and writes them in order.
 *
 * Object lifecycle (obj_set_state asserts it):
 *   FETCHING_HDRS -> STREAMING -> COMPLETE
 *        \               \-----> FAILED  (the version changed, a stream
 *         \--------------------> FAILED   broke: readers cut the response)
 * STREAMING means the headers are known; blocks may be missing. COMPLETE:
 * every block is present. A failed block fill does not fail the object:
 * the block is dropped (nothing partial stays) and the readers that waited
 * for it end with OBJ_READ_ERROR; the next reader fetches it again.
 *
 * Index: a new object enters the index at FETCHING_HDRS (cache_add_pending),
 * so that concurrent requests find it and wait for its headers instead of
 * fetching too (request coalescing). Once the headers say it is cacheable
 * it is admitted to the memory store (cache_admit): its size is charged to
 * the byte budget as blocks are allocated, and it is pinned (never
 * evicted) while fills write to it. Not cacheable, or no room: it leaves
 * the index and lives on only for the readers it has.
 *
 * A transient object (not in the index) keeps only the blocks some reader
 * will read soon (from its block up to its read-ahead), and a stream
 * writing it is paused when the readers fall behind by more than the
 * transit window, so a pass-through never buffers a whole object.
 *
 * An object too large for the memory store (conf memory_max_object_size)
 * with a disk cache is disk_bound: it stays in the index while it streams,
 * so that requests join it, but is windowed like a transient object and
 * never charged; its sink (the disk cache's stream writer) takes every
 * block as it completes, and brings dropped blocks back from its file when
 * a reader needs them again.
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

struct cache;
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
    uint64_t pos;       /* next body byte */
    uint64_t end;       /* end of the span read (exclusive), UINT64_MAX: the body's end */
    uint32_t ra_next;   /* first block read-ahead has not asked for */
    uint32_t ra_win;    /* blocks it reads ahead (0: the configured number) */
    uint32_t wait_blk;  /* the block waited for, when waiting */
    uint8_t wait_fails; /* its failure count when the wait began */
    bool waiting;
    uint64_t wait_since_ms; /* when the wait for wait_blk began (time_mono_ms) */
    obj_notify_f *cb;
    void *arg;
    bool parked;
    TAILQ_ENTRY(obj_reader) link;  /* o->waiters while parked */
    TAILQ_ENTRY(obj_reader) rlink; /* o->readers */
};

TAILQ_HEAD(obj_reader_list, obj_reader);

/* A fetch writing into the object (a fill, a disk load): paused and resumed
 * by the transit window of a transient object, abandoned when nobody reads
 * what it writes. */
struct obj_writer_ops {
    void (*pause)(void *arg);
    void (*resume)(void *arg);
    void (*abandon)(void *arg); /* stop producing; the writer unlinks itself */
};

struct obj_writer {
    const struct obj_writer_ops *ops;
    void *arg;
    uint64_t wpos;   /* next body byte it writes */
    uint64_t wend;   /* where it stops (exclusive), UINT64_MAX: the body's end */
    bool stream;     /* writes the rest of the body in order (not one block) */
    bool paused;
    TAILQ_ENTRY(obj_writer) link;
};

TAILQ_HEAD(obj_writer_list, obj_writer);

/* Where absent blocks come from (the fill module). */
struct obj_source_ops {
    /* Start fetching block idx (absent, not filling): mark what it fetches
     * with obj_block_filling() and return 0, or an EDGE_E* error. The
     * reader asking needs blocks up to span_last. */
    int (*want)(struct obj *o, uint32_t idx, uint32_t span_last, void *arg);
    void (*release)(void *arg); /* the object is freed */
};

/* Where complete blocks go besides the readers: the disk cache's stream
 * writer, for an object too large for the memory store (disk_bound). */
struct obj_sink_ops {
    /* Block idx is complete (once per block): take a chunk_ref of
     * o->blk[idx] now, the block may be dropped as soon as this returns. */
    void (*block)(struct obj *o, uint32_t idx, void *arg);
    /* No more blocks will come (the object failed or is freed) before
     * every block was handed over. Not called after obj_sink_done. */
    void (*end)(struct obj *o, void *arg);
    /* A reader needs block idx again (it was dropped after the sink had
     * it): bring it back from what the sink holds or wrote (put it now, or
     * mark it filling and put it later) and return 0, or EDGE_ENOENT. */
    int (*want)(struct obj *o, uint32_t idx, void *arg);
};

/* per-block flags */
#define BLK_FILLING 0x80u
#define BLK_SUNK 0x40u  /* handed to the sink */
#define BLK_FAILS 0x3fu /* how many fills of the block failed (saturating) */

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

    /* body: blocks */
    uint32_t bsize;          /* block size */
    struct chunk **blk;      /* nblk entries, NULL: absent */
    uint8_t *bflag;          /* BLK_* */
    uint32_t nblk;           /* blocks the body has (grows while the length is unknown) */
    uint32_t blk_cap;
    uint32_t nblk_done;      /* complete blocks */
    uint64_t present;        /* body bytes held in blocks */
    bool trimmed;            /* blocks were dropped (transient): not whole any more */
    struct obj_reader_list waiters;
    struct obj_reader_list readers;
    unsigned nreaders;
    bool had_reader;         /* a client asked for it (not a background refresh) */

    /* producers */
    struct obj_writer_list writers;
    const struct obj_source_ops *src;
    void *src_arg;
    /* asked when src answers EDGE_ENOENT (a disk file dropped mid-read):
     * the origin, pinned to the object's version */
    const struct obj_source_ops *src_fb;
    void *src_fb_arg;
    const struct obj_sink_ops *sink;
    void *sink_arg;
    uint32_t nsunk;          /* blocks handed to the sink */
    bool readahead_held;     /* the sink lags: readers fetch only what they need now */
    unsigned nfills;         /* fills in progress: pinned in the memory store meanwhile */
    uint64_t orphan_max;     /* a stream with no reader left goes on when at most this is left */

    /* caching */
    bool transient;          /* not (or no longer) meant for the index */
    /* cacheable but larger than the memory store takes: it stays in the
     * index while it streams (requests join it), is never charged to the
     * memory budget, keeps only the blocks a reader needs (as a transient
     * object), and its blocks go to the disk cache through the sink */
    bool disk_bound;
    bool cacheable;
    bool in_index;           /* in the hash index (pending or admitted) */
    bool pending;            /* in the hash index, not yet admitted */
    bool admitted;           /* in the memory store (charged, evictable) */
    struct cache *cache;     /* the index it is in */
    char *key;
    size_t key_len;
    uint64_t hash;
    size_t mem;              /* bytes accounted to the memory budget */
    struct obj *hnext;       /* hash chain */
    struct s3fifo_node node; /* the memory store's eviction policy */
};

/* Defaults of the configurable limits (conf cache.*). */
#define OBJ_BLOCK_SIZE_DEFAULT (1024u * 1024)
#define OBJ_ORPHAN_FINISH_MAX (8u * 1024 * 1024)

/* ---- objects ---- */

/* A new object at FETCHING_HDRS with one reference (the caller's), body in
 * blocks of bsize bytes. */
struct obj *obj_new(const char *key, size_t key_len, uint32_t bsize);
void obj_ref(struct obj *o);
void obj_unref(struct obj *o);

/* Fill side. obj_set_headers copies the headers, sizes the block array and
 * moves to STREAMING. Returns 0 or EDGE_ENOMEM. */
int obj_set_headers(struct obj *o, int status, int64_t length,
                    const struct obj_hdr *hdrs, unsigned nhdrs);
/* The first source set is the object's; a second one is its fallback
 * (asked when the first answers EDGE_ENOENT). */
void obj_set_source(struct obj *o, const struct obj_source_ops *ops, void *arg);
void obj_set_sink(struct obj *o, const struct obj_sink_ops *ops, void *arg);
/* The sink has every block: it lets go of the object. */
void obj_sink_done(struct obj *o);
void obj_writer_add(struct obj *o, struct obj_writer *w, const struct obj_writer_ops *ops,
                    void *arg, uint64_t wpos, uint64_t wend, bool stream);
void obj_writer_remove(struct obj *o, struct obj_writer *w);
/* Bytes in block idx: bsize, or what is left of the body for the last. */
uint32_t obj_block_len(const struct obj *o, uint32_t idx);
/* Mark blocks [first, last] as being filled (a fetch was started). */
void obj_block_filling(struct obj *o, uint32_t first, uint32_t last);
/* Room for writing body byte pos (the next byte of its block): a pointer
 * to at least 1 writable byte (up to *room, never past the block), or NULL
 * on ENOMEM. Commit what was written with obj_commit(). */
uint8_t *obj_write_ptr(struct obj *o, uint64_t pos, size_t *room);
/* Publish n bytes written at pos; true when that completed the block. */
bool obj_commit(struct obj *o, uint64_t pos, size_t n);
/* Append body bytes at pos (copied). Returns 0 or EDGE_ENOMEM. */
int obj_write(struct obj *o, uint64_t pos, const void *p, size_t n);
/* A complete block read from disk; the object takes the caller's reference. */
void obj_put_block(struct obj *o, uint32_t idx, struct chunk *c);
/* A fill of block idx ended without completing it: drop what it wrote,
 * count the failure, wake its readers. */
void obj_block_failed(struct obj *o, uint32_t idx);
/* A stream (a disk load) will not bring blocks from first on any more: they are
 * absent, for the source to fetch when readers get there. */
void obj_blocks_lost(struct obj *o, uint32_t first);
/* Whether every block is present (the body is whole). */
bool obj_whole(const struct obj *o);
/* Wake parked readers (once per origin read event, not per byte). */
void obj_notify(struct obj *o);
/* The stream ended: fix an unknown length at what was written. */
void obj_complete(struct obj *o);
/* The object cannot be served any more (its version changed, its stream
 * broke): readers end with OBJ_READ_ERROR, the index lets go of it. */
void obj_fail(struct obj *o, const char *reason);
const char *obj_find_hdr(const struct obj *o, const char *name);
/* Fill bookkeeping: an object is pinned in the memory store while fills
 * write it. */
void obj_fill_begin(struct obj *o);
void obj_fill_end(struct obj *o);

/* ---- readers ---- */

/* A reader of body bytes [0, end of body). */
void obj_reader_init(struct obj_reader *rd, struct obj *o, obj_notify_f *cb, void *arg);
void obj_reader_fini(struct obj_reader *rd);
/* Read [first, end) next (end UINT64_MAX: to the body's end). */
void obj_reader_seek(struct obj_reader *rd, uint64_t first, uint64_t end);
/* Park until the object changes (headers, bytes, end). */
void obj_reader_park(struct obj_reader *rd);
/* Whether every byte of [first, end) is there now. */
bool obj_span_present(const struct obj *o, uint64_t first, uint64_t end);

enum obj_read_status {
    OBJ_READ_DATA,   /* c, off and len give bytes; consume with obj_reader_advance */
    OBJ_READ_WAIT,   /* caught up: parked, cb will be called */
    OBJ_READ_EOF,    /* everything read */
    OBJ_READ_ERROR,  /* the body cannot be completed */
};
/* The next run of published bytes. The chunk stays valid until
 * obj_reader_advance; take a chunk_ref() to keep it longer. */
enum obj_read_status obj_reader_peek(struct obj_reader *rd, struct chunk **c,
                                     size_t *off, size_t *len);
void obj_reader_advance(struct obj_reader *rd, size_t n);
/* A reader waiting for a block gave up on the fetch filling it (stalled
 * past the reader timeout): hand the block over to a new fetch. Returns
 * false when there is nothing to hand over (not waiting, or no source). */
bool obj_reader_handover(struct obj_reader *rd);

/* ---- the memory cache index ---- */

struct cache_stats {
    uint64_t objects;        /* admitted to the memory store */
    uint64_t bytes;          /* charged to the budget */
    uint64_t budget;
    uint64_t hits;
    uint64_t misses;
    uint64_t inserts;
    uint64_t evictions;
    uint64_t pending;        /* objects waiting for their headers (coalescing points) */
    uint64_t refused;        /* objects or blocks not stored for want of room */
};

struct cache *cache_new(uint64_t budget_bytes);
/* Blocks a sequential reader asks for ahead of the one it reads (conf
 * cache.readahead_blocks; 0: none). */
void cache_set_readahead(uint32_t nblocks);
void cache_free(struct cache *c);
/* The object for key, with a reference for the caller, or NULL. It may be
 * waiting for its headers (FETCHING_HDRS: wait for them with a reader),
 * incomplete (blocks missing), or stale (obj_fresh_state says how); an
 * object that can be neither served nor revalidated any more is dropped
 * from the index. now_ms: time_mono_ms(). */
struct obj *cache_lookup(struct cache *c, const char *key, size_t key_len, uint64_t now_ms);
/* Put o (FETCHING_HDRS, nothing under its key) in the index, so that others
 * asking for it wait for it. */
void cache_add_pending(struct cache *c, struct obj *o);
/* o's headers say it is cacheable but too large for the memory store:
 * keep it in the index, uncharged, as a disk_bound object (replacing what
 * its key held), for requests to join while it streams to the disk
 * cache. */
void cache_keep_disk_bound(struct cache *c, struct obj *o);
/* o's headers say it is cacheable: admit it to the memory store, replacing
 * what its key held (a stale copy it revalidated). false: no room; it is
 * then out of the index. */
bool cache_admit(struct cache *c, struct obj *o);
/* Take o out of the index (not cacheable after all, invalidated, its
 * version changed). Its readers keep it. */
void cache_unindex(struct obj *o);
/* Insert a complete object (a disk load; takes a reference of its own);
 * replaces an older object under the same key; evicts to stay within the
 * budget. Returns false when the object cannot fit. */
bool cache_insert(struct cache *c, struct obj *o);
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
void cache_get_stats(const struct cache *c, struct cache_stats *out);
/* Whether key is in the index with its headers known (no hit counted, no
 * freshness checked). */
bool cache_contains(struct cache *c, const char *key, size_t key_len);

/* Drop key's stored object from the index at once, as if evicted
 * (objects, bytes), but not counted as an eviction: a hard purge of an
 * exact path. Readers that hold the object finish their responses; a fill
 * in flight under the key is left alone. true when one was removed. */
bool cache_remove(struct cache *c, const char *key, size_t key_len);

#endif

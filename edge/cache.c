/*
 * cache.c: objects, readers and the memory index. See cache.h for the
 * lifecycle. One event loop for now: refcounts of objects are plain, those
 * of chunks atomic (chunks already travel into evbuffers).
 */
#include "config.h"

#include "cache.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "blockmem.h"
#include "chunk.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"
#include "vas.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                                                 \
    for ((var) = TAILQ_FIRST(head); (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);         \
         (var) = (tvar))
#endif

/* A stream writing a transient object is paused when its readers are
 * this far behind, and resumed below half of it. */
#define OBJ_TRANSIT_WINDOW (2u * 1024 * 1024)
/* Read-ahead: blocks asked for ahead of a sequential reader (set from the
 * configuration by cache_set_readahead). A reader of a stored object that
 * still finds the next block not begun to arrive when it gets there
 * doubles its window, up to READAHEAD_GROWTH times this: each block fetch
 * waits for the origin's first byte (about 50 ms for S3) for only a few
 * ms of transfer, so a fast client needs more fetches in flight than a
 * slow one (one cold 100 MiB download: 0.94 s with 8, 0.62 s growing). */
static uint32_t readahead_blocks = 8;
#define READAHEAD_GROWTH 4u

static uint32_t reader_window(const struct obj_reader *rd)
{
    return rd->ra_win ? rd->ra_win : readahead_blocks;
}

void cache_set_readahead(uint32_t nblocks)
{
    readahead_blocks = nblocks;
}

static void obj_set_state(struct obj *o, enum obj_state to)
{
    switch (to) {
    case OBJ_STREAMING:
        assert_always(o->state == OBJ_FETCHING_HDRS);
        break;
    case OBJ_COMPLETE:
        assert_always(o->state == OBJ_STREAMING);
        break;
    case OBJ_FAILED:
        assert_always(o->state != OBJ_COMPLETE);
        break;
    default:
        WRONG("bad obj state");
    }
    o->state = to;
}

struct obj *obj_new(const char *key, size_t key_len, uint32_t bsize)
{
    struct obj *o = calloc(1, sizeof(*o));

    if (o == NULL)
        return NULL;
    o->key = malloc(key_len + 1);
    if (o->key == NULL) {
        free(o);
        return NULL;
    }
    memcpy(o->key, key, key_len);
    o->key[key_len] = '\0';
    o->key_len = key_len;
    o->magic = OBJ_MAGIC;
    o->refcnt = 1;
    o->state = OBJ_FETCHING_HDRS;
    o->length = -1;
    o->bsize = bsize ? bsize : OBJ_BLOCK_SIZE_DEFAULT;
    o->orphan_max = OBJ_ORPHAN_FINISH_MAX;
    TAILQ_INIT(&o->waiters);
    TAILQ_INIT(&o->readers);
    TAILQ_INIT(&o->writers);
    return o;
}

void obj_ref(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(o->refcnt);
    o->refcnt++;
}

void obj_unref(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(o->refcnt);
    if (--o->refcnt > 0)
        return;
    AZ(o->in_index);
    AZ(o->nreaders);
    assert_always(TAILQ_EMPTY(&o->writers));
    if (o->sink != NULL) {
        const struct obj_sink_ops *sk = o->sink;
        o->sink = NULL;
        sk->end(o, o->sink_arg);
    }
    if (o->src != NULL && o->src->release != NULL)
        o->src->release(o->src_arg);
    if (o->src_fb != NULL && o->src_fb->release != NULL)
        o->src_fb->release(o->src_fb_arg);
    for (uint32_t i = 0; i < o->nblk; i++)
        if (o->blk[i] != NULL)
            chunk_unref(o->blk[i]);
    free(o->blk);
    free(o->bflag);
    free(o->hdrs);
    free(o->hdr_blob);
    free(o->key);
    o->magic = 0;
    free(o);
}

void obj_set_source(struct obj *o, const struct obj_source_ops *ops, void *arg)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (o->src == NULL) {
        o->src = ops;
        o->src_arg = arg;
        return;
    }
    AZ(o->src_fb);
    o->src_fb = ops;
    o->src_fb_arg = arg;
}

void obj_set_sink(struct obj *o, const struct obj_sink_ops *ops, void *arg)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AZ(o->sink);
    o->sink = ops;
    o->sink_arg = arg;
}

void obj_sink_done(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    o->sink = NULL;
    o->sink_arg = NULL;
}

/* Whether blocks are kept only while a reader needs them: a pass-through
 * (out of the index) or an object on its way to the disk cache. */
static bool obj_windowed(const struct obj *o)
{
    return (o->transient && !o->in_index) || o->disk_bound;
}

/* Whether a reader will read block i soon: it is in the reader's span,
 * from the block the reader is in up to its read-ahead. A block further
 * on is not held for it (a reader with the whole object as its span, far
 * behind others, would otherwise pin all they fetched): it is brought
 * back when the reader gets there. */
static bool blk_needed(const struct obj *o, uint32_t i)
{
    uint64_t bstart = (uint64_t)i * o->bsize, bend = bstart + obj_block_len(o, i);

    for (const struct obj_reader *rd = TAILQ_FIRST(&o->readers); rd != NULL;
         rd = TAILQ_NEXT(rd, rlink)) {
        uint64_t soon_end = (rd->pos / o->bsize + 1 + (uint64_t)reader_window(rd)) * o->bsize;
        if (rd->pos < bend && rd->end > bstart && bstart < soon_end)
            return true;
    }
    return false;
}

static bool blk_complete(const struct obj *o, uint32_t i);
static void blk_drop(struct obj *o, uint32_t i);

/* a complete block of a windowed object that no reader needs goes */
static void blk_trim(struct obj *o, uint32_t i)
{
    /* a COMPLETE object is whole (obj_complete): it keeps its blocks */
    if (!obj_windowed(o) || o->state == OBJ_COMPLETE || i >= o->nblk || o->blk[i] == NULL ||
        !blk_complete(o, i) || blk_needed(o, i))
        return;
    blk_drop(o, i);
    o->trimmed = true;
}

/* block i just became complete: the sink takes it, and a windowed object
 * keeps it only if a reader needs it */
static void blk_completed(struct obj *o, uint32_t i)
{
    if (o->sink != NULL && !(o->bflag[i] & BLK_SUNK)) {
        o->bflag[i] |= BLK_SUNK;
        o->nsunk++;
        o->sink->block(o, i, o->sink_arg);
    }
    blk_trim(o, i);
}

void obj_writer_add(struct obj *o, struct obj_writer *w, const struct obj_writer_ops *ops,
                    void *arg, uint64_t wpos, uint64_t wend, bool stream)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    memset(w, 0, sizeof(*w));
    w->ops = ops;
    w->arg = arg;
    w->wpos = wpos;
    w->wend = wend;
    w->stream = stream;
    TAILQ_INSERT_TAIL(&o->writers, w, link);
}

void obj_writer_remove(struct obj *o, struct obj_writer *w)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(w->ops);
    TAILQ_REMOVE(&o->writers, w, link);
    w->ops = NULL;
}

/* charge a change of o->mem to the memory store; false: no room, and o
 * left the index (it goes on for its readers) */
static bool obj_charge(struct obj *o);

/* grow the block arrays to hold n blocks */
static int blk_reserve(struct obj *o, uint32_t n)
{
    if (n <= o->blk_cap)
        return 0;
    uint32_t cap = o->blk_cap ? o->blk_cap : 4;
    while (cap < n)
        cap = cap > UINT32_MAX / 2 ? n : cap * 2;
    struct chunk **b = realloc(o->blk, (size_t)cap * sizeof(*b));
    if (b == NULL)
        return EDGE_ENOMEM;
    o->blk = b;
    uint8_t *f = realloc(o->bflag, cap);
    if (f == NULL)
        return EDGE_ENOMEM;
    o->bflag = f;
    memset(o->blk + o->blk_cap, 0, (size_t)(cap - o->blk_cap) * sizeof(*b));
    memset(o->bflag + o->blk_cap, 0, cap - o->blk_cap);
    o->mem += (size_t)(cap - o->blk_cap) * (sizeof(*b) + 1);
    o->blk_cap = cap;
    return 0;
}

int obj_set_headers(struct obj *o, int status, int64_t length,
                    const struct obj_hdr *hdrs, unsigned nhdrs)
{
    size_t blob = 0;

    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    for (unsigned i = 0; i < nhdrs; i++)
        blob += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 2;
    if (length >= 0) {
        uint64_t nb = ((uint64_t)length + o->bsize - 1) / o->bsize;
        if (nb > UINT32_MAX || blk_reserve(o, (uint32_t)nb) < 0)
            return EDGE_ENOMEM;
        o->nblk = (uint32_t)nb;
    }
    if (nhdrs > 0) {
        o->hdrs = calloc(nhdrs, sizeof(*o->hdrs));
        o->hdr_blob = malloc(blob);
        if (o->hdrs == NULL || o->hdr_blob == NULL) {
            free(o->hdrs);
            free(o->hdr_blob);
            o->hdrs = NULL;
            o->hdr_blob = NULL;
            return EDGE_ENOMEM;
        }
        char *p = o->hdr_blob;
        for (unsigned i = 0; i < nhdrs; i++) {
            size_t nl = strlen(hdrs[i].name) + 1, vl = strlen(hdrs[i].value) + 1;
            memcpy(p, hdrs[i].name, nl);
            o->hdrs[i].name = p;
            p += nl;
            memcpy(p, hdrs[i].value, vl);
            o->hdrs[i].value = p;
            p += vl;
        }
    }
    o->nhdrs = nhdrs;
    o->status = status;
    o->length = length;
    o->mem += blob + nhdrs * sizeof(*o->hdrs) + sizeof(*o) + o->key_len;
    obj_set_state(o, OBJ_STREAMING);
    return 0;
}

const char *obj_find_hdr(const struct obj *o, const char *name)
{
    for (unsigned i = 0; i < o->nhdrs; i++)
        if (strcasecmp(o->hdrs[i].name, name) == 0)
            return o->hdrs[i].value;
    return NULL;
}

uint32_t obj_block_len(const struct obj *o, uint32_t idx)
{
    if (o->length < 0)
        return o->bsize;
    uint64_t start = (uint64_t)idx * o->bsize;
    if (start >= (uint64_t)o->length)
        return 0;
    uint64_t left = (uint64_t)o->length - start;
    return left < o->bsize ? (uint32_t)left : o->bsize;
}

void obj_block_filling(struct obj *o, uint32_t first, uint32_t last)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    for (uint32_t i = first; i <= last && i < o->nblk; i++)
        if (o->blk[i] == NULL || chunk_len(o->blk[i]) < obj_block_len(o, i))
            o->bflag[i] |= BLK_FILLING;
}

static bool blk_complete(const struct obj *o, uint32_t i)
{
    return o->blk[i] != NULL && chunk_len(o->blk[i]) == obj_block_len(o, i) &&
           !(o->bflag[i] & BLK_FILLING);
}

void obj_blocks_lost(struct obj *o, uint32_t first)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    for (uint32_t i = first; i < o->nblk; i++) {
        if (o->blk[i] != NULL && chunk_len(o->blk[i]) < obj_block_len(o, i))
            blk_drop(o, i);
        if (o->blk[i] == NULL)
            o->bflag[i] &= (uint8_t)~BLK_FILLING;
    }
    obj_notify(o);
}

bool obj_whole(const struct obj *o)
{
    return o->length >= 0 && o->nblk_done == o->nblk;
}

uint8_t *obj_write_ptr(struct obj *o, uint64_t pos, size_t *room)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_STREAMING);
    uint64_t bi = pos / o->bsize;
    uint32_t off = (uint32_t)(pos % o->bsize);
    assert_always(bi <= UINT32_MAX);
    uint32_t i = (uint32_t)bi;
    if (i >= o->nblk) {
        /* a body of unknown length grows block by block */
        assert_always(o->length < 0);
        if (blk_reserve(o, i + 1) < 0)
            return NULL;
        for (uint32_t k = o->nblk; k <= i; k++)
            o->bflag[k] = BLK_FILLING;
        o->nblk = i + 1;
    }
    struct chunk *c = o->blk[i];
    if (c == NULL) {
        AZ(off);
        uint32_t cap = obj_block_len(o, i);
        AN(cap);
        /* a block that stays (a stored object) goes where sendfile can
         * take it; one only passing through comes from malloc, which
         * reuses its memory where a fresh memfd slot costs page faults
         * and zeroing for one use */
        c = obj_windowed(o) ? chunk_new(cap) : blockmem_chunk(cap);
        if (c == NULL)
            return NULL;
        o->blk[i] = c;
        o->bflag[i] |= BLK_FILLING;
        o->mem += cap + sizeof(*c);
        (void)obj_charge(o);
    }
    assert_always(chunk_len(c) == off);
    *room = chunk_room(c);
    AN(*room);
    return c->data + off;
}

/* pause or resume the streams of a transient object by how far its
 * slowest reader is behind them */
static void obj_pace(struct obj *o)
{
    struct obj_reader *rd;
    struct obj_writer *w, *wn;

    if (!obj_windowed(o) || o->nreaders == 0)
        return;
    TAILQ_FOREACH_SAFE(w, &o->writers, link, wn) {
        if (!w->stream)
            continue;
        /* how far it is ahead of the slowest reader whose span it writes
         * into (readers of other spans, as the segments of a segmented
         * download, do not hold it back); nobody's span: as far as can be */
        uint64_t ahead = UINT64_MAX;
        TAILQ_FOREACH(rd, &o->readers, rlink) {
            if (rd->end <= w->wpos)
                continue;
            uint64_t a = w->wpos > rd->pos ? w->wpos - rd->pos : 0;
            if (a < ahead)
                ahead = a;
        }
        if (!w->paused && ahead > OBJ_TRANSIT_WINDOW) {
            w->paused = true;
            w->ops->pause(w->arg);
        } else if (w->paused && ahead < OBJ_TRANSIT_WINDOW / 2) {
            w->paused = false;
            w->ops->resume(w->arg);
        }
    }
}

bool obj_commit(struct obj *o, uint64_t pos, size_t n)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    uint32_t i = (uint32_t)(pos / o->bsize);
    struct chunk *c = o->blk[i];
    AN(c);
    assert_always(chunk_len(c) == pos % o->bsize);
    chunk_publish(c, n);
    o->present += n;
    bool done = false;
    if (chunk_len(c) == obj_block_len(o, i) && o->length >= 0) {
        o->bflag[i] &= (uint8_t)~BLK_FILLING;
        o->nblk_done++;
        done = true;
        blk_completed(o, i);
    }
    obj_pace(o);
    return done;
}

int obj_write(struct obj *o, uint64_t pos, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        size_t room;
        uint8_t *w = obj_write_ptr(o, pos, &room);
        if (w == NULL)
            return EDGE_ENOMEM;
        if (room > n)
            room = n;
        memcpy(w, b, room);
        (void)obj_commit(o, pos, room);
        b += room;
        pos += room;
        n -= room;
    }
    return 0;
}

void obj_put_block(struct obj *o, uint32_t idx, struct chunk *c)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    assert_always(o->state == OBJ_STREAMING);
    assert_always(idx < o->nblk && o->blk[idx] == NULL);
    assert_always(chunk_len(c) == obj_block_len(o, idx));
    o->blk[idx] = c;
    o->bflag[idx] &= (uint8_t)~BLK_FILLING;
    o->nblk_done++;
    o->present += chunk_len(c);
    o->mem += c->cap + sizeof(*c);
    (void)obj_charge(o);
    blk_completed(o, idx);
}

/* drop block i (not complete, or no reader needs it any more) */
static void blk_drop(struct obj *o, uint32_t i)
{
    struct chunk *c = o->blk[i];

    if (c == NULL)
        return;
    if (blk_complete(o, i))
        o->nblk_done--;
    o->present -= chunk_len(c);
    o->mem -= c->cap + sizeof(*c);
    o->blk[i] = NULL;
    chunk_unref(c);
    (void)obj_charge(o);
}

void obj_block_failed(struct obj *o, uint32_t idx)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (idx >= o->nblk)
        return;
    if (!blk_complete(o, idx) || (o->bflag[idx] & BLK_FILLING)) {
        o->bflag[idx] &= (uint8_t)~BLK_FILLING;
        if (o->blk[idx] != NULL && chunk_len(o->blk[idx]) < obj_block_len(o, idx))
            blk_drop(o, idx);
        if ((o->bflag[idx] & BLK_FAILS) < BLK_FAILS)
            o->bflag[idx]++;
    }
    obj_notify(o);
}

void obj_notify(struct obj *o)
{
    struct obj_reader_list woken;
    struct obj_reader *rd;

    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    TAILQ_INIT(&woken);
    /* unlink first: a callback may park its reader again */
    while ((rd = TAILQ_FIRST(&o->waiters)) != NULL) {
        TAILQ_REMOVE(&o->waiters, rd, link);
        if (rd->parked) {
            rd->parked = false;
            TAILQ_INSERT_TAIL(&woken, rd, link);
        }
    }
    while ((rd = TAILQ_FIRST(&woken)) != NULL) {
        TAILQ_REMOVE(&woken, rd, link);
        rd->cb(rd, rd->arg);
    }
}

void obj_complete(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (o->length < 0) {
        /* a stream of unknown length ended: its last block may be short */
        o->length = (int64_t)o->present;
        uint64_t nb = (o->present + o->bsize - 1) / o->bsize;
        o->nblk = (uint32_t)nb;
        o->nblk_done = 0;
        for (uint32_t i = 0; i < o->nblk; i++) {
            if (o->blk[i] != NULL && chunk_len(o->blk[i]) == obj_block_len(o, i)) {
                o->bflag[i] &= (uint8_t)~BLK_FILLING;
                o->nblk_done++;
            }
        }
    }
    /* a windowed object that dropped blocks stays STREAMING: its readers
     * may still need them fetched again */
    if (o->state == OBJ_STREAMING && !(obj_windowed(o) && !obj_whole(o)))
        obj_set_state(o, OBJ_COMPLETE);
    obj_notify(o);
}

void obj_fail(struct obj *o, const char *reason)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (o->state == OBJ_FAILED)
        return;
    obj_set_state(o, OBJ_FAILED);
    o->fail_reason = reason;
    if (o->in_index)
        cache_unindex(o);
    if (o->sink != NULL) {
        const struct obj_sink_ops *sk = o->sink;
        o->sink = NULL;
        sk->end(o, o->sink_arg);
    }
    obj_notify(o);
}

/* ---------------------------------------------------------------- readers */

/*
 * Readers are linked in o->readers for their lifetime and in o->waiters
 * while parked.
 */
void obj_reader_init(struct obj_reader *rd, struct obj *o, obj_notify_f *cb, void *arg)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    memset(rd, 0, sizeof(*rd));
    rd->magic = OBJ_READER_MAGIC;
    obj_ref(o);
    rd->o = o;
    rd->cb = cb;
    rd->arg = arg;
    rd->end = UINT64_MAX;
    rd->wait_blk = UINT32_MAX;
    TAILQ_INSERT_TAIL(&o->readers, rd, rlink);
    o->nreaders++;
    o->had_reader = true;
}

static int obj_want(struct obj *o, uint32_t from, uint32_t upto, uint32_t span_last);

/* Blocks of a windowed object that no reader needs any more go: a reader
 * needs block i when its span still covers it. Every block is looked at
 * (the segments of a segmented download leave holes behind each reader);
 * a reader moving on drops the block it left with blk_trim instead. */
static void obj_trim(struct obj *o)
{
    if (!obj_windowed(o))
        return;
    for (uint32_t i = 0; i < o->nblk; i++)
        if (o->blk[i] != NULL)
            blk_trim(o, i);
}

/* bytes of a disk_bound object its sink has not had */
static uint64_t unsunk_bytes(const struct obj *o)
{
    uint64_t n = 0;

    for (uint32_t i = 0; i < o->nblk; i++)
        if (!(o->bflag[i] & BLK_SUNK))
            n += obj_block_len(o, i);
    return n;
}

void obj_reader_fini(struct obj_reader *rd)
{
    struct obj *o;
    struct obj_writer *w, *wn;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    o = rd->o;
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (rd->parked) {
        TAILQ_REMOVE(&o->waiters, rd, link);
        rd->parked = false;
    }
    TAILQ_REMOVE(&o->readers, rd, rlink);
    AN(o->nreaders);
    o->nreaders--;
    rd->magic = 0;
    rd->o = NULL;
    if (o->nreaders == 0 && o->disk_bound && o->state == OBJ_STREAMING &&
        (o->sink == NULL || unsunk_bytes(o) > o->orphan_max)) {
        /* nobody reads it and much is missing: it stops (its disk write
         * with it) and leaves the index; the next request starts anew */
        o->disk_bound = false;
        cache_unindex(o);
    }
    if (o->nreaders == 0 && o->disk_bound && o->state == OBJ_STREAMING && o->src != NULL) {
        /* little is missing: the blocks the disk write lacks are fetched
         * for it */
        for (uint32_t i = 0; i < o->nblk; i++)
            if (!(o->bflag[i] & (BLK_SUNK | BLK_FAILS)))
                (void)obj_want(o, i, i, o->nblk - 1);
    } else if (o->nreaders == 0 && !o->transient && o->src != NULL &&
               o->state == OBJ_STREAMING && o->length >= 0 &&
               (uint64_t)o->length - o->present <= o->orphan_max) {
        /* the last reader left a stored object that little is missing
         * of: finish it, as a stream would be (orphan_fill_max) */
        for (uint32_t i = 0; i < o->nblk; i++)
            if (!(o->bflag[i] & BLK_FAILS)) /* a failed block waits for a client */
                (void)obj_want(o, i, i, o->nblk - 1);
    }
    if (o->nreaders == 0) {
        /* nobody wants the rest: stop what is not worth finishing. A
         * transient object stops everything; a stored one finishes block
         * fills (one block each) and streams with little left. */
        TAILQ_FOREACH_SAFE(w, &o->writers, link, wn) {
            bool stop = o->transient ||
                        (w->stream && (o->length < 0 ||
                                       (uint64_t)o->length - w->wpos > o->orphan_max));
            if (stop)
                w->ops->abandon(w->arg); /* unlinks w */
        }
    }
    obj_trim(o);
    obj_pace(o);
    obj_unref(o);
}

void obj_reader_seek(struct obj_reader *rd, uint64_t first, uint64_t end)
{
    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    rd->pos = first;
    rd->end = end;
    rd->waiting = false;
    rd->wait_blk = UINT32_MAX;
    rd->ra_next = (uint32_t)(first / rd->o->bsize);
    obj_trim(rd->o);
}

void obj_reader_park(struct obj_reader *rd)
{
    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    if (rd->parked)
        return;
    rd->parked = true;
    TAILQ_INSERT_TAIL(&rd->o->waiters, rd, link);
}

bool obj_span_present(const struct obj *o, uint64_t first, uint64_t end)
{
    if (o->state == OBJ_COMPLETE)
        return true;
    if (o->length < 0 || o->state != OBJ_STREAMING)
        return false;
    if (end > (uint64_t)o->length)
        end = (uint64_t)o->length;
    if (first >= end)
        return true;
    /* the bytes are there: a block still filling may hold them already */
    for (uint64_t i = first / o->bsize; i <= (end - 1) / o->bsize; i++) {
        uint64_t bstart = i * o->bsize;
        uint64_t need = (end < bstart + o->bsize ? end : bstart + o->bsize) - bstart;
        if (o->blk[i] == NULL || chunk_len(o->blk[i]) < need)
            return false;
    }
    return true;
}

/* the last block a reader's span covers */
static uint32_t span_last_blk(const struct obj_reader *rd)
{
    const struct obj *o = rd->o;
    uint64_t end = rd->end < (uint64_t)o->length ? rd->end : (uint64_t)o->length;

    return end == 0 ? 0 : (uint32_t)((end - 1) / o->bsize);
}

/* ask the source for absent blocks from `from` on, up to `upto` (inclusive);
 * span_last: the last block the asking reader needs */
static int obj_want(struct obj *o, uint32_t from, uint32_t upto, uint32_t span_last)
{
    int rc = 0;

    for (uint32_t i = from; i <= upto && i < o->nblk; i++) {
        if (o->blk[i] != NULL || (o->bflag[i] & BLK_FILLING))
            continue;
        if (o->sink != NULL && o->sink->want != NULL && (o->bflag[i] & BLK_SUNK) &&
            o->sink->want(o, i, o->sink_arg) == 0)
            continue; /* from the disk cache's copy */
        int r = o->src->want(o, i, span_last, o->src_arg);
        if (r == EDGE_ENOENT && o->src_fb != NULL)
            r = o->src_fb->want(o, i, span_last, o->src_fb_arg);
        if (r < 0) {
            rc = r;
            break;
        }
    }
    return rc;
}

/* read-ahead: the blocks after i that this reader will read */
static void reader_ahead(struct obj_reader *rd, uint32_t i)
{
    struct obj *o = rd->o;

    if (o->src == NULL || o->length < 0 || readahead_blocks == 0 || o->state == OBJ_COMPLETE ||
        o->readahead_held)
        return;
    uint64_t span_end = rd->end < (uint64_t)o->length ? rd->end : (uint64_t)o->length;
    if (span_end == 0)
        return;
    uint32_t last = (uint32_t)((span_end - 1) / o->bsize);
    uint32_t win = reader_window(rd);
    uint32_t upto = i + win < last ? i + win : last;
    uint32_t from = rd->ra_next > i + 1 ? rd->ra_next : i + 1;
    if (from > upto)
        return;
    (void)obj_want(o, from, upto, last);
    rd->ra_next = upto + 1;
}

enum obj_read_status obj_reader_peek(struct obj_reader *rd, struct chunk **c,
                                     size_t *off, size_t *len)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    o = rd->o;
    if (o->state == OBJ_FETCHING_HDRS) {
        obj_reader_park(rd);
        return OBJ_READ_WAIT;
    }
    if (o->state == OBJ_FAILED)
        return OBJ_READ_ERROR;
    uint64_t end = rd->end;
    if (o->length >= 0 && end > (uint64_t)o->length)
        end = (uint64_t)o->length;
    if (rd->pos >= end)
        return OBJ_READ_EOF;
    uint64_t bi = rd->pos / o->bsize;
    if (bi >= o->nblk) {
        /* beyond what a stream of unknown length has written so far */
        if (o->state == OBJ_COMPLETE)
            return OBJ_READ_EOF;
        obj_reader_park(rd);
        return OBJ_READ_WAIT;
    }
    uint32_t i = (uint32_t)bi;
    size_t boff = (size_t)(rd->pos % o->bsize);
    struct chunk *ch = o->blk[i];
    if (ch != NULL && chunk_len(ch) > boff) {
        uint64_t n = chunk_len(ch) - boff;
        if (n > end - rd->pos)
            n = end - rd->pos;
        rd->waiting = false;
        rd->wait_blk = i; /* a failure of this block ends this reader too */
        rd->wait_fails = o->bflag[i] & BLK_FAILS;
        reader_ahead(rd, i);
        *c = ch;
        *off = boff;
        *len = (size_t)n;
        return OBJ_READ_DATA;
    }
    if (ch == NULL && !(o->bflag[i] & BLK_FILLING)) {
        /* absent and nobody fetches it: the fetch this reader waited for
         * failed (the reader ends; the next request retries), or it is for
         * this reader to ask */
        if (rd->wait_blk == i && (o->bflag[i] & BLK_FAILS) != rd->wait_fails)
            return OBJ_READ_ERROR;
        if (o->src == NULL || o->state == OBJ_COMPLETE)
            return OBJ_READ_ERROR; /* nothing will bring it */
        if (obj_want(o, i, i, span_last_blk(rd)) < 0)
            return OBJ_READ_ERROR;
        reader_ahead(rd, i);
        if (o->blk[i] != NULL && chunk_len(o->blk[i]) > boff)
            return obj_reader_peek(rd, c, off, len); /* it was put back at once */
    }
    if (!rd->waiting || rd->wait_blk != i) {
        if (ch == NULL && (o->bflag[i] & BLK_FILLING) && i > 0 && readahead_blocks > 0 &&
            reader_window(rd) < readahead_blocks * READAHEAD_GROWTH && !obj_windowed(o)) {
            /* read-ahead asked for this block and it has not begun to
             * arrive: the reader is faster than the window hides. Not for
             * a windowed object, which holds its readers' windows in
             * memory (and whose disk reads land whole, never begun) */
            rd->ra_win = reader_window(rd) * 2;
            reader_ahead(rd, i);
        }
        rd->waiting = true;
        rd->wait_blk = i;
        rd->wait_fails = o->bflag[i] & BLK_FAILS;
        rd->wait_since_ms = time_mono_ms();
    }
    obj_reader_park(rd);
    obj_pace(o); /* a stream paused for want of readers may be needed now */
    return OBJ_READ_WAIT;
}

void obj_reader_advance(struct obj_reader *rd, size_t n)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    o = rd->o;
    uint64_t before = rd->pos / o->bsize;
    rd->pos += n;
    if (!obj_windowed(o))
        return;
    if (rd->pos / o->bsize != before)
        blk_trim(o, (uint32_t)before);
    obj_pace(o);
}

bool obj_reader_handover(struct obj_reader *rd)
{
    struct obj *o;
    struct obj_writer *w, *wn;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    o = rd->o;
    if (!rd->waiting || o->src == NULL || o->state != OBJ_STREAMING || rd->wait_blk >= o->nblk)
        return false;
    uint32_t i = rd->wait_blk;
    uint64_t bstart = (uint64_t)i * o->bsize;
    /* the fetch that fills block i, if it is a single-block fill */
    TAILQ_FOREACH_SAFE(w, &o->writers, link, wn) {
        if (!w->stream && w->wpos >= bstart && w->wpos < bstart + o->bsize) {
            w->ops->abandon(w->arg); /* drops the block, unlinks w */
            break;
        }
    }
    if (o->blk[i] != NULL || (o->bflag[i] & BLK_FILLING))
        return false; /* a stream fills it: nothing to hand over */
    if (obj_want(o, i, i, span_last_blk(rd)) < 0)
        return false;
    rd->wait_fails = o->bflag[i] & BLK_FAILS;
    rd->wait_since_ms = time_mono_ms();
    return true;
}

/* ---------------------------------------------------------------- index */

struct cache {
    unsigned magic;
#define CACHE_MAGIC 0x63616368U
    struct obj **buckets;
    size_t nbuckets; /* power of two */
    size_t nentries; /* objects in the hash (pending ones too) */
    uint64_t seed;
    /* admission and eviction by S3-FIFO (DESIGN decision 4; measured
     * against LRU in docs/s3fifo-vs-lru.md): scans of one-hit objects
     * pass through its small queue without flushing the popular ones */
    struct s3fifo *policy;
    struct cache_stats st;
};

/* FNV-1a over the key, seeded at start and finished with a 64-bit mixer;
 * the seed keeps bucket placement unpredictable from outside. */
static uint64_t key_hash(const struct cache *c, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ c->seed;

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static void hash_unlink(struct cache *c, struct obj *o);

static void on_evict(struct s3fifo_node *n, void *arg)
{
    struct cache *c;
    struct obj *o = (struct obj *)(void *)((char *)n - offsetof(struct obj, node));

    CAST_OBJ_NOTNULL(c, arg, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    LOG_D("cache: evicting \"%s\" (%zu bytes)", o->key, o->mem);
    c->st.evictions++;
    o->admitted = false;
    c->st.objects--;
    c->st.bytes -= n->size;
    hash_unlink(c, o);
}

struct cache *cache_new(uint64_t budget_bytes)
{
    struct cache *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->magic = CACHE_MAGIC;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        free(c);
        return NULL;
    }
    if (getrandom(&c->seed, sizeof(c->seed), 0) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ (uint64_t)time(NULL);
    c->st.budget = budget_bytes;
    struct s3fifo_conf pc = {
        .budget = budget_bytes,
        .on_evict = on_evict,
        .arg = c,
    };
    c->policy = s3fifo_new(&pc);
    if (c->policy == NULL) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    return c;
}

/* Out of the hash chain; drops the index's reference. An admitted object
 * must be out of the policy already (evicted, or removed by the caller). */
static void hash_unlink(struct cache *c, struct obj *o)
{
    struct obj **pp = &c->buckets[o->hash & (c->nbuckets - 1)];

    AZ(o->admitted);
    while (*pp != o) {
        AN(*pp);
        pp = &(*pp)->hnext;
    }
    *pp = o->hnext;
    o->hnext = NULL;
    o->in_index = false;
    o->cache = NULL;
    o->transient = true;
    o->disk_bound = false; /* a pass-through for the readers it has */
    c->nentries--;
    if (o->pending) {
        o->pending = false;
        c->st.pending--;
    }
    obj_unref(o);
}

static void policy_remove(struct cache *c, struct obj *o)
{
    if (!o->admitted)
        return;
    c->st.objects--;
    c->st.bytes -= o->node.size;
    s3fifo_remove(c->policy, &o->node);
    o->admitted = false;
}

void cache_unindex(struct obj *o)
{
    struct cache *c;

    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (!o->in_index)
        return;
    CAST_OBJ_NOTNULL(c, o->cache, CACHE_MAGIC);
    policy_remove(c, o);
    hash_unlink(c, o);
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    CHECK_OBJ(c, CACHE_MAGIC);
    /* pinned entries are not handed back by s3fifo_clear: unpin first */
    for (size_t b = 0; b < c->nbuckets; b++)
        for (struct obj *o = c->buckets[b]; o != NULL; o = o->hnext)
            if (o->admitted)
                s3fifo_set_pinned(c->policy, &o->node, false);
    s3fifo_clear(c->policy); /* hands every admitted object to on_evict */
    for (size_t b = 0; b < c->nbuckets; b++)
        while (c->buckets[b] != NULL)
            cache_unindex(c->buckets[b]);
    s3fifo_free(c->policy);
    free(c->buckets);
    c->magic = 0;
    free(c);
}

static struct obj *index_find(struct cache *c, const char *key, size_t n, uint64_t h)
{
    struct obj *o;

    for (o = c->buckets[h & (c->nbuckets - 1)]; o != NULL; o = o->hnext)
        if (o->hash == h && o->key_len == n && memcmp(o->key, key, n) == 0)
            return o;
    return NULL;
}

int64_t obj_resident(const struct obj *o, uint64_t now_ms)
{
    uint64_t ms = now_ms > o->resp_mono_ms ? now_ms - o->resp_mono_ms : 0;

    return (int64_t)((ms + o->resident_extra_ms) / 1000u);
}

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t obj_response_wall_ms(const struct obj *o, uint64_t now_ms)
{
    uint64_t ms = now_ms > o->resp_mono_ms ? now_ms - o->resp_mono_ms : 0;

    return wall_ms() - (int64_t)(ms + o->resident_extra_ms);
}

void obj_set_response_wall_ms(struct obj *o, int64_t at_ms, uint64_t now_ms)
{
    int64_t age = wall_ms() - at_ms;

    if (age < 0)
        age = 0; /* the clock went back: count it as new */
    if ((uint64_t)age <= now_ms) {
        o->resp_mono_ms = now_ms - (uint64_t)age;
        o->resident_extra_ms = 0;
    } else {
        o->resp_mono_ms = 0;
        o->resident_extra_ms = (uint64_t)age - now_ms;
    }
}

enum fresh_state obj_fresh_state(const struct obj *o, uint64_t now_ms)
{
    return fresh_state(&o->fd, obj_resident(o, now_ms));
}

bool obj_has_validator(const struct obj *o)
{
    return !o->negative && (o->fresp.has_etag || o->fresp.has_last_modified);
}

/* still worth keeping: fresh, within a stale window, or revalidatable */
static bool obj_usable(const struct obj *o, uint64_t now_ms)
{
    int64_t r = obj_resident(o, now_ms);

    if (o->state == OBJ_FETCHING_HDRS)
        return true;
    return fresh_state(&o->fd, r) != FRESH_STALE || obj_has_validator(o) ||
           fresh_stale_if_error(&o->fd, r);
}

struct obj *cache_lookup(struct cache *c, const char *key, size_t key_len, uint64_t now_ms)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    o = index_find(c, key, key_len, key_hash(c, key, key_len));
    if (o != NULL && (o->state == OBJ_FAILED || !obj_usable(o, now_ms))) {
        cache_unindex(o); /* dead: the next fill replaces it */
        o = NULL;
    }
    if (o == NULL) {
        c->st.misses++;
        return NULL;
    }
    if (o->admitted) {
        s3fifo_hit(c->policy, &o->node);
        c->st.hits++;
    }
    obj_ref(o);
    return o;
}

static void index_grow(struct cache *c)
{
    size_t nb = c->nbuckets * 2;
    struct obj **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct obj *o = c->buckets[i];
        while (o != NULL) {
            struct obj *next = o->hnext;
            o->hnext = b[o->hash & (nb - 1)];
            b[o->hash & (nb - 1)] = o;
            o = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

/* into the hash (a reference of its own), replacing what the key held */
static void hash_add(struct cache *c, struct obj *o)
{
    struct obj *old;

    AZ(o->in_index);
    o->hash = key_hash(c, o->key, o->key_len);
    old = index_find(c, o->key, o->key_len, o->hash);
    if (old != NULL)
        cache_unindex(old);
    if (c->nentries >= c->nbuckets)
        index_grow(c);
    obj_ref(o);
    o->in_index = true;
    o->transient = false;
    o->cache = c;
    o->hnext = c->buckets[o->hash & (c->nbuckets - 1)];
    c->buckets[o->hash & (c->nbuckets - 1)] = o;
    c->nentries++;
}

void cache_add_pending(struct cache *c, struct obj *o)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_FETCHING_HDRS);
    hash_add(c, o);
    o->pending = true;
    c->st.pending++;
}

/* charged: what o->mem says, within the budget */
static bool policy_add(struct cache *c, struct obj *o)
{
    s3fifo_node_init(&o->node);
    if (o->nfills > 0)
        s3fifo_set_pinned(c->policy, &o->node, true);
    if (s3fifo_insert(c->policy, &o->node, o->hash, o->mem) < 0) {
        c->st.refused++;
        return false;
    }
    o->admitted = true;
    c->st.objects++;
    c->st.bytes += o->mem;
    c->st.inserts++;
    return true;
}

bool cache_admit(struct cache *c, struct obj *o)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state != OBJ_FETCHING_HDRS && o->state != OBJ_FAILED);
    if (!o->in_index) {
        hash_add(c, o);
    } else if (o->pending) {
        o->pending = false;
        c->st.pending--;
    }
    AZ(o->admitted);
    if (!policy_add(c, o)) {
        hash_unlink(c, o);
        return false;
    }
    return true;
}

void cache_keep_disk_bound(struct cache *c, struct obj *o)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_STREAMING && !o->admitted);
    if (!o->in_index) {
        hash_add(c, o);
    } else if (o->pending) {
        o->pending = false;
        c->st.pending--;
    }
    o->transient = false;
    o->disk_bound = true;
}

static bool obj_charge(struct obj *o)
{
    struct cache *c;

    if (!o->admitted)
        return true;
    CAST_OBJ_NOTNULL(c, o->cache, CACHE_MAGIC);
    uint64_t before = o->node.size;
    if (s3fifo_resize(c->policy, &o->node, o->mem) < 0) {
        LOG_D("cache: no room for \"%s\" (%zu bytes): it passes", o->key, o->mem);
        c->st.refused++;
        cache_unindex(o);
        return false;
    }
    c->st.bytes = c->st.bytes - before + o->node.size;
    return true;
}

void obj_fill_begin(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (o->nfills++ == 0 && o->admitted)
        s3fifo_set_pinned(o->cache->policy, &o->node, true);
}

void obj_fill_end(struct obj *o)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(o->nfills);
    if (--o->nfills == 0 && o->admitted)
        s3fifo_set_pinned(o->cache->policy, &o->node, false);
}

bool cache_insert(struct cache *c, struct obj *o)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_COMPLETE);
    AZ(o->in_index);
    if (o->mem > c->st.budget)
        return false;
    hash_add(c, o);
    if (!policy_add(c, o)) {
        hash_unlink(c, o);
        return false;
    }
    return true;
}

bool cache_contains(struct cache *c, const char *key, size_t key_len)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    struct obj *o = index_find(c, key, key_len, key_hash(c, key, key_len));
    return o != NULL && o->state != OBJ_FETCHING_HDRS;
}

void cache_get_stats(const struct cache *c, struct cache_stats *out)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    *out = c->st;
}

/* Out of the index at once (a hard purge of an exact path), as if evicted
 * but not counted as an eviction: the index's reference is dropped;
 * readers holding the object finish their responses. A fill still in
 * flight under the key (a pending entry) is left alone: the purge rule
 * makes it a miss. true when a stored object was removed. */
bool cache_remove(struct cache *c, const char *key, size_t key_len)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    o = index_find(c, key, key_len, key_hash(c, key, key_len));
    if (o == NULL || o->pending)
        return false;
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(o->in_index);
    cache_unindex(o);
    return true;
}

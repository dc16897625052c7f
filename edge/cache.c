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

#include "chunk.h"
#include "err.h"
#include "log.h"
#include "vas.h"

/* A transient object's producer is paused when its reader is this far
 * behind, and resumed below half of it. */
#define OBJ_TRANSIT_WINDOW (2u * 1024 * 1024)
/* Chunk sizes: a small object gets one chunk of its own size; large ones
 * get chunks of CHUNK_MAX (the later block size). */
#define CHUNK_MIN (4u * 1024)
#define CHUNK_MAX (1024u * 1024)

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

struct obj *obj_new(const char *key, size_t key_len)
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
    TAILQ_INIT(&o->waiters);
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
    struct chunk *c = o->head;
    while (c != NULL) {
        struct chunk *n = c->next;
        chunk_unref(c);
        c = n;
    }
    free(o->hdrs);
    free(o->hdr_blob);
    free(o->key);
    o->magic = 0;
    free(o);
}

void obj_set_producer(struct obj *o, const struct obj_producer_ops *ops, void *arg)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    o->prod = ops;
    o->prod_arg = arg;
}

int obj_set_headers(struct obj *o, int status, int64_t length,
                    const struct obj_hdr *hdrs, unsigned nhdrs)
{
    size_t blob = 0;

    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    for (unsigned i = 0; i < nhdrs; i++)
        blob += strlen(hdrs[i].name) + strlen(hdrs[i].value) + 2;
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

uint8_t *obj_write_ptr(struct obj *o, size_t size_hint, size_t *room)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_STREAMING);
    if (o->tail == NULL || chunk_room(o->tail) == 0) {
        size_t cap = size_hint;
        if (cap < CHUNK_MIN)
            cap = CHUNK_MIN;
        if (cap > CHUNK_MAX)
            cap = CHUNK_MAX;
        struct chunk *c = chunk_new(cap);
        if (c == NULL)
            return NULL;
        if (o->tail)
            o->tail->next = c;
        else
            o->head = c;
        o->tail = c;
        o->mem += cap + sizeof(*c);
    }
    *room = chunk_room(o->tail);
    return o->tail->data + chunk_len(o->tail);
}

void obj_commit(struct obj *o, size_t n)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    AN(o->tail);
    chunk_publish(o->tail, n);
    o->published += n;
    if (o->transient && o->prod && !o->prod_paused && o->nreaders > 0 &&
        o->published - o->rpos > OBJ_TRANSIT_WINDOW) {
        o->prod_paused = true;
        o->prod->pause(o->prod_arg);
    }
}

void obj_append_chunk(struct obj *o, struct chunk *c)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    assert_always(o->state == OBJ_STREAMING);
    AZ(c->next);
    if (o->tail)
        o->tail->next = c;
    else
        o->head = c;
    o->tail = c;
    o->mem += c->cap + sizeof(*c);
    o->published += chunk_len(c);
}

int obj_append(struct obj *o, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        size_t room;
        size_t hint = o->length > 0 ? (size_t)((uint64_t)o->length - o->published) : n;
        uint8_t *w = obj_write_ptr(o, hint, &room);
        if (w == NULL)
            return EDGE_ENOMEM;
        if (room > n)
            room = n;
        memcpy(w, b, room);
        obj_commit(o, room);
        b += room;
        n -= room;
    }
    return 0;
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
    obj_set_state(o, OBJ_COMPLETE);
    if (o->length < 0)
        o->length = (int64_t)o->published;
    o->prod = NULL;
    obj_notify(o);
}

void obj_fail(struct obj *o, const char *reason)
{
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    obj_set_state(o, OBJ_FAILED);
    o->fail_reason = reason;
    o->prod = NULL;
    obj_notify(o);
}

/* ---------------------------------------------------------------- readers */

/*
 * Readers are linked in o->waiters only while parked; an unparked reader
 * is still counted in nreaders. The transient window is computed from the
 * one reader a transient object has, whose position is o->rpos.
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
    o->nreaders++;
    o->had_reader = true;
    if (o->transient)
        assert_always(o->nreaders == 1);
}

void obj_reader_fini(struct obj_reader *rd)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    o = rd->o;
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (rd->parked) {
        TAILQ_REMOVE(&o->waiters, rd, link);
        rd->parked = false;
    }
    AN(o->nreaders);
    o->nreaders--;
    bool in_progress = o->state == OBJ_FETCHING_HDRS || o->state == OBJ_STREAMING;
    /* a fill nobody reads any more finishes into the cache only when
     * little is left; a pass-through stops at once */
    bool orphan_stops = o->transient ||
                        (o->state == OBJ_STREAMING &&
                         (o->length < 0 ||
                          (uint64_t)o->length - o->published > OBJ_ORPHAN_FINISH_MAX));
    if (o->nreaders == 0 && o->prod && in_progress && orphan_stops) {
        /* nobody wants the rest: stop its fetch */
        const struct obj_producer_ops *ops = o->prod;
        void *arg = o->prod_arg;
        o->prod = NULL;
        ops->abandon(arg);
    }
    rd->magic = 0;
    rd->o = NULL;
    obj_unref(o);
}

void obj_reader_park(struct obj_reader *rd)
{
    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    if (rd->parked)
        return;
    rd->parked = true;
    TAILQ_INSERT_TAIL(&rd->o->waiters, rd, link);
}

/* drop fully consumed chunks of a transient object */
static void obj_trim(struct obj *o, struct chunk *keep)
{
    while (o->head != NULL && o->head != keep) {
        struct chunk *c = o->head;
        o->head = c->next;
        if (o->tail == c)
            o->tail = NULL;
        o->trimmed += chunk_len(c);
        o->mem -= c->cap + sizeof(*c);
        chunk_unref(c);
    }
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
    for (;;) {
        if (rd->c == NULL)
            rd->c = o->head;
        if (rd->c != NULL) {
            size_t l = chunk_len(rd->c);
            if (rd->off < l) {
                *c = rd->c;
                *off = rd->off;
                *len = l - rd->off;
                return OBJ_READ_DATA;
            }
            if (rd->c->next != NULL) {
                rd->c = rd->c->next;
                rd->off = 0;
                if (o->transient)
                    obj_trim(o, rd->c);
                continue;
            }
        }
        if (o->state == OBJ_COMPLETE && rd->pos >= o->published)
            return OBJ_READ_EOF;
        if (o->state == OBJ_FAILED)
            return OBJ_READ_ERROR;
        obj_reader_park(rd);
        return OBJ_READ_WAIT;
    }
}

void obj_reader_advance(struct obj_reader *rd, size_t n)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(rd, OBJ_READER_MAGIC);
    AN(rd->c);
    o = rd->o;
    assert_always(rd->off + n <= chunk_len(rd->c));
    rd->off += n;
    rd->pos += n;
    if (o->transient)
        o->rpos = rd->pos;
    if (o->transient && o->prod && o->prod_paused &&
        o->published - rd->pos < OBJ_TRANSIT_WINDOW / 2) {
        o->prod_paused = false;
        o->prod->resume(o->prod_arg);
    }
}

/* ---------------------------------------------------------------- index */

struct cache {
    unsigned magic;
#define CACHE_MAGIC 0x63616368U
    struct obj **buckets;
    size_t nbuckets; /* power of two */
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

static void index_drop(struct cache *c, struct obj *o);

static void on_evict(struct s3fifo_node *n, void *arg)
{
    struct cache *c;
    struct obj *o = (struct obj *)(void *)((char *)n - offsetof(struct obj, node));

    CAST_OBJ_NOTNULL(c, arg, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    LOG_D("cache: evicting \"%s\" (%zu bytes)", o->key, o->mem);
    c->st.evictions++;
    index_drop(c, o);
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

/* Out of the hash chain and the counts; the policy already let go of it
 * (eviction) or the caller removes it from the policy (replacement). */
static void index_drop(struct cache *c, struct obj *o)
{
    struct obj **pp = &c->buckets[o->hash & (c->nbuckets - 1)];

    while (*pp != o) {
        AN(*pp);
        pp = &(*pp)->hnext;
    }
    *pp = o->hnext;
    o->hnext = NULL;
    o->in_index = false;
    c->st.objects--;
    c->st.bytes -= o->mem;
    obj_unref(o);
}

static void index_unlink(struct cache *c, struct obj *o)
{
    s3fifo_remove(c->policy, &o->node);
    index_drop(c, o);
}

void cache_free(struct cache *c)
{
    if (c == NULL)
        return;
    CHECK_OBJ(c, CACHE_MAGIC);
    s3fifo_clear(c->policy); /* hands every object to on_evict */
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

    return fresh_state(&o->fd, r) != FRESH_STALE || obj_has_validator(o) ||
           fresh_stale_if_error(&o->fd, r);
}

struct obj *cache_lookup(struct cache *c, const char *key, size_t key_len, uint64_t now_ms)
{
    struct obj *o;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    o = index_find(c, key, key_len, key_hash(c, key, key_len));
    if (o != NULL && !obj_usable(o, now_ms)) {
        index_unlink(c, o); /* dead: the next fill replaces it */
        o = NULL;
    }
    if (o == NULL) {
        c->st.misses++;
        return NULL;
    }
    s3fifo_hit(c->policy, &o->node);
    c->st.hits++;
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

bool cache_insert(struct cache *c, struct obj *o)
{
    struct obj *old;

    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    assert_always(o->state == OBJ_COMPLETE);
    AZ(o->in_index);
    if (o->mem > c->st.budget)
        return false;
    o->hash = key_hash(c, o->key, o->key_len);
    old = index_find(c, o->key, o->key_len, o->hash);
    if (old != NULL)
        index_unlink(c, old);
    s3fifo_node_init(&o->node);
    /* evicts through on_evict until the object fits */
    if (s3fifo_insert(c->policy, &o->node, o->hash, o->mem) < 0)
        return false;
    if (c->st.objects >= c->nbuckets)
        index_grow(c);
    obj_ref(o);
    o->in_index = true;
    o->hnext = c->buckets[o->hash & (c->nbuckets - 1)];
    c->buckets[o->hash & (c->nbuckets - 1)] = o;
    c->st.objects++;
    c->st.bytes += o->mem;
    c->st.inserts++;
    return true;
}

bool cache_contains(struct cache *c, const char *key, size_t key_len)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    return index_find(c, key, key_len, key_hash(c, key, key_len)) != NULL;
}

bool cache_inflight_reserve(struct cache *c, uint64_t n)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    if (n > c->st.budget - c->st.inflight || c->st.inflight > c->st.budget) {
        c->st.inflight_refused++;
        return false;
    }
    c->st.inflight += n;
    return true;
}

void cache_inflight_release(struct cache *c, uint64_t n)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    assert_always(n <= c->st.inflight);
    c->st.inflight -= n;
}

void cache_get_stats(const struct cache *c, struct cache_stats *out)
{
    CHECK_OBJ_NOTNULL(c, CACHE_MAGIC);
    *out = c->st;
}

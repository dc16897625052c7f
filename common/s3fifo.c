/*
 * s3fifo.c: S3-FIFO eviction over caller-owned entries (see s3fifo.h).
 *
 * Lifecycle of an entry: s3fifo_node_init -> s3fifo_insert (small, or main
 * on a ghost hit) -> hits bump freq -> either it is evicted (handed to
 * on_evict; from small its hash goes to the ghost queue) or the caller
 * takes it out with s3fifo_remove / s3fifo_replace / s3fifo_clear. After
 * any of these the node is "not inserted" again and may be reused.
 *
 * Lifecycle of the instance: s3fifo_new -> any calls, serialized by the
 * caller -> s3fifo_free. Only the instance and the ghost queue are
 * allocated, through the configured allocator; entries never are.
 *
 * The ghost queue is a ring of key hashes in eviction order plus an
 * open-addressing table hash -> ring sequence number, so that both "is it
 * there" and "take it out" are O(1). Taking a hash out leaves a hole (0)
 * in the ring; holes are squeezed out when the ring is rebuilt, which
 * happens when the ring is full of slots but not of live hashes, or needs
 * to grow. If growing fails for want of memory, the oldest hash is
 * forgotten early: the ghost is advisory, so that only costs hit ratio.
 */
#include "s3fifo.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "vas.h"

#define S3FIFO_MAGIC 0x53334649U
#define FREQ_MAX 3
/* entries hit at least this often while in small move to main */
#define PROMOTE_FREQ 1
#define GHOST_MIN_CAP 64

struct fifo {
    struct s3fifo_node *head; /* newest */
    struct s3fifo_node *tail; /* oldest */
    size_t count;
    uint64_t bytes;
};

struct gslot {
    uint64_t hash; /* 0: empty */
    uint64_t seq;
};

struct ghost {
    uint64_t *ring;    /* cap slots, hash or 0 (a hole) */
    size_t cap;        /* power of two */
    uint64_t head;     /* sequence number of the next slot to fill */
    uint64_t tail;     /* sequence number of the oldest slot */
    size_t live;       /* slots in [tail, head) that are not holes */
    struct gslot *tab; /* 2 * cap slots, linear probing */
};

struct s3fifo {
    unsigned magic;
    uint64_t budget;
    uint64_t small_target;
    unsigned small_percent;
    size_t ghost_max;
    struct fifo small;
    struct fifo main;
    struct ghost ghost;
    s3fifo_evict_f *on_evict;
    void *arg;
    s3fifo_alloc_f *alloc;
    s3fifo_dealloc_f *dealloc;
    uint64_t inserts, ghost_hits, promotions, reinsertions, evictions;
    uint64_t evicted_bytes, pinned_skips;
};

/* ------------------------------------------------------------ fifos */

static void fifo_push(struct fifo *f, struct s3fifo_node *n)
{
    n->newer = NULL;
    n->older = f->head;
    if (f->head != NULL)
        f->head->newer = n;
    else
        f->tail = n;
    f->head = n;
    f->count++;
    f->bytes += n->size;
}

static void fifo_unlink(struct fifo *f, struct s3fifo_node *n)
{
    AN(f->count);
    assert_always(f->bytes >= n->size);
    if (n->newer != NULL)
        n->newer->older = n->older;
    else
        f->head = n->older;
    if (n->older != NULL)
        n->older->newer = n->newer;
    else
        f->tail = n->newer;
    n->newer = n->older = NULL;
    f->count--;
    f->bytes -= n->size;
}

/* Put node nw where old is (old unlinked), keeping the position. */
static void fifo_swap(struct fifo *f, struct s3fifo_node *old, struct s3fifo_node *nw)
{
    nw->newer = old->newer;
    nw->older = old->older;
    if (nw->newer != NULL)
        nw->newer->older = nw;
    else
        f->head = nw;
    if (nw->older != NULL)
        nw->older->newer = nw;
    else
        f->tail = nw;
    old->newer = old->older = NULL;
    assert_always(f->bytes >= old->size);
    f->bytes = f->bytes - old->size + nw->size;
}

static struct fifo *fifo_of(struct s3fifo *q, const struct s3fifo_node *n)
{
    switch (n->queue) {
    case S3FIFO_Q_SMALL:
        return &q->small;
    case S3FIFO_Q_MAIN:
        return &q->main;
    default:
        WRONG("s3fifo: node not inserted");
    }
}

static uint64_t total_bytes(const struct s3fifo *q)
{
    return q->small.bytes + q->main.bytes;
}

/* ------------------------------------------------------------ ghost */

static uint64_t ghost_key(uint64_t hash)
{
    return hash != 0 ? hash : 1; /* 0 marks empty slots and holes */
}

static uint64_t mix(uint64_t h)
{
    /* the caller's hash may be weak in its low bits: finalize it
     * (the splitmix64 finalizer) before masking */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static size_t tab_find(const struct ghost *g, uint64_t h)
{
    size_t mask = 2 * g->cap - 1;

    for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
        if (g->tab[i].hash == h)
            return i;
        if (g->tab[i].hash == 0)
            return SIZE_MAX;
    }
}

static void tab_put(struct ghost *g, uint64_t h, uint64_t seq)
{
    size_t mask = 2 * g->cap - 1;

    for (size_t i = mix(h) & mask;; i = (i + 1) & mask) {
        if (g->tab[i].hash == h || g->tab[i].hash == 0) {
            g->tab[i].hash = h;
            g->tab[i].seq = seq;
            return;
        }
    }
}

/* Linear-probing deletion by backward shift: no tombstones. */
static void tab_del(struct ghost *g, size_t i)
{
    size_t mask = 2 * g->cap - 1;
    size_t j = i;

    for (;;) {
        j = (j + 1) & mask;
        if (g->tab[j].hash == 0)
            break;
        size_t home = mix(g->tab[j].hash) & mask;
        /* move j back to i unless its home lies cyclically in (i, j] */
        bool stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            g->tab[i] = g->tab[j];
            i = j;
        }
    }
    g->tab[i].hash = 0;
    g->tab[i].seq = 0;
}

static bool ghost_alloc(struct s3fifo *q, struct ghost *g, size_t cap)
{
    g->ring = q->alloc(cap * sizeof(*g->ring));
    g->tab = q->alloc(2 * cap * sizeof(*g->tab));
    if (g->ring == NULL || g->tab == NULL) {
        if (g->ring != NULL)
            q->dealloc(g->ring);
        if (g->tab != NULL)
            q->dealloc(g->tab);
        g->ring = NULL;
        g->tab = NULL;
        return false;
    }
    memset(g->ring, 0, cap * sizeof(*g->ring));
    memset(g->tab, 0, 2 * cap * sizeof(*g->tab));
    g->cap = cap;
    g->head = g->tail = 0;
    g->live = 0;
    return true;
}

static void ghost_release(struct s3fifo *q, struct ghost *g)
{
    if (g->ring != NULL)
        q->dealloc(g->ring);
    if (g->tab != NULL)
        q->dealloc(g->tab);
    memset(g, 0, sizeof(*g));
}

/* Rebuild the ghost with cap slots, keeping live hashes in order. */
static bool ghost_rebuild(struct s3fifo *q, size_t cap)
{
    struct ghost *old = &q->ghost, nw;

    if (!ghost_alloc(q, &nw, cap))
        return false;
    for (uint64_t s = old->tail; s < old->head; s++) {
        uint64_t h = old->ring[s & (old->cap - 1)];
        if (h == 0)
            continue;
        if (nw.live == cap)
            break; /* shrinking: keep the newest that fit */
        nw.ring[nw.head & (cap - 1)] = h;
        tab_put(&nw, h, nw.head);
        nw.head++;
        nw.live++;
    }
    ghost_release(q, old);
    *old = nw;
    return true;
}

/* Forget the oldest live hash. */
static void ghost_pop(struct ghost *g)
{
    while (g->tail < g->head) {
        uint64_t seq = g->tail++;
        uint64_t h = g->ring[seq & (g->cap - 1)];
        if (h == 0)
            continue;
        g->ring[seq & (g->cap - 1)] = 0;
        g->live--;
        size_t i = tab_find(g, h);
        /* a newer copy of the same hash keeps the table entry */
        if (i != SIZE_MAX && g->tab[i].seq == seq)
            tab_del(g, i);
        return;
    }
}

/*
 * The ghost remembers as many entries as the main queue holds (the paper
 * sizes it like the main queue), or as the main queue would hold at the
 * current mean entry size if that is more: while the cache warms up, the
 * main queue is nearly empty and the ghost would otherwise forget
 * everything at once.
 */
static size_t ghost_bound(const struct s3fifo *q)
{
    size_t n = q->main.count, entries = q->small.count + q->main.count;
    uint64_t bytes = total_bytes(q);

    if (bytes > 0 && entries > 0) {
        uint64_t mean = bytes / entries;
        uint64_t est = (q->budget - q->small_target) / (mean > 0 ? mean : 1);
        if (est > n)
            n = est > SIZE_MAX ? SIZE_MAX : (size_t)est;
    }
    if (q->ghost_max > 0 && n > q->ghost_max)
        n = q->ghost_max;
    return n;
}

static void ghost_add(struct s3fifo *q, uint64_t hash)
{
    struct ghost *g = &q->ghost;
    uint64_t h = ghost_key(hash);
    size_t bound = ghost_bound(q);

    if (bound == 0 || g->ring == NULL)
        return;
    /* live < bound after this, and the ring has room below */
    while (g->live >= bound)
        ghost_pop(g);
    if (g->head - g->tail == g->cap) {
        /* every slot used: squeeze the holes out, and grow when at least
         * half the slots are live (so the ring stays within twice the
         * bound); without memory, forget the oldest slots early */
        size_t want = g->live >= g->cap / 2 ? g->cap * 2 : g->cap;
        if (!ghost_rebuild(q, want) && (want == g->cap || !ghost_rebuild(q, g->cap))) {
            while (g->head - g->tail == g->cap)
                ghost_pop(g);
        }
    }
    AN(g->head - g->tail < g->cap);
    g->ring[g->head & (g->cap - 1)] = h;
    tab_put(g, h, g->head);
    g->head++;
    g->live++;
}

/* Whether hash was in the ghost; it is taken out. */
static bool ghost_take(struct s3fifo *q, uint64_t hash)
{
    struct ghost *g = &q->ghost;
    uint64_t h = ghost_key(hash);

    if (g->ring == NULL || g->live == 0)
        return false;
    size_t i = tab_find(g, h);
    if (i == SIZE_MAX)
        return false;
    uint64_t seq = g->tab[i].seq;
    assert_always(seq >= g->tail && seq < g->head);
    AN(g->ring[seq & (g->cap - 1)] == h);
    g->ring[seq & (g->cap - 1)] = 0;
    g->live--;
    tab_del(g, i);
    return true;
}

bool s3fifo_ghost_contains(const struct s3fifo *q, uint64_t hash)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    if (q->ghost.ring == NULL || q->ghost.live == 0)
        return false;
    return tab_find(&q->ghost, ghost_key(hash)) != SIZE_MAX;
}

/* --------------------------------------------------------- eviction */

/* Hand n back to the caller; from the small queue its hash is remembered.
 * The hash is read before the callback, which may free n. */
static void evict(struct s3fifo *q, struct fifo *f, struct s3fifo_node *n,
                  bool remember)
{
    fifo_unlink(f, n);
    n->queue = S3FIFO_Q_NONE;
    q->evictions++;
    q->evicted_bytes += n->size;
    if (remember)
        ghost_add(q, n->hash);
    q->on_evict(n, q->arg);
}

/*
 * One pass over the small queue, oldest first: pinned entries rotate,
 * entries hit since insertion move to main, the first other one is
 * evicted (and remembered in the ghost). True when one was evicted.
 */
static bool evict_small(struct s3fifo *q)
{
    size_t budget = q->small.count;

    while (budget-- > 0 && q->small.tail != NULL) {
        struct s3fifo_node *t = q->small.tail;

        if (t->pinned) {
            q->pinned_skips++;
            fifo_unlink(&q->small, t);
            fifo_push(&q->small, t);
        } else if (t->freq >= PROMOTE_FREQ) {
            /* as the authors' implementation: the count restarts in main */
            fifo_unlink(&q->small, t);
            t->freq = 0;
            t->queue = S3FIFO_Q_MAIN;
            q->promotions++;
            fifo_push(&q->main, t);
        } else {
            evict(q, &q->small, t, true);
            return true;
        }
    }
    return false;
}

/*
 * The main queue as a CLOCK with a 2-bit counter: the oldest entry with
 * freq > 0 goes back to the head with freq - 1. Every unpinned entry is
 * evictable after at most FREQ_MAX + 1 rounds, which bounds the pass.
 */
static bool evict_main(struct s3fifo *q)
{
    size_t budget = (FREQ_MAX + 1) * q->main.count + 1;

    while (budget-- > 0 && q->main.tail != NULL) {
        struct s3fifo_node *t = q->main.tail;

        if (t->pinned) {
            q->pinned_skips++;
        } else if (t->freq > 0) {
            t->freq--;
            q->reinsertions++;
        } else {
            evict(q, &q->main, t, false);
            return true;
        }
        fifo_unlink(&q->main, t);
        fifo_push(&q->main, t);
    }
    return false;
}

static bool evict_one(struct s3fifo *q)
{
    /* the paper: from small while it holds at least its share */
    if (q->small.count > 0 &&
        (q->small.bytes >= q->small_target || q->main.count == 0)) {
        if (evict_small(q))
            return true;
    }
    if (evict_main(q))
        return true;
    /* main had nothing evictable (empty or pinned): small, whatever its
     * share */
    return q->small.count > 0 && evict_small(q);
}

/* Evict until need more bytes fit. */
static int make_room(struct s3fifo *q, uint64_t need)
{
    if (need > q->budget)
        return EDGE_ETOOLONG;
    while (total_bytes(q) + need > q->budget) {
        if (!evict_one(q))
            return EDGE_EAGAIN;
    }
    return 0;
}

/* ------------------------------------------------------------- API */

static void *default_alloc(size_t size)
{
    return malloc(size);
}

static void default_dealloc(void *p)
{
    free(p);
}

static uint64_t small_target_of(uint64_t budget, unsigned percent)
{
    /* budget / 100 * percent, without overflow for huge budgets */
    return budget / 100 * percent + budget % 100 * percent / 100;
}

struct s3fifo *s3fifo_new(const struct s3fifo_conf *conf)
{
    struct s3fifo *q;
    s3fifo_alloc_f *alloc;

    if (conf == NULL || conf->budget == 0 || conf->on_evict == NULL ||
        conf->small_percent > 90 || (conf->alloc == NULL) != (conf->dealloc == NULL))
        return NULL;
    alloc = conf->alloc != NULL ? conf->alloc : default_alloc;
    q = alloc(sizeof(*q));
    if (q == NULL)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->magic = S3FIFO_MAGIC;
    q->alloc = alloc;
    q->dealloc = conf->dealloc != NULL ? conf->dealloc : default_dealloc;
    q->budget = conf->budget;
    q->small_percent = conf->small_percent != 0 ? conf->small_percent : 10;
    q->small_target = small_target_of(q->budget, q->small_percent);
    q->ghost_max = conf->ghost_max;
    q->on_evict = conf->on_evict;
    q->arg = conf->arg;
    if (!ghost_alloc(q, &q->ghost, GHOST_MIN_CAP)) {
        q->dealloc(q);
        return NULL;
    }
    return q;
}

void s3fifo_free(struct s3fifo *q)
{
    if (q == NULL)
        return;
    CHECK_OBJ(q, S3FIFO_MAGIC);
    ghost_release(q, &q->ghost);
    q->magic = 0;
    q->dealloc(q);
}

int s3fifo_insert(struct s3fifo *q, struct s3fifo_node *n, uint64_t hash,
                  uint64_t size)
{
    bool ghosted;
    int rc;

    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(n);
    AZ(n->queue);
    if (size > q->budget)
        return EDGE_ETOOLONG;
    /* look before evicting: making room may push the hash out of the ghost */
    ghosted = ghost_take(q, hash);
    rc = make_room(q, size);
    if (rc != 0) {
        if (ghosted)
            ghost_add(q, hash);
        return rc;
    }
    n->hash = hash;
    n->size = size;
    n->freq = 0;
    if (ghosted) {
        n->queue = S3FIFO_Q_MAIN;
        fifo_push(&q->main, n);
        q->ghost_hits++;
    } else {
        n->queue = S3FIFO_Q_SMALL;
        fifo_push(&q->small, n);
    }
    q->inserts++;
    return 0;
}

int s3fifo_reserve(struct s3fifo *q, uint64_t size)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    return make_room(q, size);
}

void s3fifo_hit(struct s3fifo *q, struct s3fifo_node *n)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(n);
    AN(n->queue);
    if (n->freq < FREQ_MAX)
        n->freq++;
}

void s3fifo_remove(struct s3fifo *q, struct s3fifo_node *n)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(n);
    fifo_unlink(fifo_of(q, n), n);
    n->queue = S3FIFO_Q_NONE;
}

int s3fifo_replace(struct s3fifo *q, struct s3fifo_node *old,
                   struct s3fifo_node *nw, uint64_t size)
{
    struct fifo *f;
    int rc;

    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(old);
    AN(nw);
    AZ(nw->queue);
    f = fifo_of(q, old);
    if (size > q->budget)
        return EDGE_ETOOLONG;
    if (size > old->size) {
        /* old stays in place and is not a candidate while room is made */
        bool was = old->pinned;
        old->pinned = true;
        rc = make_room(q, size - old->size);
        old->pinned = was;
        if (rc != 0)
            return rc;
    }
    nw->hash = old->hash;
    nw->freq = old->freq;
    nw->queue = old->queue;
    nw->size = size;
    fifo_swap(f, old, nw);
    old->queue = S3FIFO_Q_NONE;
    return 0;
}

int s3fifo_resize(struct s3fifo *q, struct s3fifo_node *n, uint64_t size)
{
    struct fifo *f;

    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(n);
    f = fifo_of(q, n);
    if (size > q->budget)
        return EDGE_ETOOLONG;
    if (size > n->size) {
        bool was = n->pinned;
        n->pinned = true;
        int rc = make_room(q, size - n->size);
        n->pinned = was;
        if (rc != 0)
            return rc;
        f = fifo_of(q, n); /* still where it was: it was pinned */
    }
    f->bytes = f->bytes - n->size + size;
    n->size = size;
    return 0;
}

void s3fifo_set_pinned(struct s3fifo *q, struct s3fifo_node *n, bool pinned)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(n);
    n->pinned = pinned;
}

int s3fifo_set_budget(struct s3fifo *q, uint64_t budget)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    if (budget == 0)
        return EDGE_EINVAL;
    q->budget = budget;
    q->small_target = small_target_of(budget, q->small_percent);
    while (total_bytes(q) > q->budget) {
        if (!evict_one(q))
            return EDGE_EAGAIN;
    }
    return 0;
}

void s3fifo_clear(struct s3fifo *q)
{
    struct fifo *fs[2];

    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    fs[0] = &q->small;
    fs[1] = &q->main;
    for (int i = 0; i < 2; i++) {
        while (fs[i]->tail != NULL) {
            struct s3fifo_node *t = fs[i]->tail;
            fifo_unlink(fs[i], t);
            t->queue = S3FIFO_Q_NONE;
            q->on_evict(t, q->arg);
        }
    }
    if (q->ghost.ring != NULL) {
        memset(q->ghost.ring, 0, q->ghost.cap * sizeof(*q->ghost.ring));
        memset(q->ghost.tab, 0, 2 * q->ghost.cap * sizeof(*q->ghost.tab));
        q->ghost.head = q->ghost.tail = 0;
        q->ghost.live = 0;
    }
}

void s3fifo_stats(const struct s3fifo *q, struct s3fifo_stats *st)
{
    CHECK_OBJ_NOTNULL(q, S3FIFO_MAGIC);
    AN(st);
    memset(st, 0, sizeof(*st));
    st->budget = q->budget;
    st->bytes = total_bytes(q);
    st->small_bytes = q->small.bytes;
    st->main_bytes = q->main.bytes;
    st->small_entries = q->small.count;
    st->main_entries = q->main.count;
    st->entries = q->small.count + q->main.count;
    st->ghost_entries = q->ghost.live;
    st->inserts = q->inserts;
    st->ghost_hits = q->ghost_hits;
    st->promotions = q->promotions;
    st->reinsertions = q->reinsertions;
    st->evictions = q->evictions;
    st->evicted_bytes = q->evicted_bytes;
    st->pinned_skips = q->pinned_skips;
}

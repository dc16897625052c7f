/*
 * s3fifo.h: S3-FIFO eviction (Yang, Zhang, Qiu, Yue, Rashmi: "FIFO queues
 * are all you need for cache eviction", SOSP 2023) over caller-owned
 * entries, with a byte budget.
 *
 * Three FIFO queues: a small one (10 % of the budget by default) that every
 * new entry enters, a main one for entries that proved themselves, and a
 * ghost queue that remembers only the key hashes of entries recently
 * evicted from the small queue, at most as many as the main queue holds.
 *   - insert: into main if the key's hash is in the ghost queue (it was
 *     evicted too early), else into small; freq = 0;
 *   - hit: freq = min(freq + 1, 3), nothing else (no list moves on hits);
 *   - evict from small (when it holds at least its share): the oldest entry
 *     moves to main (freq reset to 0) if it was hit since insertion, else it
 *     is evicted and its hash enters the ghost queue;
 *   - evict from main: the oldest entry with freq > 0 is reinserted at the
 *     head with freq - 1; one with freq 0 is evicted.
 * One-hit wonders thus leave through the small queue without disturbing
 * the main one, which is what makes S3-FIFO resist scans.
 *
 * Sizes: an entry may be as large as the whole budget. One larger than the
 * small queue's share still enters the small queue (the authors' simulator
 * refuses those; with blocks as entries that only matters for budgets of a
 * few blocks). The ghost costs about 40 bytes per remembered hash, outside
 * the budget, and remembers at most about as many hashes as the main queue
 * holds entries (or ghost_max).
 *
 * The entry embeds a struct s3fifo_node; the caller keeps its own index
 * (key -> entry) and gives each entry a 64-bit hash of its key. Victims are
 * handed back through the on_evict callback. Removal of any entry (purge,
 * replacement) is O(1). All calls on one instance must be serialized by the
 * caller (one lock, or one loop): nothing here is thread-safe.
 *
 * Pinning: an entry whose node is pinned (s3fifo_set_pinned(), e.g. a block
 * still being filled) is never evicted; eviction passes over it, moving it
 * to the head of its queue without changing its freq. When only pinned
 * entries are left to evict, the call that needed room fails with
 * EDGE_EAGAIN and the budget is still respected: nothing is ever admitted
 * past it.
 */
#ifndef S3EDGE_S3FIFO_H
#define S3EDGE_S3FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Embedded in the caller's entry. Zero it (s3fifo_node_init) before first
 * use; the fields belong to s3fifo while the node is inserted and may be
 * read (not written) by the caller. */
struct s3fifo_node {
    struct s3fifo_node *newer; /* toward the head of its queue */
    struct s3fifo_node *older; /* toward the tail */
    uint64_t hash;             /* the key hash given to s3fifo_insert */
    uint64_t size;             /* bytes charged to the budget */
    uint8_t freq;              /* 0..3 */
    uint8_t queue;             /* enum s3fifo_queue */
    bool pinned;
};

enum s3fifo_queue {
    S3FIFO_Q_NONE = 0, /* not inserted */
    S3FIFO_Q_SMALL,
    S3FIFO_Q_MAIN,
};

/* Called with each evicted entry, already unlinked and no longer counted;
 * the callee owns it again and may free it. It must not call back into the
 * same s3fifo instance. */
typedef void s3fifo_evict_f(struct s3fifo_node *n, void *arg);
typedef void *s3fifo_alloc_f(size_t size);
typedef void s3fifo_dealloc_f(void *p);

struct s3fifo_conf {
    uint64_t budget;          /* bytes, > 0 */
    unsigned small_percent;   /* share of the small queue, 1..90; 0: 10 */
    size_t ghost_max;         /* cap on ghost entries; 0: only the main-queue bound */
    s3fifo_evict_f *on_evict; /* required */
    void *arg;
    s3fifo_alloc_f *alloc;    /* NULL: malloc (for the instance and the ghost) */
    s3fifo_dealloc_f *dealloc;/* NULL: free */
};

struct s3fifo;

/* A new instance, or NULL when conf is invalid or allocation failed. */
struct s3fifo *s3fifo_new(const struct s3fifo_conf *conf);
/* Free the instance. Entries still inserted are not called back: the
 * caller owns them anyway (use s3fifo_clear first to get them back). */
void s3fifo_free(struct s3fifo *q);

static inline void s3fifo_node_init(struct s3fifo_node *n)
{
    *n = (struct s3fifo_node){0};
}

/*
 * Insert n (not inserted, size bytes, key hash) and charge its size,
 * evicting others first when needed. n may be pinned beforehand.
 * Returns 0, EDGE_ETOOLONG if size > budget (nothing evicted), or
 * EDGE_EAGAIN if pinned entries hold the room it would need (others may
 * have been evicted meanwhile). On error n is not inserted.
 */
int s3fifo_insert(struct s3fifo *q, struct s3fifo_node *n, uint64_t hash,
                  uint64_t size);

/* Evict until size more bytes fit (e.g. before allocating a block that
 * will be inserted). 0, EDGE_ETOOLONG or EDGE_EAGAIN as above. */
int s3fifo_reserve(struct s3fifo *q, uint64_t size);

/* A cache hit on n: freq = min(freq + 1, 3). O(1), no list change. */
void s3fifo_hit(struct s3fifo *q, struct s3fifo_node *n);

/* Take n out (purge, invalidation), O(1). No callback, no ghost entry: a
 * removal is not an eviction. n may be inserted again later. */
void s3fifo_remove(struct s3fifo *q, struct s3fifo_node *n);

/*
 * Put nw (not inserted) in old's place: same queue, same position, same
 * freq and hash, charged size bytes (e.g. a new version of an object after
 * revalidation). Returns 0, or EDGE_ETOOLONG / EDGE_EAGAIN when the extra
 * bytes do not fit, in which case old stays where it was.
 */
int s3fifo_replace(struct s3fifo *q, struct s3fifo_node *old,
                   struct s3fifo_node *nw, uint64_t size);

/* Change the bytes charged for n (an entry that grew or shrank). n itself
 * is never the victim. 0, EDGE_ETOOLONG or EDGE_EAGAIN (size unchanged). */
int s3fifo_resize(struct s3fifo *q, struct s3fifo_node *n, uint64_t size);

/* Pin or unpin n, inserted or not. */
void s3fifo_set_pinned(struct s3fifo *q, struct s3fifo_node *n, bool pinned);

/* Change the budget (e.g. on reload) and evict down to it. EDGE_EINVAL for
 * 0; EDGE_EAGAIN if pinned entries keep it above the new budget for now
 * (the budget is changed anyway, and further inserts wait for room). */
int s3fifo_set_budget(struct s3fifo *q, uint64_t budget);

/* Hand every entry to on_evict (no ghost entries), and forget the ghost. */
void s3fifo_clear(struct s3fifo *q);

/* Whether hash is remembered in the ghost queue. */
bool s3fifo_ghost_contains(const struct s3fifo *q, uint64_t hash);

struct s3fifo_stats {
    uint64_t budget;
    uint64_t bytes;          /* charged now, <= budget */
    uint64_t small_bytes;
    uint64_t main_bytes;
    size_t entries;
    size_t small_entries;
    size_t main_entries;
    size_t ghost_entries;
    uint64_t inserts;        /* successful s3fifo_insert calls */
    uint64_t ghost_hits;     /* inserts that went to main from the ghost */
    uint64_t promotions;     /* small -> main */
    uint64_t reinsertions;   /* main -> main with freq - 1 */
    uint64_t evictions;      /* entries handed to on_evict by eviction */
    uint64_t evicted_bytes;
    uint64_t pinned_skips;   /* pinned entries passed over */
};

void s3fifo_stats(const struct s3fifo *q, struct s3fifo_stats *st);

#endif

/*
 * test_s3fifo.c: the S3-FIFO eviction policy, entry by entry (admission,
 * promotion, ghost hits, main-queue reinsertion, pinning, removal, the
 * byte budget), then trace-driven against an LRU of the same byte budget:
 * a Zipf(1.0) workload over 100,000 objects with download-like sizes and
 * a one-pass scan of 100,000 one-hit objects mixed in.
 *
 * S3FIFO_TABLE=1 in the environment prints the comparison as the Markdown
 * table of docs/s3fifo-vs-lru.md.
 */
#include "err.h"
#include "s3fifo.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================ fixtures */

/*
 * Check's ck_assert reports progress to the runner with a write per call;
 * in loops of many thousands that is most of the run time. Loops count
 * failures instead, keep the first line, and assert once after.
 */
static unsigned loop_fails;
static int loop_fail_line;
#define LOOP_CHECK(c)                                                          \
    do {                                                                       \
        if (!(c) && loop_fails++ == 0)                                         \
            loop_fail_line = __LINE__;                                         \
    } while (0)
#define LOOP_DONE()                                                            \
    ck_assert_msg(loop_fails == 0, "%u loop checks failed, the first at line %d", \
                  loop_fails, loop_fail_line)

#define ENT_MAGIC 0x656e7431U

struct ent {
    unsigned magic;
    struct s3fifo_node node;
    uint64_t key;
    int evicted; /* times handed back */
};

#define NENT 4096

static struct ent ents[NENT];
static uint64_t victims[NENT * 4]; /* the first ones, in order */
static size_t nvictims;
static uint64_t last_victim;
static uint64_t victim_bytes;

static struct ent *ent_of(struct s3fifo_node *n)
{
    struct ent *e = (struct ent *)(void *)((char *)n - offsetof(struct ent, node));

    LOOP_CHECK(e->magic == ENT_MAGIC);
    return e;
}

static void on_evict(struct s3fifo_node *n, void *arg)
{
    struct ent *e = ent_of(n);

    LOOP_CHECK(arg == ents);
    LOOP_CHECK(n->queue == S3FIFO_Q_NONE);
    if (nvictims < sizeof(victims) / sizeof(victims[0]))
        victims[nvictims] = e->key;
    nvictims++;
    last_victim = e->key;
    victim_bytes += n->size;
    e->evicted++;
}

static void ents_reset(void)
{
    for (unsigned i = 0; i < NENT; i++) {
        ents[i].magic = ENT_MAGIC;
        s3fifo_node_init(&ents[i].node);
        ents[i].key = i;
        ents[i].evicted = 0;
    }
    nvictims = 0;
    victim_bytes = 0;
    loop_fails = 0;
}

/* a key hash the way a caller would make one */
static uint64_t khash(uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

static struct s3fifo *mk(uint64_t budget)
{
    struct s3fifo_conf c = {.budget = budget, .on_evict = on_evict, .arg = ents};
    struct s3fifo *q = s3fifo_new(&c);

    ck_assert_ptr_nonnull(q);
    return q;
}

static int ins(struct s3fifo *q, unsigned i, uint64_t size)
{
    return s3fifo_insert(q, &ents[i].node, khash(ents[i].key), size);
}

static struct s3fifo_stats stats(const struct s3fifo *q)
{
    struct s3fifo_stats st;

    s3fifo_stats(q, &st);
    return st;
}

static void setup(void)
{
    ents_reset();
}

/* ======================================================== unit behaviour */

START_TEST(conf_checked)
{
    struct s3fifo_conf c = {.budget = 100, .on_evict = on_evict};

    ck_assert_ptr_null(s3fifo_new(NULL));
    c.budget = 0;
    ck_assert_ptr_null(s3fifo_new(&c));
    c.budget = 100;
    c.on_evict = NULL;
    ck_assert_ptr_null(s3fifo_new(&c));
    c.on_evict = on_evict;
    c.small_percent = 91;
    ck_assert_ptr_null(s3fifo_new(&c));
    c.small_percent = 0;
    c.alloc = malloc; /* an allocator without its free */
    ck_assert_ptr_null(s3fifo_new(&c));
    c.alloc = NULL;
    struct s3fifo *q = s3fifo_new(&c);
    ck_assert_ptr_nonnull(q);
    s3fifo_free(q);
    s3fifo_free(NULL);
}
END_TEST

START_TEST(insert_goes_to_small_and_counts_bytes)
{
    struct s3fifo *q = mk(1000);

    ck_assert_int_eq(ins(q, 0, 10), 0);
    ck_assert_int_eq(ins(q, 1, 20), 0);
    ck_assert_int_eq(ins(q, 2, 30), 0);
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.bytes, 60);
    ck_assert_uint_eq(st.small_bytes, 60);
    ck_assert_uint_eq(st.small_entries, 3);
    ck_assert_uint_eq(st.main_entries, 0);
    ck_assert_uint_eq(st.inserts, 3);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_SMALL);
    ck_assert_uint_eq(ents[1].node.size, 20);
    ck_assert_uint_eq(ents[1].node.hash, khash(1));
    ck_assert_uint_eq(nvictims, 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(too_large_refused)
{
    struct s3fifo *q = mk(100);

    ck_assert_int_eq(ins(q, 0, 50), 0);
    ck_assert_int_eq(ins(q, 1, 101), EDGE_ETOOLONG);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_NONE);
    ck_assert_uint_eq(nvictims, 0);
    ck_assert_int_eq(s3fifo_reserve(q, 101), EDGE_ETOOLONG);
    /* exactly the budget fits, after evicting everything else */
    ck_assert_int_eq(ins(q, 2, 100), 0);
    ck_assert_uint_eq(nvictims, 1);
    ck_assert_uint_eq(victims[0], 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(hit_caps_freq_at_3)
{
    struct s3fifo *q = mk(100);

    ck_assert_int_eq(ins(q, 0, 10), 0);
    ck_assert_uint_eq(ents[0].node.freq, 0);
    for (int i = 0; i < 10; i++)
        s3fifo_hit(q, &ents[0].node);
    ck_assert_uint_eq(ents[0].node.freq, 3);
    s3fifo_free(q);
}
END_TEST

/*
 * Budget 100, small share 10. Ten entries of 10 fill the cache (all in
 * small: nothing was evicted yet). Entry 0 is hit. Inserting entry 10
 * needs room: the small queue is over its share, its oldest (0) was hit
 * and moves to main, the next (1) was not and is evicted into the ghost.
 */
START_TEST(small_promotes_hit_entries_and_ghosts_the_rest)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    s3fifo_hit(q, &ents[0].node);
    ck_assert_int_eq(ins(q, 10, 10), 0);
    ck_assert_uint_eq(nvictims, 1);
    ck_assert_uint_eq(victims[0], 1);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_NONE);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_MAIN);
    ck_assert_uint_eq(ents[0].node.freq, 0); /* the count restarts in main */
    ck_assert(s3fifo_ghost_contains(q, khash(1)));
    ck_assert(!s3fifo_ghost_contains(q, khash(0)));
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.promotions, 1);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.ghost_entries, 1);
    ck_assert_uint_eq(st.bytes, 100);
    ck_assert_uint_eq(st.main_entries, 1);
    ck_assert_uint_eq(st.small_entries, 9);
    s3fifo_free(q);
}
END_TEST

START_TEST(ghost_hit_inserts_into_main)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 11; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    ck_assert_uint_eq(victims[0], 0);
    ck_assert(s3fifo_ghost_contains(q, khash(0)));
    /* key 0 comes back (a new entry for the same key): straight to main */
    s3fifo_node_init(&ents[0].node);
    ck_assert_int_eq(ins(q, 0, 10), 0);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_MAIN);
    ck_assert(!s3fifo_ghost_contains(q, khash(0)));
    ck_assert_uint_eq(stats(q).ghost_hits, 1);
    /* and that made room from small (1 was the oldest there) */
    ck_assert_uint_eq(last_victim, 1);
    s3fifo_free(q);
}
END_TEST

START_TEST(main_reinserts_hit_entries_with_freq_minus_one)
{
    struct s3fifo *q = mk(100);

    /* put 0, 1, 2 in main through the ghost: fill with 0..9, push 0..2
     * out with 10..12, then bring 0..2 back */
    for (unsigned i = 0; i < 13; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(s3fifo_ghost_contains(q, khash(i)));
        s3fifo_node_init(&ents[i].node);
        ck_assert_int_eq(ins(q, i, 10), 0);
        ck_assert_uint_eq(ents[i].node.queue, S3FIFO_Q_MAIN);
    }
    ck_assert_uint_eq(stats(q).main_entries, 3);
    /* 0 hit twice, 1 not, 2 hit once */
    s3fifo_hit(q, &ents[0].node);
    s3fifo_hit(q, &ents[0].node);
    s3fifo_hit(q, &ents[2].node);
    /* a budget of 20: small (7 entries) is over its share of 2 and is
     * emptied first, then main: its oldest, 0 (freq 2), goes back to the
     * head with freq 1; the next, 1 (freq 0), is evicted; 2 is not reached */
    size_t before = nvictims;
    ck_assert_int_eq(s3fifo_set_budget(q, 20), 0);
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.bytes, 20);
    ck_assert_uint_eq(st.small_entries, 0);
    ck_assert_uint_eq(nvictims - before, 8);
    ck_assert_uint_eq(last_victim, 1);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_NONE);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_MAIN);
    ck_assert_uint_eq(ents[2].node.queue, S3FIFO_Q_MAIN);
    ck_assert_uint_eq(ents[0].node.freq, 1);
    ck_assert_uint_eq(ents[2].node.freq, 1);
    ck_assert_uint_eq(st.reinsertions, 1);
    /* main evictions are not remembered in the ghost */
    ck_assert(!s3fifo_ghost_contains(q, khash(1)));
    s3fifo_free(q);
}
END_TEST

START_TEST(one_hit_wonders_never_reach_main)
{
    struct s3fifo *q = mk(1000);

    for (unsigned i = 0; i < 2000; i++) {
        LOOP_CHECK(ins(q, i, 10) == 0);
        LOOP_CHECK(stats(q).bytes <= 1000);
    }
    LOOP_DONE();
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.main_entries, 0);
    ck_assert_uint_eq(st.promotions, 0);
    ck_assert_uint_eq(st.evictions, 1900);
    /* the ghost is bounded by what main would hold: 900 bytes / 10 */
    ck_assert_uint_le(st.ghost_entries, 90);
    ck_assert_uint_gt(st.ghost_entries, 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(ghost_max_caps_the_ghost)
{
    struct s3fifo_conf c = {.budget = 1000, .ghost_max = 7, .on_evict = on_evict,
                            .arg = ents};
    struct s3fifo *q = s3fifo_new(&c);

    ck_assert_ptr_nonnull(q);
    for (unsigned i = 0; i < 500; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    ck_assert_uint_eq(stats(q).ghost_entries, 7);
    /* the newest 7 are remembered, older ones are not */
    unsigned last = (unsigned)last_victim;
    for (unsigned k = 0; k < 7; k++)
        ck_assert(s3fifo_ghost_contains(q, khash(last - k)));
    ck_assert(!s3fifo_ghost_contains(q, khash(last - 7)));
    s3fifo_free(q);
}
END_TEST

START_TEST(budget_never_exceeded_random_sizes)
{
    /* a random mix of sizes, hits, removals and re-inserts */
    struct s3fifo *q = mk(50000);
    uint64_t x = 42, inserted = 0, removed = 0;

    for (unsigned step = 0; step < 200000; step++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned i = (unsigned)(x >> 33) % NENT;
        struct ent *e = &ents[i];
        if (e->node.queue != S3FIFO_Q_NONE) {
            if ((x >> 20) % 16 == 0) {
                removed += e->node.size;
                s3fifo_remove(q, &e->node);
            } else {
                s3fifo_hit(q, &e->node);
            }
        } else {
            uint64_t size = 1 + (x >> 40) % 2000;
            LOOP_CHECK(s3fifo_insert(q, &e->node, khash(i), size) == 0);
            inserted += size;
        }
        struct s3fifo_stats st = stats(q);
        LOOP_CHECK(st.bytes <= 50000);
        LOOP_CHECK(st.bytes == st.small_bytes + st.main_bytes);
    }
    LOOP_DONE();
    /* every byte is accounted for: charged = inserted - evicted - removed */
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.bytes, inserted - victim_bytes - removed);
    ck_assert_uint_eq(st.evicted_bytes, victim_bytes);
    /* the lists agree with the counters */
    size_t in_small = 0, in_main = 0;
    uint64_t b = 0;
    for (unsigned i = 0; i < NENT; i++) {
        if (ents[i].node.queue == S3FIFO_Q_SMALL)
            in_small++;
        if (ents[i].node.queue == S3FIFO_Q_MAIN)
            in_main++;
        if (ents[i].node.queue != S3FIFO_Q_NONE)
            b += ents[i].node.size;
    }
    ck_assert_uint_eq(in_small, st.small_entries);
    ck_assert_uint_eq(in_main, st.main_entries);
    ck_assert_uint_eq(b, st.bytes);
    ck_assert_uint_gt(st.promotions, 0);
    ck_assert_uint_gt(st.ghost_hits, 0);
    ck_assert_uint_gt(st.reinsertions, 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(remove_is_not_an_eviction)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 11; i++)
        ck_assert_int_eq(ins(q, i, 10), 0); /* 0 evicted; all in small */
    s3fifo_hit(q, &ents[1].node);
    ck_assert_int_eq(ins(q, 11, 10), 0);    /* 1 promoted, 2 evicted */
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_MAIN);
    size_t v = nvictims;
    s3fifo_remove(q, &ents[1].node);        /* from main */
    s3fifo_remove(q, &ents[5].node);        /* from the middle of small */
    s3fifo_remove(q, &ents[11].node);       /* the head of small */
    ck_assert_uint_eq(nvictims, v);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_NONE);
    ck_assert(!s3fifo_ghost_contains(q, khash(1)));
    ck_assert(!s3fifo_ghost_contains(q, khash(5)));
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.bytes, 70);
    ck_assert_uint_eq(st.main_entries, 0);
    ck_assert_uint_eq(st.small_entries, 7);
    /* a removed node can be inserted again */
    ck_assert_int_eq(ins(q, 5, 30), 0);
    ck_assert_uint_eq(stats(q).bytes, 100);
    /* the queue order survived the unlinks: the oldest goes first */
    ck_assert_int_eq(ins(q, 20, 10), 0);
    ck_assert_uint_eq(last_victim, 3);
    s3fifo_free(q);
}
END_TEST

START_TEST(pinned_entries_are_skipped)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    s3fifo_set_pinned(q, &ents[0].node, true);
    s3fifo_set_pinned(q, &ents[1].node, true);
    ck_assert_int_eq(ins(q, 10, 10), 0);
    /* 0 and 1 are older but pinned: 2 goes */
    ck_assert_uint_eq(nvictims, 1);
    ck_assert_uint_eq(victims[0], 2);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_SMALL);
    ck_assert_uint_ge(stats(q).pinned_skips, 2);
    s3fifo_free(q);
}
END_TEST

START_TEST(all_pinned_refuses_and_keeps_budget)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 10; i++) {
        s3fifo_set_pinned(q, &ents[i].node, true); /* pinned before insert */
        ck_assert_int_eq(ins(q, i, 10), 0);
    }
    s3fifo_hit(q, &ents[3].node);
    ck_assert_int_eq(ins(q, 10, 10), EDGE_EAGAIN);
    ck_assert_uint_eq(ents[10].node.queue, S3FIFO_Q_NONE);
    ck_assert_int_eq(s3fifo_reserve(q, 1), EDGE_EAGAIN);
    ck_assert_uint_eq(stats(q).bytes, 100);
    ck_assert_uint_eq(nvictims, 0);
    /* a smaller budget cannot be reached either, but is taken */
    ck_assert_int_eq(s3fifo_set_budget(q, 50), EDGE_EAGAIN);
    ck_assert_uint_eq(stats(q).budget, 50);
    /* unpinning lets eviction proceed down to the new budget */
    for (unsigned i = 0; i < 10; i++)
        s3fifo_set_pinned(q, &ents[i].node, false);
    ck_assert_int_eq(ins(q, 10, 10), 0);
    ck_assert_uint_le(stats(q).bytes, 50);
    ck_assert_int_eq(s3fifo_reserve(q, 50), 0);
    ck_assert_uint_eq(stats(q).bytes, 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(pinned_in_main_are_skipped)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 12; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);     /* 0, 1 in the ghost */
    for (unsigned i = 0; i < 2; i++) {
        s3fifo_node_init(&ents[i].node);
        ck_assert_int_eq(ins(q, i, 10), 0);     /* back, into main */
        s3fifo_set_pinned(q, &ents[i].node, true);
    }
    /* empty small; main holds only pinned entries: no room */
    ck_assert_int_eq(s3fifo_set_budget(q, 20), 0);
    ck_assert_uint_eq(stats(q).small_entries, 0);
    ck_assert_int_eq(ins(q, 30, 10), EDGE_EAGAIN);
    ck_assert_uint_eq(stats(q).bytes, 20);
    s3fifo_set_pinned(q, &ents[1].node, false);
    ck_assert_int_eq(ins(q, 30, 10), 0);
    ck_assert_uint_eq(ents[1].node.queue, S3FIFO_Q_NONE);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_MAIN);
    s3fifo_free(q);
}
END_TEST

START_TEST(resize_grows_without_evicting_itself)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    /* 0 is the oldest: growing it must evict others, never 0 */
    ck_assert_int_eq(s3fifo_resize(q, &ents[0].node, 35), 0);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_SMALL);
    ck_assert_uint_eq(ents[0].node.size, 35);
    ck_assert_uint_le(stats(q).bytes, 100);
    ck_assert_uint_eq(nvictims, 3);
    for (size_t k = 0; k < nvictims; k++)
        ck_assert_uint_ne(victims[k], 0);
    ck_assert_int_eq(s3fifo_resize(q, &ents[0].node, 5), 0);
    ck_assert_uint_eq(stats(q).bytes, 5 + 60);
    ck_assert_int_eq(s3fifo_resize(q, &ents[0].node, 101), EDGE_ETOOLONG);
    ck_assert_uint_eq(ents[0].node.size, 5);
    /* everything else pinned: no room to grow */
    for (unsigned i = 1; i < 10; i++)
        s3fifo_set_pinned(q, &ents[i].node, true);
    ck_assert_int_eq(s3fifo_resize(q, &ents[0].node, 41), EDGE_EAGAIN);
    ck_assert_uint_eq(ents[0].node.size, 5);
    ck_assert_int_eq(s3fifo_resize(q, &ents[0].node, 40), 0);
    ck_assert_uint_eq(stats(q).bytes, 100);
    s3fifo_free(q);
}
END_TEST

START_TEST(replace_takes_the_place)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 12; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    s3fifo_node_init(&ents[0].node);
    ck_assert_int_eq(ins(q, 0, 10), 0);          /* into main */
    s3fifo_hit(q, &ents[0].node);
    s3fifo_hit(q, &ents[0].node);
    /* a new version of key 0, bigger */
    ck_assert_int_eq(s3fifo_replace(q, &ents[0].node, &ents[100].node, 25), 0);
    ck_assert_uint_eq(ents[0].node.queue, S3FIFO_Q_NONE);
    ck_assert_uint_eq(ents[100].node.queue, S3FIFO_Q_MAIN);
    ck_assert_uint_eq(ents[100].node.freq, 2);
    ck_assert_uint_eq(ents[100].node.hash, khash(0));
    ck_assert_uint_eq(ents[100].node.size, 25);
    ck_assert_uint_le(stats(q).bytes, 100);
    ck_assert_uint_eq(stats(q).main_bytes, 25);
    /* too big, or no room: the old one stays */
    ck_assert_int_eq(s3fifo_replace(q, &ents[100].node, &ents[101].node, 200),
                     EDGE_ETOOLONG);
    ck_assert_uint_eq(ents[100].node.queue, S3FIFO_Q_MAIN);
    ck_assert_uint_eq(ents[101].node.queue, S3FIFO_Q_NONE);
    for (unsigned i = 0; i < NENT; i++)
        if (i != 100 && ents[i].node.queue != S3FIFO_Q_NONE)
            s3fifo_set_pinned(q, &ents[i].node, true);
    ck_assert_int_eq(s3fifo_replace(q, &ents[100].node, &ents[101].node, 99),
                     EDGE_EAGAIN);
    ck_assert_uint_eq(ents[100].node.queue, S3FIFO_Q_MAIN);
    /* smaller always fits; the old node may then be freed */
    ck_assert_int_eq(s3fifo_replace(q, &ents[100].node, &ents[101].node, 1), 0);
    ck_assert_uint_eq(stats(q).main_bytes, 1);
    s3fifo_remove(q, &ents[101].node);
    ck_assert_uint_eq(stats(q).main_entries, 0);
    s3fifo_free(q);
}
END_TEST

START_TEST(clear_hands_everything_back)
{
    struct s3fifo *q = mk(100);

    for (unsigned i = 0; i < 15; i++)
        ck_assert_int_eq(ins(q, i, 10), 0);
    s3fifo_node_init(&ents[0].node);
    ck_assert_int_eq(ins(q, 0, 10), 0);
    size_t v = nvictims;
    s3fifo_clear(q);
    ck_assert_uint_eq(nvictims - v, 10);
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_eq(st.bytes, 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.ghost_entries, 0);
    for (unsigned i = 0; i < 15; i++)
        ck_assert_uint_eq(ents[i].node.queue, S3FIFO_Q_NONE);
    /* usable afterwards */
    ck_assert_int_eq(ins(q, 0, 10), 0);
    s3fifo_free(q);
}
END_TEST

/* ghost growth, holes and the table under many evictions and ghost hits */
START_TEST(ghost_ring_and_table_stay_consistent)
{
    struct s3fifo *q = mk(2000);
    uint64_t x = 7;

    /* 2,000 bytes of size-1..4 entries, many more keys than fit */
    for (unsigned step = 0; step < 300000; step++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned i = (unsigned)((x >> 33) % NENT);
        if (ents[i].node.queue != S3FIFO_Q_NONE) {
            s3fifo_hit(q, &ents[i].node);
            continue;
        }
        bool ghosted = s3fifo_ghost_contains(q, khash(i));
        s3fifo_node_init(&ents[i].node);
        LOOP_CHECK(ins(q, i, 1 + (x >> 50) % 4) == 0);
        if (ghosted) {
            LOOP_CHECK(ents[i].node.queue == S3FIFO_Q_MAIN);
            LOOP_CHECK(!s3fifo_ghost_contains(q, khash(i)));
        }
    }
    LOOP_DONE();
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_gt(st.ghost_hits, 1000);
    /* nothing in the cache is also in the ghost */
    for (unsigned i = 0; i < NENT; i++)
        if (ents[i].node.queue != S3FIFO_Q_NONE)
            ck_assert(!s3fifo_ghost_contains(q, khash(i)));
    s3fifo_free(q);
}
END_TEST

/* allocation failures: s3fifo_new fails cleanly, ghost growth degrades */
static int fail_after = -1;
static int nallocs, nfrees;

static void *count_alloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    nallocs++;
    return malloc(n);
}

static void count_free(void *p)
{
    nfrees++;
    free(p);
}

START_TEST(allocation_failures)
{
    struct s3fifo_conf c = {.budget = 100000, .on_evict = on_evict, .arg = ents,
                            .alloc = count_alloc, .dealloc = count_free};

    for (int n = 0; n < 3; n++) {
        nallocs = nfrees = 0;
        fail_after = n;
        struct s3fifo *q = s3fifo_new(&c);
        ck_assert_ptr_null(q);
        ck_assert_int_eq(nallocs, nfrees);
    }
    /* new succeeds, then the ghost can never grow: still correct */
    nallocs = nfrees = 0;
    fail_after = 3;
    struct s3fifo *q = s3fifo_new(&c);
    ck_assert_ptr_nonnull(q);
    for (unsigned i = 0; i < NENT; i++) {
        LOOP_CHECK(ins(q, i, 100) == 0);
        LOOP_CHECK(stats(q).bytes <= 100000);
    }
    LOOP_DONE();
    struct s3fifo_stats st = stats(q);
    ck_assert_uint_gt(st.ghost_entries, 0);
    ck_assert_uint_le(st.ghost_entries, 64);
    /* the newest evicted key is still remembered */
    ck_assert(s3fifo_ghost_contains(q, khash(last_victim)));
    s3fifo_free(q);
    ck_assert_int_eq(nallocs, nfrees);
    fail_after = -1;
}
END_TEST

/* ======================================================= trace comparison */

/*
 * The workload: 100,000 objects, popularity Zipf(1.0) (rank r requested
 * with probability proportional to 1/r), 1,000,000 requests; in the middle
 * third, 100,000 requests for distinct objects never seen again (a crawler,
 * a mirror sync, a backup reading everything once) are interleaved.
 * Object sizes are independent of popularity and follow a download
 * mix, log-uniform within each class:
 *   30 % 1 KiB - 64 KiB   checksums, signatures, metadata
 *   30 % 64 KiB - 1 MiB   small packages
 *   25 % 1 MiB - 16 MiB
 *   12 % 16 MiB - 128 MiB
 *    3 % 128 MiB - 1 GiB  images, ISOs
 * Everything derives from one seed with integer arithmetic (and one sum of
 * 1/r in a fixed order), so the trace and the ratios are the same on every
 * run and compiler.
 */
#define T_OBJECTS 100000u
#define T_REQUESTS 1000000u
#define T_SCAN 100000u
#define T_SEED 0x5333464946304f31ULL

struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t draw_size(struct rng *r)
{
    /* class: [lo octave, hi octave), cumulative percent */
    static const struct {
        unsigned lo, hi, cum;
    } cls[] = {{10, 16, 30}, {16, 20, 60}, {20, 24, 85}, {24, 27, 97}, {27, 30, 100}};
    unsigned p = (unsigned)(rng_next(r) % 100), c = 0;

    while (p >= cls[c].cum)
        c++;
    /* log-uniform: a uniform octave, then uniform within it */
    unsigned oct = cls[c].lo + (unsigned)(rng_next(r) % (cls[c].hi - cls[c].lo));
    uint64_t base = 1ULL << oct;
    return base + rng_next(r) % base;
}

struct trace {
    uint32_t *req;     /* object ids; >= T_OBJECTS are the scan */
    uint64_t *size;    /* per object id */
    size_t nobj;
    size_t nreq;
    uint64_t catalog_bytes; /* bytes of the Zipf objects */
    uint64_t all_bytes;     /* bytes of every object, the scan's too */
    size_t distinct;        /* objects requested at least once */
};

static void trace_make(struct trace *t, unsigned nscan)
{
    /* two streams, so that the Zipf requests and sizes do not depend on
     * the length of the scan */
    struct rng r = {T_SEED}, rs = {T_SEED ^ 0x7363616e7363616eULL};
    double *cdf = malloc(T_OBJECTS * sizeof(*cdf));
    size_t nobj = T_OBJECTS + nscan;

    ck_assert_ptr_nonnull(cdf);
    t->nobj = nobj;
    t->size = malloc(nobj * sizeof(*t->size));
    t->nreq = T_REQUESTS + nscan;
    t->req = malloc(t->nreq * sizeof(*t->req));
    ck_assert_ptr_nonnull(t->size);
    ck_assert_ptr_nonnull(t->req);
    t->catalog_bytes = 0;
    for (size_t i = 0; i < nobj; i++) {
        t->size[i] = draw_size(&rs);
        if (i < T_OBJECTS)
            t->catalog_bytes += t->size[i];
    }
    double sum = 0;
    for (unsigned i = 0; i < T_OBJECTS; i++) {
        sum += 1.0 / (double)(i + 1);
        cdf[i] = sum;
    }
    size_t n = 0;
    unsigned scan_next = 0;
    const unsigned third = T_REQUESTS / 3;
    for (unsigned k = 0; k < T_REQUESTS; k++) {
        double u = rng_unit(&r) * sum;
        unsigned lo = 0, hi = T_OBJECTS - 1;
        while (lo < hi) {
            unsigned mid = lo + (hi - lo) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        t->req[n++] = lo;
        /* the scan: evenly through the middle third */
        if (k >= third && k < 2 * third && scan_next < nscan &&
            (uint64_t)(k - third + 1) * nscan >= (uint64_t)(scan_next + 1) * third)
            t->req[n++] = T_OBJECTS + scan_next++;
    }
    while (scan_next < nscan)
        t->req[n++] = T_OBJECTS + scan_next++;
    ck_assert_uint_eq(n, t->nreq);
    /* compulsory misses, for the sanity check of both simulations */
    bool *seen = calloc(nobj, sizeof(*seen));
    ck_assert_ptr_nonnull(seen);
    t->distinct = 0;
    t->all_bytes = 0;
    for (size_t i = 0; i < nobj; i++)
        t->all_bytes += t->size[i];
    for (size_t k = 0; k < n; k++) {
        if (!seen[t->req[k]])
            t->distinct++;
        seen[t->req[k]] = true;
    }
    free(seen);
    free(cdf);
}

static void trace_free(struct trace *t)
{
    free(t->req);
    free(t->size);
}

struct ratio {
    double ohr; /* hits / requests */
    double bhr; /* bytes served from cache / bytes requested */
    uint64_t hits;
    uint64_t hit_bytes;
};

/* --- LRU of the same byte budget, for comparison */
struct lru_node {
    struct lru_node *prev, *next;
    bool in;
};

static struct ratio run_lru(const struct trace *t, uint64_t budget)
{
    struct lru_node *nodes = calloc(t->nobj, sizeof(*nodes));
    struct lru_node *head = NULL, *tail = NULL;
    uint64_t used = 0, hits = 0, hit_bytes = 0, all_bytes = 0;

    ck_assert_ptr_nonnull(nodes);
    for (size_t k = 0; k < t->nreq; k++) {
        uint32_t id = t->req[k];
        struct lru_node *n = &nodes[id];
        uint64_t sz = t->size[id];

        all_bytes += sz;
        if (n->in) {
            hits++;
            hit_bytes += sz;
            if (n != head) { /* move to front */
                n->prev->next = n->next;
                if (n->next != NULL)
                    n->next->prev = n->prev;
                else
                    tail = n->prev;
                n->prev = NULL;
                n->next = head;
                head->prev = n;
                head = n;
            }
            continue;
        }
        if (sz > budget)
            continue;
        while (used + sz > budget) {
            struct lru_node *v = tail;
            tail = v->prev;
            if (tail != NULL)
                tail->next = NULL;
            else
                head = NULL;
            v->in = false;
            used -= t->size[v - nodes];
        }
        n->in = true;
        n->prev = NULL;
        n->next = head;
        if (head != NULL)
            head->prev = n;
        else
            tail = n;
        head = n;
        used += sz;
        LOOP_CHECK(used <= budget);
    }
    free(nodes);
    return (struct ratio){(double)hits / (double)t->nreq,
                          (double)hit_bytes / (double)all_bytes, hits, hit_bytes};
}

static void sim_evict(struct s3fifo_node *n, void *arg)
{
    (void)n;
    (void)arg;
}

static struct ratio run_s3fifo(const struct trace *t, uint64_t budget)
{
    struct s3fifo_node *nodes = calloc(t->nobj, sizeof(*nodes));
    struct s3fifo_conf c = {.budget = budget, .on_evict = sim_evict};
    struct s3fifo *q = s3fifo_new(&c);
    uint64_t hits = 0, hit_bytes = 0, all_bytes = 0;

    ck_assert_ptr_nonnull(nodes);
    ck_assert_ptr_nonnull(q);
    for (size_t k = 0; k < t->nreq; k++) {
        uint32_t id = t->req[k];
        uint64_t sz = t->size[id];

        all_bytes += sz;
        if (nodes[id].queue != S3FIFO_Q_NONE) {
            hits++;
            hit_bytes += sz;
            s3fifo_hit(q, &nodes[id]);
            continue;
        }
        if (sz > budget)
            continue;
        LOOP_CHECK(s3fifo_insert(q, &nodes[id], khash(id), sz) == 0);
    }
    struct s3fifo_stats st;
    s3fifo_stats(q, &st);
    ck_assert_uint_le(st.bytes, budget);
    s3fifo_free(q);
    free(nodes);
    return (struct ratio){(double)hits / (double)t->nreq,
                          (double)hit_bytes / (double)all_bytes, hits, hit_bytes};
}

/* budgets in per mille of the Zipf catalog's bytes */
static const unsigned budgets_pm[] = {5, 10, 20, 50, 100, 200};

static bool table_wanted(void)
{
    const char *v = getenv("S3FIFO_TABLE");

    return v != NULL && *v != '\0' && strcmp(v, "0") != 0;
}

static void table_head(const struct trace *t, unsigned nscan)
{
    printf("Zipf(1.0) over %u objects (%.1f GiB), %u requests", T_OBJECTS,
           (double)t->catalog_bytes / (1ULL << 30), T_REQUESTS);
    if (nscan > 0)
        printf(" + a one-pass scan of %u one-hit objects", nscan);
    printf("; seed 0x%016llx\n\n", (unsigned long long)T_SEED);
    printf("| budget (of catalog) | budget | LRU object HR | S3-FIFO object HR "
           "| LRU byte HR | S3-FIFO byte HR |\n");
    printf("| ---: | ---: | ---: | ---: | ---: | ---: |\n");
}

START_TEST(trace_s3fifo_not_worse_than_lru)
{
    struct trace t;
    bool table = table_wanted();

    loop_fails = 0;
    trace_make(&t, T_SCAN);
    if (table)
        table_head(&t, T_SCAN);
    for (unsigned b = 0; b < sizeof(budgets_pm) / sizeof(budgets_pm[0]); b++) {
        uint64_t budget = t.catalog_bytes / 1000 * budgets_pm[b];
        struct ratio l = run_lru(&t, budget);
        struct ratio s = run_s3fifo(&t, budget);

        if (table)
            printf("| %.1f %% | %.1f GiB | %.4f | %.4f | %.4f | %.4f |\n",
                   budgets_pm[b] / 10.0, (double)budget / (1ULL << 30), l.ohr, s.ohr,
                   l.bhr, s.bhr);
        else
            printf("budget %4.1f %%: object hit ratio LRU %.4f S3-FIFO %.4f; "
                   "byte hit ratio LRU %.4f S3-FIFO %.4f\n",
                   budgets_pm[b] / 10.0, l.ohr, s.ohr, l.bhr, s.bhr);
        LOOP_DONE();
        ck_assert_msg(s.ohr >= l.ohr, "budget %u pm: object hit ratio S3-FIFO %.4f < LRU %.4f",
                      budgets_pm[b], s.ohr, l.ohr);
        ck_assert_msg(s.bhr >= l.bhr, "budget %u pm: byte hit ratio S3-FIFO %.4f < LRU %.4f",
                      budgets_pm[b], s.bhr, l.bhr);
    }
    /* both simulations, sanity-checked: with room for everything, only the
     * compulsory misses remain, for LRU and S3-FIFO alike */
    struct ratio l = run_lru(&t, t.all_bytes);
    struct ratio s = run_s3fifo(&t, t.all_bytes);
    LOOP_DONE();
    ck_assert_uint_eq(l.hits, t.nreq - t.distinct);
    ck_assert_uint_eq(s.hits, t.nreq - t.distinct);
    ck_assert_uint_eq(l.hit_bytes, s.hit_bytes);
    fflush(stdout);
    trace_free(&t);
}
END_TEST

/* The same workload without the scan, for the table only: how much of the
 * difference is the scan. */
START_TEST(trace_table_without_scan)
{
    struct trace t;

    if (!table_wanted())
        return;
    loop_fails = 0;
    trace_make(&t, 0);
    printf("\n");
    table_head(&t, 0);
    for (unsigned b = 0; b < sizeof(budgets_pm) / sizeof(budgets_pm[0]); b++) {
        uint64_t budget = t.catalog_bytes / 1000 * budgets_pm[b];
        struct ratio l = run_lru(&t, budget);
        struct ratio s = run_s3fifo(&t, budget);

        printf("| %.1f %% | %.1f GiB | %.4f | %.4f | %.4f | %.4f |\n",
               budgets_pm[b] / 10.0, (double)budget / (1ULL << 30), l.ohr, s.ohr,
               l.bhr, s.bhr);
    }
    LOOP_DONE();
    fflush(stdout);
    trace_free(&t);
}
END_TEST

static Suite *s3fifo_suite(void)
{
    Suite *s = suite_create("s3fifo");
    TCase *tc;

    tc = tcase_create("unit");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, conf_checked);
    tcase_add_test(tc, insert_goes_to_small_and_counts_bytes);
    tcase_add_test(tc, too_large_refused);
    tcase_add_test(tc, hit_caps_freq_at_3);
    tcase_add_test(tc, small_promotes_hit_entries_and_ghosts_the_rest);
    tcase_add_test(tc, ghost_hit_inserts_into_main);
    tcase_add_test(tc, main_reinserts_hit_entries_with_freq_minus_one);
    tcase_add_test(tc, one_hit_wonders_never_reach_main);
    tcase_add_test(tc, ghost_max_caps_the_ghost);
    tcase_add_test(tc, budget_never_exceeded_random_sizes);
    tcase_add_test(tc, remove_is_not_an_eviction);
    tcase_add_test(tc, pinned_entries_are_skipped);
    tcase_add_test(tc, all_pinned_refuses_and_keeps_budget);
    tcase_add_test(tc, pinned_in_main_are_skipped);
    tcase_add_test(tc, resize_grows_without_evicting_itself);
    tcase_add_test(tc, replace_takes_the_place);
    tcase_add_test(tc, clear_hands_everything_back);
    tcase_add_test(tc, ghost_ring_and_table_stay_consistent);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("trace");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, trace_s3fifo_not_worse_than_lru);
    tcase_add_test(tc, trace_table_without_scan);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(s3fifo_suite());

    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

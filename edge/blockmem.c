/*
 * blockmem.c: cache blocks as slots of a memfd. See blockmem.h.
 */
#include "config.h"

#include "blockmem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunk.h"
#include "err.h"
#include "log.h"
#include "vas.h"

/* One arena per process: chunks are made and released on the loop, and
 * the lock is there for the day they are not (uncontended meanwhile). */
static struct {
    int fd;
    uint8_t *base;
    size_t slot;
    uint32_t nslots;
    uint32_t *free;   /* stack of free slot indexes */
    uint32_t nfree;
    uint64_t fallbacks;
    bool punch_warned;
    pthread_mutex_t mu;
} arena = {.fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

int blockmem_init(size_t slot_size, uint64_t capacity, char *err, size_t errlen)
{
    uint64_t n = slot_size > 0 ? capacity / slot_size : 0;
    size_t size;

    AZ(arena.base);
    if (slot_size < 4096 || slot_size % 4096 != 0 || n == 0) {
        snprintf(err, errlen, "block memory: slots of %zu bytes cannot be mapped", slot_size);
        return EDGE_EINVAL;
    }
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    size = (size_t)n * slot_size;
    arena.free = malloc((size_t)n * sizeof(*arena.free));
    if (arena.free == NULL) {
        snprintf(err, errlen, "block memory: out of memory");
        return EDGE_ENOMEM;
    }
    arena.fd = memfd_create("s3edge-blocks", MFD_CLOEXEC);
    if (arena.fd < 0 || ftruncate(arena.fd, (off_t)size) < 0) {
        snprintf(err, errlen, "block memory: memfd of %zu bytes: %s", size, strerror(errno));
        goto fail;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, arena.fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "block memory: mapping %zu bytes: %s", size, strerror(errno));
        goto fail;
    }
    arena.base = p;
    arena.slot = slot_size;
    arena.nslots = (uint32_t)n;
    /* lowest slots first: the file's pages are touched from its start */
    for (uint32_t i = 0; i < arena.nslots; i++)
        arena.free[i] = arena.nslots - 1 - i;
    arena.nfree = arena.nslots;
    arena.fallbacks = 0;
    return 0;
fail:
    if (arena.fd >= 0)
        close(arena.fd);
    arena.fd = -1;
    free(arena.free);
    arena.free = NULL;
    return EDGE_EIO;
}

void blockmem_fini(void)
{
    if (arena.base == NULL)
        return;
    AZ(pthread_mutex_lock(&arena.mu));
    if (arena.nfree != arena.nslots) {
        /* a chunk still holds a slot: the mapping stays to the exit */
        LOG_D("block memory: %u slots still held at the end", arena.nslots - arena.nfree);
        AZ(pthread_mutex_unlock(&arena.mu));
        return;
    }
    munmap(arena.base, (size_t)arena.nslots * arena.slot);
    close(arena.fd);
    free(arena.free);
    arena.base = NULL;
    arena.free = NULL;
    arena.fd = -1;
    arena.nslots = arena.nfree = 0;
    AZ(pthread_mutex_unlock(&arena.mu));
}

/* the last reference to a slot's chunk went: its pages go, then the slot */
static void slot_release(struct chunk *c, void *arg)
{
    uint64_t off = c->foff;

    (void)arg;
    assert_always(off % arena.slot == 0 && off / arena.slot < arena.nslots);
    /* pages still in a socket's queue stay the kernel's; the slot's next
     * bytes land on new pages */
    if (fallocate(arena.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
                  (off_t)arena.slot) < 0 &&
        madvise(arena.base + off, arena.slot, MADV_REMOVE) < 0) {
        /* neither works: the slot cannot be reused safely; it is lost */
        if (!arena.punch_warned)
            LOG_E("block memory: cannot free pages: %s", strerror(errno));
        arena.punch_warned = true;
        return;
    }
    AZ(pthread_mutex_lock(&arena.mu));
    assert_always(arena.nfree < arena.nslots);
    arena.free[arena.nfree++] = (uint32_t)(off / arena.slot);
    AZ(pthread_mutex_unlock(&arena.mu));
}

struct chunk *blockmem_chunk(size_t cap)
{
    uint32_t i = UINT32_MAX;
    struct chunk *c;

    if (arena.base == NULL || cap > arena.slot || cap <= arena.slot / 2)
        return chunk_new(cap);
    AZ(pthread_mutex_lock(&arena.mu));
    if (arena.nfree > 0)
        i = arena.free[--arena.nfree];
    else
        arena.fallbacks++;
    AZ(pthread_mutex_unlock(&arena.mu));
    if (i == UINT32_MAX)
        return chunk_new(cap);
    uint64_t off = (uint64_t)i * arena.slot;
    c = chunk_new_ext(arena.base + off, cap, arena.fd, off, slot_release, NULL);
    if (c == NULL) {
        AZ(pthread_mutex_lock(&arena.mu));
        arena.free[arena.nfree++] = i;
        AZ(pthread_mutex_unlock(&arena.mu));
    }
    return c;
}

void blockmem_get_stats(struct blockmem_stats *st)
{
    AZ(pthread_mutex_lock(&arena.mu));
    st->slots = arena.nslots;
    st->used = arena.nslots - arena.nfree;
    st->fallbacks = arena.fallbacks;
    AZ(pthread_mutex_unlock(&arena.mu));
}

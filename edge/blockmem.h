/*
 * blockmem.h: the memory cache blocks live in, so that they can be sent
 * with sendfile.
 *
 * Why: a large hit over cleartext HTTP/1.1 spent over half of the
 * process's time copying block bytes into the socket (writev), where a
 * cache that keeps its objects in files (nginx) hands page references to
 * the kernel instead. Blocks of the configured block size are therefore
 * slots of one memfd, mapped into the process: fills and disk reads write
 * them through the mapping, and h1.c passes their bytes to the socket as
 * file segments (sendfile from the memfd: no copy in the process).
 *
 * A slot is reused only after its pages were punched out of the memfd
 * (fallocate PUNCH_HOLE): pages the kernel still holds for a send stay
 * its own until sent, and the slot's next bytes land on fresh pages, so
 * a reused slot never changes bytes in flight.
 *
 * Only blocks that stay are worth a slot: a fresh slot costs a page fault
 * and the zeroing of every page, paid back over many sends. cache.c asks
 * for slots for stored objects only; pass-through blocks and disk reads
 * (sent once, then dropped) come from malloc (chunk_new), as do chunks
 * that are not a slot (smaller, or the arena is full), and are written
 * with writev. The arena is
 * sized from the memory budget plus room for blocks in transit; without
 * it (cache.sendfile off, or no memfd) every chunk comes from malloc.
 */
#ifndef S3EDGE_BLOCKMEM_H
#define S3EDGE_BLOCKMEM_H

#include <stddef.h>
#include <stdint.h>

struct chunk;

/* Set up the arena for slots of slot_size bytes, about capacity bytes in
 * all (rounded down to whole slots). 0, or an EDGE_E* error with a
 * message in err (the caller may go on without it). */
int blockmem_init(size_t slot_size, uint64_t capacity, char *err, size_t errlen);
/* Unmap and close the arena. Chunks still referenced keep their slots'
 * pages mapped: call after the last chunk is gone. */
void blockmem_fini(void);

/* A chunk of cap bytes: a slot when cap is a slot's size or a little
 * less (the last block of an object), else (or when no slot is free)
 * chunk_new(cap). NULL when out of memory. */
struct chunk *blockmem_chunk(size_t cap);

struct blockmem_stats {
    uint64_t slots;      /* slots in the arena (0: no arena) */
    uint64_t used;       /* slots held by chunks */
    uint64_t fallbacks;  /* chunks of slot size that came from malloc (arena full) */
};
void blockmem_get_stats(struct blockmem_stats *st);

#endif

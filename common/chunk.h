/*
 * chunk.h: refcounted, append-only byte chunks.
 *
 * Lifecycle: chunk_new() returns a chunk with one reference and len 0.
 * Its single writer appends at data[len..cap) and then publishes the new
 * length with chunk_publish(); bytes below the published length never
 * change again, so any number of readers (and evbuffer references handed
 * to the kernel path) may read them without locks while the writer goes
 * on appending. Each holder owns one reference; the last chunk_unref()
 * frees it. Refcounts and the published length are atomic so that loops
 * on other threads may share chunks later.
 */
#ifndef S3EDGE_CHUNK_H
#define S3EDGE_CHUNK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct chunk;

/* Where an external chunk's bytes go back to when its last reference goes
 * (chunk_new_ext); the chunk itself is freed after it returns. */
typedef void chunk_release_f(struct chunk *c, void *arg);

struct chunk {
    unsigned magic;
#define CHUNK_MAGIC 0x63686e6bU
    atomic_uint refcnt;
    atomic_size_t len; /* published bytes; only grows */
    size_t cap;
    struct chunk *next; /* owned by the chunk list holder, not by the chunk */
    uint8_t *data;      /* cap bytes: inline, or someone else's (external) */
    /* an external chunk's bytes may also be a file's: data[i] is byte
     * foff + i of fd (-1: not a file), so that they can be sent with
     * sendfile */
    int fd;
    uint64_t foff;
    chunk_release_f *release;
    void *release_arg;
    uint8_t inline_data[];
};

/* allocator hook, for fail-Nth-malloc tests */
typedef void *chunk_alloc_f(size_t size);
typedef void chunk_free_f(void *p);
void chunk_set_allocator(chunk_alloc_f *a, chunk_free_f *f);

/* A chunk able to hold cap bytes, refcount 1; NULL on allocation failure. */
struct chunk *chunk_new(size_t cap);
/* A chunk over cap bytes at data that the caller owns until release(c,
 * arg) is called at the last chunk_unref(); fd/foff as in struct chunk. */
struct chunk *chunk_new_ext(uint8_t *data, size_t cap, int fd, uint64_t foff,
                            chunk_release_f *release, void *arg);
struct chunk *chunk_ref(struct chunk *c);
void chunk_unref(struct chunk *c);

/* Writer side: room left, and publishing n more bytes written at
 * data[len..len+n). */
size_t chunk_room(const struct chunk *c);
void chunk_publish(struct chunk *c, size_t n);
/* Copy in what fits; returns the bytes taken. */
size_t chunk_append(struct chunk *c, const void *p, size_t n);

static inline size_t chunk_len(const struct chunk *c)
{
    return atomic_load_explicit(&((struct chunk *)c)->len, memory_order_acquire);
}

/* libevent evbuffer_add_reference() cleanup callback: drops one ref. */
void chunk_unref_cb(const void *data, size_t len, void *arg);

#endif

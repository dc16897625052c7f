#include "chunk.h"

#include <stdlib.h>
#include <string.h>

#include "vas.h"

static chunk_alloc_f *alloc_fn = malloc;
static chunk_free_f *free_fn = free;

void chunk_set_allocator(chunk_alloc_f *a, chunk_free_f *f)
{
    alloc_fn = a ? a : malloc;
    free_fn = f ? f : free;
}

static struct chunk *chunk_init(struct chunk *c, uint8_t *data, size_t cap, int fd,
                                uint64_t foff, chunk_release_f *release, void *arg)
{
    c->magic = CHUNK_MAGIC;
    atomic_init(&c->refcnt, 1);
    atomic_init(&c->len, 0);
    c->cap = cap;
    c->next = NULL;
    c->data = data != NULL ? data : c->inline_data;
    c->fd = fd;
    c->foff = foff;
    c->release = release;
    c->release_arg = arg;
    return c;
}

struct chunk *chunk_new(size_t cap)
{
    struct chunk *c;

    if (cap > SIZE_MAX - sizeof(*c))
        return NULL;
    c = alloc_fn(sizeof(*c) + cap);
    if (c == NULL)
        return NULL;
    return chunk_init(c, NULL, cap, -1, 0, NULL, NULL);
}

struct chunk *chunk_new_ext(uint8_t *data, size_t cap, int fd, uint64_t foff,
                            chunk_release_f *release, void *arg)
{
    struct chunk *c = alloc_fn(sizeof(*c));

    if (c == NULL)
        return NULL;
    return chunk_init(c, data, cap, fd, foff, release, arg);
}

struct chunk *chunk_ref(struct chunk *c)
{
    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    unsigned old = atomic_fetch_add_explicit(&c->refcnt, 1, memory_order_relaxed);
    AN(old);
    return c;
}

void chunk_unref(struct chunk *c)
{
    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    unsigned old = atomic_fetch_sub_explicit(&c->refcnt, 1, memory_order_acq_rel);
    AN(old);
    if (old == 1) {
        if (c->release != NULL)
            c->release(c, c->release_arg);
        c->magic = 0;
        free_fn(c);
    }
}

size_t chunk_room(const struct chunk *c)
{
    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    return c->cap - chunk_len(c);
}

void chunk_publish(struct chunk *c, size_t n)
{
    size_t len;

    CHECK_OBJ_NOTNULL(c, CHUNK_MAGIC);
    len = atomic_load_explicit(&c->len, memory_order_relaxed);
    assert_always(n <= c->cap - len);
    atomic_store_explicit(&c->len, len + n, memory_order_release);
}

size_t chunk_append(struct chunk *c, const void *p, size_t n)
{
    size_t room = chunk_room(c);

    if (n > room)
        n = room;
    memcpy(c->data + chunk_len(c), p, n);
    chunk_publish(c, n);
    return n;
}

void chunk_unref_cb(const void *data, size_t len, void *arg)
{
    struct chunk *c;

    (void)data;
    (void)len;
    CAST_OBJ_NOTNULL(c, arg, CHUNK_MAGIC);
    chunk_unref(c);
}

/*
 * fill.h: fetch an object, or blocks of it, from its origin into a struct
 * obj.
 *
 * The first fetch of an object (fill_start) learns its headers: a GET
 * with a block-aligned Range for the block the client needs first, so that
 * S3's Content-Range gives the object's size without fetching more than a
 * block. It maps the origin's answer to what clients get (S3 errors become
 * short errors of ours), decides cacheability (RFC 9111 5.2.2: no-store,
 * private, no-cache; the size limit), sets the freshness lifetime, admits
 * the object to the memory store or takes it out of the index, and
 * becomes the object's block source: every later block is fetched by a
 * block fill of its own (`Range` of that block, `If-Match` of the ETag the
 * first fetch saw), started when a reader reaches it or reads ahead of it.
 * A 412 there means the object was replaced in the origin: the object
 * fails (readers cut, nothing of it kept) and the next request starts
 * over on the new version. An origin that ignores Range answers 200 and
 * the first fetch streams the whole body in order instead.
 *
 * A fill holds a reference on its object. Block fills finish when their
 * readers leave (a block is cheap and others may want it); a whole-body
 * stream with no reader left stops unless little is left
 * (conf cache.orphan_fill_max); fills of transient objects stop at once.
 * When the last block lands the object is complete and, if stored, is
 * handed to the disk cache to write.
 */
#ifndef S3EDGE_FILL_H
#define S3EDGE_FILL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

struct server;
struct obj;

struct fill_req {
    const struct conf_distribution *dist;
    const char *cache_key;  /* index key */
    size_t cache_key_len;
    const char *s3_key;     /* raw S3 key */
    const char *path;       /* the client's path, for a plain origin */
    const char *query;      /* wire query to forward, or NULL */
    uint64_t first;         /* the first body byte the client wants */
    bool head;              /* HEAD instead of GET */
    /* wait in the index while the headers are fetched, so that others
     * asking meanwhile join this fill (request coalescing) */
    bool index;
    /* a stored object to revalidate with a conditional GET: a 304 refreshes
     * its freshness and the new object answers 304 with not_modified set */
    struct obj *reval;
};

/* Let o (loaded from the disk cache) fetch blocks its file lost from the
 * origin, pinned to its version by its ETag (or Last-Modified). path: a
 * plain origin's request path (NULL for S3). */
void fill_source_for(struct server *s, struct obj *o, const struct conf_distribution *dist,
                     const char *s3_key, const char *query, const char *path);

/* Start fetching a new object; returns it with a reference for the caller,
 * or NULL when out of memory. A HEAD is never stored. */
struct obj *fill_start(struct server *s, const struct fill_req *req);

#endif

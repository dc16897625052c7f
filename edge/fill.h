/*
 * fill.h: fetch an object from its origin into a struct obj.
 *
 * A fill owns one origin fetch and one reference on its object. It maps the
 * origin's answer to what clients get (S3 errors become short errors of
 * ours), decides cacheability (RFC 9111 5.2.2: no-store, private, no-cache;
 * the size limit), sets the freshness lifetime, streams the body into the
 * object's chunks and, when the body is complete and cacheable, inserts the
 * object into the memory cache and hands it to the disk cache to write. A
 * fill keeps going when its readers leave
 * (other clients may want the object, later issues attach them) unless
 * the object is transient, where the last reader leaving stops the fetch.
 */
#ifndef S3EDGE_FILL_H
#define S3EDGE_FILL_H

#include <stdbool.h>

#include "conf.h"

struct server;
struct obj;

struct fill_req {
    const struct conf_distribution *dist;
    const char *cache_key;  /* index key */
    size_t cache_key_len;
    const char *s3_key;     /* raw S3 key */
    const char *query;      /* wire query to forward, or NULL */
    const char *range;      /* Range to forward (pass-through), or NULL */
    bool head;              /* HEAD instead of GET */
    /* a stored object to revalidate with a conditional GET: a 304 refreshes
     * its freshness and the new object answers 304 with not_modified set */
    struct obj *reval;
};

/* Start filling a new object; returns it with a reference for the caller,
 * or NULL when out of memory. The object is transient (never cached) for
 * HEAD and range fills. */
struct obj *fill_start(struct server *s, const struct fill_req *req);

#endif

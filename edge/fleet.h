/*
 * fleet.h: fleet-wide invalidation of one node: its rule set (purge.h),
 * the invalidations it knows of, and their propagation through a Redis
 * Stream with per-node acknowledgement (DESIGN.md, decision 6).
 *
 * An invalidation accepted here (admin API) is applied at once, written
 * to STATE_DIR/pending until Redis has it, then appended to the stream.
 * Every node reads the stream from the last id it applied (kept in
 * STATE_DIR/stream.id), applies each entry with its own clock, and
 * publishes the id in its node hash, which expires when the node stops
 * sending heartbeats. Completed = every node whose hash is alive has
 * applied the id. Without Redis the node is a fleet of one.
 *
 * Lifecycle: fleet_start() from server_new (after the listeners);
 * fleet_stop() from server_free, before the cache goes.
 */
#ifndef S3EDGE_FLEET_H
#define S3EDGE_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freshness.h"

struct server;
struct obj;
struct conf_distribution;
struct fleet;

#define FLEET_MAX_ITEMS 3000     /* paths + tags of one invalidation */
#define FLEET_RECENT 1000        /* invalidations remembered for status */

int fleet_start(struct server *s, char *err, size_t errlen);
void fleet_stop(struct server *s);

/*
 * exchange_start's hook, right after cache_lookup: hit (may be NULL) is
 * checked against the rules. Hard-purged: the reference is dropped and
 * NULL returned (a miss). Soft-purged: *st becomes FRESH_STALE_SWR within
 * the object's stale-while-revalidate window counted from the purge, else
 * FRESH_STALE (revalidate; stale-if-error still applies).
 */
struct obj *fleet_filter(struct server *s, const struct conf_distribution *d, const char *key,
                         struct obj *hit, enum fresh_state *st);

/*
 * This node alone forgets the object at key (the cache key's S3 key of
 * distribution d) as a hard purge of its exact path would (a rule, and
 * the object out of the memory index): the write through of an unsafe
 * method (RFC 9111 4.4). Nothing goes to Redis; the
 * rule is journalled as any other. 0, EDGE_ETOOLONG, EDGE_ENOMEM or
 * EDGE_EIO (not journalled, applied all the same).
 */
int fleet_invalidate_local(struct server *s, const struct conf_distribution *d, const char *key);

/* An invalidation as the admin API accepts it (already validated). */
struct fleet_inv_req {
    const char *const *paths;
    size_t npaths;
    const char *const *tags;
    size_t ntags;
    bool soft;
};

/* Apply and propagate; the new id (NUL-terminated) is written to id[32].
 * 0 or EDGE_ENOMEM. */
int fleet_invalidate(struct fleet *f, const struct fleet_inv_req *r, char id[32]);

/* JSON documents for the admin API (malloc'd strings; NULL: out of
 * memory). fleet_inv_json returns NULL with *found false for an unknown id. */
char *fleet_inv_json(struct fleet *f, const char *id, bool *found);
char *fleet_list_json(struct fleet *f);
/*
 * The status of an invalidation this node does not know (not applied
 * yet, or older than its recent list), from the index in Redis: cb gets
 * the document (malloc'd, the callee's to free) and 200, or NULL and 404
 * (unknown there too) or 503 (Redis went away). 0: cb will be called
 * exactly once, later; EDGE_ENOENT: not an id, or no Redis configured
 * (this node alone knows all there is); EDGE_EIO: Redis is not connected;
 * EDGE_ENOMEM.
 */
typedef void fleet_lookup_cb(void *arg, char *doc, int status);
int fleet_inv_lookup(struct fleet *f, const char *id, fleet_lookup_cb *cb, void *arg);
char *fleet_nodes_json(struct fleet *f);
bool fleet_ready(const struct fleet *f);
size_t fleet_rule_count(const struct fleet *f);
/* Objects exact hard purges took out of the memory index. */
uint64_t fleet_removed_count(const struct fleet *f);

#endif

/*
 * purge.h: the invalidation rule set of one node (DESIGN.md, decision 6).
 *
 * A rule names objects by exact URL path, by path prefix (CloudFront's
 * trailing '*') or by surrogate tag, and carries the time this node
 * applied it (its own clock, purge_clock_ms()). An object is valid only if
 * its origin fetch started after every matching rule was applied here; so
 * accepting any rule is O(1) in the cache size, a fill already in flight
 * when the rule arrives is not kept, and clock skew between nodes never
 * brings purged content back.
 *
 * Rules of the same kind and pattern collapse into one entry holding the
 * latest hard and the latest soft stamp, so the set is bounded by the
 * number of distinct patterns; an entry expires once no object fetched
 * before its stamps can still be stored (purge_new's lifetime).
 *
 * Lookup cost: one hash probe per exact path, one per surrogate tag of the
 * object, and one per distinct prefix length no longer than the path: it
 * never depends on the cache size.
 *
 * Lifecycle: purge_new() (loads and compacts the journal in state_dir when
 * given) -> purge_add()* / purge_match()* / purge_expire()* ->
 * purge_free(). Every rule added is appended to the journal before
 * purge_add() returns, so the set survives a restart.
 */
#ifndef S3EDGE_PURGE_H
#define S3EDGE_PURGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PURGE_PATTERN_MAX 2048  /* bytes of a path, prefix or tag */
#define PURGE_MAX_ENTRIES 1000000 /* beyond: one global rule replaces them */

struct purge;

enum purge_kind { PURGE_EXACT = 0, PURGE_PREFIX, PURGE_TAG };
enum purge_verdict { PURGE_VALID = 0, PURGE_SOFT, PURGE_HARD };

/*
 * This node's purge clock in ms since the epoch: the wall clock at the
 * first call, then advanced by the monotonic clock, so a step of the wall
 * clock cannot reorder a rule and a fetch. purge_clock_floor() raises it
 * above stamps loaded from a journal written before a restart.
 */
int64_t purge_clock_ms(void);
void purge_clock_floor(int64_t ms);

/* state_dir NULL: memory only. lifetime_ms: how long a rule is kept.
 * NULL with a message in err on failure (unreadable or unwritable journal). */
struct purge *purge_new(const char *state_dir, int64_t lifetime_ms, char *err, size_t errlen);
void purge_free(struct purge *p);

/* Apply a rule stamped `stamp_ms` (purge_clock_ms() normally). A prefix
 * pattern is given without its '*'. 0, EDGE_ETOOLONG (pattern too long),
 * EDGE_ENOMEM or EDGE_EIO (the journal could not be written: the rule is
 * applied in memory all the same). */
int purge_add(struct purge *p, enum purge_kind kind, const char *pattern, size_t len, bool soft,
              int64_t stamp_ms);

/*
 * Whether an object fetched from the origin starting at fetch_ms is still
 * valid. path: its URL path (decoded, no query); tags: the values of its
 * surrogate-key headers (space-separated, may be NULL). *soft_ms gets the
 * latest matching soft stamp for PURGE_SOFT.
 */
enum purge_verdict purge_match(const struct purge *p, const char *path, size_t path_len,
                               const char *const *tags, size_t ntags, int64_t fetch_ms,
                               int64_t *soft_ms);

/* Drop entries whose stamps are older than now_ms - lifetime; compact the
 * journal when it holds many more lines than entries. */
void purge_expire(struct purge *p, int64_t now_ms);
size_t purge_count(const struct purge *p);

#endif

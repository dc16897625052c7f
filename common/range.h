/*
 * range.h: the Range request header (RFC 9110 14.1-14.3) resolved against a
 * representation length, and the block arithmetic of ranged fills.
 * Pure functions, no allocation.
 *
 * What a cache does with a Range header depends on three outcomes:
 *   RANGE_IGNORE     absent, another unit, bad syntax, too many ranges, or
 *                    a zero-length representation asked for by suffix:
 *                    answer 200 with the whole body (RFC 9110 14.2: a
 *                    server may ignore Range; "too many" follows nginx's
 *                    max_ranges, the range-amplification defence)
 *   RANGE_UNSATISFIABLE  valid, but no range starts inside the body: 416
 *                    with Content-Range: bytes * /LENGTH
 *   RANGE_OK         one or more satisfiable ranges, resolved to inclusive
 *                    [first, last] byte positions, clipped to the body.
 *                    Ranges that overlap or lie closer than RANGE_GAP_MIN
 *                    bytes apart are merged (14.3 allows it, whatever their
 *                    order): the answer is then never larger than the body
 *                    plus the part headers, however the ranges were chosen.
 */
#ifndef S3EDGE_RANGE_H
#define S3EDGE_RANGE_H

#include <stddef.h>
#include <stdint.h>

enum range_result { RANGE_IGNORE = 0, RANGE_UNSATISFIABLE, RANGE_OK };

struct range_span {
    uint64_t first, last; /* inclusive */
};

/* Gaps below this are cheaper to send than another part's headers. */
#define RANGE_GAP_MIN 80u

/*
 * Parse value[len] (the field value, OWS already trimmed or not) against a
 * body of `length` bytes. At most max_ranges range-specs are accepted (more:
 * RANGE_IGNORE); out[] has room for max_ranges spans and *n gets the
 * number of spans after merging, sorted when any were merged.
 */
enum range_result range_parse(const char *value, size_t len, uint64_t length,
                              unsigned max_ranges, struct range_span *out, unsigned *n);

/*
 * Where a request for value[len] starts, before the length is known: the
 * first-pos of the first range-spec, or 0 (a suffix range, bad syntax).
 * Used to fetch the right block first on a cold object.
 */
uint64_t range_first_hint(const char *value, size_t len);

#endif

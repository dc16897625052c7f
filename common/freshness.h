/*
 * freshness.h: HTTP caching rules of a shared cache in front of S3
 * (RFC 9111), with per-distribution TTL clamps in the manner of CloudFront
 * cache policies, and the evaluation of client preconditions (RFC 9110 13).
 *
 * Pure functions over plain structs: no allocation, no clock reads, no
 * state. Every time is int64_t seconds; wall-clock times (Date, Expires,
 * Last-Modified, request/response time) are seconds since the epoch, and
 * the time an object has spent in the cache ("resident") may come from any
 * clock, e.g. a monotonic one.
 *
 * Use, for one origin response:
 *
 *   struct fresh_resp r;
 *   fresh_resp_parse(&r, status, headers, nheaders);
 *   struct fresh_decision d;
 *   if (fresh_decide(&r, &policy, t_request, t_response, has_authz, &d) == 0
 *       && d.storable)
 *       store it with d (or with d.ttl, d.swr, d.sie as deadlines);
 *
 * and for each later request, with resident = now - t_response:
 *
 *   switch (fresh_state(&d, resident)) {
 *   case FRESH_FRESH:   serve, with "Age: fresh_age(&d, resident)";
 *   case FRESH_STALE_SWR: serve stale now, revalidate in the background;
 *   case FRESH_STALE:   revalidate first; if the origin fails (5xx,
 *                       timeout), serve stale only if
 *                       fresh_stale_if_error(&d, resident);
 *   }
 *
 * On a 304 to a revalidation: fresh_resp_update(&stored, &r304) and
 * fresh_decide() again with the revalidation's own request/response times.
 */
#ifndef S3EDGE_FRESHNESS_H
#define S3EDGE_FRESHNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"

/* RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31. */
#define FRESH_DELTA_MAX 2147483648LL

/*
 * Cache-Control response directives (RFC 9111 5.2.2, RFC 5861).
 *
 * Valued directives hold -1 when absent. A valued directive whose value is
 * missing or not delta-seconds holds 0: RFC 9111 4.2.1 encourages treating
 * invalid freshness information as stale. A directive present more than
 * once with different values keeps the smallest (the most restrictive, RFC
 * 9111 4.2.1: "If directives conflict ... the most restrictive directive
 * should be honored"; the same section allows "considered stale" for
 * repeated directives, which would turn the common, harmless repetition of
 * one value by two layers into a miss). Boolean directives are set when
 * present anywhere, with or without an argument: no-cache="f" and
 * private="f" are treated as their unqualified forms (RFC 9111 5.2.2.4 and
 * 5.2.2.7 allow this; the field-name forms are rarely implemented).
 * Unknown directives are ignored (RFC 9111 5.2.3).
 */
struct fresh_cc {
    int64_t max_age;
    int64_t s_maxage;
    int64_t stale_while_revalidate;
    int64_t stale_if_error;
    bool no_store;
    bool no_cache;
    bool is_private;
    bool must_revalidate;
    bool proxy_revalidate;
    bool is_public;
    bool immutable;
    bool must_understand;
};

void fresh_cc_init(struct fresh_cc *cc);
/* Parse one Cache-Control field value into cc, merging with what cc holds
 * already (several field lines form one list, RFC 9110 5.3). Never fails:
 * malformed list members are skipped, see above. */
void fresh_cc_parse(struct fresh_cc *cc, const char *v, size_t len);

/*
 * What freshness needs from a response head. Fields of the same name seen
 * more than once: Cache-Control lines are merged; for Expires, Age and
 * Last-Modified the value giving the shortest freshness wins (earliest
 * Expires, largest Age, latest Last-Modified), for Date the first one.
 */
struct fresh_resp {
    int status;
    bool has_cc;
    struct fresh_cc cc;
    bool has_date;
    int64_t date;
    bool has_expires;
    bool expires_invalid; /* present but not an HTTP-date: already expired */
    int64_t expires;
    bool has_age;
    int64_t age; /* capped at FRESH_DELTA_MAX; an invalid Age is ignored */
    bool has_last_modified;
    int64_t last_modified;
    bool has_etag; /* a syntactically valid entity-tag */
};

/* Fill *r from a response's status and header fields. Never fails. */
void fresh_resp_parse(struct fresh_resp *r, int status,
                      const struct http1_header *h, unsigned n);

/*
 * RFC 9111 4.3.4: fold the freshness fields of a 304 received for stored
 * into stored. A field present in the 304 replaces the stored one
 * (Cache-Control as a whole). Date and Age always come from the 304: they
 * describe that message, and a stored Date kept with a fresh response time
 * would make the refreshed response look old. stored->status is kept.
 */
void fresh_resp_update(struct fresh_resp *stored, const struct fresh_resp *r304);

/*
 * Per-distribution TTLs, as in a CloudFront cache policy (seconds).
 * Constraints: 0 <= min_ttl <= default_ttl <= max_ttl, heuristic_max >= 0.
 *
 * heuristic_max > 0 enables heuristic freshness (RFC 9111 4.2.2) for
 * responses without explicit freshness that carry Last-Modified: 10 % of
 * (Date - Last-Modified), at most heuristic_max. With heuristic_max == 0
 * such responses get default_ttl, as CloudFront does.
 */
struct fresh_policy {
    int64_t min_ttl;
    int64_t default_ttl;
    int64_t max_ttl;
    int64_t heuristic_max;
};

/* 0 or EDGE_EINVAL when a constraint above does not hold. */
int fresh_policy_check(const struct fresh_policy *p);

enum fresh_source {
    FRESH_SRC_NONE = 0,   /* not storable */
    FRESH_SRC_S_MAXAGE,   /* Cache-Control: s-maxage (RFC 9111 5.2.2.10) */
    FRESH_SRC_MAX_AGE,    /* Cache-Control: max-age (5.2.2.1) */
    FRESH_SRC_EXPIRES,    /* Expires - Date (5.3) */
    FRESH_SRC_HEURISTIC,  /* 10 % of Date - Last-Modified (4.2.2) */
    FRESH_SRC_DEFAULT_TTL,/* policy default_ttl: no freshness information */
    FRESH_SRC_MIN_TTL,    /* no-store / private / no-cache overridden by min_ttl > 0 */
};

struct fresh_decision {
    bool storable;
    enum fresh_source source;
    int64_t origin_lifetime; /* lifetime from the response (or heuristic)
                                before clamps; -1 when there is none */
    int64_t lifetime;        /* freshness_lifetime after the policy clamps */
    int64_t initial_age;     /* corrected_initial_age (RFC 9111 4.2.3) */
    int64_t ttl;             /* lifetime - initial_age: seconds the response
                                stays fresh after response_time (<= 0: stale
                                on arrival) */
    int64_t swr;             /* stale-while-revalidate window, 0: none */
    int64_t sie;             /* stale-if-error window, 0: none */
    bool revalidate;         /* no-cache: validate before every reuse */
    bool no_stale;           /* never serve stale (must-revalidate,
                                proxy-revalidate, no-cache) */
    bool min_ttl_override;   /* stored only because min_ttl > 0 */
};

/*
 * Decide whether and for how long a response may be stored and reused by
 * this shared cache. request_time/response_time: when the origin request
 * was sent and its response head received (RFC 9111 4.2.3).
 * req_authorization: the request forwarded to the origin carried viewer
 * credentials (Authorization, RFC 9111 3.5). Returns 0, or EDGE_EINVAL for a
 * policy that fails fresh_policy_check() (*d then says "not storable").
 *
 * Storable (RFC 9111 3, for a shared cache): the status is final and not
 * 304; no no-store (unless must-understand with a status this cache
 * understands, 5.2.2.3); no private; with Authorization only if public,
 * must-revalidate or s-maxage (3.5); and either explicit freshness
 * (s-maxage, max-age, Expires), public, or a status heuristically cacheable
 * by default (RFC 9110 15.1: 200 203 204 206 300 301 308 404 405 410 414
 * 501). The caller still decides about methods, ranges (206) and sizes, and
 * keeps its own short per-status TTL for negative caching of S3's 403/404
 * (they carry no Cache-Control, so here a 404 would get default_ttl and a
 * 403 would not be storable). A storable response with ttl <= 0 is only
 * useful if it can be revalidated (fresh_resp has_etag/has_last_modified)
 * or served under stale-if-error.
 *
 * immutable (RFC 8246) changes nothing here: it tells clients not to
 * revalidate while fresh, and this cache never revalidates a fresh
 * response anyway.
 *
 * Freshness lifetime: s-maxage, else max-age, else Expires - Date (an
 * invalid Expires is already expired, RFC 9111 5.3), else the heuristic,
 * else default_ttl.
 *
 * CloudFront's TTL rules, mapped. CloudFront's TTLs are times in its cache,
 * so the clamps apply to the time the response stays fresh here (ttl),
 * which equals the lifetime when the origin sends no Age:
 *   - origin freshness (s-maxage > max-age > Expires): min_ttl <= ttl <=
 *     max_ttl ("the lesser of max-age and max TTL" when min_ttl is 0);
 *   - no freshness information: ttl = max(default_ttl, min_ttl), max_ttl
 *     not applied (CloudFront uses max TTL only when the origin sends
 *     Cache-Control or Expires); the heuristic, when enabled, counts as
 *     origin freshness and is clamped like it;
 *   - no-cache, no-store, private with min_ttl == 0: the RFC rules: no-store
 *     and private are not stored, no-cache is stored but revalidated before
 *     every reuse;
 *   - no-cache, no-store, private with min_ttl > 0: stored for min_ttl
 *     (source FRESH_SRC_MIN_TTL; only when its status or freshness would
 *     make it storable without those directives), as CloudFront does ("CloudFront will cache content for at least the
 *     duration specified in the cache policy's minimum TTL, even if the
 *     Cache-Control: no-cache, no-store, or private directives are present").
 *     We follow it: min_ttl is the origin owner's own instruction to its own
 *     gateway cache, the out-of-band contract RFC 9111 4.2.4 and 5.2 leave
 *     room for; S3 answers the edge's signed requests, not a viewer's, so a
 *     "private" S3 object is not per-viewer content; and min_ttl defaults to
 *     0, where the RFC holds exactly. Two limits remain: a response to a
 *     request with viewer credentials is never stored on the strength of
 *     min_ttl (RFC 9111 3.5: the cache key does not include the
 *     credentials), and such a response gets no stale windows.
 *
 * Stale serving: stale-while-revalidate=N and stale-if-error=N (RFC 5861)
 * open windows of N seconds after the response becomes stale.
 * must-revalidate and proxy-revalidate close them (RFC 9111 5.2.2.2,
 * 5.2.2.8: most restrictive wins, 4.2.1), and so does no-cache. s-maxage
 * implies proxy-revalidate for a shared cache (5.2.2.10); we let explicit
 * stale-while-revalidate / stale-if-error in the same response still apply
 * (both are explicit permissions the origin states together, as in the
 * common "s-maxage=60, stale-while-revalidate=600"); this cache has no
 * other stale serving for the implied proxy-revalidate to forbid.
 */
int fresh_decide(const struct fresh_resp *r, const struct fresh_policy *p,
                 int64_t request_time, int64_t response_time,
                 bool req_authorization, struct fresh_decision *d);

/* RFC 9111 4.2.3 current_age, resident seconds after response_time. */
int64_t fresh_age(const struct fresh_decision *d, int64_t resident);

enum fresh_state {
    FRESH_FRESH = 0,  /* serve it */
    FRESH_STALE_SWR,  /* stale within stale-while-revalidate: serve it now and
                         revalidate in the background */
    FRESH_STALE,      /* validate with the origin before serving */
};

/* State of a stored response resident seconds after response_time.
 * Fresh while lifetime > current_age (RFC 9111 4.2); the stale windows
 * cover [lifetime, lifetime + N) seconds of age. */
enum fresh_state fresh_state(const struct fresh_decision *d, int64_t resident);

/* Whether a stale response may be served because the origin failed (5xx or
 * no answer), RFC 5861 4. Also true while the response is still fresh. */
bool fresh_stale_if_error(const struct fresh_decision *d, int64_t resident);

/*
 * Entity-tags (RFC 9110 8.8.3). fresh_etag_match() compares two
 * entity-tags as field values: strong comparison (both strong and equal
 * opaque-tags) or weak comparison (opaque-tags equal, W/ ignored). A value
 * that is not an entity-tag matches nothing.
 */
bool fresh_etag_valid(const char *v, size_t len);
bool fresh_etag_match(const char *a, size_t alen, const char *b, size_t blen,
                      bool strong);

/* The validators of a stored response, for fresh_cond_eval(). */
struct fresh_validators {
    const char *etag; /* ETag field value as stored, NULL: none */
    size_t etag_len;
    bool has_last_modified;
    int64_t last_modified;
};

enum fresh_cond {
    FRESH_COND_PROCEED = 0,                /* serve the response as usual */
    FRESH_COND_NOT_MODIFIED = 304,         /* answer 304 Not Modified */
    FRESH_COND_PRECONDITION_FAILED = 412,  /* answer 412 Precondition Failed */
};

/*
 * Evaluate a request's preconditions against a stored representation, in
 * the order of RFC 9110 13.2.2:
 *   1. If-Match (strong comparison, "*" matches): false -> 412;
 *   2. else If-Unmodified-Since (valid date, stored Last-Modified):
 *      modified after it -> 412;
 *   3. If-None-Match (weak comparison, "*" matches): a match -> 304 for
 *      GET/HEAD, 412 otherwise;
 *   4. else, for GET/HEAD only, If-Modified-Since (one valid date, stored
 *      Last-Modified): not modified after it -> 304;
 *   5. proceed (If-Range belongs to range handling).
 * Several field lines of one list field are one list. An entity-tag list
 * member that is not an entity-tag never matches; a date that is not one
 * valid HTTP-date is ignored (13.1.3, 13.1.4). CONNECT, OPTIONS and TRACE
 * proceed unconditionally. Call only when the response would otherwise be
 * 2xx (RFC 9110 13.2.1: preconditions are ignored for other responses).
 */
enum fresh_cond fresh_cond_eval(enum http1_method method,
                                const struct http1_header *h, unsigned n,
                                const struct fresh_validators *v);

#endif

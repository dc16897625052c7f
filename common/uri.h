/*
 * uri.h: request path -> S3 key, and S3 key -> wire path.
 *
 * The mapping rule (documented in README "Path to key"):
 *   1. The request target is origin-form ("/..."); the query is split off.
 *   2. The distribution's path prefix must match on a segment boundary and
 *      is removed.
 *   3. The rest is percent-decoded once into raw bytes. Refused (400):
 *      bad %-escapes, an encoded '/' (%2F), a '\\' raw or encoded (%5C),
 *      NUL (%00) or any control byte (< 0x20, 0x7F), a raw byte that is
 *      not visible ASCII or is '?' or '#', a "." or ".." segment in
 *      decoded or raw form (".%2E" too), invalid UTF-8 (overlong forms,
 *      surrogates, past U+10FFFF, truncated sequences). Repeated slashes
 *      are kept: "a//b" is a key of its own on S3.
 *   4. The leading '/' is dropped and the distribution's key prefix is
 *      prepended. The result can never name a key outside the key prefix.
 *   5. An empty result (the path is "/" or the bare prefix, with or
 *      without a trailing '/') is refused as not found (404): there is
 *      nothing to serve at the root of a distribution.
 * The key is then sent to S3 percent-encoded once (RFC 3986 unreserved
 * bytes and '/' kept), which is also what SigV4 signs.
 */
#ifndef S3EDGE_URI_H
#define S3EDGE_URI_H

#include <stddef.h>

#define URI_KEY_MAX 1024 /* S3's key length limit, in bytes */

/*
 * Map the path part of a request target (no query) to an S3 key.
 * path_prefix: URL prefix such as "/" or "/downloads" (a trailing '/' is
 * ignored), compared byte for byte with the path as sent. key_prefix:
 * prepended as is (give it a trailing '/' to name a folder), may be "".
 * Writes a NUL-terminated key into out[cap]. Returns the key length
 * (key_prefix included), or EDGE_EINVAL (refused path, or a path that does
 * not start with '/': 400), EDGE_ENOENT (prefix does not match, or an
 * empty key: 404), EDGE_ETOOLONG (key longer than URI_KEY_MAX, or than
 * cap - 1: 414 or 400). On error out holds garbage.
 */
int uri_path_to_key(const char *path, size_t path_len, const char *path_prefix,
                    const char *key_prefix, char *out, size_t cap);

/* Percent-encode a key for the wire, once: unreserved bytes
 * (A-Z a-z 0-9 - . _ ~) and '/' kept, everything else %XX uppercase.
 * Returns the length written (NUL-terminated), or EDGE_ETOOLONG when
 * out[cap] cannot hold it (out is then "" if cap > 0). */
int uri_encode_path(const char *in, size_t len, char *out, size_t cap);

/* Same with '/' encoded too (query values). */
int uri_encode_component(const char *in, size_t len, char *out, size_t cap);

#endif

/*
 * sigv4.h: AWS Signature Version 4 for S3 origin requests.
 *
 * Pure functions over caller-owned memory: no globals, no I/O, no heap. The
 * signer signs the path exactly as it will be sent (S3 rule: the canonical
 * URI is the wire path, percent-encoded once, never normalised or
 * re-encoded), unless sigv4_request.normalize_path asks for the
 * generic-service rules (only AWS's generic test vectors use that).
 */
#ifndef S3EDGE_SIGV4_H
#define S3EDGE_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL: none; otherwise sent and signed */
};

struct sigv4_header {
    const char *name; /* any case; signed lowercased */
    const char *value; /* trimmed and inner runs of spaces folded when signed */
};

struct sigv4_request {
    const char *method;   /* "GET", "HEAD" (any HTTP token is accepted) */
    const char *host;     /* Host header value as sent (with :port when not default) */
    /*
     * Wire path, starts with '/'. Without normalize_path (S3): existing
     * %XX escapes are kept (hex digits uppercased), unreserved bytes and
     * '/' are kept, any other byte is %XX-encoded, so that a path encoded
     * once (uri_encode_path) signs byte for byte as sent. A '%' that does
     * not start an escape is refused. With normalize_path: see below.
     */
    const char *path;
    const char *query;    /* wire query without '?', or NULL */
    /* Extra headers to sign (range, if-match, ...), duplicates allowed (their
     * values are joined with ',' in array order). host, x-amz-date,
     * x-amz-content-sha256 and x-amz-security-token are added by the signer
     * and refused here. */
    const struct sigv4_header *headers;
    size_t nheaders;
    /* "UNSIGNED-PAYLOAD", "STREAMING-...", or the lowercase hex SHA-256 of
     * the body; NULL = empty body */
    const char *payload_hash;
    /* false for generic (non-S3) services: no x-amz-content-sha256 header */
    bool add_content_sha256;
    /* generic-service path handling: remove dot segments, collapse slashes,
     * then encode every byte but unreserved and '/' (so an already encoded
     * path is encoded twice). Never for S3. */
    bool normalize_path;
    const char *region;   /* "us-east-1" */
    const char *service;  /* "s3" */
    time_t now;           /* signing time, UTC seconds */
};

/* Cache of the derived signing key: it depends only on the secret, the
 * date, the region and the service, so an origin derives it once a day.
 * A plain value owned by one origin; all-zero is the empty cache. The
 * fingerprint of the secret (its SHA-256) makes rotated temporary
 * credentials derive a fresh key within the same day. */
struct sigv4_key_cache {
    char date[9];         /* YYYYMMDD of the cached key, "" = empty */
    char region[64];
    char service[32];
    uint8_t secret_fp[32];
    uint8_t key[32];
};

#define SIGV4_AUTH_MAX 1024
#define SIGV4_CANON_MAX 8192
#define SIGV4_SECRET_MAX 256     /* bytes of secret access key */
#define SIGV4_MAX_HEADERS 32     /* extra headers per request */
#define SIGV4_MAX_QUERY_PARAMS 64

struct sigv4_result {
    char authorization[SIGV4_AUTH_MAX]; /* value of the Authorization header */
    char amz_date[17];                  /* x-amz-date: YYYYMMDDTHHMMSSZ */
    char content_sha256[65];            /* x-amz-content-sha256 value ("" when not added) */
    char signature[65];                 /* hex signature alone */
};

/*
 * Sign a request for header authentication. `cache` may be NULL.
 * Returns 0, or EDGE_EINVAL (missing or malformed fields, CR/LF in a header
 * value), EDGE_ETOOLONG (does not fit SIGV4_CANON_MAX, SIGV4_AUTH_MAX or
 * SIGV4_SECRET_MAX), EDGE_ETOOMANY (more than SIGV4_MAX_HEADERS headers or
 * SIGV4_MAX_QUERY_PARAMS parameters), EDGE_ERANGE (`now` not in years
 * 0000..9999), EDGE_ECRYPTO. On error `out` holds no partial result
 * (all strings empty).
 */
int sigv4_sign(const struct sigv4_creds *creds, const struct sigv4_request *req,
               struct sigv4_key_cache *cache, struct sigv4_result *out);

/* The intermediate strings, for tests and debug logs: NUL-terminated into
 * out[cap]. Return the length, or a negative EDGE_E* code as above
 * (EDGE_ETOOLONG also when cap is too small). */
int sigv4_canonical_request(const struct sigv4_creds *creds,
                            const struct sigv4_request *req, char *out,
                            size_t cap);
int sigv4_string_to_sign(const struct sigv4_creds *creds,
                         const struct sigv4_request *req, char *out, size_t cap);

/* HMAC chain: kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request")
 * Returns 0, EDGE_EINVAL, EDGE_ETOOLONG (secret over SIGV4_SECRET_MAX) or
 * EDGE_ECRYPTO. */
int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, uint8_t key[32]);

#endif

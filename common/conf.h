/*
 * conf.h: the configuration, parsed from YAML (libyaml) into validated
 * structs.
 *
 * Lifecycle: conf_new() gives defaults; conf_load_file() fills it from a
 * file; conf_add_* / conf_finish() let the command line build the same
 * structs without a file; conf_free() releases everything. A conf is
 * immutable once finished and may be shared read-only by every worker.
 *
 * Errors name the file, line, key and what was expected:
 *   "s3edge.yaml:12: origins[0].region: expected a string"
 * and are written into the caller's buffer. Values built from the command
 * line have no file or line; their messages start with the key.
 *
 * Files are bounded (CONF_MAX_FILE_BYTES); anchors, aliases and tags are
 * refused. conf/s3edge.yaml documents every key, its default and its unit.
 */
#ifndef S3EDGE_CONF_H
#define S3EDGE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_ERR_MAX 512
#define CONF_ADMIN_TOKENS_MAX 64   /* admin tokens, from the config and the token file */
#define CONF_ADMIN_TOKEN_MAX 512   /* bytes of one token */
#define CONF_SENTINELS_MAX 16      /* redis.sentinel.addrs */
#define CONF_NODE_ID_MAX 100       /* bytes of node.id */
#define CONF_MAX_FILE_BYTES (1024 * 1024)

enum conf_addressing {
    CONF_ADDR_PATH = 0,    /* http(s)://endpoint/BUCKET/KEY */
    CONF_ADDR_VIRTUAL,     /* http(s)://BUCKET.endpoint/KEY */
};

enum conf_cred_source {
    CONF_CRED_ENV = 0,     /* AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; none set: anonymous */
    CONF_CRED_STATIC,      /* keys in the config */
    CONF_CRED_ANONYMOUS,   /* unsigned requests (public buckets) */
};

enum conf_query_policy {
    CONF_QUERY_IGNORE = 0, /* query neither in the cache key nor sent to S3 */
    CONF_QUERY_ALL,        /* whole query in the key and sent to S3 */
    CONF_QUERY_ALLOW,      /* only the parameters named in query_keys, in
                            * the key and sent to S3 (CloudFront's allow list) */
};

/* What an origin is: an S3 endpoint (SigV4, bucket, key mapping) or a
 * plain HTTP(S) server (no signing; the request path and query go through
 * as the client sent them). */
enum conf_origin_type { CONF_ORIGIN_S3 = 0, CONF_ORIGIN_HTTP };

/* The methods a distribution answers, exactly CloudFront's three sets.
 * GET and HEAD are cached; OPTIONS and the rest are forwarded, never
 * cached, and PUT, POST, PATCH and DELETE invalidate what is stored for
 * their URL (RFC 9111 4.4). */
enum conf_methods {
    CONF_METHODS_GET_HEAD = 0,     /* default */
    CONF_METHODS_GET_HEAD_OPTIONS,
    CONF_METHODS_ALL,              /* GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE */
};
/* The Allow header value of a set ("GET, HEAD" ...). */
const char *conf_methods_allow(enum conf_methods m);

enum conf_log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* TLS versions a listener accepts (bit mask); older ones are never offered. */
#define CONF_TLS_V12 0x1u
#define CONF_TLS_V13 0x2u

/* ALPN protocol identifiers a TLS listener may select (RFC 7301). */
enum conf_alpn { CONF_ALPN_H2 = 1, CONF_ALPN_HTTP11 };
#define CONF_ALPN_MAX 2

/* Kernel TLS: off, on (asked of OpenSSL for every connection), auto (on
 * when the kernel has its tls module loaded at start, else off). */
enum conf_ktls { CONF_KTLS_OFF = 0, CONF_KTLS_AUTO, CONF_KTLS_ON };

/* A session ticket key as in the ticket_key_file: 16 bytes of name, 32 of
 * HMAC-SHA256 key, 32 of AES-256 key (the layout of nginx's 80-byte
 * ssl_session_ticket_key, so one file serves both). */
#define CONF_TICKET_KEY_LEN 80
#define CONF_TICKET_KEYS_MAX 16
#define CONF_OCSP_MAX_BYTES (64 * 1024)

struct conf_tls_cert {
    char *cert;                                    /* PEM: the certificate, then its chain */
    char *key;                                     /* PEM: its private key, unencrypted */
    char *ocsp;                                    /* DER OCSP response to staple, or NULL */
    unsigned line, cert_line, key_line, ocsp_line; /* 0: not from a file */
};

struct conf_tls {
    struct conf_tls_cert *certs; /* the first is the default */
    size_t ncerts;
    unsigned protocols;                 /* CONF_TLS_V12 | CONF_TLS_V13 (default both) */
    char *ciphers;                      /* TLS 1.2, OpenSSL syntax; default CONF_TLS_CIPHERS */
    char *ciphersuites;                 /* TLS 1.3; default CONF_TLS_CIPHERSUITES */
    bool session_tickets;               /* default true */
    char *ticket_key_file;              /* NULL: keys generated in memory */
    unsigned ticket_key_rotation_s;     /* new key (or re-read file) this often; also
                                         * the lifetime of a session; default 12h */
    unsigned session_cache;             /* entries of the session cache; 0: none; default 20000 */
    enum conf_alpn alpn[CONF_ALPN_MAX]; /* in order of preference */
    size_t nalpn;                       /* default h2, http/1.1 */
    unsigned handshake_timeout_ms;      /* default 10000 */
    enum conf_ktls ktls;                /* default off */
    /* source lines, for messages; 0 when not from a file */
    unsigned line, protocols_line, ciphers_line, ciphersuites_line, tickets_line,
        ticket_key_file_line;
};

/* Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange and AEAD
 * ciphers only. */
#define CONF_TLS_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define CONF_TLS_CIPHERSUITES                                                                      \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

struct conf_listen {
    char *address; /* "127.0.0.1:8080", "[::1]:8080", ":8080" */
    unsigned line; /* source line, for messages; 0 when not from a file */
    struct conf_tls *tls; /* NULL: cleartext (HTTP/1.1 and h2c) */
};

struct conf_origin {
    char *name;
    enum conf_origin_type type; /* default s3 */
    char *endpoint;        /* "http://127.0.0.1:9000", "https://s3.eu-west-1.amazonaws.com" (no path) */
    /* parsed from endpoint */
    bool tls;
    char *host;            /* host part, no port, no [] around IPv6 */
    uint16_t port;         /* default 80 (http) / 443 (https) */
    /* derived by conf_finish() */
    char *vhost;           /* name requests go to: "BUCKET.host" (virtual
                            * addressing with a bucket) or host; used to
                            * connect, for SNI and certificate checks */
    char *authority;       /* Host header as sent and signed: vhost ("[v6]"
                            * bracketed), ":port" only when not default */
    char *bucket;          /* may be NULL for a plain endpoint with virtual host already in it */
    char *region;          /* default "us-east-1" */
    enum conf_addressing addressing;
    enum conf_cred_source cred_source;
    char *access_key_id;   /* static credentials */
    char *secret_access_key;
    char *session_token;
    bool unsigned_payload; /* x-amz-content-sha256: UNSIGNED-PAYLOAD (default false: empty hash) */
    bool tls_verify;       /* default true */
    char *ca_file;         /* NULL: system store */
    unsigned connect_timeout_ms;    /* default 5000 */
    unsigned first_byte_timeout_ms; /* default 30000 */
    unsigned idle_timeout_ms;       /* read stall while receiving a body; default 30000 */
    unsigned keepalive_timeout_ms;  /* unused pooled connection lifetime; default 60000 */
    unsigned max_connections;       /* per origin, default 256 */
    unsigned max_idle_connections;  /* per origin, default 64 */
    unsigned line;                  /* source line, for messages; 0 when not from a file */
    /* the first S3-only key (bucket, region, ...), for the message that a
     * plain origin has no use for it; 0: none */
    unsigned s3_opt_line;
    const char *s3_opt_key;
};

struct conf_distribution {
    char *name;
    char **hosts;          /* exact names, "*.example.com" wildcards, or "*"
                            * (default); lowercased, without port */
    unsigned *host_lines;  /* source line of each host (0: not from a file) */
    size_t nhosts;
    char *origin_name;
    struct conf_origin *origin; /* resolved by conf_finish() */
    char *path_prefix;     /* URL prefix, default "/" */
    char *key_prefix;      /* prepended to keys in the bucket, default "" */
    enum conf_query_policy query;
    char **query_keys;     /* parameter names for CONF_QUERY_ALLOW (case-sensitive) */
    size_t nquery_keys;
    unsigned default_ttl_s; /* default 86400 when S3 sends no Cache-Control */
    /* TTL clamps in the manner of CloudFront cache policies (seconds):
     * min_ttl <= default_ttl <= max_ttl; see common/freshness.h */
    unsigned min_ttl_s;       /* default 0 */
    unsigned max_ttl_s;       /* default 365 days (or default_ttl when longer) */
    unsigned heuristic_max_s; /* 10 % of Date - Last-Modified, capped; 0 (default): off */
    unsigned negative_ttl_404_s; /* how long S3's 404 is cached, default 10 s; 0: not */
    unsigned negative_ttl_403_s; /* the same for 403, default 10 s */
    bool pass_amz_meta;    /* pass x-amz-meta-* to clients, default true */
    enum conf_methods methods; /* allowed_methods, default GET and HEAD */
    uint64_t max_request_body; /* bytes of a forwarded request body; default 100 MiB */
    unsigned line;         /* source lines, for messages; 0 when not from a file */
    unsigned origin_line;
};

struct conf {
    unsigned magic;
#define CONF_MAGIC 0x636f6e66U
    char *path;            /* file (or name) it was loaded from, or NULL */
    unsigned line;         /* line of the top-level mapping, for messages */
    struct conf_listen *listens;
    size_t nlistens;
    struct conf_origin *origins;
    size_t norigins;
    struct conf_distribution *dists;
    size_t ndists;

    /* log */
    enum conf_log_level log_level; /* default info */
    char *error_log;       /* NULL or "stderr": stderr; else a file path */
    char *access_log;      /* NULL or "stderr": stderr; "off"; else a path */

    /* cache */
    uint64_t memory_cache_bytes;   /* default 256 MiB */
    uint64_t max_object_bytes;     /* larger objects stream through uncached; default 64 MiB */
    /* larger objects are not kept in memory (with a disk cache they stream
     * to it); 0 in the file: min(max_object_bytes, memory_cache_bytes) */
    uint64_t memory_max_object_bytes;
    /* blocks in a memfd, cleartext HTTP/1.1 bodies sent from it with
     * sendfile (edge/blockmem.h); default true */
    bool sendfile;
    unsigned block_bytes;          /* block of storage, fills and coalescing; default 1 MiB */
    unsigned readahead_blocks;     /* fetched ahead of a sequential reader; default 8 */
    uint64_t orphan_fill_bytes;    /* a stream nobody reads finishes if this little is left; 8 MiB */
    unsigned reader_timeout_ms;    /* a reader waits this long for a block, then hands over; 30 s */
    char *disk_path;               /* disk cache directory; NULL (default): no disk cache */
    uint64_t disk_size_bytes;      /* its byte budget; default 10 GiB */
    unsigned disk_threads;         /* its I/O threads; default 2 */
    bool disk_fsync;               /* fdatasync each file before its rename; default false */
    unsigned disk_opt_line;        /* first other disk_* key, for messages (0: none) */
    const char *disk_opt_key;

    /* client limits */
    unsigned max_request_line;     /* default 8192 */
    unsigned max_head_bytes;       /* default 32768 */
    unsigned max_headers;          /* default 100 */
    unsigned max_ranges;           /* ranges per request, more: the whole body; default 16 */
    unsigned client_header_timeout_ms; /* whole request head must arrive in; default 10000 */
    unsigned client_idle_timeout_ms;   /* keep-alive idle; default 60000 */
    unsigned client_send_timeout_ms;   /* no progress writing to client; default 60000 */
    unsigned max_keepalive_requests;   /* per connection, default 10000 */
    unsigned max_connections;          /* accepted at once, default 100000 */
    unsigned max_pipeline;             /* requests parsed ahead, default 16 */

    unsigned workers;      /* event loop threads; 0 = one (default for now) */

    /* fleet-wide invalidation (edge/fleet.c, edge/admin.c, edge/purge.c) */
    char *state_dir;       /* rules, pending purges, stream id; NULL: memory only */
    char *node_id;         /* default: the host name */
    char *pop;             /* PoP/region label shown by the admin API; default "" */
    char *admin_listen;    /* admin API address; NULL (default): no admin API */
    char **admin_tokens;   /* bearer tokens */
    size_t nadmin_tokens;
    char *admin_token_file; /* more tokens, one a line */
    char *redis_url;       /* redis://[USER:PASSWORD@]HOST:PORT[/DB]; NULL: this node alone */
    char *redis_username;  /* ACL user (overrides the URL's) */
    char *redis_password;  /* overrides the URL's */
    unsigned redis_stream_maxlen; /* stream cap (XADD MAXLEN ~); default 100000 */
    unsigned heartbeat_ms; /* node heartbeat; a node is gone after 4 missed; default 250 */
    char *admin_tls_cert;  /* admin.tls: PEM certificate chain; NULL: cleartext admin API */
    char *admin_tls_key;   /* its PEM private key, unencrypted */
    char *redis_sentinel_master; /* Sentinel master name; NULL: redis_url names the server */
    char **redis_sentinel_addrs; /* "host:port" of each Sentinel */
    size_t nredis_sentinel_addrs;
    /* source lines of the fleet sections, for messages; 0 when not from a file */
    unsigned node_line, node_id_line, admin_line, admin_listen_line, admin_tls_line, redis_line,
        redis_url_line, sentinel_line;
};

struct conf *conf_new(void);
void conf_free(struct conf *c);

/* Load a YAML file into c (which holds defaults). Returns 0, or -1 with a
 * message "FILE:LINE: KEY: what was expected" in err[CONF_ERR_MAX]. The
 * result is finished (validated, references resolved). Listen addresses,
 * origins and distributions added before the load are kept, and the file's
 * are appended to them. After a failure c holds a partial configuration:
 * only conf_free() it. */
int conf_load_file(struct conf *c, const char *path, char *err);

/* Load from a string (tests, fuzzing); `name` stands for the file name in
 * messages. */
int conf_load_string(struct conf *c, const char *name, const char *yaml,
                     size_t len, char *err);

/* Command-line building blocks (0, or -1 with a message in err).
 * conf_add_origin_url parses
 * "http://127.0.0.1:9000/bucket" (path style: first path segment is the
 * bucket) or "https://BUCKET.s3.REGION.amazonaws.com" (virtual-hosted;
 * region taken from the name) and creates origin "default" plus a
 * distribution "default" for every host. */
int conf_add_listen(struct conf *c, const char *address, char *err);
/* A TLS listener with the default settings and n certificate/key pairs,
 * the first being the default (--tls-listen, --tls-cert, --tls-key). */
int conf_add_tls_listen(struct conf *c, const char *address, const char *const *certs,
                        const char *const *keys, size_t n, char *err);
int conf_add_origin_url(struct conf *c, const char *url, char *err);
/* The same for a plain HTTP(S) origin (--plain-origin): "http://HOST[:PORT]"
 * without a path; requests go to it with the client's path and query. */
int conf_add_plain_origin_url(struct conf *c, const char *url, char *err);
/* Validate and resolve references (origin names, defaults); fill the
 * derived origin fields. Idempotent: calling it again after a successful
 * load or finish changes nothing. 0, or -1 with a message in err. */
int conf_finish(struct conf *c, char *err);

/*
 * What one certificate entry's files hold, read and checked: the leaf
 * certificate, the rest of the chain, the key (it matches the leaf) and
 * the DER OCSP response (a successful one, for the leaf when the chain
 * names its issuer). conf_finish() loads every entry once to check it;
 * the daemon loads them again to build its TLS contexts and on reload,
 * so both say the same "FILE:LINE: listen[0].tls.certificates[1].key: ..."
 * when a file is wrong. The caller owns what conf_tls_material_fini()
 * releases.
 */
struct x509_st;
struct evp_pkey_st;
struct stack_st_X509;
struct conf_tls_material {
    struct x509_st *leaf;
    struct stack_st_X509 *chain; /* may be empty, never NULL on success */
    struct evp_pkey_st *key;
    unsigned char *ocsp; /* NULL when the entry has none */
    size_t ocsp_len;
};
int conf_tls_cert_load(const struct conf *c, size_t listen_idx, size_t cert_idx,
                       struct conf_tls_material *m, char *err);
void conf_tls_material_fini(struct conf_tls_material *m);
/* The same for admin.tls (no chain check beyond the key matching the
 * leaf, no OCSP): "FILE:LINE: admin.tls.key: ..." when a file is wrong. */
int conf_admin_tls_load(const struct conf *c, struct conf_tls_material *m, char *err);
/* The ticket_key_file of a listener: *keys gets n * CONF_TICKET_KEY_LEN
 * bytes (malloc'd; the caller wipes and frees them). */
int conf_tls_ticket_keys_load(const struct conf *c, size_t listen_idx, unsigned char **keys,
                              size_t *n, char *err);

/* Parsers shared with the command line. They return 0, EDGE_EINVAL for a
 * malformed value or EDGE_ERANGE when it does not fit (common/err.h). */
/* "64MiB", "1g", "512k", "1000": k/KB/KiB, m/MB/MiB, g/GB/GiB, t/TB/TiB are
 * all powers of 1024, case-insensitive */
int conf_parse_size(const char *s, uint64_t *out);
/* "30s", "250ms", "5m", "1h", "2d", bare number = seconds */
int conf_parse_duration_ms(const char *s, uint64_t *out);
/* "host:port", "[v6]:port", ":port" -> host (may be "" = any, no brackets)
 * and port 1-65535. EDGE_ERANGE: bad port number; EDGE_ETOOLONG: host does
 * not fit in host_cap bytes with its NUL. */
int conf_split_hostport(const char *s, char *host, size_t host_cap, uint16_t *port);

#endif

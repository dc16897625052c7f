/*
 * admin.c: the admin API (admin.h).
 *
 * Lifecycle: admin_new() loads the tokens (config, then token_file: one
 * per line, '#' comments), binds the listener; each request is answered
 * within its callback (everything it needs is in this process: the fleet
 * view is refreshed by fleet.c's heartbeat); admin_free() frees the evhttp,
 * which closes its connections.
 *
 * Tokens are compared as SHA-256 digests with CRYPTO_memcmp, so neither
 * the bytes nor the length of a token leaks through timing. A request
 * without "Authorization: Bearer ..." gets 401, a wrong token 403.
 */
#include "config.h"

#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/sha.h>

#include "cache.h"
#include "conf.h"
#include "err.h"
#include "fleet.h"
#include "log.h"
#include "origin.h"
#include "purge.h"
#include "server.h"
#include "timeutil.h"
#include "vas.h"

/* A status request waiting for Redis (fleet_inv_lookup). */
struct pending {
    unsigned magic;
#define PENDING_MAGIC 0x70656e64U
    struct admin *a;             /* NULL once the admin API is gone */
    struct evhttp_request *req;  /* NULL once it cannot be answered */
    TAILQ_ENTRY(pending) link;
};

struct admin {
    unsigned magic;
#define ADMIN_MAGIC 0x61646d6eU
    struct server *srv;
    struct fleet *fleet;
    struct evhttp *http;
    unsigned char (*digests)[SHA256_DIGEST_LENGTH];
    size_t ntokens;
    TAILQ_HEAD(pending_list, pending) pendings;
    SSL_CTX *tls;                /* admin.tls, or NULL: cleartext */
    /* POST /v1/invalidations answered 202: how many, and the time spent
     * in the handler (body parsed, applied, journaled, answer queued) */
    uint64_t accepted, accept_us_total, accept_us_max;
};

static void reply(struct evhttp_request *req, int code, const char *reason, const char *json)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);

    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (code == 401)
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"s3edge\"");
    evbuffer_add(b, json, strlen(json));
    evbuffer_add(b, "\n", 1);
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void reply_owned(struct evhttp_request *req, int code, const char *reason, char *json)
{
    if (json == NULL) {
        reply(req, 500, "Internal Server Error", "{\"error\":\"out of memory\"}");
        return;
    }
    reply(req, code, reason, json);
    free(json);
}

static void reply_error(struct evhttp_request *req, int code, const char *reason, const char *msg)
{
    json_t *j = json_pack("{s:s}", "error", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    reply_owned(req, code, reason, s);
}

/* 0: allowed; else the status sent */
static int authorize(struct admin *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    unsigned char d[SHA256_DIGEST_LENGTH];
    int ok = 0;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0') {
        reply_error(req, 401, "Unauthorized", "a bearer token is required");
        return 401;
    }
    SHA256((const unsigned char *)h + 7, strlen(h + 7), d);
    /* every token is compared, whichever matches */
    for (size_t i = 0; i < a->ntokens; i++)
        ok |= CRYPTO_memcmp(d, a->digests[i], sizeof(d)) == 0;
    if (!ok) {
        reply_error(req, 403, "Forbidden", "the token is not valid");
        return 403;
    }
    return 0;
}

/* ---- POST /v1/invalidations ---- */

static const char *check_path(const char *s, size_t n)
{
    if (n == 0 || s[0] != '/')
        return "a path must start with '/'";
    if (n > PURGE_PATTERN_MAX)
        return "a path is too long";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return "a path may not hold control characters";
        /* CloudFront: '*' only as the last character */
        if (c == '*' && i + 1 != n)
            return "'*' may only end a path";
    }
    return NULL;
}

static const char *check_tag(const char *s, size_t n)
{
    if (n == 0)
        return "a tag may not be empty";
    if (n > PURGE_PATTERN_MAX)
        return "a tag is too long";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == ',')
            return "a tag is one token: no spaces, commas or control characters";
    }
    return NULL;
}

/* Collect a string array into v[]; NULL or a message. */
static const char *strings_of(json_t *arr, const char *what, const char **v, size_t *n,
                              size_t cap, const char *(*check)(const char *, size_t))
{
    size_t i;
    json_t *e;
    static char msg[128];

    if (arr == NULL)
        return NULL;
    if (!json_is_array(arr)) {
        snprintf(msg, sizeof(msg), "\"%s\" must be an array of strings", what);
        return msg;
    }
    json_array_foreach(arr, i, e) {
        const char *s = json_string_value(e), *bad;
        if (s == NULL) {
            snprintf(msg, sizeof(msg), "\"%s\" must be an array of strings", what);
            return msg;
        }
        if (strlen(s) != json_string_length(e))
            return "strings may not hold NUL bytes";
        if ((bad = check(s, json_string_length(e))) != NULL)
            return bad;
        if (*n == cap) {
            snprintf(msg, sizeof(msg), "too many paths and tags: at most %d", FLEET_MAX_ITEMS);
            return msg;
        }
        v[(*n)++] = s;
    }
    return NULL;
}

/* true when it was accepted (202) */
static bool post_invalidation(struct admin *a, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    json_t *j;
    const char *key, *bad = NULL;
    json_t *val;
    static const char *items[FLEET_MAX_ITEMS];
    size_t nitems = 0, npaths;
    char id[32];

    if (len > ADMIN_MAX_BODY) {
        reply_error(req, 413, "Payload Too Large", "the body is too large");
        return false;
    }
    j = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        char msg[256];
        snprintf(msg, sizeof(msg), "bad JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        reply_error(req, 400, "Bad Request", msg);
        return false;
    }
    if (!json_is_object(j)) {
        bad = "the body must be a JSON object";
        goto bad;
    }
    json_object_foreach(j, key, val) {
        if (strcmp(key, "paths") != 0 && strcmp(key, "tags") != 0 && strcmp(key, "soft") != 0) {
            static char msg[160];
            snprintf(msg, sizeof(msg), "unknown field \"%.100s\"", key);
            bad = msg;
            goto bad;
        }
    }
    val = json_object_get(j, "soft");
    if (val != NULL && !json_is_boolean(val)) {
        bad = "\"soft\" must be true or false";
        goto bad;
    }
    if ((bad = strings_of(json_object_get(j, "paths"), "paths", items, &nitems,
                          FLEET_MAX_ITEMS, check_path)) != NULL)
        goto bad;
    npaths = nitems;
    if ((bad = strings_of(json_object_get(j, "tags"), "tags", items, &nitems, FLEET_MAX_ITEMS,
                          check_tag)) != NULL)
        goto bad;
    if (nitems == 0) {
        bad = "nothing to invalidate: give \"paths\" or \"tags\"";
        goto bad;
    }
    struct fleet_inv_req r = {
        .paths = items,
        .npaths = npaths,
        .tags = items + npaths,
        .ntags = nitems - npaths,
        .soft = json_is_true(val),
    };
    if (fleet_invalidate(a->fleet, &r, id) < 0) {
        json_decref(j);
        reply_error(req, 503, "Service Unavailable", "out of memory");
        return false;
    }
    json_decref(j);
    bool found;
    char *doc = fleet_inv_json(a->fleet, id, &found);
    reply_owned(req, 202, "Accepted", doc);
    return doc != NULL;
bad:
    json_decref(j);
    reply_error(req, 400, "Bad Request", bad);
    return false;
}

/* the handler, timed for GET /v1/stats */
static void timed_post(struct admin *a, struct evhttp_request *req)
{
    uint64_t t0 = time_mono_us();

    if (post_invalidation(a, req)) {
        uint64_t us = time_mono_us() - t0;
        a->accepted++;
        a->accept_us_total += us;
        if (us > a->accept_us_max)
            a->accept_us_max = us;
    }
}

/* ---- GET /v1/stats ---- */

static char *stats_json(struct admin *a)
{
    struct server *s = a->srv;
    struct cache_stats cs;
    struct origin_stats os, sum;
    json_t *origins = json_array();

    cache_get_stats(s->cache, &cs);
    memset(&sum, 0, sizeof(sum));
    for (size_t i = 0; i < s->conf->norigins; i++) {
        origin_get_stats(s->origins[i], &os);
        json_array_append_new(origins,
                              json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "name",
                                        s->conf->origins[i].name, "requests",
                                        (json_int_t)os.requests, "connects",
                                        (json_int_t)os.connects, "reused", (json_int_t)os.reused,
                                        "errors", (json_int_t)os.errors, "bytes_in",
                                        (json_int_t)os.bytes_in));
    }
    json_t *j = json_pack(
        "{s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I,"
        " s:I}, s:o, s:{s:I, s:I, s:I, s:I, s:I}}",
        "traffic", "connections_accepted", (json_int_t)s->stats.conns_accepted,
        "connections_open", (json_int_t)s->nconns, "requests", (json_int_t)s->stats.requests,
        "hits", (json_int_t)s->stats.hits, "misses", (json_int_t)s->stats.misses, "passes",
        (json_int_t)s->stats.passes, "errors", (json_int_t)s->stats.errors, "bytes_out",
        (json_int_t)s->stats.bytes_out, "forwards", (json_int_t)s->stats.forwards,
        "forward_invalidations", (json_int_t)s->stats.forward_invalidations, "bytes_forwarded",
        (json_int_t)s->stats.bytes_forwarded, "cache", "objects", (json_int_t)cs.objects, "bytes",
        (json_int_t)cs.bytes, "budget", (json_int_t)cs.budget, "hits", (json_int_t)cs.hits,
        "misses", (json_int_t)cs.misses, "inserts", (json_int_t)cs.inserts, "evictions",
        (json_int_t)cs.evictions, "origins", origins, "purge", "rules",
        (json_int_t)fleet_rule_count(a->fleet), "removed",
        (json_int_t)fleet_removed_count(a->fleet), "accepted", (json_int_t)a->accepted,
        "accept_us_total", (json_int_t)a->accept_us_total, "accept_us_max",
        (json_int_t)a->accept_us_max);
    char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return out;
}

/* ---- GET /v1/invalidations/ID ---- */

static void lookup_done(void *arg, char *doc, int status)
{
    struct pending *p = arg;

    CHECK_OBJ_NOTNULL(p, PENDING_MAGIC);
    if (p->a != NULL)
        TAILQ_REMOVE(&p->a->pendings, p, link);
    if (p->req != NULL) {
        if (status == 200)
            reply(p->req, 200, "OK", doc);
        else if (status == 404)
            reply_error(p->req, 404, "Not Found", "no such invalidation");
        else if (status == 503)
            reply_error(p->req, 503, "Service Unavailable",
                        "not known to this node, and Redis did not answer");
        else
            reply_error(p->req, 500, "Internal Server Error", "out of memory");
    }
    free(doc);
    p->magic = 0;
    free(p);
}

/* Known here (accepted or applied): at once; else from Redis' index. */
static void get_invalidation(struct admin *a, struct evhttp_request *req, const char *id)
{
    struct pending *p;
    bool found;
    char *doc = fleet_inv_json(a->fleet, id, &found);
    int rc;

    if (found) {
        reply_owned(req, 200, "OK", doc);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        reply_error(req, 500, "Internal Server Error", "out of memory");
        return;
    }
    p->magic = PENDING_MAGIC;
    p->a = a;
    p->req = req;
    TAILQ_INSERT_TAIL(&a->pendings, p, link);
    rc = fleet_inv_lookup(a->fleet, id, lookup_done, p);
    if (rc == 0)
        return; /* answered by lookup_done */
    TAILQ_REMOVE(&a->pendings, p, link);
    free(p);
    if (rc == EDGE_EIO)
        reply_error(req, 503, "Service Unavailable",
                    "not known to this node, and Redis is not connected");
    else if (rc == EDGE_ENOMEM)
        reply_error(req, 500, "Internal Server Error", "out of memory");
    else
        reply_error(req, 404, "Not Found", "no such invalidation");
}

/* ---- routing ---- */

static void handle(struct evhttp_request *req, void *arg)
{
    struct admin *a;
    const char *uri = evhttp_request_get_uri(req);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    char path[256];

    CAST_OBJ_NOTNULL(a, arg, ADMIN_MAGIC);
    size_t n = strcspn(uri, "?");
    if (n >= sizeof(path)) {
        reply_error(req, 404, "Not Found", "no such resource");
        return;
    }
    memcpy(path, uri, n);
    path[n] = '\0';

    if (strcmp(path, "/healthz") == 0) {
        reply(req, 200, "OK", "{\"status\":\"ok\"}");
        return;
    }
    if (strcmp(path, "/readyz") == 0) {
        if (fleet_ready(a->fleet))
            reply(req, 200, "OK", "{\"ready\":true}");
        else
            reply(req, 503, "Service Unavailable",
                  "{\"ready\":false,\"reason\":\"catching up with invalidations\"}");
        return;
    }
    if (strncmp(path, "/v1/", 4) != 0) {
        reply_error(req, 404, "Not Found", "no such resource");
        return;
    }
    if (authorize(a, req) != 0)
        return;
    if (strcmp(path, "/v1/invalidations") == 0) {
        if (m == EVHTTP_REQ_POST)
            timed_post(a, req);
        else if (m == EVHTTP_REQ_GET)
            reply_owned(req, 200, "OK", fleet_list_json(a->fleet));
        else
            reply_error(req, 405, "Method Not Allowed", "GET or POST");
        return;
    }
    if (m != EVHTTP_REQ_GET) {
        reply_error(req, 405, "Method Not Allowed", "GET only");
        return;
    }
    if (strncmp(path, "/v1/invalidations/", 18) == 0) {
        get_invalidation(a, req, path + 18);
    } else if (strcmp(path, "/v1/nodes") == 0) {
        reply_owned(req, 200, "OK", fleet_nodes_json(a->fleet));
    } else if (strcmp(path, "/v1/stats") == 0) {
        reply_owned(req, 200, "OK", stats_json(a));
    } else {
        reply_error(req, 404, "Not Found", "no such resource");
    }
}

static int add_token(struct admin *a, const char *t, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    if (n > ADMIN_TOKEN_MAX || a->ntokens == ADMIN_MAX_TOKENS) {
        snprintf(err, errlen, "admin: at most %d tokens of at most %d bytes", ADMIN_MAX_TOKENS,
                 ADMIN_TOKEN_MAX);
        return -1;
    }
    SHA256((const unsigned char *)t, n, a->digests[a->ntokens++]);
    return 0;
}

static int load_tokens(struct admin *a, const struct conf *c, char *err, size_t errlen)
{
    char line[ADMIN_TOKEN_MAX + 4];
    FILE *f;

    for (size_t i = 0; i < c->nadmin_tokens; i++)
        if (add_token(a, c->admin_tokens[i], strlen(c->admin_tokens[i]), err, errlen) < 0)
            return -1;
    if (c->admin_token_file != NULL) {
        f = fopen(c->admin_token_file, "re");
        if (f == NULL) {
            snprintf(err, errlen, "admin token file %s: cannot open", c->admin_token_file);
            return -1;
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            size_t n = strcspn(line, "\r\n");
            const char *p = line;
            line[n] = '\0';
            while (*p == ' ' || *p == '\t')
                p++;
            n = strlen(p);
            while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (*p == '#')
                continue;
            if (add_token(a, p, n, err, errlen) < 0) {
                fclose(f);
                return -1;
            }
        }
        fclose(f);
    }
    if (a->ntokens == 0) {
        snprintf(err, errlen, "admin: no token configured (admin.tokens or admin.token_file)");
        return -1;
    }
    return 0;
}

/* ---- admin.tls ---- */

/* Every connection of a TLS admin listener starts with a handshake. */
static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    struct admin *a;
    SSL *ssl;

    CAST_OBJ_NOTNULL(a, arg, ADMIN_MAGIC);
    ssl = SSL_new(a->tls);
    if (ssl == NULL)
        return NULL; /* evhttp closes the connection */
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    /* clients that close without close_notify (HTTP/1.0 reads to EOF) */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* A context with the certificate chain and key of admin.tls (checked by
 * conf_finish, read again here), TLS 1.2 and 1.3. */
static int tls_setup(struct admin *a, const struct conf *c, char *err, size_t errlen)
{
    struct conf_tls_material m;
    char cerr[CONF_ERR_MAX];
    int ok;

    if (conf_admin_tls_load(c, &m, cerr) != 0) {
        snprintf(err, errlen, "%s", cerr);
        return -1;
    }
    a->tls = SSL_CTX_new(TLS_server_method());
    ok = a->tls != NULL && SSL_CTX_set_min_proto_version(a->tls, TLS1_2_VERSION) == 1 &&
         SSL_CTX_use_certificate(a->tls, m.leaf) == 1 &&
         SSL_CTX_use_PrivateKey(a->tls, m.key) == 1;
    for (int i = 0; ok && i < sk_X509_num(m.chain); i++)
        ok = SSL_CTX_add1_chain_cert(a->tls, sk_X509_value(m.chain, i)) == 1;
    conf_tls_material_fini(&m);
    if (!ok) {
        unsigned long e = ERR_get_error();
        snprintf(err, errlen, "admin.tls: cannot set up TLS: %s",
                 e != 0 ? ERR_reason_error_string(e) : "out of memory");
        ERR_clear_error();
        return -1;
    }
    SSL_CTX_set_options(a->tls, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(a->tls, SSL_SESS_CACHE_OFF);
    return 0;
}

struct admin *admin_new(struct server *s, struct fleet *f, char *err, size_t errlen)
{
    const struct conf *c = s->conf;
    struct admin *a = calloc(1, sizeof(*a));
    char host[256];
    uint16_t port;

    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    a->magic = ADMIN_MAGIC;
    TAILQ_INIT(&a->pendings);
    a->srv = s;
    a->fleet = f;
    a->digests = calloc(ADMIN_MAX_TOKENS, sizeof(*a->digests));
    if (a->digests == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (load_tokens(a, c, err, errlen) < 0)
        goto fail;
    if (conf_split_hostport(c->admin_listen, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "admin listen address \"%s\": expected HOST:PORT", c->admin_listen);
        goto fail;
    }
    a->http = evhttp_new(s->base);
    if (a->http == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS_SIZE);
    evhttp_set_timeout(a->http, 30);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(a->http, handle, a);
    if (c->admin_tls_cert != NULL) {
        if (tls_setup(a, c, err, errlen) < 0)
            goto fail;
        evhttp_set_bevcb(a->http, tls_bevcb, a);
    }
    if (evhttp_bind_socket(a->http, host[0] ? host : "::", port) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s", c->admin_listen);
        goto fail;
    }
    LOG_I("admin API on %s%s (%zu tokens)", c->admin_listen, a->tls ? " with TLS" : "",
          a->ntokens);
    return a;
fail:
    admin_free(a);
    return NULL;
}

void admin_free(struct admin *a)
{
    struct pending *p;

    if (a == NULL)
        return;
    CHECK_OBJ_NOTNULL(a, ADMIN_MAGIC);
    /* status requests still waiting for Redis: evhttp_free frees their
     * requests; the lookups end when the Redis links go (fleet_stop) */
    while ((p = TAILQ_FIRST(&a->pendings)) != NULL) {
        TAILQ_REMOVE(&a->pendings, p, link);
        p->a = NULL;
        p->req = NULL;
    }
    if (a->http)
        evhttp_free(a->http);
    SSL_CTX_free(a->tls);
    if (a->digests)
        OPENSSL_cleanse(a->digests, ADMIN_MAX_TOKENS * sizeof(*a->digests));
    free(a->digests);
    a->magic = 0;
    free(a);
}

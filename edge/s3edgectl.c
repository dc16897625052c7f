/*
 * s3edgectl.c: the command-line client of the s3edge admin API.
 *
 *   s3edgectl [options] purge PATH... [--tag TAG]... [--soft] [--wait]
 *   s3edgectl [options] status ID
 *   s3edgectl [options] list
 *   s3edgectl [options] nodes
 *
 * The server and the token come from the flags, else the environment
 * (S3EDGE_ADMIN, S3EDGE_TOKEN, S3EDGE_TOKEN_FILE), else a config file
 * (--config FILE, else $S3EDGECTL_CONFIG, else ~/.config/s3edgectl.conf)
 * with "server = ...", "token = ..." or "token_file = ..." lines.
 *
 * One blocking request at a time over HTTP/1.0 (the API answers small
 * JSON documents and closes), with a time limit on every socket call.
 * A server given as https://HOST:PORT is spoken to over TLS, its
 * certificate checked against --cacert FILE (S3EDGE_CACERT, "cacert = "),
 * else the system's trust store, and against HOST.
 * Exit codes are in usage() and the README.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,     /* anything else (out of memory, bad answer) */
    EXIT_USAGE = 2,
    EXIT_CONNECT = 3,  /* cannot reach the admin API */
    EXIT_AUTH = 4,     /* 401 or 403 */
    EXIT_REFUSED = 5,  /* another 4xx: the request was refused, nothing applied */
    EXIT_SERVER = 6,   /* 5xx */
    EXIT_TIMEOUT = 7,  /* --wait: not Completed in time */
};

#define MAX_RESPONSE (16u << 20)
#define IO_TIMEOUT_S 10
#define MAX_ITEMS 3000

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: s3edgectl [options] COMMAND [arguments]\n"
            "Talk to the admin API of an s3edge node.\n"
            "\n"
            "Commands:\n"
            "  purge PATH... [--tag TAG]... [--soft] [--wait]\n"
            "                      invalidate paths (\"/a.mp4\", \"/releases/2.1/*\") and\n"
            "                      surrogate tags; --wait returns once every live\n"
            "                      node applied it\n"
            "  status ID           an invalidation's status and per-node detail\n"
            "  list                recent invalidations\n"
            "  nodes               the live nodes\n"
            "\n"
            "Options:\n"
            "  -s, --server [https://]HOST:PORT\n"
            "                          admin API (env S3EDGE_ADMIN; default 127.0.0.1:9090);\n"
            "                          https:// for a TLS admin listener\n"
            "      --cacert FILE       PEM CA certificates to check an https:// server\n"
            "                          with (env S3EDGE_CACERT; default: the system's)\n"
            "  -t, --token TOKEN       bearer token (env S3EDGE_TOKEN)\n"
            "  -T, --token-file FILE   read the token from FILE (env S3EDGE_TOKEN_FILE)\n"
            "  -c, --config FILE       \"server = \", \"token = \", \"token_file = \",\n"
            "                          \"cacert = \" lines\n"
            "                          (default $S3EDGECTL_CONFIG, ~/.config/s3edgectl.conf)\n"
            "      --timeout SECONDS   how long --wait waits (default 60)\n"
            "  -h, --help\n"
            "\n"
            "Exit codes: 0 done (purge --wait: Completed), 1 failure, 2 usage,\n"
            "3 cannot connect, 4 token missing or refused (401/403), 5 request refused\n"
            "(400, 404, 413: nothing applied), 6 server error, 7 --wait timed out.\n");
}

struct ctl {
    char *server;
    char *token;
    char *cacert;
};

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strcspn(s, "\r\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    s[n] = '\0';
    return s;
}

static char *read_token_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    char *tok = NULL;

    if (f == NULL) {
        fprintf(stderr, "s3edgectl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    while (tok == NULL && fgets(line, sizeof(line), f) != NULL) {
        char *t = trim(line);
        if (*t != '\0' && *t != '#')
            tok = strdup(t);
    }
    fclose(f);
    if (tok == NULL)
        fprintf(stderr, "s3edgectl: %s: no token in it\n", path);
    return tok;
}

/* Fill what is still unset from a config file; missing file: fine unless
 * it was named explicitly. */
static int read_config(struct ctl *c, const char *path, bool explicit_path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    unsigned lineno = 0;

    if (f == NULL) {
        if (!explicit_path)
            return 0;
        fprintf(stderr, "s3edgectl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *l = trim(line), *eq, *k, *v;
        lineno++;
        if (*l == '\0' || *l == '#')
            continue;
        eq = strchr(l, '=');
        if (eq == NULL) {
            fprintf(stderr, "s3edgectl: %s:%u: expected KEY = VALUE\n", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        k = trim(l);
        v = trim(eq + 1);
        if (strcmp(k, "server") == 0) {
            if (c->server == NULL)
                c->server = strdup(v);
        } else if (strcmp(k, "token") == 0) {
            if (c->token == NULL)
                c->token = strdup(v);
        } else if (strcmp(k, "cacert") == 0) {
            if (c->cacert == NULL)
                c->cacert = strdup(v);
        } else if (strcmp(k, "token_file") == 0) {
            if (c->token == NULL && (c->token = read_token_file(v)) == NULL) {
                fclose(f);
                return -1;
            }
        } else {
            fprintf(stderr, "s3edgectl: %s:%u: unknown key \"%s\"\n", path, lineno, k);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* ---- HTTP ---- */

struct resp {
    int status;
    json_t *json;
    char *raw;
};

/* "http://H:P", "https://H:P" or "H:P" (a trailing path is ignored):
 * whether it is TLS, and "H:P" for the Host header */
static bool server_split(const char *server, char *authority, size_t cap)
{
    bool tls = strncmp(server, "https://", 8) == 0;
    const char *s = server;

    if (tls)
        s += 8;
    else if (strncmp(s, "http://", 7) == 0)
        s += 7;
    snprintf(authority, cap, "%s", s);
    authority[strcspn(authority, "/")] = '\0';
    return tls;
}

static int connect_to(const char *server, char *host_out, size_t host_cap)
{
    char host[512], *port;
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc;
    struct timeval tv = {IO_TIMEOUT_S, 0};

    (void)server_split(server, host, sizeof(host));
    host[strcspn(host, "/")] = '\0';
    if (host[0] == '[') {
        char *end = strchr(host, ']');
        if (end == NULL)
            return -1;
        *end = '\0';
        port = end[1] == ':' ? end + 2 : (char *)"9090";
        memmove(host, host + 1, strlen(host));
    } else {
        port = strrchr(host, ':');
        if (port != NULL)
            *port++ = '\0';
        else
            port = (char *)"9090";
    }
    snprintf(host_out, host_cap, "%s", host[0] ? host : "127.0.0.1");
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host[0] ? host : "127.0.0.1", port, &hints, &res)) != 0) {
        fprintf(stderr, "s3edgectl: %s: %s\n", server, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "s3edgectl: cannot connect to %s: %s\n", server, strerror(errno));
    return fd;
}

/* A connection: a socket, and its TLS session for https:// */
struct conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static void conn_close(struct conn *k)
{
    if (k->ssl != NULL) {
        SSL_shutdown(k->ssl);
        SSL_free(k->ssl);
    }
    SSL_CTX_free(k->ctx);
    if (k->fd >= 0)
        close(k->fd);
    memset(k, 0, sizeof(*k));
    k->fd = -1;
}

static void tls_why(const char *server, const char *what)
{
    unsigned long e = ERR_get_error();

    fprintf(stderr, "s3edgectl: %s: %s%s%s\n", server, what, e ? ": " : "",
            e ? ERR_reason_error_string(e) : "");
    ERR_clear_error();
}

/* TLS over k->fd: the certificate checked against cacert (or the system
 * store) and host (a name, or an IP address in its SAN). */
static int tls_start(struct conn *k, const char *server, const char *host, const char *cacert)
{
    struct in6_addr a6;
    struct in_addr a4;
    bool ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;

    k->ctx = SSL_CTX_new(TLS_client_method());
    if (k->ctx == NULL || SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION) != 1) {
        tls_why(server, "out of memory");
        return -1;
    }
    SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
    if ((cacert != NULL ? SSL_CTX_load_verify_locations(k->ctx, cacert, NULL)
                        : SSL_CTX_set_default_verify_paths(k->ctx)) != 1) {
        tls_why(server, cacert != NULL ? "cannot load the --cacert file" : "no trust store");
        return -1;
    }
    k->ssl = SSL_new(k->ctx);
    if (k->ssl == NULL || SSL_set_fd(k->ssl, k->fd) != 1) {
        tls_why(server, "out of memory");
        return -1;
    }
    if (ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(k->ssl), host) != 1) {
            tls_why(server, "bad address");
            return -1;
        }
    } else if (SSL_set_tlsext_host_name(k->ssl, host) != 1 || SSL_set1_host(k->ssl, host) != 1) {
        tls_why(server, "bad host name");
        return -1;
    }
    if (SSL_connect(k->ssl) != 1) {
        long v = SSL_get_verify_result(k->ssl);
        if (v != X509_V_OK) {
            fprintf(stderr, "s3edgectl: %s: the server's certificate is not trusted: %s\n",
                    server, X509_verify_cert_error_string(v));
            ERR_clear_error();
        } else {
            tls_why(server, "TLS handshake failed");
        }
        return -1;
    }
    return 0;
}

static int send_all(struct conn *k, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (k->ssl != NULL) {
            int r = SSL_write(k->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            w = r > 0 ? r : -1;
        } else {
            w = send(k->fd, p, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t recv_some(struct conn *k, char *p, size_t n)
{
    if (k->ssl != NULL) {
        int r = SSL_read(k->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        if (r <= 0)
            ERR_clear_error(); /* the end, clean or not: the answer is parsed */
        return r > 0 ? r : 0;
    }
    for (;;) {
        ssize_t r = recv(k->fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

/* 0, or an exit code */
static int request(const struct ctl *c, const char *method, const char *path, const char *body,
                   struct resp *r)
{
    char *req = NULL, *buf = NULL, authority[512], host[512];
    size_t len = 0, cap = 0;
    struct conn k = {.fd = -1};
    int n;

    memset(r, 0, sizeof(*r));
    bool tls = server_split(c->server, authority, sizeof(authority));
    k.fd = connect_to(c->server, host, sizeof(host));
    if (k.fd < 0)
        return EXIT_CONNECT;
    if (tls && tls_start(&k, c->server, host, c->cacert) < 0) {
        conn_close(&k);
        return EXIT_CONNECT;
    }
    n = asprintf(&req,
                 "%s %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: s3edgectl/%s\r\n"
                 "%s%s%s"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                 method, path, authority, PACKAGE_VERSION, c->token ? "Authorization: Bearer " : "",
                 c->token ? c->token : "", c->token ? "\r\n" : "", body ? strlen(body) : 0,
                 body ? body : "");
    if (n < 0 || send_all(&k, req, (size_t)n) < 0) {
        fprintf(stderr, "s3edgectl: cannot send to %s: %s\n", c->server, strerror(errno));
        free(req);
        conn_close(&k);
        return EXIT_CONNECT;
    }
    free(req);
    for (;;) {
        if (cap - len < 4096) {
            if (cap >= MAX_RESPONSE)
                break;
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL)
                break;
            buf = nb;
        }
        ssize_t got = recv_some(&k, buf + len, cap - len);
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    conn_close(&k);
    if (buf == NULL || len == 0) {
        fprintf(stderr, "s3edgectl: no answer from %s\n", c->server);
        free(buf);
        return EXIT_CONNECT;
    }
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        fprintf(stderr, "s3edgectl: %s did not answer HTTP\n", c->server);
        free(buf);
        return EXIT_FAIL;
    }
    char *b = strstr(buf, "\r\n\r\n");
    if (b != NULL) {
        r->raw = strdup(b + 4);
        r->json = json_loads(b + 4, 0, NULL);
    }
    free(buf);
    return 0;
}

static void resp_fini(struct resp *r)
{
    json_decref(r->json);
    free(r->raw);
}

static int status_exit(const struct resp *r)
{
    if (r->status >= 200 && r->status < 300)
        return EXIT_OK;
    const char *msg = r->json ? json_string_value(json_object_get(r->json, "error")) : NULL;
    fprintf(stderr, "s3edgectl: %d: %s\n", r->status, msg ? msg : (r->raw ? r->raw : ""));
    if (r->status == 401 || r->status == 403)
        return EXIT_AUTH;
    if (r->status >= 400 && r->status < 500)
        return EXIT_REFUSED;
    return EXIT_SERVER;
}

static void print_json(const struct resp *r)
{
    if (r->json != NULL) {
        char *s = json_dumps(r->json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (s != NULL)
            printf("%s\n", s);
        free(s);
    } else if (r->raw != NULL) {
        fputs(r->raw, stdout);
    }
    fflush(stdout);
}

static int simple_get(const struct ctl *c, const char *path)
{
    struct resp r;
    int rc = request(c, "GET", path, NULL, &r);

    if (rc != 0)
        return rc;
    rc = status_exit(&r);
    if (rc == EXIT_OK)
        print_json(&r);
    resp_fini(&r);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int purge(const struct ctl *c, char **paths, size_t npaths, char **tags, size_t ntags,
                 bool soft, bool wait, double timeout)
{
    json_t *body = json_object(), *jp = json_array(), *jt = json_array();
    struct resp r;
    char *doc, path[256];
    int rc;

    for (size_t i = 0; i < npaths; i++)
        json_array_append_new(jp, json_string(paths[i]));
    for (size_t i = 0; i < ntags; i++)
        json_array_append_new(jt, json_string(tags[i]));
    json_object_set_new(body, "paths", jp);
    json_object_set_new(body, "tags", jt);
    json_object_set_new(body, "soft", json_boolean(soft));
    doc = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (doc == NULL)
        return EXIT_FAIL;
    rc = request(c, "POST", "/v1/invalidations", doc, &r);
    free(doc);
    if (rc != 0)
        return rc;
    rc = status_exit(&r);
    const char *id = r.json ? json_string_value(json_object_get(r.json, "id")) : NULL;
    if (rc != EXIT_OK || id == NULL) {
        resp_fini(&r);
        return rc != EXIT_OK ? rc : EXIT_FAIL;
    }
    snprintf(path, sizeof(path), "/v1/invalidations/%s", id);
    if (!wait) {
        print_json(&r);
        resp_fini(&r);
        return EXIT_OK;
    }
    resp_fini(&r);
    double deadline = now_s() + timeout;
    for (unsigned polls = 0; polls < 1000000; polls++) {
        rc = request(c, "GET", path, NULL, &r);
        if (rc != 0)
            return rc;
        rc = status_exit(&r);
        if (rc != EXIT_OK) {
            resp_fini(&r);
            return rc;
        }
        const char *st = r.json ? json_string_value(json_object_get(r.json, "status")) : NULL;
        if (st != NULL && strcmp(st, "Completed") == 0) {
            print_json(&r);
            resp_fini(&r);
            return EXIT_OK;
        }
        if (now_s() >= deadline) {
            print_json(&r);
            resp_fini(&r);
            fprintf(stderr, "s3edgectl: %s not Completed after %.0f s\n", id, timeout);
            return EXIT_TIMEOUT;
        }
        resp_fini(&r);
        usleep(polls < 50 ? 20000 : 200000);
    }
    return EXIT_TIMEOUT;
}

enum { OPT_TAG = 256, OPT_SOFT, OPT_WAIT, OPT_TIMEOUT, OPT_CACERT };

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},
        {"token-file", required_argument, NULL, 'T'},
        {"config", required_argument, NULL, 'c'},
        {"tag", required_argument, NULL, OPT_TAG},
        {"soft", no_argument, NULL, OPT_SOFT},
        {"wait", no_argument, NULL, OPT_WAIT},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ctl c = {NULL, NULL, NULL};
    const char *config = NULL, *token_file = NULL;
    static char *tags[MAX_ITEMS];
    size_t ntags = 0;
    bool soft = false, wait = false;
    double timeout = 60;
    int ch, rc;

    while ((ch = getopt_long(argc, argv, "s:t:T:c:h", opts, NULL)) != -1) {
        switch (ch) {
        case 's': c.server = strdup(optarg); break;
        case 't': c.token = strdup(optarg); break;
        case 'T': token_file = optarg; break;
        case 'c': config = optarg; break;
        case OPT_TAG:
            if (ntags == MAX_ITEMS) {
                fprintf(stderr, "s3edgectl: at most %d tags\n", MAX_ITEMS);
                return EXIT_USAGE;
            }
            tags[ntags++] = optarg;
            break;
        case OPT_CACERT: c.cacert = strdup(optarg); break;
        case OPT_SOFT: soft = true; break;
        case OPT_WAIT: wait = true; break;
        case OPT_TIMEOUT: {
            char *end;
            timeout = strtod(optarg, &end);
            if (*end != '\0' || !(timeout > 0) || timeout > 86400) {
                fprintf(stderr, "s3edgectl: --timeout \"%s\": expected seconds\n", optarg);
                return EXIT_USAGE;
            }
            break;
        }
        case 'h': usage(stdout); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    /* flags, then the environment, then the config file */
    if (token_file != NULL && c.token == NULL && (c.token = read_token_file(token_file)) == NULL)
        return EXIT_USAGE;
    if (c.server == NULL && getenv("S3EDGE_ADMIN") != NULL)
        c.server = strdup(getenv("S3EDGE_ADMIN"));
    if (c.cacert == NULL && getenv("S3EDGE_CACERT") != NULL)
        c.cacert = strdup(getenv("S3EDGE_CACERT"));
    if (c.token == NULL && getenv("S3EDGE_TOKEN") != NULL)
        c.token = strdup(getenv("S3EDGE_TOKEN"));
    if (c.token == NULL && getenv("S3EDGE_TOKEN_FILE") != NULL &&
        (c.token = read_token_file(getenv("S3EDGE_TOKEN_FILE"))) == NULL)
        return EXIT_USAGE;
    if (config != NULL) {
        if (read_config(&c, config, true) < 0)
            return EXIT_USAGE;
    } else if (getenv("S3EDGECTL_CONFIG") != NULL) {
        if (read_config(&c, getenv("S3EDGECTL_CONFIG"), true) < 0)
            return EXIT_USAGE;
    } else if (getenv("HOME") != NULL) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/.config/s3edgectl.conf", getenv("HOME"));
        if (read_config(&c, p, false) < 0)
            return EXIT_USAGE;
    }
    if (c.server == NULL)
        c.server = strdup("127.0.0.1:9090");

    const char *cmd = argv[optind++];
    int nargs = argc - optind;
    if (strcmp(cmd, "purge") == 0) {
        if (nargs == 0 && ntags == 0) {
            fprintf(stderr, "s3edgectl: purge: give paths or --tag\n");
            rc = EXIT_USAGE;
        } else if ((size_t)nargs + ntags > MAX_ITEMS) {
            fprintf(stderr, "s3edgectl: purge: at most %d paths and tags\n", MAX_ITEMS);
            rc = EXIT_USAGE;
        } else {
            rc = purge(&c, argv + optind, (size_t)nargs, tags, ntags, soft, wait, timeout);
        }
    } else if (strcmp(cmd, "status") == 0 && nargs == 1) {
        char path[512];
        if (strlen(argv[optind]) > 200 || strchr(argv[optind], '/') != NULL ||
            strchr(argv[optind], ' ') != NULL) {
            fprintf(stderr, "s3edgectl: status: not an invalidation id\n");
            rc = EXIT_USAGE;
        } else {
            snprintf(path, sizeof(path), "/v1/invalidations/%s", argv[optind]);
            rc = simple_get(&c, path);
        }
    } else if (strcmp(cmd, "list") == 0 && nargs == 0) {
        rc = simple_get(&c, "/v1/invalidations");
    } else if (strcmp(cmd, "nodes") == 0 && nargs == 0) {
        rc = simple_get(&c, "/v1/nodes");
    } else {
        usage(stderr);
        rc = EXIT_USAGE;
    }
    free(c.server);
    free(c.token);
    free(c.cacert);
    return rc;
}

/*
 * main.c: command line, configuration, logs, then the event loop.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "conf.h"
#include "log.h"
#include "server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: s3edge [options]\n"
            "A caching CDN edge for S3 origins.\n"
            "\n"
            "  -c, --config FILE          load the YAML configuration FILE\n"
            "  -t, --test-config          check the configuration and exit (0: valid)\n"
            "  -l, --log-level LEVEL      error, warn, info (default) or debug\n"
            "  -h, --help                 show this help\n"
            "  -v, --version              show the version\n"
            "\n"
            "Without a configuration file (one bucket):\n"
            "      --listen ADDR          listen on ADDR, e.g. 127.0.0.1:8080 (repeatable;\n"
            "                             default 127.0.0.1:8080 when no --tls-listen)\n"
            "      --tls-listen ADDR      listen for TLS on ADDR, e.g. :443 (repeatable)\n"
            "      --tls-cert FILE        PEM certificate (and chain) for the TLS listeners\n"
            "      --tls-key FILE         its PEM private key; repeat --tls-cert/--tls-key\n"
            "                             for more names (SNI), the first pair is the\n"
            "                             default\n"
            "      --origin URL           http://HOST:PORT/BUCKET (path style) or\n"
            "                             https://BUCKET.s3.REGION.amazonaws.com\n"
            "      --region REGION        the bucket's region (default: from the URL,\n"
            "                             else us-east-1)\n"
            "      --anonymous            do not sign origin requests (public bucket)\n"
            "      --plain-origin URL     http(s)://HOST[:PORT]: an origin that is not S3\n"
            "                             (no signing; path and query go through as sent)\n"
            "      --allowed-methods SET  GET,HEAD (default), GET,HEAD,OPTIONS or all\n"
            "                             (all forwards PUT, POST, PATCH and DELETE too)\n"
            "\n"
            "Overrides (with or without a configuration file):\n"
            "      --memory-cache SIZE    memory cache budget, e.g. 256MiB\n"
            "      --disk-cache DIR[:SIZE]\n"
            "                             disk cache in DIR with a budget of SIZE\n"
            "                             (default 10GiB), e.g. /var/cache/s3edge:50GiB\n"
            "      --max-object-size SIZE larger objects stream through uncached\n"
            "      --default-ttl DUR      freshness when S3 sends no Cache-Control, e.g. 1h\n"
            "      --access-log PATH      a file, stderr or off\n"
            "      --error-log PATH       a file or stderr\n"
            "      --origin-ca-file FILE  CA certificates for HTTPS origins\n"
            "      --origin-insecure      do not verify origin certificates\n"
            "      --connect-timeout DUR  origin connect timeout (default 5s)\n"
            "      --first-byte-timeout DUR\n"
            "                             origin time to first byte (default 30s)\n"
            "      --idle-timeout DUR     origin silence while sending a body (default 30s)\n"
            "\n"
            "Invalidation (with or without a configuration file):\n"
            "      --admin-listen ADDR    admin API address, e.g. 127.0.0.1:9090\n"
            "      --admin-token-file FILE\n"
            "                             bearer tokens of the admin API, one a line\n"
            "      --redis URL            redis://[USER:PASSWORD@]HOST:PORT[/DB]: share\n"
            "                             invalidations with the other nodes\n"
            "      --node-id NAME         this node's name (default: the host name)\n"
            "      --pop LABEL            its PoP/region label\n"
            "      --state-dir DIR        keep rules and pending purges in DIR\n"
            "\n"
            "Origin credentials come from the configuration or from AWS_ACCESS_KEY_ID,\n"
            "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; none: anonymous requests.\n");
}

enum {
    OPT_LISTEN = 256,
    OPT_ORIGIN,
    OPT_REGION,
    OPT_ANON,
    OPT_MEMORY,
    OPT_DISK,
    OPT_MAXOBJ,
    OPT_TTL,
    OPT_ACCESS_LOG,
    OPT_ERROR_LOG,
    OPT_CA,
    OPT_INSECURE,
    OPT_CONNECT_TO,
    OPT_FIRST_BYTE_TO,
    OPT_IDLE_TO,
    OPT_TLS_LISTEN,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_ADMIN_LISTEN,
    OPT_ADMIN_TOKEN_FILE,
    OPT_REDIS,
    OPT_NODE_ID,
    OPT_POP,
    OPT_STATE_DIR,
    OPT_PLAIN_ORIGIN,
    OPT_METHODS,
};

static const struct option longopts[] = {
    {"config", required_argument, NULL, 'c'},
    {"test-config", no_argument, NULL, 't'},
    {"log-level", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'v'},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"origin", required_argument, NULL, OPT_ORIGIN},
    {"region", required_argument, NULL, OPT_REGION},
    {"anonymous", no_argument, NULL, OPT_ANON},
    {"memory-cache", required_argument, NULL, OPT_MEMORY},
    {"disk-cache", required_argument, NULL, OPT_DISK},
    {"max-object-size", required_argument, NULL, OPT_MAXOBJ},
    {"default-ttl", required_argument, NULL, OPT_TTL},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"error-log", required_argument, NULL, OPT_ERROR_LOG},
    {"origin-ca-file", required_argument, NULL, OPT_CA},
    {"origin-insecure", no_argument, NULL, OPT_INSECURE},
    {"connect-timeout", required_argument, NULL, OPT_CONNECT_TO},
    {"first-byte-timeout", required_argument, NULL, OPT_FIRST_BYTE_TO},
    {"idle-timeout", required_argument, NULL, OPT_IDLE_TO},
    {"tls-listen", required_argument, NULL, OPT_TLS_LISTEN},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"admin-listen", required_argument, NULL, OPT_ADMIN_LISTEN},
    {"admin-token-file", required_argument, NULL, OPT_ADMIN_TOKEN_FILE},
    {"redis", required_argument, NULL, OPT_REDIS},
    {"node-id", required_argument, NULL, OPT_NODE_ID},
    {"pop", required_argument, NULL, OPT_POP},
    {"state-dir", required_argument, NULL, OPT_STATE_DIR},
    {"plain-origin", required_argument, NULL, OPT_PLAIN_ORIGIN},
    {"allowed-methods", required_argument, NULL, OPT_METHODS},
    {NULL, 0, NULL, 0},
};

/* what the command line asks for, applied after the config is built */
struct overrides {
    const char *log_level;
    const char *memory, *maxobj, *ttl, *disk;
    const char *access_log, *error_log;
    const char *region, *ca_file;
    const char *connect_to, *first_byte_to, *idle_to;
    const char *admin_listen, *admin_token_file, *redis, *node_id, *pop, *state_dir;
    bool anonymous, insecure;
};

static int bad_value(const char *opt, const char *val, const char *expected)
{
    fprintf(stderr, "s3edge: --%s \"%s\": expected %s\n", opt, val, expected);
    return -1;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        fprintf(stderr, "s3edge: out of memory\n");
        exit(1);
    }
    return d;
}

/* Replace a string field when the command line gives it. */
static void set_str(char **dst, const char *val)
{
    if (val != NULL) {
        free(*dst);
        *dst = xstrdup(val);
    }
}

static int parse_ms(const char *opt, const char *val, unsigned *out)
{
    uint64_t ms;

    if (conf_parse_duration_ms(val, &ms) < 0 || ms == 0 || ms > UINT32_MAX)
        return bad_value(opt, val, "a duration like 5s or 250ms");
    *out = (unsigned)ms;
    return 0;
}

static int apply_overrides(struct conf *c, const struct overrides *ov)
{
    uint64_t v;

    if (ov->log_level) {
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        size_t i;
        for (i = 0; i < 4; i++)
            if (strcmp(ov->log_level, lv[i]) == 0)
                break;
        if (i == 4)
            return bad_value("log-level", ov->log_level, "error, warn, info or debug");
        c->log_level = (enum conf_log_level)i;
    }
    if (ov->memory) {
        if (conf_parse_size(ov->memory, &v) < 0 || v == 0)
            return bad_value("memory-cache", ov->memory, "a size like 256MiB");
        c->memory_cache_bytes = v;
    }
    if (ov->disk) {
        /* DIR[:SIZE]: a last ":SIZE" that is a size; the rest is the path */
        const char *colon = strrchr(ov->disk, ':');
        size_t dl = strlen(ov->disk);
        if (colon != NULL && conf_parse_size(colon + 1, &v) == 0) {
            if (v < (uint64_t)1 << 20)
                return bad_value("disk-cache", ov->disk, "DIR[:SIZE] with a SIZE of 1MiB or more");
            c->disk_size_bytes = v;
            dl = (size_t)(colon - ov->disk);
        }
        if (dl == 0 || dl > 3800)
            return bad_value("disk-cache", ov->disk, "DIR[:SIZE], e.g. /var/cache/s3edge:10GiB");
        free(c->disk_path);
        c->disk_path = xstrdup(ov->disk);
        c->disk_path[dl] = '\0';
    }
    if (ov->maxobj) {
        if (conf_parse_size(ov->maxobj, &v) < 0)
            return bad_value("max-object-size", ov->maxobj, "a size like 64MiB");
        c->max_object_bytes = v;
    }
    if (ov->ttl) {
        if (conf_parse_duration_ms(ov->ttl, &v) < 0 || v / 1000 > UINT32_MAX)
            return bad_value("default-ttl", ov->ttl, "a duration like 1h");
        for (size_t i = 0; i < c->ndists; i++)
            c->dists[i].default_ttl_s = (unsigned)(v / 1000);
    }
    set_str(&c->admin_listen, ov->admin_listen);
    set_str(&c->admin_token_file, ov->admin_token_file);
    set_str(&c->redis_url, ov->redis);
    set_str(&c->node_id, ov->node_id);
    set_str(&c->pop, ov->pop);
    set_str(&c->state_dir, ov->state_dir);
    if (ov->access_log) {
        free(c->access_log);
        c->access_log = xstrdup(ov->access_log);
    }
    if (ov->error_log) {
        free(c->error_log);
        c->error_log = xstrdup(ov->error_log);
    }
    for (size_t i = 0; i < c->norigins; i++) {
        struct conf_origin *o = &c->origins[i];
        if (ov->region) {
            free(o->region);
            o->region = xstrdup(ov->region);
        }
        if (ov->ca_file) {
            free(o->ca_file);
            o->ca_file = xstrdup(ov->ca_file);
        }
        if (ov->anonymous)
            o->cred_source = CONF_CRED_ANONYMOUS;
        if (ov->insecure)
            o->tls_verify = false;
        if (ov->connect_to && parse_ms("connect-timeout", ov->connect_to, &o->connect_timeout_ms) < 0)
            return -1;
        if (ov->first_byte_to &&
            parse_ms("first-byte-timeout", ov->first_byte_to, &o->first_byte_timeout_ms) < 0)
            return -1;
        if (ov->idle_to && parse_ms("idle-timeout", ov->idle_to, &o->idle_timeout_ms) < 0)
            return -1;
    }
    return 0;
}

#define MAX_ARGS 16 /* of each repeatable option */

/* Append a repeatable option's value; 0, or -1 when there are too many. */
static int push_arg(const char **v, size_t *n, const char *opt, const char *val)
{
    if (*n == MAX_ARGS) {
        fprintf(stderr, "s3edge: more than %d --%s options\n", MAX_ARGS, opt);
        return -1;
    }
    v[(*n)++] = val;
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *origin = NULL, *plain_origin = NULL, *methods = NULL;
    const char *listens[MAX_ARGS], *tls_listens[MAX_ARGS];
    const char *tls_certs[MAX_ARGS], *tls_keys[MAX_ARGS];
    size_t nlistens = 0, ntls_listens = 0, ntls_certs = 0, ntls_keys = 0;
    bool test_only = false;
    struct overrides ov;
    char err[CONF_ERR_MAX];
    int ch;

    memset(&ov, 0, sizeof(ov));
    err[0] = '\0';
    while ((ch = getopt_long(argc, argv, "c:tl:hv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 't': test_only = true; break;
        case 'l': ov.log_level = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'v':
            printf("s3edge %s (libevent %s, %s)\n", PACKAGE_VERSION,
                   event_get_version(), OPENSSL_VERSION_TEXT);
            return 0;
        case OPT_LISTEN:
            if (push_arg(listens, &nlistens, "listen", optarg) < 0)
                return 1;
            break;
        case OPT_TLS_LISTEN:
            if (push_arg(tls_listens, &ntls_listens, "tls-listen", optarg) < 0)
                return 1;
            break;
        case OPT_TLS_CERT:
            if (push_arg(tls_certs, &ntls_certs, "tls-cert", optarg) < 0)
                return 1;
            break;
        case OPT_TLS_KEY:
            if (push_arg(tls_keys, &ntls_keys, "tls-key", optarg) < 0)
                return 1;
            break;
        case OPT_ORIGIN: origin = optarg; break;
        case OPT_PLAIN_ORIGIN: plain_origin = optarg; break;
        case OPT_METHODS: methods = optarg; break;
        case OPT_REGION: ov.region = optarg; break;
        case OPT_ANON: ov.anonymous = true; break;
        case OPT_MEMORY: ov.memory = optarg; break;
        case OPT_DISK: ov.disk = optarg; break;
        case OPT_MAXOBJ: ov.maxobj = optarg; break;
        case OPT_TTL: ov.ttl = optarg; break;
        case OPT_ACCESS_LOG: ov.access_log = optarg; break;
        case OPT_ERROR_LOG: ov.error_log = optarg; break;
        case OPT_CA: ov.ca_file = optarg; break;
        case OPT_INSECURE: ov.insecure = true; break;
        case OPT_CONNECT_TO: ov.connect_to = optarg; break;
        case OPT_FIRST_BYTE_TO: ov.first_byte_to = optarg; break;
        case OPT_IDLE_TO: ov.idle_to = optarg; break;
        case OPT_ADMIN_LISTEN: ov.admin_listen = optarg; break;
        case OPT_ADMIN_TOKEN_FILE: ov.admin_token_file = optarg; break;
        case OPT_REDIS: ov.redis = optarg; break;
        case OPT_NODE_ID: ov.node_id = optarg; break;
        case OPT_POP: ov.pop = optarg; break;
        case OPT_STATE_DIR: ov.state_dir = optarg; break;
        default:
            fprintf(stderr, "Try 's3edge --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "s3edge: unexpected argument \"%s\"\nTry 's3edge --help'.\n",
                argv[optind]);
        return 2;
    }

    struct conf *c = conf_new();
    if (c == NULL) {
        fprintf(stderr, "s3edge: out of memory\n");
        return 1;
    }
    if (ntls_certs != ntls_keys || (ntls_listens > 0 && ntls_certs == 0) ||
        (ntls_listens == 0 && ntls_certs > 0)) {
        fprintf(stderr, "s3edge: --tls-listen needs --tls-cert FILE --tls-key FILE, in "
                        "pairs (%zu --tls-listen, %zu --tls-cert, %zu --tls-key)\n",
                ntls_listens, ntls_certs, ntls_keys);
        conf_free(c);
        return 1;
    }
    enum conf_methods mset = CONF_METHODS_GET_HEAD;
    if (methods != NULL) {
        if (strcasecmp(methods, "GET,HEAD") == 0) {
            mset = CONF_METHODS_GET_HEAD;
        } else if (strcasecmp(methods, "GET,HEAD,OPTIONS") == 0) {
            mset = CONF_METHODS_GET_HEAD_OPTIONS;
        } else if (strcasecmp(methods, "all") == 0) {
            mset = CONF_METHODS_ALL;
        } else {
            bad_value("allowed-methods", methods, "GET,HEAD, GET,HEAD,OPTIONS or all");
            conf_free(c);
            return 1;
        }
    }
    if (origin != NULL && plain_origin != NULL) {
        fprintf(stderr, "s3edge: give --origin (S3) or --plain-origin, not both\n");
        conf_free(c);
        return 1;
    }
    if (config != NULL) {
        if (origin != NULL || plain_origin != NULL || methods != NULL || nlistens > 0 ||
            ntls_listens > 0) {
            fprintf(stderr, "s3edge: --origin, --plain-origin, --allowed-methods, --listen and "
                            "--tls-listen go without -c; put them in the configuration file\n");
            conf_free(c);
            return 1;
        }
        /* The command line wins over the file: applied before the load
         * too, so that the file's checks see what the command line adds
         * (--admin-token-file for a file's admin.listen), and again after
         * it, over the file's values; then checked once more. */
        if (apply_overrides(c, &ov) < 0) {
            conf_free(c);
            return 1;
        }
        if (conf_load_file(c, config, err) < 0) {
            fprintf(stderr, "%s\n", err);
            conf_free(c);
            return 1;
        }
        if (apply_overrides(c, &ov) < 0 || conf_finish(c, err) < 0) {
            if (err[0])
                fprintf(stderr, "%s\n", err);
            conf_free(c);
            return 1;
        }
    } else {
        if (origin == NULL && plain_origin == NULL) {
            fprintf(stderr, "s3edge: give a configuration file (-c FILE) or an origin "
                            "(--origin URL or --plain-origin URL)\nTry 's3edge --help'.\n");
            conf_free(c);
            return 1;
        }
        if (nlistens == 0 && ntls_listens == 0)
            listens[nlistens++] = "127.0.0.1:8080";
        for (size_t i = 0; i < nlistens; i++) {
            if (conf_add_listen(c, listens[i], err) < 0) {
                fprintf(stderr, "s3edge: --listen: %s\n", err);
                conf_free(c);
                return 1;
            }
        }
        for (size_t i = 0; i < ntls_listens; i++) {
            if (conf_add_tls_listen(c, tls_listens[i], tls_certs, tls_keys, ntls_certs, err) <
                0) {
                fprintf(stderr, "s3edge: --tls-listen: %s\n", err);
                conf_free(c);
                return 1;
            }
        }
        if (origin != NULL ? conf_add_origin_url(c, origin, err) < 0
                           : conf_add_plain_origin_url(c, plain_origin, err) < 0) {
            fprintf(stderr, "s3edge: --%s: %s\n", origin ? "origin" : "plain-origin", err);
            conf_free(c);
            return 1;
        }
        for (size_t i = 0; i < c->ndists; i++)
            c->dists[i].methods = mset;
        if (apply_overrides(c, &ov) < 0 || conf_finish(c, err) < 0) {
            if (err[0])
                fprintf(stderr, "s3edge: %s\n", err);
            conf_free(c);
            return 1;
        }
    }
    if (test_only) {
        printf("s3edge: configuration %s is valid\n", config ? config : "(command line)");
        conf_free(c);
        return 0;
    }

    if (log_open(c->log_level, c->error_log, c->access_log) < 0) {
        fprintf(stderr, "s3edge: cannot open a log file: %s\n", strerror(errno));
        conf_free(c);
        return 1;
    }
    struct server *s = server_new(c, err, sizeof(err));
    if (s == NULL) {
        LOG_E("%s", err);
        conf_free(c);
        return 1;
    }
    LOG_I("s3edge %s started", PACKAGE_VERSION);
    int rc = server_run(s);
    server_free(s);
    log_close();
    conf_free(c);
    return rc == 0 ? 0 : 1;
}

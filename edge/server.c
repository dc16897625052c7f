/*
 * server.c: listeners, origins, cache and signals of one event loop.
 */
#include "config.h"

#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "blockmem.h"
#include "cache.h"
#include "disk.h"
#include "fleet.h"
#include "h1.h"
#include "h2.h"
#include "log.h"
#include "origin.h"
#include "stats.h"
#include "tls.h"
#include "vas.h"

/* Count an accepted connection; at the limit, stop accepting. */
static void conn_accepted(struct server *s)
{
    s->nconns++;
    s->stats.conns_accepted++;
    if (s->nconns >= s->conf->max_connections) {
        /* stop accepting; the kernel backlog holds the rest */
        for (size_t i = 0; i < s->nlisteners; i++)
            evconnlistener_disable(s->listeners[i]);
        LOG_W("connection limit %u reached: not accepting", s->conf->max_connections);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *arg)
{
    struct server *s;

    (void)l;
    CAST_OBJ_NOTNULL(s, arg, SERVER_MAGIC);
    conn_accepted(s);
    h1_conn_new(s, fd, sa, salen);
}

/* A TLS listener: the handshake first (tls.c), then HTTP/1.1 or HTTP/2. */
static void tls_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct server *s;
    size_t i;

    CAST_OBJ_NOTNULL(s, arg, SERVER_MAGIC);
    for (i = 0; i < s->nlisteners && s->listeners[i] != l; i++)
        continue;
    AN(i < s->nlisteners && s->tls[i] != NULL);
    conn_accepted(s);
    tls_listener_accept(s->tls[i], fd, sa, salen);
}

/* SIGHUP: certificates, keys, OCSP responses and ticket keys are read
 * again; a listener whose files are wrong keeps what it had. */
static void reload_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s;
    char err[CONF_ERR_MAX];

    (void)sig, (void)what;
    CAST_OBJ_NOTNULL(s, arg, SERVER_MAGIC);
    for (size_t i = 0; i < s->nlisteners; i++) {
        if (s->tls[i] == NULL)
            continue;
        if (tls_listener_reload(s->tls[i], err, sizeof(err)) == 0)
            LOG_I("SIGHUP: listen %s: certificates and keys reloaded", s->conf->listens[i].address);
        else
            LOG_E("SIGHUP: listen %s: %s; keeping the previous certificates and keys",
                  s->conf->listens[i].address, err);
    }
}

/* SIGUSR1: the counters, one logfmt line at info level */
static void usr1_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s;

    (void)sig, (void)what;
    CAST_OBJ_NOTNULL(s, arg, SERVER_MAGIC);
    stats_log(s);
}

void server_conn_closed(struct server *s)
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    AN(s->nconns);
    if (s->nconns-- == s->conf->max_connections)
        for (size_t i = 0; i < s->nlisteners; i++)
            evconnlistener_enable(s->listeners[i]);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();

    (void)l;
    (void)arg;
    /* EMFILE and friends: log and go on; the listener retries */
    LOG_E("accept: %s", evutil_socket_error_to_string(e));
}

/* How long HTTP/2 streams in flight may finish after SIGTERM. */
#define SERVER_DRAIN_MS 3000

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct server *s;

    (void)what;
    CAST_OBJ_NOTNULL(s, arg, SERVER_MAGIC);
    LOG_I("signal %d: stopping", (int)sig);
    /* HTTP/2 clients get a GOAWAY and their streams in flight finish
     * (RFC 9113 6.8); h2 ends the loop when the last one is gone */
    if (h2_conn_drain_all(s) > 0) {
        struct timeval tv = {SERVER_DRAIN_MS / 1000, (SERVER_DRAIN_MS % 1000) * 1000};
        for (size_t i = 0; i < s->nlisteners; i++)
            evconnlistener_disable(s->listeners[i]);
        event_base_loopexit(s->base, &tv);
        return;
    }
    event_base_loopexit(s->base, NULL);
}

const char *server_date(struct server *s)
{
    time_t now = time(NULL);

    if (now != s->date_t) {
        s->date_t = now;
        http_date_format(now, s->date);
    }
    return s->date;
}

struct origin *server_origin(struct server *s, const struct conf_distribution *d)
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    for (size_t i = 0; i < s->conf->norigins; i++)
        if (&s->conf->origins[i] == d->origin)
            return s->origins[i];
    WRONG("distribution without origin");
}

static int listen_on(struct server *s, size_t idx, char *err, size_t errlen)
{
    const char *addr = s->conf->listens[idx].address;
    struct tls_listener *tl = NULL;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char host[256];
    uint16_t port;
    char buf[300];

    if (conf_split_hostport(addr, host, sizeof(host), &port) < 0) {
        snprintf(err, errlen, "bad listen address \"%s\"", addr);
        return -1;
    }
    if (host[0] == '\0')
        snprintf(buf, sizeof(buf), "[::]:%u", (unsigned)port);
    else if (strchr(host, ':'))
        snprintf(buf, sizeof(buf), "[%s]:%u", host, (unsigned)port);
    else
        snprintf(buf, sizeof(buf), "%s:%u", host, (unsigned)port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(buf, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "listen address \"%s\": not an IP address and port", addr);
        return -1;
    }
    if (s->conf->listens[idx].tls != NULL && (tl = tls_listener_new(s, idx, err, errlen)) == NULL)
        return -1;
    struct evconnlistener *l = evconnlistener_new_bind(
        s->base, tl ? tls_accept_cb : accept_cb, s,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 4096,
        (struct sockaddr *)&ss, sslen);
    if (l == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, strerror(errno));
        tls_listener_free(tl);
        return -1;
    }
    evconnlistener_set_error_cb(l, accept_error_cb);
    s->tls[s->nlisteners] = tl;
    s->listeners[s->nlisteners++] = l;
    LOG_I("listening on %s%s", addr, tl ? " (TLS)" : "");
    return 0;
}

struct server *server_new(const struct conf *conf, char *err, size_t errlen)
{
    struct server *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->magic = SERVER_MAGIC;
    TAILQ_INIT(&s->tasks);
    s->conf = conf;
    s->base = event_base_new();
    if (s->base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    s->dns = evdns_base_new(s->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (s->dns == NULL) {
        /* no resolv.conf: IP-literal origins still work */
        s->dns = evdns_base_new(s->base, 0);
    }
    s->cache = cache_new(conf->memory_cache_bytes);
    cache_set_readahead(conf->readahead_blocks);
    if (conf->sendfile) {
        /* the budget, and room for blocks in transit (readers of
         * pass-throughs, disk writes queued); beyond it blocks come from
         * malloc */
        uint64_t cap = conf->memory_cache_bytes + conf->memory_cache_bytes / 2 + ((uint64_t)256 << 20);
        char berr[256];
        if (blockmem_init(conf->block_bytes, cap, berr, sizeof(berr)) < 0)
            LOG_W("%s: blocks are copied to sockets instead of sent with sendfile", berr);
    }
    s->origins = calloc(conf->norigins ? conf->norigins : 1, sizeof(*s->origins));
    s->listeners = calloc(conf->nlistens ? conf->nlistens : 1, sizeof(*s->listeners));
    s->tls = calloc(conf->nlistens ? conf->nlistens : 1, sizeof(*s->tls));
    if (s->cache == NULL || s->origins == NULL || s->listeners == NULL || s->tls == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* before the listeners: a SIGUSR1 sent as soon as the port answers
     * must not find the default action (terminate) */
    s->sig_usr1 = evsignal_new(s->base, SIGUSR1, usr1_cb, s);
    if (s->sig_usr1 == NULL || evsignal_add(s->sig_usr1, NULL) < 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    if (conf->disk_path != NULL && (s->disk = disk_open(s, err, errlen)) == NULL)
        goto fail;
    for (size_t i = 0; i < conf->norigins; i++) {
        s->origins[i] = origin_new(s->base, s->dns, &conf->origins[i], err, errlen);
        if (s->origins[i] == NULL)
            goto fail;
    }
    for (size_t i = 0; i < conf->nlistens; i++)
        if (listen_on(s, i, err, errlen) < 0)
            goto fail;
    if (fleet_start(s, err, errlen) < 0)
        goto fail;
    s->sig_term = evsignal_new(s->base, SIGTERM, signal_cb, s);
    s->sig_int = evsignal_new(s->base, SIGINT, signal_cb, s);
    if (!s->sig_term || !s->sig_int || evsignal_add(s->sig_term, NULL) < 0 ||
        evsignal_add(s->sig_int, NULL) < 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    s->sig_hup = evsignal_new(s->base, SIGHUP, reload_cb, s);
    if (s->sig_hup == NULL || evsignal_add(s->sig_hup, NULL) < 0) {
        snprintf(err, errlen, "cannot install signal handlers");
        goto fail;
    }
    signal(SIGPIPE, SIG_IGN);
    return s;
fail:
    server_free(s);
    return NULL;
}

int server_run(struct server *s)
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    return event_base_dispatch(s->base) < 0 ? -1 : 0;
}

void server_task_track(struct server *s, struct server_task *t, enum server_task_kind kind,
                       void (*stop_now)(struct server_task *t))
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    t->kind = kind;
    t->stop_now = stop_now;
    TAILQ_INSERT_TAIL(&s->tasks, t, link);
}

void server_task_untrack(struct server *s, struct server_task *t)
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    TAILQ_REMOVE(&s->tasks, t, link);
}

/* End every tracked task of one kind; each stop_now untracks its task. */
static void stop_tasks(struct server *s, enum server_task_kind kind)
{
    struct server_task *t, *next;
    unsigned guard = 0;

    for (t = TAILQ_FIRST(&s->tasks); t != NULL; t = next) {
        /* stopping one task may untrack others (a connection's transient
         * fill), so restart from the head after each stop */
        next = TAILQ_NEXT(t, link);
        if (t->kind != kind)
            continue;
        t->stop_now(t);
        next = TAILQ_FIRST(&s->tasks);
        AN(++guard < 100000000u);
    }
}

void server_free(struct server *s)
{
    if (s == NULL)
        return;
    if (s->magic == SERVER_MAGIC) {
        stop_tasks(s, SERVER_TASK_CONN);
        stop_tasks(s, SERVER_TASK_FILL);
    }
    /* after the tasks: disk loads are fills, and their jobs end here */
    disk_close(s->disk);
    /* handshakes in progress end here; handed-over TLS connections keep
     * their contexts */
    for (size_t i = 0; i < s->nlisteners; i++)
        tls_listener_free(s->tls[i]);
    free(s->tls);
    for (size_t i = 0; i < s->nlisteners; i++)
        evconnlistener_free(s->listeners[i]);
    free(s->listeners);
    if (s->origins) {
        for (size_t i = 0; i < s->conf->norigins; i++)
            origin_free(s->origins[i]);
        free(s->origins);
    }
    fleet_stop(s); /* the admin API and the Redis links */
    cache_free(s->cache);
    blockmem_fini();
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    if (s->sig_hup)
        event_free(s->sig_hup);
    if (s->sig_usr1)
        event_free(s->sig_usr1);
    if (s->dns)
        evdns_base_free(s->dns, 0);
    if (s->base)
        event_base_free(s->base);
    s->magic = 0;
    free(s);
}

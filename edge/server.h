/*
 * server.h: the process-wide context of one event loop: config, cache,
 * origins, listeners, connection count, the cached Date header.
 *
 * Lifecycle: server_new() opens the listeners and origins; server_run()
 * dispatches until SIGTERM/SIGINT; server_free() releases it all.
 */
#ifndef S3EDGE_SERVER_H
#define S3EDGE_SERVER_H

#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include "conf.h"
#include "timeutil.h"

struct event_base;
struct server;
struct cache;
struct disk;
struct origin;
struct tls_listener;
struct fleet;

/*
 * Work that lives across loop turns (client connections, fills) registers
 * itself so that a stop can end it: server_free() calls each task's
 * stop_now(), which must free it (and untrack it) without touching the
 * loop again. Connections go first, so the fills they read from lose their
 * readers before the remaining fills are stopped.
 */
enum server_task_kind { SERVER_TASK_CONN = 0, SERVER_TASK_FILL };
struct server_task {
    TAILQ_ENTRY(server_task) link;
    enum server_task_kind kind;
    void (*stop_now)(struct server_task *t);
};
TAILQ_HEAD(server_task_list, server_task);

void server_task_track(struct server *s, struct server_task *t, enum server_task_kind kind,
                       void (*stop_now)(struct server_task *t));
void server_task_untrack(struct server *s, struct server_task *t);

struct server_stats {
    uint64_t conns_accepted;
    uint64_t requests;
    uint64_t hits;
    uint64_t misses;
    uint64_t passes;
    uint64_t errors;
    uint64_t bytes_out;
    uint64_t forwards;              /* requests forwarded uncached (forward.c) */
    uint64_t forward_invalidations; /* URLs invalidated by their answers */
    uint64_t bytes_forwarded;       /* request body bytes sent on to origins */
};

struct server {
    unsigned magic;
#define SERVER_MAGIC 0x73727672U
    const struct conf *conf;
    struct event_base *base;
    struct evdns_base *dns;
    struct cache *cache;
    struct fleet *fleet;     /* invalidation rules and their propagation */
    struct disk *disk;       /* NULL: no disk cache */
    struct origin **origins; /* parallel to conf->origins */
    struct evconnlistener **listeners;
    struct tls_listener **tls; /* parallel to listeners; NULL: cleartext */
    size_t nlisteners;
    struct event *sig_term, *sig_int, *sig_pipe;
    struct event *sig_hup; /* reloads the TLS certificates and ticket keys */
    struct event *sig_usr1; /* writes the counters to the error log */
    unsigned nconns;
    struct server_task_list tasks;
    time_t date_t;
    char date[HTTP_DATE_LEN + 1];
    struct server_stats stats;
};

/* Returns NULL with a message in err[errlen]. */
struct server *server_new(const struct conf *conf, char *err, size_t errlen);
int server_run(struct server *s);
void server_free(struct server *s);

/* The origin serving a distribution. */
struct origin *server_origin(struct server *s, const struct conf_distribution *d);
/* The current IMF-fixdate, refreshed at most once a second. */
const char *server_date(struct server *s);

/* a connection ended (h1 calls it; re-enables listeners below the limit) */
void server_conn_closed(struct server *s);

#endif

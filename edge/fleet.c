/*
 * fleet.c: invalidations of one node and their propagation (fleet.h).
 *
 * Lifecycle of an invalidation accepted here:
 *   fleet_invalidate: applied to the rule set, recorded, and written to
 *   STATE_DIR/pending -> XADD on the command link (at once, or when Redis
 *   comes back) -> its stream id known ("pushed"), dropped from pending ->
 *   every live node's applied id reaches it: Completed.
 * An entry read from the stream that another node accepted is applied,
 * recorded, and its id published as this node's applied id.
 *
 * Two Redis links, each reconnecting with backoff: `cmd` for commands
 * (XADD, heartbeat, the fleet view) and `blk` for the blocking XREAD loop,
 * which first checks the stream for a gap (trimmed past our id, or Redis
 * lost its data: then everything older is invalidated), then reads until
 * caught up (the node is ready), then blocks for new entries.
 */
#include "config.h"

#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>

#include "admin.h"
#include "cache.h"
#include "conf.h"
#include "err.h"
#include "log.h"
#include "purge.h"
#include "server.h"
#include "timeutil.h"
#include "vas.h"

#define KEY_STREAM "s3edge:purges"
#define KEY_NODES "s3edge:nodes"
#define KEY_NODE "s3edge:node:"
/* s3edge:inv:ID -> {sid, node, created, body}: any node answers the
 * status of an invalidation it has not applied (yet) from there */
#define KEY_INV "s3edge:inv:"
#define INV_INDEX_TTL_MS (7 * 86400 * 1000LL)
#define READ_COUNT 500
#define READ_BLOCK_MS 2000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define EXPIRE_EVERY_MS 60000
#define VIEW_MAX 1024
/* how long an object may stay servable without a full refetch beyond its
 * max_ttl (stale windows): rules are kept this much longer */
#define RULE_GRACE_S 86400

struct sid {
    uint64_t ms, seq;
};

struct inv {
    TAILQ_ENTRY(inv) link;
    char id[32];
    char node[128];    /* where it was accepted */
    int64_t created_ms;
    bool local;        /* accepted here */
    bool pushed;       /* in the stream (sid valid) */
    bool global;       /* a gap rule of this node, never pushed */
    struct sid sid;
    char *body;        /* {"paths":[...],"tags":[...],"soft":b} */
};
TAILQ_HEAD(inv_list, inv);

struct view_node {
    char *name, *pop, *version, *last_inv;
    struct sid applied;
    bool has_applied, ready;
    int64_t heartbeat_ms;
};

struct link {
    struct fleet *f;
    redisAsyncContext *ac;
    bool up;
    unsigned backoff_ms;
    struct event *retry;
    const char *name;
    /* the server it connects to: redis.url's, or the master the
     * Sentinels named last */
    char host[256];
    int port;
    /* Sentinel discovery: the Sentinel being asked, its index */
    redisAsyncContext *sac;
    size_t sidx;
};

struct fleet {
    unsigned magic;
#define FLEET_MAGIC 0x666c7474U
    struct server *srv;
    const struct conf *conf;
    struct purge *rules;
    struct admin *admin;
    char node[128];
    struct inv_list invs; /* newest last */
    size_t ninvs;
    char *pending_path, *sid_path, *recent_path;
    FILE *recent;        /* STATE_DIR/invalidations, appended to */
    size_t recent_lines;
    /* redis */
    bool redis;
    char *host, *user, *pass;
    int port, db;
    struct link cmd, blk;
    struct sid applied;  /* last stream id applied */
    bool has_applied;    /* a saved id exists */
    char last_inv[32];
    bool caught_up;
    bool stopping;
    struct event *tick, *expire_ev;
    struct view_node view[VIEW_MAX];
    size_t nview;
    bool view_valid;
    uint64_t removed;    /* objects taken out of the memory index by exact hard purges */
};

/* ---- small helpers ---- */

static int sid_parse(const char *s, size_t n, struct sid *out)
{
    char buf[64];
    char *end;

    if (n == 0 || n >= sizeof(buf))
        return EDGE_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    out->ms = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return EDGE_EINVAL;
    out->seq = 0;
    if (*end == '-') {
        char *p = end + 1;
        out->seq = strtoull(p, &end, 10);
        if (errno || end == p)
            return EDGE_EINVAL;
    }
    return *end == '\0' ? 0 : EDGE_EINVAL;
}

static int sid_cmp(struct sid a, struct sid b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    return a.seq < b.seq ? -1 : a.seq > b.seq;
}

static void sid_fmt(struct sid s, char *out, size_t cap)
{
    snprintf(out, cap, "%llu-%llu", (unsigned long long)s.ms, (unsigned long long)s.seq);
}

static char *path_in(const char *dir, const char *name)
{
    size_t n;
    char *p;

    if (dir == NULL)
        return NULL;
    n = strlen(dir) + strlen(name) + 2;
    p = malloc(n);
    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Write a small file atomically (temporary file, fsync, rename). */
static int write_file(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    FILE *f;
    int rc = 0;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "we");
    if (f == NULL)
        return EDGE_EIO;
    if (len > 0 && fwrite(data, 1, len, f) != len)
        rc = EDGE_EIO;
    if (rc == 0 && (fflush(f) != 0 || fdatasync(fileno(f)) != 0))
        rc = EDGE_EIO;
    if (fclose(f) != 0)
        rc = EDGE_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = EDGE_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* ---- the rule set ---- */

/*
 * A hard purge of an exact path also takes the object out of the memory
 * index at once, in every distribution that serves the path: the cache
 * key is the distribution's name and the S3 key (fleet_filter's mapping
 * in reverse). Objects cached under a query string (query_string: all or
 * allow) have keys of their own; the rule alone makes them misses.
 */
static void remove_exact(struct fleet *f, const char *path, size_t n)
{
    char ckey[PURGE_PATTERN_MAX + 512];
    const struct conf *c = f->conf;

    if (f->srv->cache == NULL)
        return;
    for (size_t i = 0; i < c->ndists; i++) {
        const struct conf_distribution *d = &c->dists[i];
        const char *kp = d->key_prefix != NULL ? d->key_prefix : "";
        size_t pp = strlen(d->path_prefix);
        while (pp > 0 && d->path_prefix[pp - 1] == '/')
            pp--;
        if (n <= pp + 1 || memcmp(path, d->path_prefix, pp) != 0 || path[pp] != '/')
            continue;
        int kl = snprintf(ckey, sizeof(ckey), "%s\n%s%.*s", d->name, kp, (int)(n - pp - 1),
                          path + pp + 1);
        if (kl < 0 || (size_t)kl >= sizeof(ckey))
            continue;
        if (cache_remove(f->srv->cache, ckey, (size_t)kl))
            f->removed++;
    }
}

static int apply_body(struct fleet *f, json_t *body)
{
    json_t *paths = json_object_get(body, "paths"), *tags = json_object_get(body, "tags");
    bool soft = json_is_true(json_object_get(body, "soft"));
    int64_t stamp = purge_clock_ms();
    size_t i;
    json_t *v;
    int rc = 0, r;

    json_array_foreach(paths, i, v) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (s == NULL)
            continue;
        if (n > 0 && s[n - 1] == '*')
            r = purge_add(f->rules, PURGE_PREFIX, s, n - 1, soft, stamp);
        else
            r = purge_add(f->rules, PURGE_EXACT, s, n, soft, stamp);
        if (!soft && (n == 0 || s[n - 1] != '*'))
            remove_exact(f, s, n);
        if (r < 0 && rc == 0)
            rc = r;
    }
    json_array_foreach(tags, i, v) {
        const char *s = json_string_value(v);
        if (s != NULL && (r = purge_add(f->rules, PURGE_TAG, s, json_string_length(v), soft,
                                        stamp)) < 0 && rc == 0)
            rc = r;
    }
    if (rc == EDGE_EIO)
        LOG_E("purge: cannot write the rule journal: %s", strerror(errno));
    return rc;
}

static void inv_free(struct inv *v)
{
    free(v->body);
    free(v);
}

static struct inv *inv_find(struct fleet *f, const char *id)
{
    struct inv *v;

    TAILQ_FOREACH_REVERSE(v, &f->invs, inv_list, link)
        if (strcmp(v->id, id) == 0)
            return v;
    return NULL;
}

static void recent_save(struct fleet *f, const struct inv *v);

/* Remember an invalidation; the oldest pushed ones go past FLEET_RECENT. */
static void inv_record(struct fleet *f, struct inv *v)
{
    TAILQ_INSERT_TAIL(&f->invs, v, link);
    f->ninvs++;
    while (f->ninvs > FLEET_RECENT) {
        struct inv *o = TAILQ_FIRST(&f->invs);
        while (o != NULL && o != v && o->local && !o->pushed && !o->global && f->redis)
            o = TAILQ_NEXT(o, link);
        /* never the one just recorded: the caller still uses it */
        if (o == NULL || o == v)
            break;
        TAILQ_REMOVE(&f->invs, o, link);
        f->ninvs--;
        inv_free(o);
    }
}

/* The unpushed invalidations of this node, one JSON document a line. */
static void pending_save(struct fleet *f)
{
    struct inv *v;
    char *buf = NULL;
    size_t len = 0;
    FILE *m;

    if (f->pending_path == NULL)
        return;
    m = open_memstream(&buf, &len);
    if (m == NULL)
        return;
    TAILQ_FOREACH(v, &f->invs, link) {
        if (!v->local || v->pushed || v->global)
            continue;
        json_t *o = json_pack("{s:s, s:I, s:s}", "id", v->id, "created", (json_int_t)v->created_ms,
                              "body", v->body);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            fprintf(m, "%s\n", s);
        free(s);
        json_decref(o);
    }
    fclose(m);
    if (write_file(f->pending_path, buf ? buf : "", len) < 0)
        LOG_E("fleet: cannot write %s: %s", f->pending_path, strerror(errno));
    free(buf);
}

static void pending_load(struct fleet *f)
{
    FILE *fp;
    char line[1 << 16];

    if (f->pending_path == NULL || (fp = fopen(f->pending_path, "re")) == NULL)
        return;
    while (fgets(line, sizeof(line), fp) != NULL) {
        json_t *o = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *body = json_string_value(json_object_get(o, "body"));
        struct inv *v;
        if (id == NULL || body == NULL || strlen(id) >= sizeof(v->id) ||
            inv_find(f, id) != NULL || (v = calloc(1, sizeof(*v))) == NULL) {
            json_decref(o);
            continue;
        }
        snprintf(v->id, sizeof(v->id), "%s", id);
        snprintf(v->node, sizeof(v->node), "%s", f->node);
        v->created_ms = json_integer_value(json_object_get(o, "created"));
        v->local = true;
        v->body = strdup(body);
        json_decref(o);
        if (v->body == NULL) {
            free(v);
            continue;
        }
        /* its rules are in the journal already */
        inv_record(f, v);
        recent_save(f, v);
    }
    fclose(fp);
}

static void sid_save(struct fleet *f)
{
    char buf[64];

    if (f->sid_path == NULL || !f->has_applied)
        return;
    sid_fmt(f->applied, buf, sizeof(buf));
    if (write_file(f->sid_path, buf, strlen(buf)) < 0)
        LOG_E("fleet: cannot write %s: %s", f->sid_path, strerror(errno));
}

static void sid_load(struct fleet *f)
{
    FILE *fp;
    char buf[64];

    if (f->sid_path == NULL || (fp = fopen(f->sid_path, "re")) == NULL)
        return;
    if (fgets(buf, sizeof(buf), fp) != NULL) {
        buf[strcspn(buf, "\r\n")] = '\0';
        if (sid_parse(buf, strlen(buf), &f->applied) == 0)
            f->has_applied = true;
    }
    fclose(fp);
}

/*
 * The recent invalidations survive a restart: STATE_DIR/invalidations
 * holds one JSON document a line, appended when one is recorded and when
 * it reaches the stream (the later line of an id wins); rewritten with
 * the recent ones alone when it holds many more lines than that.
 */
static json_t *inv_to_json(const struct inv *v)
{
    char sid[64] = "";

    if (v->pushed)
        sid_fmt(v->sid, sid, sizeof(sid));
    return json_pack("{s:s, s:s, s:I, s:b, s:b, s:b, s:s, s:s}", "id", v->id, "node", v->node,
                     "created", (json_int_t)v->created_ms, "local", v->local, "global",
                     v->global, "pushed", v->pushed, "sid", sid, "body", v->body);
}

static int recent_line(FILE *fp, const struct inv *v)
{
    json_t *j = inv_to_json(v);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    int rc = s != NULL && fprintf(fp, "%s\n", s) > 0 ? 0 : EDGE_EIO;

    free(s);
    json_decref(j);
    return rc;
}

static void recent_compact(struct fleet *f)
{
    char tmp[4096];
    struct inv *v;
    FILE *fp;
    int rc = 0;

    if (f->recent_path == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->recent_path);
    fp = fopen(tmp, "we");
    if (fp == NULL) {
        LOG_E("fleet: cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    TAILQ_FOREACH(v, &f->invs, link) {
        if (rc == 0)
            rc = recent_line(fp, v);
    }
    if (rc == 0 && (fflush(fp) != 0 || fdatasync(fileno(fp)) != 0))
        rc = EDGE_EIO;
    if (fclose(fp) != 0)
        rc = EDGE_EIO;
    if (rc == 0 && rename(tmp, f->recent_path) != 0)
        rc = EDGE_EIO;
    if (rc != 0) {
        LOG_E("fleet: cannot rewrite %s: %s", f->recent_path, strerror(errno));
        unlink(tmp);
        return;
    }
    if (f->recent != NULL)
        fclose(f->recent);
    f->recent = fopen(f->recent_path, "ae");
    f->recent_lines = f->ninvs;
    if (f->recent == NULL)
        LOG_E("fleet: cannot open %s: %s", f->recent_path, strerror(errno));
}

/* Written through to the kernel, not synced: the list is a record (the
 * rules and the pending pushes are what must survive, and are synced), so
 * a crash of the process loses nothing and a power loss at most the last
 * lines, without one more fdatasync on the path of every purge. */
static void recent_save(struct fleet *f, const struct inv *v)
{
    if (f->recent == NULL)
        return;
    if (recent_line(f->recent, v) < 0 || fflush(f->recent) != 0)
        LOG_E("fleet: cannot write %s: %s", f->recent_path, strerror(errno));
    if (++f->recent_lines > 2 * FLEET_RECENT + 100)
        recent_compact(f);
}

static void recent_load(struct fleet *f)
{
    FILE *fp;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (f->recent_path == NULL)
        return;
    fp = fopen(f->recent_path, "re");
    if (fp != NULL) {
        while ((n = getline(&line, &cap, fp)) > 0) {
            json_t *o = json_loadb(line, (size_t)n, 0, NULL);
            const char *id = json_string_value(json_object_get(o, "id"));
            const char *node = json_string_value(json_object_get(o, "node"));
            const char *sid = json_string_value(json_object_get(o, "sid"));
            const char *body = json_string_value(json_object_get(o, "body"));
            struct inv *v;
            /* a torn last line, or one not ours: skipped */
            if (id == NULL || body == NULL || node == NULL || sid == NULL ||
                strlen(id) >= sizeof(v->id) || strlen(node) >= sizeof(v->node)) {
                json_decref(o);
                continue;
            }
            v = inv_find(f, id);
            if (v == NULL) {
                v = calloc(1, sizeof(*v));
                if (v == NULL || (v->body = strdup(body)) == NULL) {
                    free(v);
                    json_decref(o);
                    continue;
                }
                snprintf(v->id, sizeof(v->id), "%s", id);
                inv_record(f, v);
            }
            snprintf(v->node, sizeof(v->node), "%s", node);
            v->created_ms = json_integer_value(json_object_get(o, "created"));
            v->local = json_is_true(json_object_get(o, "local"));
            v->global = json_is_true(json_object_get(o, "global"));
            v->pushed = sid[0] != '\0' && sid_parse(sid, strlen(sid), &v->sid) == 0;
            json_decref(o);
        }
        free(line);
        fclose(fp);
    } else if (errno != ENOENT) {
        LOG_E("fleet: cannot read %s: %s", f->recent_path, strerror(errno));
    }
    /* start the file afresh with what was kept */
    recent_compact(f);
}

/* ---- Redis ---- */

static void link_connect(struct link *l);
static void sentinel_ask(struct link *l);
static void blk_start(struct fleet *f);
static void cmd_push_pending(struct fleet *f);

static void link_schedule(struct link *l)
{
    struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};

    if (l->f->stopping)
        return;
    evtimer_add(l->retry, &tv);
    l->backoff_ms = l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;

    if (status != REDIS_OK) {
        LOG_W("redis (%s link): cannot connect: %s", l->name, ac->errstr);
        l->ac = NULL; /* hiredis frees it */
        l->up = false;
        link_schedule(l);
        return;
    }
    LOG_I("redis (%s link): connected to %s:%d", l->name, l->host, l->port);
    l->up = true;
    l->backoff_ms = BACKOFF_MIN_MS;
    if (l == &f->blk)
        blk_start(f);
    else
        cmd_push_pending(f);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;

    l->ac = NULL;
    l->up = false;
    if (l->f->stopping)
        return;
    LOG_W("redis (%s link): disconnected%s%s", l->name, status == REDIS_OK ? "" : ": ",
          status == REDIS_OK ? "" : ac->errstr);
    link_schedule(l);
}

static void link_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    link_connect(arg);
}

/*
 * Redis Sentinel (redis.sentinel): before each connection the Sentinels
 * are asked in turn for the master's address (SENTINEL
 * get-master-addr-by-name); the first that names one wins. A link that
 * drops (a failover kills the clients of the old master) or finds a
 * replica there (ROLE) asks again, so it follows the master after a
 * failover. All Sentinels failing: the usual backoff, then again.
 */
static void link_connect_server(struct link *l);

static void sentinel_reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;
    const struct conf *c = f->conf;
    redisReply *r = reply;

    (void)priv;
    l->sac = NULL;
    if (f->stopping)
        return;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[0]->len < sizeof(l->host)) {
        char *end;
        long port = strtol(r->element[1]->str, &end, 10);
        if (*end == '\0' && port > 0 && port < 65536) {
            snprintf(l->host, sizeof(l->host), "%s", r->element[0]->str);
            l->port = (int)port;
            redisAsyncDisconnect(ac);
            link_connect_server(l);
            return;
        }
    }
    LOG_W("redis (%s link): Sentinel %s: %s", l->name, c->redis_sentinel_addrs[l->sidx],
          r == NULL                        ? "no answer"
          : r->type == REDIS_REPLY_ERROR   ? r->str
          : r->type == REDIS_REPLY_NIL     ? "does not know the master"
                                           : "unexpected answer");
    if (r != NULL)
        redisAsyncDisconnect(ac);
    if (++l->sidx < c->nredis_sentinel_addrs) {
        sentinel_ask(l);
    } else {
        l->sidx = 0;
        link_schedule(l);
    }
}

static void sentinel_on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;

    if (status != REDIS_OK)
        LOG_W("redis (%s link): cannot connect to Sentinel %s: %s", l->name,
              l->f->conf->redis_sentinel_addrs[l->sidx], ac->errstr);
}

static void sentinel_ask(struct link *l)
{
    struct fleet *f = l->f;
    const struct conf *c = f->conf;
    char host[256];
    uint16_t port;
    redisAsyncContext *ac = NULL;

    AZ(l->sac);
    if (conf_split_hostport(c->redis_sentinel_addrs[l->sidx], host, sizeof(host), &port) != 0 ||
        (ac = redisAsyncConnect(host, port)) == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        LOG_W("redis (%s link): cannot reach Sentinel %s", l->name,
              c->redis_sentinel_addrs[l->sidx]);
        l->sidx = 0;
        link_schedule(l);
        return;
    }
    ac->data = l;
    redisLibeventAttach(ac, f->srv->base);
    redisAsyncSetConnectCallback(ac, sentinel_on_connect);
    l->sac = ac;
    /* called with NULL if the connection fails: the next one is asked */
    redisAsyncCommand(ac, sentinel_reply_cb, NULL, "SENTINEL get-master-addr-by-name %s",
                      c->redis_sentinel_master);
}

/* Behind a Sentinel: a server that is not (or no longer) the master
 * sends the link back to the Sentinels. */
static void role_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    redisReply *r = reply;

    (void)priv;
    if (r == NULL || l->f->stopping)
        return;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0)
        return;
    LOG_W("redis (%s link): %s:%d is not the master (%s); asking the Sentinels again", l->name,
          l->host, l->port,
          r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                  r->element[0]->type == REDIS_REPLY_STRING
              ? r->element[0]->str
              : "no role");
    redisAsyncDisconnect(ac);
}

static void link_connect(struct link *l)
{
    if (l->f->conf->redis_sentinel_master != NULL)
        sentinel_ask(l);
    else
        link_connect_server(l);
}

static void link_connect_server(struct link *l)
{
    struct fleet *f = l->f;
    redisAsyncContext *ac = redisAsyncConnect(l->host, l->port);

    if (ac == NULL || ac->err) {
        LOG_W("redis (%s link): %s", l->name, ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        link_schedule(l);
        return;
    }
    ac->data = l;
    redisLibeventAttach(ac, f->srv->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    /* queued: sent as soon as the connection is up, before anything else */
    if (f->pass != NULL && f->user != NULL)
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", f->user, f->pass);
    else if (f->pass != NULL)
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", f->pass);
    if (f->db != 0)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", f->db);
    if (f->conf->redis_sentinel_master != NULL)
        redisAsyncCommand(ac, role_cb, NULL, "ROLE");
}

/* A reply that is an error or missing: log it, drop the link (it
 * reconnects and starts over). */
static bool reply_bad(struct link *l, redisReply *r, const char *what)
{
    if (r != NULL && r->type != REDIS_REPLY_ERROR)
        return false;
    if (l->f->stopping || l->ac == NULL)
        return true;
    if (r != NULL) {
        LOG_W("redis (%s link): %s: %s", l->name, what, r->str);
        redisAsyncDisconnect(l->ac);
    }
    return true;
}

/* -- the command link: pushes and heartbeats -- */

static void xadd_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;
    redisReply *r = reply;
    char *id = priv;
    struct inv *v;

    if (reply_bad(l, r, "XADD") || r->type != REDIS_REPLY_STRING) {
        free(id);
        return;
    }
    v = inv_find(f, id);
    free(id);
    if (v == NULL || v->pushed)
        return;
    if (sid_parse(r->str, r->len, &v->sid) == 0) {
        v->pushed = true;
        LOG_I("invalidation %s in the stream as %s", v->id, r->str);
        recent_save(f, v);
        pending_save(f);
    }
}

/*
 * Append an invalidation to the stream and index it by id, at once; an
 * id already indexed (pushed before Redis' answer was lost) is not
 * appended twice. KEYS: stream, index key; ARGV: maxlen, id, node,
 * created, body, index ttl (ms). Returns the stream id.
 */
static const char push_script[] =
    "local sid = redis.call('HGET', KEYS[2], 'sid') "
    "if sid then return sid end "
    "sid = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], "
    "  'node', ARGV[3], 'created', ARGV[4], 'body', ARGV[5]) "
    "redis.call('HSET', KEYS[2], 'sid', sid, 'node', ARGV[3], 'created', ARGV[4], "
    "  'body', ARGV[5]) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[6]) "
    "return sid";

static void push_one(struct fleet *f, struct inv *v)
{
    char created[32], maxlen[32];
    char *idcopy;

    if (!f->cmd.up || v->pushed || !v->local || v->global)
        return;
    idcopy = strdup(v->id);
    if (idcopy == NULL)
        return;
    snprintf(created, sizeof(created), "%lld", (long long)v->created_ms);
    snprintf(maxlen, sizeof(maxlen), "%u", f->conf->redis_stream_maxlen);
    char ttl[32], ikey[sizeof(KEY_INV) + sizeof(v->id)];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)INV_INDEX_TTL_MS);
    snprintf(ikey, sizeof(ikey), KEY_INV "%s", v->id);
    const char *argv[] = {"EVAL", push_script, "2",     KEY_STREAM, ikey,    maxlen,
                          v->id,  f->node,     created, v->body,    ttl};
    size_t lens[ARRAY_LEN(argv)];
    for (size_t i = 0; i < ARRAY_LEN(argv); i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(f->cmd.ac, xadd_cb, idcopy, (int)ARRAY_LEN(argv), argv, lens) !=
        REDIS_OK)
        free(idcopy);
}

static void cmd_push_pending(struct fleet *f)
{
    struct inv *v;

    TAILQ_FOREACH(v, &f->invs, link)
        push_one(f, v);
}

static void view_clear(struct fleet *f)
{
    for (size_t i = 0; i < f->nview; i++) {
        free(f->view[i].name);
        free(f->view[i].pop);
        free(f->view[i].version);
        free(f->view[i].last_inv);
    }
    f->nview = 0;
}

static char *elem_str(const redisReply *r, size_t i)
{
    if (i >= r->elements || r->element[i]->type != REDIS_REPLY_STRING)
        return strdup("");
    return strdup(r->element[i]->str);
}

/* The live nodes: [[name, applied, heartbeat, version, pop, ready, last_inv], ...] */
static void view_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;
    redisReply *r = reply;

    (void)priv;
    if (reply_bad(l, r, "fleet view") || r->type != REDIS_REPLY_ARRAY)
        return;
    view_clear(f);
    for (size_t i = 0; i < r->elements && f->nview < VIEW_MAX; i++) {
        redisReply *e = r->element[i];
        struct view_node *n = &f->view[f->nview];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 7)
            continue;
        memset(n, 0, sizeof(*n));
        n->name = elem_str(e, 0);
        char *applied = elem_str(e, 1), *hb = elem_str(e, 2), *ready = elem_str(e, 5);
        n->version = elem_str(e, 3);
        n->pop = elem_str(e, 4);
        n->last_inv = elem_str(e, 6);
        if (applied && applied[0] && sid_parse(applied, strlen(applied), &n->applied) == 0)
            n->has_applied = true;
        n->heartbeat_ms = hb ? strtoll(hb, NULL, 10) : 0;
        n->ready = ready && strcmp(ready, "1") == 0;
        free(applied);
        free(hb);
        free(ready);
        f->nview++;
    }
    f->view_valid = true;
}

static const char view_script[] =
    "local out = {} "
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  local h = redis.call('HMGET', ARGV[1] .. n, 'applied', 'heartbeat', 'version', 'pop', "
    "    'ready', 'last_inv') "
    "  if h[2] then "
    "    table.insert(out, {n, h[1] or '', h[2], h[3] or '', h[4] or '', h[5] or '', h[6] or ''}) "
    "  else redis.call('SREM', KEYS[1], n) end "
    "end "
    "return out";

static void publish(struct fleet *f)
{
    char key[256], applied[64] = "", hb[32], ttl[32];

    if (!f->cmd.up)
        return;
    snprintf(key, sizeof(key), KEY_NODE "%s", f->node);
    if (f->has_applied)
        sid_fmt(f->applied, applied, sizeof(applied));
    snprintf(hb, sizeof(hb), "%lld", (long long)purge_clock_ms());
    snprintf(ttl, sizeof(ttl), "%u", f->conf->heartbeat_ms * 4);
    redisAsyncCommand(f->cmd.ac, NULL, NULL,
                      "HSET %s applied %s heartbeat %s version %s pop %s ready %s last_inv %s",
                      key, applied, hb, PACKAGE_VERSION, f->conf->pop ? f->conf->pop : "",
                      f->caught_up ? "1" : "0", f->last_inv);
    redisAsyncCommand(f->cmd.ac, NULL, NULL, "PEXPIRE %s %s", key, ttl);
    redisAsyncCommand(f->cmd.ac, NULL, NULL, "SADD " KEY_NODES " %s", f->node);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fleet *f = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    if (!f->cmd.up)
        return;
    publish(f);
    redisAsyncCommand(f->cmd.ac, view_cb, NULL, "EVAL %s 1 " KEY_NODES " " KEY_NODE,
                      view_script);
}

/* -- the blocking link: gap check, catch-up, then new entries -- */

static void xread_cb(redisAsyncContext *ac, void *reply, void *priv);

static void xread_next(struct fleet *f)
{
    char from[64], count[16], block[16];

    if (!f->blk.up)
        return;
    sid_fmt(f->applied, from, sizeof(from));
    snprintf(count, sizeof(count), "%d", READ_COUNT);
    snprintf(block, sizeof(block), "%d", READ_BLOCK_MS);
    if (f->caught_up)
        redisAsyncCommand(f->blk.ac, xread_cb, NULL, "XREAD COUNT %s BLOCK %s STREAMS %s %s",
                          count, block, KEY_STREAM, from);
    else
        redisAsyncCommand(f->blk.ac, xread_cb, NULL, "XREAD COUNT %s STREAMS %s %s", count,
                          KEY_STREAM, from);
}

/* One stream entry: [id, [field, value, ...]] */
static void apply_entry(struct fleet *f, const redisReply *e)
{
    const char *id = NULL, *node = NULL, *body = NULL;
    long long created = 0;
    struct sid sid;
    struct inv *v;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        sid_parse(e->element[0]->str, e->element[0]->len, &sid) < 0)
        return;
    const redisReply *kv = e->element[1];
    for (size_t i = 0; kv->type == REDIS_REPLY_ARRAY && i + 1 < kv->elements; i += 2) {
        const char *k = kv->element[i]->str, *val = kv->element[i + 1]->str;
        if (k == NULL || val == NULL)
            continue;
        if (strcmp(k, "id") == 0)
            id = val;
        else if (strcmp(k, "node") == 0)
            node = val;
        else if (strcmp(k, "body") == 0)
            body = val;
        else if (strcmp(k, "created") == 0)
            created = strtoll(val, NULL, 10);
    }
    f->applied = sid;
    f->has_applied = true;
    if (id == NULL || body == NULL || strlen(id) >= sizeof(v->id)) {
        LOG_W("stream entry %s: not an invalidation, skipped", e->element[0]->str);
        return;
    }
    snprintf(f->last_inv, sizeof(f->last_inv), "%s", id);
    v = inv_find(f, id);
    if (v != NULL && v->local) {
        /* ours, applied when accepted */
        if (!v->pushed) {
            v->sid = sid;
            v->pushed = true;
            recent_save(f, v);
            pending_save(f);
        }
        return;
    }
    if (v != NULL)
        return;
    json_t *j = json_loads(body, 0, NULL);
    if (j == NULL || !json_is_object(j)) {
        LOG_W("stream entry %s: invalidation %s: bad body, skipped", e->element[0]->str, id);
        json_decref(j);
        return;
    }
    (void)apply_body(f, j);
    json_decref(j);
    v = calloc(1, sizeof(*v));
    if (v == NULL || (v->body = strdup(body)) == NULL) {
        free(v);
        return;
    }
    snprintf(v->id, sizeof(v->id), "%s", id);
    snprintf(v->node, sizeof(v->node), "%s", node ? node : "");
    v->created_ms = created;
    v->pushed = true;
    v->sid = sid;
    inv_record(f, v);
    recent_save(f, v);
    LOG_I("invalidation %s (from %s) applied", id, v->node);
}

static void xread_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;
    redisReply *r = reply;
    size_t n = 0;

    (void)priv;
    if (reply_bad(l, r, "XREAD"))
        return;
    /* [[stream, [[id, [k, v...]], ...]]] or nil */
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++)
            apply_entry(f, entries->element[i]);
        n = entries->elements;
    }
    if (n > 0) {
        sid_save(f);
        publish(f);
    }
    if (!f->caught_up && n < READ_COUNT) {
        f->caught_up = true;
        LOG_I("invalidations: caught up with the stream");
        publish(f);
    }
    xread_next(f);
}

/* A gap rule: everything fetched before now is invalid. Recorded as an
 * invalidation of this node so that the API shows it. */
static void invalidate_all(struct fleet *f, const char *why)
{
    struct inv *v = calloc(1, sizeof(*v));

    LOG_W("invalidations: %s: invalidating every object fetched before now", why);
    if (purge_add(f->rules, PURGE_PREFIX, "", 0, false, purge_clock_ms()) == EDGE_EIO)
        LOG_E("purge: cannot write the rule journal: %s", strerror(errno));
    if (v == NULL || (v->body = strdup("{\"paths\":[\"/*\"],\"tags\":[],\"soft\":false}")) == NULL) {
        free(v);
        return;
    }
    snprintf(v->id, sizeof(v->id), "GAP%lld", (long long)purge_clock_ms());
    snprintf(v->node, sizeof(v->node), "%s", f->node);
    v->created_ms = purge_clock_ms();
    v->local = true;
    v->global = true;
    inv_record(f, v);
    recent_save(f, v);
}

static const redisReply *xinfo_get(const redisReply *r, const char *name)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1];
    return NULL;
}

static void xinfo_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct link *l = ac->data;
    struct fleet *f = l->f;
    redisReply *r = reply;
    struct sid last = {0, 0}, maxdel = {0, 0}, first = {0, 0};
    bool has_maxdel = false, has_first = false;

    (void)priv;
    if (r == NULL || f->stopping)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* no stream: nothing was ever added, or Redis lost its data */
        if (f->has_applied && (f->applied.ms || f->applied.seq)) {
            invalidate_all(f, "the stream is gone (Redis lost its data)");
        }
        f->applied = last;
        f->has_applied = true;
        sid_save(f);
        xread_next(f);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *x = xinfo_get(r, "last-generated-id");
    if (x && x->type == REDIS_REPLY_STRING)
        (void)sid_parse(x->str, x->len, &last);
    x = xinfo_get(r, "max-deleted-entry-id");
    if (x && x->type == REDIS_REPLY_STRING && sid_parse(x->str, x->len, &maxdel) == 0)
        has_maxdel = true;
    x = xinfo_get(r, "first-entry");
    if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 2 &&
        x->element[0]->type == REDIS_REPLY_STRING &&
        sid_parse(x->element[0]->str, x->element[0]->len, &first) == 0)
        has_first = true;
    x = xinfo_get(r, "length");
    long long length = x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
    x = xinfo_get(r, "entries-added");
    long long added = x && x->type == REDIS_REPLY_INTEGER ? x->integer : -1;
    /* Entries newer than ours are gone if: XDEL removed one (Redis 7
     * records the newest deleted id), or trimming (XADD MAXLEN, XTRIM,
     * which that record does not cover) removed entries and the oldest
     * left is newer than ours, or removed them all after ours. When our
     * own entry is trimmed but the next one is left, this says "gap" too:
     * it cannot be told apart, and invalidating is the safe side. */
    bool trimmed = added >= 0 && length >= 0 && added > length &&
                   (has_first ? sid_cmp(first, f->applied) > 0
                              : length == 0 && sid_cmp(last, f->applied) > 0);
    if (!has_maxdel && added < 0) /* before Redis 7: the oldest entry alone */
        trimmed = has_first && sid_cmp(first, f->applied) > 0;
    if (has_maxdel && sid_cmp(maxdel, f->applied) > 0)
        trimmed = true;

    if (!f->has_applied) {
        /* a new node has nothing cached from before: start at the end */
        f->applied = last;
        f->has_applied = true;
        sid_save(f);
    } else if (sid_cmp(f->applied, last) > 0) {
        invalidate_all(f, "the stream is older than our last applied id (Redis lost data)");
        f->applied = (struct sid){0, 0};
        sid_save(f);
    } else if (trimmed) {
        char a[64];
        sid_fmt(f->applied, a, sizeof(a));
        char why[160];
        snprintf(why, sizeof(why), "the stream was trimmed past our last applied id %s", a);
        invalidate_all(f, why);
    }
    xread_next(f);
}

static void blk_start(struct fleet *f)
{
    redisAsyncCommand(f->blk.ac, xinfo_cb, NULL, "XINFO STREAM %s", KEY_STREAM);
}

/* redis://[user[:password]@]host[:port][/db] */
static int parse_url(struct fleet *f, const char *url, char *err, size_t errlen)
{
    const char *p, *at, *slash, *colon;
    char hostport[512];

    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "redis url \"%s\": expected redis://HOST:PORT", url);
        return -1;
    }
    p = url + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        const char *c = memchr(p, ':', (size_t)(at - p));
        if (c != NULL) {
            f->user = c > p ? strndup(p, (size_t)(c - p)) : NULL;
            f->pass = strndup(c + 1, (size_t)(at - c - 1));
        } else {
            f->pass = strndup(p, (size_t)(at - p));
        }
        p = at + 1;
    }
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    if (hl == 0 || hl >= sizeof(hostport)) {
        snprintf(err, errlen, "redis url \"%s\": expected a host", url);
        return -1;
    }
    memcpy(hostport, p, hl);
    hostport[hl] = '\0';
    f->port = 6379;
    colon = strrchr(hostport, ':');
    if (colon != NULL && strchr(hostport, ']') < colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535) {
            snprintf(err, errlen, "redis url \"%s\": bad port", url);
            return -1;
        }
        f->port = (int)port;
        hostport[colon - hostport] = '\0';
    }
    if (hostport[0] == '[') {
        memmove(hostport, hostport + 1, strlen(hostport));
        hostport[strcspn(hostport, "]")] = '\0';
    }
    f->host = strdup(hostport);
    if (slash != NULL && slash[1] != '\0') {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 100000) {
            snprintf(err, errlen, "redis url \"%s\": bad database number", url);
            return -1;
        }
        f->db = (int)db;
    }
    return f->host == NULL ? -1 : 0;
}

/* ---- API ---- */

static void expire_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fleet *f = arg;

    (void)fd;
    (void)what;
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    purge_expire(f->rules, purge_clock_ms());
}

static int64_t rule_lifetime_ms(const struct conf *c)
{
    uint64_t max = 0;

    for (size_t i = 0; i < c->ndists; i++) {
        if (c->dists[i].max_ttl_s > max)
            max = c->dists[i].max_ttl_s;
        if (c->dists[i].default_ttl_s > max)
            max = c->dists[i].default_ttl_s;
    }
    return (int64_t)(max + RULE_GRACE_S) * 1000;
}

int fleet_start(struct server *s, char *err, size_t errlen)
{
    const struct conf *c = s->conf;
    struct fleet *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->magic = FLEET_MAGIC;
    f->srv = s;
    f->conf = c;
    TAILQ_INIT(&f->invs);
    s->fleet = f;
    if (c->node_id != NULL) {
        snprintf(f->node, sizeof(f->node), "%s", c->node_id);
    } else if (gethostname(f->node, sizeof(f->node) - 1) != 0 || f->node[0] == '\0') {
        snprintf(f->node, sizeof(f->node), "s3edge");
    }
    f->rules = purge_new(c->state_dir, rule_lifetime_ms(c), err, errlen);
    if (f->rules == NULL)
        return -1;
    f->pending_path = path_in(c->state_dir, "pending");
    f->sid_path = path_in(c->state_dir, "stream.id");
    f->recent_path = path_in(c->state_dir, "invalidations");
    recent_load(f);
    pending_load(f);
    sid_load(f);
    f->expire_ev = event_new(s->base, -1, EV_PERSIST, expire_cb, f);
    struct timeval ev = {EXPIRE_EVERY_MS / 1000, 0};
    if (f->expire_ev == NULL || event_add(f->expire_ev, &ev) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (c->redis_url != NULL || c->redis_sentinel_master != NULL) {
        if (c->redis_url != NULL && parse_url(f, c->redis_url, err, errlen) < 0)
            return -1;
        if (c->redis_username != NULL) {
            free(f->user);
            f->user = strdup(c->redis_username);
        }
        if (c->redis_password != NULL) {
            free(f->pass);
            f->pass = strdup(c->redis_password);
        }
        f->redis = true;
        f->cmd = (struct link){.f = f, .name = "command", .backoff_ms = BACKOFF_MIN_MS};
        f->blk = (struct link){.f = f, .name = "stream", .backoff_ms = BACKOFF_MIN_MS};
        if (f->host != NULL) {
            snprintf(f->cmd.host, sizeof(f->cmd.host), "%s", f->host);
            snprintf(f->blk.host, sizeof(f->blk.host), "%s", f->host);
            f->cmd.port = f->blk.port = f->port;
        }
        f->cmd.retry = evtimer_new(s->base, link_retry_cb, &f->cmd);
        f->blk.retry = evtimer_new(s->base, link_retry_cb, &f->blk);
        f->tick = event_new(s->base, -1, EV_PERSIST, tick_cb, f);
        struct timeval tv = {c->heartbeat_ms / 1000, (c->heartbeat_ms % 1000) * 1000};
        if (!f->cmd.retry || !f->blk.retry || !f->tick || event_add(f->tick, &tv) < 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        link_connect(&f->cmd);
        link_connect(&f->blk);
    } else {
        f->caught_up = true;
    }
    if (c->admin_listen != NULL && (f->admin = admin_new(s, f, err, errlen)) == NULL)
        return -1;
    LOG_I("invalidations: node \"%s\", %zu rules loaded%s", f->node, purge_count(f->rules),
          f->redis ? "" : ", no Redis: this node alone");
    return 0;
}

void fleet_stop(struct server *s)
{
    struct fleet *f = s->fleet;
    struct inv *v;

    if (f == NULL)
        return;
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    f->stopping = true;
    admin_free(f->admin);
    if (f->cmd.ac)
        redisAsyncFree(f->cmd.ac);
    if (f->blk.ac)
        redisAsyncFree(f->blk.ac);
    if (f->cmd.sac)
        redisAsyncFree(f->cmd.sac);
    if (f->blk.sac)
        redisAsyncFree(f->blk.sac);
    if (f->cmd.retry)
        event_free(f->cmd.retry);
    if (f->blk.retry)
        event_free(f->blk.retry);
    if (f->tick)
        event_free(f->tick);
    if (f->expire_ev)
        event_free(f->expire_ev);
    view_clear(f);
    while ((v = TAILQ_FIRST(&f->invs)) != NULL) {
        TAILQ_REMOVE(&f->invs, v, link);
        inv_free(v);
    }
    purge_free(f->rules);
    free(f->pending_path);
    free(f->sid_path);
    free(f->recent_path);
    if (f->recent != NULL)
        fclose(f->recent);
    free(f->host);
    free(f->user);
    free(f->pass);
    f->magic = 0;
    free(f);
    s->fleet = NULL;
}

/* The object's URL path: the distribution's path prefix, then the key
 * without the key prefix (uri_path_to_key in reverse). Its length. */
static size_t key_path(const struct conf_distribution *d, const char *key,
                       char path[PURGE_PATTERN_MAX + 2])
{
    size_t kp, pp;

    kp = d->key_prefix ? strlen(d->key_prefix) : 0;
    pp = strlen(d->path_prefix);
    while (pp > 0 && d->path_prefix[pp - 1] == '/')
        pp--;
    if (strlen(key) < kp)
        kp = 0;
    int n = snprintf(path, PURGE_PATTERN_MAX + 2, "%.*s/%s", (int)pp, d->path_prefix, key + kp);
    if (n < 0 || (size_t)n >= PURGE_PATTERN_MAX + 2)
        n = PURGE_PATTERN_MAX + 1;
    return (size_t)n;
}

int fleet_invalidate_local(struct server *s, const struct conf_distribution *d, const char *key)
{
    struct fleet *f = s->fleet;
    char path[PURGE_PATTERN_MAX + 2];

    if (f == NULL)
        return 0;
    size_t n = key_path(d, key, path);
    if (n > PURGE_PATTERN_MAX)
        return EDGE_ETOOLONG;
    int rc = purge_add(f->rules, PURGE_EXACT, path, n, false, purge_clock_ms());
    if (rc == 0 || rc == EDGE_EIO)
        remove_exact(f, path, n); /* as a hard purge of the path does */
    return rc;
}

struct obj *fleet_filter(struct server *s, const struct conf_distribution *d, const char *key,
                         struct obj *hit, enum fresh_state *st)
{
    struct fleet *f = s->fleet;
    char path[PURGE_PATTERN_MAX + 2];
    const char *tags[2];
    size_t ntags = 0;
    int64_t soft_ms = 0;

    if (hit == NULL || f == NULL || purge_count(f->rules) == 0)
        return hit;
    int n = (int)key_path(d, key, path);
    if ((tags[ntags] = obj_find_hdr(hit, "x-amz-meta-surrogate-key")) != NULL)
        ntags++;
    if ((tags[ntags] = obj_find_hdr(hit, "surrogate-key")) != NULL)
        ntags++;
    switch (purge_match(f->rules, path, (size_t)n, tags, ntags, hit->fetch_ms, &soft_ms)) {
    case PURGE_VALID:
        return hit;
    case PURGE_HARD:
        obj_unref(hit);
        return NULL;
    case PURGE_SOFT:
        if (hit->negative || !obj_has_validator(hit)) {
            obj_unref(hit);
            return NULL;
        }
        if (*st == FRESH_FRESH) {
            /* RFC 5861 3: stale from the purge on, served while it is
             * refreshed for the object's stale-while-revalidate window */
            int64_t since = (purge_clock_ms() - soft_ms) / 1000;
            *st = !hit->fd.no_stale && since < hit->fd.swr ? FRESH_STALE_SWR : FRESH_STALE;
        }
        return hit;
    }
    return hit;
}

static void random_id(char id[32])
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char rnd[13];

    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        uint64_t t = (uint64_t)purge_clock_ms() ^ ((uint64_t)getpid() << 40);
        for (size_t i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(t >> (i % 8 * 8)) ^ (unsigned char)i;
    }
    id[0] = 'I';
    for (size_t i = 0; i < sizeof(rnd); i++)
        id[i + 1] = digits[rnd[i] & 31];
    id[sizeof(rnd) + 1] = '\0';
}

int fleet_invalidate(struct fleet *f, const struct fleet_inv_req *r, char id[32])
{
    json_t *body = json_object(), *paths = json_array(), *tags = json_array();
    struct inv *v = calloc(1, sizeof(*v));
    int rc = EDGE_ENOMEM;

    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    if (body == NULL || paths == NULL || tags == NULL || v == NULL)
        goto out;
    for (size_t i = 0; i < r->npaths; i++)
        if (json_array_append_new(paths, json_string(r->paths[i])) < 0)
            goto out;
    for (size_t i = 0; i < r->ntags; i++)
        if (json_array_append_new(tags, json_string(r->tags[i])) < 0)
            goto out;
    if (json_object_set(body, "paths", paths) < 0 || json_object_set(body, "tags", tags) < 0 ||
        json_object_set_new(body, "soft", json_boolean(r->soft)) < 0)
        goto out;
    v->body = json_dumps(body, JSON_COMPACT);
    if (v->body == NULL)
        goto out;
    (void)apply_body(f, body);
    do
        random_id(v->id);
    while (inv_find(f, v->id) != NULL);
    snprintf(v->node, sizeof(v->node), "%s", f->node);
    v->created_ms = purge_clock_ms();
    v->local = true;
    snprintf(id, 32, "%s", v->id);
    inv_record(f, v);
    recent_save(f, v);
    LOG_I("invalidation %s accepted: %s", v->id, v->body);
    if (f->redis) {
        pending_save(f);
        push_one(f, v);
    }
    v = NULL;
    rc = 0;
out:
    json_decref(body);
    json_decref(paths);
    json_decref(tags);
    if (v != NULL) {
        free(v->body);
        free(v);
    }
    return rc;
}

static const char *inv_status(struct fleet *f, const struct inv *v)
{
    if (!f->redis || v->global)
        return "Completed";
    if (!v->pushed || !f->view_valid || f->nview == 0)
        return "InProgress";
    for (size_t i = 0; i < f->nview; i++)
        if (!f->view[i].has_applied || sid_cmp(f->view[i].applied, v->sid) < 0)
            return "InProgress";
    return "Completed";
}

static json_t *inv_summary(struct fleet *f, const struct inv *v)
{
    char sid[64] = "";

    if (v->pushed)
        sid_fmt(v->sid, sid, sizeof(sid));
    return json_pack("{s:s, s:s, s:I, s:s, s:b, s:s}", "id", v->id, "status", inv_status(f, v),
                     "created", (json_int_t)v->created_ms, "node", v->node, "pushed",
                     v->pushed || !f->redis || v->global, "stream_id", sid);
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

    json_decref(j);
    return s;
}

/* here: this node has applied it (it is in its recent list), not only
 * read it from Redis' index */
static char *inv_doc(struct fleet *f, const struct inv *v, bool here)
{
    json_t *j, *nodes;

    j = inv_summary(f, v);
    if (j != NULL)
        json_object_set_new(j, "applied_here", json_boolean(here));
    json_t *body = json_loads(v->body, 0, NULL);
    if (j == NULL || body == NULL) {
        json_decref(j);
        json_decref(body);
        return NULL;
    }
    json_object_update(j, body);
    json_decref(body);
    nodes = json_array();
    if (f->redis && !v->global) {
        for (size_t i = 0; i < f->nview; i++) {
            bool done = v->pushed && f->view[i].has_applied &&
                        sid_cmp(f->view[i].applied, v->sid) >= 0;
            json_array_append_new(nodes, json_pack("{s:s, s:b}", "node", f->view[i].name,
                                                   "applied", done));
        }
    } else {
        json_array_append_new(nodes, json_pack("{s:s, s:b}", "node", f->node, "applied", 1));
    }
    json_object_set_new(j, "nodes", nodes);
    return dump(j);
}

char *fleet_inv_json(struct fleet *f, const char *id, bool *found)
{
    struct inv *v;

    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    v = inv_find(f, id);
    *found = v != NULL;
    if (v == NULL)
        return NULL;
    return inv_doc(f, v, true);
}

struct lookup {
    struct fleet *f;
    fleet_lookup_cb *cb;
    void *arg;
    char id[32];
};

/* HMGET s3edge:inv:ID sid node created body */
static void lookup_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    struct lookup *lk = priv;
    struct fleet *f = lk->f;
    redisReply *r = reply;
    struct inv v;

    (void)ac;
    if (r == NULL || f->stopping || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        lk->cb(lk->arg, NULL, 503);
        free(lk);
        return;
    }
    for (size_t i = 0; i < 4; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING) {
            lk->cb(lk->arg, NULL, 404);
            free(lk);
            return;
        }
    }
    memset(&v, 0, sizeof(v));
    snprintf(v.id, sizeof(v.id), "%s", lk->id);
    snprintf(v.node, sizeof(v.node), "%s", r->element[1]->str);
    v.created_ms = strtoll(r->element[2]->str, NULL, 10);
    v.body = r->element[3]->str;
    v.pushed = sid_parse(r->element[0]->str, r->element[0]->len, &v.sid) == 0;
    if (!v.pushed) {
        lk->cb(lk->arg, NULL, 404);
        free(lk);
        return;
    }
    char *doc = inv_doc(f, &v, false);
    lk->cb(lk->arg, doc, doc != NULL ? 200 : 500);
    free(lk);
}

int fleet_inv_lookup(struct fleet *f, const char *id, fleet_lookup_cb *cb, void *arg)
{
    struct lookup *lk;
    size_t n = strlen(id);

    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    /* ids are ours: letters and digits */
    if (n == 0 || n >= sizeof(lk->id) || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                    "abcdefghijklmnopqrstuvwxyz0123456789") != n)
        return EDGE_ENOENT;
    if (!f->redis)
        return EDGE_ENOENT; /* a fleet of one knows all there is */
    if (!f->cmd.up)
        return EDGE_EIO;
    lk = calloc(1, sizeof(*lk));
    if (lk == NULL)
        return EDGE_ENOMEM;
    lk->f = f;
    lk->cb = cb;
    lk->arg = arg;
    memcpy(lk->id, id, n + 1);
    if (redisAsyncCommand(f->cmd.ac, lookup_cb, lk, "HMGET " KEY_INV "%s sid node created body",
                          lk->id) != REDIS_OK) {
        free(lk);
        return EDGE_EIO;
    }
    return 0;
}

char *fleet_list_json(struct fleet *f)
{
    json_t *arr = json_array();
    struct inv *v;

    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    TAILQ_FOREACH_REVERSE(v, &f->invs, inv_list, link)
        json_array_append_new(arr, inv_summary(f, v));
    return dump(json_pack("{s:o}", "invalidations", arr));
}

char *fleet_nodes_json(struct fleet *f)
{
    json_t *arr = json_array();
    char sid[64];

    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    if (!f->redis) {
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "node", f->node,
                                             "pop", f->conf->pop ? f->conf->pop : "", "version",
                                             PACKAGE_VERSION, "heartbeat",
                                             (json_int_t)purge_clock_ms(), "last_applied", "",
                                             "ready", 1));
    }
    for (size_t i = 0; f->redis && i < f->nview; i++) {
        const struct view_node *n = &f->view[i];
        sid[0] = '\0';
        if (n->has_applied)
            sid_fmt(n->applied, sid, sizeof(sid));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:b}", "node",
                                             n->name, "pop", n->pop, "version", n->version,
                                             "heartbeat", (json_int_t)n->heartbeat_ms,
                                             "last_applied", n->last_inv, "applied_id", sid,
                                             "ready", n->ready));
    }
    return dump(json_pack("{s:s, s:b, s:o}", "self", f->node, "redis_connected",
                          f->cmd.up && f->blk.up, "nodes", arr));
}

bool fleet_ready(const struct fleet *f)
{
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    return f->caught_up;
}

size_t fleet_rule_count(const struct fleet *f)
{
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    return purge_count(f->rules);
}

uint64_t fleet_removed_count(const struct fleet *f)
{
    CHECK_OBJ_NOTNULL(f, FLEET_MAGIC);
    return f->removed;
}

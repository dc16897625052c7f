/*
 * purge.c: the invalidation rule set (see purge.h).
 *
 * Lifecycle of an entry: created by the first rule with its kind and
 * pattern, its stamps raised by later ones, dropped by purge_expire() when
 * both stamps are older than the lifetime. The journal (STATE_DIR/purge.rules)
 * has one line per rule applied: "STAMP H|S E|P|T PATTERN", the pattern
 * percent-escaped; purge_new() replays it and rewrites it with the live
 * entries only.
 */
#include "config.h"

#include "purge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "timeutil.h"
#include "vas.h"

#define JOURNAL_NAME "purge.rules"
#define JOURNAL_LINE_MAX (PURGE_PATTERN_MAX * 3 + 64)

struct entry {
    struct entry *next;
    uint64_t hash;
    enum purge_kind kind;
    int64_t hard_ms; /* 0: none */
    int64_t soft_ms; /* 0: none */
    size_t len;
    char pattern[]; /* NUL-terminated */
};

struct purge {
    unsigned magic;
#define PURGE_MAGIC 0x70726765U
    struct entry **tab;
    size_t nbuckets; /* power of two */
    size_t nentries;
    int64_t lifetime_ms;
    /* how many prefix entries have each length: lookups probe only the
     * lengths present */
    unsigned *plen;
    size_t plen_max; /* longest prefix present */
    char *journal;   /* path, NULL: memory only */
    FILE *jf;
    size_t jlines;
};

/* ---- clock ---- */

static int64_t clock_anchor;  /* purge clock at clock_mono0 */
static uint64_t clock_mono0;
static bool clock_set;

int64_t purge_clock_ms(void)
{
    uint64_t mono = time_mono_ms();

    if (!clock_set) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        clock_anchor = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        clock_mono0 = mono;
        clock_set = true;
    }
    return clock_anchor + (int64_t)(mono - clock_mono0);
}

void purge_clock_floor(int64_t ms)
{
    int64_t now = purge_clock_ms();

    if (now <= ms)
        clock_anchor += ms - now + 1;
}

/* ---- hash table ---- */

static uint64_t hash_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL; /* FNV-1a */
}

static uint64_t hash_start(enum purge_kind kind)
{
    return hash_step(0xcbf29ce484222325ULL, (unsigned char)kind);
}

static uint64_t hash_of(enum purge_kind kind, const char *s, size_t n)
{
    uint64_t h = hash_start(kind);

    for (size_t i = 0; i < n; i++)
        h = hash_step(h, (unsigned char)s[i]);
    return h;
}

static struct entry *find(const struct purge *p, enum purge_kind kind, const char *s, size_t n,
                          uint64_t h)
{
    for (struct entry *e = p->tab[h & (p->nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->kind == kind && e->len == n && memcmp(e->pattern, s, n) == 0)
            return e;
    return NULL;
}

static int grow(struct purge *p)
{
    size_t nb = p->nbuckets * 2;
    struct entry **t = calloc(nb, sizeof(*t));

    if (t == NULL)
        return EDGE_ENOMEM;
    for (size_t i = 0; i < p->nbuckets; i++) {
        struct entry *e = p->tab[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = t[e->hash & (nb - 1)];
            t[e->hash & (nb - 1)] = e;
        }
    }
    free(p->tab);
    p->tab = t;
    p->nbuckets = nb;
    return 0;
}

static void plen_add(struct purge *p, size_t len)
{
    p->plen[len]++;
    if (len > p->plen_max)
        p->plen_max = len;
}

static void plen_del(struct purge *p, size_t len)
{
    AN(p->plen[len]);
    p->plen[len]--;
    while (p->plen_max > 0 && p->plen[p->plen_max] == 0)
        p->plen_max--;
}

static void entry_unlink_all(struct purge *p)
{
    for (size_t i = 0; i < p->nbuckets; i++) {
        struct entry *e = p->tab[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        p->tab[i] = NULL;
    }
    memset(p->plen, 0, (PURGE_PATTERN_MAX + 1) * sizeof(*p->plen));
    p->plen_max = 0;
    p->nentries = 0;
}

/* Apply in memory; 0 or EDGE_ENOMEM. */
static int apply(struct purge *p, enum purge_kind kind, const char *s, size_t n, bool soft,
                 int64_t stamp)
{
    uint64_t h = hash_of(kind, s, n);
    struct entry *e = find(p, kind, s, n, h);

    if (e == NULL) {
        if (p->nentries >= PURGE_MAX_ENTRIES) {
            /* too many distinct patterns: one rule over everything
             * replaces them (conservative: everything older is a miss) */
            int64_t all = stamp;
            for (size_t i = 0; i < p->nbuckets; i++)
                for (e = p->tab[i]; e != NULL; e = e->next)
                    if (e->hard_ms > all)
                        all = e->hard_ms;
            entry_unlink_all(p);
            kind = PURGE_PREFIX;
            s = "";
            n = 0;
            soft = false;
            stamp = all;
            h = hash_of(kind, s, n);
        }
        if (p->nentries >= p->nbuckets && grow(p) < 0)
            return EDGE_ENOMEM;
        e = calloc(1, sizeof(*e) + n + 1);
        if (e == NULL)
            return EDGE_ENOMEM;
        e->hash = h;
        e->kind = kind;
        e->len = n;
        memcpy(e->pattern, s, n);
        e->next = p->tab[h & (p->nbuckets - 1)];
        p->tab[h & (p->nbuckets - 1)] = e;
        p->nentries++;
        if (kind == PURGE_PREFIX)
            plen_add(p, n);
    }
    if (soft) {
        if (stamp > e->soft_ms)
            e->soft_ms = stamp;
    } else if (stamp > e->hard_ms) {
        e->hard_ms = stamp;
    }
    return 0;
}

/* ---- journal ---- */

static const char kind_char[] = {'E', 'P', 'T'};

static int journal_write(FILE *f, enum purge_kind kind, const char *s, size_t n, bool soft,
                         int64_t stamp)
{
    if (fprintf(f, "%lld %c %c ", (long long)stamp, soft ? 'S' : 'H', kind_char[kind]) < 0)
        return EDGE_EIO;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* '.' ends the pattern: escaped inside it */
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '.') {
            if (fprintf(f, "%%%02X", c) < 0)
                return EDGE_EIO;
        } else if (putc(c, f) == EOF) {
            return EDGE_EIO;
        }
    }
    /* a '.' ends the pattern so that an empty one still has a field */
    return fputs(".\n", f) == EOF ? EDGE_EIO : 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One journal line; 0 or EDGE_EINVAL (a torn last line is skipped). */
static int journal_parse(const char *line, enum purge_kind *kind, char *pat, size_t *n, bool *soft,
                         int64_t *stamp)
{
    long long st;
    char hs, kc;
    int off = 0;
    const char *q;
    size_t len = 0;

    if (sscanf(line, "%lld %c %c %n", &st, &hs, &kc, &off) != 3 || off == 0)
        return EDGE_EINVAL;
    if ((hs != 'H' && hs != 'S') || st <= 0)
        return EDGE_EINVAL;
    q = memchr(kind_char, kc, sizeof(kind_char));
    if (q == NULL)
        return EDGE_EINVAL;
    *kind = (enum purge_kind)(q - kind_char);
    for (q = line + off; *q != '\0' && *q != '.'; q++) {
        int c = (unsigned char)*q;
        if (c == '%') {
            int hi = hexval(q[1]), lo = hi < 0 ? -1 : hexval(q[2]);
            if (lo < 0)
                return EDGE_EINVAL;
            c = hi * 16 + lo;
            q += 2;
        } else if (c <= 0x20 || c >= 0x7f) {
            return EDGE_EINVAL;
        }
        if (len == PURGE_PATTERN_MAX)
            return EDGE_EINVAL;
        pat[len++] = (char)c;
    }
    if (*q != '.' || (q[1] != '\n' && q[1] != '\0'))
        return EDGE_EINVAL;
    *n = len;
    *soft = hs == 'S';
    *stamp = st;
    return 0;
}

static int journal_sync(FILE *f)
{
    if (fflush(f) != 0 || fdatasync(fileno(f)) != 0)
        return EDGE_EIO;
    return 0;
}

/* Rewrite the journal with the live entries (temporary file, rename). */
static int journal_compact(struct purge *p)
{
    char tmp[4096];
    FILE *f;
    int rc = 0;

    if (p->journal == NULL)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.tmp", p->journal);
    f = fopen(tmp, "we");
    if (f == NULL)
        return EDGE_EIO;
    p->jlines = 0;
    for (size_t i = 0; i < p->nbuckets && rc == 0; i++) {
        for (struct entry *e = p->tab[i]; e != NULL && rc == 0; e = e->next) {
            if (e->hard_ms)
                rc = journal_write(f, e->kind, e->pattern, e->len, false, e->hard_ms);
            if (rc == 0 && e->soft_ms)
                rc = journal_write(f, e->kind, e->pattern, e->len, true, e->soft_ms);
            p->jlines += 2;
        }
    }
    if (rc == 0)
        rc = journal_sync(f);
    if (fclose(f) != 0)
        rc = EDGE_EIO;
    if (rc == 0 && rename(tmp, p->journal) != 0)
        rc = EDGE_EIO;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    if (p->jf)
        fclose(p->jf);
    p->jf = fopen(p->journal, "ae");
    return p->jf == NULL ? EDGE_EIO : 0;
}

static int journal_load(struct purge *p, char *err, size_t errlen)
{
    FILE *f = fopen(p->journal, "re");
    char *line, *pat;
    unsigned lineno = 0;
    int64_t newest = 0;

    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s: %s", p->journal, strerror(errno));
        return -1;
    }
    line = malloc(JOURNAL_LINE_MAX);
    pat = malloc(PURGE_PATTERN_MAX + 1);
    if (line == NULL || pat == NULL) {
        free(line);
        free(pat);
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    while (fgets(line, JOURNAL_LINE_MAX, f) != NULL) {
        enum purge_kind kind;
        size_t n;
        bool soft;
        int64_t stamp;
        lineno++;
        if (journal_parse(line, &kind, pat, &n, &soft, &stamp) < 0)
            continue; /* a line torn by a crash: the rule was not acknowledged */
        if (apply(p, kind, pat, n, soft, stamp) < 0) {
            snprintf(err, errlen, "out of memory");
            free(line);
            free(pat);
            fclose(f);
            return -1;
        }
        if (stamp > newest)
            newest = stamp;
    }
    free(line);
    free(pat);
    fclose(f);
    /* a fetch that starts from now on is newer than every loaded rule,
     * whatever the wall clock did while the process was down */
    purge_clock_floor(newest);
    return 0;
}

/* ---- API ---- */

struct purge *purge_new(const char *state_dir, int64_t lifetime_ms, char *err, size_t errlen)
{
    struct purge *p = calloc(1, sizeof(*p));

    if (p == NULL)
        goto nomem;
    p->magic = PURGE_MAGIC;
    p->lifetime_ms = lifetime_ms;
    p->nbuckets = 64;
    p->tab = calloc(p->nbuckets, sizeof(*p->tab));
    p->plen = calloc(PURGE_PATTERN_MAX + 1, sizeof(*p->plen));
    if (p->tab == NULL || p->plen == NULL)
        goto nomem;
    if (state_dir != NULL) {
        size_t n = strlen(state_dir) + sizeof(JOURNAL_NAME) + 2;
        p->journal = malloc(n);
        if (p->journal == NULL)
            goto nomem;
        snprintf(p->journal, n, "%s/%s", state_dir, JOURNAL_NAME);
        if (journal_load(p, err, errlen) < 0)
            goto fail;
        purge_expire(p, purge_clock_ms());
        if (journal_compact(p) < 0) {
            snprintf(err, errlen, "%s: cannot write: %s", p->journal, strerror(errno));
            goto fail;
        }
    }
    return p;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    purge_free(p);
    return NULL;
}

void purge_free(struct purge *p)
{
    if (p == NULL)
        return;
    if (p->tab)
        entry_unlink_all(p);
    free(p->tab);
    free(p->plen);
    if (p->jf)
        fclose(p->jf);
    free(p->journal);
    p->magic = 0;
    free(p);
}

int purge_add(struct purge *p, enum purge_kind kind, const char *pattern, size_t len, bool soft,
              int64_t stamp_ms)
{
    int rc;

    CHECK_OBJ_NOTNULL(p, PURGE_MAGIC);
    if (len > PURGE_PATTERN_MAX)
        return EDGE_ETOOLONG;
    rc = apply(p, kind, pattern, len, soft, stamp_ms);
    if (rc < 0)
        return rc;
    if (p->jf != NULL) {
        p->jlines++;
        if (journal_write(p->jf, kind, pattern, len, soft, stamp_ms) < 0 ||
            journal_sync(p->jf) < 0)
            return EDGE_EIO;
    }
    return 0;
}

static void consider(const struct entry *e, int64_t *hard, int64_t *soft)
{
    if (e->hard_ms > *hard)
        *hard = e->hard_ms;
    if (e->soft_ms > *soft)
        *soft = e->soft_ms;
}

enum purge_verdict purge_match(const struct purge *p, const char *path, size_t path_len,
                               const char *const *tags, size_t ntags, int64_t fetch_ms,
                               int64_t *soft_ms)
{
    int64_t hard = 0, soft = 0;
    const struct entry *e;

    CHECK_OBJ_NOTNULL(p, PURGE_MAGIC);
    if (p->nentries == 0)
        return PURGE_VALID;
    e = find(p, PURGE_EXACT, path, path_len, hash_of(PURGE_EXACT, path, path_len));
    if (e != NULL)
        consider(e, &hard, &soft);
    /* prefixes: one probe per length present, hashing the path as we go */
    uint64_t h = hash_start(PURGE_PREFIX);
    size_t lim = path_len < p->plen_max ? path_len : p->plen_max;
    for (size_t i = 0; i <= lim; i++) {
        if (p->plen[i] > 0 && (e = find(p, PURGE_PREFIX, path, i, h)) != NULL)
            consider(e, &hard, &soft);
        if (i < path_len)
            h = hash_step(h, (unsigned char)path[i]);
    }
    for (size_t t = 0; t < ntags; t++) {
        const char *s = tags[t];
        while (s != NULL && *s != '\0') {
            size_t n;
            while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
            n = strcspn(s, " \t,");
            if (n > 0 && (e = find(p, PURGE_TAG, s, n, hash_of(PURGE_TAG, s, n))) != NULL)
                consider(e, &hard, &soft);
            s += n;
        }
    }
    /* a fetch that started in the very millisecond of a rule may have
     * started before it: not valid */
    if (hard != 0 && fetch_ms <= hard)
        return PURGE_HARD;
    if (soft != 0 && fetch_ms <= soft) {
        if (soft_ms)
            *soft_ms = soft;
        return PURGE_SOFT;
    }
    return PURGE_VALID;
}

void purge_expire(struct purge *p, int64_t now_ms)
{
    int64_t limit = now_ms - p->lifetime_ms;

    CHECK_OBJ_NOTNULL(p, PURGE_MAGIC);
    for (size_t i = 0; i < p->nbuckets; i++) {
        struct entry **pe = &p->tab[i];
        while (*pe != NULL) {
            struct entry *e = *pe;
            if (e->hard_ms < limit && e->soft_ms < limit) {
                *pe = e->next;
                if (e->kind == PURGE_PREFIX)
                    plen_del(p, e->len);
                p->nentries--;
                free(e);
            } else {
                pe = &e->next;
            }
        }
    }
    if (p->jf != NULL && p->jlines > 1024 && p->jlines > 4 * p->nentries)
        (void)journal_compact(p);
}

size_t purge_count(const struct purge *p)
{
    CHECK_OBJ_NOTNULL(p, PURGE_MAGIC);
    return p->nentries;
}

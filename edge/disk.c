/*
 * disk.c: the disk cache. See disk.h for what is stored, when and why.
 *
 * Index entries (struct dentry) live on the loop only:
 *   disk_store: WRITING (pinned in S3-FIFO, so its room is held while the
 *     write runs) -> write job -> READY (unpinned, found by lookups), or
 *     freed when the write failed.
 *   scan: READY from the start (from_scan).
 *   READY -> freed by eviction, by a newer file of the same key, by a
 *     failed load or an unusable freshness (the file is unlinked by a
 *     job), or by disk_close (the file stays).
 *   A WRITING entry dropped meanwhile becomes DEAD: the completion of its
 *     write deletes the file and frees it.
 *
 * Disk loads (struct dload): disk_lookup -> OPEN job (header and block 0
 *   read and checked) -> object STREAMING -> one READ job per further
 *   block -> object COMPLETE, inserted in the memory cache -> freed. A
 *   load has at most one job in flight; a stop while one is in flight
 *   marks the load stopped and the job's completion frees it.
 *
 * Jobs (struct djob) wait in jq_hi (opens, reads, unlinks) or jq_lo
 *   (writes), run on a pool thread, then wait on done_q until the loop's
 *   eventfd callback runs their completion. A job owns what its thread
 *   touches: chunk references, buffers, a file descriptor; the thread
 *   never looks at an entry, a load or an object.
 *
 * File names: DIR/XX/GGGGGGGGGGGGGGGG-IIIIIIII.s3e, G the file's generation
 *   (wall-clock microseconds, strictly increasing in a process: between
 *   two files of one key the higher is newer), I the instance that wrote
 *   it (random per process start, so the scan knows this run's own files
 *   and skips them), XX a hash of both. Temp files are DIR/tmp/NAME.tmp;
 *   at start DIR/tmp becomes DIR/stale-I and the scan empties it.
 */
#include "config.h"

#include "disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cache.h"
#include "chunk.h"
#include "diskfmt.h"
#include "err.h"
#include "freshness.h"
#include "log.h"
#include "s3fifo.h"
#include "server.h"
#include "timeutil.h"
#include "vas.h"

/* The body is checksummed per block of this size: the chunk size of the
 * memory store, so that a block read from disk is one chunk. */
/* Bytes of objects waiting to be written: a quarter of the memory budget,
 * within these bounds; beyond it writes are skipped (counted). Objects
 * waiting for their write may have left the memory store, so this bounds
 * what a slow disk holds in memory outside the budget. One object is
 * always accepted. */
#define DISK_WRITE_QUEUE_MIN (16ull * 1024 * 1024)
#define DISK_WRITE_QUEUE_MAX (256ull * 1024 * 1024)
/* Blocks of one stream write waiting for the disk: past the write queue's
 * size, read-ahead of its object stops; past this (and the fetches in
 * flight), the file is given up. */
#define DISK_STREAM_QUEUE_MAX(d)                                                                   \
    ((d)->pending_write_max * 4 > DISK_WRITE_QUEUE_MAX ? (d)->pending_write_max * 4             \
                                                        : DISK_WRITE_QUEUE_MAX)
/* First read of a header; longer ones (many blocks, long keys) read again. */
#define DISK_HEADER_READ (64u * 1024)
/* Scan results handed to the loop at a time. */
#define DISK_SCAN_BATCH 256
/* A condition already logged is logged again at most this often. */
#define DISK_LOG_INTERVAL_MS (60u * 1000)
#define DISK_NAME_LEN 29 /* 16 hex, '-', 8 hex, ".s3e" */
/* Buffers per pwritev: 16 MiB of 1 MiB chunks between checks for a stop. */
#define DISK_WRITE_IOV 16
#define DISK_PATH_CAP 4096

/* failure reasons handed to obj_fail (static strings, compared by tests) */
static const char DISK_ERR_READ[] = "disk cache read failed";
static const char DISK_ERR_STOPPED[] = "stopped";

enum dentry_state { DE_WRITING = 0, DE_READY, DE_DEAD };

struct dload;

struct dentry {
    unsigned magic;
#define DENTRY_MAGIC 0x64656e74U
    enum dentry_state state;
    bool from_scan;          /* a file of an earlier run */
    bool has_validator;      /* ETag or Last-Modified: a stale copy can be revalidated */
    char *key;
    size_t key_len;
    uint64_t hash;
    uint64_t gen;
    uint32_t inst;
    uint64_t size;           /* charged: the file size rounded up to 4 KiB */
    int64_t resp_wall_ms;    /* when the origin answered */
    int64_t fetch_ms;        /* when its fetch started (purge clock) */
    struct fresh_decision fd;
    struct dload *loading;   /* a load in progress, shared by lookups */
    struct dentry *hnext;
    struct s3fifo_node node;
};

enum djob_kind {
    DJ_WRITE = 0, /* a whole object from memory, or the end of a stream write */
    DJ_WBLOCK,    /* one block of a stream write, at its offset in the temp file */
    DJ_TREAD,     /* one block of a stream write read back from its temp file */
    DJ_OPEN,
    DJ_READ,
    DJ_UNLINK,
    DJ_SCAN_BATCH,
    DJ_SCAN_DONE
};

struct dstream;

struct scan_item {
    char *key;
    size_t key_len;
    uint64_t gen;
    uint32_t inst;
    uint64_t size;
    int64_t resp_wall_ms;
    int64_t fetch_ms;
    struct fresh_decision fd;
    bool has_validator;
};

struct djob {
    unsigned magic;
#define DJOB_MAGIC 0x646a6f62U
    enum djob_kind kind;
    TAILQ_ENTRY(djob) link;
    int err;                 /* errno of a failure, 0: none */
    const char *op;          /* what failed, for the log */
    bool corrupt;            /* the file is not valid (as opposed to an I/O error) */
    uint64_t gen;
    uint32_t inst;
    /* DJ_WRITE, DJ_WBLOCK */
    struct dstream *ds;      /* a stream write (WRITE: its end) */
    TAILQ_ENTRY(djob) dslink; /* WBLOCK: in its stream's list while out */
    bool tmp;                /* UNLINK: the temp file */
    uint32_t crc;            /* WBLOCK: the block's checksum */
    struct obj *o;           /* READ of a windowed load: a reference */
    struct dentry *e;
    uint8_t *hdr;
    struct diskfmt_meta meta; /* sizes only: its strings are in hdr */
    struct chunk **chunks;
    size_t nchunks;
    uint64_t held;           /* memory the chunks hold (the object's o->mem) */
    /* DJ_OPEN, DJ_READ */
    struct dload *ld;
    const char *key;         /* OPEN: the key the header must carry (the object's, immutable) */
    size_t key_len;
    int fd;                  /* OPEN: the file opened; READ: the file to read */
    uint8_t *hbuf;           /* OPEN: the header read */
    struct diskfmt_meta rmeta; /* OPEN: decoded; READ: the load's, for the checksum */
    uint32_t block;
    struct chunk *ch;
    /* DJ_SCAN_BATCH, DJ_SCAN_DONE */
    struct scan_item *items;
    size_t nitems;
    uint64_t discarded;
    char why[160];           /* the first discarded file and why */
    uint64_t scan_ms;
};

TAILQ_HEAD(djob_list, djob);

struct dload {
    unsigned magic;
#define DLOAD_MAGIC 0x646c6f64U
    struct disk *d;
    struct server_task task;
    struct dentry *e;        /* NULL once the entry is gone */
    struct obj *o;           /* ref */
    int fd;
    uint8_t *hbuf;
    struct diskfmt_meta meta;
    uint32_t next;           /* next block to read */
    uint32_t done;           /* blocks read */
    unsigned inflight;       /* jobs submitted and not back */
    bool stopped;
    /* An object larger than the memory store takes is not read whole:
     * the load is its source and reads the blocks its readers ask for
     * (read-ahead included), and blocks no reader needs go (windowed).
     * The object then holds the load (through src), not the other way. */
    bool windowed;
    bool dropped;            /* windowed: the file turned out bad; blocks come from the fallback */
    struct dsrc *src;
};

/* The source of a windowed load's object: outlives the load (the object
 * frees it), points at the load while there is one. */
struct dsrc {
    unsigned magic;
#define DSRC_MAGIC 0x64737263U
    struct dload *ld;
};

/*
 * A stream write: an object too large for the memory store (disk_bound)
 * goes to its file block by block as its blocks complete, each written at
 * its offset in the temp file by a pool thread, which also computes its
 * checksum; when every block is there the header (with the checksums) is
 * written and the file renamed into place, as for a whole write. The
 * object holds the stream as its sink (no reference either way); the
 * stream lets go of the object when it fails or ends. Anything short of
 * every block (the object failed or was freed, a write failed, the write
 * queue was full) gives the file up: the temp file is deleted once the
 * writes in flight are back.
 */
enum { DS_B_NONE = 0, DS_B_QUEUED, DS_B_WRITTEN };

struct dstream {
    unsigned magic;
#define DSTREAM_MAGIC 0x64737472U
    struct disk *d;
    struct server_task task;
    struct obj *o;           /* NULL once let go of */
    struct dentry *e;        /* its entry, WRITING (held by the final job at the end) */
    uint8_t *hdr;            /* the header; block checksums filled in as blocks land */
    struct diskfmt_meta meta; /* sizes only: its strings are in hdr */
    uint64_t gen;
    uint32_t inst;
    uint32_t nwritten;       /* blocks written */
    unsigned inflight;       /* block writes not back */
    uint64_t held;           /* bytes of blocks queued or being written */
    /* per block: not handed over, queued (its chunk in a WBLOCK job of
     * `queued`), or written (its checksum in crcs): a block the object
     * dropped is brought back from there (ds_sink_want) */
    uint8_t *bstate;
    uint32_t *crcs;
    struct djob_list queued;
    bool failed;             /* given up (or over): the temp file goes */
    bool finishing;          /* the final job was submitted */
    bool in_place;           /* the file has its name: read back from there */
    bool tracked;
};

/* Block reads of one load in flight at once: blocks land in any order (the
 * object places them by index), so a large hit is not one pread latency
 * per block. */
#define DLOAD_PARALLEL 4

struct rlog {
    uint64_t last_ms;
    uint64_t suppressed;
    bool logged;
};

struct disk {
    unsigned magic;
#define DISK_MAGIC 0x6469736bU
    struct server *srv;
    char *dir;
    bool fsync;
    uint32_t inst;
    uint64_t last_gen;
    int lock_fd;
    uint64_t seed;
    struct dentry **buckets;
    size_t nbuckets;         /* power of two */
    size_t nentries;         /* in the hash, any state */
    struct s3fifo *policy;
    struct disk_stats st;
    uint64_t pending_write_bytes; /* memory held by writes not done (o->mem) */
    uint64_t pending_write_max;
    unsigned nloads;
    bool closing;

    /* the pool; the queues and writers under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct djob_list jq_hi, jq_lo;
    unsigned nthreads, max_writers, writers;
    pthread_t *threads;
    unsigned started;
    atomic_bool stop;

    /* completions, under cmu */
    pthread_mutex_t cmu;
    struct djob_list done_q;
    int efd;
    struct event *ev;

    pthread_t scan_thread;
    bool scan_started;

    struct rlog log_nospace, log_write, log_read, log_corrupt, log_scan;
};

/* ================================================================ helpers */

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Log a condition at once the first time, then at most once per interval
 * with the number of times it was not logged. */
static void rlog(struct rlog *r, enum conf_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void rlog(struct rlog *r, enum conf_log_level lvl, const char *fmt, ...)
{
    uint64_t now = time_mono_ms();
    char msg[1024];
    va_list ap;

    if (r->logged && now - r->last_ms < DISK_LOG_INTERVAL_MS) {
        r->suppressed++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (r->suppressed > 0)
        log_msg(lvl, "%s (and %" PRIu64 " more like it since the last report)", msg,
                r->suppressed);
    else
        log_msg(lvl, "%s%s", msg,
                r->logged ? "" : " (logged at most once a minute from now on)");
    r->logged = true;
    r->last_ms = now;
    r->suppressed = 0;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(const struct disk *d, const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ d->seed;

    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)k[i];
        h *= 0x100000001b3ULL;
    }
    return mix64(h);
}

static unsigned subdir_of(uint64_t gen, uint32_t inst)
{
    return (unsigned)(mix64(gen ^ ((uint64_t)inst << 32)) & 0xffu);
}

static void file_name(uint64_t gen, uint32_t inst, char *out)
{
    snprintf(out, DISK_NAME_LEN + 1, "%016" PRIx64 "-%08" PRIx32 ".s3e", gen, inst);
}

static void file_path(const struct disk *d, uint64_t gen, uint32_t inst, char *out)
{
    char name[DISK_NAME_LEN + 1];

    file_name(gen, inst, name);
    snprintf(out, DISK_PATH_CAP, "%s/%02x/%s", d->dir, subdir_of(gen, inst), name);
}

static void tmp_path(const struct disk *d, uint64_t gen, uint32_t inst, char *out)
{
    snprintf(out, DISK_PATH_CAP, "%s/tmp/%016" PRIx64 "-%08" PRIx32 ".tmp", d->dir, gen, inst);
}

/* "GGGGGGGGGGGGGGGG-IIIIIIII.s3e" -> gen, inst */
static bool parse_name(const char *s, uint64_t *gen, uint32_t *inst)
{
    uint64_t g = 0;
    uint32_t in = 0;

    if (strlen(s) != DISK_NAME_LEN || s[16] != '-' || strcmp(s + 25, ".s3e") != 0)
        return false;
    for (int i = 0; i < 25; i++) {
        if (i == 16)
            continue;
        char c = s[i];
        unsigned v;
        if (c >= '0' && c <= '9')
            v = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = (unsigned)(c - 'a' + 10);
        else
            return false;
        if (i < 16)
            g = g << 4 | v;
        else
            in = in << 4 | v;
    }
    *gen = g;
    *inst = in;
    return true;
}

static uint64_t round_up4k(uint64_t n)
{
    return (n + DISKFMT_ALIGN - 1) / DISKFMT_ALIGN * DISKFMT_ALIGN;
}

/* ================================================================ the pool */

static struct djob *job_new(enum djob_kind kind)
{
    struct djob *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->magic = DJOB_MAGIC;
    j->kind = kind;
    j->fd = -1;
    return j;
}

static void job_free(struct djob *j)
{
    CHECK_OBJ_NOTNULL(j, DJOB_MAGIC);
    if (j->chunks != NULL) {
        for (size_t i = 0; i < j->nchunks; i++)
            chunk_unref(j->chunks[i]);
        free(j->chunks);
    }
    if (j->ch != NULL)
        chunk_unref(j->ch);
    if (j->o != NULL)
        obj_unref(j->o);
    if (j->fd >= 0 && j->kind == DJ_OPEN)
        close(j->fd);
    free(j->hdr);
    free(j->hbuf);
    for (size_t i = 0; i < j->nitems; i++)
        free(j->items[i].key);
    free(j->items);
    j->magic = 0;
    free(j);
}

static void submit(struct disk *d, struct djob *j)
{
    CHECK_OBJ_NOTNULL(j, DJOB_MAGIC);
    AZ(pthread_mutex_lock(&d->mu));
    if (j->kind == DJ_WRITE || j->kind == DJ_WBLOCK)
        TAILQ_INSERT_TAIL(&d->jq_lo, j, link); /* DJ_TREAD is a read: never behind writes */
    else
        TAILQ_INSERT_TAIL(&d->jq_hi, j, link);
    AZ(pthread_cond_signal(&d->cv));
    AZ(pthread_mutex_unlock(&d->mu));
}

/* from any thread: hand a finished job to the loop */
static void complete(struct disk *d, struct djob *j)
{
    bool was_empty;
    uint64_t one = 1;

    AZ(pthread_mutex_lock(&d->cmu));
    was_empty = TAILQ_EMPTY(&d->done_q);
    TAILQ_INSERT_TAIL(&d->done_q, j, link);
    AZ(pthread_mutex_unlock(&d->cmu));
    /* the loop takes the whole list at once: one wake-up per batch */
    if (was_empty && write(d->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        WRONG("eventfd write");
}

static void run_job(struct disk *d, struct djob *j);

static void *worker_main(void *arg)
{
    struct disk *d = arg;

    AZ(pthread_mutex_lock(&d->mu));
    for (;;) {
        struct djob *j = NULL;
        while (!atomic_load(&d->stop)) {
            if ((j = TAILQ_FIRST(&d->jq_hi)) != NULL) {
                TAILQ_REMOVE(&d->jq_hi, j, link);
                break;
            }
            /* reads never wait behind writes: one thread is kept from them */
            if (d->writers < d->max_writers && (j = TAILQ_FIRST(&d->jq_lo)) != NULL) {
                TAILQ_REMOVE(&d->jq_lo, j, link);
                d->writers++;
                break;
            }
            AZ(pthread_cond_wait(&d->cv, &d->mu));
        }
        if (j == NULL)
            break;
        AZ(pthread_mutex_unlock(&d->mu));
        run_job(d, j);
        AZ(pthread_mutex_lock(&d->mu));
        if (j->kind == DJ_WRITE || j->kind == DJ_WBLOCK) {
            d->writers--;
            AZ(pthread_cond_signal(&d->cv));
        }
        complete(d, j);
    }
    AZ(pthread_mutex_unlock(&d->mu));
    return NULL;
}

/* ================================================================ jobs, on a pool thread */

/* 0, -errno, or 1 at end of file before n bytes */
static int pread_all(int fd, void *p, size_t n, off_t off)
{
    uint8_t *b = p;

    while (n > 0) {
        ssize_t r = pread(fd, b, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return 1;
        b += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static void job_fail(struct djob *j, int err, const char *op)
{
    j->err = err > 0 ? err : -err;
    j->op = op;
}

static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -errno;
    /* a filesystem without RENAME_NOREPLACE: link() refuses to replace too */
    if (link(from, to) < 0)
        return -errno;
    unlink(from);
    return 0;
}

static void run_write(struct disk *d, struct djob *j)
{
    char tmp[DISK_PATH_CAP], path[DISK_PATH_CAP];
    const struct diskfmt_meta *m = &j->meta;
    static const uint8_t zeros[DISKFMT_ALIGN];
    int fd, rc;

    tmp_path(d, j->gen, j->inst, tmp);
    file_path(d, j->gen, j->inst, path);

    /* the block checksums go into the header, so they come first (a
     * stream write has them from its block writes) */
    if (j->ds == NULL) {
        uint32_t blk = 0, crc = diskfmt_block_crc_init(m->gen, 0);
        uint64_t in_blk = 0;
        for (size_t i = 0; i < j->nchunks; i++) {
            const uint8_t *p = j->chunks[i]->data;
            size_t n = chunk_len(j->chunks[i]);
            while (n > 0) {
                size_t take = m->block_size - in_blk;
                if (take > n)
                    take = n;
                crc = crc32c(crc, p, take);
                p += take;
                n -= take;
                in_blk += take;
                if (in_blk == m->block_size) {
                    diskfmt_put_block_crc(j->hdr, m, blk++, crc);
                    in_blk = 0;
                    if (blk < m->nblocks)
                        crc = diskfmt_block_crc_init(m->gen, blk);
                }
            }
        }
        if (in_blk > 0)
            diskfmt_put_block_crc(j->hdr, m, blk++, crc);
        AN(blk == m->nblocks);
        diskfmt_seal(j->hdr, m->header_len);
    }

    fd = open(tmp, j->ds == NULL ? O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC : O_WRONLY | O_CLOEXEC,
              0644);
    if (fd < 0) {
        job_fail(j, errno, "open");
        if (j->ds != NULL)
            unlink(tmp);
        return;
    }
    if (j->ds != NULL) {
        /* the blocks are all there: the file has its full size already */
        struct stat st;
        if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != diskfmt_file_size(m)) {
            job_fail(j, EIO, "short stream file");
            goto fail;
        }
    }
    /* header, padding and body in as few writes as the iovec allows: a
     * small object is one pwritev */
    struct iovec iov[DISK_WRITE_IOV];
    size_t next = 0; /* next chunk to put in iov */
    off_t off = 0;
    int niov = 0;
    iov[niov++] = (struct iovec){j->hdr, m->header_len};
    if (m->data_off > m->header_len)
        iov[niov++] = (struct iovec){(void *)zeros, m->data_off - m->header_len};
    for (;;) {
        while (niov < DISK_WRITE_IOV && next < j->nchunks) {
            iov[niov++] = (struct iovec){j->chunks[next]->data, chunk_len(j->chunks[next])};
            next++;
        }
        if (niov == 0)
            break;
        if (atomic_load(&d->stop)) {
            job_fail(j, ECANCELED, "write");
            goto fail;
        }
        ssize_t w = pwritev(fd, iov, niov, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            job_fail(j, w < 0 ? errno : EIO, "write");
            goto fail;
        }
        off += w;
        /* drop what was written, keep the rest of a short write */
        int k = 0;
        size_t left = (size_t)w;
        while (k < niov && left >= iov[k].iov_len)
            left -= iov[k++].iov_len;
        if (k < niov) {
            iov[k].iov_base = (uint8_t *)iov[k].iov_base + left;
            iov[k].iov_len -= left;
        }
        memmove(iov, iov + k, (size_t)(niov - k) * sizeof(*iov));
        niov -= k;
    }
    AN((uint64_t)off == (j->ds != NULL ? m->data_off : diskfmt_file_size(m)));
    /* the name must only ever point at complete data, power loss included */
    if (d->fsync && fdatasync(fd) < 0) {
        job_fail(j, errno, "fdatasync");
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        job_fail(j, errno, "close");
        goto fail;
    }
    fd = -1;
    rc = rename_noreplace(tmp, path);
    if (rc == -ENOENT) {
        /* the first file of its subdirectory */
        char sub[DISK_PATH_CAP];
        snprintf(sub, sizeof(sub), "%s/%02x", d->dir, subdir_of(j->gen, j->inst));
        if (mkdir(sub, 0755) < 0 && errno != EEXIST) {
            job_fail(j, errno, "mkdir");
            goto fail;
        }
        rc = rename_noreplace(tmp, path);
    }
    if (rc < 0) {
        job_fail(j, rc, "rename");
        goto fail;
    }
    return;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
}

/* One block of a stream write: its checksum, and its bytes at their
 * place in the temp file (which the first of them creates). */
static void run_wblock(struct disk *d, struct djob *j)
{
    char tmp[DISK_PATH_CAP];
    const struct diskfmt_meta *m = &j->meta;
    const uint8_t *p = j->ch->data;
    size_t n = chunk_len(j->ch);
    off_t off = (off_t)(m->data_off + diskfmt_block_off(m, j->block));
    int fd;

    tmp_path(d, j->gen, j->inst, tmp);
    j->crc = crc32c(diskfmt_block_crc_init(m->gen, j->block), p, n);
    fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        job_fail(j, errno, "open");
        return;
    }
    while (n > 0) {
        if (atomic_load(&d->stop)) {
            job_fail(j, ECANCELED, "write");
            break;
        }
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            job_fail(j, w < 0 ? errno : EIO, "write");
            break;
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    if (close(fd) < 0 && j->err == 0)
        job_fail(j, errno, "close");
}

/* A block of a stream write read back from its temp file, checked
 * against the checksum its write computed. */
static void run_tread(struct disk *d, struct djob *j)
{
    char tmp[DISK_PATH_CAP];
    uint32_t len = (uint32_t)chunk_room(j->ch);
    int fd, rc;

    if (j->tmp)
        tmp_path(d, j->gen, j->inst, tmp);
    else
        file_path(d, j->gen, j->inst, tmp);
    fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        job_fail(j, errno, "open");
        return;
    }
    rc = pread_all(fd, j->ch->data, len,
                   (off_t)(j->meta.data_off + diskfmt_block_off(&j->meta, j->block)));
    close(fd);
    if (rc != 0) {
        job_fail(j, rc > 0 ? EIO : rc, rc > 0 ? "truncated file" : "read");
        return;
    }
    if (crc32c(diskfmt_block_crc_init(j->meta.gen, j->block), j->ch->data, len) != j->crc) {
        job_fail(j, EIO, "bad block checksum");
        j->corrupt = true;
        return;
    }
    chunk_publish(j->ch, len);
}

/* Open, read and check the header and the first block. */
static void run_open(struct disk *d, struct djob *j)
{
    char path[DISK_PATH_CAP];
    struct stat st;
    size_t need = DISK_HEADER_READ, have;
    int rc;

    file_path(d, j->gen, j->inst, path);
    j->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (j->fd < 0) {
        job_fail(j, errno, "open");
        return;
    }
    if (fstat(j->fd, &st) < 0) {
        job_fail(j, errno, "fstat");
        return;
    }
    for (int tries = 0; tries < 2; tries++) {
        have = need < (uint64_t)st.st_size ? need : (size_t)st.st_size;
        free(j->hbuf);
        j->hbuf = malloc(have > 0 ? have : 1);
        if (j->hbuf == NULL) {
            job_fail(j, ENOMEM, "malloc");
            return;
        }
        rc = pread_all(j->fd, j->hbuf, have, 0);
        if (rc < 0) {
            job_fail(j, rc, "read");
            return;
        }
        if (rc > 0)
            break; /* shorter than fstat said: checked below */
        rc = diskfmt_decode(j->hbuf, have, &j->rmeta, &need);
        if (rc != EDGE_EAGAIN || need > (uint64_t)st.st_size)
            break;
    }
    if (rc != 0) {
        j->corrupt = true;
        j->op = rc == EDGE_ENOTSUP ? "header of another version" : "bad header";
        return;
    }
    if (diskfmt_file_size(&j->rmeta) != (uint64_t)st.st_size) {
        j->corrupt = true;
        j->op = "truncated file";
        return;
    }
    if (j->rmeta.gen != j->gen || j->rmeta.key_len != j->key_len ||
        memcmp(j->rmeta.key, j->key, j->key_len) != 0) {
        j->corrupt = true;
        j->op = "file of another key";
        return;
    }
    if (j->rmeta.nblocks == 0)
        return;
    uint32_t len = diskfmt_block_len(&j->rmeta, 0);
    j->ch = chunk_new(len);
    if (j->ch == NULL) {
        job_fail(j, ENOMEM, "malloc");
        return;
    }
    rc = pread_all(j->fd, j->ch->data, len, j->rmeta.data_off);
    if (rc != 0) {
        if (rc > 0)
            j->corrupt = true;
        job_fail(j, rc > 0 ? EIO : rc, rc > 0 ? "truncated file" : "read");
        return;
    }
    if (!diskfmt_block_ok(&j->rmeta, 0, j->ch->data, len)) {
        j->corrupt = true;
        j->op = "bad checksum in block 0";
        return;
    }
    chunk_publish(j->ch, len);
}

static void run_read(struct disk *d, struct djob *j)
{
    uint32_t len = diskfmt_block_len(&j->rmeta, j->block);
    int rc;

    (void)d;
    rc = pread_all(j->fd, j->ch->data, len,
                   (off_t)(j->rmeta.data_off + diskfmt_block_off(&j->rmeta, j->block)));
    if (rc != 0) {
        if (rc > 0)
            j->corrupt = true;
        job_fail(j, rc > 0 ? EIO : rc, rc > 0 ? "truncated file" : "read");
        return;
    }
    if (!diskfmt_block_ok(&j->rmeta, j->block, j->ch->data, len)) {
        j->corrupt = true;
        j->op = "bad block checksum";
        return;
    }
    chunk_publish(j->ch, len);
}

static void run_job(struct disk *d, struct djob *j)
{
    char path[DISK_PATH_CAP];

    switch (j->kind) {
    case DJ_WRITE:
        run_write(d, j);
        break;
    case DJ_WBLOCK:
        run_wblock(d, j);
        break;
    case DJ_TREAD:
        run_tread(d, j);
        break;
    case DJ_OPEN:
        run_open(d, j);
        break;
    case DJ_READ:
        run_read(d, j);
        break;
    case DJ_UNLINK:
        if (j->tmp)
            tmp_path(d, j->gen, j->inst, path);
        else
            file_path(d, j->gen, j->inst, path);
        if (unlink(path) < 0 && errno != ENOENT)
            job_fail(j, errno, "unlink");
        break;
    default:
        WRONG("disk job kind");
    }
}

/* ================================================================ the scan thread */

struct scan {
    struct disk *d;
    struct djob *batch;
    uint64_t discarded;
    char why[160];
};

static void scan_discard(struct scan *sc, int dirfd, const char *sub, const char *name,
                         const char *why)
{
    if (unlinkat(dirfd, name, 0) < 0 && errno == ENOENT)
        return; /* gone meanwhile */
    if (sc->discarded++ == 0 || sc->why[0] == '\0')
        snprintf(sc->why, sizeof(sc->why), "%s/%s: %s", sub, name, why);
}

static void scan_flush(struct scan *sc, bool force)
{
    if (sc->batch == NULL || (!force && sc->batch->nitems < DISK_SCAN_BATCH))
        return;
    sc->batch->discarded = sc->discarded;
    memcpy(sc->batch->why, sc->why, sizeof(sc->why));
    sc->discarded = 0;
    sc->why[0] = '\0';
    complete(sc->d, sc->batch);
    sc->batch = NULL;
}

static struct scan_item *scan_slot(struct scan *sc)
{
    if (sc->batch == NULL) {
        sc->batch = job_new(DJ_SCAN_BATCH);
        if (sc->batch == NULL)
            return NULL;
        sc->batch->items = calloc(DISK_SCAN_BATCH, sizeof(*sc->batch->items));
        if (sc->batch->items == NULL) {
            job_free(sc->batch);
            sc->batch = NULL;
            return NULL;
        }
    }
    return &sc->batch->items[sc->batch->nitems];
}

static void scan_file(struct scan *sc, int dirfd, const char *sub, const char *name)
{
    struct disk *d = sc->d;
    uint64_t gen;
    uint32_t inst;
    struct stat st;
    struct diskfmt_meta m;
    uint8_t *buf = NULL;
    size_t need = DISK_HEADER_READ, have = 0;
    int fd, rc = EDGE_EINVAL;

    if (!parse_name(name, &gen, &inst) || inst == d->inst)
        return; /* not a file of ours, or one of this run's */
    fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    for (int tries = 0; tries < 2; tries++) {
        have = need < (uint64_t)st.st_size ? need : (size_t)st.st_size;
        free(buf);
        buf = malloc(have > 0 ? have : 1);
        if (buf == NULL || pread_all(fd, buf, have, 0) != 0) {
            free(buf);
            close(fd);
            return; /* out of memory or unreadable: left alone, not indexed */
        }
        rc = diskfmt_decode(buf, have, &m, &need);
        if (rc != EDGE_EAGAIN || need > (uint64_t)st.st_size)
            break;
    }
    close(fd);
    const char *why = NULL;
    if (rc == EDGE_ENOTSUP)
        why = "header of another version";
    else if (rc != 0)
        why = have < DISKFMT_FIXED_LEN ? "truncated header" : "bad header";
    else if (m.gen != gen)
        why = "header does not match the file name";
    else if (diskfmt_file_size(&m) != (uint64_t)st.st_size)
        why = diskfmt_file_size(&m) > (uint64_t)st.st_size ? "truncated file" : "file too long";
    if (why != NULL) {
        scan_discard(sc, dirfd, sub, name, why);
        free(buf);
        return;
    }
    struct scan_item *it = scan_slot(sc);
    char *key = it ? malloc(m.key_len + 1) : NULL;
    if (key == NULL) {
        free(buf);
        return;
    }
    memcpy(key, m.key, m.key_len);
    key[m.key_len] = '\0';
    it->key = key;
    it->key_len = m.key_len;
    it->gen = gen;
    it->inst = inst;
    it->size = round_up4k((uint64_t)st.st_size);
    it->resp_wall_ms = m.response_time_ms;
    it->fetch_ms = m.fetch_ms;
    it->fd = m.fd;
    it->has_validator = m.fresp.has_etag || m.fresp.has_last_modified;
    sc->batch->nitems++;
    free(buf);
    scan_flush(sc, false);
}

/* Temp files of a run that ended before renaming them (DIR/stale-*). */
static void scan_stale_dir(struct scan *sc, const char *name)
{
    char path[DISK_PATH_CAP];
    int dfd;
    DIR *dir;
    struct dirent *de;

    snprintf(path, sizeof(path), "%s/%s", sc->d->dir, name);
    dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0 || (dir = fdopendir(dfd)) == NULL) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    while (!atomic_load(&sc->d->stop) && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
            scan_discard(sc, dfd, name, de->d_name, "temp file of an unfinished write");
    }
    closedir(dir);
    if (!atomic_load(&sc->d->stop))
        rmdir(path); /* fails if something else is in it: then it stays */
}

static void *scan_main(void *arg)
{
    struct scan sc;
    struct disk *d = arg;
    uint64_t t0 = time_mono_ms();
    DIR *top;
    struct dirent *de;

    memset(&sc, 0, sizeof(sc));
    sc.d = d;
    top = opendir(d->dir);
    if (top != NULL) {
        while (!atomic_load(&d->stop) && (de = readdir(top)) != NULL)
            if (strncmp(de->d_name, "stale-", 6) == 0)
                scan_stale_dir(&sc, de->d_name);
        closedir(top);
    }
    for (unsigned i = 0; i < 256 && !atomic_load(&d->stop); i++) {
        char sub[3], path[DISK_PATH_CAP];
        snprintf(sub, sizeof(sub), "%02x", i);
        snprintf(path, sizeof(path), "%s/%s", d->dir, sub);
        int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        DIR *dir;
        if (dfd < 0)
            continue;
        if ((dir = fdopendir(dfd)) == NULL) {
            close(dfd);
            continue;
        }
        while (!atomic_load(&d->stop) && (de = readdir(dir)) != NULL)
            if (de->d_name[0] != '.')
                scan_file(&sc, dfd, sub, de->d_name);
        closedir(dir);
    }
    if (sc.batch == NULL && sc.discarded > 0)
        (void)scan_slot(&sc);
    scan_flush(&sc, true);
    struct djob *fin = job_new(DJ_SCAN_DONE);
    if (fin != NULL) {
        fin->scan_ms = time_mono_ms() - t0;
        complete(d, fin);
    }
    return NULL;
}

/* ================================================================ the index, on the loop */

static struct dentry *index_find(const struct disk *d, const char *key, size_t n, uint64_t h,
                                 enum dentry_state state)
{
    for (struct dentry *e = d->buckets[h & (d->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->state == state && e->key_len == n && memcmp(e->key, key, n) == 0)
            return e;
    return NULL;
}

static void index_grow(struct disk *d)
{
    size_t nb = d->nbuckets * 2;
    struct dentry **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < d->nbuckets; i++) {
        struct dentry *e = d->buckets[i];
        while (e != NULL) {
            struct dentry *next = e->hnext;
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = nb;
}

static void index_add(struct disk *d, struct dentry *e)
{
    if (d->nentries >= d->nbuckets)
        index_grow(d);
    e->hnext = d->buckets[e->hash & (d->nbuckets - 1)];
    d->buckets[e->hash & (d->nbuckets - 1)] = e;
    d->nentries++;
    if (e->state == DE_READY)
        d->st.objects++;
}

static void index_del(struct disk *d, struct dentry *e)
{
    struct dentry **pp = &d->buckets[e->hash & (d->nbuckets - 1)];

    while (*pp != e) {
        AN(*pp);
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    e->hnext = NULL;
    d->nentries--;
    if (e->state == DE_READY)
        d->st.objects--;
}

static struct dentry *entry_new(struct disk *d, const char *key, size_t key_len)
{
    struct dentry *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->key = malloc(key_len + 1);
    if (e->key == NULL) {
        free(e);
        return NULL;
    }
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    e->key_len = key_len;
    e->hash = key_hash(d, key, key_len);
    e->magic = DENTRY_MAGIC;
    s3fifo_node_init(&e->node);
    return e;
}

static void entry_free(struct dentry *e)
{
    CHECK_OBJ_NOTNULL(e, DENTRY_MAGIC);
    AZ(e->loading);
    free(e->key);
    e->magic = 0;
    free(e);
}

static void unlink_path(struct disk *d, uint64_t gen, uint32_t inst, bool tmp)
{
    char path[DISK_PATH_CAP];
    struct djob *j;

    if (d->closing) {
        /* disk_close: the threads are gone, and this is off the serving path */
        if (tmp)
            tmp_path(d, gen, inst, path);
        else
            file_path(d, gen, inst, path);
        unlink(path);
        return;
    }
    j = job_new(DJ_UNLINK);
    if (j == NULL)
        return; /* the file stays until a later scan finds it over budget */
    j->gen = gen;
    j->inst = inst;
    j->tmp = tmp;
    submit(d, j);
}

static void unlink_file(struct disk *d, uint64_t gen, uint32_t inst)
{
    unlink_path(d, gen, inst, false);
}

static void detach_load(struct dentry *e);

/* Take e out of the index and the budget; its file is deleted when
 * rm_file. A WRITING entry waits for its write to end (DEAD). */
static void entry_drop(struct disk *d, struct dentry *e, bool rm_file)
{
    CHECK_OBJ_NOTNULL(e, DENTRY_MAGIC);
    assert_always(e->state != DE_DEAD);
    if (e->node.queue != S3FIFO_Q_NONE)
        s3fifo_remove(d->policy, &e->node);
    index_del(d, e);
    detach_load(e);
    if (e->state == DE_WRITING) {
        e->state = DE_DEAD;
        return;
    }
    if (rm_file)
        unlink_file(d, e->gen, e->inst);
    entry_free(e);
}

static void on_evict(struct s3fifo_node *n, void *arg)
{
    struct disk *d;
    struct dentry *e = (struct dentry *)(void *)((char *)n - offsetof(struct dentry, node));

    CAST_OBJ_NOTNULL(d, arg, DISK_MAGIC);
    CHECK_OBJ_NOTNULL(e, DENTRY_MAGIC);
    if (d->closing) {
        /* disk_close, every job over: the index goes, the files stay */
        index_del(d, e);
        detach_load(e);
        entry_free(e);
        return;
    }
    assert_always(e->state == DE_READY); /* writing entries are pinned */
    LOG_D("disk cache: evicting \"%s\" (%" PRIu64 " bytes)", e->key, e->size);
    d->st.evictions++;
    index_del(d, e);
    detach_load(e);
    unlink_file(d, e->gen, e->inst);
    entry_free(e);
}

/* still worth keeping: fresh, within a stale window, or revalidatable */
static bool entry_usable(const struct dentry *e, int64_t now_wall)
{
    int64_t resident = now_wall > e->resp_wall_ms ? (now_wall - e->resp_wall_ms) / 1000 : 0;

    return fresh_state(&e->fd, resident) != FRESH_STALE || e->has_validator ||
           fresh_stale_if_error(&e->fd, resident);
}

/* ================================================================ loads */

/* A job reading len bytes into a chunk of its own, or NULL (no memory). */
static struct djob *read_job_new(enum djob_kind kind, uint32_t len)
{
    struct djob *j = job_new(kind);

    if (j == NULL)
        return NULL;
    if ((j->ch = chunk_new(len)) == NULL) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* A read of block idx of the file ld has open, or NULL (no memory). */
static struct djob *dload_read_job(struct dload *ld, uint32_t idx)
{
    struct djob *j = read_job_new(DJ_READ, diskfmt_block_len(&ld->meta, idx));

    if (j == NULL)
        return NULL;
    j->ld = ld;
    j->fd = ld->fd;
    j->rmeta = ld->meta;
    j->block = idx;
    j->gen = ld->meta.gen;
    return j;
}

static void dload_free(struct dload *ld)
{
    struct disk *d;

    CHECK_OBJ_NOTNULL(ld, DLOAD_MAGIC);
    d = ld->d;
    AZ(ld->inflight);
    if (ld->e != NULL) {
        ld->e->loading = NULL;
        ld->e = NULL;
    }
    if (ld->fd >= 0)
        close(ld->fd);
    free(ld->hbuf);
    if (ld->src != NULL) {
        ld->src->ld = NULL; /* the object's source stays, with nothing behind it */
        ld->src = NULL;
    }
    if (!ld->windowed)
        obj_unref(ld->o);
    AN(d->nloads);
    d->nloads--;
    ld->magic = 0;
    free(ld);
}

static void detach_load(struct dentry *e)
{
    if (e->loading != NULL) {
        /* the load goes on with its open file; nothing to update at the end */
        e->loading->e = NULL;
        e->loading = NULL;
    }
}

static void dload_end(struct dload *ld)
{
    if (!ld->stopped)
        server_task_untrack(ld->d->srv, &ld->task);
    ld->stopped = true;
    if (!ld->inflight)
        dload_free(ld);
}

/* The file turned out bad or unreadable: drop it, fail the object (before
 * its headers: the exchange goes to the origin instead). */
static void dload_fail(struct dload *ld, const struct djob *j)
{
    struct disk *d = ld->d;
    char path[DISK_PATH_CAP];

    file_path(d, j->gen, j->inst, path);
    if (j->corrupt) {
        d->st.discarded++;
        rlog(&d->log_corrupt, LOG_LVL_WARN, "disk cache: %s: %s; deleted", path, j->op);
    } else if (j->err != ENOENT) {
        d->st.read_errors++;
        rlog(&d->log_read, LOG_LVL_ERROR, "disk cache: %s: %s: %s; dropped", path, j->op,
             strerror(j->err));
    }
    if (ld->e != NULL)
        entry_drop(d, ld->e, true);
    struct obj *o = ld->o;
    if (o->state == OBJ_STREAMING && o->src != NULL) {
        /* the headers and the blocks before went out: the rest comes from
         * the origin, block by block, pinned to this version (If-Match),
         * and the object is stored again in memory and on disk */
        o->from_disk = false;
        o->disk_gen = 0;
        if (!o->in_index && o->cacheable)
            (void)cache_admit(d->srv->cache, o);
        obj_blocks_lost(o, 0); /* reads still in flight are dropped too */
    } else {
        obj_fail(o, DISK_ERR_READ);
    }
    dload_end(ld);
}

static void dload_next(struct dload *ld)
{
    struct disk *d = ld->d;
    struct obj *o = ld->o;
    struct djob *j;

    if (ld->done >= ld->meta.nblocks) {
        obj_complete(o);
        /* into the memory store, unless its file was dropped meanwhile
         * (replaced, invalidated, evicted) or a newer copy got there */
        if (ld->e != NULL) {
            ld->e->loading = NULL;
            ld->e = NULL;
            if (!cache_contains(d->srv->cache, o->key, o->key_len))
                (void)cache_insert(d->srv->cache, o);
        }
        dload_end(ld);
        return;
    }
    while (ld->next < ld->meta.nblocks && ld->inflight < DLOAD_PARALLEL) {
        j = dload_read_job(ld, ld->next);
        if (j == NULL) {
            if (ld->inflight > 0)
                return; /* try again when one comes back */
            LOG_E("disk cache: out of memory loading \"%s\"", o->key);
            obj_fail(o, DISK_ERR_READ);
            dload_end(ld);
            return;
        }
        ld->next++;
        ld->inflight++;
        submit(d, j);
    }
}

/* the windowed load's source: read block idx */
static int dsrc_want(struct obj *o, uint32_t idx, uint32_t span_last, void *arg)
{
    struct dsrc *src;
    struct dload *ld;
    struct djob *j;

    (void)span_last;
    CAST_OBJ_NOTNULL(src, arg, DSRC_MAGIC);
    ld = src->ld;
    if (ld == NULL || ld->stopped || ld->dropped)
        return EDGE_ENOENT; /* the fallback (the origin) brings it, if there is one */
    assert_always(idx < ld->meta.nblocks);
    j = dload_read_job(ld, idx);
    if (j == NULL)
        return EDGE_ENOMEM;
    j->o = o;
    obj_ref(o); /* the object stays while its read is out */
    obj_block_filling(o, idx, idx);
    ld->inflight++;
    submit(ld->d, j);
    return 0;
}

static void dsrc_release(void *arg)
{
    struct dsrc *src;
    struct dload *ld;

    CAST_OBJ_NOTNULL(src, arg, DSRC_MAGIC);
    ld = src->ld;
    if (ld != NULL) {
        /* the object is freed: the load ends with it */
        ld->src = NULL;
        ld->o = NULL;
        if (ld->e != NULL) {
            ld->e->loading = NULL;
            ld->e = NULL;
        }
        dload_end(ld);
    }
    src->magic = 0;
    free(src);
}

static const struct obj_source_ops dsrc_ops = {
    .want = dsrc_want,
    .release = dsrc_release,
};

/* A block read of a windowed load came back. */
static void dload_block_windowed(struct dload *ld, struct djob *j)
{
    struct disk *d = ld->d;
    struct obj *o = j->o;
    uint32_t i = j->block;

    if (o->state != OBJ_STREAMING || i >= o->nblk || o->blk[i] != NULL ||
        !(o->bflag[i] & BLK_FILLING))
        return;
    if (j->err == 0 && !j->corrupt) {
        d->st.load_bytes += chunk_len(j->ch);
        obj_put_block(o, i, j->ch);
        j->ch = NULL;
        obj_notify(o);
        return;
    }
    if (!ld->dropped) {
        /* the file is bad: it goes, and every block from now on comes
         * from the fallback source (the origin, pinned to this version) */
        if (j->corrupt) {
            d->st.discarded++;
            rlog(&d->log_corrupt, LOG_LVL_WARN, "disk cache: block %" PRIu32 " of \"%s\": %s; "
                 "file deleted", i, o->key, j->op);
        } else {
            d->st.read_errors++;
            rlog(&d->log_read, LOG_LVL_ERROR, "disk cache: block %" PRIu32 " of \"%s\": %s: %s; "
                 "file dropped", i, o->key, j->op, strerror(j->err));
        }
        ld->dropped = true;
        if (ld->e != NULL)
            entry_drop(d, ld->e, true);
    }
    /* absent again: the reader asks again, the fallback answers */
    o->bflag[i] &= (uint8_t)~BLK_FILLING;
    obj_notify(o);
}

/* the header and block 0 are in: publish the headers */
static void dload_opened(struct dload *ld, struct djob *j)
{
    struct obj *o = ld->o;
    struct obj_hdr *hdrs = NULL;
    const char *p;
    int rc;

    ld->fd = j->fd;
    j->fd = -1;
    ld->hbuf = j->hbuf;
    j->hbuf = NULL;
    ld->meta = j->rmeta;
    if (ld->meta.nhdrs > 0 && (hdrs = calloc(ld->meta.nhdrs, sizeof(*hdrs))) == NULL)
        goto fail;
    p = ld->meta.hdrs;
    for (unsigned i = 0; i < ld->meta.nhdrs; i++) {
        hdrs[i].name = p;
        p += strlen(p) + 1;
        hdrs[i].value = p;
        p += strlen(p) + 1;
    }
    o->fresp = ld->meta.fresp;
    o->disk_gen = ld->meta.gen;
    o->bsize = ld->meta.block_size;
    rc = obj_set_headers(o, ld->meta.status, (int64_t)ld->meta.body_len, hdrs, ld->meta.nhdrs);
    free(hdrs);
    if (rc < 0)
        goto fail;
    if (ld->meta.body_len > ld->d->srv->conf->memory_max_object_bytes) {
        /* too large to hold: read on demand, keep what readers need */
        struct dsrc *src = calloc(1, sizeof(*src));
        if (src == NULL)
            goto fail;
        src->magic = DSRC_MAGIC;
        src->ld = ld;
        ld->src = src;
        ld->windowed = true;
        o->transient = true;
        obj_set_source(o, &dsrc_ops, src);
        if (j->ch != NULL && o->nblk > 0) {
            ld->d->st.load_bytes += chunk_len(j->ch);
            obj_put_block(o, 0, j->ch);
            j->ch = NULL;
        }
        obj_notify(o);
        /* from here the object holds the load: drop the load's reference
         * (last: it may free the object, and the load with it) */
        obj_unref(o);
        return;
    }
    /* every block comes from this load, in order */
    if (o->nblk > 0)
        obj_block_filling(o, 0, o->nblk - 1);
    if (j->ch != NULL) {
        ld->d->st.load_bytes += chunk_len(j->ch);
        obj_put_block(o, 0, j->ch);
        j->ch = NULL;
    }
    obj_notify(o);
    ld->next = 1;
    ld->done = o->nblk_done;
    dload_next(ld);
    return;
fail:
    LOG_E("disk cache: out of memory loading \"%s\"", o->key);
    obj_fail(o, DISK_ERR_READ);
    dload_end(ld);
}

static void dload_stop_now(struct server_task *t)
{
    struct dload *ld = (struct dload *)(void *)((char *)t - offsetof(struct dload, task));

    CHECK_OBJ_NOTNULL(ld, DLOAD_MAGIC);
    struct obj *o = ld->o; /* NULL: a windowed load whose object is gone */
    if (o != NULL)
        obj_ref(o); /* failing it may drop the last other reference */
    if (o != NULL && (o->state == OBJ_FETCHING_HDRS || o->state == OBJ_STREAMING))
        obj_fail(o, DISK_ERR_STOPPED);
    if (ld->e != NULL) {
        ld->e->loading = NULL;
        ld->e = NULL;
    }
    dload_end(ld);
    if (o != NULL)
        obj_unref(o);
}

/* ================================================================ completions, on the loop */

/* true when the file is in place and indexed */
static bool done_write(struct disk *d, struct djob *j)
{
    struct dentry *e = j->e, *old;

    CHECK_OBJ_NOTNULL(e, DENTRY_MAGIC);
    AN(d->pending_write_bytes >= j->held);
    d->pending_write_bytes -= j->held;
    if (e->state == DE_DEAD) {
        if (j->err == 0)
            unlink_file(d, j->gen, j->inst);
        entry_free(e);
        return false;
    }
    if (d->closing)
        return false; /* the entry goes with the index; a file written stays */
    /* the write is over: the entry is READY, or goes */
    e->state = DE_READY;
    d->st.objects++;
    s3fifo_set_pinned(d->policy, &e->node, false);
    if (j->err != 0) {
        d->st.write_errors++;
        if (j->err == ENOSPC || j->err == EDQUOT)
            rlog(&d->log_nospace, LOG_LVL_ERROR,
                 "disk cache: %s: no space left (%s of \"%s\"); serving from memory and "
                 "the origin", d->dir, j->op, e->key);
        else
            rlog(&d->log_write, LOG_LVL_ERROR, "disk cache: %s: %s of \"%s\" failed: %s",
                 d->dir, j->op, e->key, strerror(j->err));
        entry_drop(d, e, false);
        return false;
    }
    d->st.writes++;
    d->st.write_bytes += j->meta.body_len;
    for (old = d->buckets[e->hash & (d->nbuckets - 1)]; old != NULL; old = old->hnext)
        if (old != e && old->hash == e->hash && old->state == DE_READY &&
            old->key_len == e->key_len && memcmp(old->key, e->key, e->key_len) == 0)
            break;
    if (old != NULL && !old->from_scan && old->gen > e->gen) {
        /* a newer write of the same key ended first */
        entry_drop(d, e, true);
        return false;
    }
    if (old != NULL)
        entry_drop(d, old, true);
    return true;
}

static void done_scan_batch(struct disk *d, struct djob *j)
{
    if (j->discarded > 0) {
        d->st.discarded += j->discarded;
        rlog(&d->log_scan, LOG_LVL_WARN, "disk cache: %s: %" PRIu64 " bad file%s deleted (%s)",
             d->dir, j->discarded, j->discarded == 1 ? "" : "s", j->why);
    }
    for (size_t i = 0; i < j->nitems && !d->closing; i++) {
        struct scan_item *it = &j->items[i];
        uint64_t h = key_hash(d, it->key, it->key_len);
        struct dentry *old = index_find(d, it->key, it->key_len, h, DE_READY);
        if (old == NULL)
            old = index_find(d, it->key, it->key_len, h, DE_WRITING);
        if (old != NULL && (!old->from_scan || old->gen > it->gen)) {
            /* this run wrote the key since, or an earlier run wrote it twice */
            unlink_file(d, it->gen, it->inst);
            continue;
        }
        if (old != NULL)
            entry_drop(d, old, true);
        struct dentry *e = entry_new(d, it->key, it->key_len);
        if (e == NULL)
            continue; /* left on disk; a later start indexes it */
        e->state = DE_READY;
        e->from_scan = true;
        e->gen = it->gen;
        e->inst = it->inst;
        e->size = it->size;
        e->resp_wall_ms = it->resp_wall_ms;
        e->fetch_ms = it->fetch_ms;
        e->fd = it->fd;
        e->has_validator = it->has_validator;
        if (!entry_usable(e, wall_ms()) ||
            s3fifo_insert(d->policy, &e->node, e->hash, e->size) < 0) {
            unlink_file(d, it->gen, it->inst); /* expired for good, or larger than the budget */
            entry_free(e);
            continue;
        }
        index_add(d, e);
        d->st.scanned++;
    }
}

static void ds_finished(struct disk *d, struct djob *j, bool in_place);
static void ds_block_done(struct disk *d, struct djob *j);
static void ds_read_done(struct disk *d, struct djob *j);

static void done(struct disk *d, struct djob *j)
{
    struct dload *ld = j->ld;

    CHECK_OBJ_NOTNULL(j, DJOB_MAGIC);
    switch (j->kind) {
    case DJ_WRITE:
    {
        bool in_place = done_write(d, j);
        if (j->ds != NULL)
            ds_finished(d, j, in_place);
    }
        break;
    case DJ_WBLOCK:
        ds_block_done(d, j);
        break;
    case DJ_TREAD:
        ds_read_done(d, j);
        break;
    case DJ_OPEN:
    case DJ_READ:
        CHECK_OBJ_NOTNULL(ld, DLOAD_MAGIC);
        AN(ld->inflight);
        ld->inflight--;
        if (ld->stopped) {
            if (ld->inflight == 0)
                dload_free(ld);
        } else if (ld->windowed) {
            AN(j->kind == DJ_READ);
            dload_block_windowed(ld, j);
        } else if (j->err != 0 || j->corrupt) {
            dload_fail(ld, j);
        } else if (j->kind == DJ_OPEN) {
            dload_opened(ld, j);
        } else {
            d->st.load_bytes += chunk_len(j->ch);
            obj_put_block(ld->o, j->block, j->ch);
            j->ch = NULL;
            obj_notify(ld->o);
            ld->done++;
            dload_next(ld);
        }
        break;
    case DJ_UNLINK:
        if (j->err != 0)
            rlog(&d->log_write, LOG_LVL_ERROR, "disk cache: %s: unlink failed: %s", d->dir,
                 strerror(j->err));
        break;
    case DJ_SCAN_BATCH:
        done_scan_batch(d, j);
        break;
    case DJ_SCAN_DONE:
        d->st.scan_done = true;
        LOG_I("disk cache: %s: %" PRIu64 " stored objects indexed, %" PRIu64
              " bad files deleted, in %" PRIu64 " ms",
              d->dir, d->st.scanned, d->st.discarded, j->scan_ms);
        break;
    default:
        WRONG("disk job kind");
    }
    job_free(j);
}

static void take_done(struct disk *d, struct djob_list *out)
{
    AZ(pthread_mutex_lock(&d->cmu));
    TAILQ_CONCAT(out, &d->done_q, link);
    AZ(pthread_mutex_unlock(&d->cmu));
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct disk *d;
    struct djob_list l;
    struct djob *j;
    uint64_t v;

    (void)what;
    CAST_OBJ_NOTNULL(d, arg, DISK_MAGIC);
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        LOG_E("disk cache: eventfd read: %s", strerror(errno));
    TAILQ_INIT(&l);
    take_done(d, &l);
    while ((j = TAILQ_FIRST(&l)) != NULL) {
        TAILQ_REMOVE(&l, j, link);
        done(d, j);
    }
}

/* ================================================================ stream writes */

static void ds_maybe_free(struct dstream *ds)
{
    struct disk *d = ds->d;

    if (!ds->failed || ds->inflight > 0 || ds->finishing)
        return;
    if (!ds->in_place && (ds->nwritten > 0 || ds->held > 0))
        unlink_path(d, ds->gen, ds->inst, true);
    if (ds->tracked)
        server_task_untrack(d->srv, &ds->task);
    free(ds->hdr);
    free(ds->bstate);
    free(ds->crcs);
    ds->magic = 0;
    free(ds);
}

/* A WRITING entry whose write will not come: out of the budget and the
 * index (unless a purge took it out already: DEAD). */
static void ds_drop_entry(struct disk *d, struct dentry *e)
{
    if (e->state != DE_DEAD) {
        s3fifo_set_pinned(d->policy, &e->node, false);
        if (e->node.queue != S3FIFO_Q_NONE)
            s3fifo_remove(d->policy, &e->node);
        index_del(d, e);
    }
    entry_free(e);
}

/* give the file up (the caller then calls ds_maybe_free: ds may go) */
static void ds_fail(struct dstream *ds)
{
    if (ds->failed)
        return;
    ds->failed = true;
    if (ds->o != NULL) {
        obj_sink_done(ds->o);
        ds->o = NULL;
    }
    if (ds->e != NULL) {
        ds_drop_entry(ds->d, ds->e);
        ds->e = NULL;
    }
}

/* every block is written: the header, and the name */
static void ds_finish(struct dstream *ds)
{
    struct disk *d = ds->d;
    struct djob *j;

    assert_always(!ds->finishing && !ds->in_place && ds->hdr != NULL);
    j = job_new(DJ_WRITE);

    if (j == NULL) {
        ds_fail(ds);
        return;
    }
    diskfmt_seal(ds->hdr, ds->meta.header_len);
    j->hdr = ds->hdr;
    ds->hdr = NULL;
    j->meta = ds->meta;
    j->gen = ds->gen;
    j->inst = ds->inst;
    j->e = ds->e;
    ds->e = NULL;
    j->ds = ds;
    if (ds->o != NULL) {
        /* the object leaves the memory index once the file is in place
         * (and stays the stream's, whose file can still give blocks to
         * readers far behind) */
        j->o = ds->o;
        obj_ref(j->o);
    }
    ds->finishing = true;
    submit(d, j);
}

/* the end of a stream write is back (after done_write did the entry) */
static void ds_finished(struct disk *d, struct djob *j, bool in_place)
{
    struct dstream *ds = j->ds;

    CHECK_OBJ_NOTNULL(ds, DSTREAM_MAGIC);
    if (j->err == 0 && j->o != NULL && j->o->in_index && j->o->disk_bound)
        cache_unindex(j->o); /* the next request reads the file */
    (void)d;
    ds->finishing = false;
    if (in_place && !ds->failed) {
        /* in place: blocks come back from the file while the object lives */
        ds->in_place = true;
        return;
    }
    if (j->err == 0)
        ds->in_place = true; /* renamed (and maybe dropped since): no temp file to delete */
    ds_fail(ds);
    ds_maybe_free(ds);
}

/* a block write is back */
static void ds_block_done(struct disk *d, struct djob *j)
{
    struct dstream *ds = j->ds;
    size_t len = chunk_len(j->ch);

    CHECK_OBJ_NOTNULL(ds, DSTREAM_MAGIC);
    AN(ds->inflight);
    ds->inflight--;
    TAILQ_REMOVE(&ds->queued, j, dslink);
    ds->bstate[j->block] = DS_B_NONE;
    AN(d->pending_write_bytes >= len && ds->held >= len);
    d->pending_write_bytes -= len;
    ds->held -= len;
    if (j->err != 0 && !ds->failed) {
        d->st.write_errors++;
        if (j->err == ENOSPC || j->err == EDQUOT)
            rlog(&d->log_nospace, LOG_LVL_ERROR,
                 "disk cache: %s: no space left (%s of a block of \"%s\"); serving from memory "
                 "and the origin", d->dir, j->op, ds->e != NULL ? ds->e->key : "?");
        else if (j->err != ECANCELED)
            rlog(&d->log_write, LOG_LVL_ERROR, "disk cache: %s: %s of a block of \"%s\" failed: %s",
                 d->dir, j->op, ds->e != NULL ? ds->e->key : "?", strerror(j->err));
        ds_fail(ds);
    } else if (!ds->failed) {
        if (ds->o != NULL && ds->o->readahead_held &&
            d->pending_write_bytes < d->pending_write_max / 2)
            ds->o->readahead_held = false;
        diskfmt_put_block_crc(ds->hdr, &ds->meta, j->block, j->crc);
        ds->bstate[j->block] = DS_B_WRITTEN;
        ds->crcs[j->block] = j->crc;
        ds->nwritten++;
        /* the rename waits for reads of the temp file to be back */
        if (ds->nwritten == ds->meta.nblocks && ds->inflight == 0)
            ds_finish(ds);
    }
    ds_maybe_free(ds);
}

/* a read of the temp file is back */
static void ds_read_done(struct disk *d, struct djob *j)
{
    struct dstream *ds = j->ds;
    struct obj *o = j->o;
    uint32_t i = j->block;

    CHECK_OBJ_NOTNULL(ds, DSTREAM_MAGIC);
    AN(ds->inflight);
    ds->inflight--;
    if (o->state == OBJ_STREAMING && i < o->nblk && o->blk[i] == NULL &&
        (o->bflag[i] & BLK_FILLING)) {
        if (j->err == 0) {
            d->st.load_bytes += chunk_len(j->ch);
            obj_put_block(o, i, j->ch);
            j->ch = NULL;
        } else {
            if (j->err != ECANCELED)
                rlog(&d->log_read, LOG_LVL_ERROR, "disk cache: block %" PRIu32 " of \"%s\" "
                     "read back: %s: %s", i, o->key, j->op, strerror(j->err));
            /* absent again: its reader asks the origin this time */
            o->bflag[i] &= (uint8_t)~BLK_FILLING;
        }
        obj_notify(o);
    }
    if (j->err != 0 && !ds->failed)
        ds_fail(ds); /* the file is not to be trusted (or is gone) */
    else if (!ds->failed && !ds->finishing && !ds->in_place &&
             ds->nwritten == ds->meta.nblocks && ds->inflight == 0)
        ds_finish(ds);
    ds_maybe_free(ds);
}

/* the object's sink: a block it dropped is needed again */
static int ds_sink_want(struct obj *o, uint32_t idx, void *arg)
{
    struct dstream *ds;
    struct djob *j;

    CAST_OBJ_NOTNULL(ds, arg, DSTREAM_MAGIC);
    if (ds->failed || ds->finishing || idx >= ds->meta.nblocks)
        return EDGE_ENOENT; /* the origin, then */
    if (ds->bstate[idx] == DS_B_QUEUED) {
        /* still on its way to the disk: its bytes are in the write job */
        TAILQ_FOREACH(j, &ds->queued, dslink) {
            if (j->block == idx) {
                obj_put_block(o, idx, chunk_ref(j->ch));
                return 0;
            }
        }
        WRONG("a queued block not in its stream's list");
    }
    if (ds->bstate[idx] != DS_B_WRITTEN)
        return EDGE_ENOENT;
    j = read_job_new(DJ_TREAD, diskfmt_block_len(&ds->meta, idx));
    if (j == NULL)
        return EDGE_ENOENT;
    j->ds = ds;
    j->tmp = !ds->in_place;
    j->block = idx;
    j->meta = ds->meta;
    j->gen = ds->gen;
    j->inst = ds->inst;
    j->crc = ds->crcs[idx];
    j->o = o;
    obj_ref(o);
    obj_block_filling(o, idx, idx);
    ds->inflight++;
    submit(ds->d, j);
    return 0;
}

/* the object's sink: a block is complete */
static void ds_sink_block(struct obj *o, uint32_t idx, void *arg)
{
    struct dstream *ds;
    struct disk *d;
    struct djob *j;

    CAST_OBJ_NOTNULL(ds, arg, DSTREAM_MAGIC);
    d = ds->d;
    if (ds->failed)
        return;
    struct chunk *c = o->blk[idx];
    size_t len = chunk_len(c);
    if (d->pending_write_bytes + len > d->pending_write_max)
        o->readahead_held = true; /* the disk lags: fetch no further ahead than readers are */
    /* fetches already in flight land whatever happens: they count on
     * top of the allowance */
    if (ds->held + len > DISK_STREAM_QUEUE_MAX(d) + (uint64_t)o->nfills * o->bsize) {
        /* it does not keep up even so: the file is given up rather than
         * holding the object in memory for it */
        d->st.writes_skipped++;
        ds_fail(ds);
        ds_maybe_free(ds);
        return;
    }
    j = job_new(DJ_WBLOCK);
    if (j == NULL) {
        ds_fail(ds);
        ds_maybe_free(ds);
        return;
    }
    j->ch = chunk_ref(c);
    j->ds = ds;
    j->block = idx;
    j->meta = ds->meta;
    j->gen = ds->gen;
    j->inst = ds->inst;
    ds->inflight++;
    ds->held += len;
    ds->bstate[idx] = DS_B_QUEUED;
    TAILQ_INSERT_TAIL(&ds->queued, j, dslink);
    d->pending_write_bytes += len;
    submit(d, j);
}

/* the object failed or is freed before every block came */
static void ds_sink_end(struct obj *o, void *arg)
{
    struct dstream *ds;

    (void)o;
    CAST_OBJ_NOTNULL(ds, arg, DSTREAM_MAGIC);
    ds->o = NULL; /* the object has let go already */
    ds_fail(ds);
    ds_maybe_free(ds);
}

static const struct obj_sink_ops ds_sink_ops = {
    .block = ds_sink_block,
    .end = ds_sink_end,
    .want = ds_sink_want,
};

static void ds_stop_now(struct server_task *t)
{
    struct dstream *ds = (struct dstream *)(void *)((char *)t - offsetof(struct dstream, task));

    CHECK_OBJ_NOTNULL(ds, DSTREAM_MAGIC);
    server_task_untrack(ds->d->srv, &ds->task);
    ds->tracked = false;
    ds_fail(ds);
    ds_maybe_free(ds);
}

/* ================================================================ API */

struct obj *disk_lookup(struct disk *d, const char *key, size_t key_len, uint64_t now_ms)
{
    struct dentry *e;
    struct dload *ld;
    struct djob *j;
    struct obj *o;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    e = index_find(d, key, key_len, key_hash(d, key, key_len), DE_READY);
    if (e == NULL)
        return NULL;
    if (!entry_usable(e, wall_ms())) {
        entry_drop(d, e, true);
        return NULL;
    }
    s3fifo_hit(d->policy, &e->node);
    if (e->loading != NULL) {
        obj_ref(e->loading->o);
        return e->loading->o;
    }
    o = obj_new(key, key_len, 0);
    ld = calloc(1, sizeof(*ld));
    j = job_new(DJ_OPEN);
    if (o == NULL || ld == NULL || j == NULL) {
        if (o != NULL)
            obj_unref(o);
        free(ld);
        if (j != NULL)
            job_free(j);
        return NULL;
    }
    /* what the index knows decides hit or revalidation at once; the
     * rest of the metadata comes with the header */
    o->fd = e->fd;
    o->fetch_ms = e->fetch_ms;
    obj_set_response_wall_ms(o, e->resp_wall_ms, now_ms);
    o->fresp.has_etag = e->has_validator;
    o->cacheable = true;
    o->from_disk = true;
    ld->magic = DLOAD_MAGIC;
    ld->d = d;
    ld->e = e;
    ld->o = o;
    ld->fd = -1;
    obj_ref(o); /* the load's own */
    e->loading = ld;
    d->nloads++;
    d->st.loads++;
    server_task_track(d->srv, &ld->task, SERVER_TASK_FILL, dload_stop_now);
    j->ld = ld;
    j->gen = e->gen;
    j->inst = e->inst;
    j->key = o->key;
    j->key_len = o->key_len;
    ld->inflight = 1;
    submit(d, j);
    return o;
}

/* "name\0value\0" for every header, as stored in o->hdr_blob */
static size_t hdr_blob_len(const struct obj *o)
{
    size_t n = 0;

    for (unsigned i = 0; i < o->nhdrs; i++)
        n += strlen(o->hdrs[i].name) + strlen(o->hdrs[i].value) + 2;
    return n;
}

/* The file's metadata for o, under a new generation (strings point into
 * o). EDGE_ETOOLONG when a key or headers are beyond what the format
 * takes. */
static int file_meta(struct disk *d, const struct obj *o, struct diskfmt_meta *m)
{
    const char *etag = obj_find_hdr(o, "etag");

    memset(m, 0, sizeof(*m));
    if (d->last_gen >= wall_us())
        m->gen = d->last_gen + 1;
    else
        m->gen = wall_us();
    m->body_len = (uint64_t)o->length;
    m->block_size = o->bsize;
    m->status = o->status;
    m->key = o->key;
    m->key_len = o->key_len;
    m->etag = etag;
    m->etag_len = etag ? strlen(etag) : 0;
    m->hdrs = o->hdr_blob;
    m->hdrs_len = hdr_blob_len(o);
    m->nhdrs = o->nhdrs;
    m->response_time_ms = obj_response_wall_ms(o, time_mono_ms());
    m->fetch_ms = o->fetch_ms;
    m->fresp = o->fresp;
    m->fd = o->fd;
    return diskfmt_header_len(m) == 0 ? EDGE_ETOOLONG : 0;
}

/* e, new, becomes the WRITING entry of the file m describes, for o: its
 * room in the budget is taken now (pinned), so that writes in flight count
 * too. EDGE_ETOOLONG (counted as skipped) when there is no room. */
static int writing_entry_add(struct disk *d, struct dentry *e, const struct diskfmt_meta *m,
                             const struct obj *o, uint64_t size)
{
    e->state = DE_WRITING;
    e->gen = m->gen;
    e->inst = d->inst;
    e->size = size;
    e->resp_wall_ms = m->response_time_ms;
    e->fetch_ms = m->fetch_ms;
    e->fd = o->fd;
    e->has_validator = o->fresp.has_etag || o->fresp.has_last_modified;
    s3fifo_set_pinned(d->policy, &e->node, true);
    if (s3fifo_insert(d->policy, &e->node, e->hash, size) < 0) {
        d->st.writes_skipped++;
        return EDGE_ETOOLONG;
    }
    index_add(d, e);
    return 0;
}

int disk_stream_begin(struct disk *d, struct obj *o)
{
    struct diskfmt_meta m;
    struct dentry *e = NULL;
    struct dstream *ds = NULL;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (d->closing || o->from_disk || o->sink != NULL || o->state != OBJ_STREAMING ||
        o->length <= 0 || o->negative || o->error_body || o->bsize < DISKFMT_BLOCK_MIN ||
        o->bsize > DISKFMT_BLOCK_MAX)
        return EDGE_EINVAL;
    if (file_meta(d, o, &m) < 0)
        return EDGE_ETOOLONG;
    uint64_t size = round_up4k(diskfmt_file_size(&m));
    ds = calloc(1, sizeof(*ds));
    e = entry_new(d, o->key, o->key_len);
    if (ds == NULL || e == NULL || (ds->hdr = calloc(1, m.header_len)) == NULL ||
        (ds->bstate = calloc(m.nblocks, 1)) == NULL ||
        (ds->crcs = calloc(m.nblocks, sizeof(*ds->crcs))) == NULL ||
        diskfmt_encode(&m, ds->hdr, m.header_len) < 0)
        goto fail;
    TAILQ_INIT(&ds->queued);
    if (writing_entry_add(d, e, &m, o, size) < 0)
        goto fail;
    m.key = m.etag = m.hdrs = NULL; /* in ds->hdr now */
    ds->magic = DSTREAM_MAGIC;
    ds->d = d;
    ds->o = o;
    ds->e = e;
    ds->meta = m;
    ds->gen = m.gen;
    ds->inst = d->inst;
    d->last_gen = m.gen;
    o->disk_gen = m.gen;
    server_task_track(d->srv, &ds->task, SERVER_TASK_FILL, ds_stop_now);
    ds->tracked = true;
    obj_set_sink(o, &ds_sink_ops, ds);
    return 0;
fail:
    if (ds != NULL) {
        free(ds->hdr);
        free(ds->bstate);
        free(ds->crcs);
    }
    free(ds);
    if (e != NULL)
        entry_free(e);
    return EDGE_ENOMEM;
}

void disk_store(struct disk *d, struct obj *o)
{
    struct diskfmt_meta m;
    struct dentry *e = NULL;
    struct djob *j = NULL;
    size_t n = 0;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    if (d->closing || o->from_disk || o->disk_bound || o->sink != NULL ||
        o->state != OBJ_COMPLETE || !o->cacheable ||
        o->negative || o->error_body || !obj_whole(o) || o->trimmed || o->bsize < DISKFMT_BLOCK_MIN ||
        o->bsize > DISKFMT_BLOCK_MAX)
        return;
    if (d->pending_write_bytes > 0 &&
        d->pending_write_bytes + o->mem > d->pending_write_max) {
        d->st.writes_skipped++;
        return;
    }
    if (file_meta(d, o, &m) < 0)
        return; /* a key or headers beyond what the format takes */
    uint64_t size = round_up4k(diskfmt_file_size(&m));

    n = o->nblk;
    j = job_new(DJ_WRITE);
    e = entry_new(d, o->key, o->key_len);
    if (j == NULL || e == NULL || (j->hdr = malloc(m.header_len)) == NULL ||
        (n > 0 && (j->chunks = calloc(n, sizeof(*j->chunks))) == NULL))
        goto fail;
    if (diskfmt_encode(&m, j->hdr, m.header_len) < 0)
        goto fail;
    if (writing_entry_add(d, e, &m, o, size) < 0)
        goto fail;
    for (uint32_t i = 0; i < o->nblk; i++)
        j->chunks[j->nchunks++] = chunk_ref(o->blk[i]);
    m.key = m.etag = m.hdrs = NULL; /* in j->hdr now */
    j->meta = m;
    j->gen = m.gen;
    j->inst = d->inst;
    j->e = e;
    d->last_gen = m.gen;
    j->held = o->mem;
    d->pending_write_bytes += j->held;
    o->disk_gen = m.gen;
    submit(d, j);
    return;
fail:
    if (j != NULL)
        job_free(j);
    if (e != NULL)
        entry_free(e);
}

void disk_refresh(struct disk *d, const struct obj *o)
{
    struct dentry *e;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    e = index_find(d, o->key, o->key_len, key_hash(d, o->key, o->key_len), DE_READY);
    if (e == NULL || e->gen != o->disk_gen)
        return; /* not the version the origin just confirmed */
    e->fd = o->fd;
    e->resp_wall_ms = obj_response_wall_ms(o, time_mono_ms());
    e->fetch_ms = o->fetch_ms;
    e->has_validator = o->fresp.has_etag || o->fresp.has_last_modified;
}

void disk_forget(struct disk *d, const struct obj *o)
{
    struct dentry *e;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    CHECK_OBJ_NOTNULL(o, OBJ_MAGIC);
    e = index_find(d, o->key, o->key_len, key_hash(d, o->key, o->key_len), DE_READY);
    if (e != NULL && e->gen == o->disk_gen)
        entry_drop(d, e, true);
}

void disk_count_hit(struct disk *d)
{
    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    d->st.hits++;
}

void disk_get_stats(const struct disk *d, struct disk_stats *st)
{
    struct s3fifo_stats ps;

    CHECK_OBJ_NOTNULL(d, DISK_MAGIC);
    *st = d->st;
    s3fifo_stats(d->policy, &ps);
    st->bytes = ps.bytes;
    st->budget = ps.budget;
}

/* ================================================================ open and close */

static int open_fail(struct disk *d, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int open_fail(struct disk *d, char *err, size_t errlen, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "disk cache %s: %s", d->dir, msg);
    return -1;
}

/* The directory, its lock, a fresh tmp/ (the old one goes to the scan). */
static int open_dir(struct disk *d, char *err, size_t errlen)
{
    char path[DISK_PATH_CAP], stale[DISK_PATH_CAP];
    struct stat st;

    if (mkdir(d->dir, 0755) < 0 && errno != EEXIST)
        return open_fail(d, err, errlen, "cannot create the directory: %s", strerror(errno));
    if (stat(d->dir, &st) < 0)
        return open_fail(d, err, errlen, "%s", strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return open_fail(d, err, errlen, "not a directory");
    snprintf(path, sizeof(path), "%s/lock", d->dir);
    d->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lock_fd < 0)
        return open_fail(d, err, errlen, "cannot open %s: %s", path, strerror(errno));
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return open_fail(d, err, errlen, "%s",
                         errno == EWOULDBLOCK ? "in use by another s3edge process"
                                              : strerror(errno));
    snprintf(path, sizeof(path), "%s/tmp", d->dir);
    snprintf(stale, sizeof(stale), "%s/stale-%08" PRIx32, d->dir, d->inst);
    if (rename(path, stale) < 0 && errno != ENOENT)
        return open_fail(d, err, errlen, "cannot move %s aside: %s", path, strerror(errno));
    if (mkdir(path, 0755) < 0)
        return open_fail(d, err, errlen, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

struct disk *disk_open(struct server *s, char *err, size_t errlen)
{
    const struct conf *conf = s->conf;
    struct disk *d;
    sigset_t all, old;

    AN(conf->disk_path);
    d = calloc(1, sizeof(*d));
    if (d == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->magic = DISK_MAGIC;
    d->srv = s;
    d->lock_fd = -1;
    d->efd = -1;
    d->fsync = conf->disk_fsync;
    d->pending_write_max = conf->memory_cache_bytes / 4;
    if (d->pending_write_max < DISK_WRITE_QUEUE_MIN)
        d->pending_write_max = DISK_WRITE_QUEUE_MIN;
    if (d->pending_write_max > DISK_WRITE_QUEUE_MAX)
        d->pending_write_max = DISK_WRITE_QUEUE_MAX;
    TAILQ_INIT(&d->jq_hi);
    TAILQ_INIT(&d->jq_lo);
    TAILQ_INIT(&d->done_q);
    AZ(pthread_mutex_init(&d->mu, NULL));
    AZ(pthread_mutex_init(&d->cmu, NULL));
    AZ(pthread_cond_init(&d->cv, NULL));
    atomic_init(&d->stop, false);
    d->dir = strdup(conf->disk_path);
    d->nbuckets = 1024;
    d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
    if (d->dir == NULL || d->buckets == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* trailing slashes would double in the paths made from it */
    for (size_t l = strlen(d->dir); l > 1 && d->dir[l - 1] == '/'; l--)
        d->dir[l - 1] = '\0';
    if (getrandom(&d->seed, sizeof(d->seed), 0) != (ssize_t)sizeof(d->seed) ||
        getrandom(&d->inst, sizeof(d->inst), 0) != (ssize_t)sizeof(d->inst)) {
        d->seed = (uint64_t)(uintptr_t)d ^ wall_us();
        d->inst = (uint32_t)(mix64(d->seed ^ (uint64_t)getpid()));
    }
    if (open_dir(d, err, errlen) < 0)
        goto fail;
    struct s3fifo_conf pc = {
        .budget = conf->disk_size_bytes,
        .on_evict = on_evict,
        .arg = d,
    };
    d->policy = s3fifo_new(&pc);
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->policy == NULL || d->efd < 0) {
        snprintf(err, errlen, "disk cache: cannot set up: %s",
                 d->policy ? strerror(errno) : "out of memory");
        goto fail;
    }
    d->ev = event_new(s->base, d->efd, EV_READ | EV_PERSIST, done_cb, d);
    if (d->ev == NULL || event_add(d->ev, NULL) < 0) {
        snprintf(err, errlen, "disk cache: cannot set up its event");
        goto fail;
    }
    d->nthreads = conf->disk_threads > 0 ? conf->disk_threads : 2;
    d->max_writers = d->nthreads > 1 ? d->nthreads - 1 : 1;
    d->threads = calloc(d->nthreads, sizeof(*d->threads));
    if (d->threads == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* signals belong to the loop's thread */
    sigfillset(&all);
    AZ(pthread_sigmask(SIG_BLOCK, &all, &old));
    for (; d->started < d->nthreads; d->started++)
        if (pthread_create(&d->threads[d->started], NULL, worker_main, d) != 0)
            break;
    if (d->started == d->nthreads && pthread_create(&d->scan_thread, NULL, scan_main, d) == 0)
        d->scan_started = true;
    AZ(pthread_sigmask(SIG_SETMASK, &old, NULL));
    if (!d->scan_started) {
        snprintf(err, errlen, "disk cache: cannot start its threads");
        goto fail;
    }
    LOG_I("disk cache: %s, %" PRIu64 " bytes, %u I/O threads, fsync %s", d->dir,
          conf->disk_size_bytes, d->nthreads, d->fsync ? "on" : "off");
    return d;
fail:
    disk_close(d);
    return NULL;
}

void disk_close(struct disk *d)
{
    struct djob_list l;
    struct djob *j;

    if (d == NULL)
        return;
    CHECK_OBJ(d, DISK_MAGIC);
    AZ(pthread_mutex_lock(&d->mu));
    atomic_store(&d->stop, true);
    AZ(pthread_cond_broadcast(&d->cv));
    AZ(pthread_mutex_unlock(&d->mu));
    for (unsigned i = 0; i < d->started; i++)
        AZ(pthread_join(d->threads[i], NULL));
    if (d->scan_started)
        AZ(pthread_join(d->scan_thread, NULL));
    /* Deletions still queued are quick and keep the disk within its
     * budget across the restart; reads and writes not started are
     * dropped. Then every job ends through done() as usual. */
    TAILQ_INIT(&l);
    while ((j = TAILQ_FIRST(&d->jq_hi)) != NULL) {
        TAILQ_REMOVE(&d->jq_hi, j, link);
        if (j->kind == DJ_UNLINK)
            run_job(d, j);
        else
            j->err = ECANCELED;
        TAILQ_INSERT_TAIL(&l, j, link);
    }
    while ((j = TAILQ_FIRST(&d->jq_lo)) != NULL) {
        TAILQ_REMOVE(&d->jq_lo, j, link);
        j->err = ECANCELED;
        TAILQ_INSERT_TAIL(&l, j, link);
    }
    d->closing = true;
    take_done(d, &l);
    while ((j = TAILQ_FIRST(&l)) != NULL) {
        TAILQ_REMOVE(&l, j, link);
        done(d, j);
    }
    /* every load was stopped with the server's tasks and is gone now */
    AZ(d->nloads);
    if (d->policy != NULL) {
        s3fifo_clear(d->policy); /* on_evict frees the entries, keeps the files */
        s3fifo_free(d->policy);
    }
    if (d->buckets != NULL) {
        /* entries not in the policy: none should be left */
        for (size_t i = 0; i < d->nbuckets; i++)
            AZ(d->buckets[i]);
    }
    AZ(d->nentries);
    if (d->ev != NULL)
        event_free(d->ev);
    if (d->efd >= 0)
        close(d->efd);
    if (d->lock_fd >= 0)
        close(d->lock_fd);
    free(d->threads);
    free(d->buckets);
    free(d->dir);
    AZ(pthread_cond_destroy(&d->cv));
    AZ(pthread_mutex_destroy(&d->cmu));
    AZ(pthread_mutex_destroy(&d->mu));
    d->magic = 0;
    free(d);
}

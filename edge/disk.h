/*
 * disk.h: the disk cache, behind the memory cache.
 *
 * One file per complete object, in the format of common/diskfmt.h, under
 * a configured directory with a byte budget. What is stored and why:
 *
 *   - Unit: the whole object in one file, checksummed per 1 MiB block. The
 *     memory store and the fills work on whole objects (ranges pass
 *     through), so a partial object on disk could not be served; one file
 *     is one rename (an object is on disk whole or not at all), one open
 *     per hit, one inode per object rather than one per block, and the
 *     block checksums still let every block be checked before its bytes
 *     are served.
 *   - Objects larger than the memory store takes
 *     (cache.memory_max_object_size) never are whole in memory: their
 *     blocks are written as they complete (disk_stream_begin), and a hit
 *     reads the blocks its readers ask for, keeping only what they still
 *     need (a windowed load).
 *   - When: write-through, as soon as a fill completes a cacheable object
 *     (not when the memory store evicts it). An object then survives a
 *     crash or kill -9 from the moment its write ends, a stop has nothing
 *     to flush, and writes follow the origin traffic instead of coming in
 *     bursts exactly when memory is under pressure. The price: objects
 *     seen once are written too (S3-FIFO then evicts them from disk first).
 *     Memory evictions fall back to disk simply because the disk copy is
 *     already there.
 *   - Eviction: S3-FIFO (common/s3fifo.h) over whole files, charged by
 *     their size rounded up to 4 KiB, with the same scan resistance as the
 *     memory store. A file being written holds its room (pinned) so that
 *     the budget also covers writes in flight.
 *
 * Writes: temp file in DIR/tmp, written whole, then renamed (without
 * replacing) into DIR/XX/ under a name of its own; files are never changed
 * in place, so a crash of the process (kill -9 included) leaves only
 * whole files and temp files. Power loss is the other case: the fsync
 * policy (conf disk_fsync) is off by default, since the block checksums
 * already keep a file torn by a power loss from being served (it is
 * deleted when its bad block is read, and fetched again) and an fdatasync
 * per object caps small-object writes at a few hundred a second per
 * thread; with it on, each file is fdatasync'ed before its rename, so the
 * last files written survive a power loss whole too. The directory is
 * never synced: a power loss may forget the last renames (those objects
 * are fetched again).
 *
 * Reads: a disk hit makes an object at FETCHING_HDRS that a disk load
 * fills like an origin fill: the header and the first block are read and
 * checked before the headers are published (a bad file found there is
 * dropped and the request goes to the origin, unseen by the client), then
 * each further block is read into a fresh chunk and checked before its
 * bytes are published, so readers stream as blocks land. A bad later
 * block drops the file; that block and the rest are then fetched from the
 * origin by block fills pinned to the object's version (If-Match of its
 * ETag: fill_source_for), so the response completes with exact bytes, and
 * the object is stored again; without a validator the object fails
 * (readers cut the response). A loaded object enters the memory store.
 *
 * Start: the files of an earlier run are indexed by a scan thread while
 * the node serves (misses until an entry is known). Files that are not
 * complete (torn, truncated, bad header or checksum) and temp files left
 * by a crash are deleted and counted; blocks are checked when read.
 *
 * Threads: all file I/O runs on a small pool of threads (conf
 * disk_threads, default 2; at most all but one of them write, so reads
 * never wait behind writes) plus the scan thread. Results come back to
 * the loop through an eventfd, and everything in this module's structs
 * (index, budget, counters) is touched on the loop only.
 *
 * Errors: ENOSPC, EIO and others are counted and logged once per
 * condition and then at most once a minute; the write or read is dropped
 * (nothing half-written is ever renamed into place) and the node goes on
 * serving from memory and the origin.
 */
#ifndef S3EDGE_DISK_H
#define S3EDGE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct disk;
struct obj;
struct server;

struct disk_stats {
    uint64_t objects;        /* files indexed (written or found by the scan) */
    uint64_t bytes;          /* bytes charged to the budget, writes in flight included */
    uint64_t budget;
    uint64_t hits;           /* responses served from a disk load */
    uint64_t loads;          /* disk loads started */
    uint64_t load_bytes;     /* body bytes read and checked */
    uint64_t writes;         /* files written */
    uint64_t write_bytes;    /* body bytes written */
    uint64_t writes_skipped; /* not written: the write queue was full */
    uint64_t write_errors;   /* ENOSPC, EIO, ... */
    uint64_t read_errors;    /* EIO and other read failures */
    uint64_t discarded;      /* torn, truncated or corrupt files and temp files deleted */
    uint64_t evictions;
    uint64_t scanned;        /* files of earlier runs indexed by the start scan */
    bool scan_done;
};

/* Open the disk cache of s->conf (cache.disk_path): create the directory
 * when missing, lock it against a second process, start the I/O threads
 * and the scan. NULL with a message in err when it cannot. */
struct disk *disk_open(struct server *s, char *err, size_t errlen);
/* Stop the threads (a write in progress is abandoned and its temp file
 * removed), free what is in flight, close. Files stay. d may be NULL. */
void disk_close(struct disk *d);

/*
 * The stored object for key, or NULL. The object comes with a reference
 * for the caller and is being loaded (FETCHING_HDRS or STREAMING) by a
 * disk load shared by all who ask meanwhile; its freshness (fd, response
 * time) is known at once. If the load finds the file bad before the
 * headers, the object ends FAILED with status 0: fetch from the origin.
 * An entry that can be neither served nor revalidated is dropped.
 */
struct obj *disk_lookup(struct disk *d, const char *key, size_t key_len, uint64_t now_ms);

/* Write a complete, cacheable object (not one loaded from disk) in the
 * background. Skipped (and counted) when the write queue is full. */
void disk_store(struct disk *d, struct obj *o);

/* o (STREAMING, its length known) is cacheable but too large for the
 * memory store: write it to a file as its blocks complete, whatever their
 * order (o's sink). Once every block is written the file gets its header
 * and its name, and o leaves the memory index (the next request reads the
 * file). o failing, being freed before every block came, a write failing
 * or the write queue overflowing gives the file up. 0, or an EDGE_E*
 * error when it cannot start (no room, nothing to write). */
int disk_stream_begin(struct disk *d, struct obj *o);

/* A stored object was refreshed by a 304: the index takes its new
 * freshness and fetch time (the file keeps the old ones until it is
 * written again: after a restart it is revalidated once more). */
void disk_refresh(struct disk *d, const struct obj *o);

/* The file o was written to or loaded from is not to be served any more
 * (an invalidation): drop it. */
void disk_forget(struct disk *d, const struct obj *o);

/* A response was served from a disk load. */
void disk_count_hit(struct disk *d);

void disk_get_stats(const struct disk *d, struct disk_stats *st);

#endif

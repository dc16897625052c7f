/*
 * stats.h: the daemon's counters in one struct, and their logfmt line.
 *
 * The counters live with their owners (server, memory cache, disk cache);
 * stats_collect() copies them into one snapshot that anything may print.
 * On SIGUSR1 the server writes the line to the error log at info level:
 *   stats requests=12 hits=7 hits_memory=5 hits_disk=2 misses=5 ...
 */
#ifndef S3EDGE_STATS_H
#define S3EDGE_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include "blockmem.h"
#include "cache.h"
#include "disk.h"
#include "server.h"

struct edge_stats {
    struct server_stats srv; /* requests, hits (memory and disk), misses, ... */
    struct cache_stats mem;
    bool disk_on;
    struct disk_stats disk;
    struct blockmem_stats blocks;
};

void stats_collect(struct server *s, struct edge_stats *out);
/* The logfmt line (without "stats " and newline) into buf; returns its
 * length as snprintf does. */
int stats_format(const struct edge_stats *st, char *buf, size_t cap);
/* "stats ..." at info level in the error log. */
void stats_log(struct server *s);

#endif

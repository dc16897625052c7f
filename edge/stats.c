/*
 * stats.c: one snapshot of the counters, and its logfmt line.
 */
#include "config.h"

#include "stats.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "vas.h"

void stats_collect(struct server *s, struct edge_stats *out)
{
    CHECK_OBJ_NOTNULL(s, SERVER_MAGIC);
    memset(out, 0, sizeof(*out));
    out->srv = s->stats;
    cache_get_stats(s->cache, &out->mem);
    blockmem_get_stats(&out->blocks);
    if (s->disk != NULL) {
        out->disk_on = true;
        disk_get_stats(s->disk, &out->disk);
    }
}

int stats_format(const struct edge_stats *st, char *buf, size_t cap)
{
    const struct server_stats *v = &st->srv;
    const struct disk_stats *d = &st->disk;
    uint64_t disk_hits = st->disk_on ? d->hits : 0;

    return snprintf(
        buf, cap,
        "requests=%" PRIu64 " hits=%" PRIu64 " hits_memory=%" PRIu64 " hits_disk=%" PRIu64
        " misses=%" PRIu64 " passes=%" PRIu64 " errors=%" PRIu64 " bytes_out=%" PRIu64
        " conns=%" PRIu64 " mem_objects=%" PRIu64 " mem_bytes=%" PRIu64 " mem_budget=%" PRIu64
        " mem_inserts=%" PRIu64 " mem_evictions=%" PRIu64 " disk=%d disk_objects=%" PRIu64
        " disk_bytes=%" PRIu64 " disk_budget=%" PRIu64 " disk_loads=%" PRIu64
        " disk_load_bytes=%" PRIu64 " disk_writes=%" PRIu64 " disk_write_bytes=%" PRIu64
        " disk_writes_skipped=%" PRIu64 " disk_write_errors=%" PRIu64
        " disk_read_errors=%" PRIu64 " disk_discarded=%" PRIu64 " disk_evictions=%" PRIu64
        " disk_scanned=%" PRIu64 " disk_scan_done=%d forwards=%" PRIu64
        " forward_invalidations=%" PRIu64 " bytes_forwarded=%" PRIu64
        " block_slots=%" PRIu64 " block_slots_used=%" PRIu64 " block_slot_fallbacks=%" PRIu64,
        v->requests, v->hits, v->hits >= disk_hits ? v->hits - disk_hits : 0, disk_hits,
        v->misses, v->passes, v->errors, v->bytes_out, v->conns_accepted, st->mem.objects,
        st->mem.bytes, st->mem.budget, st->mem.inserts, st->mem.evictions, st->disk_on,
        d->objects, d->bytes, d->budget, d->loads, d->load_bytes, d->writes, d->write_bytes,
        d->writes_skipped, d->write_errors, d->read_errors, d->discarded, d->evictions,
        d->scanned, d->scan_done, v->forwards, v->forward_invalidations, v->bytes_forwarded,
        st->blocks.slots, st->blocks.used, st->blocks.fallbacks);
}

void stats_log(struct server *s)
{
    struct edge_stats st;
    char line[1536];

    stats_collect(s, &st);
    stats_format(&st, line, sizeof(line));
    LOG_I("stats %s", line);
}

/*
 * admin.h: the admin API, on its own listener (libevent's evhttp), bearer
 * tokens compared in constant time, JSON in and out (jansson).
 *
 *   POST /v1/invalidations        {"paths": [...], "tags": [...], "soft": b}
 *   GET  /v1/invalidations        recent ones, newest first
 *   GET  /v1/invalidations/ID     status and per-node detail
 *   GET  /v1/nodes                the live nodes
 *   GET  /v1/stats                traffic, cache, origin and rule counters
 *   GET  /healthz, /readyz        no token needed
 *
 * Lifecycle: admin_new() binds (fleet_start); admin_free() closes it and
 * every connection (fleet_stop).
 */
#ifndef S3EDGE_ADMIN_H
#define S3EDGE_ADMIN_H

#include <stddef.h>

#include "conf.h"

struct server;
struct fleet;
struct admin;

#define ADMIN_MAX_BODY (256 * 1024)
#define ADMIN_MAX_HEADERS_SIZE 16384
#define ADMIN_MAX_TOKENS CONF_ADMIN_TOKENS_MAX
#define ADMIN_TOKEN_MAX CONF_ADMIN_TOKEN_MAX

struct admin *admin_new(struct server *s, struct fleet *f, char *err, size_t errlen);
void admin_free(struct admin *a);

#endif

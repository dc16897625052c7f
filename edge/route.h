/*
 * route.h: Host -> distribution. Exact names first, then the longest
 * matching "*.suffix" wildcard, then "*". Case-insensitive; a port in the
 * Host value is ignored.
 */
#ifndef S3EDGE_ROUTE_H
#define S3EDGE_ROUTE_H

#include <stddef.h>

#include "conf.h"

const struct conf_distribution *route_find(const struct conf *c, const char *host,
                                           size_t host_len);

#endif

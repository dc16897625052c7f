/*
 * h1.h: HTTP/1.1 server connections.
 */
#ifndef S3EDGE_H1_H
#define S3EDGE_H1_H

#include <event2/util.h>

struct server;
struct sockaddr;

/* Take an accepted socket; it is closed on failure. */
void h1_conn_new(struct server *s, evutil_socket_t fd, const struct sockaddr *sa,
                 int salen);

#endif

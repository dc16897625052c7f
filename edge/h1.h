/*
 * h1.h: HTTP/1.1 server connections.
 */
#ifndef S3EDGE_H1_H
#define S3EDGE_H1_H

#include <event2/util.h>

struct server;
struct sockaddr;

struct bufferevent;

/* Take an accepted socket; it is closed on failure. */
void h1_conn_new(struct server *s, evutil_socket_t fd, const struct sockaddr *sa,
                 int salen);

/* Take a connected bufferevent (cleartext, or TLS after ALPN chose
 * http/1.1); bytes already in its input are served first. The bufferevent
 * is freed on failure. The server's connection count already includes it. */
void h1_conn_attach(struct server *s, struct bufferevent *bev, const char *peer);

/* "addr:port" / "[v6]:port" of a socket address */
void h1_peer_name(const struct sockaddr *sa, char *out, size_t cap);

#endif

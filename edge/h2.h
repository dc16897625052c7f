/*
 * h2.h: HTTP/2 server connections (RFC 9113), on nghttp2.
 *
 * A connection arrives here already connected: from the HTTP/1.1 port
 * when its first bytes are the client preface (h2c with prior knowledge,
 * RFC 9113 3.3), or from a TLS listener when ALPN chose "h2" (RFC 9113
 * 3.2). Each stream is one exchange (exchange.h), so caching, errors and
 * headers are the same as on HTTP/1.1.
 */
#ifndef S3EDGE_H2_H
#define S3EDGE_H2_H

#include <stdbool.h>

struct bufferevent;
struct server;

/* SETTINGS_MAX_CONCURRENT_STREAMS we announce (RFC 9113 6.5.2). */
#define H2_MAX_CONCURRENT_STREAMS 128

/*
 * Take a connected bufferevent; bytes already in its input (the client
 * preface, and maybe more) are served first. `tls` says whether the
 * bufferevent encrypts: body bytes then are copied next to their frame
 * header so that TLS records stay large, instead of being referenced.
 * The bufferevent is owned from here on and freed on failure. The
 * server's connection count already includes it; server_conn_closed() is
 * called once when the connection ends.
 */
void h2_conn_attach(struct server *s, struct bufferevent *bev, const char *peer, bool tls);

/*
 * Graceful shutdown: every HTTP/2 connection of this server's loop gets a
 * shutdown notice, then a GOAWAY naming the last stream it will serve
 * (RFC 9113 6.8); streams in flight finish, and each connection closes
 * when its last stream is done. When the last HTTP/2 connection of a
 * draining loop closes, the loop is told to exit. Returns how many
 * HTTP/2 connections are still open (0: nothing to wait for).
 */
unsigned h2_conn_drain_all(struct server *s);

#endif

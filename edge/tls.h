/*
 * tls.h: TLS listeners: contexts, SNI, ALPN, session resumption, OCSP
 * stapling, reload, and the handshake of each accepted connection.
 *
 * Lifecycle: server_new() makes one tls_listener per TLS listen entry;
 * accepted sockets go to tls_listener_accept(), which hands each
 * connection to HTTP/1.1 or HTTP/2 once its handshake is done (by ALPN);
 * SIGHUP calls tls_listener_reload(); server_free() calls
 * tls_listener_free(), which also ends the handshakes still in progress.
 * Connections already handed over keep the certificates they started
 * with, also after a reload or after the listener is gone.
 */
#ifndef S3EDGE_TLS_H
#define S3EDGE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct server;
struct sockaddr;
struct tls_listener;

struct tls_stats {
    uint64_t handshakes;      /* completed */
    uint64_t resumed;         /* of which resumed a session (ticket or cache) */
    uint64_t failures;        /* failed: bad ClientHello, no common version, reset... */
    uint64_t timeouts;        /* not done within handshake_timeout */
    uint64_t reloads;         /* certificate and ticket key reloads that took */
    uint64_t reload_failures; /* reloads refused (the previous files stay in use) */
};

/* The TLS side of s->conf->listens[idx], which must have a tls entry:
 * certificates loaded and checked, ticket keys made or read. NULL with a
 * message in err[errlen] when a file is wrong. */
struct tls_listener *tls_listener_new(struct server *s, size_t idx, char *err, size_t errlen);
void tls_listener_free(struct tls_listener *tl);

/* Take an accepted socket (already counted in s->nconns) through the
 * handshake, then to h1_conn_attach() or h2_conn_attach(). On any
 * failure the socket is closed and server_conn_closed() called. */
void tls_listener_accept(struct tls_listener *tl, evutil_socket_t fd, const struct sockaddr *sa,
                         int salen);

/* Read the certificate, key, OCSP and ticket key files again. New
 * connections get them; open ones keep what they have. 0, or -1 with the
 * reason in err[errlen], the listener still serving the previous files. */
int tls_listener_reload(struct tls_listener *tl, char *err, size_t errlen);

const struct tls_stats *tls_listener_stats(const struct tls_listener *tl);

#endif

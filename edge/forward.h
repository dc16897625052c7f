/*
 * forward.h: requests that go to the origin instead of the cache.
 *
 * A distribution answers GET and HEAD from the cache; OPTIONS (when its
 * allowed_methods say so) and PUT, POST, PATCH and DELETE (allowed_methods
 * all) are forwarded: the request, its body streamed as it arrives, goes
 * to the origin (signed for S3, as sent for a plain origin), the answer
 * streams back through a transient object and is never stored, and a
 * non-error answer to an unsafe method invalidates what this node stores
 * for the URL (RFC 9111 4.4).
 *
 * The exchange owns its struct fwd (x->fwd). The connection (h1, h2)
 * feeds the request body through forward_body_room/_in/_end and is woken
 * through the exchange's ops->wake when room opens again.
 */
#ifndef S3EDGE_FORWARD_H
#define S3EDGE_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"
#include "http1.h"

struct exchange;
struct exchange_req;
struct obj;

/* Whether the distribution forwards method m (OPTIONS, PUT, POST, PATCH,
 * DELETE); GET and HEAD are not forwarded, they are cached. */
bool forward_allowed(const struct conf_distribution *d, enum http1_method m);

/* From exchange_set_fields, for a method forward_allowed may accept: keep
 * the header fields worth forwarding and what the client says of its
 * body. 0 or EDGE_ENOMEM. */
int forward_prepare(struct exchange *x, const struct exchange_req *r);

/* From exchange_start once the distribution allows the method: the
 * response object with a reference for the caller, or NULL with an error
 * of ours in x->status (404 outside the distribution, 411, 413, 503). */
struct obj *forward_start(struct exchange *x);

/* The request body, from the connection: -1 when the exchange takes no
 * (more) body (the bytes are to be dropped; on HTTP/1.1 the connection
 * closes after the response), 0 when the origin is behind (wait for a
 * wake), else how many bytes forward_body_in takes now. HTTP/2 may hand
 * more than the room: its receive window bounds it. */
ssize_t forward_body_room(const struct exchange *x);
void forward_body_in(struct exchange *x, const void *p, size_t n);
void forward_body_end(struct exchange *x);
/* The client's body is bad or stalled: stop, and answer `status` if the
 * response has not begun. */
void forward_body_abort(struct exchange *x, int status);

/* From exchange_free, after the reader is gone. */
void forward_free(struct exchange *x);

#endif

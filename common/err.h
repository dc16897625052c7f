/*
 * err.h: error codes of synchronous calls.
 *
 * Sync calls return 0 or a negative EDGE_E* code; edge_strerror() names it.
 * Async completion callbacks take `const char *err` instead (NULL: success),
 * pointing at static strings so that tests can compare pointers.
 */
#ifndef S3EDGE_ERR_H
#define S3EDGE_ERR_H

enum edge_err {
    EDGE_OK = 0,
    EDGE_ENOMEM = -1,      /* allocation failed */
    EDGE_EINVAL = -2,      /* malformed input */
    EDGE_EAGAIN = -3,      /* need more input */
    EDGE_ETOOLONG = -4,    /* a size limit was exceeded */
    EDGE_ETOOMANY = -5,    /* a count limit was exceeded */
    EDGE_ENOTSUP = -6,     /* valid but not supported */
    EDGE_EIO = -7,         /* system I/O error */
    EDGE_ECRYPTO = -8,     /* OpenSSL failure */
    EDGE_ERANGE = -9,      /* value out of range */
    EDGE_ENOENT = -10,     /* not found */
};

const char *edge_strerror(int err);

#endif

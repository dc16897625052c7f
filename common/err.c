#include "err.h"

const char *edge_strerror(int err)
{
    switch (err) {
    case EDGE_OK: return "success";
    case EDGE_ENOMEM: return "out of memory";
    case EDGE_EINVAL: return "malformed input";
    case EDGE_EAGAIN: return "incomplete input";
    case EDGE_ETOOLONG: return "size limit exceeded";
    case EDGE_ETOOMANY: return "count limit exceeded";
    case EDGE_ENOTSUP: return "not supported";
    case EDGE_EIO: return "I/O error";
    case EDGE_ECRYPTO: return "crypto library error";
    case EDGE_ERANGE: return "value out of range";
    case EDGE_ENOENT: return "not found";
    default: return "unknown error";
    }
}

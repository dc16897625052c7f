/*
 * vas.h: always-on assertions and object magic checks.
 *
 * AN/AZ/WRONG guard invariants of our own code and stay on in release
 * builds: a broken invariant in a cache is worse than a crash. Never use
 * them on input a peer, an origin or a config file controls; that input
 * gets an error return instead.
 */
#ifndef S3EDGE_VAS_H
#define S3EDGE_VAS_H

#include <stddef.h>

void vas_fail(const char *func, const char *file, int line, const char *cond)
    __attribute__((noreturn));

#define VAS_LIKELY(x) __builtin_expect(!!(x), 1)

#define assert_always(e)                                                       \
    do {                                                                       \
        if (!VAS_LIKELY(e))                                                    \
            vas_fail(__func__, __FILE__, __LINE__, #e);                        \
    } while (0)

/* assert non-NULL / non-zero */
#define AN(x) assert_always((x) != 0)
/* assert zero / NULL */
#define AZ(x) assert_always((x) == 0)
/* a branch that must never run */
#define WRONG(msg) vas_fail(__func__, __FILE__, __LINE__, (msg))

#define CHECK_OBJ(o, m) assert_always((o)->magic == (m))
#define CHECK_OBJ_NOTNULL(o, m)                                                \
    do {                                                                       \
        AN(o);                                                                 \
        CHECK_OBJ(o, m);                                                       \
    } while (0)
#define CAST_OBJ_NOTNULL(to, from, m)                                          \
    do {                                                                       \
        (to) = (from);                                                         \
        CHECK_OBJ_NOTNULL(to, m);                                              \
    } while (0)

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

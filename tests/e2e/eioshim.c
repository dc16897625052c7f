/*
 * eioshim.c: an LD_PRELOAD library for the k0007 test. It makes pread and
 * pwritev (and their 64-bit names, which large-file builds call) fail with EIO on files under $EIO_SHIM_DIR while the file
 * $EIO_SHIM_DIR/../eio-read (reads) or ../eio-write (writes) exists, the
 * way a failing disk answers. Everything else goes to the C library.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int failing(int fd, const char *flag)
{
    const char *dir = getenv("EIO_SHIM_DIR");
    char link[64], path[PATH_MAX], ctl[PATH_MAX];
    ssize_t n;

    if (dir == NULL)
        return 0;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    if (strncmp(path, dir, strlen(dir)) != 0)
        return 0;
    snprintf(ctl, sizeof(ctl), "%s/../%s", dir, flag);
    return access(ctl, F_OK) == 0;
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    static ssize_t (*real)(int, void *, size_t, off_t);

    if (real == NULL)
        real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
    if (failing(fd, "eio-read")) {
        errno = EIO;
        return -1;
    }
    return real(fd, buf, count, offset);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    static ssize_t (*real)(int, const struct iovec *, int, off_t);

    if (real == NULL)
        real = (ssize_t(*)(int, const struct iovec *, int, off_t))dlsym(RTLD_NEXT, "pwritev");
    if (failing(fd, "eio-write")) {
        errno = EIO;
        return -1;
    }
    return real(fd, iov, iovcnt, offset);
}

ssize_t pread64(int fd, void *buf, size_t count, off_t offset)
{
    return pread(fd, buf, count, offset);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    return pwritev(fd, iov, iovcnt, offset);
}

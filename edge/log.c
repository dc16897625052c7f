#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

static enum conf_log_level cur_level = LOG_LVL_INFO;
static int err_fd = STDERR_FILENO;
static int acc_fd = STDERR_FILENO;

static int open_target(const char *path, int *fd)
{
    if (path == NULL || strcmp(path, "stderr") == 0) {
        *fd = STDERR_FILENO;
        return 0;
    }
    if (strcmp(path, "off") == 0) {
        *fd = -1;
        return 0;
    }
    *fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    return *fd < 0 ? -1 : 0;
}

int log_open(enum conf_log_level level, const char *error_path,
             const char *access_path)
{
    int efd, afd;

    if (error_path != NULL && strcmp(error_path, "off") == 0)
        error_path = NULL; /* errors are never silenced */
    if (open_target(error_path, &efd) < 0)
        return -1;
    if (open_target(access_path, &afd) < 0) {
        int e = errno;
        if (efd > STDERR_FILENO)
            close(efd);
        errno = e;
        return -1;
    }
    log_close();
    cur_level = level;
    err_fd = efd;
    acc_fd = afd;
    return 0;
}

void log_close(void)
{
    if (err_fd > STDERR_FILENO)
        close(err_fd);
    if (acc_fd > STDERR_FILENO)
        close(acc_fd);
    err_fd = acc_fd = STDERR_FILENO;
}

bool log_enabled(enum conf_log_level lvl)
{
    return lvl <= cur_level;
}

bool log_access_enabled(void)
{
    return acc_fd >= 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_msg(enum conf_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[2048], ts[32];
    va_list ap;
    int n, m;

    if (!log_enabled(lvl) || err_fd < 0)
        return;
    time_iso8601_ms(ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s [%s] ", ts, names[lvl]);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    write_all(err_fd, line, (size_t)n);
}

void log_access(const char *line, int len)
{
    char buf[4096];

    if (acc_fd < 0 || len <= 0)
        return;
    if (len > (int)sizeof(buf) - 1)
        len = (int)sizeof(buf) - 1;
    memcpy(buf, line, (size_t)len);
    buf[len] = '\n';
    write_all(acc_fd, buf, (size_t)len + 1);
}
